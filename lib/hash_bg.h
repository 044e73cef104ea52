/* SHA-256 of two streams on a thread of their own (lib/hash_bg.c).
 * Internal to libpatient (not installed).
 *
 * A middlebox relaying a large body hashes its input and its output, two
 * passes its relaying thread would otherwise make between reads and
 * writes. Queued here, the bytes are hashed on another core while that
 * thread goes on relaying; the caller waits only for the last piece. */
#ifndef PATIENT_HASH_BG_H
#define PATIENT_HASH_BG_H

#include <stddef.h>
#include <patient/error.h>
#include <patient/hash.h>

typedef struct pt_hash_bg pt_hash_bg;

/* A queue over the contexts ctx0 and ctx1 (borrowed: they must outlive
 * the queue and are updated only by it until pt_hash_bg_wait returns),
 * fed from the calling thread only: its spans are hashed by that
 * thread's hashing thread, made once enough bytes are queued to be worth
 * it and kept until the calling thread exits. If it cannot be made, the
 * caller hashes. Do not fork() while a queue is open. */
patient_err pt_hash_bg_new(patient_sha256_ctx *ctx0, patient_sha256_ctx *ctx1, pt_hash_bg **q);

/* Queue n bytes at p for ctx[stream] (0 or 1), after what was queued for
 * it. BORROWED, not copied: the bytes must stay where they are, unchanged,
 * until pt_hash_bg_wait (or _free) returns. */
patient_err pt_hash_bg_add(pt_hash_bg *q, int stream, const void *p, size_t n);

/* ctx[1] becomes a copy of ctx[0] once everything queued before is
 * hashed (a common prefix hashed once, then two streams). */
patient_err pt_hash_bg_fork(pt_hash_bg *q);

/* Returns once everything queued is hashed: the contexts are final for
 * what was queued and the caller may move or change those bytes. The
 * first failure of an update, sticky. */
patient_err pt_hash_bg_wait(pt_hash_bg *q);

/* Waits (as _wait) and frees; accepts NULL. The thread is not stopped:
 * it stays for the calling thread's next queue, until that thread exits. */
void pt_hash_bg_free(pt_hash_bg *q);

#endif
