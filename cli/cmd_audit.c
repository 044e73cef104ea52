/* patient audit: verify a middlebox audit log, list and count its changes,
 * make and check RFC 9162 inclusion proofs. Everything streams through the
 * library's reader (patient_log_verify / patient_log_iter_*), so a log of
 * any length is read in bounded memory. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"

static const char usage[] =
    "usage: patient audit verify LOG... [--pub PUB] [--deep] [--require-checkpoint]\n"
    "                                   [--checkpoint SIZE:ROOT] [--json]\n"
    "       patient audit list LOG... [FILTERS] [--chunks] [--json]\n"
    "       patient audit stats LOG... [--by reason|middlebox|url|day|tls] [FILTERS] [--json]\n"
    "       patient audit proof LOG SEQ [--out FILE] [--leaf-out FILE] [-f]\n"
    "       patient audit verify-proof PROOF LINE_FILE|- --pub PUB [--json]\n"
    "       patient audit consistency|verify-consistency|publish|note-key|monitor|included ...\n"
    "                     (transparency log; see patient audit consistency --help)\n"
    "\n"
    "Audit a middlebox's log (JSON Lines, hash-chained, signed Merkle checkpoints).\n"
    "\n"
    "verify        check the hash chain, every checkpoint's Merkle root and, with\n"
    "              --pub, its signature; --deep also checks every change's JWS.\n"
    "              Reports the first bad entry (line, seq, expected, found) and the\n"
    "              kind of tampering: edited, removed, reordered, inserted,\n"
    "              truncated, rewritten, forged, malformed.\n"
    "list          one row per change: time, seq, middlebox, bytes deleted and\n"
    "              inserted, reason(s), rule(s), upstream TLS (as the descriptor\n"
    "              signed it), URL. Does not verify the log. --chunks adds what a\n"
    "              hop that withheld deleted bytes left unchecked: how many origin\n"
    "              chunks it touched and their byte ranges (reads each listed\n"
    "              descriptor: slower on big logs).\n"
    "stats         changes, edits and bytes per group (default --by reason;\n"
    "              --by tls: per upstream TLS version, cipher and verification).\n"
    "proof         inclusion proof (JSON) for the entry with seq SEQ against the\n"
    "              latest checkpoint covering it; --leaf-out writes that entry's line.\n"
    "verify-proof  check a proof against the entry's line (a file, or - for stdin)\n"
    "              and the middlebox key, without the log.\n"
    "\n"
    "Filters (list, stats; all given must hold):\n"
    "  --middlebox NAME|KID  middlebox name (exact) or key id (16 hex digits)\n"
    "  --reason GLOB         some edit's reason matches GLOB (fnmatch, e.g. 'tracker.*')\n"
    "  --url PREFIX          URL starts with PREFIX\n"
    "  --since TIME          change time >= TIME\n"
    "  --until TIME          change time <= TIME\n"
    "TIME: RFC 3339 (2026-11-27T10:00:00Z, or a date 2026-11-27 = its midnight UTC),\n"
    "@EPOCH seconds, or an age such as 90s, 30m, 12h, 7d, 2w (that long ago).\n"
    "\n"
    "  --pub PUB             middlebox public key: a .pub file or an RW... string\n"
    "  --deep                verify every change entry's signature too (needs --pub)\n"
    "  --require-checkpoint  a log that does not end with a checkpoint is truncated\n"
    "  --checkpoint SIZE:ROOT  a tree head kept from an earlier audit (ROOT: hex or\n"
    "                        base64): the log's first SIZE entries must hash to it\n"
    "  --chunks              (list) the CHUNKS column, \"chunks\" with --json\n"
    "  --json                machine output (verify: one object; list: JSON Lines)\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit: 0 ok, 1 tampered / proof invalid / damaged log, 2 usage or I/O error.\n";

enum {
    OPT_PUB = 256,
    OPT_DEEP,
    OPT_JSON,
    OPT_MBOX,
    OPT_REASON,
    OPT_URL,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_BY,
    OPT_OUT,
    OPT_LEAF_OUT,
    OPT_LINE,
    OPT_REQ_CKPT,
    OPT_CKPT,
    OPT_CHUNKS,
};

#define PROOF_MAX (1024u * 1024)
/* --since/--until ages: at most a century back. */
#define AGE_MAX (100LL * 366 * 86400)

