/* patient-mbox: a rule-driven middlebox as a stdin -> stdout filter, for
 * proxies with external filter hooks. Every change it makes is signed
 * (Patient-Change) and, with --log, appended to a tamper-evident audit log. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <patient/patient.h>
#include <patient/mbox.h>
#include "cli.h"

static const char usage_text[] =
    "usage: patient-mbox -s SECKEY --name NAME --rules RULES --url URL\n"
    "                    [--type MEDIA_TYPE] [--encoding gzip] [--in-header FILE]\n"
    "                    [--header-out FILE] [--log LOG] [options] < body > new_body\n"
    "\n"
    "Apply RULES to the response body on stdin and write the (possibly edited)\n"
    "body to stdout. When a rule changes the body, a signed change descriptor is\n"
    "issued for this hop; all Patient-Change header lines (the ones that arrived,\n"
    "then ours) are written to --header-out, and the descriptor is appended to the\n"
    "audit log. When nothing matches, the body passes unchanged and no descriptor\n"
    "is added.\n"
    "\n"
    "  -s, --seckey FILE      middlebox secret key (minisign format; `patient keygen`)\n"
    "  --password-file FILE   password of an encrypted key (or PATIENT_PASSWORD_FILE)\n"
    "  --name NAME            middlebox name shown to endpoints\n"
    "  --service TYPE         tracker-filter, malware-filter, ad-filter, content-filter\n"
    "                         (default), other\n"
    "  --disclosure URL       URL of the operator's signed disclosure.json\n"
    "  --rules FILE           rule file (docs/FORMAT.md, \"Rules\")\n"
    "  --url URL              absolute URL of the resource (signed into the record)\n"
    "  --type MEDIA_TYPE      Content-Type of the body (rules may filter on it)\n"
    "  --encoding ENC         Content-Encoding of the body (identity or gzip; others pass unchanged)\n"
    "  --in-header FILE       Patient-Change header lines that arrived with the\n"
    "                         response (\"Patient-Change: ...\" lines or bare values)\n"
    "  --header-out FILE      where to write the Patient-Change lines (default: stderr\n"
    "                         is NOT used; without this option they are not written)\n"
    "  --log LOG              append every descriptor to this audit log\n"
    "  --checkpoint-every N   signed checkpoint every N log entries (default 1000)\n"
    "  --max-body BYTES       larger bodies pass unchanged and the event is logged\n"
    "                         (default and ceiling 64 MiB; stdin over 64 MiB is refused)\n"
    "  --at TIME              descriptor time (RFC 3339 or @EPOCH; default now)\n"
    "  --status CODE          the response's HTTP status (default 200); 206 passes unchanged\n"
    "  --cache-control VALUE  the response's Cache-Control; no-transform passes unchanged\n"
    "  --drop-out FILE        when the body changed, the response headers the proxy must\n"
    "                         remove (Content-Length, validators, digests), one per line\n"
    "  -q, --quiet            no summary on stderr\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit codes: 0 ok (changed or not), 2 usage, key, rule or I/O error.\n";

/* What the command line asks for. */
struct mbox_args {
    const char *seckey, *pwfile, *name, *service, *disclosure, *rules_path, *url, *type, *enc;
    const char *in_header, *header_out, *log_path, *cache_control, *drop_out;
    long status;
    unsigned long every;
    size_t max_body;
    time_t at;
    int quiet;
};

