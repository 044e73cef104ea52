/* Files for tools: the public face of the library's capped reader and
 * atomic writer (lib/util.c), so that every tool reads and writes by the
 * same rules as the library. <patient/file.h>. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <patient/file.h>
#include "util.h"

patient_err
patient_file_read(const char *path, size_t max, unsigned flags, char **data, size_t *len,
                  int *truncated)
{
    uint8_t *out = NULL;
    int head = 0;
    patient_err err;

    if (data == NULL || len == NULL)
        return PATIENT_ERR_ARG;
    /* Cleared before any refusal, so a caller may free *data on every path. */
    *data = NULL;
    *len = 0;
    if (truncated != NULL)
        *truncated = 0;
    if ((flags & PATIENT_FILE_HEAD) && truncated == NULL)
        return PATIENT_ERR_ARG;
    err = (flags & PATIENT_FILE_HEAD) ? pt_read_file_head(path, max, &out, len, &head)
                                      : pt_read_file(path, max, &out, len);
    *data = (char *)out;
    if (truncated != NULL)
        *truncated = head;
    return err;
}

patient_err
patient_file_write(const char *path, const void *data, size_t len, unsigned mode, unsigned flags)
{
    int excl = (flags & PATIENT_FILE_REPLACE) ? 0 : PT_WRITE_EXCL;

    if (path == NULL || (data == NULL && len > 0)) {
        errno = EINVAL;
        return PATIENT_ERR_ARG;
    }
    if (strcmp(path, "-") == 0 && fflush(stdout) != 0)
        return PATIENT_ERR_IO;
    /* pt_write_atomic sets errno for its refusals too. */
    return pt_write_atomic(path, data, len, mode, excl);
}
