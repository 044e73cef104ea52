/* Chunk roots and confined hops: the chunk tree itself, the "chunks" a hop
 * signs when it withholds deleted bytes, and the verifier's confined
 * verdicts. Every case asserts the exact verdict and first error code;
 * every accept case has forged twins. */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <patient/patient.h>
#include "chunk.h"
#include "report_int.h"
#include "util.h"
#include "testutil.h"

#define ORIGIN "https://site.example"
#define URL ORIGIN "/page.html"
#define NOW ((time_t)1795000000)
#define C PT_CHUNK_SIZE
#define EICAR "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
#define EICAR_AT (2 * C + 1000) /* inside chunk 2 */

static char tmpdir[64], sitedir[128];
static patient_seckey *sk_pub, *sk_m1, *sk_m2;
static patient_pubkey pk_pub, pk_m1, pk_m2;
static char *man_json, *man_sig, *old_json, *old_sig;
static size_t man_len, old_len;
static patient_policy *pol;
static char *page;
static size_t page_len;

/* ---- fixtures ---- */

static void
write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* A 20 KiB HTML page: a tracker in chunk 0, EICAR in chunk 2, an ad in
 * chunk 4. */
static void
make_page(void)
{
    pt_buf b = {0};
    ck_assert_int_eq(pt_buf_appendf(&b, "<html><head><script src=\"https://t.example/t.js\">"
                                        "</script></head><body>\n"),
                     PATIENT_OK);
    for (int i = 0; b.len < 20 * 1024; i++) {
        if (b.len >= EICAR_AT - 40 && !memmem(b.data, b.len, "EICAR", 5)) {
            while (b.len < EICAR_AT)
                ck_assert_int_eq(pt_buf_append(&b, "-", 1), PATIENT_OK);
            ck_assert_int_eq(pt_buf_append(&b, EICAR, strlen(EICAR)), PATIENT_OK);
        }
        if (b.len >= 4 * C + 200 && !memmem(b.data, b.len, "BUY NOW", 7))
            ck_assert_int_eq(pt_buf_appendf(&b, "<div class=ad>BUY NOW</div>\n"), PATIENT_OK);
        ck_assert_int_eq(pt_buf_appendf(&b, "<p>paragraph %04d: the quick brown fox</p>\n", i),
                         PATIENT_OK);
    }
    ck_assert_int_eq(pt_buf_appendf(&b, "</body></html>\n"), PATIENT_OK);
    page = (char *)b.data;
    page_len = b.len;
}

static size_t
pos_of(const char *needle)
{
    const char *p = memmem(page, page_len, needle, strlen(needle));
    ck_assert_ptr_nonnull(p);
    return (size_t)(p - page);
}

static void
sign_manifest(const char *json, size_t len, char **sig)
{
    ck_assert_int_eq(patient_manifest_sign(sk_pub, json, len, sig), PATIENT_OK);
}

/* json with every "chunk_root" line dropped (a manifest as published
 * before chunk roots existed). */
static char *
strip_roots(const char *json, size_t len, size_t *olen)
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
    *olen = b.len - 1;
    return (char *)b.data;
}

static void
add_mbox(patient_policy *p, const char *name, const patient_pubkey *pk, int insert,
         const char *path)
{
    static const char *const reasons[] = {"tracker.*", "ads.*", "malware.removed", NULL};
    const char *paths[] = {path, NULL};
    ck_assert_int_eq(patient_policy_add_middlebox(p, name, pk, reasons, path ? paths : NULL, NULL,
                                                  10, insert),
                     PATIENT_OK);
}

static void
setup(void)
{
    char path[256], *k;
    uint8_t *kd = NULL;
    size_t n;
    patient_manifest_opts o;
    char *detail = NULL;

    tu_mkdtemp(tmpdir, sizeof tmpdir, "check_confine");
    snprintf(sitedir, sizeof sitedir, "%s/site", tmpdir);
    ck_assert_int_eq(mkdir(sitedir, 0755), 0);
    make_page();
    snprintf(path, sizeof path, "%s/page.html", sitedir);
    write_file(path, page, page_len);
    ck_assert_int_eq(pt_read_file(TEST_SRCDIR "/data/key_test.key", 4096, &kd, &n), PATIENT_OK);
    k = (char *)kd;
    ck_assert_int_eq(patient_seckey_parse(k, n, NULL, &sk_pub, NULL), PATIENT_OK);
    free(k);
    patient_seckey_pubkey(sk_pub, &pk_pub);
    ck_assert_int_eq(patient_keypair_generate(&pk_m1, &sk_m1), PATIENT_OK);
    ck_assert_int_eq(patient_keypair_generate(&pk_m2, &sk_m2), PATIENT_OK);
    memset(&o, 0, sizeof o);
    o.origin = ORIGIN;
    o.version = 1;
    o.issued = NOW - 3600;
    o.expires = NOW + 86400;
    o.threads = 1;
    ck_assert_int_eq(patient_manifest_build(sitedir, &o, &man_json, &man_len, &detail), PATIENT_OK);
    free(detail);
    sign_manifest(man_json, man_len, &man_sig);
    old_json = strip_roots(man_json, man_len, &old_len);
    sign_manifest(old_json, old_len, &old_sig);
    ck_assert_int_eq(patient_policy_new(&pol), PATIENT_OK);
    ck_assert_int_eq(patient_policy_add_publisher(pol, ORIGIN, &pk_pub), PATIENT_OK);
    add_mbox(pol, "malware-gw", &pk_m1, 0, NULL); /* --no-insert */
    add_mbox(pol, "ad-filter", &pk_m2, 1, NULL);
}

static void
teardown(void)
{
    patient_seckey_free(sk_pub);
    patient_seckey_free(sk_m1);
    patient_seckey_free(sk_m2);
    free(man_json);
    free(man_sig);
    free(old_json);
    free(old_sig);
    free(page);
    patient_policy_free(pol);
    tu_rmtree(tmpdir);
}

/* ---- hops ---- */

typedef struct {
    size_t off, del;
    const char *insert;
    const char *reason;
    int disclose;
} espec;

static char *
hop(const patient_seckey *sk, const uint8_t *in, size_t len, const char *const *prev,
    size_t nprev, const espec *e, size_t ne, uint8_t **out, size_t *ol)
{
    patient_hop *h = NULL;
    char *v = NULL;
    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = "gw",
                                                           .service = "malware-filter", .url = URL,
                                                           .in = in, .in_len = len, .prev = prev,
                                                           .nprev = nprev},
                                       &h),
                     PATIENT_OK);
    for (size_t i = 0; i < ne; i++)
        ck_assert_int_eq(patient_hop_add_edit(h, e[i].off, e[i].del, (const uint8_t *)e[i].insert,
                                              e[i].insert ? strlen(e[i].insert) : 0,
                                              e[i].reason ? e[i].reason : "malware.removed", "r1",
                                              NULL, e[i].disclose),
                         PATIENT_OK);
    ck_assert_int_eq(patient_hop_set_tls(h, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(h, NOW - 60, out, ol, &v), PATIENT_OK);
    ck_assert_ptr_nonnull(v);
    patient_hop_free(h);
    return v;
}

