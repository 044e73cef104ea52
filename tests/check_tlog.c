/* Transparency log: consistency proofs (RFC 9162 §2.1.4) against a
 * reference built from leaves, signed checkpoint notes (C2SP signed-note,
 * tlog-checkpoint) with their forged twins, tile paths, and publishing by
 * the writer versus publishing from the file. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include <patient/patient.h>
#include "merkle.h"
#include "tlog_int.h"
#include "util.h"
#include "testutil.h"

static char tmpdir[256];
static patient_seckey *sk, *sk2;
static patient_pubkey pk, pk2;

static void
setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "check_tlog");
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

#define NL 70
static uint8_t leaves[NL][32];

static void
make_leaves(void)
{
    for (unsigned i = 0; i < NL; i++) {
        char b[16];
        snprintf(b, sizeof b, "leaf %u", i);
        ck_assert_int_eq(pt_merkle_leaf(b, strlen(b), NULL, leaves[i]), PATIENT_OK);
    }
}

/* RFC 9162 §2.1.4.1 SUBPROOF, written recursively as the RFC does: the
 * reference the iterative ranges must agree with. */
static void
subproof(uint64_t m, const uint8_t (*d)[32], uint64_t n, int b, uint8_t (*out)[32], size_t *c)
{
    uint64_t k = 1;

    if (m == n) {
        if (!b)
            ck_assert_int_eq(pt_merkle_root(d, n, out[(*c)++]), PATIENT_OK);
        return;
    }
    while (k < n - k)
        k <<= 1;
    if (m <= k) {
        subproof(m, d, k, b, out, c);
        ck_assert_int_eq(pt_merkle_root(d + k, n - k, out[(*c)++]), PATIENT_OK);
    } else {
        subproof(m - k, d + k, n - k, 0, out, c);
        ck_assert_int_eq(pt_merkle_root(d, k, out[(*c)++]), PATIENT_OK);
    }
}

START_TEST(consistency_all_pairs)
{
    uint8_t proof[PT_MERKLE_MAX_DEPTH][32], ref[PT_MERKLE_MAX_DEPTH][32], r1[32], r2[32], bad[32];
    size_t count, rc;

    make_leaves();
    for (uint64_t n = 1; n <= NL; n++)
        for (uint64_t m = 1; m <= n; m++) {
            ck_assert_int_eq(pt_merkle_consistency(leaves, n, m, proof, &count), PATIENT_OK);
            rc = 0;
            if (m < n)
                subproof(m, leaves, n, 1, ref, &rc);
            ck_assert_uint_eq(count, rc);
            for (size_t i = 0; i < count; i++)
                ck_assert_mem_eq(proof[i], ref[i], 32);
            ck_assert_int_eq(pt_merkle_root(leaves, m, r1), PATIENT_OK);
            ck_assert_int_eq(pt_merkle_root(leaves, n, r2), PATIENT_OK);
            ck_assert_int_eq(pt_merkle_consistency_verify(m, n, r1, r2,
                                                          (const uint8_t(*)[32])proof, count),
                             PATIENT_OK);
            /* Forged twins: a changed hash, a wrong old root, a wrong
             * size, a proof one hash short. */
            if (count) {
                proof[count - 1][3] ^= 1;
                ck_assert_int_eq(pt_merkle_consistency_verify(
                                     m, n, r1, r2, (const uint8_t(*)[32])proof, count),
                                 PATIENT_ERR_HASH);
                proof[count - 1][3] ^= 1;
                ck_assert_int_eq(pt_merkle_consistency_verify(
                                     m, n, r1, r2, (const uint8_t(*)[32])proof, count - 1),
                                 PATIENT_ERR_HASH);
            }
            memcpy(bad, r1, 32);
            bad[0] ^= 0x80;
            ck_assert_int_eq(
                pt_merkle_consistency_verify(m, n, bad, r2, (const uint8_t(*)[32])proof, count),
                PATIENT_ERR_HASH);
            memcpy(bad, r2, 32);
            bad[31] ^= 1;
            ck_assert_int_eq(
                pt_merkle_consistency_verify(m, n, r1, bad, (const uint8_t(*)[32])proof, count),
                PATIENT_ERR_HASH);
        }
    ck_assert_int_eq(pt_merkle_consistency_ranges(5, 4, NULL, NULL, &count), PATIENT_ERR_ARG);
}
END_TEST

static void
gen_log(const char *path, unsigned n, unsigned every, const char *pubdir)
{
    patient_log *log = NULL;
    char d[32];

    ck_assert_int_eq(patient_log_open(path, sk, every, &log), PATIENT_OK);
    ck_assert_int_eq(patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE), PATIENT_OK);
    if (pubdir)
        ck_assert_int_eq(patient_log_set_publish(log, pubdir, NULL), PATIENT_OK);
    for (unsigned i = 0; i < n; i++) {
        snprintf(d, sizeof d, "e%u", i);
        ck_assert_int_eq(patient_log_append_event(log, "test.entry", NULL, d, NULL), PATIENT_OK);
    }
    ck_assert_int_eq(patient_log_publish_error(log), PATIENT_OK);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
}

