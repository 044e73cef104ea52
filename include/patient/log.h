/* The middlebox audit log: append-only JSON Lines, hash-chained, with signed
 * RFC 9162 Merkle checkpoints. Format contract: docs/format/log.md.
 *
 * Writers: patient_log_open / _append_change / _append_event /
 * _checkpoint / _close. Several threads may share one handle, and several
 * processes may append to the same file: every append takes a mutex and an
 * exclusive flock(2), first reads any lines other processes appended, then
 * writes the whole line with one write(2). An entry is committed when the
 * append call returns PATIENT_OK (by default after fdatasync).
 *
 * Readers work on a path and stream in bounded memory: patient_log_verify,
 * the iterator, patient_log_proof; patient_log_proof_verify needs no log. */
#ifndef PATIENT_LOG_H
#define PATIENT_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <patient/change.h>
#include <patient/error.h>
#include <patient/hash.h>
#include <patient/key.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest line accepted (a change entry carries a whole JWS). */
#define PATIENT_LOG_LINE_MAX (1024u * 1024 + 64u * 1024)
#define PATIENT_LOG_CHECKPOINT_EVERY 1000u
/* Caps on what append_event accepts. */
#define PATIENT_LOG_EVENT_MAX 64
#define PATIENT_LOG_DETAIL_MAX 4096
#define PATIENT_LOG_URL_MAX 8192
/* Most edits (reasons) denormalised from one change: the descriptor's own
 * cap. An entry copies one descriptor, so it must hold every descriptor a
 * verifier accepts; a lower cap here let a hop be signed whose entry was
 * then refused, after the change was made. */
#define PATIENT_LOG_EDITS_MAX PATIENT_MAX_EDITS

typedef struct patient_log patient_log;

/* Open (creating, mode 0600) the log at path for appending; refuses
 * symlinks and non-regular files (PATIENT_ERR_UNSAFE_PATH). Scans the file
 * once (streaming) to learn the last seq, the last line's hash and the
 * Merkle frontier. A torn tail (the one append that was in flight when a
 * writer died: a last line without "\n", or a last line that is not JSON)
 * is cut off and a "log.repaired" event is appended; any other damage fails
 * with the verify error codes (PATIENT_ERR_CHAIN, PATIENT_ERR_LOG_CORRUPT)
 * and the file is left untouched.
 *
 * sk signs checkpoints; it is borrowed and must outlive the handle. With sk
 * NULL the log is opened read-only: nothing is repaired and every append
 * returns PATIENT_ERR_STATE. checkpoint_every: 0 means
 * PATIENT_LOG_CHECKPOINT_EVERY. Free with patient_log_close. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_open(const char *path,
                                                        const patient_seckey *sk,
                                                        unsigned checkpoint_every,
                                                        patient_log **out);

/* Durability. PATIENT_LOG_SYNC_EACH (default): an append returns only
 * after its line is on disk (fdatasync), with group commit: concurrent
 * appenders on one handle share one fdatasync (the first to find none
 * running syncs for everyone written by then; the rest wait for it, never
 * for a timer), so N threads appending at once cost about one sync per
 * batch, not N. PATIENT_LOG_SYNC_CHECKPOINT: fdatasync only after each
 * checkpoint and at close (a power loss may lose acknowledged entries
 * since the last checkpoint; a process crash loses nothing, since write(2)
 * has handed the line to the kernel). PATIENT_LOG_SYNC_NONE: never (tests). */
#define PATIENT_LOG_SYNC_EACH 0
#define PATIENT_LOG_SYNC_CHECKPOINT 1
#define PATIENT_LOG_SYNC_NONE 2
PATIENT_EXPORT patient_err patient_log_set_sync(patient_log *log, int mode);
/* Entries this handle appended (checkpoints included) and fdatasync calls
 * its group commit made, since open; either pointer may be NULL. With
 * concurrent appenders, syncs < appends is group commit at work.
 * Thread-safe. */
PATIENT_EXPORT void patient_log_stats(patient_log *log, uint64_t *appends, uint64_t *syncs);

