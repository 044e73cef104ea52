/* Internal to libpatient (lib/fetch.c): a GET whose body may go to the
 * caller as it arrives instead of being kept (the verifier's streaming
 * path, lib/verify_net.c), and many GETs through one connection (the log
 * monitor, lib/tlog_client.c). */
#ifndef PATIENT_FETCH_INT_H
#define PATIENT_FETCH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <patient/fetch.h>
#include "util.h"

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

/* Many GETs through one libcurl handle: its connection and buffers are
 * kept, and the body goes into the caller's buffer, reused (len reset to
 * 0, capacity kept). Same options, checks and errors as patient_fetch;
 * max_body 0 keeps the options' cap. *status is the HTTP status of a
 * completed transfer. Not for two threads at once. */
typedef struct pt_fetcher pt_fetcher;
patient_err pt_fetcher_new(const patient_fetch_opts *opts, pt_fetcher **out);
patient_err pt_fetcher_get(pt_fetcher *f, const char *url, size_t max_body, pt_buf *body,
                           long *status, char **detail);
void pt_fetcher_free(pt_fetcher *f);

#endif
