/* Edit lists: validation, applying, checking an output, undoing a hop, and
 * the structural checks of a descriptor chain. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include <patient/change.h>
#include "change_int.h"
#include "util.h"

/* Hash in pieces this big, right after copying them, while they are still
 * in cache. */
#define CHUNK (64u * 1024)

patient_err
pt_edits_check(const patient_edit *e, size_t n, size_t in_len, patient_err noop_err,
               size_t *out_len)
{
    size_t i, total = in_len;

    if (n > PATIENT_MAX_EDITS)
        return PATIENT_ERR_LIMIT;
    if (in_len > PATIENT_MAX_BODY)
        return PATIENT_ERR_TOO_LARGE;
    for (i = 0; i < n; i++) {
        if (e[i].offset > in_len || e[i].delete_len > in_len - e[i].offset)
            return PATIENT_ERR_EDIT_RANGE;
        if (e[i].delete_len == 0 && e[i].insert_len == 0)
            return noop_err;
        if (e[i].insert_len > 0 && e[i].insert == NULL)
            return PATIENT_ERR_ARG;
        /* Strictly after the previous edit's deleted region; an insertion
         * right where a deletion ends is fine, two edits at one offset not. */
        if (i > 0 && (e[i].offset < e[i - 1].offset + e[i - 1].delete_len ||
                      e[i].offset == e[i - 1].offset))
            return PATIENT_ERR_EDIT_ORDER;
        total -= e[i].delete_len; /* cannot underflow: regions are disjoint */
        if (e[i].insert_len > PATIENT_MAX_BODY || total > PATIENT_MAX_BODY - e[i].insert_len)
            return PATIENT_ERR_TOO_LARGE;
        total += e[i].insert_len;
    }
    if (out_len)
        *out_len = total;
    return PATIENT_OK;
}

static patient_err
upd(patient_sha256_ctx *h, const void *p, size_t n)
{
    return h && n ? patient_sha256_update(h, p, n) : PATIENT_OK;
}

/* Copy n bytes (dst), or check that they are already there (expect, when
 * dst is NULL: PATIENT_ERR_HASH if not), hashing the source into hin and
 * the output bytes into hout. */
static patient_err
copy_hashed(uint8_t *dst, const uint8_t *expect, const uint8_t *src, size_t n,
            patient_sha256_ctx *hin, patient_sha256_ctx *hout)
{
    patient_err err = PATIENT_OK;

    while (n > 0 && err == PATIENT_OK) {
        size_t k = n < CHUNK ? n : CHUNK;
        if (dst)
            memcpy(dst, src, k);
        else if (memcmp(expect, src, k) != 0)
            return PATIENT_ERR_HASH;
        if ((err = upd(hin, src, k)) == PATIENT_OK)
            err = upd(hout, src, k);
        if (dst)
            dst += k;
        else
            expect += k;
        src += k, n -= k;
    }
    return err;
}

/* copy_hashed at output offset w: into o, or checked against expect. */
static patient_err
out_at(uint8_t *o, const uint8_t *expect, size_t w, const uint8_t *src, size_t n,
       patient_sha256_ctx *hin, patient_sha256_ctx *hout)
{
    return o ? copy_hashed(o + w, NULL, src, n, hin, hout)
             : copy_hashed(NULL, expect + w, src, n, hin, hout);
}

/* Write the output of edits (already checked) to o, which has room for
 * out_len bytes, or (o NULL) check that expect holds exactly that output;
 * hash input and output on the way when ci/co are not NULL. */
