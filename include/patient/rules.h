/* Rule engine for the reference middleboxes (srv_patient, patient-mbox):
 * a JSON rule file says what to find in a response body (a literal or a
 * POSIX extended regular expression) and what to do with it (remove,
 * replace, insert before/after), with a reason code for the signed record.
 * The file format is specified in docs/FORMAT.md ("Rule files").
 *
 * Matching is byte-exact and binary-safe (bodies may contain NUL bytes):
 * literals use memmem, regexes are compiled and run by PCRE2 on bytes
 * (no UTF, ASCII classes), whatever the process locale is, so a pattern
 * means the same bytes everywhere. Regex matching is bounded: work linear
 * in the body (see the limits below and docs/format/rules.md). */
#ifndef PATIENT_RULES_H
#define PATIENT_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>
#include <patient/hash.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Caps (exceeding one fails the load; see each function for the code). */
#define PATIENT_RULES_MAX_FILE (1024u * 1024)       /* rule file bytes */
#define PATIENT_RULES_MAX_RULES 1000u               /* rules per file */
#define PATIENT_RULES_MAX_PATTERN 4096u             /* literal or regex bytes */
#define PATIENT_RULES_MAX_TEXT (64u * 1024)         /* replacement/inserted bytes */
#define PATIENT_RULES_MAX_ID 128u                   /* id and reason bytes */
#define PATIENT_RULES_MAX_NOTE 1024u                /* note bytes */
#define PATIENT_RULES_MAX_TYPES 32u                 /* entries in "types" */
#define PATIENT_RULES_MAX_MATCHES 100000u           /* highest "max_matches" */
#define PATIENT_RULES_DEFAULT_MATCHES 1000u         /* "max_matches" when absent */
#define PATIENT_RULES_MAX_CANDIDATES 1000000u       /* matches per apply, all rules */
#define PATIENT_RULES_MAX_BODY (1024u * 1024 * 1024) /* body bytes per apply */
/* Bounded matching ("limits" in the rule file, docs/format/rules.md). A
 * regex match is at most match_window bytes long; the matcher may look
 * at work_per_byte x body length + PATIENT_RULES_WORK_BASE bytes in all
 * for one apply (all regex rules together), then the apply stops with
 * PATIENT_ERR_LIMIT: linear in the body whatever the pattern. */
#define PATIENT_RULES_DEFAULT_WINDOW 4096u   /* "match_window" when absent */
#define PATIENT_RULES_MIN_WINDOW 64u
#define PATIENT_RULES_MAX_WINDOW (1024u * 1024)
#define PATIENT_RULES_DEFAULT_WORK 16u       /* "work_per_byte" when absent */
#define PATIENT_RULES_MAX_WORK 4096u
#define PATIENT_RULES_WORK_BASE (1024u * 1024) /* work every body gets */

typedef enum patient_rule_action {
    PATIENT_RULE_REMOVE = 0,        /* delete the match */
    PATIENT_RULE_REPLACE = 1,       /* delete the match, insert text there */
    PATIENT_RULE_INSERT_BEFORE = 2, /* insert text at the match start */
    PATIENT_RULE_INSERT_AFTER = 3   /* insert text at the match end */
} patient_rule_action;

/* A loaded rule set. Opaque; immutable after load. */
typedef struct patient_rules patient_rules;

/* One edit, relative to the ORIGINAL body passed to patient_rules_apply.
 * All pointers point into the rule set (valid until patient_rules_free) and
 * are never NULL except note. */
typedef struct patient_rule_match {
    size_t offset;         /* where the edit applies, 0..len */
    size_t delete_len;     /* bytes deleted at offset (0 for inserts) */
    const uint8_t *insert; /* bytes inserted at offset (not NUL-terminated) */
    size_t insert_len;     /* 0 for remove */
    const char *reason;    /* reason code, e.g. "tracker.removed" */
    const char *rule_id;   /* the rule's "id" */
    const char *note;      /* the rule's "note", or NULL */
    int disclose;          /* 1: include deleted bytes in the record; 0: hash only */
    patient_rule_action action;
    size_t match_offset; /* the bytes the rule matched (for insert_after */
    size_t match_len;    /* offset == match_offset + match_len, or later) */
} patient_rule_match;

/* Called once per edit, in strictly ascending offset order. Return
 * PATIENT_OK to continue; any other code stops patient_rules_apply, which
 * returns that code. */
typedef patient_err (*patient_rules_cb)(void *ctx, const patient_rule_match *m);

