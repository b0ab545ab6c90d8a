/* test_registry.c -- the OCI distribution client (common/registry.c)
 * against a REAL registry: Debian's docker-registry (CNCF distribution),
 * started here on a free loopback port with a temp storage dir, once
 * plain, once behind htpasswd basic auth and once behind TLS with a
 * self-signed certificate. Blobs go up and down, mount across repos,
 * manifests go up by digest and by tag, and broken storage, wrong digests
 * and missing things give the right errors. Skipped (with a message) only
 * when docker-registry is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "digest.h"
#include "oci.h"
#include "registry.h"

typedef struct {
    char dir[128];
    char host[64];
    pid_t pid;
    bool tls;
    bool auth;
} server_t;

/* The servers, one per group. Test-only state. */
static server_t s_plain, s_basic, s_tls, s_mock, s_mock_tls;

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int s_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void s_stop(server_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int st;
        for (int i = 0; i < 50 && waitpid(s->pid, &st, WNOHANG) == 0; i++)
            usleep(100000);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
        s->pid = 0;
    }
    if (s->dir[0]) {
        s_sh("rm -rf '%s'", s->dir);
        s->dir[0] = '\0';
    }
}

static af_registry_t *s_client(const server_t *s, bool insecure, const char *user, const char *pass)
{
    char ca[256];
    snprintf(ca, sizeof ca, "%s/cert.pem", s->dir);
    af_registry_opts_t o = {.insecure = insecure,
                            .username = user,
                            .password = pass,
                            .ca_file = s->tls && !insecure ? ca : NULL,
                            .timeout_s = 30};
    af_err_t err;
    af_registry_t *r = af_registry_new(s->host, &o, &err);
    if (!r)
        fail_msg("af_registry_new(%s): %s", s->host, err.msg);
    return r;
}

/* Starts docker-registry serve with a fresh config and storage; waits up
 * to 10 s for /v2/ to answer (401 counts when auth is on). */
static int s_start(server_t *s, bool tls, bool auth)
{
    memset(s, 0, sizeof *s);
    s->tls = tls;
    s->auth = auth;
    snprintf(s->dir, sizeof s->dir, "/tmp/af_registry_XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    int port = s_free_port();
    if (port < 0)
        return -1;
    snprintf(s->host, sizeof s->host, "127.0.0.1:%d", port);
    char extra[1024] = "";
    if (tls) {
        if (s_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                 "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout '%s/key.pem' "
                 "-out '%s/cert.pem' >/dev/null 2>&1",
                 s->dir, s->dir))
            return -1;
        snprintf(extra, sizeof extra, "  tls:\n    certificate: %s/cert.pem\n    key: %s/key.pem\n",
                 s->dir, s->dir);
    }
    char auth_yaml[512] = "";
    if (auth) {
        if (s_sh("htpasswd -Bbn alice 's3cret pass' > '%s/htpasswd'", s->dir))
            return -1;
        snprintf(auth_yaml, sizeof auth_yaml,
                 "auth:\n  htpasswd:\n    realm: archfarm-test\n    path: %s/htpasswd\n", s->dir);
    }
    char cfg[256], logp[256];
    snprintf(cfg, sizeof cfg, "%s/config.yml", s->dir);
    snprintf(logp, sizeof logp, "%s/registry.log", s->dir);
    FILE *f = fopen(cfg, "w");
    if (!f)
        return -1;
    fprintf(f,
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n  filesystem:\n    rootdirectory: %s/storage\n  delete:\n"
            "    enabled: true\nhttp:\n  addr: %s\n  secret: archfarm-test-only\n%s%s",
            s->dir, s->host, extra, auth_yaml);
    fclose(f);
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("docker-registry", "docker-registry", "serve", cfg, (char *)NULL);
        _exit(127);
    }
    /* poll /v2/ with a throwaway client, at most ~10 s */
    for (int i = 0; i < 100; i++) {
        af_registry_t *r = s_client(s, !tls, NULL, NULL);
        af_err_t err;
        int rc = af_registry_ping(r, &err);
        af_registry_destroy(&r);
        if (rc == 0 || (auth && rc == AF_ERR_AUTH))
            return 0;
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            fprintf(stderr, "docker-registry exited at start, log:\n");
            s_sh("cat '%s' >&2", logp);
            return -1;
        }
        usleep(100000);
    }
    fprintf(stderr, "docker-registry on %s did not answer /v2/ within 10 s, log:\n", s->host);
    s_sh("cat '%s' >&2", logp);
    return -1;
}

static int setup_plain(void **state)
{
    (void)state;
    if (s_start(&s_plain, false, false)) {
        s_stop(&s_plain);
        return -1;
    }
    return 0;
}
static int teardown_plain(void **state)
{
    (void)state;
    s_stop(&s_plain);
    return 0;
}
static int setup_basic(void **state)
{
    (void)state;
    if (s_start(&s_basic, false, true)) {
        s_stop(&s_basic);
        return -1;
    }
    return 0;
}
static int teardown_basic(void **state)
{
    (void)state;
    s_stop(&s_basic);
    return 0;
}
static int setup_tls(void **state)
{
    (void)state;
    if (s_start(&s_tls, true, false)) {
        s_stop(&s_tls);
        return -1;
    }
    return 0;
}
static int teardown_tls(void **state)
{
    (void)state;
    s_stop(&s_tls);
    return 0;
}

/* The scripted registry (data/registry/mock_registry.py) for what a real
 * one cannot be made to do: bearer tokens, 5xx/429, failing uploads,
 * lying headers. */
/* Starts the scripted registry into S; with TLS it serves HTTPS with a
 * fresh self-signed certificate (S->dir/cert.pem) and opens its plain-HTTP
 * trap listener. */
static int s_start_mock(server_t *s, bool tls)
{
    memset(s, 0, sizeof *s);
    s->tls = tls;
    snprintf(s->dir, sizeof s->dir, "/tmp/af_mockreg_XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    const char *data = getenv("AF_TEST_DATA");
    char script[512], portfile[256], cert[256], key[256];
    snprintf(script, sizeof script, "%s/registry/mock_registry.py", data && *data ? data : "data");
    snprintf(portfile, sizeof portfile, "%s/port", s->dir);
    snprintf(cert, sizeof cert, "%s/cert.pem", s->dir);
    snprintf(key, sizeof key, "%s/key.pem", s->dir);
    if (tls && s_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                    "-addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' >/dev/null 2>&1",
                    key, cert))
        return -1;
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        if (tls)
            execlp("python3", "python3", script, portfile, cert, key, (char *)NULL);
        else
            execlp("python3", "python3", script, portfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(portfile, "r");
        int port = 0;
        if (f) {
            int n = fscanf(f, "%d", &port);
            fclose(f);
            if (n == 1 && port > 0) {
                snprintf(s->host, sizeof s->host, "127.0.0.1:%d", port);
                return 0;
            }
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            fprintf(stderr, "mock registry %s exited at start\n", script);
            return -1;
        }
        usleep(100000);
    }
    fprintf(stderr, "mock registry did not start within 10 s\n");
    return -1;
}

