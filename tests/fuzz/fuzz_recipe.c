/* fuzz_recipe.c -- libFuzzer target for af_recipe_load_buffer().
 *
 * Whatever the bytes, loading must not crash, leak or hang, and must give
 * either a recipe that keeps the header's promises (copy sources relative
 * without "..", destinations absolute, from set, shell-form entrypoints of
 * three words, build.inputs relative without "..", expanding for a
 * platform into as many non-NULL patterns as promised) or a
 * "NAME:LINE:COL: message" error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recipe.h"

static int s_dotdot(const char *p)
{
    for (const char *s = p; (s = strstr(s, "..")); s += 2)
        if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    af_err_t err;
    af_err_clear(&err);
    af_recipe_t *r = af_recipe_load_buffer("fuzz.yaml", (const char *)data, size, &err);
    if (!r) {
        if (err.code >= 0 || (strncmp(err.msg, "fuzz.yaml:", 10) && err.code != AF_ERR_TOOBIG))
            abort();
        return 0;
    }
    if (!r->from || !*r->from)
        abort();
    for (size_t i = 0; i < r->n_copy; i++) {
        const af_recipe_copy_t *c = &r->copy[i];
        if (!c->src || !c->dest || c->src[0] == '/' || c->dest[0] != '/' || s_dotdot(c->src) ||
            s_dotdot(c->dest))
            abort();
    }
    for (size_t i = 0; i < r->n_entrypoint; i++)
        if (!r->entrypoint[i])
            abort();
    for (size_t i = 0; i < r->n_cmd; i++)
        if (!r->cmd[i])
            abort();
    for (size_t i = 0; i < r->n_inputs; i++)
        if (!r->inputs[i] || r->inputs[i][0] == '/' || s_dotdot(r->inputs[i]))
            abort();
    if (r->has_inputs) {
        char **v = NULL;
        size_t n = 0;
        if (af_recipe_inputs_for(r, "linux", "arm", "v7", "archfarm.yaml", &v, &n, &err))
            abort();
        if (n != r->n_inputs + r->n_copy + 1 || v[n])
            abort();
        for (size_t i = 0; i < n; i++) {
            if (!v[i] || (i < r->n_inputs && strstr(v[i], "${TARGET")))
                abort();
            free(v[i]);
        }
        free(v);
    }
    af_recipe_destroy(&r);
    return 0;
}
