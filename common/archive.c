/* archive.c -- deterministic tar writing and safe tar extraction.
 *
 * The coordinator packs a build context with af_archive_pack_context(); the
 * agent unpacks it with af_archive_extract() and, after the build step,
 * writes the image layer with af_archive_write_layer(). All three stream
 * through one bounded buffer: libarchive writes into a callback sink that
 * digests the tar bytes (and, for layers, compresses them with compress.c
 * and digests the compressed bytes) on the way to the file, and extraction copies
 * data blocks straight from libarchive to disk.
 *
 * Extraction never hands paths to the kernel relative to the process cwd
 * and never uses archive_write_disk: every entry is checked lexically
 * first, then created relative to a directory fd of DEST_DIR, walking the
 * parents one component at a time with O_NOFOLLOW, so nothing can be
 * written through a symlink, whatever order the entries come in. */
#include "archive.h"

#include <archive.h> /* libarchive */
#include <archive_entry.h>
#include <inttypes.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "digest.h"
#include "dockerignore.h"
#include "log.h"

#define S_BUF (64 * 1024)

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static int s_write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copies S into OUT (CAP bytes) with control bytes replaced by '?', so a
 * hostile entry name cannot forge lines in a message. Cannot fail. */
static const char *s_printable(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (!s)
        s = "(null)";
    for (; *s && o + 1 < cap; s++)
        out[o++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    out[o] = '\0';
    return out;
}

/* The next name in the '/'-separated path at *REST, skipping empty and "."
 * components: returns where it starts, sets *LEN (the name is not
 * NUL-terminated) and moves *REST past it. NULL at the end of the path.
 * Cannot fail. */
static const char *s_next_name(const char **rest, size_t *len)
{
    const char *p = *rest;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p) {
            *rest = p;
            return NULL;
        }
        const char *e = strchr(p, '/');
        *len = e ? (size_t)(e - p) : strlen(p);
        *rest = p + *len;
        if (!(*len == 1 && p[0] == '.'))
            return p;
        p = *rest;
    }
}

static bool s_is_dotdot(const char *name, size_t len)
{
    return len == 2 && name[0] == '.' && name[1] == '.';
}

/* A symlink target is accepted when it is relative, has no ".." after a
 * name (so no symlink met on the way can be climbed out of), and its
 * leading ".."s stay within the link's own depth. PATH is the link's own
 * normalised path in the context. The one rule for both sides: the packer
 * refuses what an agent's extraction would refuse, so a bad context is a
 * usage error on the coordinator, not a failed slice on every node. NULL
 * when accepted, else why not: a static format with at most one "%s" (the
 * target), and *CODE the error code. */
static const char *s_link_problem(const char *path, const char *target, int *code)
{
    *code = AF_ERR_UNSAFE;
    if (!*target)
        return "empty symlink target";
    if (target[0] == '/')
        return "symlink target \"%s\" is absolute";
    if (strlen(target) >= PATH_MAX) {
        *code = AF_ERR_TOOBIG;
        return "symlink target longer than PATH_MAX";
    }
    long depth = 0; /* components of the link's directory */
    for (const char *s = path; (s = strchr(s, '/')); s++)
        depth++;
    bool named = false;
    size_t len;
    for (const char *p, *rest = target; (p = s_next_name(&rest, &len));) {
        if (!s_is_dotdot(p, len)) {
            named = true;
            continue;
        }
        if (named)
            return "symlink target \"%s\" has \"..\" after a name";
        if (--depth < 0)
            return "symlink target \"%s\" escapes the context";
    }
    return NULL;
}

/* Formats s_link_problem's verdict WHY for TARGET into OUT. */
static void s_link_why(const char *why, const char *target, char *out, size_t size)
{
    char pt[200];
    s_printable(target, pt, sizeof pt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(out, size, why, pt);
#pragma GCC diagnostic pop
}

/* Appends NAME (LEN bytes) to the normalised path OUT of length O, with a
 * '/' unless OUT is empty; returns the new length. The caller has checked
 * that it fits. */
static size_t s_put_name(char *out, size_t o, const char *name, size_t len)
{
    if (o)
        out[o++] = '/';
    memcpy(out + o, name, len);
    return o + len;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void s_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Reads the names in directory DFD (without . and ..), sorted bytewise.
 * Caller frees with s_free_names. 0, or -errno. */
static int s_list_dir(int dfd, size_t max, char ***names_p, size_t *n_p)
{
    int fd = dup(dfd);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    rewinddir(d);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = -errno;
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n >= max) {
            rc = -EFBIG;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc != 0) {
        s_free_names(names, n);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, s_cmp_str);
    *names_p = names;
    *n_p = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* the write sink: tar bytes -> sha256 (+ compress -> sha256) -> file   */

typedef struct {
    int fd;
    const char *path;
    af_digest_t *tar_digest;
    af_compress_t *z; /* NULL: a plain tar (contexts) */
    af_digest_t *z_digest;
    uint64_t z_size;
    int saved_errno;
} s_sink_t;

/* The compressor's sink (and the plain tar's): digest, count, write. */
static int s_sink_emit(void *arg, const void *buf, size_t len)
{
    s_sink_t *k = arg;
    if (k->z_digest) {
        if (af_digest_update(k->z_digest, buf, len) != 0)
            return -1;
        k->z_size += len;
    }
    if (s_write_all(k->fd, buf, len) != 0) {
        k->saved_errno = errno;
        return -1;
    }
    return 0;
}

/* " (ENOSPC: the disk is full)" and the like for errors a user fixes on the
 * host, "" otherwise (issue 12, finding 9: "compress ... failed" said
 * nothing). */
static const char *s_disk_hint(int e)
{
    if (e == ENOSPC)
        return " (ENOSPC: the disk is full)";
    if (e == EDQUOT)
        return " (EDQUOT: over the disk quota)";
    if (e == EFBIG)
        return " (EFBIG: over the file size limit)";
    return "";
}

static la_ssize_t s_sink_write(struct archive *a, void *arg, const void *buf, size_t len)
{
    s_sink_t *k = arg;
    if (af_digest_update(k->tar_digest, buf, len) != 0) {
        archive_set_error(a, ENOMEM, "digest failed");
        return -1;
    }
    int rc = 0;
    af_err_t zerr = {0};
    if (!k->z)
        rc = s_sink_emit(k, buf, len);
    else
        rc = af_compress_write(k->z, buf, len, &zerr);
    if (rc != 0) {
        if (k->saved_errno)
            archive_set_error(a, k->saved_errno, "write %s: %s%s", k->path,
                              strerror(k->saved_errno), s_disk_hint(k->saved_errno));
        else
            archive_set_error(a, EIO, "compress %s: %s", k->path, zerr.msg);
        return -1;
    }
    return (la_ssize_t)len;
}

/* The error of a failed compressor call on K: the disk's (ENOSPC named)
 * when writing failed, else the compressor's ZERR after WHAT. */
static int s_sink_error(const s_sink_t *k, const af_err_t *zerr, const char *what, af_err_t *err)
{
    if (k->saved_errno)
        return af_err_set(err, AF_ERR_IO, "%s: write: %s%s", k->path, strerror(k->saved_errno),
                          s_disk_hint(k->saved_errno));
    return af_err_set(err, zerr->code ? zerr->code : AF_ERR_IO, "%s: %s: %s", k->path, what,
                      zerr->msg);
}

/* Opens K on PATH (created or truncated), or, with FD >= 0, on a duplicate
 * of FD (borrowed; written from its current offset) with PATH only naming
 * it in errors. With OPTS the bytes are compressed (a layer), without they
 * are a plain tar (a context). */
static int s_sink_open(s_sink_t *k, const char *path, int fd, const af_layer_opts_t *opts,
                       af_err_t *err)
{
    memset(k, 0, sizeof *k);
    k->fd = -1;
    k->path = path;
    k->tar_digest = af_digest_new();
    if (!k->tar_digest)
        return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", path);
    k->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0)
                    : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (k->fd < 0)
        return af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    if (opts) {
        if (!(k->z_digest = af_digest_new()))
            return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", path);
        /* gzip: fixed header (mtime 0, no name, OS 255) and pieces that do
         * not depend on the thread count, so the blob is the same everywhere.
         * The compressor writes its header at once: the file is open. */
        af_err_t zerr = {0};
        if (!(k->z =
                  af_compress_new(opts->algo, opts->level, opts->threads, s_sink_emit, k, &zerr)))
            return s_sink_error(k, &zerr, "compress", err);
    }
    return 0;
}

/* Flushes the compressor, closes the file. 0 or an error. */
static int s_sink_finish(s_sink_t *k, af_err_t *err)
{
    if (k->z) {
        af_err_t zerr = {0};
        if (af_compress_finish(k->z, &zerr) != 0)
            return s_sink_error(k, &zerr, "compress", err);
    }
    int fd = k->fd;
    k->fd = -1;
    if (close(fd) != 0)
        return af_err_set(err, AF_ERR_IO, "%s: close: %s", k->path, strerror(errno));
    return 0;
}

static void s_sink_close(s_sink_t *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    af_compress_destroy(&k->z);
    af_digest_destroy(&k->tar_digest);
    af_digest_destroy(&k->z_digest);
}

/* A deterministic tar writer into K: restricted pax, i.e. plain ustar
 * unless a field needs a pax record (long or non-ASCII names, big sizes).
 * A name that is not valid in the locale's charset is stored as raw bytes
 * (hdrcharset=BINARY) for that entry only. */
static struct archive *s_tar_writer(s_sink_t *k, af_err_t *err)
{
    struct archive *a = archive_write_new();
    if (!a) {
        af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", k->path);
        return NULL;
    }
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open2(a, k, NULL, s_sink_write, NULL, NULL) != ARCHIVE_OK) {
        af_err_set(err, AF_ERR_STATE, "%s: tar writer: %s", k->path, archive_error_string(a));
        archive_write_free(a);
        return NULL;
    }
    return a;
}