static int setup_mock(void **state)
{
    (void)state;
    if (s_start_mock(&s_mock, false)) {
        s_stop(&s_mock);
        return -1;
    }
    return 0;
}

static int setup_mock_tls(void **state)
{
    (void)state;
    if (s_start_mock(&s_mock_tls, true)) {
        s_stop(&s_mock_tls);
        return -1;
    }
    return 0;
}

static int teardown_mock_tls(void **state)
{
    (void)state;
    s_stop(&s_mock_tls);
    return 0;
}

static int teardown_mock(void **state)
{
    (void)state;
    s_stop(&s_mock);
    return 0;
}

/* ---- helpers ---- */

/* Writes SIZE pseudo-random bytes (seeded) to PATH and digests them. */
static void s_make_blob(const char *path, size_t size, unsigned seed,
                        char digest[AF_DIGEST_STR_MAX])
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        fputc((int)(x & 0xff), f);
    }
    fclose(f);
    uint64_t got = 0;
    af_err_t err;
    assert_int_equal(af_digest_file(path, digest, &got, &err), 0);
    assert_int_equal(got, size);
}

static void s_push_buffer(af_registry_t *r, const char *repo, const char *data, size_t len,
                          char digest[AF_DIGEST_STR_MAX])
{
    char path[] = "/tmp/af_blob_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    assert_int_equal(af_digest_buffer(data, len, digest), 0);
    af_err_t err;
    int rc = af_registry_blob_push(r, repo, digest, path, len, NULL, NULL, NULL, &err);
    unlink(path);
    if (rc)
        fail_msg("push %s: %s", digest, err.msg);
}

typedef struct {
    uint64_t last, total;
    int calls;
} progress_t;

static void s_progress(uint64_t done, uint64_t total, void *arg)
{
    progress_t *p = arg;
    if (done > p->last)
        p->last = done;
    if (total)
        p->total = total;
    p->calls++;
}

/* Builds and pushes a one-layer image into REPO; returns its manifest. */
static char *s_push_image(af_registry_t *r, const char *repo, const char *plat, size_t *len,
                          char mdigest[AF_DIGEST_STR_MAX])
{
    af_err_t err;
    char ldigest[AF_DIGEST_STR_MAX], cdigest[AF_DIGEST_STR_MAX];
    char layer[64];
    snprintf(layer, sizeof layer, "layer bytes for %s", plat);
    s_push_buffer(r, repo, layer, strlen(layer), ldigest);
    af_image_spec_t spec = {0};
    assert_int_equal(af_platform_parse(plat, &spec.platform, NULL), 0);
    const char *ids[] = {ldigest};
    size_t clen;
    char *cfg = af_oci_config_build(&spec, NULL, 0, ids, 1, &clen, &err);
    assert_non_null(cfg);
    s_push_buffer(r, repo, cfg, clen, cdigest);
    af_descriptor_t c = {.size = (int64_t)clen}, l = {.size = (int64_t)strlen(layer)};
    snprintf(c.media_type, sizeof c.media_type, AF_MT_OCI_CONFIG);
    snprintf(c.digest, sizeof c.digest, "%s", cdigest);
    snprintf(l.media_type, sizeof l.media_type, AF_MT_OCI_LAYER_GZIP);
    snprintf(l.digest, sizeof l.digest, "%s", ldigest);
    char *m = af_oci_manifest_build(&c, &l, 1, NULL, 0, len, &err);
    assert_non_null(m);
    assert_int_equal(af_digest_buffer(m, *len, mdigest), 0);
    int rc = af_registry_manifest_put(r, repo, mdigest, AF_MT_OCI_MANIFEST, m, *len, NULL, &err);
    if (rc)
        fail_msg("manifest put: %s", err.msg);
    free(cfg);
    return m;
}

/* ---- plain registry ---- */

static void registry_insecure_client_falls_back_to_http(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    assert_int_equal(af_registry_ping(r, &err), 0);
    assert_string_equal(af_registry_scheme(r), "http");
    /* and stays there */
    assert_int_equal(af_registry_ping(r, &err), 0);
    assert_string_equal(af_registry_scheme(r), "http");
    af_registry_destroy(&r);
    assert_null(r);
    af_registry_destroy(&r);
}

static void registry_secure_client_never_downgrades_to_http(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_plain, false, NULL, NULL);
    af_err_t err;
    af_err_clear(&err);
    int rc = af_registry_ping(r, &err);
    assert_int_equal(rc, AF_ERR_NET);
    assert_string_equal(af_registry_scheme(r), "https");
    char want[128];
    snprintf(want, sizeof want, "GET https://%s/v2/", s_plain.host);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    af_registry_destroy(&r);
}

