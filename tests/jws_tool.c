/* Test helper for the interop scripts: signs and verifies JWS and minisign
 * signatures with the public libpatient API only (it links the shared
 * library, like the tools).
 *
 *   jws_tool sign SECKEY [TYP] < payload      prints the compact JWS
 *   jws_tool verify PUBKEY < jws              prints the payload
 *   jws_tool minisig SECKEY FILE COMMENT      prints a minisig for FILE
 *   jws_tool minisig-verify PUBKEY FILE SIG   checks it
 *
 * Encrypted keys read their password from PATIENT_PASSWORD_FILE. Exit 0
 * ok, 1 verification failed (errname on stderr), 2 other errors. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <patient/patient.h>

#define MAX_IN (4u * 1024 * 1024)

static int
fail(patient_err err, const char *what)
{
    fprintf(stderr, "jws_tool: %s: %s\n", what, patient_errname(err));
    return err == PATIENT_ERR_SIGNATURE || err == PATIENT_ERR_KEY_MISMATCH ? 1 : 2;
}

static int
slurp(FILE *fp, char **out, size_t *len)
{
    char *b = malloc(MAX_IN + 1);
    size_t n;

    if (b == NULL)
        return -1;
    n = fread(b, 1, MAX_IN + 1, fp);
    if (ferror(fp) || n > MAX_IN) {
        free(b);
        return -1;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return 0;
}

static int
slurp_path(const char *path, char **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    int r;

    if (fp == NULL)
        return -1;
    r = slurp(fp, out, len);
    fclose(fp);
    return r;
}

static patient_err
load_sk(const char *path, patient_seckey **sk)
{
    char *pw = NULL;
    int enc = 0;
    patient_err err = patient_seckey_load(path, NULL, sk, &enc);

    if (err == PATIENT_ERR_KEY_PASSWORD && enc) {
        if ((err = patient_password_from_file(NULL, &pw)) != PATIENT_OK)
            return err;
        err = patient_seckey_load(path, pw, sk, NULL);
        patient_password_free(pw);
    }
    return err;
}

int
main(int argc, char **argv)
{
    patient_seckey *sk = NULL;
    patient_pubkey pk;
    patient_jws *jws = NULL;
    char *in = NULL, *out = NULL, *sig = NULL;
    size_t inlen = 0, siglen = 0;
    patient_err err;
    int rc = 2;

    if (argc >= 3 && strcmp(argv[1], "sign") == 0) {
        if ((err = load_sk(argv[2], &sk)) != PATIENT_OK)
            return fail(err, argv[2]);
        if (slurp(stdin, &in, &inlen) != 0)
            goto out;
        if ((err = patient_jws_sign(sk, argc > 3 ? argv[3] : NULL, in, inlen, &out))) {
            rc = fail(err, "sign");
            goto out;
        }
        printf("%s\n", out);
        rc = 0;
    } else if (argc == 3 && strcmp(argv[1], "verify") == 0) {
        if ((err = patient_pubkey_load(argv[2], &pk)) != PATIENT_OK)
            return fail(err, argv[2]);
        if (slurp(stdin, &in, &inlen) != 0)
            goto out;
        if ((err = patient_jws_parse(in, inlen, &jws)) ||
            (err = patient_jws_verify(jws, &pk))) {
            rc = fail(err, "verify");
            goto out;
        }
        fwrite(jws->payload, 1, jws->payload_len, stdout);
        rc = 0;
    } else if (argc == 5 && strcmp(argv[1], "minisig") == 0) {
        if ((err = load_sk(argv[2], &sk)) != PATIENT_OK)
            return fail(err, argv[2]);
        if (slurp_path(argv[3], &in, &inlen) != 0)
            goto out;
        if ((err = patient_minisig_sign(sk, in, inlen, NULL, argv[4], &out))) {
            rc = fail(err, "minisig");
            goto out;
        }
        fputs(out, stdout);
        rc = 0;
    } else if (argc == 5 && strcmp(argv[1], "minisig-verify") == 0) {
        if ((err = patient_pubkey_load(argv[2], &pk)) != PATIENT_OK)
            return fail(err, argv[2]);
        if (slurp_path(argv[3], &in, &inlen) != 0 || slurp_path(argv[4], &sig, &siglen) != 0)
            goto out;
        if ((err = patient_minisig_verify(&pk, in, inlen, sig, siglen, NULL, NULL))) {
            rc = fail(err, "minisig-verify");
            goto out;
        }
        rc = 0;
    } else {
        fprintf(stderr, "usage: jws_tool sign|verify|minisig|minisig-verify ...\n");
    }
out:
    patient_jws_free(jws);
    patient_seckey_free(sk);
    free(in);
    free(out);
    free(sig);
    return rc;
}
