/* Unit tests: JWS compact serialisation with EdDSA (lib/jws.c). The golden
 * tests/data/jws_test.jws is the fixture key (key_test.key) signing
 * jws_test.json with typ "patient-test+jws"; forged twins must fail with
 * a specific code. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <patient/patient.h>
#include "util.h"
#include "testutil.h"

#define GOLDEN_TYP "patient-test+jws"

static void
fixture_pubkey(patient_pubkey *pk)
{
    char p[512];
    snprintf(p, sizeof p, "%s/data/key_test.pub", TEST_SRCDIR);
    ck_assert_int_eq(patient_pubkey_load(p, pk), PATIENT_OK);
}

/* Parse the secret key fixture from memory (no file, so no mode issue). */
static patient_seckey *
fixture_seckey(void)
{
    size_t n;
    char *t = tu_fixture("key_test.key", &n);
    patient_seckey *sk = NULL;
    ck_assert_int_eq(patient_seckey_parse(t, n, NULL, &sk, NULL), PATIENT_OK);
    free(t);
    return sk;
}

static char *
b64url(const void *p, size_t n)
{
    char *e = NULL;
    ck_assert_int_eq(pt_b64_encode(p, n, 1, &e), PATIENT_OK);
    return e;
}

/* header-json . payload . signature-part, all given. */
static char *
assemble(const char *hjson, const char *payload, const char *sigpart)
{
    char *h = b64url(hjson, strlen(hjson)), *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + strlen(sigpart) + 3;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s.%s", h, p, sigpart);
    free(h);
    free(p);
    return out;
}

static patient_err
parse_verify(const char *s, const patient_pubkey *pk)
{
    patient_jws *j = NULL;
    patient_err err = patient_jws_parse(s, strlen(s), &j);
    if (err == PATIENT_OK)
        err = patient_jws_verify(j, pk);
    else
        ck_assert_ptr_null(j);
    patient_jws_free(j);
    return err;
}

START_TEST(roundtrip)
{
    patient_pubkey pk, other;
    patient_seckey *sk = NULL, *osk = NULL;
    patient_jws *j = NULL;
    char *s = NULL, kid[PATIENT_KEYID_HEX];
    const char payload[] = "{\"url\":\"https://example.org/\",\"hop\":1}";

    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_jws_sign(sk, "patient-change+jws", payload, sizeof payload - 1, &s),
                     PATIENT_OK);
    ck_assert_int_eq(patient_jws_parse(s, strlen(s), &j), PATIENT_OK);
    ck_assert_int_eq(patient_jws_verify(j, &pk), PATIENT_OK);
    ck_assert_uint_eq(j->payload_len, sizeof payload - 1);
    ck_assert_mem_eq(j->payload, payload, j->payload_len);
    ck_assert_int_eq(j->payload[j->payload_len], 0);
    ck_assert_str_eq(j->typ, "patient-change+jws");
    ck_assert_mem_eq(j->kid, pk.id, 8);
    ck_assert_uint_eq(j->signing_input_len, (size_t)(strrchr(s, '.') - s));
    patient_jws_free(j);
    /* The header is exactly what the docs promise. */
    {
        uint8_t *h = NULL;
        size_t hn = 0;
        char want[128];
        patient_keyid_hex(pk.id, kid);
        snprintf(want, sizeof want, "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"patient-change+jws\"}",
                 kid);
        ck_assert_int_eq(pt_b64_decode(s, (size_t)(strchr(s, '.') - s), 1, &h, &hn), PATIENT_OK);
        ck_assert_str_eq((char *)h, want);
        free(h);
    }
    /* Surrounding blanks (as in an HTTP header value) are trimmed. */
    {
        size_t n = strlen(s) + 5;
        char *padded = malloc(n);
        snprintf(padded, n, " %s\r\n ", s);
        padded[n - 2] = 0; /* " jws\r\n" */
        ck_assert_int_eq(parse_verify(padded, &pk), PATIENT_OK);
        free(padded);
    }
    /* Another key: the id check comes first. */
    ck_assert_int_eq(patient_keypair_generate(&other, &osk), PATIENT_OK);
    ck_assert_int_eq(parse_verify(s, &other), PATIENT_ERR_KEY_MISMATCH);
    memcpy(other.id, pk.id, 8);
    ck_assert_int_eq(parse_verify(s, &other), PATIENT_ERR_SIGNATURE);
    free(s);
    /* No typ, empty payload. */
    ck_assert_int_eq(patient_jws_sign(sk, NULL, "", 0, &s), PATIENT_OK);
    ck_assert_int_eq(patient_jws_parse(s, strlen(s), &j), PATIENT_OK);
    ck_assert_ptr_null(j->typ);
    ck_assert_uint_eq(j->payload_len, 0);
    ck_assert_int_eq(patient_jws_verify(j, &pk), PATIENT_OK);
    patient_jws_free(j);
    patient_jws_free(NULL);
    free(s);
    patient_seckey_free(sk);
    patient_seckey_free(osk);
}
END_TEST

