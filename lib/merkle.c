/* RFC 9162 Merkle tree hashes, frontier and inclusion proofs. */
#include "config.h"

/* SHA256_Init/Update/Final: "deprecated" in OpenSSL 3, not removed, and
 * without EVP's per-call fetch and allocation (see lib/hash.c). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "merkle.h"
#include "sha256_pair.h"

patient_err
pt_merkle_leaf(const void *data, size_t len, uint8_t *scratch, uint8_t out[PATIENT_SHA256_BYTES])
{
    static const uint8_t zero = 0x00;
    SHA256_CTX c;

    (void)scratch; /* the prefix is hashed first: no copy of the leaf */
    if (SHA256_Init(&c) != 1 || SHA256_Update(&c, &zero, 1) != 1 ||
        (len && SHA256_Update(&c, data, len) != 1) || SHA256_Final(out, &c) != 1)
        return PATIENT_ERR_CRYPTO;
    return PATIENT_OK;
}

patient_err
pt_merkle_node(const uint8_t l[PATIENT_SHA256_BYTES], const uint8_t r[PATIENT_SHA256_BYTES],
               uint8_t out[PATIENT_SHA256_BYTES])
{
    uint8_t buf[1 + 2 * PATIENT_SHA256_BYTES];

    buf[0] = 0x01;
    memcpy(buf + 1, l, PATIENT_SHA256_BYTES);
    memcpy(buf + 1 + PATIENT_SHA256_BYTES, r, PATIENT_SHA256_BYTES);
    return patient_sha256(buf, sizeof buf, out);
}

void
pt_merkle_frontier_init(pt_merkle_frontier *f)
{
    memset(f, 0, sizeof *f);
}

static unsigned
popcount64(uint64_t x)
{
    return (unsigned)__builtin_popcountll(x);
}

patient_err
pt_merkle_frontier_add(pt_merkle_frontier *f, const uint8_t leaf[PATIENT_SHA256_BYTES])
{
    unsigned n;

    return pt_merkle_frontier_add_tiles(f, leaf, NULL, 0, &n);
}

/* A perfect subtree of 2^height0 leaves with MTH h after the f->size
 * leaves (PATIENT_ERR_ARG unless a multiple of 2^height0). */
static patient_err
frontier_add(pt_merkle_frontier *f, const uint8_t h0[PATIENT_SHA256_BYTES], unsigned height0,
             uint8_t (*tiles)[PATIENT_SHA256_BYTES], unsigned max, unsigned *n)
{
    uint8_t h[PATIENT_SHA256_BYTES];
    unsigned top = popcount64(f->size), height = height0;
    uint64_t s, count;
    patient_err err;

    *n = 0;
    if (height0 > 63 || f->size % ((uint64_t)1 << height0) != 0)
        return PATIENT_ERR_ARG;
    s = f->size >> height0;
    count = (uint64_t)1 << height0;
    if (f->size > UINT64_MAX - count)
        return PATIENT_ERR_LIMIT;
    memcpy(h, h0, sizeof h);
    /* Each trailing 1 bit is a perfect subtree of the same size as the one
     * being carried: merge them, as in binary addition. */
    while (s & 1) {
        if ((err = pt_merkle_node(f->node[top - 1], h, h)) != PATIENT_OK)
            return err;
        top--;
        s >>= 1;
        if (++height % 8 == 0 && height / 8 <= max) {
            memcpy(tiles[height / 8 - 1], h, sizeof h);
            *n = height / 8;
        }
    }
    memcpy(f->node[top], h, sizeof h);
    f->size += count;
    return PATIENT_OK;
}

patient_err
pt_merkle_frontier_add_tiles(pt_merkle_frontier *f, const uint8_t leaf[PATIENT_SHA256_BYTES],
                             uint8_t (*tiles)[PATIENT_SHA256_BYTES], unsigned max, unsigned *n)
{
    return frontier_add(f, leaf, 0, tiles, max, n);
}

