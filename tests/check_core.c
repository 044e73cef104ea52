/* Unit tests: internal helpers (util), SHA-256 and SRI (hash), errors. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* M_PERTURB */
#endif

#include <patient/patient.h>
#include <sodium.h>
#include "time_int.h"
#include "util.h"
#include "testutil.h"

static char tmpdir[256];

static void
tmp_setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "check_core");
}

static void
tmp_teardown(void)
{
    tu_rmtree(tmpdir);
}

static const char *
tpath(const char *name)
{
    return tu_path(tmpdir, name);
}

static void
write_file(const char *path, const char *s)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fwrite(s, 1, strlen(s), fp), strlen(s));
    ck_assert_int_eq(fclose(fp), 0);
}

/* ---- base64 ---- */

START_TEST(b64_roundtrip)
{
    const uint8_t in[] = {0xfb, 0xff, 0x00, 0x41, 0x42};
    char *e = NULL;
    uint8_t *d = NULL;
    size_t n = 0;

    ck_assert_int_eq(pt_b64_encode(in, sizeof in, 0, &e), PATIENT_OK);
    ck_assert_str_eq(e, "+/8AQUI=");
    ck_assert_int_eq(pt_b64_decode(e, strlen(e), 0, &d, &n), PATIENT_OK);
    ck_assert_uint_eq(n, sizeof in);
    ck_assert_mem_eq(d, in, n);
    free(e);
    free(d);
    ck_assert_int_eq(pt_b64_encode(in, sizeof in, 1, &e), PATIENT_OK);
    ck_assert_str_eq(e, "-_8AQUI");
    ck_assert_int_eq(pt_b64_decode(e, strlen(e), 1, &d, &n), PATIENT_OK);
    ck_assert_mem_eq(d, in, sizeof in);
    free(e);
    free(d);
    ck_assert_int_eq(pt_b64_decode("", 0, 1, &d, &n), PATIENT_OK);
    ck_assert_uint_eq(n, 0);
    free(d);
}
END_TEST

START_TEST(b64_strict)
{
    static const struct {
        const char *s;
        int url;
    } bad[] = {
        {"QUJD\n", 0},   /* whitespace */
        {"QU JD", 0},    /* inner blank */
        {"QUJDx", 0},    /* trailing garbage */
        {"QUI", 0},      /* standard needs padding */
        {"QUI==", 0},    /* too much padding */
        {"QR==", 0},     /* non-zero leftover bits (non-canonical) */
        {"+/8A", 1},     /* standard alphabet in base64url */
        {"-_8A", 0},     /* base64url alphabet in standard */
        {"QUI=", 1},     /* padding in base64url */
        {"QUJD!", 1},
    };
    uint8_t *d = NULL, fixed[3];
    size_t n = 0;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(pt_b64_decode(bad[i].s, strlen(bad[i].s), bad[i].url, &d, &n) ==
                          PATIENT_ERR_BASE64,
                      "accepted %s", bad[i].s);
        ck_assert_ptr_null(d);
    }
    ck_assert_int_eq(pt_b64_decode_exact("QUJD", 4, 0, fixed, 3), PATIENT_OK);
    ck_assert_mem_eq(fixed, "ABC", 3);
    ck_assert_int_eq(pt_b64_decode_exact("QUI=", 4, 0, fixed, 3), PATIENT_ERR_BASE64);
    ck_assert_int_eq(pt_b64_decode_exact("QUJDRA==", 8, 0, fixed, 3), PATIENT_ERR_BASE64);
}
END_TEST

START_TEST(hex_roundtrip)
{
    const uint8_t in[] = {0x00, 0xab, 0xff};
    char out[7];
    uint8_t back[3];

    pt_hex(in, 3, out);
    ck_assert_str_eq(out, "00abff");
    ck_assert_int_eq(pt_unhex("00ABff", back, 3), PATIENT_OK);
    ck_assert_mem_eq(back, in, 3);
    ck_assert_int_eq(pt_unhex("00abf", back, 3), PATIENT_ERR_PARSE);
    ck_assert_int_eq(pt_unhex("00abfg", back, 3), PATIENT_ERR_PARSE);
    /* pt_hex_eq: exactly pt_hex's output, nothing longer, shorter or
     * upper-case */
    ck_assert_int_eq(pt_hex_eq("00abff", in, 3), 1);
    ck_assert_int_eq(pt_hex_eq("00abfe", in, 3), 0);
    ck_assert_int_eq(pt_hex_eq("00ABff", in, 3), 0);
    ck_assert_int_eq(pt_hex_eq("00abf", in, 3), 0);
    ck_assert_int_eq(pt_hex_eq("00abff0", in, 3), 0);
    ck_assert_int_eq(pt_hex_eq("", in, 0), 1);
    ck_assert_int_eq(pt_memeq("abc", "abc", 3), 1);
    ck_assert_int_eq(pt_memeq("abc", "abd", 3), 0);
}
END_TEST

/* ---- error details ---- */

/* The first message stays (pt_detail_first) or the last one (pt_detail_set);
 * no detail wanted is fine; a long message is kept whole. */
START_TEST(detail_first_and_set)
{
    char *d = NULL, big[3000];

    pt_detail_first(NULL, "x %d", 1);
    pt_detail_set(NULL, "x %d", 1);
    pt_detail_first(&d, "inner %s", "a");
    pt_detail_first(&d, "outer %s", "b");
    ck_assert_str_eq(d, "inner a");
    pt_detail_set(&d, "rule %zu: %s", (size_t)3, "c");
    ck_assert_str_eq(d, "rule 3: c");
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = 0;
    pt_detail_set(&d, "%s", big);
    ck_assert_uint_eq(strlen(d), sizeof big - 1);
    free(d);
}
END_TEST

/* ---- time ---- */

START_TEST(time_parse_ok)
{
    time_t t = 0;
    char out[PATIENT_TIME_BYTES];

    ck_assert_int_eq(pt_time_parse("2026-11-27T07:54:19Z", &t), PATIENT_OK);
    ck_assert_int_eq((long long)t, 1795766059LL);
    pt_time_format(t, out);
    ck_assert_str_eq(out, "2026-11-27T07:54:19Z");
    ck_assert_int_eq(pt_time_parse("2026-11-27T07:54:19.999Z", &t), PATIENT_OK);
    ck_assert_int_eq((long long)t, 1795766059LL);
    ck_assert_int_eq(pt_time_parse("2026-11-27T07:54:19+00:00", &t), PATIENT_OK);
    ck_assert_int_eq((long long)t, 1795766059LL);
    ck_assert_int_eq(pt_time_parse("2024-02-29T00:00:00Z", &t), PATIENT_OK);
    ck_assert_int_eq(pt_time_parse("@0", &t), PATIENT_OK);
    ck_assert_int_eq((long long)t, 0);
    ck_assert_int_eq(pt_time_parse("@1795766059", &t), PATIENT_OK);
    ck_assert_int_eq((long long)t, 1795766059LL);
    ck_assert_int_eq(pt_time_parse("@-1", &t), PATIENT_OK);
    ck_assert_int_eq((long long)t, -1);
    pt_time_format(0, out);
    ck_assert_str_eq(out, "1970-01-01T00:00:00Z");
    /* Clamped, never overflowing the 21-byte buffer. */
    pt_time_format((time_t)(1LL << 50), out);
    ck_assert_str_eq(out, "9999-12-31T23:59:59Z");
}
END_TEST

