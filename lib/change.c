/* Change descriptors: issuing (patient_hop_*) and parsing
 * (patient_change_*). The payload is specified in docs/format/change.md. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include <patient/change.h>
#include <patient/log.h>
#include <patient/tls.h>
#include "change_int.h"
#include "chunk.h"
#include "hash_bg.h"
#include "hash_int.h"
#include "jws_int.h"
#include "key_int.h"
#include "time_int.h"
#include "url_int.h"
#include "util.h"

/* Our objects have at most a dozen members; more is hostile. */
#define MAX_MEMBERS 64

struct hop_edit {
    patient_edit e; /* insert, reason, rule, note owned */
    int disclose;
};

struct patient_hop {
    const patient_seckey *sk;
    char *name, *service, *disclosure, *url;
    const uint8_t *in; /* borrowed */
    size_t in_len;
    unsigned hopno;
    int has_prev;
    uint8_t prev[PATIENT_SHA256_BYTES];
    struct hop_edit *edits;
    size_t n, cap;
    int has_tls, tls_verified;
    char *tls_version, *tls_cipher;
    int finished;
    /* After a signing finish: the descriptor, and the fields an audit log
     * entry repeats from it (patient_log_append_hop), so that the log need
     * not parse what was just built. */
    char *value;
    char when[PATIENT_TIME_BYTES];
    char kid[PATIENT_KEYID_HEX];
    size_t entry_len; /* its entry's line at any seq (hop_entry_fits) */
    /* The descriptors that arrived, parsed: a hop that withholds bytes maps
     * its deletions back through them to the origin's chunks. */
    patient_change *prevc[PATIENT_MAX_HOPS];
    size_t nprev;
};

/* ---- validators (shared by issuing and parsing) ---- */

static int
valid_code(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= PATIENT_MAX_CODE ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

static int
valid_service(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= PATIENT_MAX_SERVICE || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return n > 0;
}

/* UTF-8 (no overlongs, surrogates or values past U+10FFFF), no control
 * characters, 1..max bytes. */
static int
valid_text(const char *str, size_t max)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, len;

    if (s == NULL || (len = strlen(str)) == 0 || len > max)
        return 0;
    while (i < len) {
        unsigned c = s[i], need, cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, cp = c & 0x07;
        else
            return 0;
        if (len - i <= need)
            return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0x80 && cp <= 0x9f))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* Absolute http(s) URL of visible ASCII. */
static int
valid_url(const char *s)
{
    size_t n, skip;

    if (s == NULL || (n = strlen(s)) > PATIENT_MAX_URL)
        return 0;
    if ((skip = pt_url_scheme_len(s, PT_URL_HTTP_S)) == 0)
        return 0;
    if (n == skip || s[skip] == '/')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* Visible ASCII, no spaces, no quotes or backslashes. */
static int
valid_token(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n]; n++)
        if (n >= max || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f ||
            s[n] == '"' || s[n] == '\\')
            return 0;
    return n > 0;
}

static void
trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t' || **s == '\r' || **s == '\n'))
        (*s)++, (*len)--;
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' ||
                        (*s)[*len - 1] == '\r' || (*s)[*len - 1] == '\n'))
        (*len)--;
}

static void
hop_edit_clear(struct hop_edit *h)
{
    free((void *)h->e.insert);
    free((void *)h->e.reason);
    free((void *)h->e.rule);
    free((void *)h->e.note);
}

/* ---- issuing ---- */

void
patient_hop_free(patient_hop *hop)
{
    size_t i;

    if (hop == NULL)
        return;
    for (i = 0; i < hop->n; i++)
        hop_edit_clear(&hop->edits[i]);
    free(hop->edits);
    free(hop->name);
    free(hop->service);
    free(hop->disclosure);
    free(hop->url);
    free(hop->tls_version);
    free(hop->tls_cipher);
    free(hop->value);
    for (size_t k = 0; k < hop->nprev; k++)
        patient_change_free(hop->prevc[k]);
    free(hop);
}

patient_err
patient_hop_begin(const patient_hop_opts *opts, patient_hop **out)
{
    patient_hop_opts o;
    patient_hop *h = NULL;
    patient_change *c = NULL;
    patient_err err = PATIENT_ERR_ARG;
    size_t i;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if (opts == NULL || PT_OPTS_TAKE(&o, opts) != PATIENT_OK)
        return PATIENT_ERR_ARG;
    if (o.sk == NULL || !valid_text(o.name, PATIENT_MAX_NAME) || !valid_service(o.service) ||
        (o.disclosure && !valid_url(o.disclosure)) || !valid_url(o.url) ||
        (o.in == NULL && o.in_len) || (o.prev == NULL && o.nprev))
        return PATIENT_ERR_ARG;
    if (o.in_len > PATIENT_MAX_BODY)
        return PATIENT_ERR_TOO_LARGE;
    if (o.nprev >= PATIENT_MAX_HOPS)
        return PATIENT_ERR_LIMIT;
    if ((h = calloc(1, sizeof *h)) == NULL)
        return PATIENT_ERR_NOMEM;
    h->sk = o.sk;
    h->in = o.in;
    h->in_len = o.in_len;
    h->hopno = (unsigned)o.nprev + 1;
    if ((h->name = strdup(o.name)) == NULL || (h->service = strdup(o.service)) == NULL ||
        (h->url = strdup(o.url)) == NULL ||
        (o.disclosure && (h->disclosure = strdup(o.disclosure)) == NULL)) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < o.nprev; i++) {
        if (o.prev[i] == NULL) {
            err = PATIENT_ERR_ARG;
            goto out;
        }
        if ((err = patient_change_parse(o.prev[i], strlen(o.prev[i]), &c)))
            goto out;
        if (i + 1 == o.nprev) {
            memcpy(h->prev, c->value_hash, sizeof h->prev);
            h->has_prev = 1;
        }
        h->prevc[h->nprev++] = c;
        c = NULL;
    }
    *out = h;
    h = NULL;
    err = PATIENT_OK;
out:
    patient_change_free(c);
    patient_hop_free(h);
    return err;
}