START_TEST(log_consistency_file)
{
    patient_consistency p, q;
    patient_log_report r;
    patient_log_verify_opts vo;
    char *json = NULL;

    gen_log(tu_path(tmpdir, "a.log"), 40, 9, NULL);
    ck_assert_int_eq(patient_log_consistency(tu_path(tmpdir, "a.log"), 13, 37, &p), PATIENT_OK);
    ck_assert_uint_eq(p.old_size, 13);
    ck_assert_uint_eq(p.new_size, 37);
    ck_assert_int_eq(patient_consistency_verify(&p), PATIENT_OK);
    /* The old root is what verify accepts as a trusted checkpoint. */
    memset(&vo, 0, sizeof vo);
    vo.have_trusted = 1;
    vo.trusted_size = 13;
    memcpy(vo.trusted_root, p.old_root, 32);
    ck_assert_int_eq(patient_log_verify(tu_path(tmpdir, "a.log"), &vo, &r), PATIENT_OK);
    vo.trusted_root[5] ^= 1;
    ck_assert_int_eq(patient_log_verify(tu_path(tmpdir, "a.log"), &vo, &r), PATIENT_ERR_LOG_CORRUPT);
    ck_assert_int_eq(r.tamper, PATIENT_LOG_REWRITTEN);
    /* JSON round trip, then a forged twin. */
    ck_assert_int_eq(patient_consistency_json(&p, &json), PATIENT_OK);
    ck_assert_int_eq(patient_consistency_parse(json, strlen(json), &q), PATIENT_OK);
    ck_assert_mem_eq(&p, &q, sizeof p);
    q.proof[1][0] ^= 1;
    ck_assert_int_eq(patient_consistency_verify(&q), PATIENT_ERR_HASH);
    ck_assert_int_eq(patient_consistency_parse("{\"version\":1}", 13, &q), PATIENT_ERR_PARSE);
    free(json);
    ck_assert_int_eq(patient_log_consistency(tu_path(tmpdir, "a.log"), 3, 1000, &p), PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(patient_log_consistency(tu_path(tmpdir, "a.log"), 9, 3, &p), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_log_consistency(tu_path(tmpdir, "a.log"), 0, 0, &p), PATIENT_OK);
    ck_assert_int_eq(patient_consistency_verify(&p), PATIENT_OK);
}
END_TEST

START_TEST(note_sign_open)
{
    patient_checkpoint c, out;
    char *note = NULL, *vkey = NULL, *bad;
    size_t len;

    memset(&c, 0, sizeof c);
    strcpy(c.origin, "example.test/log");
    c.size = 12345;
    for (int i = 0; i < 32; i++)
        c.root[i] = (uint8_t)i;
    ck_assert_int_eq(patient_checkpoint_sign(&c, sk, &note), PATIENT_OK);
    len = strlen(note);
    ck_assert(strncmp(note, "example.test/log\n12345\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n"
                            "\xe2\x80\x94 example.test/log ",
                      strlen("example.test/log\n12345\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n"
                             "\xe2\x80\x94 example.test/log ")) == 0);
    ck_assert_int_eq(patient_checkpoint_open(note, len, "example.test/log", &pk, &out), PATIENT_OK);
    ck_assert_uint_eq(out.size, 12345);
    ck_assert_mem_eq(out.root, c.root, 32);
    ck_assert_str_eq(out.origin, "example.test/log");
    /* Forged twins. */
    ck_assert_int_eq(patient_checkpoint_open(note, len, NULL, &pk2, &out), PATIENT_ERR_KEY_MISMATCH);
    ck_assert_int_eq(patient_checkpoint_open(note, len, "other/log", &pk, &out),
                     PATIENT_ERR_KEY_MISMATCH);
    bad = strdup(note);
    bad[18] = '5'; /* 12345 -> 15345 */
    ck_assert_int_eq(patient_checkpoint_open(bad, len, NULL, &pk, &out), PATIENT_ERR_SIGNATURE);
    strcpy(bad, note);
    bad[17] = '0'; /* leading zero in the size: not a tree size */
    bad[16] = '\n';
    ck_assert_int_eq(patient_checkpoint_open(bad, len, NULL, &pk, &out), PATIENT_ERR_PARSE);
    free(bad);
    ck_assert_int_eq(patient_checkpoint_open("a\n1\nAA==\n\n", 10, NULL, NULL, &out),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_checkpoint_open(note, len - 1, NULL, &pk, &out), PATIENT_ERR_PARSE);
    /* A witness's cosignature (another key name) is skipped. */
    {
        char *two = NULL;
        ck_assert(asprintf(&two, "%s\xe2\x80\x94 witness.test AAAAAAAAAAAAAAAA\n", note) > 0);
        ck_assert_int_eq(patient_checkpoint_open(two, strlen(two), NULL, &pk, &out), PATIENT_OK);
        free(two);
    }
    /* The size line: below 2^63 (docs/format/log.md), strict decimal. */
    {
        static const char *const bad_sizes[] = {
            "9223372036854775808", "18446744073709551615", "18446744073709551616",
            "09223372036854775807", "007", "+7", "-7", " 7", "7 ", "",
        };
        char *big = NULL, *t;
        size_t bl;
        c.size = INT64_MAX;
        ck_assert_int_eq(patient_checkpoint_sign(&c, sk, &big), PATIENT_OK);
        bl = strlen(big);
        ck_assert_int_eq(patient_checkpoint_open(big, bl, NULL, &pk, &out), PATIENT_OK);
        ck_assert_uint_eq(out.size, INT64_MAX);
        /* Another size that reads is only refused by the signature. */
        t = strdup(big);
        ck_assert_ptr_nonnull(strstr(t, "\n9223372036854775807\n"));
        strstr(t, "\n9223372036854775807\n")[19] = '6';
        ck_assert_int_eq(patient_checkpoint_open(t, bl, NULL, &pk, &out), PATIENT_ERR_SIGNATURE);
        free(t);
        for (size_t i = 0; i < sizeof bad_sizes / sizeof *bad_sizes; i++) {
            const char *nl1 = strchr(big, '\n'), *nl2 = strchr(nl1 + 1, '\n');
            ck_assert(asprintf(&t, "%.*s%s%s", (int)(nl1 + 1 - big), big, bad_sizes[i], nl2) > 0);
            ck_assert_msg(patient_checkpoint_open(t, strlen(t), NULL, &pk, &out) == PATIENT_ERR_PARSE,
                          "size line \"%s\"", bad_sizes[i]);
            free(t);
        }
        free(big);
    }
    ck_assert_int_eq(patient_note_vkey("example.test/log", &pk, &vkey), PATIENT_OK);
    ck_assert(strncmp(vkey, "example.test/log+", 17) == 0);
    ck_assert_uint_eq(strlen(vkey), 17 + 8 + 1 + 44);
    free(vkey);
    ck_assert_int_eq(patient_note_vkey("bad name", &pk, &vkey), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_note_vkey("a+b", &pk, &vkey), PATIENT_ERR_ARG);
    free(note);
}
END_TEST

START_TEST(tile_paths)
{
    char p[96];

    patient_tile_path(0, 0, 256, p);
    ck_assert_str_eq(p, "tile/0/000");
    patient_tile_path(1, 1234067, 256, p);
    ck_assert_str_eq(p, "tile/1/x001/x234/067");
    patient_tile_path(0, 5, 17, p);
    ck_assert_str_eq(p, "tile/0/005.p/17");
    patient_tile_path(-1, 1000, 3, p);
    ck_assert_str_eq(p, "entries/x001/000.p/3");
    patient_tile_path(2, 999, 0, p);
    ck_assert_str_eq(p, "tile/2/999");
}
END_TEST

/* The writer's incremental publishing and publishing from the file give
 * the same folder; the tiles hash to the checkpoint's root. */
/* The file nm is published in both folders x and y with the same bytes. */
static void
same_published(const char *x, const char *y, const char *nm)
{
    char pa[160], pb[160], *a, *b;
    size_t la, lb;

    snprintf(pa, sizeof pa, "%s/%s", x, nm);
    snprintf(pb, sizeof pb, "%s/%s", y, nm);
    a = tu_slurp(tu_path(tmpdir, pa), &la);
    b = tu_slurp(tu_path(tmpdir, pb), &lb);
    ck_assert_msg(a && b, "%s published by both", nm);
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(a, b, la);
    free(a);
    free(b);
}

START_TEST(publish_writer_equals_file)
{
    const char *names[] = {"checkpoint", "tile/0/000", "tile/0/001", "tile/0/002.p/72",
                           "tile/1/000.p/2", "entries/000", "entries/002.p/72"};
    patient_checkpoint c;
    patient_log_report r;
    char *a;
    size_t la;

    /* 580 events + checkpoints every 50: 591 lines, the last a checkpoint
     * over 590 = 2 full tiles + 78... computed below from the note. */
    gen_log(tu_path(tmpdir, "w.log"), 580, 50, tu_path(tmpdir, "pw"));
    ck_assert_int_eq(patient_log_publish(tu_path(tmpdir, "w.log"), tu_path(tmpdir, "pf"), sk, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_log_verify(tu_path(tmpdir, "w.log"), NULL, &r), PATIENT_OK);
    a = tu_slurp(tu_path(tmpdir, "pw/checkpoint"), &la);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(patient_checkpoint_open(a, la, NULL, &pk, &c), PATIENT_OK);
    ck_assert_uint_eq(c.size, r.last_checkpoint_seq);
    ck_assert_mem_eq(c.root, r.last_checkpoint_root, 32);
    free(a);
    for (size_t i = 1; i < sizeof names / sizeof *names; i++) {
        char nm[96];
        snprintf(nm, sizeof nm, "%s", names[i]);
        if (strstr(nm, ".p/72")) {
            /* the partial width depends on the checkpoint size */
            char *dot = strstr(nm, ".p/");
            snprintf(dot, 16, ".p/%u", (unsigned)(c.size % 256));
        }
        if (strncmp(nm, "tile/1/", 7) == 0)
            snprintf(nm, sizeof nm, "tile/1/000.p/%u", (unsigned)(c.size / 256));
        same_published("pw", "pf", nm);
    }
    /* Republishing from the file leaves the same checkpoint tree. */
    ck_assert_int_eq(patient_log_publish(tu_path(tmpdir, "w.log"), tu_path(tmpdir, "pw"), sk, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_log_publish(tu_path(tmpdir, "nolog"), tu_path(tmpdir, "px"), sk, NULL),
                     PATIENT_ERR_NOT_FOUND);
}
END_TEST

static int
exists(const char *rel)
{
    struct stat st;
    return lstat(tu_path(tmpdir, rel), &st) == 0;
}

/* Partial tiles and bundles go once their full one has existed for the
 * grace time; those of the published tree's right edge stay. */
START_TEST(publish_prunes_partials)
{
    long saved = pt_prune_grace;
    patient_checkpoint c;
    char *a, rel[128];
    size_t la;

    /* Default grace: every partial the checkpoints named is still there. */
    gen_log(tu_path(tmpdir, "k.log"), 580, 50, tu_path(tmpdir, "pk"));
    ck_assert(exists("pk/tile/0/000.p"));
    ck_assert(exists("pk/entries/000.p"));
    ck_assert(exists("pk/tile/0/001.p"));
    /* No grace: gone at the next checkpoint after the full one. */
    pt_prune_grace = 0;
    gen_log(tu_path(tmpdir, "g.log"), 580, 50, tu_path(tmpdir, "pg"));
    pt_prune_grace = saved;
    ck_assert(!exists("pg/tile/0/000.p"));
    ck_assert(!exists("pg/entries/000.p"));
    ck_assert(!exists("pg/tile/0/001.p"));
    ck_assert(!exists("pg/entries/001.p"));
    ck_assert(exists("pg/tile/0/000") && exists("pg/entries/001"));
    /* The right edge of the checkpoint's tree is whole. */
    a = tu_slurp(tu_path(tmpdir, "pg/checkpoint"), &la);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(patient_checkpoint_open(a, la, NULL, &pk, &c), PATIENT_OK);
    free(a);
    snprintf(rel, sizeof rel, "pg/tile/0/002.p/%u", (unsigned)(c.size % 256));
    ck_assert(exists(rel));
    snprintf(rel, sizeof rel, "pg/entries/002.p/%u", (unsigned)(c.size % 256));
    ck_assert(exists(rel));
    snprintf(rel, sizeof rel, "pg/tile/1/000.p/%u", (unsigned)(c.size / 256));
    ck_assert(exists(rel));
    /* A one-shot publish of a folder whose full tiles are old prunes too. */
    pt_prune_grace = 0;
    ck_assert_int_eq(patient_log_publish(tu_path(tmpdir, "k.log"), tu_path(tmpdir, "pk"), sk, NULL), PATIENT_OK);
    pt_prune_grace = saved;
    ck_assert(!exists("pk/tile/0/000.p") && !exists("pk/entries/000.p"));
}
END_TEST

/* A log nm writing a checkpoint every 100 entries, publishing into dir. */
static patient_log *
open_publishing(const char *nm, const char *dir)
{
    patient_log *log = NULL;

    ck_assert_int_eq(patient_log_open(tu_path(tmpdir, nm), sk, 100, &log), PATIENT_OK);
    ck_assert_int_eq(patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE), PATIENT_OK);
    ck_assert_int_eq(patient_log_set_publish(log, tu_path(tmpdir, dir), NULL), PATIENT_OK);
    return log;
}

/* Append event "e<i>". */
static void
append_e(patient_log *log, unsigned i)
{
    char d[32];

    snprintf(d, sizeof d, "e%u", i);
    ck_assert_int_eq(patient_log_append_event(log, "test.entry", NULL, d, NULL), PATIENT_OK);
}

/* The writer remembers the folder each kind of file was last written in
 * rather than probing it for every file; folders removed under it (an
 * operator emptying the published tree) are made again at the next file,
 * the parents too, and nothing is lost: the tree after is the one
 * publishing from the file gives. */
START_TEST(publish_folders_removed)
{
    /* Written after the removals (tile/0/002 after the whole tile/ went). */
    const char *names[] = {"checkpoint",    "entries/001",    "entries/002",  "tile/0/002",
                           "tile/0/003.p/", "entries/003.p/", "tile/1/000.p/"};
    patient_log *log = NULL;
    patient_checkpoint c;
    char *a;
    size_t la;
    unsigned i;

    log = open_publishing("r.log", "pr");
    for (i = 0; i < 800; i++) {
        append_e(log, i);
        /* After the first full bundle and tile (and a checkpoint naming
         * partials): the folders of every kind go, then the whole tree. */
        if (i == 300) {
            tu_rmtree(tu_path(tmpdir, "pr/entries"));
            tu_rmtree(tu_path(tmpdir, "pr/tile/0"));
        }
        if (i == 560)
            tu_rmtree(tu_path(tmpdir, "pr/tile"));
        ck_assert_int_eq(patient_log_publish_error(log), PATIENT_OK);
    }
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    ck_assert_int_eq(patient_log_publish(tu_path(tmpdir, "r.log"), tu_path(tmpdir, "pf"), sk, NULL),
                     PATIENT_OK);
    a = tu_slurp(tu_path(tmpdir, "pr/checkpoint"), &la);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(patient_checkpoint_open(a, la, NULL, &pk, &c), PATIENT_OK);
    free(a);
    ck_assert_uint_gt(c.size, 768);
    for (i = 0; i < sizeof names / sizeof *names; i++) {
        char nm[96];
        size_t n = strlen(names[i]);
        /* a partial's width is the checkpoint's */
        snprintf(nm, sizeof nm, "%s", names[i]);
        if (names[i][n - 1] == '/')
            snprintf(nm + n, sizeof nm - n, "%u",
                     (unsigned)(strncmp(nm, "tile/1/", 7) == 0 ? c.size / 256 : c.size % 256));
        same_published("pr", "pf", nm);
    }
}
END_TEST

/* How many names a folder holds besides "." and "..". */
static int
names_in(const char *rel)
{
    DIR *dh = opendir(tu_path(tmpdir, rel));
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(dh);
    while ((de = readdir(dh)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(dh);
    return n;
}

/* A symlink put in place of a folder of the published tree is refused,
 * not followed: the writer writes nothing through it (a tile folder) and
 * prunes nothing through it (a "<N>.p" queued while it was a folder); the
 * appends succeed and the publish error says why. */
START_TEST(publish_refuses_symlinks)
{
    long saved = pt_prune_grace;
    patient_log *log = NULL;
    patient_err perr = PATIENT_OK, e;
    unsigned i;
    int swapped = 0;

    ck_assert_int_eq(mkdir(tu_path(tmpdir, "out"), 0755), 0);
    log = open_publishing("s.log", "ps");
    for (i = 0; i < 700; i++) {
        append_e(log, i);
        if (i == 300) {
            ck_assert_int_eq(patient_log_publish_error(log), PATIENT_OK);
            tu_rmtree(tu_path(tmpdir, "ps/tile/0"));
            ck_assert_int_eq(symlink(tu_path(tmpdir, "out"), tu_path(tmpdir, "ps/tile/0")), 0);
        }
        if ((e = patient_log_publish_error(log)) != PATIENT_OK)
            perr = e;
    }
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    ck_assert_int_eq(perr, PATIENT_ERR_UNSAFE_PATH);
    ck_assert_ptr_nonnull(strstr(patient_strerror(perr), "symlink"));
    ck_assert_int_eq(names_in("out"), 0);
    /* The other kinds are still published (a full bundle written after). */
    ck_assert(exists("ps/entries/001"));

    /* "<N>.p" swapped for a symlink between its full tile and its prune. */
    ck_assert_int_eq(mkdir(tu_path(tmpdir, "out2"), 0755), 0);
    for (i = 0; i < 2; i++) {
        FILE *f = fopen(tu_path(tmpdir, i ? "out2/17" : "out2/1"), "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fclose(f), 0);
    }
    pt_prune_grace = 0;
    perr = PATIENT_OK;
    log = open_publishing("s2.log", "pq");
    for (i = 0; i < 500; i++) {
        append_e(log, i);
        if (!swapped && exists("pq/tile/0/000")) {
            ck_assert(exists("pq/tile/0/000.p"));
            tu_rmtree(tu_path(tmpdir, "pq/tile/0/000.p"));
            ck_assert_int_eq(symlink(tu_path(tmpdir, "out2"), tu_path(tmpdir, "pq/tile/0/000.p")), 0);
            swapped = 1;
        }
        if ((e = patient_log_publish_error(log)) != PATIENT_OK)
            perr = e;
    }
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    pt_prune_grace = saved;
    ck_assert(swapped);
    ck_assert_int_eq(perr, PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(names_in("out2"), 2);
    /* The bundles' partials beside it were pruned as before. */
    ck_assert(!exists("pq/entries/000.p"));
}
END_TEST

/* A full tile or bundle the writer cannot write (here a symlink where
 * its folder belongs, removed later) is a publish error, and only a
 * missing file: the tree the later checkpoints sign is still the log's. */
START_TEST(publish_error_keeps_tree)
{
    patient_log *log;
    patient_err perr = PATIENT_OK, e;
    unsigned i;

    log = open_publishing("t.log", "pt");
    for (i = 0; i < 700; i++) {
        append_e(log, i);
        if (i == 300) {
            tu_rmtree(tu_path(tmpdir, "pt/tile/0"));
            tu_rmtree(tu_path(tmpdir, "pt/entries"));
            ck_assert_int_eq(symlink("nowhere", tu_path(tmpdir, "pt/tile/0")), 0);
            ck_assert_int_eq(symlink("nowhere", tu_path(tmpdir, "pt/entries")), 0);
        }
        if (i == 600) { /* repaired: the next checkpoint is published */
            ck_assert_int_eq(unlink(tu_path(tmpdir, "pt/tile/0")), 0);
            ck_assert_int_eq(unlink(tu_path(tmpdir, "pt/entries")), 0);
        }
        if ((e = patient_log_publish_error(log)) != PATIENT_OK)
            perr = e;
    }
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    ck_assert_int_ne(perr, PATIENT_OK);
    ck_assert_int_eq(patient_log_publish(tu_path(tmpdir, "t.log"), tu_path(tmpdir, "pf"), sk, NULL),
                     PATIENT_OK);
    /* The level-1 tile holds the roots of the level-0 tiles not written. */
    same_published("pt", "pf", "checkpoint");
    same_published("pt", "pf", "tile/1/000.p/2");
}
END_TEST

/* The pre-filter of the checkpoint passes is memmem's "checkpoint" or
 * "\u" exactly (random lines over the bytes that matter against memmem),
 * and a checkpoint line whose kind is spelt with an escape is still the
 * one published. */
START_TEST(line_maybe_checkpoint)
{
    const char alpha[] = "\\uckx";
    uint8_t line[40];
    uint32_t r = 12345;
    char *a, *b, *k;
    size_t la, lb;
    FILE *f;
    patient_checkpoint c, c2;

    for (unsigned t = 0; t < 200000; t++) {
        size_t n = t % (sizeof line + 1);
        for (size_t i = 0; i < n; i++) {
            r = r * 1103515245u + 12345u;
            line[i] = (uint8_t)alpha[(r >> 16) % 5];
        }
        if (t % 7 == 0 && n >= 12)
            memcpy(line + (r >> 8) % (n - 9), "checkpoint", 10);
        ck_assert_int_eq(pt_line_maybe_checkpoint(line, n),
                         memmem(line, n, "checkpoint", 10) != NULL ||
                             memmem(line, n, "\\u", 2) != NULL);
    }
    ck_assert_int_eq(pt_line_maybe_checkpoint((const uint8_t *)"ab\\", 3), 0);
    ck_assert_int_eq(pt_line_maybe_checkpoint((const uint8_t *)"ab\\\\u", 5), 1);
    ck_assert_int_eq(pt_line_maybe_checkpoint((const uint8_t *)"\\u", 1), 0);

    /* The log's last line, a checkpoint, with its kind escaped (the
     * chain holds: nothing follows it): still the published one. */
    gen_log(tu_path(tmpdir, "u.log"), 580, 50, NULL);
    ck_assert_int_eq(patient_log_publish(tu_path(tmpdir, "u.log"), tu_path(tmpdir, "pu"), sk, NULL),
                     PATIENT_OK);
    a = tu_slurp(tu_path(tmpdir, "u.log"), &la);
    ck_assert_ptr_nonnull(a);
    k = a + la - 2;
    while (k > a && k[-1] != '\n')
        k--;
    k = strstr(k, "\"kind\":\"checkpoint\"");
    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_null(strstr(k + 19, "checkpoint")); /* the kind is the only one */
    ck_assert_ptr_nonnull(f = fopen(tu_path(tmpdir, "u2.log"), "wb"));
    ck_assert_uint_eq(fwrite(a, 1, (size_t)(k - a) + 8, f), (size_t)(k - a) + 8);
    ck_assert_int_ge(fputs("\\u0063", f), 0);
    ck_assert_uint_eq(fwrite(k + 9, 1, la - (size_t)(k + 9 - a), f), la - (size_t)(k + 9 - a));
    ck_assert_int_eq(fclose(f), 0);
    free(a);
    ck_assert_int_eq(
        patient_log_publish(tu_path(tmpdir, "u2.log"), tu_path(tmpdir, "pu2"), sk, NULL),
        PATIENT_OK);
    a = tu_slurp(tu_path(tmpdir, "pu/checkpoint"), &la);
    b = tu_slurp(tu_path(tmpdir, "pu2/checkpoint"), &lb);
    ck_assert(a && b);
    ck_assert_int_eq(patient_checkpoint_open(a, la, NULL, &pk, &c), PATIENT_OK);
    ck_assert_int_eq(patient_checkpoint_open(b, lb, NULL, &pk, &c2), PATIENT_OK);
    ck_assert_uint_eq(c2.size, c.size);
    ck_assert_mem_eq(c2.root, c.root, 32);
    free(a);
    free(b);
}
END_TEST

/* The monitor's index is extended from its header and the records at its
 * end only: records a crash left past the last mark (more than one read
 * backwards holds) are cut, the new ones follow the mark; a gap or
 * another log starts a new index at the size the run started from. */
static size_t
file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (size_t)st.st_size;
}

typedef struct {
    uint8_t key[PT_INDEX_KEY];
    uint64_t seq;
} trec;

/* A monitor run's index update in one go: begin, commit, abort. */
static patient_err
index_once(const char *path, const char *id, uint64_t old, uint64_t new_size, pt_buf *recs)
{
    pt_ixw w;
    patient_err err;

    if ((err = pt_index_begin(&w, path, id, old)) == PATIENT_OK)
        err = pt_index_commit(&w, recs, new_size);
    pt_index_abort(&w);
    return err;
}

/* A monitor run's index update with n change records, as it adds them. */
static patient_err
index_append(const char *path, const char *id, uint64_t old, uint64_t new_size, const trec *r,
             size_t n)
{
    pt_buf b = {0};
    patient_err err = PATIENT_OK;

    for (size_t i = 0; i < n && err == PATIENT_OK; i++)
        err = pt_index_rec_add(&b, r[i].key, r[i].seq);
    if (err == PATIENT_OK)
        err = index_once(path, id, old, new_size, &b);
    pt_buf_free(&b);
    return err;
}

/* Every tile handed out, in order: level, index and a hash of its bytes. */
typedef struct {
    uint8_t seen[600][33];
    unsigned n;
} tiles_seen;

static patient_err
tile_seen(void *ctx, unsigned level, uint64_t index, const uint8_t *data)
{
    tiles_seen *t = ctx;
    uint8_t *r = t->seen[t->n++];

    ck_assert_uint_lt(t->n, 600);
    r[0] = (uint8_t)(level * 64 + index % 64);
    return patient_sha256(data, PATIENT_TILE_BYTES, r + 1);
}

/* Groups of 64 leaves added at once with their root give the tree, the
 * tiles and the order of the tiles of adding them one by one. */
START_TEST(tiles_add_sub_same_tree)
{
    enum { N = 70000 };
    uint8_t (*lv)[32] = malloc((size_t)N * 32), root[32], a_root[32], b_root[32];
    pt_tiles *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    tiles_seen *sa = calloc(1, sizeof *sa), *sb = calloc(1, sizeof *sb);
    uint32_t i = 0;

    ck_assert(lv && a && b && sa && sb);
    randombytes_buf(lv, (size_t)N * 32);
    pt_tiles_init(a);
    pt_tiles_init(b);
    for (uint32_t k = 0; k < N; k++)
        ck_assert_int_eq(pt_tiles_add(a, lv[k], tile_seen, sa), PATIENT_OK);
    /* b: some groups whole, some leaf by leaf, a partial group at the end */
    while (i < N) {
        if (i % 64 == 0 && i + 64 <= N && (i / 64) % 5 != 2) {
            ck_assert_int_eq(pt_merkle_root_wide((const uint8_t(*)[32])lv + i, 64, root),
                             PATIENT_OK);
            ck_assert_int_eq(pt_tiles_add_sub(b, lv[i], 32, 6, root, tile_seen, sb),
                             PATIENT_OK);
            i += 64;
        } else {
            ck_assert_int_eq(pt_tiles_add(b, lv[i], tile_seen, sb), PATIENT_OK);
            i++;
        }
        /* a group is taken only where one starts */
        if (i % 64 != 0)
            ck_assert_int_eq(pt_tiles_add_sub(b, lv[0], 32, 6, root, tile_seen, sb),
                             PATIENT_ERR_ARG);
    }
    ck_assert_uint_eq(sa->n, N / 256 + 1);
    ck_assert_uint_eq(sb->n, sa->n);
    ck_assert_mem_eq(sb->seen, sa->seen, sizeof sa->seen[0] * sa->n);
    /* the same tree: what is left over past the edge may differ */
    ck_assert_uint_eq(b->size, a->size);
    ck_assert_uint_eq(b->fr.size, a->fr.size);
    ck_assert_mem_eq(b->fr.node, a->fr.node, 32 * (size_t)__builtin_popcountll(a->fr.size));
    ck_assert_mem_eq(b->w, a->w, sizeof a->w);
    ck_assert_mem_eq(b->full, a->full, sizeof a->full);
    for (unsigned L = 0; L < PT_TILE_LEVELS; L++)
        ck_assert_mem_eq(b->part[L], a->part[L], 32 * (size_t)a->w[L]);
    /* its twin: a group given another root is another tree */
    pt_tiles_init(b);
    ck_assert_int_eq(pt_merkle_root_wide((const uint8_t(*)[32])lv + 64, 64, root), PATIENT_OK);
    ck_assert_int_eq(pt_tiles_add_sub(b, lv[0], 32, 6, root, NULL, NULL), PATIENT_OK);
    pt_tiles_init(a);
    for (uint32_t k = 0; k < 64; k++)
        ck_assert_int_eq(pt_tiles_add(a, lv[k], NULL, NULL), PATIENT_OK);
    ck_assert_int_eq(pt_merkle_frontier_root(&a->fr, a_root), PATIENT_OK);
    ck_assert_int_eq(pt_merkle_frontier_root(&b->fr, b_root), PATIENT_OK);
    ck_assert_mem_ne(a_root, b_root, 32);
    free(lv);
    free(a);
    free(b);
    free(sa);
    free(sb);
}
END_TEST

/* The header's first size: what the writer's %llu writes is read (0, at
 * most 20 digits up to the reader's old bound), a leading zero, which it
 * never writes, is not, nor anything past that bound, empty, signed or
 * followed by anything but the padding. */
static patient_err
index_from(const char *size, uint64_t *from)
{
    static const char id[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    uint8_t *d = malloc(128 + 24);
    pt_index idx;
    patient_err err;
    int n;

    ck_assert_ptr_nonnull(d);
    memset(d, ' ', 128);
    n = snprintf((char *)d, 128, "patient-monitor-index 1 %s %s", id, size);
    d[n] = ' ';
    d[127] = '\n';
    memset(d + 128, 0xff, 16); /* a mark: seq UINT64_MAX - 1 covered */
    memset(d + 144, 0xff, 7);
    d[151] = 0xfe;
    if ((err = pt_index_parse(d, 128 + 24, id, &idx)) != PATIENT_OK) {
        free(d);
        return err;
    }
    *from = idx.from;
    pt_index_free(&idx);
    return PATIENT_OK;
}

START_TEST(index_header_size_text)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {{"0", 0},
              {"7", 7},
              {"1000000", 1000000},
              {"9999999999999999999", UINT64_C(9999999999999999999)},
              {"18446744073709551609", UINT64_MAX - 6}};
    static const char *const bad[] = {"",
                                      "00",
                                      "07",
                                      "0000000000000000000000001",
                                      "18446744073709551610",
                                      "18446744073709551615",
                                      "18446744073709551616",
                                      "184467440737095516090",
                                      "-1",
                                      "+1",
                                      "1x",
                                      "1\n",
                                      " 1"};
    uint64_t v;

    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        v = 1;
        ck_assert_int_eq(index_from(ok[k].s, &v), PATIENT_OK);
        ck_assert_uint_eq(v, ok[k].v);
    }
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        ck_assert_msg(index_from(bad[k], &v) == PATIENT_ERR_PARSE, "accepted \"%s\"", bad[k]);
}
END_TEST

START_TEST(index_append_tail)
{
    const char *id = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const char *other = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    char path[512];
    trec r[3];
    pt_index idx;
    size_t pos = 0;
    uint64_t seq;
    FILE *f;

    snprintf(path, sizeof path, "%s", tu_path(tmpdir, "st.index"));
    for (unsigned i = 0; i < 3; i++) {
        memset(r[i].key, 'a' + (int)i, PT_INDEX_KEY);
        r[i].seq = 3 + i;
    }
    ck_assert_int_eq(index_append(path, id, 0, 10, r, 2), PATIENT_OK);
    ck_assert_int_eq(index_append(path, id, 10, 20, r + 2, 1), PATIENT_OK);
    ck_assert_uint_eq(file_size(path), 128 + 5 * 24);
    /* a torn append: 1500 records and half of one past the last mark */
    ck_assert_ptr_nonnull(f = fopen(path, "ab"));
    for (unsigned i = 0; i < 1500 * 24 + 12; i++)
        fputc('z', f);
    fclose(f);
    ck_assert_int_eq(pt_index_load(path, id, &idx), PATIENT_OK);
    ck_assert_uint_eq(idx.n, 5);
    pt_index_free(&idx);
    r[0].seq = 25;
    ck_assert_int_eq(index_append(path, id, 20, 30, r, 1), PATIENT_OK);
    ck_assert_uint_eq(file_size(path), 128 + 7 * 24);
    ck_assert_int_eq(pt_index_load(path, id, &idx), PATIENT_OK);
    ck_assert(idx.from == 0 && idx.upto == 30 && idx.n == 7);
    ck_assert_int_eq(pt_index_next(&idx, r[0].key, &pos, &seq), 1);
    ck_assert_uint_eq(seq, 3);
    ck_assert_int_eq(pt_index_next(&idx, r[0].key, &pos, &seq), 1);
    ck_assert_uint_eq(seq, 25);
    ck_assert_int_eq(pt_index_next(&idx, r[0].key, &pos, &seq), 0);
    pt_index_free(&idx);
    /* its twins: a gap (the run starts at 35, the index ends at 30) and
     * another log's index both start anew */
    ck_assert_int_eq(index_append(path, id, 35, 40, r + 1, 1), PATIENT_OK);
    ck_assert_int_eq(pt_index_load(path, id, &idx), PATIENT_OK);
    ck_assert(idx.from == 35 && idx.upto == 40 && idx.n == 2);
    pt_index_free(&idx);
    ck_assert_int_eq(index_append(path, other, 40, 50, r, 1), PATIENT_OK);
    ck_assert_int_eq(pt_index_load(path, id, &idx), PATIENT_ERR_PARSE);
    ck_assert_int_eq(pt_index_load(path, other, &idx), PATIENT_OK);
    ck_assert(idx.from == 40 && idx.upto == 50 && idx.n == 2);
    pt_index_free(&idx);
    /* a run with no change: only its coverage mark is added */
    ck_assert_int_eq(index_append(path, other, 50, 60, r, 0), PATIENT_OK);
    ck_assert_uint_eq(file_size(path), 128 + 3 * 24);
    ck_assert_int_eq(pt_index_load(path, other, &idx), PATIENT_OK);
    ck_assert(idx.from == 40 && idx.upto == 60 && idx.n == 3);
    pt_index_free(&idx);
}
END_TEST

/* The index written as a run goes (begin, flushes, commit) is the one
 * written at once; a run that fails (abort) leaves it as it was. */
START_TEST(index_written_as_it_goes)
{
    const char *id = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char path[512], once[512];
    uint8_t key[PT_INDEX_KEY], *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    pt_buf r1 = {0}, r2 = {0};
    pt_ixw w;
    struct stat st;

    snprintf(path, sizeof path, "%s", tu_path(tmpdir, "go.index"));
    snprintf(once, sizeof once, "%s", tu_path(tmpdir, "once.index"));
    for (int run = 0; run < 2; run++) {
        uint64_t old = run ? 500 : 0;
        ck_assert_int_eq(pt_index_begin(&w, path, id, old), PATIENT_OK);
        for (uint64_t i = old; i < old + 500; i++) {
            memset(key, 'a' + (int)(i % 26), sizeof key);
            ck_assert_int_eq(pt_index_rec_add(&r1, key, i), PATIENT_OK);
            ck_assert_int_eq(pt_index_rec_add(&r2, key, i), PATIENT_OK);
            if (i % 97 == 0)
                ck_assert_int_eq(pt_index_flush(&w, &r1), PATIENT_OK);
        }
        ck_assert_int_eq(pt_index_commit(&w, &r1, old + 500), PATIENT_OK);
        pt_index_abort(&w); /* after a commit: nothing */
        ck_assert_int_eq(index_once(once, id, old, old + 500, &r2), PATIENT_OK);
        r1.len = r2.len = 0;
        ck_assert_int_eq(pt_read_file(path, 1 << 20, &a, &alen), PATIENT_OK);
        ck_assert_int_eq(pt_read_file(once, 1 << 20, &b, &blen), PATIENT_OK);
        ck_assert_uint_eq(alen, 128 + (size_t)(run + 1) * 501 * 24);
        ck_assert_uint_eq(alen, blen);
        ck_assert_mem_eq(a, b, alen);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0600);
        free(a);
        free(b);
    }
    /* a failed run: an append cut back to its last mark, a new index's
     * temporary file gone, the old index untouched */
    for (int fresh = 0; fresh < 2; fresh++) {
        ck_assert_int_eq(pt_index_begin(&w, path, id, fresh ? 7 : 1000), PATIENT_OK);
        ck_assert_int_eq(w.fresh, fresh);
        for (uint64_t i = 0; i < 300; i++)
            ck_assert_int_eq(pt_index_rec_add(&r1, key, 1000 + i), PATIENT_OK);
        ck_assert_int_eq(pt_index_flush(&w, &r1), PATIENT_OK);
        ck_assert_int_eq(stat(fresh ? w.tmp : path, &st), 0);
        ck_assert_uint_eq(st.st_size, fresh ? 128 + 300 * 24 : 128 + 2 * 501 * 24 + 300 * 24);
        pt_index_abort(&w);
        r1.len = 0;
        ck_assert_int_eq(pt_read_file(path, 1 << 20, &a, &alen), PATIENT_OK);
        ck_assert_int_eq(pt_read_file(once, 1 << 20, &b, &blen), PATIENT_OK);
        ck_assert_uint_eq(alen, blen);
        ck_assert_mem_eq(a, b, alen);
        free(a);
        free(b);
    }
    {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "ls %s | grep -e tmp -e new >/dev/null", tmpdir);
        ck_assert_int_ne(system(cmd), 0); /* no temporary file left */
    }
    pt_buf_free(&r1);
    pt_buf_free(&r2);
}
END_TEST

/* close(2) as the library calls it (the core is linked in statically, so
 * its calls come here): the descriptor close_fails names is closed and
 * reported failed (EIO, as a file system that reports a write only at
 * close does), once. */
static int close_fails = -1;
static int (*real_close)(int);

__attribute__((constructor)) static void
find_real_close(void)
{
    *(void **)&real_close = dlsym(RTLD_NEXT, "close");
}

int
close(int fd)
{
    int rc = real_close(fd);

    if (fd >= 0 && fd == close_fails) {
        close_fails = -1;
        errno = EIO;
        return -1;
    }
    return rc;
}

/* The commit's close is checked, for an append and for a new index: a
 * failed one is PATIENT_ERR_IO, no descriptor or .new file left. */
START_TEST(index_close_fails)
{
    const char *id = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
               *other = "ff112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char path[512], nw[520];
    uint8_t key[PT_INDEX_KEY];
    pt_buf r = {0};
    pt_ixw w;
    struct stat st;

    snprintf(path, sizeof path, "%s", tu_path(tmpdir, "close.index"));
    snprintf(nw, sizeof nw, "%s.new", path);
    memset(key, 'c', sizeof key);
    for (int run = 0; run < 4; run++) {
        /* runs 0 and 2 start anew (run 2: another log id's index there),
         * 1 and 3 append; 0 and 1 have their close fail, 2 and 3 succeed */
        const char *lid = run < 2 ? id : other;
        uint64_t old = run % 2 ? 10 : 0;
        ck_assert_int_eq(pt_index_begin(&w, path, lid, old), PATIENT_OK);
        ck_assert_int_eq(w.fresh, (run % 2 == 0));
        ck_assert_int_eq(pt_index_rec_add(&r, key, old), PATIENT_OK);
        if (run < 2)
            close_fails = w.fd;
        ck_assert_int_eq(pt_index_commit(&w, &r, old + 10), run < 2 ? PATIENT_ERR_IO : PATIENT_OK);
        ck_assert_int_eq(close_fails, -1);
        ck_assert_int_eq(w.fd, -1);
        pt_index_abort(&w);
        ck_assert_int_eq(lstat(nw, &st), -1);
        r.len = 0;
    }
    pt_buf_free(&r);
}
END_TEST

/* A new index is written to PATH.new: what a killed run left there is
 * written over by the next run, which leaves none; a symlink, FIFO or
 * folder there is refused (its target untouched), and so is the file a
 * run still writes (its lock held), which that run still commits. */
START_TEST(index_new_left_by_kill)
{
    const char *id = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char path[512], nw[520], once[512], tgt[512];
    uint8_t key[PT_INDEX_KEY], *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    pt_buf r1 = {0}, r2 = {0};
    pt_ixw w, w2;
    struct stat st;
    FILE *f;

    snprintf(path, sizeof path, "%s", tu_path(tmpdir, "kill.index"));
    snprintf(nw, sizeof nw, "%s.new", path);
    snprintf(once, sizeof once, "%s", tu_path(tmpdir, "kill-once.index"));
    snprintf(tgt, sizeof tgt, "%s", tu_path(tmpdir, "kill-target"));
    memset(key, 'k', sizeof key);
    /* a killed first run's file, longer than the next one's, mode 0644 */
    ck_assert_ptr_nonnull(f = fopen(nw, "w"));
    for (int i = 0; i < 5000; i++)
        fputs("left by a killed run\n", f);
    fclose(f);
    ck_assert_int_eq(chmod(nw, 0644), 0);
    ck_assert_int_eq(pt_index_begin(&w, path, id, 0), PATIENT_OK);
    ck_assert_int_eq(w.fresh, 1);
    /* another run meanwhile: refused, and its abort leaves the file */
    ck_assert_int_eq(pt_index_begin(&w2, path, id, 0), PATIENT_ERR_EXISTS);
    pt_index_abort(&w2);
    ck_assert_int_eq(stat(nw, &st), 0);
    for (uint64_t i = 0; i < 10; i++) {
        ck_assert_int_eq(pt_index_rec_add(&r1, key, i), PATIENT_OK);
        ck_assert_int_eq(pt_index_rec_add(&r2, key, i), PATIENT_OK);
    }
    ck_assert_int_eq(pt_index_commit(&w, &r1, 10), PATIENT_OK);
    pt_index_abort(&w);
    ck_assert_int_eq(index_once(once, id, 0, 10, &r2), PATIENT_OK);
    ck_assert_int_eq(pt_read_file(path, 1 << 20, &a, &alen), PATIENT_OK);
    ck_assert_int_eq(pt_read_file(once, 1 << 20, &b, &blen), PATIENT_OK);
    ck_assert_uint_eq(alen, 128 + 11 * 24);
    ck_assert_uint_eq(alen, blen);
    ck_assert_mem_eq(a, b, alen);
    free(a);
    free(b);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(lstat(nw, &st), -1); /* none left */
    /* forged twins: a symlink (to a file it would write), a FIFO, a
     * folder at PATH.new; a run starting anew (another log) refuses each */
    ck_assert_ptr_nonnull(f = fopen(tgt, "w"));
    fputs("target\n", f);
    fclose(f);
    for (int kind = 0; kind < 3; kind++) {
        if (kind == 0)
            ck_assert_int_eq(symlink(tgt, nw), 0);
        else if (kind == 1)
            ck_assert_int_eq(mkfifo(nw, 0600), 0);
        else
            ck_assert_int_eq(mkdir(nw, 0700), 0);
        ck_assert_int_eq(pt_index_begin(&w, path, "ff", 10), PATIENT_ERR_UNSAFE_PATH);
        pt_index_abort(&w);
        ck_assert_int_eq(lstat(nw, &st), 0); /* left alone */
        ck_assert_int_eq(kind == 2 ? rmdir(nw) : unlink(nw), 0);
    }
    ck_assert_int_eq(pt_read_file(tgt, 1 << 20, &a, &alen), PATIENT_OK);
    ck_assert_uint_eq(alen, 7);
    ck_assert_mem_eq(a, "target\n", 7);
    free(a);
    ck_assert_int_eq(pt_read_file(path, 1 << 20, &a, &alen), PATIENT_OK);
    ck_assert_uint_eq(alen, blen); /* the index untouched */
    free(a);
    unlink(tgt);
    pt_buf_free(&r1);
    pt_buf_free(&r2);
}
END_TEST

/* A tree head as patient audit takes it: SIZE:ROOT, ROOT in hex (either
 * case) or base64; every accepted form has a malformed twin refused. */
START_TEST(tree_head_text)
{
#define HEX "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    static const char *const bad[] = {
        "", ":" HEX, "7", "7:", "07:" HEX, "+7:" HEX, "-7:" HEX, " 7:" HEX, "7 :" HEX,
        "18446744073709551616:" HEX, "123456789012345678901234:" HEX,
        "7:" HEX "0", "7:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbeb",
        "7:g0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
        "7:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbe f",
        "7:oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=x", "7:oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr==",
        "7:oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8", "7:oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8-",
        "7:oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9",
    };
    uint8_t want[32], root[32];
    uint64_t size = 0;

    for (int i = 0; i < 32; i++)
        want[i] = (uint8_t)(0xa0 + i);
    ck_assert_int_eq(patient_tree_head_parse("7:" HEX, &size, root), PATIENT_OK);
    ck_assert_uint_eq(size, 7);
    ck_assert_mem_eq(root, want, 32);
    memset(root, 0, sizeof root);
    ck_assert_int_eq(patient_tree_head_parse("0:A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF",
                                             &size, root), PATIENT_OK);
    ck_assert_uint_eq(size, 0);
    ck_assert_mem_eq(root, want, 32);
    memset(root, 0, sizeof root);
    ck_assert_int_eq(patient_tree_head_parse("18446744073709551615:oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=",
                                             &size, root), PATIENT_OK);
    ck_assert_uint_eq(size, UINT64_MAX);
    ck_assert_mem_eq(root, want, 32);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(patient_tree_head_parse(bad[i], &size, root) == PATIENT_ERR_PARSE, "%s", bad[i]);
    ck_assert_int_eq(patient_tree_head_parse(NULL, &size, root), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_tree_head_parse("7:" HEX, NULL, root), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_tree_head_parse("7:" HEX, &size, NULL), PATIENT_ERR_ARG);
#undef HEX
}
END_TEST

START_TEST(tree_size_text)
{
    /* Each accepted size has a forged twin one byte away that is refused. */
    static const struct {
        const char *ok;
        uint64_t v;
        const char *bad;
    } c[] = {
        {"0", 0, "00"},
        {"7", 7, "07"},
        {"10", 10, "+10"},
        {"86400", 86400, "-86400"},
        {"4294967296", 4294967296u, " 4294967296"},
        {"18446744073709551615", UINT64_MAX, "18446744073709551616"},
        {"9", 9, "9x"},
        {"1", 1, ""},
        {"18446744073709551615", UINT64_MAX, "99999999999999999999"},
        {"18446744073709551615", UINT64_MAX, "184467440737095516150"},
        {"9223372036854775808", 9223372036854775808ULL, "7 "},
    };
    uint64_t v;

    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        v = 42;
        ck_assert_msg(patient_tree_size_parse(c[i].ok, strlen(c[i].ok), &v) == PATIENT_OK, "%s", c[i].ok);
        ck_assert_uint_eq(v, c[i].v);
        v = 42;
        ck_assert_msg(patient_tree_size_parse(c[i].bad, strlen(c[i].bad), &v) == PATIENT_ERR_PARSE, "%s",
                      c[i].bad);
        ck_assert_uint_eq(v, 42);
    }
    /* n bounds the text: "12:" read as its first two bytes is 12, as three is not a size. */
    ck_assert_int_eq(patient_tree_size_parse("12:", 2, &v), PATIENT_OK);
    ck_assert_uint_eq(v, 12);
    ck_assert_int_eq(patient_tree_size_parse("12:", 3, &v), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_tree_size_parse(NULL, 0, &v), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_tree_size_parse("7", 1, NULL), PATIENT_ERR_ARG);
}
END_TEST

