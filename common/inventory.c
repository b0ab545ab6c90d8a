/* inventory.c -- the Ansible YAML inventory as a list of archfarm nodes.
 *
 * The coordinator (`archfarm build/ls/inspect/inventory`) loads the same
 * inventory.yaml that Ansible deploys agents from. libyaml's document API
 * gives us a node graph (aliases are shared nodes, never copies); we walk it
 * the way Ansible's yaml inventory plugin does: every top-level key is a
 * group with optional `hosts`, `vars` and `children`, a group named in
 * several places is one group, and a host listed several times is one host
 * whose variables merge. Variables are then resolved per host with
 * Ansible's precedence (groups sorted by depth, ansible_group_priority and
 * name, then host vars) and converted into af_node_t, each bad value
 * reported at its own FILE:LINE:COL. Hostile input is bounded three ways:
 * file size, a budget on mapping pairs visited (alias and merge-key bombs),
 * and group nesting depth; counts of hosts, groups and labels are capped. */
#include "inventory.h"

#include <ctype.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "yamldoc.h"

#define S_NONE ((size_t)-1)
/* Mapping pairs and sequence items visited, all mappings together, counting
 * every re-visit of an aliased node: ten times what a 4 MiB file can hold
 * without aliases, far below what an alias bomb asks for. */
#define S_BUDGET (AF_INVENTORY_MAX_BYTES / 2)
#define S_NAME_MAX (AF_MAX_NAME - 1)
/* YAML nesting: a group L levels deep sits at about 2L (body, children).
 * Ansible reads one document; a second one is a mistake. */
static const af_yamldoc_limits_t s_limits = {.max_bytes = AF_INVENTORY_MAX_BYTES,
                                             .max_depth = 4 * AF_INVENTORY_MAX_DEPTH,
                                             .kind = "inventory",
                                             .single = "an inventory"};

/* The variables archfarm reads; everything else is Ansible's business. */
typedef enum {
    V_ANSIBLE_HOST,
    V_PORT,
    V_ENDPOINT,
    V_PLATFORMS,
    V_SERVER_KEY,
    V_MAX_JOBS,
    V_LABELS,
    V_INSECURE,
    V_PRIORITY,
    V_GROUP_PRIORITY,
    V_COUNT
} s_var_id_t;

static const char *const s_var_names[V_COUNT] = {
    "ansible_host",        "archfarm_port",         "archfarm_endpoint", "archfarm_platforms",
    "archfarm_server_key", "archfarm_max_jobs",     "archfarm_labels",   "archfarm_insecure",
    "archfarm_priority",   "ansible_group_priority"};

typedef struct {
    int id;
    yaml_node_t *node;
    af_yamldoc_t *yd; /* the document NODE is in: the inventory or a vars file */
} s_var_t;

typedef struct {
    s_var_t *v;
    size_t n, cap;
} s_vars_t;

typedef struct {
    size_t *v;
    size_t n, cap;
} s_idx_list_t;

/* name -> index, open addressing; keys are borrowed */
typedef struct {
    const char **keys;
    size_t *vals;
    size_t cap, n;
} s_index_t;

typedef struct {
    const char *name; /* borrowed from the document */
    yaml_mark_t mark;
    s_vars_t vars;      /* from the inventory file */
    s_vars_t file_vars; /* from group_vars/ */
    s_idx_list_t children, parents;
    int depth;
    int state;    /* depth walk: 0 new, 1 on the stack, 2 done */
    bool parsing; /* its body is being read: meeting it again is a loop */
    int priority;
    bool agent;   /* archfarm_agents or one of its descendants */
    size_t stamp; /* last host whose groups included this one, +1 */
} s_group_t;

typedef struct {
    char *name;
    yaml_mark_t mark;    /* first declaration */
    s_vars_t vars;       /* from the inventory file */
    s_vars_t file_vars;  /* from host_vars/ */
    s_idx_list_t groups; /* direct memberships */
} s_host_t;

typedef struct {
    yaml_node_t *key, *value;
} s_pair_t;

typedef struct {
    s_pair_t *v;
    size_t n, cap;
} s_pairs_t;

typedef struct {
    char **v;
    size_t n, cap;
} s_names_t;

typedef struct {
    af_yamldoc_t *yd;      /* errors go through it: the document being read */
    yaml_document_t *doc;  /* yd's document */
    af_yamldoc_t *main;    /* the inventory file's document */
    const char *vars_base; /* the directory holding group_vars/ and host_vars/; NULL: none */
    af_yamldoc_t **docs;   /* the vars files read, owned */
    size_t n_docs, cap_docs;
    s_group_t *groups;
    size_t n_groups, cap_groups;
    s_index_t group_index;
    s_host_t *hosts;
    size_t n_hosts, cap_hosts;
    s_index_t host_index;
    size_t budget;
    struct af_inventory *inv; /* warnings go to inv->warnings */
    const char *known_dir;    /* known_agents/ beside the file; NULL for buffers */
    af_err_t *err;            /* the caller's, for errors outside the YAML */
} s_ctx_t;

struct af_inventory {
    af_node_t *nodes;
    size_t n_nodes;
    s_names_t warnings; /* "FILE:LINE:COL: warning: ..." */
};

/* ---- small containers ---------------------------------------------------- */

/* Grows *v (element size ELEM) so one more fits. Returns 0 or -1. */
static int s_grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *nv = realloc(*v, ncap * elem);
    if (!nv)
        return -1;
    *v = nv;
    *cap = ncap;
    return 0;
}

static uint64_t s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void s_index_free(s_index_t *ix)
{
    free(ix->keys);
    free(ix->vals);
    memset(ix, 0, sizeof *ix);
}

static size_t s_index_get(const s_index_t *ix, const char *key)
{
    if (!ix->cap)
        return S_NONE;
    for (size_t i = s_hash(key) & (ix->cap - 1);; i = (i + 1) & (ix->cap - 1)) {
        if (!ix->keys[i])
            return S_NONE;
        if (!strcmp(ix->keys[i], key))
            return ix->vals[i];
    }
}

/* Adds KEY (not present yet). Returns 0 or -1 (no memory). */
static int s_index_put(s_index_t *ix, const char *key, size_t val)
{
    if ((ix->n + 1) * 2 > ix->cap) {
        size_t ncap = ix->cap ? ix->cap * 2 : 16;
        const char **nk = calloc(ncap, sizeof *nk);
        size_t *nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return -1;
        }
        for (size_t i = 0; i < ix->cap; i++) {
            if (!ix->keys[i])
                continue;
            size_t j = s_hash(ix->keys[i]) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = ix->keys[i];
            nv[j] = ix->vals[i];
        }
        free(ix->keys);
        free(ix->vals);
        ix->keys = nk;
        ix->vals = nv;
        ix->cap = ncap;
    }
    size_t j = s_hash(key) & (ix->cap - 1);
    while (ix->keys[j])
        j = (j + 1) & (ix->cap - 1);
    ix->keys[j] = key;
    ix->vals[j] = val;
    ix->n++;
    return 0;
}

static int s_idx_add_unique(s_idx_list_t *l, size_t v)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == v)
            return 0;
    if (s_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v))
        return -1;
    l->v[l->n++] = v;
    return 0;
}

static void s_names_free(s_names_t *names)
{
    for (size_t i = 0; i < names->n; i++)
        free(names->v[i]);
    free(names->v);
    memset(names, 0, sizeof *names);
}

/* ---- scalars ------------------------------------------------------------- */

/* A printable, bounded rendering of NODE for messages: "\"text\"" for
 * scalars, "a mapping"/"a list" otherwise. */
static const char *s_show(const yaml_node_t *n, char *buf, size_t len)
{
    if (!n || n->type == YAML_MAPPING_NODE)
        return snprintf(buf, len, "a mapping"), buf;
    if (n->type == YAML_SEQUENCE_NODE)
        return snprintf(buf, len, "a list"), buf;
    const char *s = af_yamldoc_text(n);
    size_t o = 0;
    buf[o++] = '"';
    size_t i = 0;
    for (; i < n->data.scalar.length && i < 64 && o + 5 < len; i++)
        buf[o++] = isprint((unsigned char)s[i]) ? s[i] : '?';
    if (i < n->data.scalar.length && o + 5 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* A scalar usable as a string: not NUL-bearing, bounded, no Jinja2. NAME
 * is the variable, for the message. Returns 0 or an error. */
static int s_string(s_ctx_t *c, const char *name, const yaml_node_t *n, size_t max,
                    const char **out)
{
    char show[96];
    if (n->type != YAML_SCALAR_NODE)
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL, "%s: expected a string, got %s", name,
                               s_show(n, show, sizeof show));
    if (strlen(af_yamldoc_text(n)) != n->data.scalar.length)
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL, "%s: contains a NUL byte", name);
    if (n->data.scalar.length > max)
        return af_yamldoc_fail(c->yd, n, AF_ERR_TOOBIG, "%s: longer than %zu bytes", name, max);
    if (strstr(af_yamldoc_text(n), "{{") || strstr(af_yamldoc_text(n), "{%"))
        return af_yamldoc_fail(c->yd, n, AF_ERR_UNSUPPORTED,
                               "%s: Jinja2 templates are not evaluated by archfarm, got %s", name,
                               s_show(n, show, sizeof show));
    *out = af_yamldoc_text(n);
    return 0;
}

