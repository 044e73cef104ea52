/* Sharded manifests, reading side: which bin a path falls in, the layout
 * a publisher picks, and the lookup that walks from the signed top-level
 * to one leaf, checking each shard against the hash its parent names.
 * Format: docs/format/manifest.md, "Shards". */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <patient/manifest.h>
#include "url_int.h"
#include "util.h"
#include "manifest_int.h"

uint32_t
pt_shard_prefix(const char *path)
{
    uint8_t h[PATIENT_SHA256_BYTES];

    (void)patient_sha256(path, strlen(path), h);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

void
pt_shard_bins(const char *path, const unsigned *bits, unsigned nlevels, unsigned *idx)
{
    uint32_t v = pt_shard_prefix(path);
    unsigned pos = 0;

    /* At most PT_SHARD_MAX_LEVELS * PT_SHARD_MAX_BITS = 24 bits in all. */
    for (unsigned l = 0; l < nlevels; l++) {
        idx[l] = bits[l] ? (unsigned)(v << pos >> (32 - bits[l])) : 0;
        pos += bits[l];
    }
}

int
pt_prev_node_cmp(const void *a, const void *b)
{
    const pt_prev_node *x = a, *y = b;
    if (x->level != y->level)
        return x->level < y->level ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

unsigned
pt_shard_layout(size_t n, unsigned bits[PT_SHARD_MAX_LEVELS])
{
    unsigned total = 0, levels;

    if (n <= PT_SHARD_MIN)
        return 0;
    while (total < PT_SHARD_MAX_BITS * PT_SHARD_MAX_LEVELS &&
           ((size_t)PT_SHARD_TARGET << total) < n)
        total++;
    levels = (total + PT_SHARD_MAX_BITS - 1) / PT_SHARD_MAX_BITS;
    /* Even split, the upper levels taking the odd bit: the top-level and
     * each inner shard stay about the same size. */
    for (unsigned l = 0; l < levels; l++)
        bits[l] = total / levels + (l < total % levels);
    return levels;
}

unsigned
patient_manifest_shard_levels(const patient_manifest *m, unsigned bits[3])
{
    if (m == NULL)
        return 0;
    for (unsigned l = 0; bits && l < m->nlevels; l++)
        bits[l] = m->bits[l];
    return m->nlevels;
}

size_t
patient_manifest_shard_count(const patient_manifest *m)
{
    return m ? m->n_shards : 0;
}

const uint8_t *
patient_manifest_shard_hash(const patient_manifest *m, size_t i)
{
    return m && i < m->n_shards ? m->shards[i] : NULL;
}

/* What bytes that do not hash to the name are, for the report: another
 * bin's shard, this bin's from an older version, or just other bytes.
 * They prove nothing (no parent names them), so this only picks the
 * words; every answer rejects them. */
static patient_shard_problem
classify(const patient_manifest *top, const uint8_t *p, size_t len, const char *bin,
         uint64_t *version)
{
    patient_manifest *x = NULL;
    patient_shard_problem pr = PATIENT_SHARD_HASH;

    if (pt_shard_parse(p, len, &x) != PATIENT_OK)
        return pr;
    if (strcmp(x->origin, top->origin) != 0 || strcmp(x->bin, bin) != 0)
        pr = PATIENT_SHARD_MISPLACED;
    else if (x->version < top->version)
        pr = PATIENT_SHARD_ROLLBACK;
    *version = x->version;
    patient_manifest_free(x);
    return pr;
}

/* A shard in its place: for this origin and bin, at this depth, no newer
 * than the top-level, an inner one with as many children as the next
 * level has bins, a leaf whose every path falls in its bin. */
static int
node_fits(const patient_manifest *top, const patient_manifest *x, unsigned level,
          const unsigned *idx, const char *bin)
{
    int last = level == top->nlevels;

    if (strcmp(x->origin, top->origin) != 0 || strcmp(x->bin, bin) != 0 ||
        x->version > top->version || x->leaf != last)
        return 0;
    if (!last)
        return x->n_shards == ((size_t)1 << top->bits[level]);
    for (size_t i = 0; i < x->n; i++) {
        unsigned j[PT_SHARD_MAX_LEVELS];
        pt_shard_bins(x->res[i].path, top->bits, top->nlevels, j);
        if (memcmp(j, idx, top->nlevels * sizeof *j) != 0)
            return 0;
    }
    return 1;
}

patient_err
patient_manifest_lookup_sharded(const patient_manifest *m, const char *path,
                                patient_shard_get_fn get, void *arg, patient_manifest **leaf,
                                patient_resource *out, patient_shard_info *info)
{
    patient_shard_info own;
    pt_buf c = {0};
    unsigned idx[PT_SHARD_MAX_LEVELS];
    patient_manifest *cur = NULL; /* the shard reached so far (NULL: the top) */
    patient_err err;
    size_t bl = 0;

    if (info == NULL)
        info = &own;
    memset(info, 0, sizeof *info);
    if (leaf == NULL || m == NULL || path == NULL || out == NULL)
        return PATIENT_ERR_ARG;
    *leaf = NULL;
    if (m->nlevels == 0)
        return patient_manifest_lookup(m, path, out);
    if (get == NULL)
        return PATIENT_ERR_ARG;
    if ((err = pt_path_canonical(path, &c)))
        return err;
    pt_shard_bins((const char *)c.data, m->bits, m->nlevels, idx);
    for (unsigned l = 0; l < m->nlevels; l++) {
        const uint8_t *p = NULL, *want = (cur ? cur : m)->shards[idx[l]];
        patient_manifest *nx = NULL;
        size_t len = 0;
        uint8_t h[PATIENT_SHA256_BYTES];

        info->level = l + 1;
        pt_hex(want, 32, info->name);
        bl += (size_t)snprintf(info->bin + bl, sizeof info->bin - bl, "%s%u", l ? "/" : "",
                               idx[l]);
        err = get(arg, info->name, &p, &len);
        if (err == PATIENT_ERR_NOT_FOUND) {
            info->problem = PATIENT_SHARD_WITHHELD;
            err = PATIENT_ERR_HASH;
            goto out;
        }
        if (err)
            goto out;
        info->fetched++;
        if ((err = patient_sha256(p, len, h)))
            goto out;
        err = PATIENT_ERR_HASH;
        if (memcmp(h, want, sizeof h) != 0) {
            info->problem = classify(m, p, len, info->bin, &info->version);
            goto out;
        }
        if (pt_shard_parse(p, len, &nx) != PATIENT_OK || !node_fits(m, nx, l + 1, idx, info->bin)) {
            info->problem = PATIENT_SHARD_MALFORMED;
            patient_manifest_free(nx);
            goto out;
        }
        patient_manifest_free(cur);
        cur = nx;
    }
    err = patient_manifest_lookup(cur, (const char *)c.data, out);
    if (err == PATIENT_OK || err == PATIENT_ERR_NOT_FOUND) {
        *leaf = cur;
        cur = NULL;
    }
out:
    patient_manifest_free(cur);
    pt_buf_free(&c);
    return err;
}
