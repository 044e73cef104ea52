/* Verification core (evidence + policy -> report) and evidence bundles
 * (native messaging: check_native.c). An adversarial suite: each case builds its
 * evidence from fixed keys (tests/data/key_test.key is the publisher) and
 * freshly issued descriptors, then asserts the EXACT verdict and the EXACT
 * first error result code. Every accept case has a forged twin. */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <patient/patient.h>
#include "report_int.h"
#include "time_int.h"
#include "util.h"
#include "verify_int.h"
#include "testutil.h"

#define ORIGIN "https://site.example"
#define URL ORIGIN "/page.html"
#define URL_OTHER ORIGIN "/other.html"
#define URL_DYN ORIGIN "/api/data"
#define DISC "https://mbox.example/.well-known/patient/disclosure.json"
#define NOW ((time_t)1795000000) /* 2026-11-19 */

static const char BODY[] =
    "<html><head><script src=\"https://t.example/t.js\"></script></head>\n"
    "<body><p>Hello world</p>\n<div class=ad>BUY NOW</div></body></html>\n";
static const char OTHER_BODY[] = "<html><body><p>Other page</p><script>evil()</script></body></html>\n";

static char tmpdir[256];
static char sitedir[512], keypath[512], statepath[512];
static patient_seckey *sk_pub, *sk_m1, *sk_m2, *sk_x;
static patient_pubkey pk_pub, pk_m1, pk_m2, pk_x;
static char *man_json, *man_sig;
static size_t man_len;
/* The same manifest as published before chunk roots existed. */
static char *old_json, *old_sig;
static size_t old_len;
static patient_policy *pol;

/* ---- fixtures ------------------------------------------------------------ */

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static char *
slurp(const char *path, size_t *len)
{
    uint8_t *d = NULL;
    ck_assert_int_eq(pt_read_file(path, 1u << 20, &d, len), PATIENT_OK);
    return (char *)d;
}

/* A manifest over the temp site, signed by sk. */
static void
make_manifest(const patient_seckey *sk, const char *origin, uint64_t version, time_t issued,
              time_t expires, char **json, size_t *len, char **sig)
{
    patient_manifest_opts o;
    char *detail = NULL;

    memset(&o, 0, sizeof o);
    o.origin = origin;
    o.version = version;
    o.issued = issued;
    o.expires = expires;
    o.threads = 1;
    ck_assert_int_eq(patient_manifest_build(sitedir, &o, json, len, &detail), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_sign(sk, *json, *len, sig), PATIENT_OK);
    free(detail);
}

/* A copy of json without its "chunk_root" lines, signed again. */
static void
strip_roots(const char *json, size_t len, const patient_seckey *sk, char **out, size_t *olen,
            char **sig)
{
    pt_buf b = {0};
    const char *p = json, *end = json + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (memmem(p, l, "\"chunk_root\"", 12) == NULL)
            ck_assert_int_eq(pt_buf_append(&b, p, l), PATIENT_OK);
        p += l;
    }
    ck_assert_int_eq(pt_buf_append(&b, "", 1), PATIENT_OK);
    *out = (char *)b.data;
    *olen = b.len - 1;
    ck_assert_int_eq(patient_manifest_sign(sk, *out, *olen, sig), PATIENT_OK);
}

static void
add_mbox(patient_policy *p, const char *name, const patient_pubkey *pk, long long max, int insert)
{
    static const char *const reasons[] = {"tracker.*", "ads.*", "malware.removed", NULL};
    ck_assert_int_eq(patient_policy_add_middlebox(p, name, pk, reasons, NULL, NULL, max, insert),
                     PATIENT_OK);
}

static void
setup(void)
{
    char path[600];
    size_t n;
    char *k;

    tu_mkdtemp(tmpdir, sizeof tmpdir, "check_verify");
    snprintf(sitedir, sizeof sitedir, "%s/site", tmpdir);
    snprintf(keypath, sizeof keypath, "%s/pub.key", tmpdir);
    snprintf(statepath, sizeof statepath, "%s/state/versions.json", tmpdir);
    ck_assert_int_eq(mkdir(sitedir, 0755), 0);
    snprintf(path, sizeof path, "%s/page.html", sitedir);
    write_file(path, BODY, strlen(BODY), 0644);
    snprintf(path, sizeof path, "%s/other.html", sitedir);
    write_file(path, OTHER_BODY, strlen(OTHER_BODY), 0644);
    /* The fixed publisher key: copied to a 0600 file (the loader refuses
     * group-readable secret keys). */
    k = slurp(TEST_SRCDIR "/data/key_test.key", &n);
    write_file(keypath, k, n, 0600);
    free(k);
    ck_assert_int_eq(patient_seckey_load(keypath, NULL, &sk_pub, NULL), PATIENT_OK);
    patient_seckey_pubkey(sk_pub, &pk_pub);
    ck_assert_int_eq(patient_keypair_generate(&pk_m1, &sk_m1), PATIENT_OK);
    ck_assert_int_eq(patient_keypair_generate(&pk_m2, &sk_m2), PATIENT_OK);
    ck_assert_int_eq(patient_keypair_generate(&pk_x, &sk_x), PATIENT_OK);
    make_manifest(sk_pub, ORIGIN, 3, NOW - 3600, NOW + 7 * 86400, &man_json, &man_len, &man_sig);
    strip_roots(man_json, man_len, sk_pub, &old_json, &old_len, &old_sig);
    ck_assert_int_eq(patient_policy_new(&pol), PATIENT_OK);
    ck_assert_int_eq(patient_policy_add_publisher(pol, ORIGIN, &pk_pub), PATIENT_OK);
    add_mbox(pol, "filter-one", &pk_m1, 5, 1);
    add_mbox(pol, "filter-two", &pk_m2, 5, 1);
}

static void
teardown(void)
{
    patient_seckey_free(sk_pub);
    patient_seckey_free(sk_m1);
    patient_seckey_free(sk_m2);
    patient_seckey_free(sk_x);
    sk_pub = sk_m1 = sk_m2 = sk_x = NULL;
    free(man_json);
    free(man_sig);
    man_json = man_sig = NULL;
    free(old_json);
    free(old_sig);
    old_json = old_sig = NULL;
    patient_policy_free(pol);
    pol = NULL;
    tu_rmtree(tmpdir);
}

/* Evidence for url with body and the default manifest. */
static patient_evidence
ev_make(const char *url, const void *body, size_t len, const char *const *changes, size_t n)
{
    patient_evidence ev;
    memset(&ev, 0, sizeof ev);
    ev.url = url;
    ev.status = 200;
    ev.body = body;
    ev.body_len = len;
    ev.changes = changes;
    ev.nchanges = n;
    ev.manifest = (const uint8_t *)man_json;
    ev.manifest_len = man_len;
    ev.manifest_sig = man_sig;
    ev.manifest_sig_len = strlen(man_sig);
    return ev;
}

/* The evidence with the manifest from before chunk roots. */
static void
ev_old(patient_evidence *ev)
{
    ev->manifest = (const uint8_t *)old_json;
    ev->manifest_len = old_len;
    ev->manifest_sig = old_sig;
    ev->manifest_sig_len = strlen(old_sig);
}

/* Whether the last run's streamed twin went through the streaming checks
 * (tu_same_streamed): the fixtures that must stream assert it. */
static int streamed;

static patient_report *
run_at(const patient_policy *p, const patient_evidence *ev, time_t now, const char *state)
{
    patient_verify_opts o;
    patient_report *r = NULL;
    memset(&o, 0, sizeof o);
    o.now = now;
    o.state_file = state;
    ck_assert_int_eq(patient_verify_evidence(p, ev, &o, &r), PATIENT_OK);
    streamed = tu_same_streamed(p, ev, &o, r);
    ck_assert_ptr_nonnull(r);
    return r;
}

static patient_report *
run(const patient_policy *p, const patient_evidence *ev)
{
    return run_at(p, ev, NOW, NULL);
}

static void
dump(const patient_report *r)
{
    char *j = NULL;
    if (patient_report_json(r, 1, &j) == PATIENT_OK)
        fprintf(stderr, "%s\n", j);
    free(j);
}

/* Assert verdict and first error code (NULL: no error at all); frees r. */
static void
expect(patient_report *r, patient_verdict v, const char *code)
{
    const char *fe = tu_report_first_error(r);
    if (patient_report_verdict(r) != v || (code == NULL) != (fe == NULL) ||
        (code && strcmp(code, fe) != 0))
        dump(r);
    ck_assert_str_eq(patient_verdict_name(patient_report_verdict(r)), patient_verdict_name(v));
    if (code == NULL) {
        ck_assert_ptr_null(fe);
    } else {
        ck_assert_ptr_nonnull(fe);
        ck_assert_str_eq(fe, code);
        ck_assert(tu_report_has_code(r, code));
    }
    patient_report_free(r);
}

/* ---- descriptor helpers ---------------------------------------------------- */

static size_t
pos_of(const char *hay, size_t len, const char *needle)
{
    const char *p = memmem(hay, len, needle, strlen(needle));
    ck_assert_msg(p != NULL, "'%s' not found", needle);
    return (size_t)(p - hay);
}

/* Hop: remove the tracker script (tracker.removed). */
static char *
hop_tracker(const patient_seckey *sk, const char *url, const uint8_t *in, size_t len,
            const char *const *prev, size_t nprev, int disclose, const char *tls,
            uint8_t **out, size_t *outlen)
{
    patient_hop *h = NULL;
    char *v = NULL;
    size_t a = pos_of((const char *)in, len, "<script"), b = pos_of((const char *)in, len, "</script>") + 9;

    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = "Tracker Filter",
                                                           .service = "tracker-filter", .url = url,
                                                           .in = in, .in_len = len, .prev = prev,
                                                           .nprev = nprev},
                                       &h),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, a, b - a, NULL, 0, "tracker.removed", "trk-1",
                                          "third-party tracker", disclose),
                     PATIENT_OK);
    if (tls)
        ck_assert_int_eq(patient_hop_set_tls(h, tls, "TLS_AES_128_GCM_SHA256", 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(h, NOW - 60, out, outlen, &v), PATIENT_OK);
    ck_assert_ptr_nonnull(v);
    patient_hop_free(h);
    return v;
}

/* Hop: replace the ad with a placeholder (ads.removed; inserts bytes).
 * extra: also delete the word "Hello " (a second edit). */
static char *
hop_ad(const patient_seckey *sk, const char *url, const uint8_t *in, size_t len,
       const char *const *prev, size_t nprev, int extra, uint8_t **out, size_t *outlen)
{
    patient_hop *h = NULL;
    char *v = NULL;
    size_t a = pos_of((const char *)in, len, "BUY NOW");

    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = "Ad Filter",
                                                           .service = "ad-filter", .url = url,
                                                           .in = in, .in_len = len, .prev = prev,
                                                           .nprev = nprev},
                                       &h),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, a, 7, (const uint8_t *)"[ad]", 4, "ads.removed",
                                          "ad-1", NULL, 1),
                     PATIENT_OK);
    if (extra)
        ck_assert_int_eq(patient_hop_add_edit(h, pos_of((const char *)in, len, "Hello "), 6, NULL,
                                              0, "ads.removed", "ad-2", NULL, 1),
                         PATIENT_OK);
    ck_assert_int_eq(patient_hop_set_tls(h, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(h, NOW - 30, out, outlen, &v), PATIENT_OK);
    patient_hop_free(h);
    return v;
}

