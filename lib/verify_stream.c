/* The checks of a body as it arrives; see verify_stream.h. */
#include "config.h"

/* The low-level SHA-256 interface: no EVP fetch or context allocation
 * (hash.c says why); the same SHA-NI code. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "verify_int.h"
#include "verify_stream.h"

/* Bytes read by every check before the next ones: the block stays in the
 * cache while each of them reads it (on their own, each is a pass over
 * memory). libcurl hands out up to 256 KiB at a time (fetch.c). */
#define STEP (64u * 1024)

/* Line and column of one hop's edits, in its input. */
typedef struct {
    pt_linecol lc;          /* where its input has been read to */
    size_t next;            /* the next edit to place */
    long long (*at)[2];     /* edit j: line, column */
    int nul;                /* a NUL in the first PT_TEXT_PROBE bytes: not text */
} lcst;

struct pt_bodyck {
    int mode;
    size_t n;
    const patient_change *ch[PATIENT_MAX_HOPS];
    uint8_t *base;          /* the reserved range standing for the body */
    size_t len;             /* the body's expected length: the last hop's out.size */
    void *map;              /* base's mapping, with a guard page on each side */
    size_t maplen;
    pt_pieces in[PATIENT_MAX_HOPS + 1]; /* in[k]: hop k's input; in[n]: the body */
    size_t lowest;          /* the lowest hop whose input is built */
    long static_bad;        /* the hop whose undo failed on its layout alone, or -1 */
    unsigned char bad[PATIENT_MAX_HOPS]; /* inserted bytes in the body differ */
    int has_holes[PATIENT_MAX_HOPS];
    pt_defers d;
    size_t di;
    uint64_t got;
    int sha_on;
    SHA256_CTX sha;
    pt_pcur shac;
    uint8_t digest[PATIENT_SHA256_BYTES];
    lcst lc[PATIENT_MAX_HOPS];
    /* confined */
    pt_holes holes;
    uint64_t *kidx;
    uint8_t (*kval)[PATIENT_SHA256_BYTES];
    uint8_t (*kept)[PATIENT_SHA256_BYTES];
    size_t nk;
    int known, unclaimed;
    pt_chunk_stream *walk;
    pt_pcur wc;
    uint8_t root[PATIENT_SHA256_BYTES];
    int ended;
};

int
pt_chain_withholds(patient_change *const *ch, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (ch[k] && !ch[k]->disclosed)
            return 1;
    return 0;
}

int
pt_body_mode(size_t n, int chain_ok, int withholds, int have_ref, int ref_root, int origin_root)
{
    if (!chain_ok)
        return PT_BODY_KEEP;
    if (n == 0)
        return have_ref ? PT_BODY_HASH : PT_BODY_KEEP;
    if (withholds && ((have_ref && ref_root) || origin_root))
        return PT_BODY_CONFINED;
    /* Every deletion disclosed and an entry to compare with: the last
     * hop's "out" hash is not needed (docs/SECURITY.md), so nothing asks
     * for the body's own bytes. */
    if (!withholds && have_ref)
        return PT_BODY_PROVEN;
    return PT_BODY_KEEP;
}

