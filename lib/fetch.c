/* HTTP(S) fetching with libcurl, and a small validator cache. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <patient/fetch.h>
#include <patient/hash.h>

#include "fetch_int.h"
#include "url_int.h"
#include "util.h"

#define CACHE_META_MAX (64u * 1024)
#define VALIDATOR_MAX 1024

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

/* One connection cache per thread for its one-shot transfers: the page,
 * its manifest, signature and disclosures usually share a host (or a
 * proxy), and each new TLS connection through a bumping proxy costs a
 * handshake on both sides of it. Per thread, not per process: libcurl
 * does not make a connection cache shared by threads at once safe (its
 * KNOWN_BUGS, "connection sharing between threads"; a transfer ending on
 * one thread writes to a connection another thread's eviction frees).
 * A pt_fetcher and a fetch queue, each owned by one thread, keep their
 * own (the handle's, the multi handle's). Only connections are shared,
 * never TLS sessions: a resumed session skips chain verification, and the
 * chain is what tls_chain reports. */
static pthread_key_t share_key;
static int share_key_ok;

static void
share_free(void *s)
{
    curl_share_cleanup(s);
}

/* This thread's cache, made on first use; NULL if it cannot be (every
 * transfer then opens its own connection). */
static CURLSH *
thread_share(void)
{
    CURLSH *s;

    if (!share_key_ok)
        return NULL;
    if ((s = pthread_getspecific(share_key)) != NULL)
        return s;
    if ((s = curl_share_init()) == NULL)
        return NULL;
    if (curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
        pthread_setspecific(share_key, s) != 0) {
        curl_share_cleanup(s);
        return NULL;
    }
    return s;
}

static void
curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
    share_key_ok = curl_init_result == CURLE_OK && pthread_key_create(&share_key, share_free) == 0;
}

void
patient_fetch_opts_init(patient_fetch_opts *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 60000;
    o->max_redirects = 5;
    o->max_body = PATIENT_FETCH_MAX_BODY_DEFAULT;
    o->max_headers = PATIENT_FETCH_MAX_HEADERS_DEFAULT;
    o->max_header_line = PATIENT_FETCH_MAX_HEADER_LINE_DEFAULT;
}

void
patient_response_free(patient_response *r)
{
    if (r == NULL)
        return;
    free(r->url);
    free(r->body);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->content_type);
    free(r->etag);
    free(r->last_modified);
    free(r->tls_version);
    free(r->tls_cipher);
    free(r);
}

const char *
patient_response_header(const patient_response *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

typedef struct {
    const patient_fetch_opts *o;
    CURL *curl;
    int sized; /* body buffer already sized from Content-Length */
    pt_buf *body;
    patient_header *h;
    size_t nh;
    size_t hbytes;
    int too_large; /* 1: body over max_body; 2: headers over their caps */
    int nomem;
    long block_status;  /* the status of the header block in hand */
    int block_ended;    /* its blank line came: what follows is no header of it */
    int final_ended;    /* the final response's block ended: body and trailers follow */
    char tls_version[32];
    char tls_cipher[128];
    size_t chain_n;
    uint8_t chain[PATIENT_FETCH_MAX_CHAIN][32];
    const pt_fetch_sink *sink;
    int to_sink;        /* -1: not asked yet; 0: kept; 1: the body goes to the sink */
    size_t sunk;        /* bytes given to the sink */
    patient_err sink_err;
} xfer;

static void
headers_clear(xfer *x)
{
    for (size_t i = 0; i < x->nh; i++) {
        free(x->h[i].name);
        free(x->h[i].value);
    }
    free(x->h);
    x->h = NULL;
    x->nh = 0;
    x->hbytes = 0;
}

/* Ask the sink whether it takes the body, once the final headers are in. */
static int
sink_ask(xfer *x)
{
    patient_response head;
    const char *eff = NULL;
    long status = 0;
    int rc;

    memset(&head, 0, sizeof head);
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &eff);
    head.status = status;
    head.url = (char *)eff;
    head.body = (uint8_t *)"";
    head.headers = x->h;
    head.nheaders = x->nh;
    head.tls = pt_url_scheme_len(eff, PT_URL_HTTPS | PT_URL_ANYCASE) != 0;
    head.tls_chain_n = x->chain_n;
    memcpy(head.tls_chain, x->chain, sizeof head.tls_chain);
    if (eff == NULL)
        return 0;
    rc = x->sink->head(x->sink->ctx, &head);
    if (rc < 0) {
        x->nomem = 1;
        return -1;
    }
    x->to_sink = rc > 0;
    return 0;
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;

    /* Only the final response's body reaches us (libcurl drops those of
     * the redirects it follows). */
    x->final_ended = 1;
    if (x->sink && x->to_sink < 0 && sink_ask(x) != 0)
        return 0;
    if (x->to_sink > 0) {
        /* Not kept: the cap counts what went to the sink. */
        if (n > x->o->max_body - x->sunk) {
            x->too_large = 1;
            return 0;
        }
        x->sunk += n;
        if ((x->sink_err = x->sink->data(x->sink->ctx, (const uint8_t *)ptr, n)) != PATIENT_OK)
            return 0;
        return n;
    }
    if (n > x->o->max_body - x->body->len) {
        x->too_large = 1;
        return 0; /* aborts the transfer now */
    }
    if (!x->sized && x->curl) {
        /* Reserve the announced length once (capped by max_body) instead of
         * growing by doubling: fewer copies and page faults on big pages.
         * The announced length is only a hint; the cap still applies. */
        curl_off_t cl = -1;
        x->sized = 1;
        if (curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
            cl > 0 && (uint64_t)cl <= x->o->max_body && x->body->len == 0 &&
            pt_buf_reserve_big(x->body, (size_t)cl) != PATIENT_OK) {
            x->nomem = 1;
            return 0;
        }
    }
    if (pt_buf_append(x->body, ptr, n) != PATIENT_OK) {
        x->nomem = 1;
        return 0;
    }
    return n;
}

