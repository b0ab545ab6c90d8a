/* farm.c -- DEALER connections to the farm's agents and the parallel
 * HELLO/WELCOME probe (see farm.h). Each node gets its own socket so a
 * dead node only ever costs its own messages; the probe polls all sockets
 * together under one deadline. */
#include "farm.h"

#include <czmq.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build.h"
#include "cli.h"
#include "log.h"
#include "signals.h"
#include "strbuf.h"

#define AF_FARM_LINGER_MS 500    /* let a final CANCEL leave, then give up */
#define AF_FARM_SNDTIMEO_MS 2000 /* a send never blocks longer than this */
#define AF_FARM_RECONNECT_MS 100
#define AF_FARM_RECONNECT_MAX_MS 1000

struct af_farm {
    const af_inventory_t *inv;
    af_farm_node_t *nodes;
    size_t n;
    uint32_t zmtp_ivl_ms, zmtp_liveness; /* transport heartbeats, 0 = off */
};

af_farm_t *af_farm_new(const af_inventory_t *inv)
{
    af_farm_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->inv = inv;
    self->n = af_inventory_size(inv);
    self->nodes = calloc(self->n ? self->n : 1, sizeof *self->nodes);
    if (!self->nodes) {
        free(self);
        return NULL;
    }
    for (size_t i = 0; i < self->n; i++)
        self->nodes[i].conf = af_inventory_node(inv, i);
    self->zmtp_ivl_ms = AF_HEARTBEAT_MS;
    self->zmtp_liveness = AF_LIVENESS;
    return self;
}

void af_farm_set_heartbeat(af_farm_t *self, uint32_t ivl_ms, uint32_t liveness)
{
    self->zmtp_ivl_ms = ivl_ms;
    self->zmtp_liveness = liveness ? liveness : AF_LIVENESS;
}

static void s_free_list(char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

void af_farm_destroy(af_farm_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_farm_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        af_farm_node_t *n = &self->nodes[i];
        /* only a node that answered can still take our last messages */
        if (n->sock && n->status != AF_NODE_READY)
            zsock_set_linger(n->sock, 0);
        zsock_destroy(&n->sock);
        s_free_list(&n->platforms, &n->n_platforms);
        s_free_list(&n->executors, &n->n_executors);
    }
    free(self->nodes);
    free(self);
    *self_p = NULL;
}

size_t af_farm_size(const af_farm_t *self)
{
    return self->n;
}

af_farm_node_t *af_farm_node(af_farm_t *self, size_t i)
{
    return i < self->n ? &self->nodes[i] : NULL;
}

long af_farm_find(const af_farm_t *self, const char *name)
{
    for (size_t i = 0; i < self->n; i++)
        if (!strcmp(self->nodes[i].conf->name, name))
            return (long)i;
    return -1;
}

const char *af_node_status_name(af_node_status_t status)
{
    switch (status) {
    case AF_NODE_UNPROBED:
        return "unknown";
    case AF_NODE_READY:
        return "ready";
    case AF_NODE_UNREACHABLE:
        return "unreachable";
    case AF_NODE_UNAUTHORIZED:
        return "unauthorized";
    case AF_NODE_UNSUPPORTED:
        return "unsupported";
    case AF_NODE_ERROR:
        return "error";
    }
    return "unknown";
}

bool af_farm_node_announces(const af_farm_node_t *node, const char *platform)
{
    for (size_t i = 0; i < node->n_platforms; i++)
        if (!strcmp(node->platforms[i], platform))
            return true;
    return false;
}

bool af_farm_node_has_executor(const af_farm_node_t *node, const char *executor)
{
    for (size_t i = 0; i < node->n_executors; i++)
        if (!strcmp(node->executors[i], executor))
            return true;
    return false;
}

static void s_set_status(af_farm_node_t *n, af_node_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_set_status(af_farm_node_t *n, af_node_status_t st, const char *fmt, ...)
{
    n->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->status_msg, sizeof n->status_msg, fmt, ap);
    va_end(ap);
}

/* The client certificate: $ARCHFARM_CLIENT_CERT, else the first of
 * ~/.config/archfarm/client_secret and ~/.config/archfarm/client.key_secret
 * (what `archfarm keygen --name client ~/.config/archfarm` writes) that
 * exists. Writes the path to buf; false when there is none. */
