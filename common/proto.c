/* proto.c -- the archfarm wire protocol: frames, msgpack bodies, validation.
 *
 * The agent (ROUTER) and the coordinator (DEALER) exchange multipart
 * messages [routing id] "ARCHFARM1" COMMAND BODY [DATA]. This file is the
 * only code that knows that layout or calls msgpack-c. Each command is a
 * table of fields (key, type, required, limit); one generic encoder and one
 * generic decoder walk those tables, and one checker (s_check) validates
 * the flat af_msg_t against them both before sending and after receiving,
 * so a message we send is exactly what a peer accepts. docs/protocol.md is
 * the normative description; keep the tables and that page in step.
 *
 * Hostile input: before msgpack-c sees a body, s_scan walks it without
 * allocating and rejects bodies whose containers declare more elements
 * than bytes remain (msgpack-c allocates by declared count, so 5 bytes
 * could ask for 100 GiB), nest deeper than AF_PROTO_MAX_DEPTH, or hold more
 * than AF_PROTO_MAX_ITEMS objects. Known keys are type-checked strictly
 * (no floats for ints, no bin for str, no ext), strings are rejected when
 * longer than their buffer or holding NUL, and a known key given twice is
 * rejected. Unknown keys are ignored, whatever their type. */
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- field and command tables ----------------------------------------- */

typedef enum {
    S_STR,    /* char array inside af_msg_t (cap = sizeof, NUL included) */
    S_SECRET, /* heap string (registry_password), cap = max length */
    S_LIST,   /* char ** + size_t count, cap = max element length */
    S_KV,     /* af_kv_t * + size_t count (build_args) */
    S_BOOL,
    S_U32,
    S_U64,
    S_I32,
    S_I64,
} s_type_t;

typedef enum {
    S_ANY,      /* any bytes but NUL (free text: messages, log lines, paths) */
    S_TOKEN,    /* printable ASCII without space */
    S_WORD,     /* [a-z][a-z0-9_-]* (states, executor names) */
    S_JOB,      /* [A-Za-z0-9][A-Za-z0-9._-]{0,127} */
    S_DIGEST,   /* sha256:<64 lowercase hex> */
    S_PLATFORM, /* [A-Za-z0-9._/-]+, short */
    S_ENUM,     /* one of values[] */
} s_syntax_t;

typedef struct {
    const char *key;
    s_type_t type;
    s_syntax_t syntax;
    size_t off;                /* offset of the value (array pointer for lists) */
    size_t noff;               /* offset of the count (lists, kv) */
    size_t cap;                /* see s_type_t */
    const char *const *values; /* S_ENUM, NULL-terminated */
    int64_t min;
    uint64_t max;
} s_field_t;

/* The tables read best as tables. */
/* clang-format off */
enum {
    K_VERSION, K_CLIENT, K_NODE, K_PLATFORMS, K_EXECUTORS, K_RUNNING, K_QUEUED,
    K_MAX_JOBS, K_HEARTBEAT_MS, K_JOB, K_ATTEMPT, K_PLATFORM, K_RECIPE_KIND,
    K_RECIPE_PATH, K_TARGET, K_BUILD_ARGS, K_CONTEXT_DIGEST, K_CONTEXT_SIZE,
    K_REPOSITORY, K_REGISTRY_INSECURE, K_REGISTRY_USERNAME, K_REGISTRY_PASSWORD,
    K_SOURCE_DATE_EPOCH, K_TIMEOUT_S, K_HAVE_CONTEXT, K_JOB_QUEUED, K_OFFSET,
    K_CREDIT, K_STREAM, K_LINE, K_STATE, K_DETAIL, K_OK, K_DIGEST, K_MEDIA_TYPE,
    K_SIZE, K_FAILURE, K_EXIT_CODE, K_MESSAGE, K_DURATION_MS, K_CODE,
    K_MANIFEST_FORMAT, K_ANNOTATIONS, K_PUSHED_BYTES, K_COMPRESSION,
    K_COMPRESSION_LEVEL, K_CONFINEMENT, K_CONTEXT_BASE, K_CONTEXT_DELTA_SIZE,
    K_HAVE_BASE,
    K_COUNT
};
_Static_assert(K_COUNT <= 64, "seen-key bitmask is 64 bits");

static const char *const s_recipe_kinds[] = {"native", "dockerfile", NULL};
static const char *const s_manifest_formats[] = {"", "oci", "docker", NULL};
static const char *const s_streams[] = {"stdout", "stderr", "agent", NULL};
static const char *const s_compressions[] = {"", "gzip", "zstd", NULL};
static const char *const s_failures[] = {"", "build", "infra", "registry", "cancelled", "timeout", NULL};

