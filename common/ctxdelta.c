/* ctxdelta.c -- see ctxdelta.h. */
#include "ctxdelta.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limits.h"

#define S_BUF (64 * 1024)
#define S_SHA 32
#define S_MAGIC_LEN 8
#define S_IDX_MAGIC "AFCTXIDX2\n"
#define S_IDX_MAGIC_LEN 10
#define S_IDX_DIGEST_LEN 71 /* "sha256:" + 64 hex */
#define S_MAX_MEMBERS ((size_t)AF_CONTEXT_MAX_FILES + 2)

typedef struct {
    uint64_t off, len;
    unsigned char sha[S_SHA];
} s_member_t;

struct af_ctxindex {
    s_member_t *v;
    size_t n, cap;
    uint64_t size;
};

/* ---- small I/O helpers ---------------------------------------------------- */

static void s_put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t s_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* pread of exactly LEN bytes at OFF. */
static int s_pread_all(int fd, void *buf, size_t len, uint64_t off, af_err_t *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return af_err_set(err, AF_ERR_IO, "read at offset %llu: %s",
                              (unsigned long long)(off + got),
                              r < 0 ? strerror(errno) : "short file");
        got += (size_t)r;
    }
    return 0;
}

static int s_write_all(int fd, const void *buf, size_t len, af_err_t *err)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return af_err_set(err, AF_ERR_IO, "write: %s", w < 0 ? strerror(errno) : "short write");
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* ---- the index -------------------------------------------------------------- */

static int s_push(af_ctxindex_t *self, uint64_t off, af_err_t *err)
{
    if (self->n >= S_MAX_MEMBERS)
        return af_err_set(err, AF_ERR_TOOBIG, "more than %zu tar members", S_MAX_MEMBERS);
    if (self->n == self->cap) {
        size_t cap = self->cap ? 2 * self->cap : 256;
        s_member_t *v = realloc(self->v, cap * sizeof *v);
        if (!v)
            return af_err_set(err, AF_ERR_NOMEM, "out of memory");
        self->v = v;
        self->cap = cap;
    }
    self->v[self->n++] = (s_member_t){.off = off};
    return 0;
}

/* libarchive reads the tar through pread, so FD's offset stays put. */
typedef struct {
    int fd;
    uint64_t pos, size;
    char buf[S_BUF];
} s_reader_t;

static la_ssize_t s_read_cb(struct archive *a, void *arg, const void **out)
{
    s_reader_t *r = arg;
    uint64_t left = r->size - r->pos;
    size_t want = left < S_BUF ? (size_t)left : S_BUF;
    if (want == 0)
        return 0;
    ssize_t n;
    do
        n = pread(r->fd, r->buf, want, (off_t)r->pos);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        archive_set_error(a, errno, "%s", strerror(errno));
        return -1;
    }
    r->pos += (uint64_t)n;
    *out = r->buf;
    return n;
}

static la_int64_t s_skip_cb(struct archive *a, void *arg, la_int64_t request)
{
    (void)a;
    s_reader_t *r = arg;
    uint64_t left = r->size - r->pos;
    uint64_t n = request < 0 ? 0 : (uint64_t)request;
    if (n > left)
        n = left;
    r->pos += n;
    return (la_int64_t)n;
}

