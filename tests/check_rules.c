/* Rule engine: loading, each action, media-type filters, overlap
 * resolution, binary bodies, caps and exact error codes. */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <patient/rules.h>
#include "testutil.h"

#define DATA TEST_SRCDIR "/data/"
#define EXAMPLE TEST_SRCDIR "/../middlebox/rules/example.json"
#define TRACKERS TEST_SRCDIR "/../middlebox/rules/trackers-only.json"

/* Kept out of the fixture so the repository never holds the raw string. */
static const char eicar[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

typedef struct {
    size_t off, del;
    char ins[512];
    size_t ins_len;
    char reason[64], id[64];
    int disclose;
    patient_rule_action action;
} edit;

typedef struct {
    edit e[64];
    size_t n;
    size_t stop_after; /* 0: never */
} edits;

static patient_err
collect(void *ctx, const patient_rule_match *m)
{
    edits *es = ctx;
    edit *e;

    ck_assert_uint_lt(es->n, 64);
    /* The contract: strictly ascending, distinct offsets. */
    if (es->n > 0)
        ck_assert_uint_gt(m->offset, es->e[es->n - 1].off);
    e = &es->e[es->n++];
    e->off = m->offset;
    e->del = m->delete_len;
    ck_assert_uint_lt(m->insert_len, sizeof e->ins);
    memcpy(e->ins, m->insert, m->insert_len);
    e->ins[m->insert_len] = '\0';
    e->ins_len = m->insert_len;
    snprintf(e->reason, sizeof e->reason, "%s", m->reason);
    snprintf(e->id, sizeof e->id, "%s", m->rule_id);
    e->disclose = m->disclose;
    e->action = m->action;
    if (es->stop_after && es->n >= es->stop_after)
        return PATIENT_ERR_INTERRUPTED;
    return PATIENT_OK;
}

static patient_rules *
parse_ok(const char *json)
{
    patient_rules *r = NULL;
    char *detail = NULL;
    patient_err err = patient_rules_parse(json, strlen(json), &r, &detail);

    ck_assert_msg(err == PATIENT_OK, "parse: %s: %s", patient_errname(err),
                  detail ? detail : "");
    ck_assert_ptr_null(detail);
    return r;
}

/* Parse must fail with exactly want; returns the detail (caller frees). */
static char *
parse_fail(const char *json, patient_err want)
{
    patient_rules *r = NULL;
    char *detail = NULL;
    patient_err err = patient_rules_parse(json, strlen(json), &r, &detail);

    ck_assert_msg(err == want, "want %s, got %s (%s)", patient_errname(want),
                  patient_errname(err), detail ? detail : "");
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(detail);
    return detail;
}

static void
apply(const patient_rules *r, const char *body, size_t len, const char *mt, edits *es)
{
    patient_err err;

    memset(es, 0, sizeof *es);
    err = patient_rules_apply(r, body, len, mt, collect, es);
    ck_assert_msg(err == PATIENT_OK, "apply: %s", patient_errname(err));
}

#define ONE(action_json, match_json)                                                             \
    "{\"patient\":1,\"type\":\"rules\",\"rules\":[{\"id\":\"r1\",\"match\":" match_json            \
    ",\"reason\":\"test.edit\"," action_json "}]}"

/* ---- each action ---- */

START_TEST(action_remove)
{
    patient_rules *r = parse_ok(ONE("\"action\":\"remove\"", "{\"literal\":\"bad\"}"));
    edits es;

    ck_assert_uint_eq(patient_rules_count(r), 1);
    apply(r, "a bad b bad", 11, NULL, &es);
    ck_assert_uint_eq(es.n, 2);
    ck_assert_uint_eq(es.e[0].off, 2);
    ck_assert_uint_eq(es.e[0].del, 3);
    ck_assert_uint_eq(es.e[0].ins_len, 0);
    ck_assert_uint_eq(es.e[1].off, 8);
    ck_assert_str_eq(es.e[0].reason, "test.edit");
    ck_assert_str_eq(es.e[0].id, "r1");
    ck_assert_int_eq(es.e[0].disclose, 1); /* default */
    ck_assert_int_eq(es.e[0].action, PATIENT_RULE_REMOVE);
    /* Negative twin: no match, no callback. */
    apply(r, "a BAD b", 7, NULL, &es);
    ck_assert_uint_eq(es.n, 0);
    patient_rules_free(r);
}
END_TEST

START_TEST(action_replace)
{
    patient_rules *r =
        parse_ok(ONE("\"action\":\"replace\",\"text\":\"good\"", "{\"regex\":\"b[a-z]d\"}"));
    edits es;

    apply(r, "a bad b bid", 11, NULL, &es);
    ck_assert_uint_eq(es.n, 2);
    ck_assert_uint_eq(es.e[0].off, 2);
    ck_assert_uint_eq(es.e[0].del, 3);
    ck_assert_str_eq(es.e[0].ins, "good");
    ck_assert_uint_eq(es.e[1].off, 8);
    ck_assert_int_eq(es.e[1].action, PATIENT_RULE_REPLACE);
    patient_rules_free(r);
    /* Replace with empty text is allowed (a removal with another action name). */
    r = parse_ok(ONE("\"action\":\"replace\",\"text\":\"\"", "{\"literal\":\"x\"}"));
    apply(r, "axb", 3, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].del, 1);
    ck_assert_uint_eq(es.e[0].ins_len, 0);
    patient_rules_free(r);
}
END_TEST

START_TEST(action_insert_before)
{
    patient_rules *r = parse_ok(
        ONE("\"action\":\"insert_before\",\"text\":\"[\"", "{\"regex\":\"X+\",\"icase\":true}"));
    edits es;

    apply(r, "abxXc", 5, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].off, 2);
    ck_assert_uint_eq(es.e[0].del, 0);
    ck_assert_str_eq(es.e[0].ins, "[");
    patient_rules_free(r);
}
END_TEST

START_TEST(action_insert_after)
{
    patient_rules *r =
        parse_ok(ONE("\"action\":\"insert_after\",\"text\":\"]\"", "{\"regex\":\"X+\"}"));
    edits es;

    apply(r, "abXXc", 5, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].off, 4);
    ck_assert_uint_eq(es.e[0].del, 0);
    ck_assert_str_eq(es.e[0].ins, "]");
    /* At the very end of the body: offset == len is valid. */
    apply(r, "abXX", 4, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].off, 4);
    /* icase off: lower-case x does not match. */
    apply(r, "abxxc", 5, NULL, &es);
    ck_assert_uint_eq(es.n, 0);
    patient_rules_free(r);
}
END_TEST

