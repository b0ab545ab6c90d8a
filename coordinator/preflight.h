/* preflight.h -- before anything is built, prove the push can succeed.
 *
 * buildx and podman farm build first and learn at push time that the
 * credentials are wrong or the registry is down; archfarm asks the
 * registry first, so a build that cannot publish costs a second, not the
 * build. Used by `archfarm build` before any node is probed. */
#ifndef AF_PREFLIGHT_H
#define AF_PREFLIGHT_H

#include "progress.h"
#include "ref.h"
#include "registry.h"

/* Starts and cancels a blob upload to TARGET's repository through REG
 * (borrowed; a client for TARGET's registry), with a push-scoped token
 * when the registry uses tokens. Returns AF_EXIT_OK, or prints an error
 * naming the registry, the repository and the HTTP status (or the network
 * error) and returns the exit status: AF_EXIT_INFRA for a refusal or an
 * unreachable registry, AF_EXIT_FAILED otherwise. PG (borrowed) gets a
 * progress line. */
int af_preflight_push(af_registry_t *reg, const af_ref_t *target, af_progress_t *pg);

#endif
