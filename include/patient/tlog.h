/* The audit log as a transparency log others can watch: RFC 9162
 * consistency proofs, checkpoints as C2SP tlog-checkpoint signed notes
 * (C2SP signed-note, Ed25519), the tree published as C2SP tlog-tiles, and a
 * client that reads a published log over HTTP(S).
 * Format contract: docs/format/log.md ("Transparency log").
 *
 * Every function here is thread-safe unless it says otherwise. */
#ifndef PATIENT_TLOG_H
#define PATIENT_TLOG_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>
#include <patient/fetch.h>
#include <patient/hash.h>
#include <patient/key.h>
#include <patient/log.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Consistency proofs (RFC 9162 §2.1.4) ----------------------------- */

#define PATIENT_TLOG_PROOF_MAX 64

typedef struct patient_consistency {
    uint64_t old_size, new_size;
    uint8_t old_root[PATIENT_SHA256_BYTES], new_root[PATIENT_SHA256_BYTES];
    size_t count; /* hashes in proof, deepest first */
    uint8_t proof[PATIENT_TLOG_PROOF_MAX][PATIENT_SHA256_BYTES];
} patient_consistency;

/* Consistency proof between the trees of the first old_size and the first
 * new_size lines of the log at path (0 <= old_size <= new_size <= lines),
 * with both roots, in one streaming pass and O(log n) memory. Any two sizes
 * work, not only those of checkpoints. PATIENT_ERR_ARG when old_size >
 * new_size; PATIENT_ERR_NOT_FOUND when the log has fewer than new_size
 * lines; file errors as patient_log_verify. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_consistency(const char *path, uint64_t old_size,
                                                               uint64_t new_size,
                                                               patient_consistency *out);
/* RFC 9162 §2.1.4.2: PATIENT_OK when p->proof shows the tree of old_size
 * with old_root is a prefix of the tree of new_size with new_root;
 * PATIENT_ERR_HASH otherwise. The roots must come from somewhere trusted
 * (signed checkpoints): a proof only relates them. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_consistency_verify(const patient_consistency *p);
/* {"version":1,"old_size":M,"new_size":N,"old_root":"<b64>","new_root":"<b64>",
 *  "proof":["<b64>",...]}; caller frees *json with free(). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_consistency_json(const patient_consistency *p,
                                                                char **json);
/* Strict reader of that JSON (PATIENT_ERR_PARSE). Does not verify. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_consistency_parse(const char *json, size_t len,
                                                                 patient_consistency *out);

/* A tree size, the n bytes at s (no NUL needed): decimal digits, no sign,
 * no leading zero ("0" itself is fine), at most UINT64_MAX. The one rule
 * for every tree size a tool or a tree head gives as text.
 * PATIENT_ERR_PARSE for anything else (*v untouched), PATIENT_ERR_ARG for
 * a NULL s or v. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_tree_size_parse(const char *s, size_t n, uint64_t *v);

/* A tree head as `patient audit` takes it (verify --checkpoint,
 * verify-consistency --old/--new) and prints it: "SIZE:ROOT", SIZE the
 * tree size in decimal (no sign, no leading zero, fits 64 bits), ROOT its
 * Merkle root as 64 hex digits (either case) or standard base64.
 * PATIENT_ERR_PARSE for anything else (*size and root may be written),
 * PATIENT_ERR_ARG for a NULL argument. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_tree_head_parse(const char *s, uint64_t *size,
                                                               uint8_t root[PATIENT_SHA256_BYTES]);

/* ---- Signed notes and checkpoints (C2SP signed-note, tlog-checkpoint) - */

#define PATIENT_NOTE_MAX (16u * 1024)
#define PATIENT_ORIGIN_MAX 255

/* The signed-note verifier key for (name, pub):
 * "<name>+<8 hex key id>+<base64(0x01 || 32-byte Ed25519 key)>", what
 * golang.org/x/mod/sumdb/note's NewVerifier reads. The key id is the first
 * 4 bytes of SHA-256(name || "\n" || 0x01 || key). name: 1..255 bytes, no
 * blanks or '+' (PATIENT_ERR_ARG). Caller frees *vkey with free(). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_note_vkey(const char *name,
                                                         const patient_pubkey *pub, char **vkey);

/* A checkpoint: origin, tree size, root hash (and nothing else: patient
 * writes no extension lines and readers ignore them). */