#define S_SIZEOF(name) sizeof(((af_msg_t *) 0)->name)
#define S_STRF(id, name, syn, vals) \
    [id] = {#name, S_STR, syn, offsetof(af_msg_t, name), 0, S_SIZEOF(name), vals, 0, 0}
#define S_NUMF(id, name, type, lo, hi) \
    [id] = {#name, type, S_ANY, offsetof(af_msg_t, name), 0, 0, NULL, lo, hi}
#define S_BOOLF(id, name) [id] = {#name, S_BOOL, S_ANY, offsetof(af_msg_t, name), 0, 0, NULL, 0, 1}
#define S_LISTF(id, name, ncount, elemmax, syn) \
    [id] = {#name, S_LIST, syn, offsetof(af_msg_t, name), offsetof(af_msg_t, ncount), elemmax, \
            NULL, 0, AF_MAX_LIST}

static const s_field_t s_fields[K_COUNT] = {
    S_STRF(K_VERSION, version, S_TOKEN, NULL),
    S_STRF(K_CLIENT, client, S_TOKEN, NULL),
    S_STRF(K_NODE, node, S_TOKEN, NULL),
    S_LISTF(K_PLATFORMS, platforms, n_platforms, AF_PLATFORM_STR_MAX - 1, S_PLATFORM),
    S_LISTF(K_EXECUTORS, executors, n_executors, AF_MAX_NAME, S_WORD),
    S_NUMF(K_RUNNING, running, S_U32, 0, UINT32_MAX),
    S_NUMF(K_QUEUED, queued, S_U32, 0, UINT32_MAX),
    S_NUMF(K_MAX_JOBS, max_jobs, S_U32, 0, UINT32_MAX),
    S_NUMF(K_HEARTBEAT_MS, heartbeat_ms, S_U32, 1, UINT32_MAX),
    S_STRF(K_JOB, job, S_JOB, NULL),
    S_NUMF(K_ATTEMPT, attempt, S_U32, 1, UINT32_MAX),
    S_STRF(K_PLATFORM, platform, S_PLATFORM, NULL),
    S_STRF(K_RECIPE_KIND, recipe_kind, S_ENUM, s_recipe_kinds),
    S_STRF(K_RECIPE_PATH, recipe_path, S_ANY, NULL),
    S_STRF(K_TARGET, target, S_TOKEN, NULL),
    [K_BUILD_ARGS] = {"build_args", S_KV, S_ANY, offsetof(af_msg_t, build_args),
                      offsetof(af_msg_t, n_build_args), AF_MAX_STR, NULL, 0, AF_MAX_BUILD_ARGS},
    S_STRF(K_CONTEXT_DIGEST, context_digest, S_DIGEST, NULL),
    S_NUMF(K_CONTEXT_SIZE, context_size, S_U64, 0, (uint64_t) AF_CONTEXT_MAX_BYTES),
    S_STRF(K_CONTEXT_BASE, context_base, S_DIGEST, NULL),
    S_NUMF(K_CONTEXT_DELTA_SIZE, context_delta_size, S_U64, 0, (uint64_t) AF_CONTEXT_MAX_BYTES),
    S_STRF(K_REPOSITORY, repository, S_TOKEN, NULL),
    S_BOOLF(K_REGISTRY_INSECURE, registry_insecure),
    S_STRF(K_MANIFEST_FORMAT, manifest_format, S_ENUM, s_manifest_formats),
    S_STRF(K_CONFINEMENT, confinement, S_WORD, NULL),
    [K_ANNOTATIONS] = {"annotations", S_KV, S_ANY, offsetof(af_msg_t, annotations),
                       offsetof(af_msg_t, n_annotations), AF_MAX_STR, NULL, 0, AF_MAX_BUILD_ARGS},
    S_STRF(K_REGISTRY_USERNAME, registry_username, S_ANY, NULL),
    [K_REGISTRY_PASSWORD] = {"registry_password", S_SECRET, S_ANY,
                             offsetof(af_msg_t, registry_password), 0, AF_MAX_SECRET, NULL, 0, 0},
    S_NUMF(K_SOURCE_DATE_EPOCH, source_date_epoch, S_I64, -1, INT64_MAX),
    S_NUMF(K_TIMEOUT_S, timeout_s, S_U32, 0, UINT32_MAX),
    S_BOOLF(K_HAVE_CONTEXT, have_context),
    S_BOOLF(K_HAVE_BASE, have_base),
    S_BOOLF(K_JOB_QUEUED, job_queued),
    S_NUMF(K_OFFSET, offset, S_U64, 0, (uint64_t) AF_CONTEXT_MAX_BYTES),
    S_NUMF(K_CREDIT, credit, S_U32, 0, UINT32_MAX),
    S_STRF(K_STREAM, stream, S_ENUM, s_streams),
    S_STRF(K_LINE, line, S_ANY, NULL),
    S_STRF(K_STATE, state, S_WORD, NULL),
    S_STRF(K_DETAIL, detail, S_ANY, NULL),
    S_BOOLF(K_OK, ok),
    S_STRF(K_DIGEST, digest, S_DIGEST, NULL),
    S_STRF(K_MEDIA_TYPE, media_type, S_TOKEN, NULL),
    S_NUMF(K_SIZE, size, S_U64, 0, UINT64_MAX),
    S_STRF(K_FAILURE, failure, S_ENUM, s_failures),
    S_NUMF(K_EXIT_CODE, exit_code, S_I32, INT32_MIN, INT32_MAX),
    S_STRF(K_MESSAGE, message, S_ANY, NULL),
    S_NUMF(K_DURATION_MS, duration_ms, S_U64, 0, UINT64_MAX),
    S_NUMF(K_CODE, code, S_I32, INT32_MIN, INT32_MAX),
    S_NUMF(K_PUSHED_BYTES, pushed_bytes, S_I64, -1, INT64_MAX),
    S_STRF(K_COMPRESSION, compression, S_ENUM, s_compressions),
    S_NUMF(K_COMPRESSION_LEVEL, compression_level, S_I32, 0, AF_COMPRESSION_LEVEL_MAX),
};

/* How a command uses a field. */
#define U_REQ 1      /* key must be present */
#define U_NONEMPTY 2 /* string must not be "" */
#define U_ZERO 4     /* number may be 0 even if the field's min is higher */

typedef struct {
    uint8_t field;
    uint8_t flags;
} s_use_t;

#define U_JOB {K_JOB, U_REQ | U_NONEMPTY}, {K_ATTEMPT, U_REQ}

static const s_use_t s_hello[] = {{K_VERSION, U_REQ | U_NONEMPTY}, {K_CLIENT, 0}};
static const s_use_t s_welcome[] = {
    {K_VERSION, U_REQ | U_NONEMPTY}, {K_NODE, U_REQ | U_NONEMPTY}, {K_PLATFORMS, U_REQ},
    {K_EXECUTORS, U_REQ}, {K_RUNNING, U_REQ}, {K_QUEUED, U_REQ}, {K_MAX_JOBS, U_REQ},
    {K_HEARTBEAT_MS, U_REQ}, {K_CONFINEMENT, 0}};
static const s_use_t s_build[] = {
    U_JOB,
    {K_PLATFORM, U_REQ | U_NONEMPTY},
    {K_RECIPE_KIND, U_REQ | U_NONEMPTY},
    {K_RECIPE_PATH, U_REQ | U_NONEMPTY},
    {K_TARGET, 0},
    {K_BUILD_ARGS, 0},
    {K_CONTEXT_DIGEST, U_REQ | U_NONEMPTY},
    {K_CONTEXT_SIZE, U_REQ},
    {K_CONTEXT_BASE, 0},
    {K_CONTEXT_DELTA_SIZE, 0},
    {K_REPOSITORY, U_REQ | U_NONEMPTY},
    {K_REGISTRY_INSECURE, 0},
    {K_MANIFEST_FORMAT, 0},
    {K_ANNOTATIONS, 0},
    {K_REGISTRY_USERNAME, 0},
    {K_REGISTRY_PASSWORD, 0},
    {K_SOURCE_DATE_EPOCH, 0},
    {K_TIMEOUT_S, 0},
    {K_COMPRESSION, 0},
    {K_COMPRESSION_LEVEL, 0}};
static const s_use_t s_accept[] = {
    U_JOB, {K_HAVE_CONTEXT, U_REQ}, {K_JOB_QUEUED, 0}, {K_HAVE_BASE, 0}};
static const s_use_t s_credit[] = {U_JOB, {K_OFFSET, U_REQ}, {K_CREDIT, U_REQ}};
static const s_use_t s_chunk[] = {U_JOB, {K_OFFSET, U_REQ}};
static const s_use_t s_log[] = {U_JOB, {K_STREAM, U_REQ | U_NONEMPTY}, {K_LINE, U_REQ}};
static const s_use_t s_status[] = {U_JOB, {K_STATE, U_REQ | U_NONEMPTY}, {K_DETAIL, 0}};
static const s_use_t s_result[] = {
    U_JOB,         {K_OK, U_REQ},    {K_DIGEST, 0},    {K_MEDIA_TYPE, 0},  {K_SIZE, 0},
    {K_PLATFORM, 0}, {K_FAILURE, 0}, {K_EXIT_CODE, 0}, {K_MESSAGE, 0}, {K_DURATION_MS, 0},
    {K_PUSHED_BYTES, 0}};
static const s_use_t s_cancel[] = {{K_JOB, U_REQ | U_NONEMPTY}, {K_ATTEMPT, U_REQ | U_ZERO}};
static const s_use_t s_heartbeat[] = {{K_RUNNING, U_REQ}, {K_QUEUED, U_REQ}};
static const s_use_t s_error[] = {{K_CODE, U_REQ}, {K_MESSAGE, U_REQ}, {K_JOB, 0}};

typedef struct {
    const char *name;
    const s_use_t *uses;
    size_t n_uses;
    bool data; /* exactly one DATA frame follows the body */
} s_cmd_t;

#define S_CMD(name, uses, data) {name, uses, sizeof(uses) / sizeof(uses[0]), data}

static const s_cmd_t s_cmds[AF_CMD_COUNT] = {
    [AF_CMD_INVALID] = {"INVALID", NULL, 0, false},
    [AF_CMD_HELLO] = S_CMD("HELLO", s_hello, false),
    [AF_CMD_WELCOME] = S_CMD("WELCOME", s_welcome, false),
    [AF_CMD_BUILD] = S_CMD("BUILD", s_build, false),
    [AF_CMD_ACCEPT] = S_CMD("ACCEPT", s_accept, false),
    [AF_CMD_CREDIT] = S_CMD("CREDIT", s_credit, false),
    [AF_CMD_CHUNK] = S_CMD("CHUNK", s_chunk, true),
    [AF_CMD_LOG] = S_CMD("LOG", s_log, false),
    [AF_CMD_STATUS] = S_CMD("STATUS", s_status, false),
    [AF_CMD_RESULT] = S_CMD("RESULT", s_result, false),
    [AF_CMD_CANCEL] = S_CMD("CANCEL", s_cancel, false),
    [AF_CMD_HEARTBEAT] = S_CMD("HEARTBEAT", s_heartbeat, false),
    [AF_CMD_ERROR] = S_CMD("ERROR", s_error, false),
};
/* clang-format on */

/* ---- small helpers ----------------------------------------------------- */

/* Copies up to 40 bytes of untrusted S into dst for an error message,
 * replacing anything unprintable with '?'. Returns dst. */
static const char *s_quote(char *dst, size_t dstlen, const char *s, size_t len)
{
    size_t i, o = 0;
    for (i = 0; i < len && i < 40 && o + 4 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < len && o + 4 < dstlen) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    if (dstlen)
        dst[o < dstlen ? o : dstlen - 1] = '\0';
    return dst;
}

static bool s_is_job(const char *s, size_t len)
{
    if (len < 1 || len > AF_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

/* Our own copy of the digest syntax check so proto does not depend on
 * digest.c being linked (same rule as af_digest_valid). */
static bool s_is_digest(const char *s, size_t len)
{
    if (len != 7 + 64 || memcmp(s, "sha256:", 7) != 0)
        return false;
    for (size_t i = 7; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool s_syntax_ok(s_syntax_t syn, const char *const *values, const char *s, size_t len)
{
    switch (syn) {
    case S_ANY:
        return memchr(s, '\0', len) == NULL;
    case S_TOKEN:
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                return false;
        return true;
    case S_WORD:
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            bool ok = (c >= 'a' && c <= 'z') ||
                      (i > 0 && ((c >= '0' && c <= '9') || c == '_' || c == '-'));
            if (!ok)
                return false;
        }
        return true;
    case S_JOB:
        return s_is_job(s, len);
    case S_DIGEST:
        return s_is_digest(s, len);
    case S_PLATFORM:
        if (len >= AF_PLATFORM_STR_MAX)
            return false;
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '/' || c == '-'))
                return false;
        }
        return true;
    case S_ENUM:
        for (size_t i = 0; values && values[i]; i++)
            if (strlen(values[i]) == len && memcmp(values[i], s, len) == 0)
                return true;
        return false;
    }
    return false;
}

static const char *s_syntax_name(s_syntax_t syn)
{
    switch (syn) {
    case S_ANY:
        return "text without NUL";
    case S_TOKEN:
        return "printable ASCII without spaces";
    case S_WORD:
        return "a lowercase word";
    case S_JOB:
        return "a job id [A-Za-z0-9][A-Za-z0-9._-]{0,127}";
    case S_DIGEST:
        return "sha256:<64 lowercase hex>";
    case S_PLATFORM:
        return "a platform os/arch[/variant]";
    case S_ENUM:
        return "one of the allowed values";
    }
    return "?";
}

static void *s_at(const af_msg_t *self, size_t off)
{
    return (char *)self + off;
}

static void s_secret_free(char **secret_p)
{
    if (*secret_p) {
        OPENSSL_cleanse(*secret_p, strlen(*secret_p));
        free(*secret_p);
        *secret_p = NULL;
    }
}

static void s_list_free(char ***list_p, size_t *n_p)
{
    for (size_t i = 0; *list_p && i < *n_p; i++)
        free((*list_p)[i]);
    free(*list_p);
    *list_p = NULL;
    *n_p = 0;
}

static void s_kv_free(af_kv_t **kv_p, size_t *n_p)
{
    for (size_t i = 0; *kv_p && i < *n_p; i++) {
        free((*kv_p)[i].key);
        free((*kv_p)[i].value);
    }
    free(*kv_p);
    *kv_p = NULL;
    *n_p = 0;
}

static char *s_strndup(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* ---- lifecycle --------------------------------------------------------- */

af_msg_t *af_msg_new(af_cmd_t cmd)
{
    if ((int)cmd < 0 || cmd >= AF_CMD_COUNT)
        return NULL;
    af_msg_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cmd = cmd;
    self->attempt = 1;
    self->source_date_epoch = -1;
    self->exit_code = -1;
    self->pushed_bytes = -1;
    return self;
}

void af_msg_destroy(af_msg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_msg_t *self = *self_p;
    s_list_free(&self->platforms, &self->n_platforms);
    s_list_free(&self->executors, &self->n_executors);
    s_kv_free(&self->build_args, &self->n_build_args);
    s_kv_free(&self->annotations, &self->n_annotations);
    s_secret_free(&self->registry_password);
    zframe_destroy(&self->routing_id);
    zframe_destroy(&self->data);
    free(self);
    *self_p = NULL;
}

const char *af_cmd_name(af_cmd_t cmd)
{
    if ((int)cmd <= 0 || cmd >= AF_CMD_COUNT)
        return "INVALID";
    return s_cmds[cmd].name;
}

static int s_list_add(char ***list_p, size_t *n_p, const char *s, size_t maxlen)
{
    if (!s)
        return AF_ERR_INVAL;
    if (*n_p >= AF_MAX_LIST || strnlen(s, maxlen + 1) > maxlen)
        return AF_ERR_TOOBIG;
    char **list = realloc(*list_p, (*n_p + 1) * sizeof *list);
    if (!list)
        return AF_ERR_NOMEM;
    *list_p = list;
    if (!(list[*n_p] = strdup(s)))
        return AF_ERR_NOMEM;
    (*n_p)++;
    return 0;
}

int af_msg_add_platform(af_msg_t *self, const char *p)
{
    return s_list_add(&self->platforms, &self->n_platforms, p, AF_PLATFORM_STR_MAX - 1);
}

int af_msg_add_executor(af_msg_t *self, const char *e)
{
    return s_list_add(&self->executors, &self->n_executors, e, AF_MAX_NAME);
}

/* Appends a copy of KEY=VALUE to the list *list_p of *n_p entries. */
static int s_kv_add(af_kv_t **list_p, size_t *n_p, const char *key, const char *value)
{
    if (!key || !value)
        return AF_ERR_INVAL;
    if (*n_p >= AF_MAX_BUILD_ARGS || strnlen(key, AF_MAX_NAME + 1) > AF_MAX_NAME ||
        strnlen(value, AF_MAX_STR + 1) > AF_MAX_STR)
        return AF_ERR_TOOBIG;
    af_kv_t *kv = realloc(*list_p, (*n_p + 1) * sizeof *kv);
    if (!kv)
        return AF_ERR_NOMEM;
    *list_p = kv;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return AF_ERR_NOMEM;
    }
    kv[*n_p].key = k;
    kv[*n_p].value = v;
    (*n_p)++;
    return 0;
}

int af_msg_add_build_arg(af_msg_t *self, const char *key, const char *value)
{
    return s_kv_add(&self->build_args, &self->n_build_args, key, value);
}

int af_msg_add_annotation(af_msg_t *self, const char *key, const char *value)
{
    return s_kv_add(&self->annotations, &self->n_annotations, key, value);
}

int af_msg_set_password(af_msg_t *self, const char *password)
{
    s_secret_free(&self->registry_password);
    if (!password)
        return 0;
    size_t len = strnlen(password, AF_MAX_SECRET + 1);
    if (len > AF_MAX_SECRET)
        return AF_ERR_TOOBIG;
    if (!(self->registry_password = s_strndup(password, len)))
        return AF_ERR_NOMEM;
    return 0;
}

void af_msg_set_routing_id(af_msg_t *self, zframe_t *routing_id)
{
    zframe_destroy(&self->routing_id);
    if (routing_id)
        self->routing_id = zframe_dup(routing_id);
}

void af_msg_set_data(af_msg_t *self, zframe_t **data_p)
{
    zframe_destroy(&self->data);
    if (data_p) {
        self->data = *data_p;
        *data_p = NULL;
    }
}

/* ---- validation of the flat record (encode and decode) ------------------ */

static int s_check_number(const s_field_t *f, uint8_t flags, const af_msg_t *self, const char *cmd,
                          af_err_t *err)
{
    const void *p = s_at(self, f->off);
    int64_t min = (flags & U_ZERO) ? 0 : f->min;
    bool neg = false;
    uint64_t u = 0;
    int64_t i = 0;
    switch (f->type) {
    case S_U32:
        u = *(const uint32_t *)p;
        break;
    case S_U64:
        u = *(const uint64_t *)p;
        break;
    case S_I32:
        i = *(const int32_t *)p;
        neg = i < 0;
        u = (uint64_t)i;
        break;
    case S_I64:
        i = *(const int64_t *)p;
        neg = i < 0;
        u = (uint64_t)i;
        break;
    default:
        return 0;
    }
    if (neg ? i < min : (min > 0 && u < (uint64_t)min))
        return af_err_set(err, AF_ERR_PROTO, "%s: '%s' must be >= %" PRId64, cmd, f->key, min);
    if (!neg && u > f->max)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: '%s' must be <= %" PRIu64, cmd, f->key, f->max);
    return 0;
}

static int s_check_string(const s_field_t *f, uint8_t flags, const char *s, size_t cap,
                          const char *cmd, af_err_t *err)
{
    char q[64];
    size_t len = strnlen(s, cap);
    if (len >= cap)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: '%s' is longer than %zu bytes", cmd, f->key,
                          cap - 1);
    if (len == 0) {
        if (flags & U_NONEMPTY)
            return af_err_set(err, AF_ERR_PROTO, "%s: '%s' must not be empty", cmd, f->key);
        if (f->syntax != S_ENUM)
            return 0;
    }
    if (!s_syntax_ok(f->syntax, f->values, s, len)) {
        if (f->type == S_SECRET)
            return af_err_set(err, AF_ERR_PROTO, "%s: '%s' is malformed", cmd, f->key);
        return af_err_set(err, AF_ERR_PROTO, "%s: '%s' \"%s\" is not %s", cmd, f->key,
                          s_quote(q, sizeof q, s, len), s_syntax_name(f->syntax));
    }
    return 0;
}

/* BUILD: a delta base comes with its size and is not the context itself. */
static int s_check_delta(const af_msg_t *self, af_err_t *err)
{
    bool has_base = self->context_base[0] != '\0';
    if (has_base != (self->context_delta_size > 0))
        return af_err_set(err, AF_ERR_PROTO,
                          "BUILD: 'context_base' and 'context_delta_size' come together");
    if (has_base && (!strcmp(self->context_base, self->context_digest) || self->context_size == 0))
        return af_err_set(err, AF_ERR_PROTO,
                          "BUILD: 'context_base' must differ from a non-empty context");
    return 0;
}

/* Checks every field SELF's command uses: lengths, syntax, ranges, lists,
 * and the rules that tie fields together. 0 or AF_ERR_PROTO/TOOBIG.
 * Long (about 85 lines): one pass over the command's field table with a
 * case per field type, then the cross-field rules, read top to bottom. */
static int s_check(const af_msg_t *self, af_err_t *err)
{
    const s_cmd_t *c = &s_cmds[self->cmd];
    int rc;
    for (size_t u = 0; u < c->n_uses; u++) {
        const s_field_t *f = &s_fields[c->uses[u].field];
        uint8_t flags = c->uses[u].flags;
        switch (f->type) {
        case S_STR:
            if ((rc = s_check_string(f, flags, s_at(self, f->off), f->cap, c->name, err)))
                return rc;
            break;
        case S_SECRET: {
            const char *s = *(char *const *)s_at(self, f->off);
            if (s && (rc = s_check_string(f, flags, s, f->cap + 1, c->name, err)))
                return rc;
            break;
        }
        case S_LIST: {
            char *const *list = *(char **const *)s_at(self, f->off);
            size_t n = *(const size_t *)s_at(self, f->noff);
            if (n > f->max)
                return af_err_set(err, AF_ERR_TOOBIG, "%s: '%s' has more than %" PRIu64 " items",
                                  c->name, f->key, f->max);
            for (size_t i = 0; i < n; i++) {
                if (!list || !list[i])
                    return af_err_set(err, AF_ERR_INVAL, "%s: '%s' has a NULL item", c->name,
                                      f->key);
                if ((rc = s_check_string(f, U_NONEMPTY, list[i], f->cap + 1, c->name, err)))
                    return rc;
            }
            break;
        }
        case S_KV: {
            const af_kv_t *kv = *(af_kv_t *const *)s_at(self, f->off);
            size_t n = *(const size_t *)s_at(self, f->noff);
            char q[64];
            if (n > f->max)
                return af_err_set(err, AF_ERR_TOOBIG, "%s: '%s' has more than %" PRIu64 " items",
                                  c->name, f->key, f->max);
            for (size_t i = 0; i < n; i++) {
                if (!kv || !kv[i].key || !kv[i].value)
                    return af_err_set(err, AF_ERR_INVAL, "%s: '%s' has a NULL item", c->name,
                                      f->key);
                size_t klen = strnlen(kv[i].key, AF_MAX_NAME + 1);
                if (klen > AF_MAX_NAME || strnlen(kv[i].value, AF_MAX_STR + 1) > AF_MAX_STR)
                    return af_err_set(err, AF_ERR_TOOBIG, "%s: '%s' item %zu is too long", c->name,
                                      f->key, i);
                if (klen == 0 || !s_syntax_ok(S_TOKEN, NULL, kv[i].key, klen) ||
                    memchr(kv[i].key, '=', klen))
                    return af_err_set(err, AF_ERR_PROTO, "%s: '%s' key \"%s\" is not a name",
                                      c->name, f->key, s_quote(q, sizeof q, kv[i].key, klen));
                for (size_t j = 0; j < i; j++)
                    if (strcmp(kv[j].key, kv[i].key) == 0)
                        return af_err_set(err, AF_ERR_PROTO, "%s: '%s' key \"%s\" is repeated",
                                          c->name, f->key, s_quote(q, sizeof q, kv[i].key, klen));
            }
            break;
        }
        case S_BOOL:
            break;
        default:
            if ((rc = s_check_number(f, flags, self, c->name, err)))
                return rc;
            break;
        }
    }
    if (self->cmd == AF_CMD_BUILD && (rc = s_check_delta(self, err)))
        return rc;
    if (self->cmd == AF_CMD_RESULT) {
        if (self->ok && (self->failure[0] || !self->digest[0]))
            return af_err_set(err, AF_ERR_PROTO,
                              "RESULT: ok=true needs a digest and an empty failure");
        if (!self->ok && !self->failure[0])
            return af_err_set(err, AF_ERR_PROTO, "RESULT: ok=false needs a failure");
    }
    if (self->cmd == AF_CMD_CHUNK) {
        size_t len = self->data ? zframe_size(self->data) : 0;
        if (!self->data || len < 1 || len > AF_CHUNK_SIZE)
            return af_err_set(err, self->data && len ? AF_ERR_TOOBIG : AF_ERR_PROTO,
                              "CHUNK: needs one data frame of 1..%d bytes (got %zu)", AF_CHUNK_SIZE,
                              len);
        if (self->offset + len > (uint64_t)AF_CONTEXT_MAX_BYTES)
            return af_err_set(err, AF_ERR_TOOBIG, "CHUNK: offset+length beyond the context limit");
    }
    return 0;
}

/* ---- encoding ---------------------------------------------------------- */

static int s_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    return msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, s, len);
}

