/* platform.c -- "os/arch[/variant]" parsing, normalisation and host detection.
 *
 * Everything that names a platform goes through here: the inventory's
 * archfarm_platforms, the CLI's --platform list, the agent's --platform and
 * uname(2) default, and the platform of each BUILD. Normalisation follows
 * containerd's platforms.Normalize so that "aarch64", "arm64" and
 * "linux/arm64/v8" all compare equal to linux/arm64, and "armhf" to
 * linux/arm/v7. Anything it does not recognise is an error with a message
 * that quotes the input, never a guess. */
#include "platform.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

/* Operating systems Go (and so the OCI ecosystem) knows by name. */
static const char *const s_known_os[] = {
    "linux",   "windows", "darwin",  "freebsd", "netbsd", "openbsd", "dragonfly", "solaris",
    "illumos", "aix",     "android", "ios",     "plan9",  "js",      "wasip1",    NULL};

/* Copies up to 64 bytes of S into BUF for a message, replacing anything
 * unprintable so junk input cannot garble a terminal. */
static const char *s_quote(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len && i < 64; i++)
        buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    buf[i] = '\0';
    if (s[i] && i + 4 < len)
        strcpy(buf + i, "...");
    return buf;
}

static bool s_is_known_os(const char *os)
{
    for (size_t i = 0; s_known_os[i]; i++)
        if (!strcmp(os, s_known_os[i]))
            return true;
    return false;
}

/* Maps an architecture alias (and its variant) to containerd's canonical
 * form. Returns false when ARCH is not an architecture we know. On true,
 * *bad_variant is set when VARIANT does not fit the architecture. */
static bool s_normalize_arch(char *arch, size_t arch_len, char *variant, size_t var_len,
                             bool *bad_variant)
{
    *bad_variant = false;
    if (!strcmp(arch, "x86_64") || !strcmp(arch, "x86-64") || !strcmp(arch, "amd64")) {
        snprintf(arch, arch_len, "amd64");
        if (!strcmp(variant, "v1"))
            variant[0] = '\0';
        else if (variant[0] && strcmp(variant, "v2") && strcmp(variant, "v3") &&
                 strcmp(variant, "v4"))
            *bad_variant = true;
        return true;
    }
    if (!strcmp(arch, "aarch64") || !strcmp(arch, "arm64")) {
        snprintf(arch, arch_len, "arm64");
        if (!strcmp(variant, "v8") || !strcmp(variant, "8") || !strcmp(variant, "v8.0")) {
            variant[0] = '\0';
        } else if (variant[0]) {
            /* v8.1 .. v8.9, v9, v9.x as containerd keeps them */
            const char *v = variant;
            if (v[0] != 'v' || (v[1] != '8' && v[1] != '9') ||
                (v[2] && (v[2] != '.' || !isdigit((unsigned char)v[3]) || v[4])))
                *bad_variant = true;
        }
        return true;
    }
    if (!strcmp(arch, "armhf")) {
        snprintf(arch, arch_len, "arm");
        if (variant[0] && strcmp(variant, "v7"))
            *bad_variant = true;
        snprintf(variant, var_len, "v7");
        return true;
    }
    if (!strcmp(arch, "armel")) {
        snprintf(arch, arch_len, "arm");
        if (variant[0] && strcmp(variant, "v6"))
            *bad_variant = true;
        snprintf(variant, var_len, "v6");
        return true;
    }
    /* armv5tel, armv6l, armv7l, armv8l (uname -m) and armv7 */
    if (!strncmp(arch, "armv", 4) && arch[4] >= '5' && arch[4] <= '8') {
        const char *rest = arch + 5;
        if (strcmp(rest, "") && strcmp(rest, "l") && strcmp(rest, "tel") && strcmp(rest, "tejl") &&
            strcmp(rest, "hl"))
            return false;
        char v[3] = {'v', arch[4], '\0'};
        if (variant[0] && strcmp(variant, v))
            *bad_variant = true;
        snprintf(variant, var_len, "%s", v);
        snprintf(arch, arch_len, "arm");
        return true;
    }
    if (!strcmp(arch, "arm")) {
        if (!variant[0] || !strcmp(variant, "7"))
            snprintf(variant, var_len, "v7");
        else if (!strcmp(variant, "5") || !strcmp(variant, "6") || !strcmp(variant, "8")) {
            char v[3] = {'v', variant[0], '\0'};
            snprintf(variant, var_len, "%s", v);
        } else if (strcmp(variant, "v5") && strcmp(variant, "v6") && strcmp(variant, "v7") &&
                   strcmp(variant, "v8"))
            *bad_variant = true;
        return true;
    }
    if (!strcmp(arch, "i386") || !strcmp(arch, "i486") || !strcmp(arch, "i586") ||
        !strcmp(arch, "i686") || !strcmp(arch, "386")) {
        snprintf(arch, arch_len, "386");
        *bad_variant = variant[0] != '\0';
        return true;
    }
    static const char *const plain[] = {"ppc64le", "ppc64",  "s390x",    "riscv64", "mips",
                                        "mipsle",  "mips64", "mips64le", "loong64", NULL};
    for (size_t i = 0; plain[i]; i++) {
        if (!strcmp(arch, plain[i])) {
            *bad_variant = variant[0] != '\0';
            return true;
        }
    }
    return false;
}