static patient_err
edits_write(const uint8_t *in, size_t len, const patient_edit *e, size_t n, size_t out_len,
            uint8_t *o, const uint8_t *expect, patient_sha256_ctx *ci, patient_sha256_ctx *co)
{
    static uint8_t none[1]; /* stands in for a NULL buffer of 0 bytes */
    size_t pos = 0, w = 0, i;
    patient_err err;

    /* An empty body or output may come as NULL; NULL + 0 is undefined
     * (C11 6.5.6), and clang's UBSan says so. Nothing is read or written
     * through these when their length is 0. */
    if (in == NULL)
        in = none;
    if (o == NULL && expect == NULL)
        o = none;
    for (i = 0; i < n; i++) {
        if (e[i].offset - pos > out_len - w)
            return PATIENT_ERR_ARG;
        if ((err = out_at(o, expect, w, in + pos, e[i].offset - pos, ci, co)))
            return err;
        w += e[i].offset - pos;
        if ((err = upd(ci, in + e[i].offset, e[i].delete_len)))
            return err;
        if (e[i].insert_len > out_len - w)
            return PATIENT_ERR_ARG;
        if ((err = out_at(o, expect, w, e[i].insert, e[i].insert_len, NULL, co)))
            return err;
        w += e[i].insert_len;
        pos = e[i].offset + e[i].delete_len;
    }
    if (len - pos != out_len - w)
        return PATIENT_ERR_ARG; /* sizes do not add up */
    return out_at(o, expect, w, in + pos, len - pos, ci, co);
}

/* Run edits_write with fresh hash contexts for the hashes asked for. */
static patient_err
edits_write_hashed(const uint8_t *in, size_t len, const patient_edit *e, size_t n,
                   size_t out_len, uint8_t *o, const uint8_t *expect,
                   uint8_t hin[PATIENT_SHA256_BYTES], uint8_t hout[PATIENT_SHA256_BYTES])
{
    patient_sha256_ctx *ci = NULL, *co = NULL;
    patient_err err;

    if ((hin && (err = patient_sha256_init(&ci))) || (hout && (err = patient_sha256_init(&co))))
        goto out;
    if ((err = edits_write(in, len, e, n, out_len, o, expect, ci, co)))
        goto out;
    if (ci) {
        err = patient_sha256_final(ci, hin);
        ci = NULL;
        if (err)
            goto out;
    }
    if (co) {
        err = patient_sha256_final(co, hout);
        co = NULL;
    }
out:
    patient_sha256_free(ci);
    patient_sha256_free(co);
    return err;
}

patient_err
pt_edits_match(const uint8_t *in, size_t len, const patient_edit *e, size_t n,
               const uint8_t *out, size_t out_len, uint8_t hin[PATIENT_SHA256_BYTES],
               uint8_t hout[PATIENT_SHA256_BYTES])
{
    static const uint8_t none[1];

    return edits_write_hashed(in, len, e, n, out_len, NULL, out ? out : none, hin, hout);
}

patient_err
pt_edits_build(const uint8_t *in, size_t len, const patient_edit *e, size_t n, size_t out_len,
               uint8_t **out, uint8_t hin[PATIENT_SHA256_BYTES],
               uint8_t hout[PATIENT_SHA256_BYTES])
{
    uint8_t *o;
    patient_err err;

    *out = NULL;
    if ((o = malloc(out_len ? out_len : 1)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = edits_write_hashed(in, len, e, n, out_len, o, NULL, hin, hout)) != PATIENT_OK) {
        free(o);
        return err;
    }
    *out = o;
    return PATIENT_OK;
}

patient_err
patient_edits_apply(const uint8_t *in, size_t len, const patient_edit *edits, size_t n,
                    uint8_t **out, size_t *out_len)
{
    size_t olen = 0;
    patient_err err;

    *out = NULL;
    *out_len = 0;
    if ((in == NULL && len > 0) || (edits == NULL && n > 0))
        return PATIENT_ERR_ARG;
    if ((err = pt_edits_check(edits, n, len, PATIENT_ERR_ARG, &olen)))
        return err;
    if ((err = pt_edits_build(in, len, edits, n, olen, out, NULL, NULL)))
        return err;
    *out_len = olen;
    return PATIENT_OK;
}