/* Ends the tar stream of A and flushes sink K into its file. 0 or an
 * error naming the file. */
static int s_tar_close(struct archive *a, s_sink_t *k, af_err_t *err)
{
    if (archive_write_close(a) != ARCHIVE_OK)
        return af_err_set(err, AF_ERR_IO, "%s: %s", k->path, archive_error_string(a));
    return s_sink_finish(k, err);
}

/* The cleanup of a tar write: frees A (may be NULL), closes K when
 * SINK_OPEN, and with REMOVE unlinks the half-written file. Cannot fail. */
static void s_tar_release(struct archive *a, s_sink_t *k, bool sink_open, bool remove)
{
    if (a)
        archive_write_free(a);
    if (sink_open)
        s_sink_close(k);
    if (remove)
        unlink(k->path);
}

/* Writes one entry header. TYPE is AE_IFREG/AE_IFDIR/AE_IFLNK. */
static int s_put_header(struct archive *a, const char *name, unsigned type, mode_t perm,
                        uint64_t size, const char *link, int64_t mtime, af_err_t *err)
{
    char pn[256];
    /* libarchive takes a time_t, 32 bits wide in Debian 12's armhf ABI:
     * refuse what it would wrap, never write a different date */
    if ((int64_t)(time_t)mtime != mtime)
        return af_err_set(err, AF_ERR_UNSUPPORTED,
                          "%s: mtime %" PRId64 " does not fit this build's %zu-bit time_t "
                          "(a SOURCE_DATE_EPOCH after 2038 needs a 64-bit time_t build)",
                          name, mtime, sizeof(time_t) * 8);
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    archive_entry_copy_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm & 07777);
    archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)size : 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, (time_t)mtime, 0);
    if (type == AE_IFLNK)
        archive_entry_copy_symlink(e, link);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r < ARCHIVE_WARN)
        return af_err_set(err, AF_ERR_IO, "\"%s\": tar header: %s",
                          s_printable(name, pn, sizeof pn), archive_error_string(a));
    return 0;
}

/* Streams SIZE bytes of FD into the current entry. The file must keep that
 * size while it is read. */
static int s_put_data(struct archive *a, int fd, uint64_t size, unsigned char *buf,
                      const char *name, af_err_t *err)
{
    char pn[256];
    uint64_t left = size;
    while (left > 0) {
        size_t want = left < S_BUF ? (size_t)left : S_BUF;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return af_err_set(err, AF_ERR_IO, "\"%s\": read: %s", s_printable(name, pn, sizeof pn),
                              strerror(errno));
        if (n == 0)
            return af_err_set(err, AF_ERR_IO, "\"%s\": file shrank while being archived",
                              s_printable(name, pn, sizeof pn));
        la_ssize_t w = archive_write_data(a, buf, (size_t)n);
        if (w != n)
            return af_err_set(err, AF_ERR_IO, "\"%s\": tar write: %s",
                              s_printable(name, pn, sizeof pn), archive_error_string(a));
        left -= (uint64_t)n;
    }
    ssize_t extra;
    do
        extra = read(fd, buf, 1);
    while (extra < 0 && errno == EINTR);
    if (extra > 0)
        return af_err_set(err, AF_ERR_IO, "\"%s\": file grew while being archived",
                          s_printable(name, pn, sizeof pn));
    return 0;
}

/* ------------------------------------------------------------------ */
/* pack_context                                                          */

/* A directory whose header is written only once something below it is:
 * excluded directories that a "!" pattern re-enters. */
typedef struct s_pending {
    struct s_pending *parent;
    size_t path_len; /* its path is pack->path[0..path_len) */
    mode_t perm;
    bool written;
} s_pending_t;

typedef struct {
    struct archive *a;
    af_dockerignore_t *di;
    af_dockerignore_t *only; /* NULL: the whole context */
    int64_t mtime;
    unsigned char *buf;
    char path[AF_CONTEXT_MAX_PATH + 1];
    char name[AF_CONTEXT_MAX_PATH + 1];
    uint64_t files, bytes;
    dev_t out_dev;
    ino_t out_ino;
    af_err_t *err;
} s_pack_t;

static int s_pack_count(s_pack_t *c, uint64_t size)
{
    char pn[256];
    if (++c->files > AF_CONTEXT_MAX_FILES)
        return af_err_set(c->err, AF_ERR_TOOBIG, "context: more than %d files (at \"%s\")",
                          AF_CONTEXT_MAX_FILES, s_printable(c->path, pn, sizeof pn));
    c->bytes += size;
    if (c->bytes > (uint64_t)AF_CONTEXT_MAX_BYTES)
        return af_err_set(c->err, AF_ERR_TOOBIG, "context: larger than %lld bytes (at \"%s\")",
                          (long long)AF_CONTEXT_MAX_BYTES, s_printable(c->path, pn, sizeof pn));
    return 0;
}

