/* Golden fixtures: a descriptor chain and an audit log made once and
 * committed (tests/data/golden/), so the formats are tested against bytes,
 * not only against the code that writes them. Each has forged twins that
 * must fail with their exact verdict and code.
 *
 *   origin.html, origin.jws  the origin's body and its Patient-Origin
 *                            (manifest_key, 2026-01-01 .. 2027-01-01)
 *   chain.txt                two Patient-Change values, one per line: hop 1
 *                            by key_test ("Tracker Filter"), hop 2 by
 *                            disclosure_key ("Ad Filter")
 *   final.html               the body after both hops
 *   policy.json              trusts the publisher and both middleboxes
 *   audit.log                the Tracker Filter's log (key_test): its
 *                            descriptor (hop 1), an event, checkpoints
 *                            every 2 entries
 *   *_forged_*               the twins (see each test)
 *
 * Ed25519 is deterministic, so the chain is re-made here with the hop API
 * and must equal chain.txt byte for byte. The log's genesis and checkpoint
 * lines carry the time they were written, so it is checked by its SHA-256
 * and by verification instead. GOLDEN_WRITE=DIR writes a fresh set (only
 * for a deliberate format change: then update LOG_SHA256). */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include <patient/patient.h>
#include "util.h"
#include "testutil.h"

#define DATA TEST_SRCDIR "/data/"
#define URL "https://news.example/page.html"
#define ORIGIN "https://news.example"
#define T_ORIGIN ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define T_EXPIRES ((time_t)1798761600) /* 2027-01-01T00:00:00Z */
#define T_HOP1 ((time_t)1780300800)    /* 2026-06-01T08:00:00Z */
#define T_HOP2 ((time_t)1780300830)
#define NOW ((time_t)1780304400) /* 2026-06-01T09:00:00Z */
/* SHA-256 of the committed audit.log. */
#define LOG_SHA256 "c94bd7ac77bad904155ef413088547ccf131c8d6edabbf0ef4df4fe2b8c9c14a"

static const char ORIGIN_BODY[] =
    "<!doctype html>\n<html><head><title>News</title>\n"
    "<script src=\"https://tracker.example/t.js\"></script>\n"
    "</head><body><p>Today's news.</p><div class=\"ad\">BUY NOW</div></body></html>\n";

static patient_seckey *
seckey(const char *name)
{
    size_t n = 0;
    patient_seckey *sk = NULL;
    int enc = 0;
    /* Parse, not load: git does not keep the files' 0600 mode. */
    char *t = tu_fixture(name, &n);

    ck_assert_int_eq(patient_seckey_parse(t, n, NULL, &sk, &enc), PATIENT_OK);
    free(t);
    return sk;
}

/* A committed golden fixture (tests/data/golden/NAME). */
static char *
gold(const char *name, size_t *len)
{
    char p[256];

    snprintf(p, sizeof p, "golden/%s", name);
    return tu_fixture(p, len);
}

/* The chain, made with the hop API at fixed times. */
static void
make_chain(char *v[2], uint8_t **final, size_t *final_len)
{
    patient_seckey *k1 = seckey("key_test.key"), *k2 = seckey("disclosure_key.key");
    patient_hop *h = NULL;
    uint8_t *o1 = NULL;
    size_t l1 = 0;
    const char *b = ORIGIN_BODY;
    size_t a = (size_t)(strstr(b, "<script") - b), z = (size_t)(strstr(b, "</script>") - b) + 9;

    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = k1, .name = "Tracker Filter",
                                                           .service = "tracker-filter", .url = URL,
                                                           .in = (const uint8_t *)b,
                                                           .in_len = strlen(b)},
                                       &h),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, a, z - a, NULL, 0, "tracker.removed", "trk-1",
                                          "third-party tracker", 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_set_tls(h, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(h, T_HOP1, &o1, &l1, &v[0]), PATIENT_OK);
    patient_hop_free(h);
    {
        const char *prev[] = {v[0]};
        const char *s = strstr((const char *)o1, "BUY NOW");
        ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = k2, .name = "Ad Filter",
                                                               .service = "ad-filter", .url = URL,
                                                               .in = o1, .in_len = l1,
                                                               .prev = prev, .nprev = 1},
                                           &h),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_add_edit(h, (size_t)(s - (const char *)o1), 7,
                                              (const uint8_t *)"[ad]", 4, "ads.removed", "ad-1",
                                              NULL, 1),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_set_tls(h, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 1),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_finish(h, T_HOP2, final, final_len, &v[1]), PATIENT_OK);
        patient_hop_free(h);
    }
    free(o1);
    patient_seckey_free(k1);
    patient_seckey_free(k2);
}

