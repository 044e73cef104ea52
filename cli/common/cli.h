/* What every command-line tool needs (patient, patient-verify,
 * patient-publish, patient-mbox): messages, usage and exit codes,
 * passwords and secret keys, pin-list options (files are read and written
 * with <patient/file.h>, durations and times come from <patient/time.h>).
 * A convenience library linked into each tool, never installed. Only the
 * public libpatient API (PATIENT_EXPORT) is available here: tools link the shared
 * library. Not thread-safe (one tool, one thread). */
#ifndef PATIENT_CLI_H
#define PATIENT_CLI_H

#include <stdarg.h>
#include <patient/patient.h>

/* Exit codes of every patient tool. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1  /* verification failed / refused */
#define CLI_EXIT_USAGE 2 /* usage, local I/O or other local error */
#define CLI_EXIT_UNVERIFIABLE 3 /* patient-verify: nothing to check against */

/* Name used in messages: "patient" (the default) or "patient VERB"; other
 * tools set their own ("patient-verify") first thing in main. */
void cli_set_verb(const char *verb);
void cli_set_name(const char *name);
const char *cli_name(void);

/* "patient VERB: message\n" on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Warn, then exit with code. */
__attribute__((noreturn)) void cli_die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print usage text: on stdout with exit 0 when reason is NULL (--help),
 * otherwise "reason" and the usage on stderr with exit 2. */
__attribute__((noreturn)) void cli_usage(const char *usage, const char *reason, ...)
    __attribute__((format(printf, 2, 3)));
/* The same with a short error: "NAME: reason" and "Try 'NAME --help'." on
 * stderr, exit 2 (patient-verify, patient-publish, patient-mbox). */
__attribute__((noreturn)) void cli_usage_short(const char *usage, const char *reason, ...)
    __attribute__((format(printf, 2, 3)));
/* "NAME: what: <strerror>[: detail]" on stderr, then exit 2. */
__attribute__((noreturn)) void cli_fatal(const char *what, patient_err err, const char *detail);

/* Exit code for a library error: 1 for verification failures (signature,
 * key mismatch, hash, chain, expiry, rollback, origin, policy, edits),
 * 2 for everything else. */
int cli_exit_code(patient_err err);
/* Print "patient VERB: what: <strerror> [errname]" and return
 * cli_exit_code(err). what may be NULL. */
int cli_report(patient_err err, const char *what);

/* Get a password: from file (if not NULL), else from the file named by
 * PATIENT_PASSWORD_FILE, else by asking on the terminal (/dev/tty, echo
 * off) with prompt; with confirm, asks twice and insists they match.
 * *out is in guarded memory; free with cli_password_free. */
patient_err cli_password_get(const char *file, const char *prompt, int confirm, char **out);
void cli_password_free(char *pw);

/* Load a secret key; when it is encrypted get the password as
 * cli_password_get does (three tries on a terminal). Prints its own
 * messages; returns an exit code (0 on success). */
int cli_seckey_load(const char *path, const char *password_file, patient_seckey **sk);
/* Load a public key given to option opt (a .pub file or an RW... string);
 * on failure print "OPT SPEC: why [name]" and return CLI_EXIT_USAGE. */
int cli_pubkey_load(const char *opt, const char *spec, patient_pubkey *pk);

/* A pin-list option (opt, e.g. --interception-ca, --tls-key) given once
 * more: its argument, "sha256-<base64>" or a file holding a PEM
 * certificate or public key (patient_tls_pin_parse), appended to pins, of
 * which *n of PATIENT_MAX_TLS_PINS are used. A full list is a usage error,
 * "at most N OPT" (with the whole usage, or with hint only the pointer to
 * --help: cli_usage, cli_usage_short). 0, or -1 after printing
 * "OPT ARG: why". */
int cli_tls_pin_add(const char *usage, int hint, const char *opt, const char *arg,
                    uint8_t (*pins)[32], size_t *n);

/* Write len bytes to path ("-": standard output) atomically, a new file
 * of mode 0644 (an existing one replaced only with force), saying why
 * not: 0, or -1 after "PATH already exists; use -f to overwrite it
 * [file.exists]" or "PATH: why" (stdout for "-"). */
int cli_write_out(const char *path, const void *data, size_t len, int force);

/* Does path exist (without following a final symlink)? */
int cli_exists(const char *path);

/* Is stderr a terminal (progress messages go there only then)? */
int cli_stderr_tty(void);

#endif