static bool s_all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Parses a decimal integer scalar ("+" or "-" allowed, quoted or not). */
static bool s_int_value(const yaml_node_t *n, long *out)
{
    /* at most 9 digits, so the value always fits an int */
    if (n->type != YAML_SCALAR_NODE || !n->data.scalar.length || n->data.scalar.length > 10)
        return false;
    const char *s = af_yamldoc_text(n);
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (!s[i])
        return false;
    if (!s_all_digits(s + i) || strlen(s + i) > 9)
        return false;
    *out = strtol(s, NULL, 10);
    return true;
}

/* Ansible's boolean(): YAML 1.1 booleans and their string spellings. */
static bool s_bool_value(const yaml_node_t *n, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "y", "t", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "n", "f", "0", NULL};
    if (n->type != YAML_SCALAR_NODE)
        return false;
    for (size_t i = 0; yes[i]; i++)
        if (!strcasecmp(af_yamldoc_text(n), yes[i]))
            return *out = true, true;
    for (size_t i = 0; no[i]; i++)
        if (!strcasecmp(af_yamldoc_text(n), no[i]))
            return *out = false, true;
    return false;
}

/* ---- mappings with merge keys -------------------------------------------- */

static int s_spend(s_ctx_t *c, const yaml_node_t *n)
{
    if (c->budget == 0)
        return af_yamldoc_fail(c->yd, n, AF_ERR_TOOBIG,
                               "inventory too large after alias expansion (more than %d nodes)",
                               (int)S_BUDGET);
    c->budget--;
    return 0;
}

static bool s_is_merge_key(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           !strcmp(af_yamldoc_text(k), "<<");
}

/* Appends MAP's pairs to OUT as PyYAML's flatten_mapping orders them:
 * merged mappings first (the last `<<` source first, so earlier sources
 * override later ones), then the mapping's own pairs. */
static int s_flatten(s_ctx_t *c, yaml_node_t *map, s_pairs_t *out, int level)
{
    char show[96];
    if (level > AF_INVENTORY_MAX_DEPTH)
        return af_yamldoc_fail(c->yd, map, AF_ERR_TOOBIG,
                               "merge keys (<<) nested deeper than %d levels",
                               AF_INVENTORY_MAX_DEPTH);
    /* every visit counts, so lists of aliases to empty mappings cost too */
    int rc = s_spend(c, map);
    if (rc)
        return rc;
    yaml_node_pair_t *p;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (!k || !v || !s_is_merge_key(k))
            continue;
        if (v->type == YAML_MAPPING_NODE) {
            rc = s_flatten(c, v, out, level + 1);
            if (rc)
                return rc;
        } else if (v->type == YAML_SEQUENCE_NODE) {
            yaml_node_item_t *it;
            for (it = v->data.sequence.items.top; it > v->data.sequence.items.start; it--) {
                yaml_node_t *src = yaml_document_get_node(c->doc, it[-1]);
                if (!src || src->type != YAML_MAPPING_NODE)
                    return af_yamldoc_fail(c->yd, src ? src : v, AF_ERR_PARSE,
                                           "merge key (<<) expects mappings, got %s",
                                           s_show(src, show, sizeof show));
                rc = s_flatten(c, src, out, level + 1);
                if (rc)
                    return rc;
            }
        } else {
            return af_yamldoc_fail(c->yd, v, AF_ERR_PARSE,
                                   "merge key (<<) expects a mapping or a list of mappings, got %s",
                                   s_show(v, show, sizeof show));
        }
    }
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (!k || !v)
            return af_yamldoc_fail(c->yd, map, AF_ERR_PARSE, "malformed mapping");
        if (s_is_merge_key(k))
            continue;
        rc = s_spend(c, k);
        if (rc)
            return rc;
        if (s_grow((void **)&out->v, &out->cap, out->n, sizeof *out->v))
            return af_yamldoc_nomem(c->yd);
        out->v[out->n++] = (s_pair_t){k, v};
    }
    return 0;
}

/* Adds a warning unless the same text is there already (an aliased mapping
 * is walked once per alias) or AF_INVENTORY_MAX_WARNINGS are kept. */
static int s_warn(s_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_warn(s_ctx_t *c, const char *fmt, ...)
{
    s_names_t *w = &c->inv->warnings;
    char msg[AF_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->v[i], msg))
            return 0;
    if (w->n >= AF_INVENTORY_MAX_WARNINGS)
        return 0;
    if (s_grow((void **)&w->v, &w->cap, w->n, sizeof *w->v) || !(w->v[w->n] = strdup(msg)))
        return af_yamldoc_nomem(c->yd);
    w->n++;
    return 0;
}

/* Warns about a key written twice in MAP itself (not through `<<`), such
 * as a host listed twice under one `hosts:`: YAML forbids it, Ansible
 * warns and keeps the later value, and so does archfarm. */
static int s_warn_duplicates(s_ctx_t *c, yaml_node_t *map)
{
    s_index_t seen = {0};
    int rc = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         rc == 0 && p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE || s_is_merge_key(k))
            continue;
        size_t at = s_index_get(&seen, af_yamldoc_text(k));
        if (at == S_NONE) {
            if (s_index_put(&seen, af_yamldoc_text(k), (size_t)p->key))
                rc = af_yamldoc_nomem(c->yd);
            continue;
        }
        const yaml_node_t *first = yaml_document_get_node(c->doc, (int)at);
        const char *file = af_yamldoc_name(c->yd);
        rc = s_warn(c,
                    "%s:%zu:%zu: warning: \"%s\" is defined twice in one mapping, first at "
                    "%s:%zu:%zu; the later one wins (as in Ansible)",
                    file, k->start_mark.line + 1, k->start_mark.column + 1, af_yamldoc_text(k),
                    file, first->start_mark.line + 1, first->start_mark.column + 1);
    }
    s_index_free(&seen);
    return rc;
}

/* The pairs of MAP with merge keys applied and duplicate keys collapsed the
 * way a Python dict does (first position, last value). Keys must be
 * scalars. Caller frees out->v. */
static int s_pairs(s_ctx_t *c, yaml_node_t *map, s_pairs_t *out)
{
    memset(out, 0, sizeof *out);
    s_pairs_t all = {0};
    s_index_t seen = {0};
    int rc = s_warn_duplicates(c, map);
    if (rc == 0)
        rc = s_flatten(c, map, &all, 0);
    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        yaml_node_t *k = all.v[i].key;
        if (k->type != YAML_SCALAR_NODE) {
            rc = af_yamldoc_fail(c->yd, k, AF_ERR_PARSE, "expected a string key, got %s",
                                 k->type == YAML_MAPPING_NODE ? "a mapping" : "a list");
            break;
        }
        size_t at = s_index_get(&seen, af_yamldoc_text(k));
        if (at != S_NONE) {
            out->v[at].value = all.v[i].value;
            continue;
        }
        if (s_grow((void **)&out->v, &out->cap, out->n, sizeof *out->v) ||
            s_index_put(&seen, af_yamldoc_text(k), out->n)) {
            rc = af_yamldoc_nomem(c->yd);
            break;
        }
        out->v[out->n++] = all.v[i];
    }
    free(all.v);
    s_index_free(&seen);
    if (rc) {
        free(out->v);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ---- groups, hosts, ranges ----------------------------------------------- */

/* archfarm_* variables that only the Ansible role reads: the role's
 * defaults/main.yml lists the same names (a unit test checks it), so a
 * misspelled one is caught, not silently ignored by both. */
static const char *const s_role_names[] = {
    "archfarm_agent_binary",
    "archfarm_agent_cert",
    "archfarm_agent_name",
    "archfarm_authorized_keys_dir",
    "archfarm_become",
    "archfarm_bin_dir",
    "archfarm_build_packages",
    "archfarm_buildah",
    "archfarm_check_inventory",
    "archfarm_cli",
    "archfarm_config_dir",
    "archfarm_context_cache",
    "archfarm_create_user",
    "archfarm_deb_arch_map",
    "archfarm_drain_s",
    "archfarm_elf_machine_map",
    "archfarm_elf_machine_names",
    "archfarm_executor",
    "archfarm_group",
    "archfarm_health_timeout_s",
    "archfarm_heartbeat_ms",
    "archfarm_install_method",
    "archfarm_install_packages",
    "archfarm_job_timeout_s",
    "archfarm_kill_grace_ms",
    "archfarm_known_agents_dir",
    "archfarm_liveness",
    "archfarm_manage_service",
    "archfarm_packages_dir",
    "archfarm_root",
    "archfarm_runtime_packages",
    "archfarm_serial",
    "archfarm_systemd_dir",
    "archfarm_user",
    "archfarm_version",
    "archfarm_workdir",
};
#define S_N_ROLE_NAMES (sizeof s_role_names / sizeof *s_role_names)

const char *af_inventory_known_var(size_t i)
{
    for (int id = 0; id < V_COUNT; id++)
        if (!strncmp(s_var_names[id], "archfarm_", 9) && i-- == 0)
            return s_var_names[id];
    return i < S_N_ROLE_NAMES ? s_role_names[i] : NULL;
}

/* Levenshtein distance of A and B, capped at 9 (names are short). */
static size_t s_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 9;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] < 9 ? row[lb] : 9;
}

