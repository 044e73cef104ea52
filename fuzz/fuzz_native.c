/* libFuzzer harness: the input is one native-messaging request. The
 * answer must always be a JSON object; every fetch goes through a proxy at
 * 127.0.0.1:1, so a request that reaches the network fails at once
 * (connection refused) and never leaves the machine. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <patient/verify.h>

static const char policy_json[] =
    "{\"patient\":1,\"type\":\"policy\","
    "\"publishers\":{\"https://site.example\":[\"RWR+/lhNb576kTt2VK4+ftArtwWKHQQpFljc9RvHVv2LBcyvp41NwgsK\"]}}";

static patient_policy *policy;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_fetch_opts fo;
    patient_verify_fetch_opts f;
    patient_verify_opts o;
    char *answer = NULL;
    cJSON *j;

    if (policy == NULL) {
        char *detail = NULL;
        if (patient_policy_parse(policy_json, strlen(policy_json), &policy, &detail) != PATIENT_OK)
            abort();
    }
    patient_fetch_opts_init(&fo);
    fo.proxy = "http://127.0.0.1:1";
    fo.connect_timeout_ms = 200;
    fo.timeout_ms = 500;
    fo.max_redirects = 0;
    memset(&f, 0, sizeof f);
    f.fetch = &fo;
    f.cache_dir = "/tmp/fuzz_native.cache";
    memset(&o, 0, sizeof o);
    o.now = 1795000000;
    if (patient_native_handle(policy, &f, &o, (const char *)data, size, &answer) != PATIENT_OK)
        abort();
    if (answer == NULL || (j = cJSON_Parse(answer)) == NULL || !cJSON_IsObject(j))
        abort();
    cJSON_Delete(j);
    free(answer);
    return 0;
}
