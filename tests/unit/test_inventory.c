/* test_inventory.c -- the Ansible YAML inventory: variables, Ansible
 * precedence, host ranges, anchors and merge keys, every error with its
 * FILE:LINE:COL, malformed and hostile input. Data files live in
 * $AF_TEST_DATA/inventory/. */
#include <fcntl.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "certfile.h"
#include "inventory.h"

#define Z85_KEY "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"

/* Loads YAML as "inv.yaml"; fails the test with the message on error. */
static af_inventory_t *s_load(const char *yaml)
{
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load_buffer("inv.yaml", yaml, strlen(yaml), &err);
    if (!inv)
        fail_msg("load failed: %s", err.msg);
    return inv;
}

/* Asserts YAML is rejected with exactly WANT (and code CODE). */
static void s_fails(const char *yaml, int code, const char *want)
{
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load_buffer("inv.yaml", yaml, strlen(yaml), &err);
    if (inv) {
        af_inventory_destroy(&inv);
        fail_msg("expected failure \"%s\"", want);
    }
    if (strcmp(err.msg, want))
        fail_msg("message\n  got:  %s\n  want: %s", err.msg, want);
    assert_int_equal(err.code, code);
}

/* Asserts YAML is rejected with a message starting with PREFIX. */
static void s_fails_prefix(const char *yaml, size_t len, const char *prefix)
{
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load_buffer("inv.yaml", yaml, len, &err);
    if (inv) {
        af_inventory_destroy(&inv);
        fail_msg("expected failure \"%s...\"", prefix);
    }
    if (strncmp(err.msg, prefix, strlen(prefix)))
        fail_msg("message\n  got:  %s\n  want: %s...", err.msg, prefix);
    assert_true(err.code < 0);
}

static const af_node_t *s_node(const af_inventory_t *inv, const char *name)
{
    const af_node_t *n = af_inventory_find(inv, name);
    if (!n)
        fail_msg("no node %s", name);
    return n;
}

static const char *s_plat(const af_node_t *n, size_t i, char *buf)
{
    assert_true(i < n->n_platforms);
    return af_platform_format(&n->platforms[i], buf, AF_PLATFORM_STR_MAX);
}

static char *s_data_path(const char *file)
{
    const char *dir = getenv("AF_TEST_DATA");
    static char path[1024];
    snprintf(path, sizeof path, "%s/inventory/%s", dir ? dir : "data", file);
    return path;
}

/* ---- variables ------------------------------------------------------------ */

static void inventory_minimal_host_gets_defaults(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  hosts:\n"
                                 "    node1:\n"
                                 "      archfarm_platforms: [linux/amd64]\n"
                                 "      archfarm_server_key: \"" Z85_KEY "\"\n");
    assert_int_equal(af_inventory_size(inv), 1);
    const af_node_t *n = af_inventory_node(inv, 0);
    assert_string_equal(n->name, "node1");
    assert_string_equal(n->endpoint, "tcp://node1:7420");
    assert_string_equal(n->server_key, Z85_KEY);
    assert_int_equal(n->max_jobs, 1);
    assert_int_equal(n->priority, 0);
    assert_false(n->insecure);
    assert_int_equal(n->n_labels, 0);
    assert_int_equal(n->line, 3);
    assert_int_equal(n->column, 5);
    assert_null(af_inventory_node(inv, 1));
    af_inventory_destroy(&inv);
    assert_null(inv);
    af_inventory_destroy(&inv); /* twice is fine */
    af_inventory_destroy(NULL);
}

static void inventory_ansible_host_and_port_form_the_endpoint(void **state)
{
    (void)state;
    af_inventory_t *inv =
        s_load("archfarm_agents:\n"
               "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
               "  hosts:\n"
               "    a: {ansible_host: 192.0.2.7, archfarm_port: 7500}\n"
               "    b: {ansible_host: \"2001:db8::5\"}\n"
               "    c: {ansible_host: \"[2001:db8::6]\", archfarm_port: \"8000\"}\n"
               "    d: {ansible_host: builder.example.com}\n");
    assert_string_equal(s_node(inv, "a")->endpoint, "tcp://192.0.2.7:7500");
    assert_string_equal(s_node(inv, "b")->endpoint, "tcp://[2001:db8::5]:7420");
    assert_string_equal(s_node(inv, "c")->endpoint, "tcp://[2001:db8::6]:8000");
    assert_string_equal(s_node(inv, "d")->endpoint, "tcp://builder.example.com:7420");
    af_inventory_destroy(&inv);
}

static void inventory_endpoint_overrides_host_and_port(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: amd64,\n"
                                 "         ansible_host: 10.1.1.1, archfarm_port: 1}\n"
                                 "  hosts:\n"
                                 "    a: {archfarm_endpoint: \"tcp://127.0.0.1:9999\"}\n"
                                 "    b: {archfarm_endpoint: \"ipc:///run/archfarm.sock\"}\n"
                                 "    c: {archfarm_endpoint: \"tcp://[::1]:7420\"}\n");
    assert_string_equal(s_node(inv, "a")->endpoint, "tcp://127.0.0.1:9999");
    assert_string_equal(s_node(inv, "b")->endpoint, "ipc:///run/archfarm.sock");
    assert_string_equal(s_node(inv, "c")->endpoint, "tcp://[::1]:7420");
    af_inventory_destroy(&inv);
}

static void inventory_bad_endpoint_and_address_rejected(void **state)
{
    (void)state;
    const char *head = "archfarm_agents:\n"
                       "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
                       "  hosts:\n";
    char buf[512];
    static const char *const bad[] = {"http://x:1", "tcp://x",      "tcp://x:0", "tcp://x:65536",
                                      "tcp://:80",  "tcp://a:b:80", "ipc://",    "tcp://[::1:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "%s    a: {archfarm_endpoint: \"%s\"}\n", head, bad[i]);
        char want[256];
        snprintf(want, sizeof want,
                 "inv.yaml:4:28: archfarm_endpoint: expected tcp://HOST:PORT or ipc://PATH, "
                 "got \"%s\"",
                 bad[i]);
        s_fails(buf, AF_ERR_INVAL, want);
    }
    snprintf(buf, sizeof buf, "%s    a: {ansible_host: \"a b\"}\n", head);
    s_fails(buf, AF_ERR_INVAL, "inv.yaml:4:23: ansible_host: invalid address \"a b\"");
    snprintf(buf, sizeof buf, "%s    a: {ansible_host: [x]}\n", head);
    s_fails(buf, AF_ERR_INVAL, "inv.yaml:4:23: ansible_host: expected a string, got a list");
}

static void inventory_platforms_list_or_comma_string_normalised(void **state)
{
    (void)state;
    af_inventory_t *inv =
        s_load("archfarm_agents:\n"
               "  vars: {archfarm_insecure: true}\n"
               "  hosts:\n"
               "    a: {archfarm_platforms: [x86_64, linux/amd64, aarch64, armhf]}\n"
               "    b: {archfarm_platforms: \"linux/arm64/v8, arm/v6 ,riscv64\"}\n"
               "    c:\n"
               "      archfarm_platforms:\n"
               "        - linux/ppc64le\n");
    char buf[AF_PLATFORM_STR_MAX];
    const af_node_t *a = s_node(inv, "a");
    assert_int_equal(a->n_platforms, 3);
    assert_string_equal(s_plat(a, 0, buf), "linux/amd64");
    assert_string_equal(s_plat(a, 1, buf), "linux/arm64");
    assert_string_equal(s_plat(a, 2, buf), "linux/arm/v7");
    const af_node_t *b = s_node(inv, "b");
    assert_int_equal(b->n_platforms, 3);
    assert_string_equal(s_plat(b, 0, buf), "linux/arm64");
    assert_string_equal(s_plat(b, 1, buf), "linux/arm/v6");
    assert_string_equal(s_plat(b, 2, buf), "linux/riscv64");
    assert_string_equal(s_plat(s_node(inv, "c"), 0, buf), "linux/ppc64le");

    af_platform_t p;
    assert_int_equal(af_platform_parse("linux/arm/v7", &p, NULL), 0);
    assert_true(af_node_serves(a, &p));
    assert_false(af_node_serves(b, &p));
    af_inventory_destroy(&inv);
}

