/* test_proto.c -- cmocka suite for common/proto: round trips of every
 * command (DEALER and ROUTER framing, and over real inproc sockets), every
 * validation failure, golden wire bytes from tests/unit/data/proto/, and a
 * deterministic garbage loop. Hostile bodies are built here with msgpack-c
 * directly: the test plays a broken or malicious peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#include <cmocka.h>
#include <msgpack.h>

#define DIGEST_A "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST_B "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define SECRET "hunter2-Very-Secret-pa55"

/* ---- fixtures ---------------------------------------------------------- */

static af_msg_t *s_sample(af_cmd_t cmd)
{
    af_msg_t *m = af_msg_new(cmd);
    assert_non_null(m);
    switch (cmd) {
    case AF_CMD_HELLO:
        strcpy(m->version, AF_VERSION);
        strcpy(m->client, "ci-host:4242");
        break;
    case AF_CMD_WELCOME:
        strcpy(m->version, AF_VERSION);
        strcpy(m->node, "node-1");
        assert_int_equal(af_msg_add_platform(m, "linux/amd64"), 0);
        assert_int_equal(af_msg_add_platform(m, "linux/arm/v7"), 0);
        assert_int_equal(af_msg_add_executor(m, "native"), 0);
        assert_int_equal(af_msg_add_executor(m, "buildah"), 0);
        m->running = 1;
        m->queued = 2;
        m->max_jobs = 3;
        m->heartbeat_ms = 1000;
        break;
    case AF_CMD_BUILD:
        strcpy(m->job, "b1234-0");
        m->attempt = 2;
        strcpy(m->platform, "linux/arm64");
        strcpy(m->recipe_kind, "native");
        strcpy(m->recipe_path, "sub dir/archfarm.yaml");
        strcpy(m->target, "final");
        assert_int_equal(af_msg_add_build_arg(m, "VERSION", "1.2 beta"), 0);
        assert_int_equal(af_msg_add_build_arg(m, "EMPTY", ""), 0);
        strcpy(m->context_digest, DIGEST_A);
        m->context_size = 12345;
        strcpy(m->context_base, DIGEST_B);
        m->context_delta_size = 678;
        strcpy(m->repository, "127.0.0.1:5000/demo/hello");
        m->registry_insecure = true;
        strcpy(m->manifest_format, "docker");
        assert_int_equal(af_msg_add_annotation(m, "org.opencontainers.image.title", "hello"), 0);
        strcpy(m->registry_username, "ci user");
        assert_int_equal(af_msg_set_password(m, SECRET), 0);
        m->source_date_epoch = 1700000000;
        m->timeout_s = 600;
        strcpy(m->compression, "zstd");
        m->compression_level = 19;
        break;
    case AF_CMD_ACCEPT:
        strcpy(m->job, "b1234-0");
        m->attempt = 2;
        m->have_context = true;
        m->job_queued = true;
        m->have_base = true;
        break;
    case AF_CMD_CREDIT:
        strcpy(m->job, "b1234-0");
        m->offset = 524288;
        m->credit = AF_CREDIT_WINDOW;
        break;
    case AF_CMD_CHUNK: {
        strcpy(m->job, "b1234-0");
        m->offset = 262144;
        zframe_t *data = zframe_new(NULL, 1000);
        assert_non_null(data);
        for (size_t i = 0; i < 1000; i++)
            zframe_data(data)[i] = (byte)(i * 7);
        af_msg_set_data(m, &data);
        assert_null(data);
        break;
    }
    case AF_CMD_LOG:
        strcpy(m->job, "b1234-0");
        strcpy(m->stream, "stderr");
        strcpy(m->line, "compiling \x1b[1mhello\x1b[0m \xc3\xbcnicode\ttab");
        break;
    case AF_CMD_STATUS:
        strcpy(m->job, "b1234-0");
        strcpy(m->state, "running");
        strcpy(m->detail, "sh -c 'go build'");
        break;
    case AF_CMD_RESULT:
        strcpy(m->job, "b1234-0");
        m->ok = true;
        strcpy(m->digest, DIGEST_A);
        strcpy(m->media_type, "application/vnd.oci.image.manifest.v1+json");
        m->size = 1234;
        strcpy(m->platform, "linux/arm64");
        m->exit_code = 0;
        strcpy(m->message, "pushed");
        m->duration_ms = 98765;
        m->pushed_bytes = 5368709120LL; /* past 32 bits */
        break;
    case AF_CMD_CANCEL:
        strcpy(m->job, "b1234-0");
        m->attempt = 0;
        break;
    case AF_CMD_HEARTBEAT:
        m->running = 1;
        m->queued = 0;
        break;
    case AF_CMD_ERROR:
        m->code = AF_ERR_PROTO;
        strcpy(m->message, "BUILD: required key 'job' is missing");
        strcpy(m->job, "b1234-0");
        break;
    default:
        break;
    }
    return m;
}

static void s_assert_frame_equal(zframe_t *a, zframe_t *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_int_equal(zframe_size(a), zframe_size(b));
    assert_memory_equal(zframe_data(a), zframe_data(b), zframe_size(a));
}

static void s_assert_msg_equal(const af_msg_t *a, const af_msg_t *b)
{
    assert_int_equal(a->cmd, b->cmd);
    assert_string_equal(a->version, b->version);
    assert_string_equal(a->client, b->client);
    assert_string_equal(a->node, b->node);
    assert_int_equal(a->n_platforms, b->n_platforms);
    for (size_t i = 0; i < a->n_platforms; i++)
        assert_string_equal(a->platforms[i], b->platforms[i]);
    assert_int_equal(a->n_executors, b->n_executors);
    for (size_t i = 0; i < a->n_executors; i++)
        assert_string_equal(a->executors[i], b->executors[i]);
    assert_int_equal(a->running, b->running);
    assert_int_equal(a->queued, b->queued);
    assert_int_equal(a->max_jobs, b->max_jobs);
    assert_int_equal(a->heartbeat_ms, b->heartbeat_ms);
    assert_string_equal(a->job, b->job);
    assert_int_equal(a->attempt, b->attempt);
    assert_string_equal(a->platform, b->platform);
    assert_string_equal(a->recipe_kind, b->recipe_kind);
    assert_string_equal(a->recipe_path, b->recipe_path);
    assert_string_equal(a->target, b->target);
    assert_int_equal(a->n_build_args, b->n_build_args);
    for (size_t i = 0; i < a->n_build_args; i++) {
        assert_string_equal(a->build_args[i].key, b->build_args[i].key);
        assert_string_equal(a->build_args[i].value, b->build_args[i].value);
    }
    assert_string_equal(a->manifest_format, b->manifest_format);
    assert_int_equal(a->n_annotations, b->n_annotations);
    for (size_t i = 0; i < a->n_annotations; i++) {
        assert_string_equal(a->annotations[i].key, b->annotations[i].key);
        assert_string_equal(a->annotations[i].value, b->annotations[i].value);
    }
    assert_string_equal(a->context_digest, b->context_digest);
    assert_true(a->context_size == b->context_size);
    assert_string_equal(a->context_base, b->context_base);
    assert_true(a->context_delta_size == b->context_delta_size);
    assert_int_equal(a->have_base, b->have_base);
    assert_string_equal(a->repository, b->repository);
    assert_int_equal(a->registry_insecure, b->registry_insecure);
    assert_string_equal(a->registry_username, b->registry_username);
    if (a->registry_password || b->registry_password) {
        assert_non_null(a->registry_password);
        assert_non_null(b->registry_password);
        assert_string_equal(a->registry_password, b->registry_password);
    }
    assert_true(a->source_date_epoch == b->source_date_epoch);
    assert_int_equal(a->timeout_s, b->timeout_s);
    assert_int_equal(a->have_context, b->have_context);
    assert_int_equal(a->job_queued, b->job_queued);
    assert_true(a->offset == b->offset);
    assert_int_equal(a->credit, b->credit);
    s_assert_frame_equal(a->data, b->data);
    assert_string_equal(a->stream, b->stream);
    assert_string_equal(a->line, b->line);
    assert_string_equal(a->state, b->state);
    assert_string_equal(a->detail, b->detail);
    assert_int_equal(a->ok, b->ok);
    assert_string_equal(a->digest, b->digest);
    assert_string_equal(a->media_type, b->media_type);
    assert_true(a->size == b->size);
    assert_string_equal(a->failure, b->failure);
    assert_int_equal(a->exit_code, b->exit_code);
    assert_string_equal(a->message, b->message);
    assert_true(a->duration_ms == b->duration_ms);
    assert_true(a->pushed_bytes == b->pushed_bytes);
    assert_string_equal(a->compression, b->compression);
    assert_int_equal(a->compression_level, b->compression_level);
    assert_int_equal(a->code, b->code);
}

