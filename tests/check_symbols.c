/*
 * check_symbols.c - every public function is exported: this program takes
 * the address of each one and links against libnatten, so a missing export
 * fails at link time.  tests/exports.sh checks this list against natten.h and
 * that nothing else is exported.
 */
#include <natten.h>

#include <check.h>
#include <stdlib.h>

static void *const public_functions[] = {
    (void *)natten_status_string,
    (void *)natten_last_error,
    (void *)natten_version_string,
    (void *)natten_params_init,
    (void *)natten_params_set_scale,
    (void *)natten_context_create,
    (void *)natten_context_destroy,
    (void *)natten_context_set_backend,
    (void *)natten_context_set_stream,
    (void *)natten_context_set_num_threads,
    (void *)natten_context_last_backend,
    (void *)natten_backend_count,
    (void *)natten_backend_get_info,
    (void *)natten_qk_forward,
    (void *)natten_qk_backward,
    (void *)natten_av_forward,
    (void *)natten_av_backward,
    (void *)natten_fna_forward,
    (void *)natten_fna_backward,
    (void *)natten_context_set_tuning,
    (void *)natten_explain,
    (void *)natten_context_tuning_report,
    (void *)natten_wisdom_export,
    (void *)natten_wisdom_import,
};

START_TEST(all_exported)
{
    for (size_t i = 0; i < sizeof public_functions / sizeof public_functions[0]; i++)
        ck_assert_ptr_nonnull(public_functions[i]);
    ck_assert_int_ge(natten_backend_count(), 1);
    ck_assert_ptr_nonnull(natten_version_string());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("symbols");
    TCase *tc = tcase_create("exports");
    SRunner *sr;
    int failed;
    tcase_add_test(tc, all_exported);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
