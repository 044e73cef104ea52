/* patient inspect: say what an artefact is and what it claims, without
 * trusting it. The library recognises and renders it (patient/inspect.h);
 * this reads the file and prints. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"

static const char usage[] =
    "usage: patient inspect FILE|- [--json]\n"
    "\n"
    "Recognise a PATIENT artefact by its content and show what it says, without\n"
    "verifying anything: public and secret key files, RW... key strings, minisign\n"
    "signatures, manifests, Patient-Change and Patient-Origin values or whole header\n"
    "lines, checkpoint JWS, disclosures, trust policies, rule files, evidence\n"
    "bundles, verification reports, audit log lines and whole audit logs.\n"
    "Secret keys: only whether encrypted, the key id and public key when readable.\n"
    "Input is capped at 64 MiB (an audit log FILE of any size is streamed).\n"
    "\n"
    "  --json      machine output: {\"kind\", \"signed\", \"verified\": false, \"details\"}\n"
    "  -h, --help  show this help\n"
    "\n"
    "Exit: 0 recognised, 2 unparseable / unknown input or I/O error.\n";

enum { OPT_JSON = 256 };

int
cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c, rc = CLI_EXIT_USAGE, head_only;
    const char *path;
    char *data = NULL, *s = NULL;
    size_t len;
    patient_inspection *r = NULL;
    patient_err err;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = 1; break;
        case 'h': cli_usage(usage, NULL);
        default: cli_usage(usage, "invalid option");
        }
    }
    if (optind != argc - 1)
        cli_usage(usage, optind >= argc ? "no FILE given (use - for stdin)"
                                        : "one FILE at a time");
    path = argv[optind];
    /* Over PATIENT_INSPECT_MAX only the head is read: enough to say what
     * it is (an audit log is then streamed from its path). */
    if ((err = patient_file_read(path, PATIENT_INSPECT_MAX, PATIENT_FILE_HEAD, &data, &len,
                                 &head_only)) != PATIENT_OK) {
        err = patient_inspect_unreadable(err, &r);
    } else {
        patient_inspect_opts o = PATIENT_OPTS_INIT(patient_inspect_opts);
        o.path = strcmp(path, "-") != 0 ? path : NULL;
        o.head_only = head_only;
        if ((err = patient_inspect(data, len, &o, &r)) == PATIENT_OK)
            rc = CLI_EXIT_OK;
    }
    if (r == NULL) {
        rc = cli_report(err, path);
        goto out;
    }
    s = json ? patient_inspection_json(r, path)
             : rc == CLI_EXIT_OK ? patient_inspection_text(r, path) : NULL;
    if (s == NULL && (json || rc == CLI_EXIT_OK)) {
        rc = cli_report(PATIENT_ERR_NOMEM, path);
        goto out;
    }
    if (json)
        puts(s);
    else if (s != NULL)
        fputs(s, stdout);
    if (rc != CLI_EXIT_OK)
        cli_warn("%s: cannot inspect: %s", strcmp(path, "-") == 0 ? "(stdin)" : path,
                 patient_inspection_error(r));
out:
    free(s);
    patient_inspection_free(r);
    free(data);
    return rc;
}