START_TEST(max_matches_cap)
{
    patient_rules *r =
        parse_ok(ONE("\"action\":\"remove\",\"max_matches\":2", "{\"literal\":\"a\"}"));
    edits es;

    apply(r, "aaaa", 4, NULL, &es);
    ck_assert_uint_eq(es.n, 2);
    ck_assert_uint_eq(es.e[1].off, 1);
    patient_rules_free(r);
}
END_TEST

START_TEST(callback_stops)
{
    patient_rules *r = parse_ok(ONE("\"action\":\"remove\"", "{\"literal\":\"a\"}"));
    edits es;

    memset(&es, 0, sizeof es);
    es.stop_after = 1;
    ck_assert_int_eq(patient_rules_apply(r, "aaa", 3, NULL, collect, &es),
                     PATIENT_ERR_INTERRUPTED);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_int_eq(patient_rules_apply(r, NULL, 3, NULL, collect, &es), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_rules_apply(r, "aaa", 3, NULL, NULL, &es), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_rules_apply(NULL, "aaa", 3, NULL, collect, &es), PATIENT_ERR_ARG);
    /* Empty body: fine, nothing happens. */
    apply(r, NULL, 0, NULL, &es);
    ck_assert_uint_eq(es.n, 0);
    patient_rules_free(r);
}
END_TEST

/* ---- media types ---- */

#define TYPED(types)                                                                             \
    "{\"patient\":1,\"type\":\"rules\",\"rules\":[{\"id\":\"t\",\"match\":{\"literal\":\"x\"},"   \
    "\"action\":\"remove\",\"reason\":\"t.x\",\"types\":" types "}]}"

static size_t
count_for(const patient_rules *r, const char *mt)
{
    edits es;

    apply(r, "axa", 3, mt, &es);
    return es.n;
}

START_TEST(media_exact)
{
    patient_rules *r = parse_ok(TYPED("[\"text/html\"]"));

    ck_assert_uint_eq(count_for(r, "text/html"), 1);
    ck_assert_uint_eq(count_for(r, "text/html; charset=utf-8"), 1);
    ck_assert_uint_eq(count_for(r, "  Text/HTML;charset=UTF-8"), 1);
    ck_assert_uint_eq(count_for(r, "text/htmlx"), 0);
    ck_assert_uint_eq(count_for(r, "text/plain"), 0);
    ck_assert_uint_eq(count_for(r, "image/png"), 0);
    ck_assert_uint_eq(count_for(r, NULL), 0); /* unknown type: filtered rules skip */
    ck_assert_uint_eq(count_for(r, ""), 0);
    ck_assert_uint_eq(count_for(r, "garbage"), 0);
    patient_rules_free(r);
}
END_TEST

START_TEST(media_glob)
{
    patient_rules *r = parse_ok(TYPED("[\"TEXT/*\"]"));

    ck_assert_uint_eq(count_for(r, "text/html; charset=utf-8"), 1);
    ck_assert_uint_eq(count_for(r, "text/plain"), 1);
    ck_assert_uint_eq(count_for(r, "textual/plain"), 0);
    ck_assert_uint_eq(count_for(r, "image/png"), 0);
    patient_rules_free(r);
    r = parse_ok(TYPED("[\"*\"]"));
    ck_assert_uint_eq(count_for(r, "image/png"), 1);
    ck_assert_uint_eq(count_for(r, NULL), 0);
    patient_rules_free(r);
    /* No filter: every type, and unknown. */
    r = parse_ok(ONE("\"action\":\"remove\"", "{\"literal\":\"x\"}"));
    ck_assert_uint_eq(count_for(r, "image/png"), 1);
    ck_assert_uint_eq(count_for(r, NULL), 1);
    patient_rules_free(r);
    free(parse_fail(TYPED("[\"text/h*\"]"), PATIENT_ERR_PARSE));
    free(parse_fail(TYPED("[\"*/html\"]"), PATIENT_ERR_PARSE));
    free(parse_fail(TYPED("[\"text\"]"), PATIENT_ERR_PARSE));
    free(parse_fail(TYPED("[\"text/html; charset=utf-8\"]"), PATIENT_ERR_PARSE));
    free(parse_fail(TYPED("[]"), PATIENT_ERR_PARSE));
    free(parse_fail(TYPED("[1]"), PATIENT_ERR_PARSE));
}
END_TEST

/* ---- overlap resolution ---- */

#define R(id, match, action) "{\"id\":\"" id "\",\"match\":" match ",\"reason\":\"t." id "\"," action "}"
#define RULES(...) "{\"patient\":1,\"type\":\"rules\",\"rules\":[" __VA_ARGS__ "]}"

