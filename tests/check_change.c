/* Change descriptors: issuing, parsing, verifying, chaining, undoing; edit
 * validation; gzip. Every accepted case has a forged twin that must fail
 * with one specific code. */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>

#include <patient/patient.h>
#include "util.h"
#include "testutil.h"

#define URL "https://example.org/page.html"

static patient_pubkey pk_a, pk_b;
static patient_seckey *sk_a, *sk_b;

static const char INPUT[] = "<html><body><script src=\"https://t.example/t.js\"></script>"
                            "<p>Hello</p><div class=ad>BUY NOW</div></body></html>";

static void
setup(void)
{
    ck_assert_int_eq(patient_keypair_generate(&pk_a, &sk_a), PATIENT_OK);
    ck_assert_int_eq(patient_keypair_generate(&pk_b, &sk_b), PATIENT_OK);
}

static void
teardown(void)
{
    patient_seckey_free(sk_a);
    patient_seckey_free(sk_b);
    sk_a = sk_b = NULL;
}

/* The plain hop most tests start: key A, "m", service "other", over URL;
 * a test sets what else it needs (prev). */
static patient_hop_opts
hop_a(const void *in, size_t len)
{
    return (patient_hop_opts){.sk = sk_a, .name = "m", .service = "other", .url = URL, .in = in,
                              .in_len = len};
}

static size_t
pos_of(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    ck_assert_ptr_nonnull(p);
    return (size_t)(p - hay);
}

/* Begin one hop over in with three edits: a disclosed deletion (the
 * script), an insertion (a banner after <body>), a replacement (the ad). */
static patient_hop *
begin3(const patient_seckey *sk, const char *url, const uint8_t *in, size_t len,
       const char *const *prev, size_t nprev, int disclose)
{
    patient_hop *hop = NULL;
    const char *s = (const char *)in;
    size_t script = pos_of(s, "<script"), body = pos_of(s, "<p>Hello"), ad = pos_of(s, "BUY NOW");
    size_t script_len = pos_of(s, "</script>") + 9 - script;

    ck_assert_int_eq(
        patient_hop_begin(
            &(patient_hop_opts){
                .sk = sk, .name = "Example Filter", .service = "tracker-filter",
                .disclosure = "https://mbox.example/.well-known/patient/disclosure.json",
                .url = url, .in = in, .in_len = len, .prev = prev, .nprev = nprev},
            &hop),
                     PATIENT_OK);
    /* Added out of order on purpose: finish sorts. */
    ck_assert_int_eq(patient_hop_add_edit(hop, ad, 7, (const uint8_t *)"[ad removed]", 12,
                                          "ads.removed", "ad-1", "ad block", 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, script, script_len, NULL, 0, "tracker.removed",
                                          "trk-7", NULL, disclose),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, body, 0, (const uint8_t *)"<p>filtered</p>", 15,
                                          "banner.inserted", "banner", "notice", 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_set_tls(hop, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 1), PATIENT_OK);
    return hop;
}

/* Issue that hop: the descriptor, and the output in *out. */
static char *
issue3(const patient_seckey *sk, const char *url, const uint8_t *in, size_t len,
       const char *const *prev, size_t nprev, int disclose, uint8_t **out, size_t *out_len)
{
    patient_hop *hop = begin3(sk, url, in, len, prev, nprev, disclose);
    char *value = NULL;

    ck_assert_int_eq(patient_hop_finish(hop, 1795000000, out, out_len, &value), PATIENT_OK);
    ck_assert_ptr_nonnull(value);
    patient_hop_free(hop);
    return value;
}

static patient_change *
parse_ok(const char *v)
{
    patient_change *c = NULL;
    ck_assert_int_eq(patient_change_parse(v, strlen(v), &c), PATIENT_OK);
    return c;
}

static patient_err
parse_err(const char *v)
{
    patient_change *c = NULL;
    patient_err err = patient_change_parse(v, strlen(v), &c);
    if (err == PATIENT_OK)
        ck_assert_ptr_nonnull(c);
    else
        ck_assert_ptr_null(c);
    patient_change_free(c);
    return err;
}

/* The decoded payload of a value (malloc'd). */
static char *
payload_of(const char *v)
{
    patient_change *c = parse_ok(v);
    char *p = strdup((const char *)c->jws->payload);
    patient_change_free(c);
    return p;
}

static char *
sign_payload(const patient_seckey *sk, const char *typ, const char *payload)
{
    char *v = NULL;
    ck_assert_int_eq(patient_jws_sign(sk, typ, payload, strlen(payload), &v), PATIENT_OK);
    return v;
}

/* Replace from->to in v's payload and sign again with sk. */
static char *
forge(const char *v, const patient_seckey *sk, const char *from, const char *to)
{
    char *p = payload_of(v), *q = tu_replace1(p, from, to);
    char *r = sign_payload(sk, PATIENT_CHANGE_TYP, q);
    free(p);
    free(q);
    return r;
}

/* ------------------------------------------------------------------ */

/* A descriptor's "at": every input of the shared table, signed, parses
 * to its value or is refused as the table says. */
START_TEST(at_times)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    char *v = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 1, &out, &out_len);

    free(out);
    for (size_t i = 0; i < tu_rfc3339_ncases; i++) {
        char to[96];
        const tu_time_case *k = &tu_rfc3339_cases[i];
        snprintf(to, sizeof to, "\"at\":\"%s\"", k->s);
        char *f = forge(v, sk_a, "\"at\":\"2026-11-18T11:06:40Z\"", to);
        if (k->want == PATIENT_OK) {
            patient_change *c = parse_ok(f);
            ck_assert_msg((long long)c->at == k->t, "'%s': %lld", k->s, (long long)c->at);
            patient_change_free(c);
        } else {
            ck_assert_msg(parse_err(f) == k->want, "'%s' accepted", k->s);
        }
        free(f);
    }
    free(v);
}
END_TEST

START_TEST(one_hop_roundtrip)
{
    uint8_t *out = NULL, *back = NULL;
    size_t out_len = 0, back_len = 0;
    char *v = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 1, &out, &out_len);
    patient_change *c = parse_ok(v);
    char kid[PATIENT_KEYID_HEX];
    uint8_t h[PATIENT_SHA256_BYTES];

    char *os = strndup((const char *)out, out_len); /* out is not NUL-terminated */
    ck_assert(strstr(os, "<body><p>filtered</p><p>Hello") != NULL);
    ck_assert(strstr(os, "script") == NULL);
    ck_assert(strstr(os, "[ad removed]") != NULL);
    free(os);
    ck_assert_int_eq(patient_change_verify(c, &pk_a), PATIENT_OK);
    ck_assert_str_eq(c->url, URL);
    ck_assert_uint_eq(c->hop, 1);
    ck_assert_int_eq(c->has_prev, 0);
    ck_assert_int_eq((long long)c->at, 1795000000LL);
    ck_assert_str_eq(c->by.name, "Example Filter");
    patient_keyid_hex(pk_a.id, kid);
    ck_assert_str_eq(c->by.kid_hex, kid);
    ck_assert_str_eq(c->by.service, "tracker-filter");
    ck_assert_str_eq(c->by.disclosure, "https://mbox.example/.well-known/patient/disclosure.json");
    ck_assert_uint_eq(c->in.size, strlen(INPUT));
    ck_assert_uint_eq(c->out.size, out_len);
    ck_assert_int_eq(patient_sha256(INPUT, strlen(INPUT), h), PATIENT_OK);
    ck_assert(memcmp(h, c->in.hash, sizeof h) == 0);
    ck_assert_uint_eq(c->nedits, 3);
    /* Sorted by offset: script, banner (where the script ended), ad. */
    ck_assert_str_eq(c->edits[1].reason, "banner.inserted");
    ck_assert_uint_eq(c->edits[1].delete_len, 0);
    ck_assert_uint_eq(c->edits[1].insert_len, 15);
    ck_assert_uint_eq(c->edits[1].offset, c->edits[0].offset + c->edits[0].delete_len);
    ck_assert_str_eq(c->edits[0].reason, "tracker.removed");
    ck_assert_ptr_nonnull(c->edits[0].deleted);
    ck_assert(memcmp(c->edits[0].deleted, "<script", 7) == 0);
    ck_assert_ptr_null(c->edits[0].insert);
    ck_assert_ptr_null(c->edits[0].note);
    ck_assert_str_eq(c->edits[2].rule, "ad-1");
    ck_assert_str_eq(c->edits[2].note, "ad block");
    ck_assert_int_eq(c->has_tls, 1);
    ck_assert_str_eq(c->tls.version, "TLSv1.3");
    ck_assert_int_eq(c->tls.verified, 1);
    ck_assert_int_eq(c->disclosed, 1);
    ck_assert_str_eq(c->value, v);
    ck_assert_int_eq(patient_sha256(v, strlen(v), h), PATIENT_OK);
    ck_assert(memcmp(h, c->value_hash, sizeof h) == 0);

    ck_assert_int_eq(patient_change_check_output(c, out, out_len), PATIENT_OK);
    ck_assert_int_eq(patient_change_undo(c, out, out_len, &back, &back_len), PATIENT_OK);
    ck_assert_uint_eq(back_len, strlen(INPUT));
    ck_assert(memcmp(back, INPUT, back_len) == 0);
    free(back);
    patient_change_free(c);
    free(out);
    free(v);
}
END_TEST

/* The descriptor is written directly: its bytes must be what cJSON
 * printed of the same members (re-printing the parsed payload gives them
 * back), with strings that need escaping, every optional member (prev,
 * disclosure, deleted, insert, note, tls with and without cipher) and a
 * second hop. */
START_TEST(descriptor_bytes_as_cjson)
{
    const char *in = "<html><body><p>a \"q\" b</p><i>x</i></body></html>";
    const char *names[] = {"Filter \"A\" \\ caf\xc3\xa9", "m"};
    char *v[2] = {NULL, NULL};

    for (int k = 0; k < 2; k++) {
        patient_hop *hop = NULL;
        patient_hop_opts o = hop_a(in, strlen(in));
        uint8_t *out = NULL;
        size_t out_len = 0;
        o.name = names[k];
        o.disclosure = k ? NULL : "https://mbox.example/d.json?a=b&c=%22";
        o.prev = (const char *const *)v;
        o.nprev = (size_t)k;
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
        ck_assert_int_eq(patient_hop_add_edit(hop, pos_of(in, "<i>"), 8, (const uint8_t *)"\"\\", 2,
                                              "x.removed", "r-1", "note \"\\\" \xe2\x82\xac", 1),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_add_edit(hop, pos_of(in, "<p>"), 0, (const uint8_t *)"<b>", 3,
                                              "banner.inserted", "b", NULL, 1),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_set_tls(hop, k ? "none" : "TLSv1.3",
                                             k ? NULL : "TLS_AES_128_GCM_SHA256", !k),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_finish(hop, 1795000000, &out, &out_len, &v[k]), PATIENT_OK);
        patient_hop_free(hop);
        free(out);

        char *p = payload_of(v[k]);
        cJSON *j = cJSON_Parse(p);
        ck_assert_ptr_nonnull(j);
        char *again = cJSON_PrintUnformatted(j);
        ck_assert_str_eq(again, p);
        ck_assert(strstr(p, k ? "\"prev\":\"sha256-" : "\"disclosure\":") != NULL);
        free(again);
        cJSON_Delete(j);
        free(p);
    }
    free(v[0]);
    free(v[1]);
}
END_TEST

