/* cmd_imagetools.c -- `archfarm imagetools inspect [--raw] REF`: what a
 * registry holds under a reference, like `docker buildx imagetools
 * inspect`: an index with its per-platform manifests, or one manifest with
 * its config's platform and layers; --raw prints the exact bytes the
 * registry served. And `imagetools create -t REF SOURCE...`: an index over
 * existing manifests/indexes, PUT to the tags. Sources in another
 * repository are brought into the target's first: blobs mounted (same
 * registry) or copied through a temp file (another registry, memory flat),
 * then each manifest PUT by digest with its exact bytes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "digest.h"
#include "image.h"
#include "oci.h"
#include "ref.h"
#include "registry.h"

static const char s_help[] =
    "Usage: archfarm imagetools inspect [--raw] [--insecure-registry HOST[:PORT]]... REF\n"
    "       (see also 'archfarm imagetools create --help')\n"
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

static const char s_create_help[] =
    "Usage: archfarm imagetools create [--dry-run] [--insecure-registry HOST[:PORT]]...\n"
    "                                  -t REF [-t REF]... SOURCE...\n"
    "\n"
    "Creates a multi-platform image index from existing images (like 'docker\n"
    "buildx imagetools create') and PUTs it to every -t tag. Each SOURCE is a\n"
    "reference to a single-platform manifest (its platform is read from its\n"
    "image config) or to an index (all its entries are taken); two entries for\n"
    "one platform are refused. Every tag must be in one repository; a source\n"
    "in another repository is brought into it first: its blobs are mounted\n"
    "(same registry) or copied (another registry, streamed through a temp\n"
    "file), then its manifests are PUT by digest with their exact bytes.\n"
    "\n"
    "Options:\n"
    "  -t, --tag REF          tag to write (repeatable, required unless --dry-run)\n"
    "  --append               add to the index the first -t points at; its entries\n"
    "                         for a platform a SOURCE brings are replaced\n"
    "  --annotation [index:]KEY=VALUE\n"
    "                         an annotation on the index (repeatable)\n"
    "  --manifest-format oci|docker\n"
    "                         an OCI image index (default) or a Docker manifest\n"
    "                         list v2 (every source must then be Docker v2)\n"
    "  --dry-run              print the index JSON on stdout, write nothing\n"
    "  --insecure-registry HOST[:PORT]\n"
    "                         plain HTTP or unverified TLS for this registry\n"
    "                         (127.0.0.0/8, ::1 and localhost always)\n"
    "  -h, --help             this help\n"
    "\n"
    "Prints the index digest on stdout.\n"
    "\n"
    "Exit status: 0 written, 1 a source is missing or not usable, 2 usage error,\n"
    "3 registry unreachable or refusing us.\n"
    "\n"
    "Examples:\n"
    "  archfarm imagetools create -t localhost:5000/app:1.0 \\\n"
    "      localhost:5000/app:amd64 localhost:5000/app@sha256:...\n"
    "  archfarm imagetools create -t reg:5000/app:1.0 reg:5000/a:amd64 other:5000/b:arm64\n";

static void s_print_platform(const af_platform_t *p)
{
    char buf[AF_PLATFORM_STR_MAX];
    printf("%s\n", af_platform_format(p, buf, sizeof buf));
}

/* Prints IMG (an index with its entries, or a manifest with its platform
 * and layers) as `imagetools inspect` shows it. */
