/* Unit tests: inspection (lib/inspect.c, patient/inspect.h). Each artefact
 * recognised is paired with a broken twin that is refused with
 * PATIENT_ERR_PARSE and its reason: a truncated minisign file, a JWS with a
 * bad segment, a log with a line that is not an entry, a JSON document
 * that ends inside a value. Nothing is ever said to be verified. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cJSON.h>

#include <patient/patient.h>
#include "inspect_int.h"
#include "testutil.h"

/* Inspect s (len bytes; path as opts.path), expecting want. */
static patient_inspection *
look(const char *s, size_t len, const char *path, patient_err want)
{
    patient_inspect_opts o = PATIENT_OPTS_INIT(patient_inspect_opts);
    patient_inspection *r = NULL;

    o.path = path;
    ck_assert_int_eq(patient_inspect(s, len, &o, &r), want);
    ck_assert_ptr_nonnull(r);
    if (want == PATIENT_OK) {
        ck_assert_ptr_nonnull(patient_inspection_kind(r));
        ck_assert_ptr_null(patient_inspection_error(r));
    } else {
        ck_assert_ptr_null(patient_inspection_kind(r));
        ck_assert_ptr_null(patient_inspection_title(r));
        ck_assert_ptr_nonnull(patient_inspection_error(r));
    }
    return r;
}

static patient_inspection *
look_str(const char *s, patient_err want)
{
    return look(s, strlen(s), NULL, want);
}

/* The refusal's reason contains phrase. */
static void
refused(const char *s, size_t len, const char *phrase)
{
    patient_inspection *r = look(s, len, NULL, PATIENT_ERR_PARSE);
    const char *why = patient_inspection_error(r);
    ck_assert_msg(strstr(why, phrase) != NULL, "\"%s\" lacks \"%s\"", why, phrase);
    patient_inspection_free(r);
}

/* The --json document, parsed: kind, "verified": false, the not-verified
 * note exactly when signed; the caller deletes it. */
static cJSON *
json_of(const patient_inspection *r, const char *kind, int is_signed)
{
    char *s = patient_inspection_json(r, "in.txt");
    cJSON *d, *x;

    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(d = cJSON_Parse(s));
    free(s);
    ck_assert_str_eq(cJSON_GetObjectItem(d, "input")->valuestring, "in.txt");
    ck_assert_str_eq(cJSON_GetObjectItem(d, "kind")->valuestring, kind);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(d, "verified")));
    ck_assert(cJSON_IsBool(x = cJSON_GetObjectItem(d, "signed")));
    ck_assert_int_eq(cJSON_IsTrue(x), is_signed);
    ck_assert_int_eq(patient_inspection_signed(r), is_signed);
    x = cJSON_GetObjectItem(d, "note");
    if (is_signed)
        ck_assert_str_eq(x->valuestring, PATIENT_INSPECT_NOT_VERIFIED);
    else
        ck_assert_ptr_null(x);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(d, "error")));
    return d;
}

static const char *
detail_str(const cJSON *d, const char *k)
{
    const cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), k);
    ck_assert_msg(cJSON_IsString(x), "details.%s", k);
    return x->valuestring;
}

static double
detail_num(const cJSON *d, const char *k)
{
    const cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), k);
    ck_assert_msg(cJSON_IsNumber(x), "details.%s", k);
    return x->valuedouble;
}

START_TEST(minisign_files)
{
    size_t n;
    char *pub = tu_fixture("key_test.pub", &n), *sec, *sig, *cut, *text;
    patient_inspection *r = look(pub, n, NULL, PATIENT_OK);
    cJSON *d = json_of(r, "public-key", 0);

    ck_assert_str_eq(detail_str(d, "key_id"), "91FA9E6F4D58FE7E");
    cJSON_Delete(d);
    patient_inspection_free(r);
    /* Twin: the comment line without its key line. */
    *strchr(pub, '\n') = 0;
    refused(pub, strlen(pub), "no key or signature line");
    free(pub);

    /* A secret key: its public facts only, never its base64 line. */
    sec = tu_fixture("key_test.key", &n);
    r = look(sec, n, NULL, PATIENT_OK);
    d = json_of(r, "secret-key", 0);
    ck_assert(cJSON_IsBool(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), "encrypted")));
    cJSON_Delete(d);
    text = patient_inspection_text(r, "k.key");
    ck_assert_ptr_nonnull(text);
    {
        char *line = strchr(sec, '\n') + 1;
        *strchr(line, '\n') = 0;
        ck_assert_ptr_null(strstr(text, line));
        /* Twin: the base64 line cut to 60 characters (45 bytes). */
        line[60] = 0;
        refused(sec, strlen(sec), "not a minisign public key (42), secret key (158)");
    }
    free(text);
    patient_inspection_free(r);
    free(sec);

    sig = tu_fixture("key_test.txt.minisig", &n);
    r = look(sig, n, NULL, PATIENT_OK);
    d = json_of(r, "minisign-signature", 1);
    ck_assert_str_eq(detail_str(d, "key_id"), "91FA9E6F4D58FE7E");
    ck_assert_str_eq(detail_str(d, "trusted_comment"), "patient golden fixture");
    cJSON_Delete(d);
    text = patient_inspection_text(r, "-");
    ck_assert_msg(strncmp(text, "(stdin): minisign signature\n  " PATIENT_INSPECT_NOT_VERIFIED "\n",
                          strlen("(stdin): minisign signature\n  " PATIENT_INSPECT_NOT_VERIFIED
                                 "\n")) == 0,
                  "%s", text);
    free(text);
    patient_inspection_free(r);
    /* Twin: the first two lines, without the trusted comment. */
    cut = strchr(strchr(sig, '\n') + 1, '\n');
    cut[1] = 0;
    refused(sig, strlen(sig), "without its trusted comment");
    free(sig);
}
END_TEST

