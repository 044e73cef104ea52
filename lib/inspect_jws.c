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
 * and the origin byte ranges it left unchecked (from the library). -1 when
 * out of memory (the payload is then short: the caller fails). */
int
pt_inspect_summarise_chunks(cJSON *payload, const patient_change *c)
{
    cJSON *chunks = cJSON_DetachItemFromObjectCaseSensitive(payload, "chunks"), *o;
    patient_range *r = NULL;
    size_t nr = 0;
    uint64_t withheld = 0;
    patient_err err = PATIENT_OK;
    int rc = -1;

    if (chunks == NULL)
        return 0;
    if ((o = cJSON_AddObjectToObject(payload, "chunks")) == NULL ||
        cJSON_AddNumberToObject(o, "touched", cJSON_GetArraySize(chunks)) == NULL)
        goto out;
    if (c == NULL || (err = patient_change_chunk_ranges(c, &r, &nr, &withheld)) != PATIENT_OK) {
        rc = c != NULL && err == PATIENT_ERR_NOMEM ? -1 : 0;
        goto out;
    }
    if (cJSON_AddNumberToObject(o, "withheld_bytes", (double)withheld) == NULL ||
        !pt_json_put(o, "unchecked_origin_ranges", pt_inspect_ranges_json(r, nr)))
        goto out;
    rc = 0;
out:
    cJSON_Delete(chunks);
    free(r);
    return rc;
}


/* Replace base64 byte strings in a change payload by their lengths: from
 * the descriptor c as the library read it when at hand (its edits are the
 * payload's, in order), else (a value it refuses, a bare payload) from each
 * string's decoding. -1 when out of memory (a length is then missing). */
int
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
            if (cJSON_AddNumberToObject(e, "insert_bytes", n) == NULL)
                return -1;
        }
        if ((s = pt_json_str(e, "deleted")) != NULL) {
            double n = pe ? (double)pe->delete_len : b64_len(s);
            cJSON_DeleteItemFromObjectCaseSensitive(e, "deleted");
            if (cJSON_AddNumberToObject(e, "deleted_bytes_disclosed", n) == NULL)
                return -1;
        }
    }
    return 0;
}

patient_err
pt_inspect_decode_jws(const char *s, size_t len, cJSON **out, char *why, size_t whylen,
                      const char **typ_out)
{
    patient_jws *j = NULL;
    cJSON *o = NULL, *payload = NULL;
    char kid[PATIENT_KEYID_HEX];
    patient_err err;
    const char *typ;

    *out = NULL;
    if ((err = patient_jws_parse(s, len, &j)) != PATIENT_OK) {
        snprintf(why, whylen, "not a JWS we understand: %s [%s]", patient_strerror(err),
                 patient_errname(err));
        return err;
    }
    /* Out of memory is not a verdict on the payload. */
    if ((err = pt_json_parse_lenient((const char *)j->payload, j->payload_len, NULL, &payload)) !=
        PATIENT_OK) {
        snprintf(why, whylen, "%s", err == PATIENT_ERR_NOMEM ? "out of memory" : "JWS payload is not JSON");
        goto out;
    }
    err = PATIENT_ERR_NOMEM;
    typ = j->typ ? j->typ : "";
    patient_keyid_hex(j->kid, kid);
    if ((o = cJSON_CreateObject()) == NULL || cJSON_AddStringToObject(o, "typ", typ) == NULL ||
        cJSON_AddStringToObject(o, "kid", kid) == NULL)
        goto out;
    if (strcasecmp(typ, "patient-change+jws") == 0) {
        patient_change *c = NULL;
        patient_err perr;
        int rc;
        *typ_out = "change";
        /* The descriptor as the library reads it, for its edits' byte
         * counts and what its chunks leave unchecked; a value it refuses
         * is still shown, unless it refused it for want of memory. */
        if ((perr = patient_change_parse(s, len, &c)) != PATIENT_OK)
            c = NULL;
        rc = perr == PATIENT_ERR_NOMEM || pt_inspect_summarise_edits(payload, c) != 0 ||
             pt_inspect_summarise_chunks(payload, c) != 0;
        patient_change_free(c);
        if (rc)
            goto out;
    } else if (strcasecmp(typ, "patient-origin+jws") == 0) {
        *typ_out = "origin";
    } else if (strcasecmp(typ, "patient-checkpoint+jws") == 0) {
        *typ_out = "checkpoint";
    } else {
        *typ_out = "jws";
    }
    if (!cJSON_AddItemToObject(o, "payload", payload))
        goto out;
    payload = NULL;
    *out = o;
    o = NULL;
    err = PATIENT_OK;
out:
    if (err == PATIENT_ERR_NOMEM)
        snprintf(why, whylen, "out of memory");
    cJSON_Delete(payload);
    cJSON_Delete(o);
    patient_jws_free(j);
    return err;
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

    if (vals == NULL) {
        pt_inspect_fail(r, "out of memory");
        goto bad;
    }
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
            if (pt_inspect_decode_jws(a, (size_t)(b - a), &one, r->why, sizeof r->why, &typ) !=
                PATIENT_OK)
                goto bad;
            if (++n > 64) {
                cJSON_Delete(one);
                pt_inspect_fail(r, "more than 64 values");
                goto bad;
            }
            if (!pt_json_push(vals, one)) {
                pt_inspect_fail(r, "out of memory");
                goto bad;
            }
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
    if ((r->details = cJSON_CreateObject()) == NULL ||
        (name && cJSON_AddStringToObject(r->details, "header", name) == NULL))
        goto nomem;
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
    if (cJSON_AddNumberToObject(r->details, "count", n) == NULL ||
        !cJSON_AddItemToObject(r->details, "values", vals))
        goto nomem;
    return 0;
nomem:
    pt_inspect_fail(r, "out of memory");
bad:
    cJSON_Delete(vals);
    return -1;
}

