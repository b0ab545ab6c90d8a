/* test_agent_widths.c -- integer and time widths on 32-bit targets.
 *
 * size_t, long and time_t are 32 bits on armhf. This suite runs in every
 * build, and scripts/cross-build runs it under qemu-arm-static (the armhf
 * unit suite in tests/run-all.sh), where it pins that:
 *   - sizes above 4 GiB round-trip through the protocol (BUILD
 *     context_size, CREDIT/CHUNK offsets, RESULT size);
 *   - the agent's context writer keeps 64-bit offsets (no 4 GiB wrap);
 *   - OCI descriptor sizes above 4 GiB survive build and parse;
 *   - SOURCE_DATE_EPOCH values after 2038 survive the protocol and become
 *     the right OCI "created" dates. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "archive.h"
#include "context_store.h"
#include "oci.h"
#include "proto.h"

#define S_5G (5ULL * 1024 * 1024 * 1024 + 7) /* > UINT32_MAX, odd */
#define S_2100 4102444800LL                  /* 2100-01-01T00:00:00Z */
#define S_DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static af_msg_t *s_roundtrip(const af_msg_t *m)
{
    af_err_t err;
    af_err_clear(&err);
    zmsg_t *z = af_msg_encode(m, &err);
    assert_non_null(z);
    af_msg_t *back = af_msg_decode(&z, false, NULL, &err);
    if (!back)
        fail_msg("decode: %s", err.msg);
    return back;
}

static void widths_build_context_size_and_epoch_roundtrip(void **state)
{
    (void)state;
    af_msg_t *m = af_msg_new(AF_CMD_BUILD);
    assert_non_null(m);
    snprintf(m->job, sizeof m->job, "job-wide");
    snprintf(m->platform, sizeof m->platform, "linux/arm/v7");
    snprintf(m->recipe_kind, sizeof m->recipe_kind, "native");
    snprintf(m->recipe_path, sizeof m->recipe_path, "archfarm.yaml");
    snprintf(m->context_digest, sizeof m->context_digest, "%s", S_DIGEST);
    snprintf(m->repository, sizeof m->repository, "127.0.0.1:5000/app");
    m->context_size = S_5G;
    m->source_date_epoch = S_2100;
    af_msg_t *b = s_roundtrip(m);
    assert_true(b->context_size == S_5G);
    assert_true(b->source_date_epoch == S_2100);
    af_msg_destroy(&b);
    af_msg_destroy(&m);
}

static void widths_stream_offsets_and_result_size_roundtrip(void **state)
{
    (void)state;
    af_msg_t *c = af_msg_new(AF_CMD_CREDIT);
    snprintf(c->job, sizeof c->job, "job-wide");
    c->offset = S_5G - 1000;
    c->credit = 8;
    af_msg_t *b = s_roundtrip(c);
    assert_true(b->offset == S_5G - 1000);
    af_msg_destroy(&b);
    af_msg_destroy(&c);

    af_msg_t *k = af_msg_new(AF_CMD_CHUNK);
    snprintf(k->job, sizeof k->job, "job-wide");
    k->offset = S_5G - 3;
    zframe_t *data = zframe_new("abc", 3);
    af_msg_set_data(k, &data);
    b = s_roundtrip(k);
    assert_true(b->offset == S_5G - 3);
    assert_int_equal(zframe_size(b->data), 3);
    af_msg_destroy(&b);
    af_msg_destroy(&k);

    af_msg_t *r = af_msg_new(AF_CMD_RESULT);
    snprintf(r->job, sizeof r->job, "job-wide");
    snprintf(r->platform, sizeof r->platform, "linux/arm/v7");
    r->ok = true;
    snprintf(r->digest, sizeof r->digest, "%s", S_DIGEST);
    snprintf(r->media_type, sizeof r->media_type, "%s", AF_MT_OCI_MANIFEST);
    r->size = S_5G;
    r->duration_ms = 5000000000ULL; /* 58 days: over 32 bits too */
    b = s_roundtrip(r);
    assert_true(b->size == S_5G);
    assert_true(b->duration_ms == 5000000000ULL);
    af_msg_destroy(&b);
    af_msg_destroy(&r);
}

/* The writer keeps 64-bit offsets: a context announced at 5 GiB is taken,
 * and a chunk claiming an offset past 4 GiB is refused with the exact
 * offsets (no wrap to a small number that would look like "the next one"). */
