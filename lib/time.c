/* Time: RFC 3339 UTC timestamps as every artefact writes them, their one
 * parser, and durations ("90s", "15m", "12h", "7d", "2w"). Public face:
 * <patient/time.h>; internal: time_int.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patient/time.h>
#include "time_int.h"
#include "util.h"

void
pt_time_format(time_t t, char out[PATIENT_TIME_BYTES])
{
    struct tm tm;

    /* Clamp to years 0000..9999 so the output always fits 20 characters. */
    if (t < (time_t)-62167219200LL)
        t = (time_t)-62167219200LL; /* 0000-01-01T00:00:00Z */
    if (t > (time_t)253402300799LL)
        t = (time_t)253402300799LL; /* 9999-12-31T23:59:59Z */
    if (gmtime_r(&t, &tm) == NULL ||
        snprintf(out, PATIENT_TIME_BYTES, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec) != PATIENT_TIME_BYTES - 1)
        memcpy(out, "0000-01-01T00:00:00Z", PATIENT_TIME_BYTES);
}

void
patient_time_format_any(time_t t, char out[PATIENT_TIME_ANY_BYTES])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, PATIENT_TIME_ANY_BYTES, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, PATIENT_TIME_ANY_BYTES, "@%lld", (long long)t);
}

/* Exactly n decimal digits. */
static int
digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction]" then "Z" or "+00:00" (strict: what
 * every artefact writes), or (lax: what a person types, RFC 3339 section
 * 5.6's note) also "t" or a blank for "T", "z", any "+hh:mm"/"-hh:mm"
 * offset, and a date alone (its 00:00:00 UTC). Fixed layout either way:
 * strptime is too lenient (single digits, leading blanks, out-of-range
 * days). */
static patient_err
parse_stamp(const char *s, int lax, time_t *t)
{
    struct tm tm = {0}, chk;
    const char *p;
    int y, mo, d, h = 0, mi = 0, se = 0, oh, om;
    long long off = 0;
    time_t r;

    if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d))
        return PATIENT_ERR_PARSE;
    p = s + 10;
    if (*p || !lax) {
        if (!(*p == 'T' || (lax && (*p == 't' || *p == ' '))) || digits(p + 1, 2, &h) ||
            p[3] != ':' || digits(p + 4, 2, &mi) || p[6] != ':' || digits(p + 7, 2, &se))
            return PATIENT_ERR_PARSE;
        p += 9;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return PATIENT_ERR_PARSE;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (strcmp(p, "Z") == 0 || strcmp(p, "+00:00") == 0 || (lax && strcmp(p, "z") == 0)) {
            off = 0;
        } else if (lax && (*p == '+' || *p == '-') && !digits(p + 1, 2, &oh) && p[3] == ':' &&
                   !digits(p + 4, 2, &om) && p[6] == 0 && oh < 24 && om < 60) {
            off = (oh * 3600LL + om * 60LL) * (*p == '+' ? 1 : -1);
        } else {
            return PATIENT_ERR_PARSE;
        }
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    r = timegm(&tm);
    /* Reject fields timegm had to normalise (2026-02-30, 25:00:00, :60). */
    if (gmtime_r(&r, &chk) == NULL || chk.tm_year != y - 1900 || chk.tm_mon != mo - 1 ||
        chk.tm_mday != d || chk.tm_hour != h || chk.tm_min != mi || chk.tm_sec != se)
        return PATIENT_ERR_PARSE;
    *t = r - (time_t)off;
    return PATIENT_OK;
}

/* "@EPOCH": decimal seconds, optionally negative. */
static patient_err
parse_epoch(const char *s, time_t *t)
{
    const char *p = s + 1;
    long long v;
    char *end;

    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return PATIENT_ERR_PARSE;
    errno = 0;
    v = strtoll(s + 1, &end, 10);
    if (errno || *end)
        return PATIENT_ERR_PARSE;
    *t = (time_t)v;
    return PATIENT_OK;
}

patient_err
pt_time_parse(const char *s, time_t *t)
{
    if (s == NULL || t == NULL)
        return PATIENT_ERR_ARG;
    if (s[0] == '@')
        return parse_epoch(s, t);
    return parse_stamp(s, 0, t);
}

patient_err
pt_time_parse_rfc3339(const char *s, time_t *t)
{
    if (s == NULL)
        return PATIENT_ERR_PARSE;
    return parse_stamp(s, 0, t);
}

patient_err
patient_time_parse_arg(const char *s, time_t now, long long max_age, time_t *t)
{
    size_t n;

    if (s == NULL || t == NULL)
        return PATIENT_ERR_ARG;
    if (s[0] == '@')
        return parse_epoch(s, t);
    /* An age has its unit: bare digits are neither an age nor a date. */
    n = strlen(s);
    if (n >= 2 && s[0] >= '0' && s[0] <= '9' && strchr("smhdw", s[n - 1]) != NULL) {
        long long age;
        patient_err err = patient_duration_parse(s, max_age, &age);
        if (err != PATIENT_OK)
            return err;
        *t = now - (time_t)age;
        return PATIENT_OK;
    }
    return parse_stamp(s, 1, t);
}

patient_err
patient_duration_parse(const char *s, long long max, long long *seconds)
{
    char *end;
    long long v, mul = 1;

    /* strtoll alone would take blanks and a sign: refuse them first. */
    if (s == NULL || seconds == NULL || *s < '0' || *s > '9')
        return PATIENT_ERR_PARSE;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return PATIENT_ERR_TOO_LARGE;
    if (errno || end == s || v < 0)
        return PATIENT_ERR_PARSE;
    switch (*end) {
    case 0: case 's': mul = 1; break;
    case 'm': mul = 60; break;
    case 'h': mul = 3600; break;
    case 'd': mul = 86400; break;
    case 'w': mul = 7 * 86400; break;
    default: return PATIENT_ERR_PARSE;
    }
    if (*end && end[1])
        return PATIENT_ERR_PARSE;
    if (v > max / mul)
        return PATIENT_ERR_TOO_LARGE;
    *seconds = v * mul;
    return PATIENT_OK;
}

patient_err
pt_duration_parse(const char *s, long long *seconds)
{
    return patient_duration_parse(s, 1LL << 40, seconds);
}

/* The public face of the time helpers, for the tools. */
patient_err
patient_time_parse(const char *s, time_t *t)
{
    return pt_time_parse(s, t);
}

void
patient_time_format(time_t t, char out[PATIENT_TIME_BYTES])
{
    pt_time_format(t, out);
}
