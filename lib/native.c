/* Native messaging: the browser extension's channel to patient-verify
 * --native-host. Framing (4-byte native-order length + UTF-8 JSON), the size
 * caps on requests and answers, parsing a request (ping, verify, bundle;
 * "received" bytes) and answering it with patient_verify_url.
 * Format contract: docs/FORMAT.md, "Native messaging". */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <patient/fetch.h>
#include <patient/hash.h>
#include <patient/native.h>
#include <patient/verify.h>
#include "hash_int.h"
#include "report_int.h"
#include "url_int.h"
#include "verify_int.h"
#include "util.h"

#define NATIVE_MAX (1024u * 1024)

static patient_err
read_full(int fd, void *p, size_t n, int *eof)
{
    uint8_t *q = p;
    size_t got = 0;

    *eof = 0;
    while (got < n) {
        ssize_t r = read(fd, q + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return PATIENT_ERR_IO;
        if (r == 0) {
            *eof = got == 0;
            return got == 0 ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_PARSE;
        }
        got += (size_t)r;
    }
    return PATIENT_OK;
}

patient_err
patient_native_read(int fd, size_t max, char **msg, size_t *len)
{
    uint32_t n;
    int eof;
    patient_err err;

    *msg = NULL;
    *len = 0;
    if ((err = read_full(fd, &n, sizeof n, &eof)) != PATIENT_OK)
        return err;
    if (n > max) {
        /* Skip it in small pieces: the sender gets a clear answer instead
         * of a broken pipe, and the next frame is read in sync. */
        uint8_t junk[64 * 1024];
        *len = n;
        for (size_t left = n; left > 0;) {
            size_t k = left < sizeof junk ? left : sizeof junk;
            if ((err = read_full(fd, junk, k, &eof)) != PATIENT_OK)
                return err == PATIENT_ERR_NOT_FOUND ? PATIENT_ERR_PARSE : err;
            left -= k;
        }
        return PATIENT_ERR_TOO_LARGE;
    }
    if ((*msg = malloc((size_t)n + 1)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = read_full(fd, *msg, n, &eof)) != PATIENT_OK) {
        free(*msg);
        *msg = NULL;
        return err == PATIENT_ERR_NOT_FOUND ? PATIENT_ERR_PARSE : err;
    }
    (*msg)[n] = 0;
    *len = n;
    return PATIENT_OK;
}

patient_err
patient_native_write(int fd, const char *msg, size_t len)
{
    uint32_t n = (uint32_t)len;
    const char *parts[2] = {(const char *)&n, msg};
    size_t lens[2] = {sizeof n, len};

    if (len > UINT32_MAX)
        return PATIENT_ERR_TOO_LARGE;
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < lens[i]) {
            ssize_t w = write(fd, parts[i] + off, lens[i] - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return PATIENT_ERR_IO;
            off += (size_t)w;
        }
    }
    return PATIENT_OK;
}

static patient_err
native_error(cJSON *ans, const char *code, const char *msg)
{
    cJSON *e = cJSON_AddObjectToObject(ans, "error");
    if (e == NULL || !cJSON_AddStringToObject(e, "code", code) ||
        !cJSON_AddStringToObject(e, "message", msg))
        return PATIENT_ERR_NOMEM;
    return PATIENT_OK;
}

patient_err
patient_native_error_answer(const char *msg, size_t len, const char *code, const char *message,
                            char **answer)
{
    cJSON *req, *ans, *dup = NULL;
    const cJSON *id;
    patient_err err = PATIENT_OK;

    if (answer == NULL)
        return PATIENT_ERR_ARG;
    *answer = NULL;
    if ((msg == NULL && len > 0) || code == NULL || message == NULL)
        return PATIENT_ERR_ARG;
    if ((ans = cJSON_CreateObject()) == NULL)
        return PATIENT_ERR_NOMEM;
    /* The request is only read for its id, so the browser can match the
     * answer; read as patient_native_handle reads it (strict JSON; its size
     * was capped by the framing), a message that is not a JSON object is
     * answered without one. */
    if (msg == NULL || pt_json_parse_max(msg, len, len, &req) != PATIENT_OK)
        req = NULL;
    id = cJSON_IsObject(req) ? cJSON_GetObjectItemCaseSensitive(req, "id") : NULL;
    if (id && ((dup = cJSON_Duplicate(id, 1)) == NULL || !cJSON_AddItemToObject(ans, "id", dup))) {
        cJSON_Delete(dup);
        err = PATIENT_ERR_NOMEM;
    }
    if (err == PATIENT_OK)
        err = native_error(ans, code, message);
    if (err == PATIENT_OK && (*answer = cJSON_PrintUnformatted(ans)) == NULL)
        err = PATIENT_ERR_NOMEM;
    cJSON_Delete(req);
    cJSON_Delete(ans);
    return err;
}

