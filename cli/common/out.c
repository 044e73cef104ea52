/* The output file of a verb (--out, --leaf-out): written by the library's
 * rules (<patient/file.h>: atomic, no symlinks), with the one message
 * every verb gives when it cannot be. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "cli.h"

int
cli_write_out(const char *path, const void *data, size_t len, int force)
{
    patient_err err = patient_file_write(path, data, len, 0644, force ? PATIENT_FILE_REPLACE : 0);

    if (err == PATIENT_OK)
        return 0;
    if (err == PATIENT_ERR_EXISTS)
        cli_warn("%s already exists; use -f to overwrite it [file.exists]", path);
    else
        cli_warn("%s: %s", strcmp(path, "-") == 0 ? "stdout" : path, strerror(errno));
    return -1;
}
