/* What `patient audit` relies on from the public log API, beyond
 * tests/check_log.c: report fields of an intact log, I/O errors that are
 * not tampering, tamper class names, per-edit rules and times from the
 * iterator, inclusion-proof edge cases, and counting changes by group
 * (audit stats). Public API only, as the CLI. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <cJSON.h>

#include <patient/patient.h>
#include "testutil.h"

static char dir[64];
static patient_seckey *sk, *sk2;
static patient_pubkey pk, pk2;

static void
setup(void)
{
    tu_mkdtemp(dir, sizeof dir, "check_audit");
    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_keypair_generate(&pk2, &sk2), PATIENT_OK);
}

static void
teardown(void)
{
    tu_rmtree(dir);
    patient_seckey_free(sk);
    patient_seckey_free(sk2);
}

static const char *
path(const char *name)
{
    return tu_path(dir, name);
}

/* n changes (two edits each: "tracker.removed"/rule "t<i>" deleting 10+i
 * bytes, "banner.inserted"/rule "notice" inserting 3 bytes), checkpoint
 * every 4. Real descriptors: the log reads them with the verifier's parser. */
static void
build(const char *p, unsigned n)
{
    patient_log *log;
    static uint8_t body[128];
    char url[64], rule[16], *jws;

    memset(body, 'x', sizeof body);
    ck_assert_int_eq(patient_log_open(p, sk, 4, &log), PATIENT_OK);
    ck_assert_int_eq(patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE), PATIENT_OK);
    for (unsigned i = 0; i < n; i++) {
        patient_hop *h = NULL;
        uint8_t *nb = NULL;
        size_t nl = 0;
        snprintf(url, sizeof url, "https://a.test/%u", i);
        snprintf(rule, sizeof rule, "t%u", i);
        ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = "m",
                                                               .service = "content-filter",
                                                               .url = url, .in = body,
                                                               .in_len = sizeof body},
                                           &h),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_add_edit(h, 1, 10 + i, NULL, 0, "tracker.removed", rule, NULL, 1),
                         PATIENT_OK);
        ck_assert_int_eq(patient_hop_add_edit(h, 100, 0, (const uint8_t *)"abc", 3,
                                              "banner.inserted", "notice", NULL, 1),
                         PATIENT_OK);
        /* 2026-11-2<i % 10>T10:00:00Z */
        ck_assert_int_eq(patient_hop_finish(h, (time_t)1795168800 + 86400 * (i % 10), &nb, &nl, &jws),
                         PATIENT_OK);
        patient_hop_free(h);
        free(nb);
        ck_assert_int_eq(patient_log_append_change(log, jws, NULL), PATIENT_OK);
        free(jws);
    }
    ck_assert_int_eq(patient_log_append_event(log, "body.too_large", NULL, "x", NULL), PATIENT_OK);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
}

static char *
line_of(const char *p, unsigned want, size_t *len)
{
    FILE *f = fopen(p, "r");
    char *l = NULL;
    size_t cap = 0;
    ssize_t r = -1;

    ck_assert_ptr_nonnull(f);
    for (unsigned i = 0; i <= want; i++)
        ck_assert_int_gt(r = getline(&l, &cap, f), 0);
    fclose(f);
    *len = (size_t)r;
    return l;
}

START_TEST(report_fields_intact)
{
    const char *p = path("a.log");
    patient_log_verify_opts o = {0};
    patient_log_report r;
    size_t len;
    char *l0, hex[65];
    uint8_t h[32];

    build(p, 6); /* 0..3 changes, 4 ckpt, 5 change, 6 change, 7 event, 8 ckpt (close) */
    ck_assert_int_eq(patient_log_verify(p, NULL, &r), PATIENT_OK);
    ck_assert_int_eq(r.tamper, PATIENT_LOG_INTACT);
    ck_assert_int_eq(r.signatures_checked, 0);
    ck_assert_uint_eq(r.entries, 9);
    ck_assert_uint_eq(r.changes, 6);
    ck_assert_uint_eq(r.events, 1);
    ck_assert_uint_eq(r.checkpoints, 2);
    ck_assert_uint_eq(r.last_checkpoint_seq, 8);
    ck_assert_uint_eq(r.unsigned_tail, 0);
    l0 = line_of(p, 0, &len);
    ck_assert_int_eq(patient_sha256(l0, len - 1, h), PATIENT_OK);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    ck_assert_str_eq(r.log_id, hex);
    free(l0);
    o.pub = &pk;
    o.deep = 1;
    ck_assert_int_eq(patient_log_verify(p, &o, &r), PATIENT_OK);
    ck_assert_int_eq(r.signatures_checked, 1);
    ck_assert_int_eq(r.entry_signatures_checked, 1);
    /* Forged twin: the wrong pinned key is forgery at the first checkpoint. */
    o.pub = &pk2;
    o.deep = 0;
    ck_assert_int_eq(patient_log_verify(p, &o, &r), PATIENT_ERR_KEY_MISMATCH);
    ck_assert_int_eq(r.tamper, PATIENT_LOG_FORGED);
    ck_assert_uint_eq(r.seq, 4);
    ck_assert_uint_eq(r.line, 5);
}
END_TEST

