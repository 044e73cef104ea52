/* Change descriptors: the signed record a middlebox attaches for every hop
 * that changes a response body, and the primitives a verifier uses to read,
 * check, chain and undo them.
 *
 * A descriptor is a JWS compact serialisation (patient/jws.h) with
 * typ "patient-change+jws", carried as one "Patient-Change: <JWS>" response
 * header per hop, in hop order. Payload, edit rules and caps are specified in
 * docs/format/change.md (the contract).
 *
 * All hashes and offsets are over the decoded representation of the body
 * (after removing any Content-Encoding; see patient/gzip.h). */
#ifndef PATIENT_CHANGE_H
#define PATIENT_CHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <patient/error.h>
#include <patient/hash.h>
#include <patient/key.h>
#include <patient/jws.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Caps. Anything larger is refused when issuing and when parsing. */
#define PATIENT_MAX_EDITS 10000                 /* edits per hop (PATIENT_ERR_LIMIT), and per log entry */
#define PATIENT_MAX_HOPS 32                     /* hops per response (PATIENT_ERR_LIMIT) */
#define PATIENT_MAX_BODY (64u * 1024 * 1024)    /* in/out body bytes (PATIENT_ERR_TOO_LARGE) */
#define PATIENT_MAX_CODE 128                    /* reason, rule: [A-Za-z0-9._-]{1,128} */
#define PATIENT_MAX_NOTE 1024                   /* note bytes (UTF-8, no control chars) */
#define PATIENT_MAX_NAME 256                    /* by.name bytes (UTF-8, no control chars) */
#define PATIENT_MAX_SERVICE 64                  /* by.service: [a-z0-9-]{1,64} */
#define PATIENT_MAX_URL 8192                    /* url, by.disclosure bytes */
#define PATIENT_MAX_TLS_FIELD 128               /* tls.version, tls.cipher bytes */
/* One header value (compact JWS) is capped by PATIENT_JWS_MAX (patient/jws.h). */

#define PATIENT_CHANGE_TYP "patient-change+jws"
#define PATIENT_CHANGE_HEADER "Patient-Change"
/* A hop that streamed the body (it could not sign before the body left)
 * sends instead one header "Patient-Change-Ref: http://HOST.invalid" +
 * PATIENT_CHANGE_REF_PATH + 32 hex digits, where it serves the descriptor
 * itself (docs/format/change.md, "Delivery by reference"). */
#define PATIENT_CHANGE_REF_HEADER "Patient-Change-Ref"
#define PATIENT_CHANGE_REF_PATH "/.well-known/patient/change/"
#define PATIENT_CHANGE_REF_MAX (1024u * 1024) /* bytes of a referenced descriptor */

/* One edit, relative to its hop's input. Used read-only by parsed
 * descriptors (pointers into the patient_change) and as input to
 * patient_edits_apply (pointers owned by the caller). */
typedef struct patient_edit {
    size_t offset;                 /* input byte offset */
    size_t delete_len;             /* input bytes deleted at offset */
    int has_deleted_hash;          /* 1 when deleted_hash is set (always when delete_len > 0
                                      in a parsed descriptor) */
    uint8_t deleted_hash[PATIENT_SHA256_BYTES]; /* SHA-256 of the deleted bytes */
    const uint8_t *deleted;        /* the deleted bytes (delete_len of them) when disclosed,
                                      else NULL */
    const uint8_t *insert;         /* inserted bytes (NULL when insert_len == 0) */
    size_t insert_len;
    const char *reason;            /* dotted code, e.g. "tracker.removed" */
    const char *rule;              /* rule id */
    const char *note;              /* free text, or NULL */
} patient_edit;

/* ---------------------------------------------------------------------
 * Issuing (middlebox side)
 *
 * begin -> add_edit* -> [set_tls] -> finish -> free. A patient_hop is used by
 * one thread at a time; different hops may be used concurrently from many
 * threads with one shared patient_seckey (no hidden static state; the key is
 * only read).
 * --------------------------------------------------------------------- */
typedef struct patient_hop patient_hop;

/* What a hop is started with: who signs it, and the response it changes.
 * PATIENT_OPTS_INIT(patient_hop_opts) (or designated initialisers: size 0
 * reads as this header's size, error.h), then set the members; the struct
 * itself is read during patient_hop_begin only. */