/* The decoded payload of a descriptor value, as cJSON. */
static cJSON *
payload_json(const char *v)
{
    patient_jws *j = NULL;
    cJSON *o = NULL;
    ck_assert_int_eq(patient_jws_parse(v, strlen(v), &j), PATIENT_OK);
    o = cJSON_Parse((const char *)j->payload);
    ck_assert_ptr_nonnull(o);
    patient_jws_free(j);
    return o;
}

/* Sign a (hand-crafted) payload as a change descriptor with sk. */
static char *
sign_json(const patient_seckey *sk, const cJSON *payload)
{
    char *p = cJSON_PrintUnformatted(payload), *v = NULL;
    ck_assert_int_eq(patient_jws_sign(sk, PATIENT_CHANGE_TYP, p, strlen(p), &v), PATIENT_OK);
    free(p);
    return v;
}

/* Flip one base64url character inside the signature (not the last, whose
 * low bits may not count). */
static char *
flip_sig(const char *v)
{
    char *f = strdup(v);
    size_t i = strlen(f) - 10;
    f[i] = f[i] == 'A' ? 'B' : 'A';
    return f;
}

static char *
b64(const void *p, size_t len)
{
    char *s = NULL;
    ck_assert_int_eq(pt_b64_encode(p, len, 0, &s), PATIENT_OK);
    return s;
}

/* ---- verified / modified and their twins ------------------------------------ */

START_TEST(untouched_verified)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    patient_report *r = run(pol, &ev);
    char *j = NULL;
    ck_assert_int_eq(streamed, 1); /* no hop: the body's hash, as it streams */
    ck_assert_int_eq(patient_report_json(r, 0, &j), PATIENT_OK);
    ck_assert(strstr(j, "\"verdict\":\"verified\"") != NULL);
    ck_assert(strstr(j, "\"proof\":\"proven\"") != NULL);
    ck_assert(strstr(j, "\"version\":3") != NULL);
    free(j);
    expect(r, PATIENT_VERDICT_VERIFIED, NULL);
}
END_TEST

START_TEST(body_changed_no_descriptor)
{
    char *b = strdup(BODY);
    b[pos_of(b, strlen(b), "Hello")] = 'J';
    patient_evidence ev = ev_make(URL, b, strlen(b), NULL, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch");
    ck_assert_int_eq(streamed, 1);
    free(b);
}
END_TEST

START_TEST(truncated_body)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY) - 10, NULL, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch");
}
END_TEST

START_TEST(one_hop_proven)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3",
                          &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    patient_report *r = run(pol, &ev);
    char *j = NULL, *t = NULL;
    ck_assert_int_eq(streamed, 1); /* proven: the origin bytes rebuilt as the body streams */
    ck_assert_int_eq(patient_report_json(r, 0, &j), PATIENT_OK);
    ck_assert(strstr(j, "\"proof\":\"proven\"") != NULL);
    ck_assert(strstr(j, "\"reason\":\"tracker.removed\"") != NULL);
    ck_assert(strstr(j, "\"line\":1") != NULL);
    ck_assert_int_eq(patient_report_text(r, 0, 1, &t), PATIENT_OK);
    ck_assert(strstr(t, "modified") == t);
    ck_assert(strstr(t, "tracker.removed") != NULL);
    free(j);
    free(t);
    expect(r, PATIENT_VERDICT_MODIFIED, NULL);
    free(v);
    free(out);
}
END_TEST

START_TEST(one_hop_attested)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 0, "TLSv1.3",
                          &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    ev_old(&ev); /* without chunk roots: attested, as before them */
    patient_report *r = run(pol, &ev);
    char *j = NULL;
    ck_assert_int_eq(streamed, 0); /* attested: the core hashes the kept body */
    ck_assert(tu_report_has_code(r, "change.attested"));
    ck_assert_int_eq(patient_report_json(r, 0, &j), PATIENT_OK);
    ck_assert(strstr(j, "\"proof\":\"attested\"") != NULL);
    free(j);
    expect(r, PATIENT_VERDICT_MODIFIED, NULL);
    free(v);
    free(out);
}
END_TEST

START_TEST(attested_but_proof_required)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    patient_policy *p = NULL;
    char *txt = NULL, *pj = NULL, *detail = NULL;
    size_t pl;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 0, "TLSv1.3",
                          &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    ev_old(&ev); /* without chunk roots: attested, as before them */

    ck_assert_int_eq(patient_policy_serialize(pol, &pj, &pl), PATIENT_OK);
    txt = strdup(pj);
    {
        char *q = strstr(txt, "\"auto\"");
        ck_assert_ptr_nonnull(q);
        memcpy(q, "\"proven\"", 8);
    }
    ck_assert_int_eq(patient_policy_parse(txt, strlen(txt), &p, &detail), PATIENT_OK);
    expect(run(p, &ev), PATIENT_VERDICT_INVALID, "policy.proof.required");
    patient_policy_free(p);
    free(txt);
    free(pj);
    free(v);
    free(out);
}
END_TEST

/* Hop 1 withheld its deleted bytes and claims an input the origin never
 * signed: the attested chain must not end at the manifest. */
START_TEST(attested_wrong_origin_bytes)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *b = strdup(BODY), *v;
    b[pos_of(b, strlen(b), "world")] = 'W';
    v = hop_tracker(sk_m1, URL, (const uint8_t *)b, strlen(b), NULL, 0, 0, "TLSv1.3", &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    ev_old(&ev); /* without chunk roots: attested, as before them */
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch");
    free(b);
    free(v);
    free(out);
}
END_TEST

/* The same with the deleted bytes disclosed: undone, and the rebuilt
 * bytes are not what the origin signed. */
START_TEST(proven_wrong_origin_bytes)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *b = strdup(BODY), *v;
    b[pos_of(b, strlen(b), "world")] = 'W';
    v = hop_tracker(sk_m1, URL, (const uint8_t *)b, strlen(b), NULL, 0, 1, "TLSv1.3", &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch");
    ck_assert_int_eq(streamed, 1);
    free(b);
    free(v);
    free(out);
}
END_TEST

START_TEST(two_hops_two_middleboxes)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t l1 = 0, l2 = 0;
    char *v1 = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3",
                           &o1, &l1);
    const char *p1[] = {v1};
    char *v2 = hop_ad(sk_m2, URL, o1, l1, p1, 1, 0, &o2, &l2);
    const char *ch[] = {v1, v2};
    patient_evidence ev = ev_make(URL, o2, l2, ch, 2);
    patient_report *r = run(pol, &ev);
    ck_assert_int_eq(cJSON_GetArraySize(r->changes), 2);
    expect(r, PATIENT_VERDICT_MODIFIED, NULL);
    free(v1);
    free(v2);
    free(o1);
    free(o2);
}
END_TEST

START_TEST(two_hops_reordered)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t l1 = 0, l2 = 0;
    char *v1 = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &o1, &l1);
    const char *p1[] = {v1};
    char *v2 = hop_ad(sk_m2, URL, o1, l1, p1, 1, 0, &o2, &l2);
    const char *ch[] = {v2, v1};
    patient_evidence ev = ev_make(URL, o2, l2, ch, 2);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.chain.broken");
    free(v1);
    free(v2);
    free(o1);
    free(o2);
}
END_TEST

START_TEST(hop_dropped)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t l1 = 0, l2 = 0;
    char *v1 = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &o1, &l1);
    const char *p1[] = {v1};
    char *v2 = hop_ad(sk_m2, URL, o1, l1, p1, 1, 0, &o2, &l2);
    const char *ch[] = {v2};
    patient_evidence ev = ev_make(URL, o2, l2, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.chain.broken");
    free(v1);
    free(v2);
    free(o1);
    free(o2);
}
END_TEST

/* The last hop's descriptor stripped: its edits are undeclared. */
START_TEST(last_hop_dropped)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t l1 = 0, l2 = 0;
    char *v1 = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &o1, &l1);
    const char *p1[] = {v1};
    char *v2 = hop_ad(sk_m2, URL, o1, l1, p1, 1, 0, &o2, &l2);
    const char *ch[] = {v1};
    patient_evidence ev = ev_make(URL, o2, l2, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch");
    free(v1);
    free(v2);
    free(o1);
    free(o2);
}
END_TEST

START_TEST(forged_descriptor_signature)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &out, &ol);
    char *f = flip_sig(v);
    const char *ch[] = {f};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.signature.invalid");
    free(f);
    free(v);
    free(out);
}
END_TEST

/* The payload altered (the note rewritten) under the original header and
 * signature. */
START_TEST(forged_descriptor_payload)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &out, &ol);
    cJSON *p = payload_json(v);
    char *txt, *enc = NULL, *mix;
    const char *dot1 = strchr(v, '.'), *dot2 = strrchr(v, '.');

    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "edits"), 0), "note",
                              cJSON_CreateString("removed at the user's request"));
    txt = cJSON_PrintUnformatted(p);
    ck_assert_int_eq(pt_b64_encode((const uint8_t *)txt, strlen(txt), 1, &enc), PATIENT_OK);
    ck_assert_int_ge(asprintf(&mix, "%.*s.%s%s", (int)(dot1 - v), v, enc, dot2), 0);
    const char *ch[] = {mix};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.signature.invalid");
    cJSON_Delete(p);
    free(txt);
    free(enc);
    free(mix);
    free(v);
    free(out);
}
END_TEST

START_TEST(unknown_middlebox)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_x, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    patient_report *r = run(pol, &ev);
    char *j = cJSON_PrintUnformatted(r->changes);
    ck_assert(strstr(j, "\"trusted\":false") != NULL);
    free(j);
    expect(r, PATIENT_VERDICT_INVALID, "policy.middlebox.unknown");
    free(v);
    free(out);
}
END_TEST

/* A URL with a fragment (a browser's #anchor) is the same resource: the
 * hop signed for the URL without it verifies. */
START_TEST(url_fragment_dropped)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3",
                          &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL "#section-2", out, ol, ch, 1);
    patient_report *r = run(pol, &ev);
    ck_assert_str_eq(pt_json_str(r->doc, "url"), URL);
    expect(r, PATIENT_VERDICT_MODIFIED, NULL);
    /* Untouched page with a fragment: verified. */
    ev = ev_make(URL "#", BODY, strlen(BODY), NULL, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_VERIFIED, NULL);
    /* Twin: a query is part of the request, so it still does not match. */
    ev = ev_make(URL "?x=1#section-2", out, ol, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.url.mismatch");
    free(v);
    free(out);
}
END_TEST

START_TEST(replayed_other_url)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    /* Issued for other.html over exactly the same bytes, then attached here. */
    char *v = hop_tracker(sk_m1, URL_OTHER, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3",
                          &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.url.mismatch");
    free(v);
    free(out);
}
END_TEST

START_TEST(replayed_other_response)
{
    uint8_t *out = NULL, *o2 = NULL;
    size_t ol = 0, l2 = 0;
    static const char B2[] = "<html><script>x</script><p>another day, same URL</p></html>";
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &out, &ol);
    char *v2 = hop_tracker(sk_m1, URL, (const uint8_t *)B2, strlen(B2), NULL, 0, 1, "TLSv1.3", &o2, &l2);
    const char *ch[] = {v2};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch");
    free(v);
    free(v2);
    free(out);
    free(o2);
}
END_TEST

