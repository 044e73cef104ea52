/* The audit log, verification: recompute the hash chain and the Merkle
 * tree, check every checkpoint and every change entry against its
 * descriptor, and say how a damaged log was tampered with.
 * Format contract: docs/format/log.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "log_int.h"

/* ---- Entries against their descriptors --------------------------------- */

/* Compare a change entry's denormalised fields with its JWS payload.
 * *bad: NULL when they agree, else the name of the first field that
 * differs ("jws" when the JWS or its payload does not parse). Returns
 * NOMEM when the descriptor could not be read for want of memory (then
 * nothing is said about the entry), else PATIENT_OK. */
static patient_err
change_mismatch(const pentry *e, patient_jws **jws_out, const char **bad_out)
{
    patient_jws *j = NULL;
    chfields f;
    const char *bad = NULL;
    patient_err err;
    size_t i;

    memset(&f, 0, sizeof f);
    if ((err = patient_jws_parse(e->jws, strlen(e->jws), &j)) != PATIENT_OK ||
        (err = chfields_from_value(e->jws, &f)) != PATIENT_OK) {
        bad = "jws";
        goto out;
    }
    if (strcmp(f.url, e->url) != 0)
        bad = "url";
    else if (f.hop != e->hop)
        bad = "hop";
    else if (strcmp(f.at, e->time) != 0)
        bad = "time";
    else if (strcmp(f.by_name, e->by_name) != 0)
        bad = "by.name";
    else if (strcmp(f.kid, e->by_kid) != 0)
        bad = "by.kid";
    else if (f.deleted != e->deleted)
        bad = "deleted";
    else if (f.inserted != e->inserted)
        bad = "inserted";
    else if (e->n_reasons != f.n)
        bad = "reasons";
    else if (strcmp(e->tls ? e->tls : "", f.tls) != 0 || (e->tls && *e->tls == 0))
        bad = "tls";
    for (i = 0; bad == NULL && i < f.n; i++) {
        if (strcmp(e->reasons[i], f.reasons[i]) != 0)
            bad = "reasons";
        else if (strcmp(e->rules[i], f.rules[i]) != 0)
            bad = "rules";
    }
out:
    chfields_free(&f);
    if (err == PATIENT_ERR_NOMEM)
        bad = NULL;
    else if (bad == NULL && jws_out) {
        *jws_out = j;
        j = NULL;
    }
    patient_jws_free(j);
    *bad_out = bad;
    return err == PATIENT_ERR_NOMEM ? err : PATIENT_OK;
}

/* ---- Verification ------------------------------------------------------ */

const char *
patient_log_tamper_name(patient_log_tamper t)
{
    switch (t) {
    case PATIENT_LOG_INTACT: return "intact";
    case PATIENT_LOG_EDITED: return "edited";
    case PATIENT_LOG_REMOVED: return "removed";
    case PATIENT_LOG_REORDERED: return "reordered";
    case PATIENT_LOG_INSERTED: return "inserted";
    case PATIENT_LOG_TRUNCATED: return "truncated";
    case PATIENT_LOG_REWRITTEN: return "rewritten";
    case PATIENT_LOG_FORGED: return "forged";
    case PATIENT_LOG_MALFORMED: return "malformed";
    }
    return "unknown";
}

static patient_err
vfail(patient_log_report *r, patient_log_tamper t, patient_err err, uint64_t line, int has_seq,
      uint64_t seq, const char *expected, const char *found, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));

static patient_err
vfail(patient_log_report *r, patient_log_tamper t, patient_err err, uint64_t line, int has_seq,
      uint64_t seq, const char *expected, const char *found, const char *fmt, ...)
{
    va_list ap;

    r->result = err;
    r->tamper = t;
    r->line = line;
    r->has_seq = has_seq;
    r->seq = seq;
    snprintf(r->expected, sizeof r->expected, "%s", expected ? expected : "");
    snprintf(r->found, sizeof r->found, "%s", found ? found : "");
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    return err;
}

/* A local failure (I/O, memory, crypto): no tamper class. */
static patient_err
plain(patient_log_report *r, patient_err err)
{
    r->result = err;
    snprintf(r->message, sizeof r->message, "%s", patient_strerror(err));
    return err;
}

/* After a seq jump to a later value: does the missing seq come later in the
 * file (reordered) or never (removed)? Reads to the end; error path only. */
