/* libFuzzer harness: the input is an evidence bundle. Re-verify it offline
 * with the policy it carries and with a fixed small policy; a bundle either
 * fails with an error code and no report, or gives a report whose JSON and
 * text render and whose verdict matches its results. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <patient/bundle.h>
#include <patient/verify.h>

static const char policy_json[] =
    "{\"patient\":1,\"type\":\"policy\","
    "\"publishers\":{\"https://site.example\":[\"RWR+/lhNb576kTt2VK4+ftArtwWKHQQpFljc9RvHVv2LBcyvp41NwgsK\"]},"
    "\"middleboxes\":[{\"name\":\"m\",\"key\":\"RWR+/lhNb576kTt2VK4+ftArtwWKHQQpFljc9RvHVv2LBcyvp41NwgsK\","
    "\"reasons\":[\"tracker.*\"],\"max_edits\":3,\"insert\":false}],"
    "\"require\":{\"proof\":\"proven\"}}";

static patient_policy *policy;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
one(const char *text, size_t len, const patient_policy *p, time_t now)
{
    patient_verify_opts o;
    patient_report *r = NULL;
    char *out = NULL;
    patient_err err;

    memset(&o, 0, sizeof o);
    o.now = now;
    err = patient_verify_bundle(text, len, p, &o, &r);
    if (err != PATIENT_OK) {
        if (r != NULL)
            abort();
        return;
    }
    if (r == NULL)
        abort();
    if (patient_report_json(r, 0, &out) != PATIENT_OK || out == NULL)
        abort();
    free(out);
    if (patient_report_text(r, 1, 1, &out) != PATIENT_OK || out == NULL)
        abort();
    free(out);
    /* An error-free report must not be invalid/unverifiable, and the
     * first code is never NULL. */
    if (patient_report_result_code(r, 0) == NULL)
        abort();
    patient_report_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (policy == NULL) {
        char *detail = NULL;
        if (patient_policy_parse(policy_json, strlen(policy_json), &policy, &detail) != PATIENT_OK)
            abort();
    }
    if (size > 1024 * 1024)
        return 0;
    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    one(text, size, NULL, 0);
    one(text, size, policy, 1795000000);
    free(text);
    return 0;
}