/* Verify final body + chain file against the golden policy and origin.jws. */
static patient_report *
verify_files(const char *chain_file, const char *body_file)
{
    size_t blen = 0, plen = 0;
    char *chain = gold(chain_file, NULL), *body = gold(body_file, &blen),
         *pol = gold("policy.json", &plen), *osig = gold("origin.jws", NULL), *detail = NULL;
    const char *vals[4];
    size_t n = 0;
    patient_policy *p = NULL;
    patient_evidence ev;
    patient_verify_opts o;
    patient_report *r = NULL;

    for (char *line = strtok(chain, "\n"); line && n < 4; line = strtok(NULL, "\n"))
        vals[n++] = line;
    osig[strcspn(osig, "\n")] = 0;
    ck_assert_msg(patient_policy_parse(pol, plen, &p, &detail) == PATIENT_OK, "%s", detail);
    memset(&ev, 0, sizeof ev);
    ev.url = URL;
    ev.status = 200;
    ev.body = (const uint8_t *)body;
    ev.body_len = blen;
    ev.changes = vals;
    ev.nchanges = n;
    ev.origin_sig = osig;
    memset(&o, 0, sizeof o);
    o.now = NOW;
    ck_assert_int_eq(patient_verify_evidence(p, &ev, &o, &r), PATIENT_OK);
    patient_policy_free(p);
    free(chain);
    free(body);
    free(pol);
    free(osig);
    return r;
}

static const char *
first_error(const patient_report *r)
{
    char *j = NULL;
    static char code[128];
    cJSON *doc, *it;

    code[0] = 0;
    ck_assert_int_eq(patient_report_json(r, 0, &j), PATIENT_OK);
    doc = cJSON_Parse(j);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "results"))
    {
        if (strcmp(cJSON_GetObjectItem(it, "severity")->valuestring, "error") == 0) {
            snprintf(code, sizeof code, "%s", cJSON_GetObjectItem(it, "code")->valuestring);
            break;
        }
    }
    cJSON_Delete(doc);
    free(j);
    return code[0] ? code : NULL;
}

static void
expect(patient_report *r, patient_verdict v, const char *code)
{
    const char *fe = first_error(r);
    ck_assert_str_eq(patient_verdict_name(patient_report_verdict(r)), patient_verdict_name(v));
    if (code == NULL)
        ck_assert_msg(fe == NULL, "unexpected %s", fe);
    else
        ck_assert_str_eq(fe ? fe : "(none)", code);
    patient_report_free(r);
}

START_TEST(chain_rebuilds_byte_for_byte)
{
    char *v[2], *chain = gold("chain.txt", NULL), *want = NULL, *fin;
    uint8_t *final = NULL;
    size_t final_len = 0, fl = 0;

    make_chain(v, &final, &final_len);
    ck_assert_int_ge(asprintf(&want, "%s\n%s\n", v[0], v[1]), 0);
    ck_assert_str_eq(chain, want);
    fin = gold("final.html", &fl);
    ck_assert_uint_eq(fl, final_len);
    ck_assert_mem_eq(fin, final, fl);
    {
        size_t ol = 0;
        char *ob = gold("origin.html", &ol);
        ck_assert_uint_eq(ol, strlen(ORIGIN_BODY));
        ck_assert_mem_eq(ob, ORIGIN_BODY, ol);
        free(ob);
    }
    free(fin);
    free(want);
    free(chain);
    free(final);
    free(v[0]);
    free(v[1]);
}
END_TEST

