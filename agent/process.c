/* process.c -- a build step child process polled by the agent's zloop.
 *
 * posix_spawn() (vfork-like, safe in a threaded process) starts
 * `/bin/sh -c CMD` as the leader of its own process group, with stdin from
 * /dev/null, stdout/stderr on O_CLOEXEC pipes and every other descriptor
 * closed. The parent ends of the pipes are non-blocking and polled by the
 * loop; a pidfd (pidfd_open, Linux >= 5.3) tells the loop when the child
 * exits. Without pidfd support (old kernels, some emulators) a 100 ms
 * timer polls waitid(WNOWAIT) and wakes a self-pipe polled in place of the
 * pidfd, so the exit is always handled from a poller, never from a timer
 * (a timer handler must not end pollers: zloop may still dispatch them in
 * the same turn). Output is cut into lines bounded
 * by AF_MAX_LOG_LINE, NUL bytes replaced by '?'. When the leader exits, its group gets SIGKILL so
 * no background grandchild survives the step, and the members that are our children (all of them
 * when the agent is a child subreaper) are reaped. */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "confine.h"
#include "limits.h"
#include "log.h"

/* Upper bound on bytes read per loop turn and stream, so a child that
 * floods its output cannot starve the rest of the loop. */
#define S_READ_BUDGET (256 * 1024)
/* Bytes read after the child exited, to flush what it wrote last. */
#define S_DRAIN_BUDGET (1024 * 1024)
#define S_WAITPID_POLL_MS 100

typedef struct {
    af_process_t *owner;
    const char *name; /* "stdout" | "stderr" */
    int fd;           /* -1 when closed */
    bool polling;
    zmq_pollitem_t item;
    size_t len;
    char buf[AF_MAX_LOG_LINE + 1];
} s_stream_t;

struct af_process {
    zloop_t *loop;
    pid_t pid;
    int pidfd; /* -1 when not available or closed */
    bool pidfd_polling;
    zmq_pollitem_t pid_item;
    int wait_timer; /* waitpid polling fallback, -1 when none */
    int wake_fd;    /* fallback: write end of the self-pipe behind pidfd */
    int kill_timer; /* SIGKILL after grace, -1 when none */
    bool exited;
    int status;
    s_stream_t out, err;
    af_process_line_fn *on_line;
    af_process_exit_fn *on_exit;
    void *arg;
};

static void s_emit(s_stream_t *s, const char *data, size_t len)
{
    char line[AF_MAX_LOG_LINE + 1];
    memcpy(line, data, len);
    line[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\0')
            line[i] = '?'; /* the protocol carries text without NUL */
    if (s->owner->on_line)
        s->owner->on_line(s->name, line, len, s->owner->arg);
}

/* Consumes LEN new bytes already appended to s->buf: emits every complete
 * line and, when the buffer is full without a newline, a split line. */
static void s_split(s_stream_t *s)
{
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->buf[i] == '\n') {
            s_emit(s, s->buf + start, i - start);
            start = i + 1;
        }
    }
    if (start > 0) {
        memmove(s->buf, s->buf + start, s->len - start);
        s->len -= start;
    }
    if (s->len == AF_MAX_LOG_LINE) {
        s_emit(s, s->buf, s->len);
        s->len = 0;
    }
}

