/* yamldoc.h -- a bounded libyaml document loaded from a file or buffer,
 * with positioned errors.
 *
 * The inventory and the native recipe are both single YAML documents from
 * outside. Loading one here bounds its size and its nesting (before libyaml
 * builds the node graph, whose scanner is quadratic in flow depth), rejects
 * a second document, and turns libyaml's errors into "NAME:LINE:COL:
 * message". The callers then walk the node graph themselves and report
 * their own errors at a node with af_yamldoc_fail(). */
#ifndef AF_YAMLDOC_H
#define AF_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "error.h"

typedef struct af_yamldoc af_yamldoc_t;

/* What one kind of document may be. The strings are borrowed for the call
 * and appear in messages: KIND in "NAME: KIND is N bytes, more than the
 * limit of MAX_BYTES", SINGLE in "more than one YAML document (SINGLE is a
 * single document)". */
typedef struct {
    size_t max_bytes;   /* longer input: AF_ERR_TOOBIG */
    int max_depth;      /* sequences and mappings open at once */
    const char *kind;   /* "inventory" */
    const char *single; /* "an inventory" */
} af_yamldoc_limits_t;

/* Parses LEN bytes of DATA (NULL reads as empty) named NAME in messages.
 * NAME and DATA are borrowed for the call; LIMITS too. ERR (may be NULL) is
 * borrowed until af_yamldoc_destroy(): it receives this call's error and
 * every later af_yamldoc_fail*() on the document. Returns a document the
 * caller owns, or NULL with err set: AF_ERR_TOOBIG (size, nesting),
 * AF_ERR_PARSE "NAME:LINE:COL: YAML error: ..." or a second document,
 * AF_ERR_NOMEM. An empty input gives a document without a root node. */
af_yamldoc_t *af_yamldoc_new(const char *name, const char *data, size_t len,
                             const af_yamldoc_limits_t *limits, af_err_t *err)
    __attribute__((warn_unused_result));

/* Reads the regular file PATH (at most LIMITS->max_bytes; one byte more is
 * read so a larger file is reported as too big) and parses it as
 * af_yamldoc_new() does, named PATH. Errors also: AF_ERR_NOTFOUND or
 * AF_ERR_IO "PATH: reason", "PATH: not a regular file", "PATH: read error". */
af_yamldoc_t *af_yamldoc_load(const char *path, const af_yamldoc_limits_t *limits, af_err_t *err)
    __attribute__((warn_unused_result));

/* Frees the document and every node in it; NULL-safe, nulls *self_p. */
void af_yamldoc_destroy(af_yamldoc_t **self_p);

/* The libyaml document, borrowed until af_yamldoc_destroy(). */
yaml_document_t *af_yamldoc_document(af_yamldoc_t *self);

/* The root node (NULL for an empty document), borrowed likewise. */
yaml_node_t *af_yamldoc_root(af_yamldoc_t *self);

/* The name used in messages, borrowed likewise. */
const char *af_yamldoc_name(const af_yamldoc_t *self);

/* Writes "NAME:LINE:COL: message" at NODE (1:1 when NODE is NULL) into the
 * document's err and returns CODE. Cannot fail. */
int af_yamldoc_fail(af_yamldoc_t *self, const yaml_node_t *node, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Likewise at MARK (1:1 when NULL). */
int af_yamldoc_fail_at(af_yamldoc_t *self, const yaml_mark_t *mark, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "NAME: out of memory" and returns AF_ERR_NOMEM. */
int af_yamldoc_nomem(af_yamldoc_t *self);

/* The text of scalar NODE (NUL-terminated; it may hold NUL bytes before
 * node->data.scalar.length), borrowed from the document. */
const char *af_yamldoc_text(const yaml_node_t *node);

/* True for a missing node and for a plain "", "~", "null", "Null" or
 * "NULL" scalar. */
bool af_yamldoc_is_null(const yaml_node_t *node);

#endif
