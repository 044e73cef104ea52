/* The two SHA-256 of an audit-log line at once (lib/sha256_pair.c).
 * Internal to libpatient (not installed). */
#ifndef PATIENT_SHA256_PAIR_H
#define PATIENT_SHA256_PAIR_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>

/* chain = SHA-256(line), leaf = SHA-256(0x00 || line): the line's prev
 * hash and its RFC 9162 leaf hash. Same bytes as two OpenSSL calls. */
patient_err pt_sha256_pair(const uint8_t *line, size_t len, uint8_t chain[32], uint8_t leaf[32]);

/* 1 when this CPU takes the SHA-extensions path. */
int pt_sha256_pair_accel(void);

/* For the tests: accel 0 forces the OpenSSL path. */
patient_err pt_sha256_pair_impl(int accel, const uint8_t *line, size_t len, uint8_t chain[32],
                                uint8_t leaf[32]);

/* Both hashes of n <= 8 lines at once (chain[i], leaf[i] for line[i]) on
 * CPUs with AVX-512: 0 when done, -1 when not taken (no AVX-512, n out of
 * range, lengths too unequal to share a loop): hash them one by one. */
int pt_sha256_pair8(const uint8_t *const *line, const size_t *len, unsigned n, uint8_t *const *chain,
                    uint8_t *const *leaf);

/* The Merkle node hashes SHA-256(0x01 || pairs[64 i .. 64 i + 63]) of n
 * <= 16 pairs of child hashes side by side, into out[i], on CPUs with
 * AVX-512: 0 when done, -1 when not taken (nothing written). */
int pt_sha256_node16(const uint8_t *pairs, unsigned n, uint8_t (*out)[32]);

/* 1 when the CPU and the OS give AVX-512 F and BW (what pt_sha256_pair8
 * and the entry scan's string reader use) and AVX2 (which the compiler
 * may use in code built for AVX-512 F); asked once, any thread. */
int pt_cpu_avx512(void);

#endif
