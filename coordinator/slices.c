/* slices.c -- runs a build's slices on the agents: the coordinator's one
 * event loop (czmq zloop).
 *
 * Readers on each used node's DEALER handle ACCEPT, CREDIT (the context is
 * sent in AF_CHUNK_SIZE chunks read with pread from the packed context
 * file, never more than the agent granted, so memory stays flat), STATUS,
 * LOG, RESULT, ERROR and HEARTBEAT. A ticker sends our HEARTBEATs, checks
 * each node's liveness (Paranoid Pirate: silent for --liveness intervals
 * of the slower of its and our --heartbeat-interval = lost), the signal
 * flag and the cancel deadline. A lost node fails its slices with failure
 * "infra"; a slice whose attempt failed for an infrastructure reason (or
 * its build, with --retry-on-build-failure) gets another attempt on
 * another node, up to 1 + --retries (attempts.c decides). With fail-fast,
 * the first slice that failed for good cancels the others.
 * SIGINT/SIGTERM cancel everything and wait at most AF_CANCEL_WAIT_MS for
 * the agents' RESULTs. */
#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build.h"
#include "digest.h"
#include "log.h"
#include "proto.h"
#include "signals.h"

#define AF_TICK_MS 100
#define AF_TIMEOUT_GRACE_S 30 /* after --timeout, before we give up on the agent */
#define AF_DRAIN_MAX 64       /* messages handled per reader wake-up */
#define AF_PROGRESS_BIG_CONTEXT (8ULL * 1024 * 1024) /* report transfer progress above this */

typedef struct s_loop s_loop_t;

typedef struct {
    s_loop_t *st;
    size_t node;
} s_reader_t;

struct s_loop {
    af_slices_run_t *run;
    zloop_t *loop;
    bool *used; /* per farm node: has a reader, gets our heartbeats */
    bool *lost; /* per farm node: declared dead in this build */
    s_reader_t *readers;
    long long next_hb_ms;
    bool cancelling;
    long long cancel_deadline_ms;
    long long hb_ms;   /* our heartbeat interval */
    unsigned liveness; /* silent intervals before a node is lost */
};

/* We send at our interval, or faster when a node we use expects our
 * heartbeats more often (its WELCOME heartbeat_ms): it must never count
 * us dead while we are alive. */
static long long s_send_ivl(s_loop_t *st)
{
    long long ivl = st->hb_ms;
    for (size_t i = 0; i < af_farm_size(st->run->farm); i++) {
        af_farm_node_t *fn = af_farm_node(st->run->farm, i);
        if (st->used[i] && !st->lost[i] && fn->heartbeat_ms && fn->heartbeat_ms < ivl)
            ivl = fn->heartbeat_ms;
    }
    return ivl;
}

static const char *s_node_name(s_loop_t *st, size_t node)
{
    return af_farm_node(st->run->farm, node)->conf->name;
}

static bool s_all_done(s_loop_t *st)
{
    for (size_t i = 0; i < st->run->n_slices; i++) {
        af_attempt_t *a = af_slice_current(&st->run->slices[i]);
        if (a && !a->done)
            return false;
    }
    return true;
}

static void s_report_result(s_loop_t *st, af_slice_t *s, af_attempt_t *a)
{
    af_progress_result_t r = af_attempt_report(s, a, s_node_name(st, a->node));
    af_progress_result(st->run->progress, &r);
}

static void s_cancel_all(s_loop_t *st, const char *why);
static void s_send_cancel(s_loop_t *st, af_slice_t *s, af_attempt_t *a);
static bool s_failover(s_loop_t *st, af_slice_t *s);
static int s_send_build(s_loop_t *st, af_slice_t *s, af_attempt_t *a);

/* Attempt A of S just ended: report it, then fail over (infrastructure
 * failures) or, with fail-fast, cancel the other slices. */
static void s_attempt_ended(s_loop_t *st, af_slice_t *s, af_attempt_t *a)
{
    s_report_result(st, s, a);
    if (a->ok || !strcmp(a->failure, "cancelled"))
        return;
    if (af_slice_should_retry(s, &st->run->retry) && s_failover(st, s))
        return;
    if (st->run->fail_fast)
        s_cancel_all(st, "another slice failed");
}

