/* registry.c -- OCI distribution API client over libcurl.
 *
 * The agent pushes a slice's blobs and manifest with it; the coordinator
 * verifies slices, reads base images and PUTs the index. One client owns
 * one curl easy handle, reset before every request but kept for its
 * connection cache, so consecutive requests reuse one keep-alive
 * connection. Every request goes through s_request(), which owns the
 * policy: the scheme (https, or http after a failed https attempt when
 * the caller allowed an insecure registry), authentication (answering a
 * 401's Basic or Bearer challenge once per request, caching bearer tokens
 * per scope), and retries of transient failures with doubling backoff.
 * Verbs above it only build URLs, pick sinks and check statuses and
 * digests. Credentials live in this struct only: they are sent only to
 * the registry's own origin (scheme, host and port, compared with libcurl's
 * URL parser) and to its token realm over HTTPS, never over plain HTTP
 * unless the registry is insecure, never logged, and wiped on destroy. A
 * registry that is not insecure is spoken to over HTTPS only. */
#include "registry.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "digest.h"
#include "log.h"
#include "oci.h"
#include "ref.h"
#include "www_auth.h"

#define S_TOKEN_SLOTS 8                 /* bearer tokens cached per client */
#define S_TOKEN_REPLY_MAX (1024 * 1024) /* a token endpoint's JSON reply */
#define S_ERROR_BODY_MAX (64 * 1024)    /* kept of an error reply, for its message */
#define S_HEADER_MAX 8192               /* one captured header value (Location) */
#define S_BACKOFF_MS 100                /* first retry delay, doubled each time */
#define S_MAX_REDIRS 5

typedef enum { S_AUTH_NONE, S_AUTH_BASIC, S_AUTH_BEARER } s_auth_t;

typedef struct {
    char *scope;
    char *token;
} s_token_t;

struct af_registry {
    char host[256];    /* API host[:port] */
    char scheme[8];    /* "https" or "http" */
    bool scheme_known; /* a request has reached the server with it */
    bool insecure;
    char *username;
    char *password;
    char *ca_file;
    long timeout_s;
    CURL *curl;
    af_registry_cancel_fn *cancel; /* may be NULL */
    void *cancel_arg;
    uint64_t pushed_bytes; /* blob bytes uploaded (201 Created), for RESULT */
    s_auth_t auth;
    s_token_t tokens[S_TOKEN_SLOTS];
    size_t next_token;
};

/* One request: what to send and where the reply goes. */
typedef struct {
    const char *method;
    const char *path;  /* "/v2/..." on our host, or NULL when url is set */
    const char *url;   /* an absolute URL (a Location) */
    const char *scope; /* bearer scope(s), space separated; NULL for none */
    const char *accept;
    const char *content_type;
    const char *body; /* in-memory request body */
    size_t body_len;
    FILE *upload; /* or a file streamed as the body */
    uint64_t upload_size;
    size_t max_body;       /* 2xx reply into memory, at most this; 0 = discard */
    FILE *download;        /* or a 2xx reply into this file */
    uint64_t max_download; /* 0 = unbounded */
    bool follow;           /* follow redirects (blob GET to storage) */
    bool no_retry;         /* the caller retries (blob upload restarts) */
    af_registry_progress_fn *progress;
    void *progress_arg;
} s_req_t;

/* What came back. Reset before every attempt. */
typedef struct {
    long status;
    char *location;
    char digest[AF_DIGEST_STR_MAX]; /* Docker-Content-Digest when valid */
    char content_type[AF_MAX_NAME + 1];
    char *challenge; /* WWW-Authenticate */
    char *body;      /* 2xx memory sink or the error body */
    size_t body_len, body_cap;
    bool too_big;
    bool sink_failed;
    uint64_t downloaded;
    af_digest_t *dl_digest;
    const s_req_t *req;
    const af_registry_t *reg; /* for the cancel hook */
    char url[S_HEADER_MAX];   /* the URL of this attempt */
    char errbuf[CURL_ERROR_SIZE];
} s_resp_t;

/* ---- small helpers ---------------------------------------------------- */

