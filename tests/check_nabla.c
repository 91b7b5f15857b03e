/*
 * check_nabla.c - runs every suite of the library and ends with Check's
 * summary line.
 * CK_RUN_SUITE / CK_RUN_CASE pick one; CK_FORK=no for gdb and valgrind.
 */
#include <stdlib.h>

#include "harness.h"

int main(void)
{
    SRunner *sr = srunner_create(tst_suite_core());
#define TST_FAMILY(name) srunner_add_suite(sr, tst_suite_##name());
#include "families.def"
#undef TST_FAMILY
    srunner_add_suite(sr, tst_suite_safetensors());
    srunner_add_suite(sr, tst_suite_model());
    srunner_add_suite(sr, tst_suite_init());
    srunner_add_suite(sr, tst_suite_trainer());
    srunner_add_suite(sr, tst_suite_callbacks());
    srunner_add_suite(sr, tst_suite_dist());
    srunner_add_suite(sr, tst_suite_optim());
    srunner_add_suite(sr, tst_suite_dataset());
    srunner_add_suite(sr, tst_suite_npz());
    srunner_add_suite(sr, tst_suite_cifar());
    srunner_add_suite(sr, tst_suite_image());
    srunner_add_suite(sr, tst_suite_fast());
    srunner_add_suite(sr, tst_suite_memory());
    srunner_add_suite(sr, tst_suite_nonfinite());
    srunner_add_suite(sr, tst_suite_batch());
    srunner_add_suite(sr, tst_suite_gradcheck());
    srunner_add_suite(sr, tst_suite_registry());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