/* The EICAR removal, bytes withheld. */
static char *
hop_eicar(uint8_t **out, size_t *ol)
{
    espec e = {pos_of("X5O!"), strlen(EICAR), NULL, NULL, 0};
    return hop(sk_m1, (const uint8_t *)page, page_len, NULL, 0, &e, 1, out, ol);
}

static cJSON *
payload(const char *v)
{
    patient_jws *j = NULL;
    cJSON *o;
    ck_assert_int_eq(patient_jws_parse(v, strlen(v), &j), PATIENT_OK);
    ck_assert_ptr_nonnull(o = cJSON_Parse((const char *)j->payload));
    patient_jws_free(j);
    return o;
}

static char *
resign(const patient_seckey *sk, cJSON *p)
{
    char *s = cJSON_PrintUnformatted(p), *v = NULL;
    ck_assert_int_eq(patient_jws_sign(sk, PATIENT_CHANGE_TYP, s, strlen(s), &v), PATIENT_OK);
    free(s);
    cJSON_Delete(p);
    return v;
}

static void
set_out(cJSON *p, const void *body, size_t len)
{
    uint8_t h[32];
    char sri[PATIENT_SRI_BYTES];
    cJSON *o = cJSON_GetObjectItemCaseSensitive(p, "out");
    ck_assert_int_eq(patient_sha256(body, len, h), PATIENT_OK);
    patient_sri_encode(h, sri);
    cJSON_ReplaceItemInObjectCaseSensitive(o, "integrity", cJSON_CreateString(sri));
}

/* ---- verifying ---- */

static patient_evidence
ev_make(const void *body, size_t len, const char *const *ch, size_t n, int old)
{
    patient_evidence ev;
    memset(&ev, 0, sizeof ev);
    ev.url = URL;
    ev.status = 200;
    ev.body = body;
    ev.body_len = len;
    ev.changes = ch;
    ev.nchanges = n;
    ev.manifest = (const uint8_t *)(old ? old_json : man_json);
    ev.manifest_len = old ? old_len : man_len;
    ev.manifest_sig = old ? old_sig : man_sig;
    ev.manifest_sig_len = strlen(ev.manifest_sig);
    return ev;
}

/* Whether the last run's streamed twin went through the streaming checks
 * (tu_same_streamed): the fixtures that must stream assert it. */
static int streamed;

static patient_report *
run(const patient_policy *p, const patient_evidence *ev)
{
    patient_verify_opts o;
    patient_report *r = NULL;
    memset(&o, 0, sizeof o);
    o.now = NOW;
    ck_assert_int_eq(patient_verify_evidence(p, ev, &o, &r), PATIENT_OK);
    streamed = tu_same_streamed(p, ev, &o, r);
    return r;
}

/* Assert verdict, first error (NULL: none) and the report's proof. Keeps r. */
static void
check(const patient_report *r, patient_verdict v, const char *code, const char *proof)
{
    const char *fe = tu_report_first_error(r);
    if (patient_report_verdict(r) != v || (code == NULL) != (fe == NULL) ||
        (code && fe && strcmp(code, fe)) || strcmp(pt_json_str(r->doc, "proof"), proof)) {
        char *j = NULL;
        if (patient_report_json(r, 1, &j) == PATIENT_OK)
            fprintf(stderr, "%s\n", j);
        free(j);
    }
    ck_assert_str_eq(patient_verdict_name(patient_report_verdict(r)), patient_verdict_name(v));
    if (code) {
        ck_assert_ptr_nonnull(fe);
        ck_assert_str_eq(fe, code);
    } else {
        ck_assert_ptr_null(fe);
    }
    ck_assert_str_eq(pt_json_str(r->doc, "proof"), proof);
}

static void
expect(patient_report *r, patient_verdict v, const char *code, const char *proof)
{
    check(r, v, code, proof);
    patient_report_free(r);
}

/* The report's unchecked ranges as "off+len off+len ", and the total. */
static void
unchecked(const patient_report *r, char *buf, size_t cap, long long *total)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(r->doc, "unchecked"), *o;
    buf[0] = 0;
    ck_assert(cJSON_IsObject(u));
    *total = (long long)cJSON_GetObjectItemCaseSensitive(u, "bytes")->valuedouble;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(u, "ranges"))
    {
        char one[64];
        snprintf(one, sizeof one, "%.0f+%.0f ",
                 cJSON_GetObjectItemCaseSensitive(o, "offset")->valuedouble,
                 cJSON_GetObjectItemCaseSensitive(o, "length")->valuedouble);
        strncat(buf, one, cap - strlen(buf) - 1);
    }
}

static patient_policy *
policy_proof(const char *level)
{
    char *j = NULL, *q;
    size_t l;
    pt_buf t = {0};
    patient_policy *p = NULL;
    ck_assert_int_eq(patient_policy_serialize(pol, &j, &l), PATIENT_OK);
    ck_assert_ptr_nonnull(q = strstr(j, "\"proof\": \"auto\""));
    *q = 0;
    ck_assert_int_eq(pt_buf_appendf(&t, "%s\"proof\": \"%s\"%s", j, level, q + 15), PATIENT_OK);
    ck_assert_int_eq(patient_policy_parse((char *)t.data, t.len, &p, NULL), PATIENT_OK);
    free(j);
    pt_buf_free(&t);
    return p;
}

/* ---- the chunk tree ---- */

/* The chunk walk over d[0..n) held in one piece. */
static patient_err
walk(const uint8_t *d, size_t n, const pt_chunk_job *job, uint8_t root[32])
{
    pt_piece one;
    pt_pieces ps = pt_pieces_one(&one, d, n);
    return pt_chunk_walk_pieces(&ps, job, root);
}

