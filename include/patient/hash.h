/* SHA-256 (the fastest correct implementation here: libcrypto's EVP, which
 * uses SHA-NI) and Subresource-Integrity strings "sha256-<base64>". */
#ifndef PATIENT_HASH_H
#define PATIENT_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PATIENT_SHA256_BYTES 32
/* "sha256-" + 44 base64 characters + NUL */
#define PATIENT_SRI_BYTES 52

/* One-shot hash. Thread-safe. */
PATIENT_EXPORT patient_err patient_sha256(const void *data, size_t len,
                                          uint8_t out[PATIENT_SHA256_BYTES]);

/* Incremental hash. Create, update any number of times, final (which also
 * frees). patient_sha256_free accepts NULL and discards an unfinished hash.
 * One context per thread. */
typedef struct patient_sha256_ctx patient_sha256_ctx;
PATIENT_EXPORT patient_err patient_sha256_init(patient_sha256_ctx **ctx);
PATIENT_EXPORT patient_err patient_sha256_update(patient_sha256_ctx *ctx, const void *data,
                                                 size_t len);
PATIENT_EXPORT patient_err patient_sha256_final(patient_sha256_ctx *ctx,
                                                uint8_t out[PATIENT_SHA256_BYTES]);
PATIENT_EXPORT void patient_sha256_free(patient_sha256_ctx *ctx);

/* Hash the whole regular file at path (refuses symlinks); *size gets its
 * length. Reads with a large buffer (or mmap). Thread-safe. */
PATIENT_EXPORT patient_err patient_sha256_file(const char *path,
                                               uint8_t out[PATIENT_SHA256_BYTES],
                                               uint64_t *size);

/* "sha256-<standard base64>" (SRI syntax). */
PATIENT_EXPORT void patient_sri_encode(const uint8_t h[PATIENT_SHA256_BYTES],
                                       char out[PATIENT_SRI_BYTES]);
/* Parse an SRI string; only sha256 is accepted (PATIENT_ERR_UNSUPPORTED for
 * other algorithms, PATIENT_ERR_PARSE otherwise). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_sri_decode(const char *sri,
                                                          uint8_t out[PATIENT_SHA256_BYTES]);

/* TLS public-key pins: SHA-256 of a certificate's DER SubjectPublicKeyInfo,
 * written in SRI syntax ("sha256-<base64>"), as `openssl x509 -pubkey |
 * openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary` gives.
 * A manifest's "tls_keys" and a disclosure's "interception_ca" hold 1..8. */
#define PATIENT_MAX_TLS_PINS 8

/* A pin from text: "sha256-<base64>" (exactly 32 bytes), or the first PEM
 * certificate or public key in text (its SPKI hashed). len <= 64 KiB.
 * PATIENT_ERR_PARSE otherwise. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_tls_pin_parse(const char *text, size_t len,
                                                             uint8_t out[PATIENT_SHA256_BYTES]);

#ifdef __cplusplus
}
#endif
#endif
