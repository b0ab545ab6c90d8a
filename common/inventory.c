/* inventory.c -- the Ansible YAML inventory as archfarm nodes (skeleton). */
#include "inventory.h"

#include <stdlib.h>
#include <string.h>

struct af_inventory {
    af_node_t *nodes;
    size_t n_nodes;
};

af_inventory_t *af_inventory_load(const char *path, af_err_t *err)
{
    af_err_set(err, AF_ERR_UNSUPPORTED, "%s: inventory loading not implemented yet", path);
    return NULL;
}

af_inventory_t *af_inventory_load_buffer(const char *name, const char *data, size_t len,
                                         af_err_t *err)
{
    (void)data;
    (void)len;
    af_err_set(err, AF_ERR_UNSUPPORTED, "%s: inventory loading not implemented yet", name);
    return NULL;
}

void af_inventory_destroy(af_inventory_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

size_t af_inventory_size(const af_inventory_t *self)
{
    return self ? self->n_nodes : 0;
}

const af_node_t *af_inventory_node(const af_inventory_t *self, size_t i)
{
    return self && i < self->n_nodes ? &self->nodes[i] : NULL;
}

const af_node_t *af_inventory_find(const af_inventory_t *self, const char *name)
{
    for (size_t i = 0; self && i < self->n_nodes; i++)
        if (!strcmp(self->nodes[i].name, name))
            return &self->nodes[i];
    return NULL;
}

bool af_node_serves(const af_node_t *node, const af_platform_t *p)
{
    for (size_t i = 0; i < node->n_platforms; i++)
        if (af_platform_equal(&node->platforms[i], p))
            return true;
    return false;
}

const char *af_node_label(const af_node_t *node, const char *key)
{
    for (size_t i = 0; i < node->n_labels; i++)
        if (!strcmp(node->labels[i].key, key))
            return node->labels[i].value;
    return NULL;
}
