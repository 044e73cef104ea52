/* The audit log, inclusion proofs: build one for an entry against the
 * latest checkpoint, and check one. Format contract: docs/format/log.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "log_int.h"

/* ---- Inclusion proofs -------------------------------------------------- */

#define PROOF_MAX (64u * 1024)

/* One inclusion proof being built: the latest checkpoint (pass 1), the
 * path's ranges, the path itself from streaming the leaves (pass 2), then
 * the proof rendered once from it. */
typedef struct {
    uint64_t seq, T;          /* the entry; the checkpoint's tree size */
    char log_id[HEX_LEN + 1]; /* hex SHA-256 of the first line */
    char *ck_sig, *ck_root;   /* the latest checkpoint's; malloc'd */
    uint8_t want[HASH_LEN];   /* ck_root decoded */
    uint8_t leaf[HASH_LEN];   /* the entry's Merkle leaf */
    uint8_t path[PT_MERKLE_MAX_DEPTH][HASH_LEN];
    uint64_t lo[PT_MERKLE_MAX_DEPTH], hi[PT_MERKLE_MAX_DEPTH]; /* path[k]: MTH of [lo, hi) */
    size_t order[PT_MERKLE_MAX_DEPTH], count;                  /* ranges by lo */
    int keep_line;                                             /* the caller wants line */
    char *line;      /* the entry's line and "\n", as hashed into leaf; malloc'd */
    size_t line_len; /* without the NUL */
} proof_run;

/* Pass 1: the log id and the latest checkpoint. NOT_FOUND without one, or
 * when the entry is not in its tree. */
