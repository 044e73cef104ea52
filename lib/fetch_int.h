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

/* Several GETs in flight at once from one thread (libcurl's multi
 * interface), each on a handle, and so a connection, of its own: while
 * one response is received the next ones are on their way, so the caller
 * does not wait a round trip for each. Same options, caps, checks and
 * errors as pt_fetcher_get, transfer by transfer.
 * pt_fetchq_new: n handles (1..PT_FETCHQ_MAX). window > 0: each of the
 * queue's connections gets a socket receive buffer of window bytes
 * (SO_RCVBUF, set before it connects), when the kernel grants that much
 * (net.core.rmem_max on Linux; otherwise, and with 0, the kernel's
 * autotuning). For a caller that stops driving the queue while its
 * responses are on their way: a buffer that holds each whole keeps a
 * BBR sender out of its pacing (docs/BENCHMARKS.md). Other fetches keep
 * autotuning.
 * pt_fetchq_start: a GET of url into body (len reset to 0; max_body 0
 * keeps the options' cap) on a free handle, *id; body is BORROWED until
 * that transfer's wait or cancel returns. PATIENT_ERR_ARG when all n are
 * in flight.
 * pt_fetchq_wait: runs every transfer in flight until transfer id ends,
 * and returns what pt_fetcher_get would have; the handle is free again.
 * pt_fetchq_cancel: abandons transfer id (its body is left partial).
 * Not for two threads at once. */
#define PT_FETCHQ_MAX 8
typedef struct pt_fetchq pt_fetchq;
patient_err pt_fetchq_new(const patient_fetch_opts *opts, unsigned n, size_t window,
                          pt_fetchq **out);
patient_err pt_fetchq_start(pt_fetchq *q, const char *url, size_t max_body, pt_buf *body,
                            unsigned *id, char **detail);
patient_err pt_fetchq_wait(pt_fetchq *q, unsigned id, long *status, char **detail);
void pt_fetchq_cancel(pt_fetchq *q, unsigned id);
void pt_fetchq_free(pt_fetchq *q);

#endif