static void s_stream_close(s_stream_t *s)
{
    if (s->polling) {
        zloop_poller_end(s->owner->loop, &s->item);
        s->polling = false;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* Reads up to BUDGET bytes. On EOF flushes the partial line and closes. */
static void s_stream_read(s_stream_t *s, size_t budget)
{
    size_t total = 0;
    while (s->fd >= 0 && total < budget) {
        ssize_t n = read(s->fd, s->buf + s->len, AF_MAX_LOG_LINE - s->len);
        if (n > 0) {
            s->len += (size_t)n;
            total += (size_t)n;
            s_split(s);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or a hard error: the writer side is gone */
        if (s->len > 0) {
            s_emit(s, s->buf, s->len);
            s->len = 0;
        }
        s_stream_close(s);
    }
}

static int s_on_stream(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_stream_read((s_stream_t *)arg, S_READ_BUDGET);
    return 0;
}

static void s_group_kill(pid_t pgid, int sig)
{
    if (pgid > 0 && kill(-pgid, sig) < 0 && errno != ESRCH)
        af_warn("kill(-%d, %d): %s", (int)pgid, sig, strerror(errno));
}

/* The group, and its leader by pid: where posix_spawn returns before the
 * child's setpgid (qemu-user emulates CLONE_VFORK as a plain fork) the
 * group may not exist yet, and the leader must not escape a kill for that.
 * Only while the leader is unreaped (so its pid cannot have been reused). */
static void s_step_kill(const af_process_t *self, int sig)
{
    s_group_kill(self->pid, sig);
    if (self->pid > 0 && kill(self->pid, sig) < 0 && errno != ESRCH)
        af_warn("kill(%d, %d): %s", (int)self->pid, sig, strerror(errno));
}

/* After SIGKILL to the group: reaps the members that are our children.
 * With the agent a child subreaper (PR_SET_CHILD_SUBREAPER) that is every
 * descendant still in the group, so none is left running or as a zombie
 * once this returns. SIGKILLed processes exit promptly (barring
 * uninterruptible sleep in the kernel). */
static void s_reap_group(pid_t pgid)
{
    for (;;) {
        pid_t r = waitpid(-pgid, NULL, 0);
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        return; /* ECHILD: none left */
    }
}

static void s_stop_watching(af_process_t *self)
{
    if (self->pidfd_polling) {
        zloop_poller_end(self->loop, &self->pid_item);
        self->pidfd_polling = false;
    }
    if (self->pidfd >= 0) {
        close(self->pidfd);
        self->pidfd = -1;
    }
    if (self->wake_fd >= 0) {
        close(self->wake_fd);
        self->wake_fd = -1;
    }
    if (self->wait_timer >= 0) {
        zloop_timer_end(self->loop, self->wait_timer);
        self->wait_timer = -1;
    }
    if (self->kill_timer >= 0) {
        zloop_timer_end(self->loop, self->kill_timer);
        self->kill_timer = -1;
    }
}

/* The child may have exited: reap it without blocking. On exit, drain
 * and close the pipes, kill what is left of the group, report. */
static void s_check_exit(af_process_t *self)
{
    int status = 0;
    pid_t r = waitpid(self->pid, &status, WNOHANG);
    if (r == 0)
        return;
    if (r < 0) {
        if (errno == EINTR)
            return;
        af_warn("waitpid(%d): %s", (int)self->pid, strerror(errno));
        status = 255 << 8; /* reported as a failed step */
    }
    self->exited = true;
    self->status = status;
    s_group_kill(self->pid, SIGKILL);
    s_reap_group(self->pid);
    s_stop_watching(self);
    s_stream_read(&self->out, S_DRAIN_BUDGET);
    s_stream_read(&self->err, S_DRAIN_BUDGET);
    if (self->out.len) {
        s_emit(&self->out, self->out.buf, self->out.len);
        self->out.len = 0;
    }
    if (self->err.len) {
        s_emit(&self->err, self->err.buf, self->err.len);
        self->err.len = 0;
    }
    s_stream_close(&self->out);
    s_stream_close(&self->err);
    if (self->on_exit)
        self->on_exit(status, self->arg); /* may destroy self: last statement */
}

static int s_on_pidfd(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_check_exit((af_process_t *)arg);
    return 0;
}

/* Fallback without pidfd: notice the exit without reaping, then wake the
 * poller that handles it. */
static int s_on_wait_timer(zloop_t *loop, int timer_id, void *arg)
{
    af_process_t *self = (af_process_t *)arg;
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)self->pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR)
        info.si_pid = self->pid; /* cannot wait: let the poller find out */
    if (info.si_pid != 0 && self->wake_fd >= 0) {
        char c = 1;
        if (write(self->wake_fd, &c, 1) < 0)
            af_warn("self-pipe: %s", strerror(errno));
        zloop_timer_end(loop, timer_id);
        self->wait_timer = -1;
    }
    return 0;
}

static int s_on_kill_timer(zloop_t *loop, int timer_id, void *arg)
{
    af_process_t *self = (af_process_t *)arg;
    self->kill_timer = -1; /* one-shot: the loop frees it */
    if (!self->exited) {
        af_debug("grace period over, SIGKILL to group %d", (int)self->pid);
        s_step_kill(self, SIGKILL);
    }
    return 0;
}

static int s_pipe(int fds[2], af_err_t *err)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return af_err_set(err, AF_ERR_IO, "pipe: %s", strerror(errno));
    int fl = fcntl(fds[0], F_GETFL);
    if (fl < 0 || fcntl(fds[0], F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return af_err_set(err, AF_ERR_IO, "fcntl: %s", strerror(e));
    }
    return 0;
}

static void s_stream_init(af_process_t *self, s_stream_t *s, const char *name)
{
    s->owner = self;
    s->name = name;
    s->fd = -1;
}

static int s_stream_watch(s_stream_t *s)
{
    s->item = (zmq_pollitem_t){NULL, s->fd, ZMQ_POLLIN, 0};
    if (zloop_poller(s->owner->loop, &s->item, s_on_stream, s) < 0)
        return -1;
    zloop_poller_set_tolerant(s->owner->loop, &s->item);
    s->polling = true;
    return 0;
}

/* The confined path: fork, then in the child only async-signal-safe calls
 * (the agent has threads): default signals, a new session (so a new process
 * group), the descriptors, the confinement, exec. A failure is written to
 * the step's stderr and the child exits 126. */
static pid_t s_fork_confined(const char *cmd, char *const envp[], const char *cwd, int out_w,
                             int err_w, const af_confine_child_t *conf)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t none;
    sigemptyset(&none);
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, NULL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    const char *why = "setsid";
    int devnull = -1;
    if (setsid() < 0)
        goto fail;
    why = "/dev/null";
    if ((devnull = open("/dev/null", O_RDONLY)) < 0 || dup2(devnull, 0) < 0)
        goto fail;
    why = "dup2";
    if (dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
        goto fail;
    why = "chdir to the context directory";
    if (chdir(cwd) < 0)
        goto fail;
    if (af_confine_apply_child(conf, &why) < 0)
        goto fail;
    syscall(SYS_close_range, 3U, ~0U, 0U);
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    execve("/bin/sh", argv, envp);
    why = "exec /bin/sh";
fail:;
    const char *pre = "archfarm-agent: cannot start the confined build step: ";
    ssize_t w = write(2, pre, strlen(pre));
    w = write(2, why, strlen(why));
    w = write(2, "\n", 1);
    (void)w;
    _exit(126);
}

/* The one spawner behind every entry point: ARGV run as FILE (looked up in
 * $PATH when SEARCH), or, with CONF, `/bin/sh -c CMD` forked and confined
 * (ARGV is then {"sh", "-c", CMD}). */
static af_process_t *s_new(zloop_t *loop, const char *file, bool search, char *const argv[],
                           char *const envp[], const char *cwd, const af_confine_child_t *conf,
                           af_process_line_fn *on_line, af_process_exit_fn *on_exit, void *arg,
                           af_err_t *err);

af_process_t *af_process_new(zloop_t *loop, const char *cmd, char *const envp[], const char *cwd,
                             af_process_line_fn *on_line, af_process_exit_fn *on_exit, void *arg,
                             af_err_t *err)
{
    return af_process_new_confined(loop, cmd, envp, cwd, NULL, on_line, on_exit, arg, err);
}

af_process_t *af_process_new_confined(zloop_t *loop, const char *cmd, char *const envp[],
                                      const char *cwd, const af_confine_child_t *conf,
                                      af_process_line_fn *on_line, af_process_exit_fn *on_exit,
                                      void *arg, af_err_t *err)
{
    assert(cmd);
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    return s_new(loop, "/bin/sh", false, argv, envp, cwd, conf, on_line, on_exit, arg, err);
}

af_process_t *af_process_new_argv(zloop_t *loop, char *const argv[], char *const envp[],
                                  const char *cwd, af_process_line_fn *on_line,
                                  af_process_exit_fn *on_exit, void *arg, af_err_t *err)
{
    assert(argv);
    if (!argv[0] || !argv[0][0]) {
        af_err_set(err, AF_ERR_INVAL, "empty command");
        return NULL;
    }
    return s_new(loop, argv[0], true, argv, envp, cwd, NULL, on_line, on_exit, arg, err);
}

/* posix_spawn(p) of ARGV as FILE in CWD, stdout/stderr to OUT_W/ERR_W, in
 * a new process group with default signals. *PID_P on success. */
static int s_spawn(const char *file, bool search, char *const argv[], char *const envp[],
                   const char *cwd, int out_w, int err_w, pid_t *pid_p, af_err_t *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_init = false, attr_init = false;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        goto fail;
    fa_init = true;
    if ((rc = posix_spawn_file_actions_addchdir_np(&fa, cwd)) ||
        (rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) ||
        (rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1)) ||
        (rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2)) ||
        (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)))
        goto fail;
    if ((rc = posix_spawnattr_init(&attr)))
        goto fail;
    attr_init = true;
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&defaults, sigs[i]);
    if ((rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) ||
        (rc = posix_spawnattr_setpgroup(&attr, 0)) ||
        (rc = posix_spawnattr_setsigmask(&attr, &none)) ||
        (rc = posix_spawnattr_setsigdefault(&attr, &defaults)))
        goto fail;
    rc = search ? posix_spawnp(pid_p, file, &fa, &attr, argv, envp)
                : posix_spawn(pid_p, file, &fa, &attr, argv, envp);
    if (rc)
        af_err_set(err, AF_ERR_CHILD, "cannot start %s in %s: %s", file, cwd, strerror(rc));
    goto out;
