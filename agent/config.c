/* config.c -- agent.yaml (libyaml document API) and flag values.
 *
 * One key table drives both the file and the flags, so a key means the
 * same thing and is checked the same way wherever it comes from. */
#include "config.h"
#include "yamldoc.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "confine.h"
#include "executor.h"
#include "log.h"
#include "strbuf.h"

typedef enum { S_STR, S_UINT, S_BOOL, S_PLATFORMS, S_EXECUTOR, S_CONFINE, S_LISTEN } s_type_t;

typedef struct {
    const char *key;
    s_type_t type;
    size_t offset;
    size_t size; /* S_STR: buffer size */
    uint32_t min, max;
} s_key_t;

#define S_OFF(f) offsetof(af_agent_config_t, f)
#define S_SZ(f) sizeof(((af_agent_config_t *)0)->f)

static const s_key_t s_keys[] = {
    {"listen", S_LISTEN, S_OFF(listen), S_SZ(listen), 0, 0},
    {"name", S_STR, S_OFF(name), S_SZ(name), 0, 0},
    {"platforms", S_PLATFORMS, 0, 0, 0, 0},
    {"platform", S_PLATFORMS, 0, 0, 0, 0},
    {"workdir", S_STR, S_OFF(workdir), S_SZ(workdir), 0, 0},
    {"max_jobs", S_UINT, S_OFF(max_jobs), 0, 1, 256},
    {"executor", S_EXECUTOR, S_OFF(executor), S_SZ(executor), 0, 0},
    {"insecure", S_BOOL, S_OFF(insecure), 0, 0, 0},
    {"cert", S_STR, S_OFF(cert), S_SZ(cert), 0, 0},
    {"authorized_keys", S_STR, S_OFF(authorized_keys), S_SZ(authorized_keys), 0, 0},
    {"heartbeat_ms", S_UINT, S_OFF(heartbeat_ms), 0, 50, 60000},
    {"liveness", S_UINT, S_OFF(liveness), 0, 1, 100},
    {"job_timeout_s", S_UINT, S_OFF(job_timeout_s), 0, 0, 7 * 24 * 3600},
    {"context_cache", S_UINT, S_OFF(context_cache), 0, 1, 1024},
    {"kill_grace_ms", S_UINT, S_OFF(kill_grace_ms), 0, 0, 600000},
    {"drain_s", S_UINT, S_OFF(drain_s), 0, 0, 24 * 3600},
    {"registry_auth_file", S_STR, S_OFF(registry_auth_file), S_SZ(registry_auth_file), 0, 0},
    {"confine", S_CONFINE, S_OFF(confine), S_SZ(confine), 0, 0},
    {"step_nproc", S_UINT, S_OFF(step_nproc), 0, 0, 1000000},
    {"step_fsize_mb", S_UINT, S_OFF(step_fsize_mb), 0, 0, 16 * 1024 * 1024},
};
#define S_NKEYS (sizeof s_keys / sizeof s_keys[0])
/* A flat mapping whose platforms value may be a list: deeper nesting is
 * never valid, the bound only stops a hostile file early. */
#define S_MAX_DEPTH 16

void af_agent_config_defaults(af_agent_config_t *self)
{
    assert(self);
    memset(self, 0, sizeof *self);
    snprintf(self->listen, sizeof self->listen, "%s", AF_AGENT_DEFAULT_LISTEN);
    snprintf(self->workdir, sizeof self->workdir, "%s", AF_AGENT_DEFAULT_WORKDIR);
    snprintf(self->executor, sizeof self->executor, "auto");
    snprintf(self->confine, sizeof self->confine, "auto");
    self->max_jobs = 1;
    self->heartbeat_ms = AF_HEARTBEAT_MS;
    self->liveness = AF_LIVENESS;
    self->context_cache = AF_AGENT_DEFAULT_CONTEXT_CACHE;
    self->kill_grace_ms = AF_AGENT_DEFAULT_KILL_GRACE_MS;
}

static const s_key_t *s_lookup(const char *key)
{
    char norm[64];
    snprintf(norm, sizeof norm, "%s", key);
    for (char *p = norm; *p; p++)
        if (*p == '-')
            *p = '_';
    for (size_t i = 0; i < S_NKEYS; i++)
        if (!strcmp(s_keys[i].key, norm))
            return &s_keys[i];
    return NULL;
}

