/* Inspection's internals (lib/inspect*.c, patient/inspect.h): the result
 * the families fill, their entry points, and the small helpers they share.
 * Never installed. */
#ifndef PT_INSPECT_INT_H
#define PT_INSPECT_INT_H

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cJSON.h>
#include <patient/change.h>
#include <patient/inspect.h>
#include <patient/key.h>

#include "util.h"

#define SHOW_FIRST 5

struct patient_inspection {
    const char *kind;  /* "public-key", ... */
    const char *title; /* one line for people */
    int is_signed;
    cJSON *details;
    char why[512]; /* when not recognised */
};

typedef patient_inspection result;

/* r->why from fmt; returns -1 (every family returns 0 recognised, -1 not). */
static inline int pt_inspect_fail(result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline int
pt_inspect_fail(result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    return -1;
}

/* Keys and minisign files (inspect_key.c). */
int pt_inspect_add_pubkey(cJSON *d, const uint8_t id[8], const uint8_t pk[32]);
int pt_inspect_minisign(const char *text, size_t len, result *r);
/* JWS values and header lines (inspect_jws.c). */
/* One JWS value as *out (new, caller frees; NULL unless PATIENT_OK) and its
 * family as *typ_out; why says what is wrong otherwise: PATIENT_ERR_NOMEM
 * when out of memory (why "out of memory"), another code when the value
 * is refused. */
patient_err pt_inspect_decode_jws(const char *s, size_t len, cJSON **out, char *why,
                                  size_t whylen, const char **typ_out);
cJSON *pt_inspect_ranges_json(const patient_range *r, size_t n);
/* Each 0, or -1 when out of memory (the payload is then short). */
int pt_inspect_summarise_edits(cJSON *payload, const patient_change *c);
int pt_inspect_summarise_chunks(cJSON *payload, const patient_change *c);
int pt_inspect_headers(const char *text, size_t len, result *r);
/* Audit logs (inspect_log.c). */
int pt_inspect_is_log_line(const cJSON *o);
int pt_inspect_log_file(const char *path, result *r);
int pt_inspect_log_text(const char *text, size_t len, result *r);
/* JSON documents (inspect_doc.c): doc is text (len bytes) parsed, TAKEN
 * (freed here, before the format's reader parses text again); a document
 * its reader refuses is shown with that reader's reason as details.problem. */
int pt_inspect_json_doc(cJSON *doc, const char *text, size_t len, result *r);


static inline int
is_b64url(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

/* Three base64url parts separated by two dots. */
static inline int
looks_jws(const char *s, size_t len)
{
    const char *d1 = memchr(s, '.', len), *d2;
    if (d1 == NULL || d1 == s)
        return 0;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - s));
    if (d2 == NULL || d2 == d1 + 1 || d2 + 1 == s + len)
        return 0;
    return is_b64url(s, (size_t)(d1 - s)) && is_b64url(d1 + 1, (size_t)(d2 - d1 - 1)) &&
           is_b64url(d2 + 1, len - (size_t)(d2 + 1 - s));
}

static inline int
copy_field(cJSON *dst, const cJSON *src, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(src, k);

    /* Out of memory is -1, the copy never leaked. */
    return x == NULL || pt_json_put(dst, k, cJSON_Duplicate(x, 1)) ? 0 : -1;
}

/* Each of keys src has, copied into dst; -1 when out of memory. */
static inline int
copy_fields(cJSON *dst, const cJSON *src, const char *const *keys)
{
    for (; *keys; keys++)
        if (copy_field(dst, src, *keys) != 0)
            return -1;
    return 0;
}

/* A new object holding copies of the keys src has; NULL when out of
 * memory (nothing leaked). */
static inline cJSON *
pick_fields(const cJSON *src, const char *const *keys)
{
    cJSON *o = cJSON_CreateObject();

    if (o != NULL && copy_fields(o, src, keys) != 0) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

#endif
