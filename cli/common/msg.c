/* Messages, usage and exit codes shared by every tool: "NAME: message" on
 * stderr, one mapping from library errors to exit codes. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static char name_buf[64] = "patient";

void
cli_set_verb(const char *verb)
{
    if (verb == NULL)
        snprintf(name_buf, sizeof name_buf, "patient");
    else
        snprintf(name_buf, sizeof name_buf, "patient %s", verb);
}

void
cli_set_name(const char *name)
{
    snprintf(name_buf, sizeof name_buf, "%s", name);
}

const char *
cli_name(void)
{
    return name_buf;
}

/* format(printf, 1, 0): callers' formats are checked at their cli_warn
 * etc. call; clang's -Wformat-nonliteral wants the attribute here too. */
static void vwarn(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static void
vwarn(const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "%s: ", name_buf);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void
cli_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vwarn(fmt, ap);
    va_end(ap);
}

void
cli_die(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vwarn(fmt, ap);
    va_end(ap);
    exit(code);
}

/* --help: the usage on stdout, exit 0. An error: the reason, then either
 * the whole usage or a pointer to --help, on stderr, exit 2. */
static void __attribute__((noreturn, format(printf, 3, 0)))
usage_exit(const char *usage, int hint, const char *reason, va_list ap);

static void
usage_exit(const char *usage, int hint, const char *reason, va_list ap)
{
    if (reason == NULL) {
        fputs(usage, stdout);
        exit(CLI_EXIT_OK);
    }
    vwarn(reason, ap);
    if (hint)
        fprintf(stderr, "Try '%s --help'.\n", name_buf);
    else
        fputs(usage, stderr);
    exit(CLI_EXIT_USAGE);
}

void
cli_usage(const char *usage, const char *reason, ...)
{
    va_list ap;

    va_start(ap, reason);
    usage_exit(usage, 0, reason, ap);
}

void
cli_usage_short(const char *usage, const char *reason, ...)
{
    va_list ap;

    va_start(ap, reason);
    usage_exit(usage, 1, reason, ap);
}

void
cli_fatal(const char *what, patient_err err, const char *detail)
{
    cli_die(CLI_EXIT_USAGE, "%s: %s%s%s", what, patient_strerror(err), detail ? ": " : "",
            detail ? detail : "");
}

int
cli_exit_code(patient_err err)
{
    switch (err) {
    case PATIENT_OK:
        return CLI_EXIT_OK;
    case PATIENT_ERR_KEY_MISMATCH:
    case PATIENT_ERR_SIGNATURE:
    case PATIENT_ERR_EXPIRED:
    case PATIENT_ERR_ROLLBACK:
    case PATIENT_ERR_ORIGIN:
    case PATIENT_ERR_EDIT_RANGE:
    case PATIENT_ERR_EDIT_ORDER:
    case PATIENT_ERR_HASH:
    case PATIENT_ERR_CHAIN:
    case PATIENT_ERR_POLICY:
    case PATIENT_ERR_LOG_CORRUPT:
        return CLI_EXIT_FAIL;
    default:
        return CLI_EXIT_USAGE;
    }
}

int
cli_report(patient_err err, const char *what)
{
    if (err == PATIENT_OK)
        return CLI_EXIT_OK;
    if (what != NULL)
        cli_warn("%s: %s [%s]", what, patient_strerror(err), patient_errname(err));
    else
        cli_warn("%s [%s]", patient_strerror(err), patient_errname(err));
    return cli_exit_code(err);
}

int
cli_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

int
cli_stderr_tty(void)
{
    return isatty(STDERR_FILENO);
}

