/* Disclosure documents: golden fixture (made by patient, checked with
 * stock minisign), sign/verify round trips, and forged twins. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include <patient/disclosure.h>
#include <patient/hash.h>
#include <patient/policy.h>

#include "time_int.h"
#include "util.h"
#include "testutil.h"

#define DATA TEST_SRCDIR "/data/"

static time_t
at(const char *s)
{
    time_t t;
    ck_assert_int_eq(pt_time_parse(s, &t), PATIENT_OK);
    return t;
}

static patient_seckey *
fixture_key(patient_pubkey *pk)
{
    size_t n;
    char *text = tu_fixture("disclosure_key.key", &n);
    patient_seckey *sk = NULL;

    /* git does not keep 0600, so parse rather than load */
    ck_assert_int_eq(patient_seckey_parse(text, n, NULL, &sk, NULL), PATIENT_OK);
    sodium_memzero(text, n);
    free(text);
    if (pk)
        patient_seckey_pubkey(sk, pk);
    return sk;
}

static patient_pubkey
fixture_pub(void)
{
    patient_pubkey pk;
    ck_assert_int_eq(patient_pubkey_load(DATA "disclosure_key.pub", &pk), PATIENT_OK);
    return pk;
}

static patient_err
verify_files(const char *json_name, const patient_pubkey *pk, time_t now, patient_disclosure **d)
{
    char signame[256], *json, *sig;
    size_t jl, sl;
    patient_err err;

    snprintf(signame, sizeof signame, "%s.minisig", json_name);
    json = tu_fixture(json_name, &jl);
    sig = tu_fixture(signame, &sl);
    err = patient_disclosure_verify(json, jl, sig, sl, pk, now, d);
    free(json);
    free(sig);
    return err;
}

/* Sign arbitrary bytes as a disclosure would be signed. */
static patient_err
verify_raw(patient_seckey *sk, const char *json, const char *comment, time_t now)
{
    patient_pubkey pk;
    patient_disclosure *d = NULL;
    char *sig = NULL;
    patient_err err;

    patient_seckey_pubkey(sk, &pk);
    ck_assert_int_eq(patient_minisig_sign(sk, json, strlen(json), NULL, comment, &sig), PATIENT_OK);
    err = patient_disclosure_verify(json, strlen(json), sig, strlen(sig), &pk, now, &d);
    if (err == PATIENT_OK)
        ck_assert_ptr_nonnull(d);
    else
        ck_assert_ptr_null(d);
    patient_disclosure_free(d);
    free(sig);
    return err;
}

static const char *const SVC[] = {"tracker-filter", "malware-filter"};

static patient_disclosure_info
info(void)
{
    patient_disclosure_info in = {"Example Corp IT", "mailto:netops@corp.example", SVC, 2, 30,
                                  "none", "TLSv1.2", 0, 0, NULL, 0};
    in.issued = at("2026-11-27T00:00:00Z");
    in.expires = at("2099-01-01T00:00:00Z");
    return in;
}

START_TEST(test_golden)
{
    patient_pubkey pk = fixture_pub();
    patient_disclosure *d = NULL;
    char ts[PATIENT_TIME_BYTES];

    ck_assert_int_eq(verify_files("disclosure_example.json", &pk, at("2027-01-01T00:00:00Z"), &d),
                     PATIENT_OK);
    ck_assert_str_eq(patient_disclosure_operator(d), "Example Corp IT");
    ck_assert_str_eq(patient_disclosure_contact(d), "mailto:netops@corp.example");
    ck_assert_uint_eq(patient_disclosure_service_count(d), 2);
    ck_assert_str_eq(patient_disclosure_service(d, 1), "malware-filter");
    ck_assert_ptr_null(patient_disclosure_service(d, 2));
    ck_assert_int_eq(patient_disclosure_retention_days(d), 30);
    ck_assert_str_eq(patient_disclosure_sharing(d), "none");
    ck_assert_str_eq(patient_disclosure_upstream_tls_min(d), "TLSv1.2");
    pt_time_format(patient_disclosure_expires(d), ts);
    ck_assert_str_eq(ts, "2099-01-01T00:00:00Z");
    ck_assert_int_eq(memcmp(patient_disclosure_key(d), &pk, sizeof pk), 0);
    patient_disclosure_free(d);
}
END_TEST

