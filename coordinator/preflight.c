/* preflight.c -- the push check `archfarm build` runs before it builds.
 *
 * One POST /v2/REPO/blobs/uploads/ (answered by the registry client with
 * Basic credentials, or a bearer token of scope pull,push) and a DELETE of
 * the session it opened: a registry that accepts that will accept the
 * agents' pushes with the same credentials. */
#include "preflight.h"

#include "cli.h"
#include "error.h"

int af_preflight_push(af_registry_t *reg, const af_ref_t *target, af_progress_t *pg)
{
    af_err_t err;
    af_err_clear(&err);
    af_progress_info(pg, "checking that %s accepts a push to %s", target->registry,
                     target->repository);
    int rc = af_registry_push_check(reg, target->repository, &err);
    if (!rc)
        return AF_EXIT_OK;
    af_cli_error("cannot push to repository %s on registry %s: %s; nothing was built",
                 target->repository, target->registry, af_err_msg(&err, rc));
    return af_cli_registry_exit(rc);
}
