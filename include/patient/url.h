/* URL syntax shared by manifests, policies and the verifier: canonical
 * encoded paths and splitting a URL into its origin and path. Implemented
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

#ifdef __cplusplus
}
#endif
#endif
