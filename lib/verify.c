/* Verification core: evidence + policy -> report. Every failed check becomes
 * a result with a stable dotted code; nothing here touches the network. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <patient/change.h>
#include <patient/disclosure.h>
#include <patient/hash.h>
#include <patient/manifest.h>
#include <patient/tlog.h>
#include <patient/tls.h>
#include <patient/verify.h>
#include "change_int.h"
#include "pieces.h"
#include "report_int.h"
#include "time_int.h"
#include "url_int.h"
#include "verify_int.h"
#include "verify_stream.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------ */

/* What the phases ("the phases", below) share. */
typedef struct vctx {
    const patient_policy *policy;
    const patient_evidence *ev;
    const patient_verify_opts *opts;
    pt_checked *pre;            /* what the caller checked of this evidence, or NULL */
    time_t now;
    patient_report *r;
    int done;                   /* the outcome is settled: go to the report */
    char *origin, *path;
    /* check: the descriptors, parsed once, and their hops in the report */
    patient_change *changes[PATIENT_MAX_HOPS];
    rep_hop *hops[PATIENT_MAX_HOPS];
    size_t n;
    int chain_ok;
    /* check: each hop's disclosure, verified once (hop_disclosure) */
    unsigned char disc_done[PATIENT_MAX_HOPS];
    patient_err disc_err[PATIENT_MAX_HOPS];
    const patient_evidence_disclosure *disc_ev[PATIENT_MAX_HOPS];
    patient_disclosure *disc[PATIENT_MAX_HOPS];
    /* check: what the origin signed for this path */
    const patient_pubkey *keys;
    size_t nkeys;
    patient_manifest *m;
    patient_manifest *leaf;     /* sharded manifest: the path's leaf shard (owns res) */
    patient_resource res;
    int have_ref;               /* res is the signed entry for the path */
    uint8_t ref_hash[PATIENT_SHA256_BYTES];
    uint64_t ref_size;
    int origin_root;            /* a verified Patient-Origin commits oroot (chunk root) */
    uint8_t oroot[PATIENT_SHA256_BYTES];
    /* undo: the bytes reached so far */
    pt_bigbuf undo;             /* hop inputs, rebuilt in place after the first */
    const uint8_t *cur;
    size_t curlen;
    uint8_t origin_hash[PATIENT_SHA256_BYTES];
    int have_origin_hash;
    int proven;
    const char *level;          /* the report's proof when not proven/attested */
    int origin_checked;         /* bytes compared with a verified Patient-Origin */
    pt_bodyck *bc;              /* the body's checks (verify_stream.h), or NULL */
    int bc_owned;
} vctx;

/* The evidence's first shard named name (with bytes, when with_bytes). */
static const patient_evidence_shard *
shard_named(const patient_evidence *ev, const char *name, int with_bytes)
{
    for (size_t i = 0; i < ev->nshards; i++) {
        const patient_evidence_shard *s = &ev->shards[i];
        if (s->name && strcmp(s->name, name) == 0 && (s->bytes || !with_bytes))
            return s;
    }
    return NULL;
}

/* A shard of the evidence by name; absent or without bytes: withheld. */
static patient_err
evidence_shard(void *arg, const char *name, const uint8_t **p, size_t *len)
{
    const patient_evidence_shard *s = shard_named(arg, name, 1);

    if (s == NULL)
        return PATIENT_ERR_NOT_FOUND;
    *p = s->bytes;
    *len = s->len;
    return PATIENT_OK;
}

/* Why a withheld shard could not be had, as the gatherer recorded it. */
static const char *
evidence_shard_error(const patient_evidence *ev, const char *name)
{
    const patient_evidence_shard *s = shard_named(ev, name, 0);

    return s ? s->error : NULL;
}

/* The signed top-level names a shard for the page's bin that could not
 * be had or is not what it names: the page's entry is neither found nor
 * proven absent, and a replaced shard is an attempt to show another one. */
static void
shard_result(patient_report *r, const patient_evidence *ev, const patient_shard_info *si,
             const patient_manifest *m)
{
    const char *why;
    char where[128];

    snprintf(where, sizeof where, "/.well-known/patient/shards/%s.json", si->name);
    switch (si->problem) {
    case PATIENT_SHARD_WITHHELD:
        why = evidence_shard_error(ev, si->name);
        rep_result(r, REP_UNVERIFIABLE, "manifest.shard.missing", where,
                   "the signed manifest names shard %s for bin %s, which could not be had%s%s: "
                   "whether the page is listed is unknown", si->name, si->bin, why ? ": " : "",
                   why ? why : "");
        break;
    case PATIENT_SHARD_ROLLBACK:
        rep_result(r, REP_INVALID, "manifest.shard.rollback", where,
                   "the server answered for shard %s (bin %s) with that bin's shard from "
                   "version %llu, older than the signed manifest's version %llu: an old shard "
                   "is being replayed", si->name, si->bin, (unsigned long long)si->version,
                   (unsigned long long)patient_manifest_version(m));
        break;
    case PATIENT_SHARD_MISPLACED:
        rep_result(r, REP_INVALID, "manifest.shard.misplaced", where,
                   "the server answered for shard %s (bin %s) with another bin's shard: shards "
                   "were swapped", si->name, si->bin);
        break;
    case PATIENT_SHARD_MALFORMED:
        rep_result(r, REP_INVALID, "manifest.shard.malformed", where,
                   "shard %s (bin %s) has the hash the signed manifest names but is not a valid "
                   "shard of that bin", si->name, si->bin);
        break;
    default:
        rep_result(r, REP_INVALID, "manifest.shard.hash", where,
                   "the bytes served for shard %s (bin %s) do not have the SHA-256 the signed "
                   "manifest names", si->name, si->bin);
        break;
    }
}

/* The one rule for which key checks a manifest (verify_int.h). */
void
pt_manifest_check_keys(pt_manifest_checked *c, const uint8_t *json, size_t len, const char *sig,
                       size_t siglen, const patient_pubkey *keys, size_t nkeys)
{
    memset(c, 0, sizeof *c);
    c->json = json;
    c->len = len;
    c->sig = sig;
    c->siglen = siglen;
    c->keys = keys;
    c->nkeys = nkeys;
    c->err = patient_minisig_keyid(sig, siglen, c->sigkid);
    if (c->err != PATIENT_OK) {
        c->named = -1;
        return;
    }
    c->err = PATIENT_ERR_KEY_MISMATCH;
    for (size_t i = 0; i < nkeys; i++) {
        if (memcmp(keys[i].id, c->sigkid, PATIENT_KEYID_BYTES) != 0)
            continue;
        c->named = 1;
        c->err = patient_manifest_verify(json, len, sig, siglen, &keys[i], &c->m);
        break;
    }
}

/* Verify a manifest with whichever trusted publisher key it names, or take
 * pre, the check the caller made of these very bytes with these very keys
 * (its manifest is then v's to free, and *took is 1). */
