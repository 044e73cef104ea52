/* Evidence bundles (docs/format/report.md, "Evidence bundle"): writing one
 * from the evidence of a verification, and re-verifying one offline. The
 * reader and writer of the format; patient_verify_url writes one through
 * patient_bundle_build. Format contract: docs/format/report.md. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <patient/bundle.h>
#include <patient/fetch.h>
#include <patient/hash.h>
#include <patient/policy.h>
#include <patient/verify.h>
#include "hash_int.h"
#include "policy_int.h"
#include "report_int.h"
#include "time_int.h"
#include "util.h"
#include "verify_int.h"

/* At most one shard a level of a sharded manifest (docs/format/report.md). */
#define PT_BUNDLE_MAX_SHARDS 3

/* ---- evidence bundles ---------------------------------------------------- */

static cJSON *
b64_item(const uint8_t *p, size_t len)
{
    char *s = NULL;
    cJSON *o;

    if (p == NULL)
        return cJSON_CreateNull();
    if (pt_b64_encode(p, len, 0, &s) != PATIENT_OK)
        return NULL;
    o = cJSON_CreateString(s);
    free(s);
    return o;
}

static cJSON *
text_item(const char *p, size_t len)
{
    char *s;
    cJSON *o;

    if (p == NULL)
        return cJSON_CreateNull();
    if ((s = strndup(p, len)) == NULL)
        return NULL;
    o = cJSON_CreateString(s);
    free(s);
    return o;
}

/* ---- writing a bundle -------------------------------------------------------
 * cJSON's adders fail (NULL, false) only when out of memory: every member
 * is checked (pt_json_put, pt_json_push), so that a bundle is written whole
 * or not at all. */

static cJSON *
str_item(const char *s)
{
    return text_item(s, s ? strlen(s) : 0);
}

/* The chain the verifier saw, so that an offline check judges who
 * decrypted as the online one did (it is this record, not a new
 * observation: docs/SECURITY.md); null when none was known. */
static cJSON *
chain_item(const patient_evidence *ev)
{
    if (ev->tls_chain_n == 0 || ev->tls_chain == NULL)
        return cJSON_CreateNull();
    return pt_pins_json(ev->tls_chain, ev->tls_chain_n < PATIENT_FETCH_MAX_CHAIN
                                           ? ev->tls_chain_n
                                           : PATIENT_FETCH_MAX_CHAIN);
}

static int
shard_members(cJSON *o, const patient_evidence *ev, size_t i)
{
    const patient_evidence_shard *s = &ev->shards[i];

    return pt_json_put(o, "name", cJSON_CreateString(s->name ? s->name : "")) &&
           pt_json_put(o, "bytes", b64_item(s->bytes, s->len)) &&
           pt_json_put(o, "error", str_item(s->error));
}

static int
disclosure_members(cJSON *o, const patient_evidence *ev, size_t i)
{
    const patient_evidence_disclosure *d = &ev->disclosures[i];

    return pt_json_put(o, "url", cJSON_CreateString(d->url ? d->url : "")) &&
           pt_json_put(o, "json", b64_item(d->json, d->json_len)) &&
           pt_json_put(o, "sig", text_item(d->sig, d->sig_len)) &&
           pt_json_put(o, "error", str_item(d->error));
}

