/* schedule.h -- which node builds which platform.
 *
 * Pure logic over plain candidate records (no sockets), so it can be unit
 * tested: for each requested platform pick a ready node that serves it
 * natively (the inventory lists it AND the agent announces it) and has an
 * executor for the recipe kind (native: every agent; dockerfile: an engine
 * such as buildah), least loaded first: (running + queued + slices given
 * in this build) / max_jobs, then archfarm_priority (lower first), then
 * name. Nodes that do not match --node-selector are not ready
 * (af_schedule_labels_match). When a platform has no such node, nothing is chosen and the error
 * says why each node serving it was not usable. */
#ifndef AF_SCHEDULE_H
#define AF_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "inventory.h"
#include "kv.h"
#include "platform.h"

typedef struct {
    const char *name;               /* borrowed */
    bool ready;                     /* answered WELCOME */
    const char *why_not_ready;      /* "unreachable: ...", borrowed, may be NULL */
    const af_platform_t *platforms; /* inventory's, borrowed */
    size_t n_platforms;
    char *const *announced; /* agent's WELCOME platforms, borrowed */
    size_t n_announced;
    char *const *executors; /* agent's executors, borrowed */
    size_t n_executors;
    unsigned running, queued, max_jobs;
    int priority;
    unsigned assigned; /* scratch: slices given by af_schedule_pick */
} af_candidate_t;

/* True when LABELS (archfarm_labels) hold every KEY=VALUE of SEL (an
 * empty VALUE matches a label KEY with any value). On false, *MISS (may
 * be NULL) is the first selector that did not match. */
bool af_schedule_labels_match(const af_label_t *labels, size_t n_labels, const af_kv_t *sel,
                              size_t n_sel, const af_kv_t **miss);

/* True when an agent with these EXECUTORS can run RECIPE_KIND. */
bool af_schedule_executor_ok(const char *recipe_kind, char *const *executors, size_t n);

/* Chooses a candidate index for every platform into chosen[0..n_platforms).
 * Updates candidates' `assigned`. Returns 0, or AF_ERR_NOTFOUND with err
 * "no node can build linux/arm64 (native recipe): nodes serving it: ..."
 * for the first platform without a usable node. */
int af_schedule_pick(af_candidate_t *cands, size_t n_cands, const af_platform_t *platforms,
                     size_t n_platforms, const char *recipe_kind, size_t *chosen, af_err_t *err)
    __attribute__((warn_unused_result));

#endif
