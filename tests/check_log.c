/* Audit log: Merkle trees (RFC 9162 vectors), chain, checkpoints, torn
 * tails, tamper classification, inclusion proofs, concurrent appenders. */
#include "config.h"

/* SHA256_Update is interposed below; OpenSSL 3 calls it "deprecated". */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include <openssl/sha.h>

#include <patient/patient.h>
#include "log_int.h"
#include "merkle.h"
#include "sha256_pair.h"
#include "time_int.h"
#include "util.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------- */

/* A hash that fails, for the error paths no log's bytes reach: the core is
 * linked in statically, so its SHA256_Update is this one, which refuses
 * exactly the 65 bytes in fail_hash_input once armed and hands the rest to
 * libcrypto's (looked up before any test runs, so before any thread). */
static uint8_t fail_hash_input[65];
static int fail_hash_armed;
static int (*real_sha256_update)(SHA256_CTX *, const void *, size_t);

__attribute__((constructor)) static void
find_real_sha256_update(void)
{
    *(void **)&real_sha256_update = dlsym(RTLD_NEXT, "SHA256_Update");
}

int
SHA256_Update(SHA256_CTX *c, const void *data, size_t len)
{
    if (fail_hash_armed && len == sizeof fail_hash_input &&
        memcmp(data, fail_hash_input, len) == 0)
        return 0;
    return real_sha256_update(c, data, len);
}

static char tmpdir[64];
static patient_seckey *sk, *sk2;
static patient_pubkey pk, pk2;

static void
setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "check_log");
    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_keypair_generate(&pk2, &sk2), PATIENT_OK);
}

static void
teardown(void)
{
    tu_rmtree(tmpdir);
    patient_seckey_free(sk);
    patient_seckey_free(sk2);
}

static char *
tpath(const char *name)
{
    static char p[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", tmpdir, name);
    return p[i];
}

/* fdatasync, defined here for the library this program links, so that a
 * test can hold a sync in progress (the group commit's states are
 * otherwise a race to catch): while the gate is shut each call waits in
 * it, counted in gate_held, until it opens; then, and always with the
 * gate open, the real system call runs. The flag is read before any
 * lock: a test that never shuts the gate (the forking ones too) never
 * takes gate_mu. */
static atomic_int gate_shut;
static int gate_held;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;

int
fdatasync(int fd)
{
    if (atomic_load(&gate_shut)) {
        pthread_mutex_lock(&gate_mu);
        gate_held++;
        pthread_cond_broadcast(&gate_cv);
        while (atomic_load(&gate_shut))
            pthread_cond_wait(&gate_cv, &gate_mu);
        gate_held--;
        pthread_mutex_unlock(&gate_mu);
    }
    return (int)syscall(SYS_fdatasync, fd);
}

static void
gate_close(void)
{
    atomic_store(&gate_shut, 1);
}

static void
gate_open(void)
{
    pthread_mutex_lock(&gate_mu);
    atomic_store(&gate_shut, 0);
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* Until n calls wait at the gate (a hang here is Check's timeout). */
static void
gate_wait_held(int n)
{
    pthread_mutex_lock(&gate_mu);
    while (gate_held < n)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

static int
gate_held_now(void)
{
    int n;

    pthread_mutex_lock(&gate_mu);
    n = gate_held;
    pthread_mutex_unlock(&gate_mu);
    return n;
}

/* A real change descriptor (the log reads descriptors with the verifier's
 * parser): by "mbox \"test\"", url .../page<i>.html, at
 * 2026-11-27T10:MM:SSZ, two edits: delete 100 + i % 7 bytes at 10
 * (tracker.removed or ads.removed, rule r<i%5>), insert "hello" at 200
 * (banner.inserted, rule notice). */
static char *
make_jws(const patient_seckey *key, unsigned i)
{
    static uint8_t body[256];
    char url[64], rule[16], *out = NULL;
    patient_hop *h = NULL;
    uint8_t *nb = NULL;
    size_t nl = 0;

    memset(body, 'x', sizeof body);
    snprintf(url, sizeof url, "https://example.test/page%u.html", i);
    snprintf(rule, sizeof rule, "r%u", i % 5);
    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = key, .name = "mbox \"test\"",
                                                           .service = "content-filter", .url = url,
                                                           .in = body, .in_len = sizeof body},
                                       &h),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, 10, 100 + i % 7, NULL, 0,
                                          i % 3 == 0 ? "tracker.removed" : "ads.removed", rule,
                                          NULL, 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, 200, 0, (const uint8_t *)"hello", 5,
                                          "banner.inserted", "notice", NULL, 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(h, (time_t)1795773600 + (i / 60) % 60 * 60 + i % 60, &nb,
                                        &nl, &out),
                     PATIENT_OK);
    patient_hop_free(h);
    free(nb);
    return out;
}

static void
append_n(patient_log *log, unsigned from, unsigned n)
{
    for (unsigned i = from; i < from + n; i++) {
        char *j = make_jws(sk, i);
        ck_assert_int_eq(patient_log_append_change(log, j, NULL), PATIENT_OK);
        free(j);
    }
}

static void
build_log(const char *path, unsigned n, unsigned every)
{
    patient_log *log;
    ck_assert_int_eq(patient_log_open(path, sk, every, &log), PATIENT_OK);
    ck_assert_int_eq(patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE), PATIENT_OK);
    append_n(log, 0, n);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
}

/* Lines of a file (with their "\n"), for tampering. */
typedef struct {
    char **l;
    size_t n;
} lines;

static lines
read_lines(const char *path)
{
    uint8_t *data;
    size_t len;
    lines ls = {0};
    char *p, *e;

    ck_assert_int_eq(pt_read_file(path, 1u << 30, &data, &len), PATIENT_OK);
    ls.l = calloc(len + 1, sizeof *ls.l);
    for (p = (char *)data; p < (char *)data + len; p = e + 1) {
        e = memchr(p, '\n', (size_t)((char *)data + len - p));
        if (e == NULL)
            e = (char *)data + len - 1;
        ls.l[ls.n++] = strndup(p, (size_t)(e - p + 1));
    }
    free(data);
    return ls;
}

static void
write_lines(const char *path, const lines *ls)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < ls->n; i++)
        if (ls->l[i])
            fputs(ls->l[i], f);
    fclose(f);
}

static void
free_lines(lines *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        free(ls->l[i]);
    free(ls->l);
}

/* Two logs written through different calls hold the same entries: every
 * line is the same once the members the clock decides are blanked (the
 * entry's time, and prev, which hashes the line before it, time and all).
 * A checkpoint signs a root over those lines, so of a checkpoint only its
 * place is compared. A byte comparison of the files would depend on both
 * appends falling in the same second. */
static void
blank_member(char *line, const char *name)
{
    char *p = strstr(line, name);

    ck_assert_msg(p != NULL, "no %s in %s", name, line);
    for (p += strlen(name); *p != '\0' && *p != '"'; p++)
        *p = 'X';
}

static void
assert_same_entries(const char *a, const char *b)
{
    lines la = read_lines(a), lb = read_lines(b);

    ck_assert_uint_eq(la.n, lb.n);
    for (size_t i = 0; i < la.n; i++) {
        int ck = strstr(la.l[i], "\"kind\":\"checkpoint\"") != NULL;
        ck_assert_int_eq(ck, strstr(lb.l[i], "\"kind\":\"checkpoint\"") != NULL);
        if (ck)
            continue;
        blank_member(la.l[i], "\"time\":\"");
        blank_member(lb.l[i], "\"time\":\"");
        if (i > 0) {
            blank_member(la.l[i], "\"prev\":\"");
            blank_member(lb.l[i], "\"prev\":\"");
        }
        ck_assert_str_eq(la.l[i], lb.l[i]);
    }
    free_lines(&la);
    free_lines(&lb);
}

/* What an attacker without the key can do: recompute every prev. */
static void
rechain(lines *ls)
{
    uint8_t h[32];
    char hex[65];
    for (size_t i = 1; i < ls->n; i++) {
        char *p = strstr(ls->l[i], "\"prev\":\"");
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(patient_sha256(ls->l[i - 1], strlen(ls->l[i - 1]) - 1, h), PATIENT_OK);
        pt_hex(h, 32, hex);
        memcpy(p + 8, hex, 64);
    }
}

static patient_log_report
verify(const char *path, const patient_pubkey *pub, int deep)
{
    patient_log_verify_opts o = {0};
    patient_log_report r;
    o.pub = pub;
    o.deep = deep;
    patient_err err = patient_log_verify(path, &o, &r);
    ck_assert_int_eq(err, r.result);
    return r;
}

#define ASSERT_TAMPER(r, code, kind, sq)                                                      \
    do {                                                                                       \
        ck_assert_msg((r).result == (code), "result %s, want %s (%s)",                       \
                      patient_errname((r).result), patient_errname(code), (r).message);       \
        ck_assert_str_eq(patient_log_tamper_name((r).tamper), patient_log_tamper_name(kind)); \
        ck_assert_int_eq((r).has_seq, 1);                                                      \
        ck_assert_uint_eq((r).seq, (sq));                                                      \
    } while (0)

/* ---- Merkle ------------------------------------------------------------ */

static void
hexeq(const uint8_t h[32], const char *want)
{
    char hex[65];
    pt_hex(h, 32, hex);
    ck_assert_str_eq(hex, want);
}

/* The RFC 6962/9162 test vectors used by Certificate Transparency, and our
 * own leaves "leaf0".."leaf16"; computed with Python hashlib. */
