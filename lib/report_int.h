/* Internal: the verification report. The verifier's phases (lib/verify.c,
 * verify_confine.c, verify_net.c) fill the typed result below; rep_finish
 * settles the verdict and renders the stable JSON document from it, once;
 * patient_report_text renders the same typed result for people. Nothing
 * reads the JSON back. */
#ifndef PATIENT_REPORT_INT_H
#define PATIENT_REPORT_INT_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <patient/change.h>
#include <patient/hash.h>
#include <patient/key.h>
#include <patient/time.h>
#include <patient/verify.h>

/* What a failed check does to the verdict. */
enum rep_effect { REP_INFO = 0, REP_WARNING = 1, REP_UNVERIFIABLE = 2, REP_INVALID = 3 };

/* One check's outcome (docs/FORMAT.md, "results"). Strings owned. */
typedef struct rep_check {
    char *code;
    enum rep_effect effect;
    char *where;       /* NULL: not tied to a place */
    char *explanation;
} rep_check;

/* One edit of a hop, as the report shows it. Strings owned. */
typedef struct rep_edit {
    uint64_t offset, deleted, inserted;
    char *reason, *rule, *note;         /* note NULL when absent */
    char *deleted_text, *inserted_text; /* excerpts; NULL: withheld / nothing inserted */
    const char *position_in;            /* NULL: not placed; "input" or "output" (static) */
    long long line, column;             /* 1-based, when position_in is set */
} rep_edit;

/* One hop (docs/FORMAT.md, "changes"). Strings owned. */
typedef struct rep_hop {
    unsigned hop;
    char *name, *kid, *service, *disclosure; /* disclosure NULL when absent */
    char at[PATIENT_TIME_BYTES];
    const char *proof; /* "proven", "attested", "confined" (static) */
    int trusted;
    rep_edit *edits;
    size_t nedits;
    int has_tls;
    char *tls_version, *tls_cipher; /* cipher NULL when plaintext */
    int tls_verified;
} rep_hop;

/* The kept bytes of a confined chain that nobody could check. */
typedef struct rep_range {
    uint64_t offset, length;
} rep_range;

struct patient_report {
    /* The typed result, filled by the phases. */
    char *url;
    char *origin;             /* NULL until the URL splits */
    char checked_at[PATIENT_TIME_BYTES];
    int has_manifest;         /* the manifest's signature verified */
    struct {
        uint64_t version;
        char issued[PATIENT_TIME_BYTES], expires[PATIENT_TIME_BYTES];
        char kid[PATIENT_KEYID_HEX];
    } manifest;
    const char *proof;        /* "none", "proven", "attested", "confined" (static) */
    int has_unchecked;
    struct {
        rep_range *ranges;
        size_t nranges;
        uint64_t bytes;
    } unchecked;
    const char *interception; /* NULL: not judged; else the status (static) */
    struct {
        char *by;             /* NULL when nobody is named */
        int has_ca;
        char ca[PATIENT_SRI_BYTES], anchor[PATIENT_SRI_BYTES];
    } icpt;
    rep_hop hops[PATIENT_MAX_HOPS];
    size_t nhops;
    rep_check *checks;
    size_t nchecks, checks_cap;
    int worst;                /* highest rep_effect seen */
    int nomem;                /* some allocation failed while filling */
    patient_verdict verdict;
    /* The stable JSON report, rendered by rep_finish from the above. */
    cJSON *doc;
    cJSON *results;  /* doc.results (array) */
    cJSON *changes;  /* doc.changes (array) */
};

patient_err rep_new(patient_report **r, const char *url, time_t now);
/* Add a result; fmt is the explanation. Returns NOMEM only. */
patient_err rep_result(patient_report *r, enum rep_effect eff, const char *code,
                       const char *where, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The next hop of the report, described from its descriptor (edits
 * unplaced, proof "proven" when every deletion is disclosed, else
 * "attested"). NULL only for NOMEM (then the report fails in rep_finish). */
rep_hop *rep_hop_add(patient_report *r, const patient_change *c, int trusted);
void rep_set_origin(patient_report *r, const char *origin);
/* Record who decrypted the endpoint's TLS: status "none", "allowed",
 * "denied", "unknown" or "unchecked" (static); by and ca may be NULL;
 * anchor is the chain's trust anchor. */
void rep_set_interception(patient_report *r, const char *status, const char *by,
                          const uint8_t *ca, const uint8_t anchor[32]);
/* Settle the verdict from results and number of hops, then render the JSON
 * document. NOMEM when anything could not be built (the report is then
 * incomplete: free it). */
PATIENT_WUR patient_err rep_finish(patient_report *r, size_t nchanges);
/* JSON-safe short excerpt of bytes (printable ASCII kept, others escaped as
 * \xNN, cut to max characters with "..."). malloc'd. */
char *rep_excerpt(const uint8_t *p, size_t len, size_t max);

#endif