/* An array of n objects, object i filled by members(o, ev, i). */
static cJSON *
objects_item(const patient_evidence *ev, size_t n,
             int (*members)(cJSON *o, const patient_evidence *ev, size_t i))
{
    cJSON *a = cJSON_CreateArray(), *o;

    for (size_t i = 0; a && i < n; i++)
        if (!pt_json_push(a, o = cJSON_CreateObject()) || !members(o, ev, i)) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

/* The page as received: its URL, status, body and descriptors. */
static int
page_members(cJSON *b, const patient_evidence *ev, time_t at)
{
    char ts[PATIENT_TIME_BYTES], sri[PATIENT_SRI_BYTES];
    uint8_t h[PATIENT_SHA256_BYTES];

    pt_time_format(at, ts);
    patient_sha256(ev->body, ev->body_len, h);
    patient_sri_encode(h, sri);
    return pt_json_put(b, "patient", cJSON_CreateNumber(1)) &&
           pt_json_put(b, "type", cJSON_CreateString("bundle")) &&
           pt_json_put(b, "created", cJSON_CreateString(ts)) &&
           pt_json_put(b, "url", cJSON_CreateString(ev->url)) &&
           pt_json_put(b, "status", cJSON_CreateNumber((double)ev->status)) &&
           pt_json_put(b, "body_integrity", cJSON_CreateString(sri)) &&
           pt_json_put(b, "body_size", cJSON_CreateNumber((double)ev->body_len)) &&
           pt_json_put(b, "body", b64_item(ev->body, ev->body_len)) &&
           pt_json_put(b, "changes", pt_json_strings(ev->changes, ev->nchanges)) &&
           pt_json_put(b, "origin_sig", str_item(ev->origin_sig));
}

/* What the verifier fetched besides: the manifest (or why it is missing),
 * the chain, the shards and the disclosures. */
static int
fetched_members(cJSON *b, const patient_evidence *ev)
{
    return pt_json_put(b, "manifest", b64_item(ev->manifest, ev->manifest_len)) &&
           pt_json_put(b, "manifest_sig", text_item(ev->manifest_sig, ev->manifest_sig_len)) &&
           pt_json_put(b, "manifest_error", str_item(ev->manifest_error)) &&
           pt_json_put(b, "tls_chain", chain_item(ev)) &&
           pt_json_put(b, "shards", objects_item(ev, ev->nshards, shard_members)) &&
           pt_json_put(b, "disclosures", objects_item(ev, ev->ndisclosures, disclosure_members));
}

patient_err
patient_bundle_build(const patient_evidence *ev, const patient_policy *policy, time_t at,
                     char **out)
{
    cJSON *b;
    patient_err err = PATIENT_ERR_NOMEM;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if (ev == NULL || ev->url == NULL)
        return PATIENT_ERR_ARG;
    if ((b = cJSON_CreateObject()) == NULL)
        return err;
    /* The policy's member from the policy itself, as its file would hold
     * it (printed here in the bundle's own layout), not printed to text
     * and parsed back. */
    if (page_members(b, ev, at) && fetched_members(b, ev) &&
        pt_json_put(b, "policy", policy ? pt_policy_json(policy) : cJSON_CreateNull()) &&
        (*out = cJSON_Print(b)) != NULL)
        err = PATIENT_OK;
    cJSON_Delete(b);
    return err;
}

/* ---- reading a bundle -------------------------------------------------------
 * One reader for both users: patient_verify_bundle reads all of it
 * (bundle_page_head, bundle_descriptors, bundle_page_rest, in that order:
 * the order its errors have always had), patient_bundle_read the
 * descriptors alone, for tools that need only them (patient audit
 * included). Everything below points into doc or into buffers owned here. */

struct patient_bundle {
    cJSON *doc;
    /* bundle_descriptors */
    const char *changes[PATIENT_BUNDLE_MAX_CHANGES];
    size_t nchanges;
    const cJSON *log_proofs;   /* the array, NULL when absent or null */
    /* the page (bundle_page_head, bundle_page_rest): patient_verify_bundle */
    patient_evidence ev;
    const char *created, *sri;
    uint8_t *body, *man;
    char *logged[PATIENT_BUNDLE_MAX_CHANGES];
    uint8_t chain[PATIENT_FETCH_MAX_CHAIN][32];
    patient_evidence_disclosure disc[PATIENT_MAX_HOPS];
    uint8_t *dj[PATIENT_MAX_HOPS];
    patient_evidence_shard shards[PT_BUNDLE_MAX_SHARDS];
    uint8_t *sb[PT_BUNDLE_MAX_SHARDS];
};

void
patient_bundle_free(patient_bundle *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < PATIENT_MAX_HOPS; i++)
        free(b->dj[i]);
    for (size_t i = 0; i < PT_BUNDLE_MAX_SHARDS; i++)
        free(b->sb[i]);
    for (size_t i = 0; i < PATIENT_BUNDLE_MAX_CHANGES; i++)
        free(b->logged[i]);
    free(b->body);
    free(b->man);
    cJSON_Delete(b->doc);
    free(b);
}

/* Decode an optional base64 member; absent or null gives NULL. */
static patient_err
b64_member(const cJSON *o, const char *k, uint8_t **p, size_t *len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    *p = NULL;
    *len = 0;
    if (v == NULL || cJSON_IsNull(v))
        return PATIENT_OK;
    if (!cJSON_IsString(v))
        return PATIENT_ERR_PARSE;
    return pt_b64_decode(v->valuestring, strlen(v->valuestring), 0, p, len);
}

static const char *
opt_str(const cJSON *o, const char *k, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v)) {
        *bad = 1;
        return NULL;
    }
    return v->valuestring;
}