/* 1 while this handle's group commit (PATIENT_LOG_SYNC_EACH) is busy: an
 * fdatasync running or appenders of this handle waiting for one; else 0
 * (also for NULL). A hint for scheduling, never for durability: it may
 * change as soon as it is read. A line written while it is 1 most likely
 * waits for a sync that starts after the running one. */
PATIENT_EXPORT int patient_log_sync_busy(patient_log *log);

/* Append the change descriptor jws (a compact "Patient-Change" JWS) as a
 * "change" entry; the denormalised fields (url, hop, time, by, reasons,
 * rules, deleted, inserted) are taken from its payload. The JWS signature
 * is not checked here (the caller just made it). *seq (may be NULL) gets
 * the entry's seq. May also write an automatic checkpoint. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_append_change(patient_log *log,
                                                                 const char *jws,
                                                                 uint64_t *seq);
/* The same entry for the descriptor hop just signed (patient_hop_finish or
 * patient_hop_finish_output returned it as *value), with the fields taken
 * from the hop instead of parsing the JWS again: what a middlebox that
 * built the descriptor calls. PATIENT_ERR_STATE when the hop signed
 * nothing. The hop is only read. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_append_hop(patient_log *log,
                                                              const patient_hop *hop,
                                                              uint64_t *seq);
/* As patient_log_append_hop, but with LogSync each it returns once the
 * entry is written, before it is durable: *durable_at gets the mark to
 * pass to patient_log_wait_durable, which the caller MUST call, and see
 * succeed, before the change may complete (its last byte leaves). Lets a
 * middlebox send most of a changed response while the fdatasync runs
 * (group commit as for every append). With the other sync modes, or on
 * error, *durable_at is 0. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_append_hop_deferred(patient_log *log,
                                                                       const patient_hop *hop,
                                                                       uint64_t *seq,
                                                                       uint64_t *durable_at);
/* Return once the log is durable up to durable_at (from
 * patient_log_append_hop_deferred; 0 returns at once): PATIENT_OK, or
 * PATIENT_ERR_IO when an fdatasync failed (the entry may be lost: the
 * change must not complete). Thread-safe; may block for one fdatasync. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_wait_durable(patient_log *log,
                                                                uint64_t durable_at);
/* Start the fdatasync that makes the log durable up to durable_at (from
 * patient_log_append_hop_deferred) now, on a thread of the handle's own,
 * and return at once: the caller does what may precede durability (sends
 * a changed response's first bytes) while the disk works, then calls
 * patient_log_wait_durable as it must. Only a hint, never a promise of
 * durability: nothing happens when a sync is already running (the wait
 * leads the next one, as without it), when the mark is durable already,
 * or when the thread cannot start. Thread-safe. A handle carried over
 * fork(2) must not be used in the child; open a new handle
 * (docs/format/log.md). */
PATIENT_EXPORT void patient_log_sync_ahead(patient_log *log, uint64_t durable_at);
/* Append an "event" entry (e.g. "body.too_large": the body passed
 * unchanged). event: 1..64 of [a-z0-9._-]; url, detail may be NULL.
 * Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_append_event(patient_log *log,
                                                                const char *event,
                                                                const char *url,
                                                                const char *detail,
                                                                uint64_t *seq);
/* Append a signed checkpoint over every entry before it (even when the last
 * entry already is one). *seq (may be NULL) gets its seq. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_checkpoint(patient_log *log, uint64_t *seq);
/* Entries in the log as this handle last saw it (= next seq). */
PATIENT_EXPORT uint64_t patient_log_size(patient_log *log);
/* Bytes cut off as a torn tail when opening (0 if none). */
PATIENT_EXPORT uint64_t patient_log_repaired_bytes(const patient_log *log);
/* Write a final checkpoint if the log does not already end with one (and
 * the handle is writable and the log non-empty), sync, close, free.
 * Accepts NULL. Returns the error of that last checkpoint, if any; the
 * handle is freed either way. Not concurrently with other calls. */
PATIENT_EXPORT patient_err patient_log_close(patient_log *log);

/* ---- Verification ---------------------------------------------------- */