/* The members' start offsets, from libarchive's header positions. */
static int s_offsets(af_ctxindex_t *self, int fd, af_err_t *err)
{
    s_reader_t *r = calloc(1, sizeof *r);
    struct archive *a = archive_read_new();
    int rc = 0;
    if (!r || !a) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    r->fd = fd;
    r->size = self->size;
    archive_read_support_format_tar(a);
    if (archive_read_open2(a, r, NULL, s_read_cb, s_skip_cb, NULL) != ARCHIVE_OK) {
        rc = af_err_set(err, AF_ERR_PARSE, "not a tar: %s", archive_error_string(a));
        goto out;
    }
    struct archive_entry *e;
    int hr;
    while ((hr = archive_read_next_header(a, &e)) == ARCHIVE_OK || hr == ARCHIVE_WARN) {
        la_int64_t pos = archive_read_header_position(a);
        uint64_t last = self->n ? self->v[self->n - 1].off : 0;
        if (pos < 0 || (uint64_t)pos >= self->size || (self->n && (uint64_t)pos <= last))
            break; /* not a position we can use: the rest is one member */
        if (self->n == 0 && pos > 0 && (rc = s_push(self, 0, err)))
            goto out;
        if ((rc = s_push(self, (uint64_t)pos, err)))
            goto out;
        if (archive_read_data_skip(a) != ARCHIVE_OK)
            break;
    }
    if (hr != ARCHIVE_EOF && hr != ARCHIVE_OK && hr != ARCHIVE_WARN)
        rc = af_err_set(err, AF_ERR_PARSE, "not a tar: %s", archive_error_string(a));
    if (!rc && self->n == 0 && self->size)
        rc = s_push(self, 0, err);
out:
    if (a)
        archive_read_free(a);
    free(r);
    return rc;
}

/* sha256 of the LEN bytes at OFF. */
static int s_hash_range(int fd, uint64_t off, uint64_t len, unsigned char *out, void *buf,
                        af_err_t *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = 0;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = af_err_set(err, AF_ERR_NOMEM, "sha256: out of memory");
        goto out;
    }
    while (len) {
        size_t n = len < S_BUF ? (size_t)len : S_BUF;
        if ((rc = s_pread_all(fd, buf, n, off, err)))
            goto out;
        EVP_DigestUpdate(md, buf, n);
        off += n;
        len -= n;
    }
    EVP_DigestFinal_ex(md, out, NULL);
out:
    EVP_MD_CTX_free(md);
    return rc;
}

af_ctxindex_t *af_ctxindex_build(int fd, uint64_t size, af_err_t *err)
{
    af_ctxindex_t *self = calloc(1, sizeof *self);
    void *buf = malloc(S_BUF);
    if (!self || !buf) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    self->size = size;
    if (s_offsets(self, fd, err))
        goto fail;
    for (size_t i = 0; i < self->n; i++) {
        uint64_t end = i + 1 < self->n ? self->v[i + 1].off : size;
        self->v[i].len = end - self->v[i].off;
        if (s_hash_range(fd, self->v[i].off, self->v[i].len, self->v[i].sha, buf, err))
            goto fail;
    }
    free(buf);
    return self;
fail:
    free(buf);
    af_ctxindex_destroy(&self);
    return NULL;
}

void af_ctxindex_destroy(af_ctxindex_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->v);
    free(*self_p);
    *self_p = NULL;
}

size_t af_ctxindex_count(const af_ctxindex_t *self)
{
    return self->n;
}

uint64_t af_ctxindex_size(const af_ctxindex_t *self)
{
    return self->size;
}

/* The file: magic, the tar's digest, size, count, then per member
 * offset, length, sha256. The offsets are implied by the lengths but kept,
 * so a load can check that the members tile the tar. */
