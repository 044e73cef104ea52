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

int
pt_sha256_pair_accel(void)
{
#ifdef PAIR_NI
    /* Asked once; a racing first call computes the same answer (atomic:
     * several scan workers may ask at once). */
    static _Atomic int known = -1;
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k < 0) {
        k = cpu_has_sha_ni();
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k;
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
