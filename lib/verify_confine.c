/* Confined hops: a chain in which a hop withheld deleted bytes, checked
 * against the origin's chunk root. Kept apart from verify.c: this is the
 * only place that rebuilds a hop's input with holes. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include <patient/change.h>
#include "chunk.h"
#include "report_int.h"
#include "verify_int.h"
#include "verify_stream.h"

static int
idx_has(const uint64_t *v, size_t n, uint64_t j, size_t *at)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (at)
        *at = lo;
    return lo < n && v[lo] == j;
}

/* Each hop's "chunks" must name exactly the origin chunks its own withheld
 * deletions touch, and hops naming the same chunk must agree. Returns
 * CONFINE_OK, CONFINE_NONE (a hop withheld origin bytes and claims no
 * chunks at all: it is only attested) or CONFINE_INVALID (result added). */
static patient_err
check_claims(patient_report *r, const patient_change *const *ch, size_t n, const pt_holes *holes,
             int *outcome)
{
    char where[64];
    patient_err err;

    *outcome = PT_CONFINE_OK;
    for (size_t k = 0; k < n; k++) {
        const patient_change *c = ch[k];
        uint64_t *t = NULL;
        size_t nt = 0;
        snprintf(where, sizeof where, "hop %zu", k + 1);
        if ((err = pt_holes_chunks(holes, (unsigned)k, &t, &nt)) != PATIENT_OK)
            return err;
        if (nt && c->nchunks == 0) {
            free(t);
            if (*outcome == PT_CONFINE_OK)
                *outcome = PT_CONFINE_NONE;
            continue;
        }
        for (size_t i = 0; i < nt; i++)
            if (!idx_has(c->chunk_idx, c->nchunks, t[i], NULL)) {
                rep_result(r, REP_INVALID, "change.chunks.missing", where,
                           "%s withheld bytes of origin chunk %llu but did not sign its leaf: "
                           "the withheld deletion is not confined",
                           c->by.name, (unsigned long long)t[i]);
                *outcome = PT_CONFINE_INVALID;
                break;
            }
        for (size_t i = 0; i < c->nchunks; i++)
            if (!idx_has(t, nt, c->chunk_idx[i], NULL)) {
                rep_result(r, REP_INVALID, "change.chunks.extra", where,
                           "%s signed a leaf for origin chunk %llu, which none of its withheld "
                           "deletions touches: an unchecked claim about bytes it kept",
                           c->by.name, (unsigned long long)c->chunk_idx[i]);
                *outcome = PT_CONFINE_INVALID;
                break;
            }
        /* Two hops with holes in one chunk both sign its leaf. */
        for (size_t i = 0; i < c->nchunks && *outcome != PT_CONFINE_INVALID; i++)
            for (size_t q = 0; q < k; q++) {
                size_t at;
                if (idx_has(ch[q]->chunk_idx, ch[q]->nchunks, c->chunk_idx[i], &at) &&
                    sodium_memcmp(ch[q]->chunk_val[at], c->chunk_val[i], PATIENT_SHA256_BYTES)) {
                    rep_result(r, REP_INVALID, "change.confined.mismatch", where,
                               "%s and hop %zu sign different leaves for origin chunk %llu",
                               c->by.name, q + 1, (unsigned long long)c->chunk_idx[i]);
                    *outcome = PT_CONFINE_INVALID;
                    break;
                }
            }
        free(t);
    }
    return PATIENT_OK;
}

/* The kept bytes of each touched chunk (those nobody can check against
 * the origin) must be what the last hop with a hole there signed as
 * "kept": that binds them to a middlebox's signature without hashing the
 * whole body. Earlier hops' "kept" of that chunk covered bytes a later hop
 * withheld, so they cannot be checked and are not. */
