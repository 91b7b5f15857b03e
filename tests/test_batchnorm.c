/* PLACEHOLDER */
#include "harness.h"
const tst_case tst_cases_batchnorm[] = {{0}};
Suite *tst_suite_batchnorm(void) { return suite_create("batchnorm"); }
