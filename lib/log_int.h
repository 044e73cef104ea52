/* Private to the audit log files (log_read.c, log_write.c, log_verify.c,
 * log_proof.c): the line reader, the entry scanner and the helpers they
 * share. Format contract: docs/format/log.md. Never installed. */
#ifndef PATIENT_LOG_INT_H
#define PATIENT_LOG_INT_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include <patient/change.h>
#include <patient/jws.h>
#include <patient/log.h>
#include <patient/time.h>
#include "change_int.h"
#include "merkle.h"
#include "util.h"

#define HASH_LEN PATIENT_SHA256_BYTES
#define HEX_LEN (2 * HASH_LEN)
#define CKPT_TYP "patient-checkpoint+jws"
#define READ_CHUNK (1u << 20)

/* seq 0's "prev": 64 zeros. */
extern const char zero_prev[HEX_LEN + 1];

/* Streaming line reader (pread, so it shares an O_APPEND fd). */
typedef struct {
    int fd;
    uint8_t *buf;
    size_t cap, start, end;
    uint64_t buf_off; /* file offset of buf[0] */
    int eof;
} lreader;

patient_err lr_init(lreader *r, int fd, uint64_t off);
void lr_free(lreader *r);
/* Next line (without its newline) or *line NULL at the end; *nl 0 for a
 * last line without a newline (torn append); *off its file offset. */
patient_err lr_next(lreader *r, uint8_t **line, size_t *len, int *nl, uint64_t *off);
/* Open a regular file for reading, refusing symlinks. */
patient_err open_read(const char *path, int *fd);

/* Append s as a JSON string, in the log's escapes (pt_buf_put_json_strn
 * without flags). */
patient_err json_str(pt_buf *b, const char *s);
/* The same for the first len bytes of s, or up to its NUL if sooner (a
 * line of the log, not NUL-terminated, quoted without a copy). */
patient_err json_strn(pt_buf *b, const char *s, size_t len);
/* A non-negative integer member; -1 when absent or not one. */
int get_u64(const cJSON *o, const char *key, uint64_t *out);
/* A checkpoint line's "sig" (NUL-terminated): the JWS, typ CKPT_TYP, and
 * its payload parsed, neither verified nor compared with the line. OK,
 * PATIENT_ERR_NOMEM (which says nothing about the log), or
 * PATIENT_ERR_PARSE for anything else; on failure *jws and *payload are
 * NULL. Caller frees with patient_jws_free and cJSON_Delete. */
patient_err pt_checkpoint_sig_read(const char *sig, patient_jws **jws, cJSON **payload);

/* The fields a change entry denormalises from its descriptor, read by the
 * one descriptor parser (patient_change_parse): a log accepts exactly the
 * descriptors a verifier does. Pointers borrow from c. */
typedef struct {
    patient_change *c;
    const char *url, *by_name;
    char at[PATIENT_TIME_BYTES]; /* the descriptor's "at" in the canonical form */
    char kid[PATIENT_KEYID_HEX];
    long long hop;
    size_t n;
    const char **reasons, **rules;
    uint64_t deleted, inserted;
    /* the descriptor's upstream TLS as one string: "TLSv1.3 CIPHER verified"
     * (or "unverified"), "none" (plain HTTP upstream); "" when not recorded */
    char tls[PT_ENTRY_TLS_MAX];
    /* the entry's line at any seq (pt_change_entry_len), when the source
     * counted it already (the hop that signed); 0: the writer counts it */
    size_t entry_len;
} chfields;

void chfields_free(chfields *f);
/* Parse a descriptor value (compact JWS) into f. The errors of
 * patient_change_parse, and those of chfields_start. */
patient_err chfields_from_value(const char *value, chfields *f);
/* The one home of the limits a change entry puts on its descriptor, for
 * whichever source fills f (a parsed descriptor, or the hop that signed
 * it): PATIENT_ERR_TOO_LARGE for a URL over PATIENT_LOG_URL_MAX,
 * PATIENT_ERR_LIMIT over PATIENT_LOG_EDITS_MAX edits. Sets url, by_name,
 * hop and n, and the arrays for n edits (NOMEM), which chfields_edit then
 * fills, edit i of the descriptor's order at a time. */
patient_err chfields_start(chfields *f, const char *url, const char *by_name, long long hop,
                           size_t n);
void chfields_edit(chfields *f, size_t i, const patient_edit *e);
/* f->tls, the upstream TLS in the entry's one-string form, from a
 * descriptor's "tls" (version NULL: none recorded). */
void chfields_tls(chfields *f, const char *version, const char *cipher, int verified);

