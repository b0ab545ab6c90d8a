/* recovery.c -- startup cleanup after a crash (see recovery.h).
 *
 * A SIGKILLed agent cannot stop its build steps: they keep running,
 * reparented to init, in their job dirs. On the next start the agent walks
 * /proc once per stale job dir and kills what is provably ours: the
 * recorded process group when one of its members runs inside the job dir
 * (or carries AF_RECOVERY_ENV naming it), and every process whose cwd is
 * inside it. Pids are recycled, so the pgid file alone is never enough. */
#include "recovery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define S_PATH_MAX 4096     /* Linux PATH_MAX */
#define S_PID_MAX 4194304   /* PID_MAX_LIMIT */
#define S_MAX_PIDS 4096     /* processes we track per job dir */
#define S_ENVIRON_MAX 65536 /* bytes of /proc/PID/environ we read */

/* True when PATH is DIR or inside it. */
static bool s_inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

/* The process group of PID from /proc/PID/stat, or -1. */
static pid_t s_pgrp(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) state ppid pgrp ...": comm may hold spaces and ')' */
    char *p = strrchr(buf, ')');
    int ppid = 0, pgrp = -1;
    char state = 0;
    if (!p || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
        return -1;
    return (pid_t)pgrp;
}

static bool s_environ_marks(pid_t pid, const char *job_dir)
{
    char path[64], want[S_PATH_MAX + 32];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int wl = snprintf(want, sizeof want, "%s=%s", AF_RECOVERY_ENV, job_dir);
    if (wl < 0 || (size_t)wl >= sizeof want)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char *buf = malloc(S_ENVIRON_MAX + 1);
    ssize_t n = buf ? read(fd, buf, S_ENVIRON_MAX) : -1;
    close(fd);
    bool found = false;
    for (ssize_t off = 0; n > 0 && off < n && !found;) {
        buf[n] = '\0';
        const char *e = buf + off;
        found = !strcmp(e, want);
        off += (ssize_t)strlen(e) + 1;
    }
    free(buf);
    return found;
}

/* True when PID runs inside JOB_DIR or is marked as one of its steps. */
static bool s_ours(pid_t pid, const char *job_dir)
{
    char path[64], cwd[S_PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/cwd", (int)pid);
    ssize_t n = readlink(path, cwd, sizeof cwd - 1);
    if (n > 0) {
        cwd[n] = '\0';
        if (s_inside(cwd, job_dir))
            return true;
    }
    return s_environ_marks(pid, job_dir);
}

static pid_t s_read_pgid(const char *job_dir)
{
    char path[S_PATH_MAX + 16], buf[32] = "";
    snprintf(path, sizeof path, "%s/pgid", job_dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    fclose(f);
    char *end = NULL;
    long v = strtol(buf, &end, 10);
    if (end == buf || v <= 1 || v > S_PID_MAX)
        return -1;
    return (pid_t)v;
}

static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Collects into PIDS the processes that are ours for JOB_DIR (and every
 * member of the recorded group PGID once one member is confirmed ours). */
static size_t s_scan(const char *job_dir, pid_t pgid, pid_t *pids, size_t max, bool *group_ours)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    pid_t self = getpid();
    size_t n = 0;
    struct dirent *de;
    *group_ours = false;
    while ((de = readdir(d)) != NULL && n < max) {
        char *end = NULL;
        long v = strtol(de->d_name, &end, 10);
        if (!*de->d_name || *end || v <= 1 || (pid_t)v == self)
            continue;
        pid_t pid = (pid_t)v;
        bool in_group = pgid > 1 && s_pgrp(pid) == pgid;
        if (s_ours(pid, job_dir)) {
            pids[n++] = pid;
            if (in_group)
                *group_ours = true;
        }
    }
    closedir(d);
    return n;
}

size_t af_recovery_kill_job(const char *job_dir_arg)
{
    char job_dir[S_PATH_MAX];
    if (!realpath(job_dir_arg, job_dir)) /* /proc shows resolved paths */
        snprintf(job_dir, sizeof job_dir, "%s", job_dir_arg);
    pid_t *pids = calloc(S_MAX_PIDS, sizeof *pids);
    if (!pids) {
        af_warn("%s: out of memory checking for stale build processes", job_dir);
        return 0;
    }
    pid_t pgid = s_read_pgid(job_dir);
    bool group_ours = false;
    size_t n = s_scan(job_dir, pgid, pids, S_MAX_PIDS, &group_ours);
    size_t killed = 0;
    if (group_ours) {
        if (kill(-pgid, SIGKILL) == 0) {
            af_warn("killed stale build process group %d of %s", (int)pgid, job_dir);
            killed++;
        } else if (errno != ESRCH)
            af_warn("kill(-%d): %s", (int)pgid, strerror(errno));
    } else if (pgid > 1 && kill(-pgid, 0) == 0)
        af_info("process group %d recorded in %s is not ours any more: left alone", (int)pgid,
                job_dir);
    for (size_t i = 0; i < n; i++) {
        if (kill(pids[i], SIGKILL) == 0) {
            af_warn("killed stale build process %d (running in %s)", (int)pids[i], job_dir);
            killed++;
        }
    }
    /* they are init's children now: wait for them to vanish, bounded */
    long long deadline = s_now_ms() + AF_RECOVERY_WAIT_MS;
    while (killed && s_now_ms() < deadline) {
        bool any = false;
        for (size_t i = 0; i < n && !any; i++) {
            pid_t g = s_pgrp(pids[i]); /* -1 once gone (zombies keep /proc/PID/stat) */
            char path[64], st[256] = "";
            snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[i]);
            FILE *f = g >= 0 ? fopen(path, "re") : NULL;
            if (f) {
                if (!fgets(st, sizeof st, f))
                    st[0] = '\0';
                fclose(f);
                char *p = strrchr(st, ')');
                any = p && p[1] == ' ' && p[2] != 'Z';
            }
        }
        if (!any)
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(pids);
    return killed;
}

size_t af_recovery_run(const char *workdir)
{
    char jobs[S_PATH_MAX];
    int l = snprintf(jobs, sizeof jobs, "%s/jobs", workdir);
    if (l < 0 || (size_t)l >= sizeof jobs)
        return 0;
    DIR *d = opendir(jobs);
    if (!d)
        return 0; /* a first start: nothing left behind */
    size_t killed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[S_PATH_MAX];
        l = snprintf(path, sizeof path, "%s/%s", jobs, de->d_name);
        if (l < 0 || (size_t)l >= sizeof path)
            continue;
        killed += af_recovery_kill_job(path);
    }
    closedir(d);
    return killed;
}
