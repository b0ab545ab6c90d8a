/* test_oci.c -- OCI config/manifest/index builders and parsers
 * (common/oci.c): deterministic bytes, validity against the OCI
 * image-spec schemas (tests/unit/data/oci/schema, via validate.py and
 * python3-jsonschema), base-config inheritance, hostile documents, and
 * platform selection from an index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci.h"

#define D(c) "sha256:" c c c c c c c c c c c c c c c c
#define DA D("aaaa")
#define DB D("bbbb")
#define DC D("cccc")
#define DD D("dddd")

static const char *s_data_dir(void)
{
    const char *d = getenv("AF_TEST_DATA");
    return d && *d ? d : "data";
}

/* 1 when python3 with jsonschema is there to check documents. */
static int s_have_validator(void)
{
    static int have = -1; /* test-local cache, not library state */
    if (have < 0)
        have = system("python3 -c 'import jsonschema' >/dev/null 2>&1") == 0;
    return have;
}

/* Validates BODY against the schema for KIND; fails the test if invalid. */
static void s_validate(const char *kind, const char *body, size_t len)
{
    if (!s_have_validator()) {
        print_message("SKIP schema validation: python3-jsonschema not installed\n");
        return;
    }
    char path[] = "/tmp/af_oci_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, body, len), (ssize_t)len);
    close(fd);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s/oci/validate.py' '%s/oci/schema' %s '%s'", s_data_dir(),
             s_data_dir(), kind, path);
    int rc = system(cmd);
    unlink(path);
    if (rc != 0)
        fail_msg("%s does not validate against the OCI schema: %.*s", kind, (int)len, body);
}

static af_platform_t s_plat(const char *s)
{
    af_platform_t p;
    af_err_t err;
    if (af_platform_parse(s, &p, &err))
        fail_msg("platform %s: %s", s, err.msg);
    return p;
}

static af_descriptor_t s_desc(const char *mt, const char *digest, int64_t size, const char *plat)
{
    af_descriptor_t d;
    memset(&d, 0, sizeof d);
    snprintf(d.media_type, sizeof d.media_type, "%s", mt);
    snprintf(d.digest, sizeof d.digest, "%s", digest);
    d.size = size;
    if (plat) {
        d.has_platform = true;
        d.platform = s_plat(plat);
    }
    return d;
}

/* Guards the guard: a validator whose $refs did not resolve would pass
 * everything. */
static void oci_schema_validator_catches_invalid_documents(void **state)
{
    (void)state;
    if (!s_have_validator()) {
        print_message("SKIP: python3-jsonschema not installed\n");
        return;
    }
    const char *bad = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":"
                      "\"" DA "\",\"size\":\"1\"},\"layers\":[{\"mediaType\":\"a/b\","
                      "\"digest\":\"" DB "\",\"size\":1}]}";
    char path[] = "/tmp/af_oci_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "python3 '%s/oci/validate.py' '%s/oci/schema' manifest '%s' 2>/dev/null", s_data_dir(),
             s_data_dir(), path);
    int rc = system(cmd);
    unlink(path);
    assert_int_not_equal(rc, 0);
}

/* ---- config ---- */

static const char *const s_entry[] = {"/hello"};
static const char *const s_diff1[] = {DA};

static af_image_spec_t s_spec(const char *plat)
{
    af_image_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.platform = s_plat(plat);
    spec.created = 0;
    spec.entrypoint = s_entry;
    spec.n_entrypoint = 1;
    spec.set_entrypoint = true;
    spec.created_by = "archfarm native";
    return spec;
}

static void oci_config_from_scratch_is_exact_and_deterministic(void **state)
{
    (void)state;
    af_image_spec_t spec = s_spec("linux/arm/v7");
    size_t len1 = 0, len2 = 0;
    af_err_t err;
    char *a = af_oci_config_build(&spec, NULL, 0, s_diff1, 1, &len1, &err);
    char *b = af_oci_config_build(&spec, NULL, 0, s_diff1, 1, &len2, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(len1, len2);
    assert_memory_equal(a, b, len1);
    assert_string_equal(
        a, "{\"architecture\":\"arm\",\"config\":{\"Entrypoint\":[\"/hello\"],\"Env\":[\"PATH=/"
           "usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"]},\"created\":\"1970-"
           "01-01T00:00:00Z\",\"history\":[{\"comment\":\"archfarm\",\"created\":\"1970-01-01T00:"
           "00:00Z\",\"created_by\":\"archfarm native\"}],\"os\":\"linux\",\"rootfs\":{\"diff_"
           "ids\":[\"" DA "\"],\"type\":\"layers\"},\"variant\":\"v7\"}");
    assert_int_equal(strlen(a), len1);
    s_validate("config", a, len1);
    free(a);
    free(b);
}

