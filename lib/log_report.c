/* What `patient audit` reports, rendered once: a log's verification
 * (patient_log_report) as the audit-verify JSON document and as its
 * paragraph, a proof's check (patient_log_proof_verify's result) as the
 * audit-proof-check document and as its sentence, the counts of `audit
 * stats` (patient_log_tally) as the audit-stats document and as its table,
 * each change `audit monitor` shows as its JSON line and as its text
 * line, and each row of `audit list`'s table. Headers: patient/log.h,
 * patient/tlog.h (the monitor's lines). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cJSON.h>
#include <sodium.h>

#include <patient/inspect.h>
#include <patient/log.h>
#include <patient/time.h>
#include <patient/tlog.h>
#include "log_int.h"
#include "util.h"

/* o printed by cJSON (pretty or on one line) and "\n", as every text
 * rendering here ends, so a tool prints either with fputs. Copied out of
 * cJSON's memory so that what is returned is malloc'd whatever allocator
 * cJSON was given (patient_json_allocator). NULL when out of memory. */
static char *
json_doc(const cJSON *o, int pretty)
{
    char *s = pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o);
    pt_buf b = {0};

    if (s == NULL)
        return NULL;
    if (pt_buf_append(&b, s, strlen(s)) != PATIENT_OK || pt_buf_append(&b, "\n", 1) != PATIENT_OK)
        pt_buf_free(&b);
    cJSON_free(s);
    return (char *)b.data; /* pt_buf keeps a NUL after its bytes */
}

/* A text rendering's end: its bytes, or NULL (freed) when err. */
static char *
buf_done(pt_buf *b, patient_err err)
{
    if (err) {
        pt_buf_free(b);
        return NULL;
    }
    return (char *)b->data; /* pt_buf keeps a NUL after its bytes */
}

/* Adds item (new) to arr or to obj under name; 0 when item is NULL or
 * cannot be added (then freed). */
static int
add_item(cJSON *to, const char *name, cJSON *item)
{
    if (item == NULL)
        return 0;
    if (name ? cJSON_AddItemToObject(to, name, item) : cJSON_AddItemToArray(to, item))
        return 1;
    cJSON_Delete(item);
    return 0;
}

/* ---- a log's verification ------------------------------------------------ */

/* A verdict's word in the reports: over all logs, and one log's own (its
 * verdict alone: "tampered" when the log says how, "error" when it could
 * not be read as a log at all). */
static const char *const verdict_name[] = {
    [PATIENT_LOG_VERDICT_OK] = "ok",
    [PATIENT_LOG_VERDICT_TAMPERED] = "tampered",
    [PATIENT_LOG_VERDICT_ERROR] = "error",
};

/* The last checkpoint's root in padded base64, and its NUL. */
#define ROOT_B64_BYTES \
    sodium_base64_ENCODED_LEN(PATIENT_SHA256_BYTES, sodium_base64_VARIANT_ORIGINAL)

static void
root_b64(const patient_log_report *r, char out[ROOT_B64_BYTES])
{
    sodium_bin2base64(out, ROOT_B64_BYTES, r->last_checkpoint_root,
                      sizeof r->last_checkpoint_root, sodium_base64_VARIANT_ORIGINAL);
}

