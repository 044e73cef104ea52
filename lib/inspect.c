/* Inspection (patient/inspect.h): what an artefact is and what it claims,
 * without trusting it. Detection is by content, never by file name; each
 * family reads its artefacts (inspect_key.c, inspect_jws.c, inspect_log.c,
 * inspect_doc.c) and this file renders the result. Nothing here verifies a
 * signature; signed artefacts always say so. Secret key files show only
 * public facts (encrypted or not, key id, public key). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cJSON.h>

#include "inspect_int.h"
#include "util.h"

/* Does JSON text end with an open string, object or array? */
static int
json_unclosed(const char *s, size_t n)
{
    long depth = 0;
    int str = 0, esc = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                str = 0;
        } else if (c == '"') {
            str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return str || depth > 0;
}

/* Where the m bytes at s stop being JSON, as cJSON says it for them
 * followed by a NUL (the byte refusals have always named; a bounded parse
 * names the last byte instead of the end): a copy, made only for input
 * that is refused. m when out of memory. */
static size_t
json_error_at(const char *s, size_t m)
{
    char *c = malloc(m + 1);
    const char *pe = NULL;
    size_t off = m;

    if (c == NULL)
        return m;
    memcpy(c, s, m);
    c[m] = 0;
    cJSON_Delete(cJSON_ParseWithOpts(c, &pe, 1));
    if (pe != NULL && pe >= c && pe <= c + m)
        off = (size_t)(pe - c);
    free(c);
    return off;
}

/* ---- detection ---------------------------------------------------------- */

static int
detect(const char *path, const char *data, size_t len, int head_only, int is_file, result *r)
{
    const char *s = data, *e = data + len, *nl;
    size_t n;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f)
            return pt_inspect_fail(r, "binary data (byte 0x%02x at offset %zu): not a text artefact", c, i);
    }
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    n = (size_t)(e - s);
    if (n == 0)
        return pt_inspect_fail(r, "empty input");
    if (n >= 18 && strncmp(s, "untrusted comment:", 18) == 0)
        return pt_inspect_minisign(s, n, r);
    if (n == 56 && strncmp(s, "RW", 2) == 0) {
        patient_pubkey pk;
        if (patient_pubkey_parse(s, n, &pk) != PATIENT_OK)
            return pt_inspect_fail(r, "starts like a public key string (RW...) but is not valid base64 of "
                           "42 bytes");
        r->kind = "public-key";
        r->title = "minisign public key string (Ed25519)";
        r->details = cJSON_CreateObject();
        pt_inspect_add_pubkey(r->details, pk.id, pk.pk);
        return 0;
    }
    if (*s == '{' || *s == '[') {
        cJSON *doc;
        const char *pe = NULL;
        int rc;
        /* JSON Lines: an audit log if its first line is an entry. */
        nl = memchr(s, '\n', n);
        /* Out of memory is not "does not parse", here or below. */
        if (pt_json_parse_lenient(s, nl ? (size_t)(nl - s) : n, NULL, &doc) == PATIENT_ERR_NOMEM)
            return pt_inspect_fail(r, "out of memory");
        rc = pt_inspect_is_log_line(doc);
        cJSON_Delete(doc);
        if (rc)
            return is_file ? pt_inspect_log_file(path, r) : pt_inspect_log_text(s, n, r);
        if (head_only)
            return pt_inspect_fail(r, "over %u MiB and not an audit log: refusing to read it all",
                        PATIENT_INSPECT_MAX >> 20);
        /* One JSON document, nothing after it but white space: within the
         * len bytes given, which need not end in a NUL. */
        if (pt_json_parse_lenient(s, (size_t)(data + len - s), &pe, &doc) == PATIENT_ERR_NOMEM)
            return pt_inspect_fail(r, "out of memory");
        while (doc != NULL && pe != NULL && pe < data + len && isspace((unsigned char)*pe))
            pe++;
        if (doc == NULL || pe != data + len) {
            size_t off = json_error_at(s, (size_t)(data + len - s));
            cJSON_Delete(doc);
            return pt_inspect_fail(r, "starts like JSON but does not parse (error near byte %zu of %zu%s)",
                        off <= n ? off : n, n,
                        json_unclosed(s, n) ? "; it ends inside an open value: truncated?" : "");
        }
        if (!cJSON_IsObject(doc)) {
            cJSON_Delete(doc);
            return pt_inspect_fail(r, "JSON, but not an object");
        }
        return pt_inspect_json_doc(doc, s, n, r);
    }
    if (head_only)
        return pt_inspect_fail(r, "over %u MiB: refusing to read it", PATIENT_INSPECT_MAX >> 20);
    {
        /* "Header-Name: value": a header line (inspect_headers names it). */
        size_t t = 0;
        while (t < n && t < 64 && (isalnum((unsigned char)s[t]) || s[t] == '-'))
            t++;
        if (t > 0 && t + 1 < n && s[t] == ':' && (s[t + 1] == ' ' || s[t + 1] == '\t'))
            return pt_inspect_headers(s, n, r);
    }
    {
        /* A bare value: its first element (up to a newline or comma). */
        size_t t = 0;
        while (t < n && s[t] != '\n' && s[t] != ',' && s[t] != '\r' && s[t] != ' ')
            t++;
        if (looks_jws(s, t))
            return pt_inspect_headers(s, n, r);
    }
    if (memchr(s, '.', n) && is_b64url(s, (size_t)((const char *)memchr(s, '.', n) - s)))
        return pt_inspect_fail(r, "looks like a JWS but is not three non-empty base64url parts separated by "
                       "dots (truncated?)");
    return pt_inspect_fail(r, "not a PATIENT artefact (no JSON object, key, signature, JWS or header line "
                   "recognised)");
}

