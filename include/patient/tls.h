/* TLS protocol versions as descriptors (a hop's upstream "tls"),
 * disclosures ("upstream_tls_min") and policies ("require.min_upstream_tls")
 * name them. Implemented in lib/tls.c. Included by policy.h, so code that
 * used it from there keeps compiling unchanged. */
#ifndef PATIENT_TLS_H
#define PATIENT_TLS_H

#include <patient/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* TLS protocol versions as curl, OpenSSL and our descriptors spell them
 * ("SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"): a rank
 * that orders them (higher is newer), or 0 for anything else. */
PATIENT_EXPORT int patient_tls_version_rank(const char *version);

#ifdef __cplusplus
}
#endif
#endif