/* Ends attempt A with a failure decided here (not by the agent). */
static void s_fail(s_loop_t *st, af_slice_t *s, af_attempt_t *a, const char *failure,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void s_fail(s_loop_t *st, af_slice_t *s, af_attempt_t *a, const char *failure,
                   const char *fmt, ...)
{
    if (a->done)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->message, sizeof a->message, fmt, ap);
    va_end(ap);
    snprintf(a->failure, sizeof a->failure, "%s", failure);
    /* the node may still hold the job (a local error, a silent node that
     * comes back): make sure it drops it; unknown jobs are ignored there */
    s_send_cancel(st, s, a);
    a->ok = false;
    a->done = true;
    a->exit_code = -1;
    a->ended_ms = zclock_mono();
    af_debug_job(s->job, s_node_name(st, a->node), "%s", a->message);
    s_attempt_ended(st, s, a);
}

static void s_send_cancel(s_loop_t *st, af_slice_t *s, af_attempt_t *a)
{
    if (a->done || a->cancel_sent)
        return;
    af_msg_t *m = af_msg_new(AF_CMD_CANCEL);
    if (!m)
        return;
    snprintf(m->job, sizeof m->job, "%s", s->job);
    m->attempt = a->attempt; /* only this attempt: a retry may run on the same node */
    af_err_t err = {0};
    if (af_farm_send(st->run->farm, a->node, m, &err))
        af_warn("%s", af_err_msg(&err, AF_ERR_NET));
    af_msg_destroy(&m);
    a->cancel_sent = true;
}

static void s_cancel_all(s_loop_t *st, const char *why)
{
    bool any = false;
    for (size_t i = 0; i < st->run->n_slices; i++) {
        af_slice_t *s = &st->run->slices[i];
        af_attempt_t *a = af_slice_current(s);
        if (a && !a->done && !a->cancel_sent) {
            s_send_cancel(st, s, a);
            any = true;
        }
    }
    if (any && !st->cancelling) {
        af_progress_info(st->run->progress, "cancelling the remaining slices (%s)", why);
        st->cancelling = true;
        st->cancel_deadline_ms = zclock_mono() + AF_CANCEL_WAIT_MS;
    }
}

/* Finds the slice and attempt a message from NODE is about. */
static af_slice_t *s_find(s_loop_t *st, size_t node, const af_msg_t *m, af_attempt_t **a_p)
{
    af_slice_t *s = NULL;
    *a_p = af_slices_find(st->run->slices, st->run->n_slices, node, m->job, m->attempt, &s);
    return s;
}

/* Sends what credit allows of what this attempt's node gets: the packed
 * context, or its delta when the node holds the delta's base. */
