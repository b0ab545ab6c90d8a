/* engine.c -- argv building, output parsing and the per-job step runner
 * shared by the Dockerfile executors (see engine.h).
 *
 * Spawning: each step is an argv list run through af_process_new_argv
 * (posix_spawnp, no shell), so a value is never shell text and the engine
 * gets the list verbatim in its own process group. */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "digest.h"
#include "job.h"
#include "log.h"
#include "oci.h"
#include "process.h"
#include "ref.h"
#include "registry.h"

extern char **environ;

#define S_METADATA_MAX (1024 * 1024)

/* --- argv lists --------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
    bool failed;
} s_argv_t;

static void s_add(s_argv_t *a, const char *s)
{
    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, cap * sizeof *v);
        if (!v) {
            a->failed = true;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    if (!(a->v[a->n] = strdup(s))) {
        a->failed = true;
        return;
    }
    a->v[++a->n] = NULL;
}

static void s_addf(s_argv_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_addf(s_argv_t *a, const char *fmt, ...)
{
    if (a->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        a->failed = true;
        return;
    }
    s_add(a, s);
    free(s);
}

/* Hands the list to the caller, or frees it and reports OOM. */
static char **s_finish(s_argv_t *a, af_err_t *err)
{
    if (!a->failed && a->v)
        return a->v;
    char **v = a->v;
    af_engine_argv_free(&v);
    af_err_set(err, AF_ERR_NOMEM, "out of memory");
    return NULL;
}

void af_engine_argv_free(char ***argv_p)
{
    if (!argv_p || !*argv_p)
        return;
    for (char **p = *argv_p; *p; p++)
        free(*p);
    free(*argv_p);
    *argv_p = NULL;
}

/* --- validation --------------------------------------------------------- */

static const char *const s_platform_args[] = {"TARGETPLATFORM", "TARGETOS",      "TARGETARCH",
                                              "TARGETVARIANT",  "BUILDPLATFORM", "BUILDOS",
                                              "BUILDARCH",      "BUILDVARIANT",  NULL};

bool af_engine_is_platform_arg(const char *key)
{
    for (size_t i = 0; key && s_platform_args[i]; i++)
        if (!strcmp(key, s_platform_args[i]))
            return true;
    return false;
}