START_TEST(overlap_earlier_start_wins)
{
    /* "bcd" (rule listed second) starts before "cde": it wins. */
    patient_rules *r = parse_ok(RULES(R("late", "{\"literal\":\"cde\"}", "\"action\":\"remove\"")
                                      "," R("early", "{\"literal\":\"bcd\"}",
                                            "\"action\":\"remove\"")));
    edits es;

    apply(r, "abcdef", 6, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_str_eq(es.e[0].id, "early");
    ck_assert_uint_eq(es.e[0].off, 1);
    ck_assert_uint_eq(es.e[0].del, 3);
    patient_rules_free(r);
}
END_TEST

START_TEST(overlap_same_start_first_rule_wins)
{
    patient_rules *r = parse_ok(RULES(
        R("first", "{\"literal\":\"bc\"}", "\"action\":\"replace\",\"text\":\"1\"")
        "," R("second", "{\"literal\":\"bcde\"}", "\"action\":\"replace\",\"text\":\"2\"")));
    edits es;

    apply(r, "abcdef", 6, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_str_eq(es.e[0].id, "first");
    ck_assert_uint_eq(es.e[0].del, 2);
    patient_rules_free(r);
    /* Twin: rule order swapped, the other one wins. */
    r = parse_ok(RULES(
        R("second", "{\"literal\":\"bcde\"}", "\"action\":\"replace\",\"text\":\"2\"")
        "," R("first", "{\"literal\":\"bc\"}", "\"action\":\"replace\",\"text\":\"1\"")));
    apply(r, "abcdef", 6, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_str_eq(es.e[0].id, "second");
    ck_assert_uint_eq(es.e[0].del, 4);
    patient_rules_free(r);
}
END_TEST

START_TEST(overlap_adjacent_kept)
{
    /* Touching but not overlapping matches are both kept. */
    patient_rules *r = parse_ok(RULES(R("a", "{\"literal\":\"ab\"}", "\"action\":\"remove\"")
                                      "," R("b", "{\"literal\":\"cd\"}",
                                            "\"action\":\"remove\"")));
    edits es;

    apply(r, "abcd", 4, NULL, &es);
    ck_assert_uint_eq(es.n, 2);
    ck_assert_uint_eq(es.e[0].off, 0);
    ck_assert_uint_eq(es.e[1].off, 2);
    patient_rules_free(r);
}
END_TEST

START_TEST(overlap_insert_after_then_remove)
{
    /* Banner after "<b>", tracker "T" right behind it: the insertion moves
     * past the removal (same output), both survive with distinct offsets. */
    patient_rules *r = parse_ok(
        RULES(R("banner", "{\"literal\":\"<b>\"}", "\"action\":\"insert_after\",\"text\":\"!\"")
              "," R("trk", "{\"literal\":\"T\"}", "\"action\":\"remove\"")));
    edits es;

    apply(r, "<b>TTx", 6, NULL, &es);
    ck_assert_uint_eq(es.n, 3);
    ck_assert_str_eq(es.e[0].id, "trk");
    ck_assert_uint_eq(es.e[0].off, 3);
    ck_assert_str_eq(es.e[1].id, "trk");
    ck_assert_uint_eq(es.e[1].off, 4);
    ck_assert_str_eq(es.e[2].id, "banner");
    ck_assert_uint_eq(es.e[2].off, 5); /* moved past both adjacent removals */
    ck_assert_uint_eq(es.e[2].del, 0);
    /* Twin: a gap between tag and removal, the insertion stays put. */
    apply(r, "<b>xT", 5, NULL, &es);
    ck_assert_uint_eq(es.n, 2);
    ck_assert_str_eq(es.e[0].id, "banner");
    ck_assert_uint_eq(es.e[0].off, 3);
    ck_assert_uint_eq(es.e[1].off, 4);
    patient_rules_free(r);
}
END_TEST

START_TEST(overlap_insert_after_then_replace)
{
    /* A replace (or insert_before) starting where the insert_after lands
     * wins; the insertion is dropped. */
    patient_rules *r = parse_ok(
        RULES(R("banner", "{\"literal\":\"<b>\"}", "\"action\":\"insert_after\",\"text\":\"!\"")
              "," R("rep", "{\"literal\":\"T\"}", "\"action\":\"replace\",\"text\":\"U\"")
              "," R("ib", "{\"literal\":\"Z\"}", "\"action\":\"insert_before\",\"text\":\"z\"")));
    edits es;

    apply(r, "<b>T", 4, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_str_eq(es.e[0].id, "rep");
    ck_assert_uint_eq(es.e[0].off, 3);
    apply(r, "<b>Z", 4, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_str_eq(es.e[0].id, "ib");
    /* Removal then a replace: the insertion moves past the removal, then
     * meets the replace and is dropped. */
    patient_rules_free(r);
    r = parse_ok(RULES(
        R("banner", "{\"literal\":\"<b>\"}", "\"action\":\"insert_after\",\"text\":\"!\"")
        "," R("trk", "{\"literal\":\"T\"}", "\"action\":\"remove\"")
        "," R("rep", "{\"literal\":\"U\"}", "\"action\":\"replace\",\"text\":\"V\"")));
    apply(r, "<b>TU", 5, NULL, &es);
    ck_assert_uint_eq(es.n, 2);
    ck_assert_str_eq(es.e[0].id, "trk");
    ck_assert_str_eq(es.e[1].id, "rep");
    patient_rules_free(r);
}
END_TEST

START_TEST(overlap_two_insert_after)
{
    /* insert_after at X and a kept insert_after whose match starts at X: both
     * kept (the second inserts at its own match end). */
    patient_rules *r =
        parse_ok(RULES(R("a", "{\"literal\":\"ab\"}", "\"action\":\"insert_after\",\"text\":\"1\"")
                       "," R("b", "{\"literal\":\"cd\"}",
                             "\"action\":\"insert_after\",\"text\":\"2\"")));
    edits es;

    apply(r, "abcd", 4, NULL, &es);
    ck_assert_uint_eq(es.n, 2);
    ck_assert_uint_eq(es.e[0].off, 2);
    ck_assert_str_eq(es.e[0].ins, "1");
    ck_assert_uint_eq(es.e[1].off, 4);
    ck_assert_str_eq(es.e[1].ins, "2");
    patient_rules_free(r);
}
END_TEST

/* ---- binary bodies, empty matches ---- */

START_TEST(nul_bytes)
{
    static const char body[] = "a\0b\0EVIL\0tail\0Evil";
    size_t len = sizeof body - 1;
    patient_rules *r =
        parse_ok(RULES(R("lit", "{\"literal\":\"EVIL\"}", "\"action\":\"remove\"")
                       "," R("rx", "{\"regex\":\"t[a-z]+l\"}", "\"action\":\"remove\"")
                       "," R("ic", "{\"regex\":\"evil$\",\"icase\":true}",
                             "\"action\":\"remove\"")));
    edits es;

    apply(r, body, len, NULL, &es);
    ck_assert_uint_eq(es.n, 3);
    ck_assert_uint_eq(es.e[0].off, 4);
    ck_assert_str_eq(es.e[0].id, "lit");
    ck_assert_uint_eq(es.e[1].off, 9);
    ck_assert_str_eq(es.e[1].id, "rx");
    ck_assert_uint_eq(es.e[1].del, 4);
    ck_assert_uint_eq(es.e[2].off, 14); /* "$" anchors at the body end, past NULs */
    ck_assert_str_eq(es.e[2].id, "ic");
    patient_rules_free(r);
    /* A regex may span NUL bytes through a bracket expression. */
    r = parse_ok(ONE("\"action\":\"remove\"", "{\"regex\":\"b[^E]*E\"}"));
    apply(r, body, len, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].off, 2);
    ck_assert_uint_eq(es.e[0].del, 3);
    patient_rules_free(r);
}
END_TEST

START_TEST(empty_matches_skipped)
{
    patient_rules *r = parse_ok(ONE("\"action\":\"remove\"", "{\"regex\":\"x*\"}"));
    edits es;

    apply(r, "abxxcx", 6, NULL, &es);
    ck_assert_uint_eq(es.n, 2);
    ck_assert_uint_eq(es.e[0].off, 2);
    ck_assert_uint_eq(es.e[0].del, 2);
    ck_assert_uint_eq(es.e[1].off, 5);
    apply(r, "bbbb", 4, NULL, &es);
    ck_assert_uint_eq(es.n, 0);
    patient_rules_free(r);
    /* "^" anchors at the start only; no infinite loop on "^". */
    r = parse_ok(ONE("\"action\":\"insert_before\",\"text\":\"X\"", "{\"regex\":\"^a\"}"));
    apply(r, "aaa", 3, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].off, 0);
    patient_rules_free(r);
}
END_TEST

/* ---- the shipped example rules ---- */

static char *
sample_page(size_t *len)
{
    FILE *f = fopen(DATA "rules_page.html", "rb");
    char raw[4096], *out, *at;
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(raw, 1, sizeof raw - 1, f);
    fclose(f);
    raw[n] = '\0';
    at = strstr(raw, "@EICAR@");
    ck_assert_ptr_nonnull(at);
    out = malloc(n + sizeof eicar);
    ck_assert_ptr_nonnull(out);
    *len = (size_t)snprintf(out, n + sizeof eicar, "%.*s%s%s", (int)(at - raw), raw, eicar,
                            at + 7);
    return out;
}

START_TEST(example_rules_on_page)
{
    patient_rules *r = NULL;
    char *detail = NULL, *page;
    size_t len;
    edits es;

    ck_assert_int_eq(patient_rules_load(EXAMPLE, &r, &detail), PATIENT_OK);
    ck_assert_uint_eq(patient_rules_count(r), 3);
    page = sample_page(&len);
    ck_assert_uint_eq(len, 431);
    apply(r, page, len, "text/html; charset=utf-8", &es);
    ck_assert_uint_eq(es.n, 3);
    /* 1: the tracker <SCRIPT ... SRC=https://cdn.Tracker.Example/...></SCRIPT> */
    ck_assert_uint_eq(es.e[0].off, 96);
    ck_assert_uint_eq(es.e[0].del, 68);
    ck_assert_str_eq(es.e[0].reason, "tracker.removed");
    ck_assert_str_eq(es.e[0].id, "tracker-script");
    ck_assert_int_eq(es.e[0].disclose, 1);
    ck_assert_int_eq(memcmp(page + 96, "<SCRIPT async", 13), 0);
    ck_assert_int_eq(memcmp(page + 96 + 68 - 9, "</SCRIPT>", 9), 0);
    /* 2: the banner right after <body class="main"> */
    ck_assert_uint_eq(es.e[1].off, 192);
    ck_assert_uint_eq(es.e[1].del, 0);
    ck_assert_str_eq(es.e[1].reason, "banner.inserted");
    ck_assert_int_eq(strncmp(es.e[1].ins, "<div class=\"patient-notice\"", 27), 0);
    ck_assert_int_eq(memcmp(page + 192 - 6, "main\">", 6), 0);
    /* 3: EICAR, withheld */
    ck_assert_uint_eq(es.e[2].off, 218);
    ck_assert_uint_eq(es.e[2].del, sizeof eicar - 1);
    ck_assert_str_eq(es.e[2].reason, "malware.removed");
    ck_assert_int_eq(es.e[2].disclose, 0);
    ck_assert_int_eq(memcmp(page + 218, eicar, sizeof eicar - 1), 0);

    /* Twin: as image/png only the untyped EICAR rule runs. */
    apply(r, page, len, "image/png", &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_str_eq(es.e[0].id, "eicar-test-string");
    patient_rules_free(r);

    /* trackers-only: just the tracker. */
    ck_assert_int_eq(patient_rules_load(TRACKERS, &r, &detail), PATIENT_OK);
    ck_assert_uint_eq(patient_rules_count(r), 1);
    apply(r, page, len, "text/html", &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].off, 96);
    patient_rules_free(r);
    free(page);
}
END_TEST

START_TEST(example_tracker_variants)
{
    patient_rules *r = NULL;
    char *detail = NULL;
    edits es;
    static const char *hit[] = {
        "<script src=\"https://analytics.example/a.js\"></script>",
        "<script type=\"text/javascript\"\nsrc='//ads.doubleclick.net/x'> </script >",
        "<script src=http://tracker.example:8080/t.js></script>",
        "<script src=https://tracker.example></script>",
    };
    static const char *miss[] = {
        "<script src=\"https://example.com/a.js\"></script>",
        "<script src=\"https://nottracker.example.org/t.js\"></script>",
        "<script src=\"https://doubleclick.net.evil/x\"></script>",
        "<script>var u = 'https://tracker.example/';</script>",
        "<img src=\"https://tracker.example/pixel.gif\">",
    };
    size_t i;

    ck_assert_int_eq(patient_rules_load(TRACKERS, &r, &detail), PATIENT_OK);
    for (i = 0; i < sizeof hit / sizeof hit[0]; i++) {
        apply(r, hit[i], strlen(hit[i]), "text/html", &es);
        ck_assert_msg(es.n == 1 && es.e[0].off == 0 && es.e[0].del == strlen(hit[i]),
                      "should strip: %s", hit[i]);
    }
    for (i = 0; i < sizeof miss / sizeof miss[0]; i++) {
        apply(r, miss[i], strlen(miss[i]), "text/html", &es);
        ck_assert_msg(es.n == 0, "should keep: %s", miss[i]);
    }
    patient_rules_free(r);
}
END_TEST

/* ---- concurrent apply ---- */

typedef struct {
    const patient_rules *r;
    const char *page;
    size_t len;
    int ok;
} thr_arg;

static void *
thr(void *p)
{
    thr_arg *a = p;
    edits es;
    int i;

    a->ok = 1;
    for (i = 0; i < 200; i++) {
        memset(&es, 0, sizeof es);
        if (patient_rules_apply(a->r, a->page, a->len, "text/html", collect, &es) != PATIENT_OK ||
            es.n != 3 || es.e[0].off != 96 || es.e[1].off != 192 || es.e[2].off != 218)
            a->ok = 0;
    }
    return NULL;
}

START_TEST(concurrent_apply)
{
    patient_rules *r = NULL;
    char *detail = NULL;
    pthread_t t[4];
    thr_arg a[4];
    size_t len, i;
    char *page = sample_page(&len);

    ck_assert_int_eq(patient_rules_load(EXAMPLE, &r, &detail), PATIENT_OK);
    for (i = 0; i < 4; i++) {
        a[i] = (thr_arg){r, page, len, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, thr, &a[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].ok, 1);
    }
    patient_rules_free(r);
    free(page);
}
END_TEST

/* ---- load errors and caps ---- */

static patient_err
load_code(const char *name, char **detail)
{
    patient_rules *r = NULL;
    patient_err err = patient_rules_load(name, &r, detail);

    if (err != PATIENT_OK)
        ck_assert_ptr_null(r);
    patient_rules_free(r);
    return err;
}

START_TEST(err_regex)
{
    char *d = NULL;

    ck_assert_int_eq(load_code(DATA "rules_bad_regex.json", &d), PATIENT_ERR_REGEX);
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(strstr(d, "\"broken-group\"") != NULL, "detail: %s", d);
    ck_assert_msg(strstr(d, "regex:") != NULL, "detail: %s", d);
    free(d);
    d = parse_fail(ONE("\"action\":\"remove\"", "{\"regex\":\"a[\"}"), PATIENT_ERR_REGEX);
    ck_assert_msg(strstr(d, "\"r1\"") != NULL, "detail: %s", d);
    free(d);
    /* Back-references and exploding repetitions are refused up front. */
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"regex\":\"(a)\\\\1\"}"), PATIENT_ERR_REGEX));
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"regex\":\"((a{200}){200}){200}\"}"),
                    PATIENT_ERR_REGEX));
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"regex\":\"\"}"), PATIENT_ERR_REGEX));
    /* Stacked repetitions: glibc copies the operand per "+", exponentially
     * (fuzz_rules found a pattern that took gigabytes to compile). */
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"regex\":\"a++\"}"), PATIENT_ERR_REGEX));
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"regex\":\"[^>]*{2}\"}"),
                    PATIENT_ERR_REGEX));
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"regex\":\"x{2}?\"}"), PATIENT_ERR_REGEX));
    /* Twin: a fine bounded repetition and an escaped digit class load. */
    patient_rules_free(parse_ok(ONE("\"action\":\"remove\"", "{\"regex\":\"(ab){3,5}[0-9]\"}")));
    patient_rules_free(parse_ok(ONE("\"action\":\"remove\"", "{\"regex\":\"(a+)+b*c?\"}")));
}
END_TEST

