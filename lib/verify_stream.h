/* The verifier's checks of the body, as it arrives: what the core
 * (verify.c) needs of the body bytes, computed block by block so that a
 * body need not be kept (docs/SECURITY.md, "Verifying while the body
 * streams"). Internal to libpatient.
 *
 * Everything that decides how the body is read is known before its first
 * byte: the descriptors (in the response headers) and what the origin
 * signed (the manifest, fetched before the page). From them each hop's
 * input is laid out as pieces (pieces.h) of an address range standing for
 * the body, which is reserved but never mapped: undoing the hops needs
 * the body's length (the last hop's signed output size), not its bytes.
 * Then each block of the body is read, in order, by:
 *   - the comparisons of inserted bytes that lie in the body (every other
 *     inserted byte was compared when the hops were undone);
 *   - one SHA-256 pass over the rebuilt origin bytes (proven), or the
 *     chunk walk over them with the kept hashes of the touched chunks
 *     (confined), or over the body itself (no hop);
 *   - the line and column of every edit, in each hop's input.
 * The blocks' bytes are borrowed only during pt_bodyck_feed. The outcome
 * is read by the core after pt_bodyck_end, in the order it reports. Fed
 * the whole body at once, this is also the verifier's path for a body in
 * memory: one implementation, whatever the pieces. */
#ifndef PATIENT_VERIFY_STREAM_H
#define PATIENT_VERIFY_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <patient/change.h>
#include <patient/hash.h>
#include "chunk.h"
#include "pieces.h"

/* How the body is read (pt_body_mode). */
enum {
    PT_BODY_KEEP = 0, /* the core needs the body's bytes themselves */
    PT_BODY_HASH,     /* no hop: the body's SHA-256 and length */
    PT_BODY_PROVEN,   /* every deletion disclosed: the origin bytes rebuilt and hashed */
    PT_BODY_CONFINED  /* a hop withheld bytes: the chunk walk */
};

/* 1 when some hop withheld deleted bytes. */
int pt_chain_withholds(patient_change *const *ch, size_t n);

/* The one rule for which of these a verification takes, from what is
 * known before the body: n parsed descriptors (chain_ok: they parse and
 * link up) of which some withhold deleted bytes (withholds,
 * pt_chain_withholds), whether the manifest lists the path (have_ref) with
 * a chunk root (ref_root, only with have_ref), and whether a Patient-Origin
 * commits a chunk root (origin_root). */
int pt_body_mode(size_t n, int chain_ok, int withholds, int have_ref, int ref_root,
                 int origin_root);

typedef struct pt_bodyck pt_bodyck;

/* A check of a body for mode (not PT_BODY_KEEP) over the chain ch[0..n)
 * (borrowed: it must outlive the check). Errors: NOMEM. */
patient_err pt_bodyck_new(int mode, const patient_change *const *ch, size_t n, pt_bodyck **out);
/* The next len bytes of the body. */
patient_err pt_bodyck_feed(pt_bodyck *b, const uint8_t *p, size_t len);
/* The body is complete. */
patient_err pt_bodyck_end(pt_bodyck *b);
void pt_bodyck_free(pt_bodyck *b);

/* ---- the outcome, after pt_bodyck_end ---- */
int pt_bodyck_mode(const pt_bodyck *b);
size_t pt_bodyck_hops(const pt_bodyck *b);
const patient_change *pt_bodyck_hop(const pt_bodyck *b, size_t k);
/* Bytes received. */
uint64_t pt_bodyck_received(const pt_bodyck *b);
/* The highest hop whose output is not what the hops after it give (its
 * size, or inserted bytes), as undoing hops last first meets it: -1 when
 * every hop undoes. */
long pt_bodyck_bad_hop(const pt_bodyck *b);
/* Hop k's input rebuilt (for k above the bad hop): its pieces, whether
 * it has holes, whether it looks like text (pt_pieces_looks_text), and
 * the line and column of its edit j there. */
const pt_pieces *pt_bodyck_input(const pt_bodyck *b, size_t k);
int pt_bodyck_has_holes(const pt_bodyck *b, size_t k);
int pt_bodyck_text(const pt_bodyck *b, size_t k);
void pt_bodyck_position(const pt_bodyck *b, size_t k, size_t j, long long *line,
                        long long *column);
/* PT_BODY_HASH: the body's SHA-256; PT_BODY_PROVEN: the rebuilt origin
 * bytes'. */
const uint8_t *pt_bodyck_digest(const pt_bodyck *b);
/* PT_BODY_CONFINED, every hop undone: the origin's holes, the touched
 * chunks with their leaves (known: 0 when some touched chunk has no
 * leaf from its hop, pt_chunk_known's NOT_FOUND), the chunk root the walk
 * gives and each touched chunk's kept hash. */
const pt_holes *pt_bodyck_holes(const pt_bodyck *b);
int pt_bodyck_known(const pt_bodyck *b, const uint64_t **idx, size_t *n,
                    const uint8_t (**kept)[PATIENT_SHA256_BYTES]);
const uint8_t *pt_bodyck_root(const pt_bodyck *b);
/* PT_BODY_CONFINED: 1 when a hop withheld bytes of origin chunks and
 * signed no chunks at all: the core then judges the chain attested, which
 * needs the body itself (a streaming caller keeps it instead). */
int pt_bodyck_unclaimed(const pt_bodyck *b);

#endif
