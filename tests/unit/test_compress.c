/* test_compress.c -- cmocka suite for common/compress: the output does not
 * depend on the thread count nor on how the input is cut into writes,
 * readers we did not write (gzip -d, pigz -d, zstd -d) get the input
 * back, incompressible data costs only the stored-block overhead, and
 * bad specs, levels and a refusing sink are errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress.h"

#include <cmocka.h>

#define MIB (1024 * 1024)

/* SIZE bytes alternating, every 300000 bytes, between repetitive text and
 * pseudo-random noise, so both deflated and stored pieces occur and runs
 * straddle piece boundaries. Deterministic. Caller frees. */
static unsigned char *s_mixed(size_t size)
{
    unsigned char *b = malloc(size);
    assert_non_null(b);
    uint32_t x = 2463534242u;
    static const char text[] = "archfarm builds one image for several architectures. ";
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (i / 300000) % 2 ? (unsigned char)x : (unsigned char)text[i % (sizeof text - 1)];
    }
    return b;
}

static void s_compress(af_compress_algo_t algo, int level, int threads, const unsigned char *in,
                       size_t len, unsigned char **out, size_t *out_len)
{
    af_err_t err = {0};
    if (af_compress_buffer(algo, level, threads, in, len, out, out_len, &err) != 0)
        fail_msg("compress %s threads=%d: %s", af_compress_name(algo), threads, err.msg);
}

/* Writes BUF to a temp file, runs "CMD < file", and checks that its
 * stdout is WANT[0..want_len). */
