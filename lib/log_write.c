/* The audit log, write side: open (catch up, repair a torn tail), append
 * changes and events under the lock, signed Merkle checkpoints.
 * Format contract: docs/format/log.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "log_int.h"
#include "time_int.h"
#include "tlog_int.h"

/* ---- Writer ------------------------------------------------------------ */

struct patient_log {
    pthread_mutex_t mu;
    int fd;
    int ro;
    int sync;
    const patient_seckey *sk;
    unsigned every;
    uint64_t next_seq;
    uint8_t last_hash[HASH_LEN];
    pt_merkle_frontier fr;
    uint64_t off;        /* end of the last committed line we know */
    uint64_t since_ckpt; /* entries after the last checkpoint */
    int last_is_ckpt;
    char log_id[HEX_LEN + 1];
    uint64_t repaired;
    uint8_t *scratch;
    size_t scratch_cap;
    /* Group commit (PATIENT_LOG_SYNC_EACH): the file is durable up to
     * durable_off; one thread at a time (syncing) runs fdatasync for
     * everyone whose line is written by then (written: the end of the
     * lines write(2) has returned for), the others wait on cv. These have
     * their own mutex, smu, held only to read or set them: the threads a
     * finished sync wakes all take it at once, and they must not queue
     * behind an append holding mu (and the file lock) through its write.
     * durable_off and written are also read without it (atomics: set
     * after what they promise is done). sync_failed is sticky: after a
     * failed fdatasync nothing written since can be trusted to be on
     * disk, so every append fails. */
    pthread_mutex_t smu;
    pthread_cond_t cv;
    atomic_int syncing;
    atomic_int waiters;          /* threads in wait_durable past its fast path */
    atomic_int sync_failed;
    _Atomic uint64_t durable_off;
    _Atomic uint64_t written;
    uint64_t reserved;           /* file space allocated up to here (reserve_ahead), under mu */
    uint64_t n_appends;          /* under mu */
    uint64_t n_syncs;            /* under smu */
    /* The syncer (patient_log_sync_ahead): a thread of this handle that
     * leads a sync as soon as it is kicked, so a lone change's fdatasync
     * runs while its caller sends what may leave before it. Started on
     * the first kick, in the process that kicks (syncer_pid). A handle
     * carried over fork(2) must not be used in the child; open a new
     * handle (docs/format/log.md): a fork during the syncer's fdatasync,
     * or while it holds smu, leaves the child's copy with syncing set or
     * smu locked for ever. syncer_stop only joins the thread in the
     * process that started it. state, kick_to and stop under smu. */
    pthread_t syncer;
    pthread_cond_t kick;
    int syncer_state;            /* 0 not started, 1 running, -1 could not start */
    pid_t syncer_pid;
    uint64_t kick_to;            /* sync up to here; 0: nothing asked */
    int syncer_stop;
    pt_pub *pub;         /* publishing the tree (patient_log_set_publish) */
    patient_err pub_err; /* its last failure, for patient_log_publish_error */
};

/* Account one committed line in the writer state. */
static patient_err
state_add(patient_log *log, const uint8_t *line, size_t len, patient_log_kind kind)
{
    uint8_t leaf[HASH_LEN];
    patient_err err, perr;

    if ((err = patient_sha256(line, len, log->last_hash)) ||
        (err = scratch_leaf(&log->scratch, &log->scratch_cap, line, len, leaf)) ||
        (err = pt_merkle_frontier_add(&log->fr, leaf)))
        return err;
    /* Publishing never fails a committed append: the error is kept. */
    if (log->pub && (perr = pt_pub_add(log->pub, leaf, log->off, len)) != PATIENT_OK)
        log->pub_err = perr;
    if (log->next_seq == 0)
        pt_hex(log->last_hash, HASH_LEN, log->log_id);
    log->next_seq++;
    log->off += len + 1;
    atomic_store_explicit(&log->written, log->off, memory_order_release);
    if (kind == PATIENT_LOG_KIND_CHECKPOINT) {
        log->since_ckpt = 0;
        log->last_is_ckpt = 1;
    } else {
        log->since_ckpt++;
        log->last_is_ckpt = 0;
    }
    return PATIENT_OK;
}

/* Read the lines after log->off (written by us before, or by other
 * processes) into the state. With repair (caller holds the flock and the
 * handle is writable) a torn tail is cut off; without, reading stops there. */