/* An archfarm_* KEY that neither archfarm nor the role knows: an error at
 * KEY with the closest known name when one is near. */
static int s_unknown_var(s_ctx_t *c, const yaml_node_t *k)
{
    const char *key = af_yamldoc_text(k), *best = NULL, *name;
    size_t best_d = 4; /* suggest within 3 edits */
    for (size_t i = 0; (name = af_inventory_known_var(i)); i++) {
        if (!strcmp(key, name))
            return 0;
        size_t d = s_distance(key, name);
        if (d < best_d)
            best_d = d, best = name;
    }
    if (best)
        return af_yamldoc_fail(c->yd, k, AF_ERR_INVAL, "unknown variable %s (did you mean %s?)",
                               key, best);
    return af_yamldoc_fail(c->yd, k, AF_ERR_INVAL,
                           "unknown variable %s (archfarm_* names are archfarm's; see "
                           "docs/inventory.md)",
                           key);
}

/* Appends the archfarm variables among PAIRS of a vars mapping to VARS. */
static int s_collect_vars(s_ctx_t *c, yaml_node_t *map, s_vars_t *vars)
{
    s_pairs_t pairs;
    int rc = s_pairs(c, map, &pairs);
    for (size_t i = 0; rc == 0 && i < pairs.n; i++) {
        const char *key = af_yamldoc_text(pairs.v[i].key);
        if (!strncmp(key, "archfarm_", 9) && (rc = s_unknown_var(c, pairs.v[i].key)))
            break;
        for (int id = 0; id < V_COUNT; id++) {
            if (strcmp(key, s_var_names[id]))
                continue;
            if (s_grow((void **)&vars->v, &vars->cap, vars->n, sizeof *vars->v)) {
                rc = af_yamldoc_nomem(c->yd);
                break;
            }
            vars->v[vars->n++] = (s_var_t){id, pairs.v[i].value, c->yd};
        }
    }
    free(pairs.v);
    return rc;
}

static int s_group_get(s_ctx_t *c, yaml_node_t *name_node, size_t *out)
{
    const char *name = af_yamldoc_text(name_node);
    size_t gi = s_index_get(&c->group_index, name);
    if (gi == S_NONE) {
        if (c->n_groups >= AF_INVENTORY_MAX_GROUPS)
            return af_yamldoc_fail(c->yd, name_node, AF_ERR_TOOBIG, "more than %d groups",
                                   AF_INVENTORY_MAX_GROUPS);
        if (s_grow((void **)&c->groups, &c->cap_groups, c->n_groups, sizeof *c->groups))
            return af_yamldoc_nomem(c->yd);
        gi = c->n_groups;
        s_group_t *g = &c->groups[gi];
        memset(g, 0, sizeof *g);
        g->name = name;
        g->mark = name_node->start_mark;
        g->priority = 1;
        if (s_index_put(&c->group_index, name, gi))
            return af_yamldoc_nomem(c->yd);
        c->n_groups++;
    }
    *out = gi;
    return 0;
}

static int s_host_get(s_ctx_t *c, const yaml_node_t *at, const char *name, size_t *out)
{
    size_t hi = s_index_get(&c->host_index, name);
    if (hi == S_NONE) {
        if (c->n_hosts >= AF_INVENTORY_MAX_HOSTS)
            return af_yamldoc_fail(c->yd, at, AF_ERR_TOOBIG, "more than %d hosts",
                                   AF_INVENTORY_MAX_HOSTS);
        if (s_grow((void **)&c->hosts, &c->cap_hosts, c->n_hosts, sizeof *c->hosts))
            return af_yamldoc_nomem(c->yd);
        s_host_t *h = &c->hosts[c->n_hosts];
        memset(h, 0, sizeof *h);
        h->name = strdup(name);
        if (!h->name)
            return af_yamldoc_nomem(c->yd);
        h->mark = at->start_mark;
        hi = c->n_hosts++;
        if (s_index_put(&c->host_index, h->name, hi))
            return af_yamldoc_nomem(c->yd);
    }
    *out = hi;
    return 0;
}

/* Checks an expanded host name. */
static int s_check_host_name(s_ctx_t *c, const yaml_node_t *at, const char *name)
{
    char show[96];
    if (!*name)
        return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL, "empty host name");
    if (strlen(name) > S_NAME_MAX)
        return af_yamldoc_fail(c->yd, at, AF_ERR_TOOBIG, "host name %s is longer than %d bytes",
                               s_show(at, show, sizeof show), S_NAME_MAX);
    for (const char *p = name; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p) || *p == '/')
            return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL, "invalid host name %s",
                                   s_show(at, show, sizeof show));
    return 0;
}

static int s_names_add(s_ctx_t *c, const yaml_node_t *at, s_names_t *names, char *name)
{
    if (names->n >= AF_INVENTORY_MAX_HOSTS) {
        free(name);
        return af_yamldoc_fail(c->yd, at, AF_ERR_TOOBIG, "host range expands to more than %d hosts",
                               AF_INVENTORY_MAX_HOSTS);
    }
    if (s_grow((void **)&names->v, &names->cap, names->n, sizeof *names->v)) {
        free(name);
        return af_yamldoc_nomem(c->yd);
    }
    names->v[names->n++] = name;
    return 0;
}

/* Expands Ansible host ranges in PAT from byte FROM on, like Ansible's
 * expand_hostname_range: "[beg:end]" or "[beg:end:step]", numeric (a
 * zero-padded start keeps its width) or single letters; several ranges
 * multiply. Appends owned names to NAMES. */