static void s_print_image(const af_ref_t *shown, const char *name, const af_image_t *img)
{
    const af_oci_doc_t *doc = img->doc;
    printf("Name:      %s\n", name);
    printf("MediaType: %s\n", doc->media_type);
    printf("Digest:    %s\n", img->digest);
    if (doc->is_index) {
        char base[AF_MAX_REF + 400];
        af_ref_t b = *shown;
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
        return;
    }
    if (img->has_platform) {
        printf("Platform:  ");
        s_print_platform(&img->platform);
    }
    printf("Config:    %s\n", doc->config.digest);
    printf("\nLayers:\n");
    for (size_t i = 0; i < doc->n_layers; i++)
        printf("  %s  %lld bytes  %s\n", doc->layers[i].digest, (long long)doc->layers[i].size,
               doc->layers[i].media_type);
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
    af_image_t img;
    int rc = af_image_get(reg, ref->repository, af_ref_reference(&shown), NULL,
                          raw ? AF_IMAGE_RAW : AF_IMAGE_CONFIG, &img, &err);
    if (rc && img.failed == AF_IMAGE_STEP_FETCH) {
        if (rc == AF_ERR_NOTFOUND)
            af_cli_error("%s: not found (%s)", name, af_err_msg(&err, rc));
        else
            af_cli_error("%s: %s", name, af_err_msg(&err, rc));
        rc = rc == AF_ERR_NOTFOUND ? AF_EXIT_FAILED : af_cli_registry_exit(rc);
    } else if (rc && img.failed == AF_IMAGE_STEP_PARSE) {
        af_cli_error("%s: %s", name, af_err_msg(&err, AF_ERR_PARSE));
        rc = AF_EXIT_FAILED;
    } else if (rc && img.failed == AF_IMAGE_STEP_CONFIG) {
        af_cli_error("%s: config %s: %s", name, img.doc->config.digest, af_err_msg(&err, rc));
        rc = rc == AF_ERR_NOTFOUND ? AF_EXIT_FAILED : af_cli_registry_exit(rc);
    } else if (raw) {
        fwrite(img.body, 1, img.len, stdout);
        fflush(stdout);
        rc = AF_EXIT_OK;
    } else { /* a config without a platform still shows the rest */
        s_print_image(&shown, name, &img);
        rc = AF_EXIT_OK;
    }
    af_image_release(&img);
    af_registry_destroy(&reg);
    return rc;
}

/* Where a source's content goes when it is not in the target repository. */
typedef struct {
    af_registry_t *src, *dst; /* borrowed; the same client for one registry */
    const char *src_repo, *dst_repo;
    const char *arg; /* the SOURCE argument, for messages */
} s_copy_t;

/* Brings blob B into the target: nothing when it is there, a mount on one
 * registry, else download to a temp file and upload (memory flat). */
static int s_copy_blob(const s_copy_t *c, const af_descriptor_t *b, af_err_t *err)
{
    bool exists = false;
    int rc = af_registry_blob_exists(c->dst, c->dst_repo, b->digest, &exists, err);
    if (rc || exists)
        return rc;
    if (c->src == c->dst) {
        bool mounted = false;
        rc = af_registry_blob_mount(c->dst, c->dst_repo, b->digest, c->src_repo, &mounted, err);
        if (rc || mounted)
            return rc;
    }
    const char *tmpdir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/archfarm-blob-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return af_err_set(err, AF_ERR_IO, "cannot create a temp file for %s: %s", b->digest,
                          strerror(errno));
    close(fd);
    rc = af_registry_blob_fetch(c->src, c->src_repo, b->digest, path, (uint64_t)b->size, err);
    if (!rc)
        rc = af_registry_blob_push(c->dst, c->dst_repo, b->digest, path, (uint64_t)b->size, NULL,
                                   NULL, NULL, err);
    unlink(path);
    return rc;
}

/* Brings the manifest BODY (DIGEST, media type MT) and everything it
 * references into the target: blobs first, then the children of an
 * index, then BODY itself PUT by digest. DEPTH guards nesting. */
static int s_copy_manifest(const s_copy_t *c, const char *body, size_t len, const char *mt,
                           const char *digest, int depth, af_err_t *err)
{
    af_oci_doc_t *doc = af_oci_doc_parse(body, len, mt, err);
    if (!doc)
        return err ? err->code : AF_ERR_PARSE;
    int rc = 0;
    if (doc->is_index) {
        for (size_t i = 0; i < doc->n_manifests && !rc; i++) {
            char *cb = NULL, *cmt = NULL, cd[AF_DIGEST_STR_MAX];
            size_t clen = 0;
            if (depth > 0) {
                rc = af_err_set(err, AF_ERR_UNSUPPORTED, "%s: nested indexes", c->arg);
                break;
            }
            rc = af_registry_manifest_get(c->src, c->src_repo, doc->manifests[i].digest, &cb, &clen,
                                          &cmt, cd, err);
            if (!rc)
                rc = s_copy_manifest(c, cb, clen, cmt, cd, depth + 1, err);
            free(cb);
            free(cmt);
        }
    } else {
        rc = s_copy_blob(c, &doc->config, err);
        for (size_t i = 0; i < doc->n_layers && !rc; i++)
            rc = s_copy_blob(c, &doc->layers[i], err);
    }
    if (!rc)
        rc = af_registry_manifest_put(c->dst, c->dst_repo, digest, doc->media_type, body, len, NULL,
                                      err);
    af_oci_doc_destroy(&doc);
    return rc;
}

