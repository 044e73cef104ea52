/* libFuzzer harness: trust policies (patient_policy_parse, strict and in
 * lint mode), then lint, every lookup, and a serialise/parse round trip
 * that must reproduce the same bytes. */
#include "config.h"

#include <patient/policy.h>

#include "common.h"

static void
lint_cb(void *ctx, patient_lint_severity sev, const char *code, const char *where,
        const char *message)
{
    (void)ctx;
    if (sev > PATIENT_LINT_ERROR || code == NULL || where == NULL || message == NULL)
        abort();
}

static void
exercise(const patient_policy *p)
{
    static const char *const urls[] = {"https://example.org/index.html", "http://EXAMPLE.org:80/",
                                       "https://a.example:8443/x?y#z", "ftp://x/", "https://u@h/"};
    static const char *const reasons[] = {"tracker.removed", "malware.removed", "ads", ""};
    const patient_pubkey *keys = NULL;
    size_t i, k, n = 0;
    char *origin, *path;

    for (i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        origin = path = NULL;
        if (patient_policy_split_url(urls[i], &origin, &path) == PATIENT_OK) {
            if (patient_policy_publisher_keys(p, origin, &keys, &n) == PATIENT_OK &&
                (keys == NULL || n == 0))
                abort();
            for (k = 0; k < patient_policy_middlebox_count(p); k++) {
                const patient_policy_middlebox *m = patient_policy_middlebox_at(p, k);
                patient_policy_deny why;
                if (m == NULL || patient_policy_middlebox_name(m) == NULL ||
                    patient_policy_middlebox_key(m) == NULL)
                    abort();
                if (patient_policy_middlebox_find(p, patient_policy_middlebox_key(m)->id) == NULL)
                    abort();
                (void)patient_policy_middlebox_max_edits(m);
                (void)patient_policy_middlebox_insert_allowed(m);
                (void)patient_policy_check_edit(m, origin, path, reasons[(i + k) % 4],
                                                (int)(k & 1), &why);
            }
        }
        free(origin);
        free(path);
    }
    if (patient_policy_middlebox_at(p, patient_policy_middlebox_count(p)) != NULL)
        abort();
    (void)patient_policy_require_disclosure(p);
    (void)patient_policy_max_retention_days(p);
    (void)patient_policy_min_upstream_tls(p);
    (void)patient_policy_require_proof(p);
    (void)patient_policy_unsigned(p);
    (void)patient_policy_lint(p, lint_cb, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_policy *p = NULL, *p2 = NULL;
    char *detail = NULL, *out = NULL, *out2 = NULL;
    size_t len = 0, len2 = 0;
    patient_err err;

    err = patient_policy_parse((const char *)data, size, &p, &detail);
    if ((err == PATIENT_OK) != (p != NULL))
        abort();
    free(detail);
    detail = NULL;
    if (p != NULL) {
        exercise(p);
        if (patient_policy_serialize(p, &out, &len) != PATIENT_OK)
            abort();
        if (patient_policy_parse(out, len, &p2, &detail) != PATIENT_OK)
            abort(); /* what we write we must read */
        if (patient_policy_serialize(p2, &out2, &len2) != PATIENT_OK || len != len2 ||
            memcmp(out, out2, len) != 0)
            abort();
        patient_policy_free(p2);
        free(out);
        free(out2);
        patient_policy_free(p);
        p = NULL;
    }
    err = patient_policy_parse_ex((const char *)data, size, PATIENT_POLICY_KEEP_UNKNOWN, &p,
                                  &detail);
    if (p != NULL)
        exercise(p);
    patient_policy_free(p);
    free(detail);
    return 0;
}
