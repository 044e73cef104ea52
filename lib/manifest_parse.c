/* Reading a manifest: the strict parser, signing and verifying its
 * detached minisign signature, and the accessors and lookups.
 * Format: docs/format/manifest.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <sodium.h>

#include <patient/manifest.h>
#include "hash_int.h"
#include "time_int.h"
#include "url_int.h"
#include "util.h"
#include "manifest_int.h"

/* ---- delegations and next keys (shared by build and parse) ---- */

static patient_err
glob_list(const cJSON *o, const char *key, size_t maxlen, int path, const char ***out,
          size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *it;
    size_t i = 0, cnt;

    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(a))
        return PATIENT_ERR_PARSE;
    cnt = (size_t)cJSON_GetArraySize(a);
    if (cnt == 0)
        return PATIENT_ERR_PARSE;
    if (cnt > PATIENT_MANIFEST_MAX_GLOBS)
        return PATIENT_ERR_LIMIT;
    if ((*out = calloc(cnt, sizeof **out)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(it, a)
    {
        const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
        size_t sl = s ? strlen(s) : 0;
        if (s == NULL || sl == 0 || sl > maxlen || (path && s[0] != '/'))
            return PATIENT_ERR_PARSE;
        for (size_t k = 0; k < sl; k++)
            if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
                return PATIENT_ERR_PARSE;
        (*out)[i++] = s;
    }
    *n = i;
    return PATIENT_OK;
}

void
dels_free(patient_delegation *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        free((void *)d[i].reasons);
        free((void *)d[i].paths);
    }
    free(d);
}

/* Validate a delegations array; strings point into a. */
patient_err
dels_parse(const cJSON *a, patient_delegation **out, size_t *n)
{
    const cJSON *it;
    patient_delegation *d = NULL;
    size_t cnt, i = 0;
    patient_err err = PATIENT_OK;

    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(a))
        return PATIENT_ERR_PARSE;
    cnt = (size_t)cJSON_GetArraySize(a);
    if (cnt > PATIENT_MANIFEST_MAX_DELEGATIONS)
        return PATIENT_ERR_LIMIT;
    if (cnt && (d = calloc(cnt, sizeof *d)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(it, a)
    {
        const char *name, *key;
        patient_delegation *x = &d[i++];
        if (!cJSON_IsObject(it)) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        name = pt_json_str(it, "name");
        key = pt_json_str(it, "key");
        if (name == NULL || key == NULL || name[0] == 0 ||
            strlen(name) > MAX_NAME || strlen(key) != PATIENT_PUBKEY_B64 - 1 ||
            strncmp(key, "RW", 2) != 0 || patient_pubkey_parse(key, strlen(key), &x->key)) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        x->name = name;
        if ((err = glob_list(it, "reasons", MAX_REASON, 0, (const char ***)&x->reasons,
                             &x->n_reasons)) ||
            (err = glob_list(it, "paths", MAX_GLOB, 1, (const char ***)&x->paths, &x->n_paths)))
            goto out;
    }
    *out = d;
    *n = i;
    d = NULL;
out:
    dels_free(d, i);
    return err;
}

/* ---- parsing ---- */

void
patient_manifest_free(patient_manifest *m)
{
    if (m == NULL)
        return;
    free(m->res);
    free(m->next_keys);
    free(m->tls_keys);
    free(m->shards);
    dels_free(m->dels, m->n_dels);
    cJSON_Delete(m->root);
    free(m);
}

/* Count would-be cJSON items ('{', '[' and ',' outside strings). */
static size_t
count_items(const char *s, size_t len)
{
    size_t n = 0;
    int instr = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (instr) {
            if (c == '\\')
                i++;
            else if (c == '"')
                instr = 0;
        } else if (c == '"') {
            instr = 1;
        } else if (c == '{' || c == '[' || c == ',') {
            n++;
        }
    }
    return n;
}

