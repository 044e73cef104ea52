/* Cost of issuing a change descriptor (3 edits) against the bare cost of
 * hashing input and output, for 1 KB, 100 KB and 5 MB bodies. Not a test:
 * prints microseconds per operation and the ratio.
 *   cc -O2 -I include -I lib -I BUILD bench/change_bench.c BUILD/lib/.libs/libpatient_core.a \
 *      $(pkg-config --libs libsodium libcjson libcrypto libssl zlib libcurl libpcre2-8) -o change_bench */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patient/patient.h>

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(void)
{
    static const size_t sizes[] = {1024, 100 * 1024, 5 * 1024 * 1024};
    patient_pubkey pk;
    patient_seckey *sk = NULL;
    uint8_t h[PATIENT_SHA256_BYTES];

    if (patient_keypair_generate(&pk, &sk) != PATIENT_OK)
        return 2;
    printf("%-8s %12s %12s %12s %8s\n", "size", "issue_us", "2xsha256_us", "parse+undo_us", "ratio");
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t len = sizes[s], i;
        uint8_t *in = malloc(len);
        int iters = len <= 1024 ? 20000 : len <= 102400 ? 2000 : 60;
        double t0, t_issue, t_hash, t_verify;

        for (i = 0; i < len; i++)
            in[i] = (uint8_t)("<p>lorem ipsum dolor sit amet</p>\n"[i % 35]);
        /* bare hashing: input and an output of the same size */
        t0 = now();
        for (int k = 0; k < iters; k++) {
            patient_sha256(in, len, h);
            patient_sha256(in, len, h);
        }
        t_hash = (now() - t0) / iters * 1e6;
        /* issuing: begin, 3 edits (delete disclosed, insert, replace), finish */
        t0 = now();
        for (int k = 0; k < iters; k++) {
            patient_hop *hop = NULL;
            uint8_t *out = NULL;
            size_t out_len = 0;
            char *v = NULL;
            if (patient_hop_begin(&(patient_hop_opts){.size = sizeof(patient_hop_opts), .sk = sk,
                                                      .name = "bench", .service = "tracker-filter",
                                                      .url = "https://example.org/x", .in = in,
                                                      .in_len = len},
                                  &hop) ||
                patient_hop_add_edit(hop, len / 4, 40, NULL, 0, "tracker.removed", "r1", NULL, 1) ||
                patient_hop_add_edit(hop, len / 2, 0, (const uint8_t *)"<p>banner</p>", 13,
                                     "banner.inserted", "r2", NULL, 1) ||
                patient_hop_add_edit(hop, 3 * len / 4, 10, (const uint8_t *)"[removed]", 9,
                                     "ads.removed", "r3", NULL, 1) ||
                patient_hop_finish(hop, 1795000000, &out, &out_len, &v))
                return 1;
            patient_hop_free(hop);
            free(out);
            free(v);
        }
        t_issue = (now() - t0) / iters * 1e6;
        /* verifier side: parse + verify + undo of a disclosed one-edit hop */
        {
            patient_hop *h2 = NULL;
            patient_change *c = NULL;
            uint8_t *o2 = NULL, *back = NULL;
            size_t l2, bl;
            char *v = NULL;
            int vi = iters < 500 ? iters : 500;
            if (patient_hop_begin(&(patient_hop_opts){.size = sizeof(patient_hop_opts), .sk = sk,
                                                      .name = "bench", .service = "other",
                                                      .url = "https://example.org/x", .in = in,
                                                      .in_len = len},
                                  &h2) ||
                patient_hop_add_edit(h2, len / 4, 40, NULL, 0, "tracker.removed", "r1", NULL, 1) ||
                patient_hop_finish(h2, 0, &o2, &l2, &v))
                return 1;
            patient_hop_free(h2);
            t0 = now();
            for (int j = 0; j < vi; j++) {
                if (patient_change_parse(v, strlen(v), &c) || patient_change_verify(c, &pk) ||
                    patient_change_undo(c, o2, l2, &back, &bl))
                    return 1;
                patient_change_free(c);
                free(back);
            }
            t_verify = (now() - t0) / vi * 1e6;
            free(o2);
            free(v);
        }
        printf("%-8zu %12.1f %12.1f %12.1f %8.2f\n", len, t_issue, t_hash, t_verify, t_issue / t_hash);
        free(in);
    }
    patient_seckey_free(sk);
    return 0;
}