typedef enum patient_log_tamper {
    PATIENT_LOG_INTACT = 0,
    PATIENT_LOG_EDITED = 1,    /* a line's bytes changed (chain or fields)  */
    PATIENT_LOG_REMOVED = 2,   /* a seq is missing                          */
    PATIENT_LOG_REORDERED = 3, /* the missing seq appears later             */
    PATIENT_LOG_INSERTED = 4,  /* a seq appears again (duplicate/extra line)*/
    PATIENT_LOG_TRUNCATED = 5, /* torn last line, or shorter than a trusted
                                  checkpoint / without a final checkpoint   */
    PATIENT_LOG_REWRITTEN = 6, /* chain intact but a checkpoint root differs:
                                  entries were changed and re-chained       */
    PATIENT_LOG_FORGED = 7,    /* a signature does not verify / wrong key   */
    PATIENT_LOG_MALFORMED = 8  /* not a log entry we understand             */
} patient_log_tamper;

/* "intact", "edited", "removed", ... Never NULL. */
PATIENT_EXPORT const char *patient_log_tamper_name(patient_log_tamper t);

typedef struct patient_log_verify_opts {
    size_t size; /* sizeof(patient_log_verify_opts) (error.h, PATIENT_OPTS_INIT) */
    /* Pinned log/middlebox key. NULL: signatures are not checked (the
     * report says so) but everything else is. */
    const patient_pubkey *pub;
    /* Also check every change entry: its denormalised members equal its
     * descriptor's payload and (with pub) its JWS verifies, ~36 µs each.
     * Default: hash chain, Merkle roots, checkpoint signatures only. */
    int deep;
    /* A checkpoint obtained elsewhere (e.g. from a central auditor): the
     * log must have at least trusted_size entries and the MTH of the first
     * trusted_size must equal trusted_root. */
    int have_trusted;
    uint64_t trusted_size;
    uint8_t trusted_root[PATIENT_SHA256_BYTES];
    /* Treat a log that does not end with a checkpoint as truncated. */
    int require_final_checkpoint;
} patient_log_verify_opts;

typedef struct patient_log_report {
    patient_err result;        /* also the return value of verify */
    patient_log_tamper tamper; /* PATIENT_LOG_INTACT when result is OK */
    uint64_t line;             /* 1-based line of the first bad entry (0: n/a) */
    uint64_t seq;              /* seq of that entry (valid when has_seq) */
    int has_seq;
    char message[256];         /* what is wrong, one sentence */
    char expected[160], found[160]; /* may be "" */
    /* Counts over the lines read (up to the first problem). */
    uint64_t entries, changes, events, checkpoints;
    uint64_t last_checkpoint_seq;  /* its tree_size; valid if checkpoints */
    uint8_t last_checkpoint_root[PATIENT_SHA256_BYTES];
    uint64_t unsigned_tail;        /* entries after the last checkpoint */
    int signatures_checked;        /* checkpoint signatures (pub given) */
    int entry_signatures_checked;  /* every change JWS (deep) */
    char log_id[65];               /* hex SHA-256 of line 0, "" if empty */
} patient_log_report;

/* Verify the log at path, streaming, in bounded memory. opts may be NULL
 * (no key, not deep). Always fills *report; returns report->result:
 * PATIENT_OK, or for tampering: PATIENT_ERR_CHAIN (edited, removed,
 * reordered, inserted), PATIENT_ERR_LOG_CORRUPT (truncated, rewritten,
 * malformed), PATIENT_ERR_SIGNATURE / PATIENT_ERR_KEY_MISMATCH (forged);
 * PATIENT_ERR_IO / NOT_FOUND / UNSAFE_PATH for the file itself;
 * PATIENT_ERR_NOMEM with no tamper class when memory ran out reading a
 * checkpoint's or (deep) a change's descriptor. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_verify(const char *path,
                                                          const patient_log_verify_opts *opts,
                                                          patient_log_report *report);

/* ---- Iteration (no verification; see patient_log_verify) ------------- */

