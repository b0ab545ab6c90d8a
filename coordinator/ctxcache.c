/* ctxcache.c -- the context's digest from its metadata (see ctxcache.h). */
#include "ctxcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctxdelta.h"
#include "dockerignore.h"
#include "limits.h"
#include "log.h"

#define S_RACY_MS 50
#define S_MAX_DEPTH 256

static int64_t s_ns(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

typedef struct {
    af_digest_t *d;
    af_ctxwalk_t *out;
    af_dockerignore_t *only; /* NULL: every entry */
    char path[PATH_MAX];
    bool failed;
} s_walk_t;

/* True when the entry at w->path (a directory when DIR) can be in the
 * variant's tar, or hold something that can: the files the packer always
 * includes at the root, what ONLY keeps, and directories it descends.
 * Conservative: .dockerignore is not applied (an ignored entry only
 * costs a miss when it changes). */
static bool s_wanted(s_walk_t *w, int depth, const char *name, bool dir)
{
    if (!w->only)
        return true;
    if (depth == 0 && af_archive_always_included(name))
        return true;
    if (!af_dockerignore_excluded(w->only, w->path))
        return true;
    return dir && af_dockerignore_may_include_below(w->only, w->path);
}

static int s_by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* One entry into the signature: path, type+mode, size, times, inode, link. */
static void s_entry(s_walk_t *w, int dfd, const char *name, const struct stat *st)
{
    char line[PATH_MAX + 256];
    int n = snprintf(line, sizeof line,
                     "%s\t%o\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRIu64 "\t%" PRIu64 "\n",
                     w->path, (unsigned)st->st_mode, (int64_t)st->st_size, s_ns(st->st_mtim),
                     s_ns(st->st_ctim), (uint64_t)st->st_ino, (uint64_t)st->st_dev);
    if (n < 0 || (size_t)n >= sizeof line || af_digest_update(w->d, line, (size_t)n) < 0)
        w->failed = true;
    if (S_ISLNK(st->st_mode)) {
        char target[PATH_MAX];
        ssize_t tl = readlinkat(dfd, name, target, sizeof target - 1);
        if (tl < 0 || af_digest_update(w->d, target, (size_t)tl) < 0)
            w->failed = true;
    }
    int64_t newest = s_ns(st->st_mtim) > s_ns(st->st_ctim) ? s_ns(st->st_mtim) : s_ns(st->st_ctim);
    if (newest > w->out->newest_ns)
        w->out->newest_ns = newest;
}

/* Walks the directory open as DFD whose path (relative) is w->path. */
static void s_walk_dir(s_walk_t *w, int dfd, int depth)
{
    if (depth > S_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    struct dirent **names = NULL;
    int n = scandirat(dfd, ".", &names, NULL, s_by_name);
    if (n < 0) {
        w->failed = true;
        return;
    }
    size_t plen = strlen(w->path);
    for (int i = 0; i < n && !w->failed; i++) {
        const char *nm = names[i]->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, ".."))
            continue;
        if (plen + strlen(nm) + 2 >= sizeof w->path) {
            w->failed = true;
            break;
        }
        snprintf(w->path + plen, sizeof w->path - plen, "%s%s", plen ? "/" : "", nm);
        struct stat st;
        if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            w->failed = true;
            break;
        }
        if (!s_wanted(w, depth, nm, S_ISDIR(st.st_mode))) {
            w->path[plen] = '\0';
            continue;
        }
        s_entry(w, dfd, nm, &st);
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                w->failed = true;
                break;
            }
            s_walk_dir(w, sub, depth + 1);
            close(sub);
        }
        w->path[plen] = '\0';
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void af_ctxcache_walk(const char *dir, int64_t sde, const char *const *only, size_t n_only,
                      af_ctxwalk_t *out)
{
    memset(out, 0, sizeof *out);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    out->walked_ns = s_ns(now);
    s_walk_t w = {.d = af_digest_new(), .out = out};
    if (only && !(w.only = af_dockerignore_new_only(only, n_only, NULL)))
        w.failed = true; /* no signature: no cache */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char head[128];
    int hn =
        snprintf(head, sizeof head, "archfarm-ctxcache v1 %s sde %" PRId64 "\n", AF_VERSION, sde);
    if (!w.d || dfd < 0 || af_digest_update(w.d, head, (size_t)hn) < 0) {
        w.failed = true;
    } else {
        struct stat st;
        if (fstat(dfd, &st) == 0)
            s_entry(&w, dfd, ".", &st);
        s_walk_dir(&w, dfd, 0);
    }
    if (dfd >= 0)
        close(dfd);
    out->ok = !w.failed && af_digest_final(w.d, out->sig) == 0;
    af_digest_destroy(&w.d);
    af_dockerignore_destroy(&w.only);
}

/* mkdir -p PATH (0700). */
static int s_mkdirs(const char *path)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* The cache file for VARIANT of DIR into PATH; false when there is no
 * cache dir. The whole context's is named by DIR alone. */