START_TEST(io_errors_are_not_tampering)
{
    patient_log_report r;

    /* The CLI exits 2 (not 1) for these: tamper stays INTACT. */
    ck_assert_int_eq(patient_log_verify(path("missing.log"), NULL, &r), PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(r.tamper, PATIENT_LOG_INTACT);
    build(path("real.log"), 1);
    ck_assert_int_eq(symlink("real.log", path("link.log")), 0);
    ck_assert_int_eq(patient_log_verify(path("link.log"), NULL, &r), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(r.tamper, PATIENT_LOG_INTACT);
}
END_TEST

/* Out of memory while verifying is a local failure, never a tamper
 * class: each allocation cJSON makes on this thread, failed in turn, with
 * and without --deep's descriptor checks. */
START_TEST(verify_nomem_not_tampered)
{
    const char *p = path("m.log");
    patient_log_report r;
    patient_err err;

    build(p, 6);
    for (int deep = 0; deep <= 1; deep++) {
        patient_log_verify_opts o = {.pub = &pk, .deep = deep};
        unsigned k;
        for (k = 1;; k++) {
            tu_json_fail_alloc(k);
            err = patient_log_verify(p, &o, &r);
            tu_json_fail_alloc(0);
            if (err == PATIENT_OK)
                break;
            ck_assert_msg(err == PATIENT_ERR_NOMEM && r.tamper == PATIENT_LOG_INTACT,
                          "deep %d, allocation %u failed: %s, %s (%s)", deep, k,
                          patient_errname(err), patient_log_tamper_name(r.tamper), r.message);
        }
        ck_assert_uint_gt(k, 1);
        ck_assert_int_eq(r.tamper, PATIENT_LOG_INTACT);
    }
}
END_TEST

START_TEST(tamper_names)
{
    static const char *const want[] = {"intact",   "edited",    "removed", "reordered", "inserted",
                                       "truncated", "rewritten", "forged",  "malformed"};
    for (int i = 0; i <= PATIENT_LOG_MALFORMED; i++)
        ck_assert_str_eq(patient_log_tamper_name((patient_log_tamper)i), want[i]);
    ck_assert_ptr_nonnull(patient_log_tamper_name((patient_log_tamper)99));
}
END_TEST

START_TEST(iter_rules_and_times)
{
    const char *p = path("i.log");
    patient_log_iter *it;
    const patient_log_entry *e;
    unsigned changes = 0;

    build(p, 3);
    ck_assert_int_eq(patient_log_iter_open(p, &it), PATIENT_OK);
    while (patient_log_iter_next(it, &e) == PATIENT_OK && e != NULL) {
        char want[32];
        if (e->kind != PATIENT_LOG_KIND_CHANGE)
            continue;
        ck_assert_uint_eq(e->n_edits, 2);
        snprintf(want, sizeof want, "t%u", changes);
        ck_assert_str_eq(e->rules[0], want);
        ck_assert_str_eq(e->rules[1], "notice");
        ck_assert_uint_eq(e->deleted, 10 + changes);
        ck_assert_uint_eq(e->inserted, 3);
        snprintf(want, sizeof want, "2026-11-2%uT10:00:00Z", changes);
        ck_assert_str_eq(e->time_str, want);
        ck_assert_int_eq((long long)e->time, 1795168800LL + 86400LL * changes);
        changes++;
    }
    patient_log_iter_close(it);
    ck_assert_uint_eq(changes, 3);
    /* Forged twin: a missing file is NOT_FOUND, not an empty log. */
    ck_assert_int_eq(patient_log_iter_open(path("none.log"), &it), PATIENT_ERR_NOT_FOUND);
}
END_TEST

/* Per-edit bytes come from the library, summing to the entry's totals;
 * twins: an entry whose descriptor does not decode gives an error and
 * zeros, an event is not a change. */
START_TEST(iter_edit_bytes)
{
    const char *p = path("b.log");
    patient_log_iter *it;
    const patient_log_entry *e;
    unsigned changes = 0, events = 0;

    build(p, 3);
    ck_assert_int_eq(patient_log_iter_open(p, &it), PATIENT_OK);
    while (patient_log_iter_next(it, &e) == PATIENT_OK && e != NULL) {
        uint64_t del[2] = {7, 7}, ins[2] = {7, 7};
        patient_log_entry forged;
        if (e->kind == PATIENT_LOG_KIND_EVENT) {
            ck_assert_int_eq(patient_log_entry_edit_bytes(e, del, ins), PATIENT_ERR_ARG);
            events++;
            continue;
        }
        if (e->kind != PATIENT_LOG_KIND_CHANGE)
            continue;
        ck_assert_int_eq(patient_log_entry_edit_bytes(e, del, ins), PATIENT_OK);
        ck_assert_uint_eq(del[0], 10 + changes);
        ck_assert_uint_eq(ins[0], 0);
        ck_assert_uint_eq(del[1], 0);
        ck_assert_uint_eq(ins[1], 3);
        ck_assert_uint_eq(del[0] + del[1], e->deleted);
        ck_assert_uint_eq(ins[0] + ins[1], e->inserted);
        forged = *e;
        forged.jws = "eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.c2ln";
        ck_assert_int_ne(patient_log_entry_edit_bytes(&forged, del, ins), PATIENT_OK);
        ck_assert_uint_eq(del[0] + del[1] + ins[0] + ins[1], 0);
        changes++;
    }
    patient_log_iter_close(it);
    ck_assert_uint_eq(changes, 3);
    ck_assert_uint_eq(events, 1);
}
END_TEST

START_TEST(proof_edges)
{
    const char *p = path("p.log");
    char *proof = NULL, *l;
    size_t len;

    build(p, 6);
    ck_assert_int_eq(patient_log_proof(p, 5, &proof, NULL, NULL), PATIENT_OK);
    l = line_of(p, 5, &len);
    /* pub NULL skips only the signature (the CLI insists on --pub). */
    ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof), l, len, NULL, NULL),
                     PATIENT_OK);
    ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof), l, len, &pk, NULL), PATIENT_OK);
    /* Forged twins. */
    ck_assert_int_eq(patient_log_proof_verify("{", 1, l, len, &pk, NULL), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof) - 1, l, len, &pk, NULL),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof), l, len, &pk2, NULL),
                     PATIENT_ERR_KEY_MISMATCH);
    free(l);
    free(proof);
    proof = NULL;
    /* No such entry. */
    ck_assert_int_eq(patient_log_proof(p, 999, &proof, NULL, NULL), PATIENT_ERR_NOT_FOUND);
    ck_assert_ptr_null(proof);
}
END_TEST

