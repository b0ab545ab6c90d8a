/* executor_docker.c -- Dockerfile slices built by `docker buildx build`.
 *
 * For nodes with a Docker engine and the buildx plugin: the same
 * push-by-digest image output as buildctl (BuildKit inside Docker pushes
 * the manifest, no tag is written), --provenance=false so that the result
 * is one image manifest and not an index with an attestation, and the
 * digest read from --metadata-file, then checked in the registry
 * (engine.c). probe() requires the docker client, the buildx plugin and a
 * daemon socket ($DOCKER_HOST or /var/run/docker.sock). No engine runs in
 * the project's CI: covered by the argv and metadata unit tests only. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine.h"
#include "executor.h"
#include "limits.h"

static const char *const s_kinds[] = {"dockerfile", NULL};

static bool s_have_buildx(void)
{
    char path[AF_CONTEXT_MAX_PATH];
    const char *dc = getenv("DOCKER_CONFIG"), *home = getenv("HOME");
    if (dc && dc[0]) {
        snprintf(path, sizeof path, "%s/cli-plugins/docker-buildx", dc);
        if (access(path, X_OK) == 0)
            return true;
    }
    if (home && home[0]) {
        snprintf(path, sizeof path, "%s/.docker/cli-plugins/docker-buildx", home);
        if (access(path, X_OK) == 0)
            return true;
    }
    const char *dirs[] = {"/usr/local/lib/docker/cli-plugins",
                          "/usr/local/libexec/docker/cli-plugins", "/usr/lib/docker/cli-plugins",
                          "/usr/libexec/docker/cli-plugins"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/docker-buildx", dirs[i]);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

static bool s_probe(void)
{
    const char *host = getenv("DOCKER_HOST");
    return af_engine_which("docker", NULL, 0) && s_have_buildx() &&
           ((host && host[0]) || access("/var/run/docker.sock", F_OK) == 0);
}

static int s_start(af_job_t *job, af_err_t *err)
{
    return af_engine_buildkit_start(job, "docker", af_engine_argv_docker, err);
}

const af_executor_t af_executor_docker = {
    .name = "docker",
    .kinds = s_kinds,
    .probe = s_probe,
    .start = s_start,
    .cancel = af_engine_buildkit_cancel,
    .release = af_engine_buildkit_release,
};