/* An upper bound of the packed body, so the buffer is allocated once and a
 * password is never left behind in a realloc'd-away block. */
static size_t s_body_bound(const af_msg_t *self)
{
    const s_cmd_t *c = &s_cmds[self->cmd];
    size_t n = 5;
    for (size_t u = 0; u < c->n_uses; u++) {
        const s_field_t *f = &s_fields[c->uses[u].field];
        n += strlen(f->key) + 5 + 9;
        if (f->type == S_STR)
            n += strnlen(s_at(self, f->off), f->cap);
        else if (f->type == S_SECRET) {
            const char *s = *(char *const *)s_at(self, f->off);
            n += s ? strlen(s) : 0;
        } else if (f->type == S_LIST) {
            char *const *list = *(char **const *)s_at(self, f->off);
            size_t cnt = *(const size_t *)s_at(self, f->noff);
            for (size_t i = 0; i < cnt; i++)
                n += strlen(list[i]) + 5;
        } else if (f->type == S_KV) {
            const af_kv_t *kv = *(af_kv_t *const *)s_at(self, f->off);
            size_t cnt = *(const size_t *)s_at(self, f->noff);
            for (size_t i = 0; i < cnt; i++)
                n += strlen(kv[i].key) + strlen(kv[i].value) + 10;
        }
    }
    return n;
}

