/* patient: keys, artefact inspection, policy checks and audit for PATIENT.
 * main only dispatches: each verb lives in cli/cmd_<verb>.c. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "cli.h"
#include "cmd.h"

static const struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} verbs[] = {
    /* One line per verb, in the order `patient --help` lists them. */
    { "keygen", cmd_keygen, "make a key pair" },
    { "audit", cmd_audit, "verify, list, count and prove middlebox audit log entries" },
    { "inspect", cmd_inspect, "show what an artefact is and says (without verifying)" },
    { "policy", cmd_policy, "write, extend and check the endpoint's trust policy" },
    { "disclose", cmd_disclose, "write and sign a middlebox's disclosure document" },
};

#define NVERBS (sizeof verbs / sizeof verbs[0])

static void
print_usage(FILE *fp)
{
    fprintf(fp, "usage: patient VERB [options] [arguments]\n"
                "       patient help VERB | --help | --version\n\nverbs:\n");
    for (size_t i = 0; i < NVERBS; i++)
        fprintf(fp, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(fp, "\n`patient help VERB` (or `patient VERB --help`) describes a verb.\n"
                "Exit codes: 0 ok, 1 verification failed, 2 usage or I/O error.\n");
}

static const struct verb *
find(const char *name)
{
    for (size_t i = 0; i < NVERBS; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

int
main(int argc, char **argv)
{
    const struct verb *v;
    const char *name;

    /* This program owns its process: out of memory in a parse is then
     * PATIENT_ERR_NOMEM, not malformed input (error.h). */
    patient_json_track_nomem();
    cli_set_verb(NULL);
    /* Password buffers are sodium_malloc'd before the library runs. */
    if (sodium_init() < 0) {
        fprintf(stderr, "patient: cannot initialise libsodium\n");
        return CLI_EXIT_USAGE;
    }
    if (argc < 2) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        char help[] = "--help";
        char *hargv[3];
        if (argc == 2) {
            print_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (argc > 3 || (v = find(argv[2])) == NULL) {
            fprintf(stderr, "patient: no such verb: %s\n\n", argv[2]);
            print_usage(stderr);
            return CLI_EXIT_USAGE;
        }
        hargv[0] = argv[2];
        hargv[1] = help;
        hargv[2] = NULL;
        cli_set_verb(v->name);
        return v->fn(2, hargv);
    }
    if ((v = find(name)) == NULL) {
        fprintf(stderr, "patient: unknown verb or option: %s\n\n", name);
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    cli_set_verb(v->name);
    return v->fn(argc - 1, argv + 1);
}
