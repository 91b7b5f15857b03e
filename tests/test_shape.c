/* PLACEHOLDER */
#include "harness.h"
const tst_case tst_cases_shape[] = {{0}};
Suite *tst_suite_shape(void) { return suite_create("shape"); }
