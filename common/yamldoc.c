/* yamldoc.c -- a bounded libyaml document loaded from a file or buffer,
 * with positioned errors.
 *
 * common/inventory.c and common/recipe.c load their YAML through this and
 * walk the resulting node graph (aliases are shared nodes, never copies).
 * Loading takes two passes over the bytes: a cheap event pass that bounds
 * nesting and rejects a second document, then libyaml's document loader.
 * Every error names its place as "NAME:LINE:COL". */
#include "yamldoc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct af_yamldoc {
    char *name;
    af_err_t *err; /* borrowed */
    yaml_document_t doc;
    bool loaded; /* doc holds a document to delete */
};

static int s_failv(af_yamldoc_t *self, const yaml_mark_t *mark, int code, const char *fmt,
                   va_list ap) __attribute__((format(printf, 4, 0)));
static int s_failv(af_yamldoc_t *self, const yaml_mark_t *mark, int code, const char *fmt,
                   va_list ap)
{
    char msg[AF_ERRMSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return af_err_set(self->err, code, "%s:%zu:%zu: %s", self->name, mark ? mark->line + 1 : 1,
                      mark ? mark->column + 1 : 1, msg);
}

int af_yamldoc_fail(af_yamldoc_t *self, const yaml_node_t *node, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_failv(self, node ? &node->start_mark : NULL, code, fmt, ap);
    va_end(ap);
    return rc;
}

int af_yamldoc_fail_at(af_yamldoc_t *self, const yaml_mark_t *mark, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_failv(self, mark, code, fmt, ap);
    va_end(ap);
    return rc;
}

int af_yamldoc_nomem(af_yamldoc_t *self)
{
    return af_err_set(self->err, AF_ERR_NOMEM, "%s: out of memory", self->name);
}

const char *af_yamldoc_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

bool af_yamldoc_is_null(const yaml_node_t *node)
{
    if (!node)
        return true;
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = af_yamldoc_text(node);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* Line and column (0-based) of byte OFFSET in DATA, for reader errors that
 * libyaml reports by offset only. Columns count UTF-8 characters. */
static void s_offset_mark(const char *data, size_t len, size_t offset, yaml_mark_t *m)
{
    m->line = 0;
    m->column = 0;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (data[i] == '\n')
            m->line++, m->column = 0;
        else if (((unsigned char)data[i] & 0xC0) != 0x80)
            m->column++;
    }
}

static int s_yaml_error(af_yamldoc_t *self, yaml_parser_t *p, const char *data, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return af_yamldoc_nomem(self);
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR)
        s_offset_mark(data, len, p->problem_offset, &m);
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->context)
        return af_yamldoc_fail_at(self, &m, AF_ERR_PARSE, "YAML error: %s (%s at line %zu)",
                                  problem, p->context, p->context_mark.line + 1);
    return af_yamldoc_fail_at(self, &m, AF_ERR_PARSE, "YAML error: %s", problem);
}

/* A first pass over libyaml's events, before the document is built: it
 * reports syntax errors, a second document, and nesting deeper than
 * LIMITS->max_depth. The depth bound matters for time, not only for
 * memory: libyaml's scanner rechecks every open flow level on each token,
 * so "[[[[..." costs the square of its depth, and 4 MiB of it would take
 * hours. Stopping at the first too-deep event keeps the pass linear. */
static int s_prescan(af_yamldoc_t *self, const char *data, size_t len,
                     const af_yamldoc_limits_t *limits)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return af_yamldoc_nomem(self);
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    int depth = 0, docs = 0, rc = 0;
    for (bool done = false; !done && rc == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = s_yaml_error(self, &p, data, len);
            break;
        }
        yaml_mark_t m = ev.start_mark;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = af_yamldoc_fail_at(self, &m, AF_ERR_PARSE,
                                        "more than one YAML document (%s is a single document)",
                                        limits->single);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > limits->max_depth)
                rc = af_yamldoc_fail_at(self, &m, AF_ERR_TOOBIG,
                                        "YAML nested deeper than %d levels", limits->max_depth);
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

af_yamldoc_t *af_yamldoc_new(const char *name, const char *data, size_t len,
                             const af_yamldoc_limits_t *limits, af_err_t *err)
{
    if (len > limits->max_bytes) {
        af_err_set(err, AF_ERR_TOOBIG, "%s: %s is %zu bytes, more than the limit of %zu bytes",
                   name, limits->kind, len, limits->max_bytes);
        return NULL;
    }
    af_yamldoc_t *self = calloc(1, sizeof *self);
    if (!self || !(self->name = strdup(name))) {
        free(self);
        af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    self->err = err;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        af_yamldoc_nomem(self);
        goto err;
    }
    if (!data)
        data = "", len = 0;
    int rc = s_prescan(self, data, len, limits);
    if (rc == 0) {
        yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
        if (yaml_parser_load(&parser, &self->doc))
            self->loaded = true;
        else
            rc = s_yaml_error(self, &parser, data, len);
    }
    yaml_parser_delete(&parser);
    if (rc == 0)
        return self;
err:
    af_yamldoc_destroy(&self);
    return NULL;
}

af_yamldoc_t *af_yamldoc_load(const char *path, const af_yamldoc_limits_t *limits, af_err_t *err)
{
    af_yamldoc_t *self = NULL;
    char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "%s: %s", path,
                   strerror(errno));
        return NULL;
    }
    /* A regular file, or a pipe such as `-i <(generate-inventory)` or a
     * FIFO, as Ansible reads them: the read below is bounded either way. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
        af_err_set(err, AF_ERR_IO, "%s: not a regular file or a pipe", path);
        goto out;
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > limits->max_bytes) {
        af_err_set(err, AF_ERR_TOOBIG, "%s: %s is %jd bytes, more than the limit of %zu bytes",
                   path, limits->kind, (intmax_t)st.st_size, limits->max_bytes);
        goto out;
    }
    /* one byte past the limit, so a file that is (or grew) too big is
     * reported as such */
    data = malloc(limits->max_bytes + 1);
    if (!data) {
        af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t len = fread(data, 1, limits->max_bytes + 1, f);
    if (ferror(f)) {
        af_err_set(err, AF_ERR_IO, "%s: read error", path);
        goto out;
    }
    if (len > limits->max_bytes) {
        /* a pipe (or a file that grew): its size is unknown, only that it
         * passed the limit */
        af_err_set(err, AF_ERR_TOOBIG, "%s: %s is larger than the limit of %zu bytes", path,
                   limits->kind, limits->max_bytes);
        goto out;
    }
    self = af_yamldoc_new(path, data, len, limits, err);
out:
    free(data);
    fclose(f);
    return self;
}

void af_yamldoc_destroy(af_yamldoc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_yamldoc_t *self = *self_p;
    if (self->loaded)
        yaml_document_delete(&self->doc);
    free(self->name);
    free(self);
    *self_p = NULL;
}

yaml_document_t *af_yamldoc_document(af_yamldoc_t *self)
{
    return &self->doc;
}

yaml_node_t *af_yamldoc_root(af_yamldoc_t *self)
{
    return yaml_document_get_root_node(&self->doc);
}

const char *af_yamldoc_name(const af_yamldoc_t *self)
{
    return self->name;
}
