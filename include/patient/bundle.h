/* Evidence bundles: the self-contained record of one verification, written
 * by patient_verify_url (bundle_out) and re-verified offline (docs/format/
 * report.md, "Evidence bundle"). Implemented in lib/bundle.c. */
#ifndef PATIENT_BUNDLE_H
#define PATIENT_BUNDLE_H

#include <stddef.h>
#include <time.h>
#include <patient/change.h>
#include <patient/error.h>
#include <patient/policy.h>
#include <patient/verify.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Re-verify an evidence bundle offline. The bundle carries the policy and
 * the time it was made; policy (when not NULL) overrides the bundled one and
 * opts->now (when not 0) the bundled time. policy NULL trusts the policy
 * chosen by whoever made the bundle: tools pass the user's own policy
 * unless told otherwise (patient-verify --bundle-policy). A recorded HTTP
 * status other than 200 gives an unverifiable report (fetch.status), as
 * online. Malformed bundle (status missing or not an integer in 100..599
 * included): PATIENT_ERR_JSON, PATIENT_ERR_PARSE, PATIENT_ERR_TOO_LARGE
 * (over 256 MiB). */
#define PATIENT_BUNDLE_MAX (256u * 1024 * 1024)
PATIENT_EXPORT PATIENT_WUR patient_err patient_verify_bundle(const char *json, size_t len,
                                                             const patient_policy *policy,
                                                             const patient_verify_opts *opts,
                                                             patient_report **report);

/* Write evidence (+ the policy and the time at) as a bundle, with the
 * evidence's certificate chain (tls_chain) when it has one; *out malloc'd
 * (free()). The "policy" member holds the members patient_policy_serialize
 * writes; policy NULL writes it null. ev, its url or out NULL:
 * PATIENT_ERR_ARG; out of memory: PATIENT_ERR_NOMEM (never a bundle with a
 * member missing). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_bundle_build(const patient_evidence *ev,
                                                            const patient_policy *policy,
                                                            time_t at, char **out);


/* A bundle carries at most this many descriptors ("changes"): one more
 * than the hops a response may have (PATIENT_MAX_HOPS), so that a page
 * that came with too many is reported as such (change.limit), not refused
 * as a malformed bundle. Both readers below take the cap from here. */
#define PATIENT_BUNDLE_MAX_CHANGES (PATIENT_MAX_HOPS + 1)

/* A bundle's descriptors as read, for tools that need those alone (patient
 * audit included): opaque; free with patient_bundle_free. */
typedef struct patient_bundle patient_bundle;

/* Read json (at most PATIENT_BUNDLE_MAX bytes: TOO_LARGE; strict JSON:
 * JSON) for its descriptors, as patient_verify_bundle reads them: "changes"
 * an array of at most PATIENT_BUNDLE_MAX_CHANGES strings, "log_proofs"
 * absent, null, or one object or null per change; PATIENT_ERR_PARSE
 * otherwise, with *why (when why is not NULL) a static phrase saying what
 * is wrong. The page's own members (body, manifest, ...) are not checked
 * here: patient_verify_bundle does that. On PATIENT_OK *b is the bundle,
 * otherwise NULL. Nothing is verified: the descriptors are as recorded. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_bundle_read(const char *json, size_t len,
                                                           patient_bundle **b,
                                                           const char **why);
/* The descriptors, in order, and how many (0..PATIENT_BUNDLE_MAX_CHANGES):
 * the strings belong to b and stay valid until patient_bundle_free. */
PATIENT_EXPORT size_t patient_bundle_change_count(const patient_bundle *b);
PATIENT_EXPORT const char *const *patient_bundle_changes(const patient_bundle *b);
/* Descriptor k's logged-change evidence ("log_proofs"[k]) as compact JSON
 * text, the form patient_log_evidence_check reads: *json malloc'd (free()),
 * or NULL when the bundle has none for it. k past the count: ARG. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_bundle_log_proof(const patient_bundle *b,
                                                                size_t k, char **json);
/* Replace the bundle's "log_proofs" (written last): n must be the change
 * count (ARG), evidence[k] the JSON object text for descriptor k (as
 * patient_tlog_included gives it) or NULL for null; evidence may be NULL
 * when n is 0. An element that is not a JSON object: PARSE, the bundle
 * unchanged; out of memory: NOMEM. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_bundle_set_log_proofs(patient_bundle *b,
                                                                     const char *const *evidence,
                                                                     size_t n);
/* The bundle as JSON, pretty-printed as patient_bundle_build writes one;
 * *out malloc'd (free()). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_bundle_print(const patient_bundle *b, char **out);
PATIENT_EXPORT void patient_bundle_free(patient_bundle *b);

#ifdef __cplusplus
}
#endif
#endif
