/* C2SP signed-note (Ed25519) and C2SP tlog-checkpoint: write and read the
 * checkpoints a published log serves. Format contract: docs/format/log.md
 * ("Checkpoints as signed notes"). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include <patient/tlog.h>
#include "util.h"

#define SIG_ED25519 0x01
#define NOTE_SIGS_MAX 100
/* U+2014 EM DASH, then a space: how every signature line starts. */
static const char dash[] = "\xe2\x80\x94 ";

/* A key name: 1..255 bytes, no ASCII blanks or controls, no '+'. (Unicode
 * spaces are refused by refusing what is not printable ASCII or UTF-8.) */
static int
name_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > PATIENT_ORIGIN_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '+')
            return 0;
    }
    return 1;
}

static patient_err
key_id(const char *name, size_t n, const uint8_t pk[PATIENT_PUBKEY_BYTES], uint8_t id[4])
{
    crypto_hash_sha256_state st;
    uint8_t h[crypto_hash_sha256_BYTES];
    static const uint8_t sep[2] = {'\n', SIG_ED25519};

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, n);
    crypto_hash_sha256_update(&st, sep, sizeof sep);
    crypto_hash_sha256_update(&st, pk, PATIENT_PUBKEY_BYTES);
    crypto_hash_sha256_final(&st, h);
    memcpy(id, h, 4);
    return PATIENT_OK;
}

patient_err
patient_note_vkey(const char *name, const patient_pubkey *pub, char **vkey)
{
    uint8_t id[4], raw[1 + PATIENT_PUBKEY_BYTES];
    char *b64 = NULL, hex[9];
    pt_buf b = {0};
    patient_err err;

    *vkey = NULL;
    if (name == NULL || pub == NULL || !name_ok(name, strlen(name)))
        return PATIENT_ERR_ARG;
    key_id(name, strlen(name), pub->pk, id);
    pt_hex(id, 4, hex);
    raw[0] = SIG_ED25519;
    memcpy(raw + 1, pub->pk, PATIENT_PUBKEY_BYTES);
    if ((err = pt_b64_encode(raw, sizeof raw, 0, &b64)) ||
        (err = pt_buf_appendf(&b, "%s+%s+%s", name, hex, b64)) || (err = pt_buf_append(&b, "", 1)))
        goto out;
    *vkey = (char *)b.data;
    b.data = NULL;
out:
    free(b64);
    pt_buf_free(&b);
    return err;
}

void
patient_tlog_default_origin(const char *log_id, char out[PATIENT_ORIGIN_MAX + 1])
{
    snprintf(out, PATIENT_ORIGIN_MAX + 1, "patient.log/%s", log_id ? log_id : "");
}

patient_err
patient_checkpoint_sign(const patient_checkpoint *c, const patient_seckey *sk, char **note)
{
    patient_pubkey pk;
    uint8_t sig[4 + PATIENT_SIG_BYTES];
    char *root = NULL, *s64 = NULL;
    pt_buf b = {0};
    size_t text_len;
    patient_err err;

    *note = NULL;
    if (c == NULL || sk == NULL || !name_ok(c->origin, strlen(c->origin)))
        return PATIENT_ERR_ARG;
    patient_seckey_pubkey(sk, &pk);
    if ((err = pt_b64_encode(c->root, PATIENT_SHA256_BYTES, 0, &root)) ||
        (err = pt_buf_appendf(&b, "%s\n%llu\n%s\n", c->origin, (unsigned long long)c->size, root)))
        goto out;
    text_len = b.len;
    key_id(c->origin, strlen(c->origin), pk.pk, sig);
    if ((err = patient_sign(sk, b.data, text_len, sig + 4)) ||
        (err = pt_b64_encode(sig, sizeof sig, 0, &s64)) ||
        (err = pt_buf_appendf(&b, "\n%s%s %s\n", dash, c->origin, s64)) ||
        (err = pt_buf_append(&b, "", 1)))
        goto out;
    *note = (char *)b.data;
    b.data = NULL;
out:
    free(root);
    free(s64);
    pt_buf_free(&b);
    return err;
}

/* Well-formed UTF-8 without controls other than "\n": what a note may hold. */
static int
text_ok(const uint8_t *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\n') || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            k = 1;
        else if (c >= 0xe0 && c <= 0xef)
            k = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 3;
        else
            return 0;
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
        /* Overlong three- and four-byte forms, surrogates, > U+10FFFF. */
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0) ||
            (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))
            return 0;
        i += k + 1;
    }
    return 1;
}