static patient_err
sync_tail(patient_log *log, int repair)
{
    lreader r;
    uint8_t *line, *l2;
    size_t len, len2;
    int nl, nl2;
    uint64_t off, off2;
    char prev[HEX_LEN + 1];
    pentry e;
    patient_err err;

    memset(&e, 0, sizeof e);
    if ((err = lr_init(&r, log->fd, log->off)))
        return err;
    for (;;) {
        if ((err = lr_next(&r, &line, &len, &nl, &off)))
            goto out;
        if (line == NULL)
            break;
        if (!nl) {
            err = PATIENT_OK;
            goto torn;
        }
        if ((err = pentry_parse(line, len, &e)) != PATIENT_OK) {
            /* Only the very last line may be a torn (never acknowledged)
             * append; anything else is damage for verify to explain. */
            if (err == PATIENT_ERR_JSON) {
                if ((err = lr_next(&r, &l2, &len2, &nl2, &off2)))
                    goto out;
                if (l2 == NULL)
                    goto torn;
            }
            err = err == PATIENT_ERR_UNSUPPORTED ? err : PATIENT_ERR_LOG_CORRUPT;
            goto out;
        }
        if (log->next_seq == 0)
            memcpy(prev, zero_prev, sizeof prev);
        else
            pt_hex(log->last_hash, HASH_LEN, prev);
        if (e.seq != log->next_seq || strcmp(e.prev, prev) != 0) {
            err = PATIENT_ERR_CHAIN;
            goto out;
        }
        if ((err = state_add(log, line, len, e.kind)))
            goto out;
    }
    err = PATIENT_OK;
    goto out;
torn:
    if (repair) {
        if (ftruncate(log->fd, (off_t)off) != 0 || fdatasync(log->fd) != 0) {
            err = PATIENT_ERR_IO;
            goto out;
        }
        log->repaired += r.buf_off + r.end - off;
        log->reserved = 0; /* a truncate frees the blocks past the end too */
    }
out:
    pentry_free(&e);
    lr_free(&r);
    return err;
}

static patient_err
lock_log(patient_log *log)
{
    struct stat st;
    patient_err err;

    pthread_mutex_lock(&log->mu);
    if (!log->ro) {
        while (flock(log->fd, LOCK_EX) != 0) {
            if (errno != EINTR) {
                pthread_mutex_unlock(&log->mu);
                return PATIENT_ERR_IO;
            }
        }
    }
    /* A file shorter than what this handle already saw lost committed
     * entries: never append after that (it would fork the chain). */
    if (atomic_load(&log->sync_failed))
        err = PATIENT_ERR_IO;
    else if (fstat(log->fd, &st) != 0)
        err = PATIENT_ERR_IO;
    else if ((uint64_t)st.st_size < log->off)
        err = PATIENT_ERR_LOG_CORRUPT;
    else if ((uint64_t)st.st_size > log->off) /* others appended, or a torn tail */
        err = sync_tail(log, !log->ro);
    else
        err = PATIENT_OK;
    if (err != PATIENT_OK) {
        if (!log->ro)
            flock(log->fd, LOCK_UN);
        pthread_mutex_unlock(&log->mu);
    }
    return err;
}

static void
unlock_log(patient_log *log)
{
    if (!log->ro)
        flock(log->fd, LOCK_UN);
    pthread_mutex_unlock(&log->mu);
}

/* Group commit: return once everything up to target (the end of the
 * caller's line) is on disk. The first thread to find no fdatasync
 * running becomes the leader: it notes how far the file is written,
 * syncs holding no mutex (so others keep appending and queueing),
 * publishes the new durable offset and wakes the waiters; a line written
 * while a sync runs is covered by the next one, led by one of its
 * waiters. No timer: a lone request syncs at once, as before. fdatasync
 * covers what other processes wrote too; each process leads its own
 * syncs. */