static void oci_config_sets_all_recipe_fields(void **state)
{
    (void)state;
    static const char *const cmd[] = {"--port", "8080"};
    af_kv_t env[] = {{"GREETING", "hi there"}, {"PATH", "/app/bin:/usr/bin"}};
    af_kv_t labels[] = {{"org.opencontainers.image.title", "hello"}, {"a", "1"}};
    af_image_spec_t spec = s_spec("linux/amd64");
    spec.created = 1700000000;
    spec.cmd = cmd;
    spec.n_cmd = 2;
    spec.set_cmd = true;
    spec.env = env;
    spec.n_env = 2;
    spec.workdir = "/app";
    spec.user = "1000:1000";
    spec.labels = labels;
    spec.n_labels = 2;
    static const char *const ids[] = {DA, DB};
    size_t len;
    af_err_t err;
    char *c = af_oci_config_build(&spec, NULL, 0, ids, 2, &len, &err);
    if (!c)
        fail_msg("%s", err.msg);
    s_validate("config", c, len);
    assert_non_null(strstr(c, "\"created\":\"2023-11-14T22:13:20Z\""));
    assert_non_null(strstr(c, "\"Cmd\":[\"--port\",\"8080\"]"));
    assert_non_null(strstr(c, "\"Env\":[\"PATH=/app/bin:/usr/bin\",\"GREETING=hi there\"]"));
    assert_non_null(strstr(c, "\"WorkingDir\":\"/app\""));
    assert_non_null(strstr(c, "\"User\":\"1000:1000\""));
    assert_non_null(strstr(c, "\"Labels\":{\"a\":\"1\",\"org.opencontainers.image.title\":"
                              "\"hello\"}"));
    assert_non_null(strstr(c, "\"diff_ids\":[\"" DA "\",\"" DB "\"]"));
    assert_null(strstr(c, "variant"));
    assert_null(strstr(c, "empty_layer"));
    free(c);
}

static void oci_config_without_layers_has_an_empty_layer_history(void **state)
{
    (void)state;
    af_image_spec_t spec = s_spec("linux/arm64");
    spec.created_by = NULL;
    size_t len;
    char *c = af_oci_config_build(&spec, NULL, 0, NULL, 0, &len, NULL);
    assert_non_null(c);
    s_validate("config", c, len);
    assert_non_null(strstr(c, "\"history\":[{\"comment\":\"archfarm\",\"created\":\"1970-01-01T"
                              "00:00:00Z\",\"empty_layer\":true}]"));
    assert_non_null(strstr(c, "\"diff_ids\":[]"));
    free(c);
}

static const char s_base[] =
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2020-01-01T00:00:00Z\","
    "\"author\":\"someone\",\"docker_version\":\"20.10\","
    "\"config\":{\"Env\":[\"PATH=/usr/bin\",\"LANG=C.UTF-8\"],\"Cmd\":[\"/bin/sh\"],"
    "\"ExposedPorts\":{\"80/tcp\":{}},\"WorkingDir\":\"/srv\",\"User\":\"nobody\","
    "\"Labels\":{\"base\":\"yes\",\"a\":\"base\"},\"StopSignal\":\"SIGQUIT\"},"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DC "\",\"" DD "\"]},"
    "\"history\":[{\"created_by\":\"ADD rootfs\"},{\"created_by\":\"RUN x\"}]}";

static void oci_config_extends_base_keeping_its_fields(void **state)
{
    (void)state;
    af_kv_t env[] = {{"LANG", "en_US.UTF-8"}, {"NEW", "1"}};
    af_kv_t labels[] = {{"a", "mine"}};
    af_image_spec_t spec = s_spec("linux/amd64");
    spec.set_entrypoint = false;
    spec.env = env;
    spec.n_env = 2;
    spec.labels = labels;
    spec.n_labels = 1;
    size_t len;
    af_err_t err;
    char *c = af_oci_config_build(&spec, s_base, strlen(s_base), s_diff1, 1, &len, &err);
    if (!c)
        fail_msg("%s", err.msg);
    s_validate("config", c, len);
    assert_non_null(strstr(c, "\"Env\":[\"PATH=/usr/bin\",\"LANG=en_US.UTF-8\",\"NEW=1\"]"));
    assert_non_null(strstr(c, "\"Cmd\":[\"/bin/sh\"]"));
    assert_non_null(strstr(c, "\"ExposedPorts\":{\"80/tcp\":{}}"));
    assert_non_null(strstr(c, "\"StopSignal\":\"SIGQUIT\""));
    assert_non_null(strstr(c, "\"WorkingDir\":\"/srv\""));
    assert_non_null(strstr(c, "\"User\":\"nobody\""));
    assert_non_null(strstr(c, "\"Labels\":{\"a\":\"mine\",\"base\":\"yes\"}"));
    assert_non_null(strstr(c, "\"diff_ids\":[\"" DC "\",\"" DD "\",\"" DA "\"]"));
    assert_non_null(strstr(c, "\"history\":[{\"created_by\":\"ADD rootfs\"},{\"created_by\":"
                              "\"RUN x\"},{\"comment\":\"archfarm\""));
    assert_non_null(strstr(c, "\"created\":\"1970-01-01T00:00:00Z\""));
    assert_null(strstr(c, "docker_version"));
    free(c);
}

