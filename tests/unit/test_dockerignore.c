/* test_dockerignore.c -- pins Docker's .dockerignore semantics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dockerignore.h"

static af_dockerignore_t *s_di(const char *text)
{
    af_dockerignore_t *di = af_dockerignore_new();
    assert_non_null(di);
    af_err_t err = {0};
    int rc = af_dockerignore_parse(di, text, strlen(text), ".dockerignore", &err);
    if (rc != 0)
        fail_msg("parse: %s", err.msg);
    return di;
}

static void dockerignore_empty_excludes_nothing(void **state)
{
    af_dockerignore_t *di = s_di("");
    assert_int_equal(af_dockerignore_count(di), 0);
    assert_false(af_dockerignore_excluded(di, "a"));
    assert_false(af_dockerignore_may_include_below(di, "a"));
    af_dockerignore_destroy(&di);
    assert_null(di);
    af_dockerignore_destroy(&di);
}

static void dockerignore_comments_and_blank_lines_are_skipped(void **state)
{
    af_dockerignore_t *di = s_di("# a comment\n\n   \n#b\n  c  \r\n");
    assert_int_equal(af_dockerignore_count(di), 1);
    assert_false(af_dockerignore_excluded(di, "# a comment"));
    assert_false(af_dockerignore_excluded(di, "b"));
    assert_true(af_dockerignore_excluded(di, "c"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_plain_name_matches_only_at_root(void **state)
{
    af_dockerignore_t *di = s_di("foo\n");
    assert_true(af_dockerignore_excluded(di, "foo"));
    assert_false(af_dockerignore_excluded(di, "a/foo"));
    assert_false(af_dockerignore_excluded(di, "foobar"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_excluded_dir_excludes_everything_below(void **state)
{
    af_dockerignore_t *di = s_di("node_modules\n");
    assert_true(af_dockerignore_excluded(di, "node_modules"));
    assert_true(af_dockerignore_excluded(di, "node_modules/x/y.js"));
    assert_false(af_dockerignore_excluded(di, "src/node_modules"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_star_does_not_cross_slash(void **state)
{
    af_dockerignore_t *di = s_di("*.o\n*/temp*\n");
    assert_true(af_dockerignore_excluded(di, "main.o"));
    assert_false(af_dockerignore_excluded(di, "src/main.o"));
    assert_true(af_dockerignore_excluded(di, "somedir/temporary.txt"));
    assert_true(af_dockerignore_excluded(di, "somedir/temp"));
    assert_false(af_dockerignore_excluded(di, "a/b/temp"));
    assert_false(af_dockerignore_excluded(di, "temp"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_question_mark_matches_one_char(void **state)
{
    af_dockerignore_t *di = s_di("temp?\n");
    assert_true(af_dockerignore_excluded(di, "tempa"));
    assert_false(af_dockerignore_excluded(di, "temp"));
    assert_false(af_dockerignore_excluded(di, "tempab"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_double_star_matches_any_depth(void **state)
{
    af_dockerignore_t *di = s_di("**/*.go\n");
    assert_true(af_dockerignore_excluded(di, "main.go"));
    assert_true(af_dockerignore_excluded(di, "a/main.go"));
    assert_true(af_dockerignore_excluded(di, "a/b/c/main.go"));
    assert_false(af_dockerignore_excluded(di, "a/main.c"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_double_star_in_the_middle(void **state)
{
    af_dockerignore_t *di = s_di("a/**/z\n");
    assert_true(af_dockerignore_excluded(di, "a/z"));
    assert_true(af_dockerignore_excluded(di, "a/b/z"));
    assert_true(af_dockerignore_excluded(di, "a/b/c/z"));
    assert_true(af_dockerignore_excluded(di, "a/b/c/z/inner"));
    assert_false(af_dockerignore_excluded(di, "b/z"));
    assert_false(af_dockerignore_excluded(di, "a/bz"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_trailing_double_star_matches_below_only(void **state)
{
    af_dockerignore_t *di = s_di("build/**\n");
    assert_false(af_dockerignore_excluded(di, "build"));
    assert_true(af_dockerignore_excluded(di, "build/x"));
    assert_true(af_dockerignore_excluded(di, "build/x/y"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_lone_double_star_matches_everything(void **state)
{
    af_dockerignore_t *di = s_di("**\n!keep\n");
    assert_true(af_dockerignore_excluded(di, "a"));
    assert_true(af_dockerignore_excluded(di, "a/b"));
    assert_false(af_dockerignore_excluded(di, "keep"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_bang_reincludes_and_later_wins(void **state)
{
    af_dockerignore_t *di = s_di("*.md\n!README.md\nREADME-secret.md\n");
    assert_true(af_dockerignore_excluded(di, "CHANGES.md"));
    assert_false(af_dockerignore_excluded(di, "README.md"));
    assert_true(af_dockerignore_excluded(di, "README-secret.md"));
    af_dockerignore_destroy(&di);

    di = s_di("!README.md\n*.md\n"); /* order matters: the later exclusion wins */
    assert_true(af_dockerignore_excluded(di, "README.md"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_bang_reincludes_inside_excluded_dir(void **state)
{
    af_dockerignore_t *di = s_di("docs\n!docs/keep.md\n");
    assert_true(af_dockerignore_excluded(di, "docs"));
    assert_true(af_dockerignore_excluded(di, "docs/other.md"));
    assert_false(af_dockerignore_excluded(di, "docs/keep.md"));
    assert_true(af_dockerignore_may_include_below(di, "docs"));
    assert_false(af_dockerignore_may_include_below(di, "src"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_may_include_below_sees_globs_and_double_star(void **state)
{
    af_dockerignore_t *di = s_di("*\n!*/keep\n");
    assert_true(af_dockerignore_may_include_below(di, "a"));
    assert_false(af_dockerignore_may_include_below(di, "a/b")); /* keep is one level deep */
    assert_false(af_dockerignore_excluded(di, "a/keep"));
    af_dockerignore_destroy(&di);

    di = s_di("vendor\n!vendor/**/LICENSE\n");
    assert_true(af_dockerignore_may_include_below(di, "vendor"));
    assert_true(af_dockerignore_may_include_below(di, "vendor/a/b"));
    assert_false(af_dockerignore_may_include_below(di, "other"));
    assert_false(af_dockerignore_excluded(di, "vendor/a/b/LICENSE"));
    assert_true(af_dockerignore_excluded(di, "vendor/a/b/main.go"));
    af_dockerignore_destroy(&di);

    di = s_di("vendor\n"); /* no "!" at all: never descend */
    assert_false(af_dockerignore_may_include_below(di, "vendor"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_slashes_and_dots_are_cleaned(void **state)
{
    af_dockerignore_t *di = s_di("/abs/path/\n./dot//x\nup/../y\n");
    assert_true(af_dockerignore_excluded(di, "abs/path"));
    assert_true(af_dockerignore_excluded(di, "abs/path/f"));
    assert_true(af_dockerignore_excluded(di, "dot/x"));
    assert_true(af_dockerignore_excluded(di, "y"));
    assert_false(af_dockerignore_excluded(di, "up"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_character_classes(void **state)
{
    af_dockerignore_t *di = s_di("file[0-9].txt\nx[^ab]\n[]]z\n");
    assert_true(af_dockerignore_excluded(di, "file1.txt"));
    assert_false(af_dockerignore_excluded(di, "filea.txt"));
    assert_true(af_dockerignore_excluded(di, "xc"));
    assert_false(af_dockerignore_excluded(di, "xa"));
    assert_true(af_dockerignore_excluded(di, "]z"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_backslash_escapes_a_metachar(void **state)
{
    af_dockerignore_t *di = s_di("a\\*b\n");
    assert_true(af_dockerignore_excluded(di, "a*b"));
    assert_false(af_dockerignore_excluded(di, "axb"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_bang_with_spaces_and_bom(void **state)
{
    af_dockerignore_t *di = s_di("\xef\xbb\xbf"
                                 "*.log\n!  keep.log  \n");
    assert_int_equal(af_dockerignore_count(di), 2);
    assert_true(af_dockerignore_excluded(di, "a.log"));
    assert_false(af_dockerignore_excluded(di, "keep.log"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_pathological_pattern_is_linear(void **state)
{
    /* a backtracking matcher would take ages here */
    af_dockerignore_t *di = s_di("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b\n"
                                 "**/**/**/**/**/**/**/**/**/**/x\n");
    char path[3000];
    memset(path, 'a', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    assert_false(af_dockerignore_excluded(di, path));
    for (size_t i = 1; i < sizeof path - 1; i += 2)
        path[i] = '/';
    assert_false(af_dockerignore_excluded(di, path));
    af_dockerignore_destroy(&di);
}

static void dockerignore_lone_bang_is_parse_error_with_line(void **state)
{
    af_dockerignore_t *di = af_dockerignore_new();
    af_err_t err = {0};
    const char *t = "a\n# c\n!\n";
    assert_int_equal(af_dockerignore_parse(di, t, strlen(t), "ctx/.dockerignore", &err),
                     AF_ERR_PARSE);
    assert_non_null(strstr(err.msg, "ctx/.dockerignore:3:"));
    af_dockerignore_destroy(&di);
}

static void dockerignore_bad_pattern_is_parse_error(void **state)
{
    const char *bad[] = {"[abc\n", "x\\\n", "[]\n", "[z-a]\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_dockerignore_t *di = af_dockerignore_new();
        af_err_t err = {0};
        assert_int_equal(af_dockerignore_parse(di, bad[i], strlen(bad[i]), "f", &err),
                         AF_ERR_PARSE);
        assert_non_null(strstr(err.msg, "f:1:"));
        af_dockerignore_destroy(&di);
    }
}

static void dockerignore_oversized_input_is_toobig(void **state)
{
    size_t n = AF_DOCKERIGNORE_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, 'a', n);
    af_dockerignore_t *di = af_dockerignore_new();
    af_err_t err = {0};
    assert_int_equal(af_dockerignore_parse(di, big, n, "f", &err), AF_ERR_TOOBIG);
    af_dockerignore_destroy(&di);
    free(big);
}

static void dockerignore_load_missing_file_is_empty(void **state)
{
    af_dockerignore_t *di = af_dockerignore_new();
    af_err_t err = {0};
    assert_int_equal(af_dockerignore_load(di, "/nonexistent/.dockerignore", &err), 0);
    assert_int_equal(af_dockerignore_count(di), 0);
    af_dockerignore_destroy(&di);
}

static void dockerignore_load_reads_file(void **state)
{
    char path[] = "/tmp/af_di_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *t = "*.tmp\n!keep.tmp\n";
    assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
    close(fd);
    af_dockerignore_t *di = af_dockerignore_new();
    assert_int_equal(af_dockerignore_load(di, path, NULL), 0);
    assert_true(af_dockerignore_excluded(di, "x.tmp"));
    assert_false(af_dockerignore_excluded(di, "keep.tmp"));
    af_dockerignore_destroy(&di);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dockerignore_empty_excludes_nothing),
        cmocka_unit_test(dockerignore_comments_and_blank_lines_are_skipped),
        cmocka_unit_test(dockerignore_plain_name_matches_only_at_root),
        cmocka_unit_test(dockerignore_excluded_dir_excludes_everything_below),
        cmocka_unit_test(dockerignore_star_does_not_cross_slash),
        cmocka_unit_test(dockerignore_question_mark_matches_one_char),
        cmocka_unit_test(dockerignore_double_star_matches_any_depth),
        cmocka_unit_test(dockerignore_double_star_in_the_middle),
        cmocka_unit_test(dockerignore_trailing_double_star_matches_below_only),
        cmocka_unit_test(dockerignore_lone_double_star_matches_everything),
        cmocka_unit_test(dockerignore_bang_reincludes_and_later_wins),
        cmocka_unit_test(dockerignore_bang_reincludes_inside_excluded_dir),
        cmocka_unit_test(dockerignore_may_include_below_sees_globs_and_double_star),
        cmocka_unit_test(dockerignore_slashes_and_dots_are_cleaned),
        cmocka_unit_test(dockerignore_character_classes),
        cmocka_unit_test(dockerignore_backslash_escapes_a_metachar),
        cmocka_unit_test(dockerignore_bang_with_spaces_and_bom),
        cmocka_unit_test(dockerignore_pathological_pattern_is_linear),
        cmocka_unit_test(dockerignore_lone_bang_is_parse_error_with_line),
        cmocka_unit_test(dockerignore_bad_pattern_is_parse_error),
        cmocka_unit_test(dockerignore_oversized_input_is_toobig),
        cmocka_unit_test(dockerignore_load_missing_file_is_empty),
        cmocka_unit_test(dockerignore_load_reads_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