static void inventory_bad_platform_points_at_the_item(void **state)
{
    (void)state;
    s_fails("archfarm_agents:\n"
            "  vars: {archfarm_insecure: true}\n"
            "  hosts:\n"
            "    a:\n"
            "      archfarm_platforms:\n"
            "        - linux/amd64\n"
            "        - linux/sparc\n",
            AF_ERR_INVAL,
            "inv.yaml:7:11: archfarm_platforms: invalid platform \"linux/sparc\": unknown "
            "architecture \"sparc\"");
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_insecure: true, archfarm_platforms: \"amd64,,arm64\"}\n",
            AF_ERR_INVAL,
            "inv.yaml:3:54: archfarm_platforms: platform list \"amd64,,arm64\": item 2 is empty");
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_insecure: true, archfarm_platforms: []}\n",
            AF_ERR_INVAL, "inv.yaml:3:54: archfarm_platforms: expected at least one platform");
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_insecure: true, archfarm_platforms: {amd64: 1}}\n",
            AF_ERR_INVAL,
            "inv.yaml:3:54: archfarm_platforms: expected a list of platforms, got a mapping");
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_insecure: true, archfarm_platforms: [[amd64]]}\n",
            AF_ERR_INVAL, "inv.yaml:3:55: archfarm_platforms: expected a string, got a list");
}

static void inventory_missing_platforms_is_an_error_at_the_host(void **state)
{
    (void)state;
    s_fails("all:\n"
            "  children:\n"
            "    archfarm_agents:\n"
            "      hosts:\n"
            "        pi01:\n"
            "          archfarm_insecure: true\n",
            AF_ERR_INVAL, "inv.yaml:5:9: host \"pi01\": archfarm_platforms is required");
    /* an explicit null is "not set" too */
    s_fails("archfarm_agents:\n"
            "  vars: {archfarm_platforms: [amd64], archfarm_insecure: true}\n"
            "  hosts:\n"
            "    x: {archfarm_platforms: ~}\n",
            AF_ERR_INVAL, "inv.yaml:4:5: host \"x\": archfarm_platforms is required");
}

/* A CURVE host without a key is valid (the Ansible role creates and
 * collects it on first deploy) but warned about at its position; the
 * coordinator refuses to connect to it (farm.c). */
static void inventory_missing_server_key_names_the_host(void **state)
{
    (void)state;
    const char *y = "archfarm_agents:\n"
                    "  hosts:\n"
                    "    build7: {archfarm_platforms: amd64, archfarm_insecure: false}\n";
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load_buffer("inv.yaml", y, strlen(y), &err);
    if (!inv)
        fail_msg("%s", err.msg);
    assert_null(s_node(inv, "build7")->server_key);
    assert_int_equal(af_inventory_warning_count(inv), 1);
    assert_string_equal(af_inventory_warning(inv, 0),
                        "inv.yaml:3:5: warning: host \"build7\" has no archfarm_server_key and no "
                        "known_agents/build7.key beside the inventory yet: unreachable until the "
                        "Ansible role has created and collected its key");
    af_inventory_destroy(&inv);
}

static void inventory_server_key_must_be_z85(void **state)
{
    (void)state;
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_platforms: amd64, archfarm_server_key: tooshort}\n",
            AF_ERR_INVAL,
            "inv.yaml:3:57: archfarm_server_key: expected a 40-character Z85 CURVE public key, "
            "got \"tooshort\"");
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_platforms: amd64,\n"
            "        archfarm_server_key: \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~\"}\n",
            AF_ERR_INVAL,
            "inv.yaml:4:30: archfarm_server_key: expected a 40-character Z85 CURVE public key, "
            "got \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~\"");
    /* a key is kept (and checked) even when insecure */
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  hosts:\n"
                                 "    a: {archfarm_platforms: amd64, archfarm_insecure: true,\n"
                                 "        archfarm_server_key: '" Z85_KEY "'}\n");
    assert_string_equal(s_node(inv, "a")->server_key, Z85_KEY);
    af_inventory_destroy(&inv);
}

/* Z85 has '{' and '%': a real key (found by test_security_curve with a
 * random one) may hold "{{" or "{%" and is not a Jinja2 template. */
static void inventory_server_key_with_braces_is_not_jinja(void **state)
{
    (void)state;
    static const char k1[] = "u{{QG.s{cCD}-]zNv)Kqq^{NGuFM)}5qAE%5bb(7";
    static const char k2[] = "{%rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7%";
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "archfarm_agents:\n"
             "  hosts:\n"
             "    a: {archfarm_platforms: amd64, archfarm_server_key: \"%s\"}\n"
             "    b: {archfarm_platforms: amd64, archfarm_server_key: '%s'}\n",
             k1, k2);
    af_inventory_t *inv = s_load(yaml);
    assert_string_equal(s_node(inv, "a")->server_key, k1);
    assert_string_equal(s_node(inv, "b")->server_key, k2);
    af_inventory_destroy(&inv);
    /* a non-scalar is still refused */
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_platforms: amd64, archfarm_server_key: [x]}\n",
            AF_ERR_INVAL,
            "inv.yaml:3:57: archfarm_server_key: expected a 40-character Z85 CURVE public key, "
            "got a list");
}

static void inventory_max_jobs_must_be_1_to_256(void **state)
{
    (void)state;
    s_fails("archfarm_agents:\n"
            "  vars:\n"
            "    archfarm_insecure: true\n"
            "    archfarm_platforms: [linux/amd64]\n"
            "  hosts:\n"
            "    pi01:\n"
            "      archfarm_max_jobs:      many\n",
            AF_ERR_INVAL,
            "inv.yaml:7:31: archfarm_max_jobs: expected an integer >= 1, got \"many\"");
    const char *head = "archfarm_agents:\n"
                       "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
                       "  hosts:\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s    a: {archfarm_max_jobs: 0}\n", head);
    s_fails(buf, AF_ERR_INVAL,
            "inv.yaml:4:28: archfarm_max_jobs: expected an integer >= 1, got \"0\"");
    snprintf(buf, sizeof buf, "%s    a: {archfarm_max_jobs: -3}\n", head);
    s_fails(buf, AF_ERR_INVAL,
            "inv.yaml:4:28: archfarm_max_jobs: expected an integer >= 1, got \"-3\"");
    snprintf(buf, sizeof buf, "%s    a: {archfarm_max_jobs: 2.5}\n", head);
    s_fails(buf, AF_ERR_INVAL,
            "inv.yaml:4:28: archfarm_max_jobs: expected an integer >= 1, got \"2.5\"");
    snprintf(buf, sizeof buf, "%s    a: {archfarm_max_jobs: 257}\n", head);
    s_fails(buf, AF_ERR_INVAL,
            "inv.yaml:4:28: archfarm_max_jobs: expected an integer <= 256, got \"257\"");
    snprintf(buf, sizeof buf, "%s    a: {archfarm_max_jobs: 99999999999999999999}\n", head);
    s_fails(buf, AF_ERR_INVAL,
            "inv.yaml:4:28: archfarm_max_jobs: expected an integer >= 1, got "
            "\"99999999999999999999\"");
    snprintf(buf, sizeof buf,
             "%s    a: {archfarm_max_jobs: 256}\n    b: {archfarm_max_jobs: \"4\"}\n", head);
    af_inventory_t *inv = s_load(buf);
    assert_int_equal(s_node(inv, "a")->max_jobs, 256);
    assert_int_equal(s_node(inv, "b")->max_jobs, 4);
    af_inventory_destroy(&inv);
}

static void inventory_port_must_be_1_to_65535(void **state)
{
    (void)state;
    const char *head = "archfarm_agents:\n"
                       "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
                       "  hosts:\n";
    char buf[512];
    static const char *const bad[] = {"0", "65536", "-1", "http", "7e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "%s    a: {archfarm_port: %s}\n", head, bad[i]);
        char want[200];
        snprintf(want, sizeof want,
                 "inv.yaml:4:24: archfarm_port: expected a port number from 1 to 65535, got "
                 "\"%s\"",
                 bad[i]);
        s_fails(buf, AF_ERR_INVAL, want);
    }
    snprintf(buf, sizeof buf, "%s    a: {archfarm_port: 65535}\n", head);
    af_inventory_t *inv = s_load(buf);
    assert_string_equal(s_node(inv, "a")->endpoint, "tcp://a:65535");
    af_inventory_destroy(&inv);
}

static void inventory_insecure_accepts_yaml_and_string_booleans(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_platforms: amd64,\n"
                                 "         archfarm_server_key: '" Z85_KEY "'}\n"
                                 "  hosts:\n"
                                 "    a: {archfarm_insecure: yes}\n"
                                 "    b: {archfarm_insecure: \"true\"}\n"
                                 "    c: {archfarm_insecure: True}\n"
                                 "    d: {archfarm_insecure: on}\n"
                                 "    e: {archfarm_insecure: no}\n"
                                 "    f: {archfarm_insecure: FALSE}\n"
                                 "    g: {archfarm_insecure: 'off'}\n"
                                 "    h: {archfarm_insecure: 1}\n");
    assert_true(s_node(inv, "a")->insecure);
    assert_true(s_node(inv, "b")->insecure);
    assert_true(s_node(inv, "c")->insecure);
    assert_true(s_node(inv, "d")->insecure);
    assert_false(s_node(inv, "e")->insecure);
    assert_false(s_node(inv, "f")->insecure);
    assert_false(s_node(inv, "g")->insecure);
    assert_true(s_node(inv, "h")->insecure);
    af_inventory_destroy(&inv);
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_platforms: amd64, archfarm_insecure: maybe}\n",
            AF_ERR_INVAL,
            "inv.yaml:3:55: archfarm_insecure: expected true or false, got \"maybe\"");
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_platforms: amd64, archfarm_insecure: [true]}\n",
            AF_ERR_INVAL, "inv.yaml:3:55: archfarm_insecure: expected true or false, got a list");
}

