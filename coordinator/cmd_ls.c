/* cmd_ls.c -- `archfarm ls` and `archfarm inspect NODE`: probe the farm's
 * nodes in parallel (HELLO/WELCOME, one deadline) and show what each one
 * offers right now, next to what the inventory says about it. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "farm.h"
#include "platform.h"
#include "signals.h"
#include "strbuf.h"

#define AF_LS_DEFAULT_TIMEOUT_MS 3000

static const char s_ls_help[] =
    "Usage: archfarm [-i INVENTORY] ls [--format table|json] [--timeout MS]\n"
    "\n"
    "Probes every node of the inventory in parallel (HELLO/WELCOME) and prints\n"
    "one row per node:\n"
    "  NAME       inventory host name\n"
    "  ENDPOINT   ZeroMQ endpoint\n"
    "  STATUS     ready | unreachable (no answer before the deadline) |\n"
    "             unauthorized | unsupported (needs CURVE keys) | error\n"
    "  PLATFORMS  platforms the agent announces (the inventory's when not ready)\n"
    "  JOBS       running/max_jobs, +N queued\n"
    "  VERSION    agent version\n"
    "  EXECUTORS  native, buildah, ... (Dockerfile builds need an engine)\n"
    "Why a node is not ready is printed to stderr below the table.\n"
    "\n"
    "Options:\n"
    "  --format table|json  output format (default table); JSON is an array of\n"
    "                       objects with the fields above plus inventory values\n"
    "  --timeout MS         probe deadline for all nodes together (default 3000)\n"
    "  -h, --help           this help\n"
    "\n"
    "Exit status: 0 every node is ready (or the inventory has no nodes),\n"
    "3 the farm was listed but some node is not ready (for monitoring and\n"
    "deploy health checks), 2 usage or inventory error.\n"
    "\n"
    "Example:\n"
    "  archfarm -i farm.yaml ls\n";

static const char s_inspect_help[] =
    "Usage: archfarm [-i INVENTORY] inspect [--format text|json] [--timeout MS] NODE\n"
    "\n"
    "Shows everything about one node: the inventory's values (endpoint,\n"
    "platforms, max_jobs, priority, labels, transport, server key presence,\n"
    "where it is declared) and, when it answers, the agent's live values\n"
    "(name, version, platforms, executors, running/queued jobs, heartbeat,\n"
    "round-trip time).\n"
    "\n"
    "Options:\n"
    "  --format text|json  output format (default text)\n"
    "  --timeout MS        probe deadline (default 3000)\n"
    "  -h, --help          this help\n"
    "\n"
    "Exit status: 0 the node is ready, 2 usage/inventory error or unknown NODE,\n"
    "3 the node is not ready (its inventory values are still printed).\n"
    "\n"
    "Example:\n"
    "  archfarm -i farm.yaml inspect pi01\n";

static void s_join(char *const *list, size_t n, char *out, size_t len)
{
    af_strbuf_t sb;
    af_strbuf_init(&sb, out, len);
    for (size_t i = 0; i < n; i++)
        af_strbuf_printf(&sb, "%s%s", i ? "," : "", list[i]);
    if (!out[0])
        snprintf(out, len, "-");
}

static json_t *s_strings(char *const *list, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

static json_t *s_node_json(const af_farm_node_t *fn)
{
    const af_node_t *n = fn->conf;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(n->name));
    json_object_set_new(o, "endpoint", json_string(n->endpoint));
    json_object_set_new(o, "status", json_string(af_node_status_name(fn->status)));
    json_object_set_new(o, "message",
                        json_string(fn->status == AF_NODE_READY ? "" : fn->status_msg));
    json_t *ip = json_array();
    for (size_t i = 0; i < n->n_platforms; i++) {
        char buf[AF_PLATFORM_STR_MAX];
        json_array_append_new(ip,
                              json_string(af_platform_format(&n->platforms[i], buf, sizeof buf)));
    }
    json_object_set_new(o, "platforms", ip);
    json_t *labels = json_object();
    for (size_t i = 0; i < n->n_labels; i++)
        json_object_set_new(labels, n->labels[i].key,
                            json_string(n->labels[i].value ? n->labels[i].value : ""));
    json_object_set_new(o, "labels", labels);
    json_object_set_new(o, "priority", json_integer(n->priority));
    json_object_set_new(o, "insecure", json_boolean(n->insecure));
    json_object_set_new(o, "server_key", json_boolean(n->server_key != NULL));
    json_object_set_new(o, "inventory_max_jobs", json_integer(n->max_jobs));
    if (fn->status == AF_NODE_READY) {
        json_object_set_new(o, "agent_name", json_string(fn->agent_name));
        json_object_set_new(o, "version", json_string(fn->version));
        json_object_set_new(o, "announced_platforms", s_strings(fn->platforms, fn->n_platforms));
        json_object_set_new(o, "executors", s_strings(fn->executors, fn->n_executors));
        json_object_set_new(o, "running", json_integer(fn->running));
        json_object_set_new(o, "queued", json_integer(fn->queued));
        json_object_set_new(o, "max_jobs", json_integer(fn->max_jobs));
        json_object_set_new(o, "heartbeat_ms", json_integer(fn->heartbeat_ms));
        json_object_set_new(o, "confinement",
                            fn->confinement[0] ? json_string(fn->confinement) : json_null());
        json_object_set_new(o, "rtt_ms", json_integer(fn->rtt_ms));
    }
    return o;
}

/* Shared option parsing for ls and inspect. Returns -1 to continue, else
 * an exit status. */