START_TEST(tree_shapes)
{
    static const size_t sizes[] = {0, 1, 63, 64, C - 1, C, C + 1, 2 * C, 5 * C + 17};
    uint8_t *d = malloc(5 * C + 17), dig[32], root[32], ref[32], root2[32];
    for (size_t i = 0; i < 5 * C + 17; i++)
        d[i] = (uint8_t)(i * 7 + 3);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        pt_chunker *c = NULL;
        ck_assert_int_eq(pt_chunk_root(d, n, dig, root), PATIENT_OK);
        /* The last leaf is the ordinary SHA-256 of the resource. */
        ck_assert_int_eq(patient_sha256(d, n, ref), PATIENT_OK);
        ck_assert_mem_eq(dig, ref, 32);
        if (n <= C) {
            /* One chunk: the root is the leaf hash of the digest. */
            uint8_t lb[33];
            lb[0] = 0;
            memcpy(lb + 1, ref, 32);
            ck_assert_int_eq(patient_sha256(lb, 33, ref), PATIENT_OK);
            ck_assert_mem_eq(root, ref, 32);
        }
        /* Streaming in odd pieces gives the same root. */
        ck_assert_int_eq(pt_chunker_new(&c), PATIENT_OK);
        for (size_t o = 0; o < n; o += 777)
            ck_assert_int_eq(pt_chunker_update(c, d + o, n - o < 777 ? n - o : 777), PATIENT_OK);
        ck_assert_int_eq(pt_chunker_final(c, NULL, root2), PATIENT_OK);
        ck_assert_mem_eq(root, root2, 32);
        /* The RFC 9162 reference tree over the leaves gives it too. */
        {
            uint64_t nl = pt_chunk_count(n), *all = malloc(nl * sizeof *all);
            uint8_t (*lv)[32] = malloc(nl * sizeof *lv), (*lh)[32] = malloc(nl * sizeof *lh);
            for (uint64_t j = 0; j < nl; j++)
                all[j] = j;
            ck_assert_int_eq(
                walk(d, n, &(pt_chunk_job){.len = n, .want = all, .leaf = lv, .nwant = nl}, NULL),
                PATIENT_OK);
            for (uint64_t j = 0; j < nl; j++) {
                uint8_t lb[33];
                lb[0] = 0;
                memcpy(lb + 1, lv[j], 32);
                ck_assert_int_eq(patient_sha256(lb, 33, lh[j]), PATIENT_OK);
            }
            ck_assert_int_eq(pt_merkle_root((const uint8_t (*)[32])lh, nl, root2), PATIENT_OK);
            ck_assert_mem_eq(root, root2, 32);
            free(all);
            free(lv);
            free(lh);
        }
        /* Walking without known leaves gives it too. */
        ck_assert_int_eq(walk(d, n, &(pt_chunk_job){.len = n, .root = 1}, root2), PATIENT_OK);
        ck_assert_mem_eq(root, root2, 32);
        ck_assert_uint_eq(pt_chunk_count(n), n ? (n + C - 1) / C : 1);
    }
    free(d);
}
END_TEST

/* Leaves taken as known stand in for bytes that are gone; any other leaf
 * value changes the root. */
START_TEST(tree_known_leaves)
{
    size_t n = 5 * C + 17;
    uint8_t *d = malloc(n), root[32], root2[32], lv[2][32];
    uint64_t want[] = {1, 5};
    const pt_chunk_job ask = {.len = n, .want = want, .leaf = lv, .nwant = 2},
                       given = {.len = n, .known = want, .known_val = (const uint8_t (*)[32])lv,
                                .nknown = 2, .root = 1};
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(i * 13);
    ck_assert_int_eq(pt_chunk_root(d, n, NULL, root), PATIENT_OK);
    ck_assert_int_eq(walk(d, n, &ask, NULL), PATIENT_OK);
    memset(d + C, 0xEE, C);          /* chunk 1 unknown */
    memset(d + 5 * C, 0xEE, 17);     /* the last chunk unknown */
    ck_assert_int_eq(walk(d, n, &given, root2), PATIENT_OK);
    ck_assert_mem_eq(root, root2, 32);
    lv[0][3] ^= 1;
    ck_assert_int_eq(walk(d, n, &given, root2), PATIENT_OK);
    ck_assert(memcmp(root, root2, 32) != 0);
    /* Out of range or unsorted indices are refused. */
    want[1] = 6;
    ck_assert_int_eq(walk(d, n, &given, root2), PATIENT_ERR_ARG);
    free(d);
}
END_TEST

/* SHA-256 of the concatenation of up to three runs of d: the kept bytes
 * of a chunk, cut out by hand rather than by the chunk walk. */
static void
sha_runs(const uint8_t *d, const size_t (*run)[2], size_t nrun, uint8_t out[32])
{
    uint8_t buf[C];
    size_t n = 0;

    for (size_t i = 0; i < nrun; i++) {
        ck_assert_uint_le(n + run[i][1], sizeof buf);
        memcpy(buf + n, d + run[i][0], run[i][1]);
        n += run[i][1];
    }
    ck_assert_int_eq(patient_sha256(buf, n, out), PATIENT_OK);
}

/* The kept hash of a chunk is the SHA-256 of its bytes outside holes,
 * checked against those bytes cut out by hand (the hop, both verifier
 * walks and pt_chunk_kept all run the one chunk walk, so only this says
 * what it computes). Forged twins: a hole moved, shortened or gone, a
 * kept byte changed, give other hashes; a withheld byte changed does
 * not. */