START_TEST(merkle_known_roots)
{
    static const char *ct_hex[8] = {"", "00", "10", "2021", "3031", "40414243",
                                    "5051525354555657", "606162636465666768696a6b6c6d6e6f"};
    static const char *ct_root[9] = {
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
    static const struct {
        unsigned n;
        const char *root;
    } own[] = {{1, "e6c410a9745b0151d82d1a9f007b81f378a1588c3fb63dc634a2ab001379c3d2"},
               {3, "f1aed069e1b79c5f12193e715059c468eff1559a5c989c6d7c46bc29f4f84f6c"},
               {5, "2f4e0d79b7e066069be4d391a858023d0acd245505ab6913a8fd69726b65741d"},
               {7, "4b6939132387c5bf27ebaf5ac122810ce866eb0c7bf44082364b35c06f713aa6"},
               {8, "d12334b61aa2f244f11754c40896641551d64cd5c79fa0f9760d2ec3079d1834"},
               {16, "feed2ecf3a4d9d6f917bc7f529e741b709431a478b8b1726ddf29854fc754fb8"},
               {17, "fbf271f1fd75c1073a18587da0ffef4a7745efec84e640d0893888be0091201d"}};
    uint8_t leaves[17][32], root[32], raw[16];
    pt_merkle_frontier f;

    pt_merkle_frontier_init(&f);
    ck_assert_int_eq(pt_merkle_frontier_root(&f, root), PATIENT_OK);
    hexeq(root, ct_root[0]);
    for (unsigned i = 0; i < 8; i++) {
        size_t n = strlen(ct_hex[i]) / 2;
        if (n)
            ck_assert_int_eq(pt_unhex(ct_hex[i], raw, n), PATIENT_OK);
        ck_assert_int_eq(pt_merkle_leaf(raw, n, NULL, leaves[i]), PATIENT_OK);
        ck_assert_int_eq(pt_merkle_frontier_add(&f, leaves[i]), PATIENT_OK);
        ck_assert_int_eq(pt_merkle_frontier_root(&f, root), PATIENT_OK);
        hexeq(root, ct_root[i + 1]);
        ck_assert_int_eq(pt_merkle_root((const uint8_t(*)[32])leaves, i + 1, root), PATIENT_OK);
        hexeq(root, ct_root[i + 1]);
    }
    /* Forged twin: one flipped bit in a leaf changes the root. */
    leaves[3][0] ^= 1;
    ck_assert_int_eq(pt_merkle_root((const uint8_t(*)[32])leaves, 8, root), PATIENT_OK);
    ck_assert(memcmp(root, "\x5d\xc9", 2) != 0);

    pt_merkle_frontier_init(&f);
    for (unsigned i = 0; i < 17; i++) {
        char s[16];
        snprintf(s, sizeof s, "leaf%u", i);
        ck_assert_int_eq(pt_merkle_leaf(s, strlen(s), NULL, leaves[i]), PATIENT_OK);
    }
    for (unsigned k = 0; k < sizeof own / sizeof *own; k++) {
        ck_assert_int_eq(pt_merkle_root((const uint8_t(*)[32])leaves, own[k].n, root),
                         PATIENT_OK);
        hexeq(root, own[k].root);
    }
}
END_TEST

START_TEST(merkle_frontier_matches_reference)
{
    uint8_t leaves[70][32], a[32], b[32];
    pt_merkle_frontier f;

    pt_merkle_frontier_init(&f);
    for (unsigned n = 0; n < 70; n++) {
        ck_assert_int_eq(pt_merkle_frontier_root(&f, a), PATIENT_OK);
        ck_assert_int_eq(pt_merkle_root((const uint8_t(*)[32])leaves, n, b), PATIENT_OK);
        ck_assert_mem_eq(a, b, 32);
        ck_assert_int_eq(pt_merkle_leaf(&n, sizeof n, NULL, leaves[n]), PATIENT_OK);
        ck_assert_int_eq(pt_merkle_frontier_add(&f, leaves[n]), PATIENT_OK);
    }
}
END_TEST

/* The tile roots the frontier gives as leaves complete them: after every
 * 256th leaf tiles[0] is the root of those 256 (the level-1 tile's next
 * hash), after the 65,536th tiles[1] is the root of all of them (the
 * level-2 tile's first), against the reference MTH of each block; no
 * other leaf completes one, and max caps how many are given. */
START_TEST(merkle_frontier_tile_roots)
{
    enum { N = 65536, W = 256 };
    uint8_t (*leaves)[32] = malloc((size_t)N * 32), tiles[3][32], want[32];
    pt_merkle_frontier f, g;
    unsigned n, m;

    ck_assert_ptr_nonnull(leaves);
    pt_merkle_frontier_init(&f);
    pt_merkle_frontier_init(&g);
    for (uint32_t i = 0; i < N; i++) {
        ck_assert_int_eq(pt_merkle_leaf(&i, sizeof i, NULL, leaves[i]), PATIENT_OK);
        ck_assert_int_eq(pt_merkle_frontier_add_tiles(&f, leaves[i], tiles, 3, &n), PATIENT_OK);
        ck_assert_int_eq(pt_merkle_frontier_add_tiles(&g, leaves[i], tiles + 2, 1, &m),
                         PATIENT_OK);
        ck_assert_uint_eq(n, (i + 1) % W ? 0 : (i + 1) % (W * W) ? 1 : 2);
        ck_assert_uint_eq(m, n ? 1 : 0);
        if (n == 0)
            continue;
        ck_assert_int_eq(pt_merkle_root((const uint8_t(*)[32])leaves + (i + 1 - W), W, want),
                         PATIENT_OK);
        ck_assert_mem_eq(tiles[0], want, 32);
        ck_assert_mem_eq(tiles[2], want, 32);
    }
    ck_assert_int_eq(pt_merkle_root((const uint8_t(*)[32])leaves, N, want), PATIENT_OK);
    ck_assert_mem_eq(tiles[1], want, 32);
    ck_assert_int_eq(pt_merkle_frontier_root(&f, tiles[2]), PATIENT_OK);
    ck_assert_mem_eq(tiles[2], want, 32);
    free(leaves);
}
END_TEST

START_TEST(merkle_wide_matches_reference)
{
    enum { N = 300 };
    uint8_t (*leaves)[32] = malloc((size_t)N * 32), nodes[16][32], want[32], got[32];

    ck_assert_ptr_nonnull(leaves);
    randombytes_buf(leaves, (size_t)N * 32);
    /* 16 lanes of node hashes: every count, each lane against OpenSSL's */
    for (unsigned n = 1; n <= 16; n++) {
        if (pt_sha256_node16(leaves[3], n, nodes) != 0) {
            ck_assert_int_eq(pt_cpu_avx512(), 0);
            break;
        }
        for (unsigned i = 0; i < n; i++) {
            ck_assert_int_eq(pt_merkle_node(leaves[3 + 2 * i], leaves[4 + 2 * i], want),
                             PATIENT_OK);
            ck_assert_mem_eq(nodes[i], want, 32);
        }
    }
    ck_assert_int_eq(pt_sha256_node16(leaves[0], 0, nodes), -1);
    ck_assert_int_eq(pt_sha256_node16(leaves[0], 17, nodes), -1);
    /* every size: the same root (the wide path at 32, 64, 128, 256) */
    for (uint64_t n = 0; n <= N; n++) {
        ck_assert_int_eq(pt_merkle_root((const uint8_t(*)[32])leaves, n, want), PATIENT_OK);
        ck_assert_int_eq(pt_merkle_root_wide((const uint8_t(*)[32])leaves, n, got), PATIENT_OK);
        ck_assert_mem_eq(got, want, 32);
    }
    /* its twin: one bit of one leaf, another root */
    ck_assert_int_eq(pt_merkle_root_wide((const uint8_t(*)[32])leaves, 64, want), PATIENT_OK);
    leaves[37][5] ^= 0x10;
    ck_assert_int_eq(pt_merkle_root_wide((const uint8_t(*)[32])leaves, 64, got), PATIENT_OK);
    ck_assert_mem_ne(got, want, 32);
    free(leaves);
}
END_TEST

START_TEST(merkle_inclusion_all_sizes)
{
    uint8_t leaves[18][32], root[32], big[32], path[PT_MERKLE_MAX_DEPTH][32], other[32];
    size_t count;

    for (unsigned i = 0; i < 18; i++)
        ck_assert_int_eq(pt_merkle_leaf(&i, sizeof i, NULL, leaves[i]), PATIENT_OK);
    ck_assert_int_eq(pt_merkle_leaf("x", 1, NULL, other), PATIENT_OK);
    for (uint64_t n = 1; n <= 17; n++) {
        ck_assert_int_eq(pt_merkle_root((const uint8_t(*)[32])leaves, n, root), PATIENT_OK);
        for (uint64_t m = 0; m < n; m++) {
            ck_assert_int_eq(pt_merkle_path((const uint8_t(*)[32])leaves, n, m, path, &count),
                             PATIENT_OK);
            ck_assert_int_eq(pt_merkle_path_verify(m, n, leaves[m], (const uint8_t(*)[32])path,
                                                   count, root),
                             PATIENT_OK);
            /* Forged twins: wrong leaf, wrong index, wrong size, short path. */
            ck_assert_int_eq(pt_merkle_path_verify(m, n, other, (const uint8_t(*)[32])path,
                                                   count, root),
                             PATIENT_ERR_HASH);
            if (n > 1)
                ck_assert_int_eq(pt_merkle_path_verify((m + 1) % n, n, leaves[m],
                                                       (const uint8_t(*)[32])path, count, root),
                                 PATIENT_ERR_HASH);
            ck_assert_int_eq(pt_merkle_root((const uint8_t(*)[32])leaves, n + 1, big),
                             PATIENT_OK);
            ck_assert_int_eq(pt_merkle_path_verify(m, n + 1, leaves[m],
                                                   (const uint8_t(*)[32])path, count, big),
                             PATIENT_ERR_HASH);
            if (count)
                ck_assert_int_eq(pt_merkle_path_verify(m, n, leaves[m],
                                                       (const uint8_t(*)[32])path, count - 1,
                                                       root),
                                 PATIENT_ERR_HASH);
            ck_assert_int_eq(pt_merkle_path_verify(n, n, leaves[m], (const uint8_t(*)[32])path,
                                                   count, root),
                             PATIENT_ERR_HASH);
        }
    }
}
END_TEST

/* ---- chain and checkpoints -------------------------------------------- */

START_TEST(log_chain_2500)
{
    const char *p = tpath("a.log");
    patient_log_report r;

    build_log(p, 2500, 1000);
    r = verify(p, &pk, 0);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 2500);
    ck_assert_uint_eq(r.checkpoints, 3); /* at 1000, 2001 and close (2502) */
    ck_assert_uint_eq(r.entries, 2503);
    ck_assert_uint_eq(r.last_checkpoint_seq, 2502);
    ck_assert_uint_eq(r.unsigned_tail, 0);
    ck_assert_int_eq(r.signatures_checked, 1);
    ck_assert_int_eq(strlen(r.log_id), 64);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_int_eq(r.entry_signatures_checked, 1);
    r = verify(p, NULL, 0);
    ck_assert_int_eq(r.result, PATIENT_OK);
    ck_assert_int_eq(r.signatures_checked, 0);
    /* Forged twin: another pinned key. */
    r = verify(p, &pk2, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_KEY_MISMATCH, PATIENT_LOG_FORGED, 1000);
}
END_TEST

/* patient_log_append_hop writes the entry patient_log_append_change
 * writes for the same descriptor, byte for byte (with and without TLS, one
 * and two hops), without parsing it; and the log verifies deeply. A hop
 * that signed nothing (not finished, or no edit) appends nothing. */
START_TEST(append_hop_same_entry)
{
    const char *pa = tpath("hop.log"), *pb = tpath("parsed.log");
    patient_log *la, *lb;
    patient_log_report r;
    uint8_t body[300], *out = NULL;
    size_t olen = 0;

    memset(body, 'y', sizeof body);
    ck_assert_int_eq(patient_log_open(pa, sk, 0, &la), PATIENT_OK);
    ck_assert_int_eq(patient_log_open(pb, sk, 0, &lb), PATIENT_OK);
    for (unsigned i = 0; i < 6; i++) {
        patient_hop *h = NULL;
        char *v = NULL, *prev = i >= 3 ? make_jws(sk2, i) : NULL;
        const char *pv[1] = {prev};
        uint64_t sa = 0, sb = 0;
        ck_assert_int_eq(patient_hop_begin(
                             &(patient_hop_opts){.sk = sk, .name = "hop \"\u00e9\"",
                                                 .service = "tracker-filter",
                                                 .url = "https://example.test/a?b=\"c\"",
                                                 .in = body, .in_len = sizeof body, .prev = pv,
                                                 .nprev = prev ? 1 : 0},
                             &h),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_add_edit(h, 20, 5 + i, NULL, 0, "tracker.removed", "t1",
                                              NULL, i % 2),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_add_edit(h, 3, 0, (const uint8_t *)"ab", 2,
                                              "banner.inserted", "b2", "n", 1),
                         PATIENT_OK);
        if (i % 3 == 1)
            ck_assert_int_eq(patient_hop_set_tls(h, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", i % 2),
                             PATIENT_OK);
        else if (i % 3 == 2)
            ck_assert_int_eq(patient_hop_set_tls(h, PATIENT_TLS_NONE, NULL, 0), PATIENT_OK);
        ck_assert_int_eq(patient_log_append_hop(la, h, &sa), PATIENT_ERR_STATE);
        ck_assert_int_eq(patient_hop_finish(h, (time_t)1795773600 + i, &out, &olen, &v),
                         PATIENT_OK);
        ck_assert_int_eq(patient_log_append_hop(la, h, &sa), PATIENT_OK);
        ck_assert_int_eq(patient_log_append_change(lb, v, &sb), PATIENT_OK);
        ck_assert_uint_eq(sa, sb);
        patient_hop_free(h);
        free(out);
        free(v);
        free(prev);
    }
    {
        /* no edit: finish signs nothing */
        patient_hop *h = NULL;
        char *v = NULL;
        ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = "m",
                                                               .service = "content-filter",
                                                               .url = "https://example.test/",
                                                               .in = body, .in_len = sizeof body},
                                           &h),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_finish(h, 1795773600, &out, &olen, &v), PATIENT_OK);
        ck_assert_ptr_null(v);
        ck_assert_int_eq(patient_log_append_hop(la, h, NULL), PATIENT_ERR_STATE);
        patient_hop_free(h);
        free(out);
    }
    assert_same_entries(pa, pb);
    ck_assert_uint_eq(patient_log_size(la), 6);
    ck_assert_int_eq(patient_log_close(la), PATIENT_OK);
    ck_assert_int_eq(patient_log_close(lb), PATIENT_OK);
    r = verify(pa, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 6);
}
END_TEST

/* The one JSON string writer in the escapes each format fixed: every byte
 * 1..0x7f, and a UTF-8 one, as the log writes them (control characters as
 * \u00xx, 0x7f raw), as descriptors, disclosures and reports do (0x7f as
 * \u007f too) and as the manifest does (Python's json.dumps(...,
 * ensure_ascii=False), which wrote the expected text), each counted
 * alike by pt_json_str_len; a length stops the log's copy of a line
 * early. */
START_TEST(json_string_writer)
{
    static const char log_want[] =
        "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\u0008\\u0009\\u000a\\u000b"
        "\\u000c\\u000d\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
        "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f !\\\"#$%&'()*+,-./0123456789:;<=>"
        "?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\177\xc3\xa9\"";
    static const char del_want[] =
        "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\u0008\\u0009\\u000a\\u000b"
        "\\u000c\\u000d\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
        "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f !\\\"#$%&'()*+,-./0123456789:;<=>"
        "?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\\u007f\xc3\xa9\"";
    static const char short_want[] =
        "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e"
        "\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a"
        "\\u001b\\u001c\\u001d\\u001e\\u001f !\\\"#$%&'()*+,-./0123456789:;<=>"
        "?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\177\xc3\xa9\"";
    char in[130];
    pt_buf b = {0};

    for (int i = 1; i < 128; i++)
        in[i - 1] = (char)i;
    memcpy(in + 127, "\xc3\xa9", 3);
    ck_assert_int_eq(json_str(&b, in), PATIENT_OK);
    ck_assert_uint_eq(b.len, strlen(log_want));
    ck_assert_uint_eq(pt_json_str_len(in, 0), b.len); /* the count: the same walk */
    ck_assert_int_eq(memcmp(b.data, log_want, b.len), 0);
    b.len = 0;
    ck_assert_int_eq(pt_buf_put_json_str(&b, in), PATIENT_OK);
    ck_assert_uint_eq(b.len, strlen(del_want));
    ck_assert_uint_eq(pt_json_str_len(in, PT_JSON_ESC_DEL), b.len); /* the count: the same walk */
    ck_assert_int_eq(memcmp(b.data, del_want, b.len), 0);
    b.len = 0;
    ck_assert_int_eq(pt_buf_put_json_strn(&b, in, SIZE_MAX, PT_JSON_ESC_SHORT), PATIENT_OK);
    ck_assert_uint_eq(b.len, strlen(short_want));
    ck_assert_uint_eq(pt_json_str_len(in, PT_JSON_ESC_SHORT), b.len); /* the count: the same walk */
    ck_assert_int_eq(memcmp(b.data, short_want, b.len), 0);
    b.len = 0;
    ck_assert_int_eq(json_strn(&b, "a\"b\nc", 4), PATIENT_OK);
    ck_assert_uint_eq(b.len, 12);
    ck_assert_int_eq(memcmp(b.data, "\"a\\\"b\\u000a\"", 12), 0);
    pt_buf_free(&b);
}
END_TEST

/* A finished hop's change logged twice, from the hop (pa) and from its
 * descriptor (pb): the same entries, and pa verifies deep with its one
 * change. */