static int s_pack_field(msgpack_packer *pk, const af_msg_t *self, const s_field_t *f)
{
    const void *p = s_at(self, f->off);
    if (s_pack_str(pk, f->key, strlen(f->key)))
        return -1;
    switch (f->type) {
    case S_STR:
        return s_pack_str(pk, p, strlen(p));
    case S_SECRET: {
        const char *s = *(char *const *)p;
        return s_pack_str(pk, s, strlen(s));
    }
    case S_LIST: {
        char *const *list = *(char **const *)p;
        size_t n = *(const size_t *)s_at(self, f->noff);
        if (msgpack_pack_array(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (s_pack_str(pk, list[i], strlen(list[i])))
                return -1;
        return 0;
    }
    case S_KV: {
        const af_kv_t *kv = *(af_kv_t *const *)p;
        size_t n = *(const size_t *)s_at(self, f->noff);
        if (msgpack_pack_map(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (s_pack_str(pk, kv[i].key, strlen(kv[i].key)) ||
                s_pack_str(pk, kv[i].value, strlen(kv[i].value)))
                return -1;
        return 0;
    }
    case S_BOOL:
        return *(const bool *)p ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case S_U32:
        return msgpack_pack_uint32(pk, *(const uint32_t *)p);
    case S_U64:
        return msgpack_pack_uint64(pk, *(const uint64_t *)p);
    case S_I32:
        return msgpack_pack_int32(pk, *(const int32_t *)p);
    case S_I64:
        return msgpack_pack_int64(pk, *(const int64_t *)p);
    }
    return -1;
}

zmsg_t *af_msg_encode(const af_msg_t *self, af_err_t *err)
{
    if (!self || (int)self->cmd <= 0 || self->cmd >= AF_CMD_COUNT) {
        af_err_set(err, AF_ERR_INVAL, "cannot encode a message without a valid command");
        return NULL;
    }
    const s_cmd_t *c = &s_cmds[self->cmd];
    if (!c->data && self->data) {
        af_err_set(err, AF_ERR_INVAL, "%s: only CHUNK carries a data frame", c->name);
        return NULL;
    }
    if (s_check(self, err) != 0)
        return NULL;

    zmsg_t *zmsg = NULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t bound = s_body_bound(self);
    if (!(sb.data = malloc(bound))) {
        af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", c->name);
        return NULL;
    }
    sb.alloc = bound;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    size_t n = 0;
    for (size_t u = 0; u < c->n_uses; u++) {
        const s_field_t *f = &s_fields[c->uses[u].field];
        if (f->type != S_SECRET || *(char *const *)s_at(self, f->off))
            n++;
    }
    if (msgpack_pack_map(&pk, n))
        goto nomem;
    for (size_t u = 0; u < c->n_uses; u++) {
        const s_field_t *f = &s_fields[c->uses[u].field];
        if (f->type == S_SECRET && !*(char *const *)s_at(self, f->off))
            continue;
        if (s_pack_field(&pk, self, f))
            goto nomem;
    }

    zmsg = zmsg_new();
    if (!zmsg)
        goto nomem;
    if (self->routing_id) {
        zframe_t *rid = zframe_dup(self->routing_id);
        if (!rid || zmsg_append(zmsg, &rid))
            goto nomem;
    }
    if (zmsg_addstr(zmsg, AF_PROTO_ID) || zmsg_addstr(zmsg, c->name) ||
        zmsg_addmem(zmsg, sb.data, sb.size))
        goto nomem;
    if (c->data) {
        zframe_t *data = zframe_dup(self->data);
        if (!data || zmsg_append(zmsg, &data))
            goto nomem;
    }
    OPENSSL_cleanse(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return zmsg;

nomem:
    af_err_set(err, AF_ERR_NOMEM, "%s: out of memory while encoding", c->name);
    zmsg_destroy(&zmsg);
    if (sb.data)
        OPENSSL_cleanse(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return NULL;
}

int af_msg_send(const af_msg_t *self, zsock_t *sock, af_err_t *err)
{
    af_err_t local;
    if (!err)
        err = &local;
    af_err_clear(err);
    zmsg_t *zmsg = af_msg_encode(self, err);
    if (!zmsg)
        return err->code;
    if (zmsg_send(&zmsg, sock) != 0) {
        int e = zmq_errno();
        zmsg_destroy(&zmsg);
        return af_err_set(err, AF_ERR_NET, "sending %s failed: %s", af_cmd_name(self->cmd),
                          zmq_strerror(e));
    }
    return 0;
}

/* ---- decoding ---------------------------------------------------------- */

/* Reads a K-byte big-endian integer at *pos. False when truncated. */
static bool s_read_be(const uint8_t *p, size_t len, size_t *pos, size_t k, uint64_t *out)
{
    if (len - *pos < k)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++)
        v = (v << 8) | p[*pos + i];
    *pos += k;
    *out = v;
    return true;
}

/* The msgpack type bytes 0xc0..0xdf: how many big-endian length bytes
 * follow the type byte, how many payload bytes follow besides that length
 * (fixed sizes, the ext type byte), and whether it opens a container. */
enum { S_SCALAR, S_ARRAY, S_MAP, S_NEVER };
static const struct {
    uint8_t lenbytes, fixed, kind;
} s_heads[32] = {
    [0x00] = {0, 0, S_SCALAR},                             /* nil */
    [0x01] = {0, 0, S_NEVER},                              /* 0xc1 is never used */
    [0x02] = {0, 0, S_SCALAR},  [0x03] = {0, 0, S_SCALAR}, /* false, true */
    [0x04] = {1, 0, S_SCALAR},  [0x05] = {2, 0, S_SCALAR}, /* bin 8/16/32 */
    [0x06] = {4, 0, S_SCALAR},  [0x07] = {1, 1, S_SCALAR}, /* ext 8/16/32 (+type) */
    [0x08] = {2, 1, S_SCALAR},  [0x09] = {4, 1, S_SCALAR},
    [0x0a] = {0, 4, S_SCALAR},  [0x0b] = {0, 8, S_SCALAR}, /* float 32/64 */
    [0x0c] = {0, 1, S_SCALAR},  [0x0d] = {0, 2, S_SCALAR}, /* uint 8/16/32/64 */
    [0x0e] = {0, 4, S_SCALAR},  [0x0f] = {0, 8, S_SCALAR},
    [0x10] = {0, 1, S_SCALAR},  [0x11] = {0, 2, S_SCALAR}, /* int 8/16/32/64 */
    [0x12] = {0, 4, S_SCALAR},  [0x13] = {0, 8, S_SCALAR},
    [0x14] = {0, 2, S_SCALAR},  [0x15] = {0, 3, S_SCALAR}, /* fixext 1/2/4/8/16 */
    [0x16] = {0, 5, S_SCALAR},  [0x17] = {0, 9, S_SCALAR},
    [0x18] = {0, 17, S_SCALAR}, [0x19] = {1, 0, S_SCALAR}, /* str 8/16/32 */
    [0x1a] = {2, 0, S_SCALAR},  [0x1b] = {4, 0, S_SCALAR},
    [0x1c] = {2, 0, S_ARRAY},   [0x1d] = {4, 0, S_ARRAY}, /* array 16/32 */
    [0x1e] = {2, 0, S_MAP},     [0x1f] = {4, 0, S_MAP},   /* map 16/32 */
};

/* Walks the one msgpack object in P[0..len) without allocating, so that
 * msgpack-c is only handed bodies whose allocations are bounded by their
 * size: every container must declare no more elements than bytes remain,
 * nesting stays within AF_PROTO_MAX_DEPTH and the object count within
 * AF_PROTO_MAX_ITEMS. Sets *used to the bytes the object spans. */
static int s_scan(const uint8_t *p, size_t len, size_t *used, const char *cmd, af_err_t *err)
{
    uint64_t left[AF_PROTO_MAX_DEPTH + 1];
    size_t depth = 0, pos = 0, items = 0;
    left[0] = 1;
    for (;;) {
        while (left[depth] == 0) {
            if (depth == 0) {
                *used = pos;
                return 0;
            }
            depth--;
        }
        left[depth]--;
        if (++items > AF_PROTO_MAX_ITEMS)
            return af_err_set(err, AF_ERR_TOOBIG, "%s: body holds more than %d objects", cmd,
                              AF_PROTO_MAX_ITEMS);
        if (pos >= len)
            goto truncated;
        uint8_t b = p[pos++];
        uint64_t n = 0, skip = 0;
        int kind = S_SCALAR;
        if (b <= 0x7f || b >= 0xe0) {
            /* positive or negative fixint: nothing follows */
        } else if (b <= 0x8f) {
            kind = S_MAP;
            n = b & 0x0f;
        } else if (b <= 0x9f) {
            kind = S_ARRAY;
            n = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f; /* fixstr */
        } else {
            kind = s_heads[b - 0xc0].kind;
            if (kind == S_NEVER)
                return af_err_set(err, AF_ERR_PARSE, "%s: body is not valid msgpack", cmd);
            if (!s_read_be(p, len, &pos, s_heads[b - 0xc0].lenbytes, &n))
                goto truncated;
            if (kind == S_SCALAR) {
                skip = n + s_heads[b - 0xc0].fixed;
                n = 0;
            }
        }
        if (kind == S_MAP)
            n *= 2;
        if (kind == S_SCALAR) {
            if (skip > len - pos)
                goto truncated;
            pos += skip;
        } else if (n > 0) {
            if (n > len - pos)
                goto truncated;
            if (depth + 1 > AF_PROTO_MAX_DEPTH)
                return af_err_set(err, AF_ERR_TOOBIG, "%s: body nests deeper than %d", cmd,
                                  AF_PROTO_MAX_DEPTH);
            left[++depth] = n;
        }
    }
truncated:
    return af_err_set(err, AF_ERR_PARSE, "%s: body is truncated msgpack", cmd);
}

static const char *s_type_name(msgpack_object_type t)
{
    switch (t) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return "uint";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "?";
}

static int s_wrong_type(const s_field_t *f, const msgpack_object *o, const char *want,
                        const char *cmd, af_err_t *err)
{
    return af_err_set(err, AF_ERR_PROTO, "%s: '%s' must be %s, got %s", cmd, f->key, want,
                      s_type_name(o->type));
}

/* Checks O is a str of at most MAXLEN bytes with no NUL. */
static int s_get_str(const s_field_t *f, const msgpack_object *o, size_t maxlen, const char *cmd,
                     af_err_t *err)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return s_wrong_type(f, o, "str", cmd, err);
    if (o->via.str.size > maxlen)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: '%s' is longer than %zu bytes", cmd, f->key,
                          maxlen);
    if (memchr(o->via.str.ptr, '\0', o->via.str.size))
        return af_err_set(err, AF_ERR_PROTO, "%s: '%s' contains a NUL byte", cmd, f->key);
    return 0;
}

/* A list of strings into the field at P. */
static int s_decode_list(af_msg_t *self, const s_field_t *f, void *p, const msgpack_object *o,
                         const char *cmd, af_err_t *err)
{
    char ***list_p = p;
    size_t *n_p = s_at(self, f->noff);
    int rc;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return s_wrong_type(f, o, "array", cmd, err);
    if (o->via.array.size > f->max)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: '%s' has more than %" PRIu64 " items", cmd,
                          f->key, f->max);
    s_list_free(list_p, n_p);
    if (o->via.array.size == 0)
        return 0;
    if (!(*list_p = calloc(o->via.array.size, sizeof **list_p)))
        return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", cmd);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if ((rc = s_get_str(f, e, f->cap, cmd, err)))
            return rc;
        if (!((*list_p)[i] = s_strndup(e->via.str.ptr, e->via.str.size)))
            return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", cmd);
        *n_p = i + 1;
    }
    return 0;
}

/* A map of strings into the key/value field at P. */
static int s_decode_kv(af_msg_t *self, const s_field_t *f, void *p, const msgpack_object *o,
                       const char *cmd, af_err_t *err)
{
    af_kv_t **kv_p = p;
    size_t *n_p = s_at(self, f->noff);
    int rc;
    if (o->type != MSGPACK_OBJECT_MAP)
        return s_wrong_type(f, o, "map", cmd, err);
    if (o->via.map.size > f->max)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: '%s' has more than %" PRIu64 " items", cmd,
                          f->key, f->max);
    s_kv_free(kv_p, n_p);
    if (o->via.map.size == 0)
        return 0;
    if (!(*kv_p = calloc(o->via.map.size, sizeof **kv_p)))
        return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", cmd);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if ((rc = s_get_str(f, k, AF_MAX_NAME, cmd, err)) ||
            (rc = s_get_str(f, v, AF_MAX_STR, cmd, err)))
            return rc;
        (*kv_p)[i].key = s_strndup(k->via.str.ptr, k->via.str.size);
        (*kv_p)[i].value = s_strndup(v->via.str.ptr, v->via.str.size);
        *n_p = i + 1; /* owned from here on, even half-filled */
        if (!(*kv_p)[i].key || !(*kv_p)[i].value)
            return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", cmd);
    }
    return 0;
}