int af_ctxindex_save(const af_ctxindex_t *self, const char *digest, const char *path, af_err_t *err)
{
    if (!af_digest_valid(digest) || strlen(digest) != S_IDX_DIGEST_LEN)
        return af_err_set(err, AF_ERR_INVAL, "%s: not a sha256 digest", path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return af_err_set(err, AF_ERR_IO, "%s: %s", tmp, strerror(errno));
    unsigned char head[S_IDX_MAGIC_LEN + S_IDX_DIGEST_LEN + 16];
    memcpy(head, S_IDX_MAGIC, S_IDX_MAGIC_LEN);
    memcpy(head + S_IDX_MAGIC_LEN, digest, S_IDX_DIGEST_LEN);
    s_put64(head + S_IDX_MAGIC_LEN + S_IDX_DIGEST_LEN, self->size);
    s_put64(head + S_IDX_MAGIC_LEN + S_IDX_DIGEST_LEN + 8, self->n);
    int rc = s_write_all(fd, head, sizeof head, err);
    for (size_t i = 0; !rc && i < self->n; i++) {
        unsigned char rec[16 + S_SHA];
        s_put64(rec, self->v[i].off);
        s_put64(rec + 8, self->v[i].len);
        memcpy(rec + 16, self->v[i].sha, S_SHA);
        rc = s_write_all(fd, rec, sizeof rec, err);
    }
    if (close(fd) < 0 && !rc)
        rc = af_err_set(err, AF_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) < 0)
        rc = af_err_set(err, AF_ERR_IO, "rename %s: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

static int s_read_exact(FILE *f, void *buf, size_t len)
{
    return fread(buf, 1, len, f) == len ? 0 : -1;
}

af_ctxindex_t *af_ctxindex_load(const char *path, char digest[AF_DIGEST_STR_MAX], af_err_t *err)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "%s: %s", path,
                   strerror(errno));
        return NULL;
    }
    af_ctxindex_t *self = calloc(1, sizeof *self);
    unsigned char head[S_IDX_MAGIC_LEN + S_IDX_DIGEST_LEN + 16];
    if (!self) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (s_read_exact(f, head, sizeof head) || memcmp(head, S_IDX_MAGIC, S_IDX_MAGIC_LEN))
        goto bad;
    memcpy(digest, head + S_IDX_MAGIC_LEN, S_IDX_DIGEST_LEN);
    digest[S_IDX_DIGEST_LEN] = '\0';
    if (!af_digest_valid(digest))
        goto bad;
    self->size = s_get64(head + S_IDX_MAGIC_LEN + S_IDX_DIGEST_LEN);
    uint64_t n = s_get64(head + S_IDX_MAGIC_LEN + S_IDX_DIGEST_LEN + 8);
    if (n > S_MAX_MEMBERS || self->size > (uint64_t)AF_CONTEXT_MAX_BYTES)
        goto bad;
    uint64_t next = 0;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char rec[16 + S_SHA];
        if (s_read_exact(f, rec, sizeof rec) || s_push(self, s_get64(rec), err))
            goto bad;
        s_member_t *m = &self->v[self->n - 1];
        m->len = s_get64(rec + 8);
        memcpy(m->sha, rec + 16, S_SHA);
        if (m->off != next || m->len == 0 || m->len > self->size - m->off)
            goto bad;
        next = m->off + m->len;
    }
    if (next != self->size || fgetc(f) != EOF)
        goto bad;
    fclose(f);
    return self;
bad:
    af_err_set(err, AF_ERR_PARSE, "%s: not a well-formed context index", path);
fail:
    fclose(f);
    af_ctxindex_destroy(&self);
    return NULL;
}

/* ---- writing a delta ---------------------------------------------------------- */

