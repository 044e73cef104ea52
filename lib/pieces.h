/* Bytes as a list of borrowed pieces: a hop's input rebuilt from its
 * output without copying a byte. Undoing a hop only rearranges pointers
 * into the received body and into the descriptors' disclosed deleted
 * bytes; the rebuilt origin bytes are then read once, by the hash. A 5 MB
 * body otherwise costs a fresh 5 MB buffer (page faults and the kernel
 * zeroing it), a copy, and an in-place move per earlier hop.
 * Internal to libpatient (lib/verify*.c, lib/chunk.c). Not thread-safe per
 * object; pieces borrow their bytes, which must outlive the list. */
#ifndef PATIENT_PIECES_H
#define PATIENT_PIECES_H

#include <stddef.h>
#include <stdint.h>
#include <patient/change.h>
#include <patient/error.h>
#include <patient/hash.h>

typedef struct pt_piece {
    const uint8_t *p; /* NULL: withheld bytes, whose value nobody has */
    size_t len;       /* > 0 */
    int owner;        /* -1: ordinary bytes; else a hole: the 0-based hop
                         whose withheld deletion these bytes are (p may then
                         still point at them, for the hop that withheld them) */
    int body;         /* 1: p is in the address range standing for a body
                         that streams (pt_pieces_add_body): only its offset
                         there means anything, its bytes are never read */
} pt_piece;

typedef struct pt_pieces {
    pt_piece *v;
    size_t n, cap;
    size_t len; /* total bytes */
} pt_pieces;

/* A reading position in a list of pieces: piece i, at bytes into it. The
 * one cursor of every reader of pieces (undoing, the streamed body checks
 * and the walk they feed, line and column); pt_chunk_walk_pieces reads
 * v[] whole pieces at a time and needs none. */
typedef struct pt_pcur {
    const pt_pieces *s;
    size_t i, at;
} pt_pcur;

/* Bytes of the current piece from the cursor on, at most n (0 at the
 * end). */
static inline size_t
pt_pcur_run(const pt_pcur *c, size_t n)
{
    size_t left = c->i < c->s->n ? c->s->v[c->i].len - c->at : 0;
    return left < n ? left : n;
}

/* Step over k bytes of the current piece (at most what pt_pcur_run
 * gave): past its end, the cursor is at the next piece's start. */
static inline void
pt_pcur_step(pt_pcur *c, size_t k)
{
    if ((c->at += k) == c->s->v[c->i].len) {
        c->i++;
        c->at = 0;
    }
}

/* A list of one piece, p[0, len), in *one (nothing to free). */
static inline pt_pieces
pt_pieces_one(pt_piece *one, const uint8_t *p, size_t len)
{
    *one = (pt_piece){p, len, -1, 0};
    return (pt_pieces){one, len > 0, 1, len};
}

void pt_pieces_free(pt_pieces *s);
/* Append len bytes at p (NULL only for a hole: owner >= 0); merged with
 * the last piece when they continue it. len 0: nothing. */
patient_err pt_pieces_add(pt_pieces *s, const uint8_t *p, size_t len, int owner);
/* pt_pieces_add of ordinary bytes at p that stand for a streamed body's
 * (verify_stream.h), marked body. A piece of the body and one of other
 * bytes never merge, even where their addresses meet (a descriptor's
 * deleted bytes could end where the range starts): a merged piece would
 * be read as memory across the range. */
patient_err pt_pieces_add_body(pt_pieces *s, const uint8_t *p, size_t len);

/* Rebuild hop c's input from its output `out` (out->len must be
 * c->out.size, else HASH): kept bytes are borrowed from out, disclosed
 * deletions from the descriptor, a withheld deletion becomes a hole owned
 * by `owner`; holes in kept bytes move with them, holes in inserted bytes
 * vanish with those bytes. With check_insert, inserted bytes outside holes
 * must be where the edits say (HASH; in pieces marked body, which cannot
 * be read: STATE). The input's size must be c->in.size (HASH). *in is
 * emptied first; the caller frees it. */
patient_err pt_pieces_undo(const patient_change *c, unsigned owner, const pt_pieces *out,
                           int check_insert, pt_pieces *in);

/* A deferred comparison (pt_pieces_undo_defer): body bytes [off, off+len)
 * must be want[0, len), inserted by hop `hop`. */
typedef struct pt_defer {
    size_t off, len;
    const uint8_t *want;
    unsigned hop;
} pt_defer;

typedef struct pt_defers {
    pt_defer *v;
    size_t n, cap;
} pt_defers;

/* pt_pieces_undo with check_insert, except that inserted bytes lying in
 * the body (pieces marked body, at offsets from base; len: the body's
 * length) are not read (they may not have arrived: the body streams, and
 * base is only an address range standing for it) but appended to *d, to be compared as the body passes
 * (verify_stream.h). Inserted bytes elsewhere (a later hop's disclosed
 * deletion) are compared now. */
patient_err pt_pieces_undo_defer(const patient_change *c, unsigned owner, const pt_pieces *out,
                                 const uint8_t *base, size_t len, pt_defers *d, pt_pieces *in);

/* Copy the bytes to dst (room for s->len), zeros where there are none. */
void pt_pieces_copy(const pt_pieces *s, uint8_t *dst);

/* The bytes that tell text from binary: a NUL among the first
 * PT_TEXT_PROBE bytes of a hop's input means binary, whose edits are not
 * placed by line and column (docs/format/report.md). */
#define PT_TEXT_PROBE 4096u

/* 1 when the first PT_TEXT_PROBE bytes (those there are) hold no NUL:
 * text, worth placing by line and column. */
int pt_pieces_looks_text(const pt_pieces *s);

/* Line and column (1-based; columns count UTF-8 characters) of byte
 * offsets, in one pass when they come in increasing order (an offset
 * before the last one, or another s than *lc was counting, starts again
 * from the top): start with *lc zeroed. A hole counts as bytes without
 * newlines (one character per byte). off past the end: the end. */
typedef struct pt_linecol {
    pt_pcur c;  /* the next byte to count */
    size_t pos; /* its absolute position */
    long long line, col;
} pt_linecol;
void pt_pieces_line_col(const pt_pieces *s, pt_linecol *lc, size_t off, long long *line,
                        long long *column);
/* Step a line and column over k bytes at p (NULL: a hole, k characters
 * without newlines): the counting pt_pieces_line_col does. */
void pt_linecol_run(long long *line, long long *col, const uint8_t *p, size_t k);

#endif
