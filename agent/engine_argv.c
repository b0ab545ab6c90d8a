/* engine_argv.c -- the argv (and envp) lists the Dockerfile engines run
 * with: buildctl, docker buildx and buildah (build and push), the checks
 * every spec value passes before it becomes an argument, and the engine's
 * environment. Used by the executor_* files through engine.h. No value is
 * ever shell text: the lists go to af_process_new_argv. */
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

/* The Dockerfile flags docker buildx and buildah share: the platform
 * (PLAT), the Dockerfile, the build args (SOURCE_DATE_EPOCH among them when
 * SDE) and the target stage. */
static void s_dockerfile_args(s_argv_t *a, const af_engine_spec_t *spec, const char *plat, bool sde)
{
    s_add(a, "--platform");
    s_add(a, plat);
    s_add(a, "-f");
    s_addf(a, "%s/%s", spec->context_dir, s_dockerfile(spec));
    s_build_args(a, spec, "--build-arg", "", sde);
    if (spec->target && spec->target[0]) {
        s_add(a, "--target");
        s_add(a, spec->target);
    }
}

/* What buildctl and docker buildx both need: a valid spec and an absolute
 * metadata file. Formats the platform into PLAT (AF_PLATFORM_STR_MAX). */
static int s_buildkit_check(const af_engine_spec_t *spec, char *plat, af_err_t *err)
{
    if (af_engine_spec_check(spec, err) < 0)
        return -1;
    if (!s_abs(spec->metadata_file))
        return af_err_set(err, AF_ERR_INVAL, "metadata file must be an absolute path");
    af_platform_format(spec->platform, plat, AF_PLATFORM_STR_MAX);
    return 0;
}

char **af_engine_argv_buildctl(const af_engine_spec_t *spec, af_err_t *err)
{
    char plat[AF_PLATFORM_STR_MAX];
    if (s_buildkit_check(spec, plat, err) < 0)
        return NULL;
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
    char plat[AF_PLATFORM_STR_MAX];
    if (s_buildkit_check(spec, plat, err) < 0)
        return NULL;
    s_argv_t a = {0};
    s_add(&a, "docker");
    s_add(&a, "buildx");
    s_add(&a, "build");
    s_dockerfile_args(&a, spec, plat, true);
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
    /* buildah 1.28 does not read SOURCE_DATE_EPOCH: --timestamp does that */
    s_dockerfile_args(&a, spec, plat, false);
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

void af_engine_spec_from_build(af_engine_spec_t *spec, af_job_t *job)
{
    const af_msg_t *b = af_job_build(job);
    *spec = (af_engine_spec_t){
        .context_dir = af_job_ctx_dir(job),
        .dockerfile = b->recipe_path,
        .platform = af_job_platform(job),
        .build_args = b->build_args,
        .n_build_args = b->n_build_args,
        .target = b->target,
        .repository = b->repository,
        .insecure = b->registry_insecure,
        /* unset (< 0) is 0, as docs/cli.md says: the same default the
         * native executor and the coordinator use */
        .source_date_epoch = b->source_date_epoch < 0 ? 0 : b->source_date_epoch,
    };
}
