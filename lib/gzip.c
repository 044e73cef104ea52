/* gzip / zlib / raw deflate decoding with a hard output cap, and gzip
 * encoding, via zlib. */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <patient/change.h>
#include <patient/gzip.h>

/* zlib counts in uInt: feed it at most this much at a time. */
#define ZCHUNK ((size_t)1 << 30)

static int
is_gzip(const uint8_t *p, size_t n)
{
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

static int
is_zlib(const uint8_t *p, size_t n)
{
    return n >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && ((p[0] << 8) | p[1]) % 31 == 0;
}

/* ---- streaming decode ---------------------------------------------- */

enum dec_state {
    DEC_START, /* nothing decided: the first two bytes pick the format */
    DEC_BODY,  /* inside a stream */
    DEC_ENDED, /* a stream ended: only another gzip member may follow */
    DEC_FAILED
};

struct patient_gzip_dec {
    z_stream z;
    int inited;
    enum dec_state state;
    patient_err failed;   /* DEC_FAILED: returned by every later call */
    uint8_t head[2];      /* START/ENDED: up to two bytes not yet judged */
    size_t nhead;
    unsigned max_ratio;
    uint64_t total_in, total_out;
    uint8_t piece[PATIENT_GZIP_PIECE];
};

patient_err
patient_gzip_dec_new(unsigned max_ratio, patient_gzip_dec **out)
{
    patient_gzip_dec *d;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if ((d = calloc(1, sizeof *d)) == NULL)
        return PATIENT_ERR_NOMEM;
    d->max_ratio = max_ratio;
    *out = d;
    return PATIENT_OK;
}

void
patient_gzip_dec_free(patient_gzip_dec *d)
{
    if (d == NULL)
        return;
    if (d->inited)
        inflateEnd(&d->z);
    free(d);
}

uint64_t
patient_gzip_dec_total_in(const patient_gzip_dec *d)
{
    return d ? d->total_in : 0;
}

uint64_t
patient_gzip_dec_total_out(const patient_gzip_dec *d)
{
    return d ? d->total_out : 0;
}

static patient_err
dec_fail(patient_gzip_dec *d, patient_err err)
{
    d->state = DEC_FAILED;
    d->failed = err;
    return err;
}

/* Start (or restart, for a following gzip member) a stream whose first
 * bytes are p[0..n). */
static patient_err
dec_begin(patient_gzip_dec *d, const uint8_t *p, size_t n)
{
    /* 15+32: gzip or zlib by header; otherwise raw deflate (-15). A
     * member after the first must be gzip. */
    int wbits = d->state == DEC_ENDED || is_gzip(p, n) || is_zlib(p, n) ? 15 + 32 : -15;

    if (d->state == DEC_ENDED && !is_gzip(p, n))
        return dec_fail(d, PATIENT_ERR_GZIP);
    if (!d->inited) {
        memset(&d->z, 0, sizeof d->z);
        if (inflateInit2(&d->z, wbits) != Z_OK)
            return dec_fail(d, PATIENT_ERR_NOMEM);
        d->inited = 1;
    } else if (inflateReset2(&d->z, wbits) != Z_OK) {
        return dec_fail(d, PATIENT_ERR_GZIP);
    }
    d->state = DEC_BODY;
    return PATIENT_OK;
}

/* Inflate p[0..n) inside a stream; stops early at the end of the stream
 * (*used tells how much was taken). */
static patient_err
dec_run(patient_gzip_dec *d, const uint8_t *p, size_t n, size_t *used, patient_gzip_sink sink,
        void *ctx)
{
    patient_err err;
    int zr;

    *used = 0;
    d->z.next_in = (Bytef *)(uintptr_t)p;
    d->z.avail_in = 0;
    for (;;) {
        size_t before_in, produced;
        if (d->z.avail_in == 0 && *used < n) {
            size_t k = n - *used < ZCHUNK ? n - *used : ZCHUNK;
            d->z.next_in = (Bytef *)(uintptr_t)(p + *used);
            d->z.avail_in = (uInt)k;
        }
        before_in = d->z.avail_in;
        d->z.next_out = d->piece;
        d->z.avail_out = sizeof d->piece;
        zr = inflate(&d->z, Z_NO_FLUSH);
        *used += before_in - d->z.avail_in;
        d->total_in += before_in - d->z.avail_in;
        produced = sizeof d->piece - d->z.avail_out;
        d->total_out += produced;
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
            return dec_fail(d, zr == Z_MEM_ERROR ? PATIENT_ERR_NOMEM : PATIENT_ERR_GZIP);
        /* The bomb cap, before the sink sees (and pays for) the bytes. */
        if (d->max_ratio && d->total_out > PATIENT_GZIP_RATIO_FLOOR &&
            d->total_out > (uint64_t)d->max_ratio * d->total_in)
            return dec_fail(d, PATIENT_ERR_TOO_LARGE);
        if (produced && (err = sink(ctx, d->piece, produced)) != PATIENT_OK)
            return dec_fail(d, err);
        if (zr == Z_STREAM_END) {
            d->state = DEC_ENDED;
            d->nhead = 0;
            return PATIENT_OK;
        }
        /* More output pending needs another round; otherwise all input
         * taken (zlib keeps what it cannot use yet in its own state). */
        if (d->z.avail_out == 0)
            continue;
        if (d->z.avail_in == 0 && *used == n)
            return PATIENT_OK;
    }
}

patient_err
patient_gzip_dec_feed(patient_gzip_dec *d, const uint8_t *in, size_t len, int eof,
                      patient_gzip_sink sink, void *ctx)
{
    static const uint8_t none[1];
    patient_err err;
    size_t used;

    if (d == NULL || sink == NULL || (in == NULL && len))
        return PATIENT_ERR_ARG;
    /* The end may come as (NULL, 0); NULL + 0 is undefined (C11 6.5.6,
     * clang's UBSan says so), and the loop below steps in by what it took. */
    if (in == NULL)
        in = none;
    if (d->state == DEC_FAILED)
        return d->failed;
    while (len > 0 || (d->nhead > 0 && eof)) {
        if (d->state == DEC_START || d->state == DEC_ENDED) {
            /* Two bytes decide the format (or whether a member follows):
             * keep a lone first byte until the next one arrives. */
            uint8_t h[2];
            size_t take = 0;
            while (d->nhead < 2 && take < len)
                d->head[d->nhead++] = in[take++];
            in += take;
            len -= take;
            if (d->nhead < 2 && !eof)
                return PATIENT_OK;
            memcpy(h, d->head, d->nhead);
            if ((err = dec_begin(d, h, d->nhead)) != PATIENT_OK)
                return err;
            {
                size_t nh = d->nhead;
                d->nhead = 0;
                if ((err = dec_run(d, h, nh, &used, sink, ctx)) != PATIENT_OK)
                    return err;
                if (used < nh) /* a stream that ended inside its first two bytes */
                    return dec_fail(d, PATIENT_ERR_GZIP);
            }
            continue;
        }
        if ((err = dec_run(d, in, len, &used, sink, ctx)) != PATIENT_OK)
            return err;
        in += used;
        len -= used;
    }
    if (eof && d->state != DEC_ENDED)
        return dec_fail(d, PATIENT_ERR_GZIP); /* truncated, or no stream at all */
    return PATIENT_OK;
}

/* ---- whole-body decode, on top of the streaming one ------------------- */

struct grow {
    uint8_t *buf;
    size_t len, cap, max;
};

static patient_err
grow_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct grow *g = ctx;

    if (n > g->max - g->len)
        return PATIENT_ERR_TOO_LARGE; /* stops decoding at the cap */
    if (g->len + n > g->cap) {
        size_t ncap = g->cap;
        uint8_t *nb;
        while (ncap < g->len + n)
            ncap = ncap > g->max / 2 ? g->max : ncap * 2;
        if ((nb = realloc(g->buf, ncap)) == NULL)
            return PATIENT_ERR_NOMEM;
        g->buf = nb;
        g->cap = ncap;
    }
    memcpy(g->buf + g->len, p, n);
    g->len += n;
    return PATIENT_OK;
}

