/* JWS helpers the descriptor code shares with lib/jws.c. Never installed. */
#ifndef PATIENT_JWS_INT_H
#define PATIENT_JWS_INT_H

#include <stddef.h>
#include <patient/error.h>
#include <patient/key.h>

/* patient_jws_sign without its PATIENT_JWS_PAYLOAD_MAX cap: for a caller
 * that signs first and then judges what the compact form takes, refusing
 * with its own errors (a hop, change.c). ARG as that call. */
patient_err pt_jws_sign_uncapped(const patient_seckey *sk, const char *typ, const void *payload,
                                 size_t len, char **out);

#endif
