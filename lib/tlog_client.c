/* Watching a published log over HTTP(S): the monitor (checkpoint note,
 * rollback and fork detection, every new entry checked, served tiles
 * compared with the recomputed tree, state kept atomically) and inclusion
 * of a bundle's descriptors. Format contract: docs/format/log.md
 * ("Monitoring a published log"). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <sodium.h>

#include "fetch_int.h"
#include "log_int.h"
#include "tlog_int.h"
#include "url_int.h"

#define STATE_MAX (1024u * 1024)
#define TILE_CACHE 24

const char *
patient_monitor_alarm_name(patient_monitor_alarm a)
{
    static const char *const names[] = {"ok",       "unreachable", "signature", "rollback",
                                        "fork",     "tile",        "entry",     "state"};
    return (unsigned)a < sizeof names / sizeof *names ? names[a] : "unknown";
}

/* ---- alarms ------------------------------------------------------------ */

static patient_err
raise_alarm(patient_monitor_report *r, patient_monitor_alarm a, patient_err err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static patient_err
raise_alarm(patient_monitor_report *r, patient_monitor_alarm a, patient_err err, const char *fmt, ...)
{
    va_list ap;

    if (r->result != PATIENT_OK) /* keep the first */
        return r->result;
    r->alarm = a;
    r->result = err;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    return err;
}

/* ---- fetching ------------------------------------------------------------ */

typedef struct {
    int level; /* -1: an empty slot */
    uint64_t index;
    unsigned w;
    pt_buf data;
} ctile;

typedef struct {
    char base[2048];
    patient_fetch_opts fo;
    pt_fetcher *f; /* one connection for every file of the log */
    patient_monitor_report *r;
    uint64_t tree_size; /* the tree tiles are read for */
    ctile cache[TILE_CACHE];
    unsigned next_slot;
    char *note; /* the checkpoint note text as served (verified) */
} client;

static patient_err
client_init(client *c, const char *url, const patient_fetch_opts *fo, patient_monitor_report *r)
{
    size_t n;
    patient_err err;

    memset(c, 0, sizeof c[0]);
    for (unsigned i = 0; i < TILE_CACHE; i++)
        c->cache[i].level = -1;
    c->r = r;
    if (pt_url_scheme_len(url, PT_URL_HTTP_S) == 0)
        return PATIENT_ERR_ARG;
    n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n + 1 > sizeof c->base - 128)
        return PATIENT_ERR_ARG;
    memcpy(c->base, url, n);
    c->base[n] = '\0';
    if (fo)
        err = PT_OPTS_TAKE(&c->fo, fo);
    else {
        patient_fetch_opts_init(&c->fo);
        err = PATIENT_OK;
    }
    c->fo.max_redirects = 0; /* the log's files live where its checkpoint is */
    return err ? err : pt_fetcher_new(&c->fo, &c->f);
}

static void
client_free(client *c)
{
    for (unsigned i = 0; i < TILE_CACHE; i++)
        pt_buf_free(&c->cache[i].data);
    pt_fetcher_free(c->f);
    free(c->note);
}

/* GET base/rel into *body (reused), at most max bytes: a 200 answer or an
 * UNREACHABLE alarm (what = what it is, for the message). */
static patient_err get_opt(client *c, const char *rel, size_t max, const char *what, pt_buf *body,
                           int missing_ok);

static patient_err
get(client *c, const char *rel, size_t max, const char *what, pt_buf *body)
{
    return get_opt(c, rel, max, what, body, 0);
}

/* base/rel, for a request and its messages. */
static void
client_url(const client *c, const char *rel, char url[2304])
{
    snprintf(url, 2304, "%s/%s", c->base, rel);
}

/* What a GET of url came to (err, status and detail as pt_fetcher_get
 * gives them; detail is freed here), as get_opt returns it: whether
 * fetched in turn or in flight with others, the same alarm. missing_ok:
 * a 404 is PATIENT_ERR_NOT_FOUND without an alarm (a partial tile a log
 * may have removed since its full tile exists). */
static patient_err
got(client *c, const char *url, const char *what, patient_err err, long status, char *detail,
    int missing_ok)
{
    if (err == PATIENT_ERR_TOO_LARGE) {
        free(detail);
        return raise_alarm(c->r, strcmp(what, "hash tile") == 0 ? PATIENT_MONITOR_TILE
                                                                : PATIENT_MONITOR_ENTRY,
                           PATIENT_ERR_HASH, "%s %s is larger than it can be", what, url);
    }
    if (err == PATIENT_ERR_NOMEM) {
        free(detail);
        return raise_alarm(c->r, PATIENT_MONITOR_STATE, err, "out of memory");
    }
    if (err != PATIENT_OK) {
        raise_alarm(c->r, PATIENT_MONITOR_UNREACHABLE, PATIENT_ERR_FETCH,
                    "log unreachable: %s %s: %s", what, url,
                    detail ? detail : patient_strerror(err));
        free(detail);
        return PATIENT_ERR_FETCH;
    }
    if (status == 404 && missing_ok)
        return PATIENT_ERR_NOT_FOUND;
    if (status != 200)
        return raise_alarm(c->r, PATIENT_MONITOR_UNREACHABLE, PATIENT_ERR_FETCH,
                           "log unreachable: %s %s: HTTP status %ld", what, url, status);
    return PATIENT_OK;
}

static patient_err
get_opt(client *c, const char *rel, size_t max, const char *what, pt_buf *body, int missing_ok)
{
    char url[2304], *detail = NULL;
    long status = 0;
    patient_err err;

    client_url(c, rel, url);
    err = pt_fetcher_get(c->f, url, max, body, &status, &detail);
    return got(c, url, what, err, status, detail, missing_ok);
}

/* Width of tile (level, index) in a tree of n leaves (0: none). */
static unsigned
tile_width(uint64_t n, unsigned level, uint64_t index)
{
    uint64_t count = level * 8 >= 64 ? 0 : n >> (8 * level);

    if (count <= index * PATIENT_TILE_WIDTH)
        return 0;
    count -= index * PATIENT_TILE_WIDTH;
    return count >= PATIENT_TILE_WIDTH ? PATIENT_TILE_WIDTH : (unsigned)count;
}

static ctile *
tile_cached(client *c, unsigned level, uint64_t index, unsigned width)
{
    for (unsigned i = 0; i < TILE_CACHE; i++)
        if (c->cache[i].level == (int)level && c->cache[i].index == index &&
            c->cache[i].w == width)
            return &c->cache[i];
    return NULL;
}

static ctile *
tile_slot(client *c)
{
    ctile *slot = &c->cache[c->next_slot++ % TILE_CACHE];

    slot->level = -1;
    return slot;
}

static patient_err
get_tile(client *c, unsigned level, uint64_t index, const uint8_t **data, unsigned *w)
{
    char rel[96];
    ctile *slot;
    unsigned width = tile_width(c->tree_size, level, index);
    patient_err err;

    if ((slot = tile_cached(c, level, index, width)) != NULL) {
        *data = slot->data.data;
        *w = width;
        return PATIENT_OK;
    }
    if (width == 0)
        return raise_alarm(c->r, PATIENT_MONITOR_TILE, PATIENT_ERR_HASH,
                     "no tile %u/%llu in a tree of %llu", level, (unsigned long long)index,
                     (unsigned long long)c->tree_size);
    slot = tile_slot(c);
    patient_tile_path((int)level, index, width, rel);
    err = get_opt(c, rel, PATIENT_TILE_BYTES, "hash tile", &slot->data, width < PATIENT_TILE_WIDTH);
    if (err == PATIENT_ERR_NOT_FOUND) {
        /* The log grew past this partial tile and removed it (C2SP allows
         * that once the full tile exists): the full tile starts with the
         * same hashes. */
        patient_tile_path((int)level, index, PATIENT_TILE_WIDTH, rel);
        if ((err = get(c, rel, PATIENT_TILE_BYTES, "hash tile", &slot->data)))
            return err;
        if (slot->data.len == PATIENT_TILE_BYTES)
            slot->data.len = (size_t)width * HASH_LEN;
    }
    if (err)
        return err;
    if (slot->data.len != (size_t)width * HASH_LEN)
        return raise_alarm(c->r, PATIENT_MONITOR_TILE, PATIENT_ERR_HASH,
                     "corrupted tile: %s/%s has %zu bytes, not %u", c->base, rel,
                     slot->data.len, width * HASH_LEN);
    slot->level = (int)level;
    slot->index = index;
    slot->w = width;
    *data = slot->data.data;
    *w = width;
    return PATIENT_OK;
}

/* pt_merkle_node_fn over the served tiles of c->tree_size. */
static patient_err
tile_node(unsigned level, uint64_t index, void *ctx, uint8_t out[HASH_LEN])
{
    client *c = ctx;
    unsigned L = level / 8, r = level % 8, w;
    uint64_t first = index << r;
    const uint8_t *data;
    patient_err err;

    if ((err = get_tile(c, L, first / PATIENT_TILE_WIDTH, &data, &w)))
        return err;
    if (first % PATIENT_TILE_WIDTH + (1u << r) > w)
        return raise_alarm(c->r, PATIENT_MONITOR_TILE, PATIENT_ERR_HASH,
                     "corrupted tile: level %u tile %llu is too short", L,
                     (unsigned long long)(first / PATIENT_TILE_WIDTH));
    return pt_merkle_root((const uint8_t(*)[HASH_LEN])(data + (first % PATIENT_TILE_WIDTH) * HASH_LEN),
                          1u << r, out);
}