START_TEST(test_golden_rebuilds_identically)
{
    patient_seckey *sk = fixture_key(NULL);
    patient_disclosure_info in = info();
    char *json = NULL, *sig = NULL, *want;
    size_t len, wl;

    ck_assert_int_eq(patient_disclosure_sign(&in, sk, &json, &len, &sig), PATIENT_OK);
    want = tu_fixture("disclosure_example.json", &wl);
    ck_assert_uint_eq(len, wl);
    ck_assert_str_eq(json, want);
    ck_assert_ptr_nonnull(strstr(sig, "\ntrusted comment: patient-disclosure operator=Example "
                                      "Corp IT expires=2099-01-01T00:00:00Z\n"));
    free(want);
    free(json);
    free(sig);
    patient_seckey_free(sk);
}
END_TEST

START_TEST(test_forged_file)
{
    patient_pubkey pk = fixture_pub();
    patient_disclosure *d = NULL;

    ck_assert_int_eq(verify_files("disclosure_forged_retention.json", &pk,
                                  at("2027-01-01T00:00:00Z"), &d),
                     PATIENT_ERR_SIGNATURE);
    ck_assert_ptr_null(d);
}
END_TEST

START_TEST(test_wrong_key)
{
    patient_pubkey other;
    patient_seckey *osk = NULL;
    patient_disclosure *d = NULL;

    ck_assert_int_eq(patient_keypair_generate(&other, &osk), PATIENT_OK);
    ck_assert_int_eq(verify_files("disclosure_example.json", &other, at("2027-01-01T00:00:00Z"), &d),
                     PATIENT_ERR_KEY_MISMATCH);
    ck_assert_ptr_null(d);
    patient_seckey_free(osk);
}
END_TEST

START_TEST(test_validity_window)
{
    patient_pubkey pk = fixture_pub();
    patient_disclosure *d = NULL;

    ck_assert_int_eq(verify_files("disclosure_example.json", &pk, at("2099-01-01T00:00:00Z"), &d),
                     PATIENT_ERR_EXPIRED);
    ck_assert_int_eq(verify_files("disclosure_example.json", &pk, at("2098-12-31T23:59:59Z"), &d),
                     PATIENT_OK);
    patient_disclosure_free(d);
    ck_assert_int_eq(verify_files("disclosure_example.json", &pk, at("2026-11-26T23:54:59Z"), &d),
                     PATIENT_ERR_EXPIRED);
    ck_assert_int_eq(verify_files("disclosure_example.json", &pk, at("2026-11-26T23:55:00Z"), &d),
                     PATIENT_OK);
    patient_disclosure_free(d);
}
END_TEST

START_TEST(test_key_field_mismatch)
{
    patient_pubkey pk1, pk2;
    patient_seckey *sk1 = NULL, *sk2 = NULL;
    patient_disclosure_info in = info();
    char *json = NULL;

    ck_assert_int_eq(patient_keypair_generate(&pk1, &sk1), PATIENT_OK);
    ck_assert_int_eq(patient_keypair_generate(&pk2, &sk2), PATIENT_OK);
    /* signed by key 1, but the document names key 2 */
    ck_assert_int_eq(patient_disclosure_build(&in, &pk2, &json, NULL), PATIENT_OK);
    ck_assert_int_eq(verify_raw(sk1, json, "patient-disclosure operator=x", at("2027-01-01T00:00:00Z")),
                     PATIENT_ERR_KEY_MISMATCH);
    free(json);
    ck_assert_int_eq(patient_disclosure_build(&in, &pk1, &json, NULL), PATIENT_OK);
    ck_assert_int_eq(verify_raw(sk1, json, "patient-disclosure operator=x", at("2027-01-01T00:00:00Z")),
                     PATIENT_OK);
    ck_assert_int_eq(verify_raw(sk1, json, "patient-disclosure", at("2027-01-01T00:00:00Z")),
                     PATIENT_OK);
    /* same key and bytes, but a signature made for another purpose */
    ck_assert_int_eq(verify_raw(sk1, json, "patient-manifest version=3", at("2027-01-01T00:00:00Z")),
                     PATIENT_ERR_SIGNATURE);
    ck_assert_int_eq(verify_raw(sk1, json, "patient-disclosures", at("2027-01-01T00:00:00Z")),
                     PATIENT_ERR_SIGNATURE);
    free(json);
    patient_seckey_free(sk1);
    patient_seckey_free(sk2);
}
END_TEST

