/* The endpoint's trust policy: which publisher keys sign which origins,
 * which middlebox keys may change content (which reasons, paths, origins,
 * how many edits, whether they may insert), and what the endpoint requires
 * of disclosures and proofs. Format: docs/format/policy.md.
 *
 * A policy is an opaque handle. Loading is strict: unknown fields, wrong
 * types and out-of-range values are PATIENT_ERR_PARSE with a detail string
 * naming the field ("middleboxes[0].reasons[2]: not a string").
 *
 * Thread-safety: a loaded policy is read-only and may be shared by threads
 * for every lookup function; the mutation functions (add_*) need exclusive
 * access. */
#ifndef PATIENT_POLICY_H
#define PATIENT_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>
#include <patient/key.h>
#include <patient/tls.h>
#include <patient/url.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Caps on what a policy file may contain. */
#define PATIENT_POLICY_MAX_BYTES (1024u * 1024)
#define PATIENT_POLICY_MAX_ORIGINS 4096
#define PATIENT_POLICY_MAX_KEYS 64        /* per origin */
#define PATIENT_POLICY_MAX_MIDDLEBOXES 1024
#define PATIENT_POLICY_MAX_GLOBS 256      /* per list */
#define PATIENT_POLICY_MAX_GLOB_LEN 1024
#define PATIENT_POLICY_MAX_NAME_LEN 256
#define PATIENT_POLICY_MAX_EDITS_CAP 1000000 /* largest max_edits accepted */
#define PATIENT_POLICY_DEFAULT_MAX_EDITS 100

typedef struct patient_policy patient_policy;
typedef struct patient_policy_middlebox patient_policy_middlebox;

/* Why an edit was refused (patient_policy_check_edit). */
typedef enum patient_policy_deny {
    PATIENT_POLICY_DENY_NONE = 0,
    PATIENT_POLICY_DENY_ORIGIN = 1, /* "policy.origin.denied" */
    PATIENT_POLICY_DENY_PATH = 2,   /* "policy.path.denied" */
    PATIENT_POLICY_DENY_REASON = 3, /* "policy.reason.denied" */
    PATIENT_POLICY_DENY_INSERT = 4  /* "policy.insert.denied" */
} patient_policy_deny;

/* Stable dotted result code for a deny reason ("policy.reason.denied");
 * "ok" for NONE. Static storage. */
PATIENT_EXPORT const char *patient_policy_deny_name(patient_policy_deny why);

typedef enum patient_proof {
    PATIENT_PROOF_ATTESTED = 0, /* hashes link up, claims signed; withheld bytes accepted */
    PATIENT_PROOF_PROVEN = 1,   /* origin bytes reconstructed and checked */
    PATIENT_PROOF_CONFINED = 2, /* withheld bytes accepted only when confined: every other
                                   byte checked against the origin's chunk root */
    PATIENT_PROOF_AUTO = 3      /* the default: CONFINED for resources whose origin commits a
                                   chunk root, ATTESTED for the others */
} patient_proof;

typedef enum patient_unsigned_action {
    PATIENT_UNSIGNED_UNVERIFIABLE = 0, /* origin without a manifest: exit 3 */
    PATIENT_UNSIGNED_INVALID = 1       /* origin without a manifest: exit 1 */
} patient_unsigned_action;

/* ---- loading ---------------------------------------------------------- */

/* Parse a policy from JSON text (at most PATIENT_POLICY_MAX_BYTES).
 * On PATIENT_ERR_PARSE / JSON / UNSUPPORTED / TOO_LARGE / KEY_FORMAT,
 * *detail (when detail is not NULL) is a malloc'd message naming the field;
 * caller frees it with free(). *p: free with patient_policy_free. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_parse(const char *json, size_t len,
                                                            patient_policy **p, char **detail);
/* Read and parse a policy file (symlinks refused). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_load(const char *path, patient_policy **p,
                                                           char **detail);

/* Lint mode only: like parse/load, but unknown fields are recorded (and
 * reported by patient_policy_lint) instead of failing. Never use a policy
 * loaded this way to verify anything. */