/* Consistency of (m, root_m) with the signed (n, root_n), by an RFC 9162
 * proof built from the served tiles of tree n. */
static patient_err
tiles_consistent(client *c, uint64_t m, const uint8_t root_m[HASH_LEN], uint64_t n,
                 const uint8_t root_n[HASH_LEN])
{
    uint64_t lo[PT_MERKLE_MAX_DEPTH], hi[PT_MERKLE_MAX_DEPTH];
    uint8_t proof[PT_MERKLE_MAX_DEPTH][HASH_LEN];
    size_t count, i;
    patient_err err;

    c->tree_size = n;
    if ((err = pt_merkle_consistency_ranges(m, n, lo, hi, &count)))
        return err;
    for (i = 0; i < count; i++)
        if ((err = pt_merkle_range_hash(lo[i], hi[i], tile_node, c, proof[i])))
            return err;
    return pt_merkle_consistency_verify(m, n, root_m, root_n, (const uint8_t(*)[HASH_LEN])proof,
                                        count);
}

/* ---- state file ---------------------------------------------------------- */

typedef pt_mstate mstate;

static int
hex_field(const char *s, size_t n, uint8_t *out, size_t want)
{
    char buf[2 * HASH_LEN + 1];

    if (n != 2 * want || want > HASH_LEN)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return pt_unhex(buf, out, want) == PATIENT_OK ? 0 : -1;
}

/* Lines "key value": patient-monitor 1, origin, log_id, size, root,
 * last, frontier (hex hashes, one per set bit of size), and one
 * "tile L <hex>" per level with a partial tile. */
int
pt_mstate_parse(const uint8_t *data, size_t len, pt_mstate *st)
{
    size_t nf = 0;
    const char *p, *e, *nl, *sp;
    unsigned seen = 0;
    uint64_t size = 0;

    memset(st, 0, sizeof *st);
    pt_tiles_init(&st->t);
    if (len > STATE_MAX)
        goto bad;
    for (p = (const char *)data, e = p + len; p < e; p = nl + 1) {
        size_t kl, vl;
        const char *v;
        if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL ||
            (sp = memchr(p, ' ', (size_t)(nl - p))) == NULL)
            goto bad;
        kl = (size_t)(sp - p);
        v = sp + 1;
        vl = (size_t)(nl - v);
#define KEY(k) (kl == sizeof k - 1 && memcmp(p, k, kl) == 0)
        if (KEY("patient-monitor")) {
            if (vl != 1 || v[0] != '1' || seen)
                goto bad;
            seen |= 1;
        } else if (KEY("origin")) {
            if (vl == 0 || vl > PATIENT_ORIGIN_MAX)
                goto bad;
            memcpy(st->origin, v, vl);
            st->origin[vl] = '\0';
            seen |= 2;
        } else if (KEY("log_id")) {
            uint8_t tmp[HASH_LEN];
            if (hex_field(v, vl, tmp, HASH_LEN))
                goto bad;
            memcpy(st->log_id, v, HEX_LEN);
            seen |= 4;
        } else if (KEY("size")) {
            /* at most 19 digits, as docs/format/log.md says */
            if (pt_decimal_parse(v, vl, UINT64_C(9999999999999999999), &size))
                goto bad;
            seen |= 8;
        } else if (KEY("root")) {
            if (hex_field(v, vl, st->root, HASH_LEN))
                goto bad;
            seen |= 16;
        } else if (KEY("last")) {
            if (hex_field(v, vl, st->last, HASH_LEN))
                goto bad;
            seen |= 32;
        } else if (KEY("frontier")) {
            if (!(seen & 8) || vl % (HEX_LEN + 1) != HEX_LEN || (seen & 64))
                goto bad;
            for (nf = 0; nf * (HEX_LEN + 1) < vl + 1; nf++)
                if (nf >= PT_MERKLE_MAX_DEPTH ||
                    hex_field(v + nf * (HEX_LEN + 1), HEX_LEN, st->t.fr.node[nf], HASH_LEN))
                    goto bad;
            seen |= 64;
        } else if (KEY("tile")) {
            unsigned L;
            uint64_t w;
            if (!(seen & 8) || vl < 3 || v[0] < '0' || v[0] > '7' || v[1] != ' ')
                goto bad;
            L = (unsigned)(v[0] - '0');
            w = (size >> (8 * L)) % PATIENT_TILE_WIDTH;
            if (w == 0 || st->t.w[L] || (vl - 2) != w * 2 * HASH_LEN)
                goto bad;
            for (uint64_t k = 0; k < w; k++)
                if (hex_field(v + 2 + k * HEX_LEN, HEX_LEN, st->t.part[L][k], HASH_LEN))
                    goto bad;
            st->t.w[L] = (unsigned)w;
        } else {
            goto bad;
        }
#undef KEY
    }
    if (seen != 127 || nf != (size_t)__builtin_popcountll(size))
        goto bad;
    st->t.size = size;
    st->t.fr.size = size;
    for (unsigned L = 0; L < PT_TILE_LEVELS; L++) {
        uint64_t count = 8 * L >= 64 ? 0 : size >> (8 * L);
        st->t.full[L] = count / PATIENT_TILE_WIDTH;
        if (count % PATIENT_TILE_WIDTH != st->t.w[L])
            goto bad;
    }
    /* The frontier's nodes are the perfect subtrees inside the partial
     * tiles (set bits 8L..8L+7 of size: those of level L's w hashes): the
     * roots of the tiles the next leaves fill are taken from the frontier
     * (pt_tiles_add), so a state whose two disagree is damaged. */
    for (unsigned L = 0; L < PT_TILE_LEVELS; L++) {
        pt_merkle_frontier sub;
        unsigned at = (unsigned)__builtin_popcountll(L + 1 < PT_TILE_LEVELS ? size >> (8 * (L + 1))
                                                                           : 0);
        pt_merkle_frontier_init(&sub);
        for (unsigned k = 0; k < st->t.w[L]; k++)
            if (pt_merkle_frontier_add(&sub, st->t.part[L][k]))
                goto bad;
        if (memcmp(sub.node, st->t.fr.node[at],
                   (size_t)__builtin_popcount(st->t.w[L]) * HASH_LEN) != 0)
            goto bad;
    }
    {
        uint8_t root[HASH_LEN];
        if (pt_merkle_frontier_root(&st->t.fr, root) || sodium_memcmp(root, st->root, HASH_LEN))
            goto bad;
    }
    st->have = 1;
    return 0;
bad:
    memset(st, 0, sizeof *st);
    return -1;
}

static patient_err
state_load(const char *path, mstate *st, patient_monitor_report *r)
{
    uint8_t *data = NULL;
    size_t len = 0;
    patient_err err;
    int bad;

    memset(st, 0, sizeof *st);
    err = pt_read_file(path, STATE_MAX, &data, &len);
    if (err == PATIENT_ERR_NOT_FOUND)
        return PATIENT_OK; /* first run */
    if (err)
        return raise_alarm(r, PATIENT_MONITOR_STATE, err, "state file %s: %s", path,
                           patient_strerror(err));
    bad = pt_mstate_parse(data, len, st);
    free(data);
    if (bad)
        return raise_alarm(r, PATIENT_MONITOR_STATE, PATIENT_ERR_PARSE,
                           "state file %s is damaged (not a patient monitor state); not touched",
                           path);
    return PATIENT_OK;
}

static patient_err
state_save(const char *path, const mstate *st)
{
    pt_buf b = {0};
    char hex[HEX_LEN + 1];
    unsigned k = (unsigned)__builtin_popcountll(st->t.size);
    patient_err err;

    if ((err = pt_buf_appendf(&b, "patient-monitor 1\norigin %s\nlog_id %s\nsize %llu\n", st->origin,
                              st->log_id, (unsigned long long)st->t.size)))
        goto out;
    pt_hex(st->root, HASH_LEN, hex);
    if ((err = pt_buf_appendf(&b, "root %s\n", hex)))
        goto out;
    pt_hex(st->last, HASH_LEN, hex);
    if ((err = pt_buf_appendf(&b, "last %s\nfrontier", hex)))
        goto out;
    for (unsigned i = 0; i < k; i++) {
        pt_hex(st->t.fr.node[i], HASH_LEN, hex);
        if ((err = pt_buf_appendf(&b, " %s", hex)))
            goto out;
    }
    if ((err = pt_buf_append(&b, "\n", 1)))
        goto out;
    for (unsigned L = 0; L < PT_TILE_LEVELS; L++) {
        if (st->t.w[L] == 0)
            continue;
        if ((err = pt_buf_appendf(&b, "tile %u ", L)))
            goto out;
        for (unsigned i = 0; i < st->t.w[L]; i++) {
            pt_hex(st->t.part[L][i], HASH_LEN, hex);
            if ((err = pt_buf_append(&b, hex, HEX_LEN)))
                goto out;
        }
        if ((err = pt_buf_append(&b, "\n", 1)))
            goto out;
    }
    err = pt_write_atomic(path, b.data, b.len, 0600, 0);
out:
    pt_buf_free(&b);
    return err;
}

/* ---- the checkpoint -------------------------------------------------------- */

