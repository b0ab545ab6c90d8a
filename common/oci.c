/* oci.c -- OCI image config, manifest and index documents (jansson).
 *
 * The agent builds a slice's config and manifest here, the coordinator
 * builds the index, and both parse what registries send back (manifests,
 * indexes, base image configs). Builders serialise compactly with sorted
 * keys, so equal inputs always give equal bytes and equal digests; the
 * bytes they return are the bytes to digest and push. Parsers treat their
 * input as hostile: sizes are bounded before parsing, duplicate keys are
 * rejected, and every field is type-checked before use. */
#include "oci.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "digest.h"

#define S_DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)
#define S_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

bool af_oci_is_index(const char *media_type)
{
    return media_type &&
           (!strcmp(media_type, AF_MT_OCI_INDEX) || !strcmp(media_type, AF_MT_DOCKER_LIST));
}

bool af_oci_is_manifest(const char *media_type)
{
    return media_type &&
           (!strcmp(media_type, AF_MT_OCI_MANIFEST) || !strcmp(media_type, AF_MT_DOCKER_MANIFEST));
}

/* ---- building ---------------------------------------------------------- */

/* Serialises ROOT (stolen) into a malloc'd buffer. */
static char *s_dump(json_t *root, size_t *len_out, af_err_t *err, const char *what)
{
    char *out = root ? json_dumps(root, S_DUMP_FLAGS) : NULL;
    json_decref(root);
    if (!out) {
        af_err_set(err, AF_ERR_NOMEM, "%s: cannot serialise JSON", what);
        return NULL;
    }
    if (len_out)
        *len_out = strlen(out);
    return out;
}

/* Sets KEY to a new string VALUE; false on failure (bad UTF-8, no memory). */
static bool s_set_str(json_t *obj, const char *key, const char *value)
{
    json_t *v = json_string(value);
    return v && json_object_set_new(obj, key, v) == 0;
}

static int s_check_descriptor(const af_descriptor_t *d, const char *what, size_t i, af_err_t *err)
{
    if (!d->media_type[0])
        return af_err_set(err, AF_ERR_INVAL, "%s[%zu]: empty mediaType", what, i);
    if (!af_digest_valid(d->digest))
        return af_err_set(err, AF_ERR_INVAL, "%s[%zu]: invalid digest \"%s\"", what, i, d->digest);
    if (d->size < 0)
        return af_err_set(err, AF_ERR_INVAL, "%s[%zu]: negative size %" PRId64, what, i, d->size);
    return 0;
}

static json_t *s_platform_json(const af_platform_t *p)
{
    json_t *o = json_object();
    if (!o || !s_set_str(o, "architecture", p->arch) || !s_set_str(o, "os", p->os) ||
        (p->variant[0] && !s_set_str(o, "variant", p->variant))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *s_descriptor_json(const af_descriptor_t *d, bool with_platform)
{
    json_t *o = json_object();
    if (!o || !s_set_str(o, "mediaType", d->media_type) || !s_set_str(o, "digest", d->digest) ||
        json_object_set_new(o, "size", json_integer(d->size)) != 0)
        goto err;
    if (with_platform && json_object_set_new(o, "platform", s_platform_json(&d->platform)) != 0)
        goto err;
    return o;
err:
    json_decref(o);
    return NULL;
}

/* Returns an object of KVS, or NULL on failure (bad UTF-8 or no memory). */
static json_t *s_kv_object(json_t *base, const af_kv_t *kvs, size_t n, const char *what,
                           af_err_t *err)
{
    json_t *o = base ? base : json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!kvs[i].key || !kvs[i].key[0] || !kvs[i].value) {
            af_err_set(err, AF_ERR_INVAL, "%s[%zu]: empty key or missing value", what, i);
            goto err;
        }
        if (!s_set_str(o, kvs[i].key, kvs[i].value)) {
            af_err_set(err, AF_ERR_INVAL, "%s \"%s\": not valid UTF-8", what, kvs[i].key);
            goto err;
        }
    }
    return o;
err:
    json_decref(o);
    return NULL;
}