static int s_parse(const char *cmd, const char *help, int argc, char **argv, bool *json,
                   const char *text_name, int *timeout_ms)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'F'},
        {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'F':
            if (!strcmp(optarg, "json"))
                *json = true;
            else if (!strcmp(optarg, text_name))
                *json = false;
            else
                return af_cli_usage_error(cmd, "--format must be %s or json, not '%s'", text_name,
                                          optarg);
            break;
        case 'T': {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 600000)
                return af_cli_usage_error(cmd, "--timeout needs milliseconds (1..600000)");
            *timeout_ms = (int)v;
            break;
        }
        case 'h':
            fputs(help, stdout);
            return AF_EXIT_OK;
        default:
            return af_cli_usage_error(cmd, "invalid option");
        }
    }
    return -1;
}

int af_cmd_ls(const af_cli_t *cli, int argc, char **argv)
{
    bool json = false;
    int timeout_ms = AF_LS_DEFAULT_TIMEOUT_MS;
    argv[0] = "archfarm ls";
    int rc = s_parse("ls", s_ls_help, argc, argv, &json, "table", &timeout_ms);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return af_cli_usage_error("ls", "unexpected argument '%s'", argv[optind]);

    af_err_t err = {0};
    af_inventory_t *inv = af_cli_inventory_load(cli, NULL, &err);
    if (!inv) {
        af_cli_error("%s", af_err_msg(&err, AF_ERR_INVAL));
        return AF_EXIT_USAGE;
    }
    af_signals_install();
    af_farm_t *farm = af_farm_new(inv);
    if (!farm) {
        af_inventory_destroy(&inv);
        af_cli_error("out of memory");
        return AF_EXIT_INFRA;
    }
    int probed = af_farm_probe(farm, NULL, timeout_ms);
    size_t n = af_farm_size(farm);
    if (probed < 0) {
        rc = af_signal_last() == SIGTERM ? AF_EXIT_SIGTERM : AF_EXIT_SIGINT;
        goto out;
    }
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, s_node_json(af_farm_node(farm, i)));
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(arr);
    } else {
        printf("%-16s %-28s %-12s %-36s %-12s %-8s %s\n", "NAME", "ENDPOINT", "STATUS", "PLATFORMS",
               "JOBS", "VERSION", "EXECUTORS");
        for (size_t i = 0; i < n; i++) {
            const af_farm_node_t *fn = af_farm_node(farm, i);
            char plats[1024], execs[512], jobs[64];
            if (fn->status == AF_NODE_READY) {
                s_join(fn->platforms, fn->n_platforms, plats, sizeof plats);
                s_join(fn->executors, fn->n_executors, execs, sizeof execs);
                if (fn->queued)
                    snprintf(jobs, sizeof jobs, "%u/%u +%u", fn->running, fn->max_jobs, fn->queued);
                else
                    snprintf(jobs, sizeof jobs, "%u/%u", fn->running, fn->max_jobs);
            } else {
                af_cli_node_platforms(fn->conf, plats, sizeof plats);
                snprintf(execs, sizeof execs, "-");
                snprintf(jobs, sizeof jobs, "-");
            }
            printf("%-16s %-28s %-12s %-36s %-12s %-8s %s\n", fn->conf->name, fn->conf->endpoint,
                   af_node_status_name(fn->status), plats, jobs,
                   fn->status == AF_NODE_READY ? fn->version : "-", execs);
        }
        fflush(stdout);
        for (size_t i = 0; i < n; i++) {
            const af_farm_node_t *fn = af_farm_node(farm, i);
            if (fn->status != AF_NODE_READY)
                fprintf(stderr, "%s: %s\n", fn->conf->name, fn->status_msg);
        }
        if (n == 0)
            fprintf(stderr, "%s: no hosts in group archfarm_agents\n", cli->inventory);
    }
    rc = AF_EXIT_OK;
    for (size_t i = 0; i < n; i++)
        if (af_farm_node(farm, i)->status != AF_NODE_READY)
            rc = AF_EXIT_INFRA;
out:
    af_farm_destroy(&farm);
    af_inventory_destroy(&inv);
    return rc;
}