static patient_err
check_output(const patient_change *c, const uint8_t *body, size_t len, int hash)
{
    uint8_t h[PATIENT_SHA256_BYTES];
    size_t i, opos;
    ptrdiff_t shift = 0; /* output position minus input position so far */
    patient_err err;

    if (c == NULL || (body == NULL && len > 0))
        return PATIENT_ERR_ARG;
    if (len != c->out.size)
        return PATIENT_ERR_HASH;
    if (hash) {
        if ((err = patient_sha256(body ? (const void *)body : "", len, h)))
            return err;
        if (!pt_memeq(h, c->out.hash, sizeof h))
            return PATIENT_ERR_HASH;
    }
    /* The signed out hash covers the body, but the descriptor must also tell
     * the truth about what it inserted, or a report would show one text
     * while the body carries another. */
    for (i = 0; i < c->nedits; i++) {
        const patient_edit *e = &c->edits[i];
        opos = (size_t)((ptrdiff_t)e->offset + shift);
        if (opos > len || e->insert_len > len - opos ||
            (e->insert_len && memcmp(body + opos, e->insert, e->insert_len) != 0))
            return PATIENT_ERR_HASH;
        shift += (ptrdiff_t)e->insert_len - (ptrdiff_t)e->delete_len;
    }
    return PATIENT_OK;
}

patient_err
patient_change_check_output(const patient_change *c, const uint8_t *body, size_t len)
{
    return check_output(c, body, len, 1);
}

patient_err
patient_change_undo(const patient_change *c, const uint8_t *body, size_t len, uint8_t **in,
                    size_t *in_len)
{
    pt_bigbuf b = {0};
    patient_err err;

    *in = NULL;
    *in_len = 0;
    /* malloc'd for the caller: no pt_bigbuf mapping. */
    if (c && c->in.size <= PATIENT_MAX_BODY &&
        (b.p = malloc(c->in.size ? (size_t)c->in.size : 1)) == NULL)
        return PATIENT_ERR_NOMEM;
    b.cap = b.p ? (size_t)c->in.size : 0;
    err = pt_change_undo(c, body, len, PT_UNDO_HASH_OUT | PT_UNDO_HASH_IN, &b, in_len, NULL);
    if (err == PATIENT_OK && !b.mapped) {
        *in = b.p;
        return PATIENT_OK;
    }
    if (err == PATIENT_OK) { /* cannot happen: in.size was reserved */
        if ((*in = malloc(*in_len ? *in_len : 1)) != NULL)
            memcpy(*in, b.p, *in_len);
        else
            err = PATIENT_ERR_NOMEM;
    }
    if (err != PATIENT_OK)
        *in_len = 0;
    pt_bigbuf_free(&b);
    return err;
}

/* The checks of an undo that need no hashing, and the inverse edits: on
 * the output, at each edit's output position, delete what was inserted and
 * insert what was deleted. *rev (malloc'd) and *olen on success. */
static patient_err
undo_prepare(const patient_change *c, const uint8_t *body, size_t len, unsigned flags,
             patient_edit **rev, size_t *olen)
{
    patient_edit *r;
    size_t i, end = 0, o = len;
    ptrdiff_t shift = 0;
    patient_err err;

    *rev = NULL;
    if ((err = check_output(c, body, len, 0)))
        return err;
    for (i = 0; i < c->nedits; i++)
        if (c->edits[i].delete_len > 0 && c->edits[i].deleted == NULL) {
            /* A body that is not the hop's output is that first (HASH). */
            if ((flags & PT_UNDO_HASH_OUT) && (err = check_output(c, body, len, 1)))
                return err;
            return PATIENT_ERR_NOT_FOUND;
        }
    if ((r = calloc(c->nedits ? c->nedits : 1, sizeof *r)) == NULL)
        return PATIENT_ERR_NOMEM;
    for (i = 0; i < c->nedits; i++) {
        const patient_edit *e = &c->edits[i];
        r[i].offset = (size_t)((ptrdiff_t)e->offset + shift);
        r[i].delete_len = e->insert_len;
        r[i].insert = e->deleted;
        r[i].insert_len = e->delete_len;
        shift += (ptrdiff_t)e->insert_len - (ptrdiff_t)e->delete_len;
        /* Inverse edits of a valid list are in range, sorted and disjoint
         * (a pure insertion right after a pure deletion maps to the same
         * output offset, which the writers accept). */
        if (r[i].offset < end || r[i].offset > len || r[i].delete_len > len - r[i].offset) {
            free(r);
            return PATIENT_ERR_HASH;
        }
        end = r[i].offset + r[i].delete_len;
        o = o - e->insert_len + e->delete_len;
    }
    if (o != c->in.size) {
        free(r);
        return PATIENT_ERR_HASH;
    }
    *rev = r;
    *olen = o;
    return PATIENT_OK;
}