static int s_sha_cmp(const void *a, const void *b)
{
    const s_member_t *x = *(const s_member_t *const *)a, *y = *(const s_member_t *const *)b;
    int c = memcmp(x->sha, y->sha, S_SHA);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The delta being written: the pending instruction merges adjacent ones. */
typedef struct {
    int new_fd, out_fd;
    uint64_t size;
    char pending;      /* 0, 'C' or 'D' */
    uint64_t off, len; /* base offset ('C') or new offset ('D'), and length */
    void *buf;
} s_writer_t;

static int s_flush(s_writer_t *w, af_err_t *err)
{
    unsigned char op[17];
    int rc = 0;
    if (w->pending == 'C') {
        op[0] = 'C';
        s_put64(op + 1, w->off);
        s_put64(op + 9, w->len);
        rc = s_write_all(w->out_fd, op, 17, err);
        w->size += 17;
    } else if (w->pending == 'D') {
        op[0] = 'D';
        s_put64(op + 1, w->len);
        rc = s_write_all(w->out_fd, op, 9, err);
        w->size += 9;
        for (uint64_t done = 0; !rc && done < w->len;) {
            size_t n = w->len - done < S_BUF ? (size_t)(w->len - done) : S_BUF;
            rc = s_pread_all(w->new_fd, w->buf, n, w->off + done, err);
            if (!rc)
                rc = s_write_all(w->out_fd, w->buf, n, err);
            done += n;
        }
        w->size += w->len;
    }
    w->pending = 0;
    return rc;
}

/* Adds an instruction, merged with the pending one when they are adjacent. */
static int s_emit(s_writer_t *w, char op, uint64_t off, uint64_t len, af_err_t *err)
{
    if (w->pending == op && w->off + w->len == off) {
        w->len += len;
        return 0;
    }
    int rc = s_flush(w, err);
    w->pending = op;
    w->off = off;
    w->len = len;
    return rc;
}

int af_ctxdelta_write(const af_ctxindex_t *base, const af_ctxindex_t *new_idx, int new_fd,
                      int out_fd, uint64_t *size_p, af_err_t *err)
{
    s_writer_t w = {.new_fd = new_fd, .out_fd = out_fd, .buf = malloc(S_BUF)};
    const s_member_t **sorted = malloc((base->n ? base->n : 1) * sizeof *sorted);
    int rc = 0;
    if (!w.buf || !sorted) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < base->n; i++)
        sorted[i] = &base->v[i];
    qsort(sorted, base->n, sizeof *sorted, s_sha_cmp);
    rc = s_write_all(out_fd, AF_CTXDELTA_MAGIC, S_MAGIC_LEN, err);
    w.size = S_MAGIC_LEN;
    for (size_t i = 0; !rc && i < new_idx->n; i++) {
        const s_member_t *m = &new_idx->v[i];
        const s_member_t *key = m;
        const s_member_t **hit =
            base->n ? bsearch(&key, sorted, base->n, sizeof *sorted, s_sha_cmp) : NULL;
        rc = hit ? s_emit(&w, 'C', (*hit)->off, m->len, err) : s_emit(&w, 'D', m->off, m->len, err);
    }
    if (!rc)
        rc = s_flush(&w, err);
    if (!rc)
        rc = s_write_all(out_fd, "E", 1, err);
    w.size += 1;
    if (!rc && size_p)
        *size_p = w.size;
out:
    free(w.buf);
    free(sorted);
    return rc;
}

/* ---- applying a delta ------------------------------------------------------------ */

typedef enum { S_MAGIC, S_OP, S_ARGS, S_LITERAL, S_END, S_BROKEN } s_state_t;

struct af_ctxdelta_apply {
    int base_fd;
    uint64_t base_size;
    af_ctxdelta_sink_fn *sink;
    void *arg;
    s_state_t state;
    unsigned char hdr[17]; /* the instruction being read */
    size_t have, need;
    uint64_t literal_left;
    uint64_t fed, produced;
    void *buf;
};

af_ctxdelta_apply_t *af_ctxdelta_apply_new(int base_fd, uint64_t base_size,
                                           af_ctxdelta_sink_fn *sink, void *arg)
{
    af_ctxdelta_apply_t *self = calloc(1, sizeof *self);
    if (!self || !(self->buf = malloc(S_BUF))) {
        free(self);
        return NULL;
    }
    self->base_fd = base_fd;
    self->base_size = base_size;
    self->sink = sink;
    self->arg = arg;
    self->state = S_MAGIC;
    self->need = S_MAGIC_LEN;
    return self;
}

