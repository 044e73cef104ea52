/* Inspection: say what a PATIENT artefact is and what it claims, without
 * trusting it. For monitors, middlebox vendors and support desks that are
 * handed a file or a header value and want to know what it is before they
 * verify it (with patient/verify.h, patient/log.h, patient/policy.h ...).
 *
 * Recognised by content, never by a name: public and secret key files,
 * RW... key strings, minisign signatures, manifests and their shards,
 * Patient-Change and Patient-Origin values or whole header lines, checkpoint
 * JWS, disclosures, trust policies, rule files, evidence bundles,
 * verification reports, audit log lines and whole audit logs.
 *
 * NOTHING IS VERIFIED: no signature, hash chain or Merkle root is checked,
 * and a signed artefact always says so (PATIENT_INSPECT_NOT_VERIFIED in both
 * renderings). What an inspection shows is what the bytes claim. Secret
 * key files show only public facts: encrypted or not, and when not, the key
 * id and public key; never a secret byte.
 *
 * Each artefact is read by the library's own reader for its format
 * (patient/key.h for minisign files, patient/jws.h and patient/change.h for
 * descriptors, the patient/log.h iterator for logs on disk), so what
 * inspection says of a file is what the verifier will read in it.
 *
 * The result is rendered once, here, as the JSON document of
 * `patient inspect --json` and as its text; the JSON form is the one to
 * parse: {"patient": 1, "type": "inspect", "input", "kind", "title",
 * "signed", "verified": false, "note", "details", "error"}. */
#ifndef PATIENT_INSPECT_H
#define PATIENT_INSPECT_H

#include <stddef.h>
#include <patient/change.h>
#include <patient/error.h>
#include <patient/log.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most of an input worth reading: beyond it only an audit log (streamed
 * from its path, opts.path) is recognised, other input is refused. */
#define PATIENT_INSPECT_MAX (64u * 1024 * 1024)
/* What every signed artefact's rendering says. */
#define PATIENT_INSPECT_NOT_VERIFIED "not verified: inspect does not check signatures"

typedef struct patient_inspection patient_inspection;

/* PATIENT_OPTS_INIT(patient_inspect_opts) (or designated initialisers: size
 * 0 reads as this header's size, error.h); read during patient_inspect only. */
typedef struct patient_inspect_opts {
    size_t size;
    /* The file the bytes were read from, or NULL (stdin, a buffer). An
     * audit log with a path is read again from it by the log iterator, in
     * bounded memory whatever its size; without one, from the bytes. */
    const char *path;
    /* 1 when data is only the first PATIENT_INSPECT_MAX bytes of a longer
     * input. */
    int head_only;
} patient_inspect_opts;

/* Inspect len bytes at data (BORROWED, not kept once this returns). opts
 * may be NULL (no path, whole input). PATIENT_OK: recognised. A refusal (not
 * a PATIENT artefact, truncated, binary, unparseable: the exact reason in
 * patient_inspection_error) gives PATIENT_ERR_PARSE with *out still set, so
 * that it can be rendered. Other codes (PATIENT_ERR_NOMEM, PATIENT_ERR_ARG)
 * leave *out NULL. The caller frees *out with patient_inspection_free.
 * Out of memory parsing a JWS payload is NOMEM (in a program that called
 * patient_json_track_nomem, error.h); the outer JSON document and an audit
 * log's lines are parsed with cJSON directly (lib/inspect.c,
 * lib/inspect_log.c), where it still reads as JSON that does not parse.
 * Thread-safe (no shared state). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_inspect(const void *data, size_t len,
                                                       const patient_inspect_opts *opts,
                                                       patient_inspection **out);
/* A refusal for input that could not be read at all (read_err, from the
 * caller's read), rendered like any other: "cannot read: <message> [<name>]".
 * PATIENT_ERR_NOMEM leaves *out NULL; otherwise PATIENT_OK. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_inspect_unreadable(patient_err read_err,
                                                                  patient_inspection **out);

/* Accessors: strings are owned by r and live until patient_inspection_free.
 * kind: a stable name ("public-key", "secret-key", "minisign-signature",
 * "manifest", "manifest-shard", "change", "origin", "checkpoint", "jws",
 * "disclosure", "policy", "rules", "bundle", "report", "change-payload",
 * "origin-payload", "audit-log"), NULL when refused. title: one line for
 * people, NULL when refused. signed: 1 when the artefact carries or names a
 * signature (not checked). error: why it was refused, one sentence, NULL
 * when recognised. */
PATIENT_EXPORT const char *patient_inspection_kind(const patient_inspection *r);
PATIENT_EXPORT const char *patient_inspection_title(const patient_inspection *r);
PATIENT_EXPORT int patient_inspection_signed(const patient_inspection *r);
PATIENT_EXPORT const char *patient_inspection_error(const patient_inspection *r);

/* Renderings, NUL-terminated, malloc'd: the caller frees them with free.
 * input names the input in them (a path, "-"); NULL when out of memory.
 * _json: the JSON document above (tab-indented, as cJSON prints), without
 * a final newline; "kind" null and "error" set when refused. _text: for
 * people, "<input>: <title>", the not-verified line when signed, then the
 * details as an indented tree, each line ending in "\n" (control characters
 * in the artefact's strings shown as '?'); "-" is named "(stdin)". Refused:
 * _text gives NULL with errno EINVAL (say patient_inspection_error). */
PATIENT_EXPORT char *patient_inspection_json(const patient_inspection *r, const char *input);
PATIENT_EXPORT char *patient_inspection_text(const patient_inspection *r, const char *input);

PATIENT_EXPORT void patient_inspection_free(patient_inspection *r);

/* A change entry of an audit log (patient/log.h, as the iterator read it)
 * as `patient audit list --json` shows it: one line of compact JSON, no
 * newline, {log, line, seq, time, url, hop, middlebox {name, kid},
 * reasons[], rules[] (one per edit), edits, deleted, inserted, tls (the
 * entry's "tls" string or null)}; log names the log (NULL: ""). With
 * PATIENT_INSPECT_ENTRY_CHUNKS in flags, also "chunks", read from the
 * entry's descriptor by the change reader: null when the hop withheld no
 * deleted bytes, "unreadable" when the descriptor does not read (nothing is
 * verified), else {touched (origin chunks), withheld (bytes), unchecked
 * [{offset, length}]}: the origin byte ranges the hop's chunks leave
 * unchecked (patient_change_chunk_ranges, patient/change.h), as inspection
 * shows them. malloc'd (free), NULL when out of memory or e is NULL. */
#define PATIENT_INSPECT_ENTRY_CHUNKS 1u
PATIENT_EXPORT char *patient_inspect_log_entry_json(const patient_log_entry *e, const char *log,
                                                    unsigned flags);

/* The CHUNKS column of `patient audit list --chunks` for change entry e,
 * read from the descriptor as the "chunks" member above: "-" when the hop
 * withheld nothing, "unconfined" when it withheld bytes and signed no
 * chunks, else "N:FIRST-LAST,..." (N origin chunks touched, then the
 * unchecked origin byte ranges, inclusive), cut with ",.." to fit cap; "?"
 * when the descriptor does not read, out is NULL or cap is below 8.
 * Returns out (written, NUL-terminated) or a static string. */
PATIENT_EXPORT const char *patient_inspect_log_entry_chunks(const patient_log_entry *e,
                                                            char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
