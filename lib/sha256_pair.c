/* The audit log's two hashes of every line, computed together: the chain
 * hash SHA-256(line) and the Merkle leaf SHA-256(0x00 || line).
 *
 * Why: with the SHA extensions, each pair of rounds of one SHA-256 waits
 * for the pair before it, so one message leaves the round unit partly
 * idle. Two independent messages run through the same loop fill those
 * gaps: here 590,000 pairs of 1,867-byte lines a second of CPU against
 * OpenSSL's 500,000 (docs/BENCHMARKS.md). The two messages differ only by
 * the leading 0x00, so both are read from the line itself, never copied:
 * only the leaf's first block and the padded last blocks are assembled in
 * a 64-byte buffer.
 *
 * Elsewhere, or on a CPU without the extensions, OpenSSL computes both.
 * The result is the same bytes either way; check_log compares both paths
 * with OpenSSL over every length across the first block boundaries. */
#include "config.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <patient/hash.h>

#include "merkle.h"
#include "sha256_pair.h"

static patient_err
pair_portable(const uint8_t *line, size_t len, uint8_t chain[32], uint8_t leaf[32])
{
    patient_err err = patient_sha256(line, len, chain);

    return err ? err : pt_merkle_leaf(line, len, NULL, leaf);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PAIR_NI 1
#include <cpuid.h>
#include <immintrin.h>

/* The message as hashed: pre (0 or 1 byte of prefix) then the line, then
 * FIPS 180-4 padding. total = pre + len; blocks = (total + 8) / 64 + 1. */
typedef struct {
    const uint8_t *line;
    size_t len;
    unsigned pre; /* 1: a 0x00 comes first */
    uint64_t total;
    uint64_t blocks;
} msg;

static void
msg_init(msg *m, const uint8_t *line, size_t len, unsigned pre)
{
    m->line = line;
    m->len = len;
    m->pre = pre;
    m->total = (uint64_t)len + pre;
    m->blocks = (m->total + 8) / 64 + 1;
}

/* Block k of m: straight from the line when all 64 bytes are line bytes,
 * else assembled in buf (the prefix, the line's tail, 0x80, zeros, the
 * length in bits). */
static const uint8_t *
msg_block(const msg *m, uint64_t k, uint8_t buf[64])
{
    uint64_t at = k * 64; /* offset in the message */
    size_t n = 0;

    if (at >= m->pre && at - m->pre + 64 <= m->len)
        return m->line + (at - m->pre);
    memset(buf, 0, 64);
    if (at == 0 && m->pre) {
        buf[0] = 0x00;
        n = 1;
    }
    if (at + n < m->total) {
        uint64_t from = at + n - m->pre; /* offset in the line */
        size_t take = (size_t)(m->len - from);
        if (take > 64 - n)
            take = 64 - n;
        memcpy(buf + n, m->line + from, take);
        n += take;
    }
    if (at + n == m->total && n < 64)
        buf[n] = 0x80;
    if (k == m->blocks - 1) {
        uint64_t bits = m->total * 8;
        for (int i = 0; i < 8; i++)
            buf[63 - i] = (uint8_t)(bits >> (8 * i));
    }
    return buf;
}

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

/* The state in the SHA extensions' layout: s0 = (A,B,E,F), s1 = (C,D,G,H). */
typedef struct {
    __m128i s0, s1;
} nistate;

#define NI_TARGET __attribute__((target("sha,sse4.1,ssse3")))

NI_TARGET static void
ni_init(nistate *s)
{
    /* H0 of FIPS 180-4 6.2, already in ABEF / CDGH order */
    s->s0 = _mm_set_epi32(0x6a09e667, 0xbb67ae85, 0x510e527f, 0x9b05688c);
    s->s1 = _mm_set_epi32(0x3c6ef372, 0xa54ff53a, 0x1f83d9ab, 0x5be0cd19);
}

NI_TARGET static void
ni_final(const nistate *s, uint8_t out[32])
{
    uint32_t w[8];
    /* s0 holds A,B,E,F from the high lane down; s1 C,D,G,H */
    w[0] = (uint32_t)_mm_extract_epi32(s->s0, 3);
    w[1] = (uint32_t)_mm_extract_epi32(s->s0, 2);
    w[4] = (uint32_t)_mm_extract_epi32(s->s0, 1);
    w[5] = (uint32_t)_mm_extract_epi32(s->s0, 0);
    w[2] = (uint32_t)_mm_extract_epi32(s->s1, 3);
    w[3] = (uint32_t)_mm_extract_epi32(s->s1, 2);
    w[6] = (uint32_t)_mm_extract_epi32(s->s1, 1);
    w[7] = (uint32_t)_mm_extract_epi32(s->s1, 0);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(w[i] >> 24);
        out[4 * i + 1] = (uint8_t)(w[i] >> 16);
        out[4 * i + 2] = (uint8_t)(w[i] >> 8);
        out[4 * i + 3] = (uint8_t)w[i];
    }
}

