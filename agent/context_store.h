/* context_store.h -- the agent's cache of received build contexts.
 *
 * Contexts live in DIR/<64 hex>.tar, named by their sha256. A coordinator
 * that sends a context the agent already holds is told so (ACCEPT
 * have_context) and sends nothing. Incoming contexts are written by a
 * writer to a temp file in DIR, digested while written, checked against
 * the expected digest and size, and renamed into place. The store keeps
 * the KEEP most recently used contexts; older ones are evicted, except
 * those pinned by a job that still needs them. Used from the agent loop
 * only (not thread-safe). */
#ifndef AF_AGENT_CONTEXT_STORE_H
#define AF_AGENT_CONTEXT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "limits.h"

typedef struct af_context_store af_context_store_t;
typedef struct af_context_writer af_context_writer_t;

/* Opens (creating, mode 0700) DIR, removes stale temp files, and indexes
 * the contexts present (most recent by mtime first). KEEP >= 1. Caller
 * owns; NULL with err on failure. */
af_context_store_t *af_context_store_new(const char *dir, size_t keep, af_err_t *err);
void af_context_store_destroy(af_context_store_t **self_p);

/* True if DIGEST ("sha256:<hex>") is stored. Marks it most recently used. */
bool af_context_store_has(af_context_store_t *self, const char *digest);

/* Path of DIGEST's tar into buf. 0, or AF_ERR_NOTFOUND / AF_ERR_INVAL. */
int af_context_store_path(const af_context_store_t *self, const char *digest, char *buf, size_t len)
    __attribute__((warn_unused_result));

/* Pins DIGEST against eviction (counted); unpin releases one pin. */
void af_context_store_pin(af_context_store_t *self, const char *digest);
void af_context_store_unpin(af_context_store_t *self, const char *digest);

/* Number of contexts held. */
size_t af_context_store_size(const af_context_store_t *self);

/* Evicts least recently used unpinned contexts beyond KEEP. */
void af_context_store_evict(af_context_store_t *self);

/* Starts receiving a context of SIZE bytes that must hash to DIGEST.
 * Caller owns; NULL with err on failure (bad digest, size over
 * AF_CONTEXT_MAX_BYTES, I/O). */
af_context_writer_t *af_context_writer_new(af_context_store_t *store, const char *digest,
                                           uint64_t size, af_err_t *err);

/* Removes the temp file unless committed. NULL-safe; nulls *self_p. */
void af_context_writer_destroy(af_context_writer_t **self_p);

/* Appends LEN bytes at OFFSET, which must equal the bytes written so far;
 * the total may not exceed SIZE. AF_ERR_PROTO for a gap, an overlap or
 * excess bytes, AF_ERR_IO for a write failure; err names the offsets. */
int af_context_writer_write(af_context_writer_t *self, uint64_t offset, const void *data,
                            size_t len, af_err_t *err) __attribute__((warn_unused_result));

/* Bytes written so far. */
uint64_t af_context_writer_offset(const af_context_writer_t *self);

/* True when all SIZE bytes were written. */
bool af_context_writer_complete(const af_context_writer_t *self);

/* Checks the digest and moves the file into the store, pinned once for
 * the caller (who unpins it when done), then evicts.
 * AF_ERR_DIGEST "context digest mismatch: expected X, got Y",
 * AF_ERR_STATE if incomplete. The writer is spent either way. */
int af_context_writer_commit(af_context_writer_t *self, af_err_t *err)
    __attribute__((warn_unused_result));

#endif
