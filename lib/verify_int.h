/* Internal to the verifier (lib/verify*.c). */
#ifndef PATIENT_VERIFY_INT_H
#define PATIENT_VERIFY_INT_H

#include <cjson/cJSON.h>
#include <patient/change.h>
#include <patient/manifest.h>
#include <patient/policy.h>
#include "report_int.h"

enum { PT_CONFINE_OK = 0, PT_CONFINE_NONE = 1, PT_CONFINE_INVALID = 2 };

/* A manifest's signature checked against the publisher keys a policy
 * trusts for its origin: by the first of keys with the id the signature
 * names. json, len, sig, siglen, keys and nkeys say what was checked
 * (borrowed), so the result is taken only for those very bytes and keys:
 * the same pointer with another length is other bytes. */
typedef struct {
    const uint8_t *json;
    size_t len;
    const char *sig;
    size_t siglen;
    const patient_pubkey *keys;
    size_t nkeys;
    int named;          /* -1: the signature does not parse; 0: no key has its id; 1: checked */
    uint8_t sigkid[PATIENT_KEYID_BYTES];
    patient_err err;    /* PATIENT_OK: m verified */
    patient_manifest *m; /* owned until taken */
} pt_manifest_checked;

/* Fill *c (pt_manifest_checked above). The one rule for which key checks
 * a manifest: the verifier's core, and patient_verify_url before it, which
 * must know a verified manifest to fetch the shards a sharded one names. */
void pt_manifest_check_keys(pt_manifest_checked *c, const uint8_t *json, size_t len,
                            const char *sig, size_t siglen, const patient_pubkey *keys,
                            size_t nkeys);

/* A path looked up in a sharded manifest (patient_manifest_lookup_sharded
 * over the shards the evidence then holds): what the core's own lookup
 * would give, since it asks the same bytes for the same names. Taken only
 * with the manifest it was looked up in (m, the object pt_checked's
 * manifest holds, and only when the core takes that) and for the same
 * path; otherwise the core looks the path up itself. */
typedef struct {
    const patient_manifest *m;  /* looked up in (borrowed); NULL: no lookup to take */
    char *path;                 /* the path looked up (owned) */
    patient_err err;            /* PATIENT_OK, PATIENT_ERR_NOT_FOUND or PATIENT_ERR_HASH */
    patient_manifest *leaf;     /* owned until taken (NULL when none) */
    patient_resource res;       /* PATIENT_OK: the entry, valid as long as leaf */
    patient_shard_info si;      /* PATIENT_ERR_HASH: the shard that failed */
} pt_lookup_checked;

/* What patient_verify_url checked while gathering the evidence, handed
 * on so the core does not do it again: the manifest (above), the page's
 * lookup in a sharded one, and the descriptors it parsed to find their
 * disclosures. */
typedef struct {
    pt_manifest_checked manifest;
    pt_lookup_checked lookup;
    size_t n;
    const char *value[PATIENT_MAX_HOPS + 1];       /* the descriptor parsed (borrowed) */
    patient_change *change[PATIENT_MAX_HOPS + 1];  /* it parsed (owned until taken) */
    const patient_pubkey *key[PATIENT_MAX_HOPS + 1]; /* its signature verifies with this
                                                        key; NULL: not checked */
    struct pt_bodyck *body;     /* the body's checks, made as it streamed (borrowed), or NULL */
} pt_checked;

/* Free what pre owns (not body) and zero it. */
void pt_checked_clear(pt_checked *pre);
/* Free pre's manifest and its lookup and zero both; the descriptors stay
 * (a manifest had for another URL: patient_verify_url after a redirect). */
void pt_checked_clear_manifest(pt_checked *pre);

/* When a check recorded in pt_checked may be taken: the one test each, for
 * the core (which takes it) and pt_verify_plan (which redoes it when not).
 * c checked these very manifest bytes and signature (ev's, by address and
 * length) with these very keys. */
int pt_manifest_checked_for(const pt_manifest_checked *c, const patient_evidence *ev,
                            const patient_pubkey *keys, size_t nkeys);
/* l was looked up in this manifest object (not NULL) for this path. */
int pt_lookup_checked_for(const pt_lookup_checked *l, const patient_manifest *m,
                          const char *path);
/* pre (which may be NULL) parsed descriptor i from this very value (the
 * same pointer: the evidence's own string, not an equal one). */
int pt_checked_value_is(const pt_checked *pre, size_t i, const char *value);
/* Descriptor i of pre (not NULL) as parsed from value (not NULL;
 * borrowed: it must outlive pre's use of it). When i already records this
 * very value, its parse is returned as it is; otherwise value is parsed
 * afresh, and the parse held for i before, with the key its signature was
 * checked with, is dropped first. Returns the parse (pre owns it), or NULL
 * when value is not a descriptor (recorded so: the core parses it again to
 * say why). pre->n grows to cover i. */
