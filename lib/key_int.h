/* What lib/key.c offers the rest of the library beyond <patient/key.h>.
 * Never installed. */
#ifndef PATIENT_KEY_INT_H
#define PATIENT_KEY_INT_H

#include <stdint.h>
#include <patient/error.h>
#include <patient/key.h>

/* A 32-byte key derived from sk for context (lib/key.c): authenticates
 * files only the key holder writes, such as the publish state. */
void pt_seckey_derive(const patient_seckey *sk, const char *context, uint8_t out[32]);

/* A key id inside a signed document (JWS kid, a descriptor's by.kid): 16
 * hex digits in upper case exactly as minisign prints them, so two
 * spellings of one id never appear in signed bytes. PATIENT_ERR_PARSE.
 * (patient_keyid_parse, for what people type, takes either case.) */
patient_err pt_keyid_parse_signed(const char *hex, uint8_t id[8]);

#endif