/* Appends IMG's entries (an index's, or the manifest itself with its
 * config's platform) to *d, grown as needed. An exit status. */
static int s_append_entries(const af_image_t *img, const char *arg, af_descriptor_t **d, size_t *n,
                            size_t *cap)
{
    const af_oci_doc_t *doc = img->doc;
    size_t add = doc->is_index ? doc->n_manifests : 1;
    if (*n + add > AF_MAX_LIST * 4) {
        af_cli_error("too many manifests for one index");
        return AF_EXIT_USAGE;
    }
    if (*n + add > *cap) {
        size_t ncap = (*n + add) * 2;
        af_descriptor_t *nd = realloc(*d, ncap * sizeof *nd);
        if (!nd)
            return AF_EXIT_INFRA;
        *d = nd;
        *cap = ncap;
    }
    if (doc->is_index) {
        for (size_t i = 0; i < doc->n_manifests; i++) {
            if (!doc->manifests[i].has_platform) {
                af_cli_error("%s: entry %s has no platform", arg, doc->manifests[i].digest);
                return AF_EXIT_FAILED;
            }
            (*d)[(*n)++] = doc->manifests[i];
        }
        return AF_EXIT_OK;
    }
    af_descriptor_t *e = &(*d)[(*n)++];
    memset(e, 0, sizeof *e);
    e->platform = img->platform;
    e->has_platform = true;
    snprintf(e->media_type, sizeof e->media_type, "%s", doc->media_type);
    snprintf(e->digest, sizeof e->digest, "%s", img->digest);
    e->size = (int64_t)img->len;
    return AF_EXIT_OK;
}

/* Appends the entries SRC contributes to *d (grown as needed); with COPY
 * (NULL when SRC is in the target repository) brings them in first. */
static int s_collect(af_registry_t *reg, const af_ref_t *src, const char *arg, const s_copy_t *copy,
                     af_descriptor_t **d, size_t *n, size_t *cap)
{
    af_err_t err = {0};
    af_image_t img;
    int rc = af_image_get(reg, src->repository, af_ref_reference(src), NULL, AF_IMAGE_CONFIG, &img,
                          &err);
    if (rc) {
        if (img.failed == AF_IMAGE_STEP_CONFIG)
            af_cli_error("%s: config %s: %s", arg, img.doc->config.digest, af_err_msg(&err, rc));
        else
            af_cli_error("%s: %s", arg, af_err_msg(&err, rc));
        bool theirs = img.failed == AF_IMAGE_STEP_PARSE || img.failed == AF_IMAGE_STEP_PLATFORM ||
                      rc == AF_ERR_NOTFOUND;
        rc = theirs ? AF_EXIT_FAILED : af_cli_registry_exit(rc);
        goto out;
    }
    if (copy) {
        fprintf(stderr, "copying %s into %s\n", arg, copy->dst_repo);
        rc = s_copy_manifest(copy, img.body, img.len, img.content_type, img.digest, 0, &err);
        if (rc) {
            af_cli_error("copying %s: %s", arg, af_err_msg(&err, rc));
            rc = rc == AF_ERR_NOTFOUND || rc == AF_ERR_PARSE || rc == AF_ERR_UNSUPPORTED
                     ? AF_EXIT_FAILED
                     : af_cli_registry_exit(rc);
            goto out;
        }
    }
    rc = s_append_entries(&img, arg, d, n, cap);
out:
    af_image_release(&img);
    return rc;
}