/* The size cap, then strict JSON. */
static patient_err
bundle_parse(const char *json, size_t len, patient_bundle **out)
{
    patient_bundle *b;
    patient_err err;

    *out = NULL;
    if (json == NULL)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_BUNDLE_MAX)
        return PATIENT_ERR_TOO_LARGE;
    if ((b = calloc(1, sizeof *b)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = pt_json_parse(json, len, &b->doc)) != PATIENT_OK) {
        patient_bundle_free(b);
        return err;
    }
    *out = b;
    return PATIENT_OK;
}

/* The descriptors: "changes", at most PATIENT_BUNDLE_MAX_CHANGES strings
 * (required), and "log_proofs", absent, null, or one object or null per
 * change. PATIENT_ERR_PARSE with *why naming what is wrong. */
static patient_err
bundle_descriptors(patient_bundle *b, const char **why)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(b->doc, "changes"), *it;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > PATIENT_BUNDLE_MAX_CHANGES) {
        _Static_assert(PATIENT_BUNDLE_MAX_CHANGES == 33, "the message names the cap");
        *why = "no \"changes\" array of at most 33 strings";
        return PATIENT_ERR_PARSE;
    }
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) {
            *why = "a \"changes\" element is not a string";
            return PATIENT_ERR_PARSE;
        }
        b->changes[b->nchanges++] = it->valuestring;
    }
    arr = cJSON_GetObjectItemCaseSensitive(b->doc, "log_proofs");
    if (arr == NULL || cJSON_IsNull(arr))
        return PATIENT_OK;
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != b->nchanges) {
        *why = "\"log_proofs\" is not an array with one element per change";
        return PATIENT_ERR_PARSE;
    }
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsNull(it) && !cJSON_IsObject(it)) {
            *why = "a \"log_proofs\" element is neither an object nor null";
            return PATIENT_ERR_PARSE;
        }
    }
    b->log_proofs = arr;
    return PATIENT_OK;
}

/* Change k's logged-change evidence as compact text (the form
 * patient_log_evidence_check reads), NULL when there is none. */
static patient_err
bundle_log_proof(const patient_bundle *b, size_t k, char **text)
{
    const cJSON *it = b->log_proofs ? cJSON_GetArrayItem(b->log_proofs, (int)k) : NULL;

    *text = NULL;
    if (it == NULL || !cJSON_IsObject(it))
        return PATIENT_OK;
    return (*text = cJSON_PrintUnformatted(it)) != NULL ? PATIENT_OK : PATIENT_ERR_NOMEM;
}

/* The page's identity and bytes: type, url, created, the body (which must
 * match body_integrity: HASH), the manifest, the format version
 * (UNSUPPORTED) and the HTTP status. */
static patient_err
bundle_page_head(patient_bundle *b)
{
    const cJSON *d = b->doc;
    uint8_t h[PATIENT_SHA256_BYTES], want[PATIENT_SHA256_BYTES];
    size_t bodylen = 0;
    long long st, ver;
    patient_err err = PATIENT_ERR_PARSE;

    if (!cJSON_IsObject(d) || pt_json_str(d, "type") == NULL ||
        strcmp(pt_json_str(d, "type"), "bundle") != 0 ||
        (b->ev.url = pt_json_str(d, "url")) == NULL ||
        (b->created = pt_json_str(d, "created")) == NULL ||
        (b->sri = pt_json_str(d, "body_integrity")) == NULL)
        goto out;
    if ((err = b64_member(d, "body", &b->body, &bodylen)) || b->body == NULL ||
        (err = b64_member(d, "manifest", &b->man, &b->ev.manifest_len))) {
        err = err ? err : PATIENT_ERR_PARSE;
        goto out;
    }
    /* The recorded HTTP status is evidence too: a 404 page whose body
     * happens to be listed must not verify offline when it would not
     * online. An integer literal, required. */
    if (pt_json_int(d, "patient", &ver) != 0) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    if (ver != 1) {
        err = PATIENT_ERR_UNSUPPORTED;
        goto out;
    }
    if (pt_json_int(d, "status", &st) != 0 || st < 100 || st > 599) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    b->ev.status = (long)st;
    /* The bundle's own integrity: the body must match its recorded hash. */
    if (patient_sri_decode(b->sri, want) != PATIENT_OK ||
        patient_sha256(b->body, bodylen, h) != PATIENT_OK || memcmp(h, want, sizeof h) != 0) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    b->ev.body = b->body;
    b->ev.body_len = bodylen;
    b->ev.manifest = b->man;
    err = PATIENT_OK;
out:
    return err;
}

