/* build.c -- the `archfarm build` pipeline (see build.h): settle the
 * recipe, SOURCE_DATE_EPOCH and the target repository; load the inventory;
 * pack the context once into an unnamed temp file (all local: a bad
 * request is exit 2 before any network work); check the registry takes a
 * push; probe the nodes that could serve the platforms; pick one per
 * platform (nothing starts when a platform has no usable node); run the
 * slices; verify them in the registry;
 * publish the index to every tag; write the metadata file; print the index
 * digest. Each step's failure maps to one exit status (docs/cli.md). */
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "build.h"
#include "credentials.h"
#include "ctxcache.h"
#include "image.h"
#include "log.h"
#include "oci.h"
#include "preflight.h"
#include "recipe.h"
#include "registry.h"
#include "schedule.h"
#include "signals.h"
#include "slicecache.h"
#include "strbuf.h"
#include "tmpfile.h"

/* A native recipe is loaded and checked here, as the agent will (unknown
 * keys, an empty file, bad values), so that a bad one is a usage error
 * (exit 2) before any node is asked, not an infra failure retried on every
 * node (issue 12, finding 4). */
/* A native recipe is loaded (and so checked) here, into *OUT (the
 * caller's); a Dockerfile is the engine's to check. */
static int s_recipe_check(const char *ctx, const af_build_spec_t *spec, af_recipe_t **out)
{
    if (strcmp(spec->recipe_kind, "native"))
        return 0;
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", ctx, spec->recipe_path);
    af_err_t err;
    af_err_clear(&err);
    if (!(*out = af_recipe_load(path, &err)))
        return af_cli_usage_error("build", "recipe %s", af_err_msg(&err, AF_ERR_PARSE));
    return 0;
}

/* Resolves the recipe: kind and path relative to the context root. */
static int s_recipe_resolve(const af_build_opts_t *o, af_build_spec_t *spec, char *ctx);

static int s_recipe(const af_build_opts_t *o, af_build_spec_t *spec, af_recipe_t **out)
{
    char ctx[PATH_MAX];
    int rc = s_recipe_resolve(o, spec, ctx);
    return rc ? rc : s_recipe_check(ctx, spec, out);
}

static int s_recipe_resolve(const af_build_opts_t *o, af_build_spec_t *spec, char *ctx)
{
    if (!realpath(o->context, ctx))
        return af_cli_usage_error("build", "context '%s': %s", o->context, strerror(errno));
    if (o->file) {
        char path[PATH_MAX], joined[PATH_MAX * 2];
        bool found = realpath(o->file, path) != NULL;
        if (!found && o->file[0] != '/') {
            snprintf(joined, sizeof joined, "%s/%s", ctx, o->file);
            found = realpath(joined, path) != NULL;
        }
        if (!found)
            return af_cli_usage_error("build",
                                      "-f %s: no such file (relative to the current "
                                      "directory or the context)",
                                      o->file);
        size_t cl = strlen(ctx);
        if (strncmp(path, ctx, cl) || path[cl] != '/')
            return af_cli_usage_error("build",
                                      "-f %s is outside the context %s: the recipe must be "
                                      "inside the context (only the context is sent)",
                                      o->file, o->context);
        snprintf(spec->recipe_path, sizeof spec->recipe_path, "%s", path + cl + 1);
        const char *base = strrchr(path, '/') + 1;
        size_t bl = strlen(base);
        bool yaml = (bl > 5 && !strcmp(base + bl - 5, ".yaml")) ||
                    (bl > 4 && !strcmp(base + bl - 4, ".yml"));
        spec->recipe_kind = yaml ? "native" : "dockerfile";
        return 0;
    }
    char p[PATH_MAX + 32];
    struct stat st;
    snprintf(p, sizeof p, "%s/archfarm.yaml", ctx);
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
        spec->recipe_kind = "native";
        snprintf(spec->recipe_path, sizeof spec->recipe_path, "archfarm.yaml");
        return 0;
    }
    snprintf(p, sizeof p, "%s/Dockerfile", ctx);
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
        spec->recipe_kind = "dockerfile";
        snprintf(spec->recipe_path, sizeof spec->recipe_path, "Dockerfile");
        return 0;
    }
    return af_cli_usage_error("build", "no archfarm.yaml or Dockerfile in context %s (use -f)",
                              o->context);
}

/* SOURCE_DATE_EPOCH: --build-arg wins over the environment; default 0. */
static int s_source_date_epoch(const af_build_opts_t *o, int64_t *out)
{
    const char *v = getenv("SOURCE_DATE_EPOCH");
    const char *from = "environment";
    for (size_t i = 0; i < o->n_build_args; i++)
        if (!strcmp(o->build_args[i].key, "SOURCE_DATE_EPOCH")) {
            v = o->build_args[i].value;
            from = "--build-arg";
        }
    *out = 0;
    if (!v || !*v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < 0 || n > 253402300799LL)
        return af_cli_usage_error("build", "SOURCE_DATE_EPOCH '%s' (%s) is not a timestamp", v,
                                  from);
    *out = n;
    return 0;
}