static int s_pack_flush(s_pack_t *c, s_pending_t *p)
{
    if (!p || p->written)
        return 0;
    int rc = s_pack_flush(c, p->parent);
    if (rc)
        return rc;
    memcpy(c->name, c->path, p->path_len);
    c->name[p->path_len] = '\0';
    if ((rc = s_pack_count(c, 0)) != 0)
        return rc;
    if ((rc = s_put_header(c->a, c->name, AE_IFDIR, p->perm, 0, NULL, c->mtime, c->err)) != 0)
        return rc;
    p->written = true;
    return 0;
}

bool af_archive_always_included(const char *name)
{
    return !strcmp(name, ".dockerignore") || !strcmp(name, "Dockerfile") ||
           !strcmp(name, "archfarm.yaml");
}

static int s_pack_dir(s_pack_t *c, int dfd, size_t plen, s_pending_t *here);

static int s_pack_entry(s_pack_t *c, int dfd, const char *nm, size_t len, s_pending_t *here)
{
    char pn[256];
    int rc = 0;
    struct stat st;
    if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0; /* vanished while walking */
        return af_err_set(c->err, AF_ERR_IO, "context: \"%s\": %s",
                          s_printable(c->path, pn, sizeof pn), strerror(errno));
    }
    bool always = here == NULL && af_archive_always_included(nm);
    bool ex_di = !always && af_dockerignore_excluded(c->di, c->path);
    bool ex_only = !always && c->only && af_dockerignore_excluded(c->only, c->path);
    bool excluded = ex_di || ex_only;
    if (S_ISDIR(st.st_mode)) {
        if ((ex_di && !af_dockerignore_may_include_below(c->di, c->path)) ||
            (ex_only && !af_dockerignore_may_include_below(c->only, c->path)))
            return 0;
        s_pending_t p = {.parent = here, .path_len = len, .perm = st.st_mode & 07777};
        if (!excluded && (rc = s_pack_flush(c, &p)) != 0)
            return rc;
        int cfd = openat(dfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0)
            return af_err_set(c->err, AF_ERR_IO, "context: \"%s\": %s",
                              s_printable(c->path, pn, sizeof pn), strerror(errno));
        rc = s_pack_dir(c, cfd, len, &p);
        close(cfd);
        return rc;
    }
    if (excluded)
        return 0;
    if (S_ISREG(st.st_mode)) {
        if (st.st_dev == c->out_dev && st.st_ino == c->out_ino)
            return 0; /* the tar being written lives inside the context */
        int fd = openat(dfd, nm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return af_err_set(c->err, AF_ERR_IO, "context: \"%s\": %s",
                              s_printable(c->path, pn, sizeof pn), strerror(errno));
        struct stat fst;
        if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st.st_ino) {
            close(fd);
            return af_err_set(c->err, AF_ERR_IO, "context: \"%s\": changed while packing",
                              s_printable(c->path, pn, sizeof pn));
        }
        uint64_t size = (uint64_t)fst.st_size;
        if ((rc = s_pack_count(c, size)) == 0 && (rc = s_pack_flush(c, here)) == 0) {
            if ((rc = s_put_header(c->a, c->path, AE_IFREG, fst.st_mode, size, NULL, c->mtime,
                                   c->err)) == 0)
                rc = s_put_data(c->a, fd, size, c->buf, c->path, c->err);
            if (rc)
                af_err_prefix(c->err, rc, "context");
        }
        close(fd);
        return rc;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(dfd, nm, target, sizeof target - 1);
        if (n < 0)
            return af_err_set(c->err, AF_ERR_IO, "context: \"%s\": readlink: %s",
                              s_printable(c->path, pn, sizeof pn), strerror(errno));
        target[n] = '\0';
        int code;
        const char *why = s_link_problem(c->path, target, &code);
        if (why) {
            char text[300];
            s_link_why(why, target, text, sizeof text);
            return af_err_set(c->err, code, "context: \"%s\": %s (agents refuse it)",
                              s_printable(c->path, pn, sizeof pn), text);
        }
        if ((rc = s_pack_count(c, 0)) == 0 && (rc = s_pack_flush(c, here)) == 0)
            rc = s_put_header(c->a, c->path, AE_IFLNK, 0777, 0, target, c->mtime, c->err);
        return rc;
    }
    af_warn("context: skipping \"%s\": not a regular file, directory or symlink",
            s_printable(c->path, pn, sizeof pn));
    return 0;
}

static int s_pack_dir(s_pack_t *c, int dfd, size_t plen, s_pending_t *here)
{
    char pn[256];
    char **names = NULL;
    size_t n = 0;
    int rc = s_list_dir(dfd, AF_CONTEXT_MAX_FILES, &names, &n);
    if (rc < 0) {
        c->path[plen] = '\0';
        return af_err_set(c->err, rc == -EFBIG ? AF_ERR_TOOBIG : AF_ERR_IO,
                          "context: \"%s\": list directory: %s",
                          s_printable(plen ? c->path : ".", pn, sizeof pn), strerror(-rc));
    }
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t nl = strlen(names[i]);
        size_t len = plen + (plen ? 1 : 0) + nl;
        if (len >= AF_CONTEXT_MAX_PATH) {
            c->path[plen] = '\0';
            rc = af_err_set(c->err, AF_ERR_TOOBIG, "context: a path below \"%s\" is longer than %d",
                            s_printable(c->path, pn, sizeof pn), AF_CONTEXT_MAX_PATH);
            break;
        }
        size_t o = plen;
        if (plen)
            c->path[o++] = '/';
        memcpy(c->path + o, names[i], nl + 1);
        rc = s_pack_entry(c, dfd, names[i], len, here);
    }
    c->path[plen] = '\0';
    s_free_names(names, n);
    return rc;
}

static int s_pack_context(const char *dir, const char *out_path, int out_fd, int64_t mtime,
                          af_dockerignore_t *only, af_pack_result_t *result, af_err_t *err);

int af_archive_pack_context(const char *dir, const char *out_path, int64_t mtime,
                            af_pack_result_t *result, af_err_t *err)
{
    return s_pack_context(dir, out_path, -1, mtime, NULL, result, err);
}

int af_archive_pack_context_fd(const char *dir, int out_fd, const char *out_name, int64_t mtime,
                               const char *const *only, size_t n_only, af_pack_result_t *result,
                               af_err_t *err)
{
    if (out_fd < 0)
        return af_err_set(err, AF_ERR_INVAL, "pack_context: bad file descriptor");
    af_dockerignore_t *m = NULL;
    if (only && !(m = af_dockerignore_new_only(only, n_only, err)))
        return err && err->code ? err->code : AF_ERR_NOMEM;
    int rc =
        s_pack_context(dir, out_name ? out_name : "context tar", out_fd, mtime, m, result, err);
    af_dockerignore_destroy(&m);
    return rc;
}

