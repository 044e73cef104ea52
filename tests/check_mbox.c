/* Check tests for the middlebox pipeline (patient/mbox.h) as srv_patient
 * drives it: gzip in -> gzip out with the descriptor over the decoded
 * bytes, logged before release; pass-through cases; forged twins (corrupt
 * gzip, unusable earlier hop) fail with specific codes and log nothing;
 * the folder of descriptors served by reference (store, prune by age and
 * count, never a locked one). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <patient/patient.h>
#include <patient/mbox.h>
#include "testutil.h"

static const char rules_json[] =
    "{\"patient\":1,\"type\":\"rules\",\"rules\":["
    "{\"id\":\"trk\",\"match\":{\"literal\":\"<script src=\\\"https://tracker.example/t.js\\\"></script>\"},"
    "\"action\":\"remove\",\"reason\":\"tracker.removed\",\"disclose\":true},"
    "{\"id\":\"ban\",\"match\":{\"literal\":\"<body>\"},\"action\":\"insert_after\","
    "\"text\":\"<p>notice</p>\",\"reason\":\"banner.inserted\"}]}";

static const char page[] =
    "<html><head><script src=\"https://tracker.example/t.js\"></script></head>"
    "<body><h1>Hello</h1></body></html>\n";
static const char edited[] = "<html><head></head><body><p>notice</p><h1>Hello</h1></body></html>\n";
static const char url[] = "http://127.0.0.1:8080/index.html";

/* A response of url with this media type and body, at the tests' fixed
 * time; a test sets what else it needs (encoding, prev, tls). */
static patient_mbox_input
response(const char *media_type, const void *body, size_t len)
{
    return (patient_mbox_input){.url = url, .media_type = media_type, .body = body, .len = len,
                                .now = 1795000000};
}

static patient_seckey *sk;
static patient_rules *rules;
static patient_log *alog;
static patient_mbox *mb;
static char dir[64], logpath[128];

static patient_pubkey mpk;