START_TEST(test_signed_but_malformed)
{
    static const struct {
        const char *from, *to;
        patient_err want;
    } cases[] = {
        {"\"patient\": 1", "\"patient\": 2", PATIENT_ERR_UNSUPPORTED},
        {"\"patient\": 1", "\"patient\": \"1\"", PATIENT_ERR_PARSE},
        {"\"type\": \"disclosure\"", "\"type\": \"policy\"", PATIENT_ERR_PARSE},
        {"\"sharing\": \"none\"", "\"sharing\": \"none\", \"sells_data\": false", PATIENT_ERR_PARSE},
        {"\"contact\": \"mailto:", "\"contact\": \"http://", PATIENT_ERR_PARSE},
        {"\"operator\": \"Example Corp IT\"", "\"operator\": \"\"", PATIENT_ERR_PARSE},
        {"[\"tracker-filter\", \"malware-filter\"]", "[]", PATIENT_ERR_PARSE},
        {"[\"tracker-filter\", \"malware-filter\"]", "[\"a\", 3]", PATIENT_ERR_PARSE},
        {"\"retention_days\": 30", "\"retention_days\": -1", PATIENT_ERR_PARSE},
        {"\"retention_days\": 30", "\"retention_days\": 1.5", PATIENT_ERR_PARSE},
        {"\"retention_days\": 30", "\"retention_days\": 30.0", PATIENT_ERR_PARSE},
        {"\"retention_days\": 30", "\"retention_days\": 3e1", PATIENT_ERR_PARSE},
        {"\"retention_days\": 30", "\"retention_days\": 29.999999999999999999", PATIENT_ERR_PARSE},
        {"\"patient\": 1", "\"patient\": 1e0", PATIENT_ERR_PARSE},
        {"{\n", "\xEF\xBB\xBF{\n", PATIENT_ERR_JSON},
        {"\"upstream_tls_min\": \"TLSv1.2\"", "\"upstream_tls_min\": \"TLSv2\"", PATIENT_ERR_PARSE},
        {"\"expires\": \"2099-01-01T00:00:00Z\"", "\"expires\": \"2026-11-27T00:00:00Z\"",
         PATIENT_ERR_PARSE},
        {"\"expires\": \"2099-01-01T00:00:00Z\"", "\"expires\": \"@4070908800\"", PATIENT_ERR_PARSE},
        {"\"issued\": \"2026-11-27T00:00:00Z\"", "\"issued\": \"yesterday\"", PATIENT_ERR_PARSE},
        {"\"patient\": 1,", "\"patient\": 1, \"patient\": 1,", PATIENT_ERR_JSON},
        {"\n}\n", "\n}\n}", PATIENT_ERR_JSON},
        {"{\n", "[\n", PATIENT_ERR_JSON},
        /* interception CA pins: malformed, refused */
        {"\"upstream_tls_min\": \"TLSv1.2\",", "\"upstream_tls_min\": \"TLSv1.2\", \"interception_ca\": [\"sha256-AAAA\"],", PATIENT_ERR_PARSE},
        {"\"upstream_tls_min\": \"TLSv1.2\",", "\"upstream_tls_min\": \"TLSv1.2\", \"interception_ca\": [],", PATIENT_ERR_PARSE},
        {"\"upstream_tls_min\": \"TLSv1.2\",", "\"upstream_tls_min\": \"TLSv1.2\", \"interception_ca\": \"sha256-fRE2u1cjrv0khv2kozvSmLaPyJv8whbtKTmrI5ViwqQ=\",", PATIENT_ERR_PARSE},
        {"\"upstream_tls_min\": \"TLSv1.2\",", "\"upstream_tls_min\": \"TLSv1.2\", \"interception_ca\": [\"sha256-fRE2u1cjrv0khv2kozvSmLaPyJv8whbtKTmrI5ViwqQ=\", \"sha256-fRE2u1cjrv0khv2kozvSmLaPyJv8whbtKTmrI5ViwqQ=\"],", PATIENT_ERR_PARSE},
        {"\"upstream_tls_min\": \"TLSv1.2\",", "\"upstream_tls_min\": \"TLSv1.2\", \"interception_ca\": [\"sha512-AAAA\"],", PATIENT_ERR_PARSE},
        {"\"upstream_tls_min\": \"TLSv1.2\",", "\"upstream_tls_min\": \"TLSv1.2\", \"interception_ca\": [1],", PATIENT_ERR_PARSE},
        {"\"upstream_tls_min\": \"TLSv1.2\",", "\"upstream_tls_min\": \"TLSv1.2\", \"interception_ca\": [\"sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\", \"sha256-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=\", \"sha256-CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC=\", \"sha256-DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD=\", \"sha256-EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE=\", \"sha256-FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF=\", \"sha256-GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG=\", \"sha256-HHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHH=\", \"sha256-IIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIII=\"],", PATIENT_ERR_LIMIT},
    };
    patient_pubkey pk;
    patient_seckey *sk = NULL;
    patient_disclosure_info in = info();
    char *json = NULL;

    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_build(&in, &pk, &json, NULL), PATIENT_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *j = tu_replace1(json, cases[i].from, cases[i].to);
        patient_err got = verify_raw(sk, j, "patient-disclosure", at("2027-01-01T00:00:00Z"));
        ck_assert_msg(got == cases[i].want, "case %zu: got %s, want %s", i, patient_errname(got),
                      patient_errname(cases[i].want));
        free(j);
    }
    free(json);
    patient_seckey_free(sk);
}
END_TEST