static char *
dup_trimmed(const char *s, size_t n)
{
    char *r;

    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if ((r = malloc(n + 1)) == NULL)
        return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

/* The chain OpenSSL verified for the connection this response arrives on
 * (during the transfer curl hands out its SSL handle), as SPKI hashes:
 * with the trust anchor it is who really holds the other end of the TLS,
 * an origin or an interceptor. */
static void
record_chain(xfer *x)
{
    struct curl_tlssessioninfo *ti = NULL;
    STACK_OF(X509) *ch;
    int n;

    x->chain_n = 0;
    if (curl_easy_getinfo(x->curl, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || ti == NULL ||
        ti->backend != CURLSSLBACKEND_OPENSSL || ti->internals == NULL ||
        (ch = SSL_get0_verified_chain((SSL *)ti->internals)) == NULL)
        return;
    n = sk_X509_num(ch);
    for (int i = 0; i < n; i++) {
        /* keep the anchor when a chain is longer than the cap */
        int k = (i < PATIENT_FETCH_MAX_CHAIN - 1 || i == n - 1) ? i : -1;
        unsigned char *der = NULL;
        int len;
        if (k < 0)
            continue;
        len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(sk_X509_value(ch, i)), &der);
        if (len <= 0 || patient_sha256(der, (size_t)len, x->chain[x->chain_n]) != PATIENT_OK) {
            OPENSSL_free(der);
            x->chain_n = 0;
            return;
        }
        OPENSSL_free(der);
        x->chain_n++;
    }
}

static int
has_location(const xfer *x)
{
    for (size_t i = 0; i < x->nh; i++)
        if (strcasecmp(x->h[i].name, "Location") == 0)
            return 1;
    return 0;
}

static size_t
on_header(char *ptr, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t n = size * nitems;
    const char *colon;
    patient_header *nh;

    if (n > x->o->max_header_line || n > x->o->max_headers - x->hbytes) {
        x->too_large = 2;
        return 0;
    }
    /* Once the final response's header block ended, what comes is its
     * trailers (chunked, or HTTP/2): not recorded, so that the headers are
     * the same whether the body streams (the sink sees them at its first
     * byte) or is kept, and a trailer line, whatever it says (even
     * "HTTP/..."), changes nothing. Only their size counts. */
    if (x->final_ended) {
        x->hbytes += n;
        return n;
    }
    /* A status line starts a new response (redirect, 1xx): keep only the
     * final response's headers. (A proxy's CONNECT answer never comes
     * here: CURLOPT_SUPPRESS_CONNECT_HEADERS.) */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        const char *sp = memchr(ptr, ' ', n);
        size_t i = sp ? (size_t)(sp - ptr) + 1 : n;
        headers_clear(x);
        record_chain(x);
        x->hbytes = n;
        x->block_ended = 0;
        x->block_status = 0;
        for (size_t d = 0; d < 3 && i < n && ptr[i] >= '0' && ptr[i] <= '9'; d++, i++)
            x->block_status = x->block_status * 10 + (ptr[i] - '0');
        return n;
    }
    x->hbytes += n;
    if (x->block_ended)
        return n; /* trailers of a redirect's body: not this response's */
    if (n <= 2 && (ptr[0] == '\r' || ptr[0] == '\n')) {
        /* End of the header block. Another response follows only a 1xx,
         * or a redirect libcurl follows (a 3xx with a Location, redirects
         * on). Should libcurl not follow one, its body still ends the
         * headers (on_body); without a body, only a status line among
         * its trailers would still be taken for a new response. */
        long st = x->block_status;
        int more = (st >= 100 && st < 200) ||
                   (st >= 300 && st < 400 && x->o->max_redirects > 0 && has_location(x));
        x->block_ended = 1;
        x->final_ended = !more;
        return n;
    }
    if ((ptr[0] == ' ' || ptr[0] == '\t') && x->nh > 0) {
        /* obsolete line folding: append to the previous value */
        patient_header *last = &x->h[x->nh - 1];
        char *more = dup_trimmed(ptr, n), *joined;
        size_t a, b;
        if (more == NULL) {
            x->nomem = 1;
            return 0;
        }
        a = strlen(last->value);
        b = strlen(more);
        if ((joined = realloc(last->value, a + b + 2)) == NULL) {
            free(more);
            x->nomem = 1;
            return 0;
        }
        joined[a] = ' ';
        memcpy(joined + a + 1, more, b + 1);
        last->value = joined;
        free(more);
        return n;
    }
    if ((colon = memchr(ptr, ':', n)) == NULL || colon == ptr)
        return n; /* not a header line; ignore */
    if (x->nh >= PATIENT_FETCH_MAX_HEADER_COUNT) {
        x->too_large = 2;
        return 0;
    }
    if ((nh = realloc(x->h, (x->nh + 1) * sizeof *nh)) == NULL) {
        x->nomem = 1;
        return 0;
    }
    x->h = nh;
    nh[x->nh].name = dup_trimmed(ptr, (size_t)(colon - ptr));
    nh[x->nh].value = dup_trimmed(colon + 1, n - (size_t)(colon - ptr) - 1);
    x->nh++;
    if (nh[x->nh - 1].name == NULL || nh[x->nh - 1].value == NULL) {
        x->nomem = 1;
        return 0;
    }
    return n;
}

