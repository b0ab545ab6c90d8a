/* credentials.h -- registry credentials from the Docker/containers auth files.
 *
 * Looks up HOST in, first found wins: $REGISTRY_AUTH_FILE,
 * $DOCKER_CONFIG/config.json, ~/.docker/config.json,
 * ${XDG_RUNTIME_DIR}/containers/auth.json. Reads "auths" entries with a
 * base64 "auth" ("user:password") or "username"/"password". Keys may be a
 * bare host or a URL ("https://host/v1/"). Credential helpers (credsStore)
 * are not run. */
#ifndef AF_CREDENTIALS_H
#define AF_CREDENTIALS_H

#include <stddef.h>

#include "error.h"

/* Auth files larger than this are refused (they are a few KiB). */
#define AF_CREDENTIALS_MAX_BYTES (1024 * 1024)

/* On success *user_p and *pass_p are malloc'd (caller owns, zero the
 * password before free) or both NULL when nothing matches (return 0).
 * A malformed file is an error naming it. */
int af_credentials_lookup(const char *host, char **user_p, char **pass_p, af_err_t *err)
    __attribute__((warn_unused_result));

/* HOST in the one auth file PATH. AF_ERR_NOTFOUND when PATH does not
 * exist; otherwise as af_credentials_lookup. */
int af_credentials_lookup_file(const char *path, const char *host, char **user_p, char **pass_p,
                               af_err_t *err) __attribute__((warn_unused_result));

/* HOST in the auth file contents BUF (LEN bytes, not NUL-terminated;
 * borrowed), named PATH in messages. As af_credentials_lookup_file. */
int af_credentials_lookup_buffer(const char *path, const char *buf, size_t len, const char *host,
                                 char **user_p, char **pass_p, af_err_t *err)
    __attribute__((warn_unused_result));

#endif
