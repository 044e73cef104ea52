/* stack_logcheck: verify an audit log (deep, with the middlebox key) and
 * print its counts, for the end-to-end and load tests on the real stack.
 *
 * usage: stack_logcheck LOG PUBKEY
 * stdout: "result ok|<errname>", then "entries N", "changes N", "events N",
 *         "checkpoints N" and one "event NAME" line per event entry.
 * exit: 0 when the log verifies, 1 when it does not, 2 on usage errors. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <patient/patient.h>

int
main(int argc, char **argv)
{
    patient_pubkey pk;
    patient_log_verify_opts opts;
    patient_log_report rep;
    patient_log_iter *it = NULL;
    const patient_log_entry *e = NULL;
    patient_err err;

    if (argc != 3) {
        fprintf(stderr, "usage: stack_logcheck LOG PUBKEY\n");
        return 2;
    }
    if ((err = patient_pubkey_load(argv[2], &pk)) != PATIENT_OK) {
        fprintf(stderr, "stack_logcheck: %s: %s\n", argv[2], patient_strerror(err));
        return 2;
    }
    memset(&opts, 0, sizeof opts);
    opts.pub = &pk;
    opts.deep = 1;
    err = patient_log_verify(argv[1], &opts, &rep);
    printf("result %s\n", err == PATIENT_OK ? "ok" : patient_strerror(err));
    if (err != PATIENT_OK)
        printf("tamper %s line %llu: %s\n", patient_log_tamper_name(rep.tamper),
               (unsigned long long)rep.line, rep.message);
    printf("entries %llu\nchanges %llu\nevents %llu\ncheckpoints %llu\n",
           (unsigned long long)rep.entries, (unsigned long long)rep.changes,
           (unsigned long long)rep.events, (unsigned long long)rep.checkpoints);
    if (patient_log_iter_open(argv[1], &it) == PATIENT_OK) {
        while (patient_log_iter_next(it, &e) == PATIENT_OK && e != NULL)
            if (e->kind == PATIENT_LOG_KIND_EVENT)
                printf("event %s\n", e->event);
        patient_log_iter_close(it);
    }
    return err == PATIENT_OK ? 0 : 1;
}
