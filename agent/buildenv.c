/* buildenv.c -- assembles a build step's environment (see buildenv.h).
 * A flat array with replace-on-set: a few hundred entries at most. */
#include "buildenv.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char **v;
    size_t n, cap;
} s_env_t;

static const char *const s_dropped[] = {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
                                        "LISTEN_FDNAMES", NULL};

static bool s_valid_name(const char *key)
{
    if (!key || !*key ||
        !((*key >= 'A' && *key <= 'Z') || (*key >= 'a' && *key <= 'z') || *key == '_'))
        return false;
    for (const char *p = key; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

static int s_find(const s_env_t *env, const char *key, size_t keylen)
{
    for (size_t i = 0; i < env->n; i++)
        if (!strncmp(env->v[i], key, keylen) && env->v[i][keylen] == '=')
            return (int)i;
    return -1;
}

/* Takes ENTRY ("K=V", malloc'd). */
static int s_put(s_env_t *env, char *entry)
{
    if (!entry)
        return AF_ERR_NOMEM;
    size_t keylen = strcspn(entry, "=");
    int at = s_find(env, entry, keylen);
    if (at >= 0) {
        free(env->v[at]);
        env->v[at] = entry;
        return 0;
    }
    if (env->n + 1 >= env->cap) {
        size_t cap = env->cap ? env->cap * 2 : 64;
        char **grown = realloc(env->v, cap * sizeof *grown);
        if (!grown) {
            free(entry);
            return AF_ERR_NOMEM;
        }
        env->v = grown;
        env->cap = cap;
    }
    env->v[env->n++] = entry;
    env->v[env->n] = NULL;
    return 0;
}

static int s_set(s_env_t *env, const char *key, const char *value)
{
    char *entry = NULL;
    if (asprintf(&entry, "%s=%s", key, value ? value : "") < 0)
        return AF_ERR_NOMEM;
    return s_put(env, entry);
}

static int s_set_list(s_env_t *env, const af_kv_t *kv, size_t n, const char *what, af_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!s_valid_name(kv[i].key))
            return af_err_set(err, AF_ERR_INVAL, "%s \"%s\" is not a valid variable name", what,
                              kv[i].key ? kv[i].key : "");
        if (s_set(env, kv[i].key, kv[i].value) < 0)
            return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    }
    return 0;
}

char **af_buildenv_new(char *const *base, const af_buildenv_spec_t *spec, af_err_t *err)
{
    s_env_t env = {0};
    env.v = calloc(64, sizeof *env.v);
    if (!env.v) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    env.cap = 64;
    for (size_t i = 0; base && base[i]; i++) {
        const char *eq = strchr(base[i], '=');
        if (!eq || eq == base[i])
            continue;
        bool drop = false;
        for (size_t d = 0; s_dropped[d]; d++)
            if ((size_t)(eq - base[i]) == strlen(s_dropped[d]) &&
                !strncmp(base[i], s_dropped[d], (size_t)(eq - base[i])))
                drop = true;
        if (!drop && s_put(&env, strdup(base[i])) < 0)
            goto oom;
    }
    if (s_set_list(&env, spec->recipe_env, spec->n_recipe_env, "build.env key", err) < 0 ||
        s_set_list(&env, spec->build_args, spec->n_build_args, "build arg", err) < 0)
        goto fail;

    char tp[AF_PLATFORM_STR_MAX], bp[AF_PLATFORM_STR_MAX], sde[32];
    af_platform_format(spec->target, tp, sizeof tp);
    af_platform_format(spec->build, bp, sizeof bp);
    snprintf(sde, sizeof sde, "%" PRId64,
             spec->source_date_epoch < 0 ? (int64_t)0 : spec->source_date_epoch);
    if (s_set(&env, "TARGETPLATFORM", tp) < 0 || s_set(&env, "TARGETOS", spec->target->os) < 0 ||
        s_set(&env, "TARGETARCH", spec->target->arch) < 0 ||
        s_set(&env, "TARGETVARIANT", spec->target->variant) < 0 ||
        s_set(&env, "BUILDPLATFORM", bp) < 0 || s_set(&env, "BUILDOS", spec->build->os) < 0 ||
        s_set(&env, "BUILDARCH", spec->build->arch) < 0 ||
        s_set(&env, "SOURCE_DATE_EPOCH", sde) < 0)
        goto oom;
    return env.v;
oom:
    af_err_set(err, AF_ERR_NOMEM, "out of memory");
fail:
    af_buildenv_destroy(&env.v);
    return NULL;
}

void af_buildenv_destroy(char ***env_p)
{
    if (!env_p || !*env_p)
        return;
    for (char **p = *env_p; *p; p++)
        free(*p);
    free(*env_p);
    *env_p = NULL;
}

const char *af_buildenv_get(char *const *env, const char *key)
{
    size_t keylen = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (!strncmp(env[i], key, keylen) && env[i][keylen] == '=')
            return env[i] + keylen + 1;
    return NULL;
}
