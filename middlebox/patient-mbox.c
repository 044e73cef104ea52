/* patient-mbox: a rule-driven middlebox as a stdin -> stdout filter, for
 * proxies with external filter hooks. Every change it makes is signed
 * (Patient-Change) and, with --log, appended to a tamper-evident audit log. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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

int
main(int argc, char **argv)
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
    const char *seckey = NULL, *pwfile = NULL, *name = NULL, *service = NULL, *disclosure = NULL;
    const char *rules_path = NULL, *url = NULL, *type = NULL, *enc = NULL, *in_header = NULL;
    const char *header_out = NULL, *log_path = NULL, *cache_control = NULL, *drop_out = NULL;
    const char *why;
    long status = 200;
    unsigned long every = 0;
    size_t max_body = 0;
    time_t at = 0;
    int quiet = 0, c;
    patient_seckey *sk = NULL;
    patient_rules *rules = NULL;
    patient_log *log = NULL;
    patient_mbox *mb = NULL;
    patient_mbox_result res;
    char *detail = NULL, *body = NULL, *hdr = NULL;
    size_t len = 0, hdrlen = 0, nprev = 0;
    patient_span spans[PATIENT_MAX_HOPS + 1];
    char *prev[PATIENT_MAX_HOPS + 1];
    patient_err err;
    FILE *hf;

    cli_set_name("patient-mbox");
    while ((c = getopt_long(argc, argv, "s:qh", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's': seckey = optarg; break;
        case 'P': pwfile = optarg; break;
        case 'n': name = optarg; break;
        case 'S': service = optarg; break;
        case 'D': disclosure = optarg; break;
        case 'r': rules_path = optarg; break;
        case 'u': url = optarg; break;
        case 't': type = optarg; break;
        case 'e': enc = optarg; break;
        case 'i': in_header = optarg; break;
        case 'o': header_out = optarg; break;
        case 'l': log_path = optarg; break;
        case 'c':
            every = strtoul(optarg, &end, 10);
            if (*end || every == 0 || every > 1000000)
                cli_usage_short(usage_text, "--checkpoint-every: expected 1..1000000");
            break;
        case 'm':
            max_body = strtoull(optarg, &end, 10);
            if (*end || max_body == 0)
                cli_usage_short(usage_text, "--max-body: expected a positive number of bytes");
            break;
        case 'a':
            if (patient_time_parse(optarg, &at) != PATIENT_OK)
                cli_usage_short(usage_text, "--at: expected RFC 3339 (2026-11-27T08:00:00Z) or @EPOCH");
            break;
        case 'H':
            status = strtol(optarg, &end, 10);
            if (*end || end == optarg || status < 100 || status > 599)
                cli_usage_short(usage_text, "--status: expected an HTTP status code 100..599");
            break;
        case 'C': cache_control = optarg; break;
        case 'd': drop_out = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': cli_usage_short(usage_text, NULL);
        default: cli_usage_short(usage_text, "unknown option");
        }
    }
    if (optind != argc)
        cli_usage_short(usage_text, "unexpected argument '%s' (the body comes on stdin)", argv[optind]);
    if (!seckey || !name || !rules_path || !url)
        cli_usage_short(usage_text, "-s SECKEY, --name, --rules and --url are required");
    if (at == 0)
        at = time(NULL);

    if (cli_seckey_load(seckey, pwfile, &sk) != CLI_EXIT_OK)
        exit(CLI_EXIT_USAGE);
    if ((err = patient_rules_load(rules_path, &rules, &detail)) != PATIENT_OK)
        cli_fatal(rules_path, err, detail);
    if (log_path && (err = patient_log_open(log_path, sk, (unsigned)every, &log)) != PATIENT_OK)
        cli_fatal(log_path, err, NULL);
    if ((err = patient_mbox_new(sk, name, service, disclosure, rules, log, max_body, &mb)) != PATIENT_OK)
        cli_fatal("middlebox", err, NULL);

    /* Arriving Patient-Change lines: "Patient-Change: v" or bare values. */
    if (in_header) {
        char *line, *save = NULL;
        /* stdin carries the body */
        if (strcmp(in_header, "-") == 0)
            cli_usage_short(usage_text, "--in-header: a file, not '-' (the body comes on stdin)");
        if ((err = cli_read_file(in_header, 4u * 1024 * 1024, 0, &hdr, &hdrlen, NULL)) != PATIENT_OK)
            cli_fatal(in_header, err, err == PATIENT_ERR_TOO_LARGE ? "header file over 4 MiB" : NULL);
        for (line = strtok_r(hdr, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
            const char *v = line;
            size_t n0 = nprev;
            if (strncasecmp(v, "Patient-Change:", 15) == 0)
                v += 15;
            else if (strchr(v, ':'))
                continue; /* another header */
            if ((err = patient_change_header_split(v, strlen(v), spans, PATIENT_MAX_HOPS + 1,
                                                   &nprev)) != PATIENT_OK)
                cli_fatal(in_header, err, "could not split the Patient-Change values");
            for (size_t i = n0; i < nprev; i++)
                if ((prev[i] = strndup(spans[i].p, spans[i].len)) == NULL)
                    cli_fatal("memory", PATIENT_ERR_NOMEM, NULL);
        }
    }

    if ((err = cli_read_file("-", PATIENT_MAX_BODY, 0, &body, &len, NULL)) != PATIENT_OK)
        cli_fatal("stdin", err, NULL);
    /* The same rule as srv_patient: some responses are never touched. */
    if ((why = patient_mbox_may_change((int)status, cache_control, 0)) != NULL) {
        memset(&res, 0, sizeof res);
        res.skipped = why;
    } else if ((err = patient_mbox_process(
                    mb,
                    &(patient_mbox_input){.size = sizeof(patient_mbox_input), .url = url,
                                          .media_type = type, .content_encoding = enc,
                                          .body = (const uint8_t *)body, .len = len,
                                          .prev = (const char *const *)prev, .nprev = nprev,
                                          .now = at},
                    &res)) != PATIENT_OK) {
        cli_fatal("processing", err, "the body was not changed");
    }
    if (header_out) {
        int fd = strcmp(header_out, "-") == 0 ? STDOUT_FILENO
                                                : open(header_out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || (hf = fdopen(fd, "w")) == NULL)
            cli_fatal(header_out, PATIENT_ERR_IO, strerror(errno));
        for (size_t i = 0; i < nprev; i++)
            fprintf(hf, "Patient-Change: %s\n", prev[i]);
        if (res.value)
            fprintf(hf, "Patient-Change: %s\n", res.value);
        if (fclose(hf) != 0)
            cli_fatal(header_out, PATIENT_ERR_IO, strerror(errno));
    }
    if (drop_out) {
        /* What the proxy must remove before releasing the changed body. */
        FILE *df;
        int fd = open(drop_out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || (df = fdopen(fd, "w")) == NULL)
            cli_fatal(drop_out, PATIENT_ERR_IO, strerror(errno));
        for (const char *const *h = patient_mbox_drop_headers(); res.changed && *h; h++)
            fprintf(df, "%s\n", *h);
        if (fclose(df) != 0)
            cli_fatal(drop_out, PATIENT_ERR_IO, strerror(errno));
    }
    /* unchanged: the library did not copy the body; send ours */
    if (cli_write_all(STDOUT_FILENO, res.changed ? (const void *)res.body : body,
                      res.changed ? res.len : len) != 0)
        cli_fatal("stdout", PATIENT_ERR_IO, strerror(errno));
    if (!quiet) {
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
        cli_fatal(log_path, err, "closing the audit log");
    return 0;
}
