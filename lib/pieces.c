/* Bytes as borrowed pieces; see pieces.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "pieces.h"

void
pt_pieces_free(pt_pieces *s)
{
    if (s) {
        free(s->v);
        *s = (pt_pieces){0};
    }
}

static patient_err
add(pt_pieces *s, const uint8_t *p, size_t len, int owner, int body)
{
    pt_piece *last = s->n ? &s->v[s->n - 1] : NULL;

    if (len == 0)
        return PATIENT_OK;
    if ((p == NULL && owner < 0) || len > SIZE_MAX - s->len)
        return PATIENT_ERR_ARG;
    body = body && p != NULL;
    if (last && last->owner == owner && last->body == body &&
        ((p == NULL && last->p == NULL) || (p && last->p && last->p + last->len == p))) {
        last->len += len;
        s->len += len;
        return PATIENT_OK;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 8;
        pt_piece *v = realloc(s->v, nc * sizeof *v);
        if (v == NULL)
            return PATIENT_ERR_NOMEM;
        s->v = v;
        s->cap = nc;
    }
    s->v[s->n++] = (pt_piece){p, len, owner, body};
    s->len += len;
    return PATIENT_OK;
}

patient_err
pt_pieces_add(pt_pieces *s, const uint8_t *p, size_t len, int owner)
{
    return add(s, p, len, owner, 0);
}

patient_err
pt_pieces_add_body(pt_pieces *s, const uint8_t *p, size_t len)
{
    return p == NULL && len > 0 ? PATIENT_ERR_ARG : add(s, p, len, -1, 1);
}

/* Append the next n bytes at the cursor to dst (n must be there). */
static patient_err
take(pt_pcur *c, size_t n, pt_pieces *dst)
{
    patient_err err;

    while (n) {
        const pt_piece *q = &c->s->v[c->i];
        size_t k = pt_pcur_run(c, n);
        if ((err = add(dst, q->p ? q->p + c->at : NULL, k, q->owner, q->body)) != PATIENT_OK)
            return err;
        n -= k;
        pt_pcur_step(c, k);
    }
    return PATIENT_OK;
}

/* The body region of a deferred undo (pt_pieces_undo_defer): bytes there
 * may not have arrived, so they are compared later. */
typedef struct {
    const uint8_t *base;
    size_t len;
    unsigned hop;
    pt_defers *d;
} region;

/* Compare the next n bytes at the cursor with want, except in holes (those
 * bytes are gone), and step over them; bytes of the body (marked so) are
 * not read but noted in r->d. 1 when they differ, 0 when they match (so
 * far), -1 out of memory, -2 body bytes without a region to note them in. */
static int
skip(pt_pcur *c, size_t n, const uint8_t *want, const region *r)
{
    int diff = 0;

    while (n) {
        const pt_piece *q = &c->s->v[c->i];
        size_t k = pt_pcur_run(c, n);
        if (want && q->owner < 0 && q->body) {
            pt_defers *d;
            if (r == NULL || r->base == NULL || (uintptr_t)q->p < (uintptr_t)r->base ||
                (uintptr_t)q->p - (uintptr_t)r->base >= r->len ||
                q->len > r->len - ((uintptr_t)q->p - (uintptr_t)r->base))
                return -2;
            d = r->d;
            if (d->n == d->cap) {
                size_t nc = d->cap ? 2 * d->cap : 16;
                pt_defer *v = realloc(d->v, nc * sizeof *v);
                if (v == NULL)
                    return -1;
                d->v = v;
                d->cap = nc;
            }
            d->v[d->n++] = (pt_defer){(size_t)(q->p - r->base) + c->at, k, want, r->hop};
        } else if (want && q->owner < 0 && memcmp(q->p + c->at, want, k) != 0) {
            diff = 1;
        }
        if (want)
            want += k;
        n -= k;
        pt_pcur_step(c, k);
    }
    return diff;
}

