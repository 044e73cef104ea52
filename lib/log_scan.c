/* The audit log, bulk reading: big batches of whole lines, and the
 * per-line work that does not depend on the line before (the two SHA-256
 * of every line, the strict entry scan) spread over the machine's cores.
 * Only what chains one line to the next (prev, seq, the Merkle frontier,
 * checkpoints) stays sequential, in the caller. Format: docs/format/log.md. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log_int.h"
#include "merkle.h"
#include "sha256_pair.h"
#include "tlog_int.h"

/* ---- Batches of lines -------------------------------------------------- */

patient_err
lb_init(lbatch *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    if (cap == 0)
        return PATIENT_OK;
    /* Room for the longest line and its newline, whatever the caller asks
     * (and a line cut by the end: it starts the next batch). */
    if (cap < 2 * ((size_t)PATIENT_LOG_LINE_MAX + 1))
        cap = 2 * ((size_t)PATIENT_LOG_LINE_MAX + 1);
    b->cap = cap;
    if ((b->buf = malloc(cap)) == NULL)
        return PATIENT_ERR_NOMEM;
    return PATIENT_OK;
}

void
lb_free(lbatch *b)
{
    free(b->buf);
    free(b->line);
    free(b->len);
    free(b->info);
    memset(b, 0, sizeof *b);
}

/* Room for n lines. */
static patient_err
lb_room(lbatch *b, size_t n)
{
    if (n > b->ncap) {
        size_t nc = b->ncap ? b->ncap : 1024;
        const uint8_t **nl;
        while (nc < n)
            nc *= 2;
        nl = realloc(b->line, nc * sizeof *nl);
        size_t *nn;
        lineinfo *ni;
        if (nl == NULL)
            return PATIENT_ERR_NOMEM;
        b->line = nl;
        if ((nn = realloc(b->len, nc * sizeof *nn)) == NULL)
            return PATIENT_ERR_NOMEM;
        b->len = nn;
        if ((ni = realloc(b->info, nc * sizeof *ni)) == NULL)
            return PATIENT_ERR_NOMEM;
        b->info = ni;
        b->ncap = nc;
    }
    return PATIENT_OK;
}

patient_err
lb_add(lbatch *b, const uint8_t *p, size_t len)
{
    patient_err err;

    if (b->n == b->ncap && (err = lb_room(b, b->n + 1)))
        return err;
    b->line[b->n] = p;
    b->len[b->n] = len;
    b->n++;
    return PATIENT_OK;
}

patient_err
lb_set_bundles(lbatch *b, lbundle *bun, size_t nb)
{
    size_t n = 0;
    patient_err err;

    for (size_t k = 0; k < nb; k++) {
        bun[k].first = n;
        bun[k].split_ok = 0;
        n += bun[k].w;
    }
    if ((err = lb_room(b, n)))
        return err;
    b->n = n;
    b->bun = nb ? bun : NULL;
    b->nbun = nb;
    return PATIENT_OK;
}

/* Reads from file offset off as many whole lines as the buffer holds. A
 * line cut by the end of the buffer is read again by the next batch (from
 * b->next_off), so batches never copy between each other. */
patient_err
lb_read(lbatch *b, int fd, uint64_t off)
{
    size_t got = 0;
    uint8_t *p, *end, *nl;
    patient_err err;

    b->n = 0;
    b->off = off;
    b->torn = b->too_long = b->eof = 0;
    b->bun = NULL;
    b->nbun = 0;
    while (got < b->cap) {
        ssize_t r = pread(fd, b->buf + got, b->cap - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return PATIENT_ERR_IO;
        if (r == 0) {
            b->eof = 1;
            break;
        }
        got += (size_t)r;
    }
    p = b->buf;
    end = b->buf + got;
    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if ((size_t)(nl - p) > PATIENT_LOG_LINE_MAX) {
            b->too_long = 1;
            break;
        }
        if ((err = lb_add(b, p, (size_t)(nl - p))))
            return err;
        p = nl + 1;
    }
    if (!b->too_long && p < end) {
        if (b->eof) {
            /* The file ends inside this line: a torn append. */
            if ((err = lb_add(b, p, (size_t)(end - p))))
                return err;
            b->torn = 1;
            p = end;
        } else if ((size_t)(end - p) > PATIENT_LOG_LINE_MAX) {
            b->too_long = 1;
        }
    }
    b->next_off = off + (uint64_t)(p - b->buf);
    /* The end of the file only once every byte read was handed out. */
    if (p < end)
        b->eof = 0;
    return PATIENT_OK;
}

