/* Inspection of audit logs: a file streamed by the log iterator, lines in
 * memory by the iterator's own line reader; counts, first and last entry. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cJSON.h>

#include "inspect_int.h"
#include "util.h"
#include "log_int.h"
#include <patient/log.h>

/* *out: the line's members the inspection shows (new; NULL when the line
 * does not parse). -1 when out of memory (*out NULL), never a summary cut
 * short. */
static int
log_line_summary(const char *line, size_t len, cJSON **out)
{
    static const char *const keys[] = {"seq",     "kind",      "time",  "url",   "hop",
                                       "by",      "reasons",   "rules", "deleted", "inserted",
                                       "event",   "detail",    "tree_size", "root", NULL};
    cJSON *o = NULL;
    patient_err err;
    int rc = 0;

    *out = NULL;
    if ((err = pt_json_parse_lenient(line, len, NULL, &o)) != PATIENT_OK)
        return err == PATIENT_ERR_NOMEM ? -1 : 0;
    if ((*out = pick_fields(o, keys)) == NULL)
        rc = -1;
    cJSON_Delete(o);
    return rc;
}

int
pt_inspect_is_log_line(const cJSON *o)
{
    return cJSON_IsObject(o) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "seq")) &&
           pt_json_str(o, "prev") && pt_json_str(o, "kind");
}

/* first and last TAKEN, r filled: 0, or -1 when out of memory (r's
 * details then NULL, never short). */
static int
log_details(result *r, uint64_t entries, uint64_t ch, uint64_t ev, uint64_t ck, cJSON *first,
            cJSON *last, int streamed)
{
    cJSON *d;

    if (first == NULL)
        first = cJSON_CreateNull();
    if (entries > 1 && last == NULL)
        last = cJSON_CreateNull();
    if ((d = cJSON_CreateObject()) == NULL || first == NULL || (entries > 1 && last == NULL) ||
        cJSON_AddNumberToObject(d, "entries", (double)entries) == NULL ||
        cJSON_AddNumberToObject(d, "changes", (double)ch) == NULL ||
        cJSON_AddNumberToObject(d, "events", (double)ev) == NULL ||
        cJSON_AddNumberToObject(d, "checkpoints", (double)ck) == NULL ||
        cJSON_AddBoolToObject(d, "streamed", streamed) == NULL)
        goto nomem;
    if (!cJSON_AddItemToObject(d, "first", first))
        goto nomem;
    first = NULL;
    if (entries > 1) {
        if (!cJSON_AddItemToObject(d, "last", last))
            goto nomem;
        last = NULL;
    }
    cJSON_Delete(last);
    last = NULL;
    if (cJSON_AddStringToObject(d, "check_with", "patient audit verify LOG --pub PUB") == NULL)
        goto nomem;
    r->kind = "audit-log";
    r->title = entries == 1 ? "audit log line" : "audit log (JSON Lines)";
    r->is_signed = 1;
    r->details = d;
    return 0;
nomem:
    cJSON_Delete(d);
    cJSON_Delete(first);
    cJSON_Delete(last);
    return pt_inspect_fail(r, "out of memory");
}

static int
keep_last(char **buf, size_t *cap, size_t *len, const char *raw, size_t n)
{
    if (n > *cap) {
        char *nb = realloc(*buf, n);
        if (nb == NULL)
            return -1;
        *buf = nb;
        *cap = n;
    }
    memcpy(*buf, raw, n);
    *len = n;
    return 0;
}

