/* recipe.c -- archfarm.yaml, the native recipe.
 *
 * The agent parses ctx/archfarm.yaml of every native BUILD with this, and
 * the coordinator may parse it up front to fail early. The schema is small
 * and closed: a typo must not silently build something else, so unknown
 * keys, duplicate keys, wrong types and unsafe paths are all errors with
 * "FILE:LINE:COL: message". libyaml's document API does the YAML (aliases
 * are shared nodes, never expanded copies); this file only walks the node
 * graph, which is acyclic where it matters because every value we accept is
 * a scalar or a flat list/mapping of scalars. */
#include "recipe.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "dockerignore.h"
#include "limits.h"
#include "ref.h"
#include "yamldoc.h"

/* YAML nesting: the schema needs 4 levels (image > copy > entry > key). */
static const af_yamldoc_limits_t s_limits = {
    .max_bytes = AF_RECIPE_MAX_BYTES, .max_depth = 16, .kind = "recipe", .single = "a recipe"};

typedef struct {
    af_yamldoc_t *yd;     /* errors go through it */
    yaml_document_t *doc; /* yd's document */
} s_ctx_t;

/* What NODE is, for "expected X, got Y" messages. */
static const char *s_kind(const yaml_node_t *n)
{
    if (!n)
        return "nothing";
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    return af_yamldoc_is_null(n) ? "null" : "a string";
}

/* A printable, bounded copy of a scalar for messages. */
static const char *s_show(const yaml_node_t *n, char *buf, size_t len)
{
    const char *s = af_yamldoc_text(n);
    size_t i = 0;
    for (; i < n->data.scalar.length && i < 64 && i + 4 < len; i++)
        buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    if (i < n->data.scalar.length && i + 4 < len) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

#define S_NULL_OK 1  /* null reads as "" */
#define S_NONEMPTY 2 /* "" is an error */

/* NODE as an owned string: a scalar (numbers and booleans as written) of
 * at most MAX bytes without NUL bytes. FLAGS: S_NULL_OK, S_NONEMPTY. WHAT
 * names the key for messages. */
static int s_scalar(s_ctx_t *c, const yaml_node_t *n, const char *what, size_t max, int flags,
                    char **out)
{
    if (!n || n->type != YAML_SCALAR_NODE || (!(flags & S_NULL_OK) && af_yamldoc_is_null(n)))
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL, "%s: expected a string, got %s", what,
                               s_kind(n));
    if ((flags & S_NONEMPTY) && !n->data.scalar.length)
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL, "%s: must not be empty", what);
    if (strlen(af_yamldoc_text(n)) != n->data.scalar.length)
        return af_yamldoc_fail(c->yd, n, AF_ERR_INVAL, "%s: contains a NUL byte", what);
    if (n->data.scalar.length > max)
        return af_yamldoc_fail(c->yd, n, AF_ERR_TOOBIG, "%s: longer than %zu bytes", what, max);
    *out = strdup(af_yamldoc_is_null(n) ? "" : af_yamldoc_text(n));
    return *out ? 0 : af_yamldoc_nomem(c->yd);
}

/* Iterates the pairs of a mapping, rejecting non-scalar and duplicate keys
 * and checking each key against ALLOWED (NULL: any key). Calls FN with the
 * key text and the value. */
typedef int (*s_pair_fn)(s_ctx_t *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg);

