/* patient policy: write, extend, lint and show the endpoint's trust policy. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"

static const char usage[] =
    "usage: patient policy init FILE [-f]\n"
    "       patient policy add-publisher FILE ORIGIN PUB\n"
    "       patient policy add-middlebox FILE NAME PUB [--reasons GLOB,...]\n"
    "                     [--paths GLOB,...] [--origins GLOB,...]\n"
    "                     [--max-edits N|unlimited] [--no-insert] [--may-decrypt]\n"
    "                     [--interception-ca PIN|CERT.pem]...\n"
    "       patient policy check FILE\n"
    "       patient policy show FILE\n"
    "\n"
    "Manage the endpoint's trust policy (format: docs/FORMAT.md, \"Trust policy\").\n"
    "PUB is a public key file or an \"RW...\" key string.\n"
    "\n"
    "  init           write a starter policy, every field at its safe default;\n"
    "                 refuses to overwrite FILE unless -f\n"
    "  add-publisher  trust PUB to sign ORIGIN (\"https://host[:port]\")\n"
    "  add-middlebox  allow the middlebox key PUB to change content:\n"
    "      --reasons GLOB,...  reason codes it may use (fnmatch globs, e.g.\n"
    "                          \"tracker.*\"); none given: it may change nothing\n"
    "      --paths GLOB,...    URL paths (default \"/*\": all; '*' matches '/')\n"
    "      --origins GLOB,...  origins (default \"*\": all)\n"
    "      --max-edits N       edits per response, all its hops (default 100; \"unlimited\")\n"
    "      --no-insert         deletions only: no inserted bytes\n"
    "      --may-decrypt       it may intercept (decrypt) your TLS: a chain that\n"
    "                          holds the CA its signed disclosure declares is\n"
    "                          then \"decrypted by NAME\", not an unknown party\n"
    "      --interception-ca PIN|PEM  the CA it intercepts with, as you installed\n"
    "                          it (sha256-<base64> SPKI pin or PEM; repeatable):\n"
    "                          names it on pages it did not change as well\n"
    "  check          lint: unknown fields, rules that never match, weak settings;\n"
    "                 exit 0 clean, 1 findings (or an invalid policy), 2 I/O error\n"
    "  show           print a summary of the policy\n"
    "\n"
    "The default policy path is $XDG_CONFIG_HOME/patient/policy.json.\n";

/* Split "a,b,c" into a NULL-terminated list (modifies s). */
static char **
split_list(char *s)
{
    size_t n = 1, i = 0;
    char **v, *p;

    for (p = s; *p; p++)
        n += *p == ',';
    if ((v = calloc(n + 1, sizeof *v)) == NULL)
        cli_die(CLI_EXIT_USAGE, "out of memory");
    for (p = strtok(s, ","); p; p = strtok(NULL, ","))
        v[i++] = p;
    v[i] = NULL;
    return v;
}