static patient_err
wait_durable(patient_log *log, uint64_t target)
{
    patient_err err = PATIENT_OK;
    uint64_t upto;
    int rc;

    /* Covered by a sync that already ended: no lock taken. */
    if (atomic_load_explicit(&log->durable_off, memory_order_acquire) >= target)
        return PATIENT_OK;
    atomic_fetch_add_explicit(&log->waiters, 1, memory_order_relaxed);
    pthread_mutex_lock(&log->smu);
    while (atomic_load_explicit(&log->durable_off, memory_order_relaxed) < target &&
           !atomic_load(&log->sync_failed)) {
        if (atomic_load_explicit(&log->syncing, memory_order_relaxed)) {
            pthread_cond_wait(&log->cv, &log->smu);
            continue;
        }
        atomic_store_explicit(&log->syncing, 1, memory_order_relaxed);
        pthread_mutex_unlock(&log->smu);
        /* Read before the sync starts: every byte up to here was written
         * by then, so this fdatasync covers it. */
        upto = atomic_load_explicit(&log->written, memory_order_acquire);
        rc = fdatasync(log->fd);
        pthread_mutex_lock(&log->smu);
        log->n_syncs++;
        atomic_store_explicit(&log->syncing, 0, memory_order_relaxed);
        if (rc != 0)
            atomic_store(&log->sync_failed, 1);
        else if (upto > atomic_load_explicit(&log->durable_off, memory_order_relaxed))
            atomic_store_explicit(&log->durable_off, upto, memory_order_release);
        /* Wake them with smu released: each takes it only to look. */
        pthread_mutex_unlock(&log->smu);
        pthread_cond_broadcast(&log->cv);
        pthread_mutex_lock(&log->smu);
    }
    if (atomic_load_explicit(&log->durable_off, memory_order_relaxed) < target)
        err = PATIENT_ERR_IO;
    pthread_mutex_unlock(&log->smu);
    atomic_fetch_sub_explicit(&log->waiters, 1, memory_order_relaxed);
    return err;
}

static void *
syncer_main(void *arg)
{
    patient_log *log = arg;
    uint64_t to;

    pthread_mutex_lock(&log->smu);
    for (;;) {
        while (!log->syncer_stop && log->kick_to == 0)
            pthread_cond_wait(&log->kick, &log->smu);
        if (log->syncer_stop)
            break;
        to = log->kick_to;
        log->kick_to = 0;
        pthread_mutex_unlock(&log->smu);
        /* Leads the sync, or joins one a waiter started first. A failure
         * is sticky (sync_failed): the waiters see it themselves. */
        (void)wait_durable(log, to);
        pthread_mutex_lock(&log->smu);
    }
    pthread_mutex_unlock(&log->smu);
    return NULL;
}

/* Start the syncer (caller holds smu). Signals blocked in it: the
 * process's handlers run on its own threads. On failure the handle
 * does without: the waiters lead their syncs as before. */
