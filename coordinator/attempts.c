/* attempts.c -- the bookkeeping of a slice's attempts, kept free of
 * sockets so tests/unit/test_coord_attempts.c can compile it in: which
 * attempt a message from a node is about, whether a RESULT still counts
 * (a late RESULT of an abandoned attempt does not), whether a failed
 * attempt earns another one (--retries, --retry-on-build-failure) and on
 * which node. slices.c drives these from its event loop. */
#include <stdlib.h>
#include <string.h>

#include "build.h"

af_attempt_t *af_slice_current(af_slice_t *slice)
{
    return slice->n_attempts ? &slice->attempts[slice->n_attempts - 1] : NULL;
}

af_attempt_t *af_slices_find(af_slice_t *slices, size_t n, size_t node, const char *job,
                             uint32_t attempt, af_slice_t **slice_out)
{
    for (size_t i = 0; i < n; i++) {
        af_slice_t *s = &slices[i];
        if (strcmp(s->job, job))
            continue;
        /* newest first: attempt 0 means the latest one on that node */
        for (size_t k = s->n_attempts; k-- > 0;) {
            af_attempt_t *a = &s->attempts[k];
            if (a->node == node && (attempt == 0 || a->attempt == attempt)) {
                if (slice_out)
                    *slice_out = s;
                return a;
            }
        }
    }
    if (slice_out)
        *slice_out = NULL;
    return NULL;
}

uint64_t af_slice_context_bytes(const af_slice_t *s)
{
    uint64_t n = 0;
    for (size_t k = 0; k < s->n_attempts; k++)
        n += s->attempts[k].context_bytes_sent;
    return n;
}

int64_t af_slice_pushed_bytes(const af_slice_t *s)
{
    if (!s->n_attempts)
        return -1;
    const af_attempt_t *a = &s->attempts[s->n_attempts - 1];
    return a->ok && a->pushed_bytes >= 0 ? a->pushed_bytes : -1;
}

bool af_attempt_takes_result(const af_slice_t *s, const af_attempt_t *a)
{
    if (!s || !a || !s->n_attempts)
        return false;
    return a == &s->attempts[s->n_attempts - 1] && !a->done;
}

bool af_slice_should_retry(const af_slice_t *s, const af_retry_policy_t *policy)
{
    if (!s->n_attempts)
        return false;
    const af_attempt_t *a = &s->attempts[s->n_attempts - 1];
    if (!a->done || a->ok)
        return false;
    uint32_t max = policy->max_attempts ? policy->max_attempts : 1;
    if (max > AF_MAX_ATTEMPTS)
        max = AF_MAX_ATTEMPTS;
    if (s->n_attempts >= max)
        return false;
    if (!strcmp(a->failure, "infra"))
        return true;
    return !strcmp(a->failure, "build") && policy->retry_on_build_failure;
}

static bool s_tried(const af_slice_t *s, size_t node)
{
    for (size_t k = 0; k < s->n_attempts; k++)
        if (s->attempts[k].node == node)
            return true;
    return false;
}

long af_slice_next_node(const af_slice_t *s, const af_candidate_t *cands, size_t n,
                        const bool *lost, const char *recipe_kind)
{
    if (!n)
        return -1;
    af_candidate_t *copy = malloc(n * sizeof *copy);
    if (!copy)
        return -1;
    const af_attempt_t *last = s->n_attempts ? &s->attempts[s->n_attempts - 1] : NULL;
    bool build_retry = last && !strcmp(last->failure, "build");
    long pick = -1;
    /* pass 0: nodes not tried yet; pass 1 (build failures only): any node
     * still alive, the failed one included */
    for (int pass = 0; pass < (build_retry ? 2 : 1) && pick < 0; pass++) {
        memcpy(copy, cands, n * sizeof *copy);
        for (size_t i = 0; i < n; i++)
            if ((lost && lost[i]) || (pass == 0 && s_tried(s, i)))
                copy[i].ready = false;
        size_t chosen = 0;
        if (af_schedule_pick(copy, n, &s->platform, 1, recipe_kind, &chosen, NULL) == 0)
            pick = (long)chosen;
    }
    free(copy);
    return pick;
}

af_progress_result_t af_attempt_report(const af_slice_t *s, const af_attempt_t *a, const char *node)
{
    return (af_progress_result_t){
        .platform = s->platform_str,
        .node = node,
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