/* A monitor's state file for a tree of size leaves whose size line reads
 * size_text: made-up tile hashes, and the frontier and root they give, so
 * that only the size line decides whether it is read. */
static char *
state_text(const char *size_text, uint64_t size)
{
    pt_buf b = {0}, tiles = {0};
    pt_merkle_frontier fr;
    uint8_t h[32];
    char hex[65];
    unsigned nf = 0, ctr = 0;

    pt_merkle_frontier_init(&fr);
    for (int L = PT_TILE_LEVELS - 1; L >= 0; L--) {
        unsigned w = (unsigned)((size >> (8 * L)) % PATIENT_TILE_WIDTH);
        pt_merkle_frontier sub;
        if (w == 0)
            continue;
        pt_merkle_frontier_init(&sub);
        ck_assert_int_eq(pt_buf_appendf(&tiles, "tile %d ", L), PATIENT_OK);
        for (unsigned k = 0; k < w; k++, ctr++) {
            ck_assert_int_eq(patient_sha256(&ctr, sizeof ctr, h), PATIENT_OK);
            ck_assert_int_eq(pt_merkle_frontier_add(&sub, h), PATIENT_OK);
            pt_hex(h, 32, hex);
            ck_assert_int_eq(pt_buf_appendf(&tiles, "%s", hex), PATIENT_OK);
        }
        ck_assert_int_eq(pt_buf_appendf(&tiles, "\n"), PATIENT_OK);
        memcpy(fr.node[nf], sub.node, (size_t)__builtin_popcount(w) * 32);
        nf += (unsigned)__builtin_popcount(w);
    }
    fr.size = size;
    ck_assert_int_eq(pt_merkle_frontier_root(&fr, h), PATIENT_OK);
    pt_hex(h, 32, hex);
    ck_assert_int_eq(pt_buf_appendf(&b,
                                    "patient-monitor 1\norigin https://log.test\nlog_id %s\n"
                                    "size %s\nroot %s\nlast %s\nfrontier",
                                    hex, size_text, hex, hex),
                     PATIENT_OK);
    for (unsigned i = 0; i < nf; i++) {
        pt_hex(fr.node[i], 32, hex);
        ck_assert_int_eq(pt_buf_appendf(&b, " %s", hex), PATIENT_OK);
    }
    ck_assert_int_eq(pt_buf_appendf(&b, "\n%.*s", (int)tiles.len, (char *)tiles.data),
                     PATIENT_OK);
    pt_buf_free(&tiles);
    return (char *)b.data;
}

