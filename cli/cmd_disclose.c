/* patient disclose: write and sign a middlebox's disclosure document. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"

static const char usage[] =
    "usage: patient disclose -s SECKEY --out DIR|FILE [--from FILE.json]\n"
    "                        [--operator NAME] [--contact mailto:...|https://...]\n"
    "                        [--service S[,S...]] [--retention-days N]\n"
    "                        [--sharing TEXT] [--upstream-tls-min TLSv1.2]\n"
    "                        [--interception-ca PIN|CERT.pem]...\n"
    "                        [--expires 30d] [--password-file FILE] [-f]\n"
    "\n"
    "Write a middlebox's disclosure document and sign it with the middlebox's\n"
    "key (minisign, prehashed). Serve both files as\n"
    "/.well-known/patient/disclosure.json and disclosure.json.minisig.\n"
    "\n"
    "  -s, --secret-key FILE     the middlebox's secret key\n"
    "  -o, --out DIR|FILE        a folder (writes DIR/disclosure.json) or a file\n"
    "                            name; the signature goes to FILE.minisig\n"
    "      --from FILE.json      take fields from a JSON file (e.g. the previous\n"
    "                            disclosure); flags override it (its\n"
    "                            interception CAs are kept unless\n"
    "                            --interception-ca is given); its issued,\n"
    "                            expires and key are ignored\n"
    "      --operator NAME       who runs the middlebox\n"
    "      --contact URI         mailto: or https: contact\n"
    "      --service S[,S...]    service types (e.g. tracker-filter,malware-filter)\n"
    "      --retention-days N    days data about users is kept (0: none)\n"
    "      --sharing TEXT        with whom data is shared (\"none\" or free text)\n"
    "      --upstream-tls-min V  weakest TLS it accepts towards origins\n"
    "                            (TLSv1.2 or TLSv1.3 ...)\n"
    "      --interception-ca PIN|PEM  the CA this middlebox intercepts endpoints'\n"
    "                            TLS with (sha256-<base64> of its SPKI, or its PEM\n"
    "                            certificate; repeatable, at most 8)\n"
    "      --expires DURATION    validity from now: 90s, 15m, 12h, 30d, 2w\n"
    "                            (default 30d, at most 3650d)\n"
    "      --password-file FILE  password for an encrypted key\n"
    "  -f, --force               replace existing files\n"
    "  -h, --help                show this help\n";

#define EXPIRES_MAX (3650LL * 86400)

enum {
    OPT_FROM = 256,
    OPT_OPERATOR,
    OPT_CONTACT,
    OPT_SERVICE,
    OPT_RETENTION,
    OPT_SHARING,
    OPT_TLS,
    OPT_ICA,
    OPT_EXPIRES,
    OPT_PASSWORD_FILE
};

/* One run of the verb: what the options say, the document's fields (the
 * options first, --from filling the rest) and what those fields borrow. */
typedef struct {
    const char *sec, *out, *from, *pwfile, *service_arg, *retention_arg;
    long long secs; /* --expires */
    int force;
    int retention_bad; /* said after --from's own errors */
    uint8_t ica[PATIENT_MAX_TLS_PINS][32];
    size_t nica;
    patient_disclosure_info in;
    char *services_buf, *from_text, *detail;
    const char **services;
    patient_disclosure *from_held;
    char jpath[PATH_MAX], spath[PATH_MAX + 16];
} disclose_run;

