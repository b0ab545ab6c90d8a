/* build.c -- the `archfarm build` pipeline (see build.h): settle the
 * recipe, SOURCE_DATE_EPOCH and the target repository; load the inventory;
 * probe the nodes that could serve the platforms; pick one per platform
 * (nothing starts when a platform has no usable node); pack the context
 * once into a temp file; run the slices; verify them in the registry;
 * publish the index to every tag; write the metadata file; print the index
 * digest. Each step's failure maps to one exit status (docs/cli.md). */
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
#include "log.h"
#include "oci.h"
#include "preflight.h"
#include "recipe.h"
#include "registry.h"
#include "schedule.h"

/* A native recipe is loaded and checked here, as the agent will (unknown
 * keys, an empty file, bad values), so that a bad one is a usage error
 * (exit 2) before any node is asked, not an infra failure retried on every
 * node (issue 12, finding 4). */
static int s_recipe_check(const char *ctx, const af_build_spec_t *spec)
{
    if (strcmp(spec->recipe_kind, "native"))
        return 0;
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", ctx, spec->recipe_path);
    af_err_t err;
    af_err_clear(&err);
    af_recipe_t *r = af_recipe_load(path, &err);
    if (!r)
        return af_cli_usage_error("build", "recipe %s", af_err_msg(&err, AF_ERR_PARSE));
    af_recipe_destroy(&r);
    return 0;
}

/* Resolves the recipe: kind and path relative to the context root. */
static int s_recipe_resolve(const af_build_opts_t *o, af_build_spec_t *spec, char *ctx);

static int s_recipe(const af_build_opts_t *o, af_build_spec_t *spec)
{
    char ctx[PATH_MAX];
    int rc = s_recipe_resolve(o, spec, ctx);
    return rc ? rc : s_recipe_check(ctx, spec);
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
    unsigned long long t =
        (unsigned long long)af_cli_now_ms() ^ ((unsigned long long)getpid() << 20);
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
        rows[i] = (af_progress_result_t){
            .platform = s->platform_str,
            .node = af_farm_node(farm, a->node)->conf->name,
            .job = s->job,
            .attempt = a->attempt,
            .ok = a->ok,
            .digest = a->digest,
            .failure = a->failure,
            .exit_code = a->exit_code,
            .message = a->message,
            .seconds = a->ended_ms > a->started_ms ? (a->ended_ms - a->started_ms) / 1000.0 : 0,
            .context_bytes_sent = af_slice_context_bytes(s),
            .pushed_bytes = af_slice_pushed_bytes(s),
        };
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
        const char *node = af_farm_node(farm, a->node)->conf->name;
        if (!strcmp(a->failure, "build") && a->exit_code >= 0 && !strstr(a->message, "status"))
            af_cli_error("%s on node %s failed: build step exited with status %d: %s",
                         slices[i].platform_str, node, a->exit_code, a->message);
        else
            af_cli_error("%s on node %s failed (%s): %s", slices[i].platform_str, node, a->failure,
                         a->message);
    }
}