/* `imagetools create`'s request. Strings are borrowed from argv. */
typedef struct {
    af_ref_t tags[AF_MAX_LIST];
    size_t n_tags;
    af_kv_t annots[AF_MAX_LIST];
    size_t n_annots;
    af_ref_t srcs[AF_MAX_LIST];
    const char *src_args[AF_MAX_LIST];
    size_t n_src;
    bool append, docker, dry;
    af_insecure_t insecure;
    const af_ref_t *base; /* where the index goes: the first -t, else the first source */
} s_create_t;

static const char s_create_cmd[] = "imagetools create";

/* --annotation in buildx's forms: KEY=VALUE or index:KEY=VALUE (ARG is
 * split in place). -1 to go on, else an exit status. */
static int s_create_annotation(s_create_t *r, char *arg)
{
    char *a = arg;
    if (!strncmp(a, "index:", 6))
        a += 6;
    char *eq = strchr(a, '=');
    if (!eq || eq == a)
        return af_cli_usage_error(s_create_cmd, "--annotation '%s': expected [index:]KEY=VALUE",
                                  arg);
    /* manifest:, manifest-descriptor:, index-descriptor:, index[P]: */
    if (a == arg && strcspn(a, ":[") < (size_t)(eq - a))
        return af_cli_usage_error(s_create_cmd,
                                  "--annotation '%s': imagetools create annotates the "
                                  "index only (KEY=VALUE or index:KEY=VALUE)",
                                  arg);
    if (r->n_annots >= AF_MAX_LIST)
        return af_cli_usage_error(s_create_cmd, "too many --annotation");
    *eq = '\0';
    r->annots[r->n_annots++] = (af_kv_t){a, eq + 1};
    return -1;
}

/* One option. -1 to go on, else an exit status (0 after --help). */
static int s_create_option(s_create_t *r, int c, char *arg)
{
    af_err_t err = {0};
    switch (c) {
    case 't':
        if (r->n_tags >= AF_MAX_LIST)
            return af_cli_usage_error(s_create_cmd, "too many -t");
        if (af_ref_parse(arg, &r->tags[r->n_tags], &err))
            return af_cli_usage_error(s_create_cmd, "-t '%s': %s", arg,
                                      af_err_msg(&err, AF_ERR_INVAL));
        if (r->tags[r->n_tags].digest[0])
            return af_cli_usage_error(s_create_cmd, "-t '%s': a tag cannot contain a digest", arg);
        r->n_tags++;
        return -1;
    case 'n':
        r->dry = true;
        return -1;
    case 'a':
        r->append = true;
        return -1;
    case 'F':
        if (strcmp(arg, "oci") && strcmp(arg, "docker"))
            return af_cli_usage_error(s_create_cmd,
                                      "--manifest-format '%s': expected oci or docker", arg);
        r->docker = !strcmp(arg, "docker");
        return -1;
    case 'A':
        return s_create_annotation(r, arg);
    case 'I':
        if (af_insecure_add(&r->insecure, arg, &err))
            return af_cli_usage_error(s_create_cmd, "%s", af_err_msg(&err, AF_ERR_INVAL));
        return -1;
    case 'h':
        fputs(s_create_help, stdout);
        return AF_EXIT_OK;
    default:
        return af_cli_usage_error(s_create_cmd, "invalid option");
    }
}

