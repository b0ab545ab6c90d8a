/* test_agent_server.c -- the whole agent in-process, over the wire.
 *
 * Starts the agent (agent/agent.c) in a zactor on an inproc:// endpoint
 * and plays the coordinator with a DEALER and common/proto: session and
 * heartbeats, malformed input, refused BUILDs, the credit-based context
 * transfer, build steps that fail, run too long, get cancelled or lose
 * their coordinator, the context cache, FIFO queueing beyond max_jobs,
 * and shutdown. Registry pushes go to a closed port here (infra failure);
 * a real registry is exercised by the integration tests. After each
 * RESULT the job dir must already be gone and no build process left. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "archive.h"
#include "config.h"
#include "digest.h"
#include "proto.h"

#define S_TIMEOUT_MS 20000
#define S_UNREACHABLE_REPO "127.0.0.1:1/test/app"

typedef struct {
    char tmp[256];
    char workdir[300];
    char ctxdir[300];
    char tar[320];
    char digest[AF_DIGEST_STR_MAX];
    uint64_t size;
    af_agent_config_t cfg;
    zactor_t *agent;
    char endpoint[256];
    zsock_t *dealer;
    char logs[65536];  /* LOG lines, "stream: line\n" */
    char states[4096]; /* STATUS states, space separated */
    int64_t last_hb;   /* when fx->dealer last sent HEARTBEAT */
} s_fx_t;

static int s_counter;

/* --- fixture --- */

static int s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->tmp, sizeof fx->tmp, "/tmp/af-test-agent-XXXXXX");
    if (!mkdtemp(fx->tmp))
        return -1;
    snprintf(fx->workdir, sizeof fx->workdir, "%s/work", fx->tmp);
    snprintf(fx->ctxdir, sizeof fx->ctxdir, "%s/ctx", fx->tmp);
    mkdir(fx->ctxdir, 0755);
    af_agent_config_defaults(&fx->cfg);
    fx->cfg.insecure = true;
    snprintf(fx->cfg.name, sizeof fx->cfg.name, "test-node");
    snprintf(fx->cfg.workdir, sizeof fx->cfg.workdir, "%s", fx->workdir);
    snprintf(fx->cfg.listen, sizeof fx->cfg.listen, "inproc://agent-test-%d-%d", (int)getpid(),
             ++s_counter);
    fx->cfg.kill_grace_ms = 500;
    /* native only, whatever engines this host has (WELCOME and refusals are pinned) */
    snprintf(fx->cfg.executor, sizeof fx->cfg.executor, "native");
    if (af_agent_config_set(&fx->cfg, "platforms", "linux/amd64,linux/arm/v7", NULL, NULL) < 0)
        return -1;
    *state = fx;
    return 0;
}

static void s_stop_agent(s_fx_t *fx)
{
    zsock_destroy(&fx->dealer);
    zactor_destroy(&fx->agent);
}

static int s_teardown(void **state)
{
    s_fx_t *fx = *state;
    s_stop_agent(fx);
    af_err_t err;
    if (af_remove_tree(fx->tmp, &err) < 0)
        fprintf(stderr, "cleanup: %s\n", err.msg);
    free(fx);
    return 0;
}

static zsock_t *s_connect(s_fx_t *fx)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    assert_non_null(d);
    zsock_set_rcvtimeo(d, 100);
    zsock_set_sndtimeo(d, 0); /* never block once the agent is gone */
    zsock_set_linger(d, 0);
    assert_int_equal(zsock_connect(d, "%s", fx->endpoint), 0);
    return d;
}

static void s_start_agent(s_fx_t *fx)
{
    assert_int_equal(af_agent_config_finish(&fx->cfg, NULL), 0);
    fx->agent = zactor_new(af_agent_actor, &fx->cfg);
    assert_non_null(fx->agent);
    char *ep = zstr_recv(fx->agent);
    assert_non_null(ep);
    assert_true(ep[0] != '\0');
    snprintf(fx->endpoint, sizeof fx->endpoint, "%s", ep);
    zstr_free(&ep);
    fx->dealer = s_connect(fx);
}

static void s_send(zsock_t *sock, af_msg_t **msg_p)
{
    af_err_t err;
    af_err_clear(&err);
    if (af_msg_send(*msg_p, sock, &err) < 0) {
        fprintf(stderr, "send: %s\n", err.msg);
        fail();
    }
    af_msg_destroy(msg_p);
}

/* Like a real coordinator, fx->dealer sends HEARTBEAT while it waits, so
 * a slow run (sanitizers, a loaded machine) never looks like a dead peer. */