uint64_t
lb_line_off(const lbatch *b, size_t i)
{
    return b->off + (uint64_t)(b->line[i] - b->buf);
}

/* ---- The per-line work ------------------------------------------------- */

/* hashed: both hashes are in li already (slice_work). */
static void
line_work(const uint8_t *line, size_t len, unsigned what, int hashed, pentry *e, lineinfo *li)
{
    time_t t;

    li->parsed = 0;
    if (!hashed)
        li->hash_err = (what & LS_CHAIN)
                           ? pt_sha256_pair(line, len, li->chain, li->leaf) != PATIENT_OK
                           : pt_merkle_leaf(line, len, NULL, li->leaf) != PATIENT_OK;
    if (!(what & LS_SCAN) || pentry_parse(line, len, e) != PATIENT_OK)
        return;
    /* Checkpoints and anything that failed are looked at again by the
     * caller, in order, with the whole entry: they are rare. A time the
     * log's reader refuses is one of those (the monitor's alarm for it
     * names the entry, in log order), so a scanned line's time reads. */
    if ((e->kind != PATIENT_LOG_KIND_CHANGE && e->kind != PATIENT_LOG_KIND_EVENT) ||
        pt_log_time_parse(e->time, &t) != PATIENT_OK)
        return;
    li->seq = e->seq;
    li->kind = e->kind;
    memcpy(li->prev, e->prev, HEX_LEN + 1);
    if (e->kind == PATIENT_LOG_KIND_CHANGE && e->jws)
        pt_index_key(e->jws, e->jws_len, li->key);
    li->parsed = 1;
}

/* LS_SUBTREE: the root of lines g..g+LS_SUB-1 of b into info[g], when
 * they are all there, hashed and parsed (else info[g].sub_ok = 0). Only
 * where the CPU hashes 16 nodes at once: one by one, the caller's
 * frontier is as fast, so it is left to do them. */
static void
group_root(lbatch *b, size_t g, size_t hi)
{
    uint8_t leaves[LS_SUB][HASH_LEN];

    b->info[g].sub_ok = 0;
    if (g + LS_SUB > hi || !pt_cpu_avx512())
        return;
    for (size_t j = 0; j < LS_SUB; j++) {
        const lineinfo *li = &b->info[g + j];
        if (li->hash_err || !li->parsed)
            return;
        memcpy(leaves[j], li->leaf, HASH_LEN);
    }
    b->info[g].sub_ok =
        pt_merkle_root_wide((const uint8_t(*)[HASH_LEN])leaves, LS_SUB, b->info[g].sub) ==
        PATIENT_OK;
}

/* Lines lo..hi of b: both hashes eight lines at a time where the CPU
 * hashes sixteen messages at once (pt_sha256_pair8), then each line's
 * scan; with LS_SUBTREE, the roots of its groups (lo is a multiple of
 * LS_SUB). */
static void
slice_work(lbatch *b, size_t lo, size_t hi, unsigned what, pentry *e)
{
    size_t i, k;

    for (i = lo; i < hi; i += k) {
        uint8_t *chain[8], *leaf[8];
        int hashed;
        k = hi - i < 8 ? hi - i : 8;
        for (size_t j = 0; j < k; j++) {
            chain[j] = b->info[i + j].chain;
            leaf[j] = b->info[i + j].leaf;
        }
        hashed = (what & LS_CHAIN) && k > 1 &&
                 pt_sha256_pair8(b->line + i, b->len + i, (unsigned)k, chain, leaf) == 0;
        for (size_t j = 0; j < k; j++) {
            if (hashed)
                b->info[i + j].hash_err = 0;
            line_work(b->line[i + j], b->len[i + j], what, hashed, e, &b->info[i + j]);
        }
    }
    if ((what & (LS_SUBTREE | LS_SCAN)) == (LS_SUBTREE | LS_SCAN))
        for (i = lo; i < hi; i += LS_SUB)
            group_root(b, i, hi);
}

