/* cmd_inventory.c -- `archfarm inventory check|list`: validates the
 * Ansible inventory the way every other command reads it, and lists the
 * nodes archfarm sees in it (after group inheritance and host ranges), as
 * a table or JSON. No network, except `check --probe`, which contacts
 * every node and compares what it reports with the inventory. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "farm.h"
#include "inventory.h"
#include "platform.h"
#include "signals.h"
#include "strbuf.h"

static const char s_help[] =
    "Usage: archfarm inventory check [--probe] [FILE]\n"
    "       archfarm inventory list [--format table|json] [FILE]\n"
    "\n"
    "check  Loads the inventory exactly as 'build' and 'ls' do (hosts of group\n"
    "       archfarm_agents and its child groups, Ansible variable precedence,\n"
    "       host ranges such as pi[01:08]) and reports the first problem as\n"
    "       FILE:LINE:COL: message. Prints 'FILE: N nodes OK' when valid.\n"
    "       --probe also contacts every node (as 'ls' does) and compares what\n"
    "       it reports with the inventory: it must answer (so its key is the\n"
    "       one archfarm_server_key or known_agents/ names) and build every\n"
    "       platform the inventory declares for it.\n"
    "list   Prints the resolved nodes: name, endpoint, platforms, max_jobs,\n"
    "       priority, insecure, labels.\n"
    "\n"
    "FILE defaults to the global -i option, then $ARCHFARM_INVENTORY.\n"
    "\n"
    "Options:\n"
    "  --format table|json   output format of 'list' (default table). JSON is an\n"
    "                        array of {name, endpoint, platforms, max_jobs,\n"
    "                        labels, insecure, priority, server_key}\n"
    "  -h, --help            this help\n"
    "\n"
    "Exit status: 0 valid, 2 usage error or invalid inventory, 3 (--probe) a\n"
    "node did not answer or differs from the inventory.\n"
    "\n"
    "Examples:\n"
    "  archfarm inventory check config/inventory.yaml\n"
    "  archfarm -i farm.yaml inventory list --format json | jq '.[].name'\n";

static json_t *s_node_json(const af_node_t *n)
{
    json_t *o = json_object();
    json_t *plats = json_array();
    for (size_t i = 0; i < n->n_platforms; i++) {
        char buf[AF_PLATFORM_STR_MAX];
        json_array_append_new(plats,
                              json_string(af_platform_format(&n->platforms[i], buf, sizeof buf)));
    }
    json_t *labels = json_object();
    for (size_t i = 0; i < n->n_labels; i++)
        json_object_set_new(labels, n->labels[i].key,
                            json_string(n->labels[i].value ? n->labels[i].value : ""));
    json_object_set_new(o, "name", json_string(n->name));
    json_object_set_new(o, "endpoint", json_string(n->endpoint));
    json_object_set_new(o, "platforms", plats);
    json_object_set_new(o, "max_jobs", json_integer(n->max_jobs));
    json_object_set_new(o, "labels", labels);
    json_object_set_new(o, "insecure", json_boolean(n->insecure));
    json_object_set_new(o, "priority", json_integer(n->priority));
    json_object_set_new(o, "server_key", n->server_key ? json_string(n->server_key) : json_null());
    return o;
}

static void s_labels_str(const af_node_t *n, char *out, size_t len)
{
    af_strbuf_t sb;
    af_strbuf_init(&sb, out, len);
    for (size_t i = 0; i < n->n_labels; i++) {
        const char *v = n->labels[i].value;
        af_strbuf_printf(&sb, "%s%s%s%s", i ? "," : "", n->labels[i].key, v && *v ? "=" : "",
                         v && *v ? v : "");
    }
    if (!out[0])
        snprintf(out, len, "-");
}

static int s_list(const af_inventory_t *inv, bool json)
{
    size_t n = af_inventory_size(inv);
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, s_node_json(af_inventory_node(inv, i)));
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(arr);
        return AF_EXIT_OK;
    }
    printf("%-16s %-32s %-36s %-8s %-8s %-8s %s\n", "NAME", "ENDPOINT", "PLATFORMS", "MAX_JOBS",
           "PRIORITY", "INSECURE", "LABELS");
    for (size_t i = 0; i < n; i++) {
        const af_node_t *node = af_inventory_node(inv, i);
        char plats[1024], labels[2048];
        af_cli_node_platforms(node, plats, sizeof plats);
        s_labels_str(node, labels, sizeof labels);
        printf("%-16s %-32s %-36s %-8d %-8d %-8s %s\n", node->name, node->endpoint, plats,
               node->max_jobs, node->priority, node->insecure ? "yes" : "no", labels);
    }
    return AF_EXIT_OK;
}

/* --probe: every node must answer and build what the inventory declares.
 * One line per problem on stderr; returns an exit status. */
