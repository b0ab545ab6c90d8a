/* dockerignore.h -- the .dockerignore matcher, with Docker's semantics.
 *
 * Used by the context packer (archive.c). Patterns are relative to the
 * context root and '/'-separated: `*` matches any run of non-'/' bytes,
 * `?` one non-'/' byte, `[a-z]` / `[^a-z]` a class, `\` escapes, and `**`
 * any number of directories (a trailing `**` matches everything below).
 * Lines starting with '#' are comments, blank lines are skipped, leading
 * and trailing white space is trimmed, each pattern is cleaned like Go's
 * filepath.Clean and a leading '/' dropped. A leading '!' re-includes.
 * The last matching pattern wins, and a pattern that matches a directory
 * also matches everything below it (Docker's MatchesOrParentMatches). */
#ifndef AF_DOCKERIGNORE_H
#define AF_DOCKERIGNORE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define AF_DOCKERIGNORE_MAX_BYTES (1024 * 1024) /* the .dockerignore file */
#define AF_DOCKERIGNORE_MAX_PATTERNS 10000
#define AF_DOCKERIGNORE_MAX_PATTERN 4096 /* one pattern, bytes */

typedef struct af_dockerignore af_dockerignore_t;

/* An empty matcher (excludes nothing). Caller owns; NULL on failure. */
af_dockerignore_t *af_dockerignore_new(void);

/* A matcher that excludes everything but what one of the N patterns ONLY
 * (borrowed) matches: "**", then each pattern as a "!" re-include, so a
 * directory pattern keeps its whole tree (a recipe's build.inputs).
 * Caller owns; NULL with err (a bad pattern names "build.inputs:N"). */
af_dockerignore_t *af_dockerignore_new_only(const char *const *only, size_t n, af_err_t *err);

/* NULL-safe; nulls *self_p. */
void af_dockerignore_destroy(af_dockerignore_t **self_p);

/* Adds the patterns of a .dockerignore text of LEN bytes (need not be NUL
 * terminated). NAME names the source in messages ("NAME:LINE: ..."). 0, or
 * AF_ERR_PARSE (bad pattern, lone "!"), AF_ERR_TOOBIG, AF_ERR_NOMEM. */
int af_dockerignore_parse(af_dockerignore_t *self, const char *text, size_t len, const char *name,
                          af_err_t *err) __attribute__((warn_unused_result));

/* Reads and parses the file PATH. A missing file is not an error (nothing
 * is added). Bounded by AF_DOCKERIGNORE_MAX_BYTES. */
int af_dockerignore_load(af_dockerignore_t *self, const char *path, af_err_t *err)
    __attribute__((warn_unused_result));

/* Number of patterns held. */
size_t af_dockerignore_count(const af_dockerignore_t *self);

/* True when PATH (relative to the context root, '/'-separated, no "./")
 * is excluded. Uses scratch space inside SELF: one matcher per thread. */
bool af_dockerignore_excluded(af_dockerignore_t *self, const char *path);

/* True when some "!" pattern could re-include an entry strictly below the
 * directory DIR, so an excluded DIR must still be walked. Conservative:
 * may say true when nothing ends up re-included, never false when
 * something would be. */
bool af_dockerignore_may_include_below(af_dockerignore_t *self, const char *dir);

#endif
