/* The monitor's descriptor index: which log entry holds which change
 * descriptor, for `patient audit included` to look a descriptor up instead
 * of reading every entry bundle of the published log. The monitor writes
 * it beside its state file as it checks the entries; nothing in it is
 * trusted: included proves the entry it names (the line must be that very
 * descriptor, with an inclusion proof to the signed root), so a wrong or
 * forged index costs a search of the log, never a false "logged".
 * Format contract: docs/format/log.md ("The descriptor index"). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_int.h"
#include "tlog_int.h"

#define MAGIC "patient-monitor-index 1 "
/* header: MAGIC, 64 hex of the log id, " ", the first size covered in
 * decimal, padded with spaces to HDR_LEN - 1, "\n" */
#define HDR_LEN 128u
/* the largest first size a header may give: (UINT64_MAX - 9) / 10 * 10 + 9 */
#define HDR_SIZE_MAX (UINT64_MAX - 6)
#define REC_LEN (PT_INDEX_KEY + 8u)
/* Beyond this an index is not read (the log is searched instead):
 * 22 million changes. */
#define INDEX_MAX (512u * 1024 * 1024)

static const uint8_t mark_key[PT_INDEX_KEY] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

void
pt_index_key(const char *jws, size_t len, uint8_t key[PT_INDEX_KEY])
{
    /* The end of a compact JWS is its signature's base64url: Ed25519 over
     * the descriptor, different for every descriptor. Printable, so never
     * the coverage mark's 0xff bytes. */
    memset(key, 0, PT_INDEX_KEY);
    if (len >= PT_INDEX_KEY)
        memcpy(key, jws + len - PT_INDEX_KEY, PT_INDEX_KEY);
    else if (len)
        memcpy(key, jws, len);
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t
be_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* The header's log id and first size; -1 when it is not one. */
static int
header_parse(const uint8_t *h, size_t len, char log_id[HEX_LEN + 1], uint64_t *from)
{
    const size_t m = sizeof MAGIC - 1;
    size_t i, e;

    if (len < HDR_LEN || memcmp(h, MAGIC, m) != 0 || h[m + HEX_LEN] != ' ' ||
        h[HDR_LEN - 1] != '\n')
        return -1;
    for (i = 0; i < HEX_LEN; i++)
        if (!((h[m + i] >= '0' && h[m + i] <= '9') || (h[m + i] >= 'a' && h[m + i] <= 'f')))
            return -1;
    memcpy(log_id, h + m, HEX_LEN);
    log_id[HEX_LEN] = '\0';
    i = m + HEX_LEN + 1;
    for (e = i; e < HDR_LEN - 1 && h[e] != ' '; e++)
        ;
    /* The bound this reader always had; the writer's %llu writes no
     * leading zero, so none is read. */
    if (pt_decimal_parse((const char *)h + i, e - i, HDR_SIZE_MAX, from) != 0)
        return -1;
    for (; e < HDR_LEN - 1; e++)
        if (h[e] != ' ')
            return -1;
    return 0;
}

/* Where the last coverage mark of n whole records says the index ends
 * (0 with none), and in *keep the records up to and with it (0: none):
 * records past the last mark were never committed. */
static uint64_t
last_mark(const uint8_t *recs, size_t n, size_t *keep)
{
    while (n-- > 0)
        if (memcmp(recs + n * REC_LEN, mark_key, PT_INDEX_KEY) == 0) {
            *keep = n + 1;
            return be_u64(recs + n * REC_LEN + PT_INDEX_KEY) + 1;
        }
    *keep = 0;
    return 0;
}

/* last_mark over the records of the index open at fd (size bytes), read
 * backwards a chunk at a time: only a crash leaves records past the last
 * mark, so this reads the last chunk, not the whole index. */
static patient_err
file_last_mark(int fd, uint64_t size, uint64_t *upto, size_t *keep)
{
    uint8_t chunk[1024 * REC_LEN];
    size_t have = (size_t)((size - HDR_LEN) / REC_LEN), k;

    *upto = 0;
    *keep = 0;
    while (have > 0) {
        size_t cnt = have < sizeof chunk / REC_LEN ? have : sizeof chunk / REC_LEN;
        off_t at = (off_t)(HDR_LEN + (uint64_t)(have - cnt) * REC_LEN);
        if (pread(fd, chunk, cnt * REC_LEN, at) != (ssize_t)(cnt * REC_LEN))
            return PATIENT_ERR_IO;
        have -= cnt;
        *upto = last_mark(chunk, cnt, &k);
        if (k != 0) {
            *keep = have + k;
            return PATIENT_OK;
        }
    }
    return PATIENT_OK;
}

patient_err
pt_index_rec_add(pt_buf *recs, const uint8_t key[PT_INDEX_KEY], uint64_t seq)
{
    uint8_t rec[REC_LEN];

    memcpy(rec, key, PT_INDEX_KEY);
    put_be64(rec + PT_INDEX_KEY, seq);
    return pt_buf_append(recs, rec, REC_LEN);
}

patient_err
pt_index_begin(pt_ixw *w, const char *path, const char *log_id, uint64_t old_size)
{
    uint8_t hdr[HDR_LEN];
    char id[HEX_LEN + 1];
    struct stat sb, now;
    size_t have = 0;
    uint64_t from = 0, upto = 0;
    int fd = -1, n;
    patient_err err;

    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->path = path;
    w->fresh = 1;
    /* Appended to only when it covers exactly [from, old_size): anything
     * else (none yet, another log, a gap, damage) starts a new one at
     * old_size. A crash mid-append leaves a torn record or records past
     * the last mark; both are cut or written again here. So does an index
     * past INDEX_MAX, which included would not read: the new one covers
     * from old_size, and included searches the log before it. Only the
     * header and the records from the last mark on are read. */
    err = pt_open_regular(path, INDEX_MAX, &fd, &sb);
    if (err == PATIENT_OK) {
        if ((uint64_t)sb.st_size >= HDR_LEN && pread(fd, hdr, HDR_LEN, 0) == (ssize_t)HDR_LEN &&
            header_parse(hdr, HDR_LEN, id, &from) == 0 && strcmp(id, log_id) == 0 &&
            (err = file_last_mark(fd, (uint64_t)sb.st_size, &upto, &have)) == PATIENT_OK &&
            upto != 0 && upto == old_size && from <= old_size)
            w->fresh = 0;
        close(fd);
        fd = -1;
    }
    if (err != PATIENT_OK && err != PATIENT_ERR_NOT_FOUND && err != PATIENT_ERR_TOO_LARGE)
        return err;
    if (!w->fresh) {
        /* Records go after the last mark (a torn tail is written over);
         * until the run's own mark they are not part of the index. */
        w->keep = (off_t)(HDR_LEN + have * REC_LEN);
        w->at = w->keep;
        if ((w->fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
            return PATIENT_ERR_IO;
        if (lseek(w->fd, w->at, SEEK_SET) != w->at) {
            close(w->fd);
            w->fd = -1;
            return PATIENT_ERR_IO;
        }
        return PATIENT_OK;
    }
    /* A new index is written beside it and renamed over the old one on
     * commit, as pt_write_atomic does. The name is fixed, not mkstemp's:
     * it lives for the whole run, and a killed run (no signal handler
     * without --loop) would leave one more file each time; the next run
     * writes over it, once it holds its lock (a run still writing it has
     * it: refused, not cut under it). Not a regular file there (a
     * symlink, a FIFO, a folder): refused, as the commit refuses one at
     * path. */
    n = snprintf(w->tmp, sizeof w->tmp, "%s.new", path);
    if (n < 0 || (size_t)n >= sizeof w->tmp) {
        w->tmp[0] = '\0';
        return PATIENT_ERR_ARG;
    }
    if (lstat(w->tmp, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        w->tmp[0] = '\0';
        return PATIENT_ERR_UNSAFE_PATH;
    }
    /* (O_NONBLOCK: a FIFO put there meanwhile cannot hang the open) */
    if ((w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600)) <
        0) {
        err = errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH : PATIENT_ERR_IO;
        w->tmp[0] = '\0';
        return err;
    }
    /* locked, and still the file at that name (not one a run renamed
     * into place since the open): else another run has it */
    err = PATIENT_OK;
    if (flock(w->fd, LOCK_EX | LOCK_NB) != 0)
        err = errno == EWOULDBLOCK ? PATIENT_ERR_EXISTS : PATIENT_ERR_IO;
    else if (fstat(w->fd, &sb) != 0 || lstat(w->tmp, &now) != 0 || now.st_dev != sb.st_dev ||
             now.st_ino != sb.st_ino)
        err = PATIENT_ERR_EXISTS;
    if (err != PATIENT_OK) {
        close(w->fd);
        w->fd = -1;
        w->tmp[0] = '\0';
        return err;
    }
    if (ftruncate(w->fd, 0) != 0) {
        pt_index_abort(w);
        return PATIENT_ERR_IO;
    }
    memset(hdr, ' ', HDR_LEN);
    n = snprintf((char *)hdr, HDR_LEN, MAGIC "%s %llu", log_id, (unsigned long long)old_size);
    hdr[n] = ' ';
    hdr[HDR_LEN - 1] = '\n';
    if (fchmod(w->fd, 0600) != 0 || (err = pt_write_all(w->fd, hdr, HDR_LEN)) != PATIENT_OK) {
        pt_index_abort(w);
        return PATIENT_ERR_IO;
    }
    w->at = HDR_LEN;
    return PATIENT_OK;
}

patient_err
pt_index_flush(pt_ixw *w, pt_buf *recs)
{
    size_t n = recs->len;

    if (n == 0)
        return w->err;
    /* (the descriptor is at w->at: begin puts it there, each write moves it) */
    if (w->err == PATIENT_OK && w->fd >= 0 &&
        (w->err = pt_write_all(w->fd, recs->data, n)) == PATIENT_OK) {
#ifdef SYNC_FILE_RANGE_WRITE
        /* Its writeback starts now, not in the commit's sync at the end. */
        (void)sync_file_range(w->fd, w->at, (off_t)n, SYNC_FILE_RANGE_WRITE);
#endif
        w->at += (off_t)n;
    }
    recs->len = 0;
    return w->err;
}

/* The commit's close, checked as pt_write_atomic checks it (a write the
 * file system reports only there); the descriptor is gone either way. */
static patient_err
index_close(pt_ixw *w)
{
    int rc = close(w->fd);

    w->fd = -1;
    return rc != 0 ? PATIENT_ERR_IO : PATIENT_OK;
}

patient_err
pt_index_commit(pt_ixw *w, pt_buf *recs, uint64_t new_size)
{
    uint8_t mark[REC_LEN];
    struct stat st;
    patient_err err;

    if (w->fd < 0)
        return PATIENT_ERR_IO;
    /* the mark holds the last seq covered: new_size - 1 (new_size > 0) */
    memcpy(mark, mark_key, PT_INDEX_KEY);
    put_be64(mark + PT_INDEX_KEY, new_size - 1);
    if ((err = pt_buf_append(recs, mark, REC_LEN)) || (err = pt_index_flush(w, recs)))
        return err;
    if (!w->fresh) {
        /* what a crash left past the last mark goes */
        if (ftruncate(w->fd, w->at) != 0 || fdatasync(w->fd) != 0)
            return PATIENT_ERR_IO;
        return index_close(w);
    }
    if (fsync(w->fd) != 0)
        return PATIENT_ERR_IO;
    /* a name that is not a regular file (a FIFO, a folder, a symlink
     * put there meanwhile) is not replaced */
    if (lstat(w->path, &st) == 0 && !S_ISREG(st.st_mode))
        return PATIENT_ERR_UNSAFE_PATH;
    /* renamed while its lock is held: a run that opens the name before
     * that cannot cut it */
    if (rename(w->tmp, w->path) != 0)
        return PATIENT_ERR_IO;
    w->tmp[0] = '\0';
    (void)pt_fsync_dir_of(w->path); /* best effort, as pt_write_atomic */
    /* (a close that fails after the rename: the index is ahead of the
     * state, which the failed run does not write; the next run redoes it) */
    return index_close(w);
}

void
pt_index_abort(pt_ixw *w)
{
    /* a new index's file goes while its lock is held (no other run can
     * have it open and locked) */
    if (w->fresh && w->tmp[0] != '\0')
        unlink(w->tmp);
    w->tmp[0] = '\0';
    if (w->fd >= 0) {
        /* an append's records past its last mark go: it is as it was */
        if (!w->fresh)
            (void)ftruncate(w->fd, w->keep);
        close(w->fd);
        w->fd = -1;
    }
}

patient_err
pt_index_parse(uint8_t *data, size_t len, const char *log_id, pt_index *idx)
{
    char id[HEX_LEN + 1];
    size_t have;

    memset(idx, 0, sizeof *idx);
    if (len > INDEX_MAX || header_parse(data, len, id, &idx->from) != 0 ||
        (log_id && strcmp(id, log_id) != 0))
        return PATIENT_ERR_PARSE;
    if ((idx->upto = last_mark(data + HDR_LEN, (len - HDR_LEN) / REC_LEN, &have)) == 0 ||
        idx->upto <= idx->from)
        return PATIENT_ERR_PARSE; /* nothing covered */
    idx->data = data;
    idx->len = len;
    idx->n = have;
    return PATIENT_OK;
}

patient_err
pt_index_load(const char *path, const char *log_id, pt_index *idx)
{
    uint8_t *data = NULL;
    size_t len = 0;
    patient_err err;

    memset(idx, 0, sizeof *idx);
    if ((err = pt_read_file(path, INDEX_MAX, &data, &len)))
        return err;
    if ((err = pt_index_parse(data, len, log_id, idx)))
        free(data);
    return err;
}

int
pt_index_next(const pt_index *idx, const uint8_t key[PT_INDEX_KEY], size_t *pos, uint64_t *seq)
{
    for (; *pos < idx->n; (*pos)++) {
        const uint8_t *r = idx->data + HDR_LEN + *pos * REC_LEN;
        if (memcmp(r, key, PT_INDEX_KEY) == 0) {
            *seq = be_u64(r + PT_INDEX_KEY);
            (*pos)++;
            return 1;
        }
    }
    return 0;
}

void
pt_index_free(pt_index *idx)
{
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
