/* test_coord_caches.c -- the slice cache key (coordinator/slicecache.c)
 * and the context stat cache (coordinator/ctxcache.c), compiled in here:
 * the CLI is not a library. The registry side of both is exercised by
 * tests/integration/test_slice_cache.sh. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../coordinator/ctxcache.c"
#include "../../coordinator/slicecache.c"

static af_build_spec_t s_spec(af_kv_t *args, size_t n_args)
{
    af_build_spec_t spec = {
        .recipe_kind = "native",
        .recipe_path = "archfarm.yaml",
        .manifest_format = "oci",
        .build_args = args,
        .n_build_args = n_args,
        .source_date_epoch = 0,
        .compression = "",
    };
    return spec;
}

#define CTX1 "sha256:0000000000000000000000000000000000000000000000000000000000000001"
#define CTX2 "sha256:0000000000000000000000000000000000000000000000000000000000000002"

static void key_is_stable_and_ignores_build_arg_order(void **state)
{
    (void)state;
    af_platform_t p;
    assert_int_equal(af_platform_parse("linux/arm64", &p, NULL), 0);
    af_kv_t ab[] = {{"A", "1"}, {"B", "2"}}, ba[] = {{"B", "2"}, {"A", "1"}};
    af_build_spec_t s1 = s_spec(ab, 2), s2 = s_spec(ba, 2);
    char k1[AF_DIGEST_STR_MAX], k2[AF_DIGEST_STR_MAX], k3[AF_DIGEST_STR_MAX];
    assert_int_equal(af_slicecache_key(&s1, CTX1, &p, "scratch", k1), 0);
    assert_int_equal(af_slicecache_key(&s2, CTX1, &p, "scratch", k2), 0);
    assert_string_equal(k1, k2);
    assert_int_equal(af_slicecache_key(&s1, CTX1, &p, "scratch", k3), 0);
    assert_string_equal(k1, k3);
    assert_true(af_digest_valid(k1));
    char tag[AF_SLICECACHE_TAG_MAX];
    af_slicecache_tag(k1, tag);
    assert_int_equal(strncmp(tag, "archfarm-cache-", 15), 0);
    assert_string_equal(tag + 15, k1 + 7);
    assert_true(strlen(tag) <= 128); /* a valid OCI tag */
}

typedef struct {
    const char *what;
    af_build_spec_t spec;
    const af_platform_t *p;
    const char *from;
    const char *ctx;
} s_variant_t;

static s_variant_t s_variant(const char *what, af_build_spec_t spec, const af_platform_t *p,
                             const char *from)
{
    return (s_variant_t){what, spec, p, from, CTX1};
}

/* Every input that determines the output changes the key. */
static void key_changes_with_every_input(void **state)
{
    (void)state;
    af_platform_t arm64, amd64;
    assert_int_equal(af_platform_parse("linux/arm64", &arm64, NULL), 0);
    assert_int_equal(af_platform_parse("linux/amd64", &amd64, NULL), 0);
    af_kv_t a1[] = {{"A", "1"}}, a2[] = {{"A", "2"}}, a3[] = {{"A=", "1"}}, a4[] = {{"A", "=1"}};
    af_kv_t ann[] = {{"org.opencontainers.image.title", "x"}};
    char base_key[AF_DIGEST_STR_MAX], k[AF_DIGEST_STR_MAX];
    af_build_spec_t base = s_spec(a1, 1);
    assert_int_equal(af_slicecache_key(&base, CTX1, &arm64, "scratch", base_key), 0);
    s_variant_t v[10];
    size_t n = 0;
    v[n++] = s_variant("platform", base, &amd64, "scratch");
    v[n++] = s_variant("base image", base, &arm64, "sha256:ab");
    v[n++] = s_variant("build arg value", s_spec(a2, 1), &arm64, "scratch");
    v[n++] = s_variant("build arg boundary", s_spec(a3, 1), &arm64, "scratch");
    v[n++] = s_variant("build arg boundary 2", s_spec(a4, 1), &arm64, "scratch");
    v[n] = s_variant("source date epoch", base, &arm64, "scratch");
    v[n++].spec.source_date_epoch = 1;
    v[n] = s_variant("context", base, &arm64, "scratch");
    v[n++].ctx = CTX2;
    v[n] = s_variant("compression", base, &arm64, "scratch");
    v[n++].spec.compression = "zstd";
    v[n] = s_variant("manifest format", base, &arm64, "scratch");
    v[n++].spec.manifest_format = "docker";
    v[n] = s_variant("annotations", base, &arm64, "scratch");
    v[n].spec.annotations = ann;
    v[n++].spec.n_annotations = 1;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(af_slicecache_key(&v[i].spec, v[i].ctx, v[i].p, v[i].from, k), 0);
        if (!strcmp(k, base_key))
            fail_msg("changing the %s left the key unchanged", v[i].what);
    }
}

static char s_dir[] = "/tmp/af-ctxcache-XXXXXX";

static void s_write(const char *name, const char *text, int age_s)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", s_dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age_s;
    t[1] = t[0];
    assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
}

