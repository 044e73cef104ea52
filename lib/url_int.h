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
 * empty, "." or ".." segments. PATIENT_ERR_PARSE or PATIENT_ERR_TOO_LARGE,
 * or PATIENT_ERR_NOMEM (never reported as the path being wrong). */
patient_err pt_path_check(const char *p);
/* An origin as manifests carry it: "http(s)://host[:port]", lower case,
 * no path, no userinfo. PATIENT_ERR_PARSE otherwise. */
patient_err pt_origin_check(const char *o);
/* Which http(s) schemes pt_url_scheme_len accepts, and how. Each caller
 * states its own: an origin or a descriptor is compared byte for byte (its
 * format writes the scheme in lower case); a URL from outside is compared
 * case-blind (RFC 3986 section 3.1: schemes are case-insensitive): one
 * given to be fetched or split (and asked about once split), and the
 * request URL Squid hands the middlebox with its TLS facts. */
#define PT_URL_HTTP 1u    /* "http://" */
#define PT_URL_HTTPS 2u   /* "https://" */
#define PT_URL_ANYCASE 4u /* compare the scheme ignoring ASCII case */
#define PT_URL_HTTP_S (PT_URL_HTTP | PT_URL_HTTPS)
/* The length of url's scheme and "//" (7 for "http://", 8 for "https://")
 * when url starts with one that schemes allows, else 0 (a NULL url too).
 * Only the prefix is looked at: what follows is the caller's to check. */
size_t pt_url_scheme_len(const char *url, unsigned schemes);
/* url without its fragment ("#..." is never sent: RFC 9110 section 4.2.4),
 * malloc'd into *out (free()). NULL url gives NULL. PATIENT_ERR_NOMEM. */
patient_err pt_url_drop_fragment(const char *url, char **out);

#endif