patient_err
patient_checkpoint_open(const char *note, size_t len, const char *origin,
                        const patient_pubkey *pub, patient_checkpoint *out)
{
    const uint8_t *m = (const uint8_t *)note;
    const char *p, *e, *text_end, *nl;
    uint8_t want[4], sig[4 + PATIENT_SIG_BYTES];
    size_t text_len, nsig = 0, k;
    int verified = 0, line;
    patient_err err = PATIENT_ERR_PARSE;

    memset(out, 0, sizeof *out);
    if (note == NULL)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_NOTE_MAX)
        return PATIENT_ERR_TOO_LARGE;
    if (len < 2 || !text_ok(m, len) || note[len - 1] != '\n')
        return PATIENT_ERR_PARSE;
    /* The text ends at the last blank line; signatures follow. */
    for (text_end = NULL, k = len - 1; k > 0; k--)
        if (note[k] == '\n' && note[k - 1] == '\n') {
            text_end = note + k;
            break;
        }
    if (text_end == NULL || text_end == note + 1)
        return PATIENT_ERR_PARSE;
    text_len = (size_t)(text_end - note);
    /* Text: origin, size, root, then any extension lines (not empty). */
    for (p = note, line = 0; p < text_end; p = nl + 1, line++) {
        nl = memchr(p, '\n', (size_t)(text_end - p));
        if (nl == NULL || nl == p)
            goto out;
        if (line == 0) {
            if (!name_ok(p, (size_t)(nl - p)))
                goto out;
            memcpy(out->origin, p, (size_t)(nl - p));
            out->origin[nl - p] = '\0';
        } else if (line == 1) {
            /* The tree size fits in 63 bits: what other implementations
             * hold in an int64. */
            if (pt_decimal_parse(p, (size_t)(nl - p), INT64_MAX, &out->size) != 0)
                goto out;
        } else if (line == 2) {
            if (pt_b64_decode_exact(p, (size_t)(nl - p), 0, out->root, PATIENT_SHA256_BYTES))
                goto out;
        }
    }
    if (line < 3)
        goto out;
    if (pub)
        key_id(out->origin, strlen(out->origin), pub->pk, want);
    /* Signatures: "— <name> <base64(key id || signature)>\n" each. */
    for (p = text_end + 1, e = note + len; p < e; p = nl + 1) {
        const char *name, *sp;
        size_t nlen;
        nl = memchr(p, '\n', (size_t)(e - p));
        if (nl == NULL || ++nsig > NOTE_SIGS_MAX || (size_t)(nl - p) < sizeof dash ||
            memcmp(p, dash, sizeof dash - 1) != 0)
            goto out;
        name = p + sizeof dash - 1;
        if ((sp = memchr(name, ' ', (size_t)(nl - name))) == NULL)
            goto out;
        nlen = (size_t)(sp - name);
        if (!name_ok(name, nlen))
            goto out;
        /* Other keys' signatures (cosigners, witnesses) may be of other
         * types and lengths: only their form is checked. */
        if (nlen != strlen(out->origin) || memcmp(name, out->origin, nlen) != 0) {
            uint8_t *any = NULL;
            size_t alen = 0;
            if (pt_b64_decode(sp + 1, (size_t)(nl - sp - 1), 0, &any, &alen) != PATIENT_OK) {
                free(any);
                goto out;
            }
            free(any);
            if (alen < 5)
                goto out;
            continue;
        }
        if (pt_b64_decode_exact(sp + 1, (size_t)(nl - sp - 1), 0, sig, sizeof sig) != PATIENT_OK)
            goto out;
        if (pub && !verified && memcmp(sig, want, 4) == 0) {
            if (patient_verify(pub, note, text_len, sig + 4) != PATIENT_OK) {
                err = PATIENT_ERR_SIGNATURE;
                goto out;
            }
            verified = 1;
        }
    }
    if (nsig == 0)
        goto out;
    if (origin && strcmp(origin, out->origin) != 0) {
        err = PATIENT_ERR_KEY_MISMATCH;
        goto out;
    }
    if (pub && !verified) {
        err = PATIENT_ERR_KEY_MISMATCH;
        goto out;
    }
    err = PATIENT_OK;
out:
    if (err)
        memset(out, 0, sizeof *out);
    return err;
}
