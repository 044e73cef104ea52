/* libFuzzer harness: secret key files (patient_seckey_parse), without a
 * password and, when the file's scrypt parameters are cheap, with one.
 * A key that parses must sign something its own public half verifies.
 * Expensive scrypt parameters (up to minisign's 2^25 ops / 1 GiB, which the
 * library accepts) would make every run take seconds, so the password path
 * is only taken when every candidate key line decodes to parameters of at
 * most 2^16 ops and 16 MiB. */
#include "config.h"

#include <sodium.h>

#include <patient/key.h>

#include "common.h"

#define SECKEY_FILE_BYTES 158 /* minisign's secret key record */

static uint64_t
le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* 1 when a password attempt costs little (see above). */
static int
kdf_cheap(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    uint8_t raw[SECKEY_FILE_BYTES + 1];
    int seen = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p), got = 0;
        const char *last = NULL;

        if (n >= 19 && memcmp(p, "untrusted comment: ", 19) == 0) {
            p = nl ? nl + 1 : end;
            continue;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
            n--;
        if (n > 0) {
            if (sodium_base642bin(raw, sizeof raw, p, n, NULL, &got, &last,
                                  sodium_base64_VARIANT_ORIGINAL) != 0 ||
                got != SECKEY_FILE_BYTES || last != p + n)
                return 0;
            if (le64(raw + 38) > (1u << 16) || le64(raw + 46) > (1u << 24))
                return 0;
            seen = 1;
        }
        p = nl ? nl + 1 : end;
    }
    return seen;
}

static void
check_key(patient_seckey *sk)
{
    static const char msg[] = "fuzz";
    patient_pubkey pk;
    uint8_t sig[PATIENT_SIG_BYTES];

    patient_seckey_pubkey(sk, &pk);
    if (patient_sign(sk, msg, sizeof msg, sig) != PATIENT_OK ||
        patient_verify(&pk, msg, sizeof msg, sig) != PATIENT_OK)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_seckey *sk = NULL;
    int enc = 0;
    patient_err err;

    err = patient_seckey_parse((const char *)data, size, NULL, &sk, &enc);
    if ((err == PATIENT_OK) != (sk != NULL))
        abort();
    if (sk)
        check_key(sk);
    patient_seckey_free(sk);
    sk = NULL;
    if (err == PATIENT_ERR_KEY_PASSWORD && enc && kdf_cheap(data, size)) {
        err = patient_seckey_parse((const char *)data, size, "fuzz password", &sk, NULL);
        if ((err == PATIENT_OK) != (sk != NULL))
            abort();
        if (sk)
            check_key(sk);
        patient_seckey_free(sk);
    }
    return 0;
}
