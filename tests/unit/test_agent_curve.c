/* test_agent_curve.c -- agent/curve: the CURVE server side of the agent.
 * A real handshake admits an authorised key and refuses another; keys
 * added to and removed from the directory take effect on reload; the
 * directory is hostile ground (the same key twice, secret files, garbage,
 * subdirectories, the directory going away) and never aborts the agent;
 * bad certificates and a second ZAP handler refuse to start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "archive.h"
#include "curve.h"

typedef struct {
    char dir[256];
    char keys[300];
    char server[300]; /* server cert, NAME.key (+ _secret) */
    zcert_t *client;
    zsock_t *router;
    zloop_t *loop;
} s_fx_t;

static int s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    /* $TMPDIR: the armhf suite under qemu-user points it at a tmpfs (see
     * scripts/cross-build: czmq's 32-bit readdir and ext4's 64-bit cookies) */
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/af-test-curve-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->keys, sizeof fx->keys, "%s/keys", fx->dir);
    mkdir(fx->keys, 0700);
    snprintf(fx->server, sizeof fx->server, "%s/server.key", fx->dir);
    zcert_t *s = zcert_new();
    zcert_save(s, fx->server);
    zcert_destroy(&s);
    fx->client = zcert_new();
    fx->router = zsock_new(ZMQ_ROUTER);
    fx->loop = zloop_new();
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fx_t *fx = *state;
    zloop_destroy(&fx->loop);
    zsock_destroy(&fx->router);
    zcert_destroy(&fx->client);
    af_err_t err;
    if (af_remove_tree(fx->dir, &err) < 0)
        fprintf(stderr, "cleanup: %s\n", err.msg);
    free(fx);
    return 0;
}

static void s_write(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void s_authorize(s_fx_t *fx, zcert_t *cert, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fx->keys, name);
    assert_int_equal(zcert_save_public(cert, path), 0);
}

/* True when a CURVE client with CERT gets a message through to the router. */
static bool s_handshake_ok(s_fx_t *fx, zcert_t *cert, const char *endpoint, const char *server_key)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    zcert_apply(cert, d);
    zsock_set_curve_serverkey(d, server_key);
    zsock_set_linger(d, 0);
    zsock_connect(d, "%s", endpoint);
    zstr_send(d, "ping");
    zsock_set_rcvtimeo(fx->router, 1500);
    zmsg_t *m = zmsg_recv(fx->router);
    bool ok = m != NULL;
    zmsg_destroy(&m);
    zsock_destroy(&d);
    return ok;
}

static void curve_admits_authorized_key_and_refuses_others(void **state)
{
    s_fx_t *fx = *state;
    s_authorize(fx, fx->client, "coord.key");
    af_err_t err;
    af_err_clear(&err);
    af_curve_t *c = af_curve_new(fx->router, fx->loop, fx->server, fx->keys, fx->dir, &err);
    assert_non_null(c);
    assert_int_equal(af_curve_key_count(c), 1);
    assert_int_equal(strlen(af_curve_public_key(c)), 40);
    assert_true(zsock_bind(fx->router, "tcp://127.0.0.1:*") > 0);
    char *ep = zsock_last_endpoint(fx->router);
    assert_true(s_handshake_ok(fx, fx->client, ep, af_curve_public_key(c)));
    zcert_t *stranger = zcert_new();
    assert_false(s_handshake_ok(fx, stranger, ep, af_curve_public_key(c)));

    /* added while running: admitted after a reload, no restart */
    s_authorize(fx, stranger, "stranger.key");
    assert_int_equal(af_curve_reload(c), 1);
    assert_int_equal(af_curve_key_count(c), 2);
    assert_true(s_handshake_ok(fx, stranger, ep, af_curve_public_key(c)));
    /* unchanged directory: nothing to do */
    assert_int_equal(af_curve_reload(c), 0);

    /* removed: refused again */
    char path[512];
    snprintf(path, sizeof path, "%s/stranger.key", fx->keys);
    unlink(path);
    assert_int_equal(af_curve_reload(c), 1);
    assert_int_equal(af_curve_key_count(c), 1);
    assert_false(s_handshake_ok(fx, stranger, ep, af_curve_public_key(c)));
    zcert_destroy(&stranger);
    zstr_free(&ep);
    af_curve_destroy(&c);
    assert_null(c);
    af_curve_destroy(&c); /* NULL-safe */
}