static patient_log_report
logged_both_ways(const char *pa, const char *pb, patient_hop *h, const char *v)
{
    patient_log *la, *lb;
    patient_log_report r;

    ck_assert_int_eq(patient_log_open(pa, sk, 0, &la), PATIENT_OK);
    ck_assert_int_eq(patient_log_open(pb, sk, 0, &lb), PATIENT_OK);
    ck_assert_int_eq(patient_log_append_hop(la, h, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_log_append_change(lb, v, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_log_close(la), PATIENT_OK);
    ck_assert_int_eq(patient_log_close(lb), PATIENT_OK);
    assert_same_entries(pa, pb);
    r = verify(pa, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 1);
    return r;
}

/* A hop with exactly PATIENT_MAX_EDITS edits (1-byte insertions, the
 * smallest, so the descriptor fits one JWS) is signed, logged from the hop
 * and from its value alike, and verified against its signature. Its twin,
 * the same line with one reason and rule more (rechained), is not an entry
 * to the log reader: one more than the descriptor cap. */
START_TEST(edits_at_the_cap)
{
    const char *pa = tpath("cap.log"), *pb = tpath("cap_value.log"), *pc = tpath("cap1.log");
    size_t len = 2 * (size_t)PATIENT_MAX_EDITS + 2, olen = 0, i;
    uint8_t *body = malloc(len), *out = NULL;
    patient_hop *h = NULL;
    patient_log_report r;
    char *v = NULL;
    lines ls;

    ck_assert_ptr_nonnull(body);
    memset(body, 'a', len);
    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = "m",
                                                           .service = "content-filter",
                                                           .url = "https://example.test/cap",
                                                           .in = body, .in_len = len},
                                       &h),
                     PATIENT_OK);
    for (i = 0; i < PATIENT_MAX_EDITS; i++)
        ck_assert_int_eq(patient_hop_add_edit(h, 2 * i, 0, (const uint8_t *)"x", 1, "r", "r",
                                              NULL, 0),
                         PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, 2 * i, 0, (const uint8_t *)"x", 1, "r", "r", NULL, 0),
                     PATIENT_ERR_LIMIT);
    ck_assert_int_eq(patient_hop_finish(h, 1795773600, &out, &olen, &v), PATIENT_OK);
    ck_assert_ptr_nonnull(v);
    r = logged_both_ways(pa, pb, h, v);
    /* forged twin: one reason and one rule more than the cap */
    ls = read_lines(pa);
    for (i = 0; i < ls.n; i++) {
        char *p;
        if (strstr(ls.l[i], "\"kind\":\"change\"") == NULL)
            continue;
        p = tu_replace1(ls.l[i], "\"reasons\":[", "\"reasons\":[\"r\",");
        free(ls.l[i]);
        ls.l[i] = tu_replace1(p, "\"rules\":[", "\"rules\":[\"r\",");
        free(p);
    }
    rechain(&ls);
    write_lines(pc, &ls);
    free_lines(&ls);
    r = verify(pc, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_EDITED, 0);
    ck_assert_ptr_nonnull(strstr(r.message, "a member has the wrong type"));
    patient_hop_free(h);
    free(out);
    free(v);
    free(body);
}
END_TEST

/* A hop of n one-byte insertions with 128-byte reason and rule codes, the
 * first edit with a note of note_len bytes (0: none), finished: the
 * finish's code; *h and *v (NULL unless signed) for the caller to free. */
static patient_err
cap_line_hop(const uint8_t *body, size_t len, size_t n, size_t note_len, patient_hop **h,
             char **v)
{
    char reason[PATIENT_MAX_CODE + 1], rule[PATIENT_MAX_CODE + 1], note[PATIENT_MAX_NOTE + 1];
    uint8_t *out = NULL;
    size_t olen = 0;
    patient_err err;

    memset(reason, 'r', PATIENT_MAX_CODE);
    memset(rule, 'u', PATIENT_MAX_CODE);
    memset(note, 'n', note_len);
    reason[PATIENT_MAX_CODE] = rule[PATIENT_MAX_CODE] = note[note_len] = 0;
    *h = NULL;
    *v = NULL;
    ck_assert_uint_le(2 * n, len);
    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = "mbox \"cap\"",
                                                           .service = "ad-filter",
                                                           .url = "https://example.test/li\\ne",
                                                           .in = body, .in_len = len},
                                       h),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_set_tls(*h, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 1), PATIENT_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(patient_hop_add_edit(*h, 2 * i, 0, (const uint8_t *)"x", 1, reason, rule,
                                              i == 0 && note_len ? note : NULL, 0),
                         PATIENT_OK);
    err = patient_hop_finish(*h, 1795773600, &out, &olen, v);
    if (err != PATIENT_OK) {
        ck_assert_ptr_null(out);
        ck_assert_ptr_null(*v);
    }
    free(out);
    return err;
}

/* The audit log line, not the JWS, is the cap such a hop meets first (its
 * reasons and rules are repeated in the entry): the largest hop that
 * signs has a line within a few bytes of PATIENT_LOG_LINE_MAX, which is
 * logged (from the hop and from its value) and verifies, signatures and
 * all; one edit, or one note byte, more is refused at finish with
 * PATIENT_ERR_LIMIT, nothing signed, though its JWS would be far under
 * PATIENT_JWS_MAX. */
START_TEST(line_at_the_cap)
{
    const char *pa = tpath("line.log"), *pb = tpath("line_value.log");
    size_t len = 2 * 4000, lo = 1, hi = 4000, nlo = 0, nhi = PATIENT_MAX_NOTE, n, note;
    uint8_t *body = malloc(len);
    const patient_log_entry *ent;
    patient_log_iter *it = NULL;
    patient_hop *h = NULL;
    patient_log_report r;
    char *v = NULL;

    ck_assert_ptr_nonnull(body);
    memset(body, 'a', len);
    /* the most edits that sign: lo signs, hi does not */
    ck_assert_int_eq(cap_line_hop(body, len, lo, 0, &h, &v), PATIENT_OK);
    patient_hop_free(h);
    free(v);
    ck_assert_int_ne(cap_line_hop(body, len, hi, 0, &h, &v), PATIENT_OK);
    patient_hop_free(h);
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        patient_err err = cap_line_hop(body, len, mid, 0, &h, &v);
        patient_hop_free(h);
        free(v);
        if (err == PATIENT_OK)
            lo = mid;
        else
            hi = mid;
    }
    n = lo;
    ck_assert_int_eq(cap_line_hop(body, len, n + 1, 0, &h, &v), PATIENT_ERR_LIMIT);
    patient_hop_free(h);
    /* then the longest note on the first edit that still signs */
    ck_assert_int_eq(cap_line_hop(body, len, n, nhi, &h, &v), PATIENT_ERR_LIMIT);
    patient_hop_free(h);
    while (nhi - nlo > 1) {
        size_t mid = nlo + (nhi - nlo) / 2;
        patient_err err = cap_line_hop(body, len, n, mid, &h, &v);
        patient_hop_free(h);
        free(v);
        if (err == PATIENT_OK)
            nlo = mid;
        else
            nhi = mid;
    }
    note = nlo;
    ck_assert_int_eq(cap_line_hop(body, len, n, note + 1, &h, &v), PATIENT_ERR_LIMIT);
    patient_hop_free(h);
    ck_assert_int_eq(cap_line_hop(body, len, n, note, &h, &v), PATIENT_OK);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_lt(strlen(v), PATIENT_JWS_MAX - 256 * 1024);

    r = logged_both_ways(pa, pb, h, v);
    ck_assert_int_eq(r.entry_signatures_checked, 1);
    /* its line: under the cap by at most the 19 digits seq 0 does not take
     * and the 2 bytes one note byte more would have added */
    ck_assert_int_eq(patient_log_iter_open(pa, &it), PATIENT_OK);
    ck_assert_int_eq(patient_log_iter_next(it, &ent), PATIENT_OK);
    ck_assert_ptr_nonnull(ent);
    ck_assert_int_eq(ent->kind, PATIENT_LOG_KIND_CHANGE);
    ck_assert_uint_eq(ent->n_edits, n);
    ck_assert_uint_le(ent->raw_len, PATIENT_LOG_LINE_MAX);
    ck_assert_uint_ge(ent->raw_len, PATIENT_LOG_LINE_MAX - 21);
    patient_log_iter_close(it);
    patient_hop_free(h);
    free(v);
    free(body);
}
END_TEST

/* The count a hop checks before its descriptor leaves it
 * (pt_change_entry_len) is the length of the line the writer then
 * writes, byte for byte: the writer no longer counts it again, so an
 * undercount would let a hop sign a change whose line the log refuses.
 * Shapes: upstream TLS recorded (verified or not), plain HTTP, or none;
 * names and URLs with quotes and backslashes to escape, UTF-8, at their
 * caps; one edit to many, reason and rule codes of 1..128 bytes (codes
 * are [A-Za-z0-9._-]: never escaped); totals of many digits; hop 1 and
 * 2. Each is logged from the hop (which hands the writer its count) and
 * from its descriptor (counted by the writer), seqs 0..N. */
static const struct entry_shape {
    const char *name, *url;  /* NULL: at the cap, full of '"' (name) or '\\' (url) */
    const char *tls_version; /* NULL: none recorded */
    const char *tls_cipher;
    int tls_verified;
    size_t nedits, code_len; /* code_len: the first edit's reason, 1..128 bytes */
    size_t del;              /* bytes each edit deletes where it inserts "ab" */
    int prev;                /* after a previous hop: hop 2 */
} entry_shapes[] = {
    {"m", "https://example.test/", NULL, NULL, 0, 1, 1, 0, 0},
    {"mbox \"q\" \\ b", "https://example.test/a?b=\"c\"&d=\\e", "TLSv1.3",
     "TLS_AES_256_GCM_SHA384", 1, 3, 17, 5, 0},
    {"h\u00e9t\u00e9 \"\\\"", "https://example.test/\"\"\\\\", "TLSv1.2",
     "ECDHE-RSA-AES128-GCM-SHA256", 0, 40, 128, 1, 1},
    {NULL, NULL, PATIENT_TLS_NONE, NULL, 0, 7, 64, 12345, 0},
    {"\\", "https://example.test/%22", "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256", 0, 250, 9, 0,
     1},
    {NULL, "https://example.test/x", NULL, NULL, 0, 2, 128, 100000, 1},
};

START_TEST(entry_len_is_the_line)
{
    enum { NS = sizeof entry_shapes / sizeof entry_shapes[0] };
    const char *p = tpath("lens.log");
    static char name_cap[PATIENT_MAX_NAME + 1], url_cap[PATIENT_LOG_URL_MAX + 1];
    char codes[PATIENT_MAX_CODE + 1], kid[PATIENT_KEYID_HEX];
    char at[NS][PATIENT_TIME_BYTES], tls[NS][PT_ENTRY_TLS_MAX];
    pt_entry_size want[2 * NS];
    char *vals[NS];
    const patient_log_entry *ent;
    patient_log_iter *it = NULL;
    patient_log *log;
    patient_log_report r;
    uint64_t seq = 0;
    size_t nlines = 0;

    memset(name_cap, '"', PATIENT_MAX_NAME);
    memcpy(url_cap, "https://example.test/", 21);
    memset(url_cap + 21, '\\', PATIENT_LOG_URL_MAX - 21);
    for (size_t i = 0; i < PATIENT_MAX_CODE; i++)
        codes[i] = "aZ09._-q"[i % 8];
    codes[PATIENT_MAX_CODE] = 0;
    patient_keyid_hex(pk.id, kid);
    ck_assert_int_eq(patient_log_open(p, sk, 0, &log), PATIENT_OK);
    ck_assert_int_eq(patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE), PATIENT_OK);
    for (size_t k = 0; k < NS; k++) {
        const struct entry_shape *sh = &entry_shapes[k];
        const char *name = sh->name ? sh->name : name_cap, *url = sh->url ? sh->url : url_cap;
        size_t len = sh->nedits * (sh->del + 1) + 1, olen = 0;
        uint8_t *body = malloc(len), *out = NULL;
        char *prev = sh->prev ? make_jws(sk2, (unsigned)k) : NULL;
        const char *pv[1] = {prev};
        patient_hop *h = NULL;
        pt_hop_signed hs;
        time_t t = (time_t)1795773600 + (time_t)k * 61;
        pt_entry_size s = {.at = at[k], .url = url, .name = name, .kid = kid,
                           .hop = sh->prev ? 2 : 1, .nedits = sh->nedits, .tls = tls[k]};

        ck_assert_ptr_nonnull(body);
        memset(body, 'b', len);
        ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = name,
                                                               .service = "content-filter",
                                                               .url = url, .in = body,
                                                               .in_len = len, .prev = pv,
                                                               .nprev = prev ? 1 : 0},
                                           &h),
                         PATIENT_OK);
        if (sh->tls_version)
            ck_assert_int_eq(patient_hop_set_tls(h, sh->tls_version, sh->tls_cipher,
                                                 sh->tls_verified),
                             PATIENT_OK);
        for (size_t i = 0; i < sh->nedits; i++) {
            /* reason: code_len bytes on the first edit, then 1..128 */
            size_t rl = i ? 1 + (i * 37) % PATIENT_MAX_CODE : sh->code_len;
            size_t ul = 1 + (sh->code_len + i * 11) % PATIENT_MAX_CODE;
            char reason[PATIENT_MAX_CODE + 1], rule[PATIENT_MAX_CODE + 1];
            memcpy(reason, codes, rl);
            reason[rl] = 0;
            memcpy(rule, codes + PATIENT_MAX_CODE - ul, ul + 1);
            ck_assert_int_eq(patient_hop_add_edit(h, i * (sh->del + 1), sh->del,
                                                  (const uint8_t *)"ab", 2, reason, rule, NULL,
                                                  0),
                             PATIENT_OK);
            s.codes_len += rl + ul;
            s.deleted += sh->del;
            s.inserted += 2;
        }
        ck_assert_int_eq(patient_hop_finish(h, t, &out, &olen, &vals[k]), PATIENT_OK);
        ck_assert_ptr_nonnull(vals[k]);
        pt_time_format(t, at[k]);
        pt_change_entry_tls(tls[k], sh->tls_version, sh->tls_cipher, sh->tls_verified);
        s.jws_len = strlen(vals[k]);
        /* the count the hop passes to the writer is this one */
        pt_hop_signed_get(h, &hs);
        ck_assert_uint_eq(hs.entry_len, pt_change_entry_len(&s, PT_ENTRY_ANY_SEQ));
        /* from the hop, then the same descriptor parsed */
        ck_assert_int_eq(patient_log_append_hop(log, h, &seq), PATIENT_OK);
        ck_assert_uint_eq(seq, 2 * k);
        want[2 * k] = s;
        ck_assert_int_eq(patient_log_append_change(log, vals[k], &seq), PATIENT_OK);
        ck_assert_uint_eq(seq, 2 * k + 1);
        want[2 * k + 1] = s;
        patient_hop_free(h);
        free(out);
        free(body);
        free(prev);
    }
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);

    ck_assert_int_eq(patient_log_iter_open(p, &it), PATIENT_OK);
    while (patient_log_iter_next(it, &ent) == PATIENT_OK && ent != NULL) {
        size_t n;
        if (ent->kind != PATIENT_LOG_KIND_CHANGE)
            continue;
        ck_assert_uint_lt(ent->seq, 2 * NS);
        ck_assert_uint_eq(ent->hop, want[ent->seq].hop);
        n = pt_change_entry_len(&want[ent->seq], ent->seq);
        ck_assert_msg(ent->raw_len == n, "seq %llu: line of %zu bytes, counted %zu",
                      (unsigned long long)ent->seq, ent->raw_len, n);
        ck_assert_uint_le(n, pt_change_entry_len(&want[ent->seq], PT_ENTRY_ANY_SEQ));
        nlines++;
    }
    patient_log_iter_close(it);
    ck_assert_uint_eq(nlines, 2 * NS);
    for (size_t k = 0; k < NS; k++)
        free(vals[k]);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 2 * NS);
}
END_TEST

