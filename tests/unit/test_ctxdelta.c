/* test_ctxdelta.c -- a context sent as a delta against one the agent holds:
 * the index of a packed context, the delta a one-file change produces (its
 * size is about that file), applying it rebuilds the new tar byte for byte,
 * and hostile deltas fail with a named reason, never a wrong tar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "ctxdelta.h"

#define MTIME 1700000000

typedef struct {
    char dir[64];
    char path[128];
} s_tmp_t;

static void s_write_file(const char *dir, const char *name, size_t size, unsigned seed)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    srand(seed);
    for (size_t i = 0; i < size; i++)
        fputc(rand() & 0xff, f);
    fclose(f);
}

static int s_pack(const char *dir, uint64_t *size)
{
    int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    assert_true(fd >= 0);
    af_pack_result_t r;
    af_err_t err = {0};
    assert_int_equal(af_archive_pack_context_fd(dir, fd, "t", MTIME, NULL, 0, &r, &err), 0);
    *size = r.size;
    return fd;
}

typedef struct {
    unsigned char *v;
    size_t n, cap;
    size_t limit;
} s_buf_t;

static int s_collect(void *arg, const void *data, size_t len, af_err_t *err)
{
    s_buf_t *b = arg;
    if (b->n + len > b->limit)
        return af_err_set(err, AF_ERR_PROTO, "overrun");
    if (b->n + len > b->cap) {
        b->cap = (b->n + len) * 2;
        b->v = realloc(b->v, b->cap);
    }
    memcpy(b->v + b->n, data, len);
    b->n += len;
    return 0;
}

static unsigned char *s_read_fd(int fd, uint64_t size)
{
    unsigned char *v = malloc(size ? size : 1);
    assert_int_equal(pread(fd, v, size, 0), (ssize_t)size);
    return v;
}

/* Applies the delta in DELTA (LEN bytes) against BASE_FD, fed in pieces of
 * STEP bytes. Returns the apply/finish code; OUT gets the bytes. */
static int s_apply(int base_fd, uint64_t base_size, const unsigned char *delta, size_t len,
                   size_t step, s_buf_t *out, af_err_t *err)
{
    af_ctxdelta_apply_t *ap = af_ctxdelta_apply_new(base_fd, base_size, s_collect, out);
    assert_non_null(ap);
    int rc = 0;
    for (size_t off = 0; !rc && off < len; off += step)
        rc = af_ctxdelta_apply_feed(ap, delta + off, len - off < step ? len - off : step, err);
    if (!rc)
        rc = af_ctxdelta_apply_finish(ap, err);
    af_ctxdelta_apply_destroy(&ap);
    return rc;
}

static void s_make_tree(char *dir)
{
    strcpy(dir, "/tmp/af_delta_XXXXXX");
    assert_non_null(mkdtemp(dir));
    s_write_file(dir, "a.bin", 300000, 1);
    s_write_file(dir, "b.bin", 200000, 2);
    s_write_file(dir, "c.txt", 1000, 3);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    mkdir(sub, 0755);
    s_write_file(sub, "d.bin", 400000, 4);
}

static void s_rm_tree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A one-file change: the delta is about that file, and applying it
 * rebuilds the new tar exactly, however the delta is cut into pieces. */
static void delta_of_one_changed_file_is_about_that_file(void **state)
{
    (void)state;
    char dir[64];
    s_make_tree(dir);
    uint64_t base_size, new_size;
    int base_fd = s_pack(dir, &base_size);
    s_write_file(dir, "b.bin", 200000, 99); /* same size, new bytes */
    int new_fd = s_pack(dir, &new_size);
    af_err_t err = {0};
    af_ctxindex_t *bi = af_ctxindex_build(base_fd, base_size, &err);
    af_ctxindex_t *ni = af_ctxindex_build(new_fd, new_size, &err);
    assert_non_null(bi);
    assert_non_null(ni);
    assert_true(af_ctxindex_count(ni) >= 5); /* a.bin b.bin c.txt sub sub/d.bin (+ dirs) */
    int dfd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    uint64_t dsize = 0;
    assert_int_equal(af_ctxdelta_write(bi, ni, new_fd, dfd, &dsize, &err), 0);
    assert_true(dsize > 200000);
    assert_true(dsize < 200000 + 4096); /* the file, its header, a few instructions */
    unsigned char *delta = s_read_fd(dfd, dsize);
    unsigned char *want = s_read_fd(new_fd, new_size);
    size_t steps[] = {1, 7, 17, 4096, 1 << 20};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        s_buf_t out = {.limit = new_size};
        assert_int_equal(s_apply(base_fd, base_size, delta, dsize, steps[i], &out, &err), 0);
        assert_int_equal(out.n, new_size);
        assert_memory_equal(out.v, want, new_size);
        free(out.v);
    }
    free(delta);
    free(want);
    af_ctxindex_destroy(&bi);
    af_ctxindex_destroy(&ni);
    close(dfd);
    close(base_fd);
    close(new_fd);
    s_rm_tree(dir);
}

