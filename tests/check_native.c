/* Native messaging (lib/native.c): framing, the size caps on requests and
 * bodies, and parsing requests. Requests that reach the verifier name a
 * closed loopback port, so the answers are the exact error codes and the
 * unverifiable report of a fetch that fails at once. */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <patient/patient.h>
#include "util.h"
#include "testutil.h"

#define NOW ((time_t)1795000000) /* 2026-11-19 */

static char tmpdir[256];
static patient_policy *pol;

static void
setup(void)
{
    patient_pubkey pk;

    tu_mkdtemp(tmpdir, sizeof tmpdir, "check_native");
    ck_assert_int_eq(patient_pubkey_load(TEST_SRCDIR "/data/key_test.pub", &pk), PATIENT_OK);
    ck_assert_int_eq(patient_policy_new(&pol), PATIENT_OK);
    ck_assert_int_eq(patient_policy_add_publisher(pol, "https://site.example", &pk), PATIENT_OK);
}

static void
teardown(void)
{
    patient_policy_free(pol);
    pol = NULL;
    tu_rmtree(tmpdir);
}

START_TEST(native_too_large)
{
    int fds[2];
    uint32_t n = 100, m = 2;
    char big[100], *msg = NULL;
    size_t len = 0;
    memset(big, ' ', sizeof big);
    ck_assert_int_eq(pipe(fds), 0);
    /* over the cap: skipped whole, so the next frame still reads */
    ck_assert_int_eq(write(fds[1], &n, 4), 4);
    ck_assert_int_eq(write(fds[1], big, sizeof big), (ssize_t)sizeof big);
    ck_assert_int_eq(write(fds[1], &m, 4), 4);
    ck_assert_int_eq(write(fds[1], "{}", 2), 2);
    /* over the cap and cut short: the input ended inside the frame */
    ck_assert_int_eq(write(fds[1], &n, 4), 4);
    ck_assert_int_eq(write(fds[1], big, 10), 10);
    close(fds[1]);
    ck_assert_int_eq(patient_native_read(fds[0], 50, &msg, &len), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(msg);
    ck_assert_uint_eq(len, 100);
    ck_assert_int_eq(patient_native_read(fds[0], 50, &msg, &len), PATIENT_OK);
    ck_assert_str_eq(msg, "{}");
    free(msg);
    ck_assert_int_eq(patient_native_read(fds[0], 50, &msg, &len), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(msg);
    close(fds[0]);
    /* a whole 64 MiB body in base64 fits, with 1 MiB for the rest */
    ck_assert_uint_eq(patient_native_request_max(0),
                      (PATIENT_FETCH_MAX_BODY_DEFAULT + 2) / 3 * 4 + PATIENT_NATIVE_ENVELOPE);
    ck_assert_uint_eq(patient_native_request_max(3), 4 + PATIENT_NATIVE_ENVELOPE);
}
END_TEST

START_TEST(native_eof_and_roundtrip)
{
    int fds[2];
    char *msg = NULL;
    size_t len = 0;
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(patient_native_write(fds[1], "{\"type\":\"ping\"}", 15), PATIENT_OK);
    /* A truncated second frame: length says 10, 3 bytes follow. */
    {
        uint32_t n = 10;
        ck_assert_int_eq(write(fds[1], &n, 4), 4);
        ck_assert_int_eq(write(fds[1], "abc", 3), 3);
    }
    close(fds[1]);
    ck_assert_int_eq(patient_native_read(fds[0], 1024, &msg, &len), PATIENT_OK);
    ck_assert_uint_eq(len, 15);
    ck_assert_str_eq(msg, "{\"type\":\"ping\"}");
    free(msg);
    ck_assert_int_eq(patient_native_read(fds[0], 1024, &msg, &len), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(msg);
    ck_assert_int_eq(patient_native_read(fds[0], 1024, &msg, &len), PATIENT_ERR_NOT_FOUND);
    close(fds[0]);
    /* A clean EOF before any frame. */
    ck_assert_int_eq(pipe(fds), 0);
    close(fds[1]);
    ck_assert_int_eq(patient_native_read(fds[0], 1024, &msg, &len), PATIENT_ERR_NOT_FOUND);
    close(fds[0]);
}
END_TEST

static cJSON *
native_mb(const char *req, size_t max_body)
{
    char *a = NULL;
    cJSON *j;
    patient_fetch_opts fo;
    patient_verify_fetch_opts f = {0};
    patient_verify_opts o = {0};
    patient_fetch_opts_init(&fo);
    if (max_body)
        fo.max_body = max_body;
    fo.connect_timeout_ms = 2000;
    fo.timeout_ms = 2000;
    f.fetch = &fo;
    f.cache_dir = tmpdir;
    o.now = NOW;
    ck_assert_int_eq(patient_native_handle(pol, &f, &o, req, strlen(req), &a), PATIENT_OK);
    j = cJSON_Parse(a);
    ck_assert_ptr_nonnull(j);
    free(a);
    return j;
}

static cJSON *
native(const char *req)
{
    return native_mb(req, 0);
}

static const char *
err_code(const cJSON *a)
{
    const cJSON *e = cJSON_GetObjectItem(a, "error");
    return e ? pt_json_str(e, "code") : NULL;
}

START_TEST(native_handle_requests)
{
    char *txt;
    static const char *const bad[] = {
        "not json", "[1,2]", "{}", "{\"type\":\"verify\"}",
        "{\"type\":\"verify\",\"url\":\"file:///etc/passwd\"}",
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"body\":\"%%%\"}",
        "{\"type\":\"unknown\",\"url\":\"http://127.0.0.1:1/\"}",
        "{\"type\":\"ping\",\"type\":\"verify\"}",
        /* what the browser received: status a strict integer in 100..599,
         * body base64, headers a list of {name, value} strings */
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":[]}",
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":{\"status\":200}}",
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":{\"status\":\"200\",\"body\":\"\"}}",
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":{\"status\":99,\"body\":\"\"}}",
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":{\"status\":200.0,\"body\":\"\"}}",
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":{\"status\":2e2,\"body\":\"\"}}",
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":{\"status\":200,\"body\":\"%%\"}}",
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":{\"status\":200,\"body\":\"\","
        "\"headers\":{\"Patient-Change\":\"x\"}}}",
        "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":{\"status\":200,\"body\":\"\","
        "\"headers\":[{\"name\":\"\",\"value\":\"x\"}]}}",
        /* the chain the browser verified: 1..16 SPKI pins, nothing else */
        "{\"type\":\"verify\",\"url\":\"https://127.0.0.1:1/\",\"received\":{\"status\":200,\"body\":\"\","
        "\"tls_chain\":[]}}",
        "{\"type\":\"verify\",\"url\":\"https://127.0.0.1:1/\",\"received\":{\"status\":200,\"body\":\"\","
        "\"tls_chain\":\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"}}",
        "{\"type\":\"verify\",\"url\":\"https://127.0.0.1:1/\",\"received\":{\"status\":200,\"body\":\"\","
        "\"tls_chain\":[\"sha256-AAAA\"]}}",
        "{\"type\":\"verify\",\"url\":\"https://127.0.0.1:1/\",\"received\":{\"status\":200,\"body\":\"\","
        "\"tls_chain\":[\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",7]}}",
    };
    cJSON *a;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = native(bad[i]);
        ck_assert_msg(err_code(a) && strcmp(err_code(a), "request.malformed") == 0, "%s", bad[i]);
        cJSON_Delete(a);
    }
    a = native("{\"type\":\"ping\",\"id\":7}");
    ck_assert_str_eq(pt_json_str(a, "type"), "pong");
    ck_assert_int_eq(cJSON_GetObjectItem(a, "id")->valueint, 7);
    ck_assert_ptr_null(err_code(a));
    cJSON_Delete(a);
    /* A verify whose fetch fails fast: an unverifiable report, not an error. */
    a = native("{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/x\",\"id\":\"a\"}");
    ck_assert_ptr_null(err_code(a));
    ck_assert_str_eq(pt_json_str(cJSON_GetObjectItem(a, "report"), "verdict"), "unverifiable");
    cJSON_Delete(a);
    /* A received response is not fetched again: only the manifest is, and
     * its failure makes the report unverifiable (not fetch.failed). */
    a = native("{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/x\",\"id\":\"r\","
               "\"received\":{\"status\":200,\"body\":\"aGk=\",\"headers\":[]}}");
    ck_assert_ptr_null(err_code(a));
    ck_assert_str_eq(pt_json_str(cJSON_GetObjectItem(a, "report"), "verdict"), "unverifiable");
    txt = cJSON_PrintUnformatted(a);
    ck_assert_ptr_null(strstr(txt, "fetch.failed"));
    free(txt);
    cJSON_Delete(a);
    a = native("{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/x\","
               "\"received\":{\"status\":503,\"body\":\"\"}}");
    txt = cJSON_PrintUnformatted(a);
    ck_assert_ptr_nonnull(strstr(txt, "fetch.status"));
    free(txt);
    cJSON_Delete(a);
}
END_TEST

