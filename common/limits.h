/* limits.h -- every named bound on outside input, in one place.
 *
 * Input is checked against these where it enters (proto decode, inventory
 * load, context extraction, registry replies). Change a value here, and the
 * docs (docs/protocol.md, docs/security.md) in the same commit. */
#ifndef AF_LIMITS_H
#define AF_LIMITS_H

#define AF_PROTO_ID "ARCHFARM1"
/* AF_VERSION is defined by CMake from project(archfarm VERSION ...). */
#ifndef AF_VERSION
#error "AF_VERSION is not defined: build with CMake (CMakeLists.txt sets it from the project version)"
#endif
#define AF_DEFAULT_PORT 7420

/* wire */
#define AF_MAX_MSG_SIZE (4 * 1024 * 1024)   /* ZMQ_MAXMSGSIZE, whole frame */
#define AF_CHUNK_SIZE (256 * 1024)          /* context chunk payload */
#define AF_CREDIT_WINDOW 16                 /* chunks in flight per transfer */
#define AF_MAX_STR 1024                     /* any string field */
#define AF_MAX_NAME 128                     /* node names, job ids, executor names */
#define AF_MAX_REF 512                      /* repository / image reference */
#define AF_MAX_LOG_LINE 4096                /* one LOG line, longer lines are split */
#define AF_MAX_LIST 64                      /* platforms, executors, tags */
#define AF_MAX_BUILD_ARGS 128               /* build args / labels per BUILD */
#define AF_MAX_SECRET 4096                  /* a credential field */

/* liveness (Paranoid Pirate) */
#define AF_HEARTBEAT_MS 1000
#define AF_LIVENESS 3

/* platforms */
#define AF_PLATFORM_OS_MAX 16
#define AF_PLATFORM_ARCH_MAX 16
#define AF_PLATFORM_VARIANT_MAX 8
#define AF_PLATFORM_STR_MAX 48              /* "os/arch/variant" + NUL, with room */

/* inventory */
#define AF_INVENTORY_MAX_BYTES (4 * 1024 * 1024)
#define AF_INVENTORY_MAX_HOSTS 4096
#define AF_INVENTORY_MAX_DEPTH 32           /* group nesting */

/* contexts and layers */
#define AF_CONTEXT_MAX_BYTES (16LL * 1024 * 1024 * 1024)
#define AF_CTXDELTA_MIN_BYTES (1024 * 1024) /* smaller contexts are always sent whole */
#define AF_CONTEXT_MAX_FILES 1000000
#define AF_CONTEXT_MAX_PATH 4096
#define AF_LAYER_MAX_FILES 1000000
#define AF_LAYER_MAX_DEPTH 256              /* directory nesting below a copy src */
#define AF_COMPRESSION_LEVEL_MAX 22         /* zstd levels 1..22, gzip 1..9 */

/* registry */
#define AF_MANIFEST_MAX_BYTES (4 * 1024 * 1024)
#define AF_CONFIG_MAX_BYTES (8 * 1024 * 1024)
#define AF_HTTP_TIMEOUT_S 300
#define AF_HTTP_CONNECT_TIMEOUT_S 10
#define AF_HTTP_RETRIES 3

/* recipes */
#define AF_RECIPE_MAX_BYTES (1024 * 1024)
#define AF_RECIPE_MAX_COPY 256

/* digests: "sha256:" + 64 hex + NUL */
#define AF_DIGEST_STR_MAX 72

#endif