patient_err
pt_change_undo(const patient_change *c, const uint8_t *body, size_t len, unsigned flags,
               pt_bigbuf *dst, size_t *in_len, uint8_t hin[PATIENT_SHA256_BYTES])
{
    patient_edit *rev = NULL;
    uint8_t hb[PATIENT_SHA256_BYTES], hi[PATIENT_SHA256_BYTES];
    size_t olen = 0;
    int want_in = hin != NULL || (flags & PT_UNDO_HASH_IN);
    patient_err err;

    *in_len = 0;
    /* Sizes and inserted bytes now; the out hash is taken while copying. */
    if ((err = undo_prepare(c, body, len, flags, &rev, &olen)))
        return err;
    if ((err = pt_bigbuf_reserve(dst, olen)))
        goto out;
    /* One pass: copy, hashing the body (as this hop's out) and the rebuilt
     * input as asked. */
    if ((err = edits_write_hashed(body, len, rev, c->nedits, olen, dst->p, NULL,
                                  (flags & PT_UNDO_HASH_OUT) ? hb : NULL,
                                  want_in ? hi : NULL)) != PATIENT_OK) {
        if (err == PATIENT_ERR_ARG) /* sizes did not add up */
            err = PATIENT_ERR_HASH;
        goto out;
    }
    if ((flags & PT_UNDO_HASH_OUT) && !pt_memeq(hb, c->out.hash, sizeof hb)) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    if ((flags & PT_UNDO_HASH_IN) && !pt_memeq(hi, c->in.hash, sizeof hi)) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    if (hin)
        memcpy(hin, hi, sizeof hi);
    *in_len = olen;
out:
    free(rev);
    return err;
}

/* Apply edits (sorted, disjoint, in range of len; output fits in p) in
 * place. Kept bytes that move left are moved first, left to right, then
 * those that move right, right to left, then the inserted bytes are written:
 * no move overwrites bytes still to be moved, since the output keeps the
 * order of the kept pieces. */
static void
edits_apply_inplace(uint8_t *p, size_t len, const patient_edit *e, size_t n)
{
    size_t j, start, end;
    ptrdiff_t shift = 0; /* of piece j: output position minus input position */

#define PIECE_START(j) ((j) > 0 ? e[(j)-1].offset + e[(j)-1].delete_len : 0)
#define PIECE_END(j) ((j) < n ? e[(j)].offset : len)
#define DELTA(j) ((ptrdiff_t)e[(j)].insert_len - (ptrdiff_t)e[(j)].delete_len)
    for (j = 0; j <= n; j++) {
        start = PIECE_START(j);
        end = PIECE_END(j);
        if (shift < 0 && end > start)
            memmove(p + (size_t)((ptrdiff_t)start + shift), p + start, end - start);
        if (j < n)
            shift += DELTA(j);
    }
    for (j = n + 1; j-- > 0;) {
        if (j < n)
            shift -= DELTA(j);
        start = PIECE_START(j);
        end = PIECE_END(j);
        if (shift > 0 && end > start)
            memmove(p + (size_t)((ptrdiff_t)start + shift), p + start, end - start);
    }
    /* shift is 0 again: piece 0 never moves. */
    for (j = 0; j < n; j++) {
        if (e[j].insert_len)
            memcpy(p + (size_t)((ptrdiff_t)e[j].offset + shift), e[j].insert, e[j].insert_len);
        shift += DELTA(j);
    }
#undef PIECE_START
#undef PIECE_END
#undef DELTA
}