START_TEST(no_edits_no_descriptor)
{
    patient_hop *hop = NULL;
    uint8_t *out = NULL;
    size_t out_len = 0;
    char *v = (char *)1;

    patient_hop_opts o = hop_a(INPUT, strlen(INPUT));
    ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(hop, 0, &out, &out_len, &v), PATIENT_OK);
    ck_assert_ptr_null(v);
    ck_assert_uint_eq(out_len, strlen(INPUT));
    ck_assert(memcmp(out, INPUT, out_len) == 0);
    /* finish is final */
    ck_assert_int_eq(patient_hop_add_edit(hop, 0, 1, NULL, 0, "a", "b", NULL, 0), PATIENT_ERR_STATE);
    {
        uint8_t *o2 = NULL;
        size_t l2;
        ck_assert_int_eq(patient_hop_finish(hop, 0, &o2, &l2, &v), PATIENT_ERR_STATE);
        ck_assert_ptr_null(o2);
    }
    patient_hop_free(hop);
    patient_hop_free(NULL);
    patient_change_free(NULL);
    free(out);
}
END_TEST

START_TEST(empty_body_and_edges)
{
    patient_hop *hop = NULL;
    uint8_t *out = NULL, *back = NULL;
    size_t out_len = 0, back_len = 0;
    char *v = NULL;
    patient_change *c;

    /* Insert into an empty body, and an append at the very end. */
    patient_hop_opts o = hop_a(NULL, 0);
    ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 0, 0, (const uint8_t *)"x", 1, "a.b", "r", NULL, 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(hop, 0, &out, &out_len, &v), PATIENT_OK);
    patient_hop_free(hop);
    c = parse_ok(v);
    ck_assert_int_eq(patient_change_undo(c, out, out_len, &back, &back_len), PATIENT_OK);
    ck_assert_uint_eq(back_len, 0);
    free(back);
    patient_change_free(c);
    free(out);
    free(v);

    /* Deletion immediately followed by an insertion where it ends. */
    o = hop_a("abcdef", 6);
    ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 1, 2, NULL, 0, "a", "r", NULL, 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 3, 0, (const uint8_t *)"XY", 2, "a", "r", NULL, 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 6, 0, (const uint8_t *)"!", 1, "a", "r", NULL, 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(hop, 0, &out, &out_len, &v), PATIENT_OK);
    patient_hop_free(hop);
    ck_assert_uint_eq(out_len, 7);
    ck_assert(memcmp(out, "aXYdef!", 7) == 0);
    c = parse_ok(v);
    ck_assert_int_eq(patient_change_undo(c, out, out_len, &back, &back_len), PATIENT_OK);
    ck_assert_uint_eq(back_len, 6);
    ck_assert(memcmp(back, "abcdef", 6) == 0);
    free(back);
    patient_change_free(c);
    free(out);
    free(v);
}
END_TEST

START_TEST(two_hop_chain)
{
    uint8_t *o1 = NULL, *o2 = NULL, *b1 = NULL, *b0 = NULL;
    size_t l1, l2, lb1, lb0, bad = 99;
    char *v1 = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 1, &o1, &l1);
    patient_hop *hop = NULL;
    char *v2 = NULL;
    const char *prev[1] = {v1};
    patient_change *c[2];

    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk_b, .name = "Second",
                                                           .service = "content-filter", .url = URL,
                                                           .in = o1, .in_len = l1, .prev = prev,
                                                           .nprev = 1},
                                       &hop),
                     PATIENT_OK);
    char *o1s = strndup((const char *)o1, l1);
    size_t hello = pos_of(o1s, "Hello");
    free(o1s);
    ck_assert_int_eq(patient_hop_add_edit(hop, hello, 5,
                                          (const uint8_t *)"Howdy", 5, "text.replaced", "r2", NULL, 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(hop, 1795000100, &o2, &l2, &v2), PATIENT_OK);
    patient_hop_free(hop);
    c[0] = parse_ok(v1);
    c[1] = parse_ok(v2);
    ck_assert_uint_eq(c[1]->hop, 2);
    ck_assert_int_eq(c[1]->has_prev, 1);
    ck_assert(memcmp(c[1]->prev, c[0]->value_hash, PATIENT_SHA256_BYTES) == 0);
    ck_assert_int_eq(patient_change_verify(c[0], &pk_a), PATIENT_OK);
    ck_assert_int_eq(patient_change_verify(c[1], &pk_b), PATIENT_OK);
    ck_assert_int_eq(patient_chain_check((const patient_change *const *)c, 2, URL, &bad), PATIENT_OK);
    ck_assert_uint_eq(bad, 99);
    /* Undo hop 2 then hop 1: the origin's bytes. */
    ck_assert_int_eq(patient_change_undo(c[1], o2, l2, &b1, &lb1), PATIENT_OK);
    ck_assert_int_eq(patient_change_undo(c[0], b1, lb1, &b0, &lb0), PATIENT_OK);
    ck_assert_uint_eq(lb0, strlen(INPUT));
    ck_assert(memcmp(b0, INPUT, lb0) == 0);

    /* Forged twins of the chain. */
    {
        const patient_change *sw[2] = {c[1], c[0]}, *drop[1] = {c[1]};
        ck_assert_int_eq(patient_chain_check(sw, 2, URL, &bad), PATIENT_ERR_CHAIN);
        ck_assert_uint_eq(bad, 0);
        ck_assert_int_eq(patient_chain_check(drop, 1, URL, &bad), PATIENT_ERR_CHAIN);
        ck_assert_uint_eq(bad, 0);
        ck_assert_int_eq(patient_chain_check((const patient_change *const *)c, 2,
                                             "https://example.org/other.html", &bad),
                         PATIENT_ERR_ORIGIN);
        ck_assert_uint_eq(bad, 0);
    }
    /* The header as it travels: split, parse, chain. */
    {
        char joined[8192];
        patient_span sp[PATIENT_MAX_HOPS];
        size_t n = 0;
        snprintf(joined, sizeof joined, " %s ,\t%s ", v1, v2);
        ck_assert_int_eq(patient_change_header_split(joined, strlen(joined), sp, PATIENT_MAX_HOPS, &n),
                         PATIENT_OK);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(sp[0].len, strlen(v1));
        ck_assert(memcmp(sp[1].p, v2, strlen(v2)) == 0);
    }
    free(b0);
    free(b1);
    patient_change_free(c[0]);
    patient_change_free(c[1]);
    free(o1);
    free(o2);
    free(v1);
    free(v2);
}
END_TEST

/* prev naming another response's hop 1, and hop 2 issued over a body that is
 * not hop 1's output. */
START_TEST(chain_prev_and_in_wrong)
{
    uint8_t *o1, *o1b, *o2, *o3;
    size_t l1, l1b, l2, l3, bad = 99;
    static const char OTHER[] = "<html><body><script src=\"x\"></script><p>Hello</p>BUY NOW</body>";
    char *v1 = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 1, &o1, &l1);
    char *v1b = issue3(sk_a, URL, (const uint8_t *)OTHER, strlen(OTHER), NULL, 0, 1, &o1b, &l1b);
    const char *prev_b[1] = {v1b}, *prev[1] = {v1};
    char *v2, *v3;
    patient_hop *hop;
    const patient_change *c[2];
    patient_change *p1, *p2, *p3;

    /* hop 2 over hop 1's real output, but linking to the other hop 1 */
    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk_b, .name = "B",
                                                           .service = "other", .url = URL,
                                                           .in = o1, .in_len = l1, .prev = prev_b,
                                                           .nprev = 1},
                                       &hop), PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 0, 1, NULL, 0, "x", "y", NULL, 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(hop, 0, &o2, &l2, &v2), PATIENT_OK);
    patient_hop_free(hop);
    /* hop 2 linking to hop 1, but over a body that is not its output */
    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk_b, .name = "B",
                                                           .service = "other", .url = URL,
                                                           .in = o1b, .in_len = l1b, .prev = prev,
                                                           .nprev = 1},
                                       &hop), PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 0, 1, NULL, 0, "x", "y", NULL, 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(hop, 0, &o3, &l3, &v3), PATIENT_OK);
    patient_hop_free(hop);
    p1 = parse_ok(v1);
    p2 = parse_ok(v2);
    p3 = parse_ok(v3);
    c[0] = p1;
    c[1] = p2;
    ck_assert_int_eq(patient_chain_check(c, 2, URL, &bad), PATIENT_ERR_CHAIN);
    ck_assert_uint_eq(bad, 1);
    c[1] = p3;
    bad = 99;
    ck_assert_int_eq(patient_chain_check(c, 2, URL, &bad), PATIENT_ERR_CHAIN);
    ck_assert_uint_eq(bad, 1);
    patient_change_free(p1);
    patient_change_free(p2);
    patient_change_free(p3);
    free(o1), free(o1b), free(o2), free(o3), free(v1), free(v1b), free(v2), free(v3);
}
END_TEST