START_TEST(key_string)
{
    size_t n;
    char *pub = tu_fixture("key_test.pub", &n), *line = strchr(pub, '\n') + 1;
    patient_inspection *r;
    cJSON *d;

    *strchr(line, '\n') = 0;
    r = look_str(line, PATIENT_OK);
    d = json_of(r, "public-key", 0);
    ck_assert_str_eq(detail_str(d, "key_id"), "91FA9E6F4D58FE7E");
    cJSON_Delete(d);
    patient_inspection_free(r);
    /* Twin: the same 56 characters with one base64 character made '!'. */
    line[30] = '!';
    refused(line, strlen(line), "not valid base64 of 42 bytes");
    free(pub);
}
END_TEST

START_TEST(jws_values)
{
    size_t n;
    char *jws = tu_fixture("jws_test.jws", &n), *dot, *bad;
    patient_inspection *r;
    cJSON *d, *v;

    while (n && (jws[n - 1] == '\n' || jws[n - 1] == '\r'))
        jws[--n] = 0;
    r = look(jws, n, NULL, PATIENT_OK);
    d = json_of(r, "jws", 1);
    ck_assert_int_eq((int)detail_num(d, "count"), 1);
    v = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), "values"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(v, "typ")->valuestring, "patient-test+jws");
    ck_assert_str_eq(cJSON_GetObjectItem(v, "kid")->valuestring, "91FA9E6F4D58FE7E");
    cJSON_Delete(d);
    patient_inspection_free(r);

    /* Twins: the signature segment gone; a character of the payload
     * segment not base64url; the header segment's first bytes changed, so
     * that it no longer decodes to a JWS header. */
    dot = strrchr(jws, '.');
    *dot = 0;
    refused(jws, strlen(jws), "three non-empty base64url parts");
    *dot = '.';
    bad = strdup(jws);
    strchr(bad, '.')[3] = '*';
    refused(bad, strlen(bad), "three non-empty base64url parts");
    free(bad);
    bad = tu_replace1(jws, "eyJ", "eHl");
    refused(bad, strlen(bad), "not a JWS we understand");
    free(bad);
    free(jws);
}
END_TEST

/* Out of memory while decoding a JWS value is NOMEM, whichever of cJSON's
 * allocations fails (the header's parse, the payload's, the summary's),
 * never "not JSON". */
START_TEST(jws_decode_nomem)
{
    size_t n;
    char *jws = tu_fixture("jws_test.jws", &n), why[512];
    const char *typ;
    cJSON *o = NULL;
    patient_err err;
    unsigned k;

    while (n && (jws[n - 1] == '\n' || jws[n - 1] == '\r'))
        jws[--n] = 0;
    for (k = 1;; k++) {
        why[0] = 0;
        tu_json_fail_alloc(k);
        err = pt_inspect_decode_jws(jws, n, &o, why, sizeof why, &typ);
        tu_json_fail_alloc(0);
        if (err == PATIENT_OK)
            break;
        ck_assert_msg(err == PATIENT_ERR_NOMEM && strstr(why, "out of memory") != NULL,
                      "allocation %u failed: %s, %s", k, patient_errname(err), why);
        ck_assert_ptr_null(o);
    }
    ck_assert_uint_gt(k, 10);
    cJSON_Delete(o);
    free(jws);
}
END_TEST

/* A descriptor of the fixture key for one edit of a small body, its
 * deleted bytes disclosed or withheld (new, caller frees). */
static char *
change_value(int disclose)
{
    static const uint8_t body[] = "<p>hello tracker world</p>";
    size_t n;
    char *t = tu_fixture("key_test.key", &n), *value = NULL;
    patient_seckey *sk = NULL;
    patient_hop *h = NULL;
    uint8_t *out = NULL;
    size_t olen;

    ck_assert_int_eq(patient_seckey_parse(t, n, NULL, &sk, NULL), PATIENT_OK);
    free(t);
    ck_assert_int_eq(patient_hop_begin(&(patient_hop_opts){.sk = sk, .name = "inspect test",
                                                           .service = "tracker-filter",
                                                           .url = "https://a.example/",
                                                           .in = body, .in_len = sizeof body - 1},
                                       &h),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_add_edit(h, 9, 8, (const uint8_t *)"[x]", 3, "tracker.removed",
                                          "t1", NULL, disclose),
                     PATIENT_OK);
    ck_assert_int_eq(patient_hop_finish(h, 1795773600, &out, &olen, &value), PATIENT_OK);
    free(out);
    patient_hop_free(h);
    patient_seckey_free(sk);
    return value;
}

/* A change descriptor of the fixture key, as a header line: its edits'
 * byte counts and its hop, read by the library's descriptor reader. */
START_TEST(change_header)
{
    char *value = change_value(1), *line, *forged;
    patient_inspection *r;
    patient_log_entry le;
    char col[8];
    cJSON *d, *p, *e;

    ck_assert_int_ge(asprintf(&line, "Patient-Change: %s\r\n", value), 0);
    r = look_str(line, PATIENT_OK);
    d = json_of(r, "change", 1);
    ck_assert_str_eq(detail_str(d, "header"), "Patient-Change");
    p = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), "values"), 0),
        "payload");
    ck_assert_int_eq(cJSON_GetObjectItem(p, "hop")->valueint, 1);
    e = cJSON_GetArrayItem(cJSON_GetObjectItem(p, "edits"), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(e, "insert_bytes")->valueint, 3);
    ck_assert_int_eq(cJSON_GetObjectItem(e, "deleted_bytes_disclosed")->valueint, 8);
    ck_assert_ptr_null(cJSON_GetObjectItem(e, "insert"));
    ck_assert_ptr_null(cJSON_GetObjectItem(e, "deleted"));
    cJSON_Delete(d);
    patient_inspection_free(r);
    /* As an audit log's entry, in the CHUNKS column: it withheld nothing,
     * "-" with room for 8 bytes; "?" with less, whatever it holds. */
    memset(&le, 0, sizeof le);
    le.kind = PATIENT_LOG_KIND_CHANGE;
    le.jws = value;
    ck_assert_str_eq(patient_inspect_log_entry_chunks(&le, col, 8), "-");
    ck_assert_str_eq(patient_inspect_log_entry_chunks(&le, col, 7), "?");
    ck_assert_str_eq(patient_inspect_log_entry_chunks(&le, col, 0), "?");
    /* Twin: another header's name. */
    forged = tu_replace1(line, "Patient-Change", "Patient-Changes");
    refused(forged, strlen(forged), "is not Patient-Change or Patient-Origin");
    free(forged);
    /* Twin: the value cut inside its signature segment. */
    line[strlen(line) / 2] = 0;
    refused(line, strlen(line), "is not a compact JWS");
    free(line);
    free(value);
}
END_TEST

