/* patient audit consistency / verify-consistency / publish / note-key /
 * monitor / included: the audit log as a transparency log others watch.
 * The work is the library's (<patient/tlog.h>); this file parses
 * arguments, prints, and maps results to exit codes. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "cli.h"
#include "cmd.h"

static const char usage[] =
    "usage: patient audit consistency LOG OLD NEW [--out FILE] [-f]\n"
    "       patient audit verify-consistency PROOF [--old SIZE:ROOT] [--new SIZE:ROOT]\n"
    "       patient audit publish LOG DIR --key SECKEY [--password-file F] [--log-origin NAME]\n"
    "       patient audit note-key --pub PUB (--log-origin NAME | --log LOG)\n"
    "\n"
    "consistency         RFC 9162 consistency proof (JSON) between the trees of the\n"
    "                    first OLD and the first NEW lines of LOG, with both roots.\n"
    "verify-consistency  check a proof (a file, or - for stdin); --old/--new pin the\n"
    "                    tree heads it must relate (from trusted checkpoints).\n"
    "publish             write the tree of LOG's latest checkpoint into DIR as C2SP\n"
    "                    tlog-tiles plus a signed checkpoint note (DIR/checkpoint),\n"
    "                    for any web server to serve.\n"
    "note-key            print the signed-note verifier key of a published log\n"
    "                    (what golang.org/x/mod/sumdb/note reads).\n"
    "\n"
    "ROOT: 64 hex digits or base64 (as in the log's checkpoints).\n"
    "--log-origin NAME: the checkpoint origin and key name; default\n"
    "\"patient.log/<log id>\".\n"
    "\n"
    "Exit: 0 ok, 1 proof invalid / log damaged, 2 usage or I/O error.\n";

enum { OPT_OUT = 256, OPT_OLD, OPT_NEW, OPT_KEY, OPT_PWFILE, OPT_LORIGIN, OPT_PUB, OPT_LOG };

typedef struct {
    const char *out, *old_head, *new_head, *key, *pwfile, *lorigin, *pub, *log;
    int force;
} topts;

static int
parse_u64(const char *s, uint64_t *v)
{
    char *end;
    unsigned long long x;

    if (!isdigit((unsigned char)s[0]) || (s[0] == '0' && s[1] != '\0'))
        return -1;
    errno = 0;
    x = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

int
cli_tree_head_parse(const char *s, uint64_t *size, uint8_t root[PATIENT_SHA256_BYTES])
{
    const char *colon = strchr(s, ':');
    char num[24];
    size_t n, rl;

    if (colon == NULL || (n = (size_t)(colon - s)) == 0 || n >= sizeof num)
        return -1;
    memcpy(num, s, n);
    num[n] = '\0';
    if (parse_u64(num, size) != 0)
        return -1;
    rl = strlen(colon + 1);
    if (rl == 2 * PATIENT_SHA256_BYTES) {
        for (size_t i = 0; i < PATIENT_SHA256_BYTES; i++) {
            unsigned v;
            if (!isxdigit((unsigned char)colon[1 + 2 * i]) ||
                !isxdigit((unsigned char)colon[2 + 2 * i]) ||
                sscanf(colon + 1 + 2 * i, "%2x", &v) != 1)
                return -1;
            root[i] = (uint8_t)v;
        }
        return 0;
    }
    {
        size_t bl = 0;
        uint8_t tmp[PATIENT_SHA256_BYTES + 2];
        const char *end = NULL;
        if (sodium_base642bin(tmp, sizeof tmp, colon + 1, rl, NULL, &bl, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            bl != PATIENT_SHA256_BYTES || end != colon + 1 + rl)
            return -1;
        memcpy(root, tmp, PATIENT_SHA256_BYTES);
    }
    return 0;
}

static void
b64(const uint8_t *h, char out[64])
{
    sodium_bin2base64(out, 64, h, PATIENT_SHA256_BYTES, sodium_base64_VARIANT_ORIGINAL);
}

static int
do_consistency(int n, char **a, const topts *o)
{
    uint64_t m, N;
    patient_consistency p;
    char *json = NULL;
    patient_err err;
    int rc;

    if (n != 3)
        cli_usage(usage, "consistency takes LOG, OLD and NEW");
    if (parse_u64(a[1], &m) || parse_u64(a[2], &N))
        cli_usage(usage, "OLD and NEW must be tree sizes (non-negative integers)");
    if (m > N)
        cli_usage(usage, "OLD (%" PRIu64 ") is larger than NEW (%" PRIu64 ")", m, N);
    if ((err = patient_log_consistency(a[0], m, N, &p)) != PATIENT_OK) {
        if (err == PATIENT_ERR_NOT_FOUND)
            cli_warn("%s: the log has fewer than %" PRIu64 " entries [%s]", a[0], N,
                     patient_errname(err));
        else
            cli_report(err, a[0]);
        return CLI_EXIT_USAGE;
    }
    if ((err = patient_consistency_json(&p, &json)) != PATIENT_OK)
        return cli_report(err, NULL);
    {
        size_t l = strlen(json);
        json[l] = '\n'; /* the NUL becomes the newline; written by length */
        rc = cli_write_atomic(o->out ? o->out : "-", json, l + 1, 0644, o->force);
        if (rc != 0) {
            if (errno == EEXIST)
                cli_warn("%s already exists; use -f to overwrite it [file.exists]", o->out);
            else
                cli_warn("%s: %s", o->out ? o->out : "stdout", strerror(errno));
        }
    }
    free(json);
    return rc ? CLI_EXIT_USAGE : CLI_EXIT_OK;
}

