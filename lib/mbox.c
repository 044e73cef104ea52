/* Rule-driven middlebox pipeline: decode, match, sign, log, encode. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <patient/change.h>
#include <patient/gzip.h>
#include <patient/mbox.h>
#include "url_int.h"
#include "util.h"

struct patient_mbox {
    const patient_seckey *sk;
    char *name, *service, *disclosure;
    const patient_rules *rules;
    patient_log *log;
    size_t max_body;
    int defer_sync; /* patient_mbox_set_deferred_sync */
};

patient_err
patient_mbox_new(const patient_seckey *sk, const char *name, const char *service,
                 const char *disclosure, const patient_rules *rules, patient_log *log,
                 size_t max_body, patient_mbox **out)
{
    patient_mbox *mb;

    *out = NULL;
    if (sk == NULL || name == NULL || rules == NULL)
        return PATIENT_ERR_ARG;
    if ((mb = calloc(1, sizeof *mb)) == NULL)
        return PATIENT_ERR_NOMEM;
    mb->sk = sk;
    mb->rules = rules;
    mb->log = log;
    mb->max_body = max_body && max_body < PATIENT_MAX_BODY ? max_body : PATIENT_MAX_BODY;
    if ((mb->name = strdup(name)) == NULL ||
        (mb->service = strdup(service ? service : "content-filter")) == NULL ||
        (disclosure && (mb->disclosure = strdup(disclosure)) == NULL)) {
        patient_mbox_free(mb);
        return PATIENT_ERR_NOMEM;
    }
    *out = mb;
    return PATIENT_OK;
}

void
patient_mbox_free(patient_mbox *mb)
{
    if (mb == NULL)
        return;
    free(mb->name);
    free(mb->service);
    free(mb->disclosure);
    free(mb);
}

void
patient_mbox_set_deferred_sync(patient_mbox *mb, int on)
{
    if (mb)
        mb->defer_sync = on != 0;
}

patient_err
patient_mbox_wait_durable(patient_mbox *mb, const patient_mbox_result *res)
{
    if (mb == NULL || res == NULL)
        return PATIENT_ERR_ARG;
    if (!res->changed || mb->log == NULL)
        return PATIENT_OK;
    return patient_log_wait_durable(mb->log, res->durable_at);
}

void
patient_mbox_result_free(patient_mbox_result *res)
{
    if (res == NULL)
        return;
    free(res->body);
    free(res->value);
    res->body = NULL;
    res->value = NULL;
}

/* Rule matches become edits of the hop, counted for the caller. */
typedef struct {
    patient_hop *hop;
    size_t nedits;
    /* for patient_hop_begin on the first match */
    patient_hop_opts ho;
    const patient_tls_facts *tls;
} match_ctx;

static patient_err
add_match(void *ctx, const patient_rule_match *m)
{
    match_ctx *mc = ctx;
    const patient_tls_facts *tls = mc->tls;
    patient_err err;

    /* The hop (which hashes the whole input) starts at the first match:
     * a body no rule touches costs the scan and nothing else. */
    if (mc->hop == NULL) {
        if ((err = patient_hop_begin(&mc->ho, &mc->hop)) != PATIENT_OK)
            return err;
        if (tls && (err = patient_hop_set_tls(mc->hop, tls->version,
                                              tls->cipher[0] ? tls->cipher : NULL,
                                              tls->verified)) != PATIENT_OK)
            return err;
    }
    /* The rule engine promises sorted, distinct, non-overlapping matches;
     * anything else is a bug worth surfacing, not silently skipping. */
    err = patient_hop_add_edit(mc->hop, m->offset, m->delete_len, m->insert,
                                           m->insert_len, m->reason, m->rule_id, m->note,
                                           m->disclose);
    if (err == PATIENT_OK)
        mc->nedits++;
    return err;
}

static int
is_well_known(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return 0;
    p = strchr(p + 3, '/');
    return p && strncmp(p, "/.well-known/patient/", 21) == 0;
}

/* Unchanged: no copy; the caller sends the body it passed in. */
static patient_err
pass(patient_mbox_result *res, const char *why)
{
    res->body = NULL;
    res->len = 0;
    res->skipped = why;
    return PATIENT_OK;
}

/* Unchanged because a rule ran into a limit: the operator learns which
 * URL did it from a rules.limit event in the audit log (when there is
 * one; best effort: the response passes either way). */