static int
seq_appears_later(lreader *rd, uint64_t want)
{
    uint8_t *line;
    size_t len;
    int nl;
    uint64_t off, seq;
    cJSON *o = NULL;

    for (;;) {
        if (lr_next(rd, &line, &len, &nl, &off) != PATIENT_OK || line == NULL)
            return 0;
        if (pt_json_parse((const char *)line, len, &o) != PATIENT_OK)
            continue;
        if (get_u64(o, "seq", &seq) == 0 && seq == want) {
            cJSON_Delete(o);
            return 1;
        }
        cJSON_Delete(o);
        o = NULL;
    }
}

/* Checks one checkpoint line against the recomputed state. */
static patient_err
verify_checkpoint(const pentry *e, uint64_t line_no, const pt_merkle_frontier *fr,
                  const char *log_id, const patient_log_verify_opts *o, patient_log_report *r)
{
    patient_jws *j = NULL;
    cJSON *p = NULL;
    uint8_t root[HASH_LEN], want[HASH_LEN];
    char want64[45], kid[PATIENT_KEYID_HEX], pinned[PATIENT_KEYID_HEX];
    uint64_t ts;
    const char *s;
    patient_err err;

    if (e->tree_size != e->seq) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%llu", (unsigned long long)e->seq);
        snprintf(b, sizeof b, "%llu", (unsigned long long)e->tree_size);
        err = vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_LOG_CORRUPT, line_no, 1, e->seq, a, b,
                    "checkpoint tree_size must equal its seq");
        goto out;
    }
    if (pt_b64_decode_exact(e->root_b64, strlen(e->root_b64), 0, root, HASH_LEN) != PATIENT_OK) {
        err = vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_LOG_CORRUPT, line_no, 1, e->seq, NULL,
                    e->root_b64, "checkpoint root is not base64 of 32 bytes");
        goto out;
    }
    /* The signed payload must say exactly what the line says. Running out
     * of memory reading it says nothing about the log. */
    if ((err = pt_checkpoint_sig_read(e->sig, &j, &p)) == PATIENT_ERR_NOMEM) {
        plain(r, err);
        goto out;
    }
    if (err != PATIENT_OK) {
        err = vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_LOG_CORRUPT, line_no, 1, e->seq, NULL,
                    NULL, "checkpoint sig is not a " CKPT_TYP " JWS");
        goto out;
    }
    if (get_u64(p, "tree_size", &ts) != 0 || ts != e->tree_size ||
        (s = pt_json_str(p, "root")) == NULL || strcmp(s, e->root_b64) != 0 ||
        (s = pt_json_str(p, "time")) == NULL || strcmp(s, e->time) != 0 ||
        (s = pt_json_str(p, "log_id")) == NULL || strcmp(s, log_id) != 0) {
        err = vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no, 1, e->seq, NULL, NULL,
                    "checkpoint fields differ from its signed payload (log_id, tree_size, "
                    "root, time)");
        goto out;
    }
    if ((err = pt_merkle_frontier_root(fr, want)))
        goto out;
    if (sodium_memcmp(want, root, HASH_LEN) != 0) {
        sodium_bin2base64(want64, sizeof want64, want, HASH_LEN, sodium_base64_VARIANT_ORIGINAL);
        err = vfail(r, PATIENT_LOG_REWRITTEN, PATIENT_ERR_LOG_CORRUPT, line_no, 1, e->seq,
                    want64, e->root_b64,
                    "checkpoint root differs from the Merkle root of the %llu entries before it",
                    (unsigned long long)e->tree_size);
        goto out;
    }
    if (o->pub) {
        if ((err = patient_jws_verify(j, o->pub)) != PATIENT_OK) {
            patient_keyid_hex(j->kid, kid);
            patient_keyid_hex(o->pub->id, pinned);
            err = vfail(r, PATIENT_LOG_FORGED, err, line_no, 1, e->seq, pinned, kid,
                        err == PATIENT_ERR_KEY_MISMATCH
                            ? "checkpoint signed by another key than the pinned one"
                            : "checkpoint signature does not verify");
            goto out;
        }
    }
    err = PATIENT_OK;
out:
    cJSON_Delete(p);
    patient_jws_free(j);
    return err;
}

/* ---- The phases --------------------------------------------------------
 *
 * patient_log_verify reads the log in batches (workers hash and scan one
 * while the next is read) and runs, for each line in file order: frame (a
 * whole line), parse (a log entry of a known kind), order (seq and prev
 * chain to the line before), kind (checkpoint, change or event against the
 * state so far), then fold (the line into the hash chain and the Merkle
 * tree, and against a trusted checkpoint). After the last line, end
 * (trusted size reached, final checkpoint). Every phase fills the typed
 * patient_log_report: vfail for tampering, plain for a local error; the
 * first failure ends the walk, and its return value is the report's
 * result. */

