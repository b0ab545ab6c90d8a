/* agent.c -- the agent's server loop: peers, jobs, the protocol (agent.h).
 *
 * One zloop per process. Handlers never free a job directly: a job that
 * reaches its outcome is queued on `dead` and a message on an internal
 * PAIR pipe wakes the reaper, a reader handler, which closes it (job dir
 * removed in a worker thread, then RESULT); a closed job is queued on
 * `closed` and destroyed by the reaper in the same way. That keeps
 * destruction out of timer handlers, where zloop could still dispatch the
 * pollers being ended. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive.h"
#include "confine.h"
#include "context_store.h"
#include "curve.h"
#include "digest.h"
#include "executor.h"
#include "fsutil.h"
#include "job.h"
#include "log.h"
#include "platform.h"
#include "proto.h"
#include "push_target.h"
#include "ref.h"

#define S_SNDHWM 100000        /* messages queued per peer before drops */
#define S_LINGER_MS 2000       /* RESULTs still sent when shutting down */
#define S_DRAIN_EXTRA_MS 10000 /* beyond kill_grace_ms */
#define S_MAX_EXECUTORS 8

typedef struct {
    char *key; /* hex of the routing id */
    zframe_t *rid;
    int64_t last_seen; /* zclock_mono() */
    char client[AF_MAX_NAME + 1];
} s_peer_t;

struct af_agent {
    af_agent_config_t cfg;
    zloop_t *loop;
    zsock_t *router;
    zsock_t *wake_tx, *wake_rx;
    char endpoint[AF_MAX_REF + 1];
    char workdir[AF_AGENT_PATH_MAX];
    char jobs_dir[AF_AGENT_PATH_MAX + 8];
    char contexts_dir[AF_AGENT_PATH_MAX + 16];
    af_context_store_t *store;
    af_curve_t *curve; /* NULL when --insecure */
    zhashx_t *peers;   /* key -> s_peer_t */
    zlistx_t *jobs;    /* af_job_t *, arrival order */
    zlistx_t *dead;    /* finished jobs waiting to be closed */
    zlistx_t *closed;  /* closed jobs (RESULT sent) waiting to be destroyed */
    bool wake_pending;
    const af_executor_t *executors[S_MAX_EXECUTORS];
    size_t n_executors;
    af_platform_t build_platform;
    af_job_hooks_t hooks;
    int hb_timer;
    bool draining;
    af_confine_t *confine; /* native steps' confinement */
};

/* --- small helpers --- */

static void s_peer_destroy(void **item)
{
    s_peer_t *p = *(s_peer_t **)item;
    if (p) {
        free(p->key);
        zframe_destroy(&p->rid);
        free(p);
        *item = NULL;
    }
}

static void s_send(af_agent_t *self, af_msg_t **msg_p)
{
    af_err_t err;
    af_err_clear(&err);
    if (*msg_p && af_msg_send(*msg_p, self->router, &err) < 0)
        af_warn("cannot send %s: %s", af_cmd_name((*msg_p)->cmd), af_err_msg(&err, AF_ERR_PROTO));
    af_msg_destroy(msg_p);
}

static void s_send_error(af_agent_t *self, zframe_t *rid, int code, const char *job,
                         const char *message)
{
    af_msg_t *msg = af_msg_new(AF_CMD_ERROR);
    if (!msg)
        return;
    af_msg_set_routing_id(msg, rid);
    msg->code = code ? code : AF_ERR_PROTO;
    snprintf(msg->job, sizeof msg->job, "%s", job ? job : "");
    snprintf(msg->message, sizeof msg->message, "%s", message);
    s_send(self, &msg);
}

static void s_counts(const af_agent_t *self, uint32_t *running, uint32_t *queued)
{
    *running = *queued = 0;
    for (af_job_t *j = zlistx_first(self->jobs); j; j = zlistx_next(self->jobs)) {
        af_job_state_t st = af_job_state(j);
        if (st == AF_JOB_EXTRACTING || st == AF_JOB_RUNNING)
            (*running)++;
        else if (st == AF_JOB_RECEIVING || st == AF_JOB_READY)
            (*queued)++;
    }
}

/* The peer for RID, or NULL if it has not said HELLO (or was declared
 * dead since). CREATE adds it (HELLO). Refreshes its liveness. */
