/* Undoing a hop into a reused buffer, in place, and as pieces (lib/edit.c
 * and lib/pieces.c internals the verifier uses): the same bytes as
 * patient_change_undo for random edit lists, and every refusal leaves the
 * buffer as it was; line and column over pieces as over one buffer. */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <patient/change.h>
#include <patient/hash.h>
#include "../lib/change_int.h"
#include "../lib/pieces.h"
#include "testutil.h"

static uint64_t rng_state;

static uint32_t
rnd(uint32_t n) /* 0..n-1, fixed sequence (xorshift64) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

/* A hop made by hand: random sorted edits on in, its output, sizes and
 * hashes. The descriptor's pointers point into in and ins. */
typedef struct {
    uint8_t *in, *out, ins[64][8];
    size_t in_len, out_len;
    patient_edit e[64];
    patient_change c;
} hop_case;

static void
make_case(hop_case *h, size_t in_len)
{
    size_t i, pos = 0, n;

    memset(h, 0, sizeof *h);
    h->in = malloc(in_len ? in_len : 1);
    ck_assert_ptr_nonnull(h->in);
    for (i = 0; i < in_len; i++)
        h->in[i] = (uint8_t)('a' + rnd(26));
    h->in_len = in_len;
    for (;;) {
        n = 0;
        pos = 0;
        while (n < 64 && rnd(4) != 0) {
            patient_edit *e = &h->e[n];
            size_t gap = rnd(3) == 0 ? 0 : rnd(in_len / 4 + 2);
            if (pos + gap > in_len)
                break;
            e->offset = pos + gap;
            e->delete_len = rnd(9);
            if (e->delete_len > in_len - e->offset)
                e->delete_len = in_len - e->offset;
            e->insert_len = rnd(9);
            for (i = 0; i < e->insert_len; i++)
                h->ins[n][i] = (uint8_t)('A' + rnd(26));
            e->insert = e->insert_len ? h->ins[n] : NULL;
            e->deleted = e->delete_len ? h->in + e->offset : NULL;
            pos = e->offset + e->delete_len;
            n++;
        }
        if (patient_edits_apply(h->in, in_len, h->e, n, &h->out, &h->out_len) == PATIENT_OK)
            break;
    }
    h->c.edits = h->e;
    h->c.nedits = n;
    h->c.in.size = in_len;
    h->c.out.size = h->out_len;
    ck_assert_int_eq(patient_sha256(h->in, in_len, h->c.in.hash), PATIENT_OK);
    ck_assert_int_eq(patient_sha256(h->out, h->out_len, h->c.out.hash), PATIENT_OK);
}

static void
free_case(hop_case *h)
{
    free(h->in);
    free(h->out);
}

/* Copy the case's output into b, with room for cap bytes. */
static void
load(pt_bigbuf *b, const hop_case *h, size_t cap)
{
    ck_assert_int_eq(pt_bigbuf_reserve(b, cap), PATIENT_OK);
    ck_assert_uint_ge(b->cap, cap);
    if (h->out_len)
        memcpy(b->p, h->out, h->out_len);
}

/* The output split at random points into pieces of their own (copies,
 * so that they do not merge back into one), undone as pieces: the same
 * input; an inserted byte changed (where there is one): HASH. */
