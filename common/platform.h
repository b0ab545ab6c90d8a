/* platform.h -- "os/arch[/variant]" parsing, normalisation and host detection.
 *
 * Follows containerd's platforms.Normalize: x86_64/x86-64 -> amd64,
 * aarch64 -> arm64 (variant v8 dropped), armhf/armv7l/armel/arm -> arm with
 * a variant (arm alone means v7, armel means v6), i386/i686 -> 386. A bare
 * arch ("arm64") means linux. Values are plain structs: no ownership. */
#ifndef AF_PLATFORM_H
#define AF_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "limits.h"

typedef struct {
    char os[AF_PLATFORM_OS_MAX];
    char arch[AF_PLATFORM_ARCH_MAX];
    char variant[AF_PLATFORM_VARIANT_MAX]; /* "" when none */
} af_platform_t;

/* Parses and normalises S into *out. Returns 0, or AF_ERR_INVAL with a
 * message naming S in err. */
int af_platform_parse(const char *s, af_platform_t *out, af_err_t *err)
    __attribute__((warn_unused_result));

/* Writes "os/arch[/variant]" into buf (at least AF_PLATFORM_STR_MAX).
 * Returns buf. Cannot fail. */
char *af_platform_format(const af_platform_t *p, char *buf, size_t len);

/* The host's platform from uname(2). Returns 0 or AF_ERR_UNSUPPORTED. */
int af_platform_host(af_platform_t *out) __attribute__((warn_unused_result));

/* Normalised equality. */
bool af_platform_equal(const af_platform_t *a, const af_platform_t *b);

/* The name uname -m reports for a platform (x86_64, aarch64, armv7l...),
 * for messages and tests. Cannot fail; unknown -> arch. */
const char *af_platform_uname_machine(const af_platform_t *p);

/* Splits a comma list ("linux/amd64,linux/arm64") into out[0..max).
 * Duplicates after normalisation are dropped. Sets *n. Returns 0 or
 * AF_ERR_INVAL (empty list, bad item, more than max). */
int af_platform_parse_list(const char *list, af_platform_t *out, size_t max, size_t *n,
                           af_err_t *err) __attribute__((warn_unused_result));

#endif