static void oci_config_entrypoint_over_base_drops_its_cmd(void **state)
{
    (void)state;
    af_image_spec_t spec = s_spec("linux/amd64");
    spec.workdir = "";
    spec.user = "";
    size_t len;
    char *c = af_oci_config_build(&spec, s_base, strlen(s_base), s_diff1, 1, &len, NULL);
    assert_non_null(c);
    assert_non_null(strstr(c, "\"Entrypoint\":[\"/hello\"]"));
    assert_null(strstr(c, "\"Cmd\""));
    assert_null(strstr(c, "WorkingDir"));
    assert_null(strstr(c, "\"User\""));
    free(c);
}

static void oci_config_rejects_bad_inputs(void **state)
{
    (void)state;
    af_image_spec_t spec = s_spec("linux/amd64");
    af_err_t err;
    size_t len;
    static const char *const bad_ids[] = {"sha256:xyz"};
    assert_null(af_oci_config_build(&spec, NULL, 0, bad_ids, 1, &len, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "diff_ids[0]"));

    spec.created = -5;
    assert_null(af_oci_config_build(&spec, NULL, 0, s_diff1, 1, &len, &err));
    assert_non_null(strstr(err.msg, "out of range"));
    spec.created = 253402300800LL; /* year 10000 */
    assert_null(af_oci_config_build(&spec, NULL, 0, s_diff1, 1, &len, &err));
    assert_non_null(strstr(err.msg, "out of range"));
    spec.created = 253402300799LL;
    char *c = af_oci_config_build(&spec, NULL, 0, s_diff1, 1, &len, &err);
    assert_non_null(c);
    assert_non_null(strstr(c, "\"9999-12-31T23:59:59Z\""));
    free(c);
    spec.created = 0;

    af_kv_t env[] = {{"A=B", "x"}};
    spec.env = env;
    spec.n_env = 1;
    assert_null(af_oci_config_build(&spec, NULL, 0, s_diff1, 1, &len, &err));
    assert_non_null(strstr(err.msg, "env[0]"));
    spec.env = NULL;
    spec.n_env = 0;

    assert_null(af_oci_config_build(&spec, "{\"config\":", 10, s_diff1, 1, &len, &err));
    assert_int_equal(err.code, AF_ERR_PARSE);
    assert_non_null(strstr(err.msg, "base image config"));
    const char *wrong = "{\"config\":[1]}";
    assert_null(af_oci_config_build(&spec, wrong, strlen(wrong), s_diff1, 1, &len, &err));
    assert_non_null(strstr(err.msg, "\"config\" is not an object"));
    wrong = "{\"rootfs\":{\"diff_ids\":\"x\"}}";
    assert_null(af_oci_config_build(&spec, wrong, strlen(wrong), s_diff1, 1, &len, &err));
    assert_non_null(strstr(err.msg, "rootfs.diff_ids"));
    wrong = "{\"config\":{\"Env\":{}}}";
    assert_null(af_oci_config_build(&spec, wrong, strlen(wrong), s_diff1, 1, &len, &err));
    assert_non_null(strstr(err.msg, "config.Env"));
    assert_null(af_oci_config_build(&spec, s_base, (size_t)AF_CONFIG_MAX_BYTES + 1, s_diff1, 1,
                                    &len, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    memset(&spec.platform, 0, sizeof spec.platform);
    assert_null(af_oci_config_build(&spec, NULL, 0, s_diff1, 1, &len, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
}

/* ---- manifest and index ---- */

static void oci_manifest_is_exact_and_valid(void **state)
{
    (void)state;
    af_descriptor_t cfg = s_desc(AF_MT_OCI_CONFIG, DA, 123, NULL);
    af_descriptor_t layers[] = {s_desc(AF_MT_OCI_LAYER_GZIP, DB, 4567, NULL),
                                s_desc(AF_MT_OCI_LAYER_GZIP, DC, 0, NULL)};
    af_kv_t ann[] = {{"org.opencontainers.image.created", "1970-01-01T00:00:00Z"}};
    size_t len;
    af_err_t err;
    char *m = af_oci_manifest_build(&cfg, layers, 2, ann, 1, &len, &err);
    if (!m)
        fail_msg("%s", err.msg);
    assert_string_equal(
        m, "{\"annotations\":{\"org.opencontainers.image.created\":\"1970-01-01T00:00:00Z\"},"
           "\"config\":{\"digest\":\"" DA "\",\"mediaType\":\"" AF_MT_OCI_CONFIG "\",\"size\":"
           "123},\"layers\":[{\"digest\":\"" DB "\",\"mediaType\":\"" AF_MT_OCI_LAYER_GZIP
           "\",\"size\":4567},{\"digest\":\"" DC "\",\"mediaType\":\"" AF_MT_OCI_LAYER_GZIP
           "\",\"size\":0}],\"mediaType\":\"" AF_MT_OCI_MANIFEST "\",\"schemaVersion\":2}");
    s_validate("manifest", m, len);
    /* and it parses back */
    af_oci_doc_t *doc = af_oci_doc_parse(m, len, NULL, &err);
    assert_non_null(doc);
    assert_false(doc->is_index);
    assert_int_equal(doc->n_layers, 2);
    assert_string_equal(doc->config.digest, DA);
    assert_int_equal(doc->layers[0].size, 4567);
    af_oci_doc_destroy(&doc);
    assert_null(doc);
    af_oci_doc_destroy(&doc);
    free(m);
}

static void oci_manifest_rejects_bad_descriptors(void **state)
{
    (void)state;
    af_descriptor_t cfg = s_desc(AF_MT_OCI_CONFIG, DA, 1, NULL);
    af_descriptor_t bad = s_desc(AF_MT_OCI_LAYER_GZIP, "sha256:nothex", 1, NULL);
    af_err_t err;
    size_t len;
    assert_null(af_oci_manifest_build(&cfg, &bad, 1, NULL, 0, &len, &err));
    assert_non_null(strstr(err.msg, "layers[0]"));
    bad = s_desc(AF_MT_OCI_LAYER_GZIP, DB, -1, NULL);
    assert_null(af_oci_manifest_build(&cfg, &bad, 1, NULL, 0, &len, &err));
    assert_non_null(strstr(err.msg, "negative size"));
    bad = s_desc("", DB, 1, NULL);
    assert_null(af_oci_manifest_build(&bad, NULL, 0, NULL, 0, &len, &err));
    assert_non_null(strstr(err.msg, "config"));
    af_kv_t ann[] = {{"", "x"}};
    assert_null(af_oci_manifest_build(&cfg, NULL, 0, ann, 1, &len, &err));
    assert_non_null(strstr(err.msg, "annotations"));
}

static void oci_index_is_exact_and_valid(void **state)
{
    (void)state;
    af_descriptor_t m[] = {s_desc(AF_MT_OCI_MANIFEST, DA, 500, "linux/amd64"),
                           s_desc(AF_MT_OCI_MANIFEST, DB, 501, "linux/arm64"),
                           s_desc(AF_MT_OCI_MANIFEST, DC, 502, "linux/arm/v7")};
    size_t len, len2;
    af_err_t err;
    char *ix = af_oci_index_build(m, 3, NULL, 0, &len, &err);
    char *ix2 = af_oci_index_build(m, 3, NULL, 0, &len2, &err);
    assert_non_null(ix);
    assert_non_null(ix2);
    assert_int_equal(len, len2);
    assert_memory_equal(ix, ix2, len);
    assert_string_equal(
        ix, "{\"manifests\":[{\"digest\":\"" DA "\",\"mediaType\":\"" AF_MT_OCI_MANIFEST
            "\",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"size\":500},"
            "{\"digest\":\"" DB "\",\"mediaType\":\"" AF_MT_OCI_MANIFEST
            "\",\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"},\"size\":501},"
            "{\"digest\":\"" DC "\",\"mediaType\":\"" AF_MT_OCI_MANIFEST
            "\",\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"},"
            "\"size\":502}],\"mediaType\":\"" AF_MT_OCI_INDEX "\",\"schemaVersion\":2}");
    s_validate("index", ix, len);
    free(ix2);
    af_kv_t ann[] = {{"org.opencontainers.image.ref.name", "v1"}};
    ix2 = af_oci_index_build(m, 1, ann, 1, &len2, &err);
    assert_non_null(ix2);
    s_validate("index", ix2, len2);
    free(ix2);

    af_oci_doc_t *doc = af_oci_doc_parse(ix, len, NULL, &err);
    assert_non_null(doc);
    assert_true(doc->is_index);
    assert_int_equal(doc->n_manifests, 3);
    assert_true(doc->manifests[2].has_platform);
    assert_string_equal(doc->manifests[2].platform.variant, "v7");
    af_oci_doc_destroy(&doc);
    free(ix);
}

static void oci_index_entries_need_a_platform(void **state)
{
    (void)state;
    af_descriptor_t m[] = {s_desc(AF_MT_OCI_MANIFEST, DA, 500, "linux/amd64"),
                           s_desc(AF_MT_OCI_MANIFEST, DB, 501, NULL)};
    af_err_t err;
    size_t len;
    assert_null(af_oci_index_build(m, 2, NULL, 0, &len, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "manifests[1]"));
    assert_non_null(strstr(err.msg, "no platform"));
}

static void oci_docker_list_lists_only_docker_v2_manifests(void **state)
{
    (void)state;
    af_descriptor_t m[] = {s_desc(AF_MT_DOCKER_MANIFEST, DA, 500, "linux/amd64"),
                           s_desc(AF_MT_DOCKER_MANIFEST, DB, 501, "linux/arm64")};
    af_err_t err;
    size_t len = 0;
    char *body = af_oci_docker_list_build(m, 2, &len, &err);
    assert_non_null(body);
    af_oci_doc_t *doc = af_oci_doc_parse(body, len, NULL, &err);
    assert_non_null(doc);
    assert_string_equal(doc->media_type, AF_MT_DOCKER_LIST);
    assert_true(doc->is_index);
    assert_int_equal(doc->n_manifests, 2);
    assert_string_equal(doc->manifests[1].media_type, AF_MT_DOCKER_MANIFEST);
    af_oci_doc_destroy(&doc);
    free(body);
    m[1] = s_desc(AF_MT_OCI_MANIFEST, DB, 501, "linux/arm64");
    assert_null(af_oci_docker_list_build(m, 2, &len, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "manifests[1]"));
    assert_non_null(strstr(err.msg, "not a Docker v2 manifest"));
}

static void oci_docker_manifest_needs_docker_config_and_gzip_layers(void **state)
{
    (void)state;
    af_descriptor_t cfg = s_desc(AF_MT_DOCKER_CONFIG, DA, 100, NULL);
    af_descriptor_t l[] = {s_desc(AF_MT_DOCKER_LAYER_GZIP, DB, 200, NULL)};
    af_err_t err;
    size_t len = 0;
    char *body = af_oci_docker_manifest_build(&cfg, l, 1, &len, &err);
    assert_non_null(body);
    af_oci_doc_t *doc = af_oci_doc_parse(body, len, NULL, &err);
    assert_non_null(doc);
    assert_string_equal(doc->media_type, AF_MT_DOCKER_MANIFEST);
    assert_string_equal(doc->config.media_type, AF_MT_DOCKER_CONFIG);
    af_oci_doc_destroy(&doc);
    free(body);
    l[0] = s_desc("application/vnd.oci.image.layer.v1.tar+zstd", DB, 200, NULL);
    assert_null(af_oci_docker_manifest_build(&cfg, l, 1, &len, &err));
    assert_non_null(strstr(err.msg, "layers[0]"));
    cfg = s_desc(AF_MT_OCI_CONFIG, DA, 100, NULL);
    assert_null(af_oci_docker_manifest_build(&cfg, NULL, 0, &len, &err));
    assert_non_null(strstr(err.msg, "config is"));
}

/* ---- parsing hostile documents ---- */

#define CFG "{\"mediaType\":\"" AF_MT_DOCKER_CONFIG "\",\"digest\":\"" DA "\",\"size\":10}"
#define LAYER "{\"mediaType\":\"" AF_MT_DOCKER_LAYER_GZIP "\",\"digest\":\"" DB "\",\"size\":20}"

static void oci_parse_accepts_docker_manifest_and_list(void **state)
{
    (void)state;
    const char *m = "{\"schemaVersion\":2,\"mediaType\":\"" AF_MT_DOCKER_MANIFEST
                    "\",\"config\":" CFG ",\"layers\":[" LAYER "," LAYER "]}";
    af_err_t err;
    af_oci_doc_t *doc = af_oci_doc_parse(m, strlen(m), NULL, &err);
    if (!doc)
        fail_msg("%s", err.msg);
    assert_string_equal(doc->media_type, AF_MT_DOCKER_MANIFEST);
    assert_false(doc->is_index);
    assert_int_equal(doc->n_layers, 2);
    assert_int_equal(doc->config.size, 10);
    assert_string_equal(doc->layers[1].media_type, AF_MT_DOCKER_LAYER_GZIP);
    af_oci_doc_destroy(&doc);

    const char *l =
        "{\"schemaVersion\":2,\"mediaType\":\"" AF_MT_DOCKER_LIST "\",\"manifests\":["
        "{\"mediaType\":\"" AF_MT_DOCKER_MANIFEST "\",\"digest\":\"" DC "\",\"size\":7,"
        "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
        "{\"mediaType\":\"" AF_MT_DOCKER_MANIFEST "\",\"digest\":\"" DD "\",\"size\":7,"
        "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}]}";
    doc = af_oci_doc_parse(l, strlen(l), NULL, &err);
    if (!doc)
        fail_msg("%s", err.msg);
    assert_true(doc->is_index);
    assert_int_equal(doc->n_manifests, 2);
    assert_true(doc->manifests[0].has_platform);
    assert_string_equal(doc->manifests[0].platform.arch, "arm64");
    assert_string_equal(doc->manifests[0].platform.variant, "");
    /* an attestation entry is kept but has no usable platform */
    assert_false(doc->manifests[1].has_platform);
    af_oci_doc_destroy(&doc);
}

static void oci_parse_media_type_from_content_type_or_shape(void **state)
{
    (void)state;
    const char *m = "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[]}";
    af_oci_doc_t *doc =
        af_oci_doc_parse(m, strlen(m), AF_MT_DOCKER_MANIFEST "; charset=utf-8", NULL);
    assert_non_null(doc);
    assert_string_equal(doc->media_type, AF_MT_DOCKER_MANIFEST);
    assert_int_equal(doc->n_layers, 0);
    af_oci_doc_destroy(&doc);
    doc = af_oci_doc_parse(m, strlen(m), "application/json", NULL);
    assert_non_null(doc);
    assert_string_equal(doc->media_type, AF_MT_OCI_MANIFEST);
    af_oci_doc_destroy(&doc);
    const char *ix = "{\"schemaVersion\":2,\"manifests\":[]}";
    doc = af_oci_doc_parse(ix, strlen(ix), NULL, NULL);
    assert_non_null(doc);
    assert_true(doc->is_index);
    assert_int_equal(doc->n_manifests, 0);
    af_oci_doc_destroy(&doc);
}

typedef struct {
    const char *body;
    int code;
    const char *why;
} bad_doc_t;

static void oci_parse_rejects_malformed_documents(void **state)
{
    (void)state;
    static const bad_doc_t cases[] = {
        {"", AF_ERR_PARSE, "invalid JSON"},
        {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[" LAYER, AF_ERR_PARSE,
         "invalid JSON"},
        {"[]", AF_ERR_PARSE, "not a JSON object"},
        {"{\"config\":" CFG ",\"layers\":[]}", AF_ERR_PARSE, "missing schemaVersion"},
        {"{\"schemaVersion\":1,\"config\":" CFG ",\"layers\":[]}", AF_ERR_UNSUPPORTED,
         "schemaVersion"},
        {"{\"schemaVersion\":\"2\",\"config\":" CFG ",\"layers\":[]}", AF_ERR_UNSUPPORTED,
         "schemaVersion"},
        {"{\"schemaVersion\":2,\"mediaType\":7,\"config\":" CFG ",\"layers\":[]}", AF_ERR_PARSE,
         "mediaType: not a string"},
        {"{\"schemaVersion\":2,\"mediaType\":\"text/plain\",\"config\":" CFG ",\"layers\":[]}",
         AF_ERR_UNSUPPORTED, "unsupported mediaType"},
        {"{\"schemaVersion\":2,\"layers\":[]}", AF_ERR_PARSE, "neither"},
        {"{\"schemaVersion\":2,\"mediaType\":\"" AF_MT_OCI_MANIFEST "\",\"layers\":[]}",
         AF_ERR_PARSE, "missing \"config\""},
        {"{\"schemaVersion\":2,\"config\":" CFG "}", AF_ERR_PARSE, "missing \"layers\""},
        {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":{}}", AF_ERR_PARSE,
         "\"layers\" is not an array"},
        {"{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[1]}", AF_ERR_PARSE,
         "layers[0]: not an object"},
        {"{\"schemaVersion\":2,\"config\":\"x\",\"layers\":[]}", AF_ERR_PARSE,
         "config: not an object"},
        {"{\"schemaVersion\":2,\"config\":{\"digest\":\"" DA "\",\"size\":1},\"layers\":[]}",
         AF_ERR_PARSE, "config: missing mediaType"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"size\":1},\"layers\":[]}",
         AF_ERR_PARSE, "config: missing digest"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" DA
         "\"},\"layers\":[]}",
         AF_ERR_PARSE, "config: missing size"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" DA
         "\",\"size\":\"1\"},\"layers\":[]}",
         AF_ERR_PARSE, "size is not an integer"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" DA
         "\",\"size\":1e30},\"layers\":[]}",
         AF_ERR_PARSE, "size is not an integer"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" DA
         "\",\"size\":99999999999999999999999},\"layers\":[]}",
         AF_ERR_PARSE, "invalid JSON"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" DA
         "\",\"size\":-1},\"layers\":[]}",
         AF_ERR_PARSE, "negative size"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":5,\"size\":1},"
         "\"layers\":[]}",
         AF_ERR_PARSE, "digest: not a string"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha512:abcd\","
         "\"size\":1},\"layers\":[]}",
         AF_ERR_PARSE, "unsupported digest"},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" DA
         "\",\"digest\":\"" DB "\",\"size\":1},\"layers\":[]}",
         AF_ERR_PARSE, "duplicate"},
        {"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" DA
         "\",\"size\":1,\"platform\":\"linux/amd64\"}]}",
         AF_ERR_PARSE, "manifests[0].platform: not an object"},
        {"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" DA
         "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
         AF_ERR_PARSE, "missing architecture"},
        {"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" DA
         "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":[]}}]}",
         AF_ERR_PARSE, "architecture: not a string"},
        {"{\"schemaVersion\":2,\"manifests\":7}", AF_ERR_PARSE, "not an array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        af_err_t err;
        af_err_clear(&err);
        af_oci_doc_t *doc = af_oci_doc_parse(cases[i].body, strlen(cases[i].body), NULL, &err);
        if (doc)
            fail_msg("case %zu accepted: %s", i, cases[i].body);
        if (err.code != cases[i].code || !strstr(err.msg, cases[i].why))
            fail_msg("case %zu: code %d message '%s', wanted %d '%s'", i, err.code, err.msg,
                     cases[i].code, cases[i].why);
    }
}

