/* test_archive.c -- pins context packing, layer writing, safe extraction
 * and tree removal. Hostile tars are built here with libarchive so each
 * test shows exactly which entry it smuggles in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "archive.h"

#include <archive.h> /* libarchive */
#include <archive_entry.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "digest.h"

#define MTIME 1700000000

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static char *s_tmpdir(void)
{
    char t[] = "/tmp/af_arc_XXXXXX";
    assert_non_null(mkdtemp(t));
    return strdup(t);
}

static char *s_path(const char *a, const char *b)
{
    char *r = NULL;
    assert_true(asprintf(&r, "%s/%s", a, b) > 0);
    return r;
}

static void s_put(const char *dir, const char *rel, const char *content, mode_t mode)
{
    char *p = s_path(dir, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    free(p);
}

static void s_mkdir(const char *dir, const char *rel, mode_t mode)
{
    char *p = s_path(dir, rel);
    assert_int_equal(mkdir(p, mode), 0);
    assert_int_equal(chmod(p, mode), 0);
    free(p);
}

static void s_symlink(const char *dir, const char *rel, const char *target)
{
    char *p = s_path(dir, rel);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

static char *s_slurp(const char *dir, const char *rel)
{
    char *p = s_path(dir, rel);
    FILE *f = fopen(p, "rb");
    free(p);
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void s_rm(char *path)
{
    assert_int_equal(af_remove_tree(path, NULL), 0);
    free(path);
}

typedef struct {
    char name[600];
    char link[256];
    char hardlink[256];
    unsigned type;
    mode_t perm;
    int64_t uid, gid, mtime, size;
    bool uname_set, gname_set, atime_set, ctime_set;
} s_ent_t;

/* Lists a tar (plain or gzip) into ENTS; returns the count. */
static size_t s_list(const char *tar, s_ent_t *ents, size_t max)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, tar, 10240), ARCHIVE_OK);
    size_t n = 0;
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true(n < max);
        s_ent_t *x = &ents[n++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", archive_entry_pathname(e));
        if (archive_entry_symlink(e))
            snprintf(x->link, sizeof x->link, "%s", archive_entry_symlink(e));
        if (archive_entry_hardlink(e))
            snprintf(x->hardlink, sizeof x->hardlink, "%s", archive_entry_hardlink(e));
        x->type = archive_entry_filetype(e);
        x->perm = archive_entry_perm(e);
        x->uid = archive_entry_uid(e);
        x->gid = archive_entry_gid(e);
        x->mtime = archive_entry_mtime(e);
        x->size = archive_entry_size(e);
        x->uname_set = archive_entry_uname(e) && *archive_entry_uname(e);
        x->gname_set = archive_entry_gname(e) && *archive_entry_gname(e);
        x->atime_set = archive_entry_atime_is_set(e);
        x->ctime_set = archive_entry_ctime_is_set(e);
    }
    archive_read_free(a);
    return n;
}

static const s_ent_t *s_find(const s_ent_t *ents, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ents[i].name, name))
            return &ents[i];
    return NULL;
}

/* Builds hostile tars entry by entry. */
typedef struct {
    struct archive *a;
} s_tar_t;

static void s_tar_open(s_tar_t *t, const char *path, bool gzip)
{
    t->a = archive_write_new();
    assert_int_equal(archive_write_set_format_pax_restricted(t->a), ARCHIVE_OK);
    if (gzip)
        assert_int_equal(archive_write_add_filter_gzip(t->a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(t->a, path), ARCHIVE_OK);
}

static void s_tar_add(s_tar_t *t, const char *name, unsigned type, mode_t perm, const char *data,
                      const char *symlink, const char *hardlink)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_mtime(e, MTIME, 0);
    if (type == AE_IFCHR || type == AE_IFBLK)
        archive_entry_set_rdev(e, makedev(1, 3));
    if (symlink)
        archive_entry_set_symlink(e, symlink);
    if (hardlink)
        archive_entry_set_hardlink(e, hardlink);
    size_t len = data ? strlen(data) : 0;
    archive_entry_set_size(e, (la_int64_t)len);
    assert_true(archive_write_header(t->a, e) >= ARCHIVE_WARN);
    if (len)
        assert_int_equal(archive_write_data(t->a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
}

static void s_tar_file(s_tar_t *t, const char *name, const char *data)
{
    s_tar_add(t, name, AE_IFREG, 0644, data, NULL, NULL);
}

static void s_tar_close(s_tar_t *t)
{
    assert_int_equal(archive_write_close(t->a), ARCHIVE_OK);
    archive_write_free(t->a);
}

/* Number of names in DIR; with ONLY, asserts that it is the one name. */
static size_t s_count_dir(const char *dir, const char *only)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (only && strcmp(de->d_name, only))
            fail_msg("unexpected \"%s\" in %s", de->d_name, dir);
        n++;
    }
    closedir(d);
    return n;
}

/* A test sandbox: PARENT/dest is the extraction target; the tar lives in
 * a separate directory so PARENT must end up holding only "dest". */
typedef struct {
    char *parent, *dest, *tardir, *tar;
} s_box_t;

static void s_box_new(s_box_t *b, const char *tarname)
{
    b->parent = s_tmpdir();
    b->dest = s_path(b->parent, "dest");
    assert_int_equal(mkdir(b->dest, 0700), 0);
    b->tardir = s_tmpdir();
    b->tar = s_path(b->tardir, tarname);
}

static void s_box_free(s_box_t *b)
{
    s_rm(b->parent);
    s_rm(b->tardir);
    free(b->dest);
    free(b->tar);
}

static void s_expect_reject(s_box_t *b, int code, const char *entry, const char *reason)
{
    af_err_t err = {0};
    int rc = af_archive_extract(b->tar, b->dest, NULL, &err);
    if (rc != code)
        fail_msg("extract: got %d (%s), want %d", rc, err.msg, code);
    if (entry && !strstr(err.msg, entry))
        fail_msg("message \"%s\" does not name \"%s\"", err.msg, entry);
    if (reason && !strstr(err.msg, reason))
        fail_msg("message \"%s\" does not say \"%s\"", err.msg, reason);
    s_count_dir(b->parent, "dest"); /* nothing escaped next to dest */
}

/* A small context with dirs, modes, a symlink and an empty file. */
static char *s_make_context(void)
{
    char *d = s_tmpdir();
    s_put(d, "Dockerfile", "FROM scratch\n", 0644);
    s_put(d, "run.sh", "#!/bin/sh\necho hi\n", 0755);
    s_put(d, "secret.key", "k", 0600);
    s_put(d, "empty", "", 0644);
    s_mkdir(d, "src", 0750);
    s_put(d, "src/main.c", "int main(void){return 0;}\n", 0644);
    s_mkdir(d, "src/sub", 0755);
    s_put(d, "src/sub/z.c", "z\n", 0644);
    s_put(d, "src-a", "dash sorts before slash\n", 0644);
    s_symlink(d, "link", "src/main.c");
    return d;
}

/* ------------------------------------------------------------------ */
/* pack_context                                                          */