/* ---- a hostile peer: raw frames and hand-packed bodies ------------------- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} tb_t;

static void tb_init(tb_t *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void tb_str(tb_t *b, const char *s, size_t len)
{
    msgpack_pack_str(&b->pk, len);
    msgpack_pack_str_body(&b->pk, s, len);
}

static void tb_cstr(tb_t *b, const char *s)
{
    tb_str(b, s, strlen(s));
}

static zmsg_t *s_raw(const char *id, const char *cmd, const void *body, size_t len)
{
    zmsg_t *z = zmsg_new();
    if (id)
        zmsg_addstr(z, id);
    if (cmd)
        zmsg_addstr(z, cmd);
    if (body)
        zmsg_addmem(z, body, len);
    return z;
}

/* Encodes the sample of CMD, then rewrites its body: KEY is dropped and,
 * when VAL is non-NULL, re-added with the raw msgpack value VAL. With
 * DUP the original pair is kept too (duplicate key). */
static zmsg_t *s_with_dup(af_cmd_t cmd, const char *key, const void *val, size_t vlen, bool dup)
{
    af_msg_t *m = s_sample(cmd);
    zmsg_t *z = af_msg_encode(m, NULL);
    assert_non_null(z);
    af_msg_destroy(&m);
    zframe_t *body = zmsg_first(z);
    body = zmsg_next(z);
    body = zmsg_next(z);

    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(
        msgpack_unpack_next(&up, (const char *)zframe_data(body), zframe_size(body), &off),
        MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
    const msgpack_object_map *map = &up.data.via.map;
    size_t keep = 0;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object_str *k = &map->ptr[i].key.via.str;
        if (dup || !key || k->size != strlen(key) || memcmp(k->ptr, key, k->size))
            keep++;
    }
    tb_t b;
    tb_init(&b);
    msgpack_pack_map(&b.pk, keep + (val ? 1 : 0));
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object_str *k = &map->ptr[i].key.via.str;
        if (dup || !key || k->size != strlen(key) || memcmp(k->ptr, key, k->size)) {
            msgpack_pack_object(&b.pk, map->ptr[i].key);
            msgpack_pack_object(&b.pk, map->ptr[i].val);
        }
    }
    if (val) {
        tb_cstr(&b, key);
        msgpack_sbuffer_write(&b.sb, val, vlen);
    }
    zframe_reset(body, b.sb.data, b.sb.size);
    msgpack_sbuffer_destroy(&b.sb);
    msgpack_unpacked_destroy(&up);
    return z;
}

static zmsg_t *s_with(af_cmd_t cmd, const char *key, const void *val, size_t vlen)
{
    return s_with_dup(cmd, key, val, vlen, false);
}

/* Same, with a string value. */
static zmsg_t *s_with_str(af_cmd_t cmd, const char *key, const char *s, size_t len)
{
    tb_t b;
    tb_init(&b);
    tb_str(&b, s, len);
    zmsg_t *z = s_with(cmd, key, b.sb.data, b.sb.size);
    msgpack_sbuffer_destroy(&b.sb);
    return z;
}

static zmsg_t *s_with_uint(af_cmd_t cmd, const char *key, uint64_t v)
{
    tb_t b;
    tb_init(&b);
    msgpack_pack_uint64(&b.pk, v);
    zmsg_t *z = s_with(cmd, key, b.sb.data, b.sb.size);
    msgpack_sbuffer_destroy(&b.sb);
    return z;
}

static zmsg_t *s_with_int(af_cmd_t cmd, const char *key, int64_t v)
{
    tb_t b;
    tb_init(&b);
    msgpack_pack_int64(&b.pk, v);
    zmsg_t *z = s_with(cmd, key, b.sb.data, b.sb.size);
    msgpack_sbuffer_destroy(&b.sb);
    return z;
}

/* Decodes Z (taken) expecting failure with CODE and SUBSTR in the message. */
static void s_expect_fail_as(zmsg_t *z, bool router, int code, const char *substr)
{
    af_err_t err;
    af_err_clear(&err);
    zframe_t *rid = NULL;
    af_msg_t *m = af_msg_decode(&z, router, &rid, &err);
    assert_null(z);
    if (m) {
        char buf[512];
        print_error("unexpectedly decoded: %s\n", af_msg_summary(m, buf, sizeof buf));
        af_msg_destroy(&m);
        fail();
    }
    if (err.code != code || (substr && !strstr(err.msg, substr)))
        print_error("got %d \"%s\", want %d \"%s\"\n", err.code, err.msg, code,
                    substr ? substr : "");
    assert_int_equal(err.code, code);
    if (substr)
        assert_non_null(strstr(err.msg, substr));
    assert_null(strstr(err.msg, SECRET));
    zframe_destroy(&rid);
}

static void s_expect_fail(zmsg_t *z, int code, const char *substr)
{
    s_expect_fail_as(z, false, code, substr);
}

static af_msg_t *s_expect_ok(zmsg_t *z)
{
    af_err_t err;
    af_err_clear(&err);
    af_msg_t *m = af_msg_decode(&z, false, NULL, &err);
    if (!m)
        print_error("decode failed: %s\n", err.msg);
    assert_non_null(m);
    assert_null(z);
    return m;
}

/* ---- round trips ------------------------------------------------------- */

static void proto_roundtrip_every_command_dealer(void **state)
{
    (void)state;
    for (int c = AF_CMD_HELLO; c < AF_CMD_COUNT; c++) {
        af_msg_t *m = s_sample((af_cmd_t)c);
        af_err_t err;
        af_err_clear(&err);
        zmsg_t *z = af_msg_encode(m, &err);
        if (!z)
            print_error("%s: %s\n", af_cmd_name((af_cmd_t)c), err.msg);
        assert_non_null(z);
        assert_int_equal(zmsg_size(z), c == AF_CMD_CHUNK ? 4 : 3);
        assert_true(zframe_streq(zmsg_first(z), AF_PROTO_ID));
        assert_true(zframe_streq(zmsg_next(z), af_cmd_name((af_cmd_t)c)));
        af_msg_t *d = af_msg_decode(&z, false, NULL, &err);
        if (!d)
            print_error("%s: %s\n", af_cmd_name((af_cmd_t)c), err.msg);
        assert_non_null(d);
        assert_null(d->routing_id);
        s_assert_msg_equal(m, d);
        af_msg_destroy(&m);
        af_msg_destroy(&d);
    }
}

static void proto_roundtrip_every_command_router(void **state)
{
    (void)state;
    for (int c = AF_CMD_HELLO; c < AF_CMD_COUNT; c++) {
        af_msg_t *m = s_sample((af_cmd_t)c);
        zframe_t *rid = zframe_new("\x00peer\x01", 6);
        af_msg_set_routing_id(m, rid);
        zframe_destroy(&rid);
        zmsg_t *z = af_msg_encode(m, NULL);
        assert_non_null(z);
        assert_int_equal(zmsg_size(z), c == AF_CMD_CHUNK ? 5 : 4);
        zframe_t *got_rid = NULL;
        af_msg_t *d = af_msg_decode(&z, true, &got_rid, NULL);
        assert_non_null(d);
        assert_null(got_rid);
        s_assert_frame_equal(m->routing_id, d->routing_id);
        s_assert_msg_equal(m, d);
        af_msg_destroy(&m);
        af_msg_destroy(&d);
    }
}

static void proto_defaults_survive_roundtrip(void **state)
{
    (void)state;
    /* a minimal BUILD: optional keys carry their documented defaults */
    af_msg_t *m = af_msg_new(AF_CMD_BUILD);
    assert_int_equal(m->attempt, 1);
    assert_true(m->source_date_epoch == -1);
    assert_int_equal(m->exit_code, -1);
    strcpy(m->job, "j");
    strcpy(m->platform, "linux/amd64");
    strcpy(m->recipe_kind, "dockerfile");
    strcpy(m->recipe_path, "Dockerfile");
    strcpy(m->context_digest, DIGEST_A);
    strcpy(m->repository, "r:5000/x");
    zmsg_t *z = af_msg_encode(m, NULL);
    af_msg_t *d = s_expect_ok(z);
    s_assert_msg_equal(m, d);
    assert_null(d->registry_password);
    af_msg_destroy(&m);
    af_msg_destroy(&d);

    /* a failed RESULT with an empty digest and platform */
    m = af_msg_new(AF_CMD_RESULT);
    strcpy(m->job, "j");
    strcpy(m->failure, "infra");
    strcpy(m->message, "platform linux/s390x not served");
    d = s_expect_ok(af_msg_encode(m, NULL));
    s_assert_msg_equal(m, d);
    af_msg_destroy(&m);
    af_msg_destroy(&d);
}

