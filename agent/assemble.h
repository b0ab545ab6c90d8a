/* assemble.h -- a finished native build becomes an image in the registry.
 *
 * Runs in a worker thread (worker.h) after build.run succeeded: packs the
 * recipe's image.copy entries into one deterministic layer (mtime =
 * SOURCE_DATE_EPOCH), resolves the base image (`from`, an index resolved
 * to the slice's platform) and makes its layers available in the target
 * repository (mount or copy), builds the config (created =
 * SOURCE_DATE_EPOCH) and the OCI manifest, pushes the blobs, then the
 * manifest by its digest only -- never a tag. Progress goes to the loop as
 * "agent" log lines. Outputs: manifest digest, media type, size. */
#ifndef AF_AGENT_ASSEMBLE_H
#define AF_AGENT_ASSEMBLE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "platform.h"
#include "push_target.h"
#include "recipe.h"
#include "worker.h"

typedef struct {
    char *job; /* "job/attempt", for logs */
    char *node;
    char *ctx_dir;             /* the build root: the context after the step */
    char *job_dir;             /* scratch space for blobs */
    af_recipe_t *recipe;       /* owned */
    af_push_target_t target;   /* repository and registry settings; owned */
    af_platform_t platform;    /* the slice */
    int64_t source_date_epoch; /* < 0 taken as 0 */
} af_assemble_args_t;

/* Zeroed args; NULL on OOM. Free with af_assemble_args_free. */
af_assemble_args_t *af_assemble_args_new(void);

/* Frees everything, wiping the password first. NULL-safe. An
 * af_worker_free_fn. */
void af_assemble_args_free(void *args);

/* The af_worker_fn: outputs[0] manifest digest, [1] media type, [2] size. */
int af_assemble_run(af_worker_ctx_t *ctx, void *args, af_err_t *err);

#endif