static patient_err
proof_checkpoint(int fd, proof_run *r)
{
    lreader rd;
    uint8_t *line, leaf[HASH_LEN];
    uint64_t off, i = 0;
    size_t len;
    int nl;
    pentry e;
    patient_err err;

    memset(&e, 0, sizeof e);
    if ((err = lr_init(&rd, fd, 0)))
        goto out;
    for (;;) {
        if ((err = lr_next(&rd, &line, &len, &nl, &off)))
            goto out;
        if (line == NULL || !nl)
            break;
        if (i++ == 0) {
            if ((err = patient_sha256(line, len, leaf)))
                goto out;
            pt_hex(leaf, HASH_LEN, r->log_id);
        }
        /* Cheap pre-filter; the parse below decides. */
        if (!pt_line_maybe_checkpoint(line, len))
            continue;
        if (pentry_parse(line, len, &e) != PATIENT_OK) {
            err = PATIENT_ERR_LOG_CORRUPT;
            goto out;
        }
        if (e.kind != PATIENT_LOG_KIND_CHECKPOINT)
            continue;
        free(r->ck_sig);
        free(r->ck_root);
        r->ck_root = NULL;
        if ((r->ck_sig = strdup(e.sig)) == NULL || (r->ck_root = strdup(e.root_b64)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        r->T = e.tree_size;
    }
    if (r->ck_sig == NULL || r->seq >= r->T)
        err = PATIENT_ERR_NOT_FOUND;
    else if (pt_b64_decode_exact(r->ck_root, strlen(r->ck_root), 0, r->want, HASH_LEN) !=
             PATIENT_OK)
        err = PATIENT_ERR_LOG_CORRUPT;
out:
    pentry_free(&e);
    lr_free(&rd);
    return err;
}

/* The path's ranges, each element the MTH of one contiguous range of
 * leaves, and their order by first leaf, the order pass 2 meets them in. */
static patient_err
proof_ranges(proof_run *r)
{
    size_t k;
    patient_err err;

    if ((err = pt_merkle_path_ranges(r->seq, r->T, r->lo, r->hi, &r->count)))
        return err;
    for (k = 0; k < r->count; k++)
        r->order[k] = k;
    for (k = 1; k < r->count; k++) /* insertion sort by lo; count <= 64 */
        for (size_t j = k; j > 0 && r->lo[r->order[j - 1]] > r->lo[r->order[j]]; j--) {
            size_t t = r->order[j];
            r->order[j] = r->order[j - 1];
            r->order[j - 1] = t;
        }
    return PATIENT_OK;
}

/* Pass 2: stream the T leaves; each path element is the MTH of one
 * contiguous range, so one sub-frontier at a time suffices. The leaves'
 * root must be the checkpoint's (else LOG_CORRUPT). */
static patient_err
proof_path(int fd, proof_run *r)
{
    lreader rd;
    uint8_t *line, *scratch = NULL, leaf[HASH_LEN], root[HASH_LEN];
    uint64_t off, i;
    size_t len, scap = 0, cur = 0;
    int nl;
    pt_merkle_frontier fr, sub;
    patient_err err;

    if ((err = lr_init(&rd, fd, 0)))
        goto out;
    pt_merkle_frontier_init(&fr);
    pt_merkle_frontier_init(&sub);
    for (i = 0; i < r->T; i++) {
        if ((err = lr_next(&rd, &line, &len, &nl, &off)))
            goto out;
        if (line == NULL || !nl) {
            err = PATIENT_ERR_LOG_CORRUPT;
            goto out;
        }
        if ((err = scratch_leaf(&scratch, &scap, line, len, leaf)) ||
            (err = pt_merkle_frontier_add(&fr, leaf)))
            goto out;
        if (i == r->seq) {
            memcpy(r->leaf, leaf, HASH_LEN);
            /* the very bytes proved, not a second search for them */
            if (r->keep_line) {
                if ((r->line = malloc(len + 2)) == NULL) {
                    err = PATIENT_ERR_NOMEM;
                    goto out;
                }
                memcpy(r->line, line, len);
                memcpy(r->line + len, "\n", 2);
                r->line_len = len + 1;
            }
            continue;
        }
        while (cur < r->count && r->hi[r->order[cur]] <= i)
            cur++;
        if (cur < r->count && r->lo[r->order[cur]] <= i) {
            if ((err = pt_merkle_frontier_add(&sub, leaf)))
                goto out;
            if (i == r->hi[r->order[cur]] - 1) {
                if ((err = pt_merkle_frontier_root(&sub, r->path[r->order[cur]])))
                    goto out;
                pt_merkle_frontier_init(&sub);
            }
        }
    }
    if ((err = pt_merkle_frontier_root(&fr, root)))
        goto out;
    if (sodium_memcmp(root, r->want, HASH_LEN) != 0)
        err = PATIENT_ERR_LOG_CORRUPT;
out:
    lr_free(&rd);
    free(scratch);
    return err;
}

/* The proof object (docs/format/log.md); *proof_json malloc'd. */
static patient_err
proof_render(const proof_run *r, char **proof_json)
{
    pt_buf b = {0};
    size_t k;
    patient_err err;

    if ((err = pt_buf_appendf(&b,
                              "{\"version\":1,\"log_id\":\"%s\",\"leaf_index\":%llu,\"tree_size\":%llu,"
                              "\"leaf_hash\":\"",
                              r->log_id, (unsigned long long)r->seq, (unsigned long long)r->T)) ||
        (err = pt_buf_put_b64(&b, r->leaf, HASH_LEN, 0)) ||
        (err = pt_buf_append(&b, "\",\"path\":[", 10)))
        goto out;
    for (k = 0; k < r->count; k++)
        if ((err = pt_buf_append(&b, k ? ",\"" : "\"", k ? 2 : 1)) ||
            (err = pt_buf_put_b64(&b, r->path[k], HASH_LEN, 0)) ||
            (err = pt_buf_append(&b, "\"", 1)))
            goto out;
    if ((err = pt_buf_appendf(&b, "],\"root\":\"%s\",\"checkpoint\":\"%s\"}", r->ck_root,
                              r->ck_sig)) ||
        (err = pt_buf_append(&b, "", 1)))
        goto out;
    *proof_json = (char *)b.data;
    b.data = NULL;
out:
    pt_buf_free(&b);
    return err;
}

patient_err
patient_log_proof(const char *path, uint64_t seq, char **proof_json, char **leaf_line,
                  size_t *leaf_len)
{
    proof_run r;
    int fd = -1;
    patient_err err;

    *proof_json = NULL;
    if (leaf_line != NULL)
        *leaf_line = NULL;
    if (leaf_len != NULL)
        *leaf_len = 0;
    if (leaf_line != NULL && leaf_len == NULL)
        return PATIENT_ERR_ARG;
    memset(&r, 0, sizeof r);
    r.seq = seq;
    r.keep_line = leaf_line != NULL;
    if ((err = open_read(path, &fd)))
        return err;
    if (!(err = proof_checkpoint(fd, &r)) && !(err = proof_ranges(&r)) &&
        !(err = proof_path(fd, &r)))
        err = proof_render(&r, proof_json);
    if (err == PATIENT_OK && leaf_line != NULL) {
        *leaf_line = r.line;
        *leaf_len = r.line_len;
        r.line = NULL;
    }
    free(r.line);
    free(r.ck_sig);
    free(r.ck_root);
    close(fd);
    return err;
}

/* A proof object's members (docs/format/log.md), each checked and decoded:
 * the one reader of the format, for the verifier and for the tree head a
 * tool reports. Strings point into p; pp->path (count hashes) is the
 * caller's to free. */
typedef struct {
    uint64_t m, n; /* leaf_index, tree_size */
    const char *log_id, *root64, *ck, *leaf64;
    uint8_t root[HASH_LEN];
    uint8_t (*path)[HASH_LEN];
    size_t count;
} proof_parts;

static patient_err
proof_read(const char *proof_json, size_t proof_len, cJSON **p, proof_parts *pp)
{
    const cJSON *arr, *x;
    size_t i = 0;
    patient_err err;

    memset(pp, 0, sizeof *pp);
    if (proof_len > PROOF_MAX + 2 * PATIENT_JWS_MAX)
        return PATIENT_ERR_TOO_LARGE;
    /* out of memory is not a malformed proof */
    if ((err = pt_json_parse(proof_json, proof_len, p)) == PATIENT_ERR_NOMEM)
        return err;
    if (err != PATIENT_OK || !cJSON_IsObject(*p) ||
        get_u64(*p, "leaf_index", &pp->m) != 0 || get_u64(*p, "tree_size", &pp->n) != 0 ||
        (pp->log_id = pt_json_str(*p, "log_id")) == NULL ||
        (pp->root64 = pt_json_str(*p, "root")) == NULL ||
        (pp->ck = pt_json_str(*p, "checkpoint")) == NULL ||
        !cJSON_IsArray(arr = cJSON_GetObjectItemCaseSensitive(*p, "path")) ||
        pt_b64_decode_exact(pp->root64, strlen(pp->root64), 0, pp->root, HASH_LEN) != PATIENT_OK)
        return PATIENT_ERR_PARSE;
    pp->leaf64 = pt_json_str(*p, "leaf_hash");
    pp->count = (size_t)cJSON_GetArraySize(arr);
    if (pp->count > PT_MERKLE_MAX_DEPTH)
        return PATIENT_ERR_PARSE;
    if (pp->count && (pp->path = calloc(pp->count, HASH_LEN)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(x, arr) {
        if (!cJSON_IsString(x) ||
            pt_b64_decode_exact(x->valuestring, strlen(x->valuestring), 0, pp->path[i++],
                                HASH_LEN))
            return PATIENT_ERR_PARSE;
    }
    return PATIENT_OK;
}

/* The tree head of a proof proof_read read; on error *head is zeroed. */
static patient_err
head_fill(const proof_parts *pp, patient_log_proof_head *head)
{
    head->leaf_index = pp->m;
    head->tree_size = pp->n;
    if ((head->log_id = strdup(pp->log_id)) == NULL || (head->root = strdup(pp->root64)) == NULL) {
        patient_log_proof_head_free(head);
        return PATIENT_ERR_NOMEM;
    }
    return PATIENT_OK;
}

patient_err
patient_log_proof_head_read(const char *proof_json, size_t proof_len,
                            patient_log_proof_head *head)
{
    cJSON *p = NULL;
    proof_parts pp;
    patient_err err;

    if (head == NULL)
        return PATIENT_ERR_ARG;
    memset(head, 0, sizeof *head);
    if (proof_json == NULL)
        return PATIENT_ERR_ARG;
    if ((err = proof_read(proof_json, proof_len, &p, &pp)) == PATIENT_OK)
        err = head_fill(&pp, head);
    free(pp.path);
    cJSON_Delete(p);
    return err;
}

void
patient_log_proof_head_free(patient_log_proof_head *head)
{
    if (head == NULL)
        return;
    free(head->log_id);
    free(head->root);
    memset(head, 0, sizeof *head);
}

patient_err
patient_log_proof_verify(const char *proof_json, size_t proof_len, const char *leaf_line,
                         size_t leaf_len, const patient_pubkey *pub,
                         struct patient_log_proof_head *head)
{
    cJSON *p = NULL, *cp = NULL, *ln = NULL;
    patient_jws *j = NULL;
    uint8_t leaf[HASH_LEN], claimed[HASH_LEN];
    uint64_t seq, ts;
    proof_parts pp;
    const char *s;
    patient_err err;

    memset(&pp, 0, sizeof pp);
    if (head != NULL)
        memset(head, 0, sizeof *head);
    if (proof_json == NULL || leaf_line == NULL)
        return PATIENT_ERR_ARG;
    if (leaf_len > 0 && leaf_line[leaf_len - 1] == '\n')
        leaf_len--;
    if ((err = proof_read(proof_json, proof_len, &p, &pp)) != PATIENT_OK)
        goto out;
    /* what it claims, for the report, from this one read */
    if (head != NULL && (err = head_fill(&pp, head)) != PATIENT_OK)
        goto out;
    /* The line must be the entry the proof is about (out of memory
     * reading either is no verdict on them). */
    if ((err = pt_json_parse(leaf_line, leaf_len, &ln)) == PATIENT_ERR_NOMEM)
        goto out;
    if (err != PATIENT_OK || get_u64(ln, "seq", &seq) != 0 || seq != pp.m) {
        err = PATIENT_ERR_ARG;
        goto out;
    }
    if ((err = pt_merkle_leaf(leaf_line, leaf_len, NULL, leaf)))
        goto out;
    if (pp.leaf64 != NULL &&
        (pt_b64_decode_exact(pp.leaf64, strlen(pp.leaf64), 0, claimed, HASH_LEN) != PATIENT_OK ||
         sodium_memcmp(claimed, leaf, HASH_LEN) != 0)) {
        err = PATIENT_ERR_HASH;
        goto out;
    }
    if ((err = pt_merkle_path_verify(pp.m, pp.n, leaf, (const uint8_t(*)[HASH_LEN])pp.path,
                                     pp.count, pp.root)))
        goto out;
    /* The checkpoint signs exactly this tree head. */
    if ((err = pt_checkpoint_sig_read(pp.ck, &j, &cp)))
        goto out;
    if (get_u64(cp, "tree_size", &ts) != 0 || ts != pp.n || (s = pt_json_str(cp, "root")) == NULL ||
        strcmp(s, pp.root64) != 0 || (s = pt_json_str(cp, "log_id")) == NULL ||
        strcmp(s, pp.log_id) != 0) {
        err = PATIENT_ERR_LOG_CORRUPT;
        goto out;
    }
    err = pub ? patient_jws_verify(j, pub) : PATIENT_OK;
out:
    if (err == PATIENT_ERR_NOMEM)
        patient_log_proof_head_free(head); /* no verdict: no report either */
    cJSON_Delete(p);
    cJSON_Delete(cp);
    cJSON_Delete(ln);
    patient_jws_free(j);
    free(pp.path);
    return err;
}
