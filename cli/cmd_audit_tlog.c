/* patient audit consistency / verify-consistency / publish / note-key /
 * monitor / included: the audit log as a transparency log others watch.
 * The work is the library's (<patient/tlog.h>); this file parses
 * arguments, prints, and maps results to exit codes. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "cli.h"
#include "cmd.h"

static const char usage[] =
    "usage: patient audit consistency LOG OLD NEW [--out FILE] [-f]\n"
    "       patient audit verify-consistency PROOF [--old SIZE:ROOT] [--new SIZE:ROOT]\n"
    "       patient audit publish LOG DIR --key SECKEY [--password-file F] [--log-origin NAME]\n"
    "       patient audit note-key --pub PUB (--log-origin NAME | --log LOG)\n"
    "       patient audit monitor URL --pub PUB --state FILE [--deep] [--reason GLOB]\n"
    "                     [--origin ORIGIN] [--loop SECONDS] [--log-origin NAME] [--ca FILE]\n"
    "                     [--json] [-q]\n"
    "       patient audit included BUNDLE --log URL --pub PUB [--state FILE]\n"
    "                     [--log-origin NAME] [--ca FILE] [--json] [--out FILE [-f]]\n"
    "       patient audit included BUNDLE --pub PUB [--json]\n"
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
    "monitor             watch a published log (URL: the folder publish writes): check\n"
    "                    the signed checkpoint, that it extends the one kept in FILE\n"
    "                    (else FORK or ROLLBACK), every new entry (seq, hash chain, the\n"
    "                    log's checkpoints; --deep: every descriptor's signature) and\n"
    "                    the served tiles; prints the new changes (--reason, --origin\n"
    "                    filter them) and updates FILE atomically only when all holds.\n"
    "                    --loop repeats every SECONDS (progress on a terminal).\n"
    "included            prove each descriptor of an evidence bundle is in the log\n"
    "                    published at URL (inclusion proof against its signed\n"
    "                    checkpoint, consistent with the monitor's FILE if given);\n"
    "                    --out writes the bundle with that evidence (\"log_proofs\").\n"
    "                    Without --log: check the bundle's saved evidence offline.\n"
    "\n"
    "ROOT: 64 hex digits or base64 (as in the log's checkpoints).\n"
    "--log-origin NAME: the checkpoint origin and key name; default\n"
    "\"patient.log/<log id>\".\n"
    "\n"
    "Exit: 0 ok, 1 proof invalid / log damaged / monitor alarm (fork, rollback,\n"
    "bad signature, corrupted tile or entry) / descriptor not logged, 2 usage or\n"
    "I/O error (or a damaged state file), 3 log unreachable (state unchanged).\n";

enum {
    OPT_OUT = 256,
    OPT_OLD,
    OPT_NEW,
    OPT_KEY,
    OPT_PWFILE,
    OPT_LORIGIN,
    OPT_PUB,
    OPT_LOG,
    OPT_STATE,
    OPT_DEEP,
    OPT_REASON,
    OPT_ORIGIN,
    OPT_LOOP,
    OPT_CA,
    OPT_JSON,
};

#define EXIT_UNREACHABLE 3

typedef struct {
    const char *out, *old_head, *new_head, *key, *pwfile, *lorigin, *pub, *log;
    const char *state, *reason, *origin, *ca;
    long loop;
    int force, deep, json, quiet;
} topts;

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
    if (patient_tree_size_parse(a[1], strlen(a[1]), &m) != PATIENT_OK ||
        patient_tree_size_parse(a[2], strlen(a[2]), &N) != PATIENT_OK)
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
        rc = cli_write_out(o->out ? o->out : "-", json, l + 1, o->force);
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
    if ((err = patient_file_read(a[0], 64 * 1024, 0, &text, &len, NULL)) != PATIENT_OK)
        return cli_report(err, a[0]);
    err = patient_consistency_parse(text, len, &p);
    free(text);
    if (err != PATIENT_OK) {
        cli_warn("%s: not a consistency proof [%s]", a[0], patient_errname(err));
        return CLI_EXIT_FAIL;
    }
    if (o->old_head) {
        if (patient_tree_head_parse(o->old_head, &s, root) != PATIENT_OK)
            cli_usage(usage, "--old must be SIZE:ROOT");
        if (s != p.old_size || sodium_memcmp(root, p.old_root, sizeof root) != 0) {
            cli_warn("%s: the proof is about another old tree (%" PRIu64 ") than --old [%s]", a[0],
                     p.old_size, patient_errname(PATIENT_ERR_HASH));
            return CLI_EXIT_FAIL;
        }
    }
    if (o->new_head) {
        if (patient_tree_head_parse(o->new_head, &s, root) != PATIENT_OK)
            cli_usage(usage, "--new must be SIZE:ROOT");
        if (s != p.new_size || sodium_memcmp(root, p.new_root, sizeof root) != 0) {
            cli_warn("%s: the proof is about another new tree (%" PRIu64 ") than --new [%s]", a[0],
                     p.new_size, patient_errname(PATIENT_ERR_HASH));
            return CLI_EXIT_FAIL;
        }
    }
    sodium_bin2base64(r1, sizeof r1, p.old_root, sizeof p.old_root, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(r2, sizeof r2, p.new_root, sizeof p.new_root, sodium_base64_VARIANT_ORIGINAL);
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
    if (cli_pubkey_load("--pub", o->pub, &pk) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
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

/* ---- monitor / included ------------------------------------------------- */

