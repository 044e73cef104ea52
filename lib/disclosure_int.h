/* Private to the disclosure reader (disclosure.c) and inspection: the
 * document's members and the parse that says what it refuses.
 * Format: docs/format/disclosure.md. Never installed. */
#ifndef PT_DISCLOSURE_INT_H
#define PT_DISCLOSURE_INT_H

#include <stddef.h>
#include <patient/disclosure.h>

/* Every member a disclosure may have, in the documented order, NULL
 * last; any other member is refused. */
extern const char *const pt_disclosure_members[];

/* patient_disclosure_parse, and on failure *detail (detail may be NULL;
 * malloc'd, the caller frees) names the first member the reader refused
 * and why ("retention_days: not an integer 0..36500"), so that inspection
 * can say what is wrong with a document it shows. */
patient_err pt_disclosure_parse_detail(const char *json, size_t len, patient_disclosure **out,
                                       char **detail);

#endif