static void s_heartbeat(s_fx_t *fx, zsock_t *sock)
{
    if (sock != fx->dealer || zclock_mono() - fx->last_hb < 100)
        return;
    fx->last_hb = zclock_mono();
    af_msg_t *hb = af_msg_new(AF_CMD_HEARTBEAT);
    if (hb && af_msg_send(hb, sock, NULL) < 0) {
        /* the agent is gone (shutdown tests): nothing to keep alive */
    }
    af_msg_destroy(&hb);
}

/* Receives until a message of CMD (LOG/STATUS/HEARTBEAT are recorded and
 * skipped unless asked for). NULL after TIMEOUT_MS. */
static af_msg_t *s_recv_on(s_fx_t *fx, zsock_t *sock, af_cmd_t cmd, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        s_heartbeat(fx, sock);
        af_err_t err;
        af_err_clear(&err);
        af_msg_t *m = af_msg_recv(sock, false, NULL, &err);
        if (!m) {
            if (err.code != AF_ERR_TIMEOUT && err.code != AF_ERR_CANCELLED)
                fprintf(stderr, "undecodable reply: %s\n", err.msg);
            continue;
        }
        if (m->cmd == AF_CMD_LOG) {
            size_t off = strlen(fx->logs);
            snprintf(fx->logs + off, sizeof fx->logs - off, "%s: %s\n", m->stream, m->line);
        }
        if (m->cmd == AF_CMD_STATUS) {
            size_t off = strlen(fx->states);
            snprintf(fx->states + off, sizeof fx->states - off, "%s ", m->state);
        }
        if (m->cmd == cmd)
            return m;
        af_msg_destroy(&m);
    }
    return NULL;
}

static af_msg_t *s_recv(s_fx_t *fx, af_cmd_t cmd)
{
    return s_recv_on(fx, fx->dealer, cmd, S_TIMEOUT_MS);
}

static void s_hello(s_fx_t *fx, zsock_t *sock)
{
    af_msg_t *m = af_msg_new(AF_CMD_HELLO);
    snprintf(m->version, sizeof m->version, "%s", AF_VERSION);
    snprintf(m->client, sizeof m->client, "test:%d", (int)getpid());
    s_send(sock, &m);
    m = s_recv_on(fx, sock, AF_CMD_WELCOME, S_TIMEOUT_MS);
    assert_non_null(m);
    af_msg_destroy(&m);
}

/* Writes archfarm.yaml into the context dir and packs it. */
static void s_context(s_fx_t *fx, const char *recipe)
{
    char path[400];
    snprintf(path, sizeof path, "%s/archfarm.yaml", fx->ctxdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(recipe, f);
    fclose(f);
    snprintf(fx->tar, sizeof fx->tar, "%s/ctx-%d.tar", fx->tmp, ++s_counter);
    af_pack_result_t res;
    af_err_t err;
    af_err_clear(&err);
    if (af_archive_pack_context(fx->ctxdir, fx->tar, 0, &res, &err) < 0) {
        fprintf(stderr, "pack: %s\n", err.msg);
        fail();
    }
    snprintf(fx->digest, sizeof fx->digest, "%s", res.digest);
    fx->size = res.size;
}

static af_msg_t *s_build_msg(s_fx_t *fx, const char *job, const char *platform)
{
    af_msg_t *m = af_msg_new(AF_CMD_BUILD);
    snprintf(m->job, sizeof m->job, "%s", job);
    m->attempt = 1;
    snprintf(m->platform, sizeof m->platform, "%s", platform);
    snprintf(m->recipe_kind, sizeof m->recipe_kind, "native");
    snprintf(m->recipe_path, sizeof m->recipe_path, "archfarm.yaml");
    snprintf(m->context_digest, sizeof m->context_digest, "%s", fx->digest);
    m->context_size = fx->size;
    snprintf(m->repository, sizeof m->repository, S_UNREACHABLE_REPO);
    m->registry_insecure = true;
    m->source_date_epoch = 1700000000;
    return m;
}

/* Sends the context tar honouring credits; CREDIT0 is the first grant. */
static void s_send_context(s_fx_t *fx, zsock_t *sock, const char *job, uint32_t attempt,
                           uint32_t credit0)
{
    FILE *f = fopen(fx->tar, "rb");
    assert_non_null(f);
    uint64_t offset = 0;
    int64_t credit = credit0;
    char *buf = malloc(AF_CHUNK_SIZE);
    while (offset < fx->size) {
        while (credit == 0) {
            af_msg_t *c = s_recv_on(fx, sock, AF_CMD_CREDIT, S_TIMEOUT_MS);
            assert_non_null(c);
            credit += c->credit;
            af_msg_destroy(&c);
        }
        size_t n = fread(buf, 1, AF_CHUNK_SIZE, f);
        assert_true(n > 0);
        af_msg_t *m = af_msg_new(AF_CMD_CHUNK);
        snprintf(m->job, sizeof m->job, "%s", job);
        m->attempt = attempt;
        m->offset = offset;
        zframe_t *data = zframe_new(buf, n);
        af_msg_set_data(m, &data);
        s_send(sock, &m);
        offset += n;
        credit--;
    }
    free(buf);
    fclose(f);
}

/* BUILD, ACCEPT, transfer if needed. Returns the ACCEPT's have_context. */
static bool s_submit(s_fx_t *fx, zsock_t *sock, af_msg_t **build_p)
{
    char job[AF_MAX_NAME + 1];
    snprintf(job, sizeof job, "%s", (*build_p)->job);
    uint32_t attempt = (*build_p)->attempt;
    s_send(sock, build_p);
    af_msg_t *acc = s_recv_on(fx, sock, AF_CMD_ACCEPT, S_TIMEOUT_MS);
    assert_non_null(acc);
    assert_string_equal(acc->job, job);
    bool have = acc->have_context;
    af_msg_destroy(&acc);
    if (!have) {
        af_msg_t *c = s_recv_on(fx, sock, AF_CMD_CREDIT, S_TIMEOUT_MS);
        assert_non_null(c);
        assert_int_equal(c->offset, 0);
        assert_int_equal(c->credit, AF_CREDIT_WINDOW);
        uint32_t credit = c->credit;
        af_msg_destroy(&c);
        s_send_context(fx, sock, job, attempt, credit);
    }
    return have;
}

static int s_count_job_dirs(s_fx_t *fx)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "exit $(ls -A %s/jobs | wc -l)", fx->workdir);
    return WEXITSTATUS(system(cmd));
}