typedef struct lvctx {
    const patient_log_verify_opts *o;
    patient_log_report *r;
    int fd;
    lreader rd;                 /* reads on after a bad line, to classify it */
    int have_rd;
    pentry e;
    const uint8_t *line;
    size_t len;
    const lineinfo *li;         /* what the workers computed for the line */
    uint64_t line_no, next;     /* lines read; the seq the next entry must have */
    char prev_hex[HEX_LEN + 1]; /* hash of the line before (zeros before seq 0) */
    char log_id[HEX_LEN + 1];
    pt_merkle_frontier fr;
} lvctx;

/* Order: the seq must be the next one and prev the hash of the line
 * before; a mismatch is classified (removed, reordered, inserted, which
 * line was edited) by reading on from just after the line. */
static patient_err
lv_order(lvctx *v, uint64_t line_off)
{
    patient_log_report *r = v->r;
    const pentry *e = &v->e;
    uint64_t next = v->next, line_no = v->line_no;
    char a[32], b[32];
    patient_err err;

    if (e->seq == next && strcmp(e->prev, v->prev_hex) == 0)
        return PATIENT_OK;
    if ((err = lr_init(&v->rd, v->fd, line_off + v->len + 1)) != PATIENT_OK)
        return plain(r, err);
    v->have_rd = 1;
    if (e->seq > next) {
        int later = seq_appears_later(&v->rd, next);
        snprintf(a, sizeof a, "%llu", (unsigned long long)next);
        snprintf(b, sizeof b, "%llu", (unsigned long long)e->seq);
        return later ? vfail(r, PATIENT_LOG_REORDERED, PATIENT_ERR_CHAIN, line_no, 1, next, a, b,
                             "seq %llu appears later in the file: entries were reordered",
                             (unsigned long long)next)
                     : vfail(r, PATIENT_LOG_REMOVED, PATIENT_ERR_CHAIN, line_no, 1, next, a, b,
                             "seq %llu is missing: entries were removed",
                             (unsigned long long)next);
    }
    if (e->seq < next) {
        snprintf(a, sizeof a, "%llu", (unsigned long long)next);
        snprintf(b, sizeof b, "%llu", (unsigned long long)e->seq);
        return vfail(r, PATIENT_LOG_INSERTED, PATIENT_ERR_CHAIN, line_no, 1, e->seq, a, b,
                     "seq %llu appears a second time: a line was inserted",
                     (unsigned long long)e->seq);
    }
    {
        /* Either the line before changed, or this line's prev did. If the
         * next line chains to this one, it was the line before; with no
         * next line, it is blamed. */
        uint8_t *l2, here[HASH_LEN];
        size_t len2;
        int nl2, this_one = 0;
        uint64_t off2;
        char here_hex[HEX_LEN + 1], found[HEX_LEN + 1];
        cJSON *n2 = NULL;

        if (next == 0)
            return vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no, 1, next, v->prev_hex,
                         e->prev, "the prev of seq 0 must be 64 zeros");
        if ((err = patient_sha256(v->line, v->len, here)) != PATIENT_OK)
            return plain(r, err);
        pt_hex(here, HASH_LEN, here_hex);
        snprintf(found, sizeof found, "%s", e->prev);
        if (lr_next(&v->rd, &l2, &len2, &nl2, &off2) == PATIENT_OK && l2 != NULL &&
            pt_json_parse((const char *)l2, len2, &n2) == PATIENT_OK) {
            const char *p2 = pt_json_str(n2, "prev");
            this_one = p2 == NULL || strcmp(p2, here_hex) != 0;
        }
        cJSON_Delete(n2);
        if (this_one)
            return vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no, 1, next, v->prev_hex,
                         found, "the prev of seq %llu was edited", (unsigned long long)next);
        return vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, line_no - 1, 1, next - 1, found,
                     v->prev_hex,
                     "seq %llu was edited: its hash no longer matches the prev of seq %llu",
                     (unsigned long long)(next - 1), (unsigned long long)next);
    }
}

/* Kind: a checkpoint against the tree so far; a change entry (deep)
 * against its descriptor and (with a key) the descriptor's signature. */