typedef struct patient_hop_opts {
    size_t size;             /* sizeof(patient_hop_opts) (error.h, PATIENT_OPTS_INIT) */
    /* signing key, required; BORROWED, must outlive the hop */
    const patient_seckey *sk;
    /* middlebox name, required: 1..PATIENT_MAX_NAME bytes UTF-8, no control chars */
    const char *name;
    /* required: "tracker-filter", "malware-filter", "ad-filter",
     * "content-filter", "other" or another token [a-z0-9-]{1,64} */
    const char *service;
    /* URL of the operator's disclosure.json, or NULL */
    const char *disclosure;
    /* absolute http(s) URL of the resource, required (<= PATIENT_MAX_URL) */
    const char *url;
    /* the decoded input body (<= PATIENT_MAX_BODY, else TOO_LARGE).
     * BORROWED, not copied: it must stay valid and unchanged until
     * patient_hop_finish returns (or the hop is freed). */
    const uint8_t *in;
    size_t in_len;
    /* the Patient-Change values that arrived with the response, in order
     * (already split: see patient_change_header_split), each NUL-terminated.
     * Each must parse as a descriptor (its error code otherwise); nprev >=
     * PATIENT_MAX_HOPS gives PATIENT_ERR_LIMIT. The hop number becomes
     * nprev + 1 and "prev" the SHA-256 of the last value (surrounding
     * whitespace trimmed). Signatures of earlier hops are not checked
     * (that is the endpoint's job). Read during the call only. */
    const char *const *prev;
    size_t nprev;
} patient_hop_opts;

/* Start a hop as opts says (anything missing or malformed: ARG; a size
 * larger than this library's struct: ARG). Strings are copied; sk and in
 * are borrowed as written above. *hop: free with patient_hop_free.
 * Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_begin(const patient_hop_opts *opts,
                                                         patient_hop **hop);

/* Add an edit: delete delete_len input bytes at offset and insert insert_len
 * bytes there (a replace does both). Edits may be added in any order; finish
 * sorts them. Checked now: offset + delete_len <= in_len (EDIT_RANGE), the
 * edit changes something (ARG), reason and rule [A-Za-z0-9._-]{1,128} (ARG),
 * note NULL or <= 1024 bytes UTF-8 without control characters (ARG), at most
 * PATIENT_MAX_EDITS edits (LIMIT). Overlaps are checked by finish. A refused
 * edit is not added; the hop stays usable.
 * disclose_deleted: nonzero puts the deleted bytes themselves in the
 * descriptor (so a verifier can undo the edit: "proven"); zero puts only
 * their hash ("attested"). insert, reason, rule and note are copied. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_add_edit(patient_hop *hop, size_t offset,
                                                            size_t delete_len,
                                                            const uint8_t *insert,
                                                            size_t insert_len, const char *reason,
                                                            const char *rule, const char *note,
                                                            int disclose_deleted);

/* "tls.version" of a hop whose upstream was plain HTTP. */
#define PATIENT_TLS_NONE "none"