/* True if a live (non-zombie) process is in process group PGID. Orphaned
 * zombies wait for init, which may be slow to reap in a container. */
static bool s_group_alive(pid_t pgid)
{
    if (kill(-pgid, 0) < 0 && errno != EPERM)
        return false;
    DIR *d = opendir("/proc");
    if (!d)
        return true;
    bool alive = false;
    struct dirent *de;
    while (!alive && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        char st = 0;
        int ppid = 0, pg = 0;
        if (p && sscanf(p + 1, " %c %d %d", &st, &ppid, &pg) == 3 && pg == pgid && st != 'Z')
            alive = true;
    }
    closedir(d);
    return alive;
}

/* pid printed by the build step as "pid=N" */
static pid_t s_logged_pid(s_fx_t *fx)
{
    const char *p = strstr(fx->logs, "pid=");
    return p ? (pid_t)atoi(p + 4) : 0;
}

static void s_wait_log(s_fx_t *fx, const char *needle)
{
    int64_t deadline = zclock_mono() + S_TIMEOUT_MS;
    while (!strstr(fx->logs, needle) && zclock_mono() < deadline) {
        af_msg_t *m = s_recv_on(fx, fx->dealer, AF_CMD_LOG, 200);
        af_msg_destroy(&m);
    }
    assert_non_null(strstr(fx->logs, needle));
}

/* --- tests --- */

static void server_hello_gets_welcome(void **state)
{
    s_fx_t *fx = *state;
    s_start_agent(fx);
    af_msg_t *m = af_msg_new(AF_CMD_HELLO);
    snprintf(m->version, sizeof m->version, "%s", AF_VERSION);
    snprintf(m->client, sizeof m->client, "test");
    s_send(fx->dealer, &m);
    m = s_recv(fx, AF_CMD_WELCOME);
    assert_non_null(m);
    assert_string_equal(m->node, "test-node");
    assert_string_equal(m->version, AF_VERSION);
    assert_int_equal(m->n_platforms, 2);
    assert_string_equal(m->platforms[0], "linux/amd64");
    assert_string_equal(m->platforms[1], "linux/arm/v7");
    assert_int_equal(m->n_executors, 1);
    assert_string_equal(m->executors[0], "native");
    assert_int_equal(m->max_jobs, 1);
    assert_int_equal(m->heartbeat_ms, 1000);
    assert_int_equal(m->running, 0);
    assert_int_equal(m->queued, 0);
    af_msg_destroy(&m);
    /* HELLO again: WELCOME again */
    s_hello(fx, fx->dealer);
}

