/* Inspection (patient/inspect.h): what an artefact is and what it claims,
 * without trusting it. Detection is by content, never by file name. Nothing
 * here verifies a signature; signed artefacts always say so. Secret key
 * files show only public facts (encrypted or not, key id, public key). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cJSON.h>

#include "log_int.h"
#include "util.h"
#include <patient/change.h>
#include <patient/inspect.h>
#include <patient/jws.h>
#include <patient/key.h>
#include <patient/log.h>

#define SHOW_FIRST 5

struct patient_inspection {
    const char *kind;  /* "public-key", ... */
    const char *title; /* one line for people */
    int is_signed;
    cJSON *details;
    char why[512]; /* when not recognised */
};

typedef patient_inspection result;

static int
fail(result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- small helpers ------------------------------------------------------ */

static void
keyid_from(const uint8_t id[PATIENT_KEYID_BYTES], char out[PATIENT_KEYID_HEX])
{
    patient_keyid_hex(id, out);
}

/* Next line of text (without \r\n); returns NULL at end. */
static const char *
next_line(const char **p, const char *end, size_t *len)
{
    const char *s = *p, *e;

    if (s >= end)
        return NULL;
    e = memchr(s, '\n', (size_t)(end - s));
    if (e == NULL)
        e = end;
    *p = e < end ? e + 1 : end;
    *len = (size_t)(e - s);
    if (*len && s[*len - 1] == '\r')
        (*len)--;
    return s;
}

static int
is_b64url(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

/* Three base64url parts separated by two dots. */
static int
looks_jws(const char *s, size_t len)
{
    const char *d1 = memchr(s, '.', len), *d2;
    if (d1 == NULL || d1 == s)
        return 0;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - s));
    if (d2 == NULL || d2 == d1 + 1 || d2 + 1 == s + len)
        return 0;
    return is_b64url(s, (size_t)(d1 - s)) && is_b64url(d1 + 1, (size_t)(d2 - d1 - 1)) &&
           is_b64url(d2 + 1, len - (size_t)(d2 + 1 - s));
}

static const char *
str_member(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static void
copy_field(cJSON *dst, const cJSON *src, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(src, k);
    if (x != NULL)
        cJSON_AddItemToObject(dst, k, cJSON_Duplicate(x, 1));
}

static void
copy_fields(cJSON *dst, const cJSON *src, const char *const *keys)
{
    for (; *keys; keys++)
        copy_field(dst, src, *keys);
}

/* Bytes a base64 member stands for, by the library's decoder (the one the
 * descriptor reader uses); -1 when it is not base64. */
static double
b64_len(const char *s)
{
    uint8_t *b = NULL;
    size_t n = 0;

    if (pt_b64_decode(s, strlen(s), 0, &b, &n) != PATIENT_OK)
        return -1;
    free(b);
    return (double)n;
}

/* ---- minisign family ---------------------------------------------------- */

static int
add_pubkey(cJSON *d, const uint8_t id[8], const uint8_t pk[32])
{
    patient_pubkey p;
    char b[PATIENT_PUBKEY_B64], kid[PATIENT_KEYID_HEX];

    memcpy(p.id, id, 8);
    memcpy(p.pk, pk, 32);
    patient_pubkey_encode(&p, b);
    keyid_from(id, kid);
    cJSON_AddStringToObject(d, "key_id", kid);
    cJSON_AddStringToObject(d, "public_key", b);
    return 0;
}

static int
inspect_minisign(const char *text, size_t len, result *r)
{
    patient_minisign_info mi;
    patient_err err = patient_minisign_inspect(text, len, &mi);
    char kid[PATIENT_KEYID_HEX];

    switch (err) {
    case PATIENT_OK:
        break;
    case PATIENT_ERR_KEY_FORMAT:
        return fail(r, "minisign-style file with a comment line but no key or signature line "
                       "(truncated?)");
    case PATIENT_ERR_BASE64:
        return fail(r, "the line after the comment is not base64 (%zu characters)", mi.line_len);
    case PATIENT_ERR_UNSUPPORTED:
        return fail(r, "secret key with an unknown KDF algorithm (0x%02x%02x)", mi.alg[2],
                    mi.alg[3]);
    case PATIENT_ERR_PARSE:
        if (mi.kind == PATIENT_MINISIGN_SIGNATURE)
            return fail(r, "minisign signature without its trusted comment and global signature "
                           "lines (truncated?)");
        return fail(r, "base64 line of %zu bytes: not a minisign public key (42), secret key "
                       "(158) or signature (74)",
                    mi.decoded_len);
    default:
        return fail(r, "%s [%s]", patient_strerror(err), patient_errname(err));
    }
    r->details = cJSON_CreateObject();
    if (mi.untrusted_comment) {
        char *t = strndup(mi.untrusted_comment, mi.untrusted_comment_len);
        cJSON_AddStringToObject(r->details, "untrusted_comment", t ? t : "");
        free(t);
    }
    switch (mi.kind) {
    case PATIENT_MINISIGN_PUBKEY:
        r->kind = "public-key";
        r->title = "minisign public key (Ed25519)";
        add_pubkey(r->details, mi.pubkey.id, mi.pubkey.pk);
        break;
    case PATIENT_MINISIGN_SECKEY:
        r->kind = "secret-key";
        r->title = "minisign SECRET key (Ed25519): keep it secret";
        cJSON_AddBoolToObject(r->details, "encrypted", mi.encrypted);
        if (mi.encrypted) {
            cJSON_AddStringToObject(r->details, "kdf", "scrypt");
            cJSON_AddNumberToObject(r->details, "kdf_opslimit", (double)mi.kdf_opslimit);
            cJSON_AddNumberToObject(r->details, "kdf_memlimit", (double)mi.kdf_memlimit);
            cJSON_AddStringToObject(r->details, "key_id",
                                    "unknown (encrypted with the key; `patient keygen` prints it)");
        } else {
            add_pubkey(r->details, mi.pubkey.id, mi.pubkey.pk);
        }
        break;
    default: { /* PATIENT_MINISIGN_SIGNATURE */
        char *t = strndup(mi.trusted_comment, mi.trusted_comment_len);
        r->kind = "minisign-signature";
        r->title = "minisign signature";
        r->is_signed = 1;
        keyid_from(mi.keyid, kid);
        cJSON_AddStringToObject(r->details, "algorithm", mi.prehashed ? "ED" : "Ed");
        cJSON_AddBoolToObject(r->details, "prehashed", mi.prehashed);
        cJSON_AddStringToObject(r->details, "key_id", kid);
        cJSON_AddStringToObject(r->details, "trusted_comment", t ? t : "");
        free(t);
        break;
    }
    }
    return 0;
}

/* ---- JWS ---------------------------------------------------------------- */

static cJSON *ranges_json(const patient_range *r, size_t n);

/* Replace a change payload's "chunks" (base64 leaves and kept hashes) by
 * what they mean: how many origin chunks the hop's withheld deletions
 * touched, and, when the descriptor c is at hand, the bytes it withheld
 * and the origin byte ranges it left unchecked (from the library). */
static void
summarise_chunks(cJSON *payload, const patient_change *c)
{
    cJSON *chunks = cJSON_DetachItemFromObjectCaseSensitive(payload, "chunks"), *o;
    patient_range *r = NULL;
    size_t nr = 0;
    uint64_t withheld = 0;

    if (chunks == NULL)
        return;
    o = cJSON_AddObjectToObject(payload, "chunks");
    cJSON_AddNumberToObject(o, "touched", cJSON_GetArraySize(chunks));
    cJSON_Delete(chunks);
    if (c == NULL || patient_change_chunk_ranges(c, &r, &nr, &withheld) != PATIENT_OK)
        return;
    cJSON_AddNumberToObject(o, "withheld_bytes", (double)withheld);
    cJSON_AddItemToObject(o, "unchecked_origin_ranges", ranges_json(r, nr));
    free(r);
}

static cJSON *
ranges_json(const patient_range *r, size_t n)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "offset", (double)r[i].offset);
        cJSON_AddNumberToObject(x, "length", (double)r[i].length);
        cJSON_AddItemToArray(a, x);
    }
    return a;
}

