/* libFuzzer harness: audit logs.
 * 1. The whole input as a log file (written to one private temp file per
 *    process): patient_log_verify without a key, then with the test key and
 *    deep checks, then every entry through patient_log_iter.
 * 2. The input split at its first newline as an inclusion proof (JSON) and
 *    the entry line it is about: patient_log_proof_verify with the test key
 *    (the seeds are proofs from `patient audit proof` + their leaf line). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <patient/log.h>

#include "common.h"

static char path[64];

static void
cleanup(void)
{
    if (path[0])
        unlink(path);
}

static void
write_input(const uint8_t *data, size_t size)
{
    int fd;

    if (path[0] == 0) {
        snprintf(path, sizeof path, "/tmp/fuzz_log.%ld.XXXXXX", (long)getpid());
        if ((fd = mkstemp(path)) < 0)
            abort();
        close(fd);
        atexit(cleanup);
    }
    if ((fd = open(path, O_WRONLY | O_TRUNC)) < 0)
        abort();
    while (size > 0) {
        ssize_t w = write(fd, data, size);
        if (w <= 0)
            abort();
        data += w;
        size -= (size_t)w;
    }
    close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    patient_log_verify_opts o;
    patient_log_report rep;
    patient_log_iter *it = NULL;
    const patient_log_entry *e;
    const uint8_t *nl;
    patient_err err;
    uint64_t lines = 0;

    write_input(data, size);
    err = patient_log_verify(path, NULL, &rep);
    if (err != rep.result || (err == PATIENT_OK && rep.tamper != PATIENT_LOG_INTACT) ||
        memchr(rep.message, 0, sizeof rep.message) == NULL)
        abort();
    memset(&o, 0, sizeof o);
    o.pub = fz_pubkey();
    o.deep = 1;
    o.require_final_checkpoint = 1;
    err = patient_log_verify(path, &o, &rep);
    if (err != rep.result)
        abort();
    if (patient_log_iter_open(path, &it) == PATIENT_OK) {
        while (patient_log_iter_next(it, &e) == PATIENT_OK && e != NULL) {
            if (e->raw == NULL || e->line_no <= lines || e->raw_len > size)
                abort();
            lines = e->line_no;
            for (size_t i = 0; i < e->n_edits; i++)
                if (e->reasons == NULL || e->reasons[i] == NULL || e->rules[i] == NULL)
                    abort();
        }
        patient_log_iter_close(it);
    }
    if ((nl = memchr(data, '\n', size)) != NULL) {
        size_t plen = (size_t)(nl - data);
        char *proof = fz_strndup(data, plen);
        err = patient_log_proof_verify(proof, plen, (const char *)nl + 1, size - plen - 1,
                                       fz_pubkey(), NULL);
        (void)err;
        free(proof);
    }
    return 0;
}