START_TEST(native_request_over_cap)
{
    /* with bodies up to 3000 bytes the cap is their base64 + 1 MiB */
    size_t n = 4000 + PATIENT_NATIVE_ENVELOPE + 1;
    char *big = malloc(n + 1), *b64 = malloc(8000);
    cJSON *a;
    memset(big, ' ', n);
    memcpy(big, "{\"type\":\"ping\"}", 15);
    big[n] = 0;
    a = native_mb(big, 3000);
    ck_assert_str_eq(err_code(a), "request.too_large");
    cJSON_Delete(a);
    big[n - 1] = 0; /* at the cap: answered */
    a = native_mb(big, 3000);
    ck_assert_str_eq(pt_json_str(a, "type"), "pong");
    cJSON_Delete(a);
    /* a body over the cap inside the frame cap: refused by name, undecoded */
    memset(b64, 'A', 4004);
    b64[4004] = 0;
    snprintf(big, n, "{\"type\":\"verify\",\"url\":\"http://127.0.0.1:1/\",\"received\":"
                     "{\"status\":200,\"body\":\"%s\"}}", b64);
    a = native_mb(big, 3000);
    ck_assert_str_eq(err_code(a), "body.too_large");
    cJSON_Delete(a);
    free(b64);
    free(big);
}
END_TEST