static int s_expand(s_ctx_t *c, const yaml_node_t *at, const char *pat, size_t from,
                    s_names_t *names)
{
    char show[96];
    const char *open = strchr(pat + from, '[');
    if (!open) {
        if (strchr(pat + from, ']'))
            return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL, "host pattern %s: ']' without '['",
                                   s_show(at, show, sizeof show));
        char *dup = strdup(pat);
        if (!dup)
            return af_yamldoc_nomem(c->yd);
        return s_names_add(c, at, names, dup);
    }
    const char *close = strchr(open, ']');
    if (!close)
        return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL,
                               "host pattern %s: unterminated range, missing ']'",
                               s_show(at, show, sizeof show));
    char body[64];
    size_t blen = (size_t)(close - open - 1);
    if (blen >= sizeof body)
        return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL, "host pattern %s: range too long",
                               s_show(at, show, sizeof show));
    memcpy(body, open + 1, blen);
    body[blen] = '\0';
    char *parts[3] = {body, NULL, NULL};
    size_t np = 1;
    for (char *p = body; *p; p++) {
        if (*p != ':')
            continue;
        if (np == 3)
            return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL,
                                   "host pattern %s: expected [START:END] or [START:END:STEP]",
                                   s_show(at, show, sizeof show));
        *p = '\0';
        parts[np++] = p + 1;
    }
    if (np < 2)
        return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL,
                               "host pattern %s: expected [START:END] or [START:END:STEP]",
                               s_show(at, show, sizeof show));
    const char *beg = *parts[0] ? parts[0] : "0", *end = parts[1];
    if (!*end)
        return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL, "host pattern %s: range has no end value",
                               s_show(at, show, sizeof show));
    unsigned long step = 1;
    if (np == 3) {
        if (!s_all_digits(parts[2]) || strlen(parts[2]) > 6 ||
            (step = strtoul(parts[2], NULL, 10)) == 0)
            return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL,
                                   "host pattern %s: range step must be a positive integer",
                                   s_show(at, show, sizeof show));
    }

    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    size_t head = (size_t)(open - pat);
    const char *tail = close + 1;
    char *buf = malloc(strlen(pat) + 16);
    if (!buf)
        return af_yamldoc_nomem(c->yd);
    int rc = 0;
    if (strlen(beg) == 1 && strlen(end) == 1 && isalpha((unsigned char)beg[0]) &&
        isalpha((unsigned char)end[0])) {
        size_t ib = (size_t)(strchr(letters, beg[0]) - letters);
        size_t ie = (size_t)(strchr(letters, end[0]) - letters);
        if (ib > ie)
            rc = af_yamldoc_fail(c->yd, at, AF_ERR_INVAL,
                                 "host pattern %s: range start is after its end",
                                 s_show(at, show, sizeof show));
        for (size_t i = ib; rc == 0 && i <= ie; i += step) {
            size_t n = (size_t)sprintf(buf, "%.*s%c", (int)head, pat, letters[i]);
            strcpy(buf + n, tail);
            rc = s_expand(c, at, buf, n, names);
        }
    } else if (s_all_digits(beg) && s_all_digits(end)) {
        int width = 0;
        if (beg[0] == '0' && strlen(beg) > 1) {
            width = (int)strlen(beg);
            if (strlen(end) != strlen(beg))
                rc = af_yamldoc_fail(c->yd, at, AF_ERR_INVAL,
                                     "host pattern %s: a zero-padded range needs start and end of "
                                     "equal length",
                                     s_show(at, show, sizeof show));
        }
        if (rc == 0 && (strlen(beg) > 9 || strlen(end) > 9))
            rc = af_yamldoc_fail(c->yd, at, AF_ERR_INVAL, "host pattern %s: range bound too large",
                                 s_show(at, show, sizeof show));
        unsigned long ib = strtoul(beg, NULL, 10), ie = strtoul(end, NULL, 10);
        if (rc == 0 && ib > ie)
            rc = af_yamldoc_fail(c->yd, at, AF_ERR_INVAL,
                                 "host pattern %s: range start is after its end",
                                 s_show(at, show, sizeof show));
        for (unsigned long i = ib; rc == 0 && i <= ie; i += step) {
            size_t n = (size_t)sprintf(buf, "%.*s%0*lu", (int)head, pat, width, i);
            strcpy(buf + n, tail);
            rc = s_expand(c, at, buf, n, names);
        }
    } else {
        rc = af_yamldoc_fail(
            c->yd, at, AF_ERR_INVAL,
            "host pattern %s: range bounds must both be numbers or both single letters",
            s_show(at, show, sizeof show));
    }
    free(buf);
    return rc;
}

/* One `hosts:` entry: PATTERN (a key scalar) with VARS (mapping or null). */
static int s_host_entry(s_ctx_t *c, size_t gi, yaml_node_t *pattern, yaml_node_t *vars)
{
    char show[96], show2[96];
    const char *pat;
    int rc = s_string(c, "host name", pattern, AF_MAX_STR, &pat);
    if (rc)
        return rc;
    if (!af_yamldoc_is_null(vars) && vars->type != YAML_MAPPING_NODE)
        return af_yamldoc_fail(
            c->yd, vars, AF_ERR_INVAL, "host %s: expected a mapping of variables, got %s",
            s_show(pattern, show, sizeof show), s_show(vars, show2, sizeof show2));

    /* "name:port" is Ansible's SSH port; archfarm uses archfarm_port */
    char *work = strdup(pat);
    if (!work)
        return af_yamldoc_nomem(c->yd);
    int depth = 0;
    char *colon = NULL;
    size_t colons = 0;
    for (char *p = work; *p; p++) {
        if (*p == '[')
            depth++;
        else if (*p == ']')
            depth--;
        else if (*p == ':' && depth == 0)
            colon = p, colons++;
    }
    if (colons == 1 && s_all_digits(colon + 1))
        *colon = '\0';

    s_names_t names = {0};
    rc = s_expand(c, pattern, work, 0, &names);
    free(work);
    s_vars_t vs = {0};
    if (rc == 0 && !af_yamldoc_is_null(vars))
        rc = s_collect_vars(c, vars, &vs);
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        size_t hi = 0;
        rc = s_check_host_name(c, pattern, names.v[i]);
        if (rc == 0)
            rc = s_spend(c, pattern);
        if (rc == 0)
            rc = s_host_get(c, pattern, names.v[i], &hi);
        if (rc)
            break;
        s_host_t *h = &c->hosts[hi];
        if (s_idx_add_unique(&h->groups, gi)) {
            rc = af_yamldoc_nomem(c->yd);
            break;
        }
        for (size_t j = 0; j < vs.n; j++) {
            if (s_grow((void **)&h->vars.v, &h->vars.cap, h->vars.n, sizeof *h->vars.v)) {
                rc = af_yamldoc_nomem(c->yd);
                break;
            }
            h->vars.v[h->vars.n++] = vs.v[j];
        }
    }
    free(vs.v);
    s_names_free(&names);
    return rc;
}

static int s_group(s_ctx_t *c, yaml_node_t *name, yaml_node_t *body, size_t parent, int level);

/* A `hosts:` or `children:` section: a mapping, null, or (as Ansible
 * allows) a single name. Calls the entry handler for each. */
static int s_section(s_ctx_t *c, size_t gi, yaml_node_t *key, yaml_node_t *val, bool children,
                     int level)
{
    char show[96];
    if (af_yamldoc_is_null(val))
        return 0;
    if (val->type == YAML_SCALAR_NODE)
        return children ? s_group(c, val, NULL, gi, level + 1) : s_host_entry(c, gi, val, NULL);
    if (val->type != YAML_MAPPING_NODE)
        return af_yamldoc_fail(c->yd, val, AF_ERR_INVAL,
                               "group \"%s\": %s must be a mapping, got %s", c->groups[gi].name,
                               af_yamldoc_text(key), s_show(val, show, sizeof show));
    s_pairs_t pairs;
    int rc = s_pairs(c, val, &pairs);
    for (size_t i = 0; rc == 0 && i < pairs.n; i++)
        rc = children ? s_group(c, pairs.v[i].key, pairs.v[i].value, gi, level + 1)
                      : s_host_entry(c, gi, pairs.v[i].key, pairs.v[i].value);
    free(pairs.v);
    return rc;
}

/* One group definition NAME: BODY, a child of PARENT (S_NONE at top
 * level), LEVEL deep in the file. */
static int s_group(s_ctx_t *c, yaml_node_t *name, yaml_node_t *body, size_t parent, int level)
{
    char show[96];
    const char *gname;
    int rc = s_string(c, "group name", name, S_NAME_MAX, &gname);
    if (rc)
        return rc;
    if (!*gname)
        return af_yamldoc_fail(c->yd, name, AF_ERR_INVAL, "empty group name");
    if (level > AF_INVENTORY_MAX_DEPTH)
        return af_yamldoc_fail(c->yd, name, AF_ERR_TOOBIG,
                               "group \"%s\" is nested deeper than %d levels", gname,
                               AF_INVENTORY_MAX_DEPTH);
    if ((rc = s_spend(c, name)))
        return rc;
    size_t gi = 0;
    if ((rc = s_group_get(c, name, &gi)))
        return rc;
    if (parent != S_NONE) {
        if (!strcmp(gname, "all"))
            return af_yamldoc_fail(c->yd, name, AF_ERR_INVAL,
                                   "group \"all\" cannot be a child of \"%s\"",
                                   c->groups[parent].name);
        if (gi == parent)
            return af_yamldoc_fail(c->yd, name, AF_ERR_INVAL,
                                   "group \"%s\" cannot be its own child", gname);
        if (s_idx_add_unique(&c->groups[parent].children, gi) ||
            s_idx_add_unique(&c->groups[gi].parents, parent))
            return af_yamldoc_nomem(c->yd);
    }
    if (af_yamldoc_is_null(body))
        return 0;
    if (body->type != YAML_MAPPING_NODE)
        return af_yamldoc_fail(
            c->yd, body, AF_ERR_INVAL,
            "group \"%s\": expected a mapping with hosts, vars or children, got %s", gname,
            s_show(body, show, sizeof show));
    if (c->groups[gi].parsing)
        return af_yamldoc_fail(c->yd, name, AF_ERR_INVAL,
                               "group \"%s\" is its own ancestor (a loop in children)", gname);
    c->groups[gi].parsing = true;
    s_pairs_t pairs;
    rc = s_pairs(c, body, &pairs);
    for (size_t i = 0; rc == 0 && i < pairs.n; i++) {
        yaml_node_t *k = pairs.v[i].key, *v = pairs.v[i].value;
        const char *key = af_yamldoc_text(k);
        if (!strcmp(key, "hosts") || !strcmp(key, "children")) {
            rc = s_section(c, gi, k, v, key[0] == 'c', level);
        } else if (!strcmp(key, "vars")) {
            if (af_yamldoc_is_null(v))
                continue;
            if (v->type != YAML_MAPPING_NODE)
                rc = af_yamldoc_fail(c->yd, v, AF_ERR_INVAL,
                                     "group \"%s\": vars must be a mapping, got %s", gname,
                                     s_show(v, show, sizeof show));
            else
                rc = s_collect_vars(c, v, &c->groups[gi].vars);
        } else {
            rc = af_yamldoc_fail(
                c->yd, k, AF_ERR_INVAL,
                "group \"%s\": unexpected key %s (expected hosts, vars or children)", gname,
                s_show(k, show, sizeof show));
        }
    }
    free(pairs.v);
    c->groups[gi].parsing = false;
    return rc;
}