/* Out of memory while checking a proof is NOMEM, never a verdict on the
 * proof or the line, and no claims for a report: each allocation cJSON
 * makes, failed in turn. */
START_TEST(proof_verify_nomem)
{
    const char *p = path("pm.log");
    char *proof = NULL, *l;
    size_t len;
    patient_log_proof_head h;
    patient_err err;
    unsigned k;

    build(p, 6);
    ck_assert_int_eq(patient_log_proof(p, 5, &proof, NULL, NULL), PATIENT_OK);
    l = line_of(p, 5, &len);
    for (k = 1;; k++) {
        tu_json_fail_alloc(k);
        err = patient_log_proof_verify(proof, strlen(proof), l, len, &pk, &h);
        tu_json_fail_alloc(0);
        if (err == PATIENT_OK)
            break;
        ck_assert_msg(err == PATIENT_ERR_NOMEM, "allocation %u failed: %s", k, patient_errname(err));
        ck_assert_ptr_null(h.log_id);
        ck_assert_ptr_null(h.root);
    }
    ck_assert_uint_gt(k, 3); /* the proof, the line, the checkpoint's header and payload */
    /* the claims the report gives, from that one read */
    ck_assert_uint_eq(h.leaf_index, 5);
    ck_assert_uint_eq(h.tree_size, 8);
    ck_assert_ptr_nonnull(h.log_id);
    ck_assert_ptr_nonnull(h.root);
    patient_log_proof_head_free(&h);
    free(l);
    free(proof);
}
END_TEST

/* --leaf-out's line: the line the proof is of (line seq, the bytes its
 * leaf_hash is of) and "\n", which verifies against it; no proof (no
 * checkpoint covers seq, the lines do not hash to its root) is no line. */
START_TEST(proof_leaf_line)
{
    const char *p = path("leaf.log"), *bad = path("bad.log");
    char *proof, *line = (char *)"x", *l, *next, *text;
    size_t len = 7, ll, nl, tl;
    FILE *f;

    build(p, 6); /* the last checkpoint covers lines 0..7 */
    for (unsigned seq = 0; seq < 8; seq++) {
        ck_assert_int_eq(patient_log_proof(p, seq, &proof, &line, &len), PATIENT_OK);
        l = line_of(p, seq, &ll);
        ck_assert_uint_eq(len, ll);
        ck_assert_str_eq(line, l);
        ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof), line, len, &pk, NULL),
                         PATIENT_OK);
        /* its forged twin: another line is not what was proved */
        next = line_of(p, seq + 1, &nl);
        ck_assert_int_ne(patient_log_proof_verify(proof, strlen(proof), next, nl, &pk, NULL),
                         PATIENT_OK);
        free(next);
        free(l);
        free(line);
        free(proof);
    }
    ck_assert_int_eq(patient_log_proof(p, 8, &proof, &line, &len), PATIENT_ERR_NOT_FOUND);
    ck_assert_ptr_null(line);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(patient_log_proof(p, 1, &proof, &line, NULL), PATIENT_ERR_ARG);
    ck_assert_ptr_null(line);
    /* Line 3 broken: no proof of seq 1 either, and no line */
    text = tu_slurp(p, &tl);
    ck_assert_ptr_nonnull(f = fopen(bad, "w"));
    l = strchr(strchr(text, '\n') + 1, '\n') + 1;
    fwrite(text, 1, (size_t)(l - text), f);
    fputs("{\"seq\": 2, broken\n", f);
    fputs(strchr(l, '\n') + 1, f);
    fclose(f);
    free(text);
    len = 7;
    ck_assert_int_eq(patient_log_proof(bad, 1, &proof, &line, &len), PATIENT_ERR_LOG_CORRUPT);
    ck_assert_ptr_null(line);
    ck_assert_ptr_null(proof);
    ck_assert_uint_eq(len, 0);
}
END_TEST

/* Three logs verified with pk: paths[0] intact (6 changes), paths[1] the
 * same with a URL edited, paths[2] missing; r[i] their reports. */
static void
three_reports(const char *paths[3], patient_log_report r[3])
{
    patient_log_verify_opts o = {.pub = &pk};
    char *text;
    size_t tl;
    FILE *f;

    paths[0] = path("v.log"), paths[1] = path("ed.log"), paths[2] = path("missing.log");
    build(paths[0], 6);
    text = tu_slurp(paths[0], &tl);
    ck_assert_ptr_nonnull(f = fopen(paths[1], "w"));
    *strstr(text, "https://a.test/2") = 'H';
    fputs(text, f);
    fclose(f);
    free(text);
    ck_assert_int_eq(patient_log_verify(paths[0], &o, &r[0]), PATIENT_OK);
    ck_assert_int_ne(patient_log_verify(paths[1], &o, &r[1]), PATIENT_OK);
    ck_assert_int_eq(patient_log_verify(paths[2], &o, &r[2]), PATIENT_ERR_NOT_FOUND);
}