static void widths_context_writer_offsets_do_not_wrap(void **state)
{
    (void)state;
    char dir[] = "/tmp/af-test-widths-XXXXXX";
    assert_non_null(mkdtemp(dir));
    af_err_t err;
    af_err_clear(&err);
    af_context_store_t *store = af_context_store_new(dir, 2, &err);
    assert_non_null(store);
    af_context_writer_t *w = af_context_writer_new(store, S_DIGEST, S_5G, &err);
    if (!w)
        fail_msg("writer for a 5 GiB context: %s", err.msg);
    assert_int_equal(af_context_writer_write(w, 0, "0123456789", 10, &err), 0);
    assert_true(af_context_writer_offset(w) == 10);
    /* 4 GiB + 10 would be 10 again if offsets were 32-bit */
    assert_int_equal(af_context_writer_write(w, (1ULL << 32) + 10, "x", 1, &err), AF_ERR_PROTO);
    assert_non_null(strstr(err.msg, "4294967306"));
    assert_non_null(strstr(err.msg, "gap"));
    assert_false(af_context_writer_complete(w));
    af_context_writer_destroy(&w);
    af_context_store_destroy(&store);
    assert_int_equal(af_remove_tree(dir, &err), 0);
}

static void widths_oci_sizes_over_4g_survive_build_and_parse(void **state)
{
    (void)state;
    af_descriptor_t config = {.size = 1234};
    snprintf(config.media_type, sizeof config.media_type, "%s", AF_MT_OCI_CONFIG);
    snprintf(config.digest, sizeof config.digest, "%s", S_DIGEST);
    af_descriptor_t layer = {.size = (int64_t)S_5G};
    snprintf(layer.media_type, sizeof layer.media_type, "%s", AF_MT_OCI_LAYER_GZIP);
    snprintf(layer.digest, sizeof layer.digest, "%s", S_DIGEST);
    af_err_t err;
    af_err_clear(&err);
    size_t len = 0;
    char *body = af_oci_manifest_build(&config, &layer, 1, NULL, 0, &len, &err);
    assert_non_null(body);
    assert_non_null(strstr(body, "\"size\":5368709127"));
    af_oci_doc_t *doc = af_oci_doc_parse(body, len, NULL, &err);
    assert_non_null(doc);
    assert_int_equal(doc->n_layers, 1);
    assert_true(doc->layers[0].size == (int64_t)S_5G);
    af_oci_doc_destroy(&doc);
    free(body);

    af_descriptor_t child = {.size = (int64_t)S_5G, .has_platform = true};
    snprintf(child.media_type, sizeof child.media_type, "%s", AF_MT_OCI_MANIFEST);
    snprintf(child.digest, sizeof child.digest, "%s", S_DIGEST);
    assert_int_equal(af_platform_parse("linux/arm/v7", &child.platform, &err), 0);
    body = af_oci_index_build(&child, 1, NULL, 0, &len, &err);
    assert_non_null(body);
    doc = af_oci_doc_parse(body, len, NULL, &err);
    assert_non_null(doc);
    assert_true(doc->manifests[0].size == (int64_t)S_5G);
    af_oci_doc_destroy(&doc);
    free(body);
}

static void widths_created_after_2038_in_the_image_config(void **state)
{
    (void)state;
    af_image_spec_t spec = {.created = S_2100};
    af_err_t err;
    af_err_clear(&err);
    assert_int_equal(af_platform_parse("linux/arm/v7", &spec.platform, &err), 0);
    static const char *const ids[] = {S_DIGEST};
    size_t len = 0;
    char *c = af_oci_config_build(&spec, NULL, 0, ids, 1, &len, &err);
    if (!c)
        fail_msg("config with created=2100: %s", err.msg);
    assert_non_null(strstr(c, "\"created\":\"2100-01-01T00:00:00Z\""));
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(widths_build_context_size_and_epoch_roundtrip),
        cmocka_unit_test(widths_stream_offsets_and_result_size_roundtrip),
        cmocka_unit_test(widths_context_writer_offsets_do_not_wrap),
        cmocka_unit_test(widths_oci_sizes_over_4g_survive_build_and_parse),
        cmocka_unit_test(widths_created_after_2038_in_the_image_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