START_TEST(err_json_and_parse)
{
    char *d = NULL;

    ck_assert_int_eq(load_code(DATA "rules_bad_json.json", &d), PATIENT_ERR_JSON);
    free(d);
    ck_assert_int_eq(load_code(DATA "rules_unknown_action.json", &d), PATIENT_ERR_PARSE);
    ck_assert_msg(strstr(d, "unknown action") != NULL, "detail: %s", d);
    free(d);
    ck_assert_int_eq(load_code(DATA "rules_dup_id.json", &d), PATIENT_ERR_PARSE);
    ck_assert_msg(strstr(d, "duplicate id") != NULL, "detail: %s", d);
    free(d);
    ck_assert_int_eq(load_code(DATA "rules_does_not_exist.json", &d), PATIENT_ERR_NOT_FOUND);
    free(d);

    free(parse_fail("{\"patient\":2,\"type\":\"rules\",\"rules\":[]}", PATIENT_ERR_UNSUPPORTED));
    free(parse_fail("{\"patient\":1,\"type\":\"policy\",\"rules\":[]}", PATIENT_ERR_PARSE));
    free(parse_fail("{\"patient\":1,\"type\":\"rules\",\"rules\":{}}", PATIENT_ERR_PARSE));
    free(parse_fail("{\"patient\":1,\"type\":\"rules\",\"rules\":[],\"x\":1}", PATIENT_ERR_PARSE));
    free(parse_fail("{\"patient\":1,\"type\":\"rules\",\"type\":\"rules\",\"rules\":[]}",
                    PATIENT_ERR_JSON)); /* duplicate key */
    free(parse_fail("[1]", PATIENT_ERR_PARSE));
    free(parse_fail("", PATIENT_ERR_JSON));
    free(parse_fail("{\"patient\":1,\"type\":\"rules\",\"rules\":[]} x", PATIENT_ERR_JSON));
    /* Field checks. */
    free(parse_fail(ONE("\"action\":\"delete\"", "{\"literal\":\"a\"}"), PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\",\"text\":\"t\"", "{\"literal\":\"a\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"replace\"", "{\"literal\":\"a\"}"), PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"insert_after\",\"text\":\"\"", "{\"literal\":\"a\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"literal\":\"\"}"), PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"literal\":\"a\",\"regex\":\"a\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\"", "{}"), PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"literal\":\"a\",\"icase\":true}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"regex\":\"a\",\"icase\":1}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\"", "{\"literal\":\"a\",\"flags\":\"i\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\",\"disclose\":\"no\"", "{\"literal\":\"a\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\",\"dislcose\":false", "{\"literal\":\"a\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\",\"max_matches\":1.5", "{\"literal\":\"a\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"remove\",\"note\":5", "{\"literal\":\"a\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(ONE("\"action\":\"replace\",\"text\":\"a\\u0000b\"", "{\"literal\":\"a\"}"),
                    PATIENT_ERR_JSON));
    /* ids and reasons */
    free(parse_fail(RULES("{\"id\":\"a b\",\"match\":{\"literal\":\"a\"},\"action\":\"remove\","
                          "\"reason\":\"x.y\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(RULES("{\"match\":{\"literal\":\"a\"},\"action\":\"remove\","
                          "\"reason\":\"x.y\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(RULES("{\"id\":\"a\",\"match\":{\"literal\":\"a\"},\"action\":\"remove\","
                          "\"reason\":\"Tracker.Removed\"}"),
                    PATIENT_ERR_PARSE));
    free(parse_fail(RULES("{\"id\":\"a\",\"match\":{\"literal\":\"a\"},\"action\":\"remove\"}"),
                    PATIENT_ERR_PARSE));
    /* Twin: the same rule with valid id/reason loads; an empty rule list is fine. */
    patient_rules_free(parse_ok(RULES("{\"id\":\"A-b_c.9\",\"match\":{\"literal\":\"a\"},"
                                      "\"action\":\"remove\",\"reason\":\"x-y_z.9\"}")));
    patient_rules_free(parse_ok(RULES("")));
}
END_TEST

static char *
repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static char *
sprintf_alloc(const char *fmt, const char *a)
{
    size_t n = strlen(fmt) + strlen(a) + 1;
    char *s = malloc(n);

    ck_assert_ptr_nonnull(s);
    snprintf(s, n, fmt, a);
    return s;
}
#pragma GCC diagnostic pop

START_TEST(err_caps)
{
    char *x, *j;
    patient_rules *r = NULL;
    char *d = NULL;
    size_t i;
    char path[4096];
    int fd;

    /* pattern: 4096 ok, 4097 too large */
    x = repeat('a', PATIENT_RULES_MAX_PATTERN);
    j = sprintf_alloc(ONE("\"action\":\"remove\"", "{\"literal\":\"%s\"}"), x);
    patient_rules_free(parse_ok(j));
    free(j);
    free(x);
    x = repeat('a', PATIENT_RULES_MAX_PATTERN + 1);
    j = sprintf_alloc(ONE("\"action\":\"remove\"", "{\"literal\":\"%s\"}"), x);
    free(parse_fail(j, PATIENT_ERR_TOO_LARGE));
    free(j);
    j = sprintf_alloc(ONE("\"action\":\"remove\"", "{\"regex\":\"%s\"}"), x);
    free(parse_fail(j, PATIENT_ERR_TOO_LARGE));
    free(j);
    free(x);
    /* text: 64 KiB ok, one more too large */
    x = repeat('t', PATIENT_RULES_MAX_TEXT);
    j = sprintf_alloc(ONE("\"action\":\"replace\",\"text\":\"%s\"", "{\"literal\":\"a\"}"), x);
    patient_rules_free(parse_ok(j));
    free(j);
    free(x);
    x = repeat('t', PATIENT_RULES_MAX_TEXT + 1);
    j = sprintf_alloc(ONE("\"action\":\"replace\",\"text\":\"%s\"", "{\"literal\":\"a\"}"), x);
    free(parse_fail(j, PATIENT_ERR_TOO_LARGE));
    free(j);
    free(x);
    /* id: 128 ok, 129 too large */
    x = repeat('i', PATIENT_RULES_MAX_ID);
    j = sprintf_alloc(RULES("{\"id\":\"%s\",\"match\":{\"literal\":\"a\"},\"action\":\"remove\","
                            "\"reason\":\"x\"}"),
                      x);
    patient_rules_free(parse_ok(j));
    free(j);
    free(x);
    x = repeat('i', PATIENT_RULES_MAX_ID + 1);
    j = sprintf_alloc(RULES("{\"id\":\"%s\",\"match\":{\"literal\":\"a\"},\"action\":\"remove\","
                            "\"reason\":\"x\"}"),
                      x);
    free(parse_fail(j, PATIENT_ERR_TOO_LARGE));
    free(j);
    j = sprintf_alloc(RULES("{\"id\":\"a\",\"match\":{\"literal\":\"a\"},\"action\":\"remove\","
                            "\"reason\":\"%s\"}"),
                      x);
    free(parse_fail(j, PATIENT_ERR_TOO_LARGE));
    free(j);
    free(x);
    /* max_matches range */
    free(parse_fail(ONE("\"action\":\"remove\",\"max_matches\":0", "{\"literal\":\"a\"}"),
                    PATIENT_ERR_LIMIT));
    free(parse_fail(ONE("\"action\":\"remove\",\"max_matches\":100001", "{\"literal\":\"a\"}"),
                    PATIENT_ERR_LIMIT));
    /* rule count: 1000 ok, 1001 over the limit */
    {
        size_t cap = 1100 * 90 + 64;
        char *s = malloc(cap), *p;
        size_t k;
        for (k = 1000; k <= 1001; k++) {
            p = s + snprintf(s, cap, "{\"patient\":1,\"type\":\"rules\",\"rules\":[");
            for (i = 0; i < k; i++)
                p += snprintf(p, cap - (size_t)(p - s),
                              "%s{\"id\":\"r%zu\",\"match\":{\"literal\":\"a\"},\"action\":"
                              "\"remove\",\"reason\":\"x\"}",
                              i ? "," : "", i);
            snprintf(p, cap - (size_t)(p - s), "]}");
            if (k == 1000) {
                r = parse_ok(s);
                ck_assert_uint_eq(patient_rules_count(r), 1000);
                patient_rules_free(r);
            } else {
                free(parse_fail(s, PATIENT_ERR_LIMIT));
            }
        }
        free(s);
    }
    /* file size: over 1 MiB is refused before parsing, from memory and disk */
    x = repeat(' ', PATIENT_RULES_MAX_FILE + 1);
    memcpy(x, "{\"patient\":1,\"type\":\"rules\",\"rules\":[]}", 39);
    ck_assert_int_eq(patient_rules_parse(x, PATIENT_RULES_MAX_FILE + 1, &r, &d),
                     PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(r);
    free(d);
    ck_assert_int_eq(patient_rules_parse(x, PATIENT_RULES_MAX_FILE, &r, &d), PATIENT_OK);
    patient_rules_free(r);
    snprintf(path, sizeof path, "%s/check_rules_XXXXXX", tu_tmp());
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, x, PATIENT_RULES_MAX_FILE + 1), (ssize_t)PATIENT_RULES_MAX_FILE + 1);
    close(fd);
    ck_assert_int_eq(load_code(path, &d), PATIENT_ERR_TOO_LARGE);
    free(d);
    unlink(path);
    free(x);
}
END_TEST