/* The state file's size line: decimal, no sign, blank or leading zero, at
 * most 19 digits (docs/format/log.md); each accepted size has a twin of
 * the same tree refused for its text alone. */
START_TEST(state_size_text)
{
    static const struct {
        const char *ok;
        uint64_t v;
        const char *bad;
    } c[] = {
        {"1", 1, "01"},
        {"7", 7, "+7"},
        {"256", 256, " 256"},
        {"65793", 65793, "65793 "},
        {"9223372036854775808", 9223372036854775808ULL, "09223372036854775808"},
        {"9999999999999999999", 9999999999999999999ULL, "09999999999999999999"},
    };
    static const struct {
        const char *text;
        uint64_t v;
    } over[] = {
        {"10000000000000000000", 10000000000000000000ULL}, /* 20 digits */
        {"18446744073709551615", UINT64_MAX},
        {"", 1},
        {"1x", 1},
    };
    pt_mstate *st = malloc(sizeof *st);
    char *t;

    ck_assert_ptr_nonnull(st);
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        t = state_text(c[i].ok, c[i].v);
        ck_assert_msg(pt_mstate_parse((const uint8_t *)t, strlen(t), st) == 0, "%s", c[i].ok);
        ck_assert_uint_eq(st->t.size, c[i].v);
        free(t);
        t = state_text(c[i].bad, c[i].v);
        ck_assert_msg(pt_mstate_parse((const uint8_t *)t, strlen(t), st) == -1, "%s", c[i].bad);
        ck_assert_int_eq(st->have, 0);
        free(t);
    }
    for (size_t i = 0; i < sizeof over / sizeof *over; i++) {
        t = state_text(over[i].text, over[i].v);
        ck_assert_msg(pt_mstate_parse((const uint8_t *)t, strlen(t), st) == -1, "%s", over[i].text);
        free(t);
    }
    free(st);
}
END_TEST

