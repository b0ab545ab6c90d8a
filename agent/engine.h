/* engine.h -- what the Dockerfile executors (buildah, buildctl, docker) share.
 *
 * Three parts:
 *  - Pure argv builders. Each engine command is a NULL-terminated argv list
 *    made from an af_engine_spec_t; nothing is ever joined into a shell
 *    string. Every caller-supplied value travels as (part of) one argv
 *    element: build-arg keys must be [A-Za-z_][A-Za-z0-9_]*, values may be
 *    anything; a target stage is [A-Za-z0-9][A-Za-z0-9._-]*; a repository is
 *    lower-case "host[:port]/path" with no ',' or '=' (buildctl's --output
 *    is a comma list); paths are absolute. BuildKit's platform variables
 *    (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM,
 *    BUILDOS, BUILDARCH, BUILDVARIANT) come from --platform and the host,
 *    never from a build arg: such build args are dropped, as BuildKit does.
 *  - Parsers of what engines leave behind: a --digestfile / --iidfile and
 *    BuildKit's --metadata-file JSON (jansson), bounded and validated.
 *  - A per-job runner used from the agent's loop: spawns an engine argv in
 *    its own process group through process.c, streams its output as LOG
 *    lines, kills the group on cancel; and a worker that checks in the
 *    registry that what an engine pushed by digest is there and is a
 *    single-platform manifest (its digest, media type and size go into
 *    RESULT).
 * Used by executor_buildah.c, executor_buildctl.c and executor_docker.c.
 *
 * Where each part lives (one job per file):
 *  - engine_argv.c       argv builders for the three engines, spec checks,
 *                        the engine environment
 *  - engine_metadata.c   metadata JSON and digest-file parsing
 *  - authfile.c          the private auth-file writer
 *  - engine_run.c        the per-job step runner and the $PATH lookup
 *  - engine_verify.c     the verify worker (what was pushed is the slice)
 *  - executor_buildkit.c the BuildKit executor body buildctl and docker share */
#ifndef AF_AGENT_ENGINE_H
#define AF_AGENT_ENGINE_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "kv.h"
#include "limits.h"
#include "platform.h"
#include "proto.h"
#include "push_target.h"
#include "worker.h"

typedef struct af_job af_job_t;

/* Everything an engine command is made of. All borrowed. */
typedef struct {
    const char *context_dir; /* absolute: the extracted context */
    const char *dockerfile;  /* relative to context_dir; NULL or "" = "Dockerfile" */
    const af_platform_t *platform;
    const af_kv_t *build_args; /* may be NULL */
    size_t n_build_args;
    const char *target;        /* stage, NULL or "" = last */
    const char *repository;    /* "host[:port]/path", no tag */
    bool insecure;             /* registry over HTTP / unverified TLS */
    int64_t source_date_epoch; /* < 0: none */
    const char *metadata_file; /* buildctl, docker: absolute */
    /* buildah only */
    const char *storage_root; /* --root */
    const char *run_root;     /* --runroot */
    const char *image;        /* local name given with -t, then pushed */
    const char *iid_file;     /* --iidfile */
    const char *auth_file;    /* --authfile (0600), NULL = none */
    const char *oci_dir;      /* push destination oci:DIR (no ':') */
    const char *digest_file;  /* push --digestfile */
} af_engine_spec_t;

/* The buildah storage driver and isolation the agent uses (see
 * docs/executors.md for why). */
#define AF_ENGINE_BUILDAH_DRIVER "vfs"
#define AF_ENGINE_BUILDAH_ISOLATION "chroot"

/* Checks every caller-supplied field of SPEC as described above. 0 or
 * AF_ERR_INVAL / AF_ERR_UNSAFE naming the field. */
int af_engine_spec_check(const af_engine_spec_t *spec, af_err_t *err)
    __attribute__((warn_unused_result));

/* True if KEY is one of BuildKit's automatic platform variables. */
bool af_engine_is_platform_arg(const char *key);

/* Logs (as "agent" LOG lines of JOB) each build arg that is one of the
 * platform variables and is therefore dropped. */
void af_engine_log_ignored_args(af_job_t *job, const af_kv_t *args, size_t n);

/* True if KEY is a valid build-arg name. */
bool af_engine_valid_key(const char *key);