static patient_err
pass_limit(patient_mbox *mb, const char *url, const char *detail, patient_mbox_result *res)
{
    if (mb->log) {
        uint64_t seq;
        (void)!patient_log_append_event(mb->log, "rules.limit", url, detail, &seq);
    }
    return pass(res, "rules.limit");
}

patient_err
patient_tls_facts_from_squid(const char *url, const char *version, const char *cipher,
                             const char *cert_errors, patient_tls_facts *out)
{
    static const char *const squid[] = {"SSL/3.0", "TLS/1.0", "TLS/1.1", "TLS/1.2", "TLS/1.3"};
    static const char *const ours[] = {"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    size_t i, n;

    if (out == NULL || url == NULL)
        return PATIENT_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (version == NULL || cipher == NULL || cert_errors == NULL)
        return PATIENT_ERR_NOT_FOUND;
    if (strcmp(version, "-") == 0) {
        if (pt_url_scheme_len(url, PT_URL_HTTP | PT_URL_ANYCASE) == 0)
            return PATIENT_ERR_NOT_FOUND;
        strcpy(out->version, PATIENT_TLS_NONE);
        return PATIENT_OK;
    }
    for (i = 0; i < sizeof squid / sizeof squid[0]; i++)
        if (strcmp(version, squid[i]) == 0)
            break;
    if (i == sizeof squid / sizeof squid[0])
        return PATIENT_ERR_PARSE;
    n = strlen(cipher);
    if (n == 0 || n > PATIENT_MAX_TLS_FIELD || strcmp(cipher, "-") == 0 ||
        strlen(cert_errors) > 4096 || *cert_errors == 0)
        return PATIENT_ERR_PARSE;
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)cipher[k] <= 0x20 || (unsigned char)cipher[k] >= 0x7f ||
            cipher[k] == '"' || cipher[k] == '\\')
            return PATIENT_ERR_PARSE;
    strcpy(out->version, ours[i]);
    memcpy(out->cipher, cipher, n + 1);
    /* Squid lists every validation error it saw (and let through with
     * sslproxy_cert_error); "-" is the only value that means none. */
    out->verified = strcmp(cert_errors, "-") == 0;
    return PATIENT_OK;
}

/* One response through the pipeline (patient_mbox_process), in phases:
 * decode, match, sign and log, release. A phase that passes the response
 * unchanged says why in res->skipped, and the later ones do not run. */
typedef struct {
    patient_mbox *mb;
    patient_mbox_input ia;
    const uint8_t *in;  /* the body the rules see: ia.body, or decoded */
    size_t inlen;
    uint8_t *decoded;   /* owned: the gunzipped body */
    int gz;             /* the body came gzip'd: the output goes back gzip'd */
    match_ctx mc;       /* the hop (owned) and its edits */
    uint8_t *out;       /* owned: the changed body, outlen bytes */
    size_t outlen;
    char *value;        /* owned: its descriptor */
} mbox_run;

/* Phase 1: the body as the rules see it, within the cap. */
static patient_err
mbox_decode(mbox_run *r, patient_mbox_result *res)
{
    patient_mbox *mb = r->mb;
    const char *url = r->ia.url, *content_encoding = r->ia.content_encoding;
    patient_err err;

    r->in = r->ia.body;
    r->inlen = r->ia.len;
    if (is_well_known(url))
        return pass(res, "patient.well_known");
    if (content_encoding && *content_encoding && strcasecmp(content_encoding, "identity") != 0) {
        /* gzip only: we re-encode what we decoded, and patient_gzip_encode
         * writes gzip; "deflate" bodies pass unchanged. */
        if (strcasecmp(content_encoding, "gzip") != 0 && strcasecmp(content_encoding, "x-gzip"))
            return pass(res, "encoding.unsupported");
        err = patient_gzip_decode(r->ia.body, r->ia.len, mb->max_body, &r->decoded, &r->inlen);
        if (err == PATIENT_ERR_TOO_LARGE)
            goto too_large;
        if (err != PATIENT_OK)
            return err;
        r->in = r->decoded;
        r->gz = 1;
    }
    if (r->inlen > mb->max_body)
        goto too_large;
    return PATIENT_OK;
too_large:
    if (mb->log) {
        char detail[64];
        uint64_t seq;
        snprintf(detail, sizeof detail, "%zu bytes over the %zu-byte cap", r->ia.len,
                 mb->max_body);
        (void)!patient_log_append_event(mb->log, "body.too_large", url, detail, &seq);
    }
    return pass(res, "body.too_large");
}

