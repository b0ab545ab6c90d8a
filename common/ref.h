/* ref.h -- image references: "[registry/]repo[:tag][@digest]".
 *
 * Follows the distribution reference grammar and Docker's normalisation:
 * no registry -> "docker.io", a single-component repo on docker.io gets
 * "library/". A first component with a '.' or ':' or equal to "localhost"
 * is a registry. Values are plain structs: no ownership. */
#ifndef AF_REF_H
#define AF_REF_H

#include <stddef.h>

#include "error.h"
#include "limits.h"

typedef struct {
    char registry[256];                  /* "localhost:5000", "docker.io" */
    char repository[AF_MAX_REF + 1];     /* "app", "library/alpine" */
    char tag[129];                       /* "" when absent */
    char digest[AF_DIGEST_STR_MAX];      /* "" when absent */
} af_ref_t;

/* Parses S. Neither tag nor digest is defaulted. 0 or AF_ERR_INVAL with a
 * message naming S and what is wrong. */
int af_ref_parse(const char *s, af_ref_t *out, af_err_t *err) __attribute__((warn_unused_result));

/* "registry/repository[:tag][@digest]" into buf. Returns buf. */
char *af_ref_format(const af_ref_t *ref, char *buf, size_t len);

/* "registry/repository" into buf. Returns buf. */
char *af_ref_format_repo(const af_ref_t *ref, char *buf, size_t len);

/* The reference a manifest request uses: digest if set, else tag, else
 * "latest". Borrowed from REF. */
const char *af_ref_reference(const af_ref_t *ref);

/* The API host for a registry name: "docker.io" -> "registry-1.docker.io",
 * others unchanged. Borrowed. */
const char *af_ref_api_host(const char *registry);

#endif