/* patient_time_format_any: unclamped, and "@EPOCH" past what gmtime_r breaks down. */
START_TEST(time_format_any)
{
    char out[PATIENT_TIME_ANY_BYTES];

    patient_time_format_any(1795341600, out); /* 2026-11-22T10:00:00Z */
    ck_assert_str_eq(out, "2026-11-22T10:00:00Z");
    patient_time_format_any(0, out);
    ck_assert_str_eq(out, "1970-01-01T00:00:00Z");
    if (sizeof(time_t) >= 8) {
        /* Past 9999 the year widens where patient_time_format clamps. */
        patient_time_format_any((time_t)253402300800LL, out);
        ck_assert_str_eq(out, "10000-01-01T00:00:00Z");
        patient_time_format_any((time_t)INT64_MAX, out);
        ck_assert_str_eq(out, "@9223372036854775807");
    }
}
END_TEST

START_TEST(time_parse_bad)
{
    static const char *bad[] = {
        "", "2026-11-27", "2026-11-27T07:54:19", "2026-11-27T07:54:19z",
        "2026-11-27 07:54:19Z", " 2026-11-27T07:54:19Z", "2026-1-27T07:54:19Z",
        "2026-11-27T07:54:19+01:00", "2026-11-27T07:54:19Zjunk", "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T07:60:00Z",
        "2026-11-27T07:54:60Z", "2026-13-01T00:00:00Z", "2026-11-27T07:54:19.Z", "@",
        "@ 5", "@5x", "@+5", "@99999999999999999999",
    };
    time_t t = 42;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(pt_time_parse(bad[i], &t) == PATIENT_ERR_PARSE, "accepted '%s'", bad[i]);
    ck_assert_int_eq((long long)t, 42);
    ck_assert_int_eq(pt_time_parse(NULL, &t), PATIENT_ERR_ARG);
}
END_TEST

/* The reader of signed documents' times, over the table the descriptor
 * and disclosure tests feed through their parsers. */
START_TEST(time_parse_rfc3339)
{
    time_t t;

    for (size_t i = 0; i < tu_rfc3339_ncases; i++) {
        const tu_time_case *k = &tu_rfc3339_cases[i];
        t = 42;
        ck_assert_msg(pt_time_parse_rfc3339(k->s, &t) == k->want, "'%s'", k->s);
        ck_assert_int_eq((long long)t, k->want == PATIENT_OK ? k->t : 42);
    }
    ck_assert_int_eq(pt_time_parse_rfc3339(NULL, &t), PATIENT_ERR_PARSE);
}
END_TEST

/* What a person may type for a time (patient audit --since/--until): the
 * artefact form and more, each with its exact value; the artefact parser
 * still refuses the extra forms (time_parse_bad). */
START_TEST(time_parse_arg)
{
    static const struct {
        const char *s;
        long long t;
    } good[] = {
        {"2026-11-27T07:54:19Z", 1795766059},
        {"2026-11-27t07:54:19z", 1795766059},
        {"2026-11-27 07:54:19Z", 1795766059},
        {"2026-11-27T08:54:19+01:00", 1795766059},
        {"2026-11-27T02:24:19-05:30", 1795766059},
        {"2026-11-27T07:54:19.999Z", 1795766059},
        {"2026-11-27", 1795737600},
        {"@1795766059", 1795766059},
        {"@-5", -5},
        {"90s", 1795766059 - 90},
        {"2w", 1795766059 - 14 * 86400},
    };
    static const char *bad[] = {
        "", "yesterday", "1795766059", "2026-02-30", "2026-11-27T07:54:19",
        "2026-11-27T07:54:60Z", "2026-11-27T24:00:00Z", "2026-11-27T07:54:19+24:00",
        "2026-11-27T07:54:19+01:60", "2026-11-27T07:54:19+0100", "2026-11-27T07:54:19+01:00x",
        " 2026-11-27", "2026-11-27 ", "@ 5", "@+5", "@", "5x", "-5s",
    };
    time_t t = 42;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(patient_time_parse_arg(good[i].s, 1795766059, 86400 * 365, &t) == PATIENT_OK,
                      "refused '%s'", good[i].s);
        ck_assert_msg((long long)t == good[i].t, "'%s' = %lld", good[i].s, (long long)t);
    }
    t = 42;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(patient_time_parse_arg(bad[i], 1795766059, 86400 * 365, &t) ==
                          PATIENT_ERR_PARSE,
                      "accepted '%s'", bad[i]);
    ck_assert_int_eq((long long)t, 42);
    ck_assert_int_eq(patient_time_parse_arg("366d", 1795766059, 86400 * 365, &t),
                     PATIENT_ERR_TOO_LARGE);
    ck_assert_int_eq(patient_time_parse_arg(NULL, 0, 0, &t), PATIENT_ERR_ARG);
}
END_TEST

START_TEST(duration)
{
    static const struct {
        const char *s;
        long long v;
    } ok[] = {{"0", 0}, {"42", 42}, {"90s", 90}, {"15m", 900}, {"12h", 43200},
              {"7d", 604800}, {"2w", 1209600}};
    static const char *bad[] = {"", "s", "-5", " 5", "+5", "5x", "5mm", "5 m", "1.5h", "h5"};
    long long v = -1;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_int_eq(pt_duration_parse(ok[i].s, &v), PATIENT_OK);
        ck_assert_int_eq(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(pt_duration_parse(bad[i], &v) == PATIENT_ERR_PARSE, "accepted '%s'",
                      bad[i]);
    ck_assert_int_eq(pt_duration_parse("99999999999999999999", &v), PATIENT_ERR_TOO_LARGE);
    ck_assert_int_eq(pt_duration_parse("2000000000w", &v), PATIENT_ERR_TOO_LARGE);
    /* The public form the tools use takes its bound per option: exactly
     * max passes, one second (or one unit) more does not. */
    ck_assert_int_eq(patient_duration_parse("3650d", 3650LL * 86400, &v), PATIENT_OK);
    ck_assert_int_eq(v, 3650LL * 86400);
    ck_assert_int_eq(patient_duration_parse("3651d", 3650LL * 86400, &v), PATIENT_ERR_TOO_LARGE);
    ck_assert_int_eq(patient_duration_parse("315360001", 3650LL * 86400, &v),
                     PATIENT_ERR_TOO_LARGE);
    ck_assert_int_eq(patient_duration_parse("+5d", 3650LL * 86400, &v), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_duration_parse(NULL, 1, &v), PATIENT_ERR_PARSE);
}
END_TEST

/* ---- JSON ---- */

static char *
nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth * 2 - 1 - i] = ']';
    }
    s[depth * 2] = 0;
    return s;
}

/* The direct writers (strings with PT_JSON_ESC_SHORT alone) produce what
 * cJSON_PrintUnformatted prints for the same value: every byte 1..255 in
 * a string, and integers on both sides of cJSON's int range (it prints
 * those through a double). */
START_TEST(json_cjson_writers)
{
    char s[256];
    uint64_t nums[] = {0, 1, 9, 10, 65535, 2147483646ull, 2147483647ull, 2147483648ull,
                       4294967296ull, 67108864ull, 1099511627776ull, 999999999999999ull};

    for (int i = 0; i < 255; i++)
        s[i] = (char)(i + 1);
    s[255] = 0;
    for (size_t off = 0; off < 255; off += 17) {
        pt_buf b = {0};
        cJSON *str = cJSON_CreateString(s + off);
        char *want = cJSON_PrintUnformatted(str);
        ck_assert_int_eq(pt_buf_put_json_strn(&b, s + off, SIZE_MAX, PT_JSON_ESC_SHORT), PATIENT_OK);
        ck_assert_str_eq((const char *)b.data, want);
        free(want);
        cJSON_Delete(str);
        pt_buf_free(&b);
    }
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        pt_buf b = {0};
        cJSON *n = cJSON_CreateNumber((double)nums[i]);
        char *want = cJSON_PrintUnformatted(n);
        ck_assert_int_eq(pt_buf_put_cjson_uint(&b, nums[i]), PATIENT_OK);
        ck_assert_str_eq((const char *)b.data, want);
        free(want);
        cJSON_Delete(n);
        pt_buf_free(&b);
    }
    {
        /* From 10^15 cJSON prints an exponent: refused, not written wrong. */
        pt_buf b = {0};
        ck_assert_int_eq(pt_buf_put_cjson_uint(&b, 1000000000000000ull), PATIENT_ERR_TOO_LARGE);
        pt_buf_free(&b);
    }
}
END_TEST

