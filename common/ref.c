/* ref.c -- image reference parsing and formatting.
 *
 * Implements the distribution reference grammar
 * (github.com/distribution/reference, regexp.go) with Docker's
 * normalisation: "alpine" is "docker.io/library/alpine". Used by the
 * coordinator CLI (-t, imagetools), the agent (image.from) and BUILD
 * validation. Only sha256 digests are accepted: it is the only algorithm
 * the rest of archfarm can verify. */
#include "ref.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* the grammar's limit on "domain/path" (NameTotalLengthMax) */
#define S_NAME_TOTAL_MAX 255
#define S_TAG_MAX 128

static bool s_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool s_alnum(char c)
{
    return s_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*
 * separator      := [_.] | "__" | [-]+
 * Checks S[0..len). Returns NULL when valid, else what is wrong. */
static const char *s_check_component(const char *s, size_t len)
{
    if (len == 0)
        return "empty path component";
    if (!s_lower_alnum(s[0]) || !s_lower_alnum(s[len - 1])) {
        for (size_t i = 0; i < len; i++)
            if (isupper((unsigned char)s[i]))
                return "repository name must be lowercase";
        return "path component must start and end with [a-z0-9]";
    }
    size_t i = 0;
    while (i < len) {
        if (s_lower_alnum(s[i])) {
            i++;
            continue;
        }
        if (isupper((unsigned char)s[i]))
            return "repository name must be lowercase";
        /* a separator: exactly one of '.', '_', "__", or a run of '-' */
        size_t j = i;
        if (s[i] == '.') {
            j = i + 1;
        } else if (s[i] == '_') {
            j = i + 1;
            if (j < len && s[j] == '_')
                j++;
        } else if (s[i] == '-') {
            while (j < len && s[j] == '-')
                j++;
        } else {
            return "invalid character in repository name";
        }
        if (j >= len || !s_lower_alnum(s[j]))
            return "invalid separator sequence in repository name";
        i = j;
    }
    return NULL;
}

/* domain := label ('.' label)* [':' port]; label := [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?
 * Also accepts a bracketed IPv6 literal "[::1]:5000". */
static const char *s_check_domain(const char *s, size_t len)
{
    if (len == 0)
        return "empty registry name";
    if (len >= sizeof(((af_ref_t *)0)->registry))
        return "registry name too long";
    size_t host_len = len;
    const char *colon = NULL;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return "unterminated IPv6 address in registry name";
        for (const char *p = s + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':')
                return "invalid IPv6 address in registry name";
        size_t rest = len - (size_t)(close + 1 - s);
        if (rest > 0 && close[1] != ':')
            return "invalid registry name";
        colon = rest > 0 ? close + 1 : NULL;
    } else {
        colon = memchr(s, ':', len);
        if (colon)
            host_len = (size_t)(colon - s);
        size_t i = 0;
        while (i < host_len) {
            size_t start = i;
            while (i < host_len && (s_alnum(s[i]) || s[i] == '-'))
                i++;
            if (i == start || s[start] == '-' || s[i - 1] == '-')
                return "invalid registry host name";
            if (i < host_len) {
                if (s[i] != '.')
                    return "invalid character in registry host name";
                i++;
                if (i == host_len)
                    return "invalid registry host name";
            }
        }
        if (host_len == 0)
            return "empty registry host name";
    }
    if (colon) {
        size_t plen = len - (size_t)(colon + 1 - s);
        if (plen == 0 || plen > 5)
            return "invalid registry port";
        for (size_t i = 0; i < plen; i++)
            if (!isdigit((unsigned char)colon[1 + i]))
                return "invalid registry port";
    }
    return NULL;
}

/* tag := [\w][\w.-]{0,127} */
static const char *s_check_tag(const char *s, size_t len)
{
    if (len == 0)
        return "empty tag";
    if (len > S_TAG_MAX)
        return "tag longer than 128 characters";
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool word = s_alnum(c) || c == '_';
        if (!word && (i == 0 || (c != '.' && c != '-')))
            return "invalid character in tag";
    }
    return NULL;
}