/* Hand-crafted payloads, correctly signed by a trusted key. */
static void
crafted(const char *mutation, const char *code)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &out, &ol);
    cJSON *p = payload_json(v), *edits = cJSON_GetObjectItem(p, "edits"),
          *e0 = cJSON_GetArrayItem(edits, 0);
    char *f;

    if (strcmp(mutation, "overlap") == 0) {
        cJSON *e1 = cJSON_Duplicate(e0, 1);
        cJSON_ReplaceItemInObject(e1, "offset",
                                  cJSON_CreateNumber(cJSON_GetObjectItem(e0, "offset")->valuedouble + 1));
        cJSON_AddItemToArray(edits, e1);
    } else if (strcmp(mutation, "range") == 0) {
        cJSON_ReplaceItemInObject(e0, "offset", cJSON_CreateNumber((double)strlen(BODY) - 3));
    } else if (strcmp(mutation, "deleted") == 0) {
        /* Same length, other bytes: no longer the deleted_hash. */
        const char *d = cJSON_GetObjectItem(e0, "deleted")->valuestring;
        uint8_t *raw = NULL;
        size_t rl = 0;
        char *s;
        ck_assert_int_eq(pt_b64_decode(d, strlen(d), 0, &raw, &rl), PATIENT_OK);
        raw[1] ^= 0x20;
        s = b64(raw, rl);
        cJSON_ReplaceItemInObject(e0, "deleted", cJSON_CreateString(s));
        free(s);
        free(raw);
    } else if (strcmp(mutation, "sizes") == 0) {
        cJSON *o = cJSON_GetObjectItem(p, "out");
        cJSON_ReplaceItemInObject(o, "size", cJSON_CreateNumber((double)ol + 1));
    } else if (strcmp(mutation, "noedits") == 0) {
        cJSON_ReplaceItemInObject(p, "edits", cJSON_CreateArray());
    } else if (strcmp(mutation, "version") == 0) {
        cJSON_ReplaceItemInObject(p, "patient", cJSON_CreateNumber(2));
    } else {
        ck_abort_msg("unknown mutation");
    }
    f = sign_json(sk_m1, p);
    const char *ch[] = {f};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, code);
    cJSON_Delete(p);
    free(f);
    free(v);
    free(out);
}

START_TEST(edits_overlapping) { crafted("overlap", "change.malformed"); }
END_TEST
START_TEST(edit_out_of_range) { crafted("range", "change.malformed"); }
END_TEST
START_TEST(deleted_bytes_wrong_hash) { crafted("deleted", "change.malformed"); }
END_TEST
START_TEST(sizes_do_not_add_up) { crafted("sizes", "change.malformed"); }
END_TEST
START_TEST(no_edits) { crafted("noedits", "change.malformed"); }
END_TEST
START_TEST(future_format_version) { crafted("version", "change.malformed"); }
END_TEST

START_TEST(malformed_values)
{
    static const char *const bad[] = {
        "!!!", "", "a.b.c", "eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.AAAA",
        "eyJhbGciOiJFZERTQSJ9.e30.*&^%",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *ch[] = {bad[i]};
        patient_evidence ev = ev_make(URL, BODY, strlen(BODY), ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.malformed");
        /* With a certificate chain the endpoint saw (https), the hop that
         * did not parse names no decrypter: the same verdict. */
        {
            static const uint8_t chain[2][32] = {{1}, {2}};
            ev.tls_chain = chain;
            ev.tls_chain_n = 2;
            expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.malformed");
        }
    }
}
END_TEST

/* Signed payload that is not JSON, and one with bad base64 in "insert". */
START_TEST(malformed_json_and_base64_signed)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &out, &ol);
    char *f = NULL;
    cJSON *p = payload_json(v);
    ck_assert_int_eq(patient_jws_sign(sk_m1, PATIENT_CHANGE_TYP, "{\"patient\":1,", 13, &f), PATIENT_OK);
    {
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.malformed");
    }
    free(f);
    cJSON_AddStringToObject(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "edits"), 0), "insert", "%%%not base64");
    f = sign_json(sk_m1, p);
    {
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.malformed");
    }
    free(f);
    cJSON_Delete(p);
    free(v);
    free(out);
}
END_TEST

/* Re-sign the genuine payload's exact text with one substring replaced. */
static char *
resign_replacing(const char *v, const char *from, const char *to)
{
    patient_jws *j = NULL;
    pt_buf b = {0};
    const char *p, *at;
    char *out = NULL;

    ck_assert_int_eq(patient_jws_parse(v, strlen(v), &j), PATIENT_OK);
    p = (const char *)j->payload;
    at = strstr(p, from);
    ck_assert_msg(at != NULL, "'%s' not in the payload", from);
    pt_buf_append(&b, p, (size_t)(at - p));
    pt_buf_append(&b, to, strlen(to));
    pt_buf_append(&b, at + strlen(from), strlen(at + strlen(from)));
    ck_assert_int_eq(patient_jws_sign(sk_m1, PATIENT_CHANGE_TYP, (const char *)b.data, b.len, &out),
                     PATIENT_OK);
    pt_buf_free(&b);
    patient_jws_free(j);
    return out;
}

/* Integers only as integer literals: 1.0, 1e0, -0 and 47.999... (a double
 * that rounds to the integer) in a validly signed descriptor are
 * change.malformed; the same payload re-signed unchanged is modified. */
START_TEST(descriptor_integers_strict)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3", &out,
                          &ol);
    patient_jws *j = NULL;
    char from[64], to[64], *f;
    long long off = 0, del = 0;
    cJSON *p = payload_json(v), *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(p, "edits"), 0);

    off = (long long)cJSON_GetObjectItem(e0, "offset")->valuedouble;
    del = (long long)cJSON_GetObjectItem(e0, "delete")->valuedouble;
    struct {
        const char *from, *to;
    } cases[8];
    char buf[8][2][64];
    size_t n = 0;
#define CASE(F, T)                                                                                 \
    do {                                                                                           \
        snprintf(buf[n][0], 64, "%s", F);                                                          \
        snprintf(buf[n][1], 64, "%s", T);                                                          \
        cases[n].from = buf[n][0];                                                                 \
        cases[n].to = buf[n][1];                                                                   \
        n++;                                                                                       \
    } while (0)
    CASE("\"patient\":1,", "\"patient\":1.0,");
    CASE("\"hop\":1,", "\"hop\":1e0,");
    snprintf(from, sizeof from, "\"offset\":%lld,", off);
    snprintf(to, sizeof to, "\"offset\":%lld.0,", off);
    CASE(from, to);
    snprintf(from, sizeof from, "\"delete\":%lld,", del);
    snprintf(to, sizeof to, "\"delete\":%lld.99999999999999999,", del - 1);
    CASE(from, to);
    snprintf(from, sizeof from, "\"size\":%zu}", strlen(BODY));
    snprintf(to, sizeof to, "\"size\":%zue0}", strlen(BODY));
    CASE(from, to);
#undef CASE
    ck_assert_int_eq(patient_jws_parse(v, strlen(v), &j), PATIENT_OK);
    for (size_t i = 0; i < n; i++) {
        f = resign_replacing(v, cases[i].from, cases[i].to);
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        patient_report *r = run(pol, &ev);
        ck_assert_msg(patient_report_verdict(r) == PATIENT_VERDICT_INVALID, "accepted %s", cases[i].to);
        expect(r, PATIENT_VERDICT_INVALID, "change.malformed");
        free(f);
    }
    /* Twin: the untouched text, signed again the same way. */
    f = resign_replacing(v, "\"hop\":1,", "\"hop\":1,");
    {
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL);
    }
    free(f);
    patient_jws_free(j);
    cJSON_Delete(p);
    free(v);
    free(out);
}
END_TEST

/* A JWS over payload with a header of our own making (e.g. a kid spelt
 * in lower case), signed with sk. */
static char *
jws_with_header(const patient_seckey *sk, const char *header, const char *payload)
{
    char *h = NULL, *p = NULL, *sg = NULL, *out = NULL, *input = NULL;
    uint8_t sig[PATIENT_SIG_BYTES];

    ck_assert_int_eq(pt_b64_encode((const uint8_t *)header, strlen(header), 1, &h), PATIENT_OK);
    ck_assert_int_eq(pt_b64_encode((const uint8_t *)payload, strlen(payload), 1, &p), PATIENT_OK);
    ck_assert_int_ge(asprintf(&input, "%s.%s", h, p), 0);
    ck_assert_int_eq(patient_sign(sk, input, strlen(input), sig), PATIENT_OK);
    ck_assert_int_eq(pt_b64_encode(sig, sizeof sig, 1, &sg), PATIENT_OK);
    ck_assert_int_ge(asprintf(&out, "%s.%s", input, sg), 0);
    free(h);
    free(p);
    free(sg);
    free(input);
    return out;
}

/* Spec rules a second implementation could read either way, each with the
 * exact verdict and code: a key id in lower case (JWS header or by.kid) is
 * malformed; "note": null is no note (modified); a hop dated in the future
 * (year 9999) or before the hop it followed is invalid. */
START_TEST(descriptor_spec_rules)
{
    uint8_t *out = NULL, *o2 = NULL;
    size_t ol = 0, l2 = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3",
                          &out, &ol);
    char kid[PATIENT_KEYID_HEX], lower[PATIENT_KEYID_HEX], from[64], to[64], hdr[160], *f;
    patient_jws *j = NULL;
    patient_pubkey pk;

    patient_seckey_pubkey(sk_m1, &pk);
    patient_keyid_hex(pk.id, kid);
    for (size_t i = 0; i < sizeof kid; i++)
        lower[i] = (char)tolower((unsigned char)kid[i]);
    ck_assert_str_ne(kid, lower); /* the test key's id has letters */
    ck_assert_int_eq(patient_jws_parse(v, strlen(v), &j), PATIENT_OK);
    /* JWS header kid in lower case, payload untouched. */
    snprintf(hdr, sizeof hdr, "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"" PATIENT_CHANGE_TYP "\"}",
             lower);
    f = jws_with_header(sk_m1, hdr, (const char *)j->payload);
    {
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.malformed");
    }
    free(f);
    /* Twin: the same header with the id in upper case verifies. */
    snprintf(hdr, sizeof hdr, "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"" PATIENT_CHANGE_TYP "\"}",
             kid);
    f = jws_with_header(sk_m1, hdr, (const char *)j->payload);
    {
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL);
    }
    free(f);
    /* by.kid in lower case. */
    snprintf(from, sizeof from, "\"kid\":\"%s\"", kid);
    snprintf(to, sizeof to, "\"kid\":\"%s\"", lower);
    f = resign_replacing(v, from, to);
    {
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.malformed");
    }
    free(f);
    /* "note": null is the same as no note; "note": 5 is not a note. */
    f = resign_replacing(v, "\"note\":\"third-party tracker\"", "\"note\":null");
    {
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL);
    }
    free(f);
    f = resign_replacing(v, "\"note\":\"third-party tracker\"", "\"note\":5");
    {
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.malformed");
    }
    free(f);
    /* Dated in year 9999: in the future of the check. */
    {
        char ts[PATIENT_TIME_BYTES];
        pt_time_format(NOW - 60, ts);
        snprintf(from, sizeof from, "\"at\":\"%s\"", ts);
        f = resign_replacing(v, from, "\"at\":\"9999-12-31T23:59:59Z\"");
        const char *ch[] = {f};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.time.future");
        free(f);
        /* Within the allowed clock skew: fine. */
        pt_time_format(NOW + PATIENT_VERIFY_CLOCK_SKEW, ts);
        snprintf(to, sizeof to, "\"at\":\"%s\"", ts);
        f = resign_replacing(v, from, to);
        const char *ch2[] = {f};
        ev = ev_make(URL, out, ol, ch2, 1);
        expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL);
        free(f);
    }
    /* Hop 2 re-signed to say it came more than the skew before hop 1. */
    {
        const char *p1[] = {v};
        char *v2 = hop_ad(sk_m2, URL, out, ol, p1, 1, 0, &o2, &l2), ts[PATIENT_TIME_BYTES], *f2;
        pt_time_format(NOW - 30, ts);
        snprintf(from, sizeof from, "\"at\":\"%s\"", ts);
        pt_time_format(NOW - 60 - PATIENT_VERIFY_CLOCK_SKEW - 1, ts);
        snprintf(to, sizeof to, "\"at\":\"%s\"", ts);
        /* re-sign hop 2 with its own key */
        patient_jws *j2 = NULL;
        ck_assert_int_eq(patient_jws_parse(v2, strlen(v2), &j2), PATIENT_OK);
        char *pl = tu_replace1((const char *)j2->payload, from, to);
        ck_assert_int_eq(patient_jws_sign(sk_m2, PATIENT_CHANGE_TYP, pl, strlen(pl), &f2), PATIENT_OK);
        const char *ch[] = {v, f2};
        patient_evidence ev = ev_make(URL, o2, l2, ch, 2);
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.time.order");
        /* Twin: the genuine hop 2 (30 s after hop 1). */
        const char *ch2[] = {v, v2};
        ev = ev_make(URL, o2, l2, ch2, 2);
        expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL);
        free(pl);
        free(f2);
        free(v2);
        patient_jws_free(j2);
    }
    patient_jws_free(j);
    free(v);
    free(out);
    free(o2);
}
END_TEST