bool af_engine_valid_key(const char *key)
{
    if (!key || !key[0] || strlen(key) > AF_MAX_NAME)
        return false;
    if (!(key[0] == '_' || (key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= 'a' && key[0] <= 'z')))
        return false;
    for (const char *p = key + 1; *p; p++)
        if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static bool s_valid_target(const char *t)
{
    if (!t[0] || strlen(t) > AF_MAX_NAME)
        return false;
    if (!((t[0] >= 'A' && t[0] <= 'Z') || (t[0] >= 'a' && t[0] <= 'z') ||
          (t[0] >= '0' && t[0] <= '9')))
        return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Lower-case reference characters only: nothing that buildctl's CSV
 * --output or a flag parser could read as syntax. */
static bool s_valid_repository(const char *r)
{
    if (!r || !r[0] || strlen(r) > AF_MAX_REF || !strchr(r, '/'))
        return false;
    if (!((r[0] >= 'a' && r[0] <= 'z') || (r[0] >= '0' && r[0] <= '9')))
        return false;
    for (const char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-' || *p == '/' || *p == ':'))
            return false;
    return true;
}

/* Relative, no "..", no empty name: stays inside the context. */
static bool s_valid_relpath(const char *p)
{
    if (!p[0] || p[0] == '/' || strlen(p) >= AF_CONTEXT_MAX_PATH)
        return false;
    const char *s = p;
    while (*s) {
        size_t n = strcspn(s, "/");
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return false;
        s += n;
        while (*s == '/')
            s++;
    }
    return true;
}

static bool s_abs(const char *p)
{
    return p && p[0] == '/' && strlen(p) < AF_CONTEXT_MAX_PATH;
}

static const char *s_dockerfile(const af_engine_spec_t *spec)
{
    return spec->dockerfile && spec->dockerfile[0] ? spec->dockerfile : "Dockerfile";
}

int af_engine_spec_check(const af_engine_spec_t *spec, af_err_t *err)
{
    if (!spec || !spec->platform || !spec->platform->os[0] || !spec->platform->arch[0])
        return af_err_set(err, AF_ERR_INVAL, "no platform");
    if (!s_abs(spec->context_dir))
        return af_err_set(err, AF_ERR_INVAL, "context directory must be an absolute path");
    if (!s_valid_relpath(s_dockerfile(spec)))
        return af_err_set(err, AF_ERR_UNSAFE, "Dockerfile path \"%s\" must stay inside the context",
                          s_dockerfile(spec));
    if (!s_valid_repository(spec->repository))
        return af_err_set(err, AF_ERR_INVAL,
                          "repository \"%s\" is not a lower-case host[:port]/path reference",
                          spec->repository ? spec->repository : "");
    if (spec->target && spec->target[0] && !s_valid_target(spec->target))
        return af_err_set(err, AF_ERR_INVAL,
                          "target stage \"%s\" must match [A-Za-z0-9][A-Za-z0-9._-]*",
                          spec->target);
    if (spec->n_build_args > AF_MAX_BUILD_ARGS)
        return af_err_set(err, AF_ERR_TOOBIG, "more than %d build args", AF_MAX_BUILD_ARGS);
    for (size_t i = 0; i < spec->n_build_args; i++) {
        const af_kv_t *kv = &spec->build_args[i];
        if (!af_engine_valid_key(kv->key))
            return af_err_set(err, AF_ERR_INVAL,
                              "build arg name \"%s\" must match [A-Za-z_][A-Za-z0-9_]*",
                              kv->key ? kv->key : "");
        if (!kv->value || strlen(kv->value) > AF_MAX_STR)
            return af_err_set(err, AF_ERR_INVAL, "build arg %s has no value or a too long one",
                              kv->key);
    }
    return 0;
}

static bool s_user_sets(const af_engine_spec_t *spec, const char *key)
{
    for (size_t i = 0; i < spec->n_build_args; i++)
        if (!strcmp(spec->build_args[i].key, key))
            return true;
    return false;
}

/* --build-arg style entries: user args minus the platform ones, then
 * SOURCE_DATE_EPOCH unless the user set it. PREFIX precedes "K=V" in the
 * same element ("build-arg:" for buildctl) or is a separate flag. */
static void s_build_args(s_argv_t *a, const af_engine_spec_t *spec, const char *flag,
                         const char *prefix, bool sde)
{
    for (size_t i = 0; i < spec->n_build_args; i++) {
        const af_kv_t *kv = &spec->build_args[i];
        if (af_engine_is_platform_arg(kv->key))
            continue;
        s_add(a, flag);
        s_addf(a, "%s%s=%s", prefix, kv->key, kv->value);
    }
    if (sde && spec->source_date_epoch >= 0 && !s_user_sets(spec, "SOURCE_DATE_EPOCH")) {
        s_add(a, flag);
        s_addf(a, "%sSOURCE_DATE_EPOCH=%lld", prefix, (long long)spec->source_date_epoch);
    }
}

static void s_output(s_argv_t *a, const af_engine_spec_t *spec)
{
    s_add(a, "--output");
    s_addf(a, "type=image,name=%s,push-by-digest=true,push=true%s", spec->repository,
           spec->insecure ? ",registry.insecure=true" : "");
}

char **af_engine_argv_buildctl(const af_engine_spec_t *spec, af_err_t *err)
{
    if (af_engine_spec_check(spec, err) < 0)
        return NULL;
    if (!s_abs(spec->metadata_file)) {
        af_err_set(err, AF_ERR_INVAL, "metadata file must be an absolute path");
        return NULL;
    }
    char plat[AF_PLATFORM_STR_MAX];
    af_platform_format(spec->platform, plat, sizeof plat);
    const char *df = s_dockerfile(spec);
    const char *slash = strrchr(df, '/');
    s_argv_t a = {0};
    s_add(&a, "buildctl");
    s_add(&a, "build");
    s_add(&a, "--frontend");
    s_add(&a, "dockerfile.v0");
    s_add(&a, "--local");
    s_addf(&a, "context=%s", spec->context_dir);
    s_add(&a, "--local");
    if (slash)
        s_addf(&a, "dockerfile=%s/%.*s", spec->context_dir, (int)(slash - df), df);
    else
        s_addf(&a, "dockerfile=%s", spec->context_dir);
    s_add(&a, "--opt");
    s_addf(&a, "filename=%s", slash ? slash + 1 : df);
    s_add(&a, "--opt");
    s_addf(&a, "platform=%s", plat);
    s_build_args(&a, spec, "--opt", "build-arg:", true);
    if (spec->target && spec->target[0]) {
        s_add(&a, "--opt");
        s_addf(&a, "target=%s", spec->target);
    }
    s_output(&a, spec);
    s_add(&a, "--metadata-file");
    s_add(&a, spec->metadata_file);
    return s_finish(&a, err);
}

char **af_engine_argv_docker(const af_engine_spec_t *spec, af_err_t *err)
{
    if (af_engine_spec_check(spec, err) < 0)
        return NULL;
    if (!s_abs(spec->metadata_file)) {
        af_err_set(err, AF_ERR_INVAL, "metadata file must be an absolute path");
        return NULL;
    }
    char plat[AF_PLATFORM_STR_MAX];
    af_platform_format(spec->platform, plat, sizeof plat);
    s_argv_t a = {0};
    s_add(&a, "docker");
    s_add(&a, "buildx");
    s_add(&a, "build");
    s_add(&a, "--platform");
    s_add(&a, plat);
    s_add(&a, "-f");
    s_addf(&a, "%s/%s", spec->context_dir, s_dockerfile(spec));
    s_build_args(&a, spec, "--build-arg", "", true);
    if (spec->target && spec->target[0]) {
        s_add(&a, "--target");
        s_add(&a, spec->target);
    }
    /* provenance attestations would turn the pushed manifest into an index */
    s_add(&a, "--provenance=false");
    s_output(&a, spec);
    s_add(&a, "--metadata-file");
    s_add(&a, spec->metadata_file);
    s_add(&a, spec->context_dir);
    return s_finish(&a, err);
}

static int s_buildah_check(const af_engine_spec_t *spec, af_err_t *err)
{
    if (!s_abs(spec->storage_root) || !s_abs(spec->run_root))
        return af_err_set(err, AF_ERR_INVAL, "buildah storage paths must be absolute");
    if (!spec->image || !spec->image[0] || spec->image[0] == '-')
        return af_err_set(err, AF_ERR_INVAL, "no local image name");
    return 0;
}

static void s_buildah_global(s_argv_t *a, const af_engine_spec_t *spec)
{
    s_add(a, "buildah");
    s_add(a, "--root");
    s_add(a, spec->storage_root);
    s_add(a, "--runroot");
    s_add(a, spec->run_root);
    s_add(a, "--storage-driver");
    s_add(a, AF_ENGINE_BUILDAH_DRIVER);
}

char **af_engine_argv_buildah_build(const af_engine_spec_t *spec, af_err_t *err)
{
    if (af_engine_spec_check(spec, err) < 0 || s_buildah_check(spec, err) < 0)
        return NULL;
    if (!s_abs(spec->iid_file) || (spec->auth_file && !s_abs(spec->auth_file))) {
        af_err_set(err, AF_ERR_INVAL, "buildah file paths must be absolute");
        return NULL;
    }
    char plat[AF_PLATFORM_STR_MAX];
    af_platform_format(spec->platform, plat, sizeof plat);
    s_argv_t a = {0};
    s_buildah_global(&a, spec);
    s_add(&a, "build");
    s_add(&a, "--platform");
    s_add(&a, plat);
    s_add(&a, "-f");
    s_addf(&a, "%s/%s", spec->context_dir, s_dockerfile(spec));
    /* buildah 1.28 does not read SOURCE_DATE_EPOCH: --timestamp does that */
    s_build_args(&a, spec, "--build-arg", "", false);
    if (spec->target && spec->target[0]) {
        s_add(&a, "--target");
        s_add(&a, spec->target);
    }
    s_add(&a, "--layers=false");
    s_add(&a, "--isolation");
    s_add(&a, AF_ENGINE_BUILDAH_ISOLATION);
    if (spec->source_date_epoch >= 0) {
        s_add(&a, "--timestamp");
        s_addf(&a, "%lld", (long long)spec->source_date_epoch);
    }
    if (spec->insecure)
        s_add(&a, "--tls-verify=false");
    if (spec->auth_file) {
        s_add(&a, "--authfile");
        s_add(&a, spec->auth_file);
    }
    s_add(&a, "--iidfile");
    s_add(&a, spec->iid_file);
    s_add(&a, "-t");
    s_add(&a, spec->image);
    s_add(&a, spec->context_dir);
    return s_finish(&a, err);
}

char **af_engine_argv_buildah_push(const af_engine_spec_t *spec, af_err_t *err)
{
    if (!spec || s_buildah_check(spec, err) < 0)
        return NULL;
    if (!s_abs(spec->oci_dir) || strchr(spec->oci_dir, ':') || !s_abs(spec->digest_file)) {
        af_err_set(err, AF_ERR_INVAL, "buildah push paths must be absolute, without ':'");
        return NULL;
    }
    s_argv_t a = {0};
    s_buildah_global(&a, spec);
    s_add(&a, "push");
    s_add(&a, "--quiet");
    s_add(&a, "--digestfile");
    s_add(&a, spec->digest_file);
    s_add(&a, spec->image);
    s_addf(&a, "oci:%s", spec->oci_dir);
    return s_finish(&a, err);
}

/* --- files the engines leave -------------------------------------------- */

int af_engine_file_read(const char *path, size_t max, char **body_p, size_t *len_p, af_err_t *err)
{
    *body_p = NULL;
    *len_p = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "%s: %s", path,
                          strerror(errno));
    char *buf = malloc(max + 1);
    if (!buf) {
        close(fd);
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    }
    size_t len = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            rc = af_err_set(err, AF_ERR_TOOBIG, "%s: larger than %zu bytes", path, max);
            break;
        }
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *body_p = buf;
    *len_p = len;
    return 0;
}

int af_engine_digest_file_read(const char *path, char out[AF_DIGEST_STR_MAX], af_err_t *err)
{
    char *body = NULL;
    size_t len = 0;
    int rc = af_engine_file_read(path, 256, &body, &len, err);
    if (rc < 0)
        return rc;
    while (len && (body[len - 1] == '\n' || body[len - 1] == '\r'))
        body[--len] = '\0';
    char d[AF_DIGEST_STR_MAX + 8];
    if (len == 64 && strspn(body, "0123456789abcdef") == 64)
        snprintf(d, sizeof d, "sha256:%s", body);
    else
        snprintf(d, sizeof d, "%.*s", (int)(len < sizeof d - 1 ? len : sizeof d - 1), body);
    if (strlen(body) != len || !af_digest_valid(d))
        rc = af_err_set(err, AF_ERR_PARSE, "%s: not a sha256 digest", path);
    else
        snprintf(out, AF_DIGEST_STR_MAX, "%s", d);
    free(body);
    return rc;
}

int af_engine_metadata_parse(const char *json, size_t len, af_engine_image_t *out, af_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (!json || len > S_METADATA_MAX)
        return af_err_set(err, AF_ERR_TOOBIG, "metadata file larger than %d bytes", S_METADATA_MAX);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    if (!root)
        return af_err_set(err, AF_ERR_PARSE, "metadata file:%d:%d: %s", jerr.line, jerr.column,
                          jerr.text);
    if (!json_is_object(root)) {
        rc = af_err_set(err, AF_ERR_PARSE, "metadata file: not a JSON object");
        goto out;
    }
    const char *digest = json_string_value(json_object_get(root, "containerimage.digest"));
    if (!digest || !af_digest_valid(digest)) {
        rc =
            af_err_set(err, AF_ERR_PARSE,
                       "metadata file: no valid \"containerimage.digest\" (was the image pushed?)");
        goto out;
    }
    snprintf(out->digest, sizeof out->digest, "%s", digest);
    json_t *desc = json_object_get(root, "containerimage.descriptor");
    if (desc) {
        const char *mt = json_string_value(json_object_get(desc, "mediaType"));
        const char *dd = json_string_value(json_object_get(desc, "digest"));
        json_t *size = json_object_get(desc, "size");
        if (!json_is_object(desc) || !mt || !dd || !json_is_integer(size)) {
            rc = af_err_set(err, AF_ERR_PARSE,
                            "metadata file: \"containerimage.descriptor\" needs mediaType, digest "
                            "and size");
            goto out;
        }
        if (strcmp(dd, digest)) {
            rc = af_err_set(err, AF_ERR_DIGEST,
                            "metadata file: descriptor digest %s differs from %s", dd, digest);
            goto out;
        }
        json_int_t sz = json_integer_value(size);
        if (sz <= 0 || sz > AF_MANIFEST_MAX_BYTES) {
            rc = af_err_set(err, AF_ERR_PARSE, "metadata file: manifest size %lld out of range",
                            (long long)sz);
            goto out;
        }
        if (!af_oci_is_manifest(mt)) {
            rc = af_err_set(err, AF_ERR_UNSUPPORTED,
                            "metadata file: engine pushed a %s, not a single-platform image "
                            "manifest (attestations enabled?)",
                            mt);
            goto out;
        }
        if (strlen(mt) >= sizeof out->media_type) {
            rc = af_err_set(err, AF_ERR_PARSE, "metadata file: media type too long");
            goto out;
        }
        snprintf(out->media_type, sizeof out->media_type, "%s", mt);
        out->size = (uint64_t)sz;
    }
out:
    json_decref(root);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int af_engine_metadata_read(const char *path, af_engine_image_t *out, af_err_t *err)
{
    char *body = NULL;
    size_t len = 0;
    int rc = af_engine_file_read(path, S_METADATA_MAX, &body, &len, err);
    if (rc == 0)
        rc = af_engine_metadata_parse(body, len, out, err);
    free(body);
    return rc;
}

int af_engine_auth_file_write(const char *path, const char *repository, const char *username,
                              const char *password, af_err_t *err)
{
    af_ref_t ref;
    int rc = af_ref_parse(repository, &ref, err);
    if (rc < 0)
        return rc;
    size_t ulen = strlen(username), plen = password ? strlen(password) : 0;
    size_t raw_len = ulen + 1 + plen;
    unsigned char *raw = malloc(raw_len + 1);
    unsigned char *b64 = malloc(4 * ((raw_len + 2) / 3) + 1);
    char *text = NULL;
    json_t *root = NULL;
    int fd = -1;
    if (!raw || !b64) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(raw, username, ulen);
    raw[ulen] = ':';
    if (plen)
        memcpy(raw + ulen + 1, password, plen);
    EVP_EncodeBlock(b64, raw, (int)raw_len);
    root = json_pack("{s:{s:{s:s}}}", "auths", ref.registry, "auth", (const char *)b64);
    if (!root || !(text = json_dumps(root, JSON_COMPACT))) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t tl = strlen(text);
    if (fd < 0 || write(fd, text, tl) != (ssize_t)tl) {
        rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    if (raw) {
        explicit_bzero(raw, raw_len);
        free(raw);
    }
    if (b64) {
        explicit_bzero(b64, strlen((char *)b64));
        free(b64);
    }
    if (text) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    json_decref(root); /* jansson keeps its own copy of the string */
    return rc;
}

bool af_engine_which(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH");
    if (!path || !path[0])
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, ":");
        if (n > 0) {
            char cand[AF_CONTEXT_MAX_PATH];
            int w = snprintf(cand, sizeof cand, "%.*s/%s", (int)n, p, name);
            struct stat st;
            if (w > 0 && (size_t)w < sizeof cand && stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
                access(cand, X_OK) == 0) {
                if (out)
                    snprintf(out, len, "%s", cand);
                return true;
            }
        }
        p += n;
        if (*p == ':')
            p++;
    }
    return false;
}

/* --- environment ---------------------------------------------------------- */

char **af_engine_env_new(const char *tmpdir, const char *const *extra, af_err_t *err)
{
    s_argv_t a = {0};
    for (char **e = environ; e && *e; e++) {
        if (!strncmp(*e, "NOTIFY_SOCKET=", 14) || !strncmp(*e, "LISTEN_", 7) ||
            (tmpdir && !strncmp(*e, "TMPDIR=", 7)))
            continue;
        s_add(&a, *e);
    }
    if (tmpdir)
        s_addf(&a, "TMPDIR=%s", tmpdir);
    for (size_t i = 0; extra && extra[i]; i++)
        s_add(&a, extra[i]);
    if (!a.v) /* empty environment */
        s_add(&a, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    return s_finish(&a, err);
}

void af_engine_env_free(char ***env_p)
{
    af_engine_argv_free(env_p);
}

/* --- the per-job runner ------------------------------------------------- */

struct af_engine_run {
    af_job_t *job;
    af_process_t *proc;
    af_worker_t *worker;
    af_engine_step_fn *on_exit;
    bool cancelled;
    void *data;
    char tag[AF_MAX_NAME + 16];
};

void af_engine_run_destroy(af_engine_run_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_engine_run_t *self = *self_p;
    af_process_destroy(&self->proc);
    if (self->worker && !af_worker_finished(self->worker))
        af_worker_cancel(self->worker);
    af_worker_destroy(&self->worker);
    free(self);
    *self_p = NULL;
}

af_engine_run_t *af_engine_run_attach(af_job_t *job, size_t data_size, af_err_t *err)
{
    af_engine_run_t *run = calloc(1, sizeof *run);
    void *data = calloc(1, data_size);
    if (!run || !data) {
        free(run);
        free(data);
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    run->job = job;
    snprintf(run->tag, sizeof run->tag, "%s/%u", af_job_id(job), af_job_attempt(job));
    run->data = data;
    af_job_set_exec_data(job, run);
    return run;
}

void *af_engine_run_data(af_engine_run_t *self)
{
    return self->data;
}

bool af_engine_run_cancelled(const af_engine_run_t *self)
{
    return self->cancelled;
}

static void s_on_line(const char *stream, const char *line, size_t len, void *arg)
{
    af_job_log(((af_engine_run_t *)arg)->job, stream, line);
}

static void s_on_exit(int status, void *arg)
{
    af_engine_run_t *self = (af_engine_run_t *)arg;
    char text[96];
    af_debug_job(self->tag, af_job_node(self->job), "engine step %s",
                 af_process_status_text(status, text, sizeof text));
    /* last statement: the step callback may spawn the next step, which
     * destroys this process object (process.h allows it) */
    self->on_exit(self, self->job, status, self->cancelled);
}

/* Appends " ARG" (or "$ ARG" when FIRST) to BUF, single-quoted the way a
 * shell user would copy it when it holds anything but plain characters.
 * For the log line only: nothing ever parses it. Returns bytes written
 * (bounded by LEN - 1). */
static size_t s_quote_for_display(char *buf, size_t len, const char *arg, bool first)
{
    size_t o = 0;
    const char *lead = first ? "$ " : " ";
    bool plain = arg[0] && strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789_/.:=,@%+-") == strlen(arg);
    for (const char *p = lead; *p && o + 1 < len; p++)
        buf[o++] = *p;
    if (!plain && o + 1 < len)
        buf[o++] = '\'';
    for (const char *p = arg; *p && o + 1 < len; p++) {
        if (*p == '\'' && !plain) {
            for (const char *q = "'\\''"; *q && o + 1 < len; q++)
                buf[o++] = *q;
        } else
            buf[o++] = *p;
    }
    if (!plain && o + 1 < len)
        buf[o++] = '\'';
    buf[o] = '\0';
    return o;
}

int af_engine_run_spawn(af_engine_run_t *self, char *const argv[], char *const envp[],
                        const char *cwd, af_engine_step_fn *on_exit, af_err_t *err)
{
    if (!argv || !argv[0])
        return af_err_set(err, AF_ERR_INVAL, "empty command");
    /* the command line, for the user: arguments only, secrets never go in argv */
    char line[AF_MAX_LOG_LINE + 1];
    size_t lo = 0;
    for (size_t i = 0; argv[i] && lo < sizeof line - 1; i++)
        lo += s_quote_for_display(line + lo, sizeof line - lo, argv[i], i == 0);
    af_job_log(self->job, "agent", line);

    af_process_destroy(&self->proc);
    self->on_exit = on_exit;
    self->proc = af_process_new_argv(af_job_loop(self->job), argv, envp, cwd, s_on_line, s_on_exit,
                                     self, err);
    if (!self->proc) {
        int rc = err && err->code ? err->code : AF_ERR_CHILD;
        af_err_prefix(err, rc, "%s", argv[0]);
        return rc;
    }
    af_job_write_pgid(self->job, af_process_pid(self->proc));
    return 0;
}

static void s_on_worker_log(void *arg, const char *line)
{
    af_job_log(((af_engine_run_t *)arg)->job, "agent", line);
}

static void s_on_worker_done(void *arg, int code, const char *message, const char *const *outputs,
                             size_t n_outputs)
{
    af_engine_run_t *self = (af_engine_run_t *)arg;
    af_job_outcome_t out;
    af_push_target_outcome(&out, code, message, outputs, n_outputs, self->cancelled, -1);
    af_job_executor_done(self->job, &out);
}

int af_engine_run_worker(af_engine_run_t *self, af_worker_fn *fn, void *args,
                         af_worker_free_fn *free_fn, af_err_t *err)
{
    af_worker_destroy(&self->worker);
    self->worker = af_worker_new(af_job_loop(self->job), fn, args, free_fn, s_on_worker_log,
                                 s_on_worker_done, self);
    if (!self->worker)
        return af_err_set(err, AF_ERR_NOMEM, "cannot start a worker thread");
    return 0;
}

void af_engine_run_cancel(af_engine_run_t *self)
{
    if (!self)
        return;
    self->cancelled = true;
    if (self->proc && !af_process_exited(self->proc))
        af_process_kill(self->proc, af_job_kill_grace_ms(self->job));
    else if (self->worker && !af_worker_finished(self->worker))
        af_worker_cancel(self->worker);
}

void af_engine_run_fail(af_engine_run_t *self, af_job_t *job, const char *failure, const char *fmt,
                        ...)
{
    (void)self;
    af_job_outcome_t out;
    memset(&out, 0, sizeof out);
    char msg[AF_MAX_STR + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    af_job_outcome_fail(&out, failure, -1, "%s", msg);
    af_job_executor_done(job, &out);
}

void af_engine_run_fail_status(af_engine_run_t *self, af_job_t *job, const char *what, int status,
                               bool is_build)
{
    af_job_outcome_t out;
    memset(&out, 0, sizeof out);
    const char *failure = is_build ? "build" : "infra";
    if (self->cancelled)
        af_job_outcome_fail(&out, "cancelled", -1, "cancelled");
    else if (WIFEXITED(status))
        af_job_outcome_fail(&out, failure, WEXITSTATUS(status), "%s exited with status %d", what,
                            WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        af_job_outcome_fail(&out, failure, 128 + WTERMSIG(status), "%s killed by signal %d (%s)",
                            what, WTERMSIG(status), strsignal(WTERMSIG(status)));
    else {
        char text[96];
        af_job_outcome_fail(&out, failure, -1, "%s %s", what,
                            af_process_status_text(status, text, sizeof text));
    }
    af_job_executor_done(job, &out);
}

/* --- checking what an engine pushed ---------------------------------------- */

int af_engine_check_platform(const char *engine, const char *config, size_t len,
                             const af_platform_t *want, af_err_t *err)
{
    af_platform_t got;
    int rc = af_oci_config_platform(config, len, &got, err);
    if (rc < 0)
        return rc;
    if (!af_platform_equal(&got, want)) {
        char g[AF_PLATFORM_STR_MAX], w[AF_PLATFORM_STR_MAX];
        return af_err_set(err, AF_ERR_INVAL, "%s built %s, not %s", engine,
                          af_platform_format(&got, g, sizeof g),
                          af_platform_format(want, w, sizeof w));
    }
    return 0;
}

af_engine_verify_args_t *af_engine_verify_args_new(const af_msg_t *build,
                                                   const af_platform_t *platform,
                                                   const af_engine_image_t *reported)
{
    af_engine_verify_args_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    if (af_push_target_from_build(&a->target, build) < 0) {
        free(a);
        return NULL;
    }
    a->platform = *platform;
    a->reported = *reported;
    return a;
}

void af_engine_verify_args_free(void *varg)
{
    af_engine_verify_args_t *a = (af_engine_verify_args_t *)varg;
    if (!a)
        return;
    af_push_target_clear(&a->target);
    free(a);
}

int af_engine_verify_worker(af_worker_ctx_t *ctx, void *varg, af_err_t *err)
{
    af_engine_verify_args_t *a = (af_engine_verify_args_t *)varg;
    af_registry_t *reg = NULL;
    af_oci_doc_t *doc = NULL;
    char *body = NULL, *mt = NULL, *config = NULL;
    size_t len = 0, config_len = 0;
    char digest[AF_DIGEST_STR_MAX];
    af_ref_t ref;
    int rc;
    if (!(reg = af_push_target_open(&a->target, &ref, err))) {
        rc = err && err->code ? err->code : AF_ERR_NET;
        goto out;
    }
    af_worker_log(ctx, "checking %s@%s", a->target.repository, a->reported.digest);
    if ((rc = af_registry_manifest_get(reg, ref.repository, a->reported.digest, &body, &len, &mt,
                                       digest, err)) < 0) {
        af_err_prefix(err, rc, "the engine's image is not in %s", a->target.repository);
        goto out;
    }
    if (!(doc = af_oci_doc_parse(body, len, mt, err))) {
        rc = err && err->code ? err->code : AF_ERR_PARSE;
        goto out;
    }
    if (doc->is_index || !af_oci_is_manifest(doc->media_type)) {
        rc = af_err_set(err, AF_ERR_UNSUPPORTED,
                        "%s@%s is a %s, not a single-platform image manifest", a->target.repository,
                        digest, doc->media_type);
        goto out;
    }
    if ((rc = af_registry_blob_get(reg, ref.repository, doc->config.digest, 0, &config, &config_len,
                                   err)) < 0)
        goto out;
    if ((rc = af_engine_check_platform("the engine", config, config_len, &a->platform, err)) < 0)
        goto out;
    rc = af_push_target_report(ctx, digest, doc->media_type, len, err);
out:
    af_oci_doc_destroy(&doc);
    free(body);
    free(mt);
    free(config);
    af_registry_destroy(&reg);
    return rc;
}

void af_engine_log_ignored_args(af_job_t *job, const af_kv_t *args, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!af_engine_is_platform_arg(args[i].key))
            continue;
        char line[AF_MAX_NAME + 96];
        snprintf(line, sizeof line,
                 "build arg %s ignored: the platform variables come from --platform", args[i].key);
        af_job_log(job, "agent", line);
    }
}

/* --- BuildKit-style executors ------------------------------------------------ */

typedef struct {
    char dir[AF_CONTEXT_MAX_PATH];
    char meta[AF_CONTEXT_MAX_PATH];
    char docker_config[AF_CONTEXT_MAX_PATH];
    char engine[16];
    char **envp;
    af_engine_spec_t spec;
} s_buildkit_t;

/* Links the node's docker CLI state (plugins, builders, contexts) into the
 * private DOCKER_CONFIG so that only the credentials differ. */
static void s_link_docker_state(const char *dir)
{
    char src_dir[AF_CONTEXT_MAX_PATH];
    const char *dc = getenv("DOCKER_CONFIG"), *home = getenv("HOME");
    if (dc && dc[0])
        snprintf(src_dir, sizeof src_dir, "%s", dc);
    else if (home && home[0])
        snprintf(src_dir, sizeof src_dir, "%s/.docker", home);
    else
        return;
    const char *names[] = {"cli-plugins", "buildx", "contexts"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char src[AF_CONTEXT_MAX_PATH + 32], dst[AF_CONTEXT_MAX_PATH + 32];
        snprintf(src, sizeof src, "%s/%s", src_dir, names[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, names[i]);
        if (access(src, F_OK) == 0 && symlink(src, dst) < 0)
            af_warn("cannot link %s: %s", src, strerror(errno));
    }
}

static void s_on_verify_start(af_engine_run_t *run, af_job_t *job, int status, bool cancelled)
{
    s_buildkit_t *st = af_engine_run_data(run);
    if (cancelled || status != 0) {
        char what[48];
        snprintf(what, sizeof what, "%s build", st->engine);
        af_engine_run_fail_status(run, job, what, status, true);
        return;
    }
    af_err_t err = {0};
    af_engine_image_t img;
    if (af_engine_metadata_read(st->meta, &img, &err) < 0) {
        af_engine_run_fail(run, job, "infra", "%s: %s", st->engine, af_err_msg(&err, AF_ERR_PARSE));
        return;
    }
    const af_msg_t *b = af_job_build(job);
    af_job_status(job, "pushing", b->repository);
    af_engine_verify_args_t *a = af_engine_verify_args_new(b, af_job_platform(job), &img);
    if (!a) {
        af_engine_run_fail(run, job, "infra", "out of memory");
        return;
    }
    if (af_engine_run_worker(run, af_engine_verify_worker, a, af_engine_verify_args_free, &err) < 0)
        af_engine_run_fail(run, job, "infra", "%s", af_err_msg(&err, AF_ERR_NOMEM));
}

int af_engine_buildkit_start(af_job_t *job, const char *engine, af_engine_argv_fn *argv_fn,
                             af_err_t *err)
{
    const af_msg_t *b = af_job_build(job);
    af_engine_run_t *run = af_engine_run_attach(job, sizeof(s_buildkit_t), err);
    if (!run)
        return AF_ERR_NOMEM;
    s_buildkit_t *st = af_engine_run_data(run);
    snprintf(st->engine, sizeof st->engine, "%s", engine);
    snprintf(st->dir, sizeof st->dir, "%s/engine", af_job_dir(job));
    snprintf(st->meta, sizeof st->meta, "%s/metadata.json", st->dir);
    if (mkdir(st->dir, 0700) < 0 && errno != EEXIST)
        return af_err_set(err, AF_ERR_IO, "%s: %s", st->dir, strerror(errno));
    int rc;
    char env_dc[AF_CONTEXT_MAX_PATH + 16];
    const char *extra[2] = {NULL, NULL};
    if (b->registry_username[0]) {
        char cfg[AF_CONTEXT_MAX_PATH + 16];
        snprintf(st->docker_config, sizeof st->docker_config, "%s/docker", st->dir);
        snprintf(cfg, sizeof cfg, "%s/config.json", st->docker_config);
        if (mkdir(st->docker_config, 0700) < 0 && errno != EEXIST)
            return af_err_set(err, AF_ERR_IO, "%s: %s", st->docker_config, strerror(errno));
        if ((rc = af_engine_auth_file_write(cfg, b->repository, b->registry_username,
                                            b->registry_password, err)) < 0)
            return rc;
        if (!strcmp(engine, "docker"))
            s_link_docker_state(st->docker_config);
        snprintf(env_dc, sizeof env_dc, "DOCKER_CONFIG=%s", st->docker_config);
        extra[0] = env_dc;
    }
    st->spec = (af_engine_spec_t){
        .context_dir = af_job_ctx_dir(job),
        .dockerfile = b->recipe_path,
        .platform = af_job_platform(job),
        .build_args = b->build_args,
        .n_build_args = b->n_build_args,
        .target = b->target,
        .repository = b->repository,
        .insecure = b->registry_insecure,
        .source_date_epoch = b->source_date_epoch,
        .metadata_file = st->meta,
    };
    af_engine_log_ignored_args(job, b->build_args, b->n_build_args);
    if (!(st->envp = af_engine_env_new(NULL, extra, err)))
        return err && err->code ? err->code : AF_ERR_NOMEM;
    char **argv = argv_fn(&st->spec, err);
    if (!argv)
        return err && err->code ? err->code : AF_ERR_INVAL;
    rc = af_engine_run_spawn(run, argv, st->envp, af_job_ctx_dir(job), s_on_verify_start, err);
    af_engine_argv_free(&argv);
    return rc;
}

void af_engine_buildkit_cancel(af_job_t *job)
{
    af_engine_run_cancel(af_job_exec_data(job));
}

void af_engine_buildkit_release(af_job_t *job)
{
    af_engine_run_t *run = af_job_exec_data(job);
    if (!run)
        return;
    s_buildkit_t *st = af_engine_run_data(run);
    af_engine_run_destroy(&run);
    if (st) {
        af_engine_env_free(&st->envp);
        if (st->docker_config[0]) {
            char cfg[AF_CONTEXT_MAX_PATH + 16];
            snprintf(cfg, sizeof cfg, "%s/config.json", st->docker_config);
            unlink(cfg);
        }
        free(st);
    }
    af_job_set_exec_data(job, NULL);
}