START_TEST(golden)
{
    patient_pubkey pk;
    patient_seckey *sk = fixture_seckey();
    patient_jws *j = NULL;
    size_t n, pn;
    char *g = tu_fixture("jws_test.jws", &n), *payload = tu_fixture("jws_test.json", &pn);
    char *ours = NULL;

    fixture_pubkey(&pk);
    ck_assert_int_eq(patient_jws_parse(g, n, &j), PATIENT_OK);
    ck_assert_int_eq(patient_jws_verify(j, &pk), PATIENT_OK);
    ck_assert_str_eq(j->typ, GOLDEN_TYP);
    ck_assert_uint_eq(j->payload_len, pn);
    ck_assert_mem_eq(j->payload, payload, pn);
    patient_jws_free(j);
    /* Deterministic: signing again gives the golden bytes exactly. */
    ck_assert_int_eq(patient_jws_sign(sk, GOLDEN_TYP, payload, pn, &ours), PATIENT_OK);
    while (n > 0 && (g[n - 1] == '\n' || g[n - 1] == '\r'))
        g[--n] = 0;
    ck_assert_str_eq(ours, g);
    free(ours);
    free(g);
    free(payload);
    patient_seckey_free(sk);
}
END_TEST

START_TEST(forged)
{
    patient_pubkey pk;
    size_t n;
    char *g = tu_fixture("jws_test.jws", &n);
    char *d1, *d2, *f, *sigpart, *hjson;
    uint8_t *hdr = NULL;
    size_t hlen = 0;

    fixture_pubkey(&pk);
    while (n > 0 && (g[n - 1] == '\n' || g[n - 1] == '\r'))
        g[--n] = 0;
    d1 = strchr(g, '.');
    d2 = strchr(d1 + 1, '.');
    sigpart = d2 + 1;
    ck_assert_int_eq(pt_b64_decode(g, (size_t)(d1 - g), 1, &hdr, &hlen), PATIENT_OK);
    hjson = (char *)hdr;

    /* Payload changed, header and signature kept. */
    f = assemble(hjson, "{\"forged\":true}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_SIGNATURE);
    free(f);
    /* Signature changed: one bit of its first byte. */
    f = strdup(g);
    f[sigpart - g] = f[sigpart - g] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_SIGNATURE);
    free(f);
    /* Header changed (typ) with the old signature. */
    {
        char *h2 = strdup(hjson);
        char *t = strstr(h2, "test");
        memcpy(t, "TEST", 4);
        {
            char *p = strndup(d1 + 1, (size_t)(d2 - d1 - 1)), *h = b64url(h2, strlen(h2));
            size_t m = strlen(h) + strlen(p) + strlen(sigpart) + 3;
            f = malloc(m);
            snprintf(f, m, "%s.%s.%s", h, p, sigpart);
            ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_SIGNATURE);
            free(f);
            free(p);
            free(h);
        }
        free(h2);
    }
    /* kid changed: names another key. */
    f = assemble("{\"alg\":\"EdDSA\",\"kid\":\"0000000000000001\"}", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_KEY_MISMATCH);
    free(f);
    /* Algorithms we refuse. */
    f = assemble("{\"alg\":\"none\",\"kid\":\"91FA9E6F4D58FE7E\"}", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_UNSUPPORTED);
    free(f);
    f = assemble("{\"alg\":\"HS256\",\"kid\":\"91FA9E6F4D58FE7E\"}", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_UNSUPPORTED);
    free(f);
    f = assemble("{\"alg\":\"Ed25519\",\"kid\":\"91FA9E6F4D58FE7E\"}", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_UNSUPPORTED);
    free(f);
    f = assemble("{\"alg\":\"EdDSA\",\"kid\":\"91FA9E6F4D58FE7E\",\"crit\":[\"b64\"],\"b64\":false}",
                 "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_UNSUPPORTED);
    free(f);
    /* Header shape. */
    f = assemble("{\"alg\":\"EdDSA\",\"kid\":\"91FA9E6F4D58FE7E\",\"alg\":\"none\"}", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_JSON); /* duplicate member */
    free(f);
    f = assemble("[\"EdDSA\"]", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_PARSE);
    free(f);
    f = assemble("{\"alg\":\"EdDSA\"}", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_PARSE); /* no kid */
    free(f);
    f = assemble("{\"alg\":\"EdDSA\",\"kid\":\"91FA9E6F\"}", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_PARSE);
    free(f);
    f = assemble("{\"alg\":1,\"kid\":\"91FA9E6F4D58FE7E\"}", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_PARSE);
    free(f);
    f = assemble("{\"alg\":\"EdDSA\",\"kid\":\"91FA9E6F4D58FE7E\",\"typ\":7}", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_PARSE);
    free(f);
    f = assemble("{\"alg\":\"EdDSA\",\"kid\":\"91FA9E6F4D58FE7E\"", "{}", sigpart);
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_JSON);
    free(f);
    /* Structure and encoding. */
    {
        size_t m = n + 8;
        f = malloc(m);
        snprintf(f, m, "%s.AAAA", g);
        ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_PARSE); /* 4 parts */
        free(f);
    }
    f = strndup(g, (size_t)(d2 - g));
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_PARSE); /* 2 parts */
    free(f);
    ck_assert_int_eq(parse_verify("", &pk), PATIENT_ERR_PARSE);
    f = strdup(g);
    f[1] = '+';
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_BASE64); /* not base64url */
    free(f);
    f = strdup(g);
    f[strlen(f) - 1] = '=';
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_BASE64);
    free(f);
    f = strdup(g);
    f[d1 - g + 1] = '!';
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_BASE64);
    free(f);
    f = assemble(hjson, "{}", "AAAA"); /* signature of 3 bytes */
    ck_assert_int_eq(parse_verify(f, &pk), PATIENT_ERR_BASE64);
    free(f);
    free(hdr);
    free(g);
}
END_TEST

