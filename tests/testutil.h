/* What the Check files share: private temporary folders (under $TMPDIR,
 * made with mkdtemp, removed without a shell), paths in them, and whole
 * files and committed fixtures read into memory. Each helper fails the
 * running test (ck_abort) instead of returning an error. */
#ifndef PATIENT_TESTUTIL_H
#define PATIENT_TESTUTIL_H

#include <stddef.h>
#include <patient/verify.h>

/* The folder for temporary files: $TMPDIR, or /tmp when it is unset. */
const char *tu_tmp(void);
/* Make a fresh folder "<$TMPDIR or /tmp>/<name>.XXXXXX" (mode 0700) into
 * dir, which has room for cap bytes. */
void tu_mkdtemp(char *dir, size_t cap, const char *name);
/* Remove path and everything below it; symlinks are removed, never
 * followed. A missing path is fine. */
void tu_rmtree(const char *path);
/* dir + "/" + name, in one of 8 rotating static buffers (so a few may be
 * used in one expression). */
const char *tu_path(const char *dir, const char *name);
/* The whole file, NUL-terminated (*len without the NUL; len may be NULL).
 * Caller frees. */
char *tu_slurp(const char *path, size_t *len);
/* A committed fixture: tests/data/<name>. */
char *tu_fixture(const char *name, size_t *len);
/* s with the first occurrence of from replaced by to (malloc'd); from
 * must occur. */
char *tu_replace1(const char *s, const char *from, const char *to);

/* Make the n-th allocation cJSON asks for on this thread from now on fail
 * (once; n >= 1), through pt_json_track_nomem_with (cJSON's hooks set
 * again each call); 0 fails none. Returns
 * how many the thread asked for since the previous call. */
unsigned tu_json_fail_alloc(unsigned n);

/* Times in signed documents (a descriptor's at, a disclosure's issued and
 * expires): the inputs their one reader accepts, each with its value, and
 * refuses (PATIENT_ERR_PARSE), for the files that check each document. */
typedef struct {
    const char *s;
    patient_err want;
    long long t; /* when want is PATIENT_OK */
} tu_time_case;
extern const tu_time_case tu_rfc3339_cases[];
extern const size_t tu_rfc3339_ncases;

/* The code of a report's first result with severity "error" (unverifiable
 * or invalid), NULL when there is none; borrowed from the report. */
const char *tu_report_first_error(const patient_report *r);

/* The verifier's streaming path must report what its buffered path
 * reported (r) for the same evidence and options: ev verified again with
 * the body fed to the checks in pieces of 1, 7, 4095 and 65537 bytes and
 * at once (pt_verify_evidence_fed), each report's JSON compared with r's.
 * Options with a state file are not run again (the state would change):
 * -1. Else 1 when the body went through the streaming checks (every run
 * agrees), 0 when the plan kept it for the core, so that a test can show
 * the comparison was of a streamed body. */
int tu_same_streamed(const patient_policy *p, const patient_evidence *ev,
                     const patient_verify_opts *o, const patient_report *r);
/* 1 when some result of the report has this code. */
int tu_report_has_code(const patient_report *r, const char *code);

#endif