/* An audit log from the library's writer: from its path (streamed) and
 * from its bytes (stdin), counted alike; its twin with a line that is not
 * an entry is refused both ways. */
/* in (path as opts.path) inspected with each of cJSON's allocations
 * failing in turn, through the library's out-of-memory note: the
 * inspection fails saying "out of memory", never "starts like JSON but
 * does not parse" or a log line that is not one, or its JSON is byte for
 * byte the one with memory (never a summary cut short). Returns how many
 * allocations were tried. */
static unsigned
nomem_each(const char *in, size_t len, const char *path)
{
    patient_inspect_opts o = PATIENT_OPTS_INIT(patient_inspect_opts);
    patient_inspection *r = NULL;
    char *full, *s;
    unsigned k;

    o.path = path;
    ck_assert_int_eq(patient_inspect(in, len, &o, &r), PATIENT_OK);
    ck_assert_ptr_nonnull(full = patient_inspection_json(r, "-"));
    patient_inspection_free(r);
    for (k = 1;; k++) {
        patient_err err;
        unsigned used;

        r = NULL;
        tu_json_fail_alloc(k);
        err = patient_inspect(in, len, &o, &r);
        used = tu_json_fail_alloc(0);
        ck_assert_ptr_nonnull(r);
        if (err != PATIENT_OK) {
            const char *why = patient_inspection_error(r);
            ck_assert_msg(why != NULL && strstr(why, "out of memory") != NULL,
                          "allocation %u failed: %s", k, why ? why : "(none)");
        } else {
            s = patient_inspection_json(r, "-");
            ck_assert_msg(s != NULL && strcmp(s, full) == 0, "allocation %u failed: %s", k, s);
            free(s);
        }
        patient_inspection_free(r);
        if (used < k)
            break; /* nothing failed: every allocation was tried */
    }
    free(full);
    return k;
}

/* Out of memory while the inspector parses a JSON document is an error,
 * not text that does not parse (an audit log: audit_log). */
START_TEST(nomem_not_unparsed)
{
    size_t n;
    char *t = tu_fixture("manifest_golden.json", &n);

    ck_assert_uint_gt(nomem_each(t, n, NULL), 10);
    free(t);
}
END_TEST

START_TEST(audit_log)
{
    char dir[512], *t, *bad;
    const char *path, *bpath;
    size_t n;
    patient_seckey *sk = NULL;
    patient_log *log = NULL;
    patient_inspection *r;
    cJSON *d;
    FILE *f;

    t = tu_fixture("key_test.key", &n);
    ck_assert_int_eq(patient_seckey_parse(t, n, NULL, &sk, NULL), PATIENT_OK);
    free(t);
    tu_mkdtemp(dir, sizeof dir, "check_inspect");
    path = tu_path(dir, "audit.log");
    ck_assert_int_eq(patient_log_open(path, sk, 0, &log), PATIENT_OK);
    ck_assert_int_eq(patient_log_append_event(log, "body.too_large", "https://a.example/", NULL,
                                              NULL),
                     PATIENT_OK);
    ck_assert_int_eq(patient_log_append_event(log, "test.event", NULL, "x", NULL), PATIENT_OK);
    ck_assert_int_eq(patient_log_checkpoint(log, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_log_close(log), PATIENT_OK);
    t = tu_slurp(path, &n);
    /* Out of memory reading it, from memory or its file, is an error. */
    ck_assert_uint_gt(nomem_each(t, n, NULL), 3);
    ck_assert_uint_gt(nomem_each(t, n, path), 3);
    for (int from_path = 0; from_path < 2; from_path++) {
        r = look(t, n, from_path ? path : NULL, PATIENT_OK);
        d = json_of(r, "audit-log", 1);
        ck_assert_int_eq((int)detail_num(d, "entries"), 3);
        ck_assert_int_eq((int)detail_num(d, "events"), 2);
        ck_assert_int_eq((int)detail_num(d, "checkpoints"), 1);
        ck_assert(cJSON_IsBool(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), "streamed")));
        ck_assert_int_eq(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"),
                                                          "streamed")),
                         from_path);
        cJSON_Delete(d);
        patient_inspection_free(r);
    }
    /* Twin: the second line without its time (an entry to neither the
     * iterator nor the verifier); the first line still says it is a log. */
    {
        char *second = strchr(t, '\n') + 1, *fixed = tu_replace1(second, ",\"time\":", ",\"tim\":");
        size_t head = (size_t)(second - t);
        ck_assert_ptr_nonnull(bad = malloc(head + strlen(fixed) + 1));
        memcpy(bad, t, head);
        strcpy(bad + head, fixed);
        free(fixed);
    }
    bpath = tu_path(dir, "bad.log");
    ck_assert_ptr_nonnull(f = fopen(bpath, "w"));
    fputs(bad, f);
    fclose(f);
    for (int from_path = 0; from_path < 2; from_path++) {
        r = look(bad, strlen(bad), from_path ? bpath : NULL, PATIENT_ERR_PARSE);
        ck_assert_msg(strstr(patient_inspection_error(r),
                             "line 2 is not a log entry: audit log is damaged [log.corrupt]"),
                      "%s", patient_inspection_error(r));
        patient_inspection_free(r);
    }
    free(bad);
    free(t);
    tu_rmtree(dir);
    patient_seckey_free(sk);
}
END_TEST