static void
syncer_start(patient_log *log)
{
    sigset_t all, old;

    log->syncer_state = -1;
    if (pthread_cond_init(&log->kick, NULL) != 0)
        return;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&log->syncer, NULL, syncer_main, log) == 0) {
        log->syncer_state = 1;
        log->syncer_pid = getpid();
    } else {
        pthread_cond_destroy(&log->kick);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Stop and join the syncer, if this process started it. */
static void
syncer_stop(patient_log *log)
{
    if (log->syncer_state != 1 || log->syncer_pid != getpid())
        return;
    pthread_mutex_lock(&log->smu);
    log->syncer_stop = 1;
    pthread_cond_signal(&log->kick);
    pthread_mutex_unlock(&log->smu);
    pthread_join(log->syncer, NULL);
    pthread_cond_destroy(&log->kick);
    log->syncer_state = 0;
}

/* After write_entry under the lock: unlock, then (SYNC_EACH) wait until
 * the line is durable. Only then may the caller acknowledge it. With
 * defer, the caller waits later (patient_log_wait_durable): *defer gets
 * where the file must be durable up to, 0 when there is nothing to wait
 * for (another sync mode, or an error). */
static patient_err
unlock_commit_defer(patient_log *log, patient_err err, uint64_t *defer)
{
    uint64_t end = log->off;
    int each = log->sync == PATIENT_LOG_SYNC_EACH;

    unlock_log(log);
    if (defer)
        *defer = err == PATIENT_OK && each ? end : 0;
    else if (err == PATIENT_OK && each)
        err = wait_durable(log, end);
    return err;
}

static patient_err
unlock_commit(patient_log *log, patient_err err)
{
    return unlock_commit_defer(log, err, NULL);
}

static patient_err write_checkpoint(patient_log *log, uint64_t *seq);

/* How far ahead of the end the log's disk space is allocated. An
 * fdatasync after an append must write, besides the line and the
 * inode's size, whatever the filesystem changed to find the line a
 * block: allocated ahead (fallocate, FALLOC_FL_KEEP_SIZE: the file's
 * size and bytes stay exactly as they were, only its blocks exist
 * already), that part is done once per LOG_RESERVE, outside the
 * syncs the responses wait for. Measured here (ext4, 3 KB appends each
 * followed by fdatasync, interleaved with a plain file on the shared
 * disk): median sync 1.96-2.34 ms against 3.07 ms, 7-12 % less CPU per
 * sync. A filesystem without fallocate keeps working as before. */
#define LOG_RESERVE ((uint64_t)8 << 20)

/* Before writing n bytes at the end (caller holds the lock). A failure
 * is not an error: the append works without it; the next try is after
 * another LOG_RESERVE. */
static void
reserve_ahead(patient_log *log, size_t n)
{
#ifdef FALLOC_FL_KEEP_SIZE
    if (log->off + n <= log->reserved)
        return;
    log->reserved = log->off + n + LOG_RESERVE;
    (void)fallocate(log->fd, FALLOC_FL_KEEP_SIZE, (off_t)log->off,
                    (off_t)(log->reserved - log->off));
#else
    (void)log;
    (void)n;
#endif
}

/* Write one entry: rest is the JSON text after "kind" (",\"time\":...").
 * Caller holds the lock. */
static patient_err
write_entry(patient_log *log, const char *kind, const pt_buf *rest, uint64_t *seq)
{
    pt_buf b = {0};
    char prev[HEX_LEN + 1];
    patient_log_kind k;
    size_t done = 0;
    patient_err err;

    if (log->next_seq == 0)
        memcpy(prev, zero_prev, sizeof prev);
    else
        pt_hex(log->last_hash, HASH_LEN, prev);
    /* Fixed text appended as it is, numbers by pt_buf_put_u64: not
     * through a format (every line goes through here). */
    if ((err = pt_buf_reserve(&b, rest->len + sizeof prev + 64)) ||
        (err = pt_buf_append(&b, "{\"seq\":", 7)) || (err = pt_buf_put_u64(&b, log->next_seq)) ||
        (err = pt_buf_append(&b, ",\"prev\":\"", 9)) ||
        (err = pt_buf_append(&b, prev, HEX_LEN)) ||
        (err = pt_buf_append(&b, "\",\"kind\":\"", 10)) ||
        (err = pt_buf_append(&b, kind, strlen(kind))) || (err = pt_buf_append(&b, "\"", 1)) ||
        (err = pt_buf_append(&b, rest->data, rest->len)) || (err = pt_buf_append(&b, "}\n", 2)))
        goto out;
    if (b.len - 1 > PATIENT_LOG_LINE_MAX) {
        err = PATIENT_ERR_TOO_LARGE;
        goto out;
    }
    if (log->sync != PATIENT_LOG_SYNC_NONE)
        reserve_ahead(log, b.len);
    /* One write(2) of the whole line: with O_APPEND and the flock held no
     * other writer can interleave. A short write (disk full) is undone. */
    while (done < b.len) {
        ssize_t n = write(log->fd, b.data + done, b.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (done > 0 && ftruncate(log->fd, (off_t)log->off) != 0)
                err = PATIENT_ERR_LOG_CORRUPT;
            else
                err = PATIENT_ERR_IO;
            if (done > 0)
                log->reserved = 0; /* a truncate frees the blocks past the end too */
            goto out;
        }
        if (done == 0 && (size_t)n < b.len) {
            /* Never leave half a line: undo and fail. */
            if (ftruncate(log->fd, (off_t)log->off) != 0)
                err = PATIENT_ERR_LOG_CORRUPT;
            else
                err = PATIENT_ERR_IO;
            log->reserved = 0; /* a truncate frees the blocks past the end too */
            goto out;
        }
        done += (size_t)n;
    }
    k = strcmp(kind, "checkpoint") == 0 ? PATIENT_LOG_KIND_CHECKPOINT
        : strcmp(kind, "event") == 0    ? PATIENT_LOG_KIND_EVENT
                                        : PATIENT_LOG_KIND_CHANGE;
    /* SYNC_EACH: the caller waits for the group commit after unlocking
     * (wait_durable); the line is not acknowledged before that. */
    if (log->sync == PATIENT_LOG_SYNC_CHECKPOINT && k == PATIENT_LOG_KIND_CHECKPOINT) {
        if (fdatasync(log->fd) != 0) {
            err = PATIENT_ERR_IO;
            goto out;
        }
    }
    if (seq)
        *seq = log->next_seq;
    /* Publish the tree the checkpoint signs (the lines before it) while
     * the lock keeps other writers out, but only once it is on disk: a
     * published checkpoint lost to a power cut would look like a rollback
     * to every monitor. (SYNC_EACH syncs after unlocking, for the group;
     * one more fdatasync per checkpoint is the price.) */
    if (log->pub && k == PATIENT_LOG_KIND_CHECKPOINT) {
        patient_err perr = PATIENT_OK;
        if (log->sync == PATIENT_LOG_SYNC_EACH && fdatasync(log->fd) != 0)
            perr = PATIENT_ERR_IO;
        if (perr == PATIENT_OK)
            perr = pt_pub_publish(log->pub, log->log_id);
        if (perr != PATIENT_OK)
            log->pub_err = perr;
    }
    if ((err = state_add(log, b.data, b.len - 1, k)))
        goto out;
    log->n_appends++;
    if (k != PATIENT_LOG_KIND_CHECKPOINT && log->since_ckpt >= log->every)
        err = write_checkpoint(log, NULL);
out:
    pt_buf_free(&b);
    return err;
}

static patient_err
write_checkpoint(patient_log *log, uint64_t *seq)
{
    uint8_t root[HASH_LEN];
    char *root64 = NULL, *sig = NULL, now[PATIENT_TIME_BYTES];
    pt_buf payload = {0}, rest = {0};
    patient_err err;

    if (log->sk == NULL)
        return PATIENT_ERR_STATE;
    if (log->next_seq == 0)
        return PATIENT_ERR_STATE;
    pt_time_format(time(NULL), now);
    if ((err = pt_merkle_frontier_root(&log->fr, root)) ||
        (err = pt_b64_encode(root, HASH_LEN, 0, &root64)))
        goto out;
    if ((err = pt_buf_appendf(&payload,
                              "{\"log_id\":\"%s\",\"tree_size\":%llu,\"root\":\"%s\",\"time\":\"%s\"}",
                              log->log_id, (unsigned long long)log->next_seq, root64, now)))
        goto out;
    if ((err = patient_jws_sign(log->sk, CKPT_TYP, payload.data, payload.len, &sig)))
        goto out;
    if ((err = pt_buf_appendf(&rest, ",\"time\":\"%s\",\"tree_size\":%llu,\"root\":\"%s\",\"sig\":\"%s\"",
                              now, (unsigned long long)log->next_seq, root64, sig)))
        goto out;
    err = write_entry(log, "checkpoint", &rest, seq);
out:
    free(root64);
    free(sig);
    pt_buf_free(&payload);
    pt_buf_free(&rest);
    return err;
}

patient_err
patient_log_open(const char *path, const patient_seckey *sk, unsigned checkpoint_every,
                 patient_log **out)
{
    patient_log *log = NULL;
    struct stat st;
    int locked = 0;
    patient_err err;

    *out = NULL;
    if (path == NULL)
        return PATIENT_ERR_ARG;
    if ((log = calloc(1, sizeof *log)) == NULL)
        return PATIENT_ERR_NOMEM;
    log->fd = -1;
    log->sk = sk;
    log->ro = sk == NULL;
    log->every = checkpoint_every ? checkpoint_every : PATIENT_LOG_CHECKPOINT_EVERY;
    pt_merkle_frontier_init(&log->fr);
    if (pthread_mutex_init(&log->mu, NULL) != 0) {
        free(log);
        return PATIENT_ERR_NOMEM;
    }
    if (pthread_mutex_init(&log->smu, NULL) != 0) {
        pthread_mutex_destroy(&log->mu);
        free(log);
        return PATIENT_ERR_NOMEM;
    }
    if (pthread_cond_init(&log->cv, NULL) != 0) {
        pthread_mutex_destroy(&log->smu);
        pthread_mutex_destroy(&log->mu);
        free(log);
        return PATIENT_ERR_NOMEM;
    }
    if (log->ro)
        err = open_read(path, &log->fd);
    else {
        log->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
                       0600);
        err = log->fd < 0 ? (errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH : PATIENT_ERR_IO)
                          : PATIENT_OK;
        if (err == PATIENT_OK && (fstat(log->fd, &st) != 0 || !S_ISREG(st.st_mode)))
            err = PATIENT_ERR_UNSAFE_PATH;
    }
    if (err)
        goto out;
    /* Scan the bulk without the lock (other processes keep appending),
     * then catch up and repair under it. */
    if ((err = sync_tail(log, 0)))
        goto out;
    if ((err = lock_log(log)))
        goto out;
    locked = 1;
    if (log->repaired && !log->ro) {
        char detail[128];
        pt_buf rest = {0};
        char now[PATIENT_TIME_BYTES];
        pt_time_format(time(NULL), now);
        snprintf(detail, sizeof detail,
                 "cut %llu bytes of an append that never completed",
                 (unsigned long long)log->repaired);
        if (!(err = pt_buf_appendf(&rest, ",\"time\":\"%s\",\"event\":\"log.repaired\",\"detail\":",
                                   now)) &&
            !(err = json_str(&rest, detail)))
            err = write_entry(log, "event", &rest, NULL);
        pt_buf_free(&rest);
        if (err == PATIENT_OK && fdatasync(log->fd) != 0)
            err = PATIENT_ERR_IO;
        if (err)
            goto out;
    }
    /* What is in the file now was acknowledged by its writers (durable
     * by their syncs) or just repaired and synced above. */
    atomic_store(&log->durable_off, log->off);
    *out = log;
    log = NULL;
out:
    if (locked)
        unlock_log(*out ? *out : log);
    if (log) {
        if (log->fd >= 0)
            close(log->fd);
        pthread_cond_destroy(&log->cv);
        pthread_mutex_destroy(&log->smu);
        pthread_mutex_destroy(&log->mu);
        free(log->scratch);
        free(log);
    }
    return err;
}

