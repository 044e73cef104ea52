/* SHA-256 of two streams on a thread of their own: see hash_bg.h.
 *
 * Each feeding thread gets one hashing thread, made on its first large
 * body and kept for as long as the feeding thread lives (a c-icap worker
 * thread serves request after request: no thread made per response, and
 * its CPU stays visible in /proc/PID/task). Every queue of that feeder
 * hands its spans to that thread in order; the thread takes everything
 * queued at once. It is woken only once HASH_BG_BATCH bytes are waiting
 * (a wake per 4 KiB read would cost about as much as hashing it), and a
 * queue under the batch is hashed at its wait, by the feeder. Spans
 * queued back to back for the same context are merged. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include "hash_bg.h"
#include "hash_int.h"
#include "util.h"

#define HASH_BG_BATCH (64u * 1024)
/* SHA-256 needs little stack, and a middlebox has a hashing thread per
 * c-icap thread. */
#define HASH_BG_STACK (256u * 1024)

struct op {
    patient_sha256_ctx *ctx;        /* updated with p[0..n), or (fork) overwritten */
    const patient_sha256_ctx *from; /* fork: ctx becomes a copy of it */
    const uint8_t *p;
    size_t n;
    pt_hash_bg *bg; /* whose error a failure is */
};

/* One per feeding thread: its hashing thread and the spans queued for it. */
struct worker {
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    struct op *q, *run; /* queued (under mu); the batch being hashed (thread's) */
    size_t nq, capq, caprun;
    unsigned long gen;  /* times q was emptied: older indices into it are stale */
    size_t unsignalled; /* bytes queued since the thread was last woken */
    pthread_t th;
    int started, failed, waiting, busy, stop;
};

struct pt_hash_bg {
    patient_sha256_ctx *ctx[2];
    struct worker *w;
    size_t last[2];          /* index in w->q of each context's last span ... */
    unsigned long last_gen[2]; /* ... valid while w->gen is this, plus one */
    patient_err err;         /* first failure (under w->mu) */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static int key_ok;
static _Thread_local struct worker *tl_worker;

static void
worker_destroy(struct worker *w)
{
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->work);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
    }
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->mu);
    free(w->q);
    free(w->run);
    free(w);
}

/* The feeding thread exits: so does its hashing thread (its queues are
 * gone: each was waited for when freed). */
static void
at_thread_exit(void *arg)
{
    tl_worker = NULL;
    worker_destroy(arg);
}

/* A forked child has only the forking thread, not its hashing thread:
 * it starts without one (queues of the parent's must not be used in it). */
static void
at_fork_child(void)
{
    tl_worker = NULL;
    if (key_ok)
        (void)pthread_setspecific(key, NULL);
}

static void
init_once(void)
{
    key_ok = pthread_key_create(&key, at_thread_exit) == 0;
    (void)pthread_atfork(NULL, NULL, at_fork_child);
}