static int s_probe(const af_inventory_t *inv, const char *path)
{
    af_signals_install();
    af_farm_t *farm = af_farm_new(inv);
    if (!farm) {
        fprintf(stderr, "archfarm: out of memory\n");
        return AF_EXIT_INFRA;
    }
    if (af_farm_probe(farm, NULL, 5000) < 0) {
        af_farm_destroy(&farm);
        return af_signal_last() == SIGTERM ? AF_EXIT_SIGTERM : AF_EXIT_SIGINT;
    }
    size_t n = af_farm_size(farm), bad = 0;
    for (size_t i = 0; i < n; i++) {
        const af_farm_node_t *fn = af_farm_node(farm, i);
        const af_node_t *conf = fn->conf;
        if (fn->status != AF_NODE_READY) {
            fprintf(stderr, "%s: %s: %s%s\n", conf->name, af_node_status_name(fn->status),
                    fn->status_msg,
                    !conf->insecure && fn->status == AF_NODE_UNREACHABLE
                        ? " (with CURVE a wrong archfarm_server_key or known_agents/ key also "
                          "looks like this)"
                        : "");
            bad++;
            continue;
        }
        for (size_t p = 0; p < conf->n_platforms; p++) {
            char want[AF_PLATFORM_STR_MAX];
            af_platform_format(&conf->platforms[p], want, sizeof want);
            bool found = false;
            for (size_t q = 0; q < fn->n_platforms && !found; q++)
                found = !strcmp(fn->platforms[q], want);
            if (!found) {
                fprintf(stderr, "%s: the inventory declares %s but the agent does not build it\n",
                        conf->name, want);
                bad++;
            }
        }
    }
    af_farm_destroy(&farm);
    if (bad) {
        fprintf(stderr, "%s: %zu problem%s found by probing %zu node%s\n", path, bad,
                bad == 1 ? "" : "s", n, n == 1 ? "" : "s");
        return AF_EXIT_INFRA;
    }
    printf("%s: %zu node%s OK, all answered as declared\n", path, n, n == 1 ? "" : "s");
    return AF_EXIT_OK;
}

int af_cmd_inventory(const af_cli_t *cli, int argc, char **argv)
{
    if (argc < 2)
        return af_cli_usage_error("inventory", "missing subcommand (check or list)");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(s_help, stdout);
        return AF_EXIT_OK;
    }
    bool list = !strcmp(sub, "list");
    if (!list && strcmp(sub, "check"))
        return af_cli_usage_error("inventory", "unknown subcommand '%s' (check or list)", sub);

    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {"probe", no_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    const char *cmdname = list ? "inventory list" : "inventory check";
    argv[1] = list ? "archfarm inventory list" : "archfarm inventory check";
    bool json = false, probe = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'F':
            if (!list)
                return af_cli_usage_error(cmdname, "--format applies to 'inventory list'");
            if (!strcmp(optarg, "json"))
                json = true;
            else if (!strcmp(optarg, "table"))
                json = false;
            else
                return af_cli_usage_error(cmdname, "--format must be table or json, not '%s'",
                                          optarg);
            break;
        case 'P':
            if (list)
                return af_cli_usage_error(cmdname, "--probe applies to 'inventory check'");
            probe = true;
            break;
        case 'h':
            fputs(s_help, stdout);
            return AF_EXIT_OK;
        default:
            return af_cli_usage_error(cmdname, "invalid option");
        }
    }
    int rest = argc - 1 - optind;
    if (rest > 1)
        return af_cli_usage_error(cmdname, "too many arguments");
    const char *path = rest == 1 ? argv[1 + optind] : NULL;

    af_err_t err = {0};
    af_inventory_t *inv = af_cli_inventory_load(cli, path, &err);
    if (!inv) {
        fprintf(stderr, "%s\n", af_err_msg(&err, AF_ERR_INVAL));
        return AF_EXIT_USAGE;
    }
    int rc = AF_EXIT_OK;
    if (list) {
        rc = s_list(inv, json);
    } else if (probe) {
        rc = s_probe(inv, path ? path : cli->inventory);
    } else {
        size_t n = af_inventory_size(inv);
        printf("%s: %zu node%s OK\n", path ? path : cli->inventory, n, n == 1 ? "" : "s");
    }
    af_inventory_destroy(&inv);
    return rc;
}