patient_err
patient_hop_add_edit(patient_hop *hop, size_t offset, size_t delete_len, const uint8_t *insert,
                     size_t insert_len, const char *reason, const char *rule, const char *note,
                     int disclose_deleted)
{
    struct hop_edit he = {0};

    if (hop == NULL)
        return PATIENT_ERR_ARG;
    if (hop->finished)
        return PATIENT_ERR_STATE;
    if (offset > hop->in_len || delete_len > hop->in_len - offset)
        return PATIENT_ERR_EDIT_RANGE;
    if ((delete_len == 0 && insert_len == 0) || (insert == NULL && insert_len) ||
        !valid_code(reason) || !valid_code(rule) || (note && !valid_text(note, PATIENT_MAX_NOTE)))
        return PATIENT_ERR_ARG;
    if (insert_len > PATIENT_MAX_BODY)
        return PATIENT_ERR_TOO_LARGE;
    if (hop->n >= PATIENT_MAX_EDITS)
        return PATIENT_ERR_LIMIT;
    if (hop->n == hop->cap) {
        size_t ncap = hop->cap ? hop->cap * 2 : 8;
        struct hop_edit *p;
        if (ncap > PATIENT_MAX_EDITS)
            ncap = PATIENT_MAX_EDITS;
        if ((p = realloc(hop->edits, ncap * sizeof *p)) == NULL)
            return PATIENT_ERR_NOMEM;
        hop->edits = p;
        hop->cap = ncap;
    }
    he.e.offset = offset;
    he.e.delete_len = delete_len;
    he.e.insert_len = insert_len;
    he.disclose = disclose_deleted != 0;
    if ((insert_len && (he.e.insert = malloc(insert_len)) == NULL) ||
        (he.e.reason = strdup(reason)) == NULL || (he.e.rule = strdup(rule)) == NULL ||
        (note && (he.e.note = strdup(note)) == NULL)) {
        hop_edit_clear(&he);
        return PATIENT_ERR_NOMEM;
    }
    if (insert_len)
        memcpy((void *)he.e.insert, insert, insert_len);
    hop->edits[hop->n++] = he;
    return PATIENT_OK;
}

/* Upstream TLS facts: a version the verifier can rank with a cipher, or
 * "none" (plain HTTP upstream) without a cipher and never verified. */
static int
valid_tls(const char *version, const char *cipher, int verified)
{
    if (version && strcmp(version, PATIENT_TLS_NONE) == 0)
        return cipher == NULL && !verified;
    return patient_tls_version_rank(version) != 0 && valid_token(cipher, PATIENT_MAX_TLS_FIELD);
}

patient_err
patient_hop_set_tls(patient_hop *hop, const char *version, const char *cipher, int verified)
{
    char *v, *c;

    if (hop == NULL)
        return PATIENT_ERR_ARG;
    if (hop->finished)
        return PATIENT_ERR_STATE;
    if (!valid_tls(version, cipher, verified))
        return PATIENT_ERR_ARG;
    c = NULL;
    if ((v = strdup(version)) == NULL || (cipher && (c = strdup(cipher)) == NULL)) {
        free(v);
        return PATIENT_ERR_NOMEM;
    }
    free(hop->tls_version);
    free(hop->tls_cipher);
    hop->tls_version = v;
    hop->tls_cipher = c;
    hop->tls_verified = verified != 0;
    hop->has_tls = 1;
    return PATIENT_OK;
}

static int
cmp_edit(const void *a, const void *b)
{
    const struct hop_edit *x = a, *y = b;
    return x->e.offset < y->e.offset ? -1 : x->e.offset > y->e.offset;
}

/* The descriptor is written directly, not built as a cJSON tree and
 * printed: the same bytes cJSON_PrintUnformatted made of the same members
 * in the same order (strings with cJSON's escapes, PT_JSON_ESC_SHORT;
 * integers by pt_buf_put_cjson_uint; check_change tests it), for less
 * CPU on a middlebox's path. Each put_* appends `"key":value` after a
 * separator sep (',' or 0 for the first member). */
static patient_err
put_key(pt_buf *b, char sep, const char *k)
{
    patient_err err;

    if (sep && (err = pt_buf_append(b, &sep, 1)))
        return err;
    if ((err = pt_buf_put_json_strn(b, k, SIZE_MAX, PT_JSON_ESC_SHORT)))
        return err;
    return pt_buf_append(b, ":", 1);
}

static patient_err
put_str(pt_buf *b, char sep, const char *k, const char *v)
{
    patient_err err = put_key(b, sep, k);
    return err ? err : pt_buf_put_json_strn(b, v, SIZE_MAX, PT_JSON_ESC_SHORT);
}

static patient_err
put_num(pt_buf *b, char sep, const char *k, uint64_t v)
{
    patient_err err = put_key(b, sep, k);
    return err ? err : pt_buf_put_cjson_uint(b, v);
}

static patient_err
put_sri(pt_buf *b, char sep, const char *k, const uint8_t h[PATIENT_SHA256_BYTES])
{
    char sri[PATIENT_SRI_BYTES];

    patient_sri_encode(h, sri);
    return put_str(b, sep, k, sri);
}

static patient_err
put_b64(pt_buf *b, char sep, const char *k, const uint8_t *p, size_t n)
{
    patient_err err;

    if ((err = put_key(b, sep, k)) || (err = pt_buf_append(b, "\"", 1)) ||
        (err = pt_buf_put_b64(b, p, n, 0)))
        return err;
    return pt_buf_append(b, "\"", 1);
}

/* ,"k":{"integrity":"sha256-...","size":N} */
static patient_err
put_part(pt_buf *b, const char *k, const uint8_t h[PATIENT_SHA256_BYTES], size_t size)
{
    patient_err err;

    if ((err = put_key(b, ',', k)) || (err = pt_buf_append(b, "{", 1)) ||
        (err = put_sri(b, 0, "integrity", h)) || (err = put_num(b, ',', "size", size)))
        return err;
    return pt_buf_append(b, "}", 1);
}

/* "chunks": when the hop withholds deleted bytes, the leaves of the origin
 * chunks those deletions touch, so that a verifier can check every other
 * byte against the origin's chunk root. When the arriving chain cannot be
 * mapped back to the origin (an earlier hop withheld bytes without chunks),
 * there is nothing sound to sign: the member is left out and the hop is
 * only attested. */