static void s_free_secret(char **p)
{
    if (*p) {
        OPENSSL_cleanse(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

static bool s_cancelled(const af_registry_t *self)
{
    return self->cancel && self->cancel(self->cancel_arg);
}

/* Sleeps MS milliseconds in slices, so that a cancel is seen within
 * S_CANCEL_POLL_MS. */
#define S_CANCEL_POLL_MS 50
static void s_sleep_ms(const af_registry_t *self, long ms)
{
    while (ms > 0 && !s_cancelled(self)) {
        long slice = ms < S_CANCEL_POLL_MS ? ms : S_CANCEL_POLL_MS;
        struct timespec ts = {slice / 1000, (slice % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        ms -= slice;
    }
}

/* The URL for messages: no query string (upload state, signatures). */
static const char *s_msg_url(const char *url, char *buf, size_t len)
{
    snprintf(buf, len, "%.*s", (int)strcspn(url, "?#"), url);
    return buf;
}

/* Repository names reach URLs: allow the grammar's characters only. */
static bool s_repo_ok(const char *repo)
{
    if (!repo || !*repo || strlen(repo) > 255 || repo[0] == '/')
        return false;
    for (const char *p = repo; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.' || *p == '_' ||
              *p == '-' || *p == '/'))
            return false;
    return !strstr(repo, "..") && !strstr(repo, "//");
}

/* A tag or a sha256 digest. */
static bool s_reference_ok(const char *ref)
{
    if (!ref || !*ref)
        return false;
    if (strchr(ref, ':'))
        return af_digest_valid(ref);
    size_t n = strlen(ref);
    if (n > 128 || !(isalnum((unsigned char)ref[0]) || ref[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)ref[i]) || ref[i] == '_' || ref[i] == '.' || ref[i] == '-'))
            return false;
    return true;
}

/* A URL's origin: scheme, host and port, as libcurl's URL parser sees
 * them (default ports filled in, so https://h and https://h:443 agree). */
typedef struct {
    char scheme[8];
    char host[256];
    long port;
} s_origin_t;

/* Parses URL's origin into *o. False when it is not an absolute http(s)
 * URL libcurl accepts. */
static bool s_origin(const char *url, s_origin_t *o)
{
    memset(o, 0, sizeof *o);
    CURLU *h = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = h && curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
              (!strcasecmp(scheme, "https") || !strcasecmp(scheme, "http")) &&
              strlen(host) < sizeof o->host;
    if (ok) {
        snprintf(o->scheme, sizeof o->scheme, "%s", scheme);
        for (char *c = o->scheme; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        snprintf(o->host, sizeof o->host, "%s", host);
        o->port = strtol(port, NULL, 10);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(h);
    return ok;
}

static bool s_origin_equal(const s_origin_t *a, const s_origin_t *b)
{
    return !strcmp(a->scheme, b->scheme) && !strcasecmp(a->host, b->host) && a->port == b->port;
}

/* True when a request to URL may be made at all: HTTPS, or plain HTTP
 * for a registry the user marked insecure. */
static bool s_scheme_allowed(const af_registry_t *self, const s_origin_t *o)
{
    return !strcmp(o->scheme, "https") || self->insecure;
}

/* True when credentials and tokens may go with a request to URL: its
 * origin (scheme, host, port) is the registry's own, and it is HTTPS
 * unless the registry is insecure. Never to a storage backend, another
 * port, or a downgraded scheme. */
static bool s_creds_allowed(const af_registry_t *self, const char *url)
{
    s_origin_t ours, theirs;
    char base[300];
    snprintf(base, sizeof base, "%s://%s/", self->scheme, self->host);
    return s_origin(base, &ours) && s_origin(url, &theirs) && s_origin_equal(&ours, &theirs) &&
           s_scheme_allowed(self, &theirs);
}

static char *s_base64(const char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)len);
    return out;
}

/* "Basic <base64(user:pass)>" header line, malloc'd, or NULL. */
static char *s_basic_header(const af_registry_t *self)
{
    if (!self->username)
        return NULL;
    size_t ul = strlen(self->username), pl = self->password ? strlen(self->password) : 0;
    char *plain = malloc(ul + pl + 2);
    if (!plain)
        return NULL;
    memcpy(plain, self->username, ul);
    plain[ul] = ':';
    if (pl)
        memcpy(plain + ul + 1, self->password, pl);
    plain[ul + pl + 1] = '\0';
    char *b64 = s_base64(plain, ul + pl + 1);
    OPENSSL_cleanse(plain, ul + pl + 1);
    free(plain);
    if (!b64)
        return NULL;
    char *line = NULL;
    if (asprintf(&line, "Authorization: Basic %s", b64) < 0)
        line = NULL;
    s_free_secret(&b64);
    return line;
}

static const char *s_token_for(const af_registry_t *self, const char *scope)
{
    for (size_t i = 0; i < S_TOKEN_SLOTS; i++)
        if (self->tokens[i].scope && !strcmp(self->tokens[i].scope, scope ? scope : ""))
            return self->tokens[i].token;
    return NULL;
}

static void s_token_store(af_registry_t *self, const char *scope, char *token)
{
    s_token_t *slot = NULL;
    for (size_t i = 0; i < S_TOKEN_SLOTS && !slot; i++)
        if (self->tokens[i].scope && !strcmp(self->tokens[i].scope, scope ? scope : ""))
            slot = &self->tokens[i];
    if (!slot) {
        slot = &self->tokens[self->next_token];
        self->next_token = (self->next_token + 1) % S_TOKEN_SLOTS;
        free(slot->scope);
        slot->scope = strdup(scope ? scope : "");
    }
    s_free_secret(&slot->token);
    slot->token = token;
    if (!slot->scope)
        s_free_secret(&slot->token);
}

/* ---- curl callbacks --------------------------------------------------- */

static void s_resp_reset(s_resp_t *r)
{
    r->status = 0;
    free(r->location);
    r->location = NULL;
    r->digest[0] = '\0';
    r->content_type[0] = '\0';
    free(r->challenge);
    r->challenge = NULL;
    r->body_len = 0;
    r->too_big = false;
}

static size_t s_on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    s_resp_t *r = arg;
    size_t n = size * nmemb;
    if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
        /* a new response (after 100 Continue or a redirect) */
        s_resp_reset(r);
        const char *sp = memchr(data, ' ', n);
        if (sp && (size_t)(sp - data) + 4 <= n)
            r->status = strtol(sp + 1, NULL, 10);
        return n;
    }
    char *v;
    if ((v = af_www_header_value(data, n, "Location", S_HEADER_MAX))) {
        free(r->location);
        r->location = v;
    } else if ((v = af_www_header_value(data, n, "Docker-Content-Digest", S_HEADER_MAX))) {
        if (af_digest_valid(v))
            snprintf(r->digest, sizeof r->digest, "%s", v);
        free(v);
    } else if ((v = af_www_header_value(data, n, "Content-Type", S_HEADER_MAX))) {
        snprintf(r->content_type, sizeof r->content_type, "%.*s", (int)strcspn(v, "; \t"), v);
        free(v);
    } else if ((v = af_www_header_value(data, n, "WWW-Authenticate", S_HEADER_MAX))) {
        /* several challenges: prefer Bearer */
        if (!r->challenge || !strncasecmp(v, "Bearer", 6)) {
            free(r->challenge);
            r->challenge = v;
        } else {
            free(v);
        }
    }
    return n;
}

static bool s_mem_append(s_resp_t *r, const char *data, size_t n, size_t cap)
{
    if (r->body_len + n > cap)
        return false;
    if (r->body_len + n + 1 > r->body_cap) {
        size_t want = r->body_cap ? r->body_cap : 4096;
        while (want < r->body_len + n + 1)
            want *= 2;
        if (want > cap + 1)
            want = cap + 1;
        char *nb = realloc(r->body, want);
        if (!nb)
            return false;
        r->body = nb;
        r->body_cap = want;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return true;
}

static size_t s_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    s_resp_t *r = arg;
    size_t n = size * nmemb;
    const s_req_t *req = r->req;
    bool ok = r->status >= 200 && r->status < 300;
    if (ok && req->download) {
        r->downloaded += n;
        if (req->max_download && r->downloaded > req->max_download) {
            r->too_big = true;
            return 0;
        }
        if (fwrite(data, 1, n, req->download) != n ||
            (r->dl_digest && af_digest_update(r->dl_digest, data, n))) {
            r->sink_failed = true;
            return 0;
        }
        return n;
    }
    if (ok) {
        if (!req->max_body)
            return n;
        if (!s_mem_append(r, data, n, req->max_body)) {
            r->too_big = true;
            return 0;
        }
        return n;
    }
    /* an error reply: keep its start for the message, drop the rest */
    size_t room = r->body_len < S_ERROR_BODY_MAX ? S_ERROR_BODY_MAX - r->body_len : 0;
    if (room)
        s_mem_append(r, data, n < room ? n : room, S_ERROR_BODY_MAX);
    return n;
}

typedef struct {
    const s_req_t *req;
    size_t off;
} s_upload_t;

static size_t s_on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    s_upload_t *u = arg;
    size_t n = size * nitems;
    if (u->req->upload)
        return fread(buf, 1, n, u->req->upload);
    size_t left = u->req->body_len - u->off;
    if (n > left)
        n = left;
    memcpy(buf, u->req->body + u->off, n);
    u->off += n;
    return n;
}

static int s_on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    const s_resp_t *resp = arg;
    const s_req_t *req = resp->req;
    if (s_cancelled(resp->reg))
        return 1; /* CURLE_ABORTED_BY_CALLBACK */
    if (!req->progress)
        return 0;
    if (req->upload)
        req->progress((uint64_t)ulnow, (uint64_t)ultotal, req->progress_arg);
    else
        req->progress((uint64_t)dlnow, (uint64_t)dltotal, req->progress_arg);
    return 0;
}

/* ---- one attempt ------------------------------------------------------ */

