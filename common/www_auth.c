/* www_auth.c -- reading a registry's reply headers (see www_auth.h).
 *
 * The registry client hands every header line libcurl gives it to
 * af_www_header_value() and every WWW-Authenticate challenge to
 * af_www_auth_parse(); both work on bounded copies and never trust a
 * length or a quote to be there. */
#include "www_auth.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reads the next auth-param (key=value or key="value") from *p into KEY
 * (lower-cased) and VAL, cut to their sizes. False at the end. Always
 * advances *p. */
static bool s_next_param(const char **p, char *key, size_t klen, char *val, size_t vlen)
{
    const char *s = *p;
    while (*s == ' ' || *s == ',' || *s == '\t')
        s++;
    if (!*s)
        return false;
    size_t k = 0;
    while (*s && *s != '=' && *s != ',' && *s != ' ' && *s != '\t') {
        if (k + 1 < klen)
            key[k++] = (char)tolower((unsigned char)*s);
        s++;
    }
    key[k] = '\0';
    size_t v = 0;
    if (*s == '=') {
        s++;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                    s++;
                if (v + 1 < vlen)
                    val[v++] = *s;
                s++;
            }
            if (*s == '"')
                s++;
        } else {
            while (*s && *s != ',' && *s != ' ' && *s != '\t') {
                if (v + 1 < vlen)
                    val[v++] = *s;
                s++;
            }
        }
    }
    val[v] = '\0';
    *p = s;
    return true;
}

void af_www_auth_parse(const char *challenge, af_www_auth_t *out)
{
    memset(out, 0, sizeof *out);
    const char *p = challenge;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t");
    if (n == 6 && !strncasecmp(p, "Bearer", 6))
        out->scheme = AF_WWW_AUTH_BEARER;
    else if (n == 5 && !strncasecmp(p, "Basic", 5))
        out->scheme = AF_WWW_AUTH_BASIC;
    p += n;
    char key[32], val[AF_WWW_AUTH_REALM_MAX];
    while (s_next_param(&p, key, sizeof key, val, sizeof val)) {
        char *dst = NULL;
        size_t cap = 0;
        if (!strcmp(key, "realm"))
            dst = out->realm, cap = sizeof out->realm;
        else if (!strcmp(key, "service"))
            dst = out->service, cap = sizeof out->service;
        else if (!strcmp(key, "scope"))
            dst = out->scope, cap = sizeof out->scope;
        if (dst) {
            size_t l = strnlen(val, cap - 1);
            memcpy(dst, val, l);
            dst[l] = '\0';
        }
    }
}

char *af_www_header_value(const char *line, size_t n, const char *name, size_t max)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
        return NULL;
    const char *v = line + nl + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if ((size_t)(end - v) >= max || memchr(v, '\0', (size_t)(end - v)))
        return NULL;
    return strndup(v, (size_t)(end - v));
}
