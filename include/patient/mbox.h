/* The reference middlebox pipeline, shared by the c-icap service
 * (srv_patient) and the filter CLI (patient-mbox): decode the body, apply
 * the rules, issue a signed change descriptor for the hop, append it to the
 * audit log, re-encode.
 *
 * A middlebox vendor with its own matching logic uses patient/change.h
 * directly; this is the glue for rule-driven middleboxes. */
#ifndef PATIENT_MBOX_H
#define PATIENT_MBOX_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <patient/error.h>
#include <patient/change.h>
#include <patient/key.h>
#include <patient/log.h>
#include <patient/rules.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct patient_mbox patient_mbox;

/* Configure a middlebox. sk, rules and log are BORROWED (must outlive the
 * mbox); log may be NULL (no audit log). name, service, disclosure
 * (NULL allowed) are copied. max_body: bodies larger than this (decoded)
 * pass unchanged and, with a log, an event "body.too_large" is logged;
 * 0 = PATIENT_MAX_BODY. Free with patient_mbox_free. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_mbox_new(const patient_seckey *sk, const char *name,
                                                        const char *service,
                                                        const char *disclosure,
                                                        const patient_rules *rules,
                                                        patient_log *log, size_t max_body,
                                                        patient_mbox **out);
PATIENT_EXPORT void patient_mbox_free(patient_mbox *mb);

typedef struct patient_mbox_result {
    int changed;        /* 1 when the body was edited and a descriptor issued */
    uint8_t *body;      /* changed body (encoded like the input), malloc'd; NULL
                           when unchanged: the caller sends the body it passed
                           in (an unchanged body is never copied) */
    size_t len;         /* of body; 0 when unchanged */
    char *value;        /* the new Patient-Change value (malloc'd), NULL if unchanged */
    size_t nedits;      /* edits in this hop */
    uint64_t log_seq;   /* audit log entry of the descriptor (when logged) */
    uint64_t durable_at; /* deferred sync: the mark for patient_mbox_wait_durable */
    const char *skipped; /* why the body passed untouched without looking
                            (static string: "body.too_large", "encoding.unsupported",
                            "patient.well_known", "no.rules.matched", "rules.limit"),
                            else NULL */
} patient_mbox_result;

/* The upstream TLS of one transaction, as the proxy negotiated it. */
typedef struct patient_tls_facts {
    char version[PATIENT_MAX_TLS_FIELD + 1]; /* "TLSv1.3", or PATIENT_TLS_NONE */
    char cipher[PATIENT_MAX_TLS_FIELD + 1];  /* "" when plaintext */
    int verified;                            /* chain and name checked, no error */
} patient_tls_facts;

/* One response as it passes the middlebox. PATIENT_OPTS_INIT(patient_mbox_input)
 * (or designated initialisers: size 0 reads as this header's size,
 * error.h), then set the members. Everything is BORROWED for the call of
 * patient_mbox_process only. */
typedef struct patient_mbox_input {
    size_t size;                  /* sizeof(patient_mbox_input) (error.h, PATIENT_OPTS_INIT) */
    const char *url;              /* required: the absolute URL requested */
    const char *media_type;       /* Content-Type, or NULL */
    /* Content-Encoding: NULL, "identity", "gzip" and "x-gzip" are handled;
     * others, "deflate" included, pass the body unchanged with skipped =
     * "encoding.unsupported" */
    const char *content_encoding;
    const uint8_t *body;          /* the body as received (still encoded) */
    size_t len;
    /* the Patient-Change values that arrived, split, in order */
    const char *const *prev;
    size_t nprev;
    /* the TLS the proxy negotiated upstream for this very transaction,
     * never a configured value; recorded in the descriptor. NULL: nothing
     * known, no "tls" member. */
    const patient_tls_facts *tls;
    time_t now;                   /* the descriptor's time ("at") */
} patient_mbox_input;

/* Process one response body (in: see above; NULL, a missing url, a body
 * NULL with len > 0 or a size larger than this library's struct: ARG).
 * Responses under /.well-known/patient/ are never changed (they are
 * the signatures endpoints check against). When rule matching reaches its
 * work limit (patient/rules.h, "limits") the body passes unchanged with
 * skipped = "rules.limit" and, with a log, an event "rules.limit" is
 * logged: no rule is ever half applied. When the log append fails the
 * descriptor is NOT released: the call fails with the log's error and the
 * caller must pass the original body unchanged (every change is logged, or
 * none is made). Thread-safe: many threads may process through one mbox. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_mbox_process(patient_mbox *mb,
                                                            const patient_mbox_input *in,
                                                            patient_mbox_result *res);

/* Deferred durability (off by default; set before the mbox is shared):
 * patient_mbox_process then returns a change once its log entry is
 * written, before the log's fdatasync (LogSync each), and the caller MUST
 * call patient_mbox_wait_durable, and see it succeed, before the last
 * byte of the changed response leaves -- so that the sync runs while the
 * headers and most of the body are on their way. A failed wait means the
 * entry may be lost: the response must not complete (abort it). */
PATIENT_EXPORT void patient_mbox_set_deferred_sync(patient_mbox *mb, int on);
PATIENT_EXPORT PATIENT_WUR patient_err patient_mbox_wait_durable(patient_mbox *mb,
                                                                 const patient_mbox_result *res);

