/* test_recipe.c -- archfarm.yaml: every key, the shell form, scalar
 * text, safe copy paths, unknown/duplicate keys with their line:col,
 * malformed and oversized input. Data files live in $AF_TEST_DATA/recipe/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "limits.h"
#include "recipe.h"

static af_recipe_t *s_load(const char *yaml)
{
    af_err_t err;
    af_err_clear(&err);
    af_recipe_t *r = af_recipe_load_buffer("archfarm.yaml", yaml, strlen(yaml), &err);
    if (!r)
        fail_msg("load failed: %s", err.msg);
    return r;
}

static void s_fails_len(const char *yaml, size_t len, int code, const char *want, bool prefix)
{
    af_err_t err;
    af_err_clear(&err);
    af_recipe_t *r = af_recipe_load_buffer("archfarm.yaml", yaml, len, &err);
    if (r) {
        af_recipe_destroy(&r);
        fail_msg("expected failure \"%s\"", want);
    }
    if (prefix ? strncmp(err.msg, want, strlen(want)) : strcmp(err.msg, want))
        fail_msg("message\n  got:  %s\n  want: %s%s", err.msg, want, prefix ? "..." : "");
    if (code)
        assert_int_equal(err.code, code);
    else
        assert_true(err.code < 0);
}

static void s_fails(const char *yaml, int code, const char *want)
{
    s_fails_len(yaml, strlen(yaml), code, want, false);
}

static const char *s_data_path(const char *file)
{
    const char *dir = getenv("AF_TEST_DATA");
    static char path[1024];
    snprintf(path, sizeof path, "%s/recipe/%s", dir ? dir : "data", file);
    return path;
}

/* build.inputs: patterns per platform, with the copy srcs and the recipe
 * itself as literal paths; absent means the whole context. */
static void recipe_inputs_expand_per_platform(void **state)
{
    (void)state;
    af_recipe_t *r = s_load("build:\n"
                            "  run: make\n"
                            "  inputs: [src, 'bin/hello-${TARGETARCH}${TARGETVARIANT}',\n"
                            "           '${TARGETPLATFORM}/**', '$HOME']\n"
                            "image:\n"
                            "  copy: [{src: 'out/a*b', dest: /a}]\n");
    assert_true(r->has_inputs);
    assert_int_equal(r->n_inputs, 4);
    char **v = NULL;
    size_t n = 0;
    af_err_t err = {0};
    assert_int_equal(af_recipe_inputs_for(r, "linux", "arm", "v7", "sub/x.yaml", &v, &n, &err), 0);
    assert_int_equal(n, 6);
    assert_string_equal(v[0], "src");
    assert_string_equal(v[1], "bin/hello-armv7");
    assert_string_equal(v[2], "linux/arm/v7/**");
    assert_string_equal(v[3], "$HOME");     /* only ${TARGET*} is replaced */
    assert_string_equal(v[4], "out/a\\*b"); /* literal: its '*' escaped */
    assert_string_equal(v[5], "sub/x.yaml");
    assert_null(v[6]);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    af_recipe_destroy(&r);

    r = s_load("build: {run: make, inputs: []}\n");
    assert_true(r->has_inputs);
    assert_int_equal(r->n_inputs, 0);
    af_recipe_destroy(&r);
    r = s_load("build: {run: make}\n");
    assert_false(r->has_inputs);
    af_recipe_destroy(&r);
}