static void registry_blob_push_exists_fetch_get(void **state)
{
    (void)state;
    char path[256], out[256], digest[AF_DIGEST_STR_MAX];
    snprintf(path, sizeof path, "%s/blob.bin", s_plain.dir);
    snprintf(out, sizeof out, "%s/fetched.bin", s_plain.dir);
    const size_t size = 3 * 1024 * 1024 + 17;
    s_make_blob(path, size, 1, digest);
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    bool exists = true;
    assert_int_equal(af_registry_blob_exists(r, "team/app", digest, &exists, &err), 0);
    assert_false(exists);

    progress_t p = {0};
    int rc = af_registry_blob_push(r, "team/app", digest, path, size, NULL, s_progress, &p, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(p.last, size);
    assert_true(p.calls > 0);
    assert_int_equal(af_registry_blob_exists(r, "team/app", digest, &exists, &err), 0);
    assert_true(exists);

    /* a second push finds it there and uploads nothing */
    progress_t p2 = {0};
    assert_int_equal(
        af_registry_blob_push(r, "team/app", digest, path, size, NULL, s_progress, &p2, &err), 0);
    assert_int_equal(p2.calls, 1);
    assert_int_equal(p2.last, size);

    rc = af_registry_blob_fetch(r, "team/app", digest, out, 0, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(s_sh("cmp -s '%s' '%s'", path, out), 0);
    /* bounded fetch */
    assert_int_equal(af_registry_blob_fetch(r, "team/app", digest, out, size - 1, &err),
                     AF_ERR_TOOBIG);
    assert_int_equal(access(out, F_OK), -1);

    char *body = NULL;
    size_t len = 0;
    assert_int_equal(af_registry_blob_get(r, "team/app", digest, 1024, &body, &len, &err),
                     AF_ERR_TOOBIG);
    assert_null(body);
    assert_int_equal(af_registry_blob_get(r, "team/app", digest, size, &body, &len, &err), 0);
    assert_int_equal(len, size);
    assert_int_equal(body[len], '\0');
    char dg[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_buffer(body, len, dg), 0);
    assert_string_equal(dg, digest);
    free(body);
    af_registry_destroy(&r);
}

static void registry_blob_push_checks_the_file_size(void **state)
{
    (void)state;
    char path[256], digest[AF_DIGEST_STR_MAX];
    snprintf(path, sizeof path, "%s/small.bin", s_plain.dir);
    s_make_blob(path, 1000, 7, digest);
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    assert_int_equal(af_registry_blob_push(r, "app", digest, path, 999, NULL, NULL, NULL, &err),
                     AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "small.bin"));
    assert_int_equal(
        af_registry_blob_push(r, "app", digest, "/nonexistent/x", 1000, NULL, NULL, NULL, &err),
        AF_ERR_IO);
    /* content that does not match the claimed digest is refused by the registry */
    char other[AF_DIGEST_STR_MAX];
    s_make_blob(path, 1000, 8, other);
    int rc = af_registry_blob_push(r, "app", digest, path, 1000, NULL, NULL, NULL, &err);
    assert_int_equal(rc, AF_ERR_DIGEST);
    assert_non_null(strstr(err.msg, "PUT http://"));
    assert_non_null(strstr(err.msg, "DIGEST_INVALID"));
    af_registry_destroy(&r);
}

static void registry_blob_mount_from_another_repo(void **state)
{
    (void)state;
    char path[256], digest[AF_DIGEST_STR_MAX], decoy_digest[AF_DIGEST_STR_MAX];
    snprintf(path, sizeof path, "%s/mount.bin", s_plain.dir);
    s_make_blob(path, 200000, 3, digest);
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    int rc = af_registry_blob_push(r, "src/base", digest, path, 200000, NULL, NULL, NULL, &err);
    if (rc)
        fail_msg("%s", err.msg);
    /* The file now holds other bytes of the same size: if the client
     * uploaded instead of mounting, the registry would refuse the digest. */
    s_make_blob(path, 200000, 4, decoy_digest);
    progress_t p = {0};
    rc =
        af_registry_blob_push(r, "dst/app", digest, path, 200000, "src/base", s_progress, &p, &err);
    if (rc)
        fail_msg("mount: %s", err.msg);
    assert_int_equal(p.last, 200000);
    bool exists = false;
    assert_int_equal(af_registry_blob_exists(r, "dst/app", digest, &exists, &err), 0);
    assert_true(exists);
    af_registry_destroy(&r);
}

static void registry_blob_mount_alone_mounts_or_declines(void **state)
{
    (void)state;
    char path[256], digest[AF_DIGEST_STR_MAX], unknown[AF_DIGEST_STR_MAX];
    snprintf(path, sizeof path, "%s/mountonly.bin", s_plain.dir);
    s_make_blob(path, 30000, 6, digest);
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    af_err_clear(&err);
    if (af_registry_blob_push(r, "mo/base", digest, path, 30000, NULL, NULL, NULL, &err))
        fail_msg("%s", err.msg);
    bool mounted = false, exists = false;
    if (af_registry_blob_mount(r, "mo/app", digest, "mo/base", &mounted, &err))
        fail_msg("mount: %s", err.msg);
    assert_true(mounted);
    assert_int_equal(af_registry_blob_exists(r, "mo/app", digest, &exists, &err), 0);
    assert_true(exists);
    /* a blob the source repository does not hold: declined, not an error */
    s_make_blob(path, 30000, 7, unknown);
    mounted = true;
    assert_int_equal(af_registry_blob_mount(r, "mo/app2", unknown, "mo/base", &mounted, &err), 0);
    assert_false(mounted);
    assert_int_equal(af_registry_blob_exists(r, "mo/app2", unknown, &exists, &err), 0);
    assert_false(exists);
    /* mounting from itself or from a bad name is a usage error */
    assert_int_equal(af_registry_blob_mount(r, "mo/app", digest, "mo/app", &mounted, &err),
                     AF_ERR_INVAL);
    assert_int_equal(af_registry_blob_mount(r, "mo/app", digest, "Bad Name", &mounted, &err),
                     AF_ERR_INVAL);
    af_registry_destroy(&r);
}

static void registry_mount_of_unknown_blob_falls_back_to_upload(void **state)
{
    (void)state;
    char path[256], digest[AF_DIGEST_STR_MAX];
    snprintf(path, sizeof path, "%s/nomount.bin", s_plain.dir);
    s_make_blob(path, 50000, 5, digest);
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    int rc =
        af_registry_blob_push(r, "dst/other", digest, path, 50000, "src/empty", NULL, NULL, &err);
    if (rc)
        fail_msg("%s", err.msg);
    bool exists = false;
    assert_int_equal(af_registry_blob_exists(r, "dst/other", digest, &exists, &err), 0);
    assert_true(exists);
    af_registry_destroy(&r);
}

static void registry_manifest_put_by_digest_get_by_digest_and_tag(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    size_t mlen;
    char mdigest[AF_DIGEST_STR_MAX];
    char *m = s_push_image(r, "multi/app", "linux/arm/v7", &mlen, mdigest);

    char *body = NULL, *mt = NULL, dg[AF_DIGEST_STR_MAX];
    size_t len;
    int rc = af_registry_manifest_get(r, "multi/app", mdigest, &body, &len, &mt, dg, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(len, mlen);
    assert_memory_equal(body, m, len);
    assert_string_equal(mt, AF_MT_OCI_MANIFEST);
    assert_string_equal(dg, mdigest);
    free(body);
    free(mt);

    /* the config reads back as the slice's platform */
    af_oci_doc_t *doc = af_oci_doc_parse(m, mlen, NULL, &err);
    assert_non_null(doc);
    char *cfg = NULL;
    size_t clen;
    assert_int_equal(af_registry_blob_get(r, "multi/app", doc->config.digest, 0, &cfg, &clen, &err),
                     0);
    af_platform_t p, want;
    assert_int_equal(af_oci_config_platform(cfg, clen, &p, &err), 0);
    assert_int_equal(af_platform_parse("linux/arm/v7", &want, NULL), 0);
    assert_true(af_platform_equal(&p, &want));
    free(cfg);

    /* an index over it, PUT to a tag */
    doc->config.has_platform = false;
    af_descriptor_t entry = {.size = (int64_t)mlen, .has_platform = true, .platform = want};
    snprintf(entry.media_type, sizeof entry.media_type, AF_MT_OCI_MANIFEST);
    snprintf(entry.digest, sizeof entry.digest, "%s", mdigest);
    af_oci_doc_destroy(&doc);
    size_t ilen;
    char *ix = af_oci_index_build(&entry, 1, NULL, 0, &ilen, &err);
    assert_non_null(ix);
    char idigest[AF_DIGEST_STR_MAX];
    rc = af_registry_manifest_put(r, "multi/app", "v1.0", AF_MT_OCI_INDEX, ix, ilen, idigest, &err);
    if (rc)
        fail_msg("%s", err.msg);
    rc = af_registry_manifest_get(r, "multi/app", "v1.0", &body, &len, &mt, dg, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(len, ilen);
    assert_memory_equal(body, ix, ilen);
    assert_string_equal(mt, AF_MT_OCI_INDEX);
    assert_string_equal(dg, idigest);
    doc = af_oci_doc_parse(body, len, mt, &err);
    assert_non_null(doc);
    assert_true(doc->is_index);
    const af_descriptor_t *sel = af_oci_index_select(doc, &want);
    assert_non_null(sel);
    assert_string_equal(sel->digest, mdigest);
    af_oci_doc_destroy(&doc);
    free(body);
    free(mt);

    bool exists = false;
    assert_int_equal(af_registry_manifest_exists(r, "multi/app", "v1.0", &exists, dg, &err), 0);
    assert_true(exists);
    assert_string_equal(dg, idigest);
    assert_int_equal(af_registry_manifest_exists(r, "multi/app", "v2.0", &exists, dg, &err), 0);
    assert_false(exists);
    assert_string_equal(dg, "");
    free(ix);
    free(m);
    af_registry_destroy(&r);
}

/* A client nobody here wrote reads what we pushed: skopeo (skipped when
 * not installed). */
static void registry_pushed_index_reads_back_with_skopeo(void **state)
{
    (void)state;
    if (system("command -v skopeo >/dev/null 2>&1") != 0) {
        print_message("SKIP: skopeo not installed\n");
        return;
    }
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    size_t alen, blen;
    char ad[AF_DIGEST_STR_MAX], bd[AF_DIGEST_STR_MAX], idg[AF_DIGEST_STR_MAX];
    char *a = s_push_image(r, "skopeo/app", "linux/amd64", &alen, ad);
    char *b = s_push_image(r, "skopeo/app", "linux/arm/v7", &blen, bd);
    af_descriptor_t e[2] = {{.size = (int64_t)alen, .has_platform = true},
                            {.size = (int64_t)blen, .has_platform = true}};
    assert_int_equal(af_platform_parse("linux/amd64", &e[0].platform, NULL), 0);
    assert_int_equal(af_platform_parse("linux/arm/v7", &e[1].platform, NULL), 0);
    for (int i = 0; i < 2; i++)
        snprintf(e[i].media_type, sizeof e[i].media_type, AF_MT_OCI_MANIFEST);
    snprintf(e[0].digest, sizeof e[0].digest, "%s", ad);
    snprintf(e[1].digest, sizeof e[1].digest, "%s", bd);
    size_t ilen;
    char *ix = af_oci_index_build(e, 2, NULL, 0, &ilen, &err);
    assert_non_null(ix);
    assert_int_equal(
        af_registry_manifest_put(r, "skopeo/app", "multi", AF_MT_OCI_INDEX, ix, ilen, idg, &err),
        0);
    char raw[256], out[256];
    snprintf(raw, sizeof raw, "%s/skopeo.raw", s_plain.dir);
    snprintf(out, sizeof out, "%s/skopeo.json", s_plain.dir);
    FILE *f = fopen(raw, "wb");
    assert_non_null(f);
    fwrite(ix, 1, ilen, f);
    fclose(f);
    /* the exact bytes we pushed */
    assert_int_equal(s_sh("skopeo inspect --raw --tls-verify=false docker://%s/skopeo/app:multi "
                          "| cmp -s - '%s'",
                          s_plain.host, raw),
                     0);
    /* skopeo resolves the arm/v7 entry and reads its config */
    assert_int_equal(s_sh("skopeo --override-arch arm --override-variant v7 inspect "
                          "--tls-verify=false docker://%s/skopeo/app:multi > '%s'",
                          s_plain.host, out),
                     0);
    char ld[AF_DIGEST_STR_MAX];
    const char *layer = "layer bytes for linux/arm/v7"; /* as s_push_image writes it */
    assert_int_equal(af_digest_buffer(layer, strlen(layer), ld), 0);
    if (s_sh("grep -q '\"Architecture\": \"arm\"' '%s' && grep -q '\"Digest\": \"%s\"' '%s' "
             "&& grep -q '\"%s\"' '%s'",
             out, idg, out, ld, out))
        fail_msg("skopeo did not resolve linux/arm/v7 to our manifest");
    free(ix);
    free(a);
    free(b);
    af_registry_destroy(&r);
}

static void registry_missing_things_are_notfound_with_url_and_status(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    char *body = (char *)"x", *mt = (char *)"x", dg[AF_DIGEST_STR_MAX];
    size_t len;
    int rc = af_registry_manifest_get(r, "nope/app", "latest", &body, &len, &mt, dg, &err);
    assert_int_equal(rc, AF_ERR_NOTFOUND);
    assert_null(body);
    assert_null(mt);
    char want[256];
    snprintf(want, sizeof want, "GET http://%s/v2/nope/app/manifests/latest: HTTP 404",
             s_plain.host);
    if (!strstr(err.msg, want) || !strstr(err.msg, "UNKNOWN"))
        fail_msg("message '%s'", err.msg);

    const char *d = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    char out[256];
    snprintf(out, sizeof out, "%s/missing.bin", s_plain.dir);
    assert_int_equal(af_registry_blob_fetch(r, "nope/app", d, out, 0, &err), AF_ERR_NOTFOUND);
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(af_registry_blob_get(r, "nope/app", d, 100, &body, &len, &err),
                     AF_ERR_NOTFOUND);
    bool exists = true;
    assert_int_equal(af_registry_blob_exists(r, "nope/app", d, &exists, &err), 0);
    assert_false(exists);
    af_registry_destroy(&r);
}

static void registry_manifest_put_with_wrong_digest_is_refused(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    size_t mlen;
    char mdigest[AF_DIGEST_STR_MAX];
    char *m = s_push_image(r, "digest/app", "linux/amd64", &mlen, mdigest);
    const char *wrong = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    char dg[AF_DIGEST_STR_MAX] = "";
    int rc =
        af_registry_manifest_put(r, "digest/app", wrong, AF_MT_OCI_MANIFEST, m, mlen, dg, &err);
    assert_int_equal(rc, AF_ERR_DIGEST);
    assert_non_null(strstr(err.msg, wrong));
    assert_non_null(strstr(err.msg, mdigest));
    assert_string_equal(dg, "");
    bool exists = true;
    assert_int_equal(af_registry_manifest_exists(r, "digest/app", wrong, &exists, dg, &err), 0);
    assert_false(exists);
    free(m);
    af_registry_destroy(&r);
}

static void registry_manifest_with_missing_blob_is_rejected_with_registry_message(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    af_descriptor_t c = {.size = 2};
    snprintf(c.media_type, sizeof c.media_type, AF_MT_OCI_CONFIG);
    snprintf(c.digest, sizeof c.digest,
             "sha256:2222222222222222222222222222222222222222222222222222222222222222");
    size_t len;
    char *m = af_oci_manifest_build(&c, &c, 1, NULL, 0, &len, &err);
    assert_non_null(m);
    int rc = af_registry_manifest_put(r, "bad/app", "t", AF_MT_OCI_MANIFEST, m, len, NULL, &err);
    assert_int_equal(rc, AF_ERR_HTTP);
    if (!strstr(err.msg, "PUT http://") || !strstr(err.msg, "/v2/bad/app/manifests/t") ||
        !strstr(err.msg, "HTTP 400") || !strstr(err.msg, "MANIFEST_BLOB_UNKNOWN"))
        fail_msg("message '%s'", err.msg);
    free(m);
    af_registry_destroy(&r);
}

static void registry_fetch_detects_corrupted_storage(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    af_err_t err;
    char digest[AF_DIGEST_STR_MAX];
    const char *content = "the original content of this blob";
    s_push_buffer(r, "corrupt/app", content, strlen(content), digest);
    /* overwrite the stored bytes (same length) behind the registry's back */
    const char *hex = af_digest_hex(digest);
    assert_int_equal(s_sh("printf 'THE ORIGINAL CONTENT OF THIS BLOB' > "
                          "'%s/storage/docker/registry/v2/blobs/sha256/%.2s/%s/data'",
                          s_plain.dir, hex, hex),
                     0);
    char out[256];
    snprintf(out, sizeof out, "%s/corrupt.bin", s_plain.dir);
    int rc = af_registry_blob_fetch(r, "corrupt/app", digest, out, 0, &err);
    assert_int_equal(rc, AF_ERR_DIGEST);
    assert_non_null(strstr(err.msg, "/v2/corrupt/app/blobs/"));
    assert_int_equal(access(out, F_OK), -1);
    char *body = NULL;
    size_t len;
    assert_int_equal(af_registry_blob_get(r, "corrupt/app", digest, 1000, &body, &len, &err),
                     AF_ERR_DIGEST);
    assert_null(body);
    af_registry_destroy(&r);
}

static void registry_rejects_invalid_arguments_before_any_request(void **state)
{
    (void)state;
    af_err_t err;
    assert_null(af_registry_new("", NULL, &err));
    assert_null(af_registry_new("host/path", NULL, &err));
    assert_null(af_registry_new("user@host", NULL, &err));
    assert_null(af_registry_new(NULL, NULL, &err));
    af_registry_t *r = s_client(&s_plain, true, NULL, NULL);
    bool e;
    const char *d = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(af_registry_blob_exists(r, "Bad/Repo", d, &e, &err), AF_ERR_INVAL);
    assert_int_equal(af_registry_blob_exists(r, "app?x=1", d, &e, &err), AF_ERR_INVAL);
    assert_int_equal(af_registry_blob_exists(r, "../etc", d, &e, &err), AF_ERR_INVAL);
    assert_int_equal(af_registry_blob_exists(r, "app", "sha256:abc", &e, &err), AF_ERR_INVAL);
    char *b, *mt, dg[AF_DIGEST_STR_MAX];
    size_t len;
    assert_int_equal(af_registry_manifest_get(r, "app", "bad tag", &b, &len, &mt, dg, &err),
                     AF_ERR_INVAL);
    assert_int_equal(af_registry_manifest_put(r, "app", "t", "", "{}", 2, dg, &err), AF_ERR_INVAL);
    assert_int_equal(
        af_registry_manifest_put(r, "app", "-t", AF_MT_OCI_MANIFEST, "{}", 2, dg, &err),
        AF_ERR_INVAL);
    af_registry_destroy(&r);
}

static void registry_unreachable_host_is_a_network_error(void **state)
{
    (void)state;
    int port = s_free_port();
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    af_registry_opts_t o = {.insecure = true};
    af_err_t err;
    af_registry_t *r = af_registry_new(host, &o, &err);
    assert_non_null(r);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = af_registry_ping(r, &err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(rc, AF_ERR_NET);
    char want[128];
    snprintf(want, sizeof want, "GET http://%s/v2/", host);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    /* retried with backoff (100+200+400 ms) before giving up */
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs >= 0.6);
    af_registry_destroy(&r);
}

/* ---- basic auth ---- */

static void registry_basic_auth_needs_credentials(void **state)
{
    (void)state;
    af_err_t err;
    af_registry_t *r = s_client(&s_basic, true, NULL, NULL);
    assert_int_equal(af_registry_ping(r, &err), AF_ERR_AUTH);
    assert_non_null(strstr(err.msg, "username and password"));
    assert_non_null(strstr(err.msg, "HTTP 401"));
    af_registry_destroy(&r);

    r = s_client(&s_basic, true, "alice", "wrong");
    assert_int_equal(af_registry_ping(r, &err), AF_ERR_AUTH);
    assert_non_null(strstr(err.msg, "rejected"));
    assert_null(strstr(err.msg, "wrong"));
    af_registry_destroy(&r);
}

static void registry_basic_auth_push_and_pull_with_credentials(void **state)
{
    (void)state;
    af_err_t err;
    af_registry_t *r = s_client(&s_basic, true, "alice", "s3cret pass");
    int rc = af_registry_ping(r, &err);
    if (rc)
        fail_msg("%s", err.msg);
    size_t mlen;
    char mdigest[AF_DIGEST_STR_MAX], dg[AF_DIGEST_STR_MAX];
    char *m = s_push_image(r, "private/app", "linux/arm64", &mlen, mdigest);
    char *body, *mt;
    size_t len;
    assert_int_equal(
        af_registry_manifest_get(r, "private/app", mdigest, &body, &len, &mt, dg, &err), 0);
    assert_memory_equal(body, m, mlen);
    free(body);
    free(mt);
    free(m);
    af_registry_destroy(&r);
}

/* ---- TLS ---- */

static void registry_tls_verifies_with_ca_file(void **state)
{
    (void)state;
    af_err_t err;
    af_registry_t *r = s_client(&s_tls, false, NULL, NULL); /* with the CA */
    int rc = af_registry_ping(r, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_string_equal(af_registry_scheme(r), "https");
    char digest[AF_DIGEST_STR_MAX];
    s_push_buffer(r, "tls/app", "over tls", 8, digest);
    af_registry_destroy(&r);
}

static void registry_tls_self_signed_fails_without_ca_unless_insecure(void **state)
{
    (void)state;
    af_err_t err;
    af_registry_opts_t o = {0};
    af_registry_t *r = af_registry_new(s_tls.host, &o, &err);
    assert_non_null(r);
    assert_int_equal(af_registry_ping(r, &err), AF_ERR_NET);
    assert_non_null(strstr(err.msg, "https://"));
    assert_string_equal(af_registry_scheme(r), "https");
    af_registry_destroy(&r);
    /* insecure: https without verification, no downgrade needed */
    r = s_client(&s_tls, true, NULL, NULL);
    assert_int_equal(af_registry_ping(r, &err), 0);
    assert_string_equal(af_registry_scheme(r), "https");
    af_registry_destroy(&r);
}

/* ---- scripted registry: bearer tokens, retries, broken replies ---- */

static size_t s_collect(char *data, size_t size, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), add = size * n;
    if (have + add < 4096) {
        memcpy(buf + have, data, add);
        buf[have + add] = '\0';
    }
    return size * n;
}

/* A mock's counters as JSON text. */
static void s_server_stats(const server_t *s, char buf[4096])
{
    buf[0] = '\0';
    char url[128], ca[256];
    snprintf(url, sizeof url, "%s://%s/_stats", s->tls ? "https" : "http", s->host);
    snprintf(ca, sizeof ca, "%s/cert.pem", s->dir);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (s->tls)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
}

static void s_mock_stats(char buf[4096])
{
    s_server_stats(&s_mock, buf);
}

static void registry_bearer_token_is_fetched_once_per_scope(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    af_err_t err;
    int rc = af_registry_ping(r, &err);
    if (rc)
        fail_msg("%s", err.msg);
    char d1[AF_DIGEST_STR_MAX], d2[AF_DIGEST_STR_MAX];
    s_push_buffer(r, "team/app", "first blob", 10, d1);
    s_push_buffer(r, "team/app", "second blob", 11, d2);
    char *body = NULL;
    size_t len;
    assert_int_equal(af_registry_blob_get(r, "team/app", d2, 100, &body, &len, &err), 0);
    assert_int_equal(len, 11);
    assert_memory_equal(body, "second blob", 11);
    free(body);
    char stats[4096];
    s_mock_stats(stats);
    if (!strstr(stats, "\"repository:team/app:pull\": 1") ||
        !strstr(stats, "\"repository:team/app:pull,push\": 1"))
        fail_msg("token requests not cached per scope: %s", stats);
    af_registry_destroy(&r);
}

static void registry_bearer_mount_asks_for_both_repositories(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    af_err_t err;
    char path[256], digest[AF_DIGEST_STR_MAX];
    snprintf(path, sizeof path, "%s/m.bin", s_mock.dir);
    s_make_blob(path, 4000, 9, digest);
    /* the mock does not mount (202): the client uploads in that session */
    int rc = af_registry_blob_push(r, "team/dst", digest, path, 4000, "team/src", NULL, NULL, &err);
    if (rc)
        fail_msg("%s", err.msg);
    char stats[4096];
    s_mock_stats(stats);
    if (!strstr(stats, "\"repository:team/dst:pull,push repository:team/src:pull\": 1"))
        fail_msg("mount scope missing: %s", stats);
    af_registry_destroy(&r);
}

static void registry_bearer_wrong_credentials_is_an_auth_error(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "nope");
    af_err_t err;
    bool exists;
    const char *d = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(af_registry_blob_exists(r, "team/app", d, &exists, &err), AF_ERR_AUTH);
    assert_non_null(strstr(err.msg, "credentials rejected by the token service"));
    assert_non_null(strstr(err.msg, "/token"));
    assert_null(strstr(err.msg, "nope"));
    af_registry_destroy(&r);
}

static void registry_bearer_anonymous_pull_of_public_repo(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, NULL, NULL);
    af_err_t err;
    char *body, *mt, dg[AF_DIGEST_STR_MAX];
    size_t len;
    assert_int_equal(af_registry_manifest_get(r, "public/app", "v1", &body, &len, &mt, dg, &err),
                     AF_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "MANIFEST_UNKNOWN"));
    /* a private repo refuses the anonymous token */
    assert_int_equal(af_registry_manifest_get(r, "team/app", "v1", &body, &len, &mt, dg, &err),
                     AF_ERR_AUTH);
    assert_non_null(strstr(err.msg, "rejected the token"));
    af_registry_destroy(&r);
}