static const char *s_check_digest(const char *s, size_t len)
{
    if (len < 7 || memcmp(s, "sha256:", 7) != 0) {
        const char *colon = memchr(s, ':', len);
        if (colon && colon != s)
            return "unsupported digest algorithm (only sha256)";
        return "invalid digest";
    }
    if (len != 7 + 64)
        return "sha256 digest must have 64 hex digits";
    for (size_t i = 7; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return "sha256 digest must be lowercase hex";
    return NULL;
}

/* Long (about 90 lines): Docker's reference grammar (registry, path,
 * tag, digest, the docker.io defaults), checked left to right with one
 * error per rule, as distribution/reference reads it. */
int af_ref_parse(const char *s, af_ref_t *out, af_err_t *err)
{
    if (!s || !out)
        return af_err_set(err, AF_ERR_INVAL, "invalid reference: none given");
    memset(out, 0, sizeof *out);
    size_t total = strnlen(s, AF_MAX_REF + 1);
    if (total == 0)
        return af_err_set(err, AF_ERR_INVAL, "invalid reference \"\": empty");
    if (total > AF_MAX_REF)
        return af_err_set(err, AF_ERR_INVAL, "invalid reference \"%.64s...\": longer than %d", s,
                          AF_MAX_REF);
    const char *why = NULL;

    /* name [":" tag] ["@" digest] */
    size_t name_end = total;
    const char *at = memchr(s, '@', total);
    if (at) {
        size_t dlen = total - (size_t)(at + 1 - s);
        if ((why = s_check_digest(at + 1, dlen)))
            goto bad;
        memcpy(out->digest, at + 1, dlen);
        name_end = (size_t)(at - s);
    }
    const char *slash = NULL;
    for (size_t i = name_end; i > 0; i--)
        if (s[i - 1] == '/') {
            slash = s + i - 1;
            break;
        }
    const char *colon = NULL;
    for (size_t i = name_end; i > 0 && s + i - 1 != slash; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    if (colon) {
        size_t tlen = name_end - (size_t)(colon + 1 - s);
        if ((why = s_check_tag(colon + 1, tlen)))
            goto bad;
        memcpy(out->tag, colon + 1, tlen);
        name_end = (size_t)(colon - s);
    }
    if (name_end == 0) {
        why = "missing repository name";
        goto bad;
    }

    /* registry: a first component holding '.' or ':' or "localhost" */
    const char *path = s;
    size_t path_len = name_end;
    const char *first_slash = memchr(s, '/', name_end);
    if (first_slash) {
        size_t flen = (size_t)(first_slash - s);
        bool is_domain = memchr(s, '.', flen) || memchr(s, ':', flen) || s[0] == '[' ||
                         (flen == 9 && memcmp(s, "localhost", 9) == 0);
        if (is_domain) {
            if ((why = s_check_domain(s, flen)))
                goto bad;
            memcpy(out->registry, s, flen);
            path = first_slash + 1;
            path_len = name_end - flen - 1;
        }
    }
    if (path_len == 0) {
        why = "missing repository name";
        goto bad;
    }
    for (size_t i = 0, start = 0; i <= path_len; i++) {
        if (i == path_len || path[i] == '/') {
            if ((why = s_check_component(path + start, i - start)))
                goto bad;
            start = i + 1;
        }
    }

    /* docker.io normalisation */
    if (!out->registry[0] || !strcmp(out->registry, "index.docker.io") ||
        !strcmp(out->registry, "registry-1.docker.io"))
        snprintf(out->registry, sizeof out->registry, "docker.io");
    bool library = !strcmp(out->registry, "docker.io") && !memchr(path, '/', path_len);
    size_t repo_len = path_len + (library ? 8 : 0);
    if (strlen(out->registry) + 1 + repo_len > S_NAME_TOTAL_MAX) {
        why = "repository name longer than 255 characters";
        goto bad;
    }
    snprintf(out->repository, sizeof out->repository, "%s%.*s", library ? "library/" : "",
             (int)path_len, path);
    return 0;
bad:
    memset(out, 0, sizeof *out);
    return af_err_set(err, AF_ERR_INVAL, "invalid reference \"%s\": %s", s, why);
}

char *af_ref_format(const af_ref_t *ref, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    snprintf(buf, len, "%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag[0] ? ":" : "",
             ref->tag, ref->digest[0] ? "@" : "", ref->digest);
    return buf;
}

char *af_ref_format_repo(const af_ref_t *ref, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    snprintf(buf, len, "%s/%s", ref->registry, ref->repository);
    return buf;
}

const char *af_ref_reference(const af_ref_t *ref)
{
    if (ref->digest[0])
        return ref->digest;
    if (ref->tag[0])
        return ref->tag;
    return "latest";
}

const char *af_ref_api_host(const char *registry)
{
    if (registry && !strcmp(registry, "docker.io"))
        return "registry-1.docker.io";
    return registry;
}