/* A log file on disk of any size: the library's streaming reader. */
int
pt_inspect_log_file(const char *path, result *r)
{
    patient_log_iter *it = NULL;
    const patient_log_entry *e;
    uint64_t n = 0, ch = 0, ev = 0, ck = 0;
    cJSON *first = NULL, *last = NULL;
    char *lastbuf = NULL;
    size_t lastcap = 0, lastlen = 0;
    patient_err err;

    if ((err = patient_log_iter_open(path, &it)) != PATIENT_OK)
        return pt_inspect_fail(r, "cannot read as a log: %s", patient_strerror(err));
    for (;;) {
        if ((err = patient_log_iter_next(it, &e)) != PATIENT_OK) {
            pt_inspect_fail(r, "audit log, but line %" PRIu64 " is not a log entry: %s [%s]",
                 patient_log_iter_line(it), patient_strerror(err), patient_errname(err));
            cJSON_Delete(first);
            free(lastbuf);
            patient_log_iter_close(it);
            return -1;
        }
        if (e == NULL)
            break;
        n++;
        ch += e->kind == PATIENT_LOG_KIND_CHANGE;
        ev += e->kind == PATIENT_LOG_KIND_EVENT;
        ck += e->kind == PATIENT_LOG_KIND_CHECKPOINT;
        if (first == NULL ? log_line_summary(e->raw, e->raw_len, &first) != 0
                          : keep_last(&lastbuf, &lastcap, &lastlen, e->raw, e->raw_len) != 0) {
            pt_inspect_fail(r, "out of memory");
            cJSON_Delete(first);
            free(lastbuf);
            patient_log_iter_close(it);
            return -1;
        }

    }
    patient_log_iter_close(it);
    if (lastbuf != NULL && log_line_summary(lastbuf, lastlen, &last) != 0) {
        free(lastbuf);
        cJSON_Delete(first);
        return pt_inspect_fail(r, "out of memory");
    }
    free(lastbuf);
    if (n == 0) {
        cJSON_Delete(first);
        return pt_inspect_fail(r, "audit log without a complete entry");
    }
    return log_details(r, n, ch, ev, ck, first, last, 1);
}

/* Log lines held in memory (stdin): each read by the log iterator's own
 * line reader, so that a log inspected from stdin is read as from a file;
 * only the first and the last are summarised (parsed for their members),
 * as for a file. */
int
pt_inspect_log_text(const char *text, size_t len, result *r)
{
    const char *p = text, *end = text + len, *l, *last_l = NULL;
    size_t ll, last_ll = 0;
    uint64_t n = 0, ch = 0, ev = 0, ck = 0, lineno = 0;
    cJSON *first = NULL, *last = NULL;
    pentry pe;
    patient_log_entry e;
    patient_err err;
    int rc = -1;

    memset(&pe, 0, sizeof pe);
    while (pt_next_line(&p, end, &l, &ll) == 0) {
        lineno++;
        if (ll == 0)
            continue;
        if ((err = pt_log_entry_read(&pe, (const uint8_t *)l, ll, lineno, &e)) != PATIENT_OK) {
            pt_inspect_fail(r, "audit log, but line %" PRIu64 " is not a log entry: %s [%s]%s", lineno,
                 patient_strerror(err), patient_errname(err),
                 p == end && text[len - 1] != '\n' ? " (a torn last line?)" : "");
            goto out;
        }
        ch += e.kind == PATIENT_LOG_KIND_CHANGE;
        ev += e.kind == PATIENT_LOG_KIND_EVENT;
        ck += e.kind == PATIENT_LOG_KIND_CHECKPOINT;
        n++;
        if (first == NULL) {
            if (log_line_summary(l, ll, &first) != 0) {
                pt_inspect_fail(r, "out of memory");
                goto out;
            }
        } else {
            last_l = l; /* text stays: summarised once, at the end */
            last_ll = ll;
        }
    }
    if (last_l != NULL && log_line_summary(last_l, last_ll, &last) != 0) {
        pt_inspect_fail(r, "out of memory");
        goto out;
    }
    rc = log_details(r, n, ch, ev, ck, first, last, 0);
    first = last = NULL;
out:
    cJSON_Delete(first);
    cJSON_Delete(last);
    pentry_free(&pe);
    return rc;
}


/* ---- one change entry, as `patient audit list` shows it ------------------ */

/* What a hop that withheld deleted bytes left unchecked, read from its
 * descriptor by the change reader, for the JSON row and the CHUNKS column
 * alike: the origin chunks it touched, their ranges (*r, caller frees), the
 * bytes it withheld. -1 when the descriptor does not read or out of memory
 * (list does not verify; `audit verify --deep` says why). */
static int
chunks_read(const patient_log_entry *e, size_t *touched, uint64_t *withheld, patient_range **r,
            size_t *nr)
{
    patient_change *c = NULL;
    int rc = -1;

    *r = NULL;
    *nr = 0;
    *touched = 0;
    *withheld = 0;
    if (e->jws && patient_change_parse(e->jws, strlen(e->jws), &c) == PATIENT_OK &&
        patient_change_chunk_ranges(c, r, nr, withheld) == PATIENT_OK) {
        *touched = c->nchunks;
        rc = 0;
    }
    patient_change_free(c);
    return rc;
}