static void s_assert_tool_decodes(const char *cmd, const unsigned char *buf, size_t len,
                                  const unsigned char *want, size_t want_len)
{
    char path[] = "/tmp/af-test-compress-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    char line[512];
    snprintf(line, sizeof line, "%s < %s", cmd, path);
    FILE *p = popen(line, "r");
    assert_non_null(p);
    unsigned char *got = malloc(want_len + 1);
    assert_non_null(got);
    size_t n = fread(got, 1, want_len + 1, p);
    int st = pclose(p);
    unlink(path);
    if (st != 0)
        fail_msg("%s exited with status %d", cmd, st);
    assert_int_equal(n, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
}

static bool s_have(const char *tool)
{
    char line[128];
    snprintf(line, sizeof line, "command -v %s >/dev/null 2>&1", tool);
    return system(line) == 0;
}

static void compress_gzip_same_bytes_with_1_and_4_threads(void **state)
{
    (void)state;
    size_t len = 9 * MIB + 12345; /* > 4 MiB, not a multiple of the piece */
    unsigned char *in = s_mixed(len), *o1, *o4, *o2;
    size_t l1, l4, l2;
    s_compress(AF_COMPRESS_GZIP, 0, 1, in, len, &o1, &l1);
    s_compress(AF_COMPRESS_GZIP, 0, 4, in, len, &o4, &l4);
    s_compress(AF_COMPRESS_GZIP, 0, 2, in, len, &o2, &l2);
    assert_int_equal(l1, l4);
    assert_memory_equal(o1, o4, l1);
    assert_int_equal(l1, l2);
    assert_memory_equal(o1, o2, l1);
    /* one gzip member with the fixed header: magic, deflate, no flags,
     * mtime 0, OS 255 */
    static const unsigned char hdr[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    assert_memory_equal(o1, hdr, sizeof hdr);
    assert_true(l1 < len); /* the text halves compress */
    s_assert_tool_decodes("gzip -dc", o4, l4, in, len);
    if (s_have("pigz"))
        s_assert_tool_decodes("pigz -dc", o4, l4, in, len);
    free(o1);
    free(o2);
    free(o4);
    free(in);
}

static void compress_zstd_same_bytes_with_1_and_4_threads(void **state)
{
    (void)state;
    size_t len = 9 * MIB + 777;
    unsigned char *in = s_mixed(len), *o1, *o4;
    size_t l1, l4;
    s_compress(AF_COMPRESS_ZSTD, 0, 1, in, len, &o1, &l1);
    s_compress(AF_COMPRESS_ZSTD, 0, 4, in, len, &o4, &l4);
    assert_int_equal(l1, l4);
    assert_memory_equal(o1, o4, l1);
    static const unsigned char magic[] = {0x28, 0xb5, 0x2f, 0xfd};
    assert_memory_equal(o1, magic, sizeof magic);
    assert_true(l1 < len);
    if (!s_have("zstd"))
        fail_msg("zstd is not installed (tests/lib/deps.sh installs it)");
    s_assert_tool_decodes("zstd -dc", o4, l4, in, len);
    free(o1);
    free(o4);
    free(in);
}

typedef struct {
    unsigned char *buf;
    size_t len, cap;
    size_t refuse_after; /* 0 = never */
} s_sink_t;

static int s_sink(void *arg, const void *buf, size_t len)
{
    s_sink_t *k = arg;
    if (k->refuse_after && k->len + len > k->refuse_after)
        return -1;
    if (k->len + len > k->cap) {
        k->cap = (k->len + len) * 2;
        k->buf = realloc(k->buf, k->cap);
        assert_non_null(k->buf);
    }
    memcpy(k->buf + k->len, buf, len);
    k->len += len;
    return 0;
}

/* Odd-sized writes (a tar writer's 10 KiB blocks, single bytes) give the
 * bytes one big write gives: pieces are cut by position, not by write. */
static void compress_output_independent_of_write_sizes(void **state)
{
    (void)state;
    size_t len = 3 * MIB + 5;
    unsigned char *in = s_mixed(len), *whole;
    size_t whole_len;
    for (int algo = AF_COMPRESS_GZIP; algo <= AF_COMPRESS_ZSTD; algo++) {
        s_compress((af_compress_algo_t)algo, 0, 3, in, len, &whole, &whole_len);
        s_sink_t k = {0};
        af_err_t err = {0};
        af_compress_t *c = af_compress_new((af_compress_algo_t)algo, 0, 3, s_sink, &k, &err);
        assert_non_null(c);
        size_t off = 0, step = 1;
        while (off < len) {
            size_t n = len - off < step ? len - off : step;
            assert_int_equal(af_compress_write(c, in + off, n, &err), 0);
            off += n;
            step = step == 1 ? 10240 : step == 10240 ? 65537 : 1;
        }
        assert_int_equal(af_compress_finish(c, &err), 0);
        af_compress_destroy(&c);
        assert_null(c);
        assert_int_equal(k.len, whole_len);
        assert_memory_equal(k.buf, whole, whole_len);
        free(k.buf);
        free(whole);
    }
    free(in);
}

/* Random data: every piece is stored, so the blob is the input plus 5
 * bytes per 64 KiB block plus the gzip header and trailer. */
static void compress_gzip_stores_incompressible_pieces(void **state)
{
    (void)state;
    size_t len = 2 * MIB + 100;
    unsigned char *in = malloc(len), *out;
    assert_non_null(in);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        in[i] = (unsigned char)(x >> 24);
    }
    size_t out_len;
    s_compress(AF_COMPRESS_GZIP, 9, 2, in, len, &out, &out_len);
    size_t blocks = 2 * ((MIB + 65534) / 65535) + 1;
    assert_int_equal(out_len, 10 + len + 5 * blocks + 8);
    assert_int_equal(out[8], 2); /* XFL: level 9 */
    s_assert_tool_decodes("gzip -dc", out, out_len, in, len);
    free(out);
    free(in);
}

/* Empty input and input of exactly one piece are valid streams too. */
static void compress_edge_sizes_round_trip(void **state)
{
    (void)state;
    size_t sizes[] = {0, 1, AF_COMPRESS_PIECE, 2 * AF_COMPRESS_PIECE};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *in = s_mixed(sizes[i] ? sizes[i] : 1), *o1, *o4;
        size_t l1, l4;
        s_compress(AF_COMPRESS_GZIP, 1, 1, in, sizes[i], &o1, &l1);
        s_compress(AF_COMPRESS_GZIP, 1, 4, in, sizes[i], &o4, &l4);
        assert_int_equal(l1, l4);
        assert_memory_equal(o1, o4, l1);
        s_assert_tool_decodes("gzip -dc", o1, l1, in, sizes[i]);
        free(o1);
        free(o4);
        s_compress(AF_COMPRESS_ZSTD, 1, 2, in, sizes[i], &o1, &l1);
        s_assert_tool_decodes("zstd -dc", o1, l1, in, sizes[i]);
        free(o1);
        free(in);
    }
}