static void
check_undo_pieces(const hop_case *h)
{
    pt_pieces out = {0}, in = {0};
    uint8_t *copy = malloc(h->out_len + 1), *back = malloc(h->in_len + 1);
    size_t pos = 0, opos = 0;
    ptrdiff_t shift = 0;

    ck_assert_ptr_nonnull(copy);
    ck_assert_ptr_nonnull(back);
    memcpy(copy, h->out, h->out_len);
    while (pos < h->out_len) {
        size_t k = 1 + rnd(17);
        if (k > h->out_len - pos)
            k = h->out_len - pos;
        /* Skip a byte of address between pieces: they never merge. */
        ck_assert_int_eq(pt_pieces_add(&out, copy + pos, k, -1), PATIENT_OK);
        pos += k;
        if (pos < h->out_len && rnd(2))
            ck_assert_int_eq(pt_pieces_add(&out, copy + pos, 0, -1), PATIENT_OK);
    }
    ck_assert_uint_eq(out.len, h->out_len);
    ck_assert_int_eq(pt_pieces_undo(&h->c, 0, &out, 1, &in), PATIENT_OK);
    ck_assert_uint_eq(in.len, h->in_len);
    pt_pieces_copy(&in, back);
    ck_assert_int_eq(memcmp(back, h->in, h->in_len), 0);
    for (size_t i = 0; i < h->c.nedits; i++) {
        const patient_edit *e = &h->c.edits[i];
        opos = (size_t)((ptrdiff_t)e->offset + shift);
        if (e->insert_len) {
            copy[opos] ^= 0x20;
            ck_assert_int_eq(pt_pieces_undo(&h->c, 0, &out, 1, &in), PATIENT_ERR_HASH);
            ck_assert_uint_eq(in.n, 0);
            /* Without the insert check the bytes are not compared. */
            ck_assert_int_eq(pt_pieces_undo(&h->c, 0, &out, 0, &in), PATIENT_OK);
            copy[opos] ^= 0x20;
            break;
        }
        shift += (ptrdiff_t)e->insert_len - (ptrdiff_t)e->delete_len;
    }
    /* An output one byte short: HASH. */
    if (out.n && out.v[out.n - 1].len > 1) {
        out.v[out.n - 1].len--;
        out.len--;
        ck_assert_int_eq(pt_pieces_undo(&h->c, 0, &out, 1, &in), PATIENT_ERR_HASH);
    }
    pt_pieces_free(&out);
    pt_pieces_free(&in);
    free(copy);
    free(back);
}

static void
check_undo_ways(hop_case *h)
{
    pt_bigbuf b = {0};
    uint8_t *back = NULL, hin[PATIENT_SHA256_BYTES];
    size_t back_len = 0, l = 0, room;

    ck_assert_int_eq(patient_change_undo(&h->c, h->out, h->out_len, &back, &back_len),
                     PATIENT_OK);
    ck_assert_uint_eq(back_len, h->in_len);
    ck_assert_int_eq(memcmp(back, h->in, h->in_len), 0);
    free(back);

    ck_assert_int_eq(pt_change_undo(&h->c, h->out, h->out_len,
                                    PT_UNDO_HASH_OUT | PT_UNDO_HASH_IN, &b, &l, hin),
                     PATIENT_OK);
    ck_assert_uint_eq(l, h->in_len);
    ck_assert_int_eq(memcmp(b.p, h->in, l), 0);
    ck_assert_int_eq(memcmp(hin, h->c.in.hash, sizeof hin), 0);

    /* In place with room to spare, and with room for the output only (a
     * growing undo then moves to a new buffer). */
    room = h->in_len > h->out_len ? h->in_len : h->out_len;
    for (int tight = 0; tight < 2; tight++) {
        pt_bigbuf_free(&b);
        load(&b, h, tight ? h->out_len : room);
        memset(hin, 0, sizeof hin);
        ck_assert_int_eq(pt_change_undo_inplace(&h->c, &b, h->out_len,
                                                PT_UNDO_HASH_OUT | PT_UNDO_HASH_IN, &l, hin),
                         PATIENT_OK);
        ck_assert_uint_eq(l, h->in_len);
        ck_assert_int_eq(memcmp(b.p, h->in, l), 0);
        ck_assert_int_eq(memcmp(hin, h->c.in.hash, sizeof hin), 0);
    }
    pt_bigbuf_free(&b);
    check_undo_pieces(h);
}

START_TEST(random_edits_same_bytes)
{
    rng_state = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 3000; i++) {
        hop_case h;
        make_case(&h, rnd(5) == 0 ? rnd(8) : rnd(400));
        check_undo_ways(&h);
        free_case(&h);
    }
}
END_TEST

START_TEST(big_body_in_place)
{
    hop_case h;

    rng_state = 42;
    make_case(&h, 3u * 1024 * 1024 + 17); /* a mapped (huge-page) buffer */
    check_undo_ways(&h);
    free_case(&h);
}
END_TEST