typedef enum patient_log_kind {
    PATIENT_LOG_KIND_CHANGE = 1,
    PATIENT_LOG_KIND_CHECKPOINT = 2,
    PATIENT_LOG_KIND_EVENT = 3
} patient_log_kind;

/* One entry. Every pointer stays valid until the next _next or _close.
 * Strings are NUL-terminated; fields that do not apply to the kind are
 * NULL / 0. */
typedef struct patient_log_entry {
    uint64_t line_no; /* 1-based */
    uint64_t seq;
    patient_log_kind kind;
    time_t time;
    const char *time_str;
    const char *url;           /* change; event (may be NULL) */
    long long hop;             /* change */
    const char *by_name;       /* change */
    const char *by_kid;        /* change: 16 hex digits */
    const char *const *reasons;/* change: one per edit, in edit order; none
                                  is NULL (the reader refuses a non-string) */
    const char *const *rules;  /* change: rule id per edit ("" if none; never NULL) */
    size_t n_edits;
    uint64_t deleted, inserted;/* change: byte totals over the edits */
    const char *jws;           /* change: the signed descriptor */
    const char *tls;           /* change: the descriptor's upstream TLS, "TLSv1.3 CIPHER
                                  verified" / "... unverified", or "none" (plain HTTP
                                  upstream); NULL when the descriptor records none */
    const char *event;         /* event */
    const char *detail;        /* event (may be NULL) */
    uint64_t tree_size;        /* checkpoint */
    const char *root;          /* checkpoint: base64 MTH */
    const char *sig;           /* checkpoint: JWS */
    const char *raw;           /* the exact line, without "\n" */
    size_t raw_len;
} patient_log_entry;

typedef struct patient_log_iter patient_log_iter;

/* Open path for reading (refuses symlinks). Free with _close. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_iter_open(const char *path,
                                                             patient_log_iter **out);
/* Next entry in file order; *entry = NULL at the end. A last line without
 * "\n" (a torn, uncommitted append) is not returned. A line that is not a
 * well-formed entry gives PATIENT_ERR_LOG_CORRUPT (patient_log_iter_line
 * says where). One thread per iterator. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_iter_next(patient_log_iter *it,
                                                             const patient_log_entry **entry);
/* Byte counts of each edit of a change entry, in edit order, read from its
 * descriptor exactly as the writer and the verifier read it (so they sum to
 * the entry's deleted/inserted totals). deleted and inserted have room for
 * e->n_edits values each. PATIENT_ERR_ARG for another kind of entry;
 * PATIENT_ERR_PARSE (or the descriptor's error) when the descriptor does not
 * read so, with both arrays zeroed: such an entry does not verify either.
 * Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_entry_edit_bytes(const patient_log_entry *e,
                                                                    uint64_t *deleted,
                                                                    uint64_t *inserted);
/* A change entry's upstream TLS (its "tls" member, docs/format/log.md)
 * split as the writer joined it. version points into e->tls (version_len
 * bytes, not NUL-terminated there): "TLSv1.3" ..., or "none" with
 * plaintext 1 (a plain-HTTP upstream); verified: the descriptor says the
 * upstream certificate was verified. PATIENT_ERR_NOT_FOUND when the entry
 * records none (e->tls NULL); PATIENT_ERR_PARSE when e->tls is not in the
 * writer's form (show it as it is). *out is zeroed first. Thread-safe. */
typedef struct patient_log_tls {
    const char *version;
    size_t version_len;
    int plaintext;
    int verified;
} patient_log_tls;
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_entry_tls(const patient_log_entry *e,
                                                             patient_log_tls *out);
/* Line number of the last line read. */
PATIENT_EXPORT uint64_t patient_log_iter_line(const patient_log_iter *it);
PATIENT_EXPORT void patient_log_iter_close(patient_log_iter *it);

/* ---- Inclusion proofs (RFC 9162 §2.1.3) ------------------------------ */

