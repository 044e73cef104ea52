/* The audit log, consistency proofs (RFC 9162 §2.1.4): build one between
 * any two tree sizes of a log file, check one, and their JSON form.
 * Format contract: docs/format/log.md ("Consistency proofs"). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <patient/tlog.h>
#include "log_int.h"

patient_err
patient_log_consistency(const char *path, uint64_t old_size, uint64_t new_size,
                        patient_consistency *out)
{
    uint64_t lo[PT_MERKLE_MAX_DEPTH], hi[PT_MERKLE_MAX_DEPTH], i = 0;
    size_t order[PT_MERKLE_MAX_DEPTH], count = 0, cur = 0, k, j;
    pt_merkle_frontier fr, sub;
    lscan ls;
    lbatch *b = NULL;
    size_t bi = 0;
    int fd = -1;
    patient_err err;

    if (path == NULL || out == NULL)
        return PATIENT_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (old_size > new_size)
        return PATIENT_ERR_ARG;
    out->old_size = old_size;
    out->new_size = new_size;
    if ((err = pt_merkle_consistency_ranges(old_size, new_size, lo, hi, &count)))
        return err;
    out->count = count;
    /* The ranges are disjoint: visit them in leaf order, one sub-frontier
     * at a time, while the whole-tree frontier gives both roots. */
    for (k = 0; k < count; k++)
        order[k] = k;
    for (k = 1; k < count; k++)
        for (j = k; j > 0 && lo[order[j - 1]] > lo[order[j]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    memset(&ls, 0, sizeof ls);
    if ((err = open_read(path, &fd)))
        return err;
    /* Only leaf hashes, computed by the workers a batch at a time. */
    if ((err = ls_open(&ls, fd, 0)))
        goto out;
    pt_merkle_frontier_init(&fr);
    pt_merkle_frontier_init(&sub);
    if (old_size == 0 && (err = pt_merkle_frontier_root(&fr, out->old_root)))
        goto out;
    for (i = 0; i < new_size; i++, bi++) {
        const uint8_t *leaf;
        while (b == NULL || bi == b->n) {
            if (b && b->too_long) {
                err = PATIENT_ERR_TOO_LARGE;
                goto out;
            }
            if ((err = ls_next(&ls, &b)))
                goto out;
            if (b == NULL) {
                err = PATIENT_ERR_NOT_FOUND; /* fewer than new_size lines */
                goto out;
            }
            bi = 0;
        }
        if ((b->torn && bi + 1 == b->n) || b->info[bi].hash_err) {
            err = b->info[bi].hash_err ? PATIENT_ERR_CRYPTO : PATIENT_ERR_NOT_FOUND;
            goto out;
        }
        leaf = b->info[bi].leaf;
        if ((err = pt_merkle_frontier_add(&fr, leaf)))
            goto out;
        if (i + 1 == old_size && (err = pt_merkle_frontier_root(&fr, out->old_root)))
            goto out;
        while (cur < count && hi[order[cur]] <= i)
            cur++;
        if (cur < count && lo[order[cur]] <= i) {
            if ((err = pt_merkle_frontier_add(&sub, leaf)))
                goto out;
            if (i == hi[order[cur]] - 1) {
                if ((err = pt_merkle_frontier_root(&sub, out->proof[order[cur]])))
                    goto out;
                pt_merkle_frontier_init(&sub);
            }
        }
    }
    err = pt_merkle_frontier_root(&fr, out->new_root);
out:
    if (err)
        memset(out, 0, sizeof *out);
    ls_close(&ls);
    close(fd);
    return err;
}

patient_err
patient_consistency_verify(const patient_consistency *p)
{
    if (p == NULL || p->count > PATIENT_TLOG_PROOF_MAX)
        return PATIENT_ERR_ARG;
    return pt_merkle_consistency_verify(p->old_size, p->new_size, p->old_root, p->new_root,
                                        (const uint8_t(*)[HASH_LEN])p->proof, p->count);
}

patient_err
patient_consistency_json(const patient_consistency *p, char **json)
{
    pt_buf b = {0};
    char *o = NULL, *n = NULL, *h = NULL;
    size_t i;
    patient_err err;

    *json = NULL;
    if (p->count > PATIENT_TLOG_PROOF_MAX)
        return PATIENT_ERR_ARG;
    if ((err = pt_b64_encode(p->old_root, HASH_LEN, 0, &o)) ||
        (err = pt_b64_encode(p->new_root, HASH_LEN, 0, &n)) ||
        (err = pt_buf_appendf(&b,
                              "{\"version\":1,\"old_size\":%llu,\"new_size\":%llu,"
                              "\"old_root\":\"%s\",\"new_root\":\"%s\",\"proof\":[",
                              (unsigned long long)p->old_size, (unsigned long long)p->new_size, o,
                              n)))
        goto out;
    for (i = 0; i < p->count; i++) {
        free(h);
        h = NULL;
        if ((err = pt_b64_encode(p->proof[i], HASH_LEN, 0, &h)) ||
            (err = pt_buf_appendf(&b, "%s\"%s\"", i ? "," : "", h)))
            goto out;
    }
    if ((err = pt_buf_append(&b, "]}", 3)))
        goto out;
    *json = (char *)b.data;
    b.data = NULL;
out:
    free(o);
    free(n);
    free(h);
    pt_buf_free(&b);
    return err;
}

patient_err
patient_consistency_parse(const char *json, size_t len, patient_consistency *out)
{
    cJSON *p = NULL;
    const cJSON *arr, *x;
    const char *o, *n;
    size_t i = 0;
    long long v;
    patient_err err = PATIENT_ERR_PARSE;

    memset(out, 0, sizeof *out);
    if (json == NULL || len > 16 * 1024)
        return PATIENT_ERR_PARSE;
    if (pt_json_parse(json, len, &p) != PATIENT_OK || !cJSON_IsObject(p) ||
        pt_json_int(p, "version", &v) != 0 || v != 1 ||
        get_u64(p, "old_size", &out->old_size) != 0 ||
        get_u64(p, "new_size", &out->new_size) != 0 ||
        (o = pt_json_str(p, "old_root")) == NULL || (n = pt_json_str(p, "new_root")) == NULL ||
        pt_b64_decode_exact(o, strlen(o), 0, out->old_root, HASH_LEN) != PATIENT_OK ||
        pt_b64_decode_exact(n, strlen(n), 0, out->new_root, HASH_LEN) != PATIENT_OK ||
        !cJSON_IsArray(arr = cJSON_GetObjectItemCaseSensitive(p, "proof")) ||
        cJSON_GetArraySize(arr) > PATIENT_TLOG_PROOF_MAX)
        goto out;
    cJSON_ArrayForEach(x, arr) {
        if (!cJSON_IsString(x) ||
            pt_b64_decode_exact(x->valuestring, strlen(x->valuestring), 0, out->proof[i++],
                                HASH_LEN) != PATIENT_OK)
            goto out;
    }
    out->count = i;
    err = PATIENT_OK;
out:
    if (err)
        memset(out, 0, sizeof *out);
    cJSON_Delete(p);
    return err;
}

/* ---- a tree head as text ------------------------------------------------ */

patient_err
patient_tree_size_parse(const char *s, size_t n, uint64_t *v)
{
    if (s == NULL || v == NULL)
        return PATIENT_ERR_ARG;
    return pt_decimal_parse(s, n, UINT64_MAX, v) == 0 ? PATIENT_OK : PATIENT_ERR_PARSE;
}

patient_err
patient_tree_head_parse(const char *s, uint64_t *size, uint8_t root[PATIENT_SHA256_BYTES])
{
    const char *colon;
    size_t rl;

    if (s == NULL || size == NULL || root == NULL)
        return PATIENT_ERR_ARG;
    colon = strchr(s, ':');
    if (colon == NULL || patient_tree_size_parse(s, (size_t)(colon - s), size) != PATIENT_OK)
        return PATIENT_ERR_PARSE;
    rl = strlen(colon + 1);
    if (rl == 2 * PATIENT_SHA256_BYTES)
        return pt_unhex(colon + 1, root, PATIENT_SHA256_BYTES);
    return pt_b64_decode_exact(colon + 1, rl, 0, root, PATIENT_SHA256_BYTES) == PATIENT_OK
               ? PATIENT_OK
               : PATIENT_ERR_PARSE;
}
