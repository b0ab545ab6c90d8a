/* slicecache.h -- a native slice that was built before is not built again.
 *
 * Native recipes are reproducible: the same inputs give a bit-identical
 * manifest. The key of a slice is the sha256 of a canonical text naming
 * every input that determines its output: the context's digest, the
 * recipe's kind and path, the platform, the build args (sorted), the base
 * image resolved to the digest of its manifest for that platform (or
 * "scratch"), SOURCE_DATE_EPOCH, the manifest format and annotations, the
 * layer compression and level, and the archfarm version (the native
 * executor is part of the agent). A successful, verified slice of a
 * `--push` build is recorded in its own repository under the tag
 * "archfarm-cache-<64 hex of the key>" (the manifest the agent pushed,
 * PUT once more under that tag). A later build computes the key first; when
 * the tag exists and names a single-platform manifest for the slice's
 * platform, the slice is not dispatched: its manifest is verified like any
 * other and goes into the index. `--no-cache` skips the lookup. Engines
 * with their own cache (Dockerfile recipes) are not keyed here. */
#ifndef AF_COORD_SLICECACHE_H
#define AF_COORD_SLICECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "build.h"
#include "registry.h"

#define AF_SLICECACHE_TAG_PREFIX "archfarm-cache-"
#define AF_SLICECACHE_TAG_MAX (sizeof AF_SLICECACHE_TAG_PREFIX + 64)

/* The key of a native slice of SPEC for platform P, sent the context
 * CONTEXT_DIGEST, whose base image resolved to BASE ("scratch" or a
 * digest). KEY gets "sha256:<hex>". */
int af_slicecache_key(const af_build_spec_t *spec, const char *context_digest,
                      const af_platform_t *p, const char *base, char key[AF_DIGEST_STR_MAX]);

/* KEY's tag into TAG (AF_SLICECACHE_TAG_MAX bytes). */
void af_slicecache_tag(const char *key, char tag[AF_SLICECACHE_TAG_MAX]);

/* Looks KEY up in REPO: 0 with the manifest's DIGEST, MEDIA_TYPE (size
 * AF_MAX_NAME + 1) and SIZE when its tag names a single-platform manifest
 * for P; AF_ERR_NOTFOUND when it is not cached; another error (a miss to
 * the caller) with err set. */
int af_slicecache_find(af_registry_t *reg, const char *repo, const char *key,
                       const af_platform_t *p, char digest[AF_DIGEST_STR_MAX], char *media_type,
                       uint64_t *size, af_err_t *err);

/* Records the manifest DIGEST of REPO under KEY's tag. 0 or an error. */
int af_slicecache_record(af_registry_t *reg, const char *repo, const char *key, const char *digest,
                         af_err_t *err);

#endif