/* curl reports the negotiated protocol and cipher only as informational
 * text ("SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384 / ..."); the
 * last such line belongs to the final connection. Best effort. */
static int
on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
    static const char tag[] = "SSL connection using ";
    xfer *x = ud;
    const char *p, *end = data + size, *sep;
    size_t n;

    (void)h;
    if (type != CURLINFO_TEXT || size < sizeof tag - 1 || memcmp(data, tag, sizeof tag - 1) != 0)
        return 0;
    p = data + sizeof tag - 1;
    for (n = 0; p + n < end && p[n] != ' ' && p[n] != '\n' && p[n] != '\r'; n++)
        ;
    if (n == 0 || n >= sizeof x->tls_version)
        return 0;
    memcpy(x->tls_version, p, n);
    x->tls_version[n] = 0;
    x->tls_cipher[0] = 0;
    p += n;
    if (end - p > 3 && memcmp(p, " / ", 3) == 0) {
        p += 3;
        sep = p;
        while (sep < end && *sep != ' ' && *sep != '\n' && *sep != '\r')
            sep++;
        n = (size_t)(sep - p);
        if (n > 0 && n < sizeof x->tls_cipher) {
            memcpy(x->tls_cipher, p, n);
            x->tls_cipher[n] = 0;
        }
    }
    return 0;
}

static void
detail_set(char **detail, const char *msg)
{
    if (detail && *detail == NULL)
        *detail = strdup(msg);
}

static int
is_https(const char *url)
{
    return pt_url_scheme_len(url, PT_URL_HTTPS | PT_URL_ANYCASE) != 0;
}

/* A close-on-exec socket, as every descriptor the library opens: a
 * program that forks and execs on another thread hands the child none.
 * SOCK_CLOEXEC where defined, atomic against that fork; else FD_CLOEXEC
 * at once, closing the socket and failing (-1) if it cannot be set. */
static int
cloexec_socket(int family, int type, int proto)
{
    int fd;

#ifdef SOCK_CLOEXEC
    fd = socket(family, type | SOCK_CLOEXEC, proto);
#else
    if ((fd = socket(family, type, proto)) >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        close(fd);
        fd = -1;
    }
#endif
    return fd;
}

/* Every connection socket libcurl makes for us (one-off, fetcher, fetch
 * queue; to the server or the proxy, IPv4 or IPv6) is close-on-exec
 * (cloexec_socket): libcurl (7.88) makes its own with a plain socket(),
 * and a program that forks and execs while a fetch is open (srv_patient
 * inside c-icap, a monitor under a job runner) would hand the connection
 * to the child. CURL_SOCKET_BAD makes libcurl try the next address or
 * fail the connect. */
static curl_socket_t
on_opensocket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    int fd;

    (void)ud;
    (void)purpose;
    fd = cloexec_socket(a->family, a->socktype, a->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : (curl_socket_t)fd;
}

/* Every option our transfers set, one-off or through a fetcher; share:
 * the connection cache of a one-off (NULL: the handle's own). */
static CURLcode
xfer_setup(CURL *h, const patient_fetch_opts *opts, const char *url, xfer *x, char *errbuf,
           struct curl_slist *extra, CURLSH *share)
{
    CURLcode rc;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((rc = curl_easy_setopt(h, opt, val)) != CURLE_OK)                                      \
            return rc;                                                                             \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    /* Never downgrade from https to http on a redirect. */
    SET(CURLOPT_REDIR_PROTOCOLS_STR, is_https(url) ? "https" : "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS,
        (long)(is_https(url) ? CURLPROTO_HTTPS : (CURLPROTO_HTTP | CURLPROTO_HTTPS)));
#endif
    SET(CURLOPT_FOLLOWLOCATION, opts->max_redirects > 0 ? 1L : 0L);
    SET(CURLOPT_MAXREDIRS, opts->max_redirects > 0 ? opts->max_redirects : 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
    if (opts->ca_file)
        SET(CURLOPT_CAINFO, opts->ca_file);
    /* An explicit proxy, or none: environment variables play no part. */
    SET(CURLOPT_PROXY, opts->proxy ? opts->proxy : "");
    SET(CURLOPT_NOPROXY, "");
    SET(CURLOPT_ACCEPT_ENCODING, "");
    SET(CURLOPT_USERAGENT, "patient/" PACKAGE_VERSION);
    SET(CURLOPT_CONNECTTIMEOUT_MS, opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000L);
    SET(CURLOPT_TIMEOUT_MS, opts->timeout_ms > 0 ? opts->timeout_ms : 0L);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)opts->max_body);
    /* Receive in 256 KiB reads, not libcurl's 16 KiB: a 5 MB body took 330
     * recvfrom and as many poll calls, about 0.5 ms of CPU (the curl tool
     * reads 100 KiB at a time). Only the bytes that arrive touch the buffer. */
    SET(CURLOPT_BUFFERSIZE, 256L * 1024);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    /* A proxy's answer to CONNECT is not the response's: on_header takes
     * every header block it sees for one that may be final. */
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    if (share)
        SET(CURLOPT_SHARE, share);
    SET(CURLOPT_HTTPHEADER, extra);
