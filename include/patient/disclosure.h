/* Middlebox disclosure documents: who runs a middlebox, what it does,
 * how long it keeps data, whom it shares with, and the weakest TLS it
 * accepts towards origins. Published as /.well-known/patient/disclosure.json
 * with a minisign signature (disclosure.json.minisig, prehashed) by the
 * middlebox's own key. Format: docs/format/disclosure.md.
 *
 * Ownership: a patient_disclosure_info BORROWS every string and array it
 * points to; build and sign read them during the call and keep nothing.
 * Documents and signatures they return are malloc'd (the caller frees them
 * with free()). A patient_disclosure owns its fields: the accessors' strings
 * point into it and live until patient_disclosure_free.
 *
 * Thread-safety: a parsed disclosure is read-only; share it freely. */
#ifndef PATIENT_DISCLOSURE_H
#define PATIENT_DISCLOSURE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <patient/error.h>
#include <patient/key.h>
#include <patient/policy.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PATIENT_DISCLOSURE_MAX_BYTES (64u * 1024)
#define PATIENT_DISCLOSURE_MAX_SERVICES 64
#define PATIENT_DISCLOSURE_MAX_TEXT 256     /* operator, each service */
#define PATIENT_DISCLOSURE_MAX_CONTACT 512
#define PATIENT_DISCLOSURE_MAX_SHARING 4096
#define PATIENT_DISCLOSURE_MAX_RETENTION 36500 /* days */
/* Clock skew tolerated on "issued" (seconds). */
#define PATIENT_DISCLOSURE_SKEW 300
/* Prefix of the signature's trusted comment; checked on verify. */
#define PATIENT_DISCLOSURE_COMMENT "patient-disclosure"

/* What a middlebox discloses (input to build/sign). */
typedef struct patient_disclosure_info {
    const char *operator_name;      /* "Example Corp IT" */
    const char *contact;            /* "mailto:..." or "https://..." */
    const char *const *services;    /* service types, at least one */
    size_t nservices;
    long long retention_days;       /* 0..PATIENT_DISCLOSURE_MAX_RETENTION */
    const char *sharing;            /* "none" or free text */
    const char *upstream_tls_min;   /* "TLSv1.2" (patient_tls_version_rank != 0) */
    time_t issued;
    time_t expires;                 /* after issued */
    /* Optional: the CA(s) this middlebox intercepts the endpoint's TLS with
     * (SHA-256 of each SubjectPublicKeyInfo; patient/hash.h), 0..8. */
    const uint8_t (*interception_ca)[32];
    size_t ninterception_ca;
} patient_disclosure_info;

typedef struct patient_disclosure patient_disclosure;