START_TEST(chain_verifies)
{
    patient_report *r = verify_files("chain.txt", "final.html");
    char *j = NULL;
    ck_assert_int_eq(patient_report_json(r, 0, &j), PATIENT_OK);
    ck_assert_ptr_nonnull(strstr(j, "\"proof\":\"proven\""));
    free(j);
    expect(r, PATIENT_VERDICT_MODIFIED, NULL);
}
END_TEST

START_TEST(chain_forged_twins)
{
    expect(verify_files("chain_forged_sig.txt", "final.html"), PATIENT_VERDICT_INVALID,
           "change.signature.invalid");
    expect(verify_files("chain_forged_swapped.txt", "final.html"), PATIENT_VERDICT_INVALID,
           "change.chain.broken");
    expect(verify_files("chain_forged_dropped.txt", "final.html"), PATIENT_VERDICT_INVALID,
           "change.chain.broken");
    expect(verify_files("chain.txt", "final_forged.html"), PATIENT_VERDICT_INVALID,
           "body.mismatch");
}
END_TEST

static patient_log_report
verify_log(const char *name)
{
    char p[512];
    patient_log_verify_opts o;
    patient_log_report r;
    patient_pubkey pk;

    snprintf(p, sizeof p, DATA "golden/%s", name);
    ck_assert_int_eq(patient_pubkey_load(DATA "key_test.pub", &pk), PATIENT_OK);
    memset(&o, 0, sizeof o);
    o.pub = &pk;
    o.deep = 1;
    o.require_final_checkpoint = 1;
    ck_assert_int_eq(patient_log_verify(p, &o, &r), r.result);
    return r;
}

START_TEST(log_golden)
{
    size_t n = 0;
    char *t = gold("audit.log", &n), *chain = gold("chain.txt", NULL), hex[65];
    uint8_t h[32];
    patient_log_report r = verify_log("audit.log");
    char *v0 = strtok(chain, "\n");

    ck_assert_int_eq(patient_sha256(t, n, h), PATIENT_OK);
    pt_hex(h, 32, hex);
    ck_assert_str_eq(hex, LOG_SHA256);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 1);
    ck_assert_uint_eq(r.events, 1);
    ck_assert_uint_eq(r.checkpoints, 1);
    /* The signed record in the log is the golden hop 1, byte for byte. */
    ck_assert_ptr_nonnull(strstr(t, v0));
    free(t);
    free(chain);
}
END_TEST

START_TEST(log_forged_twins)
{
    patient_log_report r = verify_log("audit_forged_edited.log");
    ck_assert_str_eq(patient_errname(r.result), patient_errname(PATIENT_ERR_CHAIN));
    ck_assert_str_eq(patient_log_tamper_name(r.tamper), patient_log_tamper_name(PATIENT_LOG_EDITED));
    ck_assert_uint_eq(r.line, 1);
    r = verify_log("audit_forged_rechained.log");
    ck_assert_str_eq(patient_errname(r.result), patient_errname(PATIENT_ERR_CHAIN));
    ck_assert_str_eq(patient_log_tamper_name(r.tamper), patient_log_tamper_name(PATIENT_LOG_EDITED));
    ck_assert_str_eq(r.found, "url");
    r = verify_log("audit_forged_checkpoint.log");
    ck_assert_str_eq(patient_errname(r.result), patient_errname(PATIENT_ERR_SIGNATURE));
    ck_assert_str_eq(patient_log_tamper_name(r.tamper), patient_log_tamper_name(PATIENT_LOG_FORGED));
    r = verify_log("audit_forged_truncated.log");
    ck_assert_str_eq(patient_log_tamper_name(r.tamper),
                     patient_log_tamper_name(PATIENT_LOG_TRUNCATED));
}
END_TEST