static void registry_retries_server_errors_and_rate_limits(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    af_err_t err;
    char *body, *mt, dg[AF_DIGEST_STR_MAX];
    size_t len;
    /* two 503s, then the real answer */
    assert_int_equal(af_registry_manifest_get(r, "flaky/app", "v1", &body, &len, &mt, dg, &err),
                     AF_ERR_NOTFOUND);
    assert_int_equal(af_registry_manifest_get(r, "ratelimit/app", "v1", &body, &len, &mt, dg, &err),
                     AF_ERR_NOTFOUND);
    char d[AF_DIGEST_STR_MAX];
    s_push_buffer(r, "flaky/app", "flaky blob", 10, d);
    bool exists = false;
    assert_int_equal(af_registry_blob_exists(r, "flaky/app", d, &exists, &err), 0);
    assert_true(exists);
    af_registry_destroy(&r);
}

/* docker-registry answers a manifest PUT with DIGEST_INVALID while another
 * push rewrites a referenced blob's link; the body's digest was checked
 * here, so that answer is retried (the mock answers it once per path). */
static void registry_manifest_put_retries_a_registry_digest_race(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    af_err_t err = {0};
    const char *body = "{\"schemaVersion\":2,\"layers\":[]}";
    char dg[AF_DIGEST_STR_MAX], got[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_buffer(body, strlen(body), dg), 0);
    int rc = af_registry_manifest_put(r, "linkrace/app", dg, AF_MT_OCI_MANIFEST, body, strlen(body),
                                      got, &err);
    if (rc)
        fail_msg("manifest put: %s", err.msg);
    assert_string_equal(got, dg);
    af_registry_destroy(&r);
}