static void recipe_inputs_are_checked(void **state)
{
    (void)state;
    s_fails("build:\n  inputs: [/etc]\n", AF_ERR_UNSAFE,
            "archfarm.yaml:2:12: build.inputs: \"/etc\" must be relative to the context, not "
            "absolute");
    s_fails("build:\n  inputs: [a/../../b]\n", AF_ERR_UNSAFE,
            "archfarm.yaml:2:12: build.inputs: \"a/../../b\" must not contain \"..\"");
    s_fails("build:\n  inputs: ['bin/${ARCH}']\n", AF_ERR_INVAL,
            "archfarm.yaml:2:12: build.inputs: \"bin/${ARCH}\": unknown variable ${ARCH} (known: "
            "TARGETOS, TARGETARCH, TARGETVARIANT, TARGETPLATFORM)");
    s_fails("build:\n  inputs: ['bin/${TARGETARCH']\n", AF_ERR_INVAL,
            "archfarm.yaml:2:12: build.inputs: \"bin/${TARGETARCH\": unterminated ${");
    s_fails("build:\n  inputs: src\n", AF_ERR_INVAL,
            "archfarm.yaml:2:11: build.inputs: expected a list of patterns, got a string");
    s_fails("build:\n  inputs: ['']\n", 0, "archfarm.yaml:2:12: build.inputs: must not be empty");
    s_fails("build:\n  inputs: ['!secret']\n", AF_ERR_INVAL,
            "archfarm.yaml:2:12: build.inputs: \"!secret\": one pattern per item, and none "
            "starting with '!' (to leave files out, use .dockerignore)");
    const char *nl = "build:\n  inputs: [\"a\\nb\"]\n";
    s_fails_len(nl, strlen(nl), AF_ERR_INVAL,
                "archfarm.yaml:2:12: build.inputs: \"a?b\": one pattern", true);
    const char *cls = "build:\n  inputs: ['[z-a']\n";
    s_fails_len(cls, strlen(cls), AF_ERR_INVAL,
                "archfarm.yaml:2:12: build.inputs: \"[z-a\": pattern:1", true);
}

static void recipe_design_example_parses(void **state)
{
    (void)state;
    af_err_t err;
    af_err_clear(&err);
    af_recipe_t *r = af_recipe_load(s_data_path("archfarm.yaml"), &err);
    if (!r)
        fail_msg("%s", err.msg);
    assert_int_equal(r->n_build_env, 1);
    assert_string_equal(r->build_env[0].key, "CGO_ENABLED");
    assert_string_equal(r->build_env[0].value, "0");
    assert_string_equal(r->run, "go build -o out/hello .");
    assert_string_equal(r->from, "scratch");
    assert_int_equal(r->n_copy, 1);
    assert_string_equal(r->copy[0].src, "out/hello");
    assert_string_equal(r->copy[0].dest, "/hello");
    assert_true(r->has_entrypoint);
    assert_int_equal(r->n_entrypoint, 1);
    assert_string_equal(r->entrypoint[0], "/hello");
    assert_true(r->has_cmd); /* an explicit [] clears a base image's cmd */
    assert_int_equal(r->n_cmd, 0);
    assert_int_equal(r->n_env, 0);
    assert_string_equal(r->workdir, "/");
    assert_null(r->user);
    assert_int_equal(r->n_labels, 0);
    af_recipe_destroy(&r);
    assert_null(r);
    af_recipe_destroy(&r);
    af_recipe_destroy(NULL);
}

static void recipe_every_key_parses(void **state)
{
    (void)state;
    af_err_t err;
    af_err_clear(&err);
    af_recipe_t *r = af_recipe_load(s_data_path("full.yaml"), &err);
    if (!r)
        fail_msg("%s", err.msg);
    assert_int_equal(r->n_build_env, 2);
    assert_string_equal(r->build_env[1].key, "GOFLAGS");
    assert_string_equal(r->build_env[1].value, "-trimpath");
    assert_non_null(strstr(r->run, "echo \"building for $TARGETPLATFORM on $BUILDPLATFORM\"\n"));
    assert_string_equal(r->from, "docker.io/library/alpine:3.19");
    assert_int_equal(r->n_copy, 2);
    assert_string_equal(r->copy[1].src, "./config");
    assert_string_equal(r->copy[1].dest, "/etc/app/");
    assert_int_equal(r->n_entrypoint, 3);
    assert_string_equal(r->entrypoint[0], "/bin/sh");
    assert_string_equal(r->entrypoint[1], "-c");
    assert_string_equal(r->entrypoint[2], "/usr/local/bin/app --serve");
    assert_int_equal(r->n_cmd, 2);
    assert_string_equal(r->cmd[0], "--port");
    assert_string_equal(r->cmd[1], "8080");
    assert_int_equal(r->n_env, 2);
    assert_string_equal(r->env[1].key, "DEBUG");
    assert_string_equal(r->env[1].value, "false");
    assert_string_equal(r->workdir, "/srv");
    assert_string_equal(r->user, "1000:1000");
    assert_int_equal(r->n_labels, 2);
    assert_string_equal(r->labels[0].key, "org.opencontainers.image.source");
    assert_string_equal(r->labels[1].value, "1.2");
    af_recipe_destroy(&r);
}

