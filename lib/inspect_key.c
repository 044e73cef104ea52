/* Inspection of keys and minisign files: public and secret key files,
 * signatures, read by the library's minisign reader (patient_minisign_inspect);
 * a secret key shows only public facts. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cJSON.h>

#include "inspect_int.h"
#include "util.h"

int
pt_inspect_add_pubkey(cJSON *d, const uint8_t id[8], const uint8_t pk[32])
{
    patient_pubkey p;
    char b[PATIENT_PUBKEY_B64], kid[PATIENT_KEYID_HEX];

    memcpy(p.id, id, 8);
    memcpy(p.pk, pk, 32);
    patient_pubkey_encode(&p, b);
    patient_keyid_hex(id, kid);
    cJSON_AddStringToObject(d, "key_id", kid);
    cJSON_AddStringToObject(d, "public_key", b);
    return 0;
}

int
pt_inspect_minisign(const char *text, size_t len, result *r)
{
    patient_minisign_info mi;
    patient_err err = patient_minisign_inspect(text, len, &mi);
    char kid[PATIENT_KEYID_HEX];

    switch (err) {
    case PATIENT_OK:
        break;
    case PATIENT_ERR_KEY_FORMAT:
        return pt_inspect_fail(r, "minisign-style file with a comment line but no key or signature line "
                       "(truncated?)");
    case PATIENT_ERR_BASE64:
        return pt_inspect_fail(r, "the line after the comment is not base64 (%zu characters)", mi.line_len);
    case PATIENT_ERR_UNSUPPORTED:
        return pt_inspect_fail(r, "secret key with an unknown KDF algorithm (0x%02x%02x)", mi.alg[2],
                    mi.alg[3]);
    case PATIENT_ERR_PARSE:
        if (mi.kind == PATIENT_MINISIGN_SIGNATURE)
            return pt_inspect_fail(r, "minisign signature without its trusted comment and global signature "
                           "lines (truncated?)");
        return pt_inspect_fail(r, "base64 line of %zu bytes: not a minisign public key (42), secret key "
                       "(158) or signature (74)",
                    mi.decoded_len);
    default:
        return pt_inspect_fail(r, "%s [%s]", patient_strerror(err), patient_errname(err));
    }
    r->details = cJSON_CreateObject();
    if (mi.untrusted_comment) {
        char *t = strndup(mi.untrusted_comment, mi.untrusted_comment_len);
        cJSON_AddStringToObject(r->details, "untrusted_comment", t ? t : "");
        free(t);
    }
    switch (mi.kind) {
    case PATIENT_MINISIGN_PUBKEY:
        r->kind = "public-key";
        r->title = "minisign public key (Ed25519)";
        pt_inspect_add_pubkey(r->details, mi.pubkey.id, mi.pubkey.pk);
        break;
    case PATIENT_MINISIGN_SECKEY:
        r->kind = "secret-key";
        r->title = "minisign SECRET key (Ed25519): keep it secret";
        cJSON_AddBoolToObject(r->details, "encrypted", mi.encrypted);
        if (mi.encrypted) {
            cJSON_AddStringToObject(r->details, "kdf", "scrypt");
            cJSON_AddNumberToObject(r->details, "kdf_opslimit", (double)mi.kdf_opslimit);
            cJSON_AddNumberToObject(r->details, "kdf_memlimit", (double)mi.kdf_memlimit);
            cJSON_AddStringToObject(r->details, "key_id",
                                    "unknown (encrypted with the key; `patient keygen` prints it)");
        } else {
            pt_inspect_add_pubkey(r->details, mi.pubkey.id, mi.pubkey.pk);
        }
        break;
    default: { /* PATIENT_MINISIGN_SIGNATURE */
        char *t = strndup(mi.trusted_comment, mi.trusted_comment_len);
        r->kind = "minisign-signature";
        r->title = "minisign signature";
        r->is_signed = 1;
        patient_keyid_hex(mi.keyid, kid);
        cJSON_AddStringToObject(r->details, "algorithm", mi.prehashed ? "ED" : "Ed");
        cJSON_AddBoolToObject(r->details, "prehashed", mi.prehashed);
        cJSON_AddStringToObject(r->details, "key_id", kid);
        cJSON_AddStringToObject(r->details, "trusted_comment", t ? t : "");
        free(t);
        break;
    }
    }
    return 0;
}

