/* test_agent_store.c -- agent/context_store: received contexts by digest.
 * Chunked writes with the digest computed on the way, every transfer
 * fault (gap, overlap, overrun, oversize chunk, digest mismatch, short
 * transfer), LRU eviction with pins, and the index rebuilt at startup
 * (stale temp files removed, foreign files ignored). */
#include <fcntl.h>
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

#include "archive.h"
#include "context_store.h"
#include "digest.h"
#include "limits.h"

typedef struct {
    char dir[256];
    char store_dir[300];
} s_fx_t;

static int s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/af-test-store-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->store_dir, sizeof fx->store_dir, "%s/contexts", fx->dir);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    if (af_remove_tree(fx->dir, &err) < 0)
        fprintf(stderr, "cleanup: %s\n", err.msg);
    free(fx);
    return 0;
}

static void s_digest_of(const char *data, size_t len, char out[AF_DIGEST_STR_MAX])
{
    assert_int_equal(af_digest_buffer(data, len, out), 0);
}

/* Writes DATA through a writer in chunks of STEP bytes and commits. */
static int s_put(af_context_store_t *store, const char *data, size_t len, size_t step,
                 af_err_t *err)
{
    char digest[AF_DIGEST_STR_MAX];
    s_digest_of(data, len, digest);
    af_context_writer_t *w = af_context_writer_new(store, digest, len, err);
    assert_non_null(w);
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        assert_int_equal(af_context_writer_write(w, off, data + off, n, err), 0);
    }
    assert_true(af_context_writer_complete(w));
    int rc = af_context_writer_commit(w, err);
    af_context_writer_destroy(&w);
    if (rc == 0)
        af_context_store_unpin(store, digest); /* commit pinned it for us */
    return rc;
}

