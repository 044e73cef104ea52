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
 * Exit 0, or 1 with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    fprintf(stderr, "usage: tlog_tool gen SECKEY LOG N EVERY [DIR [TAG [URL]]] | pairs LOG MAX\n");
    return 2;
}