static json_t *s_string_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *s = v[i] ? json_string(v[i]) : NULL;
        if (!s || json_array_append_new(a, s) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Overrides ENV entries "KEY=..." with SPEC's, appending new keys in order. */
static int s_merge_env(json_t *env, const af_kv_t *kvs, size_t n, af_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *key = kvs[i].key;
        if (!key || !key[0] || strchr(key, '=') || !kvs[i].value)
            return af_err_set(err, AF_ERR_INVAL, "env[%zu]: invalid name \"%s\"", i,
                              key ? key : "");
        size_t klen = strlen(key);
        size_t vlen = strlen(kvs[i].value);
        char *entry = malloc(klen + vlen + 2);
        if (!entry)
            return af_err_set(err, AF_ERR_NOMEM, "env: out of memory");
        memcpy(entry, key, klen);
        entry[klen] = '=';
        memcpy(entry + klen + 1, kvs[i].value, vlen + 1);
        json_t *s = json_string(entry);
        free(entry);
        if (!s)
            return af_err_set(err, AF_ERR_INVAL, "env \"%s\": not valid UTF-8", key);
        size_t idx;
        json_t *old;
        bool replaced = false;
        json_array_foreach(env, idx, old)
        {
            const char *o = json_string_value(old);
            if (o && !strncmp(o, key, klen) && (o[klen] == '=' || o[klen] == '\0')) {
                json_array_set(env, idx, s);
                replaced = true;
                break;
            }
        }
        int rc = replaced ? 0 : json_array_append(env, s);
        json_decref(s);
        if (rc)
            return af_err_set(err, AF_ERR_NOMEM, "env: out of memory");
    }
    return 0;
}

/* Loads a bounded JSON object from untrusted bytes into *root_p. */
static int s_load_object(const char *body, size_t len, size_t max, const char *what,
                         json_t **root_p, af_err_t *err)
{
    *root_p = NULL;
    if (!body)
        return af_err_set(err, AF_ERR_INVAL, "%s: no body", what);
    if (len > max)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: %zu bytes, more than the limit of %zu", what,
                          len, max);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return af_err_set(err, AF_ERR_PARSE, "%s: invalid JSON at line %d column %d: %s", what,
                          jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return af_err_set(err, AF_ERR_PARSE, "%s: not a JSON object", what);
    }
    *root_p = root;
    return 0;
}

/* The base config's "config" object: copied, or a new empty one. */
static json_t *s_base_config_section(json_t *base, af_err_t *err)
{
    json_t *c = base ? json_object_get(base, "config") : NULL;
    if (!c || json_is_null(c))
        return json_object();
    if (!json_is_object(c)) {
        af_err_set(err, AF_ERR_PARSE, "base image config: \"config\" is not an object");
        return NULL;
    }
    return json_deep_copy(c);
}

/* The base's array KEY (under SECTION), copied; a new one when absent. */
static json_t *s_base_array(json_t *section, const char *key, const char *what, af_err_t *err)
{
    json_t *a = section ? json_object_get(section, key) : NULL;
    if (!a || json_is_null(a))
        return json_array();
    if (!json_is_array(a)) {
        af_err_set(err, AF_ERR_PARSE, "base image config: \"%s\" is not an array", what);
        return NULL;
    }
    return json_deep_copy(a);
}

/* Civil date from a day count (days since 1970-01-01), after Howard
 * Hinnant's days_from_civil inverse: proleptic Gregorian, int64 all the way. */
static void s_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int af_oci_format_time(int64_t secs, char out[AF_OCI_TIME_LEN + 1])
{
    out[0] = '\0';
    if (secs < 0 || secs > 253402300799LL) /* 9999-12-31T23:59:59Z */
        return AF_ERR_INVAL;
    int64_t y;
    unsigned mo, d, sod = (unsigned)(secs % 86400);
    s_civil_from_days(secs / 86400, &y, &mo, &d);
    snprintf(out, AF_OCI_TIME_LEN + 1, "%04d-%02u-%02uT%02u:%02u:%02uZ", (int)y, mo, d, sod / 3600,
             sod / 60 % 60, sod % 60);
    return 0;
}