static int s_pack_context(const char *dir, const char *out_path, int out_fd, int64_t mtime,
                          af_dockerignore_t *only, af_pack_result_t *result, af_err_t *err)
{
    int rc = 0;
    int dfd = -1;
    struct archive *a = NULL;
    s_pack_t *c = NULL;
    s_sink_t k;
    bool sink_open = false, created = false;
    char *dipath = NULL;

    if (!dir || !out_path || !result)
        return af_err_set(err, AF_ERR_INVAL, "pack_context: missing argument");
    memset(result, 0, sizeof *result);
    c = calloc(1, sizeof *c);
    if (!c || !(c->buf = malloc(S_BUF)) || !(c->di = af_dockerignore_new())) {
        rc = af_err_set(err, AF_ERR_NOMEM, "context: out of memory");
        goto out;
    }
    c->mtime = mtime;
    c->err = err;
    c->only = only;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "context \"%s\": %s",
                        dir, strerror(errno));
        goto out;
    }
    if (asprintf(&dipath, "%s/.dockerignore", dir) < 0) {
        dipath = NULL;
        rc = af_err_set(err, AF_ERR_NOMEM, "context: out of memory");
        goto out;
    }
    if ((rc = af_dockerignore_load(c->di, dipath, err)) != 0)
        goto out;
    sink_open = true;
    if ((rc = s_sink_open(&k, out_path, out_fd, NULL, err)) != 0)
        goto out;
    created = out_fd < 0; /* only a file made here is removed on error */
    struct stat ost;
    if (fstat(k.fd, &ost) == 0) {
        c->out_dev = ost.st_dev;
        c->out_ino = ost.st_ino;
    }
    if (!(a = s_tar_writer(&k, err))) {
        rc = err ? err->code : AF_ERR_STATE;
        goto out;
    }
    c->a = a;
    if ((rc = s_pack_dir(c, dfd, 0, NULL)) != 0)
        goto out;
    if ((rc = s_tar_close(a, &k, err)) != 0)
        goto out;
    result->size = af_digest_size(k.tar_digest);
    result->files = c->files;
    if ((rc = af_digest_final(k.tar_digest, result->digest)) != 0) {
        af_err_set(err, rc, "%s: digest failed", out_path);
        goto out;
    }
out:
    s_tar_release(a, &k, sink_open, rc && created);
    if (dfd >= 0)
        close(dfd);
    if (c) {
        af_dockerignore_destroy(&c->di);
        free(c->buf);
        free(c);
    }
    free(dipath);
    return rc;
}

/* ------------------------------------------------------------------ */
/* write_layer                                                           */

typedef struct {
    char *dest; /* tar name: relative, no trailing '/' */
    char *src;  /* host path to read, NULL for implicit parents */
    char *link; /* symlink target */
    mode_t mode;
    uint64_t size;
    dev_t dev;
    ino_t ino;
    size_t seq; /* 0 for implicit parents; later entries win */
} s_item_t;

typedef struct {
    s_item_t *items;
    size_t n, cap;
    unsigned depth; /* directories open in the walk: bounds recursion and fds */
    af_err_t *err;
} s_layer_t;

static void s_items_free(s_layer_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].dest);
        free(l->items[i].src);
        free(l->items[i].link);
    }
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

/* Takes ownership of DEST, SRC and LINK (freed on error too). */
static int s_item_add(s_layer_t *l, char *dest, char *src, char *link, const struct stat *st,
                      mode_t mode, size_t seq)
{
    if (!dest || l->n >= (size_t)AF_LAYER_MAX_FILES * 2) {
        bool oom = !dest;
        free(dest);
        free(src);
        free(link);
        if (oom)
            return af_err_set(l->err, AF_ERR_NOMEM, "layer: out of memory");
        return af_err_set(l->err, AF_ERR_TOOBIG, "layer: more than %d files", AF_LAYER_MAX_FILES);
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        s_item_t *ni = realloc(l->items, ncap * sizeof *ni);
        if (!ni) {
            free(dest);
            free(src);
            free(link);
            return af_err_set(l->err, AF_ERR_NOMEM, "layer: out of memory");
        }
        l->items = ni;
        l->cap = ncap;
    }
    s_item_t *it = &l->items[l->n++];
    memset(it, 0, sizeof *it);
    it->dest = dest;
    it->src = src;
    it->link = link;
    it->mode = mode;
    it->seq = seq;
    if (st) {
        it->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
        it->dev = st->st_dev;
        it->ino = st->st_ino;
    }
    return 0;
}

static char *s_join(const char *a, const char *b)
{
    char *r = NULL;
    if (!*a)
        return strdup(b);
    if (asprintf(&r, "%s%s%s", a, (a[strlen(a) - 1] == '/') ? "" : "/", b) < 0)
        return NULL;
    return r;
}

/* Normalises an image path: drops leading and repeated '/', and "."
 * components; ".." is refused. "" means the image root. */
static int s_norm_dest(const char *in, char *out, size_t cap)
{
    size_t o = 0, len;
    for (const char *p; (p = s_next_name(&in, &len));) {
        if (s_is_dotdot(p, len))
            return -1;
        if (o + len + 2 > cap)
            return -2;
        o = s_put_name(out, o, p, len);
    }
    out[o] = '\0';
    return 0;
}

static int s_layer_walk(s_layer_t *l, int dfd, const char *src, const char *dest, size_t seq);

#define S_SKIPPED 1 /* s_layer_entry: an entry of a kind layers leave out */

/* Adds NAME, an entry of the directory DFD, as host path *CSRC_P and
 * image path *CDEST_P (NULL when their allocation failed) and, for a
 * directory, everything below it. What it takes over it nulls; the caller
 * frees the rest. Returns 0, S_SKIPPED when NAME is not a regular file,
 * directory or symlink (nothing added), or an error. */
static int s_layer_entry(s_layer_t *l, int dfd, const char *name, char **csrc_p, char **cdest_p,
                         size_t seq)
{
    char *csrc = *csrc_p, *cdest = *cdest_p;
    char pn[256];
    struct stat st;
    int rc = 0;
    if (!csrc || !cdest)
        return af_err_set(l->err, AF_ERR_NOMEM, "layer: out of memory");
    if (strlen(csrc) >= PATH_MAX || strlen(cdest) >= PATH_MAX)
        return af_err_set(l->err, AF_ERR_TOOBIG, "layer: \"%s\": path too long",
                          s_printable(csrc, pn, sizeof pn));
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return af_err_set(l->err, AF_ERR_IO, "layer: \"%s\": %s", s_printable(csrc, pn, sizeof pn),
                          strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        /* the walk recurses in a worker thread: a hostile tree must not
         * run it out of stack or file descriptors */
        if (l->depth >= AF_LAYER_MAX_DEPTH)
            return af_err_set(l->err, AF_ERR_TOOBIG,
                              "layer: \"%s\": directories nested deeper than %d levels",
                              s_printable(csrc, pn, sizeof pn), AF_LAYER_MAX_DEPTH);
        int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) {
            return af_err_set(l->err, AF_ERR_IO, "layer: \"%s\": %s",
                              s_printable(csrc, pn, sizeof pn), strerror(errno));
        }
        char *dcopy = strdup(cdest), *scopy = strdup(csrc);
        rc = s_item_add(l, cdest, csrc, NULL, &st, st.st_mode, seq);
        *cdest_p = *csrc_p = NULL;
        if (rc == 0 && (!dcopy || !scopy))
            rc = af_err_set(l->err, AF_ERR_NOMEM, "layer: out of memory");
        if (rc == 0) {
            l->depth++;
            rc = s_layer_walk(l, cfd, scopy, dcopy, seq);
            l->depth--;
        }
        free(dcopy);
        free(scopy);
        close(cfd);
    } else if (S_ISREG(st.st_mode)) {
        rc = s_item_add(l, cdest, csrc, NULL, &st, st.st_mode, seq);
        *cdest_p = *csrc_p = NULL;
    } else if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t tl = readlinkat(dfd, name, target, sizeof target - 1);
        if (tl < 0) {
            return af_err_set(l->err, AF_ERR_IO, "layer: \"%s\": readlink: %s",
                              s_printable(csrc, pn, sizeof pn), strerror(errno));
        }
        target[tl] = '\0';
        rc = s_item_add(l, cdest, NULL, strdup(target), &st, S_IFLNK | 0777, seq);
        *cdest_p = NULL;
    } else {
        rc = S_SKIPPED;
    }
    return rc;
}