/* Four rounds of one stream: message words in m (with K added inside). */
#define NI_ROUNDS(st, m, g)                                                                        \
    do {                                                                                           \
        __m128i k_ = _mm_add_epi32((m), _mm_loadu_si128((const __m128i *)&K256[4 * (g)]));        \
        (st).s1 = _mm_sha256rnds2_epu32((st).s1, (st).s0, k_);                                     \
        k_ = _mm_shuffle_epi32(k_, 0x0E);                                                          \
        (st).s0 = _mm_sha256rnds2_epu32((st).s0, (st).s1, k_);                                     \
    } while (0)

/* W[4g..4g+3] from the four groups before it (FIPS 180-4 6.2.2 step 1). */
#define NI_SCHED(w, g)                                                                             \
    (w)[(g)&3] = _mm_sha256msg2_epu32(                                                             \
        _mm_add_epi32(_mm_sha256msg1_epu32((w)[(g)&3], (w)[((g) + 1) & 3]),                        \
                      _mm_alignr_epi8((w)[((g) + 3) & 3], (w)[((g) + 2) & 3], 4)),                 \
        (w)[((g) + 3) & 3])

/* One block into each of two states, their rounds interleaved. */
NI_TARGET static void
ni_block2(nistate *a, const uint8_t *pa, nistate *b, const uint8_t *pb)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    nistate a0 = *a, b0 = *b;
    __m128i wa[4], wb[4];

    for (int g = 0; g < 4; g++) {
        wa[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 16 * g)), bswap);
        wb[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 16 * g)), bswap);
    }
    /* Unrolled, the message words stay in registers. */
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
        if (g >= 4) {
            NI_SCHED(wa, g);
            NI_SCHED(wb, g);
        }
        NI_ROUNDS(*a, wa[g & 3], g);
        NI_ROUNDS(*b, wb[g & 3], g);
    }
    a->s0 = _mm_add_epi32(a->s0, a0.s0);
    a->s1 = _mm_add_epi32(a->s1, a0.s1);
    b->s0 = _mm_add_epi32(b->s0, b0.s0);
    b->s1 = _mm_add_epi32(b->s1, b0.s1);
}

NI_TARGET static void
ni_block1(nistate *a, const uint8_t *pa)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    nistate a0 = *a;
    __m128i wa[4];

    for (int g = 0; g < 4; g++)
        wa[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 16 * g)), bswap);
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
        if (g >= 4)
            NI_SCHED(wa, g);
        NI_ROUNDS(*a, wa[g & 3], g);
    }
    a->s0 = _mm_add_epi32(a->s0, a0.s0);
    a->s1 = _mm_add_epi32(a->s1, a0.s1);
}

NI_TARGET static void
pair_ni(const uint8_t *line, size_t len, uint8_t chain[32], uint8_t leaf[32])
{
    msg ma, mb;
    nistate a, b;
    uint8_t ba[64], bb[64];
    uint64_t k, both;

    msg_init(&ma, line, len, 0);
    msg_init(&mb, line, len, 1);
    ni_init(&a);
    ni_init(&b);
    /* The leaf is one byte longer: at most one block more. */
    both = ma.blocks;
    for (k = 0; k < both; k++)
        ni_block2(&a, msg_block(&ma, k, ba), &b, msg_block(&mb, k, bb));
    for (; k < mb.blocks; k++)
        ni_block1(&b, msg_block(&mb, k, bb));
    ni_final(&a, chain);
    ni_final(&b, leaf);
}

/* ---- Sixteen messages at once: both hashes of eight lines ------------------
 *
 * Why: the SHA extensions' round unit is already full with two streams
 * (docs/BENCHMARKS.md), but AVX-512 has sixteen 32-bit lanes a register:
 * one register per state word, each lane its own message, rotations in
 * one instruction (vprord) and Ch, Maj and the three-way xors in one each
 * (vpternlogd). Both messages of eight lines (lane 2i the line, 2i+1 the
 * 0x00-prefixed one) go through one loop: 1.53-1.58x the lines a CPU
 * second of two streams with the SHA extensions, measured here. Lanes that
 * run out of blocks before the longest are masked out of the state
 * updates, so lines of unequal length are hashed right; very unequal ones
 * are left to the two-stream path (each lane waits for the longest). */
