/* proto.h -- the archfarm wire protocol: the only code that knows frames
 * and msgpack.
 *
 * Every message is multipart:
 *   [routing id]   only on the agent's ROUTER side, added/stripped here
 *   "ARCHFARM1"    protocol id
 *   COMMAND        ASCII command name, e.g. "BUILD"
 *   BODY           msgpack map, string keys; schema per command
 *   [DATA]         CHUNK only: the raw context bytes
 * docs/protocol.md is the normative description. A message is one flat
 * record (zproto style): cmd says which fields are meaningful. Decoding
 * validates every field (type, length, range) against limits.h before the
 * caller sees it; unknown keys are ignored for forward compatibility,
 * missing required keys are errors. */
#ifndef AF_PROTO_H
#define AF_PROTO_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "kv.h"
#include "limits.h"

/* Decode-side bounds on the msgpack body (not in limits.h because only
 * proto.c enforces them; docs/protocol.md lists them). The largest legal
 * body, a BUILD with AF_MAX_BUILD_ARGS args at full length, is ~270 KiB. */
#define AF_PROTO_MAX_BODY (1024 * 1024) /* bytes in the BODY frame */
#define AF_PROTO_MAX_ITEMS 4096         /* msgpack objects in one body */
#define AF_PROTO_MAX_DEPTH 8            /* nesting of maps/arrays in one body */

typedef enum {
    AF_CMD_INVALID = 0,
    AF_CMD_HELLO,     /* C->A: version, client */
    AF_CMD_WELCOME,   /* A->C: version, node, platforms, executors, running, queued, max_jobs, heartbeat_ms[, confinement] */
    AF_CMD_BUILD,     /* C->A: a whole slice, see fields */
    AF_CMD_ACCEPT,    /* A->C: job, attempt, have_context, job_queued, have_base */
    AF_CMD_CREDIT,    /* A->C: job, attempt, offset, credit */
    AF_CMD_CHUNK,     /* C->A: job, attempt, offset + DATA frame */
    AF_CMD_LOG,       /* A->C: job, attempt, stream, line */
    AF_CMD_STATUS,    /* A->C: job, attempt, state, detail */
    AF_CMD_RESULT,    /* A->C: job, attempt, ok, digest, media_type, size, platform, failure, exit_code, message, duration_ms, pushed_bytes */
    AF_CMD_CANCEL,    /* C->A: job, attempt (0 = every attempt) */
    AF_CMD_HEARTBEAT, /* both: running, queued */
    AF_CMD_ERROR,     /* both: code, message, job (may be "") */
    AF_CMD_COUNT
} af_cmd_t;

/* The flat message. Fixed-size strings are NUL-terminated and always fit
 * their limit (decode rejects longer ones). Lists are owned by the message. */
typedef struct af_msg {
    af_cmd_t cmd;
    zframe_t *routing_id;                 /* ROUTER peer; owned; NULL on DEALER */

    /* HELLO / WELCOME */
    char version[AF_MAX_NAME + 1];
    char client[AF_MAX_NAME + 1];         /* HELLO: coordinator's name (host:pid) */
    char node[AF_MAX_NAME + 1];           /* WELCOME: agent's name */
    char **platforms;                     /* WELCOME: normalised platform strings */
    size_t n_platforms;
    char **executors;                     /* WELCOME: "native", "buildah", ... */
    size_t n_executors;
    uint32_t running, queued, max_jobs;   /* WELCOME, HEARTBEAT (max_jobs: WELCOME) */
    uint32_t heartbeat_ms;                /* WELCOME */
    /* WELCOME, optional: how native build steps are confined:
     * "landlock-abi-N", "none" (the kernel has no Landlock) or "off"
     * (confine: off); "" from older agents */
    char confinement[32];

    /* job identity: BUILD ACCEPT CREDIT CHUNK LOG STATUS RESULT CANCEL ERROR */
    char job[AF_MAX_NAME + 1];
    uint32_t attempt;                     /* >= 1, CANCEL: 0 means all */

    /* BUILD */
    char platform[AF_PLATFORM_STR_MAX];   /* also RESULT */
    char recipe_kind[16];                 /* "native" | "dockerfile" */
    char recipe_path[AF_MAX_STR + 1];     /* relative to context root */
    char target[AF_MAX_NAME + 1];         /* Dockerfile stage, may be "" */
    af_kv_t *build_args;
    size_t n_build_args;
    char context_digest[AF_DIGEST_STR_MAX];
    uint64_t context_size;
    char context_base[AF_DIGEST_STR_MAX]; /* "" or a context the delta is against */
    uint64_t context_delta_size;          /* that delta's size; 0 when no base */
    char repository[AF_MAX_REF + 1];      /* "host[:port]/path", no tag */
    bool registry_insecure;               /* plain HTTP / unverified TLS */
    char manifest_format[8];              /* "" or "oci" | "docker" (Docker v2 manifests) */
    af_kv_t *annotations;                 /* on the slice's image manifest (--annotation) */
    size_t n_annotations;
    char registry_username[AF_MAX_NAME + 1];
    char *registry_password;              /* secret: zeroed on destroy, never logged */
    int64_t source_date_epoch;            /* -1 when unset */
    uint32_t timeout_s;                   /* 0 = agent default */
    char compression[8];                  /* "" (= gzip) | "gzip" | "zstd": layer compression */
    int32_t compression_level;            /* 0 = the algorithm's default */

    /* ACCEPT */
    bool have_context;
    bool job_queued;
    bool have_base;                       /* the agent holds context_base: send the delta */

    /* CREDIT / CHUNK */
    uint64_t offset;
    uint32_t credit;
    zframe_t *data;                       /* CHUNK payload; owned */

    /* LOG / STATUS */
    char stream[16];                      /* "stdout" | "stderr" | "agent" */
    char line[AF_MAX_LOG_LINE + 1];
    char state[32];                       /* queued|receiving|extracting|running|pushing|done */
    char detail[AF_MAX_STR + 1];

    /* RESULT */
    bool ok;
    char digest[AF_DIGEST_STR_MAX];
    char media_type[AF_MAX_NAME + 1];
    uint64_t size;
    char failure[16];                     /* "" | "build" | "infra" | "registry" | "cancelled" | "timeout" */
    int32_t exit_code;                    /* build step status, -1 if none */
    char message[AF_MAX_STR + 1];         /* also ERROR */
    uint64_t duration_ms;
    int64_t pushed_bytes;                 /* blob bytes uploaded, after HEAD/mount skips; -1 unknown */

    /* ERROR */
    int32_t code;                         /* AF_ERR_* */
} af_msg_t;

