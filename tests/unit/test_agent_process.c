/* test_agent_process.c -- agent/process: build step children on a zloop.
 * Spawns real `sh -c` children and drives a real zloop until they exit:
 * output lines (split, long, unterminated, both streams), exit statuses,
 * environment and cwd, killing the whole process group (grandchildren
 * included), SIGKILL after the grace period, destroy while running. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../lib/af_test_time.h"
#include "limits.h"
#include "process.h"

typedef struct {
    zloop_t *loop;
    af_process_t *proc;
    char *lines[64];
    char streams[64][8];
    size_t lens[64];
    size_t n_lines;
    bool exited;
    int status;
    int kill_after_ms; /* >0: call af_process_kill after this delay */
    int grace_ms;
    bool destroy_on_exit;
} s_run_t;

static void s_on_line(const char *stream, const char *line, size_t len, void *arg)
{
    s_run_t *r = arg;
    if (r->n_lines < 64) {
        r->lines[r->n_lines] = strdup(line);
        snprintf(r->streams[r->n_lines], sizeof r->streams[0], "%s", stream);
        r->lens[r->n_lines] = len;
        r->n_lines++;
    }
}

static void s_on_exit(int status, void *arg)
{
    s_run_t *r = arg;
    r->exited = true;
    r->status = status;
    if (r->destroy_on_exit)
        af_process_destroy(&r->proc);
}

static int s_stop_when_done(zloop_t *loop, int timer_id, void *arg)
{
    s_run_t *r = arg;
    return r->exited ? -1 : 0;
}

static int s_kill(zloop_t *loop, int timer_id, void *arg)
{
    s_run_t *r = arg;
    if (r->proc)
        af_process_kill(r->proc, r->grace_ms);
    return 0;
}

static int s_deadline(zloop_t *loop, int timer_id, void *arg)
{
    return -1;
}

static void s_free_run(s_run_t *r)
{
    for (size_t i = 0; i < r->n_lines; i++)
        free(r->lines[i]);
    af_process_destroy(&r->proc);
    zloop_destroy(&r->loop);
}

/* Runs CMD to completion (or 10 s). */
static void s_run(s_run_t *r, const char *cmd, char *const *envp, const char *cwd)
{
    static char *const empty_env[] = {"PATH=/usr/bin:/bin", NULL};
    r->loop = zloop_new();
    assert_non_null(r->loop);
    af_err_t err;
    af_err_clear(&err);
    r->proc = af_process_new(r->loop, cmd, envp ? envp : empty_env, cwd ? cwd : "/", s_on_line,
                             s_on_exit, r, &err);
    assert_non_null(r->proc);
    zloop_timer(r->loop, 5, 0, s_stop_when_done, r);
    zloop_timer(r->loop, 10000, 1, s_deadline, r);
    if (r->kill_after_ms > 0)
        zloop_timer(r->loop, (size_t)r->kill_after_ms, 1, s_kill, r);
    zloop_start(r->loop);
    assert_true(r->exited);
}

/* Runs ARGV (no shell) to completion (or 10 s). */
static void s_run_argv(s_run_t *r, char *const argv[])
{
    static char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    r->loop = zloop_new();
    assert_non_null(r->loop);
    af_err_t err;
    af_err_clear(&err);
    r->proc = af_process_new_argv(r->loop, argv, env, "/", s_on_line, s_on_exit, r, &err);
    assert_non_null(r->proc);
    zloop_timer(r->loop, 5, 0, s_stop_when_done, r);
    zloop_timer(r->loop, 10000, 1, s_deadline, r);
    zloop_start(r->loop);
    assert_true(r->exited);
}

/* Spaces, quotes, `$`, globs and newlines reach the child verbatim: no
 * shell ever parses them. */
static void process_argv_elements_reach_the_child_verbatim(void **state)
{
    char *const argv[] = {"printf", "<%s>", "a b", "\"q\" 'q'", "$HOME $(id)",
                          "*",      "x\ny", "",    NULL};
    s_run_t r = {0};
    s_run_argv(&r, argv);
    assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    assert_int_equal(r.n_lines, 2);
    assert_string_equal(r.lines[0], "<a b><\"q\" 'q'><$HOME $(id)><*><x");
    assert_string_equal(r.lines[1], "y><>");
    s_free_run(&r);
}

/* The argv child leads its own process group, like the sh path. */
static void process_argv_child_leads_its_group(void **state)
{
    char *const argv[] = {"sh", "-c", "echo $(cut -d' ' -f5 /proc/$$/stat) $$", NULL};
    s_run_t r = {0};
    s_run_argv(&r, argv);
    assert_int_equal(r.n_lines, 1);
    int pgrp = -1, pid = -2;
    assert_int_equal(sscanf(r.lines[0], "%d %d", &pgrp, &pid), 2);
    assert_int_equal(pgrp, pid);
    assert_int_equal(pid, (int)af_process_pid(r.proc));
    s_free_run(&r);
}