/* Record the upstream TLS the middlebox negotiated for THIS transaction
 * (optional; e.g. "TLSv1.3", "TLS_AES_256_GCM_SHA384", verified = the
 * origin's certificate chain and name checked without error). version:
 * one patient_tls_version_rank knows, with cipher printable ASCII without
 * spaces, 1..128 bytes; or PATIENT_TLS_NONE with cipher NULL and verified
 * 0 (plain HTTP upstream). Anything else: ARG. Copied. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_set_tls(patient_hop *hop, const char *version,
                                                           const char *cipher, int verified);

/* Finish: sort and validate the edits (overlap or two edits at one offset:
 * EDIT_ORDER), build the output body, hash input and output, sign.
 *  at           the descriptor time ("at", RFC 3339 UTC).
 *  *out, *out_len  malloc'd output body (caller frees with free()).
 *  *value       malloc'd NUL-terminated header value (the compact JWS,
 *               without "Patient-Change: "); caller frees with free().
 * When no edit was added, there is NO descriptor: returns PATIENT_OK with
 * *value = NULL and *out a copy of the input (nothing changed, nothing to
 * sign; the arriving Patient-Change values pass on unchanged).
 * Output over PATIENT_MAX_BODY: TOO_LARGE; a descriptor over PATIENT_JWS_MAX
 * (e.g. too many disclosed bytes): TOO_LARGE; a change whose audit log
 * entry (the descriptor and the reasons and rules it repeats,
 * docs/format/log.md) would be longer than PATIENT_LOG_LINE_MAX
 * (patient/log.h): LIMIT. Both are refused at finish: no descriptor leaves
 * the hop (*value stays NULL).
 * Finish is final: afterwards (success or not) every call but
 * patient_hop_free gives PATIENT_ERR_STATE. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_finish(patient_hop *hop, time_t at,
                                                          uint8_t **out, size_t *out_len,
                                                          char **value);

/* Hashes of a hop's input and output taken while they stream, for
 * patient_hop_finish_output or patient_hop_finish_hashed (below): a
 * middlebox that relays the output as the input arrives hashes both on
 * the way (while it waits for the network) instead of in one pass at the
 * end, when the client is waiting. Feed every input byte (_in) and every
 * output byte (_out), each in order (or a common prefix once: _both).
 * The hashes are the caller's word for its bytes: fed anything else, the
 * descriptor it signs fails at every verifier (body.mismatch), never the
 * other way round. Not thread-safe (one per response). */
typedef struct patient_hop_hashes patient_hop_hashes;
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_hashes_new(patient_hop_hashes **hh);
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_hashes_in(patient_hop_hashes *hh,
                                                             const void *bytes, size_t len);
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_hashes_out(patient_hop_hashes *hh,
                                                              const void *bytes, size_t len);
/* Bytes that are both the next input and the next output (what passes
 * before the first edit): hashed once, counted for both. Only before the
 * first _in or _out; after them PATIENT_ERR_STATE. A body no rule
 * touches then costs one hash pass, not two. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_hashes_both(patient_hop_hashes *hh,
                                                               const void *bytes, size_t len);
/* From now on hash on another thread: _in, _out and _both only queue
 * their bytes, so a middlebox's relaying thread goes on with the next
 * read while they are hashed on another core (a large changed body costs
 * two SHA-256 passes). The bytes are then BORROWED, not copied: each span
 * must stay where it is, unchanged, until patient_hop_hashes_wait or the
 * finish that uses hh returns, whatever it returns (move or reuse a
 * buffer only after a wait). The hashing thread belongs to the calling
 * thread: made when it first queues 64 KiB (less is hashed at the wait,
 * by the caller), kept for its next responses, ended when it exits. If
 * it cannot be made, the caller hashes as before. The same digests
 * either way. Use hh from the thread that called this only, and do not
 * fork() while it is open. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_hashes_background(patient_hop_hashes *hh);
/* Returns once every byte fed so far is hashed (at once unless
 * background): their buffers may then move. The first failure, sticky. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_hashes_wait(patient_hop_hashes *hh);
/* Frees hh (accepts NULL) once its queued bytes are hashed. The hashing
 * thread is not stopped: it stays for the calling thread's next
 * responses and ends when that thread exits. */
PATIENT_EXPORT void patient_hop_hashes_free(patient_hop_hashes *hh);

/* Finish for a caller that built the output itself (a middlebox that
 * streamed it while the rules ran): as patient_hop_finish, but instead of
 * building the output it checks that out (out_len bytes, borrowed) is
 * exactly the edits' output and signs. hh NULL: input and output are
 * hashed in that same pass. hh given: its hashes are signed (it must have
 * been fed exactly in_len input and out_len output bytes, else HASH; it
 * is used up) and the pass only compares. A byte or size that differs:
 * PATIENT_ERR_HASH, nothing signed. No edit: PATIENT_OK with *value NULL
 * (out must then equal the input, else HASH). Saves a copy of the body. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_finish_output(patient_hop *hop, time_t at,
                                                                 const uint8_t *out,
                                                                 size_t out_len,
                                                                 patient_hop_hashes *hh,
                                                                 char **value);

/* Finish for a caller that never held its output in one buffer (a
 * middlebox that relays unchanged spans straight from its input buffer):
 * as patient_hop_finish_output with hh given, but with no bytes to
 * compare: out_len must be the edits' output size and hh must have been
 * fed exactly in_len input and out_len output bytes (else HASH, nothing
 * signed); hh's hashes are signed as they are (they are the caller's
 * word for its bytes, see patient_hop_hashes) and hh is used up. No edit:
 * PATIENT_OK with *value NULL when the output hashed as the input did,
 * else HASH. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_hop_finish_hashed(patient_hop *hop, time_t at,
                                                                 size_t out_len,
                                                                 patient_hop_hashes *hh,
                                                                 char **value);

/* Free a hop (accepts NULL). Never frees the borrowed input body or key. */
PATIENT_EXPORT void patient_hop_free(patient_hop *hop);