static void server_sends_heartbeats_to_live_peers(void **state)
{
    s_fx_t *fx = *state;
    fx->cfg.heartbeat_ms = 100;
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *hb = s_recv_on(fx, fx->dealer, AF_CMD_HEARTBEAT, 2000);
    assert_non_null(hb);
    assert_int_equal(hb->running, 0);
    af_msg_destroy(&hb);
}

static void server_answers_malformed_frames_with_error_and_keeps_serving(void **state)
{
    s_fx_t *fx = *state;
    s_start_agent(fx);
    const char *garbage[][3] = {
        {"GARBAGE", NULL, NULL},
        {"ARCHFARM1", "HELLO", "\xc1 not msgpack"},
        {"ARCHFARM1", "NOSUCHCMD", "\x80"},
        {"ARCHFARM9", "HELLO", "\x80"},
        {"ARCHFARM1", "BUILD", "\x80"}, /* empty map: required keys missing */
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        zmsg_t *z = zmsg_new();
        for (int f = 0; f < 3 && garbage[i][f]; f++)
            zmsg_addstr(z, garbage[i][f]);
        assert_int_equal(zmsg_send(&z, fx->dealer), 0);
        af_msg_t *e = s_recv(fx, AF_CMD_ERROR);
        assert_non_null(e);
        assert_true(e->code < 0);
        assert_true(e->message[0] != '\0');
        af_msg_destroy(&e);
    }
    /* an empty message and a huge one are dropped or answered, never fatal */
    zmsg_t *z = zmsg_new();
    zmsg_addmem(z, "", 0);
    zmsg_send(&z, fx->dealer);
    s_hello(fx, fx->dealer);
}

static void server_survives_a_storm_of_random_frames(void **state)
{
    s_fx_t *fx = *state;
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    static const char *const cmds[] = {"HELLO", "BUILD",  "CHUNK",   "CANCEL", "HEARTBEAT",
                                       "ERROR", "RESULT", "WELCOME", "X"};
    unsigned seed = 12345;
    for (int i = 0; i < 2000; i++) {
        zmsg_t *z = zmsg_new();
        int frames = (int)(rand_r(&seed) % 5);
        for (int f = 0; f < frames; f++) {
            char buf[256];
            size_t n = (size_t)(rand_r(&seed) % sizeof buf);
            for (size_t k = 0; k < n; k++)
                buf[k] = (char)rand_r(&seed);
            if (f == 0 && rand_r(&seed) % 2)
                zmsg_addstr(z, AF_PROTO_ID);
            else if (f == 1 && rand_r(&seed) % 2)
                zmsg_addstr(z, cmds[rand_r(&seed) % (sizeof cmds / sizeof cmds[0])]);
            else if (f == 2 && rand_r(&seed) % 2)
                zmsg_addmem(z, "\x81\xa3job\xa1x", 7); /* {"job": "x"} */
            else
                zmsg_addmem(z, buf, n);
        }
        if (frames == 0)
            zmsg_addmem(z, "", 0);
        assert_int_equal(zmsg_send(&z, fx->dealer), 0);
    }
    /* drain the replies, then the agent must still answer */
    af_msg_t *junk;
    while ((junk = s_recv_on(fx, fx->dealer, AF_CMD_WELCOME, 300)) != NULL)
        af_msg_destroy(&junk);
    s_hello(fx, fx->dealer);
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void server_drops_a_peer_that_sends_an_oversize_message(void **state)
{
    s_fx_t *fx = *state;
    snprintf(fx->cfg.listen, sizeof fx->cfg.listen, "tcp://127.0.0.1:*");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    zmsg_t *z = zmsg_new();
    zmsg_addstr(z, AF_PROTO_ID);
    zmsg_addstr(z, "CHUNK");
    char *big = calloc(1, AF_MAX_MSG_SIZE + 1);
    zmsg_addmem(z, big, AF_MAX_MSG_SIZE + 1);
    free(big);
    assert_int_equal(zmsg_send(&z, fx->dealer), 0);
    /* the agent cut the connection; the DEALER reconnects as a new peer */
    zsock_t *other = s_connect(fx);
    s_hello(fx, other);
    zsock_destroy(&other);
    s_hello(fx, fx->dealer);
}

static void server_requires_hello_before_other_commands(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'true'}\n");
    s_start_agent(fx);
    af_msg_t *m = s_build_msg(fx, "nohello-0", "linux/amd64");
    s_send(fx->dealer, &m);
    af_msg_t *e = s_recv(fx, AF_CMD_ERROR);
    assert_non_null(e);
    assert_int_equal(e->code, AF_ERR_STATE);
    assert_string_equal(e->job, "nohello-0");
    af_msg_destroy(&e);
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void s_expect_refusal(s_fx_t *fx, af_msg_t **build_p, const char *needle)
{
    char job[AF_MAX_NAME + 1];
    snprintf(job, sizeof job, "%s", (*build_p)->job);
    s_send(fx->dealer, build_p);
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->job, job);
    assert_false(r->ok);
    assert_string_equal(r->failure, "infra");
    if (!strstr(r->message, needle)) {
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", r->message, needle);
        fail();
    }
    af_msg_destroy(&r);
}

