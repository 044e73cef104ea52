/* libFuzzer harness: Patient-Origin values (patient_origin_verify) for a
 * fixed URL and body at a fixed time. Input starting with '{' is a payload,
 * signed with the test key as "patient-origin+jws" first (so the payload
 * checks after the signature are reached); anything else is the header
 * value itself. */
#include "config.h"

#include <patient/jws.h>
#include <patient/manifest.h>

#include "common.h"

static const char url[] = "https://example.org/api/x";
static const char body[] =
    "<html><body class=x><p>hello</p><script src=\"//tracker.example/t.js\"></script>"
    "<p>bye</p></body></html>\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_origin_info info;
    char *jws = NULL;
    patient_err err;

    if (size > 0 && data[0] == '{') {
        if (patient_jws_sign(fz_seckey(), PATIENT_ORIGIN_TYP, data, size, &jws) != PATIENT_OK)
            return 0;
    } else {
        jws = fz_strndup(data, size);
    }
    err = patient_origin_verify(jws, fz_pubkey(), url, body, sizeof body - 1, FZ_NOW, &info);
    if (err == PATIENT_OK && (info.size != sizeof body - 1 || info.expires < info.date))
        abort();
    (void)patient_origin_verify(jws, fz_pubkey(), url, body, sizeof body - 1, 0, NULL);
    free(jws);
    return 0;
}