/* Deferred durability: with LogSync each the entry is written and a mark
 * returned; waiting for it runs (or joins) the fdatasync. A mark the
 * handle never gave is refused; without LogSync each there is nothing to
 * wait for. */
static patient_hop *
finished_hop(unsigned i, char **v)
{
    static uint8_t body[64];
    patient_hop *h = NULL;
    uint8_t *out = NULL;
    size_t olen = 0;

    memset(body, 'z', sizeof body);
    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = "m",
                                                           .service = "content-filter",
                                                           .url = "https://example.test/d",
                                                           .in = body, .in_len = sizeof body},
                                       &h),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, i % 60, 1, NULL, 0, "x.removed", "r", NULL, 1),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(h, (time_t)1795773600 + i, &out, &olen, v), PATIENT_OK);
    free(out);
    return h;
}

START_TEST(append_hop_deferred_sync)
{
    const char *p = tpath("deferred.log");
    patient_log *log;
    patient_log_report r;
    uint64_t seq = 9, mark = 0, appends = 0, syncs0 = 0, syncs1 = 0;
    char *v = NULL;
    patient_hop *h;

    ck_assert_int_eq(patient_log_open(p, sk, 0, &log), PATIENT_OK);
    /* nobody syncs or waits: the group commit is idle */
    ck_assert_int_eq(patient_log_sync_busy(NULL), 0);
    ck_assert_int_eq(patient_log_sync_busy(log), 0);
    h = finished_hop(1, &v);
    ck_assert_int_eq(patient_log_append_hop_deferred(log, h, &seq, NULL), PATIENT_ERR_ARG);
    patient_log_stats(log, &appends, &syncs0);
    ck_assert_int_eq(patient_log_append_hop_deferred(log, h, &seq, &mark), PATIENT_OK);
    ck_assert_uint_eq(seq, 0);
    ck_assert_uint_gt(mark, 0);
    ck_assert_int_eq(patient_log_wait_durable(log, mark + 1), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_log_wait_durable(log, mark), PATIENT_OK);
    ck_assert_int_eq(patient_log_sync_busy(log), 0); /* the sync and the wait are over */
    patient_log_stats(log, &appends, &syncs1);
    ck_assert_uint_eq(appends, 1);
    ck_assert_uint_eq(syncs1, syncs0 + 1);
    /* durable already: no second sync */
    ck_assert_int_eq(patient_log_wait_durable(log, mark), PATIENT_OK);
    patient_log_stats(log, &appends, &syncs0);
    ck_assert_uint_eq(syncs0, syncs1);
    ck_assert_int_eq(patient_log_wait_durable(log, 0), PATIENT_OK);
    patient_hop_free(h);
    free(v);

    ck_assert_int_eq(patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE), PATIENT_OK);
    h = finished_hop(2, &v);
    ck_assert_int_eq(patient_log_append_hop_deferred(log, h, &seq, &mark), PATIENT_OK);
    ck_assert_uint_eq(seq, 1);
    ck_assert_uint_eq(mark, 0);
    patient_hop_free(h);
    free(v);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 2);
}
END_TEST

/* The handle's sync count once it differs from FROM, or after TRIES
 * polls US microseconds apart. Waiting for a sync that should come, the
 * bound is generous; looking for one that should not (a kick that should
 * have done nothing), it is short: a slow machine can only hide such a
 * sync from the caller's assertion, never fail a correct log. */
static uint64_t
syncs_moved(patient_log *log, uint64_t from, int tries, unsigned us)
{
    uint64_t s = 0;

    patient_log_stats(log, NULL, &s);
    for (int i = 0; i < tries && s == from; i++) {
        usleep(us);
        patient_log_stats(log, NULL, &s);
    }
    return s;
}

/* The sync count after 100 ms at most for a sync nobody asked for. */
static uint64_t
syncs_settled(patient_log *log)
{
    uint64_t s = 0;

    patient_log_stats(log, NULL, &s);
    return syncs_moved(log, s, 20, 5000);
}

/* patient_log_sync_ahead: the handle's syncer leads the sync of a
 * deferred mark without anyone waiting; the wait after finds it durable
 * and syncs no more. Marks it never gave, 0, and a NULL handle are
 * ignored; close stops the syncer. */
START_TEST(append_hop_sync_ahead)
{
    const char *p = tpath("ahead.log");
    patient_log *log;
    patient_log_report r;
    uint64_t seq = 9, mark = 0, appends = 0, syncs0 = 0, syncs1 = 0;
    char *v = NULL;
    patient_hop *h;

    ck_assert_int_eq(patient_log_open(p, sk, 0, &log), PATIENT_OK);
    patient_log_sync_ahead(NULL, 1);
    patient_log_sync_ahead(log, 0);
    patient_log_sync_ahead(log, 1); /* beyond what is written: no mark of ours */
    h = finished_hop(3, &v);
    patient_log_stats(log, &appends, &syncs0);
    ck_assert_int_eq(patient_log_append_hop_deferred(log, h, &seq, &mark), PATIENT_OK);
    ck_assert_uint_gt(mark, 0);
    patient_log_sync_ahead(log, mark + 1);
    syncs1 = syncs_settled(log);
    ck_assert_uint_eq(syncs1, syncs0);
    patient_log_sync_ahead(log, mark);
    /* the syncer's fdatasync, with nobody waiting (bounded: 20 s) */
    syncs1 = syncs_moved(log, syncs0, 2000, 10000);
    ck_assert_uint_eq(syncs1, syncs0 + 1);
    ck_assert_int_eq(patient_log_wait_durable(log, mark), PATIENT_OK);
    /* durable: neither the wait nor another kick syncs again */
    patient_log_sync_ahead(log, mark);
    ck_assert_int_eq(patient_log_wait_durable(log, mark), PATIENT_OK);
    patient_log_stats(log, &appends, &syncs0);
    ck_assert_uint_eq(syncs0, syncs1);
    patient_hop_free(h);
    free(v);
    /* kicked and waited at once: one sync, led by whichever came first */
    h = finished_hop(4, &v);
    ck_assert_int_eq(patient_log_append_hop_deferred(log, h, &seq, &mark), PATIENT_OK);
    patient_log_sync_ahead(log, mark);
    ck_assert_int_eq(patient_log_wait_durable(log, mark), PATIENT_OK);
    patient_log_stats(log, &appends, &syncs1);
    ck_assert_uint_eq(syncs1, syncs0 + 1);
    ck_assert_uint_eq(appends, 2);
    patient_hop_free(h);
    free(v);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 2);
}
END_TEST

typedef struct {
    patient_log *log;
    uint64_t mark;
    patient_err err;
} log_call;

static void *
wait_durable_thread(void *arg)
{
    log_call *c = arg;
    c->err = patient_log_wait_durable(c->log, c->mark);
    return NULL;
}

static void *
close_thread(void *arg)
{
    log_call *c = arg;
    c->err = patient_log_close(c->log);
    return NULL;
}

/* A kick while a sync runs does nothing: the next waiter leads the
 * following sync itself. A waiter's sync of the first entry is held in
 * its fdatasync (the gate) while a second entry is written and kicked,
 * the syncer idle; once that sync ends, none follows until the second
 * entry is waited for, which syncs once. */
START_TEST(sync_ahead_while_syncing)
{
    const char *p = tpath("kick_busy.log");
    patient_log *log;
    patient_log_report r;
    uint64_t seq = 0, m0 = 0, m1 = 0, m2 = 0, s0 = 0, s1 = 0;
    char *v0 = NULL, *v1 = NULL, *v2 = NULL;
    patient_hop *h0, *h1, *h2;
    log_call w;
    pthread_t t;

    ck_assert_int_eq(patient_log_open(p, sk, 0, &log), PATIENT_OK);
    h0 = finished_hop(5, &v0);
    h1 = finished_hop(6, &v1);
    h2 = finished_hop(7, &v2);
    /* the syncer started, and idle again */
    ck_assert_int_eq(patient_log_append_hop_deferred(log, h0, &seq, &m0), PATIENT_OK);
    patient_log_sync_ahead(log, m0);
    ck_assert_int_eq(patient_log_wait_durable(log, m0), PATIENT_OK);
    patient_log_stats(log, NULL, &s0);

    ck_assert_int_eq(patient_log_append_hop_deferred(log, h1, &seq, &m1), PATIENT_OK);
    gate_close();
    w = (log_call){log, m1, PATIENT_ERR_STATE};
    ck_assert_int_eq(pthread_create(&t, NULL, wait_durable_thread, &w), 0);
    gate_wait_held(1); /* the waiter leads, in its fdatasync */
    ck_assert_int_eq(patient_log_sync_busy(log), 1);
    ck_assert_int_eq(patient_log_append_hop_deferred(log, h2, &seq, &m2), PATIENT_OK);
    ck_assert_uint_gt(m2, m1);
    patient_log_sync_ahead(log, m2); /* a sync runs: nothing */
    ck_assert_int_eq(gate_held_now(), 1);
    gate_open();
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(w.err, PATIENT_OK);
    /* that sync covered the first entry only (the second came after it
     * started), and the kick left the syncer idle */
    s1 = syncs_settled(log);
    ck_assert_uint_eq(s1, s0 + 1);
    ck_assert_int_eq(patient_log_wait_durable(log, m2), PATIENT_OK);
    patient_log_stats(log, NULL, &s1);
    ck_assert_uint_eq(s1, s0 + 2);
    patient_hop_free(h0);
    patient_hop_free(h1);
    patient_hop_free(h2);
    free(v0);
    free(v1);
    free(v2);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 3);
}
END_TEST

/* Close while the syncer is in its fdatasync: close joins it, gets no
 * further until that sync ends (its own fdatasync would wait at the gate
 * too), then finishes; the entry being synced is in the log, with the
 * checkpoint close writes after it. */
START_TEST(close_joins_busy_syncer)
{
    const char *p = tpath("close_busy.log");
    patient_log *log;
    patient_log_report r;
    uint64_t seq = 0, mark = 0;
    char *v = NULL;
    patient_hop *h;
    log_call c;
    pthread_t t;

    ck_assert_int_eq(patient_log_open(p, sk, 0, &log), PATIENT_OK);
    h = finished_hop(8, &v);
    ck_assert_int_eq(patient_log_append_hop_deferred(log, h, &seq, &mark), PATIENT_OK);
    gate_close();
    patient_log_sync_ahead(log, mark);
    gate_wait_held(1); /* the syncer, the only one syncing */
    c = (log_call){log, 0, PATIENT_ERR_STATE};
    ck_assert_int_eq(pthread_create(&t, NULL, close_thread, &c), 0);
    for (int i = 0; i < 20; i++) {
        usleep(5000);
        ck_assert_int_eq(gate_held_now(), 1);
    }
    gate_open();
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(c.err, PATIENT_OK);
    patient_hop_free(h);
    free(v);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 1);
    ck_assert_uint_eq(r.checkpoints, 1);
    ck_assert_uint_eq(r.unsigned_tail, 0);
}
END_TEST

START_TEST(log_reopen_continues_chain)
{
    const char *p = tpath("b.log");
    patient_log *log;
    uint64_t seq;
    patient_log_report r;

    build_log(p, 10, 1000); /* 10 + close checkpoint */
    ck_assert_int_eq(patient_log_open(p, sk, 1000, &log), PATIENT_OK);
    ck_assert_uint_eq(patient_log_size(log), 11);
    ck_assert_uint_eq(patient_log_repaired_bytes(log), 0);
    ck_assert_int_eq(patient_log_append_event(log, "body.too_large", "https://x.test/big",
                                              "12345678 bytes > cap", &seq),
                     PATIENT_OK);
    ck_assert_uint_eq(seq, 11);
    ck_assert_int_eq(patient_log_append_event(log, "Bad Event", NULL, NULL, NULL),
                     PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_log_checkpoint(log, &seq), PATIENT_OK);
    ck_assert_uint_eq(seq, 12);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK); /* ends in a checkpoint: none added */
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.entries, 13);
    ck_assert_uint_eq(r.events, 1);
    /* Read-only handles cannot append. */
    ck_assert_int_eq(patient_log_open(p, NULL, 0, &log), PATIENT_OK);
    ck_assert_uint_eq(patient_log_size(log), 13);
    ck_assert_int_eq(patient_log_append_event(log, "x", NULL, NULL, NULL), PATIENT_ERR_STATE);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
}
END_TEST

