/* cmd_build.c -- `archfarm build`: the command line of a build (buildx's
 * flags), checked completely before anything touches the network; then
 * build.c runs it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build.h"
#include "compress.h"

static const char s_help[] =
    "Usage: archfarm [-i INVENTORY] build [OPTIONS] CONTEXT\n"
    "\n"
    "Builds the image in the CONTEXT directory for every requested platform at\n"
    "once, each slice natively on a node of the farm that serves it, like\n"
    "'docker buildx build --platform ... --push'. Every slice is pushed to the\n"
    "registry by digest (never a tag) and verified there (it is a manifest whose\n"
    "config has the slice's os/architecture/variant). With --push the\n"
    "multi-platform index is then PUT to every -t tag; a tag only changes when\n"
    "every platform built and verified. The index digest is printed on stdout.\n"
    "\n"
    "The recipe is CONTEXT/archfarm.yaml (a native recipe, every node can run\n"
    "it) or CONTEXT/Dockerfile (needs a node with a container engine such as\n"
    "buildah), or the file given with -f.\n"
    "\n"
    "Each node is sent the context once: a node that holds it already is sent\n"
    "nothing, one that holds its previous version only the changed files (a\n"
    "delta). A native recipe's build.inputs narrows what each platform is sent\n"
    "to what its step reads (see archfarm.yaml's documentation, docs/recipe.md).\n"
    "\n"
    "Options:\n"
    "  --platform LIST        comma-separated platforms, e.g.\n"
    "                         linux/amd64,linux/arm64,linux/arm/v7 (repeatable;\n"
    "                         default: this host's platform)\n"
    "  -t, --tag REF          image reference, e.g. registry:5000/app:1.0\n"
    "                         (repeatable; all tags must be in one repository; the\n"
    "                         slices go to that repository by digest; required)\n"
    "  --push                 publish the index to every -t tag\n"
    "  -f, --file FILE        recipe: a Dockerfile, or a .yaml/.yml native recipe;\n"
    "                         relative to the current directory, else to CONTEXT;\n"
    "                         must lie inside CONTEXT\n"
    "  --build-arg K=V        build argument (repeatable); 'K' alone takes V from\n"
    "                         the environment; SOURCE_DATE_EPOCH=N sets the image\n"
    "                         timestamps\n"
    "  --target STAGE         Dockerfile stage to build\n"
    "  --progress MODE        auto|plain|tty|gha|json (default auto: gha when\n"
    "                         GITHUB_ACTIONS=true, else tty on a terminal, else\n"
    "                         plain). plain: '[PLATFORM NODE] text' lines on\n"
    "                         stderr; tty: the log scrolls above a live panel,\n"
    "                         one row per platform; gha: GitHub Actions log\n"
    "                         groups, annotations, job summary and step outputs;\n"
    "                         json: one JSON event per line on stdout\n"
    "  -q, --quiet            print only the index digest (stdout) and errors\n"
    "                         (stderr)\n"
    "  --metadata-file FILE   write the result as JSON (buildx keys\n"
    "                         containerimage.digest, containerimage.descriptor,\n"
    "                         image.name, plus slices[])\n"
    "  --annotation [index:|manifest:]KEY=VALUE\n"
    "                         annotate the index or (default) every manifest\n"
    "  --manifest-format oci|docker\n"
    "                         publish an OCI index (default) or a Docker manifest\n"
    "                         list v2 with Docker v2 manifests (native recipes)\n"
    "  --no-cache             build every slice: do not reuse a slice built\n"
    "                         before from the same inputs, nor the context's\n"
    "                         digest from its file metadata (native recipes)\n"
    "  --compression gzip|zstd[:LEVEL]\n"
    "                         compression of the layers the agents pack (native\n"
    "                         recipes; default gzip; gzip 1..9, zstd 1..22;\n"
    "                         zstd layers are tar+zstd, OCI only)\n"
    "  --insecure-registry HOST[:PORT]\n"
    "                         use plain HTTP or unverified TLS for this registry\n"
    "                         (repeatable); 127.0.0.0/8, ::1 and localhost are\n"
    "                         always insecure, as in Docker\n"
    "  --no-fail-fast         let the other slices finish when one fails (every\n"
    "                         outcome is reported; still nothing is published)\n"
    "  --timeout SECONDS      per-slice build timeout on the agents (default: the\n"
    "                         agent's)\n"
    "  --retries N            further attempts of a slice on another node of its\n"
    "                         platform after an infrastructure failure (node lost,\n"
    "                         agent failure) (default 2, at most 8)\n"
    "  --retry-on-build-failure\n"
    "                         also retry a slice whose build step failed\n"
    "  --node-selector K=V    only use nodes whose archfarm_labels have K=V ('K'\n"
    "                         alone: any value) (repeatable: all must match)\n"
    "  --heartbeat-interval MS\n"
    "                         HEARTBEAT interval to the nodes (default 1000, or\n"
    "                         $ARCHFARM_HEARTBEAT_MS)\n"
    "  --liveness N           a node silent for N intervals is lost and its slice\n"
    "                         fails over (default 3, or $ARCHFARM_LIVENESS)\n"
    "  --probe-timeout MS     how long to wait for the nodes' WELCOME (default 3000)\n"
    "  -h, --help             this help\n"
    "\n"
    "Environment:\n"
    "  NO_COLOR               no colour in the tty display (also TERM=dumb)\n"
    "  GITHUB_ACTIONS         'true' selects --progress gha (GITHUB_STEP_SUMMARY\n"
    "                         and GITHUB_OUTPUT are written there)\n"
    "  SOURCE_DATE_EPOCH      timestamp of the context tar, layers, config and\n"
    "                         index (default 0): same inputs, same digests\n"
    "  ARCHFARM_HEARTBEAT_MS, ARCHFARM_LIVENESS   defaults of --heartbeat-interval\n"
    "                         and --liveness\n"
    "  DOCKER_CONFIG, REGISTRY_AUTH_FILE   registry credentials for verifying and\n"
    "                         tagging; they are never sent to agents over a\n"
    "                         plaintext (archfarm_insecure) transport\n"
    "\n"
    "Exit status:\n"
    "  0    success (the index digest is on stdout)\n"
    "  1    a slice failed (its build step, or its node and every retry), or\n"
    "       was not what its node claimed\n"
    "  2    usage error, bad inventory, bad context\n"
    "  3    infrastructure: no usable node for a platform (nothing was started),\n"
    "       the registry is unreachable\n"
    "  130  interrupted (SIGINT), 143 terminated (SIGTERM): running slices were\n"
    "       cancelled, no tag was written\n"
    "\n"
    "Examples:\n"
    "  archfarm -i farm.yaml build --platform linux/amd64,linux/arm64,linux/arm/v7 \\\n"
    "      -t registry.local:5000/app:1.0 --push .\n"
    "  digest=$(archfarm build -t localhost:5000/app:ci --metadata-file m.json .)\n"
    "  archfarm build --platform linux/arm64 -t localhost:5000/app:test \\\n"
    "      -f docker/Dockerfile --build-arg VERSION=1.2 --progress json .\n";

static bool s_valid_arg_key(const char *k, size_t len)
{
    if (!len || len > AF_MAX_NAME)
        return false;
    if (!(k[0] == '_' || (k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z')))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = k[i];
        if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static int s_add_build_arg(af_build_opts_t *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (!s_valid_arg_key(arg, klen))
        return af_cli_usage_error(
            "build", "--build-arg '%s': the name must match [A-Za-z_][A-Za-z0-9_]*", arg);
    const char *value = eq ? eq + 1 : NULL;
    char key[AF_MAX_NAME + 1];
    snprintf(key, sizeof key, "%.*s", (int)klen, arg);
    if (!value) {
        value = getenv(key);
        if (!value)
            return 0; /* like docker: an unset variable is not passed */
    }
    if (strlen(value) > AF_MAX_STR)
        return af_cli_usage_error("build", "--build-arg %s: value longer than %d bytes", key,
                                  AF_MAX_STR);
    /* a later --build-arg of the same name wins */
    for (size_t i = 0; i < o->n_build_args; i++)
        if (!strcmp(o->build_args[i].key, key)) {
            o->build_args[i].value = (char *)value;
            return 0;
        }
    if (o->n_build_args >= AF_MAX_BUILD_ARGS)
        return af_cli_usage_error("build", "more than %d --build-arg options", AF_MAX_BUILD_ARGS);
    char *k = strdup(key);
    if (!k)
        return AF_EXIT_INFRA;
    o->build_arg_keys[o->n_build_args] = k;
    o->build_args[o->n_build_args].key = k;
    o->build_args[o->n_build_args].value = (char *)value;
    o->n_build_args++;
    return 0;
}

