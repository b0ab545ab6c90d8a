/* curve.h -- the agent's CURVE security: server certificate, ZAP handler
 * (czmq zauth) and the authorized-keys directory, reloaded while running.
 *
 * af_curve_new() turns a ROUTER (not yet bound) into a CURVE server with
 * the certificate from --cert, sets the ZAP domain with
 * ZMQ_ZAP_ENFORCE_DOMAIN (so a missing ZAP handler refuses every client
 * instead of accepting them all), starts a zauth actor and feeds it the
 * public keys found in --authorized-keys. A zloop timer rescans that
 * directory; when its key set changes, zauth gets the new set, so keys are
 * added and revoked without a restart (new connections only: a session
 * already established stays up until it disconnects).
 *
 * zauth's own directory loader aborts on a key present in two files and
 * reads any file it finds, so it never sees the operator's directory:
 * this module validates the files (size, count, one key per file,
 * duplicates logged and skipped) and hands zauth a private snapshot
 * directory of its own, one file per distinct key, replaced atomically.
 *
 * One per process: a second ZAP handler cannot be installed, and
 * af_curve_new() says so instead of aborting. */
#ifndef AF_AGENT_CURVE_H
#define AF_AGENT_CURVE_H

#include <czmq.h>
#include <stddef.h>

#include "error.h"

#define AF_CURVE_ZAP_DOMAIN "archfarm"
#define AF_CURVE_RESCAN_MS 1000       /* authorized-keys dir polling */
#define AF_CURVE_MAX_KEYS 4096        /* files read from the dir */
#define AF_CURVE_MAX_CERT_BYTES 65536 /* one certificate file */

typedef struct af_curve af_curve_t;

/* Loads the server certificate CERT_PATH (a czmq certificate holding the
 * secret key: NAME.key_secret, or NAME.key when NAME.key_secret sits
 * beside it), applies it to ROUTER (borrowed; must outlive the result and
 * not be bound yet), starts zauth with the keys of KEYS_DIR and a timer on
 * LOOP (borrowed) that reloads them. SCRATCH_DIR (e.g. the workdir) holds
 * the private key snapshot. Returns NULL with err set (AF_ERR_INVAL: bad
 * certificate or directory; AF_ERR_STATE/UNSUPPORTED: no ZAP handler can be
 * installed) when CURVE cannot be enforced: the caller must not run. */
af_curve_t *af_curve_new(zsock_t *router, zloop_t *loop, const char *cert_path,
                         const char *keys_dir, const char *scratch_dir, af_err_t *err);

/* Stops zauth, ends the timer, removes the snapshot. NULL-safe, nulls. */
void af_curve_destroy(af_curve_t **self_p);

/* The server's public key, Z85 (40 characters). Borrowed. */
const char *af_curve_public_key(const af_curve_t *self);

/* Distinct authorized keys zauth holds now. */
size_t af_curve_key_count(const af_curve_t *self);

/* Rescans the directory now (the timer does it every AF_CURVE_RESCAN_MS).
 * Returns 1 when the key set changed and zauth was updated, 0 when not,
 * negative when the directory cannot be read (the old set stays). */
int af_curve_reload(af_curve_t *self);

#endif
