/* schedule.c -- picks a node per platform (see schedule.h). Kept free of
 * sockets and I/O so tests/unit/test_coord_schedule.c can include it. */
#include "schedule.h"
#include "strbuf.h"

#include <stdio.h>
#include <string.h>

/* Container engines that can build a Dockerfile. */
static const char *const s_engines[] = {"buildah", "buildctl", "buildkit",
                                        "docker",  "podman",   "kaniko"};

bool af_schedule_executor_ok(const char *recipe_kind, char *const *executors, size_t n)
{
    if (!strcmp(recipe_kind, "native"))
        return true; /* every agent runs native recipes */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof s_engines / sizeof s_engines[0]; k++)
            if (!strcmp(executors[i], s_engines[k]))
                return true;
    return false;
}

bool af_schedule_labels_match(const af_label_t *labels, size_t n_labels, const af_kv_t *sel,
                              size_t n_sel, const af_kv_t **miss)
{
    for (size_t k = 0; k < n_sel; k++) {
        bool found = false;
        for (size_t i = 0; i < n_labels && !found; i++)
            found =
                labels[i].key && !strcmp(labels[i].key, sel[k].key) &&
                (!sel[k].value[0] || (labels[i].value && !strcmp(labels[i].value, sel[k].value)));
        if (!found) {
            if (miss)
                *miss = &sel[k];
            return false;
        }
    }
    return true;
}

static bool s_inventory_serves(const af_candidate_t *c, const af_platform_t *p)
{
    for (size_t i = 0; i < c->n_platforms; i++)
        if (af_platform_equal(&c->platforms[i], p))
            return true;
    return false;
}

static bool s_announces(const af_candidate_t *c, const af_platform_t *p)
{
    for (size_t i = 0; i < c->n_announced; i++) {
        af_platform_t q;
        if (af_platform_parse(c->announced[i], &q, NULL) == 0 && af_platform_equal(&q, p))
            return true;
    }
    return false;
}

/* a < b in load order: load fraction, then priority, then name */
static bool s_better(const af_candidate_t *a, const af_candidate_t *b)
{
    unsigned long long ma = a->max_jobs ? a->max_jobs : 1;
    unsigned long long mb = b->max_jobs ? b->max_jobs : 1;
    unsigned long long la = (unsigned long long)a->running + a->queued + a->assigned;
    unsigned long long lb = (unsigned long long)b->running + b->queued + b->assigned;
    /* la/ma < lb/mb without division */
    if (la * mb != lb * ma)
        return la * mb < lb * ma;
    if (a->priority != b->priority)
        return a->priority < b->priority;
    return strcmp(a->name, b->name) < 0;
}

int af_schedule_pick(af_candidate_t *cands, size_t n_cands, const af_platform_t *platforms,
                     size_t n_platforms, const char *recipe_kind, size_t *chosen, af_err_t *err)
{
    for (size_t p = 0; p < n_platforms; p++) {
        long best = -1;
        for (size_t i = 0; i < n_cands; i++) {
            const af_candidate_t *c = &cands[i];
            if (!c->ready || !s_inventory_serves(c, &platforms[p]) ||
                !s_announces(c, &platforms[p]) ||
                !af_schedule_executor_ok(recipe_kind, c->executors, c->n_executors))
                continue;
            if (best < 0 || s_better(c, &cands[best]))
                best = (long)i;
        }
        if (best >= 0) {
            chosen[p] = (size_t)best;
            cands[best].assigned++;
            continue;
        }
        /* explain: every node the inventory says serves this platform */
        char pbuf[AF_PLATFORM_STR_MAX];
        af_platform_format(&platforms[p], pbuf, sizeof pbuf);
        char why[AF_ERRMSG_MAX];
        af_strbuf_t sb;
        af_strbuf_init(&sb, why, sizeof why);
        for (size_t i = 0; i < n_cands; i++) {
            const af_candidate_t *c = &cands[i];
            if (!s_inventory_serves(c, &platforms[p]))
                continue;
            const char *reason;
            char rbuf[512];
            if (!c->ready)
                reason = c->why_not_ready ? c->why_not_ready : "not ready";
            else if (!s_announces(c, &platforms[p])) {
                snprintf(rbuf, sizeof rbuf, "agent does not announce %s", pbuf);
                reason = rbuf;
            } else
                reason = "no Dockerfile engine among its executors";
            af_strbuf_printf(&sb, "%s%s (%s)", sb.len ? ", " : "", c->name, reason);
        }
        return af_err_set(err, AF_ERR_NOTFOUND,
                          "no node can build %s (%s recipe): nodes serving it: %s", pbuf,
                          recipe_kind, why[0] ? why : "none");
    }
    return 0;
}