static void server_refuses_builds_it_cannot_serve_with_infra_result(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'true'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "plat-0", "linux/arm64");
    s_expect_refusal(fx, &m, "does not build linux/arm64");
    m = s_build_msg(fx, "kind-0", "linux/amd64");
    snprintf(m->recipe_kind, sizeof m->recipe_kind, "dockerfile");
    s_expect_refusal(fx, &m, "no executor for dockerfile");
    m = s_build_msg(fx, "repo-0", "linux/amd64");
    snprintf(m->repository, sizeof m->repository, "127.0.0.1:5000/app:tag");
    s_expect_refusal(fx, &m, "must not carry a tag");
    m = s_build_msg(fx, "repo-1", "linux/amd64");
    snprintf(m->repository, sizeof m->repository, "UPPER/Case!");
    s_expect_refusal(fx, &m, "repository");
    assert_int_equal(s_count_job_dirs(fx), 0);
    s_hello(fx, fx->dealer); /* still serving */
}

static void server_failing_step_reports_build_failure_with_exit_code(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build:\n"
                  "  env: {FROM_RECIPE: yes-it-is}\n"
                  "  run: |\n"
                  "    echo \"target=$TARGETPLATFORM arch=$TARGETARCH variant=$TARGETVARIANT\"\n"
                  "    echo \"sde=$SOURCE_DATE_EPOCH recipe=$FROM_RECIPE arg=$MYARG\"\n"
                  "    echo \"cwd=$(pwd)\"\n"
                  "    echo oops >&2\n"
                  "    exit 3\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "fail-0", "linux/arm/v7");
    assert_int_equal(af_msg_add_build_arg(m, "MYARG", "from-cli"), 0);
    assert_false(s_submit(fx, fx->dealer, &m));
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->job, "fail-0");
    assert_false(r->ok);
    assert_string_equal(r->failure, "build");
    assert_int_equal(r->exit_code, 3);
    assert_string_equal(r->message, "build step exited with status 3");
    assert_string_equal(r->platform, "linux/arm/v7");
    af_msg_destroy(&r);
    assert_non_null(strstr(fx->logs, "stdout: target=linux/arm/v7 arch=arm variant=v7\n"));
    assert_non_null(strstr(fx->logs, "stdout: sde=1700000000 recipe=yes-it-is arg=from-cli\n"));
    assert_non_null(strstr(fx->logs, "/jobs/fail-0-1/ctx\n"));
    assert_non_null(strstr(fx->logs, "stderr: oops\n"));
    assert_non_null(strstr(fx->states, "receiving extracting running"));
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void server_receives_a_context_over_many_credit_rounds(void **state)
{
    s_fx_t *fx = *state;
    /* 5 MiB of pseudo-random bytes: 20 chunks, more than one credit window */
    char path[400];
    snprintf(path, sizeof path, "%s/big.bin", fx->ctxdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned seed = 42;
    for (int i = 0; i < 5 * 1024 * 1024; i++)
        fputc(rand_r(&seed) & 0xff, f);
    fclose(f);
    char digest[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_file(path, digest, NULL, NULL), 0);
    char recipe[512];
    snprintf(recipe, sizeof recipe,
             "build: {run: 'test \"sha256:$(sha256sum big.bin | cut -c1-64)\" = %s && exit 5'}\n",
             digest);
    s_context(fx, recipe);
    assert_true(fx->size > (uint64_t)AF_CREDIT_WINDOW * AF_CHUNK_SIZE);
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "big-0", "linux/amd64");
    assert_false(s_submit(fx, fx->dealer, &m));
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->failure, "build");
    assert_int_equal(r->exit_code, 5); /* the file arrived intact */
    af_msg_destroy(&r);
}