/* pt_json_compact_len counts what cJSON_PrintUnformatted writes, byte for
 * byte: escapes, numbers in each of cJSON's forms, empty and nested
 * containers; past the cap it stops, the result only over the cap. */
START_TEST(json_compact_len)
{
    static const char *const docs[] = {
        "{}", "[]", "null", "true", "false", "0", "-7", "1e2", "0.1", "1.5e300", "-0",
        "123456789012345678", "2147483648", "3.141592653589793238", "\"\"",
        "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f/\\u00e9\\u20ac\"",
        "{\"k\\n\":[1,{\"a\":[]},{}],\"\\u00e9\":null,\"x\":\"y\"}",
        "[[[[]]],[{}],[true,false,null,-1.25e-5]]",
        "{\"patient\":1,\"type\":\"policy\",\"publishers\":{\"https://a.example\":[\"RWQ\"]}}",
    };

    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cJSON *j = NULL;
        char *p;
        size_t want;
        ck_assert_int_eq(pt_json_parse(docs[i], strlen(docs[i]), &j), PATIENT_OK);
        p = cJSON_PrintUnformatted(j);
        want = strlen(p);
        ck_assert_msg(pt_json_compact_len(j, SIZE_MAX - 1) == want, "%s: %zu, printed %s (%zu)",
                      docs[i], pt_json_compact_len(j, SIZE_MAX - 1), p, want);
        ck_assert_uint_eq(pt_json_compact_len(j, want), want); /* at the cap: exact */
        if (want > 1)
            ck_assert_uint_gt(pt_json_compact_len(j, want - 1), want - 1);
        free(p);
        cJSON_Delete(j);
    }
}
END_TEST

START_TEST(json_depth)
{
    cJSON *j = NULL;
    char *s = nested(PT_JSON_MAX_DEPTH);

    ck_assert_int_eq(pt_json_parse(s, strlen(s), &j), PATIENT_OK);
    cJSON_Delete(j);
    free(s);
    s = nested(PT_JSON_MAX_DEPTH + 1);
    ck_assert_int_eq(pt_json_parse(s, strlen(s), &j), PATIENT_ERR_JSON);
    ck_assert_ptr_null(j);
    free(s);
    /* Brackets inside strings do not count. */
    {
        const char *t = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"{{{{\"}";
        ck_assert_int_eq(pt_json_parse(t, strlen(t), &j), PATIENT_OK);
        cJSON_Delete(j);
    }
}
END_TEST

START_TEST(json_strict)
{
    static const char *bad[] = {
        "{\"a\":1} x", "{\"a\":1}{}", "{\"a\":1,}", "", "{\"a\":\"x\ny\"}",
        "{\"a\":\"x\\u0000y\"}", "{\"a\":1,\"a\":2}", "{\"o\":{\"k\":1,\"b\":2,\"k\":3}}",
        "[{\"x\":1,\"x\":1}]",
    };
    cJSON *j = NULL;
    char withnul[] = "{\"a\":1}\0 ";

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(pt_json_parse(bad[i], strlen(bad[i]), &j) == PATIENT_ERR_JSON,
                      "accepted %s", bad[i]);
        ck_assert_ptr_null(j);
    }
    ck_assert_int_eq(pt_json_parse(withnul, sizeof withnul - 1, &j), PATIENT_ERR_JSON);
    ck_assert_int_eq(pt_json_parse("{\"a\":1} \r\n\t", 11, &j), PATIENT_OK);
    cJSON_Delete(j);
    ck_assert_int_eq(pt_json_parse("{\"a\":\"\\u00e9\",\"b\":{\"a\":2}}", 26, &j), PATIENT_OK);
    ck_assert_str_eq(pt_json_str(j, "a"), "\xc3\xa9");
    cJSON_Delete(j);
}
END_TEST

/* The detail names the rule the text broke; the code is the one
 * pt_json_parse gives. */
START_TEST(json_parse_detail)
{
    static const struct {
        const char *text, *why;
    } c[] = {
        {"\xEF\xBB\xBF{}", "not strict JSON (a byte-order mark)"},
        {"{\"a\":\"x\ny\"}", "not strict JSON (a control byte in a string)"},
        {"{\"a\":\"x\\u0000y\"}", "not strict JSON (\\u0000 in a string)"},
        {"{\"a\":1}\x01", "not strict JSON (a control byte outside strings)"},
        {"{\"a\":1,}", "not strict JSON (malformed)"},
        {"{\"a\":1} x", "not strict JSON (more after the value)"},
        {"{\"o\":{\"k\":1,\"b\":2,\"k\":3}}", "not strict JSON (\"k\" given twice)"},
        {"{\"a\":01}", "not strict JSON (a number outside JSON's grammar)"},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
         "not strict JSON (nested deeper than 32)"},
    };
    cJSON *j = NULL;
    char *why = NULL;

    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        size_t n = strlen(c[i].text);
        ck_assert_int_eq(pt_json_parse(c[i].text, n, &j), PATIENT_ERR_JSON);
        ck_assert_int_eq(pt_json_parse_detail(c[i].text, n, PT_JSON_MAX_BYTES, &j, &why),
                         PATIENT_ERR_JSON);
        ck_assert_ptr_null(j);
        ck_assert_msg(why != NULL && strcmp(why, c[i].why) == 0, "%s: %s", c[i].text,
                      why ? why : "(none)");
        free(why);
        why = NULL;
    }
    ck_assert_int_eq(pt_json_parse_detail("{}", 3, 2, &j, &why), PATIENT_ERR_TOO_LARGE);
    ck_assert_str_eq(why, "larger than 2 bytes");
    free(why);
    why = NULL;
    ck_assert_int_eq(pt_json_parse_detail("{}", 2, 2, &j, &why), PATIENT_OK);
    ck_assert_ptr_null(why);
    cJSON_Delete(j);
}
END_TEST

/* cJSON returns NULL for bad text and for a failed allocation alike: out
 * of memory anywhere in the parse is NOMEM, never a verdict on the text;
 * bad text is JSON still, and the note is the failing thread's own. */
static void *
parse_failing(void *text)
{
    cJSON *j = NULL;
    static patient_err err;

    tu_json_fail_alloc(1);
    err = pt_json_parse(text, strlen(text), &j);
    tu_json_fail_alloc(0);
    return &err;
}