static patient_err
manifest_check(patient_report *r, const patient_evidence *ev, const patient_pubkey *keys,
               size_t nkeys, pt_manifest_checked *pre, patient_manifest **m,
               char kid_hex[PATIENT_KEYID_HEX], int *took)
{
    pt_manifest_checked own, *c = &own;
    patient_err err;

    *m = NULL;
    *took = 0;
    kid_hex[0] = 0;
    if (pre && pt_manifest_checked_for(pre, ev, keys, nkeys)) {
        c = pre;
        *took = 1;
    } else
        pt_manifest_check_keys(&own, ev->manifest, ev->manifest_len, ev->manifest_sig,
                               ev->manifest_sig_len, keys, nkeys);
    *m = c->m;
    c->m = NULL;
    err = c->err;
    /* The key id the signature names picks the key, and says which key was
     * expected when none matches. */
    if (c->named < 0) {
        rep_result(r, REP_INVALID, "manifest.signature.malformed", "manifest.json.minisig",
                   "the manifest signature file is malformed (%s)", patient_strerror(err));
        return err;
    }
    patient_keyid_hex(c->sigkid, kid_hex);
    if (!c->named) {
        char want[PATIENT_KEYID_HEX];
        patient_keyid_hex(keys[0].id, want);
        rep_result(r, REP_INVALID, "manifest.key.unknown", "manifest.json.minisig",
                   "the manifest is signed by key %s, which your policy does not trust for this "
                   "origin (trusted: %s%s)",
                   kid_hex, want, nkeys > 1 ? " and others" : "");
        return PATIENT_ERR_KEY_MISMATCH;
    }
    switch (err) {
    case PATIENT_OK:
        break;
    case PATIENT_ERR_SIGNATURE:
        rep_result(r, REP_INVALID, "manifest.signature.invalid", "manifest.json",
                   "the manifest signature does not verify with key %s: the manifest was "
                   "altered or forged",
                   kid_hex);
        break;
    default:
        rep_result(r, REP_INVALID, "manifest.malformed", "manifest.json",
                   "the signed manifest is not valid (%s)", patient_strerror(err));
        break;
    }
    return err;
}

/* Place a hop's edits in its (reconstructed) input: line and column. */
static void
hop_positions(rep_hop *h, const pt_pieces *in)
{
    pt_linecol lc = {0};

    if (h == NULL || !pt_pieces_looks_text(in))
        return;
    for (size_t i = 0; i < h->nedits; i++) {
        rep_edit *e = &h->edits[i];
        pt_pieces_line_col(in, &lc, e->offset, &e->line, &e->column);
        e->position_in = "input";
    }
}

/* For a hop whose input cannot be rebuilt, place its edits in its output
 * (for the last hop: the body the endpoint received). */
static void
hop_positions_out(rep_hop *h, const uint8_t *out, size_t len)
{
    long long shift = 0;
    pt_linecol lc = {0};
    pt_piece one;
    pt_pieces s = pt_pieces_one(&one, out, len);

    if (h == NULL || !pt_pieces_looks_text(&s))
        return;
    for (size_t j = 0; j < h->nedits; j++) {
        rep_edit *e = &h->edits[j];
        pt_pieces_line_col(&s, &lc, (size_t)((long long)e->offset + shift), &e->line,
                           &e->column);
        shift += (long long)e->inserted - (long long)e->deleted;
        e->position_in = "output";
    }
}

static void
hop_set_proof(rep_hop *h, const char *proof)
{
    if (h)
        h->proof = proof;
}

static const patient_evidence_disclosure *
find_disclosure(const patient_evidence *ev, const char *url)
{
    for (size_t i = 0; i < ev->ndisclosures; i++)
        if (ev->disclosures[i].url && strcmp(ev->disclosures[i].url, url) == 0)
            return &ev->disclosures[i];
    return NULL;
}

/* Disclosure of hop k's middlebox: present, signed by its key, fresh, and
 * within the policy's requirements. */
/* What a hop says about its own upstream TLS, for an https origin: it must
 * say something, it must be TLS, at least the policy's minimum, and (by
 * default) with the origin's certificate verified. A plain-HTTP origin
 * offers the endpoint nothing TLS could weaken. */
static void
check_upstream_tls(patient_report *r, const patient_policy *policy, const char *url,
                   const patient_change *c, const char *where)
{
    const char *min = patient_policy_min_upstream_tls(policy);
    int https = pt_url_scheme_len(url, PT_URL_HTTPS | PT_URL_ANYCASE) != 0;

    if (!c->has_tls) {
        if (https)
            rep_result(r, REP_INVALID, "change.tls.unknown", where,
                       "%s says nothing about the TLS it used towards this https origin",
                       c->by.name);
        return;
    }
    if (c->tls.plaintext) {
        if (https)
            rep_result(r, REP_INVALID, "change.tls.plaintext", where,
                       "%s fetched this https resource from the origin over plain HTTP",
                       c->by.name);
        return;
    }
    if (!c->tls.verified)
        rep_result(r, https && patient_policy_upstream_verified(policy) ? REP_INVALID : REP_WARNING,
                   "change.tls.unverified", where,
                   "%s did not verify the origin's certificate (it accepted one it could not "
                   "check)", c->by.name);
    if (min && patient_tls_version_rank(c->tls.version) < patient_tls_version_rank(min))
        rep_result(r, REP_INVALID, "policy.tls.weak", where,
                   "%s fetched upstream over %s, weaker than the %s your policy requires",
                   c->by.name, c->tls.version, min);
}

/* Hop k's disclosure, verified with key (its middlebox's) on the first
 * ask and kept: check_disclosure judges it, check_interception reads the
 * CAs it declares. *d: the evidence's copy (NULL: none fetched). Returns
 * PATIENT_ERR_NOT_FOUND when the hop names none or its bytes could not be
 * had (*d NULL or without json or sig), else what patient_disclosure_verify
 * said (*doc set on PATIENT_OK, owned by v). */
static patient_err
hop_disclosure(vctx *v, size_t k, const patient_pubkey *key,
               const patient_evidence_disclosure **d, const patient_disclosure **doc)
{
    const patient_change *c = v->changes[k];

    if (!v->disc_done[k]) {
        const patient_evidence_disclosure *e =
            c->by.disclosure ? find_disclosure(v->ev, c->by.disclosure) : NULL;
        v->disc_done[k] = 1;
        v->disc_ev[k] = e;
        v->disc_err[k] = e == NULL || e->json == NULL || e->sig == NULL
                             ? PATIENT_ERR_NOT_FOUND
                             : patient_disclosure_verify((const char *)e->json, e->json_len,
                                                         e->sig, e->sig_len, key, v->now,
                                                         &v->disc[k]);
    }
    *d = v->disc_ev[k];
    *doc = v->disc[k];
    return v->disc_err[k];
}

static void
check_disclosure(vctx *v, size_t k, const patient_pubkey *key, const char *where)
{
    patient_report *r = v->r;
    const patient_change *c = v->changes[k];
    int required = patient_policy_require_disclosure(v->policy);
    enum rep_effect eff = required ? REP_INVALID : REP_WARNING;
    const patient_evidence_disclosure *d;
    const patient_disclosure *doc;
    patient_disclosure_deny why = PATIENT_DISCLOSURE_DENY_NONE;
    patient_err err;

    if (c->by.disclosure == NULL) {
        if (required)
            rep_result(r, REP_INVALID, "disclosure.missing", where,
                       "%s names no disclosure document, and your policy requires one",
                       c->by.name);
        return;
    }
    err = hop_disclosure(v, k, key, &d, &doc);
    if (d == NULL || d->json == NULL || d->sig == NULL) {
        rep_result(r, eff, "disclosure.missing", where, "the disclosure %s could not be read%s%s",
                   c->by.disclosure, d && d->error ? ": " : "", d && d->error ? d->error : "");
        return;
    }
    if (err != PATIENT_OK) {
        rep_result(r, eff, err == PATIENT_ERR_EXPIRED ? "disclosure.expired" : "disclosure.invalid",
                   where, "the disclosure of %s does not verify with its key (%s)", c->by.name,
                   patient_strerror(err));
        return;
    }
    err = patient_disclosure_check(doc, v->policy, &why);
    if (err != PATIENT_OK)
        rep_result(r, REP_INVALID, patient_disclosure_deny_name(why), where,
                   "the disclosure of %s does not meet your policy (retention %lld days, "
                   "upstream TLS minimum %s)",
                   c->by.name, patient_disclosure_retention_days(doc),
                   patient_disclosure_upstream_tls_min(doc) ? patient_disclosure_upstream_tls_min(doc) : "none");
    else
        rep_result(r, REP_INFO, "disclosure.ok", where, "%s's disclosure is signed and acceptable",
                   c->by.name);
}