static int s_layer_walk(s_layer_t *l, int dfd, const char *src, const char *dest, size_t seq)
{
    char pn[256];
    char **names = NULL;
    size_t n = 0;
    int rc = s_list_dir(dfd, AF_LAYER_MAX_FILES, &names, &n);
    if (rc < 0)
        return af_err_set(l->err, rc == -EFBIG ? AF_ERR_TOOBIG : AF_ERR_IO,
                          "layer: \"%s\": list directory: %s", s_printable(src, pn, sizeof pn),
                          strerror(-rc));
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *csrc = s_join(src, names[i]);
        char *cdest = s_join(dest, names[i]);
        rc = s_layer_entry(l, dfd, names[i], &csrc, &cdest, seq);
        if (rc == S_SKIPPED) {
            af_warn("layer: skipping \"%s\": not a regular file, directory or symlink",
                    s_printable(csrc, pn, sizeof pn));
            rc = 0;
        }
        free(csrc);
        free(cdest);
    }
    s_free_names(names, n);
    return rc;
}

static int s_item_cmp(const void *a, const void *b)
{
    const s_item_t *x = a, *y = b;
    int c = strcmp(x->dest, y->dest);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int s_item_cmp_dest(const void *key, const void *b)
{
    return strcmp(key, ((const s_item_t *)b)->dest);
}

/* Adds the entry SRC -> DEST (number SEQ) and everything it implies. */
static int s_layer_collect(s_layer_t *l, const char *root_real, const af_layer_entry_t *e,
                           size_t seq)
{
    char pn[256], pd[256];
    char dest[PATH_MAX];
    char *real = NULL;
    int rc = 0;
    int dfd = -1;

    if (!e->src || !e->dest || !*e->src)
        return af_err_set(l->err, AF_ERR_INVAL, "layer entry %zu: missing src or dest", seq);
    s_printable(e->src, pn, sizeof pn);
    s_printable(e->dest, pd, sizeof pd);
    int nr = s_norm_dest(e->dest, dest, sizeof dest);
    if (nr == -1)
        return af_err_set(l->err, AF_ERR_UNSAFE,
                          "layer entry \"%s\": destination \"%s\" has \"..\"", pn, pd);
    if (nr != 0)
        return af_err_set(l->err, AF_ERR_TOOBIG, "layer entry \"%s\": destination too long", pn);
    real = realpath(e->src, NULL); /* a host path: relative means cwd-relative */
    if (!real) {
        rc = af_err_set(l->err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO,
                        "layer entry \"%s\": %s", pn, strerror(errno));
        goto out;
    }
    size_t rl = strlen(root_real);
    bool inside = !strcmp(root_real, "/") ||
                  (!strncmp(real, root_real, rl) && (real[rl] == '\0' || real[rl] == '/'));
    if (!inside) {
        char pr[256];
        rc = af_err_set(l->err, AF_ERR_UNSAFE, "layer entry \"%s\": resolves to \"%s\", outside %s",
                        pn, s_printable(real, pr, sizeof pr), root_real);
        goto out;
    }
    struct stat st;
    if (lstat(real, &st) != 0) {
        rc = af_err_set(l->err, AF_ERR_IO, "layer entry \"%s\": %s", pn, strerror(errno));
        goto out;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        rc = af_err_set(l->err, AF_ERR_UNSUPPORTED,
                        "layer entry \"%s\": not a regular file or directory", pn);
        goto out;
    }
    if (!*dest && !S_ISDIR(st.st_mode)) {
        rc =
            af_err_set(l->err, AF_ERR_INVAL, "layer entry \"%s\": a file can not become \"/\"", pn);
        goto out;
    }
    /* implicit parents, 0755 */
    for (char *s = strchr(dest, '/'); s; s = strchr(s + 1, '/')) {
        if ((rc = s_item_add(l, strndup(dest, (size_t)(s - dest)), NULL, NULL, NULL, S_IFDIR | 0755,
                             0)) != 0)
            goto out;
    }
    if (S_ISREG(st.st_mode)) {
        rc = s_item_add(l, strdup(dest), real, NULL, &st, st.st_mode, seq);
        real = NULL;
        goto out;
    }
    if (*dest && (rc = s_item_add(l, strdup(dest), strdup(real), NULL, &st, st.st_mode, seq)) != 0)
        goto out;
    dfd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        rc = af_err_set(l->err, AF_ERR_IO, "layer entry \"%s\": %s", pn, strerror(errno));
        goto out;
    }
    rc = s_layer_walk(l, dfd, real, dest, seq);
out:
    if (dfd >= 0)
        close(dfd);
    free(real);
    return rc;
}

/* Long (120 lines): it owns the layer's whole pipeline (tar writer ->
 * compressor -> file, with two digests on the way) and must tear it down
 * in one order on every path; each entry's work is s_layer_* above. */