static void recipe_missing_sections_take_defaults(void **state)
{
    (void)state;
    af_recipe_t *r = s_load("build:\n  run: make\n");
    assert_string_equal(r->run, "make");
    assert_string_equal(r->from, "scratch");
    assert_false(r->has_entrypoint);
    assert_false(r->has_cmd);
    assert_null(r->entrypoint);
    assert_int_equal(r->n_copy, 0);
    assert_null(r->workdir);
    af_recipe_destroy(&r);

    r = s_load("image:\n  from: alpine\n  cmd: ~\n  workdir:\nbuild:\n");
    assert_null(r->run);
    assert_string_equal(r->from, "alpine");
    assert_false(r->has_cmd);
    assert_null(r->workdir);
    af_recipe_destroy(&r);
}

static void recipe_string_entrypoint_and_cmd_use_the_shell(void **state)
{
    (void)state;
    af_recipe_t *r = s_load("image:\n  entrypoint: [/app, \"\"]\n");
    assert_int_equal(r->n_entrypoint, 2);
    assert_string_equal(r->entrypoint[1], ""); /* an empty argument is an argument */
    af_recipe_destroy(&r);
    s_fails("image:\n  cmd: ''\n", AF_ERR_INVAL, "archfarm.yaml:2:8: image.cmd: must not be empty");
    r = s_load("image:\n  entrypoint: exec /app \"$@\"\n  cmd: echo hi\n");
    assert_int_equal(r->n_entrypoint, 3);
    assert_string_equal(r->entrypoint[0], "/bin/sh");
    assert_string_equal(r->entrypoint[1], "-c");
    assert_string_equal(r->entrypoint[2], "exec /app \"$@\"");
    assert_int_equal(r->n_cmd, 3);
    assert_string_equal(r->cmd[2], "echo hi");
    af_recipe_destroy(&r);
}

static void recipe_scalars_keep_their_text(void **state)
{
    (void)state;
    af_recipe_t *r = s_load("build:\n"
                            "  env: {A: 1, B: 0x10, C: yes, D: 1.50, E: ~, F: '', G: \"x: y\"}\n"
                            "image:\n"
                            "  cmd: [1, true, 2.0]\n"
                            "  user: 1000\n");
    static const char *const want[][2] = {{"A", "1"}, {"B", "0x10"}, {"C", "yes"}, {"D", "1.50"},
                                          {"E", ""},  {"F", ""},     {"G", "x: y"}};
    assert_int_equal(r->n_build_env, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(r->build_env[i].key, want[i][0]);
        assert_string_equal(r->build_env[i].value, want[i][1]);
    }
    assert_string_equal(r->cmd[0], "1");
    assert_string_equal(r->cmd[1], "true");
    assert_string_equal(r->cmd[2], "2.0");
    assert_string_equal(r->user, "1000");
    af_recipe_destroy(&r);
}

static void recipe_copy_src_must_stay_inside_the_context(void **state)
{
    (void)state;
    s_fails("image:\n  copy:\n    - {src: /etc/passwd, dest: /passwd}\n", AF_ERR_UNSAFE,
            "archfarm.yaml:3:13: image.copy.src: \"/etc/passwd\" must be relative to the "
            "context, not absolute");
    s_fails("image:\n  copy:\n    - {src: ../secret, dest: /s}\n", AF_ERR_UNSAFE,
            "archfarm.yaml:3:13: image.copy.src: \"../secret\" must not contain \"..\"");
    s_fails("image:\n  copy:\n    - {src: a/../../b, dest: /s}\n", AF_ERR_UNSAFE,
            "archfarm.yaml:3:13: image.copy.src: \"a/../../b\" must not contain \"..\"");
    s_fails("image:\n  copy:\n    - {src: out/.., dest: /s}\n", AF_ERR_UNSAFE,
            "archfarm.yaml:3:13: image.copy.src: \"out/..\" must not contain \"..\"");
    s_fails("image:\n  copy:\n    - {src: \"\", dest: /s}\n", AF_ERR_INVAL,
            "archfarm.yaml:3:13: image.copy.src: must not be empty");
    /* names that merely contain dots are fine */
    af_recipe_t *r = s_load("image:\n  copy:\n    - {src: a..b/.hidden/..., dest: /x/..y}\n");
    assert_string_equal(r->copy[0].src, "a..b/.hidden/...");
    af_recipe_destroy(&r);
}