static int
chain_has(const patient_evidence *ev, const uint8_t *pin)
{
    for (size_t i = 0; i < ev->tls_chain_n; i++)
        if (sodium_memcmp(ev->tls_chain[i], pin, 32) == 0)
            return 1;
    return 0;
}

static void
set_interception(patient_report *r, const char *status, const char *by, const uint8_t *ca,
                 const patient_evidence *ev)
{
    rep_set_interception(r, status, by, ca, ev->tls_chain[ev->tls_chain_n - 1]);
}

/* Middlebox mb's interception CA ca is in the chain: it decrypted, which
 * the policy allows only with may_decrypt. The CA was found in the policy
 * (the endpoint's own record) or, disclosed, in its signed disclosure. */
static void
judge_decrypter(patient_report *r, const patient_policy_middlebox *mb, const uint8_t *ca,
                const patient_evidence *ev, const char *where, int disclosed)
{
    const char *name = patient_policy_middlebox_name(mb);

    if (patient_policy_middlebox_may_decrypt(mb)) {
        set_interception(r, "allowed", name, ca, ev);
        rep_result(r, REP_INFO, "tls.intercepted.allowed", where,
                   "decrypted by %s with the interception CA %s; your policy allows it to "
                   "decrypt",
                   name, disclosed ? "its signed disclosure declares" : "your policy records for it");
    } else {
        set_interception(r, "denied", name, ca, ev);
        rep_result(r, REP_INVALID, "tls.intercepted.denied", where,
                   "decrypted by %s (%s), but your policy does not allow it to decrypt "
                   "(may_decrypt)",
                   name,
                   disclosed ? "its disclosed interception CA is in the chain"
                             : "your policy records its interception CA");
    }
}

/* Who decrypted the endpoint's own TLS? The chain it verified is compared
 * with what signed documents say: the origin's manifest announces its own
 * TLS keys ("tls_keys"), each trusted middlebox's disclosure its
 * interception CA ("interception_ca"). A key of the origin in the chain:
 * not intercepted. A disclosed CA in the chain: that middlebox decrypted
 * (allowed only with "may_decrypt"). Neither, while the origin announced
 * its keys: somebody nobody accounts for holds the other end of the TLS. */
static void
check_interception(vctx *v, const patient_manifest *m)
{
    patient_report *r = v->r;
    const patient_policy *policy = v->policy;
    const patient_evidence *ev = v->ev;
    size_t nkeys = patient_manifest_tls_key_count(m);

    for (size_t i = 0; i < nkeys; i++)
        if (chain_has(ev, patient_manifest_tls_key(m, i))) {
            set_interception(r, "none", NULL, NULL, ev);
            rep_result(r, REP_INFO, "tls.intercepted.none", NULL,
                       "not intercepted: the certificate chain holds a TLS key the origin "
                       "announced in its signed manifest");
            return;
        }
    /* The CAs the endpoint itself recorded for its middleboxes: they name
     * the decrypter on responses it did not change (no descriptor). */
    for (size_t k = 0; k < patient_policy_middlebox_count(policy); k++) {
        const patient_policy_middlebox *mb = patient_policy_middlebox_at(policy, k);
        for (size_t i = 0; i < patient_policy_middlebox_interception_ca_count(mb); i++) {
            const uint8_t *ca = patient_policy_middlebox_interception_ca(mb, i);
            if (!chain_has(ev, ca))
                continue;
            judge_decrypter(r, mb, ca, ev, NULL, 0);
            return;
        }
    }
    /* The CAs the hops' signed disclosures declare. A hop that did not
     * parse names no middlebox, and so no decrypter. */
    for (size_t k = 0; k < v->n; k++) {
        const patient_change *c = v->changes[k];
        const patient_policy_middlebox *mb;
        const patient_evidence_disclosure *d;
        const patient_disclosure *doc;
        char where[32];

        if (c == NULL || (mb = patient_policy_middlebox_find(policy, c->by.kid)) == NULL ||
            c->by.disclosure == NULL ||
            hop_disclosure(v, k, patient_policy_middlebox_key(mb), &d, &doc) != PATIENT_OK)
            continue;
        snprintf(where, sizeof where, "hop %zu", k + 1);
        for (size_t i = 0; i < patient_disclosure_interception_ca_count(doc); i++) {
            const uint8_t *ca = patient_disclosure_interception_ca(doc, i);
            if (!chain_has(ev, ca))
                continue;
            judge_decrypter(r, mb, ca, ev, where, 1);
            return;
        }
    }
    if (nkeys) {
        set_interception(r, "unknown", NULL, NULL, ev);
        rep_result(r, REP_INVALID, "tls.intercepted.unknown", NULL,
                   "intercepted by an unknown party: the certificate chain holds none of the TLS "
                   "keys the origin announced, and no trusted middlebox's signed disclosure "
                   "declares its CA");
        return;
    }
    set_interception(r, "unchecked", NULL, NULL, ev);
    rep_result(r, REP_WARNING, "tls.interception.unchecked", NULL,
               "the origin announces no TLS keys in its manifest, so whether this connection "
               "was intercepted cannot be told");
}

/* ---- the phases ---------------------------------------------------------
 *
 * patient_verify_evidence runs, in order: check (the descriptors, then the
 * manifest), undo (the hops, last first, back to the origin's bytes), judge
 * (the rebuilt or received bytes against what the origin signed), report
 * (the proof level and verdict, and the JSON rendered once). Each phase
 * adds results to the typed report and leaves what the next one needs in
 * the context; a phase that settles the outcome sets done, and the rest
 * are skipped up to the report. A phase returns an error only for local
 * failures (NOMEM, CRYPTO, IO): there is then no verdict. Their context,
 * vctx, is at the top of this file. */

/* Does hop k's signature verify with key? Asked of the caller's check
 * first: the same parsed descriptor (taken from it) against the same key. */
static int
change_verified(vctx *v, size_t k, const patient_pubkey *key)
{
    if (pt_checked_value_is(v->pre, k, v->ev->changes[k]) && v->pre->key[k] == key)
        return 1;
    return patient_change_verify(v->changes[k], key) == PATIENT_OK;
}

