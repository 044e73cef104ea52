/* The audit log: append-only JSON Lines, hash-chained, with signed RFC 9162
 * Merkle checkpoints. Format contract: docs/format/log.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include <patient/jws.h>
#include <patient/log.h>
#include "merkle.h"
#include "util.h"

#define HASH_LEN PATIENT_SHA256_BYTES
#define HEX_LEN (2 * HASH_LEN)
#define CKPT_TYP "patient-checkpoint+jws"
#define READ_CHUNK (1u << 20)

static const char zero_prev[HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- Streaming line reader (pread, so it shares an O_APPEND fd) ------- */

typedef struct {
    int fd;
    uint8_t *buf;
    size_t cap, start, end;
    uint64_t buf_off; /* file offset of buf[0] */
    int eof;
} lreader;

static patient_err
lr_init(lreader *r, int fd, uint64_t off)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->buf_off = off;
    r->cap = READ_CHUNK;
    if ((r->buf = malloc(r->cap)) == NULL)
        return PATIENT_ERR_NOMEM;
    return PATIENT_OK;
}

static void
lr_free(lreader *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* Next line: *line (NULL at end of file) points into the buffer until the
 * next call; *len excludes the "\n"; *nl says whether it had one; *off is
 * the file offset of its first byte. */
static patient_err
lr_next(lreader *r, uint8_t **line, size_t *len, int *nl, uint64_t *off)
{
    uint8_t *p;

    *line = NULL;
    for (;;) {
        if (r->start < r->end &&
            (p = memchr(r->buf + r->start, '\n', r->end - r->start)) != NULL) {
            *line = r->buf + r->start;
            *len = (size_t)(p - *line);
            *nl = 1;
            *off = r->buf_off + r->start;
            r->start += *len + 1;
            if (*len > PATIENT_LOG_LINE_MAX)
                return PATIENT_ERR_TOO_LARGE;
            return PATIENT_OK;
        }
        if (r->eof) {
            if (r->start < r->end) {
                *line = r->buf + r->start;
                *len = r->end - r->start;
                *nl = 0;
                *off = r->buf_off + r->start;
                r->start = r->end;
            }
            return PATIENT_OK;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->buf_off += r->start;
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end == r->cap) {
            uint8_t *nb;
            if (r->cap > PATIENT_LOG_LINE_MAX)
                return PATIENT_ERR_TOO_LARGE;
            if ((nb = realloc(r->buf, r->cap * 2)) == NULL)
                return PATIENT_ERR_NOMEM;
            r->buf = nb;
            r->cap *= 2;
        }
        {
            ssize_t n = pread(r->fd, r->buf + r->end, r->cap - r->end,
                              (off_t)(r->buf_off + r->end));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return PATIENT_ERR_IO;
            if (n == 0)
                r->eof = 1;
            r->end += (size_t)n;
        }
    }
}

static patient_err
open_read(const char *path, int *fd)
{
    struct stat st;

    if ((*fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0)
        return errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH
               : errno == ENOENT ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_IO;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return PATIENT_ERR_UNSAFE_PATH;
    }
    return PATIENT_OK;
}

/* ---- JSON helpers ------------------------------------------------------ */

static patient_err
json_str(pt_buf *b, const char *s)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *run = p;
    patient_err err;

    if ((err = pt_buf_append(b, "\"", 1)))
        return err;
    for (; *p; p++) {
        char esc[7];
        size_t n = 0;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hexd[*p >> 4];
            esc[5] = hexd[*p & 15];
            n = 6;
        } else {
            continue;
        }
        if ((err = pt_buf_append(b, run, (size_t)(p - run))) || (err = pt_buf_append(b, esc, n)))
            return err;
        run = p + 1;
    }
    if ((err = pt_buf_append(b, run, (size_t)(p - run))))
        return err;
    return pt_buf_append(b, "\"", 1);
}

static int
get_u64(const cJSON *o, const char *key, uint64_t *out)
{
    long long v;

    if (pt_json_int(o, key, &v) != 0 || v < 0)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Byte count of an edit's delete/insert member: a number (count), a
 * base64 string (the bytes themselves), or an object with len/size/length
 * (or base64 "bytes"/"data"). Absent: 0. */
static int
edit_bytes(const cJSON *edit, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(edit, key);
    static const char *const lens[] = {"len", "length", "size"};
    static const char *const datas[] = {"bytes", "data", "b64"};
    size_t i;

    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble < 0 || v->valuedouble > 9007199254740991.0)
            return -1;
        *out = (uint64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        while (n > 0 && v->valuestring[n - 1] == '=')
            n--;
        *out = (uint64_t)n * 3 / 4;
        return 0;
    }
    if (cJSON_IsObject(v)) {
        for (i = 0; i < sizeof lens / sizeof *lens; i++)
            if (get_u64(v, lens[i], out) == 0)
                return 0;
        for (i = 0; i < sizeof datas / sizeof *datas; i++) {
            const char *s = pt_json_str(v, datas[i]);
            if (s) {
                size_t n = strlen(s);
                while (n > 0 && s[n - 1] == '=')
                    n--;
                *out = (uint64_t)n * 3 / 4;
                return 0;
            }
        }
        return 0;
    }
    return -1;
}

/* The fields a change entry denormalises from its descriptor payload. */
typedef struct {
    cJSON *payload;
    const char *url, *at, *by_name;
    char kid[PATIENT_KEYID_HEX];
    long long hop;
    size_t n;
    const char **reasons, **rules;
    uint64_t deleted, inserted;
} chfields;

static void
chfields_free(chfields *f)
{
    cJSON_Delete(f->payload);
    free(f->reasons);
    free(f->rules);
    memset(f, 0, sizeof *f);
}

static patient_err
chfields_from_jws(const patient_jws *j, chfields *f)
{
    const cJSON *by, *edits, *e;
    const char *pkid;
    size_t i = 0;
    patient_err err;

    memset(f, 0, sizeof *f);
    if ((err = pt_json_parse((const char *)j->payload, j->payload_len, &f->payload)))
        return err;
    if (!cJSON_IsObject(f->payload))
        return PATIENT_ERR_PARSE;
    patient_keyid_hex(j->kid, f->kid);
    f->url = pt_json_str(f->payload, "url");
    if ((f->at = pt_json_str(f->payload, "at")) == NULL)
        f->at = pt_json_str(f->payload, "time");
    by = cJSON_GetObjectItemCaseSensitive(f->payload, "by");
    f->by_name = by ? pt_json_str(by, "name") : NULL;
    if (f->url == NULL || f->at == NULL || f->by_name == NULL ||
        pt_json_int(f->payload, "hop", &f->hop) != 0)
        return PATIENT_ERR_PARSE;
    if (strlen(f->url) > PATIENT_LOG_URL_MAX)
        return PATIENT_ERR_TOO_LARGE;
    /* The kid that signed is the one in the JWS header; a payload that
     * names another is inconsistent. */
    if ((pkid = pt_json_str(by, "kid")) != NULL && strcasecmp(pkid, f->kid) != 0)
        return PATIENT_ERR_KEY_MISMATCH;
    edits = cJSON_GetObjectItemCaseSensitive(f->payload, "edits");
    if (edits != NULL && !cJSON_IsArray(edits))
        return PATIENT_ERR_PARSE;
    f->n = edits ? (size_t)cJSON_GetArraySize(edits) : 0;
    if (f->n > PATIENT_LOG_EDITS_MAX)
        return PATIENT_ERR_LIMIT;
    if (f->n && ((f->reasons = calloc(f->n, sizeof *f->reasons)) == NULL ||
                 (f->rules = calloc(f->n, sizeof *f->rules)) == NULL))
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(e, edits) {
        uint64_t d, ins;
        const char *reason = pt_json_str(e, "reason"), *rule = pt_json_str(e, "rule");
        if (rule == NULL)
            rule = pt_json_str(e, "rule_id");
        if (!cJSON_IsObject(e) || reason == NULL || edit_bytes(e, "delete", &d) != 0 ||
            edit_bytes(e, "insert", &ins) != 0)
            return PATIENT_ERR_PARSE;
        f->reasons[i] = reason;
        f->rules[i] = rule ? rule : "";
        f->deleted += d;
        f->inserted += ins;
        i++;
    }
    return PATIENT_OK;
}

/* ---- Parsed entry lines ------------------------------------------------ */

/* Entry lines are parsed by a small strict JSON scanner instead of cJSON:
 * listing and verifying a million entries must not build a tree and copy
 * a kilobyte-long JWS string per line. It works on a private copy of the
 * line, unescaping strings in place, and accepts exactly RFC 8259 JSON
 * (nesting capped, no raw control bytes, no \u0000, no duplicate names
 * among the members it knows). */

typedef struct {
    /* owned, reused from line to line */
    char *copy;
    size_t copy_cap;
    const char **reasons, **rules;
    size_t reasons_cap, rules_cap;
    /* fields of the current line (pointers into copy) */
    size_t n_reasons, n_rules;
    uint64_t seq;
    const char *prev, *time, *kind_s;
    patient_log_kind kind;
    const char *url, *by_name, *by_kid, *jws;
    long long hop;
    uint64_t deleted, inserted;
    uint64_t tree_size;
    const char *root_b64, *sig;
    const char *event, *detail;
    const char *why; /* what is malformed */
} pentry;

