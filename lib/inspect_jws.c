/* Inspection of JWS values (descriptors, Patient-Origin, checkpoints) and
 * Patient-Change / Patient-Origin header lines, each value read by the
 * library's JWS reader and a descriptor by its change reader. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cJSON.h>

#include "inspect_int.h"
#include "util.h"
#include <patient/jws.h>

/* Bytes a base64 member stands for, by the library's decoder (the one the
 * descriptor reader uses); -1 when it is not base64. */
static double
b64_len(const char *s)
{
    uint8_t *b = NULL;
    size_t n = 0;

    if (pt_b64_decode(s, strlen(s), 0, &b, &n) != PATIENT_OK)
        return -1;
    free(b);
    return (double)n;
}

/* What a hop's chunks leave unchecked, as inspect and audit list show it:
 * a new array of {offset, length}; NULL when out of memory, never a short
 * one that would pass for the whole list. */
cJSON *
pt_inspect_ranges_json(const patient_range *r, size_t n)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateObject();
        if (x == NULL || cJSON_AddNumberToObject(x, "offset", (double)r[i].offset) == NULL ||
            cJSON_AddNumberToObject(x, "length", (double)r[i].length) == NULL ||
            !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* Replace a change payload's "chunks" (base64 leaves and kept hashes) by
 * what they mean: how many origin chunks the hop's withheld deletions
 * touched, and, when the descriptor c is at hand, the bytes it withheld
 * and the origin byte ranges it left unchecked (from the library). */
void
pt_inspect_summarise_chunks(cJSON *payload, const patient_change *c)
{
    cJSON *chunks = cJSON_DetachItemFromObjectCaseSensitive(payload, "chunks"), *o;
    patient_range *r = NULL;
    size_t nr = 0;
    uint64_t withheld = 0;

    if (chunks == NULL)
        return;
    o = cJSON_AddObjectToObject(payload, "chunks");
    cJSON_AddNumberToObject(o, "touched", cJSON_GetArraySize(chunks));
    cJSON_Delete(chunks);
    if (c == NULL || patient_change_chunk_ranges(c, &r, &nr, &withheld) != PATIENT_OK)
        return;
    cJSON_AddNumberToObject(o, "withheld_bytes", (double)withheld);
    cJSON_AddItemToObject(o, "unchecked_origin_ranges", pt_inspect_ranges_json(r, nr));
    free(r);
}


/* Replace base64 byte strings in a change payload by their lengths: from
 * the descriptor c as the library read it when at hand (its edits are the
 * payload's, in order), else (a value it refuses, a bare payload) from each
 * string's decoding. */
void
pt_inspect_summarise_edits(cJSON *payload, const patient_change *c)
{
    cJSON *edits = cJSON_GetObjectItemCaseSensitive(payload, "edits"), *e;
    size_t i = 0;

    if (c != NULL && (size_t)cJSON_GetArraySize(edits) != c->nedits)
        c = NULL;
    cJSON_ArrayForEach(e, edits) {
        const patient_edit *pe = c ? &c->edits[i] : NULL;
        const char *s;
        i++;
        if ((s = pt_json_str(e, "insert")) != NULL) {
            double n = pe ? (double)pe->insert_len : b64_len(s);
            cJSON_DeleteItemFromObjectCaseSensitive(e, "insert");
            cJSON_AddNumberToObject(e, "insert_bytes", n);
        }
        if ((s = pt_json_str(e, "deleted")) != NULL) {
            double n = pe ? (double)pe->delete_len : b64_len(s);
            cJSON_DeleteItemFromObjectCaseSensitive(e, "deleted");
            cJSON_AddNumberToObject(e, "deleted_bytes_disclosed", n);
        }
    }
}

cJSON *
pt_inspect_decode_jws(const char *s, size_t len, char *why, size_t whylen, const char **typ_out)
{
    patient_jws *j = NULL;
    cJSON *o = NULL, *payload;
    char kid[PATIENT_KEYID_HEX];
    patient_err err;
    const char *typ;

    if ((err = patient_jws_parse(s, len, &j)) != PATIENT_OK) {
        snprintf(why, whylen, "not a JWS we understand: %s [%s]", patient_strerror(err),
                 patient_errname(err));
        return NULL;
    }
    if ((payload = cJSON_ParseWithLength((const char *)j->payload, j->payload_len)) == NULL) {
        snprintf(why, whylen, "JWS payload is not JSON");
        goto out;
    }
    o = cJSON_CreateObject();
    typ = j->typ ? j->typ : "";
    patient_keyid_hex(j->kid, kid);
    cJSON_AddStringToObject(o, "typ", typ);
    cJSON_AddStringToObject(o, "kid", kid);
    if (strcasecmp(typ, "patient-change+jws") == 0) {
        patient_change *c = NULL;
        *typ_out = "change";
        /* The descriptor as the library reads it, for its edits' byte
         * counts and what its chunks leave unchecked; a value it refuses
         * is still shown. */
        if (patient_change_parse(s, len, &c) != PATIENT_OK)
            c = NULL;
        pt_inspect_summarise_edits(payload, c);
        pt_inspect_summarise_chunks(payload, c);
        patient_change_free(c);
    } else if (strcasecmp(typ, "patient-origin+jws") == 0) {
        *typ_out = "origin";
    } else if (strcasecmp(typ, "patient-checkpoint+jws") == 0) {
        *typ_out = "checkpoint";
    } else {
        *typ_out = "jws";
    }
    cJSON_AddItemToObject(o, "payload", payload);
out:
    patient_jws_free(j);
    return o;
}

/* Patient-Change / Patient-Origin header lines, bare values, or a list. */
int
pt_inspect_headers(const char *text, size_t len, result *r)
{
    const char *p = text, *end = text + len, *l, *name = NULL;
    size_t ll;
    cJSON *vals = cJSON_CreateArray();
    const char *kind = NULL;
    int n = 0;

    while (pt_next_line(&p, end, &l, &ll) == 0) {
        const char *v = l, *ve = l + ll, *c;
        if (ll == 0)
            continue;
        if ((c = memchr(l, ':', ll)) != NULL) {
            size_t nl = (size_t)(c - l);
            if (nl == 14 && strncasecmp(l, "Patient-Change", 14) == 0)
                name = "Patient-Change";
            else if (nl == 14 && strncasecmp(l, "Patient-Origin", 14) == 0)
                name = "Patient-Origin";
            else {
                pt_inspect_fail(r, "header line \"%.*s\" is not Patient-Change or Patient-Origin",
                     (int)(nl > 64 ? 64 : nl), l);
                goto bad;
            }
            v = c + 1;
        }
        /* Comma-separated list (RFC 9110); a compact JWS has no comma. */
        while (v < ve) {
            const char *ce = memchr(v, ',', (size_t)(ve - v)), *a, *b;
            const char *typ = NULL;
            cJSON *one;
            if (ce == NULL)
                ce = ve;
            for (a = v; a < ce && (*a == ' ' || *a == '\t'); a++)
                ;
            for (b = ce; b > a && (b[-1] == ' ' || b[-1] == '\t'); b--)
                ;
            v = ce + 1;
            if (a == b)
                continue;
            if (!looks_jws(a, (size_t)(b - a))) {
                pt_inspect_fail(r, "value %d is not a compact JWS (three base64url parts separated by dots)",
                     n + 1);
                goto bad;
            }
            if ((one = pt_inspect_decode_jws(a, (size_t)(b - a), r->why, sizeof r->why, &typ)) == NULL)
                goto bad;
            if (++n > 64) {
                cJSON_Delete(one);
                pt_inspect_fail(r, "more than 64 values");
                goto bad;
            }
            cJSON_AddItemToArray(vals, one);
            if (kind == NULL)
                kind = typ;
            else if (strcmp(kind, typ) != 0)
                kind = "mixed";
        }
    }
    if (n == 0) {
        pt_inspect_fail(r, "no value");
        goto bad;
    }
    r->is_signed = 1;
    r->details = cJSON_CreateObject();
    if (name)
        cJSON_AddStringToObject(r->details, "header", name);
    if (strcmp(kind, "change") == 0) {
        r->kind = "change";
        r->title = n > 1 ? "Patient-Change values (change descriptors, one per hop)"
                         : "Patient-Change value (change descriptor)";
    } else if (strcmp(kind, "origin") == 0) {
        r->kind = "origin";
        r->title = "Patient-Origin value (origin-signed response)";
    } else if (strcmp(kind, "checkpoint") == 0) {
        r->kind = "checkpoint";
        r->title = "audit log checkpoint signature (JWS)";
    } else {
        r->kind = "jws";
        r->title = "JWS (EdDSA) of a type PATIENT does not define";
    }
    cJSON_AddNumberToObject(r->details, "count", n);
    cJSON_AddItemToObject(r->details, "values", vals);
    return 0;
bad:
    cJSON_Delete(vals);
    return -1;
}

