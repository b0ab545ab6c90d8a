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

/* What an architecture accepts as its variant. */
typedef enum {
    S_VAR_NONE,  /* no variant at all (386, ppc64le, ...) */
    S_VAR_AMD64, /* v1 (dropped), v2, v3, v4 */
    S_VAR_ARM64, /* v8, 8, v8.0 (dropped), v8.1 .. v8.9, v9, v9.x */
    S_VAR_ARM,   /* v5 .. v8; bare 5 .. 8 get their v; none is v7 */
    S_VAR_FIXED  /* exactly the row's variant (or none, which becomes it) */
} s_var_rule_t;

/* One alias, its canonical name and the variants it accepts. */
typedef struct {
    const char *alias;
    const char *arch;
    s_var_rule_t rule;
    const char *fixed; /* S_VAR_FIXED only */
} s_arch_row_t;

static const s_arch_row_t s_arch_table[] = {
    {"x86_64", "amd64", S_VAR_AMD64, NULL},     {"x86-64", "amd64", S_VAR_AMD64, NULL},
    {"amd64", "amd64", S_VAR_AMD64, NULL},      {"aarch64", "arm64", S_VAR_ARM64, NULL},
    {"arm64", "arm64", S_VAR_ARM64, NULL},      {"armhf", "arm", S_VAR_FIXED, "v7"},
    {"armel", "arm", S_VAR_FIXED, "v6"},        {"arm", "arm", S_VAR_ARM, NULL},
    {"i386", "386", S_VAR_NONE, NULL},          {"i486", "386", S_VAR_NONE, NULL},
    {"i586", "386", S_VAR_NONE, NULL},          {"i686", "386", S_VAR_NONE, NULL},
    {"386", "386", S_VAR_NONE, NULL},           {"ppc64le", "ppc64le", S_VAR_NONE, NULL},
    {"ppc64", "ppc64", S_VAR_NONE, NULL},       {"s390x", "s390x", S_VAR_NONE, NULL},
    {"riscv64", "riscv64", S_VAR_NONE, NULL},   {"mips", "mips", S_VAR_NONE, NULL},
    {"mipsle", "mipsle", S_VAR_NONE, NULL},     {"mips64", "mips64", S_VAR_NONE, NULL},
    {"mips64le", "mips64le", S_VAR_NONE, NULL}, {"loong64", "loong64", S_VAR_NONE, NULL},
};

/* Applies RULE to VARIANT in place; false when it does not fit. */
static bool s_apply_variant(s_var_rule_t rule, const char *fixed, char *variant, size_t var_len)
{
    const char *v = variant;
    switch (rule) {
    case S_VAR_NONE:
        return !v[0];
    case S_VAR_AMD64:
        if (!strcmp(v, "v1"))
            variant[0] = '\0';
        return !v[0] || !strcmp(v, "v2") || !strcmp(v, "v3") || !strcmp(v, "v4");
    case S_VAR_ARM64:
        if (!strcmp(v, "v8") || !strcmp(v, "8") || !strcmp(v, "v8.0")) {
            variant[0] = '\0';
            return true;
        }
        /* v8.1 .. v8.9, v9, v9.x as containerd keeps them */
        return !v[0] || (v[0] == 'v' && (v[1] == '8' || v[1] == '9') &&
                         (!v[2] || (v[2] == '.' && isdigit((unsigned char)v[3]) && !v[4])));
    case S_VAR_ARM:
        if (!v[0] || !strcmp(v, "7")) {
            snprintf(variant, var_len, "v7");
            return true;
        }
        if (!strcmp(v, "5") || !strcmp(v, "6") || !strcmp(v, "8")) {
            char nv[3] = {'v', v[0], '\0'};
            snprintf(variant, var_len, "%s", nv);
            return true;
        }
        return !strcmp(v, "v5") || !strcmp(v, "v6") || !strcmp(v, "v7") || !strcmp(v, "v8");
    case S_VAR_FIXED: {
        bool ok = !v[0] || !strcmp(v, fixed);
        snprintf(variant, var_len, "%s", fixed);
        return ok;
    }
    }
    return false;
}

/* Maps an architecture alias (and its variant) to containerd's canonical
 * form. Returns false when ARCH is not an architecture we know. On true,
 * *bad_variant is set when VARIANT does not fit the architecture. */
static bool s_normalize_arch(char *arch, size_t arch_len, char *variant, size_t var_len,
                             bool *bad_variant)
{
    *bad_variant = false;
    for (size_t i = 0; i < sizeof s_arch_table / sizeof s_arch_table[0]; i++) {
        const s_arch_row_t *row = &s_arch_table[i];
        if (strcmp(arch, row->alias))
            continue;
        *bad_variant = !s_apply_variant(row->rule, row->fixed, variant, var_len);
        snprintf(arch, arch_len, "%s", row->arch);
        return true;
    }
    /* armv5tel, armv6l, armv7l, armv8l (uname -m) and armv7 */
    if (!strncmp(arch, "armv", 4) && arch[4] >= '5' && arch[4] <= '8') {
        const char *rest = arch + 5;
        if (strcmp(rest, "") && strcmp(rest, "l") && strcmp(rest, "tel") && strcmp(rest, "tejl") &&
            strcmp(rest, "hl"))
            return false;
        char v[3] = {'v', arch[4], '\0'};
        *bad_variant = !s_apply_variant(S_VAR_FIXED, v, variant, var_len);
        snprintf(arch, arch_len, "arm");
        return true;
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