static patient_err
put_chunks(const patient_hop *hop, const patient_edit *e, pt_buf *b)
{
    patient_edit *del = NULL;
    size_t nd = 0, n = 0;
    uint64_t *idx = NULL;
    uint8_t (*val)[PATIENT_SHA256_BYTES] = NULL, (*kept)[PATIENT_SHA256_BYTES] = NULL;
    patient_err err = PATIENT_ERR_NOMEM;

    for (size_t i = 0; i < hop->n; i++)
        nd += e[i].delete_len && !hop->edits[i].disclose;
    if (nd == 0)
        return PATIENT_OK;
    if ((del = malloc(nd * sizeof *del)) == NULL)
        return PATIENT_ERR_NOMEM;
    nd = 0;
    for (size_t i = 0; i < hop->n; i++)
        if (e[i].delete_len && !hop->edits[i].disclose)
            del[nd++] = e[i];
    err = pt_chunk_leaves_for_hop(hop->in, hop->in_len,
                                  (const patient_change *const *)hop->prevc, hop->nprev, del, nd,
                                  &idx, &val, &kept, &n);
    if (err == PATIENT_ERR_NOT_FOUND || err == PATIENT_ERR_HASH) {
        err = PATIENT_OK;
        goto out;
    }
    if (err != PATIENT_OK || n == 0)
        goto out;
    if ((err = put_key(b, ',', "chunks")) || (err = pt_buf_append(b, "[", 1)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if ((err = pt_buf_append(b, i ? ",{" : "{", i ? 2 : 1)) ||
            (err = put_num(b, 0, "index", idx[i])) || (err = put_sri(b, ',', "kept", kept[i])) ||
            (err = put_b64(b, ',', "leaf", val[i], sizeof val[i])) ||
            (err = pt_buf_append(b, "}", 1)))
            goto out;
    }
    err = pt_buf_append(b, "]", 1);
out:
    free(del);
    free(idx);
    free(val);
    free(kept);
    return err;
}

/* Sort and check the edits of a hop that has some: *e gets them in
 * order (malloc'd), *olen the output size. */
static patient_err
hop_edits(patient_hop *hop, patient_edit **e, size_t *olen)
{
    size_t i;

    qsort(hop->edits, hop->n, sizeof *hop->edits, cmp_edit);
    if ((*e = malloc(hop->n * sizeof **e)) == NULL)
        return PATIENT_ERR_NOMEM;
    for (i = 0; i < hop->n; i++)
        (*e)[i] = hop->edits[i].e;
    return pt_edits_check(*e, hop->n, hop->in_len, PATIENT_ERR_ARG, olen);
}

/* ---- the audit log's change entry (docs/format/log.md) ---- */

static size_t
digits(uint64_t v)
{
    size_t n = 1;

    while (v >= 10)
        v /= 10, n++;
    return n;
}

/* The fixed text of a change line, in the writer's order (log_write.c:
 * write_entry around append_change's members), with the lengths of what
 * goes between. */
#define LIT(s) (sizeof(s) - 1)

size_t
pt_change_entry_len(const pt_entry_size *s, uint64_t seq)
{
    size_t n = 0;

    n += LIT("{\"seq\":") + digits(seq) + LIT(",\"prev\":\"") + 2 * PATIENT_SHA256_BYTES +
         LIT("\",\"kind\":\"change\"");
    n += LIT(",\"time\":") + pt_json_str_len(s->at, 0) + LIT(",\"url\":") +
         pt_json_str_len(s->url, 0) + LIT(",\"hop\":") + digits(s->hop) +
         LIT(",\"by\":{\"name\":") + pt_json_str_len(s->name, 0) + LIT(",\"kid\":\"") +
         strlen(s->kid) + LIT("\"},\"reasons\":[");
    /* every reason and rule quoted, each list comma-separated */
    n += s->codes_len + 4 * s->nedits + (s->nedits ? 2 * (s->nedits - 1) : 0);
    n += LIT("],\"rules\":[") + LIT("],\"deleted\":") + digits(s->deleted) +
         LIT(",\"inserted\":") + digits(s->inserted) + LIT(",");
    if (s->tls && *s->tls)
        n += LIT("\"tls\":") + pt_json_str_len(s->tls, 0) + LIT(",");
    n += LIT("\"jws\":") + s->jws_len + 2 + LIT("}");
    return n;
}

void
pt_change_entry_tls(char out[PT_ENTRY_TLS_MAX], const char *version, const char *cipher,
                    int verified)
{
    if (version == NULL)
        out[0] = 0;
    else if (cipher == NULL)
        snprintf(out, PT_ENTRY_TLS_MAX, "%s", version);
    else
        snprintf(out, PT_ENTRY_TLS_MAX, "%s %s %s", version, cipher,
                 verified ? "verified" : "unverified");
}

/* The change entry of a descriptor of jws_len bytes this hop would sign
 * with edits e (sorted) fits one log line whatever its seq: else
 * PATIENT_ERR_LIMIT. Checked before the descriptor leaves the hop, so
 * that the log never refuses what a hop signed (after the change was
 * made). The count is kept in hop->entry_len: the log's writer sizes the
 * line by it instead of counting again. */
static patient_err
hop_entry_fits(patient_hop *hop, const patient_edit *e, size_t jws_len)
{
    char tls[PT_ENTRY_TLS_MAX];
    pt_entry_size s = {.jws_len = jws_len, .at = hop->when, .url = hop->url,
                       .name = hop->name, .kid = hop->kid, .hop = hop->hopno,
                       .nedits = hop->n, .tls = tls};

    pt_change_entry_tls(tls, hop->has_tls ? hop->tls_version : NULL, hop->tls_cipher,
                        hop->tls_verified);
    for (size_t i = 0; i < hop->n; i++) {
        s.codes_len += strlen(e[i].reason) + strlen(e[i].rule);
        s.deleted += e[i].delete_len;
        s.inserted += e[i].insert_len;
    }
    hop->entry_len = pt_change_entry_len(&s, PT_ENTRY_ANY_SEQ);
    return hop->entry_len > PATIENT_LOG_LINE_MAX ? PATIENT_ERR_LIMIT : PATIENT_OK;
}

/* Build and sign the descriptor of a hop whose input and output hash to
 * hin and hout; keeps a copy of it in the hop. */
static patient_err
hop_sign(patient_hop *hop, time_t at, const patient_edit *e, size_t olen,
         const uint8_t hin[PATIENT_SHA256_BYTES], const uint8_t hout[PATIENT_SHA256_BYTES],
         char **value)
{
    uint8_t hdel[PATIENT_SHA256_BYTES];
    size_t i, guess = 1024, jlen = 0;
    pt_buf b = {0};
    char *jws = NULL;
    patient_pubkey pk;
    patient_err err;

    patient_seckey_pubkey(hop->sk, &pk);
    patient_keyid_hex(pk.id, hop->kid);
    pt_time_format(at, hop->when);
    /* One allocation for the usual descriptor: the strings, and base64 of
     * what the edits carry. */
    guess += strlen(hop->url) + strlen(hop->name) + (hop->disclosure ? strlen(hop->disclosure) : 0);
    for (i = 0; i < hop->n && guess < ((size_t)1 << 20); i++)
        guess += 160 + e[i].insert_len / 3 * 4 + (hop->edits[i].disclose ? e[i].delete_len / 3 * 4 : 0);
    if ((err = pt_buf_reserve(&b, guess)) || (err = pt_buf_append(&b, "{", 1)) ||
        (err = put_num(&b, 0, "patient", 1)) || (err = put_str(&b, ',', "type", "change")) ||
        (err = put_str(&b, ',', "url", hop->url)) || (err = put_num(&b, ',', "hop", hop->hopno)) ||
        (hop->has_prev && (err = put_sri(&b, ',', "prev", hop->prev))) ||
        (err = put_str(&b, ',', "at", hop->when)) || (err = put_key(&b, ',', "by")) ||
        (err = pt_buf_append(&b, "{", 1)) || (err = put_str(&b, 0, "name", hop->name)) ||
        (err = put_str(&b, ',', "kid", hop->kid)) ||
        (err = put_str(&b, ',', "service", hop->service)) ||
        (hop->disclosure && (err = put_str(&b, ',', "disclosure", hop->disclosure))) ||
        (err = pt_buf_append(&b, "}", 1)) || (err = put_part(&b, "in", hin, hop->in_len)) ||
        (err = put_part(&b, "out", hout, olen)) || (err = put_key(&b, ',', "edits")) ||
        (err = pt_buf_append(&b, "[", 1)))
        goto out;
    for (i = 0; i < hop->n; i++) {
        const patient_edit *x = &e[i];
        if ((err = pt_buf_append(&b, i ? ",{" : "{", i ? 2 : 1)) ||
            (err = put_num(&b, 0, "offset", x->offset)) ||
            (err = put_num(&b, ',', "delete", x->delete_len)))
            goto out;
        if (x->delete_len) {
            if ((err = patient_sha256(hop->in + x->offset, x->delete_len, hdel)) ||
                (err = put_sri(&b, ',', "deleted_hash", hdel)) ||
                (hop->edits[i].disclose &&
                 (err = put_b64(&b, ',', "deleted", hop->in + x->offset, x->delete_len))))
                goto out;
        }
        if ((x->insert_len && (err = put_b64(&b, ',', "insert", x->insert, x->insert_len))) ||
            (err = put_str(&b, ',', "reason", x->reason)) ||
            (err = put_str(&b, ',', "rule", x->rule)) ||
            (x->note && (err = put_str(&b, ',', "note", x->note))) ||
            (err = pt_buf_append(&b, "}", 1)))
            goto out;
    }
    if ((err = pt_buf_append(&b, "]", 1)) || (err = put_chunks(hop, e, &b)))
        goto out;
    if (hop->has_tls) {
        if ((err = put_key(&b, ',', "tls")) || (err = pt_buf_append(&b, "{", 1)) ||
            (err = put_str(&b, 0, "version", hop->tls_version)) ||
            (hop->tls_cipher && (err = put_str(&b, ',', "cipher", hop->tls_cipher))) ||
            (err = put_key(&b, ',', "verified")) ||
            (err = pt_buf_append(&b, hop->tls_verified ? "true}" : "false}",
                                 hop->tls_verified ? 5 : 6)))
            goto out;
    }
    if ((err = pt_buf_append(&b, "}", 1)))
        goto out;
    /* A payload longer than the largest JWS cannot make one: refused
     * before it is signed, so that a body's worth of inserted bytes is
     * not signed only to be thrown away. */
    if (b.len > PATIENT_JWS_MAX) {
        err = PATIENT_ERR_TOO_LARGE;
        goto out;
    }
    if ((err = pt_jws_sign_uncapped(hop->sk, PATIENT_CHANGE_TYP, b.data, b.len, &jws)))
        goto out;
    /* Refused before the descriptor leaves the hop, judged on what was
     * signed: one the next hop could not parse (TOO_LARGE), one whose
     * audit log entry would not fit a line (LIMIT, as for an edit past
     * PATIENT_MAX_EDITS), a payload patient_jws_sign would not sign
     * (TOO_LARGE), in that order. */
    jlen = strlen(jws);
    err = jlen > PATIENT_JWS_MAX ? PATIENT_ERR_TOO_LARGE : hop_entry_fits(hop, e, jlen);
    if (err == PATIENT_OK && b.len > PATIENT_JWS_PAYLOAD_MAX)
        err = PATIENT_ERR_TOO_LARGE;
    if (err)
        goto out;
    err = PATIENT_ERR_NOMEM;
    if ((hop->value = strdup(jws)) == NULL)
        goto out;
    *value = jws;
    jws = NULL;
    err = PATIENT_OK;
out:
    pt_buf_free(&b);
    free(jws);
    return err;
}

patient_err
patient_hop_finish(patient_hop *hop, time_t at, uint8_t **out, size_t *out_len, char **value)
{
    patient_edit *e = NULL;
    uint8_t hin[PATIENT_SHA256_BYTES], hout[PATIENT_SHA256_BYTES];
    uint8_t *body = NULL;
    size_t olen = 0;
    patient_err err;

    if (out == NULL || out_len == NULL || value == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    *out_len = 0;
    *value = NULL;
    if (hop == NULL)
        return PATIENT_ERR_ARG;
    if (hop->finished)
        return PATIENT_ERR_STATE;
    hop->finished = 1;
    if (hop->n == 0) {
        /* Nothing changed: nothing to sign. */
        if ((body = malloc(hop->in_len ? hop->in_len : 1)) == NULL)
            return PATIENT_ERR_NOMEM;
        if (hop->in_len)
            memcpy(body, hop->in, hop->in_len);
        *out = body;
        *out_len = hop->in_len;
        return PATIENT_OK;
    }
    if ((err = hop_edits(hop, &e, &olen)) ||
        (err = pt_edits_build(hop->in, hop->in_len, e, hop->n, olen, &body, hin, hout)) ||
        (err = hop_sign(hop, at, e, olen, hin, hout, value)))
        goto out;
    *out = body;
    *out_len = olen;
    body = NULL;
out:
    free(body);
    free(e);
    return err;
}

struct patient_hop_hashes {
    patient_sha256_ctx *in, *out;
    uint64_t in_len, out_len;
    int forked;      /* out has its own state (set by the first _in or _out) */
    patient_err err; /* sticky: a failed update spoils the hashes */
    pt_hash_bg *bg;  /* background: in and out are updated by its thread */
};

patient_err
patient_hop_hashes_new(patient_hop_hashes **out)
{
    patient_hop_hashes *hh;
    patient_err err;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if ((hh = calloc(1, sizeof *hh)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = patient_sha256_init(&hh->in)) || (err = patient_sha256_init(&hh->out))) {
        patient_hop_hashes_free(hh);
        return err;
    }
    *out = hh;
    return PATIENT_OK;
}

static patient_err
hashes_add(patient_hop_hashes *hh, patient_sha256_ctx *ctx, uint64_t *len, const void *p,
           size_t n)
{
    if (hh == NULL || (p == NULL && n > 0))
        return PATIENT_ERR_ARG;
    if (hh->err != PATIENT_OK)
        return hh->err;
    if (ctx == NULL)
        return PATIENT_ERR_STATE; /* already used by a finish */
    if (n > PATIENT_MAX_BODY - *len)
        return hh->err = PATIENT_ERR_TOO_LARGE;
    if (n && (hh->err = hh->bg ? pt_hash_bg_add(hh->bg, ctx == hh->out, p, n)
                               : patient_sha256_update(ctx, p, n)) != PATIENT_OK)
        return hh->err;
    *len += n;
    return PATIENT_OK;
}

/* The end of the common prefix: from here on input and output are
 * hashed apart, the output starting from the prefix's state. */
static patient_err
hashes_fork(patient_hop_hashes *hh)
{
    if (hh == NULL || hh->forked)
        return PATIENT_OK;
    hh->forked = 1;
    if (hh->err == PATIENT_OK && hh->in && hh->out)
        hh->err = hh->bg ? pt_hash_bg_fork(hh->bg) : pt_sha256_copy(hh->out, hh->in);
    return hh->err;
}

patient_err
patient_hop_hashes_in(patient_hop_hashes *hh, const void *p, size_t n)
{
    patient_err err = hashes_fork(hh);
    return err ? err : hashes_add(hh, hh ? hh->in : NULL, hh ? &hh->in_len : NULL, p, n);
}

patient_err
patient_hop_hashes_out(patient_hop_hashes *hh, const void *p, size_t n)
{
    patient_err err = hashes_fork(hh);
    return err ? err : hashes_add(hh, hh ? hh->out : NULL, hh ? &hh->out_len : NULL, p, n);
}

patient_err
patient_hop_hashes_both(patient_hop_hashes *hh, const void *p, size_t n)
{
    patient_err err;

    if (hh == NULL)
        return PATIENT_ERR_ARG;
    if (hh->forked)
        return hh->err ? hh->err : PATIENT_ERR_STATE;
    if ((err = hashes_add(hh, hh->in, &hh->in_len, p, n)) == PATIENT_OK)
        hh->out_len += n;
    return err;
}

patient_err
patient_hop_hashes_background(patient_hop_hashes *hh)
{
    if (hh == NULL)
        return PATIENT_ERR_ARG;
    if (hh->err != PATIENT_OK)
        return hh->err;
    if (hh->in == NULL || hh->out == NULL)
        return PATIENT_ERR_STATE;
    if (hh->bg == NULL)
        hh->err = pt_hash_bg_new(hh->in, hh->out, &hh->bg);
    return hh->err;
}

patient_err
patient_hop_hashes_wait(patient_hop_hashes *hh)
{
    patient_err err;

    if (hh == NULL)
        return PATIENT_ERR_ARG;
    if (hh->bg && (err = pt_hash_bg_wait(hh->bg)) != PATIENT_OK && hh->err == PATIENT_OK)
        hh->err = err;
    return hh->err;
}

void
patient_hop_hashes_free(patient_hop_hashes *hh)
{
    if (hh == NULL)
        return;
    pt_hash_bg_free(hh->bg); /* its thread is done with the contexts */
    patient_sha256_free(hh->in);
    patient_sha256_free(hh->out);
    free(hh);
}

/* The digests of hh, once its byte counts are the hop's sizes. */
static patient_err
hashes_final(patient_hop_hashes *hh, uint64_t in_len, uint64_t out_len,
             uint8_t hin[PATIENT_SHA256_BYTES], uint8_t hout[PATIENT_SHA256_BYTES])
{
    patient_err err;

    if (hh->err != PATIENT_OK)
        return hh->err;
    if (hh->in == NULL || hh->out == NULL)
        return PATIENT_ERR_STATE;
    if (hh->in_len != in_len || hh->out_len != out_len)
        return PATIENT_ERR_HASH;
    if ((err = hashes_fork(hh)) != PATIENT_OK) /* all shared: out = in */
        return err;
    if (hh->bg) {
        /* every queued byte hashed: the contexts are ours (the thread
         * stays for the caller's next queue) */
        err = pt_hash_bg_wait(hh->bg);
        pt_hash_bg_free(hh->bg);
        hh->bg = NULL;
        if (err != PATIENT_OK)
            return hh->err = err;
    }
    err = patient_sha256_final(hh->in, hin); /* frees the context */
    hh->in = NULL;
    if (err == PATIENT_OK)
        err = patient_sha256_final(hh->out, hout);
    hh->out = NULL;
    return err;
}

/* A finish that used hh returns only once hh's thread is done with the
 * caller's bytes, whatever it returns (patient_hop_hashes_background: they
 * are borrowed until then). Its own failure is hh's, sticky. */
static void
hashes_settle(patient_hop_hashes *hh)
{
    if (hh && hh->bg)
        (void)!patient_hop_hashes_wait(hh);
}

/* finish_output (out given, or no hh) and finish_hashed (out NULL, hh
 * given: nothing to compare, the hashes are signed as they are). */
static patient_err
hop_finish_streamed(patient_hop *hop, time_t at, const uint8_t *out, size_t out_len,
                    patient_hop_hashes *hh, char **value)
{
    patient_edit *e = NULL;
    uint8_t hin[PATIENT_SHA256_BYTES], hout[PATIENT_SHA256_BYTES];
    size_t olen = 0;
    patient_err err;

    if (hop->finished) {
        err = PATIENT_ERR_STATE;
        goto out;
    }
    hop->finished = 1;
    if (hop->n == 0) {
        /* Nothing changed: the output must be the input. */
        if (out_len != hop->in_len)
            err = PATIENT_ERR_HASH;
        else if (out != NULL)
            err = out_len && memcmp(out, hop->in, out_len) != 0 ? PATIENT_ERR_HASH : PATIENT_OK;
        else if ((err = hashes_final(hh, hop->in_len, out_len, hin, hout)) == PATIENT_OK &&
                 sodium_memcmp(hin, hout, sizeof hin) != 0)
            err = PATIENT_ERR_HASH;
        goto out;
    }
    if ((err = hop_edits(hop, &e, &olen)))
        goto out;
    if (olen != out_len) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    /* With hashes taken while the bytes streamed, this pass only
     * compares (and there is none without the bytes); without, it hashes
     * as it compares. */
    if (hh && out == NULL) {
        if ((err = hashes_final(hh, hop->in_len, out_len, hin, hout)))
            goto out;
    } else if (hh) {
        if ((err = pt_edits_match(hop->in, hop->in_len, e, hop->n, out, out_len, NULL, NULL)) ||
            (err = hashes_final(hh, hop->in_len, out_len, hin, hout)))
            goto out;
    } else if ((err = pt_edits_match(hop->in, hop->in_len, e, hop->n, out, out_len, hin, hout))) {
        goto out;
    }
    err = hop_sign(hop, at, e, olen, hin, hout, value);
out:
    hashes_settle(hh);
    free(e);
    return err;
}

patient_err
patient_hop_finish_output(patient_hop *hop, time_t at, const uint8_t *out, size_t out_len,
                          patient_hop_hashes *hh, char **value)
{
    if (value == NULL || hop == NULL || (out == NULL && out_len > 0)) {
        hashes_settle(hh);
        if (value)
            *value = NULL;
        return PATIENT_ERR_ARG;
    }
    *value = NULL;
    return hop_finish_streamed(hop, at, out ? out : (const uint8_t *)"", out_len, hh, value);
}

patient_err
patient_hop_finish_hashed(patient_hop *hop, time_t at, size_t out_len, patient_hop_hashes *hh,
                          char **value)
{
    if (value == NULL || hop == NULL || hh == NULL) {
        hashes_settle(hh);
        if (value)
            *value = NULL;
        return PATIENT_ERR_ARG;
    }
    *value = NULL;
    return hop_finish_streamed(hop, at, NULL, out_len, hh, value);
}

void
pt_hop_signed_get(const patient_hop *hop, pt_hop_signed *s)
{
    s->value = hop->value;
    s->url = hop->url;
    s->name = hop->name;
    s->hopno = hop->hopno;
    s->when = hop->when;
    s->kid = hop->kid;
    s->nedits = hop->n;
    s->tls_version = hop->has_tls ? hop->tls_version : NULL;
    s->tls_cipher = hop->tls_cipher;
    s->tls_verified = hop->tls_verified;
    s->entry_len = hop->entry_len;
}

const patient_edit *
pt_hop_signed_edit(const patient_hop *hop, size_t i)
{
    /* hop->edits are in descriptor order: finish sorted them. */
    return &hop->edits[i].e;
}

/* ---- parsing ---- */

patient_err
patient_change_chunk_ranges(const patient_change *c, patient_range **ranges, size_t *n,
                            uint64_t *withheld)
{
    patient_range *r = NULL;
    size_t nr = 0;

    *ranges = NULL;
    *n = 0;
    if (withheld) {
        *withheld = 0;
        for (size_t i = 0; c && i < c->nedits; i++)
            if (c->edits[i].deleted == NULL)
                *withheld += c->edits[i].delete_len;
    }
    if (c == NULL || c->nchunks == 0)
        return PATIENT_OK;
    if ((r = malloc(c->nchunks * sizeof *r)) == NULL)
        return PATIENT_ERR_NOMEM;
    for (size_t i = 0; i < c->nchunks; i++) {
        uint64_t off = c->chunk_idx[i] * PATIENT_CHUNK_BYTES, len = PATIENT_CHUNK_BYTES;
        if (c->hop == 1) /* hop 1's input is the origin: its size is known */
            len = off >= c->in.size ? 0 : c->in.size - off < len ? c->in.size - off : len;
        if (len == 0)
            continue;
        if (nr && r[nr - 1].offset + r[nr - 1].length == off)
            r[nr - 1].length += len;
        else
            r[nr++] = (patient_range){off, len};
    }
    *ranges = r;
    *n = nr;
    return PATIENT_OK;
}

void
patient_change_free(patient_change *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; c->edits && i < c->nedits; i++) {
        free((void *)c->edits[i].deleted);
        free((void *)c->edits[i].insert);
        free((void *)c->edits[i].reason);
        free((void *)c->edits[i].rule);
        free((void *)c->edits[i].note);
    }
    free(c->edits);
    free(c->url);
    free(c->by.name);
    free(c->by.service);
    free(c->by.disclosure);
    free(c->tls.version);
    free(c->tls.cipher);
    patient_jws_free(c->jws);
    free(c->value);
    free(c->chunk_idx);
    free(c->chunk_val);
    free(c->chunk_kept);
    free(c);
}

/* pt_json_parse has refused duplicate names and \u0000 already; what is
 * left is a bound on hostile input: at most MAX_MEMBERS members in any
 * object of the payload. */
static int
members_capped(const cJSON *o)
{
    const cJSON *a;
    size_t n = 0;

    for (a = o->child; a; a = a->next)
        if ((cJSON_IsObject(o) && ++n > MAX_MEMBERS) || !members_capped(a))
            return 0;
    return 1;
}

static patient_err
dup_str(const char *s, char **out)
{
    return (*out = strdup(s)) ? PATIENT_OK : PATIENT_ERR_NOMEM;
}

/* A non-negative integer member; absent or ill-typed: PARSE. */
static patient_err
get_size(const cJSON *o, const char *k, long long *v)
{
    if (pt_json_int(o, k, v) != 0 || *v < 0)
        return PATIENT_ERR_PARSE;
    return PATIENT_OK;
}

static patient_err
parse_part(const cJSON *root, const char *k, uint8_t h[PATIENT_SHA256_BYTES], size_t *size)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, k);
    long long v;
    patient_err err;

    if (!cJSON_IsObject(o))
        return PATIENT_ERR_PARSE;
    if ((err = patient_sri_decode(pt_json_str(o, "integrity"), h)))
        return err;
    if ((err = get_size(o, "size", &v)))
        return err;
    if ((unsigned long long)v > PATIENT_MAX_BODY)
        return PATIENT_ERR_TOO_LARGE;
    *size = (size_t)v;
    return PATIENT_OK;
}

