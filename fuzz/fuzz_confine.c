/* libFuzzer harness: the "chunks" member and the confinement check.
 * Input starting with '{' is a descriptor payload (signed with the test key
 * so the fuzzer mutates the JSON, "chunks" and edits included); anything
 * else a header value. A descriptor that parses, for an input of the fixed
 * origin's size, is applied to that origin, then undone with holes where
 * it withheld bytes. Invariants (abort on violation):
 *   - the undo succeeds and gives back every origin byte outside the holes,
 *     and the holes are exactly the withheld deletions;
 *   - the chunks those holes touch, with the true leaves, give the origin's
 *     root; with the descriptor's own leaves the root matches only if every
 *     touched leaf is the true one (anything else would be a collision);
 *   - the kept hash of a touched chunk is the SHA-256 of its bytes outside
 *     the holes;
 *   - unchecked ranges mapped forward stay inside the output.
 * Seeds: fuzz/corpus/confine/ (hops over the same origin). */
#include "config.h"

#include <patient/change.h>
#include <patient/hash.h>
#include <patient/jws.h>

#include "chunk.h"
#include "common.h"

#define OLEN 9000 /* three chunks, the last one short */

static const uint8_t *
origin(void)
{
    static uint8_t o[OLEN];
    static int done;
    if (!done) {
        for (size_t i = 0; i < OLEN; i++)
            o[i] = (uint8_t)("abcdefghij<>/ \n"[i % 15] ^ (i / 1000));
        done = 1;
    }
    return o;
}

/* The library's chunk walk over OLEN bytes at d, in one piece. */
static patient_err
walk(const uint8_t *d, const pt_chunk_job *job, uint8_t root[32])
{
    pt_piece p;
    pt_pieces s = pt_pieces_one(&p, d, OLEN);
    return pt_chunk_walk_pieces(&s, job, root);
}

