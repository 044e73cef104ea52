/* URL syntax helpers the manifest code shares with lib/url.c. Never
 * installed. */
#ifndef PATIENT_URL_INT_H
#define PATIENT_URL_INT_H

#include <stddef.h>
#include "util.h"

/* Append raw (len bytes) percent-encoded: RFC 3986 unreserved and '/' stay,
 * every other byte becomes %XX (upper-case hex). */
patient_err pt_path_encode(pt_buf *b, const char *raw, size_t len);
/* Decode %XX escapes of a "/"-rooted path (refusing malformed escapes and
 * NUL), then re-encode it into out. */
patient_err pt_path_canonical(const char *in, pt_buf *out);
/* A path as the manifest builder writes it: canonical, "/"-rooted, no
 * empty, "." or ".." segments. PATIENT_ERR_PARSE or PATIENT_ERR_TOO_LARGE. */
patient_err pt_path_check(const char *p);
/* An origin as manifests carry it: "http(s)://host[:port]", lower case,
 * no path, no userinfo. PATIENT_ERR_PARSE otherwise. */
patient_err pt_origin_check(const char *o);
/* url without its fragment ("#..." is never sent: RFC 9110 section 4.2.4),
 * malloc'd into *out (free()). NULL url gives NULL. PATIENT_ERR_NOMEM. */
patient_err pt_url_drop_fragment(const char *url, char **out);

#endif