/* Read the facts Squid passes per transaction with adaptation_meta
 * (%ssl::<negotiated_version, %ssl::<negotiated_cipher,
 * %ssl::<cert_errors; Squid sends "-" for "none"): version "TLS/1.3" ->
 * "TLSv1.3" (TLS/1.0 -> "TLSv1", SSL/3.0 -> "SSLv3"); verified only when the
 * error list is "-". url decides what "-" means: for http:// the upstream
 * was plain (PATIENT_TLS_NONE); for https:// Squid did not say, and nothing
 * is claimed. Returns PATIENT_OK (*out filled), PATIENT_ERR_NOT_FOUND (a
 * value missing, or https:// without a version: record no "tls" member),
 * PATIENT_ERR_PARSE (a version other than those, a cipher that is not a
 * token, an error list over 4096 bytes). Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_tls_facts_from_squid(const char *url,
                                                                    const char *version,
                                                                    const char *cipher,
                                                                    const char *cert_errors,
                                                                    patient_tls_facts *out);

/* Free the result's buffers (not the struct). Accepts NULL. */
PATIENT_EXPORT void patient_mbox_result_free(patient_mbox_result *res);

/* ---- The HTTP response around the body (lib/mbox_http.c) ----------------
 * What every middlebox must know whatever proxy it runs in, so that
 * srv_patient, patient-mbox and other vendors' middleboxes agree. */

/* Change a response marked Cache-Control: no-transform anyway (an
 * operator's explicit choice; the default honours RFC 9111 5.2.2.6). */
#define PATIENT_MBOX_IGNORE_NO_TRANSFORM 1u

/* May a middlebox change this response at all? status: its HTTP status
 * code; cache_control: its Cache-Control value (NULL when absent); flags:
 * 0 or PATIENT_MBOX_IGNORE_NO_TRANSFORM. Returns NULL when it may, else why
 * not, as a static string: "partial content" (206: the body is a byte
 * range of a representation the middlebox never saw whole) or
 * "Cache-Control: no-transform" (the token, case-insensitive, as one
 * directive of the list). Thread-safe. */
PATIENT_EXPORT const char *patient_mbox_may_change(int status, const char *cache_control,
                                                   unsigned flags);

/* The response headers a middlebox must remove (every instance) before it
 * releases a changed body: Content-Length (the caller sets the new length),
 * the validators and digests of the origin's bytes, which the response no
 * longer carries (ETag, Content-MD5, Digest, Content-Digest, Repr-Digest,
 * Unencoded-Digest; the origin's hash stays in the descriptor's "in"), and
 * Accept-Ranges (ranges of the changed body are not ranges of the origin's).
 * A NULL-terminated static array, Content-Length first. Thread-safe. */
PATIENT_EXPORT const char *const *patient_mbox_drop_headers(void);

/* The ICAP ISTag of a middlebox (RFC 3507 4.7: it changes when the service
 * would adapt differently, so caches in front drop what it adapted
 * before): "pt1-" and the first 20 hex digits of SHA-256(key id ‖ public
 * key ‖ name ‖ NUL ‖ SHA-256 of the rule file), the rule file's hash being
 * that of the bytes rules was parsed from (patient_rules_sha256), never a
 * second read of the file. out gets 24 characters and a NUL.
 * PATIENT_ERR_ARG for a NULL argument, PATIENT_ERR_NOMEM. Thread-safe. */
#define PATIENT_MBOX_ISTAG_BYTES 25
PATIENT_EXPORT PATIENT_WUR patient_err patient_mbox_istag(const patient_pubkey *pk,
                                                          const char *name,
                                                          const patient_rules *rules,
                                                          char out[PATIENT_MBOX_ISTAG_BYTES]);

/* ---- descriptors delivered by reference (docs/format/change.md) -------
 * A middlebox that streams a changed body keeps each descriptor as a file
 * named by its reference id in one folder, to serve it while endpoints
 * fetch it; the audit log holds the same descriptor for good. A file is
 * locked (flock, shared) by the response that refers to it for as long as
 * that response is in flight: pruning never removes a locked file. */

/* Store value (the compact JWS) as dir/id, atomically (temporary file,
 * rename: a reader never sees half of one), mode 0600, no symlinks
 * followed. id: 1-64 lower-case hex digits. *lock_fd: an open descriptor
 * holding the shared lock, taken before the name appears; the caller
 * closes it once the response is complete (or abandoned). No fsync: the
 * audit log, synced before this, is the durable record. Errors: ARG (bad
 * id), IO (errno kept). Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_refdir_store(const char *dir, const char *id,
                                                            const char *value, int *lock_fd);

/* Withdraw what patient_refdir_store stored as dir/id for a response that
 * was abandoned: the name is removed and *lock_fd (if >= 0) closed and set
 * to -1. A name that is already gone is not an error. Errors: ARG (bad
 * id), IO (errno kept); *lock_fd is closed either way. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_refdir_remove(const char *dir, const char *id,
                                                             int *lock_fd);

/* Remove descriptors from dir that are older than max_age seconds (by
 * mtime, against now; 0: no age limit) and, while more than max_count
 * remain (0: no count limit), the oldest beyond it; files some response
 * still holds locked stay. Temporary files left by a crash (id.tmp) go
 * after an hour. Only names of 1-64 lower-case hex digits (and their .tmp)
 * are touched; other entries, symlinks and non-regular files are left.
 * *removed (may be NULL): how many went. Thread- and process-safe (several
 * may prune one folder at once). Errors: IO when dir cannot be read. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_refdir_prune(const char *dir, time_t now,
                                                            uint64_t max_age, size_t max_count,
                                                            size_t *removed);

#ifdef __cplusplus
}
#endif
#endif