/* A header value over the 1 MiB JWS cap. */
START_TEST(oversized_header_value)
{
    size_t n = PATIENT_JWS_MAX + 16;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[100] = '.';
    big[200] = '.';
    big[n] = 0;
    const char *ch[] = {big};
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.malformed");
    free(big);
}
END_TEST

START_TEST(too_many_hops)
{
    const char *ch[PATIENT_MAX_HOPS + 1];
    for (size_t i = 0; i < PATIENT_MAX_HOPS + 1; i++)
        ch[i] = "x.y.z";
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), ch, PATIENT_MAX_HOPS + 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.limit");
}
END_TEST

/* ---- policy denials ------------------------------------------------------------ */

/* A policy trusting the publisher and one middlebox with key mk; mbox_rest
 * is the rest of the middlebox object after its "key". */
static patient_policy *
policy_json(const char *mbox_rest, const patient_pubkey *mk)
{
    char pub[PATIENT_PUBKEY_B64], mb[PATIENT_PUBKEY_B64], *txt, *detail = NULL;
    patient_policy *p = NULL;
    patient_pubkey_encode(&pk_pub, pub);
    patient_pubkey_encode(mk, mb);
    ck_assert_int_ge(asprintf(&txt,
                              "{\"patient\":1,\"type\":\"policy\",\"publishers\":{\"%s\":[\"%s\"]},"
                              "\"middleboxes\":[{\"name\":\"m\",\"key\":\"%s\",%s}]}",
                              ORIGIN, pub, mb, mbox_rest),
                     0);
    ck_assert_msg(patient_policy_parse(txt, strlen(txt), &p, &detail) == PATIENT_OK, "%s: %s", txt,
                  detail ? detail : "");
    free(txt);
    return p;
}

static void
denied(const char *mbox_fmt, int ad_hop, int extra, const char *code)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    patient_policy *p = policy_json(mbox_fmt, &pk_m1);
    char *v = ad_hop ? hop_ad(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, extra, &out, &ol)
                     : hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1,
                                   "TLSv1.3", &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    expect(run(p, &ev), code ? PATIENT_VERDICT_INVALID : PATIENT_VERDICT_MODIFIED, code);
    patient_policy_free(p);
    free(v);
    free(out);
}

START_TEST(policy_json_allows)
{
    denied("\"reasons\":[\"tracker.*\"],\"paths\":[\"/page.html\"],"
           "\"insert\":false",
           0, 0, NULL);
}
END_TEST
START_TEST(reason_denied)
{
    denied("\"reasons\":[\"ads.*\"]", 0, 0, "policy.reason.denied");
}
END_TEST
START_TEST(path_denied)
{
    denied("\"reasons\":[\"tracker.*\"],\"paths\":[\"/news/*\"]", 0,
           0, "policy.path.denied");
}
END_TEST
START_TEST(origin_denied)
{
    denied("\"reasons\":[\"tracker.*\"],\"origins\":[\"https://"
           "other.example\"]",
           0, 0, "policy.origin.denied");
}
END_TEST
START_TEST(insert_denied)
{
    denied("\"reasons\":[\"ads.*\"],\"insert\":false", 1, 0,
           "policy.insert.denied");
}
END_TEST
START_TEST(insert_allowed)
{
    denied("\"reasons\":[\"ads.*\"],\"insert\":true", 1, 1, NULL);
}
END_TEST
START_TEST(edits_exceeded)
{
    denied("\"reasons\":[\"ads.*\"],\"insert\":true,\"max_edits\":1",
           1, 1, "policy.edits.exceeded");
}
END_TEST

/* max_edits holds per response: one middlebox chaining two hops of one edit
 * each is over a bound of 1 (at hop 2); the twin with a bound of 2 and the
 * same chain is modified. */
START_TEST(edits_exceeded_across_own_hops)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t l1 = 0, l2 = 0;
    char *v1 = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3",
                           &o1, &l1);
    const char *p1[] = {v1};
    char *v2 = hop_ad(sk_m1, URL, o1, l1, p1, 1, 0, &o2, &l2);
    const char *ch[] = {v1, v2};
    patient_evidence ev = ev_make(URL, o2, l2, ch, 2);
    patient_policy *p = policy_json("\"reasons\":[\"*\"],\"insert\":true,\"max_edits\":1", &pk_m1);
    patient_report *r = run(p, &ev);
    const cJSON *res;
    int at_hop2 = 0;
    cJSON_ArrayForEach(res, r->results)
    {
        if (strcmp(pt_json_str(res, "code"), "policy.edits.exceeded") == 0)
            at_hop2 += strcmp(pt_json_str(res, "where"), "hop 2") == 0 ? 1 : 100;
    }
    ck_assert_int_eq(at_hop2, 1); /* once, at hop 2 */
    expect(r, PATIENT_VERDICT_INVALID, "policy.edits.exceeded");
    patient_policy_free(p);
    p = policy_json("\"reasons\":[\"*\"],\"insert\":true,\"max_edits\":2", &pk_m1);
    expect(run(p, &ev), PATIENT_VERDICT_MODIFIED, NULL);
    patient_policy_free(p);
    free(v1);
    free(v2);
    free(o1);
    free(o2);
}
END_TEST

START_TEST(weak_upstream_tls)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.1",
                          &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "policy.tls.weak");
    free(v);
    free(out);
}
END_TEST

/* A hop towards an https origin that says nothing about its upstream TLS,
 * fetched it over plain HTTP, or did not verify its certificate: invalid
 * under the default policy (each twin of the verified hop above). */
static void
upstream_tls_case(const char *version, const char *cipher, int verified, const char *code)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    patient_hop *h = NULL;
    char *v = NULL;
    size_t a = pos_of(BODY, strlen(BODY), "<script"), b = pos_of(BODY, strlen(BODY), "</script>") + 9;

    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk_m1, .name = "Tracker Filter",
                                                           .service = "tracker-filter", .url = URL,
                                                           .in = (const uint8_t *)BODY,
                                                           .in_len = strlen(BODY)},
                                       &h),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, a, b - a, NULL, 0, "tracker.removed", "trk-1", NULL, 1),
                     PATIENT_OK);
    if (version)
        ck_assert_int_eq(patient_hop_set_tls(h, version, cipher, verified), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(h, NOW - 60, &out, &ol, &v), PATIENT_OK);
    patient_hop_free(h);
    {
        const char *ch[] = {v};
        patient_evidence ev = ev_make(URL, out, ol, ch, 1);
        expect(run(pol, &ev), code ? PATIENT_VERDICT_INVALID : PATIENT_VERDICT_MODIFIED, code);
    }
    free(v);
    free(out);
}

START_TEST(upstream_tls_required)
{
    upstream_tls_case("TLSv1.3", "TLS_AES_256_GCM_SHA384", 1, NULL);
    upstream_tls_case(NULL, NULL, 0, "change.tls.unknown");
    upstream_tls_case(PATIENT_TLS_NONE, NULL, 0, "change.tls.plaintext");
    upstream_tls_case("TLSv1.3", "TLS_AES_256_GCM_SHA384", 0, "change.tls.unverified");
}
END_TEST

START_TEST(disclosure_required_missing)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    patient_policy *p = NULL;
    char pub[PATIENT_PUBKEY_B64], mb[PATIENT_PUBKEY_B64], *txt, *detail = NULL;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3",
                          &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    patient_pubkey_encode(&pk_pub, pub);
    patient_pubkey_encode(&pk_m1, mb);
    ck_assert_int_ge(asprintf(&txt,
                              "{\"patient\":1,\"type\":\"policy\",\"publishers\":{\"%s\":[\"%s\"]},"
                              "\"middleboxes\":[{\"name\":\"m\",\"key\":\"%s\",\"reasons\":[\"*\"]}],"
                              "\"require\":{\"disclosure\":true}}",
                              ORIGIN, pub, mb),
                     0);
    ck_assert_int_eq(patient_policy_parse(txt, strlen(txt), &p, &detail), PATIENT_OK);
    expect(run(p, &ev), PATIENT_VERDICT_INVALID, "disclosure.missing");
    patient_policy_free(p);
    free(txt);
    free(v);
    free(out);
}
END_TEST

/* ---- manifest ------------------------------------------------------------------ */

START_TEST(manifest_forged)
{
    char *m = strdup(man_json);
    m[pos_of(m, man_len, "\"version\": 3")+11] = '4';
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    ev.manifest = (const uint8_t *)m;
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "manifest.signature.invalid");
    free(m);
}
END_TEST

START_TEST(manifest_signature_malformed)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    ev.manifest_sig = "untrusted comment: x\nnot a signature\n";
    ev.manifest_sig_len = strlen(ev.manifest_sig);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "manifest.signature.malformed");
}
END_TEST

START_TEST(manifest_unknown_key)
{
    char *j = NULL, *s = NULL;
    size_t l = 0;
    make_manifest(sk_x, ORIGIN, 3, NOW - 3600, NOW + 86400, &j, &l, &s);
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    ev.manifest = (const uint8_t *)j;
    ev.manifest_len = l;
    ev.manifest_sig = s;
    ev.manifest_sig_len = strlen(s);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "manifest.key.unknown");
    free(j);
    free(s);
}
END_TEST

START_TEST(manifest_expired)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    expect(run_at(pol, &ev, NOW + 8 * 86400, NULL), PATIENT_VERDICT_INVALID, "manifest.expired");
    /* Twin: an audit at a time inside the validity window. */
    expect(run_at(pol, &ev, NOW + 6 * 86400, NULL), PATIENT_VERDICT_VERIFIED, NULL);
}
END_TEST

START_TEST(manifest_not_yet_valid)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    expect(run_at(pol, &ev, NOW - 2 * 3600, NULL), PATIENT_VERDICT_INVALID, "manifest.expired");
}
END_TEST

START_TEST(manifest_rollback)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/state", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    write_file(statepath, "{\"" ORIGIN "\": 5}", strlen("{\"" ORIGIN "\": 5}"), 0600);
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    expect(run_at(pol, &ev, NOW, statepath), PATIENT_VERDICT_INVALID, "manifest.rollback");
}
END_TEST

