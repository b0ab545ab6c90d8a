/* confine.c -- Landlock, no_new_privs and rlimits for native build steps
 * (see confine.h). */
#include "confine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* newer than the installed kernel headers */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

#define S_MAX_EXCLUDED 8
#define S_RO                                                                                       \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define S_FILE_RIGHTS                                                                              \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |   \
     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* Read-only (and executable) system trees. */
static const char *const s_ro_roots[] = {"/usr",    "/bin", "/sbin", "/lib",  "/lib32", "/lib64",
                                         "/libx32", "/opt", "/etc",  "/proc", "/sys"};
/* Devices a step may read and write. */
static const char *const s_rw_devices[] = {"/dev/null",   "/dev/zero",    "/dev/full",
                                           "/dev/random", "/dev/urandom", "/dev/tty"};

struct af_confine {
    af_confine_mode_t mode;
    int abi; /* 0: no Landlock for steps */
    uint64_t handled;
    uint32_t nproc;
    uint64_t fsize_bytes;
    size_t n_excluded;
    char excluded[S_MAX_EXCLUDED][PATH_MAX];
};

int af_confine_mode_parse(const char *text, af_confine_mode_t *out)
{
    if (!strcmp(text, "auto"))
        *out = AF_CONFINE_AUTO;
    else if (!strcmp(text, "required"))
        *out = AF_CONFINE_REQUIRED;
    else if (!strcmp(text, "off"))
        *out = AF_CONFINE_OFF;
    else
        return -1;
    return 0;
}

static int s_landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? -errno : (int)abi;
}

static uint64_t s_handled_for(int abi)
{
    uint64_t h =
        LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
        LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
        LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
        LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
        LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
    if (abi >= 2)
        h |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        h |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        h |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return h;
}

/* Adds PATH (canonical) to the excluded list; a missing path is skipped. */
static void s_exclude(af_confine_t *self, const char *path)
{
    if (!path || !path[0] || self->n_excluded == S_MAX_EXCLUDED)
        return;
    char real[PATH_MAX];
    if (!realpath(path, real))
        return;
    snprintf(self->excluded[self->n_excluded++], PATH_MAX, "%s", real);
}

af_confine_t *af_confine_new(const af_confine_spec_t *spec, af_err_t *err)
{
    af_confine_t *self = calloc(1, sizeof *self);
    if (!self) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->mode = spec->mode;
    self->nproc = spec->nproc;
    self->fsize_bytes = spec->fsize_bytes;
    int abi = spec->mode == AF_CONFINE_OFF ? 0 : s_landlock_abi();
    if (abi > 0) {
        self->abi = abi;
        self->handled = s_handled_for(abi);
    } else if (spec->mode == AF_CONFINE_REQUIRED) {
        af_err_set(err, AF_ERR_INVAL,
                   "confine: required, but this kernel offers no Landlock (%s): refusing to run "
                   "build steps unconfined",
                   strerror(-abi));
        free(self);
        return NULL;
    }
    s_exclude(self, spec->workdir);
    s_exclude(self, spec->config_path);
    if (spec->config_path && spec->config_path[0]) {
        /* its directory too, unless that is a system root like /etc */
        char dir[PATH_MAX];
        if (realpath(spec->config_path, dir)) {
            char *slash = strrchr(dir, '/');
            if (slash && slash != dir) {
                *slash = '\0';
                if (strchr(dir + 1, '/'))
                    s_exclude(self, dir);
            }
        }
    }
    if (spec->cert && spec->cert[0]) {
        s_exclude(self, spec->cert);
        char secret[PATH_MAX];
        snprintf(secret, sizeof secret, "%s_secret", spec->cert);
        s_exclude(self, secret);
    }
    s_exclude(self, spec->authorized_keys);
    if (self->abi > 0)
        af_info("build steps confined: Landlock ABI %d (read-write: the job dir only; read-only: "
                "the system; hidden: the workdir, config and keys), no_new_privs, new session",
                self->abi);
    else if (spec->mode == AF_CONFINE_OFF)
        af_warn("build steps NOT confined by Landlock (confine: off): a step can read everything "
                "this user can, including the agent's keys");
    else
        af_warn("build steps NOT confined: this kernel offers no Landlock (%s); a step can read "
                "everything this user can, including the agent's keys (set confine: required to "
                "refuse to start instead)",
                strerror(-abi));
    return self;
}

