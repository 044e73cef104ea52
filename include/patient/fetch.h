/* HTTP(S) fetching with libcurl: the only network code in libpatient.
 *
 * TLS certificate and host name verification are always on (system CA
 * store, or opts.ca_file); there is no option to turn them off. Only http
 * and https are spoken, also on redirects, and a redirect from https never
 * leads to plain http. Bodies are decoded (gzip, deflate) before the size
 * cap applies, so a compression bomb stops at max_body.
 *
 * Connection sockets (to the server or the proxy) are close-on-exec: a
 * program that forks and execs while a fetch is open does not pass them
 * to the child.
 *
 * Thread-safety: every function may be called from several threads at
 * once (curl_global_init runs once, under pthread_once; each thread keeps
 * its own cache of open connections, freed when it exits). */
#ifndef PATIENT_FETCH_H
#define PATIENT_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PATIENT_FETCH_MAX_BODY_DEFAULT (64u * 1024 * 1024)
#define PATIENT_FETCH_MAX_HEADERS_DEFAULT (256u * 1024)
#define PATIENT_FETCH_MAX_HEADER_LINE_DEFAULT (64u * 1024)
#define PATIENT_FETCH_MAX_HEADER_COUNT 1000
#define PATIENT_FETCH_MAX_CHAIN 16 /* certificates of a chain kept (tls_chain) */

typedef struct patient_fetch_opts {
    size_t size;              /* sizeof(patient_fetch_opts) (error.h, PATIENT_OPTS_INIT) */
    const char *proxy;        /* "http://host:port" etc.; NULL = no proxy (the
                                 *_proxy environment variables are ignored) */
    const char *ca_file;      /* PEM bundle; NULL = the system CA store */
    long connect_timeout_ms;  /* default 10000 */
    long timeout_ms;          /* whole transfer; default 60000 */
    long max_redirects;       /* default 5; 0 = do not follow */
    size_t max_body;          /* decoded bytes; default 64 MiB */
    size_t max_headers;       /* bytes of the final response's header block; 256 KiB */
    size_t max_header_line;   /* bytes of one header line; 64 KiB */
} patient_fetch_opts;

/* Fill opts with the defaults above (and size with this header's). */
PATIENT_EXPORT void patient_fetch_opts_init(patient_fetch_opts *opts);

typedef struct patient_header {
    char *name;  /* as received (compare case-insensitively) */
    char *value; /* leading/trailing blanks trimmed */
} patient_header;

/* A response. Read-only for the caller; free with patient_response_free. */
typedef struct patient_response {
    long status;           /* HTTP status of the final response (200, 404, ...) */
    char *url;             /* effective URL after redirects */
    uint8_t *body;         /* decoded body, NUL-terminated (not counted); never NULL */
    size_t body_len;
    patient_header *headers; /* final response's headers, in order; repeated
                                names (Patient-Change) stay separate */
    size_t nheaders;
    char *content_type;    /* NULL when absent */
    char *etag;            /* NULL when absent */
    char *last_modified;   /* NULL when absent */
    /* Transport facts of the final connection. */
    int tls;               /* 1 when the final URL is https */
    int tls_verified;      /* 1 when the certificate chain and name verified */
    char *tls_version;     /* "TLSv1.3" etc., NULL when unknown or not https */
    char *tls_cipher;      /* e.g. "TLS_AES_256_GCM_SHA384", NULL when unknown */
    /* The certificate chain the TLS library verified for the final
     * connection, leaf first and trust anchor last, as SHA-256 of each
     * certificate's DER SubjectPublicKeyInfo (patient/hash.h pins). An
     * interceptor's CA shows up here. tls_chain_n == 0: not https, or the
     * TLS library is not OpenSSL. At most PATIENT_FETCH_MAX_CHAIN (longer
     * chains: the first 15 and the anchor). */
    size_t tls_chain_n;
    uint8_t tls_chain[PATIENT_FETCH_MAX_CHAIN][32];
} patient_response;

/* GET url (http:// or https:// only: anything else is PATIENT_ERR_ARG).
 * opts may be NULL for the defaults. An HTTP error status is not an error:
 * read resp->status. Errors: PATIENT_ERR_FETCH (DNS, connect, TLS, too
 * many redirects, timeout...), PATIENT_ERR_TOO_LARGE (body or headers over
 * their caps, or a header line over libcurl's own 100 KiB limit; the
 * transfer is aborted early), PATIENT_ERR_GZIP (the body does not decode as
 * its Content-Encoding says). Nothing a server sends gives PATIENT_ERR_NOMEM. On error *detail (when detail
 * is not NULL) is a malloc'd message (curl's), caller frees with free().
 * *resp: free with patient_response_free. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_fetch(const patient_fetch_opts *opts,
                                                     const char *url, patient_response **resp,
                                                     char **detail);

/* Like patient_fetch, with a local cache and a conditional request.
 * cache_dir NULL: patient_cache_dir_default(). The folder is created 0700
 * when missing. Entries are named by the lower-case hex SHA-256 of the URL
 * ("<hex>.body", "<hex>.meta"), so the network never chooses a local path.
 * A stored entry sends If-None-Match / If-Modified-Since; a 304 answer
 * returns the stored body with status 200 and *from_cache = 1 (headers are
 * those of the 304). Only 200 responses are stored. An entry whose body no
 * longer matches the SHA-256 in its meta file is ignored. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_fetch_cached(const patient_fetch_opts *opts,
                                                            const char *url,
                                                            const char *cache_dir,
                                                            patient_response **resp,
                                                            int *from_cache, char **detail);

/* $XDG_CACHE_HOME/patient or $HOME/.cache/patient. *dir malloc'd (free()).
 * PATIENT_ERR_NOT_FOUND when neither variable is set to an absolute path. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_cache_dir_default(char **dir);

/* Cache file stem for a URL: 64 lower-case hex digits + NUL. */
PATIENT_EXPORT void patient_cache_name(const char *url, char out[65]);

/* First header with this name (case-insensitive), or NULL. Points into r. */
PATIENT_EXPORT const char *patient_response_header(const patient_response *r, const char *name);

/* Accepts NULL. */
PATIENT_EXPORT void patient_response_free(patient_response *r);

#ifdef __cplusplus
}
#endif
#endif