/* Check 1: the descriptors: parse, link, authorise. */
static patient_err
check_descriptors(vctx *v)
{
    patient_report *r = v->r;
    const patient_evidence *ev = v->ev;
    const patient_policy *policy = v->policy;
    patient_change **changes = v->changes;
    char where[64];
    size_t n, bad = 0;
    patient_err err;

    if (ev->nchanges > PATIENT_MAX_HOPS) {
        rep_result(r, REP_INVALID, "change.limit", NULL,
                   "%zu Patient-Change headers: more than the %d hops patient accepts",
                   ev->nchanges, PATIENT_MAX_HOPS);
        v->chain_ok = 0;
        return PATIENT_OK;
    }
    for (n = 0; n < ev->nchanges; n++) {
        snprintf(where, sizeof where, "hop %zu", n + 1);
        if (pt_checked_value_is(v->pre, n, ev->changes[n]) && v->pre->change[n] != NULL) {
            changes[n] = v->pre->change[n];
            v->pre->change[n] = NULL;
            continue;
        }
        err = patient_change_parse(ev->changes[n], strlen(ev->changes[n]), &changes[n]);
        if (err != PATIENT_OK) {
            rep_result(r, REP_INVALID, "change.malformed", where,
                       "Patient-Change header %zu is not a valid descriptor (%s: %s)", n + 1,
                       patient_errname(err), patient_strerror(err));
            v->chain_ok = 0;
        }
    }
    v->n = n;
    if (v->chain_ok && n > 0) {
        err = patient_chain_check((const patient_change *const *)changes, n, ev->url, &bad);
        snprintf(where, sizeof where, "hop %zu", bad + 1);
        if (err == PATIENT_ERR_ORIGIN)
            rep_result(r, REP_INVALID, "change.url.mismatch", where,
                       "the descriptor was issued for %s, not for this URL (replayed from "
                       "another response?)",
                       changes[bad]->url);
        else if (err != PATIENT_OK)
            rep_result(r, REP_INVALID, "change.chain.broken", where,
                       "the hops do not link up (hop numbers, previous-descriptor hashes and "
                       "in/out hashes must chain): a hop was dropped, reordered or replaced");
        if (err != PATIENT_OK)
            v->chain_ok = 0;
    }
    for (size_t k = 0; k < n; k++) {
        const patient_change *c = changes[k];
        const patient_policy_middlebox *mb;
        long long max;

        if (c == NULL)
            continue;
        snprintf(where, sizeof where, "hop %zu", k + 1);
        mb = patient_policy_middlebox_find(policy, c->by.kid);
        v->hops[k] = rep_hop_add(r, c, mb != NULL);
        if (mb == NULL) {
            rep_result(r, REP_INVALID, "policy.middlebox.unknown", where,
                       "middlebox \"%s\" (key %s) is not in your policy, so it may not change "
                       "content",
                       c->by.name, c->by.kid_hex);
            continue;
        }
        if (!change_verified(v, k, patient_policy_middlebox_key(mb))) {
            rep_result(r, REP_INVALID, "change.signature.invalid", where,
                       "the descriptor's signature does not verify with %s's key %s: forged or "
                       "altered",
                       patient_policy_middlebox_name(mb), c->by.kid_hex);
            continue;
        }
        /* When: not in the future of the check (beyond clock skew), and not
         * before the hop it followed. A time before the manifest was issued
         * is fine: a cache may hold a changed response across a publish. */
        if (c->at > v->now + PATIENT_VERIFY_CLOCK_SKEW) {
            char ts[PATIENT_TIME_BYTES];
            pt_time_format(c->at, ts);
            rep_result(r, REP_INVALID, "change.time.future", where,
                       "%s dated its change %s, in the future of this check", c->by.name, ts);
        } else if (k > 0 && changes[k - 1] != NULL &&
                   c->at + PATIENT_VERIFY_CLOCK_SKEW < changes[k - 1]->at) {
            rep_result(r, REP_INVALID, "change.time.order", where,
                       "%s dated its change before the hop it changed (hop %zu)", c->by.name, k);
        }
        /* max_edits bounds what one middlebox does to the response, so it
         * cannot chain hops of its own to multiply it: count every edit of
         * every hop signed with this key, and report once, at the hop that
         * went over. */
        max = patient_policy_middlebox_max_edits(mb);
        {
            size_t total = 0;
            int over_before = 0;
            for (size_t i = 0; i <= k; i++) {
                if (changes[i] == NULL ||
                    memcmp(changes[i]->by.kid, c->by.kid, PATIENT_KEYID_BYTES) != 0)
                    continue;
                if (i < k && max >= 0 && (long long)(total + changes[i]->nedits) > max)
                    over_before = 1;
                total += changes[i]->nedits;
            }
            if (max >= 0 && (long long)total > max && !over_before)
                rep_result(r, REP_INVALID, "policy.edits.exceeded", where,
                           "%zu edits to this response by %s (all its hops), but your policy "
                           "allows it at most %lld",
                           total, patient_policy_middlebox_name(mb), max);
        }
        for (size_t j = 0; j < c->nedits; j++) {
            patient_policy_deny why = PATIENT_POLICY_DENY_NONE;
            char w2[96];
            snprintf(w2, sizeof w2, "hop %zu, edit %zu", k + 1, j + 1);
            if (patient_policy_check_edit(mb, v->origin, v->path, c->edits[j].reason,
                                          c->edits[j].insert_len > 0, &why) != PATIENT_OK)
                rep_result(r, REP_INVALID, patient_policy_deny_name(why), w2,
                           "%s may not make this change (reason %s, rule %s) on %s%s under your "
                           "policy",
                           patient_policy_middlebox_name(mb), c->edits[j].reason,
                           c->edits[j].rule, v->origin, v->path);
        }
        check_upstream_tls(r, policy, ev->url, c, where);
        check_disclosure(v, k, patient_policy_middlebox_key(mb), where);
    }
    return PATIENT_OK;
}