static int s_send_chunks(s_loop_t *st, af_slice_t *s, af_attempt_t *a)
{
    const af_slice_context_t *c = s->ctx;
    const uint64_t total = a->delta ? c->delta_size : c->size;
    const int fd = a->delta ? c->delta_fd : c->fd;
    while (!a->done && a->credit > 0 && a->next_offset < total) {
        uint64_t left = total - a->next_offset;
        size_t len = left < AF_CHUNK_SIZE ? (size_t)left : AF_CHUNK_SIZE;
        zframe_t *f = zframe_new(NULL, len);
        if (!f) {
            s_fail(st, s, a, "infra", "out of memory sending the context");
            return AF_ERR_NOMEM;
        }
        size_t got = 0;
        while (got < len) {
            ssize_t r = pread(fd, zframe_data(f) + got, len - got, (off_t)(a->next_offset + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                zframe_destroy(&f);
                s_fail(st, s, a, "infra", "cannot read the packed context: %s",
                       r < 0 ? strerror(errno) : "short file");
                return AF_ERR_IO;
            }
            got += (size_t)r;
        }
        af_msg_t *m = af_msg_new(AF_CMD_CHUNK);
        if (!m) {
            zframe_destroy(&f);
            s_fail(st, s, a, "infra", "out of memory sending the context");
            return AF_ERR_NOMEM;
        }
        snprintf(m->job, sizeof m->job, "%s", s->job);
        m->attempt = a->attempt;
        m->offset = a->next_offset;
        af_msg_set_data(m, &f);
        af_err_t err = {0};
        int rc = af_farm_send(st->run->farm, a->node, m, &err);
        af_msg_destroy(&m);
        if (rc) {
            s_fail(st, s, a, "infra", "%s", af_err_msg(&err, rc));
            return rc;
        }
        uint64_t before = a->next_offset;
        a->next_offset += len;
        a->context_bytes_sent += len;
        a->credit--;
        af_progress_bytes(st->run->progress, s->platform_str, s_node_name(st, a->node),
                          a->next_offset, total);
        /* big contexts: a line at every quarter */
        uint64_t q = total / 4;
        if (total >= AF_PROGRESS_BIG_CONTEXT && a->next_offset < total &&
            before / q != a->next_offset / q) {
            char b1[32], b2[32], detail[96];
            snprintf(detail, sizeof detail, "%s of %s", af_cli_bytes(a->next_offset, b1, sizeof b1),
                     af_cli_bytes(total, b2, sizeof b2));
            af_progress_status(st->run->progress, s->platform_str, s_node_name(st, a->node),
                               a->delta ? "sending context delta" : "sending context", detail);
        }
        if (a->next_offset == total) {
            char b[32];
            af_progress_status(st->run->progress, s->platform_str, s_node_name(st, a->node),
                               a->delta ? "context delta sent" : "context sent",
                               af_cli_bytes(total, b, sizeof b));
        }
    }
    return 0;
}

/* CREDIT: more of the context may be sent. */
static void s_on_credit(s_loop_t *st, af_slice_t *s, af_attempt_t *a, const af_farm_node_t *fn,
                        const af_msg_t *m)
{
    if (!a->transfer_started) {
        a->transfer_started = true;
        a->next_offset = m->offset;
    }
    if (m->credit > 4 * AF_CREDIT_WINDOW || a->credit + m->credit > 4 * AF_CREDIT_WINDOW) {
        s_fail(st, s, a, "infra", "node %s granted more credit than the window allows",
               fn->conf->name);
        return;
    }
    a->credit += m->credit;
    (void)s_send_chunks(st, s, a);
}

/* RESULT: the attempt's outcome, unless it was settled here already. */
static void s_on_result(s_loop_t *st, af_slice_t *s, af_attempt_t *a, const af_farm_node_t *fn,
                        const af_msg_t *m)
{
    if (!af_attempt_takes_result(s, a)) {
        /* a late RESULT of an abandoned attempt (lost, failed over,
         * cancelled): its outcome was settled here already */
        af_debug_job(s->job, fn->conf->name, "ignoring stale RESULT of attempt %u", m->attempt);
        return;
    }
    a->done = true;
    a->ok = m->ok;
    a->ended_ms = zclock_mono();
    a->exit_code = m->exit_code;
    a->duration_ms = m->duration_ms;
    snprintf(a->failure, sizeof a->failure, "%s", m->ok ? "" : m->failure);
    if (!m->ok && !a->failure[0])
        snprintf(a->failure, sizeof a->failure, "infra");
    snprintf(a->message, sizeof a->message, "%s", m->message);
    if (!strcmp(a->failure, "cancelled") && !a->cancel_sent) {
        /* we did not ask for it: the node gave up the job (draining,
         * shutting down) - an infrastructure failure worth a retry */
        snprintf(a->failure, sizeof a->failure, "infra");
        snprintf(a->message, sizeof a->message, "node %s cancelled the job: %.900s", fn->conf->name,
                 m->message);
    }
    snprintf(a->digest, sizeof a->digest, "%s", m->digest);
    snprintf(a->media_type, sizeof a->media_type, "%s", m->media_type);
    a->size = m->size;
    a->pushed_bytes = m->ok ? m->pushed_bytes : -1;
    snprintf(a->state, sizeof a->state, "%s", m->ok ? "done" : "failed");
    if (m->ok && (!af_digest_valid(a->digest) || !a->size)) {
        a->done = false;
        s_fail(st, s, a, "infra", "node %s reported success without a valid digest",
               fn->conf->name);
        return;
    }
    s_attempt_ended(st, s, a);
}

/* A message about one of our jobs (ACCEPT, CREDIT, STATUS, LOG, RESULT). */
static void s_on_job_message(s_loop_t *st, size_t node, af_msg_t *m)
{
    af_farm_node_t *fn = af_farm_node(st->run->farm, node);
    af_progress_t *pg = st->run->progress;
    af_attempt_t *a = NULL;
    af_slice_t *s = s_find(st, node, m, &a);
    if (!s) {
        af_debug("node %s: %s for unknown job %s/%u", fn->conf->name, af_cmd_name(m->cmd), m->job,
                 m->attempt);
        return;
    }
    if (a->done && m->cmd != AF_CMD_RESULT)
        return;
    switch (m->cmd) {
    case AF_CMD_ACCEPT:
        if (m->have_base && (m->have_context || !s->ctx->base[0])) {
            s_fail(st, s, a, "infra", "node %s: ACCEPT claims a delta base that was not offered",
                   fn->conf->name);
            break;
        }
        a->accepted = true;
        a->delta = m->have_base;
        snprintf(a->state, sizeof a->state, "%s", m->job_queued ? "queued" : "accepted");
        af_progress_status(pg, s->platform_str, fn->conf->name,
                           m->job_queued ? "queued" : "accepted",
                           m->have_context ? "context already on the node"
                           : m->have_base  ? "the node holds the previous context: sending a delta"
                                           : "");
        break;
    case AF_CMD_CREDIT:
        s_on_credit(st, s, a, fn, m);
        break;
    case AF_CMD_STATUS:
        snprintf(a->state, sizeof a->state, "%s", m->state);
        af_progress_status(pg, s->platform_str, fn->conf->name, m->state, m->detail);
        break;
    case AF_CMD_LOG:
        af_progress_log(pg, s->platform_str, fn->conf->name, m->stream, m->line);
        break;
    case AF_CMD_RESULT:
        s_on_result(st, s, a, fn, m);
        break;
    default:
        break;
    }
}

static void s_on_message(s_loop_t *st, size_t node, af_msg_t *m)
{
    af_farm_node_t *fn = af_farm_node(st->run->farm, node);
    af_attempt_t *a = NULL;
    af_slice_t *s = NULL;

    switch (m->cmd) {
    case AF_CMD_HEARTBEAT:
    case AF_CMD_WELCOME:
        fn->running = m->running;
        fn->queued = m->queued;
        return;
    case AF_CMD_ERROR:
        s = m->job[0] ? s_find(st, node, m, &a) : NULL;
        if (s && a && !a->done)
            s_fail(st, s, a, "infra", "node %s: protocol error: %s", fn->conf->name, m->message);
        else
            af_warn("node %s answered ERROR %d: %s", fn->conf->name, m->code, m->message);
        return;
    case AF_CMD_ACCEPT:
    case AF_CMD_CREDIT:
    case AF_CMD_STATUS:
    case AF_CMD_LOG:
    case AF_CMD_RESULT:
        s_on_job_message(st, node, m);
        return;
    default:
        af_debug("node %s: ignoring %s", fn->conf->name, af_cmd_name(m->cmd));
        return;
    }
}

static int s_on_reader(zloop_t *loop, zsock_t *sock, void *arg)
{
    s_reader_t *r = arg;
    s_loop_t *st = r->st;
    af_farm_node_t *fn = af_farm_node(st->run->farm, r->node);
    for (int i = 0; i < AF_DRAIN_MAX && (zsock_events(sock) & ZMQ_POLLIN); i++) {
        af_err_t err = {0};
        af_msg_t *m = af_msg_recv(sock, false, NULL, &err);
        fn->last_seen_ms = zclock_mono(); /* any traffic counts as a heartbeat */
        if (!m) {
            if (err.code == AF_ERR_CANCELLED)
                break;
            af_warn("node %s sent a malformed message: %s", fn->conf->name,
                    af_err_msg(&err, AF_ERR_PROTO));
            continue;
        }
        if (af_log_enabled(AF_LOG_DEBUG)) {
            char buf[512];
            af_debug("<- %s: %s", fn->conf->name, af_msg_summary(m, buf, sizeof buf));
        }
        s_on_message(st, r->node, m);
        af_msg_destroy(&m);
    }
    return s_all_done(st) ? -1 : 0;
}

static void s_heartbeat(s_loop_t *st, long long now)
{
    af_farm_t *farm = st->run->farm;
    for (size_t i = 0; i < af_farm_size(farm); i++) {
        if (!st->used[i] || st->lost[i])
            continue;
        af_farm_node_t *fn = af_farm_node(farm, i);
        long long silent = now - fn->last_seen_ms;
        /* the node heartbeats at its own interval: count the slower one */
        long long ivl = st->hb_ms;
        if (fn->heartbeat_ms > ivl)
            ivl = fn->heartbeat_ms;
        long long limit = (long long)st->liveness * ivl;
        if (silent > limit) {
            st->lost[i] = true; /* the node is gone for this build */
            for (size_t k = 0; k < st->run->n_slices; k++) {
                af_slice_t *s = &st->run->slices[k];
                af_attempt_t *a = af_slice_current(s);
                if (a && a->node == i && !a->done)
                    s_fail(st, s, a, "infra", "node %s lost (silent for %lld ms, limit %lld ms)",
                           fn->conf->name, silent, limit);
            }
            continue;
        }
        af_msg_t *m = af_msg_new(AF_CMD_HEARTBEAT);
        if (!m)
            continue;
        af_err_t err = {0};
        if (af_farm_send(farm, i, m, &err))
            af_debug("%s", af_err_msg(&err, AF_ERR_NET));
        af_msg_destroy(&m);
    }
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    s_loop_t *st = arg;
    long long now = zclock_mono();
    af_progress_tick(st->run->progress); /* tty: bounded-rate redraw, SIGWINCH */
    if (af_signal_last() && !st->run->signal) {
        st->run->signal = af_signal_last();
        af_progress_info(st->run->progress, "interrupted by %s",
                         st->run->signal == SIGTERM ? "SIGTERM" : "SIGINT");
        s_cancel_all(st, "interrupted");
    }
    if (now >= st->next_hb_ms) {
        s_heartbeat(st, now);
        st->next_hb_ms = now + s_send_ivl(st);
    }
    /* --timeout is enforced by the agents; this only guards against an
     * agent that keeps heartbeating but never answers */
    uint32_t tmo = st->run->spec->timeout_s;
    for (size_t k = 0; tmo && k < st->run->n_slices; k++) {
        af_slice_t *s = &st->run->slices[k];
        af_attempt_t *a = af_slice_current(s);
        if (a && !a->done && !a->cancel_sent &&
            now - a->started_ms > ((long long)tmo + AF_TIMEOUT_GRACE_S) * 1000) {
            s_fail(st, s, a, "timeout", "node %s did not finish within --timeout %u s",
                   s_node_name(st, a->node), tmo);
        }
    }
    if (st->cancelling && now >= st->cancel_deadline_ms) {
        for (size_t k = 0; k < st->run->n_slices; k++) {
            af_slice_t *s = &st->run->slices[k];
            af_attempt_t *a = af_slice_current(s);
            if (a && !a->done)
                s_fail(st, s, a, "cancelled", "cancelled; node %s did not confirm within %d s",
                       s_node_name(st, a->node), AF_CANCEL_WAIT_MS / 1000);
        }
    }
    return s_all_done(st) ? -1 : 0;
}

static int s_send_build(s_loop_t *st, af_slice_t *s, af_attempt_t *a)
{
    const af_build_spec_t *spec = st->run->spec;
    af_farm_node_t *fn = af_farm_node(st->run->farm, a->node);
    af_err_t err = {0};
    int rc = AF_ERR_NOMEM;

    /* re-introduce ourselves: packing may have outlasted the agent's
     * liveness window since the probe */
    af_msg_t *hello = af_msg_new(AF_CMD_HELLO);
    af_msg_t *m = af_msg_new(AF_CMD_BUILD);
    if (!hello || !m)
        goto out;
    snprintf(hello->version, sizeof hello->version, "%s", AF_VERSION);
    snprintf(hello->client, sizeof hello->client, "archfarm:%d", (int)getpid());
    rc = af_farm_send(st->run->farm, a->node, hello, &err);
    if (rc)
        goto out;

    snprintf(m->job, sizeof m->job, "%s", s->job);
    m->attempt = a->attempt;
    snprintf(m->platform, sizeof m->platform, "%s", s->platform_str);
    snprintf(m->recipe_kind, sizeof m->recipe_kind, "%s", spec->recipe_kind);
    snprintf(m->recipe_path, sizeof m->recipe_path, "%s", spec->recipe_path);
    snprintf(m->target, sizeof m->target, "%s", spec->target ? spec->target : "");
    for (size_t i = 0; i < spec->n_build_args; i++) {
        rc = af_msg_add_build_arg(m, spec->build_args[i].key, spec->build_args[i].value);
        if (rc) {
            af_err_set(&err, rc, "too many or too long build args");
            goto out;
        }
    }
    snprintf(m->context_digest, sizeof m->context_digest, "%s", s->ctx->digest);
    m->context_size = s->ctx->size;
    if (s->ctx->base[0]) {
        snprintf(m->context_base, sizeof m->context_base, "%s", s->ctx->base);
        m->context_delta_size = s->ctx->delta_size;
    }
    snprintf(m->repository, sizeof m->repository, "%s", spec->repository);
    m->registry_insecure = spec->registry_insecure;
    for (size_t i = 0; i < spec->n_annotations; i++) {
        rc = af_msg_add_annotation(m, spec->annotations[i].key, spec->annotations[i].value);
        if (rc) {
            af_err_set(&err, rc, "too many or too long annotations");
            goto out;
        }
    }
    if (spec->manifest_format)
        snprintf(m->manifest_format, sizeof m->manifest_format, "%s", spec->manifest_format);
    if (spec->compression)
        snprintf(m->compression, sizeof m->compression, "%s", spec->compression);
    m->compression_level = spec->compression_level;
    /* credentials travel only over CURVE; over a plaintext transport the
     * agent uses its own registry auth (docs/cli.md) */
    if (!fn->conf->insecure && spec->registry_username && spec->registry_password) {
        snprintf(m->registry_username, sizeof m->registry_username, "%s", spec->registry_username);
        rc = af_msg_set_password(m, spec->registry_password);
        if (rc) {
            af_err_set(&err, rc, "registry credentials too long");
            goto out;
        }
    }
    m->source_date_epoch = spec->source_date_epoch;
    m->timeout_s = spec->timeout_s;
    rc = af_farm_send(st->run->farm, a->node, m, &err);
out:
    af_msg_destroy(&hello);
    af_msg_destroy(&m);
    a->started_ms = zclock_mono();
    snprintf(a->state, sizeof a->state, "sent");
    if (rc) {
        s_fail(st, s, a, "infra", "%s", af_err_msg(&err, rc));
        return rc;
    }
    af_debug_job(s->job, fn->conf->name, "BUILD sent (%s, %s)", s->platform_str, spec->recipe_kind);
    return 0;
}

/* Starts reading node I (once) and counts its liveness from now. */
static int s_watch(s_loop_t *st, size_t i)
{
    if (st->used[i])
        return 0;
    af_farm_node_t *fn = af_farm_node(st->run->farm, i);
    if (!fn->sock)
        return AF_ERR_STATE;
    fn->last_seen_ms = zclock_mono();
    st->readers[i].st = st;
    st->readers[i].node = i;
    if (zloop_reader(st->loop, fn->sock, s_on_reader, &st->readers[i]))
        return AF_ERR_NOMEM;
    zloop_reader_set_tolerant(st->loop, fn->sock);
    st->used[i] = true;
    return 0;
}

/* Retries slice S on another ready node of its platform. False when there
 * is none (or we are cancelling). */
static bool s_failover(s_loop_t *st, af_slice_t *s)
{
    af_slices_run_t *run = st->run;
    if (!run->cands || st->cancelling || run->signal || s->n_attempts >= AF_MAX_ATTEMPTS)
        return false;
    /* least loaded by what the nodes told us since the probe */
    for (size_t i = 0; i < af_farm_size(run->farm); i++) {
        af_farm_node_t *fn = af_farm_node(run->farm, i);
        if (st->used[i]) {
            run->cands[i].running = fn->running;
            run->cands[i].queued = fn->queued;
            run->cands[i].assigned = 0; /* counted in running/queued now */
        }
    }
    long found = af_slice_next_node(s, run->cands, af_farm_size(run->farm), st->lost,
                                    run->spec->recipe_kind);
    if (found < 0) {
        af_debug("no other node for %s", s->platform_str);
        return false;
    }
    size_t pick = (size_t)found;
    if (s_watch(st, pick))
        return false;
    run->cands[pick].assigned++;
    af_attempt_t *prev = af_slice_current(s);
    af_attempt_t *a = &s->attempts[s->n_attempts++];
    memset(a, 0, sizeof *a);
    a->node = pick;
    a->attempt = prev->attempt + 1;
    a->exit_code = -1;
    char detail[AF_MAX_STR + 128];
    snprintf(detail, sizeof detail, "attempt %u, after node %s failed: %s", a->attempt,
             s_node_name(st, prev->node), prev->message);
    af_progress_status(run->progress, s->platform_str, s_node_name(st, pick), "retrying", detail);
    (void)s_send_build(st, s, a);
    return true;
}

int af_slices_run(af_slices_run_t *run)
{
    s_loop_t st = {0};
    st.run = run;
    st.hb_ms = run->heartbeat_ms ? run->heartbeat_ms : AF_HEARTBEAT_MS;
    st.liveness = run->liveness ? run->liveness : AF_LIVENESS;
    size_t n_nodes = af_farm_size(run->farm);
    int rc = AF_ERR_NOMEM;
    st.used = calloc(n_nodes ? n_nodes : 1, sizeof *st.used);
    st.lost = calloc(n_nodes ? n_nodes : 1, sizeof *st.lost);
    st.readers = calloc(n_nodes ? n_nodes : 1, sizeof *st.readers);
    st.loop = zloop_new();
    if (!st.used || !st.lost || !st.readers || !st.loop)
        goto out;

    long long now = zclock_mono();
    for (size_t i = 0; i < run->n_slices; i++) {
        af_attempt_t *a = af_slice_current(&run->slices[i]);
        if (a && !a->done && s_watch(&st, a->node)) /* done: from the slice cache */
            goto out;
    }
    if (zloop_timer(st.loop, AF_TICK_MS, 0, s_on_tick, &st) < 0)
        goto out;
    st.next_hb_ms = now + s_send_ivl(&st);

    for (size_t i = 0; i < run->n_slices; i++) {
        af_slice_t *s = &run->slices[i];
        af_attempt_t *a = af_slice_current(s);
        if (a && !a->done) {
            af_progress_status(run->progress, s->platform_str, s_node_name(&st, a->node),
                               "sending build", s->job);
            (void)s_send_build(&st, s, a);
        }
    }

    while (!s_all_done(&st)) {
        int lrc = zloop_start(st.loop);
        if (lrc == -1 && s_all_done(&st))
            break;
        if (af_signal_last()) {
            if (af_signal_count() > 1) {
                /* a second signal: stop waiting for the agents */
                af_progress_info(run->progress, "second signal: not waiting for the nodes");
                break;
            }
            (void)s_on_tick(st.loop, 0, &st);
        }
    }
    rc = 0;
out:
    zloop_destroy(&st.loop);
    free(st.used);
    free(st.lost);
    free(st.readers);
    return rc;
}