patient_err
patient_gzip_decode(const uint8_t *in, size_t len, size_t max_out, uint8_t **out,
                    size_t *out_len)
{
    patient_gzip_dec *d = NULL;
    struct grow g = {0};
    patient_err err;

    if (out == NULL || out_len == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    *out_len = 0;
    if (in == NULL && len)
        return PATIENT_ERR_ARG;
    if (max_out == 0)
        max_out = PATIENT_MAX_BODY;
    if (len == 0 || len > UINT_MAX)
        return len == 0 ? PATIENT_ERR_GZIP : PATIENT_ERR_TOO_LARGE;
    /* Start near a typical ratio; the sink doubles, never past max_out. */
    g.max = max_out;
    g.cap = len < max_out / 4 ? len * 4 : max_out;
    if (g.cap < 4096)
        g.cap = max_out < 4096 ? max_out : 4096;
    if ((g.buf = malloc(g.cap)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = patient_gzip_dec_new(0, &d)) != PATIENT_OK)
        goto out;
    if ((err = patient_gzip_dec_feed(d, in, len, 1, grow_sink, &g)) != PATIENT_OK)
        goto out;
    *out = g.buf;
    *out_len = g.len;
    g.buf = NULL;
out:
    patient_gzip_dec_free(d);
    free(g.buf);
    return err;
}

/* ---- streaming encode ---------------------------------------------- */

struct patient_gzip_enc {
    z_stream z;
    int finished;
    uint8_t piece[PATIENT_GZIP_PIECE];
};

patient_err
patient_gzip_enc_new(int level, patient_gzip_enc **out)
{
    patient_gzip_enc *e;

    if (out == NULL || level < -1 || level > 9)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if ((e = calloc(1, sizeof *e)) == NULL)
        return PATIENT_ERR_NOMEM;
    if (deflateInit2(&e->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(e);
        return PATIENT_ERR_NOMEM;
    }
    *out = e;
    return PATIENT_OK;
}

void
patient_gzip_enc_free(patient_gzip_enc *e)
{
    if (e == NULL)
        return;
    deflateEnd(&e->z);
    free(e);
}

patient_err
patient_gzip_enc_feed(patient_gzip_enc *e, const uint8_t *in, size_t len, int flush,
                      patient_gzip_sink sink, void *ctx)
{
    static const uint8_t none[1];
    patient_err err;
    size_t used = 0;
    int zf = flush == PATIENT_GZIP_FINISH ? Z_FINISH
             : flush == PATIENT_GZIP_SYNC ? Z_SYNC_FLUSH
                                          : Z_NO_FLUSH;

    if (e == NULL || sink == NULL || (in == NULL && len) || flush < PATIENT_GZIP_MORE ||
        flush > PATIENT_GZIP_FINISH)
        return PATIENT_ERR_ARG;
    if (e->finished)
        return PATIENT_ERR_STATE;
    e->z.next_in = (Bytef *)(uintptr_t)(in ? in : none);
    e->z.avail_in = 0;
    for (;;) {
        int zr, last;
        size_t before_in, produced;
        if (e->z.avail_in == 0 && used < len) {
            size_t k = len - used < ZCHUNK ? len - used : ZCHUNK;
            e->z.next_in = (Bytef *)(uintptr_t)(in + used);
            e->z.avail_in = (uInt)k;
        }
        /* The flush applies only once zlib holds the last of the input. */
        last = used + e->z.avail_in == len;
        before_in = e->z.avail_in;
        e->z.next_out = e->piece;
        e->z.avail_out = sizeof e->piece;
        zr = deflate(&e->z, last ? zf : Z_NO_FLUSH);
        used += before_in - e->z.avail_in;
        produced = sizeof e->piece - e->z.avail_out;
        if (zr == Z_STREAM_ERROR)
            return PATIENT_ERR_GZIP;
        if (produced && (err = sink(ctx, e->piece, produced)) != PATIENT_OK)
            return err;
        if (zr == Z_STREAM_END) {
            e->finished = 1;
            return PATIENT_OK;
        }
        /* Done when all input is in and zlib had room to spare (a full
         * piece may mean more is pending). */
        if (used == len && e->z.avail_in == 0 && e->z.avail_out > 0 && zf != Z_FINISH)
            return PATIENT_OK;
    }
}

patient_err
patient_gzip_encode(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream z;
    uint8_t *buf = NULL;
    uLong bound;
    patient_err err = PATIENT_ERR_GZIP;

    if (out == NULL || out_len == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    *out_len = 0;
    if (in == NULL && len)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_MAX_BODY)
        return PATIENT_ERR_TOO_LARGE;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return PATIENT_ERR_NOMEM;
    /* deflateBound does not count the gzip wrapper's extra 12 bytes. */
    bound = deflateBound(&z, (uLong)len) + 32;
    if ((buf = malloc(bound)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    z.next_in = (Bytef *)(uintptr_t)(in ? in : (const uint8_t *)"");
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        goto out;
    *out = buf;
    *out_len = (size_t)(bound - z.avail_out);
    buf = NULL;
    err = PATIENT_OK;
out:
    deflateEnd(&z);
    free(buf);
    return err;
}
