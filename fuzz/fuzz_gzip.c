/* libFuzzer harness: Content-Encoding bodies (patient_gzip_decode) with a
 * 1 MiB cap and with a tiny one; what decodes must survive an
 * encode/decode round trip; the streaming decoder, fed in pieces, must
 * judge and decode exactly as the whole-body one. */
#include "config.h"

#include <limits.h>

#include <patient/gzip.h>

#include "common.h"

#define CAP (1u << 20)

struct acc {
    uint8_t *p;
    size_t len;
};

static patient_err
acc_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct acc *a = ctx;

    if (n > CAP - a->len)
        return PATIENT_ERR_TOO_LARGE; /* the same cap as the whole decode */
    memcpy(a->p + a->len, p, n);
    a->len += n;
    return PATIENT_OK;
}

/* Fed in pieces of 1..61 bytes (chosen by the input's length). */
static patient_err
stream_decode(const uint8_t *data, size_t size, struct acc *a)
{
    patient_gzip_dec *d = NULL;
    size_t piece = 1 + size % 61, off = 0;
    patient_err err;

    if (patient_gzip_dec_new(0, &d) != PATIENT_OK)
        abort();
    do {
        size_t n = size - off < piece ? size - off : piece;
        err = patient_gzip_dec_feed(d, data + off, n, off + n == size, acc_sink, a);
        off += n;
    } while (err == PATIENT_OK && off < size);
    patient_gzip_dec_free(d);
    return err;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL, *z = NULL, *back = NULL;
    size_t out_len = 0, z_len = 0, back_len = 0;
    patient_err err;

    err = patient_gzip_decode(data, size, CAP, &out, &out_len);
    if ((err == PATIENT_OK) != (out != NULL) || out_len > CAP)
        abort();
    if (size > 0 && size <= UINT_MAX) {
        struct acc a = {malloc(CAP), 0};
        if (a.p == NULL || stream_decode(data, size, &a) != err ||
            (err == PATIENT_OK && (a.len != out_len || memcmp(a.p, out, out_len) != 0)))
            abort();
        free(a.p);
    }
    if (out != NULL) {
        if (patient_gzip_encode(out, out_len, &z, &z_len) != PATIENT_OK ||
            patient_gzip_decode(z, z_len, CAP, &back, &back_len) != PATIENT_OK ||
            back_len != out_len || memcmp(back, out, out_len) != 0)
            abort();
        free(z);
        free(back);
        free(out);
        out = NULL;
    }
    err = patient_gzip_decode(data, size, 16, &out, &out_len);
    if ((err == PATIENT_OK) != (out != NULL) || out_len > 16)
        abort();
    free(out);
    return 0;
}