static void store_writes_chunks_and_finds_the_context_by_digest(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    af_context_store_t *store = af_context_store_new(fx->store_dir, 4, &err);
    assert_non_null(store);
    const char *data = "hello context, in several small chunks";
    char digest[AF_DIGEST_STR_MAX];
    s_digest_of(data, strlen(data), digest);
    assert_false(af_context_store_has(store, digest));
    assert_int_equal(s_put(store, data, strlen(data), 5, &err), 0);
    assert_true(af_context_store_has(store, digest));
    char path[512];
    assert_int_equal(af_context_store_path(store, digest, path, sizeof path), 0);
    char expect[512];
    snprintf(expect, sizeof expect, "%s/%s.tar", fx->store_dir, af_digest_hex(digest));
    assert_string_equal(path, expect);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((size_t)st.st_size, strlen(data));
    assert_int_equal(stat(fx->store_dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    af_context_store_destroy(&store);
    assert_null(store);
    af_context_store_destroy(&store);
}

static void store_rejects_gap_overlap_overrun_and_oversize_chunks(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    af_context_store_t *store = af_context_store_new(fx->store_dir, 4, &err);
    assert_non_null(store);
    const char *data = "0123456789";
    char digest[AF_DIGEST_STR_MAX];
    s_digest_of(data, 10, digest);
    af_context_writer_t *w = af_context_writer_new(store, digest, 10, &err);
    assert_non_null(w);
    assert_int_equal(af_context_writer_write(w, 2, data, 2, &err), AF_ERR_PROTO);
    assert_non_null(strstr(err.msg, "gap"));
    assert_int_equal(af_context_writer_write(w, 0, data, 4, &err), 0);
    assert_int_equal(af_context_writer_write(w, 2, data + 2, 2, &err), AF_ERR_PROTO);
    assert_non_null(strstr(err.msg, "overlap"));
    assert_int_equal(af_context_writer_write(w, 4, data, 7, &err), AF_ERR_PROTO);
    assert_non_null(strstr(err.msg, "overruns"));
    assert_int_equal(af_context_writer_offset(w), 4);
    /* incomplete: commit refuses */
    assert_int_equal(af_context_writer_commit(w, &err), AF_ERR_STATE);
    af_context_writer_destroy(&w);

    char *big = calloc(1, AF_CHUNK_SIZE + 1);
    w = af_context_writer_new(store, digest, AF_CHUNK_SIZE + 1, &err);
    assert_non_null(w);
    assert_int_equal(af_context_writer_write(w, 0, big, AF_CHUNK_SIZE + 1, &err), AF_ERR_PROTO);
    af_context_writer_destroy(&w);
    free(big);
    assert_int_equal(af_context_store_size(store), 0);
    af_context_store_destroy(&store);
}

static void store_digest_mismatch_keeps_nothing(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    af_context_store_t *store = af_context_store_new(fx->store_dir, 4, &err);
    char digest[AF_DIGEST_STR_MAX];
    s_digest_of("expected", 8, digest);
    af_context_writer_t *w = af_context_writer_new(store, digest, 8, &err);
    assert_non_null(w);
    assert_int_equal(af_context_writer_write(w, 0, "tampered", 8, &err), 0);
    assert_int_equal(af_context_writer_commit(w, &err), AF_ERR_DIGEST);
    assert_non_null(strstr(err.msg, "context digest mismatch"));
    assert_non_null(strstr(err.msg, digest));
    af_context_writer_destroy(&w);
    assert_false(af_context_store_has(store, digest));
    /* no temp file left behind */
    af_context_store_destroy(&store);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", fx->store_dir);
    assert_int_equal(system(cmd), 0);
}

static void store_rejects_bad_digest_and_oversize_context(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    af_context_store_t *store = af_context_store_new(fx->store_dir, 4, &err);
    assert_null(af_context_writer_new(store, "sha256:nothex", 1, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    char digest[AF_DIGEST_STR_MAX];
    s_digest_of("x", 1, digest);
    assert_null(af_context_writer_new(store, digest, (uint64_t)AF_CONTEXT_MAX_BYTES + 1, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    assert_false(af_context_store_has(store, "garbage"));
    char path[64];
    assert_int_equal(af_context_store_path(store, "garbage", path, sizeof path), AF_ERR_INVAL);
    assert_int_equal(af_context_store_path(store, digest, path, sizeof path), AF_ERR_NOTFOUND);
    af_context_store_destroy(&store);
}

static void store_evicts_least_recently_used_beyond_keep(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    af_context_store_t *store = af_context_store_new(fx->store_dir, 2, &err);
    char a[AF_DIGEST_STR_MAX], b[AF_DIGEST_STR_MAX], c[AF_DIGEST_STR_MAX];
    s_digest_of("A", 1, a);
    s_digest_of("B", 1, b);
    s_digest_of("C", 1, c);
    assert_int_equal(s_put(store, "A", 1, 1, &err), 0);
    assert_int_equal(s_put(store, "B", 1, 1, &err), 0);
    assert_true(af_context_store_has(store, a)); /* A is now more recent than B */
    assert_int_equal(s_put(store, "C", 1, 1, &err), 0);
    assert_int_equal(af_context_store_size(store), 2);
    assert_true(af_context_store_has(store, a));
    assert_false(af_context_store_has(store, b));
    assert_true(af_context_store_has(store, c));
    af_context_store_destroy(&store);
}

static void store_never_evicts_a_pinned_context(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    af_context_store_t *store = af_context_store_new(fx->store_dir, 1, &err);
    char a[AF_DIGEST_STR_MAX], b[AF_DIGEST_STR_MAX];
    s_digest_of("A", 1, a);
    s_digest_of("B", 1, b);
    assert_int_equal(s_put(store, "A", 1, 1, &err), 0);
    af_context_store_pin(store, a);
    assert_int_equal(s_put(store, "B", 1, 1, &err), 0);
    /* A is pinned, so B (unpinned, over the limit) went instead */
    assert_true(af_context_store_has(store, a));
    assert_false(af_context_store_has(store, b));
    af_context_store_unpin(store, a);
    assert_int_equal(af_context_store_size(store), 1);

    /* the writer's own pin protects a fresh commit while older ones are pinned */
    af_context_store_pin(store, a);
    af_context_writer_t *w = af_context_writer_new(store, b, 1, &err);
    assert_int_equal(af_context_writer_write(w, 0, "B", 1, &err), 0);
    assert_int_equal(af_context_writer_commit(w, &err), 0);
    af_context_writer_destroy(&w);
    assert_true(af_context_store_has(store, a));
    assert_true(af_context_store_has(store, b));
    af_context_store_unpin(store, a); /* now A (older) goes */
    assert_false(af_context_store_has(store, a));
    af_context_store_unpin(store, b);
    assert_true(af_context_store_has(store, b));
    af_context_store_destroy(&store);
}

static void store_reindexes_at_startup_and_removes_partial_files(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    af_context_store_t *store = af_context_store_new(fx->store_dir, 4, &err);
    char a[AF_DIGEST_STR_MAX];
    s_digest_of("A", 1, a);
    assert_int_equal(s_put(store, "A", 1, 1, &err), 0);
    af_context_store_destroy(&store);

    char path[512];
    snprintf(path, sizeof path, "%s/.incoming-abc123", fx->store_dir);
    FILE *f = fopen(path, "w");
    fputs("partial", f);
    fclose(f);
    char other[512];
    snprintf(other, sizeof other, "%s/README", fx->store_dir);
    f = fopen(other, "w");
    fputs("not a context", f);
    fclose(f);

    store = af_context_store_new(fx->store_dir, 4, &err);
    assert_non_null(store);
    assert_true(af_context_store_has(store, a));
    assert_int_equal(af_context_store_size(store), 1);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0); /* foreign files are left alone */
    af_context_store_destroy(&store);
}

static void store_keeps_most_recent_by_mtime_across_restarts(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    af_context_store_t *store = af_context_store_new(fx->store_dir, 4, &err);
    char a[AF_DIGEST_STR_MAX], b[AF_DIGEST_STR_MAX];
    s_digest_of("A", 1, a);
    s_digest_of("B", 1, b);
    assert_int_equal(s_put(store, "A", 1, 1, &err), 0);
    assert_int_equal(s_put(store, "B", 1, 1, &err), 0);
    af_context_store_destroy(&store);
    /* make A clearly the most recently used on disk */
    char path[512];
    snprintf(path, sizeof path, "%s/%s.tar", fx->store_dir, af_digest_hex(b));
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    store = af_context_store_new(fx->store_dir, 1, &err); /* keep 1: B is evicted */
    assert_non_null(store);
    assert_true(af_context_store_has(store, a));
    assert_false(af_context_store_has(store, b));
    af_context_store_destroy(&store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(store_writes_chunks_and_finds_the_context_by_digest,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(store_rejects_gap_overlap_overrun_and_oversize_chunks,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(store_digest_mismatch_keeps_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(store_rejects_bad_digest_and_oversize_context, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(store_evicts_least_recently_used_beyond_keep, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(store_never_evicts_a_pinned_context, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(store_reindexes_at_startup_and_removes_partial_files,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(store_keeps_most_recent_by_mtime_across_restarts, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