typedef struct {
    const topts *o;
    uint64_t shown;
    int tty;
} monctx;

static int
on_entry(const patient_log_entry *e, void *vctx)
{
    monctx *m = vctx;

    if (e->kind != PATIENT_LOG_KIND_CHANGE)
        return 0;
    if (m->o->reason && !patient_log_entry_reason_match(e, m->o->reason))
        return 0;
    if (m->o->origin && !patient_url_on_origin(e->url, m->o->origin))
        return 0;
    m->shown++;
    if (m->tty)
        fputs("\r\033[K", stderr);
    if (m->o->json || !m->o->quiet) {
        /* The library renders the line (patient/tlog.h). */
        char *t = m->o->json ? patient_monitor_entry_json(e) : patient_monitor_entry_text(e);
        if (t != NULL)
            fputs(t, stdout);
        free(t);
    }
    return 0;
}

static void
on_progress(uint64_t done, uint64_t total, void *vctx)
{
    monctx *m = vctx;

    if (m->tty)
        fprintf(stderr, "\r\033[K%" PRIu64 " / %" PRIu64 " new entries checked", done, total);
}

static int
alarm_exit(const patient_monitor_report *r)
{
    if (r->alarm == PATIENT_MONITOR_UNREACHABLE)
        return EXIT_UNREACHABLE;
    if (r->alarm == PATIENT_MONITOR_STATE)
        return CLI_EXIT_USAGE;
    return CLI_EXIT_FAIL;
}

