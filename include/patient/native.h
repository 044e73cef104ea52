/* Native messaging: how the browser extension talks to the native host
 * (patient-verify --native-host). One framed message is a 4-byte native-order
 * length + UTF-8 JSON; a request asks to verify a URL (optionally with the
 * bytes and headers the browser received) or for an evidence bundle, and
 * the answer carries the report (docs/FORMAT.md, "Native messaging").
 * Implemented in lib/native.c. */
#ifndef PATIENT_NATIVE_H
#define PATIENT_NATIVE_H

#include <stddef.h>
#include <patient/error.h>
#include <patient/policy.h>
#include <patient/verify.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Read one message from fd into a malloc'd NUL-terminated buffer;
 * PATIENT_ERR_NOT_FOUND on clean EOF,
 * PATIENT_ERR_PARSE when the input ends inside a frame, TOO_LARGE over max
 * bytes: the message is then read and discarded in small pieces (never
 * held), so the stream stays in sync and *len says how long it was. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_native_read(int fd, size_t max, char **msg,
                                                           size_t *len);
PATIENT_EXPORT PATIENT_WUR patient_err patient_native_write(int fd, const char *msg, size_t len);
/* The largest request patient_native_handle accepts when bodies may have
 * up to max_body bytes (0: PATIENT_FETCH_MAX_BODY_DEFAULT): the body's
 * base64 plus PATIENT_NATIVE_ENVELOPE for the URL, headers and the rest. */
#define PATIENT_NATIVE_ENVELOPE (1024u * 1024)
PATIENT_EXPORT size_t patient_native_request_max(size_t max_body);
/* Handle one request message (see docs/FORMAT.md, "Native messaging") and
 * produce the response message. Never fails for a bad request: the answer
 * then carries an "error" object. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_native_handle(const patient_policy *policy,
                                                             const patient_verify_fetch_opts *f,
                                                             const patient_verify_opts *o,
                                                             const char *msg, size_t len,
                                                             char **answer);
/* The answer to a request the host cannot serve at all (it has no usable
 * trust policy, say), whatever the request asked:
 * {"id":<the request's id>,"error":{"code":code,"message":message}}, with
 * the id only when msg is JSON with an "id" member. code and message must
 * not be NULL (PATIENT_ERR_ARG). On PATIENT_OK *answer is a malloc'd
 * NUL-terminated message the caller frees; otherwise it is NULL. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_native_error_answer(const char *msg, size_t len,
                                                                   const char *code,
                                                                   const char *message,
                                                                   char **answer);

/* The answers to a frame patient_native_read refused, which the host sends
 * and then goes on (too large: the frame was skipped, the stream is in
 * sync) or stops (truncated: nothing follows a cut frame). Neither has an
 * "id": the request was not read.
 * too_large: {"error":{"code":"request.too_large","message":…}}, the
 * message naming the frame's len, the body cap max_body (0:
 * PATIENT_FETCH_MAX_BODY_DEFAULT) and the request cap derived from it
 * (patient_native_request_max(max_body), the max to give patient_native_read).
 * truncated: {"error":{"code":"request.truncated","message":…}}.
 * On PATIENT_OK *answer is a malloc'd NUL-terminated message the caller
 * frees; otherwise it is NULL. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_native_too_large_answer(size_t len, size_t max_body,
                                                                       char **answer);
PATIENT_EXPORT PATIENT_WUR patient_err patient_native_truncated_answer(char **answer);

#ifdef __cplusplus
}
#endif
#endif