/* Replace base64 byte strings in a change payload by their lengths: from
 * the descriptor c as the library read it when at hand (its edits are the
 * payload's, in order), else (a value it refuses, a bare payload) from each
 * string's decoding. */
static void
summarise_edits(cJSON *payload, const patient_change *c)
{
    cJSON *edits = cJSON_GetObjectItemCaseSensitive(payload, "edits"), *e;
    size_t i = 0;

    if (c != NULL && (size_t)cJSON_GetArraySize(edits) != c->nedits)
        c = NULL;
    cJSON_ArrayForEach(e, edits) {
        const patient_edit *pe = c ? &c->edits[i] : NULL;
        const char *s;
        i++;
        if ((s = str_member(e, "insert")) != NULL) {
            double n = pe ? (double)pe->insert_len : b64_len(s);
            cJSON_DeleteItemFromObjectCaseSensitive(e, "insert");
            cJSON_AddNumberToObject(e, "insert_bytes", n);
        }
        if ((s = str_member(e, "deleted")) != NULL) {
            double n = pe ? (double)pe->delete_len : b64_len(s);
            cJSON_DeleteItemFromObjectCaseSensitive(e, "deleted");
            cJSON_AddNumberToObject(e, "deleted_bytes_disclosed", n);
        }
    }
}

