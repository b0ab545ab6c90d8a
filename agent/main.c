/* main.c -- archfarm-agent: parse the command line, load the config, run.
 * Flags override agent.yaml; see docs/agent.md. Exit status: 0 after a
 * clean shutdown, 1 on a runtime failure, 2 on a bad flag or config. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include <curl/curl.h>
#include <czmq.h>

#include "agent.h"
#include "certfile.h"
#include "config.h"
#include "error.h"
#include "limits.h"
#include "recovery.h"
#include "sdnotify.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: archfarm-agent [--config FILE] [options]\n"
            "\n"
            "The archfarm build agent: builds image slices for coordinators.\n"
            "\n"
            "  -c, --config FILE           agent.yaml to read (flags override it)\n"
            "  -l, --listen ENDPOINT       ZeroMQ endpoint to bind (default %s)\n"
            "  -p, --platform P            platform served natively, repeatable\n"
            "                              (default: this host's, from uname)\n"
            "  -w, --workdir DIR           job dirs and context cache (default %s)\n"
            "  -j, --max-jobs N            slices built at once (default 1)\n"
            "  -e, --executor E            auto | native | buildah | buildctl | docker\n"
            "                              (default auto: every engine found)\n"
            "  -n, --name NAME             node name (default: the hostname)\n"
            "      --insecure              no CURVE: plaintext, unauthenticated (labs, tests)\n"
            "      --cert FILE             CURVE server certificate\n"
            "      --authorized-keys DIR   CURVE public keys of allowed coordinators\n"
            "      --heartbeat-ms N        heartbeat interval (default %d)\n"
            "      --liveness N            missed heartbeats before a peer is dead (default %d)\n"
            "      --job-timeout S         default per-slice limit in seconds, 0 = none\n"
            "      --context-cache N       contexts kept in the cache (default %d)\n"
            "      --kill-grace-ms N       SIGTERM to SIGKILL delay (default %d)\n"
            "      --drain S               on SIGTERM, let running slices finish for up to S\n"
            "                              seconds before cancelling them (default 0)\n"
            "      --check-config          check the configuration (file and flags) and\n"
            "                              the certificate, print \"config OK\", exit 0; or\n"
            "                              print the error and exit 2 (for installers)\n"
            "      --init-cert             create the --cert key pair if it does not exist\n"
            "                              (secret 0600), print the public key, exit; for\n"
            "                              installers (the .deb's postinst runs it)\n"
            "      --registry-auth-file FILE  registry credentials (Docker config.json\n"
            "                              format) used when a BUILD brings none\n"
            "      --confine MODE          Landlock for native build steps: auto (when the\n"
            "                              kernel has it), required (refuse to start\n"
            "                              without it), off (default auto)\n"
            "      --step-nproc N          RLIMIT_NPROC per build step, 0 = unchanged\n"
            "      --step-fsize-mb N       RLIMIT_FSIZE per build step in MiB, 0 = unchanged\n"
            "  -h, --help                  this help\n"
            "  -V, --version               print the version\n",
            AF_AGENT_DEFAULT_LISTEN, AF_AGENT_DEFAULT_WORKDIR, AF_HEARTBEAT_MS, AF_LIVENESS,
            AF_AGENT_DEFAULT_CONTEXT_CACHE, AF_AGENT_DEFAULT_KILL_GRACE_MS);
}

/* Every flag: its long name, its short letter (0: none) and the agent.yaml
 * key it overrides (NULL: handled in main). getopt_long gets the letter, or
 * 256 + the flag's index, as its val. The error origin is "--NAME". */
typedef struct {
    const char *name;
    int has_arg;
    char letter;
    const char *key;
} s_opt_t;

static const s_opt_t s_opts[] = {
    {"config", required_argument, 'c', NULL},
    {"listen", required_argument, 'l', "listen"},
    {"platform", required_argument, 'p', "platforms"},
    {"workdir", required_argument, 'w', "workdir"},
    {"max-jobs", required_argument, 'j', "max_jobs"},
    {"executor", required_argument, 'e', "executor"},
    {"name", required_argument, 'n', "name"},
    {"insecure", no_argument, 0, "insecure"},
    {"cert", required_argument, 0, "cert"},
    {"authorized-keys", required_argument, 0, "authorized_keys"},
    {"heartbeat-ms", required_argument, 0, "heartbeat_ms"},
    {"liveness", required_argument, 0, "liveness"},
    {"job-timeout", required_argument, 0, "job_timeout_s"},
    {"context-cache", required_argument, 0, "context_cache"},
    {"kill-grace-ms", required_argument, 0, "kill_grace_ms"},
    {"drain", required_argument, 0, "drain_s"},
    {"init-cert", no_argument, 0, NULL},
    {"registry-auth-file", required_argument, 0, "registry_auth_file"},
    {"check-config", no_argument, 0, NULL},
    {"confine", required_argument, 0, "confine"},
    {"step-nproc", required_argument, 0, "step_nproc"},
    {"step-fsize-mb", required_argument, 0, "step_fsize_mb"},
    {"help", no_argument, 'h', NULL},
    {"version", no_argument, 'V', NULL},
};
#define S_N_OPTS (sizeof s_opts / sizeof *s_opts)

