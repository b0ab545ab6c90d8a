/* inventory.h -- the Ansible YAML inventory as a list of archfarm nodes.
 *
 * Reads the hosts of group `archfarm_agents` and its child groups, wherever
 * that group is defined (top level or under any `children:`), with
 * Ansible's precedence: host vars > child-group vars > parent-group vars >
 * `all` vars. Host patterns such as `pi[01:08]`, `node[a:c]` and
 * `x[1:9:2]` expand like Ansible's. Unknown variables are ignored, except
 * archfarm_* names neither archfarm nor the role knows (typos). Errors
 * name the place: "FILE:LINE:COL: message". See docs/inventory.md. */
#ifndef AF_INVENTORY_H
#define AF_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "platform.h"

/* The group archfarm reads, with all its descendant groups. */
#define AF_INVENTORY_GROUP "archfarm_agents"
/* Bounds beyond those in limits.h (file size, hosts, nesting depth). */
#define AF_INVENTORY_MAX_GROUPS 4096 /* distinct group names in one file */
#define AF_INVENTORY_MAX_LABELS 64   /* archfarm_labels entries per host */
#define AF_INVENTORY_MAX_JOBS 256    /* largest archfarm_max_jobs */
#define AF_INVENTORY_MAX_WARNINGS 64 /* warnings kept; more are dropped */

typedef struct {
    char *key;
    char *value;
} af_label_t;

/* One resolved node. Owned by its inventory; borrowed by callers until
 * af_inventory_destroy(). */
typedef struct {
    char *name;            /* inventory host name */
    char *endpoint;        /* "tcp://HOST:PORT" or archfarm_endpoint */
    af_platform_t *platforms;
    size_t n_platforms;
    char *server_key;      /* Z85 CURVE public key, NULL if none */
    int max_jobs;          /* >= 1 */
    int priority;          /* archfarm_priority, default 0; lower is preferred */
    af_label_t *labels;    /* archfarm_labels: a map, or a list of "k=v"/"k" */
    size_t n_labels;
    bool insecure;         /* archfarm_insecure */
    int line;              /* where the host was declared, for messages */
    int column;
} af_node_t;

typedef struct af_inventory af_inventory_t;

/* Loads PATH. Returns a new inventory (caller owns) or NULL with err set to
 * "PATH:LINE:COL: message". An inventory with no archfarm_agents hosts is
 * valid and empty. A host in the group without archfarm_platforms is an
 * error; one without archfarm_server_key while not insecure takes its key
 * from known_agents/HOST.key beside PATH, or else is kept with server_key
 * NULL and a warning (the coordinator will not connect to it). */
af_inventory_t *af_inventory_load(const char *path, af_err_t *err);

/* Same, from a buffer; NAME is used in messages. */
af_inventory_t *af_inventory_load_buffer(const char *name, const char *data, size_t len,
                                         af_err_t *err);

/* Frees and nulls *self_p. NULL-safe. */
void af_inventory_destroy(af_inventory_t **self_p);

size_t af_inventory_size(const af_inventory_t *self);

/* Node I in declaration order; borrowed. NULL when out of range. */
const af_node_t *af_inventory_node(const af_inventory_t *self, size_t i);

/* Node by name; borrowed. NULL if absent. */
const af_node_t *af_inventory_find(const af_inventory_t *self, const char *name);

/* Warnings found while loading (a key defined twice in one mapping...),
 * "FILE:LINE:COL: warning: ...", in document order. Borrowed. Callers
 * print them to stderr; they do not make the inventory invalid. */
size_t af_inventory_warning_count(const af_inventory_t *self);
const char *af_inventory_warning(const af_inventory_t *self, size_t i);
/* The I-th archfarm_* variable name an inventory may hold (archfarm's own,
 * then the Ansible role's), NULL past the end. Any other archfarm_* name is
 * an error with a did-you-mean. Static strings. */
const char *af_inventory_known_var(size_t i);
/* True when NODE serves P natively. */
bool af_node_serves(const af_node_t *node, const af_platform_t *p);

/* Value of label KEY, or NULL. Borrowed. */
const char *af_node_label(const af_node_t *node, const char *key);

#endif
