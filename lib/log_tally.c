/* Choosing an audit log's changes by reason (--reason of `patient audit
 * list`, `stats` and `monitor`) and counting them by group, as `patient
 * audit stats` shows them: by reason, middlebox, URL, day or upstream TLS, with a cap on the
 * groups kept (the rest counted under "(other)") and one total. The
 * entries come from the log's reader (patient_log_iter_*); nothing here
 * verifies them. */
#include "config.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patient/log.h>
#include <patient/time.h>
#include "log_int.h"

int
patient_log_entry_reason_match(const patient_log_entry *e, const char *glob)
{
    if (e == NULL || glob == NULL)
        return 0;
    for (size_t i = 0; i < e->n_edits; i++)
        if (fnmatch(glob, e->reasons[i], 0) == 0)
            return 1;
    return 0;
}

struct patient_log_tally {
    patient_log_tally_by by;
    patient_log_tally_group *tab;
    size_t cap, n;
    size_t key_bytes;
    int overflow, sorted;
    patient_log_tally_group other, total;
};

patient_err
patient_log_tally_new(patient_log_tally_by by, patient_log_tally **out)
{
    patient_log_tally *c;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if ((unsigned)by > PATIENT_LOG_TALLY_BY_TLS)
        return PATIENT_ERR_ARG;
    if ((c = calloc(1, sizeof *c)) == NULL)
        return PATIENT_ERR_NOMEM;
    c->by = by;
    c->other.key = "(other)";
    *out = c;
    return PATIENT_OK;
}

static uint64_t
fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The group of key: found, made, or "(other)" past the caps. NULL when out
 * of memory. */
static patient_log_tally_group *
stats_group(patient_log_tally *c, const char *key)
{
    size_t i;
    char *k;

    if (c->cap == 0 || (c->n + 1) * 4 > c->cap * 3) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        patient_log_tally_group *nt = calloc(ncap, sizeof *nt);
        if (nt == NULL)
            return NULL;
        for (size_t j = 0; j < c->cap; j++) {
            if (c->tab[j].key == NULL)
                continue;
            for (i = fnv(c->tab[j].key) & (ncap - 1); nt[i].key; i = (i + 1) & (ncap - 1))
                ;
            nt[i] = c->tab[j];
        }
        free(c->tab);
        c->tab = nt;
        c->cap = ncap;
    }
    for (i = fnv(key) & (c->cap - 1); c->tab[i].key; i = (i + 1) & (c->cap - 1))
        if (strcmp(c->tab[i].key, key) == 0)
            return &c->tab[i];
    if (c->n >= PATIENT_LOG_TALLY_GROUPS_MAX ||
        c->key_bytes + strlen(key) > PATIENT_LOG_TALLY_KEY_BYTES_MAX) {
        c->overflow = 1;
        return &c->other;
    }
    if ((k = strdup(key)) == NULL)
        return NULL;
    c->tab[i].key = k;
    c->key_bytes += strlen(key) + 1;
    c->n++;
    return &c->tab[i];
}

static void
add_to(patient_log_tally_group *g, uint64_t edits, uint64_t del, uint64_t ins)
{
    g->changes++;
    g->edits += edits;
    g->deleted += del;
    g->inserted += ins;
}

/* A change counts once per distinct reason; its edits and bytes go to each
 * edit's own reason. */
static patient_err
add_by_reason(patient_log_tally *c, const patient_log_entry *e)
{
    patient_log_tally_group *g;
    uint64_t *del, *ins;
    patient_err err = PATIENT_ERR_NOMEM;
    int mixed = 0;

    for (size_t i = 1; i < e->n_edits; i++)
        if (strcmp(e->reasons[i], e->reasons[0]) != 0)
            mixed = 1;
    if (!mixed) {
        if ((g = stats_group(c, e->n_edits ? e->reasons[0] : "-")) == NULL)
            return PATIENT_ERR_NOMEM;
        add_to(g, e->n_edits, e->deleted, e->inserted);
        return PATIENT_OK;
    }
    del = calloc(e->n_edits, sizeof *del);
    ins = calloc(e->n_edits, sizeof *ins);
    if (del == NULL || ins == NULL)
        goto out;
    /* Bytes per edit (only needed when one change mixes reasons), not
     * verified. An undecodable descriptor counts its edits with no
     * per-reason bytes (the reader zeroes both arrays). */
    if (patient_log_entry_edit_bytes(e, del, ins) != PATIENT_OK) {
        /* counted below with zero bytes */
    }
    for (size_t i = 0; i < e->n_edits; i++) {
        size_t j;
        if ((g = stats_group(c, e->reasons[i])) == NULL)
            goto out;
        for (j = 0; j < i; j++)
            if (strcmp(e->reasons[j], e->reasons[i]) == 0)
                break;
        if (j == i)
            g->changes++;
        g->edits++;
        g->deleted += del[i];
        g->inserted += ins[i];
    }
    err = PATIENT_OK;
out:
    free(del);
    free(ins);
    return err;
}

