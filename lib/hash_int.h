/* What lib/hash.c offers the rest of the library beyond <patient/hash.h>.
 * Never installed. */
#ifndef PATIENT_HASH_INT_H
#define PATIENT_HASH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <patient/hash.h>

/* dst becomes a copy of src's state (both stay usable): one hash of a
 * common prefix, continued two ways. */
patient_err pt_sha256_copy(patient_sha256_ctx *dst, const patient_sha256_ctx *src);

/* A JSON array of 1..PATIENT_MAX_TLS_PINS distinct SPKI pins in SRI syntax
 * (patient/hash.h) into *out (malloc'd, free()): PATIENT_ERR_PARSE for any
 * other shape (empty, not strings, not sha256, a duplicate), LIMIT for
 * more than the cap. On PARSE or LIMIT the reader's message, "<name>: not
 * an array of 1..8 distinct sha256- pins", goes to *detail
 * (pt_detail_first; detail NULL: none), name being the member or its
 * path. */
patient_err pt_pins_parse(const cJSON *a, const char *name, uint8_t (**out)[32], size_t *n,
                          char **detail);
/* The pins p[0..n) as that array (SRI strings, in order): new, or NULL
 * when out of memory (nothing left over). */
cJSON *pt_pins_json(const uint8_t (*p)[32], size_t n);

/* A certificate chain in JSON, as bundles and the native host carry it: a
 * list of 1..PATIENT_FETCH_MAX_CHAIN SPKI pins ("sha256-<base64>"), leaf
 * first and trust anchor last, the shape patient_fetch fills in from its
 * own connection. A longer list is refused, not cut, so the anchor (last)
 * is never lost. -1 on anything else, with *bad the 1-based element at
 * fault (0: not a list, empty or too long). */
int pt_chain_from_json(const cJSON *ch, uint8_t (*out)[32], size_t *n, size_t *bad);

#endif