static cJSON *
decode_jws(const char *s, size_t len, char *why, size_t whylen, const char **typ_out)
{
    patient_jws *j = NULL;
    cJSON *o = NULL, *payload;
    char kid[PATIENT_KEYID_HEX];
    patient_err err;
    const char *typ;

    if ((err = patient_jws_parse(s, len, &j)) != PATIENT_OK) {
        snprintf(why, whylen, "not a JWS we understand: %s [%s]", patient_strerror(err),
                 patient_errname(err));
        return NULL;
    }
    if ((payload = cJSON_ParseWithLength((const char *)j->payload, j->payload_len)) == NULL) {
        snprintf(why, whylen, "JWS payload is not JSON");
        goto out;
    }
    o = cJSON_CreateObject();
    typ = j->typ ? j->typ : "";
    keyid_from(j->kid, kid);
    cJSON_AddStringToObject(o, "typ", typ);
    cJSON_AddStringToObject(o, "kid", kid);
    if (strcasecmp(typ, "patient-change+jws") == 0) {
        patient_change *c = NULL;
        *typ_out = "change";
        /* The descriptor as the library reads it, for its edits' byte
         * counts and what its chunks leave unchecked; a value it refuses
         * is still shown. */
        if (patient_change_parse(s, len, &c) != PATIENT_OK)
            c = NULL;
        summarise_edits(payload, c);
        summarise_chunks(payload, c);
        patient_change_free(c);
    } else if (strcasecmp(typ, "patient-origin+jws") == 0) {
        *typ_out = "origin";
    } else if (strcasecmp(typ, "patient-checkpoint+jws") == 0) {
        *typ_out = "checkpoint";
    } else {
        *typ_out = "jws";
    }
    cJSON_AddItemToObject(o, "payload", payload);
out:
    patient_jws_free(j);
    return o;
}

/* Patient-Change / Patient-Origin header lines, bare values, or a list. */
static int
inspect_headers(const char *text, size_t len, result *r)
{
    const char *p = text, *end = text + len, *l, *name = NULL;
    size_t ll;
    cJSON *vals = cJSON_CreateArray();
    const char *kind = NULL;
    int n = 0;

    while ((l = next_line(&p, end, &ll)) != NULL) {
        const char *v = l, *ve = l + ll, *c;
        if (ll == 0)
            continue;
        if ((c = memchr(l, ':', ll)) != NULL) {
            size_t nl = (size_t)(c - l);
            if (nl == 14 && strncasecmp(l, "Patient-Change", 14) == 0)
                name = "Patient-Change";
            else if (nl == 14 && strncasecmp(l, "Patient-Origin", 14) == 0)
                name = "Patient-Origin";
            else {
                fail(r, "header line \"%.*s\" is not Patient-Change or Patient-Origin",
                     (int)(nl > 64 ? 64 : nl), l);
                goto bad;
            }
            v = c + 1;
        }
        /* Comma-separated list (RFC 9110); a compact JWS has no comma. */
        while (v < ve) {
            const char *ce = memchr(v, ',', (size_t)(ve - v)), *a, *b;
            const char *typ = NULL;
            cJSON *one;
            if (ce == NULL)
                ce = ve;
            for (a = v; a < ce && (*a == ' ' || *a == '\t'); a++)
                ;
            for (b = ce; b > a && (b[-1] == ' ' || b[-1] == '\t'); b--)
                ;
            v = ce + 1;
            if (a == b)
                continue;
            if (!looks_jws(a, (size_t)(b - a))) {
                fail(r, "value %d is not a compact JWS (three base64url parts separated by dots)",
                     n + 1);
                goto bad;
            }
            if ((one = decode_jws(a, (size_t)(b - a), r->why, sizeof r->why, &typ)) == NULL)
                goto bad;
            if (++n > 64) {
                cJSON_Delete(one);
                fail(r, "more than 64 values");
                goto bad;
            }
            cJSON_AddItemToArray(vals, one);
            if (kind == NULL)
                kind = typ;
            else if (strcmp(kind, typ) != 0)
                kind = "mixed";
        }
    }
    if (n == 0) {
        fail(r, "no value");
        goto bad;
    }
    r->is_signed = 1;
    r->details = cJSON_CreateObject();
    if (name)
        cJSON_AddStringToObject(r->details, "header", name);
    if (strcmp(kind, "change") == 0) {
        r->kind = "change";
        r->title = n > 1 ? "Patient-Change values (change descriptors, one per hop)"
                         : "Patient-Change value (change descriptor)";
    } else if (strcmp(kind, "origin") == 0) {
        r->kind = "origin";
        r->title = "Patient-Origin value (origin-signed response)";
    } else if (strcmp(kind, "checkpoint") == 0) {
        r->kind = "checkpoint";
        r->title = "audit log checkpoint signature (JWS)";
    } else {
        r->kind = "jws";
        r->title = "JWS (EdDSA) of a type PATIENT does not define";
    }
    cJSON_AddNumberToObject(r->details, "count", n);
    cJSON_AddItemToObject(r->details, "values", vals);
    return 0;
bad:
    cJSON_Delete(vals);
    return -1;
}

/* ---- audit logs --------------------------------------------------------- */

static cJSON *
log_line_summary(const char *line, size_t len)
{
    static const char *const keys[] = {"seq",     "kind",      "time",  "url",   "hop",
                                       "by",      "reasons",   "rules", "deleted", "inserted",
                                       "event",   "detail",    "tree_size", "root", NULL};
    cJSON *o = cJSON_ParseWithLength(line, len), *s;
    if (o == NULL)
        return NULL;
    s = cJSON_CreateObject();
    copy_fields(s, o, keys);
    cJSON_Delete(o);
    return s;
}

static int
is_log_line(const cJSON *o)
{
    return cJSON_IsObject(o) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "seq")) &&
           str_member(o, "prev") && str_member(o, "kind");
}

