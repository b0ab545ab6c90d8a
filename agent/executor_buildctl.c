/* executor_buildctl.c -- Dockerfile slices built by a BuildKit daemon.
 *
 * For nodes running buildkitd: `buildctl build --frontend dockerfile.v0`
 * with --opt platform=P, the build args and target, and an image output
 * that BuildKit pushes itself by digest (push-by-digest=true, no name:tag
 * is written). The manifest digest comes from --metadata-file, then a
 * worker checks it in the registry (engine.c). buildctl reaches the daemon
 * through $BUILDKIT_HOST or its default socket; probe() requires the
 * client and one of those. No daemon runs in the project's CI: this file
 * is covered by the argv and metadata unit tests only. */
#include <stdlib.h>
#include <unistd.h>

#include "engine.h"
#include "executor.h"

static const char *const s_kinds[] = {"dockerfile", NULL};

static bool s_probe(void)
{
    const char *host = getenv("BUILDKIT_HOST");
    return af_engine_which("buildctl", NULL, 0) &&
           ((host && host[0]) || access("/run/buildkit/buildkitd.sock", F_OK) == 0);
}

static int s_start(af_job_t *job, af_err_t *err)
{
    return af_engine_buildkit_start(job, "buildctl", af_engine_argv_buildctl, err);
}

const af_executor_t af_executor_buildctl = {
    .name = "buildctl",
    .kinds = s_kinds,
    .probe = s_probe,
    .start = s_start,
    .cancel = af_engine_buildkit_cancel,
    .release = af_engine_buildkit_release,
};