typedef struct {
    const char *pub_spec;
    int deep, json, req_ckpt, force, chunks;
    const char *mbox, *reason, *url;
    int have_since, have_until;
    time_t since, until;
    const char *by;
    const char *out, *leaf_out;
    const char *line;
    const char *ckpt;
} aopts;

/* ---- verify ------------------------------------------------------------- */

static int
do_verify(int n, char **logs, const aopts *o)
{
    patient_pubkey pk;
    patient_log_verify_opts vo;
    patient_log_report *r;
    patient_err err;
    char *s;
    int rc;

    memset(&vo, 0, sizeof vo);
    if (o->pub_spec != NULL) {
        if (cli_pubkey_load("--pub", o->pub_spec, &pk) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
        vo.pub = &pk;
    }
    if (o->deep && vo.pub == NULL)
        cli_usage(usage, "--deep needs --pub PUB (the key that signed the changes)");
    vo.deep = o->deep;
    vo.require_final_checkpoint = o->req_ckpt;
    if (o->ckpt) {
        if (patient_tree_head_parse(o->ckpt, &vo.trusted_size, vo.trusted_root) != PATIENT_OK)
            cli_usage(usage, "--checkpoint must be SIZE:ROOT (ROOT: 64 hex digits or base64)");
        vo.have_trusted = 1;
    }
    if ((r = calloc((size_t)n, sizeof *r)) == NULL)
        return cli_report(PATIENT_ERR_NOMEM, NULL);
    for (int i = 0; i < n; i++) {
        /* returns r[i].result: the reports decide, below */
        err = patient_log_verify(logs[i], &vo, &r[i]);
        (void)err;
        if (!o->json) {
            if ((s = patient_log_verify_text(logs[i], &r[i], vo.pub)) == NULL) {
                free(r);
                return cli_report(PATIENT_ERR_NOMEM, NULL);
            }
            fputs(s, stdout);
            free(s);
        }
    }
    switch (patient_log_verify_verdict((size_t)n, r)) {
    case PATIENT_LOG_VERDICT_OK: rc = CLI_EXIT_OK; break;
    case PATIENT_LOG_VERDICT_TAMPERED: rc = CLI_EXIT_FAIL; break;
    default: rc = CLI_EXIT_USAGE; break;
    }
    if (o->json) {
        if ((s = patient_log_verify_json((size_t)n, (const char *const *)logs, r)) == NULL)
            rc = cli_report(PATIENT_ERR_NOMEM, NULL);
        else
            fputs(s, stdout);
        free(s);
    }
    free(r);
    return rc;
}

/* ---- filters shared by list and stats ----------------------------------- */

static int
match(const patient_log_entry *e, const aopts *o)
{
    if (e->kind != PATIENT_LOG_KIND_CHANGE)
        return 0;
    if (o->have_since && e->time < o->since)
        return 0;
    if (o->have_until && e->time > o->until)
        return 0;
    if (o->url && (e->url == NULL || strncmp(e->url, o->url, strlen(o->url)) != 0))
        return 0;
    if (o->mbox && !((e->by_name && strcmp(e->by_name, o->mbox) == 0) ||
                     (e->by_kid && strcasecmp(e->by_kid, o->mbox) == 0)))
        return 0;
    if (o->reason && !patient_log_entry_reason_match(e, o->reason))
        return 0;
    return 1;
}

typedef patient_err (*entry_fn)(const char *log, const patient_log_entry *e, void *ctx);

/* Iterate one log, calling fn on matching changes. Returns an exit code. */
static int
each_change(const char *log, const aopts *o, entry_fn fn, void *ctx, uint64_t *seen)
{
    patient_log_iter *it = NULL;
    const patient_log_entry *e;
    patient_err err;
    int rc = CLI_EXIT_OK;

    if ((err = patient_log_iter_open(log, &it)) != PATIENT_OK)
        return cli_report(err, log);
    for (;;) {
        if ((err = patient_log_iter_next(it, &e)) != PATIENT_OK) {
            cli_warn("%s: line %" PRIu64 ": %s [%s]; `patient audit verify` tells more", log,
                     patient_log_iter_line(it), patient_strerror(err), patient_errname(err));
            rc = cli_exit_code(err);
            break;
        }
        if (e == NULL)
            break;
        (*seen)++;
        if (match(e, o) && (err = fn(log, e, ctx)) != PATIENT_OK) {
            rc = cli_report(err, log);
            break;
        }
    }
    patient_log_iter_close(it);
    return rc;
}

/* ---- list --------------------------------------------------------------- */

struct list_ctx {
    int json, chunks;
    uint64_t rows;
};

static patient_err
list_row(const char *log, const patient_log_entry *e, void *vctx)
{
    struct list_ctx *c = vctx;
    char *s;

    c->rows++;
    if (c->json) {
        /* The library renders the row, chunks and all (patient/inspect.h). */
        s = patient_inspect_log_entry_json(e, log, c->chunks ? PATIENT_INSPECT_ENTRY_CHUNKS : 0);
        if (s == NULL)
            return PATIENT_ERR_NOMEM;
        puts(s);
        free(s);
        return PATIENT_OK;
    }
    /* ... and the text row (patient/log.h). */
    if ((s = patient_log_list_row_text(e, c->chunks)) == NULL)
        return PATIENT_ERR_NOMEM;
    fputs(s, stdout);
    free(s);
    return PATIENT_OK;
}

static int
do_list(int n, char **logs, const aopts *o)
{
    struct list_ctx c = {o->json, o->chunks, 0};
    uint64_t seen = 0;
    int rc = CLI_EXIT_OK, r;

    if (!o->json && o->chunks)
        printf("%-20s %7s  %-16s %8s %8s  %-24s %-24s %-18s %-28s %s\n", "TIME", "SEQ",
               "MIDDLEBOX", "DELETED", "INSERTED", "REASON", "RULE", "UPSTREAM TLS", "CHUNKS",
               "URL");
    else if (!o->json)
        printf("%-20s %7s  %-16s %8s %8s  %-24s %-24s %-18s %s\n", "TIME", "SEQ", "MIDDLEBOX",
               "DELETED", "INSERTED", "REASON", "RULE", "UPSTREAM TLS", "URL");
    for (int i = 0; i < n; i++) {
        r = each_change(logs[i], o, list_row, &c, &seen);
        if (r > rc)
            rc = r;
    }
    if (!o->json)
        printf("%" PRIu64 " change%s listed (%" PRIu64 " entries read; list does not verify: "
               "see `patient audit verify`).\n",
               c.rows, c.rows == 1 ? "" : "s", seen);
    return rc;
}

/* ---- stats -------------------------------------------------------------- */

/* The library counts and renders (patient_log_tally_*, patient/log.h); the
 * tool prints. */
static patient_err
stats_row(const char *log, const patient_log_entry *e, void *ctx)
{
    (void)log;
    return patient_log_tally_add(ctx, e);
}

static int
do_stats(int n, char **logs, const aopts *o)
{
    patient_log_tally *c = NULL;
    const char *by_word = o->by ? o->by : "reason", *name;
    uint64_t seen = 0;
    int rc = CLI_EXIT_OK, r, by = -1;
    char *s;
    patient_err err;

    for (int i = 0; (name = patient_log_tally_by_name((patient_log_tally_by)i)) != NULL; i++)
        if (strcmp(by_word, name) == 0)
            by = i;
    if (by < 0)
        cli_usage(usage, "--by must be reason, middlebox, url, day or tls");
    if ((err = patient_log_tally_new((patient_log_tally_by)by, &c)) != PATIENT_OK)
        return cli_report(err, NULL);
    for (int i = 0; i < n; i++) {
        r = each_change(logs[i], o, stats_row, c, &seen);
        if (r > rc)
            rc = r;
    }
    if (patient_log_tally_other(c))
        cli_warn("more than %u distinct groups: the rest are counted under \"(other)\"",
                 PATIENT_LOG_TALLY_GROUPS_MAX);
    /* The library renders the document and the table (patient/log.h). */
    if ((s = o->json ? patient_log_tally_json(c, seen) : patient_log_tally_text(c)) == NULL) {
        patient_log_tally_free(c);
        return cli_report(PATIENT_ERR_NOMEM, NULL);
    }
    fputs(s, stdout);
    free(s);
    patient_log_tally_free(c);
    return rc;
}

/* ---- proof / verify-proof ----------------------------------------------- */

static int
parse_seq(const char *s, uint64_t *v)
{
    char *end;
    unsigned long long x;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    x = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

static int
do_proof(int n, char **args, const aopts *o)
{
    uint64_t seq;
    char *proof = NULL, *line = NULL;
    size_t line_len = 0;
    patient_err err;
    int rc = CLI_EXIT_USAGE;

    if (n != 2)
        cli_usage(usage, "proof takes LOG and SEQ");
    if (parse_seq(args[1], &seq) != 0)
        cli_usage(usage, "SEQ must be a non-negative integer: %s", args[1]);
    if ((err = patient_log_proof(args[0], seq, &proof, o->leaf_out ? &line : NULL, &line_len)) !=
        PATIENT_OK) {
        if (err == PATIENT_ERR_NOT_FOUND)
            cli_warn("%s: no entry %" PRIu64 " covered by a checkpoint (the entry does not exist, "
                     "or no checkpoint signs it yet) [%s]",
                     args[0], seq, patient_errname(err));
        else
            cli_report(err, args[0]);
        rc = cli_exit_code(err);
        goto out;
    }
    if (o->leaf_out && cli_write_out(o->leaf_out, line, line_len, o->force) != 0)
        goto out;
    {
        size_t l = strlen(proof);
        char *withnl = malloc(l + 2);
        if (withnl == NULL)
            goto out;
        memcpy(withnl, proof, l);
        memcpy(withnl + l, "\n", 2);
        if (cli_write_out(o->out ? o->out : "-", withnl, l + 1, o->force) != 0) {
            free(withnl);
            goto out;
        }
        free(withnl);
    }
    rc = CLI_EXIT_OK;
out:
    free(proof);
    free(line);
    return rc;
}

static int
do_verify_proof(int n, char **args, const aopts *o)
{
    patient_pubkey pk;
    patient_log_proof_head head = {0};
    char *proof = NULL, *line = NULL, *report;
    size_t plen, llen;
    const char *line_path;
    patient_err err;
    int rc = CLI_EXIT_USAGE;

    if (n == 1 && o->line)
        line_path = o->line;
    else if (n == 2 && o->line == NULL)
        line_path = args[1];
    else
        cli_usage(usage, "verify-proof takes PROOF and LINE_FILE (or --line FILE|-)");
    if (o->pub_spec == NULL)
        cli_usage(usage, "verify-proof needs --pub PUB: a proof is only as good as the "
                         "checkpoint signature");
    if (cli_pubkey_load("--pub", o->pub_spec, &pk) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if ((err = patient_file_read(args[0], PROOF_MAX, 0, &proof, &plen, NULL)) != PATIENT_OK) {
        cli_report(err, args[0]);
        goto out;
    }
    if ((err = patient_file_read(line_path, PATIENT_LOG_LINE_MAX + 1, 0, &line, &llen, NULL)) !=
        PATIENT_OK) {
        cli_report(err, line_path);
        goto out;
    }
    err = patient_log_proof_verify(proof, plen, line, llen, &pk, &head);
    rc = err == PATIENT_OK ? CLI_EXIT_OK
         : err == PATIENT_ERR_PARSE || err == PATIENT_ERR_ARG || err == PATIENT_ERR_HASH
             ? CLI_EXIT_FAIL
             : cli_exit_code(err);
    report = o->json ? patient_log_proof_check_json(&head, err, &pk)
                     : patient_log_proof_check_text(&head, err, &pk);
    if (report == NULL)
        rc = cli_report(PATIENT_ERR_NOMEM, NULL);
    else
        fputs(report, stdout);
    free(report);
out:
    patient_log_proof_head_free(&head);
    free(proof);
    free(line);
    return rc;
}

/* ---- dispatch ----------------------------------------------------------- */

int
cmd_audit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pub", required_argument, NULL, OPT_PUB},
        {"deep", no_argument, NULL, OPT_DEEP},
        {"json", no_argument, NULL, OPT_JSON},
        {"middlebox", required_argument, NULL, OPT_MBOX},
        {"reason", required_argument, NULL, OPT_REASON},
        {"url", required_argument, NULL, OPT_URL},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"by", required_argument, NULL, OPT_BY},
        {"out", required_argument, NULL, OPT_OUT},
        {"leaf-out", required_argument, NULL, OPT_LEAF_OUT},
        {"line", required_argument, NULL, OPT_LINE},
        {"require-checkpoint", no_argument, NULL, OPT_REQ_CKPT},
        {"checkpoint", required_argument, NULL, OPT_CKPT},
        {"chunks", no_argument, NULL, OPT_CHUNKS},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    aopts o;
    const char *sub;
    time_t now = time(NULL);
    int c;

    memset(&o, 0, sizeof o);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        cli_usage(usage, NULL);
    if (argc < 2)
        cli_usage(usage, "which audit command? verify, list, stats, proof or verify-proof");
    sub = argv[1];
    if (strcmp(sub, "consistency") == 0 || strcmp(sub, "verify-consistency") == 0 ||
        strcmp(sub, "publish") == 0 || strcmp(sub, "note-key") == 0 ||
        strcmp(sub, "monitor") == 0 || strcmp(sub, "included") == 0)
        return cmd_audit_tlog(argc, argv);
    optind = 1;
    /* Options may come before or after the arguments (GNU getopt permutes). */
    while ((c = getopt_long(argc - 1, argv + 1, "fh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_PUB: o.pub_spec = optarg; break;
        case OPT_DEEP: o.deep = 1; break;
        case OPT_JSON: o.json = 1; break;
        case OPT_MBOX: o.mbox = optarg; break;
        case OPT_REASON: o.reason = optarg; break;
        case OPT_URL: o.url = optarg; break;
        case OPT_SINCE:
            if (patient_time_parse_arg(optarg, now, AGE_MAX, &o.since) != PATIENT_OK)
                cli_usage(usage, "--since: not a time: %s", optarg);
            o.have_since = 1;
            break;
        case OPT_UNTIL:
            if (patient_time_parse_arg(optarg, now, AGE_MAX, &o.until) != PATIENT_OK)
                cli_usage(usage, "--until: not a time: %s", optarg);
            o.have_until = 1;
            break;
        case OPT_BY: o.by = optarg; break;
        case OPT_OUT: o.out = optarg; break;
        case OPT_LEAF_OUT: o.leaf_out = optarg; break;
        case OPT_LINE: o.line = optarg; break;
        case OPT_REQ_CKPT: o.req_ckpt = 1; break;
        case OPT_CKPT: o.ckpt = optarg; break;
        case OPT_CHUNKS: o.chunks = 1; break;
        case 'f': o.force = 1; break;
        case 'h': cli_usage(usage, NULL);
        default: cli_usage(usage, "invalid option");
        }
    }
    argc -= optind + 1;
    argv += optind + 1;
    {
        int filters = o.mbox || o.reason || o.url || o.have_since || o.have_until;
        int is_list = strcmp(sub, "list") == 0, is_stats = strcmp(sub, "stats") == 0;
        if (filters && !is_list && !is_stats)
            cli_usage(usage, "filters apply to list and stats only");
        if (o.by && !is_stats)
            cli_usage(usage, "--by applies to stats only");
        if (o.chunks && !is_list)
            cli_usage(usage, "--chunks applies to list only");
        if ((o.deep || o.req_ckpt || o.ckpt) && strcmp(sub, "verify") != 0)
            cli_usage(usage, "--deep, --require-checkpoint and --checkpoint apply to verify only");
        if ((o.out || o.leaf_out || o.force) && strcmp(sub, "proof") != 0)
            cli_usage(usage, "--out, --leaf-out and -f apply to proof only");
        if (o.line && strcmp(sub, "verify-proof") != 0)
            cli_usage(usage, "--line applies to verify-proof only");
        if (o.pub_spec && strcmp(sub, "verify") != 0 && strcmp(sub, "verify-proof") != 0)
            cli_usage(usage, "--pub applies to verify and verify-proof only");
        if (o.json && strcmp(sub, "proof") == 0)
            cli_usage(usage, "a proof is JSON already; --json does not apply");
        if (o.have_since && o.have_until && o.since > o.until)
            cli_usage(usage, "--since is after --until");
        if ((is_list || is_stats || strcmp(sub, "verify") == 0) && argc < 1)
            cli_usage(usage, "no LOG given");
        if (strcmp(sub, "verify") == 0)
            return do_verify(argc, argv, &o);
        if (is_list)
            return do_list(argc, argv, &o);
        if (is_stats)
            return do_stats(argc, argv, &o);
        if (strcmp(sub, "proof") == 0)
            return do_proof(argc, argv, &o);
        if (strcmp(sub, "verify-proof") == 0)
            return do_verify_proof(argc, argv, &o);
    }
    cli_usage(usage, "unknown audit command: %s", sub);
}