START_TEST(log_refuses_symlink)
{
    patient_log *log;
    ck_assert_int_eq(symlink("/etc/passwd", tpath("link.log")), 0);
    ck_assert_int_eq(patient_log_open(tpath("link.log"), sk, 0, &log), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(patient_log_iter_open(tpath("link.log"), &(patient_log_iter *){0}),
                     PATIENT_ERR_UNSAFE_PATH);
}
END_TEST

START_TEST(log_file_mode_0600)
{
    struct stat st;
    build_log(tpath("m.log"), 1, 0);
    ck_assert_int_eq(stat(tpath("m.log"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

/* ---- tampering --------------------------------------------------------- */

START_TEST(tamper_edit_byte)
{
    const char *p = tpath("e.log");
    lines ls;
    patient_log_report r;
    char *u;

    build_log(p, 2500, 1000);
    ls = read_lines(p);
    u = strstr(ls.l[17], "page17");
    ck_assert_ptr_nonnull(u);
    u[4] = 'X'; /* still valid JSON */
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_EDITED, 17);
    ck_assert_uint_eq(r.line, 18);
    /* Edit that breaks the JSON. */
    u[4] = '1';
    ls.l[17][0] = '[';
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_EDITED, 17);
    /* Edit a denormalised field consistently, then re-chain: the field no
     * longer matches the signed descriptor. */
    ls.l[17][0] = '{';
    u = strstr(ls.l[17], "\"hop\":1");
    u[6] = '2';
    rechain(&ls);
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_LOG_CORRUPT, PATIENT_LOG_REWRITTEN, 1000);
    r = verify(p, &pk, 1); /* deep names the entry and the field */
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_EDITED, 17);
    ck_assert_str_eq(r.found, "hop");
    free_lines(&ls);
}
END_TEST

/* Verification reads the file in batches (LS_BATCH, ~2.1 MiB) and checks
 * lines on several threads: a log of ~10 MB has lines cut by batch edges,
 * and damage after an edge is reported exactly as before it. */
START_TEST(tamper_across_batches)
{
    const char *p = tpath("big.log");
    lines ls;
    patient_log_report r;
    size_t i, off = 0, edge = 0;
    char *u, *saved;

    build_log(p, 9000, 1000);
    r = verify(p, &pk, 0);
    ck_assert_int_eq(r.result, PATIENT_OK);
    ck_assert_uint_eq(r.entries, 9009);
    ck_assert_uint_eq(r.checkpoints, 9);
    ls = read_lines(p);
    for (i = 0; i < ls.n; i++) {
        off += strlen(ls.l[i]);
        if (off > LS_BATCH) {
            edge = i; /* the line the first batch cuts */
            break;
        }
    }
    ck_assert_uint_gt(edge, 1000);
    ck_assert_uint_lt(edge + 2, ls.n);
    /* An edit in the line on the edge and in the one after it. */
    for (i = edge; i <= edge + 1; i++) {
        u = strstr(ls.l[i], "\"hop\":1");
        ck_assert_ptr_nonnull(u);
        u[6] = '2';
        write_lines(p, &ls);
        r = verify(p, &pk, 0);
        ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_EDITED, i);
        ck_assert_uint_eq(r.line, i + 1);
        u[6] = '1';
    }
    /* A line removed after the edge. */
    saved = ls.l[edge + 1];
    ls.l[edge + 1] = NULL;
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_REMOVED, edge + 1);
    ls.l[edge + 1] = saved;
    /* Re-chained after an edit: the next checkpoint's root, in the second
     * batch, says rewritten. */
    u = strstr(ls.l[edge + 1], "\"hop\":1");
    u[6] = '2';
    rechain(&ls);
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_LOG_CORRUPT, PATIENT_LOG_REWRITTEN,
                  (edge + 1) / 1001 * 1001 + 1000);
    /* Deep still names the entry and the field. */
    r = verify(p, &pk, 1);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_EDITED, edge + 1);
    ck_assert_str_eq(r.found, "hop");
    u[6] = '1';
    rechain(&ls);
    /* A torn tail in the second batch. */
    ls.l[ls.n - 1][strlen(ls.l[ls.n - 1]) - 1] = 0;
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_LOG_CORRUPT, PATIENT_LOG_TRUNCATED, ls.n - 1);
    free_lines(&ls);
}
END_TEST

/* A log line's integers are integer literals: seq 17.0 (the same double)
 * in an entry re-chained around it is malformed, not entry 17. */
START_TEST(tamper_seq_not_integer_literal)
{
    const char *p = tpath("int.log");
    lines ls;
    patient_log_report r;
    const char *u;
    pt_buf b = {0};

    build_log(p, 50, 1000);
    ls = read_lines(p);
    u = strstr(ls.l[17], "\"seq\":17,");
    ck_assert_ptr_nonnull(u);
    pt_buf_append(&b, ls.l[17], (size_t)(u - ls.l[17]));
    pt_buf_appendf(&b, "\"seq\":17.0,%s", u + 9);
    free(ls.l[17]);
    ls.l[17] = (char *)b.data;
    rechain(&ls);
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ck_assert_msg(r.result == PATIENT_ERR_CHAIN, "%s", r.message);
    ck_assert_str_eq(patient_log_tamper_name(r.tamper), patient_log_tamper_name(PATIENT_LOG_EDITED));
    ck_assert_uint_eq(r.line, 18);
    free_lines(&ls);
    /* Twin: the same re-chaining with the literal left as it was. */
    build_log(tpath("int2.log"), 50, 1000);
    p = tpath("int2.log");
    ls = read_lines(p);
    rechain(&ls);
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    free_lines(&ls);
}
END_TEST

START_TEST(tamper_edit_prev_field)
{
    const char *p = tpath("e2.log");
    lines ls;
    patient_log_report r;

    build_log(p, 50, 1000);
    ls = read_lines(p);
    strstr(ls.l[20], "\"prev\":\"")[8] ^= 1;
    write_lines(p, &ls);
    r = verify(p, NULL, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_EDITED, 20);
    free_lines(&ls);
}
END_TEST

START_TEST(tamper_rewritten_and_rechained)
{
    const char *p = tpath("rw.log");
    lines ls;
    patient_log_report r;
    char *u;

    build_log(p, 2500, 1000);
    ls = read_lines(p);
    /* Replace entry 17 by another well-formed entry (entry 18's payload
     * under seq 17) and fix the chain: only the checkpoint catches it. */
    free(ls.l[17]);
    ls.l[17] = strdup(ls.l[18]);
    u = strstr(ls.l[17], "\"seq\":18");
    u[7] = '7';
    rechain(&ls);
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_LOG_CORRUPT, PATIENT_LOG_REWRITTEN, 1000);
    free_lines(&ls);
}
END_TEST

START_TEST(tamper_remove_line)
{
    const char *p = tpath("d.log");
    lines ls;
    patient_log_report r;

    build_log(p, 2500, 1000);
    ls = read_lines(p);
    free(ls.l[17]);
    ls.l[17] = NULL;
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_REMOVED, 17);
    ck_assert_str_eq(r.expected, "17");
    ck_assert_str_eq(r.found, "18");
    free_lines(&ls);
}
END_TEST

START_TEST(tamper_swap_lines)
{
    const char *p = tpath("s.log");
    lines ls;
    patient_log_report r;
    char *t;

    build_log(p, 2500, 1000);
    ls = read_lines(p);
    t = ls.l[17];
    ls.l[17] = ls.l[18];
    ls.l[18] = t;
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_REORDERED, 17);
    /* A line moved far ahead is reordered too, not removed. */
    t = ls.l[18];
    ls.l[18] = ls.l[17];
    ls.l[17] = t; /* restore */
    t = ls.l[17];
    memmove(&ls.l[17], &ls.l[18], 100 * sizeof *ls.l);
    ls.l[117] = t;
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_REORDERED, 17);
    free_lines(&ls);
}
END_TEST

START_TEST(tamper_insert_duplicate)
{
    const char *p = tpath("i.log");
    lines ls;
    patient_log_report r;

    build_log(p, 2500, 1000);
    ls = read_lines(p);
    ls.l = realloc(ls.l, (ls.n + 1) * sizeof *ls.l);
    memmove(&ls.l[18], &ls.l[17], (ls.n - 17) * sizeof *ls.l);
    ls.l[18] = strdup(ls.l[17]);
    ls.n++;
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_INSERTED, 17);
    ck_assert_uint_eq(r.line, 19);
    free_lines(&ls);
}
END_TEST

START_TEST(tamper_forged_checkpoint_signature)
{
    const char *p = tpath("f.log");
    lines ls;
    patient_log_report r;
    char *s;

    build_log(p, 2500, 1000);
    ls = read_lines(p);
    s = strstr(ls.l[1000], "\"sig\":\"");
    s = strrchr(s, '.') + 10; /* inside the signature part */
    *s = *s == 'A' ? 'B' : 'A';
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_SIGNATURE, PATIENT_LOG_FORGED, 1000);
    /* Without a key that is not detectable at the checkpoint itself, but
     * the next entry's prev no longer matches. */
    r = verify(p, NULL, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_CHAIN, PATIENT_LOG_EDITED, 1000);
    free_lines(&ls);
}
END_TEST

START_TEST(tamper_checkpoint_root_wrong)
{
    const char *p = tpath("cr.log");
    lines ls;
    patient_log_report r;
    cJSON *o;
    char payload[512], *sig = NULL, *line;
    const char *root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    uint8_t h[32];
    char log_id[65];

    build_log(p, 2500, 1000);
    ls = read_lines(p);
    ck_assert_int_eq(patient_sha256(ls.l[0], strlen(ls.l[0]) - 1, h), PATIENT_OK);
    pt_hex(h, 32, log_id);
    /* A correctly signed checkpoint over a wrong root (a lying or buggy
     * writer, or a rewrite by someone holding the key). */
    ck_assert_int_eq(pt_json_parse(ls.l[1000], strlen(ls.l[1000]), &o), PATIENT_OK);
    snprintf(payload, sizeof payload,
             "{\"log_id\":\"%s\",\"tree_size\":1000,\"root\":\"%s\",\"time\":\"%s\"}", log_id,
             root, pt_json_str(o, "time"));
    ck_assert_int_eq(patient_jws_sign(sk, "patient-checkpoint+jws", payload, strlen(payload),
                                      &sig),
                     PATIENT_OK);
    cJSON_ReplaceItemInObject(o, "root", cJSON_CreateString(root));
    cJSON_ReplaceItemInObject(o, "sig", cJSON_CreateString(sig));
    line = cJSON_PrintUnformatted(o);
    free(ls.l[1000]);
    ck_assert_int_ge(asprintf(&ls.l[1000], "%s\n", line), 0);
    rechain(&ls);
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_LOG_CORRUPT, PATIENT_LOG_REWRITTEN, 1000);
    free(line);
    free(sig);
    cJSON_Delete(o);
    free_lines(&ls);
}
END_TEST

/* The one reader of a checkpoint's sig (verify, verify-proof, the
 * monitor): OK with the payload, PARSE for another typ, a payload that is
 * not JSON or no JWS, and NOMEM, never PARSE, when the payload's parse
 * runs out of memory; no output left on failure. */