/* A disclosure's issued and expires: every input of the shared table,
 * signed, is accepted or refused as the table says (each value in it lies
 * before the built expires, after the built issued). */
START_TEST(test_times)
{
    patient_pubkey pk;
    patient_seckey *sk = NULL;
    patient_disclosure_info in = info();
    char *json = NULL;

    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    in.issued = at("2000-01-01T00:00:00Z");
    ck_assert_int_eq(patient_disclosure_build(&in, &pk, &json, NULL), PATIENT_OK);
    for (size_t i = 0; i < tu_rfc3339_ncases; i++) {
        const tu_time_case *k = &tu_rfc3339_cases[i];
        char to[96], *j;
        patient_err got;
        snprintf(to, sizeof to, "\"issued\": \"%s\"", k->s);
        j = tu_replace1(json, "\"issued\": \"2000-01-01T00:00:00Z\"", to);
        got = verify_raw(sk, j, "patient-disclosure", at("2027-01-01T00:00:00Z"));
        ck_assert_msg(got == k->want, "issued '%s': %s", k->s, patient_errname(got));
        free(j);
        snprintf(to, sizeof to, "\"expires\": \"%s\"", k->s);
        j = tu_replace1(json, "\"expires\": \"2099-01-01T00:00:00Z\"", to);
        got = verify_raw(sk, j, "patient-disclosure", at("2020-01-01T00:00:00Z"));
        ck_assert_msg(got == k->want, "expires '%s': %s", k->s, patient_errname(got));
        free(j);
    }
    free(json);
    patient_seckey_free(sk);
}
END_TEST

/* A declared interception CA survives build, sign and verify; the accessors
 * give its 32 bytes. */
START_TEST(test_interception_ca)
{
    patient_pubkey pk;
    patient_seckey *sk = NULL;
    patient_disclosure_info in = info();
    patient_disclosure *d = NULL;
    uint8_t ca[2][32];
    char *json = NULL, *sig = NULL;
    size_t len = 0;

    memset(ca[0], 0x11, 32);
    memset(ca[1], 0x22, 32);
    in.interception_ca = (const uint8_t(*)[32])ca;
    in.ninterception_ca = 2;
    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_sign(&in, sk, &json, &len, &sig), PATIENT_OK);
    ck_assert_ptr_nonnull(strstr(json, "\"interception_ca\": [\"sha256-ERERERER"));
    ck_assert_int_eq(patient_disclosure_verify(json, len, sig, strlen(sig), &pk,
                                               at("2027-01-01T00:00:00Z"), &d),
                     PATIENT_OK);
    ck_assert_uint_eq(patient_disclosure_interception_ca_count(d), 2);
    ck_assert_mem_eq(patient_disclosure_interception_ca(d, 1), ca[1], 32);
    ck_assert_ptr_null(patient_disclosure_interception_ca(d, 2));
    patient_disclosure_free(d);
    free(json);
    free(sig);
    in.ninterception_ca = PATIENT_MAX_TLS_PINS + 1;
    ck_assert_int_eq(patient_disclosure_build(&in, &pk, &json, NULL), PATIENT_ERR_ARG);
    patient_seckey_free(sk);
}
END_TEST