patient_err
patient_log_tally_add(patient_log_tally *c, const patient_log_entry *e)
{
    patient_log_tally_group *g;
    char day[PATIENT_TIME_ANY_BYTES], *k = NULL;

    if (c == NULL || e == NULL || c->sorted || e->kind != PATIENT_LOG_KIND_CHANGE)
        return PATIENT_ERR_ARG;
    add_to(&c->total, e->n_edits, e->deleted, e->inserted);
    switch (c->by) {
    case PATIENT_LOG_TALLY_BY_MIDDLEBOX:
        if (asprintf(&k, "%s (%s)", e->by_name ? e->by_name : "-", e->by_kid ? e->by_kid : "-") <
            0)
            return PATIENT_ERR_NOMEM;
        g = stats_group(c, k);
        free(k);
        break;
    case PATIENT_LOG_TALLY_BY_URL:
        g = stats_group(c, e->url ? e->url : "-");
        break;
    case PATIENT_LOG_TALLY_BY_TLS:
        g = stats_group(c, e->tls ? e->tls : "-");
        break;
    case PATIENT_LOG_TALLY_BY_DAY:
        /* The date of the entry's time in UTC, YYYY-MM-DD. */
        patient_time_format_any(e->time, day);
        day[10] = 0;
        g = stats_group(c, day);
        break;
    default:
        return add_by_reason(c, e);
    }
    if (g == NULL)
        return PATIENT_ERR_NOMEM;
    add_to(g, e->n_edits, e->deleted, e->inserted);
    return PATIENT_OK;
}

static int
group_cmp(const void *a, const void *b)
{
    const patient_log_tally_group *x = a, *y = b;
    if (x->changes != y->changes)
        return x->changes < y->changes ? 1 : -1;
    if (x->edits != y->edits)
        return x->edits < y->edits ? 1 : -1;
    return strcmp(x->key, y->key);
}

patient_err
patient_log_tally_groups(patient_log_tally *c, const patient_log_tally_group **groups, size_t *n)
{
    if (c == NULL || groups == NULL || n == NULL)
        return PATIENT_ERR_ARG;
    if (!c->sorted) {
        size_t m = 0;
        /* Compact the table, then sort. The tail is zeroed so that each
         * key is held by one slot only and the free loop stays one loop. */
        for (size_t i = 0; i < c->cap; i++)
            if (c->tab[i].key)
                c->tab[m++] = c->tab[i];
        if (m < c->cap) /* tab is still NULL when nothing was counted */
            memset(c->tab + m, 0, (c->cap - m) * sizeof *c->tab);
        if (m)
            qsort(c->tab, m, sizeof *c->tab, group_cmp);
        c->sorted = 1;
    }
    *groups = c->tab;
    *n = c->n;
    return PATIENT_OK;
}

const patient_log_tally_group *
patient_log_tally_other(const patient_log_tally *c)
{
    return c && c->overflow ? &c->other : NULL;
}

const patient_log_tally_group *
patient_log_tally_total(const patient_log_tally *c)
{
    return c ? &c->total : NULL;
}

const char *
patient_log_tally_by_name(patient_log_tally_by by)
{
    static const char *const names[] = {"reason", "middlebox", "url", "day", "tls"};

    return (unsigned)by < sizeof names / sizeof *names ? names[by] : NULL;
}

patient_log_tally_by
pt_log_tally_by(const patient_log_tally *c)
{
    return c->by;
}

void
patient_log_tally_free(patient_log_tally *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->cap; i++)
        free((char *)c->tab[i].key);
    free(c->tab);
    free(c);
}
