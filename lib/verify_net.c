/* Verification with the network: fetch a URL, its origin's manifest and the
 * middleboxes' disclosures, then hand everything to patient_verify_evidence.
 * Evidence bundles (offline re-verification) live in lib/bundle.c. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <patient/change.h>
#include <patient/disclosure.h>
#include <patient/key.h>
#include <patient/manifest.h>
#include <patient/hash.h>
#include <patient/bundle.h>
#include <patient/verify.h>
#include "fetch_int.h"
#include "report_int.h"
#include "time_int.h"
#include "url_int.h"
#include "util.h"
#include "verify_int.h"
#include "verify_stream.h"

#define WELL_KNOWN "/.well-known/patient/manifest.json"

/* Everything fetched, owned here, pointed to by the evidence. */
typedef struct {
    patient_evidence ev;
    char *url;
    char *values[PATIENT_MAX_HOPS + 1];
    size_t nvalues;
    char *origin_sig;
    char *ref;                 /* Patient-Change-Ref, the first one */
    patient_response *page, *man, *sig;
    char *man_error;
    pt_checked checks;         /* man and sig, the values: what the core need not redo */
    patient_evidence_disclosure disc[PATIENT_MAX_HOPS];
    patient_response *dresp[PATIENT_MAX_HOPS][2];
    char *derr[PATIENT_MAX_HOPS];
    size_t ndisc;
    /* Shards on the page's path (sharded manifests), bytes owned. */
    patient_evidence_shard shards[3];
    char shard_names[3][65];
    uint8_t *shard_bytes[3];
    char *shard_err[3];
    size_t nshards;
    char *man_for;             /* the URL the manifest and shards were had for */
    int collected;             /* the page's headers were read (collect_changes) */
    pt_bodyck *body;           /* the body's checks, when it streamed to them */
} gathered;

/* Forget the manifest, its signature and shards (had for another URL). */
static void
manifest_clear(gathered *g)
{
    patient_response_free(g->man);
    patient_response_free(g->sig);
    g->man = g->sig = NULL;
    free(g->man_error);
    g->man_error = NULL;
    pt_checked_clear_manifest(&g->checks);
    for (size_t i = 0; i < g->nshards; i++) {
        free(g->shard_bytes[i]);
        free(g->shard_err[i]);
        g->shard_bytes[i] = NULL;
        g->shard_err[i] = NULL;
    }
    memset(g->shards, 0, sizeof g->shards);
    g->nshards = 0;
    free(g->man_for);
    g->man_for = NULL;
}

static void
gathered_free(gathered *g)
{
    manifest_clear(g);
    pt_bodyck_free(g->body);
    for (size_t i = 0; i < g->nvalues; i++)
        free(g->values[i]);
    for (size_t i = 0; i < g->ndisc; i++) {
        patient_response_free(g->dresp[i][0]);
        patient_response_free(g->dresp[i][1]);
        free(g->derr[i]);
        free((char *)g->disc[i].url);
    }
    free(g->url);
    free(g->ref);
    free(g->origin_sig);
    patient_response_free(g->page);
    pt_checked_clear(&g->checks);
}

static char *
xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Collect every Patient-Change value of the response, in order. Values that
 * do not split are kept whole so the verifier reports them as malformed. */
static patient_err
collect_changes(gathered *g, const patient_response *resp)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        const patient_header *hd = &resp->headers[i];
        patient_span spans[PATIENT_MAX_HOPS + 1];
        size_t ns = 0;

        if (strcasecmp(hd->name, PATIENT_CHANGE_HEADER) == 0) {
            if (patient_change_header_split(hd->value, strlen(hd->value), spans,
                                            PATIENT_MAX_HOPS + 1, &ns) != PATIENT_OK) {
                spans[0].p = hd->value;
                spans[0].len = strlen(hd->value);
                ns = 1;
            }
            for (size_t j = 0; j < ns; j++) {
                if (g->nvalues > PATIENT_MAX_HOPS)
                    return PATIENT_OK; /* the verifier reports the excess */
                if ((g->values[g->nvalues] = strndup(spans[j].p, spans[j].len)) == NULL)
                    return PATIENT_ERR_NOMEM;
                g->nvalues++;
            }
        } else if (strcasecmp(hd->name, PATIENT_CHANGE_REF_HEADER) == 0 && g->ref == NULL) {
            if ((g->ref = strdup(hd->value)) == NULL)
                return PATIENT_ERR_NOMEM;
        } else if (strcasecmp(hd->name, "Patient-Origin") == 0 && g->origin_sig == NULL) {
            if ((g->origin_sig = strdup(hd->value)) == NULL)
                return PATIENT_ERR_NOMEM;
        }
    }
    return PATIENT_OK;
}

