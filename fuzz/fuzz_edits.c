/* libFuzzer harness: the edit routine (patient_edits_apply) with edit lists
 * decoded from the input, checked against a simple reference model:
 * the library accepts exactly the lists the model accepts, and produces the
 * same bytes.
 * Input: byte 0 = body length / 4 (body is a fixed pattern), then 6 bytes per
 * edit: offset (16 bits LE; flag bit 7 of the 5th byte adds SIZE_MAX - 0xffff
 * to test overflow), delete_len (8 bits), flags, insert_len (8 bits, taken
 * from a fixed pool; flag bit 0 makes insert NULL). */
#include "config.h"

#include <patient/change.h>

#include "common.h"

#define MAXN 64

static uint8_t body[1024], pool[256];

/* Reference model: 1 and *out filled when the list is valid. */
static int
model(const patient_edit *e, size_t n, size_t len, uint8_t *out, size_t cap, size_t *olen)
{
    size_t i, pos = 0, w = 0;

    for (i = 0; i < n; i++) {
        if (e[i].offset > len || e[i].delete_len > len - e[i].offset)
            return 0;
        if (e[i].delete_len == 0 && e[i].insert_len == 0)
            return 0;
        if (e[i].insert_len > 0 && e[i].insert == NULL)
            return 0;
        if (i > 0 && (e[i].offset < pos || e[i].offset == e[i - 1].offset))
            return 0;
        if (w + (e[i].offset - pos) + e[i].insert_len > cap)
            abort();
        memcpy(out + w, body + pos, e[i].offset - pos);
        w += e[i].offset - pos;
        if (e[i].insert_len)
            memcpy(out + w, e[i].insert, e[i].insert_len);
        w += e[i].insert_len;
        pos = e[i].offset + e[i].delete_len;
    }
    memcpy(out + w, body + pos, len - pos);
    *olen = w + len - pos;
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t expect[1024 + MAXN * 255];
    patient_edit e[MAXN];
    size_t n = 0, len, elen = 0, out_len = 0, i;
    uint8_t *out = NULL;
    patient_err err;
    int ok;

    if (size < 1)
        return 0;
    if (body[1] == 0)
        for (i = 0; i < sizeof body; i++)
            body[i] = (uint8_t)('a' + i % 26), pool[i % 256] = (uint8_t)('A' + i % 26);
    len = (size_t)data[0] * 4;
    data++, size--;
    memset(e, 0, sizeof e);
    while (size >= 6 && n < MAXN) {
        e[n].offset = (size_t)data[0] | (size_t)data[1] << 8;
        if (data[4] & 0x80)
            e[n].offset += SIZE_MAX - 0xffff;
        e[n].delete_len = data[2];
        if (data[4] & 0x40)
            e[n].delete_len += SIZE_MAX - 0xff;
        e[n].insert_len = data[5];
        e[n].insert = (data[4] & 1) ? NULL : pool;
        n++;
        data += 6, size -= 6;
    }
    ok = model(e, n, len, expect, sizeof expect, &elen);
    err = patient_edits_apply(body, len, e, n, &out, &out_len);
    if ((err == PATIENT_OK) != ok)
        abort();
    if (ok && (out == NULL || out_len != elen || memcmp(out, expect, elen) != 0))
        abort();
    free(out);
    return 0;
}