static patient_err
get_checkpoint(client *c, const char *origin, const patient_pubkey *pub, patient_checkpoint *ck)
{
    pt_buf body = {0};
    patient_err err;

    if ((err = get(c, "checkpoint", PATIENT_NOTE_MAX, "checkpoint", &body))) {
        pt_buf_free(&body);
        return err;
    }
    err = patient_checkpoint_open((const char *)body.data, body.len, origin, pub, ck);
    free(c->note);
    c->note = err == PATIENT_OK ? strndup((const char *)body.data, body.len) : NULL;
    pt_buf_free(&body);
    if (err == PATIENT_OK && c->note == NULL)
        return raise_alarm(c->r, PATIENT_MONITOR_STATE, PATIENT_ERR_NOMEM, "out of memory");
    if (err == PATIENT_ERR_SIGNATURE)
        return raise_alarm(c->r, PATIENT_MONITOR_SIGNATURE, err,
                     "bad signature: the checkpoint at %s/checkpoint does not verify under the "
                     "middlebox key",
                     c->base);
    if (err == PATIENT_ERR_KEY_MISMATCH)
        return raise_alarm(c->r, PATIENT_MONITOR_SIGNATURE, err,
                     "bad signature: the checkpoint at %s/checkpoint is not signed by the "
                     "middlebox key%s%s",
                     c->base, origin ? " for origin " : "", origin ? origin : "");
    if (err)
        return raise_alarm(c->r, PATIENT_MONITOR_SIGNATURE, err,
                     "the checkpoint at %s/checkpoint is not a signed checkpoint note", c->base);
    memcpy(c->r->origin, ck->origin, sizeof ck->origin);
    c->r->new_size = ck->size;
    memcpy(c->r->new_root, ck->root, HASH_LEN);
    return PATIENT_OK;
}

/* ---- entries --------------------------------------------------------------- */

int
pt_bundle_split(char *body, size_t len, unsigned w, char **lines, size_t *lens)
{
    char *p = body, *e = body + len, *nl;
    unsigned k = 0;

    for (; p < e && k < w; p = nl + 1) {
        if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
            break;
        *nl = '\0';
        lines[k] = p;
        lens[k++] = (size_t)(nl - p);
    }
    return k == w && p == e ? 0 : -1;
}

/* The most a bundle of w lines can be. */
static size_t
bundle_max(unsigned w)
{
    return (size_t)w * (PATIENT_LOG_LINE_MAX + 1);
}

/* Bundle b (w lines) as its GET of url came to (err, status, detail as
 * pt_fetcher_get gives them, into *body): the lines it must hold in
 * *have (w, or the full bundle's when it stood in for a partial one the
 * log removed) and the URL it came from in got_url, or the alarm. */
static patient_err
bundle_got(client *c, const char *url, uint64_t b, unsigned w, pt_buf *body, unsigned *have,
           char got_url[2304], patient_err err, long status, char *detail)
{
    char rel[96];

    *have = w;
    snprintf(got_url, 2304, "%s", url);
    err = got(c, url, "entry bundle", err, status, detail, w < PATIENT_TILE_WIDTH);
    if (err == PATIENT_ERR_NOT_FOUND) {
        /* Removed since the full bundle exists: its first w lines. */
        patient_tile_path(-1, b, PATIENT_TILE_WIDTH, rel);
        client_url(c, rel, got_url);
        err = get(c, rel, bundle_max(PATIENT_TILE_WIDTH), "entry bundle", body);
        *have = PATIENT_TILE_WIDTH;
    }
    return err;
}

/* The alarm for a bundle that is not the lines it must hold. */
static patient_err
bundle_corrupt(patient_monitor_report *r, const char *url, unsigned have)
{
    return raise_alarm(r, PATIENT_MONITOR_ENTRY, PATIENT_ERR_LOG_CORRUPT,
                       "corrupted entry bundle %s: not %u lines", url, have);
}

/* bundle_got, then its w lines added to bt (pointers into the body,
 * NUL-terminated in place), or the alarm. */
static patient_err
bundle_take(client *c, const char *url, uint64_t b, unsigned w, pt_buf *body, lbatch *bt,
            patient_err err, long status, char *detail)
{
    char full[2304], *lines[PATIENT_TILE_WIDTH];
    size_t lens[PATIENT_TILE_WIDTH];
    unsigned have;

    if ((err = bundle_got(c, url, b, w, body, &have, full, err, status, detail)))
        return err;
    if (pt_bundle_split((char *)body->data, body->len, have, lines, lens) != 0)
        return bundle_corrupt(c->r, full, have);
    for (unsigned j = 0; j < w; j++)
        if ((err = lb_add(bt, (const uint8_t *)lines[j], lens[j])))
            return raise_alarm(c->r, PATIENT_MONITOR_STATE, err, "out of memory");
    return PATIENT_OK;
}

/* The GET of bundle b of tree n into *body, as pt_fetcher_get gives it:
 * its w (*w_out), its URL into url. */
static patient_err
fetch_bundle(client *c, uint64_t b, uint64_t n, pt_buf *body, char url[2304], unsigned *w_out,
             long *status, char **detail)
{
    char rel[96];

    *w_out = tile_width(n, 0, b);
    patient_tile_path(-1, b, *w_out, rel);
    client_url(c, rel, url);
    return pt_fetcher_get(c->f, url, bundle_max(*w_out), body, status, detail);
}

/* Fetch bundle b of tree n into *body and add its w lines to bt
 * (bundle_take); *w_out = w. */
static patient_err
get_bundle(client *c, uint64_t b, uint64_t n, pt_buf *body, lbatch *bt, unsigned *w_out)
{
    char url[2304], *detail = NULL;
    long status = 0;
    patient_err err = fetch_bundle(c, b, n, body, url, w_out, &status, &detail);

    return bundle_take(c, url, b, *w_out, body, bt, err, status, detail);
}

/* A checkpoint line inside the log: what verify checks, against the tree
 * recomputed so far. */
static patient_err
check_log_checkpoint(const pentry *e, const pt_tiles *t, const char *log_id,
                     const patient_pubkey *pub)
{
    patient_jws *j = NULL;
    cJSON *p = NULL;
    uint8_t root[HASH_LEN], want[HASH_LEN];
    uint64_t ts;
    const char *s;
    patient_err err = PATIENT_ERR_LOG_CORRUPT;

    if (e->tree_size != e->seq ||
        pt_b64_decode_exact(e->root_b64, strlen(e->root_b64), 0, root, HASH_LEN) != PATIENT_OK)
        goto out;
    /* Running out of memory reading it says nothing about the log. */
    if ((err = pt_checkpoint_sig_read(e->sig, &j, &p)) != PATIENT_OK) {
        if (err != PATIENT_ERR_NOMEM)
            err = PATIENT_ERR_LOG_CORRUPT;
        goto out;
    }
    err = PATIENT_ERR_LOG_CORRUPT;
    if (get_u64(p, "tree_size", &ts) != 0 || ts != e->tree_size ||
        (s = pt_json_str(p, "root")) == NULL || strcmp(s, e->root_b64) != 0 ||
        (s = pt_json_str(p, "log_id")) == NULL || strcmp(s, log_id) != 0)
        goto out;
    if ((err = pt_merkle_frontier_root(&t->fr, want)))
        goto out;
    if (sodium_memcmp(want, root, HASH_LEN) != 0) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    err = patient_jws_verify(j, pub);
out:
    cJSON_Delete(p);
    patient_jws_free(j);
    return err;
}

/* Every tile the new leaves fill: the served one must be the same. */
static patient_err
compare_full(void *ctx, unsigned level, uint64_t index, const uint8_t *data)
{
    client *c = ctx;
    const uint8_t *served;
    unsigned w;
    patient_err err;

    if ((err = get_tile(c, level, index, &served, &w)))
        return err;
    if (w != PATIENT_TILE_WIDTH || memcmp(served, data, PATIENT_TILE_BYTES) != 0) {
        char rel[96];
        patient_tile_path((int)level, index, PATIENT_TILE_WIDTH, rel);
        return raise_alarm(c->r, PATIENT_MONITOR_TILE, PATIENT_ERR_HASH,
                     "corrupted tile: %s/%s differs from the hashes of the entries", c->base, rel);
    }
    return PATIENT_OK;
}

/* ---- reading ahead ----------------------------------------------------- */

/* A monitor catching up reads the bundles ahead on a thread of its own,
 * GROUP at a time with the level-0 tile each full bundle fills: while the
 * caller checks one group in order and the workers hash and scan the next,
 * the network brings the ones after. (Fetching in turn on the checking
 * thread was half of that thread's time, and the workers waited for it.) */
#define GROUP 4 /* bundles a batch: ~1.9 MB of 1.8 KB lines, like a file batch */
#define AHEAD 4 /* batches: one checked, one hashed, two on their way */
/* A bundle may be 256 longest lines (PATIENT_TLOG_BUNDLE_MAX, ~272 MiB) on
 * a hostile log, the very thing a monitor watches, and AHEAD batches are
 * held at once: a batch closes early once its bodies pass GROUP_BYTES, so
 * it holds less than GROUP_BYTES + one bundle, and the reading ahead less
 * than AHEAD x (GROUP_BYTES + PATIENT_TLOG_BUNDLE_MAX), ~1.1 GiB, where
 * AHEAD x GROUP whole bundles were ~4.3 GiB. Ordinary batches (~1.9 MB)
 * never reach it. */
