/* test_coord_cli.c -- the coordinator's shared CLI rules (coordinator/
 * cli.c, compiled in here): which registries are insecure, and how
 * registry errors map to exit statuses. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../coordinator/cli.c"
#include "../../coordinator/signals.c"
#include "../../coordinator/display.c"
#include "stderr_capture.h"

/* Error and warning messages quote registries, nodes and builds: a
 * terminal escape in them is shown, not obeyed (issue 12 finding 5). */
static void errors_reach_the_terminal_escaped(void **state)
{
    s_capture_t cap;
    s_capture_begin(&cap);
    af_cli_error("node says: %s", "A\033[31mRED\007\rB");
    af_cli_warning("%s", "\033]0;title\007\xc2\x9b");
    char buf[512];
    s_capture_end(&cap, buf, sizeof buf);
    assert_string_equal(buf, "archfarm: error: node says: A\\x1b[31mRED\\x07\\x0dB\n"
                             "archfarm: warning: \\x1b]0;title\\x07\\xc2\\x9b\n");
}

static void insecure_loopback_is_implicit_like_docker(void **state)
{
    assert_true(af_insecure_match(NULL, "127.0.0.1:5000"));
    assert_true(af_insecure_match(NULL, "127.8.9.10"));
    assert_true(af_insecure_match(NULL, "localhost:5000"));
    assert_true(af_insecure_match(NULL, "[::1]:5000"));
    assert_false(af_insecure_match(NULL, "128.0.0.1:5000"));
    assert_false(af_insecure_match(NULL, "registry.example:5000"));
    assert_false(af_insecure_match(NULL, "docker.io"));
}

static void insecure_registry_with_port_matches_only_that_port(void **state)
{
    af_insecure_t ins = {0};
    assert_int_equal(af_insecure_add(&ins, "reg.lan:5000", NULL), 0);
    assert_true(af_insecure_match(&ins, "reg.lan:5000"));
    assert_false(af_insecure_match(&ins, "reg.lan:5001"));
    assert_false(af_insecure_match(&ins, "reg.lan"));
}

static void insecure_registry_without_port_matches_every_port(void **state)
{
    af_insecure_t ins = {0};
    assert_int_equal(af_insecure_add(&ins, "reg.lan", NULL), 0);
    assert_true(af_insecure_match(&ins, "reg.lan:5000"));
    assert_true(af_insecure_match(&ins, "REG.lan"));
    assert_false(af_insecure_match(&ins, "other.lan"));
}

static void insecure_registry_rejects_schemes_and_bad_ports(void **state)
{
    af_insecure_t ins = {0};
    af_err_t err = {0};
    assert_int_equal(af_insecure_add(&ins, "http://reg.lan", &err), AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "without a scheme"));
    assert_int_equal(af_insecure_add(&ins, "reg.lan:99999", NULL), AF_ERR_INVAL);
    assert_int_equal(af_insecure_add(&ins, "reg lan", NULL), AF_ERR_INVAL);
    assert_int_equal(af_insecure_add(&ins, "", NULL), AF_ERR_INVAL);
    assert_int_equal(ins.n, 0);
}

static void registry_errors_map_to_exit_statuses(void **state)
{
    assert_int_equal(af_cli_registry_exit(AF_ERR_NET), AF_EXIT_INFRA);
    assert_int_equal(af_cli_registry_exit(AF_ERR_TIMEOUT), AF_EXIT_INFRA);
    assert_int_equal(af_cli_registry_exit(AF_ERR_AUTH), AF_EXIT_INFRA);
    assert_int_equal(af_cli_registry_exit(AF_ERR_NOTFOUND), AF_EXIT_FAILED);
    assert_int_equal(af_cli_registry_exit(AF_ERR_DIGEST), AF_EXIT_FAILED);
}

static void bytes_are_human_readable(void **state)
{
    char b[32];
    assert_string_equal(af_cli_bytes(512, b, sizeof b), "512 B");
    assert_string_equal(af_cli_bytes(1536, b, sizeof b), "1.5 KiB");
    assert_string_equal(af_cli_bytes(40ULL << 20, b, sizeof b), "40.0 MiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(insecure_loopback_is_implicit_like_docker),
        cmocka_unit_test(insecure_registry_with_port_matches_only_that_port),
        cmocka_unit_test(insecure_registry_without_port_matches_every_port),
        cmocka_unit_test(insecure_registry_rejects_schemes_and_bad_ports),
        cmocka_unit_test(registry_errors_map_to_exit_statuses),
        cmocka_unit_test(bytes_are_human_readable),
        cmocka_unit_test(errors_reach_the_terminal_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