static void s_build_id(char *out, size_t len)
{
    unsigned char r[6] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, r, sizeof r) != (ssize_t)sizeof r)
            memset(r, 0, sizeof r);
        close(fd);
    }
    unsigned long long t = (unsigned long long)zclock_mono() ^ ((unsigned long long)getpid() << 20);
    snprintf(out, len, "b%02x%02x%02x%02x%02x%02x%04llx", r[0], r[1], r[2], r[3], r[4], r[5],
             t & 0xffff);
}

static int s_signal_exit(int sig)
{
    return sig == SIGTERM ? AF_EXIT_SIGTERM : AF_EXIT_SIGINT;
}

static void s_summary(af_progress_t *pg, af_slice_t *slices, size_t n, af_farm_t *farm)
{
    af_progress_result_t rows[AF_MAX_LIST];
    for (size_t i = 0; i < n && i < AF_MAX_LIST; i++) {
        af_slice_t *s = &slices[i];
        af_attempt_t *a = af_slice_current(s);
        rows[i] = af_attempt_report(s, a, af_attempt_node_name(a, farm));
    }
    af_progress_summary(pg, rows, n);
}

/* --metadata-file for a build that published nothing: the slices and
 * every attempt, no index. */
static void s_metadata_failed(const af_build_opts_t *o, af_slice_t *slices, af_farm_t *farm)
{
    if (!o->metadata_file)
        return;
    af_err_t err = {0};
    int rc = af_metadata_write(o->metadata_file, NULL, NULL, 0, o, slices, o->n_platforms, farm,
                               false, &err);
    if (rc)
        af_cli_error("%s", af_err_msg(&err, rc));
}

static void s_print_failures(af_slice_t *slices, size_t n, af_farm_t *farm)
{
    for (size_t i = 0; i < n; i++) {
        af_attempt_t *a = af_slice_current(&slices[i]);
        if (a->ok || !strcmp(a->failure, "cancelled"))
            continue;
        const char *node = af_attempt_node_name(a, farm);
        if (!strcmp(a->failure, "build") && a->exit_code >= 0 && !strstr(a->message, "status"))
            af_cli_error("%s on node %s failed: build step exited with status %d: %s",
                         slices[i].platform_str, node, a->exit_code, a->message);
        else
            af_cli_error("%s on node %s failed (%s): %s", slices[i].platform_str, node, a->failure,
                         a->message);
    }
}

/* The registry client's cancel hook: true once a SIGINT/SIGTERM beyond the
 * first BASE has arrived, or DEADLINE_MS (monotonic; 0: none) has passed.
 * The hook lives on af_build_run's stack for the client's life. */
typedef struct {
    int base;
    long long deadline_ms;
} s_cancel_t;

static bool s_cancelled(void *arg)
{
    const s_cancel_t *c = arg;
    return af_signal_count() > c->base || (c->deadline_ms && zclock_mono() > c->deadline_ms);
}

/* How long the read-back of a tag whose PUT was cut short may take. */
#define S_TAG_CHECK_MS 5000

/* An unnamed temp file in $TMPDIR (tmpfile.h): no exit leaves a copy of
 * the context behind. The fd (caller closes), or -1 with the error
 * printed. */
static int s_tmpfile(void)
{
    const char *tmpdir = getenv("TMPDIR");
    af_err_t err = {0};
    int fd = af_tmpfile(tmpdir && *tmpdir ? tmpdir : "/tmp", "archfarm-context", &err);
    if (fd < 0)
        af_cli_error("%s", af_err_msg(&err, AF_ERR_IO));
    return fd;
}

/* " for linux/amd64, linux/arm64" when C is part of the context, else "". */
static const char *s_for(const af_slice_context_t *c, char *buf, size_t size)
{
    if (!c->only)
        return "";
    snprintf(buf, size, " for %s", c->platforms);
    return buf;
}

/* Packs context C into an unnamed temp file (s_tmpfile): C's fd, digest,
 * size and file count. Returns an exit status. */
static int s_pack(const af_build_opts_t *o, const af_build_spec_t *spec, af_progress_t *pg,
                  af_slice_context_t *c, af_pack_result_t *result)
{
    int fd = s_tmpfile();
    if (fd < 0)
        return AF_EXIT_INFRA;
    char f[sizeof c->platforms + 8];
    af_progress_info(pg, "packing context %s%s (%s recipe %s)", o->context, s_for(c, f, sizeof f),
                     spec->recipe_kind, spec->recipe_path);
    af_pack_result_t pack = {0};
    af_err_t err = {0};
    int rc = af_archive_pack_context_fd(o->context, fd, "context tar", spec->source_date_epoch,
                                        (const char *const *)c->only, c->n_only, &pack, &err);
    if (rc) {
        close(fd);
        af_cli_error("cannot pack context %s: %s", o->context, af_err_msg(&err, rc));
        if (af_signal_last())
            return s_signal_exit(af_signal_last());
        /* a context the agents would refuse, or one that cannot be read,
         * is the user's to fix (exit 2); writing the temp file is ours */
        return strncmp(err.msg, "context tar", 11) ? AF_EXIT_USAGE : AF_EXIT_INFRA;
    }
    char sz[32];
    af_progress_info(pg, "context%s: %llu files, %s, %s", s_for(c, f, sizeof f),
                     (unsigned long long)pack.files, af_cli_bytes(pack.size, sz, sizeof sz),
                     pack.digest);
    snprintf(c->digest, sizeof c->digest, "%s", pack.digest);
    c->size = pack.size;
    c->files = pack.files;
    c->fd = fd;
    *result = pack;
    return AF_EXIT_OK;
}