static struct worker *
this_worker(void)
{
    struct worker *w = tl_worker;

    if (w)
        return w;
    pthread_once(&once, init_once);
    if ((w = calloc(1, sizeof *w)) == NULL)
        return NULL;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return NULL;
    }
    if (pthread_cond_init(&w->work, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    if (pthread_cond_init(&w->idle, NULL) != 0) {
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    /* Without the key nothing would stop the thread when this one
     * exits: then no thread is started, the feeder hashes. */
    if (!key_ok || pthread_setspecific(key, w) != 0)
        w->failed = 1;
    tl_worker = w;
    return w;
}

static patient_err
run_op(const struct op *o)
{
    return o->from ? pt_sha256_copy(o->ctx, o->from) : patient_sha256_update(o->ctx, o->p, o->n);
}

/* Hash ops (not under mu); a failure is its queue's error (under mu
 * when locked is 0). */
static void
run_ops(struct worker *w, const struct op *ops, size_t n, int locked)
{
    for (size_t i = 0; i < n; i++) {
        patient_err err = run_op(&ops[i]);
        if (err == PATIENT_OK)
            continue;
        if (!locked)
            pthread_mutex_lock(&w->mu);
        if (ops[i].bg->err == PATIENT_OK)
            ops[i].bg->err = err;
        if (!locked)
            pthread_mutex_unlock(&w->mu);
    }
}

static void *
thread_main(void *arg)
{
    struct worker *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct op *t;
        size_t n, cap;
        while (w->nq == 0 && !w->stop) {
            w->waiting = 1;
            pthread_cond_wait(&w->work, &w->mu);
            w->waiting = 0;
        }
        if (w->nq == 0)
            break; /* stopped, and nothing left */
        /* take the whole queue; the feeder queues into the other array */
        t = w->run, w->run = w->q, w->q = t;
        cap = w->caprun, w->caprun = w->capq, w->capq = cap;
        n = w->nq;
        w->nq = 0;
        w->gen++;
        w->unsignalled = 0;
        w->busy = 1;
        pthread_mutex_unlock(&w->mu);
        run_ops(w, w->run, n, 0);
        pthread_mutex_lock(&w->mu);
        w->busy = 0;
        if (w->nq == 0)
            pthread_cond_broadcast(&w->idle);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Start the hashing thread (under mu). Its signals stay with the other
 * threads: it only hashes. Not started: the feeder hashes from now on. */
static void
start(struct worker *w)
{
    pthread_attr_t at;
    sigset_t all, old;
    int rc;

    if (pthread_attr_init(&at) != 0) {
        w->failed = 1;
        return;
    }
    (void)pthread_attr_setstacksize(&at, HASH_BG_STACK);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&w->th, &at, thread_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&at);
    if (rc == 0)
        w->started = 1;
    else
        w->failed = 1;
}

/* Everything queued, hashed by the feeder (under mu; no thread). */
static void
drain_here(struct worker *w)
{
    run_ops(w, w->q, w->nq, 1);
    w->nq = 0;
    w->gen++;
    w->unsignalled = 0;
}

patient_err
pt_hash_bg_new(patient_sha256_ctx *ctx0, patient_sha256_ctx *ctx1, pt_hash_bg **out)
{
    pt_hash_bg *q;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if (ctx0 == NULL || ctx1 == NULL)
        return PATIENT_ERR_ARG;
    if ((q = calloc(1, sizeof *q)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((q->w = this_worker()) == NULL) {
        free(q);
        return PATIENT_ERR_NOMEM;
    }
    q->ctx[0] = ctx0;
    q->ctx[1] = ctx1;
    *out = q;
    return PATIENT_OK;
}

/* Append o to w's queue, merged into this queue's last span for the same
 * context when it continues it (under mu). */
static patient_err
push(pt_hash_bg *q, int stream, const struct op *o)
{
    struct worker *w = q->w;

    if (o->from == NULL && q->last_gen[stream] == w->gen + 1) {
        struct op *l = &w->q[q->last[stream]];
        if (l->p + l->n == o->p) {
            l->n += o->n;
            return PATIENT_OK;
        }
    }
    if (w->nq == w->capq) {
        size_t cap = w->capq ? w->capq * 2 : 16;
        struct op *nb = realloc(w->q, cap * sizeof *nb);
        if (nb == NULL)
            return PATIENT_ERR_NOMEM;
        w->q = nb;
        w->capq = cap;
    }
    w->q[w->nq] = *o;
    if (o->from) {
        /* nothing after a fork may be merged into a span before it */
        q->last_gen[0] = q->last_gen[1] = 0;
    } else {
        q->last[stream] = w->nq;
        q->last_gen[stream] = w->gen + 1;
    }
    w->nq++;
    return PATIENT_OK;
}

static patient_err
queue(pt_hash_bg *q, int stream, const struct op *o)
{
    struct worker *w = q->w;
    patient_err err;

    pthread_mutex_lock(&w->mu);
    if ((err = q->err) != PATIENT_OK)
        goto out;
    if (w->failed) {
        /* no thread: hashed here, now (the queue is empty) */
        if ((err = run_op(o)) != PATIENT_OK)
            q->err = err;
        goto out;
    }
    if ((err = push(q, stream, o)) != PATIENT_OK) {
        q->err = err;
        goto out;
    }
    w->unsignalled += o->n;
    if (w->unsignalled < HASH_BG_BATCH)
        goto out;
    if (!w->started)
        start(w);
    if (w->failed)
        drain_here(w); /* the thread could not start */
    else if (w->waiting)
        pthread_cond_signal(&w->work);
    w->unsignalled = 0;
    err = q->err;
out:
    pthread_mutex_unlock(&w->mu);
    return err;
}

patient_err
pt_hash_bg_add(pt_hash_bg *q, int stream, const void *p, size_t n)
{
    if (q == NULL || (stream != 0 && stream != 1) || (p == NULL && n > 0))
        return PATIENT_ERR_ARG;
    if (n == 0)
        return PATIENT_OK;
    return queue(q, stream, &(struct op){.ctx = q->ctx[stream], .p = p, .n = n, .bg = q});
}

patient_err
pt_hash_bg_fork(pt_hash_bg *q)
{
    if (q == NULL)
        return PATIENT_ERR_ARG;
    return queue(q, 1, &(struct op){.ctx = q->ctx[1], .from = q->ctx[0], .bg = q});
}

patient_err
pt_hash_bg_wait(pt_hash_bg *q)
{
    struct worker *w;
    patient_err err;

    if (q == NULL)
        return PATIENT_ERR_ARG;
    w = q->w;
    pthread_mutex_lock(&w->mu);
    if (!w->started) {
        drain_here(w); /* under a batch so far, or no thread: hashed here */
    } else {
        if (w->nq > 0 && w->waiting)
            pthread_cond_signal(&w->work);
        while (w->nq > 0 || w->busy)
            pthread_cond_wait(&w->idle, &w->mu);
    }
    err = q->err;
    pthread_mutex_unlock(&w->mu);
    return err;
}

void
pt_hash_bg_free(pt_hash_bg *q)
{
    if (q == NULL)
        return;
    (void)pt_hash_bg_wait(q); /* the thread is done with its spans */
    free(q);
}
