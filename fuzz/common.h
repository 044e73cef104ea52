/* Shared by the libFuzzer harnesses (fuzz/fuzz_*.c): the public test key
 * of tests/data/key_test.{pub,key} (minisign key 91FA9E6F4D58FE7E,
 * unencrypted; it signs the seed corpora, never anything real), a fixed
 * "now" and small helpers. Each harness is one translation unit, so
 * everything here is static. */
#ifndef PATIENT_FUZZ_COMMON_H
#define PATIENT_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patient/key.h>

/* 2026-01-02T00:01:00Z: the seeds are dated 2026-01-01/02. */
#define FZ_NOW ((time_t)1767312060)

static const char fz_pub_text[] =
    "untrusted comment: minisign public key 91FA9E6F4D58FE7E\n"
    "RWR+/lhNb576kTt2VK4+ftArtwWKHQQpFljc9RvHVv2LBcyvp41NwgsK\n";

static const char fz_sec_text[] =
    "untrusted comment: patient test key (public, do not trust)\n"
    "RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAfv5YTW+e+pH7gelh"
    "IAE9eyuBR7IxNSZ1ZdF7PwCJzMdFbeJzl7yydzt2VK4+ftArtwWKHQQpFljc9RvHVv2LBcyvp41NwgsKAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

/* The test public key, parsed once. */
static __attribute__((unused)) const patient_pubkey *
fz_pubkey(void)
{
    static patient_pubkey pk;
    static int done;

    if (!done) {
        if (patient_pubkey_parse(fz_pub_text, sizeof fz_pub_text - 1, &pk) != PATIENT_OK)
            abort();
        done = 1;
    }
    return &pk;
}

/* The test secret key, parsed once and kept for the process' life. */
static __attribute__((unused)) const patient_seckey *
fz_seckey(void)
{
    static patient_seckey *sk;

    if (sk == NULL && patient_seckey_parse(fz_sec_text, sizeof fz_sec_text - 1, NULL, &sk,
                                           NULL) != PATIENT_OK)
        abort();
    return sk;
}

/* NUL-terminated copy of the input (the fuzzer's buffer is not). */
static __attribute__((unused)) char *
fz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* A parse with reasons (what inspection shows) against its plain twin's
 * code and result: the same verdict, and a reason exactly when it
 * refuses (out of memory and a bad argument may have none). */
static __attribute__((unused)) void
fz_same_verdict(patient_err plain, const void *plain_out, patient_err e, const void *out,
                const char *why)
{
    if (e != plain || (out != NULL) != (plain_out != NULL) ||
        (plain != PATIENT_OK && plain != PATIENT_ERR_NOMEM && plain != PATIENT_ERR_ARG &&
         why == NULL) ||
        (plain == PATIENT_OK && why != NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
