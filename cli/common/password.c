/* Passwords and secret keys for every tool: from a file (--password-file or
 * PATIENT_PASSWORD_FILE) or from the terminal with echo off, into guarded
 * memory; a password longer than PATIENT_PASSWORD_MAX is refused, never
 * cut short. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <sodium.h>

#include "cli.h"

void
cli_password_free(char *pw)
{
    if (pw != NULL)
        sodium_free(pw); /* wipes first */
}

/* One line from the terminal with echo off, into guarded memory. */
static patient_err
tty_read(const char *prompt, char **out)
{
    struct termios old, quiet;
    char *pw = NULL;
    size_t n = 0;
    patient_err err = PATIENT_OK;
    int fd, restore = 0;
    char c;
    ssize_t r;

    *out = NULL;
    if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
        return PATIENT_ERR_NOT_FOUND;
    if ((pw = sodium_malloc(PATIENT_PASSWORD_MAX + 1)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    if (tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        if (tcsetattr(fd, TCSAFLUSH, &quiet) == 0)
            restore = 1;
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        err = PATIENT_ERR_IO;
        goto out;
    }
    for (;;) {
        r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = PATIENT_ERR_IO;
            goto out;
        }
        if (r == 0 || c == '\n' || c == '\r')
            break;
        if (n >= PATIENT_PASSWORD_MAX) {
            err = PATIENT_ERR_TOO_LARGE;
            goto out;
        }
        pw[n++] = c;
    }
    pw[n] = 0;
    *out = pw;
    pw = NULL;
out:
    c = 0;
    if (restore)
        (void)tcsetattr(fd, TCSAFLUSH, &old);
    if (restore && write(fd, "\n", 1) < 0) {
        /* nothing more to do */
    }
    close(fd);
    cli_password_free(pw);
    return err;
}

patient_err
cli_password_get(const char *file, const char *prompt, int confirm, char **out)
{
    char *again = NULL;
    patient_err err;

    *out = NULL;
    if (file != NULL || getenv("PATIENT_PASSWORD_FILE") != NULL) {
        const char *f = file ? file : getenv("PATIENT_PASSWORD_FILE");
        err = patient_password_from_file(file, out);
        if (err == PATIENT_ERR_PERM)
            cli_warn("password file %s: %s [%s]: it must not be readable by others: chmod 600 %s",
                     f, patient_strerror(err), patient_errname(err), f);
        else if (err != PATIENT_OK)
            cli_warn("password file %s: %s [%s]", f, patient_strerror(err), patient_errname(err));
        return err;
    }
    if ((err = tty_read(prompt, out)) != PATIENT_OK) {
        if (err == PATIENT_ERR_NOT_FOUND)
            cli_warn("no terminal to ask for a password: use --password-file FILE or "
                     "PATIENT_PASSWORD_FILE");
        else
            cli_warn("reading the password: %s", patient_strerror(err));
        return err;
    }
    if (!confirm)
        return PATIENT_OK;
    if ((err = tty_read("Password (one more time): ", &again)) != PATIENT_OK) {
        cli_warn("reading the password: %s", patient_strerror(err));
        goto fail;
    }
    if (strlen(again) != strlen(*out) || sodium_memcmp(again, *out, strlen(again)) != 0) {
        cli_warn("passwords don't match");
        err = PATIENT_ERR_KEY_PASSWORD;
        goto fail;
    }
    cli_password_free(again);
    return PATIENT_OK;
fail:
    cli_password_free(again);
    cli_password_free(*out);
    *out = NULL;
    return err;
}

int
cli_pubkey_load(const char *opt, const char *spec, patient_pubkey *pk)
{
    patient_err err = patient_pubkey_load(spec, pk);

    if (err != PATIENT_OK) {
        cli_warn("%s %s: %s [%s]", opt, spec, patient_strerror(err), patient_errname(err));
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int
cli_seckey_load(const char *path, const char *password_file, patient_seckey **sk)
{
    patient_err err;
    char *pw = NULL;
    int encrypted = 0, tries, from_file;

    *sk = NULL;
    err = patient_seckey_load(path, NULL, sk, &encrypted);
    if (err == PATIENT_OK)
        return CLI_EXIT_OK;
    if (err == PATIENT_ERR_PERM) {
        cli_warn("%s: secret key is readable by others; chmod 600 it [%s]", path,
                 patient_errname(err));
        return CLI_EXIT_USAGE;
    }
    if (err != PATIENT_ERR_KEY_PASSWORD || !encrypted) {
        cli_report(err, path);
        return CLI_EXIT_USAGE;
    }
    from_file = password_file != NULL || getenv("PATIENT_PASSWORD_FILE") != NULL;
    for (tries = 0; tries < (from_file ? 1 : 3); tries++) {
        if (cli_password_get(password_file, "Password: ", 0, &pw) != PATIENT_OK)
            return CLI_EXIT_USAGE;
        if (cli_stderr_tty())
            fprintf(stderr, "Deriving a key from the password and decrypting the secret key... ");
        err = patient_seckey_load(path, pw, sk, NULL);
        cli_password_free(pw);
        pw = NULL;
        if (cli_stderr_tty())
            fprintf(stderr, err == PATIENT_OK ? "done\n" : "failed\n");
        if (err != PATIENT_ERR_KEY_PASSWORD)
            break;
        cli_warn("%s: wrong password", path);
    }
    if (err != PATIENT_OK) {
        if (err != PATIENT_ERR_KEY_PASSWORD)
            cli_report(err, path);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}