START_TEST(err_candidates_limit)
{
    /* 11 rules x 100000 matches > PATIENT_RULES_MAX_CANDIDATES: refused, no callback. */
    char *s = malloc(11 * 120 + 64), *p, *body;
    size_t i, n = 100000;
    patient_rules *r;
    edits es;

    p = s + sprintf(s, "{\"patient\":1,\"type\":\"rules\",\"rules\":[");
    for (i = 0; i < 11; i++)
        p += sprintf(p,
                     "%s{\"id\":\"r%zu\",\"match\":{\"literal\":\"a\"},\"action\":\"remove\","
                     "\"reason\":\"x\",\"max_matches\":100000}",
                     i ? "," : "", i);
    sprintf(p, "]}");
    r = parse_ok(s);
    body = repeat('a', n);
    memset(&es, 0, sizeof es);
    ck_assert_int_eq(patient_rules_apply(r, body, n, NULL, collect, &es), PATIENT_ERR_LIMIT);
    ck_assert_uint_eq(es.n, 0);
    patient_rules_free(r);
    free(body);
    free(s);
}
END_TEST

START_TEST(err_symlink)
{
    char dir[4096], link[4200];
    char *d = NULL;

    tu_mkdtemp(dir, sizeof dir, "check_rules");
    snprintf(link, sizeof link, "%s/l.json", dir);
    ck_assert_int_eq(symlink(EXAMPLE, link), 0);
    ck_assert_int_eq(load_code(link, &d), PATIENT_ERR_UNSAFE_PATH);
    free(d);
    unlink(link);
    rmdir(dir);
    /* Twin: the target itself loads. */
    ck_assert_int_eq(load_code(EXAMPLE, &d), PATIENT_OK);
    ck_assert_ptr_null(d);
    patient_rules_free(NULL);
    ck_assert_uint_eq(patient_rules_count(NULL), 0);
}
END_TEST