static int s_val(size_t i)
{
    return s_opts[i].letter ? s_opts[i].letter : 256 + (int)i;
}

/* A flag as given, applied after the config file. */
typedef struct {
    const char *key;
    const char *value;
    const s_opt_t *opt;
} s_flag_t;

/* --check-config: the certificate, when CURVE is on, must load as the agent
 * will load it (a readable secret key in the right format). */
static int s_check_cert(const af_agent_config_t *cfg, af_err_t *err)
{
    if (cfg->insecure)
        return 0;
    zcert_t *cert = zcert_load(cfg->cert);
    if (!cert)
        return af_err_set(err, AF_ERR_INVAL, "cert: %s: cannot load a CURVE certificate from it",
                          cfg->cert);
    bool secret = strcmp(zcert_secret_txt(cert), "0000000000000000000000000000000000000000") != 0;
    zcert_destroy(&cert);
    if (!secret)
        return af_err_set(err, AF_ERR_INVAL, "cert: %s holds no secret key", cfg->cert);
    return 0;
}

/* --init-cert: the configured certificate pair, created when missing.
 * Idempotent, so an installer can run it on every upgrade. */
static int s_init_cert(const af_agent_config_t *cfg)
{
    if (!cfg->cert[0]) {
        fprintf(stderr, "archfarm-agent: --init-cert: no cert path (set cert: in agent.yaml or "
                        "--cert FILE)\n");
        return 2;
    }
    char pub[AF_AGENT_PATH_MAX], key[AF_CERT_Z85_LEN + 1];
    snprintf(pub, sizeof pub, "%s", cfg->cert);
    size_t n = strlen(pub);
    if (n > 7 && strcmp(pub + n - 7, "_secret") == 0)
        pub[n - 7] = '\0'; /* cert: may name either file of the pair */
    zcert_t *have = zcert_load(pub);
    if (have) {
        printf("%s\n", zcert_public_txt(have));
        fprintf(stderr, "archfarm-agent: %s exists, kept\n", pub);
        zcert_destroy(&have);
        return 0;
    }
    char secret[AF_AGENT_PATH_MAX + 8];
    snprintf(secret, sizeof secret, "%s_secret", pub);
    if (access(pub, F_OK) == 0 || access(secret, F_OK) == 0) {
        fprintf(stderr,
                "archfarm-agent: --init-cert: %s or %s exists but cannot load a CURVE "
                "certificate from it (remove both to create a new pair)\n",
                pub, secret);
        return 2;
    }
    af_err_t err;
    af_err_clear(&err);
    if (af_certfile_create(pub, cfg->name[0] ? cfg->name : "agent",
                           "archfarm-agent --init-cert " AF_VERSION, false, key, &err) < 0) {
        fprintf(stderr, "archfarm-agent: --init-cert: %s\n", af_err_msg(&err, err.code));
        return err.code == AF_ERR_STATE ? 2 : 1;
    }
    printf("%s\n", key);
    fprintf(stderr, "archfarm-agent: wrote %s and %s_secret\n", pub, pub);
    return 0;
}

/* The command line, parsed but not yet applied. */
typedef struct {
    s_flag_t *flags; /* config flags in order; caller frees */
    size_t n_flags;
    const char *config_path;
    bool init_cert, check_config;
} s_cmdline_t;

/* Parses argv into CL. -1 to go on, else the exit status (0 after --help
 * or --version, 2 on a usage error, 1 out of memory). */