patient_err
patient_log_set_sync(patient_log *log, int mode)
{
    if (log == NULL || mode < PATIENT_LOG_SYNC_EACH || mode > PATIENT_LOG_SYNC_NONE)
        return PATIENT_ERR_ARG;
    pthread_mutex_lock(&log->mu);
    log->sync = mode;
    pthread_mutex_unlock(&log->mu);
    return PATIENT_OK;
}

uint64_t
patient_log_size(patient_log *log)
{
    uint64_t n;

    pthread_mutex_lock(&log->mu);
    n = log->next_seq;
    pthread_mutex_unlock(&log->mu);
    return n;
}

int
patient_log_sync_busy(patient_log *log)
{
    /* A hint, read without smu: it may change the moment after. */
    return log != NULL && (atomic_load_explicit(&log->syncing, memory_order_relaxed) ||
                           atomic_load_explicit(&log->waiters, memory_order_relaxed) > 0);
}

void
patient_log_stats(patient_log *log, uint64_t *appends, uint64_t *syncs)
{
    pthread_mutex_lock(&log->mu);
    if (appends)
        *appends = log->n_appends;
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_lock(&log->smu);
    if (syncs)
        *syncs = log->n_syncs;
    pthread_mutex_unlock(&log->smu);
}

uint64_t
patient_log_repaired_bytes(const patient_log *log)
{
    return log->repaired;
}