#define PATIENT_POLICY_KEEP_UNKNOWN 1u
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_load_ex(const char *path, unsigned flags,
                                                              patient_policy **p, char **detail);
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_parse_ex(const char *json, size_t len,
                                                               unsigned flags,
                                                               patient_policy **p,
                                                               char **detail);

/* Default policy path: $XDG_CONFIG_HOME/patient/policy.json, or
 * $HOME/.config/patient/policy.json. *path malloc'd (free()). NOT_FOUND
 * when neither variable is set (or they are not absolute paths). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_default_path(char **path);

/* Accepts NULL. */
PATIENT_EXPORT void patient_policy_free(patient_policy *p);

/* ---- URLs and origins --------------------------------------------------- */

/* patient_policy_split_url (URL -> origin + path): see <patient/url.h>. */

/* ---- lookups (read-only, thread-safe) ------------------------------------ */

/* Trusted publisher keys for an origin (normalised as above before the
 * lookup, so "HTTPS://Example.com:443/" finds "https://example.com").
 * *keys points into p (valid until p is freed). PATIENT_ERR_NOT_FOUND when
 * the origin is not listed (or listed with no keys). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_publisher_keys(const patient_policy *p,
                                                                     const char *origin,
                                                                     const patient_pubkey **keys,
                                                                     size_t *n);

/* The middlebox entry for a key id, or NULL (unknown middlebox). */
PATIENT_EXPORT const patient_policy_middlebox *
patient_policy_middlebox_find(const patient_policy *p, const uint8_t kid[PATIENT_KEYID_BYTES]);
PATIENT_EXPORT size_t patient_policy_middlebox_count(const patient_policy *p);
/* i-th entry in file order, NULL when out of range. */
PATIENT_EXPORT const patient_policy_middlebox *patient_policy_middlebox_at(const patient_policy *p,
                                                                          size_t i);
PATIENT_EXPORT const char *patient_policy_middlebox_name(const patient_policy_middlebox *m);
PATIENT_EXPORT const patient_pubkey *patient_policy_middlebox_key(const patient_policy_middlebox *m);
/* Maximum number of edits per response from this middlebox (per hop);
 * -1 means unlimited. */
PATIENT_EXPORT long long patient_policy_middlebox_max_edits(const patient_policy_middlebox *m);
/* 1 when the middlebox may insert bytes (edits with inserted bytes). */
PATIENT_EXPORT int patient_policy_middlebox_insert_allowed(const patient_policy_middlebox *m);
/* 1 when the middlebox may decrypt the endpoint's TLS ("may_decrypt"): a
 * connection whose certificate chain holds the interception CA its signed
 * disclosure declares is then "intercepted by" it, not by an unknown party. */
PATIENT_EXPORT int patient_policy_middlebox_may_decrypt(const patient_policy_middlebox *m);
/* Interception CA pins the endpoint recorded for this middlebox itself
 * ("interception_ca": the CA it installed; SPKI SHA-256, 32 bytes each):
 * they name the decrypter even on a response the middlebox did not change
 * (no descriptor, so no disclosure to read). */
PATIENT_EXPORT size_t patient_policy_middlebox_interception_ca_count(
    const patient_policy_middlebox *m);
PATIENT_EXPORT const uint8_t *patient_policy_middlebox_interception_ca(
    const patient_policy_middlebox *m, size_t i);
/* Record one for the listed middlebox with this key id: NOT_FOUND (no such
 * middlebox), EXISTS (already recorded), LIMIT (8 already). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_add_interception_ca(
    patient_policy *p, const uint8_t kid[PATIENT_KEYID_BYTES], const uint8_t pin[32]);
/* Set "may_decrypt" of the listed middlebox with this key id
 * (PATIENT_ERR_NOT_FOUND when none is listed). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_set_may_decrypt(
    patient_policy *p, const uint8_t kid[PATIENT_KEYID_BYTES], int may);

/* May middlebox m make one edit with this reason code at origin+path?
 * origin as from patient_policy_split_url; path without query. is_insert:
 * the edit inserts bytes (pure deletions and replacements with an empty
 * insertion are not inserts). Checks in order origin, path, reason,
 * insert; the first failure gives PATIENT_ERR_POLICY and *why (may be
 * NULL) says which. PATIENT_ERR_ARG for NULL arguments. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_check_edit(const patient_policy_middlebox *m,
                                                                 const char *origin,
                                                                 const char *path,
                                                                 const char *reason, int is_insert,
                                                                 patient_policy_deny *why);

/* Requirements. */
PATIENT_EXPORT int patient_policy_require_disclosure(const patient_policy *p);
/* -1 when there is no limit. */
PATIENT_EXPORT long long patient_policy_max_retention_days(const patient_policy *p);
/* "TLSv1.2" etc., or NULL when there is no requirement. */
PATIENT_EXPORT const char *patient_policy_min_upstream_tls(const patient_policy *p);
/* "upstream_verified" (default 1): a hop towards an https origin must
 * record that it verified the origin's certificate chain and name. */