/* ---------------------------------------------------------------------
 * Reading (verifier side)
 * --------------------------------------------------------------------- */

/* A parsed, fully validated (but NOT signature-checked) descriptor. The
 * struct is public and READ-ONLY: every pointer is owned by it and lives
 * until patient_change_free. Safe to read from many threads at once. */
typedef struct patient_change {
    char *url;                                 /* "url" */
    unsigned hop;                              /* "hop", 1..PATIENT_MAX_HOPS */
    int has_prev;                              /* 1 iff hop > 1 */
    uint8_t prev[PATIENT_SHA256_BYTES];        /* "prev": SHA-256 of previous value */
    time_t at;                                 /* "at" */
    struct {
        char *name;
        uint8_t kid[PATIENT_KEYID_BYTES];      /* equals the JWS header's kid */
        char kid_hex[PATIENT_KEYID_HEX];       /* upper-case, as minisign prints it */
        char *service;
        char *disclosure;                      /* NULL when absent */
    } by;
    struct {
        uint8_t hash[PATIENT_SHA256_BYTES];
        size_t size;
    } in, out;
    patient_edit *edits;                       /* sorted, non-overlapping, in range */
    size_t nedits;                             /* 1..PATIENT_MAX_EDITS */
    int has_tls;                               /* 1 when "tls" is present */
    struct {
        char *version;                         /* ranked version or "none" */
        char *cipher;                          /* NULL when plaintext */
        int verified;
        int plaintext;                         /* 1: version "none" (plain HTTP upstream) */
    } tls;
    int disclosed;                             /* 1 when every deleted region is disclosed
                                                  (undo possible: "proven") */
    patient_jws *jws;                          /* raw JWS, for patient_jws_verify */
    char *value;                               /* the header value (trimmed), NUL-terminated */
    size_t value_len;
    uint8_t value_hash[PATIENT_SHA256_BYTES];  /* SHA-256(value): what the next hop's
                                                  "prev" must be */
    /* "chunks": the leaves of the origin's chunk tree that this hop's
     * withheld deletions touch (docs/format/change.md). Indices sorted,
     * distinct; NULL and 0 when absent. */
    uint64_t *chunk_idx;
    uint8_t (*chunk_val)[PATIENT_SHA256_BYTES];  /* "leaf" */
    uint8_t (*chunk_kept)[PATIENT_SHA256_BYTES]; /* "kept": SHA-256 of the chunk's bytes
                                                    this hop kept (docs/format/change.md) */
    size_t nchunks;
} patient_change;

/* Chunk size of the origin chunk trees (bytes): see docs/format/manifest.md. */
#define PATIENT_CHUNK_BYTES 4096u
/* Most "chunks" entries in one descriptor: every chunk of a 64 MiB body. */
#define PATIENT_MAX_CHUNKS (PATIENT_MAX_BODY / PATIENT_CHUNK_BYTES + 1)

/* Parse one header value (surrounding whitespace ignored). Checks: JWS
 * syntax and typ "patient-change+jws" (PARSE), "patient" == 1
 * (UNSUPPORTED), every field's presence, type and syntax (PARSE or JSON),
 * duplicate JSON keys (PARSE), caps (TOO_LARGE for sizes over
 * PATIENT_MAX_BODY, LIMIT for edits or hop over caps), by.kid == JWS kid
 * (PARSE), edits in range (EDIT_RANGE), sorted and non-overlapping
 * (EDIT_ORDER), base64 of insert/deleted (BASE64), disclosed bytes against
 * deleted_hash (HASH), sizes adding up: out.size == in.size - deleted +
 * inserted (PARSE). The signature is NOT verified here: call
 * patient_change_verify. *c: free with patient_change_free. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_change_parse(const char *value, size_t len,
                                                            patient_change **c);

/* Verify the signature with pk: key id first (KEY_MISMATCH), then Ed25519
 * (SIGNATURE). Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_change_verify(const patient_change *c,
                                                             const patient_pubkey *pk);

PATIENT_EXPORT void patient_change_free(patient_change *c);

/* A byte range [offset, offset + length). */
typedef struct patient_range {
    uint64_t offset, length;
} patient_range;

