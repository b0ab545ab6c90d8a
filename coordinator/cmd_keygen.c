/* cmd_keygen.c -- `archfarm keygen DIR`: a CURVE key pair as czmq
 * certificate files (DIR/NAME.key public, DIR/NAME.key_secret mode 0600),
 * for an agent (--cert, its public key goes into the inventory as
 * archfarm_server_key) or for a coordinator (ARCHFARM_CLIENT_CERT; the
 * public file goes into the agents' --authorized-keys directory). */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certfile.h"
#include "cli.h"

static const char s_help[] =
    "Usage: archfarm keygen [--name NAME] [--force] DIR\n"
    "\n"
    "Creates a CURVE key pair as czmq certificate files:\n"
    "  DIR/NAME.key          public certificate (safe to copy around)\n"
    "  DIR/NAME.key_secret   secret certificate, mode 0600 (keep it on its host)\n"
    "and prints the public key (Z85, 40 characters) on stdout.\n"
    "\n"
    "For an agent: start it with --cert DIR/NAME.key and put the printed key in\n"
    "the inventory as archfarm_server_key. For a coordinator: set\n"
    "ARCHFARM_CLIENT_CERT=DIR/NAME.key and copy DIR/NAME.key into every\n"
    "agent's --authorized-keys directory.\n"
    "\n"
    "Options:\n"
    "  --name NAME   file name stem (default: archfarm)\n"
    "  --force       overwrite existing files\n"
    "  -h, --help    this help\n"
    "\n"
    "Exit status: 0 written, 2 usage error or the files exist, 3 cannot write.\n"
    "\n"
    "Example:\n"
    "  archfarm keygen --name pi01 /etc/archfarm\n";

int af_cmd_keygen(const af_cli_t *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"force", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = "archfarm";
    bool force = false;
    int c;
    optind = 0;
    argv[0] = "archfarm keygen";
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'F':
            force = true;
            break;
        case 'h':
            fputs(s_help, stdout);
            return AF_EXIT_OK;
        default:
            return af_cli_usage_error("keygen", "invalid option");
        }
    }
    if (optind >= argc)
        return af_cli_usage_error("keygen", "missing DIR");
    if (argc - optind > 1)
        return af_cli_usage_error("keygen", "too many arguments");
    if (!*name || strlen(name) > AF_MAX_NAME || strchr(name, '/') || name[0] == '.')
        return af_cli_usage_error("keygen", "--name must be a plain file name");
    const char *dir = argv[optind];

    if (mkdir(dir, 0700) && errno != EEXIST) {
        af_cli_error("cannot create %s: %s", dir, strerror(errno));
        return AF_EXIT_INFRA;
    }
    char pub[4096], sec[4200], key[AF_CERT_Z85_LEN + 1], creator[64];
    snprintf(pub, sizeof pub, "%s/%s.key", dir, name);
    snprintf(sec, sizeof sec, "%s_secret", pub);
    snprintf(creator, sizeof creator, "archfarm keygen %s", AF_VERSION);
    af_err_t err;
    af_err_clear(&err);
    if (af_certfile_create(pub, name, creator, force, key, &err) < 0) {
        if (err.code == AF_ERR_STATE) {
            af_cli_error("%s (use --force to replace)", af_err_msg(&err, err.code));
            return AF_EXIT_USAGE;
        }
        af_cli_error("%s", af_err_msg(&err, err.code));
        return AF_EXIT_INFRA;
    }
    printf("%s\n", key);
    fprintf(stderr, "wrote %s and %s\n", pub, sec);
    return AF_EXIT_OK;
}