START_TEST(checkpoint_sig_read)
{
    const char *payload = "{\"tree_size\":7,\"root\":\"r\"}";
    char *sig = NULL, *other = NULL, *notjson = NULL;
    patient_jws *j = NULL;
    cJSON *p = NULL;
    uint64_t ts;
    patient_err err;
    unsigned k;

    ck_assert_int_eq(patient_jws_sign(sk, CKPT_TYP, payload, strlen(payload), &sig), PATIENT_OK);
    ck_assert_int_eq(patient_jws_sign(sk, "patient-change+jws", payload, strlen(payload), &other),
                     PATIENT_OK);
    ck_assert_int_eq(patient_jws_sign(sk, CKPT_TYP, "{\"tree_size\":", 13, &notjson), PATIENT_OK);
    ck_assert_int_eq(pt_checkpoint_sig_read(sig, &j, &p), PATIENT_OK);
    ck_assert_int_eq(get_u64(p, "tree_size", &ts), 0);
    ck_assert_uint_eq(ts, 7);
    ck_assert_int_eq(patient_jws_verify(j, &pk), PATIENT_OK);
    patient_jws_free(j);
    cJSON_Delete(p);
    ck_assert_int_eq(pt_checkpoint_sig_read(other, &j, &p), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(j);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(pt_checkpoint_sig_read(notjson, &j, &p), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(j);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(pt_checkpoint_sig_read("a.b", &j, &p), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(j);
    /* every allocation of the payload's parse failed in turn */
    for (k = 1;; k++) {
        tu_json_fail_alloc(k);
        err = pt_checkpoint_sig_read(sig, &j, &p);
        tu_json_fail_alloc(0);
        if (err == PATIENT_OK)
            break;
        ck_assert_int_eq(err, PATIENT_ERR_NOMEM);
        ck_assert_ptr_null(j);
        ck_assert_ptr_null(p);
    }
    ck_assert_uint_gt(k, 1);
    patient_jws_free(j);
    cJSON_Delete(p);
    free(sig);
    free(other);
    free(notjson);
}
END_TEST

/* A checkpoint whose tree root cannot be computed (the hash fails) is a
 * local error, and the report says so: result is the code returned, no
 * tamper class, and the audit-verify document's result is "error". */
START_TEST(checkpoint_root_hash_fails)
{
    const char *p = tpath("hf.log"), *paths[1] = {p};
    lines ls;
    patient_log_report r;
    uint8_t leaf[3][32];
    char *doc;
    cJSON *d;

    /* Three entries and a checkpoint over them: its root is the only hash
     * of H(0x01 || node(leaf 0, leaf 1) || leaf 2) the walk makes. */
    build_log(p, 3, 3);
    ls = read_lines(p);
    ck_assert_uint_eq(ls.n, 4);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pt_merkle_leaf(ls.l[i], strlen(ls.l[i]) - 1, NULL, leaf[i]),
                         PATIENT_OK);
    fail_hash_input[0] = 0x01;
    ck_assert_int_eq(pt_merkle_node(leaf[0], leaf[1], fail_hash_input + 1), PATIENT_OK);
    memcpy(fail_hash_input + 33, leaf[2], 32);
    r = verify(p, &pk, 0);
    ck_assert_int_eq(r.result, PATIENT_OK); /* the twin: unarmed, intact */
    fail_hash_armed = 1;
    r = verify(p, &pk, 0); /* asserts the returned code is the report's */
    fail_hash_armed = 0;
    ck_assert_int_eq(r.result, PATIENT_ERR_CRYPTO);
    ck_assert_int_eq(r.tamper, PATIENT_LOG_INTACT);
    ck_assert_ptr_nonnull(doc = patient_log_verify_json(1, paths, &r));
    ck_assert_ptr_nonnull(d = cJSON_Parse(doc));
    ck_assert_str_eq(cJSON_GetObjectItem(d, "result")->valuestring, "error");
    cJSON_Delete(d);
    free(doc);
    free_lines(&ls);
}
END_TEST

START_TEST(tamper_truncate_trailing)
{
    const char *p = tpath("t.log");
    lines ls;
    patient_log_report r;
    patient_log_verify_opts o = {0};

    build_log(p, 2500, 1000);
    r = verify(p, &pk, 0);
    ck_assert_int_eq(r.result, PATIENT_OK);
    o.pub = &pk;
    o.have_trusted = 1;
    o.trusted_size = r.last_checkpoint_seq;
    memcpy(o.trusted_root, r.last_checkpoint_root, 32);
    ck_assert_int_eq(patient_log_verify(p, &o, &r), PATIENT_OK);
    /* Cut cleanly after the checkpoint at seq 2001: by itself this log
     * looks complete... */
    ls = read_lines(p);
    size_t all = ls.n; /* restored before free_lines: the cut lines are still owned */
    ls.n = 2002;
    write_lines(p, &ls);
    r = verify(p, &pk, 0);
    ck_assert_int_eq(r.result, PATIENT_OK);
    /* ...but not against the checkpoint an auditor kept. */
    ck_assert_int_eq(patient_log_verify(p, &o, &r), PATIENT_ERR_LOG_CORRUPT);
    ck_assert_int_eq(r.tamper, PATIENT_LOG_TRUNCATED);
    /* Cut after a change entry: visible with require_final_checkpoint. */
    ls.n = 1900;
    write_lines(p, &ls);
    memset(&o, 0, sizeof o);
    o.pub = &pk;
    ck_assert_int_eq(patient_log_verify(p, &o, &r), PATIENT_OK);
    ck_assert_uint_eq(r.unsigned_tail, 899);
    o.require_final_checkpoint = 1;
    ck_assert_int_eq(patient_log_verify(p, &o, &r), PATIENT_ERR_LOG_CORRUPT);
    ck_assert_int_eq(r.tamper, PATIENT_LOG_TRUNCATED);
    /* A trusted root that differs: rewritten. */
    memset(&o, 0, sizeof o);
    o.have_trusted = 1;
    o.trusted_size = 1000;
    ck_assert_int_eq(patient_log_verify(p, &o, &r), PATIENT_ERR_LOG_CORRUPT);
    ck_assert_int_eq(r.tamper, PATIENT_LOG_REWRITTEN);
    ls.n = all;
    free_lines(&ls);
}
END_TEST

START_TEST(torn_tail_repaired)
{
    const char *p = tpath("torn.log");
    patient_log *log;
    patient_log_report r;
    struct stat st;
    uint64_t seq;
    char *j;

    /* 30 changes, then the writer "crashes" mid-append of entry 29. */
    ck_assert_int_eq(patient_log_open(p, sk, 1000, &log), PATIENT_OK);
    patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE);
    append_n(log, 0, 30);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(truncate(p, st.st_size - 200), 0);
    /* Verify on the raw file: truncated tail at seq 29, line 30. */
    r = verify(p, &pk, 1);
    ASSERT_TAMPER(r, PATIENT_ERR_LOG_CORRUPT, PATIENT_LOG_TRUNCATED, 29);
    ck_assert_uint_eq(r.line, 30);
    /* Forged twin: a handle that saw entry 29 committed refuses to go on
     * (the file lost an entry it had acknowledged). */
    j = make_jws(sk, 99);
    ck_assert_int_eq(patient_log_append_change(log, j, &seq), PATIENT_ERR_LOG_CORRUPT);
    ck_assert_int_eq(patient_log_close(log), PATIENT_ERR_LOG_CORRUPT);
    /* The restarted writer repairs: 0..28 intact, seq 29 records the repair. */
    ck_assert_int_eq(patient_log_open(p, sk, 1000, &log), PATIENT_OK);
    ck_assert_uint_ge(patient_log_repaired_bytes(log), 100);
    ck_assert_uint_eq(patient_log_size(log), 30);
    ck_assert_int_eq(patient_log_append_change(log, j, &seq), PATIENT_OK);
    ck_assert_uint_eq(seq, 30);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    free(j);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 30);
    ck_assert_uint_eq(r.events, 1);
    ck_assert_uint_eq(r.checkpoints, 1);
    /* A last line missing only its "\n" was not committed either. */
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(truncate(p, st.st_size - 1), 0);
    r = verify(p, &pk, 0);
    ASSERT_TAMPER(r, PATIENT_ERR_LOG_CORRUPT, PATIENT_LOG_TRUNCATED, 31);
    ck_assert_int_eq(patient_log_open(p, sk, 1000, &log), PATIENT_OK);
    ck_assert_uint_eq(patient_log_size(log), 32); /* checkpoint cut, repair event added */
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.events, 2);
}
END_TEST

START_TEST(torn_tail_garbage_line)
{
    const char *p = tpath("g.log");
    patient_log *log;
    FILE *f;
    patient_log_report r;

    build_log(p, 5, 0);
    f = fopen(p, "a");
    fputs("{\"seq\":6,\"prev\":\"00\n", f); /* a complete but broken last line */
    fclose(f);
    ck_assert_int_eq(patient_log_open(p, sk, 0, &log), PATIENT_OK);
    ck_assert_uint_eq(patient_log_repaired_bytes(log), 20);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    r = verify(p, &pk, 0);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    /* Forged twin: damage that is not a torn tail is refused, file kept. */
    f = fopen(p, "a");
    fputs("not json\n", f);
    fclose(f);
    {
        lines ls = read_lines(p);
        char *t = ls.l[2];
        ls.l[2] = ls.l[3];
        ls.l[3] = t;
        write_lines(p, &ls);
        free_lines(&ls);
    }
    ck_assert_int_eq(patient_log_open(p, sk, 0, &log), PATIENT_ERR_CHAIN);
}
END_TEST

START_TEST(deep_checks_entry_signatures)
{
    const char *p = tpath("deep.log");
    patient_log *log;
    patient_log_report r;
    char *j;

    ck_assert_int_eq(patient_log_open(p, sk, 0, &log), PATIENT_OK);
    patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE);
    append_n(log, 0, 3);
    j = make_jws(sk2, 3); /* a descriptor by another key */
    ck_assert_int_eq(patient_log_append_change(log, j, NULL), PATIENT_OK);
    free(j);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    r = verify(p, &pk, 0);
    ck_assert_int_eq(r.result, PATIENT_OK);
    r = verify(p, &pk, 1);
    ASSERT_TAMPER(r, PATIENT_ERR_KEY_MISMATCH, PATIENT_LOG_FORGED, 3);
}
END_TEST

/* ---- iterator ---------------------------------------------------------- */

START_TEST(iter_fields)
{
    const char *p = tpath("it.log");
    patient_log *log;
    patient_log_iter *it;
    const patient_log_entry *e;
    char kid[PATIENT_KEYID_HEX];
    unsigned n = 0;
    FILE *f;

    patient_keyid_hex(pk.id, kid);
    ck_assert_int_eq(patient_log_open(p, sk, 0, &log), PATIENT_OK);
    patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE);
    append_n(log, 0, 3);
    ck_assert_int_eq(patient_log_append_event(log, "body.too_large", "https://x.test/\"q\"", NULL,
                                              NULL),
                     PATIENT_OK);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    f = fopen(p, "a");
    fputs("{\"seq\":5,", f); /* torn tail: not returned */
    fclose(f);
    ck_assert_int_eq(patient_log_iter_open(p, &it), PATIENT_OK);
    for (;;) {
        ck_assert_int_eq(patient_log_iter_next(it, &e), PATIENT_OK);
        if (e == NULL)
            break;
        ck_assert_uint_eq(e->seq, n);
        ck_assert_uint_eq(e->line_no, n + 1);
        ck_assert_int_eq(e->raw[e->raw_len], 0);
        if (n < 3) {
            ck_assert_int_eq(e->kind, PATIENT_LOG_KIND_CHANGE);
            ck_assert_str_eq(e->by_name, "mbox \"test\"");
            ck_assert_str_eq(e->by_kid, kid);
            ck_assert_int_eq(e->hop, 1);
            ck_assert_uint_eq(e->n_edits, 2);
            ck_assert_str_eq(e->reasons[0], n == 0 ? "tracker.removed" : "ads.removed");
            ck_assert_str_eq(e->reasons[1], "banner.inserted");
            ck_assert_str_eq(e->rules[1], "notice");
            ck_assert_uint_eq(e->deleted, 100 + n);
            ck_assert_uint_eq(e->inserted, 5);
            ck_assert_int_eq((long long)e->time, 1795773600LL + n);
            ck_assert_ptr_nonnull(strstr(e->url, "page"));
        } else if (n == 3) {
            ck_assert_int_eq(e->kind, PATIENT_LOG_KIND_EVENT);
            ck_assert_str_eq(e->event, "body.too_large");
            ck_assert_str_eq(e->url, "https://x.test/\"q\"");
            ck_assert_ptr_null(e->detail);
        } else {
            ck_assert_int_eq(e->kind, PATIENT_LOG_KIND_CHECKPOINT);
            ck_assert_uint_eq(e->tree_size, 4);
        }
        n++;
    }
    ck_assert_uint_eq(n, 5);
    patient_log_iter_close(it);
    /* Forged twin: a malformed line in the middle. */
    {
        lines ls = read_lines(p);
        free(ls.l[1]);
        ls.l[1] = strdup("{\"seq\":1}\n");
        write_lines(p, &ls);
        free_lines(&ls);
    }
    ck_assert_int_eq(patient_log_iter_open(p, &it), PATIENT_OK);
    ck_assert_int_eq(patient_log_iter_next(it, &e), PATIENT_OK);
    ck_assert_int_eq(patient_log_iter_next(it, &e), PATIENT_ERR_LOG_CORRUPT);
    ck_assert_uint_eq(patient_log_iter_line(it), 2);
    patient_log_iter_close(it);
}
END_TEST


/* The entry scanner: escapes, unknown members, and strict refusals. */
static patient_err
iter_one(const char *path, const char *line, const patient_log_entry **e, patient_log_iter **it)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(line, f);
    fputc('\n', f);
    fclose(f);
    ck_assert_int_eq(patient_log_iter_open(path, it), PATIENT_OK);
    return patient_log_iter_next(*it, e);
}

START_TEST(iter_scanner)
{
    const char *p = tpath("scan.log");
    const patient_log_entry *e;
    patient_log_iter *it;
    static const char *bad[] = {
        /* lone surrogate, \u0000, raw control byte in a long string,
         * duplicate member, trailing garbage, leading zero, bad escape */
        "{\"seq\":0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\\ud800\"}",
        "{\"seq\":0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\\u0000b\"}",
        "{\"seq\":0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"abcdefghijklmnop\x01qrstuvwxyz\"}",
        "{\"seq\":0,\"seq\":0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\"}",
        "{\"seq\":0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\"} x",
        "{\"seq\":01,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\"}",
        "{\"seq\":0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\\x\"}",
        "{\"seq\":0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-02-30T00:00:00Z\",\"event\":\"a\"}",
        /* a time in a command line's "@EPOCH" form: the log's is RFC 3339 */
        "{\"seq\":0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"@0\",\"event\":\"a\"}",
        "{\"seq\":\"0\",\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\"}",
        /* integers are integer literals: not -0, 0.0 or 0e0 */
        "{\"seq\":-0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\"}",
        "{\"seq\":0.0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\"}",
        "{\"seq\":0e0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"a\"}",
    };
    char line[512];
    const char *zeros = "0000000000000000000000000000000000000000000000000000000000000000";

    snprintf(line, sizeof line,
             "{ \"x\" : [1, -2.5e3, true, null, {\"y\": \"z\"}], \"seq\":0,\"prev\":\"%s\","
             "\"kind\":\"event\",\"time\":\"2024-02-29T23:59:59Z\",\"event\":\"e\","
             "\"url\":\"https:\\/\\/x.test\\/caf\\u00e9\\ud83d\\ude00 \\\"long string here\\\"\","
             "\"detail\":null}",
             zeros);
    /* detail must be a string when present */
    ck_assert_int_eq(iter_one(p, line, &e, &it), PATIENT_ERR_LOG_CORRUPT);
    patient_log_iter_close(it);
    {
        char *q = strstr(line, ",\"detail\":null");
        q[0] = '}';
        q[1] = 0;
    }
    ck_assert_int_eq(iter_one(p, line, &e, &it), PATIENT_OK);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->url, "https://x.test/caf\xc3\xa9\xf0\x9f\x98\x80 \"long string here\"");
    ck_assert_int_eq((long long)e->time, 1709251199LL);
    ck_assert_int_eq(e->raw_len, strlen(line));
    patient_log_iter_close(it);
    /* RFC 3339 with a fraction reads too (its "@EPOCH" twin below does not) */
    {
        char *q = strstr(line, "23:59:59Z");
        memmove(q + 10, q + 8, strlen(q + 8) + 1);
        memcpy(q + 8, ".5", 2);
    }
    ck_assert_int_eq(iter_one(p, line, &e, &it), PATIENT_OK);
    ck_assert_int_eq((long long)e->time, 1709251199LL);
    patient_log_iter_close(it);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *pct = strstr(bad[i], "%s");
        snprintf(line, sizeof line, "%.*s%s%s", (int)(pct - bad[i]), bad[i], zeros, pct + 2);
        ck_assert_msg(iter_one(p, line, &e, &it) == PATIENT_ERR_LOG_CORRUPT, "bad[%zu]", i);
        patient_log_iter_close(it);
    }
}
END_TEST