static patient_err
parse_edit(const cJSON *o, size_t in_size, patient_edit *e)
{
    const cJSON *it;
    const char *s;
    long long off, del;
    uint8_t h[PATIENT_SHA256_BYTES];
    uint8_t *bytes = NULL;
    size_t n = 0;
    patient_err err;

    if (!cJSON_IsObject(o))
        return PATIENT_ERR_PARSE;
    if ((err = get_size(o, "offset", &off)) || (err = get_size(o, "delete", &del)))
        return err;
    /* Range before anything that depends on it (the disclosed bytes). */
    if ((unsigned long long)off > in_size || (unsigned long long)del > in_size - (size_t)off)
        return PATIENT_ERR_EDIT_RANGE;
    e->offset = (size_t)off;
    e->delete_len = (size_t)del;
    if (!valid_code(pt_json_str(o, "reason")) || !valid_code(pt_json_str(o, "rule")))
        return PATIENT_ERR_PARSE;
    if ((err = dup_str(pt_json_str(o, "reason"), (char **)&e->reason)) ||
        (err = dup_str(pt_json_str(o, "rule"), (char **)&e->rule)))
        return err;
    /* note is optional: absent and null both mean none (a writer that
     * emits every member may write null). */
    if ((it = cJSON_GetObjectItemCaseSensitive(o, "note")) != NULL && !cJSON_IsNull(it)) {
        if (!cJSON_IsString(it) || !valid_text(it->valuestring, PATIENT_MAX_NOTE))
            return PATIENT_ERR_PARSE;
        if ((err = dup_str(it->valuestring, (char **)&e->note)))
            return err;
    }
    /* deleted_hash iff something was deleted; deleted only with it. */
    it = cJSON_GetObjectItemCaseSensitive(o, "deleted_hash");
    if ((it != NULL) != (del > 0))
        return PATIENT_ERR_PARSE;
    if (it) {
        if ((err = patient_sri_decode(cJSON_IsString(it) ? it->valuestring : NULL,
                                      e->deleted_hash)))
            return err;
        e->has_deleted_hash = 1;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(o, "deleted")) != NULL) {
        if (!cJSON_IsString(it) || del == 0)
            return PATIENT_ERR_PARSE;
        s = it->valuestring;
        if ((err = pt_b64_decode(s, strlen(s), 0, &bytes, &n)))
            return err;
        e->deleted = bytes;
        if (n != e->delete_len)
            return PATIENT_ERR_HASH;
        if ((err = patient_sha256(bytes, n, h)))
            return err;
        if (!pt_memeq(h, e->deleted_hash, sizeof h))
            return PATIENT_ERR_HASH;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(o, "insert")) != NULL) {
        if (!cJSON_IsString(it))
            return PATIENT_ERR_PARSE;
        s = it->valuestring;
        if ((err = pt_b64_decode(s, strlen(s), 0, &bytes, &n)))
            return err;
        if (n == 0) {
            free(bytes);
        } else {
            e->insert = bytes;
            e->insert_len = n;
        }
    }
    return PATIENT_OK;
}