/* Numbers: only msgpack integers, range-checked before they are stored. */
static int s_decode_number(const s_field_t *f, void *p, uint8_t flags, const msgpack_object *o,
                           const char *cmd, af_err_t *err)
{
    bool is_unsigned = f->type == S_U32 || f->type == S_U64;
    int64_t min = (flags & U_ZERO) ? 0 : f->min;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        uint64_t v = o->via.u64;
        if (v > f->max)
            return af_err_set(err, AF_ERR_TOOBIG, "%s: '%s' must be <= %" PRIu64, cmd, f->key,
                              f->max);
        if (min > 0 && v < (uint64_t)min)
            return af_err_set(err, AF_ERR_PROTO, "%s: '%s' must be >= %" PRId64, cmd, f->key, min);
        switch (f->type) {
        case S_U32:
            *(uint32_t *)p = (uint32_t)v;
            break;
        case S_U64:
            *(uint64_t *)p = v;
            break;
        case S_I32:
            *(int32_t *)p = (int32_t)v;
            break;
        default:
            *(int64_t *)p = (int64_t)v;
            break;
        }
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        int64_t v = o->via.i64;
        if (is_unsigned || v < min)
            return af_err_set(err, AF_ERR_PROTO, "%s: '%s' must be >= %" PRId64, cmd, f->key, min);
        if (f->type == S_I32)
            *(int32_t *)p = (int32_t)v;
        else
            *(int64_t *)p = v;
        return 0;
    }
    return s_wrong_type(f, o, is_unsigned ? "uint" : "int", cmd, err);
}