static bool s_file(const char *dir, const char *variant, char *path, size_t size, bool create)
{
    char base[PATH_MAX];
    const char *env = getenv("ARCHFARM_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    if (env && *env)
        snprintf(base, sizeof base, "%s", env);
    else if (xdg && *xdg)
        snprintf(base, sizeof base, "%s/archfarm", xdg);
    else if (home && *home)
        snprintf(base, sizeof base, "%s/.cache/archfarm", home);
    else
        return false;
    char key[AF_DIGEST_STR_MAX];
    char *name = NULL;
    if (asprintf(&name, "%s%s%s", dir, *variant ? "\n" : "", variant) < 0)
        return false;
    int drc = af_digest_buffer(name, strlen(name), key);
    free(name);
    if (drc < 0)
        return false;
    char sub[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/contexts", base);
    if (create && s_mkdirs(sub) < 0) {
        af_debug("context cache: cannot create %s: %s", sub, strerror(errno));
        return false;
    }
    int n = snprintf(path, size, "%s/%s", sub, key + 7 /* "sha256:" */);
    return n > 0 && (size_t)n < size;
}

bool af_ctxcache_lookup(const char *dir, const char *variant, int64_t sde, const af_ctxwalk_t *walk,
                        af_pack_result_t *result)
{
    char path[PATH_MAX + 128];
    if (!walk->ok || !s_file(dir, variant, path, sizeof path, false))
        return false;
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char sig[AF_DIGEST_STR_MAX], digest[AF_DIGEST_STR_MAX], version[64];
    int64_t csde;
    uint64_t size, files;
    int n = fscanf(f, "v1 %63s %" SCNd64 " %71s %71s %" SCNu64 " %" SCNu64, version, &csde, sig,
                   digest, &size, &files);
    fclose(f);
    if (n != 6 || strcmp(version, AF_VERSION) || csde != sde || strcmp(sig, walk->sig) ||
        !af_digest_valid(digest))
        return false;
    memset(result, 0, sizeof *result);
    snprintf(result->digest, sizeof result->digest, "%s", digest);
    result->size = size;
    result->files = files;
    return true;
}

void af_ctxcache_store(const char *dir, const char *variant, int64_t sde,
                       const af_ctxwalk_t *before, const af_ctxwalk_t *after,
                       const af_pack_result_t *result)
{
    if (!before->ok || !after->ok || strcmp(before->sig, after->sig))
        return; /* changed while packing */
    if (before->newest_ns >= before->walked_ns - (int64_t)S_RACY_MS * 1000000)
        return; /* racily new: a later write in the same tick could go unseen */
    char path[PATH_MAX + 128], tmp[PATH_MAX + 160];
    if (!s_file(dir, variant, path, sizeof path, true))
        return;
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return;
    char line[512];
    int n = snprintf(line, sizeof line, "v1 %s %" PRId64 " %s %s %" PRIu64 " %" PRIu64 "\n",
                     AF_VERSION, sde, before->sig, result->digest, result->size, result->files);
    bool ok = n > 0 && (size_t)n < sizeof line && write(fd, line, (size_t)n) == n;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) < 0)
        unlink(tmp);
}

bool af_ctxcache_delta(const char *dir, const char *variant, int tar_fd, uint64_t tar_size,
                       const char *digest, int out_fd, uint64_t *delta_size,
                       char base[AF_DIGEST_STR_MAX])
{
    char path[PATH_MAX + 128];
    if (!s_file(dir, variant, path, sizeof path - 4, true))
        return false;
    strcat(path, ".idx");
    af_err_t err = {0};
    af_ctxindex_t *cur = af_ctxindex_build(tar_fd, tar_size, &err);
    if (!cur) {
        af_debug("context delta: cannot index the context tar: %s", af_err_msg(&err, AF_ERR_IO));
        return false;
    }
    char old_digest[AF_DIGEST_STR_MAX] = "";
    af_ctxindex_t *old = af_ctxindex_load(path, old_digest, &err);
    bool same = old && !strcmp(old_digest, digest);
    bool ok = false;
    if (old && !same) {
        af_err_clear(&err);
        ok = af_ctxdelta_write(old, cur, tar_fd, out_fd, delta_size, &err) == 0 &&
             *delta_size < tar_size / 2;
        if (ok)
            snprintf(base, AF_DIGEST_STR_MAX, "%s", old_digest);
        else if (err.code)
            af_debug("context delta: %s", af_err_msg(&err, AF_ERR_IO));
    }
    af_err_clear(&err);
    if (!same && af_ctxindex_save(cur, digest, path, &err))
        af_debug("context delta: cannot record the index: %s", af_err_msg(&err, AF_ERR_IO));
    af_ctxindex_destroy(&old);
    af_ctxindex_destroy(&cur);
    return ok;
}
