/* Inspection of JSON documents: manifests and shards, disclosures, trust
 * policies, rule files, evidence bundles, verification reports, decoded
 * payloads; what each claims, member by member, with key ids from the key
 * reader and a bundle's descriptors from the JWS family. One handler per
 * "type" (doc_kinds), each filling the details of its kind, and the
 * format's own reader, whose refusal leads the details as "problem": the
 * rules of a format live with its reader, never here. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cJSON.h>
#include <patient/bundle.h>
#include <patient/policy.h>
#include <patient/rules.h>

#include "disclosure_int.h"
#include "inspect_int.h"
#include "manifest_int.h"
#include "util.h"

/* A copy of x (none when x is NULL) as o's member key (key NULL: o's next
 * element); -1 when out of memory, the copy never leaked. */
static int
add_copy(cJSON *o, const char *key, const cJSON *x)
{
    cJSON *c;

    if (x == NULL)
        return 0;
    c = cJSON_Duplicate(x, 1);
    return (key ? pt_json_put(o, key, c) : pt_json_push(o, c)) ? 0 : -1;
}

static int
add_first_keys(cJSON *d, const cJSON *obj, const char *name, int n)
{
    cJSON *a = cJSON_AddObjectToObject(d, name), *x;
    int i = 0;
    if (a == NULL)
        return -1;
    cJSON_ArrayForEach(x, obj) {
        if (i++ >= n || x->string == NULL)
            break;
        if (add_copy(a, x->string, x) != 0)
            return -1;
    }
    return 0;
}

static int
add_first_items(cJSON *d, const cJSON *arr, const char *name, int n)
{
    cJSON *a = cJSON_AddArrayToObject(d, name), *x;
    int i = 0;
    if (a == NULL)
        return -1;
    cJSON_ArrayForEach(x, arr) {
        if (i++ >= n)
            break;
        if (add_copy(a, NULL, x) != 0)
            return -1;
    }
    return 0;
}

/* ---- one handler per document type ----------------------------------- */
/* Each fills d and returns 0, or -1 when out of memory (d is then short:
 * the caller fails the inspection and frees d). */

static int
doc_manifest(const cJSON *doc, cJSON *d)
{
    static const char *const k[] = {"patient", "origin", "version", "issued", "expires", NULL};
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, "shards");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "resources");

    if (copy_fields(d, doc, k) != 0 ||
        (x == NULL && (cJSON_AddNumberToObject(d, "resources", cJSON_GetArraySize(res)) == NULL ||
                       add_first_keys(d, res, "first_resources", SHOW_FIRST) != 0)) ||
        add_copy(d, "next_keys", cJSON_GetObjectItemCaseSensitive(doc, "next_keys")) != 0 ||
        add_copy(d, "delegations", cJSON_GetObjectItemCaseSensitive(doc, "delegations")) != 0)
        return -1;
    if (x != NULL) {
        /* Sharded (docs/format/manifest.md, "Shards"): the layout, and
         * where the resources are instead. */
        const cJSON *bits = cJSON_GetObjectItemCaseSensitive(doc, "shard_bits"), *b;
        char lay[128];
        size_t ln = 0;
        double leaves = 1;
        cJSON_ArrayForEach(b, bits) {
            if (cJSON_IsNumber(b) && b->valuedouble >= 1 && b->valuedouble <= PT_SHARD_MAX_BITS) {
                ln += (size_t)snprintf(lay + ln, sizeof lay - ln, "%s%d", ln ? " x " : "",
                                       1 << (int)b->valuedouble);
                leaves *= (double)(1 << (int)b->valuedouble);
            }
            if (ln >= sizeof lay - 16)
                break;
        }
        if (add_copy(d, "shard_bits", bits) != 0 ||
            cJSON_AddNumberToObject(d, "shards", cJSON_GetArraySize(x)) == NULL ||
            cJSON_AddNumberToObject(d, "leaves", leaves) == NULL ||
            cJSON_AddStringToObject(d, "layout", ln ? lay : "?") == NULL ||
            add_first_items(d, x, "first_shards", SHOW_FIRST) != 0 ||
            cJSON_AddStringToObject(d, "shard_files",
                                    "/.well-known/patient/shards/<name>.json, each "
                                    "checked against its name (SHA-256)") == NULL)
            return -1;
    }
    return cJSON_AddStringToObject(d, "signature", "detached: manifest.json.minisig") ? 0 : -1;
}