static patient_err
lv_kind(lvctx *v)
{
    patient_log_report *r = v->r;
    const patient_log_verify_opts *o = v->o;
    const pentry *e = &v->e;
    patient_err err;

    if (e->kind == PATIENT_LOG_KIND_CHECKPOINT) {
        if ((err = verify_checkpoint(e, v->line_no, &v->fr, v->log_id, o, r)))
            return err;
        r->checkpoints++;
        r->last_checkpoint_seq = e->seq;
        (void)pt_merkle_frontier_root(&v->fr, r->last_checkpoint_root);
        r->unsigned_tail = 0;
        return PATIENT_OK;
    }
    if (e->kind == PATIENT_LOG_KIND_CHANGE) {
        patient_jws *j = NULL;
        const char *bad = NULL;
        if (o->deep && (err = change_mismatch(e, o->pub ? &j : NULL, &bad)) != PATIENT_OK)
            return plain(r, err);
        if (bad)
            return vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, v->line_no, 1, e->seq, NULL,
                         bad, "seq %llu was edited: its %s differs from the signed descriptor",
                         (unsigned long long)e->seq, bad);
        if (j) {
            err = patient_jws_verify(j, o->pub);
            patient_jws_free(j);
            if (err)
                return vfail(r, PATIENT_LOG_FORGED, err, v->line_no, 1, e->seq, NULL, NULL,
                             "seq %llu: the change descriptor's signature does not verify with "
                             "the pinned key",
                             (unsigned long long)e->seq);
        }
        r->changes++;
    } else {
        r->events++;
    }
    r->unsigned_tail++;
    return PATIENT_OK;
}

/* Fold: the line (hashed by the workers) into the hash chain and the
 * Merkle tree; at the trusted checkpoint's size, the tree must have its
 * root. */
static patient_err
lv_fold(lvctx *v)
{
    patient_log_report *r = v->r;
    const patient_log_verify_opts *o = v->o;
    uint8_t h[HASH_LEN];
    patient_err err;

    if ((err = pt_merkle_frontier_add(&v->fr, v->li->leaf)))
        return plain(r, err);
    pt_hex(v->li->chain, HASH_LEN, v->prev_hex);
    if (v->next == 0)
        memcpy(v->log_id, v->prev_hex, sizeof v->log_id);
    v->next++;
    r->entries++;
    if (o->have_trusted && v->fr.size == o->trusted_size) {
        if ((err = pt_merkle_frontier_root(&v->fr, h)))
            return plain(r, err);
        if (sodium_memcmp(h, o->trusted_root, HASH_LEN) != 0)
            return vfail(r, PATIENT_LOG_REWRITTEN, PATIENT_ERR_LOG_CORRUPT, v->line_no, 1,
                         v->e.seq, NULL, NULL,
                         "the first %llu entries do not hash to the trusted checkpoint's root",
                         (unsigned long long)o->trusted_size);
    }
    return PATIENT_OK;
}

/* Line bi of a batch: frame, parse, order, kind, fold. */
static patient_err
lv_line(lvctx *v, const lbatch *bat, size_t bi)
{
    patient_log_report *r = v->r;
    patient_err err;

    v->line = bat->line[bi];
    v->len = bat->len[bi];
    v->li = &bat->info[bi];
    v->line_no++;
    if (bat->torn && bi + 1 == bat->n)
        return vfail(r, PATIENT_LOG_TRUNCATED, PATIENT_ERR_LOG_CORRUPT, v->line_no, 1, v->next,
                     "\\n", NULL,
                     "torn tail: the last %zu bytes are an incomplete line (an append that "
                     "never completed; opening the log for writing cuts it off)",
                     v->len);
    if (v->li->hash_err)
        return plain(r, PATIENT_ERR_CRYPTO);
    if (v->li->parsed) {
        /* A change or event the workers scanned: all that the checks below
         * read of it without deep (which scans here). */
        v->e.seq = v->li->seq;
        v->e.kind = v->li->kind;
        v->e.prev = v->li->prev;
    } else if ((err = pentry_parse(v->line, v->len, &v->e)) != PATIENT_OK) {
        if (err == PATIENT_ERR_UNSUPPORTED)
            return vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_UNSUPPORTED, v->line_no, 1,
                         v->next, NULL, v->e.kind_s, "entry of an unknown kind");
        return vfail(r, PATIENT_LOG_EDITED, PATIENT_ERR_CHAIN, v->line_no, 1, v->next, NULL, NULL,
                     "line is not a log entry (%s): it was edited", v->e.why);
    }
    if ((err = lv_order(v, lb_line_off(bat, bi))) || (err = lv_kind(v)))
        return err;
    return lv_fold(v);
}

/* End: the log covers the trusted checkpoint and, when asked, ends with a
 * checkpoint of its own. */
