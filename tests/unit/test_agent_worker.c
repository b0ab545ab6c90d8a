/* test_agent_worker.c -- agent/worker: blocking tasks in a zactor thread
 * reporting to a zloop through the actor pipe. Log lines and outputs
 * arrive in order, a failure's code and message come through, cancel is
 * seen by the task, args are always freed, destroy is safe from the done
 * callback and while the task still runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker.h"

typedef struct {
    zloop_t *loop;
    af_worker_t *worker;
    bool done;
    int code;
    char message[256];
    char outputs[4][64];
    size_t n_outputs;
    char logs[1024];
    bool destroy_in_done;
} s_state_t;

static int s_freed;

static void s_free_args(void *args)
{
    s_freed++;
    free(args);
}

static void s_on_log(void *arg, const char *line)
{
    s_state_t *st = arg;
    size_t off = strlen(st->logs);
    snprintf(st->logs + off, sizeof st->logs - off, "%s;", line);
}

static void s_on_done(void *arg, int code, const char *message, const char *const *outputs,
                      size_t n)
{
    s_state_t *st = arg;
    st->done = true;
    st->code = code;
    snprintf(st->message, sizeof st->message, "%s", message);
    for (size_t i = 0; i < n && i < 4; i++)
        snprintf(st->outputs[i], sizeof st->outputs[i], "%s", outputs[i]);
    st->n_outputs = n;
    if (st->destroy_in_done)
        af_worker_destroy(&st->worker);
}

static int s_stop_when_done(zloop_t *loop, int id, void *arg)
{
    return ((s_state_t *)arg)->done ? -1 : 0;
}

static int s_deadline(zloop_t *loop, int id, void *arg)
{
    return -1;
}

static void s_run(s_state_t *st, af_worker_fn *fn, void *args)
{
    st->loop = zloop_new();
    st->worker = af_worker_new(st->loop, fn, args, s_free_args, s_on_log, s_on_done, st);
    assert_non_null(st->worker);
    zloop_timer(st->loop, 5, 0, s_stop_when_done, st);
    zloop_timer(st->loop, 10000, 1, s_deadline, st);
    zloop_start(st->loop);
}

static void s_finish(s_state_t *st)
{
    af_worker_destroy(&st->worker);
    zloop_destroy(&st->loop);
}

static int s_task_ok(af_worker_ctx_t *ctx, void *args, af_err_t *err)
{
    af_worker_log(ctx, "step %d", 1);
    af_worker_log(ctx, "step %d", 2);
    /* no cmocka asserts in the worker thread: report through the code */
    if (af_worker_output(ctx, (const char *)args) || af_worker_output(ctx, "second"))
        return af_err_set(err, AF_ERR_STATE, "af_worker_output failed");
    return 0;
}

static int s_task_fail(af_worker_ctx_t *ctx, void *args, af_err_t *err)
{
    return af_err_set(err, AF_ERR_NET, "registry %s unreachable", "127.0.0.1:1");
}

static int s_task_until_cancelled(af_worker_ctx_t *ctx, void *args, af_err_t *err)
{
    af_worker_log(ctx, "waiting");
    while (!af_worker_cancelled(ctx))
        zclock_sleep(5);
    return af_err_set(err, AF_ERR_CANCELLED, "cancelled");
}

static int s_task_too_many_outputs(af_worker_ctx_t *ctx, void *args, af_err_t *err)
{
    for (int i = 0; i < AF_WORKER_MAX_OUTPUTS; i++)
        if (af_worker_output(ctx, "x") != 0)
            return af_err_set(err, AF_ERR_STATE, "output %d refused", i);
    if (af_worker_output(ctx, "one too many") != AF_ERR_TOOBIG)
        return af_err_set(err, AF_ERR_STATE, "output beyond the limit accepted");
    return 0;
}

static void worker_reports_logs_outputs_and_success(void **state)
{
    s_state_t st = {0};
    s_freed = 0;
    s_run(&st, s_task_ok, strdup("first"));
    assert_true(st.done);
    assert_int_equal(st.code, 0);
    assert_string_equal(st.message, "");
    assert_string_equal(st.logs, "step 1;step 2;");
    assert_int_equal(st.n_outputs, 2);
    assert_string_equal(st.outputs[0], "first");
    assert_string_equal(st.outputs[1], "second");
    assert_true(af_worker_finished(st.worker));
    s_finish(&st);
    assert_int_equal(s_freed, 1);
}

static void worker_reports_the_task_error(void **state)
{
    s_state_t st = {0};
    s_run(&st, s_task_fail, NULL);
    assert_int_equal(st.code, AF_ERR_NET);
    assert_string_equal(st.message, "registry 127.0.0.1:1 unreachable");
    s_finish(&st);
}

static int s_cancel_after_log(zloop_t *loop, int id, void *arg)
{
    s_state_t *st = arg;
    if (strstr(st->logs, "waiting") && st->worker && !af_worker_finished(st->worker))
        af_worker_cancel(st->worker);
    return 0;
}

static void worker_cancel_is_seen_by_the_task(void **state)
{
    s_state_t st = {0};
    st.loop = zloop_new();
    st.worker =
        af_worker_new(st.loop, s_task_until_cancelled, NULL, NULL, s_on_log, s_on_done, &st);
    zloop_timer(st.loop, 20, 0, s_cancel_after_log, &st);
    zloop_timer(st.loop, 5, 0, s_stop_when_done, &st);
    zloop_timer(st.loop, 10000, 1, s_deadline, &st);
    zloop_start(st.loop);
    assert_true(st.done);
    assert_int_equal(st.code, AF_ERR_CANCELLED);
    s_finish(&st);
}

static void worker_destroy_while_running_stops_the_task(void **state)
{
    s_freed = 0;
    zloop_t *loop = zloop_new();
    s_state_t st = {0};
    af_worker_t *w =
        af_worker_new(loop, s_task_until_cancelled, malloc(8), s_free_args, NULL, s_on_done, &st);
    assert_non_null(w);
    af_worker_destroy(&w); /* $TERM reaches af_worker_cancelled(): returns */
    assert_null(w);
    assert_false(st.done); /* no callback after destroy */
    assert_int_equal(s_freed, 1);
    af_worker_destroy(&w);
    zloop_destroy(&loop);
}

static void worker_may_be_destroyed_from_its_done_callback(void **state)
{
    s_state_t st = {0};
    st.destroy_in_done = true;
    s_run(&st, s_task_ok, strdup("x"));
    assert_true(st.done);
    assert_null(st.worker);
    s_finish(&st);
}

static void worker_outputs_are_bounded(void **state)
{
    s_state_t st = {0};
    s_run(&st, s_task_too_many_outputs, NULL);
    assert_int_equal(st.code, 0);
    assert_int_equal(st.n_outputs, AF_WORKER_MAX_OUTPUTS);
    s_finish(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(worker_reports_logs_outputs_and_success),
        cmocka_unit_test(worker_reports_the_task_error),
        cmocka_unit_test(worker_cancel_is_seen_by_the_task),
        cmocka_unit_test(worker_destroy_while_running_stops_the_task),
        cmocka_unit_test(worker_may_be_destroyed_from_its_done_callback),
        cmocka_unit_test(worker_outputs_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
