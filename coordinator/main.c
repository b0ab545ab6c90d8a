/* main.c -- `archfarm`, the coordinator CLI: parses the global options and
 * hands off to one subcommand (cmd_*.c). It holds no logic of its own. */
#include <curl/curl.h>
#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"

static const char s_help[] =
    "Usage: archfarm [GLOBAL OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Build one container image for several CPU architectures at once, each\n"
    "platform natively on a node of the farm, and publish them under one tag\n"
    "as a multi-platform image (an OCI image index).\n"
    "\n"
    "Commands:\n"
    "  build CONTEXT          build the image in CONTEXT on the farm (like\n"
    "                         docker buildx build)\n"
    "  ls                     list the farm's nodes and their state\n"
    "  inspect NODE           show everything about one node\n"
    "  imagetools inspect REF show an image or index in a registry\n"
    "  imagetools create -t REF SRC...  combine images into one index\n"
    "  inventory check|list   validate or list the inventory\n"
    "  keygen DIR             create a CURVE key pair\n"
    "\n"
    "Global options:\n"
    "  -i, --inventory FILE   Ansible YAML inventory of the farm (default:\n"
    "                         $ARCHFARM_INVENTORY)\n"
    "  -D, --debug            debug logging (same as ARCHFARM_LOG=debug)\n"
    "  -h, --help             this help; 'archfarm COMMAND --help' for a command\n"
    "  -V, --version          print the version\n"
    "\n"
    "Environment:\n"
    "  ARCHFARM_INVENTORY     inventory used when -i is not given\n"
    "  ARCHFARM_LOG           error|warn|info|debug (default info)\n"
    "  SOURCE_DATE_EPOCH      timestamp for reproducible images (default 0)\n"
    "  DOCKER_CONFIG, REGISTRY_AUTH_FILE   where registry credentials are read\n"
    "\n"
    "Exit status: 0 success, 1 a build failed, 2 usage or inventory error,\n"
    "3 infrastructure error (no node for a platform, node or registry\n"
    "unreachable), 130/143 interrupted by SIGINT/SIGTERM.\n"
    "\n"
    "Example:\n"
    "  archfarm -i farm.yaml build --platform linux/amd64,linux/arm64 \\\n"
    "      -t registry.example:5000/app:1.0 --push .\n";

typedef int (*af_cmd_fn)(const af_cli_t *cli, int argc, char **argv);

static const struct {
    const char *name;
    af_cmd_fn fn;
} s_commands[] = {
    {"build", af_cmd_build},         {"ls", af_cmd_ls},
    {"inspect", af_cmd_inspect},     {"imagetools", af_cmd_imagetools},
    {"inventory", af_cmd_inventory}, {"keygen", af_cmd_keygen},
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"inventory", required_argument, NULL, 'i'},
        {"debug", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    af_cli_t cli = {0};
    cli.inventory = getenv("ARCHFARM_INVENTORY");
    if (cli.inventory && !*cli.inventory)
        cli.inventory = NULL;

    argv[0] = "archfarm";
    int c;
    while ((c = getopt_long(argc, argv, "+i:DhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            cli.inventory = optarg;
            break;
        case 'D':
            cli.debug = true;
            setenv("ARCHFARM_LOG", "debug", 1);
            break;
        case 'h':
            fputs(s_help, stdout);
            return AF_EXIT_OK;
        case 'V':
            printf("archfarm %s (protocol %s)\n", AF_VERSION, AF_PROTO_ID);
            return AF_EXIT_OK;
        default:
            fprintf(stderr, "Try 'archfarm --help'.\n");
            return AF_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return af_cli_usage_error(NULL, "missing command");

    const char *name = argv[optind];
    af_cmd_fn fn = NULL;
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (!strcmp(name, s_commands[i].name))
            fn = s_commands[i].fn;
    if (!strcmp(name, "help")) {
        fputs(s_help, stdout);
        return AF_EXIT_OK;
    }
    if (!fn)
        return af_cli_usage_error(NULL, "unknown command '%s'", name);

    /* before czmq or anything else may start a thread */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        af_cli_error("cannot initialise libcurl");
        return AF_EXIT_INFRA;
    }

    /* one DEALER (+ a handshake monitor) per probed node: let big farms
     * use what the system allows rather than czmq's default of 1024 */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    zsys_set_max_sockets(0);

    int first = optind;
    optind = 0; /* glibc: full re-initialisation of getopt for the subcommand */
    int rc = fn(&cli, argc - first, argv + first);
    curl_global_cleanup();
    return rc;
}
