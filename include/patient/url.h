/* URL syntax shared by manifests, policies and the verifier: canonical
 * encoded paths, splitting a URL into its origin and path, and whether a
 * URL is on an origin. Implemented
 * in lib/url.c. Included by manifest.h and policy.h, so code that uses
 * either keeps compiling unchanged. */
#ifndef PATIENT_URL_H
#define PATIENT_URL_H

#include <stddef.h>
#include <patient/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Canonical encoded URL path for a raw path (bytes; '/'-separated): every
 * byte outside RFC 3986 unreserved and '/' becomes %XX (upper-case hex).
 * *out malloc'd; caller frees. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_url_path_encode(const char *raw, size_t len,
                                                               char **out);

/* Split an http(s) URL into its serialised origin ("https://host[:port]",
 * scheme and host lower-cased, default port dropped) and its path (without
 * query or fragment, "/" when empty). Either output may be NULL; both are
 * malloc'd (free()). PATIENT_ERR_ARG for other schemes or no host;
 * PATIENT_ERR_PARSE for userinfo ("user@host") or a malformed port. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_policy_split_url(const char *url, char **origin,
                                                                char **path);

/* Whether url is on origin, as `patient audit monitor --origin` picks the
 * changes it shows: origin ("https://a.example"; trailing '/' ignored) is
 * a prefix of url without regard to case, and the URL ends there or goes
 * on with '/', '?' or '#' (so https://a.example is not
 * https://a.example.org, nor https://a.example:8443: a port must be in
 * origin). Compares text, parses nothing. 1 or 0 (0 when either is NULL). */
PATIENT_EXPORT int patient_url_on_origin(const char *url, const char *origin);

#ifdef __cplusplus
}
#endif
#endif
