/* cmd_imagetools.c -- `archfarm imagetools inspect [--raw] REF`: what a
 * registry holds under a reference, like `docker buildx imagetools
 * inspect`: an index with its per-platform manifests, or one manifest with
 * its config's platform and layers. --raw prints the exact bytes the
 * registry served. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "oci.h"
#include "ref.h"
#include "registry.h"

static const char s_help[] =
    "Usage: archfarm imagetools inspect [--raw] [--insecure-registry HOST[:PORT]]... REF\n"
    "\n"
    "Shows the manifest or index REF points at in its registry (like 'docker\n"
    "buildx imagetools inspect'). REF is [REGISTRY/]REPOSITORY[:TAG][@DIGEST];\n"
    "without a tag, 'latest'.\n"
    "\n"
    "For an index it prints Name, MediaType, Digest, then every entry of\n"
    "Manifests with its Name (REF@DIGEST), MediaType and Platform. For a single\n"
    "manifest it prints Name, MediaType, Digest, the Platform from its image\n"
    "config, the Config digest and the Layers.\n"
    "\n"
    "Options:\n"
    "  --raw                  print the exact manifest/index bytes from the registry\n"
    "  --insecure-registry HOST[:PORT]\n"
    "                         plain HTTP or unverified TLS for this registry\n"
    "                         (repeatable; 127.0.0.0/8, ::1 and localhost always)\n"
    "  -h, --help             this help\n"
    "\n"
    "Credentials come from $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or\n"
    "~/.docker/config.json.\n"
    "\n"
    "Exit status: 0 shown, 1 not found (or not a valid manifest), 2 usage error,\n"
    "3 registry unreachable or refusing us.\n"
    "\n"
    "Examples:\n"
    "  archfarm imagetools inspect localhost:5000/app:1.0\n"
    "  archfarm imagetools inspect --raw registry.lan:5000/app:1.0 | jq .\n";

static void s_print_platform(const af_platform_t *p)
{
    char buf[AF_PLATFORM_STR_MAX];
    printf("%s\n", af_platform_format(p, buf, sizeof buf));
}

static int s_inspect(const af_ref_t *ref, const af_insecure_t *insecure, bool raw)
{
    af_err_t err = {0};
    char name[AF_MAX_REF + 400];
    af_ref_t shown = *ref;
    if (!shown.tag[0] && !shown.digest[0])
        snprintf(shown.tag, sizeof shown.tag, "latest");
    af_ref_format(&shown, name, sizeof name);

    af_registry_t *reg = af_cli_registry_open(ref->registry, insecure, &err);
    if (!reg) {
        af_cli_error("%s: %s", name, af_err_msg(&err, AF_ERR_INVAL));
        return AF_EXIT_INFRA;
    }
    char *body = NULL, *mt = NULL, *cfg = NULL;
    size_t len = 0, cfg_len = 0;
    char digest[AF_DIGEST_STR_MAX];
    af_oci_doc_t *doc = NULL;
    int rc = af_registry_manifest_get(reg, ref->repository, af_ref_reference(&shown), &body, &len,
                                      &mt, digest, &err);
    if (rc == AF_ERR_NOTFOUND) {
        af_cli_error("%s: not found (%s)", name, af_err_msg(&err, rc));
        rc = AF_EXIT_FAILED;
        goto out;
    }
    if (rc) {
        af_cli_error("%s: %s", name, af_err_msg(&err, rc));
        rc = af_cli_registry_exit(rc);
        goto out;
    }
    if (raw) {
        fwrite(body, 1, len, stdout);
        fflush(stdout);
        rc = AF_EXIT_OK;
        goto out;
    }
    doc = af_oci_doc_parse(body, len, mt, &err);
    if (!doc) {
        af_cli_error("%s: %s", name, af_err_msg(&err, AF_ERR_PARSE));
        rc = AF_EXIT_FAILED;
        goto out;
    }
    printf("Name:      %s\n", name);
    printf("MediaType: %s\n", doc->media_type);
    printf("Digest:    %s\n", digest);
    if (doc->is_index) {
        char base[AF_MAX_REF + 400];
        af_ref_t b = shown;
        b.digest[0] = '\0';
        af_ref_format(&b, base, sizeof base);
        printf("\nManifests:\n");
        for (size_t i = 0; i < doc->n_manifests; i++) {
            const af_descriptor_t *d = &doc->manifests[i];
            if (i)
                printf("\n");
            printf("  Name:      %s@%s\n", base, d->digest);
            printf("  MediaType: %s\n", d->media_type);
            printf("  Size:      %lld\n", (long long)d->size);
            if (d->has_platform) {
                printf("  Platform:  ");
                s_print_platform(&d->platform);
            }
        }
        rc = AF_EXIT_OK;
        goto out;
    }
    rc = af_registry_blob_get(reg, ref->repository, doc->config.digest, AF_CONFIG_MAX_BYTES, &cfg,
                              &cfg_len, &err);
    if (rc) {
        af_cli_error("%s: config %s: %s", name, doc->config.digest, af_err_msg(&err, rc));
        rc = rc == AF_ERR_NOTFOUND ? AF_EXIT_FAILED : af_cli_registry_exit(rc);
        goto out;
    }
    af_platform_t p;
    if (af_oci_config_platform(cfg, cfg_len, &p, &err) == 0) {
        printf("Platform:  ");
        s_print_platform(&p);
    }
    printf("Config:    %s\n", doc->config.digest);
    printf("\nLayers:\n");
    for (size_t i = 0; i < doc->n_layers; i++)
        printf("  %s  %lld bytes  %s\n", doc->layers[i].digest, (long long)doc->layers[i].size,
               doc->layers[i].media_type);
    rc = AF_EXIT_OK;
out:
    af_oci_doc_destroy(&doc);
    free(body);
    free(mt);
    free(cfg);
    af_registry_destroy(&reg);
    return rc;
}

int af_cmd_imagetools(const af_cli_t *cli, int argc, char **argv)
{
    if (argc < 2)
        return af_cli_usage_error("imagetools", "missing subcommand (inspect)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(s_help, stdout);
        return AF_EXIT_OK;
    }
    if (strcmp(argv[1], "inspect"))
        return af_cli_usage_error("imagetools",
                                  "unknown subcommand '%s' (only 'inspect' exists yet)", argv[1]);
    static const struct option longopts[] = {
        {"raw", no_argument, NULL, 'r'},
        {"insecure-registry", required_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "imagetools inspect";
    argv[1] = "archfarm imagetools inspect";
    af_insecure_t insecure = {0};
    bool raw = false;
    af_err_t err = {0};
    int c;
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            raw = true;
            break;
        case 'I':
            if (af_insecure_add(&insecure, optarg, &err))
                return af_cli_usage_error(cmd, "%s", af_err_msg(&err, AF_ERR_INVAL));
            break;
        case 'h':
            fputs(s_help, stdout);
            return AF_EXIT_OK;
        default:
            return af_cli_usage_error(cmd, "invalid option");
        }
    }
    int rest = argc - 1 - optind;
    if (rest < 1)
        return af_cli_usage_error(cmd, "missing REF");
    if (rest > 1)
        return af_cli_usage_error(cmd, "too many arguments");
    const char *arg = argv[1 + optind];
    af_ref_t ref;
    if (af_ref_parse(arg, &ref, &err))
        return af_cli_usage_error(cmd, "'%s': %s", arg, af_err_msg(&err, AF_ERR_INVAL));
    return s_inspect(&ref, &insecure, raw);
}