/* Bundle k of b split into its lines: 1, or 0 when it is not exactly
 * its lines (split_ok stays 0; its lines are left empty, so that a slice
 * over them hashes nothing it should not read; the caller reports it
 * where it comes in the log). */
static int
bundle_split(lbatch *b, size_t k)
{
    lbundle *u = &b->bun[k];
    char *lines[PATIENT_TILE_WIDTH];
    size_t lens[PATIENT_TILE_WIDTH];

    if (u->have > PATIENT_TILE_WIDTH || u->w > u->have ||
        pt_bundle_split(u->body, u->len, u->have, lines, lens) != 0) {
        for (unsigned j = 0; j < u->w; j++) {
            b->line[u->first + j] = (const uint8_t *)"";
            b->len[u->first + j] = 0;
        }
        return 0;
    }
    for (unsigned j = 0; j < u->w; j++) {
        b->line[u->first + j] = (const uint8_t *)lines[j];
        b->len[u->first + j] = lens[j];
    }
    u->split_ok = 1;
    return 1;
}

/* Bundle k of b: its split, then its lines' work, its bytes still in this
 * core's caches. */
static void
bundle_work(lbatch *b, size_t k, unsigned what, pentry *e)
{
    if (bundle_split(b, k))
        slice_work(b, b->bun[k].first, b->bun[k].first + b->bun[k].w, what, e);
}

/* Lines are handed out in slices: few enough lock rounds, small enough
 * that a busy neighbour's core does not hold up the end of a batch. A
 * batch of bundles is handed out a bundle at a time (each one's split
 * and its lines' work in one pass, its bytes still in this core's
 * caches). */
#define SLICE 64
_Static_assert(SLICE % LS_SUB == 0, "a slice holds whole groups");

struct lpool {
    pthread_mutex_t mu;
    pthread_cond_t go, done, split;
    pthread_t *th;
    unsigned nth;
    int stop;
    /* the job */
    lbatch *job;
    unsigned what;
    int by_bundle; /* the job's units are its bundles, not slices */
    size_t next, active; /* next line to hand out; workers still busy */
    size_t nsplit;       /* sliced bundles: the next one to split */
    unsigned long gen;
};

/* What take hands out: a bundle (split and its lines' work), a bundle to
 * split only, or a slice of lines. */
enum { UNIT_BUNDLE, UNIT_SPLIT, UNIT_SLICE };

/* The next unit (lo..hi; a bundle: lo, hi = lo) and its kind. A batch of
 * fewer bundles than workers is split first, a bundle a worker, so that
 * the splits too run beside each other and not on the caller's thread;
 * then its lines go in slices, each once the bundles under it are split
 * (a worker waits here for that). Called and returns with p->mu held. */
static int
take(lpool *p, size_t *lo, size_t *hi, int *kind)
{
    lbatch *b = p->job;

    if (b == NULL)
        return 0;
    if (p->by_bundle) {
        if (p->next >= b->nbun)
            return 0;
        *lo = *hi = p->next++;
        *kind = UNIT_BUNDLE;
        return 1;
    }
    if (p->nsplit < b->nbun) {
        *lo = *hi = p->nsplit++;
        *kind = UNIT_SPLIT;
        return 1;
    }
    if (p->next >= b->n)
        return 0;
    *lo = p->next;
    *hi = *lo + SLICE < b->n ? *lo + SLICE : b->n;
    p->next = *hi;
    *kind = UNIT_SLICE;
    for (size_t k = 0; k < b->nbun; k++)
        if (b->bun[k].first < *hi && *lo < b->bun[k].first + b->bun[k].w)
            while (!b->bun[k].split_done)
                pthread_cond_wait(&p->split, &p->mu);
    return 1;
}

static void *
worker(void *arg)
{
    lpool *p = arg;
    pentry e;
    unsigned long seen = 0;
    size_t lo, hi;
    int kind;

    memset(&e, 0, sizeof e);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        while (take(p, &lo, &hi, &kind)) {
            lbatch *b = p->job;
            unsigned what = p->what;
            pthread_mutex_unlock(&p->mu);
            if (kind == UNIT_BUNDLE)
                bundle_work(b, lo, what, &e);
            else if (kind == UNIT_SPLIT)
                (void)bundle_split(b, lo);
            else
                slice_work(b, lo, hi, what, &e);
            pthread_mutex_lock(&p->mu);
            if (kind == UNIT_SPLIT) {
                b->bun[lo].split_done = 1;
                pthread_cond_broadcast(&p->split);
            }
        }
        if (--p->active == 0)
            pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    pentry_free(&e);
    return NULL;
}