/* audit verify's report: the document's result is "error" over "tampered"
 * over "ok" whatever the order of the logs, each log's says its own; the
 * paragraph says intact, TAMPERED (class, line, seq) or cannot verify. */
START_TEST(verify_report_render)
{
    const char *paths[3], *p, *ed;
    patient_log_report r[3];
    char *s;
    cJSON *d, *logs;

    three_reports(paths, r);
    p = paths[0], ed = paths[1];
    for (size_t n = 1; n <= 3; n++) {
        static const char *const want[] = {"ok", "tampered", "error"};
        /* the verdict the tool's exit status is, and the document's */
        ck_assert_int_eq(patient_log_verify_verdict(n, r), (int)n - 1);
        ck_assert_ptr_nonnull(s = patient_log_verify_json(n, paths, r));
        ck_assert_ptr_nonnull(d = cJSON_Parse(s));
        ck_assert_str_eq(s + strlen(s) - 2, "}\n"); /* as the text ends */
        ck_assert_str_eq(cJSON_GetObjectItem(d, "type")->valuestring, "audit-verify");
        ck_assert_str_eq(cJSON_GetObjectItem(d, "result")->valuestring, want[n - 1]);
        logs = cJSON_GetObjectItem(d, "logs");
        ck_assert_int_eq(cJSON_GetArraySize(logs), (int)n);
        for (size_t i = 0; i < n; i++)
            ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(logs, (int)i), "result")
                                 ->valuestring,
                             want[i]);
        cJSON_Delete(d);
        free(s);
    }
    /* The error ahead of the tampered log: still "error". */
    {
        const char *rp[2] = {paths[2], paths[1]};
        patient_log_report rr[2] = {r[2], r[1]};
        ck_assert_int_eq(patient_log_verify_verdict(2, rr), PATIENT_LOG_VERDICT_ERROR);
        ck_assert_int_eq(patient_log_verify_verdict(0, NULL), PATIENT_LOG_VERDICT_OK);
        ck_assert_int_eq(patient_log_verify_verdict(1, NULL), PATIENT_LOG_VERDICT_ERROR);
        ck_assert_ptr_nonnull(s = patient_log_verify_json(2, rp, rr));
        ck_assert_ptr_nonnull(d = cJSON_Parse(s));
        ck_assert_str_eq(cJSON_GetObjectItem(d, "result")->valuestring, "error");
        cJSON_Delete(d);
        free(s);
    }
    ck_assert_ptr_nonnull(s = patient_log_verify_text(p, &r[0], &pk));
    ck_assert(strstr(s, ": intact. 9 entries (6 changes, 1 events, 2 checkpoints).") != NULL);
    ck_assert(strstr(s, "Checkpoint signatures checked with key ") != NULL);
    ck_assert_int_eq(s[strlen(s) - 1], '\n');
    free(s);
    ck_assert_ptr_nonnull(s = patient_log_verify_text(p, &r[0], NULL));
    ck_assert(strstr(s, "Signatures NOT checked: no --pub key given.\n") != NULL);
    free(s);
    ck_assert_ptr_nonnull(s = patient_log_verify_text(ed, &r[1], &pk));
    ck_assert(strstr(s, ": TAMPERED (") != NULL && strstr(s, " at line ") != NULL);
    free(s);
    ck_assert_ptr_nonnull(s = patient_log_verify_text(paths[2], &r[2], &pk));
    ck_assert(strstr(s, ": cannot verify: ") != NULL && strstr(s, "[not_found]\n") != NULL);
    free(s);
    ck_assert_ptr_null(patient_log_verify_text(NULL, &r[0], &pk));
}
END_TEST

/* verify-proof's report: ok names the claims and the key; each failure its
 * sentence; a proof that does not read claims -1 and "". */