static void
one(const char *v, size_t len)
{
    patient_change *c = NULL;
    const patient_change *cs[1];
    uint8_t *out = NULL, *in, root[32], want[32], got[32], kh[32];
    pt_bigbuf ib = {0};
    uint8_t (*truth)[32] = NULL, (*kval)[32] = NULL;
    uint64_t *tidx = NULL, *kidx = NULL;
    size_t out_len = 0, nt = 0, nk = 0, w = 0;
    int same = 1;
    pt_holes none = {0}, holes = {0}, fwd = {0};
    patient_err err;

    if (patient_change_parse(v, len, &c) != PATIENT_OK)
        return;
    if (c->in.size != OLEN)
        goto out;
    if (patient_edits_apply(origin(), OLEN, c->edits, c->nedits, &out, &out_len) != PATIENT_OK)
        abort(); /* parse checked the edits against in.size */
    if (pt_undo_holes(c, 0, out, out_len, &none, 1, &ib, &holes) != PATIENT_OK)
        abort();
    in = ib.p;
    for (size_t i = 0, h = 0; i < c->nedits; i++) {
        const patient_edit *e = &c->edits[i];
        if (!e->delete_len || e->deleted)
            continue;
        /* Adjacent withheld deletions merge into one hole. */
        if (h >= holes.n || holes.h[h].off > e->offset ||
            holes.h[h].off + holes.h[h].len < e->offset + e->delete_len)
            abort();
        if (holes.h[h].off + holes.h[h].len == e->offset + e->delete_len)
            h++;
    }
    /* Outside holes: the origin's bytes, except where a disclosed deletion
     * put back its own bytes (which need not be the origin's: the descriptor
     * is the fuzzer's). */
    for (size_t i = 0, h = 0, d = 0; i < OLEN; i++) {
        const uint8_t *want_b = origin() + i;
        while (h < holes.n && holes.h[h].off + holes.h[h].len <= i)
            h++;
        while (d < c->nedits && c->edits[d].offset + c->edits[d].delete_len <= i)
            d++;
        if (d < c->nedits && c->edits[d].deleted && c->edits[d].offset <= i)
            want_b = c->edits[d].deleted + (i - c->edits[d].offset);
        if ((h >= holes.n || i < holes.h[h].off) && in[i] != *want_b)
            abort();
    }
    /* The root and kept invariants hold when the rebuilt bytes are the
     * origin's outside holes. */
    for (size_t i = 0, h = 0; i < OLEN; i++) {
        while (h < holes.n && holes.h[h].off + holes.h[h].len <= i)
            h++;
        if ((h >= holes.n || i < holes.h[h].off) && in[i] != origin()[i])
            same = 0;
    }
    if (pt_map_forward(c, &holes, &fwd) != PATIENT_OK)
        abort();
    for (size_t i = 0; i < fwd.n; i++)
        if (fwd.h[i].off + fwd.h[i].len > out_len)
            abort();
    if (!same)
        goto out;
    (void)pt_chunk_root(origin(), OLEN, NULL, root);
    if (pt_holes_chunks(&holes, 0, &tidx, &nt) != PATIENT_OK)
        abort();
    if (nt) {
        truth = malloc(nt * sizeof *truth);
        if (truth == NULL ||
            walk(origin(), &(pt_chunk_job){.len = OLEN, .want = tidx, .leaf = truth, .nwant = nt},
                 NULL) != PATIENT_OK)
            abort();
        if (walk(in, &(pt_chunk_job){.len = OLEN, .known = tidx,
                                     .known_val = (const uint8_t (*)[32])truth, .nknown = nt,
                                     .root = 1},
                 want) != PATIENT_OK ||
            memcmp(want, root, 32) != 0)
            abort();
    }
    cs[0] = c;
    err = pt_chunk_known(&holes, cs, 1, &kidx, &kval, &nk);
    if (err == PATIENT_OK) {
        if (nk != nt)
            abort();
        if (walk(in, &(pt_chunk_job){.len = OLEN, .known = kidx,
                                     .known_val = (const uint8_t (*)[32])kval, .nknown = nk,
                                     .root = 1},
                 got) != PATIENT_OK)
            abort();
        if (memcmp(got, root, 32) == 0)
            for (w = 0; w < nk; w++)
                if (memcmp(kval[w], truth[w], 32) != 0)
                    abort();
        /* The kept hash over the rebuilt bytes equals the one over the
         * origin itself: holes are skipped, everything else is the same;
         * and both are the SHA-256 of the chunk's bytes outside holes, cut
         * out here byte by byte rather than by the chunk walk. */
        for (w = 0; w < nk; w++) {
            uint8_t ko[32], ref[32], cut[PT_CHUNK_SIZE];
            size_t a = (size_t)kidx[w] * PT_CHUNK_SIZE, b = a + PT_CHUNK_SIZE, m = 0, h = 0;
            if (pt_chunk_kept(in, OLEN, kidx[w], &holes, kh) != PATIENT_OK ||
                pt_chunk_kept(origin(), OLEN, kidx[w], &holes, ko) != PATIENT_OK ||
                memcmp(kh, ko, 32) != 0)
                abort();
            for (size_t i = a; i < b && i < OLEN; i++) {
                while (h < holes.n && holes.h[h].off + holes.h[h].len <= i)
                    h++;
                if (h >= holes.n || i < holes.h[h].off)
                    cut[m++] = origin()[i];
            }
            if (patient_sha256(cut, m, ref) != PATIENT_OK || memcmp(kh, ref, 32) != 0)
                abort();
        }
    } else if (err != PATIENT_ERR_NOT_FOUND) {
        abort();
    }
out:
    pt_holes_free(&holes);
    pt_holes_free(&fwd);
    free(out);
    pt_bigbuf_free(&ib);
    free(truth);
    free(tidx);
    free(kidx);
    free(kval);
    patient_change_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *jws = NULL;

    if (size > 0 && data[0] == '{') {
        if (patient_jws_sign(fz_seckey(), PATIENT_CHANGE_TYP, data, size, &jws) == PATIENT_OK)
            one(jws, strlen(jws));
        free(jws);
        return 0;
    }
    one((const char *)data, size);
    return 0;
}