static bool s_client_cert_path(char *buf, size_t len)
{
    const char *env = getenv("ARCHFARM_CLIENT_CERT");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return true;
    }
    const char *home = getenv("HOME");
    if (!home || !*home)
        return false;
    static const char *const names[] = {"client_secret", "client.key_secret"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(buf, len, "%s/.config/archfarm/%s", home, names[i]);
        if (access(buf, R_OK) == 0)
            return true;
    }
    return false;
}

/* Applies the CURVE client side when the node is not insecure, with the
 * client certificate of s_client_cert_path() (a czmq cert file, e.g. from
 * `archfarm keygen`); without one the node is unsupported. */
static int s_apply_curve(af_farm_node_t *n)
{
    if (n->conf->insecure)
        return 0;
    if (!n->conf->server_key || strlen(n->conf->server_key) != 40) {
        s_set_status(n, AF_NODE_UNSUPPORTED,
                     "node %s: archfarm_server_key missing or not a 40-character Z85 key",
                     n->conf->name);
        return -1;
    }
    char path[PATH_MAX];
    if (!s_client_cert_path(path, sizeof path)) {
        s_set_status(n, AF_NODE_UNSUPPORTED,
                     "node %s needs CURVE (archfarm_insecure is false): set "
                     "ARCHFARM_CLIENT_CERT to a client certificate from 'archfarm keygen', or "
                     "put one at ~/.config/archfarm/client_secret",
                     n->conf->name);
        return -1;
    }
    zcert_t *cert = zcert_load(path);
    if (!cert) {
        s_set_status(n, AF_NODE_UNSUPPORTED,
                     "cannot load client certificate %s (need %s and %s_secret)", path, path, path);
        return -1;
    }
    zcert_apply(cert, n->sock);
    zcert_destroy(&cert);
    zsock_set_curve_serverkey(n->sock, n->conf->server_key);
    return 0;
}

/* Every run that talks to plaintext (archfarm_insecure) nodes says so:
 * one warning naming them. SELECT as in the probe (NULL = all). */
static void s_warn_plaintext(const af_farm_t *self, const bool *select)
{
    char names[512];
    af_strbuf_t sb;
    af_strbuf_init(&sb, names, sizeof names);
    size_t count = 0;
    for (size_t i = 0; i < self->n; i++) {
        if ((select && !select[i]) || !self->nodes[i].conf->insecure)
            continue;
        af_strbuf_printf(&sb, "%s%s", count ? ", " : "", self->nodes[i].conf->name);
        count++;
    }
    if (count)
        af_cli_warning("plaintext transport (archfarm_insecure) to %zu node%s (%s): not "
                       "authenticated, not encrypted; registry credentials are not sent to them",
                       count, count == 1 ? "" : "s", names);
}

static zsock_t *s_monitor_start(af_farm_t *self, size_t i);
static void s_monitor_stop(af_farm_node_t *n, zsock_t **mon_p);

static int s_connect(af_farm_t *self, size_t i, zsock_t **mon_p)
{
    af_farm_node_t *n = &self->nodes[i];
    if (n->sock)
        return 0;
    n->sock = zsock_new(ZMQ_DEALER);
    if (!n->sock) {
        s_set_status(n, AF_NODE_ERROR, "cannot create a socket for node %s", n->conf->name);
        return -1;
    }
    zsock_set_linger(n->sock, AF_FARM_LINGER_MS);
    zsock_set_maxmsgsize(n->sock, AF_MAX_MSG_SIZE);
    zsock_set_reconnect_ivl(n->sock, AF_FARM_RECONNECT_MS);
    zsock_set_reconnect_ivl_max(n->sock, AF_FARM_RECONNECT_MAX_MS);
    zsock_set_sndtimeo(n->sock, AF_FARM_SNDTIMEO_MS);
    zsock_set_rcvtimeo(n->sock, AF_FARM_SNDTIMEO_MS);
    if (self->zmtp_ivl_ms) {
        /* ZMTP PING/PONG: drops a half-open connection; the TTL (in units
         * of 100 ms on the wire) asks the agent's side to do the same */
        long long tmo = (long long)self->zmtp_ivl_ms * self->zmtp_liveness;
        if (tmo > 6553500)
            tmo = 6553500;
        zsock_set_heartbeat_ivl(n->sock, (int)self->zmtp_ivl_ms);
        zsock_set_heartbeat_timeout(n->sock, (int)tmo);
        zsock_set_heartbeat_ttl(n->sock, (int)tmo);
    }
    if (s_apply_curve(n)) {
        zsock_destroy(&n->sock);
        return -1;
    }
    if (mon_p)
        *mon_p = s_monitor_start(self, i);
    if (zsock_connect(n->sock, "%s", n->conf->endpoint) != 0) {
        s_set_status(n, AF_NODE_UNREACHABLE, "cannot connect to %s: %s", n->conf->endpoint,
                     zmq_strerror(zmq_errno()));
        if (mon_p)
            s_monitor_stop(n, mon_p);
        zsock_destroy(&n->sock);
        return -1;
    }
    return 0;
}

