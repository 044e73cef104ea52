/* Helper for tests/log_crash.sh.
 *   log_writer write KEY LOG TAG [THREADS]
 *                                  append changes forever (from THREADS
 *                                  threads on one handle, default 1: group
 *                                  commit batches; odd-numbered threads
 *                                  append deferred and then wait); after
 *                                  each append is durable, print "SEQ URL"
 *                                  (committed)
 *   log_writer check KEY LOG FILE  reopen (repairing a torn tail), close,
 *                                  verify deep with the key, and check every
 *                                  "SEQ URL" line of FILE is in the log
 * KEY is created (unencrypted) if missing. Exit 0 ok, 1 check failed, 2 error. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include <patient/patient.h>

static patient_seckey *
key(const char *path)
{
    patient_seckey *sk = NULL;
    patient_pubkey pk;

    if (access(path, F_OK) != 0) {
        if (patient_keypair_generate(&pk, &sk) || patient_seckey_save(path, sk, NULL, 0))
            exit(2);
        return sk;
    }
    if (patient_seckey_load(path, NULL, &sk, NULL))
        exit(2);
    return sk;
}

struct writer {
    patient_seckey *sk;
    patient_log *log;
    const char *tag;
    int id;
};

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static void *
write_loop(void *arg)
{
    struct writer *w = arg;
    static const uint8_t body[] = "xxx a crash-test body";
    char url[256], *jws;
    uint64_t seq;
    unsigned long i;

    for (i = 0;; i++) {
        /* A real descriptor: the log reads descriptors with the verifier's
         * parser. 2026-11-27T10:00:00Z, 3 bytes deleted. */
        patient_hop *h = NULL;
        uint8_t *nb = NULL;
        size_t nl = 0;
        snprintf(url, sizeof url, "https://crash.test/%s/%d/%lu", w->tag, w->id, i);
        if (patient_hop_begin(&(patient_hop_opts){.sk = w->sk, .name = "crash",
                                                  .service = "content-filter", .url = url,
                                                  .in = body, .in_len = sizeof body - 1},
                              &h) ||
            patient_hop_add_edit(h, 0, 3, NULL, 0, "ads.removed", "r", NULL, 1) ||
            patient_hop_finish(h, (time_t)1795773600, &nb, &nl, &jws))
            exit(2);
        free(nb);
        if (w->id % 2 == 0) {
            if (patient_log_append_change(w->log, jws, &seq) != PATIENT_OK)
                exit(2);
        } else {
            /* What srv_patient does for a held change: write, send most
             * of the response, then wait for the group commit. */
            uint64_t mark = 0;
            if (patient_log_append_hop_deferred(w->log, h, &seq, &mark) != PATIENT_OK ||
                patient_log_wait_durable(w->log, mark) != PATIENT_OK)
                exit(2);
        }
        patient_hop_free(h);
        free(jws);
        /* Acknowledged: only now may it be reported as committed. */
        pthread_mutex_lock(&out_mu);
        printf("%llu https://crash.test/%s/%d/%lu\n", (unsigned long long)seq, w->tag, w->id, i);
        fflush(stdout);
        pthread_mutex_unlock(&out_mu);
    }
    return NULL;
}

static int
do_write(patient_seckey *sk, const char *log_path, const char *tag, int threads)
{
    patient_log *log;
    struct writer w[16];
    pthread_t t[16];
    int i;

    if (threads < 1 || threads > 16)
        return 2;
    if (patient_log_open(log_path, sk, 50, &log) != PATIENT_OK)
        return 2;
    for (i = 0; i < threads; i++) {
        w[i] = (struct writer){sk, log, tag, i};
        if (i > 0 && pthread_create(&t[i], NULL, write_loop, &w[i]) != 0)
            return 2;
    }
    write_loop(&w[0]);
    return 2;
}

static int
do_check(patient_seckey *sk, const char *log_path, const char *committed)
{
    patient_log *log;
    patient_pubkey pk;
    patient_log_verify_opts o = {0};
    patient_log_report r;
    patient_log_iter *it;
    const patient_log_entry *e;
    FILE *f;
    char url[256], **urls = NULL;
    unsigned long long seq, n = 0, cap = 0, checked = 0;
    patient_err err;

    if ((err = patient_log_open(log_path, sk, 50, &log)) != PATIENT_OK) {
        fprintf(stderr, "open: %s\n", patient_strerror(err));
        return 1;
    }
    if (patient_log_close(log) != PATIENT_OK)
        return 1;
    patient_seckey_pubkey(sk, &pk);
    o.pub = &pk;
    o.deep = 1;
    o.require_final_checkpoint = 1;
    if (patient_log_verify(log_path, &o, &r) != PATIENT_OK) {
        fprintf(stderr, "verify: line %llu: %s\n", (unsigned long long)r.line, r.message);
        return 1;
    }
    /* Index the log's urls by seq. */
    if (patient_log_iter_open(log_path, &it))
        return 2;
    while (patient_log_iter_next(it, &e) == PATIENT_OK && e) {
        if (e->seq >= cap) {
            unsigned long long nc = (e->seq + 1) * 2;
            urls = realloc(urls, nc * sizeof *urls);
            memset(urls + cap, 0, (nc - cap) * sizeof *urls);
            cap = nc;
        }
        urls[e->seq] = e->kind == PATIENT_LOG_KIND_CHANGE ? strdup(e->url) : NULL;
        n = e->seq + 1;
    }
    patient_log_iter_close(it);
    if ((f = fopen(committed, "r")) == NULL)
        return 2;
    while (fscanf(f, "%llu %255s", &seq, url) == 2) {
        if (seq >= n || urls[seq] == NULL || strcmp(urls[seq], url) != 0) {
            fprintf(stderr, "committed entry %llu %s is missing\n", seq, url);
            return 1;
        }
        checked++;
    }
    fclose(f);
    printf("%llu entries, %llu committed entries checked\n", n, checked);
    return 0;
}

int
main(int argc, char **argv)
{
    if (sodium_init() < 0 || argc < 5 || argc > 6)
        return 2;
    if (strcmp(argv[1], "write") == 0)
        return do_write(key(argv[2]), argv[3], argv[4], argc == 6 ? atoi(argv[5]) : 1);
    if (strcmp(argv[1], "check") == 0)
        return do_check(key(argv[2]), argv[3], argv[4]);
    return 2;
}