/* The cancel hook: true once the number of calls passes a threshold, so
 * the request is in flight (stalled) when it fires. */
typedef struct {
    int calls, after;
} cancel_t;

static bool s_cancel_after(void *arg)
{
    cancel_t *c = arg;
    return ++c->calls > c->after;
}

static void registry_cancel_hook_ends_a_stalled_put(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    af_err_t err;
    /* a blob PUT the registry never answers: without the hook this would
     * end only at the low-speed timeout (30 s) as AF_ERR_TIMEOUT */
    cancel_t c = {.after = 5};
    af_registry_set_cancel(r, s_cancel_after, &c);
    char path[] = "/tmp/af_blob_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "stalled blob", 12), 12);
    close(fd);
    char d[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_buffer("stalled blob", 12, d), 0);
    int rc = af_registry_blob_push(r, "stall/app", d, path, 12, NULL, NULL, NULL, &err);
    unlink(path);
    assert_int_equal(rc, AF_ERR_CANCELLED);
    assert_non_null(strstr(err.msg, "cancelled"));
    /* the same for a manifest (tag) PUT */
    c.calls = 0;
    const char *m = "{\"schemaVersion\":2}";
    char dg[AF_DIGEST_STR_MAX];
    rc = af_registry_manifest_put(
        r, "stall/app", "v1", "application/vnd.oci.image.manifest.v1+json", m, strlen(m), dg, &err);
    assert_int_equal(rc, AF_ERR_CANCELLED);
    /* once cancelled, nothing more is sent */
    c.calls = 0;
    c.after = 0;
    bool exists = true;
    assert_int_equal(af_registry_blob_exists(r, "stall/app", d, &exists, &err), AF_ERR_CANCELLED);
    af_registry_set_cancel(r, NULL, NULL);
    af_registry_destroy(&r);
}