static void proto_send_recv_over_inproc_router_dealer(void **state)
{
    (void)state;
    zsock_t *router = zsock_new_router("inproc://proto-test");
    zsock_t *dealer = zsock_new_dealer(">inproc://proto-test");
    assert_non_null(router);
    assert_non_null(dealer);
    zsock_set_rcvtimeo(router, 2000);
    zsock_set_rcvtimeo(dealer, 2000);

    for (int c = AF_CMD_HELLO; c < AF_CMD_COUNT; c++) {
        /* coordinator -> agent */
        af_msg_t *m = s_sample((af_cmd_t)c);
        assert_int_equal(af_msg_send(m, dealer, NULL), 0);
        zframe_t *rid = NULL;
        af_err_t err;
        af_err_clear(&err);
        af_msg_t *got = af_msg_recv(router, true, &rid, &err);
        assert_non_null(got);
        assert_null(rid);
        assert_non_null(got->routing_id);
        s_assert_msg_equal(m, got);

        /* agent -> coordinator, addressed by the routing id we got;
         * af_msg_send leaves the message intact, so send it twice */
        af_msg_t *reply = s_sample((af_cmd_t)c);
        af_msg_set_routing_id(reply, got->routing_id);
        assert_int_equal(af_msg_send(reply, router, NULL), 0);
        assert_int_equal(af_msg_send(reply, router, NULL), 0);
        for (int k = 0; k < 2; k++) {
            af_msg_t *back = af_msg_recv(dealer, false, NULL, &err);
            assert_non_null(back);
            assert_null(back->routing_id);
            af_msg_set_routing_id(reply, NULL);
            s_assert_msg_equal(m, back);
            af_msg_set_routing_id(reply, got->routing_id);
            af_msg_destroy(&back);
        }
        af_msg_destroy(&reply);
        af_msg_destroy(&got);
        af_msg_destroy(&m);
    }

    /* garbage on the ROUTER: the routing id comes back for an ERROR */
    zmsg_t *junk = s_raw("NOTPROTO", "HELLO", "\x80", 1);
    assert_int_equal(zmsg_send(&junk, dealer), 0);
    zframe_t *rid = NULL;
    af_err_t err;
    af_err_clear(&err);
    assert_null(af_msg_recv(router, true, &rid, &err));
    assert_int_equal(err.code, AF_ERR_PROTO);
    assert_non_null(rid);
    af_msg_t *e = af_msg_new(AF_CMD_ERROR);
    e->code = err.code;
    snprintf(e->message, sizeof e->message, "%s", err.msg);
    af_msg_set_routing_id(e, rid);
    zframe_destroy(&rid);
    assert_int_equal(af_msg_send(e, router, NULL), 0);
    af_msg_t *back = af_msg_recv(dealer, false, NULL, NULL);
    assert_non_null(back);
    assert_int_equal(back->cmd, AF_CMD_ERROR);
    assert_int_equal(back->code, AF_ERR_PROTO);
    assert_string_equal(back->message, err.msg);
    af_msg_destroy(&back);
    af_msg_destroy(&e);

    /* nothing to read: a timeout, not a crash */
    zsock_set_rcvtimeo(dealer, 10);
    assert_null(af_msg_recv(dealer, false, NULL, &err));
    assert_int_equal(err.code, AF_ERR_TIMEOUT);

    zsock_destroy(&dealer);
    zsock_destroy(&router);
}

/* ---- golden bytes ------------------------------------------------------ */

