/* buildenv.h -- the environment a build step runs with.
 *
 * The step sees the agent's own environment, then the recipe's build.env,
 * then the BUILD's build args (a user's --build-arg beats the recipe), then
 * BuildKit's platform names, which nothing can override:
 *   TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT   the slice
 *   BUILDPLATFORM  BUILDOS  BUILDARCH                  this host
 *   SOURCE_DATE_EPOCH
 * Credentials are never part of it. systemd's socket-activation and notify
 * variables are not passed on. */
#ifndef AF_AGENT_BUILDENV_H
#define AF_AGENT_BUILDENV_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "kv.h"
#include "platform.h"

typedef struct {
    const af_platform_t *target; /* the slice's platform */
    const af_platform_t *build;  /* the agent host's platform */
    int64_t source_date_epoch;   /* < 0 is taken as 0 */
    const af_kv_t *recipe_env;   /* build.env, may be NULL */
    size_t n_recipe_env;
    const af_kv_t *build_args; /* BUILD build_args, may be NULL */
    size_t n_build_args;
} af_buildenv_spec_t;

/* Builds the NULL-terminated "KEY=VALUE" list from BASE (borrowed, e.g.
 * environ; may be NULL) and SPEC. Caller owns; free with
 * af_buildenv_destroy. NULL with err for a key that is not a valid
 * variable name ([A-Za-z_][A-Za-z0-9_]*) or on OOM. */
char **af_buildenv_new(char *const *base, const af_buildenv_spec_t *spec, af_err_t *err);
void af_buildenv_destroy(char ***env_p);

/* Value of KEY in ENV, or NULL. Borrowed from ENV. */
const char *af_buildenv_get(char *const *env, const char *key);

#endif