/* Failures inside the config builder: out of memory, or a string jansson
 * refused (not UTF-8). Both return -1 so callers can `return s_nomem(err)`. */
static int s_nomem(af_err_t *err)
{
    af_err_set(err, AF_ERR_NOMEM, "image config: out of memory");
    return -1;
}

static int s_badstr(af_err_t *err)
{
    af_err_set(err, AF_ERR_INVAL, "image config: a string is not valid UTF-8");
    return -1;
}

/* The arguments af_oci_config_build refuses before building anything. */
static int s_config_args(const af_image_spec_t *spec, const char *const *diff_ids,
                         size_t n_diff_ids, af_err_t *err)
{
    if (!spec || (n_diff_ids && !diff_ids))
        return af_err_set(err, AF_ERR_INVAL, "image config: missing arguments");
    if (!spec->platform.os[0] || !spec->platform.arch[0])
        return af_err_set(err, AF_ERR_INVAL, "image config: platform has no os/architecture");
    /* RFC 3339 has four-digit years: 9999-12-31T23:59:59Z at most */
    if (spec->created < 0 || spec->created > 253402300799LL)
        return af_err_set(err, AF_ERR_INVAL, "image config: creation time %" PRId64 " out of range",
                          spec->created);
    for (size_t i = 0; i < n_diff_ids; i++)
        if (!diff_ids[i] || !af_digest_valid(diff_ids[i]))
            return af_err_set(err, AF_ERR_INVAL,
                              "image config: diff_ids[%zu]: invalid digest \"%s\"", i,
                              diff_ids[i] ? diff_ids[i] : "");
    return 0;
}

/* config.Env: the base's (or the default PATH), with the recipe's over it. */
static int s_config_env(json_t *cfg, json_t *b, const af_image_spec_t *spec, af_err_t *err)
{
    json_t *env = NULL;
    if (b) {
        if (!(env = s_base_array(cfg, "Env", "config.Env", err)))
            return -1;
    } else if (!(env = json_array()) || json_array_append_new(env, json_string(S_DEFAULT_PATH))) {
        json_decref(env);
        return s_nomem(err);
    }
    if (json_object_set_new(cfg, "Env", env))
        return s_nomem(err);
    if (s_merge_env(env, spec->env, spec->n_env, err))
        return -1;
    if (json_array_size(env) == 0)
        json_object_del(cfg, "Env");
    return 0;
}

/* config: the base's section with this recipe's fields over it. */
static int s_config_section(json_t *cfg, json_t *b, const af_image_spec_t *spec, af_err_t *err)
{
    if (s_config_env(cfg, b, spec, err))
        return -1;
    if (spec->set_entrypoint) {
        if (json_object_set_new(cfg, "Entrypoint",
                                s_string_array(spec->entrypoint, spec->n_entrypoint)))
            return s_badstr(err);
        /* as in a Dockerfile: a new ENTRYPOINT drops the base's CMD */
        if (!spec->set_cmd)
            json_object_del(cfg, "Cmd");
    }
    if (spec->set_cmd && json_object_set_new(cfg, "Cmd", s_string_array(spec->cmd, spec->n_cmd)))
        return s_badstr(err);
    /* "" clears the base's value, NULL keeps it */
    if (spec->workdir && spec->workdir[0] && !s_set_str(cfg, "WorkingDir", spec->workdir))
        return s_badstr(err);
    if (spec->workdir && !spec->workdir[0])
        json_object_del(cfg, "WorkingDir");
    if (spec->user && spec->user[0] && !s_set_str(cfg, "User", spec->user))
        return s_badstr(err);
    if (spec->user && !spec->user[0])
        json_object_del(cfg, "User");
    if (!spec->n_labels)
        return 0;
    json_t *labels = json_object_get(cfg, "Labels");
    if (labels && !json_is_object(labels) && !json_is_null(labels))
        return af_err_set(err, AF_ERR_PARSE,
                          "base image config: \"config.Labels\" is not an object");
    labels = json_is_object(labels) ? json_incref(labels) : NULL;
    if (!(labels = s_kv_object(labels, spec->labels, spec->n_labels, "labels", err)) ||
        json_object_set_new(cfg, "Labels", labels))
        return -1;
    return 0;
}