static void *s_read_data(const char *name, size_t *len)
{
    const char *dir = getenv("AF_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/proto/%s", dir ? dir : "data", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        print_error("cannot open %s\n", path);
    assert_non_null(f);
    static const size_t cap = 65536;
    char *buf = malloc(cap);
    *len = fread(buf, 1, cap, f);
    fclose(f);
    return buf;
}

static void proto_hello_encodes_to_golden_bytes(void **state)
{
    (void)state;
    size_t len;
    char *golden = s_read_data("hello.body", &len);
    af_msg_t *m = af_msg_new(AF_CMD_HELLO);
    strcpy(m->version, "0.1.0");
    strcpy(m->client, "ci:42");
    zmsg_t *z = af_msg_encode(m, NULL);
    zframe_t *body = zmsg_last(z);
    assert_int_equal(zframe_size(body), len);
    assert_memory_equal(zframe_data(body), golden, len);
    af_msg_destroy(&m);
    zmsg_destroy(&z);

    m = s_expect_ok(s_raw(AF_PROTO_ID, "HELLO", golden, len));
    assert_string_equal(m->version, "0.1.0");
    assert_string_equal(m->client, "ci:42");
    af_msg_destroy(&m);
    free(golden);
}

static void proto_build_from_foreign_encoder_decodes(void **state)
{
    (void)state;
    /* map16, str8 keys, uint64/int32/int8 number forms, an unknown key with
     * ext and float values: what another msgpack library might send */
    size_t len;
    char *body = s_read_data("build_foreign.body", &len);
    af_msg_t *m = s_expect_ok(s_raw(AF_PROTO_ID, "BUILD", body, len));
    assert_string_equal(m->job, "job-1");
    assert_int_equal(m->attempt, 1);
    assert_string_equal(m->platform, "linux/arm64");
    assert_string_equal(m->recipe_kind, "native");
    assert_string_equal(m->recipe_path, "archfarm.yaml");
    assert_string_equal(m->context_digest,
                        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_true(m->context_size == 10240);
    assert_string_equal(m->repository, "localhost:5000/x");
    assert_true(m->source_date_epoch == -1);
    assert_int_equal(m->timeout_s, 60);
    assert_null(m->registry_password);
    af_msg_destroy(&m);
    free(body);
}

/* pushed_bytes (RESULT) is optional both ways: an old agent's RESULT
 * without it decodes as -1 (unknown), an old coordinator ignores it as an
 * unknown key, and -1 and 0 are distinct values on the wire. */
static void proto_result_pushed_bytes_optional_and_compatible(void **state)
{
    (void)state;
    af_msg_t *m = s_expect_ok(s_with(AF_CMD_RESULT, "pushed_bytes", NULL, 0));
    assert_true(m->pushed_bytes == -1);
    assert_true(m->ok);
    af_msg_destroy(&m);

    m = s_expect_ok(s_with_uint(AF_CMD_RESULT, "pushed_bytes", 0));
    assert_true(m->pushed_bytes == 0);
    af_msg_destroy(&m);
    m = s_expect_ok(s_with_int(AF_CMD_RESULT, "pushed_bytes", -1));
    assert_true(m->pushed_bytes == -1);
    af_msg_destroy(&m);
    m = s_expect_ok(s_with_uint(AF_CMD_RESULT, "pushed_bytes", (uint64_t)INT64_MAX));
    assert_true(m->pushed_bytes == INT64_MAX);
    af_msg_destroy(&m);

    s_expect_fail(s_with_int(AF_CMD_RESULT, "pushed_bytes", -2), AF_ERR_PROTO, "'pushed_bytes'");
    s_expect_fail(s_with_uint(AF_CMD_RESULT, "pushed_bytes", (uint64_t)INT64_MAX + 1),
                  AF_ERR_TOOBIG, "'pushed_bytes'");
    s_expect_fail(s_with_str(AF_CMD_RESULT, "pushed_bytes", "12", 2), AF_ERR_PROTO,
                  "'pushed_bytes'");

    /* a new message starts as unknown, so an executor that cannot tell
     * never claims 0 */
    af_msg_t *r = af_msg_new(AF_CMD_RESULT);
    assert_true(r->pushed_bytes == -1);
    af_msg_destroy(&r);
}

/* BUILD's compression: "" (gzip) by default; an unknown algorithm or a
 * level out of range is refused. */
static void proto_build_compression_is_checked(void **state)
{
    (void)state;
    af_msg_t *m = s_expect_ok(s_with(AF_CMD_BUILD, "compression", NULL, 0));
    assert_string_equal(m->compression, "");
    af_msg_destroy(&m);
    m = s_expect_ok(s_with(AF_CMD_BUILD, "compression_level", NULL, 0));
    assert_int_equal(m->compression_level, 0);
    af_msg_destroy(&m);
    m = s_expect_ok(s_with_str(AF_CMD_BUILD, "compression", "gzip", 4));
    assert_string_equal(m->compression, "gzip");
    af_msg_destroy(&m);
    s_expect_fail(s_with_str(AF_CMD_BUILD, "compression", "xz", 2), AF_ERR_PROTO, "'compression'");
    s_expect_fail(s_with_uint(AF_CMD_BUILD, "compression_level", AF_COMPRESSION_LEVEL_MAX + 1),
                  AF_ERR_TOOBIG, "'compression_level'");
    s_expect_fail(s_with_int(AF_CMD_BUILD, "compression_level", -1), AF_ERR_PROTO,
                  "'compression_level'");
}

/* ---- validation failures ----------------------------------------------- */

static void proto_decode_rejects_missing_required_keys(void **state)
{
    (void)state;
    static const struct {
        af_cmd_t cmd;
        const char *keys[10];
    } req[] = {
        {AF_CMD_HELLO, {"version"}},
        {AF_CMD_WELCOME,
         {"version", "node", "platforms", "executors", "running", "queued", "max_jobs",
          "heartbeat_ms"}},
        {AF_CMD_BUILD,
         {"job", "attempt", "platform", "recipe_kind", "recipe_path", "context_digest",
          "context_size", "repository"}},
        {AF_CMD_ACCEPT, {"job", "attempt", "have_context"}},
        {AF_CMD_CREDIT, {"job", "attempt", "offset", "credit"}},
        {AF_CMD_CHUNK, {"job", "attempt", "offset"}},
        {AF_CMD_LOG, {"job", "attempt", "stream", "line"}},
        {AF_CMD_STATUS, {"job", "attempt", "state"}},
        {AF_CMD_RESULT, {"job", "attempt", "ok"}},
        {AF_CMD_CANCEL, {"job", "attempt"}},
        {AF_CMD_HEARTBEAT, {"running", "queued"}},
        {AF_CMD_ERROR, {"code", "message"}},
    };
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
        for (size_t k = 0; k < 10 && req[i].keys[k]; k++) {
            char want[128];
            snprintf(want, sizeof want, "required key '%s' is missing", req[i].keys[k]);
            s_expect_fail(s_with(req[i].cmd, req[i].keys[k], NULL, 0), AF_ERR_PROTO, want);
        }
    /* optional keys may be left out */
    static const struct {
        af_cmd_t cmd;
        const char *key;
    } opt[] = {{AF_CMD_HELLO, "client"},
               {AF_CMD_BUILD, "target"},
               {AF_CMD_BUILD, "build_args"},
               {AF_CMD_BUILD, "registry_password"},
               {AF_CMD_BUILD, "registry_username"},
               {AF_CMD_BUILD, "source_date_epoch"},
               {AF_CMD_BUILD, "timeout_s"},
               {AF_CMD_ACCEPT, "job_queued"},
               {AF_CMD_STATUS, "detail"},
               {AF_CMD_RESULT, "size"},
               {AF_CMD_ERROR, "job"}};
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
        af_msg_t *m = s_expect_ok(s_with(opt[i].cmd, opt[i].key, NULL, 0));
        af_msg_destroy(&m);
    }
}

static void proto_decode_rejects_wrong_types(void **state)
{
    (void)state;
    /* int where str, str where uint, float where uint, negative where
     * unsigned, nil, bin, ext, array where map, map where array */
    s_expect_fail(s_with_uint(AF_CMD_BUILD, "job", 7), AF_ERR_PROTO, "'job' must be str, got uint");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "attempt", "1", 1), AF_ERR_PROTO,
                  "'attempt' must be uint, got str");
    s_expect_fail(s_with(AF_CMD_BUILD, "attempt", "\xcb\x3f\xf0\0\0\0\0\0\0", 9), AF_ERR_PROTO,
                  "got float");
    s_expect_fail(s_with(AF_CMD_CREDIT, "credit", "\xca\x3f\x80\0\0", 5), AF_ERR_PROTO,
                  "got float");
    s_expect_fail(s_with_int(AF_CMD_BUILD, "context_size", -5), AF_ERR_PROTO,
                  "'context_size' must be >= 0");
    s_expect_fail(s_with(AF_CMD_BUILD, "job", "\xc0", 1), AF_ERR_PROTO, "got nil");
    s_expect_fail(s_with(AF_CMD_BUILD, "job", "\xc4\x01x", 3), AF_ERR_PROTO, "got bin");
    s_expect_fail(s_with(AF_CMD_BUILD, "job", "\xd4\x01x", 3), AF_ERR_PROTO, "got ext");
    s_expect_fail(s_with(AF_CMD_BUILD, "registry_insecure", "\x01", 1), AF_ERR_PROTO,
                  "'registry_insecure' must be bool");
    s_expect_fail(s_with(AF_CMD_ACCEPT, "have_context", "\xa4true", 5), AF_ERR_PROTO,
                  "must be bool");
    s_expect_fail(s_with(AF_CMD_BUILD, "build_args", "\x91\xa1x", 3), AF_ERR_PROTO,
                  "'build_args' must be map, got array");
    s_expect_fail(s_with(AF_CMD_BUILD, "build_args", "\x81\xa1K\x05", 4), AF_ERR_PROTO,
                  "must be str, got uint");
    s_expect_fail(s_with(AF_CMD_BUILD, "build_args", "\x81\x01\xa1v", 4), AF_ERR_PROTO,
                  "must be str, got uint");
    s_expect_fail(s_with(AF_CMD_WELCOME, "platforms", "\x81\xa1x\xa1y", 5), AF_ERR_PROTO,
                  "'platforms' must be array, got map");
    s_expect_fail(s_with(AF_CMD_WELCOME, "platforms", "\x92\xa5linux\x07", 8), AF_ERR_PROTO,
                  "must be str, got uint");
    s_expect_fail(s_with(AF_CMD_BUILD, "registry_password", "\x05", 1), AF_ERR_PROTO,
                  "'registry_password' must be str");
    s_expect_fail(s_with(AF_CMD_ERROR, "code", "\xa1x", 2), AF_ERR_PROTO, "'code' must be int");
}

static void proto_decode_checks_number_ranges(void **state)
{
    (void)state;
    s_expect_fail(s_with_uint(AF_CMD_BUILD, "attempt", (uint64_t)UINT32_MAX + 1), AF_ERR_TOOBIG,
                  "'attempt' must be <= 4294967295");
    af_msg_t *m = s_expect_ok(s_with_uint(AF_CMD_BUILD, "attempt", UINT32_MAX));
    assert_int_equal(m->attempt, UINT32_MAX);
    af_msg_destroy(&m);
    s_expect_fail(s_with_uint(AF_CMD_HEARTBEAT, "running", UINT64_MAX), AF_ERR_TOOBIG, NULL);
    s_expect_fail(s_with_int(AF_CMD_HEARTBEAT, "queued", -1), AF_ERR_PROTO, "must be >= 0");
    s_expect_fail(s_with_int(AF_CMD_HEARTBEAT, "queued", INT64_MIN), AF_ERR_PROTO, NULL);
    s_expect_fail(s_with_uint(AF_CMD_WELCOME, "heartbeat_ms", 0), AF_ERR_PROTO,
                  "'heartbeat_ms' must be >= 1");
    s_expect_fail(s_with_uint(AF_CMD_BUILD, "context_size", (uint64_t)AF_CONTEXT_MAX_BYTES + 1),
                  AF_ERR_TOOBIG, "'context_size'");
    s_expect_fail(s_with_uint(AF_CMD_CHUNK, "offset", (uint64_t)AF_CONTEXT_MAX_BYTES),
                  AF_ERR_TOOBIG, "beyond the context limit");
    s_expect_fail(s_with_int(AF_CMD_BUILD, "source_date_epoch", -2), AF_ERR_PROTO,
                  "'source_date_epoch' must be >= -1");
    m = s_expect_ok(s_with_int(AF_CMD_BUILD, "source_date_epoch", 0));
    assert_true(m->source_date_epoch == 0);
    af_msg_destroy(&m);
    s_expect_fail(s_with_uint(AF_CMD_RESULT, "exit_code", (uint64_t)INT32_MAX + 1), AF_ERR_TOOBIG,
                  NULL);
    s_expect_fail(s_with_int(AF_CMD_RESULT, "exit_code", (int64_t)INT32_MIN - 1), AF_ERR_PROTO,
                  NULL);
    m = s_expect_ok(s_with_int(AF_CMD_RESULT, "exit_code", INT32_MIN));
    assert_int_equal(m->exit_code, INT32_MIN);
    af_msg_destroy(&m);
    m = s_expect_ok(s_with_int(AF_CMD_ERROR, "code", AF_ERR_UNSUPPORTED));
    assert_int_equal(m->code, AF_ERR_UNSUPPORTED);
    af_msg_destroy(&m);
    m = s_expect_ok(s_with_uint(AF_CMD_RESULT, "size", UINT64_MAX));
    assert_true(m->size == UINT64_MAX);
    af_msg_destroy(&m);
}

