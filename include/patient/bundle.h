/* Evidence bundles: the self-contained record of one verification, written
 * by patient_verify_url (bundle_out) and re-verified offline (docs/format/
 * report.md, "Evidence bundle"). Implemented in lib/bundle.c. */
#ifndef PATIENT_BUNDLE_H
#define PATIENT_BUNDLE_H

#include <stddef.h>
#include <time.h>
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

/* Write evidence (+ the policy's JSON text and time) as a bundle, with the
 * evidence's certificate chain (tls_chain) when it has one. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_bundle_build(const patient_evidence *ev,
                                                            const char *policy_json,
                                                            time_t at, char **out);

#ifdef __cplusplus
}
#endif
#endif
