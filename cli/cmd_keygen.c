/* patient keygen: make an Ed25519 key pair in minisign's file formats. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"

static const char usage[] =
    "usage: patient keygen -p PUBKEY_FILE -s SECKEY_FILE [-W] [-f]\n"
    "                      [--password-file FILE] [-c COMMENT]\n"
    "\n"
    "Make a key pair (minisign-compatible). The secret key is encrypted with a\n"
    "password (asked twice on the terminal, or read from --password-file or\n"
    "the file named by PATIENT_PASSWORD_FILE) unless -W is given.\n"
    "\n"
    "  -p, --public-key FILE    where to write the public key\n"
    "  -s, --secret-key FILE    where to write the secret key (mode 0600)\n"
    "  -W, --without-password   do not encrypt the secret key\n"
    "  -f, --force              replace existing key files\n"
    "  -c, --comment TEXT       untrusted comment line of the secret key file\n"
    "      --password-file FILE read the password from the first line of FILE\n"
    "  -h, --help               show this help\n";

enum { OPT_PASSWORD_FILE = 256 };

int
cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"public-key", required_argument, NULL, 'p'},
        {"secret-key", required_argument, NULL, 's'},
        {"without-password", no_argument, NULL, 'W'},
        {"force", no_argument, NULL, 'f'},
        {"comment", required_argument, NULL, 'c'},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *pub = NULL, *sec = NULL, *comment = NULL, *pwfile = NULL;
    int nopw = 0, force = 0, c, rc = CLI_EXIT_USAGE;
    patient_pubkey pk;
    patient_seckey *sk = NULL;
    char *pw = NULL;
    char b64[PATIENT_PUBKEY_B64], id[PATIENT_KEYID_HEX];
    patient_err err;

    optind = 1;
    while ((c = getopt_long(argc, argv, "p:s:Wfc:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': pub = optarg; break;
        case 's': sec = optarg; break;
        case 'W': nopw = 1; break;
        case 'f': force = 1; break;
        case 'c': comment = optarg; break;
        case OPT_PASSWORD_FILE: pwfile = optarg; break;
        case 'h': cli_usage(usage, NULL);
        default: cli_usage(usage, "invalid option");
        }
    }
    if (optind != argc)
        cli_usage(usage, "unexpected argument: %s", argv[optind]);
    if (pub == NULL || sec == NULL)
        cli_usage(usage, "both -p PUBKEY_FILE and -s SECKEY_FILE are required");
    if (strcmp(pub, sec) == 0 || strcmp(pub, "-") == 0 || strcmp(sec, "-") == 0)
        cli_usage(usage, "-p and -s must name two different files");
    if (nopw && pwfile != NULL)
        cli_usage(usage, "-W and --password-file contradict each other");
    if (comment != NULL && (strpbrk(comment, "\r\n") || strlen(comment) > PATIENT_COMMENT_MAX))
        cli_usage(usage, "the comment must be one line of at most %d bytes", PATIENT_COMMENT_MAX);
    /* Refuse before asking for a password, and before writing either file. */
    if (!force) {
        if (cli_exists(sec))
            cli_die(CLI_EXIT_USAGE, "%s already exists; use -f to overwrite it [file.exists]", sec);
        if (cli_exists(pub))
            cli_die(CLI_EXIT_USAGE, "%s already exists; use -f to overwrite it [file.exists]", pub);
    }
    if (!nopw) {
        if (cli_password_get(pwfile, "Password: ", 1, &pw) != PATIENT_OK)
            goto out;
        if (pw[0] == 0) {
            cli_warn("empty password; use -W for a key without a password");
            goto out;
        }
    }
    if ((err = patient_keypair_generate(&pk, &sk)) != PATIENT_OK) {
        rc = cli_report(err, "generating the key pair");
        goto out;
    }
    if (pw != NULL && cli_stderr_tty())
        fprintf(stderr, "Deriving a key from the password in order to encrypt the secret key... ");
    err = patient_seckey_save_commented(sec, sk, nopw ? NULL : pw, comment, force);
    if (pw != NULL && cli_stderr_tty())
        fprintf(stderr, err == PATIENT_OK ? "done\n" : "failed\n");
    if (err == PATIENT_ERR_EXISTS) {
        cli_warn("%s already exists; use -f to overwrite it [file.exists]", sec);
        goto out;
    }
    if (err != PATIENT_OK) {
        rc = cli_report(err, sec);
        goto out;
    }
    if ((err = patient_pubkey_save(pub, &pk, force)) != PATIENT_OK) {
        if (err == PATIENT_ERR_EXISTS)
            cli_warn("%s already exists; use -f to overwrite it [file.exists]", pub);
        else
            cli_report(err, pub);
        goto out;
    }
    patient_pubkey_encode(&pk, b64);
    patient_keyid_hex(pk.id, id);
    printf("The secret key was saved as %s - Keep it secret!\n"
           "The public key was saved as %s - That one can be public.\n"
           "Key id: %s\n\n"
           "Files signed using this key pair can be verified with the following command:\n\n"
           "minisign -Vm <file> -P %s\n",
           sec, pub, id, b64);
    rc = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
out:
    cli_password_free(pw);
    patient_seckey_free(sk);
    return rc;
}