static void proto_attempt_zero_only_for_cancel(void **state)
{
    (void)state;
    for (int c = AF_CMD_BUILD; c <= AF_CMD_RESULT; c++)
        s_expect_fail(s_with_uint((af_cmd_t)c, "attempt", 0), AF_ERR_PROTO,
                      "'attempt' must be >= 1");
    af_msg_t *m = s_expect_ok(s_with_uint(AF_CMD_CANCEL, "attempt", 0));
    assert_int_equal(m->attempt, 0);
    af_msg_destroy(&m);
    m = s_expect_ok(s_with_uint(AF_CMD_CANCEL, "attempt", 3));
    assert_int_equal(m->attempt, 3);
    af_msg_destroy(&m);
}

static void proto_decode_rejects_too_long_strings_and_lists(void **state)
{
    (void)state;
    char big[AF_MAX_LOG_LINE + 2];
    memset(big, 'a', sizeof big);
    s_expect_fail(s_with_str(AF_CMD_BUILD, "job", big, AF_MAX_NAME + 1), AF_ERR_TOOBIG,
                  "'job' is longer than 128 bytes");
    s_expect_fail(s_with_str(AF_CMD_LOG, "line", big, AF_MAX_LOG_LINE + 1), AF_ERR_TOOBIG,
                  "'line' is longer than 4096 bytes");
    af_msg_t *m = s_expect_ok(s_with_str(AF_CMD_LOG, "line", big, AF_MAX_LOG_LINE));
    assert_int_equal(strlen(m->line), AF_MAX_LOG_LINE);
    af_msg_destroy(&m);
    s_expect_fail(s_with_str(AF_CMD_BUILD, "recipe_path", big, AF_MAX_STR + 1), AF_ERR_TOOBIG,
                  "'recipe_path'");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "repository", big, AF_MAX_REF + 1), AF_ERR_TOOBIG,
                  "'repository'");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "platform", big, AF_PLATFORM_STR_MAX), AF_ERR_TOOBIG,
                  "'platform'");
    s_expect_fail(s_with_str(AF_CMD_STATUS, "state", big, 32), AF_ERR_TOOBIG, "'state'");

    char *pw = malloc(AF_MAX_SECRET + 1);
    memset(pw, 'p', AF_MAX_SECRET + 1);
    s_expect_fail(s_with_str(AF_CMD_BUILD, "registry_password", pw, AF_MAX_SECRET + 1),
                  AF_ERR_TOOBIG, "'registry_password'");
    m = s_expect_ok(s_with_str(AF_CMD_BUILD, "registry_password", pw, AF_MAX_SECRET));
    assert_int_equal(strlen(m->registry_password), AF_MAX_SECRET);
    af_msg_destroy(&m);
    free(pw);

    /* lists: 65 platforms, a 48-byte platform, 129 build args */
    tb_t b;
    tb_init(&b);
    msgpack_pack_array(&b.pk, AF_MAX_LIST + 1);
    for (int i = 0; i <= AF_MAX_LIST; i++)
        tb_cstr(&b, "linux/amd64");
    s_expect_fail(s_with(AF_CMD_WELCOME, "platforms", b.sb.data, b.sb.size), AF_ERR_TOOBIG,
                  "'platforms' has more than 64 items");
    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_array(&b.pk, 1);
    tb_str(&b, big, AF_PLATFORM_STR_MAX);
    s_expect_fail(s_with(AF_CMD_WELCOME, "platforms", b.sb.data, b.sb.size), AF_ERR_TOOBIG,
                  "'platforms'");
    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(&b.pk, AF_MAX_BUILD_ARGS + 1);
    for (int i = 0; i <= AF_MAX_BUILD_ARGS; i++) {
        char k[16];
        snprintf(k, sizeof k, "K%d", i);
        tb_cstr(&b, k);
        tb_cstr(&b, "v");
    }
    s_expect_fail(s_with(AF_CMD_BUILD, "build_args", b.sb.data, b.sb.size), AF_ERR_TOOBIG,
                  "'build_args' has more than 128 items");
    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(&b.pk, 1);
    tb_str(&b, big, AF_MAX_NAME + 1);
    tb_cstr(&b, "v");
    s_expect_fail(s_with(AF_CMD_BUILD, "build_args", b.sb.data, b.sb.size), AF_ERR_TOOBIG, NULL);
    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(&b.pk, 2);
    tb_cstr(&b, "A");
    tb_cstr(&b, "1");
    tb_cstr(&b, "A");
    tb_cstr(&b, "2");
    s_expect_fail(s_with(AF_CMD_BUILD, "build_args", b.sb.data, b.sb.size), AF_ERR_PROTO,
                  "key \"A\" is repeated");
    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_map(&b.pk, 1);
    tb_cstr(&b, "A=B");
    tb_cstr(&b, "1");
    s_expect_fail(s_with(AF_CMD_BUILD, "build_args", b.sb.data, b.sb.size), AF_ERR_PROTO,
                  "is not a name");
    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_array(&b.pk, 1);
    tb_cstr(&b, "");
    s_expect_fail(s_with(AF_CMD_WELCOME, "executors", b.sb.data, b.sb.size), AF_ERR_PROTO,
                  "'executors' must not be empty");
    msgpack_sbuffer_destroy(&b.sb);
}

static void proto_decode_rejects_nul_inside_strings(void **state)
{
    (void)state;
    s_expect_fail(s_with_str(AF_CMD_LOG, "line", "ab\0cd", 5), AF_ERR_PROTO,
                  "'line' contains a NUL byte");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "job", "j\0", 2), AF_ERR_PROTO, "NUL");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "registry_password", "se\0cret", 7), AF_ERR_PROTO,
                  "NUL");
    s_expect_fail(s_with(AF_CMD_BUILD, "build_args", "\x81\xa1K\xa3v\0v", 7), AF_ERR_PROTO, "NUL");
}

static void proto_decode_checks_job_ids(void **state)
{
    (void)state;
    static const char *bad[] = {"", "-a", ".a", "_a", "a b", "a/b", "a:b", "\xc3\xa4", "a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_expect_fail(s_with_str(AF_CMD_BUILD, "job", bad[i], strlen(bad[i])), AF_ERR_PROTO,
                      bad[i][0] ? "is not a job id" : "'job' must not be empty");
    char max[AF_MAX_NAME + 1];
    memset(max, 'x', AF_MAX_NAME);
    max[AF_MAX_NAME] = '\0';
    const char *good[] = {"a", "0", "A.b_c-1", "build-20261130-3", max};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        af_msg_t *m = s_expect_ok(s_with_str(AF_CMD_BUILD, "job", good[i], strlen(good[i])));
        assert_string_equal(m->job, good[i]);
        af_msg_destroy(&m);
    }
    /* ERROR may leave job empty, but not malformed */
    af_msg_t *m = s_expect_ok(s_with_str(AF_CMD_ERROR, "job", "", 0));
    af_msg_destroy(&m);
    s_expect_fail(s_with_str(AF_CMD_ERROR, "job", "a b", 3), AF_ERR_PROTO, "job id");
}

static void proto_decode_checks_digests(void **state)
{
    (void)state;
    static const char *bad[] = {
        "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_expect_fail(s_with_str(AF_CMD_BUILD, "context_digest", bad[i], strlen(bad[i])),
                      AF_ERR_PROTO, "is not sha256:<64 lowercase hex>");
        s_expect_fail(s_with_str(AF_CMD_RESULT, "digest", bad[i], strlen(bad[i])), AF_ERR_PROTO,
                      "'digest'");
    }
    static const char longer[] =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0";
    s_expect_fail(s_with_str(AF_CMD_BUILD, "context_digest", longer, sizeof longer - 1),
                  AF_ERR_TOOBIG, "'context_digest' is longer than 71 bytes");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "context_digest", "", 0), AF_ERR_PROTO,
                  "'context_digest' must not be empty");
    /* a delta base comes with its size, is a digest, and is not the context itself */
    s_expect_fail(s_with_str(AF_CMD_BUILD, "context_base", "", 0), AF_ERR_PROTO,
                  "'context_base' and 'context_delta_size' come together");
    s_expect_fail(s_with_uint(AF_CMD_BUILD, "context_delta_size", 0), AF_ERR_PROTO,
                  "'context_base' and 'context_delta_size' come together");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "context_base", DIGEST_A, strlen(DIGEST_A)),
                  AF_ERR_PROTO, "'context_base' must differ");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "context_base", bad[0], strlen(bad[0])), AF_ERR_PROTO,
                  "is not sha256:<64 lowercase hex>");
    s_expect_fail(s_with_uint(AF_CMD_BUILD, "context_delta_size",
                              (uint64_t)AF_CONTEXT_MAX_BYTES + 1),
                  AF_ERR_TOOBIG, "'context_delta_size' must be <=");
    /* a successful RESULT needs its digest, a failed one does not */
    s_expect_fail(s_with_str(AF_CMD_RESULT, "digest", "", 0), AF_ERR_PROTO,
                  "ok=true needs a digest");
}