START_TEST(forged_signatures)
{
    uint8_t *out;
    size_t out_len;
    char *v = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 1, &out, &out_len);
    char *bad = strdup(v), *f;
    char kid_a[PATIENT_KEYID_HEX], kid_b[PATIENT_KEYID_HEX];
    patient_change *c;
    size_t i = strlen(bad) - 20;

    /* a signature byte flipped */
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    c = parse_ok(bad);
    ck_assert_int_eq(patient_change_verify(c, &pk_a), PATIENT_ERR_SIGNATURE);
    patient_change_free(c);
    /* another key */
    c = parse_ok(v);
    ck_assert_int_eq(patient_change_verify(c, &pk_b), PATIENT_ERR_KEY_MISMATCH);
    patient_change_free(c);
    /* payload edited and re-signed by another key: payload kid still names A */
    f = forge(v, sk_b, "Example Filter", "Evil Filter");
    ck_assert_int_eq(parse_err(f), PATIENT_ERR_PARSE);
    free(f);
    /* ... and with the kid changed too: parses, but it is not A's */
    patient_keyid_hex(pk_a.id, kid_a);
    patient_keyid_hex(pk_b.id, kid_b);
    f = forge(v, sk_b, kid_a, kid_b);
    c = parse_ok(f);
    ck_assert_int_eq(patient_change_verify(c, &pk_a), PATIENT_ERR_KEY_MISMATCH);
    ck_assert_int_eq(patient_change_verify(c, &pk_b), PATIENT_OK);
    patient_change_free(c);
    free(f);
    /* payload swapped under A's signature: header/signature of one, payload of another */
    {
        char *g = forge(v, sk_b, "Example Filter", "Other Filter");
        char *d1 = strchr(v, '.'), *d2 = strrchr(v, '.');
        char *e1 = strchr(g, '.'), *e2 = strrchr(g, '.');
        char mix[16384];
        snprintf(mix, sizeof mix, "%.*s%.*s%s", (int)(d1 - v), v, (int)(e2 - e1), e1, d2);
        c = parse_ok(mix);
        ck_assert_int_eq(patient_change_verify(c, &pk_a), PATIENT_ERR_SIGNATURE);
        patient_change_free(c);
        free(g);
    }
    /* another typ (e.g. an origin signature) is not a change descriptor */
    {
        char *p = payload_of(v);
        f = sign_payload(sk_a, "patient-origin+jws", p);
        ck_assert_int_eq(parse_err(f), PATIENT_ERR_PARSE);
        free(f);
        free(p);
    }
    free(bad);
    free(out);
    free(v);
}
END_TEST

START_TEST(forged_bodies)
{
    uint8_t *out, *back = (uint8_t *)1;
    size_t out_len, back_len = 1;
    char *v = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 1, &out, &out_len);
    patient_change *c = parse_ok(v);
    char *f;

    /* out body altered */
    out[out_len - 3] ^= 1;
    ck_assert_int_eq(patient_change_check_output(c, out, out_len), PATIENT_ERR_HASH);
    ck_assert_int_eq(patient_change_undo(c, out, out_len, &back, &back_len), PATIENT_ERR_HASH);
    ck_assert_ptr_null(back);
    out[out_len - 3] ^= 1;
    /* truncated */
    ck_assert_int_eq(patient_change_undo(c, out, out_len - 1, &back, &back_len), PATIENT_ERR_HASH);
    patient_change_free(c);

    /* The descriptor lies about what it inserted (same length, signed,
     * out hash still right): the inserted bytes are checked against the body. */
    {
        char *b1 = NULL, *b2 = NULL;
        ck_assert_int_eq(pt_b64_encode((const uint8_t *)"[ad removed]", 12, 0, &b1), PATIENT_OK);
        ck_assert_int_eq(pt_b64_encode((const uint8_t *)"[ad-removed]", 12, 0, &b2), PATIENT_OK);
        f = forge(v, sk_a, b1, b2);
        c = parse_ok(f);
        ck_assert_int_eq(patient_change_verify(c, &pk_a), PATIENT_OK);
        ck_assert_int_eq(patient_change_check_output(c, out, out_len), PATIENT_ERR_HASH);
        ck_assert_int_eq(patient_change_undo(c, out, out_len, &back, &back_len), PATIENT_ERR_HASH);
        patient_change_free(c);
        free(f);
        free(b1);
        free(b2);
    }
    /* in hash claims other bytes than the undo recovers */
    {
        uint8_t h[PATIENT_SHA256_BYTES];
        char sri_real[PATIENT_SRI_BYTES], sri_other[PATIENT_SRI_BYTES];
        ck_assert_int_eq(patient_sha256(INPUT, strlen(INPUT), h), PATIENT_OK);
        patient_sri_encode(h, sri_real);
        h[0] ^= 1;
        patient_sri_encode(h, sri_other);
        f = forge(v, sk_a, sri_real, sri_other);
        c = parse_ok(f);
        ck_assert_int_eq(patient_change_undo(c, out, out_len, &back, &back_len), PATIENT_ERR_HASH);
        patient_change_free(c);
        free(f);
    }
    free(out);
    free(v);
}
END_TEST

START_TEST(deleted_hash_mismatch)
{
    uint8_t *out;
    size_t out_len;
    char *v = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 1, &out, &out_len);
    patient_change *c = parse_ok(v);
    char *b_real = NULL, *b_fake = NULL, *f;
    uint8_t fake[64];

    memcpy(fake, c->edits[0].deleted, c->edits[0].delete_len);
    fake[1] = 'S'; /* "<Script ..." */
    ck_assert_int_eq(pt_b64_encode(c->edits[0].deleted, c->edits[0].delete_len, 0, &b_real), PATIENT_OK);
    ck_assert_int_eq(pt_b64_encode(fake, c->edits[0].delete_len, 0, &b_fake), PATIENT_OK);
    f = forge(v, sk_a, b_real, b_fake);
    ck_assert_int_eq(parse_err(f), PATIENT_ERR_HASH);
    free(f);
    /* disclosed bytes of another length */
    free(b_fake);
    ck_assert_int_eq(pt_b64_encode(fake, c->edits[0].delete_len - 1, 0, &b_fake), PATIENT_OK);
    f = forge(v, sk_a, b_real, b_fake);
    ck_assert_int_eq(parse_err(f), PATIENT_ERR_HASH);
    free(f);
    /* malformed base64 in insert (and in deleted) */
    f = forge(v, sk_a, "\"insert\":\"", "\"insert\":\"*");
    ck_assert_int_eq(parse_err(f), PATIENT_ERR_BASE64);
    free(f);
    f = forge(v, sk_a, b_real, "not base64!");
    ck_assert_int_eq(parse_err(f), PATIENT_ERR_BASE64);
    free(f);
    patient_change_free(c);
    free(b_real);
    free(b_fake);
    free(out);
    free(v);
}
END_TEST

START_TEST(undisclosed_deletion)
{
    uint8_t *out, *back = NULL;
    size_t out_len, back_len;
    char *v = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 0, &out, &out_len);
    patient_change *c = parse_ok(v);

    ck_assert_int_eq(c->disclosed, 0);
    ck_assert_ptr_null(c->edits[0].deleted);
    ck_assert_int_eq(c->edits[0].has_deleted_hash, 1);
    ck_assert_ptr_nonnull(c->edits[2].deleted); /* the ad was disclosed */
    ck_assert_int_eq(patient_change_check_output(c, out, out_len), PATIENT_OK);
    ck_assert_int_eq(patient_change_undo(c, out, out_len, &back, &back_len), PATIENT_ERR_NOT_FOUND);
    ck_assert_ptr_null(back);
    /* out is still checked first */
    out[0] ^= 1;
    ck_assert_int_eq(patient_change_undo(c, out, out_len, &back, &back_len), PATIENT_ERR_HASH);
    patient_change_free(c);
    free(out);
    free(v);
}
END_TEST

START_TEST(issue_time_validation)
{
    patient_hop *hop = NULL;
    uint8_t *out = NULL;
    size_t out_len;
    char *v = NULL;
    const uint8_t *in = (const uint8_t *)INPUT;
    size_t len = strlen(INPUT);

    patient_hop_opts o = hop_a(in, len);
    ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, len, 1, NULL, 0, "r", "r", NULL, 1), PATIENT_ERR_EDIT_RANGE);
    ck_assert_int_eq(patient_hop_add_edit(hop, len + 1, 0, (const uint8_t *)"x", 1, "r", "r", NULL, 1),
                     PATIENT_ERR_EDIT_RANGE);
    ck_assert_int_eq(patient_hop_add_edit(hop, 3, (size_t)-1, NULL, 0, "r", "r", NULL, 1), PATIENT_ERR_EDIT_RANGE);
    ck_assert_int_eq(patient_hop_add_edit(hop, 3, 0, NULL, 0, "r", "r", NULL, 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_hop_add_edit(hop, 3, 1, NULL, 0, "bad reason", "r", NULL, 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_hop_add_edit(hop, 3, 1, NULL, 0, "r", "", NULL, 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_hop_add_edit(hop, 3, 1, NULL, 0, "r", "r", "bad\nnote", 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_hop_add_edit(hop, 3, 1, NULL, 0, "r", "r", "\xc3\x28", 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_hop_set_tls(hop, "TLS v1.3", "x", 1), PATIENT_ERR_ARG);
    /* overlapping: refused by finish, whatever the order added */
    ck_assert_int_eq(patient_hop_add_edit(hop, 5, 5, NULL, 0, "r", "r", NULL, 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 2, 4, NULL, 0, "r", "r", "ünïcode ok", 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(hop, 0, &out, &out_len, &v), PATIENT_ERR_EDIT_ORDER);
    ck_assert_ptr_null(out);
    ck_assert_ptr_null(v);
    patient_hop_free(hop);
    /* two edits at one offset */
    o = hop_a(in, len);
    ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 5, 0, (const uint8_t *)"a", 1, "r", "r", NULL, 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 5, 2, NULL, 0, "r", "r", NULL, 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(hop, 0, &out, &out_len, &v), PATIENT_ERR_EDIT_ORDER);
    patient_hop_free(hop);
    /* begin's arguments: a valid start, each time with one member wrong */
    {
        const patient_hop_opts ok = hop_a(in, len);
        const char *junk[1] = {"not-a-jws"};

        o = ok, o.url = "/relative";
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_ERR_ARG);
        o = ok, o.service = "Bad Service";
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_ERR_ARG);
        o = ok, o.name = "";
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_ERR_ARG);
        o = ok, o.disclosure = "ftp://x";
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_ERR_ARG);
        o = ok, o.in_len = (size_t)PATIENT_MAX_BODY + 1;
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_ERR_TOO_LARGE);
        o = ok, o.prev = junk, o.nprev = 1;
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_ERR_PARSE);
        /* no options, and options from a newer header than this library's */
        ck_assert_int_eq(patient_hop_begin(NULL, &hop), PATIENT_ERR_ARG);
        o = ok, o.size = sizeof o + 1;
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_ERR_ARG);
        /* an older, shorter header: the members it lacks read as zero */
        o = ok, o.size = offsetof(patient_hop_opts, prev);
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
        patient_hop_free(hop);
        hop = NULL;
    }
    ck_assert_ptr_null(hop);
}
END_TEST

