/* compress.c -- parallel gzip (pigz-style pieces) and multi-threaded zstd
 * with output independent of the thread count (see compress.h). Used by
 * archive.c to write layers; the agent's assemble worker sets the
 * algorithm and level.
 *
 * gzip: the writer fills 1 MiB pieces in a ring of 2 x threads slots.
 * A full piece is queued; workers take pieces in sequence order and
 * deflate them (their own z_stream each); the writer emits finished
 * pieces strictly in order, combining their CRC-32s, and blocks only when
 * the ring is full. With one thread the writer deflates each piece itself,
 * through the same function, so the bytes are the same. */
#include "compress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define S_STORED_MAX 65535          /* bytes in one stored deflate block */
#define S_PROBE (16 * 1024)         /* bytes per incompressibility sample */
#define S_PROBE_OUT (S_PROBE + 512) /* its deflate bound, with room */

/* ---- names and levels ---------------------------------------------------- */

const char *af_compress_name(af_compress_algo_t algo)
{
    return algo == AF_COMPRESS_ZSTD ? "zstd" : "gzip";
}

int af_compress_check_level(af_compress_algo_t algo, int level, af_err_t *err)
{
    int max = algo == AF_COMPRESS_ZSTD ? ZSTD_maxCLevel() : 9;
    if (level < 0 || level > max)
        return af_err_set(err, AF_ERR_INVAL, "%s compression level %d is out of range (1..%d)",
                          af_compress_name(algo), level, max);
    return 0;
}

int af_compress_parse(const char *spec, af_compress_algo_t *algo, int *level, af_err_t *err)
{
    if (!spec)
        return af_err_set(err, AF_ERR_INVAL, "no compression given");
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (nlen == 4 && !strncmp(spec, "gzip", 4))
        *algo = AF_COMPRESS_GZIP;
    else if (nlen == 4 && !strncmp(spec, "zstd", 4))
        *algo = AF_COMPRESS_ZSTD;
    else
        return af_err_set(err, AF_ERR_INVAL,
                          "unknown compression \"%.*s\" (gzip or zstd, optionally :LEVEL)",
                          (int)(nlen > 32 ? 32 : nlen), spec);
    *level = 0;
    if (!colon)
        return 0;
    const char *p = colon + 1;
    char *end = NULL;
    long v = *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : -1;
    if (v < 1 || !end || *end || v > 1000)
        return af_err_set(err, AF_ERR_INVAL, "compression level \"%.16s\" is not a number >= 1", p);
    *level = (int)v;
    if (af_compress_check_level(*algo, *level, err))
        return AF_ERR_INVAL;
    return 0;
}

int af_compress_threads(int threads)
{
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    return threads > AF_COMPRESS_MAX_THREADS ? AF_COMPRESS_MAX_THREADS : threads;
}

/* ---- gzip pieces --------------------------------------------------------- */

typedef enum { S_FREE = 0, S_FILLING, S_QUEUED, S_DONE } s_state_t;

typedef struct {
    s_state_t state;
    bool last;
    unsigned char *in; /* AF_COMPRESS_PIECE bytes */
    size_t in_len;
    unsigned char *dict; /* the AF_COMPRESS_DICT input bytes before this piece */
    size_t dict_len;
    unsigned char *out;
    size_t out_len, out_cap;
    uint32_t crc;
    int rc;
} s_piece_t;

/* A deflater: the stream at the compressor's level and a level-1 stream
 * that probes whether a piece is worth deflating at all. */
typedef struct {
    z_stream zs;
    z_stream probe;
    bool zs_ready, probe_ready;
    unsigned char *probe_out;
} s_codec_t;

typedef struct {
    af_compress_t *owner;
    pthread_t tid;
    bool started;
} s_worker_t;

struct af_compress {
    af_compress_algo_t algo;
    int level;
    int threads;
    af_compress_sink_fn *sink;
    void *sink_arg;
    bool failed;
    /* gzip */
    s_piece_t *ring;
    size_t n_ring;
    uint64_t next_fill; /* sequence number of the piece being filled */
    uint64_t next_work; /* next queued piece a worker takes */
    uint64_t next_emit; /* next piece to hand to the sink */
    uint32_t crc;
    uint64_t total_in;
    s_codec_t codec; /* the writer's own, single-thread mode */
    s_worker_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a piece was queued, or stop */
    pthread_cond_t done_cv; /* a piece is done */
    bool sync_ready;
    bool stop;
    /* zstd */
    ZSTD_CCtx *zc;
    unsigned char *zout;
    size_t zout_cap;
};