static int s_parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};
    for (size_t i = 0; yes[i]; i++)
        if (!strcasecmp(v, yes[i]))
            return *out = true, 0;
    for (size_t i = 0; no[i]; i++)
        if (!strcasecmp(v, no[i]))
            return *out = false, 0;
    return -1;
}

static int s_add_platforms(af_agent_config_t *self, const char *value, const char *where,
                           af_err_t *err)
{
    af_platform_t list[AF_MAX_LIST];
    size_t n = 0;
    af_err_t perr;
    af_err_clear(&perr);
    if (af_platform_parse_list(value, list, AF_MAX_LIST, &n, &perr) < 0)
        return af_err_set(err, AF_ERR_INVAL, "%s: %s", where, af_err_msg(&perr, AF_ERR_INVAL));
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < self->n_platforms; j++)
            dup = dup || af_platform_equal(&self->platforms[j], &list[i]);
        if (dup)
            continue;
        if (self->n_platforms >= AF_MAX_LIST)
            return af_err_set(err, AF_ERR_TOOBIG, "%s: more than %d platforms", where, AF_MAX_LIST);
        self->platforms[self->n_platforms++] = list[i];
    }
    return 0;
}

/* listen: tcp://HOST:PORT with PORT 1..65535 or * (any free port), the
 * range the inventory's archfarm_port accepts (ZeroMQ itself would wrap
 * 99999 to 34463 and -1 to 65535), or ipc://PATH. NULL when fine, else
 * why not. */
static const char *s_listen_problem(const char *v)
{
    if (!strncmp(v, "ipc://", 6))
        return v[6] ? NULL : "ipc:// needs a path";
    if (strncmp(v, "tcp://", 6))
        return "expected tcp://HOST:PORT or ipc://PATH";
    const char *host = v + 6, *colon = strrchr(host, ':');
    if (!colon || colon == host)
        return "expected tcp://HOST:PORT";
    const char *port = colon + 1;
    if (!strcmp(port, "*"))
        return NULL;
    size_t n = strlen(port);
    if (n == 0 || n > 5 || strspn(port, "0123456789") != n)
        return "the port must be a number from 1 to 65535 (or * for any free port)";
    long p = strtol(port, NULL, 10);
    if (p < 1 || p > 65535)
        return "the port must be a number from 1 to 65535 (or * for any free port)";
    return NULL;
}

/* Sets K from scalar V; WHERE prefixes messages ("file:3:5" or "--flag"). */
static int s_set_value(af_agent_config_t *self, const s_key_t *k, const char *v, const char *where,
                       af_err_t *err)
{
    char *base = (char *)self;
    switch (k->type) {
    case S_STR:
        if (strlen(v) >= k->size)
            return af_err_set(err, AF_ERR_TOOBIG, "%s: %s is longer than %zu bytes", where, k->key,
                              k->size - 1);
        snprintf(base + k->offset, k->size, "%s", v);
        return 0;
    case S_EXECUTOR: {
        /* "auto" or the name of an executor compiled in */
        char names[256] = "auto";
        bool known = !strcmp(v, "auto");
        const af_executor_t *const *all = af_executor_all();
        for (size_t i = 0; all[i]; i++) {
            known = known || !strcmp(v, all[i]->name);
            size_t off = strlen(names);
            snprintf(names + off, sizeof names - off, ", %s", all[i]->name);
        }
        if (!known)
            return af_err_set(err, AF_ERR_INVAL, "%s: executor must be one of %s, not \"%s\"",
                              where, names, v);
        snprintf(base + k->offset, k->size, "%s", v);
        return 0;
    }
    case S_LISTEN: {
        const char *why = s_listen_problem(v);
        if (why)
            return af_err_set(err, AF_ERR_INVAL, "%s: listen: %s, not \"%s\"", where, why, v);
        if (strlen(v) >= k->size)
            return af_err_set(err, AF_ERR_TOOBIG, "%s: listen is longer than %zu bytes", where,
                              k->size - 1);
        snprintf(base + k->offset, k->size, "%s", v);
        return 0;
    }
    case S_CONFINE: {
        af_confine_mode_t mode;
        if (af_confine_mode_parse(v, &mode) < 0)
            return af_err_set(err, AF_ERR_INVAL,
                              "%s: confine must be auto, required or off, not \"%s\"", where, v);
        snprintf(base + k->offset, k->size, "%s", v);
        return 0;
    }
    case S_BOOL: {
        bool b;
        if (s_parse_bool(v, &b) < 0)
            return af_err_set(err, AF_ERR_INVAL, "%s: %s must be true or false, not \"%s\"", where,
                              k->key, v);
        *(bool *)(base + k->offset) = b;
        return 0;
    }
    case S_UINT: {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (!*v || *v == '-' || *v == '+' || errno || !end || *end || n < k->min || n > k->max)
            return af_err_set(err, AF_ERR_INVAL,
                              "%s: %s must be an integer from %u to %u, not \"%s\"", where, k->key,
                              k->min, k->max, v);
        *(uint32_t *)(base + k->offset) = (uint32_t)n;
        return 0;
    }
    case S_PLATFORMS:
        return s_add_platforms(self, v, where, err);
    }
    return af_err_set(err, AF_ERR_INVAL, "%s: bad key %s", where, k->key);
}

