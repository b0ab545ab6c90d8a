/* test_coord_publish.c -- what a finished build writes: the OCI index over
 * the slices (coordinator/publish.c) and the --metadata-file JSON
 * (coordinator/metadata.c). The coordinator is not a library, so its
 * files are compiled in here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../coordinator/attempts.c"
#include "../../coordinator/cli.c"
#include "../../coordinator/signals.c"
#include "../../coordinator/display.c"
#include "../../coordinator/farm.c"
#include "../../coordinator/metadata.c"
#include "../../coordinator/progress.c"
#include "../../coordinator/publish.c"
#include "../../coordinator/schedule.c"
#include "../../coordinator/slices.c"

static const char s_inv[] = "all:\n"
                            "  children:\n"
                            "    archfarm_agents:\n"
                            "      vars:\n"
                            "        archfarm_insecure: true\n"
                            "      hosts:\n"
                            "        n-amd64:\n"
                            "          archfarm_platforms: [linux/amd64]\n"
                            "        n-arm:\n"
                            "          archfarm_platforms: [linux/arm/v7]\n";

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void s_make_slices(af_slice_t *s)
{
    memset(s, 0, 2 * sizeof *s);
    const char *plats[2] = {"linux/amd64", "linux/arm/v7"};
    const char *digests[2] = {D1, D2};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(af_platform_parse(plats[i], &s[i].platform, NULL), 0);
        af_platform_format(&s[i].platform, s[i].platform_str, sizeof s[i].platform_str);
        snprintf(s[i].job, sizeof s[i].job, "b1-%zu", i);
        s[i].n_attempts = 1;
        af_attempt_t *a = &s[i].attempts[0];
        a->node = i;
        a->attempt = 1;
        a->ok = true;
        a->done = true;
        snprintf(a->digest, sizeof a->digest, "%s", digests[i]);
        snprintf(a->media_type, sizeof a->media_type, "%s", AF_MT_OCI_MANIFEST);
        a->size = 400 + i;
        a->started_ms = 1000;
        a->ended_ms = 3500;
    }
}

static void index_has_one_entry_per_slice_with_its_platform(void **state)
{
    af_slice_t s[2];
    s_make_slices(s);
    size_t len = 0;
    char digest[AF_DIGEST_STR_MAX];
    char *body = af_publish_index(s, 2, 0, &len, digest, NULL);
    assert_non_null(body);
    af_oci_doc_t *doc = af_oci_doc_parse(body, len, NULL, NULL);
    assert_non_null(doc);
    assert_true(doc->is_index);
    assert_string_equal(doc->media_type, AF_MT_OCI_INDEX);
    assert_int_equal(doc->n_manifests, 2);
    assert_string_equal(doc->manifests[0].digest, D1);
    assert_int_equal(doc->manifests[0].size, 400);
    assert_true(doc->manifests[1].has_platform);
    assert_string_equal(doc->manifests[1].platform.arch, "arm");
    assert_string_equal(doc->manifests[1].platform.variant, "v7");
    char check[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_buffer(body, len, check), 0);
    assert_string_equal(check, digest);
    af_oci_doc_destroy(&doc);
    free(body);
}

static void index_is_reproducible_and_dated_by_source_date_epoch(void **state)
{
    af_slice_t s[2];
    s_make_slices(s);
    size_t l1, l2, l3;
    char d1[AF_DIGEST_STR_MAX], d2[AF_DIGEST_STR_MAX], d3[AF_DIGEST_STR_MAX];
    char *b1 = af_publish_index(s, 2, 1700000000, &l1, d1, NULL);
    char *b2 = af_publish_index(s, 2, 1700000000, &l2, d2, NULL);
    char *b3 = af_publish_index(s, 2, 1700000001, &l3, d3, NULL);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_non_null(b3);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    assert_string_equal(d1, d2);
    assert_string_not_equal(d1, d3);
    assert_non_null(strstr(b1, "\"org.opencontainers.image.created\":\"2023-11-14T22:13:20Z\""));
    free(b1);
    free(b2);
    free(b3);
}

static void metadata_file_has_buildx_keys_and_every_attempt(void **state)
{
    af_inventory_t *inv = af_inventory_load_buffer("inv.yaml", s_inv, strlen(s_inv), NULL);
    assert_non_null(inv);
    af_farm_t *farm = af_farm_new(inv);
    assert_non_null(farm);
    af_slice_t s[2];
    s_make_slices(s);
    /* slice 1 failed over: attempt 1 on node 0 lost, attempt 2 on node 1 */
    s[1].attempts[1] = s[1].attempts[0];
    s[1].attempts[1].attempt = 2;
    s[1].attempts[0].node = 0;
    s[1].attempts[0].ok = false;
    snprintf(s[1].attempts[0].failure, sizeof s[1].attempts[0].failure, "infra");
    snprintf(s[1].attempts[0].message, sizeof s[1].attempts[0].message, "node n-amd64 lost");
    s[1].n_attempts = 2;

    af_build_opts_t *o = calloc(1, sizeof *o);
    assert_non_null(o);
    assert_int_equal(af_ref_parse("localhost:5000/app:1.0", &o->tags[0], NULL), 0);
    assert_int_equal(af_ref_parse("localhost:5000/app", &o->tags[1], NULL), 0);
    o->n_tags = 2;

    char dir[] = "/tmp/test_coord_publish.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/m.json", dir);
    assert_int_equal(af_metadata_write(path, D1, AF_MT_OCI_INDEX, 780, o, s, 2, farm, true, NULL),
                     0);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "containerimage.digest")), D1);
    json_t *desc = json_object_get(root, "containerimage.descriptor");
    assert_string_equal(json_string_value(json_object_get(desc, "mediaType")), AF_MT_OCI_INDEX);
    assert_int_equal(json_integer_value(json_object_get(desc, "size")), 780);
    assert_string_equal(json_string_value(json_object_get(root, "image.name")),
                        "localhost:5000/app:1.0,localhost:5000/app:latest");
    json_t *slices = json_object_get(root, "slices");
    assert_int_equal(json_array_size(slices), 2);
    json_t *s1 = json_array_get(slices, 1);
    assert_string_equal(json_string_value(json_object_get(s1, "platform")), "linux/arm/v7");
    assert_string_equal(json_string_value(json_object_get(s1, "node")), "n-arm");
    assert_string_equal(json_string_value(json_object_get(s1, "digest")), D2);
    assert_true(json_real_value(json_object_get(s1, "seconds")) > 2.4);
    json_t *atts = json_object_get(s1, "attempts");
    assert_int_equal(json_array_size(atts), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(atts, 0), "result")),
                        "infra");
    assert_string_equal(json_string_value(json_object_get(json_array_get(atts, 0), "node")),
                        "n-amd64");
    assert_string_equal(json_string_value(json_object_get(json_array_get(atts, 1), "result")),
                        "ok");
    json_decref(root);

    /* nothing but the file itself is left in the directory */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);
    unlink(path);
    rmdir(dir);

    /* an unwritable place is an error naming it */
    af_err_t err = {0};
    assert_int_equal(af_metadata_write("/nonexistent-dir/m.json", D1, AF_MT_OCI_INDEX, 1, o, s, 2,
                                       farm, true, &err),
                     AF_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/m.json"));
    free(o);
    af_farm_destroy(&farm);
    af_inventory_destroy(&inv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(index_has_one_entry_per_slice_with_its_platform),
        cmocka_unit_test(index_is_reproducible_and_dated_by_source_date_epoch),
        cmocka_unit_test(metadata_file_has_buildx_keys_and_every_attempt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