static s_peer_t *s_peer_get(af_agent_t *self, zframe_t *rid, bool create)
{
    char *key = zframe_strhex(rid);
    if (!key)
        return NULL;
    s_peer_t *p = zhashx_lookup(self->peers, key);
    if (!p && create) {
        p = calloc(1, sizeof *p);
        if (!p || !(p->rid = zframe_dup(rid))) {
            free(p);
            free(key);
            return NULL;
        }
        p->key = key;
        key = NULL;
        zhashx_insert(self->peers, p->key, p);
    }
    free(key);
    if (p)
        p->last_seen = zclock_mono();
    return p;
}

static bool s_same_peer(zframe_t *a, zframe_t *b)
{
    return a && b && zframe_eq(a, b);
}

/* --- scheduling and reaping --- */

/* Starts READY jobs, in arrival order, while slots are free. Iterates
 * self->jobs: hooks reached from here (on_finished) must not iterate it
 * too -- they only queue on `dead`. */
static void s_schedule(af_agent_t *self)
{
    if (self->draining)
        return;
    uint32_t running, queued;
    s_counts(self, &running, &queued);
    for (af_job_t *j = zlistx_first(self->jobs); j; j = zlistx_next(self->jobs)) {
        if (af_job_state(j) != AF_JOB_READY)
            continue;
        if (running < self->cfg.max_jobs) {
            running++;
            af_job_start(j); /* may finish at once: it then waits for the reaper */
        } else
            af_job_notify_queued(j);
    }
}

static void s_wake(af_agent_t *self)
{
    if (!self->wake_pending) {
        self->wake_pending = true;
        zstr_send(self->wake_tx, "REAP");
    }
}

static void s_hook_ready(void *arg, af_job_t *job)
{
    s_schedule((af_agent_t *)arg);
}

static void s_hook_finished(void *arg, af_job_t *job)
{
    af_agent_t *self = (af_agent_t *)arg;
    zlistx_add_end(self->dead, job);
    s_wake(self);
}

static void s_hook_closed(void *arg, af_job_t *job)
{
    af_agent_t *self = (af_agent_t *)arg;
    zlistx_add_end(self->closed, job);
    s_wake(self);
}

static void s_remove_job(af_agent_t *self, af_job_t *job)
{
    void *handle = zlistx_find(self->jobs, job);
    if (handle)
        zlistx_delete(self->jobs, handle);
}

static int s_on_wake(zloop_t *loop, zsock_t *sock, void *arg)
{
    af_agent_t *self = (af_agent_t *)arg;
    while (zsock_events(sock) & ZMQ_POLLIN) {
        char *s = zstr_recv(sock);
        if (!s)
            break;
        zstr_free(&s);
    }
    self->wake_pending = false;
    af_job_t *job;
    while ((job = zlistx_detach(self->dead, NULL)) != NULL)
        af_job_close(job); /* on_closed may follow at once or later */
    while ((job = zlistx_detach(self->closed, NULL)) != NULL) {
        s_remove_job(self, job);
        af_job_destroy(&job);
    }
    if (self->draining && zlistx_size(self->jobs) == 0)
        return -1; /* drained: leave the loop */
    s_schedule(self);
    return 0;
}

/* --- commands --- */

static void s_on_hello(af_agent_t *self, s_peer_t *peer, af_msg_t *in)
{
    snprintf(peer->client, sizeof peer->client, "%s", in->client);
    af_info("coordinator %s (version %s) connected", in->client[0] ? in->client : peer->key,
            in->version);
    af_msg_t *msg = af_msg_new(AF_CMD_WELCOME);
    if (!msg)
        return;
    af_msg_set_routing_id(msg, peer->rid);
    snprintf(msg->version, sizeof msg->version, "%s", AF_VERSION);
    snprintf(msg->node, sizeof msg->node, "%s", self->cfg.name);
    for (size_t i = 0; i < self->cfg.n_platforms; i++) {
        char p[AF_PLATFORM_STR_MAX];
        if (af_msg_add_platform(msg, af_platform_format(&self->cfg.platforms[i], p, sizeof p)) < 0)
            af_warn("cannot list platform %s", p);
    }
    for (size_t i = 0; i < self->n_executors; i++)
        if (af_msg_add_executor(msg, self->executors[i]->name) < 0)
            af_warn("cannot list executor %s", self->executors[i]->name);
    s_counts(self, &msg->running, &msg->queued);
    msg->max_jobs = self->cfg.max_jobs;
    msg->heartbeat_ms = self->cfg.heartbeat_ms;
    int abi = af_confine_abi(self->confine);
    if (abi > 0)
        snprintf(msg->confinement, sizeof msg->confinement, "landlock-abi-%d", abi);
    else
        snprintf(msg->confinement, sizeof msg->confinement, "%s",
                 !strcmp(self->cfg.confine, "off") ? "off" : "none");
    s_send(self, &msg);
}