#undef SET
    return CURLE_OK;
}

/* The TLS version and cipher a patient_response reports reach us only as
 * libcurl's verbose text (on_debug). Verbose costs a callback for every
 * header line and every chunk received and a formatted message for each
 * of libcurl's notes (a monitor catching up on 1,000,000 entries: about
 * 130,000 and 31,000), so only the one-off fetch, which reports them,
 * turns it on; the fetcher and the fetch queue return a status and a
 * body. */
static CURLcode
tls_text_setup(CURL *h, xfer *x)
{
    CURLcode rc;

    if ((rc = curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug)) != CURLE_OK ||
        (rc = curl_easy_setopt(h, CURLOPT_DEBUGDATA, x)) != CURLE_OK)
        return rc;
    return curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
}

/* What a failed transfer (rc, or our own callbacks' refusal) is. */
static patient_err
xfer_failure(CURLcode rc, const xfer *x, const char *errbuf, char **detail)
{
    if (x->nomem)
        return PATIENT_ERR_NOMEM;
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        detail_set(detail, x->too_large == 2
                               ? "response headers larger than the configured limit"
                               : "response body larger than the configured limit");
        return PATIENT_ERR_TOO_LARGE;
    }
    /* What the server sent must never look like a local failure. libcurl
     * refuses a header line over its own 100 KiB limit with a bare
     * CURLE_OUT_OF_MEMORY and no message; our own allocations did not fail
     * (x->nomem is 0), so that is the response being too large for it (a
     * true out-of-memory inside libcurl then fails closed the same way),
     * and names a body that does not decode CURLE_BAD_CONTENT_ENCODING. */
    if (rc == CURLE_OUT_OF_MEMORY) {
        detail_set(detail, "libcurl refused the response: a header line over its 100 KiB limit");
        return PATIENT_ERR_TOO_LARGE;
    }
    if (rc == CURLE_BAD_CONTENT_ENCODING) {
        detail_set(detail, "the body does not decode as its Content-Encoding says (corrupt or "
                           "truncated compressed data)");
        return PATIENT_ERR_GZIP;
    }
    detail_set(detail, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return PATIENT_ERR_FETCH;
}

/* Only http:// and https://, and said so. */
static int
url_refused(const char *url, char **detail)
{
    if (pt_url_scheme_len(url, PT_URL_HTTP_S | PT_URL_ANYCASE) != 0)
        return 0;
    detail_set(detail, "only http:// and https:// URLs are fetched");
    return 1;
}

/* The caller's options (or the defaults) into *o, and libcurl set up:
 * every entry point's first step. The URL is checked apart, once per
 * transfer (url_refused). */
static patient_err
fetch_opts_prepare(const patient_fetch_opts *opts, patient_fetch_opts *o, char **detail)
{
    patient_err err;

    if (opts == NULL)
        patient_fetch_opts_init(o);
    else if ((err = PT_OPTS_TAKE(o, opts)) != PATIENT_OK)
        return err;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK) {
        detail_set(detail, curl_easy_strerror(curl_init_result));
        return PATIENT_ERR_FETCH;
    }
    return PATIENT_OK;
}

