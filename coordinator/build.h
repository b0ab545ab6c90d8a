/* build.h -- one `archfarm build`: its options, its slices, and the steps
 * that run them.
 *
 * A build has one slice per requested platform. A slice is a list of
 * attempts, each on one node (attempt 1 on the scheduled node; failover
 * to another node of the same platform appends attempts later). The
 * pipeline (build.c) is: check the request -> load inventory -> probe ->
 * schedule -> pack the context once -> run the slices on the agents
 * (slices.c: one zloop) -> verify each slice in the registry and publish
 * the index (publish.c) -> metadata file (metadata.c). */
#ifndef AF_BUILD_H
#define AF_BUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "farm.h"
#include "kv.h"
#include "platform.h"
#include "progress.h"
#include "ref.h"
#include "schedule.h"

#define AF_DEFAULT_RETRIES 2 /* --retries: attempts after the first one */
#define AF_MAX_RETRIES 8
#define AF_MAX_ATTEMPTS (AF_MAX_RETRIES + 1)
#define AF_MAX_SELECTORS 16 /* --node-selector options */
#define AF_MIN_HEARTBEAT_MS 50
#define AF_MAX_HEARTBEAT_MS 60000
#define AF_MAX_LIVENESS 100
#define AF_PROBE_TIMEOUT_MS 3000
#define AF_CANCEL_WAIT_MS 5000 /* how long we wait for RESULTs after CANCEL */

/* What the user asked for (cmd_build.c fills it; strings borrowed from argv). */
typedef struct {
    af_platform_t platforms[AF_MAX_LIST];
    size_t n_platforms;
    bool platforms_given; /* else: the host's platform */
    af_ref_t tags[AF_MAX_LIST];
    const char *tag_args[AF_MAX_LIST];
    size_t n_tags;
    bool push;
    const char *context;                     /* CONTEXT directory */
    const char *file;                        /* -f, may be NULL */
    af_kv_t build_args[AF_MAX_BUILD_ARGS];   /* borrowed key/value (value points into argv) */
    char *build_arg_keys[AF_MAX_BUILD_ARGS]; /* owned copies of keys */
    size_t n_build_args;
    const char *target;      /* --target, may be NULL */
    bool docker_format;      /* --manifest-format docker */
    const char *compression; /* --compression algorithm: NULL (gzip), "gzip", "zstd" */
    int compression_level;   /* --compression ALGO:LEVEL, 0 = default */
    /* --annotation, split by target; key and value point into argv */
    af_kv_t index_annots[AF_MAX_LIST], manifest_annots[AF_MAX_LIST];
    size_t n_index_annots, n_manifest_annots;
    af_progress_mode_t progress;
    const char *metadata_file; /* may be NULL */
    af_insecure_t insecure;
    bool fail_fast;     /* default true */
    bool no_cache;      /* --no-cache: no slice or context cache lookups */
    uint32_t timeout_s; /* per slice, 0 = agent default */
    int probe_timeout_ms;
    /* fault tolerance (docs/fault-tolerance.md) */
    uint32_t heartbeat_ms;               /* our HEARTBEAT interval (default AF_HEARTBEAT_MS) */
    uint32_t liveness;                   /* silent intervals before a node is lost (AF_LIVENESS) */
    uint32_t retries;                    /* attempts after the first (AF_DEFAULT_RETRIES) */
    bool retry_on_build_failure;         /* retry a slice whose build step failed too */
    af_kv_t selectors[AF_MAX_SELECTORS]; /* --node-selector key=value, borrowed from argv */
    char *selector_keys[AF_MAX_SELECTORS]; /* owned copies of the keys */
    size_t n_selectors;
} af_build_opts_t;

typedef struct {
    size_t node;      /* index in the farm */
    uint32_t attempt; /* 1-based */
    char state[32];   /* last known state: sent, accepted, queued, running... */
    bool accepted;
    bool done; /* has a RESULT (or was failed locally) */
    bool ok;
    char failure[16]; /* "" build infra cancelled timeout verify */
    int exit_code;
    char message[AF_MAX_STR + 1];
    char digest[AF_DIGEST_STR_MAX];
    char media_type[AF_MAX_NAME + 1];
    uint64_t size;
    uint64_t duration_ms;           /* agent's */
    int64_t pushed_bytes;           /* RESULT's, meaningful when ok; -1 unknown */
    uint64_t context_bytes_sent;    /* CHUNK payload bytes we sent for this attempt */
    bool delta;                     /* the node holds the slice's ctx->base: the delta is sent */
    long long started_ms, ended_ms; /* our monotonic clock */
    /* context transfer */
    bool transfer_started;
    uint64_t next_offset;
    uint32_t credit;
    bool cancel_sent;
    /* from the slice cache (slicecache.h): never sent to a node; NODE is
     * meaningless, the digest is the cached manifest's */
    bool cached;
    char cache_key[AF_DIGEST_STR_MAX]; /* native slices: the key, "" when none */
} af_attempt_t;