static void recipe_copy_dest_must_be_absolute(void **state)
{
    (void)state;
    s_fails("image:\n  copy:\n    - {src: a, dest: usr/bin/a}\n", AF_ERR_INVAL,
            "archfarm.yaml:3:22: image.copy.dest: \"usr/bin/a\" must be an absolute path in the "
            "image");
    s_fails("image:\n  copy:\n    - {src: a, dest: /usr/../etc/a}\n", AF_ERR_UNSAFE,
            "archfarm.yaml:3:22: image.copy.dest: \"/usr/../etc/a\" must not contain \"..\"");
}

static void recipe_copy_entries_are_checked(void **state)
{
    (void)state;
    s_fails("image:\n  copy:\n    - {src: a}\n", AF_ERR_INVAL,
            "archfarm.yaml:3:7: image.copy: entry needs both src and dest");
    s_fails("image:\n  copy:\n    - {src: a, dest: /a, mode: 0755}\n", AF_ERR_INVAL,
            "archfarm.yaml:3:26: image.copy: unknown key \"mode\" (expected src or dest)");
    s_fails("image:\n  copy:\n    - out/hello\n", AF_ERR_INVAL,
            "archfarm.yaml:3:7: image.copy: expected a mapping {src, dest}, got a string");
    s_fails("image:\n  copy: {src: a, dest: /a}\n", AF_ERR_INVAL,
            "archfarm.yaml:2:9: image.copy: expected a list of {src, dest}, got a mapping");
    s_fails("image:\n  copy:\n    - {src: [a], dest: /a}\n", AF_ERR_INVAL,
            "archfarm.yaml:3:13: image.copy.src: expected a string, got a list");
}

static void recipe_unknown_keys_are_errors_with_line_col(void **state)
{
    (void)state;
    af_err_t err;
    af_err_clear(&err);
    assert_null(af_recipe_load(s_data_path("typo.yaml"), &err));
    char want[1200];
    snprintf(want, sizeof want,
             "%s:6:3: image: unknown key \"comand\" (expected from, copy, entrypoint, cmd, env, "
             "workdir, user or labels)",
             s_data_path("typo.yaml"));
    assert_string_equal(err.msg, want);
    assert_int_equal(err.code, AF_ERR_INVAL);

    s_fails("build:\n  run: make\nimages:\n  from: x\n", AF_ERR_INVAL,
            "archfarm.yaml:3:1: recipe: unknown key \"images\" (expected build or image)");
    s_fails("build:\n  script: make\n", AF_ERR_INVAL,
            "archfarm.yaml:2:3: build: unknown key \"script\" (expected env, run or inputs)");
}

static void recipe_duplicate_keys_are_errors(void **state)
{
    (void)state;
    s_fails("build:\n  run: a\n  run: b\n", AF_ERR_INVAL,
            "archfarm.yaml:3:3: build: duplicate key \"run\"");
    s_fails("image:\n  env: {A: 1, A: 2}\n", AF_ERR_INVAL,
            "archfarm.yaml:2:15: image.env: duplicate key \"A\"");
    s_fails("image: {}\nimage: {}\n", AF_ERR_INVAL,
            "archfarm.yaml:2:1: recipe: duplicate key \"image\"");
}