/* A descriptor delivered by reference (a middlebox that streamed the body
 * could not put it in the headers; docs/format/change.md). The header is
 * data anyone on the path can add, so it is followed only in a shape
 * that cannot send the endpoint anywhere: http, a host under .invalid
 * (RFC 6761: it never resolves, so only a proxy on the path answers),
 * the fixed path with a 32-hex-digit name, through the proxy the page came
 * through (never direct: no DNS query leaves), no redirects, no cache,
 * at most PATIENT_CHANGE_REF_MAX bytes, one per page. What comes back is
 * then only a candidate value: it must verify like an inline one (key in
 * the policy, signature, URL, the body's hash), else the verdict is that
 * of a missing descriptor. */
static int
change_ref_ok(const char *ref)
{
    const char *h, *slash, *name;
    size_t hl, skip;

    if ((skip = pt_url_scheme_len(ref, PT_URL_HTTP)) == 0)
        return 0;
    h = ref + skip;
    if ((slash = strchr(h, '/')) == NULL)
        return 0;
    hl = (size_t)(slash - h);
    if (hl < 9 || hl > 253 || strncmp(slash - 8, ".invalid", 8) != 0 ||
        strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789.-") != hl)
        return 0;
    if (strncmp(slash, PATIENT_CHANGE_REF_PATH, strlen(PATIENT_CHANGE_REF_PATH)) != 0)
        return 0;
    name = slash + strlen(PATIENT_CHANGE_REF_PATH);
    return strlen(name) == 32 && strspn(name, "0123456789abcdef") == 32;
}

/* One reference to follow, on a thread of its own: the reference's request
 * goes to the proxy over a connection of its own (plain http), so it runs
 * while the manifest and its signature are revalidated over the page's
 * connection instead of adding its round trip through the proxy and its
 * ICAP service to theirs. The job owns value; nothing else is shared but
 * the fetch options, which are only read. */
typedef struct {
    const char *ref;
    patient_fetch_opts o;
    char *value; /* the candidate descriptor, NULL when none came back */
    patient_err err;
} ref_job;

static int
ref_wanted(const gathered *g, const patient_fetch_opts *fo)
{
    return g->ref != NULL && fo != NULL && fo->proxy != NULL && change_ref_ok(g->ref) &&
           g->nvalues <= PATIENT_MAX_HOPS;
}

static void *
follow_ref(void *arg)
{
    ref_job *j = arg;
    patient_response *r = NULL;
    char *detail = NULL;
    size_t b, e;

    j->o.max_redirects = 0;
    j->o.max_body = PATIENT_CHANGE_REF_MAX;
    j->err = patient_fetch(&j->o, j->ref, &r, &detail);
    free(detail);
    if (j->err == PATIENT_OK && r->status == 200) {
        for (b = 0; b < r->body_len && strchr(" \t\r\n", r->body[b]); b++)
            ;
        for (e = r->body_len; e > b && strchr(" \t\r\n", r->body[e - 1]); e--)
            ;
        if (e > b && (j->value = strndup((char *)r->body + b, e - b)) == NULL)
            j->err = PATIENT_ERR_NOMEM;
    }
    patient_response_free(r);
    if (j->err != PATIENT_ERR_NOMEM)
        j->err = PATIENT_OK; /* no descriptor: judged as a missing one */
    return NULL;
}

static patient_err
get(const patient_fetch_opts *fo, const char *cache_dir, const char *url, patient_response **r,
    char **why)
{
    int from_cache = 0;
    char *detail = NULL;
    patient_err err = patient_fetch_cached(fo, url, cache_dir, r, &from_cache, &detail);
    pt_buf b = {0};

    *why = NULL;
    if (err != PATIENT_OK) {
        pt_buf_appendf(&b, "%s (%s)", detail ? detail : patient_strerror(err), url);
        *why = (char *)b.data;
        free(detail);
        return err;
    }
    if ((*r)->status != 200) {
        pt_buf_appendf(&b, "HTTP %ld for %s", (*r)->status, url);
        *why = (char *)b.data;
        patient_response_free(*r);
        *r = NULL;
        return PATIENT_ERR_NOT_FOUND;
    }
    return PATIENT_OK;
}

/* Fetch disclosure d and its signature, each capped at what the parsers
 * accept, so one signed URL costs at most two small requests. */
static void
fetch_disclosure(gathered *g, size_t d, const patient_fetch_opts *fo,
                 const patient_verify_fetch_opts *f, const char *cache)
{
    patient_fetch_opts o;
    pt_buf su = {0};

    if (fo)
        o = *fo;
    else
        patient_fetch_opts_init(&o);
    if (f && f->manifest_direct)
        o.proxy = NULL;
    o.max_body = PATIENT_DISCLOSURE_MAX_BYTES;
    if (get(&o, cache, g->disc[d].url, &g->dresp[d][0], &g->derr[d]) == PATIENT_OK) {
        o.max_body = PATIENT_MINISIG_MAX_BYTES;
        pt_buf_appendf(&su, "%s.minisig", g->disc[d].url);
        if (su.data)
            (void)get(&o, cache, (char *)su.data, &g->dresp[d][1], &g->derr[d]);
        pt_buf_free(&su);
    }
}

/* ---- shards: fetched by content hash, cached by it ----------------------
 * The cache keeps shards as <cache>/shards/<sha256 hex>.json. A name is its
 * content's hash, so an entry never goes stale and is checked on every
 * read (a damaged file is fetched again). Bounded: after adding files the
 * folder is trimmed to 3/4 of PATIENT_SHARD_CACHE_MAX_BYTES or _FILES
 * when it exceeds either, least recently used first (a hit refreshes the
 * file's mtime). docs/format/manifest.md, "Shards". */

typedef struct {
    gathered *g;
    const patient_fetch_opts *fo;
    const char *origin;
    char *dir; /* cache folder for shards, NULL when none */
    int added;
} shard_ctx;

static int
hash_is(const uint8_t *p, size_t len, const char *name)
{
    uint8_t h[PATIENT_SHA256_BYTES];
    char hex[65];

    if (patient_sha256(p, len, h) != PATIENT_OK)
        return 0;
    pt_hex(h, sizeof h, hex);
    return strcmp(hex, name) == 0;
}

typedef struct {
    char *name;
    time_t mtime;
    off_t size;
} centry;

static int
cmp_centry(const void *a, const void *b)
{
    const centry *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

static void
shard_cache_trim(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    centry *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        char p[PATH_MAX];
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            centry *q = realloc(v, nc * sizeof *q);
            if (q == NULL)
                break;
            v = q;
            cap = nc;
        }
        if ((v[n].name = strdup(p)) == NULL)
            break;
        v[n].mtime = st.st_mtime;
        v[n].size = st.st_size;
        total += (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    if (total > PATIENT_SHARD_CACHE_MAX_BYTES || n > PATIENT_SHARD_CACHE_MAX_FILES) {
        size_t keep_n = n;
        qsort(v, n, sizeof *v, cmp_centry);
        for (size_t i = 0; i < n && (total > PATIENT_SHARD_CACHE_MAX_BYTES / 4 * 3 ||
                                     keep_n > PATIENT_SHARD_CACHE_MAX_FILES / 4 * 3); i++) {
            if (unlink(v[i].name) == 0) {
                total -= (uint64_t)v[i].size;
                keep_n--;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* patient_shard_get_fn for the network: the cache, else one GET of
 * <origin>/.well-known/patient/shards/<name>.json. Only names that a
 * signed top-level (or a shard it pins) gives get here. */
static patient_err
shard_fetch(void *arg, const char *name, const uint8_t **p, size_t *len)
{
    shard_ctx *c = arg;
    gathered *g = c->g;
    size_t k = g->nshards;
    pt_buf url = {0}, path = {0}, why = {0};
    patient_fetch_opts o = *c->fo;
    patient_response *r = NULL;
    char *detail = NULL;
    patient_err err;

    if (k >= 3)
        return PATIENT_ERR_LIMIT;
    memcpy(g->shard_names[k], name, 65);
    g->shards[k].name = g->shard_names[k];
    g->nshards++;
    if (c->dir && pt_buf_appendf(&path, "%s/%s.json", c->dir, name) == PATIENT_OK &&
        pt_read_file((char *)path.data, PATIENT_MANIFEST_SHARD_MAX_BYTES, &g->shard_bytes[k],
                     &g->shards[k].len) == PATIENT_OK) {
        if (hash_is(g->shard_bytes[k], g->shards[k].len, name)) {
            utimensat(AT_FDCWD, (char *)path.data, NULL, 0);
            goto have;
        }
        free(g->shard_bytes[k]);
        g->shard_bytes[k] = NULL;
        unlink((char *)path.data);
    }
    o.max_body = PATIENT_MANIFEST_SHARD_MAX_BYTES;
    o.max_redirects = 0;
    if ((err = pt_buf_appendf(&url, "%s/.well-known/patient/" PATIENT_MANIFEST_SHARD_DIR "/%s.json",
                              c->origin, name)))
        goto out;
    err = patient_fetch(&o, (char *)url.data, &r, &detail);
    if (err == PATIENT_ERR_NOMEM)
        goto out;
    if (err != PATIENT_OK || r->status != 200) {
        if (err != PATIENT_OK)
            pt_buf_appendf(&why, "%s (%s)", detail ? detail : patient_strerror(err),
                           (char *)url.data);
        else
            pt_buf_appendf(&why, "HTTP %ld for %s", r->status, (char *)url.data);
        g->shard_err[k] = (char *)why.data;
        g->shards[k].error = g->shard_err[k];
        err = PATIENT_ERR_NOT_FOUND;
        goto out;
    }
    g->shard_bytes[k] = r->body;
    g->shards[k].len = r->body_len;
    r->body = NULL;
    r->body_len = 0;
    /* Into the cache only what is the shard it is named after. */
    if (c->dir && hash_is(g->shard_bytes[k], g->shards[k].len, name) &&
        pt_write_atomic((char *)path.data, g->shard_bytes[k], g->shards[k].len, 0600,
                        PT_WRITE_NOSYNC) == PATIENT_OK)
        c->added = 1;
have:
    g->shards[k].bytes = g->shard_bytes[k];
    *p = g->shards[k].bytes;
    *len = g->shards[k].len;
    err = PATIENT_OK;
out:
    free(detail);
    patient_response_free(r);
    pt_buf_free(&url);
    pt_buf_free(&path);
    return err;
}

/* Check the manifest's signature with the keys the policy trusts for the
 * origin, once: the result goes on to the verification (g->checks). For
 * a sharded manifest that verifies: get the shards on the page's path (a
 * manifest that does not verify names nothing to fetch), and hand on the
 * lookup that got them (g->checks.lookup), which is the one the core
 * would make over the same shards. */
static patient_err
gather_shards(gathered *g, const patient_fetch_opts *mfo, const char *cache,
              const char *origin, const patient_pubkey *keys, size_t nkeys)
{
    pt_lookup_checked *l = &g->checks.lookup;
    patient_manifest *m;
    shard_ctx c;
    char *path = NULL, *cdir = NULL, *own = NULL;
    patient_err err = PATIENT_OK;

    pt_manifest_check_keys(&g->checks.manifest, g->man->body, g->man->body_len,
                           (const char *)g->sig->body, g->sig->body_len, keys, nkeys);
    m = g->checks.manifest.m;
    if (m == NULL || patient_manifest_shard_levels(m, NULL) == 0 ||
        patient_policy_split_url(g->man_for, NULL, &path) != PATIENT_OK)
        goto out;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.fo = mfo;
    c.origin = origin;
    if (cache == NULL && patient_cache_dir_default(&own) == PATIENT_OK)
        cache = own;
    if (cache && pt_mkdir_private(cache) == PATIENT_OK) {
        pt_buf d = {0};
        if (pt_buf_appendf(&d, "%s/shards", cache) == PATIENT_OK &&
            pt_mkdir_private((char *)d.data) == PATIENT_OK)
            cdir = (char *)d.data;
        else
            pt_buf_free(&d);
    }
    c.dir = cdir;
    err = patient_manifest_lookup_sharded(m, path, shard_fetch, &c, &l->leaf, &l->res, &l->si);
    if (err == PATIENT_OK || err == PATIENT_ERR_NOT_FOUND || err == PATIENT_ERR_HASH) {
        /* The outcomes the core reports; any other, it meets again itself. */
        l->m = m;
        l->path = path;
        l->err = err;
        path = NULL;
    } else {
        patient_manifest_free(l->leaf);
        l->leaf = NULL;
    }
    if (err != PATIENT_ERR_NOMEM)
        err = PATIENT_OK; /* the verification reports what went wrong */
    if (c.added)
        shard_cache_trim(cdir);
out:
    free(path);
    free(cdir);
    free(own);
    return err;
}

/* The manifest and its signature for url's origin (cached, through the
 * proxy unless told not to), checked, and the shards on url's path. Only
 * for an origin the policy has publisher keys for: any other manifest
 * could not be checked, and the page (or a redirect it sent) must not
 * choose where the verifier goes next or what it caches. */
static patient_err
gather_manifest(gathered *g, const patient_policy *policy, const char *url,
                const patient_verify_fetch_opts *f)
{
    const patient_fetch_opts *fo = f ? f->fetch : NULL;
    const char *cache = f ? f->cache_dir : NULL;
    patient_fetch_opts direct, *mfo = &direct;
    const patient_pubkey *pkeys = NULL;
    size_t npkeys = 0;
    char *origin = NULL, *why = NULL;
    pt_buf murl = {0};
    patient_err err = PATIENT_OK;

    if ((g->man_for = strdup(url)) == NULL)
        return PATIENT_ERR_NOMEM;
    if (fo)
        direct = *fo;
    else
        patient_fetch_opts_init(&direct);
    if (f && f->manifest_direct)
        direct.proxy = NULL;
    if (direct.max_body > PATIENT_MANIFEST_MAX_BYTES)
        direct.max_body = PATIENT_MANIFEST_MAX_BYTES;
    if (patient_policy_split_url(url, &origin, NULL) == PATIENT_OK &&
        patient_policy_publisher_keys(policy, origin, &pkeys, &npkeys) == PATIENT_OK &&
        npkeys > 0) {
        pt_buf_appendf(&murl, "%s" WELL_KNOWN, origin);
        if (get(mfo, cache, (char *)murl.data, &g->man, &why) == PATIENT_OK) {
            pt_buf_appendf(&murl, ".minisig");
            direct.max_body = PATIENT_MINISIG_MAX_BYTES;
            if (get(mfo, cache, (char *)murl.data, &g->sig, &why) != PATIENT_OK) {
                patient_response_free(g->man);
                g->man = NULL;
            }
        }
        g->man_error = why;
        if (g->man && g->sig)
            err = gather_shards(g, mfo, cache, origin, pkeys, npkeys);
    }
    free(origin);
    pt_buf_free(&murl);
    return err;
}

/* The evidence as far as it is known: everything but the body. */
static void
evidence_set(gathered *g, const patient_response *page)
{
    g->ev.url = g->url;
    g->ev.status = page->status;
    g->ev.changes = (const char *const *)g->values;
    g->ev.nchanges = g->nvalues;
    g->ev.origin_sig = g->origin_sig;
    g->ev.manifest = NULL;
    g->ev.manifest_len = 0;
    g->ev.manifest_sig = NULL;
    g->ev.manifest_sig_len = 0;
    if (g->man && g->sig) {
        g->ev.manifest = g->man->body;
        g->ev.manifest_len = g->man->body_len;
        g->ev.manifest_sig = (const char *)g->sig->body;
        g->ev.manifest_sig_len = g->sig->body_len;
    }
    g->ev.manifest_error = g->man_error;
    g->ev.shards = g->shards;
    g->ev.nshards = g->nshards;
}

/* The page's body, streamed: at its headers, decide whether the body is
 * needed at all (docs/SECURITY.md, "Verifying while the body streams").
 * It is not when the manifest was had for this very URL, no descriptor
 * comes by reference (the middlebox that streamed the body publishes it
 * only once the body has passed it), and the core needs only what the
 * body's checks compute as it passes (pt_verify_plan). */
typedef struct {
    gathered *g;
    const patient_policy *policy;
    time_t now;
} stream_ctx;

static int
stream_head(void *ctx, const patient_response *head)
{
    stream_ctx *s = ctx;
    gathered *g = s->g;
    pt_bodyck *bc = NULL;
    patient_err err;

    if (head->status != 200 || g->man_for == NULL || strcmp(head->url, g->man_for) != 0)
        return 0;
    if (collect_changes(g, head) != PATIENT_OK)
        return -1;
    g->collected = 1;
    if (g->ref != NULL)
        return 0;
    g->url = (char *)head->url; /* only for the plan, which does not keep it */
    evidence_set(g, head);
    err = pt_verify_plan(s->policy, &g->ev, s->now, &g->checks, &bc);
    /* head->url is libcurl's effective URL, gone with the transfer. */
    g->url = NULL;
    g->ev.url = NULL;
    if (err != PATIENT_OK)
        return -1;
    g->body = bc;
    return bc != NULL;
}

static patient_err
stream_data(void *ctx, const uint8_t *p, size_t n)
{
    stream_ctx *s = ctx;
    return pt_bodyck_feed(s->g->body, p, n);
}

/* ---- gathering, in phases: the page, its descriptors (and the manifest
 * for its URL), the disclosures they name, then the evidence ---------- */

/* The page: fetched (streamed to the body's checks when it may be, with
 * the manifest had first), or the one the browser received. What ends the
 * verification is returned; the fetch's own outcome is *ferr with its
 * *detail (malloc'd), for gather to judge. */
static patient_err
gather_page(gathered *g, const patient_policy *policy, const char *url,
            const patient_verify_fetch_opts *f, int may_stream, time_t now,
            const patient_response **page, patient_err *ferr, char **detail)
{
    const patient_fetch_opts *fo = f ? f->fetch : NULL;
    stream_ctx sc = {g, policy, now};
    pt_fetch_sink sink = {stream_head, stream_data, &sc};
    patient_err err;

    *page = NULL;
    *ferr = PATIENT_OK;
    /* Streaming: the manifest first, so that what the origin signed is
     * known when the page's body starts. Not when the body is wanted
     * anyway (a bundle, the bytes a browser received, a body given). */
    if (f && (f->received || f->body_override))
        may_stream = 0;
    if (may_stream && (err = gather_manifest(g, policy, url, f)) != PATIENT_OK)
        return err;
    /* What the browser received is verified as it is: no second fetch that
     * a split-view server could answer differently. */
    if (f && f->received)
        *page = f->received;
    else if ((*ferr = pt_fetch_sink_get(fo, url, may_stream ? &sink : NULL, &g->page, detail)) ==
             PATIENT_OK)
        *page = g->page;
    if (*ferr == PATIENT_OK && g->body && (err = pt_bodyck_end(g->body)) != PATIENT_OK)
        return err;
    return PATIENT_OK;
}

/* No page, or a status other than 200: the unverifiable report that says
 * why (*fail), from the fetch's outcome ferr and its detail. */
static patient_err
fetch_failed(const patient_response *page, patient_err ferr, const char *detail, const char *url,
             time_t now, patient_report **fail)
{
    patient_err err;

    if (ferr == PATIENT_ERR_NOMEM || ferr == PATIENT_ERR_CRYPTO || ferr == PATIENT_ERR_STATE)
        return ferr;
    if ((err = rep_new(fail, url, now)) != PATIENT_OK)
        return err;
    if (page)
        rep_result(*fail, REP_UNVERIFIABLE, "fetch.status", url,
                   "the server answered HTTP %ld", page->status);
    else if (ferr == PATIENT_ERR_GZIP)
        rep_result(*fail, REP_UNVERIFIABLE, "fetch.encoding", url,
                   "the server sent a compressed body that does not decode: %s",
                   detail ? detail : "corrupt data");
    else if (ferr == PATIENT_ERR_TOO_LARGE)
        rep_result(*fail, REP_UNVERIFIABLE, "fetch.too_large", url, "%s",
                   detail ? detail : "the response is over a size limit");
    else
        rep_result(*fail, REP_UNVERIFIABLE, "fetch.failed", url, "could not fetch: %s",
                   detail ? detail : "network error");
    err = rep_finish(*fail, 0);
    if (err != PATIENT_OK) {
        patient_report_free(*fail);
        *fail = NULL;
    }
    return err;
}

/* The page's descriptors: its Patient-Change values, then the one it
 * names by reference; and the manifest for the page's own URL. */
static patient_err
gather_changes(gathered *g, const patient_policy *policy, const char *url,
               const patient_response *page, const patient_verify_fetch_opts *f)
{
    const patient_fetch_opts *fo = f ? f->fetch : NULL;
    ref_job job = {0};
    pthread_t ref_thread;
    int want_ref = 0, threaded = 0;
    patient_err err = PATIENT_OK, serr = PATIENT_OK;

    if ((g->url = strdup(page->url ? page->url : url)) == NULL)
        return PATIENT_ERR_NOMEM;
    if (!g->collected && (err = collect_changes(g, page)) != PATIENT_OK)
        return err;
    /* The descriptor of a streamed change, after the inline ones (it is
     * the last hop's). Also for a page the browser handed us: the
     * reference's host is under .invalid, so only the proxy the verifier
     * was given can answer it, and what comes back is checked like an
     * inline value. Without a proxy it is not followed (ref_wanted), and
     * the page's verdict is that of a missing descriptor. It is fetched
     * while the manifest is (follow_ref); where no thread can be started,
     * after it. */
    if ((want_ref = ref_wanted(g, fo)) != 0) {
        job.ref = g->ref;
        job.o = *fo;
        threaded = pthread_create(&ref_thread, NULL, follow_ref, &job) == 0;
    }
    /* The manifest for the page's own URL: had before it when streaming,
     * unless a redirect led elsewhere. */
    if (g->man_for == NULL || strcmp(g->man_for, g->url) != 0) {
        manifest_clear(g);
        serr = gather_manifest(g, policy, g->url, f);
    }
    if (threaded)
        pthread_join(ref_thread, NULL);
    else if (want_ref)
        follow_ref(&job);
    if (job.err != PATIENT_OK)
        return job.err;
    if (serr != PATIENT_OK) {
        free(job.value); /* not yet in g->values, so not freed with g */
        return serr;
    }
    if (job.value)
        g->values[g->nvalues++] = job.value;
    return PATIENT_OK;
}

/* Disclosures named by the descriptors, each URL once. A value is data
 * anyone on the path can add, so a URL in it is followed only when the
 * hop's key is one the policy trusts and its signature verifies: an
 * unsigned or untrusted value never makes the endpoint send a request
 * (to an internal host, a tracker) or store anything in its cache. The
 * signed ones are bounded too, in number and in bytes per page. Each
 * descriptor parsed, and each signature checked, goes on to the
 * verification in g->checks. */
static patient_err
gather_disclosures(gathered *g, const patient_policy *policy, const patient_verify_fetch_opts *f)
{
    const patient_fetch_opts *fo = f ? f->fetch : NULL;
    const char *cache = f ? f->cache_dir : NULL;

    for (size_t i = 0; i < g->nvalues && g->ndisc < PATIENT_MAX_HOPS; i++) {
        patient_change *c = NULL;
        const patient_policy_middlebox *mb;
        int seen = 0;
        /* parsed already, before the body (pt_verify_plan), or now */
        if ((c = pt_checked_parse(&g->checks, i, g->values[i])) == NULL)
            continue;
        if (pt_url_scheme_len(c->by.disclosure, PT_URL_HTTP_S) == 0 ||
            (mb = patient_policy_middlebox_find(policy, c->by.kid)) == NULL ||
            patient_change_verify(c, patient_policy_middlebox_key(mb)) != PATIENT_OK)
            continue;
        g->checks.key[i] = patient_policy_middlebox_key(mb);
        for (size_t j = 0; j < g->ndisc; j++)
            seen |= strcmp(g->disc[j].url, c->by.disclosure) == 0;
        if (!seen) {
            size_t d = g->ndisc++;
            if ((g->disc[d].url = xstrdup(c->by.disclosure)) == NULL)
                return PATIENT_ERR_NOMEM;
            if (d >= PATIENT_VERIFY_MAX_DISCLOSURES) {
                pt_buf eb = {0};
                pt_buf_appendf(&eb, "not fetched: more than %d disclosures on one page",
                               PATIENT_VERIFY_MAX_DISCLOSURES);
                g->derr[d] = (char *)eb.data;
            } else {
                fetch_disclosure(g, d, fo, f, cache);
            }
            if (g->dresp[d][0]) {
                g->disc[d].json = g->dresp[d][0]->body;
                g->disc[d].json_len = g->dresp[d][0]->body_len;
            }
            if (g->dresp[d][1]) {
                g->disc[d].sig = (const char *)g->dresp[d][1]->body;
                g->disc[d].sig_len = g->dresp[d][1]->body_len;
            }
            g->disc[d].error = g->derr[d];
        }
    }
    return PATIENT_OK;
}

/* The whole evidence: what evidence_set knows, the body (or the body's
 * checks, when it streamed to them), the chain and the disclosures. */
static void
evidence_finish(gathered *g, const patient_response *page, const patient_verify_fetch_opts *f)
{
    evidence_set(g, page);
    g->ev.body = page->body;
    g->ev.body_len = page->body_len;
    if (f && f->body_override && !f->received) {
        g->ev.body = f->body_override;
        g->ev.body_len = f->body_override_len;
    }
    if (g->body) {
        /* Not kept: the core takes what its checks made of it. */
        g->ev.body = NULL;
        g->ev.body_len = 0;
        g->checks.body = g->body;
    }
    g->ev.tls_chain = (const uint8_t(*)[32])page->tls_chain;
    g->ev.tls_chain_n = page->tls_chain_n;
    g->ev.disclosures = g->disc;
    g->ev.ndisclosures = g->ndisc;
}

static patient_err
gather(gathered *g, const patient_policy *policy, const char *url,
       const patient_verify_fetch_opts *f, int may_stream, patient_report **fail, time_t now)
{
    const patient_response *page = NULL;
    char *detail = NULL;
    patient_err err, ferr;

    *fail = NULL;
    err = gather_page(g, policy, url, f, may_stream, now, &page, &ferr, &detail);
    if (err == PATIENT_OK && (page == NULL || page->status != 200))
        err = fetch_failed(page, ferr, detail, url, now, fail);
    free(detail);
    if (err != PATIENT_OK || *fail != NULL)
        return err;
    if ((err = gather_changes(g, policy, url, page, f)) != PATIENT_OK ||
        (err = gather_disclosures(g, policy, f)) != PATIENT_OK)
        return err;
    evidence_finish(g, page, f);
    return PATIENT_OK;
}

patient_err
patient_verify_url(const patient_policy *policy, const char *url,
                   const patient_verify_fetch_opts *fopts, const patient_verify_opts *opts,
                   patient_report **report, char **bundle_out)
{
    gathered g;
    patient_verify_opts o = {0}, ob;
    patient_verify_fetch_opts fb;
    patient_fetch_opts ffb;
    char *url_nf = NULL;
    patient_err err;

    *report = NULL;
    if (bundle_out)
        *bundle_out = NULL;
    memset(&g, 0, sizeof g);
    if ((err = pt_verify_opts_take(&fopts, &opts, &fb, &ffb, &ob)) != PATIENT_OK)
        return err;
    if (opts)
        o = *opts;
    if (o.now == 0)
        o.now = time(NULL);
    /* Fetch and compare without the fragment (a navigation URL from the
     * browser carries it; the server never sees it). */
    if ((err = pt_url_drop_fragment(url, &url_nf)) != PATIENT_OK)
        goto out;
    if ((err = gather(&g, policy, url_nf, fopts, bundle_out == NULL, report, o.now)) !=
            PATIENT_OK ||
        *report != NULL)
        goto out;
    if ((err = pt_verify_evidence(policy, &g.ev, &o, &g.checks, report)) != PATIENT_OK)
        goto out;
    if (bundle_out) {
        if ((err = patient_bundle_build(&g.ev, policy, o.now, bundle_out)) != PATIENT_OK) {
            patient_report_free(*report);
            *report = NULL;
        }
    }
out:
    free(url_nf);
    gathered_free(&g);
    return err;
}
