/* libFuzzer harness: what a monitor reads besides notes. The first byte
 * picks the reader: 0 the monitor state file (pt_mstate_parse: a state
 * that parses has a frontier hashing to its root and partial tiles of the
 * widths its size implies), 1 an entry bundle (pt_bundle_split with the
 * width in the second byte, then each line through the log's entry
 * parser), 2 a consistency proof (patient_consistency_parse then
 * _verify: only the documented codes), 3 hash tiles: the rest is a tile of
 * up to 256 hashes; every aligned subtree range of it hashes the same
 * through pt_merkle_range_hash as through pt_merkle_root; 4 logged-change
 * evidence (patient_log_evidence_check): the descriptor up to the first
 * NUL, the evidence object after it, checked under the test key; only the
 * documented codes, and a code name for each. 255: the monitor's
 * descriptor index (pt_index_parse): every record it yields lies between
 * the header and the last coverage mark. */
#include "config.h"

#include <patient/tlog.h>
#include "log_int.h"
#include "tlog_int.h"

#include "common.h"

static const uint8_t *tile;
static unsigned tile_w;

static patient_err
node(unsigned level, uint64_t index, void *ctx, uint8_t out[32])
{
    uint64_t first = index << level, n = (uint64_t)1 << level;

    (void)ctx;
    if (level > 8 || first + n > tile_w)
        return PATIENT_ERR_ARG;
    return pt_merkle_root((const uint8_t(*)[32])(tile + first * 32), n, out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pt_mstate st;
    uint8_t root[32], a[32], b[32];

    if (size < 1)
        return 0;
    if (data[0] == 0xff) {
        uint8_t *copy = malloc(size - 1 + 1), key[PT_INDEX_KEY];
        pt_index idx;
        size_t pos = 0;
        uint64_t seq;
        if (copy == NULL)
            return 0;
        memcpy(copy, data + 1, size - 1);
        if (pt_index_parse(copy, size - 1, NULL, &idx) != PATIENT_OK) {
            free(copy);
            return 0;
        }
        if (idx.upto <= idx.from || 128 + idx.n * 24 > idx.len)
            abort();
        memcpy(key, copy + 128, PT_INDEX_KEY); /* the first record's key, if any */
        while (pt_index_next(&idx, key, &pos, &seq))
            if (pos > idx.n)
                abort();
        pt_index_free(&idx);
        return 0;
    }
    switch (data[0] % 5) {
    case 0:
        if (pt_mstate_parse(data + 1, size - 1, &st) == 0) {
            if (pt_merkle_frontier_root(&st.t.fr, root) != PATIENT_OK ||
                memcmp(root, st.root, 32) != 0 || st.t.size != st.t.fr.size)
                abort();
            for (unsigned L = 0; L < PT_TILE_LEVELS; L++)
                if (st.t.w[L] != (L * 8 < 64 ? (st.t.size >> (8 * L)) % 256 : 0))
                    abort();
        }
        break;
    case 1: {
        char *copy, *lines[256];
        size_t lens[256];
        unsigned w;
        pentry e;
        if (size < 2)
            return 0;
        w = data[1] ? data[1] : 256;
        if ((copy = malloc(size - 2 + 1)) == NULL)
            return 0;
        memcpy(copy, data + 2, size - 2);
        memset(&e, 0, sizeof e);
        if (pt_bundle_split(copy, size - 2, w, lines, lens) == 0)
            for (unsigned i = 0; i < w; i++) {
                if (memchr(lines[i], '\n', lens[i]) != NULL || lines[i][lens[i]] != '\0')
                    abort();
                (void)pentry_parse((const uint8_t *)lines[i], lens[i], &e);
            }
        pentry_free(&e);
        free(copy);
        break;
    }
    case 2: {
        patient_consistency p;
        patient_err err;
        if (patient_consistency_parse((const char *)data + 1, size - 1, &p) == PATIENT_OK) {
            err = patient_consistency_verify(&p);
            if (err != PATIENT_OK && err != PATIENT_ERR_HASH && err != PATIENT_ERR_ARG)
                abort();
        }
        break;
    }
    case 3:
        tile = data + 1;
        tile_w = (unsigned)((size - 1) / 32);
        if (tile_w > 256)
            tile_w = 256;
        if (tile_w == 0)
            return 0;
        for (uint64_t lo = 0; lo < tile_w; lo += 1 + lo / 3)
            for (uint64_t hi = lo + 1; hi <= tile_w; hi += 1 + hi / 5) {
                /* only ranges proofs use: an aligned start whose block
                 * covers the range */
                uint64_t blk = 1;
                while (lo % (blk * 2) == 0 && blk * 2 <= 256 && lo + blk < hi)
                    blk *= 2;
                if (lo + blk < hi)
                    continue;
                if (pt_merkle_range_hash(lo, hi, node, NULL, a) != PATIENT_OK ||
                    pt_merkle_root((const uint8_t(*)[32])(tile + lo * 32), hi - lo, b) !=
                        PATIENT_OK ||
                    memcmp(a, b, 32) != 0)
                    abort();
            }
        break;
    case 4: {
        const uint8_t *nul = memchr(data + 1, '\0', size - 1);
        char *jws;
        patient_log_evidence info;
        patient_err err;
        if (nul == NULL || (jws = strndup((const char *)data + 1, (size_t)(nul - data - 1))) == NULL)
            return 0;
        err = patient_log_evidence_check((const char *)nul + 1, size - (size_t)(nul + 1 - data),
                                         jws, fz_pubkey(), &info);
        if (err != PATIENT_OK && err != PATIENT_ERR_NOT_FOUND && err != PATIENT_ERR_SIGNATURE &&
            err != PATIENT_ERR_KEY_MISMATCH && err != PATIENT_ERR_HASH &&
            err != PATIENT_ERR_PARSE && err != PATIENT_ERR_JSON && err != PATIENT_ERR_TOO_LARGE)
            abort();
        if (memchr(info.why, '\0', sizeof info.why) == NULL ||
            strncmp(patient_log_evidence_code(err), "log.", 4) != 0)
            abort();
        free(jws);
        break;
    }
    }
    return 0;
}