static void server_does_not_resend_a_cached_context(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'exit 1'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "cache-0", "linux/amd64");
    assert_false(s_submit(fx, fx->dealer, &m));
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->failure, "build");
    af_msg_destroy(&r);
    m = s_build_msg(fx, "cache-1", "linux/amd64");
    assert_true(s_submit(fx, fx->dealer, &m)); /* have_context: nothing sent */
    r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->job, "cache-1");
    assert_string_equal(r->failure, "build");
    af_msg_destroy(&r);
    char path[600];
    snprintf(path, sizeof path, "%s/contexts/%s.tar", fx->workdir, af_digest_hex(fx->digest));
    assert_int_equal(access(path, R_OK), 0);
}

static void server_context_digest_mismatch_is_infra_failure(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'true'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "mismatch-0", "linux/amd64");
    assert_int_equal(af_digest_buffer("other", 5, m->context_digest), 0);
    assert_false(s_submit(fx, fx->dealer, &m));
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->failure, "infra");
    assert_non_null(strstr(r->message, "context digest mismatch"));
    af_msg_destroy(&r);
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void server_chunk_gap_is_infra_failure(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'true'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "gap-0", "linux/amd64");
    s_send(fx->dealer, &m);
    af_msg_t *acc = s_recv(fx, AF_CMD_ACCEPT);
    assert_non_null(acc);
    af_msg_destroy(&acc);
    m = af_msg_new(AF_CMD_CHUNK);
    snprintf(m->job, sizeof m->job, "gap-0");
    m->offset = 1; /* should be 0 */
    zframe_t *data = zframe_new("x", 1);
    af_msg_set_data(m, &data);
    s_send(fx->dealer, &m);
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->failure, "infra");
    assert_non_null(strstr(r->message, "gap"));
    af_msg_destroy(&r);
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void server_cancel_kills_the_process_group_and_removes_the_job_dir(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'echo pid=$$; sleep 60 & sleep 60; echo never'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "cancel-0", "linux/amd64");
    s_submit(fx, fx->dealer, &m);
    s_wait_log(fx, "pid=");
    pid_t pgid = s_logged_pid(fx);
    assert_true(pgid > 0);
    assert_true(s_group_alive(pgid));
    char pidfile[600];
    snprintf(pidfile, sizeof pidfile, "%s/jobs/cancel-0-1/pgid", fx->workdir);
    assert_int_equal(access(pidfile, R_OK), 0);
    m = af_msg_new(AF_CMD_CANCEL);
    snprintf(m->job, sizeof m->job, "cancel-0");
    m->attempt = 0;
    s_send(fx->dealer, &m);
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->failure, "cancelled");
    assert_false(r->ok);
    af_msg_destroy(&r);
    assert_false(s_group_alive(pgid));
    assert_int_equal(s_count_job_dirs(fx), 0);
    assert_null(strstr(fx->logs, "never"));
    /* a CANCEL for an unknown job is ignored; the agent still serves */
    m = af_msg_new(AF_CMD_CANCEL);
    snprintf(m->job, sizeof m->job, "cancel-0");
    s_send(fx->dealer, &m);
    s_hello(fx, fx->dealer);
}

