/* libFuzzer harness: parse the input as a rule file; if it loads, apply it
 * to a fixed small body under a few media types and check the callback
 * contract (ascending distinct offsets, edits inside the body). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <patient/rules.h>

static const char body[] = "<html><body class=x><b>TTab\0abab<script src=//tracker.example/t.js>"
                           "</script>X5O!P%@AP</body></html>";

typedef struct {
    size_t n, last, len;
} state;

static patient_err
check(void *ctx, const patient_rule_match *m)
{
    state *s = ctx;

    if ((s->n > 0 && m->offset <= s->last) || m->offset > s->len ||
        m->delete_len > s->len - m->offset || m->reason == NULL || m->rule_id == NULL ||
        (m->insert_len > 0 && m->insert == NULL) || (m->delete_len == 0 && m->insert_len == 0))
        abort();
    s->last = m->offset;
    s->n++;
    return PATIENT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *types[] = {NULL, "text/html; charset=utf-8", "image/png", "text/plain"};
    patient_rules *r = NULL;
    char *detail = NULL;
    size_t i;

    if (patient_rules_parse(data, size, &r, &detail) == PATIENT_OK) {
        if (detail != NULL)
            abort(); /* detail only on failure */
        for (i = 0; i < sizeof types / sizeof types[0]; i++) {
            state s = {0, 0, sizeof body - 1};
            if (patient_rules_apply(r, body, sizeof body - 1, types[i], check, &s) != PATIENT_OK)
                abort(); /* a fixed small body cannot hit any limit */
        }
        patient_rules_free(r);
    } else if (r != NULL) {
        abort();
    }
    free(detail);
    return 0;
}