#define GROUP_BYTES ((size_t)4 << 20)
/* A body grown past this is freed when its batch is released, or when
 * its request is abandoned (reader_cancel): one huge bundle must not keep
 * its memory for the rest of the run. Every other buffer keeps the
 * capacity it last held, at most this: AHEAD x GROUP body buffers and
 * INFLIGHT request buffers, 19 x 8 MiB, add at most 152 MiB of capacity
 * to the bounds on the bodies' bytes here and below. */
#define KEEP_BYTES ((size_t)8 << 20)
/* Requests in flight at once, each on a connection of its own, in log
 * order (bundle b, its level-0 tile, bundle b + 1, ...): bundle b + 1 is
 * on its way while bundle b is received, so the reader does not sleep a
 * round trip (and then wait for a core on waking) for each of its ~7,800
 * requests. Three, two of them bundles (docs/BENCHMARKS.md, the sixth
 * round): with nginx on a core of its own, a catch-up took 3.2 s against
 * 4.6-5.0 s in turn, and four in flight 3.6-3.7 s; sharing one core with
 * nginx, 3.15 s against 2.8 s in turn (four: 3.3 s).
 * Every bundle in flight behind the first is capped at GROUP_BYTES (one
 * larger is fetched again in turn, at its full cap, once it is next):
 * what is in flight adds less than PATIENT_TLOG_BUNDLE_MAX + GROUP_BYTES
 * to the bound above. */
#define INFLIGHT 3
#define INFLIGHT_BUNDLES 2
/* The socket receive buffer of each of those connections. Each carries
 * one response at a time, and nothing reads them while the reader sleeps
 * on a full read-ahead. With the kernel's autotuned buffers the window
 * the monitor offers then held back a response's tail, and a BBR sender
 * (nginx on a host whose congestion control is BBR) took that for its
 * path's rate: it left its start-up and paced every segment with a timer
 * of its own, in about half the catch-ups (nginx's CPU serving one
 * 0.7-1.2 s instead of 0.3-0.4 s). A buffer that holds the whole
 * response from the first segment on keeps it out of that: here the
 * largest bundle an ordinary batch takes whole (GROUP_BYTES / GROUP,
 * 1 MiB: 256 lines of 4 KiB). A quarter of that still did, an eighth did
 * not (docs/BENCHMARKS.md). */
#define WINDOW (GROUP_BYTES / GROUP)

typedef struct {
    uint64_t first; /* its first bundle */
    unsigned nb;    /* bundles fetched whole */
    pt_buf body[GROUP];
    lbundle bun[GROUP];      /* their lines, for the workers to split */
    char burl[GROUP][2304];  /* where each came from, for its alarm */
    lbatch bt; /* their lines */
    pt_buf tile[GROUP];
    int tile_ok[GROUP];         /* the full bundle's level-0 tile came too */
    patient_monitor_report rep; /* the alarm that ended the reading, if any */
    int filled;
} rslot;

/* A request in flight: bundle b, or its level-0 tile. */
typedef struct {
    uint64_t b;
    int tile;
    unsigned id;   /* the fetch queue's */
    size_t cap;    /* the body cap it was sent with */
    char rel[96];  /* its path under the log's URL */
    unsigned sleeps; /* reader.sleeps when it was sent */
    pt_buf buf;    /* swapped into the batch once taken */
} rreq;

typedef struct {
    client c; /* its own connection; alarms go to the slot's rep */
    pt_fetchq *q;
    pthread_t th;
    int inited, started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rslot slot[AHEAD];
    uint64_t next_b, end_b;
    rreq rq[INFLIGHT]; /* in flight: rq[(head + i) % INFLIGHT], i < nrq */
    unsigned head, nrq, nbundles;
    uint64_t issue_b; /* what to send next: bundle issue_b, or its tile */
    int issue_tile;
    unsigned sleeps; /* times it slept on a full read-ahead (its own) */
} reader;

/* Once the caller stopped (an alarm, the end), nothing more is fetched:
 * its join waits for the one fetch in flight, not for a batch of them
 * (each up to the fetch timeout). */
static int
reader_stopped(reader *rd)
{
    int stop;

    pthread_mutex_lock(&rd->mu);
    stop = rd->stop;
    pthread_mutex_unlock(&rd->mu);
    return stop;
}

/* Every request in flight abandoned; the next one sent is bundle from_b,
 * or its tile (from_tile). An abandoned body grown past KEEP_BYTES (up to
 * a whole bundle's cap) is freed, as a batch's is on release. */
static void
reader_cancel(reader *rd, uint64_t from_b, int from_tile)
{
    for (; rd->nrq > 0; rd->nrq--, rd->head = (rd->head + 1) % INFLIGHT) {
        pt_fetchq_cancel(rd->q, rd->rq[rd->head].id);
        if (rd->rq[rd->head].buf.cap > KEEP_BYTES)
            pt_buf_free(&rd->rq[rd->head].buf);
    }
    rd->nbundles = 0;
    rd->issue_b = from_b;
    rd->issue_tile = from_tile;
}

/* Send what comes next in log order while there is room. A request that
 * cannot be sent is left to be fetched in turn (reader_take_req), where
 * its failure is reported in order. */
static void
reader_issue(reader *rd)
{
    while (rd->nrq < INFLIGHT && rd->issue_b < rd->end_b) {
        rreq *q = &rd->rq[(rd->head + rd->nrq) % INFLIGHT];
        unsigned w = tile_width(rd->c.tree_size, 0, rd->issue_b);
        char url[2304], *detail = NULL;
        if (!rd->issue_tile && rd->nbundles >= INFLIGHT_BUNDLES)
            return;
        q->b = rd->issue_b;
        q->tile = rd->issue_tile;
        if (q->tile) {
            patient_tile_path(0, q->b, PATIENT_TILE_WIDTH, q->rel);
            q->cap = PATIENT_TILE_BYTES;
        } else {
            patient_tile_path(-1, q->b, w, q->rel);
            q->cap = bundle_max(w);
            if (rd->nbundles > 0 && q->cap > GROUP_BYTES)
                q->cap = GROUP_BYTES;
        }
        client_url(&rd->c, q->rel, url);
        q->sleeps = rd->sleeps;
        if (pt_fetchq_start(rd->q, url, q->cap, &q->buf, &q->id, &detail) != PATIENT_OK) {
            free(detail);
            return;
        }
        rd->nrq++;
        rd->nbundles += !q->tile;
        /* The tile of a full bundle follows it; a partial one has none. */
        if (!q->tile && w == PATIENT_TILE_WIDTH)
            rd->issue_tile = 1;
        else {
            rd->issue_tile = 0;
            rd->issue_b++;
        }
    }
}

/* The response to the request next in log order, if it is the one asked
 * for (bundle b, or its tile): 1 with its result, the request's buffer
 * swapped with *buf, and its URL into url unless NULL; 0 if it is not in
 * flight (sent too late, or not at all) or failed after the reader slept
 * with it on its way, and the caller fetches it in turn. */
static int
reader_take_req(reader *rd, uint64_t b, int tile, pt_buf *buf, char *url, size_t *cap,
                patient_err *err, long *status, char **detail)
{
    rreq *q = &rd->rq[rd->head];
    pt_buf tmp;

    reader_issue(rd);
    if (rd->nrq > 0 && q->b == b && q->tile == tile) {
        *err = pt_fetchq_wait(rd->q, q->id, status, detail);
        /* A transfer is driven only while the reader waits for a
         * response, and libcurl counts a sleep on a full read-ahead (a
         * stalled checking thread) against CURLOPT_TIMEOUT_MS: what failed
         * after one is fetched again in turn, so that only what fetching
         * in turn reports is reported. What failed while driven all along
         * is the log's answer: a host that does not answer costs one
         * timeout, not two. */
        if (*err != PATIENT_ERR_FETCH || q->sleeps == rd->sleeps) {
            *cap = q->cap;
            if (url)
                client_url(&rd->c, q->rel, url); /* before the request's place is reused */
            tmp = *buf;
            *buf = q->buf;
            q->buf = tmp;
            rd->head = (rd->head + 1) % INFLIGHT;
            rd->nrq--;
            rd->nbundles -= !tile;
            reader_issue(rd);
            return 1;
        }
        if (detail) {
            free(*detail);
            *detail = NULL;
        }
    }
    /* Fetched in turn by the caller: sending resumes after it. */
    reader_cancel(rd, tile ? b + 1 : b,
                  !tile && tile_width(rd->c.tree_size, 0, b) == PATIENT_TILE_WIDTH);
    return 0;
}