static void
log_details(result *r, uint64_t entries, uint64_t ch, uint64_t ev, uint64_t ck, cJSON *first,
            cJSON *last, int streamed)
{
    r->kind = "audit-log";
    r->title = entries == 1 ? "audit log line" : "audit log (JSON Lines)";
    r->is_signed = 1;
    r->details = cJSON_CreateObject();
    cJSON_AddNumberToObject(r->details, "entries", (double)entries);
    cJSON_AddNumberToObject(r->details, "changes", (double)ch);
    cJSON_AddNumberToObject(r->details, "events", (double)ev);
    cJSON_AddNumberToObject(r->details, "checkpoints", (double)ck);
    cJSON_AddBoolToObject(r->details, "streamed", streamed);
    cJSON_AddItemToObject(r->details, "first", first ? first : cJSON_CreateNull());
    if (entries > 1)
        cJSON_AddItemToObject(r->details, "last", last ? last : cJSON_CreateNull());
    else
        cJSON_Delete(last);
    cJSON_AddStringToObject(r->details, "check_with", "patient audit verify LOG --pub PUB");
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
static int
inspect_log_file(const char *path, result *r)
{
    patient_log_iter *it = NULL;
    const patient_log_entry *e;
    uint64_t n = 0, ch = 0, ev = 0, ck = 0;
    cJSON *first = NULL, *last = NULL;
    char *lastbuf = NULL;
    size_t lastcap = 0, lastlen = 0;
    patient_err err;

    if ((err = patient_log_iter_open(path, &it)) != PATIENT_OK)
        return fail(r, "cannot read as a log: %s", patient_strerror(err));
    for (;;) {
        if ((err = patient_log_iter_next(it, &e)) != PATIENT_OK) {
            fail(r, "audit log, but line %" PRIu64 " is not a log entry: %s [%s]",
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
        if (first == NULL)
            first = log_line_summary(e->raw, e->raw_len);
        else if (keep_last(&lastbuf, &lastcap, &lastlen, e->raw, e->raw_len) != 0) {
            fail(r, "out of memory");
            cJSON_Delete(first);
            free(lastbuf);
            patient_log_iter_close(it);
            return -1;
        }

    }
    patient_log_iter_close(it);
    if (lastbuf != NULL)
        last = log_line_summary(lastbuf, lastlen);
    free(lastbuf);
    if (n == 0) {
        cJSON_Delete(first);
        return fail(r, "audit log without a complete entry");
    }
    log_details(r, n, ch, ev, ck, first, last, 1);
    return 0;
}

/* Log lines held in memory (stdin): each read by the log iterator's own
 * line reader, so that a log inspected from stdin is read as from a file. */
static int
inspect_log_text(const char *text, size_t len, result *r)
{
    const char *p = text, *end = text + len, *l;
    size_t ll;
    uint64_t n = 0, ch = 0, ev = 0, ck = 0, lineno = 0;
    cJSON *first = NULL, *last = NULL;
    pentry pe;
    patient_log_entry e;
    patient_err err;
    int rc = -1;

    memset(&pe, 0, sizeof pe);
    while ((l = next_line(&p, end, &ll)) != NULL) {
        lineno++;
        if (ll == 0)
            continue;
        if ((err = pt_log_entry_read(&pe, (const uint8_t *)l, ll, lineno, &e)) != PATIENT_OK) {
            fail(r, "audit log, but line %" PRIu64 " is not a log entry: %s [%s]%s", lineno,
                 patient_strerror(err), patient_errname(err),
                 p == end && text[len - 1] != '\n' ? " (a torn last line?)" : "");
            goto out;
        }
        ch += e.kind == PATIENT_LOG_KIND_CHANGE;
        ev += e.kind == PATIENT_LOG_KIND_EVENT;
        ck += e.kind == PATIENT_LOG_KIND_CHECKPOINT;
        n++;
        if (first == NULL) {
            first = log_line_summary(l, ll);
        } else {
            cJSON_Delete(last);
            last = log_line_summary(l, ll);
        }
    }
    log_details(r, n, ch, ev, ck, first, last, 0);
    first = last = NULL;
    rc = 0;
out:
    cJSON_Delete(first);
    cJSON_Delete(last);
    pentry_free(&pe);
    return rc;
}

/* ---- JSON documents ----------------------------------------------------- */

static void
add_first_keys(cJSON *d, const cJSON *obj, const char *name, int n)
{
    cJSON *a = cJSON_AddObjectToObject(d, name), *x;
    int i = 0;
    cJSON_ArrayForEach(x, obj) {
        if (i++ >= n || x->string == NULL)
            break;
        cJSON_AddItemToObject(a, x->string, cJSON_Duplicate(x, 1));
    }
}

static void
add_first_items(cJSON *d, const cJSON *arr, const char *name, int n)
{
    cJSON *a = cJSON_AddArrayToObject(d, name), *x;
    int i = 0;
    cJSON_ArrayForEach(x, arr) {
        if (i++ >= n)
            break;
        cJSON_AddItemToArray(a, cJSON_Duplicate(x, 1));
    }
}

static int
inspect_json_doc(cJSON *doc, result *r)
{
    const char *type = str_member(doc, "type");
    cJSON *d = cJSON_CreateObject(), *x;

    r->details = d;
    if (type == NULL && cJSON_GetObjectItemCaseSensitive(doc, "resources") && str_member(doc, "origin"))
        type = "manifest";
    if (type == NULL) {
        fail(r, "JSON object without a \"type\" member: not a PATIENT document");
        goto bad;
    }
    if (strcmp(type, "manifest") == 0) {
        static const char *const k[] = {"patient", "origin", "version", "issued", "expires", NULL};
        r->kind = "manifest";
        r->title = "origin manifest";
        r->is_signed = 1;
        copy_fields(d, doc, k);
        x = cJSON_GetObjectItemCaseSensitive(doc, "resources");
        cJSON_AddNumberToObject(d, "resources", cJSON_GetArraySize(x));
        add_first_keys(d, x, "first_resources", SHOW_FIRST);
        if ((x = cJSON_GetObjectItemCaseSensitive(doc, "next_keys")) != NULL)
            cJSON_AddItemToObject(d, "next_keys", cJSON_Duplicate(x, 1));
        if ((x = cJSON_GetObjectItemCaseSensitive(doc, "delegations")) != NULL)
            cJSON_AddItemToObject(d, "delegations", cJSON_Duplicate(x, 1));
        if ((x = cJSON_GetObjectItemCaseSensitive(doc, "shards")) != NULL) {
            /* Sharded (docs/format/manifest.md, "Shards"): the layout, and
             * where the resources are instead. */
            const cJSON *bits = cJSON_GetObjectItemCaseSensitive(doc, "shard_bits"), *b;
            char lay[128];
            size_t ln = 0;
            double leaves = 1;
            cJSON_ArrayForEach(b, bits) {
                if (cJSON_IsNumber(b) && b->valuedouble >= 1 && b->valuedouble <= 8) {
                    ln += (size_t)snprintf(lay + ln, sizeof lay - ln, "%s%d", ln ? " x " : "",
                                           1 << (int)b->valuedouble);
                    leaves *= (double)(1 << (int)b->valuedouble);
                }
                if (ln >= sizeof lay - 16)
                    break;
            }
            cJSON_DeleteItemFromObject(d, "resources");
            cJSON_DeleteItemFromObject(d, "first_resources");
            cJSON_AddItemToObject(d, "shard_bits", cJSON_Duplicate(bits, 1));
            cJSON_AddNumberToObject(d, "shards", cJSON_GetArraySize(x));
            cJSON_AddNumberToObject(d, "leaves", leaves);
            cJSON_AddStringToObject(d, "layout", ln ? lay : "?");
            add_first_items(d, x, "first_shards", SHOW_FIRST);
            cJSON_AddStringToObject(d, "shard_files",
                                    "/.well-known/patient/shards/<name>.json, each "
                                    "checked against its name (SHA-256)");
        }
        cJSON_AddStringToObject(d, "signature", "detached: manifest.json.minisig");
    } else if (strcmp(type, "manifest-shard") == 0) {
        static const char *const k[] = {"patient", "origin", "version", "bin", NULL};
        r->kind = "manifest-shard";
        r->title = "origin manifest shard";
        copy_fields(d, doc, k);
        if ((x = cJSON_GetObjectItemCaseSensitive(doc, "resources")) != NULL) {
            cJSON_AddStringToObject(d, "kind", "leaf");
            cJSON_AddNumberToObject(d, "resources", cJSON_GetArraySize(x));
            add_first_keys(d, x, "first_resources", SHOW_FIRST);
        } else if ((x = cJSON_GetObjectItemCaseSensitive(doc, "shards")) != NULL) {
            cJSON_AddStringToObject(d, "kind", "inner");
            cJSON_AddNumberToObject(d, "shards", cJSON_GetArraySize(x));
            add_first_items(d, x, "first_shards", SHOW_FIRST);
        }
        cJSON_AddStringToObject(d, "signature",
                                "none of its own: pinned by SHA-256 in its parent, up to the "
                                "signed manifest.json");
    } else if (strcmp(type, "disclosure") == 0) {
        static const char *const k[] = {"patient", "operator", "contact", "services",
                                        "retention_days", "sharing", "upstream_tls_min",
                                        "issued", "expires", "key", NULL};
        patient_pubkey pk;
        r->kind = "disclosure";
        r->title = "middlebox disclosure";
        r->is_signed = 1;
        copy_fields(d, doc, k);
        if (str_member(doc, "key") && patient_pubkey_parse(str_member(doc, "key"),
                                                         strlen(str_member(doc, "key")),
                                                         &pk) == PATIENT_OK) {
            char kid[PATIENT_KEYID_HEX];
            keyid_from(pk.id, kid);
            cJSON_AddStringToObject(d, "key_id", kid);
        }
        cJSON_AddStringToObject(d, "signature", "detached: disclosure.json.minisig");
    } else if (strcmp(type, "policy") == 0) {
        static const char *const k[] = {"patient", "require", "unsigned", NULL};
        cJSON *mb, *m, *arr;
        r->kind = "policy";
        r->title = "endpoint trust policy";
        copy_fields(d, doc, k);
        x = cJSON_GetObjectItemCaseSensitive(doc, "publishers");
        arr = cJSON_AddArrayToObject(d, "publishers");
        cJSON_ArrayForEach(m, x) {
            if (m->string)
                cJSON_AddItemToArray(arr, cJSON_CreateString(m->string));
        }
        mb = cJSON_GetObjectItemCaseSensitive(doc, "middleboxes");
        arr = cJSON_AddArrayToObject(d, "middleboxes");
        cJSON_ArrayForEach(m, mb) {
            static const char *const mk[] = {"name", "reasons", "paths", "origins",
                                             "max_edits", "insert", NULL};
            cJSON *o = cJSON_CreateObject();
            patient_pubkey pk;
            const char *key = str_member(m, "key");
            copy_fields(o, m, mk);
            if (key && patient_pubkey_parse(key, strlen(key), &pk) == PATIENT_OK) {
                char kid[PATIENT_KEYID_HEX];
                keyid_from(pk.id, kid);
                cJSON_AddStringToObject(o, "key_id", kid);
            } else {
                cJSON_AddStringToObject(o, "key_id", "(not a valid public key)");
            }
            cJSON_AddItemToArray(arr, o);
        }
    } else if (strcmp(type, "rules") == 0) {
        cJSON *rules = cJSON_GetObjectItemCaseSensitive(doc, "rules"), *rl, *arr;
        int i = 0;
        r->kind = "rules";
        r->title = "middlebox rule file";
        copy_field(d, doc, "patient");
        cJSON_AddNumberToObject(d, "rules", cJSON_GetArraySize(rules));
        arr = cJSON_AddArrayToObject(d, "first_rules");
        cJSON_ArrayForEach(rl, rules) {
            static const char *const rk[] = {"id", "action", "reason", "types", "max_matches",
                                             "disclose", NULL};
            cJSON *o;
            if (i++ >= 20)
                break;
            o = cJSON_CreateObject();
            copy_fields(o, rl, rk);
            cJSON_AddItemToArray(arr, o);
        }
    } else if (strcmp(type, "bundle") == 0) {
        static const char *const k[] = {"patient", "created", "url", "status", "body_integrity",
                                        "body_size", "manifest_error", NULL};
        cJSON *chs = cJSON_GetObjectItemCaseSensitive(doc, "changes"), *c, *arr;
        r->kind = "bundle";
        r->title = "evidence bundle (re-verify offline with patient-verify)";
        r->is_signed = 1;
        copy_fields(d, doc, k);
        cJSON_AddBoolToObject(d, "manifest", str_member(doc, "manifest") != NULL);
        cJSON_AddBoolToObject(d, "origin_sig", str_member(doc, "origin_sig") != NULL);
        cJSON_AddNumberToObject(d, "disclosures",
                                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "disclosures")));
        cJSON_AddBoolToObject(d, "policy", cJSON_GetObjectItemCaseSensitive(doc, "policy") != NULL);
        arr = cJSON_AddArrayToObject(d, "changes");
        cJSON_ArrayForEach(c, chs) {
            char why[256];
            const char *typ = NULL;
            cJSON *one = cJSON_IsString(c)
                             ? decode_jws(c->valuestring, strlen(c->valuestring), why, sizeof why, &typ)
                             : NULL;
            cJSON_AddItemToArray(arr, one ? one : cJSON_CreateString("(undecodable)"));
        }
    } else if (strcmp(type, "report") == 0) {
        static const char *const k[] = {"patient", "verdict", "url", "checked_at", "origin",
                                        "proof", "manifest", NULL};
        cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "results"), *e, *arr;
        r->kind = "report";
        r->title = "verification report (as written by patient-verify; not re-checked)";
        copy_fields(d, doc, k);
        cJSON_AddNumberToObject(d, "changes",
                                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "changes")));
        arr = cJSON_AddArrayToObject(d, "results");
        cJSON_ArrayForEach(e, res) {
            const char *code = str_member(e, "code"), *sev = str_member(e, "severity");
            char buf[300];
            snprintf(buf, sizeof buf, "%s%s%s%s", sev ? sev : "", sev ? ": " : "",
                     code ? code : "?", "");
            cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
        }
    } else if (strcmp(type, "change") == 0 || strcmp(type, "origin") == 0) {
        /* A decoded payload on its own (e.g. jws_tool output). */
        cJSON *cp = cJSON_Duplicate(doc, 1);
        if (strcmp(type, "change") == 0) {
            summarise_edits(cp, NULL);
            summarise_chunks(cp, NULL);
        }
        r->kind = strcmp(type, "change") == 0 ? "change-payload" : "origin-payload";
        r->title = "decoded descriptor payload (the signature is not here)";
        cJSON_Delete(d);
        r->details = cp;
    } else {
        fail(r, "JSON document of type \"%.64s\", which PATIENT does not define", type);
        goto bad;
    }
    return 0;