/* Inspect text with "from" replaced by "to" (the first time): a document
 * its reader refuses is still shown, its details.problem the reader's
 * reason, or NULL (no problem member) for one it accepts. */
static char *
problem_of(const char *text, const char *kind, int is_signed, const char *from, const char *to)
{
    const char *at = from ? strstr(text, from) : NULL;
    size_t n = strlen(text), fl = from ? strlen(from) : 0, tl = to ? strlen(to) : 0;
    char *s = malloc(n + tl + 1), *why = NULL;
    patient_inspection *r;
    const cJSON *x;
    cJSON *d;

    ck_assert_ptr_nonnull(s);
    ck_assert_msg(from == NULL || at != NULL, "%s not in the fixture", from);
    if (at == NULL) {
        memcpy(s, text, n + 1);
    } else {
        size_t pre = (size_t)(at - text);
        memcpy(s, text, pre);
        memcpy(s + pre, to, tl);
        memcpy(s + pre + tl, at + fl, n - pre - fl + 1);
    }
    r = look_str(s, PATIENT_OK);
    d = json_of(r, kind, is_signed);
    x = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), "problem");
    if (x != NULL) {
        ck_assert(cJSON_IsString(x));
        why = strdup(x->valuestring);
    }
    cJSON_Delete(d);
    patient_inspection_free(r);
    free(s);
    return why;
}

/* problem_of names want exactly. */
static void
problem_is(const char *text, const char *kind, int is_signed, const char *from, const char *to,
           const char *want)
{
    char *why = problem_of(text, kind, is_signed, from, to);

    if (want == NULL)
        ck_assert_msg(why == NULL, "problem \"%s\" for an accepted document", why);
    else
        ck_assert_msg(why != NULL && strcmp(why, want) == 0, "problem \"%s\", want \"%s\"",
                      why ? why : "(none)", want);
    free(why);
}

/* Documents the reader refuses: shown, with the reader's reason. The
 * fixture itself (from NULL) is accepted and shows none. */