static void proto_decode_checks_enums_and_words(void **state)
{
    (void)state;
    s_expect_fail(s_with_str(AF_CMD_BUILD, "recipe_kind", "docker", 6), AF_ERR_PROTO,
                  "'recipe_kind' \"docker\" is not one of the allowed values");
    s_expect_fail(s_with_str(AF_CMD_LOG, "stream", "stdin", 5), AF_ERR_PROTO, "'stream'");
    s_expect_fail(s_with_str(AF_CMD_STATUS, "state", "Running", 7), AF_ERR_PROTO, "'state'");
    s_expect_fail(s_with_str(AF_CMD_STATUS, "state", "", 0), AF_ERR_PROTO, "must not be empty");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "platform", "linux amd64", 11), AF_ERR_PROTO,
                  "'platform'");
    s_expect_fail(s_with_str(AF_CMD_BUILD, "repository", "host/a b", 8), AF_ERR_PROTO,
                  "'repository'");
    s_expect_fail(s_with_str(AF_CMD_HELLO, "version", "0.1\x01", 4), AF_ERR_PROTO, "'version'");
    /* a future state word is accepted: receivers treat it as informational */
    af_msg_t *m = s_expect_ok(s_with_str(AF_CMD_STATUS, "state", "resolving-base", 14));
    assert_string_equal(m->state, "resolving-base");
    af_msg_destroy(&m);

    /* RESULT.failure */
    af_msg_t *r = s_sample(AF_CMD_RESULT);
    r->ok = false;
    r->digest[0] = '\0';
    strcpy(r->failure, "oops");
    af_err_t err;
    af_err_clear(&err);
    assert_null(af_msg_encode(r, &err));
    assert_non_null(strstr(err.msg, "'failure'"));
    static const char *ok_failures[] = {"build", "infra", "cancelled", "timeout"};
    for (size_t i = 0; i < 4; i++) {
        strcpy(r->failure, ok_failures[i]);
        m = s_expect_ok(af_msg_encode(r, NULL));
        assert_string_equal(m->failure, ok_failures[i]);
        af_msg_destroy(&m);
    }
    r->failure[0] = '\0';
    assert_null(af_msg_encode(r, &err));
    assert_non_null(strstr(err.msg, "ok=false needs a failure"));
    af_msg_destroy(&r);
}

static void proto_decode_rejects_bad_framing(void **state)
{
    (void)state;
    af_msg_t *m = s_sample(AF_CMD_HELLO);
    zmsg_t *good = af_msg_encode(m, NULL);
    af_msg_destroy(&m);
    zframe_t *body = zmsg_last(good);

    s_expect_fail(NULL, AF_ERR_PROTO, "empty message");
    s_expect_fail(zmsg_new(), AF_ERR_PROTO, "empty message");
    s_expect_fail(s_raw("ARCHFARM2", "HELLO", zframe_data(body), zframe_size(body)), AF_ERR_PROTO,
                  "protocol id \"ARCHFARM2\"");
    s_expect_fail(s_raw("archfarm1", "HELLO", zframe_data(body), zframe_size(body)), AF_ERR_PROTO,
                  "not an ARCHFARM1 message");
    zmsg_t *z = zmsg_new();
    zmsg_addmem(z, "ARCHFARM1\0", 10);
    zmsg_addstr(z, "HELLO");
    zmsg_addmem(z, zframe_data(body), zframe_size(body));
    s_expect_fail(z, AF_ERR_PROTO, "not an ARCHFARM1 message");
    s_expect_fail(s_raw("", NULL, NULL, 0), AF_ERR_PROTO, "protocol id");
    s_expect_fail(s_raw(AF_PROTO_ID, NULL, NULL, 0), AF_ERR_PROTO, "no command frame");
    s_expect_fail(s_raw(AF_PROTO_ID, "HELLO", NULL, 0), AF_ERR_PROTO, "HELLO: message has no body");
    s_expect_fail(s_raw(AF_PROTO_ID, "FROB", zframe_data(body), zframe_size(body)),
                  AF_ERR_UNSUPPORTED, "unknown command \"FROB\"");
    s_expect_fail(s_raw(AF_PROTO_ID, "hello", zframe_data(body), zframe_size(body)),
                  AF_ERR_UNSUPPORTED, "unknown command");
    s_expect_fail(s_raw(AF_PROTO_ID, "INVALID", zframe_data(body), zframe_size(body)),
                  AF_ERR_UNSUPPORTED, "unknown command");
    z = zmsg_new();
    zmsg_addstr(z, AF_PROTO_ID);
    zmsg_addmem(z, "HELLO\0", 6);
    zmsg_addmem(z, zframe_data(body), zframe_size(body));
    s_expect_fail(z, AF_ERR_UNSUPPORTED, "unknown command \"HELLO?\"");

    z = s_raw(AF_PROTO_ID, "HELLO", zframe_data(body), zframe_size(body));
    zmsg_addstr(z, "extra");
    s_expect_fail(z, AF_ERR_PROTO, "HELLO: 1 unexpected extra frames");

    /* ROUTER form: the routing id is handed back on failure */
    z = s_raw("ARCHFARM2", "HELLO", zframe_data(body), zframe_size(body));
    zmsg_pushmem(z, "peer-7", 6);
    zframe_t *rid = NULL;
    af_err_t err;
    assert_null(af_msg_decode(&z, true, &rid, &err));
    assert_non_null(rid);
    assert_true(zframe_streq(rid, "peer-7"));
    zframe_destroy(&rid);
    /* only a routing id: still handed back; NULL routing_id_p is fine */
    z = zmsg_new();
    zmsg_addstr(z, "peer-8");
    assert_null(af_msg_decode(&z, true, &rid, &err));
    assert_true(zframe_streq(rid, "peer-8"));
    zframe_destroy(&rid);
    z = s_raw("peer-9", "bad", NULL, 0);
    assert_null(af_msg_decode(&z, true, NULL, NULL));
    /* a valid message decoded as ROUTER loses its first frame to the id */
    z = zmsg_dup(good);
    s_expect_fail_as(z, true, AF_ERR_PROTO, "protocol id \"HELLO\"");
    zmsg_destroy(&good);
}

static void proto_chunk_needs_exactly_one_data_frame(void **state)
{
    (void)state;
    af_msg_t *m = s_sample(AF_CMD_CHUNK);
    zmsg_t *good = af_msg_encode(m, NULL);
    af_msg_destroy(&m);

    zmsg_t *z = zmsg_dup(good);
    zframe_t *data = zmsg_last(z);
    zmsg_remove(z, data);
    zframe_destroy(&data);
    s_expect_fail(z, AF_ERR_PROTO, "CHUNK: the data frame is missing");

    z = zmsg_dup(good);
    zmsg_addstr(z, "more");
    s_expect_fail(z, AF_ERR_PROTO, "CHUNK: 1 unexpected extra frames");

    z = zmsg_dup(good);
    data = zmsg_last(z);
    zframe_reset(data, "", 0);
    s_expect_fail(z, AF_ERR_PROTO, "needs one data frame of 1..262144 bytes (got 0)");

    z = zmsg_dup(good);
    data = zmsg_last(z);
    zframe_t *big = zframe_new(NULL, AF_CHUNK_SIZE + 1);
    memset(zframe_data(big), 0x5a, AF_CHUNK_SIZE + 1);
    zframe_reset(data, zframe_data(big), AF_CHUNK_SIZE + 1);
    s_expect_fail(z, AF_ERR_TOOBIG, "got 262145");

    z = zmsg_dup(good);
    data = zmsg_last(z);
    zframe_reset(data, zframe_data(big), AF_CHUNK_SIZE);
    m = s_expect_ok(z);
    assert_int_equal(zframe_size(m->data), AF_CHUNK_SIZE);
    af_msg_destroy(&m);
    zframe_destroy(&big);

    /* and the encoder refuses to produce what the decoder rejects */
    m = s_sample(AF_CMD_CHUNK);
    af_msg_set_data(m, NULL);
    af_err_t err;
    assert_null(af_msg_encode(m, &err));
    assert_int_equal(err.code, AF_ERR_PROTO);
    af_msg_destroy(&m);
    m = s_sample(AF_CMD_HELLO);
    zframe_t *d = zframe_new("x", 1);
    af_msg_set_data(m, &d);
    assert_null(af_msg_encode(m, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "only CHUNK carries a data frame"));
    af_msg_destroy(&m);
    zmsg_destroy(&good);
}