/* "chunks": optional; only with a withheld deletion (a leaf for a hop that
 * withheld nothing could only be an extra, unchecked claim); non-empty,
 * indices strictly increasing and within a 64 MiB body, leaves exactly 32
 * bytes of standard base64. */
static patient_err
parse_chunks(const cJSON *root, patient_change *c)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "chunks"), *it;
    size_t n = 0, i = 0;

    if (arr == NULL)
        return PATIENT_OK;
    if (!cJSON_IsArray(arr) || arr->child == NULL || c->disclosed)
        return PATIENT_ERR_PARSE;
    for (it = arr->child; it; it = it->next)
        if (++n > PATIENT_MAX_CHUNKS)
            return PATIENT_ERR_LIMIT;
    if ((c->chunk_idx = calloc(n, sizeof *c->chunk_idx)) == NULL ||
        (c->chunk_val = calloc(n, sizeof *c->chunk_val)) == NULL ||
        (c->chunk_kept = calloc(n, sizeof *c->chunk_kept)) == NULL)
        return PATIENT_ERR_NOMEM;
    for (it = arr->child; it; it = it->next, i++) {
        const char *leaf;
        long long v;
        patient_err err;
        if (!cJSON_IsObject(it) || pt_json_int(it, "index", &v) != 0 || v < 0 ||
            (unsigned long long)v >= PATIENT_MAX_CHUNKS ||
            (i && (uint64_t)v <= c->chunk_idx[i - 1]) || (leaf = pt_json_str(it, "leaf")) == NULL)
            return PATIENT_ERR_PARSE;
        if ((err = pt_b64_decode_exact(leaf, strlen(leaf), 0, c->chunk_val[i],
                                       PATIENT_SHA256_BYTES)) != PATIENT_OK ||
            (err = patient_sri_decode(pt_json_str(it, "kept"), c->chunk_kept[i])) != PATIENT_OK)
            return err;
        c->chunk_idx[i] = (uint64_t)v;
    }
    c->nchunks = n;
    return PATIENT_OK;
}

