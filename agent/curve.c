/* curve.c -- the agent's CURVE server side: certificate, zauth, and the
 * authorized-keys directory watched by a zloop timer (see curve.h).
 *
 * Used by agent.c when the agent is not --insecure. Everything here fails
 * closed: no certificate, no ZAP handler, no ZMQ_ZAP_ENFORCE_DOMAIN means
 * no agent; an unreadable key directory means no coordinator gets in. */
#include "curve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93 /* libzmq >= 4.3, declared only with its draft API */
#endif
#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01" /* RFC 27 */
#define S_PATH_MAX 4096
#define S_Z85_KEY_LEN 40

struct af_curve {
    zsock_t *router; /* borrowed */
    zloop_t *loop;   /* borrowed */
    int timer;
    zactor_t *auth;
    char keys_dir[S_PATH_MAX];
    char scratch_dir[S_PATH_MAX];
    char snapshot[S_PATH_MAX]; /* the directory zauth reads now, "" if none */
    char public_key[S_Z85_KEY_LEN + 1];
    zhashx_t *keys; /* Z85 key -> file name it came from (the set zauth has) */
    uint64_t dir_sig;
    bool have_sig;
    bool dir_warned;
    char cert_holder[S_PATH_MAX + 8]; /* the file with the secret key */
};

/* Warns when the secret key file is readable by group or others: at start
 * and at every reload of the keys, so a chmod or a careless copy made while
 * the agent runs is not missed until the next restart. */
static void s_warn_readable_secret(const af_curve_t *self)
{
    struct stat st;
    if (self->cert_holder[0] && stat(self->cert_holder, &st) == 0 && (st.st_mode & 077))
        af_warn("--cert %s holds a secret key and is readable by others (mode %04o): chmod 600 it",
                self->cert_holder, (unsigned)(st.st_mode & 07777));
}

/* --- the directory ----------------------------------------------------- */

static uint64_t s_fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static bool s_is_candidate(const char *name)
{
    size_t len = strlen(name);
    if (name[0] == '.') /* ., .., editor and rsync temp files */
        return false;
    return !(len >= 7 && !strcmp(name + len - 7, "_secret"));
}

/* A cheap fingerprint of the directory: names, inodes, sizes, mtimes.
 * Returns 0, or negative when it cannot be read. */
static int s_dir_signature(const char *dir, uint64_t *sig)
{
    DIR *d = opendir(dir);
    if (!d)
        return AF_ERR_IO;
    uint64_t h = 1469598103934665603ULL;
    uint64_t acc = 0; /* order-independent: readdir order may change */
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d)) != NULL && n < 4 * AF_CURVE_MAX_KEYS) {
        if (!s_is_candidate(e->d_name))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) < 0)
            continue;
        uint64_t eh = s_fnv(h, e->d_name, strlen(e->d_name));
        eh = s_fnv(eh, &st.st_ino, sizeof st.st_ino);
        eh = s_fnv(eh, &st.st_size, sizeof st.st_size);
        eh = s_fnv(eh, &st.st_mtim, sizeof st.st_mtim);
        acc += eh;
        n++;
    }
    closedir(d);
    *sig = s_fnv(acc, &n, sizeof n);
    return 0;
}

/* Parses the certificate file PATH (regular, at most
 * AF_CURVE_MAX_CERT_BYTES) into a zconfig tree (caller owns). Reads the
 * bytes itself: zconfig_load() leaks on a syntax error. NULL with the
 * reason in why. */