/* Watches node I's handshakes during the probe, so a refused key or a
 * security mismatch is reported as such instead of as silence. Returns the
 * PAIR socket that receives the events (caller owns), or NULL. */
static zsock_t *s_monitor_start(af_farm_t *self, size_t i)
{
    af_farm_node_t *n = &self->nodes[i];
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://af-farm-%p-%zu", (void *)self, i);
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_CONNECT_RETRIED;
    if (zmq_socket_monitor(zsock_resolve(n->sock), ep, events))
        return NULL;
    zsock_t *mon = zsock_new(ZMQ_PAIR);
    if (mon && zsock_connect(mon, "%s", ep)) {
        zsock_destroy(&mon);
    }
    if (!mon)
        zmq_socket_monitor(zsock_resolve(n->sock), NULL, 0);
    return mon;
}

static void s_monitor_stop(af_farm_node_t *n, zsock_t **mon_p)
{
    if (!*mon_p)
        return;
    zmq_socket_monitor(zsock_resolve(n->sock), NULL, 0);
    zsock_set_linger(*mon_p, 0);
    zsock_destroy(mon_p);
}

/* Reads one monitor event. Returns true when it settles the node's status. */
static bool s_monitor_event(af_farm_node_t *n, zsock_t *mon, bool *refused)
{
    zmsg_t *ev = zmsg_recv(mon);
    if (!ev)
        return false;
    zframe_t *f = zmsg_first(ev);
    bool settled = false;
    if (f && zframe_size(f) == 6) {
        uint16_t event;
        uint32_t value;
        memcpy(&event, zframe_data(f), 2);
        memcpy(&value, zframe_data(f) + 2, 4);
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            s_set_status(n, AF_NODE_UNAUTHORIZED,
                         "node %s refused our CURVE key (status %u): add the coordinator's "
                         "public certificate to its --authorized-keys directory",
                         n->conf->name, value);
            settled = true;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            /* refused all the same, e.g. plaintext against a CURVE agent */
            s_set_status(n, AF_NODE_UNAUTHORIZED,
                         "handshake with %s failed (%s0x%x): do the inventory's "
                         "archfarm_insecure/archfarm_server_key match the agent's "
                         "--insecure/--cert?",
                         n->conf->endpoint,
                         value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                             ? "security mechanism mismatch, "
                             : "protocol error ",
                         value);
            settled = true;
        } else if (event == ZMQ_EVENT_CONNECT_RETRIED) {
            *refused = true;
        }
    }
    zmsg_destroy(&ev);
    return settled;
}

static int s_dup_list(char ***dst, size_t *n_dst, char *const *src, size_t n)
{
    s_free_list(dst, n_dst);
    if (!n)
        return 0;
    *dst = calloc(n, sizeof **dst);
    if (!*dst)
        return AF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        (*dst)[i] = strdup(src[i]);
        if (!(*dst)[i])
            return AF_ERR_NOMEM;
        (*n_dst)++;
    }
    return 0;
}