/* The envelope: a JWS of typ PATIENT_CHANGE_TYP, kept as the exact value
 * (trimmed) with its SHA-256, which the next hop's "prev" names. */
static patient_err
parse_envelope(const char *value, size_t len, patient_change *c)
{
    patient_err err;

    if ((err = patient_jws_parse(value, len, &c->jws)))
        return err;
    if (c->jws->typ == NULL || strcasecmp(c->jws->typ, PATIENT_CHANGE_TYP) != 0)
        return PATIENT_ERR_PARSE;
    if ((c->value = malloc(len + 1)) == NULL)
        return PATIENT_ERR_NOMEM;
    memcpy(c->value, value, len);
    c->value[len] = 0;
    c->value_len = len;
    return patient_sha256(c->value, len, c->value_hash);
}

/* The payload: one JSON object (strict, as pt_json_parse reads it), at
 * most MAX_MEMBERS members in any object,
 * "patient": 1 (another version: UNSUPPORTED) and "type": "change". *root
 * is the caller's to cJSON_Delete, whatever this returns. */
static patient_err
parse_payload(const patient_change *c, cJSON **root)
{
    const char *s;
    long long v;
    patient_err err;

    if ((err = pt_json_parse((const char *)c->jws->payload, c->jws->payload_len, root)))
        return err;
    /* Same code as pt_json_parse gives for its own refusals. */
    if (!members_capped(*root))
        return PATIENT_ERR_JSON;
    if (!cJSON_IsObject(*root) || pt_json_int(*root, "patient", &v) != 0)
        return PATIENT_ERR_PARSE;
    if (v != 1)
        return PATIENT_ERR_UNSUPPORTED;
    if ((s = pt_json_str(*root, "type")) == NULL || strcmp(s, "change") != 0)
        return PATIENT_ERR_PARSE;
    return PATIENT_OK;
}