START_TEST(too_many_edits_and_hops)
{
    size_t len = 2 * PATIENT_MAX_EDITS + 2, i;
    uint8_t *in = malloc(len), *out = NULL;
    size_t out_len;
    patient_hop *hop = NULL;
    char *v = NULL;

    memset(in, 'a', len);
    patient_hop_opts o = hop_a(in, len);
    ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
    /* 1-byte insertions: the smallest edits, so 10000 of them still fit
     * in one JWS (PATIENT_JWS_MAX) */
    for (i = 0; i < PATIENT_MAX_EDITS; i++)
        ck_assert_int_eq(patient_hop_add_edit(hop, 2 * i, 0, (const uint8_t *)"x", 1, "r", "r", NULL, 0),
                         PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(hop, 2 * i, 1, NULL, 0, "r", "r", NULL, 0), PATIENT_ERR_LIMIT);
    /* exactly the cap is fine, and parses */
    ck_assert_int_eq(patient_hop_finish(hop, 0, &out, &out_len, &v), PATIENT_OK);
    patient_hop_free(hop);
    {
        patient_change *c = parse_ok(v);
        ck_assert_uint_eq(c->nedits, PATIENT_MAX_EDITS);
        patient_change_free(c);
    }
    /* one more edit in a hand-crafted signed payload */
    {
        char *p = payload_of(v), *q, *f, extra[256];
        snprintf(extra, sizeof extra,
                 "},{\"offset\":%zu,\"delete\":0,\"insert\":\"eA==\",\"reason\":\"r\",\"rule\":\"r\"}]",
                 2 * (size_t)PATIENT_MAX_EDITS);
        /* the first "}]" closes the edits array */
        q = tu_replace1(p, "}]", extra);
        f = sign_payload(sk_a, PATIENT_CHANGE_TYP, q);
        ck_assert_int_eq(parse_err(f), PATIENT_ERR_LIMIT);
        free(f);
        free(q);
        free(p);
    }
    free(out);
    /* 32 and 33 arriving values: no room for another hop */
    {
        const char *prev[PATIENT_MAX_HOPS + 1];
        for (i = 0; i <= PATIENT_MAX_HOPS; i++)
            prev[i] = v;
        o = hop_a(in, len);
        o.prev = prev;
        o.nprev = PATIENT_MAX_HOPS + 1;
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_ERR_LIMIT);
        o.nprev = PATIENT_MAX_HOPS;
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_ERR_LIMIT);
        o.nprev = PATIENT_MAX_HOPS - 1;
        ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
        patient_hop_free(hop);
    }
    /* a header with 33 values */
    {
        pt_buf b = {0};
        patient_span sp[PATIENT_MAX_HOPS + 1];
        size_t n = 0;
        for (i = 0; i <= PATIENT_MAX_HOPS; i++)
            ck_assert_int_eq(pt_buf_appendf(&b, "%sa.b.c", i ? ", " : ""), PATIENT_OK);
        ck_assert_int_eq(patient_change_header_split((char *)b.data, b.len, sp, PATIENT_MAX_HOPS + 1, &n),
                         PATIENT_ERR_LIMIT);
        ck_assert_uint_eq(n, 0);
        pt_buf_free(&b);
    }
    free(v);
    free(in);
}
END_TEST

/* Malformed upstream TLS facts in a signed descriptor: each refused with
 * PATIENT_ERR_PARSE, nothing accepted; the plaintext form parses. */
