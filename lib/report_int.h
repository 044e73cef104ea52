/* Internal: the verification report under construction. */
#ifndef PATIENT_REPORT_INT_H
#define PATIENT_REPORT_INT_H

#include <cjson/cJSON.h>
#include <patient/verify.h>

/* What a failed check does to the verdict. */
enum rep_effect { REP_INFO = 0, REP_WARNING = 1, REP_UNVERIFIABLE = 2, REP_INVALID = 3 };

struct patient_report {
    cJSON *doc;      /* the whole JSON report */
    cJSON *results;  /* doc.results (array) */
    cJSON *changes;  /* doc.changes (array) */
    int worst;       /* highest rep_effect seen */
    patient_verdict verdict;
};

patient_err rep_new(patient_report **r, const char *url, time_t now);
/* Add a result; fmt is the explanation. Returns NOMEM only. */
patient_err rep_result(patient_report *r, enum rep_effect eff, const char *code,
                       const char *where, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Settle the verdict from results and number of hops. */
void rep_finish(patient_report *r, size_t nchanges);
/* JSON-safe short excerpt of bytes (printable ASCII kept, others escaped as
 * \xNN, cut to max characters with "..."). malloc'd. */
char *rep_excerpt(const uint8_t *p, size_t len, size_t max);

#endif