static void registry_failed_blob_put_restarts_the_upload(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    char before[4096], after[4096];
    s_mock_stats(before);
    int posts0 = atoi(strstr(before, "\"posts\": ") + 9);
    char d[AF_DIGEST_STR_MAX];
    s_push_buffer(r, "putfail/app", "retried blob", 12, d);
    s_mock_stats(after);
    int posts1 = atoi(strstr(after, "\"posts\": ") + 9);
    assert_int_equal(posts1 - posts0, 2);
    af_registry_destroy(&r);
}

static void registry_detects_wrong_pushed_digest(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    af_err_t err;
    char path[256], digest[AF_DIGEST_STR_MAX];
    snprintf(path, sizeof path, "%s/w.bin", s_mock.dir);
    s_make_blob(path, 3000, 11, digest);
    int rc =
        af_registry_blob_push(r, "wrongdigest/app", digest, path, 3000, NULL, NULL, NULL, &err);
    assert_int_equal(rc, AF_ERR_DIGEST);
    assert_non_null(strstr(err.msg, "registry stored"));
    assert_null(strstr(err.msg, "_state")); /* no query strings in messages */
    af_registry_destroy(&r);
}

static void registry_oversized_manifest_is_refused(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    af_err_t err;
    char *body, *mt, dg[AF_DIGEST_STR_MAX];
    size_t len;
    assert_int_equal(af_registry_manifest_get(r, "big/app", "v1", &body, &len, &mt, dg, &err),
                     AF_ERR_TOOBIG);
    assert_null(body);
    af_registry_destroy(&r);
}