START_TEST(tls_facts_malformed)
{
    static const char tls[] = "\"tls\":{\"version\":\"TLSv1.3\",\"cipher\":\"TLS_AES_256_GCM_SHA384\","
                              "\"verified\":true}";
    static const char *const bad[] = {
        "\"tls\":{\"version\":\"TLSv9\",\"cipher\":\"X\",\"verified\":true}",
        "\"tls\":{\"version\":\"TLS/1.3\",\"cipher\":\"X\",\"verified\":true}",
        "\"tls\":{\"version\":\"TLSv1.3\",\"verified\":true}",
        "\"tls\":{\"version\":\"TLSv1.3\",\"cipher\":\"A B\",\"verified\":true}",
        "\"tls\":{\"version\":\"TLSv1.3\",\"cipher\":\"X\",\"verified\":1}",
        "\"tls\":{\"version\":\"TLSv1.3\",\"cipher\":\"X\"}",
        "\"tls\":{\"version\":\"TLSv1.3\",\"cipher\":\"X\",\"verified\":true,\"pin\":\"x\"}",
        "\"tls\":{\"version\":\"none\",\"cipher\":\"X\",\"verified\":false}",
        "\"tls\":{\"version\":\"none\",\"verified\":true}",
        "\"tls\":\"TLSv1.3\"",
        "\"tls\":null",
    };
    uint8_t *out;
    size_t out_len;
    char *v = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 1, &out, &out_len);
    char *f;
    patient_change *c;
    patient_hop *hop = NULL;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = forge(v, sk_a, tls, bad[i]);
        ck_assert_msg(parse_err(f) == PATIENT_ERR_PARSE, "accepted %s", bad[i]);
        free(f);
    }
    f = forge(v, sk_a, tls, "\"tls\":{\"version\":\"none\",\"verified\":false}");
    c = parse_ok(f);
    ck_assert_int_eq(c->has_tls, 1);
    ck_assert_int_eq(c->tls.plaintext, 1);
    ck_assert_ptr_null(c->tls.cipher);
    patient_change_free(c);
    free(f);
    /* the issuing side refuses the same shapes */
    patient_hop_opts o = hop_a(INPUT, strlen(INPUT));
    ck_assert_int_eq(patient_hop_begin(&o, &hop), PATIENT_OK);
    ck_assert_int_eq(patient_hop_set_tls(hop, "TLSv9", "X", 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_hop_set_tls(hop, "TLSv1.3", NULL, 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_hop_set_tls(hop, PATIENT_TLS_NONE, "X", 0), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_hop_set_tls(hop, PATIENT_TLS_NONE, NULL, 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_hop_set_tls(hop, PATIENT_TLS_NONE, NULL, 0), PATIENT_OK);
    patient_hop_free(hop);
    free(v);
    free(out);
}
END_TEST

START_TEST(parse_time_validation)
{
    uint8_t *out;
    size_t out_len;
    char *v = issue3(sk_a, URL, (const uint8_t *)INPUT, strlen(INPUT), NULL, 0, 1, &out, &out_len);
    patient_change *c = parse_ok(v);
    char *f, from[64], to[64];
    size_t o0 = c->edits[0].offset, o1 = c->edits[1].offset, d0 = c->edits[0].delete_len;

    /* Each forgery re-signs the descriptor with one substring replaced, so
     * only the parser's checks can refuse it. */
    const struct {
        const char *member; /* "member":<from> then end, replaced by <to> */
        size_t from_v, to_v;
        char end;
        patient_err want;
        const char *what;
    } numeric[] = {
        /* overlapping edits in a signed payload: move the insertion into
         * the deleted script, then onto the script's offset */
        {"offset", o1, o0 + 1, ',', PATIENT_ERR_EDIT_ORDER, "overlap"},
        {"offset", o1, o0, ',', PATIENT_ERR_EDIT_ORDER, "same offset"},
        {"delete", d0, strlen(INPUT) * 2, ',', PATIENT_ERR_EDIT_RANGE, "out of range"},
        {"size", out_len, out_len + 1, '}', PATIENT_ERR_PARSE, "sizes not adding up"},
    };
    /* other version, type, hop, prev, fields */
    static const struct {
        const char *from, *to;
        patient_err want;
        const char *what;
    } literal[] = {
        {"\"patient\":1", "\"patient\":2", PATIENT_ERR_UNSUPPORTED, "version"},
        {"\"type\":\"change\"", "\"type\":\"origin\"", PATIENT_ERR_PARSE, "type"},
        {"\"hop\":1", "\"hop\":2", PATIENT_ERR_PARSE, "hop 2 without prev"},
        {"\"hop\":1", "\"hop\":33", PATIENT_ERR_LIMIT, "hop over the limit"},
        {"\"hop\":1", "\"hop\":1.5", PATIENT_ERR_PARSE, "fractional hop"},
        {"\"type\":\"change\"", "\"type\":\"change\",\"type\":\"change\"", PATIENT_ERR_JSON,
         "duplicate key"},
        {"Example Filter", "Example\\u0000Filter", PATIENT_ERR_JSON, "NUL in a string"},
        {"\"reason\":\"ads.removed\"", "\"reason\":\"ads removed\"", PATIENT_ERR_PARSE,
         "reason syntax"},
        {"\"verified\":true", "\"verified\":1", PATIENT_ERR_PARSE, "verified not a boolean"},
        {"\"url\":\"https:", "\"url\":\"javascript:", PATIENT_ERR_PARSE, "url scheme"},
        {"\"at\":\"", "\"at\":\"x", PATIENT_ERR_PARSE, "time"},
        {"\"edits\":[", "\"edits\":[],\"x\":[", PATIENT_ERR_PARSE, "no edits"},
        {"\"delete\":0,",
         "\"delete\":0,\"deleted_hash\":\"sha256-ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=\",",
         PATIENT_ERR_PARSE, "hash of nothing deleted"},
        {"\"integrity\":\"sha256-", "\"integrity\":\"sha512-", PATIENT_ERR_UNSUPPORTED,
         "hash algorithm"},
        {"{\"patient\":1", "[{\"patient\":1", PATIENT_ERR_JSON, "not an object"},
    };

    for (size_t i = 0; i < sizeof numeric / sizeof *numeric; i++) {
        patient_err got;
        snprintf(from, sizeof from, "\"%s\":%zu%c", numeric[i].member, numeric[i].from_v,
                 numeric[i].end);
        snprintf(to, sizeof to, "\"%s\":%zu%c", numeric[i].member, numeric[i].to_v,
                 numeric[i].end);
        f = forge(v, sk_a, from, to);
        got = parse_err(f);
        ck_assert_msg(got == numeric[i].want, "%s: %s, want %s", numeric[i].what,
                      patient_errname(got), patient_errname(numeric[i].want));
        free(f);
    }
    for (size_t i = 0; i < sizeof literal / sizeof *literal; i++) {
        patient_err got;
        f = forge(v, sk_a, literal[i].from, literal[i].to);
        got = parse_err(f);
        ck_assert_msg(got == literal[i].want, "%s: %s, want %s", literal[i].what,
                      patient_errname(got), patient_errname(literal[i].want));
        free(f);
    }
    /* more than 64 members in one object: JSON, as strict JSON's refusals */
    {
        char many[1024] = "\"type\":\"change\"";
        for (int m = 0; m < 64; m++)
            snprintf(many + strlen(many), sizeof many - strlen(many), ",\"m%d\":0", m);
        f = forge(v, sk_a, "\"type\":\"change\"", many);
        ck_assert_int_eq(parse_err(f), PATIENT_ERR_JSON);
        free(f);
    }
    /* not a JWS at all, and oversized */
    ck_assert_int_eq(parse_err("a.b"), PATIENT_ERR_PARSE);
    {
        size_t big = PATIENT_JWS_MAX + 10;
        char *s = malloc(big + 1);
        memset(s, 'A', big);
        s[big] = 0;
        ck_assert_int_eq(parse_err(s), PATIENT_ERR_TOO_LARGE);
        free(s);
    }
    patient_change_free(c);
    free(out);
    free(v);
}
END_TEST

START_TEST(header_split)
{
    patient_span sp[PATIENT_MAX_HOPS];
    size_t n = 0;
    const char *h1 = "  a.b.c ,, d-_.e.f\t", *h2 = "g.h.i";

    ck_assert_int_eq(patient_change_header_split(h1, strlen(h1), sp, PATIENT_MAX_HOPS, &n), PATIENT_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(sp[0].len, 5);
    ck_assert(memcmp(sp[0].p, "a.b.c", 5) == 0);
    ck_assert_uint_eq(sp[1].len, 7);
    ck_assert_int_eq(patient_change_header_split(h2, strlen(h2), sp, PATIENT_MAX_HOPS, &n), PATIENT_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(patient_change_header_split("a.b c", 5, sp, PATIENT_MAX_HOPS, &n), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_change_header_split("a;b", 3, sp, PATIENT_MAX_HOPS, &n), PATIENT_ERR_PARSE);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(patient_change_header_split("x, y", 4, sp, 4, &n), PATIENT_ERR_LIMIT);
    ck_assert_uint_eq(n, 3);
    n = 0;
    ck_assert_int_eq(patient_change_header_split("", 0, sp, PATIENT_MAX_HOPS, &n), PATIENT_OK);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(edits_apply)
{
    patient_edit e[3] = {{0}};
    uint8_t *out = NULL;
    size_t out_len = 0;

    e[0].offset = 0, e[0].insert = (const uint8_t *)">>", e[0].insert_len = 2;
    e[1].offset = 2, e[1].delete_len = 3;
    e[2].offset = 5, e[2].delete_len = 1, e[2].insert = (const uint8_t *)"Z", e[2].insert_len = 1;
    ck_assert_int_eq(patient_edits_apply((const uint8_t *)"abcdefg", 7, e, 3, &out, &out_len), PATIENT_OK);
    ck_assert_uint_eq(out_len, 6);
    ck_assert(memcmp(out, ">>abZg", 6) == 0);
    free(out);
    ck_assert_int_eq(patient_edits_apply((const uint8_t *)"abcdefg", 7, e, 0, &out, &out_len), PATIENT_OK);
    ck_assert_uint_eq(out_len, 7);
    free(out);
    e[1].delete_len = 4; /* 2+4 > 5 */
    ck_assert_int_eq(patient_edits_apply((const uint8_t *)"abcdefg", 7, e, 3, &out, &out_len), PATIENT_ERR_EDIT_ORDER);
    e[1].delete_len = 3;
    e[2].offset = 7; /* 7+1 > 7 */
    ck_assert_int_eq(patient_edits_apply((const uint8_t *)"abcdefg", 7, e, 3, &out, &out_len), PATIENT_ERR_EDIT_RANGE);
    e[2].offset = 5;
    e[1].offset = 0; /* unsorted: before edit 0's offset */
    ck_assert_int_eq(patient_edits_apply((const uint8_t *)"abcdefg", 7, e, 3, &out, &out_len), PATIENT_ERR_EDIT_ORDER);
    e[1].offset = 2, e[1].delete_len = 0;
    ck_assert_int_eq(patient_edits_apply((const uint8_t *)"abcdefg", 7, e, 3, &out, &out_len), PATIENT_ERR_ARG);
    ck_assert_ptr_null(out);
}
END_TEST

/* ------------------------------------------------------------------ */

static void
gz_check_roundtrip(const uint8_t *in, size_t len)
{
    uint8_t *z = NULL, *back = NULL;
    size_t zl = 0, bl = 0;

    ck_assert_int_eq(patient_gzip_encode(in, len, &z, &zl), PATIENT_OK);
    ck_assert(zl >= 18 && z[0] == 0x1f && z[1] == 0x8b);
    ck_assert_int_eq(patient_gzip_decode(z, zl, 0, &back, &bl), PATIENT_OK);
    ck_assert_uint_eq(bl, len);
    ck_assert(len == 0 || memcmp(back, in, len) == 0);
    free(back);
    free(z);
}

START_TEST(gzip_roundtrip)
{
    uint8_t *z = NULL, *back = NULL, *two;
    size_t zl = 0, bl = 0, i;
    uint8_t big[200000];

    for (i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 9));
    gz_check_roundtrip((const uint8_t *)INPUT, strlen(INPUT));
    gz_check_roundtrip(big, sizeof big);
    gz_check_roundtrip((const uint8_t *)"", 0);

    /* zlib and raw deflate too (Content-Encoding: deflate, both readings) */
    {
        uLongf cl = compressBound(sizeof big);
        uint8_t *zz = malloc(cl);
        ck_assert_int_eq(compress(zz, &cl, big, sizeof big), Z_OK);
        ck_assert_int_eq(patient_gzip_decode(zz, cl, 0, &back, &bl), PATIENT_OK);
        ck_assert_uint_eq(bl, sizeof big);
        ck_assert(memcmp(back, big, bl) == 0);
        free(back);
        /* raw: strip the 2-byte zlib header and 4-byte Adler trailer */
        ck_assert_int_eq(patient_gzip_decode(zz + 2, cl - 6, 0, &back, &bl), PATIENT_OK);
        ck_assert_uint_eq(bl, sizeof big);
        free(back);
        free(zz);
    }
    /* two gzip members */
    ck_assert_int_eq(patient_gzip_encode((const uint8_t *)"hello ", 6, &z, &zl), PATIENT_OK);
    two = malloc(2 * zl + 1);
    memcpy(two, z, zl);
    memcpy(two + zl, z, zl);
    ck_assert_int_eq(patient_gzip_decode(two, 2 * zl, 0, &back, &bl), PATIENT_OK);
    ck_assert_uint_eq(bl, 12);
    ck_assert(memcmp(back, "hello hello ", 12) == 0);
    free(back);
    /* trailing garbage */
    two[zl] = 'x';
    ck_assert_int_eq(patient_gzip_decode(two, zl + 1, 0, &back, &bl), PATIENT_ERR_GZIP);
    /* exactly at the cap is fine, one byte under is not */
    ck_assert_int_eq(patient_gzip_decode(z, zl, 6, &back, &bl), PATIENT_OK);
    free(back);
    ck_assert_int_eq(patient_gzip_decode(z, zl, 5, &back, &bl), PATIENT_ERR_TOO_LARGE);
    free(two);
    free(z);
}
END_TEST

START_TEST(gzip_corrupt)
{
    uint8_t *z = NULL, *back = (uint8_t *)1;
    size_t zl = 0, bl = 1;
    uint8_t big[50000];

    memset(big, 'q', sizeof big);
    ck_assert_int_eq(patient_gzip_encode(big, sizeof big, &z, &zl), PATIENT_OK);
    /* truncated */
    ck_assert_int_eq(patient_gzip_decode(z, zl - 5, 0, &back, &bl), PATIENT_ERR_GZIP);
    ck_assert_ptr_null(back);
    /* CRC damaged */
    z[zl - 6] ^= 0xff;
    ck_assert_int_eq(patient_gzip_decode(z, zl, 0, &back, &bl), PATIENT_ERR_GZIP);
    /* garbage */
    ck_assert_int_eq(patient_gzip_decode((const uint8_t *)"\x1f\x8bgarbage!", 10, 0, &back, &bl), PATIENT_ERR_GZIP);
    ck_assert_int_eq(patient_gzip_decode((const uint8_t *)"plain text", 10, 0, &back, &bl), PATIENT_ERR_GZIP);
    ck_assert_int_eq(patient_gzip_decode((const uint8_t *)"", 0, 0, &back, &bl), PATIENT_ERR_GZIP);
    free(z);
}
END_TEST

START_TEST(gzip_bomb)
{
    /* 100 MB of zeros as gzip (about 100 KB), decoded with a 10 MB cap. */
    z_stream s;
    static uint8_t zeros[1 << 20];
    uint8_t *z = malloc(1 << 20), *back = (uint8_t *)1;
    size_t bl = 1, i;

    memset(&s, 0, sizeof s);
    ck_assert_int_eq(deflateInit2(&s, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_out = z;
    s.avail_out = 1 << 20;
    for (i = 0; i < 100; i++) {
        s.next_in = zeros;
        s.avail_in = sizeof zeros;
        ck_assert_int_eq(deflate(&s, i == 99 ? Z_FINISH : Z_NO_FLUSH), i == 99 ? Z_STREAM_END : Z_OK);
    }
    ck_assert_uint_lt(s.total_out, 1 << 20);
    ck_assert_int_eq(patient_gzip_decode(z, s.total_out, 10u << 20, &back, &bl), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(back);
    /* and with the default cap (64 MiB) */
    ck_assert_int_eq(patient_gzip_decode(z, s.total_out, 0, &back, &bl), PATIENT_ERR_TOO_LARGE);
    deflateEnd(&s);
    free(z);
}
END_TEST

/* The streaming codec, fed in pieces of every awkward size, gives what
 * the whole-body one gives, and fails where it fails. */
struct gz_acc {
    uint8_t *p;
    size_t len, cap, calls, max_piece;
};

static patient_err
gz_acc_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct gz_acc *a = ctx;

    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, PATIENT_GZIP_PIECE);
    if (a->len + n > a->cap) {
        a->cap = (a->len + n) * 2;
        a->p = realloc(a->p, a->cap);
        ck_assert_ptr_nonnull(a->p);
    }
    memcpy(a->p + a->len, p, n);
    a->len += n;
    a->calls++;
    return PATIENT_OK;
}

static patient_err
gz_feed_pieces(const uint8_t *in, size_t len, size_t piece, unsigned ratio, struct gz_acc *a)
{
    patient_gzip_dec *d = NULL;
    patient_err err = PATIENT_OK;

    ck_assert_int_eq(patient_gzip_dec_new(ratio, &d), PATIENT_OK);
    for (size_t off = 0; off < len && err == PATIENT_OK; off += piece)
        err = patient_gzip_dec_feed(d, in + off, len - off < piece ? len - off : piece, 0,
                                    gz_acc_sink, a);
    if (err == PATIENT_OK)
        err = patient_gzip_dec_feed(d, NULL, 0, 1, gz_acc_sink, a);
    if (err != PATIENT_OK) /* sticky */
        ck_assert_int_eq(patient_gzip_dec_feed(d, (const uint8_t *)"x", 1, 1, gz_acc_sink, a), err);
    patient_gzip_dec_free(d);
    return err;
}

START_TEST(gzip_stream)
{
    static uint8_t big[300000];
    static const size_t pieces[] = {1, 2, 3, 7, 4096, 65536, 1u << 20};
    uint8_t *z = NULL, *two;
    size_t zl = 0, i;
    struct gz_acc a = {0};
    patient_gzip_enc *e = NULL;

    for (i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 9));
    ck_assert_int_eq(patient_gzip_encode(big, sizeof big, &z, &zl), PATIENT_OK);
    two = malloc(2 * zl);
    memcpy(two, z, zl);
    memcpy(two + zl, z, zl);
    for (i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        if (pieces[i] < 7 && i > 0)
            continue; /* byte-wise once is enough (slow under sanitizers) */
        a.len = 0;
        ck_assert_int_eq(gz_feed_pieces(two, 2 * zl, pieces[i], 200, &a), PATIENT_OK);
        ck_assert_uint_eq(a.len, 2 * sizeof big);
        ck_assert(memcmp(a.p, big, sizeof big) == 0 && memcmp(a.p + sizeof big, big, sizeof big) == 0);
        /* truncated anywhere, even between members: GZIP */
        ck_assert_int_eq(gz_feed_pieces(two, zl - 1, pieces[i], 200, &a), PATIENT_ERR_GZIP);
        ck_assert_int_eq(gz_feed_pieces(two, zl + 1, pieces[i], 200, &a), PATIENT_ERR_GZIP);
    }
    /* trailing garbage after a member, a damaged CRC, no stream at all */
    two[zl] = 'x';
    ck_assert_int_eq(gz_feed_pieces(two, 2 * zl, 4096, 200, &a), PATIENT_ERR_GZIP);
    z[zl - 6] ^= 0xff;
    ck_assert_int_eq(gz_feed_pieces(z, zl, 4096, 200, &a), PATIENT_ERR_GZIP);
    ck_assert_int_eq(gz_feed_pieces((const uint8_t *)"", 0, 1, 200, &a), PATIENT_ERR_GZIP);
    ck_assert_int_eq(gz_feed_pieces((const uint8_t *)"plain text", 10, 3, 200, &a),
                     PATIENT_ERR_GZIP);
    free(z);
    free(two);

    /* The encoder: synced pieces decode as they are (a receiver can
     * render them before the end), finished it is one member. */
    {
        struct gz_acc enc = {0};
        size_t synced;
        ck_assert_int_eq(patient_gzip_enc_new(1, &e), PATIENT_OK);
        ck_assert_int_eq(patient_gzip_enc_feed(e, big, 100000, PATIENT_GZIP_MORE, gz_acc_sink, &enc),
                         PATIENT_OK);
        ck_assert_int_eq(patient_gzip_enc_feed(e, big + 100000, 100000, PATIENT_GZIP_SYNC,
                                               gz_acc_sink, &enc),
                         PATIENT_OK);
        synced = enc.len;
        {
            /* everything fed so far decodes from what was emitted */
            patient_gzip_dec *d = NULL;
            a.len = 0;
            ck_assert_int_eq(patient_gzip_dec_new(0, &d), PATIENT_OK);
            ck_assert_int_eq(patient_gzip_dec_feed(d, enc.p, synced, 0, gz_acc_sink, &a), PATIENT_OK);
            ck_assert_uint_eq(a.len, 200000);
            ck_assert(memcmp(a.p, big, 200000) == 0);
            patient_gzip_dec_free(d);
        }
        ck_assert_int_eq(patient_gzip_enc_feed(e, big + 200000, sizeof big - 200000,
                                               PATIENT_GZIP_FINISH, gz_acc_sink, &enc),
                         PATIENT_OK);
        ck_assert_int_eq(patient_gzip_enc_feed(e, NULL, 0, PATIENT_GZIP_FINISH, gz_acc_sink, &enc),
                         PATIENT_ERR_STATE);
        patient_gzip_enc_free(e);
        a.len = 0;
        ck_assert_int_eq(gz_feed_pieces(enc.p, enc.len, 65536, 0, &a), PATIENT_OK);
        ck_assert_uint_eq(a.len, sizeof big);
        ck_assert(memcmp(a.p, big, sizeof big) == 0);
        free(enc.p);
        ck_assert_int_eq(patient_gzip_enc_new(10, &e), PATIENT_ERR_ARG);
    }

    /* The bomb cap: 64 MB of zeros (about 64 KB of gzip) stops soon
     * after the 1 MiB floor at ratio 200; without a cap it decodes. */
    {
        static uint8_t zeros[1 << 20];
        struct gz_acc bomb = {0};
        ck_assert_int_eq(patient_gzip_enc_new(9, &e), PATIENT_OK);
        for (i = 0; i < 64; i++)
            ck_assert_int_eq(patient_gzip_enc_feed(e, zeros, sizeof zeros,
                                                   i == 63 ? PATIENT_GZIP_FINISH : PATIENT_GZIP_MORE,
                                                   gz_acc_sink, &bomb),
                             PATIENT_OK);
        patient_gzip_enc_free(e);
        a.len = 0;
        ck_assert_int_eq(gz_feed_pieces(bomb.p, bomb.len, 4096, 200, &a), PATIENT_ERR_TOO_LARGE);
        ck_assert_uint_le(a.len, 2u << 20); /* stopped early, not at the end */
        a.len = 0;
        ck_assert_int_eq(gz_feed_pieces(bomb.p, bomb.len, 65536, 0, &a), PATIENT_OK);
        ck_assert_uint_eq(a.len, 64u << 20);
        free(bomb.p);
    }
    free(a.p);
}
END_TEST

/* ------------------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 25

struct worker {
    int id, failures;
};

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    int i;

    for (i = 0; i < PER_THREAD; i++) {
        char body[256], url[128];
        patient_hop *hop = NULL;
        uint8_t *out = NULL, *back = NULL;
        size_t out_len = 0, back_len = 0;
        char *v = NULL;
        patient_change *c = NULL;
        int n = snprintf(body, sizeof body, "<p>thread %d request %d tracker here</p>", w->id, i);
        snprintf(url, sizeof url, "https://example.org/t%d/r%d", w->id, i);
        if (patient_hop_begin(&(patient_hop_opts){.sk = sk_a, .name = "T",
                                                  .service = "tracker-filter", .url = url,
                                                  .in = (const uint8_t *)body, .in_len = (size_t)n},
                              &hop) ||
            patient_hop_add_edit(hop, (size_t)(strstr(body, "tracker") - body), 7,
                                 (const uint8_t *)"-", 1, "tracker.removed", "t", NULL, 1) ||
            patient_hop_finish(hop, 1795000000 + i, &out, &out_len, &v) ||
            patient_change_parse(v, strlen(v), &c) || patient_change_verify(c, &pk_a) ||
            strcmp(c->url, url) != 0 ||
            patient_change_undo(c, out, out_len, &back, &back_len) || back_len != (size_t)n ||
            memcmp(back, body, back_len) != 0)
            w->failures++;
        patient_hop_free(hop);
        patient_change_free(c);
        free(out);
        free(back);
        free(v);
    }
    return NULL;
}

/* A hop over in with no edit yet (as begin3 without the edits). */
static patient_hop *
begin0(const char *url, const uint8_t *in, size_t len)
{
    patient_hop *hop = NULL;

    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk_a, .name = "Example Filter",
                                                           .service = "content-filter",
                                                           .url = url, .in = in, .in_len = len},
                                       &hop),
                     PATIENT_OK);
    return hop;
}

/* A middlebox that streamed the output signs it with
 * patient_hop_finish_output: the same descriptor, byte for byte, as
 * patient_hop_finish gives (Ed25519 is deterministic). Its forged twins:
 * an output one byte off (kept bytes, inserted bytes), one byte short or
 * long, and an unchanged body that is not the input sign nothing. */
START_TEST(finish_output_same_descriptor)
{
    const char *url = "https://news.example/a.html";
    const uint8_t *in = (const uint8_t *)INPUT;
    size_t len = strlen(INPUT), out_len = 0, ins;
    uint8_t *out = NULL, *bad;
    char *v1 = issue3(sk_a, url, in, len, NULL, 0, 1, &out, &out_len), *v2 = NULL;
    patient_hop *hop = begin3(sk_a, url, in, len, NULL, 0, 1);
    size_t flips[2];

    ck_assert_int_eq(patient_hop_finish_output(hop, 1795000000, out, out_len, NULL, &v2),
                     PATIENT_OK);
    ck_assert_ptr_nonnull(v2);
    ck_assert_str_eq(v1, v2);
    free(v2);
    ck_assert_int_eq(patient_hop_finish_output(hop, 1795000000, out, out_len, NULL, &v2),
                     PATIENT_ERR_STATE);
    ck_assert_ptr_null(v2);
    patient_hop_free(hop);

    ins = pos_of((const char *)out, "<p>filtered</p>");
    flips[0] = 0;       /* a kept byte */
    flips[1] = ins + 4; /* an inserted byte */
    bad = malloc(out_len + 1);
    for (size_t k = 0; k < 2; k++) {
        memcpy(bad, out, out_len);
        bad[flips[k]] ^= 1;
        hop = begin3(sk_a, url, in, len, NULL, 0, 1);
        ck_assert_int_eq(patient_hop_finish_output(hop, 1795000000, bad, out_len, NULL, &v2),
                         PATIENT_ERR_HASH);
        ck_assert_ptr_null(v2);
        patient_hop_free(hop);
    }
    memcpy(bad, out, out_len);
    bad[out_len] = 'x';
    for (int d = -1; d <= 1; d += 2) {
        hop = begin3(sk_a, url, in, len, NULL, 0, 1);
        ck_assert_int_eq(
            patient_hop_finish_output(hop, 1795000000, bad, out_len + (size_t)d, NULL, &v2),
            PATIENT_ERR_HASH);
        ck_assert_ptr_null(v2);
        patient_hop_free(hop);
    }

    /* No edit: nothing to sign, and the output must be the input. */
    for (int k = 0; k < 2; k++) {
        hop = begin0(url, in, len);
        ck_assert_int_eq(patient_hop_finish_output(hop, 0, k ? out : in, k ? out_len : len, NULL,
                                                   &v2),
                         k ? PATIENT_ERR_HASH : PATIENT_OK);
        ck_assert_ptr_null(v2);
        patient_hop_free(hop);
    }

    free(bad);
    free(out);
    free(v1);
}
END_TEST

/* Hashes taken while streaming (fed in pieces) sign the same descriptor.
 * Twins: counts that are not the hop's sizes sign nothing; hashes fed
 * bytes that are not the output sign a descriptor the output check
 * refuses (the caller's word fails at the verifier, never the reverse). */
static patient_hop_hashes *
hashes_of(const uint8_t *in, size_t len, const uint8_t *out, size_t out_len, size_t piece)
{
    patient_hop_hashes *hh = NULL;

    ck_assert_int_eq(patient_hop_hashes_new(&hh), PATIENT_OK);
    for (size_t o = 0; o < len; o += piece)
        ck_assert_int_eq(patient_hop_hashes_in(hh, in + o, len - o < piece ? len - o : piece),
                         PATIENT_OK);
    for (size_t o = 0; o < out_len; o += piece)
        ck_assert_int_eq(
            patient_hop_hashes_out(hh, out + o, out_len - o < piece ? out_len - o : piece),
            PATIENT_OK);
    return hh;
}

START_TEST(finish_output_streamed_hashes)
{
    const char *url = "https://news.example/a.html";
    const uint8_t *in = (const uint8_t *)INPUT;
    size_t len = strlen(INPUT), out_len = 0;
    uint8_t *out = NULL, *bad;
    char *v1 = issue3(sk_a, url, in, len, NULL, 0, 1, &out, &out_len), *v2 = NULL;
    patient_hop *hop;
    patient_hop_hashes *hh;
    patient_change *c;

    hop = begin3(sk_a, url, in, len, NULL, 0, 1);
    hh = hashes_of(in, len, out, out_len, 7);
    ck_assert_int_eq(patient_hop_finish_output(hop, 1795000000, out, out_len, hh, &v2),
                     PATIENT_OK);
    ck_assert_str_eq(v1, v2);
    free(v2);
    v2 = NULL;
    /* used up */
    ck_assert_int_eq(patient_hop_hashes_in(hh, in, 1), PATIENT_ERR_STATE);
    patient_hop_hashes_free(hh);
    patient_hop_free(hop);

    /* one output byte not fed */
    hop = begin3(sk_a, url, in, len, NULL, 0, 1);
    hh = hashes_of(in, len, out, out_len - 1, 5);
    ck_assert_int_eq(patient_hop_finish_output(hop, 1795000000, out, out_len, hh, &v2),
                     PATIENT_ERR_HASH);
    ck_assert_ptr_null(v2);
    patient_hop_hashes_free(hh);
    patient_hop_free(hop);

    /* fed an output with one byte changed: signed, and refused */
    bad = malloc(out_len);
    memcpy(bad, out, out_len);
    bad[1] ^= 1;
    hop = begin3(sk_a, url, in, len, NULL, 0, 1);
    hh = hashes_of(in, len, bad, out_len, 64);
    ck_assert_int_eq(patient_hop_finish_output(hop, 1795000000, out, out_len, hh, &v2),
                     PATIENT_OK);
    c = parse_ok(v2);
    ck_assert_int_eq(patient_change_check_output(c, out, out_len), PATIENT_ERR_HASH);
    patient_change_free(c);
    free(v2);
    v2 = NULL;
    patient_hop_hashes_free(hh);
    patient_hop_free(hop);

    /* the output itself one byte off: nothing signed, hashes or not */
    hop = begin3(sk_a, url, in, len, NULL, 0, 1);
    hh = hashes_of(in, len, bad, out_len, 64);
    ck_assert_int_eq(patient_hop_finish_output(hop, 1795000000, bad, out_len, hh, &v2),
                     PATIENT_ERR_HASH);
    ck_assert_ptr_null(v2);
    patient_hop_hashes_free(hh);
    patient_hop_free(hop);

    free(bad);
    free(out);
    free(v1);
}
END_TEST

/* A middlebox that never held its output in one buffer signs with
 * patient_hop_finish_hashed, the common prefix hashed once
 * (patient_hop_hashes_both): the same descriptor, byte for byte. Twins:
 * a size that is not the edits' output, counts that are not the hop's
 * sizes, and a prefix hashed for both after the split sign nothing;
 * hashes fed a byte that is not the output sign a descriptor the output
 * check refuses; an unchanged body whose output hashed otherwise is
 * refused. */
START_TEST(finish_hashed_shared_prefix)
{
    const char *url = "https://news.example/a.html";
    const uint8_t *in = (const uint8_t *)INPUT;
    size_t len = strlen(INPUT), out_len = 0, k = 0;
    uint8_t *out = NULL, *bad;
    char *v1 = issue3(sk_a, url, in, len, NULL, 0, 1, &out, &out_len), *v2 = NULL;
    patient_hop *hop;
    patient_hop_hashes *hh;
    patient_change *c;

    while (k < len && k < out_len && in[k] == out[k])
        k++;
    ck_assert_uint_gt(k, 0);
    bad = malloc(out_len);
    for (int twin = 0; twin < 2; twin++) {
        const uint8_t *o = out;
        if (twin) { /* a byte of the common prefix, fed wrong */
            memcpy(bad, out, out_len);
            bad[0] ^= 1;
            o = bad;
        }
        hop = begin3(sk_a, url, in, len, NULL, 0, 1);
        ck_assert_int_eq(patient_hop_hashes_new(&hh), PATIENT_OK);
        ck_assert_int_eq(patient_hop_hashes_both(hh, o, k), PATIENT_OK);
        ck_assert_int_eq(patient_hop_hashes_in(hh, in + k, len - k), PATIENT_OK);
        ck_assert_int_eq(patient_hop_hashes_both(hh, in + k, 1), PATIENT_ERR_STATE);
        ck_assert_int_eq(patient_hop_hashes_out(hh, o + k, out_len - k), PATIENT_OK);
        ck_assert_int_eq(patient_hop_finish_hashed(hop, 1795000000, out_len, hh, &v2), PATIENT_OK);
        ck_assert_ptr_nonnull(v2);
        if (!twin) {
            ck_assert_str_eq(v1, v2);
        } else {
            c = parse_ok(v2);
            ck_assert_int_eq(patient_change_check_output(c, out, out_len), PATIENT_ERR_HASH);
            patient_change_free(c);
        }
        free(v2);
        v2 = NULL;
        ck_assert_int_eq(patient_hop_finish_hashed(hop, 1795000000, out_len, hh, &v2),
                         PATIENT_ERR_STATE);
        patient_hop_hashes_free(hh);
        patient_hop_free(hop);
    }

    /* a size that is not the edits' output; hashes one byte short */
    for (int twin = 0; twin < 2; twin++) {
        hop = begin3(sk_a, url, in, len, NULL, 0, 1);
        hh = hashes_of(in, len, out, twin ? out_len - 1 : out_len, 9);
        ck_assert_int_eq(
            patient_hop_finish_hashed(hop, 1795000000, twin ? out_len : out_len + 1, hh, &v2),
            PATIENT_ERR_HASH);
        ck_assert_ptr_null(v2);
        patient_hop_hashes_free(hh);
        patient_hop_free(hop);
    }

    /* No edit: all of it shared signs nothing and passes; an output that
     * hashed otherwise is refused. */
    for (int twin = 0; twin < 2; twin++) {
        hop = begin0(url, in, len);
        ck_assert_int_eq(patient_hop_hashes_new(&hh), PATIENT_OK);
        if (twin) { /* the input with its first byte changed: as long, other bytes */
            uint8_t *other = malloc(len);
            ck_assert_ptr_nonnull(other);
            memcpy(other, in, len);
            other[0] ^= 1;
            ck_assert_int_eq(patient_hop_hashes_in(hh, in, len), PATIENT_OK);
            ck_assert_int_eq(patient_hop_hashes_out(hh, other, len), PATIENT_OK);
            free(other);
        } else {
            ck_assert_int_eq(patient_hop_hashes_both(hh, in, len), PATIENT_OK);
        }
        ck_assert_int_eq(patient_hop_finish_hashed(hop, 0, len, hh, &v2),
                         twin ? PATIENT_ERR_HASH : PATIENT_OK);
        ck_assert_ptr_null(v2);
        patient_hop_hashes_free(hh);
        patient_hop_free(hop);
    }
    ck_assert_int_eq(patient_hop_finish_hashed(NULL, 0, 0, NULL, &v2), PATIENT_ERR_ARG);

    free(bad);
    free(out);
    free(v1);
}
END_TEST

/* Hashes taken on a background thread (patient_hop_hashes_background)
 * sign the same descriptor, byte for byte, as patient_hop_finish: fed in
 * 4 KiB pieces, input and output alternating as a middlebox relays
 * them, over a body large enough to start the thread (3 MiB) and one
 * that is not (hashed at the wait), two at once from one thread, and
 * from a thread that then exits (its hashing thread goes with it). Bytes
 * hashed before a wait may then change without effect. Twin: one output
 * byte fed wrong after many batches signs a descriptor the output check
 * refuses. */
struct bg_case {
    const uint8_t *in, *out;
    size_t len, out_len, prefix;
    const char *want;
    int failures;
};

static int
bg_feed(patient_hop_hashes *hh, const uint8_t *in, size_t len, const uint8_t *out,
        size_t out_len, size_t *i, size_t *o, size_t upto)
{
    int bad = 0;
    while (*i < upto || *o < upto) {
        size_t a = len - *i < 4096 ? len - *i : 4096, b = out_len - *o < 4096 ? out_len - *o : 4096;
        if (*i < upto && a)
            bad |= patient_hop_hashes_in(hh, in + *i, a) != PATIENT_OK, *i += a;
        if (*o < upto && b)
            bad |= patient_hop_hashes_out(hh, out + *o, b) != PATIENT_OK, *o += b;
        if (!a && !b)
            break;
    }
    return bad;
}

/* One hop hashed in the background, its output fed from a copy: half of
 * it, a wait, that half scribbled over, the rest (flip: one byte of the
 * rest changed first). 0 when the result is what it must be. */
static int
bg_one(const struct bg_case *c, int flip)
{
    const char *url = "https://news.example/a.html";
    uint8_t *cp = malloc(c->out_len);
    patient_hop *hop = begin3(sk_a, url, c->in, c->len, NULL, 0, 1);
    patient_hop_hashes *hh = NULL;
    char *v = NULL;
    size_t i = c->prefix, o = c->prefix, half = c->out_len / 2;
    int bad = cp == NULL;

    if (bad)
        goto out;
    memcpy(cp, c->out, c->out_len);
    if (flip)
        cp[c->out_len - 3] ^= 1;
    bad |= patient_hop_hashes_new(&hh) != PATIENT_OK;
    bad |= patient_hop_hashes_background(hh) != PATIENT_OK;
    bad |= patient_hop_hashes_both(hh, c->in, c->prefix) != PATIENT_OK;
    bad |= bg_feed(hh, c->in, c->len, cp, c->out_len, &i, &o, half);
    bad |= patient_hop_hashes_wait(hh) != PATIENT_OK;
    memset(cp, 'x', o); /* already hashed: no longer borrowed */
    bad |= bg_feed(hh, c->in, c->len, cp, c->out_len, &i, &o, SIZE_MAX);
    bad |= patient_hop_finish_hashed(hop, 1795000000, c->out_len, hh, &v) != PATIENT_OK;
    if (!bad && v && !flip) {
        bad |= strcmp(v, c->want) != 0;
    } else if (!bad && v) {
        patient_change *ch = NULL;
        bad |= patient_change_parse(v, strlen(v), &ch) != PATIENT_OK ||
               patient_change_check_output(ch, c->out, c->out_len) != PATIENT_ERR_HASH;
        patient_change_free(ch);
    } else {
        bad = 1;
    }
out:
    free(v);
    free(cp);
    patient_hop_hashes_free(hh);
    patient_hop_free(hop);
    return bad;
}

/* Two hops of one thread in the background at once, pieces interleaved. */
static int
bg_two(const struct bg_case *c)
{
    const char *url = "https://news.example/a.html";
    patient_hop *hop[2];
    patient_hop_hashes *hh[2] = {NULL, NULL};
    size_t i[2], o[2];
    int bad = 0;

    for (int k = 0; k < 2; k++) {
        hop[k] = begin3(sk_a, url, c->in, c->len, NULL, 0, 1);
        bad |= patient_hop_hashes_new(&hh[k]) != PATIENT_OK;
        bad |= patient_hop_hashes_background(hh[k]) != PATIENT_OK;
        bad |= patient_hop_hashes_both(hh[k], c->in, c->prefix) != PATIENT_OK;
        i[k] = o[k] = c->prefix;
    }
    for (size_t upto = 65536; !bad && (i[0] < c->len || o[0] < c->out_len); upto += 65536)
        for (int k = 0; k < 2; k++)
            bad |= bg_feed(hh[k], c->in, c->len, c->out, c->out_len, &i[k], &o[k], upto);
    for (int k = 0; k < 2; k++) {
        char *v = NULL;
        bad |= patient_hop_finish_hashed(hop[k], 1795000000, c->out_len, hh[k], &v) != PATIENT_OK ||
               v == NULL || strcmp(v, c->want) != 0;
        free(v);
        patient_hop_hashes_free(hh[k]);
        patient_hop_free(hop[k]);
    }
    return bad;
}

static void *
bg_thread(void *arg)
{
    struct bg_case *c = arg;
    c->failures = bg_one(c, 0) + bg_one(c, 1) + bg_two(c);
    return NULL;
}

START_TEST(finish_hashed_background)
{
    const char *url = "https://news.example/a.html";
    size_t small = strlen(INPUT), big = small + 3 * 1024 * 1024;
    uint8_t *in = malloc(big);

    ck_assert_ptr_nonnull(in);
    memcpy(in, INPUT, small);
    for (size_t j = small; j < big; j++)
        in[j] = (uint8_t)(j * 31 + (j >> 12));
    for (int large = 0; large < 2; large++) {
        struct bg_case c = {.in = in, .len = large ? big : small};
        uint8_t *out = NULL;
        char *want = issue3(sk_a, url, c.in, c.len, NULL, 0, 1, &out, &c.out_len);
        pthread_t t;
        c.out = out;
        c.want = want;
        while (c.prefix < c.len && c.prefix < c.out_len && c.in[c.prefix] == out[c.prefix])
            c.prefix++;
        ck_assert_int_eq(bg_one(&c, 0), 0);
        ck_assert_int_eq(bg_one(&c, 1), 0);
        ck_assert_int_eq(bg_two(&c), 0);
        ck_assert_int_eq(pthread_create(&t, NULL, bg_thread, &c), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(c.failures, 0);
        free(out);
        free(want);
    }
    free(in);
}
END_TEST

/* A finish that fails returns only once the hashing thread is done with
 * the bytes it borrowed (patient_hop_hashes_background), as one that
 * succeeds does: each body here is unmapped as soon as the finish
 * returns, and a thread still reading it would crash the test. Failures
 * before the hashes are used: an output size that is not the edits'
 * (HASH), a hop already finished (STATE), no hop (ARG), an output byte
 * that differs (HASH). */
#define BG_BYTES (4u * 1024 * 1024)

static uint8_t *
bg_mapped(void)
{
    uint8_t *p = mmap(NULL, BG_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    for (size_t j = 0; j < BG_BYTES; j++)
        p[j] = (uint8_t)(j * 31 + (j >> 12));
    return p;
}

static patient_hop_hashes *
bg_queued(const uint8_t *in, const uint8_t *out)
{
    patient_hop_hashes *hh = NULL;

    ck_assert_int_eq(patient_hop_hashes_new(&hh), PATIENT_OK);
    ck_assert_int_eq(patient_hop_hashes_background(hh), PATIENT_OK);
    ck_assert_int_eq(patient_hop_hashes_in(hh, in, BG_BYTES), PATIENT_OK);
    ck_assert_int_eq(patient_hop_hashes_out(hh, out, BG_BYTES), PATIENT_OK);
    return hh;
}

START_TEST(finish_failed_waits_for_hashes)
{
    const char *url = "https://news.example/big.html";
    uint8_t *in = bg_mapped(), *a, *b;
    patient_hop *hop = begin0(url, in, BG_BYTES);
    patient_hop_hashes *hh;
    char *v = NULL;

    /* one replaced byte: the output is as long as the input */
    ck_assert_int_eq(patient_hop_add_edit(hop, 7, 1, (const uint8_t *)"z", 1, "r", "r", NULL, 0),
                     PATIENT_OK);
    a = bg_mapped();
    b = bg_mapped();
    hh = bg_queued(a, b);
    ck_assert_int_eq(patient_hop_finish_hashed(hop, 1795000000, BG_BYTES + 1, hh, &v),
                     PATIENT_ERR_HASH);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(munmap(a, BG_BYTES), 0);
    ck_assert_int_eq(munmap(b, BG_BYTES), 0);
    patient_hop_hashes_free(hh);

    a = bg_mapped();
    b = bg_mapped();
    hh = bg_queued(a, b);
    ck_assert_int_eq(patient_hop_finish_hashed(hop, 1795000000, BG_BYTES, hh, &v),
                     PATIENT_ERR_STATE);
    ck_assert_int_eq(patient_hop_finish_hashed(NULL, 1795000000, BG_BYTES, hh, &v),
                     PATIENT_ERR_ARG);
    ck_assert_int_eq(munmap(a, BG_BYTES), 0);
    ck_assert_int_eq(munmap(b, BG_BYTES), 0);
    patient_hop_hashes_free(hh);
    patient_hop_free(hop);

    hop = begin0(url, in, BG_BYTES);
    ck_assert_int_eq(patient_hop_add_edit(hop, 7, 1, (const uint8_t *)"z", 1, "r", "r", NULL, 0),
                     PATIENT_OK);
    a = bg_mapped();
    b = bg_mapped(); /* not the edits' output: byte 7 is not "z" */
    hh = bg_queued(a, b);
    ck_assert_int_eq(patient_hop_finish_output(hop, 1795000000, b, BG_BYTES, hh, &v),
                     PATIENT_ERR_HASH);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(munmap(a, BG_BYTES), 0);
    ck_assert_int_eq(munmap(b, BG_BYTES), 0);
    patient_hop_hashes_free(hh);
    patient_hop_free(hop);
    ck_assert_int_eq(munmap(in, BG_BYTES), 0);
}
END_TEST

START_TEST(concurrent_issuers)
{
    pthread_t t[THREADS];
    struct worker w[THREADS];
    int i;

    for (i = 0; i < THREADS; i++) {
        w[i].id = i;
        w[i].failures = 0;
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(w[i].failures, 0);
    }
}
END_TEST

/* What a hop's chunks leave unchecked: touched origin chunks merged into
 * ranges, hop 1's last one cut at the origin's size, a later hop's not;
 * withheld bytes summed; no chunks, no ranges. */
START_TEST(chunk_ranges)
{
    uint64_t idx[] = {2, 3, 7};
    patient_edit e[] = {{.offset = 8200, .delete_len = 5, .deleted = NULL},
                        {.offset = 9000, .delete_len = 3, .deleted = (const uint8_t *)"abc"},
                        {.offset = 28700, .delete_len = 10, .deleted = NULL}};
    patient_change c = {.hop = 1, .edits = e, .nedits = 3, .chunk_idx = idx, .nchunks = 3};
    patient_range *r = NULL;
    size_t n = 0;
    uint64_t w = 0;

    c.in.size = 7 * 4096 + 100;
    ck_assert_int_eq(patient_change_chunk_ranges(&c, &r, &n, &w), PATIENT_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(r[0].offset, 8192);
    ck_assert_uint_eq(r[0].length, 8192);
    ck_assert_uint_eq(r[1].offset, 28672);
    ck_assert_uint_eq(r[1].length, 100);
    ck_assert_uint_eq(w, 15);
    free(r);
    c.hop = 2; /* its input is not the origin: whole chunks */
    ck_assert_int_eq(patient_change_chunk_ranges(&c, &r, &n, NULL), PATIENT_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(r[1].length, 4096);
    free(r);
    c.nchunks = 0;
    ck_assert_int_eq(patient_change_chunk_ranges(&c, &r, &n, &w), PATIENT_OK);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(w, 15);
}
END_TEST

static Suite *
change_suite(void)
{
    Suite *s = suite_create("change");
    TCase *tc;

    tc = tcase_create("issue");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, one_hop_roundtrip);
    tcase_add_test(tc, descriptor_bytes_as_cjson);
    tcase_add_test(tc, at_times);
    tcase_add_test(tc, no_edits_no_descriptor);
    tcase_add_test(tc, finish_output_same_descriptor);
    tcase_add_test(tc, finish_output_streamed_hashes);
    tcase_add_test(tc, finish_hashed_shared_prefix);
    tcase_add_test(tc, finish_hashed_background);
    tcase_add_test(tc, finish_failed_waits_for_hashes);
    tcase_add_test(tc, empty_body_and_edges);
    tcase_add_test(tc, issue_time_validation);
    tcase_add_test(tc, too_many_edits_and_hops);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, two_hop_chain);
    tcase_add_test(tc, chain_prev_and_in_wrong);
    tcase_add_test(tc, header_split);
    suite_add_tcase(s, tc);

    tc = tcase_create("forged");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, forged_signatures);
    tcase_add_test(tc, forged_bodies);
    tcase_add_test(tc, deleted_hash_mismatch);
    tcase_add_test(tc, undisclosed_deletion);
    tcase_add_test(tc, parse_time_validation);
    tcase_add_test(tc, tls_facts_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("primitives");
    tcase_add_test(tc, edits_apply);
    tcase_add_test(tc, chunk_ranges);
    tcase_add_test(tc, gzip_roundtrip);
    tcase_add_test(tc, gzip_corrupt);
    tcase_add_test(tc, gzip_bomb);
    tcase_add_test(tc, gzip_stream);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, concurrent_issuers);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(change_suite());
    int failed;

    /* fork by default; CK_FORK=no in the environment for valgrind/gdb */
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