START_TEST(test_bad_signature_files)
{
    patient_pubkey pk = fixture_pub();
    patient_disclosure *d = NULL;
    size_t jl;
    char *json = tu_fixture("disclosure_example.json", &jl);

    ck_assert_int_eq(patient_disclosure_verify(json, jl, "garbage", 7, &pk, 0, &d),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_disclosure_verify(json, jl, "", 0, &pk, 0, &d), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_disclosure_verify(NULL, 0, "", 0, &pk, 0, &d), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_disclosure_verify(json, PATIENT_DISCLOSURE_MAX_BYTES + 1, "", 0, &pk,
                                               0, &d),
                     PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(d);
    free(json);
}
END_TEST

START_TEST(test_build_rejects)
{
    patient_pubkey pk;
    patient_seckey *sk = NULL;
    patient_disclosure_info in;
    static const char *const bad_svc[] = {"ok", ""};
    char *json = NULL, *sig = NULL;

    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    const char *field = "unset";

    /* sign refuses, and patient_disclosure_info_check names the field */
#define REJECT(member, value, name)                                                                \
    do {                                                                                           \
        in = info();                                                                               \
        in.member = value;                                                                         \
        ck_assert_int_eq(patient_disclosure_sign(&in, sk, &json, NULL, &sig), PATIENT_ERR_ARG);     \
        ck_assert_ptr_null(json);                                                                  \
        ck_assert_ptr_null(sig);                                                                   \
        ck_assert_int_eq(patient_disclosure_info_check(&in, &field), PATIENT_ERR_ARG);             \
        ck_assert_str_eq(field, name);                                                             \
    } while (0)
    REJECT(operator_name, NULL, "operator");
    REJECT(operator_name, "two\nlines", "operator");
    REJECT(contact, "http://corp.example", "contact");
    REJECT(contact, "mailto:", "contact");
    REJECT(nservices, 0, "services");
    REJECT(services, bad_svc, "services");
    REJECT(retention_days, -1, "retention_days");
    REJECT(retention_days, PATIENT_DISCLOSURE_MAX_RETENTION + 1, "retention_days");
    REJECT(sharing, "", "sharing");
    REJECT(upstream_tls_min, "TLS1.2", "upstream_tls_min");
    REJECT(expires, at("2026-11-27T00:00:00Z"), "expires");
#undef REJECT
    ck_assert_int_eq(patient_disclosure_info_check(NULL, &field), PATIENT_ERR_ARG);
    ck_assert_str_eq(field, "info");
    in = info();
    in.retention_days = PATIENT_DISCLOSURE_MAX_RETENTION; /* the bound itself passes */
    ck_assert_int_eq(patient_disclosure_info_check(&in, &field), PATIENT_OK);
    ck_assert_ptr_null(field);
    in = info();
    ck_assert_int_eq(patient_disclosure_sign(&in, sk, &json, NULL, &sig), PATIENT_OK);
    free(json);
    free(sig);
    patient_seckey_free(sk);
}
END_TEST

START_TEST(test_escaping_roundtrip)
{
    patient_pubkey pk;
    patient_seckey *sk = NULL;
    patient_disclosure_info in = info();
    patient_disclosure *d = NULL;
    char *json = NULL, *sig = NULL;
    size_t len;

    in.operator_name = "Q \"quoted\" \\ café";
    in.sharing = "aggregated statistics with \"Vendor\"";
    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_sign(&in, sk, &json, &len, &sig), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_verify(json, len, sig, strlen(sig), &pk,
                                               at("2030-01-01T00:00:00Z"), &d),
                     PATIENT_OK);
    ck_assert_str_eq(patient_disclosure_operator(d), in.operator_name);
    ck_assert_str_eq(patient_disclosure_sharing(d), in.sharing);
    patient_disclosure_free(d);
    free(json);
    free(sig);
    patient_seckey_free(sk);
}
END_TEST

