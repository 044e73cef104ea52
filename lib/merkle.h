/* RFC 9162 §2.1 Merkle trees over SHA-256, used by the audit log.
 * Internal to libpatient (not installed).
 *
 *   leaf hash  = SHA-256(0x00 || leaf bytes)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256("")
 *
 * The frontier (a "compact range" from index 0) holds the roots of the
 * perfect subtrees that make up a tree of `size` leaves, largest first: one
 * per set bit of size, so O(log n) memory for any log. */
#ifndef PATIENT_MERKLE_H
#define PATIENT_MERKLE_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>
#include <patient/hash.h>

#define PT_MERKLE_MAX_DEPTH 64

typedef struct pt_merkle_frontier {
    uint64_t size;
    uint8_t node[PT_MERKLE_MAX_DEPTH][PATIENT_SHA256_BYTES];
} pt_merkle_frontier;

/* SHA-256(0x00 || data). scratch is unused (kept for callers that pass a
 * buffer): the prefix is hashed first, the data is never copied. */
patient_err pt_merkle_leaf(const void *data, size_t len, uint8_t *scratch,
                           uint8_t out[PATIENT_SHA256_BYTES]);
/* SHA-256(0x01 || l || r). */
patient_err pt_merkle_node(const uint8_t l[PATIENT_SHA256_BYTES],
                           const uint8_t r[PATIENT_SHA256_BYTES],
                           uint8_t out[PATIENT_SHA256_BYTES]);

void pt_merkle_frontier_init(pt_merkle_frontier *f);
/* Append one leaf hash: amortised one node hash. */
patient_err pt_merkle_frontier_add(pt_merkle_frontier *f, const uint8_t leaf[PATIENT_SHA256_BYTES]);
/* The same, also giving the root of every perfect subtree of 256^(k+1)
 * leaves the new leaf completes (the tile of 256 such hashes one level
 * down that it fills, in C2SP tlog-tiles) in tiles[k], for k < *n; at most
 * max of them (*n is 0 when it completes none). */
patient_err pt_merkle_frontier_add_tiles(pt_merkle_frontier *f,
                                         const uint8_t leaf[PATIENT_SHA256_BYTES],
                                         uint8_t (*tiles)[PATIENT_SHA256_BYTES], unsigned max,
                                         unsigned *n);
/* pt_merkle_frontier_add_tiles for 2^height leaves at once (height <= 63,
 * f->size a multiple of 2^height) given only their MTH, root: the same
 * frontier and tile roots as adding them one by one, without the node
 * hashes below root. PATIENT_ERR_ARG when f->size is not a multiple. */
patient_err pt_merkle_frontier_add_sub(pt_merkle_frontier *f, const uint8_t root[PATIENT_SHA256_BYTES],
                                       unsigned height, uint8_t (*tiles)[PATIENT_SHA256_BYTES],
                                       unsigned max, unsigned *n);
/* MTH of the size leaves added so far. */
patient_err pt_merkle_frontier_root(const pt_merkle_frontier *f,
                                    uint8_t out[PATIENT_SHA256_BYTES]);

/* Reference MTH over an array of n leaf hashes (recursive, RFC 9162 §2.1.1). */
patient_err pt_merkle_root(const uint8_t (*leaves)[PATIENT_SHA256_BYTES], uint64_t n,
                           uint8_t out[PATIENT_SHA256_BYTES]);

/* pt_merkle_root, the same bytes, for a power of two of 32 to 256 leaves
 * on CPUs with AVX-512: each level of 16 or more nodes 16 at a time
 * (pt_sha256_node16), the top 15 nodes as pt_merkle_root does. Any other
 * n, or another CPU: pt_merkle_root. */
patient_err pt_merkle_root_wide(const uint8_t (*leaves)[PATIENT_SHA256_BYTES], uint64_t n,
                                uint8_t out[PATIENT_SHA256_BYTES]);

/* The audit path of leaf m in a tree of n leaves is the list of MTHs of the
 * leaf ranges [lo[i], hi[i]), deepest first (RFC 9162 §2.1.3.1). *count gets
 * the path length (<= 64). PATIENT_ERR_ARG unless m < n. */
patient_err pt_merkle_path_ranges(uint64_t m, uint64_t n, uint64_t lo[PT_MERKLE_MAX_DEPTH],
                                  uint64_t hi[PT_MERKLE_MAX_DEPTH], size_t *count);
/* Audit path from an array of leaf hashes (tests, small trees). */
patient_err pt_merkle_path(const uint8_t (*leaves)[PATIENT_SHA256_BYTES], uint64_t n, uint64_t m,
                           uint8_t path[PT_MERKLE_MAX_DEPTH][PATIENT_SHA256_BYTES],
                           size_t *count);
/* RFC 9162 §2.1.3.2: PATIENT_OK when path proves leaf at index m in the
 * tree of size n with this root; PATIENT_ERR_HASH otherwise (also for a
 * path of the wrong length or m >= n). */
patient_err pt_merkle_path_verify(uint64_t m, uint64_t n, const uint8_t leaf[PATIENT_SHA256_BYTES],
                                  const uint8_t (*path)[PATIENT_SHA256_BYTES], size_t count,
                                  const uint8_t root[PATIENT_SHA256_BYTES]);

/* RFC 9162 §2.1.4.1: the consistency proof between tree sizes m and n
 * (0 < m < n) is the list of MTHs of the leaf ranges [lo[i], hi[i]),
 * deepest first; the ranges are disjoint. m == n or m == 0: an empty
 * proof. *count <= 64. PATIENT_ERR_ARG when m > n. */
patient_err pt_merkle_consistency_ranges(uint64_t m, uint64_t n, uint64_t lo[PT_MERKLE_MAX_DEPTH],
                                         uint64_t hi[PT_MERKLE_MAX_DEPTH], size_t *count);
/* Consistency proof from an array of leaf hashes (tests, small trees). */
patient_err pt_merkle_consistency(const uint8_t (*leaves)[PATIENT_SHA256_BYTES], uint64_t n,
                                  uint64_t m,
                                  uint8_t proof[PT_MERKLE_MAX_DEPTH][PATIENT_SHA256_BYTES],
                                  size_t *count);
/* RFC 9162 §2.1.4.2: PATIENT_OK when proof shows that the tree of size m
 * with root1 is a prefix of the tree of size n with root2; PATIENT_ERR_HASH
 * otherwise (also for m > n, a proof of the wrong length, or m == n with
 * different roots). m == 0 is consistent with anything (empty proof). */
patient_err pt_merkle_consistency_verify(uint64_t m, uint64_t n,
                                         const uint8_t root1[PATIENT_SHA256_BYTES],
                                         const uint8_t root2[PATIENT_SHA256_BYTES],
                                         const uint8_t (*proof)[PATIENT_SHA256_BYTES],
                                         size_t count);
/* MTH of the leaf range [lo, hi) of any tree, from the hashes of the
 * aligned perfect subtrees it is made of: get(level, index, ctx) must give
 * the hash of the subtree of 2^level leaves starting at index << level.
 * The ranges proofs use (pt_merkle_path_ranges, _consistency_ranges) are
 * always unions of such subtrees. */
typedef patient_err (*pt_merkle_node_fn)(unsigned level, uint64_t index, void *ctx,
                                         uint8_t out[PATIENT_SHA256_BYTES]);
patient_err pt_merkle_range_hash(uint64_t lo, uint64_t hi, pt_merkle_node_fn get, void *ctx,
                                 uint8_t out[PATIENT_SHA256_BYTES]);

#endif
