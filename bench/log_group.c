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
    char kid[PATIENT_KEYID_HEX];
    patient_keyid_hex(pk.id, kid);
    char pl[512];
    snprintf(pl, sizeof pl,
             "{\"url\":\"https://x.test/"
             "a\",\"hop\":1,\"at\":\"2026-11-27T10:00:00Z\",\"by\":{\"name\":\"b\",\"kid\":\"%s\"},"
             "\"edits\":[{\"offset\":0,\"delete\":3,\"reason\":\"ads.removed\",\"rule\":\"r\"}]}",
             kid);
    if (patient_jws_sign(sk, "patient-change+jws", pl, strlen(pl), &jws))
        return 2;
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