static int s_add_platforms(af_build_opts_t *o, const char *list)
{
    af_platform_t tmp[AF_MAX_LIST];
    size_t n = 0;
    af_err_t err = {0};
    if (af_platform_parse_list(list, tmp, AF_MAX_LIST, &n, &err))
        return af_cli_usage_error("build", "--platform: %s", af_err_msg(&err, AF_ERR_INVAL));
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t k = 0; k < o->n_platforms; k++)
            if (af_platform_equal(&o->platforms[k], &tmp[i]))
                dup = true;
        if (dup)
            continue;
        if (o->n_platforms >= AF_MAX_LIST)
            return af_cli_usage_error("build", "more than %d platforms", AF_MAX_LIST);
        o->platforms[o->n_platforms++] = tmp[i];
    }
    o->platforms_given = true;
    return 0;
}

static int s_add_tag(af_build_opts_t *o, const char *arg)
{
    af_err_t err = {0};
    if (o->n_tags >= AF_MAX_LIST)
        return af_cli_usage_error("build", "more than %d -t options", AF_MAX_LIST);
    af_ref_t *r = &o->tags[o->n_tags];
    if (af_ref_parse(arg, r, &err))
        return af_cli_usage_error("build", "-t '%s': %s", arg, af_err_msg(&err, AF_ERR_INVAL));
    if (r->digest[0])
        return af_cli_usage_error("build", "-t '%s': a tag cannot contain a digest", arg);
    o->tag_args[o->n_tags++] = arg;
    return 0;
}