/* Check 2: what did the origin publish for this path? */
static patient_err
check_manifest(vctx *v)
{
    patient_report *r = v->r;
    const patient_evidence *ev = v->ev;
    const patient_policy *policy = v->policy;
    const patient_verify_opts *opts = v->opts;
    char kid_hex[PATIENT_KEYID_HEX];
    patient_manifest *m;
    patient_shard_info si;
    pt_lookup_checked *l = v->pre ? &v->pre->lookup : NULL;
    int took = 0;
    patient_err err;

    if (patient_policy_publisher_keys(policy, v->origin, &v->keys, &v->nkeys) != PATIENT_OK ||
        v->nkeys == 0) {
        rep_result(r, REP_UNVERIFIABLE, "policy.publisher.unknown", NULL,
                   "your policy names no publisher key for %s", v->origin);
        v->done = 1;
        return PATIENT_OK;
    }
    if (ev->manifest == NULL || ev->manifest_sig == NULL) {
        if (ev->origin_sig == NULL) {
            rep_result(r,
                       patient_policy_unsigned(policy) == PATIENT_UNSIGNED_INVALID
                           ? REP_INVALID
                           : REP_UNVERIFIABLE,
                       "manifest.missing", "/.well-known/patient/manifest.json",
                       "no signed manifest from %s%s%s", v->origin, ev->manifest_error ? ": " : "",
                       ev->manifest_error ? ev->manifest_error : "");
            v->done = 1;
        }
        return PATIENT_OK;
    }
    if (manifest_check(r, ev, v->keys, v->nkeys, v->pre ? &v->pre->manifest : NULL, &v->m,
                       kid_hex, &took) != PATIENT_OK) {
        v->done = 1;
        return PATIENT_OK;
    }
    m = v->m;
    r->has_manifest = 1;
    r->manifest.version = patient_manifest_version(m);
    pt_time_format(patient_manifest_issued(m), r->manifest.issued);
    pt_time_format(patient_manifest_expires(m), r->manifest.expires);
    memcpy(r->manifest.kid, kid_hex, sizeof kid_hex);
    if (strcmp(patient_manifest_origin(m), v->origin) != 0)
        rep_result(r, REP_INVALID, "manifest.origin.mismatch", "manifest.json",
                   "the manifest is for %s, not %s", patient_manifest_origin(m), v->origin);
    if (patient_manifest_check_fresh(m, v->now) != PATIENT_OK)
        rep_result(r, REP_INVALID, "manifest.expired", "manifest.json",
                   "the manifest expired at %s (or is dated in the future)", r->manifest.expires);
    if (opts && opts->state_file)
        pt_rollback_check(r, opts, v->origin, patient_manifest_version(m));
    if (ev->tls_chain_n > 0 && ev->tls_chain != NULL &&
        pt_url_scheme_len(ev->url, PT_URL_HTTPS | PT_URL_ANYCASE) != 0)
        check_interception(v, m);
    /* The caller's lookup of this path in this very manifest object asked
     * the evidence's own shards: the shards on the path are not hashed and
     * parsed a second time. */
    if (took && pt_lookup_checked_for(l, m, v->path)) {
        err = l->err;
        v->leaf = l->leaf;
        l->leaf = NULL;
        v->res = l->res;
        si = l->si;
    } else {
        err = patient_manifest_lookup_sharded(m, v->path, evidence_shard, (void *)ev, &v->leaf,
                                              &v->res, &si);
    }
    if (err == PATIENT_OK) {
        memcpy(v->ref_hash, v->res.hash, sizeof v->ref_hash);
        v->ref_size = v->res.size;
        v->have_ref = 1;
    } else if (err == PATIENT_ERR_HASH) {
        shard_result(r, ev, &si, m);
    } else if (err == PATIENT_ERR_NOMEM) {
        return err;
    } else if (ev->origin_sig == NULL) {
        rep_result(r, REP_UNVERIFIABLE, "manifest.resource.missing", v->path,
                   "the origin's manifest does not list %s", v->path);
    }
    return PATIENT_OK;
}

/* Hop k's output is not what the bytes undone so far give. */
static void
undo_mismatch(vctx *v, size_t k)
{
    char where[64];

    snprintf(where, sizeof where, "hop %zu", k + 1);
    rep_result(v->r, REP_INVALID, "body.mismatch", where,
               k + 1 == v->n ? "the body received is not what the last hop (%s) says it "
                               "produced: changed in transit without a descriptor"
                             : "the body is not what hop %s produced",
               k + 1 == v->n ? v->changes[k]->by.name : where);
    v->done = 1;
}

/* Every deletion disclosed, and a manifest entry to compare the origin
 * bytes with: each hop's input is rebuilt as pieces of the received body
 * and of the deleted bytes the descriptors disclose, inserted bytes are
 * compared in place, and only the rebuilt origin bytes are read again, by
 * one SHA-256 pass (judge_body compares it). No byte is copied: a fresh
 * buffer for a 5 MB page (page faults, the kernel zeroing it), the copy and
 * the in-place moves cost about as much as the hash. All of it is done by
 * the body's checks (verify_stream.h), block by block, the edits placed
 * (line, column) on the same bytes while they are in cache; here their
 * outcome is reported, as undoing the hops last first meets it. */
static void
place_hop(vctx *v, size_t k)
{
    rep_hop *h = v->hops[k];

    if (h == NULL || !pt_bodyck_text(v->bc, k))
        return;
    for (size_t j = 0; j < h->nedits; j++) {
        pt_bodyck_position(v->bc, k, j, &h->edits[j].line, &h->edits[j].column);
        h->edits[j].position_in = "input";
    }
}

static patient_err
undo_disclosed(vctx *v)
{
    long bad = pt_bodyck_bad_hop(v->bc);

    for (size_t k = v->n; k-- > 0 && (long)k > bad;)
        hop_set_proof(v->hops[k], "proven");
    for (size_t k = v->n; k-- > 0 && (long)k > bad;)
        place_hop(v, k);
    if (bad >= 0) {
        undo_mismatch(v, (size_t)bad);
        return PATIENT_OK;
    }
    memcpy(v->origin_hash, pt_bodyck_digest(v->bc), sizeof v->origin_hash);
    v->have_origin_hash = 1;
    v->cur = NULL; /* judge_body needs only the hash and the size */
    v->curlen = pt_bodyck_input(v->bc, 0)->len;
    return PATIENT_OK;
}

/* The body's checks for mode: those made while the body streamed (the
 * caller's, over the very descriptors parsed here), else made now over
 * the body in memory, in one block. Without either: STATE (a caller that
 * did not keep the body must have checked it for the mode the core
 * takes). */
static patient_err
body_checks(vctx *v, int mode)
{
    pt_bodyck *b = v->pre ? v->pre->body : NULL;
    patient_err err;

    if (b && pt_bodyck_mode(b) == mode && pt_bodyck_hops(b) == v->n) {
        int same = 1;
        for (size_t k = 0; k < v->n; k++)
            same &= pt_bodyck_hop(b, k) == v->changes[k];
        if (same) {
            v->bc = b;
            return PATIENT_OK;
        }
    }
    if (v->ev->body == NULL)
        return PATIENT_ERR_STATE;
    if ((err = pt_bodyck_new(mode, (const patient_change *const *)v->changes, v->n, &v->bc)) !=
        PATIENT_OK)
        return err;
    v->bc_owned = 1;
    if ((err = pt_bodyck_feed(v->bc, v->ev->body, v->ev->body_len)) != PATIENT_OK)
        return err;
    return pt_bodyck_end(v->bc);
}

/* Undo: the hops, last first, back to the origin's bytes (or, where a hop
 * withheld deleted bytes, as far as the chunk roots confine them). */