static bool s_valid_job_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > AF_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

/* Why this agent cannot take BUILD IN; 0 if it can (then *exec is set). */
static int s_check_build(af_agent_t *self, const af_msg_t *in, const af_executor_t **exec,
                         af_err_t *err)
{
    if (self->draining)
        return af_err_set(err, AF_ERR_STATE, "agent %s is shutting down", self->cfg.name);
    if (!s_valid_job_id(in->job))
        return af_err_set(err, AF_ERR_INVAL, "invalid job id \"%s\"", in->job);
    if (in->attempt < 1)
        return af_err_set(err, AF_ERR_INVAL, "invalid attempt %u", in->attempt);
    af_platform_t p;
    af_err_t perr;
    af_err_clear(&perr);
    if (af_platform_parse(in->platform, &p, &perr) < 0)
        return af_err_set(err, AF_ERR_INVAL, "%s", af_err_msg(&perr, AF_ERR_INVAL));
    bool served = false;
    for (size_t i = 0; i < self->cfg.n_platforms && !served; i++)
        served = af_platform_equal(&p, &self->cfg.platforms[i]);
    if (!served) {
        char list[AF_MAX_LIST * AF_PLATFORM_STR_MAX];
        return af_err_set(err, AF_ERR_UNSUPPORTED, "node %s does not build %s (it serves %s)",
                          self->cfg.name, in->platform,
                          af_agent_config_platforms(&self->cfg, list, sizeof list));
    }
    *exec = NULL;
    for (size_t i = 0; i < self->n_executors && !*exec; i++)
        if (af_executor_supports(self->executors[i], in->recipe_kind))
            *exec = self->executors[i];
    if (!*exec)
        return af_err_set(err, AF_ERR_UNSUPPORTED, "node %s has no executor for %s recipes",
                          self->cfg.name, in->recipe_kind[0] ? in->recipe_kind : "\"\"");
    if ((in->n_annotations || !strcmp(in->manifest_format, "docker")) &&
        strcmp((*exec)->name, "native"))
        return af_err_set(err, AF_ERR_UNSUPPORTED,
                          "node %s: Docker v2 manifests (--manifest-format docker) and manifest "
                          "annotations come from the native executor only, not %s",
                          self->cfg.name, (*exec)->name);
    if (in->context_size && !af_digest_valid(in->context_digest))
        return af_err_set(err, AF_ERR_INVAL, "invalid context digest \"%s\"", in->context_digest);
    if (in->context_size > (uint64_t)AF_CONTEXT_MAX_BYTES)
        return af_err_set(err, AF_ERR_TOOBIG, "context of %llu bytes exceeds the limit",
                          (unsigned long long)in->context_size);
    af_ref_t ref;
    af_err_clear(&perr);
    if (af_ref_parse(in->repository, &ref, &perr) < 0)
        return af_err_set(err, AF_ERR_INVAL, "repository: %s", af_err_msg(&perr, AF_ERR_INVAL));
    if (ref.tag[0] || ref.digest[0])
        return af_err_set(err, AF_ERR_INVAL, "repository %s must not carry a tag or digest",
                          in->repository);
    return 0;
}

static void s_reject(af_agent_t *self, s_peer_t *peer, const af_msg_t *in, const char *why)
{
    af_msg_t *msg = af_msg_new(AF_CMD_RESULT);
    if (!msg)
        return;
    af_msg_set_routing_id(msg, peer->rid);
    snprintf(msg->job, sizeof msg->job, "%s", in->job);
    msg->attempt = in->attempt;
    msg->ok = false;
    snprintf(msg->platform, sizeof msg->platform, "%s", in->platform);
    snprintf(msg->failure, sizeof msg->failure, "infra");
    msg->exit_code = -1;
    snprintf(msg->message, sizeof msg->message, "%s", why);
    af_warn_job(in->job, self->cfg.name, "build refused: %s", why);
    s_send(self, &msg);
}

static af_job_t *s_find_job(af_agent_t *self, const char *id, uint32_t attempt)
{
    for (af_job_t *j = zlistx_first(self->jobs); j; j = zlistx_next(self->jobs))
        if (af_job_matches(j, id, attempt))
            return j;
    return NULL;
}