/* What every call that writes checks first: a handle and its required
 * arguments (args_ok; ARG), opened with a key (STATE: a handle without
 * one only reads). */
static patient_err
log_writable(const patient_log *log, int args_ok)
{
    if (log == NULL || !args_ok)
        return PATIENT_ERR_ARG;
    return log->ro ? PATIENT_ERR_STATE : PATIENT_OK;
}

/* Append a change entry for the descriptor jws, whose fields f holds
 * (defer: see unlock_commit_defer). */
static patient_err
append_change(patient_log *log, const char *jws, const chfields *f, uint64_t *seq,
              uint64_t *defer)
{
    pt_buf rest = {0};
    size_t i, jws_len = strlen(jws), line = f->entry_len;
    patient_err err;

    /* The JWS is stored as received but trimmed (jws_parse trims blanks). */
    if (strspn(jws, " \t") || strcspn(jws, " \t\r\n") != jws_len) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    /* Sized once, by the count a hop checks before its descriptor leaves
     * it (exact for seq's longest form): the hop's own when it signed
     * (f->entry_len), else counted here; fixed text appended as it is,
     * not through a format. */
    if (line == 0) {
        pt_entry_size size = {.jws_len = jws_len, .at = f->at, .url = f->url,
                              .name = f->by_name, .kid = f->kid,
                              .hop = (unsigned long long)f->hop, .nedits = f->n,
                              .deleted = f->deleted, .inserted = f->inserted, .tls = f->tls};
        for (i = 0; i < f->n; i++)
            size.codes_len += strlen(f->reasons[i]) + strlen(f->rules[i]);
        line = pt_change_entry_len(&size, PT_ENTRY_ANY_SEQ);
    }
    if ((err = pt_buf_reserve(&rest, line)) ||
        (err = pt_buf_append(&rest, ",\"time\":", 8)) || (err = json_str(&rest, f->at)) ||
        (err = pt_buf_append(&rest, ",\"url\":", 7)) || (err = json_str(&rest, f->url)) ||
        (err = pt_buf_append(&rest, ",\"hop\":", 7)) ||
        (err = pt_buf_put_u64(&rest, (uint64_t)f->hop)) ||
        (err = pt_buf_append(&rest, ",\"by\":{\"name\":", 14)) ||
        (err = json_str(&rest, f->by_name)) || (err = pt_buf_append(&rest, ",\"kid\":\"", 8)) ||
        (err = pt_buf_append(&rest, f->kid, strlen(f->kid))) ||
        (err = pt_buf_append(&rest, "\"},\"reasons\":[", 14)))
        goto out;
    for (i = 0; i < f->n; i++)
        if ((i && (err = pt_buf_append(&rest, ",", 1))) || (err = json_str(&rest, f->reasons[i])))
            goto out;
    if ((err = pt_buf_append(&rest, "],\"rules\":[", 11)))
        goto out;
    for (i = 0; i < f->n; i++)
        if ((i && (err = pt_buf_append(&rest, ",", 1))) || (err = json_str(&rest, f->rules[i])))
            goto out;
    if ((err = pt_buf_append(&rest, "],\"deleted\":", 12)) ||
        (err = pt_buf_put_u64(&rest, f->deleted)) ||
        (err = pt_buf_append(&rest, ",\"inserted\":", 12)) ||
        (err = pt_buf_put_u64(&rest, f->inserted)) || (err = pt_buf_append(&rest, ",", 1)) ||
        (f->tls[0] && ((err = pt_buf_append(&rest, "\"tls\":", 6)) || (err = json_str(&rest, f->tls)) ||
                       (err = pt_buf_append(&rest, ",", 1)))) ||
        (err = pt_buf_append(&rest, "\"jws\":", 6)) ||
        (err = json_str(&rest, jws)))
        goto out;
    if ((err = lock_log(log)))
        goto out;
    err = unlock_commit_defer(log, write_entry(log, "change", &rest, seq), defer);
out:
    pt_buf_free(&rest);
    return err;
}