/* WELCOME's confinement word for people. */
static const char *s_confinement(const char *word, char *buf, size_t size)
{
    int abi;
    if (sscanf(word, "landlock-abi-%d", &abi) == 1)
        snprintf(buf, size, "native build steps confined (Landlock ABI %d)", abi);
    else if (!strcmp(word, "none"))
        snprintf(buf, size, "none: this kernel has no Landlock, native build steps are unconfined");
    else if (!strcmp(word, "off"))
        snprintf(buf, size, "off (confine: off): native build steps are unconfined");
    else
        snprintf(buf, size, "%s", word[0] ? word : "unknown (the agent does not say)");
    return buf;
}

static void s_print_inspect(const af_farm_node_t *fn, const char *inventory)
{
    const af_node_t *n = fn->conf;
    char buf[2048];
    printf("Name:        %s\n", n->name);
    printf("Endpoint:    %s\n", n->endpoint);
    printf("Status:      %s\n", af_node_status_name(fn->status));
    if (fn->status != AF_NODE_READY)
        printf("Reason:      %s\n", fn->status_msg);
    printf("Transport:   %s\n",
           n->insecure ? "insecure (plaintext, archfarm_insecure: true)" : "CURVE");
    printf("Server key:  %s\n", n->server_key ? "present" : "none");
    af_cli_node_platforms(n, buf, sizeof buf);
    printf("Platforms:   %s (inventory)\n", buf);
    printf("Max jobs:    %d (inventory)\n", n->max_jobs);
    printf("Priority:    %d\n", n->priority);
    printf("Labels:");
    if (!n->n_labels)
        printf("      -\n");
    else
        printf("\n");
    for (size_t i = 0; i < n->n_labels; i++)
        printf("  %s=%s\n", n->labels[i].key, n->labels[i].value ? n->labels[i].value : "");
    if (n->line > 0)
        printf("Declared:    %s:%d:%d\n", inventory, n->line, n->column);
    if (fn->status != AF_NODE_READY)
        return;
    printf("Agent:\n");
    printf("  Name:        %s\n", fn->agent_name);
    printf("  Version:     %s\n", fn->version);
    s_join(fn->platforms, fn->n_platforms, buf, sizeof buf);
    printf("  Platforms:   %s\n", buf);
    s_join(fn->executors, fn->n_executors, buf, sizeof buf);
    printf("  Executors:   %s\n", buf);
    printf("  Jobs:        %u running, %u queued, max %u\n", fn->running, fn->queued, fn->max_jobs);
    printf("  Heartbeat:   %u ms\n", fn->heartbeat_ms);
    printf("  Confinement: %s\n", s_confinement(fn->confinement, buf, sizeof buf));
    printf("  Round trip:  %lld ms\n", fn->rtt_ms);
}

int af_cmd_inspect(const af_cli_t *cli, int argc, char **argv)
{
    bool json = false;
    int timeout_ms = AF_LS_DEFAULT_TIMEOUT_MS;
    argv[0] = "archfarm inspect";
    int rc = s_parse("inspect", s_inspect_help, argc, argv, &json, "text", &timeout_ms);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return af_cli_usage_error("inspect", "missing NODE");
    if (argc - optind > 1)
        return af_cli_usage_error("inspect", "too many arguments");
    const char *name = argv[optind];

    af_err_t err = {0};
    af_inventory_t *inv = af_cli_inventory_load(cli, NULL, &err);
    if (!inv) {
        af_cli_error("%s", af_err_msg(&err, AF_ERR_INVAL));
        return AF_EXIT_USAGE;
    }
    af_farm_t *farm = af_farm_new(inv);
    if (!farm) {
        af_inventory_destroy(&inv);
        return AF_EXIT_INFRA;
    }
    long idx = af_farm_find(farm, name);
    if (idx < 0) {
        af_cli_error("no node named '%s' in %s (see 'archfarm inventory list')", name,
                     cli->inventory);
        rc = AF_EXIT_USAGE;
        goto out;
    }
    af_signals_install();
    size_t n = af_farm_size(farm);
    bool *select = calloc(n, sizeof *select);
    if (!select) {
        rc = AF_EXIT_INFRA;
        goto out;
    }
    select[idx] = true;
    int probed = af_farm_probe(farm, select, timeout_ms);
    free(select);
    if (probed < 0) {
        rc = af_signal_last() == SIGTERM ? AF_EXIT_SIGTERM : AF_EXIT_SIGINT;
        goto out;
    }
    const af_farm_node_t *fn = af_farm_node(farm, (size_t)idx);
    if (json) {
        json_t *o = s_node_json(fn);
        if (fn->conf->line > 0) {
            json_object_set_new(o, "line", json_integer(fn->conf->line));
            json_object_set_new(o, "column", json_integer(fn->conf->column));
        }
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        s_print_inspect(fn, cli->inventory);
    }
    rc = fn->status == AF_NODE_READY ? AF_EXIT_OK : AF_EXIT_INFRA;
out:
    af_farm_destroy(&farm);
    af_inventory_destroy(&inv);
    return rc;
}