/* One context tar a build sends: the whole context, or, for a native
 * recipe with build.inputs, the part one group of platforms reads (the
 * platforms whose expanded patterns are the same share it). */
typedef struct {
    char **only; /* its patterns, owned, NULL-terminated; NULL: the whole context */
    size_t n_only;
    char *variant; /* the patterns joined by '\n' (the stat cache's key), "" for whole; owned */
    char platforms[AF_MAX_LIST * AF_PLATFORM_STR_MAX]; /* "linux/amd64, linux/arm64" */
    char digest[AF_DIGEST_STR_MAX];
    uint64_t size;
    uint64_t files;
    char base[AF_DIGEST_STR_MAX];         /* "" or the tar the delta is from (ctxcache.h) */
    uint64_t delta_size;                  /* that delta's size */
    int fd;                               /* the packed tar (unnamed temp file), -1 until packed */
    int delta_fd;                         /* the delta, -1 when none */
    char keyed_digest[AF_DIGEST_STR_MAX]; /* the digest the slice cache keys used */
} af_slice_context_t;

typedef struct {
    af_platform_t platform;
    char platform_str[AF_PLATFORM_STR_MAX];
    const af_slice_context_t *ctx; /* what this slice is sent; borrowed from the build */
    char job[AF_MAX_NAME + 1];     /* "<build-id>-<index>" */
    af_attempt_t attempts[AF_MAX_ATTEMPTS];
    size_t n_attempts;
} af_slice_t;

/* The current (last) attempt of a slice. */
af_attempt_t *af_slice_current(af_slice_t *slice);

/* The name of the node that ran A, or "(cache)" for a cached slice.
 * Borrowed from FARM (farm.c). */
const char *af_attempt_node_name(const af_attempt_t *a, af_farm_t *farm);

/* --- attempts.c: pure attempt bookkeeping (unit tested) --- */

/* Context bytes sent for slice S over all its attempts (a failover sends
 * the context again). Cannot fail. */
uint64_t af_slice_context_bytes(const af_slice_t *s);

/* Blob bytes the slice's successful attempt uploaded; -1 when the slice
 * did not succeed or its agent could not tell (an older agent, an engine
 * that pushes by itself). Cannot fail. */
int64_t af_slice_pushed_bytes(const af_slice_t *s);

/* The progress row for attempt A of slice S, run on NODE (borrowed, as
 * are every string of S and A the row points into). Cannot fail. */
af_progress_result_t af_attempt_report(const af_slice_t *s, const af_attempt_t *a,
                                       const char *node);

typedef struct {
    uint32_t max_attempts;       /* 1 + --retries, at most AF_MAX_ATTEMPTS */
    bool retry_on_build_failure; /* --retry-on-build-failure */
} af_retry_policy_t;

/* The attempt of job JOB, attempt number ATTEMPT, that NODE ran, among
 * SLICES; NULL when there is none (a message for a job or node we never
 * used). ATTEMPT 0 means the latest attempt on NODE. Borrowed. */
af_attempt_t *af_slices_find(af_slice_t *slices, size_t n, size_t node, const char *job,
                             uint32_t attempt, af_slice_t **slice_out);

/* True when a RESULT for attempt A of slice S must be applied: A is the
 * slice's current attempt and has no outcome yet. A late RESULT of an
 * abandoned attempt (failed over, cancelled, lost) returns false. */
bool af_attempt_takes_result(const af_slice_t *s, const af_attempt_t *a);

/* True when the current attempt of S ended so that another attempt is
 * due under POLICY: it failed for an infrastructure reason (node lost or
 * unreachable, agent refused or crashed, disk full), or its build step
 * failed and retry_on_build_failure is set; and the slice has attempts
 * left. Cancelled, timed out and successful attempts are never retried. */
bool af_slice_should_retry(const af_slice_t *s, const af_retry_policy_t *policy);

/* Picks the node for the next attempt of S among CANDS[0..n) (LOST[i]:
 * node i was lost in this build, may be NULL). Nodes not yet tried for S
 * come first; a build-failure retry may fall back to a tried node that
 * was not lost. Returns the node index or -1. CANDS is not changed. */
long af_slice_next_node(const af_slice_t *s, const af_candidate_t *cands, size_t n,
                        const bool *lost, const char *recipe_kind);