/* patient_rules_sha256 takes NULL like its siblings: 32 zero bytes, which
 * no set's hash is; a set's is the SHA-256 of the bytes it was parsed from. */
START_TEST(rules_sha256_null)
{
    static const uint8_t zero[PATIENT_SHA256_BYTES];
    const char *json = "{\"patient\":1,\"type\":\"rules\",\"rules\":[{\"id\":\"r\",\"match\":"
                       "{\"regex\":\"x\"},\"action\":\"remove\",\"reason\":\"x.removed\"}]}";
    uint8_t out[PATIENT_SHA256_BYTES], want[PATIENT_SHA256_BYTES];
    patient_rules *r = parse_ok(json);

    memset(out, 0xff, sizeof out);
    patient_rules_sha256(NULL, out);
    ck_assert_mem_eq(out, zero, sizeof out);
    patient_rules_sha256(r, out);
    ck_assert_int_eq(patient_sha256(json, strlen(json), want), PATIENT_OK);
    ck_assert_mem_eq(out, want, sizeof out);
    patient_rules_free(r);
}
END_TEST

/* ---- bounded matching (PCRE2) ---------------------------------------- */

#define LIM(limits, regex)                                                                       \
    "{\"patient\":1,\"type\":\"rules\"" limits ",\"rules\":[{\"id\":\"r\",\"match\":{\"regex\":" \
    "\"" regex "\"},\"action\":\"remove\",\"reason\":\"x.removed\"}]}"