/* Twin of rollback: versions recorded, then an older one refused. */
START_TEST(manifest_state_records)
{
    char *j = NULL, *s = NULL, *st;
    size_t l = 0, sl = 0;
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    expect(run_at(pol, &ev, NOW, statepath), PATIENT_VERDICT_VERIFIED, NULL);
    st = slurp(statepath, &sl);
    ck_assert(strstr(st, ORIGIN) != NULL);
    free(st);
    make_manifest(sk_pub, ORIGIN, 2, NOW - 3600, NOW + 86400, &j, &l, &s);
    ev.manifest = (const uint8_t *)j;
    ev.manifest_len = l;
    ev.manifest_sig = s;
    ev.manifest_sig_len = strlen(s);
    expect(run_at(pol, &ev, NOW, statepath), PATIENT_VERDICT_INVALID, "manifest.rollback");
    free(j);
    free(s);
}
END_TEST

START_TEST(manifest_other_origin)
{
    char *j = NULL, *s = NULL;
    size_t l = 0;
    make_manifest(sk_pub, "https://evil.example", 3, NOW - 3600, NOW + 86400, &j, &l, &s);
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    ev.manifest = (const uint8_t *)j;
    ev.manifest_len = l;
    ev.manifest_sig = s;
    ev.manifest_sig_len = strlen(s);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "manifest.origin.mismatch");
    free(j);
    free(s);
}
END_TEST

START_TEST(resource_not_listed)
{
    patient_evidence ev = ev_make(ORIGIN "/missing.html", BODY, strlen(BODY), NULL, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_UNVERIFIABLE, "manifest.resource.missing");
}
END_TEST

START_TEST(other_listed_resource_verified)
{
    patient_evidence ev = ev_make(URL_OTHER, OTHER_BODY, strlen(OTHER_BODY), NULL, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_VERIFIED, NULL);
    /* Twin: page.html served for other.html. */
    ev = ev_make(URL_OTHER, BODY, strlen(BODY), NULL, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch");
}
END_TEST

START_TEST(no_manifest)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    patient_policy *p;
    ev.manifest = NULL;
    ev.manifest_sig = NULL;
    ev.manifest_error = "HTTP 404";
    expect(run(pol, &ev), PATIENT_VERDICT_UNVERIFIABLE, "manifest.missing");
    {
        char pub[PATIENT_PUBKEY_B64], *txt, *detail = NULL;
        patient_pubkey_encode(&pk_pub, pub);
        ck_assert_int_ge(asprintf(&txt,
                                  "{\"patient\":1,\"type\":\"policy\",\"publishers\":{\"%s\":[\"%s\"]},"
                                  "\"unsigned\":\"invalid\"}",
                                  ORIGIN, pub),
                         0);
        ck_assert_int_eq(patient_policy_parse(txt, strlen(txt), &p, &detail), PATIENT_OK);
        free(txt);
    }
    expect(run(p, &ev), PATIENT_VERDICT_INVALID, "manifest.missing");
    patient_policy_free(p);
}
END_TEST

START_TEST(origin_not_in_policy)
{
    patient_evidence ev = ev_make("https://unknown.example/page.html", BODY, strlen(BODY), NULL, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_UNVERIFIABLE, "policy.publisher.unknown");
}
END_TEST

START_TEST(url_not_http)
{
    patient_evidence ev = ev_make("ftp://site.example/page.html", BODY, strlen(BODY), NULL, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_UNVERIFIABLE, "url.invalid");
}
END_TEST

/* ---- Patient-Origin (dynamic responses) ------------------------------------------ */

static const char DYN[] = "{\"temperature\": 21, \"city\": \"Paris\"}\n";

static patient_evidence
ev_dyn(const char *sig, const void *body, size_t len)
{
    patient_evidence ev = ev_make(URL_DYN, body, len, NULL, 0);
    ev.origin_sig = sig;
    return ev;
}

START_TEST(dynamic_verified)
{
    char *s = NULL;
    ck_assert_int_eq(patient_origin_sign(sk_pub, URL_DYN, DYN, strlen(DYN), NOW - 10, NOW + 600, &s),
                     PATIENT_OK);
    patient_evidence ev = ev_dyn(s, DYN, strlen(DYN));
    patient_report *r = run(pol, &ev);
    /* The bytes were checked against the origin's signature: proven. */
    ck_assert_str_eq(pt_json_str(r->doc, "proof"), "proven");
    expect(r, PATIENT_VERDICT_VERIFIED, NULL);
    /* No manifest at all: the response signature is enough. */
    ev.manifest = NULL;
    ev.manifest_sig = NULL;
    r = run(pol, &ev);
    ck_assert_str_eq(pt_json_str(r->doc, "proof"), "proven");
    expect(r, PATIENT_VERDICT_VERIFIED, NULL);
    free(s);
}
END_TEST

START_TEST(dynamic_body_changed)
{
    char *s = NULL, *b = strdup(DYN);
    ck_assert_int_eq(patient_origin_sign(sk_pub, URL_DYN, DYN, strlen(DYN), NOW - 10, NOW + 600, &s),
                     PATIENT_OK);
    b[17] = '9';
    patient_evidence ev = ev_dyn(s, b, strlen(b));
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch");
    free(s);
    free(b);
}
END_TEST

START_TEST(dynamic_expired)
{
    char *s = NULL;
    ck_assert_int_eq(patient_origin_sign(sk_pub, URL_DYN, DYN, strlen(DYN), NOW - 10, NOW + 600, &s),
                     PATIENT_OK);
    patient_evidence ev = ev_dyn(s, DYN, strlen(DYN));
    expect(run_at(pol, &ev, NOW + 601, NULL), PATIENT_VERDICT_INVALID, "origin.expired");
    free(s);
}
END_TEST

START_TEST(dynamic_other_url)
{
    char *s = NULL;
    ck_assert_int_eq(patient_origin_sign(sk_pub, ORIGIN "/api/other", DYN, strlen(DYN), NOW - 10,
                                         NOW + 600, &s),
                     PATIENT_OK);
    patient_evidence ev = ev_dyn(s, DYN, strlen(DYN));
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "origin.url.mismatch");
    free(s);
}
END_TEST

/* Twin of dynamic_verified: a Patient-Origin that does not verify checked
 * nothing, so the report says proof none. */
START_TEST(dynamic_forged_proof_none)
{
    char *s = NULL;
    ck_assert_int_eq(patient_origin_sign(sk_x, URL_DYN, DYN, strlen(DYN), NOW - 10, NOW + 600, &s),
                     PATIENT_OK);
    patient_evidence ev = ev_dyn(s, DYN, strlen(DYN));
    ev.manifest = NULL;
    ev.manifest_sig = NULL;
    patient_report *r = run(pol, &ev);
    ck_assert_str_eq(pt_json_str(r->doc, "proof"), "none");
    expect(r, PATIENT_VERDICT_INVALID, "origin.key.unknown");
    free(s);
}
END_TEST

START_TEST(dynamic_unknown_key)
{
    char *s = NULL;
    ck_assert_int_eq(patient_origin_sign(sk_x, URL_DYN, DYN, strlen(DYN), NOW - 10, NOW + 600, &s),
                     PATIENT_OK);
    patient_evidence ev = ev_dyn(s, DYN, strlen(DYN));
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "origin.key.unknown");
    free(s);
}
END_TEST

START_TEST(dynamic_forged_signature)
{
    char *s = NULL, *f;
    ck_assert_int_eq(patient_origin_sign(sk_pub, URL_DYN, DYN, strlen(DYN), NOW - 10, NOW + 600, &s),
                     PATIENT_OK);
    f = flip_sig(s);
    patient_evidence ev = ev_dyn(f, DYN, strlen(DYN));
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "origin.signature.invalid");
    free(s);
    free(f);
}
END_TEST

/* A dynamic response changed by a trusted hop that disclosed everything:
 * undone, then checked against Patient-Origin. */
START_TEST(dynamic_modified_proven)
{
    static const char D[] = "<p>dyn</p><script src=x></script><p>end</p>";
    char *s = NULL, *v;
    uint8_t *out = NULL;
    size_t ol = 0;
    ck_assert_int_eq(patient_origin_sign(sk_pub, URL_DYN, D, strlen(D), NOW - 10, NOW + 600, &s),
                     PATIENT_OK);
    v = hop_tracker(sk_m1, URL_DYN, (const uint8_t *)D, strlen(D), NULL, 0, 1, "TLSv1.3", &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_dyn(s, out, ol);
    ev.changes = ch;
    ev.nchanges = 1;
    expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL);
    free(v);
    free(out);
    /* The same hop withholding the bytes: confined against the chunk root
     * Patient-Origin signs (tests/check_confine.c has its twins, and the
     * unverifiable verdict for a Patient-Origin without a chunk root). */
    v = hop_tracker(sk_m1, URL_DYN, (const uint8_t *)D, strlen(D), NULL, 0, 0, "TLSv1.3", &out, &ol);
    ch[0] = v;
    ev.body = out;
    ev.body_len = ol;
    expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL);
    free(v);
    free(out);
    free(s);
}
END_TEST

/* ---- what patient_verify_url hands on (pt_checked) ---------------------------
 * The core takes a check the gatherer made only for the very bytes it was
 * made of (the same pointers and lengths), with the same keys, and a
 * lookup only in the manifest it takes and for the same path; each twin
 * below hands it a check of something else that claims more than the
 * evidence holds, which the core must not believe. */

static patient_report *
run_pre(const patient_policy *p, const patient_evidence *ev, pt_checked *pre)
{
    patient_verify_opts o;
    patient_report *r = NULL;
    memset(&o, 0, sizeof o);
    o.now = NOW;
    ck_assert_int_eq(pt_verify_evidence(p, ev, &o, pre, &r), PATIENT_OK);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* What the core did not take, freed as patient_verify_url frees it. */
static void
pre_free(pt_checked *pre)
{
    pt_checked_clear(pre);
}

static const patient_pubkey *
publisher_keys(size_t *n)
{
    const patient_pubkey *k = NULL;
    ck_assert_int_eq(patient_policy_publisher_keys(pol, ORIGIN, &k, n), PATIENT_OK);
    ck_assert_uint_eq(*n, 1);
    return k;
}

/* pre as the gatherer fills it for one descriptor value. */
static void
pre_change(pt_checked *pre, const char *value)
{
    const patient_policy_middlebox *mb = patient_policy_middlebox_find(pol, pk_m1.id);
    ck_assert_ptr_nonnull(mb);
    pre->n = 1;
    pre->value[0] = value;
    pre->key[0] = patient_policy_middlebox_key(mb);
    ck_assert_int_eq(patient_change_parse(value, strlen(value), &pre->change[0]), PATIENT_OK);
}

START_TEST(pre_descriptor_other_pointer)
{
    uint8_t *out = NULL;
    size_t ol = 0;
    char *v = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3",
                          &out, &ol);
    char *f = flip_sig(v), *copy = strdup(f);
    const char *ch[] = {v}, *fch[] = {f};
    patient_evidence ev = ev_make(URL, out, ol, ch, 1);
    pt_checked pre;

    /* The very value, its signature checked with the policy's key: taken. */
    memset(&pre, 0, sizeof pre);
    pre_change(&pre, v);
    expect(run_pre(pol, &ev, &pre), PATIENT_VERDICT_MODIFIED, NULL);
    ck_assert_ptr_null(pre.change[0]);
    pre_free(&pre);
    /* Twin: a forged value; pre says a descriptor with the same bytes at
     * another address verifies with that key. Not this value: checked. */
    ev = ev_make(URL, out, ol, fch, 1);
    pre_change(&pre, copy);
    expect(run_pre(pol, &ev, &pre), PATIENT_VERDICT_INVALID, "change.signature.invalid");
    ck_assert_ptr_nonnull(pre.change[0]);
    pre_free(&pre);
    free(copy);
    free(f);
    free(v);
    free(out);
}
END_TEST