static int
doc_shard(const cJSON *doc, cJSON *d)
{
    static const char *const k[] = {"patient", "origin", "version", "bin", NULL};
    const cJSON *x;

    if (copy_fields(d, doc, k) != 0)
        return -1;
    if ((x = cJSON_GetObjectItemCaseSensitive(doc, "resources")) != NULL) {
        if (cJSON_AddStringToObject(d, "kind", "leaf") == NULL ||
            cJSON_AddNumberToObject(d, "resources", cJSON_GetArraySize(x)) == NULL ||
            add_first_keys(d, x, "first_resources", SHOW_FIRST) != 0)
            return -1;
    } else if ((x = cJSON_GetObjectItemCaseSensitive(doc, "shards")) != NULL) {
        if (cJSON_AddStringToObject(d, "kind", "inner") == NULL ||
            cJSON_AddNumberToObject(d, "shards", cJSON_GetArraySize(x)) == NULL ||
            add_first_items(d, x, "first_shards", SHOW_FIRST) != 0)
            return -1;
    }
    return cJSON_AddStringToObject(d, "signature",
                                   "none of its own: pinned by SHA-256 in its parent, up to the "
                                   "signed manifest.json")
               ? 0
               : -1;
}

/* Every member the reader reads but "type" (the title says it). */
static int
doc_disclosure(const cJSON *doc, cJSON *d)
{
    const char *key = pt_json_str(doc, "key");
    patient_pubkey pk;

    for (const char *const *k = pt_disclosure_members; *k; k++)
        if (strcmp(*k, "type") != 0 && copy_field(d, doc, *k) != 0)
            return -1;
    if (key && patient_pubkey_parse(key, strlen(key), &pk) == PATIENT_OK) {
        char kid[PATIENT_KEYID_HEX];
        patient_keyid_hex(pk.id, kid);
        if (cJSON_AddStringToObject(d, "key_id", kid) == NULL)
            return -1;
    }
    return cJSON_AddStringToObject(d, "signature", "detached: disclosure.json.minisig") ? 0 : -1;
}

static int
doc_policy(const cJSON *doc, cJSON *d)
{
    static const char *const k[] = {"patient", "require", "unsigned", NULL};
    const cJSON *x, *m;
    cJSON *arr;

    if (copy_fields(d, doc, k) != 0)
        return -1;
    x = cJSON_GetObjectItemCaseSensitive(doc, "publishers");
    if ((arr = cJSON_AddArrayToObject(d, "publishers")) == NULL)
        return -1;
    cJSON_ArrayForEach(m, x) {
        if (m->string && !pt_json_push(arr, cJSON_CreateString(m->string)))
            return -1;
    }
    x = cJSON_GetObjectItemCaseSensitive(doc, "middleboxes");
    if ((arr = cJSON_AddArrayToObject(d, "middleboxes")) == NULL)
        return -1;
    cJSON_ArrayForEach(m, x) {
        static const char *const mk[] = {"name", "reasons", "paths", "origins",
                                         "max_edits", "insert", NULL};
        cJSON *o = pick_fields(m, mk);
        patient_pubkey pk;
        const char *key = pt_json_str(m, "key");
        char kid[PATIENT_KEYID_HEX];
        if (key && patient_pubkey_parse(key, strlen(key), &pk) == PATIENT_OK)
            patient_keyid_hex(pk.id, kid);
        else
            kid[0] = '\0';
        if (!pt_json_push(arr, o) ||
            cJSON_AddStringToObject(o, "key_id", *kid ? kid : "(not a valid public key)") == NULL)
            return -1;
    }
    return 0;
}

static int
doc_rules(const cJSON *doc, cJSON *d)
{
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(doc, "rules"), *rl;
    cJSON *arr;
    int i = 0;

    if (copy_field(d, doc, "patient") != 0 ||
        cJSON_AddNumberToObject(d, "rules", cJSON_GetArraySize(rules)) == NULL ||
        (arr = cJSON_AddArrayToObject(d, "first_rules")) == NULL)
        return -1;
    cJSON_ArrayForEach(rl, rules) {
        static const char *const rk[] = {"id", "action", "reason", "types", "max_matches",
                                         "disclose", NULL};
        if (i++ >= 20)
            break;
        if (!pt_json_push(arr, pick_fields(rl, rk)))
            return -1;
    }
    return 0;
}