/* Line j of bundle k for pool_more_workers_than_bundles: lengths vary. */
static int
pool_line(char *out, size_t cap, unsigned k, unsigned j)
{
    return snprintf(out, cap, "bundle %u line %u %.*s", k, j, (int)(j % 37),
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

/* The scan workers, more of them than a batch has bundles (a machine with
 * more cores than a batch's four): the workers split the bundles first,
 * then share the lines out in slices, each once its bundle is split. Every
 * line is hashed as a worker alone or the caller alone (no worker) hashes
 * it; a bundle that is not its lines (bundle 2: a line short) is not
 * split_ok and its lines are left empty; a partial last bundle's lines
 * past w are not the batch's. As many workers as bundles or fewer: a
 * bundle a worker, the same. Which thread splits is not observable here:
 * this checks that the split phase hands out, waits and hashes right. */
START_TEST(pool_more_workers_than_bundles)
{
    enum { NB = 4 };
    static const unsigned nths[] = {0, 1, 2, 3, 4, 5, 8, 16};
    static char body[NB][PATIENT_TILE_WIDTH * 64];
    lbundle bun[NB];
    char want[64];
    uint8_t h[32], pre[80];
    lbatch b;
    lpool *p;

    for (size_t t = 0; t < sizeof nths / sizeof *nths; t++)
        for (size_t nb = 1; nb <= NB; nb++) {
            memset(bun, 0, sizeof bun);
            for (unsigned k = 0; k < nb; k++) {
                size_t len = 0;
                for (unsigned j = 0; j < PATIENT_TILE_WIDTH - (k == 2); j++) {
                    len += (size_t)pool_line(body[k] + len, sizeof body[k] - len, k, j);
                    body[k][len++] = '\n';
                }
                bun[k].body = body[k];
                bun[k].len = len;
                bun[k].have = PATIENT_TILE_WIDTH;
                bun[k].w = k + 1 == nb && nb > 1 ? 200 : PATIENT_TILE_WIDTH;
            }
            ck_assert_int_eq(lb_init(&b, 0), PATIENT_OK);
            ck_assert_int_eq(lb_set_bundles(&b, bun, nb), PATIENT_OK);
            ck_assert_int_eq(lpool_new_n(&p, nths[t]), PATIENT_OK);
            lpool_start(p, &b, LS_CHAIN);
            lpool_wait(p);
            for (unsigned k = 0; k < nb; k++) {
                ck_assert_msg(bun[k].split_ok == (k != 2), "workers %u, bundles %zu: bundle %u",
                              nths[t], nb, k);
                for (unsigned j = 0; j < bun[k].w; j++) {
                    size_t i = bun[k].first + j;
                    const lineinfo *li = &b.info[i];
                    if (k == 2) {
                        ck_assert_uint_eq(b.len[i], 0);
                        continue;
                    }
                    int n = pool_line(want, sizeof want, k, j);
                    ck_assert_uint_eq(b.len[i], (size_t)n);
                    ck_assert_mem_eq(b.line[i], want, (size_t)n);
                    ck_assert_int_eq(li->hash_err, 0);
                    crypto_hash_sha256(h, (const uint8_t *)want, (unsigned long long)n);
                    ck_assert_mem_eq(li->chain, h, 32);
                    pre[0] = 0;
                    memcpy(pre + 1, want, (size_t)n);
                    crypto_hash_sha256(h, pre, (unsigned long long)n + 1);
                    ck_assert_msg(memcmp(li->leaf, h, 32) == 0,
                                  "workers %u, bundles %zu: bundle %u line %u", nths[t], nb, k, j);
                }
            }
            lpool_free(p);
            lb_free(&b);
        }
}
END_TEST

static Suite *
tlog_suite(void)
{
    Suite *s = suite_create("tlog");
    TCase *tc = tcase_create("merkle");

    /* 45,150 proofs: seconds under the sanitizers on a busy machine; the
     * timeout only catches a hang. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, consistency_all_pairs);
    tcase_add_test(tc, tile_paths);
    tcase_add_test(tc, tiles_add_sub_same_tree);
    tcase_add_test(tc, tree_head_text);
    tcase_add_test(tc, tree_size_text);
    tcase_add_test(tc, state_size_text);
    tcase_add_test(tc, pool_more_workers_than_bundles);
    suite_add_tcase(s, tc);
    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, log_consistency_file);
    tcase_add_test(tc, note_sign_open);
    tcase_add_test(tc, publish_writer_equals_file);
    tcase_add_test(tc, publish_prunes_partials);
    tcase_add_test(tc, publish_folders_removed);
    tcase_add_test(tc, publish_refuses_symlinks);
    tcase_add_test(tc, publish_error_keeps_tree);
    tcase_add_test(tc, line_maybe_checkpoint);
    tcase_add_test(tc, index_header_size_text);
    tcase_add_test(tc, index_append_tail);
    tcase_add_test(tc, index_written_as_it_goes);
    tcase_add_test(tc, index_new_left_by_kill);
    tcase_add_test(tc, index_close_fails);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(tlog_suite());
    int failed;

    if (sodium_init() < 0)
        return 1;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