START_TEST(json_parse_nomem)
{
    const char *doc = "{\"a\":[1,\"two\",{\"b\":null}],\"c\":\"d\"}",
               *bad = "{\"a\":[1,\"two\"],}";
    cJSON *j = NULL;
    char *why = NULL;
    patient_err err;
    unsigned k, used;
    pthread_t t;
    void *r;

    /* Each allocation the parse makes, failed in turn. */
    for (k = 1;; k++) {
        tu_json_fail_alloc(k);
        err = pt_json_parse_detail(doc, strlen(doc), PT_JSON_MAX_BYTES, &j, &why);
        used = tu_json_fail_alloc(0);
        if (err == PATIENT_OK)
            break;
        ck_assert_msg(err == PATIENT_ERR_NOMEM, "allocation %u failed: %s", k, patient_errname(err));
        ck_assert_ptr_null(j);
        ck_assert_ptr_null(why);
    }
    ck_assert_uint_ge(k, 13); /* 7 values, 3 names and 2 strings: each failed once */
    ck_assert_uint_eq(used, k - 1);
    cJSON_Delete(j);
    /* The twin: bad text is JSON, the next parse after one out of memory
     * too, and with an allocation failed before the parse (not in it). */
    ck_assert_int_eq(pt_json_parse(bad, strlen(bad), &j), PATIENT_ERR_JSON);
    tu_json_fail_alloc(1);
    ck_assert_int_eq(pt_json_parse(doc, strlen(doc), &j), PATIENT_ERR_NOMEM);
    ck_assert_int_eq(pt_json_parse(bad, strlen(bad), &j), PATIENT_ERR_JSON);
    tu_json_fail_alloc(1);
    ck_assert_ptr_null(cJSON_CreateObject());
    ck_assert_int_eq(pt_json_parse(bad, strlen(bad), &j), PATIENT_ERR_JSON);
    ck_assert_ptr_null(j);
    tu_json_fail_alloc(0);
    /* Another thread running out of memory leaves this one's note alone. */
    pt_json_nomem_clear();
    ck_assert_int_eq(pthread_create(&t, NULL, parse_failing, (void *)doc), 0);
    ck_assert_int_eq(pthread_join(t, &r), 0);
    ck_assert_int_eq(*(patient_err *)r, PATIENT_ERR_NOMEM);
    ck_assert_int_eq(pt_json_nomem(), 0);
}
END_TEST

/* Under AddressSanitizer a request it cannot serve aborts the program by
 * default; json_track_nomem needs malloc's NULL, as without it (sanitizer
 * builds read this before ASAN_OPTIONS; other builds never call it). */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* The public switch the tools call first thing: before it cJSON's
 * hooks are its own and a failed allocation notes nothing; after it the
 * same failure is noted (pt_json_parse_detail's NOMEM). */
START_TEST(json_track_nomem)
{
    cJSON_InitHooks(NULL);
    pt_json_nomem_clear();
    ck_assert_ptr_null(cJSON_malloc(SIZE_MAX / 2));
    ck_assert_int_eq(pt_json_nomem(), 0);
    patient_json_track_nomem();
    ck_assert_ptr_null(cJSON_malloc(SIZE_MAX / 2));
    ck_assert_int_ne(pt_json_nomem(), 0);
    pt_json_nomem_clear();
}
END_TEST

START_TEST(json_size_cap)
{
    cJSON *j = NULL;
    /* The cap is checked before a byte is read. */
    ck_assert_int_eq(pt_json_parse("{}", (size_t)PT_JSON_MAX_BYTES + 1, &j),
                     PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(j);
}
END_TEST

START_TEST(json_getters)
{
    cJSON *j = NULL;
    long long v = 0;
    const char *s = "{\"s\":\"x\",\"i\":9007199254740991,\"f\":1.5,\"big\":1e300,\"n\":\"1\"}";

    ck_assert_int_eq(pt_json_parse(s, strlen(s), &j), PATIENT_OK);
    ck_assert_str_eq(pt_json_str(j, "s"), "x");
    ck_assert_ptr_null(pt_json_str(j, "i"));
    ck_assert_ptr_null(pt_json_str(j, "missing"));
    ck_assert_int_eq(pt_json_int(j, "i", &v), 0);
    ck_assert_int_eq(v, 9007199254740991LL);
    ck_assert_int_eq(pt_json_int(j, "f", &v), -1);
    ck_assert_int_eq(pt_json_int(j, "big", &v), -1);
    ck_assert_int_eq(pt_json_int(j, "n", &v), -1);
    cJSON_Delete(j);
}
END_TEST

/* Integers: only an integer literal in the text, whatever double it makes. */
START_TEST(json_int_strict)
{
    static const char *notint[] = {"48.0", "48e0", "48E+0", "4.8e1", "47.99999999999999999",
                                   "-0", "-0.0", "0e0", "9007199254740992"};
    static const char *badjson[] = {"01", "1.", ".5", "+1", "1e", "1e+", "--1", "-",
                                    "0x10", "1.e3", "00", "-01"};
    char doc[96];
    cJSON *j = NULL;
    long long v = 0;

    for (size_t i = 0; i < sizeof notint / sizeof notint[0]; i++) {
        snprintf(doc, sizeof doc, "{\"a\":[%s],\"n\":%s}", notint[i], notint[i]);
        ck_assert_int_eq(pt_json_parse(doc, strlen(doc), &j), PATIENT_OK);
        ck_assert_msg(pt_json_int(j, "n", &v) == -1, "integer from %s", notint[i]);
        ck_assert_int_eq(pt_json_item_int(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "a"), 0), &v), -1);
        cJSON_Delete(j);
    }
    for (size_t i = 0; i < sizeof badjson / sizeof badjson[0]; i++) {
        snprintf(doc, sizeof doc, "{\"n\":%s}", badjson[i]);
        ck_assert_msg(pt_json_parse(doc, strlen(doc), &j) == PATIENT_ERR_JSON, "accepted %s", doc);
        ck_assert_ptr_null(j);
    }
    /* Twins: the same values as integer literals; strings with number-like
     * text and keys do not confuse the pairing of tokens and items. */
    snprintf(doc, sizeof doc, "{\"1.5\":\"2e3\",\"x\":[0,-7,1.5,{\"n\":48}],\"m\":-0.5}");
    ck_assert_int_eq(pt_json_parse(doc, strlen(doc), &j), PATIENT_OK);
    ck_assert_int_eq(pt_json_int(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "x"), 3), "n", &v), 0);
    ck_assert_int_eq(v, 48);
    ck_assert_int_eq(pt_json_item_int(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "x"), 0), &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(pt_json_item_int(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "x"), 1), &v), 0);
    ck_assert_int_eq(v, -7);
    ck_assert_int_eq(pt_json_item_int(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "x"), 2), &v), -1);
    cJSON_Delete(j);
    /* Only space, tab, LF and CR are blanks (cJSON skips any byte <= 0x20). */
    ck_assert_int_eq(pt_json_parse("[\x0e" "0]", 4, &j), PATIENT_ERR_JSON);
    ck_assert_int_eq(pt_json_parse("{\"a\":\f1}", 7, &j), PATIENT_ERR_JSON);
    ck_assert_ptr_null(j);
    /* A byte-order mark is refused, not skipped. */
    ck_assert_int_eq(pt_json_parse("\xEF\xBB\xBF{}", 5, &j), PATIENT_ERR_JSON);
    ck_assert_ptr_null(j);
}
END_TEST

/* ---- files ---- */

/* pt_write_atomic's temporary files carry "tmp" in their names: none may
 * be left in the folder once a write has returned. */
static void
assert_no_temp_left(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *de;

    ck_assert_ptr_nonnull(dp);
    while ((de = readdir(dp)) != NULL)
        ck_assert_msg(strstr(de->d_name, "tmp") == NULL, "left behind: %s", de->d_name);
    closedir(dp);
}

/* The one strict decimal reader, at each cap its callers give: the cap
 * itself, one more, a digit more, leading zeros, signs and blanks. */
