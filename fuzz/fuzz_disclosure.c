/* libFuzzer harness: disclosure documents (patient_disclosure_parse and
 * accessors). A document that parses is then signed with the test key and
 * put through patient_disclosure_verify (key and time checks) and
 * patient_disclosure_check against a fixed policy. The same bytes go
 * through patient_disclosure_info_from_json (patient disclose --from),
 * which must take every document parse takes, with the same fields. */
#include "config.h"

#include <patient/disclosure.h>
#include <patient/policy.h>

#include "common.h"
#include "disclosure_int.h"

static const char policy_json[] =
    "{\"patient\":1,\"type\":\"policy\",\"publishers\":{},\"middleboxes\":[],"
    "\"require\":{\"disclosure\":true,\"max_retention_days\":30,"
    "\"min_upstream_tls\":\"TLSv1.2\"}}";

static const patient_policy *
policy(void)
{
    static patient_policy *p;

    if (p == NULL && patient_policy_parse(policy_json, sizeof policy_json - 1, &p, NULL) != PATIENT_OK)
        abort();
    return p;
}

static void
touch(const char *s)
{
    if (s == NULL || strlen(s) > PATIENT_DISCLOSURE_MAX_BYTES)
        abort();
}

static void
exercise(const patient_disclosure *d)
{
    patient_disclosure_deny why;
    size_t i;

    touch(patient_disclosure_operator(d));
    touch(patient_disclosure_contact(d));
    touch(patient_disclosure_sharing(d));
    touch(patient_disclosure_upstream_tls_min(d));
    for (i = 0; i < patient_disclosure_service_count(d); i++)
        touch(patient_disclosure_service(d, i));
    (void)patient_disclosure_retention_days(d);
    (void)patient_disclosure_issued(d);
    (void)patient_disclosure_expires(d);
    if (patient_disclosure_key(d) == NULL)
        abort();
    (void)patient_disclosure_check(d, policy(), &why);
    touch(patient_disclosure_deny_name(why));
}

static int
same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The renewal reader: what it fills, and that it agrees with parse. */
static void
from_json(const uint8_t *data, size_t size, const patient_disclosure *d)
{
    patient_disclosure_info in = {0};
    patient_disclosure *hold = NULL;
    const char *field = NULL;
    char *detail = NULL;
    patient_err err;

    in.retention_days = -1;
    err = patient_disclosure_info_from_json((const char *)data, size, &in, &hold, &field, &detail);
    if ((err == PATIENT_OK) != (hold != NULL) || (err == PATIENT_OK && (field || detail)) ||
        (err != PATIENT_OK && err != PATIENT_ERR_NOMEM && detail == NULL) ||
        (field && err != PATIENT_ERR_PARSE && err != PATIENT_ERR_TOO_LARGE))
        abort();
    if (err != PATIENT_OK) {
        /* refused: nothing of it reached info */
        if (d || in.operator_name || in.services || in.retention_days != -1)
            abort();
        free(detail);
        return;
    }
    if (in.nservices > PATIENT_DISCLOSURE_MAX_SERVICES ||
        in.retention_days > PATIENT_DISCLOSURE_MAX_RETENTION || (in.nservices && !in.services))
        abort();
    for (size_t i = 0; i < in.nservices; i++)
        touch(in.services[i]);
    if (d && (!same(in.operator_name, patient_disclosure_operator(d)) ||
              !same(in.contact, patient_disclosure_contact(d)) ||
              !same(in.sharing, patient_disclosure_sharing(d)) ||
              !same(in.upstream_tls_min, patient_disclosure_upstream_tls_min(d)) ||
              in.retention_days != patient_disclosure_retention_days(d) ||
              in.nservices != patient_disclosure_service_count(d)))
        abort();
    for (size_t i = 0; d && i < in.nservices; i++)
        if (!same(in.services[i], patient_disclosure_service(d, i)))
            abort();
    patient_disclosure_free(hold);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_disclosure *d = NULL, *d2 = NULL;
    char *sig = NULL;
    patient_err err;

    err = patient_disclosure_parse((const char *)data, size, &d);
    if ((err == PATIENT_OK) != (d != NULL))
        abort();
    {
        /* The parse with reasons (what inspection shows): the same
         * verdict, and a reason exactly when it refuses. */
        patient_disclosure *d3 = NULL;
        char *why = NULL;
        patient_err e3 = pt_disclosure_parse_detail((const char *)data, size, &d3, &why);
        fz_same_verdict(err, d, e3, d3, why);
        patient_disclosure_free(d3);
        free(why);
    }
    from_json(data, size, d);
    if (d == NULL)
        return 0;
    exercise(d);
    if (patient_minisig_sign(fz_seckey(), data, size, NULL, "patient-disclosure fuzz", &sig) ==
        PATIENT_OK) {
        err = patient_disclosure_verify((const char *)data, size, sig, strlen(sig), fz_pubkey(),
                                        FZ_NOW, &d2);
        if ((err == PATIENT_OK) != (d2 != NULL))
            abort();
        if (d2 != NULL)
            exercise(d2);
        patient_disclosure_free(d2);
    }
    free(sig);
    patient_disclosure_free(d);
    return 0;
}
