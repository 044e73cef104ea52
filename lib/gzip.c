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

patient_err
patient_gzip_decode(const uint8_t *in, size_t len, size_t max_out, uint8_t **out,
                    size_t *out_len)
{
    z_stream z;
    uint8_t *buf = NULL, *p;
    size_t cap, have = 0;
    int zr, inited = 0;
    patient_err err = PATIENT_ERR_GZIP;

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
    memset(&z, 0, sizeof z);
    /* 15+32: gzip or zlib by header; otherwise raw deflate (-15). */
    if (inflateInit2(&z, is_gzip(in, len) || is_zlib(in, len) ? 15 + 32 : -15) != Z_OK)
        return PATIENT_ERR_NOMEM;
    inited = 1;
    /* Start near a typical ratio; grow by doubling, never past max_out + 1
     * (the extra byte tells "exactly at the cap" from "over it"). */
    cap = len < max_out / 4 ? len * 4 : max_out;
    if (cap < 4096)
        cap = max_out + 1 < 4096 ? max_out + 1 : 4096;
    if ((buf = malloc(cap)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    for (;;) {
        if (have == cap) {
            size_t ncap;
            if (cap > max_out) {
                err = PATIENT_ERR_TOO_LARGE;
                goto out;
            }
            ncap = cap > (max_out + 1) / 2 ? max_out + 1 : cap * 2;
            if ((p = realloc(buf, ncap)) == NULL) {
                err = PATIENT_ERR_NOMEM;
                goto out;
            }
            buf = p;
            cap = ncap;
        }
        z.next_out = buf + have;
        z.avail_out = (uInt)(cap - have < ZCHUNK ? cap - have : ZCHUNK);
        {
            uInt before = z.avail_out;
            zr = inflate(&z, Z_NO_FLUSH);
            have += before - z.avail_out;
        }
        if (have > max_out) {
            err = PATIENT_ERR_TOO_LARGE;
            goto out;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            /* Another gzip member follows (gzip(1) concatenation). */
            if (!is_gzip(z.next_in, z.avail_in) || inflateReset2(&z, 15 + 32) != Z_OK)
                goto out;
            continue;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0 && z.avail_out > 0)
            goto out; /* truncated */
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            err = zr == Z_MEM_ERROR ? PATIENT_ERR_NOMEM : PATIENT_ERR_GZIP;
            goto out;
        }
        if (z.avail_in == 0 && z.avail_out > 0)
            goto out; /* all input consumed, no end of stream: truncated */
    }
    if (have == 0) {
        free(buf);
        if ((buf = malloc(1)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
    }
    *out = buf;
    *out_len = have;
    buf = NULL;
    err = PATIENT_OK;
out:
    if (inited)
        inflateEnd(&z);
    free(buf);
    return err;
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