#define X16_TARGET __attribute__((target("avx512f,avx512bw")))

/* Rows r[i] (lane i's 16 words) to columns: r[t] holds word t of every lane. */
X16_TARGET static inline void
x16_transpose(__m512i r[16])
{
    __m512i t[16];

    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
        r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
    }
}

#define X16_ROR(x, n) _mm512_ror_epi32((x), (n))
#define X16_XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)

/* Block k of m as a register, for a block that is not 64 bytes of the
 * line: the line's bytes in it by a masked load (which reads nothing
 * outside them, not the byte before the line where the leaf's 0x00 goes),
 * then 0x80 and, in the last block, the length in bits put in place. No
 * buffer: a block assembled in memory byte by byte and loaded whole waited
 * for its stores (msg_block, 3.5% of the hashing for two blocks a lane). */
X16_TARGET static __m512i
x16_edge(const msg *m, uint64_t k)
{
    uint64_t at = k * 64, a = at > m->pre ? at : m->pre, b = m->pre + (uint64_t)m->len;
    __m512i x = _mm512_setzero_si512();

    if (b > at + 64)
        b = at + 64;
    if (b > a) {
        __mmask64 want = (b - at == 64 ? ~(__mmask64)0 : ((__mmask64)1 << (b - at)) - 1) &
                         ~(((__mmask64)1 << (a - at)) - 1);
        /* byte i of the block is line[at - pre + i]; for the leaf's first
         * block that base is line - 1, which C may not form as a pointer
         * (the mask never reads it), so the sum is an integer's */
        x = _mm512_maskz_loadu_epi8(want, (const void *)((uintptr_t)m->line - m->pre + at));
    }
    if (m->total >= at && m->total < at + 64)
        x = _mm512_mask_set1_epi8(x, (__mmask64)1 << (m->total - at), (char)0x80);
    if (k == m->blocks - 1)
        x = _mm512_mask_set1_epi64(x, 0x80, (long long)__builtin_bswap64(m->total * 8));
    return x;
}

/* One block of each lane in live (w[l]: lane l's 64 bytes, as read). */
X16_TARGET static void
x16_block(__m512i s[8], __m512i w[16], __mmask16 live)
{
    const __m512i bswap = _mm512_broadcast_i32x4(
        _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL));
    __m512i v[8];

    x16_transpose(w);
    for (int t = 0; t < 16; t++)
        w[t] = _mm512_shuffle_epi8(w[t], bswap);
    for (int i = 0; i < 8; i++)
        v[i] = s[i];
    /* Unrolled, the words and the state stay in registers (32 of them). */
#pragma GCC unroll 64
    for (int t = 0; t < 64; t++) {
        __m512i wt, t1, t2;
        if (t < 16) {
            wt = w[t];
        } else {
            __m512i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
            __m512i s0 = X16_XOR3(X16_ROR(w15, 7), X16_ROR(w15, 18), _mm512_srli_epi32(w15, 3));
            __m512i s1 = X16_XOR3(X16_ROR(w2, 17), X16_ROR(w2, 19), _mm512_srli_epi32(w2, 10));
            wt = _mm512_add_epi32(_mm512_add_epi32(w[t & 15], s0),
                                  _mm512_add_epi32(w[(t - 7) & 15], s1));
            w[t & 15] = wt;
        }
        t1 = _mm512_add_epi32(
            _mm512_add_epi32(v[7], X16_XOR3(X16_ROR(v[4], 6), X16_ROR(v[4], 11), X16_ROR(v[4], 25))),
            _mm512_add_epi32(_mm512_ternarylogic_epi32(v[4], v[5], v[6], 0xCA), /* Ch */
                             _mm512_add_epi32(_mm512_set1_epi32((int)K256[t]), wt)));
        t2 = _mm512_add_epi32(X16_XOR3(X16_ROR(v[0], 2), X16_ROR(v[0], 13), X16_ROR(v[0], 22)),
                              _mm512_ternarylogic_epi32(v[0], v[1], v[2], 0xE8)); /* Maj */
        v[7] = v[6];
        v[6] = v[5];
        v[5] = v[4];
        v[4] = _mm512_add_epi32(v[3], t1);
        v[3] = v[2];
        v[2] = v[1];
        v[1] = v[0];
        v[0] = _mm512_add_epi32(t1, t2);
    }
    for (int i = 0; i < 8; i++)
        s[i] = _mm512_mask_add_epi32(s[i], live, s[i], v[i]);
}

