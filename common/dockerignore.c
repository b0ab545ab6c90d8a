/* dockerignore.c -- .dockerignore patterns, matched the way Docker does.
 *
 * The context packer asks two questions per walked entry: is this path
 * excluded, and (for an excluded directory) could a later "!" pattern
 * re-include something below it, so the walk must still go in. Each
 * pattern is compiled once into a small token program and matched by a
 * set-of-states simulation, linear in pattern x path length, so no pattern
 * can make matching blow up. The semantics are those of moby's
 * patternmatcher (Go regexp form): `*` = [^/]*, `?` = [^/], `**` followed
 * by more = (.* /)?, a trailing `**` = .*, classes as in filepath.Match. */
#include "dockerignore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum {
    S_LIT,       /* one literal byte */
    S_ANY,       /* ? */
    S_CLASS,     /* [...] */
    S_STAR,      /* * */
    S_DSTAR,     /* ** followed by more: (.*\/)? */
    S_DSTAR_END, /* trailing **: .* */
} s_kind_t;

typedef struct {
    uint8_t kind;
    uint8_t ch;
    uint32_t cls; /* index into classes, S_CLASS only */
} s_tok_t;

typedef struct {
    uint8_t bits[32];
} s_class_t;

typedef struct {
    char *text; /* cleaned, without "!" */
    bool exclusion;
    s_tok_t *toks;
    size_t ntok;
    s_class_t *classes;
    size_t nclass;
} s_pattern_t;

struct af_dockerignore {
    s_pattern_t *pats;
    size_t n, cap;
    bool any_exclusion;
    uint8_t *cur, *next; /* matcher scratch, S_NSTATES(max ntok) each */
    size_t scratch_cap;
};

af_dockerignore_t *af_dockerignore_new(void)
{
    return calloc(1, sizeof(af_dockerignore_t));
}

static void s_pattern_free(s_pattern_t *p)
{
    free(p->text);
    free(p->toks);
    free(p->classes);
    memset(p, 0, sizeof *p);
}

void af_dockerignore_destroy(af_dockerignore_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_dockerignore_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        s_pattern_free(&self->pats[i]);
    free(self->pats);
    free(self->cur);
    free(self->next);
    free(self);
    *self_p = NULL;
}

size_t af_dockerignore_count(const af_dockerignore_t *self)
{
    return self ? self->n : 0;
}

/* Lexical clean like Go's filepath.Clean. OUT has room for strlen(in)+2.
 * Cannot fail. */
static void s_clean(const char *in, char *out)
{
    bool rooted = in[0] == '/';
    size_t o = 0;
    size_t floor = 0; /* out[0..floor) is "../" prefix that cannot be popped */
    if (rooted)
        out[o++] = '/';
    size_t base = o;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 1 && p[0] == '.') {
            /* skip */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (o > base + floor) {
                /* pop the last component */
                while (o > base + floor && out[o - 1] != '/')
                    o--;
                if (o > base + floor)
                    o--; /* the separator */
            } else if (!rooted) {
                if (o > base)
                    out[o++] = '/';
                out[o++] = '.';
                out[o++] = '.';
                floor = o - base;
            }
        } else {
            if (o > base)
                out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
}

