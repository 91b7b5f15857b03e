/* PLACEHOLDER */
#include "harness.h"
const tst_case tst_cases_linear[] = {{0}};
Suite *tst_suite_linear(void) { return suite_create("linear"); }