/* Parse a rule file held in memory (len bytes; need not be NUL-terminated).
 * On success *out is a new rule set (free with patient_rules_free).
 * detail, if not NULL, receives on failure a malloc'd NUL-terminated
 * explanation naming the rule (index and id) and field, e.g.
 * `rule 2 (id "x"): regex: Unmatched ( or \(` — caller frees; NULL on
 * success or when out of memory. Errors:
 *   PATIENT_ERR_TOO_LARGE  len over PATIENT_RULES_MAX_FILE, or a string
 *                          over its cap (pattern, text, id, reason, note)
 *   PATIENT_ERR_LIMIT      more than PATIENT_RULES_MAX_RULES rules, more
 *                          than PATIENT_RULES_MAX_TYPES types, max_matches
 *                          out of 1..PATIENT_RULES_MAX_MATCHES
 *   PATIENT_ERR_JSON       not JSON, nested too deeply
 *   PATIENT_ERR_UNSUPPORTED "patient" is not 1
 *   PATIENT_ERR_PARSE      wrong "type", unknown/duplicate/missing field,
 *                          wrong field type, unknown action, bad id/reason
 *                          characters, duplicate rule id, empty literal,
 *                          text missing/forbidden for the action, a \u0000
 *                          escape anywhere, bad media-type pattern
 *   PATIENT_ERR_REGEX      PCRE2 refused the pattern (detail has its message),
 *                          a PCRE2 verb "(*...)",
 *                          back-reference used, or the pattern's bounded
 *                          repetitions expand too far
 *   PATIENT_ERR_NOMEM
 * Thread-safe (no shared state). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_rules_parse(const void *bytes, size_t len,
                                                           patient_rules **out, char **detail);

/* Read a rule file (regular file only, symlinks refused, "-" is stdin) and
 * parse it. Adds PATIENT_ERR_NOT_FOUND, PATIENT_ERR_IO,
 * PATIENT_ERR_UNSAFE_PATH, and PATIENT_ERR_TOO_LARGE for a file over
 * PATIENT_RULES_MAX_FILE to the codes of patient_rules_parse. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_rules_load(const char *path, patient_rules **out,
                                                          char **detail);

/* Accepts NULL. Not while another thread is applying the same rules. */
PATIENT_EXPORT void patient_rules_free(patient_rules *rules);

/* Number of rules; 0 for NULL. */
PATIENT_EXPORT size_t patient_rules_count(const patient_rules *rules);

/* The SHA-256 of the exact bytes the set was parsed from (for
 * patient_rules_load, the file's bytes as read, once): what a middlebox
 * names its rules by (patient_mbox_istag), so the name cannot describe a
 * file other than the one loaded. 32 zero bytes for NULL (no set).
 * Thread-safe. */
PATIENT_EXPORT void patient_rules_sha256(const patient_rules *rules,
                                         uint8_t out[PATIENT_SHA256_BYTES]);

/* Find every match of every rule in body[0..len) and report the resulting
 * edits through cb, in strictly ascending offset order (see FORMAT.md for
 * the full semantics: rules see the original body; overlaps are resolved
 * "earliest match start wins, then the rule listed first"; an insert_after
 * that lands where a removal starts is moved past the removal, or dropped
 * if a replace/insert_before starts there).
 *
 * media_type is the response's Content-Type, parameters allowed
 * ("text/html; charset=utf-8"); NULL means unknown, and then only rules
 * without a "types" filter run. body may be NULL when len is 0.
 *
 * Returns PATIENT_OK (also when nothing matched: cb is then never called),
 * PATIENT_ERR_ARG (rules or cb NULL, body NULL with len > 0),
 * PATIENT_ERR_TOO_LARGE (len over PATIENT_RULES_MAX_BODY),
 * PATIENT_ERR_LIMIT (over PATIENT_RULES_MAX_CANDIDATES matches found, or
 * regex matching reached the rule set's work limit or a per-attempt cap;
 * cb not called: nothing is half applied), PATIENT_ERR_NOMEM, or the first
 * non-OK code cb returned.
 *
 * Thread-safe: any number of threads may apply the same rules at once
 * (the rule set is read-only; each call has its own PCRE2 match state). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_rules_apply(const patient_rules *rules,
                                                           const void *body, size_t len,
                                                           const char *media_type,
                                                           patient_rules_cb cb, void *ctx);

/* ---- Streaming: the same edits, as the body arrives -------------------
 *
 * For a proxy that must pass a body on before it has all of it: feed the
 * bytes received so far (always the whole prefix, in one buffer that only
 * grows) and get every edit that is decided by them, in the same strictly
 * ascending order patient_rules_apply reports them, plus *safe: the input
 * offset before which the output is final (every edit that touches it has
 * been reported, and none still to come lands before it). The last feed
 * has eof = 1 and reports the rest. Fed once with eof, this is exactly
 * patient_rules_apply. A match is decided once the rule's reach (its
 * match_window, or the literal's length) past its start has arrived, so
 * *safe trails the input by at most that (plus a pending insert_after).
 * Errors are sticky; unlike patient_rules_apply, edits reported by earlier
 * feeds stand when a later feed fails (PATIENT_ERR_LIMIT): a caller that
 * already released them must abandon the response, not complete it.
 * One thread per stream; many streams may share one rule set. */
typedef struct patient_rules_stream patient_rules_stream;

PATIENT_EXPORT PATIENT_WUR patient_err patient_rules_stream_new(const patient_rules *rules,
                                                                const char *media_type,
                                                                patient_rules_stream **out);
/* body[0..len) is everything received so far (len never shrinks; earlier
 * bytes unchanged). cb as for patient_rules_apply. Returns PATIENT_OK,
 * PATIENT_ERR_ARG, PATIENT_ERR_STATE (fed after eof), PATIENT_ERR_LIMIT,
 * PATIENT_ERR_TOO_LARGE, PATIENT_ERR_NOMEM, or cb's code. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_rules_stream_feed(patient_rules_stream *st,
                                                                 const void *body, size_t len,
                                                                 int eof, patient_rules_cb cb,
                                                                 void *ctx, size_t *safe);
/* Accepts NULL. */
PATIENT_EXPORT void patient_rules_stream_free(patient_rules_stream *st);

#ifdef __cplusplus
}
#endif
#endif
