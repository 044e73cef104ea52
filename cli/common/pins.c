/* The TLS pin options every tool shares (--tls-key, --interception-ca):
 * a pin literal or a file read by the library's rules (<patient/file.h>:
 * capped, no symlinks). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"

int
cli_tls_pin_add(const char *usage, int hint, const char *opt, const char *arg,
                uint8_t (*pins)[32], size_t *n)
{
    char *data = NULL;
    size_t len = 0;
    patient_err err;

    if (*n >= PATIENT_MAX_TLS_PINS) {
        if (hint)
            cli_usage_short(usage, "at most %d %s", PATIENT_MAX_TLS_PINS, opt);
        cli_usage(usage, "at most %d %s", PATIENT_MAX_TLS_PINS, opt);
    }
    if (strncmp(arg, "sha256-", 7) == 0)
        err = patient_tls_pin_parse(arg, strlen(arg), pins[*n]);
    else if ((err = patient_file_read(arg, 65536, 0, &data, &len, NULL)) == PATIENT_OK)
        err = patient_tls_pin_parse(data, len, pins[*n]);
    free(data);
    if (err == PATIENT_ERR_PARSE) {
        cli_warn("%s %s: not a sha256-<base64> SPKI pin (32 bytes) or a PEM certificate or "
                 "public key", opt, arg);
        return -1;
    }
    if (err != PATIENT_OK) {
        cli_warn("%s %s: %s", opt, arg, patient_strerror(err));
        return -1;
    }
    ++*n;
    return 0;
}