START_TEST(pre_manifest_other_bytes_or_keys)
{
    size_t nkeys;
    const patient_pubkey *keys = publisher_keys(&nkeys);
    patient_pubkey other[1] = {keys[0]};
    char *m = strdup(man_json);
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    pt_checked pre;

    /* The evidence's own bytes with the policy's keys: taken. */
    memset(&pre, 0, sizeof pre);
    pt_manifest_check_keys(&pre.manifest, ev.manifest, ev.manifest_len, ev.manifest_sig,
                           ev.manifest_sig_len, keys, nkeys);
    ck_assert_int_eq(pre.manifest.err, PATIENT_OK);
    expect(run_pre(pol, &ev, &pre), PATIENT_VERDICT_VERIFIED, NULL);
    ck_assert_ptr_null(pre.manifest.m);
    pre_free(&pre);
    /* Twin: a forged manifest that pre claims verified, checked with
     * another array of the same keys: checked again. */
    m[pos_of(m, man_len, "\"version\": 3") + 11] = '4';
    ev.manifest = (const uint8_t *)m;
    pt_manifest_check_keys(&pre.manifest, (const uint8_t *)man_json, man_len, man_sig,
                           strlen(man_sig), other, 1);
    ck_assert_int_eq(pre.manifest.err, PATIENT_OK);
    pre.manifest.json = ev.manifest;
    expect(run_pre(pol, &ev, &pre), PATIENT_VERDICT_INVALID, "manifest.signature.invalid");
    ck_assert_ptr_nonnull(pre.manifest.m);
    pre_free(&pre);
    /* Twin: the same pointers and keys, fewer bytes: other bytes. */
    ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    ev.manifest_len = man_len - 2;
    pt_manifest_check_keys(&pre.manifest, (const uint8_t *)man_json, man_len, man_sig,
                           strlen(man_sig), keys, nkeys);
    ck_assert_int_eq(pre.manifest.err, PATIENT_OK);
    expect(run_pre(pol, &ev, &pre), PATIENT_VERDICT_INVALID, "manifest.signature.invalid");
    ck_assert_ptr_nonnull(pre.manifest.m);
    pre_free(&pre);
    free(m);
}
END_TEST

/* A sharded site (600 pages, one level of shards) published with the
 * publisher key, and the shards lookups got, as the evidence carries them. */
typedef struct {
    char dir[600];
    uint8_t *top, *sig;
    size_t toplen, siglen;
    patient_evidence_shard shards[3];
    uint8_t *bytes[3];
    char names[3][65];
    size_t n;
} sharded;

static patient_err
sharded_get(void *arg, const char *name, const uint8_t **p, size_t *len)
{
    sharded *s = arg;
    char path[800];
    size_t k = s->n;

    if (k >= 3)
        return PATIENT_ERR_LIMIT;
    snprintf(path, sizeof path, "%s/.well-known/patient/shards/%s.json", s->dir, name);
    if (pt_read_file(path, PATIENT_MANIFEST_SHARD_MAX_BYTES, &s->bytes[k], &s->shards[k].len) !=
        PATIENT_OK)
        return PATIENT_ERR_NOT_FOUND;
    memcpy(s->names[k], name, 65);
    s->shards[k].name = s->names[k];
    s->shards[k].bytes = s->bytes[k];
    s->n++;
    *p = s->bytes[k];
    *len = s->shards[k].len;
    return PATIENT_OK;
}

static void
sharded_make(sharded *s)
{
    patient_manifest_opts o;
    patient_publish_result res;
    char p[800];

    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s/big", tmpdir);
    ck_assert_int_eq(mkdir(s->dir, 0755), 0);
    for (int i = 0; i < 600; i++) {
        char body[32];
        snprintf(p, sizeof p, "%s/p%d.html", s->dir, i);
        snprintf(body, sizeof body, "page %d\n", i);
        write_file(p, body, strlen(body), 0644);
    }
    memset(&o, 0, sizeof o);
    o.origin = ORIGIN;
    o.version = 3;
    o.issued = NOW - 3600;
    o.expires = NOW + 7 * 86400;
    o.threads = 1;
    ck_assert_int_eq(patient_manifest_publish(s->dir, NULL, sk_pub, &o, &res, NULL), PATIENT_OK);
    ck_assert_uint_gt(res.shards, 0);
    snprintf(p, sizeof p, "%s/.well-known/patient/manifest.json", s->dir);
    ck_assert_int_eq(pt_read_file(p, PATIENT_MANIFEST_MAX_BYTES, &s->top, &s->toplen), PATIENT_OK);
    snprintf(p, sizeof p, "%s/.well-known/patient/manifest.json.minisig", s->dir);
    ck_assert_int_eq(pt_read_file(p, 4096, &s->sig, &s->siglen), PATIENT_OK);
}

static void
sharded_free(sharded *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->bytes[i]);
    free(s->top);
    free(s->sig);
}

/* pre as the gatherer fills it: the manifest checked, and path looked up
 * in it through the shards s collects. */
static void
pre_lookup(pt_checked *pre, sharded *s, const char *path, patient_err want)
{
    size_t nkeys;
    const patient_pubkey *keys = publisher_keys(&nkeys);
    pt_lookup_checked *l = &pre->lookup;

    memset(pre, 0, sizeof *pre);
    pt_manifest_check_keys(&pre->manifest, s->top, s->toplen, (const char *)s->sig, s->siglen,
                           keys, nkeys);
    ck_assert_int_eq(pre->manifest.err, PATIENT_OK);
    ck_assert_uint_eq(patient_manifest_shard_levels(pre->manifest.m, NULL), 1);
    ck_assert_int_eq(patient_manifest_lookup_sharded(pre->manifest.m, path, sharded_get, s,
                                                     &l->leaf, &l->res, &l->si),
                     want);
    ck_assert_ptr_nonnull(l->leaf);
    l->m = pre->manifest.m;
    l->path = strdup(path);
    l->err = want;
}

/* Evidence for /p17.html of s's site served as body, with the manifest
 * and the shards s has collected so far. */
static patient_evidence
sharded_ev(const sharded *s, const char *body)
{
    patient_evidence ev = ev_make(ORIGIN "/p17.html", body, strlen(body), NULL, 0);
    ev.manifest = s->top;
    ev.manifest_len = s->toplen;
    ev.manifest_sig = (const char *)s->sig;
    ev.manifest_sig_len = s->siglen;
    ev.shards = s->shards;
    ev.nshards = s->n;
    return ev;
}

START_TEST(pre_lookup_other_path)
{
    static const char p17[] = "page 17\n", p1[] = "page 1\n";
    sharded s;
    pt_checked pre;
    patient_evidence ev;
    patient_pubkey other[1];

    sharded_make(&s);
    /* The page's own lookup in the manifest taken: taken with it. */
    pre_lookup(&pre, &s, "/p17.html", PATIENT_OK);
    ev = sharded_ev(&s, p17);
    expect(run_pre(pol, &ev, &pre), PATIENT_VERDICT_VERIFIED, NULL);
    ck_assert_ptr_null(pre.manifest.m);
    ck_assert_ptr_null(pre.lookup.leaf);
    pre_free(&pre);
    /* Twin: page 1's bytes served for page 17, with a lookup of /p1.html
     * (which lists those bytes) handed on: not this path, looked up again. */
    pre_lookup(&pre, &s, "/p1.html", PATIENT_OK);
    ev = sharded_ev(&s, p1);
    expect(run_pre(pol, &ev, &pre), PATIENT_VERDICT_INVALID, "body.mismatch");
    ck_assert_ptr_null(pre.manifest.m);
    ck_assert_ptr_nonnull(pre.lookup.leaf);
    pre_free(&pre);
    /* Twin: the path's lookup, in a manifest checked with another array of
     * keys: neither is taken (same verdict, from the core's own checks). */
    pre_lookup(&pre, &s, "/p17.html", PATIENT_OK);
    other[0] = pre.manifest.keys[0];
    pre.manifest.keys = other;
    ev = sharded_ev(&s, p17);
    expect(run_pre(pol, &ev, &pre), PATIENT_VERDICT_VERIFIED, NULL);
    ck_assert_ptr_nonnull(pre.manifest.m);
    ck_assert_ptr_nonnull(pre.lookup.leaf);
    pre_free(&pre);
    sharded_free(&s);
}
END_TEST

/* ---- bundles ---------------------------------------------------------------------- */

static char *
bundle_of(const patient_evidence *ev)
{
    char *b = NULL;
    ck_assert_int_eq(patient_bundle_build(ev, pol, NOW, &b), PATIENT_OK);
    return b;
}

/* The bundle's policy member comes from the typed policy: byte for byte
 * what the policy's file text, parsed and put in its place, gives (as
 * bundles were written before), for a policy with every optional member
 * and strings that need escapes. Without a policy the member is null. */
START_TEST(bundle_policy_as_printed)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    char k1[PATIENT_PUBKEY_B64], k2[PATIENT_PUBKEY_B64], *text, *pj = NULL, *b = NULL, *want;
    patient_policy *p = NULL;
    cJSON *j = NULL, *pt = NULL;
    size_t pl;
    int n;

    patient_pubkey_encode(&pk_m1, k1);
    patient_pubkey_encode(&pk_m2, k2);
    text = malloc(4096);
    n = snprintf(text, 4096,
                 "{\"patient\":1,\"type\":\"policy\","
                 "\"publishers\":{\"https://a.example\":[\"%s\",\"%s\"],"
                 "\"https://b.example\":[\"%s\"]},"
                 "\"middleboxes\":[{\"name\":\"filter \\\"one\\\" \\u00e9\",\"key\":\"%s\","
                 "\"reasons\":[\"tracker.*\",\"ads/x\"],\"paths\":[],\"max_edits\":1000000,"
                 "\"insert\":true,\"may_decrypt\":true,\"interception_ca\":"
                 "[\"sha256-fRE2u1cjrv0khv2kozvSmLaPyJv8whbtKTmrI5ViwqQ=\"]},"
                 "{\"name\":\"two\",\"key\":\"%s\",\"max_edits\":null}],"
                 "\"require\":{\"disclosure\":true,\"max_retention_days\":30,"
                 "\"min_upstream_tls\":null,\"upstream_verified\":false,\"logged\":true,"
                 "\"proof\":\"proven\"},\"unsigned\":\"invalid\"}",
                 k1, k2, k1, k1, k2);
    ck_assert_int_lt(n, 4096);
    ck_assert_int_eq(patient_policy_parse(text, strlen(text), &p, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_bundle_build(&ev, p, NOW, &b), PATIENT_OK);
    ck_assert_int_eq(patient_policy_serialize(p, &pj, &pl), PATIENT_OK);
    ck_assert_int_eq(pt_json_parse(pj, pl, &pt), PATIENT_OK);
    ck_assert_ptr_nonnull(j = cJSON_Parse(b));
    ck_assert(cJSON_ReplaceItemInObjectCaseSensitive(j, "policy", pt));
    want = cJSON_Print(j);
    ck_assert_str_eq(b, want);
    free(want);
    free(b);
    cJSON_Delete(j);
    /* no policy: null */
    ck_assert_int_eq(patient_bundle_build(&ev, NULL, NOW, &b), PATIENT_OK);
    ck_assert_ptr_nonnull(strstr(b, "\n\t\"policy\":\tnull\n}"));
    free(b);
    /* no URL (a required member): refused, nothing written */
    ev.url = NULL;
    b = (char *)"x";
    ck_assert_int_eq(patient_bundle_build(&ev, p, NOW, &b), PATIENT_ERR_ARG);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(patient_bundle_build(NULL, p, NOW, &b), PATIENT_ERR_ARG);
    free(pj);
    free(text);
    patient_policy_free(p);
}
END_TEST