static void
pentry_free(pentry *e)
{
    free(e->copy);
    free(e->reasons);
    free(e->rules);
    memset(e, 0, sizeof *e);
}

typedef struct {
    char *p, *end;
} jscan;

static void
js_ws(jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n'))
        s->p++;
}

static int
js_lit(jscan *s, char c)
{
    js_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int
js_u4(const char *p, unsigned *v)
{
    int i, h;

    *v = 0;
    for (i = 0; i < 4; i++) {
        if ((h = hexval(p[i])) < 0)
            return -1;
        *v = *v << 4 | (unsigned)h;
    }
    return 0;
}

/* String at s->p (after blanks): unescaped in place, NUL-terminated. */
static int
js_string(jscan *s, const char **out)
{
    char *r, *w, *start;

    js_ws(s);
    if (s->p >= s->end || *s->p != '"')
        return -1;
    start = r = w = ++s->p;
    /* Fast path, 8 bytes at a time: stop at the first word holding a
     * quote, a backslash or a control byte (a kilobyte-long JWS has none). */
    while (s->end - r >= 8) {
        uint64_t x, q, b, c;
        memcpy(&x, r, 8);
        q = x ^ 0x2222222222222222ULL;
        b = x ^ 0x5C5C5C5C5C5C5C5CULL;
        q = (q - 0x0101010101010101ULL) & ~q;
        b = (b - 0x0101010101010101ULL) & ~b;
        c = (x - 0x2020202020202020ULL) & ~x;
        if ((q | b | c) & 0x8080808080808080ULL)
            break;
        r += 8;
    }
    while (r < s->end && *r != '"' && *r != '\\') {
        if ((unsigned char)*r < 0x20)
            return -1;
        r++;
    }
    w = r;
    while (r < s->end && *r != '"') {
        unsigned char c = (unsigned char)*r;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            *w++ = *r++;
            continue;
        }
        if (++r >= s->end)
            return -1;
        switch (*r) {
        case '"': case '\\': case '/': *w++ = *r++; break;
        case 'b': *w++ = '\b'; r++; break;
        case 'f': *w++ = '\f'; r++; break;
        case 'n': *w++ = '\n'; r++; break;
        case 'r': *w++ = '\r'; r++; break;
        case 't': *w++ = '\t'; r++; break;
        case 'u': {
            unsigned v, lo;
            if (s->end - r < 5 || js_u4(r + 1, &v) != 0 || v == 0)
                return -1;
            r += 5;
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (s->end - r < 6 || r[0] != '\\' || r[1] != 'u' || js_u4(r + 2, &lo) != 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                r += 6;
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            } else if (v >= 0xDC00 && v <= 0xDFFF) {
                return -1;
            }
            /* UTF-8 is never longer than the escape it replaces. */
            if (v < 0x80) {
                *w++ = (char)v;
            } else if (v < 0x800) {
                *w++ = (char)(0xC0 | v >> 6);
                *w++ = (char)(0x80 | (v & 0x3F));
            } else if (v < 0x10000) {
                *w++ = (char)(0xE0 | v >> 12);
                *w++ = (char)(0x80 | ((v >> 6) & 0x3F));
                *w++ = (char)(0x80 | (v & 0x3F));
            } else {
                *w++ = (char)(0xF0 | v >> 18);
                *w++ = (char)(0x80 | ((v >> 12) & 0x3F));
                *w++ = (char)(0x80 | ((v >> 6) & 0x3F));
                *w++ = (char)(0x80 | (v & 0x3F));
            }
            break;
        }
        default:
            return -1;
        }
    }
    if (r >= s->end)
        return -1;
    *w = 0;
    s->p = r + 1;
    *out = start;
    return 0;
}

/* Integer (JSON number without fraction or exponent). */
static int
js_int(jscan *s, long long *out)
{
    int neg = 0;
    unsigned long long v = 0;
    char *q;

    js_ws(s);
    q = s->p;
    if (q < s->end && *q == '-')
        neg = 1, q++;
    if (q >= s->end || *q < '0' || *q > '9' || (*q == '0' && q + 1 < s->end && q[1] >= '0' &&
                                                   q[1] <= '9'))
        return -1;
    while (q < s->end && *q >= '0' && *q <= '9') {
        v = v * 10 + (unsigned)(*q++ - '0');
        if (v > 9007199254740991ULL)
            return -1;
    }
    if (q < s->end && (*q == '.' || *q == 'e' || *q == 'E'))
        return -1;
    s->p = q;
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

static int
js_uint(jscan *s, uint64_t *out)
{
    long long v;

    if (js_int(s, &v) != 0 || v < 0)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Any value, for members we do not know (forward compatibility). */
static int
js_skip(jscan *s, int depth)
{
    const char *str;

    if (depth > PT_JSON_MAX_DEPTH)
        return -1;
    js_ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '"':
        return js_string(s, &str);
    case '{':
        s->p++;
        if (js_lit(s, '}'))
            return 0;
        do {
            if (js_string(s, &str) != 0 || !js_lit(s, ':') || js_skip(s, depth + 1) != 0)
                return -1;
        } while (js_lit(s, ','));
        return js_lit(s, '}') ? 0 : -1;
    case '[':
        s->p++;
        if (js_lit(s, ']'))
            return 0;
        do {
            if (js_skip(s, depth + 1) != 0)
                return -1;
        } while (js_lit(s, ','));
        return js_lit(s, ']') ? 0 : -1;
    case 't':
        if (s->end - s->p >= 4 && memcmp(s->p, "true", 4) == 0)
            return s->p += 4, 0;
        return -1;
    case 'f':
        if (s->end - s->p >= 5 && memcmp(s->p, "false", 5) == 0)
            return s->p += 5, 0;
        return -1;
    case 'n':
        if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0)
            return s->p += 4, 0;
        return -1;
    default: {
        /* number: -?int frac? exp? */
        char *q = s->p;
        if (q < s->end && *q == '-')
            q++;
        if (q >= s->end || *q < '0' || *q > '9')
            return -1;
        if (*q == '0')
            q++;
        else
            while (q < s->end && *q >= '0' && *q <= '9')
                q++;
        if (q < s->end && *q == '.') {
            if (++q >= s->end || *q < '0' || *q > '9')
                return -1;
            while (q < s->end && *q >= '0' && *q <= '9')
                q++;
        }
        if (q < s->end && (*q == 'e' || *q == 'E')) {
            q++;
            if (q < s->end && (*q == '+' || *q == '-'))
                q++;
            if (q >= s->end || *q < '0' || *q > '9')
                return -1;
            while (q < s->end && *q >= '0' && *q <= '9')
                q++;
        }
        s->p = q;
        return 0;
    }
    }
}

static int
js_str_array(jscan *s, const char ***arr, size_t *cap, size_t *n)
{
    const char *str;

    *n = 0;
    if (!js_lit(s, '['))
        return -1;
    if (js_lit(s, ']'))
        return 0;
    do {
        if (js_string(s, &str) != 0)
            return -1;
        if (*n == PATIENT_LOG_EDITS_MAX)
            return -1;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 8;
            const char **na = realloc(*arr, nc * sizeof *na);
            if (na == NULL)
                return -1;
            *arr = na;
            *cap = nc;
        }
        (*arr)[(*n)++] = str;
    } while (js_lit(s, ','));
    return js_lit(s, ']') ? 0 : -1;
}

enum {
    F_SEQ = 1 << 0, F_PREV = 1 << 1, F_KIND = 1 << 2, F_TIME = 1 << 3, F_URL = 1 << 4,
    F_HOP = 1 << 5, F_BY = 1 << 6, F_REASONS = 1 << 7, F_RULES = 1 << 8, F_DEL = 1 << 9,
    F_INS = 1 << 10, F_JWS = 1 << 11, F_TREE = 1 << 12, F_ROOT = 1 << 13, F_SIG = 1 << 14,
    F_EVENT = 1 << 15, F_DETAIL = 1 << 16
};

/* Parse and check the shape of one line. PATIENT_ERR_JSON for a line that
 * is not JSON, PATIENT_ERR_LOG_CORRUPT (with e->why) for JSON that is not
 * an entry, PATIENT_ERR_UNSUPPORTED for an unknown kind. */