/* Argv builders: check SPEC, return a NULL-terminated list the caller owns
 * (free with af_engine_argv_free), or NULL with err.
 *   buildctl build --frontend dockerfile.v0 --local context=CTX
 *     --local dockerfile=DIR(F) --opt filename=BASE(F) --opt platform=P
 *     [--opt build-arg:K=V]... [--opt build-arg:SOURCE_DATE_EPOCH=N]
 *     [--opt target=T] --output type=image,name=REPO,push-by-digest=true,
 *     push=true[,registry.insecure=true] --metadata-file FILE
 *   docker buildx build --platform P -f CTX/F [--build-arg K=V]...
 *     [--build-arg SOURCE_DATE_EPOCH=N] [--target T] --provenance=false
 *     --output type=image,name=REPO,push-by-digest=true,push=true
 *     [,registry.insecure=true] --metadata-file FILE CTX
 *   buildah --root R --runroot RR --storage-driver vfs build --platform P
 *     -f CTX/F [--build-arg K=V]... [--target T] --layers=false
 *     --isolation chroot [--timestamp N] [--tls-verify=false]
 *     [--authfile A] --iidfile I -t IMAGE CTX
 *   buildah --root R --runroot RR --storage-driver vfs push --quiet
 *     --digestfile D IMAGE oci:DIR */
char **af_engine_argv_buildctl(const af_engine_spec_t *spec, af_err_t *err);
char **af_engine_argv_docker(const af_engine_spec_t *spec, af_err_t *err);
char **af_engine_argv_buildah_build(const af_engine_spec_t *spec, af_err_t *err);
char **af_engine_argv_buildah_push(const af_engine_spec_t *spec, af_err_t *err);
void af_engine_argv_free(char ***argv_p);

/* What an engine reports about the image it pushed. */
typedef struct {
    char digest[AF_DIGEST_STR_MAX];
    char media_type[AF_MAX_NAME + 1]; /* "" when the engine did not say */
    uint64_t size;                    /* 0 when the engine did not say */
} af_engine_image_t;

/* Parses BuildKit's --metadata-file JSON: "containerimage.digest"
 * (required) and "containerimage.descriptor" {mediaType, digest, size}
 * (optional; when present its digest must agree and it must be a
 * manifest, not an index). At most 1 MiB. */
int af_engine_metadata_parse(const char *json, size_t len, af_engine_image_t *out, af_err_t *err)
    __attribute__((warn_unused_result));
int af_engine_metadata_read(const char *path, af_engine_image_t *out, af_err_t *err)
    __attribute__((warn_unused_result));

/* Reads a --digestfile or --iidfile: "sha256:<64 hex>" (a bare 64-hex
 * image id gets the prefix), optional trailing newline, nothing else. */
int af_engine_digest_file_read(const char *path, char out[AF_DIGEST_STR_MAX], af_err_t *err)
    __attribute__((warn_unused_result));

/* Reads a whole small file (at most MAX bytes) into a malloc'd,
 * NUL-terminated buffer the caller owns. */
int af_engine_file_read(const char *path, size_t max, char **body_p, size_t *len_p, af_err_t *err)
    __attribute__((warn_unused_result));

/* Writes a Docker-style auth file {"auths":{HOST:{"auth":base64(U:P)}}}
 * at PATH with mode 0600 (HOST = the repository's registry). */
int af_engine_auth_file_write(const char *path, const char *repository, const char *username,
                              const char *password, af_err_t *err)
    __attribute__((warn_unused_result));

/* The full path of an executable NAME found in $PATH, or false. */
bool af_engine_which(const char *name, char *out, size_t len);

/* Fills SPEC's job fields (context dir, Dockerfile, platform, build args,
 * target, repository, insecure, source_date_epoch: unset maps to 0) from
 * JOB's BUILD message; every other field is zeroed for the executor to
 * set. SPEC borrows from JOB (valid while the job lives). Cannot fail. */
void af_engine_spec_from_build(af_engine_spec_t *spec, af_job_t *job);

/* --- per-job runner (loop thread) --- */

typedef struct af_engine_run af_engine_run_t;

/* A step's child has exited (waitpid STATUS), or CANCELLED is true when
 * the job was cancelled meanwhile. */
typedef void(af_engine_step_fn)(af_engine_run_t *run, af_job_t *job, int status, bool cancelled);

/* Frees everything: kills and reaps a running step, stops a worker,
 * zeroes secrets. NULL-safe; nulls *self_p. Called from release(). */
void af_engine_run_destroy(af_engine_run_t **self_p);