/* Inclusion proof for the entry with this seq against the latest checkpoint
 * that covers it, as one compact JSON object (format in docs/format/log.md;
 * caller frees with free()). Streams the log twice, O(log^2 n) memory.
 * leaf_line not NULL (`patient audit proof --leaf-out`): also the line
 * proved (line seq of the log, the bytes its leaf_hash is of) and a "\n",
 * malloc'd (caller frees), *leaf_len its length without the NUL; leaf_len
 * must then not be NULL (PATIENT_ERR_ARG). PATIENT_ERR_NOT_FOUND when no
 * checkpoint covers seq yet; PATIENT_ERR_LOG_CORRUPT when the entries do
 * not hash to that checkpoint's root. On error *proof_json and *leaf_line
 * are NULL. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_proof(const char *path, uint64_t seq,
                                                         char **proof_json, char **leaf_line,
                                                         size_t *leaf_len);
/* Check a proof on its own: leaf_line is the entry's exact line (a trailing
 * "\n" is ignored) and must carry the proof's leaf_index as its seq
 * (PATIENT_ERR_ARG otherwise); the audit path must lead to the root
 * (PATIENT_ERR_HASH otherwise); the checkpoint JWS must name the same
 * log_id, tree_size and root (PATIENT_ERR_LOG_CORRUPT) and verify under pub
 * (PATIENT_ERR_KEY_MISMATCH, PATIENT_ERR_SIGNATURE). pub NULL skips only
 * that last signature check; a tool must then say so. Malformed proof:
 * PATIENT_ERR_PARSE; out of memory reading it, the line or the
 * checkpoint: PATIENT_ERR_NOMEM, never another verdict. head not NULL:
 * what the proof claims, as patient_log_proof_head_read gives it, from the
 * same read (for the report: the proof is parsed once), filled whatever
 * the verdict once the proof reads; zeroed when it does not (PARSE,
 * TOO_LARGE, ARG) or on NOMEM. The caller frees it with
 * patient_log_proof_head_free whatever the result. Thread-safe. */
struct patient_log_proof_head;
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_proof_verify(
    const char *proof_json, size_t proof_len, const char *leaf_line, size_t leaf_len,
    const patient_pubkey *pub, struct patient_log_proof_head *head);
/* What a proof claims, for a message: its tree head, read by the same
 * reader as patient_log_proof_verify (every member checked and decoded, the
 * audit path too) but nothing verified. log_id and root are the proof's
 * strings (hex, base64), malloc'd. PATIENT_ERR_PARSE when the proof is
 * malformed (the code patient_log_proof_verify gives it), TOO_LARGE, NOMEM;
 * on any error *head is zeroed. Free with patient_log_proof_head_free
 * (accepts a zeroed head). Thread-safe. */
typedef struct patient_log_proof_head {
    uint64_t leaf_index; /* the entry's seq */
    uint64_t tree_size;
    char *log_id;
    char *root;
} patient_log_proof_head;
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_proof_head_read(const char *proof_json,
                                                                   size_t proof_len,
                                                                   patient_log_proof_head *head);
PATIENT_EXPORT void patient_log_proof_head_free(patient_log_proof_head *head);

/* ---- What `patient audit` reports (lib/log_report.c) ------------------
 * Rendered once, here: the tool prints these. */

/* `patient audit verify --json`: the document for n logs verified with
 * patient_log_verify (paths[i] gave reports[i]), pretty-printed JSON
 * {"patient": 1, "type": "audit-verify", "result", "logs": [{log, result,
 * error, tamper, line, seq, message, expected, found, entries, changes,
 * events, checkpoints, last_checkpoint {tree_size, root} or null,
 * unsigned_tail, signatures_checked, entry_signatures_checked, log_id}]}; a
 * log's result is "ok", "tampered" (tamper says how) or "error" (not read
 * as a log), the document's "error" if any log's is, else "tampered" if
 * any, else "ok"; then "\n". malloc'd (free); NULL, never a document
 * cut short, when out of memory, and when n is not 0 and paths or reports
 * is NULL. Thread-safe. */
PATIENT_EXPORT char *patient_log_verify_json(size_t n, const char *const *paths,
                                             const patient_log_report *reports);