static patient_err
check_kept(patient_report *r, const patient_change *const *ch, size_t n, const pt_holes *holes,
           const uint64_t *idx, const uint8_t (*kept)[PATIENT_SHA256_BYTES], size_t nidx,
           int *outcome)
{
    size_t hi = 0;
    char where[64];
    patient_err err = PATIENT_OK;

    *outcome = PT_CONFINE_OK;
    for (size_t i = 0; i < nidx; i++) {
        uint64_t a = idx[i] * PT_CHUNK_SIZE, b = a + PT_CHUNK_SIZE;
        unsigned last = 0;
        size_t at;
        while (hi < holes->n && holes->h[hi].off + holes->h[hi].len <= a)
            hi++;
        for (size_t q = hi; q < holes->n && holes->h[q].off < b; q++)
            if (holes->h[q].owner > last)
                last = holes->h[q].owner;
        if (last >= n || !idx_has(ch[last]->chunk_idx, ch[last]->nchunks, idx[i], &at)) {
            err = PATIENT_ERR_STATE; /* check_claims guarantees it */
            goto out;
        }
        if (sodium_memcmp(kept[i], ch[last]->chunk_kept[at], sizeof kept[i]) != 0) {
            snprintf(where, sizeof where, "hop %u", last + 1);
            rep_result(r, REP_INVALID, "body.mismatch", where,
                       "the bytes kept beside a withheld deletion (origin chunk %llu) are not "
                       "what %s signed: changed after it",
                       (unsigned long long)idx[i], ch[last]->by.name);
            *outcome = PT_CONFINE_INVALID;
            break;
        }
    }
out:
    return err;
}

/* Unchecked bytes: the kept bytes of touched chunks, carried forward to
 * the body the endpoint received. */