START_TEST(proof_check_render)
{
    static const struct {
        patient_err err;
        const char *why;
    } c[] = {
        {PATIENT_ERR_ARG, "the line is not the entry the proof is for"},
        {PATIENT_ERR_HASH, "the line and audit path do not lead to the signed root"},
        {PATIENT_ERR_PARSE, "the proof is malformed"},
        {PATIENT_ERR_LOG_CORRUPT, "the checkpoint does not match the proof's log_id, size or root"},
        {PATIENT_ERR_KEY_MISMATCH, "the checkpoint is signed by another key"},
        {PATIENT_ERR_SIGNATURE, "the checkpoint signature is invalid"},
    };
    const char *p = path("pc.log");
    char *proof = NULL, *line, *s, want[512], kid[PATIENT_KEYID_HEX];
    size_t len;
    patient_log_proof_head h, bad;
    cJSON *d;

    build(p, 6);
    ck_assert_int_eq(patient_log_proof(p, 5, &proof, &line, &len), PATIENT_OK);
    ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof), line, len, &pk, &h),
                     PATIENT_OK);
    patient_keyid_hex(pk.id, kid);
    ck_assert_ptr_nonnull(s = patient_log_proof_check_text(&h, PATIENT_OK, &pk));
    ck_assert(strncmp(s, "proof ok: entry seq 5 is included in log ", 41) == 0);
    snprintf(want, sizeof want, "; the checkpoint is signed by key %s.\n", kid);
    ck_assert(strstr(s, want) != NULL && strstr(s, "at tree size 8 (root ") != NULL);
    free(s);
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        ck_assert_ptr_nonnull(s = patient_log_proof_check_text(&h, c[i].err, &pk));
        snprintf(want, sizeof want, "proof INVALID: %s [%s]\n", c[i].why, patient_errname(c[i].err));
        ck_assert_str_eq(s, want);
        free(s);
    }
    ck_assert_ptr_nonnull(s = patient_log_proof_check_json(&h, PATIENT_OK, &pk));
    ck_assert_ptr_nonnull(d = cJSON_Parse(s));
    ck_assert_str_eq(s + strlen(s) - 2, "}\n"); /* as the sentence ends */
    ck_assert_str_eq(cJSON_GetObjectItem(d, "result")->valuestring, "ok");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(d, "error")));
    ck_assert_int_eq(cJSON_GetObjectItem(d, "leaf_index")->valueint, 5);
    ck_assert_int_eq(cJSON_GetObjectItem(d, "tree_size")->valueint, 8);
    ck_assert_str_eq(cJSON_GetObjectItem(d, "key")->valuestring, kid);
    cJSON_Delete(d);
    free(s);
    /* a proof that does not read: verify leaves the head zeroed */
    ck_assert_int_eq(patient_log_proof_verify("{", 1, line, len, &pk, &bad), PATIENT_ERR_PARSE);
    ck_assert_ptr_null(bad.log_id);
    ck_assert_ptr_nonnull(s = patient_log_proof_check_json(&bad, PATIENT_ERR_PARSE, &pk));
    ck_assert_ptr_nonnull(d = cJSON_Parse(s));
    ck_assert_str_eq(cJSON_GetObjectItem(d, "result")->valuestring, "invalid");
    ck_assert_str_eq(cJSON_GetObjectItem(d, "error")->valuestring, "parse");
    ck_assert_int_eq(cJSON_GetObjectItem(d, "leaf_index")->valueint, -1);
    ck_assert_str_eq(cJSON_GetObjectItem(d, "root")->valuestring, "");
    cJSON_Delete(d);
    free(s);
    ck_assert_ptr_nonnull(s = patient_log_proof_check_json(NULL, PATIENT_ERR_PARSE, &pk));
    ck_assert_ptr_nonnull(d = cJSON_Parse(s));
    ck_assert_int_eq(cJSON_GetObjectItem(d, "tree_size")->valueint, -1);
    cJSON_Delete(d);
    free(s);
    ck_assert_ptr_null(patient_log_proof_check_json(&h, PATIENT_OK, NULL));
    /* A check that ran out of memory has no verdict: neither "invalid"
     * nor "proof INVALID: ... [nomem]", only the tool's [nomem]. */
    ck_assert_ptr_null(patient_log_proof_check_json(&h, PATIENT_ERR_NOMEM, &pk));
    ck_assert_ptr_null(patient_log_proof_check_text(&h, PATIENT_ERR_NOMEM, &pk));
    patient_log_proof_head_free(&h);
    free(line);
    free(proof);
}
END_TEST

/* Out of memory, a report is NULL, never a document cut short: each cJSON
 * allocation a rendering makes is failed in turn (NULL each time), until
 * one that makes fewer gives the same bytes as with nothing failing. */
typedef struct {
    size_t n;
    const char *const *paths;
    const patient_log_report *r;
    const patient_log_proof_head *head;
    int text;
} render_args;

static char *
render(const render_args *a)
{
    if (a->head == NULL)
        return patient_log_verify_json(a->n, a->paths, a->r);
    return a->text ? patient_log_proof_check_text(a->head, PATIENT_OK, &pk)
                   : patient_log_proof_check_json(a->head, PATIENT_OK, &pk);
}

static unsigned
each_allocation_failed(const render_args *a)
{
    char *full = render(a), *s;
    unsigned k, used;

    ck_assert_ptr_nonnull(full);
    for (k = 1;; k++) {
        tu_json_fail_alloc(k);
        s = render(a);
        used = tu_json_fail_alloc(0);
        if (used < k)
            break;
        ck_assert_msg(s == NULL, "allocation %u of %u failed, and a report came out:\n%s", k,
                      used, s);
    }
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, full);
    free(s);
    free(full);
    return k - 1;
}

START_TEST(report_render_nomem)
{
    const char *paths[3];
    patient_log_report r[3];
    char *text, *proof = NULL;
    size_t tl;
    patient_log_proof_head h;

    three_reports(paths, r);
    /* an object a log, every member, the array, the print */
    ck_assert_uint_ge(each_allocation_failed(&(render_args){3, paths, r, NULL, 0}), 3 * 22);
    ck_assert_int_eq(patient_log_proof(paths[0], 5, &proof, &text, &tl), PATIENT_OK);
    /* the proof's claims are read by the verifier (proof_verify_nomem),
     * not again by the renderers: the sentence makes no cJSON allocation */
    ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof), text, tl, &pk, &h), PATIENT_OK);
    ck_assert_uint_ge(each_allocation_failed(&(render_args){0, NULL, NULL, &h, 0}), 12);
    ck_assert_uint_eq(each_allocation_failed(&(render_args){0, NULL, NULL, &h, 1}), 0);
    patient_log_proof_head_free(&h);
    /* and by the verifier: out of memory is not a malformed proof */
    tu_json_fail_alloc(1);
    ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof), text, tl, &pk, NULL),
                     PATIENT_ERR_NOMEM);
    tu_json_fail_alloc(0);
    ck_assert_int_eq(patient_log_proof_verify(proof, strlen(proof), text, tl, &pk, NULL),
                     PATIENT_OK);
    free(text);
    free(proof);
}
END_TEST

/* patient audit stats's counting: a change with several reasons counts
 * once under each (its edits under their own; an undecodable descriptor
 * gives them no bytes), the order (changes, edits, key), the middlebox and
 * day keys, what the counter refuses, and the cap past which changes go to
 * "(other)" while the total still counts them. */
