/* libFuzzer harness: minisign signature files (patient_minisig_verify)
 * against the fixed test key over a fixed message (tests/data/key_test.txt,
 * whose signature is a seed). Only that exact signature may verify. */
#include "config.h"

#include <patient/key.h>

#include "common.h"

static const char msg[] =
    "patient golden fixture: signed with tests/data/key_test.key by minisign 0.11\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *tc = NULL;
    uint8_t kid[PATIENT_KEYID_BYTES];
    patient_err err;

    err = patient_minisig_verify(fz_pubkey(), msg, sizeof msg - 1, (const char *)data, size, &tc,
                                 kid);
    if (err == PATIENT_OK) {
        if (tc == NULL || strchr(tc, '\n') != NULL ||
            memcmp(kid, fz_pubkey()->id, sizeof kid) != 0)
            abort();
    } else if (tc != NULL) {
        abort();
    }
    free(tc);
    /* The same bytes as a signature over the empty message. */
    err = patient_minisig_verify(fz_pubkey(), "", 0, (const char *)data, size, NULL, NULL);
    (void)err;
    /* And as any minisign file read for display: pointers stay inside the
     * input, a signature it accepts names its trusted comment. */
    {
        patient_minisign_info mi;
        const char *in = (const char *)data;
        err = patient_minisign_inspect(in, size, &mi);
        const char *uc = mi.untrusted_comment, *tcm = mi.trusted_comment;
        if ((uc && (uc < in || uc + mi.untrusted_comment_len > in + size)) ||
            (tcm && (tcm < in || tcm + mi.trusted_comment_len > in + size)) ||
            (err == PATIENT_OK && mi.kind == PATIENT_MINISIGN_SIGNATURE && tcm == NULL) ||
            (err == PATIENT_OK && mi.kind == PATIENT_MINISIGN_UNKNOWN))
            abort();
    }
    return 0;
}
