/* farm.h -- the coordinator's connections to the farm's nodes.
 *
 * One DEALER socket per inventory node (small linger, ZMQ_MAXMSGSIZE,
 * short reconnect interval, bounded send timeout). af_farm_probe() sends
 * HELLO to every selected node at once and collects WELCOMEs until all
 * answered or a single deadline passes: a silent node is "unreachable",
 * never a hang. Afterwards the sockets stay connected for the build loop,
 * which reads them itself (af_farm_node_t.sock) and reports liveness here
 * through last_seen_ms. Used by `ls`, `inspect` and `build`. */
#ifndef AF_FARM_H
#define AF_FARM_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "inventory.h"
#include "proto.h"

typedef enum {
    AF_NODE_UNPROBED = 0, /* not selected for the probe */
    AF_NODE_READY,        /* answered WELCOME */
    AF_NODE_UNREACHABLE,  /* no answer before the deadline, or cannot connect */
    AF_NODE_UNAUTHORIZED, /* CURVE handshake refused */
    AF_NODE_UNSUPPORTED,  /* needs something this build lacks (CURVE keys) */
    AF_NODE_ERROR,        /* answered ERROR or garbage */
} af_node_status_t;

/* One node: inventory values (borrowed) + what the agent told us. */
typedef struct {
    const af_node_t *conf; /* borrowed from the inventory */
    zsock_t *sock;         /* DEALER; owned by the farm; NULL if never connected */
    af_node_status_t status;
    char status_msg[AF_ERRMSG_MAX]; /* why it is not ready */

    /* from WELCOME (valid when status == AF_NODE_READY) */
    char version[AF_MAX_NAME + 1];
    char agent_name[AF_MAX_NAME + 1];
    char **platforms; /* owned */
    size_t n_platforms;
    char **executors; /* owned */
    size_t n_executors;
    uint32_t running, queued, max_jobs;
    uint32_t heartbeat_ms;  /* agent's interval; AF_HEARTBEAT_MS if it sent 0 */
    char confinement[32];   /* WELCOME's, "" when the agent did not say */
    long long rtt_ms;       /* HELLO -> WELCOME */
    long long last_seen_ms; /* monotonic ms of the last message from it */
} af_farm_node_t;

typedef struct af_farm af_farm_t;

/* A farm over INV's nodes (borrowed: INV must outlive the farm). Opens no
 * socket yet. NULL on OOM. */
af_farm_t *af_farm_new(const af_inventory_t *inv);

/* Closes every socket (linger applies), frees, nulls *self_p. NULL-safe. */
void af_farm_destroy(af_farm_t **self_p);

size_t af_farm_size(const af_farm_t *self);

/* Node I (borrowed; NULL when out of range). */
af_farm_node_t *af_farm_node(af_farm_t *self, size_t i);

/* Index of the node named NAME, or -1. */
long af_farm_find(const af_farm_t *self, const char *name);

/* Transport (ZMTP) heartbeats on every DEALER opened from now on: a PING
 * every IVL_MS, the connection dropped (and re-dialled) after LIVENESS
 * silent intervals, and the same timeout asked of the agent's side (TTL).
 * A complement to the application HEARTBEATs, which decide liveness:
 * they catch a half-open TCP connection early. IVL_MS 0 disables them. */
void af_farm_set_heartbeat(af_farm_t *self, uint32_t ivl_ms, uint32_t liveness);

/* Connects to and probes the nodes with SELECT[i] true (SELECT NULL: all)
 * in parallel, waiting at most TIMEOUT_MS in total. Sets each node's
 * status. Returns the number of ready nodes, or a negative code when
 * interrupted by a signal (AF_ERR_CANCELLED). */
int af_farm_probe(af_farm_t *self, const bool *select, int timeout_ms);

/* Sends MSG to node I. 0 or a negative code with err naming the node. */
int af_farm_send(af_farm_t *self, size_t i, const af_msg_t *msg, af_err_t *err)
    __attribute__((warn_unused_result));

/* "ready", "unreachable", ... */
const char *af_node_status_name(af_node_status_t status);

/* True when the agent announced PLATFORM (normalised string). */
bool af_farm_node_announces(const af_farm_node_t *node, const char *platform);

/* True when the agent announced EXECUTOR. */
bool af_farm_node_has_executor(const af_farm_node_t *node, const char *executor);

#endif
