/* libFuzzer harness: inspection (patient_inspect) of any input, whole and
 * as the head of a longer file. A recognised artefact has a kind and no
 * error, renders as JSON that parses back with that kind, and as text; a
 * refusal has a reason, no kind, and renders as JSON only. JSON documents
 * go through their formats' readers here (details.problem). */
#include "config.h"

#include <cJSON.h>
#include <patient/inspect.h>

#include "common.h"

static void
one(const uint8_t *data, size_t size, int head_only)
{
    patient_inspect_opts o = PATIENT_OPTS_INIT(patient_inspect_opts);
    patient_inspection *r = NULL;
    patient_err err;
    const char *kind;
    char *js, *txt;
    cJSON *d;

    o.head_only = head_only;
    err = patient_inspect(data, size, &o, &r);
    if (err == PATIENT_ERR_NOMEM)
        goto out;
    if ((err != PATIENT_OK && err != PATIENT_ERR_PARSE) || r == NULL)
        abort();
    kind = patient_inspection_kind(r);
    if ((err == PATIENT_OK) != (kind != NULL) ||
        (kind == NULL) != (patient_inspection_error(r) != NULL))
        abort();
    if ((js = patient_inspection_json(r, "fuzz")) != NULL) {
        const cJSON *k;
        if ((d = cJSON_Parse(js)) == NULL)
            abort();
        k = cJSON_GetObjectItemCaseSensitive(d, "kind");
        if (kind ? !cJSON_IsString(k) || strcmp(k->valuestring, kind) != 0 : !cJSON_IsNull(k))
            abort();
        cJSON_Delete(d);
        free(js);
    }
    txt = patient_inspection_text(r, "fuzz");
    if (kind == NULL && txt != NULL)
        abort();
    free(txt);
out:
    patient_inspection_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, 0);
    one(data, size, 1);
    return 0;
}
