/*
 * check_tools.c - the suites of the nabla tool's own modules (plots, image
 * filters, tile grids), built on the public API only, as the tool is.
 * CK_RUN_SUITE / CK_RUN_CASE pick one; CK_FORK=no for gdb and valgrind.
 */
#include <stdlib.h>

#include "testutil.h"

Suite *tst_suite_plot(void);
Suite *tst_suite_filter(void);
Suite *tst_suite_grid(void);

int main(void)
{
    SRunner *sr = srunner_create(tst_suite_plot());
    srunner_add_suite(sr, tst_suite_filter());
    srunner_add_suite(sr, tst_suite_grid());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