/* ---- rendering ---------------------------------------------------------- */

static void
put_safe(pt_buf *b, patient_err *err, const char *s)
{
    if (*err == PATIENT_OK)
        *err = pt_buf_append_safe(b, s);
}

static void
put(pt_buf *b, patient_err *err, const char *s)
{
    if (*err == PATIENT_OK)
        *err = pt_buf_append(b, s, strlen(s));
}

static int
scalar_array(const cJSON *a)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (cJSON_IsObject(x) || cJSON_IsArray(x))
            return 0;
    }
    return 1;
}

static void
put_scalar(pt_buf *b, patient_err *err, const cJSON *x)
{
    if (*err != PATIENT_OK)
        return;
    if (cJSON_IsString(x))
        put_safe(b, err, x->valuestring);
    else if (cJSON_IsNumber(x)) {
        /* In range first: converting a larger double is undefined. */
        if (x->valuedouble > -9223372036854775808.0 && x->valuedouble < 9223372036854775808.0 &&
            x->valuedouble == (double)(long long)x->valuedouble)
            *err = pt_buf_appendf(b, "%lld", (long long)x->valuedouble);
        else
            *err = pt_buf_appendf(b, "%g", x->valuedouble);
    } else if (cJSON_IsBool(x))
        put(b, err, cJSON_IsTrue(x) ? "yes" : "no");
    else if (cJSON_IsNull(x))
        put(b, err, "-");
}

static void
put_tree(pt_buf *b, patient_err *err, const cJSON *o, int indent)
{
    const cJSON *x;
    int i = 0;

    cJSON_ArrayForEach(x, o) {
        if (*err != PATIENT_OK)
            return;
        *err = pt_buf_appendf(b, "%*s", indent, "");
        if (x->string) {
            put_safe(b, err, x->string);
            put(b, err, ":");
        } else if (*err == PATIENT_OK) {
            *err = pt_buf_appendf(b, "[%d]", i);
        }
        i++;
        if (cJSON_IsArray(x) && scalar_array(x)) {
            const cJSON *y;
            int first = 1;
            put(b, err, " ");
            if (cJSON_GetArraySize(x) == 0)
                put(b, err, "(none)");
            cJSON_ArrayForEach(y, x) {
                if (!first)
                    put(b, err, ", ");
                put_scalar(b, err, y);
                first = 0;
            }
            put(b, err, "\n");
        } else if (cJSON_IsArray(x) || cJSON_IsObject(x)) {
            put(b, err, "\n");
            put_tree(b, err, x, indent + 2);
        } else {
            put(b, err, " ");
            put_scalar(b, err, x);
            put(b, err, "\n");
        }
    }
}

/* ---- API ---------------------------------------------------------------- */