static void server_job_timeout_kills_the_step_and_reports_timeout(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'echo pid=$$; exec sleep 60'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "timeout-0", "linux/amd64");
    m->timeout_s = 1;
    s_submit(fx, fx->dealer, &m);
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->failure, "timeout");
    assert_non_null(strstr(r->message, "timed out after 1 s"));
    assert_true(r->duration_ms >= 1000);
    af_msg_destroy(&r);
    pid_t pgid = s_logged_pid(fx);
    assert_true(pgid > 0);
    assert_false(s_group_alive(pgid));
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void server_lost_coordinator_gets_its_jobs_cancelled(void **state)
{
    s_fx_t *fx = *state;
    fx->cfg.heartbeat_ms = 100;
    s_context(fx, "build: {run: 'echo pid=$$; exec sleep 60'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "lost-0", "linux/amd64");
    s_submit(fx, fx->dealer, &m);
    s_wait_log(fx, "pid=");
    pid_t pgid = s_logged_pid(fx);
    assert_true(s_group_alive(pgid));
    zsock_destroy(&fx->dealer); /* the coordinator goes silent */
    int64_t deadline = zclock_mono() + 5000;
    while ((s_group_alive(pgid) || s_count_job_dirs(fx) > 0) && zclock_mono() < deadline)
        zclock_sleep(50);
    assert_false(s_group_alive(pgid));
    assert_int_equal(s_count_job_dirs(fx), 0);
    /* a new coordinator is served */
    fx->dealer = s_connect(fx);
    s_hello(fx, fx->dealer);
}

static void server_queues_beyond_max_jobs_and_starts_fifo(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'echo pid=$$ job=$MYJOB; exec sleep 60'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "fifo-a", "linux/amd64");
    assert_int_equal(af_msg_add_build_arg(m, "MYJOB", "a"), 0);
    s_send(fx->dealer, &m);
    af_msg_t *acc = s_recv(fx, AF_CMD_ACCEPT);
    assert_non_null(acc);
    assert_false(acc->job_queued);
    af_msg_destroy(&acc);
    af_msg_t *c = s_recv(fx, AF_CMD_CREDIT);
    af_msg_destroy(&c);
    s_send_context(fx, fx->dealer, "fifo-a", 1, AF_CREDIT_WINDOW);
    s_wait_log(fx, "job=a");

    m = s_build_msg(fx, "fifo-b", "linux/amd64");
    assert_int_equal(af_msg_add_build_arg(m, "MYJOB", "b"), 0);
    s_send(fx->dealer, &m);
    acc = s_recv(fx, AF_CMD_ACCEPT);
    assert_non_null(acc);
    assert_true(acc->job_queued);
    assert_true(acc->have_context);
    af_msg_destroy(&acc);
    af_msg_t *st = s_recv(fx, AF_CMD_STATUS);
    assert_non_null(st);
    assert_string_equal(st->job, "fifo-b");
    assert_string_equal(st->state, "queued");
    af_msg_destroy(&st);
    assert_null(strstr(fx->logs, "job=b"));

    m = af_msg_new(AF_CMD_CANCEL);
    snprintf(m->job, sizeof m->job, "fifo-a");
    s_send(fx->dealer, &m);
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->job, "fifo-a");
    assert_string_equal(r->failure, "cancelled");
    af_msg_destroy(&r);
    s_wait_log(fx, "job=b"); /* b started once a's slot was free */
    m = af_msg_new(AF_CMD_CANCEL);
    snprintf(m->job, sizeof m->job, "fifo-b");
    m->attempt = 1;
    s_send(fx->dealer, &m);
    r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->job, "fifo-b");
    af_msg_destroy(&r);
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void server_duplicate_build_gets_error_state(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'exec sleep 60'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "dup-0", "linux/amd64");
    s_submit(fx, fx->dealer, &m);
    m = s_build_msg(fx, "dup-0", "linux/amd64");
    s_send(fx->dealer, &m);
    af_msg_t *e = s_recv(fx, AF_CMD_ERROR);
    assert_non_null(e);
    assert_int_equal(e->code, AF_ERR_STATE);
    assert_string_equal(e->job, "dup-0");
    af_msg_destroy(&e);
}