/* The field rules build and sign apply, for tools that want to say which
 * field is wrong before asking for a key's password: operator (printable,
 * 1..PATIENT_DISCLOSURE_MAX_TEXT bytes), contact ("mailto:" or "https://"
 * and more, at most PATIENT_DISCLOSURE_MAX_CONTACT), services (1..
 * PATIENT_DISCLOSURE_MAX_SERVICES, each like operator), retention_days
 * (0..PATIENT_DISCLOSURE_MAX_RETENTION), sharing (printable, 1..
 * PATIENT_DISCLOSURE_MAX_SHARING), upstream_tls_min (a TLS version
 * patient_tls_version_rank knows), expires after issued. PATIENT_OK, or
 * PATIENT_ERR_ARG with *field (if field is not NULL; NULL on success) the
 * static name of the first bad field in that order ("info" for NULL in).
 * Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_disclosure_info_check(
    const patient_disclosure_info *info, const char **field);

/* Take the fields of a disclosure document (or a file written by hand with
 * the same names), to renew it (patient disclose --from): len bytes at json
 * (BORROWED, not kept once this returns), read with the strict JSON rules
 * documents are verified with (no duplicate names, integers written as
 * integer literals, at most PATIENT_DISCLOSURE_MAX_BYTES).
 *
 * Only the fields of *info still unset are filled: operator_name, contact,
 * sharing and upstream_tls_min when NULL, services when NULL, retention_days
 * when below 0, interception_ca when ninterception_ca is 0 (a renewal keeps
 * the CAs it declared). So a caller sets what it overrides first, and the document's
 * value for a field already set is neither read nor checked. A string field
 * of another type in the document is left unset (the caller's "required"
 * check then names it), and so is "services" when it is not an array; its
 * "patient", "type", "issued", "expires" and "key" are accepted and not
 * read. The rest of *info (issued, expires) is not touched. Field values are not checked here
 * beyond their type and range: patient_disclosure_info_check does that.
 *
 * Refused, *info left unchanged:
 *   PATIENT_ERR_TOO_LARGE  len over PATIENT_DISCLOSURE_MAX_BYTES, or more
 *                          than PATIENT_DISCLOSURE_MAX_SERVICES services
 *   PATIENT_ERR_JSON       not strict JSON, or not an object
 *   PATIENT_ERR_PARSE      a name that is not a disclosure field; a
 *                          retention_days that is not an integer literal
 *                          0..PATIENT_DISCLOSURE_MAX_RETENTION (30.0 and
 *                          "30" are refused); a service that is not a string
 *   PATIENT_ERR_NOMEM, PATIENT_ERR_ARG (json, info or hold NULL)
 * *field (if field is not NULL) is the static name of the field whose value
 * was refused ("retention_days", "services", "interception_ca"), NULL on success and when the
 * document as a whole was (too large, not JSON, an unknown name). *detail
 * (if detail is not NULL) is, on failure, a malloc'd sentence saying why
 * ("unknown field \"x\"", "retention_days is not an integer 0..36500");
 * the caller frees it with free().
 *
 * Ownership: the strings and the services array *info is given point into
 * *hold, malloc'd on success (NULL on failure): free it with
 * patient_disclosure_free after the last use of *info, never before. *hold
 * only holds those fields: it is not a parsed disclosure, so pass it to
 * nothing else. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_disclosure_info_from_json(
    const char *json, size_t len, patient_disclosure_info *info, patient_disclosure **hold,
    const char **field, char **detail);

/* Serialise info into the canonical JSON document (pretty, fields in the
 * documented order, trailing newline), naming pk as the signing key.
 * PATIENT_ERR_ARG when a field is missing or out of range. *json
 * malloc'd, NUL-terminated (free()). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_disclosure_build(
    const patient_disclosure_info *info, const patient_pubkey *pk, char **json, size_t *len);

/* Build and sign with sk: *json as above, *minisig the signature file
 * text (trusted comment "patient-disclosure operator=<...> expires=<...>").
 * Both malloc'd (free()). Thread-safe for a shared sk. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_disclosure_sign(
    const patient_disclosure_info *info, const patient_seckey *sk, char **json, size_t *len,
    char **minisig);

/* Verify the signature over the exact bytes first (PATIENT_ERR_KEY_MISMATCH
 * if signed by another key, PATIENT_ERR_SIGNATURE if it does not verify or
 * its trusted comment does not start with "patient-disclosure"), then
 * parse strictly (PATIENT_ERR_PARSE / JSON / UNSUPPORTED / TOO_LARGE), then
 * check that "key" equals pk (PATIENT_ERR_KEY_MISMATCH) and that now lies in
 * [issued - PATIENT_DISCLOSURE_SKEW, expires) (PATIENT_ERR_EXPIRED). *d
 * only on success; free with patient_disclosure_free. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_disclosure_verify(
    const char *json, size_t len, const char *sig, size_t siglen, const patient_pubkey *pk,
    time_t now, patient_disclosure **d);

/* Parse without any signature or time check: for display only (patient
 * inspect). Never base a decision on an unverified disclosure. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_disclosure_parse(const char *json, size_t len,
                                                                patient_disclosure **d);

/* Accepts NULL. */
PATIENT_EXPORT void patient_disclosure_free(patient_disclosure *d);

/* Accessors; strings point into d. */
PATIENT_EXPORT const char *patient_disclosure_operator(const patient_disclosure *d);
PATIENT_EXPORT const char *patient_disclosure_contact(const patient_disclosure *d);
PATIENT_EXPORT size_t patient_disclosure_service_count(const patient_disclosure *d);
PATIENT_EXPORT const char *patient_disclosure_service(const patient_disclosure *d, size_t i);
PATIENT_EXPORT long long patient_disclosure_retention_days(const patient_disclosure *d);
PATIENT_EXPORT const char *patient_disclosure_sharing(const patient_disclosure *d);
PATIENT_EXPORT const char *patient_disclosure_upstream_tls_min(const patient_disclosure *d);
PATIENT_EXPORT time_t patient_disclosure_issued(const patient_disclosure *d);
PATIENT_EXPORT time_t patient_disclosure_expires(const patient_disclosure *d);
PATIENT_EXPORT const patient_pubkey *patient_disclosure_key(const patient_disclosure *d);
/* The declared interception CAs ("interception_ca"): count, and the i-th
 * SPKI SHA-256 (32 bytes, NULL past the end). A disclosure without them
 * declares that the middlebox does not decrypt the endpoint's TLS. */
PATIENT_EXPORT size_t patient_disclosure_interception_ca_count(const patient_disclosure *d);
PATIENT_EXPORT const uint8_t *patient_disclosure_interception_ca(const patient_disclosure *d,
                                                                 size_t i);

/* Why a disclosure fails the endpoint's requirements. */
typedef enum patient_disclosure_deny {
    PATIENT_DISCLOSURE_DENY_NONE = 0,
    PATIENT_DISCLOSURE_DENY_RETENTION = 1,   /* "policy.disclosure.retention" */
    PATIENT_DISCLOSURE_DENY_UPSTREAM_TLS = 2 /* "policy.disclosure.upstream_tls" */
} patient_disclosure_deny;

/* Stable dotted result code; "ok" for NONE. Static storage. */
PATIENT_EXPORT const char *patient_disclosure_deny_name(patient_disclosure_deny why);

/* Check a verified disclosure against the policy's require section:
 * retention_days above require.max_retention_days, or upstream_tls_min
 * older than require.min_upstream_tls, give PATIENT_ERR_POLICY and *why
 * (may be NULL). Whether a disclosure is required at all is the caller's
 * business (patient_policy_require_disclosure). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_disclosure_check(const patient_disclosure *d,
                                                                const patient_policy *p,
                                                                patient_disclosure_deny *why);

#ifdef __cplusplus
}
#endif
#endif