/* New zeroed message of CMD with attempt=1, source_date_epoch=-1,
 * exit_code=-1, pushed_bytes=-1. Caller owns. NULL on OOM. */
af_msg_t *af_msg_new(af_cmd_t cmd);

/* Frees lists, frames, zeroes the secret, nulls *self_p. NULL-safe. */
void af_msg_destroy(af_msg_t **self_p);

/* Name for logs ("BUILD"); "INVALID" for unknown. Cannot fail. */
const char *af_cmd_name(af_cmd_t cmd);

/* Appenders; copy their arguments. 0 or AF_ERR_NOMEM/AF_ERR_TOOBIG. */
int af_msg_add_platform(af_msg_t *self, const char *p) __attribute__((warn_unused_result));
int af_msg_add_executor(af_msg_t *self, const char *e) __attribute__((warn_unused_result));
int af_msg_add_build_arg(af_msg_t *self, const char *key, const char *value)
    __attribute__((warn_unused_result));
/* An annotation for the slice's image manifest (BUILD), copied. */
int af_msg_add_annotation(af_msg_t *self, const char *key, const char *value)
    __attribute__((warn_unused_result));
/* Copies the secret (NULL clears it). */
int af_msg_set_password(af_msg_t *self, const char *password) __attribute__((warn_unused_result));
/* Copies the routing frame (NULL clears). */
void af_msg_set_routing_id(af_msg_t *self, zframe_t *routing_id);
/* Takes ownership of *data_p for CHUNK and nulls it. */
void af_msg_set_data(af_msg_t *self, zframe_t **data_p);

/* Encodes to frames (with routing id first when set). Runs the same checks
 * as decode first, so what we send is what a peer accepts. Returns a new
 * zmsg (caller owns) or NULL with err set naming the field (AF_ERR_PROTO,
 * AF_ERR_TOOBIG, AF_ERR_INVAL for a bad cmd or DATA on a non-CHUNK). */
zmsg_t *af_msg_encode(const af_msg_t *self, af_err_t *err);

/* Encodes and sends on SOCK. Does not take SELF. 0 or negative code. */
int af_msg_send(const af_msg_t *self, zsock_t *sock, af_err_t *err)
    __attribute__((warn_unused_result));

/* Decodes *zmsg_p (taken, nulled). ROUTER: the first frame is the routing
 * id. On success returns a new message (caller owns). On failure returns
 * NULL, sets err, and, when a routing id was present, hands it to
 * *routing_id_p (caller owns) so an ERROR can be sent back; routing_id_p
 * may be NULL. Never crashes on any input. err->code is what an ERROR
 * reply carries: AF_ERR_PARSE (body not a msgpack map), AF_ERR_PROTO
 * (framing, missing key, wrong type, bad value, repeated key),
 * AF_ERR_TOOBIG (over a limit), AF_ERR_UNSUPPORTED (unknown command).
 * Unknown keys are ignored; a known key given twice is rejected. */
af_msg_t *af_msg_decode(zmsg_t **zmsg_p, bool router, zframe_t **routing_id_p, af_err_t *err);

/* Receives one message from SOCK and decodes it as above. A zmsg_recv
 * failure returns NULL with AF_ERR_TIMEOUT (ZMQ_RCVTIMEO expired) or
 * AF_ERR_CANCELLED (interrupted, context terminated). */
af_msg_t *af_msg_recv(zsock_t *sock, bool router, zframe_t **routing_id_p, af_err_t *err);

/* A short printable summary for debug logs: "CMD key=value ...", strings
 * cut at 40 bytes with unprintable bytes as '?'. Never the password (only
 * "registry_password=(set)") nor build arg values. Writes at most len
 * bytes including the NUL; returns buf. */
char *af_msg_summary(const af_msg_t *self, char *buf, size_t len);

#endif