START_TEST(oversize)
{
    patient_seckey *sk = fixture_seckey();
    size_t big = PATIENT_JWS_MAX + 1;
    char *s = malloc(big + 1), *out = NULL;
    patient_jws *j = NULL;

    memset(s, 'A', big);
    s[100] = '.';
    s[200] = '.';
    s[big] = 0;
    ck_assert_int_eq(patient_jws_parse(s, big, &j), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(patient_jws_sign(sk, NULL, s, PATIENT_JWS_PAYLOAD_MAX + 1, &out),
                     PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(out);
    /* The largest payload we sign still parses. */
    ck_assert_int_eq(patient_jws_sign(sk, "patient-change+jws", s, PATIENT_JWS_PAYLOAD_MAX, &out),
                     PATIENT_OK);
    ck_assert_int_eq(patient_jws_parse(out, strlen(out), &j), PATIENT_OK);
    ck_assert_uint_eq(j->payload_len, PATIENT_JWS_PAYLOAD_MAX);
    patient_jws_free(j);
    free(out);
    free(s);
    patient_seckey_free(sk);
}
END_TEST

static Suite *
jws_suite(void)
{
    Suite *s = suite_create("jws");
    TCase *tc;

    tc = tcase_create("sign");
    tcase_add_test(tc, roundtrip);
    tcase_add_test(tc, golden);
    suite_add_tcase(s, tc);
    tc = tcase_create("forged");
    tcase_add_test(tc, forged);
    tcase_add_test(tc, oversize);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(jws_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