static int s_uint(const char *cmd, const char *opt, const char *v, long min, long max, long *out)
{
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < min || n > max)
        return af_cli_usage_error(cmd, "%s needs a number between %ld and %ld, not '%s'", opt, min,
                                  max, v);
    *out = n;
    return 0;
}

static int s_add_selector(af_build_opts_t *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (!klen || klen > AF_MAX_NAME || (eq && strlen(eq + 1) > AF_MAX_STR))
        return af_cli_usage_error("build",
                                  "--node-selector '%s': expected KEY=VALUE or KEY (a label "
                                  "of archfarm_labels)",
                                  arg);
    if (o->n_selectors >= AF_MAX_SELECTORS)
        return af_cli_usage_error("build", "more than %d --node-selector options",
                                  AF_MAX_SELECTORS);
    char *k = strndup(arg, klen);
    if (!k)
        return AF_EXIT_INFRA;
    o->selector_keys[o->n_selectors] = k;
    o->selectors[o->n_selectors].key = k;
    o->selectors[o->n_selectors].value = (char *)(eq ? eq + 1 : "");
    o->n_selectors++;
    return 0;
}

/* ARCHFARM_HEARTBEAT_MS / ARCHFARM_LIVENESS: defaults the flags override. */
static int s_env_defaults(af_build_opts_t *o)
{
    long v = 0;
    int rc;
    const char *e = getenv("ARCHFARM_HEARTBEAT_MS");
    if (e && *e) {
        if ((rc = s_uint("build", "ARCHFARM_HEARTBEAT_MS", e, AF_MIN_HEARTBEAT_MS,
                         AF_MAX_HEARTBEAT_MS, &v)))
            return rc;
        o->heartbeat_ms = (uint32_t)v;
    }
    e = getenv("ARCHFARM_LIVENESS");
    if (e && *e) {
        if ((rc = s_uint("build", "ARCHFARM_LIVENESS", e, 1, AF_MAX_LIVENESS, &v)))
            return rc;
        o->liveness = (uint32_t)v;
    }
    return -1;
}

