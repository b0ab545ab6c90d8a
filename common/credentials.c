/* credentials.c -- registry credentials from Docker/containers auth files.
 *
 * The coordinator looks up the credentials for each target registry here
 * before it sends a BUILD; `imagetools` uses them for its own requests.
 * Files are read whole (bounded by AF_CREDENTIALS_MAX_BYTES), parsed with
 * jansson, and every copy of secret bytes is wiped before it is freed.
 * Credential helpers (credsStore/credHelpers) are never executed. */
#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "limits.h"
#include "log.h"

/* Writes the host part of KEY ("https://host/v1/", "host/ns", "host")
 * into OUT, with docker.io's aliases mapped to "docker.io". *has_path is
 * set when KEY names more than a host. */
static void s_norm_host(const char *key, char *out, size_t len, bool *has_path)
{
    if (!strncasecmp(key, "https://", 8))
        key += 8;
    else if (!strncasecmp(key, "http://", 7))
        key += 7;
    size_t n = strcspn(key, "/");
    if (has_path)
        *has_path = key[n] == '/' && key[n + 1] != '\0' && strcmp(key + n, "/v1/") &&
                    strcmp(key + n, "/v2/");
    snprintf(out, len, "%.*s", (int)n, key);
    if (!strcasecmp(out, "index.docker.io") || !strcasecmp(out, "registry-1.docker.io"))
        snprintf(out, len, "docker.io");
}

/* Reads PATH into a NUL-terminated buffer. AF_ERR_NOTFOUND when it does
 * not exist (not an error for the caller: the next file is tried). */
static int s_read_file(const char *path, char **buf_p, size_t *len_p, af_err_t *err)
{
    int rc = 0;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return AF_ERR_NOTFOUND;
        return af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = af_err_set(err, AF_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > AF_CREDENTIALS_MAX_BYTES) {
        rc = af_err_set(err, AF_ERR_TOOBIG, "%s: larger than %d bytes", path,
                        AF_CREDENTIALS_MAX_BYTES);
        goto out;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    buf = malloc(cap);
    if (!buf) {
        rc = af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *buf_p = buf;
    *len_p = len;
    buf = NULL;
out:
    if (buf) {
        OPENSSL_cleanse(buf, (size_t)st.st_size);
        free(buf);
    }
    close(fd);
    return rc;
}

/* Decodes base64 "user:password" into malloc'd halves. */
static int s_decode_auth(const char *path, const char *key, const char *b64, char **user_p,
                         char **pass_p, af_err_t *err)
{
    int rc = 0;
    size_t in_len = strlen(b64);
    if (in_len > 4 * AF_MAX_SECRET)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: auths.\"%s\".auth: too long", path, key);
    /* room for missing padding; EVP_DecodeBlock wants a multiple of 4 */
    size_t cap = in_len + 4;
    unsigned char *in = malloc(cap);
    unsigned char *out = malloc(cap);
    if (!in || !out) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < in_len; i++)
        if (b64[i] != '\n' && b64[i] != '\r' && b64[i] != ' ' && b64[i] != '\t')
            in[n++] = (unsigned char)b64[i];
    while (n % 4)
        in[n++] = '=';
    size_t pad = 0;
    while (pad < n && pad < 2 && in[n - 1 - pad] == '=')
        pad++;
    int dec = n ? EVP_DecodeBlock(out, in, (int)n) : 0;
    if (dec < 0 || (size_t)dec < pad) {
        rc = af_err_set(err, AF_ERR_PARSE, "%s: auths.\"%s\".auth: invalid base64", path, key);
        goto out;
    }
    size_t out_len = (size_t)dec - pad; /* EVP_DecodeBlock counts padding as bytes */
    unsigned char *colon = memchr(out, ':', out_len);
    if (!colon || colon == out || memchr(out, '\0', out_len)) {
        rc = af_err_set(err, AF_ERR_PARSE,
                        "%s: auths.\"%s\".auth: not base64 of \"username:password\"", path, key);
        goto out;
    }
    size_t ulen = (size_t)(colon - out), plen = out_len - ulen - 1;
    *user_p = strndup((char *)out, ulen);
    *pass_p = strndup((char *)colon + 1, plen);
    if (!*user_p || !*pass_p) {
        free(*user_p);
        free(*pass_p);
        *user_p = *pass_p = NULL;
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
    }
out:
    if (in)
        OPENSSL_cleanse(in, cap);
    if (out)
        OPENSSL_cleanse(out, cap);
    free(in);
    free(out);
    return rc;
}