/* The rest of the page: the descriptors as evidence with their logged-
 * change evidence, the signatures and why the manifest was missing, the
 * TLS chain, the disclosures and the shards. */
static patient_err
bundle_page_rest(patient_bundle *b)
{
    patient_evidence *ev = &b->ev;
    const cJSON *arr, *it;
    patient_err err = PATIENT_ERR_PARSE; /* every structural failure below */
    int bad = 0;

    ev->changes = b->changes;
    ev->nchanges = b->nchanges;
    ev->offline = 1;
    /* Logged-change evidence: one element per change, an object or null
     * (docs/format/report.md); each is checked by the verifier. */
    if (b->log_proofs) {
        for (size_t k = 0; k < b->nchanges; k++)
            if ((err = bundle_log_proof(b, k, &b->logged[k])) != PATIENT_OK)
                goto out;
        ev->log_evidence = (const char *const *)b->logged;
        err = PATIENT_ERR_PARSE;
    }
    ev->origin_sig = opt_str(b->doc, "origin_sig", &bad);
    ev->manifest_sig = opt_str(b->doc, "manifest_sig", &bad);
    ev->manifest_sig_len = ev->manifest_sig ? strlen(ev->manifest_sig) : 0;
    ev->manifest_error = opt_str(b->doc, "manifest_error", &bad);
    arr = cJSON_GetObjectItemCaseSensitive(b->doc, "tls_chain");
    if (arr && !cJSON_IsNull(arr)) {
        size_t at;
        if (pt_chain_from_json(arr, b->chain, &ev->tls_chain_n, &at) != 0)
            goto out;
        ev->tls_chain = (const uint8_t(*)[32])b->chain;
    }
    arr = cJSON_GetObjectItemCaseSensitive(b->doc, "disclosures");
    if (arr && (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > PATIENT_MAX_HOPS))
        goto out;
    cJSON_ArrayForEach(it, arr)
    {
        patient_evidence_disclosure *d = &b->disc[ev->ndisclosures];
        if ((err = b64_member(it, "json", &b->dj[ev->ndisclosures], &d->json_len)) != PATIENT_OK)
            goto out;
        err = PATIENT_ERR_PARSE;
        d->json = b->dj[ev->ndisclosures];
        d->url = opt_str(it, "url", &bad);
        d->sig = opt_str(it, "sig", &bad);
        d->sig_len = d->sig ? strlen(d->sig) : 0;
        d->error = opt_str(it, "error", &bad);
        ev->ndisclosures++;
    }
    ev->disclosures = b->disc;
    /* Optional (bundles from before shards have none), at most one shard
     * a level. */
    arr = cJSON_GetObjectItemCaseSensitive(b->doc, "shards");
    if (arr && (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > PT_BUNDLE_MAX_SHARDS))
        goto out;
    cJSON_ArrayForEach(it, arr)
    {
        patient_evidence_shard *sh = &b->shards[ev->nshards];
        if ((err = b64_member(it, "bytes", &b->sb[ev->nshards], &sh->len)) != PATIENT_OK)
            goto out;
        err = PATIENT_ERR_PARSE;
        sh->bytes = b->sb[ev->nshards];
        sh->name = opt_str(it, "name", &bad);
        sh->error = opt_str(it, "error", &bad);
        ev->nshards++;
    }
    ev->shards = b->shards;
    err = bad ? PATIENT_ERR_PARSE : PATIENT_OK;
out:
    return err;
}

/* The bundled policy, used when the caller passed none: the object itself,
 * read as a policy file's would be (patient_policy_parse), never printed
 * and parsed again. */
static patient_err
bundle_policy(const patient_bundle *b, patient_policy **own)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(b->doc, "policy");
    char *detail = NULL;
    patient_err err;

    if (!cJSON_IsObject(p))
        return PATIENT_ERR_PARSE;
    err = pt_policy_from_json(p, 0, own, &detail);
    free(detail);
    return err;
}

/* As patient_verify_url reports a page that was not 200. */
static patient_err
bundle_status_report(const patient_bundle *b, time_t now, patient_report **report)
{
    patient_err err;

    if ((err = rep_new(report, b->ev.url, now)) != PATIENT_OK)
        goto out;
    rep_result(*report, REP_UNVERIFIABLE, "fetch.status", b->ev.url,
               "the server answered HTTP %ld", b->ev.status);
    if ((err = rep_finish(*report, 0)) != PATIENT_OK) {
        patient_report_free(*report);
        *report = NULL;
    }
out:
    return err;
}