static void recipe_wrong_types_are_errors(void **state)
{
    (void)state;
    s_fails("build: make\n", AF_ERR_INVAL,
            "archfarm.yaml:1:8: build: expected a mapping, got a string");
    s_fails("build:\n  run: [make, all]\n", AF_ERR_INVAL,
            "archfarm.yaml:2:8: build.run: expected a string, got a list");
    s_fails("build:\n  env: [A=1]\n", AF_ERR_INVAL,
            "archfarm.yaml:2:8: build.env: expected a mapping, got a list");
    s_fails("build:\n  env: {A: [1]}\n", AF_ERR_INVAL,
            "archfarm.yaml:2:12: build.env.A: expected a string, got a list");
    s_fails("image:\n  cmd: {a: b}\n", AF_ERR_INVAL,
            "archfarm.yaml:2:8: image.cmd: expected a list of strings or a string, got a "
            "mapping");
    s_fails("image:\n  entrypoint: [/a, [b]]\n", AF_ERR_INVAL,
            "archfarm.yaml:2:20: image.entrypoint: expected a string, got a list");
    s_fails("image:\n  entrypoint: [/a, ~]\n", AF_ERR_INVAL,
            "archfarm.yaml:2:20: image.entrypoint: expected a string, got null");
    s_fails("image:\n  from: [alpine]\n", AF_ERR_INVAL,
            "archfarm.yaml:2:9: image.from: expected a string, got a list");
    s_fails("image:\n  labels: {? [a] : b}\n", AF_ERR_INVAL,
            "archfarm.yaml:2:14: image.labels: expected a string key, got a list");
    s_fails("image:\n  user: {name: x}\n", AF_ERR_INVAL,
            "archfarm.yaml:2:9: image.user: expected a string, got a mapping");
}

static void recipe_env_keys_must_be_variable_names(void **state)
{
    (void)state;
    s_fails("build:\n  env: {\"A-B\": 1}\n", AF_ERR_INVAL,
            "archfarm.yaml:2:9: build.env: \"A-B\" is not a valid variable name");
    s_fails("image:\n  env: {1A: x}\n", AF_ERR_INVAL,
            "archfarm.yaml:2:9: image.env: \"1A\" is not a valid variable name");
    s_fails("image:\n  env: {\"\": x}\n", AF_ERR_INVAL, "archfarm.yaml:2:9: image.env: empty key");
    /* labels take any non-empty key */
    af_recipe_t *r = s_load("image:\n  labels: {\"a-b.c/d e\": x, _x: ~}\n");
    assert_int_equal(r->n_labels, 2);
    assert_string_equal(r->labels[0].key, "a-b.c/d e");
    assert_string_equal(r->labels[1].value, "");
    af_recipe_destroy(&r);
}

