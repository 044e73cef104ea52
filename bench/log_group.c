/* Group commit: N threads appending to one audit-log handle with the
 * default PATIENT_LOG_SYNC_EACH (every append durable before it returns);
 * prints appends, fdatasync calls and appends/s. One thread is the peer:
 * there every append pays its own fdatasync, as all did before group
 * commit.   usage: log_group LOGFILE THREADS */
#include "config.h"
#include <patient/patient.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static patient_seckey *sk;
static patient_log *lg;
static char *jws;
static void *
run(void *a)
{
    (void)a;
    for (int i = 0; i < 200; i++)
        if (patient_log_append_change(lg, jws, NULL))
            abort();
    return NULL;
}
int
main(int argc, char **argv)
{
    patient_pubkey pk;
    int nt = argc == 3 ? atoi(argv[2]) : 0;
    if (nt < 1 || nt > 64 || patient_keypair_generate(&pk, &sk))
        return 2;
    /* A real descriptor: the log reads descriptors with the verifier's parser. */
    {
        static const uint8_t body[] = "abcdef";
        patient_hop *h = NULL;
        uint8_t *nb = NULL;
        size_t nl = 0;
        if (patient_hop_begin(&(patient_hop_opts){.size = sizeof(patient_hop_opts), .sk = sk,
                                                  .name = "b", .service = "content-filter",
                                                  .url = "https://x.test/a", .in = body,
                                                  .in_len = sizeof body - 1},
                              &h) ||
            patient_hop_add_edit(h, 0, 3, NULL, 0, "ads.removed", "r", NULL, 1) ||
            patient_hop_finish(h, (time_t)1795773600, &nb, &nl, &jws))
            return 2;
        patient_hop_free(h);
        free(nb);
    }
    if (patient_log_open(argv[1], sk, 1000, &lg))
        return 2;
    pthread_t t[64];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < nt; i++)
        pthread_create(&t[i], NULL, run, NULL);
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    uint64_t ap, sy;
    patient_log_stats(lg, &ap, &sy);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("threads %d: %llu appends, %llu fdatasync, %.0f appends/s, %.2f ms/append/thread\n", nt,
           (unsigned long long)ap, (unsigned long long)sy, ap / s, s * 1e3 / 200);
    return patient_log_close(lg) ? 1 : 0;
}