/* The options into d; a usage error exits here. */
static int
parse_args(int argc, char **argv, disclose_run *d)
{
    static const struct option opts[] = {
        {"secret-key", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"from", required_argument, NULL, OPT_FROM},
        {"operator", required_argument, NULL, OPT_OPERATOR},
        {"contact", required_argument, NULL, OPT_CONTACT},
        {"service", required_argument, NULL, OPT_SERVICE},
        {"services", required_argument, NULL, OPT_SERVICE},
        {"retention-days", required_argument, NULL, OPT_RETENTION},
        {"sharing", required_argument, NULL, OPT_SHARING},
        {"upstream-tls-min", required_argument, NULL, OPT_TLS},
        {"interception-ca", required_argument, NULL, OPT_ICA},
        {"expires", required_argument, NULL, OPT_EXPIRES},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *expires_arg = "30d";
    int c;

    d->in.retention_days = -1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:o:fh", opts, NULL)) != -1) {
        switch (c) {
        case 's': d->sec = optarg; break;
        case 'o': d->out = optarg; break;
        case 'f': d->force = 1; break;
        case OPT_FROM: d->from = optarg; break;
        case OPT_OPERATOR: d->in.operator_name = optarg; break;
        case OPT_CONTACT: d->in.contact = optarg; break;
        case OPT_SERVICE: d->service_arg = optarg; break;
        case OPT_RETENTION: d->retention_arg = optarg; break;
        case OPT_SHARING: d->in.sharing = optarg; break;
        case OPT_TLS: d->in.upstream_tls_min = optarg; break;
        case OPT_ICA:
            if (cli_tls_pin_add(usage, 0, "--interception-ca", optarg, d->ica, &d->nica) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_EXPIRES: expires_arg = optarg; break;
        case OPT_PASSWORD_FILE: d->pwfile = optarg; break;
        case 'h': cli_usage(usage, NULL);
        default: cli_usage(usage, "invalid option");
        }
    }
    if (optind != argc)
        cli_usage(usage, "unexpected argument: %s", argv[optind]);
    if (d->sec == NULL || d->out == NULL)
        cli_usage(usage, "-s SECKEY and --out DIR|FILE are required");
    if (patient_duration_parse(expires_arg, EXPIRES_MAX, &d->secs) != PATIENT_OK || d->secs <= 0)
        cli_usage(usage, "--expires: not a duration like 30d (at most 3650d)");
    return CLI_EXIT_OK;
}

/* The fields the flags give; --from fills only those they leave unset. */
static void
fields_from_flags(disclose_run *d)
{
    char *end;

    if (d->service_arg) {
        char *p;
        size_t n = 1, nservices = 0;
        if ((d->services_buf = strdup(d->service_arg)) == NULL)
            cli_die(CLI_EXIT_USAGE, "out of memory");
        for (p = d->services_buf; *p; p++)
            n += *p == ',';
        if ((d->services = calloc(n + 1, sizeof *d->services)) == NULL)
            cli_die(CLI_EXIT_USAGE, "out of memory");
        for (p = strtok(d->services_buf, ","); p; p = strtok(NULL, ","))
            d->services[nservices++] = p;
        d->in.services = d->services;
        d->in.nservices = nservices;
    }
    if (d->retention_arg) {
        errno = 0;
        d->in.retention_days = strtoll(d->retention_arg, &end, 10);
        if (errno || *end || end == d->retention_arg || d->in.retention_days < 0 ||
            d->in.retention_days > PATIENT_DISCLOSURE_MAX_RETENTION) {
            /* Said after --from's own errors; set all the same, so that
             * --from's retention_days is not read. */
            d->retention_bad = 1;
            d->in.retention_days = 0;
        }
    }
    if (d->nica) {
        d->in.interception_ca = (const uint8_t(*)[32])d->ica;
        d->in.ninterception_ca = d->nica;
    }
}

/* --from: the fields the flags left unset, from the library's reader. */
static int
merge_from(disclose_run *d)
{
    const char *field = NULL;
    size_t from_len = 0;
    patient_err err;

    if (d->from == NULL)
        return CLI_EXIT_OK;
    if ((err = patient_file_read(d->from, PATIENT_DISCLOSURE_MAX_BYTES, 0, &d->from_text, &from_len,
                                 NULL)) != PATIENT_OK) {
        cli_warn("%s: %s [%s]", d->from, patient_strerror(err), patient_errname(err));
        return CLI_EXIT_USAGE;
    }
    err = patient_disclosure_info_from_json(d->from_text, from_len, &d->in, &d->from_held, &field,
                                            &d->detail);
    /* A field's value: a usage error; the document itself: a warning
     * with its result code. */
    if (err != PATIENT_OK && field != NULL)
        cli_usage(usage, "%s: %s", d->from, d->detail ? d->detail : patient_strerror(err));
    if (err != PATIENT_OK) {
        cli_warn("%s: %s [%s]", d->from, d->detail ? d->detail : patient_strerror(err),
                 patient_errname(err));
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Every field present and valid, and the validity period set; a usage
 * error exits here, before the key's password is asked for. */
static void
check_fields(disclose_run *d)
{
    patient_disclosure_info *in = &d->in;
    const char *bad = NULL;

    if (d->retention_bad)
        cli_usage(usage, "--retention-days: not an integer 0..%d",
                  PATIENT_DISCLOSURE_MAX_RETENTION);
    if (in->operator_name == NULL)
        cli_usage(usage, "--operator is required (or \"operator\" in --from)");
    if (in->contact == NULL)
        cli_usage(usage, "--contact is required (or \"contact\" in --from)");
    if (in->nservices == 0)
        cli_usage(usage, "--service is required (or \"services\" in --from)");
    if (in->retention_days < 0)
        cli_usage(usage, "--retention-days is required (or \"retention_days\" in --from)");
    if (in->sharing == NULL)
        cli_usage(usage, "--sharing is required (\"none\" or who receives data)");
    if (in->upstream_tls_min == NULL)
        cli_usage(usage, "--upstream-tls-min is required (e.g. TLSv1.2)");
    if (patient_tls_version_rank(in->upstream_tls_min) == 0)
        cli_usage(usage, "--upstream-tls-min: one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3");
    in->issued = time(NULL);
    in->expires = in->issued + (time_t)d->secs;
    /* The library's field rules, before asking for the key's password. */
    if (patient_disclosure_info_check(in, &bad) != PATIENT_OK)
        cli_usage(usage, "invalid %s: operator, services and sharing must be printable text "
                         "(operator and each service at most %d bytes), contact mailto: or "
                         "https://",
                  bad, PATIENT_DISCLOSURE_MAX_TEXT);
}

/* The document's path (DIR/disclosure.json for a folder) and its
 * signature's; existing files refused without -f. */
static int
output_paths(disclose_run *d)
{
    struct stat st;

    if (stat(d->out, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (snprintf(d->jpath, sizeof d->jpath, "%s/disclosure.json", d->out) >=
            (int)sizeof d->jpath)
            cli_usage(usage, "--out: path too long");
    } else if (snprintf(d->jpath, sizeof d->jpath, "%s", d->out) >= (int)sizeof d->jpath) {
        cli_usage(usage, "--out: path too long");
    }
    snprintf(d->spath, sizeof d->spath, "%s.minisig", d->jpath);
    if (!d->force && (cli_exists(d->jpath) || cli_exists(d->spath))) {
        cli_warn("%s or %s already exists; use -f to overwrite [file.exists]", d->jpath, d->spath);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Sign with the key, write the document, then its signature, and say
 * what was written. */
static int
sign_and_write(disclose_run *d)
{
    patient_seckey *sk = NULL;
    patient_pubkey pk;
    char *json = NULL, *sig = NULL, id[PATIENT_KEYID_HEX], exp[PATIENT_TIME_BYTES];
    size_t jlen = 0;
    unsigned flags = d->force ? PATIENT_FILE_REPLACE : 0;
    patient_err err;
    int rc;

    if ((rc = cli_seckey_load(d->sec, d->pwfile, &sk)) != CLI_EXIT_OK)
        goto out;
    err = patient_disclosure_sign(&d->in, sk, &json, &jlen, &sig);
    if (err == PATIENT_ERR_ARG) {
        cli_warn("invalid field: operator and services must be printable (at most %d bytes), "
                 "contact mailto: or https://, sharing non-empty [argument]",
                 PATIENT_DISCLOSURE_MAX_TEXT);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if ((rc = cli_report(err, "signing")) != CLI_EXIT_OK)
        goto out;
    /* Document first, then its signature. */
    if (patient_file_write(d->jpath, json, jlen, 0644, flags) != PATIENT_OK) {
        cli_warn("%s: %s [io]", d->jpath, errno == EEXIST ? "exists" : strerror(errno));
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (patient_file_write(d->spath, sig, strlen(sig), 0644, flags) != PATIENT_OK) {
        cli_warn("%s: %s [io]", d->spath, errno == EEXIST ? "exists" : strerror(errno));
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    patient_seckey_pubkey(sk, &pk);
    patient_keyid_hex(pk.id, id);
    /* At most 3650 days from now, so a four-digit year: the text
     * strftime("%Y-%m-%dT%H:%M:%SZ") gives. */
    patient_time_format(d->in.expires, exp);
    printf("wrote %s and %s (key %s, expires %s)\n", d->jpath, d->spath, id, exp);
    rc = CLI_EXIT_OK;
out:
    patient_seckey_free(sk);
    free(json);
    free(sig);
    return rc;
}

int
cmd_disclose(int argc, char **argv)
{
    disclose_run d;
    int rc;

    memset(&d, 0, sizeof d);
    if ((rc = parse_args(argc, argv, &d)) != CLI_EXIT_OK)
        return rc;
    fields_from_flags(&d);
    if ((rc = merge_from(&d)) == CLI_EXIT_OK) {
        check_fields(&d);
        if ((rc = output_paths(&d)) == CLI_EXIT_OK)
            rc = sign_and_write(&d);
    }
    patient_disclosure_free(d.from_held);
    free(d.detail);
    free(d.from_text);
    free(d.services_buf);
    free(d.services);
    return rc;
}