fail:
    af_err_set(err, AF_ERR_CHILD, "cannot prepare the child process: %s", strerror(rc));
out:
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_init)
        posix_spawnattr_destroy(&attr);
    return rc ? AF_ERR_CHILD : 0;
}

/* Watches the started child: its two pipes, and its exit through a pidfd
 * (or, without pidfd, a timer polling waitid and a self-pipe). */
static int s_watch_child(af_process_t *self, af_err_t *err)
{
    if (s_stream_watch(&self->out) < 0 || s_stream_watch(&self->err) < 0)
        return af_err_set(err, AF_ERR_NOMEM, "cannot poll the child's output");
    self->pidfd = (int)syscall(SYS_pidfd_open, self->pid, 0);
    if (self->pidfd < 0) {
        af_debug("no pidfd (%s), polling waitid", strerror(errno));
        int wake[2];
        if (s_pipe(wake, err) < 0)
            return AF_ERR_IO;
        self->pidfd = wake[0];
        self->wake_fd = wake[1];
        self->wait_timer = zloop_timer(self->loop, S_WAITPID_POLL_MS, 0, s_on_wait_timer, self);
    }
    if (self->pidfd >= 0) {
        self->pid_item = (zmq_pollitem_t){NULL, self->pidfd, ZMQ_POLLIN, 0};
        if (zloop_poller(self->loop, &self->pid_item, s_on_pidfd, self) == 0) {
            zloop_poller_set_tolerant(self->loop, &self->pid_item);
            self->pidfd_polling = true;
        }
    }
    if (!self->pidfd_polling || (self->wake_fd >= 0 && self->wait_timer < 0))
        return af_err_set(err, AF_ERR_NOMEM, "cannot watch the child");
    return 0;
}