static patient_err
pentry_parse(const uint8_t *line, size_t len, pentry *e)
{
    jscan s;
    const char *key, *v;
    unsigned seen = 0, bit;
    size_t voff;
    int ok;

    e->n_reasons = e->n_rules = 0;
    e->seq = 0;
    e->prev = e->time = e->kind_s = e->url = e->by_name = e->by_kid = e->jws = NULL;
    e->root_b64 = e->sig = e->event = e->detail = NULL;
    e->hop = 0;
    e->deleted = e->inserted = e->tree_size = 0;
    e->kind = 0;
    e->why = "not valid JSON";
    if (len > PATIENT_LOG_LINE_MAX)
        return PATIENT_ERR_TOO_LARGE;
    if (e->copy_cap < len + 1) {
        char *n = realloc(e->copy, len + 1);
        if (n == NULL)
            return PATIENT_ERR_NOMEM;
        e->copy = n;
        e->copy_cap = len + 1;
    }
    memcpy(e->copy, line, len);
    e->copy[len] = 0;
    s.p = e->copy;
    s.end = e->copy + len;
    if (!js_lit(&s, '{'))
        return PATIENT_ERR_JSON;
    if (!js_lit(&s, '}')) {
        do {
            if (js_string(&s, &key) != 0 || !js_lit(&s, ':'))
                return PATIENT_ERR_JSON;
            bit = 0;
            ok = 0;
            js_ws(&s);
            voff = (size_t)(s.p - e->copy);
            switch (key[0]) {
            case 's':
                if (strcmp(key, "seq") == 0)
                    bit = F_SEQ, ok = js_uint(&s, &e->seq) == 0;
                else if (strcmp(key, "sig") == 0)
                    bit = F_SIG, ok = js_string(&s, &e->sig) == 0;
                break;
            case 'p':
                if (strcmp(key, "prev") == 0)
                    bit = F_PREV, ok = js_string(&s, &e->prev) == 0;
                break;
            case 'k':
                if (strcmp(key, "kind") == 0)
                    bit = F_KIND, ok = js_string(&s, &e->kind_s) == 0;
                break;
            case 't':
                if (strcmp(key, "time") == 0)
                    bit = F_TIME, ok = js_string(&s, &e->time) == 0;
                else if (strcmp(key, "tree_size") == 0)
                    bit = F_TREE, ok = js_uint(&s, &e->tree_size) == 0;
                break;
            case 'u':
                if (strcmp(key, "url") == 0)
                    bit = F_URL, ok = js_string(&s, &e->url) == 0;
                break;
            case 'h':
                if (strcmp(key, "hop") == 0)
                    bit = F_HOP, ok = js_int(&s, &e->hop) == 0;
                break;
            case 'b':
                if (strcmp(key, "by") == 0) {
                    bit = F_BY;
                    ok = js_lit(&s, '{');
                    if (ok && !js_lit(&s, '}')) {
                        do {
                            const char *k2;
                            if (js_string(&s, &k2) != 0 || !js_lit(&s, ':')) {
                                ok = 0;
                                break;
                            }
                            if (strcmp(k2, "name") == 0 && e->by_name == NULL)
                                ok = js_string(&s, &e->by_name) == 0;
                            else if (strcmp(k2, "kid") == 0 && e->by_kid == NULL)
                                ok = js_string(&s, &e->by_kid) == 0;
                            else if (strcmp(k2, "name") == 0 || strcmp(k2, "kid") == 0)
                                ok = 0;
                            else
                                ok = js_skip(&s, 2) == 0;
                        } while (ok && js_lit(&s, ','));
                        ok = ok && js_lit(&s, '}');
                    }
                }
                break;
            case 'r':
                if (strcmp(key, "reasons") == 0)
                    bit = F_REASONS,
                    ok = js_str_array(&s, &e->reasons, &e->reasons_cap, &e->n_reasons) == 0;
                else if (strcmp(key, "rules") == 0)
                    bit = F_RULES,
                    ok = js_str_array(&s, &e->rules, &e->rules_cap, &e->n_rules) == 0;
                else if (strcmp(key, "root") == 0)
                    bit = F_ROOT, ok = js_string(&s, &e->root_b64) == 0;
                break;
            case 'd':
                if (strcmp(key, "deleted") == 0)
                    bit = F_DEL, ok = js_uint(&s, &e->deleted) == 0;
                else if (strcmp(key, "detail") == 0)
                    bit = F_DETAIL, ok = js_string(&s, &e->detail) == 0;
                break;
            case 'i':
                if (strcmp(key, "inserted") == 0)
                    bit = F_INS, ok = js_uint(&s, &e->inserted) == 0;
                break;
            case 'j':
                if (strcmp(key, "jws") == 0)
                    bit = F_JWS, ok = js_string(&s, &e->jws) == 0;
                break;
            case 'e':
                if (strcmp(key, "event") == 0)
                    bit = F_EVENT, ok = js_string(&s, &e->event) == 0;
                break;
            }
            if (bit == 0) {
                if (js_skip(&s, 1) != 0)
                    return PATIENT_ERR_JSON;
                continue;
            }
            if (seen & bit) {
                e->why = "a member appears twice";
                return PATIENT_ERR_JSON;
            }
            seen |= bit;
            if (!ok) {
                /* Wrong type, or a syntax error inside the value: tell
                 * them apart by rescanning the original bytes. */
                memcpy(e->copy + voff, line + voff, len - voff);
                s.p = e->copy + voff;
                if (js_skip(&s, 1) != 0)
                    return PATIENT_ERR_JSON;
                e->why = "a member has the wrong type";
                return PATIENT_ERR_LOG_CORRUPT;
            }
        } while (js_lit(&s, ','));
        if (!js_lit(&s, '}'))
            return PATIENT_ERR_JSON;
    }
    js_ws(&s);
    if (s.p != s.end)
        return PATIENT_ERR_JSON;
    e->why = "missing or mistyped seq, prev, kind or time";
    if ((seen & (F_SEQ | F_PREV | F_KIND | F_TIME)) != (F_SEQ | F_PREV | F_KIND | F_TIME) ||
        strlen(e->prev) != HEX_LEN)
        return PATIENT_ERR_LOG_CORRUPT;
    v = e->kind_s;
    if (strcmp(v, "change") == 0) {
        e->kind = PATIENT_LOG_KIND_CHANGE;
        e->why = "change entry missing url, hop, by, reasons, rules, deleted, inserted or jws";
        if ((seen & (F_URL | F_HOP | F_BY | F_REASONS | F_RULES | F_DEL | F_INS | F_JWS)) !=
                (F_URL | F_HOP | F_BY | F_REASONS | F_RULES | F_DEL | F_INS | F_JWS) ||
            e->by_name == NULL || e->by_kid == NULL || e->n_reasons != e->n_rules)
            return PATIENT_ERR_LOG_CORRUPT;
    } else if (strcmp(v, "checkpoint") == 0) {
        e->kind = PATIENT_LOG_KIND_CHECKPOINT;
        e->why = "checkpoint missing tree_size, root or sig";
        if ((seen & (F_TREE | F_ROOT | F_SIG)) != (F_TREE | F_ROOT | F_SIG))
            return PATIENT_ERR_LOG_CORRUPT;
    } else if (strcmp(v, "event") == 0) {
        e->kind = PATIENT_LOG_KIND_EVENT;
        e->why = "event missing its event name";
        if (!(seen & F_EVENT))
            return PATIENT_ERR_LOG_CORRUPT;
    } else {
        e->why = "unknown kind";
        return PATIENT_ERR_UNSUPPORTED;
    }
    e->why = NULL;
    return PATIENT_OK;
}

/* Compare a change entry's denormalised fields with its JWS payload.
 * Returns NULL when they agree, else the name of the first field that
 * differs ("jws" when the JWS or its payload does not parse). */
static const char *
change_mismatch(const pentry *e, patient_jws **jws_out)
{
    patient_jws *j = NULL;
    chfields f;
    const char *bad = NULL;
    size_t i;

    memset(&f, 0, sizeof f);
    if (patient_jws_parse(e->jws, strlen(e->jws), &j) != PATIENT_OK ||
        chfields_from_jws(j, &f) != PATIENT_OK) {
        bad = "jws";
        goto out;
    }
    if (strcmp(f.url, e->url) != 0)
        bad = "url";
    else if (f.hop != e->hop)
        bad = "hop";
    else if (strcmp(f.at, e->time) != 0)
        bad = "time";
    else if (strcmp(f.by_name, e->by_name) != 0)
        bad = "by.name";
    else if (strcmp(f.kid, e->by_kid) != 0)
        bad = "by.kid";
    else if (f.deleted != e->deleted)
        bad = "deleted";
    else if (f.inserted != e->inserted)
        bad = "inserted";
    else if (e->n_reasons != f.n)
        bad = "reasons";
    for (i = 0; bad == NULL && i < f.n; i++) {
        if (strcmp(e->reasons[i], f.reasons[i]) != 0)
            bad = "reasons";
        else if (strcmp(e->rules[i], f.rules[i]) != 0)
            bad = "rules";
    }
out:
    chfields_free(&f);
    if (bad == NULL && jws_out) {
        *jws_out = j;
        j = NULL;
    }
    patient_jws_free(j);
    return bad;
}

/* ---- Writer ------------------------------------------------------------ */

struct patient_log {
    pthread_mutex_t mu;
    int fd;
    int ro;
    int sync;
    const patient_seckey *sk;
    unsigned every;
    uint64_t next_seq;
    uint8_t last_hash[HASH_LEN];
    pt_merkle_frontier fr;
    uint64_t off;        /* end of the last committed line we know */
    uint64_t since_ckpt; /* entries after the last checkpoint */
    int last_is_ckpt;
    char log_id[HEX_LEN + 1];
    uint64_t repaired;
    uint8_t *scratch;
    size_t scratch_cap;
};

static patient_err
scratch_leaf(uint8_t **scratch, size_t *cap, const uint8_t *line, size_t len,
             uint8_t out[HASH_LEN])
{
    if (*cap < len + 1) {
        size_t nc = len + 1 > 4096 ? len + 1 : 4096;
        uint8_t *n = realloc(*scratch, nc);
        if (n == NULL)
            return PATIENT_ERR_NOMEM;
        *scratch = n;
        *cap = nc;
    }
    return pt_merkle_leaf(line, len, *scratch, out);
}