static int s_mapping(s_ctx_t *c, yaml_node_t *map, const char *what, const char *const *allowed,
                     const char *expected, s_pair_fn fn, void *arg)
{
    char show[80];
    if (map->type != YAML_MAPPING_NODE)
        return af_yamldoc_fail(c->yd, map, AF_ERR_INVAL, "%s: expected a mapping, got %s", what,
                               s_kind(map));
    yaml_node_pair_t *p, *q;
    if (map->data.mapping.pairs.top - map->data.mapping.pairs.start > AF_RECIPE_MAX_ENTRIES)
        return af_yamldoc_fail(c->yd, map, AF_ERR_TOOBIG, "%s: more than %d entries", what,
                               AF_RECIPE_MAX_ENTRIES);
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (!k || !v)
            return af_yamldoc_fail(c->yd, map, AF_ERR_PARSE, "%s: malformed mapping", what);
        if (k->type != YAML_SCALAR_NODE)
            return af_yamldoc_fail(c->yd, k, AF_ERR_INVAL, "%s: expected a string key, got %s",
                                   what, s_kind(k));
        if (strlen(af_yamldoc_text(k)) != k->data.scalar.length)
            return af_yamldoc_fail(c->yd, k, AF_ERR_INVAL, "%s: key contains a NUL byte", what);
        if (k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !strcmp(af_yamldoc_text(k), "<<"))
            return af_yamldoc_fail(c->yd, k, AF_ERR_INVAL,
                                   "%s: merge keys (<<) are not supported in recipes", what);
        if (allowed) {
            bool ok = false;
            for (size_t i = 0; allowed[i] && !ok; i++)
                ok = !strcmp(af_yamldoc_text(k), allowed[i]);
            if (!ok)
                return af_yamldoc_fail(c->yd, k, AF_ERR_INVAL,
                                       "%s: unknown key \"%s\" (expected %s)", what,
                                       s_show(k, show, sizeof show), expected);
        }
        for (q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE &&
                !strcmp(af_yamldoc_text(k2), af_yamldoc_text(k)))
                return af_yamldoc_fail(c->yd, k, AF_ERR_INVAL, "%s: duplicate key \"%s\"", what,
                                       s_show(k, show, sizeof show));
        }
        int rc = fn(c, af_yamldoc_text(k), k, v, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- maps of strings: env, labels ------------------------------------------ */

typedef struct {
    af_kv_t **kv;
    size_t *n;
    const char *what;
    bool env; /* keys must be environment variable names */
} s_kv_arg_t;

static int s_kv_pair(s_ctx_t *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    s_kv_arg_t *a = arg;
    char show[80];
    if (!*key)
        return af_yamldoc_fail(c->yd, k, AF_ERR_INVAL, "%s: empty key", a->what);
    if (a->env) {
        bool ok = isalpha((unsigned char)key[0]) || key[0] == '_';
        for (const char *p = key; *p && ok; p++)
            ok = isalnum((unsigned char)*p) || *p == '_';
        if (!ok)
            return af_yamldoc_fail(c->yd, k, AF_ERR_INVAL,
                                   "%s: \"%s\" is not a valid variable name", a->what,
                                   s_show(k, show, sizeof show));
    }
    char what[64];
    snprintf(what, sizeof what, "%s.%s", a->what, key);
    char *kd = NULL, *vd = NULL;
    int rc = s_scalar(c, k, a->what, AF_MAX_STR, 0, &kd);
    if (rc == 0)
        rc = s_scalar(c, v, what, AF_MAX_STR * 4, S_NULL_OK, &vd);
    if (rc == 0) {
        af_kv_t *nkv = realloc(*a->kv, (*a->n + 1) * sizeof **a->kv);
        if (!nkv) {
            rc = af_yamldoc_nomem(c->yd);
        } else {
            *a->kv = nkv;
            nkv[(*a->n)++] = (af_kv_t){kd, vd};
            return 0;
        }
    }
    free(kd);
    free(vd);
    return rc;
}

static int s_kv(s_ctx_t *c, yaml_node_t *v, const char *what, bool env, af_kv_t **kv, size_t *n)
{
    if (af_yamldoc_is_null(v))
        return 0;
    s_kv_arg_t a = {kv, n, what, env};
    return s_mapping(c, v, what, NULL, NULL, s_kv_pair, &a);
}

/* ---- argv lists: entrypoint, cmd ------------------------------------------- */

static int s_argv(s_ctx_t *c, yaml_node_t *v, const char *what, char ***out, size_t *n, bool *has)
{
    if (af_yamldoc_is_null(v))
        return 0;
    *has = true;
    if (v->type == YAML_SCALAR_NODE) {
        /* the shell form, as Docker's ENTRYPOINT/CMD string */
        *out = calloc(3, sizeof **out);
        if (!*out)
            return af_yamldoc_nomem(c->yd);
        int rc = s_scalar(c, v, what, AF_MAX_STR * 4, S_NONEMPTY, &(*out)[2]);
        if (rc)
            return rc;
        (*out)[0] = strdup("/bin/sh");
        (*out)[1] = strdup("-c");
        *n = 3;
        return (*out)[0] && (*out)[1] ? 0 : af_yamldoc_nomem(c->yd);
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return af_yamldoc_fail(c->yd, v, AF_ERR_INVAL,
                               "%s: expected a list of strings or a string, got %s", what,
                               s_kind(v));
    size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (count > AF_RECIPE_MAX_ENTRIES)
        return af_yamldoc_fail(c->yd, v, AF_ERR_TOOBIG, "%s: more than %d items", what,
                               AF_RECIPE_MAX_ENTRIES);
    *out = calloc(count + 1, sizeof **out);
    if (!*out)
        return af_yamldoc_nomem(c->yd);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        int rc = s_scalar(c, item, what, AF_MAX_STR * 4, 0, &(*out)[i]);
        if (rc)
            return rc;
        *n = i + 1;
    }
    return 0;
}

/* ---- copy ------------------------------------------------------------------ */

/* True when PATH has a ".." component. */
static bool s_has_dotdot(const char *path)
{
    for (const char *p = path; *p;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

typedef struct {
    af_recipe_copy_t *entry;
} s_copy_arg_t;

static int s_copy_pair(s_ctx_t *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    af_recipe_copy_t *e = ((s_copy_arg_t *)arg)->entry;
    char show[80];
    bool src = !strcmp(key, "src");
    const char *what = src ? "image.copy.src" : "image.copy.dest";
    char *s = NULL;
    int rc = s_scalar(c, v, what, AF_CONTEXT_MAX_PATH, S_NONEMPTY, &s);
    if (rc)
        return rc;
    if (src && s[0] == '/')
        rc = af_yamldoc_fail(c->yd, v, AF_ERR_UNSAFE,
                             "%s: \"%s\" must be relative to the context, not absolute", what,
                             s_show(v, show, sizeof show));
    else if (!src && s[0] != '/')
        rc = af_yamldoc_fail(c->yd, v, AF_ERR_INVAL,
                             "%s: \"%s\" must be an absolute path in the image", what,
                             s_show(v, show, sizeof show));
    else if (s_has_dotdot(s))
        rc = af_yamldoc_fail(c->yd, v, AF_ERR_UNSAFE, "%s: \"%s\" must not contain \"..\"", what,
                             s_show(v, show, sizeof show));
    if (rc) {
        free(s);
        return rc;
    }
    if (src)
        e->src = s;
    else
        e->dest = s;
    return 0;
}

static int s_copy(s_ctx_t *c, yaml_node_t *v, af_recipe_t *r)
{
    static const char *const keys[] = {"src", "dest", NULL};
    if (af_yamldoc_is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return af_yamldoc_fail(c->yd, v, AF_ERR_INVAL,
                               "image.copy: expected a list of {src, dest}, got %s", s_kind(v));
    size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (count > AF_RECIPE_MAX_COPY)
        return af_yamldoc_fail(c->yd, v, AF_ERR_TOOBIG, "image.copy: more than %d entries",
                               AF_RECIPE_MAX_COPY);
    r->copy = calloc(count ? count : 1, sizeof *r->copy);
    if (!r->copy)
        return af_yamldoc_nomem(c->yd);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        af_recipe_copy_t *e = &r->copy[i];
        r->n_copy = i + 1;
        if (!item || item->type != YAML_MAPPING_NODE)
            return af_yamldoc_fail(c->yd, item ? item : v, AF_ERR_INVAL,
                                   "image.copy: expected a mapping {src, dest}, got %s",
                                   s_kind(item));
        s_copy_arg_t a = {e};
        int rc = s_mapping(c, item, "image.copy", keys, "src or dest", s_copy_pair, &a);
        if (rc)
            return rc;
        if (!e->src || !e->dest)
            return af_yamldoc_fail(c->yd, item, AF_ERR_INVAL,
                                   "image.copy: entry needs both src and dest");
    }
    return 0;
}

/* ---- inputs ------------------------------------------------------------------ */

static const char *const s_input_vars[] = {"TARGETOS", "TARGETARCH", "TARGETVARIANT",
                                           "TARGETPLATFORM", NULL};

/* The variable named by the N bytes at NAME: its index in s_input_vars, -1. */
static int s_input_var(const char *name, size_t n)
{
    for (int i = 0; s_input_vars[i]; i++)
        if (strlen(s_input_vars[i]) == n && !memcmp(s_input_vars[i], name, n))
            return i;
    return -1;
}

/* One build.inputs pattern: relative, no "..", only known ${VAR}s. */
static int s_input_check(s_ctx_t *c, yaml_node_t *v, const char *s)
{
    char show[80];
    if (s[0] == '/')
        return af_yamldoc_fail(c->yd, v, AF_ERR_UNSAFE,
                               "build.inputs: \"%s\" must be relative to the context, not absolute",
                               s_show(v, show, sizeof show));
    if (s_has_dotdot(s))
        return af_yamldoc_fail(c->yd, v, AF_ERR_UNSAFE,
                               "build.inputs: \"%s\" must not contain \"..\"",
                               s_show(v, show, sizeof show));
    if (s[0] == '!' || strpbrk(s, "\r\n"))
        return af_yamldoc_fail(c->yd, v, AF_ERR_INVAL,
                               "build.inputs: \"%s\": one pattern per item, and none starting "
                               "with '!' (to leave files out, use .dockerignore)",
                               s_show(v, show, sizeof show));
    af_dockerignore_t *m = af_dockerignore_new();
    af_err_t perr;
    af_err_clear(&perr);
    int prc = m ? af_dockerignore_parse(m, s, strlen(s), "pattern", &perr) : AF_ERR_NOMEM;
    af_dockerignore_destroy(&m);
    if (prc == AF_ERR_NOMEM)
        return af_yamldoc_nomem(c->yd);
    if (prc)
        return af_yamldoc_fail(c->yd, v, AF_ERR_INVAL, "build.inputs: \"%s\": %s",
                               s_show(v, show, sizeof show), perr.msg);
    for (const char *p = strstr(s, "${"); p; p = strstr(p + 2, "${")) {
        const char *e = strchr(p + 2, '}');
        if (!e)
            return af_yamldoc_fail(c->yd, v, AF_ERR_INVAL, "build.inputs: \"%s\": unterminated ${",
                                   s_show(v, show, sizeof show));
        size_t len = (size_t)(e - p - 2);
        if (s_input_var(p + 2, len) < 0)
            return af_yamldoc_fail(c->yd, v, AF_ERR_INVAL,
                                   "build.inputs: \"%s\": unknown variable ${%.*s} (known: "
                                   "TARGETOS, TARGETARCH, TARGETVARIANT, TARGETPLATFORM)",
                                   s_show(v, show, sizeof show), len > 64 ? 64 : (int)len, p + 2);
    }
    return 0;
}

static int s_inputs(s_ctx_t *c, yaml_node_t *v, af_recipe_t *r)
{
    if (af_yamldoc_is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return af_yamldoc_fail(c->yd, v, AF_ERR_INVAL,
                               "build.inputs: expected a list of patterns, got %s", s_kind(v));
    size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (count > AF_RECIPE_MAX_ENTRIES)
        return af_yamldoc_fail(c->yd, v, AF_ERR_TOOBIG, "build.inputs: more than %d patterns",
                               AF_RECIPE_MAX_ENTRIES);
    r->has_inputs = true;
    if (!(r->inputs = calloc(count + 1, sizeof *r->inputs)))
        return af_yamldoc_nomem(c->yd);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        int rc = s_scalar(c, item, "build.inputs", AF_CONTEXT_MAX_PATH, S_NONEMPTY, &r->inputs[i]);
        if (rc)
            return rc;
        r->n_inputs = i + 1;
        if ((rc = s_input_check(c, item, r->inputs[i])))
            return rc;
    }
    return 0;
}

/* PATTERN with the ${VAR}s replaced by VALS (s_input_vars order). */
static char *s_expand(const char *pattern, const char *const vals[4])
{
    size_t cap = strlen(pattern) + 1;
    for (const char *p = strstr(pattern, "${"); p; p = strstr(p + 2, "${"))
        cap += 3 * AF_MAX_NAME + 4;
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    for (const char *p = pattern; *p;) {
        const char *e = p[0] == '$' && p[1] == '{' ? strchr(p + 2, '}') : NULL;
        int k = e ? s_input_var(p + 2, (size_t)(e - p - 2)) : -1;
        if (k < 0) {
            *o++ = *p++;
            continue;
        }
        size_t n = strlen(vals[k]);
        memcpy(o, vals[k], n);
        o += n;
        p = e + 1;
    }
    *o = '\0';
    return out;
}

/* PATH as a pattern that matches only itself (dockerignore.h syntax). */
static char *s_literal(const char *path)
{
    char *out = malloc(2 * strlen(path) + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = path; *p; p++) {
        if (strchr("*?[]\\!#", *p))
            *o++ = '\\';
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

int af_recipe_inputs_for(const af_recipe_t *r, const char *platform_os, const char *arch,
                         const char *variant, const char *recipe_path, char ***out, size_t *n,
                         af_err_t *err)
{
    char plat[3 * AF_MAX_NAME];
    snprintf(plat, sizeof plat, "%s/%s%s%s", platform_os, arch, *variant ? "/" : "", variant);
    const char *const vals[4] = {platform_os, arch, variant, plat};
    size_t total = r->n_inputs + r->n_copy + 1;
    char **v = calloc(total + 1, sizeof *v);
    if (!v)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < r->n_inputs; i++, k++)
        if (!(v[k] = s_expand(r->inputs[i], vals)))
            break;
    for (size_t i = 0; k == r->n_inputs + i && i < r->n_copy; i++, k++)
        if (!(v[k] = s_literal(r->copy[i].src)))
            break;
    if (k == total - 1 && (v[k] = s_literal(recipe_path)))
        k++;
    if (k < total) {
        for (size_t i = 0; i < k; i++)
            free(v[i]);
        free(v);
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    }
    *out = v;
    *n = total;
    return 0;
}

/* ---- sections ---------------------------------------------------------------- */

static int s_build_pair(s_ctx_t *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    af_recipe_t *r = arg;
    if (!strcmp(key, "env"))
        return s_kv(c, v, "build.env", true, &r->build_env, &r->n_build_env);
    if (!strcmp(key, "inputs"))
        return s_inputs(c, v, r);
    /* run */
    if (af_yamldoc_is_null(v))
        return 0;
    int rc = s_scalar(c, v, "build.run", AF_RECIPE_MAX_BYTES, 0, &r->run);
    if (rc == 0 && !r->run[strspn(r->run, " \t\r\n")]) {
        free(r->run);
        r->run = NULL;
        return af_yamldoc_fail(c->yd, v, AF_ERR_INVAL, "build.run: empty command");
    }
    return rc;
}

static int s_image_pair(s_ctx_t *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    af_recipe_t *r = arg;
    char show[80];
    int rc = 0;
    if (!strcmp(key, "from")) {
        char *from = NULL;
        if ((rc = s_scalar(c, v, "image.from", AF_MAX_REF, S_NONEMPTY, &from)))
            return rc;
        af_ref_t ref;
        af_err_t rerr;
        af_err_clear(&rerr);
        if (strcmp(from, "scratch") && af_ref_parse(from, &ref, &rerr)) {
            rc = af_yamldoc_fail(c->yd, v, AF_ERR_INVAL, "image.from: %s", rerr.msg);
            free(from);
            return rc;
        }
        free(r->from);
        r->from = from;
    } else if (!strcmp(key, "copy")) {
        rc = s_copy(c, v, r);
    } else if (!strcmp(key, "entrypoint")) {
        rc = s_argv(c, v, "image.entrypoint", &r->entrypoint, &r->n_entrypoint, &r->has_entrypoint);
    } else if (!strcmp(key, "cmd")) {
        rc = s_argv(c, v, "image.cmd", &r->cmd, &r->n_cmd, &r->has_cmd);
    } else if (!strcmp(key, "env")) {
        rc = s_kv(c, v, "image.env", true, &r->env, &r->n_env);
    } else if (!strcmp(key, "labels")) {
        rc = s_kv(c, v, "image.labels", false, &r->labels, &r->n_labels);
    } else if (!strcmp(key, "workdir")) {
        if (af_yamldoc_is_null(v))
            return 0;
        if ((rc = s_scalar(c, v, "image.workdir", AF_CONTEXT_MAX_PATH, S_NONEMPTY, &r->workdir)))
            return rc;
        if (r->workdir[0] != '/')
            rc = af_yamldoc_fail(c->yd, v, AF_ERR_INVAL,
                                 "image.workdir: \"%s\" must be an absolute path",
                                 s_show(v, show, sizeof show));
    } else { /* user */
        if (af_yamldoc_is_null(v))
            return 0;
        rc = s_scalar(c, v, "image.user", AF_MAX_NAME, S_NONEMPTY, &r->user);
    }
    return rc;
}

static int s_top_pair(s_ctx_t *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    static const char *const build_keys[] = {"env", "run", "inputs", NULL};
    static const char *const image_keys[] = {"from",    "copy", "entrypoint", "cmd", "env",
                                             "workdir", "user", "labels",     NULL};
    if (af_yamldoc_is_null(v))
        return 0;
    if (!strcmp(key, "build"))
        return s_mapping(c, v, "build", build_keys, "env, run or inputs", s_build_pair, arg);
    return s_mapping(c, v, "image", image_keys,
                     "from, copy, entrypoint, cmd, env, workdir, user or labels", s_image_pair,
                     arg);
}

/* ---- load -------------------------------------------------------------------- */

/* Builds the recipe from *YD_P, which it destroys. NULL when *YD_P is NULL
 * (its error is already set) or on error. */
static af_recipe_t *s_recipe_new(af_yamldoc_t **yd_p)
{
    static const char *const top_keys[] = {"build", "image", NULL};
    if (!*yd_p)
        return NULL;
    s_ctx_t c = {.yd = *yd_p, .doc = af_yamldoc_document(*yd_p)};
    int rc = 0;
    af_recipe_t *r = calloc(1, sizeof *r);
    if (!r || !(r->from = strdup("scratch"))) {
        rc = af_yamldoc_nomem(c.yd);
        goto out;
    }
    yaml_node_t *root = af_yamldoc_root(c.yd);
    if (!root || af_yamldoc_is_null(root)) {
        rc = af_yamldoc_fail(c.yd, NULL, AF_ERR_PARSE, "empty recipe (expected build: and image:)");
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        rc = af_yamldoc_fail(c.yd, root, AF_ERR_PARSE,
                             "expected a mapping with build: and image:, got %s", s_kind(root));
        goto out;
    }
    rc = s_mapping(&c, root, "recipe", top_keys, "build or image", s_top_pair, r);
out:
    af_yamldoc_destroy(yd_p);
    if (rc)
        af_recipe_destroy(&r);
    return r;
}

af_recipe_t *af_recipe_load_buffer(const char *name, const char *data, size_t len, af_err_t *err)
{
    af_yamldoc_t *yd = af_yamldoc_new(name ? name : "archfarm.yaml", data, len, &s_limits, err);
    return s_recipe_new(&yd);
}

af_recipe_t *af_recipe_load(const char *path, af_err_t *err)
{
    af_yamldoc_t *yd = af_yamldoc_load(path, &s_limits, err);
    return s_recipe_new(&yd);
}

static void s_kv_free(af_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void s_argv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void af_recipe_destroy(af_recipe_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_recipe_t *r = *self_p;
    s_kv_free(r->build_env, r->n_build_env);
    free(r->run);
    s_argv_free(r->inputs, r->n_inputs);
    free(r->from);
    for (size_t i = 0; i < r->n_copy; i++) {
        free(r->copy[i].src);
        free(r->copy[i].dest);
    }
    free(r->copy);
    s_argv_free(r->entrypoint, r->n_entrypoint);
    s_argv_free(r->cmd, r->n_cmd);
    s_kv_free(r->env, r->n_env);
    free(r->workdir);
    free(r->user);
    s_kv_free(r->labels, r->n_labels);
    free(r);
    *self_p = NULL;
}