static void
reader_fill(reader *rd, rslot *sl)
{
    char rel[96], url[2304], *detail = NULL;
    long status = 0;
    size_t bytes = 0, cap = 0;
    patient_err err = PATIENT_OK;

    memset(&sl->rep, 0, sizeof sl->rep);
    rd->c.r = &sl->rep;
    sl->first = rd->next_b;
    sl->nb = 0;
    sl->bt.n = 0;
    while (sl->nb < GROUP && bytes < GROUP_BYTES && rd->next_b < rd->end_b &&
           !reader_stopped(rd)) {
        uint64_t b = rd->next_b;
        unsigned w = tile_width(rd->c.tree_size, 0, b), k = sl->nb;
        if (!reader_take_req(rd, b, 0, &sl->body[k], url, &cap, &err, &status, &detail) ||
            (err == PATIENT_ERR_TOO_LARGE && cap < bundle_max(w))) {
            /* Not sent ahead (or failed after a sleep), or larger than a
             * bundle in flight behind another may be: in turn, at its
             * full cap. */
            free(detail);
            detail = NULL;
            err = fetch_bundle(&rd->c, b, rd->c.tree_size, &sl->body[k], url, &w, &status,
                               &detail);
        }
        /* Its lines are split by the workers (lb_set_bundles), which go
         * over its bytes anyway: not here, on the busiest thread. */
        if (bundle_got(&rd->c, url, b, w, &sl->body[k], &sl->bun[k].have, sl->burl[k], err,
                       status, detail))
            return; /* sl->rep says why, after the bundles before it */
        detail = NULL;
        sl->bun[k].body = (char *)sl->body[k].data;
        sl->bun[k].len = sl->body[k].len;
        sl->bun[k].w = w;
        bytes += sl->body[k].len;
        sl->tile_ok[k] = 0;
        if (w == PATIENT_TILE_WIDTH && !reader_stopped(rd)) {
            /* Quietly: a tile that does not come is fetched again, with
             * its alarm, when the checking thread needs it. */
            if (!reader_take_req(rd, b, 1, &sl->tile[k], NULL, &cap, &err, &status, NULL)) {
                patient_tile_path(0, b, PATIENT_TILE_WIDTH, rel);
                client_url(&rd->c, rel, url);
                err = pt_fetcher_get(rd->c.f, url, PATIENT_TILE_BYTES, &sl->tile[k], &status,
                                     NULL);
            }
            sl->tile_ok[k] = err == PATIENT_OK && status == 200 &&
                             sl->tile[k].len == PATIENT_TILE_BYTES;
        }
        sl->nb++;
        rd->next_b++;
    }
}

/* The reader sleeps on the network and on a full read-ahead, and each
 * wake-up used to wait for a hashing worker's time slice to end: in the
 * fifth round's quiet run it was runnable without a CPU 1.1 s of a 2.5 s
 * catch-up, the largest share of its wall. A short slice (Linux's EEVDF
 * scheduler's custom slices, 6.12 and later; 6.6-6.11 accept sched_runtime
 * and ignore it, as earlier kernels do) gives its wake-ups
 * an earlier deadline, so they preempt a worker at once; its share of the
 * CPU is its nice value's, unchanged (kept as it is), so the monitor takes
 * no more of a busy machine than before. Only this thread, which the
 * library created, and only under the default policy; best effort. */
static void
reader_short_slice(void)
{
#if defined(__linux__) && defined(SYS_sched_setattr)
    struct {
        uint32_t size, policy;
        uint64_t flags;
        int32_t nice;
        uint32_t priority;
        uint64_t runtime, deadline, period;
    } a;
    int nice;

    if (sched_getscheduler(0) != SCHED_OTHER)
        return;
    errno = 0;
    nice = getpriority(PRIO_PROCESS, 0); /* this thread's, on Linux */
    if (nice == -1 && errno != 0)
        return;
    memset(&a, 0, sizeof a);
    a.size = sizeof a; /* the first version of struct sched_attr */
    a.policy = SCHED_OTHER;
    a.nice = nice;
    a.runtime = 100 * 1000; /* ns: the shortest slice the kernel takes */
    (void)syscall(SYS_sched_setattr, 0, &a, 0);
#endif
}

static void *
reader_main(void *arg)
{
    reader *rd = arg;

#ifdef __linux__
    /* Named, so that per-thread figures (/proc/PID/task, perf) tell it
     * from the workers. */
    (void)pthread_setname_np(pthread_self(), "patient-reader");
#endif
    reader_short_slice();
    for (unsigned k = 0; rd->next_b < rd->end_b; k++) {
        rslot *sl = &rd->slot[k % AHEAD];
        int stop;
        pthread_mutex_lock(&rd->mu);
        rd->sleeps += !rd->stop && sl->filled; /* (what is in flight is not driven) */
        while (!rd->stop && sl->filled)
            pthread_cond_wait(&rd->cv, &rd->mu);
        stop = rd->stop;
        pthread_mutex_unlock(&rd->mu);
        if (stop)
            break;
        reader_fill(rd, sl);
        pthread_mutex_lock(&rd->mu);
        sl->filled = 1;
        pthread_cond_broadcast(&rd->cv);
        pthread_mutex_unlock(&rd->mu);
        if (sl->rep.result != PATIENT_OK)
            break;
    }
    /* Nothing left on its way once the reading ends (the fetch queue is
     * this thread's). */
    reader_cancel(rd, rd->next_b, 0);
    return NULL;
}

static patient_err
reader_start(reader *rd, const char *url, const patient_fetch_opts *fo, uint64_t tree_size,
             uint64_t b, uint64_t end_b)
{
    patient_err err;

    memset(rd, 0, sizeof *rd);
    pthread_mutex_init(&rd->mu, NULL);
    pthread_cond_init(&rd->cv, NULL);
    rd->inited = 1;
    for (unsigned k = 0; k < AHEAD; k++)
        if ((err = lb_init(&rd->slot[k].bt, 0)))
            return err;
    if ((err = client_init(&rd->c, url, fo, NULL)) ||
        (err = pt_fetchq_new(&rd->c.fo, INFLIGHT, WINDOW, &rd->q)))
        return err;
    rd->c.tree_size = tree_size;
    rd->next_b = rd->issue_b = b;
    rd->end_b = end_b;
    if (pthread_create(&rd->th, NULL, reader_main, rd) != 0)
        return PATIENT_ERR_NOMEM;
    rd->started = 1;
    return PATIENT_OK;
}

/* Batch k, once the reader has filled it. */
static rslot *
reader_take(reader *rd, uint64_t k)
{
    rslot *sl = &rd->slot[k % AHEAD];

    pthread_mutex_lock(&rd->mu);
    while (!sl->filled)
        pthread_cond_wait(&rd->cv, &rd->mu);
    pthread_mutex_unlock(&rd->mu);
    return sl;
}

static void
reader_release(reader *rd, rslot *sl)
{
    for (unsigned i = 0; i < GROUP; i++)
        if (sl->body[i].cap > KEEP_BYTES)
            pt_buf_free(&sl->body[i]);
    pthread_mutex_lock(&rd->mu);
    sl->filled = 0;
    pthread_cond_broadcast(&rd->cv);
    pthread_mutex_unlock(&rd->mu);
}

/* The tiles the reader brought, into the checking thread's cache. */
static void
reader_tiles(client *c, rslot *sl)
{
    for (unsigned k = 0; k < sl->nb; k++) {
        ctile *t;
        pt_buf tmp;
        if (!sl->tile_ok[k])
            continue;
        t = tile_slot(c);
        tmp = t->data;
        t->data = sl->tile[k];
        sl->tile[k] = tmp;
        t->level = 0;
        t->index = sl->first + k;
        t->w = PATIENT_TILE_WIDTH;
        sl->tile_ok[k] = 0;
    }
}

/* Only once the workers are done with the batches. */
static void
reader_free(reader *rd)
{
    if (!rd->inited)
        return;
    if (rd->started) {
        pthread_mutex_lock(&rd->mu);
        rd->stop = 1;
        pthread_cond_broadcast(&rd->cv);
        pthread_mutex_unlock(&rd->mu);
        pthread_join(rd->th, NULL);
    }
    for (unsigned k = 0; k < AHEAD; k++) {
        for (unsigned i = 0; i < GROUP; i++) {
            pt_buf_free(&rd->slot[k].body[i]);
            pt_buf_free(&rd->slot[k].tile[i]);
        }
        lb_free(&rd->slot[k].bt);
    }
    for (unsigned i = 0; i < INFLIGHT; i++)
        pt_buf_free(&rd->rq[i].buf);
    pt_fetchq_free(rd->q);
    client_free(&rd->c);
    pthread_mutex_destroy(&rd->mu);
    pthread_cond_destroy(&rd->cv);
}

/* One run of the monitor, shared by its phases. */
typedef struct {
    const patient_monitor_opts *o;
    patient_monitor_report *r;
    const char *url, *state_path;
    client c;
    mstate *st;
    patient_checkpoint ck;
    reader *rd;
    lpool *pool;
    pt_buf recs; /* the new changes' index records (pt_index_rec_add) */
    /* the index being written (index_begin): begun 0 none yet, 1 open,
     * -1 it could not be (ixerr, reported where the whole index was
     * written before: after the tree is checked) */
    pt_ixw ixw;
    int begun;
    patient_err ixerr;
    char ipath[PATH_MAX];
    uint64_t old;
    pentry e;
    patient_log_entry ent;
} mrun;

/* The state kept so far, and the log's signed checkpoint. */
static patient_err
run_fetch_checkpoint(mrun *m)
{
    const patient_monitor_opts *o = m->o;
    mstate *st = m->st;
    patient_err err;

    if ((err = state_load(m->state_path, st, m->r)))
        return err;
    m->old = st->have ? st->t.size : 0;
    m->r->old_size = m->old;
    if (o->origin && st->have && strcmp(o->origin, st->origin) != 0)
        return raise_alarm(m->r, PATIENT_MONITOR_STATE, PATIENT_ERR_ARG,
                           "state file %s watches origin %s, not %s", m->state_path, st->origin,
                           o->origin);
    return get_checkpoint(&m->c,
                          o->origin  ? o->origin
                          : st->have ? st->origin
                                     : NULL,
                          o->pub, &m->ck);
}

/* The signed tree against the one seen before: a rollback, a fork, or
 * nothing new (*nothing_new; the run ends there). */