START_TEST(reader_problems)
{
    static const struct {
        const char *from, *to, *want;
    } man[] = {
        {NULL, NULL, NULL},
        {"\"expires\": \"2026-01-08T00:00:00Z\"", "\"expires\": \"2025-12-31T00:00:00Z\"",
         "expires: before issued [parse]"},
        {"\"issued\": \"2026-01-01T00:00:00Z\"", "\"issued\": \"2026-01-01 00:00:00Z\"",
         "issued: not a time of the form 2026-01-31T12:00:00Z [parse]"},
        {"\"patient\": 1", "\"patient\": 2",
         "patient: format 2, this reader reads 1 [unsupported]"},
        {"\"patient\": 1", "\"patient\": 1.0", "patient: not an integer [parse]"},
        {"\"integrity\": \"sha256-yRdD", "\"integrity\": \"sha256-!RdD",
         "resources./.integrity: not \"sha256-\" and 44 base64 characters [parse]"},
        {"\"size\": 38", "\"size\": -38", "resources./.size: not an integer of at least 0 [parse]"},
        {"\"origin\": \"https://example.org\"", "\"origin\": \"https://example.org/\"",
         "origin: not an origin (scheme://host[:port], lower case, no path) [parse]"},
        {"\"next_keys\": [", "\"next_keys\": [\"RWS\", ",
         "next_keys[0]: not a public key string (RW...) [parse]"},
        {"\"resources\": {", "\"shards\": [], \"resources\": {",
         "resources and shards: both given, one is allowed [parse]"},
        {"\"origin\"", "\"patient\": 1, \"origin\"",
         "not strict JSON (\"patient\" given twice) [json]"},
        {"\"origin\"",
         "\"o\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], \"origin\"",
         "not strict JSON (nested deeper than 32) [json]"},
        {"\"origin\"", "\"o\": \"a\tb\", \"origin\"",
         "not strict JSON (a control byte in a string) [json]"},
        {"\"origin\"", "\"o\": 01, \"origin\"",
         "not strict JSON (a number outside JSON's grammar) [json]"},
    };
    static const struct {
        const char *from, *to, *want;
    } dis[] = {
        {NULL, NULL, NULL},
        {"\"retention_days\": 30", "\"retention_days\": 36501",
         "retention_days: not an integer 0..36500 [parse]"},
        {"\"sharing\": \"none\"", "\"sharing\": \"none\", \"shareing\": \"all\"",
         "shareing: not a member of a disclosure [parse]"},
        {"\"expires\": \"2099-01-01T00:00:00Z\"", "\"expires\": \"2026-11-27T00:00:00Z\"",
         "expires: not after issued [parse]"},
        {"\"TLSv1.2\"", "\"TLSv1.4\"",
         "upstream_tls_min: not a TLS version (TLSv1.2, TLSv1.3, ...) [parse]"},
        {"\"malware-filter\"", "\"malware\\u0007filter\"",
         "services[1]: not printable text of 1..256 bytes [parse]"},
        {"\"mailto:netops@corp.example\"", "\"netops@corp.example\"",
         "contact: not a mailto: or https: URL (printable, at most 512 bytes) [parse]"},
        {"\"sharing\": \"none\"", "\"sharing\": \"none\", \"interception_ca\": []",
         "interception_ca: not an array of 1..8 distinct sha256- pins [parse]"},
        {"\"patient\": 1", "\"patient\": 2",
         "patient: format 2, this reader reads 1 [unsupported]"},
        {"\"sharing\": \"none\"", "\"sharing\": \"none\", \"sharing\": \"all\"",
         "not strict JSON (\"sharing\" given twice) [json]"},
    };
    size_t n;
    char *m = tu_fixture("manifest_golden.json", &n);
    char *s, *cut;
    patient_inspection *r;
    const cJSON *x;
    cJSON *d;

    for (size_t i = 0; i < sizeof man / sizeof *man; i++)
        problem_is(m, "manifest", 1, man[i].from, man[i].to, man[i].want);
    /* Without "type", inspection takes origin and resources for a manifest;
     * the reader says it is not one. */
    problem_is(m, "manifest", 1, "\"type\": \"manifest\"", "\"kind\": \"manifest\"",
               "type: not \"manifest\" [parse]");
    free(m);
    /* A disclosure: the same, from the disclosure's reader. */
    m = tu_fixture("disclosure_example.json", &n);
    for (size_t i = 0; i < sizeof dis / sizeof *dis; i++)
        problem_is(m, "disclosure", 1, dis[i].from, dis[i].to, dis[i].want);
    free(m);
    /* A policy and a rule file: their readers' own messages. */
    m = tu_fixture("policy_example.json", &n);
    problem_is(m, "policy", 0, NULL, NULL, NULL);
    free(m);
    m = tu_fixture("policy_forged_nested_unknown.json", &n);
    problem_is(m, "policy", 0, NULL, NULL, "middleboxes[0].max_edit: unknown field [parse]");
    free(m);
    m = tu_fixture("rules_dup_id.json", &n);
    problem_is(m, "rules", 0, NULL, NULL, "rule 1 (id \"same\"): duplicate id (also rule 0) [parse]");
    problem_is(m, "rules", 0, "\"same\", \"match\": {\"literal\": \"y\"}",
               "\"other\", \"match\": {\"literal\": \"y\"}", NULL);
    free(m);
    m = tu_fixture("rules_bad_regex.json", &n);
    problem_is(m, "rules", 0, NULL, NULL,
               "rule 1 (id \"broken-group\"): regex: missing closing parenthesis [regex]");
    free(m);
    /* A bundle: the descriptors' reader (the page's members are the
     * verifier's to check). */
    m = tu_fixture("inspect_bundle.json", &n);
    problem_is(m, "bundle", 1, NULL, NULL, NULL);
    problem_is(m, "bundle", 1, "\"changes\":[", "\"changes\":[7, ",
               "a \"changes\" element is not a string [parse]");
    free(m);
    /* A shard: its bin, and the type that says it is one. */
    m = strdup("{\"patient\": 1, \"type\": \"manifest-shard\", \"origin\": \"https://a.example\", "
               "\"version\": 3, \"bin\": \"7\", \"resources\": {}}");
    problem_is(m, "manifest-shard", 0, NULL, NULL, NULL);
    problem_is(m, "manifest-shard", 0, "\"7\"", "\"7a\"",
               "bin: not child indices (digits and /, under 40 characters) [parse]");
    problem_is(m, "manifest-shard", 0, "\"version\": 3", "\"version\": 0",
               "version: not an integer of at least 1 [parse]");
    /* A path over the cap is named by its length, not printed. */
    cut = malloc(PATIENT_MANIFEST_MAX_PATH + 64);
    ck_assert_ptr_nonnull(cut);
    memset(cut, 'a', PATIENT_MANIFEST_MAX_PATH + 50);
    memcpy(cut, "\"resources\": {\"/", 16);
    strcpy(cut + PATIENT_MANIFEST_MAX_PATH + 16, "\": {}}");
    problem_is(m, "manifest-shard", 0, "\"resources\": {}", cut,
               "resources: a path longer than 4096 bytes [too_large]");
    strcpy(cut + 16 + 5, "\": {}}");
    problem_is(m, "manifest-shard", 0, "\"resources\": {}", cut,
               "resources./aaaaa.integrity: not \"sha256-\" and 44 base64 characters [parse]");
    free(cut);
    free(m);
    /* Every member the disclosure's reader reads is shown: interception_ca
     * too, which inspection used to leave out. */
    m = tu_fixture("disclosure_example.json", &n);
    cut = strstr(m, "\"sharing\"");
    ck_assert_ptr_nonnull(cut);
    ck_assert_int_ge(asprintf(&s,
                              "%.*s\"interception_ca\": [\"sha256-47DEQpj8HBSa+/TImW+5JCeu"
                              "QeRkm5NMpJWZG3hSuFU=\"], %s",
                              (int)(cut - m), m, cut),
                     0);
    r = look_str(s, PATIENT_OK);
    d = json_of(r, "disclosure", 1);
    ck_assert_ptr_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), "problem"));
    x = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), "interception_ca");
    ck_assert(cJSON_IsArray(x) && cJSON_GetArraySize(x) == 1);
    ck_assert_str_eq(cJSON_GetArrayItem(x, 0)->valuestring,
                     "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    cJSON_Delete(d);
    patient_inspection_free(r);
    free(s);
    free(m);
}
END_TEST

/* Strict UTF-8 (RFC 3629: no overlongs, surrogates or values past
 * U+10FFFF, no cut characters): 1 when s is. */
static int
utf8_ok(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s++, n = c < 0x80                ? 0
                               : c >= 0xC2 && c < 0xE0 ? 1
                               : c >= 0xE0 && c < 0xF0 ? 2
                               : c >= 0xF0 && c < 0xF5 ? 3
                                                       : 9;
        unsigned v;
        if (n == 9)
            return 0;
        v = c & (0x3F >> n);
        for (unsigned i = 0; i < n; i++, s++) {
            if ((*s & 0xC0) != 0x80)
                return 0;
            v = v << 6 | (*s & 0x3F);
        }
        if ((n == 2 && (v < 0x800 || (v >= 0xD800 && v < 0xE000))) ||
            (n == 3 && (v < 0x10000 || v > 0x10FFFF)))
            return 0;
    }
    return 1;
}