/* What a hop that withheld deleted bytes leaves unchecked: the origin
 * chunks its withheld deletions touch ("chunks"), adjacent ones merged, as
 * byte ranges of the origin (hop 1's input; for hop 1 the last range is
 * cut at its in.size, for a later hop a range may run past the origin's
 * end by less than a chunk). In these ranges the bytes the hop kept are
 * vouched for by its signature alone ("kept"), the withheld ones by
 * deleted_hash; every byte outside them can be checked against the
 * origin's chunk root. *withheld (may be NULL) gets the bytes the hop
 * withheld. *ranges malloc'd (NULL and 0 when the hop signed no chunks),
 * caller frees. NOMEM only. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_change_chunk_ranges(const patient_change *c,
                                                                   patient_range **ranges,
                                                                   size_t *n,
                                                                   uint64_t *withheld);

/* A slice of a caller's buffer. */
typedef struct patient_span {
    const char *p;
    size_t len;
} patient_span;

/* Split one Patient-Change header field value into descriptor values:
 * elements separated by ",", optional whitespace (SP, HTAB) around each,
 * empty elements ignored (RFC 9110 list syntax). Spans point into text (no
 * copies). *n is in/out: on entry the number of spans already in out (0 for
 * the first header line; pass the same array for every Patient-Change line
 * of a response, in order), on return the new total. More than
 * min(cap, PATIENT_MAX_HOPS) values: LIMIT. An element with characters
 * other than base64url and "." : PARSE. On error *n is unchanged.
 * Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_change_header_split(const char *text, size_t len,
                                                                   patient_span *out, size_t cap,
                                                                   size_t *n);

/* ---------------------------------------------------------------------
 * Primitives
 * --------------------------------------------------------------------- */

/* Apply edits (sorted, non-overlapping; EDIT_ORDER / EDIT_RANGE otherwise;
 * ARG for an edit that changes nothing) to in. Only offset, delete_len,
 * insert and insert_len are used. *out: malloc'd (caller frees; never NULL
 * on success, even for an empty result). Output over PATIENT_MAX_BODY:
 * TOO_LARGE. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_edits_apply(const uint8_t *in, size_t len,
                                                           const patient_edit *edits, size_t n,
                                                           uint8_t **out, size_t *out_len);

/* Check that body is this hop's output: size and SHA-256 equal "out"
 * (HASH), and each edit's inserted bytes sit where the edits say (HASH).
 * Works for undisclosed ("attested") hops too. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_change_check_output(const patient_change *c,
                                                                   const uint8_t *body,
                                                                   size_t len);

/* Reconstruct this hop's input from its output. Order of checks:
 * patient_change_check_output (HASH); every deleted region disclosed, else
 * PATIENT_ERR_NOT_FOUND (the output was checked, but the input cannot be
 * recovered: a verifier reports the hop "attested", not "proven");
 * reconstructed input against in.size / in hash (HASH).
 * *in: malloc'd (caller frees), never NULL on success. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_change_undo(const patient_change *c,
                                                           const uint8_t *body, size_t len,
                                                           uint8_t **in, size_t *in_len);

/* Structural links of a whole chain (signatures are not checked here), in
 * this order for each index k = 0..n-1: url equal (byte-exact) to the
 * requested url (ORIGIN); hop == k + 1 (CHAIN); for k > 0, prev ==
 * value_hash of changes[k-1] (CHAIN) and in == out of changes[k-1] (size
 * and hash; CHAIN). n > PATIENT_MAX_HOPS: LIMIT. On failure *bad (if not
 * NULL) gets the 0-based index of the failing descriptor (n for LIMIT);
 * on success it is left alone. n == 0 is OK. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_chain_check(const patient_change *const *changes,
                                                           size_t n, const char *url,
                                                           size_t *bad);

#ifdef __cplusplus
}
#endif
#endif
