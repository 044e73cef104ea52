/* Test helper for the transparency-log tests (public API only):
 *   tlog_tool gen SECKEY LOG N EVERY [DIR [TAG [URL]]]  append N events
 *                                          (checkpoint every EVERY; with DIR
 *                                          ("-": none), published there; TAG
 *                                          goes into each detail, URL into
 *                                          each url: long ones make long lines)
 *   tlog_tool pairs LOG MAX                every consistency proof between
 *                                          sizes 1 <= m <= n <= MAX, one line
 *                                          each: "m n oldroot newroot h1 h2 ..."
 *                                          (hex)
 *   tlog_tool monitor URL PUBKEY STATE TIMEOUT_MS STALL_MS
 *                                          patient_monitor_run with that
 *                                          fetch timeout, its on_entry
 *                                          sleeping STALL_MS on the first
 *                                          entry only (STALL_MS "-": no
 *                                          on_entry, the fast path of -q);
 *                                          prints "ALARM N entries"
 * Exit 0, or 1 with a message. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patient/patient.h>

static void
hex(const uint8_t *h)
{
    for (int i = 0; i < 32; i++)
        printf("%02x", h[i]);
}

static int
die(const char *what, patient_err err)
{
    fprintf(stderr, "tlog_tool: %s: %s [%s]\n", what, patient_strerror(err), patient_errname(err));
    return 1;
}

/* A checking thread stalled once (a pager, a slow caller). */
static int
stall_once(const patient_log_entry *e, void *ctx)
{
    long *ms = ctx;
    struct timespec ts;

    (void)e;
    if (*ms > 0) {
        ts.tv_sec = *ms / 1000;
        ts.tv_nsec = *ms % 1000 * 1000000L;
        *ms = 0;
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    patient_err err;

    if (argc >= 6 && strcmp(argv[1], "gen") == 0) {
        patient_seckey *sk = NULL;
        patient_log *log = NULL;
        unsigned long n = strtoul(argv[4], NULL, 10), every = strtoul(argv[5], NULL, 10);
        const char *tag = argc >= 8 ? argv[7] : "entry", *url = argc >= 9 ? argv[8] : NULL;
        size_t cap = strlen(tag) + 32;
        char *detail = malloc(cap);

        if (detail == NULL)
            return die("detail", PATIENT_ERR_NOMEM);
        if ((err = patient_seckey_load(argv[2], NULL, &sk, NULL)))
            return die(argv[2], err);
        if ((err = patient_log_open(argv[3], sk, (unsigned)every, &log)))
            return die(argv[3], err);
        (void)patient_log_set_sync(log, PATIENT_LOG_SYNC_NONE);
        if (argc >= 7 && strcmp(argv[6], "-") != 0 &&
            (err = patient_log_set_publish(log, argv[6], NULL)))
            return die(argv[6], err);
        for (unsigned long i = 0; i < n; i++) {
            snprintf(detail, cap, "%s %lu", tag, i);
            if ((err = patient_log_append_event(log, "test.entry", url, detail, NULL)))
                return die("append", err);
        }
        if (argc >= 7 && (err = patient_log_publish_error(log)))
            return die("publish", err);
        if ((err = patient_log_close(log)))
            return die("close", err);
        patient_seckey_free(sk);
        free(detail);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "pairs") == 0) {
        unsigned long max = strtoul(argv[3], NULL, 10);
        patient_consistency p;

        for (uint64_t n = 1; n <= max; n++)
            for (uint64_t m = 1; m <= n; m++) {
                if ((err = patient_log_consistency(argv[2], m, n, &p)))
                    return die("consistency", err);
                if ((err = patient_consistency_verify(&p)))
                    return die("own proof does not verify", err);
                printf("%llu %llu ", (unsigned long long)m, (unsigned long long)n);
                hex(p.old_root);
                putchar(' ');
                hex(p.new_root);
                for (size_t i = 0; i < p.count; i++) {
                    putchar(' ');
                    hex(p.proof[i]);
                }
                putchar('\n');
            }
        return 0;
    }
    if (argc == 7 && strcmp(argv[1], "monitor") == 0) {
        patient_pubkey pub;
        patient_fetch_opts fo;
        patient_monitor_opts mo;
        patient_monitor_report rep;
        long stall = strtol(argv[6], NULL, 10);

        if ((err = patient_pubkey_load(argv[3], &pub)))
            return die(argv[3], err);
        patient_fetch_opts_init(&fo);
        fo.timeout_ms = strtol(argv[5], NULL, 10);
        memset(&mo, 0, sizeof mo);
        mo.size = sizeof mo;
        mo.fetch = &fo;
        mo.pub = &pub;
        /* STALL_MS "-": no callback, so the run takes the fast path
         * (groups added at once) that patient audit monitor -q takes */
        if (strcmp(argv[6], "-") != 0) {
            mo.on_entry = stall_once;
            mo.ctx = &stall;
        }
        err = patient_monitor_run(argv[2], argv[4], &mo, &rep);
        printf("%s %llu entries\n", patient_monitor_alarm_name(rep.alarm),
               (unsigned long long)rep.entries);
        if (err)
            fprintf(stderr, "tlog_tool: %s\n", rep.message);
        return err != PATIENT_OK;
    }
    fprintf(stderr, "usage: tlog_tool gen SECKEY LOG N EVERY [DIR [TAG [URL]]] | pairs LOG MAX"
                    " | monitor URL PUBKEY STATE TIMEOUT_MS STALL_MS|-\n");
    return 2;
}