/* Account one committed line in the writer state. */
static patient_err
state_add(patient_log *log, const uint8_t *line, size_t len, patient_log_kind kind)
{
    uint8_t leaf[HASH_LEN];
    patient_err err;

    if ((err = patient_sha256(line, len, log->last_hash)) ||
        (err = scratch_leaf(&log->scratch, &log->scratch_cap, line, len, leaf)) ||
        (err = pt_merkle_frontier_add(&log->fr, leaf)))
        return err;
    if (log->next_seq == 0)
        pt_hex(log->last_hash, HASH_LEN, log->log_id);
    log->next_seq++;
    log->off += len + 1;
    if (kind == PATIENT_LOG_KIND_CHECKPOINT) {
        log->since_ckpt = 0;
        log->last_is_ckpt = 1;
    } else {
        log->since_ckpt++;
        log->last_is_ckpt = 0;
    }
    return PATIENT_OK;
}

/* Read the lines after log->off (written by us before, or by other
 * processes) into the state. With repair (caller holds the flock and the
 * handle is writable) a torn tail is cut off; without, reading stops there. */
static patient_err
sync_tail(patient_log *log, int repair)
{
    lreader r;
    uint8_t *line, *l2;
    size_t len, len2;
    int nl, nl2;
    uint64_t off, off2;
    char prev[HEX_LEN + 1];
    pentry e;
    patient_err err;

    memset(&e, 0, sizeof e);
    if ((err = lr_init(&r, log->fd, log->off)))
        return err;
    for (;;) {
        if ((err = lr_next(&r, &line, &len, &nl, &off)))
            goto out;
        if (line == NULL)
            break;
        if (!nl) {
            err = PATIENT_OK;
            goto torn;
        }
        if ((err = pentry_parse(line, len, &e)) != PATIENT_OK) {
            /* Only the very last line may be a torn (never acknowledged)
             * append; anything else is damage for verify to explain. */
            if (err == PATIENT_ERR_JSON) {
                if ((err = lr_next(&r, &l2, &len2, &nl2, &off2)))
                    goto out;
                if (l2 == NULL)
                    goto torn;
            }
            err = err == PATIENT_ERR_UNSUPPORTED ? err : PATIENT_ERR_LOG_CORRUPT;
            goto out;
        }
        if (log->next_seq == 0)
            memcpy(prev, zero_prev, sizeof prev);
        else
            pt_hex(log->last_hash, HASH_LEN, prev);
        if (e.seq != log->next_seq || strcmp(e.prev, prev) != 0) {
            err = PATIENT_ERR_CHAIN;
            goto out;
        }
        if ((err = state_add(log, line, len, e.kind)))
            goto out;
    }
    err = PATIENT_OK;
    goto out;
torn:
    if (repair) {
        if (ftruncate(log->fd, (off_t)off) != 0 || fdatasync(log->fd) != 0) {
            err = PATIENT_ERR_IO;
            goto out;
        }
        log->repaired += r.buf_off + r.end - off;
    }
out:
    pentry_free(&e);
    lr_free(&r);
    return err;
}

static patient_err
lock_log(patient_log *log)
{
    struct stat st;
    patient_err err;

    pthread_mutex_lock(&log->mu);
    if (!log->ro) {
        while (flock(log->fd, LOCK_EX) != 0) {
            if (errno != EINTR) {
                pthread_mutex_unlock(&log->mu);
                return PATIENT_ERR_IO;
            }
        }
    }
    /* A file shorter than what this handle already saw lost committed
     * entries: never append after that (it would fork the chain). */
    if (fstat(log->fd, &st) != 0)
        err = PATIENT_ERR_IO;
    else if ((uint64_t)st.st_size < log->off)
        err = PATIENT_ERR_LOG_CORRUPT;
    else if ((uint64_t)st.st_size > log->off) /* others appended, or a torn tail */
        err = sync_tail(log, !log->ro);
    else
        err = PATIENT_OK;
    if (err != PATIENT_OK) {
        if (!log->ro)
            flock(log->fd, LOCK_UN);
        pthread_mutex_unlock(&log->mu);
    }
    return err;
}

static void
unlock_log(patient_log *log)
{
    if (!log->ro)
        flock(log->fd, LOCK_UN);
    pthread_mutex_unlock(&log->mu);
}

static patient_err write_checkpoint(patient_log *log, uint64_t *seq);

/* Write one entry: rest is the JSON text after "kind" (",\"time\":...").
 * Caller holds the lock. */
static patient_err
write_entry(patient_log *log, const char *kind, const pt_buf *rest, uint64_t *seq)
{
    pt_buf b = {0};
    char prev[HEX_LEN + 1];
    patient_log_kind k;
    size_t done = 0;
    patient_err err;

    if (log->next_seq == 0)
        memcpy(prev, zero_prev, sizeof prev);
    else
        pt_hex(log->last_hash, HASH_LEN, prev);
    if ((err = pt_buf_appendf(&b, "{\"seq\":%llu,\"prev\":\"%s\",\"kind\":\"%s\"",
                              (unsigned long long)log->next_seq, prev, kind)) ||
        (err = pt_buf_append(&b, rest->data, rest->len)) || (err = pt_buf_append(&b, "}\n", 2)))
        goto out;
    if (b.len - 1 > PATIENT_LOG_LINE_MAX) {
        err = PATIENT_ERR_TOO_LARGE;
        goto out;
    }
    /* One write(2) of the whole line: with O_APPEND and the flock held no
     * other writer can interleave. A short write (disk full) is undone. */
    while (done < b.len) {
        ssize_t n = write(log->fd, b.data + done, b.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (done > 0 && ftruncate(log->fd, (off_t)log->off) != 0)
                err = PATIENT_ERR_LOG_CORRUPT;
            else
                err = PATIENT_ERR_IO;
            goto out;
        }
        if (done == 0 && (size_t)n < b.len) {
            /* Never leave half a line: undo and fail. */
            if (ftruncate(log->fd, (off_t)log->off) != 0)
                err = PATIENT_ERR_LOG_CORRUPT;
            else
                err = PATIENT_ERR_IO;
            goto out;
        }
        done += (size_t)n;
    }
    k = strcmp(kind, "checkpoint") == 0 ? PATIENT_LOG_KIND_CHECKPOINT
        : strcmp(kind, "event") == 0    ? PATIENT_LOG_KIND_EVENT
                                        : PATIENT_LOG_KIND_CHANGE;
    if (log->sync == PATIENT_LOG_SYNC_EACH ||
        (log->sync == PATIENT_LOG_SYNC_CHECKPOINT && k == PATIENT_LOG_KIND_CHECKPOINT)) {
        if (fdatasync(log->fd) != 0) {
            err = PATIENT_ERR_IO;
            goto out;
        }
    }
    if (seq)
        *seq = log->next_seq;
    if ((err = state_add(log, b.data, b.len - 1, k)))
        goto out;
    if (k != PATIENT_LOG_KIND_CHECKPOINT && log->since_ckpt >= log->every)
        err = write_checkpoint(log, NULL);
out:
    pt_buf_free(&b);
    return err;
}

static patient_err
write_checkpoint(patient_log *log, uint64_t *seq)
{
    uint8_t root[HASH_LEN];
    char *root64 = NULL, *sig = NULL, now[21];
    pt_buf payload = {0}, rest = {0};
    patient_err err;

    if (log->sk == NULL)
        return PATIENT_ERR_STATE;
    if (log->next_seq == 0)
        return PATIENT_ERR_STATE;
    pt_time_format(time(NULL), now);
    if ((err = pt_merkle_frontier_root(&log->fr, root)) ||
        (err = pt_b64_encode(root, HASH_LEN, 0, &root64)))
        goto out;
    if ((err = pt_buf_appendf(&payload,
                              "{\"log_id\":\"%s\",\"tree_size\":%llu,\"root\":\"%s\",\"time\":\"%s\"}",
                              log->log_id, (unsigned long long)log->next_seq, root64, now)))
        goto out;
    if ((err = patient_jws_sign(log->sk, CKPT_TYP, payload.data, payload.len, &sig)))
        goto out;
    if ((err = pt_buf_appendf(&rest, ",\"time\":\"%s\",\"tree_size\":%llu,\"root\":\"%s\",\"sig\":\"%s\"",
                              now, (unsigned long long)log->next_seq, root64, sig)))
        goto out;
    err = write_entry(log, "checkpoint", &rest, seq);
out:
    free(root64);
    free(sig);
    pt_buf_free(&payload);
    pt_buf_free(&rest);
    return err;
}