static int
do_verify_consistency(int n, char **a, const topts *o)
{
    patient_consistency p;
    char *text = NULL, r1[64], r2[64];
    size_t len;
    uint64_t s;
    uint8_t root[PATIENT_SHA256_BYTES];
    patient_err err;

    if (n != 1)
        cli_usage(usage, "verify-consistency takes one PROOF");
    if ((err = cli_read_file(a[0], 64 * 1024, 0, &text, &len, NULL)) != PATIENT_OK)
        return cli_report(err, a[0]);
    err = patient_consistency_parse(text, len, &p);
    free(text);
    if (err != PATIENT_OK) {
        cli_warn("%s: not a consistency proof [%s]", a[0], patient_errname(err));
        return CLI_EXIT_FAIL;
    }
    if (o->old_head) {
        if (cli_tree_head_parse(o->old_head, &s, root) != 0)
            cli_usage(usage, "--old must be SIZE:ROOT");
        if (s != p.old_size || sodium_memcmp(root, p.old_root, sizeof root) != 0) {
            cli_warn("%s: the proof is about another old tree (%" PRIu64 ") than --old [%s]", a[0],
                     p.old_size, patient_errname(PATIENT_ERR_HASH));
            return CLI_EXIT_FAIL;
        }
    }
    if (o->new_head) {
        if (cli_tree_head_parse(o->new_head, &s, root) != 0)
            cli_usage(usage, "--new must be SIZE:ROOT");
        if (s != p.new_size || sodium_memcmp(root, p.new_root, sizeof root) != 0) {
            cli_warn("%s: the proof is about another new tree (%" PRIu64 ") than --new [%s]", a[0],
                     p.new_size, patient_errname(PATIENT_ERR_HASH));
            return CLI_EXIT_FAIL;
        }
    }
    b64(p.old_root, r1);
    b64(p.new_root, r2);
    if ((err = patient_consistency_verify(&p)) != PATIENT_OK) {
        printf("%s: INCONSISTENT: tree %" PRIu64 ":%s is not a prefix of %" PRIu64 ":%s [%s]\n",
               a[0], p.old_size, r1, p.new_size, r2, patient_errname(err));
        return CLI_EXIT_FAIL;
    }
    printf("%s: consistent: tree %" PRIu64 ":%s is a prefix of %" PRIu64 ":%s%s\n", a[0],
           p.old_size, r1, p.new_size, r2,
           o->old_head && o->new_head ? ""
                                      : " (roots taken from the proof itself: pin them with "
                                        "--old and --new)");
    return CLI_EXIT_OK;
}

