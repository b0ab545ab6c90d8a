/* fuzz_proto.c -- libFuzzer target for af_msg_decode, the agent's first
 * contact with anything a network peer sends.
 *
 * Input layout: byte 0 holds flags (bit 0: decode as ROUTER, bit 1:
 * "structured", i.e. prepend the "ARCHFARM1" frame and the command named by
 * byte 1 so the fuzzer spends its time in the body). The rest is a list of
 * frames, each a 2-byte little-endian length and that many bytes (the last
 * one is cut at the end of input), at most 8 frames.
 *
 * Properties: decode never crashes or leaks; whatever decodes re-encodes,
 * decodes again, and summarises without the secret.
 *
 * Built by CMake with -DAF_FUZZ=ON (clang -fsanitize=fuzzer). Built with
 * -DAF_FUZZ_STANDALONE it has a main(): `fuzz_proto FILE...` replays inputs
 * (gcc + valgrind), `fuzz_proto --write-corpus DIR` writes the seed corpus
 * in tests/fuzz/corpus/proto/ (one valid message of every command, DEALER,
 * ROUTER and structured forms). */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_FRAMES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one input; returns the decoded command or AF_CMD_INVALID with err. */
static af_cmd_t s_run(const uint8_t *data, size_t size, af_err_t *errp)
{
    if (size < 1)
        return AF_CMD_INVALID;
    uint8_t flags = data[0];
    bool router = flags & 1;
    size_t pos = 1;
    zmsg_t *zmsg = zmsg_new();
    if (!zmsg)
        return AF_CMD_INVALID;
    if (router)
        zmsg_addstr(zmsg, "rid");
    if ((flags & 2) && pos < size) {
        zmsg_addstr(zmsg, AF_PROTO_ID);
        zmsg_addstr(zmsg, af_cmd_name((af_cmd_t)(data[pos++] % AF_CMD_COUNT)));
    }
    for (int n = 0; n < FUZZ_MAX_FRAMES && pos < size; n++) {
        size_t len = data[pos];
        if (pos + 1 < size)
            len |= (size_t)data[pos + 1] << 8;
        pos += 2;
        if (pos > size)
            pos = size;
        if (len > size - pos)
            len = size - pos;
        zmsg_addmem(zmsg, data + pos, len);
        pos += len;
    }

    zframe_t *rid = NULL;
    af_err_t err;
    af_err_clear(&err);
    af_msg_t *msg = af_msg_decode(&zmsg, router, &rid, &err);
    *errp = err;
    if (zmsg)
        abort(); /* decode must take the message */
    if (!msg) {
        if (err.code >= 0 || !err.msg[0])
            abort(); /* failures always say why */
        zframe_destroy(&rid);
        return AF_CMD_INVALID;
    }
    if (rid)
        abort();
    /* the secret never reaches a summary: changing it changes nothing */
    char buf[1024], buf2[1024];
    af_msg_summary(msg, buf, sizeof buf);
    if (msg->registry_password) {
        char *saved = msg->registry_password;
        msg->registry_password = (char *)"a-different-secret";
        af_msg_summary(msg, buf2, sizeof buf2);
        msg->registry_password = saved;
        if (strcmp(buf, buf2) != 0)
            abort();
    }
    zmsg_t *again = af_msg_encode(msg, &err);
    if (!again)
        abort(); /* anything we accept, we can send */
    af_msg_t *msg2 = af_msg_decode(&again, router, NULL, &err);
    if (!msg2 || msg2->cmd != msg->cmd)
        abort();
    af_cmd_t cmd = msg->cmd;
    af_msg_destroy(&msg2);
    af_msg_destroy(&msg);
    return cmd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    af_err_t err;
    (void)s_run(data, size, &err);
    return 0;
}

#ifdef AF_FUZZ_STANDALONE