static patient_log_entry
tally_entry(const char *const *reasons, size_t n, uint64_t del, uint64_t ins)
{
    patient_log_entry e;

    memset(&e, 0, sizeof e);
    e.kind = PATIENT_LOG_KIND_CHANGE;
    e.reasons = reasons;
    e.n_edits = n;
    e.deleted = del;
    e.inserted = ins;
    e.time = 1795341600; /* 2026-11-22T10:00:00Z */
    e.jws = "not.a.descriptor";
    return e;
}

/* A counter by URL given e under one URL more than the group cap. */
static patient_log_tally *
url_tally_past_cap(patient_log_entry e)
{
    patient_log_tally *t = NULL;
    char url[32];

    ck_assert_int_eq(patient_log_tally_new(PATIENT_LOG_TALLY_BY_URL, &t), PATIENT_OK);
    e.url = url;
    for (unsigned i = 0; i <= PATIENT_LOG_TALLY_GROUPS_MAX; i++) {
        snprintf(url, sizeof url, "https://a.example/%u", i);
        ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    }
    return t;
}

START_TEST(tally_groups)
{
    static const char *const one[] = {"b.x", "b.x"}, *const mixed[] = {"a.x", "b.x", "a.x"},
                             *const other[] = {"c.x"};
    const patient_log_tally_group *g;
    patient_log_tally *t = NULL;
    patient_log_entry e;
    size_t n;

    ck_assert_int_eq(patient_log_tally_new(PATIENT_LOG_TALLY_BY_REASON, &t), PATIENT_OK);
    e = tally_entry(one, 2, 10, 5);
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    e = tally_entry(mixed, 3, 7, 1);
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    e = tally_entry(other, 1, 3, 0);
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    e.kind = PATIENT_LOG_KIND_CHECKPOINT;
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_log_tally_groups(t, &g, &n), PATIENT_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(g[0].key, "b.x"); /* 2 changes, 3 edits, the one change's bytes */
    ck_assert_uint_eq(g[0].changes, 2);
    ck_assert_uint_eq(g[0].edits, 3);
    ck_assert_uint_eq(g[0].deleted, 10);
    ck_assert_uint_eq(g[0].inserted, 5);
    ck_assert_str_eq(g[1].key, "a.x"); /* 1 change, 2 edits: before c.x */
    ck_assert_uint_eq(g[1].changes, 1);
    ck_assert_uint_eq(g[1].edits, 2);
    ck_assert_uint_eq(g[1].deleted, 0);
    ck_assert_str_eq(g[2].key, "c.x");
    ck_assert_uint_eq(g[2].deleted, 3);
    ck_assert_uint_eq(patient_log_tally_total(t)->changes, 3);
    ck_assert_uint_eq(patient_log_tally_total(t)->edits, 6);
    ck_assert_uint_eq(patient_log_tally_total(t)->deleted, 20);
    ck_assert_ptr_null(patient_log_tally_other(t));
    e = tally_entry(other, 1, 3, 0);
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_ERR_ARG); /* counting has ended */
    patient_log_tally_free(t);

    ck_assert_int_eq(patient_log_tally_new(PATIENT_LOG_TALLY_BY_MIDDLEBOX, &t), PATIENT_OK);
    e.by_name = "corp";
    e.by_kid = "6AB69CB8CB0AD1C0";
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    e.by_name = e.by_kid = NULL;
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    ck_assert_int_eq(patient_log_tally_groups(t, &g, &n), PATIENT_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(g[0].key, "- (-)");
    ck_assert_str_eq(g[1].key, "corp (6AB69CB8CB0AD1C0)");
    patient_log_tally_free(t);

    ck_assert_int_eq(patient_log_tally_new(PATIENT_LOG_TALLY_BY_DAY, &t), PATIENT_OK);
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    ck_assert_int_eq(patient_log_tally_groups(t, &g, &n), PATIENT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(g[0].key, "2026-11-22");
    patient_log_tally_free(t);

    ck_assert_int_eq(patient_log_tally_new((patient_log_tally_by)5, &t), PATIENT_ERR_ARG);
    ck_assert_ptr_null(t);

    /* One URL more than the cap: the last goes to "(other)". */
    t = url_tally_past_cap(e);
    ck_assert_int_eq(patient_log_tally_groups(t, &g, &n), PATIENT_OK);
    ck_assert_uint_eq(n, PATIENT_LOG_TALLY_GROUPS_MAX);
    ck_assert_ptr_nonnull(patient_log_tally_other(t));
    ck_assert_str_eq(patient_log_tally_other(t)->key, "(other)");
    ck_assert_uint_eq(patient_log_tally_other(t)->changes, 1);
    ck_assert_uint_eq(patient_log_tally_total(t)->changes, PATIENT_LOG_TALLY_GROUPS_MAX + 1);
    patient_log_tally_free(t);
    patient_log_tally_free(NULL);
}
END_TEST

/* The key-bytes cap: 1,024 URLs of 64 KiB (65,535 bytes and the NUL) fill
 * PATIENT_LOG_TALLY_KEY_BYTES_MAX exactly and each gets its group; the
 * next, far below the group cap, goes to "(other)". */
START_TEST(tally_key_bytes_cap)
{
    enum { L = 64 * 1024 - 1, N = PATIENT_LOG_TALLY_KEY_BYTES_MAX / (L + 1) };
    patient_log_entry e = tally_entry(NULL, 0, 0, 0);
    const patient_log_tally_group *g;
    patient_log_tally *t = NULL;
    char *url = malloc(L + 1);
    size_t n;

    ck_assert_ptr_nonnull(url);
    ck_assert_uint_eq(N, 1024);
    memset(url, 'a', L);
    url[L] = 0;
    e.url = url;
    ck_assert_int_eq(patient_log_tally_new(PATIENT_LOG_TALLY_BY_URL, &t), PATIENT_OK);
    for (unsigned i = 0; i < N; i++) {
        char head[32];
        int hl = snprintf(head, sizeof head, "https://a.example/%04u/", i);
        memcpy(url, head, (size_t)hl);
        ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    }
    /* At the cap exactly: nothing has gone to "(other)" yet. */
    ck_assert_ptr_null(patient_log_tally_other(t));
    memcpy(url, "https://b.example/", 18);
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    ck_assert_int_eq(patient_log_tally_groups(t, &g, &n), PATIENT_OK);
    ck_assert_uint_eq(n, N);
    ck_assert_ptr_nonnull(patient_log_tally_other(t));
    ck_assert_uint_eq(patient_log_tally_other(t)->changes, 1);
    ck_assert_uint_eq(patient_log_tally_total(t)->changes, N + 1);
    patient_log_tally_free(t);
    free(url);
}
END_TEST

/* audit stats' document and table: the groups in order, a key's control
 * bytes as '?' in the table (raw in the JSON), the note by reason, and
 * "(other)" with "truncated" past the cap. */
START_TEST(tally_render)
{
    static const char *const one[] = {"b\x01x", "b\x01x"}, *const two[] = {"a.x"};
    patient_log_tally *t = NULL;
    patient_log_entry e;
    char *s;
    cJSON *d, *g;

    ck_assert_ptr_null(patient_log_tally_text(NULL));
    ck_assert_ptr_null(patient_log_tally_json(NULL, 0));
    ck_assert_str_eq(patient_log_tally_by_name(PATIENT_LOG_TALLY_BY_TLS), "tls");
    ck_assert_ptr_null(patient_log_tally_by_name((patient_log_tally_by)5));
    ck_assert_int_eq(patient_log_tally_new(PATIENT_LOG_TALLY_BY_REASON, &t), PATIENT_OK);
    e = tally_entry(one, 2, 10, 5);
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    e = tally_entry(two, 1, 3, 0);
    ck_assert_int_eq(patient_log_tally_add(t, &e), PATIENT_OK);
    ck_assert_ptr_nonnull(s = patient_log_tally_text(t));
    ck_assert_str_eq(s, "REASON                            CHANGES    EDITS    DELETED   INSERTED\n"
                        "b?x                                     2        4         20         10\n"
                        "a.x                                     1        1          3          0\n"
                        "TOTAL                                   3        5         23         10\n"
                        "(a change with several reasons counts once under each)\n");
    free(s);
    ck_assert_ptr_nonnull(s = patient_log_tally_json(t, 7));
    ck_assert_ptr_nonnull(d = cJSON_Parse(s));
    ck_assert_int_eq(s[strlen(s) - 1], '\n');
    ck_assert_int_eq(s[strlen(s) - 2], '}');
    ck_assert_str_eq(cJSON_GetObjectItem(d, "type")->valuestring, "audit-stats");
    ck_assert_str_eq(cJSON_GetObjectItem(d, "by")->valuestring, "reason");
    ck_assert_int_eq(cJSON_GetObjectItem(d, "entries")->valueint, 7);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(d, "other")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(d, "truncated")));
    g = cJSON_GetObjectItem(d, "groups");
    ck_assert_int_eq(cJSON_GetArraySize(g), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 0), "key")->valuestring, "b\x01x");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 1), "deleted")->valueint, 3);
    ck_assert_ptr_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "total"), "key"));
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "total"), "edits")->valueint, 5);
    cJSON_Delete(d);
    free(s);
    patient_log_tally_free(t);

    /* By URL past the group cap: "(other)" before TOTAL, no note. */
    t = url_tally_past_cap(e);
    ck_assert_ptr_nonnull(s = patient_log_tally_text(t));
    ck_assert_int_eq(strncmp(s, "URL          ", 13), 0);
    ck_assert_ptr_nonnull(strstr(s, "\n(other)                                 1        1          3          0\n"
                                    "TOTAL                              100001   100001     300003          0\n"));
    ck_assert_ptr_null(strstr(s, "several reasons"));
    free(s);
    ck_assert_ptr_nonnull(s = patient_log_tally_json(t, 1));
    ck_assert_ptr_nonnull(d = cJSON_Parse(s));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "truncated")));
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "other"), "changes")->valueint, 1);
    ck_assert_ptr_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "other"), "key"));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "groups")),
                     (int)PATIENT_LOG_TALLY_GROUPS_MAX);
    cJSON_Delete(d);
    free(s);
    patient_log_tally_free(t);
}
END_TEST