/* Phase 2: the rules' matches become the hop's edits. */
static patient_err
mbox_match(mbox_run *r, patient_mbox_result *res)
{
    patient_mbox *mb = r->mb;
    match_ctx *mc = &r->mc;
    patient_err err;

    mc->ho = (patient_hop_opts){.size = sizeof mc->ho, .sk = mb->sk, .name = mb->name,
                                .service = mb->service, .disclosure = mb->disclosure,
                                .url = r->ia.url, .in = r->in, .in_len = r->inlen,
                                .prev = r->ia.prev, .nprev = r->ia.nprev};
    mc->tls = r->ia.tls;
    err = patient_rules_apply(mb->rules, r->in, r->inlen, r->ia.media_type, add_match, mc);
    if (err == PATIENT_ERR_LIMIT) {
        /* Matching ran into its work limit, or the rules matched more
         * edits than one descriptor holds (the hop refused the one past
         * PATIENT_MAX_EDITS, before anything was signed): no rule is half
         * applied, the response passes as it came (still
         * origin-verifiable), and the operator learns which URL did it. */
        return pass_limit(mb, r->ia.url,
                          mc->nedits == PATIENT_MAX_EDITS
                              ? "rules matched more edits than one descriptor holds; response "
                                "passed unchanged"
                              : "rule matching stopped at its work limit; response passed "
                                "unchanged",
                          res);
    }
    if (err != PATIENT_OK)
        return err;
    if (mc->hop == NULL)
        return pass(res, "no.rules.matched");
    return PATIENT_OK;
}

/* Phase 3: the hop signs, and the change goes into the audit log. */
static patient_err
mbox_sign(mbox_run *r, patient_mbox_result *res)
{
    patient_mbox *mb = r->mb;
    patient_err err;

    err = patient_hop_finish(r->mc.hop, r->ia.now, &r->out, &r->outlen, &r->value);
    if (err == PATIENT_ERR_LIMIT) {
        /* The change's audit log entry would not fit one line (its
         * descriptor plus the reasons and rules it repeats): refused
         * at the hop's finish, and passed as it came, as for the edit cap. */
        return pass_limit(mb, r->ia.url,
                          "the change would not fit one audit log line; response passed unchanged",
                          res);
    }
    if (err != PATIENT_OK)
        return err;
    if (r->value == NULL)
        return pass(res, "no.rules.matched");
    /* Log before release: a change that is not in the audit log never
     * leaves the middlebox. */
    if (mb->log && mb->defer_sync)
        err = patient_log_append_hop_deferred(mb->log, r->mc.hop, &res->log_seq, &res->durable_at);
    else if (mb->log)
        err = patient_log_append_hop(mb->log, r->mc.hop, &res->log_seq);
    return err;
}

/* Phase 4: the changed body (encoded as it came) and its descriptor to
 * the caller. */
static patient_err
mbox_release(mbox_run *r, patient_mbox_result *res)
{
    patient_err err;

    if (r->gz) {
        uint8_t *enc = NULL;
        size_t enclen = 0;
        if ((err = patient_gzip_encode(r->out, r->outlen, &enc, &enclen)) != PATIENT_OK)
            return err;
        free(r->out);
        r->out = enc;
        r->outlen = enclen;
    }
    res->changed = 1;
    res->body = r->out;
    res->len = r->outlen;
    res->value = r->value;
    res->nedits = r->mc.nedits;
    r->out = NULL;
    r->value = NULL;
    return PATIENT_OK;
}

patient_err
patient_mbox_process(patient_mbox *mb, const patient_mbox_input *input, patient_mbox_result *res)
{
    mbox_run r = {.mb = mb};
    patient_err err;

    memset(res, 0, sizeof *res);
    if (input == NULL || PT_OPTS_TAKE(&r.ia, input) != PATIENT_OK)
        return PATIENT_ERR_ARG;
    if (r.ia.url == NULL || (r.ia.body == NULL && r.ia.len > 0))
        return PATIENT_ERR_ARG;
    if ((err = mbox_decode(&r, res)) == PATIENT_OK && res->skipped == NULL &&
        (err = mbox_match(&r, res)) == PATIENT_OK && res->skipped == NULL &&
        (err = mbox_sign(&r, res)) == PATIENT_OK && res->skipped == NULL)
        err = mbox_release(&r, res);
    if (err != PATIENT_OK)
        patient_mbox_result_free(res);
    patient_hop_free(r.mc.hop);
    free(r.decoded);
    free(r.out);
    free(r.value);
    return err;
}