static int
cmp_defer(const void *a, const void *b)
{
    const pt_defer *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* By its mark, not by its address (pieces.h says why). */
static int
in_body(const pt_bodyck *b, const pt_piece *q)
{
    return q->body && b->base;
}

static patient_err
confined_plan(pt_bodyck *b)
{
    pt_chunk_job job;
    patient_err err;

    if ((err = pt_pieces_holes(&b->in[0], &b->holes)) != PATIENT_OK)
        return err;
    for (size_t k = 0; k < b->n; k++) {
        uint64_t *t = NULL;
        size_t nt = 0;
        if ((err = pt_holes_chunks(&b->holes, (unsigned)k, &t, &nt)) != PATIENT_OK)
            return err;
        free(t);
        if (nt && b->ch[k]->nchunks == 0)
            b->unclaimed = 1;
    }
    err = pt_chunk_known(&b->holes, b->ch, b->n, &b->kidx, &b->kval, &b->nk);
    if (err == PATIENT_ERR_NOT_FOUND)
        return PATIENT_OK; /* the core reports the missing leaf before any walk */
    if (err != PATIENT_OK)
        return err;
    b->known = 1;
    if (b->nk && (b->kept = calloc(b->nk, sizeof *b->kept)) == NULL)
        return PATIENT_ERR_NOMEM;
    /* The root, and the kept hash of every chunk whose leaf a hop gave. */
    job = (pt_chunk_job){.len = b->in[0].len, .known = b->kidx,
                         .known_val = (const uint8_t (*)[PATIENT_SHA256_BYTES])b->kval,
                         .nknown = b->nk, .want = b->kidx, .kept = b->kept, .nwant = b->nk,
                         .root = 1};
    if ((err = pt_chunk_stream_new(&job, &b->walk)) != PATIENT_OK)
        return err;
    b->wc.s = &b->in[0];
    return PATIENT_OK;
}

patient_err
pt_bodyck_new(int mode, const patient_change *const *ch, size_t n, pt_bodyck **out)
{
    pt_bodyck *b;
    patient_err err = PATIENT_OK;
    size_t k;

    *out = NULL;
    if (n > PATIENT_MAX_HOPS || (mode == PT_BODY_HASH) != (n == 0) || mode == PT_BODY_KEEP ||
        (n > 0 && ch[n - 1]->out.size > SIZE_MAX))
        return PATIENT_ERR_ARG;
    if ((b = calloc(1, sizeof *b)) == NULL)
        return PATIENT_ERR_NOMEM;
    b->mode = mode;
    b->n = n;
    b->static_bad = -1;
    memcpy(b->ch, ch, n * sizeof *ch);
    if (mode == PT_BODY_HASH) {
        if (SHA256_Init(&b->sha) != 1) {
            free(b);
            return PATIENT_ERR_CRYPTO;
        }
        b->sha_on = 1;
        *out = b;
        return PATIENT_OK;
    }
    b->len = (size_t)ch[n - 1]->out.size;
    /* Address space only (PROT_NONE, never touched): the pieces point into
     * it so that undoing keeps its one representation of bytes; reading
     * there would fault, so every read goes through the block at hand.
     * A guard page on each side: no other buffer (a descriptor's deleted
     * bytes) can end where the body starts or start where it ends, so
     * addresses alone never join the two (the pieces are also marked). */
    if (b->len > 0) {
        long ps = sysconf(_SC_PAGESIZE);
        size_t page = ps > 0 ? (size_t)ps : 4096;
        void *m;
        if (b->len > SIZE_MAX - 2 * page) {
            free(b);
            return PATIENT_ERR_NOMEM;
        }
        m = mmap(NULL, b->len + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
        if (m == MAP_FAILED) {
            free(b);
            return PATIENT_ERR_NOMEM;
        }
        b->map = m;
        b->maplen = b->len + 2 * page;
        b->base = (uint8_t *)m + page;
        if ((err = pt_pieces_add_body(&b->in[n], b->base, b->len)) != PATIENT_OK)
            goto fail;
    }
    for (k = n; k-- > 0;) {
        err = pt_pieces_undo_defer(ch[k], (unsigned)k, &b->in[k + 1], b->base, b->len, &b->d,
                                   &b->in[k]);
        if (err == PATIENT_ERR_HASH) {
            b->static_bad = (long)k;
            break;
        }
        if (err != PATIENT_OK)
            goto fail;
        for (size_t i = 0; i < b->in[k].n && !b->has_holes[k]; i++)
            b->has_holes[k] = b->in[k].v[i].owner >= 0;
    }
    err = PATIENT_OK;
    b->lowest = b->static_bad >= 0 ? (size_t)b->static_bad + 1 : 0;
    if (b->d.n > 1)
        qsort(b->d.v, b->d.n, sizeof *b->d.v, cmp_defer);
    if (mode == PT_BODY_PROVEN) {
        for (k = b->lowest; k < n; k++) {
            lcst *l = &b->lc[k];
            l->lc = (pt_linecol){{&b->in[k], 0, 0}, 0, 1, 1};
            if (ch[k]->nedits && (l->at = calloc(ch[k]->nedits, sizeof *l->at)) == NULL) {
                err = PATIENT_ERR_NOMEM;
                goto fail;
            }
        }
        if (b->lowest == 0) {
            if (SHA256_Init(&b->sha) != 1) {
                err = PATIENT_ERR_CRYPTO;
                goto fail;
            }
            b->sha_on = 1;
            b->shac.s = &b->in[0];
        }
    } else if (b->lowest == 0 && (err = confined_plan(b)) != PATIENT_OK) {
        goto fail;
    }
    *out = b;
    return PATIENT_OK;
fail:
    pt_bodyck_free(b);
    return err;
}

void
pt_bodyck_free(pt_bodyck *b)
{
    if (b == NULL)
        return;
    for (size_t k = 0; k <= PATIENT_MAX_HOPS; k++)
        pt_pieces_free(&b->in[k]);
    for (size_t k = 0; k < PATIENT_MAX_HOPS; k++)
        free(b->lc[k].at);
    if (b->map)
        munmap(b->map, b->maplen);
    free(b->d.v);
    pt_holes_free(&b->holes);
    free(b->kidx);
    free(b->kval);
    free(b->kept);
    pt_chunk_stream_free(b->walk);
    OPENSSL_cleanse(&b->sha, sizeof b->sha);
    free(b);
}

/* The next run of bytes at c that can be read with the body block
 * blk = body[boff, boff + blen): 1 with *p (NULL: withheld bytes), *n and
 * *hole; 0 when the input is done or waits for later body bytes. */
static int
run_at(const pt_bodyck *b, const pt_pcur *c, const uint8_t *blk, size_t boff, size_t blen,
       const uint8_t **p, size_t *n, int *hole)
{
    const pt_piece *q;

    if (c->s == NULL || c->i >= c->s->n)
        return 0;
    q = &c->s->v[c->i];
    *hole = q->owner >= 0;
    if (in_body(b, q)) {
        /* Inputs read the body in order (undoing keeps the order of kept
         * bytes), and every check reads all it can of each block: a body
         * byte before the block was read already (or, for a hop's lines,
         * is no longer wanted). */
        size_t o = (size_t)(q->p - b->base) + c->at;
        if (o < boff || o >= boff + blen)
            return 0;
        *p = blk + (o - boff);
        *n = q->len - c->at < boff + blen - o ? q->len - c->at : boff + blen - o;
        return 1;
    }
    *p = q->p ? q->p + c->at : NULL;
    *n = q->len - c->at;
    return 1;
}

static void
lc_run(lcst *l, const patient_change *c, const uint8_t *p, size_t n)
{
    for (;;) {
        size_t k = n;
        while (l->next < c->nedits && c->edits[l->next].offset <= l->lc.pos) {
            l->at[l->next][0] = l->lc.line;
            l->at[l->next][1] = l->lc.col;
            l->next++;
        }
        if (n == 0)
            return;
        if (l->next < c->nedits && c->edits[l->next].offset - l->lc.pos < k)
            k = (size_t)(c->edits[l->next].offset - l->lc.pos);
        if (l->lc.pos < PT_TEXT_PROBE && p &&
            memchr(p, 0, k < PT_TEXT_PROBE - l->lc.pos ? k : PT_TEXT_PROBE - l->lc.pos))
            l->nul = 1;
        pt_linecol_run(&l->lc.line, &l->lc.col, p, k);
        l->lc.pos += k;
        if (p)
            p += k;
        n -= k;
    }
}

/* Every check over the body block blk = body[boff, boff + blen). */
static patient_err
step(pt_bodyck *b, const uint8_t *blk, size_t boff, size_t blen)
{
    const uint8_t *p;
    size_t n;
    int hole;
    patient_err err;

    while (b->di < b->d.n && b->d.v[b->di].off < boff + blen) {
        const pt_defer *d = &b->d.v[b->di];
        size_t a = d->off > boff ? d->off : boff;
        size_t e = d->off + d->len < boff + blen ? d->off + d->len : boff + blen;
        if (e > a && memcmp(blk + (a - boff), d->want + (a - d->off), e - a) != 0)
            b->bad[d->hop] = 1;
        if (d->off + d->len > boff + blen)
            break;
        b->di++;
    }
    while (b->sha_on && run_at(b, &b->shac, blk, boff, blen, &p, &n, &hole)) {
        if (p == NULL)
            return PATIENT_ERR_STATE; /* a proven chain has no holes */
        if (SHA256_Update(&b->sha, p, n) != 1)
            return PATIENT_ERR_CRYPTO;
        pt_pcur_step(&b->shac, n);
    }
    for (size_t k = b->lowest; b->mode == PT_BODY_PROVEN && k < b->n; k++)
        /* Past its last edit and the bytes that tell text, a hop's input
         * need not be read further (its cursor stays behind). */
        while ((b->lc[k].next < b->ch[k]->nedits || b->lc[k].lc.pos < PT_TEXT_PROBE) &&
               run_at(b, &b->lc[k].lc.c, blk, boff, blen, &p, &n, &hole)) {
            lc_run(&b->lc[k], b->ch[k], p, n);
            pt_pcur_step(&b->lc[k].lc.c, n);
        }
    while (b->walk && run_at(b, &b->wc, blk, boff, blen, &p, &n, &hole)) {
        if ((err = pt_chunk_stream_update(b->walk, p, hole, n)) != PATIENT_OK)
            return err;
        pt_pcur_step(&b->wc, n);
    }
    return PATIENT_OK;
}

patient_err
pt_bodyck_feed(pt_bodyck *b, const uint8_t *p, size_t len)
{
    patient_err err;

    if (b->ended || (len > 0 && p == NULL))
        return PATIENT_ERR_ARG;
    if (b->mode == PT_BODY_HASH) {
        b->got += len;
        return SHA256_Update(&b->sha, p, len) == 1 ? PATIENT_OK : PATIENT_ERR_CRYPTO;
    }
    while (len) {
        size_t k = len < STEP ? len : STEP;
        /* Bytes past the expected length are only counted: the length
         * alone then decides (pt_bodyck_end). */
        if (b->got < b->len) {
            size_t use = b->len - b->got < k ? (size_t)(b->len - b->got) : k;
            if ((err = step(b, p, (size_t)b->got, use)) != PATIENT_OK)
                return err;
        }
        b->got += k;
        p += k;
        len -= k;
    }
    return PATIENT_OK;
}

patient_err
pt_bodyck_end(pt_bodyck *b)
{
    patient_err err;

    if (b->ended)
        return PATIENT_ERR_ARG;
    b->ended = 1;
    if (b->mode == PT_BODY_HASH)
        return SHA256_Final(b->digest, &b->sha) == 1 ? PATIENT_OK : PATIENT_ERR_CRYPTO;
    if (b->got != b->len)
        return PATIENT_OK; /* the last hop's output size decides */
    /* What follows the last body byte: disclosed bytes at the end. */
    if ((err = step(b, NULL, b->len, 0)) != PATIENT_OK)
        return err;
    if (b->sha_on && SHA256_Final(b->digest, &b->sha) != 1)
        return PATIENT_ERR_CRYPTO;
    for (size_t k = b->lowest; b->mode == PT_BODY_PROVEN && k < b->n; k++) {
        lcst *l = &b->lc[k];
        for (; l->next < b->ch[k]->nedits; l->next++) {
            l->at[l->next][0] = l->lc.line; /* past the end: placed at the end */
            l->at[l->next][1] = l->lc.col;
        }
    }
    if (b->walk && (err = pt_chunk_stream_final(b->walk, b->root)) != PATIENT_OK)
        return err == PATIENT_ERR_ARG ? PATIENT_ERR_STATE : err;
    return PATIENT_OK;
}

int
pt_bodyck_mode(const pt_bodyck *b)
{
    return b->mode;
}

size_t
pt_bodyck_hops(const pt_bodyck *b)
{
    return b->n;
}

const patient_change *
pt_bodyck_hop(const pt_bodyck *b, size_t k)
{
    return k < b->n ? b->ch[k] : NULL;
}

uint64_t
pt_bodyck_received(const pt_bodyck *b)
{
    return b->got;
}

long
pt_bodyck_bad_hop(const pt_bodyck *b)
{
    long bad = b->static_bad;

    if (b->mode == PT_BODY_HASH)
        return -1;
    if (b->got != b->len)
        return (long)b->n - 1;
    for (size_t k = b->lowest; k < b->n; k++)
        if (b->bad[k] && (long)k > bad)
            bad = (long)k;
    return bad;
}

const pt_pieces *
pt_bodyck_input(const pt_bodyck *b, size_t k)
{
    return &b->in[k];
}

int
pt_bodyck_has_holes(const pt_bodyck *b, size_t k)
{
    return b->has_holes[k];
}

int
pt_bodyck_text(const pt_bodyck *b, size_t k)
{
    return !b->lc[k].nul;
}

void
pt_bodyck_position(const pt_bodyck *b, size_t k, size_t j, long long *line, long long *column)
{
    *line = b->lc[k].at[j][0];
    *column = b->lc[k].at[j][1];
}

const uint8_t *
pt_bodyck_digest(const pt_bodyck *b)
{
    return b->digest;
}

const pt_holes *
pt_bodyck_holes(const pt_bodyck *b)
{
    return &b->holes;
}

int
pt_bodyck_known(const pt_bodyck *b, const uint64_t **idx, size_t *n,
                const uint8_t (**kept)[PATIENT_SHA256_BYTES])
{
    *idx = b->kidx;
    *n = b->nk;
    *kept = (const uint8_t (*)[PATIENT_SHA256_BYTES])b->kept;
    return b->known;
}

const uint8_t *
pt_bodyck_root(const pt_bodyck *b)
{
    return b->root;
}

int
pt_bodyck_unclaimed(const pt_bodyck *b)
{
    return b->unclaimed;
}