/* audit monitor's lines for a change: the text with the log's control
 * bytes as '?', the JSON with them as they are; missing strings. */
START_TEST(monitor_entry_render)
{
    static const char *const r[] = {"tracker.removed", "b\x7f"};
    patient_log_entry e = tally_entry(r, 2, 12, 3);
    char *s;
    cJSON *d;

    ck_assert_ptr_null(patient_monitor_entry_json(NULL));
    ck_assert_ptr_null(patient_monitor_entry_text(NULL));
    e.seq = 7;
    e.time_str = "2026-11-22T10:00:00Z";
    e.by_name = "co\x1b[2Jrp";
    e.url = "https://a.example/\n";
    ck_assert_ptr_nonnull(s = patient_monitor_entry_text(&e));
    ck_assert_str_eq(s, "2026-11-22T10:00:00Z  seq 7  co?[2Jrp  -12 +3  tracker.removed,b? "
                        "https://a.example/?\n");
    free(s);
    ck_assert_ptr_nonnull(s = patient_monitor_entry_json(&e));
    ck_assert_ptr_eq(strchr(s, '\n'), s + strlen(s) - 1); /* one line */
    ck_assert_ptr_nonnull(d = cJSON_Parse(s));
    ck_assert_int_eq(cJSON_GetObjectItem(d, "seq")->valueint, 7);
    ck_assert_str_eq(cJSON_GetObjectItem(d, "middlebox")->valuestring, "co\x1b[2Jrp");
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "reasons"), 1)->valuestring, "b\x7f");
    ck_assert_int_eq(cJSON_GetObjectItem(d, "inserted")->valueint, 3);
    cJSON_Delete(d);
    free(s);
    e.time_str = e.by_name = e.url = NULL;
    e.n_edits = 0;
    ck_assert_ptr_nonnull(s = patient_monitor_entry_text(&e));
    ck_assert_str_eq(s, "?  seq 7    -12 +3   \n");
    free(s);
    ck_assert_ptr_nonnull(s = patient_monitor_entry_json(&e));
    ck_assert_str_eq(s, "{\"seq\":7,\"time\":\"\",\"url\":\"\",\"middlebox\":\"\",\"reasons\":[],"
                        "\"deleted\":12,\"inserted\":3}\n");
    free(s);
}
END_TEST

