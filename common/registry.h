/* registry.h -- OCI distribution client (libcurl).
 *
 * One client per registry host. Blobs stream from and to files; manifests
 * are small bounded buffers. Every reply is untrusted: sizes are capped,
 * digests of what we download are verified, and the Docker-Content-Digest
 * of what we upload is checked against ours. Authentication answers the
 * registry's challenge: Basic, or Bearer tokens fetched from the realm
 * with the given credentials (anonymous when none). Transient failures
 * (connect errors, 5xx, 429) are retried AF_HTTP_RETRIES times with
 * doubling backoff; 4xx are not. Not thread-safe: one client per thread.
 * The caller's main() must call curl_global_init(CURL_GLOBAL_DEFAULT) once,
 * before any thread starts and before the first af_registry_new(). */
#ifndef AF_REGISTRY_H
#define AF_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "limits.h"

typedef struct af_registry af_registry_t;

typedef struct {
    bool insecure;        /* try HTTPS without verification, fall back to HTTP */
    const char *username; /* borrowed for the call to af_registry_new; copied */
    const char *password; /* secret; copied, zeroed on destroy, never logged */
    const char *ca_file;  /* extra CA bundle, may be NULL */
    long timeout_s;       /* whole-transfer low-speed timeout; 0 = AF_HTTP_TIMEOUT_S */
} af_registry_opts_t;

/* Byte progress for blob transfers: done of total. May be NULL. */
typedef void(af_registry_progress_fn)(uint64_t done, uint64_t total, void *arg);

/* HOST is "name[:port]" as in a reference (docker.io is mapped to its API
 * host). Caller owns the result; NULL with err on failure. Opens no
 * connection yet. */
af_registry_t *af_registry_new(const char *host, const af_registry_opts_t *opts, af_err_t *err);
void af_registry_destroy(af_registry_t **self_p);

/* Asked during every transfer (about once a second, and on every chunk),
 * before every attempt and during retry backoff: returning true aborts the
 * request at once, and the verb fails with AF_ERR_CANCELLED and no retry.
 * Must be safe to call from the thread that uses the client. */
typedef bool(af_registry_cancel_fn)(void *arg);

/* Installs FN (NULL removes it); ARG is borrowed and must outlive the
 * client or the next call. Used for SIGINT/SIGTERM in the CLI and for job
 * timeouts and shutdown in the agent. */
void af_registry_set_cancel(af_registry_t *self, af_registry_cancel_fn *fn, void *arg);

/* GET /v2/ to check reachability and auth. */
int af_registry_ping(af_registry_t *self, af_err_t *err) __attribute__((warn_unused_result));

/* Proves that a push to REPO can succeed before any work is done: starts
 * a blob upload (POST, with a bearer token of scope pull,push when the
 * registry uses tokens) and cancels it (DELETE). 0 when the registry
 * accepted; AF_ERR_AUTH for 401/403, AF_ERR_NET/AF_ERR_TIMEOUT when it
 * cannot be reached, AF_ERR_HTTP for other statuses; the message names
 * the URL and the HTTP status. */
int af_registry_push_check(af_registry_t *self, const char *repo, af_err_t *err)
    __attribute__((warn_unused_result));

/* HEAD a blob. *exists is set on success (404 is success with false). */
int af_registry_blob_exists(af_registry_t *self, const char *repo, const char *digest, bool *exists,
                            af_err_t *err) __attribute__((warn_unused_result));

/* Uploads PATH as blob DIGEST of SIZE bytes to REPO unless it already
 * exists; tries a cross-repository mount from FROM_REPO first when given.
 * Streams the file (POST then PUT with Content-Length). */
int af_registry_blob_push(af_registry_t *self, const char *repo, const char *digest,
                          const char *path, uint64_t size, const char *from_repo,
                          af_registry_progress_fn *progress, void *arg, af_err_t *err)
    __attribute__((warn_unused_result));

/* Blob bytes this client uploaded with af_registry_blob_push (blobs that
 * were already there or were mounted count nothing; a retried PUT counts
 * once). Cannot fail. */
uint64_t af_registry_pushed_bytes(const af_registry_t *self);

/* Mounts blob DIGEST from FROM_REPO into REPO on this registry (no data
 * moves). *mounted is false, with 0 returned, when the registry declines
 * (the blob is not in FROM_REPO, or mounting is not allowed): the caller
 * then uploads. Does not HEAD first. */
int af_registry_blob_mount(af_registry_t *self, const char *repo, const char *digest,
                           const char *from_repo, bool *mounted, af_err_t *err)
    __attribute__((warn_unused_result));

/* Downloads blob DIGEST into PATH (streaming), verifying the digest and
 * at most MAX_SIZE bytes (0 = unbounded). */
int af_registry_blob_fetch(af_registry_t *self, const char *repo, const char *digest,
                           const char *path, uint64_t max_size, af_err_t *err)
    __attribute__((warn_unused_result));

/* Downloads a small blob (config) into memory, at most MAX_SIZE bytes
 * (0 = AF_CONFIG_MAX_BYTES), verifying the digest. *body_p is malloc'd,
 * NUL-terminated; caller owns. */
int af_registry_blob_get(af_registry_t *self, const char *repo, const char *digest, size_t max_size,
                         char **body_p, size_t *len_p, af_err_t *err)
    __attribute__((warn_unused_result));

/* PUTs a manifest or index. REFERENCE is a tag or the body's digest. On
 * success writes the body's digest to digest_out (may be NULL) after
 * checking the registry's Docker-Content-Digest agrees. */
int af_registry_manifest_put(af_registry_t *self, const char *repo, const char *reference,
                             const char *media_type, const char *body, size_t len,
                             char digest_out[AF_DIGEST_STR_MAX], af_err_t *err)
    __attribute__((warn_unused_result));

/* GETs a manifest or index (Accept: all four types), at most
 * AF_MANIFEST_MAX_BYTES. When REFERENCE is a digest the body is verified
 * against it. Outputs are malloc'd (caller owns); digest_out is the body's
 * digest. Returns AF_ERR_NOTFOUND for 404. */
int af_registry_manifest_get(af_registry_t *self, const char *repo, const char *reference,
                             char **body_p, size_t *len_p, char **media_type_p,
                             char digest_out[AF_DIGEST_STR_MAX], af_err_t *err)
    __attribute__((warn_unused_result));

/* HEADs a manifest. *exists set; when it exists and the registry says,
 * digest_out gets Docker-Content-Digest (else ""). */
int af_registry_manifest_exists(af_registry_t *self, const char *repo, const char *reference,
                                bool *exists, char digest_out[AF_DIGEST_STR_MAX], af_err_t *err)
    __attribute__((warn_unused_result));

/* "http" or "https": the scheme in use after the first request. */
const char *af_registry_scheme(const af_registry_t *self);

#endif