static void
report_alarm(const char *url, const patient_monitor_report *r)
{
    if (r->alarm == PATIENT_MONITOR_UNREACHABLE || r->alarm == PATIENT_MONITOR_STATE)
        cli_warn("%s: %s [%s]", url, r->message, patient_errname(r->result));
    else
        cli_warn("%s: ALARM (%s): %s [%s]", url, patient_monitor_alarm_name(r->alarm), r->message,
                 patient_errname(r->result));
}

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int
do_monitor(int n, char **a, const topts *o)
{
    patient_pubkey pk;
    patient_fetch_opts fo;
    patient_monitor_opts mo;
    patient_monitor_report r;
    monctx m;
    patient_err err;

    if (n != 1)
        cli_usage(usage, "monitor takes one URL");
    if (o->pub == NULL || o->state == NULL)
        cli_usage(usage, "monitor needs --pub PUB and --state FILE");
    if (cli_pubkey_load("--pub", o->pub, &pk) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    patient_fetch_opts_init(&fo);
    fo.ca_file = o->ca;
    memset(&mo, 0, sizeof mo);
    memset(&m, 0, sizeof m);
    m.o = o;
    m.tty = cli_stderr_tty() && !o->quiet;
    mo.fetch = &fo;
    mo.pub = &pk;
    mo.origin = o->lorigin;
    mo.deep = o->deep;
    /* Quiet, without --json, shows no entry: no callback, so the library
     * need not hand each one over whole (its fast path scans lines on
     * worker threads and keeps only what the checks need). */
    mo.on_entry = o->quiet && !o->json ? NULL : on_entry;
    mo.on_progress = on_progress;
    mo.ctx = &m;
    if (o->loop > 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
    for (;;) {
        err = patient_monitor_run(a[0], o->state, &mo, &r);
        if (m.tty)
            fputs("\r\033[K", stderr);
        fflush(stdout);
        if (err != PATIENT_OK) {
            report_alarm(a[0], &r);
            /* In a loop an outage is waited out; anything else stops it. */
            if (!(o->loop > 0 && r.alarm == PATIENT_MONITOR_UNREACHABLE))
                return alarm_exit(&r);
        } else if (!o->quiet && !o->json) {
            fprintf(o->loop > 0 ? stderr : stdout, "%s: %s (origin %s)\n", a[0], r.message,
                    r.origin);
        }
        if (o->loop <= 0)
            return CLI_EXIT_OK;
        for (long s = 0; s < o->loop && !stop; s++)
            sleep(1);
        if (stop)
            return CLI_EXIT_OK;
    }
}

/* The bundle with "log_proofs": one evidence object per change, null for
 * those not logged (docs/format/report.md). */
static int
save_evidence(const char *path, patient_bundle *bundle, const patient_included *res, size_t n,
              int force)
{
    const char **evs = calloc(n, sizeof *evs);
    char *json = NULL;
    patient_err err = PATIENT_ERR_NOMEM;
    int rc = -1;

    if (evs == NULL)
        goto out;
    for (size_t k = 0; k < n; k++)
        evs[k] = res[k].evidence;
    if ((err = patient_bundle_set_log_proofs(bundle, evs, n)) != PATIENT_OK ||
        (err = patient_bundle_print(bundle, &json)) != PATIENT_OK)
        goto out;
    rc = cli_write_out(path, json, strlen(json), force);
    if (rc == 0)
        printf("evidence written to %s (log_proofs)\n", path);
out:
    if (err != PATIENT_OK)
        cli_report(err, "the evidence bundle");
    free(json);
    free(evs);
    return rc;
}

/* Without --log: the evidence the bundle carries, checked here alone. */
static int
included_offline(const patient_bundle *bundle, const char *const *jws, size_t nj,
                 const patient_pubkey *pk, const topts *o)
{
    size_t bad = 0;

    for (size_t k = 0; k < nj; k++) {
        patient_log_evidence info;
        patient_err err = PATIENT_ERR_NOT_FOUND, rerr;
        char *text = NULL;
        const char *code = "log.missing";

        memset(&info, 0, sizeof info);
        if ((rerr = patient_bundle_log_proof(bundle, k, &text)) != PATIENT_OK) {
            cli_report(rerr, NULL);
            return CLI_EXIT_USAGE;
        }
        if (text) {
            err = patient_log_evidence_check(text, strlen(text), jws[k], pk, &info);
            code = patient_log_evidence_code(err);
        }
        if (err != PATIENT_OK)
            bad++;
        if (o->json)
            printf("{\"change\":%zu,\"logged\":%s,\"code\":\"%s\"", k,
                   err == PATIENT_OK ? "true" : "false", code);
        if (o->json && err == PATIENT_OK)
            printf(",\"seq\":%" PRIu64 ",\"tree_size\":%" PRIu64, info.seq, info.tree_size);
        if (o->json)
            printf("}\n");
        else if (err == PATIENT_OK)
            printf("change %zu: logged as entry %" PRIu64 ", proven offline into the tree of %" PRIu64
                   " signed by the key (origin %s) [%s]\n",
                   k, info.seq, info.tree_size, info.origin, code);
        else if (text == NULL)
            printf("change %zu: NO EVIDENCE that it was logged [%s]\n", k, code);
        else
            printf("change %zu: EVIDENCE INVALID: %s [%s]\n", k, info.why, code);
        free(text);
    }
    return bad ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int
do_included(int n, char **a, const topts *o)
{
    patient_pubkey pk;
    patient_fetch_opts fo;
    patient_monitor_opts mo;
    patient_monitor_report r;
    patient_included *res = NULL;
    patient_bundle *bundle = NULL;
    const char *const *jws;
    const char *why = NULL;
    char *text = NULL;
    size_t len, k, nj = 0, missing = 0;
    patient_err err;
    int rc = CLI_EXIT_USAGE;

    if (n != 1)
        cli_usage(usage, "included takes one BUNDLE");
    if (o->pub == NULL)
        cli_usage(usage, "included needs --pub PUB");
    if (o->log == NULL && (o->out || o->state))
        cli_usage(usage, "--out and --state need --log URL");
    if (cli_pubkey_load("--pub", o->pub, &pk) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if ((err = patient_file_read(a[0], PATIENT_BUNDLE_MAX, 0, &text, &len, NULL)) != PATIENT_OK)
        return cli_report(err, a[0]);
    /* The bundle's descriptors: its "changes" (docs/format/report.md), read
     * as the verifier reads them. */
    if ((err = patient_bundle_read(text, len, &bundle, &why)) != PATIENT_OK) {
        cli_warn("%s: not an evidence bundle: %s [%s]", a[0], why ? why : patient_strerror(err),
                 patient_errname(err));
        goto out;
    }
    nj = patient_bundle_change_count(bundle);
    jws = patient_bundle_changes(bundle);
    if (nj == 0) {
        printf("%s: no change descriptors: nothing was changed on the way\n", a[0]);
        rc = CLI_EXIT_OK;
        goto out;
    }
    if (o->log == NULL) {
        rc = included_offline(bundle, jws, nj, &pk, o);
        goto out;
    }
    if ((res = calloc(nj, sizeof *res)) == NULL)
        goto out;
    patient_fetch_opts_init(&fo);
    fo.ca_file = o->ca;
    memset(&mo, 0, sizeof mo);
    mo.fetch = &fo;
    mo.pub = &pk;
    mo.origin = o->lorigin;
    err = patient_tlog_included(o->log, o->state, &mo, jws, nj, res, &r);
    if (err != PATIENT_OK) {
        report_alarm(o->log, &r);
        rc = alarm_exit(&r);
        goto out;
    }
    for (k = 0; k < nj; k++) {
        if (o->json) {
            printf("{\"change\":%zu,\"logged\":%s", k, res[k].found ? "true" : "false");
            if (res[k].found)
                printf(",\"seq\":%" PRIu64, res[k].seq);
            printf(",\"tree_size\":%" PRIu64 "}\n", r.new_size);
        } else if (res[k].found) {
            printf("change %zu: logged as entry %" PRIu64
                   ", proven into the signed tree of %" PRIu64 " (origin %s)\n",
                   k, res[k].seq, res[k].tree_size, r.origin);
        } else {
            printf("change %zu: NOT LOGGED: no entry of the signed tree of %" PRIu64
                   " (origin %s) holds this descriptor\n",
                   k, r.new_size, r.origin);
        }
        if (!res[k].found)
            missing++;
    }
    if (!o->json)
        printf("%s\n", r.message);
    if (o->state == NULL && !o->json)
        printf("(checkpoint not compared with a monitor's state: pass --state FILE)\n");
    rc = missing ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    if (o->out && save_evidence(o->out, bundle, res, nj, o->force) != 0)
        rc = CLI_EXIT_USAGE;
out:
    patient_included_free(res, res ? nj : 0);
    patient_bundle_free(bundle);
    free(text);
    free(res);
    return rc;
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
        {"state", required_argument, NULL, OPT_STATE},
        {"deep", no_argument, NULL, OPT_DEEP},
        {"reason", required_argument, NULL, OPT_REASON},
        {"origin", required_argument, NULL, OPT_ORIGIN},
        {"loop", required_argument, NULL, OPT_LOOP},
        {"ca", required_argument, NULL, OPT_CA},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    topts o;
    const char *sub = argv[1];
    int c;

    memset(&o, 0, sizeof o);
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "fhq", opts, NULL)) != -1) {
        switch (c) {
        case OPT_OUT: o.out = optarg; break;
        case OPT_OLD: o.old_head = optarg; break;
        case OPT_NEW: o.new_head = optarg; break;
        case OPT_KEY: o.key = optarg; break;
        case OPT_PWFILE: o.pwfile = optarg; break;
        case OPT_LORIGIN: o.lorigin = optarg; break;
        case OPT_PUB: o.pub = optarg; break;
        case OPT_LOG: o.log = optarg; break;
        case OPT_STATE: o.state = optarg; break;
        case OPT_DEEP: o.deep = 1; break;
        case OPT_REASON: o.reason = optarg; break;
        case OPT_ORIGIN: o.origin = optarg; break;
        case OPT_LOOP: {
            uint64_t v;
            if (patient_tree_size_parse(optarg, strlen(optarg), &v) != PATIENT_OK || v == 0 ||
                v > 86400)
                cli_usage(usage, "--loop takes 1..86400 seconds");
            o.loop = (long)v;
            break;
        }
        case OPT_CA: o.ca = optarg; break;
        case OPT_JSON: o.json = 1; break;
        case 'q': o.quiet = 1; break;
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
    if (strcmp(sub, "monitor") == 0)
        return do_monitor(argc, argv, &o);
    if (strcmp(sub, "included") == 0)
        return do_included(argc, argv, &o);
    cli_usage(usage, "unknown audit command: %s", sub);
}