/* Lists the tags I in [FROM, TO) as "a, b" into OUT. */
static void s_tag_list(const af_build_opts_t *o, size_t from, size_t to, char *out, size_t size)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = from; i < to && off < size; i++) {
        int n = snprintf(out + off, size - off, "%s%s", i > from ? ", " : "", o->tag_args[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

/* Publishes INDEX under every tag. The commit point is the first tag PUT:
 * a SIGINT/SIGTERM before it writes no tag, and one during a PUT aborts it
 * through CANCEL (the registry client's hook). A registry may have stored
 * a manifest whose PUT was cut short (by a signal, a timeout or a lost
 * connection), so that tag is read back (at most S_TAG_CHECK_MS; a
 * further signal cuts that short too) and the message names exactly the
 * tags that point at the index, and the one that may. Returns an exit
 * status: 0, 130/143 for a signal, else as for a registry error. */
static int s_write_tags(const af_build_opts_t *o, af_registry_t *reg, s_cancel_t *cancel,
                        const char *repo, const char *mt, const char *index, size_t len,
                        const char *index_digest, af_progress_t *pg, af_slice_t *slices,
                        af_farm_t *farm)
{
    size_t done = 0;
    af_err_t err = {0};
    int rc = af_publish_tags(reg, repo, o->tags, o->n_tags, mt, index, len, &done, &err);
    if (!rc)
        return AF_EXIT_OK;
    s_summary(pg, slices, o->n_platforms, farm); /* the table, then what went wrong */
    int sig = af_signal_last();
    bool cut = done < o->n_tags; /* tag DONE was being written */
    bool cut_moved = false, cut_unknown = false;
    if (cut) {
        s_cancel_t check = {.base = af_signal_count(),
                            .deadline_ms = zclock_mono() + S_TAG_CHECK_MS};
        af_registry_set_cancel(reg, s_cancelled, &check);
        const char *tag = o->tags[done].tag[0] ? o->tags[done].tag : "latest";
        char *body = NULL, *ct = NULL, dg[AF_DIGEST_STR_MAX] = "";
        size_t blen = 0;
        af_err_t cerr = {0};
        int crc = af_registry_manifest_get(reg, repo, tag, &body, &blen, &ct, dg, &cerr);
        free(body);
        free(ct);
        af_registry_set_cancel(reg, s_cancelled, cancel);
        if (crc == 0)
            cut_moved = !strcmp(dg, index_digest);
        else if (crc != AF_ERR_NOTFOUND)
            cut_unknown = true;
    }
    size_t moved = done + (cut_moved ? 1 : 0);
    char what[AF_MAX_STR + 64];
    if (sig)
        snprintf(what, sizeof what, "interrupted (%s)", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    else
        snprintf(what, sizeof what, "%s", af_err_msg(&err, rc));
    char list[AF_MAX_LIST * (AF_MAX_REF + 4)];
    if (moved == 0 && !cut_unknown) {
        af_cli_error("%s; no tag was written", what);
    } else if (moved) {
        s_tag_list(o, 0, moved, list, sizeof list);
        af_cli_error("%s; these tags now point at index %s: %s", what, index_digest, list);
    } else {
        af_cli_error("%s", what);
    }
    if (cut_unknown)
        af_cli_error("tag %s may point at index %s: the registry did not say whether it stored "
                     "the interrupted write",
                     o->tag_args[done], index_digest);
    if (moved + (cut_unknown ? 1 : 0) < o->n_tags) {
        s_tag_list(o, moved + (cut_unknown ? 1 : 0), o->n_tags, list, sizeof list);
        af_cli_error("not written: %s", list);
    }
    return sig ? s_signal_exit(sig) : af_cli_registry_exit(rc);
}

/* One build's state, from the request to the report. The steps below each
 * take it, return an exit status (0: go on) and leave what they made in it
 * for s_build_free, the one cleanup path. CANCEL is the registry client's
 * hook argument and lives as long as REG. */
typedef struct {
    const af_cli_t *cli;
    af_build_opts_t *o;
    const af_ref_t *first; /* the first -t: registry and repository */
    af_build_spec_t spec;
    char *reg_user, *reg_pass; /* the registry credentials (owned) */
    af_progress_t *pg;
    af_inventory_t *inv;
    af_recipe_t *recipe;             /* a native recipe, parsed; NULL for a Dockerfile */
    char ctx_real[PATH_MAX];         /* the context's real path */
    af_ctxwalk_t walks[AF_MAX_LIST]; /* each context's stat walk (ctxcache.h), when caching */
    af_slice_context_t *ctxs;        /* the contexts sent (one per n_platforms at most) */
    size_t n_ctxs;
    size_t ctx_of[AF_MAX_LIST]; /* platform I is sent ctxs[ctx_of[I]] */
    size_t n_cached;            /* slices taken from the slice cache */
    af_registry_t *reg;
    s_cancel_t cancel;
    af_farm_t *farm;
    af_candidate_t *cands; /* one per farm node */
    size_t chosen[AF_MAX_LIST];
    af_slice_t *slices; /* one per platform */
    char *index;
    size_t index_len;
    char index_digest[AF_DIGEST_STR_MAX];
    const char *index_mt;
} s_build_t;

static void s_build_free(s_build_t *b)
{
    free(b->index);
    af_registry_destroy(&b->reg);
    for (size_t i = 0; i < b->n_ctxs; i++) {
        af_slice_context_t *c = &b->ctxs[i];
        if (c->fd >= 0)
            close(c->fd);
        if (c->delta_fd >= 0)
            close(c->delta_fd);
        for (size_t k = 0; k < c->n_only; k++)
            free(c->only[k]);
        free(c->only);
        free(c->variant);
    }
    free(b->ctxs);
    af_recipe_destroy(&b->recipe);
    free(b->slices);
    free(b->cands);
    af_farm_destroy(&b->farm);
    af_inventory_destroy(&b->inv);
    af_progress_destroy(&b->pg);
    if (b->reg_pass) {
        explicit_bzero(b->reg_pass, strlen(b->reg_pass));
        free(b->reg_pass);
    }
    free(b->reg_user);
}

/* 1. The request: recipe, SOURCE_DATE_EPOCH, target, credentials. */
static int s_step_request(s_build_t *b)
{
    af_build_opts_t *o = b->o;
    af_build_spec_t *spec = &b->spec;
    af_err_t err = {0};
    int rc = s_recipe(o, spec, &b->recipe);
    if (!rc)
        rc = s_source_date_epoch(o, &spec->source_date_epoch);
    if (rc)
        return rc;
    af_ref_format_repo(b->first, spec->repository, sizeof spec->repository);
    spec->registry_insecure = af_insecure_match(&o->insecure, b->first->registry);
    rc = af_credentials_lookup(b->first->registry, &b->reg_user, &b->reg_pass, &err);
    if (rc) {
        af_cli_error("%s", af_err_msg(&err, rc));
        return AF_EXIT_USAGE;
    }
    spec->registry_username = b->reg_user;
    spec->registry_password = b->reg_pass;
    spec->target = o->target;
    spec->manifest_format = o->docker_format ? "docker" : "oci";
    spec->compression = o->compression;
    spec->compression_level = o->compression_level;
    spec->annotations = o->manifest_annots;
    spec->n_annotations = o->n_manifest_annots;
    spec->build_args = o->build_args;
    spec->n_build_args = o->n_build_args;
    spec->timeout_s = o->timeout_s;
    return AF_EXIT_OK;
}

/* The delta from the tar this context (directory and variant) was packed
 * into last time to the one just packed (ctxcache.h), offered to nodes
 * that still hold that tar. Without one, every node that lacks the
 * context gets the whole tar. */
static void s_delta(s_build_t *b, af_slice_context_t *c)
{
    if (c->size < AF_CTXDELTA_MIN_BYTES)
        return;
    int fd = s_tmpfile();
    if (fd < 0)
        return;
    uint64_t size = 0;
    char base[AF_DIGEST_STR_MAX];
    if (!af_ctxcache_delta(b->ctx_real, c->variant, c->fd, c->size, c->digest, fd, &size, base)) {
        close(fd);
        return;
    }
    c->delta_fd = fd;
    snprintf(c->base, sizeof c->base, "%s", base);
    c->delta_size = size;
    char s1[32], s2[32], f[sizeof c->platforms + 8];
    af_progress_info(b->pg, "context%s: %s delta from %s (%s), for nodes that hold it",
                     s_for(c, f, sizeof f), af_cli_bytes(size, s1, sizeof s1), base,
                     af_cli_bytes(c->size, s2, sizeof s2));
}

/* Packs context C now, and records the result in the stat cache when
 * the directory did not change meanwhile. */
static int s_pack_now(s_build_t *b, af_slice_context_t *c)
{
    af_pack_result_t pack;
    int rc = s_pack(b->o, &b->spec, b->pg, c, &pack);
    const af_ctxwalk_t *walk = &b->walks[c - b->ctxs];
    if (!rc && walk->ok) {
        af_ctxwalk_t after;
        af_ctxcache_walk(b->ctx_real, b->spec.source_date_epoch, (const char *const *)c->only,
                         c->n_only, &after);
        af_ctxcache_store(b->ctx_real, c->variant, b->spec.source_date_epoch, walk, &after, &pack);
    }
    if (!rc)
        s_delta(b, c);
    return rc;
}

/* A new context in b->ctxs for platform I, narrowed to ONLY (taken; NULL
 * for the whole context), or the existing one with the same patterns. */
static int s_context_for(s_build_t *b, size_t i, char **only, size_t n_only)
{
    af_strbuf_t vb;
    char vbuf[64 * 1024];
    af_strbuf_init(&vb, vbuf, sizeof vbuf);
    for (size_t k = 0; k < n_only; k++)
        af_strbuf_printf(&vb, "%s%s", k ? "\n" : "", only[k]);
    size_t j = 0;
    while (j < b->n_ctxs && strcmp(b->ctxs[j].variant, vbuf))
        j++;
    af_slice_context_t *c = &b->ctxs[j];
    if (j == b->n_ctxs) {
        if (af_strbuf_truncated(&vb) || !(c->variant = strdup(vbuf)))
            goto toobig;
        c->only = only;
        c->n_only = n_only;
        c->fd = c->delta_fd = -1;
        b->n_ctxs++;
        only = NULL;
        n_only = 0;
    }
    char plat[AF_PLATFORM_STR_MAX];
    af_platform_format(&b->o->platforms[i], plat, sizeof plat);
    size_t len = strlen(c->platforms);
    snprintf(c->platforms + len, sizeof c->platforms - len, "%s%s", len ? ", " : "", plat);
    b->ctx_of[i] = j;
    for (size_t k = 0; k < n_only; k++)
        free(only[k]);
    free(only);
    return AF_EXIT_OK;
toobig:
    for (size_t k = 0; k < n_only; k++)
        free(only[k]);
    free(only);
    af_cli_error("build.inputs: the patterns of platform %zu are longer than %zu bytes", i + 1,
                 sizeof vbuf - 1);
    return AF_EXIT_USAGE;
}

/* Which contexts the build sends: the whole context to every platform,
 * or, for a native recipe with build.inputs, to each platform the part
 * its patterns select (platforms with the same patterns share one). */
static int s_plan_contexts(s_build_t *b)
{
    const af_build_opts_t *o = b->o;
    if (!(b->ctxs = calloc(o->n_platforms, sizeof *b->ctxs)))
        return AF_EXIT_INFRA;
    for (size_t i = 0; i < o->n_platforms; i++) {
        char **only = NULL;
        size_t n_only = 0;
        if (b->recipe && b->recipe->has_inputs) {
            const af_platform_t *p = &o->platforms[i];
            af_err_t err = {0};
            if (af_recipe_inputs_for(b->recipe, p->os, p->arch, p->variant, b->spec.recipe_path,
                                     &only, &n_only, &err)) {
                af_cli_error("build.inputs: %s", af_err_msg(&err, AF_ERR_NOMEM));
                return AF_EXIT_INFRA;
            }
        }
        int rc = s_context_for(b, i, only, n_only);
        if (rc)
            return rc;
    }
    return AF_EXIT_OK;
}

/* The digests of the contexts: from the stat cache when no entry changed
 * since they were last packed (no file is read; packing waits until a
 * slice must be sent), else packed now. */
static int s_context(s_build_t *b)
{
    if (!realpath(b->o->context, b->ctx_real))
        snprintf(b->ctx_real, sizeof b->ctx_real, "%s", b->o->context);
    int rc = s_plan_contexts(b);
    for (size_t i = 0; i < b->n_ctxs && !rc; i++) {
        af_slice_context_t *c = &b->ctxs[i];
        af_pack_result_t r;
        if (!b->o->no_cache) /* each context its own walk: a change it cannot hold is no miss */
            af_ctxcache_walk(b->ctx_real, b->spec.source_date_epoch, (const char *const *)c->only,
                             c->n_only, &b->walks[i]);
        if (b->o->no_cache || !af_ctxcache_lookup(b->ctx_real, c->variant,
                                                  b->spec.source_date_epoch, &b->walks[i], &r)) {
            rc = s_pack_now(b, c);
            continue;
        }
        char sz[32], f[sizeof c->platforms + 8];
        af_progress_info(b->pg, "context%s: %llu files, %s, %s (unchanged since it was packed)",
                         s_for(c, f, sizeof f), (unsigned long long)r.files,
                         af_cli_bytes(r.size, sz, sizeof sz), r.digest);
        snprintf(c->digest, sizeof c->digest, "%s", r.digest);
        c->size = r.size;
        c->files = r.files;
    }
    return rc;
}

/* 2. Everything local, before any network work: progress, signals, the
 * inventory, and the context packed once (one the agents would refuse is
 * a usage error here). */
static int s_step_local(s_build_t *b)
{
    af_err_t err = {0};
    if (!(b->pg = af_progress_new(b->o->progress)))
        return AF_EXIT_INFRA;
    af_progress_mask(b->pg, b->reg_pass); /* gha: before anything could echo it */
    af_signals_install();
    if (!(b->inv = af_cli_inventory_load(b->cli, NULL, &err))) {
        af_cli_error("%s", af_err_msg(&err, AF_ERR_INVAL));
        return AF_EXIT_USAGE;
    }
    int rc = s_context(b);
    if (!rc && af_signal_last()) {
        af_cli_error("interrupted before any slice started; nothing was sent");
        rc = s_signal_exit(af_signal_last());
    }
    return rc;
}

/* 3. A build that cannot be published is not started. */
static int s_step_preflight(s_build_t *b)
{
    af_err_t err = {0};
    if (!(b->reg = af_cli_registry_open(b->first->registry, &b->o->insecure, &err))) {
        af_cli_error("%s", af_err_msg(&err, AF_ERR_INVAL));
        return AF_EXIT_INFRA;
    }
    af_registry_set_cancel(b->reg, s_cancelled, &b->cancel);
    int rc = af_preflight_push(b->reg, b->first, b->pg);
    if (af_signal_last()) {
        af_cli_error("interrupted while checking the registry; nothing was sent");
        rc = s_signal_exit(af_signal_last());
    }
    return rc;
}

/* Context C packed, for slices that must be sent: packing was deferred
 * when the stat cache knew the digest. The keys used that digest, so a
 * context that changed meanwhile stops the build. */
static int s_context_packed(s_build_t *b, af_slice_context_t *c)
{
    if (c->fd >= 0)
        return AF_EXIT_OK;
    int rc = s_pack_now(b, c);
    if (rc)
        return rc;
    if (c->keyed_digest[0] && strcmp(c->keyed_digest, c->digest)) {
        af_cli_error("the context changed during the build (%s, then %s): nothing was built; "
                     "build again",
                     c->keyed_digest, c->digest);
        return AF_EXIT_FAILED;
    }
    return AF_EXIT_OK;
}

/* The base image of a native recipe for platform P as the agent will
 * resolve it: "scratch", or the digest of its manifest for P. False when
 * it cannot be resolved now (the slice is then built, not looked up). */
static bool s_base(s_build_t *b, const char *from, const af_platform_t *p, char *out, size_t size)
{
    if (!from || !*from || !strcmp(from, "scratch")) {
        snprintf(out, size, "scratch");
        return true;
    }
    af_ref_t ref;
    af_err_t err = {0};
    if (af_ref_parse(from, &ref, &err))
        return false;
    af_registry_t *reg = b->reg;
    if (strcmp(ref.registry, b->first->registry) &&
        !(reg = af_cli_registry_open(ref.registry, &b->o->insecure, &err)))
        return false;
    af_image_t img;
    int rc = af_image_get(reg, ref.repository, af_ref_reference(&ref), p, 0, &img, &err);
    if (!rc)
        snprintf(out, size, "%s", img.digest);
    else
        af_progress_info(b->pg, "slice cache: base image %s: %s", from, af_err_msg(&err, rc));
    af_image_release(&img);
    if (reg != b->reg)
        af_registry_destroy(&reg);
    return rc == 0;
}

/* Slice I from the cache when its key is recorded in the repository. */
static void s_cache_lookup(s_build_t *b, size_t i, const char *from)
{
    af_slice_t *s = &b->slices[i];
    af_attempt_t *a = &s->attempts[0];
    char base[AF_DIGEST_STR_MAX + 16];
    if (!s_base(b, from, &s->platform, base, sizeof base) ||
        af_slicecache_key(&b->spec, s->ctx->digest, &s->platform, base, a->cache_key))
        return;
    af_err_t err = {0};
    int rc = af_slicecache_find(b->reg, b->first->repository, a->cache_key, &s->platform, a->digest,
                                a->media_type, &a->size, &err);
    if (rc) {
        if (rc != AF_ERR_NOTFOUND)
            af_progress_info(b->pg, "%s: slice cache: %s", s->platform_str, af_err_msg(&err, rc));
        a->digest[0] = a->media_type[0] = '\0';
        a->size = 0;
        return;
    }
    a->cached = a->done = a->ok = true;
    a->pushed_bytes = 0;
    b->n_cached++;
    af_progress_info(b->pg, "%s: cached %s (slice cache, not rebuilt)", s->platform_str, a->digest);
}

/* 4. The slices, and those the slice cache already holds: a native
 * slice whose inputs were built before is not built again
 * (slicecache.h). */
static int s_step_cache(s_build_t *b)
{
    const af_build_opts_t *o = b->o;
    if (!(b->slices = calloc(o->n_platforms, sizeof *b->slices)))
        return AF_EXIT_INFRA;
    for (size_t i = 0; i < o->n_platforms; i++) {
        af_slice_t *s = &b->slices[i];
        s->platform = o->platforms[i];
        af_platform_format(&s->platform, s->platform_str, sizeof s->platform_str);
        s->ctx = &b->ctxs[b->ctx_of[i]];
        s->n_attempts = 1;
        s->attempts[0].attempt = 1;
        s->attempts[0].exit_code = -1;
        s->attempts[0].pushed_bytes = -1;
    }
    if (o->no_cache || !b->recipe)
        return AF_EXIT_OK;
    for (size_t i = 0; i < b->n_ctxs; i++)
        snprintf(b->ctxs[i].keyed_digest, sizeof b->ctxs[i].keyed_digest, "%s", b->ctxs[i].digest);
    for (size_t i = 0; i < o->n_platforms && !af_signal_last(); i++)
        s_cache_lookup(b, i, b->recipe->from);
    if (af_signal_last()) {
        af_cli_error("interrupted while looking up the slice cache; nothing was sent");
        return s_signal_exit(af_signal_last());
    }
    return AF_EXIT_OK;
}

/* Which nodes to probe: those serving a requested platform and matching
 * every --node-selector (the others' status_msg says why not). */
static void s_select(s_build_t *b, bool *select, size_t n_nodes)
{
    const af_build_opts_t *o = b->o;
    for (size_t i = 0; i < n_nodes; i++) {
        af_farm_node_t *fn = af_farm_node(b->farm, i);
        for (size_t p = 0; p < o->n_platforms; p++)
            if (af_node_serves(fn->conf, &o->platforms[p]))
                select[i] = true;
        const af_kv_t *miss = NULL;
        if (select[i] && !af_schedule_labels_match(fn->conf->labels, fn->conf->n_labels,
                                                   o->selectors, o->n_selectors, &miss)) {
            select[i] = false; /* not even probed */
            snprintf(fn->status_msg, sizeof fn->status_msg, "does not match --node-selector %s%s%s",
                     miss->key, miss->value[0] ? "=" : "", miss->value);
        }
    }
}

/* The scheduler's view of each probed node. */
static void s_candidates(s_build_t *b, const bool *select, size_t n_nodes)
{
    for (size_t i = 0; i < n_nodes; i++) {
        af_farm_node_t *fn = af_farm_node(b->farm, i);
        af_candidate_t *c = &b->cands[i];
        c->name = fn->conf->name;
        c->ready = select[i] && fn->status == AF_NODE_READY;
        c->why_not_ready = fn->status_msg;
        c->platforms = fn->conf->platforms;
        c->n_platforms = fn->conf->n_platforms;
        c->announced = fn->platforms;
        c->n_announced = fn->n_platforms;
        c->executors = fn->executors;
        c->n_executors = fn->n_executors;
        c->running = fn->running;
        c->queued = fn->queued;
        c->max_jobs = fn->max_jobs ? fn->max_jobs : (unsigned)fn->conf->max_jobs;
        c->priority = fn->conf->priority;
        if (select[i] && fn->status != AF_NODE_READY)
            af_progress_info(b->pg, "node %s is %s: %s", fn->conf->name,
                             af_node_status_name(fn->status), fn->status_msg);
    }
}

/* 5. The farm: probe the nodes that could serve, pick one per platform
 * (nothing starts when a platform has no usable node). */
static int s_step_nodes(s_build_t *b)
{
    af_err_t err = {0};
    b->farm = af_farm_new(b->inv);
    if (b->farm)
        af_farm_set_heartbeat(b->farm, b->o->heartbeat_ms, b->o->liveness);
    if (b->farm && b->n_cached == b->o->n_platforms)
        return AF_EXIT_OK; /* every slice is cached: no node is needed */
    size_t n_nodes = b->farm ? af_farm_size(b->farm) : 0;
    b->cands = calloc(n_nodes ? n_nodes : 1, sizeof *b->cands);
    bool *select = calloc(n_nodes ? n_nodes : 1, sizeof *select);
    if (!b->farm || !b->cands || !select) {
        free(select);
        af_cli_error("out of memory");
        return AF_EXIT_INFRA;
    }
    s_select(b, select, n_nodes);
    if (af_farm_probe(b->farm, select, b->o->probe_timeout_ms) < 0) {
        free(select);
        af_cli_error("interrupted while probing the nodes; nothing was sent");
        return s_signal_exit(af_signal_last());
    }
    s_candidates(b, select, n_nodes);
    free(select);
    /* the slices to build: those not taken from the cache */
    af_platform_t todo[AF_MAX_LIST];
    size_t where[AF_MAX_LIST], n_todo = 0, picked[AF_MAX_LIST];
    for (size_t i = 0; i < b->o->n_platforms; i++)
        if (!af_slice_current(&b->slices[i])->cached) {
            todo[n_todo] = b->o->platforms[i];
            where[n_todo++] = i;
        }
    int rc = af_schedule_pick(b->cands, n_nodes, todo, n_todo, b->spec.recipe_kind, picked, &err);
    if (rc) {
        af_cli_error("%s", af_err_msg(&err, rc));
        return AF_EXIT_INFRA;
    }
    for (size_t k = 0; k < n_todo; k++)
        b->chosen[where[k]] = picked[k];
    return AF_EXIT_OK;
}

/* The exit status of slices that did not all succeed: 1, but 3 when the
 * registry refused an agent or could not be reached (as for the
 * preflight). Prints what failed. */
static int s_slices_failed(s_build_t *b)
{
    const af_build_opts_t *o = b->o;
    s_summary(b->pg, b->slices, o->n_platforms, b->farm);
    s_print_failures(b->slices, o->n_platforms, b->farm);
    s_metadata_failed(o, b->slices, b->farm);
    af_cli_error("build failed: no tag was written");
    int rc = AF_EXIT_FAILED;
    for (size_t i = 0; i < o->n_platforms; i++)
        if (!strcmp(af_slice_current(&b->slices[i])->failure, "registry"))
            rc = AF_EXIT_INFRA;
    return rc;
}

/* 6. The slices: one per platform on its chosen node, retried as the
 * options say, until each succeeded or failed for good. */
static int s_step_run(s_build_t *b)
{
    const af_build_opts_t *o = b->o;
    char build_id[32];
    s_build_id(build_id, sizeof build_id);
    size_t n_build = o->n_platforms - b->n_cached;
    if (n_build == 0)
        return AF_EXIT_OK;
    for (size_t i = 0; i < o->n_platforms; i++) {
        af_slice_t *s = &b->slices[i];
        int rc = s->attempts[0].cached ? 0 : s_context_packed(b, &b->ctxs[b->ctx_of[i]]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < o->n_platforms; i++) {
        af_slice_t *s = &b->slices[i];
        snprintf(s->job, sizeof s->job, "%s-%zu", build_id, i);
        if (s->attempts[0].cached)
            continue;
        s->attempts[0].node = b->chosen[i];
        af_progress_info(b->pg, "%s -> node %s", s->platform_str, b->cands[b->chosen[i]].name);
    }
    af_progress_info(b->pg, "build %s: %zu slice%s, pushing by digest to %s%s", build_id, n_build,
                     n_build == 1 ? "" : "s", b->spec.repository,
                     b->spec.registry_insecure ? " (insecure registry)" : "");
    af_slices_run_t run = {
        .farm = b->farm,
        .slices = b->slices,
        .n_slices = o->n_platforms,
        .spec = &b->spec,
        .progress = b->pg,
        .fail_fast = o->fail_fast,
        .cands = b->cands,
        .heartbeat_ms = o->heartbeat_ms,
        .liveness = o->liveness,
        .retry = {.max_attempts = 1 + o->retries,
                  .retry_on_build_failure = o->retry_on_build_failure},
    };
    int rc = af_slices_run(&run);
    if (rc) {
        af_cli_error("build loop failed: %s", af_strerror(rc));
        return AF_EXIT_INFRA;
    }
    if (run.signal) {
        s_summary(b->pg, b->slices, o->n_platforms, b->farm);
        s_metadata_failed(o, b->slices, b->farm);
        af_cli_error("interrupted: no tag was written");
        return s_signal_exit(run.signal);
    }
    for (size_t i = 0; i < o->n_platforms; i++)
        if (!af_slice_current(&b->slices[i])->ok)
            return s_slices_failed(b);
    return AF_EXIT_OK;
}

/* Records every slice built now (and verified) in the slice cache; a
 * failure to record costs only a rebuild next time. */
static void s_cache_record(s_build_t *b)
{
    for (size_t i = 0; i < b->o->n_platforms; i++) {
        af_slice_t *s = &b->slices[i];
        af_attempt_t *a = af_slice_current(s);
        const char *key = s->attempts[0].cache_key;
        if (a->cached || !a->ok || !key[0])
            continue;
        af_err_t err = {0};
        int rc = af_slicecache_record(b->reg, b->first->repository, key, a->digest, &err);
        if (rc)
            af_warn("%s: cannot record it in the slice cache: %s", s->platform_str,
                    af_err_msg(&err, rc));
    }
}

/* 7. Verify every slice in the registry, build the index, write the tags. */
static int s_step_publish(s_build_t *b)
{
    const af_build_opts_t *o = b->o;
    af_err_t err = {0};
    int rc = af_publish_verify(b->reg, b->first->repository, b->slices, o->n_platforms, b->farm,
                               b->pg, &err);
    if (rc) {
        s_summary(b->pg, b->slices, o->n_platforms, b->farm);
        s_metadata_failed(o, b->slices, b->farm);
        if (af_signal_last()) {
            af_cli_error("interrupted while verifying: no tag was written");
            return s_signal_exit(af_signal_last());
        }
        af_cli_error("verification failed: %s; no tag was written", af_err_msg(&err, rc));
        return af_cli_registry_exit(rc);
    }
    if (o->push && !o->no_cache)
        s_cache_record(b);
    b->index_mt = o->docker_format ? AF_MT_DOCKER_LIST : AF_MT_OCI_INDEX;
    b->index = o->docker_format ? af_publish_docker_list(b->slices, o->n_platforms, &b->index_len,
                                                         b->index_digest, &err)
                                : af_publish_index_annotated(b->slices, o->n_platforms,
                                                             b->spec.source_date_epoch,
                                                             o->index_annots, o->n_index_annots,
                                                             &b->index_len, b->index_digest, &err);
    if (!b->index) {
        af_cli_error("cannot build the index: %s", af_err_msg(&err, AF_ERR_INVAL));
        return AF_EXIT_FAILED;
    }
    if (!o->push)
        return AF_EXIT_OK;
    return s_write_tags(o, b->reg, &b->cancel, b->first->repository, b->index_mt, b->index,
                        b->index_len, b->index_digest, b->pg, b->slices, b->farm);
}

/* 8. The summary, the metadata file, and the index digest for scripts. */
static int s_step_report(s_build_t *b)
{
    const af_build_opts_t *o = b->o;
    char tags[AF_MAX_LIST * (AF_MAX_REF + 140)];
    size_t off = 0;
    tags[0] = '\0';
    for (size_t i = 0; i < o->n_tags && off < sizeof tags; i++) {
        af_ref_t r = o->tags[i];
        if (!r.tag[0])
            snprintf(r.tag, sizeof r.tag, "latest");
        char ref[AF_MAX_REF + 400];
        int n = snprintf(tags + off, sizeof tags - off, "%s%s", i ? "," : "",
                         af_ref_format(&r, ref, sizeof ref));
        if (n < 0)
            break;
        off += (size_t)n;
    }
    s_summary(b->pg, b->slices, o->n_platforms, b->farm);
    af_progress_index(b->pg, b->index_digest, b->index_mt, b->index_len, tags, o->push);
    if (o->metadata_file) {
        af_err_t err = {0};
        int rc = af_metadata_write(o->metadata_file, b->index_digest, b->index_mt, b->index_len, o,
                                   b->slices, o->n_platforms, b->farm, o->push, &err);
        if (rc) {
            af_cli_error("%s", af_err_msg(&err, rc));
            return AF_EXIT_INFRA;
        }
    }
    if (!af_progress_is_json(b->pg)) {
        printf("%s\n", b->index_digest);
        fflush(stdout);
    }
    return AF_EXIT_OK;
}

int af_build_run(const af_cli_t *cli, af_build_opts_t *o)
{
    s_build_t b = {
        .cli = cli,
        .o = o,
        .first = &o->tags[0],
    };
    int (*const steps[])(s_build_t *) = {s_step_request, s_step_local, s_step_preflight,
                                         s_step_cache,   s_step_nodes, s_step_run,
                                         s_step_publish, s_step_report};
    int rc = AF_EXIT_OK;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == AF_EXIT_OK; i++)
        rc = steps[i](&b);
    s_build_free(&b);
    return rc;
}