int af_archive_write_layer(const char *root, const af_layer_entry_t *entries, size_t n,
                           const char *out_path, int64_t mtime, const af_layer_opts_t *opts,
                           af_layer_result_t *result, af_err_t *err)
{
    int rc = 0;
    char *root_real = NULL;
    s_layer_t l = {.err = err};
    s_sink_t k;
    bool sink_open = false, created = false;
    struct archive *a = NULL;
    unsigned char *buf = NULL;

    if (!root || (!entries && n) || !out_path || !result)
        return af_err_set(err, AF_ERR_INVAL, "layer: missing argument");
    memset(result, 0, sizeof *result);
    root_real = realpath(root, NULL);
    if (!root_real) {
        rc = af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "layer root \"%s\": %s",
                        root, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = s_layer_collect(&l, root_real, &entries[i], i + 1)) != 0)
            goto out;
    if (l.n > 1)
        qsort(l.items, l.n, sizeof *l.items, s_item_cmp);
    /* keep the last of each run of equal destinations */
    size_t w = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (i + 1 < l.n && !strcmp(l.items[i].dest, l.items[i + 1].dest)) {
            free(l.items[i].dest);
            free(l.items[i].src);
            free(l.items[i].link);
            continue;
        }
        l.items[w++] = l.items[i];
    }
    l.n = w;
    if (l.n > AF_LAYER_MAX_FILES) {
        rc = af_err_set(err, AF_ERR_TOOBIG, "layer: more than %d files", AF_LAYER_MAX_FILES);
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        const char *slash = strrchr(l.items[i].dest, '/');
        if (!slash)
            continue;
        char pdest[PATH_MAX];
        size_t plen = (size_t)(slash - l.items[i].dest);
        memcpy(pdest, l.items[i].dest, plen);
        pdest[plen] = '\0';
        const s_item_t *parent = bsearch(pdest, l.items, l.n, sizeof *l.items, s_item_cmp_dest);
        if (!parent || !S_ISDIR(parent->mode)) {
            char pd[256];
            rc = af_err_set(err, AF_ERR_INVAL,
                            "layer: \"/%s\" is below a destination that is not a directory",
                            s_printable(l.items[i].dest, pd, sizeof pd));
            goto out;
        }
    }

    sink_open = true;
    af_layer_opts_t defaults = {.algo = AF_COMPRESS_GZIP};
    if ((rc = s_sink_open(&k, out_path, -1, opts ? opts : &defaults, err)) != 0)
        goto out;
    created = true;
    if (!(a = s_tar_writer(&k, err))) {
        rc = err ? err->code : AF_ERR_STATE;
        goto out;
    }
    if (!(buf = malloc(S_BUF))) {
        rc = af_err_set(err, AF_ERR_NOMEM, "layer: out of memory");
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        const s_item_t *it = &l.items[i];
        if (S_ISDIR(it->mode)) {
            if ((rc = s_put_header(a, it->dest, AE_IFDIR, it->mode, 0, NULL, mtime, err)) != 0)
                af_err_prefix(err, rc, "layer");
        } else if (S_ISLNK(it->mode)) {
            if ((rc = s_put_header(a, it->dest, AE_IFLNK, 0777, 0, it->link, mtime, err)) != 0)
                af_err_prefix(err, rc, "layer");
        } else {
            char pn[256];
            int fd = open(it->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            struct stat st;
            if (fd < 0) {
                rc = af_err_set(err, AF_ERR_IO, "layer: \"%s\": %s",
                                s_printable(it->src, pn, sizeof pn), strerror(errno));
            } else if (fstat(fd, &st) != 0 || st.st_dev != it->dev || st.st_ino != it->ino ||
                       (uint64_t)st.st_size != it->size) {
                rc = af_err_set(err, AF_ERR_IO, "layer: \"%s\": changed while writing the layer",
                                s_printable(it->src, pn, sizeof pn));
            } else {
                if ((rc = s_put_header(a, it->dest, AE_IFREG, it->mode, it->size, NULL, mtime,
                                       err)) == 0)
                    rc = s_put_data(a, fd, it->size, buf, it->src, err);
                if (rc)
                    af_err_prefix(err, rc, "layer");
            }
            if (fd >= 0)
                close(fd);
        }
        if (rc)
            goto out;
    }
    if ((rc = s_tar_close(a, &k, err)) != 0)
        goto out;
    result->size = k.z_size;
    if (af_digest_final(k.tar_digest, result->diff_id) != 0 ||
        af_digest_final(k.z_digest, result->digest) != 0) {
        rc = af_err_set(err, AF_ERR_STATE, "%s: digest failed", out_path);
        goto out;
    }
out:
    s_tar_release(a, &k, sink_open, rc && created);
    free(buf);
    s_items_free(&l);
    free(root_real);
    return rc;
}

/* ------------------------------------------------------------------ */
/* extract                                                               */

typedef struct {
    int rootfd;
    uint64_t max_bytes, max_files;
    uint64_t bytes, files;
    char name[256]; /* printable entry name for messages */
    af_err_t *err;
} s_x_t;

static int s_xerr(s_x_t *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int s_xerr(s_x_t *x, int code, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return af_err_set(x->err, code, "context: entry \"%s\": %s", x->name, why);
}

/* Checks an entry path lexically and normalises it into OUT ("a/b/c": no
 * "./", no empty components). "" means the root itself. */
static int s_check_path(s_x_t *x, const char *in, char *out, const char *what)
{
    if (!*in)
        return s_xerr(x, AF_ERR_UNSAFE, "empty %s", what);
    if (in[0] == '/')
        return s_xerr(x, AF_ERR_UNSAFE, "absolute %s", what);
    if (strlen(in) >= AF_CONTEXT_MAX_PATH)
        return s_xerr(x, AF_ERR_TOOBIG, "%s longer than %d bytes", what, AF_CONTEXT_MAX_PATH - 1);
    size_t o = 0, len;
    for (const char *p; (p = s_next_name(&in, &len));) {
        if (s_is_dotdot(p, len))
            return s_xerr(x, AF_ERR_UNSAFE, "%s escapes the context", what);
        if (len > NAME_MAX)
            return s_xerr(x, AF_ERR_TOOBIG, "%s has a component longer than %d bytes", what,
                          NAME_MAX);
        o = s_put_name(out, o, p, len);
    }
    out[o] = '\0';
    return 0;
}

/* Opens the directory holding PATH's last component, walking from the
 * root with O_NOFOLLOW. With CREATE, missing directories are made (0755).
 * *LEAF points into PATH. Returns an fd, or a negative AF_ERR_*. */
static int s_open_parent(s_x_t *x, char *path, bool create, const char **leaf)
{
    int fd = dup(x->rootfd);
    if (fd < 0)
        return s_xerr(x, AF_ERR_IO, "dup: %s", strerror(errno));
    char *comp = path;
    for (char *slash = strchr(comp, '/'); slash; slash = strchr(comp, '/')) {
        *slash = '\0';
        int nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0 && errno == ENOENT && create) {
            if (++x->files > x->max_files) {
                *slash = '/';
                close(fd);
                return s_xerr(x, AF_ERR_TOOBIG, "more than %llu entries",
                              (unsigned long long)x->max_files);
            }
            if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                *slash = '/';
                close(fd);
                return s_xerr(x, AF_ERR_IO, "mkdir: %s", strerror(e));
            }
            nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        int e = errno;
        struct stat st;
        bool is_link =
            nfd < 0 && fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
        close(fd);
        if (nfd < 0) {
            int rc;
            char pp[200];
            s_printable(path, pp, sizeof pp); /* the prefix up to this component */
            if (is_link)
                rc = s_xerr(x, AF_ERR_UNSAFE, "path passes through the symlink \"%s\"", pp);
            else if (e == ENOTDIR || e == ELOOP)
                rc = s_xerr(x, AF_ERR_UNSAFE, "\"%s\" is not a directory", pp);
            else if (e == ENOENT)
                rc = s_xerr(x, AF_ERR_NOTFOUND, "\"%s\" does not exist", pp);
            else
                rc = s_xerr(x, AF_ERR_IO, "\"%s\": %s", pp, strerror(e));
            *slash = '/';
            return rc;
        }
        *slash = '/';
        fd = nfd;
        comp = slash + 1;
    }
    *leaf = comp;
    return fd;
}

/* Makes room for a new non-directory LEAF in PFD: a previous non-directory
 * of that name (a later tar entry wins) is removed; a directory stays. */
static int s_replace(s_x_t *x, int pfd, const char *leaf)
{
    struct stat st;
    if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    if (S_ISDIR(st.st_mode))
        return s_xerr(x, AF_ERR_INVAL, "a directory of that name already exists");
    if (unlinkat(pfd, leaf, 0) != 0)
        return s_xerr(x, AF_ERR_IO, "replace: %s", strerror(errno));
    return 1;
}

static int s_check_link(s_x_t *x, const char *path, const char *target)
{
    int code;
    const char *why = s_link_problem(path, target, &code);
    if (!why)
        return 0;
    char text[300];
    s_link_why(why, target, text, sizeof text);
    return s_xerr(x, code, "%s", text);
}

