/* Files for tools: the public face of the library's capped reader and
 * atomic writer (lib/util.c), so that every tool reads and writes by the
 * same rules as the library. <patient/file.h>. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <patient/file.h>
#include "util.h"

patient_err
patient_file_read(const char *path, size_t max, unsigned flags, char **data, size_t *len,
                  int *truncated)
{
    uint8_t *out = NULL;
    int head = 0;
    patient_err err;

    if (data == NULL || len == NULL || ((flags & PATIENT_FILE_HEAD) && truncated == NULL))
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
    struct stat st;
    patient_err err;

    if (path == NULL || (data == NULL && len > 0)) {
        errno = EINVAL;
        return PATIENT_ERR_ARG;
    }
    if (strcmp(path, "-") == 0 && fflush(stdout) != 0)
        return PATIENT_ERR_IO;
    err = pt_write_atomic(path, data, len, mode, excl);
    /* The refusals that are not a failed system call get the errno that
     * names them. */
    if (err == PATIENT_ERR_EXISTS)
        errno = EEXIST;
    else if (err == PATIENT_ERR_ARG)
        errno = ENAMETOOLONG;
    else if (err == PATIENT_ERR_UNSAFE_PATH && lstat(path, &st) == 0)
        errno = S_ISDIR(st.st_mode) ? EISDIR : S_ISLNK(st.st_mode) ? ELOOP : EINVAL;
    return err;
}