/* An event line of seq 0 whose event is `event`, with a member "x" of
 * value x when x is not NULL: its length. */
static size_t
event_line(char *line, size_t cap, const char *event, const char *x)
{
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    int n = snprintf(line, cap,
                     "{\"seq\":0,\"prev\":\"%s\",\"kind\":\"event\",\"time\":\"2026-01-01T00:00:00Z\","
                     "\"event\":\"%s\"%s%s%s}",
                     zeros, event, x ? ",\"x\":\"" : "", x ? x : "", x ? "\"" : "");

    ck_assert(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* Every offset of one string reader (pt_scan_wide): see below. */
static void
scan_offsets(pentry *e)
{
    char line[1024], str[256];

    for (size_t at = 0; at < 200; at++) {
        size_t n;
        /* an escape at `at` */
        memset(str, 'a', 202);
        memcpy(str + at, "\\n", 2);
        str[202] = 0;
        n = event_line(line, sizeof line, str, NULL);
        ck_assert_int_eq(pentry_parse((const uint8_t *)line, n, e), PATIENT_OK);
        ck_assert_uint_eq(strlen(e->event), 201);
        ck_assert_int_eq(e->event[at], '\n');
        ck_assert_int_eq(e->event[at + 1], 'a');
        /* the string ends at `at` */
        memset(str, 'b', at);
        str[at] = 0;
        n = event_line(line, sizeof line, str, str);
        ck_assert_int_eq(pentry_parse((const uint8_t *)line, n, e), PATIENT_OK);
        ck_assert_uint_eq(strlen(e->event), at);
        /* forged twin: the line ends inside its last string, `at` bytes
         * into it (no closing quote; nothing after the line is read) */
        ck_assert_int_eq(pentry_parse((const uint8_t *)line, n - 2, e), PATIENT_ERR_JSON);
        /* bytes that pass, at `at` */
        for (const char *ok = " ~\x7f\xc3"; *ok; ok++) {
            memset(str, 'c', 200);
            str[at] = *ok;
            str[200] = 0;
            n = event_line(line, sizeof line, str, NULL);
            ck_assert_int_eq(pentry_parse((const uint8_t *)line, n, e), PATIENT_OK);
            ck_assert_int_eq(e->event[at], *ok);
        }
        /* forged twins: a raw control byte at `at`, 0x01 and 0x1f */
        for (const char *bad = "\x01\x1f\t"; *bad; bad++) {
            memset(str, 'd', 200);
            str[at] = *bad;
            str[200] = 0;
            n = event_line(line, sizeof line, str, NULL);
            ck_assert_int_eq(pentry_parse((const uint8_t *)line, n, e), PATIENT_ERR_JSON);
        }
    }
}

/* The scanner's string fast paths read 64 bytes at a time (AVX-512,
 * where the CPU has it) or 32 (SSE2), both tried: whatever ends or
 * interrupts a string (its quote, an escape, a raw control byte) is found
 * at every offset of three blocks and of the tail, and bytes 0x20 and up,
 * 0x7f and UTF-8 included, pass; a string the line cuts is refused at
 * every length. Member names are matched whole, escaped or not, and so are
 * the values of kind, prev and by's member names. */
START_TEST(scan_string_offsets)
{
    const char *zeros = "0000000000000000000000000000000000000000000000000000000000000000";
    pentry e;
    char line[512];

    memset(&e, 0, sizeof e);
    pt_scan_wide = 0;
    scan_offsets(&e);
    pt_scan_wide = -1;
    if (!pt_cpu_avx512())
        fprintf(stderr, "scan_string_offsets: no AVX-512 here; the 64-byte path untested\n");
    scan_offsets(&e);
    /* names: a longer or shorter name is another member; an escaped
     * "seq" is seq, so a second one is a duplicate */
    {
        size_t n = (size_t)snprintf(line, sizeof line,
                                    "{\"seq\":0,\"sequence\":7,\"se\":1,\"prev\":\"%s\",\"kind\":"
                                    "\"event\",\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"e\"}",
                                    zeros);
        ck_assert_int_eq(pentry_parse((const uint8_t *)line, n, &e), PATIENT_OK);
        ck_assert_uint_eq(e.seq, 0);
        n = (size_t)snprintf(line, sizeof line,
                             "{\"seq\":0,\"s\\u0065q\":1,\"prev\":\"%s\",\"kind\":\"event\",\"time\":"
                             "\"2026-01-01T00:00:00Z\",\"event\":\"e\"}",
                             zeros);
        ck_assert_int_eq(pentry_parse((const uint8_t *)line, n, &e), PATIENT_ERR_JSON);
        ck_assert_str_eq(e.why, "a member appears twice");
    }
    /* values matched by length and bytes: a kind one byte longer or
     * shorter than "change" or "event" is unknown, a prev of 63 or 65 hex
     * digits is not a hash, and by's "names" is not its "name" */
    {
        static const struct {
            const char *kind, *prev_tail, *name_key;
            patient_err want;
        } cases[] = {
            {"change", "", "name", PATIENT_OK},
            {"changes", "", "name", PATIENT_ERR_UNSUPPORTED},
            {"chang", "", "name", PATIENT_ERR_UNSUPPORTED},
            {"event", "", "name", PATIENT_OK},
            {"events", "", "name", PATIENT_ERR_UNSUPPORTED},
            {"even", "", "name", PATIENT_ERR_UNSUPPORTED},
            {"change", "0", "name", PATIENT_ERR_LOG_CORRUPT},
            {"change", "-", "name", PATIENT_ERR_LOG_CORRUPT},
            {"change", "", "names", PATIENT_ERR_LOG_CORRUPT},
        };
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            /* "-" cuts prev to 63 digits, "0" makes it 65 */
            int cut = strcmp(cases[k].prev_tail, "-") == 0;
            int n = snprintf(line, sizeof line,
                             "{\"seq\":0,\"prev\":\"%.*s%s\",\"kind\":\"%s\",\"time\":"
                             "\"2026-01-01T00:00:00Z\",\"event\":\"e\",\"url\":\"https://a/\","
                             "\"hop\":0,\"by\":{\"%s\":\"m\",\"kid\":\"k\"},\"reasons\":[\"r\"],"
                             "\"rules\":[\"u\"],\"deleted\":0,\"inserted\":0,\"jws\":\"j\"}",
                             cut ? 63 : 64, zeros, cut ? "" : cases[k].prev_tail, cases[k].kind,
                             cases[k].name_key);
            ck_assert(n > 0 && (size_t)n < sizeof line);
            ck_assert_msg(pentry_parse((const uint8_t *)line, (size_t)n, &e) == cases[k].want,
                          "case %zu: %s", k, line);
        }
    }
    pentry_free(&e);
}
END_TEST

/* ---- inclusion proofs from a log -------------------------------------- */

START_TEST(log_proofs)
{
    const char *p = tpath("pr.log");
    char *proof;
    lines ls;
    uint64_t seqs[] = {0, 1, 17, 999, 1000, 1001, 2001, 2499, 2501};
    patient_log *log;

    build_log(p, 2500, 1000);
    ls = read_lines(p);
    for (size_t k = 0; k < sizeof seqs / sizeof *seqs; k++) {
        uint64_t s = seqs[k];
        ck_assert_int_eq(patient_log_proof(p, s, &proof, NULL, NULL), PATIENT_OK);
        ck_assert_int_eq(
            patient_log_proof_verify(proof, strlen(proof), ls.l[s], strlen(ls.l[s]), &pk, NULL),
            PATIENT_OK);
        /* Forged twins: another entry's line, an edited line, wrong key. */
        ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof), ls.l[s + 1],
                                                  strlen(ls.l[s + 1]), &pk, NULL),
                         PATIENT_ERR_ARG);
        {
            char *edited = strdup(ls.l[s]);
            char *q = strstr(edited, "\"time\":\"2");
            q[8] = '3';
            ck_assert_int_eq(
                patient_log_proof_verify(proof, strlen(proof), edited, strlen(edited), &pk, NULL),
                PATIENT_ERR_HASH);
            free(edited);
        }
        ck_assert_int_eq(
            patient_log_proof_verify(proof, strlen(proof), ls.l[s], strlen(ls.l[s]), &pk2, NULL),
            PATIENT_ERR_KEY_MISMATCH);
        free(proof);
    }
    /* Not yet covered by a checkpoint. */
    ck_assert_int_eq(patient_log_open(p, sk, 1000, &log), PATIENT_OK);
    patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE);
    append_n(log, 0, 1);
    ck_assert_int_eq(patient_log_proof(p, 2503, &proof, NULL, NULL), PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    ck_assert_int_eq(patient_log_proof(p, 2503, &proof, NULL, NULL), PATIENT_OK);
    free(proof);
    free_lines(&ls);
}
END_TEST

/* What a proof claims, read by the verifier's reader: its tree head; a
 * proof malformed for the verifier (tree_size a string, a path hash that is
 * not 32 bytes) claims nothing, with the verifier's code. */
START_TEST(log_proof_head)
{
    const char *p = tpath("ph.log");
    char *proof, *forged, *q;
    patient_log_proof_head h;
    lines ls;

    build_log(p, 17, 0);
    ls = read_lines(p);
    ck_assert_int_eq(patient_log_proof(p, 5, &proof, NULL, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_log_proof_head_read(proof, strlen(proof), &h), PATIENT_OK);
    ck_assert_int_eq(h.leaf_index, 5);
    ck_assert_int_eq(h.tree_size, 17);
    ck_assert_int_eq(strlen(h.log_id), 64);
    ck_assert_ptr_nonnull(q = strstr(proof, "\"root\":\""));
    ck_assert(strncmp(q + 8, h.root, strlen(h.root)) == 0 && q[8 + strlen(h.root)] == '"');
    patient_log_proof_head_free(&h);
    patient_log_proof_head_free(&h); /* a zeroed head is fine */
    forged = tu_replace1(proof, "\"tree_size\":17", "\"tree_size\":\"17\"");
    ck_assert_int_eq(patient_log_proof_head_read(forged, strlen(forged), &h), PATIENT_ERR_PARSE);
    ck_assert_int_eq(
        patient_log_proof_verify(forged, strlen(forged), ls.l[5], strlen(ls.l[5]), &pk, NULL),
        PATIENT_ERR_PARSE);
    ck_assert(h.leaf_index == 0 && h.tree_size == 0 && h.log_id == NULL && h.root == NULL);
    free(forged);
    forged = tu_replace1(proof, "\"path\":[\"", "\"path\":[\"AAAA");
    ck_assert_int_eq(patient_log_proof_head_read(forged, strlen(forged), &h), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(h.root);
    free(forged);
    ck_assert_int_eq(patient_log_proof_head_read(NULL, 0, &h), PATIENT_ERR_ARG);
    free(proof);
    free_lines(&ls);
}
END_TEST

/* A change entry's upstream TLS split as the writer joined it; its twins
 * (not recorded, not the writer's form) are told apart. */
START_TEST(log_entry_tls)
{
    patient_log_entry e;
    patient_log_tls t;

    memset(&e, 0, sizeof e);
    e.kind = PATIENT_LOG_KIND_CHANGE;
    e.tls = "TLSv1.3 TLS_AES_256_GCM_SHA384 verified";
    ck_assert_int_eq(patient_log_entry_tls(&e, &t), PATIENT_OK);
    ck_assert(t.version_len == 7 && strncmp(t.version, "TLSv1.3", 7) == 0);
    ck_assert(t.verified == 1 && t.plaintext == 0);
    e.tls = "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 unverified";
    ck_assert_int_eq(patient_log_entry_tls(&e, &t), PATIENT_OK);
    ck_assert(t.version_len == 7 && t.verified == 0 && t.plaintext == 0);
    e.tls = "none";
    ck_assert_int_eq(patient_log_entry_tls(&e, &t), PATIENT_OK);
    ck_assert(t.plaintext == 1 && t.verified == 0);
    e.tls = "TLSv1.3";
    ck_assert_int_eq(patient_log_entry_tls(&e, &t), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(t.version);
    e.tls = NULL;
    ck_assert_int_eq(patient_log_entry_tls(&e, &t), PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(patient_log_entry_tls(NULL, &t), PATIENT_ERR_ARG);
}
END_TEST

START_TEST(log_proof_path_tampered)
{
    const char *p = tpath("pt.log");
    char *proof, *q;
    lines ls;

    build_log(p, 17, 0);
    ls = read_lines(p);
    for (uint64_t s = 0; s < 17; s++) {
        ck_assert_int_eq(patient_log_proof(p, s, &proof, NULL, NULL), PATIENT_OK);
        ck_assert_int_eq(
            patient_log_proof_verify(proof, strlen(proof), ls.l[s], strlen(ls.l[s]), &pk, NULL),
            PATIENT_OK);
        q = strstr(proof, "\"path\":[\"") + 9;
        *q = *q == 'A' ? 'B' : 'A';
        ck_assert_int_eq(
            patient_log_proof_verify(proof, strlen(proof), ls.l[s], strlen(ls.l[s]), &pk, NULL),
            PATIENT_ERR_HASH);
        free(proof);
    }
    free_lines(&ls);
}
END_TEST

/* ---- concurrency ------------------------------------------------------- */

struct th {
    const char *path;
    patient_log *log;
    unsigned base;
};

static void *
thread_appender(void *arg)
{
    struct th *t = arg;
    for (unsigned i = 0; i < 500; i++) {
        char *j = make_jws(sk, t->base + i);
        if (patient_log_append_change(t->log, j, NULL) != PATIENT_OK)
            abort();
        free(j);
    }
    return NULL;
}

START_TEST(concurrent_threads_and_process)
{
    const char *p = tpath("c.log");
    patient_log *log;
    pthread_t a, b;
    struct th ta = {p, NULL, 0}, tb = {p, NULL, 1000};
    pid_t pid;
    int status;
    patient_log_report r;

    build_log(p, 0, 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        patient_log *cl;
        if (patient_log_open(p, sk, 100, &cl) != PATIENT_OK)
            _exit(2);
        patient_log_set_sync(cl, PATIENT_LOG_SYNC_NONE);
        for (unsigned i = 0; i < 500; i++) {
            char *j = make_jws(sk, 5000 + i);
            if (patient_log_append_change(cl, j, NULL) != PATIENT_OK)
                _exit(3);
            free(j);
        }
        _exit(patient_log_close(cl) == PATIENT_OK ? 0 : 4);
    }
    ck_assert_int_eq(patient_log_open(p, sk, 100, &log), PATIENT_OK);
    patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE);
    ta.log = tb.log = log;
    pthread_create(&a, NULL, thread_appender, &ta);
    pthread_create(&b, NULL, thread_appender, &tb);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WIFEXITED(status) && WEXITSTATUS(status) == 0, 1);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 1500);
    ck_assert_uint_ge(r.checkpoints, 15);
    ck_assert_uint_eq(r.unsigned_tail, 0);
}
END_TEST

START_TEST(sync_each_default)
{
    const char *p = tpath("sync.log");
    patient_log *log;
    patient_log_report r;

    ck_assert_int_eq(patient_log_open(p, sk, 3, &log), PATIENT_OK);
    append_n(log, 0, 7);
    ck_assert_int_eq(patient_log_set_sync(log, 9), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.checkpoints, 3); /* after 3, 6 and close */
}
END_TEST

/* Group commit under the default PATIENT_LOG_SYNC_EACH: 8 threads and a
 * second process append at once; every append returned acknowledged, the
 * log verifies with all of them, and the handle's syncs never exceed its
 * appends (fewer when threads overlapped, which the bench measures; this
 * test does not depend on timing). */
static void *
thread_appender_100(void *arg)
{
    struct th *t = arg;
    for (unsigned i = 0; i < 100; i++) {
        char *j = make_jws(sk, t->base + i);
        if (patient_log_append_change(t->log, j, NULL) != PATIENT_OK)
            abort();
        free(j);
    }
    return NULL;
}

START_TEST(group_commit_threads_and_process)
{
    const char *p = tpath("gc.log");
    patient_log *log;
    pthread_t t[8];
    struct th a[8];
    uint64_t appends = 0, syncs = 0;
    pid_t pid;
    int status;
    patient_log_report r;

    build_log(p, 0, 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        patient_log *cl;
        if (patient_log_open(p, sk, 100, &cl) != PATIENT_OK)
            _exit(2);
        for (unsigned i = 0; i < 100; i++) {
            char *j = make_jws(sk, 9000 + i);
            if (patient_log_append_change(cl, j, NULL) != PATIENT_OK)
                _exit(3);
            free(j);
        }
        _exit(patient_log_close(cl) == PATIENT_OK ? 0 : 4);
    }
    ck_assert_int_eq(patient_log_open(p, sk, 100, &log), PATIENT_OK);
    for (unsigned i = 0; i < 8; i++) {
        a[i] = (struct th){p, log, 1000 * (i + 1)};
        ck_assert_int_eq(pthread_create(&t[i], NULL, thread_appender_100, &a[i]), 0);
    }
    for (unsigned i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    patient_log_stats(log, &appends, &syncs);
    ck_assert_uint_ge(appends, 800);
    ck_assert_uint_ge(syncs, 1);
    ck_assert_uint_le(syncs, appends);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WIFEXITED(status) && WEXITSTATUS(status) == 0, 1);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    r = verify(p, &pk, 1);
    ck_assert_msg(r.result == PATIENT_OK, "%s", r.message);
    ck_assert_uint_eq(r.changes, 900);
    ck_assert_uint_eq(r.unsigned_tail, 0);
}
END_TEST

/* Whether the kernel's first "flags" line names flag a (and b, unless
 * NULL): 1 or 0, -1 when /proc/cpuinfo says nothing. */
static int
cpuinfo_has(const char *a, const char *b)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    int has = -1;

    while (f && has < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0)
            has = strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL);
    if (f)
        fclose(f);
    return has;
}

