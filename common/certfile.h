/* certfile.h -- writes a new CURVE key pair as czmq certificate files:
 * PATH (public, ZPL) and PATH_secret (public + secret, mode 0600).
 * Used by `archfarm keygen` and by `archfarm-agent --init-cert` (the
 * package's postinst makes each host its own key, like SSH host keys). */
#ifndef AF_CERTFILE_H
#define AF_CERTFILE_H

#include <stdbool.h>

#include "error.h"

#define AF_CERT_Z85_LEN 40

/* Creates the pair at public_path and public_path + "_secret". `name` and
 * `creator` go into the certificates' metadata (borrowed). With
 * `overwrite` false, an existing file of either name is AF_ERR_STATE and
 * nothing is written. The secret file never exists with a wider mode
 * than 0600, not even for a moment. On success public_key (41 bytes)
 * holds the Z85 public key. Returns 0 or a negative AF_ERR_* with err
 * naming the file. */
int af_certfile_create(const char *public_path, const char *name, const char *creator,
                       bool overwrite, char public_key[AF_CERT_Z85_LEN + 1], af_err_t *err)
    __attribute__((warn_unused_result));

#endif
