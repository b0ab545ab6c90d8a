/* test_agent_recovery.c -- startup cleanup after a crash (agent/recovery.c):
 * the build processes a killed agent left in its job dirs are killed, and
 * a pgid file naming someone else's process group (a recycled pid) is
 * never acted on. Real processes, forked here. */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../lib/af_test_time.h"
#include "recovery.h"

static char s_work[128];

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_work, sizeof s_work, "/tmp/test_agent_recovery.XXXXXX");
    if (!mkdtemp(s_work))
        return -1;
    char p[256];
    snprintf(p, sizeof p, "%s/jobs", s_work);
    return mkdir(p, 0700);
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_work);
    return system(cmd) == 0 ? 0 : -1;
}

/* A job dir JOB with ctx/ inside; its path in OUT. */
static void s_job_dir(const char *job, char *out, size_t len)
{
    snprintf(out, len, "%s/jobs/%s", s_work, job);
    assert_int_equal(mkdir(out, 0700), 0);
    char ctx[512];
    snprintf(ctx, sizeof ctx, "%s/ctx", out);
    assert_int_equal(mkdir(ctx, 0700), 0);
}

static void s_write_pgid(const char *dir, pid_t pgid)
{
    char p[512];
    snprintf(p, sizeof p, "%s/pgid", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "%d\n", (int)pgid);
    fclose(f);
}

static bool s_group_has_sleep(void *arg)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "pgrep -g %d sleep >/dev/null 2>&1", *(int *)arg);
    return system(cmd) == 0;
}

static bool s_group_gone(void *arg)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "pgrep -g %d >/dev/null 2>&1", *(int *)arg);
    return system(cmd) != 0;
}

/* Forks a session leader running `sh -c 'sleep 60 & sleep 60'` with cwd
 * CWD: a process group of three, like a build step. */
static pid_t s_spawn(const char *cwd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        if (chdir(cwd) != 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", "sleep 60 & sleep 60; wait", (char *)NULL);
        _exit(127);
    }
    int pgid = (int)pid;
    assert_true(af_test_poll(s_group_has_sleep, &pgid, 2.0)); /* sh started its children */
    return pid;
}

/* True when child PID has exited within the scaled slack (reaped here). */
static bool s_gone(pid_t pid)
{
    int st;
    return af_test_wait_exit(pid, 1.0) && waitpid(pid, &st, 0) == pid;
}

/* True when process group PGID is empty within the scaled slack. */
static bool s_group_empty(pid_t pgid)
{
    int g = (int)pgid;
    return af_test_poll(s_group_gone, &g, 1.0);
}

static void recovery_kills_the_recorded_group_of_a_stale_job(void **state)
{
    char dir[512], ctx[600];
    s_job_dir("b1-0-1", dir, sizeof dir);
    snprintf(ctx, sizeof ctx, "%s/ctx", dir);
    pid_t pid = s_spawn(ctx);
    s_write_pgid(dir, pid);
    size_t n = af_recovery_run(s_work);
    assert_true(n >= 1);
    assert_true(s_gone(pid));
    assert_true(s_group_empty(pid)); /* the background sleep too */
}

static void recovery_leaves_a_recycled_pgid_alone(void **state)
{
    char dir[512];
    s_job_dir("b2-0-1", dir, sizeof dir);
    /* the pgid file names a live group that is not ours: cwd elsewhere */
    pid_t pid = s_spawn("/");
    s_write_pgid(dir, pid);
    assert_int_equal(af_recovery_kill_job(dir), 0);
    assert_int_equal(kill(pid, 0), 0); /* still alive */
    kill(-pid, SIGKILL);
    assert_true(s_gone(pid));
}

static void recovery_kills_a_step_that_left_its_group(void **state)
{
    char dir[512], ctx[600];
    s_job_dir("b3-0-1", dir, sizeof dir);
    snprintf(ctx, sizeof ctx, "%s/ctx", dir);
    /* no pgid file at all (the agent died before writing it) */
    pid_t pid = s_spawn(ctx);
    assert_true(af_recovery_kill_job(dir) >= 1);
    assert_true(s_gone(pid));
}

static void recovery_ignores_garbage_and_missing_dirs(void **state)
{
    char dir[512];
    s_job_dir("b4-0-1", dir, sizeof dir);
    char p[600];
    snprintf(p, sizeof p, "%s/pgid", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("1\n", f); /* init: never */
    fclose(f);
    assert_int_equal(af_recovery_kill_job(dir), 0);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("not a pid\n", f);
    fclose(f);
    assert_int_equal(af_recovery_kill_job(dir), 0);
    assert_int_equal(af_recovery_kill_job("/nonexistent/archfarm/job"), 0);
    assert_int_equal(af_recovery_run("/nonexistent/archfarm"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recovery_kills_the_recorded_group_of_a_stale_job),
        cmocka_unit_test(recovery_leaves_a_recycled_pgid_alone),
        cmocka_unit_test(recovery_kills_a_step_that_left_its_group),
        cmocka_unit_test(recovery_ignores_garbage_and_missing_dirs),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