int af_agent_config_set(af_agent_config_t *self, const char *key, const char *value,
                        const char *origin, af_err_t *err)
{
    assert(self && key && value);
    const char *where = origin ? origin : key;
    const s_key_t *k = s_lookup(key);
    if (!k)
        return af_err_set(err, AF_ERR_INVAL, "%s: unknown setting \"%s\"", where, key);
    if (k->type == S_PLATFORMS && !strcmp(k->key, "platforms"))
        self->n_platforms = 0;
    return s_set_value(self, k, value, where, err);
}

/* The platforms value: one string or a list of strings. */
static int s_set_platforms(af_agent_config_t *self, af_yamldoc_t *doc, const s_key_t *k,
                           yaml_node_t *vn, char *where, size_t where_len, af_err_t *err)
{
    const char *name = af_yamldoc_name(doc);
    self->n_platforms = 0;
    if (vn->type == YAML_SCALAR_NODE)
        return s_set_value(self, k, af_yamldoc_text(vn), where, err);
    if (vn->type != YAML_SEQUENCE_NODE)
        return af_yamldoc_fail(doc, vn, AF_ERR_PARSE, "platforms must be a list");
    for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top;
         it++) {
        yaml_node_t *in = yaml_document_get_node(af_yamldoc_document(doc), *it);
        if (!in || in->type != YAML_SCALAR_NODE)
            return af_yamldoc_fail(doc, in ? in : vn, AF_ERR_PARSE, "expected a platform string");
        snprintf(where, where_len, "%s:%zu:%zu", name, in->start_mark.line + 1,
                 in->start_mark.column + 1);
        int rc = s_set_value(self, k, af_yamldoc_text(in), where, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* One "key: value" pair of the settings mapping; SEEN marks keys given. */
static int s_pair(af_agent_config_t *self, af_yamldoc_t *doc, yaml_node_t *root,
                  yaml_node_pair_t *pair, bool seen[], af_err_t *err)
{
    const char *name = af_yamldoc_name(doc);
    yaml_node_t *kn = yaml_document_get_node(af_yamldoc_document(doc), pair->key);
    yaml_node_t *vn = yaml_document_get_node(af_yamldoc_document(doc), pair->value);
    if (!kn || !vn || kn->type != YAML_SCALAR_NODE)
        return af_yamldoc_fail(doc, kn ? kn : root, AF_ERR_PARSE, "expected a key");
    const char *key = af_yamldoc_text(kn);
    const s_key_t *k = NULL;
    for (size_t i = 0; i < S_NKEYS; i++)
        if (!strcmp(s_keys[i].key, key) && strcmp(key, "platform"))
            k = &s_keys[i];
    if (!k)
        return af_yamldoc_fail(doc, kn, AF_ERR_PARSE, "unknown key: %s", key);
    size_t idx = (size_t)(k - s_keys);
    if (seen[idx])
        return af_yamldoc_fail(doc, kn, AF_ERR_PARSE, "duplicate key: %s", key);
    seen[idx] = true;
    char where[AF_ERRMSG_MAX / 2];
    snprintf(where, sizeof where, "%s:%zu:%zu", name, vn->start_mark.line + 1,
             vn->start_mark.column + 1);
    if (k->type == S_PLATFORMS)
        return s_set_platforms(self, doc, k, vn, where, sizeof where, err);
    if (vn->type != YAML_SCALAR_NODE)
        return af_yamldoc_fail(doc, vn, AF_ERR_PARSE, "expected a single value for %s", key);
    return s_set_value(self, k, af_yamldoc_text(vn), where, err);
}

int af_agent_config_load_buffer(af_agent_config_t *self, const char *name, const char *data,
                                size_t len, af_err_t *err)
{
    assert(self && name && (data || !len));
    if (len > AF_AGENT_CONFIG_MAX_BYTES)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: larger than %d bytes", name,
                          AF_AGENT_CONFIG_MAX_BYTES);
    const af_yamldoc_limits_t limits = {AF_AGENT_CONFIG_MAX_BYTES, S_MAX_DEPTH, "agent config",
                                        "an agent config"};
    af_yamldoc_t *doc = af_yamldoc_new(name, data, len, &limits, err);
    if (!doc)
        return err && err->code ? err->code : AF_ERR_PARSE;
    int rc = 0;
    yaml_node_t *root = af_yamldoc_root(doc);
    if (!root)
        goto out; /* empty file */
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        const char *v = af_yamldoc_text(root);
        if (!*v || !strcmp(v, "~") || !strcasecmp(v, "null"))
            goto out; /* a null document: nothing set */
    }
    if (root->type != YAML_MAPPING_NODE) {
        rc = af_yamldoc_fail(doc, root, AF_ERR_PARSE, "expected a mapping of settings");
        goto out;
    }
    bool seen[S_NKEYS] = {false};
    for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top && rc == 0; pair++)
        rc = s_pair(self, doc, root, pair, seen, err);