bad:
    cJSON_Delete(d);
    r->details = NULL;
    return -1;
}

/* Does JSON text end with an open string, object or array? */
static int
json_unclosed(const char *s, size_t n)
{
    long depth = 0;
    int str = 0, esc = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                str = 0;
        } else if (c == '"') {
            str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return str || depth > 0;
}

/* ---- detection ---------------------------------------------------------- */

static int
detect(const char *path, const char *data, size_t len, int head_only, int is_file, result *r)
{
    const char *s = data, *e = data + len, *nl;
    size_t n;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f)
            return fail(r, "binary data (byte 0x%02x at offset %zu): not a text artefact", c, i);
    }
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    n = (size_t)(e - s);
    if (n == 0)
        return fail(r, "empty input");
    if (n >= 18 && strncmp(s, "untrusted comment:", 18) == 0)
        return inspect_minisign(s, n, r);
    if (n == 56 && strncmp(s, "RW", 2) == 0) {
        patient_pubkey pk;
        if (patient_pubkey_parse(s, n, &pk) != PATIENT_OK)
            return fail(r, "starts like a public key string (RW...) but is not valid base64 of "
                           "42 bytes");
        r->kind = "public-key";
        r->title = "minisign public key string (Ed25519)";
        r->details = cJSON_CreateObject();
        add_pubkey(r->details, pk.id, pk.pk);
        return 0;
    }
    if (*s == '{' || *s == '[') {
        cJSON *doc;
        const char *pe = NULL;
        int rc;
        /* JSON Lines: an audit log if its first line is an entry. */
        nl = memchr(s, '\n', n);
        doc = cJSON_ParseWithLength(s, nl ? (size_t)(nl - s) : n);
        rc = is_log_line(doc);
        cJSON_Delete(doc);
        if (rc)
            return is_file ? inspect_log_file(path, r) : inspect_log_text(s, n, r);
        if (head_only)
            return fail(r, "over %u MiB and not an audit log: refusing to read it all",
                        PATIENT_INSPECT_MAX >> 20);
        /* One JSON document, nothing after it. */
        if ((doc = cJSON_ParseWithOpts(s, &pe, 1)) == NULL) {
            size_t off = pe && pe >= s && pe <= e ? (size_t)(pe - s) : n;
            return fail(r, "starts like JSON but does not parse (error near byte %zu of %zu%s)",
                        off, n, json_unclosed(s, n) ? "; it ends inside an open value: truncated?" : "");
        }
        if (!cJSON_IsObject(doc)) {
            cJSON_Delete(doc);
            return fail(r, "JSON, but not an object");
        }
        rc = inspect_json_doc(doc, r);
        cJSON_Delete(doc);
        return rc;
    }
    if (head_only)
        return fail(r, "over %u MiB: refusing to read it", PATIENT_INSPECT_MAX >> 20);
    {
        /* "Header-Name: value": a header line (inspect_headers names it). */
        size_t t = 0;
        while (t < n && t < 64 && (isalnum((unsigned char)s[t]) || s[t] == '-'))
            t++;
        if (t > 0 && t + 1 < n && s[t] == ':' && (s[t + 1] == ' ' || s[t + 1] == '\t'))
            return inspect_headers(s, n, r);
    }
    {
        /* A bare value: its first element (up to a newline or comma). */
        size_t t = 0;
        while (t < n && s[t] != '\n' && s[t] != ',' && s[t] != '\r' && s[t] != ' ')
            t++;
        if (looks_jws(s, t))
            return inspect_headers(s, n, r);
    }
    if (memchr(s, '.', n) && is_b64url(s, (size_t)((const char *)memchr(s, '.', n) - s)))
        return fail(r, "looks like a JWS but is not three non-empty base64url parts separated by "
                       "dots (truncated?)");
    return fail(r, "not a PATIENT artefact (no JSON object, key, signature, JWS or header line "
                   "recognised)");
}