/* True when NAME is an architecture (or alias) s_normalize_arch knows. */
static bool s_is_arch(const char *name)
{
    char arch[AF_PLATFORM_STR_MAX + 1], variant[AF_PLATFORM_STR_MAX + 1] = "";
    bool bad;
    snprintf(arch, sizeof arch, "%s", name);
    return s_normalize_arch(arch, sizeof arch, variant, sizeof variant, &bad);
}

/* Lowercases SRC[0..n) into DST (size cap). Returns false when the part is
 * empty, too long or holds characters no platform name has. */
static bool s_copy_part(char *dst, size_t cap, const char *src, size_t n, const char **why)
{
    if (n == 0) {
        *why = "empty component";
        return false;
    }
    if (n >= cap) {
        *why = "component too long";
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.') {
            *why = "unexpected character";
            return false;
        }
        dst[i] = (char)tolower(c);
    }
    dst[n] = '\0';
    return true;
}

int af_platform_parse(const char *s, af_platform_t *out, af_err_t *err)
{
    char q[80];
    if (!s || !*s)
        return af_err_set(err, AF_ERR_INVAL, "invalid platform \"\": empty");
    size_t slen = strnlen(s, AF_PLATFORM_STR_MAX + 1);
    if (slen > AF_PLATFORM_STR_MAX)
        return af_err_set(err, AF_ERR_INVAL, "invalid platform \"%s\": too long",
                          s_quote(s, q, sizeof q));

    /* split on '/' into at most three parts */
    const char *part[4];
    size_t plen[4];
    size_t n = 0;
    const char *p = s;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (n == 3)
            return af_err_set(err, AF_ERR_INVAL,
                              "invalid platform \"%s\": expected os/arch[/variant]",
                              s_quote(s, q, sizeof q));
        part[n] = p;
        plen[n] = slash ? (size_t)(slash - p) : strlen(p);
        n++;
        if (!slash)
            break;
        p = slash + 1;
    }

    char a[3][AF_PLATFORM_STR_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;
        if (!s_copy_part(a[i], sizeof a[i], part[i], plen[i], &why))
            return af_err_set(err, AF_ERR_INVAL, "invalid platform \"%s\": %s",
                              s_quote(s, q, sizeof q), why);
    }

    /* which part is the os? "linux/arm64", "linux/arm/v7" have one; "arm64",
     * "arm/v7" (arch/variant) do not and mean linux */
    const char *os = "linux", *arch, *variant = "";
    if (n == 1) {
        if (s_is_known_os(a[0]))
            return af_err_set(err, AF_ERR_INVAL,
                              "invalid platform \"%s\": an os needs an architecture, e.g. %s/amd64",
                              s_quote(s, q, sizeof q), a[0]);
        arch = a[0];
    } else if (n == 2 && !s_is_known_os(a[0]) && s_is_arch(a[0])) {
        arch = a[0];
        variant = a[1];
    } else {
        os = a[0];
        arch = a[1];
        variant = n == 3 ? a[2] : "";
        if (!s_is_known_os(os))
            return af_err_set(err, AF_ERR_INVAL, "invalid platform \"%s\": unknown os \"%s\"",
                              s_quote(s, q, sizeof q), os);
    }

    char arch_buf[AF_PLATFORM_STR_MAX + 1], var_buf[AF_PLATFORM_STR_MAX + 1];
    snprintf(arch_buf, sizeof arch_buf, "%s", arch);
    snprintf(var_buf, sizeof var_buf, "%s", variant);
    bool bad_variant = false;
    if (!s_normalize_arch(arch_buf, sizeof arch_buf, var_buf, sizeof var_buf, &bad_variant))
        return af_err_set(err, AF_ERR_INVAL, "invalid platform \"%s\": unknown architecture \"%s\"",
                          s_quote(s, q, sizeof q), arch);
    if (bad_variant)
        return af_err_set(err, AF_ERR_INVAL,
                          "invalid platform \"%s\": variant \"%s\" is not valid for %s",
                          s_quote(s, q, sizeof q), variant, arch_buf);
    if (strlen(os) >= sizeof out->os || strlen(arch_buf) >= sizeof out->arch ||
        strlen(var_buf) >= sizeof out->variant)
        return af_err_set(err, AF_ERR_INVAL, "invalid platform \"%s\": component too long",
                          s_quote(s, q, sizeof q));
    memset(out, 0, sizeof *out);
    snprintf(out->os, sizeof out->os, "%s", os);
    snprintf(out->arch, sizeof out->arch, "%s", arch_buf);
    snprintf(out->variant, sizeof out->variant, "%s", var_buf);
    return 0;
}

