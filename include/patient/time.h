/* Times as every patient artefact writes them: RFC 3339 UTC
 * ("2026-11-27T08:00:00Z"). Tools parse --at and similar options with the
 * same parser the library uses for signed documents. */
#ifndef PATIENT_TIME_H
#define PATIENT_TIME_H

#include <time.h>
#include <patient/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Parse "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)" (fixed layout, fields
 * in range: 2026-02-30 and 24:00:00 are refused) or "@EPOCH" seconds.
 * PATIENT_ERR_PARSE otherwise. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_time_parse(const char *s, time_t *t);
/* A time as a person gives it on a command line (patient audit --since,
 * --until), one of:
 *   RFC 3339 with any offset: "2026-11-27T08:00:00Z",
 *     "2026-11-27T09:00:00+01:00"; a fraction is dropped; "t", "z" and a
 *     blank for "T" are taken (RFC 3339 section 5.6)
 *   a date alone, "2026-11-27": 00:00:00 UTC of that day
 *   "@EPOCH" seconds
 *   an age before now: a duration with its unit (patient_duration_parse:
 *     "90s", "15m", "12h", "7d", "2w") of at most max_age seconds
 * Fields in range as for patient_time_parse (2026-02-30, 24:00, :60 are
 * refused). PATIENT_ERR_PARSE otherwise, PATIENT_ERR_TOO_LARGE for an age
 * over max_age. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_time_parse_arg(const char *s, time_t now,
                                                              long long max_age, time_t *t);
/* Bytes of a formatted time, "YYYY-MM-DDTHH:MM:SSZ" and its NUL. */
#define PATIENT_TIME_BYTES 21

/* Format as "YYYY-MM-DDTHH:MM:SSZ"; out needs PATIENT_TIME_BYTES bytes.
 * Thread-safe. */
PATIENT_EXPORT void patient_time_format(time_t t, char out[PATIENT_TIME_BYTES]);
/* Bytes for patient_time_format_any: any time_t as text and its NUL. */
#define PATIENT_TIME_ANY_BYTES 32

/* Format as "YYYY-MM-DDTHH:MM:SSZ" without clamping, as an audit log's
 * times are shown (patient audit list, the day groups of stats): a year
 * past 9999 takes more digits, and a time gmtime_r cannot break down is
 * "@EPOCH" (seconds). out needs PATIENT_TIME_ANY_BYTES bytes. Thread-safe. */
PATIENT_EXPORT void patient_time_format_any(time_t t, char out[PATIENT_TIME_ANY_BYTES]);
/* Parse a duration: digits, then optionally one of s, m, h, d, w (bare
 * digits are seconds), e.g. "90s", "15m", "12h", "7d", "2w"; no sign or
 * blanks. Zero is accepted (callers that need more check). More than max
 * seconds is PATIENT_ERR_TOO_LARGE, anything else malformed
 * PATIENT_ERR_PARSE. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_duration_parse(const char *s, long long max,
                                                              long long *seconds);

#ifdef __cplusplus
}
#endif
#endif
