/* The HTTP response around a middlebox's body: whether it may be changed at
 * all, and which headers a changed one must drop; the ICAP ISTag that
 * names the middlebox's rules. Header: patient/mbox.h. */
#include "config.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <patient/mbox.h>
#include "util.h"

/* Is token one directive of a comma-separated list such as Cache-Control
 * (case-insensitive; a directive may carry "=value")? */
static int
has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && (p = strcasestr(p, token)) != NULL; p += n) {
        int left = p == value || strchr(" \t,", p[-1]);
        int right = p[n] == 0 || strchr(" \t,;=", p[n]);
        if (left && right)
            return 1;
    }
    return 0;
}

const char *
patient_mbox_may_change(int status, const char *cache_control, unsigned flags)
{
    if (status == 206)
        return "partial content";
    if (!(flags & PATIENT_MBOX_IGNORE_NO_TRANSFORM) && cache_control &&
        has_token(cache_control, "no-transform"))
        return "Cache-Control: no-transform";
    return NULL;
}

const char *const *
patient_mbox_drop_headers(void)
{
    static const char *const names[] = {
        "Content-Length", "ETag", "Content-MD5", "Digest", "Content-Digest",
        "Repr-Digest", "Unencoded-Digest", "Accept-Ranges", NULL,
    };
    return names;
}

patient_err
patient_mbox_istag(const patient_pubkey *pk, const char *name, const patient_rules *rules,
                   char out[PATIENT_MBOX_ISTAG_BYTES])
{
    uint8_t h[PATIENT_SHA256_BYTES], rh[PATIENT_SHA256_BYTES];
    patient_sha256_ctx *ctx = NULL;
    patient_err err;

    if (pk == NULL || name == NULL || rules == NULL || out == NULL)
        return PATIENT_ERR_ARG;
    patient_rules_sha256(rules, rh);
    if ((err = patient_sha256_init(&ctx)) != PATIENT_OK)
        return err;
    if ((err = patient_sha256_update(ctx, pk->id, sizeof pk->id)) != PATIENT_OK ||
        (err = patient_sha256_update(ctx, pk->pk, sizeof pk->pk)) != PATIENT_OK ||
        (err = patient_sha256_update(ctx, name, strlen(name) + 1)) != PATIENT_OK ||
        (err = patient_sha256_update(ctx, rh, sizeof rh)) != PATIENT_OK) {
        patient_sha256_free(ctx);
        return err;
    }
    if ((err = patient_sha256_final(ctx, h)) != PATIENT_OK) /* frees ctx */
        return err;
    memcpy(out, "pt1-", 4);
    pt_hex(h, 10, out + 4); /* 20 digits and the NUL */
    return PATIENT_OK;
}