static int
doc_bundle(const cJSON *doc, cJSON *d)
{
    static const char *const k[] = {"patient", "created", "url", "status", "body_integrity",
                                    "body_size", "manifest_error", NULL};
    const cJSON *chs = cJSON_GetObjectItemCaseSensitive(doc, "changes"), *c;
    cJSON *arr;

    if (copy_fields(d, doc, k) != 0 ||
        cJSON_AddBoolToObject(d, "manifest", pt_json_str(doc, "manifest") != NULL) == NULL ||
        cJSON_AddBoolToObject(d, "origin_sig", pt_json_str(doc, "origin_sig") != NULL) == NULL ||
        cJSON_AddNumberToObject(
            d, "disclosures",
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "disclosures"))) == NULL ||
        cJSON_AddBoolToObject(d, "policy", cJSON_GetObjectItemCaseSensitive(doc, "policy") != NULL) ==
            NULL ||
        (arr = cJSON_AddArrayToObject(d, "changes")) == NULL)
        return -1;
    cJSON_ArrayForEach(c, chs) {
        char why[256];
        const char *typ = NULL;
        cJSON *one = NULL;
        /* Out of memory is not an undecodable value. */
        if (cJSON_IsString(c) &&
            pt_inspect_decode_jws(c->valuestring, strlen(c->valuestring), &one, why, sizeof why,
                                  &typ) == PATIENT_ERR_NOMEM)
            return -1;
        if (!pt_json_push(arr, one ? one : cJSON_CreateString("(undecodable)")))
            return -1;
    }
    return 0;
}

static int
doc_report(const cJSON *doc, cJSON *d)
{
    static const char *const k[] = {"patient", "verdict", "url", "checked_at", "origin",
                                    "proof", "manifest", NULL};
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "results"), *e;
    cJSON *arr;

    if (copy_fields(d, doc, k) != 0 ||
        cJSON_AddNumberToObject(
            d, "changes", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "changes"))) ==
            NULL ||
        (arr = cJSON_AddArrayToObject(d, "results")) == NULL)
        return -1;
    cJSON_ArrayForEach(e, res) {
        const char *code = pt_json_str(e, "code"), *sev = pt_json_str(e, "severity");
        char buf[300];
        snprintf(buf, sizeof buf, "%s%s%s%s", sev ? sev : "", sev ? ": " : "",
                 code ? code : "?", "");
        if (!pt_json_push(arr, cJSON_CreateString(buf)))
            return -1;
    }
    return 0;
}

/* A decoded payload on its own (e.g. jws_tool output): all of it. */
static int
doc_origin_payload(const cJSON *doc, cJSON *d)
{
    const cJSON *x;

    cJSON_ArrayForEach(x, doc) {
        if (add_copy(d, x->string, x) != 0)
            return -1;
    }
    return 0;
}

/* A descriptor's payload: all of it, its edits and chunks summarised. */
static int
doc_change_payload(const cJSON *doc, cJSON *d)
{
    return doc_origin_payload(doc, d) || pt_inspect_summarise_edits(d, NULL) ||
                   pt_inspect_summarise_chunks(d, NULL)
               ? -1
               : 0;
}

/* ---- the format's own reader: what it refuses, and why --------------- */

static patient_err
read_policy(const char *text, size_t len, char **detail)
{
    patient_policy *p = NULL;
    patient_err err = patient_policy_parse(text, len, &p, detail);
    patient_policy_free(p);
    return err;
}

static patient_err
read_rules(const char *text, size_t len, char **detail)
{
    patient_rules *rs = NULL;
    patient_err err = patient_rules_parse(text, len, &rs, detail);
    patient_rules_free(rs);
    return err;
}

/* The descriptors' reader (patient audit included and the verifier read a
 * bundle's "changes" and "log_proofs" with it); its reason is a phrase. */
static patient_err
read_bundle(const char *text, size_t len, char **detail)
{
    patient_bundle *b = NULL;
    const char *why = NULL;
    patient_err err = patient_bundle_read(text, len, &b, &why);
    patient_bundle_free(b);
    if (err != PATIENT_OK && why != NULL)
        *detail = strdup(why);
    return err;
}

static patient_err
read_manifest_doc(const char *text, size_t len, int shard, char **detail)
{
    patient_manifest *m = NULL;
    patient_err err = pt_manifest_parse_detail(text, len, shard, &m, detail);
    patient_manifest_free(m);
    return err;
}

static patient_err
read_disclosure(const char *text, size_t len, char **detail)
{
    patient_disclosure *d = NULL;
    patient_err err = pt_disclosure_parse_detail(text, len, &d, detail);
    patient_disclosure_free(d);
    return err;
}

static patient_err
read_manifest(const char *text, size_t len, char **detail)
{
    return read_manifest_doc(text, len, 0, detail);
}