static void inventory_labels_map_or_list(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
                                 "  hosts:\n"
                                 "    a:\n"
                                 "      archfarm_labels: {zone: eu-1, cores: 8, ssd: true, "
                                 "empty: ~, zone: eu-2}\n"
                                 "    b:\n"
                                 "      archfarm_labels: [gpu, \"rack=3\", \"k=v=w\", gpu=yes]\n"
                                 "    c: {archfarm_labels: {}}\n"
                                 "    d: {archfarm_labels: ~}\n");
    const af_node_t *a = s_node(inv, "a");
    assert_int_equal(a->n_labels, 4);
    assert_string_equal(af_node_label(a, "zone"), "eu-2");
    assert_string_equal(af_node_label(a, "cores"), "8");
    assert_string_equal(af_node_label(a, "ssd"), "true");
    assert_string_equal(af_node_label(a, "empty"), "");
    assert_null(af_node_label(a, "gpu"));
    const af_node_t *b = s_node(inv, "b");
    assert_int_equal(b->n_labels, 3);
    assert_string_equal(af_node_label(b, "gpu"), "yes");
    assert_string_equal(af_node_label(b, "rack"), "3");
    assert_string_equal(af_node_label(b, "k"), "v=w");
    assert_int_equal(s_node(inv, "c")->n_labels, 0);
    assert_int_equal(s_node(inv, "d")->n_labels, 0);
    af_inventory_destroy(&inv);
}

static void inventory_bad_labels_rejected(void **state)
{
    (void)state;
    const char *head = "archfarm_agents:\n"
                       "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
                       "  hosts:\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s    a: {archfarm_labels: gpu}\n", head);
    s_fails(buf, AF_ERR_INVAL,
            "inv.yaml:4:26: archfarm_labels: expected a mapping or a list of \"key=value\", got "
            "\"gpu\"");
    snprintf(buf, sizeof buf, "%s    a: {archfarm_labels: {x: {y: z}}}\n", head);
    s_fails(buf, AF_ERR_INVAL, "inv.yaml:4:30: archfarm_labels: expected a string, got a mapping");
    snprintf(buf, sizeof buf, "%s    a: {archfarm_labels: [\"=v\"]}\n", head);
    s_fails(buf, AF_ERR_INVAL, "inv.yaml:4:27: archfarm_labels: empty label key");
    snprintf(buf, sizeof buf, "%s    a: {archfarm_labels: [[a]]}\n", head);
    s_fails(buf, AF_ERR_INVAL, "inv.yaml:4:27: archfarm_labels: expected a string, got a list");
    /* more than AF_INVENTORY_MAX_LABELS */
    char big[4096];
    size_t o = (size_t)snprintf(big, sizeof big, "%s    a:\n      archfarm_labels:\n", head);
    for (int i = 0; i <= AF_INVENTORY_MAX_LABELS; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "        - l%d\n", i);
    s_fails(big, AF_ERR_TOOBIG, "inv.yaml:70:11: archfarm_labels: more than 64 labels");
}

static void inventory_priority_is_an_integer(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: amd64,\n"
                                 "         archfarm_priority: 5}\n"
                                 "  hosts:\n"
                                 "    a: {archfarm_priority: -2}\n"
                                 "    b:\n");
    assert_int_equal(s_node(inv, "a")->priority, -2);
    assert_int_equal(s_node(inv, "b")->priority, 5);
    af_inventory_destroy(&inv);
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_platforms: amd64, archfarm_insecure: true, archfarm_priority: "
            "high}\n",
            AF_ERR_INVAL, "inv.yaml:3:80: archfarm_priority: expected an integer, got \"high\"");
}

static void inventory_unknown_variables_are_ignored(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("all:\n"
                                 "  vars:\n"
                                 "    ansible_user: pi\n"
                                 "    some_dict: {a: [1, 2, {b: c}]}\n"
                                 "archfarm_agents:\n"
                                 "  hosts:\n"
                                 "    a:\n"
                                 "      ansible_python_interpreter: /usr/bin/python3\n"
                                 "      archfarm_platforms: amd64\n"
                                 "      archfarm_insecure: true\n");
    assert_int_equal(af_inventory_size(inv), 1);
    af_inventory_destroy(&inv);
}

static void inventory_templates_are_not_evaluated(void **state)
{
    (void)state;
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_platforms: amd64, archfarm_insecure: true,\n"
            "        ansible_host: \"{{ inventory_hostname }}.lan\"}\n",
            AF_ERR_UNSUPPORTED,
            "inv.yaml:4:23: ansible_host: Jinja2 templates are not evaluated by archfarm, got "
            "\"{{ inventory_hostname }}.lan\"");
}

static void inventory_nul_in_a_value_rejected(void **state)
{
    (void)state;
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    a: {archfarm_platforms: amd64, archfarm_insecure: true,\n"
            "        ansible_host: \"a\\0b\"}\n",
            AF_ERR_INVAL, "inv.yaml:4:23: ansible_host: contains a NUL byte");
}

/* ---- precedence ------------------------------------------------------------- */

static const char s_precedence[] = "all:\n"
                                   "  vars:\n"
                                   "    archfarm_insecure: true\n"
                                   "    archfarm_platforms: [linux/amd64]\n"
                                   "    archfarm_max_jobs: 1\n"
                                   "    archfarm_port: 1001\n"
                                   "    archfarm_priority: 1\n"
                                   "    ansible_host: from-all\n"
                                   "  children:\n"
                                   "    archfarm_agents:\n"
                                   "      vars:\n"
                                   "        archfarm_max_jobs: 2\n"
                                   "        archfarm_port: 1002\n"
                                   "        archfarm_priority: 2\n"
                                   "      children:\n"
                                   "        arm:\n"
                                   "          vars:\n"
                                   "            archfarm_platforms: [linux/arm64]\n"
                                   "            archfarm_max_jobs: 3\n"
                                   "            archfarm_port: 1003\n"
                                   "          children:\n"
                                   "            pis:\n"
                                   "              vars:\n"
                                   "                archfarm_max_jobs: 4\n"
                                   "              hosts:\n"
                                   "                pi1:\n"
                                   "                  archfarm_max_jobs: 5\n"
                                   "                pi2:\n"
                                   "        x86:\n"
                                   "          hosts:\n"
                                   "            big:\n";

static void inventory_host_vars_override_group_vars(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load(s_precedence);
    assert_int_equal(s_node(inv, "pi1")->max_jobs, 5);
    af_inventory_destroy(&inv);
}

static void inventory_child_group_vars_override_parent(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load(s_precedence);
    const af_node_t *pi2 = s_node(inv, "pi2");
    char buf[AF_PLATFORM_STR_MAX];
    assert_int_equal(pi2->max_jobs, 4);                        /* pis over arm */
    assert_string_equal(pi2->endpoint, "tcp://from-all:1003"); /* arm over archfarm_agents */
    assert_string_equal(s_plat(pi2, 0, buf), "linux/arm64");   /* arm over all */
    af_inventory_destroy(&inv);
}

static void inventory_parent_group_vars_override_all(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load(s_precedence);
    const af_node_t *big = s_node(inv, "big");
    char buf[AF_PLATFORM_STR_MAX];
    assert_int_equal(big->max_jobs, 2);
    assert_int_equal(big->priority, 2);
    assert_string_equal(big->endpoint, "tcp://from-all:1002");
    assert_string_equal(s_plat(big, 0, buf), "linux/amd64");
    assert_true(big->insecure);
    af_inventory_destroy(&inv);
}