static af_process_t *s_new(zloop_t *loop, const char *file, bool search, char *const argv[],
                           char *const envp[], const char *cwd, const af_confine_child_t *conf,
                           af_process_line_fn *on_line, af_process_exit_fn *on_exit, void *arg,
                           af_err_t *err)
{
    assert(loop && file && argv && envp && cwd);
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    /* posix_spawn also fails on a bad cwd, but only where the C library can
     * report a child-side failure back: under qemu-user (how arm agents are
     * tested) CLONE_VFORK is emulated as fork and the child just exits 127.
     * Checking first names the directory on every platform. */
    struct stat st;
    int cwd_errno = stat(cwd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    if (cwd_errno) {
        af_err_set(err, AF_ERR_CHILD, "cannot start %s in %s: %s", file, cwd, strerror(cwd_errno));
        return NULL;
    }
    af_process_t *self = calloc(1, sizeof *self);
    if (!self) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->loop = loop;
    self->pidfd = -1;
    self->wait_timer = -1;
    self->wake_fd = -1;
    self->kill_timer = -1;
    self->on_line = on_line;
    self->on_exit = on_exit;
    self->arg = arg;
    s_stream_init(self, &self->out, "stdout");
    s_stream_init(self, &self->err, "stderr");
    if (s_pipe(out, err) < 0 || s_pipe(errp, err) < 0)
        goto fail;
    if (conf) {
        self->pid = s_fork_confined(argv[2], envp, cwd, out[1], errp[1], conf);
        if (self->pid < 0) {
            af_err_set(err, AF_ERR_CHILD, "cannot fork the build step: %s", strerror(errno));
            goto fail;
        }
    } else if (s_spawn(file, search, argv, envp, cwd, out[1], errp[1], &self->pid, err)) {
        goto fail;
    }
    close(out[1]);
    close(errp[1]);
    self->out.fd = out[0];
    self->err.fd = errp[0];
    if (s_watch_child(self, err) < 0) {
        af_process_destroy(&self);
        return NULL;
    }
    af_debug("spawned pid %d in %s", (int)self->pid, cwd);
    return self;
fail:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    free(self);
    return NULL;
}

void af_process_destroy(af_process_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_process_t *self = *self_p;
    if (!self->exited && self->pid > 0) {
        s_step_kill(self, SIGKILL);
        int status;
        while (waitpid(self->pid, &status, 0) < 0 && errno == EINTR)
            ;
        s_group_kill(self->pid, SIGKILL);
        s_reap_group(self->pid);
        self->exited = true;
    }
    s_stop_watching(self);
    s_stream_close(&self->out);
    s_stream_close(&self->err);
    free(self);
    *self_p = NULL;
}

void af_process_kill(af_process_t *self, int grace_ms)
{
    assert(self);
    if (self->exited)
        return;
    if (grace_ms <= 0) {
        s_step_kill(self, SIGKILL);
        return;
    }
    s_step_kill(self, SIGTERM);
    if (self->kill_timer < 0)
        self->kill_timer = zloop_timer(self->loop, (size_t)grace_ms, 1, s_on_kill_timer, self);
    if (self->kill_timer < 0)
        s_step_kill(self, SIGKILL);
}

pid_t af_process_pid(const af_process_t *self)
{
    assert(self);
    return self->pid;
}

bool af_process_exited(const af_process_t *self)
{
    assert(self);
    return self->exited;
}

char *af_process_status_text(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "ended with wait status 0x%x", (unsigned)status);
    return buf;
}