/* The same fields of the descriptor a hop just signed (patient_hop_finish
 * or _finish_output), from the hop itself (pt_hop_signed_get): a writer
 * that built the descriptor need not parse it again. The same limits as
 * chfields_from_value; STATE when the hop signed nothing. Pointers borrow
 * from the hop; *value is the descriptor. */
patient_err chfields_from_hop(const patient_hop *hop, chfields *f, const char **value);

/* One parsed entry line (see pentry_parse in log_read.c). */
typedef struct {
    /* owned, reused from line to line */
    char *copy;
    size_t copy_cap;
    const char **reasons, **rules;
    size_t reasons_cap, rules_cap;
    /* fields of the current line (pointers into copy) */
    size_t n_reasons, n_rules;
    uint64_t seq;
    const char *prev, *time, *kind_s;
    patient_log_kind kind;
    const char *url, *by_name, *by_kid, *jws;
    size_t jws_len; /* strlen(jws) */
    const char *tls; /* change: NULL when the line has no "tls" */
    long long hop;
    uint64_t deleted, inserted;
    uint64_t tree_size;
    const char *root_b64, *sig;
    const char *event, *detail;
    const char *why; /* what is malformed */
} pentry;

void pentry_free(pentry *e);
patient_err pentry_parse(const uint8_t *line, size_t len, pentry *e);
/* May the line be a checkpoint? It holds "checkpoint" or a "\u" escape
 * (which could spell it): the cheap test before pentry_parse decides, for
 * the passes that only need the checkpoints. The "\u" by memchr on the
 * backslashes (there are few): glibc's memmem takes a two-byte needle a
 * byte at a time, three times memchr's cost over a whole log. */
static inline int
pt_line_maybe_checkpoint(const uint8_t *line, size_t len)
{
    const uint8_t *p = line, *end = line + len;

    if (memmem(line, len, "checkpoint", 10) != NULL)
        return 1;
    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL && end - p > 1) {
        if (p[1] == 'u')
            return 1;
        p++;
    }
    return 0;
}
/* 0: pentry_parse reads strings 32 bytes a step (SSE2) even where the CPU
 * has AVX-512 (64 a step); -1, the default, as the CPU allows. For the
 * tests, which read the same lines both ways; set it before any thread
 * parses. */
extern int pt_scan_wide;
/* The iterator's reading of one line of len bytes (without its "\n")
 * numbered line_no: PATIENT_ERR_LOG_CORRUPT (pe->why says what) when it is
 * not an entry. o->raw is line; o's other pointers go into pe, valid until
 * its next use. */
patient_err pt_log_entry_read(pentry *pe, const uint8_t *line, size_t len, uint64_t line_no,
                              patient_log_entry *o);
/* An entry's "time" as every reader of the log takes it (RFC 3339 UTC as
 * pt_time_parse_rfc3339 reads it, not "@EPOCH"; the log's own form without
 * strptime): PATIENT_ERR_PARSE when it is not one. */
patient_err pt_log_time_parse(const char *t, time_t *out);
/* The same entry from a line pentry_parse already accepted into pe:
 * members by kind (the others NULL / 0), and PATIENT_ERR_LOG_CORRUPT when
 * the time does not read as one. Everything that hands entries over (the
 * monitor's callback too) fills them here, so all give the same. */
patient_err pt_log_entry_fill(const pentry *pe, const uint8_t *line, size_t len, uint64_t line_no,
                              patient_log_entry *o);

/* RFC 9162 leaf hash of one line, through a reusable scratch buffer. */
patient_err scratch_leaf(uint8_t **scratch, size_t *cap, const uint8_t *line, size_t len,
                         uint8_t out[HASH_LEN]);

/* ---- Bulk reading (log_scan.c) ---------------------------------------- */

/* What a line needs from its neighbours' point of view, computed away from
 * them (on any core). parsed: pentry_parse accepted the line and it is a
 * change or an event (checkpoints and bad lines are left to the caller). */
/* Bytes of a descriptor's key in the monitor's index (tlog_index.c). */
#define PT_INDEX_KEY 16

typedef struct {
    uint8_t chain[HASH_LEN]; /* SHA-256 of the line: the next line's prev */
    uint8_t leaf[HASH_LEN];  /* its RFC 9162 leaf hash */
    uint64_t seq;
    char prev[HEX_LEN + 1];
    patient_log_kind kind;
    int parsed, hash_err;
    uint8_t key[PT_INDEX_KEY]; /* a change's pt_index_key */
    /* LS_SUBTREE, on the first line of each group of LS_SUB lines the
     * workers handed out whole: sub_ok when all of them hashed and are
     * parsed, and sub their MTH (the subtree they make in a tree where the
     * group starts at a multiple of LS_SUB). */
    int sub_ok;
    uint8_t sub[HASH_LEN];
} lineinfo;