static void pack_context_is_deterministic_and_ignores_disk_mtimes(void **state)
{
    char *ctx = s_make_context();
    char *out = s_tmpdir();
    char *t1 = s_path(out, "1.tar"), *t2 = s_path(out, "2.tar"), *t3 = s_path(out, "3.tar");
    af_pack_result_t r1, r2, r3;
    af_err_t err = {0};
    assert_int_equal(af_archive_pack_context(ctx, t1, MTIME, &r1, &err), 0);
    assert_int_equal(af_archive_pack_context(ctx, t2, MTIME, &r2, &err), 0);
    assert_string_equal(r1.digest, r2.digest);
    assert_true(af_digest_valid(r1.digest));
    /* move every mtime on disk: the tar must not change */
    struct timespec ts[2] = {{.tv_sec = 12345}, {.tv_sec = 12345}};
    const char *names[] = {"Dockerfile", "run.sh", "src", "src/main.c", "src/sub", "link"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = s_path(ctx, names[i]);
        assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
        free(p);
    }
    assert_int_equal(af_archive_pack_context(ctx, t3, MTIME, &r3, &err), 0);
    assert_string_equal(r1.digest, r3.digest);
    /* the digest is of the bytes on disk, and size/files add up */
    char fd[AF_DIGEST_STR_MAX];
    uint64_t size = 0;
    assert_int_equal(af_digest_file(t1, fd, &size, NULL), 0);
    assert_string_equal(fd, r1.digest);
    assert_int_equal(size, r1.size);
    assert_int_equal(r1.files, 10); /* 7 files/links + 2 dirs + empty */
    /* another mtime gives another digest */
    assert_int_equal(af_archive_pack_context(ctx, t3, MTIME + 1, &r3, &err), 0);
    assert_string_not_equal(r1.digest, r3.digest);
    free(t1);
    free(t2);
    free(t3);
    s_rm(out);
    s_rm(ctx);
}

static void pack_context_entries_sorted_with_fixed_owner_and_mtime(void **state)
{
    char *ctx = s_make_context();
    char *out = s_tmpdir();
    char *tar = s_path(out, "c.tar");
    af_pack_result_t r;
    assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r, NULL), 0);
    s_ent_t ents[32];
    size_t n = s_list(tar, ents, 32);
    const char *want[] = {"Dockerfile", "empty",      "link",     "run.sh",      "secret.key",
                          "src/",       "src/main.c", "src/sub/", "src/sub/z.c", "src-a"};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(ents[i].name, want[i]);
        assert_int_equal(ents[i].uid, 0);
        assert_int_equal(ents[i].gid, 0);
        assert_int_equal(ents[i].mtime, MTIME);
        assert_false(ents[i].uname_set);
        assert_false(ents[i].gname_set);
        assert_false(ents[i].atime_set);
        assert_false(ents[i].ctime_set);
    }
    assert_int_equal(s_find(ents, n, "run.sh")->perm, 0755);
    assert_int_equal(s_find(ents, n, "secret.key")->perm, 0600);
    assert_int_equal(s_find(ents, n, "src/")->perm, 0750);
    assert_int_equal(s_find(ents, n, "src/")->type, AE_IFDIR);
    assert_int_equal(s_find(ents, n, "src/main.c")->size, 26);
    free(tar);
    s_rm(out);
    s_rm(ctx);
}

static void pack_context_stores_symlinks_without_following(void **state)
{
    char *ctx = s_tmpdir();
    s_put(ctx, "target.txt", "t", 0644);
    s_symlink(ctx, "ln", "target.txt");
    s_symlink(ctx, "dangling", "nowhere/at/all");
    s_mkdir(ctx, "d", 0755);
    s_symlink(ctx, "dirlink", "d");
    char *out = s_tmpdir();
    char *tar = s_path(out, "c.tar");
    af_pack_result_t r;
    assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r, NULL), 0);
    s_ent_t ents[16];
    size_t n = s_list(tar, ents, 16);
    assert_int_equal(n, 5);
    const s_ent_t *e = s_find(ents, n, "ln");
    assert_non_null(e);
    assert_int_equal(e->type, AE_IFLNK);
    assert_string_equal(e->link, "target.txt");
    assert_int_equal(e->size, 0);
    assert_string_equal(s_find(ents, n, "dangling")->link, "nowhere/at/all");
    assert_int_equal(s_find(ents, n, "dirlink")->type, AE_IFLNK);
    free(tar);
    s_rm(out);
    s_rm(ctx);
}

/* The packer refuses what an agent's extraction refuses (one rule), so a
 * bad context is a usage error on the coordinator (issue 12, finding 4). */
static void pack_context_refuses_links_agents_would_refuse(void **state)
{
    (void)state;
    static const struct {
        const char *name, *target, *why;
    } bad[] = {
        {"abs", "/etc/passwd", "context: \"abs\": symlink target \"/etc/passwd\" is absolute"},
        {"up", "../x", "context: \"up\": symlink target \"../x\" escapes the context"},
        {"d/deep", "../../x", "context: \"d/deep\": symlink target \"../../x\" escapes"},
        {"d/twist", "a/../../x", "has \"..\" after a name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *ctx = s_tmpdir();
        s_mkdir(ctx, "d", 0755);
        s_symlink(ctx, "d/fine", "../d"); /* within its depth: accepted */
        s_symlink(ctx, bad[i].name, bad[i].target);
        char *out = s_tmpdir();
        char *tar = s_path(out, "c.tar");
        af_pack_result_t r;
        af_err_t err = {0};
        assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r, &err), AF_ERR_UNSAFE);
        if (!strstr(err.msg, bad[i].why))
            fail_msg("%s -> %s: \"%s\" lacks \"%s\"", bad[i].name, bad[i].target, err.msg,
                     bad[i].why);
        assert_int_equal(access(tar, F_OK), -1); /* no half-written output */
        free(tar);
        s_rm(out);
        s_rm(ctx);
    }
}

/* The fd form writes into an unnamed file the caller holds: same bytes and
 * digest as the path form. */
static void pack_context_into_an_unnamed_fd(void **state)
{
    (void)state;
    char *ctx = s_tmpdir();
    s_put(ctx, "a.txt", "alpha", 0644);
    s_symlink(ctx, "ln", "a.txt");
    char *out = s_tmpdir();
    char *tar = s_path(out, "c.tar");
    af_pack_result_t r1, r2;
    assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r1, NULL), 0);
    int fd = open(out, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(af_archive_pack_context_fd(ctx, fd, NULL, MTIME, NULL, 0, &r2, NULL), 0);
    assert_string_equal(r1.digest, r2.digest);
    assert_int_equal(r1.size, r2.size);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal((uint64_t)st.st_size, r2.size);
    close(fd);
    assert_int_equal(af_archive_pack_context_fd(ctx, -1, NULL, MTIME, NULL, 0, &r2, NULL),
                     AF_ERR_INVAL);
    free(tar);
    s_rm(out);
    s_rm(ctx);
}

/* build.inputs: ONLY narrows the tar to what the patterns match, after
 * .dockerignore (an ignored file stays out), with the recipe always in and
 * directories only as parents of what is kept. */