static void registry_manifest_get_accepts_all_four_media_types(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    af_err_t err;
    char *body, *mt, dg[AF_DIGEST_STR_MAX];
    size_t len;
    assert_int_equal(af_registry_manifest_get(r, "accept/app", "v1", &body, &len, &mt, dg, &err),
                     0);
    assert_string_equal(body, AF_MT_ACCEPT_MANIFESTS);
    assert_string_equal(mt, "text/plain");
    free(body);
    free(mt);
    af_registry_destroy(&r);
}

static void registry_manifest_by_digest_is_verified(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock, true, "bob", "pw");
    af_err_t err;
    char *body, *mt, dg[AF_DIGEST_STR_MAX];
    size_t len;
    const char *d = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    assert_int_equal(af_registry_manifest_get(r, "liar/app", d, &body, &len, &mt, dg, &err),
                     AF_ERR_DIGEST);
    assert_null(body);
    assert_null(mt);
    /* by tag there is nothing to verify against */
    assert_int_equal(af_registry_manifest_get(r, "liar/app", "v1", &body, &len, &mt, dg, &err), 0);
    free(body);
    free(mt);
    af_registry_destroy(&r);
}

/* A TLS registry whose upload POST answers Location: http://... must not
 * get our credentials over plain HTTP: a secure client refuses the
 * Location before any request, and the trap listener sees nothing. */
static void s_downgrade_refused(const char *repo)
{
    af_registry_t *r = s_client(&s_mock_tls, false, "bob", "pw");
    af_err_t err;
    char path[256], digest[AF_DIGEST_STR_MAX], stats[4096];
    snprintf(path, sizeof path, "%s/d.bin", s_mock_tls.dir);
    s_make_blob(path, 2000, 5, digest);
    int rc = af_registry_blob_push(r, repo, digest, path, 2000, NULL, NULL, NULL, &err);
    assert_int_equal(rc, AF_ERR_PROTO);
    if (!strstr(err.msg, "leaves TLS for plain HTTP") || !strstr(err.msg, s_mock_tls.host))
        fail_msg("unclear message: %s", err.msg);
    assert_null(strstr(err.msg, "_state")); /* no query strings in messages */
    s_server_stats(&s_mock_tls, stats);
    if (!strstr(stats, "\"plain\": []"))
        fail_msg("the plain-HTTP listener was contacted: %s", stats);
    af_registry_destroy(&r);
}