/* An entry bundle whose lines a batch takes (lb_set_bundles): the scan
 * workers split it in place (pt_bundle_split: each "\n" becomes NUL) and
 * hash and scan its lines in the same pass, so the reading thread does
 * not go over its bytes once more. */
typedef struct {
    char *body; /* BORROWED: its bytes until the batch is done with */
    size_t len;
    unsigned have, w; /* lines it must hold; the first w are the batch's */
    size_t first;     /* the batch's line of its first */
    int split_ok;     /* the workers': it is exactly have lines */
    int split_done;   /* the pool's: split (split_ok says how), its lines set */
} lbundle;

/* Whole lines read with one pread loop: line[i] (len[i] bytes, without the
 * newline) points into buf until the next lb_read. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    const uint8_t **line;
    size_t *len;
    lineinfo *info;
    size_t n, ncap;
    uint64_t off, next_off; /* file offset of buf[0]; where the next batch starts */
    int torn;     /* the last line has no newline: the file ends in it */
    int too_long; /* a line over PATIENT_LOG_LINE_MAX follows the n lines */
    int eof;      /* nothing after these lines */
    lbundle *bun; /* lb_set_bundles: the lines are theirs, split by the workers */
    size_t nbun;
} lbatch;

/* cap 0: no buffer, for lines that live elsewhere (lb_add). */
patient_err lb_init(lbatch *b, size_t cap);
patient_err lb_add(lbatch *b, const uint8_t *line, size_t len);
void lb_free(lbatch *b);
patient_err lb_read(lbatch *b, int fd, uint64_t off);
uint64_t lb_line_off(const lbatch *b, size_t i);
/* The batch's lines are those of the nb bundles bun (BORROWED until the
 * batch's job is done): n is their w's sum, each one's first set; the
 * workers split them, a bundle each (when there are fewer bundles than
 * workers, each bundle is split by one of them first and the lines are
 * shared out in slices as their bundles are split);
 * lineinfo is valid for a bundle's lines only where its split_ok is set.
 * nb 0: lines come from lb_add or lb_read again. */
patient_err lb_set_bundles(lbatch *b, lbundle *bun, size_t nb);

/* What the workers compute for each line: always the leaf hash; LS_CHAIN
 * the line's own SHA-256 too, LS_SCAN the entry scan (lineinfo.parsed). */
#define LS_CHAIN 1u
#define LS_SCAN 2u
/* With LS_SCAN: each group of LS_SUB lines (from line 0 of the batch)
 * hashed into its subtree root as well (lineinfo.sub), 16 node hashes at
 * a time where the CPU has AVX-512; the caller adds the group to its tree
 * at once (pt_tiles_add_sub). */
#define LS_SUBTREE 4u
#define LS_SUB_HEIGHT 6u
#define LS_SUB (1u << LS_SUB_HEIGHT)

/* Workers that fill a batch's info[]. One job at a time: lpool_start
 * returns at once (or, on a one-core machine, after doing the work
 * itself), lpool_wait until it is done. */
typedef struct lpool lpool;
patient_err lpool_new(lpool **out);
/* lpool_new with nth workers instead of one per core (at most 8): for
 * tests of more workers than a machine has cores. */
patient_err lpool_new_n(lpool **out, unsigned nth);
void lpool_start(lpool *p, lbatch *b, unsigned what);
void lpool_wait(lpool *p);
void lpool_free(lpool *p);

/* A log file in batches of LS_BATCH bytes, two of them: while the workers
 * fill one, the caller's thread reads the next, then gets the first from
 * ls_next to go through its lines in order. ls_close always (it waits for
 * the workers). The size is the least that always holds a whole line:
 * larger batches (8 MiB) measured ~7% more CPU for verify and 40% more for
 * a consistency proof (the lines are out of the caches when hashed). */
#define LS_BATCH (2u * (PATIENT_LOG_LINE_MAX + 1u))
typedef struct {
    lbatch bt[2];
    lpool *pool;
    int fd, cur, more;
    unsigned what;
} lscan;
patient_err ls_open(lscan *s, int fd, unsigned what);
/* The next batch with its info[], valid until the next call; *b NULL
 * after the last. */
patient_err ls_next(lscan *s, lbatch **b);
void ls_close(lscan *s);

/* The grouping a counter was made with (log_tally.c), for its renderers
 * (log_report.c). */
patient_log_tally_by pt_log_tally_by(const patient_log_tally *c);

#endif
