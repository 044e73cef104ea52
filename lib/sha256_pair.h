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

#endif