/* ---- rendering ---------------------------------------------------------- */

static void
put_safe(pt_buf *b, patient_err *err, const char *s)
{
    for (; *s && *err == PATIENT_OK; s++) {
        char c = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
        *err = pt_buf_append(b, &c, 1);
    }
}

static void
put(pt_buf *b, patient_err *err, const char *s)
{
    if (*err == PATIENT_OK)
        *err = pt_buf_append(b, s, strlen(s));
}

static int
scalar_array(const cJSON *a)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (cJSON_IsObject(x) || cJSON_IsArray(x))
            return 0;
    }
    return 1;
}

static void
put_scalar(pt_buf *b, patient_err *err, const cJSON *x)
{
    if (*err != PATIENT_OK)
        return;
    if (cJSON_IsString(x))
        put_safe(b, err, x->valuestring);
    else if (cJSON_IsNumber(x)) {
        if (x->valuedouble == (double)(long long)x->valuedouble)
            *err = pt_buf_appendf(b, "%lld", (long long)x->valuedouble);
        else
            *err = pt_buf_appendf(b, "%g", x->valuedouble);
    } else if (cJSON_IsBool(x))
        put(b, err, cJSON_IsTrue(x) ? "yes" : "no");
    else if (cJSON_IsNull(x))
        put(b, err, "-");
}