static int
do_publish(int n, char **a, const topts *o)
{
    patient_seckey *sk = NULL;
    patient_err err;
    int rc;

    if (n != 2)
        cli_usage(usage, "publish takes LOG and DIR");
    if (o->key == NULL)
        cli_usage(usage, "publish needs --key SECKEY (the middlebox key that signs checkpoints)");
    if ((rc = cli_seckey_load(o->key, o->pwfile, &sk)) != 0)
        return rc;
    err = patient_log_publish(a[0], a[1], sk, o->lorigin);
    patient_seckey_free(sk);
    if (err == PATIENT_ERR_NOT_FOUND) {
        cli_warn("%s: no checkpoint to publish yet [%s]", a[0], patient_errname(err));
        return CLI_EXIT_FAIL;
    }
    if (err != PATIENT_OK)
        return cli_report(err, a[0]);
    return CLI_EXIT_OK;
}

static int
do_note_key(int n, char **a, const topts *o)
{
    patient_pubkey pk;
    patient_log_report r;
    char origin[PATIENT_ORIGIN_MAX + 1], *vkey = NULL;
    patient_err err;

    (void)a;
    if (n != 0)
        cli_usage(usage, "note-key takes no arguments");
    if (o->pub == NULL || (o->lorigin == NULL) == (o->log == NULL))
        cli_usage(usage, "note-key needs --pub and one of --log-origin or --log");
    if ((err = patient_pubkey_load(o->pub, &pk)) != PATIENT_OK) {
        cli_warn("--pub %s: %s [%s]", o->pub, patient_strerror(err), patient_errname(err));
        return CLI_EXIT_USAGE;
    }
    if (o->log) {
        patient_log_verify_opts vo;
        memset(&vo, 0, sizeof vo);
        vo.pub = &pk;
        if ((err = patient_log_verify(o->log, &vo, &r)) != PATIENT_OK)
            return cli_report(err, o->log);
        patient_tlog_default_origin(r.log_id, origin);
    } else {
        snprintf(origin, sizeof origin, "%s", o->lorigin);
    }
    if ((err = patient_note_vkey(origin, &pk, &vkey)) != PATIENT_OK) {
        cli_warn("--log-origin %s: not a key name (1-255 bytes, no blanks or '+') [%s]", origin,
                 patient_errname(err));
        return CLI_EXIT_USAGE;
    }
    puts(vkey);
    free(vkey);
    return CLI_EXIT_OK;
}

int
cmd_audit_tlog(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, OPT_OUT},
        {"old", required_argument, NULL, OPT_OLD},
        {"new", required_argument, NULL, OPT_NEW},
        {"key", required_argument, NULL, OPT_KEY},
        {"password-file", required_argument, NULL, OPT_PWFILE},
        {"log-origin", required_argument, NULL, OPT_LORIGIN},
        {"pub", required_argument, NULL, OPT_PUB},
        {"log", required_argument, NULL, OPT_LOG},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    topts o;
    const char *sub = argv[1];
    int c;

    memset(&o, 0, sizeof o);
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "fh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_OUT: o.out = optarg; break;
        case OPT_OLD: o.old_head = optarg; break;
        case OPT_NEW: o.new_head = optarg; break;
        case OPT_KEY: o.key = optarg; break;
        case OPT_PWFILE: o.pwfile = optarg; break;
        case OPT_LORIGIN: o.lorigin = optarg; break;
        case OPT_PUB: o.pub = optarg; break;
        case OPT_LOG: o.log = optarg; break;
        case 'f': o.force = 1; break;
        case 'h': cli_usage(usage, NULL);
        default: cli_usage(usage, "invalid option");
        }
    }
    argc -= optind + 1;
    argv += optind + 1;
    if (strcmp(sub, "consistency") == 0)
        return do_consistency(argc, argv, &o);
    if (strcmp(sub, "verify-consistency") == 0)
        return do_verify_consistency(argc, argv, &o);
    if (strcmp(sub, "publish") == 0)
        return do_publish(argc, argv, &o);
    if (strcmp(sub, "note-key") == 0)
        return do_note_key(argc, argv, &o);
    cli_usage(usage, "unknown audit command: %s", sub);
}