static void
setup(void)
{
    char *detail = NULL;

    tu_mkdtemp(dir, sizeof dir, "check_mbox");
    snprintf(logpath, sizeof logpath, "%s/audit.log", dir);
    ck_assert_int_eq(patient_keypair_generate(&mpk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_rules_parse(rules_json, strlen(rules_json), &rules, &detail), PATIENT_OK);
    free(detail);
    ck_assert_int_eq(patient_log_open(logpath, sk, 0, &alog), PATIENT_OK);
    ck_assert_int_eq(patient_log_set_sync(alog, PATIENT_LOG_SYNC_NONE), PATIENT_OK);
    ck_assert_int_eq(patient_mbox_new(sk, "check", "content-filter", NULL, rules, alog, 0, &mb),
                     PATIENT_OK);
}

static void
teardown(void)
{
    patient_mbox_free(mb);
    (void)patient_log_close(alog);
    patient_rules_free(rules);
    patient_seckey_free(sk);
    unlink(logpath);
    rmdir(dir);
}

static void
sha(const void *p, size_t n, uint8_t out[PATIENT_SHA256_BYTES])
{
    ck_assert_int_eq(patient_sha256(p, n, out), PATIENT_OK);
}

START_TEST(gzip_in_gzip_out)
{
    uint8_t *gz = NULL, *dec = NULL, h[PATIENT_SHA256_BYTES];
    size_t gzlen = 0, declen = 0;
    patient_mbox_result res;
    patient_change *c = NULL;
    uint64_t before = patient_log_size(alog);

    ck_assert_int_eq(patient_gzip_encode((const uint8_t *)page, strlen(page), &gz, &gzlen), PATIENT_OK);
    patient_mbox_input in = response("text/html", gz, gzlen);
    in.content_encoding = "gzip";
    ck_assert_int_eq(patient_mbox_process(mb, &in, &res), PATIENT_OK);
    ck_assert_int_eq(res.changed, 1);
    ck_assert_ptr_nonnull(res.value);
    ck_assert_uint_eq(res.nedits, 2);
    /* gzip out: decodes to the edited page */
    ck_assert(res.len >= 2 && res.body[0] == 0x1f && res.body[1] == 0x8b);
    ck_assert_int_eq(patient_gzip_decode(res.body, res.len, 0, &dec, &declen), PATIENT_OK);
    ck_assert_uint_eq(declen, strlen(edited));
    ck_assert(memcmp(dec, edited, declen) == 0);
    /* the descriptor is over the decoded bytes, not the gzip bytes */
    ck_assert_int_eq(patient_change_parse(res.value, strlen(res.value), &c), PATIENT_OK);
    sha(page, strlen(page), h);
    ck_assert(memcmp(c->in.hash, h, sizeof h) == 0);
    ck_assert_uint_eq(c->in.size, strlen(page));
    sha(edited, strlen(edited), h);
    ck_assert(memcmp(c->out.hash, h, sizeof h) == 0);
    ck_assert_uint_eq(c->out.size, strlen(edited));
    ck_assert_str_eq(c->url, url);
    ck_assert_uint_eq(c->hop, 1);
    /* logged before release: exactly one new entry, the change */
    ck_assert_uint_eq(patient_log_size(alog), before + 1);
    ck_assert_uint_eq(res.log_seq, before);
    patient_change_free(c);
    patient_mbox_result_free(&res);
    free(dec);
    free(gz);
}
END_TEST

/* Forged twin: a corrupt gzip body is refused with GZIP and nothing is
 * logged (the caller passes the original body unchanged). */
START_TEST(gzip_corrupt)
{
    uint8_t *gz = NULL;
    size_t gzlen = 0;
    patient_mbox_result res;
    uint64_t before = patient_log_size(alog);

    ck_assert_int_eq(patient_gzip_encode((const uint8_t *)page, strlen(page), &gz, &gzlen), PATIENT_OK);
    gz[gzlen / 2] ^= 0x55;
    gz[gzlen - 6] ^= 0xff; /* CRC/size trailer */
    patient_mbox_input in = response("text/html", gz, gzlen);
    in.content_encoding = "gzip";
    ck_assert_int_eq(patient_mbox_process(mb, &in, &res), PATIENT_ERR_GZIP);
    ck_assert_ptr_null(res.body);
    ck_assert_ptr_null(res.value);
    ck_assert_uint_eq(patient_log_size(alog), before);
    free(gz);
}
END_TEST

START_TEST(identity_chain_two_hops)
{
    patient_mbox_result r1, r2;
    const char *prev[1];
    patient_change *c = NULL;
    uint8_t h[PATIENT_SHA256_BYTES];

    patient_mbox_input in = response("text/html", page, strlen(page));
    ck_assert_int_eq(patient_mbox_process(mb, &in, &r1), PATIENT_OK);
    ck_assert_int_eq(r1.changed, 1);
    ck_assert_uint_eq(r1.len, strlen(edited));
    ck_assert(memcmp(r1.body, edited, r1.len) == 0);
    /* a second middlebox downstream: its hop links to ours; nothing matches
     * any more except <body>, so it inserts a second notice */
    prev[0] = r1.value;
    in = response("text/html", r1.body, r1.len);
    in.content_encoding = "identity";
    in.prev = prev;
    in.nprev = 1;
    ck_assert_int_eq(patient_mbox_process(mb, &in, &r2), PATIENT_OK);
    ck_assert_int_eq(r2.changed, 1);
    ck_assert_int_eq(patient_change_parse(r2.value, strlen(r2.value), &c), PATIENT_OK);
    ck_assert_uint_eq(c->hop, 2);
    ck_assert_int_eq(c->has_prev, 1);
    sha(r1.value, strlen(r1.value), h);
    ck_assert(memcmp(c->prev, h, sizeof h) == 0);
    patient_change_free(c);
    patient_mbox_result_free(&r1);
    patient_mbox_result_free(&r2);
}
END_TEST

/* Deferred durability with LogSync each: the change comes back with a
 * mark, waiting on it is what makes it durable, and the entry is the one
 * an undeferred process writes (same log, it verifies). An unchanged body
 * has nothing to wait for. */
START_TEST(deferred_sync)
{
    patient_mbox_result r1, r2;
    uint64_t appends = 0, s0 = 0, s1 = 0;
    patient_log_report rep;
    patient_log_verify_opts o = {0};
    patient_pubkey pk;

    ck_assert_int_eq(patient_log_set_sync(alog, PATIENT_LOG_SYNC_EACH), PATIENT_OK);
    patient_mbox_set_deferred_sync(mb, 1);
    patient_log_stats(alog, &appends, &s0);
    patient_mbox_input in = response("text/html", page, strlen(page));
    ck_assert_int_eq(patient_mbox_process(mb, &in, &r1), PATIENT_OK);
    ck_assert_int_eq(r1.changed, 1);
    ck_assert_uint_gt(r1.durable_at, 0);
    ck_assert_int_eq(patient_mbox_wait_durable(mb, &r1), PATIENT_OK);
    patient_log_stats(alog, &appends, &s1);
    ck_assert_uint_eq(appends, 1);
    ck_assert_uint_eq(s1, s0 + 1);
    in = response("text/plain", "plain", 5);
    ck_assert_int_eq(patient_mbox_process(mb, &in, &r2), PATIENT_OK);
    ck_assert_int_eq(r2.changed, 0);
    ck_assert_int_eq(patient_mbox_wait_durable(mb, &r2), PATIENT_OK);
    patient_mbox_set_deferred_sync(mb, 0);
    patient_mbox_result_free(&r2);
    in = response("text/html", page, strlen(page));
    ck_assert_int_eq(patient_mbox_process(mb, &in, &r2), PATIENT_OK);
    ck_assert_uint_eq(r2.durable_at, 0);
    ck_assert_uint_eq(r2.log_seq, r1.log_seq + 1);
    patient_mbox_result_free(&r1);
    patient_mbox_result_free(&r2);
    patient_seckey_pubkey(sk, &pk);
    o.pub = &pk;
    o.deep = 1;
    ck_assert_int_eq(patient_log_verify(logpath, &o, &rep), PATIENT_OK);
    ck_assert_uint_eq(rep.changes, 2);
}
END_TEST

/* Forged twin: an arriving Patient-Change value that is not a descriptor
 * stops the hop (no change issued, nothing logged). */
START_TEST(bad_prev_refused)
{
    patient_mbox_result res;
    const char *prev[1] = {"eyJhbGciOiJub25lIn0.e30.AAAA"};
    uint64_t before = patient_log_size(alog);
    patient_mbox_input in = response("text/html", page, strlen(page));
    in.prev = prev;
    in.nprev = 1;
    patient_err err = patient_mbox_process(mb, &in, &res);

    ck_assert_int_ne(err, PATIENT_OK);
    ck_assert_ptr_null(res.value);
    ck_assert_uint_eq(patient_log_size(alog), before);
}
END_TEST

/* The input struct: none, or one from a newer header (a size larger than
 * this library's) is refused before anything is looked at or logged. */
START_TEST(input_refused)
{
    patient_mbox_input in = response("text/html", page, strlen(page));
    patient_mbox_result res;
    uint64_t before = patient_log_size(alog);

    ck_assert_int_eq(patient_mbox_process(mb, NULL, &res), PATIENT_ERR_ARG);
    ck_assert_int_eq(res.changed, 0);
    in.size = sizeof in + 1;
    ck_assert_int_eq(patient_mbox_process(mb, &in, &res), PATIENT_ERR_ARG);
    ck_assert_ptr_null(res.value);
    in.size = sizeof in;
    in.url = NULL;
    ck_assert_int_eq(patient_mbox_process(mb, &in, &res), PATIENT_ERR_ARG);
    ck_assert_uint_eq(patient_log_size(alog), before);
}
END_TEST

START_TEST(pass_through)
{
    patient_mbox_result res;
    static const char css[] = "body { color: black }\n";
    static const char wk[] = "http://127.0.0.1:8080/.well-known/patient/manifest.json";
    uint64_t before = patient_log_size(alog);

    patient_mbox_input in = response("text/css", css, strlen(css));
    ck_assert_int_eq(patient_mbox_process(mb, &in, &res), PATIENT_OK);
    ck_assert_int_eq(res.changed, 0);
    ck_assert_ptr_null(res.value);
    /* unchanged bodies are not copied: the caller sends its own */
    ck_assert_ptr_null(res.body);
    ck_assert_uint_eq(res.len, 0);
    ck_assert_str_eq(res.skipped, "no.rules.matched");
    patient_mbox_result_free(&res);
    /* the signatures endpoints check against are never changed */
    in = response("text/html", page, strlen(page));
    in.url = wk;
    ck_assert_int_eq(patient_mbox_process(mb, &in, &res), PATIENT_OK);
    ck_assert_int_eq(res.changed, 0);
    ck_assert_str_eq(res.skipped, "patient.well_known");
    patient_mbox_result_free(&res);
    /* an encoding we cannot decode passes */
    in = response("text/html", page, strlen(page));
    in.content_encoding = "br";
    ck_assert_int_eq(patient_mbox_process(mb, &in, &res), PATIENT_OK);
    ck_assert_int_eq(res.changed, 0);
    ck_assert_str_eq(res.skipped, "encoding.unsupported");
    patient_mbox_result_free(&res);
    ck_assert_uint_eq(patient_log_size(alog), before);
}
END_TEST

START_TEST(too_large_logged)
{
    patient_mbox *small = NULL;
    patient_mbox_result res;
    uint64_t before = patient_log_size(alog);

    ck_assert_int_eq(patient_mbox_new(sk, "check", NULL, NULL, rules, alog, 16, &small), PATIENT_OK);
    patient_mbox_input in = response("text/html", page, strlen(page));
    ck_assert_int_eq(patient_mbox_process(small, &in, &res), PATIENT_OK);
    ck_assert_int_eq(res.changed, 0);
    ck_assert_str_eq(res.skipped, "body.too_large");
    ck_assert_ptr_null(res.body);
    ck_assert_uint_eq(patient_log_size(alog), before + 1); /* the event */
    patient_mbox_result_free(&res);
    patient_mbox_free(small);
}
END_TEST

/* What Squid passes with adaptation_meta, as the descriptor will say it;
 * malformed values are refused, and "-" means plain HTTP only for http://. */
START_TEST(tls_from_squid)
{
    patient_tls_facts t;
    patient_mbox_result res;
    patient_change *c = NULL;

    ck_assert_int_eq(patient_tls_facts_from_squid("https://a.example/", "TLS/1.3",
                                                  "TLS_AES_256_GCM_SHA384", "-", &t),
                     PATIENT_OK);
    ck_assert_str_eq(t.version, "TLSv1.3");
    ck_assert_str_eq(t.cipher, "TLS_AES_256_GCM_SHA384");
    ck_assert_int_eq(t.verified, 1);
    ck_assert_int_eq(patient_tls_facts_from_squid(
                         "https://a.example/", "TLS/1.2", "AES128-SHA",
                         "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY@depth=0", &t),
                     PATIENT_OK);
    ck_assert_str_eq(t.version, "TLSv1.2");
    ck_assert_int_eq(t.verified, 0);
    ck_assert_int_eq(patient_tls_facts_from_squid("http://a.example/", "-", "-", "-", &t), PATIENT_OK);
    ck_assert_str_eq(t.version, PATIENT_TLS_NONE);
    ck_assert_str_eq(t.cipher, "");
    ck_assert_int_eq(t.verified, 0);
    ck_assert_int_eq(patient_tls_facts_from_squid("https://a.example/", "-", "-", "-", &t),
                     PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(patient_tls_facts_from_squid("https://a.example/", NULL, "X", "-", &t),
                     PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(patient_tls_facts_from_squid("https://a.example/", "TLS/9", "X", "-", &t),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_tls_facts_from_squid("https://a.example/", "TLS/1.3", "A B", "-", &t),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_tls_facts_from_squid("https://a.example/", "TLS/1.3", "-", "-", &t),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_tls_facts_from_squid("https://a.example/", "TLS/1.3", "X", "", &t),
                     PATIENT_ERR_PARSE);
    /* and into the descriptor */
    ck_assert_int_eq(patient_tls_facts_from_squid(url, "TLS/1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
                                                  "-", &t),
                     PATIENT_OK);
    patient_mbox_input in = response("text/html", page, strlen(page));
    in.tls = &t;
    ck_assert_int_eq(patient_mbox_process(mb, &in, &res), PATIENT_OK);
    ck_assert_int_eq(res.changed, 1);
    ck_assert_int_eq(patient_change_parse(res.value, strlen(res.value), &c), PATIENT_OK);
    ck_assert_int_eq(c->has_tls, 1);
    ck_assert_str_eq(c->tls.version, "TLSv1.2");
    ck_assert_str_eq(c->tls.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
    ck_assert_int_eq(c->tls.verified, 1);
    patient_change_free(c);
    patient_mbox_result_free(&res);
}
END_TEST

/* res says the response passes as it came, for this reason: no descriptor,
 * and no body (the caller sends its own). */
static void
assert_passed(const patient_mbox_result *res, const char *why)
{
    ck_assert_int_eq(res->changed, 0);
    ck_assert_str_eq(res->skipped, why);
    ck_assert_ptr_null(res->value);
    ck_assert_ptr_null(res->body);
}

/* A regex rule meeting a hostile 5 MB body stops at the rule set's work
 * limit: nothing half applied, the body passes as it came, an event is
 * logged. Its twin, an ordinary page through the same rules, is changed. */
START_TEST(rule_limit_passes_logged)
{
    static const char lim_json[] =
        "{\"patient\":1,\"type\":\"rules\",\"limits\":{\"work_per_byte\":2},\"rules\":["
        "{\"id\":\"ban\",\"match\":{\"literal\":\"<body>\"},\"action\":\"insert_after\","
        "\"text\":\"<p>notice</p>\",\"reason\":\"banner.inserted\"},"
        "{\"id\":\"trk\",\"match\":{\"regex\":\"<script[^>]*src=[^>]*tracker[^>]*>\"},"
        "\"action\":\"remove\",\"reason\":\"tracker.removed\"}]}";
    patient_rules *lr = NULL;
    patient_mbox *lm = NULL;
    patient_mbox_result res;
    size_t n = 5u * 1000 * 1000, i;
    uint8_t *body = malloc(n);
    uint64_t before = patient_log_size(alog);

    ck_assert_ptr_nonnull(body);
    memcpy(body, "<body>", 6);
    for (i = 6; i < n; i++)
        body[i] = (uint8_t)"<script "[i % 8];
    ck_assert_int_eq(patient_rules_parse(lim_json, strlen(lim_json), &lr, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_mbox_new(sk, "check", NULL, NULL, lr, alog, n, &lm), PATIENT_OK);
    patient_mbox_input in = response("text/html", body, n);
    ck_assert_int_eq(patient_mbox_process(lm, &in, &res), PATIENT_OK);
    assert_passed(&res, "rules.limit");
    ck_assert_uint_eq(patient_log_size(alog), before + 1);
    {
        patient_log_iter *it = NULL;
        const patient_log_entry *x = NULL, *last = NULL;
        ck_assert_int_eq(patient_log_iter_open(logpath, &it), PATIENT_OK);
        while (patient_log_iter_next(it, &x) == PATIENT_OK && x != NULL)
            if (x->kind == PATIENT_LOG_KIND_EVENT) {
                ck_assert_str_eq(x->event, "rules.limit");
                last = x;
            }
        ck_assert_ptr_nonnull(last);
        patient_log_iter_close(it);
    }
    patient_mbox_result_free(&res);
    /* twin: an ordinary page through the same rules is changed */
    in = response("text/html", page, strlen(page));
    ck_assert_int_eq(patient_mbox_process(lm, &in, &res), PATIENT_OK);
    ck_assert_int_eq(res.changed, 1);
    ck_assert_uint_eq(res.nedits, 2);
    patient_mbox_result_free(&res);
    patient_mbox_free(lm);
    patient_rules_free(lr);
    free(body);
}
END_TEST

/* After a change logged as entry `before`: the n bytes of body go through
 * cm and pass unchanged with a "rules.limit" event; from entry `before`
 * the shared log then holds the change with its nedits edits and the
 * event with its detail, and it verifies deep with one change. Closes the
 * shared log. */
static void
assert_passes_with_limit(patient_mbox *cm, const uint8_t *body, size_t n, uint64_t before,
                         size_t nedits, const char *detail)
{
    patient_mbox_input in = response("text/html", body, n);
    patient_mbox_result res;
    patient_log_verify_opts vo = {0};
    patient_log_report rep;
    patient_log_iter *it = NULL;
    const patient_log_entry *x = NULL;
    size_t i;

    ck_assert_int_eq(patient_mbox_process(cm, &in, &res), PATIENT_OK);
    assert_passed(&res, "rules.limit");
    ck_assert_uint_eq(patient_log_size(alog), before + 2);
    patient_mbox_result_free(&res);
    ck_assert_int_eq(patient_log_close(alog), PATIENT_OK);
    alog = NULL;
    ck_assert_int_eq(patient_log_iter_open(logpath, &it), PATIENT_OK);
    for (i = 0; patient_log_iter_next(it, &x) == PATIENT_OK && x != NULL; i++) {
        if (i == before) {
            ck_assert_int_eq(x->kind, PATIENT_LOG_KIND_CHANGE);
            ck_assert_uint_eq(x->n_edits, nedits);
        }
        if (i == before + 1) {
            ck_assert_int_eq(x->kind, PATIENT_LOG_KIND_EVENT);
            ck_assert_str_eq(x->event, "rules.limit");
            ck_assert_str_eq(x->detail, detail);
        }
    }
    ck_assert_uint_ge(i, before + 2);
    patient_log_iter_close(it);
    vo.pub = &mpk;
    vo.deep = 1;
    ck_assert_int_eq(patient_log_verify(logpath, &vo, &rep), PATIENT_OK);
    ck_assert_uint_eq(rep.changes, 1);
}

/* Rules that match once per edit up to the descriptor cap: exactly
 * PATIENT_MAX_EDITS edits are signed, logged and verifiable; one match more
 * and the hop refuses the edit before anything is signed, so the response
 * passes as it came with a "rules.limit" event instead of a change whose
 * log entry is refused. */
START_TEST(edit_cap_from_rules)
{
    static const char cap_json[] =
        "{\"patient\":1,\"type\":\"rules\",\"rules\":["
        "{\"id\":\"r\",\"match\":{\"literal\":\"a\"},\"action\":\"insert_after\","
        "\"text\":\"x\",\"reason\":\"r\",\"max_matches\":100000}]}";
    patient_rules *cr = NULL;
    patient_mbox *cm = NULL;
    patient_mbox_result res;
    size_t n = 2 * ((size_t)PATIENT_MAX_EDITS + 1), i;
    uint8_t *body = malloc(n);
    uint64_t before;

    ck_assert_ptr_nonnull(body);
    for (i = 0; i < n; i++)
        body[i] = (uint8_t)"ab"[i % 2];
    ck_assert_int_eq(patient_rules_parse(cap_json, strlen(cap_json), &cr, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_mbox_new(sk, "check", NULL, NULL, cr, alog, n, &cm), PATIENT_OK);
    /* PATIENT_MAX_EDITS matches: changed and logged */
    before = patient_log_size(alog);
    patient_mbox_input in = response("text/html", body, n - 2);
    ck_assert_int_eq(patient_mbox_process(cm, &in, &res), PATIENT_OK);
    ck_assert_int_eq(res.changed, 1);
    ck_assert_uint_eq(res.nedits, PATIENT_MAX_EDITS);
    ck_assert_uint_eq(res.len, n - 2 + PATIENT_MAX_EDITS);
    ck_assert_ptr_nonnull(res.value);
    ck_assert_uint_eq(patient_log_size(alog), before + 1);
    patient_mbox_result_free(&res);
    /* one match more: passed unchanged, an event says why */
    assert_passes_with_limit(cm, body, n, before, PATIENT_MAX_EDITS,
                             "rules matched more edits than one descriptor holds; "
                             "response passed unchanged");
    patient_mbox_free(cm);
    patient_rules_free(cr);
    free(body);
}
END_TEST

/* Rules whose matches carry the longest reason and rule codes: the
 * change's audit log line (its descriptor plus the reasons and rules the
 * entry repeats) reaches PATIENT_LOG_LINE_MAX long before PATIENT_MAX_EDITS
 * or PATIENT_JWS_MAX. 1000 matches are signed and logged; at 2000 the hop
 * refuses at its finish, before the descriptor leaves the hop, and the
 * response passes as it came with a "rules.limit" event saying why. */
START_TEST(log_line_cap_from_rules)
{
    char code[PATIENT_RULES_MAX_ID + 1], json[1024];
    patient_rules *cr = NULL;
    patient_mbox *cm = NULL;
    patient_mbox_result res;
    size_t n = 4000, i;
    uint8_t *body = malloc(n);
    uint64_t before;

    ck_assert_ptr_nonnull(body);
    for (i = 0; i < n; i++)
        body[i] = (uint8_t)"ab"[i % 2];
    memset(code, 'r', PATIENT_RULES_MAX_ID);
    code[PATIENT_RULES_MAX_ID] = 0;
    snprintf(json, sizeof json,
             "{\"patient\":1,\"type\":\"rules\",\"rules\":["
             "{\"id\":\"R%s\",\"match\":{\"literal\":\"a\"},\"action\":\"insert_after\","
             "\"text\":\"x\",\"reason\":\"%s\",\"max_matches\":100000}]}",
             code + 1, code);
    ck_assert_int_eq(patient_rules_parse(json, strlen(json), &cr, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_mbox_new(sk, "check", NULL, NULL, cr, alog, n, &cm), PATIENT_OK);
    before = patient_log_size(alog);
    patient_mbox_input in = response("text/html", body, n / 2);
    ck_assert_int_eq(patient_mbox_process(cm, &in, &res), PATIENT_OK);
    ck_assert_int_eq(res.changed, 1);
    ck_assert_uint_eq(res.nedits, n / 4);
    ck_assert_uint_eq(patient_log_size(alog), before + 1);
    patient_mbox_result_free(&res);
    assert_passes_with_limit(cm, body, n, before, n / 4,
                             "the change would not fit one audit log line; "
                             "response passed unchanged");
    patient_mbox_free(cm);
    patient_rules_free(cr);
    free(body);
}
END_TEST

/* When a response may be changed at all: each accepted case has a refused
 * twin that differs in one thing. */
START_TEST(http_may_change)
{
    static const char *const no_transform[] = {
        "no-transform", "No-Transform", "public, no-transform", "no-transform, max-age=60",
        "max-age=0,no-transform", "\tno-transform;x", "no-transform=1",
    };
    static const char *const other[] = {
        "public, max-age=60", "no-transformer", "x-no-transform", "private,no-store", "",
    };

    ck_assert_ptr_null(patient_mbox_may_change(200, NULL, 0));
    ck_assert_str_eq(patient_mbox_may_change(206, NULL, 0), "partial content");
    ck_assert_str_eq(patient_mbox_may_change(206, NULL, PATIENT_MBOX_IGNORE_NO_TRANSFORM),
                     "partial content");
    for (size_t i = 0; i < sizeof no_transform / sizeof *no_transform; i++) {
        ck_assert_msg(patient_mbox_may_change(200, no_transform[i], 0) != NULL &&
                          strcmp(patient_mbox_may_change(200, no_transform[i], 0),
                                 "Cache-Control: no-transform") == 0,
                      "'%s' not honoured", no_transform[i]);
        ck_assert_ptr_null(
            patient_mbox_may_change(200, no_transform[i], PATIENT_MBOX_IGNORE_NO_TRANSFORM));
    }
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        ck_assert_msg(patient_mbox_may_change(200, other[i], 0) == NULL, "'%s' refused",
                      other[i]);
}
END_TEST

/* The ISTag a middlebox expects for key pk, name and rule bytes: "pt1-" and
 * 20 hex digits of SHA-256(key id, public key, name, NUL, SHA-256(bytes)). */
static void
istag_of(const patient_pubkey *pk, const char *name, const char *bytes, char out[25])
{
    uint8_t rh[32], h[32], buf[512];
    size_t n = 0;

    ck_assert_int_eq(patient_sha256(bytes, strlen(bytes), rh), PATIENT_OK);
    memcpy(buf, pk->id, sizeof pk->id);
    n += sizeof pk->id;
    memcpy(buf + n, pk->pk, sizeof pk->pk);
    n += sizeof pk->pk;
    memcpy(buf + n, name, strlen(name) + 1);
    n += strlen(name) + 1;
    memcpy(buf + n, rh, sizeof rh);
    n += sizeof rh;
    ck_assert_int_eq(patient_sha256(buf, n, h), PATIENT_OK);
    strcpy(out, "pt1-");
    for (int i = 0; i < 10; i++)
        sprintf(out + 4 + 2 * i, "%02x", h[i]);
}

/* The ISTag names the rule bytes that were loaded: rewriting the file after
 * loading changes nothing (an ISTag from a second read of the file would
 * name the new rules), and another name, key or rule file changes it. */
START_TEST(istag_names_loaded_rules)
{
    static const char other_json[] =
        "{\"patient\":1,\"type\":\"rules\",\"rules\":["
        "{\"id\":\"ban\",\"match\":{\"literal\":\"<body>\"},\"action\":\"insert_after\","
        "\"text\":\"<p>other</p>\",\"reason\":\"banner.inserted\"}]}";
    char path[128], d[64], tag[PATIENT_MBOX_ISTAG_BYTES], want[25], *detail = NULL;
    patient_rules *loaded = NULL, *again = NULL;
    patient_pubkey pk1, pk2;
    patient_seckey *sk1, *sk2;
    uint8_t rh[32], h[32];
    FILE *f;

    tu_mkdtemp(d, sizeof d, "check_mbox_istag");
    ck_assert_int_eq(patient_keypair_generate(&pk1, &sk1), PATIENT_OK);
    snprintf(path, sizeof path, "%s/rules.json", d);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs(rules_json, f);
    fclose(f);
    ck_assert_int_eq(patient_rules_load(path, &loaded, &detail), PATIENT_OK);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs(other_json, f);
    fclose(f);
    patient_rules_sha256(loaded, rh);
    ck_assert_int_eq(patient_sha256(rules_json, strlen(rules_json), h), PATIENT_OK);
    ck_assert_mem_eq(rh, h, 32);
    ck_assert_int_eq(patient_mbox_istag(&pk1, "check", loaded, tag), PATIENT_OK);
    istag_of(&pk1, "check", rules_json, want);
    ck_assert_str_eq(tag, want);
    ck_assert_uint_eq(strlen(tag), 24);
    /* The same rules parsed from memory: the same tag. */
    ck_assert_int_eq(patient_rules_parse(rules_json, strlen(rules_json), &again, &detail),
                     PATIENT_OK);
    ck_assert_int_eq(patient_mbox_istag(&pk1, "check", again, tag), PATIENT_OK);
    ck_assert_str_eq(tag, want);
    patient_rules_free(again);
    again = NULL;
    /* Twins: the file as it is now, another name, another key. */
    ck_assert_int_eq(patient_rules_load(path, &again, &detail), PATIENT_OK);
    ck_assert_int_eq(patient_mbox_istag(&pk1, "check", again, tag), PATIENT_OK);
    istag_of(&pk1, "check", other_json, want);
    ck_assert_str_eq(tag, want);
    istag_of(&pk1, "check", rules_json, want);
    ck_assert_str_ne(tag, want);
    ck_assert_int_eq(patient_mbox_istag(&pk1, "checks", loaded, tag), PATIENT_OK);
    ck_assert_str_ne(tag, want);
    ck_assert_int_eq(patient_keypair_generate(&pk2, &sk2), PATIENT_OK);
    ck_assert_int_eq(patient_mbox_istag(&pk2, "check", loaded, tag), PATIENT_OK);
    ck_assert_str_ne(tag, want);
    ck_assert_int_eq(patient_mbox_istag(NULL, "check", loaded, tag), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_mbox_istag(&pk1, "check", NULL, tag), PATIENT_ERR_ARG);
    patient_seckey_free(sk2);
    patient_rules_free(again);
    patient_rules_free(loaded);
    patient_seckey_free(sk1);
    unlink(path);
    rmdir(d);
}
END_TEST

START_TEST(http_drop_headers)
{
    static const char *const want[] = {"Content-Length", "ETag", "Content-MD5", "Digest",
                                       "Content-Digest", "Repr-Digest", "Unencoded-Digest",
                                       "Accept-Ranges"};
    const char *const *h = patient_mbox_drop_headers();
    size_t n = 0;

    while (h[n])
        n++;
    ck_assert_uint_eq(n, sizeof want / sizeof *want);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(h[i], want[i]);
}
END_TEST

/* ---- descriptors by reference: store and prune ------------------------ */

static char rdir[64];

static void
ref_put(const char *id, time_t age, time_t now)
{
    const char *p = tu_path(rdir, id);
    struct timespec ts[2] = {{now - age, 0}, {now - age, 0}};
    FILE *f = fopen(p, "w");

    ck_assert_ptr_nonnull(f);
    fputs("x.y.z", f);
    fclose(f);
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static int
ref_has(const char *id)
{
    return access(tu_path(rdir, id), F_OK) == 0;
}

START_TEST(refdir_store)
{
    int fd = -1, fd2 = -1;
    struct stat st;
    char *got;
    size_t removed = 9;

    tu_mkdtemp(rdir, sizeof rdir, "check_refdir");
    ck_assert_int_eq(patient_refdir_store(rdir, "00ff", "a.b.c", &fd), PATIENT_OK);
    ck_assert_int_ge(fd, 0);
    got = tu_slurp(tu_path(rdir, "00ff"), NULL);
    ck_assert_str_eq(got, "a.b.c");
    free(got);
    ck_assert_int_eq(stat(tu_path(rdir, "00ff"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert(!ref_has("00ff.tmp"));
    /* ids are hex only: no path of the caller's choosing */
    ck_assert_int_eq(patient_refdir_store(rdir, "../x", "a", &fd2), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_refdir_store(rdir, "", "a", &fd2), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_refdir_store(rdir, "ABCD", "a", &fd2), PATIENT_ERR_ARG);
    ck_assert_int_eq(fd2, -1);
    /* in flight (its lock held): even a zero count keeps nothing but it */
    ck_assert_int_eq(patient_refdir_prune(rdir, time(NULL) + 100000, 1, 1, &removed), PATIENT_OK);
    ck_assert_uint_eq(removed, 0);
    ck_assert(ref_has("00ff"));
    /* done: the same prune removes it */
    close(fd);
    ck_assert_int_eq(patient_refdir_prune(rdir, time(NULL) + 100000, 1, 1, &removed), PATIENT_OK);
    ck_assert_uint_eq(removed, 1);
    ck_assert(!ref_has("00ff"));

    /* an abandoned response withdraws its descriptor and lock */
    ck_assert_int_eq(patient_refdir_store(rdir, "0abc", "a.b.c", &fd), PATIENT_OK);
    ck_assert(ref_has("0abc"));
    ck_assert_int_eq(patient_refdir_remove(rdir, "0abc", &fd), PATIENT_OK);
    ck_assert_int_eq(fd, -1);
    ck_assert(!ref_has("0abc"));
    ck_assert_int_eq(patient_refdir_remove(rdir, "0abc", &fd), PATIENT_OK); /* already gone */
    ck_assert_int_eq(patient_refdir_remove(rdir, "../x", &fd), PATIENT_ERR_ARG);
    tu_rmtree(rdir);
}
END_TEST

START_TEST(refdir_prune)
{
    time_t now = time(NULL);
    size_t removed = 0;
    int lock;

    tu_mkdtemp(rdir, sizeof rdir, "check_refdir");
    ref_put("a1", 10, now);
    ref_put("a2", 100, now);
    ref_put("a3", 1000, now);
    ref_put("a4", 5000, now);
    ref_put("a5", 10000, now);
    ref_put("README", 99999, now);     /* not a descriptor: never touched */
    ref_put("b1.tmp", 30, now);        /* a store under way */
    ref_put("b2.tmp", 7200, now);      /* a crash's leftover */
    ck_assert_int_eq(symlink("/etc/passwd", tu_path(rdir, "c1")), 0);
    /* a5 is still referred to by a response in flight */
    lock = open(tu_path(rdir, "a5"), O_RDONLY);
    ck_assert_int_ge(lock, 0);
    ck_assert_int_eq(flock(lock, LOCK_SH), 0);

    /* by age: older than 2000 s go, but not the locked one */
    ck_assert_int_eq(patient_refdir_prune(rdir, now, 2000, 0, &removed), PATIENT_OK);
    ck_assert_uint_eq(removed, 2); /* a4, b2.tmp */
    ck_assert(ref_has("a1") && ref_has("a2") && ref_has("a3") && !ref_has("a4") && ref_has("a5"));
    ck_assert(ref_has("README") && ref_has("b1.tmp") && !ref_has("b2.tmp"));
    ck_assert_int_eq(lstat(tu_path(rdir, "c1"), &(struct stat){0}), 0);

    /* by count: at most 2, the oldest first; the locked a5 stays and
     * does not push out a newer one in its place */
    ck_assert_int_eq(patient_refdir_prune(rdir, now, 0, 2, &removed), PATIENT_OK);
    ck_assert_uint_eq(removed, 1); /* a3; a5 (oldest) is locked */
    ck_assert(ref_has("a1") && ref_has("a2") && !ref_has("a3") && ref_has("a5"));

    /* released: now it goes too */
    close(lock);
    ck_assert_int_eq(patient_refdir_prune(rdir, now, 0, 2, &removed), PATIENT_OK);
    ck_assert_uint_eq(removed, 1);
    ck_assert(ref_has("a1") && ref_has("a2") && !ref_has("a5"));
    /* no limits: nothing goes */
    ck_assert_int_eq(patient_refdir_prune(rdir, now, 0, 0, &removed), PATIENT_OK);
    ck_assert_uint_eq(removed, 0);
    ck_assert_int_eq(patient_refdir_prune(tu_path(rdir, "nope"), now, 1, 1, &removed), PATIENT_ERR_IO);
    tu_rmtree(rdir);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("mbox");
    TCase *tc = tcase_create("gzip");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, gzip_in_gzip_out);
    tcase_add_test(tc, gzip_corrupt);
    tcase_add_test(tc, edit_cap_from_rules);
    tcase_add_test(tc, log_line_cap_from_rules);
    suite_add_tcase(s, tc);
    tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, identity_chain_two_hops);
    tcase_add_test(tc, deferred_sync);
    tcase_add_test(tc, bad_prev_refused);
    tcase_add_test(tc, input_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("pass");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, pass_through);
    tcase_add_test(tc, too_large_logged);
    tcase_add_test(tc, tls_from_squid);
    tcase_add_test(tc, rule_limit_passes_logged);
    suite_add_tcase(s, tc);
    tc = tcase_create("http");
    tcase_add_test(tc, http_may_change);
    tcase_add_test(tc, istag_names_loaded_rules);
    tcase_add_test(tc, http_drop_headers);
    suite_add_tcase(s, tc);
    tc = tcase_create("refdir");
    tcase_add_test(tc, refdir_store);
    tcase_add_test(tc, refdir_prune);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
