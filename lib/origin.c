/* Patient-Origin: an origin's signature over one dynamic response, as a
 * JWS (typ "patient-origin+jws") over {url, integrity, size, date,
 * expires}. Format: docs/format/manifest.md. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include <patient/jws.h>
#include <patient/manifest.h>
#include "chunk.h"
#include "time_int.h"
#include "util.h"

#define URL_MAX 8192

patient_err
patient_origin_sign(const patient_seckey *sk, const char *url, const void *body, size_t len,
                    time_t date, time_t expires, char **jws)
{
    uint8_t h[PATIENT_SHA256_BYTES], root[PATIENT_SHA256_BYTES];
    char sri[PATIENT_SRI_BYTES], rsri[PATIENT_SRI_BYTES];
    char d[PATIENT_TIME_BYTES], e[PATIENT_TIME_BYTES];
    cJSON *p = NULL;
    char *payload = NULL;
    patient_err err = PATIENT_ERR_NOMEM;

    *jws = NULL;
    if (sk == NULL || url == NULL || (body == NULL && len))
        return PATIENT_ERR_ARG;
    if (strlen(url) == 0 || strlen(url) > URL_MAX || expires <= date)
        return PATIENT_ERR_ARG;
    /* The chunk root in the same pass: a hop that withholds deleted bytes
     * can then be confined (docs/format/manifest.md, "Chunk roots"). */
    if ((err = pt_chunk_root(body ? body : "", len, h, root)))
        return err;
    patient_sri_encode(h, sri);
    patient_sri_encode(root, rsri);
    pt_time_format(date, d);
    pt_time_format(expires, e);
    err = PATIENT_ERR_NOMEM;
    /* Keys added in sorted order: cJSON prints in insertion order. */
    if ((p = cJSON_CreateObject()) == NULL || !cJSON_AddStringToObject(p, "chunk_root", rsri) ||
        !cJSON_AddStringToObject(p, "date", d) ||
        !cJSON_AddStringToObject(p, "expires", e) ||
        !cJSON_AddStringToObject(p, "integrity", sri) ||
        !cJSON_AddNumberToObject(p, "patient", 1) ||
        !cJSON_AddNumberToObject(p, "size", (double)len) ||
        !cJSON_AddStringToObject(p, "type", "origin") || !cJSON_AddStringToObject(p, "url", url))
        goto out;
    if ((err = pt_json_print(p, &payload)))
        goto out;
    err = patient_jws_sign(sk, PATIENT_ORIGIN_TYP, payload, strlen(payload), jws);
out:
    cJSON_Delete(p);
    free(payload);
    return err;
}

/* check_body 0: everything but the body (patient_origin_check). */
static patient_err
origin_verify(const char *jws, const patient_pubkey *pk, const char *url, const void *body,
              size_t len, int check_body, time_t now, patient_origin_info *info)
{
    patient_jws *j = NULL;
    cJSON *p = NULL;
    const char *s;
    long long v, size;
    uint8_t h[PATIENT_SHA256_BYTES], want[PATIENT_SHA256_BYTES], root[PATIENT_SHA256_BYTES];
    int has_root = 0;
    time_t date, expires;
    patient_err err;

    if (info)
        memset(info, 0, sizeof *info);
    if (jws == NULL || pk == NULL || url == NULL || (body == NULL && len))
        return PATIENT_ERR_ARG;
    if ((err = patient_jws_parse(jws, strlen(jws), &j)))
        goto out;
    /* Signature before anything the signer claims. */
    if ((err = patient_jws_verify(j, pk)))
        goto out;
    err = PATIENT_ERR_PARSE;
    if (j->typ == NULL || strcmp(j->typ, PATIENT_ORIGIN_TYP) != 0)
        goto out;
    if ((err = pt_json_parse((const char *)j->payload, j->payload_len, &p)))
        goto out;
    err = PATIENT_ERR_PARSE;
    if (!cJSON_IsObject(p) || pt_json_int(p, "patient", &v) != 0)
        goto out;
    if (v != 1) {
        err = PATIENT_ERR_UNSUPPORTED;
        goto out;
    }
    if ((s = pt_json_str(p, "type")) == NULL || strcmp(s, "origin") != 0)
        goto out;
    if (patient_sri_decode(pt_json_str(p, "integrity"), want) != PATIENT_OK ||
        pt_json_int(p, "size", &size) != 0 || size < 0 || pt_json_time(p, "date", &date) ||
        pt_json_time(p, "expires", &expires) || expires < date ||
        (s = pt_json_str(p, "url")) == NULL)
        goto out;
    /* Optional (older signatures have none); malformed: PARSE. */
    if (cJSON_GetObjectItemCaseSensitive(p, "chunk_root") != NULL) {
        if (patient_sri_decode(pt_json_str(p, "chunk_root"), root) != PATIENT_OK)
            goto out;
        has_root = 1;
    }
    if (strcmp(s, url) != 0) {
        err = PATIENT_ERR_ORIGIN;
        goto out;
    }
    if (check_body && (uint64_t)size != (uint64_t)len) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    if (check_body && (err = patient_sha256(body ? body : "", len, h)))
        goto out;
    if (check_body && sodium_memcmp(h, want, sizeof h) != 0) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    if (now > expires || date > now + PATIENT_CLOCK_SKEW) {
        err = PATIENT_ERR_EXPIRED;
        goto out;
    }
    if (info) {
        memcpy(info->kid, j->kid, sizeof info->kid);
        memcpy(info->hash, want, sizeof info->hash);
        info->size = (uint64_t)size;
        info->date = date;
        info->expires = expires;
        info->has_chunk_root = has_root;
        memcpy(info->chunk_root, root, sizeof info->chunk_root);
    }
    err = PATIENT_OK;
out:
    cJSON_Delete(p);
    patient_jws_free(j);
    return err;
}

patient_err
patient_origin_verify(const char *jws, const patient_pubkey *pk, const char *url,
                      const void *body, size_t len, time_t now, patient_origin_info *info)
{
    return origin_verify(jws, pk, url, body, len, 1, now, info);
}

patient_err
patient_origin_check(const char *jws, const patient_pubkey *pk, const char *url, time_t now,
                     patient_origin_info *info)
{
    return origin_verify(jws, pk, url, NULL, 0, 0, now, info);
}