typedef struct patient_checkpoint {
    char origin[PATIENT_ORIGIN_MAX + 1];
    uint64_t size;
    uint8_t root[PATIENT_SHA256_BYTES];
} patient_checkpoint;

/* The checkpoint as a signed note, signed by sk under the key name origin:
 * "<origin>\n<size>\n<base64 root>\n\n— <origin> <base64(id || sig)>\n".
 * Caller frees *note with free(). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_checkpoint_sign(const patient_checkpoint *c,
                                                               const patient_seckey *sk,
                                                               char **note);
/* Read a signed checkpoint note (at most PATIENT_NOTE_MAX bytes) and check
 * it: well formed (PATIENT_ERR_PARSE), a signature line whose key name is
 * the origin and whose key id is that of (origin, pub)
 * (PATIENT_ERR_KEY_MISMATCH when none is), a valid Ed25519 signature over
 * the text (PATIENT_ERR_SIGNATURE). Signature lines of other keys
 * (witnesses) are skipped. origin, when not NULL, must equal the note's
 * (PATIENT_ERR_KEY_MISMATCH). pub NULL: parse only, no signature check
 * (fuzzers, tools that say so). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_checkpoint_open(const char *note, size_t len,
                                                               const char *origin,
                                                               const patient_pubkey *pub,
                                                               patient_checkpoint *out);
/* The origin a log publishes under when none is configured:
 * "patient.log/<log_id>", log_id the 64 hex digits of docs/format/log.md.
 * out has room for PATIENT_ORIGIN_MAX + 1 bytes. */
PATIENT_EXPORT void patient_tlog_default_origin(const char *log_id,
                                                char out[PATIENT_ORIGIN_MAX + 1]);

/* ---- Tiles (C2SP tlog-tiles, height 8) -------------------------------- */

#define PATIENT_TILE_WIDTH 256
#define PATIENT_TILE_BYTES (PATIENT_TILE_WIDTH * PATIENT_SHA256_BYTES)
/* A published entry bundle holds up to 256 log lines; its size cap. */
#define PATIENT_TLOG_BUNDLE_MAX (PATIENT_TILE_WIDTH * (size_t)(PATIENT_LOG_LINE_MAX + 1))

/* The tile path relative to the published folder: "tile/<L>/<N>" or, for a
 * partial tile of width w (1..255), "tile/<L>/<N>.p/<w>"; N in groups of
 * three digits, all but the last prefixed with "x" (C2SP tlog-tiles).
 * level < 0 names the entry bundle "entries/<N>[.p/<w>]". w 0 or 256: a
 * full tile. out has room for 96 bytes. */
PATIENT_EXPORT void patient_tile_path(int level, uint64_t index, unsigned w, char out[96]);

/* Publish the tree of the log at path into dir (created 0755 when
 * missing): every hash tile and entry bundle of the tree of the log's
 * latest checkpoint and a "checkpoint" note for it, signed by sk under
 * origin (NULL: patient_tlog_default_origin). Full tiles already present
 * with the right bytes are not rewritten; every file is written beside
 * then renamed, so a reader never sees a partial one, and the checkpoint
 * goes last, so every tile it names is there. PATIENT_ERR_NOT_FOUND when
 * the log has no checkpoint yet. One pass over the log. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_publish(const char *path, const char *dir,
                                                           const patient_seckey *sk,
                                                           const char *origin);

/* Keep dir published by the writer from now on: the tree and checkpoint
 * of patient_log_publish are written now (from this handle's state and the
 * file, under the log's lock) and again after every checkpoint this handle
 * writes, incrementally (only new tiles and bundles). dir NULL stops.
 * Needs a writable handle (PATIENT_ERR_STATE). Several processes may
 * publish the same log into the same dir: they do so under the log's
 * flock. A publishing failure after a checkpoint does not fail the append
 * (the entry is committed); it is returned by the next call of
 * patient_log_publish_error and retried at the next checkpoint. A
 * symlink below dir (dir's own path may hold them) is never followed: a
 * publishing failure, PATIENT_ERR_UNSAFE_PATH. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_set_publish(patient_log *log, const char *dir,
                                                               const char *origin);
/* The last publishing error of this handle (PATIENT_OK if none), cleared by
 * the call. */
PATIENT_EXPORT patient_err patient_log_publish_error(patient_log *log);

/* ---- Watching a published log: monitor, inclusion ------------------- */