patient_err
patient_inspect(const void *data, size_t len, const patient_inspect_opts *opts,
                patient_inspection **out)
{
    patient_inspect_opts o = PATIENT_OPTS_INIT(patient_inspect_opts);
    patient_inspection *r;
    patient_err err;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if ((data == NULL && len > 0) || (opts != NULL && (err = PT_OPTS_TAKE(&o, opts)) != PATIENT_OK))
        return PATIENT_ERR_ARG;
    if ((r = calloc(1, sizeof *r)) == NULL)
        return PATIENT_ERR_NOMEM;
    *out = r;
    if (detect(o.path, data ? data : "", len, o.head_only, o.path != NULL, r) == 0)
        return PATIENT_OK;
    /* A refusal is only its reason, whatever was begun before it. */
    r->kind = NULL;
    cJSON_Delete(r->details);
    r->details = NULL;
    return PATIENT_ERR_PARSE;
}

patient_err
patient_inspect_unreadable(patient_err read_err, patient_inspection **out)
{
    patient_inspection *r;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    if ((*out = r = calloc(1, sizeof *r)) == NULL)
        return PATIENT_ERR_NOMEM;
    pt_inspect_fail(r, "cannot read: %s [%s]", patient_strerror(read_err), patient_errname(read_err));
    return PATIENT_OK;
}

const char *
patient_inspection_kind(const patient_inspection *r)
{
    return r && r->kind ? r->kind : NULL;
}

const char *
patient_inspection_title(const patient_inspection *r)
{
    return r && r->kind ? r->title : NULL;
}

int
patient_inspection_signed(const patient_inspection *r)
{
    return r && r->kind ? r->is_signed : 0;
}

const char *
patient_inspection_error(const patient_inspection *r)
{
    return r == NULL ? "out of memory" : r->kind ? NULL : r->why;
}

char *
patient_inspection_json(const patient_inspection *r, const char *input)
{
    cJSON *doc, *details = NULL;
    char *s = NULL;

    if (r == NULL || input == NULL || (doc = cJSON_CreateObject()) == NULL)
        return NULL;
    cJSON_AddNumberToObject(doc, "patient", 1);
    cJSON_AddStringToObject(doc, "type", "inspect");
    cJSON_AddStringToObject(doc, "input", input);
    if (r->kind) {
        cJSON_AddStringToObject(doc, "kind", r->kind);
        cJSON_AddStringToObject(doc, "title", r->title);
        cJSON_AddBoolToObject(doc, "signed", r->is_signed);
        cJSON_AddBoolToObject(doc, "verified", 0);
        if (r->is_signed)
            cJSON_AddStringToObject(doc, "note", PATIENT_INSPECT_NOT_VERIFIED);
        /* A copy: r stays unchanged, and may be rendered again. */
        if ((details = cJSON_Duplicate(r->details, 1)) == NULL ||
            !cJSON_AddItemToObject(doc, "details", details)) {
            cJSON_Delete(details);
            goto out;
        }
        cJSON_AddNullToObject(doc, "error");
    } else {
        cJSON_AddNullToObject(doc, "kind");
        cJSON_AddStringToObject(doc, "error", r->why);
    }
    s = cJSON_Print(doc);
out:
    cJSON_Delete(doc);
    return s;
}

char *
patient_inspection_text(const patient_inspection *r, const char *input)
{
    pt_buf b = {0};
    patient_err err = PATIENT_OK;

    if (r == NULL || input == NULL || r->kind == NULL) {
        errno = EINVAL;
        return NULL;
    }
    put(&b, &err, strcmp(input, "-") == 0 ? "(stdin)" : input);
    put(&b, &err, ": ");
    put(&b, &err, r->title);
    put(&b, &err, "\n");
    if (r->is_signed)
        put(&b, &err, "  " PATIENT_INSPECT_NOT_VERIFIED "\n");
    put_tree(&b, &err, r->details, 2);
    if (err == PATIENT_OK)
        err = pt_buf_append(&b, "", 1);
    if (err != PATIENT_OK) {
        pt_buf_free(&b);
        errno = ENOMEM;
        return NULL;
    }
    return (char *)b.data;
}

void
patient_inspection_free(patient_inspection *r)
{
    if (r == NULL)
        return;
    cJSON_Delete(r->details);
    free(r);
}