static int s_decode_field(af_msg_t *self, const s_field_t *f, uint8_t flags,
                          const msgpack_object *o, const char *cmd, af_err_t *err)
{
    void *p = s_at(self, f->off);
    int rc;
    switch (f->type) {
    case S_STR:
        if ((rc = s_get_str(f, o, f->cap - 1, cmd, err)))
            return rc;
        memcpy(p, o->via.str.ptr, o->via.str.size);
        ((char *)p)[o->via.str.size] = '\0';
        return 0;
    case S_SECRET:
        if ((rc = s_get_str(f, o, f->cap, cmd, err)))
            return rc;
        s_secret_free((char **)p);
        if (!(*(char **)p = s_strndup(o->via.str.ptr, o->via.str.size)))
            return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", cmd);
        return 0;
    case S_LIST:
        return s_decode_list(self, f, p, o, cmd, err);
    case S_KV:
        return s_decode_kv(self, f, p, o, cmd, err);
    case S_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return s_wrong_type(f, o, "bool", cmd, err);
        *(bool *)p = o->via.boolean;
        return 0;
    default:
        return s_decode_number(f, p, flags, o, cmd, err);
    }
}

static int s_decode_body(af_msg_t *self, const uint8_t *data, size_t size, af_err_t *err)
{
    const s_cmd_t *c = &s_cmds[self->cmd];
    if (size > AF_PROTO_MAX_BODY)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: body is larger than %d bytes", c->name,
                          AF_PROTO_MAX_BODY);
    size_t used = 0;
    int rc = s_scan(data, size, &used, c->name, err);
    if (rc)
        return rc;
    if (used != size)
        return af_err_set(err, AF_ERR_PARSE, "%s: trailing bytes after the body", c->name);

    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (msgpack_unpack_next(&up, (const char *)data, size, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != size) {
        rc = af_err_set(err, AF_ERR_PARSE, "%s: body is not valid msgpack", c->name);
        goto out;
    }
    if (up.data.type != MSGPACK_OBJECT_MAP) {
        rc = af_err_set(err, AF_ERR_PARSE, "%s: body must be a map, got %s", c->name,
                        s_type_name(up.data.type));
        goto out;
    }
    uint64_t seen = 0;
    const msgpack_object_map *map = &up.data.via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            rc = af_err_set(err, AF_ERR_PARSE, "%s: body keys must be strings, got %s", c->name,
                            s_type_name(k->type));
            goto out;
        }
        for (size_t u = 0; u < c->n_uses; u++) {
            const s_field_t *f = &s_fields[c->uses[u].field];
            if (strlen(f->key) != k->via.str.size ||
                memcmp(f->key, k->via.str.ptr, k->via.str.size) != 0)
                continue;
            uint64_t bit = UINT64_C(1) << c->uses[u].field;
            if (seen & bit) {
                rc = af_err_set(err, AF_ERR_PROTO, "%s: key '%s' appears twice", c->name, f->key);
                goto out;
            }
            seen |= bit;
            if ((rc = s_decode_field(self, f, c->uses[u].flags, &map->ptr[i].val, c->name, err)))
                goto out;
            break;
        }
        /* unknown keys are ignored: newer peers may send more */
    }
    for (size_t u = 0; u < c->n_uses; u++) {
        if ((c->uses[u].flags & U_REQ) && !(seen & (UINT64_C(1) << c->uses[u].field))) {
            rc = af_err_set(err, AF_ERR_PROTO, "%s: required key '%s' is missing", c->name,
                            s_fields[c->uses[u].field].key);
            goto out;
        }
    }
    rc = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}

