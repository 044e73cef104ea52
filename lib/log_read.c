/* The audit log, read side: the streaming line reader, the strict entry
 * scanner, the descriptor fields an entry repeats, and the iterator.
 * Format contract: docs/format/log.md. */
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
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#define JS_SSE2 1
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define JS_WIDE 1
#include <immintrin.h>
#endif

#include "change_int.h"
#include "log_int.h"
#include "sha256_pair.h"
#include "time_int.h"

const char zero_prev[HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- Streaming line reader (pread, so it shares an O_APPEND fd) ------- */

patient_err
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

void
lr_free(lreader *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* Next line: *line (NULL at end of file) points into the buffer until the
 * next call; *len excludes the "\n"; *nl says whether it had one; *off is
 * the file offset of its first byte. */
patient_err
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

patient_err
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

patient_err
json_str(pt_buf *b, const char *s)
{
    return pt_buf_put_json_strn(b, s, SIZE_MAX, 0);
}

patient_err
json_strn(pt_buf *b, const char *s, size_t len)
{
    return pt_buf_put_json_strn(b, s, len, 0);
}

int
get_u64(const cJSON *o, const char *key, uint64_t *out)
{
    long long v;

    if (pt_json_int(o, key, &v) != 0 || v < 0)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

patient_err
pt_checkpoint_sig_read(const char *sig, patient_jws **jws, cJSON **payload)
{
    patient_jws *j = NULL;
    patient_err err;

    *jws = NULL;
    *payload = NULL;
    if ((err = patient_jws_parse(sig, strlen(sig), &j)) == PATIENT_OK)
        err = j->typ == NULL || strcmp(j->typ, CKPT_TYP) != 0
                  ? PATIENT_ERR_PARSE
                  : pt_json_parse((const char *)j->payload, j->payload_len, payload);
    if (err != PATIENT_OK) {
        patient_jws_free(j);
        return err == PATIENT_ERR_NOMEM ? err : PATIENT_ERR_PARSE;
    }
    *jws = j;
    return PATIENT_OK;
}

void
chfields_free(chfields *f)
{
    patient_change_free(f->c);
    free(f->reasons);
    free(f->rules);
    memset(f, 0, sizeof *f);
}

patient_err
chfields_from_value(const char *value, chfields *f)
{
    const patient_change *c;
    patient_err err;

    memset(f, 0, sizeof *f);
    if (value == NULL)
        return PATIENT_ERR_ARG;
    if ((err = patient_change_parse(value, strlen(value), &f->c)) != PATIENT_OK)
        return err;
    c = f->c;
    if ((err = chfields_start(f, c->url, c->by.name, c->hop, c->nedits)) != PATIENT_OK)
        return err;
    pt_time_format(c->at, f->at);
    memcpy(f->kid, c->by.kid_hex, sizeof f->kid);
    for (size_t i = 0; i < f->n; i++)
        chfields_edit(f, i, &c->edits[i]);
    chfields_tls(f, c->has_tls ? c->tls.version : NULL, c->tls.cipher, c->tls.verified);
    return PATIENT_OK;
}

patient_err
chfields_from_hop(const patient_hop *hop, chfields *f, const char **value)
{
    pt_hop_signed s;
    patient_err err;

    memset(f, 0, sizeof *f);
    if (hop == NULL || value == NULL)
        return PATIENT_ERR_ARG;
    pt_hop_signed_get(hop, &s);
    if (s.value == NULL)
        return PATIENT_ERR_STATE;
    if ((err = chfields_start(f, s.url, s.name, s.hopno, s.nedits)) != PATIENT_OK)
        return err;
    memcpy(f->at, s.when, sizeof f->at);
    memcpy(f->kid, s.kid, sizeof f->kid);
    for (size_t i = 0; i < f->n; i++)
        chfields_edit(f, i, pt_hop_signed_edit(hop, i));
    chfields_tls(f, s.tls_version, s.tls_cipher, s.tls_verified);
    f->entry_len = s.entry_len;
    *value = s.value;
    return PATIENT_OK;
}

patient_err
chfields_start(chfields *f, const char *url, const char *by_name, long long hop, size_t n)
{
    if (strlen(url) > PATIENT_LOG_URL_MAX)
        return PATIENT_ERR_TOO_LARGE;
    if (n > PATIENT_LOG_EDITS_MAX)
        return PATIENT_ERR_LIMIT;
    f->url = url;
    f->by_name = by_name;
    f->hop = hop;
    f->n = n;
    if ((f->reasons = calloc(n, sizeof *f->reasons)) == NULL ||
        (f->rules = calloc(n, sizeof *f->rules)) == NULL)
        return PATIENT_ERR_NOMEM;
    return PATIENT_OK;
}

void
chfields_edit(chfields *f, size_t i, const patient_edit *e)
{
    f->reasons[i] = e->reason;
    f->rules[i] = e->rule;
    f->deleted += e->delete_len;
    f->inserted += e->insert_len;
}

void
chfields_tls(chfields *f, const char *version, const char *cipher, int verified)
{
    pt_change_entry_tls(f->tls, version, cipher, verified);
}

patient_err
patient_log_entry_tls(const patient_log_entry *e, patient_log_tls *out)
{
    const char *sp, *last;

    if (out == NULL || e == NULL)
        return PATIENT_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (e->tls == NULL)
        return PATIENT_ERR_NOT_FOUND;
    /* The writer's forms (chfields_tls): "none", or version, cipher and
     * "verified" / "unverified" joined by spaces. */
    if (strcmp(e->tls, "none") == 0) {
        out->version = e->tls;
        out->version_len = 4;
        out->plaintext = 1;
        return PATIENT_OK;
    }
    if ((sp = strchr(e->tls, ' ')) == NULL || (last = strrchr(e->tls, ' ')) == NULL)
        return PATIENT_ERR_PARSE;
    out->version = e->tls;
    out->version_len = (size_t)(sp - e->tls);
    out->verified = strcmp(last + 1, "verified") == 0;
    return PATIENT_OK;
}

patient_err
patient_log_entry_edit_bytes(const patient_log_entry *e, uint64_t *deleted, uint64_t *inserted)
{
    chfields f;
    patient_err err;

    memset(&f, 0, sizeof f);
    if (e == NULL || e->kind != PATIENT_LOG_KIND_CHANGE || e->jws == NULL ||
        (e->n_edits && (deleted == NULL || inserted == NULL)))
        return PATIENT_ERR_ARG;
    /* The same reading of the descriptor that gave the entry its totals. */
    if ((err = chfields_from_value(e->jws, &f)))
        goto out;
    err = PATIENT_ERR_PARSE;
    if (f.n != e->n_edits)
        goto out;
    for (size_t i = 0; i < f.n; i++) {
        deleted[i] = f.c->edits[i].delete_len;
        inserted[i] = f.c->edits[i].insert_len;
    }
    err = PATIENT_OK;
out:
    if (err != PATIENT_OK && e->n_edits && deleted && inserted) {
        memset(deleted, 0, e->n_edits * sizeof *deleted);
        memset(inserted, 0, e->n_edits * sizeof *inserted);
    }
    chfields_free(&f);
    return err;
}

/* ---- Parsed entry lines ------------------------------------------------ */

/* Entry lines are parsed by a small strict JSON scanner instead of cJSON:
 * listing and verifying a million entries must not build a tree and copy
 * a kilobyte-long JWS string per line. It works on a private copy of the
 * line, unescaping strings in place, and accepts exactly RFC 8259 JSON
 * (nesting capped, no raw control bytes, no \u0000, no duplicate names
 * among the members it knows). */

void
pentry_free(pentry *e)
{
    free(e->copy);
    free(e->reasons);
    free(e->rules);
    memset(e, 0, sizeof *e);
}

typedef struct {
    char *p, *end;
    int wide; /* strings read 64 bytes a step (js_special_wide) */
} jscan;

static void
js_ws(jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n'))
        s->p++;
}

static inline int
js_lit(jscan *s, char c)
{
    /* The log's own lines have no blanks: look before skipping them. */
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
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

int pt_scan_wide = -1;

#ifdef JS_SSE2
/* 0xff where a byte of x is a quote, a backslash or a control byte (one
 * whose unsigned maximum with 0x1f is 0x1f). */
static inline __m128i
js_special16(__m128i x)
{
    const __m128i ctl = _mm_set1_epi8(0x1f);

    return _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
        _mm_cmpeq_epi8(_mm_max_epu8(x, ctl), ctl));
}
#endif

#ifdef JS_WIDE
#define JS_WIDE_TARGET __attribute__((target("avx512f,avx512bw")))

/* Bit i set where byte i of x is a quote, a backslash or a control byte. */
JS_WIDE_TARGET static inline __mmask64
js_special64(__m512i x)
{
    return _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('"')) |
           _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('\\')) |
           _mm512_cmplt_epu8_mask(x, _mm512_set1_epi8(0x20));
}

/* The first quote, backslash or control byte in [r, end), else end: 64
 * bytes a step, the tail in one masked load that reads nothing past end.
 * (The 32-byte SSE2 steps below took two thirds of the entry scan, most
 * of it in a kilobyte-long JWS; a step here is three compares into masks.) */
JS_WIDE_TARGET static char *
js_special_wide(char *r, const char *end)
{
    size_t left = (size_t)(end - r);
    __mmask64 hit, live;
    __m512i x;

    for (; left >= 64; r += 64, left -= 64) {
        x = _mm512_loadu_si512((const void *)r);
        hit = js_special64(x);
        if (hit)
            return r + __builtin_ctzll(hit);
    }
    if (left == 0)
        return r;
    live = ~(__mmask64)0 >> (64 - left);
    x = _mm512_maskz_loadu_epi8(live, (const void *)r);
    hit = js_special64(x) & live;
    return hit ? r + __builtin_ctzll(hit) : r + left;
}
#endif

/* String at s->p (after blanks): unescaped in place, NUL-terminated;
 * *n its length after unescaping. */
static int
js_string_n(jscan *s, const char **out, size_t *n)
{
    char *r, *w, *start;

    if (s->p >= s->end || *s->p != '"')
        js_ws(s);
    if (s->p >= s->end || *s->p != '"')
        return -1;
    start = r = w = ++s->p;
#ifdef JS_SSE2
    /* Most strings (names, kinds, reasons) end within 16 bytes: one look
     * here, before any call. */
    if (s->end - r >= 16) {
        unsigned bits = (unsigned)_mm_movemask_epi8(
            js_special16(_mm_loadu_si128((const __m128i *)(const void *)r)));
        if (bits) {
            r += __builtin_ctz(bits);
            goto special;
        }
        r += 16;
    }
#endif
#ifdef JS_WIDE
    if (s->wide) {
        r = js_special_wide(r, s->end);
        goto special;
    }
#endif
#ifdef JS_SSE2
    /* Fast path, 32 bytes at a time: to the first quote, backslash or
     * control byte (a kilobyte-long JWS has none; it was a third of the
     * entry scan 8 bytes at a time). */
    {
        while (s->end - r >= 32) {
            __m128i mx = js_special16(_mm_loadu_si128((const __m128i *)(const void *)r));
            __m128i my = js_special16(_mm_loadu_si128((const __m128i *)(const void *)(r + 16)));
            unsigned bits = (unsigned)_mm_movemask_epi8(mx) |
                            (unsigned)_mm_movemask_epi8(my) << 16;
            if (bits) {
                r += __builtin_ctz(bits);
                break;
            }
            r += 32;
        }
    }
#endif
    /* 8 bytes at a time: stop at the first word holding a quote, a
     * backslash or a control byte. */
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
#if defined(JS_SSE2) || defined(JS_WIDE)
special:
#endif
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
    *n = (size_t)(w - start);
    return 0;
}

static int
js_string(jscan *s, const char **out)
{
    size_t n;

    return js_string_n(s, out, &n);
}

/* Integer (JSON number without fraction or exponent). */
static int
js_int(jscan *s, long long *out)
{
    int neg = 0, is_int = 0;
    unsigned long long v = 0;
    size_t tl = 0;
    char *q;

    js_ws(s);
    q = s->p;
    /* The one number reader (pt_json_number_token): an integer literal,
     * not -0, no fraction or exponent, as everywhere else. */
    if (pt_json_number_token(q, (size_t)(s->end - q), &tl, &is_int) != 0 || !is_int)
        return -1;
    if (*q == '-')
        neg = 1, q++;
    while (q < s->p + tl) {
        v = v * 10 + (unsigned)(*q++ - '0');
        if (v > 9007199254740991ULL)
            return -1;
    }
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
    F_EVENT = 1 << 15, F_DETAIL = 1 << 16, F_TLS = 1 << 17
};

/* The member name just read is k: its length first, then its bytes (a
 * name holds no NUL: \u0000 is refused), where strcmp was a tenth of the
 * scan. */
#define KEY_IS(k) (kl == sizeof k - 1 && memcmp(key, k, sizeof k - 1) == 0)

/* Parse and check the shape of one line. PATIENT_ERR_JSON for a line that
 * is not JSON, PATIENT_ERR_LOG_CORRUPT (with e->why) for JSON that is not
 * an entry, PATIENT_ERR_UNSUPPORTED for an unknown kind. */
patient_err
pentry_parse(const uint8_t *line, size_t len, pentry *e)
{
    jscan s;
    const char *key, *v;
    unsigned seen = 0, bit;
    size_t voff, kl, prev_len = 0, kind_len = 0;
    int ok;

    e->n_reasons = e->n_rules = 0;
    e->seq = 0;
    e->prev = e->time = e->kind_s = e->url = e->by_name = e->by_kid = e->jws = NULL;
    e->jws_len = 0;
    e->root_b64 = e->sig = e->event = e->detail = e->tls = NULL;
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
    s.wide = pt_scan_wide != 0 && pt_cpu_avx512();
    if (!js_lit(&s, '{'))
        return PATIENT_ERR_JSON;
    if (!js_lit(&s, '}')) {
        do {
            if (js_string_n(&s, &key, &kl) != 0 || !js_lit(&s, ':'))
                return PATIENT_ERR_JSON;
            bit = 0;
            ok = 0;
            js_ws(&s);
            voff = (size_t)(s.p - e->copy);
            switch (key[0]) {
            case 's':
                if (KEY_IS("seq"))
                    bit = F_SEQ, ok = js_uint(&s, &e->seq) == 0;
                else if (KEY_IS("sig"))
                    bit = F_SIG, ok = js_string(&s, &e->sig) == 0;
                break;
            case 'p':
                if (KEY_IS("prev"))
                    bit = F_PREV, ok = js_string_n(&s, &e->prev, &prev_len) == 0;
                break;
            case 'k':
                if (KEY_IS("kind"))
                    bit = F_KIND, ok = js_string_n(&s, &e->kind_s, &kind_len) == 0;
                break;
            case 't':
                if (KEY_IS("time"))
                    bit = F_TIME, ok = js_string(&s, &e->time) == 0;
                else if (KEY_IS("tree_size"))
                    bit = F_TREE, ok = js_uint(&s, &e->tree_size) == 0;
                else if (KEY_IS("tls"))
                    bit = F_TLS, ok = js_string(&s, &e->tls) == 0;
                break;
            case 'u':
                if (KEY_IS("url"))
                    bit = F_URL, ok = js_string(&s, &e->url) == 0;
                break;
            case 'h':
                if (KEY_IS("hop"))
                    bit = F_HOP, ok = js_int(&s, &e->hop) == 0;
                break;
            case 'b':
                if (KEY_IS("by")) {
                    bit = F_BY;
                    ok = js_lit(&s, '{');
                    if (ok && !js_lit(&s, '}')) {
                        do {
                            const char *k2;
                            size_t l2;
                            int name, kid;
                            if (js_string_n(&s, &k2, &l2) != 0 || !js_lit(&s, ':')) {
                                ok = 0;
                                break;
                            }
                            name = l2 == 4 && memcmp(k2, "name", 4) == 0;
                            kid = l2 == 3 && memcmp(k2, "kid", 3) == 0;
                            if (name && e->by_name == NULL)
                                ok = js_string(&s, &e->by_name) == 0;
                            else if (kid && e->by_kid == NULL)
                                ok = js_string(&s, &e->by_kid) == 0;
                            else if (name || kid)
                                ok = 0;
                            else
                                ok = js_skip(&s, 2) == 0;
                        } while (ok && js_lit(&s, ','));
                        ok = ok && js_lit(&s, '}');
                    }
                }
                break;
            case 'r':
                if (KEY_IS("reasons"))
                    bit = F_REASONS,
                    ok = js_str_array(&s, &e->reasons, &e->reasons_cap, &e->n_reasons) == 0;
                else if (KEY_IS("rules"))
                    bit = F_RULES,
                    ok = js_str_array(&s, &e->rules, &e->rules_cap, &e->n_rules) == 0;
                else if (KEY_IS("root"))
                    bit = F_ROOT, ok = js_string(&s, &e->root_b64) == 0;
                break;
            case 'd':
                if (KEY_IS("deleted"))
                    bit = F_DEL, ok = js_uint(&s, &e->deleted) == 0;
                else if (KEY_IS("detail"))
                    bit = F_DETAIL, ok = js_string(&s, &e->detail) == 0;
                break;
            case 'i':
                if (KEY_IS("inserted"))
                    bit = F_INS, ok = js_uint(&s, &e->inserted) == 0;
                break;
            case 'j':
                if (KEY_IS("jws"))
                    bit = F_JWS, ok = js_string_n(&s, &e->jws, &e->jws_len) == 0;
                break;
            case 'e':
                if (KEY_IS("event"))
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
        prev_len != HEX_LEN)
        return PATIENT_ERR_LOG_CORRUPT;
    v = e->kind_s;
    /* (names hold no NUL: \u0000 is refused, so a length and the bytes are
     * strcmp's answer) */
    if (kind_len == 6 && memcmp(v, "change", 6) == 0) {
        e->kind = PATIENT_LOG_KIND_CHANGE;
        e->why = "change entry missing url, hop, by, reasons, rules, deleted, inserted or jws";
        if ((seen & (F_URL | F_HOP | F_BY | F_REASONS | F_RULES | F_DEL | F_INS | F_JWS)) !=
                (F_URL | F_HOP | F_BY | F_REASONS | F_RULES | F_DEL | F_INS | F_JWS) ||
            e->by_name == NULL || e->by_kid == NULL || e->n_reasons != e->n_rules)
            return PATIENT_ERR_LOG_CORRUPT;
    } else if (kind_len == 10 && memcmp(v, "checkpoint", 10) == 0) {
        e->kind = PATIENT_LOG_KIND_CHECKPOINT;
        e->why = "checkpoint missing tree_size, root or sig";
        if ((seen & (F_TREE | F_ROOT | F_SIG)) != (F_TREE | F_ROOT | F_SIG))
            return PATIENT_ERR_LOG_CORRUPT;
    } else if (kind_len == 5 && memcmp(v, "event", 5) == 0) {
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

patient_err
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

/* "YYYY-MM-DDTHH:MM:SSZ", the form the log writes, without strptime and
 * the time-zone machinery (listing parses a million of them); anything
 * else goes to the reader of the times signed documents carry: a log's
 * time is RFC 3339 UTC (docs/format/log.md), never the "@EPOCH" a command
 * line may give. */
patient_err
pt_log_time_parse(const char *t, time_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int v[6], i, k;
    static const int pos[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};
    long long y, m, d, era, yoe, doy, doe, days;

    if (strlen(t) != PATIENT_TIME_BYTES - 1 || t[4] != '-' || t[7] != '-' || t[10] != 'T' ||
        t[13] != ':' || t[16] != ':' || t[19] != 'Z')
        return pt_time_parse_rfc3339(t, out);
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

/* The one filling of an entry from its parsed line: the iterator, inspection
 * and the monitor's callback hand over the same members for the same line. */
patient_err
pt_log_entry_fill(const pentry *pe, const uint8_t *line, size_t len, uint64_t line_no,
                  patient_log_entry *o)
{
    memset(o, 0, sizeof *o);
    o->line_no = line_no;
    o->seq = pe->seq;
    o->kind = pe->kind;
    o->time_str = pe->time;
    if (pt_log_time_parse(pe->time, &o->time) != PATIENT_OK)
        return PATIENT_ERR_LOG_CORRUPT;
    o->raw = (const char *)line;
    o->raw_len = len;
    o->url = pe->url;
    switch (pe->kind) {
    case PATIENT_LOG_KIND_CHANGE:
        o->hop = pe->hop;
        o->by_name = pe->by_name;
        o->by_kid = pe->by_kid;
        o->deleted = pe->deleted;
        o->inserted = pe->inserted;
        o->jws = pe->jws;
        o->tls = pe->tls;
        o->n_edits = pe->n_reasons;
        o->reasons = (const char *const *)pe->reasons;
        o->rules = (const char *const *)pe->rules;
        break;
    case PATIENT_LOG_KIND_CHECKPOINT:
        o->tree_size = pe->tree_size;
        o->root = pe->root_b64;
        o->sig = pe->sig;
        break;
    case PATIENT_LOG_KIND_EVENT:
        o->event = pe->event;
        o->detail = pe->detail;
        break;
    }
    return PATIENT_OK;
}

/* One line as an entry: the iterator's reader, and inspection's for lines
 * held in memory, so that both read a log alike. */
patient_err
pt_log_entry_read(pentry *pe, const uint8_t *line, size_t len, uint64_t line_no,
                  patient_log_entry *o)
{
    if (pentry_parse(line, len, pe) != PATIENT_OK)
        return PATIENT_ERR_LOG_CORRUPT;
    return pt_log_entry_fill(pe, line, len, line_no, o);
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
    if ((err = pt_log_entry_read(&it->e, line, len, it->line_no, o)) != PATIENT_OK)
        return err;
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
