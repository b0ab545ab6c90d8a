/* archive.h -- deterministic tar writing and safe tar extraction.
 *
 * Three jobs, all streaming (never a whole file in memory):
 *  - pack a build context directory into an uncompressed tar, honouring
 *    .dockerignore, deterministically (sorted, fixed mtime, uid/gid 0,
 *    no uname/gname, PAX only where needed), digesting as it writes;
 *  - write an image layer (tar+gzip or tar+zstd, compress.h) from a
 *    list of (host path -> image path) entries, yielding both the diff_id
 *    (sha256 of the tar) and the blob digest (sha256 of the compressed
 *    bytes);
 *  - extract an untrusted tar into a directory: no absolute paths, no "..",
 *    no links escaping the directory, no devices/FIFOs/sockets, bounded
 *    size and file count. Uses libarchive for reading/writing tar, and
 *    compress.c (zlib, libzstd) for layer compression. */
#ifndef AF_ARCHIVE_H
#define AF_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "compress.h"
#include "error.h"
#include "limits.h"

/* Progress callback: bytes done so far. May be NULL. Returning non-zero
 * cancels the operation (AF_ERR_CANCELLED). */
typedef int(af_archive_progress_fn)(uint64_t done, void *arg);

typedef struct {
    char digest[AF_DIGEST_STR_MAX]; /* sha256 of the written file */
    uint64_t size;                  /* bytes written */
    uint64_t files;                 /* entries written */
} af_pack_result_t;

/* Packs DIR (recursively) into OUT_PATH as an uncompressed tar. Paths are
 * relative, sorted bytewise, "./" free; mtime = MTIME for every entry;
 * mode kept (permission bits), owner 0:0; symlinks stored as links;
 * other special files are skipped with a warning. .dockerignore at DIR's
 * root is honoured (Docker's rules: patterns with ** and ?, leading "!"
 * re-includes, comments). .dockerignore, Dockerfile and archfarm.yaml at
 * the root are always included. An excluded directory is walked only when
 * a "!" pattern could re-include something below it, and its own entry is
 * written only if something below it is. OUT_PATH, if inside DIR, is not
 * packed. Bounded by AF_CONTEXT_MAX_FILES / AF_CONTEXT_MAX_BYTES
 * (AF_ERR_TOOBIG). Returns 0 or an error with the offending path in err;
 * on error OUT_PATH is removed. */
int af_archive_pack_context(const char *dir, const char *out_path, int64_t mtime,
                            af_pack_result_t *result, af_err_t *err)
    __attribute__((warn_unused_result));

/* True for the names packed at the context's root whatever .dockerignore
 * or ONLY says: .dockerignore, Dockerfile, archfarm.yaml. */
bool af_archive_always_included(const char *name);

/* af_archive_pack_context into OUT_FD (borrowed, open for writing, e.g. an
 * unnamed O_TMPFILE that no crash can leave behind), written from its
 * current offset; OUT_NAME (may be NULL) names it in errors. On error the
 * fd holds a partial tar: the caller discards it. A symlink whose target
 * is absolute or leaves the context is refused (AF_ERR_UNSAFE, naming the
 * entry) by both functions: agents refuse to extract it.
 * ONLY (N_ONLY patterns, .dockerignore syntax; borrowed; NULL for the
 * whole context) narrows the tar to the entries some pattern matches
 * (a directory pattern takes its whole tree), after .dockerignore and
 * besides the files always included; directories are written only as
 * parents of what is (a recipe's build.inputs: one platform's slice). */
int af_archive_pack_context_fd(const char *dir, int out_fd, const char *out_name, int64_t mtime,
                               const char *const *only, size_t n_only, af_pack_result_t *result,
                               af_err_t *err) __attribute__((warn_unused_result));

/* One layer entry: the file SRC on the host becomes DEST in the image.
 * When SRC is a directory its whole tree is added below DEST. Missing
 * parent directories of DEST are added (mode 0755). */
typedef struct {
    const char *src;  /* host path, borrowed */
    const char *dest; /* absolute image path, e.g. "/hello", borrowed */
} af_layer_entry_t;

typedef struct {
    char diff_id[AF_DIGEST_STR_MAX]; /* sha256 of the uncompressed tar */
    char digest[AF_DIGEST_STR_MAX];  /* sha256 of the compressed blob */
    uint64_t size;                   /* blob size */
} af_layer_result_t;

/* How a layer is compressed (compress.h). Zeroed = gzip at its default
 * level with one thread per CPU. */
typedef struct {
    af_compress_algo_t algo;
    int level;   /* 0 = the algorithm's default */
    int threads; /* 0 = the online CPUs; the output does not depend on it */
} af_layer_opts_t;

/* Writes a compressed layer to OUT_PATH (OPTS, NULL = gzip defaults).
 * Deterministic: sorted entries, mtime = MTIME, uid/gid 0, no names, gzip
 * header with mtime 0 and no file name, the same bytes for any thread
 * count. Every SRC must resolve inside ROOT (symlinks included), else
 * AF_ERR_UNSAFE naming the entry. SRC is a host path (a relative one is
 * relative to the cwd); a SRC that is itself a symlink is followed, while
 * symlinks inside a directory SRC are stored as symlinks. When two entries
 * give the same DEST the later one wins; a DEST below a non-directory is
 * AF_ERR_INVAL, a DEST with ".." AF_ERR_UNSAFE. On error OUT_PATH is
 * removed. */
int af_archive_write_layer(const char *root, const af_layer_entry_t *entries, size_t n,
                           const char *out_path, int64_t mtime, const af_layer_opts_t *opts,
                           af_layer_result_t *result, af_err_t *err)
    __attribute__((warn_unused_result));

typedef struct {
    uint64_t max_bytes; /* total regular-file bytes; 0 = AF_CONTEXT_MAX_BYTES */
    uint64_t max_files; /* entries; 0 = AF_CONTEXT_MAX_FILES */
} af_extract_limits_t;

/* Extracts the tar at TAR_PATH (plain or gzip) into DEST_DIR, which must
 * exist and be empty. Rejects, naming the entry: absolute paths, any ".."
 * component, hardlinks whose target is outside DEST_DIR or not yet
 * extracted, symlinks whose target resolves outside DEST_DIR, writing
 * through a symlink, devices, FIFOs, sockets, and crossing the limits.
 * On error nothing outside DEST_DIR was touched; DEST_DIR may hold a
 * partial tree that the caller removes. LIMITS may be NULL (defaults).
 * Details: files keep their permission bits masked to 0777 (no setuid,
 * setgid, sticky); directories always keep owner rwx; parents missing from
 * the tar are made 0755 and count as entries; a later non-directory entry
 * replaces an earlier one of the same name; a symlink target must be
 * relative, with ".." only before any name, and stay inside DEST_DIR; a
 * 0-byte file is an empty archive. Messages read
 * `context: entry "NAME": REASON`; unreadable input is AF_ERR_PARSE. */
int af_archive_extract(const char *tar_path, const char *dest_dir,
                       const af_extract_limits_t *limits, af_err_t *err)
    __attribute__((warn_unused_result));

/* Removes PATH recursively without following symlinks. 0 if PATH is gone
 * afterwards (absent is fine). */
int af_remove_tree(const char *path, af_err_t *err) __attribute__((warn_unused_result));

#endif