START_TEST(decimal_parse)
{
    static const struct {
        const char *s;
        uint64_t max;
        int ok;
        uint64_t v;
    } c[] = {
        {"0", UINT64_MAX, 1, 0},
        {"18446744073709551615", UINT64_MAX, 1, UINT64_MAX},
        {"18446744073709551616", UINT64_MAX, 0, 0},
        {"18446744073709551620", UINT64_MAX, 0, 0},
        {"99999999999999999999", UINT64_MAX, 0, 0},
        {"184467440737095516150", UINT64_MAX, 0, 0},
        {"9223372036854775807", INT64_MAX, 1, INT64_MAX},
        {"9223372036854775808", INT64_MAX, 0, 0},
        {"18446744073709551615", INT64_MAX, 0, 0},
        {"999999999", 999999999, 1, 999999999},
        {"1000000000", 999999999, 0, 0},
        {"0", 0, 1, 0},
        {"1", 0, 0, 0},
        {"3", 3, 1, 3},
        {"4", 3, 0, 0},
        {"9", 3, 0, 0},
        {"16777215", (1u << 24) - 1, 1, (1u << 24) - 1},
        {"16777216", (1u << 24) - 1, 0, 0},
        {"10", 10, 1, 10},
        {"11", 10, 0, 0},
        {"00", UINT64_MAX, 0, 0},
        {"07", UINT64_MAX, 0, 0},
        {"0009223372036854775807", INT64_MAX, 0, 0},
        {"+7", UINT64_MAX, 0, 0},
        {"-7", UINT64_MAX, 0, 0},
        {"-0", UINT64_MAX, 0, 0},
        {" 7", UINT64_MAX, 0, 0},
        {"7 ", UINT64_MAX, 0, 0},
        {"7\n", UINT64_MAX, 0, 0},
        {"1e3", UINT64_MAX, 0, 0},
        {"0x10", UINT64_MAX, 0, 0},
        {"", UINT64_MAX, 0, 0},
    };
    uint64_t v;

    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        v = 42;
        ck_assert_msg(pt_decimal_parse(c[i].s, strlen(c[i].s), c[i].max, &v) == (c[i].ok ? 0 : -1),
                      "%s (max %llu)", c[i].s, (unsigned long long)c[i].max);
        ck_assert_uint_eq(v, c[i].ok ? c[i].v : 42);
    }
    /* n bounds the text; a NUL inside it is not a digit. */
    ck_assert_int_eq(pt_decimal_parse("123", 2, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 12);
    ck_assert_int_eq(pt_decimal_parse("1\0", 2, UINT64_MAX, &v), -1);
}
END_TEST

START_TEST(write_atomic_excl)
{
    const char *p = tpath("f");
    uint8_t *d = NULL;
    size_t n = 0;
    struct stat st;

    ck_assert_int_eq(pt_write_atomic(p, "first", 5, 0600, PT_WRITE_EXCL), PATIENT_OK);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    errno = 0; /* set by the refusal itself, for key.c's and policy.c's callers */
    ck_assert_int_eq(pt_write_atomic(p, "second", 6, 0600, PT_WRITE_EXCL), PATIENT_ERR_EXISTS);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(pt_read_file(p, 100, &d, &n), PATIENT_OK);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(d, "first", 5);
    free(d);
    ck_assert_int_eq(pt_write_atomic(p, "second", 6, 0644, 0), PATIENT_OK);
    ck_assert_int_eq(pt_read_file(p, 100, &d, &n), PATIENT_OK);
    ck_assert_str_eq((char *)d, "second");
    free(d);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    /* Never replaces a symlink (or what it points to). */
    ck_assert_int_eq(symlink(p, tpath("link")), 0);
    ck_assert_int_eq(pt_write_atomic(tpath("link"), "x", 1, 0600, 0), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(pt_write_atomic(tpath("link"), "x", 1, 0600, PT_WRITE_EXCL),
                     PATIENT_ERR_EXISTS);
    ck_assert_int_eq(pt_read_file(p, 100, &d, &n), PATIENT_OK);
    ck_assert_str_eq((char *)d, "second");
    free(d);
    /* No temp files left behind. */
    assert_no_temp_left(tmpdir);
}
END_TEST

/* A folder that may be written but not read (0333): the temporary file and
 * its link go in, only the folder's fsync cannot open it. The write has
 * happened, so it is OK, not an I/O error (a rerun would otherwise find
 * the name taken). Run as nobody when root, whom 0333 does not stop. */
START_TEST(write_atomic_unreadable_folder)
{
    char dir[512], f[600], g[600];
    uint8_t *d = NULL;
    size_t n = 0;
    int status = -1;
    pid_t pid;

    snprintf(dir, sizeof dir, "%s", tpath("wo"));
    snprintf(f, sizeof f, "%s/f", dir);
    snprintf(g, sizeof g, "%s/g", dir);
    ck_assert_int_eq(chmod(tmpdir, 0711), 0); /* nobody may pass through */
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(chmod(dir, 0333), 0);
    if ((pid = fork()) == 0) {
        int fd;
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(98);
        if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0)
            _exit(99); /* the folder is readable here: nothing to test */
        if (pt_write_atomic(f, "kept", 4, 0600, PT_WRITE_EXCL) != PATIENT_OK)
            _exit(1);
        _exit(pt_write_atomic(g, "kept", 4, 0600, 0) != PATIENT_OK ? 2 : 0);
    }
    ck_assert_int_ne(pid, -1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(chmod(dir, 0700), 0);
    ck_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) >= 98) {
        fprintf(stderr, "write_atomic_unreadable_folder: skipped (%s)\n",
                WEXITSTATUS(status) == 98 ? "cannot become nobody" : "0333 does not stop open");
        return;
    }
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(pt_read_file(f, 100, &d, &n), PATIENT_OK);
    ck_assert_str_eq((char *)d, "kept");
    free(d);
    ck_assert_int_eq(pt_read_file(g, 100, &d, &n), PATIENT_OK);
    ck_assert_str_eq((char *)d, "kept");
    free(d);
    assert_no_temp_left(dir);
}
END_TEST