/* The answer of a host without a usable policy: the request's id echoed
 * whatever its JSON type, the code and message escaped as JSON strings. */
START_TEST(native_error_answer)
{
    static const char ping[] = "{\"type\":\"ping\",\"id\":7}";
    static const char nested[] = "{\"id\":{\"tab\":[1,\"a\"]},\"type\":\"verify\"}";
    char *ans = NULL;

    ck_assert_int_eq(patient_native_error_answer(ping, strlen(ping), "policy.missing",
                                                 "no trust policy at /home/u/policy.json",
                                                 &ans),
                     PATIENT_OK);
    ck_assert_str_eq(ans, "{\"id\":7,\"error\":{\"code\":\"policy.missing\",\"message\":"
                          "\"no trust policy at /home/u/policy.json\"}}");
    free(ans);
    ck_assert_int_eq(patient_native_error_answer(nested, strlen(nested), "policy.invalid",
                                                 "cannot use \"C:\\p.json\":\n\tbad\x01",
                                                 &ans),
                     PATIENT_OK);
    ck_assert_str_eq(ans, "{\"id\":{\"tab\":[1,\"a\"]},\"error\":{\"code\":\"policy.invalid\","
                          "\"message\":\"cannot use \\\"C:\\\\p.json\\\":\\n\\tbad\\u0001\"}}");
    free(ans);
    /* not JSON, or no id: answered without one */
    ck_assert_int_eq(patient_native_error_answer("{\"id\":", 6, "policy.missing", "m", &ans),
                     PATIENT_OK);
    ck_assert_str_eq(ans, "{\"error\":{\"code\":\"policy.missing\",\"message\":\"m\"}}");
    free(ans);
    ck_assert_int_eq(patient_native_error_answer("{}", 2, "policy.missing", "m", &ans),
                     PATIENT_OK);
    ck_assert_str_eq(ans, "{\"error\":{\"code\":\"policy.missing\",\"message\":\"m\"}}");
    free(ans);
    /* an answer always has a code and a message */
    ans = (char *)ping;
    ck_assert_int_eq(patient_native_error_answer(ping, strlen(ping), NULL, "m", &ans),
                     PATIENT_ERR_ARG);
    ck_assert_ptr_null(ans);
    ck_assert_int_eq(patient_native_error_answer(ping, strlen(ping), "c", NULL, &ans),
                     PATIENT_ERR_ARG);
    ck_assert_ptr_null(ans);
}
END_TEST

/* The answers to a frame the host could not read, byte for byte: what
 * patient-verify --native-host sends (no id: the request was not read). */
START_TEST(native_frame_answers)
{
    char *ans = (char *)"x";

    ck_assert_int_eq(patient_native_too_large_answer(1100000, 3000, &ans), PATIENT_OK);
    ck_assert_str_eq(ans, "{\"error\":{\"code\":\"request.too_large\",\"message\":\"the request "
                          "is 1100000 bytes, over the 1052576-byte cap (bodies up to 3000 bytes, "
                          "--max-body)\"}}");
    free(ans);
    /* no body cap given: the default one is named */
    ck_assert_int_eq(patient_native_too_large_answer(SIZE_MAX, 0, &ans), PATIENT_OK);
    ck_assert_str_eq(ans, "{\"error\":{\"code\":\"request.too_large\",\"message\":\"the request "
                          "is 18446744073709551615 bytes, over the 90527064-byte cap (bodies up "
                          "to 67108864 bytes, --max-body)\"}}");
    free(ans);
    ck_assert_int_eq(patient_native_truncated_answer(&ans), PATIENT_OK);
    ck_assert_str_eq(ans, "{\"error\":{\"code\":\"request.truncated\",\"message\":\"the input "
                          "ended inside a message\"}}");
    free(ans);
    ck_assert_int_eq(patient_native_truncated_answer(NULL), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_native_too_large_answer(1, 0, NULL), PATIENT_ERR_ARG);
}
END_TEST

static Suite *
native_suite(void)
{
    Suite *s = suite_create("native");
    TCase *tc = tcase_create("native");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, native_too_large);
    tcase_add_test(tc, native_eof_and_roundtrip);
    tcase_add_test(tc, native_handle_requests);
    tcase_add_test(tc, native_request_over_cap);
    tcase_add_test(tc, native_error_answer);
    tcase_add_test(tc, native_frame_answers);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(native_suite());
    int failed;

    /* fork by default; CK_FORK=no in the environment for valgrind/gdb */
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