static void recipe_from_must_be_scratch_or_a_reference(void **state)
{
    (void)state;
    s_fails_len("image:\n  from: \"Alpine Linux\"\n", 29, AF_ERR_INVAL,
                "archfarm.yaml:2:9: image.from: ", true);
    s_fails("image:\n  from: ''\n", AF_ERR_INVAL,
            "archfarm.yaml:2:9: image.from: must not be empty");
    af_recipe_t *r = s_load("image:\n  from: localhost:5000/base/img@sha256:"
                            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
    assert_string_equal(r->from,
                        "localhost:5000/base/img@sha256:"
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    af_recipe_destroy(&r);
}

static void recipe_workdir_must_be_absolute(void **state)
{
    (void)state;
    s_fails("image:\n  workdir: srv\n", AF_ERR_INVAL,
            "archfarm.yaml:2:12: image.workdir: \"srv\" must be an absolute path");
}

static void recipe_empty_run_is_an_error(void **state)
{
    (void)state;
    s_fails("build:\n  run: \"  \\n\"\n", AF_ERR_INVAL,
            "archfarm.yaml:2:8: build.run: empty command");
}

static void recipe_empty_file_is_an_error(void **state)
{
    (void)state;
    const char *want = "archfarm.yaml:1:1: empty recipe (expected build: and image:)";
    s_fails("", AF_ERR_PARSE, want);
    s_fails("# just a comment\n", AF_ERR_PARSE, want);
    s_fails("---\n", AF_ERR_PARSE, want);
    s_fails("~\n", AF_ERR_PARSE, want);
    s_fails("- build\n", AF_ERR_PARSE,
            "archfarm.yaml:1:1: expected a mapping with build: and image:, got a list");
    s_fails("hello\n", AF_ERR_PARSE,
            "archfarm.yaml:1:1: expected a mapping with build: and image:, got a string");
    af_err_t err;
    assert_null(af_recipe_load_buffer(NULL, NULL, 0, &err));
    assert_string_equal(err.msg, "archfarm.yaml:1:1: empty recipe (expected build: and image:)");
}

static void recipe_malformed_yaml_is_an_error(void **state)
{
    (void)state;
    s_fails("build:\n\trun: make\n", AF_ERR_PARSE,
            "archfarm.yaml:2:1: YAML error: found character that cannot start any token (while "
            "scanning for the next token at line 2)");
    s_fails("build:\n  run: \"make\n", AF_ERR_PARSE,
            "archfarm.yaml:3:1: YAML error: found unexpected end of stream (while scanning a "
            "quoted scalar at line 2)");
    s_fails("build: {run: make\n", AF_ERR_PARSE,
            "archfarm.yaml:2:1: YAML error: did not find expected ',' or '}' (while parsing a "
            "flow mapping at line 1)");
    s_fails("image:\n  cmd: *nowhere\n", AF_ERR_PARSE,
            "archfarm.yaml:2:8: YAML error: found undefined alias");
    s_fails("a: 1\n---\nb: 2\n", AF_ERR_PARSE,
            "archfarm.yaml:2:1: more than one YAML document (a recipe is a single document)");
    static const char junk[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xfe";
    s_fails_len(junk, sizeof junk - 1, AF_ERR_PARSE, "archfarm.yaml:1:1: YAML error: ", true);
    s_fails_len("build:\n  run: a\0b\n", 17, AF_ERR_PARSE,
                "archfarm.yaml:2:9: YAML error: control characters are not allowed", false);
    s_fails("build:\n  run: \"a\\0b\"\n", AF_ERR_INVAL,
            "archfarm.yaml:2:8: build.run: contains a NUL byte");
    /* pseudo-random input never crashes */
    unsigned char buf[400];
    uint32_t x = 88172645u;
    static const char alphabet[] = "build:image:from:copy:src:dest:env:[]{}- ,\n\"'&*<>~";
    for (int round = 0; round < 300; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            buf[i] =
                round % 3 ? (unsigned char)alphabet[x % (sizeof alphabet - 1)] : (unsigned char)x;
        }
        af_err_t err;
        af_recipe_t *r = af_recipe_load_buffer("junk", (char *)buf, sizeof buf, &err);
        af_recipe_destroy(&r);
    }
}

static void recipe_deep_yaml_nesting_rejected_quickly(void **state)
{
    (void)state;
    size_t n = AF_RECIPE_MAX_BYTES - 16;
    char *yaml = malloc(n + 16);
    assert_non_null(yaml);
    memcpy(yaml, "image: ", 7);
    memset(yaml + 7, '[', n);
    s_fails_len(yaml, n + 7, AF_ERR_TOOBIG, "archfarm.yaml:1:23: YAML nested deeper than 16 levels",
                false);
    free(yaml);
}

static void recipe_aliases_share_nodes_and_merge_keys_are_rejected(void **state)
{
    (void)state;
    af_recipe_t *r = s_load("build:\n  env: &e {A: \"1\"}\nimage:\n  env: *e\n  labels: *e\n");
    assert_int_equal(r->n_env, 1);
    assert_string_equal(r->env[0].value, "1");
    assert_string_equal(r->labels[0].key, "A");
    af_recipe_destroy(&r);
    s_fails("image: &i\n  labels: *i\n", AF_ERR_INVAL,
            "archfarm.yaml:1:8: image.labels.labels: expected a string, got a mapping");
    s_fails("image:\n  copy: &c [*c]\n", AF_ERR_INVAL,
            "archfarm.yaml:2:9: image.copy: expected a mapping {src, dest}, got a list");
    s_fails("x: &x {a: 1}\nimage:\n  <<: *x\n", AF_ERR_INVAL,
            "archfarm.yaml:1:1: recipe: unknown key \"x\" (expected build or image)");
    s_fails("image:\n  env:\n    <<: {A: 1}\n", AF_ERR_INVAL,
            "archfarm.yaml:3:5: image.env: merge keys (<<) are not supported in recipes");
}

static void recipe_sizes_are_bounded(void **state)
{
    (void)state;
    size_t len = AF_RECIPE_MAX_BYTES + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, '#', len);
    af_err_t err;
    af_err_clear(&err);
    assert_null(af_recipe_load_buffer("big.yaml", big, len, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    assert_string_equal(err.msg,
                        "big.yaml: recipe is 1048577 bytes, more than the limit of 1048576 bytes");
    char path[] = "/tmp/af_recipe_big_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, big, len), (ssize_t)len);
    close(fd);
    assert_null(af_recipe_load(path, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    unlink(path);
    free(big);

    /* copy entries */
    char *yaml = malloc(64 * 1024);
    assert_non_null(yaml);
    size_t o = (size_t)sprintf(yaml, "image:\n  copy:\n");
    for (int i = 0; i <= AF_RECIPE_MAX_COPY; i++)
        o += (size_t)sprintf(yaml + o, "    - {src: f%d, dest: /f%d}\n", i, i);
    s_fails(yaml, AF_ERR_TOOBIG, "archfarm.yaml:3:5: image.copy: more than 256 entries");
    /* env entries */
    o = (size_t)sprintf(yaml, "image:\n  env:\n");
    for (int i = 0; i <= AF_RECIPE_MAX_ENTRIES; i++)
        o += (size_t)sprintf(yaml + o, "    V%d: x\n", i);
    s_fails(yaml, AF_ERR_TOOBIG, "archfarm.yaml:3:5: image.env: more than 256 entries");
    /* cmd items */
    o = (size_t)sprintf(yaml, "image:\n  cmd:\n");
    for (int i = 0; i <= AF_RECIPE_MAX_ENTRIES; i++)
        o += (size_t)sprintf(yaml + o, "    - a%d\n", i);
    s_fails(yaml, AF_ERR_TOOBIG, "archfarm.yaml:3:5: image.cmd: more than 256 items");
    /* one long value */
    o = (size_t)sprintf(yaml, "image:\n  user: ");
    memset(yaml + o, 'u', AF_MAX_NAME + 1);
    yaml[o + AF_MAX_NAME + 1] = '\0';
    s_fails(yaml, AF_ERR_TOOBIG, "archfarm.yaml:2:9: image.user: longer than 128 bytes");
    free(yaml);
}

static void recipe_load_reports_missing_files(void **state)
{
    (void)state;
    af_err_t err;
    af_err_clear(&err);
    assert_null(af_recipe_load(s_data_path("nope.yaml"), &err));
    assert_int_equal(err.code, AF_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "nope.yaml: No such file or directory"));
    assert_null(af_recipe_load("/", &err));
    assert_string_equal(err.msg, "/: not a regular file or a pipe");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recipe_design_example_parses),
        cmocka_unit_test(recipe_inputs_expand_per_platform),
        cmocka_unit_test(recipe_inputs_are_checked),
        cmocka_unit_test(recipe_every_key_parses),
        cmocka_unit_test(recipe_missing_sections_take_defaults),
        cmocka_unit_test(recipe_string_entrypoint_and_cmd_use_the_shell),
        cmocka_unit_test(recipe_scalars_keep_their_text),
        cmocka_unit_test(recipe_copy_src_must_stay_inside_the_context),
        cmocka_unit_test(recipe_copy_dest_must_be_absolute),
        cmocka_unit_test(recipe_copy_entries_are_checked),
        cmocka_unit_test(recipe_unknown_keys_are_errors_with_line_col),
        cmocka_unit_test(recipe_duplicate_keys_are_errors),
        cmocka_unit_test(recipe_wrong_types_are_errors),
        cmocka_unit_test(recipe_env_keys_must_be_variable_names),
        cmocka_unit_test(recipe_from_must_be_scratch_or_a_reference),
        cmocka_unit_test(recipe_workdir_must_be_absolute),
        cmocka_unit_test(recipe_empty_run_is_an_error),
        cmocka_unit_test(recipe_empty_file_is_an_error),
        cmocka_unit_test(recipe_malformed_yaml_is_an_error),
        cmocka_unit_test(recipe_deep_yaml_nesting_rejected_quickly),
        cmocka_unit_test(recipe_aliases_share_nodes_and_merge_keys_are_rejected),
        cmocka_unit_test(recipe_sizes_are_bounded),
        cmocka_unit_test(recipe_load_reports_missing_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