static int s_x_file(s_x_t *x, struct archive *a, struct archive_entry *e, char *path)
{
    int rc = 0;
    la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (size < 0)
        return s_xerr(x, AF_ERR_PARSE, "negative size");
    if ((uint64_t)size > x->max_bytes || x->bytes + (uint64_t)size > x->max_bytes)
        return s_xerr(x, AF_ERR_TOOBIG, "context larger than %llu bytes",
                      (unsigned long long)x->max_bytes);
    x->bytes += (uint64_t)size;
    const char *leaf;
    int pfd = s_open_parent(x, path, true, &leaf);
    if (pfd < 0)
        return pfd;
    mode_t perm = archive_entry_perm(e) & 0777;
    int fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        if ((rc = s_replace(x, pfd, leaf)) < 0)
            goto out;
        rc = 0;
        fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        rc = s_xerr(x, AF_ERR_IO, "create: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = s_xerr(x, AF_ERR_PARSE, "%s", archive_error_string(a));
            goto out;
        }
        if (off < 0 || (uint64_t)off + len > (uint64_t)size) {
            rc = s_xerr(x, AF_ERR_PARSE, "data beyond the declared size");
            goto out;
        }
        const unsigned char *p = buf;
        while (len > 0) {
            ssize_t w = pwrite(fd, p, len, off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = s_xerr(x, AF_ERR_IO, "write: %s", strerror(errno));
                goto out;
            }
            p += w;
            off += w;
            len -= (size_t)w;
        }
    }
    if (ftruncate(fd, (off_t)size) != 0 || fchmod(fd, perm) != 0) {
        rc = s_xerr(x, AF_ERR_IO, "%s", strerror(errno));
        goto out;
    }
    if (archive_entry_mtime_is_set(e)) {
        struct timespec ts[2] = {
            {.tv_nsec = UTIME_OMIT},
            {.tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e)}};
        (void)futimens(fd, ts); /* cosmetic; never fatal */
    }
out:
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = s_xerr(x, AF_ERR_IO, "close: %s", strerror(errno));
    close(pfd);
    return rc;
}

static int s_x_dir(s_x_t *x, struct archive_entry *e, char *path)
{
    const char *leaf;
    int pfd = s_open_parent(x, path, true, &leaf);
    if (pfd < 0)
        return pfd;
    int rc = 0;
    /* owner keeps rwx so the tree can be filled and removed again */
    mode_t perm = (archive_entry_perm(e) & 0777) | 0700;
    if (mkdirat(pfd, leaf, perm) != 0 && errno != EEXIST) {
        rc = s_xerr(x, AF_ERR_IO, "mkdir: %s", strerror(errno));
        goto out;
    }
    int fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        rc = s_xerr(x, AF_ERR_UNSAFE, "exists and is not a directory");
        goto out;
    }
    if (fchmod(fd, perm) != 0)
        rc = s_xerr(x, AF_ERR_IO, "chmod: %s", strerror(errno));
    close(fd);
out:
    close(pfd);
    return rc;
}

static int s_x_symlink(s_x_t *x, struct archive_entry *e, char *path)
{
    const char *target = archive_entry_symlink(e);
    if (!target)
        target = archive_entry_symlink_utf8(e);
    if (!target)
        return s_xerr(x, AF_ERR_PARSE, "symlink without a target");
    int rc = s_check_link(x, path, target);
    if (rc)
        return rc;
    const char *leaf;
    int pfd = s_open_parent(x, path, true, &leaf);
    if (pfd < 0)
        return pfd;
    if (symlinkat(target, pfd, leaf) != 0) {
        if (errno == EEXIST && (rc = s_replace(x, pfd, leaf)) >= 0) {
            rc = 0;
            if (symlinkat(target, pfd, leaf) != 0)
                rc = s_xerr(x, AF_ERR_IO, "symlink: %s", strerror(errno));
        } else if (rc == 0) {
            rc = s_xerr(x, AF_ERR_IO, "symlink: %s", strerror(errno));
        }
    }
    close(pfd);
    return rc;
}

static int s_x_hardlink(s_x_t *x, const char *raw_target, char *path)
{
    char tpath[AF_CONTEXT_MAX_PATH];
    int rc = s_check_path(x, raw_target, tpath, "hardlink target");
    if (rc)
        return rc;
    if (!*tpath)
        return s_xerr(x, AF_ERR_UNSAFE, "hardlink to the context root");
    const char *tleaf, *leaf;
    int tfd = s_open_parent(x, tpath, false, &tleaf);
    if (tfd < 0) {
        char pt[200];
        if (tfd == AF_ERR_NOTFOUND)
            return s_xerr(x, AF_ERR_UNSAFE, "hardlink target \"%s\" was not extracted",
                          s_printable(tpath, pt, sizeof pt));
        return tfd;
    }
    struct stat st;
    if (fstatat(tfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
        char pt[200];
        rc = s_xerr(x, AF_ERR_UNSAFE, "hardlink target \"%s\" is not an extracted regular file",
                    s_printable(tpath, pt, sizeof pt));
        close(tfd);
        return rc;
    }
    int pfd = s_open_parent(x, path, true, &leaf);
    if (pfd < 0) {
        close(tfd);
        return pfd;
    }
    if (linkat(tfd, tleaf, pfd, leaf, 0) != 0) {
        if (errno == EEXIST && (rc = s_replace(x, pfd, leaf)) >= 0) {
            rc = 0;
            if (linkat(tfd, tleaf, pfd, leaf, 0) != 0)
                rc = s_xerr(x, AF_ERR_IO, "link: %s", strerror(errno));
        } else if (rc == 0) {
            rc = s_xerr(x, AF_ERR_IO, "link: %s", strerror(errno));
        }
    }
    close(pfd);
    close(tfd);
    return rc;
}

static int s_x_entry(s_x_t *x, struct archive *a, struct archive_entry *e)
{
    char path[AF_CONTEXT_MAX_PATH];
    const char *raw = archive_entry_pathname(e);
    if (!raw)
        raw = archive_entry_pathname_utf8(e);
    s_printable(raw, x->name, sizeof x->name);
    if (!raw)
        return s_xerr(x, AF_ERR_PARSE, "no path name");
    if (++x->files > x->max_files)
        return s_xerr(x, AF_ERR_TOOBIG, "more than %llu entries", (unsigned long long)x->max_files);
    int rc = s_check_path(x, raw, path, "path");
    if (rc)
        return rc;
    const char *hl = archive_entry_hardlink(e);
    if (!hl)
        hl = archive_entry_hardlink_utf8(e);
    unsigned type = archive_entry_filetype(e);
    if (!*path) {
        if (type == AE_IFDIR && !hl)
            return 0; /* "./": the root itself */
        return s_xerr(x, AF_ERR_UNSAFE, "empty path");
    }
    if (hl)
        return s_x_hardlink(x, hl, path);
    switch (type) {
    case AE_IFREG:
        return s_x_file(x, a, e, path);
    case AE_IFDIR:
        return s_x_dir(x, e, path);
    case AE_IFLNK:
        return s_x_symlink(x, e, path);
    case AE_IFCHR:
        return s_xerr(x, AF_ERR_UNSAFE, "character devices are not allowed");
    case AE_IFBLK:
        return s_xerr(x, AF_ERR_UNSAFE, "block devices are not allowed");
    case AE_IFIFO:
        return s_xerr(x, AF_ERR_UNSAFE, "FIFOs are not allowed");
    case AE_IFSOCK:
        return s_xerr(x, AF_ERR_UNSAFE, "sockets are not allowed");
    default:
        return s_xerr(x, AF_ERR_UNSUPPORTED, "unsupported entry type 0%o", type);
    }
}

int af_archive_extract(const char *tar_path, const char *dest_dir,
                       const af_extract_limits_t *limits, af_err_t *err)
{
    int rc = 0;
    struct archive *a = NULL;
    s_x_t x = {.rootfd = -1, .err = err};

    if (!tar_path || !dest_dir)
        return af_err_set(err, AF_ERR_INVAL, "extract: missing argument");
    x.max_bytes = limits && limits->max_bytes ? limits->max_bytes : AF_CONTEXT_MAX_BYTES;
    x.max_files = limits && limits->max_files ? limits->max_files : AF_CONTEXT_MAX_FILES;
    x.rootfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (x.rootfd < 0) {
        rc = af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "%s: %s", dest_dir,
                        strerror(errno));
        goto out;
    }
    char **names = NULL;
    size_t nn = 0;
    int lr = s_list_dir(x.rootfd, 1, &names, &nn);
    s_free_names(names, nn);
    if (lr != 0) {
        rc = af_err_set(err, lr == -EFBIG ? AF_ERR_INVAL : AF_ERR_IO, "%s: %s", dest_dir,
                        lr == -EFBIG ? "not empty" : strerror(-lr));
        goto out;
    }
    if (nn) {
        rc = af_err_set(err, AF_ERR_INVAL, "%s: not empty", dest_dir);
        goto out;
    }
    if (!(a = archive_read_new())) {
        rc = af_err_set(err, AF_ERR_NOMEM, "extract: out of memory");
        goto out;
    }
    if (archive_read_support_filter_gzip(a) < ARCHIVE_WARN ||
        archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_support_format_empty(a) != ARCHIVE_OK) {
        rc = af_err_set(err, AF_ERR_STATE, "extract: %s", archive_error_string(a));
        goto out;
    }
    if (archive_read_open_filename(a, tar_path, S_BUF) != ARCHIVE_OK) {
        const char *why = archive_error_string(a);
        rc = af_err_set(err, archive_errno(a) == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_PARSE,
                        "context \"%s\": %s", tar_path, why ? why : "can not read");
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN || r == ARCHIVE_RETRY) {
            const char *why = archive_error_string(a);
            rc = af_err_set(err, AF_ERR_PARSE, "context \"%s\": not a valid tar: %s", tar_path,
                            why ? why : "unreadable header");
            goto out;
        }
        if ((rc = s_x_entry(&x, a, e)) != 0)
            goto out;
    }