patient_err
pt_merkle_frontier_add_sub(pt_merkle_frontier *f, const uint8_t root[PATIENT_SHA256_BYTES],
                           unsigned height, uint8_t (*tiles)[PATIENT_SHA256_BYTES], unsigned max,
                           unsigned *n)
{
    return frontier_add(f, root, height, tiles, max, n);
}

patient_err
pt_merkle_frontier_root(const pt_merkle_frontier *f, uint8_t out[PATIENT_SHA256_BYTES])
{
    unsigned k = popcount64(f->size);
    uint8_t r[PATIENT_SHA256_BYTES];
    patient_err err;

    if (k == 0)
        return patient_sha256("", 0, out);
    memcpy(r, f->node[k - 1], sizeof r);
    /* RFC 9162 splits at the largest power of two below n, so the smaller
     * subtrees nest on the right: fold right to left. */
    while (k-- > 1)
        if ((err = pt_merkle_node(f->node[k - 1], r, r)) != PATIENT_OK)
            return err;
    memcpy(out, r, sizeof r);
    return PATIENT_OK;
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t
split_point(uint64_t n)
{
    uint64_t k = 1;

    while (k < n - k)
        k <<= 1;
    return k;
}

patient_err
pt_merkle_root(const uint8_t (*leaves)[PATIENT_SHA256_BYTES], uint64_t n,
               uint8_t out[PATIENT_SHA256_BYTES])
{
    uint8_t l[PATIENT_SHA256_BYTES], r[PATIENT_SHA256_BYTES];
    uint64_t k;
    patient_err err;

    if (n == 0)
        return patient_sha256("", 0, out);
    if (n == 1) {
        memcpy(out, leaves[0], PATIENT_SHA256_BYTES);
        return PATIENT_OK;
    }
    k = split_point(n);
    if ((err = pt_merkle_root(leaves, k, l)) || (err = pt_merkle_root(leaves + k, n - k, r)))
        return err;
    return pt_merkle_node(l, r, out);
}

patient_err
pt_merkle_root_wide(const uint8_t (*leaves)[PATIENT_SHA256_BYTES], uint64_t n,
                    uint8_t out[PATIENT_SHA256_BYTES])
{
    uint8_t lvl[128][PATIENT_SHA256_BYTES];
    const uint8_t(*in)[PATIENT_SHA256_BYTES] = leaves;
    uint64_t m = n;

    if (n < 32 || n > 256 || (n & (n - 1)) != 0)
        return pt_merkle_root(leaves, n, out);
    /* Level by level while a level has 16 nodes or more; each call reads
     * all of its 32 children before it writes its 16 nodes, so a level
     * may overwrite the one it is made from. */
    for (; m >= 32; m /= 2, in = (const uint8_t(*)[PATIENT_SHA256_BYTES])lvl)
        for (uint64_t i = 0; i < m / 2; i += 16)
            if (pt_sha256_node16(in[2 * i], 16, lvl + i) != 0)
                return pt_merkle_root(leaves, n, out);
    return pt_merkle_root(in, m, out);
}

patient_err
pt_merkle_path_ranges(uint64_t m, uint64_t n, uint64_t lo[PT_MERKLE_MAX_DEPTH],
                      uint64_t hi[PT_MERKLE_MAX_DEPTH], size_t *count)
{
    uint64_t base = 0, k;
    size_t c = 0, i;

    *count = 0;
    if (m >= n)
        return PATIENT_ERR_ARG;
    /* Walk from the root down; the sibling found at each level is appended,
     * so the list comes out root-first and is reversed at the end. */
    while (n > 1) {
        k = split_point(n);
        if (m < k) {
            lo[c] = base + k;
            hi[c] = base + n;
            n = k;
        } else {
            lo[c] = base;
            hi[c] = base + k;
            base += k;
            m -= k;
            n -= k;
        }
        c++;
    }
    for (i = 0; i < c / 2; i++) {
        uint64_t t = lo[i];
        lo[i] = lo[c - 1 - i];
        lo[c - 1 - i] = t;
        t = hi[i];
        hi[i] = hi[c - 1 - i];
        hi[c - 1 - i] = t;
    }
    *count = c;
    return PATIENT_OK;
}

/* The root of each leaf range [lo[i], hi[i]): the hashes an inclusion or a
 * consistency proof is made of, once its ranges are known. */
static patient_err
subtree_roots(const uint8_t (*leaves)[PATIENT_SHA256_BYTES], const uint64_t *lo,
              const uint64_t *hi, size_t count, uint8_t out[][PATIENT_SHA256_BYTES])
{
    patient_err err;

    for (size_t i = 0; i < count; i++)
        if ((err = pt_merkle_root(leaves + lo[i], hi[i] - lo[i], out[i])) != PATIENT_OK)
            return err;
    return PATIENT_OK;
}

patient_err
pt_merkle_path(const uint8_t (*leaves)[PATIENT_SHA256_BYTES], uint64_t n, uint64_t m,
               uint8_t path[PT_MERKLE_MAX_DEPTH][PATIENT_SHA256_BYTES], size_t *count)
{
    uint64_t lo[PT_MERKLE_MAX_DEPTH], hi[PT_MERKLE_MAX_DEPTH];
    patient_err err;

    if ((err = pt_merkle_path_ranges(m, n, lo, hi, count)) != PATIENT_OK)
        return err;
    return subtree_roots(leaves, lo, hi, *count, path);
}

patient_err
pt_merkle_path_verify(uint64_t m, uint64_t n, const uint8_t leaf[PATIENT_SHA256_BYTES],
                      const uint8_t (*path)[PATIENT_SHA256_BYTES], size_t count,
                      const uint8_t root[PATIENT_SHA256_BYTES])
{
    uint64_t fn, sn;
    uint8_t r[PATIENT_SHA256_BYTES];
    size_t i;
    patient_err err;

    if (m >= n)
        return PATIENT_ERR_HASH;
    fn = m;
    sn = n - 1;
    memcpy(r, leaf, sizeof r);
    for (i = 0; i < count; i++) {
        if (sn == 0)
            return PATIENT_ERR_HASH;
        if ((fn & 1) || fn == sn) {
            if ((err = pt_merkle_node(path[i], r, r)) != PATIENT_OK)
                return err;
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            if ((err = pt_merkle_node(r, path[i], r)) != PATIENT_OK)
                return err;
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || sodium_memcmp(r, root, sizeof r) != 0)
        return PATIENT_ERR_HASH;
    return PATIENT_OK;
}

static void
reverse_ranges(uint64_t *lo, uint64_t *hi, size_t c)
{
    size_t i;

    for (i = 0; i < c / 2; i++) {
        uint64_t t = lo[i];
        lo[i] = lo[c - 1 - i];
        lo[c - 1 - i] = t;
        t = hi[i];
        hi[i] = hi[c - 1 - i];
        hi[c - 1 - i] = t;
    }
}

patient_err
pt_merkle_consistency_ranges(uint64_t m, uint64_t n, uint64_t lo[PT_MERKLE_MAX_DEPTH],
                             uint64_t hi[PT_MERKLE_MAX_DEPTH], size_t *count)
{
    uint64_t base = 0, k;
    size_t c = 0;
    int whole = 1; /* SUBPROOF's b: still on the path of the old root itself */

    *count = 0;
    if (m > n)
        return PATIENT_ERR_ARG;
    if (m == 0 || m == n)
        return PATIENT_OK;
    /* SUBPROOF(m, D[n], b) unrolled: each level contributes the sibling it
     * does not descend into; the recursion's own result comes first, so the
     * list is built root-first and reversed. */
    for (;;) {
        if (m == n) {
            if (!whole) {
                lo[c] = base;
                hi[c] = base + n;
                c++;
            }
            break;
        }
        k = split_point(n);
        if (m <= k) {
            lo[c] = base + k;
            hi[c] = base + n;
            n = k;
        } else {
            lo[c] = base;
            hi[c] = base + k;
            base += k;
            m -= k;
            n -= k;
            whole = 0;
        }
        c++;
    }
    reverse_ranges(lo, hi, c);
    *count = c;
    return PATIENT_OK;
}

patient_err
pt_merkle_consistency(const uint8_t (*leaves)[PATIENT_SHA256_BYTES], uint64_t n, uint64_t m,
                      uint8_t proof[PT_MERKLE_MAX_DEPTH][PATIENT_SHA256_BYTES], size_t *count)
{
    uint64_t lo[PT_MERKLE_MAX_DEPTH], hi[PT_MERKLE_MAX_DEPTH];
    patient_err err;

    if ((err = pt_merkle_consistency_ranges(m, n, lo, hi, count)) != PATIENT_OK)
        return err;
    return subtree_roots(leaves, lo, hi, *count, proof);
}

patient_err
pt_merkle_consistency_verify(uint64_t m, uint64_t n, const uint8_t root1[PATIENT_SHA256_BYTES],
                             const uint8_t root2[PATIENT_SHA256_BYTES],
                             const uint8_t (*proof)[PATIENT_SHA256_BYTES], size_t count)
{
    uint8_t fr[PATIENT_SHA256_BYTES], sr[PATIENT_SHA256_BYTES];
    uint64_t fn, sn;
    size_t i = 0;
    patient_err err;

    if (m > n)
        return PATIENT_ERR_HASH;
    if (m == 0)
        return count == 0 ? PATIENT_OK : PATIENT_ERR_HASH;
    if (m == n) {
        if (count != 0 || sodium_memcmp(root1, root2, PATIENT_SHA256_BYTES) != 0)
            return PATIENT_ERR_HASH;
        return PATIENT_OK;
    }
    if (count == 0)
        return PATIENT_ERR_HASH;
    /* A power-of-two old tree is itself a node of the new one: its root is
     * the implicit first element of the proof. */
    if ((m & (m - 1)) == 0) {
        memcpy(fr, root1, sizeof fr);
    } else {
        memcpy(fr, proof[0], sizeof fr);
        i = 1;
    }
    memcpy(sr, fr, sizeof sr);
    fn = m - 1;
    sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < count; i++) {
        if (sn == 0)
            return PATIENT_ERR_HASH;
        if ((fn & 1) || fn == sn) {
            if ((err = pt_merkle_node(proof[i], fr, fr)) || (err = pt_merkle_node(proof[i], sr, sr)))
                return err;
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            if ((err = pt_merkle_node(sr, proof[i], sr)))
                return err;
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || sodium_memcmp(fr, root1, PATIENT_SHA256_BYTES) != 0 ||
        sodium_memcmp(sr, root2, PATIENT_SHA256_BYTES) != 0)
        return PATIENT_ERR_HASH;
    return PATIENT_OK;
}

patient_err
pt_merkle_range_hash(uint64_t lo, uint64_t hi, pt_merkle_node_fn get, void *ctx,
                     uint8_t out[PATIENT_SHA256_BYTES])
{
    uint8_t parts[PT_MERKLE_MAX_DEPTH][PATIENT_SHA256_BYTES];
    unsigned lvl;
    size_t c = 0;
    patient_err err;

    if (lo >= hi)
        return PATIENT_ERR_ARG;
    /* Greedy decomposition from the left: the largest aligned perfect
     * subtree that starts at lo and fits. */
    while (lo < hi) {
        lvl = 0;
        while (lvl < 63 && (lo & ((UINT64_C(1) << (lvl + 1)) - 1)) == 0 &&
               lo + (UINT64_C(1) << (lvl + 1)) <= hi)
            lvl++;
        if (c == PT_MERKLE_MAX_DEPTH)
            return PATIENT_ERR_ARG;
        if ((err = get(lvl, lo >> lvl, ctx, parts[c++])))
            return err;
        lo += UINT64_C(1) << lvl;
    }
    /* RFC 9162 nests the smaller subtrees on the right: fold right to left. */
    while (c > 1) {
        if ((err = pt_merkle_node(parts[c - 2], parts[c - 1], parts[c - 2])))
            return err;
        c--;
    }
    memcpy(out, parts[0], PATIENT_SHA256_BYTES);
    return PATIENT_OK;
}