/* The verdict over n logs verified with patient_log_verify (reports[i]
 * each), decided here once: _ERROR when any log could not be read as a
 * log (its result not OK, no tamper class), else _TAMPERED when any is,
 * else _OK. The audit-verify document's "result" ("error", "tampered",
 * "ok") and `patient audit verify`'s exit status (2, 1, 0) are this one.
 * _ERROR when n is not 0 and reports is NULL. Stable numbers. Thread-safe. */
typedef enum patient_log_verdict {
    PATIENT_LOG_VERDICT_OK = 0,
    PATIENT_LOG_VERDICT_TAMPERED = 1,
    PATIENT_LOG_VERDICT_ERROR = 2
} patient_log_verdict;
PATIENT_EXPORT patient_log_verdict patient_log_verify_verdict(size_t n,
                                                              const patient_log_report *reports);
/* The same report as `patient audit verify` prints it for one log: one
 * paragraph ending in "\n" (intact with its counts and last checkpoint, or
 * "cannot verify", or TAMPERED with the class, line, seq, what was
 * expected and found); pub: the key the checkpoints were checked with
 * (NULL: "Signatures NOT checked"). malloc'd (free), NULL when out of
 * memory or path or r is NULL. Thread-safe. */
PATIENT_EXPORT char *patient_log_verify_text(const char *path, const patient_log_report *r,
                                             const patient_pubkey *pub);

/* `patient audit verify-proof`: the check of a proof against an entry's
 * line under pub, result being what patient_log_proof_verify returned,
 * with what the proof claims, head (the one that call filled; NULL or
 * zeroed, a proof that did not read: leaf_index and tree_size -1, root and
 * log_id ""). _json: pretty-printed {"patient": 1,
 * "type": "audit-proof-check", "result": "ok"|"invalid", "error" (null or
 * the code's name), leaf_index, tree_size, root, log_id, key} and "\n";
 * _text: "proof ok: ..." or "proof INVALID: <why> [code]"
 * (why: which part failed, from the code) and "\n". malloc'd (free); NULL,
 * never a document cut short, when out of memory, when result is
 * PATIENT_ERR_NOMEM (the check ran out of memory: no verdict to render,
 * the caller reports NOMEM) or pub is NULL. Thread-safe. */
PATIENT_EXPORT char *patient_log_proof_check_json(const patient_log_proof_head *head,
                                                  patient_err result, const patient_pubkey *pub);
PATIENT_EXPORT char *patient_log_proof_check_text(const patient_log_proof_head *head,
                                                  patient_err result, const patient_pubkey *pub);

/* ---- Choosing and counting changes (patient audit list, stats, monitor) */

/* Whether some edit of change entry e has a reason matching glob
 * (fnmatch(3), no flags: "tracker.*"), as --reason picks changes in
 * `patient audit list`, `stats` and `monitor`. 1 or 0 (0 when e or glob is
 * NULL, or e has no edits). e->reasons[0 .. n_edits) must not be NULL, as
 * the reader gives them (so patient_log_tally_add and the log's verifier
 * read them too). Thread-safe. */
PATIENT_EXPORT int patient_log_entry_reason_match(const patient_log_entry *e, const char *glob);

/* What a change is counted under: each of its edits' reasons (a change
 * with several counts once under each, and each edit's bytes go to its own
 * reason), its middlebox ("NAME (KID)"), its URL, the UTC day of its time
 * ("YYYY-MM-DD") or its upstream TLS string; "-" for a missing one. Stable
 * numbers. */
typedef enum {
    PATIENT_LOG_TALLY_BY_REASON = 0,
    PATIENT_LOG_TALLY_BY_MIDDLEBOX = 1,
    PATIENT_LOG_TALLY_BY_URL = 2,
    PATIENT_LOG_TALLY_BY_DAY = 3,
    PATIENT_LOG_TALLY_BY_TLS = 4,
} patient_log_tally_by;

/* One group's counts; key is the group's name (NULL for the total). */
typedef struct patient_log_tally_group {
    const char *key;
    uint64_t changes, edits, deleted, inserted;
} patient_log_tally_group;

/* At most this many groups, their keys at most this many bytes together;
 * changes past either cap are counted under "(other)". */
