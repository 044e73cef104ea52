/* The library's CPU for one changed page, by part: what srv_patient's
 * held path spends in libpatient per request, against the parts the
 * guarantees require (one Ed25519 signature per descriptor, SHA-256 of
 * input and output, one audit-log line). Thread CPU time per operation,
 * the median of 9 batches; fdatasync is measured apart (its CPU and its
 * wall time), since the proxy waits for it rather than computes it.
 *   usage: mbox_parts RULES PAGE_BYTES LOGDIR */
#include "config.h"
#include <patient/patient.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCHES 9

static double
cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static double
wall_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(double *v)
{
    qsort(v, BATCHES, sizeof *v, cmp_d);
    return v[BATCHES / 2];
}

static uint8_t *page;
static size_t page_len;
static patient_mbox *mb, *mb_nolog, *cur;
static patient_seckey *sk;
static patient_log *lg;
static const patient_rules *rules;
static const char *value;
static size_t signing_len;

static patient_err
noop_match(void *ctx, const patient_rule_match *m)
{
    (void)m;
    ++*(size_t *)ctx;
    return PATIENT_OK;
}

/* The page through mb, which must change it. */
static void
process(patient_mbox *m, patient_mbox_result *res)
{
    patient_mbox_input in = PATIENT_OPTS_INIT(patient_mbox_input);
    in.url = "http://bench.test/page.html";
    in.media_type = "text/html";
    in.body = page;
    in.len = page_len;
    in.now = time(NULL);
    if (patient_mbox_process(m, &in, res) != PATIENT_OK || !res->changed)
        exit(1);
}

enum part { P_PROCESS, P_RULES, P_SIGN, P_SHA2 };

static void
run(enum part p, int n)
{
    for (int i = 0; i < n; i++) {
        switch (p) {
        case P_PROCESS: {
            patient_mbox_result res;
            process(cur, &res);
            patient_mbox_result_free(&res);
            break;
        }
        case P_RULES: {
            size_t k = 0;
            if (patient_rules_apply(rules, page, page_len, "text/html", noop_match, &k) != PATIENT_OK)
                exit(1);
            break;
        }
        case P_SIGN: {
            uint8_t sig[PATIENT_SIG_BYTES];
            if (patient_sign(sk, value, signing_len, sig) != PATIENT_OK)
                exit(1);
            break;
        }
        case P_SHA2: {
            uint8_t h[32];
            if (patient_sha256(page, page_len, h) != PATIENT_OK ||
                patient_sha256(page, page_len, h) != PATIENT_OK)
                exit(1);
            break;
        }
        }
    }
}

static double
measure(enum part p, int n)
{
    double v[BATCHES];
    run(p, n / 4); /* warm */
    for (int b = 0; b < BATCHES; b++) {
        double t0 = cpu_now();
        run(p, n);
        v[b] = (cpu_now() - t0) / n;
    }
    return median(v);
}

int
main(int argc, char **argv)
{
    patient_pubkey pk;
    patient_rules *rs;
    char path[4096];
    size_t sz = argc == 4 ? strtoul(argv[2], NULL, 10) : 0;

    if (sz < 64 || sz > 64u << 20 || patient_keypair_generate(&pk, &sk) != PATIENT_OK ||
        patient_rules_load(argv[1], &rs, NULL) != PATIENT_OK) {
        fprintf(stderr, "usage: mbox_parts RULES PAGE_BYTES LOGDIR\n");
        return 2;
    }
    rules = rs;
    /* the page bench/middlebox serves: the banner rule's <body>, then text
     * (the literals' bytes without their NULs, as the script's printf) */
    static const char head[] = "<html><head><title>t</title></head><body class=\"x\">\n<p>";
    static const char tail[] = "</p>\n</body></html>\n";
    page_len = sz;
    if ((page = malloc(sz)) == NULL)
        return 1;
    memset(page, 'a', sz);
    memcpy(page, head, sizeof head - 1);
    memcpy(page + sz - (sizeof tail - 1), tail, sizeof tail - 1);
    snprintf(path, sizeof path, "%s/parts.log", argv[3]);
    if (patient_log_open(path, sk, 1000, &lg) != PATIENT_OK ||
        patient_log_set_sync(lg, PATIENT_LOG_SYNC_NONE) != PATIENT_OK ||
        patient_mbox_new(sk, "bench", "content-filter", NULL, rs, lg, 0, &mb) != PATIENT_OK ||
        patient_mbox_new(sk, "bench", "content-filter", NULL, rs, NULL, 0, &mb_nolog) != PATIENT_OK)
        return 1;
    {
        static patient_mbox_result res; /* its value is signed below */
        process(mb, &res);
        value = res.value;
        signing_len = (size_t)(strrchr(value, '.') - value);
    }
    /* the line as srv_patient appends it (patient_log_append_hop, inside
     * patient_mbox_process): the same process with and without a log */
    double whole, nolog, rul, sig, sha, app;
    cur = mb;
    whole = measure(P_PROCESS, 400);
    cur = mb_nolog;
    nolog = measure(P_PROCESS, 400);
    app = whole - nolog;
    rul = measure(P_RULES, 400);
    sig = measure(P_SIGN, 400);
    sha = measure(P_SHA2, 400);
    printf("page %zu bytes, descriptor %zu bytes (signing input %zu)\n", sz, strlen(value),
           signing_len);
    printf("  patient_mbox_process, LogSync none   %7.1f us CPU  (all of the library's part)\n",
           whole);
    printf("    rules (PCRE2, example rules)       %7.1f us\n", rul);
    printf("    Ed25519 signature                  %7.1f us   required: one per descriptor\n", sig);
    printf("    SHA-256 of input and output        %7.1f us   required: both hashes\n", sha);
    printf("    audit-log line, no sync            %7.1f us   required: one line (with the log - without)\n", app);
    printf("    the rest (decode/copy, descriptor, JWS, edits) %5.1f us\n",
           whole - rul - sig - sha - app);
    /* One durable append alone: the fdatasync's CPU (the kernel's work,
     * charged to the caller) and its wall time (what a lone change waits) */
    {
        double c[BATCHES], w[BATCHES];
        if (patient_log_set_sync(lg, PATIENT_LOG_SYNC_EACH) != PATIENT_OK)
            return 1;
        for (int b = 0; b < BATCHES; b++) {
            double c0 = cpu_now(), w0 = wall_now();
            cur = mb;
            run(P_PROCESS, 20);
            c[b] = (cpu_now() - c0) / 20 - whole;
            w[b] = (wall_now() - w0) / 20;
        }
        printf("  one durable change's fdatasync       %7.1f us CPU beyond the rest, %.0f us wall\n",
               median(c), median(w));
    }
    printf("  required by the guarantees (signature + both hashes + line): %.1f us CPU\n",
           sig + sha + app);
    patient_mbox_free(mb);
    patient_mbox_free(mb_nolog);
    patient_log_close(lg);
    patient_rules_free(rs);
    patient_seckey_free(sk);
    free(page);
    return 0;
}