char *af_platform_format(const af_platform_t *p, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    if (p->variant[0])
        snprintf(buf, len, "%s/%s/%s", p->os, p->arch, p->variant);
    else
        snprintf(buf, len, "%s/%s", p->os, p->arch);
    return buf;
}

int af_platform_host(af_platform_t *out)
{
    struct utsname u;
    if (uname(&u) != 0)
        return AF_ERR_UNSUPPORTED;
    char os[sizeof u.sysname];
    size_t i = 0;
    for (; u.sysname[i] && i + 1 < sizeof os; i++)
        os[i] = (char)tolower((unsigned char)u.sysname[i]);
    os[i] = '\0';
    char spec[AF_PLATFORM_STR_MAX + 1];
    int n = snprintf(spec, sizeof spec, "%s/%s", os, u.machine);
    if (n < 0 || (size_t)n >= sizeof spec)
        return AF_ERR_UNSUPPORTED;
    if (af_platform_parse(spec, out, NULL) != 0)
        return AF_ERR_UNSUPPORTED;
    return 0;
}

bool af_platform_equal(const af_platform_t *a, const af_platform_t *b)
{
    return !strcmp(a->os, b->os) && !strcmp(a->arch, b->arch) && !strcmp(a->variant, b->variant);
}

const char *af_platform_uname_machine(const af_platform_t *p)
{
    if (!strcmp(p->arch, "amd64"))
        return "x86_64";
    if (!strcmp(p->arch, "arm64"))
        return "aarch64";
    if (!strcmp(p->arch, "386"))
        return "i686";
    if (!strcmp(p->arch, "arm")) {
        if (!strcmp(p->variant, "v5"))
            return "armv5tel";
        if (!strcmp(p->variant, "v6"))
            return "armv6l";
        if (!strcmp(p->variant, "v8"))
            return "armv8l";
        return "armv7l";
    }
    return p->arch;
}

int af_platform_parse_list(const char *list, af_platform_t *out, size_t max, size_t *n,
                           af_err_t *err)
{
    *n = 0;
    if (!list)
        return af_err_set(err, AF_ERR_INVAL, "empty platform list");
    size_t count = 0, item = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *b = p;
        while (b < end && isspace((unsigned char)*b))
            b++;
        const char *e = end;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        item++;
        if (b == e) {
            if (!comma && item == 1)
                return af_err_set(err, AF_ERR_INVAL, "empty platform list");
            return af_err_set(err, AF_ERR_INVAL, "platform list \"%.200s\": item %zu is empty",
                              list, item);
        }
        char one[AF_PLATFORM_STR_MAX + 2];
        size_t len = (size_t)(e - b);
        if (len > AF_PLATFORM_STR_MAX)
            len = AF_PLATFORM_STR_MAX + 1; /* af_platform_parse reports "too long" */
        memcpy(one, b, len);
        one[len] = '\0';
        af_platform_t plat;
        int rc = af_platform_parse(one, &plat, err);
        if (rc != 0)
            return rc;
        bool dup = false;
        for (size_t i = 0; i < count && !dup; i++)
            dup = af_platform_equal(&out[i], &plat);
        if (!dup) {
            if (count == max)
                return af_err_set(err, AF_ERR_INVAL, "platform list: more than %zu platforms", max);
            out[count++] = plat;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *n = count;
    return 0;
}