static patient_err
undo_hops(vctx *v)
{
    patient_report *r = v->r;
    const patient_evidence *ev = v->ev;
    patient_change *const *changes = v->changes;
    size_t n = v->n;
    char where[64];
    unsigned hash_out;
    int withholds, mode;
    patient_err err;

    v->cur = ev->body;
    v->curlen = ev->body_len;
    if (!v->chain_ok) {
        v->proven = 0;
        v->done = 1;
        return PATIENT_OK;
    }
    withholds = pt_chain_withholds(changes, n);
    if (withholds && !v->have_ref && ev->origin_sig)
        v->origin_root = pt_origin_root(ev->origin_sig, v->keys, v->nkeys, ev->url, v->now,
                                        &v->ref_size, v->ref_hash, v->oroot);
    mode = pt_body_mode(n, 1, withholds, v->have_ref, v->res.has_chunk_root, v->origin_root);
    if (mode != PT_BODY_KEEP && (err = body_checks(v, mode)) != PATIENT_OK)
        return err;
    if (mode == PT_BODY_CONFINED) {
        int outcome = PT_CONFINE_NONE;
        err = pt_verify_confined(r, (const patient_change *const *)changes, n, v->hops, v->bc,
                                 v->have_ref ? v->res.chunk_root : v->oroot, v->ref_size,
                                 v->ref_hash, &outcome);
        if (err == PATIENT_OK && outcome == PT_CONFINE_OK && v->origin_root) {
            v->origin_checked = 1;
            rep_result(r, REP_INFO, "origin.ok", "Patient-Origin",
                       "the origin signed this dynamic response; its bytes are checked against "
                       "the chunk root it signed");
        }
        if (err != PATIENT_OK)
            return err;
        if (outcome != PT_CONFINE_NONE) {
            v->proven = 0;
            v->level = outcome == PT_CONFINE_OK ? "confined" : "attested";
            if (outcome == PT_CONFINE_OK &&
                patient_policy_require_proof(v->policy) == PATIENT_PROOF_PROVEN)
                rep_result(r, REP_INVALID, "policy.proof.required", NULL,
                           "a middlebox withheld deleted bytes (confined to the chunks they "
                           "touch), and your policy requires every change to be proven");
            v->done = 1;
            return PATIENT_OK;
        }
        /* A hop withheld origin bytes without signing their chunks: it is
         * only attested, judged as before chunk roots (and the policy
         * decides below whether that is enough). */
    }
    /* Every deletion disclosed and the rebuilt bytes checked against what
     * the origin signed: the body is then fixed by those bytes and the
     * signed edits (inserted bytes are compared in place), so hashing it
     * against the last hop's "out" too proves nothing more
     * (docs/SECURITY.md). Otherwise that hash is what binds the bytes
     * nobody can rebuild to the middlebox's signature. */
    hash_out = withholds || (!v->have_ref && ev->origin_sig == NULL)
                   ? PT_UNDO_HASH_OUT
                   : 0;
    if (mode == PT_BODY_PROVEN)
        return undo_disclosed(v);
    if (ev->body == NULL && n > 0)
        return PATIENT_ERR_STATE; /* the attested path reads the body itself */
    for (size_t k = n; k-- > 0;) {
        size_t inlen = 0;
        snprintf(where, sizeof where, "hop %zu", k + 1);
        /* Hash the received body once, against the last hop's "out", and
         * the rebuilt origin bytes once (compared below); the bytes in
         * between are fixed by the signed edits. The last hop's input is
         * copied out of the body; the hops before it are undone in that
         * copy. */
        if (k + 1 == n)
            err = pt_change_undo(changes[k], v->cur, v->curlen, hash_out, &v->undo, &inlen,
                                 k == 0 ? v->origin_hash : NULL);
        else
            err = pt_change_undo_inplace(changes[k], &v->undo, v->curlen, 0, &inlen,
                                         k == 0 ? v->origin_hash : NULL);
        if (err == PATIENT_OK) {
            pt_piece one;
            pt_pieces in = pt_pieces_one(&one, v->undo.p, inlen);
            hop_positions(v->hops[k], &in);
            hop_set_proof(v->hops[k], "proven");
            v->cur = v->undo.p;
            v->curlen = inlen;
            v->have_origin_hash = k == 0;
            continue;
        }
        if (err != PATIENT_ERR_HASH && err != PATIENT_ERR_NOT_FOUND)
            return err; /* out of memory or a crypto failure: no verdict */
        if (patient_change_check_output(changes[k], v->cur, v->curlen) == PATIENT_OK) {
            /* Output checked, deleted bytes withheld: the rest is attested. */
            hop_positions_out(v->hops[k], v->cur, v->curlen);
            v->proven = 0;
            for (size_t i = 0; i <= k; i++)
                hop_set_proof(v->hops[i], "attested");
            rep_result(r, REP_INFO, "change.attested", where,
                       "%s withheld the bytes it deleted; its claims are signed and the hashes "
                       "link up, but the origin bytes cannot be rebuilt",
                       changes[k]->by.name);
            break;
        }
        undo_mismatch(v, k);
        return PATIENT_OK;
    }
    return PATIENT_OK;
}

/* Judge Patient-Origin: the bytes against what the origin signed in it. */
static void
judge_origin_sig(vctx *v)
{
    patient_report *r = v->r;
    const patient_evidence *ev = v->ev;
    patient_err oe = PATIENT_ERR_KEY_MISMATCH;
    patient_origin_info info;

    for (size_t i = 0; i < v->nkeys && oe == PATIENT_ERR_KEY_MISMATCH; i++)
        oe = patient_origin_verify(ev->origin_sig, &v->keys[i], ev->url, v->cur, v->curlen,
                                   v->now, &info);
    /* The bytes were compared with what the origin signed: as checked
     * as a manifest entry would have made them. */
    v->origin_checked = oe == PATIENT_OK || oe == PATIENT_ERR_HASH;
    switch (oe) {
    case PATIENT_OK:
        rep_result(r, REP_INFO, "origin.ok", "Patient-Origin",
                   "the origin signed this dynamic response");
        break;
    case PATIENT_ERR_HASH:
        rep_result(r, REP_INVALID, "body.mismatch", "Patient-Origin",
                   "the body is not what the origin signed in Patient-Origin");
        break;
    case PATIENT_ERR_EXPIRED:
        rep_result(r, REP_INVALID, "origin.expired", "Patient-Origin",
                   "the origin's signature on this response has expired");
        break;
    case PATIENT_ERR_ORIGIN:
        rep_result(r, REP_INVALID, "origin.url.mismatch", "Patient-Origin",
                   "the origin signed this response for another URL");
        break;
    case PATIENT_ERR_KEY_MISMATCH:
        rep_result(r, REP_INVALID, "origin.key.unknown", "Patient-Origin",
                   "Patient-Origin is signed by a key your policy does not trust for %s",
                   v->origin);
        break;
    default:
        rep_result(r, REP_INVALID, "origin.signature.invalid", "Patient-Origin",
                   "Patient-Origin does not verify (%s)", patient_strerror(oe));
        break;
    }
}

/* Judge: the bytes undo reached against what hop 1 and the origin signed,
 * and an attested chain against the policy. */
static patient_err
judge_body(vctx *v)
{
    patient_report *r = v->r;
    const patient_evidence *ev = v->ev;
    patient_change *const *changes = v->changes;
    size_t n = v->n;
    uint8_t h[PATIENT_SHA256_BYTES];

    if (n > 0 && !v->proven) {
        if (!pt_attested_allowed(v->policy, (v->have_ref && v->res.has_chunk_root) ||
                                                v->origin_root))
            rep_result(r, REP_INVALID, "policy.proof.required", NULL,
                       "a middlebox withheld deleted bytes without confining them to the "
                       "chunks they touch, and your policy requires %s",
                       patient_policy_require_proof(v->policy) == PATIENT_PROOF_PROVEN
                           ? "every change to be proven"
                           : "withheld deletions to be confined");
        if (v->have_ref && (changes[0]->in.size != v->ref_size ||
                            memcmp(changes[0]->in.hash, v->ref_hash, sizeof v->ref_hash) != 0))
            rep_result(r, REP_INVALID, "body.mismatch", "hop 1",
                       "hop 1 (%s) says it received bytes that differ from what the origin "
                       "signed",
                       changes[0]->by.name);
        else if (ev->origin_sig && !v->have_ref)
            rep_result(r, REP_UNVERIFIABLE, "origin.attested", NULL,
                       "a signed dynamic response (Patient-Origin) can only be checked when "
                       "every change is proven");
    } else if (n > 0 && (v->have_ref || ev->origin_sig == NULL)) {
        /* Every hop was undone: the rebuilt bytes must be what hop 1 signed
         * as its input, and what the origin signed. */
        if (v->have_origin_hash)
            memcpy(h, v->origin_hash, sizeof h);
        else if (patient_sha256(v->cur, v->curlen, h) != PATIENT_OK)
            return PATIENT_ERR_CRYPTO;
        if (v->curlen != changes[0]->in.size || memcmp(h, changes[0]->in.hash, sizeof h) != 0)
            rep_result(r, REP_INVALID, "body.mismatch", "hop 1",
                       "undoing the declared changes does not give back the bytes hop 1 (%s) "
                       "says it received: the body was changed without a descriptor",
                       changes[0]->by.name);
        else if (v->have_ref && (v->curlen != v->ref_size || memcmp(h, v->ref_hash, sizeof h) != 0))
            rep_result(r, REP_INVALID, "body.mismatch", v->path,
                       "after undoing every declared change, the bytes (%zu) are not what "
                       "the origin signed (%llu bytes): changed without a descriptor",
                       v->curlen, (unsigned long long)v->ref_size);
    } else if (v->have_ref) {
        if (v->bc) { /* PT_BODY_HASH: hashed as it came */
            memcpy(h, pt_bodyck_digest(v->bc), sizeof h);
            v->curlen = (size_t)pt_bodyck_received(v->bc);
        } else if (patient_sha256(v->cur, v->curlen, h) != PATIENT_OK) {
            return PATIENT_ERR_CRYPTO;
        }
        if (v->curlen != v->ref_size || memcmp(h, v->ref_hash, sizeof h) != 0)
            rep_result(r, REP_INVALID, "body.mismatch", v->path,
                       "the body (%zu bytes) is not what the origin signed (%llu bytes): "
                       "changed in transit without a descriptor",
                       v->curlen, (unsigned long long)v->ref_size);
    } else if (ev->origin_sig) {
        judge_origin_sig(v);
    }
    return PATIENT_OK;
}

