/* cli.c -- helpers every `archfarm` subcommand shares: usage and error
 * output, the exit status of registry errors, the --insecure-registry rule
 * (explicit hosts plus loopback, as Docker does), opening a registry client
 * with the user's credentials, loading the inventory named by -i or
 * $ARCHFARM_INVENTORY, and the one allowed piece of global state: the flag
 * the SIGINT/SIGTERM handler sets. */
#include "cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <czmq.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credentials.h"
#include "display.h"
#include "log.h"
#include "strbuf.h"

int af_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[AF_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cmd) {
        fprintf(stderr, "archfarm %s: %s\n", cmd, msg);
        fprintf(stderr, "Try 'archfarm %s --help'.\n", cmd);
    } else {
        fprintf(stderr, "archfarm: %s\n", msg);
        fprintf(stderr, "Try 'archfarm --help'.\n");
    }
    return AF_EXIT_USAGE;
}

/* "archfarm: KIND: MESSAGE" on stderr. Messages may quote a node, a
 * registry or a build: never raw. */
static void s_vsay(const char *kind, const char *fmt, va_list ap)
{
    char msg[AF_ERRMSG_MAX + 256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char clean[4 * sizeof msg];
    af_display_sanitize(msg, clean, sizeof clean);
    fprintf(stderr, "archfarm: %s: %s\n", kind, clean);
}

void af_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vsay("error", fmt, ap);
    va_end(ap);
}

void af_cli_warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vsay("warning", fmt, ap);
    va_end(ap);
}

int af_cli_registry_exit(int code)
{
    switch (code) {
    case AF_ERR_NET:
    case AF_ERR_TIMEOUT:
    case AF_ERR_HTTP:
    case AF_ERR_AUTH:
        return AF_EXIT_INFRA;
    default:
        return AF_EXIT_FAILED;
    }
}

/* Splits "host[:port]" / "[v6]:port" into host (brackets removed) and
 * returns the port part ("" if none). */
static const char *s_split_host(const char *s, char *host, size_t len)
{
    const char *port = "";
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) {
            snprintf(host, len, "%s", s);
            return "";
        }
        snprintf(host, len, "%.*s", (int)(close - s - 1), s + 1);
        if (close[1] == ':')
            port = close + 2;
        return port;
    }
    const char *colon = strchr(s, ':');
    if (colon && !strchr(colon + 1, ':')) {
        snprintf(host, len, "%.*s", (int)(colon - s), s);
        return colon + 1;
    }
    snprintf(host, len, "%s", s);
    return port;
}

int af_insecure_add(af_insecure_t *self, const char *host, af_err_t *err)
{
    if (!host || !*host)
        return af_err_set(err, AF_ERR_INVAL, "--insecure-registry needs HOST[:PORT]");
    if (strstr(host, "://"))
        return af_err_set(err, AF_ERR_INVAL,
                          "--insecure-registry '%s': give HOST[:PORT] without a scheme", host);
    if (strlen(host) > 255)
        return af_err_set(err, AF_ERR_INVAL, "--insecure-registry: host name too long");
    char name[256];
    const char *port = s_split_host(host, name, sizeof name);
    if (!name[0])
        return af_err_set(err, AF_ERR_INVAL, "--insecure-registry '%s': empty host", host);
    for (const char *c = name; *c; c++) {
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == ':' || *c == '_'))
            return af_err_set(err, AF_ERR_INVAL,
                              "--insecure-registry '%s': invalid character '%c' in host", host, *c);
    }
    if (*port) {
        char *end = NULL;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535)
            return af_err_set(err, AF_ERR_INVAL, "--insecure-registry '%s': invalid port", host);
    }
    if (self->n >= AF_MAX_LIST)
        return af_err_set(err, AF_ERR_TOOBIG, "more than %d --insecure-registry options",
                          AF_MAX_LIST);
    self->hosts[self->n++] = host;
    return 0;
}

static bool s_is_loopback(const char *host)
{
    if (!strcasecmp(host, "localhost"))
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

bool af_insecure_match(const af_insecure_t *self, const char *registry)
{
    char host[256];
    s_split_host(registry, host, sizeof host);
    if (s_is_loopback(host))
        return true;
    for (size_t i = 0; self && i < self->n; i++) {
        if (!strcasecmp(self->hosts[i], registry))
            return true;
        /* "--insecure-registry host" covers every port of host */
        char h[256];
        const char *port = s_split_host(self->hosts[i], h, sizeof h);
        if (!*port && !strcasecmp(h, host))
            return true;
    }
    return false;
}

af_registry_t *af_cli_registry_open(const char *registry, const af_insecure_t *insecure,
                                    af_err_t *err)
{
    char *user = NULL, *pass = NULL;
    int rc = af_credentials_lookup(registry, &user, &pass, err);
    if (rc)
        return NULL;
    af_registry_opts_t opts = {0};
    opts.insecure = af_insecure_match(insecure, registry);
    opts.username = user;
    opts.password = pass;
    af_debug("registry %s: insecure=%d credentials=%s", registry, opts.insecure,
             user ? "yes" : "no");
    af_registry_t *reg = af_registry_new(registry, &opts, err);
    if (pass) {
        explicit_bzero(pass, strlen(pass));
        free(pass);
    }
    free(user);
    return reg;
}

af_inventory_t *af_cli_inventory_load(const af_cli_t *cli, const char *path, af_err_t *err)
{
    if (!path)
        path = cli->inventory;
    if (!path || !*path) {
        af_err_set(err, AF_ERR_INVAL, "no inventory: use -i FILE or set ARCHFARM_INVENTORY");
        return NULL;
    }
    af_inventory_t *inv = af_inventory_load(path, err);
    for (size_t i = 0; i < af_inventory_warning_count(inv); i++)
        fprintf(stderr, "archfarm: %s\n", af_inventory_warning(inv, i));
    return inv;
}

void af_cli_node_platforms(const af_node_t *n, char *out, size_t len)
{
    af_strbuf_t sb;
    af_strbuf_init(&sb, out, len);
    for (size_t i = 0; i < n->n_platforms; i++) {
        char buf[AF_PLATFORM_STR_MAX];
        af_strbuf_printf(&sb, "%s%s", i ? "," : "",
                         af_platform_format(&n->platforms[i], buf, sizeof buf));
    }
}

char *af_cli_bytes(unsigned long long n, char *buf, size_t len)
{
    if (n < 1024)
        snprintf(buf, len, "%llu B", n);
    else if (n < 1024ULL * 1024)
        snprintf(buf, len, "%.1f KiB", n / 1024.0);
    else if (n < 1024ULL * 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", n / (1024.0 * 1024));
    else
        snprintf(buf, len, "%.2f GiB", n / (1024.0 * 1024 * 1024));
    return buf;
}