static void server_bad_recipe_is_infra_failure_naming_the_file(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'true'}\nimage: {frmo: scratch}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "recipe-0", "linux/amd64");
    s_submit(fx, fx->dealer, &m);
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->failure, "infra");
    assert_non_null(strstr(r->message, "archfarm.yaml:2:"));
    af_msg_destroy(&r);

    m = s_build_msg(fx, "recipe-1", "linux/amd64");
    snprintf(m->recipe_path, sizeof m->recipe_path, "../../etc/passwd");
    s_submit(fx, fx->dealer, &m);
    r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->failure, "infra");
    assert_non_null(strstr(r->message, "leaves the context"));
    af_msg_destroy(&r);
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void server_successful_step_then_unreachable_registry_is_a_registry_failure(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'mkdir -p out && echo hi > out/hi'}\n"
                  "image:\n  copy: [{src: out/hi, dest: /hi}]\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "push-0", "linux/amd64");
    s_submit(fx, fx->dealer, &m);
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_false(r->ok);
    assert_string_equal(r->failure, "registry"); /* the coordinator exits 3 for it */
    assert_non_null(strstr(r->message, "127.0.0.1:1"));
    af_msg_destroy(&r);
    assert_non_null(strstr(fx->states, "running pushing"));
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void server_shutdown_cancels_running_jobs(void **state)
{
    s_fx_t *fx = *state;
    s_context(fx, "build: {run: 'echo pid=$$; exec sleep 60'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "shutdown-0", "linux/amd64");
    s_submit(fx, fx->dealer, &m);
    s_wait_log(fx, "pid=");
    pid_t pgid = s_logged_pid(fx);
    zactor_destroy(&fx->agent); /* $TERM: drain */
    af_msg_t *r = s_recv_on(fx, fx->dealer, AF_CMD_RESULT, 5000);
    assert_non_null(r);
    assert_string_equal(r->failure, "cancelled");
    assert_non_null(strstr(r->message, "shutting down"));
    af_msg_destroy(&r);
    assert_false(s_group_alive(pgid));
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static void server_shutdown_with_drain_lets_running_jobs_finish(void **state)
{
    s_fx_t *fx = *state;
    fx->cfg.drain_s = 30;
    s_context(fx, "build: {run: 'echo pid=$$; sleep 1; exit 4'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "drain-a", "linux/amd64");
    s_submit(fx, fx->dealer, &m);
    s_wait_log(fx, "pid=");
    m = s_build_msg(fx, "drain-b", "linux/amd64"); /* queued behind drain-a */
    assert_true(s_submit(fx, fx->dealer, &m));
    zactor_destroy(&fx->agent); /* $TERM: drain, returns once both reported */
    bool a_done = false, b_done = false;
    for (int i = 0; i < 2; i++) {
        af_msg_t *r = s_recv_on(fx, fx->dealer, AF_CMD_RESULT, 5000);
        assert_non_null(r);
        if (!strcmp(r->job, "drain-a")) {
            assert_string_equal(r->failure, "build"); /* it ran to its end */
            assert_int_equal(r->exit_code, 4);
            a_done = true;
        } else {
            assert_string_equal(r->job, "drain-b");
            assert_string_equal(r->failure, "cancelled"); /* never started */
            b_done = true;
        }
        af_msg_destroy(&r);
    }
    assert_true(a_done && b_done);
    assert_int_equal(s_count_job_dirs(fx), 0);
}

static bool s_pid_exists(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    return access(path, F_OK) == 0;
}

static void server_reaps_processes_that_escaped_the_group(void **state)
{
    s_fx_t *fx = *state;
    fx->cfg.heartbeat_ms = 100;
    s_context(fx, "build: {run: 'setsid sleep 0.3 & echo pid=$!; exit 1'}\n");
    s_start_agent(fx);
    s_hello(fx, fx->dealer);
    af_msg_t *m = s_build_msg(fx, "stray-0", "linux/amd64");
    s_submit(fx, fx->dealer, &m);
    af_msg_t *r = s_recv(fx, AF_CMD_RESULT);
    assert_non_null(r);
    assert_string_equal(r->failure, "build");
    af_msg_destroy(&r);
    pid_t stray = s_logged_pid(fx);
    assert_true(stray > 0);
    /* it outlives the step (it left the group) but not as a zombie */
    int64_t deadline = zclock_mono() + 5000;
    while (s_pid_exists(stray) && zclock_mono() < deadline) {
        af_msg_t *hb = s_recv_on(fx, fx->dealer, AF_CMD_HEARTBEAT, 100);
        af_msg_destroy(&hb);
    }
    assert_false(s_pid_exists(stray));
}

static void server_removes_stale_job_dirs_at_startup(void **state)
{
    s_fx_t *fx = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/jobs/stale-1/ctx", fx->workdir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && echo 99999 > %s/../pgid", path, path);
    assert_int_equal(system(cmd), 0);
    s_start_agent(fx);
    assert_int_equal(s_count_job_dirs(fx), 0);
    struct stat st;
    char jobs[600];
    snprintf(jobs, sizeof jobs, "%s/jobs", fx->workdir);
    assert_int_equal(stat(jobs, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(server_hello_gets_welcome),
        T(server_sends_heartbeats_to_live_peers),
        T(server_answers_malformed_frames_with_error_and_keeps_serving),
        T(server_survives_a_storm_of_random_frames),
        T(server_drops_a_peer_that_sends_an_oversize_message),
        T(server_requires_hello_before_other_commands),
        T(server_refuses_builds_it_cannot_serve_with_infra_result),
        T(server_failing_step_reports_build_failure_with_exit_code),
        T(server_receives_a_context_over_many_credit_rounds),
        T(server_does_not_resend_a_cached_context),
        T(server_context_digest_mismatch_is_infra_failure),
        T(server_chunk_gap_is_infra_failure),
        T(server_cancel_kills_the_process_group_and_removes_the_job_dir),
        T(server_job_timeout_kills_the_step_and_reports_timeout),
        T(server_lost_coordinator_gets_its_jobs_cancelled),
        T(server_queues_beyond_max_jobs_and_starts_fifo),
        T(server_duplicate_build_gets_error_state),
        T(server_bad_recipe_is_infra_failure_naming_the_file),
        T(server_successful_step_then_unreachable_registry_is_a_registry_failure),
        T(server_shutdown_cancels_running_jobs),
        T(server_shutdown_with_drain_lets_running_jobs_finish),
        T(server_reaps_processes_that_escaped_the_group),
        T(server_removes_stale_job_dirs_at_startup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