/* Longest path from `all` (depth 0) to group GI, as Ansible computes it;
 * a group nobody lists as a child hangs off `all` at depth 1. Finds
 * loops. */
static int s_depth(s_ctx_t *c, size_t gi, int level)
{
    s_group_t *g = &c->groups[gi];
    if (g->state == 2)
        return 0;
    if (g->state == 1)
        return af_yamldoc_fail_at(c->yd, &g->mark, AF_ERR_INVAL,
                                  "group \"%s\" is its own ancestor (a loop in children)", g->name);
    if (level > AF_INVENTORY_MAX_DEPTH)
        return af_yamldoc_fail_at(c->yd, &g->mark, AF_ERR_TOOBIG,
                                  "group \"%s\" is nested deeper than %d levels", g->name,
                                  AF_INVENTORY_MAX_DEPTH);
    g->state = 1;
    int depth = strcmp(g->name, "all") ? 1 : 0;
    for (size_t i = 0; i < g->parents.n; i++) {
        size_t pi = g->parents.v[i];
        int rc = s_depth(c, pi, level + 1);
        if (rc)
            return rc;
        if (c->groups[pi].depth + 1 > depth)
            depth = c->groups[pi].depth + 1;
    }
    g = &c->groups[gi];
    if (depth > AF_INVENTORY_MAX_DEPTH)
        return af_yamldoc_fail_at(c->yd, &g->mark, AF_ERR_TOOBIG,
                                  "group \"%s\" is nested deeper than %d levels", g->name,
                                  AF_INVENTORY_MAX_DEPTH);
    g->depth = depth;
    g->state = 2;
    /* ansible_group_priority: the group's last value wins */
    for (size_t i = 0; i < g->vars.n; i++) {
        if (g->vars.v[i].id != V_GROUP_PRIORITY)
            continue;
        long v;
        char show[96];
        if (!s_int_value(g->vars.v[i].node, &v))
            return af_yamldoc_fail(c->yd, g->vars.v[i].node, AF_ERR_INVAL,
                                   "ansible_group_priority: expected an integer, got %s",
                                   s_show(g->vars.v[i].node, show, sizeof show));
        g->priority = (int)v;
    }
    return 0;
}

static void s_mark_agents(s_ctx_t *c, size_t gi)
{
    if (c->groups[gi].agent)
        return;
    c->groups[gi].agent = true;
    for (size_t i = 0; i < c->groups[gi].children.n; i++)
        s_mark_agents(c, c->groups[gi].children.v[i]);
}

/* ---- per-host resolution --------------------------------------------------- */

static int s_group_cmp(const void *a, const void *b, void *arg)
{
    const s_group_t *groups = arg;
    const s_group_t *x = &groups[*(const size_t *)a], *y = &groups[*(const size_t *)b];
    if (x->depth != y->depth)
        return x->depth < y->depth ? -1 : 1;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Adds GI and its ancestors to OUT once (stamped with host HI). */
static int s_host_groups(s_ctx_t *c, size_t hi, size_t gi, s_idx_list_t *out)
{
    s_group_t *g = &c->groups[gi];
    if (g->stamp == hi + 1)
        return 0;
    g->stamp = hi + 1;
    if (s_grow((void **)&out->v, &out->cap, out->n, sizeof *out->v))
        return -1;
    out->v[out->n++] = gi;
    for (size_t i = 0; i < c->groups[gi].parents.n; i++)
        if (s_host_groups(c, hi, c->groups[gi].parents.v[i], out))
            return -1;
    return 0;
}

static int s_platforms(s_ctx_t *c, yaml_node_t *n, af_node_t *node)
{
    char show[96];
    const char *var = s_var_names[V_PLATFORMS];
    af_err_t perr;
    node->platforms = calloc(AF_MAX_LIST, sizeof *node->platforms);
    if (!node->platforms)
        return af_yamldoc_nomem(c->yd);
    if (n->type == YAML_SCALAR_NODE) {
        const char *s;
        int rc = s_string(c, var, n, AF_MAX_STR, &s);
        if (rc)
            return rc;
        if (af_platform_parse_list(s, node->platforms, AF_MAX_LIST, &node->n_platforms, &perr))
            return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL, "%s: %s", var, perr.msg);
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL, "%s: expected a list of platforms, got %s",
                               var, s_show(n, show, sizeof show));
    yaml_node_item_t *it;
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, *it);
        const char *s;
        int rc =
            item ? s_spend(c, item) : af_yamldoc_fail(c->yd, n, AF_ERR_PARSE, "malformed list");
        if (rc == 0)
            rc = s_string(c, var, item, AF_PLATFORM_STR_MAX * 2, &s);
        if (rc)
            return rc;
        af_platform_t p;
        if (af_platform_parse(s, &p, &perr))
            return af_yamldoc_fail(c->yd, item, AF_ERR_INVAL, "%s: %s", var, perr.msg);
        bool dup = false;
        for (size_t i = 0; i < node->n_platforms && !dup; i++)
            dup = af_platform_equal(&node->platforms[i], &p);
        if (dup)
            continue;
        if (node->n_platforms == AF_MAX_LIST)
            return af_yamldoc_fail(c->yd, item, AF_ERR_TOOBIG, "%s: more than %d platforms", var,
                                   AF_MAX_LIST);
        node->platforms[node->n_platforms++] = p;
    }
    if (node->n_platforms == 0)
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL, "%s: expected at least one platform", var);
    return 0;
}

static int s_label_add(s_ctx_t *c, const yaml_node_t *at, af_node_t *node, const char *key,
                       size_t klen, const char *value)
{
    const char *var = s_var_names[V_LABELS];
    if (klen == 0)
        return af_yamldoc_fail(c->yd, at, AF_ERR_INVAL, "%s: empty label key", var);
    char *k = strndup(key, klen);
    char *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return af_yamldoc_nomem(c->yd);
    }
    for (size_t i = 0; i < node->n_labels; i++) {
        if (!strcmp(node->labels[i].key, k)) {
            free(k);
            free(node->labels[i].value);
            node->labels[i].value = v;
            return 0;
        }
    }
    if (node->n_labels == AF_INVENTORY_MAX_LABELS) {
        free(k);
        free(v);
        return af_yamldoc_fail(c->yd, at, AF_ERR_TOOBIG, "%s: more than %d labels", var,
                               AF_INVENTORY_MAX_LABELS);
    }
    node->labels[node->n_labels++] = (af_label_t){k, v};
    return 0;
}

static int s_labels(s_ctx_t *c, yaml_node_t *n, af_node_t *node)
{
    char show[96];
    const char *var = s_var_names[V_LABELS];
    if (n->type == YAML_SCALAR_NODE)
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL,
                               "%s: expected a mapping or a list of \"key=value\", got %s", var,
                               s_show(n, show, sizeof show));
    node->labels = calloc(AF_INVENTORY_MAX_LABELS, sizeof *node->labels);
    if (!node->labels)
        return af_yamldoc_nomem(c->yd);
    int rc = 0;
    if (n->type == YAML_MAPPING_NODE) {
        s_pairs_t pairs;
        rc = s_pairs(c, n, &pairs);
        for (size_t i = 0; rc == 0 && i < pairs.n; i++) {
            const char *k, *v = "";
            rc = s_string(c, var, pairs.v[i].key, AF_MAX_STR, &k);
            if (rc == 0 && !af_yamldoc_is_null(pairs.v[i].value))
                rc = s_string(c, var, pairs.v[i].value, AF_MAX_STR, &v);
            if (rc == 0)
                rc = s_label_add(c, pairs.v[i].key, node, k, strlen(k), v);
        }
        free(pairs.v);
        return rc;
    }
    yaml_node_item_t *it;
    for (it = n->data.sequence.items.start; rc == 0 && it < n->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, *it);
        const char *s;
        rc = item ? s_spend(c, item) : af_yamldoc_fail(c->yd, n, AF_ERR_PARSE, "malformed list");
        if (rc == 0)
            rc = s_string(c, var, item, AF_MAX_STR, &s);
        if (rc)
            break;
        const char *eq = strchr(s, '=');
        rc = s_label_add(c, item, node, s, eq ? (size_t)(eq - s) : strlen(s), eq ? eq + 1 : "");
    }
    return rc;
}