/* Both hashes of a line at once: the same bytes as OpenSSL's two calls
 * for every length across the first block boundaries and a few long
 * lines, on the accelerated path (when the CPU has it) and the portable
 * one; a changed byte changes both. */
START_TEST(sha256_pair_matches_openssl)
{
    static uint8_t buf[4200 + 8]; /* lines start up to 7 bytes in */
    uint8_t chain[32], leaf[32], want_c[32], want_l[32], c2[32], l2[32];
    size_t lens[] = {1000, 1866, 1867, 2048, 4095, 4096, 4199};

    /* The detection agrees with the kernel's view of the CPU, so on a
     * CPU with the extensions the accelerated path is the one tested
     * below; without them both calls are OpenSSL's, and the test says so. */
    {
        int ni = cpuinfo_has(" sha_ni", NULL);
        if (ni >= 0)
            ck_assert_int_eq(pt_sha256_pair_accel(), ni);
        if (!pt_sha256_pair_accel())
            fprintf(stderr, "sha256_pair: no SHA extensions here; accelerated path untested\n");
    }
    randombytes_buf(buf, sizeof buf);
    for (size_t n = 0; n < 300 + sizeof lens / sizeof *lens; n++) {
        size_t len = n < 300 ? n : lens[n - 300];
        /* the line at an odd address too: the blocks are read unaligned */
        const uint8_t *line = buf + (n & 7);
        ck_assert_int_eq(patient_sha256(line, len, want_c), PATIENT_OK);
        ck_assert_int_eq(pt_merkle_leaf(line, len, NULL, want_l), PATIENT_OK);
        ck_assert_int_eq(pt_sha256_pair(line, len, chain, leaf), PATIENT_OK);
        ck_assert_mem_eq(chain, want_c, 32);
        ck_assert_mem_eq(leaf, want_l, 32);
        ck_assert_int_eq(pt_sha256_pair_impl(0, line, len, c2, l2), PATIENT_OK);
        ck_assert_mem_eq(c2, want_c, 32);
        ck_assert_mem_eq(l2, want_l, 32);
    }
    /* forged twin: one flipped bit in the last byte changes both */
    ck_assert_int_eq(pt_sha256_pair(buf, 1867, chain, leaf), PATIENT_OK);
    buf[1866] ^= 1;
    ck_assert_int_eq(pt_sha256_pair(buf, 1867, c2, l2), PATIENT_OK);
    ck_assert_mem_ne(chain, c2, 32);
    ck_assert_mem_ne(leaf, l2, 32);
    ck_assert_int_eq(pt_sha256_pair(NULL, 0, chain, leaf), PATIENT_OK);
    ck_assert_int_eq(patient_sha256("", 0, want_c), PATIENT_OK);
    ck_assert_mem_eq(chain, want_c, 32);
}
END_TEST

/* Both hashes of eight lines at once (pt_sha256_pair8, AVX-512): the same
 * bytes as OpenSSL for every length across the first block boundaries,
 * lines of unequal length in one group (lanes masked as they end), eight
 * long lines a block or more apart (lanes masked for several blocks, up to
 * the spread the grouping accepts), groups of 1-8 lines, unaligned lines;
 * lengths too unequal are declined (-1),
 * never hashed wrong. Where the CPU has no AVX-512 every call declines
 * and the test says so. */
START_TEST(sha256_pair8_matches_openssl)
{
    static uint8_t buf[8 * 4300 + 512]; /* the widest group's last line ends past 8 * 4300 */
    uint8_t chain[8][32], leaf[8][32], want[32];
    uint8_t *cp[8], *lp[8];
    const uint8_t *line[8];
    size_t len[8];
    int ran = 0;

    {
        int x = cpuinfo_has(" avx512f", " avx512bw");
        if (x > 0)
            x = cpuinfo_has(" avx2", NULL);
        if (x >= 0)
            ck_assert_int_eq(pt_cpu_avx512(), x);
        if (!pt_cpu_avx512())
            fprintf(stderr, "sha256_pair8: no AVX-512 here; the 16-lane path untested\n");
    }
    randombytes_buf(buf, sizeof buf);
    for (unsigned i = 0; i < 8; i++) {
        cp[i] = chain[i];
        lp[i] = leaf[i];
    }
    /* g: one group a round; lengths n, n+1, .. (unequal within a block
     * or two), then long lines; n lines from 1 to 8; then eight lines
     * step bytes apart, the last 7 or 8 blocks past the first, up to the
     * most the grouping takes (hi / 64 <= lo / 64 + lo / 512 + 1: 3200
     * beside 3648 is at it, 4096 beside 4600 within it) */
    for (size_t g = 0; g < 300 + 6 + 6; g++) {
        static const size_t longer[] = {1000, 1866, 1867, 2048, 4095, 4199};
        static const size_t spread[][2] = {{3200, 64}, {3500, 64}, {4095, 64},
                                           {4096, 64}, {4096, 72}, {4100, 80}};
        unsigned n = g < 306 ? 1 + (unsigned)(g % 8) : 8;
        for (unsigned i = 0; i < n; i++) {
            len[i] = g < 300   ? g + i * (g % 3)
                     : g < 306 ? longer[g - 300] + i
                               : spread[g - 306][0] + i * spread[g - 306][1];
            line[i] = buf + i * 4300 + ((g + i) & 7);
        }
        if (pt_sha256_pair8(line, len, n, cp, lp) != 0) {
            ck_assert_int_eq(pt_cpu_avx512(), 0);
            continue;
        }
        ran++;
        for (unsigned i = 0; i < n; i++) {
            ck_assert_int_eq(patient_sha256(line[i], len[i], want), PATIENT_OK);
            ck_assert_mem_eq(chain[i], want, 32);
            ck_assert_int_eq(pt_merkle_leaf(line[i], len[i], NULL, want), PATIENT_OK);
            ck_assert_mem_eq(leaf[i], want, 32);
        }
    }
    ck_assert_int_eq(ran > 0, pt_cpu_avx512());
    /* too unequal to share a loop (a short line beside a long one): declined */
    line[0] = buf;
    len[0] = 10;
    line[1] = buf + 4300;
    len[1] = 4000;
    ck_assert_int_eq(pt_sha256_pair8(line, len, 2, cp, lp), -1);
    /* forged twin: one flipped bit in line 3 changes its hashes only */
    if (pt_cpu_avx512()) {
        uint8_t c2[8][32], l2[8][32];
        uint8_t *cq[8], *lq[8];
        for (unsigned i = 0; i < 8; i++) {
            line[i] = buf + i * 4300;
            len[i] = 1867;
            cq[i] = c2[i];
            lq[i] = l2[i];
        }
        ck_assert_int_eq(pt_sha256_pair8(line, len, 8, cp, lp), 0);
        buf[3 * 4300 + 1866] ^= 1;
        ck_assert_int_eq(pt_sha256_pair8(line, len, 8, cq, lq), 0);
        for (unsigned i = 0; i < 8; i++) {
            ck_assert_int_eq(memcmp(chain[i], c2[i], 32) != 0, i == 3);
            ck_assert_int_eq(memcmp(leaf[i], l2[i], 32) != 0, i == 3);
        }
    }
}
END_TEST

static Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc;

    tc = tcase_create("merkle");
    /* (65,536 leaves in merkle_frontier_tile_roots: well under a second
     * idle, but the sanitizer pass runs on a loaded machine) */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, merkle_known_roots);
    tcase_add_test(tc, merkle_frontier_matches_reference);
    tcase_add_test(tc, merkle_frontier_tile_roots);
    tcase_add_test(tc, merkle_wide_matches_reference);
    tcase_add_test(tc, merkle_inclusion_all_sizes);
    tcase_add_test(tc, sha256_pair_matches_openssl);
    tcase_add_test(tc, sha256_pair8_matches_openssl);
    suite_add_tcase(s, tc);

    tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, log_chain_2500);
    tcase_add_test(tc, edits_at_the_cap);
    tcase_add_test(tc, line_at_the_cap);
    tcase_add_test(tc, entry_len_is_the_line);
    tcase_add_test(tc, json_string_writer);
    tcase_add_test(tc, log_reopen_continues_chain);
    tcase_add_test(tc, append_hop_same_entry);
    tcase_add_test(tc, append_hop_deferred_sync);
    tcase_add_test(tc, append_hop_sync_ahead);
    tcase_add_test(tc, sync_ahead_while_syncing);
    tcase_add_test(tc, close_joins_busy_syncer);
    tcase_add_test(tc, log_refuses_symlink);
    tcase_add_test(tc, log_file_mode_0600);
    tcase_add_test(tc, sync_each_default);
    suite_add_tcase(s, tc);

    tc = tcase_create("tamper");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tamper_edit_byte);
    tcase_add_test(tc, tamper_across_batches);
    tcase_add_test(tc, tamper_edit_prev_field);
    tcase_add_test(tc, tamper_seq_not_integer_literal);
    tcase_add_test(tc, tamper_rewritten_and_rechained);
    tcase_add_test(tc, tamper_remove_line);
    tcase_add_test(tc, tamper_swap_lines);
    tcase_add_test(tc, tamper_insert_duplicate);
    tcase_add_test(tc, tamper_forged_checkpoint_signature);
    tcase_add_test(tc, tamper_checkpoint_root_wrong);
    tcase_add_test(tc, checkpoint_root_hash_fails);
    tcase_add_test(tc, tamper_truncate_trailing);
    tcase_add_test(tc, deep_checks_entry_signatures);
    suite_add_tcase(s, tc);

    tc = tcase_create("torn");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, torn_tail_repaired);
    tcase_add_test(tc, torn_tail_garbage_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("read");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, iter_fields);
    tcase_add_test(tc, iter_scanner);
    tcase_add_test(tc, scan_string_offsets);
    tcase_add_test(tc, log_proofs);
    tcase_add_test(tc, log_proof_path_tampered);
    tcase_add_test(tc, log_proof_head);
    tcase_add_test(tc, log_entry_tls);
    tcase_add_test(tc, checkpoint_sig_read);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, concurrent_threads_and_process);
    tcase_add_test(tc, group_commit_threads_and_process);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int failed;

    if (sodium_init() < 0)
        return 1;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