patient_err
patient_native_too_large_answer(size_t len, size_t max_body, char **answer)
{
    char m[200];

    snprintf(m, sizeof m,
             "the request is %zu bytes, over the %zu-byte cap (bodies up to %zu bytes, "
             "--max-body)",
             len, patient_native_request_max(max_body),
             max_body ? max_body : (size_t)PATIENT_FETCH_MAX_BODY_DEFAULT);
    /* No request: the answer has no id (nothing was read). */
    return patient_native_error_answer(NULL, 0, "request.too_large", m, answer);
}

patient_err
patient_native_truncated_answer(char **answer)
{
    return patient_native_error_answer(NULL, 0, "request.truncated",
                                       "the input ended inside a message", answer);
}

size_t
patient_native_request_max(size_t max_body)
{
    if (max_body == 0)
        max_body = PATIENT_FETCH_MAX_BODY_DEFAULT;
    if (max_body > (SIZE_MAX - PATIENT_NATIVE_ENVELOPE) / 4 * 3 - 3)
        return SIZE_MAX;
    return (max_body + 2) / 3 * 4 + PATIENT_NATIVE_ENVELOPE;
}

/* "received.tls_chain": the chain the browser verified for the connection
 * it received the page over. It is the browser's word, as the bytes are:
 * the host and the browser are one endpoint. Absent: interception is not
 * judged. */
static patient_err
native_chain(const cJSON *rj, patient_response *r, pt_buf *why)
{
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(rj, "tls_chain");
    size_t bad;

    if (ch == NULL || pt_chain_from_json(ch, r->tls_chain, &r->tls_chain_n, &bad) == 0)
        return PATIENT_OK;
    if (bad)
        pt_buf_appendf(why, "\"received.tls_chain\" element %zu is not a "
                            "\"sha256-<base64>\" SPKI pin", bad);
    else
        pt_buf_appendf(why, "\"received.tls_chain\" must be a list of 1 to %d "
                            "\"sha256-<base64>\" SPKI pins, leaf first",
                       PATIENT_FETCH_MAX_CHAIN);
    return PATIENT_ERR_PARSE;
}

/* "received": {"status": 200, "headers": [{"name","value"}...], "body":
 * base64} -> a response as if fetched. Every size is capped like a fetch's:
 * the body by max_body, the headers by their count and total bytes. On a
 * bad member *code and *why say which. */