void af_ctxdelta_apply_destroy(af_ctxdelta_apply_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

static int s_broken(af_ctxdelta_apply_t *self, int code, af_err_t *err, const char *what)
{
    self->state = S_BROKEN;
    return af_err_set(err, code, "context delta at offset %llu: %s", (unsigned long long)self->fed,
                      what);
}

static int s_sink(af_ctxdelta_apply_t *self, const void *data, size_t len, af_err_t *err)
{
    int rc = self->sink(self->arg, data, len, err);
    if (rc)
        self->state = S_BROKEN;
    else
        self->produced += len;
    return rc;
}

/* A copy from the base, in pieces no larger than a context chunk. */
static int s_copy(af_ctxdelta_apply_t *self, uint64_t off, uint64_t len, af_err_t *err)
{
    if (len > self->base_size || off > self->base_size - len)
        return s_broken(self, AF_ERR_PROTO, err, "a copy outside the base context");
    while (len) {
        size_t n = len < S_BUF ? (size_t)len : S_BUF;
        if (s_pread_all(self->base_fd, self->buf, n, off, err)) {
            self->state = S_BROKEN;
            return AF_ERR_IO;
        }
        int rc = s_sink(self, self->buf, n, err);
        if (rc)
            return rc;
        off += n;
        len -= n;
    }
    return 0;
}

/* A whole instruction header was read: act on it. */
static int s_instruction(af_ctxdelta_apply_t *self, af_err_t *err)
{
    switch (self->state) {
    case S_MAGIC:
        if (memcmp(self->hdr, AF_CTXDELTA_MAGIC, S_MAGIC_LEN))
            return s_broken(self, AF_ERR_PROTO, err, "not a context delta (bad magic)");
        self->state = S_OP;
        self->need = 1;
        return 0;
    case S_OP:
        if (self->hdr[0] == 'E') {
            self->state = S_END;
            return 0;
        }
        if (self->hdr[0] != 'C' && self->hdr[0] != 'D')
            return s_broken(self, AF_ERR_PROTO, err, "unknown instruction");
        self->state = S_ARGS;
        self->need = self->hdr[0] == 'C' ? 17 : 9;
        return 0;
    case S_ARGS:
        if (self->hdr[0] == 'C') {
            int rc = s_copy(self, s_get64(self->hdr + 1), s_get64(self->hdr + 9), err);
            self->state = rc ? S_BROKEN : S_OP;
            self->need = 1;
            return rc;
        }
        self->literal_left = s_get64(self->hdr + 1);
        if (self->literal_left > (uint64_t)AF_CONTEXT_MAX_BYTES)
            return s_broken(self, AF_ERR_PROTO, err, "a literal larger than any context");
        self->state = self->literal_left ? S_LITERAL : S_OP;
        self->need = 1;
        return 0;
    default:
        return s_broken(self, AF_ERR_STATE, err, "internal state");
    }
}

int af_ctxdelta_apply_feed(af_ctxdelta_apply_t *self, const void *data, size_t len, af_err_t *err)
{
    const unsigned char *p = data;
    while (len) {
        if (self->state == S_BROKEN)
            return af_err_set(err, AF_ERR_STATE, "context delta already failed");
        if (self->state == S_END)
            return s_broken(self, AF_ERR_PROTO, err, "bytes after the end");
        if (self->state == S_LITERAL) {
            size_t n = self->literal_left < len ? (size_t)self->literal_left : len;
            int rc = s_sink(self, p, n, err);
            if (rc)
                return rc;
            self->literal_left -= n;
            self->fed += n;
            p += n;
            len -= n;
            if (!self->literal_left)
                self->state = S_OP;
            continue;
        }
        /* S_MAGIC, S_OP, S_ARGS: collect the header; ARGS keep the op byte */
        size_t base = self->state == S_ARGS ? 1 : 0;
        size_t want = self->need - base - self->have;
        size_t n = want < len ? want : len;
        memcpy(self->hdr + base + self->have, p, n);
        self->have += n;
        self->fed += n;
        p += n;
        len -= n;
        if (self->have == self->need - base) {
            self->have = 0;
            int rc = s_instruction(self, err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int af_ctxdelta_apply_finish(const af_ctxdelta_apply_t *self, af_err_t *err)
{
    if (self->state == S_END)
        return 0;
    return af_err_set(err, AF_ERR_PROTO, "context delta truncated at offset %llu",
                      (unsigned long long)self->fed);
}

uint64_t af_ctxdelta_apply_fed(const af_ctxdelta_apply_t *self)
{
    return self->fed;
}

uint64_t af_ctxdelta_apply_produced(const af_ctxdelta_apply_t *self)
{
    return self->produced;
}
