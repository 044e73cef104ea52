/* JWS compact serialisation (RFC 7515) with alg "EdDSA" (RFC 8037) and
 * kid = the minisign key id in hex (patient_keyid_hex). Any JOSE library
 * given the 32-byte public key as an OKP/Ed25519 JWK verifies ours.
 *
 * Protected header we emit: {"alg":"EdDSA","kid":"<16 hex>","typ":"<typ>"}.
 * We sign exact payload bytes and never re-serialise to verify. */
#ifndef PATIENT_JWS_H
#define PATIENT_JWS_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>
#include <patient/key.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hard cap on a compact JWS we will parse (header + payload + signature). */
#define PATIENT_JWS_MAX (1024u * 1024)

/* Largest payload patient_jws_sign accepts (so the compact form stays
 * under PATIENT_JWS_MAX): PATIENT_ERR_TOO_LARGE above it. */
#define PATIENT_JWS_PAYLOAD_MAX ((PATIENT_JWS_MAX - 1024) / 4 * 3)

/* Sign payload; typ (e.g. "patient-change+jws", at most 256 bytes) may be
 * NULL. *out is a malloc'd NUL-terminated compact JWS (caller frees with
 * free()). Thread-safe for a shared sk. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_jws_sign(const patient_seckey *sk,
                                                        const char *typ, const void *payload,
                                                        size_t len, char **out);

/* A parsed (not yet verified) JWS. Free with patient_jws_free. */
typedef struct patient_jws {
    uint8_t kid[PATIENT_KEYID_BYTES]; /* from the header */
    char *typ;                        /* NULL when absent */
    uint8_t *payload;                 /* decoded, NUL-terminated (not counted) */
    size_t payload_len;
    uint8_t sig[PATIENT_SIG_BYTES];
    char *signing_input; /* "header.payload" exactly as received */
    size_t signing_input_len;
} patient_jws;

/* Parse a compact JWS. Rejects: size over PATIENT_JWS_MAX, not three
 * base64url parts, header not a JSON object, alg other than EdDSA
 * (PATIENT_ERR_UNSUPPORTED), "crit" present, kid missing or not 16 hex
 * digits, signature not 64 bytes. Surrounding whitespace is trimmed. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_jws_parse(const char *s, size_t len,
                                                         patient_jws **out);
/* Verify against pk: key id first (PATIENT_ERR_KEY_MISMATCH), then the
 * Ed25519 signature (PATIENT_ERR_SIGNATURE). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_jws_verify(const patient_jws *jws,
                                                          const patient_pubkey *pk);
PATIENT_EXPORT void patient_jws_free(patient_jws *jws);

#ifdef __cplusplus
}
#endif
#endif