/* rootfs: the base's layers, then ours. *IDS_P and *ROOTFS_P are the
 * caller's to release, also on failure. */
static int s_config_rootfs(json_t *b, const char *const *diff_ids, size_t n_diff_ids,
                           json_t **ids_p, json_t **rootfs_p, af_err_t *err)
{
    json_t *base_rootfs = b ? json_object_get(b, "rootfs") : NULL;
    if (base_rootfs && !json_is_object(base_rootfs))
        return af_err_set(err, AF_ERR_PARSE, "base image config: \"rootfs\" is not an object");
    if (!(*ids_p = s_base_array(base_rootfs, "diff_ids", "rootfs.diff_ids", err)))
        return -1;
    for (size_t i = 0; i < n_diff_ids; i++)
        if (json_array_append_new(*ids_p, json_string(diff_ids[i])))
            return s_nomem(err);
    if (!(*rootfs_p = json_object()) || !s_set_str(*rootfs_p, "type", "layers") ||
        json_object_set(*rootfs_p, "diff_ids", *ids_p))
        return s_nomem(err);
    return 0;
}

/* history: the base's, then one entry per new layer (or one empty_layer).
 * *HIST_P is the caller's to release, also on failure. */
static int s_config_history(json_t *b, const af_image_spec_t *spec, const char *created,
                            size_t n_diff_ids, json_t **hist_p, af_err_t *err)
{
    if (!(*hist_p = s_base_array(b, "history", "history", err)))
        return -1;
    for (size_t i = 0; i < (n_diff_ids ? n_diff_ids : 1); i++) {
        json_t *h = json_object();
        if (!h || json_array_append_new(*hist_p, h) || !s_set_str(h, "created", created) ||
            !s_set_str(h, "comment", "archfarm"))
            return s_nomem(err);
        if (spec->created_by && !s_set_str(h, "created_by", spec->created_by))
            return s_badstr(err);
        if (!n_diff_ids && json_object_set_new(h, "empty_layer", json_true()))
            return s_nomem(err);
    }
    return 0;
}

char *af_oci_config_build(const af_image_spec_t *spec, const char *base, size_t base_len,
                          const char *const *diff_ids, size_t n_diff_ids, size_t *len_out,
                          af_err_t *err)
{
    json_t *root = NULL, *b = NULL, *cfg = NULL, *rootfs = NULL, *ids = NULL, *hist = NULL;
    char *out = NULL;
    char created[AF_OCI_TIME_LEN + 1];
    if (s_config_args(spec, diff_ids, n_diff_ids, err))
        return NULL;
    if (base && s_load_object(base, base_len, AF_CONFIG_MAX_BYTES, "base image config", &b, err))
        return NULL;
    if (af_oci_format_time(spec->created, created) < 0) {
        af_err_set(err, AF_ERR_INVAL, "image config: creation time %" PRId64 " out of range",
                   spec->created);
        goto out;
    }
    if (!(cfg = s_base_config_section(b, err)) || s_config_section(cfg, b, spec, err) ||
        s_config_rootfs(b, diff_ids, n_diff_ids, &ids, &rootfs, err) ||
        s_config_history(b, spec, created, n_diff_ids, &hist, err))
        goto out;
    if (!(root = json_object()) || !s_set_str(root, "architecture", spec->platform.arch) ||
        !s_set_str(root, "os", spec->platform.os) || !s_set_str(root, "created", created) ||
        json_object_set(root, "config", cfg) || json_object_set(root, "rootfs", rootfs) ||
        json_object_set(root, "history", hist) ||
        (spec->platform.variant[0] && !s_set_str(root, "variant", spec->platform.variant))) {
        s_nomem(err);
        goto out;
    }
    out = s_dump(root, len_out, err, "image config");
    root = NULL; /* s_dump releases it */
out:
    json_decref(root);
    json_decref(cfg);
    json_decref(rootfs);
    json_decref(ids);
    json_decref(hist);
    json_decref(b);
    return out;
}