#define PATIENT_LOG_TALLY_GROUPS_MAX 100000u
#define PATIENT_LOG_TALLY_KEY_BYTES_MAX (64u * 1024 * 1024)

typedef struct patient_log_tally patient_log_tally;

/* A counter grouping by by; free with patient_log_tally_free.
 * PATIENT_ERR_ARG for an unknown by. One thread per counter. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_tally_new(patient_log_tally_by by,
                                                             patient_log_tally **out);
/* Count change entry e (as the iterator read it; nothing is verified; the
 * per-edit bytes of a change with several reasons are read from its
 * descriptor by patient_log_entry_edit_bytes, zero when it does not read).
 * PATIENT_ERR_ARG for another kind of entry or after
 * patient_log_tally_groups; NOMEM. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_tally_add(patient_log_tally *s,
                                                             const patient_log_entry *e);
/* The groups, most changes first, then most edits, then by key; owned by s
 * (valid until patient_log_tally_free). Ends the counting. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_tally_groups(patient_log_tally *s,
                                                                const patient_log_tally_group **groups,
                                                                size_t *n);
/* The "(other)" group (key "(other)") when a cap was reached, else NULL;
 * NULL for a NULL s. Owned by s (valid until patient_log_tally_free); its
 * counts grow with each later patient_log_tally_add. */
PATIENT_EXPORT const patient_log_tally_group *patient_log_tally_other(const patient_log_tally *s);
/* Every counted change, once each (key NULL); NULL for a NULL s. Owned by
 * s (valid until patient_log_tally_free); its counts grow with each later
 * patient_log_tally_add. */
PATIENT_EXPORT const patient_log_tally_group *patient_log_tally_total(const patient_log_tally *s);
PATIENT_EXPORT void patient_log_tally_free(patient_log_tally *s);
/* The word --by takes for by ("reason", "middlebox", "url", "day", "tls");
 * NULL for another value. Static storage; thread-safe. */
PATIENT_EXPORT const char *patient_log_tally_by_name(patient_log_tally_by by);
/* `patient audit stats` of s, entries being how many entries were read
 * (of any kind). _json: pretty-printed {"patient": 1, "type":
 * "audit-stats", "by" (patient_log_tally_by_name), "entries", "groups":
 * [{key, changes, edits, deleted, inserted}] in patient_log_tally_groups'
 * order, "other" (null, or the "(other)" group without its key),
 * "truncated", "total" (without a key)} and "\n". _text:
 * the table, every line ending in "\n": a header naming the grouping
 * (REASON, MIDDLEBOX, URL, DAY, UPSTREAM TLS), a row a group (its key with
 * control bytes and DEL as '?', padded to 32 columns), "(other)" when a
 * cap was reached, TOTAL, and by reason a note that a change with several
 * reasons counts once under each. Both end the counting
 * (patient_log_tally_groups). malloc'd (free), NULL when out of memory or
 * s is NULL. One thread per counter. */
PATIENT_EXPORT char *patient_log_tally_json(patient_log_tally *s, uint64_t entries);
PATIENT_EXPORT char *patient_log_tally_text(patient_log_tally *s);

/* `patient audit list`'s row for change entry e, ending in "\n": time
 * (e->time_str, else e->time as patient_time_format_any writes it), seq,
 * middlebox name (padded to 16 columns; "-" when missing), deleted,
 * inserted, its distinct reasons and rules joined by "," (cut with ",.."
 * past 511 bytes; "-" when none), the upstream TLS ("TLSv1.3 verified",
 * "... UNVERIFIED", "plain", "-" when not recorded), with chunks non-zero
 * the CHUNKS column (patient_inspect_log_entry_chunks, which reads the
 * descriptor), and the URL ("-" when missing); the middlebox name and URL
 * with control bytes and DEL as '?'. malloc'd (free), NULL when out of
 * memory or e is NULL. Thread-safe. */
PATIENT_EXPORT char *patient_log_list_row_text(const patient_log_entry *e, int chunks);

#ifdef __cplusplus
}
#endif
#endif
