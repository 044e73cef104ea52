/* URL syntax: canonical encoded paths, http(s) origins, and splitting a
 * URL into origin and path. Formats: docs/format/manifest.md (paths and
 * origins in manifests), docs/format/policy.md (origins in policies). */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <patient/manifest.h>
#include <patient/url.h>
#include "url_int.h"
#include "util.h"

/* ---- URL paths ---- */

static int
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

patient_err
pt_path_encode(pt_buf *b, const char *raw, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    patient_err err;

    if ((err = pt_buf_reserve(b, 3 * len)) != PATIENT_OK)
        return err;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (unreserved(c) || c == '/') {
            b->data[b->len++] = c;
        } else {
            b->data[b->len++] = '%';
            b->data[b->len++] = (uint8_t)hex[c >> 4];
            b->data[b->len++] = (uint8_t)hex[c & 15];
        }
    }
    b->data[b->len] = 0;
    return PATIENT_OK;
}

patient_err
patient_url_path_encode(const char *raw, size_t len, char **out)
{
    pt_buf b = {0};
    patient_err err;

    *out = NULL;
    if ((err = pt_path_encode(&b, raw, len)) != PATIENT_OK || (err = pt_buf_reserve(&b, 0))) {
        pt_buf_free(&b);
        return err;
    }
    *out = (char *)b.data;
    return PATIENT_OK;
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode %XX escapes (refusing malformed escapes and NUL), then re-encode. */
patient_err
pt_path_canonical(const char *in, pt_buf *out)
{
    pt_buf raw = {0};
    size_t n = strlen(in);
    patient_err err = PATIENT_OK;

    if (n == 0 || in[0] != '/' || n > PATIENT_MANIFEST_MAX_PATH * 3)
        return n > PATIENT_MANIFEST_MAX_PATH * 3 ? PATIENT_ERR_TOO_LARGE : PATIENT_ERR_PARSE;
    if ((err = pt_buf_reserve(&raw, n)) != PATIENT_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)in[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= n) {
                err = PATIENT_ERR_PARSE;
                goto out;
            }
            if ((h = hexval(in[i + 1])) < 0 || (l = hexval(in[i + 2])) < 0) {
                err = PATIENT_ERR_PARSE;
                goto out;
            }
            c = (uint8_t)(h << 4 | l);
            i += 2;
        }
        if (c == 0) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        raw.data[raw.len++] = c;
    }
    err = pt_path_encode(out, (const char *)raw.data, raw.len);
out:
    pt_buf_free(&raw);
    return err;
}

/* A path as the builder writes it: canonical, "/"-rooted, no empty, "."
 * or ".." segments (a trailing "/" is a folder index). */
patient_err
pt_path_check(const char *p)
{
    pt_buf c = {0};
    size_t n = strlen(p);
    patient_err err;

    if (n > PATIENT_MANIFEST_MAX_PATH)
        return PATIENT_ERR_TOO_LARGE;
    if ((err = pt_path_canonical(p, &c)) != PATIENT_OK)
        return err == PATIENT_ERR_TOO_LARGE || err == PATIENT_ERR_NOMEM ? err : PATIENT_ERR_PARSE;
    err = c.len == n && memcmp(c.data, p, n) == 0 ? PATIENT_OK : PATIENT_ERR_PARSE;
    pt_buf_free(&c);
    if (err)
        return err;
    for (const char *s = p; *s; ) {
        const char *seg = s + 1, *e = strchr(seg, '/');
        size_t sl = e ? (size_t)(e - seg) : strlen(seg);
        if (sl == 0 && e != NULL)
            return PATIENT_ERR_PARSE; /* "//" */
        if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
            return PATIENT_ERR_PARSE;
        if (e == NULL)
            break;
        s = e;
    }
    return PATIENT_OK;
}

/* ---- schemes ---- */

size_t
pt_url_scheme_len(const char *url, unsigned schemes)
{
    int (*cmp)(const char *, const char *, size_t) =
        (schemes & PT_URL_ANYCASE) ? strncasecmp : strncmp;

    if (url == NULL)
        return 0;
    if ((schemes & PT_URL_HTTPS) && cmp(url, "https://", 8) == 0)
        return 8;
    if ((schemes & PT_URL_HTTP) && cmp(url, "http://", 7) == 0)
        return 7;
    return 0;
}

/* ---- origins ---- */

