/* Files as the patient tools read and write them, by the library's own
 * rules: a capped whole-file read that refuses symlinks, devices and FIFOs,
 * and an atomic write (temporary file beside it, fsync, rename or link,
 * fsync of the folder). "-" is standard input or output. */
#ifndef PATIENT_FILE_H
#define PATIENT_FILE_H

#include <stddef.h>
#include <patient/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* patient_file_read flag: a larger file is not an error; its first max
 * bytes are returned and *truncated is set to 1. */
#define PATIENT_FILE_HEAD 1u

/* Read the file at path, or standard input for "-", into *data
 * (malloc'd, NUL-terminated; *len excludes the NUL; the caller frees).
 * A named file must be a regular file and not a symlink
 * (PATIENT_ERR_UNSAFE_PATH); a missing one is PATIENT_ERR_NOT_FOUND.
 * More than max bytes is PATIENT_ERR_TOO_LARGE unless flags has
 * PATIENT_FILE_HEAD. truncated may be NULL without that flag; otherwise
 * it is set to 0 or 1. PATIENT_ERR_ARG: path, data or len NULL, or the flag
 * without truncated. On every failure *data is NULL and *len 0 (when
 * they are not NULL). Thread-safe (standard input is the process's: two
 * threads reading "-" at once share it). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_file_read(const char *path, size_t max,
                                                         unsigned flags, char **data, size_t *len,
                                                         int *truncated);

/* patient_file_write flag: replace a file already at path (by rename);
 * without it an existing path is never overwritten, not even by a race
 * (link: PATIENT_ERR_EXISTS). */
#define PATIENT_FILE_REPLACE 1u

/* Write len bytes of data to path atomically, the new file with the given
 * mode (e.g. 0600; the umask does not apply). "-" writes to standard output
 * (after flushing stdout's stdio buffer, so it follows what was printed).
 * An existing path that is not a regular file is PATIENT_ERR_UNSAFE_PATH;
 * PATIENT_ERR_ARG: path NULL, data NULL with len > 0, or path too long
 * for the temporary name beside it.
 * On failure errno says why as well, for a tool's message: EEXIST with
 * PATIENT_ERR_EXISTS; EISDIR (a folder), ELOOP (a symlink) or ENOTSUP (a
 * FIFO, socket or device) with PATIENT_ERR_UNSAFE_PATH; ENAMETOOLONG or
 * EINVAL with PATIENT_ERR_ARG; as the failing call left it with
 * PATIENT_ERR_IO. Thread-safe for distinct paths, except for "-": the
 * fflush(stdout) and the write to standard output are not serialised
 * against another thread's output. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_file_write(const char *path, const void *data,
                                                          size_t len, unsigned mode,
                                                          unsigned flags);

#ifdef __cplusplus
}
#endif

#endif