patient_err
patient_log_append_change(patient_log *log, const char *jws, uint64_t *seq)
{
    chfields f;
    patient_err err;

    if ((err = log_writable(log, jws != NULL)) != PATIENT_OK)
        return err;
    if ((err = chfields_from_value(jws, &f)) == PATIENT_OK)
        err = append_change(log, jws, &f, seq, NULL);
    chfields_free(&f);
    return err;
}

static patient_err
append_hop(patient_log *log, const patient_hop *hop, uint64_t *seq, uint64_t *defer)
{
    chfields f;
    const char *jws = NULL;
    patient_err err;

    if ((err = log_writable(log, hop != NULL)) != PATIENT_OK)
        return err;
    /* The hop built the descriptor: its fields come from the hop, not from
     * parsing the JWS again (the same entry, byte for byte). */
    if ((err = chfields_from_hop(hop, &f, &jws)) == PATIENT_OK)
        err = append_change(log, jws, &f, seq, defer);
    chfields_free(&f);
    return err;
}

patient_err
patient_log_append_hop(patient_log *log, const patient_hop *hop, uint64_t *seq)
{
    return append_hop(log, hop, seq, NULL);
}

patient_err
patient_log_append_hop_deferred(patient_log *log, const patient_hop *hop, uint64_t *seq,
                                uint64_t *durable_at)
{
    if (durable_at == NULL)
        return PATIENT_ERR_ARG;
    *durable_at = 0;
    return append_hop(log, hop, seq, durable_at);
}

patient_err
patient_log_wait_durable(patient_log *log, uint64_t durable_at)
{
    if (log == NULL)
        return PATIENT_ERR_ARG;
    /* 0: nothing to wait for. A mark this handle never gave cannot be
     * waited for honestly. */
    if (durable_at == 0)
        return PATIENT_OK;
    if (durable_at > atomic_load_explicit(&log->written, memory_order_acquire))
        return PATIENT_ERR_ARG;
    return wait_durable(log, durable_at);
}

void
patient_log_sync_ahead(patient_log *log, uint64_t durable_at)
{
    if (log == NULL || durable_at == 0 ||
        atomic_load_explicit(&log->durable_off, memory_order_acquire) >= durable_at ||
        durable_at > atomic_load_explicit(&log->written, memory_order_acquire))
        return;
    pthread_mutex_lock(&log->smu);
    if (log->syncer_state == 0)
        syncer_start(log);
    /* A sync already running: the waiter leads the next one itself, as
     * without the syncer (kicked now, the syncer would only add a
     * hand-over to that wait). */
    if (log->syncer_state == 1 && log->syncer_pid == getpid() &&
        !atomic_load_explicit(&log->syncing, memory_order_relaxed)) {
        if (durable_at > log->kick_to)
            log->kick_to = durable_at;
        pthread_cond_signal(&log->kick);
    }
    pthread_mutex_unlock(&log->smu);
}