/* Reads one entry of "auths". 0 with both NULL when it holds nothing usable. */
static int s_entry(const char *path, const char *key, json_t *entry, char **user_p, char **pass_p,
                   af_err_t *err)
{
    if (!json_is_object(entry))
        return af_err_set(err, AF_ERR_PARSE, "%s: auths.\"%s\": not an object", path, key);
    json_t *auth = json_object_get(entry, "auth");
    if (auth && !json_is_string(auth))
        return af_err_set(err, AF_ERR_PARSE, "%s: auths.\"%s\".auth: not a string", path, key);
    if (auth && json_string_length(auth) > 0)
        return s_decode_auth(path, key, json_string_value(auth), user_p, pass_p, err);
    json_t *user = json_object_get(entry, "username");
    json_t *pass = json_object_get(entry, "password");
    if (!user && !pass)
        return 0;
    if (!json_is_string(user) || !json_is_string(pass) || json_string_length(user) == 0)
        return af_err_set(err, AF_ERR_PARSE,
                          "%s: auths.\"%s\": username and password must be strings", path, key);
    if (json_string_length(user) > AF_MAX_SECRET || json_string_length(pass) > AF_MAX_SECRET)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: auths.\"%s\": credential too long", path, key);
    *user_p = strdup(json_string_value(user));
    *pass_p = strdup(json_string_value(pass));
    if (!*user_p || !*pass_p) {
        free(*user_p);
        free(*pass_p);
        *user_p = *pass_p = NULL;
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    }
    return 0;
}

int af_credentials_lookup_buffer(const char *path, const char *buf, size_t len, const char *host,
                                 char **user_p, char **pass_p, af_err_t *err)
{
    int rc = 0;
    *user_p = *pass_p = NULL;
    if (len > AF_CREDENTIALS_MAX_BYTES)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: larger than %d bytes", path,
                          AF_CREDENTIALS_MAX_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, 0, &jerr);
    if (!root)
        return af_err_set(err, AF_ERR_PARSE, "%s:%d:%d: %s", path, jerr.line, jerr.column,
                          jerr.text);
    if (!json_is_object(root)) {
        rc = af_err_set(err, AF_ERR_PARSE, "%s: not a JSON object", path);
        goto out;
    }
    json_t *auths = json_object_get(root, "auths");
    if (!auths)
        goto out;
    if (!json_is_object(auths)) {
        rc = af_err_set(err, AF_ERR_PARSE, "%s: \"auths\" is not an object", path);
        goto out;
    }
    char want[512];
    s_norm_host(host, want, sizeof want, NULL);
    /* a key naming just the host wins over one naming a namespace on it */
    for (int pass = 0; pass < 2 && !*user_p; pass++) {
        const char *key;
        json_t *entry;
        json_object_foreach(auths, key, entry)
        {
            char have[512];
            bool has_path = false;
            s_norm_host(key, have, sizeof have, &has_path);
            if (strcasecmp(have, want) || has_path != (pass == 1))
                continue;
            rc = s_entry(path, key, entry, user_p, pass_p, err);
            if (rc || *user_p)
                goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}

int af_credentials_lookup_file(const char *path, const char *host, char **user_p, char **pass_p,
                               af_err_t *err)
{
    char *buf = NULL;
    size_t len = 0;
    *user_p = *pass_p = NULL;
    int rc = s_read_file(path, &buf, &len, err);
    if (rc)
        return rc;
    rc = af_credentials_lookup_buffer(path, buf, len, host, user_p, pass_p, err);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

int af_credentials_lookup(const char *host, char **user_p, char **pass_p, af_err_t *err)
{
    if (!host || !*host || !user_p || !pass_p)
        return af_err_set(err, AF_ERR_INVAL, "credentials lookup: no registry host given");
    *user_p = *pass_p = NULL;
    char paths[4][4096];
    size_t n = 0;
    const char *v;
    if ((v = getenv("REGISTRY_AUTH_FILE")) && *v)
        snprintf(paths[n++], sizeof paths[0], "%s", v);
    if ((v = getenv("DOCKER_CONFIG")) && *v)
        snprintf(paths[n++], sizeof paths[0], "%s/config.json", v);
    if ((v = getenv("HOME")) && *v)
        snprintf(paths[n++], sizeof paths[0], "%s/.docker/config.json", v);
    if ((v = getenv("XDG_RUNTIME_DIR")) && *v)
        snprintf(paths[n++], sizeof paths[0], "%s/containers/auth.json", v);
    for (size_t i = 0; i < n; i++) {
        int rc = af_credentials_lookup_file(paths[i], host, user_p, pass_p, err);
        if (rc == AF_ERR_NOTFOUND)
            continue;
        if (rc)
            return rc;
        if (*user_p) {
            af_debug("credentials for %s from %s", host, paths[i]);
            return 0;
        }
    }
    return 0;
}
