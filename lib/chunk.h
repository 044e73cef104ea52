/* Chunk roots: how an origin commits to every 4 KiB of a resource, and how
 * a hop that withholds deleted bytes stays confined to the chunks it
 * touched. Internal to libpatient (not installed). Specified in
 * docs/format/manifest.md ("Chunk roots") and docs/format/change.md
 * ("chunks").
 *
 * Leaves are SHA-256 chaining values, not hashes of each chunk on its own:
 * leaf j (all but the last) is the SHA-256 state after the first (j+1)*C
 * bytes, the last leaf is the resource's ordinary SHA-256 digest. So the
 * chunk tree costs the publisher one SHA-256 pass plus one 33-byte and one
 * 65-byte hash per chunk (about 5% at 4 KiB), instead of a second pass.
 * The root is the RFC 9162 Merkle tree hash over the 32-byte leaves.
 *
 * Why a chaining value pins a chunk: with the state s_j before chunk j
 * known, another chunk giving the same s_{j+1} is a SHA-256 collision
 * (both messages share the prefix that led to s_j, and any common suffix
 * keeps them colliding). docs/SECURITY.md has the argument. */
#ifndef PATIENT_CHUNK_H
#define PATIENT_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <patient/change.h>
#include <patient/error.h>
#include <patient/hash.h>
#include "merkle.h"
#include "change_int.h"
#include "pieces.h"

/* Chunk size, bytes. A multiple of the SHA-256 block (64) so that chunk
 * boundaries are block boundaries. Chosen by measurement
 * (docs/BENCHMARKS.md, "Chunk size"). */
#define PT_CHUNK_SIZE PATIENT_CHUNK_BYTES

/* Number of chunks (leaves) of a resource of len bytes: at least 1. */
uint64_t pt_chunk_count(uint64_t len);

/* Streaming: feed the resource's bytes in any pieces, get its SHA-256 and
 * its chunk root in the same pass. Not thread-safe per object. */
typedef struct pt_chunker pt_chunker;
patient_err pt_chunker_new(pt_chunker **c);
patient_err pt_chunker_update(pt_chunker *c, const void *data, size_t len);
/* Finish: digest (may be NULL) and root. Frees c (also on error). */
patient_err pt_chunker_final(pt_chunker *c, uint8_t digest[PATIENT_SHA256_BYTES],
                             uint8_t root[PATIENT_SHA256_BYTES]);
void pt_chunker_free(pt_chunker *c);

/* SHA-256, chunk root and size of the regular file at path in one read
 * pass (refuses symlinks: PATIENT_ERR_UNSAFE_PATH, as patient_sha256_file).
 * Thread-safe. */
patient_err pt_chunk_file(const char *path, uint8_t digest[PATIENT_SHA256_BYTES],
                          uint8_t root[PATIENT_SHA256_BYTES], uint64_t *size);

/* Root (and digest) of a whole buffer. */
patient_err pt_chunk_root(const void *data, size_t len, uint8_t digest[PATIENT_SHA256_BYTES],
                          uint8_t root[PATIENT_SHA256_BYTES]);

/* ---- the chunk walk ---------------------------------------------------
 * One engine for every reader of chunk leaves (the verifier, streaming or
 * not; a hop issuing its leaves; the tests and fuzzers): the leaves of a
 * resource's chunks, computed from its bytes except where they are given,
 * the root over them, and the "kept" hash of chunks asked about.
 * What a walk is given and what it gives back; the arrays are borrowed
 * and must outlive the walk: */
typedef struct pt_chunk_job {
    uint64_t len; /* the resource's length */
    /* Chunks (sorted, distinct indices) whose leaves are known_val[i]:
     * their bytes are not part of the chain, so they may be unknown. */
    const uint64_t *known;
    const uint8_t (*known_val)[PATIENT_SHA256_BYTES];
    size_t nknown;
    /* Chunks asked about (sorted, distinct): leaf[i] (leaf may be NULL)
     * gets want[i]'s leaf, kept[i] (kept may be NULL) the SHA-256 of its
     * bytes outside holes (pt_chunk_kept). */
    const uint64_t *want;
    uint8_t (*leaf)[PATIENT_SHA256_BYTES];
    uint8_t (*kept)[PATIENT_SHA256_BYTES];
    size_t nwant;
    /* 1: the root (every byte is read); 0: none, and the walk ends after
     * the last chunk asked about (later bytes are not looked at). With
     * neither a root nor leaves, only the kept hashes are computed: the
     * chain is not hashed at all. */
    int root;
} pt_chunk_job;

/* The walk as bytes arrive, in any pieces, in order. Indices
 * >= pt_chunk_count(len): PATIENT_ERR_ARG. update: n bytes at p (NULL:
 * zeros), hole: they are withheld bytes (part of the chain, as their
 * bytes or zeros: a chunk with such bytes takes its leaf from a hop's
 * "chunks", so they never count; not kept). final: the root (NULL
 * without job->root), once all len bytes came (else PATIENT_ERR_ARG;
 * without a root, those up to the end of the last chunk asked about).
 * More than len bytes with a root: PATIENT_ERR_ARG. */