static void s_on_build(af_agent_t *self, s_peer_t *peer, af_msg_t **in_p)
{
    af_msg_t *in = *in_p;
    af_err_t err;
    af_err_clear(&err);
    const af_executor_t *exec = NULL;
    if (s_check_build(self, in, &exec, &err) < 0) {
        s_reject(self, peer, in, af_err_msg(&err, AF_ERR_INVAL));
        return;
    }
    af_job_t *dup = s_find_job(self, in->job, in->attempt);
    if (dup) {
        char text[AF_MAX_STR];
        snprintf(text, sizeof text, "job %s attempt %u is already known to node %s", in->job,
                 in->attempt, self->cfg.name);
        s_send_error(self, peer->rid, AF_ERR_STATE, in->job, text);
        return;
    }
    /* a plaintext agent gets no credentials: it may have its own */
    if (af_push_target_own_credentials(in, self->cfg.registry_auth_file, &err) < 0) {
        s_reject(self, peer, in, af_err_msg(&err, AF_ERR_IO));
        return;
    }
    uint32_t running, queued;
    s_counts(self, &running, &queued);
    bool job_queued = running + queued >= self->cfg.max_jobs;
    char id[AF_MAX_NAME + 1];
    snprintf(id, sizeof id, "%s", in->job);
    uint32_t attempt = in->attempt;
    char platform[AF_PLATFORM_STR_MAX];
    snprintf(platform, sizeof platform, "%s", in->platform);
    af_job_t *job = af_job_new(&self->hooks, in_p, exec, &err);
    if (!job) {
        af_msg_t fake = {.attempt = attempt};
        snprintf(fake.job, sizeof fake.job, "%s", id);
        snprintf(fake.platform, sizeof fake.platform, "%s", platform);
        s_reject(self, peer, &fake, af_err_msg(&err, AF_ERR_IO));
        return;
    }
    zlistx_add_end(self->jobs, job);
    af_msg_t *msg = af_msg_new(AF_CMD_ACCEPT);
    if (msg) {
        af_msg_set_routing_id(msg, peer->rid);
        snprintf(msg->job, sizeof msg->job, "%s", id);
        msg->attempt = attempt;
        msg->have_context = af_job_have_context(job);
        msg->have_base = af_job_have_base(job);
        msg->job_queued = job_queued;
        s_send(self, &msg);
    }
    af_job_begin(job);
}

static void s_on_chunk(af_agent_t *self, s_peer_t *peer, af_msg_t *in)
{
    af_job_t *job = s_find_job(self, in->job, in->attempt);
    if (!job) {
        af_debug("chunk for unknown job %s/%u ignored", in->job, in->attempt);
        return;
    }
    if (!s_same_peer(af_job_peer(job), peer->rid)) {
        s_send_error(self, peer->rid, AF_ERR_PROTO, in->job,
                     "context chunk for a job of another coordinator");
        return;
    }
    af_job_chunk(job, in);
}

static void s_on_cancel(af_agent_t *self, s_peer_t *peer, af_msg_t *in)
{
    for (af_job_t *j = zlistx_first(self->jobs); j; j = zlistx_next(self->jobs))
        if (af_job_matches(j, in->job, in->attempt) && s_same_peer(af_job_peer(j), peer->rid))
            af_job_cancel(j, "cancelled", "cancelled by the coordinator");
}

static int s_on_router(zloop_t *loop, zsock_t *sock, void *arg)
{
    af_agent_t *self = (af_agent_t *)arg;
    af_err_t err;
    af_err_clear(&err);
    zframe_t *rid = NULL;
    af_msg_t *in = af_msg_recv(sock, true, &rid, &err);
    if (!in) {
        if (rid) {
            s_peer_get(self, rid, false);
            af_debug("malformed message: %s", af_err_msg(&err, AF_ERR_PROTO));
            s_send_error(self, rid, err.code ? err.code : AF_ERR_PROTO, "",
                         af_err_msg(&err, AF_ERR_PROTO));
            zframe_destroy(&rid);
        }
        return 0;
    }
    zframe_destroy(&rid);
    if (!in->routing_id) {
        af_msg_destroy(&in);
        return 0;
    }
    s_peer_t *peer = s_peer_get(self, in->routing_id, in->cmd == AF_CMD_HELLO);
    if (!peer) {
        /* no session: HELLO first. HEARTBEAT and ERROR get no answer. */
        if (in->cmd != AF_CMD_HEARTBEAT && in->cmd != AF_CMD_ERROR)
            s_send_error(self, in->routing_id, AF_ERR_STATE, in->job,
                         "no session: send HELLO first");
        af_msg_destroy(&in);
        return 0;
    }
    if (af_log_enabled(AF_LOG_DEBUG)) {
        char sum[512];
        af_debug("<- %s", af_msg_summary(in, sum, sizeof sum));
    }
    switch (in->cmd) {
    case AF_CMD_HELLO:
        s_on_hello(self, peer, in);
        break;
    case AF_CMD_HEARTBEAT:
        break; /* touching the peer was the point */
    case AF_CMD_BUILD:
        s_on_build(self, peer, &in);
        break;
    case AF_CMD_CHUNK:
        s_on_chunk(self, peer, in);
        break;
    case AF_CMD_CANCEL:
        s_on_cancel(self, peer, in);
        break;
    case AF_CMD_ERROR:
        af_warn("coordinator %s reports error %d: %s", peer->client[0] ? peer->client : peer->key,
                in->code, in->message);
        break;
    default: {
        char text[128];
        snprintf(text, sizeof text, "unexpected command %s from a coordinator",
                 af_cmd_name(in->cmd));
        s_send_error(self, peer->rid, AF_ERR_UNSUPPORTED, in->job, text);
        break;
    }
    }
    af_msg_destroy(&in);
    return 0;
}