/* Each refusal: the given error, and the buffer still holds the output. */
static void
refused(hop_case *h, unsigned flags, patient_err want)
{
    pt_bigbuf b = {0};
    size_t l = 99;

    load(&b, h, h->in_len + h->out_len);
    ck_assert_int_eq(pt_change_undo_inplace(&h->c, &b, h->out_len, flags, &l, NULL), want);
    ck_assert_uint_eq(l, 0);
    ck_assert_int_eq(memcmp(b.p, h->out, h->out_len), 0);
    pt_bigbuf_free(&b);
}

START_TEST(forged_in_place)
{
    hop_case h;
    size_t k = 0, saved;

    memset(&h, 0, sizeof h);
    rng_state = 7;
    do {
        free_case(&h);
        make_case(&h, 200);
        for (k = 0; k < h.c.nedits && !(h.e[k].delete_len && h.e[k].insert_len); k++)
            ;
    } while (k == h.c.nedits); /* one edit that deletes and inserts */

    /* Output hash wrong: refused only when the out hash is asked for. */
    h.c.out.hash[0] ^= 1;
    refused(&h, PT_UNDO_HASH_OUT, PATIENT_ERR_HASH);
    h.c.out.hash[0] ^= 1;
    /* Sizes that do not add up. */
    h.c.in.size++;
    refused(&h, 0, PATIENT_ERR_HASH);
    h.c.in.size--;
    h.c.out.size++;
    refused(&h, 0, PATIENT_ERR_HASH);
    h.c.out.size--;
    /* Inserted bytes not where the edit says. */
    h.ins[k][0] ^= 0x20;
    refused(&h, 0, PATIENT_ERR_HASH);
    h.ins[k][0] ^= 0x20;
    /* Edits out of order on the output. */
    if (h.c.nedits > 1) {
        patient_edit t = h.e[0];
        h.e[0] = h.e[h.c.nedits - 1];
        h.e[h.c.nedits - 1] = t;
        refused(&h, 0, PATIENT_ERR_HASH);
        h.e[h.c.nedits - 1] = h.e[0];
        h.e[0] = t;
    }
    /* Deleted bytes withheld: NOT_FOUND, or HASH first when the body is
     * not the output. */
    h.e[k].deleted = NULL;
    refused(&h, PT_UNDO_HASH_OUT, PATIENT_ERR_NOT_FOUND);
    h.c.out.hash[1] ^= 1;
    refused(&h, PT_UNDO_HASH_OUT, PATIENT_ERR_HASH);
    h.c.out.hash[1] ^= 1;
    h.e[k].deleted = h.in + h.e[k].offset;
    /* Buffer smaller than the length given. */
    {
        pt_bigbuf b = {0};
        size_t l;
        load(&b, &h, h.out_len);
        saved = b.cap;
        b.cap = h.out_len - 1;
        ck_assert_int_eq(pt_change_undo_inplace(&h.c, &b, h.out_len, 0, &l, NULL),
                         PATIENT_ERR_ARG);
        b.cap = saved;
        pt_bigbuf_free(&b);
    }
    /* Rebuilt input not what the hop says it received (only checked with
     * PT_UNDO_HASH_IN; the buffer then holds the rebuilt bytes). */
    {
        pt_bigbuf b = {0};
        size_t l;
        load(&b, &h, h.in_len + h.out_len);
        h.c.in.hash[5] ^= 1;
        ck_assert_int_eq(pt_change_undo_inplace(&h.c, &b, h.out_len, PT_UNDO_HASH_IN, &l, NULL),
                         PATIENT_ERR_HASH);
        h.c.in.hash[5] ^= 1;
        pt_bigbuf_free(&b);
    }
    free_case(&h);
}
END_TEST