/* Stored deflate blocks of P's input, starting on a byte boundary. */
static void s_store(s_piece_t *p)
{
    size_t off = 0, o = 0;
    do {
        size_t n = p->in_len - off > S_STORED_MAX ? S_STORED_MAX : p->in_len - off;
        bool final = p->last && off + n == p->in_len;
        p->out[o++] = final ? 1 : 0; /* BFINAL, BTYPE 00, padding to the byte */
        p->out[o++] = (unsigned char)(n & 0xff);
        p->out[o++] = (unsigned char)(n >> 8);
        p->out[o++] = (unsigned char)(~n & 0xff);
        p->out[o++] = (unsigned char)((~n >> 8) & 0xff);
        memcpy(p->out + o, p->in + off, n);
        o += n;
        off += n;
    } while (off < p->in_len);
    p->out_len = o;
}

static size_t s_stored_size(size_t len)
{
    size_t blocks = len ? (len + S_STORED_MAX - 1) / S_STORED_MAX : 1;
    return len + 5 * blocks;
}

/* True when three S_PROBE-byte samples of P (start, middle, end),
 * deflated at level 1, shrink by less than 3 %: random or already
 * compressed data, which deflate at any level would only store after
 * spending its CPU. Depends only on P's bytes. */
static bool s_incompressible(s_codec_t *c, const s_piece_t *p)
{
    if (p->in_len < 4 * S_PROBE)
        return false;
    size_t offs[3] = {0, p->in_len / 2 - S_PROBE / 2, p->in_len - S_PROBE}, got = 0;
    for (int i = 0; i < 3; i++) {
        if (deflateReset(&c->probe) != Z_OK)
            return false;
        c->probe.next_in = p->in + offs[i];
        c->probe.avail_in = S_PROBE;
        c->probe.next_out = c->probe_out;
        c->probe.avail_out = (uInt)S_PROBE_OUT;
        if (deflate(&c->probe, Z_FINISH) != Z_STREAM_END)
            return false;
        got += S_PROBE_OUT - c->probe.avail_out;
    }
    return got * 100 >= 3 * S_PROBE * 97;
}

/* Deflates piece P with C (raw deflate at the compressor's level), or
 * stores it when it would not shrink. Depends on nothing but P's bytes,
 * its dictionary and the level. */
static int s_deflate_piece(s_codec_t *c, s_piece_t *p)
{
    z_stream *zs = &c->zs;
    p->crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), p->in, (uInt)p->in_len);
    if (s_incompressible(c, p)) {
        s_store(p);
        return 0;
    }
    if (deflateReset(zs) != Z_OK)
        return AF_ERR_STATE;
    if (p->dict_len && deflateSetDictionary(zs, p->dict, (uInt)p->dict_len) != Z_OK)
        return AF_ERR_STATE;
    zs->next_in = p->in;
    zs->avail_in = (uInt)p->in_len;
    p->out_len = 0;
    int flush = p->last ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
        zs->next_out = p->out + p->out_len;
        zs->avail_out = (uInt)(p->out_cap - p->out_len);
        int zrc = deflate(zs, flush);
        if (zrc == Z_STREAM_ERROR)
            return AF_ERR_STATE;
        p->out_len = p->out_cap - zs->avail_out;
        if (flush == Z_FINISH ? zrc == Z_STREAM_END : (zs->avail_in == 0 && zs->avail_out != 0))
            break;
        if (zs->avail_out == 0) {
            /* deflateBound is an upper bound, so this is only a safety net */
            size_t cap = p->out_cap * 2;
            unsigned char *o = realloc(p->out, cap);
            if (!o)
                return AF_ERR_NOMEM;
            p->out = o;
            p->out_cap = cap;
        }
    }
    /* incompressible: stored blocks are smaller and cost the reader nothing */
    if (p->out_len > s_stored_size(p->in_len))
        s_store(p);
    return 0;
}

static void s_codec_end(s_codec_t *c)
{
    if (c->zs_ready)
        deflateEnd(&c->zs);
    if (c->probe_ready)
        deflateEnd(&c->probe);
    free(c->probe_out);
    memset(c, 0, sizeof *c);
}