static int s_class_parse(const char **pp, s_class_t *cls)
{
    const char *p = *pp; /* just after '[' */
    bool negate = false;
    memset(cls, 0, sizeof *cls);
    if (*p == '^') {
        negate = true;
        p++;
    }
    bool first = true;
    for (;;) {
        if (*p == '\0')
            return -1;
        if (*p == ']' && !first)
            break;
        first = false;
        unsigned char lo = (unsigned char)*p;
        if (lo == '\\') {
            p++;
            if (*p == '\0')
                return -1;
            lo = (unsigned char)*p;
        }
        p++;
        unsigned char hi = lo;
        if (*p == '-' && p[1] != ']' && p[1] != '\0') {
            p++;
            hi = (unsigned char)*p;
            if (hi == '\\') {
                p++;
                if (*p == '\0')
                    return -1;
                hi = (unsigned char)*p;
            }
            p++;
            if (hi < lo)
                return -1;
        }
        for (unsigned c = lo; c <= hi; c++)
            cls->bits[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
    if (negate)
        for (size_t i = 0; i < sizeof cls->bits; i++)
            cls->bits[i] = (uint8_t)~cls->bits[i];
    cls->bits['/' >> 3] &= (uint8_t) ~(1u << ('/' & 7)); /* never a separator */
    *pp = p + 1;
    return 0;
}

/* Compiles P->text into tokens. -1 on a malformed pattern, -2 on OOM. */
static int s_compile(s_pattern_t *p)
{
    size_t len = strlen(p->text);
    p->toks = calloc(len + 1, sizeof *p->toks);
    if (!p->toks)
        return -2;
    const char *s = p->text;
    while (*s) {
        s_tok_t t = {0};
        if (s[0] == '*' && s[1] == '*') {
            s += 2;
            if (*s == '/')
                s++;
            t.kind = *s ? S_DSTAR : S_DSTAR_END;
        } else if (*s == '*') {
            t.kind = S_STAR;
            s++;
        } else if (*s == '?') {
            t.kind = S_ANY;
            s++;
        } else if (*s == '[') {
            s_class_t *nc = realloc(p->classes, (p->nclass + 1) * sizeof *nc);
            if (!nc)
                return -2;
            p->classes = nc;
            s++;
            if (s_class_parse(&s, &p->classes[p->nclass]) != 0)
                return -1;
            t.kind = S_CLASS;
            t.cls = (uint32_t)p->nclass++;
        } else if (*s == '\\') {
            s++;
            if (!*s)
                return -1;
            t.kind = S_LIT;
            t.ch = (uint8_t)*s++;
        } else {
            t.kind = S_LIT;
            t.ch = (uint8_t)*s++;
        }
        /* collapse runs of stars: same language, fewer states */
        if (p->ntok > 0 && t.kind == S_STAR && p->toks[p->ntok - 1].kind == S_STAR)
            continue;
        p->toks[p->ntok++] = t;
    }
    return 0;
}

static bool s_class_has(const s_class_t *c, unsigned char ch)
{
    return (c->bits[ch >> 3] >> (ch & 7)) & 1;
}

/* NFA states: 2*i = "before token i", 2*i+1 = "inside the .* of a ** at
 * token i" (that state must still consume a '/' before moving on). */
#define S_NSTATES(ntok) (2 * ((ntok) + 1))

static void s_closure(const s_pattern_t *p, uint8_t *set)
{
    /* epsilon moves only go forward: one pass in order is enough */
    for (size_t i = 0; i < p->ntok; i++) {
        uint8_t k = p->toks[i].kind;
        if (set[2 * i] && (k == S_STAR || k == S_DSTAR || k == S_DSTAR_END))
            set[2 * (i + 1)] = 1;
    }
}

/* Full match of S[0..len) against P; with PARENTS, a match of any parent
 * directory S[0..k) (S[k] == '/') counts too. CUR/NEXT have
 * S_NSTATES(ntok) bytes. */
static bool s_match(const s_pattern_t *p, const char *s, size_t len, bool parents, uint8_t *cur,
                    uint8_t *next)
{
    size_t n = p->ntok;
    size_t ns = S_NSTATES(n);
    memset(cur, 0, ns);
    cur[0] = 1;
    s_closure(p, cur);
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        bool any = false;
        if (parents && c == '/' && k > 0 && cur[2 * n])
            return true;
        memset(next, 0, ns);
        for (size_t i = 0; i < n; i++) {
            const s_tok_t *t = &p->toks[i];
            if (cur[2 * i + 1]) { /* inside a **: anything, or the closing '/' */
                next[2 * i + 1] = 1;
                if (c == '/')
                    next[2 * (i + 1)] = 1;
            }
            if (!cur[2 * i])
                continue;
            switch (t->kind) {
            case S_LIT:
                if (c == t->ch)
                    next[2 * (i + 1)] = 1;
                break;
            case S_ANY:
                if (c != '/')
                    next[2 * (i + 1)] = 1;
                break;
            case S_CLASS:
                if (s_class_has(&p->classes[t->cls], c))
                    next[2 * (i + 1)] = 1;
                break;
            case S_STAR:
                if (c != '/')
                    next[2 * i] = 1;
                break;
            case S_DSTAR:
                next[2 * i + 1] = 1;
                if (c == '/')
                    next[2 * (i + 1)] = 1;
                break;
            case S_DSTAR_END:
                next[2 * i] = 1;
                break;
            }
        }
        s_closure(p, next);
        for (size_t i = 0; i < ns; i++)
            any |= next[i];
        if (!any)
            return false;
        uint8_t *tmp = cur;
        cur = next;
        next = tmp;
    }
    return cur[2 * n] != 0;
}

static int s_ensure_scratch(af_dockerignore_t *self, size_t ntok)
{
    if (S_NSTATES(ntok) <= self->scratch_cap)
        return 0;
    uint8_t *a = realloc(self->cur, S_NSTATES(ntok));
    if (!a)
        return -1;
    self->cur = a;
    uint8_t *b = realloc(self->next, S_NSTATES(ntok));
    if (!b)
        return -1;
    self->next = b;
    self->scratch_cap = S_NSTATES(ntok);
    return 0;
}

/* Adds one already trimmed, non-comment line. */
static int s_add(af_dockerignore_t *self, const char *line, size_t len, const char *name,
                 size_t lineno, af_err_t *err)
{
    bool exclusion = false;
    if (len > 0 && line[0] == '!') {
        exclusion = true;
        line++;
        len--;
        while (len > 0 && (*line == ' ' || *line == '\t')) {
            line++;
            len--;
        }
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
    }
    if (exclusion && len == 0)
        return af_err_set(err, AF_ERR_PARSE, "%s:%zu: illegal exclusion pattern: \"!\"", name,
                          lineno);
    if (len > AF_DOCKERIGNORE_MAX_PATTERN)
        return af_err_set(err, AF_ERR_TOOBIG, "%s:%zu: pattern longer than %d bytes", name, lineno,
                          AF_DOCKERIGNORE_MAX_PATTERN);
    if (memchr(line, '\0', len))
        return af_err_set(err, AF_ERR_PARSE, "%s:%zu: NUL byte in pattern", name, lineno);
    if (self->n >= AF_DOCKERIGNORE_MAX_PATTERNS)
        return af_err_set(err, AF_ERR_TOOBIG, "%s:%zu: more than %d patterns", name, lineno,
                          AF_DOCKERIGNORE_MAX_PATTERNS);
    if (self->n == self->cap) {
        size_t ncap = self->cap ? self->cap * 2 : 16;
        s_pattern_t *np = realloc(self->pats, ncap * sizeof *np);
        if (!np)
            return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", name);
        self->pats = np;
        self->cap = ncap;
    }
    char *raw = strndup(line, len);
    s_pattern_t p = {0};
    p.text = malloc(len + 3);
    if (!raw || !p.text) {
        free(raw);
        free(p.text);
        return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", name);
    }
    s_clean(raw, p.text);
    free(raw);
    if (p.text[0] == '/' && p.text[1] != '\0')
        memmove(p.text, p.text + 1, strlen(p.text));
    p.exclusion = exclusion;
    int rc = s_compile(&p);
    if (rc == -2) {
        s_pattern_free(&p);
        return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", name);
    }
    if (rc != 0) {
        rc = af_err_set(err, AF_ERR_PARSE, "%s:%zu: syntax error in pattern \"%s\"", name, lineno,
                        p.text);
        s_pattern_free(&p);
        return rc;
    }
    if (s_ensure_scratch(self, p.ntok) != 0) {
        s_pattern_free(&p);
        return af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", name);
    }
    self->any_exclusion |= exclusion;
    self->pats[self->n++] = p;
    return 0;
}

static bool s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

int af_dockerignore_parse(af_dockerignore_t *self, const char *text, size_t len, const char *name,
                          af_err_t *err)
{
    if (!name)
        name = ".dockerignore";
    if (len > AF_DOCKERIGNORE_MAX_BYTES)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: larger than %d bytes", name,
                          AF_DOCKERIGNORE_MAX_BYTES);
    size_t pos = 0, lineno = 0;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3; /* UTF-8 BOM */
    while (pos < len) {
        const char *l = text + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - l) : len - pos;
        pos += ll + (nl ? 1 : 0);
        lineno++;
        if (ll > 0 && l[0] == '#')
            continue;
        while (ll > 0 && s_space(*l)) {
            l++;
            ll--;
        }
        while (ll > 0 && s_space(l[ll - 1]))
            ll--;
        if (ll == 0)
            continue;
        int rc = s_add(self, l, ll, name, lineno, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int af_dockerignore_load(af_dockerignore_t *self, const char *path, af_err_t *err)
{
    int rc = 0;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = af_err_set(err, AF_ERR_INVAL, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > AF_DOCKERIGNORE_MAX_BYTES) {
        rc = af_err_set(err, AF_ERR_TOOBIG, "%s: larger than %d bytes", path,
                        AF_DOCKERIGNORE_MAX_BYTES);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t have = 0;
    while (have < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + have, (size_t)st.st_size - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = af_err_set(err, AF_ERR_IO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        have += (size_t)r;
    }
    rc = af_dockerignore_parse(self, buf, have, path, err);
out:
    free(buf);
    close(fd);
    return rc;
}

bool af_dockerignore_excluded(af_dockerignore_t *self, const char *path)
{
    if (!self || self->n == 0)
        return false;
    size_t len = strlen(path);
    bool matched = false;
    for (size_t i = 0; i < self->n; i++) {
        const s_pattern_t *p = &self->pats[i];
        /* an include can only flip an excluded path back, and vice versa */
        if (p->exclusion != matched)
            continue;
        /* a pattern matching a parent directory matches everything below */
        if (s_match(p, path, len, true, self->cur, self->next))
            matched = !p->exclusion;
    }
    return matched;
}

/* Does pattern component PC (a glob, no '/') match the name D[0..dlen)? */
static bool s_component_matches(const char *pc, size_t pclen, const char *d, size_t dlen)
{
    s_pattern_t p = {0};
    bool m = true; /* on OOM say yes: conservative */
    p.text = strndup(pc, pclen);
    if (!p.text)
        return true;
    if (s_compile(&p) == 0) {
        uint8_t *a = malloc(S_NSTATES(p.ntok)), *b = malloc(S_NSTATES(p.ntok));
        if (a && b)
            m = s_match(&p, d, dlen, false, a, b);
        free(a);
        free(b);
    }
    s_pattern_free(&p);
    return m;
}

bool af_dockerignore_may_include_below(af_dockerignore_t *self, const char *dir)
{
    if (!self || !self->any_exclusion)
        return false;
    for (size_t i = 0; i < self->n; i++) {
        const s_pattern_t *p = &self->pats[i];
        if (!p->exclusion)
            continue;
        const char *pc = p->text, *dc = dir;
        bool possible = true;
        for (;;) {
            const char *pe = strchr(pc, '/');
            size_t pl = pe ? (size_t)(pe - pc) : strlen(pc);
            if (memmem(pc, pl, "**", 2)) {
                break; /* any depth: possible */
            }
            const char *de = strchr(dc, '/');
            size_t dl = de ? (size_t)(de - dc) : strlen(dc);
            if (!s_component_matches(pc, pl, dc, dl)) {
                possible = false;
                break;
            }
            if (!de) {
                possible = pe != NULL; /* the pattern goes deeper than DIR */
                break;
            }
            if (!pe) {
                possible = false;
                break;
            }
            pc = pe + 1;
            dc = de + 1;
        }
        if (possible)
            return true;
    }
    return false;
}

af_dockerignore_t *af_dockerignore_new_only(const char *const *only, size_t n, af_err_t *err)
{
    af_dockerignore_t *m = af_dockerignore_new();
    if (!m) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    int rc = af_dockerignore_parse(m, "**", 2, "build.inputs", err);
    for (size_t i = 0; !rc && i < n; i++) {
        size_t len = strlen(only[i]);
        char *line = malloc(len + 2);
        if (!line) {
            rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
            break;
        }
        line[0] = '!';
        memcpy(line + 1, only[i], len + 1);
        rc = af_dockerignore_parse(m, line, len + 1, "build.inputs", err);
        free(line);
    }
    if (rc)
        af_dockerignore_destroy(&m);
    return m;
}
