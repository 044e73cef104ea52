/* Verification at the endpoint: given what a response carried (body,
 * Patient-Change and Patient-Origin headers), the origin's signed manifest,
 * the middleboxes' disclosures and the endpoint's trust policy, decide a
 * verdict and explain it.
 *
 *   verified      the body is exactly what the origin signed, untouched
 *   modified      changed only by middleboxes the policy trusts, each change
 *                 signed and chained (proof "proven" when every hop could be
 *                 undone back to the origin bytes, "attested" when a hop
 *                 withheld deleted bytes)
 *   invalid       tampered, forged, unauthorised, expired, rolled back
 *   unverifiable  nothing to check against (no manifest, fetch failed,
 *                 origin unknown to the policy, resource not listed)
 *
 * The report is a stable JSON document (docs/FORMAT.md, "Verification
 * report") with dotted result codes; patient_report_text renders it for
 * people. */
#ifndef PATIENT_VERIFY_H
#define PATIENT_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <patient/error.h>
#include <patient/fetch.h>
#include <patient/policy.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum patient_verdict {
    PATIENT_VERDICT_VERIFIED = 0,
    PATIENT_VERDICT_MODIFIED = 1,
    PATIENT_VERDICT_INVALID = 2,
    PATIENT_VERDICT_UNVERIFIABLE = 3
} patient_verdict;

/* "verified", "modified", "invalid", "unverifiable". Static storage. */
PATIENT_EXPORT const char *patient_verdict_name(patient_verdict v);

/* A middlebox disclosure document as fetched (bytes borrowed). */
typedef struct patient_evidence_disclosure {
    const char *url;          /* the by.disclosure URL it was fetched from */
    const uint8_t *json;      /* NULL when it could not be fetched */
    size_t json_len;
    const char *sig;          /* .minisig text, NULL when missing */
    size_t sig_len;
    const char *error;        /* why it is missing (free text) or NULL */
} patient_evidence_disclosure;

/* One shard of a sharded manifest (docs/format/manifest.md, "Shards"),
 * as the verifier obtained it: the name is the SHA-256 (64 lower-case hex)
 * its parent names, bytes what came back (checked against the name by the
 * verification, never trusted for it). */
typedef struct patient_evidence_shard {
    const char *name;
    const uint8_t *bytes;     /* NULL when it could not be had */
    size_t len;
    const char *error;        /* why not (free text) or NULL */
} patient_evidence_shard;

/* Everything one verification looks at. All pointers are borrowed. */
typedef struct patient_evidence {
    const char *url;              /* the URL requested */
    long status;                  /* HTTP status (0 when unknown) */
    const uint8_t *body;          /* decoded body as received */
    size_t body_len;
    const char *const *changes;   /* Patient-Change values, in order (split) */
    size_t nchanges;
    const char *origin_sig;       /* Patient-Origin value, or NULL */
    const uint8_t *manifest;      /* manifest.json bytes, or NULL */
    size_t manifest_len;
    const char *manifest_sig;     /* manifest.json.minisig text, or NULL */
    size_t manifest_sig_len;
    const char *manifest_error;   /* why the manifest is missing, or NULL */
    const patient_evidence_disclosure *disclosures;
    size_t ndisclosures;
    /* The certificate chain of the page's own TLS connection as the
     * endpoint verified it (patient_response.tls_chain: SPKI SHA-256, leaf
     * first, trust anchor last). tls_chain_n == 0: not known (plain http,
     * a bundle that recorded none): who decrypted is then not judged. */
    const uint8_t (*tls_chain)[32];
    size_t tls_chain_n;
    /* Sharded manifest: the shards on the page's path, top first (at most
     * 3). Empty for a manifest in one file. */
    const patient_evidence_shard *shards;
    size_t nshards;
    /* Logged-change evidence (patient audit included --out): log_evidence[k]
     * is the JSON object that proves changes[k] is in its middlebox's log
     * (patient_log_evidence_check), or NULL; a NULL array: none at all.
     * offline: the evidence is a saved bundle checked later, the one case
     * where the policy's require.logged applies (a response just received
     * cannot be in a checkpoint yet). */
    const char *const *log_evidence;
    int offline;
} patient_evidence;

/* Clock skew allowed between the verifier and a middlebox, and between
 * two middleboxes: a hop dated more than this after the check's time is
 * change.time.future; one dated more than this before the hop it followed
 * is change.time.order. Seconds. */
#define PATIENT_VERIFY_CLOCK_SKEW 300

typedef struct patient_report patient_report;

/* Options for a verification. PATIENT_OPTS_INIT (or zero-initialise),
 * then set what you need. */