static void compress_levels_change_the_output(void **state)
{
    (void)state;
    size_t len = 2 * MIB;
    unsigned char *in = s_mixed(len), *fast, *best;
    size_t lf, lb;
    s_compress(AF_COMPRESS_ZSTD, 1, 2, in, len, &fast, &lf);
    s_compress(AF_COMPRESS_ZSTD, 19, 2, in, len, &best, &lb);
    assert_true(lb <= lf);
    assert_false(lf == lb && !memcmp(fast, best, lf));
    s_assert_tool_decodes("zstd -dc", best, lb, in, len);
    free(fast);
    free(best);
    free(in);
}

static void compress_parse_specs(void **state)
{
    (void)state;
    af_compress_algo_t algo;
    int level = -1;
    af_err_t err = {0};
    assert_int_equal(af_compress_parse("gzip", &algo, &level, &err), 0);
    assert_int_equal(algo, AF_COMPRESS_GZIP);
    assert_int_equal(level, 0);
    assert_int_equal(af_compress_parse("zstd:19", &algo, &level, &err), 0);
    assert_int_equal(algo, AF_COMPRESS_ZSTD);
    assert_int_equal(level, 19);
    assert_int_equal(af_compress_parse("gzip:9", &algo, &level, &err), 0);
    assert_int_equal(level, 9);
    const char *bad[] = {"xz",      "gzip:10", "zstd:23", "zstd:0", "zstd:",
                         "gzip:-1", "gzip:3x", "",        "GZIP",   "zstd:99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_err_clear(&err);
        if (af_compress_parse(bad[i], &algo, &level, &err) != AF_ERR_INVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_true(err.msg[0] != '\0');
    }
    af_err_clear(&err);
    assert_int_equal(af_compress_parse("gzip:10", &algo, &level, &err), AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "1..9"));
    assert_null(af_compress_new(AF_COMPRESS_GZIP, 10, 1, s_sink, NULL, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    assert_int_equal(af_compress_threads(1), 1);
    assert_int_equal(af_compress_threads(1000), AF_COMPRESS_MAX_THREADS);
    assert_true(af_compress_threads(0) >= 1);
}

/* A sink that fails (a full disk) fails the write or the finish, and the
 * compressor refuses further use; destroy still joins its threads. */
static void compress_sink_refusal_is_an_error(void **state)
{
    (void)state;
    size_t len = 6 * MIB;
    unsigned char *in = s_mixed(len);
    for (int threads = 1; threads <= 4; threads += 3) {
        for (int algo = AF_COMPRESS_GZIP; algo <= AF_COMPRESS_ZSTD; algo++) {
            s_sink_t k = {.refuse_after = 100000};
            af_err_t err = {0};
            af_compress_t *c =
                af_compress_new((af_compress_algo_t)algo, 0, threads, s_sink, &k, &err);
            assert_non_null(c);
            int rc = af_compress_write(c, in, len, &err);
            if (rc == 0)
                rc = af_compress_finish(c, &err);
            assert_int_equal(rc, AF_ERR_IO);
            assert_non_null(strstr(err.msg, "refused"));
            assert_int_equal(af_compress_write(c, in, 10, &err), AF_ERR_STATE);
            af_compress_destroy(&c);
            af_compress_destroy(&c); /* safe twice */
            free(k.buf);
        }
    }
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compress_gzip_same_bytes_with_1_and_4_threads),
        cmocka_unit_test(compress_zstd_same_bytes_with_1_and_4_threads),
        cmocka_unit_test(compress_output_independent_of_write_sizes),
        cmocka_unit_test(compress_gzip_stores_incompressible_pieces),
        cmocka_unit_test(compress_edge_sizes_round_trip),
        cmocka_unit_test(compress_levels_change_the_output),
        cmocka_unit_test(compress_parse_specs),
        cmocka_unit_test(compress_sink_refusal_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
