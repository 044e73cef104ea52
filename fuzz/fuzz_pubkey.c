/* libFuzzer harness: public key text (patient_pubkey_parse) and key ids
 * (patient_keyid_parse). Whatever parses must survive an encode/parse
 * round trip unchanged. */
#include "config.h"

#include <patient/key.h>

#include "common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_pubkey pk, pk2;
    char b64[PATIENT_PUBKEY_B64], hex[PATIENT_KEYID_HEX];
    uint8_t id[PATIENT_KEYID_BYTES], id2[PATIENT_KEYID_BYTES];
    char *s;

    if (patient_pubkey_parse((const char *)data, size, &pk) == PATIENT_OK) {
        patient_pubkey_encode(&pk, b64);
        if (strlen(b64) != PATIENT_PUBKEY_B64 - 1 ||
            patient_pubkey_parse(b64, strlen(b64), &pk2) != PATIENT_OK ||
            memcmp(&pk, &pk2, sizeof pk) != 0)
            abort();
    }
    s = fz_strndup(data, size);
    if (patient_keyid_parse(s, id) == PATIENT_OK) {
        patient_keyid_hex(id, hex);
        if (patient_keyid_parse(hex, id2) != PATIENT_OK || memcmp(id, id2, sizeof id) != 0)
            abort();
    }
    free(s);
    return 0;
}
