/* Verification report: building the stable JSON document and rendering it
 * for people. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_int.h"
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

patient_err
rep_new(patient_report **out, const char *url, time_t now)
{
    patient_report *r;
    char ts[21];

    *out = NULL;
    if ((r = calloc(1, sizeof *r)) == NULL)
        return PATIENT_ERR_NOMEM;
    pt_time_format(now, ts);
    if ((r->doc = cJSON_CreateObject()) == NULL ||
        !cJSON_AddNumberToObject(r->doc, "patient", 1) ||
        !cJSON_AddStringToObject(r->doc, "type", "report") ||
        !cJSON_AddStringToObject(r->doc, "verdict", "invalid") ||
        !cJSON_AddStringToObject(r->doc, "url", url ? url : "") ||
        !cJSON_AddNullToObject(r->doc, "origin") ||
        !cJSON_AddStringToObject(r->doc, "checked_at", ts) ||
        !cJSON_AddNullToObject(r->doc, "manifest") ||
        !cJSON_AddStringToObject(r->doc, "proof", "none") ||
        !cJSON_AddNullToObject(r->doc, "unchecked") ||
        !cJSON_AddNullToObject(r->doc, "interception") ||
        (r->changes = cJSON_AddArrayToObject(r->doc, "changes")) == NULL ||
        (r->results = cJSON_AddArrayToObject(r->doc, "results")) == NULL) {
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
    static const char *const sev[] = {"info", "warning", "error", "error"};
    static const char *const effect[] = {"none", "none", "unverifiable", "invalid"};
    char msg[1024];
    va_list ap;
    cJSON *o;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if ((o = cJSON_CreateObject()) == NULL)
        return PATIENT_ERR_NOMEM;
    if (!cJSON_AddStringToObject(o, "code", code) ||
        !cJSON_AddStringToObject(o, "severity", sev[eff]) ||
        !cJSON_AddStringToObject(o, "effect", effect[eff]) ||
        !(where ? (void *)cJSON_AddStringToObject(o, "where", where)
                : (void *)cJSON_AddNullToObject(o, "where")) ||
        !cJSON_AddStringToObject(o, "explanation", msg) ||
        !cJSON_AddItemToArray(r->results, o)) {
        cJSON_Delete(o);
        return PATIENT_ERR_NOMEM;
    }
    if ((int)eff > r->worst)
        r->worst = eff;
    return PATIENT_OK;
}

void
rep_finish(patient_report *r, size_t nchanges)
{
    if (r->worst == REP_INVALID)
        r->verdict = PATIENT_VERDICT_INVALID;
    else if (r->worst == REP_UNVERIFIABLE)
        r->verdict = PATIENT_VERDICT_UNVERIFIABLE;
    else
        r->verdict = nchanges ? PATIENT_VERDICT_MODIFIED : PATIENT_VERDICT_VERIFIED;
    cJSON_ReplaceItemInObjectCaseSensitive(r->doc, "verdict",
                                           cJSON_CreateString(patient_verdict_name(r->verdict)));
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
    return (size_t)cJSON_GetArraySize(r->results);
}

const char *
patient_report_result_code(const patient_report *r, size_t i)
{
    const cJSON *o = cJSON_GetArrayItem(r->results, (int)i);
    const char *c = o ? pt_json_str(o, "code") : NULL;
    return c ? c : "ok";
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

static const char *
jstr(const cJSON *o, const char *k, const char *dflt)
{
    const char *s = pt_json_str(o, k);
    return s ? s : dflt;
}

patient_err
patient_report_text(const patient_report *r, int color, int verbose, char **out)
{
    pt_buf b = {0};
    const cJSON *man = cJSON_GetObjectItemCaseSensitive(r->doc, "manifest");
    const cJSON *hop, *e, *res;
    const char *vcol;
    static const char *const what[] = {
        [PATIENT_VERDICT_VERIFIED] = "the body is exactly what the origin signed",
        [PATIENT_VERDICT_MODIFIED] = "changed only by middleboxes your policy trusts",
        [PATIENT_VERDICT_INVALID] = "do not trust this content",
        [PATIENT_VERDICT_UNVERIFIABLE] = "nothing to check it against",
    };
    const char *reset = col(color, "\033[0m"), *bold = col(color, "\033[1m");

    *out = NULL;
    switch (r->verdict) {
    case PATIENT_VERDICT_VERIFIED: vcol = col(color, "\033[1;32m"); break;
    case PATIENT_VERDICT_MODIFIED: vcol = col(color, "\033[1;33m"); break;
    case PATIENT_VERDICT_INVALID: vcol = col(color, "\033[1;31m"); break;
    default: vcol = col(color, "\033[1;35m"); break;
    }
    pt_buf_appendf(&b, "%s%s%s %s — %s\n", vcol, patient_verdict_name(r->verdict), reset,
                   jstr(r->doc, "url", ""), what[r->verdict]);
    if (cJSON_IsObject(man)) {
        long long v = 0;
        pt_json_int(man, "version", &v);
        pt_buf_appendf(&b, "  origin %s, manifest version %lld signed by key %s, expires %s\n",
                       jstr(r->doc, "origin", "?"), v, jstr(man, "kid", "?"),
                       jstr(man, "expires", "?"));
    }
    {
        const cJSON *ic = cJSON_GetObjectItemCaseSensitive(r->doc, "interception");
        const char *st = cJSON_IsObject(ic) ? jstr(ic, "status", "") : NULL;
        if (st && strcmp(st, "none") == 0)
            pt_buf_appendf(&b, "  TLS: not intercepted (the chain holds a key the origin announced)\n");
        else if (st && strcmp(st, "allowed") == 0)
            pt_buf_appendf(&b, "  TLS: decrypted by %s%s%s, allowed by your policy (interception CA %s)\n",
                           bold, jstr(ic, "by", "?"), reset, jstr(ic, "ca", "?"));
        else if (st && strcmp(st, "denied") == 0)
            pt_buf_appendf(&b, "  TLS: decrypted by %s, which your policy does NOT allow to decrypt\n",
                           jstr(ic, "by", "?"));
        else if (st && strcmp(st, "unknown") == 0)
            pt_buf_appendf(&b, "  TLS: INTERCEPTED by a party no signed disclosure accounts for "
                               "(trust anchor %s)\n", jstr(ic, "anchor", "?"));
        else if (st)
            pt_buf_appendf(&b, "  TLS: not known whether intercepted (the origin announces no TLS keys)\n");
    }
    if (cJSON_GetArraySize(r->changes) > 0)
        pt_buf_appendf(&b, "  %d change%s in transit, proof: %s\n",
                       cJSON_GetArraySize(r->changes),
                       cJSON_GetArraySize(r->changes) == 1 ? "" : "s",
                       jstr(r->doc, "proof", "none"));
    {
        /* Confined chains: the kept bytes nobody could check, exactly. */
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(r->doc, "unchecked"), *rg;
        long long ub = 0;
        if (cJSON_IsObject(u) && pt_json_int(u, "bytes", &ub) == 0) {
            int shown = 0;
            pt_buf_appendf(&b, "  unchecked: %lld kept byte%s beside the withheld deletions%s",
                           ub, ub == 1 ? "" : "s", ub ? ", body bytes" : "");
            cJSON_ArrayForEach(rg, cJSON_GetObjectItemCaseSensitive(u, "ranges"))
            {
                long long o = 0, l = 0;
                pt_json_int(rg, "offset", &o);
                pt_json_int(rg, "length", &l);
                if (shown++ < 8)
                    pt_buf_appendf(&b, "%s %lld-%lld", shown > 1 ? "," : "", o, o + l);
                else if (shown == 9)
                    pt_buf_appendf(&b, ", ...");
            }
            pt_buf_appendf(&b, "\n");
        }
    }
    cJSON_ArrayForEach(hop, r->changes)
    {
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(hop, "by");
        const cJSON *tls = cJSON_GetObjectItemCaseSensitive(hop, "tls");
        long long h = 0;
        pt_json_int(hop, "hop", &h);
        pt_buf_appendf(&b, "\n  %shop %lld%s: %s%s%s (key %s, %s) at %s — %s%s\n", bold, h, reset,
                       bold, jstr(by, "name", "?"), reset, jstr(by, "kid", "?"),
                       jstr(by, "service", "?"), jstr(hop, "at", "?"),
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hop, "trusted"))
                           ? "trusted by your policy"
                           : "NOT trusted by your policy",
                       "");
        if (cJSON_IsObject(tls))
            pt_buf_appendf(&b, "    upstream TLS: %s %s, certificate %s\n",
                           jstr(tls, "version", "?"), jstr(tls, "cipher", ""),
                           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tls, "verified"))
                               ? "verified"
                               : "NOT verified");
        if (jstr(by, "disclosure", NULL))
            pt_buf_appendf(&b, "    disclosure: %s\n", jstr(by, "disclosure", ""));
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(hop, "edits"))
        {
            long long off = 0, del = 0, ins = 0, line = 0, column = 0;
            const char *dt = jstr(e, "deleted_text", NULL), *it = jstr(e, "inserted_text", NULL);
            pt_json_int(e, "offset", &off);
            pt_json_int(e, "deleted", &del);
            pt_json_int(e, "inserted", &ins);
            pt_buf_appendf(&b, "    - %s%s%s (rule %s)", bold, jstr(e, "reason", "?"), reset,
                           jstr(e, "rule", "?"));
            if (pt_json_int(e, "line", &line) == 0 && pt_json_int(e, "column", &column) == 0)
                pt_buf_appendf(&b, " at line %lld, column %lld", line, column);
            pt_buf_appendf(&b, " (bytes %lld-%lld)\n", off, off + del);
            if (del > 0)
                pt_buf_appendf(&b, "      removed %lld bytes: %s\n", del,
                               dt ? dt : "(withheld by the middlebox; only their hash is signed)");
            if (ins > 0)
                pt_buf_appendf(&b, "      inserted %lld bytes: %s\n", ins, it ? it : "");
            if (jstr(e, "note", NULL))
                pt_buf_appendf(&b, "      why: %s\n", jstr(e, "note", ""));
        }
    }
    {
        int header = 0;
        cJSON_ArrayForEach(res, r->results)
        {
            const char *sev = jstr(res, "severity", "info");
            if (!verbose && strcmp(sev, "info") == 0)
                continue;
            if (!header) {
                pt_buf_appendf(&b, "\n  checks:\n");
                header = 1;
            }
            pt_buf_appendf(&b, "    %s%-7s%s %s%s%s: %s\n",
                           strcmp(sev, "error") == 0 ? col(color, "\033[31m")
                           : strcmp(sev, "warning") == 0 ? col(color, "\033[33m") : "",
                           sev, reset, jstr(res, "code", "?"),
                           jstr(res, "where", NULL) ? " @ " : "", jstr(res, "where", ""),
                           jstr(res, "explanation", ""));
        }
    }
    if (b.data == NULL)
        return PATIENT_ERR_NOMEM;
    *out = (char *)b.data;
    return PATIENT_OK;
}

void
patient_report_free(patient_report *r)
{
    if (r == NULL)
        return;
    cJSON_Delete(r->doc);
    free(r);
}