/* Performs REQ once against URL, sending AUTH_LINE (a whole
 * "Authorization: ..." header, may be NULL). Curl itself never forwards
 * it to another host on a redirect. Returns curl's code; RESP holds the
 * reply. Long (about 90 lines) because it is the one place every libcurl
 * option of a request is set, in order; split, the options would scatter. */
static CURLcode s_perform(af_registry_t *self, const s_req_t *req, const char *url,
                          const char *auth_line, s_resp_t *resp)
{
    CURL *c = self->curl;
    curl_easy_reset(c);
    s_resp_reset(resp);
    resp->req = req;
    resp->reg = self;
    resp->errbuf[0] = '\0';
    snprintf(resp->url, sizeof resp->url, "%s", url);
    s_upload_t up = {req, 0};
    struct curl_slist *hdrs = NULL, *tmp;
    char line[512]; /* the Accept list is ~200 bytes, a media type <= AF_MAX_NAME */
    bool ok = true;
#define S_ADD_HEADER(text)                                                                         \
    do {                                                                                           \
        if (ok && (tmp = curl_slist_append(hdrs, (text))))                                         \
            hdrs = tmp;                                                                            \
        else                                                                                       \
            ok = false;                                                                            \
    } while (0)
    if (req->accept) {
        snprintf(line, sizeof line, "Accept: %s", req->accept);
        S_ADD_HEADER(line);
    }
    if (req->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", req->content_type);
        S_ADD_HEADER(line);
    }
    if (auth_line)
        S_ADD_HEADER(auth_line);
#undef S_ADD_HEADER
    if (!ok) {
        curl_slist_free_all(hdrs);
        return CURLE_OUT_OF_MEMORY;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, resp->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "archfarm/" AF_VERSION);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, self->insecure ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, self->insecure ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)AF_HTTP_CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, self->timeout_s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (req->follow) {
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)S_MAX_REDIRS);
    }
    if (self->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (self->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, self->ca_file);
    if (!strcmp(req->method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(req->method, "PUT")) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, s_on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)(req->upload ? req->upload_size : req->body_len));
    } else if (!strcmp(req->method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(req->method, "GET")) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (req->progress || self->cancel) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, s_on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, resp);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK && !resp->status) {
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        resp->status = st;
    }
    /* the Authorization line is a secret: wipe curl's copy too */
    for (tmp = hdrs; tmp; tmp = tmp->next)
        if (!strncasecmp(tmp->data, "Authorization:", 14))
            OPENSSL_cleanse(tmp->data, strlen(tmp->data));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    return cc;
}

/* ---- errors ----------------------------------------------------------- */

/* "CODE: message" from a registry's JSON error body, or "". */
static void s_registry_error(const s_resp_t *r, char *out, size_t len, char *code, size_t code_len)
{
    out[0] = '\0';
    if (code_len)
        code[0] = '\0';
    if (!r->body || !r->body_len)
        return;
    json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *e0 = json_array_get(json_object_get(root, "errors"), 0);
    const char *c = json_string_value(json_object_get(e0, "code"));
    const char *m = json_string_value(json_object_get(e0, "message"));
    if (c || m)
        snprintf(out, len, " (%.64s%s%.200s)", c ? c : "", c && m ? ": " : "", m ? m : "");
    if (c && code_len)
        snprintf(code, code_len, "%s", c);
    json_decref(root);
}

/* Turns an unexpected status into an AF_ERR_* with method, URL, status
 * and the registry's own words. */
static int s_status_error(const s_req_t *req, const s_resp_t *r, af_err_t *err)
{
    char url[1024], why[300], code[64];
    s_registry_error(r, why, sizeof why, code, sizeof code);
    int rc = AF_ERR_HTTP;
    if (r->status == 401 || r->status == 403)
        rc = AF_ERR_AUTH;
    else if (r->status == 404)
        rc = AF_ERR_NOTFOUND;
    else if (!strcmp(code, "DIGEST_INVALID"))
        rc = AF_ERR_DIGEST;
    return af_err_set(err, rc, "%s %s: HTTP %ld%s", req->method, s_msg_url(r->url, url, sizeof url),
                      r->status, why);
}

static bool s_transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return true;
    default:
        return false;
    }
}

static bool s_transient_status(long status)
{
    return status == 429 || status >= 500;
}

/* ---- authentication --------------------------------------------------- */

/* Fetches a bearer token for SCOPE from the challenge's realm. */
/* The token URL: REALM with service= and one scope= per space-separated
 * scope in WANT. Returns a malloc'd URL, NULL with err. */
static char *s_token_url(const af_registry_t *self, const char *realm, const char *service,
                         const char *want, af_err_t *err)
{
    char *url = NULL, *cu_url = NULL;
    CURLU *h = curl_url();
    bool ok = h && curl_url_set(h, CURLUPART_URL, realm, 0) == CURLUE_OK &&
              curl_url_set(h, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
              curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
              curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK;
    char q[1100];
    if (ok && service[0]) {
        snprintf(q, sizeof q, "service=%s", service);
        ok = curl_url_set(h, CURLUPART_QUERY, q, CURLU_APPENDQUERY | CURLU_URLENCODE) == CURLUE_OK;
    }
    for (const char *sc = want; ok && *sc;) {
        size_t n = strcspn(sc, " ");
        if (n) {
            snprintf(q, sizeof q, "scope=%.*s", (int)n, sc);
            ok = curl_url_set(h, CURLUPART_QUERY, q, CURLU_APPENDQUERY | CURLU_URLENCODE) ==
                 CURLUE_OK;
        }
        sc += n;
        while (*sc == ' ')
            sc++;
    }
    if (!ok || curl_url_get(h, CURLUPART_URL, &cu_url, 0) != CURLUE_OK || !(url = strdup(cu_url)))
        af_err_set(err, AF_ERR_AUTH, "registry %s: cannot build the token URL from %.200s",
                   self->host, realm);
    curl_free(cu_url);
    curl_url_cleanup(h);
    return url;
}

/* GET the token, with retries on transient failures. 0 with RESP filled
 * (any status), or an AF_ERR_* code with err. */
static int s_token_get(af_registry_t *self, const s_req_t *req, const char *basic, s_resp_t *resp,
                       af_err_t *err)
{
    char murl[1024];
    for (int attempt = 0;; attempt++) {
        if (s_cancelled(self))
            return af_err_set(err, AF_ERR_CANCELLED, "GET %s: cancelled",
                              s_msg_url(req->url, murl, sizeof murl));
        CURLcode cc = s_perform(self, req, req->url, basic, resp);
        if (cc == CURLE_ABORTED_BY_CALLBACK && s_cancelled(self))
            return af_err_set(err, AF_ERR_CANCELLED, "GET %s: cancelled",
                              s_msg_url(req->url, murl, sizeof murl));
        if (cc != CURLE_OK) {
            if (s_transient(cc) && attempt < AF_HTTP_RETRIES) {
                s_sleep_ms(self, S_BACKOFF_MS << attempt);
                continue;
            }
            return af_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? AF_ERR_TIMEOUT : AF_ERR_NET,
                              "GET %s: %s", s_msg_url(req->url, murl, sizeof murl),
                              resp->too_big     ? "token reply too large"
                              : resp->errbuf[0] ? resp->errbuf
                                                : curl_easy_strerror(cc));
        }
        if (s_transient_status(resp->status) && attempt < AF_HTTP_RETRIES) {
            s_sleep_ms(self, S_BACKOFF_MS << attempt);
            continue;
        }
        return 0;
    }
}