typedef struct patient_verify_opts {
    size_t size;              /* sizeof(patient_verify_opts) (error.h, PATIENT_OPTS_INIT) */
    time_t now;               /* the time to check against; 0 = time(NULL) at start */
    const char *state_file;   /* highest manifest version seen per origin (rollback
                                 protection); NULL = do not remember; see
                                 patient_state_file_default */
    int no_state_update;      /* check against the state file but do not write it */
    int strict;               /* (tools) treat modified as failure */
} patient_verify_opts;

/* Verify evidence offline against a policy. Never fails for bad evidence:
 * every problem becomes a result in the report. Errors are only local
 * (NOMEM, IO writing the state file). *report: free with
 * patient_report_free. Thread-safe if state_file is not shared. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_verify_evidence(const patient_policy *policy,
                                                               const patient_evidence *ev,
                                                               const patient_verify_opts *opts,
                                                               patient_report **report);

/* Fetch url (through fetch->proxy if set), its origin's manifest and
 * signature (cached, conditional requests, through the same proxy unless
 * manifest_direct; only when the policy names publisher keys for the
 * origin), the disclosures named by descriptors that verify with a key the
 * policy trusts (see PATIENT_VERIFY_MAX_DISCLOSURES), then verify. Nothing
 * named only by unauthenticated response data is ever requested.
 * body_override: when not NULL, verify these bytes (e.g. what a browser
 * received) instead of the fetched body, with the fetched headers.
 * received: when not NULL, the page is NOT fetched: its status, headers
 * (Patient-Change, Patient-Origin) and body are the ones given, e.g. what
 * a browser received; received->url (or url) names it. BORROWED for the
 * call; body_override is then ignored. The manifest and disclosures are
 * still fetched (they are signed, so where they come from does not
 * matter).
 * cache_dir NULL = the XDG default. bundle_out: when not NULL gets a
 * malloc'd self-contained evidence bundle (JSON) that
 * patient_verify_bundle re-verifies offline. */
/* What one page may make the verifier fetch besides itself: the manifest
 * and its signature (only for an origin the policy names publisher keys
 * for), and the disclosure + signature of at most this many distinct
 * middleboxes, each only after its descriptor verified with a key the
 * policy trusts. A disclosure is capped at PATIENT_DISCLOSURE_MAX_BYTES and
 * a signature at PATIENT_MINISIG_MAX_BYTES. */
#define PATIENT_VERIFY_MAX_DISCLOSURES 8
/* The verifier's shard cache (<cache_dir>/shards/, by content hash): when
 * it holds more than this many bytes or files after an addition, the
 * least recently used files are removed down to 3/4 of both. */
#define PATIENT_SHARD_CACHE_MAX_BYTES (32u * 1024 * 1024)
#define PATIENT_SHARD_CACHE_MAX_FILES 4096u

typedef struct patient_verify_fetch_opts {
    size_t size;                     /* sizeof(patient_verify_fetch_opts) (error.h) */
    const patient_fetch_opts *fetch; /* may be NULL */
    const char *cache_dir;
    int manifest_direct;             /* fetch manifest and disclosures without the proxy */
    const uint8_t *body_override;
    size_t body_override_len;
    const patient_response *received;
} patient_verify_fetch_opts;

PATIENT_EXPORT PATIENT_WUR patient_err patient_verify_url(const patient_policy *policy,
                                                          const char *url,
                                                          const patient_verify_fetch_opts *fopts,
                                                          const patient_verify_opts *opts,
                                                          patient_report **report,
                                                          char **bundle_out);

PATIENT_EXPORT PATIENT_WUR patient_verdict patient_report_verdict(const patient_report *r);
/* Number of results and the first result's code ("ok" when none). */
PATIENT_EXPORT size_t patient_report_result_count(const patient_report *r);
PATIENT_EXPORT const char *patient_report_result_code(const patient_report *r, size_t i);
/* The stable JSON report, pretty (indent) or compact. *out malloc'd. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_report_json(const patient_report *r, int pretty,
                                                           char **out);
/* The human report: verdict line, then per hop who, when, each edit's
 * where/what/why, then failed checks. color: use ANSI colours. verbose:
 * include info results. *out malloc'd. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_report_text(const patient_report *r, int color,
                                                           int verbose, char **out);
PATIENT_EXPORT void patient_report_free(patient_report *r);

/* The rollback state file (lib/rollback.c):
 * $XDG_STATE_HOME/patient/versions.json or ~/.local/state/patient/... */
PATIENT_EXPORT PATIENT_WUR patient_err patient_state_file_default(char **path);

#ifdef __cplusplus
}
#endif
#endif