static bool s_frame_is(zframe_t *frame, const char *s)
{
    size_t len = strlen(s);
    return frame && zframe_size(frame) == len && memcmp(zframe_data(frame), s, len) == 0;
}

/* Long (about 80 lines): the frames are checked in wire order (routing id,
 * empty delimiter, protocol id, command, body, data), each with its own
 * error, which reads best as one sequence. */
af_msg_t *af_msg_decode(zmsg_t **zmsg_p, bool router, zframe_t **routing_id_p, af_err_t *err)
{
    zmsg_t *zmsg = zmsg_p ? *zmsg_p : NULL;
    zframe_t *rid = NULL;
    af_msg_t *self = NULL;
    char q[64];
    if (zmsg_p)
        *zmsg_p = NULL;
    if (routing_id_p)
        *routing_id_p = NULL;
    if (!zmsg || zmsg_size(zmsg) == 0) {
        af_err_set(err, AF_ERR_PROTO, "empty message");
        goto fail;
    }
    if (router)
        rid = zmsg_pop(zmsg);

    zframe_t *id = zmsg_first(zmsg);
    if (!s_frame_is(id, AF_PROTO_ID)) {
        if (id)
            af_err_set(err, AF_ERR_PROTO, "not an %s message (protocol id \"%s\")", AF_PROTO_ID,
                       s_quote(q, sizeof q, (const char *)zframe_data(id), zframe_size(id)));
        else
            af_err_set(err, AF_ERR_PROTO, "message has no protocol id frame");
        goto fail;
    }
    zframe_t *cmdf = zmsg_next(zmsg);
    if (!cmdf) {
        af_err_set(err, AF_ERR_PROTO, "message has no command frame");
        goto fail;
    }
    af_cmd_t cmd = AF_CMD_INVALID;
    for (int i = 1; i < AF_CMD_COUNT; i++)
        if (s_frame_is(cmdf, s_cmds[i].name))
            cmd = (af_cmd_t)i;
    if (cmd == AF_CMD_INVALID) {
        af_err_set(err, AF_ERR_UNSUPPORTED, "unknown command \"%s\"",
                   s_quote(q, sizeof q, (const char *)zframe_data(cmdf), zframe_size(cmdf)));
        goto fail;
    }
    const s_cmd_t *c = &s_cmds[cmd];
    zframe_t *body = zmsg_next(zmsg);
    if (!body) {
        af_err_set(err, AF_ERR_PROTO, "%s: message has no body frame", c->name);
        goto fail;
    }
    size_t want = c->data ? 4 : 3;
    if (zmsg_size(zmsg) != want) {
        if (c->data && zmsg_size(zmsg) < want)
            af_err_set(err, AF_ERR_PROTO, "CHUNK: the data frame is missing");
        else
            af_err_set(err, AF_ERR_PROTO, "%s: %zu unexpected extra frames", c->name,
                       zmsg_size(zmsg) - want);
        goto fail;
    }
    if (!(self = af_msg_new(cmd))) {
        af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", c->name);
        goto fail;
    }
    if (s_decode_body(self, zframe_data(body), zframe_size(body), err) != 0)
        goto fail;
    if (c->data) {
        zframe_t *data = zmsg_last(zmsg);
        zmsg_remove(zmsg, data);
        self->data = data;
    }
    if (s_check(self, err) != 0)
        goto fail;
    self->routing_id = rid;
    zmsg_destroy(&zmsg);
    return self;

fail:
    af_msg_destroy(&self);
    zmsg_destroy(&zmsg);
    if (routing_id_p)
        *routing_id_p = rid;
    else
        zframe_destroy(&rid);
    return NULL;
}