/* The token service's answer in RESP: the token kept for SCOPE. */
static int s_token_take(af_registry_t *self, const s_req_t *req, const s_resp_t *resp,
                        const char *scope, af_err_t *err)
{
    char murl[1024];
    if (resp->status == 401 || resp->status == 403) {
        int rc = s_status_error(req, resp, err);
        af_err_prefix(err, AF_ERR_AUTH, "registry %s: %s", self->host,
                      self->username ? "credentials rejected by the token service"
                                     : "anonymous token refused (credentials needed?)");
        return rc;
    }
    if (resp->status != 200)
        return s_status_error(req, resp, err);
    json_t *root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    const char *tok = json_string_value(json_object_get(root, "token"));
    if (!tok || !*tok)
        tok = json_string_value(json_object_get(root, "access_token"));
    char *line = NULL;
    int rc = 0;
    if (!tok || !*tok || strlen(tok) > S_TOKEN_REPLY_MAX || strpbrk(tok, "\r\n"))
        rc = af_err_set(err, AF_ERR_AUTH, "GET %s: no token in the reply",
                        s_msg_url(req->url, murl, sizeof murl));
    else if (asprintf(&line, "Authorization: Bearer %s", tok) < 0)
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
    json_decref(root);
    if (rc)
        return rc;
    s_token_store(self, scope, line);
    self->auth = S_AUTH_BEARER;
    return 0;
}

static int s_fetch_token(af_registry_t *self, const char *challenge, const char *scope,
                         af_err_t *err)
{
    af_www_auth_t ch;
    af_www_auth_parse(challenge, &ch);
    const char *realm = ch.realm;
    s_origin_t ro;
    if (!realm[0] || !s_origin(realm, &ro))
        return af_err_set(err, AF_ERR_AUTH, "registry %s: bearer challenge without a usable realm",
                          self->host);
    if (!s_scheme_allowed(self, &ro))
        return af_err_set(err, AF_ERR_AUTH,
                          "registry %s: refusing the plain-HTTP token realm %.200s (only a "
                          "registry given with --insecure-registry may use HTTP)",
                          self->host, realm);
    /* the realm is usually another host (auth.example.com): credentials go
     * there over TLS, and over plain HTTP only to the insecure registry's
     * own origin */
    bool send_creds =
        self->username && (!strcmp(ro.scheme, "https") || s_creds_allowed(self, realm));
    char *url = s_token_url(self, realm, ch.service, scope && *scope ? scope : ch.scope, err);
    if (!url)
        return AF_ERR_AUTH;
    int rc = 0;
    char *basic = NULL;
    s_resp_t resp = {0};
    s_req_t req = {.method = "GET", .url = url, .max_body = S_TOKEN_REPLY_MAX};
    if (send_creds && !(basic = s_basic_header(self)))
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = s_token_get(self, &req, basic, &resp, err);
    if (!rc)
        rc = s_token_take(self, &req, &resp, scope, err);
    if (resp.body)
        OPENSSL_cleanse(resp.body, resp.body_cap);
    free(resp.body);
    free(resp.location);
    free(resp.challenge);
    s_free_secret(&basic);
    free(url);
    return rc;
}

/* Answers a 401's challenge so the request can be repeated. */
static int s_authenticate(af_registry_t *self, const s_req_t *req, const s_resp_t *resp,
                          af_err_t *err)
{
    const char *ch = resp->challenge;
    if (ch && !strncasecmp(ch, "Bearer", 6))
        return s_fetch_token(self, ch, req->scope, err);
    if (ch && !strncasecmp(ch, "Basic", 5)) {
        if (!self->username) {
            s_status_error(req, resp, err);
            return af_err_prefix(err, AF_ERR_AUTH, "registry %s wants a username and password",
                                 self->host);
        }
        if (self->auth == S_AUTH_BASIC) { /* we sent them already */
            s_status_error(req, resp, err);
            return af_err_prefix(err, AF_ERR_AUTH, "registry %s rejected the credentials",
                                 self->host);
        }
        self->auth = S_AUTH_BASIC;
        return 0;
    }
    s_status_error(req, resp, err);
    return af_err_prefix(err, AF_ERR_AUTH, "registry %s: unsupported authentication challenge",
                         self->host);
}

/* ---- the request loop ------------------------------------------------- */

/* Rewinds the request's file sinks/sources for another attempt. */
static int s_rewind(const s_req_t *req, s_resp_t *resp, af_err_t *err)
{
    if (req->upload && fseeko(req->upload, 0, SEEK_SET) != 0)
        return af_err_set(err, AF_ERR_IO, "cannot rewind the upload: %s", strerror(errno));
    if (req->download) {
        if (fflush(req->download) || ftruncate(fileno(req->download), 0) ||
            fseeko(req->download, 0, SEEK_SET))
            return af_err_set(err, AF_ERR_IO, "cannot truncate the download: %s", strerror(errno));
        af_digest_destroy(&resp->dl_digest);
        if (!(resp->dl_digest = af_digest_new()))
            return af_err_set(err, AF_ERR_NOMEM, "out of memory");
        resp->downloaded = 0;
    }
    resp->sink_failed = false;
    return 0;
}

/* Sends REQ, answering auth challenges, falling back to http when allowed
 * and retrying transient failures. 0 when a reply came (any status: the
 * caller judges it), else an error naming method and URL. */