static patient_err
count_cb(void *ctx, const patient_rule_match *m)
{
    (void)m;
    (*(size_t *)ctx)++;
    return PATIENT_OK;
}

/* The worst case glibc made quadratic (an hour on 5 MB): an unbounded run
 * kept alive at every start. It now stops at the configured work limit,
 * with no edit reported (nothing half applied). Its twin, the same rule
 * over an ordinary 5 MB page, completes and finds its match. */
START_TEST(crafted_5mb_hits_work_limit)
{
    patient_rules *r = parse_ok(LIM("", "<script[^>]*src=[^>]*tracker[^>]*>"));
    size_t n = 5u * 1000 * 1000, i, calls = 0;
    char *b = malloc(n);

    ck_assert_ptr_nonnull(b);
    for (i = 0; i < n; i++)
        b[i] = "<script "[i % 8];
    ck_assert_int_eq(patient_rules_apply(r, b, n, NULL, count_cb, &calls), PATIENT_ERR_LIMIT);
    ck_assert_uint_eq(calls, 0);
    /* twin: an ordinary page of the same size, one tracker near the end */
    for (i = 0; i < n; i++)
        b[i] = "<p>some text, <a href=\"/x\">a link</a> and more.</p>\n"[i % 52];
    memcpy(b + n - 100, "<script src=\"https://tracker.example/t.js\">", 43);
    ck_assert_int_eq(patient_rules_apply(r, b, n, NULL, count_cb, &calls), PATIENT_OK);
    ck_assert_uint_eq(calls, 1);
    patient_rules_free(r);
    free(b);
}
END_TEST

/* Exponential backtracking is cut by the per-attempt backtracking cap. */
START_TEST(backtracking_capped)
{
    patient_rules *r = parse_ok(LIM("", "(a|aa)+b"));
    char body[64];
    size_t calls = 0;

    memset(body, 'a', 60);
    memcpy(body + 60, "cab", 3);
    body[63] = '\0';
    ck_assert_int_eq(patient_rules_apply(r, body, 63, NULL, count_cb, &calls), PATIENT_ERR_LIMIT);
    ck_assert_uint_eq(calls, 0);
    patient_rules_free(r);
}
END_TEST

/* POSIX semantics kept: the longest match at the leftmost start, also
 * past the first windows (which double). */
START_TEST(leftmost_longest_kept)
{
    patient_rules *r = parse_ok(LIM("", "a|ab|abcd"));
    edits es;
    char big[300];

    apply(r, "xxabcdx", 7, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].off, 2);
    ck_assert_uint_eq(es.e[0].del, 4);
    patient_rules_free(r);
    r = parse_ok(LIM("", "x[a-z]*$"));
    memset(big, 'a', sizeof big);
    big[0] = 'x';
    apply(r, big, sizeof big, NULL, &es); /* "$" only at the body's end */
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].del, sizeof big);
    big[sizeof big - 1] = '!';
    apply(r, big, sizeof big, NULL, &es); /* not at a window's end */
    ck_assert_uint_eq(es.n, 0);
    patient_rules_free(r);
}
END_TEST

/* A match is at most match_window bytes. */
START_TEST(match_window)
{
    patient_rules *r = parse_ok(LIM(",\"limits\":{\"match_window\":64}", "a[^b]*b"));
    char body[202];
    edits es;

    memset(body, 'c', sizeof body);
    body[0] = 'a';
    body[100] = 'b';
    apply(r, body, sizeof body, NULL, &es);
    ck_assert_uint_eq(es.n, 0);
    patient_rules_free(r);
    r = parse_ok(LIM(",\"limits\":{\"match_window\":128,\"work_per_byte\":1}", "a[^b]*b"));
    apply(r, body, sizeof body, NULL, &es);
    ck_assert_uint_eq(es.n, 1);
    ck_assert_uint_eq(es.e[0].del, 101);
    patient_rules_free(r);
}
END_TEST

