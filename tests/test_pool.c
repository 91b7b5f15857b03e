/* PLACEHOLDER */
#include "harness.h"
const tst_case tst_cases_pool[] = {{0}};
Suite *tst_suite_pool(void) { return suite_create("pool"); }