af_msg_t *af_msg_recv(zsock_t *sock, bool router, zframe_t **routing_id_p, af_err_t *err)
{
    if (routing_id_p)
        *routing_id_p = NULL;
    zmsg_t *zmsg = zmsg_recv(sock);
    if (!zmsg) {
        if (zmq_errno() == EAGAIN)
            af_err_set(err, AF_ERR_TIMEOUT, "receive timed out");
        else
            af_err_set(err, AF_ERR_CANCELLED, "receive interrupted");
        return NULL;
    }
    return af_msg_decode(&zmsg, router, routing_id_p, err);
}

/* ---- summary ----------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, pos;
} s_out_t;

static void s_out(s_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_out(s_out_t *o, const char *fmt, ...)
{
    if (o->pos >= o->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->pos += (size_t)n;
}

char *af_msg_summary(const af_msg_t *self, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    s_out_t o = {buf, len, 0};
    if (!self) {
        s_out(&o, "(null)");
        return buf;
    }
    if ((int)self->cmd <= 0 || self->cmd >= AF_CMD_COUNT) {
        s_out(&o, "INVALID");
        return buf;
    }
    const s_cmd_t *c = &s_cmds[self->cmd];
    char q[64];
    s_out(&o, "%s", c->name);
    for (size_t u = 0; u < c->n_uses; u++) {
        const s_field_t *f = &s_fields[c->uses[u].field];
        const void *p = s_at(self, f->off);
        switch (f->type) {
        case S_STR: {
            size_t l = strnlen(p, f->cap);
            if (l || (c->uses[u].flags & U_REQ))
                s_out(&o, " %s=%s", f->key, s_quote(q, sizeof q, p, l));
            break;
        }
        case S_SECRET: /* never the value, only whether one is set */
            if (*(char *const *)p)
                s_out(&o, " %s=(set)", f->key);
            break;
        case S_LIST: {
            char *const *list = *(char **const *)p;
            size_t n = *(const size_t *)s_at(self, f->noff);
            s_out(&o, " %s=[", f->key);
            for (size_t i = 0; list && i < n && i < 8; i++)
                s_out(&o, "%s%s", i ? "," : "", s_quote(q, sizeof q, list[i], strlen(list[i])));
            s_out(&o, "%s]", n > 8 ? ",..." : "");
            break;
        }
        case S_KV: /* keys only: build args may carry tokens */
            s_out(&o, " %s=%zu", f->key, *(const size_t *)s_at(self, f->noff));
            break;
        case S_BOOL:
            s_out(&o, " %s=%s", f->key, *(const bool *)p ? "true" : "false");
            break;
        case S_U32:
            s_out(&o, " %s=%" PRIu32, f->key, *(const uint32_t *)p);
            break;
        case S_U64:
            s_out(&o, " %s=%" PRIu64, f->key, *(const uint64_t *)p);
            break;
        case S_I32:
            s_out(&o, " %s=%" PRId32, f->key, *(const int32_t *)p);
            break;
        case S_I64:
            s_out(&o, " %s=%" PRId64, f->key, *(const int64_t *)p);
            break;
        }
    }
    if (self->data)
        s_out(&o, " data=%zu", zframe_size(self->data));
    return buf;
}
