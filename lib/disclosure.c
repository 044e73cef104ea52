/* Middlebox disclosure documents: build, sign, verify, check. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <patient/disclosure.h>

#include <patient/hash.h>
#include <patient/tls.h>
#include "disclosure_int.h"
#include "hash_int.h"
#include "time_int.h"
#include "url_int.h"
#include "util.h"

struct patient_disclosure {
    char *operator_name;
    char *contact;
    char **services;
    size_t nservices;
    long long retention_days;
    char *sharing;
    char *upstream_tls_min;
    uint8_t (*ica)[32];
    size_t nica;
    time_t issued, expires;
    patient_pubkey key;
};

void
patient_disclosure_free(patient_disclosure *d)
{
    if (d == NULL)
        return;
    free(d->operator_name);
    free(d->contact);
    for (size_t i = 0; i < d->nservices; i++)
        free(d->services[i]);
    free(d->services);
    free(d->sharing);
    free(d->upstream_tls_min);
    free(d->ica);
    free(d);
}

/* Non-empty printable text of at most max bytes. */
static int
text_ok(const char *s, size_t max)
{
    size_t n;

    if (s == NULL || (n = strlen(s)) == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int
contact_ok(const char *s)
{
    size_t k;

    if (!text_ok(s, PATIENT_DISCLOSURE_MAX_CONTACT))
        return 0;
    if (strncmp(s, "mailto:", 7) == 0)
        return s[7] != 0;
    return (k = pt_url_scheme_len(s, PT_URL_HTTPS)) != 0 && s[k] != 0;
}

patient_err
patient_disclosure_info_check(const patient_disclosure_info *in, const char **field)
{
    const char *bad = NULL;

    if (in == NULL)
        bad = "info";
    else if (!text_ok(in->operator_name, PATIENT_DISCLOSURE_MAX_TEXT))
        bad = "operator";
    else if (!contact_ok(in->contact))
        bad = "contact";
    else if (in->nservices == 0 || in->nservices > PATIENT_DISCLOSURE_MAX_SERVICES ||
             in->services == NULL)
        bad = "services";
    else if (in->retention_days < 0 || in->retention_days > PATIENT_DISCLOSURE_MAX_RETENTION)
        bad = "retention_days";
    else if (!text_ok(in->sharing, PATIENT_DISCLOSURE_MAX_SHARING))
        bad = "sharing";
    else if (patient_tls_version_rank(in->upstream_tls_min) == 0)
        bad = "upstream_tls_min";
    else if (in->expires <= in->issued)
        bad = "expires";
    else if (in->ninterception_ca > PATIENT_MAX_TLS_PINS ||
             (in->ninterception_ca && in->interception_ca == NULL))
        bad = "interception_ca";
    for (size_t i = 0; bad == NULL && i < in->nservices; i++)
        if (!text_ok(in->services[i], PATIENT_DISCLOSURE_MAX_TEXT))
            bad = "services";
    if (field)
        *field = bad;
    return bad ? PATIENT_ERR_ARG : PATIENT_OK;
}

patient_err
patient_disclosure_build(const patient_disclosure_info *in, const patient_pubkey *pk, char **json,
                         size_t *len)
{
    pt_buf b = {0};
    char is[PATIENT_TIME_BYTES], ex[PATIENT_TIME_BYTES], key[PATIENT_PUBKEY_B64];
    patient_err err;

    if (json)
        *json = NULL;
    if (json == NULL || pk == NULL)
        return PATIENT_ERR_ARG;
    if ((err = patient_disclosure_info_check(in, NULL)) != PATIENT_OK)
        return err;
    pt_time_format(in->issued, is);
    pt_time_format(in->expires, ex);
    patient_pubkey_encode(pk, key);
    if ((err = pt_buf_appendf(&b, "{\n  \"patient\": 1,\n  \"type\": \"disclosure\",\n  \"operator\": ")) ||
        (err = pt_buf_put_json_str(&b, in->operator_name)) ||
        (err = pt_buf_appendf(&b, ",\n  \"contact\": ")) || (err = pt_buf_put_json_str(&b, in->contact)) ||
        (err = pt_buf_appendf(&b, ",\n  \"services\": [")))
        goto out;
    for (size_t i = 0; i < in->nservices; i++)
        if ((i && (err = pt_buf_append(&b, ", ", 2))) || (err = pt_buf_put_json_str(&b, in->services[i])))
            goto out;
    if ((err = pt_buf_appendf(&b, "],\n  \"retention_days\": %lld,\n  \"sharing\": ",
                              in->retention_days)) ||
        (err = pt_buf_put_json_str(&b, in->sharing)) ||
        (err = pt_buf_appendf(&b, ",\n  \"upstream_tls_min\": \"%s\",\n", in->upstream_tls_min)))
        goto out;
    if (in->ninterception_ca) {
        char sri[PATIENT_SRI_BYTES];
        if ((err = pt_buf_appendf(&b, "  \"interception_ca\": [")))
            goto out;
        for (size_t i = 0; i < in->ninterception_ca; i++) {
            patient_sri_encode(in->interception_ca[i], sri);
            if ((err = pt_buf_appendf(&b, "%s\"%s\"", i ? ", " : "", sri)))
                goto out;
        }
        if ((err = pt_buf_appendf(&b, "],\n")))
            goto out;
    }
    if ((err = pt_buf_appendf(&b, "  \"issued\": \"%s\",\n  \"expires\": \"%s\",\n  \"key\": \"%s\"\n}\n",
                              is, ex, key)))
        goto out;
    *json = (char *)b.data;
    if (len)
        *len = b.len;
    b.data = NULL;
out:
    pt_buf_free(&b);
    return err;
}

patient_err
patient_disclosure_sign(const patient_disclosure_info *in, const patient_seckey *sk, char **json,
                        size_t *len, char **minisig)
{
    patient_pubkey pk;
    char *j = NULL, ex[PATIENT_TIME_BYTES];
    size_t jl = 0;
    pt_buf tc = {0};
    patient_err err;

    if (json)
        *json = NULL;
    if (minisig)
        *minisig = NULL;
    if (sk == NULL || json == NULL || minisig == NULL)
        return PATIENT_ERR_ARG;
    patient_seckey_pubkey(sk, &pk);
    if ((err = patient_disclosure_build(in, &pk, &j, &jl)) != PATIENT_OK)
        goto out;
    pt_time_format(in->expires, ex);
    if ((err = pt_buf_appendf(&tc, PATIENT_DISCLOSURE_COMMENT " operator=%s expires=%s",
                              in->operator_name, ex)))
        goto out;
    if ((err = patient_minisig_sign(sk, j, jl, "patient disclosure signature",
                                    (const char *)tc.data, minisig)) != PATIENT_OK)
        goto out;
    *json = j;
    if (len)
        *len = jl;
    j = NULL;
out:
    free(j);
    pt_buf_free(&tc);
    return err;
}

/* The members a disclosure document has (docs/format/disclosure.md). */
const char *const pt_disclosure_members[] = {
    "patient", "type", "operator", "contact", "services", "retention_days", "sharing",
    "upstream_tls_min", "interception_ca", "issued", "expires", "key", NULL};

static int
known_field(const char *name)
{
    for (size_t i = 0; pt_disclosure_members[i] != NULL; i++)
        if (strcmp(pt_disclosure_members[i], name) == 0)
            return 1;
    return 0;
}

static patient_err
dup_field(const cJSON *o, const char *name, size_t max, int contact, char **out, char **detail)
{
    const char *s = pt_json_str(o, name);

    if (s == NULL || !(contact ? contact_ok(s) : text_ok(s, max)))
        return contact
                   ? pt_detail_err(detail, PATIENT_ERR_PARSE,
                                   "%s: not a mailto: or https: URL (printable, at most %d bytes)",
                                   name, PATIENT_DISCLOSURE_MAX_CONTACT)
                   : pt_detail_err(detail, PATIENT_ERR_PARSE,
                                   "%s: not printable text of 1..%zu bytes", name, max);
    return (*out = strdup(s)) ? PATIENT_OK : PATIENT_ERR_NOMEM;
}

/* The "services" array a into d (at most PATIENT_DISCLOSURE_MAX_SERVICES
 * strings; with check_text each must also be a disclosure's text):
 * TOO_LARGE, PARSE, NOMEM. */
static patient_err
services_dup(const cJSON *a, int check_text, patient_disclosure *d, char **detail)
{
    const cJSON *s;
    int n = cJSON_GetArraySize(a);

    if (n > PATIENT_DISCLOSURE_MAX_SERVICES)
        return PATIENT_ERR_TOO_LARGE;
    if ((d->services = calloc((size_t)n + 1, sizeof *d->services)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(s, a) {
        if (!cJSON_IsString(s) ||
            (check_text && !text_ok(s->valuestring, PATIENT_DISCLOSURE_MAX_TEXT)))
            return pt_detail_err(detail, PATIENT_ERR_PARSE,
                                 "services[%zu]: not printable text of 1..%d bytes", d->nservices,
                                 PATIENT_DISCLOSURE_MAX_TEXT);
        if ((d->services[d->nservices] = strdup(s->valuestring)) == NULL)
            return PATIENT_ERR_NOMEM;
        d->nservices++;
    }
    return PATIENT_OK;
}

/* patient_disclosure_parse, and on failure *detail (detail may be NULL)
 * names the first failing member and why (pt_disclosure_parse_detail). */
static patient_err
parse_doc(const char *json, size_t len, patient_disclosure **out, char **detail)
{
    cJSON *root = NULL;
    const cJSON *c, *svc;
    patient_disclosure *d = NULL;
    patient_err err;
    long long v;
    const char *s;

    if (out)
        *out = NULL;
    if (json == NULL || out == NULL)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_DISCLOSURE_MAX_BYTES)
        return pt_detail_err(detail, PATIENT_ERR_TOO_LARGE, "larger than %u bytes",
                             PATIENT_DISCLOSURE_MAX_BYTES);
    if ((err = pt_json_parse_detail(json, len, PT_JSON_MAX_BYTES, &root, detail)) != PATIENT_OK)
        goto out;
    if (!cJSON_IsObject(root)) {
        err = pt_detail_err(detail, PATIENT_ERR_PARSE, "not a JSON object");
        goto out;
    }
    cJSON_ArrayForEach(c, root) {
        if (!known_field(c->string)) {
            err = pt_detail_err(detail, PATIENT_ERR_PARSE, "%.*s: not a member of a disclosure",
                                PT_QUOTE(c->string));
            goto out;
        }
    }
    if (pt_json_int(root, "patient", &v) != 0) {
        err = pt_detail_err(detail, PATIENT_ERR_PARSE, "patient: not an integer");
        goto out;
    }
    if (v != 1) {
        err = pt_detail_err(detail, PATIENT_ERR_UNSUPPORTED,
                            "patient: format %lld, this reader reads 1", v);
        goto out;
    }
    if ((s = pt_json_str(root, "type")) == NULL || strcmp(s, "disclosure") != 0) {
        err = pt_detail_err(detail, PATIENT_ERR_PARSE, "type: not \"disclosure\"");
        goto out;
    }
    if ((d = calloc(1, sizeof *d)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    if ((err = dup_field(root, "operator", PATIENT_DISCLOSURE_MAX_TEXT, 0, &d->operator_name,
                         detail)) ||
        (err = dup_field(root, "contact", 0, 1, &d->contact, detail)) ||
        (err = dup_field(root, "sharing", PATIENT_DISCLOSURE_MAX_SHARING, 0, &d->sharing, detail)))
        goto out;
    if ((err = dup_field(root, "upstream_tls_min", 16, 0, &d->upstream_tls_min, NULL)) ||
        patient_tls_version_rank(d->upstream_tls_min) == 0) {
        if (err != PATIENT_ERR_NOMEM)
            err = pt_detail_err(detail, PATIENT_ERR_PARSE,
                                "upstream_tls_min: not a TLS version (TLSv1.2, "
                                "TLSv1.3, ...)");
        goto out;
    }
    if ((c = cJSON_GetObjectItemCaseSensitive(root, "interception_ca")) != NULL &&
        (err = pt_pins_parse(c, "interception_ca", &d->ica, &d->nica, detail)))
        goto out;
    svc = cJSON_GetObjectItemCaseSensitive(root, "services");
    if (!cJSON_IsArray(svc) || cJSON_GetArraySize(svc) < 1) {
        err = pt_detail_err(detail, PATIENT_ERR_PARSE, "services: not an array of 1..%d names",
                            PATIENT_DISCLOSURE_MAX_SERVICES);
        goto out;
    }
    if ((err = services_dup(svc, 1, d, detail)) != PATIENT_OK) {
        if (err == PATIENT_ERR_TOO_LARGE)
            pt_detail_err(detail, err, "services: more than %d names",
                          PATIENT_DISCLOSURE_MAX_SERVICES);
        goto out;
    }
    if (pt_json_int(root, "retention_days", &v) != 0 || v < 0 ||
        v > PATIENT_DISCLOSURE_MAX_RETENTION) {
        err = pt_detail_err(detail, PATIENT_ERR_PARSE, "retention_days: not an integer 0..%d",
                            PATIENT_DISCLOSURE_MAX_RETENTION);
        goto out;
    }
    d->retention_days = v;
    if (pt_time_parse_rfc3339(pt_json_str(root, "issued"), &d->issued) != PATIENT_OK) {
        err = pt_detail_err(detail, PATIENT_ERR_PARSE, "issued: not an RFC 3339 time");
        goto out;
    }
    if (pt_time_parse_rfc3339(pt_json_str(root, "expires"), &d->expires) != PATIENT_OK) {
        err = pt_detail_err(detail, PATIENT_ERR_PARSE, "expires: not an RFC 3339 time");
        goto out;
    }
    if (d->expires <= d->issued) {
        err = pt_detail_err(detail, PATIENT_ERR_PARSE, "expires: not after issued");
        goto out;
    }
    if ((s = pt_json_str(root, "key")) == NULL ||
        patient_pubkey_parse(s, strlen(s), &d->key) != PATIENT_OK) {
        err = pt_detail_err(detail, PATIENT_ERR_PARSE, "key: not a public key string (RW...)");
        goto out;
    }
    *out = d;
    d = NULL;
out:
    cJSON_Delete(root);
    patient_disclosure_free(d);
    return err;
}

patient_err
patient_disclosure_parse(const char *json, size_t len, patient_disclosure **out)
{
    return parse_doc(json, len, out, NULL);
}

patient_err
pt_disclosure_parse_detail(const char *json, size_t len, patient_disclosure **out, char **detail)
{
    if (detail)
        *detail = NULL;
    return parse_doc(json, len, out, detail);
}

/* A string member for a field the caller left unset; one of another type
 * leaves it unset too, so the caller's "required" message names it. */
static patient_err
take_str(const cJSON *o, const char *name, const char **field, char **own)
{
    const char *s;

    if (*field != NULL || (s = pt_json_str(o, name)) == NULL)
        return PATIENT_OK;
    if ((*own = strdup(s)) == NULL)
        return PATIENT_ERR_NOMEM;
    *field = *own;
    return PATIENT_OK;
}

patient_err
patient_disclosure_info_from_json(const char *json, size_t len, patient_disclosure_info *info,
                                  patient_disclosure **hold, const char **field, char **detail)
{
    cJSON *root = NULL;
    const cJSON *c;
    patient_disclosure *d = NULL;
    patient_disclosure_info in;
    const char *bad = NULL;
    patient_err err;
    long long v;

    if (hold)
        *hold = NULL;
    if (field)
        *field = NULL;
    if (detail)
        *detail = NULL;
    if (json == NULL || info == NULL || hold == NULL)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_DISCLOSURE_MAX_BYTES) {
        pt_detail_first(detail, "larger than %u bytes", PATIENT_DISCLOSURE_MAX_BYTES);
        return PATIENT_ERR_TOO_LARGE;
    }
    /* Filled in a copy: a refused document leaves *info as it was. */
    in = *info;
    if ((err = pt_json_parse(json, len, &root)) != PATIENT_OK || !cJSON_IsObject(root)) {
        if (err != PATIENT_ERR_NOMEM) {
            err = PATIENT_ERR_JSON;
            pt_detail_first(detail, "not a JSON object");
        }
        goto out;
    }
    /* Every name first: a misspelt field must not pass as an absent one. */
    cJSON_ArrayForEach(c, root) {
        if (!known_field(c->string)) {
            pt_detail_first(detail, "unknown field \"%s\"", c->string);
            err = PATIENT_ERR_PARSE;
            goto out;
        }
    }
    if ((d = calloc(1, sizeof *d)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    if ((err = take_str(root, "operator", &in.operator_name, &d->operator_name)) ||
        (err = take_str(root, "contact", &in.contact, &d->contact)) ||
        (err = take_str(root, "sharing", &in.sharing, &d->sharing)) ||
        (err = take_str(root, "upstream_tls_min", &in.upstream_tls_min, &d->upstream_tls_min)))
        goto out;
    if (in.retention_days < 0 &&
        (c = cJSON_GetObjectItemCaseSensitive(root, "retention_days")) != NULL) {
        if (pt_json_item_int(c, &v) != 0 || v < 0 || v > PATIENT_DISCLOSURE_MAX_RETENTION) {
            bad = "retention_days";
            pt_detail_first(detail, "retention_days is not an integer 0..%d",
                            PATIENT_DISCLOSURE_MAX_RETENTION);
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        in.retention_days = v;
    }
    c = cJSON_GetObjectItemCaseSensitive(root, "services");
    if (in.services == NULL && cJSON_IsArray(c)) {
        if ((err = services_dup(c, 0, d, NULL)) != PATIENT_OK) {
            if (err == PATIENT_ERR_TOO_LARGE)
                pt_detail_first(detail, "more than %d services", PATIENT_DISCLOSURE_MAX_SERVICES);
            else if (err == PATIENT_ERR_PARSE)
                pt_detail_first(detail, "services must be strings");
            if (err != PATIENT_ERR_NOMEM)
                bad = "services";
            goto out;
        }
        in.services = (const char *const *)d->services;
        in.nservices = d->nservices;
    }
    /* The CAs it intercepts endpoints' TLS with are carried over too:
     * a renewal that dropped them would say the middlebox does not
     * decrypt TLS. */
    c = cJSON_GetObjectItemCaseSensitive(root, "interception_ca");
    if (in.ninterception_ca == 0 && c != NULL) {
        /* This reader's own wording (its siblings say "x is not ..."). */
        if ((err = pt_pins_parse(c, "interception_ca", &d->ica, &d->nica, NULL)) != PATIENT_OK) {
            bad = "interception_ca";
            pt_detail_first(detail, "interception_ca is not a list of 1..%d distinct "
                                    "sha256- pins", PATIENT_MAX_TLS_PINS);
            goto out;
        }
        in.interception_ca = (const uint8_t(*)[32])d->ica;
        in.ninterception_ca = d->nica;
    }
    *info = in;
    *hold = d;
    d = NULL;
out:
    if (field)
        *field = bad;
    cJSON_Delete(root);
    patient_disclosure_free(d);
    return err;
}

patient_err
patient_disclosure_verify(const char *json, size_t len, const char *sig, size_t siglen,
                          const patient_pubkey *pk, time_t now, patient_disclosure **out)
{
    static const char pre[] = PATIENT_DISCLOSURE_COMMENT;
    char *tc = NULL;
    patient_disclosure *d = NULL;
    patient_err err;

    if (out)
        *out = NULL;
    if (json == NULL || sig == NULL || pk == NULL || out == NULL)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_DISCLOSURE_MAX_BYTES)
        return PATIENT_ERR_TOO_LARGE;
    if ((err = patient_minisig_verify(pk, json, len, sig, siglen, &tc, NULL)) != PATIENT_OK)
        goto out;
    /* Domain separation: the same key also signs other things. */
    if (strncmp(tc, pre, sizeof pre - 1) != 0 ||
        (tc[sizeof pre - 1] != 0 && tc[sizeof pre - 1] != ' ')) {
        err = PATIENT_ERR_SIGNATURE;
        goto out;
    }
    if ((err = patient_disclosure_parse(json, len, &d)) != PATIENT_OK)
        goto out;
    if (!pt_memeq(d->key.id, pk->id, PATIENT_KEYID_BYTES) ||
        !pt_memeq(d->key.pk, pk->pk, PATIENT_PUBKEY_BYTES)) {
        err = PATIENT_ERR_KEY_MISMATCH;
        goto out;
    }
    if (now >= d->expires || now < d->issued - PATIENT_DISCLOSURE_SKEW) {
        err = PATIENT_ERR_EXPIRED;
        goto out;
    }
    *out = d;
    d = NULL;
out:
    free(tc);
    patient_disclosure_free(d);
    return err;
}

const char *
patient_disclosure_operator(const patient_disclosure *d)
{
    return d ? d->operator_name : NULL;
}

const char *
patient_disclosure_contact(const patient_disclosure *d)
{
    return d ? d->contact : NULL;
}

size_t
patient_disclosure_service_count(const patient_disclosure *d)
{
    return d ? d->nservices : 0;
}

const char *
patient_disclosure_service(const patient_disclosure *d, size_t i)
{
    return d && i < d->nservices ? d->services[i] : NULL;
}

long long
patient_disclosure_retention_days(const patient_disclosure *d)
{
    return d ? d->retention_days : -1;
}

const char *
patient_disclosure_sharing(const patient_disclosure *d)
{
    return d ? d->sharing : NULL;
}

size_t
patient_disclosure_interception_ca_count(const patient_disclosure *d)
{
    return d ? d->nica : 0;
}

const uint8_t *
patient_disclosure_interception_ca(const patient_disclosure *d, size_t i)
{
    return d && i < d->nica ? d->ica[i] : NULL;
}

const char *
patient_disclosure_upstream_tls_min(const patient_disclosure *d)
{
    return d ? d->upstream_tls_min : NULL;
}

time_t
patient_disclosure_issued(const patient_disclosure *d)
{
    return d ? d->issued : 0;
}

time_t
patient_disclosure_expires(const patient_disclosure *d)
{
    return d ? d->expires : 0;
}

const patient_pubkey *
patient_disclosure_key(const patient_disclosure *d)
{
    return d ? &d->key : NULL;
}

const char *
patient_disclosure_deny_name(patient_disclosure_deny why)
{
    switch (why) {
    case PATIENT_DISCLOSURE_DENY_RETENTION: return "policy.disclosure.retention";
    case PATIENT_DISCLOSURE_DENY_UPSTREAM_TLS: return "policy.disclosure.upstream_tls";
    default: return "ok";
    }
}

patient_err
patient_disclosure_check(const patient_disclosure *d, const patient_policy *p,
                         patient_disclosure_deny *why)
{
    patient_disclosure_deny w = PATIENT_DISCLOSURE_DENY_NONE;
    long long maxr;
    const char *mint;

    if (why)
        *why = w;
    if (d == NULL || p == NULL)
        return PATIENT_ERR_ARG;
    maxr = patient_policy_max_retention_days(p);
    mint = patient_policy_min_upstream_tls(p);
    if (maxr >= 0 && d->retention_days > maxr)
        w = PATIENT_DISCLOSURE_DENY_RETENTION;
    else if (mint && patient_tls_version_rank(d->upstream_tls_min) < patient_tls_version_rank(mint))
        w = PATIENT_DISCLOSURE_DENY_UPSTREAM_TLS;
    if (why)
        *why = w;
    return w == PATIENT_DISCLOSURE_DENY_NONE ? PATIENT_OK : PATIENT_ERR_POLICY;
}