static void oci_parse_refuses_oversized_bodies(void **state)
{
    (void)state;
    size_t n = (size_t)AF_MANIFEST_MAX_BYTES + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    af_err_t err;
    assert_null(af_oci_doc_parse(big, n, NULL, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    af_platform_t p;
    assert_int_equal(af_oci_config_platform(
                         big,
                         (size_t)AF_CONFIG_MAX_BYTES + 1 > n ? n : (size_t)AF_CONFIG_MAX_BYTES + 1,
                         &p, &err),
                     (size_t)AF_CONFIG_MAX_BYTES + 1 > n ? AF_ERR_PARSE : AF_ERR_TOOBIG);
    free(big);
    assert_null(af_oci_doc_parse(NULL, 0, NULL, &err));
}

/* ---- selection and config platform ---- */

static const char s_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" AF_MT_OCI_INDEX "\",\"manifests\":["
    "{\"mediaType\":\"" AF_MT_OCI_MANIFEST "\",\"digest\":\"" DA "\",\"size\":1,"
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"" AF_MT_OCI_MANIFEST "\",\"digest\":\"" DB "\",\"size\":1,"
    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"" AF_MT_OCI_MANIFEST "\",\"digest\":\"" DC "\",\"size\":1,"
    "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}},"
    "{\"mediaType\":\"" AF_MT_OCI_MANIFEST "\",\"digest\":\"" DD "\",\"size\":1,"
    "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\"}}]}";

static void oci_index_select_prefers_exact_then_variantless(void **state)
{
    (void)state;
    af_err_t err;
    af_oci_doc_t *doc = af_oci_doc_parse(s_index, strlen(s_index), NULL, &err);
    if (!doc)
        fail_msg("%s", err.msg);
    af_platform_t p = s_plat("linux/amd64");
    const af_descriptor_t *d = af_oci_index_select(doc, &p);
    assert_non_null(d);
    assert_string_equal(d->digest, DA);
    p = s_plat("linux/arm64");
    d = af_oci_index_select(doc, &p);
    assert_non_null(d);
    assert_string_equal(d->digest, DB); /* arm64/v8 == arm64 */
    p = s_plat("linux/arm64/v8");
    assert_string_equal(af_oci_index_select(doc, &p)->digest, DB);
    p = s_plat("linux/arm/v6");
    assert_string_equal(af_oci_index_select(doc, &p)->digest, DC);
    p = s_plat("linux/arm/v7"); /* no v7 entry: the variant-less arm one */
    assert_string_equal(af_oci_index_select(doc, &p)->digest, DD);
    p = s_plat("linux/ppc64le");
    assert_null(af_oci_index_select(doc, &p));
    af_oci_doc_destroy(&doc);

    const char *m = "{\"schemaVersion\":2,\"config\":" CFG ",\"layers\":[]}";
    doc = af_oci_doc_parse(m, strlen(m), NULL, &err);
    assert_non_null(doc);
    p = s_plat("linux/amd64");
    assert_null(af_oci_index_select(doc, &p));
    af_oci_doc_destroy(&doc);
    assert_null(af_oci_index_select(NULL, &p));
}

static void oci_index_select_skips_nested_indexes(void **state)
{
    (void)state;
    const char *ix = "{\"schemaVersion\":2,\"manifests\":["
                     "{\"mediaType\":\"" AF_MT_OCI_INDEX "\",\"digest\":\"" DA "\",\"size\":1,"
                     "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
                     "{\"mediaType\":\"" AF_MT_OCI_MANIFEST "\",\"digest\":\"" DB "\",\"size\":1,"
                     "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}";
    af_oci_doc_t *doc = af_oci_doc_parse(ix, strlen(ix), NULL, NULL);
    assert_non_null(doc);
    af_platform_t p = s_plat("linux/amd64");
    assert_string_equal(af_oci_index_select(doc, &p)->digest, DB);
    af_oci_doc_destroy(&doc);
}

static void oci_config_platform_reads_and_normalises(void **state)
{
    (void)state;
    af_platform_t p;
    af_err_t err;
    const char *c = "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}";
    assert_int_equal(af_oci_config_platform(c, strlen(c), &p, &err), 0);
    assert_string_equal(p.arch, "arm64");
    assert_string_equal(p.variant, "");
    c = "{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\",\"rootfs\":{}}";
    assert_int_equal(af_oci_config_platform(c, strlen(c), &p, &err), 0);
    assert_string_equal(p.variant, "v7");
    /* a config we built reads back as its platform */
    af_image_spec_t spec = s_spec("linux/arm/v7");
    size_t len;
    char *built = af_oci_config_build(&spec, NULL, 0, s_diff1, 1, &len, NULL);
    assert_int_equal(af_oci_config_platform(built, len, &p, &err), 0);
    af_platform_t want = s_plat("linux/arm/v7");
    assert_true(af_platform_equal(&p, &want));
    free(built);

    c = "{\"architecture\":\"amd64\"}";
    assert_int_equal(af_oci_config_platform(c, strlen(c), &p, &err), AF_ERR_PARSE);
    assert_non_null(strstr(err.msg, "missing os"));
    c = "{\"architecture\":1,\"os\":\"linux\"}";
    assert_int_equal(af_oci_config_platform(c, strlen(c), &p, &err), AF_ERR_PARSE);
    assert_non_null(strstr(err.msg, "architecture: not a string"));
    c = "{\"architecture\":\"z80\",\"os\":\"linux\"}";
    assert_int_equal(af_oci_config_platform(c, strlen(c), &p, &err), AF_ERR_PARSE);
    assert_non_null(strstr(err.msg, "z80"));
    c = "{\"architecture\":";
    assert_int_equal(af_oci_config_platform(c, strlen(c), &p, &err), AF_ERR_PARSE);
    c = "\"x\"";
    assert_int_equal(af_oci_config_platform(c, strlen(c), &p, &err), AF_ERR_PARSE);
}

static void oci_media_type_predicates(void **state)
{
    (void)state;
    assert_true(af_oci_is_index(AF_MT_OCI_INDEX));
    assert_true(af_oci_is_index(AF_MT_DOCKER_LIST));
    assert_false(af_oci_is_index(AF_MT_OCI_MANIFEST));
    assert_false(af_oci_is_index(NULL));
    assert_true(af_oci_is_manifest(AF_MT_OCI_MANIFEST));
    assert_true(af_oci_is_manifest(AF_MT_DOCKER_MANIFEST));
    assert_false(af_oci_is_manifest(AF_MT_OCI_CONFIG));
    assert_false(af_oci_is_manifest(NULL));
}

/* int64 all the way: right on 32-bit time_t builds too (the armhf suite
 * runs this under qemu-arm) */
static void oci_format_time_handles_dates_after_2038(void **state)
{
    (void)state;
    char t[AF_OCI_TIME_LEN + 1];
    static const struct {
        int64_t secs;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1700000000, "2023-11-14T22:13:20Z"},
        {2147483647, "2038-01-19T03:14:07Z"},
        {2147483648LL, "2038-01-19T03:14:08Z"},
        {4294967296LL, "2106-02-07T06:28:16Z"},
        {4107542399LL, "2100-02-28T23:59:59Z"}, /* 2100 is no leap year */
        {4107542400LL, "2100-03-01T00:00:00Z"},
        {13574563200LL, "2400-02-29T00:00:00Z"}, /* 2400 is one */
        {253402300799LL, "9999-12-31T23:59:59Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(af_oci_format_time(cases[i].secs, t), 0);
        assert_string_equal(t, cases[i].want);
    }
    assert_int_equal(af_oci_format_time(-1, t), AF_ERR_INVAL);
    assert_string_equal(t, "");
    assert_int_equal(af_oci_format_time(253402300800LL, t), AF_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oci_schema_validator_catches_invalid_documents),
        cmocka_unit_test(oci_config_from_scratch_is_exact_and_deterministic),
        cmocka_unit_test(oci_config_sets_all_recipe_fields),
        cmocka_unit_test(oci_config_without_layers_has_an_empty_layer_history),
        cmocka_unit_test(oci_config_extends_base_keeping_its_fields),
        cmocka_unit_test(oci_config_entrypoint_over_base_drops_its_cmd),
        cmocka_unit_test(oci_config_rejects_bad_inputs),
        cmocka_unit_test(oci_format_time_handles_dates_after_2038),
        cmocka_unit_test(oci_manifest_is_exact_and_valid),
        cmocka_unit_test(oci_manifest_rejects_bad_descriptors),
        cmocka_unit_test(oci_index_is_exact_and_valid),
        cmocka_unit_test(oci_docker_list_lists_only_docker_v2_manifests),
        cmocka_unit_test(oci_docker_manifest_needs_docker_config_and_gzip_layers),
        cmocka_unit_test(oci_index_entries_need_a_platform),
        cmocka_unit_test(oci_parse_accepts_docker_manifest_and_list),
        cmocka_unit_test(oci_parse_media_type_from_content_type_or_shape),
        cmocka_unit_test(oci_parse_rejects_malformed_documents),
        cmocka_unit_test(oci_parse_refuses_oversized_bodies),
        cmocka_unit_test(oci_index_select_prefers_exact_then_variantless),
        cmocka_unit_test(oci_index_select_skips_nested_indexes),
        cmocka_unit_test(oci_config_platform_reads_and_normalises),
        cmocka_unit_test(oci_media_type_predicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