/* An image manifest of media type MT (OCI or Docker v2). */
static char *s_manifest_build(const char *mt, const af_descriptor_t *config,
                              const af_descriptor_t *layers, size_t n_layers,
                              const af_kv_t *annotations, size_t n_annotations, size_t *len_out,
                              af_err_t *err)
{
    if (!config || (n_layers && !layers)) {
        af_err_set(err, AF_ERR_INVAL, "image manifest: missing arguments");
        return NULL;
    }
    if (s_check_descriptor(config, "image manifest: config", 0, err))
        return NULL;
    for (size_t i = 0; i < n_layers; i++)
        if (s_check_descriptor(&layers[i], "image manifest: layers", i, err))
            return NULL;
    json_t *root = json_object(), *arr = json_array();
    if (!root || !arr || json_object_set_new(root, "schemaVersion", json_integer(2)) ||
        !s_set_str(root, "mediaType", mt) ||
        json_object_set_new(root, "config", s_descriptor_json(config, false)))
        goto nomem;
    for (size_t i = 0; i < n_layers; i++)
        if (json_array_append_new(arr, s_descriptor_json(&layers[i], false)))
            goto nomem;
    if (json_object_set(root, "layers", arr))
        goto nomem;
    if (n_annotations) {
        json_t *a =
            s_kv_object(NULL, annotations, n_annotations, "image manifest: annotations", err);
        if (!a || json_object_set_new(root, "annotations", a))
            goto err;
    }
    json_decref(arr);
    return s_dump(root, len_out, err, "image manifest");
nomem:
    af_err_set(err, AF_ERR_NOMEM, "image manifest: out of memory");
err:
    json_decref(arr);
    json_decref(root);
    return NULL;
}

char *af_oci_manifest_build(const af_descriptor_t *config, const af_descriptor_t *layers,
                            size_t n_layers, const af_kv_t *annotations, size_t n_annotations,
                            size_t *len_out, af_err_t *err)
{
    return s_manifest_build(AF_MT_OCI_MANIFEST, config, layers, n_layers, annotations,
                            n_annotations, len_out, err);
}

char *af_oci_docker_manifest_build(const af_descriptor_t *config, const af_descriptor_t *layers,
                                   size_t n_layers, size_t *len_out, af_err_t *err)
{
    if (config && strcmp(config->media_type, AF_MT_DOCKER_CONFIG)) {
        af_err_set(err, AF_ERR_INVAL, "Docker v2 manifest: config is %s, not %s",
                   config->media_type, AF_MT_DOCKER_CONFIG);
        return NULL;
    }
    for (size_t i = 0; i < n_layers && layers; i++)
        if (strcmp(layers[i].media_type, AF_MT_DOCKER_LAYER_GZIP)) {
            af_err_set(err, AF_ERR_INVAL, "Docker v2 manifest: layers[%zu] (%s) is %s, not %s", i,
                       layers[i].digest, layers[i].media_type, AF_MT_DOCKER_LAYER_GZIP);
            return NULL;
        }
    return s_manifest_build(AF_MT_DOCKER_MANIFEST, config, layers, n_layers, NULL, 0, len_out, err);
}

/* An index of media type MT (OCI index or Docker manifest list). */
static char *s_index_build(const char *mt, const af_descriptor_t *manifests, size_t n,
                           const af_kv_t *annotations, size_t n_annotations, size_t *len_out,
                           af_err_t *err)
{
    if (n && !manifests) {
        af_err_set(err, AF_ERR_INVAL, "image index: missing arguments");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s_check_descriptor(&manifests[i], "image index: manifests", i, err))
            return NULL;
        if (!manifests[i].has_platform || !manifests[i].platform.os[0] ||
            !manifests[i].platform.arch[0]) {
            af_err_set(err, AF_ERR_INVAL, "image index: manifests[%zu] (%s) has no platform", i,
                       manifests[i].digest);
            return NULL;
        }
    }
    json_t *root = json_object(), *arr = json_array();
    if (!root || !arr || json_object_set_new(root, "schemaVersion", json_integer(2)) ||
        !s_set_str(root, "mediaType", mt))
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, s_descriptor_json(&manifests[i], true)))
            goto nomem;
    if (json_object_set(root, "manifests", arr))
        goto nomem;
    if (n_annotations) {
        json_t *a = s_kv_object(NULL, annotations, n_annotations, "image index: annotations", err);
        if (!a || json_object_set_new(root, "annotations", a))
            goto err;
    }
    json_decref(arr);
    return s_dump(root, len_out, err, "image index");
