/* cli.h -- what every `archfarm` subcommand shares: exit codes, the global
 * options, usage/error output, the insecure-registry rule, registry and
 * inventory opening, and the signal flag.
 *
 * The coordinator is curl's tool_* pattern: this directory is the CLI and it
 * uses libarchfarm (common/) only through its headers. Everything here is
 * CLI code, so it may print; library code never does. */
#ifndef AF_CLI_H
#define AF_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "inventory.h"
#include "limits.h"
#include "registry.h"

/* Exit statuses (docs/cli.md). */
#define AF_EXIT_OK 0
#define AF_EXIT_FAILED 1 /* a build failed; a manifest was not found */
#define AF_EXIT_USAGE 2  /* bad command line, bad inventory */
#define AF_EXIT_INFRA 3  /* no node for a platform, node or registry unreachable */
#define AF_EXIT_SIGINT 130
#define AF_EXIT_SIGTERM 143

/* Global options, parsed by main() and handed to every subcommand. */
typedef struct {
    const char *inventory; /* -i, else $ARCHFARM_INVENTORY; NULL when neither */
    bool debug;            /* -D */
} af_cli_t;

/* Subcommands. Each gets argv with argv[0] = the subcommand's name and
 * returns an exit status. */
int af_cmd_build(const af_cli_t *cli, int argc, char **argv);
int af_cmd_ls(const af_cli_t *cli, int argc, char **argv);
int af_cmd_inspect(const af_cli_t *cli, int argc, char **argv);
int af_cmd_imagetools(const af_cli_t *cli, int argc, char **argv);
int af_cmd_inventory(const af_cli_t *cli, int argc, char **argv);
int af_cmd_keygen(const af_cli_t *cli, int argc, char **argv);

/* Prints "archfarm CMD: MESSAGE" and "Try 'archfarm CMD --help'." to stderr
 * and returns AF_EXIT_USAGE. CMD may be NULL for the top level. */
int af_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "archfarm: error: MESSAGE" to stderr. */
void af_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "archfarm: warning: MESSAGE" to stderr. */
void af_cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Exit status for a registry/network error code: AF_EXIT_INFRA for
 * NET/TIMEOUT/HTTP/AUTH (the registry is unreachable or refuses us),
 * AF_EXIT_FAILED otherwise (not found, bad content). */
int af_cli_registry_exit(int code);

/* --- insecure registries ------------------------------------------------ */

/* The hosts given with --insecure-registry. Plain value, no ownership: the
 * strings are borrowed from argv. */
typedef struct {
    const char *hosts[AF_MAX_LIST];
    size_t n;
} af_insecure_t;

/* Adds HOST[:PORT] (validated). 0 or AF_ERR_INVAL/AF_ERR_TOOBIG with err. */
int af_insecure_add(af_insecure_t *self, const char *host, af_err_t *err)
    __attribute__((warn_unused_result));

/* True when REGISTRY ("host[:port]") may be used over plain HTTP or
 * unverified TLS: it was given with --insecure-registry (with or without
 * the port), or it is a loopback address (127.0.0.0/8, ::1, localhost),
 * which Docker also treats as insecure by default. */
bool af_insecure_match(const af_insecure_t *self, const char *registry);

/* A registry client for REGISTRY with credentials from the Docker/containers
 * auth files and the insecure rule above. Caller owns; NULL with err. */
af_registry_t *af_cli_registry_open(const char *registry, const af_insecure_t *insecure,
                                    af_err_t *err);

/* --- inventory ----------------------------------------------------------- */

/* Loads PATH (falls back to cli->inventory when NULL). NULL with err set to
 * "FILE:LINE:COL: message" or "no inventory: use -i FILE or set
 * ARCHFARM_INVENTORY". Caller owns. */
af_inventory_t *af_cli_inventory_load(const af_cli_t *cli, const char *path, af_err_t *err);

/* NODE's declared platforms as "linux/amd64,linux/arm64" into OUT (cut
 * short at LEN). */
void af_cli_node_platforms(const af_node_t *n, char *out, size_t len);

/* "12.3 MiB", "512 B" into buf. Returns buf. */
char *af_cli_bytes(unsigned long long n, char *buf, size_t len);

#endif