/* Report: how far the bytes are proven, then the verdict and the JSON. */
/* Logged-change evidence: every piece given is checked (a bad one is
 * invalid whatever the policy); under require.logged an offline check
 * also needs one for every change. The checkpoint must be signed by the
 * key that signed the descriptor: the middlebox's own log. */
static patient_err
check_logged(vctx *v)
{
    const patient_evidence *ev = v->ev;
    int required = ev->offline && patient_policy_require_logged(v->policy);
    char where[64];

    for (size_t k = 0; k < v->n; k++) {
        const patient_change *c = v->changes[k];
        const patient_policy_middlebox *mb;
        const char *e = ev->log_evidence ? ev->log_evidence[k] : NULL;
        patient_log_evidence info;
        patient_err err;

        /* A descriptor that did not parse, or whose middlebox the policy
         * does not know, is invalid already: no key to check a log with. */
        if (c == NULL || (mb = patient_policy_middlebox_find(v->policy, c->by.kid)) == NULL)
            continue;
        snprintf(where, sizeof where, "hop %zu", k + 1);
        if (e == NULL) {
            if (required)
                rep_result(v->r, REP_INVALID, "log.missing", where,
                           "the policy requires proof that every change is in its middlebox's "
                           "log, and this bundle has none for %s's change (patient audit "
                           "included --out adds it)",
                           c->by.name);
            continue;
        }
        err = patient_log_evidence_check(e, strlen(e), ev->changes[k],
                                         patient_policy_middlebox_key(mb), &info);
        if (err == PATIENT_ERR_NOMEM)
            return err;
        if (err == PATIENT_OK)
            rep_result(v->r, REP_INFO, "log.proven", where,
                       "%s's change is entry %llu of its log, proven into the tree of %llu "
                       "its key signed (origin %s)",
                       c->by.name, (unsigned long long)info.seq,
                       (unsigned long long)info.tree_size, info.origin);
        else
            rep_result(v->r, REP_INVALID, patient_log_evidence_code(err), where,
                       "the evidence that %s's change was logged does not hold: %s", c->by.name,
                       info.why);
    }
    return PATIENT_OK;
}

static patient_err
report_settle(vctx *v)
{
    if (v->n > 0)
        v->r->proof = v->level ? v->level : v->proven ? "proven" : "attested";
    else if (v->have_ref || v->origin_checked)
        v->r->proof = "proven";
    return rep_finish(v->r, v->ev->nchanges);
}

patient_err
pt_verify_opts_take(const patient_verify_fetch_opts **f, const patient_verify_opts **o,
                    patient_verify_fetch_opts *fbuf, patient_fetch_opts *fetchbuf,
                    patient_verify_opts *obuf)
{
    patient_err err;

    if (*o) {
        if ((err = PT_OPTS_TAKE(obuf, *o)) != PATIENT_OK)
            return err;
        *o = obuf;
    }
    if (*f) {
        if ((err = PT_OPTS_TAKE(fbuf, *f)) != PATIENT_OK)
            return err;
        if (fbuf->fetch) {
            if ((err = PT_OPTS_TAKE(fetchbuf, fbuf->fetch)) != PATIENT_OK)
                return err;
            fbuf->fetch = fetchbuf;
        }
        *f = fbuf;
    }
    return PATIENT_OK;
}

patient_err
patient_verify_evidence(const patient_policy *policy, const patient_evidence *ev,
                        const patient_verify_opts *opts, patient_report **report)
{
    return pt_verify_evidence(policy, ev, opts, NULL, report);
}

patient_err
pt_verify_evidence(const patient_policy *policy, const patient_evidence *ev,
                   const patient_verify_opts *opts, pt_checked *pre,
                   patient_report **report)
{
    vctx v = {.policy = policy, .opts = opts, .pre = pre, .chain_ok = 1, .proven = 1};
    patient_verify_opts ob;
    patient_evidence ev_nf;
    char *url_nf = NULL;
    patient_err err = PATIENT_OK;

    *report = NULL;
    if (opts) {
        if ((err = PT_OPTS_TAKE(&ob, opts)) != PATIENT_OK)
            return err;
        v.opts = opts = &ob;
    }
    v.now = opts && opts->now ? opts->now : time(NULL);
    /* The fragment is not part of the request, and no descriptor or
     * signature names one: a browser's #anchor must not make a page fail. */
    if ((err = pt_url_drop_fragment(ev->url, &url_nf)) != PATIENT_OK)
        return err;
    ev_nf = *ev;
    ev_nf.url = url_nf;
    v.ev = &ev_nf;
    if ((err = rep_new(&v.r, ev_nf.url, v.now)) != PATIENT_OK) {
        free(url_nf);
        return err;
    }
    if (ev_nf.url == NULL ||
        patient_policy_split_url(ev_nf.url, &v.origin, &v.path) != PATIENT_OK) {
        rep_result(v.r, REP_UNVERIFIABLE, "url.invalid", NULL,
                   "the URL is not an http(s) URL patient can check");
        v.done = 1;
    } else {
        rep_set_origin(v.r, v.origin);
    }
    if (!v.done)
        err = check_descriptors(&v);
    if (err == PATIENT_OK && !v.done)
        err = check_manifest(&v);
    if (err == PATIENT_OK && !v.done)
        err = undo_hops(&v);
    if (err == PATIENT_OK && !v.done)
        err = judge_body(&v);
    if (err == PATIENT_OK)
        err = check_logged(&v);
    if (err == PATIENT_OK)
        err = report_settle(&v);
    for (size_t k = 0; k < PATIENT_MAX_HOPS; k++) {
        patient_change_free(v.changes[k]);
        patient_disclosure_free(v.disc[k]);
    }
    patient_manifest_free(v.leaf);
    patient_manifest_free(v.m);
    pt_bigbuf_free(&v.undo);
    if (v.bc_owned)
        pt_bodyck_free(v.bc);
    free(v.origin);
    free(v.path);
    free(url_nf);
    if (err != PATIENT_OK) {
        patient_report_free(v.r);
        return err;
    }
    *report = v.r;
    return PATIENT_OK;
}

