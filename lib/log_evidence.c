/* Logged-change evidence: what proves, offline, that one change descriptor
 * is in its middlebox's published log. The log line that holds it, its
 * index, an RFC 9162 inclusion proof, and the checkpoint note (signed by
 * the middlebox key) whose root the proof leads to. Made by `patient
 * audit included --save`, checked by the verifier of an evidence bundle
 * and by `patient audit included` without --log.
 * Format contract: docs/format/log.md ("Logged-change evidence"). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "log_int.h"
#include "tlog_int.h"

patient_err
pt_log_evidence_build(const char *line, size_t len, uint64_t index, uint64_t tree_size,
                      const uint8_t (*path)[HASH_LEN], size_t n, const char *note, char **out)
{
    pt_buf b = {0};
    char b64[64];
    patient_err err;

    *out = NULL;
    /* The line is compact JSON without raw controls: as a JSON string
     * only its quotes and backslashes need escaping. */
    if ((err = pt_buf_reserve(&b, len + n * 48 + strlen(note) + 128)) ||
        (err = pt_buf_append(&b, "{\"entry\":", 9)) || (err = json_strn(&b, line, len)))
        goto out;
    if ((err = pt_buf_appendf(&b, ",\"index\":%llu,\"tree_size\":%llu,\"proof\":[",
                              (unsigned long long)index, (unsigned long long)tree_size)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        sodium_bin2base64(b64, sizeof b64, path[i], HASH_LEN, sodium_base64_VARIANT_ORIGINAL);
        if ((err = pt_buf_appendf(&b, "%s\"%s\"", i ? "," : "", b64)))
            goto out;
    }
    if ((err = pt_buf_append(&b, "],\"checkpoint\":", 15)) || (err = json_str(&b, note)) ||
        (err = pt_buf_append(&b, "}", 2)))
        goto out;
    *out = (char *)b.data;
    b.data = NULL;
out:
    pt_buf_free(&b);
    return err;
}

const char *
patient_log_evidence_code(patient_err err)
{
    switch (err) {
    case PATIENT_OK: return "log.proven";
    case PATIENT_ERR_NOT_FOUND: return "log.entry.mismatch";
    case PATIENT_ERR_HASH: return "log.proof.invalid";
    case PATIENT_ERR_SIGNATURE:
    case PATIENT_ERR_KEY_MISMATCH: return "log.checkpoint.signature";
    default: return "log.evidence.malformed";
    }
}

patient_err
patient_log_evidence_check(const char *json, size_t len, const char *jws,
                           const patient_pubkey *pub, patient_log_evidence *out)
{
    static const char *const known[] = {"entry", "index", "tree_size", "proof", "checkpoint"};
    cJSON *o = NULL;
    const cJSON *c, *arr;
    const char *entry, *note;
    uint8_t path[PT_MERKLE_MAX_DEPTH][HASH_LEN], leaf[HASH_LEN];
    long long index, size;
    size_t n = 0;
    patient_checkpoint ck;
    pentry e;
    patient_err err;

    memset(out, 0, sizeof *out);
    memset(&e, 0, sizeof e);
    if (json == NULL || jws == NULL || pub == NULL)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_LOG_EVIDENCE_MAX) {
        snprintf(out->why, sizeof out->why, "larger than %u bytes", PATIENT_LOG_EVIDENCE_MAX);
        return PATIENT_ERR_TOO_LARGE;
    }
    if ((err = pt_json_parse(json, len, &o)) != PATIENT_OK) {
        snprintf(out->why, sizeof out->why, "not JSON");
        return err;
    }
    err = PATIENT_ERR_PARSE;
    if (!cJSON_IsObject(o)) {
        snprintf(out->why, sizeof out->why, "not an object");
        goto out;
    }
    /* A security record: a member it does not define is refused, not skipped. */
    cJSON_ArrayForEach(c, o) {
        size_t k;
        for (k = 0; k < sizeof known / sizeof *known && strcmp(c->string, known[k]) != 0; k++)
            ;
        if (k == sizeof known / sizeof *known) {
            snprintf(out->why, sizeof out->why, "unknown member %.64s", c->string);
            goto out;
        }
    }
    arr = cJSON_GetObjectItemCaseSensitive(o, "proof");
    if ((entry = pt_json_str(o, "entry")) == NULL || (note = pt_json_str(o, "checkpoint")) == NULL ||
        pt_json_int(o, "index", &index) != 0 || pt_json_int(o, "tree_size", &size) != 0 ||
        index < 0 || size <= index || !cJSON_IsArray(arr) ||
        cJSON_GetArraySize(arr) > PT_MERKLE_MAX_DEPTH) {
        snprintf(out->why, sizeof out->why,
                 "needs entry, index < tree_size, proof (at most %d hashes) and checkpoint",
                 PT_MERKLE_MAX_DEPTH);
        goto out;
    }
    cJSON_ArrayForEach(c, arr) {
        if (!cJSON_IsString(c) || pt_b64_decode_exact(c->valuestring, strlen(c->valuestring), 0,
                                                      path[n], HASH_LEN) != PATIENT_OK) {
            snprintf(out->why, sizeof out->why, "proof[%zu] is not base64 of 32 bytes", n);
            goto out;
        }
        n++;
    }
    out->seq = (uint64_t)index;
    out->tree_size = (uint64_t)size;
    /* The line must be the log's entry for exactly this descriptor. */
    if (pentry_parse((const uint8_t *)entry, strlen(entry), &e) != PATIENT_OK ||
        e.kind != PATIENT_LOG_KIND_CHANGE || strcmp(e.jws, jws) != 0 ||
        e.seq != (uint64_t)index) {
        err = PATIENT_ERR_NOT_FOUND;
        snprintf(out->why, sizeof out->why,
                 "the logged line is not the change entry of this descriptor at index %lld",
                 index);
        goto out;
    }
    /* Signed by the key that signed the descriptor: the middlebox's own
     * log, whatever origin it publishes under. */
    if ((err = patient_checkpoint_open(note, strlen(note), NULL, pub, &ck)) != PATIENT_OK) {
        snprintf(out->why, sizeof out->why, "%s",
                 err == PATIENT_ERR_SIGNATURE     ? "the checkpoint's signature does not verify"
                 : err == PATIENT_ERR_KEY_MISMATCH ? "the checkpoint is not signed by the "
                                                     "middlebox's key"
                                                   : "the checkpoint is not a signed note");
        if (err != PATIENT_ERR_SIGNATURE && err != PATIENT_ERR_KEY_MISMATCH)
            err = PATIENT_ERR_PARSE;
        goto out;
    }
    memcpy(out->origin, ck.origin, sizeof out->origin);
    if (ck.size != (uint64_t)size) {
        err = PATIENT_ERR_HASH;
        snprintf(out->why, sizeof out->why, "the proof is for a tree of %lld, the checkpoint signs %llu",
                 size, (unsigned long long)ck.size);
        goto out;
    }
    if ((err = pt_merkle_leaf(entry, strlen(entry), NULL, leaf)) != PATIENT_OK)
        goto out;
    if (pt_merkle_path_verify((uint64_t)index, (uint64_t)size, leaf,
                              (const uint8_t(*)[HASH_LEN])path, n, ck.root) != PATIENT_OK) {
        err = PATIENT_ERR_HASH;
        snprintf(out->why, sizeof out->why,
                 "the inclusion proof of entry %lld does not lead to the signed root", index);
        goto out;
    }
    err = PATIENT_OK;
out:
    pentry_free(&e);
    cJSON_Delete(o);
    return err;
}