patient_err
pt_origin_check(const char *o)
{
    const char *h, *p;
    size_t n, skip;

    if (o == NULL || (n = strlen(o)) == 0 || n > PATIENT_MANIFEST_MAX_ORIGIN)
        return PATIENT_ERR_PARSE;
    if ((skip = pt_url_scheme_len(o, PT_URL_HTTP_S)) == 0)
        return PATIENT_ERR_PARSE;
    h = o + skip;
    if (*h == '[') { /* IPv6 literal */
        p = h + 1;
        while (*p && (strchr("0123456789abcdef:.", *p) != NULL))
            p++;
        if (*p != ']' || p == h + 1)
            return PATIENT_ERR_PARSE;
        p++;
    } else {
        char prev = '.';
        p = h;
        while (*p && *p != ':') {
            char c = *p;
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
                return PATIENT_ERR_PARSE; /* upper case, path, userinfo, query... */
            if ((c == '.' && (prev == '.' || prev == '-')) || (c == '-' && prev == '.'))
                return PATIENT_ERR_PARSE;
            prev = c;
            p++;
        }
        if (p == h || prev == '.' || prev == '-')
            return PATIENT_ERR_PARSE;
    }
    if (*p == ':') {
        unsigned long port = 0;
        const char *d = ++p;
        while (*p >= '0' && *p <= '9' && p - d < 6)
            port = port * 10 + (unsigned long)(*p++ - '0');
        if (p == d || *d == '0' || port > 65535)
            return PATIENT_ERR_PARSE;
    }
    return *p == 0 ? PATIENT_OK : PATIENT_ERR_PARSE;
}

/* ---- a URL on an origin ---- */

int
patient_url_on_origin(const char *url, const char *origin)
{
    size_t n;

    if (origin == NULL)
        return 0;
    n = strlen(origin);
    while (n > 0 && origin[n - 1] == '/')
        n--;
    return url && strncasecmp(url, origin, n) == 0 &&
           (url[n] == '\0' || url[n] == '/' || url[n] == '?' || url[n] == '#');
}

/* ---- splitting URLs ---- */

patient_err
patient_policy_split_url(const char *url, char **origin, char **path)
{
    const char *p, *auth, *aend, *host, *hend, *port = NULL;
    size_t slen;
    int https;
    long portv = -1;
    pt_buf o = {0};
    patient_err err = PATIENT_OK;

    if (origin)
        *origin = NULL;
    if (path)
        *path = NULL;
    if (url == NULL)
        return PATIENT_ERR_ARG;
    if ((slen = pt_url_scheme_len(url, PT_URL_HTTP_S | PT_URL_ANYCASE)) == 0)
        return PATIENT_ERR_ARG;
    https = slen == 8;
    auth = url + slen;
    aend = auth + strcspn(auth, "/?#");
    if (aend == auth)
        return PATIENT_ERR_ARG;
    if (memchr(auth, '@', (size_t)(aend - auth)))
        return PATIENT_ERR_PARSE;
    host = auth;
    if (*host == '[') {
        const char *rb = memchr(host, ']', (size_t)(aend - host));
        if (rb == NULL)
            return PATIENT_ERR_PARSE;
        hend = rb + 1;
        if (hend < aend) {
            if (*hend != ':')
                return PATIENT_ERR_PARSE;
            port = hend + 1;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(aend - host));
        hend = colon ? colon : aend;
        if (colon)
            port = colon + 1;
    }
    if (hend == host)
        return PATIENT_ERR_ARG;
    for (p = host; p < hend; p++)
        if (!(isalnum((unsigned char)*p) || strchr("-._[]:", *p)))
            return PATIENT_ERR_PARSE;
    if (port) {
        if (port == aend || aend - port > 5)
            return PATIENT_ERR_PARSE;
        portv = 0;
        for (p = port; p < aend; p++) {
            if (*p < '0' || *p > '9')
                return PATIENT_ERR_PARSE;
            portv = portv * 10 + (*p - '0');
        }
        if (portv < 1 || portv > 65535)
            return PATIENT_ERR_PARSE;
        if (portv == (https ? 443 : 80))
            portv = -1;
    }
    if ((err = pt_buf_appendf(&o, "%s://", https ? "https" : "http")))
        goto out;
    for (p = host; p < hend; p++) {
        char c = (char)tolower((unsigned char)*p);
        if ((err = pt_buf_append(&o, &c, 1)))
            goto out;
    }
    if (portv > 0 && (err = pt_buf_appendf(&o, ":%ld", portv)))
        goto out;
    if (path) {
        size_t n = strcspn(aend, "?#");
        if (n == 0) {
            *path = strdup("/");
        } else if ((*path = malloc(n + 1)) != NULL) {
            memcpy(*path, aend, n);
            (*path)[n] = 0;
        }
        if (*path == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
    }
    if (origin) {
        *origin = (char *)o.data;
        o.data = NULL;
    }
out:
    pt_buf_free(&o);
    return err;
}

patient_err
pt_url_drop_fragment(const char *url, char **out)
{
    const char *hash;

    *out = NULL;
    if (url == NULL)
        return PATIENT_OK;
    hash = strchr(url, '#');
    *out = hash ? strndup(url, (size_t)(hash - url)) : strdup(url);
    return *out ? PATIENT_OK : PATIENT_ERR_NOMEM;
}