static void proto_decode_rejects_malformed_bodies(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        int code;
        const char *msg;
    } cases[] = {
        {"", 0, AF_ERR_PARSE, "truncated"},
        {"\x92\x01\x02", 3, AF_ERR_PARSE, "body must be a map, got array"},
        {"\xa5hello", 6, AF_ERR_PARSE, "body must be a map, got str"},
        {"\x80\x80", 2, AF_ERR_PARSE, "trailing bytes"},
        {"\x81\xa7version", 9, AF_ERR_PARSE, "truncated"},
        {"\xc1", 1, AF_ERR_PARSE, "not valid msgpack"},
        {"\x81\x01\xa1x", 4, AF_ERR_PARSE, "keys must be strings, got uint"},
        /* declared counts far beyond the bytes: refused before any allocation */
        {"\xdd\xff\xff\xff\xff", 5, AF_ERR_PARSE, "truncated"},
        {"\xdf\x7f\xff\xff\xff", 5, AF_ERR_PARSE, "truncated"},
        {"\xdb\xff\xff\xff\xff", 5, AF_ERR_PARSE, "truncated"},
        {"\xc9\xff\xff\xff\xff\x01", 6, AF_ERR_PARSE, "truncated"},
        /* nesting deeper than AF_PROTO_MAX_DEPTH under an unknown key */
        {"\x81\xa1z\x91\x91\x91\x91\x91\x91\x91\x91\x91\x90", 14, AF_ERR_TOOBIG, "nests deeper"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_expect_fail(s_raw(AF_PROTO_ID, "HEARTBEAT", cases[i].bytes, cases[i].len), cases[i].code,
                      cases[i].msg);

    /* more objects than AF_PROTO_MAX_ITEMS, and a body over AF_PROTO_MAX_BODY */
    tb_t b;
    tb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    tb_cstr(&b, "running");
    msgpack_pack_uint32(&b.pk, 0);
    tb_cstr(&b, "queued");
    msgpack_pack_uint32(&b.pk, 0);
    tb_cstr(&b, "future");
    msgpack_pack_array(&b.pk, AF_PROTO_MAX_ITEMS);
    for (int i = 0; i < AF_PROTO_MAX_ITEMS; i++)
        msgpack_pack_nil(&b.pk);
    s_expect_fail(s_raw(AF_PROTO_ID, "HEARTBEAT", b.sb.data, b.sb.size), AF_ERR_TOOBIG,
                  "more than 4096 objects");
    msgpack_sbuffer_destroy(&b.sb);
    char *huge = calloc(1, AF_PROTO_MAX_BODY + 1);
    s_expect_fail(s_raw(AF_PROTO_ID, "HEARTBEAT", huge, AF_PROTO_MAX_BODY + 1), AF_ERR_TOOBIG,
                  "body is larger than");
    free(huge);
}

static void proto_unknown_keys_are_ignored(void **state)
{
    (void)state;
    /* any type, nested, under a key we do not know */
    static const char nested[] = "\x84\xa1"
                                 "a\xcb\x3f\xf0\0\0\0\0\0\0"
                                 "\xa1"
                                 "b\xd4\x01\x02"
                                 "\xa1"
                                 "c\x93\xc0\xc3\xc4\x00"
                                 "\xa1"
                                 "d\x81\x01\x02";
    zmsg_t *z = s_with(AF_CMD_HEARTBEAT, "future_field", nested, sizeof nested - 1);
    af_msg_t *m = s_expect_ok(z);
    assert_int_equal(m->running, 1);
    af_msg_destroy(&m);
    /* a key that only differs by a NUL is just unknown */
    tb_t b;
    tb_init(&b);
    msgpack_pack_map(&b.pk, 3);
    tb_cstr(&b, "running");
    msgpack_pack_uint32(&b.pk, 4);
    tb_cstr(&b, "queued");
    msgpack_pack_uint32(&b.pk, 5);
    tb_str(&b, "running\0", 8);
    tb_cstr(&b, "x");
    m = s_expect_ok(s_raw(AF_PROTO_ID, "HEARTBEAT", b.sb.data, b.sb.size));
    assert_int_equal(m->running, 4);
    assert_int_equal(m->queued, 5);
    af_msg_destroy(&m);
    msgpack_sbuffer_destroy(&b.sb);
    /* keys of other commands are unknown here, not applied */
    m = s_expect_ok(s_with_str(AF_CMD_HEARTBEAT, "job", "a b", 3));
    assert_string_equal(m->job, "");
    af_msg_destroy(&m);
}

static void proto_duplicate_known_keys_are_rejected(void **state)
{
    (void)state;
    s_expect_fail(s_with_dup(AF_CMD_BUILD, "job", "\xa1z", 2, true), AF_ERR_PROTO,
                  "BUILD: key 'job' appears twice");
    s_expect_fail(s_with_dup(AF_CMD_BUILD, "registry_password", "\xa1z", 2, true), AF_ERR_PROTO,
                  "appears twice");
    s_expect_fail(s_with_dup(AF_CMD_WELCOME, "platforms", "\x90", 1, true), AF_ERR_PROTO,
                  "appears twice");
    s_expect_fail(s_with_dup(AF_CMD_BUILD, "build_args", "\x80", 1, true), AF_ERR_PROTO,
                  "appears twice");
    /* duplicates of unknown keys are harmless */
    af_msg_t *m = s_expect_ok(s_with_dup(AF_CMD_HELLO, "x-extra", "\x01", 1, true));
    af_msg_destroy(&m);
}

/* ---- encoding side ----------------------------------------------------- */

static void proto_encode_refuses_invalid_messages(void **state)
{
    (void)state;
    af_err_t err;
    assert_null(af_msg_encode(NULL, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    af_msg_t *m = af_msg_new(AF_CMD_INVALID);
    assert_null(af_msg_encode(m, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    af_msg_destroy(&m);
    assert_null(af_msg_new(AF_CMD_COUNT));

    m = s_sample(AF_CMD_BUILD);
    strcpy(m->job, "bad job");
    assert_null(af_msg_encode(m, &err));
    assert_int_equal(err.code, AF_ERR_PROTO);
    assert_non_null(strstr(err.msg, "BUILD: 'job' \"bad job\" is not a job id"));
    strcpy(m->job, "ok");
    m->attempt = 0;
    assert_null(af_msg_encode(m, &err));
    m->attempt = 1;
    memset(m->target, 'x', sizeof m->target); /* not terminated */
    assert_null(af_msg_encode(m, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    m->target[0] = '\0';
    assert_int_equal(af_msg_add_build_arg(m, "VERSION", "again"), 0);
    assert_null(af_msg_encode(m, &err));
    assert_non_null(strstr(err.msg, "repeated"));
    af_msg_destroy(&m);

    zsock_t *sock = zsock_new_dealer(NULL);
    m = af_msg_new(AF_CMD_HEARTBEAT);
    m->attempt = 0; /* not a HEARTBEAT field: ignored */
    af_msg_destroy(&m);
    m = af_msg_new(AF_CMD_STATUS); /* no job */
    assert_int_equal(af_msg_send(m, sock, &err), AF_ERR_PROTO);
    assert_int_equal(af_msg_send(m, sock, NULL), AF_ERR_PROTO);
    af_msg_destroy(&m);
    zsock_destroy(&sock);
}

static void proto_setters_copy_and_bound_their_input(void **state)
{
    (void)state;
    af_msg_t *m = af_msg_new(AF_CMD_WELCOME);
    for (int i = 0; i < AF_MAX_LIST; i++)
        assert_int_equal(af_msg_add_platform(m, "linux/amd64"), 0);
    assert_int_equal(af_msg_add_platform(m, "linux/amd64"), AF_ERR_TOOBIG);
    char big[AF_MAX_STR + 2];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(af_msg_add_executor(m, big), AF_ERR_TOOBIG);
    assert_int_equal(af_msg_add_executor(m, NULL), AF_ERR_INVAL);
    assert_int_equal(af_msg_add_build_arg(m, big, "v"), AF_ERR_TOOBIG);
    assert_int_equal(af_msg_add_build_arg(m, "K", big), AF_ERR_TOOBIG);
    big[AF_MAX_NAME] = '\0';
    assert_int_equal(af_msg_add_build_arg(m, big, "v"), 0);
    for (int i = 1; i < AF_MAX_BUILD_ARGS; i++)
        assert_int_equal(af_msg_add_build_arg(m, "K", "v"), 0);
    assert_int_equal(af_msg_add_build_arg(m, "K", "v"), AF_ERR_TOOBIG);

    char *pw = malloc(AF_MAX_SECRET + 2);
    memset(pw, 'p', AF_MAX_SECRET + 1);
    pw[AF_MAX_SECRET + 1] = '\0';
    assert_int_equal(af_msg_set_password(m, pw), AF_ERR_TOOBIG);
    assert_null(m->registry_password);
    pw[AF_MAX_SECRET] = '\0';
    assert_int_equal(af_msg_set_password(m, pw), 0);
    assert_string_equal(m->registry_password, pw);
    assert_int_equal(af_msg_set_password(m, NULL), 0);
    assert_null(m->registry_password);
    free(pw);

    af_msg_set_routing_id(m, NULL);
    assert_null(m->routing_id);
    af_msg_set_data(m, NULL);
    af_msg_destroy(&m);
    assert_null(m);
    af_msg_destroy(&m);
    af_msg_destroy(NULL);
}

static void proto_summary_never_shows_the_password(void **state)
{
    (void)state;
    char buf[2048];
    af_msg_t *m = s_sample(AF_CMD_BUILD);
    af_msg_summary(m, buf, sizeof buf);
    assert_null(strstr(buf, SECRET));
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "BUILD"));
    assert_non_null(strstr(buf, "job=b1234-0"));
    assert_non_null(strstr(buf, "registry_password=(set)"));
    /* small buffers truncate without overflow */
    for (size_t len = 0; len < 64; len++) {
        char small[64];
        memset(small, '#', sizeof small);
        af_msg_summary(m, small, len);
        if (len) {
            assert_true(strlen(small) < len);
            assert_null(strstr(small, "hunter2"));
        }
        for (size_t i = len ? len : 0; i < sizeof small; i++)
            assert_int_equal(small[i], '#');
    }
    af_msg_destroy(&m);

    /* also after a round trip, and for every command */
    m = s_sample(AF_CMD_BUILD);
    af_msg_t *d = s_expect_ok(af_msg_encode(m, NULL));
    af_msg_summary(d, buf, sizeof buf);
    assert_null(strstr(buf, "hunter2"));
    af_msg_destroy(&d);
    af_msg_destroy(&m);
    for (int c = AF_CMD_HELLO; c < AF_CMD_COUNT; c++) {
        m = s_sample((af_cmd_t)c);
        af_msg_summary(m, buf, sizeof buf);
        assert_int_equal(strncmp(buf, af_cmd_name((af_cmd_t)c), strlen(af_cmd_name((af_cmd_t)c))),
                         0);
        af_msg_destroy(&m);
    }
    assert_string_equal(af_msg_summary(NULL, buf, sizeof buf), "(null)");
}

static void proto_command_names(void **state)
{
    (void)state;
    static const char *names[] = {"INVALID", "HELLO",     "WELCOME", "BUILD",  "ACCEPT",
                                  "CREDIT",  "CHUNK",     "LOG",     "STATUS", "RESULT",
                                  "CANCEL",  "HEARTBEAT", "ERROR"};
    for (int c = 0; c < AF_CMD_COUNT; c++)
        assert_string_equal(af_cmd_name((af_cmd_t)c), names[c]);
    assert_string_equal(af_cmd_name(AF_CMD_COUNT), "INVALID");
    assert_string_equal(af_cmd_name((af_cmd_t)-1), "INVALID");
}

/* ---- garbage ----------------------------------------------------------- */

static uint64_t s_rand(uint64_t *s)
{
    /* xorshift64*: deterministic, seeded per test */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static void proto_random_garbage_never_crashes_or_leaks(void **state)
{
    (void)state;
    uint64_t seed = UINT64_C(0x9e3779b97f4a7c15);
    zmsg_t *valid[AF_CMD_COUNT] = {NULL};
    for (int c = AF_CMD_HELLO; c < AF_CMD_COUNT; c++) {
        af_msg_t *m = s_sample((af_cmd_t)c);
        valid[c] = af_msg_encode(m, NULL);
        af_msg_destroy(&m);
    }
    int decoded = 0;
    for (int iter = 0; iter < 20000; iter++) {
        uint64_t r = s_rand(&seed);
        bool router = r & 1;
        zmsg_t *z;
        if ((r >> 1) % 3 == 0) {
            /* random frames, sometimes with a real id and command */
            z = zmsg_new();
            size_t nframes = (r >> 8) % 7;
            for (size_t f = 0; f < nframes; f++) {
                uint64_t fr = s_rand(&seed);
                if (f == (router ? 1u : 0u) && (fr & 3)) {
                    zmsg_addstr(z, AF_PROTO_ID);
                    continue;
                }
                if (f == (router ? 2u : 1u) && (fr & 3)) {
                    zmsg_addstr(z, af_cmd_name((af_cmd_t)((fr >> 4) % AF_CMD_COUNT)));
                    continue;
                }
                size_t len = (fr >> 8) % ((fr & 4) ? 2048 : 48);
                zframe_t *frame = zframe_new(NULL, len);
                for (size_t i = 0; i < len; i++)
                    zframe_data(frame)[i] = (byte)s_rand(&seed);
                zmsg_append(z, &frame);
            }
        } else {
            /* a valid message with a few bytes of its body flipped */
            z = zmsg_dup(valid[1 + (r >> 8) % (AF_CMD_COUNT - 1)]);
            if (router)
                zmsg_pushstr(z, "rid");
            zframe_t *body = zmsg_first(z);
            body = zmsg_next(z);
            body = zmsg_next(z);
            if (router)
                body = zmsg_next(z);
            size_t flips = 1 + (r >> 16) % 4;
            for (size_t i = 0; i < flips && zframe_size(body); i++) {
                uint64_t fr = s_rand(&seed);
                zframe_data(body)[fr % zframe_size(body)] = (byte)(fr >> 32);
            }
        }
        zframe_t *rid = NULL;
        af_err_t err;
        af_err_clear(&err);
        af_msg_t *m = af_msg_decode(&z, router, &rid, &err);
        assert_null(z);
        if (m) {
            /* whatever decodes re-encodes and decodes to the same thing */
            decoded++;
            assert_null(rid);
            zmsg_t *again = af_msg_encode(m, &err);
            assert_non_null(again);
            af_msg_t *m2 = af_msg_decode(&again, router, NULL, &err);
            assert_non_null(m2);
            s_assert_msg_equal(m, m2);
            af_msg_destroy(&m2);
            af_msg_destroy(&m);
        } else {
            assert_true(err.code < 0);
            assert_true(err.msg[0] != '\0');
        }
        zframe_destroy(&rid);
    }
    assert_true(decoded > 0);
    for (int c = 0; c < AF_CMD_COUNT; c++)
        zmsg_destroy(&valid[c]);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(proto_roundtrip_every_command_dealer),
        cmocka_unit_test(proto_roundtrip_every_command_router),
        cmocka_unit_test(proto_defaults_survive_roundtrip),
        cmocka_unit_test(proto_send_recv_over_inproc_router_dealer),
        cmocka_unit_test(proto_hello_encodes_to_golden_bytes),
        cmocka_unit_test(proto_build_from_foreign_encoder_decodes),
        cmocka_unit_test(proto_result_pushed_bytes_optional_and_compatible),
        cmocka_unit_test(proto_build_compression_is_checked),
        cmocka_unit_test(proto_decode_rejects_missing_required_keys),
        cmocka_unit_test(proto_decode_rejects_wrong_types),
        cmocka_unit_test(proto_decode_checks_number_ranges),
        cmocka_unit_test(proto_attempt_zero_only_for_cancel),
        cmocka_unit_test(proto_decode_rejects_too_long_strings_and_lists),
        cmocka_unit_test(proto_decode_rejects_nul_inside_strings),
        cmocka_unit_test(proto_decode_checks_job_ids),
        cmocka_unit_test(proto_decode_checks_digests),
        cmocka_unit_test(proto_decode_checks_enums_and_words),
        cmocka_unit_test(proto_decode_rejects_bad_framing),
        cmocka_unit_test(proto_chunk_needs_exactly_one_data_frame),
        cmocka_unit_test(proto_decode_rejects_malformed_bodies),
        cmocka_unit_test(proto_unknown_keys_are_ignored),
        cmocka_unit_test(proto_duplicate_known_keys_are_rejected),
        cmocka_unit_test(proto_encode_refuses_invalid_messages),
        cmocka_unit_test(proto_setters_copy_and_bound_their_input),
        cmocka_unit_test(proto_summary_never_shows_the_password),
        cmocka_unit_test(proto_command_names),
        cmocka_unit_test(proto_random_garbage_never_crashes_or_leaks),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return rc;
}