/* Where the change sits: "url", "hop" (1..PATIENT_MAX_HOPS, more: LIMIT),
 * "prev" exactly when hop > 1, "at" in RFC 3339. */
static patient_err
parse_position(const cJSON *root, patient_change *c)
{
    const cJSON *it;
    const char *s;
    long long v;
    patient_err err;

    if (!valid_url(s = pt_json_str(root, "url")))
        return PATIENT_ERR_PARSE;
    if ((err = dup_str(s, &c->url)))
        return err;
    if (pt_json_int(root, "hop", &v) != 0 || v < 1)
        return PATIENT_ERR_PARSE;
    if (v > PATIENT_MAX_HOPS)
        return PATIENT_ERR_LIMIT;
    c->hop = (unsigned)v;
    it = cJSON_GetObjectItemCaseSensitive(root, "prev");
    if ((it != NULL) != (c->hop > 1))
        return PATIENT_ERR_PARSE;
    if (it) {
        if ((err = patient_sri_decode(cJSON_IsString(it) ? it->valuestring : NULL, c->prev)))
            return err;
        c->has_prev = 1;
    }
    if (pt_time_parse_rfc3339(pt_json_str(root, "at"), &c->at) != PATIENT_OK)
        return PATIENT_ERR_PARSE;
    return PATIENT_OK;
}