/* A reason quoting a long name cuts it where a character starts: the
 * --json output of a valid UTF-8 document is valid UTF-8. 400 "é", after
 * "/" or "x" or nothing, put each cut (200 bytes in the readers, 639 in
 * inspection's problem buffer before it stepped back) inside an "é". */
START_TEST(problems_stay_utf8)
{
    static const struct {
        const char *fixture, *kind, *from, *pre, *post, *want;
        int is_signed;
    } c[] = {
        {"manifest_golden.json", "manifest", "\"resources\": {", "\"resources\": {\"/", "\": 1, ",
         ": not an object [parse]", 1},
        {"manifest_golden.json", "manifest", "\"resources\": {", "\"resources\": {\"/", "\": {}, ",
         "\" is not a canonical URL path [parse]", 1},
        {"disclosure_example.json", "disclosure", "\"sharing\"", "\"", "\": 1, \"sharing\"",
         ": not a member of a disclosure [parse]", 1},
        {"policy_example.json", "policy", "\"publishers\"", "\"", "\": 1, \"publishers\"",
         " [parse]", 0},
    };
    char name[1 + 400 * 2 + 1] = "x";

    for (int i = 0; i < 400; i++)
        memcpy(name + 1 + 2 * i, "\xC3\xA9", 3);
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        size_t n;
        char *m = tu_fixture(c[i].fixture, &n), *to, *doc, *out, *why;
        patient_inspection *r;
        cJSON *d;

        ck_assert_int_gt(asprintf(&to, "%s%s%s", c[i].pre, name + (i == 2 ? 0 : 1), c[i].post), 0);
        ck_assert_ptr_nonnull(doc = tu_replace1(m, c[i].from, to));
        r = look_str(doc, PATIENT_OK);
        ck_assert_ptr_nonnull(out = patient_inspection_json(r, "in.txt"));
        ck_assert_msg(utf8_ok((const unsigned char *)out), "case %zu: not UTF-8", i);
        d = json_of(r, c[i].kind, c[i].is_signed);
        why = (char *)detail_str(d, "problem");
        ck_assert_msg(strstr(why, c[i].want) != NULL, "case %zu: %s", i, why);
        ck_assert_msg(strlen(why) < 640, "case %zu: %zu bytes", i, strlen(why));
        cJSON_Delete(d);
        patient_inspection_free(r);
        free(out);
        free(doc);
        free(to);
        free(m);
    }
}
END_TEST

/* cJSON's allocator failing after a countdown (-1: never). */
static long oom_left = -1;

static void *
oom_malloc(size_t n)
{
    if (oom_left == 0)
        return NULL;
    if (oom_left > 0)
        oom_left--;
    return malloc(n);
}

/* Out of memory while a refused document is shown, at each of cJSON's
 * allocations in turn: inspection fails, or shows the reader's problem;
 * never the document without it (which would read as accepted). */
START_TEST(out_of_memory_keeps_problem)
{
    cJSON_Hooks oom = {oom_malloc, free}, plain = {malloc, free};
    size_t n;
    char *m = tu_fixture("manifest_golden.json", &n);
    char *bad = tu_replace1(m, "\"expires\": \"2026-01-08T00:00:00Z\"",
                            "\"expires\": \"2025-12-31T00:00:00Z\"");
    int failed = 0, shown = 0;

    ck_assert_ptr_nonnull(bad);
    for (long at = 0;; at++) {
        patient_inspect_opts o = PATIENT_OPTS_INIT(patient_inspect_opts);
        patient_inspection *r = NULL;
        patient_err err;

        oom_left = at;
        cJSON_InitHooks(&oom);
        err = patient_inspect(bad, strlen(bad), &o, &r);
        cJSON_InitHooks(&plain);
        ck_assert_ptr_nonnull(r);
        if (err != PATIENT_OK) {
            ck_assert_ptr_null(patient_inspection_kind(r));
            failed++;
        } else {
            cJSON *d = json_of(r, "manifest", 1);
            const cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), "problem");
            ck_assert_msg(cJSON_IsString(x) &&
                              (strcmp(x->valuestring, "expires: before issued [parse]") == 0 ||
                               strncmp(x->valuestring, "not strict JSON", 15) == 0),
                          "allocation %ld failed: problem %s", at,
                          cJSON_IsString(x) ? x->valuestring : "(none)");
            cJSON_Delete(d);
            shown++;
        }
        patient_inspection_free(r);
        if (oom_left > 0)
            break; /* nothing failed: every allocation was tried */
    }
    ck_assert_int_gt(failed, 0);
    ck_assert_int_gt(shown, 1);
    free(bad);
    free(m);
}
END_TEST

/* in inspected at each of cJSON's allocations failing in turn: the
 * inspection fails, or its JSON is byte for byte the one with memory,
 * which must hold want (never a short one that would pass for the whole).
 * Returns how many allocations were tried. */
static long
out_of_memory_each(const char *in, const char *want)
{
    cJSON_Hooks oom = {oom_malloc, free}, plain = {malloc, free};
    patient_inspect_opts o = PATIENT_OPTS_INIT(patient_inspect_opts);
    patient_inspection *r = NULL;
    char *full;
    long at;

    ck_assert_int_eq(patient_inspect(in, strlen(in), &o, &r), PATIENT_OK);
    full = patient_inspection_json(r, "-");
    ck_assert_ptr_nonnull(full);
    ck_assert_msg(strstr(full, want) != NULL, "%s not in %s", want, full);
    patient_inspection_free(r);
    for (at = 0;; at++) {
        patient_err err;
        char *s;

        r = NULL;
        oom_left = at;
        cJSON_InitHooks(&oom);
        err = patient_inspect(in, strlen(in), &o, &r);
        cJSON_InitHooks(&plain);
        ck_assert_ptr_nonnull(r);
        if (err != PATIENT_OK) {
            /* (cJSON's parser returns NULL out of memory too: some
             * readers say malformed JSON then.) */
            ck_assert_ptr_null(patient_inspection_kind(r));
            ck_assert_ptr_nonnull(patient_inspection_error(r));
        } else {
            s = patient_inspection_json(r, "-");
            ck_assert_msg(strcmp(s, full) == 0, "allocation %ld failed: %s", at, s);
            free(s);
        }
        patient_inspection_free(r);
        if (oom_left > 0)
            break; /* nothing failed: every allocation was tried */
    }
    oom_left = -1;
    free(full);
    return at;
}