/* Parses and checks everything; returns -1 to go on, else an exit status. */
/* --annotation [index:|manifest:]KEY=VALUE as buildx has it (no prefix:
 * the manifests). ARG is argv's, split in place. */
static int s_add_annotation(af_build_opts_t *o, char *arg)
{
    bool index = !strncmp(arg, "index:", 6);
    char *kv = index ? arg + 6 : !strncmp(arg, "manifest:", 9) ? arg + 9 : arg;
    char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return af_cli_usage_error("build",
                                  "--annotation '%s': expected [index:|manifest:]KEY=VALUE", arg);
    if (kv == arg && strcspn(kv, ":[") < (size_t)(eq - kv))
        return af_cli_usage_error("build",
                                  "--annotation '%s': only the index: and manifest: targets are "
                                  "supported",
                                  arg);
    size_t *n = index ? &o->n_index_annots : &o->n_manifest_annots;
    if (*n >= AF_MAX_LIST)
        return af_cli_usage_error("build", "more than %d --annotation options", AF_MAX_LIST);
    *eq = '\0';
    (index ? o->index_annots : o->manifest_annots)[(*n)++] = (af_kv_t){kv, eq + 1};
    return 0;
}

/* --metadata-file PATH can be written: PATH is not a directory and a file
 * can be created beside it (the result is written there, then renamed
 * over PATH). Checked before any work so that a bad path cannot turn a
 * published build into a failure (issue 12, finding 7). 0, or -1 with
 * WHY. */
static int s_metadata_writable(const char *path, char *why, size_t len)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(why, len, "is a directory");
        return -1;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        snprintf(why, len, "path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, len, "cannot create a file beside it: %s", strerror(errno));
        return -1;
    }
    close(fd);
    unlink(tmp);
    return 0;
}

enum {
    O_PLATFORM = 256,
    O_PUSH,
    O_BUILD_ARG,
    O_TARGET,
    O_PROGRESS,
    O_METADATA,
    O_INSECURE,
    O_NO_FAIL_FAST,
    O_TIMEOUT,
    O_PROBE_TIMEOUT,
    O_RETRIES,
    O_RETRY_BUILD,
    O_SELECTOR,
    O_HEARTBEAT,
    O_LIVENESS,
    O_MANIFEST_FORMAT,
    O_ANNOTATION,
    O_COMPRESSION,
    O_NO_CACHE,
};

static const struct option s_longopts[] = {
    {"platform", required_argument, NULL, O_PLATFORM},
    {"tag", required_argument, NULL, 't'},
    {"push", no_argument, NULL, O_PUSH},
    {"file", required_argument, NULL, 'f'},
    {"build-arg", required_argument, NULL, O_BUILD_ARG},
    {"target", required_argument, NULL, O_TARGET},
    {"progress", required_argument, NULL, O_PROGRESS},
    {"metadata-file", required_argument, NULL, O_METADATA},
    {"insecure-registry", required_argument, NULL, O_INSECURE},
    {"no-fail-fast", no_argument, NULL, O_NO_FAIL_FAST},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"probe-timeout", required_argument, NULL, O_PROBE_TIMEOUT},
    {"retries", required_argument, NULL, O_RETRIES},
    {"retry-on-build-failure", no_argument, NULL, O_RETRY_BUILD},
    {"node-selector", required_argument, NULL, O_SELECTOR},
    {"heartbeat-interval", required_argument, NULL, O_HEARTBEAT},
    {"liveness", required_argument, NULL, O_LIVENESS},
    {"quiet", no_argument, NULL, 'q'},
    {"manifest-format", required_argument, NULL, O_MANIFEST_FORMAT},
    {"annotation", required_argument, NULL, O_ANNOTATION},
    {"compression", required_argument, NULL, O_COMPRESSION},
    {"no-cache", no_argument, NULL, O_NO_CACHE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The numeric options: bounds in one table. */
static int s_number_option(af_build_opts_t *o, int c, const char *arg)
{
    static const struct {
        int opt;
        const char *name;
        long lo, hi;
    } t[] = {
        {O_TIMEOUT, "--timeout", 1, 7 * 24 * 3600},
        {O_PROBE_TIMEOUT, "--probe-timeout", 1, 600000},
        {O_RETRIES, "--retries", 0, AF_MAX_RETRIES},
        {O_HEARTBEAT, "--heartbeat-interval", AF_MIN_HEARTBEAT_MS, AF_MAX_HEARTBEAT_MS},
        {O_LIVENESS, "--liveness", 1, AF_MAX_LIVENESS},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].opt != c)
            continue;
        long v = 0;
        int rc = s_uint("build", t[i].name, arg, t[i].lo, t[i].hi, &v);
        if (rc)
            return rc;
        switch (c) {
        case O_TIMEOUT:
            o->timeout_s = (uint32_t)v;
            break;
        case O_PROBE_TIMEOUT:
            o->probe_timeout_ms = (int)v;
            break;
        case O_RETRIES:
            o->retries = (uint32_t)v;
            break;
        case O_HEARTBEAT:
            o->heartbeat_ms = (uint32_t)v;
            break;
        default:
            o->liveness = (uint32_t)v;
            break;
        }
        return -1;
    }
    return -2; /* not a numeric option */
}