/* As a child subreaper the agent inherits the orphans of build steps.
 * Those still in a step's process group are reaped when the step ends
 * (process.c); one that left the group (setsid) and has since exited would
 * stay a zombie: reap it here. A step leader itself is left to its pidfd. */
static void s_reap_strays(af_agent_t *self)
{
    for (int i = 0; i < 64; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
            return;
        for (af_job_t *j = zlistx_first(self->jobs); j; j = zlistx_next(self->jobs))
            if (af_job_step_pid(j) == si.si_pid)
                return; /* a step that just ended: its pidfd handler reaps it */
        if (waitpid(si.si_pid, NULL, WNOHANG) > 0)
            af_debug("reaped stray process %d", (int)si.si_pid);
    }
}

/* Heartbeats out, dead peers out, strays reaped. Never destroys: cancelled jobs go
 * through the reaper. */
static int s_on_heartbeat(zloop_t *loop, int timer_id, void *arg)
{
    af_agent_t *self = (af_agent_t *)arg;
    int64_t now = zclock_mono();
    int64_t limit = (int64_t)self->cfg.liveness * self->cfg.heartbeat_ms;
    uint32_t running, queued;
    s_counts(self, &running, &queued);
    zlist_t *dead = zlist_new();
    for (s_peer_t *p = zhashx_first(self->peers); p; p = zhashx_next(self->peers)) {
        if (now - p->last_seen > limit) {
            if (dead)
                zlist_append(dead, p->key);
            continue;
        }
        af_msg_t *msg = af_msg_new(AF_CMD_HEARTBEAT);
        if (!msg)
            continue;
        af_msg_set_routing_id(msg, p->rid);
        msg->running = running;
        msg->queued = queued;
        s_send(self, &msg);
    }
    for (char *key = dead ? zlist_first(dead) : NULL; key; key = zlist_next(dead)) {
        s_peer_t *p = zhashx_lookup(self->peers, key);
        if (!p)
            continue;
        af_warn("coordinator %s silent for %lld ms: cancelling its jobs",
                p->client[0] ? p->client : p->key, (long long)(now - p->last_seen));
        for (af_job_t *j = zlistx_first(self->jobs); j; j = zlistx_next(self->jobs))
            if (s_same_peer(af_job_peer(j), p->rid)) {
                af_job_forget_peer(j); /* send it nothing more */
                af_job_cancel(j, "cancelled", "coordinator connection lost");
            }
        zhashx_delete(self->peers, key);
    }
    zlist_destroy(&dead);
    s_reap_strays(self);
    return 0;
}

/* --- setup --- */