static patient_err
native_received(const cJSON *rj, const char *url, const patient_fetch_opts *fo, patient_response **out,
                const char **code, char **why)
{
    size_t max_body = fo ? fo->max_body : PATIENT_FETCH_MAX_BODY_DEFAULT;
    size_t max_headers = fo ? fo->max_headers : PATIENT_FETCH_MAX_HEADERS_DEFAULT;
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(rj, "headers"), *h;
    const char *b64 = pt_json_str(rj, "body");
    patient_response *r = calloc(1, sizeof *r);
    size_t total = 0, nh;
    long long status;
    pt_buf b = {0};
    patient_err err = PATIENT_ERR_PARSE;

    *out = NULL;
    *code = "request.malformed";
    *why = NULL;
    if (r == NULL)
        return PATIENT_ERR_NOMEM;
    nh = cJSON_IsArray(hs) ? (size_t)cJSON_GetArraySize(hs) : 0;
    if (!cJSON_IsObject(rj) || pt_json_int(rj, "status", &status) != 0 || status < 100 ||
        status > 599 || (hs && !cJSON_IsArray(hs)) || b64 == NULL) {
        pt_buf_appendf(&b, "\"received\" needs \"status\" (100..599), \"body\" (base64) and "
                           "optionally \"headers\" ([{\"name\",\"value\"}])");
        goto out;
    }
    r->status = (long)status;
    /* base64 is 4 bytes per 3: refuse before decoding anything */
    if (strlen(b64) / 4 * 3 > max_body + 2) {
        *code = "body.too_large";
        pt_buf_appendf(&b, "the body is about %zu bytes, over the verifier's cap of %zu bytes "
                           "(patient-verify --max-body)", strlen(b64) / 4 * 3, max_body);
        err = PATIENT_ERR_TOO_LARGE;
        goto out;
    }
    if (pt_b64_decode(b64, strlen(b64), 0, &r->body, &r->body_len) != PATIENT_OK) {
        pt_buf_appendf(&b, "\"received.body\" is not valid base64");
        goto out;
    }
    if (r->body_len > max_body) {
        *code = "body.too_large";
        pt_buf_appendf(&b, "the body is %zu bytes, over the verifier's cap of %zu bytes "
                           "(patient-verify --max-body)", r->body_len, max_body);
        err = PATIENT_ERR_TOO_LARGE;
        goto out;
    }
    if (nh > PATIENT_FETCH_MAX_HEADER_COUNT ||
        (nh && (r->headers = calloc(nh, sizeof *r->headers)) == NULL)) {
        err = nh > PATIENT_FETCH_MAX_HEADER_COUNT ? PATIENT_ERR_TOO_LARGE : PATIENT_ERR_NOMEM;
        *code = "headers.too_large";
        pt_buf_appendf(&b, "more than %u headers", PATIENT_FETCH_MAX_HEADER_COUNT);
        goto out;
    }
    cJSON_ArrayForEach(h, hs) {
        const char *name = pt_json_str(h, "name"), *value = pt_json_str(h, "value");
        if (name == NULL || value == NULL || !*name) {
            pt_buf_appendf(&b, "a received header is not {\"name\":\"…\",\"value\":\"…\"}");
            goto out;
        }
        total += strlen(name) + strlen(value) + 4;
        if (total > max_headers) {
            *code = "headers.too_large";
            pt_buf_appendf(&b, "the received headers are over %zu bytes", max_headers);
            err = PATIENT_ERR_TOO_LARGE;
            goto out;
        }
        if ((r->headers[r->nheaders].name = strdup(name)) == NULL ||
            (r->headers[r->nheaders].value = strdup(value)) == NULL) {
            r->nheaders++;
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        r->nheaders++;
    }
    if ((err = native_chain(rj, r, &b)) != PATIENT_OK)
        goto out;
    if ((r->url = strdup(url)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    *out = r;
    r = NULL;
    err = PATIENT_OK;
out:
    if (err != PATIENT_OK && err != PATIENT_ERR_NOMEM)
        *why = (char *)b.data;
    else
        pt_buf_free(&b);
    patient_response_free(r);
    return err;
}

patient_err
patient_native_handle(const patient_policy *policy, const patient_verify_fetch_opts *f,
                      const patient_verify_opts *o, const char *msg, size_t len, char **answer)
{
    cJSON *req = NULL, *ans = cJSON_CreateObject(), *id, *rj;
    const char *type, *url, *body64;
    patient_response *received = NULL;
    size_t max;
    patient_verify_fetch_opts fo = {0}, fu;
    patient_fetch_opts ff;
    patient_verify_opts vo;
    patient_report *rep = NULL;
    char *bundle = NULL;
    uint8_t *body = NULL;
    size_t bodylen = 0;
    patient_err err = PATIENT_OK;

    *answer = NULL;
    if (ans == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = pt_verify_opts_take(&f, &o, &fu, &ff, &vo)) != PATIENT_OK) {
        cJSON_Delete(ans);
        return err;
    }
    if (f)
        fo = *f;
    max = patient_native_request_max(fo.fetch ? fo.fetch->max_body : 0);
    if (len > max || pt_json_parse_max(msg, len, max, &req) != PATIENT_OK || !cJSON_IsObject(req)) {
        native_error(ans, len > max ? "request.too_large" : "request.malformed",
                     "the request is not a JSON object within the size cap");
        goto reply;
    }
    if ((id = cJSON_GetObjectItemCaseSensitive(req, "id")) != NULL)
        cJSON_AddItemToObject(ans, "id", cJSON_Duplicate(id, 1));
    type = pt_json_str(req, "type");
    if (type && strcmp(type, "ping") == 0) {
        cJSON_AddStringToObject(ans, "type", "pong");
        cJSON_AddStringToObject(ans, "version", PACKAGE_VERSION);
        goto reply;
    }
    url = pt_json_str(req, "url");
    if (type == NULL || (strcmp(type, "verify") && strcmp(type, "bundle")) || url == NULL ||
        pt_url_scheme_len(url, PT_URL_HTTP_S) == 0) {
        native_error(ans, "request.malformed",
                     "expected {\"type\":\"verify\"|\"bundle\"|\"ping\",\"url\":\"http(s)://...\"}");
        goto reply;
    }
    if ((rj = cJSON_GetObjectItemCaseSensitive(req, "received")) != NULL) {
        const char *code;
        char *why = NULL;
        if ((err = native_received(rj, url, fo.fetch, &received, &code, &why)) != PATIENT_OK) {
            if (err == PATIENT_ERR_NOMEM)
                goto reply;
            native_error(ans, code, why ? why : patient_strerror(err));
            free(why);
            err = PATIENT_OK;
            goto reply;
        }
        fo.received = received;
    } else if ((body64 = pt_json_str(req, "body")) != NULL) {
        if (pt_b64_decode(body64, strlen(body64), 0, &body, &bodylen) != PATIENT_OK) {
            native_error(ans, "request.malformed", "\"body\" is not valid base64");
            goto reply;
        }
        fo.body_override = body;
        fo.body_override_len = bodylen;
    }
    err = patient_verify_url(policy, url, &fo, o, &rep,
                             strcmp(type, "bundle") == 0 ? &bundle : NULL);
    if (err != PATIENT_OK) {
        native_error(ans, patient_errname(err), patient_strerror(err));
        err = PATIENT_OK;
        goto reply;
    }
    cJSON_AddItemToObject(ans, "report", cJSON_Duplicate(rep->doc, 1));
    if (bundle) {
        cJSON *bj = NULL;
        if (pt_json_parse(bundle, strlen(bundle), &bj) == PATIENT_OK)
            cJSON_AddItemToObject(ans, "bundle", bj);
    }
reply:
    if ((*answer = cJSON_PrintUnformatted(ans)) == NULL)
        err = PATIENT_ERR_NOMEM;
    /* Chrome refuses host-to-browser messages over 1 MB (and then closes
     * the port): drop the bundle, then the report's detail, to stay under. */
    if (*answer && strlen(*answer) > NATIVE_MAX && cJSON_HasObjectItem(ans, "bundle")) {
        free(*answer);
        cJSON_DeleteItemFromObjectCaseSensitive(ans, "bundle");
        native_error(ans, "bundle.too_large",
                     "the evidence bundle is over the 1 MiB native-messaging limit; use "
                     "patient-verify --bundle FILE");
        if ((*answer = cJSON_PrintUnformatted(ans)) == NULL)
            err = PATIENT_ERR_NOMEM;
    }
    if (*answer && strlen(*answer) > NATIVE_MAX && rep) {
        free(*answer);
        cJSON_DeleteItemFromObjectCaseSensitive(ans, "report");
        cJSON_DeleteItemFromObjectCaseSensitive(ans, "error");
        cJSON_AddStringToObject(ans, "verdict", patient_verdict_name(rep->verdict));
        native_error(ans, "report.too_large",
                     "the report is over the 1 MiB native-messaging limit; run patient-verify "
                     "on the URL for the details");
        if ((*answer = cJSON_PrintUnformatted(ans)) == NULL)
            err = PATIENT_ERR_NOMEM;
    }
    free(body);
    free(bundle);
    patient_response_free(received);
    patient_report_free(rep);
    cJSON_Delete(req);
    cJSON_Delete(ans);
    return err;
}
