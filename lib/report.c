/* Verification report: building the stable JSON document and rendering it
 * for people. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_int.h"
#include "time_int.h"
#include "util.h"

const char *
patient_verdict_name(patient_verdict v)
{
    switch (v) {
    case PATIENT_VERDICT_VERIFIED: return "verified";
    case PATIENT_VERDICT_MODIFIED: return "modified";
    case PATIENT_VERDICT_INVALID: return "invalid";
    case PATIENT_VERDICT_UNVERIFIABLE: return "unverifiable";
    }
    return "invalid";
}

/* A copy the report owns; NULL stays NULL, a failed copy marks the
 * report (rep_finish then fails with NOMEM). */
static char *
rep_strdup(patient_report *r, const char *s)
{
    char *d;

    if (s == NULL)
        return NULL;
    if ((d = strdup(s)) == NULL)
        r->nomem = 1;
    return d;
}

patient_err
rep_new(patient_report **out, const char *url, time_t now)
{
    patient_report *r;

    *out = NULL;
    if ((r = calloc(1, sizeof *r)) == NULL)
        return PATIENT_ERR_NOMEM;
    pt_time_format(now, r->checked_at);
    r->proof = "none";
    r->verdict = PATIENT_VERDICT_INVALID;
    if ((r->url = strdup(url ? url : "")) == NULL) {
        patient_report_free(r);
        return PATIENT_ERR_NOMEM;
    }
    *out = r;
    return PATIENT_OK;
}

patient_err
rep_result(patient_report *r, enum rep_effect eff, const char *code, const char *where,
           const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    rep_check *c;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->nchecks == r->checks_cap) {
        size_t cap = r->checks_cap ? 2 * r->checks_cap : 8;
        rep_check *p = realloc(r->checks, cap * sizeof *p);
        if (p == NULL) {
            r->nomem = 1;
            return PATIENT_ERR_NOMEM;
        }
        r->checks = p;
        r->checks_cap = cap;
    }
    c = &r->checks[r->nchecks];
    *c = (rep_check){rep_strdup(r, code), eff, rep_strdup(r, where), rep_strdup(r, msg)};
    if (c->code == NULL || c->explanation == NULL || (where && c->where == NULL)) {
        free(c->code);
        free(c->where);
        free(c->explanation);
        r->nomem = 1;
        return PATIENT_ERR_NOMEM;
    }
    r->nchecks++;
    if ((int)eff > r->worst)
        r->worst = eff;
    return PATIENT_OK;
}

#define EXCERPT 80

rep_hop *
rep_hop_add(patient_report *r, const patient_change *c, int trusted)
{
    rep_hop *h;

    if (r->nhops >= PATIENT_MAX_HOPS)
        return NULL;
    h = &r->hops[r->nhops++];
    h->hop = c->hop;
    h->name = rep_strdup(r, c->by.name);
    h->kid = rep_strdup(r, c->by.kid_hex);
    h->service = rep_strdup(r, c->by.service);
    h->disclosure = rep_strdup(r, c->by.disclosure);
    pt_time_format(c->at, h->at);
    h->proof = c->disclosed ? "proven" : "attested";
    h->trusted = trusted;
    if (c->nedits > 0 && (h->edits = calloc(c->nedits, sizeof *h->edits)) == NULL) {
        r->nomem = 1;
        return h;
    }
    for (size_t j = 0; j < c->nedits; j++) {
        const patient_edit *e = &c->edits[j];
        rep_edit *o = &h->edits[h->nedits++];
        o->offset = e->offset;
        o->deleted = e->delete_len;
        o->inserted = e->insert_len;
        o->reason = rep_strdup(r, e->reason);
        o->rule = rep_strdup(r, e->rule);
        o->note = rep_strdup(r, e->note);
        if (e->deleted && (o->deleted_text = rep_excerpt(e->deleted, e->delete_len, EXCERPT)) == NULL)
            r->nomem = 1;
        if (e->insert_len &&
            (o->inserted_text = rep_excerpt(e->insert, e->insert_len, EXCERPT)) == NULL)
            r->nomem = 1;
    }
    if (c->has_tls) {
        h->has_tls = 1;
        h->tls_version = rep_strdup(r, c->tls.version);
        h->tls_cipher = rep_strdup(r, c->tls.cipher);
        h->tls_verified = c->tls.verified;
    }
    return h;
}

void
rep_set_origin(patient_report *r, const char *origin)
{
    free(r->origin);
    r->origin = rep_strdup(r, origin);
}

