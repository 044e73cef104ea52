/* JWS compact serialisation, EdDSA (Ed25519) only. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include <patient/jws.h>
#include "jws_int.h"
#include "key_int.h"
#include "util.h"

/* The compact serialisation is assembled in one buffer: base64url of the
 * protected header (written directly, the bytes cJSON printed before), of
 * the payload, then of the signature over the two; no intermediate
 * strings. */
/* The protected header: {"alg":"EdDSA","kid":"<kid>"[,"typ":"<typ>"]}. */
static patient_err
jws_header(const patient_seckey *sk, const char *typ, pt_buf *hdr)
{
    static const char alg_kid[] = "{\"alg\":\"EdDSA\",\"kid\":", typ_key[] = ",\"typ\":";
    char kid[PATIENT_KEYID_HEX];
    patient_pubkey pk;
    patient_err err;

    patient_seckey_pubkey(sk, &pk);
    patient_keyid_hex(pk.id, kid);
    if ((err = pt_buf_append(hdr, alg_kid, sizeof alg_kid - 1)) ||
        (err = pt_buf_put_json_strn(hdr, kid, SIZE_MAX, PT_JSON_ESC_SHORT)) ||
        (typ && ((err = pt_buf_append(hdr, typ_key, sizeof typ_key - 1)) ||
                 (err = pt_buf_put_json_strn(hdr, typ, SIZE_MAX, PT_JSON_ESC_SHORT)))))
        return err;
    return pt_buf_append(hdr, "}", 1);
}

patient_err
pt_jws_sign_uncapped(const patient_seckey *sk, const char *typ, const void *payload, size_t len,
                     char **out)
{
    pt_buf hdr = {0}, b = {0};
    uint8_t sig[PATIENT_SIG_BYTES];
    patient_err err;

    *out = NULL;
    if (sk == NULL || (payload == NULL && len > 0) || (typ != NULL && strlen(typ) > 256))
        return PATIENT_ERR_ARG; /* typ: at most 256 bytes (jws.h) */
    if ((err = jws_header(sk, typ, &hdr)))
        goto out;
    if ((err = pt_buf_reserve(&b, (hdr.len + len + PATIENT_SIG_BYTES) / 3 * 4 + 16)) ||
        (err = pt_buf_put_b64(&b, hdr.data, hdr.len, 1)) || (err = pt_buf_append(&b, ".", 1)) ||
        (err = pt_buf_put_b64(&b, payload, len, 1)))
        goto out;
    if ((err = patient_sign(sk, b.data, b.len, sig)))
        goto out;
    if ((err = pt_buf_append(&b, ".", 1)) || (err = pt_buf_put_b64(&b, sig, sizeof sig, 1)))
        goto out;
    *out = (char *)b.data;
    b.data = NULL;
out:
    pt_buf_free(&hdr);
    pt_buf_free(&b);
    return err;
}

patient_err
patient_jws_sign(const patient_seckey *sk, const char *typ, const void *payload, size_t len,
                 char **out)
{
    *out = NULL;
    if (sk == NULL || (payload == NULL && len > 0))
        return PATIENT_ERR_ARG;
    /* Our output must pass our own parser: base64url grows by 4/3, and the
     * header plus signature take well under 1 KiB. */
    if (len > PATIENT_JWS_PAYLOAD_MAX)
        return PATIENT_ERR_TOO_LARGE;
    return pt_jws_sign_uncapped(sk, typ, payload, len, out);
}

void
patient_jws_free(patient_jws *jws)
{
    if (jws == NULL)
        return;
    free(jws->typ);
    free(jws->payload);
    free(jws->signing_input);
    free(jws);
}

patient_err
patient_jws_parse(const char *s, size_t len, patient_jws **out)
{
    const char *d1, *d2, *end;
    uint8_t *hdr = NULL;
    size_t hlen = 0;
    cJSON *h = NULL;
    const cJSON *item;
    patient_jws *j = NULL;
    patient_err err;
    const char *alg, *kid, *typ;

    *out = NULL;
    if (s == NULL)
        return PATIENT_ERR_ARG;
    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
                       s[len - 1] == '\n'))
        len--;
    if (len > PATIENT_JWS_MAX)
        return PATIENT_ERR_TOO_LARGE;
    end = s + len;
    if ((d1 = memchr(s, '.', len)) == NULL ||
        (d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1))) == NULL ||
        memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
        return PATIENT_ERR_PARSE;
    if ((j = calloc(1, sizeof *j)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = pt_b64_decode(s, (size_t)(d1 - s), 1, &hdr, &hlen)) ||
        (err = pt_b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), 1, &j->payload, &j->payload_len)))
        goto out;
    if (pt_b64_decode_exact(d2 + 1, (size_t)(end - d2 - 1), 1, j->sig, sizeof j->sig)) {
        err = PATIENT_ERR_BASE64;
        goto out;
    }
    if ((err = pt_json_parse((const char *)hdr, hlen, &h)) != PATIENT_OK)
        goto out;
    if (!cJSON_IsObject(h)) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    alg = pt_json_str(h, "alg");
    if (alg == NULL) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    /* Only EdDSA; "crit" names extensions we do not implement, so refuse. */
    if (strcmp(alg, "EdDSA") != 0 || cJSON_GetObjectItemCaseSensitive(h, "crit") != NULL) {
        err = PATIENT_ERR_UNSUPPORTED;
        goto out;
    }
    if ((kid = pt_json_str(h, "kid")) == NULL || pt_keyid_parse_signed(kid, j->kid) != PATIENT_OK) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    item = cJSON_GetObjectItemCaseSensitive(h, "typ");
    if (item != NULL) {
        if ((typ = pt_json_str(h, "typ")) == NULL) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        if ((j->typ = strdup(typ)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
    }
    j->signing_input_len = (size_t)(d2 - s);
    if ((j->signing_input = malloc(j->signing_input_len + 1)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    memcpy(j->signing_input, s, j->signing_input_len);
    j->signing_input[j->signing_input_len] = 0;
    *out = j;
    j = NULL;
out:
    cJSON_Delete(h);
    free(hdr);
    patient_jws_free(j);
    return err;
}

patient_err
patient_jws_verify(const patient_jws *jws, const patient_pubkey *pk)
{
    if (sodium_memcmp(jws->kid, pk->id, PATIENT_KEYID_BYTES) != 0)
        return PATIENT_ERR_KEY_MISMATCH;
    return patient_verify(pk, jws->signing_input, jws->signing_input_len, jws->sig);
}
