/* Internal to the change-descriptor module (lib/change.c, lib/edit.c). */
#ifndef PATIENT_CHANGE_INT_H
#define PATIENT_CHANGE_INT_H

#include <patient/change.h>
#include "util.h" /* pt_bigbuf */

/* Check edits against an input of in_len bytes: each in range
 * (EDIT_RANGE), sorted, non-overlapping, distinct offsets (EDIT_ORDER), each
 * changing something (noop_err). On success *out_len (if not NULL) gets the
 * output size (TOO_LARGE above PATIENT_MAX_BODY). */
patient_err pt_edits_check(const patient_edit *e, size_t n, size_t in_len, patient_err noop_err,
                           size_t *out_len);

/* Build the output of edits (already checked) into a malloc'd buffer of
 * out_len bytes, hashing input and output on the way when hin/hout are not
 * NULL (one pass over the data, cache-friendly). */
patient_err pt_edits_build(const uint8_t *in, size_t len, const patient_edit *e, size_t n,
                           size_t out_len, uint8_t **out, uint8_t hin[PATIENT_SHA256_BYTES],
                           uint8_t hout[PATIENT_SHA256_BYTES]);

/* Check that out (out_len bytes) is exactly the output of edits (already
 * checked) over in, hashing input and output in the same pass: for a
 * caller that built the output itself, as a streaming middlebox does.
 * PATIENT_ERR_HASH when a byte differs, ARG when the sizes do not add up. */
patient_err pt_edits_match(const uint8_t *in, size_t len, const patient_edit *e, size_t n,
                           const uint8_t *out, size_t out_len, uint8_t hin[PATIENT_SHA256_BYTES],
                           uint8_t hout[PATIENT_SHA256_BYTES]);

/* What a hop signed at its finish (patient_hop_finish or _finish_output),
 * read from the hop itself, so that a writer that built the descriptor
 * need not parse it again (the audit log's change entry). Borrowed from
 * the hop. value NULL: it signed nothing. */
typedef struct {
    const char *value;              /* the descriptor */
    const char *url, *name;
    unsigned hopno;
    const char *when;               /* its "at", canonical (20 characters) */
    const char *kid;                /* the signing key's id, hex */
    size_t nedits;
    const char *tls_version;        /* NULL: no upstream TLS recorded */
    const char *tls_cipher;         /* may be NULL */
    int tls_verified;
    size_t entry_len;               /* its audit log entry's line at any seq, as the
                                       hop counted it (pt_change_entry_len) */
} pt_hop_signed;

void pt_hop_signed_get(const patient_hop *hop, pt_hop_signed *s);
/* Edit i (< nedits) of what the hop signed, in the descriptor's order. */
const patient_edit *pt_hop_signed_edit(const patient_hop *hop, size_t i);

/* The audit log's change entry (docs/format/log.md) repeats members of
 * its descriptor: a hop checks, before its descriptor leaves it, that the
 * line will hold them (PATIENT_LOG_LINE_MAX), and the log's writer sizes
 * the line by the same count, which is exact (check_log's line_at_the_cap
 * holds the two together). What the line holds: */
typedef struct {
    size_t jws_len;            /* the descriptor: base64url and dots, no escapes */
    const char *at;            /* "time": the descriptor's "at", canonical */
    const char *url, *name;    /* "url", "by"."name" */
    const char *kid;           /* "by"."kid", hex */
    unsigned long long hop;
    size_t nedits;
    size_t codes_len;          /* strlen(reason) + strlen(rule) over the edits (codes:
                                  [A-Za-z0-9._-], written without escapes) */
    uint64_t deleted, inserted;
    const char *tls;           /* the entry's "tls" (pt_change_entry_tls); NULL or "":
                                  none */
} pt_entry_size;

/* seq for pt_change_entry_len: the longest one (20 digits), which makes
 * the count a bound for every seq. */
#define PT_ENTRY_ANY_SEQ UINT64_MAX

/* Bytes of the change entry's line at seq, without its "\n": exactly what
 * the log writes. */
size_t pt_change_entry_len(const pt_entry_size *s, uint64_t seq);

/* The entry's "tls": a descriptor's upstream TLS in one string, "TLSv1.3
 * CIPHER verified" (or "unverified"), "none" for a plain-HTTP upstream; ""
 * when version is NULL (none recorded). */
#define PT_ENTRY_TLS_MAX (2 * PATIENT_MAX_TLS_FIELD + 16)
void pt_change_entry_tls(char out[PT_ENTRY_TLS_MAX], const char *version, const char *cipher,
                         int verified);

/* patient_change_undo into a reusable buffer, with control over which
 * hashes are computed. A verifier undoing a whole chain hashes the received
 * body once (against the last hop's "out") and the rebuilt origin bytes once
 * (against the manifest and hop 1's "in"); the bytes in between are fixed by
 * the signed edits, so hashing them again proves nothing more. Sizes and the
 * position of every inserted byte are always checked. The hashes are taken
 * in the same pass as the copy.
 *   PT_UNDO_HASH_OUT: body against c->out (HASH);
 *   PT_UNDO_HASH_IN: rebuilt input against c->in (HASH);
 *   hin (may be NULL): gets the rebuilt input's hash, not compared.
 * The input goes to dst->p (reserved as needed), *in_len bytes. On error
 * dst's contents are undefined, but dst stays valid for pt_bigbuf_free. */
#define PT_UNDO_HASH_OUT 1u
#define PT_UNDO_HASH_IN 2u
patient_err pt_change_undo(const patient_change *c, const uint8_t *body, size_t len,
                           unsigned flags, pt_bigbuf *dst, size_t *in_len,
                           uint8_t hin[PATIENT_SHA256_BYTES]);

/* pt_change_undo where the hop's output is the first len bytes of buf
 * itself: the input is rebuilt in place (no new buffer, no page faults),
 * or, when it does not fit in buf->cap, in a new buffer that replaces buf.
 * Flags and hin as for pt_change_undo (the out hash is taken first, in a
 * pass of its own). Every check that can refuse the undo (HASH, NOT_FOUND)
 * runs before the bytes change, so on those errors buf is as it was; on
 * HASH from PT_UNDO_HASH_IN, or NOMEM/CRYPTO, its contents are undefined. */
patient_err pt_change_undo_inplace(const patient_change *c, pt_bigbuf *buf, size_t len,
                                   unsigned flags, size_t *in_len,
                                   uint8_t hin[PATIENT_SHA256_BYTES]);

#endif