static void registry_tls_upload_location_to_http_is_refused_basic(void **state)
{
    (void)state;
    s_downgrade_refused("basicdown/app");
}

static void registry_tls_upload_location_to_http_is_refused_bearer(void **state)
{
    (void)state;
    s_downgrade_refused("downgrade/app");
}

/* An insecure registry may use plain HTTP, but the Location's origin
 * (other port) is not the registry's: the request goes out without
 * credentials, and its 401 is an error, not a reason to send them. */
static void registry_insecure_client_sends_no_credentials_to_another_origin(void **state)
{
    (void)state;
    af_registry_t *r = s_client(&s_mock_tls, true, "bob", "pw");
    af_err_t err;
    char path[256], digest[AF_DIGEST_STR_MAX], stats[4096];
    snprintf(path, sizeof path, "%s/i.bin", s_mock_tls.dir);
    s_make_blob(path, 2000, 6, digest);
    int rc =
        af_registry_blob_push(r, "basicdown/other", digest, path, 2000, NULL, NULL, NULL, &err);
    assert_int_not_equal(rc, 0);
    s_server_stats(&s_mock_tls, stats);
    if (!strstr(stats, "\"method\": \"PUT\""))
        fail_msg("the insecure client did not try the http Location: %s", stats);
    if (strstr(stats, "\"authorization\": true"))
        fail_msg("credentials went to another origin over plain HTTP: %s", stats);
    af_registry_destroy(&r);
}

/* A blob GET redirected to another origin (blob storage) follows without
 * credentials: to plain HTTP only for an insecure registry, and even then
 * the storage host sees no Authorization header. */
static void registry_blob_redirect_to_another_origin_carries_no_credentials(void **state)
{
    (void)state;
    const char *d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    char *body = NULL, stats[4096];
    size_t len = 0;
    af_err_t err;
    af_registry_t *r = s_client(&s_mock_tls, false, "bob", "pw");
    assert_int_not_equal(af_registry_blob_get(r, "redirect/app", d, 100, &body, &len, &err), 0);
    assert_null(body);
    af_registry_destroy(&r);
    s_server_stats(&s_mock_tls, stats);
    if (strstr(stats, "/storage/"))
        fail_msg("a secure client followed a redirect to plain HTTP: %s", stats);
    r = s_client(&s_mock_tls, true, "bob", "pw");
    assert_int_not_equal(af_registry_blob_get(r, "redirect/app", d, 100, &body, &len, &err), 0);
    af_registry_destroy(&r);
    s_server_stats(&s_mock_tls, stats);
    if (!strstr(stats, "/storage/"))
        fail_msg("the insecure client did not follow the redirect: %s", stats);
    if (strstr(stats, "\"authorization\": true"))
        fail_msg("credentials followed the redirect to another origin: %s", stats);
}

int main(void)
{
    if (system("command -v docker-registry >/dev/null 2>&1") != 0) {
        printf("SKIP test_registry: docker-registry is not installed "
               "(apt-get install docker-registry)\n");
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(registry_insecure_client_falls_back_to_http),
        cmocka_unit_test(registry_secure_client_never_downgrades_to_http),
        cmocka_unit_test(registry_blob_push_exists_fetch_get),
        cmocka_unit_test(registry_blob_push_checks_the_file_size),
        cmocka_unit_test(registry_blob_mount_from_another_repo),
        cmocka_unit_test(registry_mount_of_unknown_blob_falls_back_to_upload),
        cmocka_unit_test(registry_blob_mount_alone_mounts_or_declines),
        cmocka_unit_test(registry_manifest_put_by_digest_get_by_digest_and_tag),
        cmocka_unit_test(registry_pushed_index_reads_back_with_skopeo),
        cmocka_unit_test(registry_missing_things_are_notfound_with_url_and_status),
        cmocka_unit_test(registry_manifest_put_with_wrong_digest_is_refused),
        cmocka_unit_test(registry_manifest_with_missing_blob_is_rejected_with_registry_message),
        cmocka_unit_test(registry_fetch_detects_corrupted_storage),
        cmocka_unit_test(registry_rejects_invalid_arguments_before_any_request),
        cmocka_unit_test(registry_unreachable_host_is_a_network_error),
    };
    const struct CMUnitTest basic[] = {
        cmocka_unit_test(registry_basic_auth_needs_credentials),
        cmocka_unit_test(registry_basic_auth_push_and_pull_with_credentials),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(registry_tls_verifies_with_ca_file),
        cmocka_unit_test(registry_tls_self_signed_fails_without_ca_unless_insecure),
    };
    const struct CMUnitTest mock[] = {
        cmocka_unit_test(registry_bearer_token_is_fetched_once_per_scope),
        cmocka_unit_test(registry_bearer_mount_asks_for_both_repositories),
        cmocka_unit_test(registry_bearer_wrong_credentials_is_an_auth_error),
        cmocka_unit_test(registry_bearer_anonymous_pull_of_public_repo),
        cmocka_unit_test(registry_retries_server_errors_and_rate_limits),
        cmocka_unit_test(registry_manifest_put_retries_a_registry_digest_race),
        cmocka_unit_test(registry_failed_blob_put_restarts_the_upload),
        cmocka_unit_test(registry_cancel_hook_ends_a_stalled_put),
        cmocka_unit_test(registry_detects_wrong_pushed_digest),
        cmocka_unit_test(registry_oversized_manifest_is_refused),
        cmocka_unit_test(registry_manifest_by_digest_is_verified),
        cmocka_unit_test(registry_manifest_get_accepts_all_four_media_types),
    };
    const struct CMUnitTest mock_tls[] = {
        cmocka_unit_test(registry_tls_upload_location_to_http_is_refused_basic),
        cmocka_unit_test(registry_tls_upload_location_to_http_is_refused_bearer),
        cmocka_unit_test(registry_insecure_client_sends_no_credentials_to_another_origin),
        cmocka_unit_test(registry_blob_redirect_to_another_origin_carries_no_credentials),
    };
    int failed = cmocka_run_group_tests_name("registry_plain", plain, setup_plain, teardown_plain);
    failed +=
        cmocka_run_group_tests_name("registry_basic_auth", basic, setup_basic, teardown_basic);
    failed += cmocka_run_group_tests_name("registry_tls", tls, setup_tls, teardown_tls);
    failed += cmocka_run_group_tests_name("registry_scripted", mock, setup_mock, teardown_mock);
    failed += cmocka_run_group_tests_name("registry_scripted_tls", mock_tls, setup_mock_tls,
                                          teardown_mock_tls);
    curl_global_cleanup();
    return failed;
}