static void pack_context_only_keeps_what_the_patterns_match(void **state)
{
    (void)state;
    char *ctx = s_tmpdir();
    s_put(ctx, ".dockerignore", "assets/*.tmp\n", 0644);
    s_put(ctx, "archfarm.yaml", "build: {run: true}\n", 0644);
    s_mkdir(ctx, "bin", 0755);
    s_put(ctx, "bin/hello-amd64", "A", 0755);
    s_put(ctx, "bin/hello-arm64", "B", 0755);
    s_mkdir(ctx, "assets", 0750);
    s_put(ctx, "assets/a.bin", "x", 0644);
    s_put(ctx, "assets/b.tmp", "x", 0644);
    s_mkdir(ctx, "assets/sub", 0755);
    s_put(ctx, "assets/sub/c.bin", "x", 0644);
    s_mkdir(ctx, "docs", 0755);
    s_put(ctx, "docs/readme", "x", 0644);
    s_put(ctx, "weird*name", "x", 0644);
    s_put(ctx, "weirdXname", "x", 0644);
    char *out = s_tmpdir();
    const char *only[] = {"bin/hello-arm64", "assets", "weird\\*name"};
    int fd = open(out, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    af_pack_result_t r;
    af_err_t err = {0};
    assert_int_equal(af_archive_pack_context_fd(ctx, fd, NULL, MTIME, only, 3, &r, &err), 0);
    char *tar = s_path(out, "only.tar");
    FILE *f = fopen(tar, "wb");
    assert_non_null(f);
    char buf[4096];
    ssize_t got;
    for (off_t off = 0; (got = pread(fd, buf, sizeof buf, off)) > 0; off += got)
        assert_int_equal(fwrite(buf, 1, (size_t)got, f), (size_t)got);
    fclose(f);
    close(fd);
    s_ent_t ents[32];
    size_t n = s_list(tar, ents, 32);
    const char *want[] = {".dockerignore", "archfarm.yaml",   "assets/",
                          "assets/a.bin",  "assets/sub/",     "assets/sub/c.bin",
                          "bin/",          "bin/hello-arm64", "weird*name"};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(ents[i].name, want[i]);
    assert_int_equal(s_find(ents, n, "assets/")->perm, 0750);
    /* no pattern: only what is always included */
    fd = open(out, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    assert_int_equal(af_archive_pack_context_fd(ctx, fd, NULL, MTIME, only, 0, &r, &err), 0);
    assert_int_equal(r.files, 2); /* .dockerignore and archfarm.yaml */
    close(fd);
    /* a bad pattern is the recipe's error, named */
    const char *bad[] = {"[z-a"};
    fd = open(out, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    assert_int_not_equal(af_archive_pack_context_fd(ctx, fd, NULL, MTIME, bad, 1, &r, &err), 0);
    assert_non_null(strstr(err.msg, "build.inputs"));
    close(fd);
    free(tar);
    s_rm(out);
    s_rm(ctx);
}

static void pack_context_honours_dockerignore(void **state)
{
    char *ctx = s_tmpdir();
    s_put(ctx, ".dockerignore",
          "# build outputs\n"
          "*.log\n"
          "build\n"
          "!build/keep.txt\n"
          "secret/**\n"
          "**/*.tmp\n"
          "Dockerfile\n"
          ".dockerignore\n"
          "/node_modules/\n",
          0644);
    s_put(ctx, "Dockerfile", "FROM scratch\n", 0644);
    s_put(ctx, "a.log", "x", 0644);
    s_put(ctx, "main.c", "x", 0644);
    s_mkdir(ctx, "build", 0700);
    s_put(ctx, "build/out.o", "x", 0644);
    s_put(ctx, "build/keep.txt", "x", 0644);
    s_mkdir(ctx, "secret", 0755);
    s_put(ctx, "secret/key", "x", 0644);
    s_mkdir(ctx, "src", 0755);
    s_put(ctx, "src/x.tmp", "x", 0644);
    s_put(ctx, "src/x.c", "x", 0644);
    s_put(ctx, "src/debug.log", "x", 0644); /* *.log is root-only */
    s_mkdir(ctx, "node_modules", 0755);
    s_put(ctx, "node_modules/m.js", "x", 0644);
    char *out = s_tmpdir();
    char *tar = s_path(out, "c.tar");
    af_pack_result_t r;
    af_err_t err = {0};
    assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r, &err), 0);
    s_ent_t ents[32];
    size_t n = s_list(tar, ents, 32);
    const char *want[] = {".dockerignore",  "Dockerfile",    "build/",
                          "build/keep.txt", "main.c",        "secret/",
                          "src/",           "src/debug.log", "src/x.c"};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(ents[i].name, want[i]);
    /* the re-entered directory keeps its own mode */
    assert_int_equal(s_find(ents, n, "build/")->perm, 0700);
    assert_int_equal(r.files, n);
    free(tar);
    s_rm(out);
    s_rm(ctx);
}

static void pack_context_bad_dockerignore_fails_and_leaves_no_output(void **state)
{
    char *ctx = s_tmpdir();
    s_put(ctx, ".dockerignore", "ok\n!\n", 0644);
    char *out = s_tmpdir();
    char *tar = s_path(out, "c.tar");
    af_pack_result_t r;
    af_err_t err = {0};
    assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r, &err), AF_ERR_PARSE);
    assert_non_null(strstr(err.msg, ".dockerignore:2"));
    assert_int_equal(access(tar, F_OK), -1);
    free(tar);
    s_rm(out);
    s_rm(ctx);
}

static void pack_context_plain_names_are_plain_ustar(void **state)
{
    /* no pax record for short ASCII names: one header, one data block and
     * the two zero blocks, nothing padded */
    char *ctx = s_tmpdir();
    s_put(ctx, "a", "hi\n", 0644);
    char *out = s_tmpdir();
    char *tar = s_path(out, "c.tar");
    af_pack_result_t r;
    assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r, NULL), 0);
    assert_int_equal(r.size, 4 * 512);
    assert_int_equal(r.files, 1);
    free(tar);
    s_rm(out);
    s_rm(ctx);
}

static void pack_context_missing_dir_is_notfound(void **state)
{
    af_pack_result_t r;
    af_err_t err = {0};
    assert_int_equal(
        af_archive_pack_context("/nonexistent/ctx", "/tmp/af_never.tar", MTIME, &r, &err),
        AF_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/ctx"));
}

static void pack_context_skips_its_own_output_and_fifos(void **state)
{
    char *ctx = s_tmpdir();
    s_put(ctx, "a", "a", 0644);
    char *fifo = s_path(ctx, "pipe");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    char *tar = s_path(ctx, "ctx.tar");
    af_pack_result_t r;
    af_err_t err = {0};
    assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r, &err), 0);
    s_ent_t ents[8];
    size_t n = s_list(tar, ents, 8);
    assert_int_equal(n, 1);
    assert_string_equal(ents[0].name, "a");
    free(fifo);
    free(tar);
    s_rm(ctx);
}

/* Fails when the tar at PATH carries the clock: a pax atime/ctime record or
 * any of the epoch seconds FROM..TO (the packing ran between them), in a pax
 * record or a ustar octal field. Checks the bytes instead of packing twice a
 * second apart. */
static void s_assert_no_clock(const char *path, time_t from, time_t to)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = (size_t)1 << 20;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    assert_true(n > 0 && n < cap);
    assert_null(memmem(buf, n, "atime=", 6));
    assert_null(memmem(buf, n, "ctime=", 6));
    for (time_t t = from; t <= to; t++) {
        char dec[32], oct[32];
        int nd = snprintf(dec, sizeof dec, "%lld", (long long)t);
        int no = snprintf(oct, sizeof oct, "%llo", (long long)t);
        if (memmem(buf, n, dec, (size_t)nd) != NULL || memmem(buf, n, oct, (size_t)no) != NULL)
            fail_msg("%s carries the packing time %lld", path, (long long)t);
    }
    free(buf);
}