static void inventory_sibling_groups_resolve_by_name_then_priority(void **state)
{
    (void)state;
    /* same depth: sorted by ansible_group_priority, then name; the last
     * applied wins, as in Ansible. "zeta" is declared first but sorts last. */
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
                                 "  children:\n"
                                 "    zeta:\n"
                                 "      vars: {archfarm_max_jobs: 5, archfarm_port: 1111}\n"
                                 "      hosts: {h1: , h2: }\n"
                                 "    alpha:\n"
                                 "      vars: {archfarm_max_jobs: 7, archfarm_port: 2222}\n"
                                 "      hosts: {h1: , h2: }\n"
                                 "    beta:\n"
                                 "      vars: {archfarm_max_jobs: 9, ansible_group_priority: 0}\n"
                                 "      hosts: {h2: }\n"
                                 "    gamma:\n"
                                 "      vars: {archfarm_port: 3333, ansible_group_priority: 2}\n"
                                 "      hosts: {h2: }\n");
    const af_node_t *h1 = s_node(inv, "h1"), *h2 = s_node(inv, "h2");
    assert_int_equal(h1->max_jobs, 5);
    assert_string_equal(h1->endpoint, "tcp://h1:1111");
    assert_int_equal(h2->max_jobs, 5);                  /* beta's priority 0 sorts it first */
    assert_string_equal(h2->endpoint, "tcp://h2:3333"); /* gamma's priority 2 sorts it last */
    af_inventory_destroy(&inv);
    s_fails("archfarm_agents:\n"
            "  vars: {ansible_group_priority: high}\n",
            AF_ERR_INVAL,
            "inv.yaml:2:34: ansible_group_priority: expected an integer, got \"high\"");
}

static void inventory_deepest_path_sets_group_depth(void **state)
{
    (void)state;
    /* "fast" is a direct child of archfarm_agents (depth 2) but also sits
     * under lab > racks (depth 3), so it overrides "arm" (depth 2) */
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
                                 "  children:\n"
                                 "    arm:\n"
                                 "      vars: {archfarm_max_jobs: 3}\n"
                                 "      hosts: {pi: }\n"
                                 "    fast:\n"
                                 "      vars: {archfarm_max_jobs: 8}\n"
                                 "      hosts: {pi: }\n"
                                 "lab:\n"
                                 "  children:\n"
                                 "    racks:\n"
                                 "      children:\n"
                                 "        fast:\n");
    assert_int_equal(s_node(inv, "pi")->max_jobs, 8);
    af_inventory_destroy(&inv);
}

static void inventory_group_defined_in_several_places_merges(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  children:\n"
                                 "    arm64:\n"
                                 "    armv7:\n"
                                 "arm64:\n"
                                 "  vars: {archfarm_platforms: [arm64], archfarm_insecure: true}\n"
                                 "  hosts:\n"
                                 "    pi1:\n"
                                 "armv7:\n"
                                 "  hosts:\n"
                                 "    rpi1: {archfarm_platforms: armv7l, archfarm_insecure: true}\n"
                                 "arm64:\n"
                                 "  vars: {archfarm_max_jobs: 6}\n");
    /* the second "arm64:" top-level key replaces the first, as in PyYAML */
    assert_int_equal(af_inventory_size(inv), 1);
    assert_string_equal(af_inventory_node(inv, 0)->name, "rpi1");
    af_inventory_destroy(&inv);

    inv = s_load("archfarm_agents:\n"
                 "  children:\n"
                 "    arm64:\n"
                 "      vars: {archfarm_platforms: [arm64]}\n"
                 "all:\n"
                 "  children:\n"
                 "    arm64:\n"
                 "      vars: {archfarm_insecure: true, archfarm_max_jobs: 6}\n"
                 "      hosts: {pi1: , pi2: }\n");
    assert_int_equal(af_inventory_size(inv), 2);
    assert_int_equal(s_node(inv, "pi2")->max_jobs, 6);
    assert_true(s_node(inv, "pi2")->insecure);
    af_inventory_destroy(&inv);
}

static void inventory_duplicate_host_definitions_merge_vars(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  hosts:\n"
                                 "    n1: {archfarm_platforms: amd64, archfarm_max_jobs: 2}\n"
                                 "other:\n"
                                 "  hosts:\n"
                                 "    n1: {archfarm_insecure: true, archfarm_max_jobs: 3}\n");
    const af_node_t *n1 = s_node(inv, "n1");
    assert_true(n1->insecure);
    assert_int_equal(n1->max_jobs, 3); /* the later definition wins */
    assert_int_equal(n1->line, 3);     /* where it was first declared */
    af_inventory_destroy(&inv);
}

static void inventory_only_archfarm_agents_hosts_are_nodes(void **state)
{
    (void)state;
    af_inventory_t *inv =
        s_load("all:\n"
               "  hosts:\n"
               "    ctl: {archfarm_max_jobs: nonsense}\n"
               "  children:\n"
               "    web:\n"
               "      hosts: {w1: }\n"
               "    archfarm_agents:\n"
               "      vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
               "      children:\n"
               "        a: {hosts: {n2: }}\n"
               "        b: {children: {c: {hosts: {n3: }}}}\n"
               "      hosts: {n1: }\n");
    assert_int_equal(af_inventory_size(inv), 3);
    assert_null(af_inventory_find(inv, "ctl"));
    assert_null(af_inventory_find(inv, "w1"));
    assert_null(af_inventory_find(inv, NULL));
    /* declaration order */
    assert_string_equal(af_inventory_node(inv, 0)->name, "n2");
    assert_string_equal(af_inventory_node(inv, 1)->name, "n3");
    assert_string_equal(af_inventory_node(inv, 2)->name, "n1");
    af_inventory_destroy(&inv);

    inv = s_load("all:\n  hosts:\n    localhost:\n");
    assert_int_equal(af_inventory_size(inv), 0);
    assert_null(af_inventory_node(inv, 0));
    af_inventory_destroy(&inv);
    assert_int_equal(af_inventory_size(NULL), 0);
}

static void inventory_sections_accept_a_single_name_and_null(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
                                 "  hosts: solo\n"
                                 "  children: kids\n"
                                 "kids:\n"
                                 "  hosts: {k1: }\n"
                                 "  vars:\n"
                                 "empty:\n");
    assert_int_equal(af_inventory_size(inv), 2);
    assert_non_null(af_inventory_find(inv, "solo"));
    assert_non_null(af_inventory_find(inv, "k1"));
    af_inventory_destroy(&inv);
}

/* ---- host ranges ------------------------------------------------------------ */

static void inventory_numeric_range_keeps_zero_padding(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: arm64}\n"
                                 "  hosts:\n"
                                 "    pi[01:08]:\n"
                                 "      archfarm_max_jobs: 2\n"
                                 "    n[8:11]:\n");
    assert_int_equal(af_inventory_size(inv), 12);
    assert_string_equal(af_inventory_node(inv, 0)->name, "pi01");
    assert_string_equal(af_inventory_node(inv, 7)->name, "pi08");
    assert_int_equal(af_inventory_node(inv, 7)->max_jobs, 2);
    assert_int_equal(af_inventory_node(inv, 7)->line, 4);
    assert_string_equal(af_inventory_node(inv, 8)->name, "n8");
    assert_string_equal(af_inventory_node(inv, 11)->name, "n11");
    af_inventory_destroy(&inv);
}

static void inventory_alpha_range_and_stride(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: arm64}\n"
                                 "  hosts:\n"
                                 "    db-[a:c]:\n"
                                 "    x[1:10:3]:\n"
                                 "    y[:2]:\n"
                                 "    z[a:e:2]:\n");
    static const char *const want[] = {"db-a", "db-b", "db-c", "x1", "x4", "x7", "x10",
                                       "y0",   "y1",   "y2",   "za", "zc", "ze"};
    assert_int_equal(af_inventory_size(inv), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_string_equal(af_inventory_node(inv, i)->name, want[i]);
    af_inventory_destroy(&inv);
}

static void inventory_range_in_the_middle_and_several_ranges(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: arm64}\n"
                                 "  hosts:\n"
                                 "    web[1:3].example.com:\n"
                                 "    r[1:2]-n[a:b]:\n");
    static const char *const want[] = {"web1.example.com",
                                       "web2.example.com",
                                       "web3.example.com",
                                       "r1-na",
                                       "r1-nb",
                                       "r2-na",
                                       "r2-nb"};
    assert_int_equal(af_inventory_size(inv), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_string_equal(af_inventory_node(inv, i)->name, want[i]);
    af_inventory_destroy(&inv);
}