nomem:
    af_err_set(err, AF_ERR_NOMEM, "image index: out of memory");
err:
    json_decref(arr);
    json_decref(root);
    return NULL;
}

char *af_oci_index_build(const af_descriptor_t *manifests, size_t n, const af_kv_t *annotations,
                         size_t n_annotations, size_t *len_out, af_err_t *err)
{
    return s_index_build(AF_MT_OCI_INDEX, manifests, n, annotations, n_annotations, len_out, err);
}

char *af_oci_docker_list_build(const af_descriptor_t *manifests, size_t n, size_t *len_out,
                               af_err_t *err)
{
    for (size_t i = 0; i < n && manifests; i++)
        if (strcmp(manifests[i].media_type, AF_MT_DOCKER_MANIFEST)) {
            af_err_set(err, AF_ERR_INVAL,
                       "Docker manifest list: manifests[%zu] (%s) is %s, not a Docker v2 "
                       "manifest",
                       i, manifests[i].digest, manifests[i].media_type);
            return NULL;
        }
    return s_index_build(AF_MT_DOCKER_LIST, manifests, n, NULL, 0, len_out, err);
}

/* ---- parsing ----------------------------------------------------------- */

/* Reads an optional string member; NULL when absent, error when not a string. */
static int s_get_str(json_t *obj, const char *key, const char *what, const char **out,
                     af_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return af_err_set(err, AF_ERR_PARSE, "%s.%s: not a string", what, key);
    *out = json_string_value(v);
    return 0;
}

/* Fills *out from a platform object; has_platform stays false when its
 * values are not a platform we know ("unknown/unknown" attestations). */
static int s_parse_platform(json_t *o, const char *what, af_descriptor_t *out, af_err_t *err)
{
    if (!json_is_object(o))
        return af_err_set(err, AF_ERR_PARSE, "%s.platform: not an object", what);
    const char *os, *arch, *variant;
    char w[160];
    snprintf(w, sizeof w, "%s.platform", what);
    if (s_get_str(o, "os", w, &os, err) || s_get_str(o, "architecture", w, &arch, err) ||
        s_get_str(o, "variant", w, &variant, err))
        return AF_ERR_PARSE;
    if (!os || !arch)
        return af_err_set(err, AF_ERR_PARSE, "%s: missing %s", w, os ? "architecture" : "os");
    char s[3 * AF_PLATFORM_STR_MAX];
    if (strlen(os) > AF_PLATFORM_STR_MAX || strlen(arch) > AF_PLATFORM_STR_MAX ||
        (variant && strlen(variant) > AF_PLATFORM_STR_MAX))
        return 0;
    snprintf(s, sizeof s, "%s/%s%s%s", os, arch, variant && *variant ? "/" : "",
             variant ? variant : "");
    out->has_platform = af_platform_parse(s, &out->platform, NULL) == 0;
    return 0;
}