static patient_err
lv_end(lvctx *v)
{
    patient_log_report *r = v->r;
    const patient_log_verify_opts *o = v->o;
    uint64_t next = v->next;

    if (o->have_trusted && next < o->trusted_size) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%llu", (unsigned long long)o->trusted_size);
        snprintf(b, sizeof b, "%llu", (unsigned long long)next);
        return vfail(r, PATIENT_LOG_TRUNCATED, PATIENT_ERR_LOG_CORRUPT, v->line_no, 1, next, a, b,
                     "log ends after %llu entries but the trusted checkpoint covers %llu",
                     (unsigned long long)next, (unsigned long long)o->trusted_size);
    }
    if (o->require_final_checkpoint && r->unsigned_tail > 0)
        return vfail(r, PATIENT_LOG_TRUNCATED, PATIENT_ERR_LOG_CORRUPT, v->line_no, 1,
                     next ? next - 1 : 0, "checkpoint", NULL,
                     "log does not end with a checkpoint (%llu entries after the last one): "
                     "it may have been truncated",
                     (unsigned long long)r->unsigned_tail);
    r->result = PATIENT_OK;
    snprintf(r->message, sizeof r->message, "%llu entries, %llu checkpoints verified%s",
             (unsigned long long)r->entries, (unsigned long long)r->checkpoints,
             o->pub ? "" : " (signatures not checked: no key given)");
    return PATIENT_OK;
}

patient_err
patient_log_verify(const char *path, const patient_log_verify_opts *opts,
                   patient_log_report *r)
{
    static const patient_log_verify_opts none = {0};
    patient_log_verify_opts ob;
    lvctx v = {.o = opts ? opts : &none, .r = r, .fd = -1};
    lscan ls;
    lbatch *bat;
    patient_err err;

    memset(r, 0, sizeof *r);
    memset(&ls, 0, sizeof ls);
    if (opts && (err = PT_OPTS_TAKE(&ob, opts)) != PATIENT_OK) {
        r->result = err;
        snprintf(r->message, sizeof r->message, "options of an unknown size");
        return err;
    }
    if (opts)
        v.o = &ob;
    pt_merkle_frontier_init(&v.fr);
    memcpy(v.prev_hex, zero_prev, sizeof v.prev_hex);
    r->signatures_checked = v.o->pub != NULL;
    r->entry_signatures_checked = v.o->pub != NULL && v.o->deep;
    if ((err = open_read(path, &v.fd))) {
        r->result = err;
        snprintf(r->message, sizeof r->message, "cannot open the log: %s", patient_strerror(err));
        return err;
    }
    /* While the workers hash and scan one batch, this thread reads the
     * next, then chains the lines of the first in order. Deep checks need
     * every change entry whole here, so the workers only hash then. */
    if ((err = ls_open(&ls, v.fd, LS_CHAIN | (v.o->deep ? 0 : LS_SCAN)))) {
        plain(r, err);
        goto out;
    }
    if (v.o->have_trusted && v.o->trusted_size == 0) {
        uint8_t empty[HASH_LEN];
        if ((err = pt_merkle_frontier_root(&v.fr, empty)))
            plain(r, err);
        else if (sodium_memcmp(empty, v.o->trusted_root, HASH_LEN) != 0)
            err = vfail(r, PATIENT_LOG_REWRITTEN, PATIENT_ERR_LOG_CORRUPT, 0, 0, 0, NULL, NULL,
                        "trusted checkpoint of size 0 has a root other than the empty tree's");
    }
    while (err == PATIENT_OK) {
        if ((err = ls_next(&ls, &bat))) {
            plain(r, err);
            break;
        }
        if (bat == NULL)
            break;
        /* A bad line ends the walk; lv_order's reader, which diagnosed
         * it, is freed below. */
        for (size_t bi = 0; err == PATIENT_OK && bi < bat->n; bi++)
            err = lv_line(&v, bat, bi);
        if (err == PATIENT_OK && bat->too_long)
            err = vfail(r, PATIENT_LOG_MALFORMED, PATIENT_ERR_LOG_CORRUPT, v.line_no + 1, 1,
                        v.next, NULL, NULL, "line longer than %u bytes", PATIENT_LOG_LINE_MAX);
    }
    if (err == PATIENT_OK)
        err = lv_end(&v);
out:
    /* The report's result is the code returned, always: a phase that
     * failed without saying why (a hash inside a checkpoint's check) is a
     * local error, not "ok" with a failing return. */
    if (err && r->result == PATIENT_OK)
        plain(r, err);
    memcpy(r->log_id, v.log_id, sizeof r->log_id);
    pentry_free(&v.e);
    if (v.have_rd)
        lr_free(&v.rd);
    ls_close(&ls);
    close(v.fd);
    return err;
}