static void inventory_bad_ranges_rejected(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *why;
    } t[] = {
        {"pi[1:3", "unterminated range, missing ']'"},
        {"pi1:3]", "']' without '['"},
        {"pi[13]", "expected [START:END] or [START:END:STEP]"},
        {"pi[1:2:3:4]", "expected [START:END] or [START:END:STEP]"},
        {"pi[1:]", "range has no end value"},
        {"pi[5:1]", "range start is after its end"},
        {"pi[c:a]", "range start is after its end"},
        {"pi[01:8]", "a zero-padded range needs start and end of equal length"},
        {"pi[a:5]", "range bounds must both be numbers or both single letters"},
        {"pi[aa:bb]", "range bounds must both be numbers or both single letters"},
        {"pi[1:5:0]", "range step must be a positive integer"},
        {"pi[1:5:x]", "range step must be a positive integer"},
        {"pi[1:9999999999]", "range bound too large"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char yaml[256], want[256];
        snprintf(yaml, sizeof yaml,
                 "archfarm_agents:\n  hosts:\n    \"%s\": {archfarm_platforms: amd64}\n",
                 t[i].pattern);
        snprintf(want, sizeof want, "inv.yaml:3:5: host pattern \"%s\": %s", t[i].pattern,
                 t[i].why);
        s_fails(yaml, AF_ERR_INVAL, want);
    }
}

static void inventory_range_host_count_bounded(void **state)
{
    (void)state;
    s_fails("archfarm_agents:\n  hosts:\n    n[0:999999]:\n", AF_ERR_TOOBIG,
            "inv.yaml:3:5: host range expands to more than 4096 hosts");
    s_fails("archfarm_agents:\n  hosts:\n    a[0:2999]:\n    b[0:2999]:\n", AF_ERR_TOOBIG,
            "inv.yaml:4:5: more than 4096 hosts");
}

static void inventory_ssh_port_suffix_is_ignored(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("archfarm_agents:\n"
                                 "  vars: {archfarm_insecure: true, archfarm_platforms: amd64}\n"
                                 "  hosts:\n"
                                 "    jump.example.com:2222:\n"
                                 "    w[1:2]:22:\n");
    assert_int_equal(af_inventory_size(inv), 3);
    assert_string_equal(af_inventory_node(inv, 0)->endpoint, "tcp://jump.example.com:7420");
    assert_string_equal(af_inventory_node(inv, 2)->name, "w2");
    af_inventory_destroy(&inv);
}

static void inventory_bad_host_names_rejected(void **state)
{
    (void)state;
    s_fails("archfarm_agents:\n  hosts:\n    \"a b\":\n", AF_ERR_INVAL,
            "inv.yaml:3:5: invalid host name \"a b\"");
    s_fails("archfarm_agents:\n  hosts:\n    \"\":\n", AF_ERR_INVAL,
            "inv.yaml:3:5: empty host name");
    char yaml[512];
    snprintf(yaml, sizeof yaml, "archfarm_agents:\n  hosts:\n    %0200d:\n", 7);
    s_fails_prefix(yaml, strlen(yaml), "inv.yaml:3:5: host name \"0000");
    s_fails("archfarm_agents:\n  hosts:\n    [a, b]:\n", AF_ERR_PARSE,
            "inv.yaml:3:5: expected a string key, got a list");
    s_fails("archfarm_agents:\n  hosts:\n    n1: [x]\n", AF_ERR_INVAL,
            "inv.yaml:3:9: host \"n1\": expected a mapping of variables, got a list");
}

/* ---- anchors, aliases, merge keys ------------------------------------------- */

static void inventory_anchors_and_merge_keys_work(void **state)
{
    (void)state;
    af_inventory_t *inv = s_load("x-defaults: &defaults\n"
                                 "  vars: {}\n"
                                 "archfarm_agents:\n"
                                 "  hosts:\n"
                                 "    a: &pi\n"
                                 "      archfarm_platforms: [arm64]\n"
                                 "      archfarm_insecure: true\n"
                                 "      archfarm_max_jobs: 2\n"
                                 "    b: *pi\n"
                                 "    c:\n"
                                 "      <<: *pi\n"
                                 "      archfarm_max_jobs: 4\n"
                                 "    d:\n"
                                 "      <<: [{archfarm_max_jobs: 7}, *pi]\n"
                                 "    e:\n"
                                 "      \"<<\": {archfarm_max_jobs: 9}\n"
                                 "      <<: *pi\n");
    assert_int_equal(af_inventory_size(inv), 5);
    assert_int_equal(s_node(inv, "a")->max_jobs, 2);
    assert_int_equal(s_node(inv, "b")->max_jobs, 2);
    assert_int_equal(s_node(inv, "c")->max_jobs, 4); /* own keys win over merged */
    assert_int_equal(s_node(inv, "d")->max_jobs, 7); /* first merge source wins */
    assert_true(s_node(inv, "d")->insecure);
    assert_int_equal(s_node(inv, "e")->max_jobs, 2); /* a quoted "<<" is a plain key */
    af_inventory_destroy(&inv);

    s_fails("archfarm_agents:\n  hosts:\n    a:\n      <<: 3\n", AF_ERR_PARSE,
            "inv.yaml:4:11: merge key (<<) expects a mapping or a list of mappings, got \"3\"");
    s_fails("archfarm_agents:\n  hosts:\n    a:\n      <<: [[1]]\n", AF_ERR_PARSE,
            "inv.yaml:4:12: merge key (<<) expects mappings, got a list");
    s_fails("archfarm_agents:\n  hosts:\n    a: &m\n      <<: *m\n", AF_ERR_TOOBIG,
            "inv.yaml:3:8: merge keys (<<) nested deeper than 32 levels");
}

static void inventory_alias_bomb_is_bounded(void **state)
{
    (void)state;
    /* each level lists the previous one twice: 2^40 group visits unbounded */
    char yaml[8192];
    size_t o = (size_t)snprintf(yaml, sizeof yaml, "l0: &l0 {hosts: {h: }}\n");
    for (int i = 1; i <= 40; i++)
        o += (size_t)snprintf(yaml + o, sizeof yaml - o,
                              "l%d: &l%d {children: {a%d: *l%d, b%d: *l%d}}\n", i, i, i, i - 1, i,
                              i - 1);
    s_fails_prefix(yaml, o, "inv.yaml:");
    af_err_t err;
    af_inventory_t *inv = af_inventory_load_buffer("inv.yaml", yaml, o, &err);
    assert_null(inv);
    assert_true(err.code == AF_ERR_TOOBIG);

    /* the same with merge keys in a vars mapping */
    o = (size_t)snprintf(yaml, sizeof yaml, "v0: &v0 {hosts: {}, vars: {a: 1, b: 2}}\n");
    for (int i = 1; i <= 40; i++)
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "v%d: &v%d {<<: [*v%d, *v%d]}\n", i, i,
                              i - 1, i - 1);
    inv = af_inventory_load_buffer("inv.yaml", yaml, o, &err);
    assert_null(inv);
    assert_int_equal(err.code, AF_ERR_TOOBIG);

    /* and with merge sources that hold nothing: 64^6 visits unbounded */
    o = (size_t)snprintf(yaml, sizeof yaml, "e0: &e0 {}\n");
    for (int i = 1; i <= 6; i++) {
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "e%d: &e%d {<<: [", i, i);
        for (int j = 0; j < 64; j++)
            o += (size_t)snprintf(yaml + o, sizeof yaml - o, "%s*e%d", j ? "," : "", i - 1);
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "]}\n");
    }
    assert_true(o < sizeof yaml - 1);
    inv = af_inventory_load_buffer("inv.yaml", yaml, o, &err);
    assert_null(inv);
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "inventory too large after alias expansion"));
}

static void inventory_self_referencing_alias_does_not_crash(void **state)
{
    (void)state;
    s_fails("x: &a\n  children:\n    y: *a\n", AF_ERR_INVAL,
            "inv.yaml:3:5: group \"y\" cannot be its own child");
    s_fails("x: &a\n  children:\n    y:\n      children:\n        z: *a\n", AF_ERR_INVAL,
            "inv.yaml:3:5: group \"y\" is its own ancestor (a loop in children)");
    s_fails("archfarm_agents:\n  hosts: &h\n    a: *h\n", AF_ERR_INVAL,
            "inv.yaml:3:5: host \"a\": archfarm_platforms is required");
    s_fails_prefix("a: &a [*a]\n", 11, "inv.yaml:1:4: group \"a\": expected a mapping");
}

static void inventory_children_loop_rejected(void **state)
{
    (void)state;
    s_fails("a:\n  children:\n    b:\nb:\n  children:\n    a:\n", AF_ERR_INVAL,
            "inv.yaml:1:1: group \"a\" is its own ancestor (a loop in children)");
    s_fails("a:\n  children:\n    all:\n", AF_ERR_INVAL,
            "inv.yaml:3:5: group \"all\" cannot be a child of \"a\"");
}

