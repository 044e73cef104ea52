/* Internal to the change-descriptor module (lib/change.c, lib/edit.c). */
#ifndef PATIENT_CHANGE_INT_H
#define PATIENT_CHANGE_INT_H

#include <patient/change.h>

/* Check edits against an input of in_len bytes: each in range
 * (EDIT_RANGE), sorted, non-overlapping, distinct offsets (EDIT_ORDER), each
 * changing something (noop_err). On success *out_len (if not NULL) gets the
 * output size (TOO_LARGE above PATIENT_MAX_BODY). */
patient_err pt_edits_check(const patient_edit *e, size_t n, size_t in_len, patient_err noop_err,
                           size_t *out_len);

/* Build the output of edits (already checked) into a malloc'd buffer of
 * out_len bytes, hashing input and output on the way when hin/hout are not
 * NULL (one pass over the data, cache-friendly). */
patient_err pt_edits_build(const uint8_t *in, size_t len, const patient_edit *e, size_t n,
                           size_t out_len, uint8_t **out, uint8_t hin[PATIENT_SHA256_BYTES],
                           uint8_t hout[PATIENT_SHA256_BYTES]);

#endif