START_TEST(bundle_round_trip)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t l1 = 0, l2 = 0;
    char *v1 = hop_tracker(sk_m1, URL, (const uint8_t *)BODY, strlen(BODY), NULL, 0, 1, "TLSv1.3",
                           &o1, &l1);
    const char *p1[] = {v1};
    char *v2 = hop_ad(sk_m2, URL, o1, l1, p1, 1, 0, &o2, &l2);
    const char *ch[] = {v1, v2};
    patient_evidence ev = ev_make(URL, o2, l2, ch, 2);
    char *b = bundle_of(&ev), *j1 = NULL, *j2 = NULL;
    patient_report *r1 = run(pol, &ev), *r2 = NULL;

    ck_assert_ptr_nonnull(strstr(b, "\"tls_chain\":\tnull")); /* no chain known */
    ck_assert_int_eq(patient_verify_bundle(b, strlen(b), NULL, NULL, &r2), PATIENT_OK);
    ck_assert_int_eq(patient_report_verdict(r2), PATIENT_VERDICT_MODIFIED);
    ck_assert_int_eq(patient_report_json(r1, 0, &j1), PATIENT_OK);
    ck_assert_int_eq(patient_report_json(r2, 0, &j2), PATIENT_OK);
    ck_assert_str_eq(j1, j2); /* same time, same policy: the same report */
    free(j1);
    free(j2);
    patient_report_free(r1);
    patient_report_free(r2);
    /* Re-verified later: the manifest has expired by then. */
    {
        patient_verify_opts o = {0};
        o.now = NOW + 30 * 86400;
        ck_assert_int_eq(patient_verify_bundle(b, strlen(b), pol, &o, &r2), PATIENT_OK);
        expect(r2, PATIENT_VERDICT_INVALID, "manifest.expired");
    }
    free(b);
    /* The chain the verifier saw is recorded, and judged offline as it was
     * online: the same report. */
    {
        static const uint8_t chain[2][32] = {{1}, {2}};
        char sri[PATIENT_SRI_BYTES];
        ev.tls_chain = chain;
        ev.tls_chain_n = 2;
        b = bundle_of(&ev);
        patient_sri_encode(chain[1], sri);
        ck_assert_ptr_nonnull(strstr(b, sri));
        r1 = run(pol, &ev);
        ck_assert_int_eq(patient_verify_bundle(b, strlen(b), NULL, NULL, &r2), PATIENT_OK);
        ck_assert_int_eq(patient_report_json(r1, 0, &j1), PATIENT_OK);
        ck_assert_int_eq(patient_report_json(r2, 0, &j2), PATIENT_OK);
        ck_assert_str_eq(j1, j2);
        free(j1);
        free(j2);
        patient_report_free(r1);
        patient_report_free(r2);
        free(b);
    }
    free(v1);
    free(v2);
    free(o1);
    free(o2);
}
END_TEST

/* The recorded status counts: a 404 bundle is unverifiable offline as the
 * page would be online (fetch.status); a status that is not an integer
 * literal, or missing, makes the bundle malformed. Twin: 200 verifies. */
START_TEST(bundle_status_honoured)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    char *b = bundle_of(&ev), *f;
    patient_report *r = NULL;
    static const struct {
        const char *to;
        patient_err want;
    } bad[] = {{"\"status\": 200.0", PATIENT_ERR_PARSE}, {"\"status\": 2e2", PATIENT_ERR_PARSE},
               {"\"status\": \"200\"", PATIENT_ERR_PARSE}, {"\"status\": 99", PATIENT_ERR_PARSE},
               {"\"nostatus\": 200", PATIENT_ERR_PARSE}};
    static const struct {
        const char *to;
        patient_err want;
    } badver[] = {{"\"patient\": 1.0", PATIENT_ERR_PARSE}, {"\"patient\": 2", PATIENT_ERR_UNSUPPORTED},
                  {"\"nopatient\": 1", PATIENT_ERR_PARSE}};

    ck_assert_ptr_nonnull(strstr(b, "\"status\":\t200"));
    ck_assert_int_eq(patient_verify_bundle(b, strlen(b), pol, NULL, &r), PATIENT_OK);
    expect(r, PATIENT_VERDICT_VERIFIED, NULL);
    f = tu_replace1(b, "\"status\":\t200", "\"status\": 404");
    ck_assert_int_eq(patient_verify_bundle(f, strlen(f), pol, NULL, &r), PATIENT_OK);
    expect(r, PATIENT_VERDICT_UNVERIFIABLE, "fetch.status");
    free(f);
    for (size_t i = 0; i < sizeof badver / sizeof badver[0]; i++) {
        f = tu_replace1(b, "\"patient\":\t1", badver[i].to);
        r = NULL;
        ck_assert_int_eq(patient_verify_bundle(f, strlen(f), pol, NULL, &r), badver[i].want);
        ck_assert_ptr_null(r);
        free(f);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = tu_replace1(b, "\"status\":\t200", bad[i].to);
        r = NULL;
        ck_assert_int_eq(patient_verify_bundle(f, strlen(f), pol, NULL, &r), bad[i].want);
        ck_assert_ptr_null(r);
        free(f);
    }
    free(b);
}
END_TEST

START_TEST(bundle_body_edited)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    char *b = bundle_of(&ev), *s, *e64;
    cJSON *j = cJSON_Parse(b);
    patient_report *r = NULL;
    char *evil = strdup(BODY);
    evil[0] = 'X';
    e64 = b64(evil, strlen(evil));
    cJSON_ReplaceItemInObject(j, "body", cJSON_CreateString(e64));
    s = cJSON_Print(j);
    ck_assert_int_eq(patient_verify_bundle(s, strlen(s), NULL, NULL, &r), PATIENT_ERR_HASH);
    ck_assert_ptr_null(r);
    /* And with body_integrity recomputed too: the verdict catches it. */
    {
        uint8_t h[PATIENT_SHA256_BYTES];
        char sri[PATIENT_SRI_BYTES];
        ck_assert_int_eq(patient_sha256(evil, strlen(evil), h), PATIENT_OK);
        patient_sri_encode(h, sri);
        cJSON_ReplaceItemInObject(j, "body_integrity", cJSON_CreateString(sri));
        free(s);
        s = cJSON_Print(j);
        ck_assert_int_eq(patient_verify_bundle(s, strlen(s), NULL, NULL, &r), PATIENT_OK);
        expect(r, PATIENT_VERDICT_INVALID, "body.mismatch");
    }
    cJSON_Delete(j);
    free(s);
    free(e64);
    free(evil);
    free(b);
}
END_TEST

/* Structurally broken bundles: an error code, never a NULL report with OK. */
START_TEST(bundle_malformed)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    char *b = bundle_of(&ev);
    static const char *const drop[] = {"changes", "url", "created", "body", "policy", "body_integrity"};
    patient_report *r = NULL;

    ck_assert_int_eq(patient_verify_bundle("{", 1, NULL, NULL, &r), PATIENT_ERR_JSON);
    ck_assert_int_eq(patient_verify_bundle("[]", 2, NULL, NULL, &r), PATIENT_ERR_PARSE);
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) {
        cJSON *j = cJSON_Parse(b);
        char *s;
        patient_err err;
        cJSON_DeleteItemFromObject(j, drop[i]);
        s = cJSON_Print(j);
        err = patient_verify_bundle(s, strlen(s), NULL, NULL, &r);
        ck_assert_msg(err != PATIENT_OK, "bundle without %s accepted", drop[i]);
        ck_assert_ptr_null(r);
        free(s);
        cJSON_Delete(j);
    }
    {
        static const char *const bad[][2] = {
            {"changes", "[1]"}, {"disclosures", "{}"}, {"manifest_sig", "7"},
            {"body", "\"%%%\""}, {"origin_sig", "[]"},
            /* the recorded chain: 1..16 SPKI pins or null, nothing else */
            {"tls_chain", "[]"}, {"tls_chain", "\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\""},
            {"tls_chain", "[\"sha256-AAAA\"]"}, {"tls_chain", "[\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\", 1]"},
            {"tls_chain", "[\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            cJSON *j = cJSON_Parse(b);
            char *s;
            patient_err err;
            cJSON_ReplaceItemInObject(j, bad[i][0], cJSON_Parse(bad[i][1]));
            s = cJSON_Print(j);
            err = patient_verify_bundle(s, strlen(s), NULL, NULL, &r);
            ck_assert_msg(err != PATIENT_OK, "bundle with %s=%s accepted", bad[i][0], bad[i][1]);
            ck_assert_ptr_null(r);
            free(s);
            cJSON_Delete(j);
        }
    }
    free(b);
}
END_TEST

/* The descriptor cap (PATIENT_BUNDLE_MAX_CHANGES, docs/format/report.md):
 * at the cap the bundle is read and the page judged (33 values: one hop
 * too many, change.limit); one past it the bundle is malformed. The same
 * cap for the tools' reader, patient_bundle_read. */
