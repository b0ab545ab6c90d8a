/* ctxdelta.h -- a build context sent as its difference from one the agent
 * already holds.
 *
 * A context travels as a canonical tar (archive.h). Its *index* cuts the
 * tar into members (each from the start of its header to the start of the
 * next; the last one runs to the end, end-of-archive blocks included) and
 * keeps each member's offset, length and sha256. From the index of a base
 * tar the agent holds and the new tar, the coordinator writes a *delta*:
 * instructions that rebuild the new tar from the base, copying a range of
 * the base or inserting literal bytes. An unchanged member costs one copy
 * instruction (17 bytes, and adjacent copies merge); a changed file costs
 * its tar member.
 *
 * The agent applies a delta as it arrives, holding no more than one
 * instruction header, and hands the rebuilt bytes to a sink (the context
 * writer, which checks the new tar's size and digest). A wrong or hostile
 * delta therefore ends in a bound checked here (a copy outside the base,
 * an unknown instruction, bytes after the end, a truncated stream) or in
 * that digest check; it never writes anything but the new tar.
 *
 * Delta format (integers are big-endian unsigned 64-bit):
 *
 *   "AFDELTA1"               8-byte magic
 *   'C' OFFSET LENGTH        copy LENGTH bytes of the base from OFFSET
 *   'D' LENGTH BYTES         LENGTH literal bytes
 *   'E'                      the end; nothing may follow
 *
 * Ownership: every _new/_build/_load returns an object the caller owns
 * and frees with its _destroy, which is NULL-safe and nulls the pointer.
 * File descriptors passed in are borrowed and read with pread (their file
 * offset is not used or moved), except where noted. */
#ifndef AF_COMMON_CTXDELTA_H
#define AF_COMMON_CTXDELTA_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"

#define AF_CTXDELTA_MAGIC "AFDELTA1"

typedef struct af_ctxindex af_ctxindex_t;

/* Indexes the tar of SIZE bytes at FD. Reads the whole tar once. NULL with
 * err on I/O failure, a file that is not a tar, or more than
 * AF_CONTEXT_MAX_FILES + 1 members. */
af_ctxindex_t *af_ctxindex_build(int fd, uint64_t size, af_err_t *err);

void af_ctxindex_destroy(af_ctxindex_t **self_p);

/* Number of members, and the size of the tar indexed. */
size_t af_ctxindex_count(const af_ctxindex_t *self);
uint64_t af_ctxindex_size(const af_ctxindex_t *self);

/* Saves the index, with DIGEST (the indexed tar's "sha256:<hex>"), to PATH
 * (written to a temp file, then renamed) / loads it back, the digest into
 * DIGEST. A file that is not a well-formed index is AF_ERR_PARSE. */
int af_ctxindex_save(const af_ctxindex_t *self, const char *digest, const char *path, af_err_t *err)
    __attribute__((warn_unused_result));
af_ctxindex_t *af_ctxindex_load(const char *path, char digest[AF_DIGEST_STR_MAX], af_err_t *err);

/* Writes to OUT_FD (at its current offset, with write) the delta that
 * turns the tar BASE indexes into the tar at NEW_FD that NEW_IDX indexes.
 * *SIZE_P is the delta's length. 0 or AF_ERR_IO with err. */
int af_ctxdelta_write(const af_ctxindex_t *base, const af_ctxindex_t *new_idx, int new_fd,
                      int out_fd, uint64_t *size_p, af_err_t *err)
    __attribute__((warn_unused_result));

/* Where applied bytes go, in order. Returns 0 or an AF_ERR_* code with err
 * set, which ends the application. */
typedef int(af_ctxdelta_sink_fn)(void *arg, const void *data, size_t len, af_err_t *err);

typedef struct af_ctxdelta_apply af_ctxdelta_apply_t;

/* Starts applying a delta against the base tar at BASE_FD (BASE_SIZE
 * bytes; borrowed, must stay open until destroy). SINK(ARG, ...) receives
 * the rebuilt tar. NULL only when out of memory. */
af_ctxdelta_apply_t *af_ctxdelta_apply_new(int base_fd, uint64_t base_size,
                                           af_ctxdelta_sink_fn *sink, void *arg);

/* Feeds the next LEN bytes of the delta. 0, or AF_ERR_PROTO (bad magic,
 * unknown instruction, a copy outside the base, bytes after the end; err
 * names the delta offset), AF_ERR_IO (reading the base) or the sink's
 * error. After an error the applier refuses everything. */
int af_ctxdelta_apply_feed(af_ctxdelta_apply_t *self, const void *data, size_t len, af_err_t *err)
    __attribute__((warn_unused_result));

/* 0 when the delta ended with 'E'; AF_ERR_PROTO for a truncated delta. */
int af_ctxdelta_apply_finish(const af_ctxdelta_apply_t *self, af_err_t *err)
    __attribute__((warn_unused_result));

/* Bytes of the delta fed so far, and bytes of the rebuilt tar produced. */
uint64_t af_ctxdelta_apply_fed(const af_ctxdelta_apply_t *self);
uint64_t af_ctxdelta_apply_produced(const af_ctxdelta_apply_t *self);

void af_ctxdelta_apply_destroy(af_ctxdelta_apply_t **self_p);

#endif