patient_err
patient_log_append_event(patient_log *log, const char *event, const char *url,
                         const char *detail, uint64_t *seq)
{
    pt_buf rest = {0};
    char now[PATIENT_TIME_BYTES];
    size_t n;
    patient_err err;

    if ((err = log_writable(log, event != NULL)) != PATIENT_OK)
        return err;
    n = strlen(event);
    if (n == 0 || n > PATIENT_LOG_EVENT_MAX ||
        strspn(event, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n)
        return PATIENT_ERR_ARG;
    if ((url && strlen(url) > PATIENT_LOG_URL_MAX) ||
        (detail && strlen(detail) > PATIENT_LOG_DETAIL_MAX))
        return PATIENT_ERR_TOO_LARGE;
    pt_time_format(time(NULL), now);
    if ((err = pt_buf_appendf(&rest, ",\"time\":\"%s\",\"event\":\"%s\"", now, event)))
        goto out;
    if (url && ((err = pt_buf_appendf(&rest, ",\"url\":")) || (err = json_str(&rest, url))))
        goto out;
    if (detail &&
        ((err = pt_buf_appendf(&rest, ",\"detail\":")) || (err = json_str(&rest, detail))))
        goto out;
    if ((err = lock_log(log)))
        goto out;
    err = unlock_commit(log, write_entry(log, "event", &rest, seq));
out:
    pt_buf_free(&rest);
    return err;
}

patient_err
patient_log_checkpoint(patient_log *log, uint64_t *seq)
{
    patient_err err;

    if ((err = log_writable(log, 1)) != PATIENT_OK || (err = lock_log(log)))
        return err;
    return unlock_commit(log, write_checkpoint(log, seq));
}

patient_err
patient_log_close(patient_log *log)
{
    patient_err err = PATIENT_OK;

    if (log == NULL)
        return PATIENT_OK;
    syncer_stop(log);
    if (!log->ro && (err = lock_log(log)) == PATIENT_OK) {
        if (log->next_seq > 0 && !log->last_is_ckpt)
            err = write_checkpoint(log, NULL);
        if (err == PATIENT_OK && log->sync != PATIENT_LOG_SYNC_NONE && fdatasync(log->fd) != 0)
            err = PATIENT_ERR_IO;
        unlock_log(log);
    }
    close(log->fd);
    pthread_cond_destroy(&log->cv);
    pthread_mutex_destroy(&log->smu);
    pthread_mutex_destroy(&log->mu);
    pt_pub_free(log->pub);
    free(log->scratch);
    free(log);
    return err;
}

patient_err
patient_log_set_publish(patient_log *log, const char *dir, const char *origin)
{
    pt_pub *p = NULL;
    uint64_t size = 0, end = 0;
    patient_err err;

    if ((err = log_writable(log, 1)) != PATIENT_OK || (err = lock_log(log)))
        return err;
    if (dir == NULL) {
        pt_pub_free(log->pub);
        log->pub = NULL;
        goto out;
    }
    /* Rebuild the tiles from the file (the folder is a cache of the log:
     * nothing in it is trusted), publish the last checkpoint's tree, then
     * follow every line this handle accounts. */
    if ((err = pt_pub_new(dir, origin, log->log_id, log->sk, log->fd, &p)))
        goto out;
    err = pt_pub_scan(p, &size, &end);
    if (err == PATIENT_ERR_NOT_FOUND)
        err = PATIENT_OK; /* no checkpoint yet: the first one publishes */
    if (err == PATIENT_OK && (size != log->next_seq || end != log->off))
        err = PATIENT_ERR_LOG_CORRUPT;
    if (err)
        goto out;
    pt_pub_free(log->pub);
    log->pub = p;
    p = NULL;
    log->pub_err = PATIENT_OK;
out:
    pt_pub_free(p);
    unlock_log(log);
    return err;
}

patient_err
patient_log_publish_error(patient_log *log)
{
    patient_err err;

    if (log == NULL)
        return PATIENT_ERR_ARG;
    pthread_mutex_lock(&log->mu);
    err = log->pub_err;
    log->pub_err = PATIENT_OK;
    pthread_mutex_unlock(&log->mu);
    return err;
}