START_TEST(bundle_changes_cap)
{
    const char *ch[PATIENT_BUNDLE_MAX_CHANGES + 1];
    patient_evidence ev;
    patient_bundle *pb = NULL;
    patient_report *r = NULL;
    const char *why = NULL;
    char *b;

    for (size_t i = 0; i <= PATIENT_BUNDLE_MAX_CHANGES; i++)
        ch[i] = "not-a-descriptor";
    ck_assert_int_eq(PATIENT_BUNDLE_MAX_CHANGES, 33);
    ev = ev_make(URL, BODY, strlen(BODY), ch, PATIENT_BUNDLE_MAX_CHANGES);
    b = bundle_of(&ev);
    ck_assert_int_eq(patient_verify_bundle(b, strlen(b), NULL, NULL, &r), PATIENT_OK);
    expect(r, PATIENT_VERDICT_INVALID, "change.limit");
    ck_assert_int_eq(patient_bundle_read(b, strlen(b), &pb, &why), PATIENT_OK);
    ck_assert_ptr_null(why);
    ck_assert_uint_eq(patient_bundle_change_count(pb), 33);
    ck_assert_str_eq(patient_bundle_changes(pb)[32], "not-a-descriptor");
    patient_bundle_free(pb);
    free(b);
    ev = ev_make(URL, BODY, strlen(BODY), ch, PATIENT_BUNDLE_MAX_CHANGES + 1);
    b = bundle_of(&ev);
    r = NULL;
    ck_assert_int_eq(patient_verify_bundle(b, strlen(b), NULL, NULL, &r), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(r);
    pb = (patient_bundle *)b;
    ck_assert_int_eq(patient_bundle_read(b, strlen(b), &pb, &why), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(pb);
    ck_assert_str_eq(why, "no \"changes\" array of at most 33 strings");
    free(b);
}
END_TEST

/* patient_bundle_read: the descriptors and their logged-change evidence as
 * the verifier reads them (each shape it refuses, refused here too), and
 * log_proofs replaced and printed. */
START_TEST(bundle_read_descriptors)
{
    static const struct {
        const char *json;
        patient_err want;
        const char *why;
    } t[] = {
        {"{\"changes\":[\"a\",\"b\"]}", PATIENT_OK, NULL},
        {"{\"changes\":[],\"log_proofs\":[]}", PATIENT_OK, NULL},
        {"{\"changes\":[\"a\"],\"log_proofs\":null}", PATIENT_OK, NULL},
        {"{\"changes\":[\"a\",\"b\"],\"log_proofs\":[{\"x\":1},null]}", PATIENT_OK, NULL},
        {"{\"changes\":[\"a\"],\"changes\":[\"b\"]}", PATIENT_ERR_JSON, NULL},
        {"{\"changes\":", PATIENT_ERR_JSON, NULL},
        {"[]", PATIENT_ERR_PARSE, "no \"changes\" array of at most 33 strings"},
        {"{\"changes\":\"a\"}", PATIENT_ERR_PARSE, "no \"changes\" array of at most 33 strings"},
        {"{\"changes\":[\"a\",1]}", PATIENT_ERR_PARSE, "a \"changes\" element is not a string"},
        {"{\"changes\":[\"a\"],\"log_proofs\":[]}", PATIENT_ERR_PARSE,
         "\"log_proofs\" is not an array with one element per change"},
        {"{\"changes\":[\"a\"],\"log_proofs\":{}}", PATIENT_ERR_PARSE,
         "\"log_proofs\" is not an array with one element per change"},
        {"{\"changes\":[\"a\"],\"log_proofs\":[\"x\"]}", PATIENT_ERR_PARSE,
         "a \"log_proofs\" element is neither an object nor null"},
    };
    patient_bundle *pb;
    const char *why;
    char *text = NULL;

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        why = "unset";
        pb = NULL;
        ck_assert_msg(patient_bundle_read(t[i].json, strlen(t[i].json), &pb, &why) == t[i].want,
                      "%s", t[i].json);
        if (t[i].why)
            ck_assert_str_eq(why, t[i].why);
        else
            ck_assert_ptr_null(why);
        ck_assert(t[i].want == PATIENT_OK ? pb != NULL : pb == NULL);
        patient_bundle_free(pb);
    }
    ck_assert_int_eq(patient_bundle_read("{}", PATIENT_BUNDLE_MAX + 1, &pb, NULL),
                     PATIENT_ERR_TOO_LARGE);
    ck_assert_int_eq(patient_bundle_read(t[3].json, strlen(t[3].json), &pb, &why), PATIENT_OK);
    ck_assert_int_eq(patient_bundle_log_proof(pb, 0, &text), PATIENT_OK);
    ck_assert_str_eq(text, "{\"x\":1}");
    free(text);
    ck_assert_int_eq(patient_bundle_log_proof(pb, 1, &text), PATIENT_OK);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(patient_bundle_log_proof(pb, 2, &text), PATIENT_ERR_ARG);
    {
        const char *evs[2] = {NULL, "{\"y\":[2]}"}, *bad[2] = {"[1]", NULL};
        ck_assert_int_eq(patient_bundle_set_log_proofs(pb, evs, 1), PATIENT_ERR_ARG);
        ck_assert_int_eq(patient_bundle_set_log_proofs(pb, bad, 2), PATIENT_ERR_PARSE);
        ck_assert_int_eq(patient_bundle_set_log_proofs(pb, evs, 2), PATIENT_OK);
        ck_assert_int_eq(patient_bundle_log_proof(pb, 1, &text), PATIENT_OK);
        ck_assert_str_eq(text, "{\"y\":[2]}");
        free(text);
        ck_assert_int_eq(patient_bundle_print(pb, &text), PATIENT_OK);
        ck_assert_str_eq(text, "{\n\t\"changes\":\t[\"a\", \"b\"],\n\t\"log_proofs\":\t[null, {\n"
                               "\t\t\t\"y\":\t[2]\n\t\t}]\n}");
        free(text);
    }
    patient_bundle_free(pb);
    /* no changes: no evidence array needed */
    ck_assert_int_eq(patient_bundle_read(t[1].json, strlen(t[1].json), &pb, &why), PATIENT_OK);
    ck_assert_int_eq(patient_bundle_set_log_proofs(pb, NULL, 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_bundle_set_log_proofs(pb, NULL, 0), PATIENT_OK);
    ck_assert_int_eq(patient_bundle_print(pb, &text), PATIENT_OK);
    ck_assert_str_eq(text, "{\n\t\"changes\":\t[],\n\t\"log_proofs\":\t[]\n}");
    free(text);
    patient_bundle_free(pb);
}
END_TEST

/* The bundled policy is used as parsed, within the cap a printed copy had:
 * PATIENT_POLICY_MAX_BYTES of compact text. At the cap it is read (and its
 * extra member refused, PARSE, as the policy reader refuses one); a byte
 * past it, TOO_LARGE before it is read. */
START_TEST(bundle_policy_cap)
{
    patient_evidence ev = ev_make(URL, BODY, strlen(BODY), NULL, 0);
    char *b = bundle_of(&ev), *s;
    cJSON *j = cJSON_Parse(b), *p;
    patient_report *r = NULL;
    size_t plen, pad;
    char *ptext, *filler;

    p = cJSON_GetObjectItemCaseSensitive(j, "policy");
    ptext = cJSON_PrintUnformatted(p);
    plen = strlen(ptext);
    free(ptext);
    /* a member "x" grows the policy's compact text to the cap exactly:
     * ,"x":"…" is 7 bytes around the filler */
    pad = PATIENT_POLICY_MAX_BYTES - plen - 7;
    filler = malloc(pad + 2);
    memset(filler, 'a', pad + 1);
    filler[pad] = 0;
    cJSON_AddStringToObject(p, "x", filler);
    ptext = cJSON_PrintUnformatted(p);
    ck_assert_uint_eq(strlen(ptext), PATIENT_POLICY_MAX_BYTES);
    ck_assert_uint_eq(pt_json_compact_len(p, PATIENT_POLICY_MAX_BYTES), PATIENT_POLICY_MAX_BYTES);
    free(ptext);
    s = cJSON_Print(j);
    /* at the cap: read, and its unknown member refused by name (PARSE) */
    ck_assert_int_eq(patient_verify_bundle(s, strlen(s), NULL, NULL, &r), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(r);
    free(s);
    filler[pad] = 'a';
    filler[pad + 1] = 0;
    cJSON_ReplaceItemInObject(p, "x", cJSON_CreateString(filler));
    s = cJSON_Print(j);
    ck_assert_int_eq(patient_verify_bundle(s, strlen(s), NULL, NULL, &r), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(r);
    /* the caller's own policy: the bundled one is not read */
    ck_assert_int_eq(patient_verify_bundle(s, strlen(s), pol, NULL, &r), PATIENT_OK);
    expect(r, PATIENT_VERDICT_VERIFIED, NULL);
    free(s);
    free(filler);
    cJSON_Delete(j);
    free(b);
}
END_TEST

static Suite *
verify_suite(void)
{
    Suite *s = suite_create("verify");
    TCase *tc;

    tc = tcase_create("body");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, untouched_verified);
    tcase_add_test(tc, body_changed_no_descriptor);
    tcase_add_test(tc, truncated_body);
    tcase_add_test(tc, other_listed_resource_verified);
    suite_add_tcase(s, tc);

    tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, one_hop_proven);
    tcase_add_test(tc, one_hop_attested);
    tcase_add_test(tc, attested_but_proof_required);
    tcase_add_test(tc, attested_wrong_origin_bytes);
    tcase_add_test(tc, proven_wrong_origin_bytes);
    tcase_add_test(tc, two_hops_two_middleboxes);
    tcase_add_test(tc, two_hops_reordered);
    tcase_add_test(tc, hop_dropped);
    tcase_add_test(tc, last_hop_dropped);
    tcase_add_test(tc, forged_descriptor_signature);
    tcase_add_test(tc, forged_descriptor_payload);
    tcase_add_test(tc, unknown_middlebox);
    tcase_add_test(tc, replayed_other_url);
    tcase_add_test(tc, url_fragment_dropped);
    tcase_add_test(tc, replayed_other_response);
    tcase_add_test(tc, edits_overlapping);
    tcase_add_test(tc, edit_out_of_range);
    tcase_add_test(tc, deleted_bytes_wrong_hash);
    tcase_add_test(tc, sizes_do_not_add_up);
    tcase_add_test(tc, no_edits);
    tcase_add_test(tc, future_format_version);
    tcase_add_test(tc, malformed_values);
    tcase_add_test(tc, malformed_json_and_base64_signed);
    tcase_add_test(tc, oversized_header_value);
    tcase_add_test(tc, descriptor_integers_strict);
    tcase_add_test(tc, descriptor_spec_rules);
    tcase_add_test(tc, too_many_hops);
    suite_add_tcase(s, tc);

    tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, policy_json_allows);
    tcase_add_test(tc, reason_denied);
    tcase_add_test(tc, path_denied);
    tcase_add_test(tc, origin_denied);
    tcase_add_test(tc, insert_denied);
    tcase_add_test(tc, insert_allowed);
    tcase_add_test(tc, edits_exceeded);
    tcase_add_test(tc, edits_exceeded_across_own_hops);
    tcase_add_test(tc, weak_upstream_tls);
    tcase_add_test(tc, upstream_tls_required);
    tcase_add_test(tc, disclosure_required_missing);
    suite_add_tcase(s, tc);

    tc = tcase_create("manifest");
    /* pre_lookup_other_path publishes a sharded site of 600 pages: seconds
     * under the sanitizers on a busy machine, far past Check's 4 s default */
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, manifest_forged);
    tcase_add_test(tc, manifest_signature_malformed);
    tcase_add_test(tc, manifest_unknown_key);
    tcase_add_test(tc, manifest_expired);
    tcase_add_test(tc, manifest_not_yet_valid);
    tcase_add_test(tc, manifest_rollback);
    tcase_add_test(tc, manifest_state_records);
    tcase_add_test(tc, manifest_other_origin);
    tcase_add_test(tc, resource_not_listed);
    tcase_add_test(tc, no_manifest);
    tcase_add_test(tc, origin_not_in_policy);
    tcase_add_test(tc, url_not_http);
    tcase_add_test(tc, pre_descriptor_other_pointer);
    tcase_add_test(tc, pre_manifest_other_bytes_or_keys);
    tcase_add_test(tc, pre_lookup_other_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("dynamic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, dynamic_verified);
    tcase_add_test(tc, dynamic_body_changed);
    tcase_add_test(tc, dynamic_expired);
    tcase_add_test(tc, dynamic_other_url);
    tcase_add_test(tc, dynamic_unknown_key);
    tcase_add_test(tc, dynamic_forged_proof_none);
    tcase_add_test(tc, dynamic_forged_signature);
    tcase_add_test(tc, dynamic_modified_proven);
    suite_add_tcase(s, tc);

    tc = tcase_create("bundle");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bundle_round_trip);
    tcase_add_test(tc, bundle_status_honoured);
    tcase_add_test(tc, bundle_body_edited);
    tcase_add_test(tc, bundle_malformed);
    tcase_add_test(tc, bundle_changes_cap);
    tcase_add_test(tc, bundle_read_descriptors);
    tcase_add_test(tc, bundle_policy_cap);
    tcase_add_test(tc, bundle_policy_as_printed);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(verify_suite());
    int failed;

    /* fork by default; CK_FORK=no in the environment for valgrind/gdb */
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
