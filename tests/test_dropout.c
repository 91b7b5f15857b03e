/* PLACEHOLDER */
#include "harness.h"
const tst_case tst_cases_dropout[] = {{0}};
Suite *tst_suite_dropout(void) { return suite_create("dropout"); }