int
pt_manifest_checked_for(const pt_manifest_checked *c, const patient_evidence *ev,
                        const patient_pubkey *keys, size_t nkeys)
{
    return c->json == ev->manifest && c->len == ev->manifest_len && c->sig == ev->manifest_sig &&
           c->siglen == ev->manifest_sig_len && c->keys == keys && c->nkeys == nkeys;
}

int
pt_lookup_checked_for(const pt_lookup_checked *l, const patient_manifest *m, const char *path)
{
    return l->m != NULL && l->m == m && l->path != NULL && strcmp(l->path, path) == 0;
}

int
pt_checked_value_is(const pt_checked *pre, size_t i, const char *value)
{
    return pre != NULL && i < pre->n && pre->value[i] == value;
}

patient_change *
pt_checked_parse(pt_checked *pre, size_t i, const char *value)
{
    if (pt_checked_value_is(pre, i, value))
        return pre->change[i];
    /* The key went with the old parse: left behind, it would let the core
     * take another descriptor's signature as checked. */
    if (i < pre->n) {
        patient_change_free(pre->change[i]);
        pre->key[i] = NULL;
    }
    pre->change[i] = NULL;
    pre->value[i] = value;
    if (patient_change_parse(value, strlen(value), &pre->change[i]) != PATIENT_OK) {
        patient_change_free(pre->change[i]);
        pre->change[i] = NULL;
    }
    if (i >= pre->n)
        pre->n = i + 1;
    return pre->change[i];
}

static void
lookup_clear(pt_lookup_checked *l)
{
    patient_manifest_free(l->leaf);
    free(l->path);
    memset(l, 0, sizeof *l);
}

void
pt_checked_clear_manifest(pt_checked *pre)
{
    patient_manifest_free(pre->manifest.m);
    memset(&pre->manifest, 0, sizeof pre->manifest);
    lookup_clear(&pre->lookup);
}

void
pt_checked_clear(pt_checked *pre)
{
    pt_checked_clear_manifest(pre);
    for (size_t i = 0; i < pre->n; i++)
        patient_change_free(pre->change[i]);
    memset(pre, 0, sizeof *pre);
}

/* The same decisions as check_descriptors, check_manifest and undo_hops
 * make on the way to the body, without a report: which of them does not
 * matter here, only whether the core will read the body and how. */
patient_err
pt_verify_plan(const patient_policy *policy, const patient_evidence *ev, time_t now,
               pt_checked *pre, pt_bodyck **bc)
{
    patient_change *ch[PATIENT_MAX_HOPS] = {0};
    const patient_pubkey *keys = NULL;
    size_t nkeys = 0, n = ev->nchanges, bad = 0;
    char *origin = NULL, *path = NULL;
    int chain_ok = 1, have_ref = 0, ref_root = 0, origin_root = 0, withholds, mode;
    uint64_t osize;
    uint8_t ohash[PATIENT_SHA256_BYTES], oroot[PATIENT_SHA256_BYTES];
    patient_err err = PATIENT_OK;

    *bc = NULL;
    if (n > PATIENT_MAX_HOPS || ev->url == NULL ||
        patient_policy_split_url(ev->url, &origin, &path) != PATIENT_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if ((ch[i] = pt_checked_parse(pre, i, ev->changes[i])) == NULL)
            chain_ok = 0;
    }
    if (chain_ok && n > 0 &&
        patient_chain_check((const patient_change *const *)ch, n, ev->url, &bad) != PATIENT_OK)
        chain_ok = 0;
    if (patient_policy_publisher_keys(policy, origin, &keys, &nkeys) != PATIENT_OK || nkeys == 0)
        goto out; /* unverifiable before any byte is read */
    if (ev->manifest && ev->manifest_sig) {
        pt_manifest_checked *c = &pre->manifest;
        pt_lookup_checked *l = &pre->lookup;
        if (!pt_manifest_checked_for(c, ev, keys, nkeys)) {
            /* Its lookup goes with it: an object freed here must not be
             * taken for a new one allocated at the same address. */
            pt_checked_clear_manifest(pre);
            pt_manifest_check_keys(c, ev->manifest, ev->manifest_len, ev->manifest_sig,
                                   ev->manifest_sig_len, keys, nkeys);
        }
        if (c->m && c->err == PATIENT_OK) {
            if (!pt_lookup_checked_for(l, c->m, path)) {
                lookup_clear(l);
                l->err = patient_manifest_lookup_sharded(c->m, path, evidence_shard, (void *)ev,
                                                         &l->leaf, &l->res, &l->si);
                if (l->err == PATIENT_ERR_NOMEM) {
                    err = l->err;
                    goto out;
                }
                l->m = c->m;
                l->path = path;
                path = NULL;
            }
            have_ref = l->err == PATIENT_OK;
            ref_root = have_ref && l->res.has_chunk_root;
        }
    }
    withholds = chain_ok && pt_chain_withholds(ch, n);
    if (withholds && !have_ref && ev->origin_sig)
        origin_root = pt_origin_root(ev->origin_sig, keys, nkeys, ev->url, now, &osize, ohash,
                                     oroot);
    mode = pt_body_mode(n, chain_ok, withholds, have_ref, ref_root, origin_root);
    if (mode == PT_BODY_KEEP)
        goto out;
    if ((err = pt_bodyck_new(mode, (const patient_change *const *)ch, n, bc)) != PATIENT_OK)
        goto out;
    if (mode == PT_BODY_CONFINED && pt_bodyck_unclaimed(*bc)) {
        pt_bodyck_free(*bc);
        *bc = NULL;
    }
out:
    free(origin);
    free(path);
    return err;
}

patient_err
pt_verify_evidence_fed(const patient_policy *policy, const patient_evidence *ev,
                       const patient_verify_opts *opts, size_t piece, int *streamed,
                       patient_report **report)
{
    pt_checked pre;
    pt_bodyck *bc = NULL;
    patient_evidence e = *ev;
    char *url_nf = NULL;
    time_t now = opts && opts->now ? opts->now : time(NULL);
    patient_err err;

    *report = NULL;
    if (streamed)
        *streamed = 0;
    memset(&pre, 0, sizeof pre);
    if (ev->url && (err = pt_url_drop_fragment(ev->url, &url_nf)) != PATIENT_OK)
        return err;
    e.url = url_nf;
    if ((err = pt_verify_plan(policy, &e, now, &pre, &bc)) != PATIENT_OK)
        goto out;
    if (bc) {
        for (size_t at = 0; at < ev->body_len && err == PATIENT_OK;) {
            size_t k = piece && piece < ev->body_len - at ? piece : ev->body_len - at;
            err = pt_bodyck_feed(bc, ev->body + at, k);
            at += k;
        }
        if (err == PATIENT_OK)
            err = pt_bodyck_end(bc);
        if (err != PATIENT_OK)
            goto out;
        pre.body = bc;
        e.body = NULL;
        e.body_len = 0;
        if (streamed)
            *streamed = 1;
    }
    e.url = ev->url;
    err = pt_verify_evidence(policy, &e, opts, &pre, report);
out:
    pt_checked_clear(&pre);
    pt_bodyck_free(bc);
    free(url_nf);
    return err;
}