static void s_take_welcome(af_farm_node_t *n, const af_msg_t *m, long long sent_ms)
{
    snprintf(n->version, sizeof n->version, "%s", m->version);
    snprintf(n->agent_name, sizeof n->agent_name, "%s", m->node);
    if (s_dup_list(&n->platforms, &n->n_platforms, m->platforms, m->n_platforms) ||
        s_dup_list(&n->executors, &n->n_executors, m->executors, m->n_executors)) {
        s_set_status(n, AF_NODE_ERROR, "out of memory");
        return;
    }
    n->running = m->running;
    n->queued = m->queued;
    n->max_jobs = m->max_jobs;
    n->heartbeat_ms = m->heartbeat_ms ? m->heartbeat_ms : AF_HEARTBEAT_MS;
    snprintf(n->confinement, sizeof n->confinement, "%s", m->confinement);
    n->last_seen_ms = zclock_mono();
    n->rtt_ms = n->last_seen_ms - sent_ms;
    s_set_status(n, AF_NODE_READY, "ready");
    if (strcmp(m->version, AF_VERSION))
        af_warn("node %s runs archfarm-agent %s, this is %s", n->conf->name, m->version,
                AF_VERSION);
}

/* One probe in flight: the nodes still to answer and what is polled. */
typedef struct {
    af_farm_t *farm;
    const bool *select;
    int timeout_ms;
    long long start;
    zmq_pollitem_t *items; /* per waiting node: [0] its DEALER, [1] its handshake monitor */
    size_t *which;         /* the waiting nodes' indexes */
    size_t waiting;
    zsock_t **mons; /* per node */
    bool *refused;  /* per node: the monitor saw a refused connection */
    af_msg_t *hello;
} s_probe_t;

static void s_probe_free(s_probe_t *p)
{
    for (size_t i = 0; p->mons && i < p->farm->n; i++)
        s_monitor_stop(&p->farm->nodes[i], &p->mons[i]);
    af_msg_destroy(&p->hello);
    free(p->items);
    free(p->which);
    free(p->mons);
    free(p->refused);
}

static int s_probe_init(s_probe_t *p)
{
    size_t cap = p->farm->n ? p->farm->n : 1;
    p->items = calloc(2 * cap, sizeof *p->items);
    p->which = calloc(cap, sizeof *p->which);
    p->mons = calloc(cap, sizeof *p->mons);
    p->refused = calloc(cap, sizeof *p->refused);
    p->hello = af_msg_new(AF_CMD_HELLO);
    if (!p->items || !p->which || !p->mons || !p->refused || !p->hello)
        return AF_ERR_NOMEM;
    char host[64] = "coordinator";
    gethostname(host, sizeof host - 1);
    snprintf(p->hello->version, sizeof p->hello->version, "%s", AF_VERSION);
    snprintf(p->hello->client, sizeof p->hello->client, "%.64s:%d", host, (int)getpid());
    return 0;
}

/* Connects to every selected node and sends it HELLO; the ones reached
 * wait for an answer. */
static void s_probe_send(s_probe_t *p)
{
    af_farm_t *self = p->farm;
    for (size_t i = 0; i < self->n; i++) {
        af_farm_node_t *n = &self->nodes[i];
        if (p->select && !p->select[i])
            continue;
        n->status = AF_NODE_UNREACHABLE;
        snprintf(n->status_msg, sizeof n->status_msg, "no answer from %s within %d ms",
                 n->conf->endpoint, p->timeout_ms);
        if (s_connect(self, i, &p->mons[i]))
            continue;
        af_err_t err = {0};
        if (af_msg_send(p->hello, n->sock, &err)) {
            s_set_status(n, AF_NODE_UNREACHABLE, "cannot send HELLO to %s: %s", n->conf->endpoint,
                         af_err_msg(&err, AF_ERR_NET));
            continue;
        }
        af_debug("HELLO -> %s (%s)", n->conf->name, n->conf->endpoint);
        p->which[p->waiting++] = i;
    }
}

/* Takes what node I has for us (a handshake event, a reply). True when the
 * node has answered for good. */