/* What every BUILD of this build carries besides the slice's own fields. */
typedef struct {
    const char *recipe_kind; /* "native" | "dockerfile" */
    char recipe_path[AF_MAX_STR + 1];
    const char *target;
    const af_kv_t *build_args;
    size_t n_build_args;
    const char *manifest_format; /* "oci" | "docker" (--manifest-format) */
    const af_kv_t *annotations;  /* for every slice's manifest; borrowed */
    size_t n_annotations;
    char repository[AF_MAX_REF + 1];
    bool registry_insecure;
    const char *registry_username; /* NULL when none; sent only over CURVE */
    const char *registry_password; /* secret; sent only over CURVE, never logged */
    int64_t source_date_epoch;
    uint32_t timeout_s;
    const char *compression; /* "" (agent default, gzip) | "gzip" | "zstd" (--compression) */
    int compression_level;   /* 0 = the algorithm's default */
} af_build_spec_t;

/* The slice runner (slices.c). */
typedef struct {
    af_farm_t *farm;    /* borrowed */
    af_slice_t *slices; /* borrowed */
    size_t n_slices;
    const af_build_spec_t *spec; /* borrowed */
    af_progress_t *progress;     /* borrowed */
    bool fail_fast;
    af_candidate_t *cands; /* borrowed, per farm node: failover choices (may be NULL) */
    uint32_t heartbeat_ms; /* our interval; 0 = AF_HEARTBEAT_MS */
    uint32_t liveness;     /* 0 = AF_LIVENESS */
    af_retry_policy_t retry;
    /* results */
    int signal; /* SIGINT/SIGTERM that stopped the build, or 0 */
} af_slices_run_t;

/* Sends BUILD for every slice and drives them to a RESULT each: context
 * chunks on CREDIT, progress, heartbeats, node liveness, failover (an
 * attempt that failed for infrastructure reasons - node lost, agent
 * refused - is retried on another ready node of that platform, at most
 * AF_MAX_ATTEMPTS attempts, never on a node already tried), fail-fast
 * cancellation, SIGINT/SIGTERM (CANCEL everything, wait at most
 * AF_CANCEL_WAIT_MS). Every slice's current attempt is done on return.
 * Returns 0, or a negative code for a local failure. */
int af_slices_run(af_slices_run_t *run);

/* Verifies every slice's manifest in REPO (exists, is a manifest, its
 * config's platform is the slice's). On failure marks the attempt failed
 * with failure "verify" and returns a negative code with err naming the
 * node; registry errors keep their code (see af_cli_registry_exit). */
int af_publish_verify(af_registry_t *reg, const char *repo, af_slice_t *slices, size_t n,
                      af_farm_t *farm, af_progress_t *progress, af_err_t *err)
    __attribute__((warn_unused_result));

/* Builds the OCI index over the slices (one entry each, in order). Returns
 * the exact bytes (caller owns) and their digest, or NULL with err. */
char *af_publish_index(const af_slice_t *slices, size_t n, int64_t source_date_epoch,
                       size_t *len_out, char digest[AF_DIGEST_STR_MAX], af_err_t *err);

/* af_publish_index with EXTRA (N_EXTRA, borrowed) annotations after the
 * created one (--annotation index:K=V). */
char *af_publish_index_annotated(const af_slice_t *slices, size_t n, int64_t source_date_epoch,
                                 const af_kv_t *extra, size_t n_extra, size_t *len_out,
                                 char digest[AF_DIGEST_STR_MAX], af_err_t *err);

/* The same as a Docker manifest list v2 (--manifest-format docker): every
 * slice must have reported a Docker v2 manifest; no annotations. */
char *af_publish_docker_list(const af_slice_t *slices, size_t n, size_t *len_out,
                             char digest[AF_DIGEST_STR_MAX], af_err_t *err);

/* PUTs the index (of MEDIA_TYPE) to every tag in order. *n_done = tags
 * moved. The first PUT is the commit point. */
int af_publish_tags(af_registry_t *reg, const char *repo, const af_ref_t *tags, size_t n_tags,
                    const char *media_type, const char *body, size_t len, size_t *n_done,
                    af_err_t *err) __attribute__((warn_unused_result));

/* Writes the --metadata-file JSON atomically (temp file + rename).
 * INDEX_DIGEST NULL: nothing was published (failed, interrupted): the
 * file then has the slices and their attempts but no containerimage.*. */
int af_metadata_write(const char *path, const char *index_digest, const char *media_type,
                      uint64_t size, const af_build_opts_t *opts, af_slice_t *slices, size_t n,
                      af_farm_t *farm, bool pushed, af_err_t *err)
    __attribute__((warn_unused_result));

/* Runs the whole build; returns the exit status. */
int af_build_run(const af_cli_t *cli, af_build_opts_t *opts);

#endif
