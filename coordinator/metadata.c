/* metadata.c -- `archfarm build --metadata-file FILE`: the buildx-style
 * result record for CI (index digest and descriptor, image names, per
 * slice the platform, node, digest, seconds, bytes sent and pushed and
 * every attempt, and the totals), built with
 * jansson and written atomically (temp file in the same directory, fsync,
 * rename) so a reader never sees half a file. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build.h"
#include "strbuf.h"

static json_t *s_slices(af_slice_t *slices, size_t n, af_farm_t *farm)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        af_slice_t *s = &slices[i];
        af_attempt_t *cur = af_slice_current(s);
        json_t *o = json_object();
        json_object_set_new(o, "platform", json_string(s->platform_str));
        json_object_set_new(o, "node", json_string(af_attempt_node_name(cur, farm)));
        json_object_set_new(o, "digest", json_string(cur->digest));
        json_object_set_new(o, "seconds",
                            json_real(cur->ended_ms > cur->started_ms
                                          ? (cur->ended_ms - cur->started_ms) / 1000.0
                                          : 0));
        json_object_set_new(o, "result", json_string(cur->ok ? "ok" : cur->failure));
        json_object_set_new(o, "cached", json_boolean(cur->cached));
        if (cur->cache_key[0])
            json_object_set_new(o, "cache_key", json_string(cur->cache_key));
        json_object_set_new(o, "context_bytes_sent",
                            json_integer((json_int_t)af_slice_context_bytes(s)));
        int64_t pushed = af_slice_pushed_bytes(s);
        json_object_set_new(o, "pushed_bytes",
                            pushed >= 0 ? json_integer((json_int_t)pushed) : json_null());
        json_t *atts = json_array();
        for (size_t k = 0; k < s->n_attempts; k++) {
            af_attempt_t *a = &s->attempts[k];
            json_t *ao = json_object();
            json_object_set_new(ao, "node", json_string(af_attempt_node_name(a, farm)));
            json_object_set_new(ao, "attempt", json_integer(a->attempt));
            json_object_set_new(ao, "result", json_string(a->ok ? "ok" : a->failure));
            json_object_set_new(ao, "context_bytes_sent",
                                json_integer((json_int_t)a->context_bytes_sent));
            json_object_set_new(ao, "seconds",
                                json_real(a->ended_ms > a->started_ms
                                              ? (a->ended_ms - a->started_ms) / 1000.0
                                              : 0));
            if (a->digest[0])
                json_object_set_new(ao, "digest", json_string(a->digest));
            if (!a->ok && a->message[0])
                json_object_set_new(ao, "message", json_string(a->message));
            json_array_append_new(atts, ao);
        }
        json_object_set_new(o, "attempts", atts);
        json_array_append_new(arr, o);
    }
    return arr;
}

/* "archfarm.totals": the sums over the slices; pushed_bytes is null when
 * any slice's count is unknown. */
static json_t *s_totals(af_slice_t *slices, size_t n)
{
    uint64_t sent = 0, pushed = 0;
    bool known = true;
    for (size_t i = 0; i < n; i++) {
        sent += af_slice_context_bytes(&slices[i]);
        int64_t p = af_slice_pushed_bytes(&slices[i]);
        if (p < 0)
            known = false;
        else
            pushed += (uint64_t)p;
    }
    json_t *o = json_object();
    json_object_set_new(o, "slices", json_integer((json_int_t)n));
    json_object_set_new(o, "context_bytes_sent", json_integer((json_int_t)sent));
    json_object_set_new(o, "pushed_bytes", known ? json_integer((json_int_t)pushed) : json_null());
    return o;
}

int af_metadata_write(const char *path, const char *index_digest, const char *media_type,
                      uint64_t size, const af_build_opts_t *opts, af_slice_t *slices, size_t n,
                      af_farm_t *farm, bool pushed, af_err_t *err)
{
    json_t *root = json_object();
    if (index_digest)
        af_progress_image_keys(root, media_type, index_digest, size);
    char names[AF_MAX_LIST * (AF_MAX_REF + 140)];
    af_strbuf_t sb;
    af_strbuf_init(&sb, names, sizeof names);
    for (size_t i = 0; i < opts->n_tags; i++) {
        char ref[AF_MAX_REF + 400];
        af_ref_t r = opts->tags[i];
        if (!r.tag[0])
            snprintf(r.tag, sizeof r.tag, "latest");
        af_strbuf_printf(&sb, "%s%s", i ? "," : "", af_ref_format(&r, ref, sizeof ref));
    }
    json_object_set_new(root, "image.name", json_string(names));
    json_object_set_new(root, "archfarm.pushed", json_boolean(pushed));
    json_object_set_new(root, "slices", s_slices(slices, n, farm));
    json_object_set_new(root, "archfarm.totals", s_totals(slices, n));

    int rc = 0;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        json_decref(root);
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    }
    snprintf(tmp, plen + 32, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = af_err_set(err, AF_ERR_IO, "cannot write metadata file %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) ||
        fputc('\n', f) == EOF || fflush(f) || fsync(fileno(f))) {
        rc = af_err_set(err, AF_ERR_IO, "cannot write metadata file %s: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        goto out;
    }
    if (fclose(f)) {
        rc = af_err_set(err, AF_ERR_IO, "cannot write metadata file %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path)) {
        rc = af_err_set(err, AF_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto out;
    }
out:
    free(tmp);
    json_decref(root);
    return rc;
}
