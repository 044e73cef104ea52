/* What a chunk tree costs on top of one SHA-256 pass, per chunk size: the
 * chaining-value tree of lib/chunk.c (per chunk: read the state, one
 * 33-byte leaf hash, one 65-byte node hash) at 1, 2 and 4 KiB, against
 * plain SHA-256 and against the tree of independent chunk hashes a naive
 * design would need (second pass), over 64 MiB in memory. Also the real
 * pt_chunk_root (PT_CHUNK_SIZE). Not a test: prints MB/s and the overhead.
 *   cc -O2 -I include -I lib -I BUILD bench/chunk_bench.c BUILD/lib/.libs/libpatient_core.a \
 *      $(pkg-config --libs libsodium libcjson libcrypto zlib libcurl) -lpthread -o chunk_bench */
#define _POSIX_C_SOURCE 200809L
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patient/patient.h>
#include "chunk.h"

#define LEN (64u << 20)

static double
now(void)
{
    struct timespec ts;
    /* CPU time of this thread: the machine is shared, wall time is not ours. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* SHA256() goes through EVP_Q_digest in OpenSSL 3 (a fetch and a lock per
 * call); the context functions are what lib/chunk.c uses. */
static void
sha(const uint8_t *p, size_t n, uint8_t out[32])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, p, n);
    SHA256_Final(out, &c);
}

/* One pass, and every csize bytes the chaining value into a tree. */
static void
chained(const uint8_t *d, size_t len, size_t csize, uint8_t out[32])
{
    SHA256_CTX s;
    uint8_t st[33], node[65], h[32];
    SHA256_Init(&s);
    memset(node, 0, sizeof node);
    for (size_t o = 0; o < len; o += csize) {
        SHA256_Update(&s, d + o, csize);
        st[0] = 0;
        for (int i = 0; i < 8; i++) {
            st[1 + 4 * i] = (uint8_t)(s.h[i] >> 24);
            st[2 + 4 * i] = (uint8_t)(s.h[i] >> 16);
            st[3 + 4 * i] = (uint8_t)(s.h[i] >> 8);
            st[4 + 4 * i] = (uint8_t)s.h[i];
        }
        sha(st, 33, h);
        node[0] = 1;
        memcpy(node + 1, h, 32);
        sha(node, 65, node + 33); /* one node hash per leaf, as in a tree */
    }
    SHA256_Final(out, &s);
}

/* Independent chunk hashes: SHA-256 of every chunk, plus the whole file. */
static void
independent(const uint8_t *d, size_t len, size_t csize, uint8_t out[32])
{
    uint8_t h[32], node[65];
    sha(d, len, out);
    for (size_t o = 0; o < len; o += csize) {
        sha(d + o, csize, h);
        node[0] = 1;
        memcpy(node + 1, h, 32);
        sha(node, 65, node + 33);
    }
}

static double
best(void (*f)(const uint8_t *, size_t, size_t, uint8_t *), const uint8_t *d, size_t c)
{
    double b = 1e9;
    uint8_t out[32];
    for (int r = 0; r < 9; r++) {
        double t0 = now();
        f(d, LEN, c, out);
        double t = now() - t0;
        if (t < b)
            b = t;
    }
    return b;
}

static void
plain(const uint8_t *d, size_t len, size_t c, uint8_t out[32])
{
    (void)c;
    sha(d, len, out);
}

static void
real(const uint8_t *d, size_t len, size_t c, uint8_t out[32])
{
    uint8_t dig[32];
    (void)c;
    if (pt_chunk_root(d, len, dig, out) != PATIENT_OK)
        abort();
}

int
main(void)
{
    static const size_t cs[] = {1024, 2048, 4096};
    uint8_t *d = malloc(LEN);
    double tp;
    for (size_t i = 0; i < LEN; i++)
        d[i] = (uint8_t)(i * 2654435761u >> 13);
    /* Warm up (CPU frequency, caches) before the reference pass. */
    (void)best(chained, d, 4096);
    tp = best(plain, d, 0);
    printf("64 MiB in memory, best of 9, thread CPU time\n");
    printf("%-34s %8.0f MB/s\n", "SHA-256 (one pass)", LEN / tp / 1e6);
    for (size_t i = 0; i < 3; i++) {
        double tc = best(chained, d, cs[i]), ti = best(independent, d, cs[i]);
        printf("chained tree, %4zu B chunks        %8.0f MB/s  +%4.1f%%\n", cs[i], LEN / tc / 1e6,
               (tc / tp - 1) * 100);
        printf("independent chunk hashes, %4zu B   %8.0f MB/s  +%4.1f%%\n", cs[i], LEN / ti / 1e6,
               (ti / tp - 1) * 100);
    }
    {
        double tr = best(real, d, 0);
        printf("pt_chunk_root (%u B, lib/chunk.c)  %8.0f MB/s  +%4.1f%%\n", PT_CHUNK_SIZE,
               LEN / tr / 1e6, (tr / tp - 1) * 100);
    }
    free(d);
    return 0;
}