static void inventory_nesting_depth_bounded(void **state)
{
    (void)state;
    /* 33 levels written out */
    char yaml[16384];
    size_t o = 0;
    for (int i = 0; i < 33; i++)
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "%*sg%d:\n%*s  children:\n", i * 4, "", i,
                              i * 4, "");
    s_fails_prefix(yaml, o, "inv.yaml:65:129: group \"g32\" is nested deeper than 32 levels");
    /* and a chain built from 40 flat definitions */
    o = 0;
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "g%d: {children: {g%d: }}\n", i, i + 1);
    s_fails_prefix(yaml, o, "inv.yaml:");
    af_err_t err;
    assert_null(af_inventory_load_buffer("inv.yaml", yaml, o, &err));
    assert_non_null(strstr(err.msg, "is nested deeper than 32 levels"));
}

/* ---- malformed input --------------------------------------------------------- */

static void inventory_deep_yaml_nesting_rejected_quickly(void **state)
{
    (void)state;
    /* libyaml's scanner is quadratic in flow depth: 2 MiB of "[" would take
     * hours without the depth check that runs first */
    size_t n = 2 * 1024 * 1024;
    char *yaml = malloc(n + 8);
    assert_non_null(yaml);
    memcpy(yaml, "a: ", 3);
    memset(yaml + 3, '[', n);
    s_fails_prefix(yaml, n + 3, "inv.yaml:1:131: YAML nested deeper than 128 levels");
    memset(yaml + 3, '{', n);
    s_fails_prefix(yaml, n + 3, "inv.yaml:1:131: YAML nested deeper than 128 levels");
    free(yaml);
}

static void inventory_tab_indentation_is_a_yaml_error(void **state)
{
    (void)state;
    s_fails("all:\n\thosts:\n", AF_ERR_PARSE,
            "inv.yaml:2:1: YAML error: found character that cannot start any token (while "
            "scanning for the next token at line 2)");
}

static void inventory_unclosed_quote_is_a_yaml_error(void **state)
{
    (void)state;
    s_fails("all:\n  hosts:\n    \"abc: x\n", AF_ERR_PARSE,
            "inv.yaml:4:1: YAML error: found unexpected end of stream (while scanning a quoted "
            "scalar at line 3)");
    s_fails("all:\n  hosts: [a, b\n", AF_ERR_PARSE,
            "inv.yaml:3:1: YAML error: did not find expected ',' or ']' (while parsing a flow "
            "sequence at line 2)");
}

static void inventory_binary_junk_is_rejected(void **state)
{
    (void)state;
    static const char junk[] = "\x7f"
                               "ELF\x02\x01\x01\x00\x00\x00\xff\xfe\x00\x01";
    s_fails_prefix(junk, sizeof junk - 1, "inv.yaml:1:");
    s_fails_prefix("all:\n  hosts:\n    a\x01: {}\n", 22, "inv.yaml:3:6: YAML error: control");
    s_fails_prefix("all: {a: \xc3\x28}\n", 13, "inv.yaml:1:11: YAML error: invalid trailing UTF-8");
    /* a NUL byte in the middle of the buffer */
    s_fails_prefix("all:\n\0  hosts:\n", 15, "inv.yaml:2:1: YAML error: control characters");
    /* pseudo-random bytes never crash */
    unsigned char buf[512];
    uint32_t x = 2463534242u;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            static const char alphabet[] = "ab:[]{} -\n\t#&*!|>'\"%@`,?";
            buf[i] =
                round % 2 ? (unsigned char)alphabet[x % (sizeof alphabet - 1)] : (unsigned char)x;
        }
        af_err_t err;
        af_inventory_t *inv = af_inventory_load_buffer("junk", (char *)buf, sizeof buf, &err);
        af_inventory_destroy(&inv);
    }
}

static void inventory_empty_or_non_mapping_is_an_error(void **state)
{
    (void)state;
    const char *want = "inv.yaml:1:1: empty inventory (expected a mapping of groups, such as all: "
                       "or archfarm_agents:)";
    s_fails("", AF_ERR_PARSE, want);
    s_fails("# nothing here\n\n", AF_ERR_PARSE, want);
    s_fails("---\n...\n", AF_ERR_PARSE, want);
    s_fails("- all\n", AF_ERR_PARSE, "inv.yaml:1:1: expected a mapping of groups, got a list");
    s_fails("\n\n  just text\n", AF_ERR_PARSE,
            "inv.yaml:3:3: expected a mapping of groups, got \"just text\"");
    af_err_t err;
    af_err_clear(&err);
    assert_null(af_inventory_load_buffer(NULL, NULL, 0, &err));
    assert_string_equal(err.msg, "inventory:1:1: empty inventory (expected a mapping of groups, "
                                 "such as all: or archfarm_agents:)");
}

static void inventory_bad_group_structure_rejected(void **state)
{
    (void)state;
    s_fails("all:\n  host:\n    a:\n", AF_ERR_INVAL,
            "inv.yaml:2:3: group \"all\": unexpected key \"host\" (expected hosts, vars or "
            "children)");
    s_fails("all:\n  hosts: [a, b]\n", AF_ERR_INVAL,
            "inv.yaml:2:10: group \"all\": hosts must be a mapping, got a list");
    s_fails("all:\n  children: [a]\n", AF_ERR_INVAL,
            "inv.yaml:2:13: group \"all\": children must be a mapping, got a list");
    s_fails("all:\n  vars: [a]\n", AF_ERR_INVAL,
            "inv.yaml:2:9: group \"all\": vars must be a mapping, got a list");
    s_fails("all:\n  vars: x\n", AF_ERR_INVAL,
            "inv.yaml:2:9: group \"all\": vars must be a mapping, got \"x\"");
    s_fails("web: hello\n", AF_ERR_INVAL,
            "inv.yaml:1:6: group \"web\": expected a mapping with hosts, vars or children, got "
            "\"hello\"");
    s_fails("? [a]\n: {}\n", AF_ERR_PARSE, "inv.yaml:1:3: expected a string key, got a list");
    s_fails("\"\": {}\n", AF_ERR_INVAL, "inv.yaml:1:1: empty group name");
    s_fails("a:\n  children:\n    a:\n", AF_ERR_INVAL,
            "inv.yaml:3:5: group \"a\" cannot be its own child");
}

static void inventory_multiple_documents_rejected(void **state)
{
    (void)state;
    s_fails("all: {}\n---\nall: {}\n", AF_ERR_PARSE,
            "inv.yaml:2:1: more than one YAML document (an inventory is a single document)");
    s_fails("all: {}\n---\n[\n", AF_ERR_PARSE,
            "inv.yaml:2:1: more than one YAML document (an inventory is a single document)");
}