static int s_parse_descriptor(json_t *o, const char *what, bool platform_allowed,
                              af_descriptor_t *out, af_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(o))
        return af_err_set(err, AF_ERR_PARSE, "%s: not an object", what);
    const char *mt, *digest;
    if (s_get_str(o, "mediaType", what, &mt, err) || s_get_str(o, "digest", what, &digest, err))
        return AF_ERR_PARSE;
    if (!mt || !*mt)
        return af_err_set(err, AF_ERR_PARSE, "%s: missing mediaType", what);
    if (strlen(mt) > AF_MAX_NAME)
        return af_err_set(err, AF_ERR_PARSE, "%s: mediaType longer than %d", what, AF_MAX_NAME);
    if (!digest)
        return af_err_set(err, AF_ERR_PARSE, "%s: missing digest", what);
    if (!af_digest_valid(digest))
        return af_err_set(err, AF_ERR_PARSE, "%s: invalid or unsupported digest \"%.80s\"", what,
                          digest);
    json_t *size = json_object_get(o, "size");
    if (!size)
        return af_err_set(err, AF_ERR_PARSE, "%s: missing size", what);
    if (!json_is_integer(size))
        return af_err_set(err, AF_ERR_PARSE, "%s: size is not an integer", what);
    if (json_integer_value(size) < 0)
        return af_err_set(err, AF_ERR_PARSE, "%s: negative size", what);
    snprintf(out->media_type, sizeof out->media_type, "%s", mt);
    snprintf(out->digest, sizeof out->digest, "%s", digest);
    out->size = (int64_t)json_integer_value(size);
    json_t *p = json_object_get(o, "platform");
    if (p && platform_allowed)
        return s_parse_platform(p, what, out, err);
    return 0;
}

/* Parses the array KEY of descriptors into *out_p / *n_p. */
static int s_parse_list(json_t *root, const char *key, bool platform_allowed,
                        af_descriptor_t **out_p, size_t *n_p, af_err_t *err)
{
    json_t *a = json_object_get(root, key);
    if (!a)
        return af_err_set(err, AF_ERR_PARSE, "missing \"%s\"", key);
    if (!json_is_array(a))
        return af_err_set(err, AF_ERR_PARSE, "\"%s\" is not an array", key);
    size_t n = json_array_size(a);
    if (n == 0)
        return 0;
    af_descriptor_t *d = calloc(n, sizeof *d);
    if (!d)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory for %zu %s", n, key);
    *out_p = d;
    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s[%zu]", key, i);
        int rc = s_parse_descriptor(json_array_get(a, i), what, platform_allowed, &d[i], err);
        if (rc)
            return rc;
        *n_p = i + 1;
    }
    return 0;
}

af_oci_doc_t *af_oci_doc_parse(const char *body, size_t len, const char *content_type,
                               af_err_t *err)
{
    af_oci_doc_t *doc = NULL;
    json_t *root = NULL;
    if (s_load_object(body, len, AF_MANIFEST_MAX_BYTES, "manifest", &root, err))
        return NULL;
    if (!(doc = calloc(1, sizeof *doc))) {
        af_err_set(err, AF_ERR_NOMEM, "manifest: out of memory");
        goto err;
    }
    json_t *sv = json_object_get(root, "schemaVersion");
    if (!sv) {
        af_err_set(err, AF_ERR_PARSE, "manifest: missing schemaVersion");
        goto err;
    }
    if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        af_err_set(err, AF_ERR_UNSUPPORTED, "manifest: schemaVersion must be 2");
        goto err;
    }
    const char *mt;
    if (s_get_str(root, "mediaType", "manifest", &mt, err)) {
        af_err_prefix(err, AF_ERR_PARSE, "manifest");
        goto err;
    }
    if (mt && !af_oci_is_index(mt) && !af_oci_is_manifest(mt)) {
        af_err_set(err, AF_ERR_UNSUPPORTED, "manifest: unsupported mediaType \"%.128s\"", mt);
        goto err;
    }
    char ct[AF_MAX_NAME + 1] = "";
    if (!mt && content_type) {
        /* "type/subtype; charset=utf-8" -> "type/subtype" */
        size_t n = strcspn(content_type, "; \t");
        if (n <= AF_MAX_NAME)
            snprintf(ct, sizeof ct, "%.*s", (int)n, content_type);
        if (af_oci_is_index(ct) || af_oci_is_manifest(ct))
            mt = ct;
    }
    if (!mt) {
        /* an OCI document may omit mediaType: tell by its shape */
        if (json_object_get(root, "manifests"))
            mt = AF_MT_OCI_INDEX;
        else if (json_object_get(root, "config"))
            mt = AF_MT_OCI_MANIFEST;
        else {
            af_err_set(err, AF_ERR_PARSE,
                       "manifest: no mediaType, and neither manifests nor "
                       "config");
            goto err;
        }
    }
    snprintf(doc->media_type, sizeof doc->media_type, "%s", mt);
    doc->is_index = af_oci_is_index(mt);
    int rc;
    if (doc->is_index) {
        rc = s_parse_list(root, "manifests", true, &doc->manifests, &doc->n_manifests, err);
    } else {
        rc =
            s_parse_descriptor(json_object_get(root, "config"), "config", false, &doc->config, err);
        if (!json_object_get(root, "config"))
            rc = af_err_set(err, AF_ERR_PARSE, "missing \"config\"");
        if (!rc)
            rc = s_parse_list(root, "layers", false, &doc->layers, &doc->n_layers, err);
    }
    if (rc) {
        af_err_prefix(err, AF_ERR_PARSE, "%s", doc->is_index ? "image index" : "image manifest");
        goto err;
    }
    json_decref(root);
    return doc;
