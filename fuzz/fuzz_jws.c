/* libFuzzer harness: JWS compact values (patient_jws_parse, then
 * patient_jws_verify with the test key). */
#include "config.h"

#include <patient/jws.h>

#include "common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_jws *j = NULL;
    patient_err err;

    err = patient_jws_parse((const char *)data, size, &j);
    if ((err == PATIENT_OK) != (j != NULL))
        abort();
    if (j == NULL)
        return 0;
    if (j->payload == NULL || j->payload[j->payload_len] != 0 || j->signing_input == NULL ||
        j->signing_input_len > size || strlen(j->signing_input) != j->signing_input_len ||
        memchr(j->signing_input, '.', j->signing_input_len) == NULL)
        abort();
    err = patient_jws_verify(j, fz_pubkey());
    if (err != PATIENT_OK && err != PATIENT_ERR_KEY_MISMATCH && err != PATIENT_ERR_SIGNATURE)
        abort();
    patient_jws_free(j);
    return 0;
}
