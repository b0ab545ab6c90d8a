/* fuzz_inventory.c -- libFuzzer target for af_inventory_load_buffer().
 *
 * Whatever the bytes, loading must not crash, leak or hang, and must give
 * either an inventory whose nodes satisfy the header's promises (a name,
 * an endpoint, at least one platform, max_jobs in range, a key unless
 * insecure or else a warning about it, every warning "NAME:LINE:COL: ...")
 * or a "NAME:LINE:COL: message" error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load_buffer("fuzz.yaml", (const char *)data, size, &err);
    if (!inv) {
        if (err.code >= 0 || (strncmp(err.msg, "fuzz.yaml:", 10) && err.code != AF_ERR_TOOBIG))
            abort();
        return 0;
    }
    for (size_t i = 0; i < af_inventory_size(inv); i++) {
        const af_node_t *n = af_inventory_node(inv, i);
        if (!n->name || !*n->name || !n->endpoint || n->n_platforms == 0 || n->max_jobs < 1 ||
            n->max_jobs > AF_INVENTORY_MAX_JOBS ||
            (!n->insecure && !n->server_key && af_inventory_warning_count(inv) == 0) ||
            af_inventory_find(inv, n->name) != n || !af_node_serves(n, &n->platforms[0]))
            abort();
        for (size_t j = 0; j < n->n_labels; j++)
            if (af_node_label(n, n->labels[j].key) == NULL)
                abort();
    }
    for (size_t i = 0; i < af_inventory_warning_count(inv); i++)
        if (strncmp(af_inventory_warning(inv, i), "fuzz.yaml:", 10))
            abort();
    af_inventory_destroy(&inv);
    return 0;
}
