/* push_blob.c -- `af-bench-push`: pushes one file as a blob with archfarm's
 * registry client (common/registry: HEAD, POST, one streamed PUT), the
 * code path an agent uses for a layer, and prints how long the digest and
 * the push took. bench/run.sh push compares it with `skopeo copy` of the
 * same blob. Not installed; a benchmark helper only.
 *
 *   af-bench-push HOST:PORT REPOSITORY FILE     (plain HTTP: a test registry)
 *
 * Output, one line: "digest_s=D push_s=P bytes=N pushed=M". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "digest.h"
#include "registry.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: af-bench-push HOST:PORT REPOSITORY FILE\n");
        return 2;
    }
    af_err_t err = {0};
    char digest[AF_DIGEST_STR_MAX];
    uint64_t size = 0;
    double t0 = s_now();
    if (af_digest_file(argv[3], digest, &size, &err) < 0) {
        fprintf(stderr, "af-bench-push: %s\n", err.msg);
        return 1;
    }
    double t1 = s_now();
    af_registry_opts_t opts = {.insecure = true};
    af_registry_t *reg = af_registry_new(argv[1], &opts, &err);
    if (!reg) {
        fprintf(stderr, "af-bench-push: %s\n", err.msg);
        return 1;
    }
    int rc = af_registry_blob_push(reg, argv[2], digest, argv[3], size, NULL, NULL, NULL, &err);
    double t2 = s_now();
    if (rc < 0) {
        fprintf(stderr, "af-bench-push: %s\n", err.msg);
        af_registry_destroy(&reg);
        return 1;
    }
    printf("digest_s=%.3f push_s=%.3f bytes=%llu pushed=%llu\n", t1 - t0, t2 - t1,
           (unsigned long long)size, (unsigned long long)af_registry_pushed_bytes(reg));
    af_registry_destroy(&reg);
    return 0;
}