START_TEST(read_file_refusals)
{
    uint8_t *d = (uint8_t *)"x";
    size_t n = 7;

    write_file(tpath("ok"), "0123456789");
    ck_assert_int_eq(pt_read_file(tpath("ok"), 10, &d, &n), PATIENT_OK);
    ck_assert_uint_eq(n, 10);
    ck_assert_int_eq(d[10], 0);
    free(d);
    ck_assert_int_eq(pt_read_file(tpath("ok"), 9, &d, &n), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(symlink(tpath("ok"), tpath("sym")), 0);
    ck_assert_int_eq(pt_read_file(tpath("sym"), 100, &d, &n), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(mkfifo(tpath("fifo"), 0600), 0);
    ck_assert_int_eq(pt_read_file(tpath("fifo"), 100, &d, &n), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(pt_read_file(tmpdir, 100, &d, &n), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(pt_read_file("/dev/null", 100, &d, &n), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(pt_read_file(tpath("missing"), 100, &d, &n), PATIENT_ERR_NOT_FOUND);
    ck_assert_ptr_null(d);
    ck_assert_uint_eq(n, 0);
}
END_TEST

/* The tools' face of the two (patient/file.h): the head of a larger file,
 * an empty file NUL-terminated, and the errno each refusal leaves for a
 * tool's message. */
START_TEST(file_public)
{
    char *d = NULL;
    size_t n = 7;
    int trunc = -1;

    write_file(tpath("ten"), "0123456789");
    ck_assert_int_eq(patient_file_read(tpath("ten"), 10, PATIENT_FILE_HEAD, &d, &n, &trunc),
                     PATIENT_OK);
    ck_assert_uint_eq(n, 10);
    ck_assert_int_eq(trunc, 0); /* exactly the cap is all of it */
    ck_assert_str_eq(d, "0123456789");
    free(d);
    ck_assert_int_eq(patient_file_read(tpath("ten"), 4, PATIENT_FILE_HEAD, &d, &n, &trunc),
                     PATIENT_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(trunc, 1);
    ck_assert_str_eq(d, "0123");
    free(d);
    ck_assert_int_eq(patient_file_read(tpath("ten"), 4, 0, &d, &n, NULL), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(d);
    d = (char *)"stale";
    n = 7;
    ck_assert_int_eq(patient_file_read(tpath("ten"), 4, PATIENT_FILE_HEAD, &d, &n, NULL),
                     PATIENT_ERR_ARG);
    ck_assert_ptr_null(d); /* cleared before the refusal */
    ck_assert_uint_eq(n, 0);
    /* An empty file's terminator is the reader's own, checked on blocks
     * known dirty: the same path read non-empty first, whose freed block
     * glibc hands back to the next read of its size; and an empty pipe,
     * whose 64 KiB block glibc fills with M_PERTURB's byte (in the
     * sanitizer pass ASan fills every new block). */
    write_file(tpath("empty"), "0123456789abcdef0123456789abcdef");
    ck_assert_int_eq(patient_file_read(tpath("empty"), 100, 0, &d, &n, NULL), PATIENT_OK);
    free(d);
    write_file(tpath("empty"), "");
    ck_assert_int_eq(patient_file_read(tpath("empty"), 4, 0, &d, &n, NULL), PATIENT_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(d, "");
    free(d);
    {
        int fds[2], in = dup(STDIN_FILENO);
        ck_assert_int_ge(in, 0);
        ck_assert_int_eq(pipe(fds), 0);
        close(fds[1]);
        ck_assert_int_eq(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
        close(fds[0]);
#ifdef M_PERTURB
        mallopt(M_PERTURB, 0xa5);
#endif
        ck_assert_int_eq(patient_file_read("-", 1u << 20, 0, &d, &n, NULL), PATIENT_OK);
#ifdef M_PERTURB
        mallopt(M_PERTURB, 0);
#endif
        ck_assert_uint_eq(n, 0);
        ck_assert_int_eq(d[0], 0);
        free(d);
        ck_assert_int_eq(dup2(in, STDIN_FILENO), STDIN_FILENO);
        close(in);
    }
    ck_assert_int_eq(symlink(tpath("ten"), tpath("sym")), 0);
    ck_assert_int_eq(patient_file_read(tpath("sym"), 100, PATIENT_FILE_HEAD, &d, &n, &trunc),
                     PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(patient_file_read(tpath("missing"), 100, 0, &d, &n, NULL),
                     PATIENT_ERR_NOT_FOUND);

    errno = 0;
    ck_assert_int_eq(patient_file_write(tpath("ten"), "x", 1, 0600, 0), PATIENT_ERR_EXISTS);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(patient_file_write(tpath("sym"), "x", 1, 0600, PATIENT_FILE_REPLACE),
                     PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(errno, ELOOP);
    ck_assert_int_eq(patient_file_write(tmpdir, "x", 1, 0600, PATIENT_FILE_REPLACE),
                     PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(errno, EISDIR);
    ck_assert_int_eq(mkfifo(tpath("fifo"), 0600), 0);
    ck_assert_int_eq(patient_file_write(tpath("fifo"), "x", 1, 0600, PATIENT_FILE_REPLACE),
                     PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(errno, ENOTSUP);
    ck_assert_int_eq(patient_file_write(tpath("no/such/dir"), "x", 1, 0600, 0), PATIENT_ERR_IO);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(patient_file_write(tpath("ten"), "new", 3, 0600, PATIENT_FILE_REPLACE),
                     PATIENT_OK);
    ck_assert_int_eq(patient_file_read(tpath("ten"), 100, 0, &d, &n, NULL), PATIENT_OK);
    ck_assert_str_eq(d, "new");
    free(d);
}
END_TEST

/* The string writer's eight-bytes-at-a-time pass misses no byte that
 * needs an escape: each such byte (and some that need none: ' ', 0x7e,
 * 0x80, 0xff), at every offset of a run of plain bytes longer than two
 * words, in each escape form, is written as a byte-by-byte reference
 * writes it, and counted alike by pt_json_str_len. */
static size_t
json_ref(const unsigned char *s, size_t n, unsigned flags, char *out)
{
    static const char sc[] = "\b\f\n\r\t";
    const char *x;
    size_t o = 0;

    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            o += (size_t)sprintf(out + o, "\\%c", c);
        else if ((flags & PT_JSON_ESC_SHORT) && c && (x = strchr(sc, c)) != NULL)
            o += (size_t)sprintf(out + o, "\\%c", "bfnrt"[x - sc]);
        else if (c < 0x20 || (c == 0x7f && (flags & PT_JSON_ESC_DEL)))
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o++] = '"';
    return o;
}

START_TEST(json_escapes_at_every_offset)
{
    static const unsigned char odd[] = {0x01, 0x08, 0x0a, 0x1f, '"', '\\', 0x7f,
                                        ' ',  0x7e, 0x80, 0xff};
    static const unsigned flagv[] = {0, PT_JSON_ESC_DEL, PT_JSON_ESC_SHORT,
                                     PT_JSON_ESC_DEL | PT_JSON_ESC_SHORT};
    unsigned char s[41];
    char want[41 * 6 + 3];

    for (size_t f = 0; f < sizeof flagv / sizeof flagv[0]; f++)
        for (size_t c = 0; c < sizeof odd; c++)
            for (size_t at = 0; at < sizeof s - 1; at++) {
                pt_buf b = {0};
                size_t n;
                memset(s, 'a', sizeof s - 1);
                s[sizeof s - 1] = 0;
                s[at] = odd[c];
                if (at + 9 < sizeof s - 1)
                    s[at + 9] = odd[(c + 1) % sizeof odd]; /* a second one, a word on */
                n = json_ref(s, sizeof s - 1, flagv[f], want);
                ck_assert_int_eq(pt_buf_put_json_strn(&b, (const char *)s, SIZE_MAX, flagv[f]),
                                 PATIENT_OK);
                ck_assert_msg(b.len == n && memcmp(b.data, want, n) == 0,
                              "flags %u, byte 0x%02x at %zu: %s, want %.*s", flagv[f], odd[c], at,
                              (const char *)b.data, (int)n, want);
                ck_assert_uint_eq(pt_json_str_len((const char *)s, flagv[f]), n);
                pt_buf_free(&b);
            }
}
END_TEST

/* Neither the writer nor the count reads past the string: its bytes are
 * copied into a block of exactly their length (the writer is given the
 * length and no NUL; the count needs one, so its block holds the NUL and
 * nothing more), every length from none to five words, plain and with an
 * escape at each offset, so a word read that runs over the end is a read
 * outside the block for the sanitizer pass (and for valgrind). The old
 * test's strings sit in a larger array, NUL-terminated, where such a
 * read stays in bounds. */
START_TEST(json_reads_inside_the_string)
{
    static const unsigned char odd[] = {0x0a, '"', 0x7f};
    static const unsigned flagv[] = {0, PT_JSON_ESC_DEL, PT_JSON_ESC_SHORT,
                                     PT_JSON_ESC_DEL | PT_JSON_ESC_SHORT};
    unsigned char s[40];
    char want[sizeof s * 6 + 3];

    for (size_t n = 0; n <= sizeof s; n++)
        for (size_t at = 0; at <= n; at++) /* at == n: plain */
            for (size_t c = 0; c < (at < n ? sizeof odd : 1); c++)
                for (size_t f = 0; f < sizeof flagv / sizeof flagv[0]; f++) {
                    pt_buf b = {0};
                    char *exact = malloc(n + !n), *z = malloc(n + 1);
                    size_t w;
                    ck_assert_ptr_nonnull(exact);
                    ck_assert_ptr_nonnull(z);
                    memset(s, 'a', n);
                    if (at < n)
                        s[at] = odd[c];
                    memcpy(exact, s, n);
                    memcpy(z, s, n);
                    z[n] = 0;
                    w = json_ref(s, n, flagv[f], want);
                    ck_assert_int_eq(pt_buf_put_json_strn(&b, exact, n, flagv[f]), PATIENT_OK);
                    ck_assert_msg(b.len == w && memcmp(b.data, want, w) == 0,
                                  "length %zu, byte at %zu, flags %u", n, at, flagv[f]);
                    ck_assert_uint_eq(pt_json_str_len(z, flagv[f]), w);
                    pt_buf_free(&b);
                    free(exact);
                    free(z);
                }
}
END_TEST

/* pt_buf_put_b64 (its own table encoder) writes what libsodium's
 * encoder writes, for every length's remainder and both variants, after
 * bytes already in the buffer; and with PT_JSON_ESC_DEL the string writer
 * (its inline test for the usual byte) agrees with pt_json_str_len and
 * escapes DEL. */
START_TEST(buf_b64_and_json_del)
{
    uint8_t in[200];
    char want[300], s[256];

    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 167 + 13);
    for (size_t n = 0; n <= sizeof in; n++) {
        for (int url = 0; url <= 1; url++) {
            int v = url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL;
            pt_buf b = {0};
            ck_assert_int_eq(pt_buf_append(&b, "x.", 2), PATIENT_OK);
            ck_assert_int_eq(pt_buf_put_b64(&b, in, n, url), PATIENT_OK);
            sodium_bin2base64(want, sizeof want, in, n, v);
            ck_assert_uint_eq(b.len, 2 + strlen(want));
            ck_assert_str_eq((const char *)b.data + 2, want);
            pt_buf_free(&b);
        }
    }
    for (int i = 0; i < 255; i++)
        s[i] = (char)(i + 1);
    s[255] = 0;
    for (size_t off = 0; off < 255; off += 17) {
        pt_buf b = {0};
        ck_assert_int_eq(pt_buf_put_json_strn(&b, s + off, SIZE_MAX, PT_JSON_ESC_DEL), PATIENT_OK);
        ck_assert_uint_eq(b.len, pt_json_str_len(s + off, PT_JSON_ESC_DEL));
        if (off < 0x7f) /* s + off still holds DEL */
            ck_assert_ptr_nonnull(strstr((const char *)b.data, "\\u007f"));
        pt_buf_free(&b);
    }
}
END_TEST

/* The read end of a pipe carrying n bytes of a-z, from a forked writer
 * (the pipe holds less than n). */
static int
pipe_of(size_t n)
{
    int fds[2];
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    if ((pid = fork()) == 0) {
        char c[4096];
        close(fds[0]);
        for (size_t i = 0; i < n; i += sizeof c) {
            size_t k = n - i < sizeof c ? n - i : sizeof c;
            for (size_t j = 0; j < k; j++)
                c[j] = (char)('a' + (i + j) % 26);
            if (write(fds[1], c, k) != (ssize_t)k)
                _exit(1);
        }
        _exit(0);
    }
    ck_assert_int_ne(pid, -1);
    close(fds[1]);
    return fds[0];
}

/* Reading a pipe grows the buffer as it fills (past the first 64 KiB):
 * exactly the cap is all of it, one byte over is refused, and stdin's
 * head is the first max bytes. */
START_TEST(read_pipe)
{
    const size_t big = 200 * 1024 + 7;
    uint8_t *d = NULL;
    size_t n = 0;
    int fd, trunc = -1, in = dup(STDIN_FILENO);

    fd = pipe_of(big);
    ck_assert_int_eq(pt_read_fd(fd, big, &d, &n), PATIENT_OK);
    close(fd);
    ck_assert_uint_eq(n, big);
    ck_assert_int_eq(d[0], 'a');
    ck_assert_int_eq(d[big - 1], 'a' + (int)((big - 1) % 26));
    ck_assert_int_eq(d[big], 0);
    free(d);
    fd = pipe_of(big);
    ck_assert_int_eq(pt_read_fd(fd, big - 1, &d, &n), PATIENT_ERR_TOO_LARGE);
    close(fd);
    ck_assert_ptr_null(d);
    ck_assert_int_ge(in, 0);
    fd = pipe_of(big);
    ck_assert_int_eq(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    close(fd);
    ck_assert_int_eq(pt_read_file_head("-", 70000, &d, &n, &trunc), PATIENT_OK);
    ck_assert_uint_eq(n, 70000);
    ck_assert_int_eq(trunc, 1);
    ck_assert_int_eq(d[69999], 'a' + 69999 % 26);
    ck_assert_int_eq(d[70000], 0);
    free(d);
    ck_assert_int_eq(dup2(in, STDIN_FILENO), STDIN_FILENO);
    close(in);
}
END_TEST

START_TEST(buf_append)
{
    pt_buf b = {0};

    ck_assert_int_eq(pt_buf_append(&b, "ab", 2), PATIENT_OK);
    ck_assert_int_eq(pt_buf_appendf(&b, "%d-%s", 42, "x"), PATIENT_OK);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(pt_buf_append(&b, "z", 1), PATIENT_OK);
    ck_assert_uint_eq(b.len, 1006);
    ck_assert_mem_eq(b.data, "ab42-xz", 7);
    ck_assert_int_eq(b.data[b.len], 0);
    ck_assert_int_eq(pt_buf_reserve(&b, SIZE_MAX), PATIENT_ERR_TOO_LARGE);
    pt_buf_free(&b);
    pt_buf_free(&b);
}
END_TEST

/* ---- hash ---- */

static void
hexeq(const uint8_t h[32], const char *want)
{
    char got[65];
    pt_hex(h, 32, got);
    ck_assert_str_eq(got, want);
}

START_TEST(sha256_vectors)
{
    uint8_t h[32];
    char *a = malloc(1000000);

    ck_assert_int_eq(patient_sha256("", 0, h), PATIENT_OK);
    hexeq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_int_eq(patient_sha256("abc", 3, h), PATIENT_OK);
    hexeq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    memset(a, 'a', 1000000);
    ck_assert_int_eq(patient_sha256(a, 1000000, h), PATIENT_OK);
    hexeq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}
END_TEST

START_TEST(sha256_incremental)
{
    uint8_t one[32], inc[32];
    uint8_t *data = malloc(300001);
    patient_sha256_ctx *c = NULL;
    size_t cuts[] = {0, 1, 63, 64, 65, 1000, 299999, 300001};
    size_t prev = 0;

    for (size_t i = 0; i < 300001; i++)
        data[i] = (uint8_t)(i * 131 + 7);
    ck_assert_int_eq(patient_sha256(data, 300001, one), PATIENT_OK);
    ck_assert_int_eq(patient_sha256_init(&c), PATIENT_OK);
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        ck_assert_int_eq(patient_sha256_update(c, data + prev, cuts[i] - prev), PATIENT_OK);
        prev = cuts[i];
    }
    ck_assert_int_eq(patient_sha256_final(c, inc), PATIENT_OK);
    ck_assert_mem_eq(one, inc, 32);
    /* Abandoned contexts free cleanly. */
    ck_assert_int_eq(patient_sha256_init(&c), PATIENT_OK);
    patient_sha256_free(c);
    patient_sha256_free(NULL);
    free(data);
}
END_TEST

START_TEST(sha256_file)
{
    uint8_t h[32], want[32];
    uint64_t size = 0;

    write_file(tpath("f"), "abc");
    ck_assert_int_eq(patient_sha256_file(tpath("f"), h, &size), PATIENT_OK);
    ck_assert_int_eq(size, 3);
    ck_assert_int_eq(patient_sha256("abc", 3, want), PATIENT_OK);
    ck_assert_mem_eq(h, want, 32);
    write_file(tpath("e"), "");
    ck_assert_int_eq(patient_sha256_file(tpath("e"), h, &size), PATIENT_OK);
    ck_assert_int_eq(size, 0);
    hexeq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_int_eq(symlink(tpath("f"), tpath("s")), 0);
    ck_assert_int_eq(patient_sha256_file(tpath("s"), h, &size), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(patient_sha256_file(tpath("none"), h, &size), PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(patient_sha256_file(tmpdir, h, &size), PATIENT_ERR_UNSAFE_PATH);
}
END_TEST

START_TEST(sri)
{
    uint8_t h[32], back[32];
    char s[PATIENT_SRI_BYTES];

    ck_assert_int_eq(patient_sha256("", 0, h), PATIENT_OK);
    patient_sri_encode(h, s);
    ck_assert_str_eq(s, "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    ck_assert_int_eq(patient_sri_decode(s, back), PATIENT_OK);
    ck_assert_mem_eq(h, back, 32);
    ck_assert_int_eq(patient_sri_decode("sha384-OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/"
                                        "529l+9Ua0vFImLlb",
                                        back),
                     PATIENT_ERR_UNSUPPORTED);
    ck_assert_int_eq(patient_sri_decode("sha512-abc", back), PATIENT_ERR_UNSUPPORTED);
    ck_assert_int_eq(patient_sri_decode("sha256-47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU",
                                        back),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_sri_decode("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= ",
                                        back),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_sri_decode("sha256-", back), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_sri_decode("sha256-YWJj", back), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_sri_decode("47DEQpj8HBSa", back), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_sri_decode(NULL, back), PATIENT_ERR_PARSE);
}
END_TEST

/* ---- errors ---- */

START_TEST(error_table)
{
    for (int i = 0; i <= PATIENT_ERR_MAX_; i++) {
        ck_assert_str_ne(patient_strerror((patient_err)i), "unknown error");
        ck_assert_str_ne(patient_errname((patient_err)i), "unknown");
        for (int k = 0; k < i; k++)
            ck_assert_str_ne(patient_errname((patient_err)i), patient_errname((patient_err)k));
    }
    ck_assert_str_eq(patient_strerror((patient_err)(PATIENT_ERR_MAX_ + 1)), "unknown error");
    ck_assert_str_eq(patient_errname((patient_err)-1), "unknown");
    ck_assert_str_eq(patient_errname(PATIENT_ERR_SIGNATURE), "signature.invalid");
}
END_TEST

/* Options structs grow at the end (error.h): an older caller's smaller
 * struct reads as zero beyond its size, a newer caller's larger one is
 * refused, and size 0 is this header's size. */
START_TEST(opts_size)
{
    patient_verify_opts in, out;
    patient_log_report r;
    patient_log_verify_opts lo = PATIENT_OPTS_INIT(patient_log_verify_opts);
    patient_fetch_opts fo;
    patient_response *resp = NULL;
    char *detail = NULL;

    memset(&in, 0xAB, sizeof in);
    in.size = offsetof(patient_verify_opts, state_file); /* size and now only */
    in.now = 1234;
    ck_assert_int_eq(PT_OPTS_TAKE(&out, &in), PATIENT_OK);
    ck_assert_uint_eq(out.size, sizeof out);
    ck_assert_int_eq(out.now, 1234);
    ck_assert_ptr_null(out.state_file);
    ck_assert_int_eq(out.no_state_update, 0);
    ck_assert_int_eq(out.strict, 0);
    in.size = 0; /* this header's: all of it */
    ck_assert_int_eq(PT_OPTS_TAKE(&out, &in), PATIENT_OK);
    ck_assert_uint_eq(out.size, sizeof out);
    ck_assert_int_eq(memcmp((char *)&out + sizeof out.size, (char *)&in + sizeof in.size,
                            sizeof out - sizeof out.size),
                     0);
    in.size = sizeof in + 8;
    ck_assert_int_eq(PT_OPTS_TAKE(&out, &in), PATIENT_ERR_ARG);
    in.size = 3;
    ck_assert_int_eq(PT_OPTS_TAKE(&out, &in), PATIENT_ERR_ARG);
    ck_assert_int_eq(PT_OPTS_TAKE(&out, NULL), PATIENT_OK);
    ck_assert_uint_eq(out.size, sizeof out);
    ck_assert_ptr_null(out.state_file);
    /* Through the public API: a struct from a newer header is refused. */
    ck_assert_uint_eq(lo.size, sizeof lo);
    lo.size = sizeof lo + sizeof(void *);
    ck_assert_int_eq(patient_log_verify("/nonexistent", &lo, &r), PATIENT_ERR_ARG);
    ck_assert_int_eq(r.result, PATIENT_ERR_ARG);
    patient_fetch_opts_init(&fo);
    ck_assert_uint_eq(fo.size, sizeof fo);
    fo.size = sizeof fo + 1;
    ck_assert_int_eq(patient_fetch(&fo, "http://127.0.0.1:1/", &resp, &detail), PATIENT_ERR_ARG);
    ck_assert_ptr_null(resp);
    free(detail);
}
END_TEST

static Suite *
core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc;

    tc = tcase_create("base64");
    tcase_add_test(tc, b64_roundtrip);
    tcase_add_test(tc, b64_strict);
    tcase_add_test(tc, buf_b64_and_json_del);
    tcase_add_test(tc, json_escapes_at_every_offset);
    tcase_add_test(tc, json_reads_inside_the_string);
    tcase_add_test(tc, hex_roundtrip);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_add_test(tc, time_parse_ok);
    tcase_add_test(tc, time_parse_bad);
    tcase_add_test(tc, time_format_any);
    tcase_add_test(tc, time_parse_rfc3339);
    tcase_add_test(tc, detail_first_and_set);
    tcase_add_test(tc, time_parse_arg);
    tcase_add_test(tc, duration);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_test(tc, json_cjson_writers);
    tcase_add_test(tc, json_depth);
    tcase_add_test(tc, json_parse_detail);
    tcase_add_test(tc, json_compact_len);
    tcase_add_test(tc, json_strict);
    tcase_add_test(tc, json_parse_nomem);
    tcase_add_test(tc, json_track_nomem);
    tcase_add_test(tc, json_size_cap);
    tcase_add_test(tc, json_getters);
    tcase_add_test(tc, json_int_strict);
    tcase_add_test(tc, decimal_parse);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, write_atomic_excl);
    tcase_add_test(tc, write_atomic_unreadable_folder);
    tcase_add_test(tc, read_file_refusals);
    tcase_add_test(tc, file_public);
    tcase_add_test(tc, read_pipe);
    tcase_add_test(tc, buf_append);
    suite_add_tcase(s, tc);

    tc = tcase_create("hash");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, sha256_vectors);
    tcase_add_test(tc, sha256_incremental);
    tcase_add_test(tc, sha256_file);
    tcase_add_test(tc, sri);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, error_table);
    tcase_add_test(tc, opts_size);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(core_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