/* What a monitor run found. Numbers are stable. */
typedef enum patient_monitor_alarm {
    PATIENT_MONITOR_OK = 0,
    PATIENT_MONITOR_UNREACHABLE = 1, /* checkpoint, tile or bundle not served (fetch error,
                                        HTTP status): nothing learnt, state unchanged */
    PATIENT_MONITOR_SIGNATURE = 2,   /* checkpoint note: bad signature, other key, other
                                        origin, malformed */
    PATIENT_MONITOR_ROLLBACK = 3,    /* a smaller tree than one seen before */
    PATIENT_MONITOR_FORK = 4,        /* a signed tree that does not extend the one seen
                                        before (same size other root, or no consistency) */
    PATIENT_MONITOR_TILE = 5,        /* a served hash tile differs from the entries' hashes */
    PATIENT_MONITOR_ENTRY = 6,       /* an entry is bad: not an entry, seq, hash chain,
                                        checkpoint line, descriptor signature; or the
                                        entries do not hash to the signed root */
    PATIENT_MONITOR_STATE = 7        /* the state file is unreadable or damaged */
} patient_monitor_alarm;

/* "ok", "unreachable", "signature", "rollback", "fork", "tile", "entry",
 * "state". Never NULL. */
PATIENT_EXPORT const char *patient_monitor_alarm_name(patient_monitor_alarm a);

typedef struct patient_monitor_report {
    patient_err result;          /* also the return value */
    patient_monitor_alarm alarm; /* PATIENT_MONITOR_OK when result is OK */
    char message[512];           /* one sentence: what is wrong, or what was seen */
    char origin[PATIENT_ORIGIN_MAX + 1];
    uint64_t old_size;           /* tree size in the state before the run (0: none) */
    uint64_t new_size;           /* the checkpoint's tree size */
    uint8_t new_root[PATIENT_SHA256_BYTES];
    uint64_t entries, changes;   /* new entries checked, of which changes */
    uint64_t seq;                /* the entry concerned (alarm ENTRY), when has_seq */
    int has_seq;
} patient_monitor_report;

/* Called for every new entry once its line checked out; a non-zero return
 * stops the run (PATIENT_ERR_INTERRUPTED, state unchanged). e is what
 * patient_log_iter_next gives for the same line: with a callback, a line
 * whose time that reader refuses is an ENTRY alarm (PATIENT_ERR_LOG_CORRUPT). */
typedef int (*patient_monitor_entry_fn)(const patient_log_entry *e, void *ctx);
/* A change e as `patient audit monitor` shows it. _json: one line of
 * {"seq", "time", "url", "middlebox" (its name), "reasons" (each edit's),
 * "deleted", "inserted"}, a missing string as "", and "\n";
 * _text: the fields "<time>", "seq <seq>", "<middlebox>", "-<deleted>
 * +<inserted>" two spaces apart, two spaces, the reasons joined by ",", a
 * space, the URL and "\n", the log's strings with control bytes and DEL as
 * '?' (a missing time "?", another missing string empty).
 * malloc'd (free), NULL when out of memory or e is NULL. Thread-safe. */
PATIENT_EXPORT char *patient_monitor_entry_json(const patient_log_entry *e);
PATIENT_EXPORT char *patient_monitor_entry_text(const patient_log_entry *e);
/* Called every 256 entries: entries checked so far of total new ones. */
typedef void (*patient_monitor_progress_fn)(uint64_t done, uint64_t total, void *ctx);

typedef struct patient_monitor_opts {
    size_t size;                     /* sizeof(patient_monitor_opts) (error.h) */
    const patient_fetch_opts *fetch; /* NULL: defaults */
    const patient_pubkey *pub;       /* the middlebox key (required) */
    const char *origin;              /* expected checkpoint origin; NULL: the state's, or
                                        (first run) whatever the log names */
    int deep;                        /* also verify every change descriptor's JWS */
    patient_monitor_entry_fn on_entry;
    patient_monitor_progress_fn on_progress;
    void *ctx;
} patient_monitor_opts;