/* An executor's start(): the per-job runner (its tag names the job in
 * debug logs) with DATA_SIZE zeroed bytes of executor state as its data,
 * set as the job's exec data. The state is
 * the executor's to free in release(), with the runner. NULL with err
 * (AF_ERR_NOMEM) on OOM, nothing attached. */
af_engine_run_t *af_engine_run_attach(af_job_t *job, size_t data_size, af_err_t *err);

/* The executor state af_engine_run_attach allocated (borrowed). */
void *af_engine_run_data(af_engine_run_t *self);

/* Spawns ARGV (borrowed for the call) with ENVP in CWD as the job's
 * step: own process group, output lines as LOG, ON_EXIT when it ends.
 * Logs the command line (arguments only, never secrets: none are in
 * argv). 0 or an error. */
int af_engine_run_spawn(af_engine_run_t *self, char *const argv[], char *const envp[],
                        const char *cwd, af_engine_step_fn *on_exit, af_err_t *err)
    __attribute__((warn_unused_result));

/* Runs FN(ARGS) in a worker (af_worker_new semantics: ARGS taken, freed
 * with FREE_FN). Its log lines become "agent" LOG lines; when it returns
 * the job ends: outputs[0..2] = digest, media type, size on success. */
int af_engine_run_worker(af_engine_run_t *self, af_worker_fn *fn, void *args,
                         af_worker_free_fn *free_fn, af_err_t *err)
    __attribute__((warn_unused_result));

/* cancel(): kills the step's group (SIGTERM, SIGKILL after the job's
 * grace) or asks the worker to stop. */
void af_engine_run_cancel(af_engine_run_t *self);
bool af_engine_run_cancelled(const af_engine_run_t *self);

/* Ends the job with a failure outcome for a step's exit STATUS: "build"
 * with the exit code when WHAT is the build step, else "infra". */
void af_engine_run_fail_status(af_engine_run_t *self, af_job_t *job, const char *what, int status,
                               bool is_build);

/* Ends the job with FAILURE and a message. */
void af_engine_run_fail(af_engine_run_t *self, af_job_t *job, const char *failure, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* Checks that the image config CONFIG (LEN bytes) is for WANT. 0, or an
 * error "ENGINE built X, not Y" (or the config's parse error). */
int af_engine_check_platform(const char *engine, const char *config, size_t len,
                             const af_platform_t *want, af_err_t *err)
    __attribute__((warn_unused_result));

/* Arguments of af_engine_verify_worker. */
typedef struct {
    af_push_target_t target; /* the BUILD's repository and registry settings */
    af_platform_t platform;
    af_engine_image_t reported; /* what the engine said; media_type/size may be empty */
} af_engine_verify_args_t;

/* Copies BUILD's target (borrowed), PLATFORM and REPORTED. NULL on OOM. */
af_engine_verify_args_t *af_engine_verify_args_new(const af_msg_t *build,
                                                   const af_platform_t *platform,
                                                   const af_engine_image_t *reported);
void af_engine_verify_args_free(void *args);

/* Worker: GETs the reported manifest by digest from the repository,
 * checks it is a manifest whose config matches the platform, outputs
 * digest, media type, size. */
int af_engine_verify_worker(af_worker_ctx_t *ctx, void *args, af_err_t *err);

/* --- BuildKit-style executors (buildctl, docker buildx) ---
 * One step pushes by digest itself and leaves a metadata file; then the
 * verify worker checks the registry. ARGV_FN builds the engine's argv.
 * With registry credentials the step gets DOCKER_CONFIG pointing at a
 * private dir in the job dir holding a 0600 config.json (and, for docker,
 * links to the node's cli-plugins, buildx and contexts). */
typedef char **(af_engine_argv_fn)(const af_engine_spec_t *spec, af_err_t *err);
int af_engine_buildkit_start(af_job_t *job, const char *engine, af_engine_argv_fn *argv_fn,
                             af_err_t *err) __attribute__((warn_unused_result));
void af_engine_buildkit_cancel(af_job_t *job);
void af_engine_buildkit_release(af_job_t *job);

/* The job's engine environment: the agent's own, plus TMPDIR (when given)
 * and the extra "K=V" entries. Caller owns; free with
 * af_engine_env_free. */
char **af_engine_env_new(const char *tmpdir, const char *const *extra, af_err_t *err);
void af_engine_env_free(char ***env_p);

#endif