/* The command line into R. -1 to go on, else an exit status. */
static int s_create_parse(s_create_t *r, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tag", required_argument, NULL, 't'},
        {"dry-run", no_argument, NULL, 'n'},
        {"insecure-registry", required_argument, NULL, 'I'},
        {"append", no_argument, NULL, 'a'},
        {"annotation", required_argument, NULL, 'A'},
        {"manifest-format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    af_err_t err = {0};
    int c, rc;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:h", longopts, NULL)) != -1)
        if ((rc = s_create_option(r, c, optarg)) >= 0)
            return rc;
    if (optind >= argc)
        return af_cli_usage_error(s_create_cmd, "missing SOURCE");
    if (!r->n_tags && !r->dry)
        return af_cli_usage_error(s_create_cmd, "give -t REF (or --dry-run)");
    r->n_src = (size_t)(argc - optind);
    if (r->n_src > AF_MAX_LIST)
        return af_cli_usage_error(s_create_cmd, "too many sources");
    for (size_t i = 0; i < r->n_src; i++) {
        r->src_args[i] = argv[optind + i];
        if (af_ref_parse(r->src_args[i], &r->srcs[i], &err))
            return af_cli_usage_error(s_create_cmd, "'%s': %s", r->src_args[i],
                                      af_err_msg(&err, AF_ERR_INVAL));
    }
    r->base = r->n_tags ? &r->tags[0] : &r->srcs[0];
    for (size_t i = 0; i < r->n_tags; i++)
        if (strcmp(r->tags[i].registry, r->base->registry) ||
            strcmp(r->tags[i].repository, r->base->repository))
            return af_cli_usage_error(s_create_cmd, "every -t must be in %s/%s", r->base->registry,
                                      r->base->repository);
    if (r->docker && r->n_annots)
        return af_cli_usage_error(s_create_cmd,
                                  "--annotation: a Docker manifest list has no annotations "
                                  "(use --manifest-format oci)");
    if (r->append && !r->n_tags)
        return af_cli_usage_error(s_create_cmd, "--append needs -t REF (the index to add to)");
    return -1;
}

/* --append: the entries of the index the first tag points at (none when
 * it does not exist yet). An exit status. */
static int s_create_old(const s_create_t *r, af_registry_t *reg, af_descriptor_t **d, size_t *n,
                        size_t *cap)
{
    af_ref_t old = r->tags[0];
    if (!old.tag[0])
        snprintf(old.tag, sizeof old.tag, "latest");
    af_err_t err = {0};
    af_image_t img;
    int rc = af_image_get(reg, old.repository, old.tag, NULL, AF_IMAGE_RAW, &img, &err);
    if (rc == AF_ERR_NOTFOUND) {
        rc = AF_EXIT_OK; /* nothing to append to: a new index */
    } else if (rc) {
        af_cli_error("--append: %s: %s", old.tag, af_err_msg(&err, rc));
        rc = af_cli_registry_exit(rc);
    } else if (img.content_type && !af_oci_is_index(img.content_type)) {
        af_cli_error("--append: %s/%s:%s is a single manifest, not an index", old.registry,
                     old.repository, old.tag);
        rc = AF_EXIT_FAILED;
    } else {
        rc = s_collect(reg, &old, "--append", NULL, d, n, cap);
    }
    af_image_release(&img);
    return rc;
}

/* Every source's entries, copied into the target repository first when
 * they live elsewhere (not with --dry-run). An exit status. */
static int s_create_sources(const s_create_t *r, af_registry_t *reg, af_descriptor_t **d, size_t *n,
                            size_t *cap)
{
    int rc = AF_EXIT_OK;
    for (size_t i = 0; i < r->n_src && !rc; i++) {
        af_err_t err = {0};
        bool same_reg = !strcmp(r->srcs[i].registry, r->base->registry);
        af_registry_t *sreg =
            same_reg ? reg : af_cli_registry_open(r->srcs[i].registry, &r->insecure, &err);
        if (!sreg) {
            af_cli_error("%s: %s", r->src_args[i], af_err_msg(&err, AF_ERR_INVAL));
            return AF_EXIT_INFRA;
        }
        s_copy_t copy = {sreg, reg, r->srcs[i].repository, r->base->repository, r->src_args[i]};
        bool elsewhere = !same_reg || strcmp(r->srcs[i].repository, r->base->repository);
        rc = s_collect(sreg, &r->srcs[i], r->src_args[i], elsewhere && !r->dry ? &copy : NULL, d, n,
                       cap);
        if (!same_reg)
            af_registry_destroy(&sreg);
    }
    return rc;
}

/* The entries of the new index, in D[0..*N): a platform a source brings
 * replaces the old entries (the first N_OLD) for it, the same manifest
 * twice is kept once, two manifests for one platform are an error. */
static int s_create_merge(af_descriptor_t *d, size_t *np, size_t n_old)
{
    size_t n = *np;
    for (size_t i = 0; i < n_old; i++) {
        bool replaced = false;
        for (size_t k = n_old; k < n && !replaced; k++)
            replaced = af_platform_equal(&d[i].platform, &d[k].platform);
        if (replaced) {
            memmove(&d[i], &d[i + 1], (n - i - 1) * sizeof *d);
            n--;
            n_old--;
            i--;
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = i + 1; k < n; k++) {
            if (!strcmp(d[i].digest, d[k].digest)) { /* the same manifest twice: keep one */
                memmove(&d[k], &d[k + 1], (n - k - 1) * sizeof *d);
                n--;
                k--;
                continue;
            }
            if (af_platform_equal(&d[i].platform, &d[k].platform)) {
                char p[AF_PLATFORM_STR_MAX];
                af_cli_error("two manifests for %s (%s and %s)",
                             af_platform_format(&d[i].platform, p, sizeof p), d[i].digest,
                             d[k].digest);
                *np = n;
                return AF_EXIT_FAILED;
            }
        }
    *np = n;
    return AF_EXIT_OK;
}

/* Builds the index over D and prints it (--dry-run) or PUTs it to every
 * tag. An exit status. */
static int s_create_publish(const s_create_t *r, af_registry_t *reg, const af_descriptor_t *d,
                            size_t n)
{
    af_err_t err = {0};
    size_t len = 0;
    char digest[AF_DIGEST_STR_MAX];
    const char *index_mt = r->docker ? AF_MT_DOCKER_LIST : AF_MT_OCI_INDEX;
    char *body = r->docker ? af_oci_docker_list_build(d, n, &len, &err)
                           : af_oci_index_build(d, n, r->n_annots ? r->annots : NULL, r->n_annots,
                                                &len, &err);
    int rc = AF_EXIT_OK;
    if (!body || af_digest_buffer(body, len, digest)) {
        af_cli_error("cannot build the index: %s", af_err_msg(&err, AF_ERR_INVAL));
        rc = AF_EXIT_FAILED;
    } else if (r->dry) {
        fwrite(body, 1, len, stdout);
        fputc('\n', stdout);
    } else {
        const af_ref_t *b = r->base;
        for (size_t i = 0; i < r->n_tags && !rc; i++) {
            const char *tag = r->tags[i].tag[0] ? r->tags[i].tag : "latest";
            int prc =
                af_registry_manifest_put(reg, b->repository, tag, index_mt, body, len, NULL, &err);
            if (prc) {
                af_cli_error("tagging %s/%s:%s: %s%s", b->registry, b->repository, tag,
                             af_err_msg(&err, prc),
                             i ? " (the tags before it already point at the new index)" : "");
                rc = af_cli_registry_exit(prc);
            } else {
                fprintf(stderr, "%s/%s:%s -> %s\n", b->registry, b->repository, tag, digest);
            }
        }
        if (!rc)
            printf("%s\n", digest);
    }
    free(body);
    return rc;
}

static int s_create(int argc, char **argv)
{
    s_create_t *r = calloc(1, sizeof *r); /* large: not on the stack */
    if (!r)
        return AF_EXIT_INFRA;
    int rc = s_create_parse(r, argc, argv);
    if (rc >= 0) {
        free(r);
        return rc;
    }
    af_err_t err = {0};
    af_registry_t *reg = af_cli_registry_open(r->base->registry, &r->insecure, &err);
    if (!reg) {
        af_cli_error("%s", af_err_msg(&err, AF_ERR_INVAL));
        free(r);
        return AF_EXIT_INFRA;
    }
    af_descriptor_t *d = NULL;
    size_t n = 0, cap = 0, n_old = 0;
    rc = r->append ? s_create_old(r, reg, &d, &n, &cap) : AF_EXIT_OK;
    n_old = n;
    if (!rc)
        rc = s_create_sources(r, reg, &d, &n, &cap);
    if (!rc)
        rc = s_create_merge(d, &n, n_old);
    if (!rc)
        rc = s_create_publish(r, reg, d, n);
    free(d);
    af_registry_destroy(&reg);
    free(r);
    return rc;
}

int af_cmd_imagetools(const af_cli_t *cli, int argc, char **argv)
{
    if (argc < 2)
        return af_cli_usage_error("imagetools", "missing subcommand (inspect or create)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(s_help, stdout);
        return AF_EXIT_OK;
    }
    if (!strcmp(argv[1], "create")) {
        argv[1] = "archfarm imagetools create";
        return s_create(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "inspect"))
        return af_cli_usage_error("imagetools", "unknown subcommand '%s' (inspect or create)",
                                  argv[1]);
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