/* An added file and a removed file; the same context against itself is a
 * handful of bytes. */
static void delta_of_added_removed_and_unchanged(void **state)
{
    (void)state;
    char dir[64];
    s_make_tree(dir);
    uint64_t base_size, new_size, same_size;
    int base_fd = s_pack(dir, &base_size);
    int same_fd = s_pack(dir, &same_size);
    char p[128];
    snprintf(p, sizeof p, "%s/a.bin", dir);
    unlink(p);
    s_write_file(dir, "e.new", 5000, 5);
    int new_fd = s_pack(dir, &new_size);
    af_err_t err = {0};
    af_ctxindex_t *bi = af_ctxindex_build(base_fd, base_size, &err);
    af_ctxindex_t *si = af_ctxindex_build(same_fd, same_size, &err);
    af_ctxindex_t *ni = af_ctxindex_build(new_fd, new_size, &err);
    assert_non_null(bi);
    assert_non_null(si);
    assert_non_null(ni);

    int dfd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    uint64_t dsize = 0;
    assert_int_equal(af_ctxdelta_write(bi, si, same_fd, dfd, &dsize, &err), 0);
    assert_true(dsize <= 8 + 17 + 1); /* magic, one merged copy, end */
    close(dfd);

    dfd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    assert_int_equal(af_ctxdelta_write(bi, ni, new_fd, dfd, &dsize, &err), 0);
    assert_true(dsize < 5000 + 8192);
    unsigned char *delta = s_read_fd(dfd, dsize);
    unsigned char *want = s_read_fd(new_fd, new_size);
    s_buf_t out = {.limit = new_size};
    assert_int_equal(s_apply(base_fd, base_size, delta, dsize, 1000, &out, &err), 0);
    assert_int_equal(out.n, new_size);
    assert_memory_equal(out.v, want, new_size);
    free(out.v);
    free(delta);
    free(want);
    close(dfd);
    af_ctxindex_destroy(&bi);
    af_ctxindex_destroy(&si);
    af_ctxindex_destroy(&ni);
    close(base_fd);
    close(same_fd);
    close(new_fd);
    s_rm_tree(dir);
}

static void index_save_load_round_trip_and_refuses_garbage(void **state)
{
    (void)state;
    char dir[64];
    s_make_tree(dir);
    uint64_t size;
    int fd = s_pack(dir, &size);
    af_err_t err = {0};
    af_ctxindex_t *idx = af_ctxindex_build(fd, size, &err);
    assert_non_null(idx);
    char path[128];
    snprintf(path, sizeof path, "%s.idx", dir);
    const char *tar_digest =
        "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_int_not_equal(af_ctxindex_save(idx, "sha256:short", path, &err), 0);
    assert_int_equal(af_ctxindex_save(idx, tar_digest, path, &err), 0);
    char got[AF_DIGEST_STR_MAX] = "";
    af_ctxindex_t *back = af_ctxindex_load(path, got, &err);
    assert_non_null(back);
    assert_string_equal(got, tar_digest);
    assert_int_equal(af_ctxindex_count(back), af_ctxindex_count(idx));
    assert_int_equal(af_ctxindex_size(back), size);
    /* the loaded index makes the same delta: against itself, copy only */
    int dfd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    uint64_t dsize = 0;
    assert_int_equal(af_ctxdelta_write(back, idx, fd, dfd, &dsize, &err), 0);
    assert_true(dsize <= 26);
    close(dfd);
    af_ctxindex_destroy(&back);

    /* truncated, and one byte flipped in a length: refused */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 1), 0);
    af_err_clear(&err);
    assert_null(af_ctxindex_load(path, got, &err));
    assert_int_equal(err.code, AF_ERR_PARSE);
    assert_non_null(strstr(err.msg, "not a well-formed context index"));
    assert_int_equal(af_ctxindex_save(idx, tar_digest, path, &err), 0);
    int wfd = open(path, O_WRONLY);
    unsigned char bad = 0x7f;
    assert_int_equal(pwrite(wfd, &bad, 1, 10 + 71 + 16 + 8), 1); /* first member's length */
    close(wfd);
    assert_null(af_ctxindex_load(path, got, &err));
    assert_int_equal(err.code, AF_ERR_PARSE);
    /* a digest that is not one */
    assert_int_equal(af_ctxindex_save(idx, tar_digest, path, &err), 0);
    wfd = open(path, O_WRONLY);
    assert_int_equal(pwrite(wfd, "X", 1, 10 + 7), 1);
    close(wfd);
    assert_null(af_ctxindex_load(path, got, &err));
    assert_int_equal(err.code, AF_ERR_PARSE);
    unlink(path);
    af_err_clear(&err);
    assert_null(af_ctxindex_load(path, got, &err));
    assert_int_equal(err.code, AF_ERR_NOTFOUND);

    /* a file that is not a tar is not indexed */
    int junk = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    assert_int_equal(write(junk, "this is not a tar file at all, not even close", 45), 45);
    af_err_clear(&err);
    af_ctxindex_t *none = af_ctxindex_build(junk, 45, &err);
    assert_null(none);
    assert_int_equal(err.code, AF_ERR_PARSE);
    close(junk);
    af_ctxindex_destroy(&idx);
    close(fd);
    s_rm_tree(dir);
}