/* "by": the middlebox's name, its key id (the JWS's own kid, or PARSE),
 * its service and, optionally, its disclosure's URL. */
static patient_err
parse_by(const cJSON *root, patient_change *c)
{
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(root, "by"), *it;
    const char *s;
    patient_err err;

    if (!cJSON_IsObject(by) || !valid_text(s = pt_json_str(by, "name"), PATIENT_MAX_NAME))
        return PATIENT_ERR_PARSE;
    if ((err = dup_str(s, &c->by.name)))
        return err;
    if (pt_keyid_parse_signed(pt_json_str(by, "kid"), c->by.kid) ||
        sodium_memcmp(c->by.kid, c->jws->kid, PATIENT_KEYID_BYTES) != 0)
        return PATIENT_ERR_PARSE;
    patient_keyid_hex(c->by.kid, c->by.kid_hex);
    if (!valid_service(s = pt_json_str(by, "service")))
        return PATIENT_ERR_PARSE;
    if ((err = dup_str(s, &c->by.service)))
        return err;
    if ((it = cJSON_GetObjectItemCaseSensitive(by, "disclosure")) == NULL)
        return PATIENT_OK;
    if (!cJSON_IsString(it) || !valid_url(it->valuestring))
        return PATIENT_ERR_PARSE;
    return dup_str(it->valuestring, &c->by.disclosure);
}

/* "edits": 1..PATIENT_MAX_EDITS (more: LIMIT), each within "in", together
 * turning "in"'s size into "out"'s; the change is disclosed when every
 * deletion says what it deleted. Needs c->in and c->out. */
static patient_err
parse_edits(const cJSON *root, patient_change *c)
{
    const cJSON *edits = cJSON_GetObjectItemCaseSensitive(root, "edits"), *it;
    size_t i, olen;
    patient_err err;

    if (!cJSON_IsArray(edits) || edits->child == NULL)
        return PATIENT_ERR_PARSE;
    for (i = 0, it = edits->child; it; it = it->next)
        if (++i > PATIENT_MAX_EDITS)
            return PATIENT_ERR_LIMIT;
    if ((c->edits = calloc(i, sizeof *c->edits)) == NULL)
        return PATIENT_ERR_NOMEM;
    c->nedits = i;
    for (i = 0, it = edits->child; it; it = it->next, i++)
        if ((err = parse_edit(it, c->in.size, &c->edits[i])))
            return err;
    if ((err = pt_edits_check(c->edits, c->nedits, c->in.size, PATIENT_ERR_PARSE, &olen)))
        return err;
    if (olen != c->out.size)
        return PATIENT_ERR_PARSE;
    c->disclosed = 1;
    for (i = 0; i < c->nedits; i++)
        if (c->edits[i].delete_len && c->edits[i].deleted == NULL)
            c->disclosed = 0;
    return PATIENT_OK;
}

/* "tls": optional; version, optional cipher, verified, and nothing else. */
static patient_err
parse_tls(const cJSON *root, patient_change *c)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "tls"), *ver, *ci, *m;
    const char *s, *cs = NULL;
    patient_err err;

    if (it == NULL)
        return PATIENT_OK;
    if (!cJSON_IsObject(it))
        return PATIENT_ERR_PARSE;
    /* Only the three members: a fact this verifier does not know how to
     * judge must not ride along unread in a signed claim. */
    cJSON_ArrayForEach(m, it)
        if (strcmp(m->string, "version") && strcmp(m->string, "cipher") &&
            strcmp(m->string, "verified"))
            return PATIENT_ERR_PARSE;
    s = pt_json_str(it, "version");
    ci = cJSON_GetObjectItemCaseSensitive(it, "cipher");
    if (ci && (cs = pt_json_str(it, "cipher")) == NULL)
        return PATIENT_ERR_PARSE;
    ver = cJSON_GetObjectItemCaseSensitive(it, "verified");
    if (!cJSON_IsBool(ver) || !valid_tls(s, cs, cJSON_IsTrue(ver)))
        return PATIENT_ERR_PARSE;
    if ((err = dup_str(s, &c->tls.version)) || (cs && (err = dup_str(cs, &c->tls.cipher))))
        return err;
    c->tls.verified = cJSON_IsTrue(ver);
    c->tls.plaintext = strcmp(s, PATIENT_TLS_NONE) == 0;
    c->has_tls = 1;
    return PATIENT_OK;
}

/* One phase per part of the descriptor, run in order: the first failing
 * phase's code is the result. */
patient_err
patient_change_parse(const char *value, size_t len, patient_change **out)
{
    patient_change *c = NULL;
    cJSON *root = NULL;
    patient_err err;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if (value == NULL)
        return PATIENT_ERR_ARG;
    trim(&value, &len);
    if (len > PATIENT_JWS_MAX)
        return PATIENT_ERR_TOO_LARGE;
    if ((c = calloc(1, sizeof *c)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = parse_envelope(value, len, c)) || (err = parse_payload(c, &root)) ||
        (err = parse_position(root, c)) || (err = parse_by(root, c)) ||
        (err = parse_part(root, "in", c->in.hash, &c->in.size)) ||
        (err = parse_part(root, "out", c->out.hash, &c->out.size)) ||
        (err = parse_edits(root, c)) || (err = parse_chunks(root, c)) || (err = parse_tls(root, c)))
        goto out;
    *out = c;
    c = NULL;
out:
    cJSON_Delete(root);
    patient_change_free(c);
    return err;
}

patient_err
patient_change_verify(const patient_change *c, const patient_pubkey *pk)
{
    if (c == NULL || pk == NULL || c->jws == NULL)
        return PATIENT_ERR_ARG;
    return patient_jws_verify(c->jws, pk);
}

static int
b64url_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.';
}

patient_err
patient_change_header_split(const char *text, size_t len, patient_span *spans, size_t cap,
                            size_t *n)
{
    size_t i = 0, count, max;

    if (n == NULL || (text == NULL && len) || (spans == NULL && cap))
        return PATIENT_ERR_ARG;
    count = *n;
    max = cap < PATIENT_MAX_HOPS ? cap : PATIENT_MAX_HOPS;
    if (count > max)
        return PATIENT_ERR_ARG;
    while (i < len) {
        size_t start, end;
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        start = i;
        while (i < len && text[i] != ',')
            i++;
        end = i;
        while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t'))
            end--;
        if (i < len)
            i++; /* the comma */
        if (end == start)
            continue; /* empty list element */
        for (size_t k = start; k < end; k++)
            if (!b64url_char(text[k]))
                return PATIENT_ERR_PARSE;
        if (count >= max)
            return PATIENT_ERR_LIMIT;
        spans[count].p = text + start;
        spans[count].len = end - start;
        count++;
    }
    *n = count;
    return PATIENT_OK;
}