PATIENT_EXPORT int patient_policy_upstream_verified(const patient_policy *p);
/* require.logged: an evidence bundle checked offline must prove every
 * change is in its middlebox's log (docs/format/log.md, "Logged-change
 * evidence"); 0 by default. */
PATIENT_EXPORT int patient_policy_require_logged(const patient_policy *p);
PATIENT_EXPORT patient_proof patient_policy_require_proof(const patient_policy *p);
/* "attested", "proven", "confined", "auto" (the policy file's spelling). */
PATIENT_EXPORT const char *patient_proof_name(patient_proof p);
PATIENT_EXPORT patient_unsigned_action patient_policy_unsigned(const patient_policy *p);

/* ---- building and saving (for `patient policy`) --------------------------- */

/* A new policy with every field at its safe default. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_new(patient_policy **p);

/* Trust pk for origin ("https://host[:port]", normalised; PATIENT_ERR_ARG
 * when not an http(s) origin or it has a path). PATIENT_ERR_EXISTS when
 * that key is already trusted for that origin; PATIENT_ERR_LIMIT at the caps. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_add_publisher(patient_policy *p,
                                                                    const char *origin,
                                                                    const patient_pubkey *pk);

/* Allow a middlebox. reasons, paths, origins: NULL-terminated glob lists
 * (fnmatch(3) syntax; '*' also matches '/'); reasons NULL = [] (no edit
 * allowed), paths NULL = every path, origins NULL = every origin. max_edits: -1
 * unlimited, else 0..PATIENT_POLICY_MAX_EDITS_CAP. PATIENT_ERR_EXISTS when
 * a middlebox with the same key id is listed already. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_add_middlebox(
    patient_policy *p, const char *name, const patient_pubkey *pk, const char *const *reasons,
    const char *const *paths, const char *const *origins, long long max_edits, int insert);

/* Deterministic pretty JSON (2-space indent, fields in the documented
 * order, entries in file order, trailing newline). *out malloc'd (free()). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_serialize(const patient_policy *p,
                                                                char **out, size_t *len);
/* Write atomically with mode 0644. force 0: PATIENT_ERR_EXISTS if path
 * exists; force 1: replace. A policy loaded with KEEP_UNKNOWN cannot be
 * saved (PATIENT_ERR_STATE): saving would drop the unknown fields. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_save(const patient_policy *p,
                                                           const char *path, int force);

/* ---- lint (for `patient policy check`) ------------------------------------- */

typedef enum patient_lint_severity {
    PATIENT_LINT_NOTE = 0,    /* worth knowing; not a problem */
    PATIENT_LINT_WARNING = 1, /* weak setting */
    PATIENT_LINT_ERROR = 2    /* unknown field, rule that can never match */
} patient_lint_severity;

/* Called once per finding. code: stable dotted id ("middlebox.reasons.any");
 * where: the field ("middleboxes[0].reasons"); message: one sentence. All
 * strings valid only during the call. */
typedef void (*patient_policy_lint_cb)(void *ctx, patient_lint_severity sev, const char *code,
                                       const char *where, const char *message);

/* Report findings in a deterministic order. Returns the number of findings
 * of severity WARNING or ERROR (notes are not counted). */
PATIENT_EXPORT size_t patient_policy_lint(const patient_policy *p, patient_policy_lint_cb cb,
                                          void *ctx);

#ifdef __cplusplus
}
#endif
#endif