/* archfarm_endpoint: tcp://HOST:PORT (HOST may be [v6]) or ipc://PATH. */
static bool s_endpoint_ok(const char *e)
{
    if (!strncmp(e, "ipc://", 6))
        return e[6] != '\0';
    if (strncmp(e, "tcp://", 6))
        return false;
    const char *host = e + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host || !s_all_digits(colon + 1) || strlen(colon + 1) > 5)
        return false;
    long port = strtol(colon + 1, NULL, 10);
    if (port < 1 || port > 65535)
        return false;
    if (host[0] == '[')
        return colon[-1] == ']' && colon - host > 2;
    for (const char *p = host; p < colon; p++)
        if (*p == ':' || *p == '[' || *p == ']' || *p == '/')
            return false;
    return true;
}

/* ---- the known-agents store ------------------------------------------------ */

/* The public key of host NAME from known_agents/NAME.key beside the
 * inventory (a czmq public certificate, as the Ansible role collects it from
 * the agent), into *OUT (caller frees), or *OUT NULL when there is none.
 * Like ~/.ssh/known_hosts: ops never paste keys by hand. */
static int s_known_key(s_ctx_t *c, const char *name, char **out)
{
    *out = NULL;
    if (!c->known_dir || !name[0] || name[0] == '.' || strchr(name, '/'))
        return 0;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s.key", c->known_dir, name) >= sizeof path)
        return 0;
    /* read here and parsed from memory: czmq's file loaders leak on a
     * malformed file; 4 KiB is more than any certificate */
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char buf[4097];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    zconfig_t *root = len < sizeof buf - 1 && strlen(buf) == len ? zconfig_str_load(buf) : NULL;
    const char *key = root ? zconfig_get(root, "/curve/public-key", "") : "";
    static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              ".-:+=^!/*?&<>()[]{}@%$#";
    bool valid = strlen(key) == 40 && strspn(key, z85) == 40;
    if (valid)
        *out = strdup(key);
    zconfig_destroy(&root);
    if (!valid)
        return af_err_set(c->err, AF_ERR_INVAL, "%s: not a CURVE certificate", path);
    return *out ? 0 : af_yamldoc_nomem(c->yd);
}

/* Refuses a plain scalar that YAML 1.1 (PyYAML, so Ansible) and YAML 1.2
 * (libyaml's tags as archfarm reads them) read differently, rather than
 * deploying one value and dialling another: in an integer variable a
 * leading zero (octal in 1.1: 07420 is 3856), `_` digit separators or `:`
 * (base 60 in 1.1); in a string variable yes/no/on/off (booleans in 1.1).
 * Quoting the value makes it a string to both. */
/* One plain scalar N of variable NAME: NUMERIC applies the integer rule,
 * TEXT the boolean-word rule. */
static int s_yaml11_scalar(s_ctx_t *c, const char *name, const yaml_node_t *n, bool numeric,
                           bool text)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *t = af_yamldoc_text(n);
    const char *d = t + (t[0] == '-' || t[0] == '+');
    if (numeric && isdigit((unsigned char)d[0]) && strspn(d, "0123456789_:") == strlen(d) &&
        ((d[0] == '0' && d[1]) || strpbrk(d, "_:")))
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL,
                               "%s: \"%s\" is read differently by YAML 1.1 (Ansible: %s) and "
                               "YAML 1.2; write the plain decimal number%s",
                               name, t,
                               d[0] == '0' && d[1] && !strpbrk(d, "_:")
                                   ? "octal"
                                   : (strchr(d, ':') ? "base 60" : "digit separators"),
                               text ? ", or quote it if it is a name" : "");
    static const char *const bools[] = {"yes", "no", "on", "off", "y", "n", NULL};
    for (size_t i = 0; text && bools[i]; i++)
        if (!strcasecmp(t, bools[i]))
            return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL,
                                   "%s: %s is a boolean to YAML 1.1 (Ansible) and a string to "
                                   "YAML 1.2; quote it (\"%s\") if it is a name",
                                   name, t, t);
    return 0;
}

static int s_yaml11_check(s_ctx_t *c, int id, const yaml_node_t *n)
{
    const char *name = s_var_names[id];
    bool numeric = id == V_PORT || id == V_MAX_JOBS || id == V_PRIORITY;
    bool text = id == V_ANSIBLE_HOST || id == V_ENDPOINT || id == V_PLATFORMS;
    if (n->type == YAML_SCALAR_NODE)
        return s_yaml11_scalar(c, name, n, numeric, text || id == V_LABELS);
    int rc = 0;
    if (id == V_PLATFORMS && n->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             rc == 0 && it < n->data.sequence.items.top; it++)
            rc = s_yaml11_scalar(c, name, yaml_document_get_node(c->doc, *it), false, true);
    if (id == V_LABELS && n->type == YAML_MAPPING_NODE)
        /* a label is a string: both rules, on keys and values */
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             rc == 0 && p < n->data.mapping.pairs.top; p++) {
            rc = s_yaml11_scalar(c, name, yaml_document_get_node(c->doc, p->key), true, true);
            if (rc == 0)
                rc = s_yaml11_scalar(c, name, yaml_document_get_node(c->doc, p->value), true, true);
        }
    return rc;
}

/* Every variable archfarm reads for one host, and the document it is in. */
typedef struct {
    yaml_node_t *node[V_COUNT];
    af_yamldoc_t *yd[V_COUNT];
} s_slots_t;

static void s_slots_apply(s_slots_t *s, const s_vars_t *vs)
{
    for (size_t j = 0; j < vs->n; j++) {
        s->node[vs->v[j].id] = vs->v[j].node;
        s->yd[vs->v[j].id] = vs->v[j].yd;
    }
}

/* The host's variables with Ansible's precedence (VariableManager): the
 * inventory file's group vars (all first, then by depth, priority, name),
 * then group_vars/ files in the same order, then the inventory file's host
 * vars, then host_vars/. An explicit null resets to the default. */
static int s_slots(s_ctx_t *c, size_t hi, s_slots_t *s)
{
    const s_host_t *h = &c->hosts[hi];
    s_idx_list_t groups = {0};
    int rc = 0;
    memset(s, 0, sizeof *s);
    size_t all = s_index_get(&c->group_index, "all");
    if (all != S_NONE && s_host_groups(c, hi, all, &groups))
        rc = af_yamldoc_nomem(c->yd);
    for (size_t i = 0; rc == 0 && i < h->groups.n; i++)
        if (s_host_groups(c, hi, h->groups.v[i], &groups))
            rc = af_yamldoc_nomem(c->yd);
    if (rc == 0) {
        qsort_r(groups.v, groups.n, sizeof *groups.v, s_group_cmp, c->groups);
        for (size_t i = 0; i < groups.n; i++)
            s_slots_apply(s, &c->groups[groups.v[i]].vars);
        for (size_t i = 0; i < groups.n; i++)
            s_slots_apply(s, &c->groups[groups.v[i]].file_vars);
        s_slots_apply(s, &h->vars);
        s_slots_apply(s, &h->file_vars);
        for (int id = 0; id < V_COUNT; id++)
            if (af_yamldoc_is_null(s->node[id]))
                s->node[id] = NULL;
    }
    free(groups.v);
    return rc;
}

/* Variable ID's node, with errors from here on reported in its own file;
 * NULL when unset. */
static yaml_node_t *s_take(s_ctx_t *c, const s_slots_t *s, int id)
{
    if (!s->node[id])
        return NULL;
    c->yd = s->yd[id];
    c->doc = af_yamldoc_document(c->yd);
    return s->node[id];
}

/* Errors about the host itself are at its declaration in the inventory. */
static void s_back_to_main(s_ctx_t *c)
{
    c->yd = c->main;
    c->doc = af_yamldoc_document(c->main);
}

/* archfarm_insecure, archfarm_max_jobs, archfarm_priority. */
static int s_resolve_scalars(s_ctx_t *c, const s_slots_t *s, af_node_t *node)
{
    char show[96];
    yaml_node_t *n;
    long v;
    if ((n = s_take(c, s, V_INSECURE)) && !s_bool_value(n, &node->insecure))
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL,
                               "archfarm_insecure: expected true or false, got %s",
                               s_show(n, show, sizeof show));
    if ((n = s_take(c, s, V_MAX_JOBS))) {
        if (!s_int_value(n, &v) || v < 1)
            return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL,
                                   "archfarm_max_jobs: expected an integer >= 1, got %s",
                                   s_show(n, show, sizeof show));
        if (v > AF_INVENTORY_MAX_JOBS)
            return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL,
                                   "archfarm_max_jobs: expected an integer <= %d, got %s",
                                   AF_INVENTORY_MAX_JOBS, s_show(n, show, sizeof show));
        node->max_jobs = (int)v;
    }
    if ((n = s_take(c, s, V_PRIORITY))) {
        if (!s_int_value(n, &v))
            return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL,
                                   "archfarm_priority: expected an integer, got %s",
                                   s_show(n, show, sizeof show));
        node->priority = (int)v;
    }
    return 0;
}

