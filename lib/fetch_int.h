/* Internal to libpatient: a GET whose body may go to the caller as it
 * arrives instead of being kept (lib/fetch.c; the verifier's streaming
 * path, lib/verify_net.c). */
#ifndef PATIENT_FETCH_INT_H
#define PATIENT_FETCH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <patient/fetch.h>

typedef struct pt_fetch_sink {
    /* Once, when the final response's headers are in: before its first
     * body byte, or at the end when it has none. head holds the status,
     * the effective URL, the headers and the TLS chain (no body; borrowed
     * for the call). 1: every body byte goes to data and none is kept
     * (the response's body is then empty); 0: the body is kept as by
     * patient_fetch; -1: stop the transfer (PATIENT_ERR_NOMEM). */
    int (*head)(void *ctx, const patient_response *head);
    /* The next n decoded bytes of the body; anything but PATIENT_OK stops
     * the transfer, and the fetch returns it. */
    patient_err (*data)(void *ctx, const uint8_t *p, size_t n);
    void *ctx;
} pt_fetch_sink;

/* patient_fetch, offering the body to sink (NULL: patient_fetch).
 * Limits, decoding and errors as patient_fetch's: a body over max_body
 * stops with PATIENT_ERR_TOO_LARGE also while it goes to the sink, a
 * transfer cut short (Content-Length not reached, the connection lost, a
 * compressed body that does not decode) fails as it would kept, so a
 * caller never takes a partial body for a whole one. */
patient_err pt_fetch_sink_get(const patient_fetch_opts *opts, const char *url,
                              const pt_fetch_sink *sink, patient_response **resp, char **detail);

#endif