/* A descriptor that withheld a deletion, as a header line: out of memory
 * never leaves out its unchecked origin ranges (or any other member). */
START_TEST(out_of_memory_change)
{
    char *value = change_value(0), *line;

    ck_assert_int_ge(asprintf(&line, "Patient-Change: %s\r\n", value), 0);
    ck_assert_int_gt(out_of_memory_each(line, "\"unchecked_origin_ranges\":\t[{"), 10);
    free(line);
    free(value);
}
END_TEST

/* Every kind of JSON document, with each of cJSON's allocations failing
 * in turn: failed, or shown whole (out_of_memory_each). */
START_TEST(out_of_memory_documents)
{
    static const struct {
        const char *fixture, *text, *want;
    } c[] = {
        {"manifest_golden.json", NULL, "\"first_resources\":\t{"},
        {NULL,
         "{\"patient\": 1, \"type\": \"manifest-shard\", \"origin\": \"https://a.example\", "
         "\"version\": 3, \"bin\": \"7\", \"shards\": [\"a\", \"b\"]}",
         "\"first_shards\":\t[\"a\", \"b\"]"},
        {"disclosure_example.json", NULL, "\"key_id\":"},
        {"policy_example.json", NULL, "\"key_id\":"},
        {"rules_bad_regex.json", NULL, "\"first_rules\":\t[{"},
        {"inspect_bundle.json", NULL, "\"kid\":\t\"91FA9E6F4D58FE7E\""},
        {"inspect_report.json", NULL, "\"results\":\t[\"error: change.signature.invalid\"]"},
        {NULL,
         "{\"type\": \"change\", \"hop\": 1, \"edits\": [{\"insert\": \"eHl6\"}], "
         "\"chunks\": [{\"i\": 0}]}",
         "\"touched\":\t1"},
        {NULL, "{\"type\": \"origin\", \"url\": \"https://a.example/\", \"hop\": 0}",
         "\"hop\":\t0"},
    };

    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        size_t n;
        char *t = c[i].fixture ? tu_fixture(c[i].fixture, &n) : strdup(c[i].text);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_gt(out_of_memory_each(t, c[i].want), 3);
        free(t);
    }
}
END_TEST

START_TEST(json_documents)
{
    size_t n;
    char *m = tu_fixture("manifest_golden.json", &n), *cut;
    patient_inspection *r = look(m, n, NULL, PATIENT_OK);
    cJSON *d = json_of(r, "manifest", 1);

    ck_assert_str_eq(detail_str(d, "origin"), "https://example.org");
    ck_assert_int_eq((int)detail_num(d, "resources"), 10);
    ck_assert_str_eq(detail_str(d, "signature"), "detached: manifest.json.minisig");
    cJSON_Delete(d);
    patient_inspection_free(r);
    /* Twin: cut inside a value. */
    cut = strndup(m, n / 2);
    refused(cut, strlen(cut), "it ends inside an open value: truncated?");
    free(cut);
    free(m);

    m = tu_fixture("policy_example.json", &n);
    r = look(m, n, NULL, PATIENT_OK);
    d = json_of(r, "policy", 0);
    cJSON_Delete(d);
    patient_inspection_free(r);
    free(m);

    /* len bytes, not up to a NUL: what follows the buffer is not read. */
    {
        static const char more[] = "{\"patient\":1,\"type\":\"policy\"}, and garbage";
        r = look(more, 29, NULL, PATIENT_OK);
        ck_assert_str_eq(patient_inspection_kind(r), "policy");
        patient_inspection_free(r);
        refused(more, 31, "error near byte 29 of 30");
    }
    refused("{\"patient\":1,\"type\":\"frobnicator\"}", 34, "type \"frobnicator\"");
    refused("{\"patient\":1}", 13, "without a \"type\" member");
    refused("[1,2]", 5, "not an object");
}
END_TEST

START_TEST(refusals)
{
    static const char bin[] = "RW\x01\x02";
    patient_inspect_opts o = PATIENT_OPTS_INIT(patient_inspect_opts);
    patient_inspection *r = NULL;
    char *s;

    refused("", 0, "empty input");
    refused(" \n\t\n", 4, "empty input");
    refused(bin, sizeof bin - 1, "binary data (byte 0x01 at offset 2)");
    refused("hello, world\n", 13, "not a PATIENT artefact");
    /* Only the head of a longer input: a document is not guessed from it. */
    o.head_only = 1;
    ck_assert_int_eq(patient_inspect("{\"type\":\"policy\"", 16, &o, &r), PATIENT_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(patient_inspection_error(r), "over 64 MiB"));
    /* A refusal renders as JSON (kind null, error) but not as text. */
    s = patient_inspection_json(r, "-");
    ck_assert_ptr_nonnull(strstr(s, "\"kind\":\tnull"));
    free(s);
    errno = 0;
    ck_assert_ptr_null(patient_inspection_text(r, "-"));
    ck_assert_int_eq(errno, EINVAL);
    patient_inspection_free(r);
    r = NULL;
    ck_assert_int_eq(patient_inspect_unreadable(PATIENT_ERR_NOT_FOUND, &r), PATIENT_OK);
    ck_assert_ptr_null(patient_inspection_kind(r));
    ck_assert_str_eq(patient_inspection_error(r), "cannot read: not found [not_found]");
    patient_inspection_free(r);
    r = NULL;
    /* Arguments. */
    ck_assert_int_eq(patient_inspect(NULL, 1, NULL, &r), PATIENT_ERR_ARG);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(patient_inspect("x", 1, NULL, NULL), PATIENT_ERR_ARG);
    patient_inspection_free(NULL);
}
END_TEST