/* archfarm_server_key, else known_agents/NAME.key (CURVE hosts). */
static int s_resolve_key(s_ctx_t *c, const s_host_t *h, const s_slots_t *s, af_node_t *node)
{
    char show[96];
    yaml_node_t *n = s_take(c, s, V_SERVER_KEY);
    if (n) {
        /* not s_string(): Z85 holds '{' and '%', so a real key can contain
         * "{{" or "{%" and must not be taken for a Jinja2 template */
        const char *key = n->type == YAML_SCALAR_NODE ? af_yamldoc_text(n) : "";
        static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  ".-:+=^!/*?&<>()[]{}@%$#";
        if (n->type != YAML_SCALAR_NODE || n->data.scalar.length != 40 || strlen(key) != 40 ||
            strspn(key, z85) != 40)
            return af_yamldoc_fail(
                c->yd, n, AF_ERR_INVAL,
                "archfarm_server_key: expected a 40-character Z85 CURVE public key, "
                "got %s",
                s_show(n, show, sizeof show));
        return (node->server_key = strdup(key)) ? 0 : af_yamldoc_nomem(c->yd);
    }
    if (node->insecure)
        return 0;
    s_back_to_main(c);
    int rc = s_known_key(c, h->name, &node->server_key);
    /* first deploy: the role creates the key and fills the store; the
     * coordinator refuses to connect to this node until then */
    if (!rc && !node->server_key)
        rc = s_warn(c,
                    "%s:%zu:%zu: warning: host \"%s\" has no archfarm_server_key and no "
                    "known_agents/%s.key beside the inventory yet: unreachable until the "
                    "Ansible role has created and collected its key",
                    af_yamldoc_name(c->yd), h->mark.line + 1, h->mark.column + 1, h->name, h->name);
    return rc;
}

/* archfarm_endpoint, else tcp://ansible_host:archfarm_port. */
static int s_resolve_endpoint(s_ctx_t *c, const s_host_t *h, const s_slots_t *s, af_node_t *node)
{
    char show[96], ep[AF_MAX_STR + 64];
    yaml_node_t *n;
    int rc;
    if ((n = s_take(c, s, V_ENDPOINT))) {
        const char *e;
        if ((rc = s_string(c, "archfarm_endpoint", n, AF_MAX_STR, &e)))
            return rc;
        if (!s_endpoint_ok(e))
            return af_yamldoc_fail(
                c->yd, n, AF_ERR_INVAL,
                "archfarm_endpoint: expected tcp://HOST:PORT or ipc://PATH, got %s",
                s_show(n, show, sizeof show));
        snprintf(ep, sizeof ep, "%s", e);
    } else {
        long port = AF_DEFAULT_PORT;
        if ((n = s_take(c, s, V_PORT)) && (!s_int_value(n, &port) || port < 1 || port > 65535))
            return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL,
                                   "archfarm_port: expected a port number from 1 to 65535, got %s",
                                   s_show(n, show, sizeof show));
        const char *addr = h->name;
        if ((n = s_take(c, s, V_ANSIBLE_HOST))) {
            if ((rc = s_string(c, "ansible_host", n, 255, &addr)))
                return rc;
            bool ok = *addr != '\0';
            for (const char *p = addr; *p && ok; p++)
                ok = !isspace((unsigned char)*p) && !iscntrl((unsigned char)*p) && *p != '/';
            if (!ok)
                return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL, "ansible_host: invalid address %s",
                                       s_show(n, show, sizeof show));
        }
        bool v6 = strchr(addr, ':') && addr[0] != '[';
        snprintf(ep, sizeof ep, "tcp://%s%s%s:%ld", v6 ? "[" : "", addr, v6 ? "]" : "", port);
    }
    return (node->endpoint = strdup(ep)) ? 0 : af_yamldoc_nomem(c->yd);
}

/* Host HI as an archfarm node, every bad value at its FILE:LINE:COL. */
static int s_resolve(s_ctx_t *c, size_t hi, af_node_t *node)
{
    s_host_t *h = &c->hosts[hi];
    s_slots_t s;
    yaml_node_t *n;
    int rc = s_slots(c, hi, &s);
    for (int id = 0; rc == 0 && id < V_COUNT; id++)
        if ((n = s_take(c, &s, id)))
            rc = s_yaml11_check(c, id, n);
    s_back_to_main(c);
    if (rc)
        return rc;
    if (!(node->name = strdup(h->name)))
        return af_yamldoc_nomem(c->yd);
    node->line = (int)h->mark.line + 1;
    node->column = (int)h->mark.column + 1;
    node->max_jobs = 1;
    if ((rc = s_resolve_scalars(c, &s, node)) == 0) {
        s_back_to_main(c);
        if (!(n = s_take(c, &s, V_PLATFORMS)))
            rc = af_yamldoc_fail_at(c->yd, &h->mark, AF_ERR_INVAL,
                                    "host \"%s\": archfarm_platforms is required", h->name);
        else
            rc = s_platforms(c, n, node);
    }
    if (rc == 0)
        rc = s_resolve_key(c, h, &s, node);
    if (rc == 0 && (n = s_take(c, &s, V_LABELS)))
        rc = s_labels(c, n, node);
    if (rc == 0)
        rc = s_resolve_endpoint(c, h, &s, node);
    s_back_to_main(c);
    return rc;
}

/* ---- group_vars/ and host_vars/ ------------------------------------------ */

/* As Ansible's host_group_vars plugin reads them, beside the inventory
 * file: for a group or host NAME the first of NAME, NAME.yml, NAME.yaml,
 * NAME.json that exists; when it is a directory, every file below it
 * (sorted by name, recursively) that has no extension or one of those,
 * hidden files, "~" backups and directories with an extension skipped.
 * Each file is a mapping of variables, read with the inventory's limits
 * and checks (YAML 1.1 values, misspelled archfarm_* names, duplicates);
 * later files win. */
#define S_MAX_VARS_FILES 4096
#define S_MAX_VARS_DEPTH 8
static const af_yamldoc_limits_t s_vars_limits = {.max_bytes = AF_INVENTORY_MAX_BYTES,
                                                  .max_depth = 4 * AF_INVENTORY_MAX_DEPTH,
                                                  .kind = "vars file",
                                                  .single = "a vars file"};
static const char *const s_vars_exts[] = {"", ".yml", ".yaml", ".json"};

/* Reads the vars file PATH into VARS. */
static int s_vars_file(s_ctx_t *c, const char *path, s_vars_t *vars)
{
    char show[96];
    if (c->n_docs >= S_MAX_VARS_FILES)
        return af_err_set(c->err, AF_ERR_TOOBIG,
                          "%s: more than %d group_vars/host_vars files (the limit)", path,
                          S_MAX_VARS_FILES);
    if (s_grow((void **)&c->docs, &c->cap_docs, c->n_docs, sizeof *c->docs))
        return af_err_set(c->err, AF_ERR_NOMEM, "%s: out of memory", path);
    af_yamldoc_t *yd = af_yamldoc_load(path, &s_vars_limits, c->err);
    if (!yd)
        return c->err && c->err->code ? c->err->code : AF_ERR_PARSE;
    c->docs[c->n_docs++] = yd;
    yaml_node_t *root = af_yamldoc_root(yd);
    if (!root || af_yamldoc_is_null(root))
        return 0; /* an empty file sets nothing, as in Ansible */
    if (root->type != YAML_MAPPING_NODE)
        return af_yamldoc_fail(yd, root, AF_ERR_PARSE, "expected a mapping of variables, got %s",
                               s_show(root, show, sizeof show));
    af_yamldoc_t *was = c->yd;
    c->yd = yd;
    c->doc = af_yamldoc_document(yd);
    int rc = s_collect_vars(c, root, vars);
    c->yd = was;
    c->doc = af_yamldoc_document(was);
    return rc;
}

static int s_name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static bool s_vars_ext_ok(const char *ext)
{
    for (size_t i = 0; i < sizeof s_vars_exts / sizeof *s_vars_exts; i++)
        if (!strcmp(ext, s_vars_exts[i]))
            return true;
    return false;
}