/* One log's object, whole, or NULL (out of memory: nothing half built). */
static cJSON *
verify_item(const char *path, const patient_log_report *r)
{
    cJSON *o = cJSON_CreateObject(), *c = NULL;
    char root[ROOT_B64_BYTES] = "";
    int ok = o != NULL;

    ok = ok && cJSON_AddStringToObject(o, "log", path);
    ok = ok && cJSON_AddStringToObject(o, "result", verdict_name[patient_log_verify_verdict(1, r)]);
    ok = ok && (r->result == PATIENT_OK
                    ? cJSON_AddNullToObject(o, "error")
                    : cJSON_AddStringToObject(o, "error", patient_errname(r->result)));
    ok = ok && cJSON_AddStringToObject(o, "tamper", patient_log_tamper_name(r->tamper));
    ok = ok && (r->line ? cJSON_AddNumberToObject(o, "line", (double)r->line)
                        : cJSON_AddNullToObject(o, "line"));
    ok = ok && (r->has_seq ? cJSON_AddNumberToObject(o, "seq", (double)r->seq)
                           : cJSON_AddNullToObject(o, "seq"));
    ok = ok && cJSON_AddStringToObject(o, "message", r->message);
    ok = ok && cJSON_AddStringToObject(o, "expected", r->expected);
    ok = ok && cJSON_AddStringToObject(o, "found", r->found);
    ok = ok && cJSON_AddNumberToObject(o, "entries", (double)r->entries);
    ok = ok && cJSON_AddNumberToObject(o, "changes", (double)r->changes);
    ok = ok && cJSON_AddNumberToObject(o, "events", (double)r->events);
    ok = ok && cJSON_AddNumberToObject(o, "checkpoints", (double)r->checkpoints);
    if (r->checkpoints) {
        root_b64(r, root);
        ok = ok && (c = cJSON_AddObjectToObject(o, "last_checkpoint")) != NULL;
        ok = ok && cJSON_AddNumberToObject(c, "tree_size", (double)r->last_checkpoint_seq);
        ok = ok && cJSON_AddStringToObject(c, "root", root);
    } else {
        ok = ok && cJSON_AddNullToObject(o, "last_checkpoint");
    }
    ok = ok && cJSON_AddNumberToObject(o, "unsigned_tail", (double)r->unsigned_tail);
    ok = ok && cJSON_AddBoolToObject(o, "signatures_checked", r->signatures_checked != 0);
    ok = ok && cJSON_AddBoolToObject(o, "entry_signatures_checked",
                                     r->entry_signatures_checked != 0);
    ok = ok && cJSON_AddStringToObject(o, "log_id", r->log_id);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

patient_log_verdict
patient_log_verify_verdict(size_t n, const patient_log_report *reports)
{
    patient_log_verdict v = PATIENT_LOG_VERDICT_OK;

    if (n && reports == NULL)
        return PATIENT_LOG_VERDICT_ERROR;
    for (size_t i = 0; i < n; i++) {
        if (reports[i].result == PATIENT_OK)
            continue;
        if (reports[i].tamper == PATIENT_LOG_INTACT)
            return PATIENT_LOG_VERDICT_ERROR;
        v = PATIENT_LOG_VERDICT_TAMPERED;
    }
    return v;
}

char *
patient_log_verify_json(size_t n, const char *const *paths, const patient_log_report *reports)
{
    cJSON *doc, *arr = NULL;
    char *s = NULL;
    int ok;

    if (n && (paths == NULL || reports == NULL))
        return NULL;
    if ((doc = cJSON_CreateObject()) == NULL)
        return NULL;
    ok = cJSON_AddNumberToObject(doc, "patient", 1) &&
         cJSON_AddStringToObject(doc, "type", "audit-verify") &&
         cJSON_AddStringToObject(doc, "result",
                                 verdict_name[patient_log_verify_verdict(n, reports)]) &&
         (arr = cJSON_AddArrayToObject(doc, "logs")) != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = add_item(arr, NULL, verify_item(paths[i], &reports[i]));
    if (ok)
        s = json_doc(doc, 1);
    cJSON_Delete(doc);
    return s;
}

char *
patient_log_verify_text(const char *path, const patient_log_report *r, const patient_pubkey *pub)
{
    pt_buf b = {0};
    char root[ROOT_B64_BYTES], kid[PATIENT_KEYID_HEX];
    const char *why;
    patient_err err;

    if (path == NULL || r == NULL)
        return NULL;
    why = r->message[0] ? r->message : patient_strerror(r->result);
    if (r->result == PATIENT_OK) {
        err = pt_buf_appendf(&b,
                             "%s: intact. %" PRIu64 " entries (%" PRIu64 " changes, %" PRIu64
                             " events, %" PRIu64 " checkpoints).",
                             path, r->entries, r->changes, r->events, r->checkpoints);
        if (!err && r->checkpoints) {
            root_b64(r, root);
            err = pt_buf_appendf(&b, " The last checkpoint covers the first %" PRIu64
                                     " entries (root %s)",
                                 r->last_checkpoint_seq, root);
            if (!err && r->unsigned_tail)
                err = pt_buf_appendf(&b,
                                     "; %" PRIu64 " entries after it are not signed yet (a cut "
                                     "there would not show)",
                                     r->unsigned_tail);
            if (!err)
                err = pt_buf_appendf(&b, ".");
        } else if (!err && r->entries) {
            err = pt_buf_appendf(&b, " No checkpoint yet: nothing in this log is signed.");
        }
        if (!err && pub != NULL) {
            patient_keyid_hex(pub->id, kid);
            err = pt_buf_appendf(&b, " Checkpoint signatures checked with key %s%s", kid,
                                 r->entry_signatures_checked
                                     ? "; every change signature checked too.\n"
                                     : "; change signatures not checked (use --deep).\n");
        } else if (!err) {
            err = pt_buf_appendf(&b, " Signatures NOT checked: no --pub key given.\n");
        }
    } else if (r->tamper == PATIENT_LOG_INTACT) {
        err = pt_buf_appendf(&b, "%s: cannot verify: %s [%s]\n", path, why,
                             patient_errname(r->result));
    } else {
        err = pt_buf_appendf(&b, "%s: TAMPERED (%s)", path, patient_log_tamper_name(r->tamper));
        if (!err && r->line)
            err = pt_buf_appendf(&b, " at line %" PRIu64, r->line);
        if (!err && r->has_seq)
            err = pt_buf_appendf(&b, ", seq %" PRIu64, r->seq);
        if (!err)
            err = pt_buf_appendf(&b, ": %s.", why);
        if (!err && (r->expected[0] || r->found[0]))
            err = pt_buf_appendf(&b, " Expected: %s; found: %s.",
                                 r->expected[0] ? r->expected : "-",
                                 r->found[0] ? r->found : "-");
        if (!err)
            err = pt_buf_appendf(&b, " %" PRIu64 " entries before it check out. [%s]\n",
                                 r->entries, patient_errname(r->result));
    }
    return buf_done(&b, err);
}

/* ---- a proof's check ------------------------------------------------------ */

/* What patient_log_proof_verify's result means, in one clause. */
static const char *
proof_why(patient_err err)
{
    switch (err) {
    case PATIENT_ERR_ARG: return "the line is not the entry the proof is for";
    case PATIENT_ERR_HASH: return "the line and audit path do not lead to the signed root";
    case PATIENT_ERR_PARSE: return "the proof is malformed";
    case PATIENT_ERR_LOG_CORRUPT:
        return "the checkpoint does not match the proof's log_id, size or root";
    case PATIENT_ERR_KEY_MISMATCH: return "the checkpoint is signed by another key";
    case PATIENT_ERR_SIGNATURE: return "the checkpoint signature is invalid";
    default: return patient_strerror(err);
    }
}

/* What the proof claims, as patient_log_proof_verify read it; a proof
 * that did not read (no head, or a zeroed one) claims nothing (-1, ""). */
typedef struct {
    double leaf, size;
    const char *root, *log_id;
    char kid[PATIENT_KEYID_HEX];
} proof_claims;

static void
claims_of(const patient_log_proof_head *head, const patient_pubkey *pub, proof_claims *c)
{
    memset(c, 0, sizeof *c);
    c->leaf = c->size = -1;
    c->root = c->log_id = "";
    if (head != NULL && head->log_id != NULL && head->root != NULL) {
        c->leaf = (double)head->leaf_index;
        c->size = (double)head->tree_size;
        c->root = head->root;
        c->log_id = head->log_id;
    }
    patient_keyid_hex(pub->id, c->kid);
}

char *
patient_log_proof_check_json(const patient_log_proof_head *head, patient_err result,
                             const patient_pubkey *pub)
{
    proof_claims c;
    cJSON *d = NULL;
    char *s = NULL;

    /* Out of memory checking is no verdict on the proof (log.h): nothing
     * to render, the tool reports NOMEM. */
    if (pub == NULL || result == PATIENT_ERR_NOMEM)
        return NULL;
    claims_of(head, pub, &c);
    if ((d = cJSON_CreateObject()) != NULL && cJSON_AddNumberToObject(d, "patient", 1) &&
        cJSON_AddStringToObject(d, "type", "audit-proof-check") &&
        cJSON_AddStringToObject(d, "result", result == PATIENT_OK ? "ok" : "invalid") &&
        (result == PATIENT_OK ? cJSON_AddNullToObject(d, "error")
                              : cJSON_AddStringToObject(d, "error", patient_errname(result))) &&
        cJSON_AddNumberToObject(d, "leaf_index", c.leaf) &&
        cJSON_AddNumberToObject(d, "tree_size", c.size) &&
        cJSON_AddStringToObject(d, "root", c.root) &&
        cJSON_AddStringToObject(d, "log_id", c.log_id) && cJSON_AddStringToObject(d, "key", c.kid))
        s = json_doc(d, 1);
    cJSON_Delete(d);
    return s;
}

char *
patient_log_proof_check_text(const patient_log_proof_head *head, patient_err result,
                             const patient_pubkey *pub)
{
    proof_claims c;
    pt_buf b = {0};
    patient_err err;

    if (pub == NULL || result == PATIENT_ERR_NOMEM) /* as _json */
        return NULL;
    claims_of(head, pub, &c);
    if (result == PATIENT_OK)
        err = pt_buf_appendf(&b,
                             "proof ok: entry seq %.0f is included in log %.16s... at tree size "
                             "%.0f (root %s); the checkpoint is signed by key %s.\n",
                             c.leaf, c.log_id, c.size, c.root, c.kid);
    else
        err = pt_buf_appendf(&b, "proof INVALID: %s [%s]\n", proof_why(result),
                             patient_errname(result));
    return buf_done(&b, err);
}

/* ---- audit stats ---------------------------------------------------------- */

static cJSON *
group_json(const char *key, const patient_log_tally_group *g)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || (key && cJSON_AddStringToObject(o, "key", key) == NULL) ||
        cJSON_AddNumberToObject(o, "changes", (double)g->changes) == NULL ||
        cJSON_AddNumberToObject(o, "edits", (double)g->edits) == NULL ||
        cJSON_AddNumberToObject(o, "deleted", (double)g->deleted) == NULL ||
        cJSON_AddNumberToObject(o, "inserted", (double)g->inserted) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *
patient_log_tally_json(patient_log_tally *s, uint64_t entries)
{
    const patient_log_tally_group *tab, *other;
    size_t m;
    cJSON *doc, *arr;
    char *out = NULL;
    int ok;

    if (s == NULL || patient_log_tally_groups(s, &tab, &m) != PATIENT_OK ||
        (doc = cJSON_CreateObject()) == NULL)
        return NULL;
    other = patient_log_tally_other(s);
    ok = cJSON_AddNumberToObject(doc, "patient", 1) && cJSON_AddStringToObject(doc, "type", "audit-stats") &&
         cJSON_AddStringToObject(doc, "by", patient_log_tally_by_name(pt_log_tally_by(s))) &&
         cJSON_AddNumberToObject(doc, "entries", (double)entries) &&
         (arr = cJSON_AddArrayToObject(doc, "groups")) != NULL;
    for (size_t i = 0; ok && i < m; i++)
        ok = add_item(arr, NULL, group_json(tab[i].key, &tab[i]));
    ok = ok && (other ? add_item(doc, "other", group_json(NULL, other))
                      : cJSON_AddNullToObject(doc, "other") != NULL);
    ok = ok && cJSON_AddBoolToObject(doc, "truncated", other != NULL) &&
         add_item(doc, "total", group_json(NULL, patient_log_tally_total(s)));
    if (ok)
        out = json_doc(doc, 1);
    cJSON_Delete(doc);
    return out;
}

static patient_err
count_row(pt_buf *b, const patient_log_tally_group *g)
{
    return pt_buf_appendf(b, " %8" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
                          g->changes, g->edits, g->deleted, g->inserted);
}

char *
patient_log_tally_text(patient_log_tally *s)
{
    static const char *const heads[] = {"REASON", "MIDDLEBOX", "URL", "DAY", "UPSTREAM TLS"};
    const patient_log_tally_group *tab, *other;
    patient_log_tally_by by;
    pt_buf b = {0};
    patient_err err;
    size_t m;

    if (s == NULL || patient_log_tally_groups(s, &tab, &m) != PATIENT_OK)
        return NULL;
    by = pt_log_tally_by(s);
    other = patient_log_tally_other(s);
    err = pt_buf_appendf(&b, "%-32s %8s %8s %10s %10s\n", heads[by], "CHANGES", "EDITS",
                         "DELETED", "INSERTED");
    for (size_t i = 0; !err && i < m; i++) {
        size_t l = strlen(tab[i].key);
        if (!(err = pt_buf_append_safe(&b, tab[i].key)) &&
            !(err = pt_buf_appendf(&b, "%*s", (int)(l < 32 ? 32 - l : 0), "")))
            err = count_row(&b, &tab[i]);
    }
    if (!err && other && !(err = pt_buf_appendf(&b, "%-32s", "(other)")))
        err = count_row(&b, other);
    if (!err && !(err = pt_buf_appendf(&b, "%-32s", "TOTAL")))
        err = count_row(&b, patient_log_tally_total(s));
    if (!err && by == PATIENT_LOG_TALLY_BY_REASON)
        err = pt_buf_appendf(&b, "(a change with several reasons counts once under each)\n");
    return buf_done(&b, err);
}

/* ---- audit monitor's changes ---------------------------------------------- */

char *
patient_monitor_entry_json(const patient_log_entry *e)
{
    cJSON *j, *rs;
    char *out = NULL;
    int ok;

    if (e == NULL || (j = cJSON_CreateObject()) == NULL)
        return NULL;
    ok = cJSON_AddNumberToObject(j, "seq", (double)e->seq) &&
         cJSON_AddStringToObject(j, "time", e->time_str ? e->time_str : "") &&
         cJSON_AddStringToObject(j, "url", e->url ? e->url : "") &&
         cJSON_AddStringToObject(j, "middlebox", e->by_name ? e->by_name : "") &&
         (rs = cJSON_AddArrayToObject(j, "reasons")) != NULL;
    for (size_t i = 0; ok && i < e->n_edits; i++)
        ok = add_item(rs, NULL, cJSON_CreateString(e->reasons[i]));
    ok = ok && cJSON_AddNumberToObject(j, "deleted", (double)e->deleted) &&
         cJSON_AddNumberToObject(j, "inserted", (double)e->inserted);
    if (ok)
        out = json_doc(j, 0);
    cJSON_Delete(j);
    return out;
}

char *
patient_monitor_entry_text(const patient_log_entry *e)
{
    pt_buf b = {0};
    patient_err err;

    if (e == NULL)
        return NULL;
    err = pt_buf_appendf(&b, "%s  seq %" PRIu64 "  ", e->time_str ? e->time_str : "?", e->seq);
    if (!err && !(err = pt_buf_append_safe(&b, e->by_name)))
        err = pt_buf_appendf(&b, "  -%" PRIu64 " +%" PRIu64 "  ", e->deleted, e->inserted);
    for (size_t i = 0; !err && i < e->n_edits; i++)
        if (!(err = i ? pt_buf_append(&b, ",", 1) : PATIENT_OK))
            err = pt_buf_append_safe(&b, e->reasons[i]);
    if (!err && !(err = pt_buf_append(&b, " ", 1)) &&
        !(err = pt_buf_append_safe(&b, e->url)))
        err = pt_buf_append(&b, "\n", 1);
    return buf_done(&b, err);
}

/* ---- audit list's rows ----------------------------------------------------- */

/* Distinct values of a per-edit array, joined with ",", cut with ",.." to
 * fit cap. */
static void
join_unique(const char *const *v, size_t n, char *out, size_t cap)
{
    size_t len = 0;

    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j, l;
        if (v[i] == NULL || v[i][0] == 0)
            continue;
        for (j = 0; j < i; j++)
            if (v[j] && strcmp(v[j], v[i]) == 0)
                break;
        if (j < i)
            continue;
        l = strlen(v[i]);
        if (len + l + 2 >= cap) {
            if (len + 4 < cap)
                memcpy(out + len, ",..", 4);
            return;
        }
        if (len)
            out[len++] = ',';
        memcpy(out + len, v[i], l + 1);
        len += l;
    }
}