static int
cmp_res(const void *a, const void *b)
{
    return strcmp(((const struct res *)a)->path, ((const struct res *)b)->path);
}

static patient_err
type_check(const char *t)
{
    size_t n = t ? strlen(t) : 0;

    if (n == 0 || n > MAX_TYPE || strchr(t, '/') == NULL)
        return PATIENT_ERR_PARSE;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] >= 0x7f)
            return PATIENT_ERR_PARSE;
    return PATIENT_OK;
}

/* "resources": every entry checked, sorted by path for the lookups. */
static patient_err
parse_resources(patient_manifest *m, const cJSON *res, char **detail)
{
    const cJSON *it;
    size_t cnt;

    if (!cJSON_IsObject(res))
        return pt_detail_err(detail, PATIENT_ERR_PARSE, "resources: not an object");
    cnt = (size_t)cJSON_GetArraySize(res);
    if (cnt > PATIENT_MANIFEST_MAX_RESOURCES)
        return pt_detail_err(detail, PATIENT_ERR_LIMIT, "resources: more than %u entries",
                             PATIENT_MANIFEST_MAX_RESOURCES);
    if (cnt && (m->res = calloc(cnt, sizeof *m->res)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(it, res)
    {
        struct res *r = &m->res[m->n];
        long long size;
        patient_err pe;
        if (!cJSON_IsObject(it))
            return pt_detail_err(detail, PATIENT_ERR_PARSE, "resources.%.*s: not an object",
                                 PT_QUOTE(it->string));
        if ((pe = pt_path_check(it->string)) != PATIENT_OK)
            return pe == PATIENT_ERR_NOMEM ? pe
                   : pe == PATIENT_ERR_TOO_LARGE
                       ? pt_detail_err(detail, pe, "resources: a path longer than %u bytes",
                                       PATIENT_MANIFEST_MAX_PATH)
                       : pt_detail_err(detail, pe,
                                       "resources: \"%.*s\" is not a canonical URL path",
                                       PT_QUOTE(it->string));
        r->path = it->string;
        if (patient_sri_decode(pt_json_str(it, "integrity"), r->hash) != PATIENT_OK)
            return pt_detail_err(
                detail, PATIENT_ERR_PARSE,
                "resources.%.*s.integrity: not \"sha256-\" and 44 base64 characters",
                PT_QUOTE(it->string));
        if (pt_json_int(it, "size", &size) != 0 || size < 0)
            return pt_detail_err(detail, PATIENT_ERR_PARSE,
                                 "resources.%.*s.size: not an integer of at least 0",
                                 PT_QUOTE(it->string));
        if (type_check(r->type = pt_json_str(it, "type")))
            return pt_detail_err(detail, PATIENT_ERR_PARSE,
                                 "resources.%.*s.type: not a media type (printable, with a /, "
                                 "at most %d bytes)",
                                 PT_QUOTE(it->string), MAX_TYPE);
        r->size = (uint64_t)size;
        /* Optional (manifests from before chunk roots have none); when
         * present it must be well-formed: a verifier would otherwise fall
         * back to the weaker attested check without saying why. */
        if (cJSON_GetObjectItemCaseSensitive(it, "chunk_root") != NULL) {
            if (patient_sri_decode(pt_json_str(it, "chunk_root"), r->root) != PATIENT_OK)
                return pt_detail_err(detail, PATIENT_ERR_PARSE,
                                     "resources.%.*s.chunk_root: not \"sha256-\" and 44 base64 "
                                     "characters",
                                     PT_QUOTE(it->string));
            r->has_root = 1;
        }
        m->n++;
    }
    if (m->n)
        qsort(m->res, m->n, sizeof *m->res, cmp_res);
    for (size_t i = 1; i < m->n; i++)
        if (strcmp(m->res[i - 1].path, m->res[i].path) == 0)
            return pt_detail_err(detail, PATIENT_ERR_PARSE, "resources: \"%.*s\" is listed twice",
                                 PT_QUOTE(m->res[i].path));
    return PATIENT_OK;
}

/* A list of child shard hashes, 64 lower-case hex digits each. */
static patient_err
parse_shard_list(patient_manifest *m, const cJSON *a, size_t want, char **detail)
{
    const cJSON *it;

    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != want)
        return pt_detail_err(detail, PATIENT_ERR_PARSE, "shards: not an array of %zu hashes", want);
    if ((m->shards = calloc(want, sizeof *m->shards)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(it, a)
    {
        const char *h = cJSON_IsString(it) ? it->valuestring : NULL;
        if (h == NULL || strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64 ||
            pt_unhex(h, m->shards[m->n_shards], 32) != PATIENT_OK)
            return pt_detail_err(detail, PATIENT_ERR_PARSE,
                                 "shards[%zu]: not 64 lower-case hex digits", m->n_shards);
        m->n_shards++;
    }
    return PATIENT_OK;
}

/* "shard_bits": 1..3 integers of 1..8. */
static patient_err
parse_bits(patient_manifest *m, const cJSON *a, char **detail)
{
    const cJSON *it;

    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 ||
        cJSON_GetArraySize(a) > (int)PT_SHARD_MAX_LEVELS)
        return pt_detail_err(detail, PATIENT_ERR_PARSE,
                             "shard_bits: not an array of 1..%u integers", PT_SHARD_MAX_LEVELS);
    cJSON_ArrayForEach(it, a)
    {
        long long v;
        if (pt_json_item_int(it, &v) != 0 || v < 1 || v > (long long)PT_SHARD_MAX_BITS)
            return pt_detail_err(detail, PATIENT_ERR_PARSE, "shard_bits[%u]: not an integer 1..%u",
                                 m->nlevels, PT_SHARD_MAX_BITS);
        m->bits[m->nlevels++] = (unsigned)v;
    }
    return PATIENT_OK;
}

/* The top-level manifest (node = 0) or a shard document (node = 1); on
 * failure, *detail (detail may be NULL) names the first failing member and
 * why (pt_manifest_parse_detail). */
static patient_err
parse_doc(const void *json, size_t len, int node, patient_manifest **out, char **detail)
{
    const size_t max = node ? PATIENT_MANIFEST_SHARD_MAX_BYTES : PATIENT_MANIFEST_MAX_BYTES;
    const char *want = node ? "manifest-shard" : "manifest";
    patient_manifest *m = NULL;
    const cJSON *it, *res, *sh, *nk, *dl;
    const char *type;
    long long v;
    size_t cnt, i;
    patient_err err;

    *out = NULL;
    if (json == NULL)
        return PATIENT_ERR_ARG;
    if (len > max)
        return pt_detail_err(detail, PATIENT_ERR_TOO_LARGE, "larger than %zu bytes", max);
    if (count_items(json, len) > MAX_ITEMS)
        return pt_detail_err(detail, PATIENT_ERR_LIMIT, "more than %u JSON values", MAX_ITEMS);
    if ((m = calloc(1, sizeof *m)) == NULL)
        return PATIENT_ERR_NOMEM;
    m->node = node;
    if ((err = pt_json_parse_detail(json, len, PT_JSON_MAX_BYTES, &m->root, detail)))
        goto out;
    err = PATIENT_ERR_PARSE;
    if (!cJSON_IsObject(m->root)) {
        pt_detail_err(detail, err, "not a JSON object");
        goto out;
    }
    /* Duplicate keys (which would let two readers see two manifests) are
     * pt_json_parse's to refuse, anywhere in the document. */
    i = 0;
    cJSON_ArrayForEach(it, m->root)
    {
        if (++i > MAX_TOP_KEYS) {
            pt_detail_err(detail, err, "more than %d members", MAX_TOP_KEYS);
            goto out;
        }
    }
    if (pt_json_int(m->root, "patient", &v) != 0) {
        pt_detail_err(detail, err, "patient: not an integer");
        goto out;
    }
    if (v != PATIENT_MANIFEST_FORMAT) {
        err =
            pt_detail_err(detail, PATIENT_ERR_UNSUPPORTED,
                          "patient: format %lld, this reader reads %d", v, PATIENT_MANIFEST_FORMAT);
        goto out;
    }
    type = pt_json_str(m->root, "type");
    if (type == NULL || strcmp(type, want)) {
        pt_detail_err(detail, err, "type: not \"%s\"", want);
        goto out;
    }
    if ((m->origin = pt_json_str(m->root, "origin")) == NULL || pt_origin_check(m->origin)) {
        pt_detail_err(detail, err,
                      "origin: not an origin (scheme://host[:port], lower case, no path)");
        goto out;
    }
    if (pt_json_int(m->root, "version", &v) != 0 || v < 1) {
        pt_detail_err(detail, err, "version: not an integer of at least 1");
        goto out;
    }
    m->version = (uint64_t)v;
    res = cJSON_GetObjectItemCaseSensitive(m->root, "resources");
    sh = cJSON_GetObjectItemCaseSensitive(m->root, "shards");
    /* Exactly one of the two: a document listing both would let two
     * readers see two different sites. */
    if ((res == NULL) == (sh == NULL)) {
        pt_detail_err(detail, err, "%s",
                      res ? "resources and shards: both given, one is allowed"
                          : "resources: missing (or shards)");
        goto out;
    }
    if (node) {
        /* Freshness and keys are the top-level's alone; a shard is only
         * its bin's content. */
        if ((m->bin = pt_json_str(m->root, "bin")) == NULL || strlen(m->bin) >= 40 ||
            strspn(m->bin, "0123456789/") != strlen(m->bin)) {
            pt_detail_err(detail, err,
                          "bin: not child indices (digits and /, under 40 characters)");
            goto out;
        }
        m->leaf = res != NULL;
        if (res)
            err = parse_resources(m, res, detail);
        else if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) < 2 ||
                 cJSON_GetArraySize(sh) > (1 << PT_SHARD_MAX_BITS))
            err = pt_detail_err(detail, PATIENT_ERR_PARSE, "shards: not an array of 2..%d hashes",
                                1 << PT_SHARD_MAX_BITS);
        else
            err = parse_shard_list(m, sh, (size_t)cJSON_GetArraySize(sh), detail);
        if (err)
            goto out;
        goto done;
    }
    if (pt_json_time(m->root, "issued", &m->issued)) {
        pt_detail_err(detail, err, "issued: not a time of the form 2026-01-31T12:00:00Z");
        goto out;
    }
    if (pt_json_time(m->root, "expires", &m->expires)) {
        pt_detail_err(detail, err, "expires: not a time of the form 2026-01-31T12:00:00Z");
        goto out;
    }
    if (m->expires < m->issued) {
        pt_detail_err(detail, err, "expires: before issued");
        goto out;
    }
    if (res) {
        if ((err = parse_resources(m, res, detail)))
            goto out;
        err = PATIENT_ERR_PARSE;
        if (cJSON_GetObjectItemCaseSensitive(m->root, "shard_bits") != NULL) {
            pt_detail_err(detail, err, "shard_bits: given with resources (only with shards)");
            goto out;
        }
    } else {
        if ((err = parse_bits(m, cJSON_GetObjectItemCaseSensitive(m->root, "shard_bits"),
                              detail)) ||
            (err = parse_shard_list(m, sh, (size_t)1 << m->bits[0], detail)))
            goto out;
        err = PATIENT_ERR_PARSE;
    }
    if ((nk = cJSON_GetObjectItemCaseSensitive(m->root, "next_keys")) != NULL) {
        if (!cJSON_IsArray(nk)) {
            pt_detail_err(detail, err, "next_keys: not an array");
            goto out;
        }
        cnt = (size_t)cJSON_GetArraySize(nk);
        if (cnt > PATIENT_MANIFEST_MAX_NEXT_KEYS) {
            err = pt_detail_err(detail, PATIENT_ERR_LIMIT, "next_keys: more than %u keys",
                                PATIENT_MANIFEST_MAX_NEXT_KEYS);
            goto out;
        }
        if (cnt && (m->next_keys = calloc(cnt, sizeof *m->next_keys)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        cJSON_ArrayForEach(it, nk)
        {
            if (!cJSON_IsString(it) || strlen(it->valuestring) != PATIENT_PUBKEY_B64 - 1 ||
                strncmp(it->valuestring, "RW", 2) != 0 ||
                patient_pubkey_parse(it->valuestring, strlen(it->valuestring),
                                     &m->next_keys[m->n_next])) {
                pt_detail_err(detail, err, "next_keys[%zu]: not a public key string (RW...)",
                              m->n_next);
                goto out;
            }
            m->n_next++;
        }
    }
    if ((dl = cJSON_GetObjectItemCaseSensitive(m->root, "delegations")) != NULL &&
        (err = dels_parse(dl, &m->dels, &m->n_dels))) {
        if (err != PATIENT_ERR_NOMEM)
            pt_detail_err(detail, err,
                          "delegations: not an array of at most %u {name, key, reasons, "
                          "paths}, each list 1..%u strings",
                          PATIENT_MANIFEST_MAX_DELEGATIONS, PATIENT_MANIFEST_MAX_GLOBS);
        goto out;
    }
    if ((dl = cJSON_GetObjectItemCaseSensitive(m->root, "tls_keys")) != NULL &&
        (err = pt_pins_parse(dl, "tls_keys", &m->tls_keys, &m->n_tls_keys, detail)))
        goto out;
done:
    err = PATIENT_OK;
    *out = m;
    m = NULL;
out:
    patient_manifest_free(m);
    return err;
}

patient_err
patient_manifest_parse(const void *json, size_t len, patient_manifest **out)
{
    return parse_doc(json, len, 0, out, NULL);
}

patient_err
pt_shard_parse(const void *json, size_t len, patient_manifest **out)
{
    return parse_doc(json, len, 1, out, NULL);
}

patient_err
pt_manifest_parse_detail(const void *json, size_t len, int shard, patient_manifest **out,
                         char **detail)
{
    if (detail)
        *detail = NULL;
    return parse_doc(json, len, shard != 0, out, detail);
}

static patient_err
comment_for(const patient_manifest *m, char out[PATIENT_MANIFEST_COMMENT_MAX])
{
    char ex[PATIENT_TIME_BYTES];
    int n;

    pt_time_format(m->expires, ex);
    n = snprintf(out, PATIENT_MANIFEST_COMMENT_MAX,
                 "patient-manifest origin=%s version=%llu expires=%s", m->origin,
                 (unsigned long long)m->version, ex);
    return n > 0 && n < (int)PATIENT_MANIFEST_COMMENT_MAX ? PATIENT_OK : PATIENT_ERR_TOO_LARGE;
}

patient_err
pt_manifest_sign_parsed(const patient_seckey *sk, const patient_manifest *m, const void *json,
                        size_t len, char **sig)
{
    char tc[PATIENT_MANIFEST_COMMENT_MAX];
    patient_err err;

    *sig = NULL;
    if ((err = comment_for(m, tc)))
        return err;
    return patient_minisig_sign(sk, json, len, "patient manifest signature", tc, sig);
}

patient_err
patient_manifest_sign(const patient_seckey *sk, const void *json, size_t len, char **sig)
{
    patient_manifest *m = NULL;
    patient_err err;

    *sig = NULL;
    if ((err = patient_manifest_parse(json, len, &m)))
        return err;
    err = pt_manifest_sign_parsed(sk, m, json, len, sig);
    patient_manifest_free(m);
    return err;
}

patient_err
patient_manifest_verify(const void *json, size_t len, const char *sig, size_t siglen,
                        const patient_pubkey *pk, patient_manifest **out)
{
    char *tc = NULL;
    char want[PATIENT_MANIFEST_COMMENT_MAX];
    patient_manifest *m = NULL;
    patient_err err;

    *out = NULL;
    if (json == NULL || sig == NULL || pk == NULL)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_MANIFEST_MAX_BYTES)
        return PATIENT_ERR_TOO_LARGE;
    if ((err = patient_minisig_verify(pk, json, len, sig, siglen, &tc, NULL)))
        goto out;
    if ((err = patient_manifest_parse(json, len, &m)) || (err = comment_for(m, want)))
        goto out;
    if (strcmp(tc, want) != 0) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    *out = m;
    m = NULL;
out:
    free(tc);
    patient_manifest_free(m);
    return err;
}

/* ---- accessors ---- */

const char *
patient_manifest_origin(const patient_manifest *m)
{
    return m->origin;
}

uint64_t
patient_manifest_version(const patient_manifest *m)
{
    return m->version;
}

time_t
patient_manifest_issued(const patient_manifest *m)
{
    return m->issued;
}

time_t
patient_manifest_expires(const patient_manifest *m)
{
    return m->expires;
}

patient_err
patient_manifest_check_fresh(const patient_manifest *m, time_t now)
{
    if (now > m->expires || m->issued > now + PATIENT_CLOCK_SKEW)
        return PATIENT_ERR_EXPIRED;
    return PATIENT_OK;
}

static void
res_out(const struct res *r, patient_resource *out)
{
    out->path = r->path;
    memcpy(out->hash, r->hash, sizeof out->hash);
    out->size = r->size;
    out->has_chunk_root = r->has_root;
    memcpy(out->chunk_root, r->root, sizeof out->chunk_root);
    out->type = r->type;
}

patient_err
patient_manifest_lookup(const patient_manifest *m, const char *path, patient_resource *out)
{
    pt_buf c = {0};
    struct res key, *hit;
    patient_err err;

    if (m == NULL || path == NULL || out == NULL)
        return PATIENT_ERR_ARG;
    /* A sharded top-level lists no resource itself: answering "not
     * listed" would hide every page (patient_manifest_lookup_sharded). */
    if (m->nlevels)
        return PATIENT_ERR_UNSUPPORTED;
    if ((err = pt_path_canonical(path, &c)))
        return err;
    key.path = (const char *)c.data;
    hit = m->n ? bsearch(&key, m->res, m->n, sizeof *m->res, cmp_res) : NULL;
    pt_buf_free(&c);
    if (hit == NULL)
        return PATIENT_ERR_NOT_FOUND;
    res_out(hit, out);
    return PATIENT_OK;
}

size_t
patient_manifest_count(const patient_manifest *m)
{
    return m->n;
}

patient_err
patient_manifest_resource(const patient_manifest *m, size_t i, patient_resource *out)
{
    if (i >= m->n)
        return PATIENT_ERR_NOT_FOUND;
    res_out(&m->res[i], out);
    return PATIENT_OK;
}

size_t
patient_manifest_tls_key_count(const patient_manifest *m)
{
    return m ? m->n_tls_keys : 0;
}

const uint8_t *
patient_manifest_tls_key(const patient_manifest *m, size_t i)
{
    return m && i < m->n_tls_keys ? m->tls_keys[i] : NULL;
}

size_t
patient_manifest_next_key_count(const patient_manifest *m)
{
    return m->n_next;
}

const patient_pubkey *
patient_manifest_next_key(const patient_manifest *m, size_t i)
{
    return i < m->n_next ? &m->next_keys[i] : NULL;
}

size_t
patient_manifest_delegation_count(const patient_manifest *m)
{
    return m->n_dels;
}

const patient_delegation *
patient_manifest_delegation(const patient_manifest *m, size_t i)
{
    return i < m->n_dels ? &m->dels[i] : NULL;
}