static void process_argv_empty_or_missing_program_is_an_error(void **state)
{
    static char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    zloop_t *loop = zloop_new();
    af_err_t err;
    af_err_clear(&err);
    char *const empty[] = {NULL};
    assert_null(af_process_new_argv(loop, empty, env, "/", NULL, NULL, NULL, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    af_err_clear(&err);
    char *const bad_cwd[] = {"true", NULL};
    assert_null(
        af_process_new_argv(loop, bad_cwd, env, "/nonexistent/dir", NULL, NULL, NULL, &err));
    assert_non_null(strstr(err.msg, "/nonexistent/dir"));
    zloop_destroy(&loop);
}

/* A confined step (fork path): its own session, no_new_privs, no core
 * dumps, the configured RLIMIT_FSIZE, and a write past it fails. */
static void process_confined_step_gets_session_nnp_and_rlimits(void **state)
{
    static char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    s_run_t r = {0};
    r.loop = zloop_new();
    assert_non_null(r.loop);
    af_err_t err;
    af_err_clear(&err);
    af_confine_child_t conf = {.ruleset_fd = -1, .nproc = 0, .fsize_bytes = 1 << 20};
    r.proc = af_process_new_confined(
        r.loop,
        "echo sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$; grep NoNewPrivs /proc/self/status; "
        "echo core=$(ulimit -c) fsize=$(ulimit -f); "
        "head -c 2000000 /dev/zero > /dev/null; echo big-to-null-ok",
        env, "/", &conf, s_on_line, s_on_exit, &r, &err);
    assert_non_null(r.proc);
    zloop_timer(r.loop, 5, 0, s_stop_when_done, &r);
    zloop_timer(r.loop, 10000, 1, s_deadline, &r);
    zloop_start(r.loop);
    assert_true(r.exited);
    assert_true(r.n_lines >= 4);
    int sid = -1, pid = -2;
    assert_int_equal(sscanf(r.lines[0], "sid=%d pid=%d", &sid, &pid), 2);
    assert_int_equal(sid, pid); /* a session leader */
    assert_non_null(strstr(r.lines[1], "NoNewPrivs:\t1"));
    assert_string_equal(r.lines[2], "core=0 fsize=2048"); /* 1 MiB in 512-byte blocks */
    assert_string_equal(r.lines[3], "big-to-null-ok");
    s_free_run(&r);
}

/* Alive and not a zombie (an orphan's zombie waits for a reaping init). */
static bool s_alive(pid_t pid)
{
    if (kill(pid, 0) < 0 && errno != EPERM)
        return false;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return !(close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z');
}

static void process_reports_lines_of_both_streams_and_exit_zero(void **state)
{
    s_run_t r = {0};
    s_run(&r, "echo one; echo two >&2; printf 'three\\nfour'", NULL, NULL);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 0);
    assert_int_equal(r.n_lines, 4);
    int seen = 0;
    for (size_t i = 0; i < r.n_lines; i++) {
        if (!strcmp(r.lines[i], "one")) {
            assert_string_equal(r.streams[i], "stdout");
            seen |= 1;
        }
        if (!strcmp(r.lines[i], "two")) {
            assert_string_equal(r.streams[i], "stderr");
            seen |= 2;
        }
        if (!strcmp(r.lines[i], "four")) /* unterminated last line still arrives */
            seen |= 4;
    }
    assert_int_equal(seen, 7);
    s_free_run(&r);
}

static void process_reports_nonzero_exit_status(void **state)
{
    s_run_t r = {0};
    s_run(&r, "exit 7", NULL, NULL);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 7);
    char text[64];
    assert_string_equal(af_process_status_text(r.status, text, sizeof text),
                        "exited with status 7");
    s_free_run(&r);
}

static void process_reports_death_by_signal(void **state)
{
    s_run_t r = {0};
    s_run(&r, "kill -9 $$", NULL, NULL);
    assert_true(WIFSIGNALED(r.status));
    assert_int_equal(WTERMSIG(r.status), SIGKILL);
    char text[64];
    af_process_status_text(r.status, text, sizeof text);
    assert_non_null(strstr(text, "killed by signal 9"));
    s_free_run(&r);
}

static void process_splits_lines_longer_than_the_log_limit(void **state)
{
    s_run_t r = {0};
    char cmd[128];
    /* AF_MAX_LOG_LINE + 10 'x' then a newline */
    snprintf(cmd, sizeof cmd, "head -c %d /dev/zero | tr '\\0' x; echo", AF_MAX_LOG_LINE + 10);
    s_run(&r, cmd, NULL, NULL);
    assert_int_equal(r.n_lines, 2);
    assert_int_equal(r.lens[0], AF_MAX_LOG_LINE);
    assert_int_equal(strlen(r.lines[0]), AF_MAX_LOG_LINE);
    assert_int_equal(r.lens[1], 10);
    s_free_run(&r);
}

static void process_runs_with_given_env_and_cwd_and_null_stdin(void **state)
{
    char *const envp[] = {"PATH=/usr/bin:/bin", "GREETING=hello world", NULL};
    s_run_t r = {0};
    s_run(&r, "echo \"$GREETING\"; pwd; cat; echo \"home=${HOME:-unset}\"", envp, "/tmp");
    assert_int_equal(r.n_lines, 3);
    assert_string_equal(r.lines[0], "hello world");
    assert_string_equal(r.lines[1], "/tmp");
    assert_string_equal(r.lines[2], "home=unset");
    s_free_run(&r);
}

static void process_runs_in_its_own_process_group(void **state)
{
    s_run_t r = {0};
    s_run(&r, "echo $$ $(ps -o pgid= -p $$)", NULL, NULL);
    assert_int_equal(r.n_lines, 1);
    int pid = 0, pgid = -1;
    assert_int_equal(sscanf(r.lines[0], "%d %d", &pid, &pgid), 2);
    assert_int_equal(pid, pgid);
    assert_int_not_equal(pgid, getpgrp());
    s_free_run(&r);
}

static void process_kill_group_kills_grandchildren(void **state)
{
    s_run_t r = {0};
    r.kill_after_ms = 300;
    r.grace_ms = 2000;
    /* a grandchild in the background, then the shell waits */
    s_run(&r, "sleep 60 & echo $!; wait", NULL, NULL);
    assert_int_equal(r.n_lines, 1);
    pid_t grandchild = (pid_t)atoi(r.lines[0]);
    assert_true(grandchild > 0);
    assert_true(WIFSIGNALED(r.status));
    assert_int_equal(WTERMSIG(r.status), SIGTERM);
    /* the grandchild got SIGTERM too (it exits at once: scaled slack only) */
    assert_true(af_test_wait_exit(grandchild, 1.0));
    s_free_run(&r);
}

static void process_background_leftovers_are_killed_when_the_step_exits(void **state)
{
    s_run_t r = {0};
    s_run(&r, "sleep 60 >/dev/null 2>&1 & echo $!", NULL, NULL);
    assert_true(WIFEXITED(r.status));
    pid_t leftover = (pid_t)atoi(r.lines[0]);
    assert_true(leftover > 0);
    assert_true(af_test_wait_exit(leftover, 1.0));
    s_free_run(&r);
}

static void process_sigkill_follows_when_sigterm_is_ignored(void **state)
{
    s_run_t r = {0};
    r.kill_after_ms = 300;
    r.grace_ms = 200;
    s_run(&r, "trap '' TERM; echo ready; while :; do sleep 0.05; done", NULL, NULL);
    assert_true(WIFSIGNALED(r.status));
    assert_int_equal(WTERMSIG(r.status), SIGKILL);
    s_free_run(&r);
}

static void process_exit_callback_may_destroy_the_process(void **state)
{
    s_run_t r = {0};
    r.destroy_on_exit = true;
    s_run(&r, "echo bye", NULL, NULL);
    assert_null(r.proc);
    assert_int_equal(r.n_lines, 1);
    s_free_run(&r);
}

static void process_destroy_while_running_kills_and_reaps(void **state)
{
    zloop_t *loop = zloop_new();
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    s_run_t r = {0};
    af_process_t *p = af_process_new(loop, "sleep 60", envp, "/", s_on_line, s_on_exit, &r, NULL);
    assert_non_null(p);
    pid_t pid = af_process_pid(p);
    assert_true(s_alive(pid));
    af_process_destroy(&p);
    assert_null(p);
    assert_false(s_alive(pid)); /* reaped: no zombie left either */
    assert_false(r.exited);     /* no callback after destroy */
    af_process_destroy(&p);     /* twice is fine */
    zloop_destroy(&loop);
}

static void process_bad_cwd_is_an_error(void **state)
{
    zloop_t *loop = zloop_new();
    char *const envp[] = {NULL};
    af_err_t err;
    af_err_clear(&err);
    af_process_t *p =
        af_process_new(loop, "true", envp, "/nonexistent/dir", NULL, NULL, NULL, &err);
    assert_null(p);
    assert_int_equal(err.code, AF_ERR_CHILD);
    assert_non_null(strstr(err.msg, "/nonexistent/dir"));
    zloop_destroy(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(process_reports_lines_of_both_streams_and_exit_zero),
        cmocka_unit_test(process_confined_step_gets_session_nnp_and_rlimits),
        cmocka_unit_test(process_reports_nonzero_exit_status),
        cmocka_unit_test(process_reports_death_by_signal),
        cmocka_unit_test(process_splits_lines_longer_than_the_log_limit),
        cmocka_unit_test(process_runs_with_given_env_and_cwd_and_null_stdin),
        cmocka_unit_test(process_runs_in_its_own_process_group),
        cmocka_unit_test(process_kill_group_kills_grandchildren),
        cmocka_unit_test(process_background_leftovers_are_killed_when_the_step_exits),
        cmocka_unit_test(process_sigkill_follows_when_sigterm_is_ignored),
        cmocka_unit_test(process_exit_callback_may_destroy_the_process),
        cmocka_unit_test(process_destroy_while_running_kills_and_reaps),
        cmocka_unit_test(process_bad_cwd_is_an_error),
        cmocka_unit_test(process_argv_elements_reach_the_child_verbatim),
        cmocka_unit_test(process_argv_child_leads_its_group),
        cmocka_unit_test(process_argv_empty_or_missing_program_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