static patient_err
run_against_state(mrun *m, int *nothing_new)
{
    patient_monitor_report *r = m->r;
    mstate *st = m->st;
    uint64_t old = m->old;

    if (st->have && m->ck.size < old)
        return raise_alarm(r, PATIENT_MONITOR_ROLLBACK, PATIENT_ERR_ROLLBACK,
                           "ROLLBACK: the log now signs a tree of %llu entries; %llu were seen "
                           "before",
                           (unsigned long long)m->ck.size, (unsigned long long)old);
    if (st->have && m->ck.size == old) {
        *nothing_new = 1;
        if (sodium_memcmp(m->ck.root, st->root, HASH_LEN) != 0)
            return raise_alarm(r, PATIENT_MONITOR_FORK, PATIENT_ERR_HASH,
                               "FORK: the log signs another root for the %llu entries seen before",
                               (unsigned long long)old);
        snprintf(r->message, sizeof r->message, "no new entries (tree of %llu)",
                 (unsigned long long)old);
        return PATIENT_OK;
    }
    if (!st->have)
        memcpy(st->origin, m->ck.origin, sizeof st->origin);
    return PATIENT_OK;
}

/* How catch_up_entry adds a new entry to the tree: on its own; not yet
 * (a line of a group before its last); or with the group of LS_SUB lines
 * it ends, so that a tile alarm leaves entries where adding leaf by leaf
 * does (that line not counted). */
enum { ADD_LEAF, ADD_LATER, ADD_GROUP };

/* Line j of batch sl, in log order: seen before, or a new entry checked
 * and added to the tree as add says. */
static patient_err
catch_up_entry(mrun *m, const rslot *sl, size_t j, int add)
{
    const patient_monitor_opts *o = m->o;
    patient_monitor_report *r = m->r;
    mstate *st = m->st;
    const lbatch *bat = &sl->bt;
    const lineinfo *li = &bat->info[j];
    uint64_t i = sl->first * PATIENT_TILE_WIDTH + j, old = m->old;
    pentry *e = &m->e;
    int fast;
    patient_err err;

    if (li->hash_err)
        return raise_alarm(r, PATIENT_MONITOR_STATE, PATIENT_ERR_CRYPTO, "SHA-256 failed");
    if (i < old) {
        /* Seen before: the same line must still be there. */
        if (sodium_memcmp(li->leaf, st->t.part[0][i % PATIENT_TILE_WIDTH], HASH_LEN) != 0) {
            err = raise_alarm(r, PATIENT_MONITOR_FORK, PATIENT_ERR_HASH,
                              "FORK: entry %llu differs from the one seen before (tree of "
                              "%llu)",
                              (unsigned long long)i, (unsigned long long)old);
            r->seq = i;
            r->has_seq = 1;
            return err;
        }
        return PATIENT_OK;
    }
    r->seq = i;
    r->has_seq = 1;
    fast = li->parsed && !o->deep && !o->on_entry;
    if (fast) {
        /* A change or event the workers scanned (its time read):
         * all the checks below read of it (deep and the callback
         * read it whole). */
        e->seq = li->seq;
        e->kind = li->kind;
        e->prev = li->prev;
    } else if (pentry_parse(bat->line[j], bat->len[j], e) != PATIENT_OK) {
        return raise_alarm(r, PATIENT_MONITOR_ENTRY, PATIENT_ERR_LOG_CORRUPT,
                           "entry %llu is not a log entry (%s)", (unsigned long long)i,
                           e->why ? e->why : "malformed");
    }
    /* Every mode reads the time as the log reader does, so a line
     * that reader refuses for its time is an alarm with or without
     * a callback (which gets the entry that reader gives). */
    if (!fast && (o->on_entry ? pt_log_entry_fill(e, bat->line[j], bat->len[j], i + 1, &m->ent)
                              : pt_log_time_parse(e->time, &m->ent.time)) != PATIENT_OK)
        return raise_alarm(r, PATIENT_MONITOR_ENTRY, PATIENT_ERR_LOG_CORRUPT,
                           "entry %llu is not a log entry (its time does not read as one)",
                           (unsigned long long)i);
    /* (the line before's hash is compared as hex without being
     * written out: once per entry) */
    if (e->seq != i ||
        !(i == 0 ? strcmp(e->prev, zero_prev) == 0 : pt_hex_eq(e->prev, st->last, HASH_LEN)))
        return raise_alarm(r, PATIENT_MONITOR_ENTRY, PATIENT_ERR_CHAIN,
                           e->seq != i ? "entry %llu carries seq %llu"
                                       : "entry %llu does not chain to the one before it (prev)",
                           (unsigned long long)i, (unsigned long long)e->seq);
    if (i == 0)
        pt_hex(li->chain, HASH_LEN, st->log_id);
    if (e->kind == PATIENT_LOG_KIND_CHECKPOINT &&
        (err = check_log_checkpoint(e, &st->t, st->log_id, o->pub)) != PATIENT_OK) {
        if (err == PATIENT_ERR_NOMEM)
            return raise_alarm(r, PATIENT_MONITOR_STATE, err, "out of memory");
        return raise_alarm(r, PATIENT_MONITOR_ENTRY, err,
                           "entry %llu: the log's own checkpoint %s", (unsigned long long)i,
                           err == PATIENT_ERR_HASH          ? "signs another root than its entries'"
                           : err == PATIENT_ERR_LOG_CORRUPT ? "is malformed"
                                                            : "has a bad signature");
    }
    if (e->kind == PATIENT_LOG_KIND_CHANGE) {
        uint8_t key[PT_INDEX_KEY];
        r->changes++;
        if (!fast)
            pt_index_key(e->jws, strlen(e->jws), key);
        if ((err = pt_index_rec_add(&m->recs, fast ? li->key : key, i)))
            return raise_alarm(r, PATIENT_MONITOR_STATE, err, "out of memory");
        if (o->deep) {
            patient_jws *jw = NULL;
            err = patient_jws_parse(e->jws, strlen(e->jws), &jw);
            if (err == PATIENT_OK)
                err = patient_jws_verify(jw, o->pub);
            patient_jws_free(jw);
            if (err)
                return raise_alarm(r, PATIENT_MONITOR_ENTRY, err,
                                   "entry %llu: the change descriptor's signature does not "
                                   "verify under the middlebox key [%s]",
                                   (unsigned long long)i, patient_errname(err));
        }
    }
    memcpy(st->last, li->chain, HASH_LEN);
    if (add == ADD_LEAF && (err = pt_tiles_add(&st->t, li->leaf, compare_full, &m->c)))
        return err;
    if (add == ADD_GROUP) {
        const lineinfo *g = li - (LS_SUB - 1);
        if ((err = pt_tiles_add_sub(&st->t, g->leaf, sizeof *g, LS_SUB_HEIGHT, g->sub,
                                    compare_full, &m->c)))
            return err;
    }
    r->entries++;
    if (o->on_entry && o->on_entry(&m->ent, o->ctx) != 0)
        return raise_alarm(r, PATIENT_MONITOR_OK, PATIENT_ERR_INTERRUPTED, "stopped");
    return PATIENT_OK;
}

/* The index a run writes as it goes (pt_index_begin), once the log's id
 * is known (from the state, or entry 0). */
static void
index_begin(mrun *m)
{
    if (m->begun)
        return;
    if (snprintf(m->ipath, sizeof m->ipath, "%s.index", m->state_path) >= (int)sizeof m->ipath)
        m->ixerr = PATIENT_ERR_ARG;
    else
        m->ixerr = pt_index_begin(&m->ixw, m->ipath, m->st->log_id, m->old);
    m->begun = m->ixerr == PATIENT_OK ? 1 : -1;
}

/* Index records written once this many are held: ~43,000 changes. */
#define INDEX_FLUSH ((size_t)1 << 20)

/* Every line of batch sl in log order. A group of LS_SUB new lines whose
 * subtree root the workers made (all of them changes or events scanned)
 * is checked line by line, then added to the tree at once: its tile
 * boundaries are group boundaries, so a served tile is compared after
 * the same line as when adding leaf by leaf, and a checkpoint, which
 * needs the tree at its own position, is never in such a group. */
static patient_err
catch_up_batch(mrun *m, const rslot *sl, unsigned what, size_t *bad)
{
    const lbatch *bat = &sl->bt;
    uint64_t base = sl->first * PATIENT_TILE_WIDTH;
    size_t q = 0;
    patient_err err;

    *bad = SIZE_MAX;
    for (size_t j = 0; j < bat->n;) {
        const lineinfo *li = &bat->info[j];
        /* A bundle that is not its lines ends the batch there; the caller
         * reports it (bundles start at multiples of 256, groups never
         * cross one) */
        if (q < bat->nbun && j == bat->bun[q].first && !bat->bun[q++].split_ok) {
            *bad = q - 1;
            break;
        }
        if ((what & LS_SUBTREE) && j % LS_SUB == 0 && j + LS_SUB <= bat->n && li->sub_ok &&
            base + j >= m->old) {
            for (size_t g = j; g < j + LS_SUB; g++)
                if ((err = catch_up_entry(m, sl, g, g + 1 < j + LS_SUB ? ADD_LATER : ADD_GROUP)))
                    return err;
            j += LS_SUB;
            continue;
        }
        if ((err = catch_up_entry(m, sl, j, ADD_LEAF)))
            return err;
        j++;
    }
    if (m->recs.len >= INDEX_FLUSH) {
        index_begin(m);
        /* (a write that failed is the commit's error) */
        if (m->begun > 0)
            (void)pt_index_flush(&m->ixw, &m->recs);
    }
    return PATIENT_OK;
}

