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

/* Streaming decode, for bodies that pass through while they arrive (a
 * middlebox that may not hold them). The same formats and the same
 * judgement of what is valid as patient_gzip_decode, fed in pieces.
 * Decoded bytes are handed to a sink, in order, in pieces of at most
 * PATIENT_GZIP_PIECE bytes, before the call that produced them returns; a
 * sink's error stops decoding and is returned as is. */
#define PATIENT_GZIP_PIECE 65536
typedef patient_err (*patient_gzip_sink)(void *ctx, const uint8_t *p, size_t n);
typedef struct patient_gzip_dec patient_gzip_dec;

/* max_ratio: decompression-bomb cap. Once more than
 * PATIENT_GZIP_RATIO_FLOOR bytes are decoded, decoding more than
 * max_ratio bytes per input byte consumed so far fails with
 * PATIENT_ERR_TOO_LARGE (0: no ratio cap). There is no cap on the total:
 * the sink sees every byte and stops what it will not take. *out: free
 * with patient_gzip_dec_free. Not thread-safe per handle. */
#define PATIENT_GZIP_RATIO_FLOOR (1024u * 1024)
PATIENT_EXPORT PATIENT_WUR patient_err patient_gzip_dec_new(unsigned max_ratio,
                                                            patient_gzip_dec **out);
/* Decode in[0..len) (len may be 0). eof: nothing follows; the stream must
 * be complete (else PATIENT_ERR_GZIP: truncated; an empty body is not a
 * stream either). Corrupt input or bytes after the end other than another
 * gzip member: PATIENT_ERR_GZIP. After any error every later call returns
 * the same error. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_gzip_dec_feed(patient_gzip_dec *d,
                                                             const uint8_t *in, size_t len,
                                                             int eof, patient_gzip_sink sink,
                                                             void *ctx);
/* Bytes of input consumed and output produced so far. */
PATIENT_EXPORT uint64_t patient_gzip_dec_total_in(const patient_gzip_dec *d);
PATIENT_EXPORT uint64_t patient_gzip_dec_total_out(const patient_gzip_dec *d);
/* Accepts NULL. */
PATIENT_EXPORT void patient_gzip_dec_free(patient_gzip_dec *d);

/* Streaming encode as one gzip member. level: zlib's 1 (fastest) .. 9, or
 * -1 for its default. *out: free with patient_gzip_enc_free. */
typedef struct patient_gzip_enc patient_gzip_enc;
PATIENT_EXPORT PATIENT_WUR patient_err patient_gzip_enc_new(int level, patient_gzip_enc **out);
/* Compress in[0..len); what zlib emits goes to the sink (pieces of at
 * most PATIENT_GZIP_PIECE bytes). flush: PATIENT_GZIP_MORE lets zlib keep
 * input back for better compression; PATIENT_GZIP_SYNC emits everything
 * fed so far (a receiver can decode all of it; the member stays open);
 * PATIENT_GZIP_FINISH ends the member (final block and trailer), after
 * which only patient_gzip_enc_free is valid. */
enum { PATIENT_GZIP_MORE = 0, PATIENT_GZIP_SYNC = 1, PATIENT_GZIP_FINISH = 2 };
PATIENT_EXPORT PATIENT_WUR patient_err patient_gzip_enc_feed(patient_gzip_enc *e,
                                                             const uint8_t *in, size_t len,
                                                             int flush, patient_gzip_sink sink,
                                                             void *ctx);
/* Accepts NULL. */
PATIENT_EXPORT void patient_gzip_enc_free(patient_gzip_enc *e);

/* Encode as one gzip member (default compression level). *out: malloc'd
 * (caller frees). Input over PATIENT_MAX_BODY: TOO_LARGE. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_gzip_encode(const uint8_t *in, size_t len,
                                                           uint8_t **out, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