static void inventory_size_is_bounded(void **state)
{
    (void)state;
    size_t len = AF_INVENTORY_MAX_BYTES + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, '#', len);
    big[len - 1] = '\n';
    af_err_t err;
    af_err_clear(&err);
    assert_null(af_inventory_load_buffer("big.yaml", big, len, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    assert_string_equal(err.msg, "big.yaml: inventory is 4194305 bytes, more than the limit of "
                                 "4194304 bytes");
    /* a file over the limit is caught while reading */
    char path[] = "/tmp/af_inv_big_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, len, f), len);
    fclose(f);
    assert_null(af_inventory_load(path, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    unlink(path);
    free(big);
}

/* issue 12 finding 10: a host written twice in one mapping used to be merged
 * silently (the second wins); it warns with both positions. */
static void inventory_duplicate_host_warns(void **state)
{
    (void)state;
    const char *y = "archfarm_agents:\n"
                    "  hosts:\n"
                    "    pi01: {archfarm_platforms: [linux/arm64], archfarm_insecure: true}\n"
                    "    pi02: {archfarm_platforms: [linux/arm64], archfarm_insecure: true}\n"
                    "    pi01: {archfarm_platforms: [linux/amd64], archfarm_insecure: true}\n";
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load_buffer("dup.yaml", y, strlen(y), &err);
    if (!inv)
        fail_msg("%s", err.msg);
    assert_int_equal(af_inventory_warning_count(inv), 1);
    assert_string_equal(af_inventory_warning(inv, 0),
                        "dup.yaml:5:5: warning: \"pi01\" is defined twice in one mapping, first "
                        "at dup.yaml:3:5; the later one wins (as in Ansible)");
    assert_null(af_inventory_warning(inv, 1));
    /* the later definition wins, as in Ansible */
    char plat[64];
    assert_string_equal(af_platform_format(&s_node(inv, "pi01")->platforms[0], plat, sizeof plat),
                        "linux/amd64");
    af_inventory_destroy(&inv);

    /* a key repeated through an alias is reported once; `<<` overrides are
     * not duplicates */
    const char *y2 = "archfarm_agents:\n"
                     "  vars: &v {archfarm_insecure: true, archfarm_insecure: true}\n"
                     "  hosts:\n"
                     "    a: {<<: *v, archfarm_platforms: [linux/arm64], archfarm_insecure: true}\n"
                     "    b: {<<: *v, archfarm_platforms: [linux/arm64]}\n";
    inv = af_inventory_load_buffer("alias.yaml", y2, strlen(y2), &err);
    if (!inv)
        fail_msg("%s", err.msg);
    assert_int_equal(af_inventory_warning_count(inv), 1);
    assert_non_null(strstr(af_inventory_warning(inv, 0), "alias.yaml:2:38: warning: "));
    af_inventory_destroy(&inv);
}

/* issue 12 finding 10: an oversized file gives its real size and the limit
 * (it said "4194305 bytes", one past the limit, whatever the size) */
static void inventory_oversized_file_says_the_limit(void **state)
{
    (void)state;
    char path[] = "/tmp/af_inv_huge_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 50L * 1024 * 1024), 0); /* sparse: no disk used */
    close(fd);
    af_err_t err;
    af_err_clear(&err);
    assert_null(af_inventory_load(path, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    char want[256];
    snprintf(want, sizeof want,
             "%s: inventory is 52428800 bytes, more than the limit of 4194304 bytes", path);
    assert_string_equal(err.msg, want);
    unlink(path);
}

/* Writes LEN bytes of DATA to a new FIFO's write end from a child; returns
 * the child's pid. */
static pid_t s_fifo_writer(const char *path, const char *data, size_t len)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY);
        for (size_t off = 0; fd >= 0 && off < len;) {
            ssize_t n = write(fd, data + off, len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        _exit(0);
    }
    return pid;
}

/* issue 12 finding 10: `-i <(...)` and FIFOs were refused as "not a regular
 * file"; they are read, bounded like files */
static void inventory_reads_fifos_bounded(void **state)
{
    (void)state;
    char dir[] = "/tmp/af_inv_fifo_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/inv", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    const char *y = "archfarm_agents:\n  hosts:\n    n1: {archfarm_platforms: [linux/arm64], "
                    "archfarm_insecure: true}\n";
    pid_t pid = s_fifo_writer(path, y, strlen(y));
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load(path, &err);
    if (!inv)
        fail_msg("%s", err.msg);
    assert_int_equal(af_inventory_size(inv), 1);
    assert_string_equal(af_inventory_node(inv, 0)->name, "n1");
    af_inventory_destroy(&inv);
    assert_int_equal(waitpid(pid, NULL, 0), pid);

    /* an endless pipe stops at the limit */
    size_t len = AF_INVENTORY_MAX_BYTES + 4096;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, '#', len);
    pid = s_fifo_writer(path, big, len);
    assert_null(af_inventory_load(path, &err));
    assert_int_equal(err.code, AF_ERR_TOOBIG);
    char want[128];
    snprintf(want, sizeof want, "%s: inventory is larger than the limit of 4194304 bytes", path);
    assert_string_equal(err.msg, want);
    kill(pid, SIGKILL); /* the writer may block on the closed pipe: SIGPIPE ends it anyway */
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    free(big);
    unlink(path);
    rmdir(dir);
}

/* A CURVE host without archfarm_server_key takes its key from
 * known_agents/NAME.key beside the inventory (written by the Ansible role);
 * the inventory's own key wins; without either it is an error naming both
 * ways. */
static void inventory_known_agents_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/af_inv_known_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], known[128], cert[160];
    snprintf(path, sizeof path, "%s/inv.yaml", dir);
    snprintf(known, sizeof known, "%s/known_agents", dir);
    const char *y = "archfarm_agents:\n  hosts:\n"
                    "    a: {archfarm_platforms: [linux/arm64]}\n"
                    "    b: {archfarm_platforms: [linux/arm64], archfarm_server_key: "
                    "\"hc@Ar&y&}XVyE349qxxCK%$@WIj01mKmF8Lpu&lS\"}\n";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(y, f);
    fclose(f);
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load(path, &err);
    if (!inv)
        fail_msg("%s", err.msg);
    assert_null(s_node(inv, "a")->server_key);
    assert_int_equal(af_inventory_warning_count(inv), 1);
    af_inventory_destroy(&inv);

    assert_int_equal(mkdir(known, 0755), 0);
    char key_a[AF_CERT_Z85_LEN + 1], key_b[AF_CERT_Z85_LEN + 1];
    snprintf(cert, sizeof cert, "%s/a.key", known);
    assert_int_equal(af_certfile_create(cert, "a", "test", false, key_a, &err), 0);
    snprintf(cert, sizeof cert, "%s/b.key", known);
    assert_int_equal(af_certfile_create(cert, "b", "test", false, key_b, &err), 0);
    inv = af_inventory_load(path, &err);
    if (!inv)
        fail_msg("%s", err.msg);
    assert_string_equal(s_node(inv, "a")->server_key, key_a);
    assert_string_equal(s_node(inv, "b")->server_key, "hc@Ar&y&}XVyE349qxxCK%$@WIj01mKmF8Lpu&lS");
    assert_int_equal(af_inventory_warning_count(inv), 0);
    af_inventory_destroy(&inv);

    /* a store file that is not a certificate is an error naming it */
    snprintf(cert, sizeof cert, "%s/a.key", known);
    unlink(cert);
    strcat(cert, "_secret");
    unlink(cert);
    snprintf(cert, sizeof cert, "%s/a.key", known);
    f = fopen(cert, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    assert_null(af_inventory_load(path, &err));
    assert_non_null(strstr(err.msg, "known_agents/a.key: not a CURVE certificate"));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Values YAML 1.1 (Ansible) and YAML 1.2 read differently are refused at
 * FILE:LINE:COL instead of meaning one thing to the deploy and another to
 * the coordinator; quoted, or in booleans, they are fine. */
static void inventory_yaml11_ambiguities_are_refused(void **state)
{
    (void)state;
    const char *head = "archfarm_agents:\n"
                       "  hosts:\n"
                       "    h: {archfarm_platforms: [linux/arm64], archfarm_insecure: true, ";
    const struct {
        const char *var, *want;
    } cases[] = {
        {"archfarm_port: 07420}\n", "inv.yaml:3:84: archfarm_port: \"07420\" is read differently "
                                    "by YAML 1.1 (Ansible: octal) and YAML 1.2; write the plain "
                                    "decimal number"},
        {"archfarm_max_jobs: 1_0}\n", "inv.yaml:3:88: archfarm_max_jobs: \"1_0\" is read "
                                      "differently by YAML 1.1 (Ansible: digit separators) and "
                                      "YAML 1.2; write the plain decimal number"},
        {"archfarm_priority: 1:30}\n", "inv.yaml:3:88: archfarm_priority: \"1:30\" is read "
                                       "differently by YAML 1.1 (Ansible: base 60) and YAML 1.2; "
                                       "write the plain decimal number"},
        {"ansible_host: no}\n", "inv.yaml:3:83: ansible_host: no is a boolean to YAML 1.1 "
                                "(Ansible) and a string to YAML 1.2; quote it (\"no\") if it is "
                                "a name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char y[512];
        snprintf(y, sizeof y, "%s%s", head, cases[i].var);
        s_fails(y, AF_ERR_INVAL, cases[i].want);
    }
    /* quoted: a string to both; a plain 0 and booleans mean the same */
    const char *ok = "archfarm_agents:\n"
                     "  hosts:\n"
                     "    h: {archfarm_platforms: [linux/arm64], archfarm_insecure: yes, "
                     "ansible_host: \"no\", archfarm_priority: 0, archfarm_port: 7420}\n";
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load_buffer("inv.yaml", ok, strlen(ok), &err);
    if (!inv)
        fail_msg("%s", err.msg);
    assert_string_equal(s_node(inv, "h")->endpoint, "tcp://no:7420");
    af_inventory_destroy(&inv);
}

/* A misspelled archfarm_* variable is an error at its key with a
 * did-you-mean (it used to be ignored: "1 node OK" without platforms'
 * typo noticed); role-only knobs are known too. */
static void inventory_typos_are_caught(void **state)
{
    (void)state;
    s_fails("archfarm_agents:\n"
            "  hosts:\n"
            "    h: {archfarm_platforms: [linux/arm64], archfarm_insecure: true, "
            "archfarm_platfroms: x}\n",
            AF_ERR_INVAL,
            "inv.yaml:3:69: unknown variable archfarm_platfroms (did you mean "
            "archfarm_platforms?)");
    s_fails("archfarm_agents:\n"
            "  vars: {archfarm_drain: 60}\n"
            "  hosts:\n"
            "    h: {archfarm_platforms: [linux/arm64], archfarm_insecure: true}\n",
            AF_ERR_INVAL,
            "inv.yaml:2:10: unknown variable archfarm_drain (did you mean archfarm_drain_s?)");
    s_fails("all:\n  vars: {archfarm_something_else_entirely: 1}\n", AF_ERR_INVAL,
            "inv.yaml:2:10: unknown variable archfarm_something_else_entirely (archfarm_* names "
            "are archfarm's; see docs/inventory.md)");
    const char *ok = "archfarm_agents:\n"
                     "  vars: {archfarm_drain_s: 60, archfarm_user: builder}\n"
                     "  hosts:\n"
                     "    h: {archfarm_platforms: [linux/arm64], archfarm_insecure: true}\n";
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load_buffer("inv.yaml", ok, strlen(ok), &err);
    if (!inv)
        fail_msg("%s", err.msg);
    af_inventory_destroy(&inv);
}

/* The known names are one list: exactly the archfarm_* names of the role's
 * defaults/main.yml (set, or documented in "# archfarm_x:" comments). */
static void inventory_known_vars_match_the_role_defaults(void **state)
{
    (void)state;
    const char *src = getenv("AF_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/deploy/ansible/roles/archfarm_agent/defaults/main.yml",
             src ? src : "../..");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512], role[64][64];
    size_t n_role = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = !strncmp(line, "# ", 2) ? line + 2 : line;
        size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (strncmp(p, "archfarm_", 9) || p[len] != ':')
            continue;
        assert_true(n_role < 64);
        snprintf(role[n_role++], sizeof role[0], "%.*s", (int)len, p);
    }
    fclose(f);
    size_t n_known = 0;
    for (const char *name; (name = af_inventory_known_var(n_known)); n_known++) {
        bool found = false;
        for (size_t j = 0; j < n_role && !found; j++)
            found = !strcmp(role[j], name);
        if (!found)
            fail_msg("%s is known to archfarm but not in the role's defaults/main.yml", name);
    }
    for (size_t j = 0; j < n_role; j++) {
        bool found = false;
        for (size_t i = 0; i < n_known && !found; i++)
            found = !strcmp(role[j], af_inventory_known_var(i));
        if (!found)
            fail_msg("%s is in the role's defaults/main.yml but unknown to archfarm", role[j]);
    }
    assert_int_equal(n_known, n_role);
}

static void inventory_load_reads_files(void **state)
{
    (void)state;
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load(s_data_path("farm.yaml"), &err);
    if (!inv)
        fail_msg("%s", err.msg);
    assert_int_equal(af_inventory_size(inv), 6);
    const af_node_t *pi3 = s_node(inv, "pi03");
    assert_string_equal(pi3->endpoint, "tcp://10.0.1.13:7420");
    assert_string_equal(af_node_label(pi3, "board"), "rpi4");
    af_inventory_destroy(&inv);

    inv = af_inventory_load(s_data_path("bad-max-jobs.yaml"), &err);
    assert_null(inv);
    char want[1200];
    snprintf(want, sizeof want,
             "%s:7:28: archfarm_max_jobs: expected an integer >= 1, got \"many\"",
             s_data_path("bad-max-jobs.yaml"));
    assert_string_equal(err.msg, want);

    assert_null(af_inventory_load(s_data_path("does-not-exist.yaml"), &err));
    assert_int_equal(err.code, AF_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "does-not-exist.yaml: No such file or directory"));
    assert_null(af_inventory_load("/", &err));
    assert_string_equal(err.msg, "/: not a regular file or a pipe");
}

static void inventory_example_config_loads(void **state)
{
    (void)state;
    const char *src = getenv("AF_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/config/inventory.yaml", src ? src : "../..");
    af_err_t err;
    af_err_clear(&err);
    af_inventory_t *inv = af_inventory_load(path, &err);
    if (!inv)
        fail_msg("%s", err.msg);
    assert_true(af_inventory_size(inv) >= 6);
    af_platform_t arm64, armv7, amd64;
    assert_int_equal(af_platform_parse("linux/arm64", &arm64, NULL), 0);
    assert_int_equal(af_platform_parse("linux/arm/v7", &armv7, NULL), 0);
    assert_int_equal(af_platform_parse("linux/amd64", &amd64, NULL), 0);
    bool have[3] = {false, false, false};
    for (size_t i = 0; i < af_inventory_size(inv); i++) {
        const af_node_t *n = af_inventory_node(inv, i);
        have[0] |= af_node_serves(n, &amd64);
        have[1] |= af_node_serves(n, &arm64);
        have[2] |= af_node_serves(n, &armv7);
    }
    assert_true(have[0] && have[1] && have[2]);
    assert_non_null(af_inventory_find(inv, "pi01"));
    assert_non_null(af_inventory_find(inv, "pi04"));
    af_inventory_destroy(&inv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inventory_minimal_host_gets_defaults),
        cmocka_unit_test(inventory_ansible_host_and_port_form_the_endpoint),
        cmocka_unit_test(inventory_endpoint_overrides_host_and_port),
        cmocka_unit_test(inventory_bad_endpoint_and_address_rejected),
        cmocka_unit_test(inventory_platforms_list_or_comma_string_normalised),
        cmocka_unit_test(inventory_bad_platform_points_at_the_item),
        cmocka_unit_test(inventory_missing_platforms_is_an_error_at_the_host),
        cmocka_unit_test(inventory_missing_server_key_names_the_host),
        cmocka_unit_test(inventory_server_key_must_be_z85),
        cmocka_unit_test(inventory_server_key_with_braces_is_not_jinja),
        cmocka_unit_test(inventory_max_jobs_must_be_1_to_256),
        cmocka_unit_test(inventory_port_must_be_1_to_65535),
        cmocka_unit_test(inventory_insecure_accepts_yaml_and_string_booleans),
        cmocka_unit_test(inventory_labels_map_or_list),
        cmocka_unit_test(inventory_bad_labels_rejected),
        cmocka_unit_test(inventory_priority_is_an_integer),
        cmocka_unit_test(inventory_unknown_variables_are_ignored),
        cmocka_unit_test(inventory_templates_are_not_evaluated),
        cmocka_unit_test(inventory_nul_in_a_value_rejected),
        cmocka_unit_test(inventory_host_vars_override_group_vars),
        cmocka_unit_test(inventory_child_group_vars_override_parent),
        cmocka_unit_test(inventory_parent_group_vars_override_all),
        cmocka_unit_test(inventory_sibling_groups_resolve_by_name_then_priority),
        cmocka_unit_test(inventory_deepest_path_sets_group_depth),
        cmocka_unit_test(inventory_group_defined_in_several_places_merges),
        cmocka_unit_test(inventory_duplicate_host_definitions_merge_vars),
        cmocka_unit_test(inventory_only_archfarm_agents_hosts_are_nodes),
        cmocka_unit_test(inventory_sections_accept_a_single_name_and_null),
        cmocka_unit_test(inventory_numeric_range_keeps_zero_padding),
        cmocka_unit_test(inventory_alpha_range_and_stride),
        cmocka_unit_test(inventory_range_in_the_middle_and_several_ranges),
        cmocka_unit_test(inventory_bad_ranges_rejected),
        cmocka_unit_test(inventory_range_host_count_bounded),
        cmocka_unit_test(inventory_ssh_port_suffix_is_ignored),
        cmocka_unit_test(inventory_bad_host_names_rejected),
        cmocka_unit_test(inventory_anchors_and_merge_keys_work),
        cmocka_unit_test(inventory_alias_bomb_is_bounded),
        cmocka_unit_test(inventory_self_referencing_alias_does_not_crash),
        cmocka_unit_test(inventory_children_loop_rejected),
        cmocka_unit_test(inventory_nesting_depth_bounded),
        cmocka_unit_test(inventory_deep_yaml_nesting_rejected_quickly),
        cmocka_unit_test(inventory_tab_indentation_is_a_yaml_error),
        cmocka_unit_test(inventory_unclosed_quote_is_a_yaml_error),
        cmocka_unit_test(inventory_binary_junk_is_rejected),
        cmocka_unit_test(inventory_empty_or_non_mapping_is_an_error),
        cmocka_unit_test(inventory_bad_group_structure_rejected),
        cmocka_unit_test(inventory_multiple_documents_rejected),
        cmocka_unit_test(inventory_size_is_bounded),
        cmocka_unit_test(inventory_load_reads_files),
        cmocka_unit_test(inventory_duplicate_host_warns),
        cmocka_unit_test(inventory_oversized_file_says_the_limit),
        cmocka_unit_test(inventory_reads_fifos_bounded),
        cmocka_unit_test(inventory_known_agents_store),
        cmocka_unit_test(inventory_yaml11_ambiguities_are_refused),
        cmocka_unit_test(inventory_typos_are_caught),
        cmocka_unit_test(inventory_known_vars_match_the_role_defaults),
        cmocka_unit_test(inventory_example_config_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