out:
    if (a)
        archive_read_free(a);
    if (x.rootfd >= 0)
        close(x.rootfd);
    return rc;
}

/* ------------------------------------------------------------------ */
/* remove_tree                                                           */

/* One directory being emptied: its identity (to check the way back up)
 * and the subdirectories still to remove. No fd is held per level, so the
 * depth of the tree is not limited by the fd table. */
typedef struct {
    dev_t dev;
    ino_t ino;
    char **dirs;
    size_t n, i;
} s_rm_frame_t;

/* Unlinks every non-directory in FD and collects the subdirectories. */
static int s_rm_scan(int fd, s_rm_frame_t *f, const char *path, af_err_t *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = s_list_dir(fd, (size_t)-1, &names, &n);
    if (rc < 0)
        return af_err_set(err, AF_ERR_IO, "remove \"%s\": %s", path, strerror(-rc));
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
            names[w++] = names[i];
            continue;
        }
        if (unlinkat(fd, names[i], 0) != 0 && errno != ENOENT) {
            rc = af_err_set(err, AF_ERR_IO, "remove \"%s/.../%s\": %s", path, names[i],
                            strerror(errno));
            for (size_t j = i; j < n; j++)
                free(names[j]);
            s_free_names(names, w);
            return rc;
        }
        free(names[i]);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        s_free_names(names, w);
        return af_err_set(err, AF_ERR_IO, "remove \"%s\": %s", path, strerror(errno));
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->dirs = names;
    f->n = w;
    f->i = 0;
    return 0;
}

/* Long (about 105 lines): an iterative walk with an explicit stack of
 * directory fds (no recursion, no path re-resolution, so a tree that a
 * build step is still changing cannot lead it outside PATH). It stays in
 * common/ beside the extractor it undoes: the archive fuzzer and the unit
 * tests remove what they extracted with it, as the agent does. */
int af_remove_tree(const char *path, af_err_t *err)
{
    int rc = 0;
    struct stat st;
    if (!path || !*path)
        return af_err_set(err, AF_ERR_INVAL, "remove: empty path");
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return af_err_set(err, AF_ERR_IO, "remove \"%s\": %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return af_err_set(err, AF_ERR_IO, "remove \"%s\": %s", path, strerror(errno));
        return 0;
    }
    s_rm_frame_t *stack = NULL;
    size_t depth = 0, cap = 0;
    int cur = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cur < 0) {
        if (errno == ENOENT)
            return 0;
        return af_err_set(err, AF_ERR_IO, "remove \"%s\": %s", path, strerror(errno));
    }
    /* push the top */
    stack = calloc(16, sizeof *stack);
    if (!stack) {
        close(cur);
        return af_err_set(err, AF_ERR_NOMEM, "remove: out of memory");
    }
    cap = 16;
    if ((rc = s_rm_scan(cur, &stack[0], path, err)) != 0)
        goto out;
    depth = 1;
    while (depth > 0) {
        s_rm_frame_t *f = &stack[depth - 1];
        if (f->i < f->n) {
            const char *name = f->dirs[f->i++];
            int child = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child < 0) {
                if (errno == ENOENT)
                    continue;
                if (errno == ENOTDIR || errno == ELOOP) { /* replaced meanwhile */
                    if (unlinkat(cur, name, 0) == 0 || errno == ENOENT)
                        continue;
                }
                rc = af_err_set(err, AF_ERR_IO, "remove \"%s\": %s: %s", path, name,
                                strerror(errno));
                goto out;
            }
            if (depth == cap) {
                s_rm_frame_t *ns = realloc(stack, cap * 2 * sizeof *ns);
                if (!ns) {
                    close(child);
                    rc = af_err_set(err, AF_ERR_NOMEM, "remove: out of memory");
                    goto out;
                }
                stack = ns;
                cap *= 2;
            }
            memset(&stack[depth], 0, sizeof stack[depth]);
            if ((rc = s_rm_scan(child, &stack[depth], path, err)) != 0) {
                close(child);
                goto out;
            }
            depth++;
            close(cur);
            cur = child;
            continue;
        }
        /* this directory is empty now: go up and remove it */
        s_free_names(f->dirs, f->n);
        f->dirs = NULL;
        depth--;
        if (depth == 0)
            break;
        s_rm_frame_t *up = &stack[depth - 1];
        int parent = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat pst;
        if (parent < 0 || fstat(parent, &pst) != 0 || pst.st_dev != up->dev ||
            pst.st_ino != up->ino) {
            if (parent >= 0)
                close(parent);
            rc = af_err_set(err, AF_ERR_IO, "remove \"%s\": the tree moved while being removed",
                            path);
            goto out;
        }
        close(cur);
        cur = parent;
        if (unlinkat(cur, up->dirs[up->i - 1], AT_REMOVEDIR) != 0 && errno != ENOENT) {
            rc = af_err_set(err, AF_ERR_IO, "remove \"%s\": %s: %s", path, up->dirs[up->i - 1],
                            strerror(errno));
            goto out;
        }
    }
    close(cur);
    cur = -1;
    if (rmdir(path) != 0 && errno != ENOENT)
        rc = af_err_set(err, AF_ERR_IO, "remove \"%s\": %s", path, strerror(errno));
out:
    if (cur >= 0)
        close(cur);
    for (size_t i = 0; i < depth; i++)
        s_free_names(stack[i].dirs, stack[i].n);
    free(stack);
    return rc;
}
