/* context_store.c -- received build contexts, named by digest, LRU-evicted.
 *
 * The in-memory index (hex, use sequence, pins) is the truth while the
 * agent runs; file mtimes carry the use order across restarts (touched on
 * use, read at startup). Writers stream into ".incoming-XXXXXX" in the same
 * directory so the final rename is atomic; a crash leaves only temp files,
 * which the next start removes. */
#include "context_store.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "fsutil.h"
#include "log.h"

#define S_TEMP_PREFIX ".incoming-"
#define S_HEX_LEN 64

typedef struct {
    char hex[S_HEX_LEN + 1];
    uint64_t seq; /* larger = used more recently */
    unsigned pins;
    int64_t mtime; /* only used while indexing at startup */
} s_entry_t;

struct af_context_store {
    char *dir;
    size_t keep;
    s_entry_t *entries;
    size_t n, cap;
    uint64_t next_seq;
};

struct af_context_writer {
    af_context_store_t *store;
    char expected[AF_DIGEST_STR_MAX];
    uint64_t size;
    uint64_t written;
    int fd;
    char *temp_path;
    af_digest_t *digest;
    bool spent;
};

static bool s_is_hex_name(const char *name)
{
    size_t len = strlen(name);
    if (len != S_HEX_LEN + 4 || strcmp(name + S_HEX_LEN, ".tar") != 0)
        return false;
    for (size_t i = 0; i < S_HEX_LEN; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static s_entry_t *s_find(const af_context_store_t *self, const char *hex)
{
    for (size_t i = 0; i < self->n; i++)
        if (!strcmp(self->entries[i].hex, hex))
            return &self->entries[i];
    return NULL;
}

static s_entry_t *s_add(af_context_store_t *self, const char *hex)
{
    s_entry_t *e = s_find(self, hex);
    if (e)
        return e;
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        s_entry_t *grown = realloc(self->entries, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->entries = grown;
        self->cap = cap;
    }
    e = &self->entries[self->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->hex, sizeof e->hex, "%s", hex);
    return e;
}

static void s_file_path(const af_context_store_t *self, const char *hex, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.tar", self->dir, hex);
}

static void s_touch(af_context_store_t *self, s_entry_t *e)
{
    e->seq = ++self->next_seq;
    char path[AF_CONTEXT_MAX_PATH];
    s_file_path(self, e->hex, path, sizeof path);
    if (utimensat(AT_FDCWD, path, NULL, 0) < 0)
        af_debug("touch %s: %s", path, strerror(errno));
}

static int s_by_mtime(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    if (x->mtime != y->mtime)
        return x->mtime < y->mtime ? -1 : 1;
    return strcmp(x->hex, y->hex);
}

af_context_store_t *af_context_store_new(const char *dir, size_t keep, af_err_t *err)
{
    assert(dir);
    af_context_store_t *self = calloc(1, sizeof *self);
    if (!self || !(self->dir = strdup(dir))) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    self->keep = keep ? keep : 1;
    if (af_mkdirs(dir, 0700, 0700, err) < 0)
        goto fail;
    if (chmod(dir, 0700) < 0)
        af_warn("chmod %s: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d) {
        af_err_set(err, AF_ERR_IO, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[AF_CONTEXT_MAX_PATH];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (!strncmp(de->d_name, S_TEMP_PREFIX, strlen(S_TEMP_PREFIX))) {
            af_info("removing stale partial context %s", path);
            if (unlink(path) < 0)
                af_warn("%s: %s", path, strerror(errno));
            continue;
        }
        if (!s_is_hex_name(de->d_name))
            continue;
        struct stat st;
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        char hex[S_HEX_LEN + 1];
        memcpy(hex, de->d_name, S_HEX_LEN);
        hex[S_HEX_LEN] = '\0';
        s_entry_t *e = s_add(self, hex);
        if (!e) {
            closedir(d);
            af_err_set(err, AF_ERR_NOMEM, "out of memory");
            goto fail;
        }
        e->mtime = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    }
    closedir(d);
    if (self->n)
        qsort(self->entries, self->n, sizeof *self->entries, s_by_mtime);
    for (size_t i = 0; i < self->n; i++)
        self->entries[i].seq = ++self->next_seq;
    af_context_store_evict(self);
    return self;
fail:
    af_context_store_destroy(&self);
    return NULL;
}

void af_context_store_destroy(af_context_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_context_store_t *self = *self_p;
    free(self->entries);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

bool af_context_store_has(af_context_store_t *self, const char *digest)
{
    assert(self);
    const char *hex = af_digest_valid(digest) ? af_digest_hex(digest) : NULL;
    s_entry_t *e = hex ? s_find(self, hex) : NULL;
    if (!e)
        return false;
    char path[AF_CONTEXT_MAX_PATH];
    s_file_path(self, hex, path, sizeof path);
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        /* removed behind our back: forget it */
        *e = self->entries[--self->n];
        return false;
    }
    s_touch(self, e);
    return true;
}

int af_context_store_path(const af_context_store_t *self, const char *digest, char *buf, size_t len)
{
    assert(self);
    if (!af_digest_valid(digest))
        return AF_ERR_INVAL;
    const char *hex = af_digest_hex(digest);
    if (!s_find(self, hex))
        return AF_ERR_NOTFOUND;
    s_file_path(self, hex, buf, len);
    return 0;
}

void af_context_store_pin(af_context_store_t *self, const char *digest)
{
    assert(self);
    const char *hex = af_digest_valid(digest) ? af_digest_hex(digest) : NULL;
    s_entry_t *e = hex ? s_find(self, hex) : NULL;
    if (e)
        e->pins++;
}

void af_context_store_unpin(af_context_store_t *self, const char *digest)
{
    assert(self);
    const char *hex = af_digest_valid(digest) ? af_digest_hex(digest) : NULL;
    s_entry_t *e = hex ? s_find(self, hex) : NULL;
    if (e && e->pins)
        e->pins--;
    af_context_store_evict(self);
}

size_t af_context_store_size(const af_context_store_t *self)
{
    assert(self);
    return self->n;
}

void af_context_store_evict(af_context_store_t *self)
{
    assert(self);
    while (self->n > self->keep) {
        s_entry_t *oldest = NULL;
        for (size_t i = 0; i < self->n; i++)
            if (!self->entries[i].pins && (!oldest || self->entries[i].seq < oldest->seq))
                oldest = &self->entries[i];
        if (!oldest)
            return; /* everything left is in use */
        char path[AF_CONTEXT_MAX_PATH];
        s_file_path(self, oldest->hex, path, sizeof path);
        af_debug("evicting context sha256:%s", oldest->hex);
        if (unlink(path) < 0 && errno != ENOENT)
            af_warn("%s: %s", path, strerror(errno));
        *oldest = self->entries[--self->n];
    }
}

af_context_writer_t *af_context_writer_new(af_context_store_t *store, const char *digest,
                                           uint64_t size, af_err_t *err)
{
    assert(store);
    if (!digest || !af_digest_valid(digest)) {
        af_err_set(err, AF_ERR_INVAL, "invalid context digest \"%s\"", digest ? digest : "");
        return NULL;
    }
    if (size > (uint64_t)AF_CONTEXT_MAX_BYTES) {
        af_err_set(err, AF_ERR_TOOBIG, "context of %llu bytes exceeds the limit of %lld bytes",
                   (unsigned long long)size, (long long)AF_CONTEXT_MAX_BYTES);
        return NULL;
    }
    af_context_writer_t *self = calloc(1, sizeof *self);
    if (!self) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->store = store;
    self->fd = -1;
    self->size = size;
    snprintf(self->expected, sizeof self->expected, "%s", digest);
    if (asprintf(&self->temp_path, "%s/" S_TEMP_PREFIX "XXXXXX", store->dir) < 0) {
        self->temp_path = NULL;
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    self->fd = mkostemp(self->temp_path, O_CLOEXEC);
    if (self->fd < 0) {
        af_err_set(err, AF_ERR_IO, "%s: %s", self->temp_path, strerror(errno));
        free(self->temp_path);
        self->temp_path = NULL;
        goto fail;
    }
    if (!(self->digest = af_digest_new())) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    return self;
fail:
    af_context_writer_destroy(&self);
    return NULL;
}

void af_context_writer_destroy(af_context_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_context_writer_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    if (self->temp_path) {
        if (unlink(self->temp_path) < 0 && errno != ENOENT)
            af_warn("%s: %s", self->temp_path, strerror(errno));
        free(self->temp_path);
    }
    af_digest_destroy(&self->digest);
    free(self);
    *self_p = NULL;
}

int af_context_writer_write(af_context_writer_t *self, uint64_t offset, const void *data,
                            size_t len, af_err_t *err)
{
    assert(self);
    if (self->spent || self->fd < 0)
        return af_err_set(err, AF_ERR_STATE, "context transfer already finished");
    if (offset != self->written)
        return af_err_set(err, AF_ERR_PROTO,
                          "context chunk at offset %llu, expected offset %llu (%s)",
                          (unsigned long long)offset, (unsigned long long)self->written,
                          offset < self->written ? "overlap" : "gap");
    if (len > AF_CHUNK_SIZE)
        return af_err_set(err, AF_ERR_PROTO, "context chunk of %zu bytes exceeds %d bytes", len,
                          AF_CHUNK_SIZE);
    if (len > self->size - self->written)
        return af_err_set(err, AF_ERR_PROTO,
                          "context chunk at offset %llu overruns the announced size %llu",
                          (unsigned long long)offset, (unsigned long long)self->size);
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(self->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return af_err_set(err, AF_ERR_IO, "%s: %s", self->temp_path,
                              n < 0 ? strerror(errno) : "short write");
        p += n;
        left -= (size_t)n;
    }
    if (af_digest_update(self->digest, data, len) < 0)
        return af_err_set(err, AF_ERR_NOMEM, "digest failed");
    self->written += len;
    return 0;
}

uint64_t af_context_writer_offset(const af_context_writer_t *self)
{
    assert(self);
    return self->written;
}

bool af_context_writer_complete(const af_context_writer_t *self)
{
    assert(self);
    return self->written == self->size;
}

int af_context_writer_commit(af_context_writer_t *self, af_err_t *err)
{
    assert(self);
    if (self->spent)
        return af_err_set(err, AF_ERR_STATE, "context transfer already finished");
    if (self->written != self->size)
        return af_err_set(err, AF_ERR_STATE, "context incomplete: %llu of %llu bytes",
                          (unsigned long long)self->written, (unsigned long long)self->size);
    self->spent = true;
    char got[AF_DIGEST_STR_MAX];
    if (af_digest_final(self->digest, got) < 0)
        return af_err_set(err, AF_ERR_STATE, "digest failed");
    if (strcmp(got, self->expected) != 0)
        return af_err_set(err, AF_ERR_DIGEST, "context digest mismatch: expected %s, got %s",
                          self->expected, got);
    if (close(self->fd) < 0) {
        self->fd = -1;
        return af_err_set(err, AF_ERR_IO, "%s: %s", self->temp_path, strerror(errno));
    }
    self->fd = -1;
    af_context_store_t *store = self->store;
    const char *hex = af_digest_hex(self->expected);
    char path[AF_CONTEXT_MAX_PATH];
    s_file_path(store, hex, path, sizeof path);
    if (rename(self->temp_path, path) < 0)
        return af_err_set(err, AF_ERR_IO, "rename %s -> %s: %s", self->temp_path, path,
                          strerror(errno));
    free(self->temp_path);
    self->temp_path = NULL;
    s_entry_t *e = s_add(store, hex);
    if (!e)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    s_touch(store, e);
    e->pins++; /* the caller's pin: it is about to use this context */
    af_context_store_evict(store);
    return 0;
}