static void pack_context_long_and_utf8_names_round_trip(void **state)
{
    char *ctx = s_tmpdir();
    char longname[201];
    memset(longname, 'n', 200);
    longname[200] = '\0';
    s_put(ctx, longname, "long", 0644);
    s_put(ctx, "caf\xc3\xa9.txt", "utf8", 0644);
    s_put(ctx, "raw\xff.bin", "latin", 0644);
    char *out = s_tmpdir();
    char *t1 = s_path(out, "1.tar"), *t2 = s_path(out, "2.tar");
    af_pack_result_t r1, r2;
    af_err_t err = {0};
    time_t before = time(NULL);
    assert_int_equal(af_archive_pack_context(ctx, t1, MTIME, &r1, &err), 0);
    assert_int_equal(af_archive_pack_context(ctx, t2, MTIME, &r2, &err), 0);
    assert_string_equal(r1.digest, r2.digest);
    s_assert_no_clock(t1, before, time(NULL));
    char *dest = s_path(out, "x");
    assert_int_equal(mkdir(dest, 0700), 0);
    if (af_archive_extract(t1, dest, NULL, &err) != 0)
        fail_msg("extract: %s", err.msg);
    char *s = s_slurp(dest, longname);
    assert_non_null(s);
    assert_string_equal(s, "long");
    free(s);
    s = s_slurp(dest, "caf\xc3\xa9.txt");
    assert_non_null(s);
    free(s);
    s = s_slurp(dest, "raw\xff.bin");
    assert_non_null(s);
    assert_string_equal(s, "latin");
    free(s);
    free(dest);
    free(t1);
    free(t2);
    s_rm(out);
    s_rm(ctx);
}

static void pack_context_streams_a_large_file_in_bounded_memory(void **state)
{
    char *ctx = s_tmpdir();
    char *big = s_path(ctx, "big.bin");
    int fd = open(big, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    const uint64_t size = 256ull * 1024 * 1024;
    assert_int_equal(ftruncate(fd, (off_t)size), 0); /* sparse: cheap to make */
    assert_int_equal(pwrite(fd, "end", 3, (off_t)size - 3), 3);
    close(fd);
    char *out = s_tmpdir();
    char *tar = s_path(out, "c.tar");
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    af_pack_result_t r;
    af_err_t err = {0};
    assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r, &err), 0);
    getrusage(RUSAGE_SELF, &after);
    assert_true(r.size > size);
    long grown_kib = after.ru_maxrss - before.ru_maxrss;
    print_message("  peak RSS grew by %ld KiB packing %llu MiB\n", grown_kib,
                  (unsigned long long)(size >> 20));
    assert_true(grown_kib < 32 * 1024);
    free(big);
    free(tar);
    s_rm(out);
    s_rm(ctx);
}

static void pack_then_extract_reproduces_the_tree(void **state)
{
    char *ctx = s_make_context();
    char *out = s_tmpdir();
    char *tar = s_path(out, "c.tar");
    char *dest = s_path(out, "x");
    assert_int_equal(mkdir(dest, 0700), 0);
    af_pack_result_t r;
    af_err_t err = {0};
    assert_int_equal(af_archive_pack_context(ctx, tar, MTIME, &r, &err), 0);
    if (af_archive_extract(tar, dest, NULL, &err) != 0)
        fail_msg("extract: %s", err.msg);
    char *s = s_slurp(dest, "src/sub/z.c");
    assert_string_equal(s, "z\n");
    free(s);
    char *p = s_path(dest, "run.sh");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_int_equal(st.st_mtime, MTIME);
    free(p);
    p = s_path(dest, "link");
    char buf[64] = {0};
    assert_int_equal(readlink(p, buf, sizeof buf - 1), 10);
    assert_string_equal(buf, "src/main.c");
    free(p);
    free(tar);
    free(dest);
    s_rm(out);
    s_rm(ctx);
}

/* ------------------------------------------------------------------ */
/* write_layer                                                           */

static char *s_make_root(void)
{
    char *root = s_tmpdir();
    s_mkdir(root, "out", 0755);
    s_put(root, "out/hello",
          "\x7f"
          "ELF...",
          0755);
    s_mkdir(root, "conf", 0750);
    s_put(root, "conf/a.conf", "a=1\n", 0644);
    s_mkdir(root, "conf/sub", 0755);
    s_put(root, "conf/sub/b.conf", "b=2\n", 0600);
    s_symlink(root, "conf/current", "a.conf");
    return root;
}

static void s_layer(const char *root, const char *out, af_layer_result_t *r)
{
    char *hello = s_path(root, "out/hello"), *conf = s_path(root, "conf");
    const af_layer_entry_t entries[] = {
        {.src = hello, .dest = "/usr/local/bin/hello"},
        {.src = conf, .dest = "/etc/app/"},
    };
    af_err_t err = {0};
    if (af_archive_write_layer(root, entries, 2, out, MTIME, NULL, r, &err) != 0)
        fail_msg("write_layer: %s", err.msg);
    free(hello);
    free(conf);
}

/* Disk full while packing a layer: the error names ENOSPC and the path
 * (it said only "compress ... failed"). OUT is a symlink to /dev/full,
 * whose writes fail with ENOSPC; the writer removes OUT (the symlink, not
 * the device) on error. */
