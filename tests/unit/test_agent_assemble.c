/* test_agent_assemble.c -- agent/assemble (in a worker thread, as the
 * agent runs it) against a REAL registry: Debian's docker-registry on a
 * free loopback port with a temp storage dir. A scratch image with one
 * copied file; the same inputs giving the same digest; a base image given
 * as a tagged index, resolved to the slice's platform, its layer mounted
 * into the target repository and listed first; a base with no manifest for
 * the platform; cancelling. Skipped when docker-registry is missing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "archive.h"
#include "assemble.h"
#include "digest.h"
#include "oci.h"
#include "recipe.h"
#include "registry.h"
#include "worker.h"

typedef struct {
    char dir[256];
    char host[64];
    pid_t pid;
} s_registry_t;

static s_registry_t s_reg;

typedef struct {
    bool done;
    int code;
    char message[AF_ERRMSG_MAX];
    char outputs[4][256];
    size_t n_outputs;
    char logs[16384];
} s_result_t;

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static af_registry_t *s_client(void)
{
    af_registry_opts_t o = {.insecure = true};
    af_registry_t *r = af_registry_new(s_reg.host, &o, NULL);
    assert_non_null(r);
    return r;
}

static int s_group_setup(void **state)
{
    if (system("command -v docker-registry >/dev/null 2>&1") != 0)
        return 0; /* tests skip */
    snprintf(s_reg.dir, sizeof s_reg.dir, "/tmp/af-test-assemble-XXXXXX");
    if (!mkdtemp(s_reg.dir))
        return -1;
    int port = s_free_port();
    if (port < 0)
        return -1;
    snprintf(s_reg.host, sizeof s_reg.host, "127.0.0.1:%d", port);
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s/config.yml", s_reg.dir);
    FILE *f = fopen(cfg, "w");
    if (!f)
        return -1;
    fprintf(f,
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n  filesystem:\n    rootdirectory: %s/storage\nhttp:\n  addr: %s\n",
            s_reg.dir, s_reg.host);
    fclose(f);
    s_reg.pid = fork();
    if (s_reg.pid == 0) {
        char logp[300];
        snprintf(logp, sizeof logp, "%s/registry.log", s_reg.dir);
        if (!freopen(logp, "w", stdout) || !freopen(logp, "a", stderr))
            _exit(126);
        execlp("docker-registry", "docker-registry", "serve", cfg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        af_registry_t *r = s_client();
        int rc = af_registry_ping(r, NULL);
        af_registry_destroy(&r);
        if (rc == 0)
            return 0;
        usleep(100000);
    }
    return -1;
}

static int s_group_teardown(void **state)
{
    if (s_reg.pid > 0) {
        kill(s_reg.pid, SIGTERM);
        waitpid(s_reg.pid, NULL, 0);
    }
    if (s_reg.dir[0] && af_remove_tree(s_reg.dir, NULL) < 0)
        fprintf(stderr, "cleanup of %s failed\n", s_reg.dir);
    return 0;
}

static void s_on_log(void *arg, const char *line)
{
    s_result_t *r = arg;
    size_t off = strlen(r->logs);
    snprintf(r->logs + off, sizeof r->logs - off, "%s\n", line);
}

static void s_on_done(void *arg, int code, const char *message, const char *const *outputs,
                      size_t n)
{
    s_result_t *r = arg;
    r->done = true;
    r->code = code;
    snprintf(r->message, sizeof r->message, "%s", message);
    for (size_t i = 0; i < n && i < 4; i++)
        snprintf(r->outputs[i], sizeof r->outputs[i], "%s", outputs[i]);
    r->n_outputs = n;
}

static int s_until_done(zloop_t *loop, int id, void *arg)
{
    return ((s_result_t *)arg)->done ? -1 : 0;
}

static int s_cancel_soon(zloop_t *loop, int id, void *arg)
{
    af_worker_cancel(arg);
    return 0;
}

