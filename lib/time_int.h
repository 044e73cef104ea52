/* What lib/time.c offers the rest of the library beyond <patient/time.h>.
 * Never installed. */
#ifndef PATIENT_TIME_INT_H
#define PATIENT_TIME_INT_H

#include <time.h>
#include <patient/error.h>
#include <patient/time.h>

/* RFC 3339 UTC timestamps "2026-11-27T07:54:19Z". out needs
 * PATIENT_TIME_BYTES bytes (patient/time.h). */
void pt_time_format(time_t t, char out[PATIENT_TIME_BYTES]);
/* Accepts exactly "YYYY-MM-DDTHH:MM:SSZ" (also with fractional seconds,
 * which are dropped, or "+00:00"), and "@EPOCH". Out-of-range fields
 * (Feb 30, hour 24, leap second 60) are PATIENT_ERR_PARSE. Formatting
 * clamps to years 0000..9999. */
patient_err pt_time_parse(const char *s, time_t *t);
/* The times signed documents carry (a descriptor's at, a disclosure's
 * issued and expires): what pt_time_parse accepts except "@EPOCH", which is
 * for command lines; s NULL (a member absent or not a string) and anything
 * else are PATIENT_ERR_PARSE. */
patient_err pt_time_parse_rfc3339(const char *s, time_t *t);
/* Durations: "90s", "15m", "12h", "7d", "2w"; a bare number is seconds.
 * No sign or blanks; more than 2^40 seconds is PATIENT_ERR_TOO_LARGE. */
patient_err pt_duration_parse(const char *s, long long *seconds);

#endif
