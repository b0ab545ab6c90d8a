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
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "limits.h"
#include "ref.h"

/* YAML nesting: the schema needs 4 levels (image > copy > entry > key). */
#define S_YAML_MAX_DEPTH 16

typedef struct {
    const char *file;
    yaml_document_t *doc;
    af_err_t *err;
} s_ctx_t;

static int s_failv(s_ctx_t *c, const yaml_mark_t *m, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static int s_failv(s_ctx_t *c, const yaml_mark_t *m, int code, const char *fmt, va_list ap)
{
    char msg[AF_ERRMSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return af_err_set(c->err, code, "%s:%zu:%zu: %s", c->file, m ? m->line + 1 : 1,
                      m ? m->column + 1 : 1, msg);
}

/* "FILE:LINE:COL: message" at NODE. */
static int s_fail(s_ctx_t *c, const yaml_node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int s_fail(s_ctx_t *c, const yaml_node_t *n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_failv(c, n ? &n->start_mark : NULL, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int s_fail_at(s_ctx_t *c, const yaml_mark_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int s_fail_at(s_ctx_t *c, const yaml_mark_t *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_failv(c, m, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int s_nomem(s_ctx_t *c)
{
    return af_err_set(c->err, AF_ERR_NOMEM, "%s: out of memory", c->file);
}

static const char *s_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool s_is_null(const yaml_node_t *n)
{
    if (!n)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = s_text(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* What NODE is, for "expected X, got Y" messages. */
static const char *s_kind(const yaml_node_t *n)
{
    if (!n)
        return "nothing";
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    return s_is_null(n) ? "null" : "a string";
}

/* A printable, bounded copy of a scalar for messages. */
static const char *s_show(const yaml_node_t *n, char *buf, size_t len)
{
    const char *s = s_text(n);
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
    if (!n || n->type != YAML_SCALAR_NODE || (!(flags & S_NULL_OK) && s_is_null(n)))
        return s_fail(c, n, AF_ERR_INVAL, "%s: expected a string, got %s", what, s_kind(n));
    if ((flags & S_NONEMPTY) && !n->data.scalar.length)
        return s_fail(c, n, AF_ERR_INVAL, "%s: must not be empty", what);
    if (strlen(s_text(n)) != n->data.scalar.length)
        return s_fail(c, n, AF_ERR_INVAL, "%s: contains a NUL byte", what);
    if (n->data.scalar.length > max)
        return s_fail(c, n, AF_ERR_TOOBIG, "%s: longer than %zu bytes", what, max);
    *out = strdup(s_is_null(n) ? "" : s_text(n));
    return *out ? 0 : s_nomem(c);
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
        return s_fail(c, map, AF_ERR_INVAL, "%s: expected a mapping, got %s", what, s_kind(map));
    yaml_node_pair_t *p, *q;
    if (map->data.mapping.pairs.top - map->data.mapping.pairs.start > AF_RECIPE_MAX_ENTRIES)
        return s_fail(c, map, AF_ERR_TOOBIG, "%s: more than %d entries", what,
                      AF_RECIPE_MAX_ENTRIES);
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (!k || !v)
            return s_fail(c, map, AF_ERR_PARSE, "%s: malformed mapping", what);
        if (k->type != YAML_SCALAR_NODE)
            return s_fail(c, k, AF_ERR_INVAL, "%s: expected a string key, got %s", what, s_kind(k));
        if (strlen(s_text(k)) != k->data.scalar.length)
            return s_fail(c, k, AF_ERR_INVAL, "%s: key contains a NUL byte", what);
        if (k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !strcmp(s_text(k), "<<"))
            return s_fail(c, k, AF_ERR_INVAL, "%s: merge keys (<<) are not supported in recipes",
                          what);
        if (allowed) {
            bool ok = false;
            for (size_t i = 0; allowed[i] && !ok; i++)
                ok = !strcmp(s_text(k), allowed[i]);
            if (!ok)
                return s_fail(c, k, AF_ERR_INVAL, "%s: unknown key \"%s\" (expected %s)", what,
                              s_show(k, show, sizeof show), expected);
        }
        for (q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE && !strcmp(s_text(k2), s_text(k)))
                return s_fail(c, k, AF_ERR_INVAL, "%s: duplicate key \"%s\"", what,
                              s_show(k, show, sizeof show));
        }
        int rc = fn(c, s_text(k), k, v, arg);
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
        return s_fail(c, k, AF_ERR_INVAL, "%s: empty key", a->what);
    if (a->env) {
        bool ok = isalpha((unsigned char)key[0]) || key[0] == '_';
        for (const char *p = key; *p && ok; p++)
            ok = isalnum((unsigned char)*p) || *p == '_';
        if (!ok)
            return s_fail(c, k, AF_ERR_INVAL, "%s: \"%s\" is not a valid variable name", a->what,
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
            rc = s_nomem(c);
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
    if (s_is_null(v))
        return 0;
    s_kv_arg_t a = {kv, n, what, env};
    return s_mapping(c, v, what, NULL, NULL, s_kv_pair, &a);
}

/* ---- argv lists: entrypoint, cmd ------------------------------------------- */

static int s_argv(s_ctx_t *c, yaml_node_t *v, const char *what, char ***out, size_t *n, bool *has)
{
    if (s_is_null(v))
        return 0;
    *has = true;
    if (v->type == YAML_SCALAR_NODE) {
        /* the shell form, as Docker's ENTRYPOINT/CMD string */
        *out = calloc(3, sizeof **out);
        if (!*out)
            return s_nomem(c);
        int rc = s_scalar(c, v, what, AF_MAX_STR * 4, S_NONEMPTY, &(*out)[2]);
        if (rc)
            return rc;
        (*out)[0] = strdup("/bin/sh");
        (*out)[1] = strdup("-c");
        *n = 3;
        return (*out)[0] && (*out)[1] ? 0 : s_nomem(c);
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return s_fail(c, v, AF_ERR_INVAL, "%s: expected a list of strings or a string, got %s",
                      what, s_kind(v));
    size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (count > AF_RECIPE_MAX_ENTRIES)
        return s_fail(c, v, AF_ERR_TOOBIG, "%s: more than %d items", what, AF_RECIPE_MAX_ENTRIES);
    *out = calloc(count + 1, sizeof **out);
    if (!*out)
        return s_nomem(c);
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
        rc = s_fail(c, v, AF_ERR_UNSAFE, "%s: \"%s\" must be relative to the context, not absolute",
                    what, s_show(v, show, sizeof show));
    else if (!src && s[0] != '/')
        rc = s_fail(c, v, AF_ERR_INVAL, "%s: \"%s\" must be an absolute path in the image", what,
                    s_show(v, show, sizeof show));
    else if (s_has_dotdot(s))
        rc = s_fail(c, v, AF_ERR_UNSAFE, "%s: \"%s\" must not contain \"..\"", what,
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
    if (s_is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return s_fail(c, v, AF_ERR_INVAL, "image.copy: expected a list of {src, dest}, got %s",
                      s_kind(v));
    size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (count > AF_RECIPE_MAX_COPY)
        return s_fail(c, v, AF_ERR_TOOBIG, "image.copy: more than %d entries", AF_RECIPE_MAX_COPY);
    r->copy = calloc(count ? count : 1, sizeof *r->copy);
    if (!r->copy)
        return s_nomem(c);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        af_recipe_copy_t *e = &r->copy[i];
        r->n_copy = i + 1;
        if (!item || item->type != YAML_MAPPING_NODE)
            return s_fail(c, item ? item : v, AF_ERR_INVAL,
                          "image.copy: expected a mapping {src, dest}, got %s", s_kind(item));
        s_copy_arg_t a = {e};
        int rc = s_mapping(c, item, "image.copy", keys, "src or dest", s_copy_pair, &a);
        if (rc)
            return rc;
        if (!e->src || !e->dest)
            return s_fail(c, item, AF_ERR_INVAL, "image.copy: entry needs both src and dest");
    }
    return 0;
}

/* ---- sections ---------------------------------------------------------------- */

static int s_build_pair(s_ctx_t *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    af_recipe_t *r = arg;
    if (!strcmp(key, "env"))
        return s_kv(c, v, "build.env", true, &r->build_env, &r->n_build_env);
    /* run */
    if (s_is_null(v))
        return 0;
    int rc = s_scalar(c, v, "build.run", AF_RECIPE_MAX_BYTES, 0, &r->run);
    if (rc == 0 && !r->run[strspn(r->run, " \t\r\n")]) {
        free(r->run);
        r->run = NULL;
        return s_fail(c, v, AF_ERR_INVAL, "build.run: empty command");
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
            rc = s_fail(c, v, AF_ERR_INVAL, "image.from: %s", rerr.msg);
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
        if (s_is_null(v))
            return 0;
        if ((rc = s_scalar(c, v, "image.workdir", AF_CONTEXT_MAX_PATH, S_NONEMPTY, &r->workdir)))
            return rc;
        if (r->workdir[0] != '/')
            rc = s_fail(c, v, AF_ERR_INVAL, "image.workdir: \"%s\" must be an absolute path",
                        s_show(v, show, sizeof show));
    } else { /* user */
        if (s_is_null(v))
            return 0;
        rc = s_scalar(c, v, "image.user", AF_MAX_NAME, S_NONEMPTY, &r->user);
    }
    return rc;
}

static int s_top_pair(s_ctx_t *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    static const char *const build_keys[] = {"env", "run", NULL};
    static const char *const image_keys[] = {"from",    "copy", "entrypoint", "cmd", "env",
                                             "workdir", "user", "labels",     NULL};
    if (s_is_null(v))
        return 0;
    if (!strcmp(key, "build"))
        return s_mapping(c, v, "build", build_keys, "env or run", s_build_pair, arg);
    return s_mapping(c, v, "image", image_keys,
                     "from, copy, entrypoint, cmd, env, workdir, user or labels", s_image_pair,
                     arg);
}

/* ---- load -------------------------------------------------------------------- */

static int s_yaml_error(s_ctx_t *c, yaml_parser_t *p, const char *data, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return s_nomem(c);
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        /* reader errors carry a byte offset only */
        m.line = m.column = 0;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (data[i] == '\n')
                m.line++, m.column = 0;
            else if (((unsigned char)data[i] & 0xC0) != 0x80)
                m.column++;
        }
    }
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->context)
        return s_fail_at(c, &m, AF_ERR_PARSE, "YAML error: %s (%s at line %zu)", problem,
                         p->context, p->context_mark.line + 1);
    return s_fail_at(c, &m, AF_ERR_PARSE, "YAML error: %s", problem);
}

/* A first pass over libyaml's events, before the document is built: it
 * reports syntax errors, a second document, and nesting deeper than
 * S_YAML_MAX_DEPTH. The depth bound matters for time, not only for
 * memory: libyaml's scanner rechecks every open flow level on each token,
 * so "[[[[..." costs the square of its depth, and 4 MiB of it would take
 * hours. Stopping at the first too-deep event keeps the pass linear. */
static int s_prescan(s_ctx_t *c, const char *data, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return s_nomem(c);
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    int depth = 0, docs = 0, rc = 0;
    for (bool done = false; !done && rc == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = s_yaml_error(c, &p, data, len);
            break;
        }
        yaml_mark_t m = ev.start_mark;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = s_fail_at(c, &m, AF_ERR_PARSE,
                               "more than one YAML document (a recipe is a single document)");
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > S_YAML_MAX_DEPTH)
                rc = s_fail_at(c, &m, AF_ERR_TOOBIG, "YAML nested deeper than %d levels",
                               S_YAML_MAX_DEPTH);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

af_recipe_t *af_recipe_load_buffer(const char *name, const char *data, size_t len, af_err_t *err)
{
    static const char *const top_keys[] = {"build", "image", NULL};
    if (!name)
        name = "archfarm.yaml";
    if (len > AF_RECIPE_MAX_BYTES) {
        af_err_set(err, AF_ERR_TOOBIG, "%s: recipe is %zu bytes, more than the limit of %d", name,
                   len, AF_RECIPE_MAX_BYTES);
        return NULL;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    bool parser_ok = false, doc_ok = false;
    s_ctx_t c = {.file = name, .doc = &doc, .err = err};
    int rc = 0;
    af_recipe_t *r = calloc(1, sizeof *r);
    if (!r || !(r->from = strdup("scratch"))) {
        rc = s_nomem(&c);
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = s_nomem(&c);
        goto out;
    }
    parser_ok = true;
    if (!data)
        data = "", len = 0;
    if ((rc = s_prescan(&c, data, len)))
        goto out;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = s_yaml_error(&c, &parser, data, len);
        goto out;
    }
    doc_ok = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || s_is_null(root)) {
        rc = af_err_set(err, AF_ERR_PARSE, "%s:1:1: empty recipe (expected build: and image:)",
                        name);
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        rc = s_fail(&c, root, AF_ERR_PARSE, "expected a mapping with build: and image:, got %s",
                    s_kind(root));
        goto out;
    }
    rc = s_mapping(&c, root, "recipe", top_keys, "build or image", s_top_pair, r);
out:
    if (doc_ok)
        yaml_document_delete(&doc);
    if (parser_ok)
        yaml_parser_delete(&parser);
    if (rc)
        af_recipe_destroy(&r);
    return r;
}

af_recipe_t *af_recipe_load(const char *path, af_err_t *err)
{
    af_recipe_t *r = NULL;
    char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "%s: %s", path,
                   strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        af_err_set(err, AF_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    /* one byte past the limit, so an oversized file is reported as such */
    data = malloc(AF_RECIPE_MAX_BYTES + 1);
    if (!data) {
        af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t len = fread(data, 1, AF_RECIPE_MAX_BYTES + 1, f);
    if (ferror(f)) {
        af_err_set(err, AF_ERR_IO, "%s: read error", path);
        goto out;
    }
    r = af_recipe_load_buffer(path, data, len, err);
out:
    free(data);
    fclose(f);
    return r;
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