/* Batch sl to the workers: its bundles split, hashed and scanned. */
static patient_err
batch_start(mrun *m, rslot *sl, unsigned what)
{
    patient_err err;

    if ((err = lb_set_bundles(&sl->bt, sl->bun, sl->nb)))
        return raise_alarm(m->r, PATIENT_MONITOR_STATE, err, "out of memory");
    lpool_start(m->pool, &sl->bt, what);
    return PATIENT_OK;
}

/* Every bundle from the old size to the new one, read ahead, hashed and
 * scanned by the workers, checked here in log order. */
static patient_err
run_catch_up(mrun *m)
{
    patient_monitor_report *r = m->r;
    rslot *sl = NULL, *nx = NULL;
    uint64_t b = m->old / PATIENT_TILE_WIDTH, k,
             end_b = (m->ck.size + PATIENT_TILE_WIDTH - 1) / PATIENT_TILE_WIDTH;
    /* The workers scan each line only for the fast path (catch_up_entry):
     * --deep and a callback parse it whole in order, and would parse it
     * twice. */
    unsigned what = LS_CHAIN | ((m->o->deep || m->o->on_entry) ? 0 : LS_SCAN | LS_SUBTREE);
    size_t bad;
    patient_err err;

    m->c.tree_size = m->ck.size;
    if ((err = reader_start(m->rd, m->url, &m->c.fo, m->ck.size, b, end_b)))
        return raise_alarm(r, PATIENT_MONITOR_STATE, err, "cannot start reading: %s",
                           patient_strerror(err));
    if (b < end_b) {
        nx = reader_take(m->rd, 0);
        if ((err = batch_start(m, nx, what)))
            return err;
    }
    /* Batches hold GROUP bundles or fewer (GROUP_BYTES): the last one is
     * the one that reaches end_b. */
    for (k = 0; nx != NULL; k++) {
        sl = nx;
        nx = NULL;
        lpool_wait(m->pool);
        /* The next batch to the workers meanwhile. What ended the reading
         * is reported after the entries before it are checked, as if
         * fetched in turn. */
        if (sl->rep.result == PATIENT_OK && sl->first + sl->nb < end_b) {
            nx = reader_take(m->rd, k + 1);
            if ((err = batch_start(m, nx, what)))
                return err;
        }
        reader_tiles(&m->c, sl);
        if ((err = catch_up_batch(m, sl, what, &bad)))
            return err;
        if (m->o->on_progress)
            m->o->on_progress(r->entries, m->ck.size - m->old, m->o->ctx);
        /* where the reader would have stopped, splitting it */
        if (bad != SIZE_MAX)
            return bundle_corrupt(r, sl->burl[bad], sl->bun[bad].have);
        if (sl->rep.result != PATIENT_OK) {
            r->result = sl->rep.result;
            r->alarm = sl->rep.alarm;
            memcpy(r->message, sl->rep.message, sizeof r->message);
            return r->result;
        }
        reader_release(m->rd, sl);
    }
    r->has_seq = 0;
    return PATIENT_OK;
}

/* The tree the new leaves made: the signed root, and its right edge's
 * partial tiles as served. */
static patient_err
run_check_tree(mrun *m)
{
    patient_monitor_report *r = m->r;
    mstate *st = m->st;
    uint8_t root[HASH_LEN];
    patient_err err;

    if ((err = pt_merkle_frontier_root(&st->t.fr, root)))
        return err;
    if (sodium_memcmp(root, m->ck.root, HASH_LEN) != 0) {
        /* Either the signed tree does not extend the one seen (a fork), or
         * the served entries are not the signed ones. The tiles tell. */
        patient_err ce = st->have ? tiles_consistent(&m->c, m->old, st->root, m->ck.size,
                                                     m->ck.root)
                                  : PATIENT_OK;
        r->result = PATIENT_OK; /* what the tiles said is only the diagnosis */
        r->alarm = PATIENT_MONITOR_OK;
        if (ce != PATIENT_OK)
            return raise_alarm(r, PATIENT_MONITOR_FORK, PATIENT_ERR_HASH,
                               "FORK: the signed tree of %llu entries is not consistent with the "
                               "tree of %llu seen before",
                               (unsigned long long)m->ck.size, (unsigned long long)m->old);
        return raise_alarm(r, PATIENT_MONITOR_ENTRY, PATIENT_ERR_HASH,
                           "the entries served do not hash to the signed root of %llu entries",
                           (unsigned long long)m->ck.size);
    }
    /* The right edge too: every partial tile of the new tree. */
    for (unsigned L = 0; L < PT_TILE_LEVELS; L++) {
        const uint8_t *served;
        unsigned w;
        if (st->t.w[L] == 0)
            continue;
        if ((err = get_tile(&m->c, L, st->t.full[L], &served, &w)))
            return err;
        if (w != st->t.w[L] || memcmp(served, st->t.part[L], (size_t)w * HASH_LEN) != 0) {
            char rel[96];
            patient_tile_path((int)L, st->t.full[L], st->t.w[L], rel);
            return raise_alarm(r, PATIENT_MONITOR_TILE, PATIENT_ERR_HASH,
                               "corrupted tile: %s/%s differs from the hashes of the entries",
                               m->c.base, rel);
        }
    }
    return PATIENT_OK;
}

/* Only once everything checked: the index, then the state file. */
static patient_err
run_save_state(mrun *m)
{
    patient_monitor_report *r = m->r;
    patient_err err = PATIENT_OK;

    memcpy(m->st->root, m->ck.root, HASH_LEN);
    /* The index first: one that runs ahead of the state is rebuilt from
     * the state's size next time; one that lags behind it is never used.
     * (Its records so far are written already; its mark makes them part
     * of it.) */
    index_begin(m);
    if ((err = m->ixerr) || (err = pt_index_commit(&m->ixw, &m->recs, m->ck.size)))
        return raise_alarm(r, PATIENT_MONITOR_STATE, err,
                           "cannot write the descriptor index %s.index: %s", m->state_path,
                           patient_strerror(err));
    if ((err = state_save(m->state_path, m->st)))
        return raise_alarm(r, PATIENT_MONITOR_STATE, err, "cannot write the state file %s: %s",
                           m->state_path, patient_strerror(err));
    snprintf(r->message, sizeof r->message,
             "consistent: tree of %llu entries extends the %llu seen before; %llu new entries "
             "checked",
             (unsigned long long)m->ck.size, (unsigned long long)m->old,
             (unsigned long long)r->entries);
    return PATIENT_OK;
}