void
rep_set_interception(patient_report *r, const char *status, const char *by, const uint8_t *ca,
                     const uint8_t anchor[32])
{
    r->interception = status;
    free(r->icpt.by);
    r->icpt.by = rep_strdup(r, by);
    r->icpt.has_ca = ca != NULL;
    if (ca)
        patient_sri_encode(ca, r->icpt.ca);
    patient_sri_encode(anchor, r->icpt.anchor);
}

/* ---- the JSON document, rendered once from the typed result ------------ */

static const char *const severity_name[] = {"info", "warning", "error", "error"};
static const char *const effect_name[] = {"none", "none", "unverifiable", "invalid"};

/* cJSON's Add* return NULL when out of memory (and, for a NULL string, add
 * nothing): every member a document holds is checked once, by ok(). */
static int
add_str_or_null(cJSON *o, const char *k, const char *v)
{
    return (v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)) != NULL;
}

static cJSON *
hop_doc(const rep_hop *h)
{
    cJSON *o = cJSON_CreateObject(), *by = NULL, *edits = NULL, *tls = NULL;
    int ok = o != NULL;

    ok = ok && cJSON_AddNumberToObject(o, "hop", h->hop) &&
         (by = cJSON_AddObjectToObject(o, "by")) != NULL;
    if (ok) {
        /* name, kid and service are never NULL in a parsed descriptor. */
        cJSON_AddStringToObject(by, "name", h->name);
        cJSON_AddStringToObject(by, "kid", h->kid);
        cJSON_AddStringToObject(by, "service", h->service);
        ok = add_str_or_null(by, "disclosure", h->disclosure) &&
             cJSON_AddStringToObject(o, "at", h->at) &&
             cJSON_AddStringToObject(o, "proof", h->proof) &&
             cJSON_AddBoolToObject(o, "trusted", h->trusted) &&
             (edits = cJSON_AddArrayToObject(o, "edits")) != NULL;
    }
    for (size_t j = 0; ok && j < h->nedits; j++) {
        const rep_edit *e = &h->edits[j];
        cJSON *x = cJSON_CreateObject();
        if (x == NULL || !cJSON_AddItemToArray(edits, x)) {
            cJSON_Delete(x);
            ok = 0;
            break;
        }
        ok = cJSON_AddNumberToObject(x, "offset", (double)e->offset) &&
             cJSON_AddNumberToObject(x, "deleted", (double)e->deleted) &&
             cJSON_AddNumberToObject(x, "inserted", (double)e->inserted);
        if (!ok)
            break;
        cJSON_AddStringToObject(x, "reason", e->reason);
        cJSON_AddStringToObject(x, "rule", e->rule);
        ok = add_str_or_null(x, "note", e->note);
        if (ok && e->position_in)
            ok = cJSON_AddNumberToObject(x, "line", (double)e->line) &&
                 cJSON_AddNumberToObject(x, "column", (double)e->column);
        else if (ok)
            ok = cJSON_AddNullToObject(x, "line") && cJSON_AddNullToObject(x, "column");
        ok = ok && add_str_or_null(x, "deleted_text", e->deleted_text) &&
             add_str_or_null(x, "inserted_text", e->inserted_text) &&
             (e->position_in == NULL || cJSON_AddStringToObject(x, "position_in", e->position_in));
    }
    if (ok && h->has_tls) {
        ok = (tls = cJSON_AddObjectToObject(o, "tls")) != NULL;
        if (ok)
            cJSON_AddStringToObject(tls, "version", h->tls_version);
        ok = ok && add_str_or_null(tls, "cipher", h->tls_cipher) &&
             cJSON_AddBoolToObject(tls, "verified", h->tls_verified);
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "tls") != NULL;
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The document's members in the order docs/FORMAT.md lists them. */
static patient_err
report_doc(patient_report *r)
{
    cJSON *d = cJSON_CreateObject(), *o = NULL, *arr = NULL;
    int ok = d != NULL;

    ok = ok && cJSON_AddNumberToObject(d, "patient", 1) &&
         cJSON_AddStringToObject(d, "type", "report") &&
         cJSON_AddStringToObject(d, "verdict", patient_verdict_name(r->verdict)) &&
         cJSON_AddStringToObject(d, "url", r->url) && add_str_or_null(d, "origin", r->origin) &&
         cJSON_AddStringToObject(d, "checked_at", r->checked_at);
    if (ok && r->has_manifest) {
        ok = (o = cJSON_AddObjectToObject(d, "manifest")) != NULL &&
             cJSON_AddNumberToObject(o, "version", (double)r->manifest.version) &&
             cJSON_AddStringToObject(o, "issued", r->manifest.issued) &&
             cJSON_AddStringToObject(o, "expires", r->manifest.expires) &&
             cJSON_AddStringToObject(o, "kid", r->manifest.kid);
    } else if (ok) {
        ok = cJSON_AddNullToObject(d, "manifest") != NULL;
    }
    ok = ok && cJSON_AddStringToObject(d, "proof", r->proof);
    if (ok && r->has_unchecked) {
        ok = (o = cJSON_AddObjectToObject(d, "unchecked")) != NULL &&
             (arr = cJSON_AddArrayToObject(o, "ranges")) != NULL;
        for (size_t i = 0; ok && i < r->unchecked.nranges; i++) {
            cJSON *g = cJSON_CreateObject();
            if (g != NULL && !cJSON_AddItemToArray(arr, g)) {
                cJSON_Delete(g);
                g = NULL;
            }
            ok = g != NULL &&
                 cJSON_AddNumberToObject(g, "offset", (double)r->unchecked.ranges[i].offset) &&
                 cJSON_AddNumberToObject(g, "length", (double)r->unchecked.ranges[i].length);
        }
        ok = ok && cJSON_AddNumberToObject(o, "bytes", (double)r->unchecked.bytes);
    } else if (ok) {
        ok = cJSON_AddNullToObject(d, "unchecked") != NULL;
    }
    if (ok && r->interception) {
        ok = (o = cJSON_AddObjectToObject(d, "interception")) != NULL &&
             cJSON_AddStringToObject(o, "status", r->interception) &&
             add_str_or_null(o, "by", r->icpt.by) &&
             add_str_or_null(o, "ca", r->icpt.has_ca ? r->icpt.ca : NULL) &&
             cJSON_AddStringToObject(o, "anchor", r->icpt.anchor);
    } else if (ok) {
        ok = cJSON_AddNullToObject(d, "interception") != NULL;
    }
    ok = ok && (r->changes = cJSON_AddArrayToObject(d, "changes")) != NULL;
    for (size_t k = 0; ok && k < r->nhops; k++) {
        cJSON *h = hop_doc(&r->hops[k]);
        if (h != NULL && !cJSON_AddItemToArray(r->changes, h)) {
            cJSON_Delete(h);
            h = NULL;
        }
        ok = h != NULL;
    }
    ok = ok && (r->results = cJSON_AddArrayToObject(d, "results")) != NULL;
    for (size_t i = 0; ok && i < r->nchecks; i++) {
        const rep_check *c = &r->checks[i];
        if ((o = cJSON_CreateObject()) != NULL && !cJSON_AddItemToArray(r->results, o)) {
            cJSON_Delete(o);
            o = NULL;
        }
        ok = o != NULL && cJSON_AddStringToObject(o, "code", c->code) &&
             cJSON_AddStringToObject(o, "severity", severity_name[c->effect]) &&
             cJSON_AddStringToObject(o, "effect", effect_name[c->effect]) &&
             add_str_or_null(o, "where", c->where) &&
             cJSON_AddStringToObject(o, "explanation", c->explanation);
    }
    if (!ok) {
        cJSON_Delete(d);
        r->changes = r->results = NULL;
        return PATIENT_ERR_NOMEM;
    }
    cJSON_Delete(r->doc);
    r->doc = d;
    return PATIENT_OK;
}

patient_err
rep_finish(patient_report *r, size_t nchanges)
{
    if (r->worst == REP_INVALID)
        r->verdict = PATIENT_VERDICT_INVALID;
    else if (r->worst == REP_UNVERIFIABLE)
        r->verdict = PATIENT_VERDICT_UNVERIFIABLE;
    else
        r->verdict = nchanges ? PATIENT_VERDICT_MODIFIED : PATIENT_VERDICT_VERIFIED;
    if (r->nomem)
        return PATIENT_ERR_NOMEM;
    return report_doc(r);
}

char *
rep_excerpt(const uint8_t *p, size_t len, size_t max)
{
    pt_buf b = {0};
    size_t i;

    if (pt_buf_reserve(&b, 0) != PATIENT_OK)
        return NULL;
    for (i = 0; i < len && b.len < max; i++) {
        uint8_t c = p[i];
        if (c == '\n')
            pt_buf_append(&b, "\\n", 2);
        else if (c == '\t')
            pt_buf_append(&b, "\\t", 2);
        else if (c == '\r')
            pt_buf_append(&b, "\\r", 2);
        else if (c < 0x20 || c == 0x7f || c >= 0x80)
            pt_buf_appendf(&b, "\\x%02x", c);
        else
            pt_buf_append(&b, &c, 1);
    }
    if (i < len)
        pt_buf_append(&b, "...", 3);
    return (char *)b.data;
}

patient_verdict
patient_report_verdict(const patient_report *r)
{
    return r->verdict;
}

size_t
patient_report_result_count(const patient_report *r)
{
    return r->nchecks;
}

const char *
patient_report_result_code(const patient_report *r, size_t i)
{
    return i < r->nchecks ? r->checks[i].code : "ok";
}

/* cJSON indents with tabs; JSON strings never hold a raw tab (it is
 * escaped), so every tab is layout: make it two spaces, and ":<tab>" ": ". */
static char *
untab(char *s)
{
    pt_buf b = {0};

    if (s == NULL)
        return NULL;
    for (const char *p = s; *p; p++) {
        if (*p == '\t')
            pt_buf_append(&b, p > s && p[-1] == ':' ? " " : "  ", p > s && p[-1] == ':' ? 1 : 2);
        else
            pt_buf_append(&b, p, 1);
    }
    free(s);
    return (char *)b.data;
}

patient_err
patient_report_json(const patient_report *r, int pretty, char **out)
{
    *out = pretty ? untab(cJSON_Print(r->doc)) : cJSON_PrintUnformatted(r->doc);
    return *out ? PATIENT_OK : PATIENT_ERR_NOMEM;
}

static const char *
col(int color, const char *code)
{
    return color ? code : "";
}

patient_err
patient_report_text(const patient_report *r, int color, int verbose, char **out)
{
    pt_buf b = {0};
    const char *vcol;
    static const char *const what[] = {
        [PATIENT_VERDICT_VERIFIED] = "the body is exactly what the origin signed",
        [PATIENT_VERDICT_MODIFIED] = "changed only by middleboxes your policy trusts",
        [PATIENT_VERDICT_INVALID] = "do not trust this content",
        [PATIENT_VERDICT_UNVERIFIABLE] = "nothing to check it against",
    };
    const char *reset = col(color, "\033[0m"), *bold = col(color, "\033[1m");
    const char *st = r->interception;

    *out = NULL;
    switch (r->verdict) {
    case PATIENT_VERDICT_VERIFIED: vcol = col(color, "\033[1;32m"); break;
    case PATIENT_VERDICT_MODIFIED: vcol = col(color, "\033[1;33m"); break;
    case PATIENT_VERDICT_INVALID: vcol = col(color, "\033[1;31m"); break;
    default: vcol = col(color, "\033[1;35m"); break;
    }
    pt_buf_appendf(&b, "%s%s%s %s — %s\n", vcol, patient_verdict_name(r->verdict), reset,
                   r->url, what[r->verdict]);
    if (r->has_manifest)
        pt_buf_appendf(&b, "  origin %s, manifest version %llu signed by key %s, expires %s\n",
                       r->origin ? r->origin : "?", (unsigned long long)r->manifest.version,
                       r->manifest.kid, r->manifest.expires);
    if (st && strcmp(st, "none") == 0)
        pt_buf_appendf(&b, "  TLS: not intercepted (the chain holds a key the origin announced)\n");
    else if (st && strcmp(st, "allowed") == 0)
        pt_buf_appendf(&b, "  TLS: decrypted by %s%s%s, allowed by your policy (interception CA %s)\n",
                       bold, r->icpt.by, reset, r->icpt.ca);
    else if (st && strcmp(st, "denied") == 0)
        pt_buf_appendf(&b, "  TLS: decrypted by %s, which your policy does NOT allow to decrypt\n",
                       r->icpt.by);
    else if (st && strcmp(st, "unknown") == 0)
        pt_buf_appendf(&b, "  TLS: INTERCEPTED by a party no signed disclosure accounts for "
                           "(trust anchor %s)\n", r->icpt.anchor);
    else if (st)
        pt_buf_appendf(&b, "  TLS: not known whether intercepted (the origin announces no TLS keys)\n");
    if (r->nhops > 0)
        pt_buf_appendf(&b, "  %zu change%s in transit, proof: %s\n", r->nhops,
                       r->nhops == 1 ? "" : "s", r->proof);
    if (r->has_unchecked) {
        /* Confined chains: the kept bytes nobody could check, exactly. */
        unsigned long long ub = r->unchecked.bytes;
        pt_buf_appendf(&b, "  unchecked: %llu kept byte%s beside the withheld deletions%s", ub,
                       ub == 1 ? "" : "s", ub ? ", body bytes" : "");
        for (size_t i = 0; i < r->unchecked.nranges; i++) {
            unsigned long long o = r->unchecked.ranges[i].offset;
            if (i < 8)
                pt_buf_appendf(&b, "%s %llu-%llu", i > 0 ? "," : "", o,
                               o + r->unchecked.ranges[i].length);
            else if (i == 8)
                pt_buf_appendf(&b, ", ...");
        }
        pt_buf_appendf(&b, "\n");
    }
    for (size_t k = 0; k < r->nhops; k++) {
        const rep_hop *h = &r->hops[k];
        pt_buf_appendf(&b, "\n  %shop %u%s: %s%s%s (key %s, %s) at %s — %s\n", bold, h->hop, reset,
                       bold, h->name, reset, h->kid, h->service, h->at,
                       h->trusted ? "trusted by your policy" : "NOT trusted by your policy");
        if (h->has_tls)
            pt_buf_appendf(&b, "    upstream TLS: %s %s, certificate %s\n", h->tls_version,
                           h->tls_cipher ? h->tls_cipher : "",
                           h->tls_verified ? "verified" : "NOT verified");
        if (h->disclosure)
            pt_buf_appendf(&b, "    disclosure: %s\n", h->disclosure);
        for (size_t j = 0; j < h->nedits; j++) {
            const rep_edit *e = &h->edits[j];
            unsigned long long off = e->offset, del = e->deleted, ins = e->inserted;
            pt_buf_appendf(&b, "    - %s%s%s (rule %s)", bold, e->reason, reset, e->rule);
            if (e->position_in)
                pt_buf_appendf(&b, " at line %lld, column %lld", e->line, e->column);
            pt_buf_appendf(&b, " (bytes %llu-%llu)\n", off, off + del);
            if (del > 0)
                pt_buf_appendf(&b, "      removed %llu bytes: %s\n", del,
                               e->deleted_text ? e->deleted_text
                                               : "(withheld by the middlebox; only their hash is signed)");
            if (ins > 0)
                pt_buf_appendf(&b, "      inserted %llu bytes: %s\n", ins,
                               e->inserted_text ? e->inserted_text : "");
            if (e->note)
                pt_buf_appendf(&b, "      why: %s\n", e->note);
        }
    }
    {
        int header = 0;
        for (size_t i = 0; i < r->nchecks; i++) {
            const rep_check *c = &r->checks[i];
            const char *sev = severity_name[c->effect];
            if (!verbose && c->effect == REP_INFO)
                continue;
            if (!header) {
                pt_buf_appendf(&b, "\n  checks:\n");
                header = 1;
            }
            pt_buf_appendf(&b, "    %s%-7s%s %s%s%s: %s\n",
                           c->effect >= REP_UNVERIFIABLE ? col(color, "\033[31m")
                           : c->effect == REP_WARNING     ? col(color, "\033[33m")
                                                          : "",
                           sev, reset, c->code, c->where ? " @ " : "", c->where ? c->where : "",
                           c->explanation);
        }
    }
    if (b.data == NULL)
        return PATIENT_ERR_NOMEM;
    *out = (char *)b.data;
    return PATIENT_OK;
}

static void
hop_free(rep_hop *h)
{
    for (size_t j = 0; j < h->nedits; j++) {
        free(h->edits[j].reason);
        free(h->edits[j].rule);
        free(h->edits[j].note);
        free(h->edits[j].deleted_text);
        free(h->edits[j].inserted_text);
    }
    free(h->edits);
    free(h->name);
    free(h->kid);
    free(h->service);
    free(h->disclosure);
    free(h->tls_version);
    free(h->tls_cipher);
}

void
patient_report_free(patient_report *r)
{
    if (r == NULL)
        return;
    cJSON_Delete(r->doc);
    for (size_t k = 0; k < r->nhops; k++)
        hop_free(&r->hops[k]);
    for (size_t i = 0; i < r->nchecks; i++) {
        free(r->checks[i].code);
        free(r->checks[i].where);
        free(r->checks[i].explanation);
    }
    free(r->checks);
    free(r->unchecked.ranges);
    free(r->icpt.by);
    free(r->origin);
    free(r->url);
    free(r);
}