/* ---- writing a fresh set (GOLDEN_WRITE=DIR) ---------------------------- */

static void
put(const char *dir, const char *name, const void *p, size_t n)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void
puts_file(const char *dir, const char *name, const char *s)
{
    put(dir, name, s, strlen(s));
}

START_TEST(write_golden)
{
    const char *dir = getenv("GOLDEN_WRITE");
    char *v[2], *s = NULL, *osig = NULL, path[1024], pub1[PATIENT_PUBKEY_B64],
         pub2[PATIENT_PUBKEY_B64], pubp[PATIENT_PUBKEY_B64];
    uint8_t *final = NULL;
    size_t final_len = 0;
    patient_seckey *kp = seckey("manifest_key.key"), *k1 = seckey("key_test.key"),
                   *k2 = seckey("disclosure_key.key");
    patient_pubkey pk;
    patient_log *log = NULL;

    make_chain(v, &final, &final_len);
    puts_file(dir, "origin.html", ORIGIN_BODY);
    ck_assert_int_eq(patient_origin_sign(kp, URL, ORIGIN_BODY, strlen(ORIGIN_BODY), T_ORIGIN,
                                         T_EXPIRES, &osig),
                     PATIENT_OK);
    ck_assert_int_ge(asprintf(&s, "%s\n", osig), 0);
    puts_file(dir, "origin.jws", s);
    free(s);
    ck_assert_int_ge(asprintf(&s, "%s\n%s\n", v[0], v[1]), 0);
    puts_file(dir, "chain.txt", s);
    free(s);
    put(dir, "final.html", final, final_len);
    /* Twins of the chain. */
    {
        char *f = strdup(v[1]);
        size_t i = strlen(f) - 10;
        f[i] = f[i] == 'A' ? 'B' : 'A';
        ck_assert_int_ge(asprintf(&s, "%s\n%s\n", v[0], f), 0);
        puts_file(dir, "chain_forged_sig.txt", s);
        free(s);
        free(f);
    }
    ck_assert_int_ge(asprintf(&s, "%s\n%s\n", v[1], v[0]), 0);
    puts_file(dir, "chain_forged_swapped.txt", s);
    free(s);
    ck_assert_int_ge(asprintf(&s, "%s\n", v[1]), 0);
    puts_file(dir, "chain_forged_dropped.txt", s);
    free(s);
    {
        char *f = malloc(final_len);
        memcpy(f, final, final_len);
        *strstr(f, "news") = 'N';
        put(dir, "final_forged.html", f, final_len);
        free(f);
    }
    /* The policy. */
    patient_seckey_pubkey(kp, &pk);
    patient_pubkey_encode(&pk, pubp);
    patient_seckey_pubkey(k1, &pk);
    patient_pubkey_encode(&pk, pub1);
    patient_seckey_pubkey(k2, &pk);
    patient_pubkey_encode(&pk, pub2);
    ck_assert_int_ge(
        asprintf(&s,
                 "{\n  \"patient\": 1,\n  \"type\": \"policy\",\n  \"publishers\": {\"" ORIGIN
                 "\": [\"%s\"]},\n  \"middleboxes\": [\n"
                 "    {\"name\": \"Tracker Filter\", \"key\": \"%s\", \"reasons\": [\"tracker.*\"]},\n"
                 "    {\"name\": \"Ad Filter\", \"key\": \"%s\", \"reasons\": [\"ads.*\"], \"insert\": true}\n"
                 "  ]\n}\n",
                 pubp, pub1, pub2),
        0);
    puts_file(dir, "policy.json", s);
    free(s);
    /* The log of the Tracker Filter: its descriptor (hop 1), an event,
     * checkpoints every 2 entries. */
    snprintf(path, sizeof path, "%s/audit.log", dir);
    remove(path);
    ck_assert_int_eq(patient_log_open(path, k1, 2, &log), PATIENT_OK);
    ck_assert_int_eq(patient_log_append_change(log, v[0], NULL), PATIENT_OK);
    ck_assert_int_eq(patient_log_append_event(log, "body.too_large", URL, "70000000 bytes > cap", NULL),
                     PATIENT_OK);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    {
        uint8_t *t = NULL, h[32];
        size_t n = 0;
        char hex[65], *u, *l2, *nl;
        ck_assert_int_eq(pt_read_file(path, 1u << 20, &t, &n), PATIENT_OK);
        patient_sha256(t, n, h);
        pt_hex(h, 32, hex);
        printf("LOG_SHA256 %s\n", hex);
        /* edited: one byte of line 1's url ("news" -> "nEws") */
        u = strstr((char *)t, "\"url\":\"https://news");
        u[16] = 'E';
        put(dir, "audit_forged_edited.log", t, n);
        /* re-chained: the same edit, every later prev fixed up */
        {
            char *lines[64];
            size_t nl_ = 0;
            pt_buf b = {0};
            uint8_t hh[32];
            char hx[65];
            for (char *p = (char *)t; p < (char *)t + n && nl_ < 64; p = nl + 1) {
                nl = memchr(p, '\n', (size_t)((char *)t + n - p));
                lines[nl_++] = p;
                *nl = 0;
            }
            for (size_t i = 1; i < nl_; i++) {
                char *pv = strstr(lines[i], "\"prev\":\"");
                /* prev: SHA-256 of the previous line without its newline */
                patient_sha256(lines[i - 1], strlen(lines[i - 1]), hh);
                pt_hex(hh, 32, hx);
                memcpy(pv + 8, hx, 64);
            }
            for (size_t i = 0; i < nl_; i++) {
                pt_buf_append(&b, lines[i], strlen(lines[i]));
                pt_buf_append(&b, "\n", 1);
            }
            put(dir, "audit_forged_rechained.log", b.data, b.len);
            pt_buf_free(&b);
        }
        free(t);
        ck_assert_int_eq(pt_read_file(path, 1u << 20, &t, &n), PATIENT_OK);
        /* checkpoint: one character of the first checkpoint's signature */
        u = strstr((char *)t, "\"kind\":\"checkpoint\"");
        ck_assert_ptr_nonnull(u);
        u = strstr(u, "\"sig\":\"");
        ck_assert_ptr_nonnull(u);
        u = strchr(u + 7, '"') - 10; /* inside the signature, not its last bits */
        *u = *u == 'A' ? 'B' : 'A';
        put(dir, "audit_forged_checkpoint.log", t, n);
        free(t);
        ck_assert_int_eq(pt_read_file(path, 1u << 20, &t, &n), PATIENT_OK);
        /* truncated: the final checkpoint dropped */
        l2 = (char *)t + n - 1;
        while (l2 > (char *)t && l2[-1] != '\n')
            l2--;
        put(dir, "audit_forged_truncated.log", t, (size_t)(l2 - (char *)t));
        free(t);
    }
    free(osig);
    free(final);
    free(v[0]);
    free(v[1]);
    patient_seckey_free(kp);
    patient_seckey_free(k1);
    patient_seckey_free(k2);
}
END_TEST

static Suite *
golden_suite(void)
{
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("golden");
    if (getenv("GOLDEN_WRITE")) {
        tcase_add_test(tc, write_golden);
    } else {
        tcase_add_test(tc, chain_rebuilds_byte_for_byte);
        tcase_add_test(tc, chain_verifies);
        tcase_add_test(tc, chain_forged_twins);
        tcase_add_test(tc, log_golden);
        tcase_add_test(tc, log_forged_twins);
    }
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(golden_suite());
    int failed;

    if (sodium_init() < 0)
        return 1;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