#define DIGEST_A "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* One valid message of CMD with its interesting fields filled. */
static af_msg_t *s_seed(af_cmd_t cmd)
{
    af_msg_t *m = af_msg_new(cmd);
    if (!m)
        return NULL;
    int rc = 0;
    snprintf(m->job, sizeof m->job, "build-1-0");
    switch (cmd) {
    case AF_CMD_HELLO:
        snprintf(m->version, sizeof m->version, AF_VERSION);
        snprintf(m->client, sizeof m->client, "ci:42");
        break;
    case AF_CMD_WELCOME:
        snprintf(m->version, sizeof m->version, AF_VERSION);
        snprintf(m->node, sizeof m->node, "node1");
        rc |= af_msg_add_platform(m, "linux/arm/v7");
        rc |= af_msg_add_executor(m, "native");
        m->max_jobs = 2;
        m->heartbeat_ms = AF_HEARTBEAT_MS;
        break;
    case AF_CMD_BUILD:
        snprintf(m->platform, sizeof m->platform, "linux/arm64");
        snprintf(m->recipe_kind, sizeof m->recipe_kind, "native");
        snprintf(m->recipe_path, sizeof m->recipe_path, "archfarm.yaml");
        rc |= af_msg_add_build_arg(m, "VERSION", "1.0");
        snprintf(m->context_digest, sizeof m->context_digest, DIGEST_A);
        m->context_size = 10240;
        snprintf(m->repository, sizeof m->repository, "127.0.0.1:5000/demo");
        snprintf(m->registry_username, sizeof m->registry_username, "user");
        rc |= af_msg_set_password(m, "fuzz-secret");
        m->source_date_epoch = 0;
        break;
    case AF_CMD_ACCEPT:
        m->job_queued = true;
        break;
    case AF_CMD_CREDIT:
        m->credit = AF_CREDIT_WINDOW;
        break;
    case AF_CMD_CHUNK: {
        m->offset = 0;
        zframe_t *data = zframe_new("context-bytes", 13);
        af_msg_set_data(m, &data);
        break;
    }
    case AF_CMD_LOG:
        snprintf(m->stream, sizeof m->stream, "stdout");
        snprintf(m->line, sizeof m->line, "hello from the build");
        break;
    case AF_CMD_STATUS:
        snprintf(m->state, sizeof m->state, "receiving");
        break;
    case AF_CMD_RESULT:
        m->ok = true;
        snprintf(m->digest, sizeof m->digest, DIGEST_A);
        snprintf(m->media_type, sizeof m->media_type, "application/vnd.oci.image.manifest.v1+json");
        snprintf(m->platform, sizeof m->platform, "linux/arm64");
        m->size = 500;
        m->exit_code = 0;
        break;
    case AF_CMD_CANCEL:
        m->attempt = 0;
        break;
    case AF_CMD_HEARTBEAT:
        m->running = 1;
        break;
    case AF_CMD_ERROR:
        m->code = AF_ERR_PROTO;
        snprintf(m->message, sizeof m->message, "bad message");
        break;
    default:
        break;
    }
    if (rc) {
        af_msg_destroy(&m);
        return NULL;
    }
    return m;
}

static int s_write(const char *dir, const char *name, const char *how, zmsg_t *zmsg, uint8_t flags,
                   int cmd)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%s", dir, name, how);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fputc(flags, f);
    zframe_t *frame = zmsg_first(zmsg);
    if (flags & 2) {
        fputc(cmd, f);
        frame = zmsg_next(zmsg);
        frame = zmsg_next(zmsg);
    }
    for (; frame; frame = zmsg_next(zmsg)) {
        size_t len = zframe_size(frame);
        fputc((int)(len & 0xff), f);
        fputc((int)(len >> 8), f);
        fwrite(zframe_data(frame), 1, len, f);
    }
    return fclose(f);
}

static int s_write_corpus(const char *dir)
{
    for (int c = AF_CMD_HELLO; c < AF_CMD_COUNT; c++) {
        af_msg_t *m = s_seed((af_cmd_t)c);
        zmsg_t *z = m ? af_msg_encode(m, NULL) : NULL;
        if (!z) {
            fprintf(stderr, "cannot build seed for %s\n", af_cmd_name((af_cmd_t)c));
            return 1;
        }
        char name[64];
        snprintf(name, sizeof name, "%02d-%s", c, af_cmd_name((af_cmd_t)c));
        int rc = s_write(dir, name, "dealer", z, 0, c);
        rc |= s_write(dir, name, "structured", z, 2, c);
        zmsg_destroy(&z);
        zframe_t *rid = zframe_new("peer", 4);
        af_msg_set_routing_id(m, rid);
        zframe_destroy(&rid);
        z = af_msg_encode(m, NULL);
        zframe_t *first = zmsg_pop(z); /* the fuzzer adds its own routing id */
        zframe_destroy(&first);
        rc |= s_write(dir, name, "router", z, 1, c);
        zmsg_destroy(&z);
        af_msg_destroy(&m);
        if (rc)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return s_write_corpus(argv[2]);
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "%s: cannot open\n", argv[i]);
            return 1;
        }
        uint8_t *buf = malloc(1 << 22);
        size_t n = buf ? fread(buf, 1, 1 << 22, f) : 0;
        fclose(f);
        af_err_t err;
        af_err_clear(&err);
        af_cmd_t cmd = buf ? s_run(buf, n, &err) : AF_CMD_INVALID;
        if (cmd != AF_CMD_INVALID)
            fprintf(stderr, "%s: decoded %s\n", argv[i], af_cmd_name(cmd));
        else
            fprintf(stderr, "%s: rejected: %s\n", argv[i], err.msg);
        free(buf);
    }
    return 0;
}
#endif