#define PREFETCH_BLOCKS 4
X16_TARGET static void
pair_x16(const uint8_t *const *line, const size_t *len, unsigned n, uint8_t *const *chain,
         uint8_t *const *leaf)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    msg m[16];
    uint32_t out[8][16];
    __m512i s[8], w[16];
    uint64_t most = 0, lo[16], hi[16];

    for (unsigned l = 0; l < 16; l++) {
        if (l / 2 < n) {
            msg_init(&m[l], line[l / 2], len[l / 2], l & 1);
        } else {
            msg_init(&m[l], NULL, 0, 0);
            m[l].blocks = 0; /* an idle lane: never live */
        }
        if (m[l].blocks > most)
            most = m[l].blocks;
        /* Blocks lo..hi-1 are 64 bytes of the line itself, loaded as they
         * are (msg_block was 7% of the hashing when asked for each) */
        lo[l] = m[l].pre;
        hi[l] = m[l].total / 64;
    }
    for (int i = 0; i < 8; i++)
        s[i] = _mm512_set1_epi32((int)h0[i]);
    for (unsigned l = 0; l < 16; l += 2)
        for (uint64_t k = 0; k < PREFETCH_BLOCKS && k < hi[l]; k++)
            _mm_prefetch((const char *)(m[l].line + k * 64), _MM_HINT_T0);
    for (uint64_t k = 0; k < most; k++) {
        __mmask16 live = 0;
        for (unsigned l = 0; l < 16; l += 2)
            if (k + PREFETCH_BLOCKS < hi[l])
                _mm_prefetch((const char *)(m[l].line + (k + PREFETCH_BLOCKS) * 64), _MM_HINT_T0);
        for (unsigned l = 0; l < 16; l++) {
            if (k >= lo[l] && k < hi[l]) {
                w[l] = _mm512_loadu_si512((const void *)(m[l].line + (k * 64 - m[l].pre)));
                live |= (__mmask16)(1u << l);
            } else if (k < m[l].blocks) {
                w[l] = x16_edge(&m[l], k);
                live |= (__mmask16)(1u << l);
            } else {
                w[l] = _mm512_setzero_si512();
            }
        }
        x16_block(s, w, live);
    }
    for (int i = 0; i < 8; i++)
        _mm512_storeu_si512((void *)out[i], s[i]);
    for (unsigned l = 0; l < 2 * n; l++) {
        uint8_t *d = (l & 1) ? leaf[l / 2] : chain[l / 2];
        for (int i = 0; i < 8; i++) {
            d[4 * i] = (uint8_t)(out[i][l] >> 24);
            d[4 * i + 1] = (uint8_t)(out[i][l] >> 16);
            d[4 * i + 2] = (uint8_t)(out[i][l] >> 8);
            d[4 * i + 3] = (uint8_t)out[i][l];
        }
    }
}

/* Sixteen Merkle node hashes SHA-256(0x01 || l || r) at once: 65 bytes,
 * two blocks a lane. Why: a level of a subtree is as many independent
 * node hashes as it has pairs, and one lane costs about half a
 * single-stream hash (docs/BENCHMARKS.md). pairs: n <= 16 children side
 * by side, 64 bytes each. */
