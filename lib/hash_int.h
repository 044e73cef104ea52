/* What lib/hash.c offers the rest of the library beyond <patient/hash.h>.
 * Never installed. */
#ifndef PATIENT_HASH_INT_H
#define PATIENT_HASH_INT_H

#include <patient/hash.h>

/* dst becomes a copy of src's state (both stay usable): one hash of a
 * common prefix, continued two ways. */
patient_err pt_sha256_copy(patient_sha256_ctx *dst, const patient_sha256_ctx *src);

#endif