static patient_err
fetch_with(const patient_fetch_opts *opts, const char *url, struct curl_slist *extra,
           const pt_fetch_sink *sink, patient_response **out, char **detail)
{
    patient_fetch_opts dflt;
    CURL *h = NULL;
    CURLcode rc;
    xfer x = {0};
    pt_buf body = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    patient_response *r = NULL;
    patient_err err = PATIENT_OK;
    const char *eff = NULL;
    long status = 0, verify = -1;

    if (out)
        *out = NULL;
    if (detail)
        *detail = NULL;
    if (url == NULL || out == NULL)
        return PATIENT_ERR_ARG;
    if (url_refused(url, detail))
        return PATIENT_ERR_ARG;
    if ((err = fetch_opts_prepare(opts, &dflt, detail)))
        return err;
    opts = &dflt;
    x.o = opts;
    x.body = &body;
    if ((h = curl_easy_init()) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    x.curl = h;
    x.sink = sink;
    x.to_sink = -1;
    if ((err = pt_buf_reserve(&body, 0)) != PATIENT_OK)
        goto out;
    if ((rc = xfer_setup(h, opts, url, &x, errbuf, extra, thread_share())) == CURLE_OK &&
        (rc = tls_text_setup(h, &x)) == CURLE_OK)
        rc = curl_easy_perform(h);
    if (x.sink_err != PATIENT_OK) {
        err = x.sink_err;
        goto out;
    }
    /* No body at all: the sink is asked all the same. */
    if (rc == CURLE_OK && !x.nomem && !x.too_large && sink && x.to_sink < 0)
        (void)sink_ask(&x);
    if (rc != CURLE_OK || x.nomem || x.too_large) {
        err = xfer_failure(rc, &x, errbuf, detail);
        goto out;
    }
    if ((r = calloc(1, sizeof *r)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
    r->status = status;
    if ((r->url = strdup(eff ? eff : url)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    r->body = body.data;
    r->body_len = body.len;
    body.data = NULL;
    r->headers = x.h;
    r->nheaders = x.nh;
    x.h = NULL;
    x.nh = 0;
    if (is_https(r->url)) {
        r->tls = 1;
        curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &verify);
        /* Verification is mandatory, so a completed https transfer has a
         * verified chain; keep the check explicit anyway. */
        r->tls_verified = verify == 0;
        r->tls_chain_n = x.chain_n;
        memcpy(r->tls_chain, x.chain, sizeof r->tls_chain);
        if ((x.tls_version[0] && (r->tls_version = strdup(x.tls_version)) == NULL) ||
            (x.tls_cipher[0] && (r->tls_cipher = strdup(x.tls_cipher)) == NULL)) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
    }
    {
        const char *ct = patient_response_header(r, "Content-Type");
        const char *et = patient_response_header(r, "ETag");
        const char *lm = patient_response_header(r, "Last-Modified");
        if ((ct && (r->content_type = strdup(ct)) == NULL) ||
            (et && (r->etag = strdup(et)) == NULL) ||
            (lm && (r->last_modified = strdup(lm)) == NULL)) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
    }
    *out = r;
    r = NULL;
out:
    if (h)
        curl_easy_cleanup(h);
    pt_buf_free(&body);
    headers_clear(&x);
    patient_response_free(r);
    return err;
}

/* ---- a fetcher: many GETs on one handle --------------------------------- */

/* A reused handle's next transfer: url checked, *o the fetcher's options
 * with this cap (max_body 0 keeps theirs), the body reset into x. */
static patient_err
reuse_prepare(const char *url, size_t max_body, pt_buf *body, CURL *h, patient_fetch_opts *o,
              xfer *x, char **detail)
{
    patient_err err;

    if (url_refused(url, detail))
        return PATIENT_ERR_ARG;
    if (max_body)
        o->max_body = max_body;
    body->len = 0;
    x->o = o;
    x->body = body;
    x->curl = h;
    if ((err = pt_buf_reserve(body, 0)) != PATIENT_OK)
        return err;
    body->data[0] = 0;
    return PATIENT_OK;
}

/* Point a reused handle away from a finished transfer's buffers: libcurl
 * may still speak (a connection closing) before the next one. */
static void
reuse_end(CURL *h, xfer *x)
{
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    headers_clear(x);
}

struct pt_fetcher {
    patient_fetch_opts o;
    CURL *h;
};

patient_err
pt_fetcher_new(const patient_fetch_opts *opts, pt_fetcher **out)
{
    pt_fetcher *f;
    patient_err err;

    *out = NULL;
    if ((f = calloc(1, sizeof *f)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = fetch_opts_prepare(opts, &f->o, NULL))) {
        free(f);
        return err;
    }
    if ((f->h = curl_easy_init()) == NULL) {
        free(f);
        return PATIENT_ERR_NOMEM;
    }
    *out = f;
    return PATIENT_OK;
}

patient_err
pt_fetcher_get(pt_fetcher *f, const char *url, size_t max_body, pt_buf *body, long *status,
               char **detail)
{
    xfer x = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    patient_fetch_opts o = f->o;
    CURLcode rc;
    patient_err err = PATIENT_OK;

    if (detail)
        *detail = NULL;
    *status = 0;
    if ((err = reuse_prepare(url, max_body, body, f->h, &o, &x, detail)) != PATIENT_OK)
        return err;
    /* The same handle again: its connection and libcurl's own buffers are
     * kept, only this transfer's options change. */
    if ((rc = xfer_setup(f->h, &o, url, &x, errbuf, NULL, NULL)) == CURLE_OK)
        rc = curl_easy_perform(f->h);
    if (rc != CURLE_OK || x.nomem || x.too_large)
        err = xfer_failure(rc, &x, errbuf, detail);
    else
        curl_easy_getinfo(f->h, CURLINFO_RESPONSE_CODE, status);
    reuse_end(f->h, &x); /* (errbuf is this stack frame's) */
    return err;
}

void
pt_fetcher_free(pt_fetcher *f)
{
    if (f == NULL)
        return;
    curl_easy_cleanup(f->h);
    free(f);
}

/* ---- a fetch queue: several GETs in flight on one thread --------------- */

struct fq_slot {
    CURL *h;
    xfer x;
    patient_fetch_opts o; /* the queue's, with this transfer's cap */
    char errbuf[CURL_ERROR_SIZE];
    int busy, done;
    CURLcode rc;
};

struct pt_fetchq {
    patient_fetch_opts o;
    CURLM *m;
    unsigned n;
    int rcvbuf; /* SO_RCVBUF of its connections; 0: the kernel's autotuning */
    struct fq_slot s[PT_FETCHQ_MAX];
};

/* Whether the kernel grants a socket receive buffer of window bytes
 * whole: it cuts SO_RCVBUF to net.core.rmem_max (208 KiB by default on
 * Linux) without an error, and a buffer fixed below what autotuning
 * would give is worse than none. Asked of a socket made for the purpose,
 * since a connection's cannot go back to autotuning once set. */
static int
rcvbuf_granted(int window)
{
    int fd, got = 0;
    socklen_t len = sizeof got;

    if ((fd = cloexec_socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return 0;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &window, sizeof window) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) != 0)
        got = 0;
    close(fd);
#ifdef __linux__
    return got / 2 >= window; /* it reports twice what it keeps: its overhead */
#else
    return got >= window;
#endif
}

/* Before the connection is made, so that the window it offers from its
 * first segment on is the buffer's (pt_fetchq_new says why). Best
 * effort: a refusal leaves autotuning. */
static int
fq_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    const pt_fetchq *q = ud;

    if (purpose == CURLSOCKTYPE_IPCXN && q->rcvbuf > 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &q->rcvbuf, sizeof q->rcvbuf);
    return CURL_SOCKOPT_OK;
}

patient_err
pt_fetchq_new(const patient_fetch_opts *opts, unsigned n, size_t window, pt_fetchq **out)
{
    pt_fetchq *q;
    patient_err err;

    *out = NULL;
    if (n == 0 || n > PT_FETCHQ_MAX)
        return PATIENT_ERR_ARG;
    if ((q = calloc(1, sizeof *q)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = fetch_opts_prepare(opts, &q->o, NULL))) {
        free(q);
        return err;
    }
    q->n = n;
    if (window > 0 && window <= INT_MAX && rcvbuf_granted((int)window))
        q->rcvbuf = (int)window;
    if ((q->m = curl_multi_init()) == NULL)
        goto nomem;
    for (unsigned i = 0; i < n; i++) {
        /* Set once: xfer_setup leaves these alone. */
        if ((q->s[i].h = curl_easy_init()) == NULL ||
            curl_easy_setopt(q->s[i].h, CURLOPT_SOCKOPTFUNCTION, fq_sockopt) != CURLE_OK ||
            curl_easy_setopt(q->s[i].h, CURLOPT_SOCKOPTDATA, q) != CURLE_OK)
            goto nomem;
    }
    *out = q;
    return PATIENT_OK;
nomem:
    pt_fetchq_free(q);
    return PATIENT_ERR_NOMEM;
}

/* Off the multi handle, and pointed away from the slot's buffers. */
static void
fq_end(pt_fetchq *q, struct fq_slot *sl)
{
    if (!sl->busy)
        return;
    curl_multi_remove_handle(q->m, sl->h);
    reuse_end(sl->h, &sl->x);
    sl->busy = sl->done = 0;
}

/* libcurl's news of finished transfers, into their slots. */
static void
fq_collect(pt_fetchq *q)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(q->m, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        for (unsigned i = 0; i < q->n; i++)
            if (q->s[i].busy && q->s[i].h == msg->easy_handle) {
                q->s[i].done = 1;
                q->s[i].rc = msg->data.result;
            }
    }
}

patient_err
pt_fetchq_start(pt_fetchq *q, const char *url, size_t max_body, pt_buf *body, unsigned *id,
                char **detail)
{
    struct fq_slot *sl = NULL;
    CURLcode rc;
    CURLMcode mc;
    patient_err err;
    int running;

    if (detail)
        *detail = NULL;
    for (unsigned i = 0; i < q->n && sl == NULL; i++)
        if (!q->s[i].busy) {
            sl = &q->s[i];
            *id = i;
        }
    if (sl == NULL)
        return PATIENT_ERR_ARG; /* the caller waits for one first */
    memset(&sl->x, 0, sizeof sl->x);
    sl->o = q->o;
    sl->errbuf[0] = '\0';
    if ((err = reuse_prepare(url, max_body, body, sl->h, &sl->o, &sl->x, detail)) != PATIENT_OK)
        return err;
    if ((rc = xfer_setup(sl->h, &sl->o, url, &sl->x, sl->errbuf, NULL, NULL)) != CURLE_OK) {
        err = xfer_failure(rc, &sl->x, sl->errbuf, detail);
        headers_clear(&sl->x);
        return err;
    }
    if (curl_multi_add_handle(q->m, sl->h) != CURLM_OK) {
        headers_clear(&sl->x);
        return PATIENT_ERR_NOMEM;
    }
    sl->busy = 1;
    sl->done = 0;
    /* On its way now (the connection, the request sent), not at the next
     * wait. */
    if ((mc = curl_multi_perform(q->m, &running)) != CURLM_OK) {
        detail_set(detail, curl_multi_strerror(mc));
        fq_end(q, sl);
        return mc == CURLM_OUT_OF_MEMORY ? PATIENT_ERR_NOMEM : PATIENT_ERR_FETCH;
    }
    fq_collect(q);
    return PATIENT_OK;
}

patient_err
pt_fetchq_wait(pt_fetchq *q, unsigned id, long *status, char **detail)
{
    struct fq_slot *sl;
    patient_err err = PATIENT_OK;
    CURLMcode mc = CURLM_OK;
    int running;

    if (detail)
        *detail = NULL;
    *status = 0;
    if (id >= q->n || !q->s[id].busy)
        return PATIENT_ERR_ARG;
    sl = &q->s[id];
    fq_collect(q);
    while (!sl->done && mc == CURLM_OK) {
        /* The transfers' own timeouts end a wait that never ends
         * otherwise: each transfer keeps CURLOPT_TIMEOUT_MS. */
#if LIBCURL_VERSION_NUM >= 0x074200
        mc = curl_multi_poll(q->m, NULL, 0, 1000, NULL);
#else
        mc = curl_multi_wait(q->m, NULL, 0, 1000, NULL);
#endif
        if (mc == CURLM_OK)
            mc = curl_multi_perform(q->m, &running);
        fq_collect(q);
    }
    if (!sl->done) {
        detail_set(detail, curl_multi_strerror(mc));
        err = mc == CURLM_OUT_OF_MEMORY ? PATIENT_ERR_NOMEM : PATIENT_ERR_FETCH;
    } else if (sl->rc != CURLE_OK || sl->x.nomem || sl->x.too_large)
        err = xfer_failure(sl->rc, &sl->x, sl->errbuf, detail);
    else
        curl_easy_getinfo(sl->h, CURLINFO_RESPONSE_CODE, status);
    fq_end(q, sl);
    return err;
}

void
pt_fetchq_cancel(pt_fetchq *q, unsigned id)
{
    if (q != NULL && id < q->n)
        fq_end(q, &q->s[id]);
}

void
pt_fetchq_free(pt_fetchq *q)
{
    if (q == NULL)
        return;
    for (unsigned i = 0; i < q->n; i++) {
        fq_end(q, &q->s[i]);
        curl_easy_cleanup(q->s[i].h);
    }
    curl_multi_cleanup(q->m);
    free(q);
}

patient_err
patient_fetch(const patient_fetch_opts *opts, const char *url, patient_response **resp,
              char **detail)
{
    return fetch_with(opts, url, NULL, NULL, resp, detail);
}

patient_err
pt_fetch_sink_get(const patient_fetch_opts *opts, const char *url, const pt_fetch_sink *sink,
                  patient_response **resp, char **detail)
{
    return fetch_with(opts, url, NULL, sink, resp, detail);
}

/* ---- cache ------------------------------------------------------------------ */

void
patient_cache_name(const char *url, char out[65])
{
    uint8_t h[PATIENT_SHA256_BYTES];

    if (url == NULL || patient_sha256(url, strlen(url), h) != PATIENT_OK) {
        memset(out, '0', 64);
        out[64] = 0;
        return;
    }
    pt_hex(h, sizeof h, out);
}

patient_err
patient_cache_dir_default(char **dir)
{
    return pt_xdg_path("XDG_CACHE_HOME", ".cache", "patient", dir);
}


/* A validator we are willing to send back: printable ASCII, bounded. */
static int
validator_ok(const char *v)
{
    size_t n;

    if (v == NULL || (n = strlen(v)) == 0 || n > VALIDATOR_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return 0;
    return 1;
}

typedef struct {
    uint8_t *body;
    size_t len;
    char *etag, *last_modified, *content_type;
} cache_entry;

static void
entry_clear(cache_entry *e)
{
    free(e->body);
    free(e->etag);
    free(e->last_modified);
    free(e->content_type);
    memset(e, 0, sizeof *e);
}

/* Load and check an entry; anything odd means "no entry". */
static int
entry_load(const char *stem, const char *url, size_t max_body, cache_entry *e)
{
    char path[4300], hex[65];
    uint8_t *meta = NULL, h[PATIENT_SHA256_BYTES];
    size_t mlen = 0;
    cJSON *j = NULL;
    const char *s;
    long long size;
    int ok = 0;

    memset(e, 0, sizeof *e);
    snprintf(path, sizeof path, "%s.meta", stem);
    if (pt_read_file(path, CACHE_META_MAX, &meta, &mlen) != PATIENT_OK ||
        pt_json_parse((const char *)meta, mlen, &j) != PATIENT_OK)
        goto out;
    if ((s = pt_json_str(j, "url")) == NULL || strcmp(s, url) != 0 ||
        pt_json_int(j, "size", &size) != 0 || size < 0 || (unsigned long long)size > max_body ||
        (s = pt_json_str(j, "sha256")) == NULL)
        goto out;
    snprintf(path, sizeof path, "%s.body", stem);
    if (pt_read_file(path, max_body, &e->body, &e->len) != PATIENT_OK ||
        e->len != (size_t)size || patient_sha256(e->body, e->len, h) != PATIENT_OK)
        goto out;
    pt_hex(h, sizeof h, hex);
    if (strcmp(hex, s) != 0)
        goto out;
    if ((s = pt_json_str(j, "etag")) && validator_ok(s) && (e->etag = strdup(s)) == NULL)
        goto out;
    if ((s = pt_json_str(j, "last_modified")) && validator_ok(s) &&
        (e->last_modified = strdup(s)) == NULL)
        goto out;
    if ((s = pt_json_str(j, "content_type")) && (e->content_type = strdup(s)) == NULL)
        goto out;
    ok = e->etag != NULL || e->last_modified != NULL;
out:
    if (!ok)
        entry_clear(e);
    cJSON_Delete(j);
    free(meta);
    return ok;
}

/* Body first, then meta (which names the body's hash): a crash between
 * the two leaves a meta that no longer matches, which is ignored. */
static void
entry_store(const char *stem, const char *url, const patient_response *r)
{
    char path[4300], hex[65];
    uint8_t h[PATIENT_SHA256_BYTES];
    cJSON *j = NULL;
    char *text = NULL;

    if (!validator_ok(r->etag) && !validator_ok(r->last_modified))
        return; /* nothing to revalidate with */
    {
        /* A Last-Modified within a second or so of the response's Date is a
         * weak validator (RFC 9110, 8.8.2.2): the file may change again in
         * the same second with the same date (and, with nginx, the same
         * mtime-based ETag). A manifest re-published that quickly must not
         * be answered from a stale cache, so do not keep such a copy. */
        const char *date = patient_response_header(r, "Date");
        time_t lm = r->last_modified ? curl_getdate(r->last_modified, NULL) : -1;
        time_t now = date ? curl_getdate(date, NULL) : time(NULL);
        if (lm != -1 && now != -1 && now - lm < 2)
            return;
    }
    if (patient_sha256(r->body, r->body_len, h) != PATIENT_OK)
        return;
    pt_hex(h, sizeof h, hex);
    snprintf(path, sizeof path, "%s.body", stem);
    if (pt_write_atomic(path, r->body, r->body_len, 0600, 0) != PATIENT_OK)
        return;
    if ((j = cJSON_CreateObject()) == NULL || !cJSON_AddStringToObject(j, "url", url) ||
        !cJSON_AddNumberToObject(j, "size", (double)r->body_len) ||
        !cJSON_AddStringToObject(j, "sha256", hex) ||
        (validator_ok(r->etag) && !cJSON_AddStringToObject(j, "etag", r->etag)) ||
        (validator_ok(r->last_modified) &&
         !cJSON_AddStringToObject(j, "last_modified", r->last_modified)) ||
        (r->content_type && !cJSON_AddStringToObject(j, "content_type", r->content_type)) ||
        pt_json_print(j, &text) != PATIENT_OK)
        goto out;
    snprintf(path, sizeof path, "%s.meta", stem);
    (void)pt_write_atomic(path, text, strlen(text), 0600, 0);
out:
    free(text);
    cJSON_Delete(j);
}

patient_err
patient_fetch_cached(const patient_fetch_opts *opts, const char *url, const char *cache_dir,
                     patient_response **resp, int *from_cache, char **detail)
{
    patient_fetch_opts dflt;
    char *dir = NULL, name[65], stem[4200];
    struct curl_slist *hdrs = NULL, *nl;
    cache_entry e = {0};
    pt_buf line = {0};
    patient_response *r = NULL;
    patient_err err;
    int have = 0;

    if (from_cache)
        *from_cache = 0;
    if (resp)
        *resp = NULL;
    if (detail)
        *detail = NULL;
    if (url == NULL || resp == NULL)
        return PATIENT_ERR_ARG;
    if (opts == NULL)
        patient_fetch_opts_init(&dflt);
    else if ((err = PT_OPTS_TAKE(&dflt, opts)) != PATIENT_OK)
        return err;
    opts = &dflt;
    if (cache_dir == NULL) {
        if ((err = patient_cache_dir_default(&dir)) != PATIENT_OK)
            goto out;
        cache_dir = dir;
    }
    if ((err = pt_mkdir_private(cache_dir)) != PATIENT_OK) {
        detail_set(detail, "cache folder missing, not ours, or writable by others");
        goto out;
    }
    patient_cache_name(url, name);
    if ((size_t)snprintf(stem, sizeof stem, "%s/%s", cache_dir, name) >= sizeof stem) {
        err = PATIENT_ERR_ARG;
        goto out;
    }
    have = entry_load(stem, url, opts->max_body, &e);
    if (have && e.etag) {
        if ((err = pt_buf_appendf(&line, "If-None-Match: %s", e.etag)))
            goto out;
        if ((nl = curl_slist_append(hdrs, (char *)line.data)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        hdrs = nl;
        pt_buf_free(&line);
    }
    if (have && e.last_modified) {
        if ((err = pt_buf_appendf(&line, "If-Modified-Since: %s", e.last_modified)))
            goto out;
        if ((nl = curl_slist_append(hdrs, (char *)line.data)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        hdrs = nl;
    }
    if ((err = fetch_with(opts, url, hdrs, NULL, &r, detail)) != PATIENT_OK)
        goto out;
    if (r->status == 304 && have) {
        free(r->body);
        r->body = e.body;
        r->body_len = e.len;
        e.body = NULL;
        r->status = 200;
        if (r->content_type == NULL) {
            r->content_type = e.content_type;
            e.content_type = NULL;
        }
        if (r->etag == NULL) {
            r->etag = e.etag;
            e.etag = NULL;
        }
        if (r->last_modified == NULL) {
            r->last_modified = e.last_modified;
            e.last_modified = NULL;
        }
        if (from_cache)
            *from_cache = 1;
    } else if (r->status == 200) {
        entry_store(stem, url, r);
    }
    *resp = r;
    r = NULL;
out:
    curl_slist_free_all(hdrs);
    pt_buf_free(&line);
    entry_clear(&e);
    patient_response_free(r);
    free(dir);
    return err;
}