/* cJSON's allocator for the test below: the fail_at'th allocation from
 * now fails (0: none does). */
static unsigned fail_at, allocs;

static void *
failing_malloc(size_t n)
{
    return ++allocs == fail_at ? NULL : malloc(n);
}

/* The unchecked ranges as inspect and audit list --chunks show them. */
START_TEST(ranges_json)
{
    const patient_range r[2] = {{0, 966}, {65536, 12}};
    cJSON *a = pt_inspect_ranges_json(r, 2);
    char *s = cJSON_PrintUnformatted(a);

    ck_assert_str_eq(s, "[{\"offset\":0,\"length\":966},{\"offset\":65536,\"length\":12}]");
    free(s);
    cJSON_Delete(a);
    a = pt_inspect_ranges_json(NULL, 0);
    s = cJSON_PrintUnformatted(a);
    ck_assert_str_eq(s, "[]");
    free(s);
    cJSON_Delete(a);
    /* Out of memory at each allocation in turn: no list, never a short
     * one (audit list --json would print it as the whole). */
    for (fail_at = 1;; fail_at++) {
        allocs = 0;
        cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = failing_malloc, .free_fn = free});
        a = pt_inspect_ranges_json(r, 2);
        cJSON_InitHooks(NULL);
        if (allocs < fail_at) {
            ck_assert_ptr_nonnull(a);
            cJSON_Delete(a);
            break;
        }
        ck_assert_ptr_null(a);
    }
    ck_assert_uint_gt(fail_at, 2);
}
END_TEST

/* A change entry as audit list --json shows it, byte for byte: members in
 * order, escapes, a missing rule as "", no tls as null; with the chunks
 * flag, a descriptor that does not read is "unreadable", and "?" in the
 * text table's CHUNKS column (the descriptors that do read, withheld or
 * not, are in cli_audit.sh). */
START_TEST(log_entry_json)
{
    static const char *const reasons[] = {"tracker.removed", "ads.\"x\""};
    static const char *const rules[] = {"trk-1", NULL};
    patient_log_entry e;
    char *s, col[48];

    memset(&e, 0, sizeof e);
    e.line_no = 3;
    e.seq = 2;
    e.kind = PATIENT_LOG_KIND_CHANGE;
    e.time_str = "2026-11-20T10:00:00Z";
    e.url = "https://a.example/x";
    e.hop = 1;
    e.by_name = "corp";
    e.by_kid = "6AB69CB8CB0AD1C0";
    e.reasons = reasons;
    e.rules = rules;
    e.n_edits = 2;
    e.deleted = 201;
    e.inserted = 142;
    e.jws = "not.a.descriptor";
#define ROW "{\"log\":\"a.log\",\"line\":3,\"seq\":2,\"time\":\"2026-11-20T10:00:00Z\"," \
            "\"url\":\"https://a.example/x\",\"hop\":1,\"middlebox\":{\"name\":\"corp\"," \
            "\"kid\":\"6AB69CB8CB0AD1C0\"},\"reasons\":[\"tracker.removed\",\"ads.\\\"x\\\"\"]," \
            "\"rules\":[\"trk-1\",\"\"],\"edits\":2,\"deleted\":201,\"inserted\":142,\"tls\":"
    s = patient_inspect_log_entry_json(&e, "a.log", 0);
    ck_assert_str_eq(s, ROW "null}");
    free(s);
    s = patient_inspect_log_entry_json(&e, "a.log", PATIENT_INSPECT_ENTRY_CHUNKS);
    ck_assert_str_eq(s, ROW "null,\"chunks\":\"unreadable\"}");
    free(s);
    ck_assert_str_eq(patient_inspect_log_entry_chunks(&e, col, sizeof col), "?");
    e.jws = NULL;
    e.tls = "TLSv1.3 TLS_AES_128_GCM_SHA256 verified";
    s = patient_inspect_log_entry_json(&e, "a.log", PATIENT_INSPECT_ENTRY_CHUNKS);
    ck_assert_str_eq(s,
                     ROW "\"TLSv1.3 TLS_AES_128_GCM_SHA256 verified\",\"chunks\":\"unreadable\"}");
    free(s);
#undef ROW
    ck_assert_ptr_null(patient_inspect_log_entry_json(NULL, "a.log", 0));
    ck_assert_str_eq(patient_inspect_log_entry_chunks(&e, col, sizeof col), "?");
    ck_assert_str_eq(patient_inspect_log_entry_chunks(NULL, col, sizeof col), "?");
    ck_assert_str_eq(patient_inspect_log_entry_chunks(&e, NULL, sizeof col), "?");
}
END_TEST

static Suite *
inspect_suite(void)
{
    Suite *s = suite_create("inspect");
    TCase *tc = tcase_create("inspect");

    tcase_add_test(tc, minisign_files);
    tcase_add_test(tc, key_string);
    tcase_add_test(tc, jws_values);
    tcase_add_test(tc, jws_decode_nomem);
    tcase_add_test(tc, change_header);
    tcase_add_test(tc, nomem_not_unparsed);
    tcase_add_test(tc, audit_log);
    tcase_add_test(tc, json_documents);
    tcase_add_test(tc, reader_problems);
    tcase_add_test(tc, problems_stay_utf8);
    tcase_add_test(tc, out_of_memory_keeps_problem);
    tcase_add_test(tc, out_of_memory_change);
    tcase_add_test(tc, out_of_memory_documents);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, ranges_json);
    tcase_add_test(tc, log_entry_json);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(inspect_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