/* audit list's row: columns padded as the header, the middlebox name and
 * URL with the log's control bytes as '?', a long name unpadded, missing
 * strings "-", duplicate reasons once; the CHUNKS column when asked. */
START_TEST(list_row_render)
{
    static const char *const r[] = {"tracker.removed", "tracker.removed", "banner.inserted"};
    static const struct {
        const char *by, *time, *url;
        size_t n;
        int chunks;
        const char *want;
    } c[] = {
        {"co\x1b[2Jrp", NULL, "https://a.example/\x7f\n", 3, 0,
         "2026-11-22T10:00:00Z       7  co?[2Jrp               12        3  "
         "tracker.removed,banner.inserted -                        -                  "
         "https://a.example/??\n"},
        {"a-middlebox-named-long", "2026-11-22T10:00:00.5Z", NULL, 1, 1,
         "2026-11-22T10:00:00.5Z       7  a-middlebox-named-long       12        3  "
         "tracker.removed          -                        -                  "
         "?                            -\n"},
        {NULL, "2026-11-22T10:00:00.5Z", NULL, 0, 0,
         "2026-11-22T10:00:00.5Z       7  -       12        3  -                        "
         "-                        -                  -\n"},
    };
    patient_log_entry e = tally_entry(r, 3, 12, 3);
    char *s;

    ck_assert_ptr_null(patient_log_list_row_text(NULL, 0));
    e.seq = 7;
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        e.by_name = c[i].by;
        e.time_str = c[i].time;
        e.url = c[i].url;
        e.n_edits = c[i].n;
        ck_assert_ptr_nonnull(s = patient_log_list_row_text(&e, c[i].chunks));
        ck_assert_str_eq(s, c[i].want);
        free(s);
    }
}
END_TEST

/* --reason GLOB: some edit's reason matches, else not. */
START_TEST(reason_match)
{
    static const char *const r[] = {"banner.inserted", "tracker.removed"};
    patient_log_entry e = tally_entry(r, 2, 0, 0);

    ck_assert_int_eq(patient_log_entry_reason_match(&e, "tracker.*"), 1);
    ck_assert_int_eq(patient_log_entry_reason_match(&e, "banner.inserted"), 1);
    ck_assert_int_eq(patient_log_entry_reason_match(&e, "tracker"), 0);
    ck_assert_int_eq(patient_log_entry_reason_match(&e, "malware.*"), 0);
    e.n_edits = 1;
    ck_assert_int_eq(patient_log_entry_reason_match(&e, "tracker.*"), 0);
    e.n_edits = 0;
    ck_assert_int_eq(patient_log_entry_reason_match(&e, "*"), 0);
    ck_assert_int_eq(patient_log_entry_reason_match(NULL, "*"), 0);
    ck_assert_int_eq(patient_log_entry_reason_match(&e, NULL), 0);
}
END_TEST

static Suite *
audit_suite(void)
{
    Suite *s = suite_create("audit");
    TCase *tc = tcase_create("api");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, report_fields_intact);
    tcase_add_test(tc, io_errors_are_not_tampering);
    tcase_add_test(tc, tamper_names);
    tcase_add_test(tc, verify_nomem_not_tampered);
    tcase_add_test(tc, iter_rules_and_times);
    tcase_add_test(tc, iter_edit_bytes);
    tcase_add_test(tc, proof_edges);
    tcase_add_test(tc, proof_verify_nomem);
    tcase_add_test(tc, proof_leaf_line);
    tcase_add_test(tc, verify_report_render);
    tcase_add_test(tc, proof_check_render);
    tcase_add_test(tc, report_render_nomem);
    tcase_add_test(tc, tally_groups);
    tcase_add_test(tc, tally_key_bytes_cap);
    tcase_add_test(tc, tally_render);
    tcase_add_test(tc, monitor_entry_render);
    tcase_add_test(tc, list_row_render);
    tcase_add_test(tc, reason_match);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    if (sodium_init() < 0)
        return 1;
    sr = srunner_create(audit_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