/* The upstream TLS column: "TLSv1.3 verified", "TLSv1.2 UNVERIFIED",
 * "plain" (plain HTTP upstream), "-" (not recorded). */
static const char *
tls_short(const patient_log_entry *e, char *out, size_t cap)
{
    patient_log_tls t;

    switch (patient_log_entry_tls(e, &t)) {
    case PATIENT_OK:
        break;
    case PATIENT_ERR_NOT_FOUND:
        return "-";
    default:
        return e->tls;
    }
    if (t.plaintext)
        return "plain";
    snprintf(out, cap, "%.*s %s", (int)t.version_len, t.version,
             t.verified ? "verified" : "UNVERIFIED");
    return out;
}

char *
patient_log_list_row_text(const patient_log_entry *e, int chunks)
{
    char ts[PATIENT_TIME_ANY_BYTES], reasons[512], rules[512], tls[160], ch[48];
    size_t l;
    pt_buf b = {0};
    patient_err err;

    if (e == NULL)
        return NULL;
    if (e->time_str)
        snprintf(ts, sizeof ts, "%s", e->time_str);
    else
        patient_time_format_any(e->time, ts);
    join_unique(e->reasons, e->n_edits, reasons, sizeof reasons);
    if (e->rules)
        join_unique(e->rules, e->n_edits, rules, sizeof rules);
    else
        rules[0] = 0;
    /* A missing middlebox is "-" unpadded, as the tool has always printed. */
    l = e->by_name ? strlen(e->by_name) : 16;
    err = pt_buf_appendf(&b, "%-20s %7" PRIu64 "  ", ts, e->seq);
    if (!err && !(err = pt_buf_append_safe(&b, e->by_name ? e->by_name : "-")))
        err = pt_buf_appendf(&b, "%*s %8" PRIu64 " %8" PRIu64 "  %-24s %-24s %-18s ",
                             (int)(l < 16 ? 16 - l : 0), "", e->deleted, e->inserted,
                             reasons[0] ? reasons : "-", rules[0] ? rules : "-",
                             tls_short(e, tls, sizeof tls));
    if (!err && chunks)
        err = pt_buf_appendf(&b, "%-28s ", patient_inspect_log_entry_chunks(e, ch, sizeof ch));
    if (!err && !(err = pt_buf_append_safe(&b, e->url ? e->url : "-")))
        err = pt_buf_append(&b, "\n", 1);
    return buf_done(&b, err);
}
