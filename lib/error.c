/* Messages and stable names for patient_err. */
#include "config.h"
#include <stddef.h>
#include <patient/error.h>

static const struct {
    const char *name;
    const char *msg;
} table[] = {
    [PATIENT_OK] = {"ok", "success"},
    [PATIENT_ERR_NOMEM] = {"nomem", "out of memory"},
    [PATIENT_ERR_IO] = {"io", "input/output error"},
    [PATIENT_ERR_ARG] = {"argument", "invalid argument"},
    [PATIENT_ERR_TOO_LARGE] = {"too_large", "input exceeds a size limit"},
    [PATIENT_ERR_PARSE] = {"parse", "malformed input"},
    [PATIENT_ERR_JSON] = {"json", "malformed or too deeply nested JSON"},
    [PATIENT_ERR_BASE64] = {"base64", "malformed base64"},
    [PATIENT_ERR_KEY_FORMAT] = {"key.format", "not a valid key file"},
    [PATIENT_ERR_KEY_PASSWORD] = {"key.password", "wrong password for the secret key"},
    [PATIENT_ERR_KEY_MISMATCH] = {"key.mismatch", "signed with a different key"},
    [PATIENT_ERR_SIGNATURE] = {"signature.invalid", "signature verification failed"},
    [PATIENT_ERR_EXISTS] = {"file.exists", "file exists (use --force to overwrite)"},
    [PATIENT_ERR_PERM] = {"file.permissions", "file permissions are unsafe"},
    [PATIENT_ERR_UNSAFE_PATH] = {"file.unsafe", "symlink, device, FIFO or path outside the tree"},
    [PATIENT_ERR_UNSUPPORTED] = {"unsupported", "unsupported algorithm or format version"},
    [PATIENT_ERR_EXPIRED] = {"expired", "expired or not yet valid"},
    [PATIENT_ERR_ROLLBACK] = {"rollback", "older than a version already seen"},
    [PATIENT_ERR_ORIGIN] = {"origin.mismatch", "issued for another origin or URL"},
    [PATIENT_ERR_EDIT_RANGE] = {"edit.range", "edit lies outside the body"},
    [PATIENT_ERR_EDIT_ORDER] = {"edit.order", "edits are unsorted or overlap"},
    [PATIENT_ERR_HASH] = {"hash.mismatch", "content does not match its hash"},
    [PATIENT_ERR_CHAIN] = {"chain.broken", "chain of hops or log entries is broken"},
    [PATIENT_ERR_LIMIT] = {"limit", "too many edits, hops or entries"},
    [PATIENT_ERR_NOT_FOUND] = {"not_found", "not found"},
    [PATIENT_ERR_FETCH] = {"fetch.failed", "network fetch failed"},
    [PATIENT_ERR_POLICY] = {"policy.denied", "refused by the trust policy"},
    [PATIENT_ERR_LOG_CORRUPT] = {"log.corrupt", "audit log is damaged"},
    [PATIENT_ERR_CRYPTO] = {"crypto", "cryptographic library failure"},
    [PATIENT_ERR_REGEX] = {"regex", "invalid regular expression"},
    [PATIENT_ERR_GZIP] = {"gzip", "bad or unsupported compressed body"},
    [PATIENT_ERR_STATE] = {"state", "call out of order"},
    [PATIENT_ERR_INTERRUPTED] = {"interrupted", "interrupted"},
};

const char *
patient_strerror(patient_err err)
{
    if ((int)err < 0 || (int)err > PATIENT_ERR_MAX_ || table[err].msg == NULL)
        return "unknown error";
    return table[err].msg;
}

const char *
patient_errname(patient_err err)
{
    if ((int)err < 0 || (int)err > PATIENT_ERR_MAX_ || table[err].name == NULL)
        return "unknown";
    return table[err].name;
}