static patient_err
read_shard(const char *text, size_t len, char **detail)
{
    return read_manifest_doc(text, len, 1, detail);
}

/* What each "type" is shown as, by which handler, and which reader judges
 * it (NULL: no reader in the library reads that file). */
static const struct doc_kind {
    const char *type, *kind, *title;
    int is_signed;
    int (*show)(const cJSON *doc, cJSON *d); /* -1: out of memory */
    patient_err (*read)(const char *text, size_t len, char **detail);
} doc_kinds[] = {
    {"manifest", "manifest", "origin manifest", 1, doc_manifest, read_manifest},
    {"manifest-shard", "manifest-shard", "origin manifest shard", 0, doc_shard, read_shard},
    {"disclosure", "disclosure", "middlebox disclosure", 1, doc_disclosure, read_disclosure},
    {"policy", "policy", "endpoint trust policy", 0, doc_policy, read_policy},
    {"rules", "rules", "middlebox rule file", 0, doc_rules, read_rules},
    {"bundle", "bundle", "evidence bundle (re-verify offline with patient-verify)", 1, doc_bundle,
     read_bundle},
    {"report", "report", "verification report (as written by patient-verify; not re-checked)", 0,
     doc_report, NULL},
    {"change", "change-payload", "decoded descriptor payload (the signature is not here)", 0,
     doc_change_payload, NULL},
    {"origin", "origin-payload", "decoded descriptor payload (the signature is not here)", 0,
     doc_origin_payload, NULL},
};

int
pt_inspect_json_doc(cJSON *doc, const char *text, size_t len, result *r)
{
    const char *type = pt_json_str(doc, "type");
    const struct doc_kind *k = NULL;
    cJSON *shown = NULL, *x;
    int rc = 0;

    if (type == NULL && cJSON_GetObjectItemCaseSensitive(doc, "resources") && pt_json_str(doc, "origin"))
        type = "manifest";
    if (type == NULL) {
        rc = pt_inspect_fail(r, "JSON object without a \"type\" member: not a PATIENT document");
        goto out;
    }
    for (size_t i = 0; k == NULL && i < sizeof doc_kinds / sizeof *doc_kinds; i++)
        if (strcmp(type, doc_kinds[i].type) == 0)
            k = &doc_kinds[i];
    if (k == NULL) {
        rc = pt_inspect_fail(r, "JSON document of type \"%.64s\", which PATIENT does not define", type);
        goto out;
    }
    r->kind = k->kind;
    r->title = k->title;
    r->is_signed = k->is_signed;
    if ((shown = cJSON_CreateObject()) == NULL || (r->details = cJSON_CreateObject()) == NULL) {
        rc = pt_inspect_fail(r, "out of memory");
        goto out;
    }
    if (k->show(doc, shown) != 0) {
        rc = pt_inspect_fail(r, "out of memory");
        goto out;
    }
    /* The reader parses the text again: this tree goes first, so that a
     * large document is never held twice. */
    cJSON_Delete(doc);
    doc = NULL;
    if (k->read != NULL) {
        /* A document its reader refuses is still shown (inspection exists
         * to say what is wrong), led by the reader's reason. */
        char *why = NULL;
        patient_err err = k->read(text, len, &why);
        /* Out of memory says nothing about the document: not shown as
         * its problem, and a refusal whose reason cannot be added is not
         * shown at all (without it, it would read as accepted). */
        if (err == PATIENT_ERR_NOMEM) {
            free(why);
            rc = pt_inspect_fail(r, "out of memory");
            goto out;
        }
        if (err != PATIENT_OK) {
            /* Cut on a character boundary: the reason may quote a long
             * untrusted name, and the output must stay UTF-8. */
            const char *w = why ? why : patient_strerror(err);
            char p[640];
            snprintf(p, sizeof p, "%.*s [%s]", (int)pt_utf8_prefix(w, sizeof p - 64), w,
                     patient_errname(err));
            if (cJSON_AddStringToObject(r->details, "problem", p) == NULL) {
                free(why);
                rc = pt_inspect_fail(r, "out of memory");
                goto out;
            }
        }
        free(why);
    }
    while ((x = shown->child) != NULL) {
        cJSON_DetachItemViaPointer(shown, x);
        if (!cJSON_AddItemToObject(r->details, x->string, x)) {
            cJSON_Delete(x);
            rc = pt_inspect_fail(r, "out of memory");
            goto out;
        }
    }
out:
    cJSON_Delete(shown);
    cJSON_Delete(doc);
    return rc;
}