static void curve_key_dir_duplicates_secrets_and_garbage_are_skipped(void **state)
{
    s_fx_t *fx = *state;
    /* czmq's own loader aborts on the same key in two files */
    s_authorize(fx, fx->client, "a.key");
    s_authorize(fx, fx->client, "copy-of-a.key");
    s_write(fx->keys, "b.key_secret", "curve\n    secret-key = \"nope\"\n");
    s_write(fx->keys, "garbage", "\x01\x02 not a certificate {{{\n");
    s_write(fx->keys, "short.key", "curve\n    public-key = \"tooshort\"\n");
    s_write(fx->keys, ".hidden.swp", "curve\n");
    char sub[400];
    snprintf(sub, sizeof sub, "%s/subdir", fx->keys);
    mkdir(sub, 0700);
    af_err_t err;
    af_err_clear(&err);
    af_curve_t *c = af_curve_new(fx->router, fx->loop, fx->server, fx->keys, fx->dir, &err);
    assert_non_null(c);
    assert_int_equal(af_curve_key_count(c), 1);
    af_curve_destroy(&c);
}

static void curve_unreadable_key_dir_refuses_everyone(void **state)
{
    s_fx_t *fx = *state;
    s_authorize(fx, fx->client, "coord.key");
    af_err_t err;
    af_err_clear(&err);
    af_curve_t *c = af_curve_new(fx->router, fx->loop, fx->server, fx->keys, fx->dir, &err);
    assert_non_null(c);
    assert_int_equal(af_curve_key_count(c), 1);
    assert_int_equal(af_remove_tree(fx->keys, &err), 0);
    assert_true(af_curve_reload(c) < 0);
    assert_int_equal(af_curve_key_count(c), 0);
    /* back: keys come back */
    mkdir(fx->keys, 0700);
    s_authorize(fx, fx->client, "coord.key");
    assert_int_equal(af_curve_reload(c), 1);
    assert_int_equal(af_curve_key_count(c), 1);
    af_curve_destroy(&c);
}

static void curve_refuses_bad_certificates_and_dirs(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    char path[400];
    snprintf(path, sizeof path, "%s/missing.key", fx->dir);
    assert_null(af_curve_new(fx->router, fx->loop, path, fx->keys, fx->dir, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "missing.key"));

    /* a public certificate alone holds no secret key */
    snprintf(path, sizeof path, "%s/pub.key", fx->dir);
    assert_int_equal(zcert_save_public(fx->client, path), 0);
    assert_null(af_curve_new(fx->router, fx->loop, path, fx->keys, fx->dir, &err));
    assert_non_null(strstr(err.msg, "no secret key"));

    snprintf(path, sizeof path, "%s/garbage.key", fx->dir);
    s_write(fx->dir, "garbage.key", "\x01\x02 not a certificate\n");
    assert_null(af_curve_new(fx->router, fx->loop, path, fx->keys, fx->dir, &err));

    snprintf(path, sizeof path, "%s/nope", fx->dir);
    assert_null(af_curve_new(fx->router, fx->loop, fx->server, path, fx->dir, &err));
    assert_non_null(strstr(err.msg, "--authorized-keys"));
    assert_null(af_curve_new(fx->router, fx->loop, fx->server, fx->server, fx->dir, &err));
    assert_non_null(strstr(err.msg, "not a directory"));
    assert_null(af_curve_new(fx->router, fx->loop, "", fx->keys, fx->dir, &err));
    assert_null(af_curve_new(fx->router, fx->loop, fx->server, "", fx->dir, &err));
}

static void curve_second_zap_handler_in_a_process_is_refused(void **state)
{
    s_fx_t *fx = *state;
    af_err_t err;
    af_err_clear(&err);
    af_curve_t *c = af_curve_new(fx->router, fx->loop, fx->server, fx->keys, fx->dir, &err);
    assert_non_null(c);
    zsock_t *other = zsock_new(ZMQ_ROUTER);
    af_curve_t *c2 = af_curve_new(other, fx->loop, fx->server, fx->keys, fx->dir, &err);
    assert_null(c2);
    assert_int_equal(err.code, AF_ERR_STATE);
    assert_non_null(strstr(err.msg, "ZAP handler"));
    zsock_destroy(&other);
    af_curve_destroy(&c);
    /* and once the first is gone, one can be installed again */
    other = zsock_new(ZMQ_ROUTER);
    c2 = af_curve_new(other, fx->loop, fx->server, fx->keys, fx->dir, &err);
    assert_non_null(c2);
    af_curve_destroy(&c2);
    zsock_destroy(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(curve_admits_authorized_key_and_refuses_others, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(curve_key_dir_duplicates_secrets_and_garbage_are_skipped,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(curve_unreadable_key_dir_refuses_everyone, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(curve_refuses_bad_certificates_and_dirs, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(curve_second_zap_handler_in_a_process_is_refused, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