patient_err
patient_verify_bundle(const char *json, size_t len, const patient_policy *policy,
                      const patient_verify_opts *opts, patient_report **report)
{
    patient_bundle *b = NULL;
    patient_policy *own = NULL;
    patient_verify_opts o = {0};
    const char *why = NULL;
    patient_err err;

    *report = NULL;
    if ((err = bundle_parse(json, len, &b)) != PATIENT_OK ||
        (err = bundle_page_head(b)) != PATIENT_OK ||
        (err = bundle_descriptors(b, &why)) != PATIENT_OK ||
        (err = bundle_page_rest(b)) != PATIENT_OK)
        goto out;
    if ((err = PT_OPTS_TAKE(&o, opts)) != PATIENT_OK)
        goto out;
    o.state_file = NULL; /* offline: never touch rollback state */
    if (o.now == 0 && (err = pt_time_parse(b->created, &o.now)) != PATIENT_OK)
        goto out;
    if (policy == NULL) {
        if ((err = bundle_policy(b, &own)) != PATIENT_OK)
            goto out;
        policy = own;
    }
    if (b->ev.status != 200)
        err = bundle_status_report(b, o.now, report);
    else
        err = patient_verify_evidence(policy, &b->ev, &o, report);
out:
    patient_policy_free(own);
    patient_bundle_free(b);
    return err;
}

/* ---- the descriptors alone, for tools -------------------------------------- */

patient_err
patient_bundle_read(const char *json, size_t len, patient_bundle **out, const char **why)
{
    patient_bundle *b = NULL;
    const char *w = NULL;
    patient_err err;

    if (why)
        *why = NULL;
    if (out == NULL)
        return PATIENT_ERR_ARG;
    if ((err = bundle_parse(json, len, &b)) != PATIENT_OK ||
        (err = bundle_descriptors(b, &w)) != PATIENT_OK) {
        patient_bundle_free(b);
        b = NULL;
    }
    if (why)
        *why = w;
    *out = b;
    return err;
}

size_t
patient_bundle_change_count(const patient_bundle *b)
{
    return b ? b->nchanges : 0;
}

const char *const *
patient_bundle_changes(const patient_bundle *b)
{
    return b ? b->changes : NULL;
}

patient_err
patient_bundle_log_proof(const patient_bundle *b, size_t k, char **json)
{
    if (json == NULL)
        return PATIENT_ERR_ARG;
    *json = NULL;
    if (b == NULL || k >= b->nchanges)
        return PATIENT_ERR_ARG;
    return bundle_log_proof(b, k, json);
}

patient_err
patient_bundle_set_log_proofs(patient_bundle *b, const char *const *evidence, size_t n)
{
    cJSON *arr;

    if (b == NULL || (evidence == NULL && n > 0) || n != b->nchanges)
        return PATIENT_ERR_ARG;
    if ((arr = cJSON_CreateArray()) == NULL)
        return PATIENT_ERR_NOMEM;
    for (size_t k = 0; k < n; k++) {
        cJSON *ev = NULL;
        patient_err err = PATIENT_OK;
        if (evidence[k] == NULL) {
            if ((ev = cJSON_CreateNull()) == NULL)
                err = PATIENT_ERR_NOMEM;
        } else if ((err = pt_json_parse(evidence[k], strlen(evidence[k]), &ev)) != PATIENT_OK) {
            if (err != PATIENT_ERR_NOMEM)
                err = PATIENT_ERR_PARSE;
        } else if (!cJSON_IsObject(ev)) {
            err = PATIENT_ERR_PARSE;
        }
        if (err == PATIENT_OK && !cJSON_AddItemToArray(arr, ev))
            err = PATIENT_ERR_NOMEM;
        if (err != PATIENT_OK) {
            cJSON_Delete(ev);
            cJSON_Delete(arr);
            return err;
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(b->doc, "log_proofs");
    if (!cJSON_AddItemToObject(b->doc, "log_proofs", arr)) {
        cJSON_Delete(arr);
        b->log_proofs = NULL;
        return PATIENT_ERR_NOMEM;
    }
    b->log_proofs = arr;
    return PATIENT_OK;
}

patient_err
patient_bundle_print(const patient_bundle *b, char **out)
{
    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if (b == NULL)
        return PATIENT_ERR_ARG;
    return (*out = cJSON_Print(b->doc)) != NULL ? PATIENT_OK : PATIENT_ERR_NOMEM;
}