static patient_err
report_unchecked(patient_report *r, const patient_change *const *ch, size_t n,
                 const pt_holes *holes, size_t origin_len, uint64_t *total)
{
    pt_holes cur = {0}, next = {0};
    uint64_t *t = NULL;
    size_t nt = 0;
    patient_err err = PATIENT_OK;

    *total = 0;
    for (unsigned k = 0; k < n; k++) {
        uint64_t *tk = NULL, *m;
        size_t ntk = 0, a = 0, b = 0, nm = 0;
        if ((err = pt_holes_chunks(holes, k, &tk, &ntk)) != PATIENT_OK)
            goto out;
        if ((m = malloc((nt + ntk + 1) * sizeof *m)) == NULL) {
            free(tk);
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        while (a < nt || b < ntk) {
            uint64_t v = b >= ntk || (a < nt && t[a] < tk[b]) ? t[a++] : tk[b++];
            if (nm == 0 || m[nm - 1] != v)
                m[nm++] = v;
        }
        free(t);
        free(tk);
        t = m;
        nt = nm;
    }
    for (size_t i = 0; i < nt; i++) {
        size_t off = (size_t)t[i] * PT_CHUNK_SIZE;
        size_t len = origin_len - off < PT_CHUNK_SIZE ? origin_len - off : PT_CHUNK_SIZE;
        if (cur.n && cur.h[cur.n - 1].off + cur.h[cur.n - 1].len == off) {
            cur.h[cur.n - 1].len += len;
            continue;
        }
        if (cur.n == cur.cap) {
            size_t nc = cur.cap ? 2 * cur.cap : 8;
            pt_hole *p = realloc(cur.h, nc * sizeof *p);
            if (p == NULL) {
                err = PATIENT_ERR_NOMEM;
                goto out;
            }
            cur.h = p;
            cur.cap = nc;
        }
        cur.h[cur.n++] = (pt_hole){off, len, 0};
    }
    for (size_t k = 0; k < n; k++) {
        if ((err = pt_map_forward(ch[k], &cur, &next)) != PATIENT_OK)
            goto out;
        pt_holes_free(&cur);
        cur = next;
        next = (pt_holes){0};
    }
    free(r->unchecked.ranges);
    r->unchecked.ranges = NULL;
    r->unchecked.nranges = 0;
    if (cur.n > 0 && (r->unchecked.ranges = calloc(cur.n, sizeof *r->unchecked.ranges)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < cur.n; i++) {
        r->unchecked.ranges[i] = (rep_range){cur.h[i].off, cur.h[i].len};
        *total += cur.h[i].len;
    }
    r->unchecked.nranges = cur.n;
    r->unchecked.bytes = *total;
    r->has_unchecked = 1;
out:
    free(t);
    pt_holes_free(&cur);
    pt_holes_free(&next);
    return err;
}

int
pt_origin_root(const char *jws, const patient_pubkey *keys, size_t nkeys, const char *url,
               time_t now, uint64_t *size, uint8_t hash[32], uint8_t root[32])
{
    for (size_t i = 0; i < nkeys; i++) {
        patient_origin_info info;
        patient_err e = patient_origin_check(jws, &keys[i], url, now, &info);
        if (e == PATIENT_ERR_KEY_MISMATCH)
            continue;
        if (e != PATIENT_OK || !info.has_chunk_root)
            return 0;
        *size = info.size;
        memcpy(hash, info.hash, 32);
        memcpy(root, info.chunk_root, 32);
        return 1;
    }
    return 0;
}

int
pt_attested_allowed(const patient_policy *p, int has_chunk_root)
{
    switch (patient_policy_require_proof(p)) {
    case PATIENT_PROOF_ATTESTED: return 1;
    case PATIENT_PROOF_AUTO: return !has_chunk_root;
    default: return 0;
    }
}

patient_err
pt_verify_confined(patient_report *r, const patient_change *const *ch, size_t n,
                   rep_hop *const *hops, const pt_bodyck *b,
                   const uint8_t root[PATIENT_SHA256_BYTES], uint64_t ref_size,
                   const uint8_t ref_hash[PATIENT_SHA256_BYTES], int *outcome)
{
    const pt_holes *holes = pt_bodyck_holes(b);
    const uint64_t *kidx;
    const uint8_t (*kept)[PATIENT_SHA256_BYTES];
    uint64_t unchecked = 0;
    size_t nk = 0, withheld = 0;
    long bad = pt_bodyck_bad_hop(b);
    char where[64];
    patient_err err;

    *outcome = PT_CONFINE_INVALID;
    /* No hash of the received body: every byte of it is checked below,
     * through the chunk root, against an inserted run, or against the
     * "kept" hash of the chunk it sits in (SECURITY.md). One SHA-256 pass
     * over the rebuilt origin bytes instead of two; and no byte copied:
     * each hop's input is pieces of the body and of the disclosed deleted
     * bytes, the withheld ones holes (pieces.h). b made those checks as
     * the body came (verify_stream.h); here they are reported, undoing
     * the hops last first. */
    for (size_t k = n; k-- > 0 && (long)k > bad;)
        /* A hop's input with holes is checked through the chunk root only. */
        if (hops[k])
            hops[k]->proof = pt_bodyck_has_holes(b, k) ? "confined" : "proven";
    if (bad >= 0) {
        size_t k = (size_t)bad;
        snprintf(where, sizeof where, "hop %zu", k + 1);
        rep_result(r, REP_INVALID, "body.mismatch", where,
                   k + 1 == n ? "the body received is not what the last hop (%s) says it "
                                "produced (size or inserted bytes): changed in transit"
                              : "the body is not what hop %s produced",
                   k + 1 == n ? ch[k]->by.name : where);
        return PATIENT_OK;
    }
    if (ch[0]->in.size != ref_size || sodium_memcmp(ch[0]->in.hash, ref_hash, PATIENT_SHA256_BYTES)) {
        rep_result(r, REP_INVALID, "body.mismatch", "hop 1",
                   "hop 1 (%s) says it received bytes that differ from what the origin signed",
                   ch[0]->by.name);
        return PATIENT_OK;
    }
    if ((err = check_claims(r, ch, n, holes, outcome)) != PATIENT_OK ||
        *outcome != PT_CONFINE_OK)
        return err;
    *outcome = PT_CONFINE_INVALID;
    /* check_claims saw every touched chunk signed: the leaves are known. */
    if (!pt_bodyck_known(b, &kidx, &nk, &kept))
        return PATIENT_ERR_STATE;
    if (sodium_memcmp(pt_bodyck_root(b), root, PATIENT_SHA256_BYTES) != 0) {
        rep_result(r, REP_INVALID, "change.confined.mismatch", NULL,
                   "the bytes the hops kept and the chunk leaves they signed do not give the "
                   "origin's chunk root: a byte outside the withheld deletions' chunks was "
                   "changed without a descriptor, or a signed leaf lies");
        return PATIENT_OK;
    }
    if ((err = check_kept(r, ch, n, holes, kidx, kept, nk, outcome)) != PATIENT_OK ||
        *outcome != PT_CONFINE_OK)
        return err;
    *outcome = PT_CONFINE_INVALID;
    for (size_t i = 0; i < holes->n; i++)
        withheld += holes->h[i].len;
    if ((err = report_unchecked(r, ch, n, holes, pt_bodyck_input(b, 0)->len, &unchecked)) !=
        PATIENT_OK)
        return err;
    rep_result(r, REP_INFO, "change.confined", NULL,
               "%zu withheld byte%s pinned by hash; every other byte received is checked against "
               "the origin's chunk root, except %llu kept byte%s in the %zu chunk%s the "
               "withheld deletions touch (signed by the middlebox, not checked)",
               withheld, withheld == 1 ? "" : "s", (unsigned long long)unchecked,
               unchecked == 1 ? "" : "s", nk, nk == 1 ? "" : "s");
    *outcome = PT_CONFINE_OK;
    return PATIENT_OK;
}