/* Hostile deltas: each fails with its reason; nothing past the limit is
 * written. */
static void hostile_deltas_are_refused(void **state)
{
    (void)state;
    int base_fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    unsigned char base[1000];
    memset(base, 'b', sizeof base);
    assert_int_equal(write(base_fd, base, sizeof base), (ssize_t)sizeof base);
    struct {
        const char *name;
        unsigned char bytes[64];
        size_t len;
        int code;
        const char *why;
    } cases[] = {
        {"bad magic", "XXDELTA1E", 9, AF_ERR_PROTO, "bad magic"},
        {"unknown op", "AFDELTA1Z", 9, AF_ERR_PROTO, "unknown instruction"},
        {"copy past the base",
         /* offset 999, length 2: one byte past the 1000-byte base */
         {'A', 'F', 'D',  'E',  'L', 'T', 'A', '1', 'C', 0, 0, 0, 0,
          0,   0,   0x03, 0xe7, 0,   0,   0,   0,   0,   0, 0, 2, 'E'},
         26,
         AF_ERR_PROTO,
         "outside the base"},
        {"copy offset overflow",
         {'A',  'F',  'D',  'E',  'L', 'T', 'A', '1', 'C', 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xf0, 0,   0,   0,   0,   0,   0,    0,    0x20, 'E'},
         26,
         AF_ERR_PROTO,
         "outside the base"},
        {"bytes after the end", "AFDELTA1EE", 10, AF_ERR_PROTO, "after the end"},
        {"truncated literal",
         {'A', 'F', 'D', 'E', 'L', 'T', 'A', '1', 'D', 0, 0, 0, 0, 0, 0, 0, 9, 'x'},
         18,
         AF_ERR_PROTO,
         "truncated"},
        {"truncated header", "AFDELTA1C\0\0", 11, AF_ERR_PROTO, "truncated"},
        {"no end", "AFDELTA1", 8, AF_ERR_PROTO, "truncated"},
        {"more than the sink takes",
         {'A', 'F', 'D', 'E', 'L', 'T', 'A', '1', 'C',  0,    0,    0,    0,  0, 0,
          0,   0,   0,   0,   0,   0,   0,   0,   0x03, 0xe8, 'C',  0,    0,  0, 0,
          0,   0,   0,   0,   0,   0,   0,   0,   0,    0,    0x03, 0xe8, 'E'},
         43,
         AF_ERR_PROTO,
         "overrun"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (size_t step = 1; step <= 64; step *= 8) {
            s_buf_t out = {.limit = 1500};
            af_err_t err = {0};
            int rc = s_apply(base_fd, sizeof base, cases[i].bytes, cases[i].len, step, &out, &err);
            if (rc != cases[i].code || !strstr(err.msg, cases[i].why))
                fail_msg("%s (step %zu): rc %d, \"%s\"", cases[i].name, step, rc, err.msg);
            assert_true(out.n <= 1500);
            free(out.v);
        }
    }
    close(base_fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(delta_of_one_changed_file_is_about_that_file),
        cmocka_unit_test(delta_of_added_removed_and_unchanged),
        cmocka_unit_test(index_save_load_round_trip_and_refuses_garbage),
        cmocka_unit_test(hostile_deltas_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