/* Builds the args: context CTX_DIR holding out/hi, recipe YAML. */
static af_assemble_args_t *s_args(const char *tmp, const char *yaml, const char *repo,
                                  const char *platform)
{
    af_assemble_args_t *a = af_assemble_args_new();
    assert_non_null(a);
    char path[512];
    snprintf(path, sizeof path, "%s/ctx/out", tmp);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s %s/job && printf 'hi\\n' > %s/hi", path, tmp, path);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/ctx", tmp);
    a->ctx_dir = strdup(path);
    snprintf(path, sizeof path, "%s/job", tmp);
    a->job_dir = strdup(path);
    a->job = strdup("t-0/1");
    a->node = strdup("test");
    snprintf(path, sizeof path, "%s/%s", s_reg.host, repo);
    a->target.repository = strdup(path);
    assert_int_equal(af_platform_parse(platform, &a->platform, NULL), 0);
    a->source_date_epoch = 1700000000;
    a->target.insecure = true;
    a->target.password = strdup("not-logged-anywhere");
    af_err_t err;
    af_err_clear(&err);
    a->recipe = af_recipe_load_buffer("archfarm.yaml", yaml, strlen(yaml), &err);
    if (!a->recipe)
        fail_msg("recipe: %s", err.msg);
    return a;
}

static void s_run(af_assemble_args_t *a, s_result_t *r, bool cancel)
{
    memset(r, 0, sizeof *r);
    zloop_t *loop = zloop_new();
    af_worker_t *w =
        af_worker_new(loop, af_assemble_run, a, af_assemble_args_free, s_on_log, s_on_done, r);
    assert_non_null(w);
    if (cancel)
        af_worker_cancel(w);
    zloop_timer(loop, 10, 0, s_until_done, r);
    zloop_start(loop);
    assert_true(r->done);
    af_worker_destroy(&w);
    zloop_destroy(&loop);
}