static void
put_tree(pt_buf *b, patient_err *err, const cJSON *o, int indent)
{
    const cJSON *x;
    int i = 0;

    cJSON_ArrayForEach(x, o) {
        if (*err != PATIENT_OK)
            return;
        *err = pt_buf_appendf(b, "%*s", indent, "");
        if (x->string) {
            put_safe(b, err, x->string);
            put(b, err, ":");
        } else if (*err == PATIENT_OK) {
            *err = pt_buf_appendf(b, "[%d]", i);
        }
        i++;
        if (cJSON_IsArray(x) && scalar_array(x)) {
            const cJSON *y;
            int first = 1;
            put(b, err, " ");
            if (cJSON_GetArraySize(x) == 0)
                put(b, err, "(none)");
            cJSON_ArrayForEach(y, x) {
                if (!first)
                    put(b, err, ", ");
                put_scalar(b, err, y);
                first = 0;
            }
            put(b, err, "\n");
        } else if (cJSON_IsArray(x) || cJSON_IsObject(x)) {
            put(b, err, "\n");
            put_tree(b, err, x, indent + 2);
        } else {
            put(b, err, " ");
            put_scalar(b, err, x);
            put(b, err, "\n");
        }
    }
}

/* ---- API ---------------------------------------------------------------- */