int af_build_run(const af_cli_t *cli, af_build_opts_t *o)
{
    af_build_spec_t spec = {0};
    af_err_t err = {0};
    af_inventory_t *inv = NULL;
    af_farm_t *farm = NULL;
    af_progress_t *pg = NULL;
    af_candidate_t *cands = NULL;
    af_slice_t *slices = NULL;
    af_registry_t *reg = NULL;
    char *index = NULL;
    char ctx_path[PATH_MAX] = "";
    char *reg_user = NULL, *reg_pass = NULL;
    int ctx_fd = -1;
    int rc;

    /* 1. the request */
    rc = s_recipe(o, &spec);
    if (rc)
        return rc;
    rc = s_source_date_epoch(o, &spec.source_date_epoch);
    if (rc)
        return rc;
    const af_ref_t *first = &o->tags[0];
    af_ref_format_repo(first, spec.repository, sizeof spec.repository);
    spec.registry_insecure = af_insecure_match(&o->insecure, first->registry);
    rc = af_credentials_lookup(first->registry, &reg_user, &reg_pass, &err);
    if (rc) {
        af_cli_error("%s", af_err_msg(&err, rc));
        return AF_EXIT_USAGE;
    }
    spec.registry_username = reg_user;
    spec.registry_password = reg_pass;
    spec.target = o->target;
    spec.manifest_format = o->docker_format ? "docker" : "oci";
    spec.compression = o->compression;
    spec.compression_level = o->compression_level;
    spec.annotations = o->manifest_annots;
    spec.n_annotations = o->n_manifest_annots;
    spec.build_args = o->build_args;
    spec.n_build_args = o->n_build_args;
    spec.timeout_s = o->timeout_s;

    pg = af_progress_new(o->progress);
    if (!pg) {
        rc = AF_EXIT_INFRA;
        goto out;
    }
    af_progress_mask(pg, reg_pass); /* gha: before anything could echo it */

    /* 1b. a build that cannot be published is not started */
    reg = af_cli_registry_open(first->registry, &o->insecure, &err);
    if (!reg) {
        af_cli_error("%s", af_err_msg(&err, AF_ERR_INVAL));
        rc = AF_EXIT_INFRA;
        goto out;
    }
    rc = af_preflight_push(reg, first, pg);
    if (rc)
        goto out;

    /* 2. the farm */
    inv = af_cli_inventory_load(cli, NULL, &err);
    if (!inv) {
        af_cli_error("%s", af_err_msg(&err, AF_ERR_INVAL));
        rc = AF_EXIT_USAGE;
        goto out;
    }
    af_cli_signals_install();
    farm = af_farm_new(inv);
    if (farm)
        af_farm_set_heartbeat(farm, o->heartbeat_ms, o->liveness);
    size_t n_nodes = farm ? af_farm_size(farm) : 0;
    cands = calloc(n_nodes ? n_nodes : 1, sizeof *cands);
    bool *select = calloc(n_nodes ? n_nodes : 1, sizeof *select);
    if (!farm || !cands || !select) {
        free(select);
        af_cli_error("out of memory");
        rc = AF_EXIT_INFRA;
        goto out;
    }
    for (size_t i = 0; i < n_nodes; i++) {
        af_farm_node_t *fn = af_farm_node(farm, i);
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
    int ready = af_farm_probe(farm, select, o->probe_timeout_ms);
    if (ready < 0) {
        free(select);
        af_cli_error("interrupted while probing the nodes; nothing was sent");
        rc = s_signal_exit(af_cli_signal());
        goto out;
    }
    for (size_t i = 0; i < n_nodes; i++) {
        af_farm_node_t *fn = af_farm_node(farm, i);
        af_candidate_t *c = &cands[i];
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
            af_progress_info(pg, "node %s is %s: %s", fn->conf->name,
                             af_node_status_name(fn->status), fn->status_msg);
    }
    free(select);
    size_t chosen[AF_MAX_LIST];
    rc = af_schedule_pick(cands, n_nodes, o->platforms, o->n_platforms, spec.recipe_kind, chosen,
                          &err);
    if (rc) {
        af_cli_error("%s", af_err_msg(&err, rc));
        rc = AF_EXIT_INFRA;
        goto out;
    }

    /* 3. the context, packed once */
    const char *tmpdir = getenv("TMPDIR");
    snprintf(ctx_path, sizeof ctx_path, "%s/archfarm-context-XXXXXX",
             tmpdir && *tmpdir ? tmpdir : "/tmp");
    int tfd = mkstemp(ctx_path);
    if (tfd < 0) {
        af_cli_error("cannot create a temp file in %s: %s", tmpdir ? tmpdir : "/tmp",
                     strerror(errno));
        ctx_path[0] = '\0';
        rc = AF_EXIT_INFRA;
        goto out;
    }
    close(tfd);
    af_progress_info(pg, "packing context %s (%s recipe %s)", o->context, spec.recipe_kind,
                     spec.recipe_path);
    af_pack_result_t pack = {0};
    rc = af_archive_pack_context(o->context, ctx_path, spec.source_date_epoch, &pack, &err);
    if (rc) {
        af_cli_error("cannot pack context %s: %s", o->context, af_err_msg(&err, rc));
        rc = af_cli_signal() ? s_signal_exit(af_cli_signal()) : AF_EXIT_USAGE;
        goto out;
    }
    if (af_cli_signal()) {
        af_cli_error("interrupted before any slice started; nothing was sent");
        rc = s_signal_exit(af_cli_signal());
        goto out;
    }
    char sz[32];
    af_progress_info(pg, "context: %llu files, %s, %s", (unsigned long long)pack.files,
                     af_cli_bytes(pack.size, sz, sizeof sz), pack.digest);
    snprintf(spec.context_digest, sizeof spec.context_digest, "%s", pack.digest);
    spec.context_size = pack.size;
    ctx_fd = open(ctx_path, O_RDONLY | O_CLOEXEC);
    if (ctx_fd < 0) {
        af_cli_error("cannot open packed context %s: %s", ctx_path, strerror(errno));
        rc = AF_EXIT_INFRA;
        goto out;
    }

    /* 4. the slices */
    char build_id[32];
    s_build_id(build_id, sizeof build_id);
    slices = calloc(o->n_platforms, sizeof *slices);
    if (!slices) {
        rc = AF_EXIT_INFRA;
        goto out;
    }
    for (size_t i = 0; i < o->n_platforms; i++) {
        af_slice_t *s = &slices[i];
        s->platform = o->platforms[i];
        af_platform_format(&s->platform, s->platform_str, sizeof s->platform_str);
        snprintf(s->job, sizeof s->job, "%s-%zu", build_id, i);
        s->n_attempts = 1;
        s->attempts[0].node = chosen[i];
        s->attempts[0].attempt = 1;
        s->attempts[0].exit_code = -1;
        af_progress_info(pg, "%s -> node %s", s->platform_str, cands[chosen[i]].name);
    }
    af_progress_info(pg, "build %s: %zu slice%s, pushing by digest to %s%s", build_id,
                     o->n_platforms, o->n_platforms == 1 ? "" : "s", spec.repository,
                     spec.registry_insecure ? " (insecure registry)" : "");
    af_slices_run_t run = {
        .farm = farm,
        .slices = slices,
        .n_slices = o->n_platforms,
        .spec = &spec,
        .context_fd = ctx_fd,
        .progress = pg,
        .fail_fast = o->fail_fast,
        .cands = cands,
        .heartbeat_ms = o->heartbeat_ms,
        .liveness = o->liveness,
        .retry = {.max_attempts = 1 + o->retries,
                  .retry_on_build_failure = o->retry_on_build_failure},
    };
    rc = af_slices_run(&run);
    if (rc) {
        af_cli_error("build loop failed: %s", af_strerror(rc));
        rc = AF_EXIT_INFRA;
        goto out;
    }
    if (run.signal) {
        s_summary(pg, slices, o->n_platforms, farm);
        s_metadata_failed(o, slices, farm);
        af_cli_error("interrupted: no tag was written");
        rc = s_signal_exit(run.signal);
        goto out;
    }
    bool all_ok = true;
    for (size_t i = 0; i < o->n_platforms; i++)
        if (!af_slice_current(&slices[i])->ok)
            all_ok = false;
    if (!all_ok) {
        s_summary(pg, slices, o->n_platforms, farm);
        s_print_failures(slices, o->n_platforms, farm);
        s_metadata_failed(o, slices, farm);
        af_cli_error("build failed: no tag was written");
        /* a slice failed for good once its retries were spent: 1, but 3
         * when the registry refused an agent or could not be reached (as
         * for the preflight) */
        rc = AF_EXIT_FAILED;
        for (size_t i = 0; i < o->n_platforms; i++)
            if (!strcmp(af_slice_current(&slices[i])->failure, "registry"))
                rc = AF_EXIT_INFRA;
        goto out;
    }

    /* 5. verify, index, tags */
    rc = af_publish_verify(reg, first->repository, slices, o->n_platforms, farm, pg, &err);
    if (rc) {
        s_summary(pg, slices, o->n_platforms, farm);
        s_metadata_failed(o, slices, farm);
        af_cli_error("verification failed: %s; no tag was written", af_err_msg(&err, rc));
        rc = af_cli_registry_exit(rc);
        goto out;
    }
    size_t index_len = 0;
    char index_digest[AF_DIGEST_STR_MAX];
    const char *index_mt = o->docker_format ? AF_MT_DOCKER_LIST : AF_MT_OCI_INDEX;
    index = o->docker_format
                ? af_publish_docker_list(slices, o->n_platforms, &index_len, index_digest, &err)
                : af_publish_index_annotated(slices, o->n_platforms, spec.source_date_epoch,
                                             o->index_annots, o->n_index_annots, &index_len,
                                             index_digest, &err);
    if (!index) {
        af_cli_error("cannot build the index: %s", af_err_msg(&err, AF_ERR_INVAL));
        rc = AF_EXIT_FAILED;
        goto out;
    }
    char tags[AF_MAX_LIST * (AF_MAX_REF + 140)];
    size_t off = 0;
    tags[0] = '\0';
    for (size_t i = 0; i < o->n_tags && off < sizeof tags; i++) {
        af_ref_t r = o->tags[i];
        if (!r.tag[0])
            snprintf(r.tag, sizeof r.tag, "latest");
        char b[AF_MAX_REF + 400];
        off += snprintf(tags + off, sizeof tags - off, "%s%s", i ? "," : "",
                        af_ref_format(&r, b, sizeof b));
    }
    if (o->push) {
        size_t done = 0;
        rc = af_publish_tags(reg, first->repository, o->tags, o->n_tags, index_mt, index, index_len,
                             &done, &err);
        if (rc) {
            s_summary(pg, slices, o->n_platforms, farm);
            if (done == 0) {
                af_cli_error("%s; no tag was written", af_err_msg(&err, rc));
            } else {
                char moved[sizeof tags];
                size_t mo = 0;
                moved[0] = '\0';
                for (size_t i = 0; i < done && mo < sizeof moved; i++)
                    mo += snprintf(moved + mo, sizeof moved - mo, "%s%s", i ? ", " : "",
                                   o->tag_args[i]);
                af_cli_error("%s; these tags already point at index %s: %s", af_err_msg(&err, rc),
                             index_digest, moved);
            }
            rc = af_cli_registry_exit(rc);
            goto out;
        }
    }
    s_summary(pg, slices, o->n_platforms, farm);
    af_progress_index(pg, index_digest, index_mt, index_len, tags, o->push);

    /* 6. metadata and the digest for scripts */
    if (o->metadata_file) {
        rc = af_metadata_write(o->metadata_file, index_digest, index_mt, index_len, o, slices,
                               o->n_platforms, farm, o->push, &err);
        if (rc) {
            af_cli_error("%s", af_err_msg(&err, rc));
            rc = AF_EXIT_INFRA;
            goto out;
        }
    }
    if (!af_progress_is_json(pg)) {
        printf("%s\n", index_digest);
        fflush(stdout);
    }
    rc = AF_EXIT_OK;
out:
    free(index);
    af_registry_destroy(&reg);
    if (ctx_fd >= 0)
        close(ctx_fd);
    if (ctx_path[0])
        unlink(ctx_path);
    free(slices);
    free(cands);
    af_farm_destroy(&farm);
    af_inventory_destroy(&inv);
    af_progress_destroy(&pg);
    if (reg_pass) {
        explicit_bzero(reg_pass, strlen(reg_pass));
        free(reg_pass);
    }
    free(reg_user);
    return rc;
}