patient_err
patient_log_open(const char *path, const patient_seckey *sk, unsigned checkpoint_every,
                 patient_log **out)
{
    patient_log *log = NULL;
    struct stat st;
    int locked = 0;
    patient_err err;

    *out = NULL;
    if (path == NULL)
        return PATIENT_ERR_ARG;
    if ((log = calloc(1, sizeof *log)) == NULL)
        return PATIENT_ERR_NOMEM;
    log->fd = -1;
    log->sk = sk;
    log->ro = sk == NULL;
    log->every = checkpoint_every ? checkpoint_every : PATIENT_LOG_CHECKPOINT_EVERY;
    pt_merkle_frontier_init(&log->fr);
    if (pthread_mutex_init(&log->mu, NULL) != 0) {
        free(log);
        return PATIENT_ERR_NOMEM;
    }
    if (log->ro)
        err = open_read(path, &log->fd);
    else {
        log->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
                       0600);
        err = log->fd < 0 ? (errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH : PATIENT_ERR_IO)
                          : PATIENT_OK;
        if (err == PATIENT_OK && (fstat(log->fd, &st) != 0 || !S_ISREG(st.st_mode)))
            err = PATIENT_ERR_UNSAFE_PATH;
    }
    if (err)
        goto out;
    /* Scan the bulk without the lock (other processes keep appending),
     * then catch up and repair under it. */
    if ((err = sync_tail(log, 0)))
        goto out;
    if ((err = lock_log(log)))
        goto out;
    locked = 1;
    if (log->repaired && !log->ro) {
        char detail[128];
        pt_buf rest = {0};
        char now[21];
        pt_time_format(time(NULL), now);
        snprintf(detail, sizeof detail,
                 "cut %llu bytes of an append that never completed",
                 (unsigned long long)log->repaired);
        if (!(err = pt_buf_appendf(&rest, ",\"time\":\"%s\",\"event\":\"log.repaired\",\"detail\":",
                                   now)) &&
            !(err = json_str(&rest, detail)))
            err = write_entry(log, "event", &rest, NULL);
        pt_buf_free(&rest);
        if (err)
            goto out;
    }
    *out = log;
    log = NULL;
out:
    if (locked)
        unlock_log(*out ? *out : log);
    if (log) {
        if (log->fd >= 0)
            close(log->fd);
        pthread_mutex_destroy(&log->mu);
        free(log->scratch);
        free(log);
    }
    return err;
}

patient_err
patient_log_set_sync(patient_log *log, int mode)
{
    if (log == NULL || mode < PATIENT_LOG_SYNC_EACH || mode > PATIENT_LOG_SYNC_NONE)
        return PATIENT_ERR_ARG;
    pthread_mutex_lock(&log->mu);
    log->sync = mode;
    pthread_mutex_unlock(&log->mu);
    return PATIENT_OK;
}

uint64_t
patient_log_size(patient_log *log)
{
    uint64_t n;

    pthread_mutex_lock(&log->mu);
    n = log->next_seq;
    pthread_mutex_unlock(&log->mu);
    return n;
}

uint64_t
patient_log_repaired_bytes(const patient_log *log)
{
    return log->repaired;
}

patient_err
patient_log_append_change(patient_log *log, const char *jws, uint64_t *seq)
{
    patient_jws *j = NULL;
    chfields f;
    pt_buf rest = {0};
    size_t i;
    int locked = 0;
    patient_err err;

    memset(&f, 0, sizeof f);
    if (log == NULL || jws == NULL)
        return PATIENT_ERR_ARG;
    if (log->ro)
        return PATIENT_ERR_STATE;
    if ((err = patient_jws_parse(jws, strlen(jws), &j)) || (err = chfields_from_jws(j, &f)))
        goto out;
    /* The JWS is stored as received but trimmed (jws_parse trims blanks). */
    if (strspn(jws, " \t") || strcspn(jws, " \t\r\n") != strlen(jws)) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    if ((err = pt_buf_appendf(&rest, ",\"time\":")) || (err = json_str(&rest, f.at)) ||
        (err = pt_buf_appendf(&rest, ",\"url\":")) || (err = json_str(&rest, f.url)) ||
        (err = pt_buf_appendf(&rest, ",\"hop\":%lld,\"by\":{\"name\":", f.hop)) ||
        (err = json_str(&rest, f.by_name)) ||
        (err = pt_buf_appendf(&rest, ",\"kid\":\"%s\"},\"reasons\":[", f.kid)))
        goto out;
    for (i = 0; i < f.n; i++)
        if ((i && (err = pt_buf_append(&rest, ",", 1))) || (err = json_str(&rest, f.reasons[i])))
            goto out;
    if ((err = pt_buf_appendf(&rest, "],\"rules\":[")))
        goto out;
    for (i = 0; i < f.n; i++)
        if ((i && (err = pt_buf_append(&rest, ",", 1))) || (err = json_str(&rest, f.rules[i])))
            goto out;
    if ((err = pt_buf_appendf(&rest, "],\"deleted\":%llu,\"inserted\":%llu,\"jws\":",
                              (unsigned long long)f.deleted, (unsigned long long)f.inserted)) ||
        (err = json_str(&rest, jws)))
        goto out;
    if ((err = lock_log(log)))
        goto out;
    locked = 1;
    err = write_entry(log, "change", &rest, seq);
out:
    if (locked)
        unlock_log(log);
    chfields_free(&f);
    patient_jws_free(j);
    pt_buf_free(&rest);
    return err;
}

patient_err
patient_log_append_event(patient_log *log, const char *event, const char *url,
                         const char *detail, uint64_t *seq)
{
    pt_buf rest = {0};
    char now[21];
    size_t n;
    int locked = 0;
    patient_err err;

    if (log == NULL || event == NULL)
        return PATIENT_ERR_ARG;
    if (log->ro)
        return PATIENT_ERR_STATE;
    n = strlen(event);
    if (n == 0 || n > PATIENT_LOG_EVENT_MAX ||
        strspn(event, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n)
        return PATIENT_ERR_ARG;
    if ((url && strlen(url) > PATIENT_LOG_URL_MAX) ||
        (detail && strlen(detail) > PATIENT_LOG_DETAIL_MAX))
        return PATIENT_ERR_TOO_LARGE;
    pt_time_format(time(NULL), now);
    if ((err = pt_buf_appendf(&rest, ",\"time\":\"%s\",\"event\":\"%s\"", now, event)))
        goto out;
    if (url && ((err = pt_buf_appendf(&rest, ",\"url\":")) || (err = json_str(&rest, url))))
        goto out;
    if (detail &&
        ((err = pt_buf_appendf(&rest, ",\"detail\":")) || (err = json_str(&rest, detail))))
        goto out;
    if ((err = lock_log(log)))
        goto out;
    locked = 1;
    err = write_entry(log, "event", &rest, seq);
out:
    if (locked)
        unlock_log(log);
    pt_buf_free(&rest);
    return err;
}

patient_err
patient_log_checkpoint(patient_log *log, uint64_t *seq)
{
    patient_err err;

    if (log == NULL)
        return PATIENT_ERR_ARG;
    if (log->ro)
        return PATIENT_ERR_STATE;
    if ((err = lock_log(log)))
        return err;
    err = write_checkpoint(log, seq);
    unlock_log(log);
    return err;
}

patient_err
patient_log_close(patient_log *log)
{
    patient_err err = PATIENT_OK;

    if (log == NULL)
        return PATIENT_OK;
    if (!log->ro && (err = lock_log(log)) == PATIENT_OK) {
        if (log->next_seq > 0 && !log->last_is_ckpt)
            err = write_checkpoint(log, NULL);
        if (err == PATIENT_OK && log->sync != PATIENT_LOG_SYNC_NONE && fdatasync(log->fd) != 0)
            err = PATIENT_ERR_IO;
        unlock_log(log);
    }
    close(log->fd);
    pthread_mutex_destroy(&log->mu);
    free(log->scratch);
    free(log);
    return err;
}

/* ---- Verification ------------------------------------------------------ */

const char *
patient_log_tamper_name(patient_log_tamper t)
{
    switch (t) {
    case PATIENT_LOG_INTACT: return "intact";
    case PATIENT_LOG_EDITED: return "edited";
    case PATIENT_LOG_REMOVED: return "removed";
    case PATIENT_LOG_REORDERED: return "reordered";
    case PATIENT_LOG_INSERTED: return "inserted";
    case PATIENT_LOG_TRUNCATED: return "truncated";
    case PATIENT_LOG_REWRITTEN: return "rewritten";
    case PATIENT_LOG_FORGED: return "forged";
    case PATIENT_LOG_MALFORMED: return "malformed";
    }
    return "unknown";
}

static patient_err
vfail(patient_log_report *r, patient_log_tamper t, patient_err err, uint64_t line, int has_seq,
      uint64_t seq, const char *expected, const char *found, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));

static patient_err
vfail(patient_log_report *r, patient_log_tamper t, patient_err err, uint64_t line, int has_seq,
      uint64_t seq, const char *expected, const char *found, const char *fmt, ...)
{
    va_list ap;

    r->result = err;
    r->tamper = t;
    r->line = line;
    r->has_seq = has_seq;
    r->seq = seq;
    snprintf(r->expected, sizeof r->expected, "%s", expected ? expected : "");
    snprintf(r->found, sizeof r->found, "%s", found ? found : "");
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    return err;
}

/* After a seq jump to a later value: does the missing seq come later in the
 * file (reordered) or never (removed)? Reads to the end; error path only. */
static int
seq_appears_later(lreader *rd, uint64_t want)
{
    uint8_t *line;
    size_t len;
    int nl;
    uint64_t off, seq;
    cJSON *o = NULL;

    for (;;) {
        if (lr_next(rd, &line, &len, &nl, &off) != PATIENT_OK || line == NULL)
            return 0;
        if (pt_json_parse((const char *)line, len, &o) != PATIENT_OK)
            continue;
        if (get_u64(o, "seq", &seq) == 0 && seq == want) {
            cJSON_Delete(o);
            return 1;
        }
        cJSON_Delete(o);
        o = NULL;
    }
}

