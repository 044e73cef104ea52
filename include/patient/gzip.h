/* Content-Encoding helpers (zlib): descriptors hash and edit the decoded
 * representation, so a gzip/deflate body is decoded before editing and may
 * be re-encoded afterwards. */
#ifndef PATIENT_GZIP_H
#define PATIENT_GZIP_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decode a gzip (RFC 1952), zlib (RFC 1950) or raw deflate (RFC 1951)
 * body; gzip and zlib are detected by their headers, anything else is tried
 * as raw deflate (what some servers send as "Content-Encoding: deflate").
 * Concatenated gzip members are decoded in sequence (as gzip(1) does); any
 * other bytes after the end of the stream: PATIENT_ERR_GZIP.
 *  max_out  cap on the decoded size (0 means PATIENT_MAX_BODY, 64 MiB).
 *           Decoding stops as soon as the cap is passed: PATIENT_ERR_TOO_LARGE
 *           (a decompression bomb costs at most max_out bytes of work).
 * Corrupt or truncated input: PATIENT_ERR_GZIP. *out: malloc'd (caller frees
 * with free()), never NULL on success. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_gzip_decode(const uint8_t *in, size_t len,
                                                           size_t max_out, uint8_t **out,
                                                           size_t *out_len);

/* Encode as one gzip member (default compression level). *out: malloc'd
 * (caller frees). Input over PATIENT_MAX_BODY: TOO_LARGE. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_gzip_encode(const uint8_t *in, size_t len,
                                                           uint8_t **out, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