static int
load_strict(const char *path, patient_policy **p)
{
    char *detail = NULL;
    patient_err err = patient_policy_load(path, p, &detail);

    if (err != PATIENT_OK) {
        cli_warn("%s: %s [%s]", path, detail ? detail : patient_strerror(err),
                 patient_errname(err));
        free(detail);
        return err == PATIENT_ERR_IO || err == PATIENT_ERR_NOT_FOUND ||
                       err == PATIENT_ERR_UNSAFE_PATH || err == PATIENT_ERR_NOMEM
                   ? CLI_EXIT_USAGE
                   : CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

static int
load_key(const char *spec, patient_pubkey *pk)
{
    patient_err err = patient_pubkey_load(spec, pk);

    if (err != PATIENT_OK) {
        cli_warn("%s: not a public key file or \"RW...\" key: %s [%s]", spec,
                 patient_strerror(err), patient_errname(err));
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static int
do_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    patient_policy *p = NULL;
    int c, force = 0, rc;
    patient_err err;

    optind = 1;
    while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
        switch (c) {
        case 'f': force = 1; break;
        case 'h': cli_usage(usage, NULL);
        default: cli_usage(usage, "invalid option");
        }
    }
    if (argc - optind != 1)
        cli_usage(usage, "init takes one FILE");
    if ((err = patient_policy_new(&p)) != PATIENT_OK)
        return cli_report(err, NULL);
    err = patient_policy_save(p, argv[optind], force);
    patient_policy_free(p);
    if (err == PATIENT_ERR_EXISTS) {
        cli_warn("%s already exists; use -f to overwrite it [file.exists]", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_report(err, argv[optind])) != CLI_EXIT_OK)
        return rc;
    if (strcmp(argv[optind], "-") != 0)
        fprintf(stderr,
                "%s: wrote %s: it trusts no publisher and no middlebox yet; add them with\n"
                "`patient policy add-publisher` and `patient policy add-middlebox`.\n",
                cli_name(), argv[optind]);
    return CLI_EXIT_OK;
}

static int
do_add_publisher(int argc, char **argv)
{
    patient_policy *p = NULL;
    patient_pubkey pk;
    char id[PATIENT_KEYID_HEX];
    patient_err err;
    int rc;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        cli_usage(usage, NULL);
    if (argc != 4)
        cli_usage(usage, "add-publisher takes FILE ORIGIN PUB");
    if ((rc = load_key(argv[3], &pk)) != CLI_EXIT_OK || (rc = load_strict(argv[1], &p)) != CLI_EXIT_OK)
        return rc;
    patient_keyid_hex(pk.id, id);
    err = patient_policy_add_publisher(p, argv[2], &pk);
    if (err == PATIENT_ERR_EXISTS) {
        printf("%s already trusts key %s for %s\n", argv[1], id, argv[2]);
        patient_policy_free(p);
        return CLI_EXIT_OK;
    }
    if (err == PATIENT_ERR_ARG) {
        patient_policy_free(p);
        cli_usage(usage, "%s is not an origin (\"https://host[:port]\", no path)", argv[2]);
    }
    if (err == PATIENT_OK)
        err = patient_policy_save(p, argv[1], 1);
    patient_policy_free(p);
    if ((rc = cli_report(err, argv[1])) == CLI_EXIT_OK)
        printf("%s: trusts key %s to sign %s\n", argv[1], id, argv[2]);
    return rc;
}

enum { OPT_REASONS = 256, OPT_PATHS, OPT_ORIGINS, OPT_MAX_EDITS, OPT_NO_INSERT, OPT_INSERT,
       OPT_MAY_DECRYPT, OPT_ICA };

static int
do_add_middlebox(int argc, char **argv)
{
    static const struct option opts[] = {
        {"reasons", required_argument, NULL, OPT_REASONS},
        {"paths", required_argument, NULL, OPT_PATHS},
        {"origins", required_argument, NULL, OPT_ORIGINS},
        {"max-edits", required_argument, NULL, OPT_MAX_EDITS},
        {"no-insert", no_argument, NULL, OPT_NO_INSERT},
        {"insert", no_argument, NULL, OPT_INSERT},
        {"may-decrypt", no_argument, NULL, OPT_MAY_DECRYPT},
        {"interception-ca", required_argument, NULL, OPT_ICA},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char **reasons = NULL, **paths = NULL, **origins = NULL, *end;
    long long max_edits = PATIENT_POLICY_DEFAULT_MAX_EDITS;
    int insert = 1, may_decrypt = 0, c, rc;
    uint8_t ica[PATIENT_MAX_TLS_PINS][32];
    size_t nica = 0;
    patient_policy *p = NULL;
    patient_pubkey pk;
    char id[PATIENT_KEYID_HEX];
    patient_err err;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_REASONS: free(reasons); reasons = split_list(optarg); break;
        case OPT_PATHS: free(paths); paths = split_list(optarg); break;
        case OPT_ORIGINS: free(origins); origins = split_list(optarg); break;
        case OPT_MAX_EDITS:
            if (strcmp(optarg, "unlimited") == 0) {
                max_edits = -1;
                break;
            }
            errno = 0;
            max_edits = strtoll(optarg, &end, 10);
            if (errno || *end || end == optarg || max_edits < 0 ||
                max_edits > PATIENT_POLICY_MAX_EDITS_CAP)
                cli_usage(usage, "--max-edits: not \"unlimited\" or an integer 0..%d",
                          PATIENT_POLICY_MAX_EDITS_CAP);
            break;
        case OPT_NO_INSERT: insert = 0; break;
        case OPT_INSERT: insert = 1; break;
        case OPT_MAY_DECRYPT: may_decrypt = 1; break;
        case OPT_ICA:
            if (cli_tls_pin_add(usage, 0, "--interception-ca", optarg, ica, &nica) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h': cli_usage(usage, NULL);
        default: cli_usage(usage, "invalid option");
        }
    }
    if (argc - optind != 3)
        cli_usage(usage, "add-middlebox takes FILE NAME PUB");
    if ((rc = load_key(argv[optind + 2], &pk)) != CLI_EXIT_OK ||
        (rc = load_strict(argv[optind], &p)) != CLI_EXIT_OK)
        goto out;
    patient_keyid_hex(pk.id, id);
    err = patient_policy_add_middlebox(p, argv[optind + 1], &pk, (const char *const *)reasons,
                                       (const char *const *)paths, (const char *const *)origins,
                                       max_edits, insert);
    if (err == PATIENT_ERR_EXISTS) {
        cli_warn("%s: a middlebox with key %s is listed already; edit the file to change it "
                 "[file.exists]",
                 argv[optind], id);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (err == PATIENT_ERR_ARG) {
        cli_warn("the name must be 1 to %d printable bytes, and patterns printable",
                 PATIENT_POLICY_MAX_NAME_LEN);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (err == PATIENT_OK && may_decrypt)
        err = patient_policy_set_may_decrypt(p, pk.id, 1);
    for (size_t i = 0; err == PATIENT_OK && i < nica; i++)
        if ((err = patient_policy_add_interception_ca(p, pk.id, ica[i])) == PATIENT_ERR_EXISTS)
            err = PATIENT_OK; /* the same pin given twice */
    if (err == PATIENT_OK)
        err = patient_policy_save(p, argv[optind], 1);
    if ((rc = cli_report(err, argv[optind])) != CLI_EXIT_OK)
        goto out;
    printf("%s: middlebox \"%s\" (key %s) may change content", argv[optind], argv[optind + 1], id);
    if (reasons == NULL || reasons[0] == NULL)
        printf(" for no reason at all\n");
    else
        printf(" for reasons matching %s%s\n", reasons[0], reasons[1] ? ",..." : "");
    if (reasons == NULL || reasons[0] == NULL)
        cli_warn("no --reasons given: this middlebox may change nothing until reasons are added");
out:
    free(reasons);
    free(paths);
    free(origins);
    patient_policy_free(p);
    return rc;
}

static const char *
sev_name(patient_lint_severity s)
{
    return s == PATIENT_LINT_ERROR ? "error" : s == PATIENT_LINT_WARNING ? "warning" : "note";
}

static void
print_finding(void *ctx, patient_lint_severity sev, const char *code, const char *where,
              const char *message)
{
    const char *file = ctx;

    printf("%s: %s: %s: %s [%s]\n", file, sev_name(sev), where, message, code);
}

static int
do_check(int argc, char **argv)
{
    patient_policy *p = NULL;
    char *detail = NULL;
    patient_err err;
    size_t n;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        cli_usage(usage, NULL);
    if (argc != 2)
        cli_usage(usage, "check takes one FILE");
    err = patient_policy_load_ex(argv[1], PATIENT_POLICY_KEEP_UNKNOWN, &p, &detail);
    if (err != PATIENT_OK) {
        int io = err == PATIENT_ERR_IO || err == PATIENT_ERR_NOT_FOUND ||
                 err == PATIENT_ERR_UNSAFE_PATH || err == PATIENT_ERR_NOMEM;
        if (io) {
            cli_warn("%s: %s [%s]", argv[1], patient_strerror(err), patient_errname(err));
        } else {
            printf("%s: error: %s [policy.invalid]\n", argv[1], detail ? detail : patient_strerror(err));
        }
        free(detail);
        return io ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    n = patient_policy_lint(p, print_finding, argv[1]);
    patient_policy_free(p);
    if (n == 0)
        printf("%s: ok\n", argv[1]);
    return n ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int
do_show(int argc, char **argv)
{
    patient_policy *p = NULL;
    char *json = NULL;
    size_t n;
    int rc;
    patient_err err;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        cli_usage(usage, NULL);
    if (argc != 2)
        cli_usage(usage, "show takes one FILE");
    if ((rc = load_strict(argv[1], &p)) != CLI_EXIT_OK)
        return rc;
    printf("policy %s\n", argv[1]);
    printf("  middleboxes: %zu\n", patient_policy_middlebox_count(p));
    for (size_t i = 0; i < patient_policy_middlebox_count(p); i++) {
        const patient_policy_middlebox *m = patient_policy_middlebox_at(p, i);
        char id[PATIENT_KEYID_HEX];
        long long me = patient_policy_middlebox_max_edits(m);
        char lim[32] = "unlimited";
        if (me >= 0)
            snprintf(lim, sizeof lim, "%lld", me);
        patient_keyid_hex(patient_policy_middlebox_key(m)->id, id);
        printf("  - %s (key %s): max edits %s, %s\n", patient_policy_middlebox_name(m), id, lim,
               patient_policy_middlebox_insert_allowed(m) ? "may insert" : "deletions only");
    }
    {
        char ret[48] = "any";
        if (patient_policy_max_retention_days(p) >= 0)
            snprintf(ret, sizeof ret, "%lld days", patient_policy_max_retention_days(p));
        printf("  require: proof %s, disclosure %s, max retention %s, upstream TLS >= %s\n",
               patient_policy_require_proof(p) == PATIENT_PROOF_PROVEN ? "proven" : "attested",
               patient_policy_require_disclosure(p) ? "required" : "optional", ret,
               patient_policy_min_upstream_tls(p) ? patient_policy_min_upstream_tls(p) : "any");
    }
    printf("  origins without a manifest: %s\n",
           patient_policy_unsigned(p) == PATIENT_UNSIGNED_INVALID ? "invalid" : "unverifiable");
    printf("\ncanonical form:\n");
    if ((err = patient_policy_serialize(p, &json, &n)) == PATIENT_OK)
        fwrite(json, 1, n, stdout);
    free(json);
    patient_policy_free(p);
    return cli_report(err, NULL);
}

int
cmd_policy(int argc, char **argv)
{
    const char *sub;

    if (argc < 2)
        cli_usage(usage, "missing subcommand");
    sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)
        cli_usage(usage, NULL);
    if (strcmp(sub, "init") == 0)
        return do_init(argc - 1, argv + 1);
    if (strcmp(sub, "add-publisher") == 0)
        return do_add_publisher(argc - 1, argv + 1);
    if (strcmp(sub, "add-middlebox") == 0)
        return do_add_middlebox(argc - 1, argv + 1);
    if (strcmp(sub, "check") == 0)
        return do_check(argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0)
        return do_show(argc - 1, argv + 1);
    cli_usage(usage, "unknown subcommand: %s", sub);
}