static int s_request(af_registry_t *self, const s_req_t *req, s_resp_t *resp, af_err_t *err)
{
    bool auth_answered = false, fell_back = false;
    char url_buf[S_HEADER_MAX], murl[1024];
    for (int attempt = 0;;) {
        const char *url = req->url;
        if (req->path) {
            snprintf(url_buf, sizeof url_buf, "%s://%s%s", self->scheme, self->host, req->path);
            url = url_buf;
        }
        if (s_cancelled(self))
            return af_err_set(err, AF_ERR_CANCELLED, "%s %s: cancelled", req->method,
                              s_msg_url(url, murl, sizeof murl));
        int rc = s_rewind(req, resp, err);
        if (rc)
            return rc;
        char *auth_line = NULL;
        if (self->auth == S_AUTH_BASIC)
            auth_line = s_basic_header(self);
        else if (self->auth == S_AUTH_BEARER && s_token_for(self, req->scope))
            auth_line = strdup(s_token_for(self, req->scope));
        if (auth_line && !s_creds_allowed(self, url))
            s_free_secret(&auth_line);
        CURLcode cc = s_perform(self, req, url, auth_line, resp);
        s_free_secret(&auth_line);
        if (cc == CURLE_ABORTED_BY_CALLBACK && s_cancelled(self))
            return af_err_set(err, AF_ERR_CANCELLED, "%s %s: cancelled", req->method,
                              s_msg_url(url, murl, sizeof murl));
        if (cc != CURLE_OK) {
            if (resp->too_big)
                return af_err_set(err, AF_ERR_TOOBIG, "%s %s: reply larger than the limit",
                                  req->method, s_msg_url(url, murl, sizeof murl));
            if (resp->sink_failed)
                return af_err_set(err, AF_ERR_IO, "%s %s: cannot write the download: %s",
                                  req->method, s_msg_url(url, murl, sizeof murl), strerror(errno));
            if (req->path && !self->scheme_known && self->insecure && !fell_back &&
                !strcmp(self->scheme, "https")) {
                af_debug("registry %s: HTTPS failed (%s); using plain HTTP as allowed for "
                         "insecure registries",
                         self->host, resp->errbuf[0] ? resp->errbuf : curl_easy_strerror(cc));
                snprintf(self->scheme, sizeof self->scheme, "http");
                fell_back = true;
                continue;
            }
            if (s_transient(cc) && !req->no_retry && attempt < AF_HTTP_RETRIES) {
                af_debug("%s %s: %s, retrying", req->method, s_msg_url(url, murl, sizeof murl),
                         curl_easy_strerror(cc));
                s_sleep_ms(self, S_BACKOFF_MS << attempt);
                attempt++;
                continue;
            }
            return af_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? AF_ERR_TIMEOUT : AF_ERR_NET,
                              "%s %s: %s", req->method, s_msg_url(url, murl, sizeof murl),
                              resp->errbuf[0] ? resp->errbuf : curl_easy_strerror(cc));
        }
        self->scheme_known = true;
        if (resp->status == 401 && s_creds_allowed(self, url)) {
            if (auth_answered) {
                s_status_error(req, resp, err);
                return af_err_prefix(err, AF_ERR_AUTH, "registry %s rejected the %s", self->host,
                                     self->auth == S_AUTH_BEARER ? "token" : "credentials");
            }
            auth_answered = true;
            rc = s_authenticate(self, req, resp, err);
            if (rc)
                return rc;
            continue;
        }
        if (s_transient_status(resp->status) && !req->no_retry && attempt < AF_HTTP_RETRIES) {
            af_debug("%s %s: HTTP %ld, retrying", req->method, s_msg_url(url, murl, sizeof murl),
                     resp->status);
            s_sleep_ms(self, S_BACKOFF_MS << attempt);
            attempt++;
            continue;
        }
        return 0;
    }
}

static void s_resp_free(s_resp_t *r)
{
    free(r->location);
    free(r->challenge);
    free(r->body);
    af_digest_destroy(&r->dl_digest);
    memset(r, 0, sizeof *r);
}

/* ---- public API ------------------------------------------------------- */

af_registry_t *af_registry_new(const char *host, const af_registry_opts_t *opts, af_err_t *err)
{
    af_registry_opts_t defaults = {0};
    if (!opts)
        opts = &defaults;
    const char *api = af_ref_api_host(host);
    if (!api || !*api || strlen(api) >= sizeof(((af_registry_t *)0)->host) ||
        strpbrk(api, "/@?# \t\r\n")) {
        af_err_set(err, AF_ERR_INVAL, "invalid registry host \"%s\"", host ? host : "");
        return NULL;
    }
    af_registry_t *self = calloc(1, sizeof *self);
    if (!self)
        goto nomem;
    snprintf(self->host, sizeof self->host, "%s", api);
    snprintf(self->scheme, sizeof self->scheme, "https");
    self->insecure = opts->insecure;
    self->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : AF_HTTP_TIMEOUT_S;
    if (opts->username && *opts->username) {
        if (strlen(opts->username) > AF_MAX_SECRET ||
            (opts->password && strlen(opts->password) > AF_MAX_SECRET)) {
            af_registry_destroy(&self);
            af_err_set(err, AF_ERR_TOOBIG, "registry %s: credentials too long", api);
            return NULL;
        }
        if (!(self->username = strdup(opts->username)) ||
            !(self->password = strdup(opts->password ? opts->password : "")))
            goto nomem;
    }
    if (opts->ca_file && !(self->ca_file = strdup(opts->ca_file)))
        goto nomem;
    if (!(self->curl = curl_easy_init()))
        goto nomem;
    return self;
nomem:
    af_registry_destroy(&self);
    af_err_set(err, AF_ERR_NOMEM, "registry %s: out of memory", api);
    return NULL;
}

void af_registry_set_cancel(af_registry_t *self, af_registry_cancel_fn *fn, void *arg)
{
    self->cancel = fn;
    self->cancel_arg = arg;
}

void af_registry_destroy(af_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_registry_t *self = *self_p;
    s_free_secret(&self->username);
    s_free_secret(&self->password);
    for (size_t i = 0; i < S_TOKEN_SLOTS; i++) {
        free(self->tokens[i].scope);
        s_free_secret(&self->tokens[i].token);
    }
    free(self->ca_file);
    if (self->curl)
        curl_easy_cleanup(self->curl);
    free(self);
    *self_p = NULL;
}

const char *af_registry_scheme(const af_registry_t *self)
{
    return self->scheme;
}

int af_registry_ping(af_registry_t *self, af_err_t *err)
{
    s_req_t req = {.method = "GET", .path = "/v2/", .max_body = S_ERROR_BODY_MAX};
    s_resp_t resp = {0};
    int rc = s_request(self, &req, &resp, err);
    if (!rc && resp.status != 200)
        rc = s_status_error(&req, &resp, err);
    s_resp_free(&resp);
    return rc;
}

/* "repository:REPO:ACTIONS" into buf. */
static int s_resolve(af_registry_t *self, const char *base, const char *location, const char *query,
                     char **url_p, af_err_t *err);

int af_registry_push_check(af_registry_t *self, const char *repo, af_err_t *err)
{
    if (!repo || !s_repo_ok(repo))
        return af_err_set(err, AF_ERR_INVAL, "invalid repository name \"%s\"", repo ? repo : "");
    char path[600], scope[600];
    snprintf(path, sizeof path, "/v2/%s/blobs/uploads/", repo);
    snprintf(scope, sizeof scope, "repository:%s:pull,push", repo);
    s_req_t req = {.method = "POST", .path = path, .scope = scope, .max_body = S_ERROR_BODY_MAX};
    s_resp_t resp = {0};
    char *url = NULL;
    int rc = s_request(self, &req, &resp, err);
    if (!rc && resp.status != 202)
        rc = s_status_error(&req, &resp, err);
    if (!rc && resp.location && !s_resolve(self, resp.url, resp.location, NULL, &url, NULL)) {
        /* cancel the empty session; a registry that cannot is not wrong,
         * it purges abandoned uploads itself */
        s_req_t del = {
            .method = "DELETE", .url = url, .scope = scope, .max_body = S_ERROR_BODY_MAX};
        af_err_t ignored;
        if (!s_request(self, &del, &resp, &ignored) && resp.status >= 300)
            af_debug("registry %s: cancelling the test upload: HTTP %ld", self->host, resp.status);
    }
    free(url);
    s_resp_free(&resp);
    return rc;
}