START_TEST(test_policy_check)
{
    patient_pubkey pk = fixture_pub();
    patient_disclosure *d = NULL;
    patient_policy *p = NULL;
    patient_disclosure_deny why;
    static const char strict[] = "{\"patient\":1,\"type\":\"policy\",\"require\":"
                                 "{\"max_retention_days\":7}}";
    static const char tls13[] = "{\"patient\":1,\"type\":\"policy\",\"require\":"
                                "{\"min_upstream_tls\":\"TLSv1.3\",\"max_retention_days\":30}}";
    static const char lax[] = "{\"patient\":1,\"type\":\"policy\",\"require\":"
                              "{\"min_upstream_tls\":null}}";

    ck_assert_int_eq(verify_files("disclosure_example.json", &pk, at("2027-01-01T00:00:00Z"), &d),
                     PATIENT_OK);
    ck_assert_int_eq(patient_policy_new(&p), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_check(d, p, &why), PATIENT_OK);
    ck_assert_int_eq(why, PATIENT_DISCLOSURE_DENY_NONE);
    patient_policy_free(p);

    ck_assert_int_eq(patient_policy_parse(strict, strlen(strict), &p, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_check(d, p, &why), PATIENT_ERR_POLICY);
    ck_assert_int_eq(why, PATIENT_DISCLOSURE_DENY_RETENTION);
    ck_assert_str_eq(patient_disclosure_deny_name(why), "policy.disclosure.retention");
    patient_policy_free(p);

    ck_assert_int_eq(patient_policy_parse(tls13, strlen(tls13), &p, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_check(d, p, &why), PATIENT_ERR_POLICY);
    ck_assert_int_eq(why, PATIENT_DISCLOSURE_DENY_UPSTREAM_TLS);
    ck_assert_str_eq(patient_disclosure_deny_name(why), "policy.disclosure.upstream_tls");
    patient_policy_free(p);

    ck_assert_int_eq(patient_policy_parse(lax, strlen(lax), &p, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_check(d, p, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_check(NULL, p, NULL), PATIENT_ERR_ARG);
    patient_policy_free(p);
    patient_disclosure_free(d);
}
END_TEST

START_TEST(test_parse_unverified)
{
    size_t jl;
    char *json = tu_fixture("disclosure_forged_retention.json", &jl);
    patient_disclosure *d = NULL;

    /* parse alone does not check signatures: display only */
    ck_assert_int_eq(patient_disclosure_parse(json, jl, &d), PATIENT_OK);
    ck_assert_int_eq(patient_disclosure_retention_days(d), 3);
    patient_disclosure_free(d);
    free(json);
}
END_TEST

/* Refused: *info untouched, nothing held, the field and message given. */
static void
from_json_refused(const char *json, patient_err want, const char *want_field,
                  const char *want_detail)
{
    patient_disclosure_info in = {0};
    patient_disclosure *hold = (patient_disclosure *)&in;
    const char *field = "unset";
    char *detail = NULL;

    in.retention_days = -1;
    ck_assert_int_eq(patient_disclosure_info_from_json(json, strlen(json), &in, &hold, &field,
                                                       &detail),
                     want);
    ck_assert_ptr_null(hold);
    if (want_field)
        ck_assert_str_eq(field, want_field);
    else
        ck_assert_ptr_null(field);
    ck_assert_ptr_nonnull(detail);
    ck_assert_str_eq(detail, want_detail);
    ck_assert_ptr_null(in.operator_name);
    ck_assert_ptr_null(in.services);
    ck_assert_int_eq(in.retention_days, -1);
    free(detail);
}

START_TEST(test_info_from_json)
{
    size_t jl;
    char *doc = tu_fixture("disclosure_example.json", &jl), *t, *detail = NULL;
    patient_disclosure_info in = {0};
    patient_disclosure *hold = NULL;
    const char *field = "unset";
    static const char *const mine[] = {"other"};

    /* Accepted: every field it carries, in the checker's terms. */
    in.retention_days = -1;
    ck_assert_int_eq(patient_disclosure_info_from_json(doc, jl, &in, &hold, &field, &detail),
                     PATIENT_OK);
    ck_assert_ptr_nonnull(hold);
    ck_assert_ptr_null(field);
    ck_assert_ptr_null(detail);
    ck_assert_str_eq(in.operator_name, "Example Corp IT");
    ck_assert_str_eq(in.contact, "mailto:netops@corp.example");
    ck_assert_uint_eq(in.nservices, 2);
    ck_assert_str_eq(in.services[0], "tracker-filter");
    ck_assert_str_eq(in.services[1], "malware-filter");
    ck_assert_int_eq(in.retention_days, 30);
    ck_assert_str_eq(in.sharing, "none");
    ck_assert_str_eq(in.upstream_tls_min, "TLSv1.2");
    ck_assert_int_eq(in.issued, 0);
    ck_assert_int_eq(in.expires, 0);
    in.expires = 1;
    ck_assert_int_eq(patient_disclosure_info_check(&in, NULL), PATIENT_OK);
    patient_disclosure_free(hold);

    /* Fields already set are kept, and the document's are not even read:
     * a retention_days out of range passes under one the caller set. */
    t = tu_replace1(doc, "\"retention_days\": 30", "\"retention_days\": 36501");
    memset(&in, 0, sizeof in);
    in.operator_name = "Flag Operator";
    in.services = mine;
    in.nservices = 1;
    in.retention_days = 7;
    ck_assert_int_eq(patient_disclosure_info_from_json(t, strlen(t), &in, &hold, NULL, NULL),
                     PATIENT_OK);
    ck_assert_str_eq(in.operator_name, "Flag Operator");
    ck_assert_ptr_eq(in.services, mine);
    ck_assert_uint_eq(in.nservices, 1);
    ck_assert_int_eq(in.retention_days, 7);
    ck_assert_str_eq(in.contact, "mailto:netops@corp.example");
    patient_disclosure_free(hold);
    free(t);

    /* Its interception CAs are carried over, unless the caller set some;
     * a pin that does not decode is refused with its field. */
    {
        static const uint8_t flag_ca[1][32] = {{9}};
        uint8_t want[32];
        char sri[PATIENT_SRI_BYTES], with[128];

        memset(want, 0x5a, sizeof want);
        patient_sri_encode(want, sri);
        snprintf(with, sizeof with, "\"sharing\": \"none\",\n  \"interception_ca\": [\"%s\"]",
                 sri);
        t = tu_replace1(doc, "\"sharing\": \"none\"", with);
        memset(&in, 0, sizeof in);
        in.retention_days = -1;
        ck_assert_int_eq(patient_disclosure_info_from_json(t, strlen(t), &in, &hold, NULL, NULL),
                         PATIENT_OK);
        ck_assert_uint_eq(in.ninterception_ca, 1);
        ck_assert_mem_eq(in.interception_ca[0], want, 32);
        patient_disclosure_free(hold);
        memset(&in, 0, sizeof in);
        in.retention_days = -1;
        in.interception_ca = flag_ca;
        in.ninterception_ca = 1;
        ck_assert_int_eq(patient_disclosure_info_from_json(t, strlen(t), &in, &hold, NULL, NULL),
                         PATIENT_OK);
        ck_assert_ptr_eq(in.interception_ca, flag_ca);
        patient_disclosure_free(hold);
        free(t);
        t = tu_replace1(doc, "\"sharing\": \"none\"",
                        "\"sharing\": \"none\",\n  \"interception_ca\": [\"sha256-nope\"]");
        from_json_refused(t, PATIENT_ERR_PARSE, "interception_ca",
                          "interception_ca is not a list of 1..8 distinct sha256- pins");
        free(t);
    }

    /* A string field of another type is left unset, for the caller's
     * "required" message. */
    t = tu_replace1(doc, "\"operator\": \"Example Corp IT\"", "\"operator\": 5");
    memset(&in, 0, sizeof in);
    in.retention_days = -1;
    ck_assert_int_eq(patient_disclosure_info_from_json(t, strlen(t), &in, &hold, NULL, NULL),
                     PATIENT_OK);
    ck_assert_ptr_null(in.operator_name);
    ck_assert_str_eq(in.sharing, "none");
    patient_disclosure_free(hold);
    free(t);

    /* Its broken twins, each refused with its message. */
    t = tu_replace1(doc, "\n}", ",\n  \"retention\": 30\n}");
    from_json_refused(t, PATIENT_ERR_PARSE, NULL, "unknown field \"retention\"");
    free(t);
    /* retention_days out of range, or not an integer literal: 30.0 is the
     * same number, refused as 30.5 is */
    {
        static const char *const bad_retention[] = {
            "\"retention_days\": 36501", "\"retention_days\": -1",
            "\"retention_days\": 30.0",  "\"retention_days\": 3e1",
            "\"retention_days\": \"30\"", "\"retention_days\": null"};
        for (size_t k = 0; k < sizeof bad_retention / sizeof *bad_retention; k++) {
            t = tu_replace1(doc, "\"retention_days\": 30", bad_retention[k]);
            from_json_refused(t, PATIENT_ERR_PARSE, "retention_days",
                              "retention_days is not an integer 0..36500");
            free(t);
        }
    }
    t = tu_replace1(doc, "\"tracker-filter\"", "1");
    from_json_refused(t, PATIENT_ERR_PARSE, "services", "services must be strings");
    free(t);
    {
        char many[65 * 5 + 32];
        size_t n = (size_t)snprintf(many, sizeof many, "\"services\": [");
        for (int i = 0; i < 65; i++)
            n += (size_t)snprintf(many + n, sizeof many - n, "%s\"s\"", i ? "," : "");
        snprintf(many + n, sizeof many - n, "]");
        t = tu_replace1(doc, "\"services\": [\"tracker-filter\", \"malware-filter\"]", many);
        from_json_refused(t, PATIENT_ERR_TOO_LARGE, "services", "more than 64 services");
        free(t);
    }
    /* The document as a whole: strict JSON, an object. */
    t = tu_replace1(doc, "\"sharing\": \"none\"", "\"sharing\": \"none\", \"sharing\": \"all\"");
    from_json_refused(t, PATIENT_ERR_JSON, NULL, "not a JSON object");
    free(t);
    from_json_refused("[1]", PATIENT_ERR_JSON, NULL, "not a JSON object");
    from_json_refused("{\"operator\": \"x\"", PATIENT_ERR_JSON, NULL, "not a JSON object");
    {
        size_t big = PATIENT_DISCLOSURE_MAX_BYTES + 1;
        char *huge = malloc(big + 1);
        ck_assert_ptr_nonnull(huge);
        memset(huge, ' ', big);
        huge[0] = '{';
        huge[big - 1] = '}';
        huge[big] = 0;
        from_json_refused(huge, PATIENT_ERR_TOO_LARGE, NULL, "larger than 65536 bytes");
        free(huge);
    }
    ck_assert_int_eq(patient_disclosure_info_from_json(doc, jl, NULL, &hold, NULL, NULL),
                     PATIENT_ERR_ARG);
    ck_assert_ptr_null(hold);
    free(doc);
}
END_TEST

static Suite *
disclosure_suite(void)
{
    Suite *s = suite_create("disclosure");
    TCase *tc;

    tc = tcase_create("golden");
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_golden_rebuilds_identically);
    tcase_add_test(tc, test_forged_file);
    tcase_add_test(tc, test_wrong_key);
    tcase_add_test(tc, test_validity_window);
    suite_add_tcase(s, tc);
    tc = tcase_create("forged");
    tcase_add_test(tc, test_key_field_mismatch);
    tcase_add_test(tc, test_signed_but_malformed);
    tcase_add_test(tc, test_times);
    tcase_add_test(tc, test_bad_signature_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("build");
    tcase_add_test(tc, test_build_rejects);
    tcase_add_test(tc, test_escaping_roundtrip);
    tcase_add_test(tc, test_parse_unverified);
    tcase_add_test(tc, test_interception_ca);
    tcase_add_test(tc, test_info_from_json);
    suite_add_tcase(s, tc);
    tc = tcase_create("policy");
    tcase_add_test(tc, test_policy_check);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(disclosure_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
