/* PLACEHOLDER */
#include "harness.h"
const tst_case tst_cases_loss[] = {{0}};
Suite *tst_suite_loss(void) { return suite_create("loss"); }