static const char *s_scope(char *buf, size_t len, const char *repo, const char *actions)
{
    snprintf(buf, len, "repository:%s:%s", repo, actions);
    return buf;
}

static int s_check_args(const char *repo, const char *digest, af_err_t *err)
{
    if (!s_repo_ok(repo))
        return af_err_set(err, AF_ERR_INVAL, "invalid repository name \"%s\"", repo ? repo : "");
    if (digest && !af_digest_valid(digest))
        return af_err_set(err, AF_ERR_INVAL, "invalid digest \"%s\"", digest);
    return 0;
}

/* Sends the HEAD request REQ: *EXISTS is true on 200 (then the
 * Docker-Content-Digest goes to DIGEST_OUT, which may be NULL) and false
 * on 404; any other status is an error. */
static int s_head(af_registry_t *self, const s_req_t *req, bool *exists, char *digest_out,
                  af_err_t *err)
{
    s_resp_t resp = {0};
    *exists = false;
    int rc = s_request(self, req, &resp, err);
    if (!rc) {
        if (resp.status == 200) {
            *exists = true;
            if (digest_out)
                memcpy(digest_out, resp.digest, AF_DIGEST_STR_MAX);
        } else if (resp.status != 404) {
            rc = s_status_error(req, &resp, err);
        }
    }
    s_resp_free(&resp);
    return rc;
}

int af_registry_blob_exists(af_registry_t *self, const char *repo, const char *digest, bool *exists,
                            af_err_t *err)
{
    int rc = s_check_args(repo, digest, err);
    if (rc)
        return rc;
    char path[512], scope[300];
    snprintf(path, sizeof path, "/v2/%s/blobs/%s", repo, digest);
    s_req_t req = {
        .method = "HEAD", .path = path, .scope = s_scope(scope, sizeof scope, repo, "pull")};
    return s_head(self, &req, exists, NULL, err);
}

/* Checks a 201's Docker-Content-Digest against what we sent. */
static int s_check_pushed_digest(const s_req_t *req, const s_resp_t *resp, const char *want,
                                 af_err_t *err)
{
    char murl[1024];
    if (resp->digest[0] && strcmp(resp->digest, want))
        return af_err_set(err, AF_ERR_DIGEST, "%s %s: registry stored %s, expected %s", req->method,
                          s_msg_url(resp->url, murl, sizeof murl), resp->digest, want);
    return 0;
}

/* An upload session's LOCATION resolved against BASE (the URL that
 * answered with it; NULL or "" for the registry's root) by libcurl's URL
 * parser, with QUERY (may be NULL) added to its query, into *url_p
 * (caller frees). An error when it is unusable or would leave TLS for a
 * registry that is not insecure. */