static char *s_tmpdir(void)
{
    char *t = strdup("/tmp/af-test-asm-XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static void s_rmtmp(char *t)
{
    assert_int_equal(af_remove_tree(t, NULL), 0);
    free(t);
}

static af_oci_doc_t *s_get_manifest(const char *repo, const char *ref, char **body_p, size_t *len_p)
{
    af_registry_t *c = s_client();
    char *mt = NULL;
    char d[AF_DIGEST_STR_MAX];
    af_err_t err;
    af_err_clear(&err);
    if (af_registry_manifest_get(c, repo, ref, body_p, len_p, &mt, d, &err) < 0)
        fail_msg("manifest_get %s@%s: %s", repo, ref, err.msg);
    af_oci_doc_t *doc = af_oci_doc_parse(*body_p, *len_p, mt, &err);
    assert_non_null(doc);
    free(mt);
    af_registry_destroy(&c);
    return doc;
}

static const char *s_recipe_scratch = "image:\n"
                                      "  copy: [{src: out/hi, dest: /etc/hi}]\n"
                                      "  entrypoint: [/bin/cat, /etc/hi]\n"
                                      "  labels: {org.example.k: v}\n";

static void assemble_pushes_a_scratch_image_by_digest(void **state)
{
    if (!s_reg.pid)
        skip();
    char *tmp = s_tmpdir();
    s_result_t r;
    s_run(s_args(tmp, s_recipe_scratch, "demo/app", "linux/arm64"), &r, false);
    if (r.code)
        fail_msg("assemble: %s\nlogs:\n%s", r.message, r.logs);
    assert_int_equal(r.n_outputs, 4);
    assert_true(af_digest_valid(r.outputs[0]));
    assert_string_equal(r.outputs[1], AF_MT_OCI_MANIFEST);
    assert_non_null(strstr(r.logs, "pushing layer sha256:"));
    assert_non_null(strstr(r.logs, "pushed manifest "));
    assert_null(strstr(r.logs, "not-logged-anywhere"));

    char *body = NULL;
    size_t len = 0;
    af_oci_doc_t *doc = s_get_manifest("demo/app", r.outputs[0], &body, &len);
    assert_false(doc->is_index);
    assert_int_equal(doc->n_layers, 1);
    assert_string_equal(doc->layers[0].media_type, AF_MT_OCI_LAYER_GZIP);
    assert_int_equal((size_t)strtoull(r.outputs[2], NULL, 10), len);
    af_registry_t *c = s_client();
    char *config = NULL;
    size_t config_len = 0;
    assert_int_equal(
        af_registry_blob_get(c, "demo/app", doc->config.digest, 0, &config, &config_len, NULL), 0);
    af_platform_t p;
    assert_int_equal(af_oci_config_platform(config, config_len, &p, NULL), 0);
    char ps[AF_PLATFORM_STR_MAX];
    assert_string_equal(af_platform_format(&p, ps, sizeof ps), "linux/arm64");
    assert_non_null(strstr(config, "2023-11-14T22:13:20Z")); /* created = SOURCE_DATE_EPOCH */
    assert_non_null(strstr(config, "org.example.k"));
    /* pushed bytes: the config and the layer, both new in the repository */
    assert_int_equal(strtoull(r.outputs[3], NULL, 10), config_len + (size_t)doc->layers[0].size);
    /* no tag was written: the repository has no tags */
    bool exists = true;
    assert_int_equal(af_registry_manifest_exists(c, "demo/app", "latest", &exists, NULL, NULL), 0);
    assert_false(exists);
    free(config);
    af_registry_destroy(&c);
    af_oci_doc_destroy(&doc);
    free(body);
    s_rmtmp(tmp);
}

static void assemble_same_inputs_give_the_same_digest(void **state)
{
    if (!s_reg.pid)
        skip();
    char *t1 = s_tmpdir(), *t2 = s_tmpdir();
    s_result_t r1, r2;
    s_run(s_args(t1, s_recipe_scratch, "demo/repro", "linux/amd64"), &r1, false);
    s_run(s_args(t2, s_recipe_scratch, "demo/repro", "linux/amd64"), &r2, false);
    assert_int_equal(r1.code, 0);
    assert_int_equal(r2.code, 0);
    assert_string_equal(r1.outputs[0], r2.outputs[0]);
    /* the second push found every blob in place and uploaded nothing */
    assert_true(strtoull(r1.outputs[3], NULL, 10) > 0);
    assert_string_equal(r2.outputs[3], "0");
    s_rmtmp(t1);
    s_rmtmp(t2);
}

/* Pushes a base index (tag base:1) with an amd64 and an arm64 image. */
static void s_push_base_index(void)
{
    const char *plats[] = {"linux/amd64", "linux/arm64"};
    af_descriptor_t entries[2];
    for (int i = 0; i < 2; i++) {
        char *tmp = s_tmpdir();
        s_result_t r;
        s_run(s_args(tmp, "image:\n  copy: [{src: out/hi, dest: /base-file}]\n", "lib/base",
                     plats[i]),
              &r, false);
        if (r.code)
            fail_msg("base %s: %s", plats[i], r.message);
        memset(&entries[i], 0, sizeof entries[i]);
        snprintf(entries[i].media_type, sizeof entries[i].media_type, "%s", r.outputs[1]);
        snprintf(entries[i].digest, sizeof entries[i].digest, "%s", r.outputs[0]);
        entries[i].size = (int64_t)strtoll(r.outputs[2], NULL, 10);
        entries[i].has_platform = true;
        assert_int_equal(af_platform_parse(plats[i], &entries[i].platform, NULL), 0);
        s_rmtmp(tmp);
    }
    size_t len = 0;
    char *index = af_oci_index_build(entries, 2, NULL, 0, &len, NULL);
    assert_non_null(index);
    af_registry_t *c = s_client();
    assert_int_equal(
        af_registry_manifest_put(c, "lib/base", "1", AF_MT_OCI_INDEX, index, len, NULL, NULL), 0);
    af_registry_destroy(&c);
    free(index);
}

static void assemble_resolves_a_base_index_and_mounts_its_layers(void **state)
{
    if (!s_reg.pid)
        skip();
    s_push_base_index();
    char *tmp = s_tmpdir();
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "image:\n  from: %s/lib/base:1\n  copy: [{src: out/hi, dest: /app/hi}]\n", s_reg.host);
    s_result_t r;
    s_run(s_args(tmp, yaml, "demo/derived", "linux/arm64"), &r, false);
    if (r.code)
        fail_msg("assemble: %s\nlogs:\n%s", r.message, r.logs);
    assert_non_null(strstr(r.logs, "resolving base image"));
    /* same registry: the base layer is mounted, never downloaded and re-uploaded */
    if (!strstr(r.logs, "mounted from lib/base") || strstr(r.logs, "copying base layer"))
        fail_msg("the base layer was not mounted:\n%s", r.logs);

    char *body = NULL, *base_body = NULL;
    size_t len = 0, base_len = 0;
    af_oci_doc_t *doc = s_get_manifest("demo/derived", r.outputs[0], &body, &len);
    assert_int_equal(doc->n_layers, 2);
    /* the base's arm64 manifest, from the index */
    af_oci_doc_t *index = s_get_manifest("lib/base", "1", &base_body, &base_len);
    af_platform_t arm64;
    assert_int_equal(af_platform_parse("linux/arm64", &arm64, NULL), 0);
    const af_descriptor_t *sel = af_oci_index_select(index, &arm64);
    assert_non_null(sel);
    char *bb = NULL;
    size_t bl = 0;
    af_oci_doc_t *base = s_get_manifest("lib/base", sel->digest, &bb, &bl);
    assert_string_equal(doc->layers[0].digest, base->layers[0].digest); /* base layer first */
    af_registry_t *c = s_client();
    bool exists = false;
    assert_int_equal(
        af_registry_blob_exists(c, "demo/derived", doc->layers[0].digest, &exists, NULL), 0);
    assert_true(exists); /* mounted into the target repository */
    af_registry_destroy(&c);
    af_oci_doc_destroy(&base);
    af_oci_doc_destroy(&index);
    af_oci_doc_destroy(&doc);
    free(bb);
    free(body);
    free(base_body);
    s_rmtmp(tmp);
}

static void assemble_base_without_the_platform_fails_naming_it(void **state)
{
    if (!s_reg.pid)
        skip();
    s_push_base_index();
    char *tmp = s_tmpdir();
    char yaml[512];
    snprintf(yaml, sizeof yaml, "image:\n  from: %s/lib/base:1\n", s_reg.host);
    s_result_t r;
    s_run(s_args(tmp, yaml, "demo/derived", "linux/arm/v7"), &r, false);
    assert_int_equal(r.code, AF_ERR_NOTFOUND);
    assert_non_null(strstr(r.message, "has no manifest for linux/arm/v7"));
    s_rmtmp(tmp);
}

static void assemble_missing_base_fails_naming_it(void **state)
{
    if (!s_reg.pid)
        skip();
    char *tmp = s_tmpdir();
    char yaml[512];
    snprintf(yaml, sizeof yaml, "image:\n  from: %s/lib/nothere:1\n", s_reg.host);
    s_result_t r;
    s_run(s_args(tmp, yaml, "demo/derived", "linux/amd64"), &r, false);
    assert_int_not_equal(r.code, 0);
    assert_non_null(strstr(r.message, "lib/nothere"));
    s_rmtmp(tmp);
}

static void assemble_copy_source_outside_the_context_is_refused(void **state)
{
    if (!s_reg.pid)
        skip();
    char *tmp = s_tmpdir();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/ctx && ln -s /etc/passwd %s/ctx/leak", tmp, tmp);
    assert_int_equal(system(cmd), 0);
    s_result_t r;
    s_run(s_args(tmp, "image:\n  copy: [{src: leak, dest: /leak}]\n", "demo/leak", "linux/amd64"),
          &r, false);
    assert_int_equal(r.code, AF_ERR_UNSAFE);
    s_rmtmp(tmp);
}

static void assemble_cancelled_before_pushing_reports_cancelled(void **state)
{
    if (!s_reg.pid)
        skip();
    char *tmp = s_tmpdir();
    s_result_t r;
    s_run(s_args(tmp, s_recipe_scratch, "demo/cancel", "linux/amd64"), &r, true);
    assert_int_equal(r.code, AF_ERR_CANCELLED);
    s_rmtmp(tmp);
    (void)s_cancel_soon;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(assemble_pushes_a_scratch_image_by_digest),
        cmocka_unit_test(assemble_same_inputs_give_the_same_digest),
        cmocka_unit_test(assemble_resolves_a_base_index_and_mounts_its_layers),
        cmocka_unit_test(assemble_base_without_the_platform_fails_naming_it),
        cmocka_unit_test(assemble_missing_base_fails_naming_it),
        cmocka_unit_test(assemble_copy_source_outside_the_context_is_refused),
        cmocka_unit_test(assemble_cancelled_before_pushing_reports_cancelled),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