/* The "chunks" member: null when the hop withheld nothing, "unreadable"
 * when the descriptor does not read. 0 when out of memory. */
static int
entry_chunks(cJSON *o, const patient_log_entry *e)
{
    patient_range *r = NULL;
    size_t touched, nr;
    uint64_t withheld;
    cJSON *ch, *u;
    int ok;

    if (chunks_read(e, &touched, &withheld, &r, &nr) != 0)
        ok = cJSON_AddStringToObject(o, "chunks", "unreadable") != NULL;
    else if (withheld == 0)
        ok = cJSON_AddNullToObject(o, "chunks") != NULL;
    else if ((ch = cJSON_AddObjectToObject(o, "chunks")) == NULL ||
             cJSON_AddNumberToObject(ch, "touched", (double)touched) == NULL ||
             cJSON_AddNumberToObject(ch, "withheld", (double)withheld) == NULL ||
             (u = pt_inspect_ranges_json(r, nr)) == NULL)
        ok = 0;
    else if (!(ok = cJSON_AddItemToObject(ch, "unchecked", u)))
        cJSON_Delete(u); /* not added: cJSON could not copy its key */
    free(r);
    return ok;
}

const char *
patient_inspect_log_entry_chunks(const patient_log_entry *e, char *out, size_t cap)
{
    size_t touched = 0, nr = 0, len;
    uint64_t withheld = 0;
    patient_range *r = NULL;

    if (e == NULL || out == NULL || cap < 8 || chunks_read(e, &touched, &withheld, &r, &nr) != 0)
        return "?";
    if (touched == 0) {
        free(r);
        return withheld ? "unconfined" : "-";
    }
    len = (size_t)snprintf(out, cap, "%zu:", touched);
    for (size_t i = 0; i < nr && len < cap; i++) {
        int k = snprintf(out + len, cap - len, "%s%" PRIu64 "-%" PRIu64, i ? "," : "",
                         r[i].offset, r[i].offset + r[i].length - 1);
        if (k < 0 || (size_t)k >= cap - len) {
            snprintf(out + (len < cap - 4 ? len : cap - 4), 4, ",..");
            break;
        }
        len += (size_t)k;
    }
    free(r);
    return out;
}

static int
entry_strings(cJSON *o, const char *name, const char *const *v, size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(o, name);

    for (size_t i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(v && v[i] ? v[i] : "")))
            return 0;
    return a != NULL;
}

static int
entry_members(cJSON *o, const patient_log_entry *e, const char *log, unsigned flags)
{
    cJSON *m;

    return cJSON_AddStringToObject(o, "log", log ? log : "") != NULL &&
           cJSON_AddNumberToObject(o, "line", (double)e->line_no) != NULL &&
           cJSON_AddNumberToObject(o, "seq", (double)e->seq) != NULL &&
           cJSON_AddStringToObject(o, "time", e->time_str ? e->time_str : "") != NULL &&
           cJSON_AddStringToObject(o, "url", e->url ? e->url : "") != NULL &&
           cJSON_AddNumberToObject(o, "hop", (double)e->hop) != NULL &&
           (m = cJSON_AddObjectToObject(o, "middlebox")) != NULL &&
           cJSON_AddStringToObject(m, "name", e->by_name ? e->by_name : "") != NULL &&
           cJSON_AddStringToObject(m, "kid", e->by_kid ? e->by_kid : "") != NULL &&
           entry_strings(o, "reasons", e->reasons, e->n_edits) &&
           entry_strings(o, "rules", e->rules, e->n_edits) &&
           cJSON_AddNumberToObject(o, "edits", (double)e->n_edits) != NULL &&
           cJSON_AddNumberToObject(o, "deleted", (double)e->deleted) != NULL &&
           cJSON_AddNumberToObject(o, "inserted", (double)e->inserted) != NULL &&
           (e->tls ? cJSON_AddStringToObject(o, "tls", e->tls) : cJSON_AddNullToObject(o, "tls")) !=
               NULL &&
           (!(flags & PATIENT_INSPECT_ENTRY_CHUNKS) || entry_chunks(o, e));
}

char *
patient_inspect_log_entry_json(const patient_log_entry *e, const char *log, unsigned flags)
{
    cJSON *o = e ? cJSON_CreateObject() : NULL;
    char *s = NULL;

    if (o && entry_members(o, e, log, flags))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