START_TEST(tree_kept_by_hand)
{
    size_t n = 5 * C + 17;
    uint8_t *d = malloc(n), kh[32], ref[32], twin[32];
    pt_hole two[2] = {{2 * C + 100, 200, 0}, {2 * C + 1000, 1, 0}};
    pt_holes hs = {two, 2, 2};
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(i * 31 + (i >> 8));

    /* Two holes inside chunk 2. */
    {
        const size_t run[][2] = {{2 * C, 100}, {2 * C + 300, 700}, {2 * C + 1001, C - 1001}};
        sha_runs(d, run, 3, ref);
        ck_assert_int_eq(pt_chunk_kept(d, n, 2, &hs, kh), PATIENT_OK);
        ck_assert_mem_eq(kh, ref, 32);
    }
    /* A withheld byte's value does not count; a kept byte's does. */
    d[2 * C + 150] ^= 0x55;
    ck_assert_int_eq(pt_chunk_kept(d, n, 2, &hs, kh), PATIENT_OK);
    ck_assert_mem_eq(kh, ref, 32);
    d[2 * C + 150] ^= 0x55;
    d[2 * C + 300] ^= 0x55;
    ck_assert_int_eq(pt_chunk_kept(d, n, 2, &hs, twin), PATIENT_OK);
    ck_assert(memcmp(twin, ref, 32) != 0);
    d[2 * C + 300] ^= 0x55;
    /* Forged twins: the first hole one byte later, one byte shorter, the
     * second hole gone (the same bytes, a different cut). */
    two[0].off++;
    ck_assert_int_eq(pt_chunk_kept(d, n, 2, &hs, twin), PATIENT_OK);
    ck_assert(memcmp(twin, ref, 32) != 0);
    two[0].off--;
    two[0].len--;
    ck_assert_int_eq(pt_chunk_kept(d, n, 2, &hs, twin), PATIENT_OK);
    ck_assert(memcmp(twin, ref, 32) != 0);
    two[0].len++;
    hs.n = 1;
    ck_assert_int_eq(pt_chunk_kept(d, n, 2, &hs, twin), PATIENT_OK);
    ck_assert(memcmp(twin, ref, 32) != 0);
    /* A hole across the boundary of chunks 1 and 2: each keeps its side. */
    two[0] = (pt_hole){2 * C - 50, 100, 0};
    {
        const size_t r1[][2] = {{C, C - 50}}, r2[][2] = {{2 * C + 50, C - 50}};
        sha_runs(d, r1, 1, ref);
        ck_assert_int_eq(pt_chunk_kept(d, n, 1, &hs, kh), PATIENT_OK);
        ck_assert_mem_eq(kh, ref, 32);
        sha_runs(d, r2, 1, ref);
        ck_assert_int_eq(pt_chunk_kept(d, n, 2, &hs, kh), PATIENT_OK);
        ck_assert_mem_eq(kh, ref, 32);
        /* Chunk 3, which no hole touches: all of it. */
        const size_t r3[][2] = {{3 * C, C}};
        sha_runs(d, r3, 1, ref);
        ck_assert_int_eq(pt_chunk_kept(d, n, 3, &hs, kh), PATIENT_OK);
        ck_assert_mem_eq(kh, ref, 32);
    }
    /* The last, short chunk, a hole in its middle. */
    two[0] = (pt_hole){5 * C + 3, 7, 0};
    {
        const size_t run[][2] = {{5 * C, 3}, {5 * C + 10, 7}};
        sha_runs(d, run, 2, ref);
        ck_assert_int_eq(pt_chunk_kept(d, n, 5, &hs, kh), PATIENT_OK);
        ck_assert_mem_eq(kh, ref, 32);
        two[0].len = 6;
        ck_assert_int_eq(pt_chunk_kept(d, n, 5, &hs, twin), PATIENT_OK);
        ck_assert(memcmp(twin, ref, 32) != 0);
    }
    /* A whole chunk withheld keeps nothing: the empty string's hash. */
    two[0] = (pt_hole){4 * C, C, 0};
    ck_assert_int_eq(patient_sha256("", 0, ref), PATIENT_OK);
    ck_assert_int_eq(pt_chunk_kept(d, n, 4, &hs, kh), PATIENT_OK);
    ck_assert_mem_eq(kh, ref, 32);
    /* No such chunk. */
    ck_assert_int_eq(pt_chunk_kept(d, n, 6, &hs, kh), PATIENT_ERR_ARG);
    free(d);
}
END_TEST

/* An empty resource is one empty chunk: bytes fed to its walk are more
 * than len (refused with a root, not looked at without one) and the walk
 * still ends, with the empty string's digest as that chunk's leaf and
 * kept hash. */
START_TEST(stream_empty_resource)
{
    uint8_t root[32], ref[32], dig[32], leaf[32], kept[32];
    uint64_t want = 0;
    pt_chunk_job job = {.len = 0, .root = 1};
    pt_chunk_stream *w = NULL;

    ck_assert_int_eq(pt_chunk_root("", 0, dig, ref), PATIENT_OK);
    /* With a root: nothing fed, then one byte too many. */
    ck_assert_int_eq(pt_chunk_stream_new(&job, &w), PATIENT_OK);
    ck_assert_int_eq(pt_chunk_stream_update(w, NULL, 0, 0), PATIENT_OK);
    ck_assert_int_eq(pt_chunk_stream_final(w, root), PATIENT_OK);
    ck_assert_mem_eq(root, ref, 32);
    pt_chunk_stream_free(w);
    ck_assert_int_eq(pt_chunk_stream_new(&job, &w), PATIENT_OK);
    ck_assert_int_eq(pt_chunk_stream_update(w, (const uint8_t *)"x", 0, 1), PATIENT_ERR_ARG);
    pt_chunk_stream_free(w);
    /* Without one: chunk 0's leaf and kept hash, the extra bytes (withheld
     * or not) ignored. */
    job = (pt_chunk_job){.len = 0, .want = &want, .leaf = &leaf, .kept = &kept, .nwant = 1};
    ck_assert_int_eq(pt_chunk_stream_new(&job, &w), PATIENT_OK);
    ck_assert_int_eq(pt_chunk_stream_update(w, (const uint8_t *)"xy", 0, 2), PATIENT_OK);
    ck_assert_int_eq(pt_chunk_stream_update(w, NULL, 1, 5), PATIENT_OK);
    ck_assert_int_eq(pt_chunk_stream_final(w, NULL), PATIENT_OK);
    pt_chunk_stream_free(w);
    ck_assert_int_eq(patient_sha256("", 0, ref), PATIENT_OK);
    ck_assert_mem_eq(dig, ref, 32);
    ck_assert_mem_eq(leaf, ref, 32);
    ck_assert_mem_eq(kept, ref, 32);
    /* Chunk 1 does not exist. */
    want = 1;
    ck_assert_int_eq(pt_chunk_stream_new(&job, &w), PATIENT_ERR_ARG);
    ck_assert_ptr_null(w);
}
END_TEST

/* The manifest lists a chunk root for every resource; one from before
 * chunk roots parses and has none; a malformed root is refused. */
