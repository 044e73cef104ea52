/* libFuzzer harness: Content-Encoding bodies (patient_gzip_decode) with a
 * 1 MiB cap and with a tiny one; what decodes must survive an
 * encode/decode round trip. */
#include "config.h"

#include <patient/gzip.h>

#include "common.h"

#define CAP (1u << 20)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL, *z = NULL, *back = NULL;
    size_t out_len = 0, z_len = 0, back_len = 0;
    patient_err err;

    err = patient_gzip_decode(data, size, CAP, &out, &out_len);
    if ((err == PATIENT_OK) != (out != NULL) || out_len > CAP)
        abort();
    if (out != NULL) {
        if (patient_gzip_encode(out, out_len, &z, &z_len) != PATIENT_OK ||
            patient_gzip_decode(z, z_len, CAP, &back, &back_len) != PATIENT_OK ||
            back_len != out_len || memcmp(back, out, out_len) != 0)
            abort();
        free(z);
        free(back);
        free(out);
        out = NULL;
    }
    err = patient_gzip_decode(data, size, 16, &out, &out_len);
    if ((err == PATIENT_OK) != (out != NULL) || out_len > 16)
        abort();
    free(out);
    return 0;
}