/* One monitor run against the log published at url (the folder
 * patient_log_publish writes, over http:// or https://): fetch
 * url/checkpoint, check its note under opts->pub, then, against the tree
 * head kept in state_path (none on a first run): refuse a smaller tree
 * (ROLLBACK) or another root for the same size (FORK); download the
 * entry bundles of every new entry and check each line (seq, hash chain to
 * the last seen entry, log checkpoints' JWS under pub, with deep every
 * descriptor's signature), check the entries before the old size in the
 * first bundle still hash as seen (FORK), extend the kept tree with the new
 * leaves and require the signed root (consistency by construction; when it
 * fails, an RFC 9162 consistency proof from the served tiles tells a FORK
 * from bad entries), and compare every hash tile the new tree touches
 * with the recomputed one (TILE). Only when all of that holds is the new
 * head written to state_path (atomically: temp file, fsync, rename; mode
 * 0600). Returns PATIENT_OK, or the error behind report->alarm:
 * UNREACHABLE PATIENT_ERR_FETCH; SIGNATURE PATIENT_ERR_SIGNATURE /
 * KEY_MISMATCH / PARSE; ROLLBACK PATIENT_ERR_ROLLBACK; FORK, TILE
 * PATIENT_ERR_HASH; ENTRY PATIENT_ERR_CHAIN / SIGNATURE / LOG_CORRUPT;
 * STATE PATIENT_ERR_PARSE / IO. Not thread-safe on the same state file. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_monitor_run(const char *url, const char *state_path,
                                                           const patient_monitor_opts *opts,
                                                           patient_monitor_report *report);

/* Per descriptor asked about. */
typedef struct patient_included {
    int found;         /* 1: logged, and proven into the signed tree */
    uint64_t seq;      /* its log entry (found) */
    uint64_t tree_size;/* of the checkpoint it was proven against */
    char *evidence;    /* found: the logged-change evidence (JSON object text,
                          docs/format/log.md), for patient_log_evidence_check
                          offline; free with patient_included_free,
                          whatever patient_tlog_included returned */
} patient_included;

/* Free the evidence of out[0..n-1]. */
PATIENT_EXPORT void patient_included_free(patient_included *out, size_t n);

/* Prove that each of the n descriptors (compact Patient-Change JWS, as a
 * bundle keeps them) is in the log published at url: fetch and check the
 * checkpoint as patient_monitor_run does, and when state_path is given
 * require it to be consistent with the head kept there (an RFC 9162
 * consistency proof built from the served tiles; ROLLBACK / FORK
 * otherwise); then look for each descriptor in the entry bundles (a change
 * entry whose jws is exactly it) and check an inclusion proof of that line,
 * built from the served tiles, against the signed root (TILE on failure).
 * out[i].found 0: not in the log's first new_size entries (never logged, or
 * not yet covered by a checkpoint). Reads every entry bundle: the
 * published log has no index by descriptor. The state file is only read. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_tlog_included(const char *url,
                                                             const char *state_path,
                                                             const patient_monitor_opts *opts,
                                                             const char *const *jws, size_t n,
                                                             patient_included *out,
                                                             patient_monitor_report *report);

/* ---- Logged-change evidence, checked offline ------------------------ */

/* Cap on one evidence object: an escaped log line, a proof, a note. */
#define PATIENT_LOG_EVIDENCE_MAX (2u * PATIENT_LOG_LINE_MAX + PATIENT_NOTE_MAX + 8192u)

typedef struct patient_log_evidence {
    uint64_t seq, tree_size;              /* the entry, the signed tree (when read) */
    char origin[PATIENT_ORIGIN_MAX + 1];  /* the checkpoint's origin (when it verified) */
    char why[200];                        /* what failed, for a message */
} patient_log_evidence;

/* Check, without the network, that evidence (a JSON object: the log line,
 * its index, an inclusion proof, a checkpoint note) proves the change
 * descriptor jws is in a tree signed by pub (the key that signed the
 * descriptor). PATIENT_OK; PATIENT_ERR_NOT_FOUND: the line is not the
 * change entry of jws at that index (evidence for another entry);
 * PATIENT_ERR_SIGNATURE / KEY_MISMATCH: the note does not verify under
 * pub; PATIENT_ERR_HASH: the proof does not lead to the signed root (or
 * is for another tree size); PATIENT_ERR_PARSE / JSON / TOO_LARGE:
 * malformed. patient_log_evidence_code names the result as reports do. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_log_evidence_check(const char *json, size_t len,
                                                                  const char *jws,
                                                                  const patient_pubkey *pub,
                                                                  patient_log_evidence *out);
/* "log.proven", "log.entry.mismatch", "log.checkpoint.signature",
 * "log.proof.invalid" or "log.evidence.malformed". */
PATIENT_EXPORT const char *patient_log_evidence_code(patient_err err);

#ifdef __cplusplus
}
#endif
#endif