patient_err
pt_change_undo_inplace(const patient_change *c, pt_bigbuf *buf, size_t len, unsigned flags,
                       size_t *in_len, uint8_t hin[PATIENT_SHA256_BYTES])
{
    patient_edit *rev = NULL;
    patient_sha256_ctx *ci = NULL;
    pt_bigbuf other = {0};
    uint8_t hi[PATIENT_SHA256_BYTES];
    size_t olen = 0;
    int want_in = hin != NULL || (flags & PT_UNDO_HASH_IN);
    patient_err err;

    *in_len = 0;
    if (c == NULL || buf == NULL || (buf->p == NULL && len > 0) || len > buf->cap)
        return PATIENT_ERR_ARG;
    /* Everything that can fail before the bytes change, so that a refused
     * undo leaves them as they were. */
    if ((flags & PT_UNDO_HASH_OUT) && (err = check_output(c, buf->p, len, 1)))
        return err;
    if ((err = undo_prepare(c, buf->p, len, flags & ~PT_UNDO_HASH_OUT, &rev, &olen)))
        return err;
    if (olen > buf->cap) {
        /* No room: copy into a new buffer instead. */
        free(rev);
        if ((err = pt_change_undo(c, buf->p, len, flags & ~PT_UNDO_HASH_OUT, &other, in_len,
                                  hin)) != PATIENT_OK) {
            pt_bigbuf_free(&other);
            return err;
        }
        pt_bigbuf_free(buf);
        *buf = other;
        return PATIENT_OK;
    }
    if (want_in && (err = patient_sha256_init(&ci)))
        goto out;
    edits_apply_inplace(buf->p, len, rev, c->nedits);
    if (ci) {
        if ((err = upd(ci, buf->p, olen)))
            goto out;
        err = patient_sha256_final(ci, hi);
        ci = NULL;
        if (err)
            goto out;
    }
    if ((flags & PT_UNDO_HASH_IN) && !pt_memeq(hi, c->in.hash, sizeof hi)) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    if (hin)
        memcpy(hin, hi, sizeof hi);
    *in_len = olen;
out:
    patient_sha256_free(ci);
    free(rev);
    return err;
}

patient_err
patient_chain_check(const patient_change *const *changes, size_t n, const char *url,
                    size_t *bad)
{
    size_t k;
    patient_err err = PATIENT_OK;

    if ((changes == NULL && n > 0) || url == NULL)
        return PATIENT_ERR_ARG;
    if (n > PATIENT_MAX_HOPS) {
        if (bad)
            *bad = n;
        return PATIENT_ERR_LIMIT;
    }
    for (k = 0; k < n; k++) {
        const patient_change *c = changes[k], *p = k ? changes[k - 1] : NULL;
        if (c == NULL)
            err = PATIENT_ERR_ARG;
        else if (strcmp(c->url, url) != 0)
            err = PATIENT_ERR_ORIGIN;
        else if (c->hop != k + 1)
            err = PATIENT_ERR_CHAIN;
        else if (p && (!c->has_prev || !pt_memeq(c->prev, p->value_hash, PATIENT_SHA256_BYTES)))
            err = PATIENT_ERR_CHAIN;
        else if (p && (c->in.size != p->out.size ||
                       !pt_memeq(c->in.hash, p->out.hash, PATIENT_SHA256_BYTES)))
            err = PATIENT_ERR_CHAIN;
        if (err) {
            if (bad)
                *bad = k;
            return err;
        }
    }
    return PATIENT_OK;
}
