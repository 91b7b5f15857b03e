/* PLACEHOLDER */
#include "harness.h"
const tst_case tst_cases_conv[] = {{0}};
Suite *tst_suite_conv(void) { return suite_create("conv"); }