/* Applies option C with argument ARG (getopt's optarg, borrowed). -1 to go on, else an exit status
 * (0 after --help).
 * Long (88 lines) because it is one flat switch with a case per option
 * of `archfarm build`, each a few lines; splitting it would scatter the
 * option table. */
static int s_option(af_build_opts_t *o, int c, char *arg, bool *quiet)
{
    int rc = s_number_option(o, c, arg);
    if (rc != -2)
        return rc;
    af_err_t err = {0};
    switch (c) {
    case O_PLATFORM:
        if ((rc = s_add_platforms(o, arg)))
            return rc;
        break;
    case 't':
        if ((rc = s_add_tag(o, arg)))
            return rc;
        break;
    case O_PUSH:
        o->push = true;
        break;
    case 'f':
        o->file = arg;
        break;
    case O_BUILD_ARG:
        if ((rc = s_add_build_arg(o, arg)))
            return rc;
        break;
    case O_TARGET:
        if (!*arg || strlen(arg) > AF_MAX_NAME)
            return af_cli_usage_error("build",
                                      "--target needs a stage name (at most %d "
                                      "characters)",
                                      AF_MAX_NAME);
        o->target = arg;
        break;
    case O_PROGRESS:
        if (af_progress_mode_parse(arg, &o->progress))
            return af_cli_usage_error(
                "build", "--progress must be auto, plain, tty, gha or json, not '%s'", arg);
        break;
    case O_METADATA:
        if (!*arg)
            return af_cli_usage_error("build", "--metadata-file needs a file name");
        o->metadata_file = arg;
        break;
    case O_INSECURE:
        if (af_insecure_add(&o->insecure, arg, &err))
            return af_cli_usage_error("build", "%s", af_err_msg(&err, AF_ERR_INVAL));
        break;
    case O_NO_CACHE:
        o->no_cache = true;
        break;
    case O_NO_FAIL_FAST:
        o->fail_fast = false;
        break;
    case O_RETRY_BUILD:
        o->retry_on_build_failure = true;
        break;
    case O_SELECTOR:
        if ((rc = s_add_selector(o, arg)))
            return rc;
        break;
    case O_MANIFEST_FORMAT:
        if (strcmp(arg, "oci") && strcmp(arg, "docker"))
            return af_cli_usage_error("build", "--manifest-format must be oci or docker, not '%s'",
                                      arg);
        o->docker_format = !strcmp(arg, "docker");
        break;
    case O_ANNOTATION:
        if ((rc = s_add_annotation(o, arg)))
            return rc;
        break;
    case O_COMPRESSION: {
        af_compress_algo_t algo;
        if (af_compress_parse(arg, &algo, &o->compression_level, &err))
            return af_cli_usage_error("build", "--compression: %s", af_err_msg(&err, AF_ERR_INVAL));
        o->compression = af_compress_name(algo);
        break;
    }
    case 'q':
        *quiet = true;
        break;
    case 'h':
        fputs(s_help, stdout);
        return AF_EXIT_OK;
    default:
        return af_cli_usage_error("build", "invalid option (see above)");
    }
    return -1;
}

