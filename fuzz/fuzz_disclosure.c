/* libFuzzer harness: disclosure documents (patient_disclosure_parse and
 * accessors). A document that parses is then signed with the test key and
 * put through patient_disclosure_verify (key and time checks) and
 * patient_disclosure_check against a fixed policy. */
#include "config.h"

#include <patient/disclosure.h>
#include <patient/policy.h>

#include "common.h"

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_disclosure *d = NULL, *d2 = NULL;
    char *sig = NULL;
    patient_err err;

    err = patient_disclosure_parse((const char *)data, size, &d);
    if ((err == PATIENT_OK) != (d != NULL))
        abort();
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
