/* recipe.c -- archfarm.yaml, the native recipe (skeleton). */
#include "recipe.h"

#include <stdlib.h>

af_recipe_t *af_recipe_load(const char *path, af_err_t *err)
{
    af_err_set(err, AF_ERR_UNSUPPORTED, "%s: recipe loading not implemented yet", path);
    return NULL;
}

af_recipe_t *af_recipe_load_buffer(const char *name, const char *data, size_t len, af_err_t *err)
{
    (void)data;
    (void)len;
    af_err_set(err, AF_ERR_UNSUPPORTED, "%s: recipe loading not implemented yet", name);
    return NULL;
}

void af_recipe_destroy(af_recipe_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}