/* Checks one checkpoint line against the recomputed state. */
static patient_err
verify_checkpoint(const pentry *e, uint64_t line_no, const pt_merkle_frontier *fr,
                  const char *log_id, const patient_log_verify_opts *o, patient_log_report *r)
{
    patient_jws *j = NULL;
    cJSON *p = NULL;
    uint8_t root[HASH_LEN], want[HASH_LEN];
    char want64[45], kid[PATIENT_KEYID_HEX], pinned[PATIENT_KEYID_HEX];
    uint64_t ts;
    const char *s;
    patient_err err;

    if (e->tree_size != e->seq) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%llu", (unsigned long long)e->seq);
        snprintf(b, sizeof b, "%llu", (unsigned long long)e->tree_size);
        err = vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_LOG_CORRUPT, line_no, 1, e->seq, a, b,
                    "checkpoint tree_size must equal its seq");
        goto out;
    }
    if (pt_b64_decode_exact(e->root_b64, strlen(e->root_b64), 0, root, HASH_LEN) != PATIENT_OK) {
        err = vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_LOG_CORRUPT, line_no, 1, e->seq, NULL,
                    e->root_b64, "checkpoint root is not base64 of 32 bytes");
        goto out;
    }
    /* The signed payload must say exactly what the line says. */
    if (patient_jws_parse(e->sig, strlen(e->sig), &j) != PATIENT_OK || j->typ == NULL ||
        strcmp(j->typ, CKPT_TYP) != 0 ||
        pt_json_parse((const char *)j->payload, j->payload_len, &p) != PATIENT_OK) {
        err = vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_LOG_CORRUPT, line_no, 1, e->seq, NULL,
                    NULL, "checkpoint sig is not a " CKPT_TYP " JWS");
        goto out;
    }
    if (get_u64(p, "tree_size", &ts) != 0 || ts != e->tree_size ||
        (s = pt_json_str(p, "root")) == NULL || strcmp(s, e->root_b64) != 0 ||
        (s = pt_json_str(p, "time")) == NULL || strcmp(s, e->time) != 0 ||
        (s = pt_json_str(p, "log_id")) == NULL || strcmp(s, log_id) != 0) {
        err = vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no, 1, e->seq, NULL, NULL,
                    "checkpoint fields differ from its signed payload (log_id, tree_size, "
                    "root, time)");
        goto out;
    }
    if ((err = pt_merkle_frontier_root(fr, want)))
        goto out;
    if (sodium_memcmp(want, root, HASH_LEN) != 0) {
        sodium_bin2base64(want64, sizeof want64, want, HASH_LEN, sodium_base64_VARIANT_ORIGINAL);
        err = vfail(r, PATIENT_LOG_REWRITTEN, PATIENT_ERR_LOG_CORRUPT, line_no, 1, e->seq,
                    want64, e->root_b64,
                    "checkpoint root differs from the Merkle root of the %llu entries before it",
                    (unsigned long long)e->tree_size);
        goto out;
    }
    if (o->pub) {
        if ((err = patient_jws_verify(j, o->pub)) != PATIENT_OK) {
            patient_keyid_hex(j->kid, kid);
            patient_keyid_hex(o->pub->id, pinned);
            err = vfail(r, PATIENT_LOG_FORGED, err, line_no, 1, e->seq, pinned, kid,
                        err == PATIENT_ERR_KEY_MISMATCH
                            ? "checkpoint signed by another key than the pinned one"
                            : "checkpoint signature does not verify");
            goto out;
        }
    }
    err = PATIENT_OK;
out:
    cJSON_Delete(p);
    patient_jws_free(j);
    return err;
}

patient_err
patient_log_verify(const char *path, const patient_log_verify_opts *opts,
                   patient_log_report *r)
{
    static const patient_log_verify_opts none = {0};
    const patient_log_verify_opts *o = opts ? opts : &none;
    lreader rd;
    int fd = -1, nl, have_rd = 0;
    uint8_t *line, *scratch = NULL, last[HASH_LEN], leaf[HASH_LEN], h[HASH_LEN];
    size_t len, scap = 0;
    uint64_t off, line_no = 0, next = 0;
    char prev_hex[HEX_LEN + 1], log_id[HEX_LEN + 1] = "";
    pt_merkle_frontier fr;
    pentry e;
    patient_err err;

    memset(r, 0, sizeof *r);
    memset(&e, 0, sizeof e);
    pt_merkle_frontier_init(&fr);
    r->signatures_checked = o->pub != NULL;
    r->entry_signatures_checked = o->pub != NULL && o->deep;
    if ((err = open_read(path, &fd))) {
        r->result = err;
        snprintf(r->message, sizeof r->message, "cannot open the log: %s", patient_strerror(err));
        return err;
    }
    if ((err = lr_init(&rd, fd, 0)))
        goto fail_plain;
    have_rd = 1;
    memcpy(prev_hex, zero_prev, sizeof prev_hex);
    if (o->have_trusted && o->trusted_size == 0) {
        uint8_t empty[HASH_LEN];
        if ((err = pt_merkle_frontier_root(&fr, empty)))
            goto fail_plain;
        if (sodium_memcmp(empty, o->trusted_root, HASH_LEN) != 0) {
            err = vfail(r, PATIENT_LOG_REWRITTEN, PATIENT_ERR_LOG_CORRUPT, 0, 0, 0, NULL, NULL,
                        "trusted checkpoint of size 0 has a root other than the empty tree's");
            goto out;
        }
    }
    for (;;) {
        if ((err = lr_next(&rd, &line, &len, &nl, &off))) {
            err = vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_LOG_CORRUPT, line_no + 1, 1, next,
                        NULL, NULL, "line longer than %u bytes", PATIENT_LOG_LINE_MAX);
            goto out;
        }
        if (line == NULL)
            break;
        line_no++;
        if (!nl) {
            err = vfail(r, PATIENT_LOG_TRUNCATED, PATIENT_ERR_LOG_CORRUPT, line_no, 1, next,
                        "\\n", NULL,
                        "torn tail: the last %zu bytes are an incomplete line (an append that "
                        "never completed; opening the log for writing cuts it off)",
                        len);
            goto out;
        }
        if ((err = pentry_parse(line, len, &e)) != PATIENT_OK) {
            if (err == PATIENT_ERR_UNSUPPORTED)
                err = vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_UNSUPPORTED, line_no, 1, next,
                            NULL, e.kind_s, "entry of an unknown kind");
            else
                err = vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no, 1, next, NULL,
                            NULL, "line is not a log entry (%s): it was edited", e.why);
            goto out;
        }
        if (e.seq > next) {
            char a[32], b[32];
            int later = seq_appears_later(&rd, next);
            snprintf(a, sizeof a, "%llu", (unsigned long long)next);
            snprintf(b, sizeof b, "%llu", (unsigned long long)e.seq);
            err = later ? vfail(r, PATIENT_LOG_REORDERED, PATIENT_ERR_CHAIN, line_no, 1, next, a, b,
                                "seq %llu appears later in the file: entries were reordered",
                                (unsigned long long)next)
                        : vfail(r, PATIENT_LOG_REMOVED, PATIENT_ERR_CHAIN, line_no, 1, next, a, b,
                                "seq %llu is missing: entries were removed",
                                (unsigned long long)next);
            goto out;
        }
        if (e.seq < next) {
            char a[32], b[32];
            snprintf(a, sizeof a, "%llu", (unsigned long long)next);
            snprintf(b, sizeof b, "%llu", (unsigned long long)e.seq);
            err = vfail(r, PATIENT_LOG_INSERTED, PATIENT_ERR_CHAIN, line_no, 1, e.seq, a, b,
                        "seq %llu appears a second time: a line was inserted",
                        (unsigned long long)e.seq);
            goto out;
        }
        if (strcmp(e.prev, prev_hex) != 0) {
            /* Either the line before changed, or this line's prev did. If
             * the next line chains to this one, it was the line before. */
            uint8_t *l2, here[HASH_LEN];
            size_t len2;
            int nl2, this_one = 0;
            uint64_t off2;
            char here_hex[HEX_LEN + 1];
            cJSON *n2 = NULL;
            if (next == 0) {
                this_one = 1;
            } else if ((err = patient_sha256(line, len, here)) == PATIENT_OK) {
                pt_hex(here, HASH_LEN, here_hex);
                char saved_prev[HEX_LEN + 1], saved_found[HEX_LEN + 1];
                memcpy(saved_prev, prev_hex, sizeof saved_prev);
                snprintf(saved_found, sizeof saved_found, "%s", e.prev);
                if (lr_next(&rd, &l2, &len2, &nl2, &off2) == PATIENT_OK && l2 != NULL &&
                    pt_json_parse((const char *)l2, len2, &n2) == PATIENT_OK) {
                    const char *p2 = pt_json_str(n2, "prev");
                    this_one = p2 == NULL || strcmp(p2, here_hex) != 0;
                }
                cJSON_Delete(n2);
                if (this_one)
                    err = vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no, 1, next,
                                saved_prev, saved_found,
                                "the prev of seq %llu was edited", (unsigned long long)next);
                else
                    err = vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no - 1, 1,
                                next - 1, saved_found, saved_prev,
                                "seq %llu was edited: its hash no longer matches the prev of "
                                "seq %llu",
                                (unsigned long long)(next - 1), (unsigned long long)next);
                goto out;
            }
            if (this_one)
                err = vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no, 1, next, prev_hex,
                            e.prev, "the prev of seq 0 must be 64 zeros");
            goto out;
        }
        /* Kind-specific checks, against the state before this entry. */
        if (e.kind == PATIENT_LOG_KIND_CHECKPOINT) {
            if ((err = verify_checkpoint(&e, line_no, &fr, log_id, o, r)))
                goto out;
            r->checkpoints++;
            r->last_checkpoint_seq = e.seq;
            (void)pt_merkle_frontier_root(&fr, r->last_checkpoint_root);
            r->unsigned_tail = 0;
        } else {
            if (e.kind == PATIENT_LOG_KIND_CHANGE) {
                patient_jws *j = NULL;
                const char *bad = o->deep ? change_mismatch(&e, o->pub ? &j : NULL) : NULL;
                if (bad) {
                    err = vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no, 1, e.seq, NULL,
                                bad,
                                "seq %llu was edited: its %s differs from the signed "
                                "descriptor",
                                (unsigned long long)e.seq, bad);
                    goto out;
                }
                if (j) {
                    err = patient_jws_verify(j, o->pub);
                    patient_jws_free(j);
                    if (err) {
                        err = vfail(r, PATIENT_LOG_FORGED, err, line_no, 1, e.seq, NULL, NULL,
                                    "seq %llu: the change descriptor's signature does not "
                                    "verify with the pinned key",
                                    (unsigned long long)e.seq);
                        goto out;
                    }
                }
                r->changes++;
            } else {
                r->events++;
            }
            r->unsigned_tail++;
        }
        if ((err = patient_sha256(line, len, last)) ||
            (err = scratch_leaf(&scratch, &scap, line, len, leaf)) ||
            (err = pt_merkle_frontier_add(&fr, leaf)))
            goto fail_plain;
        pt_hex(last, HASH_LEN, prev_hex);
        if (next == 0)
            memcpy(log_id, prev_hex, sizeof log_id);
        next++;
        r->entries++;
        if (o->have_trusted && fr.size == o->trusted_size) {
            if ((err = pt_merkle_frontier_root(&fr, h)))
                goto fail_plain;
            if (sodium_memcmp(h, o->trusted_root, HASH_LEN) != 0) {
                err = vfail(r, PATIENT_LOG_REWRITTEN, PATIENT_ERR_LOG_CORRUPT, line_no, 1, e.seq,
                            NULL, NULL,
                            "the first %llu entries do not hash to the trusted checkpoint's root",
                            (unsigned long long)o->trusted_size);
                goto out;
            }
        }
    }
    if (o->have_trusted && next < o->trusted_size) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%llu", (unsigned long long)o->trusted_size);
        snprintf(b, sizeof b, "%llu", (unsigned long long)next);
        err = vfail(r, PATIENT_LOG_TRUNCATED, PATIENT_ERR_LOG_CORRUPT, line_no, 1, next, a, b,
                    "log ends after %llu entries but the trusted checkpoint covers %llu",
                    (unsigned long long)next, (unsigned long long)o->trusted_size);
        goto out;
    }
    if (o->require_final_checkpoint && r->unsigned_tail > 0) {
        err = vfail(r, PATIENT_LOG_TRUNCATED, PATIENT_ERR_LOG_CORRUPT, line_no, 1,
                    next ? next - 1 : 0, "checkpoint", NULL,
                    "log does not end with a checkpoint (%llu entries after the last one): "
                    "it may have been truncated",
                    (unsigned long long)r->unsigned_tail);
        goto out;
    }
    memcpy(r->log_id, log_id, sizeof r->log_id);
    r->result = PATIENT_OK;
    snprintf(r->message, sizeof r->message, "%llu entries, %llu checkpoints verified%s",
             (unsigned long long)r->entries, (unsigned long long)r->checkpoints,
             o->pub ? "" : " (signatures not checked: no key given)");
    err = PATIENT_OK;
    goto out;