static void write_layer_on_a_full_disk_names_enospc_and_the_path(void **state)
{
    char *root = s_make_root();
    char *dir = s_tmpdir();
    char *out = s_path(dir, "layer.tar.gz");
    assert_int_equal(symlink("/dev/full", out), 0);
    char *hello = s_path(root, "out/hello");
    const af_layer_entry_t entries[] = {{.src = hello, .dest = "/usr/local/bin/hello"}};
    af_layer_result_t r;
    af_err_t err = {0};
    assert_int_not_equal(af_archive_write_layer(root, entries, 1, out, MTIME, NULL, &r, &err), 0);
    if (!strstr(err.msg, out) || !strstr(err.msg, "ENOSPC") || !strstr(err.msg, strerror(ENOSPC)))
        fail_msg("no ENOSPC and path in: %s", err.msg);
    struct stat st;
    assert_int_equal(stat("/dev/full", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    free(hello);
    free(out);
    s_rm(dir);
    s_rm(root);
}

static void write_layer_is_deterministic(void **state)
{
    char *root = s_make_root();
    char *out = s_tmpdir();
    char *l1 = s_path(out, "1.tgz"), *l2 = s_path(out, "2.tgz");
    af_layer_result_t r1, r2;
    s_layer(root, l1, &r1);
    struct timespec ts[2] = {{.tv_sec = 99}, {.tv_sec = 99}};
    char *p = s_path(root, "conf/a.conf");
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    free(p);
    s_layer(root, l2, &r2);
    assert_string_equal(r1.digest, r2.digest);
    assert_string_equal(r1.diff_id, r2.diff_id);
    assert_int_equal(r1.size, r2.size);
    assert_string_not_equal(r1.digest, r1.diff_id);
    char d[AF_DIGEST_STR_MAX];
    uint64_t size;
    assert_int_equal(af_digest_file(l1, d, &size, NULL), 0);
    assert_string_equal(d, r1.digest);
    assert_int_equal(size, r1.size);
    free(l1);
    free(l2);
    s_rm(out);
    s_rm(root);
}

static void write_layer_gzip_inflates_to_a_tar_whose_sha256_is_diff_id(void **state)
{
    char *root = s_make_root();
    char *out = s_tmpdir();
    char *l1 = s_path(out, "1.tgz");
    af_layer_result_t r;
    s_layer(root, l1, &r);
    FILE *f = fopen(l1, "rb");
    assert_non_null(f);
    unsigned char in[4096], outb[16384];
    size_t n = fread(in, 1, 10, f);
    assert_int_equal(n, 10);
    /* fixed gzip header: magic, deflate, no flags, mtime 0, OS unknown */
    assert_int_equal(in[0], 0x1f);
    assert_int_equal(in[1], 0x8b);
    assert_int_equal(in[2], 8);
    assert_int_equal(in[3], 0);
    assert_int_equal(in[4] | in[5] | in[6] | in[7], 0);
    assert_int_equal(in[9], 255);
    rewind(f);
    z_stream zs = {0};
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    af_digest_t *dg = af_digest_new();
    int zrc = Z_OK;
    while (zrc != Z_STREAM_END) {
        zs.avail_in = (uInt)fread(in, 1, sizeof in, f);
        assert_true(zs.avail_in > 0);
        zs.next_in = in;
        while (zs.avail_in > 0 && zrc != Z_STREAM_END) {
            zs.next_out = outb;
            zs.avail_out = sizeof outb;
            zrc = inflate(&zs, Z_NO_FLUSH);
            assert_true(zrc == Z_OK || zrc == Z_STREAM_END);
            assert_int_equal(af_digest_update(dg, outb, sizeof outb - zs.avail_out), 0);
        }
    }
    inflateEnd(&zs);
    fclose(f);
    char d[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_final(dg, d), 0);
    af_digest_destroy(&dg);
    assert_string_equal(d, r.diff_id);
    free(l1);
    s_rm(out);
    s_rm(root);
}

static void write_layer_lists_sorted_entries_with_parents_and_fixed_owner(void **state)
{
    char *root = s_make_root();
    char *out = s_tmpdir();
    char *l1 = s_path(out, "1.tgz");
    af_layer_result_t r;
    s_layer(root, l1, &r);
    s_ent_t ents[32];
    size_t n = s_list(l1, ents, 32);
    const char *want[] = {
        "etc/",           "etc/app/",           "etc/app/a.conf", "etc/app/current",
        "etc/app/sub/",   "etc/app/sub/b.conf", "usr/",           "usr/local/",
        "usr/local/bin/", "usr/local/bin/hello"};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(ents[i].name, want[i]);
        assert_int_equal(ents[i].uid, 0);
        assert_int_equal(ents[i].gid, 0);
        assert_int_equal(ents[i].mtime, MTIME);
        assert_false(ents[i].uname_set);
        assert_false(ents[i].gname_set);
    }
    assert_int_equal(s_find(ents, n, "usr/")->perm, 0755);
    assert_int_equal(s_find(ents, n, "usr/local/bin/")->perm, 0755);
    assert_int_equal(s_find(ents, n, "etc/app/")->perm, 0750); /* the source dir's mode */
    assert_int_equal(s_find(ents, n, "usr/local/bin/hello")->perm, 0755);
    assert_int_equal(s_find(ents, n, "etc/app/sub/b.conf")->perm, 0600);
    const s_ent_t *ln = s_find(ents, n, "etc/app/current");
    assert_int_equal(ln->type, AE_IFLNK);
    assert_string_equal(ln->link, "a.conf");
    free(l1);
    s_rm(out);
    s_rm(root);
}

static void write_layer_later_entry_wins_and_tree_at_root(void **state)
{
    char *root = s_make_root();
    s_put(root, "other", "other", 0644);
    char *out = s_tmpdir();
    char *l1 = s_path(out, "1.tgz");
    char *conf = s_path(root, "conf"), *other = s_path(root, "other");
    const af_layer_entry_t entries[] = {
        {.src = conf, .dest = "/"},
        {.src = other, .dest = "a.conf"}, /* relative dest is taken from / */
    };
    af_layer_result_t r;
    af_err_t err = {0};
    assert_int_equal(af_archive_write_layer(root, entries, 2, l1, MTIME, NULL, &r, &err), 0);
    free(conf);
    free(other);
    s_ent_t ents[16];
    size_t n = s_list(l1, ents, 16);
    assert_int_equal(n, 4);
    assert_string_equal(ents[0].name, "a.conf");
    assert_int_equal(ents[0].size, 5); /* "other" won */
    assert_string_equal(ents[1].name, "current");
    assert_string_equal(ents[2].name, "sub/");
    free(l1);
    s_rm(out);
    s_rm(root);
}

static void s_layer_reject(const char *root, const char *src, const char *dest, int code,
                           const char *needle)
{
    char *out = s_tmpdir();
    char *l1 = s_path(out, "1.tgz");
    char *full = src[0] == '/' ? strdup(src) : s_path(root, src);
    const af_layer_entry_t e = {.src = full, .dest = dest};
    af_layer_result_t r;
    af_err_t err = {0};
    int rc = af_archive_write_layer(root, &e, 1, l1, MTIME, NULL, &r, &err);
    if (rc != code)
        fail_msg("%s -> %s: got %d (%s), want %d", src, dest, rc, err.msg, code);
    if (needle && !strstr(err.msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
    assert_int_equal(access(l1, F_OK), -1); /* nothing left behind */
    free(full);
    free(l1);
    s_rm(out);
}

static void write_layer_rejects_sources_outside_root(void **state)
{
    char *top = s_tmpdir();
    char *root = s_path(top, "root");
    assert_int_equal(mkdir(root, 0755), 0);
    s_put(top, "outside.txt", "secret", 0644);
    s_put(root, "in.txt", "in", 0644);
    s_symlink(root, "esc", "../outside.txt");
    s_symlink(root, "etc", "/etc");
    s_symlink(root, "ok", "in.txt");
    char *rootsib = s_path(top, "root2"); /* prefix of root's name must not count */
    assert_int_equal(mkdir(rootsib, 0755), 0);
    s_put(rootsib, "x", "x", 0644);
    s_layer_reject(root, "../outside.txt", "/x", AF_ERR_UNSAFE, "../outside.txt");
    s_layer_reject(root, "esc", "/x", AF_ERR_UNSAFE, "/esc\"");
    s_layer_reject(root, "etc/passwd", "/x", AF_ERR_UNSAFE, "etc/passwd");
    s_layer_reject(root, "/etc/passwd", "/x", AF_ERR_UNSAFE, "/etc/passwd");
    s_layer_reject(root, "../root2/x", "/x", AF_ERR_UNSAFE, "root2");
    s_layer_reject(root, "in.txt", "/a/../../x", AF_ERR_UNSAFE, "..");
    s_layer_reject(root, "missing", "/x", AF_ERR_NOTFOUND, "missing");
    s_layer_reject(root, "in.txt", "/", AF_ERR_INVAL, "in.txt");
    /* a symlink source inside the root is followed to its file */
    char *out = s_tmpdir();
    char *l1 = s_path(out, "1.tgz");
    char *ok = s_path(root, "ok");
    const af_layer_entry_t e = {.src = ok, .dest = "/ok"};
    af_layer_result_t r;
    assert_int_equal(af_archive_write_layer(root, &e, 1, l1, MTIME, NULL, &r, NULL), 0);
    free(ok);
    s_ent_t ents[4];
    assert_int_equal(s_list(l1, ents, 4), 1);
    assert_int_equal(ents[0].type, AE_IFREG);
    assert_int_equal(ents[0].size, 2);
    free(l1);
    s_rm(out);
    free(root);
    free(rootsib);
    s_rm(top);
}

/* A tree of DEPTH nested directories "d" under ROOT/NAME. */
static void s_nest(const char *root, const char *name, int depth)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    for (int i = 0; i <= depth; i++) {
        const char *nm = i == 0 ? name : "d";
        assert_int_equal(mkdirat(fd, nm, 0755), 0);
        int next = openat(fd, nm, O_RDONLY | O_DIRECTORY);
        assert_true(next >= 0);
        close(fd);
        fd = next;
    }
    close(fd);
}

static void write_layer_rejects_trees_nested_deeper_than_the_limit(void **state)
{
    char *top = s_tmpdir();
    s_nest(top, "deep", AF_LAYER_MAX_DEPTH + 1);
    s_layer_reject(top, "deep", "/deep", AF_ERR_TOOBIG, "nested deeper than");
    /* at the limit it still works */
    s_nest(top, "ok", AF_LAYER_MAX_DEPTH);
    char *out = s_tmpdir();
    char *l1 = s_path(out, "1.tgz");
    char *src = s_path(top, "ok");
    const af_layer_entry_t e = {.src = src, .dest = "/ok"};
    af_layer_result_t r;
    af_err_t err = {0};
    if (af_archive_write_layer(top, &e, 1, l1, MTIME, NULL, &r, &err) != 0)
        fail_msg("a tree %d deep: %s", AF_LAYER_MAX_DEPTH, err.msg);
    free(src);
    free(l1);
    s_rm(out);
    s_rm(top);
}

static void write_layer_rejects_file_above_another_file(void **state)
{
    char *root = s_make_root();
    char *out = s_tmpdir();
    char *l1 = s_path(out, "1.tgz");
    char *hello = s_path(root, "out/hello");
    const af_layer_entry_t entries[] = {
        {.src = hello, .dest = "/bin/x/y"},
        {.src = hello, .dest = "/bin/x"},
    };
    af_layer_result_t r;
    af_err_t err = {0};
    assert_int_equal(af_archive_write_layer(root, entries, 2, l1, MTIME, NULL, &r, &err),
                     AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "/bin/x/y"));
    free(hello);
    free(l1);
    s_rm(out);
    s_rm(root);
}

/* ------------------------------------------------------------------ */
/* extract                                                               */

static void extract_happy_path_nested_dirs_symlink_hardlink(void **state)
{
    s_box_t b;
    s_box_new(&b, "ok.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_add(&t, "./", AE_IFDIR, 0755, NULL, NULL, NULL);
    s_tar_add(&t, "./a/", AE_IFDIR, 0750, NULL, NULL, NULL);
    s_tar_add(&t, "a/b/", AE_IFDIR, 0755, NULL, NULL, NULL);
    s_tar_file(&t, "a/b/c.txt", "hello\n");
    s_tar_add(&t, "a/link", AE_IFLNK, 0777, NULL, "b/c.txt", NULL);
    s_tar_add(&t, "a/b/up", AE_IFLNK, 0777, NULL, "../../a/b/c.txt", NULL);
    s_tar_add(&t, "a/b/hard", AE_IFREG, 0644, NULL, NULL, "a/b/c.txt");
    s_tar_file(&t, "x/y/z/deep.txt", "implicit parents\n");
    s_tar_add(&t, "suid", AE_IFREG, 04755, "s", NULL, NULL);
    s_tar_file(&t, "dup", "first");
    s_tar_file(&t, "dup", "second");
    s_tar_close(&t);
    af_err_t err = {0};
    if (af_archive_extract(b.tar, b.dest, NULL, &err) != 0)
        fail_msg("extract: %s", err.msg);
    char *s = s_slurp(b.dest, "a/b/c.txt");
    assert_string_equal(s, "hello\n");
    free(s);
    s = s_slurp(b.dest, "a/link");
    assert_string_equal(s, "hello\n");
    free(s);
    s = s_slurp(b.dest, "a/b/up");
    assert_string_equal(s, "hello\n");
    free(s);
    s = s_slurp(b.dest, "x/y/z/deep.txt");
    assert_string_equal(s, "implicit parents\n");
    free(s);
    s = s_slurp(b.dest, "dup");
    assert_string_equal(s, "second");
    free(s);
    struct stat s1, s2;
    char *p1 = s_path(b.dest, "a/b/c.txt"), *p2 = s_path(b.dest, "a/b/hard");
    assert_int_equal(stat(p1, &s1), 0);
    assert_int_equal(stat(p2, &s2), 0);
    assert_int_equal(s1.st_ino, s2.st_ino);
    assert_int_equal(s1.st_nlink, 2);
    free(p1);
    free(p2);
    p1 = s_path(b.dest, "suid");
    assert_int_equal(stat(p1, &s1), 0);
    assert_int_equal(s1.st_mode & 07777, 0755); /* setuid dropped */
    free(p1);
    p1 = s_path(b.dest, "a");
    assert_int_equal(stat(p1, &s1), 0);
    assert_int_equal(s1.st_mode & 07777, 0750);
    free(p1);
    s_count_dir(b.parent, "dest");
    s_box_free(&b);
}

static void extract_gzip_tar_works(void **state)
{
    s_box_t b;
    s_box_new(&b, "ok.tar.gz");
    s_tar_t t;
    s_tar_open(&t, b.tar, true);
    s_tar_file(&t, "d/f", "gz");
    s_tar_close(&t);
    af_err_t err = {0};
    if (af_archive_extract(b.tar, b.dest, NULL, &err) != 0)
        fail_msg("extract: %s", err.msg);
    char *s = s_slurp(b.dest, "d/f");
    assert_string_equal(s, "gz");
    free(s);
    s_box_free(&b);
}

static void extract_rejects_dotdot_path(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_file(&t, "../x", "evil");
    s_tar_close(&t);
    af_err_t err = {0};
    assert_int_equal(af_archive_extract(b.tar, b.dest, NULL, &err), AF_ERR_UNSAFE);
    assert_string_equal(err.msg, "context: entry \"../x\": path escapes the context");
    s_count_dir(b.parent, "dest");
    s_box_free(&b);
}

static void extract_rejects_absolute_path(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    char *victim = s_path(b.parent, "abs");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_file(&t, victim, "evil"); /* an absolute path right next to dest */
    s_tar_close(&t);
    s_expect_reject(&b, AF_ERR_UNSAFE, victim, "absolute path");
    free(victim);
    s_box_free(&b);
}

static void extract_rejects_inner_dotdot(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_file(&t, "a/../../x", "evil");
    s_tar_close(&t);
    s_expect_reject(&b, AF_ERR_UNSAFE, "a/../../x", "escapes the context");
    s_box_free(&b);
}

static void extract_rejects_symlink_to_etc_then_write_through_it(void **state)
{
    struct stat before, after;
    assert_int_equal(stat("/etc/passwd", &before), 0);
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_add(&t, "link", AE_IFLNK, 0777, NULL, "/etc", NULL);
    s_tar_file(&t, "link/passwd", "root::0:0::/:/bin/sh\n");
    s_tar_close(&t);
    s_expect_reject(&b, AF_ERR_UNSAFE, "link", "absolute");
    assert_int_equal(stat("/etc/passwd", &after), 0);
    assert_int_equal(before.st_size, after.st_size);
    assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    s_box_free(&b);
}

static void extract_rejects_absolute_symlink_target(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_add(&t, "up", AE_IFLNK, 0777, NULL, b.parent, NULL);
    s_tar_file(&t, "up/planted", "evil");
    s_tar_close(&t);
    s_expect_reject(&b, AF_ERR_UNSAFE, "\"up\"", "is absolute");
    s_box_free(&b);
}

static void extract_rejects_relative_symlink_escaping(void **state)
{
    const char *targets[] = {"..", "../../dest2", "a/../../..", "x/../y"};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        s_box_t b;
        s_box_new(&b, "t.tar");
        s_tar_t t;
        s_tar_open(&t, b.tar, false);
        s_tar_add(&t, "sub/", AE_IFDIR, 0755, NULL, NULL, NULL);
        s_tar_add(&t, i == 0 ? "ln" : "sub/ln", AE_IFLNK, 0777, NULL, i == 0 ? ".." : targets[i],
                  NULL);
        s_tar_file(&t, i == 0 ? "ln/planted" : "sub/ln/planted", "evil");
        s_tar_close(&t);
        s_expect_reject(&b, AF_ERR_UNSAFE, "ln", "symlink target");
        s_box_free(&b);
    }
}

static void extract_never_writes_through_an_inside_symlink(void **state)
{
    /* "ln -> ." is harmless on its own, but "ln/x" must not be created
     * through it: paths are walked with O_NOFOLLOW */
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_add(&t, "ln", AE_IFLNK, 0777, NULL, ".", NULL);
    s_tar_file(&t, "ln/x", "through");
    s_tar_close(&t);
    s_expect_reject(&b, AF_ERR_UNSAFE, "ln/x", "through the symlink");
    s_box_free(&b);
}

static void extract_rejects_hardlink_outside_or_unextracted(void **state)
{
    struct {
        const char *target, *why;
    } cases[] = {
        {"../outside", "escapes the context"},
        {"/etc/passwd", "absolute"},
        {"never/extracted", "was not extracted"},
        {"ln", "not an extracted regular file"},
        {"ln/passwd", "symlink"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_box_t b;
        s_box_new(&b, "t.tar");
        s_tar_t t;
        s_tar_open(&t, b.tar, false);
        s_tar_add(&t, "ln", AE_IFLNK, 0777, NULL, "sub", NULL);
        s_tar_add(&t, "hard", AE_IFREG, 0644, NULL, NULL, cases[i].target);
        s_tar_close(&t);
        s_expect_reject(&b, AF_ERR_UNSAFE, "hard", cases[i].why);
        s_box_free(&b);
    }
}

static void extract_rejects_devices_fifos_and_sockets(void **state)
{
    struct {
        unsigned type;
        const char *why;
    } cases[] = {
        {AE_IFCHR, "character devices are not allowed"},
        {AE_IFBLK, "block devices are not allowed"},
        {AE_IFIFO, "FIFOs are not allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_box_t b;
        s_box_new(&b, "t.tar");
        s_tar_t t;
        s_tar_open(&t, b.tar, false);
        s_tar_add(&t, "dev/thing", cases[i].type, 0666, NULL, NULL, NULL);
        s_tar_close(&t);
        s_expect_reject(&b, AF_ERR_UNSAFE, "dev/thing", cases[i].why);
        s_box_free(&b);
    }
}

static void extract_enforces_file_count(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    for (int i = 0; i < 11; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%02d", i);
        s_tar_file(&t, name, "x");
    }
    s_tar_close(&t);
    af_extract_limits_t lim = {.max_files = 10};
    af_err_t err = {0};
    assert_int_equal(af_archive_extract(b.tar, b.dest, &lim, &err), AF_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "f10"));
    assert_non_null(strstr(err.msg, "more than 10 entries"));
    s_count_dir(b.parent, "dest");
    assert_int_equal(s_count_dir(b.dest, NULL), 10);
    s_box_free(&b);

    /* implicit parent directories count too */
    s_box_new(&b, "t.tar");
    s_tar_open(&t, b.tar, false);
    s_tar_file(&t, "a/b/c/d/e/f/g/h/i/j/k/l", "x");
    s_tar_close(&t);
    assert_int_equal(af_archive_extract(b.tar, b.dest, &lim, &err), AF_ERR_TOOBIG);
    s_box_free(&b);
}

static void extract_enforces_byte_limit(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_file(&t, "a", "0123456789");
    s_tar_file(&t, "b", "0123456789");
    s_tar_close(&t);
    af_extract_limits_t lim = {.max_bytes = 15};
    af_err_t err = {0};
    assert_int_equal(af_archive_extract(b.tar, b.dest, &lim, &err), AF_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "\"b\""));
    assert_null(s_slurp(b.dest, "b")); /* refused before writing */
    s_count_dir(b.parent, "dest");
    s_box_free(&b);
}

static void extract_rejects_overlong_path(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    char *name = malloc(AF_CONTEXT_MAX_PATH + 10);
    for (int i = 0; i < AF_CONTEXT_MAX_PATH + 9; i++)
        name[i] = (i % 100 == 99) ? '/' : 'p';
    name[AF_CONTEXT_MAX_PATH + 9] = '\0';
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_file(&t, name, "x");
    s_tar_close(&t);
    s_expect_reject(&b, AF_ERR_TOOBIG, NULL, "longer than");
    free(name);
    s_box_free(&b);
}

static void s_write_raw(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void extract_garbage_is_parse_error(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    s_write_raw(b.tar, junk, sizeof junk);
    af_err_t err = {0};
    assert_int_equal(af_archive_extract(b.tar, b.dest, NULL, &err), AF_ERR_PARSE);
    assert_non_null(strstr(err.msg, b.tar));
    s_count_dir(b.parent, "dest");
    s_box_free(&b);
}

static void extract_truncated_tar_is_parse_error(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s_tar_file(&t, "big", big);
    s_tar_close(&t);
    assert_int_equal(truncate(b.tar, 1500), 0); /* header + part of the data */
    af_err_t err = {0};
    assert_int_equal(af_archive_extract(b.tar, b.dest, NULL, &err), AF_ERR_PARSE);
    s_count_dir(b.parent, "dest");
    s_box_free(&b);
}

static void extract_truncated_gzip_is_parse_error(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar.gz");
    s_tar_t t;
    s_tar_open(&t, b.tar, true);
    for (int i = 0; i < 50; i++) {
        char name[16], data[64];
        snprintf(name, sizeof name, "f%d", i);
        snprintf(data, sizeof data, "%d-%d-%d", i, i * i, i * 31);
        s_tar_file(&t, name, data);
    }
    s_tar_close(&t);
    struct stat st;
    assert_int_equal(stat(b.tar, &st), 0);
    assert_int_equal(truncate(b.tar, st.st_size / 2), 0);
    af_err_t err = {0};
    assert_int_equal(af_archive_extract(b.tar, b.dest, NULL, &err), AF_ERR_PARSE);
    s_box_free(&b);
}

static void extract_empty_file_is_an_empty_context(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_write_raw(b.tar, "", 0);
    af_err_t err = {0};
    assert_int_equal(af_archive_extract(b.tar, b.dest, NULL, &err), 0);
    assert_int_equal(s_count_dir(b.dest, NULL), 0);
    s_box_free(&b);
}

static void extract_refuses_non_empty_or_missing_dest(void **state)
{
    s_box_t b;
    s_box_new(&b, "t.tar");
    s_tar_t t;
    s_tar_open(&t, b.tar, false);
    s_tar_file(&t, "f", "x");
    s_tar_close(&t);
    s_put(b.dest, "already", "x", 0644);
    af_err_t err = {0};
    assert_int_equal(af_archive_extract(b.tar, b.dest, NULL, &err), AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "not empty"));
    char *missing = s_path(b.parent, "missing");
    assert_int_equal(af_archive_extract(b.tar, missing, NULL, &err), AF_ERR_NOTFOUND);
    free(missing);
    char *notar = s_path(b.tardir, "none.tar");
    char *dest2 = s_path(b.parent, "d2");
    assert_int_equal(mkdir(dest2, 0700), 0);
    assert_int_equal(af_archive_extract(notar, dest2, NULL, &err), AF_ERR_NOTFOUND);
    free(notar);
    free(dest2);
    s_box_free(&b);
}

static void extract_fixtures_from_other_tar_writers(void **state)
{
    /* made by GNU tar (gnu format, long name) and Python's tarfile (pax,
     * gzip), see data/archive/README */
    const char *data = getenv("AF_TEST_DATA");
    if (!data)
        data = "data";
    const char *fixtures[] = {"gnu-longname.tar", "python-pax.tar.gz"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        char *dir = s_path(data, "archive");
        char *tar = s_path(dir, fixtures[i]);
        char *out = s_tmpdir();
        af_err_t err = {0};
        if (af_archive_extract(tar, out, NULL, &err) != 0)
            fail_msg("%s: %s", fixtures[i], err.msg);
        char *s = s_slurp(out, "ctx/hello.txt");
        assert_non_null(s);
        assert_string_equal(s, "hello\n");
        free(s);
        s_rm(out);
        free(tar);
        free(dir);
    }
}

static void extract_fixture_with_escaping_entry_is_rejected(void **state)
{
    const char *data = getenv("AF_TEST_DATA");
    if (!data)
        data = "data";
    char *dir = s_path(data, "archive");
    char *tar = s_path(dir, "evil-dotdot.tar");
    char *parent = s_tmpdir();
    char *dest = s_path(parent, "dest");
    assert_int_equal(mkdir(dest, 0700), 0);
    af_err_t err = {0};
    assert_int_equal(af_archive_extract(tar, dest, NULL, &err), AF_ERR_UNSAFE);
    assert_non_null(strstr(err.msg, "../evil.txt"));
    s_count_dir(parent, "dest");
    free(dest);
    s_rm(parent);
    free(tar);
    free(dir);
}

/* ------------------------------------------------------------------ */
/* remove_tree                                                           */

static void remove_tree_does_not_follow_symlinks(void **state)
{
    char *keep = s_tmpdir();
    s_put(keep, "precious", "p", 0644);
    char *victim = s_tmpdir();
    s_mkdir(victim, "a", 0755);
    s_mkdir(victim, "a/b", 0555); /* read-only dirs are emptied too */
    s_put(victim, "a/b/f", "f", 0444);
    s_symlink(victim, "a/out", keep);
    s_symlink(victim, "a/b/outfile", "../../../precious");
    char *fifo = s_path(victim, "a/fifo");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    free(fifo);
    af_err_t err = {0};
    assert_int_equal(af_remove_tree(victim, &err), 0);
    assert_int_equal(access(victim, F_OK), -1);
    char *s = s_slurp(keep, "precious");
    assert_string_equal(s, "p");
    free(s);
    s_rm(keep);
    free(victim);
}

static void remove_tree_absent_path_and_plain_file_and_link(void **state)
{
    assert_int_equal(af_remove_tree("/nonexistent/af/tree", NULL), 0);
    char *d = s_tmpdir();
    s_put(d, "file", "x", 0644);
    s_mkdir(d, "dir", 0755);
    s_put(d, "dir/kept", "x", 0644);
    s_symlink(d, "dirlink", "dir");
    char *p = s_path(d, "file");
    assert_int_equal(af_remove_tree(p, NULL), 0);
    assert_int_equal(access(p, F_OK), -1);
    free(p);
    p = s_path(d, "dirlink");
    assert_int_equal(af_remove_tree(p, NULL), 0); /* the link, not its target */
    free(p);
    char *s = s_slurp(d, "dir/kept");
    assert_non_null(s);
    free(s);
    s_rm(d);
}

static void remove_tree_handles_trees_deeper_than_the_fd_table(void **state)
{
    char *d = s_tmpdir();
    struct rlimit old, low = {.rlim_cur = 64, .rlim_max = 0};
    getrlimit(RLIMIT_NOFILE, &old);
    low.rlim_max = old.rlim_max;
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(mkdirat(fd, "d", 0755), 0);
        int n = openat(fd, "d", O_RDONLY | O_DIRECTORY);
        assert_true(n >= 0);
        int f = openat(n, "file", O_WRONLY | O_CREAT, 0644);
        close(f);
        close(fd);
        fd = n;
    }
    close(fd);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    af_err_t err = {0};
    int rc = af_remove_tree(d, &err);
    setrlimit(RLIMIT_NOFILE, &old);
    if (rc != 0)
        fail_msg("remove: %s", err.msg);
    assert_int_equal(access(d, F_OK), -1);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pack_context_streams_a_large_file_in_bounded_memory),
        cmocka_unit_test(pack_context_is_deterministic_and_ignores_disk_mtimes),
        cmocka_unit_test(pack_context_entries_sorted_with_fixed_owner_and_mtime),
        cmocka_unit_test(pack_context_stores_symlinks_without_following),
        cmocka_unit_test(pack_context_refuses_links_agents_would_refuse),
        cmocka_unit_test(pack_context_into_an_unnamed_fd),
        cmocka_unit_test(pack_context_honours_dockerignore),
        cmocka_unit_test(pack_context_only_keeps_what_the_patterns_match),
        cmocka_unit_test(pack_context_bad_dockerignore_fails_and_leaves_no_output),
        cmocka_unit_test(pack_context_plain_names_are_plain_ustar),
        cmocka_unit_test(pack_context_missing_dir_is_notfound),
        cmocka_unit_test(pack_context_skips_its_own_output_and_fifos),
        cmocka_unit_test(pack_context_long_and_utf8_names_round_trip),
        cmocka_unit_test(pack_then_extract_reproduces_the_tree),
        cmocka_unit_test(write_layer_on_a_full_disk_names_enospc_and_the_path),
        cmocka_unit_test(write_layer_is_deterministic),
        cmocka_unit_test(write_layer_gzip_inflates_to_a_tar_whose_sha256_is_diff_id),
        cmocka_unit_test(write_layer_lists_sorted_entries_with_parents_and_fixed_owner),
        cmocka_unit_test(write_layer_later_entry_wins_and_tree_at_root),
        cmocka_unit_test(write_layer_rejects_sources_outside_root),
        cmocka_unit_test(write_layer_rejects_trees_nested_deeper_than_the_limit),
        cmocka_unit_test(write_layer_rejects_file_above_another_file),
        cmocka_unit_test(extract_happy_path_nested_dirs_symlink_hardlink),
        cmocka_unit_test(extract_gzip_tar_works),
        cmocka_unit_test(extract_rejects_dotdot_path),
        cmocka_unit_test(extract_rejects_absolute_path),
        cmocka_unit_test(extract_rejects_inner_dotdot),
        cmocka_unit_test(extract_rejects_symlink_to_etc_then_write_through_it),
        cmocka_unit_test(extract_rejects_absolute_symlink_target),
        cmocka_unit_test(extract_rejects_relative_symlink_escaping),
        cmocka_unit_test(extract_never_writes_through_an_inside_symlink),
        cmocka_unit_test(extract_rejects_hardlink_outside_or_unextracted),
        cmocka_unit_test(extract_rejects_devices_fifos_and_sockets),
        cmocka_unit_test(extract_enforces_file_count),
        cmocka_unit_test(extract_enforces_byte_limit),
        cmocka_unit_test(extract_rejects_overlong_path),
        cmocka_unit_test(extract_garbage_is_parse_error),
        cmocka_unit_test(extract_truncated_tar_is_parse_error),
        cmocka_unit_test(extract_truncated_gzip_is_parse_error),
        cmocka_unit_test(extract_empty_file_is_an_empty_context),
        cmocka_unit_test(extract_refuses_non_empty_or_missing_dest),
        cmocka_unit_test(extract_fixtures_from_other_tar_writers),
        cmocka_unit_test(extract_fixture_with_escaping_entry_is_rejected),
        cmocka_unit_test(remove_tree_does_not_follow_symlinks),
        cmocka_unit_test(remove_tree_absent_path_and_plain_file_and_link),
        cmocka_unit_test(remove_tree_handles_trees_deeper_than_the_fd_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
