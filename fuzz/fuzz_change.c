/* libFuzzer harness: Patient-Change values.
 * Input starting with '{' is a descriptor payload: it is signed with the
 * test key as a "patient-change+jws" JWS first, so the fuzzer mutates the
 * JSON itself rather than its base64url. Anything else is a header field
 * value: split as a list (patient_change_header_split), each element and the
 * whole input parsed (patient_change_parse). A descriptor that parses is
 * checked against a fixed body (the page the seed descriptors in
 * fuzz/corpus/change/ produced, so their undo succeeds), undone, and when the
 * undo succeeds its edits re-applied to the recovered input must give the
 * body back byte for byte. */
#include "config.h"

#include <patient/change.h>
#include <patient/jws.h>

#include "common.h"

static const char body[] =
    "<html><body class=x><div class=\"patient-notice\" role=\"note\">This page passed through a "
    "filtering proxy; every change is signed in the Patient-Change header.</div><p>hello</p>"
    "<p>bye</p></body></html>\n";

static void
one(const char *v, size_t len)
{
    patient_change *c = NULL;
    const patient_change *cs[1];
    uint8_t *in = NULL, *again = NULL;
    size_t in_len = 0, again_len = 0, bad = 0;
    patient_err err;

    err = patient_change_parse(v, len, &c);
    if ((err == PATIENT_OK) != (c != NULL))
        abort();
    if (c == NULL)
        return;
    if (c->nedits < 1 || c->nedits > PATIENT_MAX_EDITS || c->hop < 1 ||
        c->hop > PATIENT_MAX_HOPS || c->value == NULL || c->url == NULL || c->jws == NULL)
        abort();
    (void)patient_change_verify(c, fz_pubkey());
    cs[0] = c;
    (void)patient_chain_check(cs, 1, c->url, &bad);
    (void)patient_change_check_output(c, (const uint8_t *)body, sizeof body - 1);
    err = patient_change_undo(c, (const uint8_t *)body, sizeof body - 1, &in, &in_len);
    if (err == PATIENT_OK) {
        if (in == NULL || in_len != c->in.size)
            abort();
        if (patient_edits_apply(in, in_len, c->edits, c->nedits, &again, &again_len) !=
                PATIENT_OK ||
            again_len != sizeof body - 1 || memcmp(again, body, again_len) != 0)
            abort();
    }
    free(again);
    free(in);
    patient_change_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_span spans[PATIENT_MAX_HOPS];
    size_t n = 0, i;
    char *jws = NULL;

    if (size > 0 && data[0] == '{') {
        if (patient_jws_sign(fz_seckey(), PATIENT_CHANGE_TYP, data, size, &jws) == PATIENT_OK)
            one(jws, strlen(jws));
        free(jws);
        return 0;
    }
    one((const char *)data, size);
    if (patient_change_header_split((const char *)data, size, spans, PATIENT_MAX_HOPS, &n) ==
        PATIENT_OK) {
        if (n > PATIENT_MAX_HOPS)
            abort();
        for (i = 0; i < n; i++) {
            if (spans[i].p < (const char *)data || spans[i].len == 0 ||
                spans[i].p + spans[i].len > (const char *)data + size)
                abort();
            if (n > 1)
                one(spans[i].p, spans[i].len);
        }
    } else if (n != 0) {
        abort();
    }
    return 0;
}