out:
    af_yamldoc_destroy(&doc);
    return rc;
}

int af_agent_config_load(af_agent_config_t *self, const char *path, af_err_t *err)
{
    assert(self && path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "%s: %s", path,
                          strerror(errno));
    char *buf = malloc(AF_AGENT_CONFIG_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, AF_AGENT_CONFIG_MAX_BYTES + 1, f);
    int failed = ferror(f);
    fclose(f);
    int rc;
    if (failed)
        rc = af_err_set(err, AF_ERR_IO, "%s: read error", path);
    else
        rc = af_agent_config_load_buffer(self, path, buf, n, err);
    free(buf);
    if (rc == 0)
        snprintf(self->config_path, sizeof self->config_path, "%s", path); /* hidden from steps */
    return rc;
}

int af_agent_config_finish(af_agent_config_t *self, af_err_t *err)
{
    assert(self);
    if (!self->listen[0])
        return af_err_set(err, AF_ERR_INVAL, "listen: an endpoint is required");
    if (!self->workdir[0])
        return af_err_set(err, AF_ERR_INVAL, "workdir: a directory is required");
    if (self->n_platforms == 0) {
        if (af_platform_host(&self->platforms[0]) < 0)
            return af_err_set(err, AF_ERR_UNSUPPORTED,
                              "cannot tell this host's platform; set platforms or --platform");
        self->n_platforms = 1;
    }
    if (!self->name[0]) {
        char host[256] = "";
        if (gethostname(host, sizeof host - 1) < 0 || !host[0])
            snprintf(host, sizeof host, "localhost");
        snprintf(self->name, sizeof self->name, "%s", host);
    }
    for (const char *p = self->name; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return af_err_set(err, AF_ERR_INVAL, "name: \"%s\" must be printable, without spaces",
                              self->name);
    if (!self->insecure && !self->cert[0])
        return af_err_set(err, AF_ERR_INVAL,
                          "no --cert: CURVE is the default; give --cert FILE (from 'archfarm "
                          "keygen') and --authorized-keys DIR, or --insecure for a plaintext lab");
    if (!self->insecure && !self->authorized_keys[0])
        return af_err_set(err, AF_ERR_INVAL,
                          "no --authorized-keys DIR: with CURVE the agent accepts only the "
                          "coordinator keys found there");
    if (self->registry_auth_file[0] && access(self->registry_auth_file, R_OK) < 0)
        return af_err_set(err, AF_ERR_INVAL, "registry_auth_file: %s: %s", self->registry_auth_file,
                          strerror(errno));
    return 0;
}

char *af_agent_config_platforms(const af_agent_config_t *self, char *buf, size_t len)
{
    af_strbuf_t sb;
    af_strbuf_init(&sb, buf, len);
    for (size_t i = 0; i < self->n_platforms; i++) {
        char p[AF_PLATFORM_STR_MAX];
        af_platform_format(&self->platforms[i], p, sizeof p);
        af_strbuf_printf(&sb, "%s%s", i ? "," : "", p);
    }
    return buf;
}
