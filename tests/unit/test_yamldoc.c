/* test_yamldoc.c -- the bounded libyaml document: size and nesting limits,
 * the one-document rule, "NAME:LINE:COL" on libyaml's errors and on the
 * caller's, the bounded file read, and the null/scalar helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "yamldoc.h"

static const af_yamldoc_limits_t s_limits = {
    .max_bytes = 64, .max_depth = 3, .kind = "thing", .single = "a thing"};

static af_yamldoc_t *s_load(const char *yaml)
{
    af_err_t err;
    af_err_clear(&err);
    af_yamldoc_t *yd = af_yamldoc_new("t.yaml", yaml, strlen(yaml), &s_limits, &err);
    if (!yd)
        fail_msg("load failed: %s", err.msg);
    return yd;
}

static void s_fails_len(const char *yaml, size_t len, int code, const char *want)
{
    af_err_t err;
    af_err_clear(&err);
    af_yamldoc_t *yd = af_yamldoc_new("t.yaml", yaml, len, &s_limits, &err);
    if (yd) {
        af_yamldoc_destroy(&yd);
        fail_msg("expected failure \"%s\"", want);
    }
    assert_string_equal(err.msg, want);
    assert_int_equal(err.code, code);
}

static void s_fails(const char *yaml, int code, const char *want)
{
    s_fails_len(yaml, strlen(yaml), code, want);
}

/* A temporary file holding LEN bytes of DATA; PATH receives its name. */
static void s_temp_file(char *path, size_t size, const char *data, size_t len)
{
    snprintf(path, size, "/tmp/test_yamldoc.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void yamldoc_buffer_loads_and_names_itself(void **state)
{
    (void)state;
    af_yamldoc_t *yd = s_load("a: [1, 2]\n");
    assert_string_equal(af_yamldoc_name(yd), "t.yaml");
    yaml_node_t *root = af_yamldoc_root(yd);
    assert_non_null(root);
    assert_int_equal(root->type, YAML_MAPPING_NODE);
    yaml_node_pair_t *p = root->data.mapping.pairs.start;
    yaml_node_t *k = yaml_document_get_node(af_yamldoc_document(yd), p->key);
    assert_string_equal(af_yamldoc_text(k), "a");
    af_yamldoc_destroy(&yd);
    assert_null(yd);
    af_yamldoc_destroy(&yd); /* safe twice */
    af_yamldoc_destroy(NULL);
}

static void yamldoc_empty_or_null_input_has_no_root(void **state)
{
    (void)state;
    af_yamldoc_t *yd = s_load("");
    assert_null(af_yamldoc_root(yd));
    af_yamldoc_destroy(&yd);
    af_err_t err;
    af_err_clear(&err);
    yd = af_yamldoc_new("t.yaml", NULL, 5, &s_limits, &err);
    assert_non_null(yd);
    assert_null(af_yamldoc_root(yd));
    af_yamldoc_destroy(&yd);
}

static void yamldoc_size_is_bounded_by_max_bytes(void **state)
{
    (void)state;
    char buf[80];
    memset(buf, '#', sizeof buf);
    /* a comment of exactly max_bytes is fine, one byte more is not */
    af_err_t err;
    af_err_clear(&err);
    af_yamldoc_t *yd = af_yamldoc_new("t.yaml", buf, 64, &s_limits, &err);
    assert_non_null(yd);
    af_yamldoc_destroy(&yd);
    s_fails_len(buf, 65, AF_ERR_TOOBIG, "t.yaml: thing is 65 bytes, more than the limit of 64 bytes");
}

static void yamldoc_nesting_is_bounded_by_max_depth(void **state)
{
    (void)state;
    af_yamldoc_t *yd = s_load("[[[1]]]");
    af_yamldoc_destroy(&yd);
    yd = s_load("a: {b: [1]}\n");
    af_yamldoc_destroy(&yd);
    s_fails("[[[[1]]]]", AF_ERR_TOOBIG, "t.yaml:1:4: YAML nested deeper than 3 levels");
    s_fails("a:\n  b:\n    c:\n      - 1\n", AF_ERR_TOOBIG,
            "t.yaml:4:7: YAML nested deeper than 3 levels");
}

static void yamldoc_deep_nesting_is_rejected_before_the_whole_input_is_read(void **state)
{
    (void)state;
    /* far past max_bytes would be TOOBIG; keep within it but unbalanced
     * after the limit: the event pass stops at the first too-deep level */
    s_fails("[[[[ this is not even YAML ]]]]]]]]", AF_ERR_TOOBIG,
            "t.yaml:1:4: YAML nested deeper than 3 levels");
}

static void yamldoc_second_document_is_rejected_at_its_start(void **state)
{
    (void)state;
    s_fails("a: 1\n---\nb: 2\n", AF_ERR_PARSE,
            "t.yaml:2:1: more than one YAML document (a thing is a single document)");
    s_fails("--- 1\n--- 2\n", AF_ERR_PARSE,
            "t.yaml:2:1: more than one YAML document (a thing is a single document)");
}

static void yamldoc_syntax_error_names_line_and_column(void **state)
{
    (void)state;
    s_fails("a: 1\nb: [1, 2\n", AF_ERR_PARSE,
            "t.yaml:3:1: YAML error: did not find expected ',' or ']' (while parsing a flow "
            "sequence at line 2)");
    s_fails("a: 1\n  b: 2\n", AF_ERR_PARSE,
            "t.yaml:2:4: YAML error: mapping values are not allowed in this context");
}

static void yamldoc_reader_error_position_comes_from_the_byte_offset(void **state)
{
    (void)state;
    /* libyaml reports invalid UTF-8 by offset only; columns count
     * characters, so the two-byte é counts once */
    s_fails("a: 1\nb: \xc3\xa9\xff\n", AF_ERR_PARSE,
            "t.yaml:2:5: YAML error: invalid leading UTF-8 octet");
}

static void yamldoc_fail_reports_node_position_or_1_1(void **state)
{
    (void)state;
    af_err_t err;
    af_err_clear(&err);
    const char *yaml = "a: 1\nb:\n  - x\n";
    af_yamldoc_t *yd = af_yamldoc_new("t.yaml", yaml, strlen(yaml), &s_limits, &err);
    assert_non_null(yd);
    yaml_node_t *root = af_yamldoc_root(yd);
    yaml_node_pair_t *p = root->data.mapping.pairs.start + 1;
    yaml_node_t *v = yaml_document_get_node(af_yamldoc_document(yd), p->value);
    assert_int_equal(af_yamldoc_fail(yd, v, AF_ERR_INVAL, "b: bad %d", 7), AF_ERR_INVAL);
    assert_string_equal(err.msg, "t.yaml:3:3: b: bad 7");
    assert_int_equal(err.code, AF_ERR_INVAL);
    assert_int_equal(af_yamldoc_fail(yd, NULL, AF_ERR_PARSE, "empty"), AF_ERR_PARSE);
    assert_string_equal(err.msg, "t.yaml:1:1: empty");
    yaml_mark_t m = {.line = 9, .column = 4};
    assert_int_equal(af_yamldoc_fail_at(yd, &m, AF_ERR_TOOBIG, "here"), AF_ERR_TOOBIG);
    assert_string_equal(err.msg, "t.yaml:10:5: here");
    assert_int_equal(af_yamldoc_fail_at(yd, NULL, AF_ERR_TOOBIG, "there"), AF_ERR_TOOBIG);
    assert_string_equal(err.msg, "t.yaml:1:1: there");
    assert_int_equal(af_yamldoc_nomem(yd), AF_ERR_NOMEM);
    assert_string_equal(err.msg, "t.yaml: out of memory");
    af_yamldoc_destroy(&yd);
}

static void yamldoc_fail_without_err_still_returns_the_code(void **state)
{
    (void)state;
    af_yamldoc_t *yd = af_yamldoc_new("t.yaml", "a: 1", 4, &s_limits, NULL);
    assert_non_null(yd);
    assert_int_equal(af_yamldoc_fail(yd, af_yamldoc_root(yd), AF_ERR_INVAL, "x"), AF_ERR_INVAL);
    af_yamldoc_destroy(&yd);
    assert_null(af_yamldoc_new("t.yaml", "[", 1, &s_limits, NULL));
}

static void yamldoc_is_null_only_for_plain_null_scalars(void **state)
{
    (void)state;
    af_yamldoc_t *yd = s_load("[~, null, Null, NULL, '', \"null\", nil, 0, [], {}]");
    yaml_node_t *root = af_yamldoc_root(yd);
    static const bool want[] = {true, true, true, true, false, false, false, false, false, false};
    size_t n = (size_t)(root->data.sequence.items.top - root->data.sequence.items.start);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item =
            yaml_document_get_node(af_yamldoc_document(yd), root->data.sequence.items.start[i]);
        if (af_yamldoc_is_null(item) != want[i])
            fail_msg("item %zu: is_null should be %d", i, want[i]);
    }
    assert_true(af_yamldoc_is_null(NULL));
    af_yamldoc_destroy(&yd);
    yd = s_load("a:\n");
    root = af_yamldoc_root(yd);
    yaml_node_t *v =
        yaml_document_get_node(af_yamldoc_document(yd), root->data.mapping.pairs.start->value);
    assert_true(af_yamldoc_is_null(v)); /* an empty plain scalar */
    af_yamldoc_destroy(&yd);
}

static void yamldoc_load_reads_a_file_named_by_its_path(void **state)
{
    (void)state;
    char path[64];
    s_temp_file(path, sizeof path, "a: 1\n", 5);
    af_err_t err;
    af_err_clear(&err);
    af_yamldoc_t *yd = af_yamldoc_load(path, &s_limits, &err);
    if (!yd)
        fail_msg("%s", err.msg);
    assert_string_equal(af_yamldoc_name(yd), path);
    assert_int_equal(af_yamldoc_root(yd)->type, YAML_MAPPING_NODE);
    assert_int_equal(af_yamldoc_fail(yd, NULL, AF_ERR_INVAL, "x"), AF_ERR_INVAL);
    char want[128];
    snprintf(want, sizeof want, "%s:1:1: x", path);
    assert_string_equal(err.msg, want);
    af_yamldoc_destroy(&yd);
    unlink(path);
}

static void yamldoc_load_file_errors_name_the_path(void **state)
{
    (void)state;
    af_err_t err;
    af_err_clear(&err);
    assert_null(af_yamldoc_load("/nonexistent/t.yaml", &s_limits, &err));
    assert_int_equal(err.code, AF_ERR_NOTFOUND);
    assert_string_equal(err.msg, "/nonexistent/t.yaml: No such file or directory");

    af_err_clear(&err);
    assert_null(af_yamldoc_load("/tmp", &s_limits, &err));
    assert_int_equal(err.code, AF_ERR_IO);
    assert_string_equal(err.msg, "/tmp: not a regular file or a pipe");

    /* a file larger than max_bytes: its real size and the limit */
    char big[200], path[64], want[128];
    memset(big, '#', sizeof big);
    s_temp_file(path, sizeof path, big, sizeof big);
    af_err_clear(&err);
    assert_null(af_yamldoc_load(path, &s_limits, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    snprintf(want, sizeof want, "%s: thing is 200 bytes, more than the limit of 64 bytes", path);
    assert_string_equal(err.msg, want);
    unlink(path);

    /* syntax errors in a file carry the path */
    s_temp_file(path, sizeof path, "a: [", 4);
    af_err_clear(&err);
    assert_null(af_yamldoc_load(path, &s_limits, &err));
    assert_int_equal(err.code, AF_ERR_PARSE);
    snprintf(want, sizeof want,
             "%s:2:1: YAML error: did not find expected node content (while parsing a flow "
             "node at line 2)",
             path);
    assert_string_equal(err.msg, want);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(yamldoc_buffer_loads_and_names_itself),
        cmocka_unit_test(yamldoc_empty_or_null_input_has_no_root),
        cmocka_unit_test(yamldoc_size_is_bounded_by_max_bytes),
        cmocka_unit_test(yamldoc_nesting_is_bounded_by_max_depth),
        cmocka_unit_test(yamldoc_deep_nesting_is_rejected_before_the_whole_input_is_read),
        cmocka_unit_test(yamldoc_second_document_is_rejected_at_its_start),
        cmocka_unit_test(yamldoc_syntax_error_names_line_and_column),
        cmocka_unit_test(yamldoc_reader_error_position_comes_from_the_byte_offset),
        cmocka_unit_test(yamldoc_fail_reports_node_position_or_1_1),
        cmocka_unit_test(yamldoc_fail_without_err_still_returns_the_code),
        cmocka_unit_test(yamldoc_is_null_only_for_plain_null_scalars),
        cmocka_unit_test(yamldoc_load_reads_a_file_named_by_its_path),
        cmocka_unit_test(yamldoc_load_file_errors_name_the_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