void af_confine_destroy(af_confine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

int af_confine_abi(const af_confine_t *self)
{
    return self ? self->abi : 0;
}

/* 1 when A is B or an ancestor of B, 2 when A is inside B, else 0. */
static int s_relation(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la <= lb && !strncmp(a, b, la) && (b[la] == '\0' || b[la] == '/' || la == 1))
        return 1;
    if (lb < la && !strncmp(a, b, lb) && a[lb] == '/')
        return 2;
    return 0;
}

static int s_add_rule(int rs, const char *path, uint64_t rights, uint64_t handled)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == EACCES ? 0 : -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        rights &= S_FILE_RIGHTS;
    struct landlock_path_beneath_attr pb = {.allowed_access = rights & handled, .parent_fd = fd};
    long rc = syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    int e = errno;
    close(fd);
    errno = e;
    return rc < 0 ? -1 : 0;
}

/* Grants RIGHTS on PATH, except on the excluded paths inside it: an
 * ancestor of an excluded path gets its other entries granted one by one
 * (Landlock only grants). Symlinks are skipped: access through them is
 * decided where they point. */
static int s_grant_except(const af_confine_t *self, int rs, const char *path, uint64_t rights,
                          int depth)
{
    bool ancestor = false;
    for (size_t i = 0; i < self->n_excluded; i++) {
        int r = s_relation(path, self->excluded[i]);
        if (r == 2 || (r == 1 && !strcmp(path, self->excluded[i])))
            return 0; /* excluded itself or inside it */
        if (r == 1)
            ancestor = true;
    }
    if (!ancestor)
        return s_add_rule(rs, path, rights, self->handled);
    if (depth > 32)
        return 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char child[PATH_MAX];
        if (snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") ? path : "", e->d_name) >=
            (int)sizeof child)
            continue;
        struct stat st;
        if (lstat(child, &st) < 0 || S_ISLNK(st.st_mode))
            continue;
        rc = s_grant_except(self, rs, child, rights, depth + 1);
    }
    closedir(d);
    return rc;
}

int af_confine_prepare(const af_confine_t *self, const char *job_dir, af_confine_child_t *out,
                       af_err_t *err)
{
    out->ruleset_fd = -1;
    out->nproc = self ? self->nproc : 0;
    out->fsize_bytes = self ? self->fsize_bytes : 0;
    if (!self || self->abi <= 0)
        return 0;
    struct landlock_ruleset_attr attr = {.handled_access_fs = self->handled};
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (rs < 0)
        return af_err_set(err, AF_ERR_CHILD, "landlock_create_ruleset: %s", strerror(errno));
    for (size_t i = 0; i < sizeof s_ro_roots / sizeof s_ro_roots[0]; i++) {
        char real[PATH_MAX];
        if (!realpath(s_ro_roots[i], real))
            continue;
        if (s_grant_except(self, rs, real, S_RO, 0) < 0)
            goto fail;
    }
    for (size_t i = 0; i < sizeof s_rw_devices / sizeof s_rw_devices[0]; i++)
        if (s_add_rule(rs, s_rw_devices[i],
                       LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                           LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV,
                       self->handled) < 0)
            goto fail;
    if (s_add_rule(rs, job_dir, self->handled, self->handled) < 0)
        goto fail;
    out->ruleset_fd = rs;
    return 0;
fail:;
    int e = errno;
    close(rs);
    return af_err_set(err, AF_ERR_CHILD, "cannot build the Landlock ruleset for %s: %s", job_dir,
                      strerror(e));
}

void af_confine_child_close(af_confine_child_t *c)
{
    if (c && c->ruleset_fd >= 0) {
        close(c->ruleset_fd);
        c->ruleset_fd = -1;
    }
}

int af_confine_apply_child(const af_confine_child_t *c, const char **why)
{
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) < 0)
        return *why = "setrlimit(RLIMIT_CORE)", -1;
    if (c->nproc) {
        rl.rlim_cur = rl.rlim_max = c->nproc;
        if (setrlimit(RLIMIT_NPROC, &rl) < 0)
            return *why = "setrlimit(RLIMIT_NPROC)", -1;
    }
    if (c->fsize_bytes) {
        rl.rlim_cur = rl.rlim_max = c->fsize_bytes;
        if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
            return *why = "setrlimit(RLIMIT_FSIZE)", -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return *why = "prctl(PR_SET_NO_NEW_PRIVS)", -1;
    if (c->ruleset_fd >= 0 && syscall(SYS_landlock_restrict_self, c->ruleset_fd, 0) < 0)
        return *why = "landlock_restrict_self", -1;
    return 0;
}