static bool s_probe_take(s_probe_t *p, size_t i, short sock_ev, short mon_ev)
{
    af_farm_node_t *n = &p->farm->nodes[i];
    if (p->mons[i] && (mon_ev & ZMQ_POLLIN) && s_monitor_event(n, p->mons[i], &p->refused[i]))
        return true;
    if (!(sock_ev & ZMQ_POLLIN))
        return false;
    af_err_t err = {0};
    af_msg_t *m = af_msg_recv(n->sock, false, NULL, &err);
    bool done = true;
    if (!m)
        s_set_status(n, AF_NODE_ERROR, "node %s sent a malformed reply: %s", n->conf->name,
                     af_err_msg(&err, AF_ERR_PROTO));
    else if (m->cmd == AF_CMD_WELCOME)
        s_take_welcome(n, m, p->start);
    else if (m->cmd == AF_CMD_ERROR)
        s_set_status(n, AF_NODE_ERROR, "node %s refused HELLO: %s", n->conf->name, m->message);
    else {
        af_debug("node %s: ignoring %s during probe", n->conf->name, af_cmd_name(m->cmd));
        done = false;
    }
    af_msg_destroy(&m);
    return done;
}

/* Polls the waiting nodes until each answered or the time is up. 0, or
 * AF_ERR_CANCELLED on a signal. */
static int s_probe_wait(s_probe_t *p)
{
    while (p->waiting > 0) {
        long long left = p->start + p->timeout_ms - zclock_mono();
        if (left <= 0)
            return 0;
        for (size_t k = 0; k < p->waiting; k++) {
            size_t i = p->which[k];
            zsock_t *mon = p->mons[i];
            p->items[2 * k] =
                (zmq_pollitem_t){zsock_resolve(p->farm->nodes[i].sock), 0, ZMQ_POLLIN, 0};
            /* without a monitor: no socket, fd -1 and no events, which zmq_poll skips */
            p->items[2 * k + 1] =
                (zmq_pollitem_t){mon ? zsock_resolve(mon) : NULL, -1, mon ? ZMQ_POLLIN : 0, 0};
        }
        if (zmq_poll(p->items, (int)(2 * p->waiting), (long)left) < 0) {
            if (af_signal_last())
                return AF_ERR_CANCELLED;
            continue;
        }
        for (size_t k = 0; k < p->waiting;) {
            if (!s_probe_take(p, p->which[k], p->items[2 * k].revents,
                              p->items[2 * k + 1].revents)) {
                k++;
                continue;
            }
            /* answered: stop polling it, the last one takes its place */
            p->waiting--;
            p->which[k] = p->which[p->waiting];
            p->items[2 * k] = p->items[2 * p->waiting];
            p->items[2 * k + 1] = p->items[2 * p->waiting + 1];
        }
    }
    return 0;
}

int af_farm_probe(af_farm_t *self, const bool *select, int timeout_ms)
{
    s_probe_t p = {.farm = self, .select = select, .timeout_ms = timeout_ms};
    int rc = s_probe_init(&p);
    if (rc == 0) {
        s_warn_plaintext(self, select);
        p.start = zclock_mono();
        s_probe_send(&p);
        rc = s_probe_wait(&p);
    }
    for (size_t k = 0; k < p.waiting; k++) {
        af_farm_node_t *n = &self->nodes[p.which[k]];
        if (p.refused[p.which[k]] && n->status == AF_NODE_UNREACHABLE)
            s_set_status(n, AF_NODE_UNREACHABLE, "connection refused by %s (is the agent running?)",
                         n->conf->endpoint);
    }
    s_probe_free(&p);
    int ready = 0;
    for (size_t i = 0; rc == 0 && i < self->n; i++)
        if ((!select || select[i]) && self->nodes[i].status == AF_NODE_READY)
            ready++;
    return rc ? rc : ready;
}

int af_farm_send(af_farm_t *self, size_t i, const af_msg_t *msg, af_err_t *err)
{
    if (i >= self->n || !self->nodes[i].sock)
        return af_err_set(err, AF_ERR_STATE, "node %zu is not connected", i);
    af_farm_node_t *n = &self->nodes[i];
    int rc = af_msg_send(msg, n->sock, err);
    if (rc)
        return af_err_prefix(err, rc, "sending %s to node %s", af_cmd_name(msg->cmd),
                             n->conf->name);
    return 0;
}

const char *af_attempt_node_name(const af_attempt_t *a, af_farm_t *farm)
{
    return a->cached ? "(cache)" : af_farm_node(farm, a->node)->conf->name;
}