X16_TARGET static void
node_x16(const uint8_t *pairs, unsigned n, uint8_t (*out)[32])
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    /* the second block's fixed part: 0x80 after the last byte, then the
     * length in bits (520) big-endian at the end */
    const __m512i tail = _mm512_mask_set1_epi64(
        _mm512_maskz_set1_epi8((__mmask64)1 << 1, (char)0x80), 0x80,
        (long long)__builtin_bswap64(65 * 8));
    uint32_t o[8][16];
    __m512i s[8], w[16];
    __mmask16 live = (__mmask16)((1u << n) - 1);

    for (int i = 0; i < 8; i++)
        s[i] = _mm512_set1_epi32((int)h0[i]);
    /* block 1: 0x01 then the pair's first 63 bytes (a masked load that
     * reads nothing before the pair; the base is an integer's, as in
     * x16_edge) */
    for (unsigned l = 0; l < 16; l++)
        w[l] = l < n ? _mm512_mask_set1_epi8(
                           _mm512_maskz_loadu_epi8(~(__mmask64)1,
                                                   (const void *)((uintptr_t)(pairs + 64 * l) - 1)),
                           1, 0x01)
                     : _mm512_setzero_si512();
    x16_block(s, w, live);
    for (unsigned l = 0; l < 16; l++)
        w[l] = l < n ? _mm512_mask_set1_epi8(tail, 1, (char)pairs[64 * l + 63]) : tail;
    x16_block(s, w, live);
    for (int i = 0; i < 8; i++)
        _mm512_storeu_si512((void *)o[i], s[i]);
    for (unsigned l = 0; l < n; l++)
        for (int i = 0; i < 8; i++) {
            out[l][4 * i] = (uint8_t)(o[i][l] >> 24);
            out[l][4 * i + 1] = (uint8_t)(o[i][l] >> 16);
            out[l][4 * i + 2] = (uint8_t)(o[i][l] >> 8);
            out[l][4 * i + 3] = (uint8_t)o[i][l];
        }
}

static int
cpu_has_x16(void)
{
    unsigned a, b, c, d;

    /* AVX-512 F and BW, and the OS saving the wider registers (XCR0:
     * SSE, AVX, opmask, the upper halves of zmm0-15 and zmm16-31). AVX2
     * too: target("avx512f") lets the compiler use AVX2 in what it
     * inlines there, so its flag is asked rather than assumed (a
     * hypervisor may mask it). */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX2) || !(b & bit_AVX512F) ||
        !(b & bit_AVX512BW))
        return 0;
    {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        return (lo & 0xe6) == 0xe6;
    }
}

static int
cpu_has_sha_ni(void)
{
    unsigned a, b, c, d;

    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b & bit_SHA) != 0;
}
#endif

#ifdef PAIR_NI
/* probe() asked once; a racing first call computes the same answer
 * (atomic: several scan workers may ask at once). */
static int
cpu_known(_Atomic int *known, int (*probe)(void))
{
    int k = atomic_load_explicit(known, memory_order_relaxed);

    if (k < 0) {
        k = probe();
        atomic_store_explicit(known, k, memory_order_relaxed);
    }
    return k;
}
#endif

int
pt_sha256_pair_accel(void)
{
#ifdef PAIR_NI
    static _Atomic int known = -1;
    return cpu_known(&known, cpu_has_sha_ni);
#else
    return 0;
#endif
}

patient_err
pt_sha256_pair_impl(int accel, const uint8_t *line, size_t len, uint8_t chain[32],
                    uint8_t leaf[32])
{
#ifdef PAIR_NI
    if (accel && pt_sha256_pair_accel()) {
        pair_ni(line, len, chain, leaf);
        return PATIENT_OK;
    }
#else
    (void)accel;
#endif
    return pair_portable(line, len, chain, leaf);
}

patient_err
pt_sha256_pair(const uint8_t *line, size_t len, uint8_t chain[32], uint8_t leaf[32])
{
    return pt_sha256_pair_impl(1, line, len, chain, leaf);
}

int
pt_cpu_avx512(void)
{
#ifdef PAIR_NI
    static _Atomic int known = -1;
    return cpu_known(&known, cpu_has_x16);
#else
    return 0;
#endif
}

int
pt_sha256_pair8(const uint8_t *const *line, const size_t *len, unsigned n, uint8_t *const *chain,
                uint8_t *const *leaf)
{
#ifdef PAIR_NI
    size_t lo = SIZE_MAX, hi = 0;

    if (n == 0 || n > 8 || !pt_cpu_avx512())
        return -1;
    for (unsigned i = 0; i < n; i++) {
        lo = len[i] < lo ? len[i] : lo;
        hi = len[i] > hi ? len[i] : hi;
    }
    /* Every lane waits for the longest: past an eighth more blocks than
     * the shortest, two streams a line waste less. */
    if (hi / 64 > lo / 64 + lo / 512 + 1)
        return -1;
    pair_x16(line, len, n, chain, leaf);
    return 0;
#else
    (void)line, (void)len, (void)n, (void)chain, (void)leaf;
    return -1;
#endif
}

int
pt_sha256_node16(const uint8_t *pairs, unsigned n, uint8_t (*out)[32])
{
#ifdef PAIR_NI
    if (n == 0 || n > 16 || !pt_cpu_avx512())
        return -1;
    node_x16(pairs, n, out);
    return 0;
#else
    (void)pairs, (void)n, (void)out;
    return -1;
#endif
}
