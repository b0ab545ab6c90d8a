/* main.c -- archfarm-agent: parse the command line, load the config, run.
 * Flags override agent.yaml; see docs/agent.md. Exit status: 0 after a
 * clean shutdown, 1 on a runtime failure, 2 on a bad flag or config. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "error.h"
#include "limits.h"
#include "recovery.h"

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
            "  -h, --help                  this help\n"
            "  -V, --version               print the version\n",
            AF_AGENT_DEFAULT_LISTEN, AF_AGENT_DEFAULT_WORKDIR, AF_HEARTBEAT_MS, AF_LIVENESS,
            AF_AGENT_DEFAULT_CONTEXT_CACHE, AF_AGENT_DEFAULT_KILL_GRACE_MS);
}

typedef struct {
    const char *key;
    const char *value;
    const char *origin;
} s_flag_t;

int main(int argc, char **argv)
{
    enum {
        O_INSECURE = 256,
        O_CERT,
        O_AUTH_KEYS,
        O_HEARTBEAT,
        O_LIVENESS,
        O_JOB_TIMEOUT,
        O_CONTEXT_CACHE,
        O_KILL_GRACE,
        O_DRAIN
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"platform", required_argument, NULL, 'p'},
        {"workdir", required_argument, NULL, 'w'},
        {"max-jobs", required_argument, NULL, 'j'},
        {"executor", required_argument, NULL, 'e'},
        {"name", required_argument, NULL, 'n'},
        {"insecure", no_argument, NULL, O_INSECURE},
        {"cert", required_argument, NULL, O_CERT},
        {"authorized-keys", required_argument, NULL, O_AUTH_KEYS},
        {"heartbeat-ms", required_argument, NULL, O_HEARTBEAT},
        {"liveness", required_argument, NULL, O_LIVENESS},
        {"job-timeout", required_argument, NULL, O_JOB_TIMEOUT},
        {"context-cache", required_argument, NULL, O_CONTEXT_CACHE},
        {"kill-grace-ms", required_argument, NULL, O_KILL_GRACE},
        {"drain", required_argument, NULL, O_DRAIN},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    s_flag_t *flags = calloc((size_t)argc + 1, sizeof *flags);
    size_t n_flags = 0;
    const char *config_path = NULL;
    bool platform_seen = false;
    if (!flags)
        return 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:p:w:j:e:n:hV", opts, NULL)) != -1) {
        s_flag_t f = {NULL, optarg, NULL};
        switch (c) {
        case 'c':
            config_path = optarg;
            continue;
        case 'l':
            f.key = "listen";
            f.origin = "--listen";
            break;
        case 'p':
            f.key = platform_seen ? "platform" : "platforms"; /* first one replaces the file's */
            f.origin = "--platform";
            platform_seen = true;
            break;
        case 'w':
            f.key = "workdir";
            f.origin = "--workdir";
            break;
        case 'j':
            f.key = "max_jobs";
            f.origin = "--max-jobs";
            break;
        case 'e':
            f.key = "executor";
            f.origin = "--executor";
            break;
        case 'n':
            f.key = "name";
            f.origin = "--name";
            break;
        case O_INSECURE:
            f.key = "insecure";
            f.value = "true";
            f.origin = "--insecure";
            break;
        case O_CERT:
            f.key = "cert";
            f.origin = "--cert";
            break;
        case O_AUTH_KEYS:
            f.key = "authorized_keys";
            f.origin = "--authorized-keys";
            break;
        case O_HEARTBEAT:
            f.key = "heartbeat_ms";
            f.origin = "--heartbeat-ms";
            break;
        case O_LIVENESS:
            f.key = "liveness";
            f.origin = "--liveness";
            break;
        case O_JOB_TIMEOUT:
            f.key = "job_timeout_s";
            f.origin = "--job-timeout";
            break;
        case O_CONTEXT_CACHE:
            f.key = "context_cache";
            f.origin = "--context-cache";
            break;
        case O_KILL_GRACE:
            f.key = "kill_grace_ms";
            f.origin = "--kill-grace-ms";
            break;
        case O_DRAIN:
            f.key = "drain_s";
            f.origin = "--drain";
            break;
        case 'h':
            s_usage(stdout);
            free(flags);
            return 0;
        case 'V':
            printf("archfarm-agent %s\n", AF_VERSION);
            free(flags);
            return 0;
        default:
            s_usage(stderr);
            free(flags);
            return 2;
        }
        flags[n_flags++] = f;
    }
    if (optind < argc) {
        fprintf(stderr, "archfarm-agent: unexpected argument \"%s\"\n", argv[optind]);
        s_usage(stderr);
        free(flags);
        return 2;
    }

    af_agent_config_t cfg;
    af_err_t err;
    af_err_clear(&err);
    af_agent_config_defaults(&cfg);
    int rc = 0;
    if (config_path && af_agent_config_load(&cfg, config_path, &err) < 0)
        rc = 2;
    for (size_t i = 0; !rc && i < n_flags; i++)
        if (af_agent_config_set(&cfg, flags[i].key, flags[i].value, flags[i].origin, &err) < 0)
            rc = 2;
    free(flags);
    if (!rc && af_agent_config_finish(&cfg, &err) < 0)
        rc = 2;
    if (rc) {
        fprintf(stderr, "archfarm-agent: %s\n", af_err_msg(&err, AF_ERR_INVAL));
        return rc;
    }

    /* a previous run that crashed may have left build steps running: kill
     * them before af_agent_new removes their job dirs (queue starts empty) */
    af_recovery_run(cfg.workdir);
    af_agent_t *agent = af_agent_new(&cfg, &err);
    if (!agent) {
        fprintf(stderr, "archfarm-agent: %s\n", af_err_msg(&err, AF_ERR_STATE));
        return err.code == AF_ERR_INVAL || err.code == AF_ERR_UNSUPPORTED ? 2 : 1;
    }
    rc = af_agent_run(agent);
    af_agent_destroy(&agent);
    return rc ? 1 : 0;
}