fail_plain:
    r->result = err;
    snprintf(r->message, sizeof r->message, "%s", patient_strerror(err));
out:
    memcpy(r->log_id, log_id, sizeof r->log_id);
    pentry_free(&e);
    if (have_rd)
        lr_free(&rd);
    free(scratch);
    close(fd);
    return err;
}

/* "YYYY-MM-DDTHH:MM:SSZ", the form the log writes, without strptime and
 * the time-zone machinery (listing parses a million of them); anything
 * else goes to pt_time_parse. */
static patient_err
log_time_parse(const char *t, time_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int v[6], i, k;
    static const int pos[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};
    long long y, m, d, era, yoe, doy, doe, days;

    if (strlen(t) != 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
        t[16] != ':' || t[19] != 'Z')
        return pt_time_parse(t, out);
    for (i = 0; i < 6; i++) {
        v[i] = 0;
        for (k = 0; k < len[i]; k++) {
            char c = t[pos[i] + k];
            if (c < '0' || c > '9')
                return PATIENT_ERR_PARSE;
            v[i] = v[i] * 10 + (c - '0');
        }
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23 || v[4] > 59 || v[5] > 59)
        return PATIENT_ERR_PARSE;
    k = mdays[v[1] - 1] + (v[1] == 2 && (v[0] % 4 == 0 && (v[0] % 100 != 0 || v[0] % 400 == 0)));
    if (v[2] > k)
        return PATIENT_ERR_PARSE;
    /* days from 1970-01-01 (H. Hinnant's days_from_civil) */
    y = v[0] - (v[1] <= 2);
    m = v[1];
    d = v[2];
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;
    *out = (time_t)(days * 86400 + v[3] * 3600 + v[4] * 60 + v[5]);
    return PATIENT_OK;
}

/* ---- Iterator ---------------------------------------------------------- */

struct patient_log_iter {
    int fd;
    lreader rd;
    uint64_t line_no;
    pentry e;
    patient_log_entry out;
};

patient_err
patient_log_iter_open(const char *path, patient_log_iter **out)
{
    patient_log_iter *it;
    patient_err err;

    *out = NULL;
    if (path == NULL)
        return PATIENT_ERR_ARG;
    if ((it = calloc(1, sizeof *it)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = open_read(path, &it->fd))) {
        free(it);
        return err;
    }
    if ((err = lr_init(&it->rd, it->fd, 0))) {
        close(it->fd);
        free(it);
        return err;
    }
    *out = it;
    return PATIENT_OK;
}

uint64_t
patient_log_iter_line(const patient_log_iter *it)
{
    return it->line_no;
}

patient_err
patient_log_iter_next(patient_log_iter *it, const patient_log_entry **entry)
{
    uint8_t *line;
    size_t len;
    int nl;
    uint64_t off;
    patient_log_entry *o = &it->out;
    patient_err err;

    *entry = NULL;
    if ((err = lr_next(&it->rd, &line, &len, &nl, &off)))
        return err == PATIENT_ERR_TOO_LARGE ? PATIENT_ERR_LOG_CORRUPT : err;
    if (line == NULL || !nl)
        return PATIENT_OK; /* end, or a torn (uncommitted) last line */
    it->line_no++;
    line[len] = 0;
    if ((err = pentry_parse(line, len, &it->e)))
        return PATIENT_ERR_LOG_CORRUPT;
    memset(o, 0, sizeof *o);
    o->line_no = it->line_no;
    o->seq = it->e.seq;
    o->kind = it->e.kind;
    o->time_str = it->e.time;
    if (log_time_parse(it->e.time, &o->time) != PATIENT_OK)
        return PATIENT_ERR_LOG_CORRUPT;
    o->raw = (const char *)line;
    o->raw_len = len;
    o->url = it->e.url;
    switch (it->e.kind) {
    case PATIENT_LOG_KIND_CHANGE:
        o->hop = it->e.hop;
        o->by_name = it->e.by_name;
        o->by_kid = it->e.by_kid;
        o->deleted = it->e.deleted;
        o->inserted = it->e.inserted;
        o->jws = it->e.jws;
        o->n_edits = it->e.n_reasons;
        o->reasons = (const char *const *)it->e.reasons;
        o->rules = (const char *const *)it->e.rules;
        break;
    case PATIENT_LOG_KIND_CHECKPOINT:
        o->tree_size = it->e.tree_size;
        o->root = it->e.root_b64;
        o->sig = it->e.sig;
        break;
    case PATIENT_LOG_KIND_EVENT:
        o->event = it->e.event;
        o->detail = it->e.detail;
        break;
    }
    *entry = o;
    return PATIENT_OK;
}

void
patient_log_iter_close(patient_log_iter *it)
{
    if (it == NULL)
        return;
    pentry_free(&it->e);
    lr_free(&it->rd);
    close(it->fd);
    free(it);
}

/* ---- Inclusion proofs -------------------------------------------------- */

#define PROOF_MAX (64u * 1024)

