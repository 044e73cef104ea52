/* File input and output for every tool: capped whole-file reads that refuse
 * symlinks and non-regular files, "-" for stdin/stdout, atomic writes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

patient_err
cli_read_file(const char *path, size_t cap, unsigned flags, char **data, size_t *len,
              int *truncated)
{
    int fd = -1, head = (flags & CLI_READ_HEAD) != 0;
    char *buf = NULL, *nb;
    /* Whole-file mode reads one byte past the cap to tell "exactly cap"
     * from "larger"; head mode stops at the cap. */
    size_t n = 0, size = 0, limit = head ? cap : cap + 1;
    ssize_t r;
    struct stat st;
    patient_err err = PATIENT_ERR_IO;

    *data = NULL;
    *len = 0;
    if (truncated)
        *truncated = 0;
    if (strcmp(path, "-") == 0) {
        fd = STDIN_FILENO;
    } else if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0) {
        /* O_NONBLOCK: opening a FIFO must not hang before fstat refuses it. */
        return errno == ENOENT ? PATIENT_ERR_NOT_FOUND
               : errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH
                                : PATIENT_ERR_IO;
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = PATIENT_ERR_UNSAFE_PATH;
        goto out;
    } else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        goto out;
    }
    for (;;) {
        if (n == size) {
            if (size >= limit) { /* head mode only: keep what we have */
                if (truncated)
                    *truncated = 1;
                break;
            }
            size = size ? size * 2 : 65536;
            if (size > limit)
                size = limit;
            if ((nb = realloc(buf, size + 1)) == NULL) {
                err = PATIENT_ERR_NOMEM;
                goto out;
            }
            buf = nb;
        }
        r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        n += (size_t)r;
        if (!head && n > cap) {
            err = PATIENT_ERR_TOO_LARGE;
            goto out;
        }
    }
    if (buf == NULL && (buf = malloc(1)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    buf = NULL;
    err = PATIENT_OK;
out:
    free(buf);
    if (fd > STDIN_FILENO)
        close(fd);
    return err;
}

int
cli_write_all(int fd, const void *p, size_t len)
{
    const char *q = p;

    while (len > 0) {
        ssize_t w = write(fd, q, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        q += w;
        len -= (size_t)w;
    }
    return 0;
}

int
cli_write_atomic(const char *path, const void *data, size_t len, unsigned mode, int replace)
{
    char tmp[PATH_MAX];
    int fd, ok = 0;

    if (strcmp(path, "-") == 0)
        return fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = mkstemp(tmp)) < 0)
        return -1;
    if (fchmod(fd, (mode_t)mode) == 0 && cli_write_all(fd, data, len) == 0 && fsync(fd) == 0)
        ok = 1;
    if (close(fd) != 0)
        ok = 0;
    /* link(2) refuses an existing name, so without replace nothing that is
     * there already is ever overwritten, not even by a race. */
    if (ok)
        ok = replace ? rename(tmp, path) == 0 : link(tmp, path) == 0;
    if (!ok || !replace) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
    }
    return ok ? 0 : -1;
}

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
    else if ((err = cli_read_file(arg, 65536, 0, &data, &len, NULL)) == PATIENT_OK)
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