/* Lookup hits only for an unchanged walk; a racily new entry is never
 * recorded; any metadata change is a miss. */
static void stat_cache_hits_only_unchanged_contexts(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(s_dir));
    char cache[300];
    snprintf(cache, sizeof cache, "%s-cache", s_dir);
    setenv("ARCHFARM_CACHE_DIR", cache, 1);
    s_write("a.txt", "alpha", 60);
    s_write("b.txt", "beta", 60);
    af_pack_result_t r = {.size = 10240, .files = 2}, got;
    snprintf(r.digest, sizeof r.digest, "sha256:%064d", 7);

    af_ctxwalk_t w1, w2;
    af_ctxcache_walk(s_dir, 0, NULL, 0, &w1);
    assert_true(w1.ok);
    assert_false(af_ctxcache_lookup(s_dir, "", 0, &w1, &got)); /* nothing recorded yet */
    af_ctxcache_walk(s_dir, 0, NULL, 0, &w2);
    assert_string_equal(w1.sig, w2.sig);
    /* the directory itself was just written (its mtime is now): racy */
    af_ctxcache_store(s_dir, "", 0, &w1, &w2, &r);
    assert_false(af_ctxcache_lookup(s_dir, "", 0, &w1, &got));
    struct timespec old[2];
    clock_gettime(CLOCK_REALTIME, &old[0]);
    old[0].tv_sec -= 60;
    old[1] = old[0];
    assert_int_equal(utimensat(AT_FDCWD, s_dir, old, 0), 0);
    /* ctime of the entries is still now: racy until it ages; wait it out
     * by recording with a walk that began later (ctime cannot be set) */
    af_ctxcache_walk(s_dir, 0, NULL, 0, &w1);
    w1.walked_ns += 1000000000LL; /* as if walked 1 s later */
    af_ctxcache_store(s_dir, "", 0, &w1, &w1, &r);
    assert_true(af_ctxcache_lookup(s_dir, "", 0, &w1, &got));
    assert_string_equal(got.digest, r.digest);
    assert_int_equal(got.size, r.size);
    assert_int_equal(got.files, r.files);
    /* another SOURCE_DATE_EPOCH is another tar, and so is another variant
     * (a tar narrowed by build.inputs), which has a record of its own */
    assert_false(af_ctxcache_lookup(s_dir, "", 1, &w1, &got));
    assert_false(af_ctxcache_lookup(s_dir, "bin/hello-arm64\na.txt", 0, &w1, &got));
    af_pack_result_t narrow = r;
    narrow.digest[70] = narrow.digest[70] == '0' ? '1' : '0';
    af_ctxcache_store(s_dir, "bin/hello-arm64\na.txt", 0, &w1, &w1, &narrow);
    assert_true(af_ctxcache_lookup(s_dir, "bin/hello-arm64\na.txt", 0, &w1, &got));
    assert_string_equal(got.digest, narrow.digest);
    assert_true(af_ctxcache_lookup(s_dir, "", 0, &w1, &got));
    assert_string_equal(got.digest, r.digest);
    /* a touch (same bytes) changes the walk: a miss */
    s_write("a.txt", "alpha", 30);
    af_ctxcache_walk(s_dir, 0, NULL, 0, &w2);
    assert_string_not_equal(w1.sig, w2.sig);
    assert_false(af_ctxcache_lookup(s_dir, "", 0, &w2, &got));
    /* walks that disagree (changed while packing) record nothing */
    w2.walked_ns += 1000000000LL;
    af_ctxwalk_t other = w2;
    other.sig[10] ^= 1;
    af_ctxcache_store(s_dir, "", 0, &w2, &other, &r);
    assert_false(af_ctxcache_lookup(s_dir, "", 0, &w2, &got));

    /* a walk narrowed to build.inputs patterns sees only what that tar can
     * hold: a change elsewhere keeps its signature, one inside, or to the
     * recipe at the root, changes it */
    const char *only[] = {"a.txt"};
    af_ctxwalk_t n1, n2;
    af_ctxcache_walk(s_dir, 0, only, 1, &n1);
    assert_true(n1.ok);
    s_write("b.txt", "beta, changed", 30);
    af_ctxcache_walk(s_dir, 0, only, 1, &n2);
    assert_string_equal(n1.sig, n2.sig);
    s_write("archfarm.yaml", "build: {run: true}", 30);
    af_ctxcache_walk(s_dir, 0, only, 1, &n2);
    assert_string_not_equal(n1.sig, n2.sig);
    af_ctxcache_walk(s_dir, 0, only, 1, &n1);
    s_write("a.txt", "alpha, changed", 30);
    af_ctxcache_walk(s_dir, 0, only, 1, &n2);
    assert_string_not_equal(n1.sig, n2.sig);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", s_dir, cache);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_is_stable_and_ignores_build_arg_order),
        cmocka_unit_test(key_changes_with_every_input),
        cmocka_unit_test(stat_cache_hits_only_unchanged_contexts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