patient_err
patient_log_proof(const char *path, uint64_t seq, char **proof_json)
{
    int fd = -1, nl;
    lreader rd;
    int have_rd = 0;
    uint8_t *line, *scratch = NULL, leaf[HASH_LEN], mleaf[HASH_LEN], root[HASH_LEN],
                   want[HASH_LEN];
    uint8_t path_h[PT_MERKLE_MAX_DEPTH][HASH_LEN];
    uint64_t lo[PT_MERKLE_MAX_DEPTH], hi[PT_MERKLE_MAX_DEPTH], off, i = 0, T = 0;
    size_t len, scap = 0, count = 0, k, cur = 0;
    size_t order[PT_MERKLE_MAX_DEPTH];
    pt_merkle_frontier fr, sub;
    char *ck_sig = NULL, *ck_root = NULL, log_id[HEX_LEN + 1] = "", *b64 = NULL;
    pentry e;
    pt_buf b = {0};
    patient_err err;

    *proof_json = NULL;
    memset(&e, 0, sizeof e);
    if ((err = open_read(path, &fd)))
        return err;
    /* Pass 1: the latest checkpoint. */
    if ((err = lr_init(&rd, fd, 0)))
        goto out;
    have_rd = 1;
    for (;;) {
        if ((err = lr_next(&rd, &line, &len, &nl, &off)))
            goto out;
        if (line == NULL || !nl)
            break;
        if (i++ == 0) {
            if ((err = patient_sha256(line, len, leaf)))
                goto out;
            pt_hex(leaf, HASH_LEN, log_id);
        }
        /* Cheap pre-filter; the parse below decides. */
        if (memmem(line, len, "checkpoint", 10) == NULL && memmem(line, len, "\\u", 2) == NULL)
            continue;
        if (pentry_parse(line, len, &e) != PATIENT_OK) {
            err = PATIENT_ERR_LOG_CORRUPT;
            goto out;
        }
        if (e.kind != PATIENT_LOG_KIND_CHECKPOINT)
            continue;
        free(ck_sig);
        free(ck_root);
        ck_root = NULL;
        if ((ck_sig = strdup(e.sig)) == NULL || (ck_root = strdup(e.root_b64)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        T = e.tree_size;
    }
    if (ck_sig == NULL || seq >= T) {
        err = PATIENT_ERR_NOT_FOUND;
        goto out;
    }
    if (pt_b64_decode_exact(ck_root, strlen(ck_root), 0, want, HASH_LEN) != PATIENT_OK) {
        err = PATIENT_ERR_LOG_CORRUPT;
        goto out;
    }
    /* Pass 2: stream the T leaves; each path element is the MTH of one
     * contiguous range, so one sub-frontier at a time suffices. */
    if ((err = pt_merkle_path_ranges(seq, T, lo, hi, &count)))
        goto out;
    for (k = 0; k < count; k++)
        order[k] = k;
    for (k = 1; k < count; k++) /* insertion sort by lo; count <= 64 */
        for (size_t j = k; j > 0 && lo[order[j - 1]] > lo[order[j]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    lr_free(&rd);
    have_rd = 0;
    if ((err = lr_init(&rd, fd, 0)))
        goto out;
    have_rd = 1;
    pt_merkle_frontier_init(&fr);
    pt_merkle_frontier_init(&sub);
    for (i = 0; i < T; i++) {
        if ((err = lr_next(&rd, &line, &len, &nl, &off)))
            goto out;
        if (line == NULL || !nl) {
            err = PATIENT_ERR_LOG_CORRUPT;
            goto out;
        }
        if ((err = scratch_leaf(&scratch, &scap, line, len, leaf)) ||
            (err = pt_merkle_frontier_add(&fr, leaf)))
            goto out;
        if (i == seq) {
            memcpy(mleaf, leaf, HASH_LEN);
            continue;
        }
        while (cur < count && hi[order[cur]] <= i)
            cur++;
        if (cur < count && lo[order[cur]] <= i) {
            if ((err = pt_merkle_frontier_add(&sub, leaf)))
                goto out;
            if (i == hi[order[cur]] - 1) {
                if ((err = pt_merkle_frontier_root(&sub, path_h[order[cur]])))
                    goto out;
                pt_merkle_frontier_init(&sub);
            }
        }
    }
    if ((err = pt_merkle_frontier_root(&fr, root)))
        goto out;
    if (sodium_memcmp(root, want, HASH_LEN) != 0) {
        err = PATIENT_ERR_LOG_CORRUPT;
        goto out;
    }
    if ((err = pt_b64_encode(mleaf, HASH_LEN, 0, &b64)))
        goto out;
    if ((err = pt_buf_appendf(&b,
                              "{\"version\":1,\"log_id\":\"%s\",\"leaf_index\":%llu,\"tree_size\":%llu,"
                              "\"leaf_hash\":\"%s\",\"path\":[",
                              log_id, (unsigned long long)seq, (unsigned long long)T, b64)))
        goto out;
    for (k = 0; k < count; k++) {
        free(b64);
        b64 = NULL;
        if ((err = pt_b64_encode(path_h[k], HASH_LEN, 0, &b64)) ||
            (err = pt_buf_appendf(&b, "%s\"%s\"", k ? "," : "", b64)))
            goto out;
    }
    if ((err = pt_buf_appendf(&b, "],\"root\":\"%s\",\"checkpoint\":\"%s\"}", ck_root, ck_sig)) ||
        (err = pt_buf_append(&b, "", 1)))
        goto out;
    *proof_json = (char *)b.data;
    b.data = NULL;
out:
    pentry_free(&e);
    if (have_rd)
        lr_free(&rd);
    free(scratch);
    free(ck_sig);
    free(ck_root);
    free(b64);
    pt_buf_free(&b);
    close(fd);
    return err;
}

patient_err
patient_log_proof_verify(const char *proof_json, size_t proof_len, const char *leaf_line,
                         size_t leaf_len, const patient_pubkey *pub)
{
    cJSON *p = NULL, *cp = NULL, *ln = NULL;
    const cJSON *arr, *x;
    patient_jws *j = NULL;
    uint8_t root[HASH_LEN], leaf[HASH_LEN], claimed[HASH_LEN];
    uint8_t (*path)[HASH_LEN] = NULL;
    uint64_t m, n, seq, ts;
    size_t count = 0, i = 0;
    const char *log_id, *root64, *ck, *leaf64, *s;
    patient_err err;

    if (proof_json == NULL || leaf_line == NULL)
        return PATIENT_ERR_ARG;
    if (proof_len > PROOF_MAX + 2 * PATIENT_JWS_MAX)
        return PATIENT_ERR_TOO_LARGE;
    if (leaf_len > 0 && leaf_line[leaf_len - 1] == '\n')
        leaf_len--;
    if (pt_json_parse(proof_json, proof_len, &p) != PATIENT_OK || !cJSON_IsObject(p) ||
        get_u64(p, "leaf_index", &m) != 0 || get_u64(p, "tree_size", &n) != 0 ||
        (log_id = pt_json_str(p, "log_id")) == NULL || (root64 = pt_json_str(p, "root")) == NULL ||
        (ck = pt_json_str(p, "checkpoint")) == NULL ||
        !cJSON_IsArray(arr = cJSON_GetObjectItemCaseSensitive(p, "path")) ||
        pt_b64_decode_exact(root64, strlen(root64), 0, root, HASH_LEN) != PATIENT_OK) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    count = (size_t)cJSON_GetArraySize(arr);
    if (count > PT_MERKLE_MAX_DEPTH) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    if (count && (path = calloc(count, HASH_LEN)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    cJSON_ArrayForEach(x, arr) {
        if (!cJSON_IsString(x) ||
            pt_b64_decode_exact(x->valuestring, strlen(x->valuestring), 0, path[i++], HASH_LEN)) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
    }
    /* The line must be the entry the proof is about. */
    if (pt_json_parse(leaf_line, leaf_len, &ln) != PATIENT_OK || get_u64(ln, "seq", &seq) != 0 ||
        seq != m) {
        err = PATIENT_ERR_ARG;
        goto out;
    }
    if ((err = pt_merkle_leaf(leaf_line, leaf_len, NULL, leaf)))
        goto out;
    if ((leaf64 = pt_json_str(p, "leaf_hash")) != NULL &&
        (pt_b64_decode_exact(leaf64, strlen(leaf64), 0, claimed, HASH_LEN) != PATIENT_OK ||
         sodium_memcmp(claimed, leaf, HASH_LEN) != 0)) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    if ((err = pt_merkle_path_verify(m, n, leaf, (const uint8_t(*)[HASH_LEN])path, count, root)))
        goto out;
    /* The checkpoint signs exactly this tree head. */
    if (patient_jws_parse(ck, strlen(ck), &j) != PATIENT_OK || j->typ == NULL ||
        strcmp(j->typ, CKPT_TYP) != 0 ||
        pt_json_parse((const char *)j->payload, j->payload_len, &cp) != PATIENT_OK) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    if (get_u64(cp, "tree_size", &ts) != 0 || ts != n || (s = pt_json_str(cp, "root")) == NULL ||
        strcmp(s, root64) != 0 || (s = pt_json_str(cp, "log_id")) == NULL ||
        strcmp(s, log_id) != 0) {
        err = PATIENT_ERR_LOG_CORRUPT;
        goto out;
    }
    err = pub ? patient_jws_verify(j, pub) : PATIENT_OK;
out:
    cJSON_Delete(p);
    cJSON_Delete(cp);
    cJSON_Delete(ln);
    patient_jws_free(j);
    free(path);
    return err;
}