static int s_parse(int argc, char **argv, s_cmdline_t *cl)
{
    struct option longopts[S_N_OPTS + 1];
    char shortopts[2 * S_N_OPTS + 1];
    size_t ns = 0;
    for (size_t i = 0; i < S_N_OPTS; i++) {
        longopts[i] = (struct option){s_opts[i].name, s_opts[i].has_arg, NULL, s_val(i)};
        if (s_opts[i].letter) {
            shortopts[ns++] = s_opts[i].letter;
            if (s_opts[i].has_arg == required_argument)
                shortopts[ns++] = ':';
        }
    }
    shortopts[ns] = '\0';
    longopts[S_N_OPTS] = (struct option){NULL, 0, NULL, 0};
    if (!(cl->flags = calloc((size_t)argc + 1, sizeof *cl->flags)))
        return 1;
    bool platform_seen = false;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const s_opt_t *o = NULL;
        for (size_t i = 0; i < S_N_OPTS && !o; i++)
            if (s_val(i) == c)
                o = &s_opts[i];
        if (!o) { /* '?': getopt_long named the bad flag */
            s_usage(stderr);
            return 2;
        }
        if (o->letter == 'c') {
            cl->config_path = optarg;
        } else if (!o->letter && !o->key) { /* --init-cert, --check-config */
            if (!strcmp(o->name, "init-cert"))
                cl->init_cert = true;
            else
                cl->check_config = true;
        } else if (o->letter == 'h') {
            s_usage(stdout);
            return 0;
        } else if (o->letter == 'V') {
            printf("archfarm-agent %s\n", AF_VERSION);
            return 0;
        } else {
            s_flag_t f = {o->key, o->has_arg == no_argument ? "true" : optarg, o};
            if (o->letter == 'p') { /* the first --platform replaces the file's list */
                if (platform_seen)
                    f.key = "platform";
                platform_seen = true;
            }
            cl->flags[cl->n_flags++] = f;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "archfarm-agent: unexpected argument \"%s\"\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    return -1;
}

/* The config: defaults, the file, then the flags over it. 0 or -1 with err. */
static int s_config(const s_cmdline_t *cl, af_agent_config_t *cfg, af_err_t *err)
{
    af_agent_config_defaults(cfg);
    if (cl->config_path && af_agent_config_load(cfg, cl->config_path, err) < 0)
        return -1;
    for (size_t i = 0; i < cl->n_flags; i++) {
        char origin[40];
        snprintf(origin, sizeof origin, "--%s", cl->flags[i].opt->name);
        if (af_agent_config_set(cfg, cl->flags[i].key, cl->flags[i].value, origin, err) < 0)
            return -1;
    }
    return 0;
}

/* Runs the agent until it is stopped. The exit status. */
static int s_serve(af_agent_config_t *cfg)
{
    af_err_t err;
    af_err_clear(&err);
    /* a previous run that crashed may have left build steps running: kill
     * them before af_agent_new removes their job dirs (queue starts empty) */
    af_recovery_run(cfg->workdir);
    /* registry clients live in worker threads: libcurl's global state is
     * set up here, once, before af_agent_new starts any thread */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "archfarm-agent: cannot initialise libcurl\n");
        return 1;
    }
    af_agent_t *agent = af_agent_new(cfg, &err);
    if (!agent) {
        fprintf(stderr, "archfarm-agent: %s\n", af_err_msg(&err, AF_ERR_STATE));
        curl_global_cleanup();
        return err.code == AF_ERR_INVAL || err.code == AF_ERR_UNSUPPORTED ? 2 : 1;
    }
    char status[600];
    snprintf(status, sizeof status, "READY=1\nSTATUS=listening on %s", af_agent_endpoint(agent));
    if (af_sd_notify(status) < 0)
        fprintf(stderr, "archfarm-agent: NOTIFY_SOCKET: %s\n", strerror(errno));
    int rc = af_agent_run(agent);
    af_agent_destroy(&agent);
    curl_global_cleanup();
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    s_cmdline_t cl = {0};
    int rc = s_parse(argc, argv, &cl);
    if (rc >= 0) {
        free(cl.flags);
        return rc;
    }
    af_agent_config_t cfg;
    af_err_t err;
    af_err_clear(&err);
    rc = s_config(&cl, &cfg, &err) < 0 ? 2 : 0;
    free(cl.flags);
    if (!rc && cl.init_cert)
        return s_init_cert(&cfg);
    if (!rc && af_agent_config_finish(&cfg, &err) < 0)
        rc = 2;
    if (!rc && cl.check_config && s_check_cert(&cfg, &err) < 0)
        rc = 2;
    if (rc) {
        fprintf(stderr, "archfarm-agent: %s\n", af_err_msg(&err, AF_ERR_INVAL));
        return rc;
    }
    if (cl.check_config) {
        printf("%s: config OK\n", cl.config_path ? cl.config_path : "flags");
        return 0;
    }
    return s_serve(&cfg);
}