patient_change *pt_checked_parse(pt_checked *pre, size_t i, const char *value);

/* What must be known before the first byte of a body that is not to be
 * kept: from the evidence without its body (url without a fragment), the
 * descriptors parsed and linked, the manifest checked with the keys the
 * policy trusts and the path looked up in it, all recorded in pre so the
 * core takes them instead of doing them again; then, when the core will
 * need only what can be computed as the body passes, *bc: the checks to
 * feed it to (verify_stream.h), over pre's descriptors. *bc NULL: the
 * core needs the body itself (keep it). Errors: NOMEM. */
struct pt_bodyck;
patient_err pt_verify_plan(const patient_policy *policy, const patient_evidence *ev, time_t now,
                           pt_checked *pre, struct pt_bodyck **bc);

/* The evidence verified as a streaming caller does: planned without its
 * body, which is then fed to the checks `piece` bytes at a time (0: at
 * once), and verified with the checks and without the body (or with it,
 * when the plan needs it). *streamed (streamed may be NULL): 1 when the
 * body went through the checks and the core did without it, 0 when the
 * plan kept it. For tests: the same report as patient_verify_evidence. */
patient_err pt_verify_evidence_fed(const patient_policy *policy, const patient_evidence *ev,
                                   const patient_verify_opts *opts, size_t piece, int *streamed,
                                   patient_report **report);

/* patient_verify_evidence, taking from pre (which may be NULL) what was
 * checked of this very evidence: its manifest (pre->manifest.m becomes
 * NULL) when pre checked the evidence's own manifest bytes with the keys
 * the policy trusts for the URL's origin, and with it the lookup of the
 * URL's path in that manifest (pre->lookup.leaf becomes NULL); a
 * descriptor parsed from the very value the evidence holds
 * (pre->change[i] becomes NULL), and its signature when it was checked
 * with the key the policy has for it. */
patient_err pt_verify_evidence(const patient_policy *policy, const patient_evidence *ev,
                               const patient_verify_opts *opts, pt_checked *pre,
                               patient_report **report);

/* Check a chain in which some hop withheld deleted bytes against the
 * origin's chunk root (root, with the resource's signed size and hash),
 * from the checks b made of the body (PT_BODY_CONFINED, ended): each
 * hop's input rebuilt with holes, each hop's "chunks" naming exactly the
 * origin chunks its withheld deletions touch, the root.
 * *outcome: PT_CONFINE_OK (results "change.confined", report "unchecked"
 * and per-hop "proof" filled), PT_CONFINE_NONE (a hop that withheld origin
 * bytes signed no chunks: attested only, nothing reported), or
 * PT_CONFINE_INVALID (an invalid result was added). Returns an error only
 * for NOMEM / CRYPTO (no verdict). hops[k]: the report's hop k (NULL: not described). */
struct pt_bodyck;
patient_err pt_verify_confined(patient_report *r, const patient_change *const *ch, size_t n,
                               rep_hop *const *hops, const struct pt_bodyck *b,
                               const uint8_t root[32], uint64_t ref_size,
                               const uint8_t ref_hash[32], int *outcome);

/* For a chain with withheld bytes against a Patient-Origin: 1 when the
 * value verifies (patient_origin_check, without the body) with one of keys
 * for url at now and commits a chunk root; then *size, hash and root are
 * what it signed. 0 otherwise (the caller judges the value as before). */
int pt_origin_root(const char *jws, const patient_pubkey *keys, size_t nkeys, const char *url,
                   time_t now, uint64_t *size, uint8_t hash[32], uint8_t root[32]);

/* Rollback (rollback.c): check version against the highest one seen for
 * origin in opts->state_file and record it (unless opts->no_state_update,
 * or the report is already invalid: a rejected manifest must not raise the
 * bar). Adds manifest.rollback or state.unavailable to r. */
void pt_rollback_check(patient_report *r, const patient_verify_opts *opts, const char *origin,
                       uint64_t version);

/* Whether the policy accepts an attested (unconfined) chain for a resource
 * with or without a chunk root. */
int pt_attested_allowed(const patient_policy *p, int has_chunk_root);

/* The caller's verification options as this library's (util.h,
 * pt_opts_take): *f (with its fetch options) and *o, when not NULL, are
 * pointed at full-size copies in fbuf, fetchbuf and obuf. A size the
 * library does not know: PATIENT_ERR_ARG. */
patient_err pt_verify_opts_take(const patient_verify_fetch_opts **f, const patient_verify_opts **o,
                                patient_verify_fetch_opts *fbuf, patient_fetch_opts *fetchbuf,
                                patient_verify_opts *obuf);

#endif