START_TEST(manifest_roots)
{
    patient_manifest *m = NULL;
    patient_resource res;
    uint8_t root[32], *g = NULL;
    size_t gl;
    char *bad;
    ck_assert_int_eq(patient_manifest_parse(man_json, man_len, &m), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/page.html", &res), PATIENT_OK);
    ck_assert_int_eq(res.has_chunk_root, 1);
    ck_assert_int_eq(pt_chunk_root(page, page_len, NULL, root), PATIENT_OK);
    ck_assert_mem_eq(res.chunk_root, root, 32);
    patient_manifest_free(m);
    ck_assert_int_eq(patient_manifest_parse(old_json, old_len, &m), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/page.html", &res), PATIENT_OK);
    ck_assert_int_eq(res.has_chunk_root, 0);
    patient_manifest_free(m);
    /* The committed manifest from before chunk roots. */
    ck_assert_int_eq(pt_read_file(TEST_SRCDIR "/data/manifest_noroots.json", 1 << 20, &g, &gl),
                     PATIENT_OK);
    ck_assert_int_eq(patient_manifest_parse(g, gl, &m), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_resource(m, 0, &res), PATIENT_OK);
    ck_assert_int_eq(res.has_chunk_root, 0);
    patient_manifest_free(m);
    free(g);
    bad = strdup(man_json);
    {
        char *q = strstr(bad, "\"chunk_root\": \"sha256-") + 22;
        q[0] = '!';
        ck_assert_int_eq(patient_manifest_parse(bad, man_len, &m), PATIENT_ERR_PARSE);
        memcpy(q - 7, "sha512", 6);
        ck_assert_int_eq(patient_manifest_parse(bad, man_len, &m), PATIENT_ERR_PARSE);
    }
    free(bad);
}
END_TEST

/* ---- confined verdicts ---- */

/* The demo's case: malware removed, its bytes withheld. Every byte but
 * the kept bytes of chunk 2 is checked; those are reported exactly. */
START_TEST(eicar_confined)
{
    uint8_t *out = NULL;
    size_t ol;
    long long total;
    char ranges[256], want[64];
    char *v = hop_eicar(&out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(out, ol, ch, 1, 0);
    patient_report *r = run(pol, &ev);
    check(r, PATIENT_VERDICT_MODIFIED, NULL, "confined");
    ck_assert_int_eq(streamed, 1); /* the chunk walk, as the body streams */
    ck_assert(tu_report_has_code(r, "change.confined"));
    unchecked(r, ranges, sizeof ranges, &total);
    ck_assert_int_eq(total, C - (long long)strlen(EICAR));
    snprintf(want, sizeof want, "%u+%zu ", 2 * C, C - strlen(EICAR));
    ck_assert_str_eq(ranges, want);
    {
        const cJSON *h = cJSON_GetArrayItem(r->changes, 0);
        ck_assert_str_eq(pt_json_str(h, "proof"), "confined");
    }
    patient_report_free(r);
    /* Twin: the same hop against the manifest from before chunk roots is
     * attested, as before (the default policy accepts it there). */
    ev = ev_make(out, ol, ch, 1, 1);
    r = run(pol, &ev);
    check(r, PATIENT_VERDICT_MODIFIED, NULL, "attested");
    ck_assert_int_eq(streamed, 0); /* attested: the body kept */
    ck_assert(tu_report_has_code(r, "change.attested"));
    patient_report_free(r);
    free(v);
    free(out);
}
END_TEST

/* Rewrite the page behind one withheld 1-byte deletion: the signed output
 * is another page of the right size. Today's attested verdict could not
 * tell; confined cannot be fooled. */
START_TEST(rewrite_behind_one_byte)
{
    uint8_t *out = NULL;
    size_t ol;
    espec e = {pos_of("X5O!"), 1, NULL, NULL, 0};
    char *v = hop(sk_m1, (const uint8_t *)page, page_len, NULL, 0, &e, 1, &out, &ol), *f;
    cJSON *p = payload(v);
    const char *ch[1];
    patient_evidence ev;
    memcpy(out + pos_of("paragraph 0300"), "EVIL!", 5); /* chunk 3 */
    set_out(p, out, ol);
    f = resign(sk_m1, p);
    ch[0] = f;
    ev = ev_make(out, ol, ch, 1, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.confined.mismatch", "attested");
    ck_assert_int_eq(streamed, 1);
    /* Without chunk roots this was (and is) only attested: the hole the
     * chunk roots close. */
    ev = ev_make(out, ol, ch, 1, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL, "attested");
    free(v);
    free(f);
    free(out);
}
END_TEST

/* A kept byte changed right next to a withheld deletion, but in the next
 * chunk: checked, so invalid. The same change inside the touched chunk is
 * reported as unchecked bytes (and signed by the middlebox). */
START_TEST(kept_byte_next_to_deletion)
{
    uint8_t *out = NULL;
    size_t ol, at = 3 * C - 8, i;
    espec e = {at, 6, NULL, NULL, 0}; /* [3C-8, 3C-2): the end of chunk 2 */
    char *v = hop(sk_m1, (const uint8_t *)page, page_len, NULL, 0, &e, 1, &out, &ol), *f;
    const char *ch[1];
    patient_evidence ev;
    patient_report *r;
    long long total;
    char ranges[256], want[64];

    /* Output offset of input byte 3C (first of chunk 3): 3C - 6. */
    i = 3 * C - 6;
    out[i] ^= 0x20;
    {
        cJSON *p = payload(v);
        set_out(p, out, ol);
        f = resign(sk_m1, p);
    }
    ch[0] = f;
    ev = ev_make(out, ol, ch, 1, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.confined.mismatch", "attested");
    free(f);
    out[i] ^= 0x20;
    /* Inside chunk 2, just before the deletion (output = input there),
     * changed in transit: the hop's "kept" hash of chunk 2 catches it. */
    out[at - 1] ^= 0x20;
    ch[0] = v;
    ev = ev_make(out, ol, ch, 1, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch", "attested");
    /* The same change made and signed by the middlebox itself: confined,
     * and the byte is inside the reported unchecked range. */
    {
        cJSON *p = payload(v);
        char *mod = malloc(page_len), sri[PATIENT_SRI_BYTES];
        pt_hole hole = {at, 6, 0};
        pt_holes hs = {&hole, 1, 1};
        uint8_t kh[32];
        memcpy(mod, page, page_len);
        mod[at - 1] ^= 0x20;
        ck_assert_int_eq(pt_chunk_kept((uint8_t *)mod, page_len, 2, &hs, kh), PATIENT_OK);
        patient_sri_encode(kh, sri);
        cJSON_ReplaceItemInObjectCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(p, "chunks")->child, "kept", cJSON_CreateString(sri));
        set_out(p, out, ol);
        f = resign(sk_m1, p);
        free(mod);
    }
    ch[0] = f;
    ev = ev_make(out, ol, ch, 1, 0);
    r = run(pol, &ev);
    check(r, PATIENT_VERDICT_MODIFIED, NULL, "confined");
    unchecked(r, ranges, sizeof ranges, &total);
    ck_assert_int_eq(total, C - 6);
    snprintf(want, sizeof want, "%u+%u ", 2 * C, C - 6);
    ck_assert_str_eq(ranges, want);
    ck_assert_uint_ge(at - 1, 2 * C); /* the changed byte is in that range */
    patient_report_free(r);
    free(f);
    free(v);
    free(out);
}
END_TEST

/* Forged twins of the signed chunks. */
static char *
mutate_chunks(const char *v, int what)
{
    cJSON *p = payload(v), *arr = cJSON_GetObjectItemCaseSensitive(p, "chunks"), *o;
    ck_assert(cJSON_IsArray(arr));
    switch (what) {
    case 0: { /* a lying leaf */
        char *l = strdup(pt_json_str(arr->child, "leaf"));
        l[5] = l[5] == 'A' ? 'B' : 'A';
        cJSON_ReplaceItemInObjectCaseSensitive(arr->child, "leaf", cJSON_CreateString(l));
        free(l);
        break;
    }
    case 1: /* a touched chunk omitted */
        cJSON_DeleteItemFromArray(arr, cJSON_GetArraySize(arr) - 1);
        break;
    case 2: { /* an extra leaf, with its true value, for untouched chunk 4 */
        uint64_t w = 4;
        uint8_t lv[1][32];
        char *b = NULL;
        ck_assert_int_eq(walk((const uint8_t *)page, page_len,
                              &(pt_chunk_job){.len = page_len, .want = &w, .leaf = lv, .nwant = 1},
                              NULL),
                         PATIENT_OK);
        ck_assert_int_eq(pt_b64_encode(lv[0], 32, 0, &b), PATIENT_OK);
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", 4);
        cJSON_AddStringToObject(o, "kept", pt_json_str(arr->child, "kept"));
        cJSON_AddStringToObject(o, "leaf", b);
        cJSON_AddItemToArray(arr, o);
        free(b);
        break;
    }
    case 3: /* no chunks at all: an unconfined (older) middlebox */
        cJSON_DeleteItemFromObjectCaseSensitive(p, "chunks");
        break;
    }
    return resign(sk_m1, p);
}

START_TEST(forged_chunks)
{
    uint8_t *out = NULL;
    size_t ol;
    /* A deletion across chunks 1 and 2: two leaves. */
    espec e = {2 * C - 10, 20, NULL, NULL, 0};
    char *v = hop(sk_m1, (const uint8_t *)page, page_len, NULL, 0, &e, 1, &out, &ol), *f;
    const char *ch[1];
    patient_evidence ev;
    patient_change *c = NULL;
    patient_policy *p;

    ck_assert_int_eq(patient_change_parse(v, strlen(v), &c), PATIENT_OK);
    ck_assert_uint_eq(c->nchunks, 2);
    ck_assert_uint_eq(c->chunk_idx[0], 1);
    ck_assert_uint_eq(c->chunk_idx[1], 2);
    patient_change_free(c);
    ch[0] = v;
    ev = ev_make(out, ol, ch, 1, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL, "confined");

    ch[0] = f = mutate_chunks(v, 0);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.confined.mismatch", "attested");
    free(f);
    ch[0] = f = mutate_chunks(v, 1);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.chunks.missing", "attested");
    free(f);
    ch[0] = f = mutate_chunks(v, 2);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.chunks.extra", "attested");
    free(f);
    /* Unconfined hop where the origin commits roots: the default policy
     * refuses it; "attested" accepts it as before. */
    ch[0] = f = mutate_chunks(v, 3);
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "policy.proof.required", "attested");
    p = policy_proof("attested");
    expect(run(p, &ev), PATIENT_VERDICT_MODIFIED, NULL, "attested");
    patient_policy_free(p);
    free(f);
    free(v);
    free(out);
}
END_TEST

/* Chunks in a hop that withheld nothing, or malformed, do not parse. */
START_TEST(descriptor_chunks_malformed)
{
    uint8_t *out = NULL;
    size_t ol;
    char *v = hop_eicar(&out, &ol), *f;
    patient_change *c = NULL;
    /* %s: a valid leaf, %k: a valid kept hash; each entry is wrong in one
     * way only. */
    static const char *const bad[] = {
        "[]", "{}", "[{\"index\":2,\"kept\":\"%k\"}]",
        "[{\"index\":2,\"leaf\":\"%s\"}]",
        "[{\"index\":-1,\"kept\":\"%k\",\"leaf\":\"%s\"}]",
        "[{\"index\":2.5,\"kept\":\"%k\",\"leaf\":\"%s\"}]",
        "[{\"index\":2,\"kept\":\"%k\",\"leaf\":\"AAAA\"}]",
        "[{\"index\":2,\"kept\":\"sha256-AAAA\",\"leaf\":\"%s\"}]",
        "[{\"index\":2,\"kept\":\"%k\",\"leaf\":\"%s\"},{\"index\":2,\"kept\":\"%k\",\"leaf\":\"%s\"}]",
        "[{\"index\":99999999,\"kept\":\"%k\",\"leaf\":\"%s\"}]", NULL};
    const char *leaf, *kept;
    cJSON *p0 = payload(v);
    leaf = pt_json_str(cJSON_GetObjectItemCaseSensitive(p0, "chunks")->child, "leaf");
    kept = pt_json_str(cJSON_GetObjectItemCaseSensitive(p0, "chunks")->child, "kept");
    /* The template filler is sound: the valid entry parses. */
    {
        char txt[512];
        cJSON *p = payload(v);
        snprintf(txt, sizeof txt, "[{\"index\":2,\"kept\":\"%s\",\"leaf\":\"%s\"}]", kept, leaf);
        cJSON_ReplaceItemInObjectCaseSensitive(p, "chunks", cJSON_Parse(txt));
        f = resign(sk_m1, p);
        ck_assert_int_eq(patient_change_parse(f, strlen(f), &c), PATIENT_OK);
        patient_change_free(c);
        c = NULL;
        free(f);
    }
    for (size_t i = 0; bad[i]; i++) {
        char txt[512];
        cJSON *p = payload(v);
        /* Fill the "%s" placeholders with a valid leaf. */
        {
            const char *q = bad[i];
            size_t o = 0;
            while (*q && o + 64 < sizeof txt) {
                if (q[0] == '%' && (q[1] == 's' || q[1] == 'k')) {
                    o += (size_t)snprintf(txt + o, sizeof txt - o, "%s", q[1] == 's' ? leaf : kept);
                    q += 2;
                } else {
                    txt[o++] = *q++;
                }
            }
            txt[o] = 0;
        }
        cJSON_ReplaceItemInObjectCaseSensitive(p, "chunks", cJSON_Parse(txt));
        f = resign(sk_m1, p);
        ck_assert_msg(patient_change_parse(f, strlen(f), &c) != PATIENT_OK, "%s parsed", txt);
        free(f);
    }
    /* A disclosed hop with chunks. */
    {
        espec e = {pos_of("X5O!"), 4, NULL, NULL, 1};
        uint8_t *o2 = NULL;
        size_t l2;
        char *d = hop(sk_m1, (const uint8_t *)page, page_len, NULL, 0, &e, 1, &o2, &l2);
        cJSON *p = payload(d);
        cJSON_AddItemReferenceToObject(p, "chunks", cJSON_GetObjectItemCaseSensitive(p0, "chunks"));
        f = resign(sk_m1, p);
        ck_assert_int_eq(patient_change_parse(f, strlen(f), &c), PATIENT_ERR_PARSE);
        free(f);
        free(d);
        free(o2);
    }
    cJSON_Delete(p0);
    free(v);
    free(out);
}
END_TEST

/* Policy limits apply to confined hops: --no-insert and paths. */
START_TEST(confined_policy_limits)
{
    uint8_t *out = NULL;
    size_t ol;
    espec e = {pos_of("X5O!"), strlen(EICAR), "[removed]", NULL, 0};
    char *v = hop(sk_m1, (const uint8_t *)page, page_len, NULL, 0, &e, 1, &out, &ol);
    const char *ch[] = {v};
    patient_evidence ev = ev_make(out, ol, ch, 1, 0);
    patient_policy *p = NULL;
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "policy.insert.denied", "confined");
    free(v);
    free(out);
    v = hop_eicar(&out, &ol);
    ch[0] = v;
    ev = ev_make(out, ol, ch, 1, 0);
    ck_assert_int_eq(patient_policy_new(&p), PATIENT_OK);
    ck_assert_int_eq(patient_policy_add_publisher(p, ORIGIN, &pk_pub), PATIENT_OK);
    add_mbox(p, "malware-gw", &pk_m1, 0, "/downloads/*");
    expect(run(p, &ev), PATIENT_VERDICT_INVALID, "policy.path.denied", "confined");
    patient_policy_free(p);
    /* "proven" refuses confined; "confined" accepts it. */
    p = policy_proof("proven");
    expect(run(p, &ev), PATIENT_VERDICT_INVALID, "policy.proof.required", "confined");
    patient_policy_free(p);
    p = policy_proof("confined");
    expect(run(p, &ev), PATIENT_VERDICT_MODIFIED, NULL, "confined");
    /* ... and refuses an origin without chunk roots. */
    ev = ev_make(out, ol, ch, 1, 1);
    expect(run(p, &ev), PATIENT_VERDICT_INVALID, "policy.proof.required", "attested");
    patient_policy_free(p);
    free(v);
    free(out);
}
END_TEST

/* A confined hop followed by a disclosed one: unchecked ranges follow the
 * bytes into the final body. */
START_TEST(confined_then_disclosed)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t l1, l2;
    char *v1 = hop_eicar(&o1, &l1), *v2, ranges[256], want[64];
    const char *prev[] = {v1};
    size_t a = pos_of("<script"), b = pos_of("</script>") + 9;
    espec e = {a, b - a, NULL, "tracker.removed", 1};
    long long total;
    patient_report *r;
    v2 = hop(sk_m2, o1, l1, prev, 1, &e, 1, &o2, &l2);
    {
        const char *ch[] = {v1, v2};
        patient_evidence ev = ev_make(o2, l2, ch, 2, 0);
        r = run(pol, &ev);
        check(r, PATIENT_VERDICT_MODIFIED, NULL, "confined");
        unchecked(r, ranges, sizeof ranges, &total);
        ck_assert_int_eq(total, C - (long long)strlen(EICAR));
        snprintf(want, sizeof want, "%zu+%zu ", 2 * C - (b - a), C - strlen(EICAR));
        ck_assert_str_eq(ranges, want);
        patient_report_free(r);
        /* Twins: the body changed in chunk 4 after both hops (checked
         * through the root), and inside the unchecked range (checked
         * against hop 1's "kept" hash of chunk 2). */
        o2[pos_of("BUY NOW") - (b - a) - strlen(EICAR)] = 'b';
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.confined.mismatch", "attested");
        o2[pos_of("BUY NOW") - (b - a) - strlen(EICAR)] = 'B';
        o2[2 * C - (b - a) + 3] ^= 1;
        expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "body.mismatch", "attested");
    }
    free(v1);
    free(v2);
    free(o1);
    free(o2);
}
END_TEST

/* Two confined hops: the second maps its deletion back through the first
 * to the origin's chunks. A second hop whose deletion shares a chunk with
 * the first signs the same leaf. */
START_TEST(two_confined_hops)
{
    uint8_t *o1 = NULL, *o2 = NULL, *o3 = NULL;
    size_t l1, l2, l3;
    char *v1 = hop_eicar(&o1, &l1), *v2, *v3, ranges[256], want[128];
    const char *prev[] = {v1};
    size_t ad = pos_of("BUY NOW") - strlen(EICAR);
    espec e = {ad, 7, NULL, "ads.removed", 0};
    long long total;
    patient_report *r;
    v2 = hop(sk_m2, o1, l1, prev, 1, &e, 1, &o2, &l2);
    {
        const char *ch[] = {v1, v2};
        patient_evidence ev = ev_make(o2, l2, ch, 2, 0);
        r = run(pol, &ev);
        check(r, PATIENT_VERDICT_MODIFIED, NULL, "confined");
        unchecked(r, ranges, sizeof ranges, &total);
        ck_assert_int_eq(total, 2 * C - (long long)strlen(EICAR) - 7);
        snprintf(want, sizeof want, "%u+%zu %zu+%u ", 2 * C, C - strlen(EICAR),
                 4 * C - strlen(EICAR), C - 7);
        ck_assert_str_eq(ranges, want);
        ck_assert_str_eq(pt_json_str(cJSON_GetArrayItem(r->changes, 1), "proof"), "confined");
        patient_report_free(r);
    }
    /* Same chunk as hop 1 (just after the EICAR string, which hop 1 took
     * out of its output). */
    {
        espec e3 = {EICAR_AT + 10, 5, NULL, "ads.removed", 0};
        const char *ch[3];
        patient_evidence ev;
        patient_change *c = NULL;
        v3 = hop(sk_m2, o1, l1, prev, 1, &e3, 1, &o3, &l3);
        ck_assert_int_eq(patient_change_parse(v3, strlen(v3), &c), PATIENT_OK);
        ck_assert_uint_eq(c->nchunks, 1);
        ck_assert_uint_eq(c->chunk_idx[0], 2);
        patient_change_free(c);
        ch[0] = v1;
        ch[1] = v3;
        ev = ev_make(o3, l3, ch, 2, 0);
        expect(run(pol, &ev), PATIENT_VERDICT_MODIFIED, NULL, "confined");
        /* Twin: hop 2 lies about the shared leaf. */
        {
            cJSON *p = payload(v3), *arr = cJSON_GetObjectItemCaseSensitive(p, "chunks");
            char *l = strdup(pt_json_str(arr->child, "leaf")), *f;
            l[3] = l[3] == 'A' ? 'B' : 'A';
            cJSON_ReplaceItemInObjectCaseSensitive(arr->child, "leaf", cJSON_CreateString(l));
            free(l);
            f = resign(sk_m2, p);
            ch[1] = f;
            expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.confined.mismatch", "attested");
            free(f);
        }
    }
    free(v1);
    free(v2);
    free(v3);
    free(o1);
    free(o2);
    free(o3);
}
END_TEST

/* A later hop withholds bytes an earlier hop inserted: they touch no
 * origin chunk, so it signs no chunks, and every origin byte is checked. */
START_TEST(withheld_inserted_bytes)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t l1, l2, at = pos_of("paragraph 0100");
    espec e1 = {at, 0, "<b>EVIL</b>", "ads.inserted", 1};
    char *v1, *v2, ranges[64];
    long long total;
    patient_change *c = NULL;
    patient_report *r;
    v1 = hop(sk_m2, (const uint8_t *)page, page_len, NULL, 0, &e1, 1, &o1, &l1);
    {
        const char *prev[] = {v1};
        espec e2 = {at, 11, NULL, NULL, 0};
        v2 = hop(sk_m1, o1, l1, prev, 1, &e2, 1, &o2, &l2);
    }
    ck_assert_int_eq(patient_change_parse(v2, strlen(v2), &c), PATIENT_OK);
    ck_assert_uint_eq(c->nchunks, 0);
    patient_change_free(c);
    {
        const char *ch[] = {v1, v2};
        patient_evidence ev = ev_make(o2, l2, ch, 2, 0);
        patient_policy *p = NULL;
        static const char *const reasons[] = {"ads.*", "malware.removed", NULL};
        ck_assert_int_eq(patient_policy_new(&p), PATIENT_OK);
        ck_assert_int_eq(patient_policy_add_publisher(p, ORIGIN, &pk_pub), PATIENT_OK);
        ck_assert_int_eq(patient_policy_add_middlebox(p, "ins", &pk_m2, reasons, NULL, NULL, 10, 1),
                         PATIENT_OK);
        ck_assert_int_eq(patient_policy_add_middlebox(p, "gw", &pk_m1, reasons, NULL, NULL, 10, 0),
                         PATIENT_OK);
        r = run(p, &ev);
        check(r, PATIENT_VERDICT_MODIFIED, NULL, "confined");
        unchecked(r, ranges, sizeof ranges, &total);
        ck_assert_int_eq(total, 0);
        ck_assert_str_eq(ranges, "");
        patient_report_free(r);
        /* Twin: a byte changed after both hops. */
        o2[10] ^= 1;
        expect(run(p, &ev), PATIENT_VERDICT_INVALID, "change.confined.mismatch", "attested");
        patient_policy_free(p);
    }
    free(v1);
    free(v2);
    free(o1);
    free(o2);
}
END_TEST