static int s_resolve(af_registry_t *self, const char *base, const char *location, const char *query,
                     char **url_p, af_err_t *err)
{
    char *url = NULL, murl[1024], root[300];
    int rc = 0;
    *url_p = NULL;
    if (!base || !*base) {
        snprintf(root, sizeof root, "%s://%s/", self->scheme, self->host);
        base = root;
    }
    CURLU *h = curl_url();
    s_origin_t o;
    if (!h || curl_url_set(h, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_set(h, CURLUPART_URL, location, 0) != CURLUE_OK ||
        curl_url_set(h, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
        curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
        curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
        curl_url_set(h, CURLUPART_QUERY, query, CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_URL, &url, 0) != CURLUE_OK || !s_origin(url, &o)) {
        rc = af_err_set(err, AF_ERR_PROTO, "registry %s: unusable upload Location \"%.200s\"",
                        self->host, s_msg_url(location, murl, sizeof murl));
        curl_free(url);
        url = NULL;
    } else if (!s_scheme_allowed(self, &o)) {
        rc =
            af_err_set(err, AF_ERR_PROTO,
                       "registry %s: refusing the upload Location %s: it leaves TLS for plain HTTP "
                       "(only a registry given with --insecure-registry may use HTTP)",
                       self->host, s_msg_url(location, murl, sizeof murl));
        curl_free(url);
        url = NULL;
    }
    curl_url_cleanup(h);
    if (url && !(*url_p = strdup(url)))
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
    curl_free(url);
    return rc;
}

/* The URL to PUT the upload's content to: the Location with
 * digest=DIGEST added. */
static int s_upload_url(af_registry_t *self, const char *base, const char *location,
                        const char *digest, char **url_p, af_err_t *err)
{
    char query[AF_DIGEST_STR_MAX + 8];
    snprintf(query, sizeof query, "digest=%s", digest);
    return s_resolve(self, base, location, query, url_p, err);
}

/* POSTs a cross-repository mount of DIGEST from FROM_REPO into REPO with
 * token SCOPE. *mounted is true on 201 (its digest checked). On 202 the
 * registry opened an upload session instead: its Location goes to
 * *location_p (caller frees). */
static int s_mount(af_registry_t *self, const char *repo, const char *digest, const char *from_repo,
                   const char *scope, bool *mounted, char **location_p, af_err_t *err)
{
    char path_buf[1024];
    s_resp_t resp = {0};
    *mounted = false;
    *location_p = NULL;
    snprintf(path_buf, sizeof path_buf, "/v2/%s/blobs/uploads/?mount=%s&from=%s", repo, digest,
             from_repo);
    s_req_t req = {
        .method = "POST", .path = path_buf, .scope = scope, .max_body = S_ERROR_BODY_MAX};
    int rc = s_request(self, &req, &resp, err);
    if (rc == 0 && resp.status == 201) {
        rc = s_check_pushed_digest(&req, &resp, digest, err);
        *mounted = rc == 0;
        if (*mounted)
            af_debug("blob %s mounted from %s into %s", digest, from_repo, repo);
    } else if (rc == 0 && (resp.status != 202 || !resp.location)) {
        rc = s_status_error(&req, &resp, err);
    } else if (rc == 0) {
        *location_p = resp.location;
        resp.location = NULL;
    }
    s_resp_free(&resp);
    return rc;
}

int af_registry_blob_mount(af_registry_t *self, const char *repo, const char *digest,
                           const char *from_repo, bool *mounted, af_err_t *err)
{
    *mounted = false;
    int rc = s_check_args(repo, digest, err);
    if (rc)
        return rc;
    if (!from_repo || !s_repo_ok(from_repo) || !strcmp(from_repo, repo))
        return af_err_set(err, AF_ERR_INVAL, "invalid repository to mount from \"%s\"",
                          from_repo ? from_repo : "");
    char scope[600];
    snprintf(scope, sizeof scope, "repository:%s:pull,push repository:%s:pull", repo, from_repo);
    char *location = NULL;
    rc = s_mount(self, repo, digest, from_repo, scope, mounted, &location, err);
    /* a refused mount leaves an empty upload session, which the registry
     * purges with its other abandoned uploads */
    free(location);
    return rc;
}

uint64_t af_registry_pushed_bytes(const af_registry_t *self)
{
    return self->pushed_bytes;
}

/* Opens the blob file PATH and checks it holds SIZE bytes. */
static int s_blob_file(const char *path, uint64_t size, FILE **f_p, af_err_t *err)
{
    struct stat st;
    if (!(*f_p = fopen(path, "rb")) || fstat(fileno(*f_p), &st) < 0)
        return af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    if ((uint64_t)st.st_size != size)
        return af_err_set(err, AF_ERR_INVAL, "%s: %jd bytes, expected %" PRIu64, path,
                          (intmax_t)st.st_size, size);
    return 0;
}

/* POST an upload session for REPO; *LOCATION_P (caller frees) is where the
 * blob goes. RESP keeps the POST's URL, which the location is relative to. */
static int s_upload_session(af_registry_t *self, const char *repo, const char *rscope,
                            s_resp_t *resp, char **location_p, af_err_t *err)
{
    char path[1024], murl[1024];
    snprintf(path, sizeof path, "/v2/%s/blobs/uploads/", repo);
    s_req_t req = {.method = "POST", .path = path, .scope = rscope, .max_body = S_ERROR_BODY_MAX};
    int rc = s_request(self, &req, resp, err);
    if (rc)
        return rc;
    if (resp->status != 202 || !resp->location) {
        rc = s_status_error(&req, resp, err);
        if (resp->status == 202)
            rc = af_err_set(err, AF_ERR_PROTO, "POST %s: 202 without a Location",
                            s_msg_url(resp->url, murl, sizeof murl));
        return rc;
    }
    *location_p = resp->location;
    resp->location = NULL;
    return 0;
}

/* The monolithic PUT of the blob in F (SIZE bytes) to URL. */
static s_req_t s_upload_req(const char *url, const char *scope, FILE *f, uint64_t size,
                            af_registry_progress_fn *progress, void *arg)
{
    return (s_req_t){.method = "PUT",
                     .url = url,
                     .scope = scope,
                     .content_type = "application/octet-stream",
                     .upload = f,
                     .upload_size = size,
                     .max_body = S_ERROR_BODY_MAX,
                     .no_retry = true,
                     .progress = progress,
                     .progress_arg = arg};
}

/* Long (about 90 lines): HEAD, mount, session, PUT and the restart of a
 * lost session are one retry loop whose state (location, scope, URL) the
 * steps hand to each other; the steps themselves are helpers above. */
int af_registry_blob_push(af_registry_t *self, const char *repo, const char *digest,
                          const char *path, uint64_t size, const char *from_repo,
                          af_registry_progress_fn *progress, void *arg, af_err_t *err)
{
    int rc = s_check_args(repo, digest, err);
    if (rc)
        return rc;
    if (from_repo && !strcmp(from_repo, repo))
        from_repo = NULL;
    if (from_repo && !s_repo_ok(from_repo))
        return af_err_set(err, AF_ERR_INVAL, "invalid repository name \"%s\"", from_repo);
    bool exists = false;
    if ((rc = af_registry_blob_exists(self, repo, digest, &exists, err)))
        return rc;
    if (exists) {
        af_debug("blob %s already in %s/%s", digest, self->host, repo);
        if (progress)
            progress(size, size, arg);
        return 0;
    }

    FILE *f = NULL;
    char *location = NULL, *put_url = NULL;
    s_resp_t resp = {0};
    char scope[600], rscope[300], murl[1024];
    snprintf(rscope, sizeof rscope, "repository:%s:pull,push", repo);
    if (from_repo)
        snprintf(scope, sizeof scope, "%s repository:%s:pull", rscope, from_repo);

    if ((rc = s_blob_file(path, size, &f, err)))
        goto out;

    if (from_repo) {
        bool mounted = false;
        if ((rc = s_mount(self, repo, digest, from_repo, scope, &mounted, &location, err)))
            goto out;
        if (mounted) {
            if (progress)
                progress(size, size, arg);
            goto out;
        }
        /* mount refused: upload in the session it opened (location) */
    }
    /* the PUT goes with the token of the POST that opened its session */
    const char *put_scope = from_repo ? scope : rscope;

    for (int attempt = 0;; attempt++) {
        if (!location) {
            if ((rc = s_upload_session(self, repo, rscope, &resp, &location, err)))
                goto out;
            put_scope = rscope;
        }
        free(put_url);
        put_url = NULL;
        if ((rc = s_upload_url(self, resp.url, location, digest, &put_url, err)))
            goto out;
        free(location);
        location = NULL;
        s_req_t put = s_upload_req(put_url, put_scope, f, size, progress, arg);
        af_err_t put_err;
        af_err_clear(&put_err);
        rc = s_request(self, &put, &resp, &put_err);
        bool transient =
            rc == AF_ERR_NET || rc == AF_ERR_TIMEOUT || (!rc && s_transient_status(resp.status));
        if (transient && attempt < AF_HTTP_RETRIES) {
            /* the upload session may be gone: start a new one */
            af_debug("PUT %s: %s, restarting the upload", s_msg_url(put_url, murl, sizeof murl),
                     rc ? put_err.msg : "server error");
            s_sleep_ms(self, S_BACKOFF_MS << attempt);
            continue;
        }
        if (rc) {
            if (err)
                *err = put_err;
            goto out;
        }
        if (resp.status != 201) {
            rc = s_status_error(&put, &resp, err);
            goto out;
        }
        rc = s_check_pushed_digest(&put, &resp, digest, err);
        if (rc == 0)
            self->pushed_bytes += size;
        goto out;
    }
out:
    if (f)
        fclose(f);
    free(location);
    free(put_url);
    s_resp_free(&resp);
    return rc;
}

/* Checks that what a GET of RESP's URL returned, whose digest is GOT, is
 * WANT. */
static int s_check_got_digest(const s_resp_t *resp, const char *want, const char *got,
                              af_err_t *err)
{
    if (!strcmp(got, want))
        return 0;
    char murl[1024];
    return af_err_set(err, AF_ERR_DIGEST, "GET %s: content is %s",
                      s_msg_url(resp->url, murl, sizeof murl), got);
}

/* GETs blob DIGEST into FILE F or memory (max bytes), verifying it. */
static int s_blob_download(af_registry_t *self, const char *repo, const char *digest, FILE *f,
                           uint64_t max, s_resp_t *resp, af_err_t *err)
{
    int rc = s_check_args(repo, digest, err);
    if (rc)
        return rc;
    char path[512], scope[300], got[AF_DIGEST_STR_MAX];
    snprintf(path, sizeof path, "/v2/%s/blobs/%s", repo, digest);
    s_req_t req = {.method = "GET",
                   .path = path,
                   .scope = s_scope(scope, sizeof scope, repo, "pull"),
                   .download = f,
                   .max_download = max,
                   .max_body = f ? 0 : (size_t)max,
                   .follow = true};
    if ((rc = s_request(self, &req, resp, err)))
        return rc;
    if (resp->status != 200)
        return s_status_error(&req, resp, err);
    if (f) {
        char murl[1024];
        if (fflush(f) || af_digest_final(resp->dl_digest, got))
            return af_err_set(err, AF_ERR_IO, "GET %s: cannot write the download",
                              s_msg_url(resp->url, murl, sizeof murl));
    } else if (af_digest_buffer(resp->body ? resp->body : "", resp->body_len, got)) {
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    }
    return s_check_got_digest(resp, digest, got, err);
}

int af_registry_blob_fetch(af_registry_t *self, const char *repo, const char *digest,
                           const char *path, uint64_t max_size, af_err_t *err)
{
    FILE *f = fopen(path, "w+b");
    if (!f)
        return af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    s_resp_t resp = {0};
    int rc = s_blob_download(self, repo, digest, f, max_size, &resp, err);
    if (fclose(f) && !rc)
        rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    if (rc)
        unlink(path);
    s_resp_free(&resp);
    return rc;
}

int af_registry_blob_get(af_registry_t *self, const char *repo, const char *digest, size_t max_size,
                         char **body_p, size_t *len_p, af_err_t *err)
{
    *body_p = NULL;
    if (len_p)
        *len_p = 0;
    if (max_size == 0)
        max_size = AF_CONFIG_MAX_BYTES;
    s_resp_t resp = {0};
    int rc = s_blob_download(self, repo, digest, NULL, max_size, &resp, err);
    if (!rc) {
        if (!resp.body && !(resp.body = calloc(1, 1))) {
            rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        } else {
            *body_p = resp.body;
            if (len_p)
                *len_p = resp.body_len;
            resp.body = NULL;
        }
    }
    s_resp_free(&resp);
    return rc;
}

/* Checks REPO and REFERENCE (a tag or a digest) and writes the manifest's
 * API path into PATH (CAP bytes). 0 or AF_ERR_INVAL. */
static int s_manifest_path(const char *repo, const char *reference, char *path, size_t cap,
                           af_err_t *err)
{
    int rc = s_check_args(repo, NULL, err);
    if (rc)
        return rc;
    if (!s_reference_ok(reference))
        return af_err_set(err, AF_ERR_INVAL, "invalid tag or digest \"%s\"",
                          reference ? reference : "");
    snprintf(path, cap, "/v2/%s/manifests/%s", repo, reference);
    return 0;
}

int af_registry_manifest_put(af_registry_t *self, const char *repo, const char *reference,
                             const char *media_type, const char *body, size_t len,
                             char digest_out[AF_DIGEST_STR_MAX], af_err_t *err)
{
    char path[600], scope[300];
    int rc = s_manifest_path(repo, reference, path, sizeof path, err);
    if (rc)
        return rc;
    if (!media_type || !*media_type || strlen(media_type) > AF_MAX_NAME ||
        strpbrk(media_type, "\r\n"))
        return af_err_set(err, AF_ERR_INVAL, "manifest for %s: invalid media type", reference);
    if (!body || len > AF_MANIFEST_MAX_BYTES)
        return af_err_set(err, AF_ERR_TOOBIG, "manifest for %s: %zu bytes, more than %d", reference,
                          len, AF_MANIFEST_MAX_BYTES);
    char dg[AF_DIGEST_STR_MAX];
    if (af_digest_buffer(body, len, dg))
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    if (strchr(reference, ':') && strcmp(reference, dg))
        return af_err_set(err, AF_ERR_DIGEST, "manifest for %s/%s@%s: the body's digest is %s",
                          self->host, repo, reference, dg);
    s_req_t req = {.method = "PUT",
                   .path = path,
                   .scope = s_scope(scope, sizeof scope, repo, "pull,push"),
                   .content_type = media_type,
                   .body = body,
                   .body_len = len,
                   .max_body = S_ERROR_BODY_MAX};
    s_resp_t resp = {0};
    /* The body's digest was checked above, so DIGEST_INVALID is about a
     * blob the manifest references. docker-registry answers it when it
     * reads a blob's link in the repository while another client's push
     * of the same blob rewrites that link (two platforms sharing a layer
     * or a config push at once): seen here, gone a moment later. So that
     * answer is retried, with the transient-failure backoff. */
    for (int attempt = 0;; attempt++) {
        rc = s_request(self, &req, &resp, err);
        if (!rc && resp.status != 201)
            rc = s_status_error(&req, &resp, err);
        if (rc != AF_ERR_DIGEST || attempt >= AF_HTTP_RETRIES || s_cancelled(self))
            break;
        af_debug("PUT manifest %s: %s; retrying", reference, af_err_msg(err, rc));
        s_resp_free(&resp);
        af_err_clear(err);
        s_sleep_ms(self, S_BACKOFF_MS << attempt);
    }
    if (!rc)
        rc = s_check_pushed_digest(&req, &resp, dg, err);
    if (!rc && digest_out)
        memcpy(digest_out, dg, AF_DIGEST_STR_MAX);
    s_resp_free(&resp);
    return rc;
}

int af_registry_manifest_get(af_registry_t *self, const char *repo, const char *reference,
                             char **body_p, size_t *len_p, char **media_type_p,
                             char digest_out[AF_DIGEST_STR_MAX], af_err_t *err)
{
    *body_p = NULL;
    if (media_type_p)
        *media_type_p = NULL;
    if (len_p)
        *len_p = 0;
    char path[600], scope[300], dg[AF_DIGEST_STR_MAX];
    int rc = s_manifest_path(repo, reference, path, sizeof path, err);
    if (rc)
        return rc;
    s_req_t req = {.method = "GET",
                   .path = path,
                   .scope = s_scope(scope, sizeof scope, repo, "pull"),
                   .accept = AF_MT_ACCEPT_MANIFESTS,
                   .max_body = AF_MANIFEST_MAX_BYTES};
    s_resp_t resp = {0};
    if ((rc = s_request(self, &req, &resp, err)))
        goto out;
    if (resp.status != 200) {
        rc = s_status_error(&req, &resp, err);
        goto out;
    }
    if (!resp.body && !(resp.body = calloc(1, 1))) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (af_digest_buffer(resp.body, resp.body_len, dg)) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (strchr(reference, ':') && (rc = s_check_got_digest(&resp, reference, dg, err)))
        goto out;
    if (media_type_p && !(*media_type_p = strdup(resp.content_type))) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (digest_out)
        memcpy(digest_out, dg, AF_DIGEST_STR_MAX);
    if (len_p)
        *len_p = resp.body_len;
    *body_p = resp.body;
    resp.body = NULL;
out:
    s_resp_free(&resp);
    return rc;
}

int af_registry_manifest_exists(af_registry_t *self, const char *repo, const char *reference,
                                bool *exists, char digest_out[AF_DIGEST_STR_MAX], af_err_t *err)
{
    *exists = false;
    if (digest_out)
        digest_out[0] = '\0';
    char path[600], scope[300];
    int rc = s_manifest_path(repo, reference, path, sizeof path, err);
    if (rc)
        return rc;
    s_req_t req = {.method = "HEAD",
                   .path = path,
                   .scope = s_scope(scope, sizeof scope, repo, "pull"),
                   .accept = AF_MT_ACCEPT_MANIFESTS};
    return s_head(self, &req, exists, digest_out, err);
}