err:
    json_decref(root);
    af_oci_doc_destroy(&doc);
    return NULL;
}

void af_oci_doc_destroy(af_oci_doc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_oci_doc_t *self = *self_p;
    free(self->layers);
    free(self->manifests);
    free(self);
    *self_p = NULL;
}

const af_descriptor_t *af_oci_index_select(const af_oci_doc_t *doc, const af_platform_t *p)
{
    if (!doc || !p || !doc->is_index)
        return NULL;
    for (size_t i = 0; i < doc->n_manifests; i++) {
        const af_descriptor_t *d = &doc->manifests[i];
        if (d->has_platform && af_oci_is_manifest(d->media_type) &&
            af_platform_equal(&d->platform, p))
            return d;
    }
    for (size_t i = 0; i < doc->n_manifests; i++) {
        const af_descriptor_t *d = &doc->manifests[i];
        if (d->has_platform && af_oci_is_manifest(d->media_type) && !d->platform.variant[0] &&
            !strcmp(d->platform.os, p->os) && !strcmp(d->platform.arch, p->arch))
            return d;
    }
    return NULL;
}

int af_oci_config_platform(const char *body, size_t len, af_platform_t *out, af_err_t *err)
{
    if (!out)
        return af_err_set(err, AF_ERR_INVAL, "image config: no output");
    json_t *root = NULL;
    int rc = s_load_object(body, len, AF_CONFIG_MAX_BYTES, "image config", &root, err);
    if (rc)
        return rc;
    const char *os, *arch, *variant;
    if (s_get_str(root, "os", "image config", &os, err) ||
        s_get_str(root, "architecture", "image config", &arch, err) ||
        s_get_str(root, "variant", "image config", &variant, err)) {
        rc = AF_ERR_PARSE;
        goto out;
    }
    if (!os || !arch || !*os || !*arch) {
        rc = af_err_set(err, AF_ERR_PARSE, "image config: missing %s",
                        !os || !*os ? "os" : "architecture");
        goto out;
    }
    char s[3 * AF_PLATFORM_STR_MAX + 8];
    if (strlen(os) > AF_PLATFORM_STR_MAX || strlen(arch) > AF_PLATFORM_STR_MAX ||
        (variant && strlen(variant) > AF_PLATFORM_STR_MAX)) {
        rc = af_err_set(err, AF_ERR_PARSE, "image config: platform fields too long");
        goto out;
    }
    snprintf(s, sizeof s, "%s/%s%s%s", os, arch, variant && *variant ? "/" : "",
             variant ? variant : "");
    if (af_platform_parse(s, out, err)) {
        /* a platform we do not know is a bad config here, not a bad argument */
        rc = AF_ERR_PARSE;
        af_err_prefix(err, rc, "image config");
        if (err)
            err->code = rc;
        goto out;
    }
out:
    json_decref(root);
    return rc;
}
