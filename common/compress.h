/* compress.h -- layer compression: parallel gzip and multi-threaded zstd
 * whose output does not depend on the thread count.
 *
 * A streaming compressor: the caller writes uncompressed bytes, the
 * compressed stream comes out through a sink callback, in order, from the
 * caller's thread. archive.c packs layers through it; the agent picks the
 * algorithm and level from BUILD (`compression`, `compression_level`).
 *
 * gzip works like pigz: the input is cut into AF_COMPRESS_PIECE (1 MiB)
 * pieces, each deflated on its own (raw deflate, primed with the 32 KiB of
 * input before it as the dictionary, ended with a sync flush so pieces
 * join on a byte boundary; the last one ends the stream), and the pieces
 * are concatenated into one gzip member with a fixed header (mtime 0, no
 * name, OS 255) and the CRC-32/size trailer of the whole input. A piece
 * that deflate cannot shrink is stored instead (stored blocks), and a
 * piece whose three 16 KiB samples (start, middle, end) shrink by less
 * than 3 % at level 1 is stored without deflating it at all: random or
 * already compressed data costs a copy, not a deflate. Each piece
 * depends only on its own bytes and the 32 KiB before it, so the output
 * is the same for 1 thread or 16, and any gzip reader decodes it.
 *
 * zstd uses libzstd's own workers (ZSTD_c_nbWorkers), always at least one:
 * libzstd's multi-threaded format is identical for every worker count >= 1
 * (it differs from the single-threaded nbWorkers=0 mode, which is never
 * used). The frame carries a content checksum. */
#ifndef AF_COMPRESS_H
#define AF_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AF_COMPRESS_PIECE (1024 * 1024) /* gzip piece: the unit of parallel work */
#define AF_COMPRESS_DICT (32 * 1024)    /* deflate window primed from the previous piece */
#define AF_COMPRESS_MAX_THREADS 64
#define AF_GZIP_DEFAULT_LEVEL 6
#define AF_ZSTD_DEFAULT_LEVEL 3

typedef enum {
    AF_COMPRESS_GZIP = 0,
    AF_COMPRESS_ZSTD,
} af_compress_algo_t;

typedef struct af_compress af_compress_t;

/* Receives compressed bytes, in stream order, on the writer's thread.
 * Returns 0, or non-zero to stop (the write then fails with AF_ERR_IO). */
typedef int(af_compress_sink_fn)(void *arg, const void *buf, size_t len);

/* Parses "gzip", "zstd", "gzip:LEVEL", "zstd:LEVEL" (the CLI's
 * --compression) into *algo and *level (0 when no level is given). An
 * unknown name or a level out of range (gzip 1..9, zstd 1..22) is
 * AF_ERR_INVAL with a message naming it. */
int af_compress_parse(const char *spec, af_compress_algo_t *algo, int *level, af_err_t *err)
    __attribute__((warn_unused_result));

/* "gzip" / "zstd". Cannot fail. */
const char *af_compress_name(af_compress_algo_t algo);

/* Checks LEVEL for ALGO: 0 (the default) or in range. 0 or AF_ERR_INVAL
 * with a message. */
int af_compress_check_level(af_compress_algo_t algo, int level, af_err_t *err)
    __attribute__((warn_unused_result));

/* The thread count for THREADS: 0 means the online CPUs; capped at
 * AF_COMPRESS_MAX_THREADS. Cannot fail. */
int af_compress_threads(int threads);

/* A compressor for ALGO at LEVEL (0 = the default) with THREADS workers
 * (0 = af_compress_threads(0)); compressed bytes go to SINK(ARG), which
 * is borrowed and must outlive the compressor. Caller owns; NULL with err
 * set on a bad level or out of memory. */
af_compress_t *af_compress_new(af_compress_algo_t algo, int level, int threads,
                               af_compress_sink_fn *sink, void *arg, af_err_t *err);

/* Compresses LEN bytes of BUF (borrowed for the call). May call the sink
 * zero or more times. 0 or an error (AF_ERR_IO: the sink refused;
 * AF_ERR_STATE: a library error; AF_ERR_NOMEM). After an error only
 * destroy is allowed. */
int af_compress_write(af_compress_t *self, const void *buf, size_t len, af_err_t *err)
    __attribute__((warn_unused_result));

/* Ends the stream: everything left goes to the sink, then the trailer.
 * 0 or an error as above. Call once. */
int af_compress_finish(af_compress_t *self, af_err_t *err) __attribute__((warn_unused_result));

/* Stops and joins the workers, frees everything, nulls *self_p. NULL-safe. */
void af_compress_destroy(af_compress_t **self_p);

/* One-shot helper for tests and benchmarks: compresses BUF[LEN] into a
 * malloc'd *out_p (caller owns) of *out_len bytes. 0 or an error. */
int af_compress_buffer(af_compress_algo_t algo, int level, int threads, const void *buf, size_t len,
                       unsigned char **out_p, size_t *out_len, af_err_t *err)
    __attribute__((warn_unused_result));

#endif