typedef struct pt_chunk_stream pt_chunk_stream;
patient_err pt_chunk_stream_new(const pt_chunk_job *job, pt_chunk_stream **out);
patient_err pt_chunk_stream_update(pt_chunk_stream *w, const uint8_t *p, int hole, size_t n);
patient_err pt_chunk_stream_final(pt_chunk_stream *w, uint8_t root[PATIENT_SHA256_BYTES]);
void pt_chunk_stream_free(pt_chunk_stream *w);

/* The walk over bytes in pieces (pieces.h; data->len must be job->len,
 * else PATIENT_ERR_ARG), fed to it in one block: a piece with an owner is
 * a hole. root: as pt_chunk_stream_final. Bytes in one buffer are one
 * piece (pt_pieces_one). */
patient_err pt_chunk_walk_pieces(const pt_pieces *data, const pt_chunk_job *job,
                                 uint8_t root[PATIENT_SHA256_BYTES]);

/* ---- bytes with holes ---------------------------------------------------
 * A hole is a run of bytes whose value is not known (a hop withheld them).
 * Its owner is the 0-based index of the hop that withheld them. */
typedef struct pt_hole {
    size_t off, len;
    unsigned owner;
} pt_hole;

typedef struct pt_holes {
    pt_hole *h; /* sorted by off, disjoint, len > 0 */
    size_t n, cap;
} pt_holes;

void pt_holes_free(pt_holes *h);
/* Append the hole [off, off+len) owned by owner (after every hole already
 * there; merged with the last one when adjacent and of the same owner). */
patient_err pt_holes_add(pt_holes *h, size_t off, size_t len, unsigned owner);

/* Rebuild a hop's input from its output when bytes may be missing: out
 * (out_len == c->out.size) has the holes oh (in output coordinates);
 * every disclosed deletion is put back, every withheld one becomes a hole
 * owned by `owner`, holes in kept bytes move with them, holes in inserted
 * bytes vanish with those bytes. With check_insert, inserted bytes outside
 * holes must be where the edits say (PATIENT_ERR_HASH). The
 * input goes to dst->p (reserved as needed; must not overlap out),
 * c->in.size bytes, holes zero-filled; ih gets the input's holes (caller
 * frees with pt_holes_free). */
patient_err pt_undo_holes(const patient_change *c, unsigned owner, const uint8_t *out,
                          size_t out_len, const pt_holes *oh, int check_insert, pt_bigbuf *dst,
                          pt_holes *ih);

/* SHA-256 of the bytes of chunk j of data (len bytes) outside the holes
 * h: a hop's "kept" hash of a touched chunk. */
patient_err pt_chunk_kept(const uint8_t *data, size_t len, uint64_t j, const pt_holes *h,
                          uint8_t out[PATIENT_SHA256_BYTES]);

/* The holes of bytes in pieces: every piece with an owner, at its offset. */
patient_err pt_pieces_holes(const pt_pieces *s, pt_holes *h);

/* Map byte ranges of a hop's input (sorted, disjoint; only off/len used)
 * to its output: kept bytes move, deleted bytes drop out. Adjacent output
 * ranges are merged. */
patient_err pt_map_forward(const patient_change *c, const pt_holes *in, pt_holes *out);

/* The chunk indices a list of holes touches, per owner: for owner o,
 * *idx gets the sorted distinct chunks any hole of o touches. *idx
 * malloc'd (NULL when none), caller frees. */
patient_err pt_holes_chunks(const pt_holes *h, unsigned owner, uint64_t **idx, size_t *n);

/* Every chunk any hole of h touches, sorted, with its leaf taken from the
 * "chunks" of the hop owning a hole there (hops[owner]). A touched chunk
 * that hop did not supply: PATIENT_ERR_NOT_FOUND. *idx, *val malloc'd
 * (NULL when none), caller frees. */
patient_err pt_chunk_known(const pt_holes *h, const patient_change *const *hops, size_t nhops,
                           uint64_t **idx, uint8_t (**val)[PATIENT_SHA256_BYTES], size_t *n);

/* Issuing: the leaves a new hop must sign. in/in_len: the hop's input;
 * prev/nprev: the parsed descriptors that arrived (their withheld bytes
 * are holes of the origin, filled by their own "chunks"); del: the new
 * hop's withheld deletions (offset/delete_len in its input, sorted).
 * idx, val and kept: the touched origin chunks, their leaves and kept
 * hashes (pt_chunk_kept over the origin as this hop sees it: every
 * withheld byte so far, its own included, left out); malloc'd, NULL and 0
 * when none, caller frees. PATIENT_ERR_NOT_FOUND when an earlier
 * hop's holes are not all covered by its chunks, or the arriving chain does
 * not undo to sizes that add up: no leaves can be computed. */
patient_err pt_chunk_leaves_for_hop(const uint8_t *in, size_t in_len,
                                    const patient_change *const *prev, size_t nprev,
                                    const patient_edit *del, size_t ndel, uint64_t **idx,
                                    uint8_t (**val)[PATIENT_SHA256_BYTES],
                                    uint8_t (**kept)[PATIENT_SHA256_BYTES], size_t *n);

#endif