/* Read the options into *a; a usage error exits here (2), --help too. */
static void
parse_args(int argc, char **argv, struct mbox_args *a)
{
    static const struct option longopts[] = {
        {"seckey", required_argument, NULL, 's'},
        {"password-file", required_argument, NULL, 'P'},
        {"name", required_argument, NULL, 'n'},
        {"service", required_argument, NULL, 'S'},
        {"disclosure", required_argument, NULL, 'D'},
        {"rules", required_argument, NULL, 'r'},
        {"url", required_argument, NULL, 'u'},
        {"type", required_argument, NULL, 't'},
        {"encoding", required_argument, NULL, 'e'},
        {"in-header", required_argument, NULL, 'i'},
        {"header-out", required_argument, NULL, 'o'},
        {"log", required_argument, NULL, 'l'},
        {"checkpoint-every", required_argument, NULL, 'c'},
        {"max-body", required_argument, NULL, 'm'},
        {"at", required_argument, NULL, 'a'},
        {"status", required_argument, NULL, 'H'},
        {"cache-control", required_argument, NULL, 'C'},
        {"drop-out", required_argument, NULL, 'd'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;

    a->status = 200;
    while ((c = getopt_long(argc, argv, "s:qh", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's': a->seckey = optarg; break;
        case 'P': a->pwfile = optarg; break;
        case 'n': a->name = optarg; break;
        case 'S': a->service = optarg; break;
        case 'D': a->disclosure = optarg; break;
        case 'r': a->rules_path = optarg; break;
        case 'u': a->url = optarg; break;
        case 't': a->type = optarg; break;
        case 'e': a->enc = optarg; break;
        case 'i': a->in_header = optarg; break;
        case 'o': a->header_out = optarg; break;
        case 'l': a->log_path = optarg; break;
        case 'c':
            a->every = strtoul(optarg, &end, 10);
            if (*end || a->every == 0 || a->every > 1000000)
                cli_usage_short(usage_text, "--checkpoint-every: expected 1..1000000");
            break;
        case 'm':
            a->max_body = strtoull(optarg, &end, 10);
            if (*end || a->max_body == 0)
                cli_usage_short(usage_text, "--max-body: expected a positive number of bytes");
            break;
        case 'a':
            if (patient_time_parse(optarg, &a->at) != PATIENT_OK)
                cli_usage_short(usage_text, "--at: expected RFC 3339 (2026-11-27T08:00:00Z) or @EPOCH");
            break;
        case 'H':
            a->status = strtol(optarg, &end, 10);
            if (*end || end == optarg || a->status < 100 || a->status > 599)
                cli_usage_short(usage_text, "--status: expected an HTTP status code 100..599");
            break;
        case 'C': a->cache_control = optarg; break;
        case 'd': a->drop_out = optarg; break;
        case 'q': a->quiet = 1; break;
        case 'h': cli_usage_short(usage_text, NULL);
        default: cli_usage_short(usage_text, "unknown option");
        }
    }
    if (optind != argc)
        cli_usage_short(usage_text, "unexpected argument '%s' (the body comes on stdin)", argv[optind]);
    if (!a->seckey || !a->name || !a->rules_path || !a->url)
        cli_usage_short(usage_text, "-s SECKEY, --name, --rules and --url are required");
    /* stdin carries the body and stdout the new one: refused here, before
     * a password is asked for or the log is opened */
    if (a->in_header && strcmp(a->in_header, "-") == 0)
        cli_usage_short(usage_text, "--in-header: a file, not '-' (the body comes on stdin)");
    if (a->header_out && strcmp(a->header_out, "-") == 0)
        cli_usage_short(usage_text, "--header-out: a file, not '-' (the new body goes to stdout)");
    if (a->drop_out && strcmp(a->drop_out, "-") == 0)
        cli_usage_short(usage_text, "--drop-out: a file, not '-' (the new body goes to stdout)");
    if (a->at == 0)
        a->at = time(NULL);
}

/* Arriving Patient-Change lines: "Patient-Change: v" or bare values, split
 * into prev[0..*nprev) (malloc'd each; *hdr holds the file, the caller
 * frees both). */
static void
read_arriving(const char *in_header, char **hdr, char **prev, size_t *nprev)
{
    patient_span spans[PATIENT_MAX_HOPS + 1];
    char *line, *save = NULL;
    size_t hdrlen = 0;
    patient_err err;

    if ((err = patient_file_read(in_header, 4u * 1024 * 1024, 0, hdr, &hdrlen, NULL)) != PATIENT_OK)
        cli_fatal(in_header, err, err == PATIENT_ERR_TOO_LARGE ? "header file over 4 MiB" : NULL);
    for (line = strtok_r(*hdr, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        const char *v = line;
        size_t n0 = *nprev;
        if (strncasecmp(v, "Patient-Change:", 15) == 0)
            v += 15;
        else if (strchr(v, ':'))
            continue; /* another header */
        if ((err = patient_change_header_split(v, strlen(v), spans, PATIENT_MAX_HOPS + 1,
                                               nprev)) != PATIENT_OK)
            cli_fatal(in_header, err, "could not split the Patient-Change values");
        for (size_t i = n0; i < *nprev; i++)
            if ((prev[i] = strndup(spans[i].p, spans[i].len)) == NULL)
                cli_fatal("memory", PATIENT_ERR_NOMEM, NULL);
    }
}

/* --header-out and --drop-out: the lines are built in memory, then the file
 * is written the way every tool writes one (patient_file_write: a new file
 * renamed over a regular one, so the proxy never reads half of it; a
 * symlink, folder, FIFO or device in its place is refused). */
static FILE *
lines_open(char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);

    if (f == NULL)
        cli_fatal("memory", PATIENT_ERR_NOMEM, NULL);
    return f;
}

static void
lines_write(const char *path, FILE *f, char **text, size_t *len)
{
    if (fclose(f) != 0)
        cli_fatal("memory", PATIENT_ERR_NOMEM, NULL);
    if (patient_file_write(path, *text, *len, 0644, PATIENT_FILE_REPLACE) != PATIENT_OK)
        cli_fatal(path, PATIENT_ERR_IO, strerror(errno));
    free(*text);
    *text = NULL;
}

/* --header-out: the values that arrived, then ours. */
static void
write_header_out(const char *header_out, char *const *prev, size_t nprev,
                 const patient_mbox_result *res)
{
    char *text = NULL;
    size_t len = 0;
    FILE *hf = lines_open(&text, &len);

    for (size_t i = 0; i < nprev; i++)
        fprintf(hf, "Patient-Change: %s\n", prev[i]);
    if (res->value)
        fprintf(hf, "Patient-Change: %s\n", res->value);
    lines_write(header_out, hf, &text, &len);
}

/* --drop-out: what the proxy must remove before releasing the changed
 * body (nothing when unchanged). */
static void
write_drop_out(const char *drop_out, const patient_mbox_result *res)
{
    char *text = NULL;
    size_t len = 0;
    FILE *df = lines_open(&text, &len);

    for (const char *const *h = patient_mbox_drop_headers(); res->changed && *h; h++)
        fprintf(df, "%s\n", *h);
    lines_write(drop_out, df, &text, &len);
}

int
main(int argc, char **argv)
{
    struct mbox_args a = {0};
    const char *why;
    patient_seckey *sk = NULL;
    patient_rules *rules = NULL;
    patient_log *log = NULL;
    patient_mbox *mb = NULL;
    patient_mbox_result res;
    char *detail = NULL, *body = NULL, *hdr = NULL;
    size_t len = 0, nprev = 0;
    char *prev[PATIENT_MAX_HOPS + 1];
    patient_err err;

    /* This program owns its process: out of memory in a parse is then
     * PATIENT_ERR_NOMEM, not malformed input (error.h). */
    patient_json_track_nomem();
    cli_set_name("patient-mbox");
    parse_args(argc, argv, &a);
    if (cli_seckey_load(a.seckey, a.pwfile, &sk) != CLI_EXIT_OK)
        exit(CLI_EXIT_USAGE);
    if ((err = patient_rules_load(a.rules_path, &rules, &detail)) != PATIENT_OK)
        cli_fatal(a.rules_path, err, detail);
    if (a.log_path && (err = patient_log_open(a.log_path, sk, (unsigned)a.every, &log)) != PATIENT_OK)
        cli_fatal(a.log_path, err, NULL);
    if ((err = patient_mbox_new(sk, a.name, a.service, a.disclosure, rules, log, a.max_body, &mb)) != PATIENT_OK)
        cli_fatal("middlebox", err, NULL);
    if (a.in_header)
        read_arriving(a.in_header, &hdr, prev, &nprev);

    if ((err = patient_file_read("-", PATIENT_MAX_BODY, 0, &body, &len, NULL)) != PATIENT_OK)
        cli_fatal("stdin", err, NULL);
    /* The same rule as srv_patient: some responses are never touched. */
    if ((why = patient_mbox_may_change((int)a.status, a.cache_control, 0)) != NULL) {
        memset(&res, 0, sizeof res);
        res.skipped = why;
    } else if ((err = patient_mbox_process(
                    mb,
                    &(patient_mbox_input){.size = sizeof(patient_mbox_input), .url = a.url,
                                          .media_type = a.type, .content_encoding = a.enc,
                                          .body = (const uint8_t *)body, .len = len,
                                          .prev = (const char *const *)prev, .nprev = nprev,
                                          .now = a.at},
                    &res)) != PATIENT_OK) {
        cli_fatal("processing", err, "the body was not changed");
    }
    if (a.header_out)
        write_header_out(a.header_out, prev, nprev, &res);
    if (a.drop_out)
        write_drop_out(a.drop_out, &res);
    /* unchanged: the library did not copy the body; send ours */
    if (patient_file_write("-", res.changed ? (const void *)res.body : body,
                           res.changed ? res.len : len, 0, 0) != PATIENT_OK)
        cli_fatal("stdout", PATIENT_ERR_IO, strerror(errno));
    if (!a.quiet) {
        if (res.changed)
            fprintf(stderr, "patient-mbox: hop %zu: %zu edit%s signed%s\n", nprev + 1, res.nedits,
                    res.nedits == 1 ? "" : "s", log ? ", logged" : "");
        else
            fprintf(stderr, "patient-mbox: unchanged (%s)\n", res.skipped ? res.skipped : "no match");
    }
    patient_mbox_result_free(&res);
    for (size_t i = 0; i < nprev; i++)
        free(prev[i]);
    free(hdr);
    free(body);
    free(detail);
    patient_mbox_free(mb);
    err = patient_log_close(log);
    patient_rules_free(rules);
    patient_seckey_free(sk);
    if (err != PATIENT_OK)
        cli_fatal(a.log_path, err, "closing the audit log");
    return 0;
}