static patient_err
undo(const patient_change *c, unsigned owner, const pt_pieces *out, int check_insert,
     const region *r, pt_pieces *in)
{
    pt_pcur cur = {out, 0, 0};
    size_t ip = 0, op = 0;
    patient_err err;
    int diff;

    pt_pieces_free(in);
    if (out->len != c->out.size || c->in.size > SIZE_MAX)
        return PATIENT_ERR_HASH;
    for (size_t k = 0; k <= c->nedits; k++) {
        const patient_edit *e = k < c->nedits ? &c->edits[k] : NULL;
        size_t end = e ? e->offset : (size_t)c->in.size, keep;
        if (end < ip)
            goto mismatch;
        keep = end - ip;
        if (keep > out->len - op)
            goto mismatch;
        if ((err = take(&cur, keep, in)) != PATIENT_OK)
            goto fail;
        ip += keep;
        op += keep;
        if (e == NULL)
            break;
        if (e->insert_len > out->len - op)
            goto mismatch;
        if ((diff = skip(&cur, e->insert_len, check_insert ? e->insert : NULL, r)) < 0) {
            err = diff == -1 ? PATIENT_ERR_NOMEM : PATIENT_ERR_STATE;
            goto fail;
        }
        if (diff)
            goto mismatch;
        op += e->insert_len;
        if ((err = pt_pieces_add(in, e->deleted, e->delete_len,
                                 e->deleted ? -1 : (int)owner)) != PATIENT_OK)
            goto fail;
        ip += e->delete_len;
    }
    if (ip != c->in.size || op != out->len)
        goto mismatch;
    return PATIENT_OK;
mismatch:
    err = PATIENT_ERR_HASH;
fail:
    pt_pieces_free(in);
    return err;
}

patient_err
pt_pieces_undo(const patient_change *c, unsigned owner, const pt_pieces *out, int check_insert,
               pt_pieces *in)
{
    return undo(c, owner, out, check_insert, NULL, in);
}

patient_err
pt_pieces_undo_defer(const patient_change *c, unsigned owner, const pt_pieces *out,
                     const uint8_t *base, size_t len, pt_defers *d, pt_pieces *in)
{
    region r = {base, len, owner, d};

    return undo(c, owner, out, 1, &r, in);
}

void
pt_pieces_copy(const pt_pieces *s, uint8_t *dst)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].p)
            memcpy(dst, s->v[i].p, s->v[i].len);
        else
            memset(dst, 0, s->v[i].len);
        dst += s->v[i].len;
    }
}

int
pt_pieces_looks_text(const pt_pieces *s)
{
    size_t left = PT_TEXT_PROBE;

    for (size_t i = 0; i < s->n && left; i++) {
        size_t k = s->v[i].len < left ? s->v[i].len : left;
        if (s->v[i].p && memchr(s->v[i].p, 0, k) != NULL)
            return 0;
        left -= k;
    }
    return 1;
}

/* Newlines in p[0, n). Sixteen bytes at a time with the compilers' vector
 * extension (SSE2 on x86-64, plain code elsewhere): memchr once per line
 * costs a call per ~80 bytes of HTML, about twice this. */
typedef uint8_t v16 __attribute__((vector_size(16)));

static size_t
count_newlines(const uint8_t *p, size_t n)
{
    const v16 nl = {'\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n',
                    '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n'};
    size_t c = 0, i = 0;

    while (n - i >= 16) {
        /* Byte counters: at most 255 rounds before they are summed. */
        size_t rounds = (n - i) / 16 < 255 ? (n - i) / 16 : 255;
        v16 acc = {0};
        for (size_t r = 0; r < rounds; r++, i += 16) {
            v16 v;
            memcpy(&v, p + i, sizeof v);
            acc += (v16)(v == nl) & 1;
        }
        for (size_t b = 0; b < sizeof acc; b++)
            c += acc[b];
    }
    for (; i < n; i++)
        c += p[i] == '\n';
    return c;
}

static long long
count_chars(const uint8_t *p, size_t n)
{
    long long c = 0;
    for (size_t i = 0; i < n; i++)
        c += (p[i] & 0xC0) != 0x80; /* UTF-8 characters, not continuation bytes */
    return c;
}

void
pt_linecol_run(long long *line, long long *col, const uint8_t *p, size_t k)
{
    const uint8_t *nl;
    size_t lines;

    if (p == NULL) {
        *col += (long long)k;
        return;
    }
    if ((lines = count_newlines(p, k)) != 0) {
        nl = memrchr(p, '\n', k);
        *line += (long long)lines;
        *col = 1 + count_chars(nl + 1, k - (size_t)(nl + 1 - p));
    } else {
        *col += count_chars(p, k);
    }
}

void
pt_pieces_line_col(const pt_pieces *s, pt_linecol *lc, size_t off, long long *line,
                   long long *column)
{
    /* The cursor reads lc->c.s, the loop s: they must be the same list. */
    if (lc->line == 0 || off < lc->pos || lc->c.s != s)
        *lc = (pt_linecol){{s, 0, 0}, 0, 1, 1};
    if (off > s->len)
        off = s->len;
    while (lc->pos < off && lc->c.i < s->n) {
        const pt_piece *q = &s->v[lc->c.i];
        size_t k = pt_pcur_run(&lc->c, off - lc->pos);
        pt_linecol_run(&lc->line, &lc->col, q->p ? q->p + lc->c.at : NULL, k);
        lc->pos += k;
        pt_pcur_step(&lc->c, k);
    }
    *line = lc->line;
    *column = lc->col;
}
