/* recipe.h -- the native recipe, archfarm.yaml (libyaml).
 *
 *   build: {env: {K: V}, run: "sh -c text",      all optional
 *          inputs: [PATTERN]}                   what a slice is sent
 *   image:
 *     from: scratch | REF                        default scratch
 *     copy: [{src: PATH, dest: /ABS}]            src relative to the context
 *     entrypoint: [..] | "string"   cmd: [..] | "string"
 *     env: {K: V}  workdir: /  user: ""  labels: {K: V}
 * Unknown keys are errors (a typo must not silently build something else).
 * Errors are "FILE:LINE:COL: message". See docs/recipe.md. */
#ifndef AF_RECIPE_H
#define AF_RECIPE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "kv.h"

/* Entries in one env/labels mapping, items in entrypoint/cmd (the file
 * itself is bounded by AF_RECIPE_MAX_BYTES, copy by AF_RECIPE_MAX_COPY). */
#define AF_RECIPE_MAX_ENTRIES 256

typedef struct {
    char *src;  /* relative, no "..", no leading "/" */
    char *dest; /* absolute image path */
} af_recipe_copy_t;

/* A parsed recipe; every string is owned by it. */
typedef struct {
    af_kv_t *build_env;
    size_t n_build_env;
    char *run;     /* NULL when no build step */
    char **inputs; /* .dockerignore-syntax patterns, ${TARGET*} unexpanded */
    size_t n_inputs;
    bool has_inputs; /* false: every slice is sent the whole context */
    char *from;      /* "scratch" or an image reference */
    af_recipe_copy_t *copy;
    size_t n_copy;
    char **entrypoint; /* a string form becomes ["/bin/sh","-c",S] */
    size_t n_entrypoint;
    bool has_entrypoint;
    char **cmd;
    size_t n_cmd;
    bool has_cmd;
    af_kv_t *env;
    size_t n_env;
    char *workdir; /* NULL when unset */
    char *user;    /* NULL when unset */
    af_kv_t *labels;
    size_t n_labels;
} af_recipe_t;

/* The patterns (.dockerignore syntax) of the context a slice for the
 * platform OS/ARCH[/VARIANT] is sent (build.inputs): each input with
 * ${TARGETOS} ${TARGETARCH} ${TARGETVARIANT} ${TARGETPLATFORM} replaced,
 * then every image.copy src and RECIPE_PATH (the recipe's own path in the
 * context) as literal paths. Into a new NULL-terminated array *OUT
 * (caller frees each string and the array) of *N patterns. 0 or
 * AF_ERR_NOMEM. Only for a recipe with has_inputs. */
int af_recipe_inputs_for(const af_recipe_t *r, const char *platform_os, const char *arch,
                         const char *variant, const char *recipe_path, char ***out, size_t *n,
                         af_err_t *err) __attribute__((warn_unused_result));

/* Loads PATH (at most AF_RECIPE_MAX_BYTES). Caller owns the result; NULL
 * with err "PATH:LINE:COL: message" on failure. */
af_recipe_t *af_recipe_load(const char *path, af_err_t *err);
af_recipe_t *af_recipe_load_buffer(const char *name, const char *data, size_t len, af_err_t *err);
void af_recipe_destroy(af_recipe_t **self_p);

#endif