patient_err
lpool_new(lpool **out)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    /* One worker per core, capped: the sequential part in the caller is
     * what limits beyond a few. On one core, no thread at all. */
    return lpool_new_n(out, ncpu > 1 ? (ncpu > 8 ? 8 : (unsigned)ncpu) : 0);
}

patient_err
lpool_new_n(lpool **out, unsigned nth)
{
    lpool *p;
    unsigned i;

    *out = NULL;
    if ((p = calloc(1, sizeof *p)) == NULL)
        return PATIENT_ERR_NOMEM;
    p->nth = nth;
    if (p->nth && (p->th = calloc(p->nth, sizeof *p->th)) == NULL) {
        free(p);
        return PATIENT_ERR_NOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    pthread_cond_init(&p->split, NULL);
    for (i = 0; i < p->nth; i++)
        if (pthread_create(&p->th[i], NULL, worker, p) != 0)
            break;
    /* Fewer threads than asked is still correct, only slower. */
    p->nth = i;
    *out = p;
    return PATIENT_OK;
}

void
lpool_wait(lpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    while (p->active > 0)
        pthread_cond_wait(&p->done, &p->mu);
    p->job = NULL;
    pthread_mutex_unlock(&p->mu);
}

void
lpool_start(lpool *p, lbatch *b, unsigned what)
{
    pentry e;

    if (p->nth == 0) {
        /* No workers: do it now, in the caller. */
        memset(&e, 0, sizeof e);
        if (b->nbun)
            for (size_t k = 0; k < b->nbun; k++)
                bundle_work(b, k, what, &e);
        else
            slice_work(b, 0, b->n, what, &e);
        pentry_free(&e);
        return;
    }
    /* A bundle a worker while there are bundles for each; fewer (a batch
     * of long lines, the last one, more cores than bundles) are split by
     * the workers first and their lines handed out in slices (take), so
     * that every worker has a share. */
    pthread_mutex_lock(&p->mu);
    p->job = b;
    p->by_bundle = b->nbun >= p->nth && b->nbun > 0;
    p->what = what;
    p->next = 0;
    p->nsplit = 0;
    for (size_t k = 0; k < b->nbun; k++)
        b->bun[k].split_done = 0;
    p->active = p->nth;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
}

void
lpool_free(lpool *p)
{
    unsigned i;

    if (p == NULL)
        return;
    lpool_wait(p);
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < p->nth; i++)
        pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->split);
    free(p->th);
    free(p);
}

/* ---- A file in batches, read one ahead --------------------------------- */

patient_err
ls_open(lscan *s, int fd, unsigned what)
{
    patient_err err;

    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->what = what;
    if ((err = lb_init(&s->bt[0], LS_BATCH)) || (err = lb_init(&s->bt[1], LS_BATCH)) ||
        (err = lpool_new(&s->pool)) || (err = lb_read(&s->bt[0], fd, 0)))
        return err;
    lpool_start(s->pool, &s->bt[0], what);
    s->more = 1;
    return PATIENT_OK;
}

patient_err
ls_next(lscan *s, lbatch **out)
{
    lbatch *b = &s->bt[s->cur], *nb = &s->bt[s->cur ^ 1];
    patient_err err;

    *out = NULL;
    if (!s->more)
        return PATIENT_OK;
    /* Read the next batch while the workers finish this one. */
    s->more = !b->eof && !b->too_long;
    if (s->more && (err = lb_read(nb, s->fd, b->next_off))) {
        lpool_wait(s->pool);
        s->more = 0;
        return err;
    }
    lpool_wait(s->pool);
    if (s->more)
        lpool_start(s->pool, nb, s->what);
    s->cur ^= 1;
    *out = b;
    return PATIENT_OK;
}

void
ls_close(lscan *s)
{
    lpool_free(s->pool); /* waits for the batch in flight before it goes */
    s->pool = NULL;
    lb_free(&s->bt[0]);
    lb_free(&s->bt[1]);
}
