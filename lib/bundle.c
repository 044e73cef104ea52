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
#include "report_int.h"
#include "time_int.h"
#include "util.h"
#include "verify_int.h"

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

/* Bundles and the native host carry a chain alike (verify_int.h). */
int
pt_chain_from_json(const cJSON *ch, uint8_t (*out)[32], size_t *n, size_t *bad)
{
    const cJSON *c;
    size_t k = cJSON_IsArray(ch) ? (size_t)cJSON_GetArraySize(ch) : 0;

    *n = 0;
    *bad = 0;
    if (k == 0 || k > PATIENT_FETCH_MAX_CHAIN)
        return -1;
    cJSON_ArrayForEach(c, ch) {
        if (!cJSON_IsString(c) || patient_sri_decode(c->valuestring, out[*n]) != PATIENT_OK) {
            *bad = *n + 1;
            *n = 0;
            return -1;
        }
        (*n)++;
    }
    return 0;
}

patient_err
patient_bundle_build(const patient_evidence *ev, const char *policy_json, time_t at, char **out)
{
    cJSON *b = cJSON_CreateObject(), *arr, *pol = NULL;
    char ts[21], sri[PATIENT_SRI_BYTES];
    uint8_t h[PATIENT_SHA256_BYTES];
    patient_err err = PATIENT_ERR_NOMEM;

    *out = NULL;
    if (b == NULL)
        return err;
    pt_time_format(at, ts);
    patient_sha256(ev->body, ev->body_len, h);
    patient_sri_encode(h, sri);
    if (policy_json && (err = pt_json_parse(policy_json, strlen(policy_json), &pol)) != PATIENT_OK)
        goto out;
    err = PATIENT_ERR_NOMEM;
    cJSON_AddNumberToObject(b, "patient", 1);
    cJSON_AddStringToObject(b, "type", "bundle");
    cJSON_AddStringToObject(b, "created", ts);
    cJSON_AddStringToObject(b, "url", ev->url);
    cJSON_AddNumberToObject(b, "status", (double)ev->status);
    cJSON_AddStringToObject(b, "body_integrity", sri);
    cJSON_AddNumberToObject(b, "body_size", (double)ev->body_len);
    cJSON_AddItemToObject(b, "body", b64_item(ev->body, ev->body_len));
    arr = cJSON_AddArrayToObject(b, "changes");
    for (size_t i = 0; i < ev->nchanges; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(ev->changes[i]));
    cJSON_AddItemToObject(b, "origin_sig", text_item(ev->origin_sig, ev->origin_sig ? strlen(ev->origin_sig) : 0));
    cJSON_AddItemToObject(b, "manifest", b64_item(ev->manifest, ev->manifest_len));
    cJSON_AddItemToObject(b, "manifest_sig", text_item(ev->manifest_sig, ev->manifest_sig_len));
    cJSON_AddItemToObject(b, "manifest_error",
                          text_item(ev->manifest_error,
                                    ev->manifest_error ? strlen(ev->manifest_error) : 0));
    /* The chain the verifier saw, so that an offline check judges who
     * decrypted as the online one did (it is this record, not a new
     * observation: docs/SECURITY.md). */
    if (ev->tls_chain_n > 0 && ev->tls_chain != NULL) {
        arr = cJSON_AddArrayToObject(b, "tls_chain");
        for (size_t i = 0; i < ev->tls_chain_n && i < PATIENT_FETCH_MAX_CHAIN; i++) {
            patient_sri_encode(ev->tls_chain[i], sri);
            cJSON_AddItemToArray(arr, cJSON_CreateString(sri));
        }
    } else {
        cJSON_AddNullToObject(b, "tls_chain");
    }
    arr = cJSON_AddArrayToObject(b, "shards");
    for (size_t i = 0; i < ev->nshards; i++) {
        const patient_evidence_shard *s = &ev->shards[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->name ? s->name : "");
        cJSON_AddItemToObject(o, "bytes", b64_item(s->bytes, s->len));
        cJSON_AddItemToObject(o, "error", text_item(s->error, s->error ? strlen(s->error) : 0));
        cJSON_AddItemToArray(arr, o);
    }
    arr = cJSON_AddArrayToObject(b, "disclosures");
    for (size_t i = 0; i < ev->ndisclosures; i++) {
        const patient_evidence_disclosure *d = &ev->disclosures[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "url", d->url ? d->url : "");
        cJSON_AddItemToObject(o, "json", b64_item(d->json, d->json_len));
        cJSON_AddItemToObject(o, "sig", text_item(d->sig, d->sig_len));
        cJSON_AddItemToObject(o, "error", text_item(d->error, d->error ? strlen(d->error) : 0));
        cJSON_AddItemToArray(arr, o);
    }
    if (pol) {
        cJSON_AddItemToObject(b, "policy", pol);
        pol = NULL;
    } else {
        cJSON_AddNullToObject(b, "policy");
    }
    if ((*out = cJSON_Print(b)) != NULL)
        err = PATIENT_OK;
out:
    cJSON_Delete(pol);
    cJSON_Delete(b);
    return err;
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

patient_err
patient_verify_bundle(const char *json, size_t len, const patient_policy *policy,
                      const patient_verify_opts *opts, patient_report **report)
{
    cJSON *b = NULL, *arr, *it;
    patient_evidence ev;
    patient_evidence_disclosure disc[PATIENT_MAX_HOPS];
    const char *values[PATIENT_MAX_HOPS + 1];
    char *logged[PATIENT_MAX_HOPS + 1] = {0};
    uint8_t *body = NULL, *man = NULL, *dj[PATIENT_MAX_HOPS] = {0}, *sb[3] = {0};
    patient_evidence_shard shards[3];
    size_t bodylen = 0, manlen = 0;
    patient_policy *own = NULL;
    patient_verify_opts o = {0};
    char *ptext = NULL, *detail = NULL;
    uint8_t h[PATIENT_SHA256_BYTES], want[PATIENT_SHA256_BYTES];
    uint8_t chain[PATIENT_FETCH_MAX_CHAIN][32];
    patient_err err;
    int bad = 0;
    const char *created, *sri;

    *report = NULL;
    memset(&ev, 0, sizeof ev);
    memset(disc, 0, sizeof disc);
    memset(shards, 0, sizeof shards);
    if (len > PATIENT_BUNDLE_MAX)
        return PATIENT_ERR_TOO_LARGE;
    if ((err = pt_json_parse(json, len, &b)) != PATIENT_OK)
        return err;
    err = PATIENT_ERR_PARSE;
    if (!cJSON_IsObject(b) || pt_json_str(b, "type") == NULL ||
        strcmp(pt_json_str(b, "type"), "bundle") != 0 ||
        (ev.url = pt_json_str(b, "url")) == NULL || (created = pt_json_str(b, "created")) == NULL ||
        (sri = pt_json_str(b, "body_integrity")) == NULL)
        goto out;
    if ((err = b64_member(b, "body", &body, &bodylen)) || body == NULL ||
        (err = b64_member(b, "manifest", &man, &manlen))) {
        err = err ? err : PATIENT_ERR_PARSE;
        goto out;
    }
    /* The recorded HTTP status is evidence too: a 404 page whose body
     * happens to be listed must not verify offline when it would not
     * online. An integer literal, required. */
    {
        long long st, ver;
        if (pt_json_int(b, "patient", &ver) != 0) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        if (ver != 1) {
            err = PATIENT_ERR_UNSUPPORTED;
            goto out;
        }
        if (pt_json_int(b, "status", &st) != 0 || st < 100 || st > 599) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        ev.status = (long)st;
    }
    /* The bundle's own integrity: the body must match its recorded hash. */
    if (patient_sri_decode(sri, want) != PATIENT_OK ||
        patient_sha256(body, bodylen, h) != PATIENT_OK || memcmp(h, want, sizeof h) != 0) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    ev.body = body;
    ev.body_len = bodylen;
    err = PATIENT_ERR_PARSE; /* every structural failure below */
    arr = cJSON_GetObjectItemCaseSensitive(b, "changes");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > PATIENT_MAX_HOPS + 1)
        goto out;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it))
            goto out;
        values[ev.nchanges++] = it->valuestring;
    }
    ev.changes = values;
    ev.offline = 1;
    /* Logged-change evidence: one element per change, an object or null
     * (docs/format/report.md); each is checked by the verifier. */
    arr = cJSON_GetObjectItemCaseSensitive(b, "log_proofs");
    if (arr && !cJSON_IsNull(arr)) {
        size_t k = 0;
        if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != ev.nchanges)
            goto out;
        cJSON_ArrayForEach(it, arr)
        {
            if (!cJSON_IsNull(it) && !cJSON_IsObject(it))
                goto out;
            if (cJSON_IsObject(it) && (logged[k] = cJSON_PrintUnformatted(it)) == NULL) {
                err = PATIENT_ERR_NOMEM;
                goto out;
            }
            k++;
        }
        ev.log_evidence = (const char *const *)logged;
    }
    ev.origin_sig = opt_str(b, "origin_sig", &bad);
    ev.manifest = man;
    ev.manifest_len = manlen;
    ev.manifest_sig = opt_str(b, "manifest_sig", &bad);
    ev.manifest_sig_len = ev.manifest_sig ? strlen(ev.manifest_sig) : 0;
    ev.manifest_error = opt_str(b, "manifest_error", &bad);
    arr = cJSON_GetObjectItemCaseSensitive(b, "tls_chain");
    if (arr && !cJSON_IsNull(arr)) {
        size_t at;
        if (pt_chain_from_json(arr, chain, &ev.tls_chain_n, &at) != 0)
            goto out;
        ev.tls_chain = (const uint8_t(*)[32])chain;
    }
    arr = cJSON_GetObjectItemCaseSensitive(b, "disclosures");
    if (arr && (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > PATIENT_MAX_HOPS))
        goto out;
    cJSON_ArrayForEach(it, arr)
    {
        patient_evidence_disclosure *d = &disc[ev.ndisclosures];
        if ((err = b64_member(it, "json", &dj[ev.ndisclosures], &d->json_len)) != PATIENT_OK)
            goto out;
        err = PATIENT_ERR_PARSE;
        d->json = dj[ev.ndisclosures];
        d->url = opt_str(it, "url", &bad);
        d->sig = opt_str(it, "sig", &bad);
        d->sig_len = d->sig ? strlen(d->sig) : 0;
        d->error = opt_str(it, "error", &bad);
        ev.ndisclosures++;
    }
    ev.disclosures = disc;
    /* Optional (bundles from before shards have none), at most one shard
     * a level. */
    arr = cJSON_GetObjectItemCaseSensitive(b, "shards");
    if (arr && (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > 3))
        goto out;
    cJSON_ArrayForEach(it, arr)
    {
        patient_evidence_shard *s = &shards[ev.nshards];
        if ((err = b64_member(it, "bytes", &sb[ev.nshards], &s->len)) != PATIENT_OK)
            goto out;
        err = PATIENT_ERR_PARSE;
        s->bytes = sb[ev.nshards];
        s->name = opt_str(it, "name", &bad);
        s->error = opt_str(it, "error", &bad);
        ev.nshards++;
    }
    ev.shards = shards;
    if (bad)
        goto out;
    if ((err = PT_OPTS_TAKE(&o, opts)) != PATIENT_OK)
        goto out;
    o.state_file = NULL; /* offline: never touch rollback state */
    if (o.now == 0 && (err = pt_time_parse(created, &o.now)) != PATIENT_OK)
        goto out;
    if (policy == NULL) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(b, "policy");
        if (!cJSON_IsObject(p) || (ptext = cJSON_PrintUnformatted(p)) == NULL) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        if ((err = patient_policy_parse(ptext, strlen(ptext), &own, &detail)) != PATIENT_OK)
            goto out;
        policy = own;
    }
    if (ev.status != 200) {
        /* As patient_verify_url reports a page that was not 200. */
        if ((err = rep_new(report, ev.url, o.now)) != PATIENT_OK)
            goto out;
        rep_result(*report, REP_UNVERIFIABLE, "fetch.status", ev.url,
                   "the server answered HTTP %ld", ev.status);
        if ((err = rep_finish(*report, 0)) != PATIENT_OK) {
            patient_report_free(*report);
            *report = NULL;
        }
        goto out;
    }
    err = patient_verify_evidence(policy, &ev, &o, report);
out:
    for (size_t i = 0; i < PATIENT_MAX_HOPS; i++)
        free(dj[i]);
    for (size_t i = 0; i < 3; i++)
        free(sb[i]);
    for (size_t i = 0; i <= PATIENT_MAX_HOPS; i++)
        free(logged[i]);
    free(detail);
    free(ptext);
    free(body);
    free(man);
    patient_policy_free(own);
    cJSON_Delete(b);
    return err;
}
