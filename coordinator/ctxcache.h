/* ctxcache.h -- the context's digest from its metadata (a stat cache, in
 * the spirit of git's index).
 *
 * Packing a context reads every byte to learn the tar's digest. The tar is
 * a pure function of the files' paths, modes, sizes and contents, of
 * .dockerignore, of SOURCE_DATE_EPOCH and of this version's tar writer, so
 * when a walk of the context finds every entry with the same path, type,
 * mode, size, mtime, ctime, inode and link target as when the context was
 * last packed, the tar is the one packed then, and its digest is known
 * without reading a file. The walk only stats (it does not open files);
 * any difference, even a `touch`, is a miss and the context is packed.
 *
 * A pack's result is recorded only when two walks, before and after the
 * pack, agree and no entry changed within S_RACY_MS of the first walk
 * (a write in the same timestamp tick as our stat could otherwise go
 * unseen: git's "racily clean" entries).
 *
 * The cache lives in $ARCHFARM_CACHE_DIR, else $XDG_CACHE_HOME/archfarm,
 * else ~/.cache/archfarm: one small file per context directory
 * (contexts/<sha256 of its real path>). A cache that cannot be read or
 * written is no cache: never an error. */
#ifndef AF_COORD_CTXCACHE_H
#define AF_COORD_CTXCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"
#include "digest.h"

/* A walk of one context: its signature and the newest timestamp seen. */
typedef struct {
    char sig[AF_DIGEST_STR_MAX];
    int64_t newest_ns; /* latest mtime/ctime of any entry */
    int64_t walked_ns; /* CLOCK_REALTIME when the walk began */
    bool ok;           /* false: the walk failed (then nothing is cached) */
} af_ctxwalk_t;

/* Walks DIR (real path) and fills OUT. Stats only. ONLY (N_ONLY
 * patterns, borrowed; NULL for the whole context) limits the walk to the
 * entries a tar narrowed to them can hold (build.inputs), so that a
 * change elsewhere leaves that variant's record valid. */
void af_ctxcache_walk(const char *dir, int64_t sde, const char *const *only, size_t n_only,
                      af_ctxwalk_t *out);

/* VARIANT names which tar of DIR a record is about: "" for the whole
 * context, else the patterns it was narrowed to (build.inputs, joined by
 * '\n'); each variant has its own record. */

/* True, with RESULT filled, when VARIANT of DIR was packed with SDE into
 * a tar whose walk signature was WALK's. */
bool af_ctxcache_lookup(const char *dir, const char *variant, int64_t sde, const af_ctxwalk_t *walk,
                        af_pack_result_t *result);

/* Records RESULT for VARIANT of DIR when BEFORE and AFTER (walks around
 * the pack) agree and nothing was racily new. Failures are ignored
 * (logged at debug). */
void af_ctxcache_store(const char *dir, const char *variant, int64_t sde,
                       const af_ctxwalk_t *before, const af_ctxwalk_t *after,
                       const af_pack_result_t *result);

/* Incremental transfer (ctxdelta.h). VARIANT of DIR was just packed into the tar at
 * TAR_FD (TAR_SIZE bytes, DIGEST; borrowed, read with pread). Records that
 * tar's index (contexts/<key>.idx, with its digest) for the next build
 * and, when the index of the tar DIR was packed into before is on record
 * and that tar differs, writes the delta from it to this one into OUT_FD
 * (borrowed, written from its current offset). True, with *DELTA_SIZE and
 * BASE (that earlier tar's digest), when a delta was written and is worth
 * sending: smaller than half the tar. Reads the whole tar once. Never an
 * error: without a delta the whole tar is sent. */
bool af_ctxcache_delta(const char *dir, const char *variant, int tar_fd, uint64_t tar_size,
                       const char *digest, int out_fd, uint64_t *delta_size,
                       char base[AF_DIGEST_STR_MAX]);

#endif