/* After the options: the context, and what needs several options at once. */
static int s_check(af_build_opts_t *o, int argc, char **argv, bool quiet)
{
    if (quiet)
        o->progress = AF_PROGRESS_QUIET;
    if (o->docker_format && o->compression && !strcmp(o->compression, "zstd"))
        return af_cli_usage_error("build", "--compression zstd: Docker v2 manifests have no zstd "
                                           "layer type (use --manifest-format oci)");
    if (o->docker_format && (o->n_index_annots || o->n_manifest_annots))
        return af_cli_usage_error("build", "--annotation: Docker manifests and lists carry no "
                                           "annotations (use --manifest-format oci)");
    if (optind >= argc)
        return af_cli_usage_error("build", "missing CONTEXT (the directory to build, e.g. '.')");
    if (argc - optind > 1)
        return af_cli_usage_error("build", "only one CONTEXT allowed, got '%s' and '%s'",
                                  argv[optind], argv[optind + 1]);
    o->context = argv[optind];
    struct stat st;
    if (stat(o->context, &st) || !S_ISDIR(st.st_mode))
        return af_cli_usage_error("build", "context '%s' is not a directory", o->context);
    char why[300];
    if (o->metadata_file && s_metadata_writable(o->metadata_file, why, sizeof why) < 0)
        return af_cli_usage_error("build", "--metadata-file %s: %s", o->metadata_file, why);

    if (!o->platforms_given) {
        if (af_platform_host(&o->platforms[0]))
            return af_cli_usage_error("build", "cannot tell this host's platform: use --platform");
        o->n_platforms = 1;
    }
    if (o->n_tags == 0)
        return af_cli_usage_error("build", o->push
                                               ? "--push needs at least one -t REF"
                                               : "give -t REF: slices are pushed by digest to its "
                                                 "repository even without --push");
    for (size_t i = 1; i < o->n_tags; i++) {
        if (strcmp(o->tags[i].registry, o->tags[0].registry) ||
            strcmp(o->tags[i].repository, o->tags[0].repository))
            return af_cli_usage_error("build",
                                      "-t %s and -t %s are in different repositories: all tags "
                                      "must share one registry/repository (copying between "
                                      "repositories is not supported yet)",
                                      o->tag_args[0], o->tag_args[i]);
    }
    return -1;
}

static int s_parse(af_build_opts_t *o, int argc, char **argv)
{
    int c, rc;
    bool quiet = false;
    if ((rc = s_env_defaults(o)) >= 0)
        return rc;
    optind = 0;
    argv[0] = "archfarm build";
    while ((c = getopt_long(argc, argv, "t:f:qh", s_longopts, NULL)) != -1)
        if ((rc = s_option(o, c, optarg, &quiet)) >= 0)
            return rc;
    return s_check(o, argc, argv, quiet);
}

int af_cmd_build(const af_cli_t *cli, int argc, char **argv)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    if (!o) {
        af_cli_error("out of memory");
        return AF_EXIT_INFRA;
    }
    o->fail_fast = true;
    o->probe_timeout_ms = AF_PROBE_TIMEOUT_MS;
    o->heartbeat_ms = AF_HEARTBEAT_MS;
    o->liveness = AF_LIVENESS;
    o->retries = AF_DEFAULT_RETRIES;
    int rc = s_parse(o, argc, argv);
    if (rc < 0)
        rc = af_build_run(cli, o);
    for (size_t i = 0; i < o->n_build_args; i++)
        free(o->build_arg_keys[i]);
    for (size_t i = 0; i < o->n_selectors; i++)
        free(o->selector_keys[i]);
    free(o);
    return rc;
}