/* A dynamic response signed with Patient-Origin: its chunk root confines
 * a withholding hop just as a manifest entry's does. */
START_TEST(patient_origin_confined)
{
    const char *url = ORIGIN "/api/page";
    uint8_t *out = NULL;
    size_t ol;
    char *osig = NULL, *v, *f;
    patient_hop *h = NULL;
    patient_origin_info info;
    patient_evidence ev;
    const char *ch[1];

    ck_assert_int_eq(patient_origin_sign(sk_pub, url, page, page_len, NOW - 60, NOW + 3600, &osig),
                     PATIENT_OK);
    ck_assert_int_eq(patient_origin_check(osig, &pk_pub, url, NOW, &info), PATIENT_OK);
    ck_assert_int_eq(info.has_chunk_root, 1);
    ck_assert_int_eq(patient_origin_check(osig, &pk_pub, URL, NOW, &info), PATIENT_ERR_ORIGIN);
    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk_m1, .name = "gw",
                                                           .service = "malware-filter", .url = url,
                                                           .in = (const uint8_t *)page,
                                                           .in_len = page_len},
                                       &h),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, pos_of("X5O!"), strlen(EICAR), NULL, 0,
                                          "malware.removed", "r1", NULL, 0),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_set_tls(h, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 1), PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(h, NOW - 30, &out, &ol, &v), PATIENT_OK);
    patient_hop_free(h);
    ch[0] = v;
    ev = ev_make(out, ol, ch, 1, 0);
    ev.url = url;
    ev.origin_sig = osig;
    {
        patient_report *r = run(pol, &ev);
        check(r, PATIENT_VERDICT_MODIFIED, NULL, "confined");
        ck_assert_int_eq(streamed, 1); /* against Patient-Origin's chunk root */
        ck_assert(tu_report_has_code(r, "origin.ok"));
        patient_report_free(r);
    }
    /* Twin: the page rewritten elsewhere, signed by the middlebox. */
    out[pos_of("paragraph 0300")] ^= 0x20;
    {
        cJSON *p = payload(v);
        set_out(p, out, ol);
        f = resign(sk_m1, p);
    }
    ch[0] = f;
    expect(run(pol, &ev), PATIENT_VERDICT_INVALID, "change.confined.mismatch", "attested");
    free(f);
    out[pos_of("paragraph 0300")] ^= 0x20;
    ch[0] = v;
    /* Twin: a Patient-Origin from before chunk roots: only attested, and
     * a dynamic response cannot be checked then (as before). */
    {
        cJSON *p = payload(osig);
        char *s2, *o2 = NULL;
        cJSON_DeleteItemFromObjectCaseSensitive(p, "chunk_root");
        s2 = cJSON_PrintUnformatted(p);
        ck_assert_int_eq(patient_jws_sign(sk_pub, PATIENT_ORIGIN_TYP, s2, strlen(s2), &o2),
                         PATIENT_OK);
        ck_assert_int_eq(patient_origin_check(o2, &pk_pub, url, NOW, &info), PATIENT_OK);
        ck_assert_int_eq(info.has_chunk_root, 0);
        ev.origin_sig = o2;
        expect(run(pol, &ev), PATIENT_VERDICT_UNVERIFIABLE, "origin.attested", "attested");
        free(s2);
        free(o2);
        cJSON_Delete(p);
    }
    free(v);
    free(out);
    free(osig);
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("confine");
    TCase *tc = tcase_create("tree");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tree_shapes);
    tcase_add_test(tc, tree_known_leaves);
    tcase_add_test(tc, tree_kept_by_hand);
    tcase_add_test(tc, stream_empty_resource);
    tcase_add_test(tc, manifest_roots);
    suite_add_tcase(s, tc);
    tc = tcase_create("verdicts");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, eicar_confined);
    tcase_add_test(tc, rewrite_behind_one_byte);
    tcase_add_test(tc, kept_byte_next_to_deletion);
    tcase_add_test(tc, forged_chunks);
    tcase_add_test(tc, descriptor_chunks_malformed);
    tcase_add_test(tc, confined_policy_limits);
    tcase_add_test(tc, confined_then_disclosed);
    tcase_add_test(tc, two_confined_hops);
    tcase_add_test(tc, withheld_inserted_bytes);
    tcase_add_test(tc, patient_origin_confined);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
