/* Private to the transparency-log files (log_tiles.c, log_write.c's
 * publishing hook, tlog_client.c): the incremental tile builder and the
 * publisher. Format contract: docs/format/log.md. Never installed. */
#ifndef PATIENT_TLOG_INT_H
#define PATIENT_TLOG_INT_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include <patient/tlog.h>
#include "log_int.h"
#include "merkle.h"

/* Tile levels: 8 of height 8 cover 2^64 leaves. */
#define PT_TILE_LEVELS 8

/* The right edge of the tiled tree: at each level the hashes of the
 * partial tile (level-8L nodes), and how many full tiles came before. */
typedef struct pt_tiles {
    uint64_t size;                 /* leaves added */
    unsigned w[PT_TILE_LEVELS];    /* hashes in the partial tile, 0..255 */
    uint64_t full[PT_TILE_LEVELS]; /* full tiles so far at this level */
    uint8_t part[PT_TILE_LEVELS][PATIENT_TILE_WIDTH][PATIENT_SHA256_BYTES];
    pt_merkle_frontier fr;
} pt_tiles;

/* Called for every tile that becomes full (level, index, 8 KiB of hashes). */
typedef patient_err (*pt_tile_full_fn)(void *ctx, unsigned level, uint64_t index,
                                       const uint8_t *data);

void pt_tiles_init(pt_tiles *t);
patient_err pt_tiles_add(pt_tiles *t, const uint8_t leaf[PATIENT_SHA256_BYTES],
                         pt_tile_full_fn on_full, void *ctx);
/* pt_tiles_add of 2^height leaves (height <= 8, t->size a multiple of
 * 2^height) given their MTH, root, as well: the same tiles, calls of
 * on_full and frontier, without the frontier's node hashes below root
 * (the caller hashed them, 16 at a time). Leaf k is at leaves + k *
 * stride. PATIENT_ERR_ARG when t->size is not a multiple. */
patient_err pt_tiles_add_sub(pt_tiles *t, const uint8_t *leaves, size_t stride, unsigned height,
                             const uint8_t root[PATIENT_SHA256_BYTES], pt_tile_full_fn on_full,
                             void *ctx);
/* MTH of a full tile's 256 hashes (the node 8 levels up). */
patient_err pt_tile_root(const uint8_t *data, unsigned w, uint8_t out[PATIENT_SHA256_BYTES]);

/* A publisher: the tiles of one log being kept published in one folder. */
typedef struct pt_pub pt_pub;
/* Seconds a partial tile or bundle stays once its full one exists: a
 * client that read the checkpoint naming it has that long to fetch it
 * (C2SP lets it fall back to the full one after). Tests lower it. */
#define PT_PRUNE_GRACE 600
extern long pt_prune_grace;

/* fd: the log, read with pread (borrowed, must outlive the publisher).
 * sk borrowed likewise. dir is made if missing and opened once: the
 * publisher keeps it and the folders it last wrote each kind of file in
 * open (a few fds, close-on-exec) until pt_pub_free. */
patient_err pt_pub_new(const char *dir, const char *origin, const char *log_id,
                       const patient_seckey *sk, int fd, pt_pub **out);
void pt_pub_free(pt_pub *p);
/* Scan the log from the start into the tiles and publish the tree of its
 * last checkpoint (if any). Afterwards the publisher is at end_size leaves
 * at file offset end_off. */
patient_err pt_pub_scan(pt_pub *p, uint64_t *end_size, uint64_t *end_off);
/* One more committed line (at file offset off, len bytes without "\n"). */
patient_err pt_pub_add(pt_pub *p, const uint8_t leaf[PATIENT_SHA256_BYTES], uint64_t off,
                       size_t len);
/* Publish the tree as it stands (partial tiles, bundle, checkpoint).
 * log_id names the default origin if none was set and the log was empty
 * when the publisher was made. */
patient_err pt_pub_publish(pt_pub *p, const char *log_id);
uint64_t pt_pub_size(const pt_pub *p);