/* Every vars file below DIR, in Ansible's order. */
static int s_vars_dir(s_ctx_t *c, const char *dir, s_vars_t *vars, int depth)
{
    if (depth > S_MAX_VARS_DEPTH)
        return af_err_set(c->err, AF_ERR_TOOBIG, "%s: vars directories nested deeper than %d", dir,
                          S_MAX_VARS_DEPTH);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, s_name_cmp);
    if (n < 0)
        return af_err_set(c->err, AF_ERR_IO, "%s: %s", dir, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const char *nm = names[i]->d_name;
        size_t len = strlen(nm);
        if (nm[0] == '.' || nm[len - 1] == '~')
            continue;
        const char *dot = strrchr(nm, '.');
        const char *ext = dot ? dot : "";
        char path[PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, nm) >= (int)sizeof path ||
            stat(path, &st) < 0)
            continue; /* a dangling link: Ansible skips it too */
        if (S_ISDIR(st.st_mode) && !*ext)
            rc = s_vars_dir(c, path, vars, depth + 1);
        else if (S_ISREG(st.st_mode) && s_vars_ext_ok(ext))
            rc = s_vars_file(c, path, vars);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* The vars of group or host NAME from SUB ("group_vars" or "host_vars"). */
static int s_entity_vars(s_ctx_t *c, const char *sub, const char *name, s_vars_t *vars)
{
    if (!c->vars_base || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
        return 0;
    for (size_t i = 0; i < sizeof s_vars_exts / sizeof *s_vars_exts; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s/%s%s", c->vars_base, sub, name, s_vars_exts[i]) >=
                (int)sizeof path ||
            stat(path, &st) < 0)
            continue;
        return S_ISDIR(st.st_mode) ? s_vars_dir(c, path, vars, 0) : s_vars_file(c, path, vars);
    }
    return 0;
}

/* group_vars/ and host_vars/ for every group and host. */
static int s_vars_dirs(s_ctx_t *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->n_groups && !rc; i++)
        rc = s_entity_vars(c, "group_vars", c->groups[i].name, &c->groups[i].file_vars);
    for (size_t i = 0; i < c->n_hosts && !rc; i++)
        rc = s_entity_vars(c, "host_vars", c->hosts[i].name, &c->hosts[i].file_vars);
    return rc;
}

/* ---- load ------------------------------------------------------------------ */

static void s_ctx_free(s_ctx_t *c)
{
    for (size_t i = 0; i < c->n_docs; i++)
        af_yamldoc_destroy(&c->docs[i]);
    free(c->docs);
    for (size_t i = 0; i < c->n_groups; i++) {
        free(c->groups[i].file_vars.v);
        free(c->groups[i].vars.v);
        free(c->groups[i].children.v);
        free(c->groups[i].parents.v);
    }
    free(c->groups);
    for (size_t i = 0; i < c->n_hosts; i++) {
        free(c->hosts[i].name);
        free(c->hosts[i].vars.v);
        free(c->hosts[i].file_vars.v);
        free(c->hosts[i].groups.v);
    }
    free(c->hosts);
    s_index_free(&c->group_index);
    s_index_free(&c->host_index);
}

static void s_node_free(af_node_t *n)
{
    free(n->name);
    free(n->endpoint);
    free(n->platforms);
    free(n->server_key);
    for (size_t i = 0; i < n->n_labels; i++) {
        free(n->labels[i].key);
        free(n->labels[i].value);
    }
    free(n->labels);
}

/* Builds the inventory from the loaded document in C. */
static int s_build(s_ctx_t *c, af_inventory_t *inv)
{
    char show[96];
    yaml_node_t *root = af_yamldoc_root(c->yd);
    if (!root || af_yamldoc_is_null(root))
        return af_yamldoc_fail(c->yd, NULL, AF_ERR_PARSE,
                               "empty inventory (expected a mapping of groups, such as "
                               "all: or archfarm_agents:)");
    if (root->type != YAML_MAPPING_NODE)
        return af_yamldoc_fail(c->yd, root, AF_ERR_PARSE, "expected a mapping of groups, got %s",
                               s_show(root, show, sizeof show));
    s_pairs_t top;
    int rc = s_pairs(c, root, &top);
    for (size_t i = 0; rc == 0 && i < top.n; i++)
        rc = s_group(c, top.v[i].key, top.v[i].value, S_NONE, 1);
    free(top.v);
    for (size_t i = 0; rc == 0 && i < c->n_groups; i++)
        rc = s_depth(c, i, 0);
    if (rc == 0)
        rc = s_vars_dirs(c);
    if (rc)
        return rc;

    size_t agents = s_index_get(&c->group_index, AF_INVENTORY_GROUP);
    if (agents == S_NONE)
        return 0;
    s_mark_agents(c, agents);
    size_t members = 0;
    for (size_t hi = 0; hi < c->n_hosts; hi++)
        for (size_t j = 0; j < c->hosts[hi].groups.n; j++)
            if (c->groups[c->hosts[hi].groups.v[j]].agent) {
                members++;
                break;
            }
    if (!members)
        return 0;
    inv->nodes = calloc(members, sizeof *inv->nodes);
    if (!inv->nodes)
        return af_yamldoc_nomem(c->yd);
    for (size_t hi = 0; hi < c->n_hosts; hi++) {
        bool member = false;
        for (size_t j = 0; j < c->hosts[hi].groups.n && !member; j++)
            member = c->groups[c->hosts[hi].groups.v[j]].agent;
        if (!member)
            continue;
        rc = s_resolve(c, hi, &inv->nodes[inv->n_nodes++]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Builds the inventory from *YD_P, which it destroys. NULL when *YD_P is
 * NULL (its error is already set) or on error. */
static af_inventory_t *s_inventory_new(af_yamldoc_t **yd_p, const char *known_dir,
                                       const char *vars_base, af_err_t *err)
{
    if (!*yd_p)
        return NULL;
    af_inventory_t *inv = calloc(1, sizeof *inv);
    s_ctx_t c = {.yd = *yd_p,
                 .main = *yd_p,
                 .vars_base = vars_base,
                 .doc = af_yamldoc_document(*yd_p),
                 .budget = S_BUDGET,
                 .inv = inv,
                 .known_dir = known_dir,
                 .err = err};
    int rc = inv ? s_build(&c, inv) : af_yamldoc_nomem(c.yd);
    s_ctx_free(&c);
    af_yamldoc_destroy(yd_p);
    if (rc)
        af_inventory_destroy(&inv);
    return inv;
}

af_inventory_t *af_inventory_load_buffer(const char *name, const char *data, size_t len,
                                         af_err_t *err)
{
    af_yamldoc_t *yd = af_yamldoc_new(name ? name : "inventory", data, len, &s_limits, err);
    return s_inventory_new(&yd, NULL, NULL, err);
}

af_inventory_t *af_inventory_load(const char *path, af_err_t *err)
{
    af_yamldoc_t *yd = af_yamldoc_load(path, &s_limits, err);
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int n = slash ? (int)(slash - path) : 1;
    if (snprintf(dir, sizeof dir, "%.*s/known_agents", n, slash ? (n ? path : "/") : ".") >=
        (int)sizeof dir)
        dir[0] = '\0';
    /* group_vars/ and host_vars/ beside a file; a pipe (-i <(...)) has none */
    char base[4096];
    struct stat st;
    bool file = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    if (!file ||
        snprintf(base, sizeof base, "%.*s", n, slash ? (n ? path : "/") : ".") >= (int)sizeof base)
        base[0] = '\0';
    return s_inventory_new(&yd, dir[0] ? dir : NULL, base[0] ? base : NULL, err);
}
void af_inventory_destroy(af_inventory_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_inventory_t *self = *self_p;
    for (size_t i = 0; i < self->n_nodes; i++)
        s_node_free(&self->nodes[i]);
    free(self->nodes);
    for (size_t i = 0; i < self->warnings.n; i++)
        free(self->warnings.v[i]);
    free(self->warnings.v);
    free(self);
    *self_p = NULL;
}

size_t af_inventory_warning_count(const af_inventory_t *self)
{
    return self ? self->warnings.n : 0;
}

const char *af_inventory_warning(const af_inventory_t *self, size_t i)
{
    return self && i < self->warnings.n ? self->warnings.v[i] : NULL;
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
    for (size_t i = 0; self && name && i < self->n_nodes; i++)
        if (!strcmp(self->nodes[i].name, name))
            return &self->nodes[i];
    return NULL;
}

bool af_node_serves(const af_node_t *node, const af_platform_t *p)
{
    for (size_t i = 0; node && p && i < node->n_platforms; i++)
        if (af_platform_equal(&node->platforms[i], p))
            return true;
    return false;
}

const char *af_node_label(const af_node_t *node, const char *key)
{
    for (size_t i = 0; node && key && i < node->n_labels; i++)
        if (!strcmp(node->labels[i].key, key))
            return node->labels[i].value;
    return NULL;
}