patient_err
patient_monitor_run(const char *url, const char *state_path, const patient_monitor_opts *o,
                    patient_monitor_report *r)
{
    patient_monitor_opts mo;
    mrun m;
    int nothing_new = 0;
    patient_err err;

    memset(r, 0, sizeof *r);
    memset(&m, 0, sizeof m);
    if (o == NULL || PT_OPTS_TAKE(&mo, o) != PATIENT_OK || o->pub == NULL || state_path == NULL)
        return raise_alarm(r, PATIENT_MONITOR_STATE, PATIENT_ERR_ARG, "no key or state file given");
    m.o = &mo;
    m.r = r;
    m.url = url;
    m.state_path = state_path;
    if ((err = client_init(&m.c, url, mo.fetch, r))) {
        client_free(&m.c);
        return raise_alarm(r, PATIENT_MONITOR_UNREACHABLE, err, "not an http(s) URL: %s",
                           url ? url : "(null)");
    }
    if ((m.st = malloc(sizeof *m.st)) == NULL || (m.rd = calloc(1, sizeof *m.rd)) == NULL ||
        lpool_new(&m.pool) != PATIENT_OK) {
        err = raise_alarm(r, PATIENT_MONITOR_STATE, PATIENT_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((err = run_fetch_checkpoint(&m)) || (err = run_against_state(&m, &nothing_new)) ||
        nothing_new || (err = run_catch_up(&m)) || (err = run_check_tree(&m)))
        goto out;
    err = run_save_state(&m);
out:
    if (m.begun > 0)
        pt_index_abort(&m.ixw); /* a run that failed leaves the index as it was */
    pt_buf_free(&m.recs);
    lpool_free(m.pool); /* waits for the batch in flight */
    if (m.rd) {
        reader_free(m.rd);
        free(m.rd);
    }
    pentry_free(&m.e);
    free(m.st);
    client_free(&m.c);
    return err;
}

/* The search for descriptors in the published entries. */
typedef struct {
    client *c;
    const patient_checkpoint *ck;
    const char *const *jws;
    size_t n, left;
    patient_included *out;
    pt_buf body;   /* the bundle read last */
    lbatch bt;     /* its lines */
    uint64_t have; /* its index + 1; 0: none */
    uint64_t bundles; /* entry bundles read */
    pentry e;
    uint8_t *scratch;
    size_t scap;
} isearch;

static patient_err
is_bundle(isearch *x, uint64_t b)
{
    unsigned w;
    patient_err err;

    if (x->have == b + 1)
        return PATIENT_OK;
    x->have = 0;
    x->bt.n = 0;
    if ((err = get_bundle(x->c, b, x->ck->size, &x->body, &x->bt, &w)))
        return err;
    x->bundles++;
    x->have = b + 1;
    return PATIENT_OK;
}

/* Entry seq of the bundle last read: when it is the change entry of
 * descriptor k (only, or any not found yet when k is n), prove it into the
 * signed tree and keep its evidence. */
static patient_err
is_line(isearch *x, uint64_t seq, size_t only)
{
    const uint8_t *line = x->bt.line[seq % PATIENT_TILE_WIDTH];
    size_t len = x->bt.len[seq % PATIENT_TILE_WIDTH], k;
    patient_monitor_report *r = x->c->r;
    uint8_t leaf[HASH_LEN], path[PT_MERKLE_MAX_DEPTH][HASH_LEN];
    uint64_t lo[PT_MERKLE_MAX_DEPTH], hi[PT_MERKLE_MAX_DEPTH];
    size_t count;
    int parsed = 0;
    patient_err err;

    for (k = only < x->n ? only : 0; k < (only < x->n ? only + 1 : x->n); k++) {
        if (x->out[k].found || memmem(line, len, x->jws[k], strlen(x->jws[k])) == NULL)
            continue;
        if (!parsed) {
            if (pentry_parse(line, len, &x->e) != PATIENT_OK)
                return raise_alarm(r, PATIENT_MONITOR_ENTRY, PATIENT_ERR_LOG_CORRUPT,
                                   "entry %llu is not a log entry", (unsigned long long)seq);
            parsed = 1;
        }
        if (x->e.kind != PATIENT_LOG_KIND_CHANGE || strcmp(x->e.jws, x->jws[k]) != 0)
            continue;
        if (x->e.seq != seq)
            return raise_alarm(r, PATIENT_MONITOR_ENTRY, PATIENT_ERR_CHAIN,
                               "entry %llu carries seq %llu", (unsigned long long)seq,
                               (unsigned long long)x->e.seq);
        /* Proven, not just found: the audit path from the tiles must lead
         * from this very line to the signed root. */
        if ((err = scratch_leaf(&x->scratch, &x->scap, line, len, leaf)) ||
            (err = pt_merkle_path_ranges(seq, x->ck->size, lo, hi, &count)))
            return err;
        for (size_t q = 0; q < count; q++)
            if ((err = pt_merkle_range_hash(lo[q], hi[q], tile_node, x->c, path[q])))
                return err;
        if (pt_merkle_path_verify(seq, x->ck->size, leaf, (const uint8_t(*)[HASH_LEN])path, count,
                                  x->ck->root) != PATIENT_OK)
            return raise_alarm(r, PATIENT_MONITOR_TILE, PATIENT_ERR_HASH,
                               "corrupted tiles: no inclusion proof of entry %llu leads to the "
                               "signed root",
                               (unsigned long long)seq);
        x->out[k].found = 1;
        x->out[k].seq = seq;
        x->out[k].tree_size = x->ck->size;
        /* What proves it offline later, kept with the bundle. */
        if ((err = pt_log_evidence_build((const char *)line, len, seq, x->ck->size,
                                         (const uint8_t(*)[HASH_LEN])path, count, x->c->note,
                                         &x->out[k].evidence)))
            return raise_alarm(r, PATIENT_MONITOR_STATE, err, "out of memory");
        x->left--;
    }
    return PATIENT_OK;
}

/* Every entry in [from, to) of the signed tree, bundle by bundle. */
static patient_err
is_scan(isearch *x, uint64_t from, uint64_t to)
{
    patient_err err;

    if (to > x->ck->size)
        to = x->ck->size;
    for (uint64_t seq = from; seq < to && x->left > 0; seq++) {
        if ((err = is_bundle(x, seq / PATIENT_TILE_WIDTH)))
            return err;
        if ((err = is_line(x, seq, x->n)))
            return err;
    }
    return PATIENT_OK;
}

patient_err
patient_tlog_included(const char *url, const char *state_path, const patient_monitor_opts *o,
                      const char *const *jws, size_t n, patient_included *out,
                      patient_monitor_report *r)
{
    patient_monitor_opts mo;
    client c;
    mstate *st = NULL;
    patient_checkpoint ck;
    isearch x;
    pt_index idx;
    char ipath[PATH_MAX];
    int use_idx = 0;
    size_t k, wrong = 0;
    patient_err err;

    memset(r, 0, sizeof *r);
    memset(&x, 0, sizeof x);
    memset(&idx, 0, sizeof idx);
    if (o == NULL || PT_OPTS_TAKE(&mo, o) != PATIENT_OK || o->pub == NULL ||
        (n && (jws == NULL || out == NULL)))
        return raise_alarm(r, PATIENT_MONITOR_STATE, PATIENT_ERR_ARG, "no key given");
    o = &mo;
    memset(out, 0, n * sizeof *out);
    if ((err = client_init(&c, url, o->fetch, r))) {
        client_free(&c);
        return raise_alarm(r, PATIENT_MONITOR_UNREACHABLE, err, "not an http(s) URL: %s",
                           url ? url : "(null)");
    }
    if ((st = malloc(sizeof *st)) == NULL) {
        err = raise_alarm(r, PATIENT_MONITOR_STATE, PATIENT_ERR_NOMEM, "out of memory");
        goto out;
    }
    memset(st, 0, sizeof *st);
    if (state_path && (err = state_load(state_path, st, r)))
        goto out;
    if (state_path && !st->have) {
        err = raise_alarm(r, PATIENT_MONITOR_STATE, PATIENT_ERR_NOT_FOUND,
                    "state file %s does not exist: run the monitor first", state_path);
        goto out;
    }
    r->old_size = st->have ? st->t.size : 0;
    if ((err = get_checkpoint(&c, o->origin ? o->origin : st->have ? st->origin : NULL, o->pub,
                              &ck)))
        goto out;
    if (st->have) {
        if (ck.size < st->t.size) {
            err = raise_alarm(r, PATIENT_MONITOR_ROLLBACK, PATIENT_ERR_ROLLBACK,
                        "ROLLBACK: the log now signs a tree of %llu entries; the monitor saw %llu",
                        (unsigned long long)ck.size, (unsigned long long)st->t.size);
            goto out;
        }
        int forked = ck.size == st->t.size
                         ? sodium_memcmp(ck.root, st->root, HASH_LEN) != 0
                         : tiles_consistent(&c, st->t.size, st->root, ck.size, ck.root) != PATIENT_OK;
        if (forked && r->alarm != PATIENT_MONITOR_UNREACHABLE) {
            r->result = PATIENT_OK;
            r->alarm = PATIENT_MONITOR_OK;
            err = raise_alarm(r, PATIENT_MONITOR_FORK, PATIENT_ERR_HASH,
                        "FORK: the signed tree of %llu entries is not consistent with the "
                        "tree of %llu the monitor saw",
                        (unsigned long long)ck.size, (unsigned long long)st->t.size);
            goto out;
        }
        if (forked) {
            err = r->result;
            goto out;
        }
    }
    c.tree_size = ck.size;
    x.c = &c;
    x.ck = &ck;
    x.jws = jws;
    x.n = x.left = n;
    x.out = out;
    /* The monitor's index names the entry of each descriptor it saw: read
     * just that bundle, and the log only where the index does not reach.
     * An entry that is not the descriptor it is said to be makes the whole
     * log searched for it: a wrong index costs time, never a verdict. */
    if (state_path && snprintf(ipath, sizeof ipath, "%s.index", state_path) < (int)sizeof ipath &&
        pt_index_load(ipath, st->log_id, &idx) == PATIENT_OK)
        use_idx = 1;
    for (k = 0; use_idx && k < n; k++) {
        uint8_t key[PT_INDEX_KEY];
        size_t pos = 0;
        uint64_t seq;
        pt_index_key(jws[k], strlen(jws[k]), key);
        while (!out[k].found && pt_index_next(&idx, key, &pos, &seq)) {
            if (seq >= ck.size || (err = is_bundle(&x, seq / PATIENT_TILE_WIDTH)) ||
                seq % PATIENT_TILE_WIDTH >= x.bt.n || (err = is_line(&x, seq, k)) || !out[k].found)
                wrong++;
            if (err)
                goto out;
        }
    }
    if (!use_idx || wrong)
        err = is_scan(&x, 0, ck.size);
    else if ((err = is_scan(&x, 0, idx.from)) == PATIENT_OK)
        err = is_scan(&x, idx.upto, ck.size);
    if (err)
        goto out;
    if (!use_idx)
        snprintf(r->message, sizeof r->message,
                 "%zu of %zu descriptors logged in the tree of %llu (entry bundles read: %llu; no "
                 "monitor's index)",
                 n - x.left, n, (unsigned long long)ck.size, (unsigned long long)x.bundles);
    else
        snprintf(r->message, sizeof r->message,
                 "%zu of %zu descriptors logged in the tree of %llu (entry bundles read: %llu; "
                 "the monitor's index covers entries %llu-%llu%s)",
                 n - x.left, n, (unsigned long long)ck.size, (unsigned long long)x.bundles,
                 (unsigned long long)idx.from, (unsigned long long)(idx.upto - 1),
                 wrong ? "; it named entries that are not the descriptor: every entry searched"
                       : "");
    err = PATIENT_OK;
out:
    pentry_free(&x.e);
    pt_buf_free(&x.body);
    lb_free(&x.bt);
    free(x.scratch);
    pt_index_free(&idx);
    free(st);
    client_free(&c);
    return err;
}

void
patient_included_free(patient_included *out, size_t n)
{
    for (size_t i = 0; out && i < n; i++) {
        free(out[i].evidence);
        out[i].evidence = NULL;
    }
}