/* A monitor's kept tree head (the state file, docs/format/log.md). */
typedef struct pt_mstate {
    int have;
    char origin[PATIENT_ORIGIN_MAX + 1];
    char log_id[2 * PATIENT_SHA256_BYTES + 1];
    uint8_t root[PATIENT_SHA256_BYTES], last[PATIENT_SHA256_BYTES];
    pt_tiles t; /* size, partial tiles, frontier */
} pt_mstate;

/* Strict reader of a state file's bytes: 0, or -1 (st zeroed). */
int pt_mstate_parse(const uint8_t *data, size_t len, pt_mstate *st);
/* Split an entry bundle of w lines in place (each "\n" becomes NUL):
 * 0, or -1 unless it is exactly w newline-terminated lines. */
int pt_bundle_split(char *body, size_t len, unsigned w, char **lines, size_t *lens);

/* The logged-change evidence of one entry (log_evidence.c): *out is the
 * compact JSON object patient_log_evidence_check reads. */
patient_err pt_log_evidence_build(const char *line, size_t len, uint64_t index,
                                  uint64_t tree_size, const uint8_t (*path)[PATIENT_SHA256_BYTES],
                                  size_t n, const char *note, char **out);

/* The monitor's descriptor index (tlog_index.c, docs/format/log.md);
 * PT_INDEX_KEY is in log_int.h. */
/* The key of a compact JWS of len bytes: its last 16 bytes. */
void pt_index_key(const char *jws, size_t len, uint8_t key[PT_INDEX_KEY]);
/* One more record of a run's new changes (key, seq) into recs, which keeps
 * them as the index file has them: pt_index_flush writes them from this
 * one buffer, not copied into another first. recs starts empty ({0}) and
 * is freed with pt_buf_free. */
patient_err pt_index_rec_add(pt_buf *recs, const uint8_t key[PT_INDEX_KEY], uint64_t seq);
/* A monitor run's index update for the log log_id (64 hex), written as
 * the run takes the tree from old_size to new_size (> 0), so that the
 * write and its writeback overlap the run instead of following it:
 * pt_index_begin opens the index at path to add to it, or, if it does
 * not cover exactly up to old_size, a temporary file beside it for a new
 * one covering from old_size; pt_index_flush writes the records recs
 * holds (the run's new changes, pt_index_rec_add) and empties it;
 * pt_index_commit adds the rest and the coverage
 * mark and makes it all durable (fdatasync; the new one renamed into
 * place); pt_index_abort, after a failed run or after the commit (then a
 * no-op), leaves the index as it was up to its last mark (an append's
 * records past it cut, a new one's temporary file removed). Not
 * thread-safe; path BORROWED until the commit or abort returns. A write
 * that failed in a flush is the commit's PATIENT_ERR_IO, and so is a
 * close that failed in the commit (the index may then be in place, ahead
 * of the state the failed run does not write: the next run writes it
 * again). */
typedef struct {
    const char *path;
    int fd, fresh;
    char tmp[4096];
    off_t keep, at; /* an append's length up to its last mark; where records go */
    patient_err err;
} pt_ixw;
patient_err pt_index_begin(pt_ixw *w, const char *path, const char *log_id, uint64_t old_size);
patient_err pt_index_flush(pt_ixw *w, pt_buf *recs);
patient_err pt_index_commit(pt_ixw *w, pt_buf *recs, uint64_t new_size);
void pt_index_abort(pt_ixw *w);
typedef struct {
    uint8_t *data;
    size_t len, n; /* n committed records */
    uint64_t from, upto; /* the entries [from, upto) were all indexed */
} pt_index;
/* PATIENT_ERR_NOT_FOUND (none), PATIENT_ERR_PARSE (not one, or of another
 * log: to be ignored), or loaded. */
patient_err pt_index_load(const char *path, const char *log_id, pt_index *idx);
/* The same over len bytes at data (malloc'd; idx owns them on success);
 * log_id NULL: any log. */
patient_err pt_index_parse(uint8_t *data, size_t len, const char *log_id, pt_index *idx);
/* The next record at or after *pos with key: 1 and *seq, or 0. */
int pt_index_next(const pt_index *idx, const uint8_t key[PT_INDEX_KEY], size_t *pos,
                  uint64_t *seq);
void pt_index_free(pt_index *idx);

#endif