patient_err
patient_inspect(const void *data, size_t len, const patient_inspect_opts *opts,
                patient_inspection **out)
{
    patient_inspect_opts o = PATIENT_OPTS_INIT(patient_inspect_opts);
    patient_inspection *r;
    patient_err err;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if ((data == NULL && len > 0) || (opts != NULL && (err = PT_OPTS_TAKE(&o, opts)) != PATIENT_OK))
        return PATIENT_ERR_ARG;
    if ((r = calloc(1, sizeof *r)) == NULL)
        return PATIENT_ERR_NOMEM;
    *out = r;
    if (detect(o.path, data ? data : "", len, o.head_only, o.path != NULL, r) == 0)
        return PATIENT_OK;
    /* A refusal is only its reason, whatever was begun before it. */
    r->kind = NULL;
    cJSON_Delete(r->details);
    r->details = NULL;
    return PATIENT_ERR_PARSE;
}

patient_err
patient_inspect_unreadable(patient_err read_err, patient_inspection **out)
{
    patient_inspection *r;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    if ((*out = r = calloc(1, sizeof *r)) == NULL)
        return PATIENT_ERR_NOMEM;
    fail(r, "cannot read: %s [%s]", patient_strerror(read_err), patient_errname(read_err));
    return PATIENT_OK;
}

const char *
patient_inspection_kind(const patient_inspection *r)
{
    return r && r->kind ? r->kind : NULL;
}

const char *
patient_inspection_title(const patient_inspection *r)
{
    return r && r->kind ? r->title : NULL;
}

int
patient_inspection_signed(const patient_inspection *r)
{
    return r && r->kind ? r->is_signed : 0;
}

const char *
patient_inspection_error(const patient_inspection *r)
{
    return r == NULL ? "out of memory" : r->kind ? NULL : r->why;
}

char *
patient_inspection_json(const patient_inspection *r, const char *input)
{
    cJSON *doc, *details = NULL;
    char *s = NULL;

    if (r == NULL || input == NULL || (doc = cJSON_CreateObject()) == NULL)
        return NULL;
    cJSON_AddNumberToObject(doc, "patient", 1);
    cJSON_AddStringToObject(doc, "type", "inspect");
    cJSON_AddStringToObject(doc, "input", input);
    if (r->kind) {
        cJSON_AddStringToObject(doc, "kind", r->kind);
        cJSON_AddStringToObject(doc, "title", r->title);
        cJSON_AddBoolToObject(doc, "signed", r->is_signed);
        cJSON_AddBoolToObject(doc, "verified", 0);
        if (r->is_signed)
            cJSON_AddStringToObject(doc, "note", PATIENT_INSPECT_NOT_VERIFIED);
        /* A copy: r stays unchanged, and may be rendered again. */
        if ((details = cJSON_Duplicate(r->details, 1)) == NULL ||
            !cJSON_AddItemToObject(doc, "details", details)) {
            cJSON_Delete(details);
            goto out;
        }
        cJSON_AddNullToObject(doc, "error");
    } else {
        cJSON_AddNullToObject(doc, "kind");
        cJSON_AddStringToObject(doc, "error", r->why);
    }
    s = cJSON_Print(doc);
out:
    cJSON_Delete(doc);
    return s;
}

char *
patient_inspection_text(const patient_inspection *r, const char *input)
{
    pt_buf b = {0};
    patient_err err = PATIENT_OK;

    if (r == NULL || input == NULL || r->kind == NULL) {
        errno = EINVAL;
        return NULL;
    }
    put(&b, &err, strcmp(input, "-") == 0 ? "(stdin)" : input);
    put(&b, &err, ": ");
    put(&b, &err, r->title);
    put(&b, &err, "\n");
    if (r->is_signed)
        put(&b, &err, "  " PATIENT_INSPECT_NOT_VERIFIED "\n");
    put_tree(&b, &err, r->details, 2);
    if (err == PATIENT_OK)
        err = pt_buf_append(&b, "", 1);
    if (err != PATIENT_OK) {
        pt_buf_free(&b);
        errno = ENOMEM;
        return NULL;
    }
    return (char *)b.data;
}

void
patient_inspection_free(patient_inspection *r)
{
    if (r == NULL)
        return;
    cJSON_Delete(r->details);
    free(r);
}
