/* Audit-log benchmark helper (driven by bench/audit; not a test).
 *   log_gen gen KEY LOG N [DIR] write N change entries (checkpoint every
 *                               1000) reusing 16 pre-signed descriptors, so
 *                               the time measured is the log's own; with
 *                               DIR the writer publishes tiles there
 *   log_gen verify KEY LOG [deep]   patient_log_verify with the key pinned
 *   log_gen list LOG SUBSTR     iterate and keep changes whose reasons
 *                               contain SUBSTR (what `patient audit list
 *                               --reason` does)
 * Prints one line: what, entries, seconds, entries/s. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sodium.h>

#include <patient/patient.h>

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds of this process: on a shared, loaded machine wall time
 * mostly measures the neighbours. */
static double
cpu_split(double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (sys)
        *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double
cpu(void)
{
    return cpu_split(NULL);
}

static long
maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

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

static const char *reasons[] = {"tracker.removed", "ads.removed", "malware.removed",
                                "banner.inserted"};

static int
gen(patient_seckey *sk, const char *path, unsigned long n, const char *pubdir)
{
    char *jws[16];
    patient_log *log;
    unsigned long i;
    double t0, c0, s0, c1, s1;

    /* Realistic size, ~1.8 KB lines (what the transparency-log targets
     * are stated for): a 10 KiB body, two edits (one withholding its
     * bytes, one disclosing 24), upstream TLS: real descriptors, as the
     * log reads them with the verifier's parser. */
    for (i = 0; i < 16; i++) {
        static uint8_t body[10240];
        char url[128], rule[16];
        patient_hop *h = NULL;
        uint8_t *nb = NULL;
        size_t nl = 0;
        memset(body, 'a', sizeof body);
        snprintf(url, sizeof url, "https://site%lu.example/path/page%lu.html", i % 5, i);
        snprintf(rule, sizeof rule, "r%lu", i);
        if (patient_hop_begin(
                &(patient_hop_opts){
                    .size = sizeof(patient_hop_opts), .sk = sk, .name = "corp-filter",
                    .service = "content-filter",
                    .disclosure = "https://mbox.example/.well-known/patient/disclosure.json",
                    .url = url, .in = body, .in_len = sizeof body},
                &h) ||
            patient_hop_add_edit(h, 100, 40, NULL, 0, reasons[i % 3], rule, NULL, 0) ||
            patient_hop_add_edit(h, 900, 24, NULL, 0, reasons[(i + 1) % 3], "r2", NULL, 1) ||
            patient_hop_set_tls(h, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 1) ||
            patient_hop_finish(h, (time_t)1795082400 + 86400 * (time_t)(i % 28), &nb, &nl, &jws[i]))
            return 2;
        patient_hop_free(h);
        free(nb);
    }
    unlink(path);
    if (patient_log_open(path, sk, 1000, &log) || patient_log_set_sync(log, PATIENT_LOG_SYNC_CHECKPOINT))
        return 2;
    if (pubdir && patient_log_set_publish(log, pubdir, NULL) != PATIENT_OK)
        return 2;
    t0 = now();
    c0 = cpu_split(&s0);
    for (i = 0; i < n; i++)
        if (patient_log_append_change(log, jws[i % 16], NULL) != PATIENT_OK)
            return 2;
    if (patient_log_close(log) != PATIENT_OK)
        return 2;
    /* User and kernel apart: publishing's extra is mostly the kernel's
     * (creating and filling files). */
    c1 = cpu_split(&s1) - c0;
    s1 -= s0;
    printf("append%s %lu entries  %.2f s  %.0f entries/s  cpu %.2f s = %.0f/s (user %.2f, sys "
           "%.2f; fdatasync at checkpoints)\n",
           pubdir ? "+publish" : "", n, now() - t0, n / (now() - t0), c1, n / c1, c1 - s1, s1);
    return 0;
}

static int
verify(patient_seckey *sk, const char *path, int deep)
{
    patient_pubkey pk;
    patient_log_verify_opts o = {0};
    patient_log_report r;
    double t0, dt, c0, dc;

    patient_seckey_pubkey(sk, &pk);
    o.pub = &pk;
    o.deep = deep;
    t0 = now();
    c0 = cpu();
    if (patient_log_verify(path, &o, &r) != PATIENT_OK) {
        fprintf(stderr, "verify failed: %s\n", r.message);
        return 1;
    }
    dt = now() - t0;
    dc = cpu() - c0;
    printf("verify%s %llu entries  wall %.2f s = %.0f/s  cpu %.2f s = %.0f/s  (%llu checkpoints, "
           "max RSS %ld KB)\n",
           deep ? "-deep" : "", (unsigned long long)r.entries, dt, r.entries / dt, dc,
           r.entries / dc, (unsigned long long)r.checkpoints, maxrss_kb());
    return 0;
}

static int
list(const char *path, const char *sub)
{
    patient_log_iter *it;
    const patient_log_entry *e;
    unsigned long long n = 0, hit = 0, del = 0;
    double t0 = now(), dt, c0 = cpu(), dc;
    size_t i;

    if (patient_log_iter_open(path, &it))
        return 2;
    for (;;) {
        if (patient_log_iter_next(it, &e) != PATIENT_OK)
            return 1;
        if (e == NULL)
            break;
        n++;
        if (e->kind != PATIENT_LOG_KIND_CHANGE)
            continue;
        for (i = 0; i < e->n_edits; i++)
            if (strstr(e->reasons[i], sub)) {
                hit++;
                del += e->deleted;
                break;
            }
    }
    patient_log_iter_close(it);
    dt = now() - t0;
    dc = cpu() - c0;
    printf("list     %llu entries  wall %.2f s = %.0f/s  cpu %.2f s = %.0f/s  (%llu match \"%s\", "
           "max RSS %ld KB)\n",
           n, dt, n / dt, dc, n / dc, hit, sub, maxrss_kb());
    return 0;
}

int
main(int argc, char **argv)
{
    if (sodium_init() < 0 || argc < 4)
        return 2;
    if (strcmp(argv[1], "gen") == 0 && (argc == 5 || argc == 6))
        return gen(key(argv[2]), argv[3], strtoul(argv[4], NULL, 10), argc == 6 ? argv[5] : NULL);
    if (strcmp(argv[1], "verify") == 0)
        return verify(key(argv[2]), argv[3], argc > 4 && strcmp(argv[4], "deep") == 0);
    if (strcmp(argv[1], "list") == 0)
        return list(argv[2], argv[3]);
    return 2;
}