START_TEST(err_limits)
{
    free(parse_fail(LIM(",\"limits\":{\"work_per_byte\":0}", "a"), PATIENT_ERR_LIMIT));
    free(parse_fail(LIM(",\"limits\":{\"work_per_byte\":4097}", "a"), PATIENT_ERR_LIMIT));
    free(parse_fail(LIM(",\"limits\":{\"match_window\":63}", "a"), PATIENT_ERR_LIMIT));
    free(parse_fail(LIM(",\"limits\":{\"match_window\":1048577}", "a"), PATIENT_ERR_LIMIT));
    free(parse_fail(LIM(",\"limits\":{\"window\":100}", "a"), PATIENT_ERR_PARSE));
    free(parse_fail(LIM(",\"limits\":{\"match_window\":\"100\"}", "a"), PATIENT_ERR_PARSE));
    free(parse_fail(LIM(",\"limits\":[]", "a"), PATIENT_ERR_PARSE));
    /* PCRE2 verbs and named back-references are not ERE and not run */
    free(parse_fail(LIM("", "a(*PRUNE)b"), PATIENT_ERR_REGEX));
    free(parse_fail(LIM("", "(*LIMIT_MATCH=99999999)a"), PATIENT_ERR_REGEX));
    free(parse_fail(LIM("", "(?<n>a)\\\\k<n>"), PATIENT_ERR_REGEX));
}
END_TEST

/* Streaming gives exactly the batch edits, whatever the chunking, and
 * never reports an edit before an offset it already declared safe. */
typedef struct {
    edits *es;
    size_t safe;
} stream_ctx;

static patient_err
collect_stream(void *ctx, const patient_rule_match *m)
{
    stream_ctx *sc = ctx;
    ck_assert_uint_ge(m->offset, sc->safe);
    return collect(sc->es, m);
}

static void
stream_same_as_batch(const patient_rules *r, const char *body, size_t len, const char *mt,
                     unsigned seed)
{
    edits batch, es;
    stream_ctx sc = {&es, 0};
    patient_rules_stream *st = NULL;
    size_t have = 0, safe = 0;

    apply(r, body, len, mt, &batch);
    memset(&es, 0, sizeof es);
    ck_assert_int_eq(patient_rules_stream_new(r, mt, &st), PATIENT_OK);
    while (have < len) {
        seed = seed * 1103515245u + 12345u;
        have += 1 + (seed >> 16) % 700;
        if (have > len)
            have = len;
        ck_assert_int_eq(patient_rules_stream_feed(st, body, have, 0, collect_stream, &sc, &safe),
                         PATIENT_OK);
        ck_assert_uint_le(safe, have);
        ck_assert_uint_ge(safe, sc.safe);
        sc.safe = safe;
    }
    ck_assert_int_eq(patient_rules_stream_feed(st, body, len, 1, collect_stream, &sc, &safe),
                     PATIENT_OK);
    ck_assert_uint_eq(safe, len);
    ck_assert_int_eq(patient_rules_stream_feed(st, body, len, 1, collect_stream, &sc, &safe),
                     PATIENT_ERR_STATE);
    patient_rules_stream_free(st);
    ck_assert_uint_eq(es.n, batch.n);
    for (size_t i = 0; i < es.n; i++) {
        ck_assert_uint_eq(es.e[i].off, batch.e[i].off);
        ck_assert_uint_eq(es.e[i].del, batch.e[i].del);
        ck_assert_str_eq(es.e[i].id, batch.e[i].id);
        ck_assert_str_eq(es.e[i].ins, batch.e[i].ins);
    }
}

START_TEST(stream_matches_batch)
{
    patient_rules *r = NULL;
    char *detail = NULL, *page, *big;
    size_t len, n = 0;

    ck_assert_int_eq(patient_rules_load(EXAMPLE, &r, &detail), PATIENT_OK);
    page = sample_page(&len);
    /* the sample page 20 times over: 20 tracker scripts, the banner once */
    big = malloc(len * 20);
    ck_assert_ptr_nonnull(big);
    for (int i = 0; i < 20; i++, n += len)
        memcpy(big + n, page, len);
    for (unsigned seed = 1; seed < 6; seed++)
        stream_same_as_batch(r, big, n, "text/html", seed);
    patient_rules_free(r);
    /* adjacent insert_after / remove / replace (the pending rule) */
    r = parse_ok(RULES(R("ia", "{\"literal\":\"ab\"}", "\"action\":\"insert_after\",\"text\":\"[\"")
                       "," R("rm", "{\"literal\":\"cd\"}", "\"action\":\"remove\"")
                       "," R("rp", "{\"regex\":\"x+y\"}", "\"action\":\"replace\",\"text\":\"Z\"")));
    {
        static const char adj[] = "abcdcdab..abxxxy..xxxxy abcd";
        for (unsigned seed = 1; seed < 20; seed++)
            stream_same_as_batch(r, adj, sizeof adj - 1, NULL, seed);
    }
    patient_rules_free(r);
    free(big);
    free(page);
    free(detail);
}
END_TEST

static Suite *
rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc;

    tc = tcase_create("actions");
    tcase_add_test(tc, action_remove);
    tcase_add_test(tc, action_replace);
    tcase_add_test(tc, action_insert_before);
    tcase_add_test(tc, action_insert_after);
    tcase_add_test(tc, max_matches_cap);
    tcase_add_test(tc, callback_stops);
    suite_add_tcase(s, tc);

    tc = tcase_create("media");
    tcase_add_test(tc, media_exact);
    tcase_add_test(tc, media_glob);
    suite_add_tcase(s, tc);

    tc = tcase_create("overlap");
    tcase_add_test(tc, overlap_earlier_start_wins);
    tcase_add_test(tc, overlap_same_start_first_rule_wins);
    tcase_add_test(tc, overlap_adjacent_kept);
    tcase_add_test(tc, overlap_insert_after_then_remove);
    tcase_add_test(tc, overlap_insert_after_then_replace);
    tcase_add_test(tc, overlap_two_insert_after);
    suite_add_tcase(s, tc);

    tc = tcase_create("binary");
    tcase_add_test(tc, nul_bytes);
    tcase_add_test(tc, empty_matches_skipped);
    suite_add_tcase(s, tc);

    tc = tcase_create("example");
    tcase_add_test(tc, example_rules_on_page);
    tcase_add_test(tc, example_tracker_variants);
    tcase_add_test(tc, concurrent_apply);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, err_regex);
    tcase_add_test(tc, err_json_and_parse);
    tcase_add_test(tc, err_caps);
    tcase_add_test(tc, err_candidates_limit);
    tcase_add_test(tc, err_symlink);
    tcase_add_test(tc, rules_sha256_null);
    tcase_add_test(tc, err_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounded");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crafted_5mb_hits_work_limit);
    tcase_add_test(tc, backtracking_capped);
    tcase_add_test(tc, leftmost_longest_kept);
    tcase_add_test(tc, match_window);
    tcase_add_test(tc, stream_matches_batch);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(rules_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