/* Removes job dirs a previous run left behind (a crash, a SIGKILL). */
static int s_clean_stale_jobs(af_agent_t *self, af_err_t *err)
{
    DIR *d = opendir(self->jobs_dir);
    if (!d)
        return af_err_set(err, AF_ERR_IO, "%s: %s", self->jobs_dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char path[AF_AGENT_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", self->jobs_dir, de->d_name);
        char pgid[32] = "";
        char pidfile[sizeof path + 8];
        snprintf(pidfile, sizeof pidfile, "%s/pgid", path);
        FILE *f = fopen(pidfile, "re");
        if (f) {
            if (!fgets(pgid, sizeof pgid, f))
                pgid[0] = '\0';
            pgid[strcspn(pgid, "\n")] = '\0';
            fclose(f);
        }
        af_warn("removing stale job dir %s%s%s", path, pgid[0] ? " (build process group " : "",
                pgid[0] ? pgid : "");
        af_err_t rerr;
        af_err_clear(&rerr);
        if (af_remove_tree(path, &rerr) < 0)
            af_warn("%s", af_err_msg(&rerr, AF_ERR_IO));
    }
    closedir(d);
    return 0;
}

static int s_pick_executors(af_agent_t *self, af_err_t *err)
{
    const af_executor_t *const *all = af_executor_all();
    const char *want = self->cfg.executor;
    /* native recipes are always served; --executor picks the Dockerfile
     * engine: a named one must work, auto takes every one that does */
    for (size_t i = 0; all[i] && self->n_executors < S_MAX_EXECUTORS; i++) {
        const af_executor_t *e = all[i];
        bool named = !strcmp(want, e->name);
        if (strcmp(e->name, "native") && !named && strcmp(want, "auto"))
            continue;
        if (e->probe && !e->probe()) {
            if (named)
                return af_err_set(err, AF_ERR_UNSUPPORTED,
                                  "executor %s is not usable on this host (see docs/executors.md)",
                                  e->name);
            continue;
        }
        self->executors[self->n_executors++] = e;
    }
    if (strcmp(want, "auto") && strcmp(want, "native")) {
        bool found = false;
        for (size_t i = 0; i < self->n_executors; i++)
            found = found || !strcmp(self->executors[i]->name, want);
        if (!found)
            return af_err_set(err, AF_ERR_UNSUPPORTED,
                              "executor %s is not available in this build of archfarm-agent", want);
    }
    return 0;
}

/* The work dir, the job dirs (stale ones of a previous run removed), the
 * context store and the confinement of native steps. */
static int s_new_dirs(af_agent_t *self, af_err_t *err)
{
    snprintf(self->workdir, sizeof self->workdir, "%s", self->cfg.workdir);
    snprintf(self->jobs_dir, sizeof self->jobs_dir, "%s/jobs", self->workdir);
    snprintf(self->contexts_dir, sizeof self->contexts_dir, "%s/contexts", self->workdir);
    if (af_mkdirs(self->workdir, 0755, 0700, err) < 0 ||
        af_mkdirs(self->jobs_dir, 0755, 0700, err) < 0 || s_clean_stale_jobs(self, err) < 0)
        return -1;
    if (chmod(self->jobs_dir, 0700) < 0) /* job dirs hold contexts and scratch blobs */
        af_warn("chmod %s: %s", self->jobs_dir, strerror(errno));
    if (!(self->store = af_context_store_new(self->contexts_dir, self->cfg.context_cache, err)))
        return -1;
    af_confine_spec_t cspec = {
        .workdir = self->workdir,
        .config_path = self->cfg.config_path,
        .cert = self->cfg.cert,
        .authorized_keys = self->cfg.authorized_keys,
        .nproc = self->cfg.step_nproc,
        .fsize_bytes = (uint64_t)self->cfg.step_fsize_mb << 20,
    };
    if (af_confine_mode_parse(self->cfg.confine[0] ? self->cfg.confine : "auto", &cspec.mode) < 0 ||
        !(self->confine = af_confine_new(&cspec, err))) {
        if (!err || !err->code)
            af_err_set(err, AF_ERR_INVAL, "confine: bad mode \"%s\"", self->cfg.confine);
        return -1;
    }
    return 0;
}

/* The ROUTER socket: bounds, heartbeats, CURVE unless insecure, bound. */
static int s_new_router(af_agent_t *self, af_err_t *err)
{
    zsock_set_maxmsgsize(self->router, AF_MAX_MSG_SIZE);
    zsock_set_sndhwm(self->router, S_SNDHWM);
    zsock_set_rcvhwm(self->router, S_SNDHWM);
    zsock_set_router_mandatory(self->router, 0);
    zsock_set_sndtimeo(self->router, 0);
    zsock_set_linger(self->router, S_LINGER_MS);
    /* transport heartbeats (ZMTP PING) complement the HEARTBEAT messages:
     * a half-open connection is dropped after liveness x interval */
    zsock_set_heartbeat_ivl(self->router, (int)self->cfg.heartbeat_ms);
    zsock_set_heartbeat_timeout(self->router, (int)(self->cfg.liveness * self->cfg.heartbeat_ms));
    if (!self->cfg.insecure &&
        !(self->curve = af_curve_new(self->router, self->loop, self->cfg.cert,
                                     self->cfg.authorized_keys, self->workdir, err)))
        return -1;
    if (zsock_bind(self->router, "%s", self->cfg.listen) < 0)
        return af_err_set(err, AF_ERR_NET, "cannot listen on %s: %s", self->cfg.listen,
                          zmq_strerror(zmq_errno()));
    char *bound = zsock_last_endpoint(self->router); /* a wildcard port resolved */
    snprintf(self->endpoint, sizeof self->endpoint, "%s", bound ? bound : self->cfg.listen);
    zstr_free(&bound);
    return 0;
}

/* The loop's readers and heartbeat timer, and the hooks jobs call back. */
static int s_new_loop(af_agent_t *self, af_err_t *err)
{
    self->wake_rx = zsys_create_pipe(&self->wake_tx);
    if (!self->wake_rx)
        return af_err_set(err, AF_ERR_NOMEM, "cannot create the internal pipe");
    if (zloop_reader(self->loop, self->router, s_on_router, self) < 0 ||
        zloop_reader(self->loop, self->wake_rx, s_on_wake, self) < 0)
        return af_err_set(err, AF_ERR_NOMEM, "cannot watch sockets");
    zloop_reader_set_tolerant(self->loop, self->router);
    self->hb_timer = zloop_timer(self->loop, self->cfg.heartbeat_ms, 0, s_on_heartbeat, self);
    self->hooks = (af_job_hooks_t){
        .loop = self->loop,
        .router = self->router,
        .store = self->store,
        .jobs_dir = self->jobs_dir,
        .node = self->cfg.name,
        .build_platform = self->build_platform,
        .default_timeout_s = self->cfg.job_timeout_s,
        .kill_grace_ms = (int)self->cfg.kill_grace_ms,
        .confine = self->confine,
        .on_ready = s_hook_ready,
        .on_finished = s_hook_finished,
        .on_closed = s_hook_closed,
        .arg = self,
    };
    return 0;
}

/* The start-up lines: the insecure warning, then what the agent serves. */
static void s_new_announce(const af_agent_t *self)
{
    char plats[AF_MAX_LIST * AF_PLATFORM_STR_MAX];
    char execs[S_MAX_EXECUTORS * (AF_MAX_NAME + 1)] = "";
    for (size_t i = 0; i < self->n_executors; i++) {
        size_t off = strlen(execs);
        snprintf(execs + off, sizeof execs - off, "%s%s", i ? "," : "", self->executors[i]->name);
    }
    if (self->cfg.insecure)
        af_warn("INSECURE: --insecure is set: no encryption or authentication; anyone who can "
                "reach %s can run builds on this host and see registry credentials",
                self->endpoint);
    af_info("archfarm-agent %s listening on %s platforms=%s executors=%s", self->cfg.name,
            self->endpoint, af_agent_config_platforms(&self->cfg, plats, sizeof plats), execs);
}

af_agent_t *af_agent_new(const af_agent_config_t *config, af_err_t *err)
{
    assert(config);
    af_agent_t *self = calloc(1, sizeof *self);
    if (!self) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->cfg = *config;
    self->hb_timer = -1;
    if (self->cfg.n_platforms == 0 || self->cfg.max_jobs == 0 || self->cfg.heartbeat_ms == 0) {
        af_err_set(err, AF_ERR_INVAL, "configuration not finished");
        goto fail;
    }
    /* orphans of build steps become our children, so killing a step's
     * process group can also reap every member (see process.c) */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        af_warn("cannot become a child subreaper: %s", strerror(errno));
    if (af_platform_host(&self->build_platform) < 0)
        self->build_platform = self->cfg.platforms[0];
    if (s_pick_executors(self, err) < 0 || s_new_dirs(self, err) < 0)
        goto fail;
    self->peers = zhashx_new();
    self->jobs = zlistx_new();
    self->dead = zlistx_new();
    self->closed = zlistx_new();
    self->loop = zloop_new();
    self->router = zsock_new(ZMQ_ROUTER);
    if (!self->peers || !self->jobs || !self->dead || !self->closed || !self->loop ||
        !self->router) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    zhashx_set_destructor(self->peers, s_peer_destroy);
    if (s_new_router(self, err) < 0 || s_new_loop(self, err) < 0)
        goto fail;
    s_new_announce(self);
    return self;
fail:
    af_agent_destroy(&self);
    return NULL;
}

void af_agent_destroy(af_agent_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_agent_t *self = *self_p;
    if (self->jobs) {
        af_job_t *job;
        while ((job = zlistx_detach(self->jobs, NULL)) != NULL)
            af_job_destroy(&job);
    }
    zlistx_destroy(&self->dead);
    zlistx_destroy(&self->closed);
    zlistx_destroy(&self->jobs);
    if (self->loop && self->hb_timer >= 0)
        zloop_timer_end(self->loop, self->hb_timer);
    af_curve_destroy(&self->curve);
    zloop_destroy(&self->loop);
    zsock_destroy(&self->router);
    zsock_destroy(&self->wake_rx);
    zsock_destroy(&self->wake_tx);
    zhashx_destroy(&self->peers);
    af_context_store_destroy(&self->store);
    af_confine_destroy(&self->confine);
    free(self);
    *self_p = NULL;
}

static int s_on_drain_deadline(zloop_t *loop, int timer_id, void *arg)
{
    af_warn("jobs did not stop in time; killing them");
    return -1;
}

/* Cancels every job and runs the loop until all have reported. */
/* Cancels the jobs that have not started (WAITING_ONLY) or all of them.
 * Only cancels: finished jobs go through the reaper, so this is safe in a
 * timer handler. */
static void s_cancel_jobs(af_agent_t *self, bool waiting_only)
{
    for (af_job_t *j = zlistx_first(self->jobs); j; j = zlistx_next(self->jobs)) {
        af_job_state_t st = af_job_state(j);
        if (!waiting_only || st == AF_JOB_RECEIVING || st == AF_JOB_READY)
            af_job_cancel(j, "cancelled", "agent %s is shutting down", self->cfg.name);
    }
}

static int s_on_drain_timeout(zloop_t *loop, int timer_id, void *arg)
{
    af_agent_t *self = (af_agent_t *)arg;
    af_info("drain period over: cancelling running jobs");
    s_cancel_jobs(self, false);
    return 0;
}

/* No new jobs. Waiting jobs are cancelled now; running ones may finish
 * within drain_s, then they are cancelled too. Runs the loop until every
 * job has reported, or a deadline, or another signal. */
static void s_drain(af_agent_t *self)
{
    self->draining = true;
    if (zlistx_size(self->jobs) == 0)
        return;
    af_info("shutting down: %zu job(s) to stop%s", zlistx_size(self->jobs),
            self->cfg.drain_s ? ", running ones may finish first" : "");
    s_cancel_jobs(self, self->cfg.drain_s > 0);
    int drain_timer = -1;
    if (self->cfg.drain_s > 0)
        drain_timer =
            zloop_timer(self->loop, (size_t)self->cfg.drain_s * 1000, 1, s_on_drain_timeout, self);
    /* the first signal ended zloop_start(); let the loop run again so the
     * jobs can stop cleanly. A second signal ends it again. */
    zsys_interrupted = 0;
    s_wake(self);
    size_t limit = (size_t)self->cfg.drain_s * 1000 + self->cfg.kill_grace_ms + S_DRAIN_EXTRA_MS;
    int deadline = zloop_timer(self->loop, limit, 1, s_on_drain_deadline, self);
    zloop_start(self->loop);
    if (deadline >= 0)
        zloop_timer_end(self->loop, deadline);
    if (drain_timer >= 0)
        zloop_timer_end(self->loop, drain_timer);
}

int af_agent_run(af_agent_t *self)
{
    assert(self);
    zloop_start(self->loop);
    s_drain(self);
    af_info("archfarm-agent %s stopped", self->cfg.name);
    return 0;
}

const char *af_agent_endpoint(const af_agent_t *self)
{
    assert(self);
    return self->endpoint;
}

static int s_on_actor_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    char *cmd = zstr_recv(pipe);
    bool term = !cmd || streq(cmd, "$TERM");
    zstr_free(&cmd);
    return term ? -1 : 0;
}

void af_agent_actor(zsock_t *pipe, void *args)
{
    af_err_t err;
    af_err_clear(&err);
    af_agent_t *self = af_agent_new((const af_agent_config_t *)args, &err);
    if (!self) {
        af_error("%s", af_err_msg(&err, AF_ERR_STATE));
        zsock_signal(pipe, 1);
        zstr_send(pipe, "");
        return;
    }
    zsock_signal(pipe, 0);
    zstr_send(pipe, self->endpoint);
    zloop_reader(self->loop, pipe, s_on_actor_pipe, self);
    zloop_start(self->loop);
    zloop_reader_end(self->loop, pipe);
    s_drain(self);
    af_agent_destroy(&self);
}