/* Line and column, the plain way. */
static void
naive_line_col(const uint8_t *p, size_t off, long long *line, long long *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (p[i] == '\n') {
            ++*line;
            *col = 1;
        } else if ((p[i] & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

START_TEST(line_col_over_pieces)
{
    static const char *alphabet[] = {"a", "b", "\n", "\xc3\xa9", "\xe2\x82\xac", " "};
    rng_state = 0x1234567887654321ull;
    for (int round = 0; round < 300; round++) {
        uint8_t text[2048];
        size_t len = 0, want = rnd(sizeof text - 8), pos = 0;
        pt_pieces s = {0};
        pt_linecol lc = {0};
        long long l, c, nl, nc;
        while (len < want) {
            /* Every third round has long lines: a newline in ~300 bytes. */
            uint32_t r = rnd(round % 3 ? 40 : 600);
            const char *a = alphabet[r < 3 ? 2 : r < 5 ? 3 : r < 7 ? 4 : r < 9 ? 5 : r % 2];
            size_t k = strlen(a);
            memcpy(text + len, a, k);
            len += k;
        }
        while (pos < len) {
            size_t k = 1 + rnd(rnd(4) ? 40 : 700);
            if (k > len - pos)
                k = len - pos;
            ck_assert_int_eq(pt_pieces_add(&s, text + pos, k, -1), PATIENT_OK);
            pos += k;
        }
        for (size_t off = 0; off <= len + 3; off += 1 + rnd(97)) {
            pt_pieces_line_col(&s, &lc, off, &l, &c);
            naive_line_col(text, off < len ? off : len, &nl, &nc);
            ck_assert_int_eq(l, nl);
            ck_assert_int_eq(c, nc);
        }
        /* An earlier offset starts again from the top. */
        pt_pieces_line_col(&s, &lc, len / 2, &l, &c);
        naive_line_col(text, len / 2, &nl, &nc);
        ck_assert_int_eq(l, nl);
        ck_assert_int_eq(c, nc);
        /* So does another list, even at a later offset: other bytes in
         * one piece (the cursor must not go on reading the first list). */
        {
            uint8_t other[sizeof text];
            pt_pieces t = {0};
            size_t tlen = len + 1, at = len / 2 + 1;
            for (size_t i = 0; i < tlen; i++)
                other[i] = i % 3 == 2 ? '\n' : (uint8_t)('a' + i % 26);
            ck_assert_int_eq(pt_pieces_add(&t, other, tlen, -1), PATIENT_OK);
            pt_pieces_line_col(&t, &lc, at, &l, &c);
            naive_line_col(other, at, &nl, &nc);
            ck_assert_int_eq(l, nl);
            ck_assert_int_eq(c, nc);
            pt_pieces_free(&t);
        }
        pt_pieces_free(&s);
    }
}
END_TEST

START_TEST(bigbuf_sizes)
{
    pt_bigbuf b = {0};
    uint8_t *p;

    pt_bigbuf_free(NULL);
    pt_bigbuf_free(&b);
    ck_assert_int_eq(pt_bigbuf_reserve(&b, 0), PATIENT_OK);
    ck_assert_ptr_nonnull(b.p);
    ck_assert_int_eq(pt_bigbuf_reserve(&b, 100000), PATIENT_OK);
    ck_assert_int_eq(b.mapped, 0);
    ck_assert_int_eq(pt_bigbuf_reserve(&b, 3u * 1024 * 1024), PATIENT_OK);
    ck_assert_int_eq(b.mapped, 1);
    ck_assert_uint_eq(b.cap % (2u * 1024 * 1024), 0);
    ck_assert_uint_eq((uintptr_t)b.p % (2u * 1024 * 1024), 0);
    memset(b.p, 0xAB, b.cap);
    p = b.p;
    ck_assert_int_eq(pt_bigbuf_reserve(&b, 1000), PATIENT_OK); /* kept, not remapped */
    ck_assert_ptr_eq(b.p, p);
    ck_assert_int_eq(pt_bigbuf_reserve(&b, (size_t)PATIENT_MAX_BODY + 1), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.cap, 0);
    pt_bigbuf_free(&b);
}
END_TEST

/* Pieces of a streamed body (pt_pieces_add_body) never merge with other
 * bytes whose addresses meet them: a descriptor's deleted bytes ending
 * where the body's range starts, or starting where it ends, stay pieces of
 * their own, through pt_pieces_add and through undoing a hop. Merged, the
 * piece would be read as memory across the body's range (never mapped). */
START_TEST(body_pieces_never_join)
{
    uint8_t buf[96];
    const uint8_t *base = buf + 32; /* the "body": buf[32, 64) */
    static const uint8_t ins[4] = {'a', 'b', 'c', 'd'};
    pt_pieces s = {0}, out = {0}, in = {0};
    pt_defers d = {0};
    patient_edit e;
    patient_change c;

    memset(buf, 'x', sizeof buf);
    ck_assert_int_eq(pt_pieces_add(&s, buf + 16, 16, -1), PATIENT_OK);
    ck_assert_int_eq(pt_pieces_add_body(&s, base, 16), PATIENT_OK);
    ck_assert_int_eq(pt_pieces_add_body(&s, base + 16, 16), PATIENT_OK); /* body continues */
    ck_assert_int_eq(pt_pieces_add(&s, base + 32, 16, -1), PATIENT_OK);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_uint_eq(s.len, 64);
    ck_assert_int_eq(s.v[0].body, 0);
    ck_assert_int_eq(s.v[1].body, 1);
    ck_assert_uint_eq(s.v[1].len, 32);
    ck_assert_int_eq(s.v[2].body, 0);
    ck_assert_int_eq(pt_pieces_add_body(&s, NULL, 1), PATIENT_ERR_ARG);
    pt_pieces_free(&s);

    ck_assert_int_eq(pt_pieces_add_body(&out, base, 32), PATIENT_OK);
    memset(&c, 0, sizeof c);
    c.edits = &e;
    c.nedits = 1;
    c.out.size = 32;
    c.in.size = 48;
    /* Deleted bytes that end where the body starts. */
    e = (patient_edit){0};
    e.offset = 0;
    e.delete_len = 16;
    e.deleted = buf + 16;
    ck_assert_int_eq(pt_pieces_undo_defer(&c, 0, &out, base, 32, &d, &in), PATIENT_OK);
    ck_assert_uint_eq(in.n, 2);
    ck_assert_uint_eq(in.len, 48);
    ck_assert_ptr_eq(in.v[0].p, buf + 16);
    ck_assert_int_eq(in.v[0].body, 0);
    ck_assert_ptr_eq(in.v[1].p, base);
    ck_assert_int_eq(in.v[1].body, 1);
    /* Deleted bytes that start where the body ends. */
    e.offset = 32;
    e.deleted = buf + 64;
    ck_assert_int_eq(pt_pieces_undo_defer(&c, 0, &out, base, 32, &d, &in), PATIENT_OK);
    ck_assert_uint_eq(in.n, 2);
    ck_assert_int_eq(in.v[0].body, 1);
    ck_assert_uint_eq(in.v[0].len, 32);
    ck_assert_ptr_eq(in.v[1].p, buf + 64);
    ck_assert_int_eq(in.v[1].body, 0);
    ck_assert_uint_eq(d.n, 0);
    /* Inserted bytes in the body are deferred, not read; undone without a
     * body region to defer them to, they are refused, not read. */
    e.offset = 0;
    e.deleted = buf + 16;
    e.insert = ins;
    e.insert_len = sizeof ins;
    c.in.size = 16 + 32 - sizeof ins;
    ck_assert_int_eq(pt_pieces_undo_defer(&c, 0, &out, base, 32, &d, &in), PATIENT_OK);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_uint_eq(d.v[0].off, 0);
    ck_assert_uint_eq(d.v[0].len, sizeof ins);
    ck_assert_int_eq(pt_pieces_undo(&c, 0, &out, 1, &in), PATIENT_ERR_STATE);
    ck_assert_uint_eq(in.n, 0);
    free(d.v);
    pt_pieces_free(&in);
    pt_pieces_free(&out);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("undo");
    TCase *tc = tcase_create("undo");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, random_edits_same_bytes);
    tcase_add_test(tc, big_body_in_place);
    tcase_add_test(tc, forged_in_place);
    tcase_add_test(tc, bigbuf_sizes);
    tcase_add_test(tc, line_col_over_pieces);
    tcase_add_test(tc, body_pieces_never_join);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