static int s_codec_init(s_codec_t *c, int level)
{
    memset(c, 0, sizeof *c);
    if (deflateInit2(&c->zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return AF_ERR_NOMEM;
    c->zs_ready = true;
    if (deflateInit2(&c->probe, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        s_codec_end(c);
        return AF_ERR_NOMEM;
    }
    c->probe_ready = true;
    if (!(c->probe_out = malloc(S_PROBE_OUT))) {
        s_codec_end(c);
        return AF_ERR_NOMEM;
    }
    return 0;
}

static void *s_worker_main(void *arg)
{
    s_worker_t *w = arg;
    af_compress_t *self = w->owner;
    s_codec_t codec;
    bool ready = s_codec_init(&codec, self->level) == 0;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (!self->stop && self->next_work >= self->next_fill)
            pthread_cond_wait(&self->work_cv, &self->mu);
        if (self->stop)
            break;
        /* every piece below next_fill is queued, done or emitted */
        s_piece_t *p = &self->ring[self->next_work % self->n_ring];
        self->next_work++;
        pthread_mutex_unlock(&self->mu);
        int rc = ready ? s_deflate_piece(&codec, p) : AF_ERR_NOMEM;
        pthread_mutex_lock(&self->mu);
        p->rc = rc;
        p->state = S_DONE;
        pthread_cond_broadcast(&self->done_cv);
    }
    pthread_mutex_unlock(&self->mu);
    if (ready)
        s_codec_end(&codec);
    return NULL;
}

static int s_emit(af_compress_t *self, const void *buf, size_t len, af_err_t *err)
{
    if (len && self->sink(self->sink_arg, buf, len) != 0) {
        self->failed = true;
        return af_err_set(err, AF_ERR_IO, "compressed output refused by its writer");
    }
    return 0;
}

/* Hands the finished piece P (the next in order) to the sink and frees
 * its slot. */
static int s_emit_piece(af_compress_t *self, s_piece_t *p, af_err_t *err)
{
    if (p->rc) {
        self->failed = true;
        return af_err_set(err, p->rc, "gzip: deflate failed (%s)", af_strerror(p->rc));
    }
    self->crc = (uint32_t)crc32_combine(self->crc, p->crc, (z_off_t)p->in_len);
    int rc = s_emit(self, p->out, p->out_len, err);
    p->state = S_FREE;
    p->in_len = p->dict_len = p->out_len = 0;
    p->last = false;
    self->next_emit++;
    return rc;
}

/* Starts NEXT as the piece after P: primed with P's last AF_COMPRESS_DICT
 * input bytes. P must still hold its input. */
static void s_prime(s_piece_t *next, const s_piece_t *p)
{
    size_t d = p->in_len < AF_COMPRESS_DICT ? p->in_len : AF_COMPRESS_DICT;
    memcpy(next->dict, p->in + p->in_len - d, d);
    next->dict_len = d;
    next->in_len = 0;
    next->state = S_FILLING;
}

/* Hands every finished piece, in order, to the sink. Called and returns
 * with the lock held; unlocks around the sink. */
static int s_emit_done(af_compress_t *self, af_err_t *err)
{
    while (self->next_emit < self->next_fill &&
           self->ring[self->next_emit % self->n_ring].state == S_DONE) {
        s_piece_t *d = &self->ring[self->next_emit % self->n_ring];
        pthread_mutex_unlock(&self->mu);
        int rc = s_emit_piece(self, d, err);
        pthread_mutex_lock(&self->mu);
        if (rc)
            return rc;
    }
    return 0;
}

/* Queues the piece being filled (with one thread: compresses and emits
 * it at once) and, unless LAST, starts the next one. The last piece
 * returns only when everything has gone to the sink. */
static int s_submit(af_compress_t *self, bool last, af_err_t *err)
{
    s_piece_t *p = &self->ring[self->next_fill % self->n_ring];
    s_piece_t *next = last ? NULL : &self->ring[(self->next_fill + 1) % self->n_ring];
    p->last = last;
    if (self->threads == 1) {
        if (next) /* free: with one thread every piece is emitted at once */
            s_prime(next, p);
        p->rc = s_deflate_piece(&self->codec, p);
        p->state = S_DONE;
        self->next_fill++;
        return s_emit_piece(self, p, err);
    }
    int rc = 0;
    pthread_mutex_lock(&self->mu);
    /* the next slot holds an older piece until it is emitted */
    while (next && next->state != S_FREE) {
        if ((rc = s_emit_done(self, err)) != 0)
            goto out;
        if (next->state != S_FREE)
            pthread_cond_wait(&self->done_cv, &self->mu);
    }
    if (next)
        s_prime(next, p); /* before a worker may take p */
    p->state = S_QUEUED;
    self->next_fill++;
    pthread_cond_signal(&self->work_cv);
    for (;;) {
        if ((rc = s_emit_done(self, err)) != 0)
            goto out;
        if (!last || self->next_emit == self->next_fill)
            break;
        pthread_cond_wait(&self->done_cv, &self->mu);
    }
out:
    pthread_mutex_unlock(&self->mu);
    return rc;
}

static void s_stop_workers(af_compress_t *self)
{
    if (!self->workers)
        return;
    pthread_mutex_lock(&self->mu);
    self->stop = true;
    pthread_cond_broadcast(&self->work_cv);
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < self->threads; i++)
        if (self->workers[i].started)
            pthread_join(self->workers[i].tid, NULL);
    free(self->workers);
    self->workers = NULL;
}

static int s_gzip_init(af_compress_t *self, af_err_t *err)
{
    self->n_ring = self->threads == 1 ? 2 : 2 * (size_t)self->threads;
    if (!(self->ring = calloc(self->n_ring, sizeof *self->ring)))
        return af_err_set(err, AF_ERR_NOMEM, "gzip: out of memory");
    size_t cap = deflateBound(NULL, AF_COMPRESS_PIECE) + 64;
    for (size_t i = 0; i < self->n_ring; i++) {
        s_piece_t *p = &self->ring[i];
        p->in = malloc(AF_COMPRESS_PIECE);
        p->dict = malloc(AF_COMPRESS_DICT);
        p->out = malloc(cap);
        p->out_cap = cap;
        if (!p->in || !p->dict || !p->out)
            return af_err_set(err, AF_ERR_NOMEM, "gzip: out of memory");
    }
    self->ring[0].state = S_FILLING;
    self->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    if (self->threads == 1) {
        if (s_codec_init(&self->codec, self->level) != 0)
            return af_err_set(err, AF_ERR_NOMEM, "gzip: deflateInit2 failed");
    } else {
        if (pthread_mutex_init(&self->mu, NULL) || pthread_cond_init(&self->work_cv, NULL) ||
            pthread_cond_init(&self->done_cv, NULL))
            return af_err_set(err, AF_ERR_NOMEM, "gzip: cannot create a lock");
        self->sync_ready = true;
        if (!(self->workers = calloc((size_t)self->threads, sizeof *self->workers)))
            return af_err_set(err, AF_ERR_NOMEM, "gzip: out of memory");
        for (int i = 0; i < self->threads; i++) {
            self->workers[i].owner = self;
            if (pthread_create(&self->workers[i].tid, NULL, s_worker_main, &self->workers[i]))
                return af_err_set(err, AF_ERR_NOMEM, "gzip: cannot start a thread");
            self->workers[i].started = true;
        }
    }
    /* fixed header: no mtime, no name, XFL as zlib sets it, OS 255 */
    unsigned char h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    h[8] = self->level == 9 ? 2 : self->level == 1 ? 4 : 0;
    return s_emit(self, h, sizeof h, err);
}

static int s_gzip_write(af_compress_t *self, const unsigned char *buf, size_t len, af_err_t *err)
{
    while (len) {
        s_piece_t *p = &self->ring[self->next_fill % self->n_ring];
        if (p->in_len == AF_COMPRESS_PIECE) {
            int rc = s_submit(self, false, err);
            if (rc)
                return rc;
            continue;
        }
        size_t n = AF_COMPRESS_PIECE - p->in_len;
        if (n > len)
            n = len;
        memcpy(p->in + p->in_len, buf, n);
        p->in_len += n;
        self->total_in += n;
        buf += n;
        len -= n;
    }
    return 0;
}

static int s_gzip_finish(af_compress_t *self, af_err_t *err)
{
    int rc = s_submit(self, true, err);
    if (rc)
        return rc;
    unsigned char t[8];
    uint32_t isize = (uint32_t)(self->total_in & 0xffffffffu);
    for (int i = 0; i < 4; i++) {
        t[i] = (unsigned char)(self->crc >> (8 * i));
        t[4 + i] = (unsigned char)(isize >> (8 * i));
    }
    return s_emit(self, t, sizeof t, err);
}

/* ---- zstd ---------------------------------------------------------------- */

static int s_zstd_init(af_compress_t *self, af_err_t *err)
{
    if (!(self->zc = ZSTD_createCCtx()))
        return af_err_set(err, AF_ERR_NOMEM, "zstd: out of memory");
    /* nbWorkers >= 1 always: the multi-threaded format is the same for any
     * worker count, and differs from nbWorkers = 0 */
    if (ZSTD_isError(ZSTD_CCtx_setParameter(self->zc, ZSTD_c_compressionLevel, self->level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(self->zc, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(self->zc, ZSTD_c_nbWorkers, self->threads)))
        return af_err_set(err, AF_ERR_STATE,
                          "zstd: cannot set level %d with %d workers (libzstd without threads?)",
                          self->level, self->threads);
    self->zout_cap = ZSTD_CStreamOutSize();
    if (!(self->zout = malloc(self->zout_cap)))
        return af_err_set(err, AF_ERR_NOMEM, "zstd: out of memory");
    return 0;
}

static int s_zstd_run(af_compress_t *self, const void *buf, size_t len, ZSTD_EndDirective mode,
                      af_err_t *err)
{
    ZSTD_inBuffer in = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {self->zout, self->zout_cap, 0};
        size_t left = ZSTD_compressStream2(self->zc, &out, &in, mode);
        if (ZSTD_isError(left)) {
            self->failed = true;
            return af_err_set(err, AF_ERR_STATE, "zstd: %s", ZSTD_getErrorName(left));
        }
        int rc = s_emit(self, self->zout, out.pos, err);
        if (rc)
            return rc;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

/* ---- the class ----------------------------------------------------------- */

af_compress_t *af_compress_new(af_compress_algo_t algo, int level, int threads,
                               af_compress_sink_fn *sink, void *arg, af_err_t *err)
{
    if (!sink || (algo != AF_COMPRESS_GZIP && algo != AF_COMPRESS_ZSTD)) {
        af_err_set(err, AF_ERR_INVAL, "compress: bad arguments");
        return NULL;
    }
    if (af_compress_check_level(algo, level, err))
        return NULL;
    af_compress_t *self = calloc(1, sizeof *self);
    if (!self) {
        af_err_set(err, AF_ERR_NOMEM, "compress: out of memory");
        return NULL;
    }
    self->algo = algo;
    self->level =
        level ? level : (algo == AF_COMPRESS_ZSTD ? AF_ZSTD_DEFAULT_LEVEL : AF_GZIP_DEFAULT_LEVEL);
    self->threads = af_compress_threads(threads);
    self->sink = sink;
    self->sink_arg = arg;
    int rc = algo == AF_COMPRESS_ZSTD ? s_zstd_init(self, err) : s_gzip_init(self, err);
    if (rc)
        af_compress_destroy(&self);
    return self;
}

int af_compress_write(af_compress_t *self, const void *buf, size_t len, af_err_t *err)
{
    if (self->failed)
        return af_err_set(err, AF_ERR_STATE, "compress: write after an error");
    if (!len)
        return 0;
    return self->algo == AF_COMPRESS_ZSTD ? s_zstd_run(self, buf, len, ZSTD_e_continue, err)
                                          : s_gzip_write(self, buf, len, err);
}

int af_compress_finish(af_compress_t *self, af_err_t *err)
{
    if (self->failed)
        return af_err_set(err, AF_ERR_STATE, "compress: finish after an error");
    int rc = self->algo == AF_COMPRESS_ZSTD ? s_zstd_run(self, NULL, 0, ZSTD_e_end, err)
                                            : s_gzip_finish(self, err);
    if (rc)
        self->failed = true;
    return rc;
}

void af_compress_destroy(af_compress_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_compress_t *self = *self_p;
    s_stop_workers(self);
    if (self->sync_ready) {
        pthread_mutex_destroy(&self->mu);
        pthread_cond_destroy(&self->work_cv);
        pthread_cond_destroy(&self->done_cv);
    }
    s_codec_end(&self->codec);
    for (size_t i = 0; self->ring && i < self->n_ring; i++) {
        free(self->ring[i].in);
        free(self->ring[i].dict);
        free(self->ring[i].out);
    }
    free(self->ring);
    ZSTD_freeCCtx(self->zc);
    free(self->zout);
    free(self);
    *self_p = NULL;
}

/* ---- one-shot ------------------------------------------------------------ */

typedef struct {
    unsigned char *buf;
    size_t len, cap;
} s_membuf_t;

static int s_mem_sink(void *arg, const void *buf, size_t len)
{
    s_membuf_t *m = arg;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + len)
            cap *= 2;
        unsigned char *b = realloc(m->buf, cap);
        if (!b)
            return -1;
        m->buf = b;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, buf, len);
    m->len += len;
    return 0;
}

int af_compress_buffer(af_compress_algo_t algo, int level, int threads, const void *buf, size_t len,
                       unsigned char **out_p, size_t *out_len, af_err_t *err)
{
    s_membuf_t m = {0};
    af_compress_t *c = af_compress_new(algo, level, threads, s_mem_sink, &m, err);
    int rc = c ? 0 : (err && err->code ? err->code : AF_ERR_NOMEM);
    if (!rc)
        rc = af_compress_write(c, buf, len, err);
    if (!rc)
        rc = af_compress_finish(c, err);
    af_compress_destroy(&c);
    if (rc) {
        free(m.buf);
        return rc;
    }
    *out_p = m.buf;
    *out_len = m.len;
    return 0;
}