static zconfig_t *s_load_zpl(const char *path, const char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        *why = "cannot open";
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > AF_CURVE_MAX_CERT_BYTES) {
        *why = S_ISREG(st.st_mode) ? "larger than a certificate can be" : "not a regular file";
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t len = 0;
    ssize_t n = 0;
    while (buf && len < (size_t)st.st_size &&
           (n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
        len += (size_t)n;
    close(fd);
    if (!buf || n < 0) {
        *why = buf ? "read error" : "out of memory";
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    zconfig_t *root = memchr(buf, '\0', len) ? NULL : zconfig_str_load(buf);
    explicit_bzero(buf, len); /* may be a secret certificate */
    free(buf);
    if (!root)
        *why = "not a czmq certificate";
    return root;
}

/* Copies the 40-character Z85 key at PATH_IN_TREE into key (41 bytes) and
 * its binary form into bin (may be NULL). false when absent or invalid. */
static bool s_z85_key(zconfig_t *root, const char *path_in_tree, char *key, uint8_t *bin)
{
    const char *txt = zconfig_get(root, path_in_tree, NULL);
    uint8_t tmp[32] = {0}; /* output only */
    if (!txt || strlen(txt) != S_Z85_KEY_LEN || !zmq_z85_decode(bin ? bin : tmp, txt))
        return false;
    memcpy(key, txt, S_Z85_KEY_LEN + 1);
    return true;
}

/* Reads the public key of one certificate file into key (41 bytes).
 * 0, or negative with the reason in why. */
static int s_read_public_key(const char *path, char *key, const char **why)
{
    zconfig_t *root = s_load_zpl(path, why);
    if (!root)
        return AF_ERR_PARSE;
    int rc = 0;
    if (!s_z85_key(root, "/curve/public-key", key, NULL)) {
        *why = "no valid curve/public-key (40 Z85 characters)";
        rc = AF_ERR_PARSE;
    }
    zconfig_destroy(&root);
    return rc;
}

/* Loads every key of the directory into a new hash (caller owns), at most
 * AF_CURVE_MAX_KEYS files; bad files and duplicates are logged and
 * skipped. NULL when the directory cannot be read. */
static zhashx_t *s_load_keys(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    zhashx_t *keys = zhashx_new();
    if (!keys) {
        closedir(d);
        return NULL;
    }
    zhashx_set_destructor(keys, (zhashx_destructor_fn *)zstr_free);
    zhashx_set_duplicator(keys, (zhashx_duplicator_fn *)strdup);
    struct dirent *e;
    size_t files = 0;
    while ((e = readdir(d)) != NULL) {
        if (!s_is_candidate(e->d_name)) {
            size_t len = strlen(e->d_name);
            if (len >= 7 && !strcmp(e->d_name + len - 7, "_secret"))
                af_warn("%s/%s: a secret certificate does not belong in the authorized-keys "
                        "directory; ignored (copy only the public NAME.key file)",
                        dir, e->d_name);
            continue;
        }
        if (++files > AF_CURVE_MAX_KEYS) {
            af_warn("%s: more than %d files; the rest are ignored", dir, AF_CURVE_MAX_KEYS);
            break;
        }
        char path[S_PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            continue;
        char key[S_Z85_KEY_LEN + 1];
        const char *why = "";
        if (s_read_public_key(path, key, &why) < 0) {
            af_warn("%s: %s; ignored", path, why);
            continue;
        }
        const char *first = zhashx_lookup(keys, key);
        if (first) {
            af_warn("%s: same key as %s/%s; ignored", path, dir, first);
            continue;
        }
        zhashx_insert(keys, key, e->d_name);
    }
    closedir(d);
    return keys;
}

static bool s_same_keys(zhashx_t *a, zhashx_t *b)
{
    if (zhashx_size(a) != zhashx_size(b))
        return false;
    for (void *v = zhashx_first(a); v; v = zhashx_next(a))
        if (!zhashx_lookup(b, zhashx_cursor(a)))
            return false;
    return true;
}

/* --- the snapshot zauth reads ---------------------------------------- */

static void s_remove_snapshot(const char *dir)
{
    if (!dir[0])
        return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    if (rmdir(dir) < 0 && errno != ENOENT)
        af_warn("cannot remove %s: %s", dir, strerror(errno));
}

/* Writes KEYS, one public certificate per file, into a new private
 * directory under scratch_dir. Returns 0 with its path in out. */
static int s_write_snapshot(af_curve_t *self, zhashx_t *keys, char *out, size_t outlen)
{
    if ((size_t)snprintf(out, outlen, "%s/.curve-keys-XXXXXX", self->scratch_dir) >= outlen)
        return AF_ERR_TOOBIG;
    if (!mkdtemp(out)) {
        af_error("cannot create a key snapshot under %s: %s", self->scratch_dir, strerror(errno));
        return AF_ERR_IO;
    }
    size_t i = 0;
    for (void *v = zhashx_first(keys); v; v = zhashx_next(keys), i++) {
        char path[S_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/k%05zu.key", out, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
            if (fd >= 0)
                close(fd);
            af_error("cannot write %s: %s", path, strerror(errno));
            s_remove_snapshot(out);
            return AF_ERR_IO;
        }
        /* the ZPL layout zcert_save_public() writes */
        fprintf(f, "#   archfarm-agent: authorized key from %s\ncurve\n    public-key = \"%s\"\n",
                (const char *)v, (const char *)zhashx_cursor(keys));
        if (fclose(f) != 0) {
            af_error("cannot write %s: %s", path, strerror(errno));
            s_remove_snapshot(out);
            return AF_ERR_IO;
        }
    }
    return 0;
}

/* Hands KEYS (taken) to zauth and makes them the current set. */
static int s_install(af_curve_t *self, zhashx_t **keys_p)
{
    char dir[S_PATH_MAX];
    int rc = s_write_snapshot(self, *keys_p, dir, sizeof dir);
    if (rc < 0) {
        zhashx_destroy(keys_p);
        return rc;
    }
    /* zauth replaces its certificate store between two ZAP requests */
    if (zstr_sendx(self->auth, "CURVE", dir, NULL) < 0 || zsock_wait(self->auth) < 0) {
        af_error("the ZAP handler did not take the new keys");
        s_remove_snapshot(dir);
        zhashx_destroy(keys_p);
        return AF_ERR_STATE;
    }
    s_remove_snapshot(self->snapshot);
    snprintf(self->snapshot, sizeof self->snapshot, "%s", dir);
    zhashx_destroy(&self->keys);
    self->keys = *keys_p;
    *keys_p = NULL;
    return 0;
}

int af_curve_reload(af_curve_t *self)
{
    assert(self);
    uint64_t sig = 0;
    zhashx_t *keys = NULL;
    if (s_dir_signature(self->keys_dir, &sig) < 0) {
        if (!self->dir_warned)
            af_warn("authorized keys: cannot read %s (%s): refusing every coordinator until it "
                    "is readable",
                    self->keys_dir, strerror(errno));
        self->dir_warned = true;
        self->have_sig = false;
        if (!self->keys || zhashx_size(self->keys) == 0)
            return AF_ERR_IO;
        keys = zhashx_new(); /* fail closed: nobody */
        if (!keys)
            return AF_ERR_NOMEM;
        int rc = s_install(self, &keys);
        return rc < 0 ? rc : AF_ERR_IO;
    }
    self->dir_warned = false;
    if (self->have_sig && sig == self->dir_sig)
        return 0;
    keys = s_load_keys(self->keys_dir);
    if (!keys)
        return AF_ERR_IO; /* gone between the two reads: next tick */
    self->dir_sig = sig;
    self->have_sig = true;
    if (self->keys && s_same_keys(keys, self->keys)) {
        zhashx_destroy(&keys);
        return 0;
    }
    size_t n = zhashx_size(keys);
    bool first = self->keys == NULL;
    int rc = s_install(self, &keys);
    if (rc < 0)
        return rc;
    if (n == 0)
        af_warn("authorized keys: none in %s: every coordinator is refused until one is added",
                self->keys_dir);
    else
        af_info("authorized keys: %zu coordinator key(s) from %s%s", n, self->keys_dir,
                first ? "" : " (reloaded)");
    if (!first)
        s_warn_readable_secret(self);
    return first ? 0 : 1;
}

static int s_on_timer(zloop_t *loop, int timer_id, void *arg)
{
    af_curve_reload((af_curve_t *)arg);
    return 0;
}

/* --- setup ------------------------------------------------------------- */

/* True when no ZAP handler is bound in this process: zauth asserts when it
 * cannot bind, so check first (inproc unbind is synchronous). */
static bool s_zap_endpoint_free(void)
{
    zsock_t *probe = zsock_new(ZMQ_REP);
    if (!probe)
        return false;
    bool free_ = zmq_bind(zsock_resolve(probe), S_ZAP_ENDPOINT) == 0;
    if (free_)
        zmq_unbind(zsock_resolve(probe), S_ZAP_ENDPOINT);
    zsock_destroy(&probe);
    return free_;
}

static int s_load_server_cert(af_curve_t *self, const char *path, af_err_t *err)
{
    char secret_path[S_PATH_MAX + 8];
    snprintf(secret_path, sizeof secret_path, "%s_secret", path);
    const char *holder = access(secret_path, F_OK) == 0 ? secret_path : path;
    struct stat st;
    if (stat(holder, &st) < 0)
        return af_err_set(err, AF_ERR_INVAL, "--cert %s: %s (create one with 'archfarm keygen')",
                          path, strerror(errno));
    const char *why = "";
    zconfig_t *root = s_load_zpl(holder, &why);
    if (!root)
        return af_err_set(err, AF_ERR_INVAL, "--cert %s: %s", holder, why);
    char pub[S_Z85_KEY_LEN + 1], sec[S_Z85_KEY_LEN + 1];
    uint8_t pub_bin[32], sec_bin[32];
    int rc = 0;
    if (!s_z85_key(root, "/curve/public-key", pub, pub_bin))
        rc = af_err_set(err, AF_ERR_INVAL, "--cert %s: no valid curve/public-key", holder);
    else if (!s_z85_key(root, "/curve/secret-key", sec, sec_bin))
        rc = af_err_set(err, AF_ERR_INVAL,
                        "--cert %s: holds no secret key (give the NAME.key_secret file "
                        "'archfarm keygen' wrote, or NAME.key with it beside)",
                        holder);
    zconfig_destroy(&root);
    zcert_t *cert = rc ? NULL : zcert_new_from(pub_bin, sec_bin);
    explicit_bzero(sec, sizeof sec);
    explicit_bzero(sec_bin, sizeof sec_bin);
    if (rc)
        return rc;
    if (!cert)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    snprintf(self->cert_holder, sizeof self->cert_holder, "%s", holder);
    s_warn_readable_secret(self);
    zcert_apply(cert, self->router);
    snprintf(self->public_key, sizeof self->public_key, "%s", pub);
    zcert_destroy(&cert);
    return 0;
}

af_curve_t *af_curve_new(zsock_t *router, zloop_t *loop, const char *cert_path,
                         const char *keys_dir, const char *scratch_dir, af_err_t *err)
{
    assert(router);
    assert(loop);
    if (!cert_path || !cert_path[0]) {
        af_err_set(err, AF_ERR_INVAL, "CURVE needs --cert FILE");
        return NULL;
    }
    if (!keys_dir || !keys_dir[0]) {
        af_err_set(err, AF_ERR_INVAL,
                   "CURVE needs --authorized-keys DIR (the coordinators' public certificates)");
        return NULL;
    }
    af_curve_t *self = calloc(1, sizeof *self);
    if (!self) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->router = router;
    self->loop = loop;
    self->timer = -1;
    snprintf(self->keys_dir, sizeof self->keys_dir, "%s", keys_dir);
    snprintf(self->scratch_dir, sizeof self->scratch_dir, "%s", scratch_dir ? scratch_dir : "/tmp");

    struct stat st;
    if (stat(keys_dir, &st) < 0) {
        af_err_set(err, AF_ERR_INVAL, "--authorized-keys %s: %s", keys_dir, strerror(errno));
        goto fail;
    }
    if (!S_ISDIR(st.st_mode)) {
        af_err_set(err, AF_ERR_INVAL, "--authorized-keys %s: not a directory", keys_dir);
        goto fail;
    }
    if (s_load_server_cert(self, cert_path, err) < 0)
        goto fail;
    zsock_set_curve_server(router, 1);
    zsock_set_zap_domain(router, AF_CURVE_ZAP_DOMAIN);
    int one = 1, got = 0;
    size_t got_len = sizeof got;
    if (zmq_setsockopt(zsock_resolve(router), ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one) < 0 ||
        zmq_getsockopt(zsock_resolve(router), ZMQ_ZAP_ENFORCE_DOMAIN, &got, &got_len) < 0 ||
        got != 1) {
        af_err_set(err, AF_ERR_UNSUPPORTED,
                   "this libzmq cannot enforce ZAP (ZMQ_ZAP_ENFORCE_DOMAIN: %s); refusing to run "
                   "CURVE where a missing handler would let anyone in",
                   zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (!s_zap_endpoint_free()) {
        af_err_set(err, AF_ERR_STATE,
                   "a ZAP handler is already installed in this process; refusing to run CURVE "
                   "without one of our own");
        goto fail;
    }
    self->auth = zactor_new(zauth, NULL);
    if (!self->auth) {
        af_err_set(err, AF_ERR_STATE, "cannot start the ZAP handler (zauth); refusing to run");
        goto fail;
    }
    int rc = af_curve_reload(self);
    if (rc < 0 || !self->keys) {
        af_err_set(err, rc == AF_ERR_IO ? AF_ERR_INVAL : AF_ERR_STATE,
                   "--authorized-keys %s: cannot load the keys (%s)", keys_dir,
                   af_strerror(rc < 0 ? rc : AF_ERR_STATE));
        goto fail;
    }
    self->timer = zloop_timer(loop, AF_CURVE_RESCAN_MS, 0, s_on_timer, self);
    if (self->timer < 0) {
        af_err_set(err, AF_ERR_NOMEM, "cannot start the authorized-keys timer");
        goto fail;
    }
    af_info("CURVE: server key %s, ZAP domain %s enforced", self->public_key, AF_CURVE_ZAP_DOMAIN);
    return self;
fail:
    af_curve_destroy(&self);
    return NULL;
}

void af_curve_destroy(af_curve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_curve_t *self = *self_p;
    if (self->timer >= 0 && self->loop)
        zloop_timer_end(self->loop, self->timer);
    zactor_destroy(&self->auth);
    s_remove_snapshot(self->snapshot);
    zhashx_destroy(&self->keys);
    free(self);
    *self_p = NULL;
}

const char *af_curve_public_key(const af_curve_t *self)
{
    assert(self);
    return self->public_key;
}

size_t af_curve_key_count(const af_curve_t *self)
{
    assert(self);
    return self->keys ? zhashx_size(self->keys) : 0;
}
