/* patient-verify: fetch a URL and tell whether its content is what the
 * origin signed, changed only by middleboxes the endpoint trusts (and how),
 * or tampered with. Thin: arguments in, libpatient, report out. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <patient/patient.h>
#include "cli.h"

static const char usage_text[] =
    "usage: patient-verify [options] URL\n"
    "       patient-verify --offline BUNDLE [options]\n"
    "       patient-verify --native-host\n"
    "\n"
    "Fetch URL, its origin's signed manifest and the disclosures of any middlebox\n"
    "that changed it, check everything against your trust policy, and report who\n"
    "changed what, where, when and why.\n"
    "\n"
    "  --policy FILE       trust policy (default $XDG_CONFIG_HOME/patient/policy.json;\n"
    "                      create one with `patient policy init`)\n"
    "  -x, --proxy URL     fetch through this HTTP proxy (e.g. a middlebox)\n"
    "  --manifest-direct   fetch the manifest and disclosures without the proxy\n"
    "  --json              print the stable JSON report (docs/FORMAT.md)\n"
    "  --strict            exit 1 for `modified` too\n"
    "  --at TIME           check expiry against TIME (RFC 3339 or @EPOCH), e.g. for audits\n"
    "  --bundle FILE       also save a self-contained evidence bundle\n"
    "  --offline BUNDLE    re-verify a saved bundle, no network, with your policy\n"
    "                      (--policy or the default) and the bundle's time (or --at)\n"
    "  --bundle-policy     with --offline: use the policy recorded in the bundle\n"
    "                      instead (whoever made the bundle chose it)\n"
    "  --native-host       speak the browser native-messaging protocol on stdin/stdout\n"
    "  --cache-dir DIR     manifest cache (default $XDG_CACHE_HOME/patient)\n"
    "  --state FILE        highest manifest version seen per origin, for rollback\n"
    "                      protection (default $XDG_STATE_HOME/patient/versions.json)\n"
    "  --no-state          do not check or record versions (disables rollback checks)\n"
    "  --ca-file FILE      extra CA bundle (TLS verification is always on)\n"
    "  --timeout SECONDS   whole-transfer timeout (default 60)\n"
    "  --max-body BYTES    refuse larger bodies (default 64 MiB)\n"
    "  --color WHEN        auto, always or never (default auto)\n"
    "  -v, --verbose       also show informational checks\n"
    "  -q, --quiet         print nothing; the exit code says it all\n"
    "  -h, --help          this help;  --version  the version\n"
    "\n"
    "Verdicts and exit codes:\n"
    "  verified      0  the body is exactly what the origin signed\n"
    "  modified      0  changed only by middleboxes your policy trusts (1 with --strict)\n"
    "  invalid       1  tampered, forged, unauthorised, expired or rolled back\n"
    "  (error)       2  usage error or local I/O error\n"
    "  unverifiable  3  no manifest, network failure, or origin unknown to your policy\n";

/* Without a usable policy the host still answers, so the browser can tell
 * the user what to fix instead of seeing the host exit. */
static const char *native_error_code, *native_error_text;

static int
native_host(const patient_policy *policy, const patient_verify_fetch_opts *fo,
            const patient_verify_opts *vo)
{
    size_t max_body = fo->fetch ? fo->fetch->max_body : 0;
    size_t max = patient_native_request_max(max_body);

    for (;;) {
        char *msg = NULL, *answer = NULL;
        size_t len = 0;
        patient_err err = patient_native_read(STDIN_FILENO, max, &msg, &len);

        if (err == PATIENT_ERR_NOT_FOUND)
            return CLI_EXIT_OK; /* the browser closed the port */
        if (err == PATIENT_ERR_TOO_LARGE) {
            /* The frame was skipped, so the stream is still in sync: say
             * why and go on (the sender is not left waiting). */
            err = patient_native_too_large_answer(len, max_body, &answer);
            if (err != PATIENT_OK) {
                fputs("patient-verify: could not answer the browser\n", stderr);
                return CLI_EXIT_USAGE;
            }
            if (patient_native_write(STDOUT_FILENO, answer, strlen(answer)) != PATIENT_OK) {
                free(answer);
                return CLI_EXIT_USAGE;
            }
            free(answer);
            continue;
        }
        if (err != PATIENT_OK) {
            if (err != PATIENT_ERR_PARSE) {
                fprintf(stderr, "patient-verify: reading from the browser: %s\n",
                        patient_strerror(err));
                return CLI_EXIT_USAGE;
            }
            if (patient_native_truncated_answer(&answer) != PATIENT_OK ||
                patient_native_write(STDOUT_FILENO, answer, strlen(answer)) != PATIENT_OK)
                fputs("patient-verify: could not answer the browser\n", stderr);
            free(answer);
            free(msg);
            return CLI_EXIT_USAGE; /* nothing follows a cut frame */
        }
        if (policy == NULL) {
            err = patient_native_error_answer(msg, len, native_error_code, native_error_text,
                                              &answer);
        } else {
            err = patient_native_handle(policy, fo, vo, msg, len, &answer);
        }
        free(msg);
        if (err != PATIENT_OK)
            return CLI_EXIT_USAGE;
        err = patient_native_write(STDOUT_FILENO, answer, strlen(answer));
        free(answer);
        if (err != PATIENT_OK)
            return CLI_EXIT_USAGE;
    }
}

enum {
    OPT_POLICY = 256, OPT_JSON, OPT_STRICT, OPT_AT, OPT_BUNDLE, OPT_OFFLINE, OPT_NATIVE,
    OPT_CACHE, OPT_STATE, OPT_NOSTATE, OPT_CA, OPT_TIMEOUT, OPT_MAXBODY, OPT_COLOR,
    OPT_MDIRECT, OPT_VERSION, OPT_BUNDLE_POLICY
};

/* What the command line asks for. */
struct verify_args {
    const char *policy_path, *bundle_path, *offline, *state, *url;
    int json, strict, native, nostate, verbose, quiet, color, bundle_policy;
    patient_fetch_opts fetch;
    patient_verify_fetch_opts fo;
    patient_verify_opts vo;
};

/* Read the options into *a; a usage error exits here (2), --help and
 * --version too (0). */
static void
parse_args(int argc, char **argv, struct verify_args *a)
{
    static const struct option longopts[] = {
        {"policy", required_argument, NULL, OPT_POLICY},
        {"proxy", required_argument, NULL, 'x'},
        {"manifest-direct", no_argument, NULL, OPT_MDIRECT},
        {"json", no_argument, NULL, OPT_JSON},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"at", required_argument, NULL, OPT_AT},
        {"bundle", required_argument, NULL, OPT_BUNDLE},
        {"offline", required_argument, NULL, OPT_OFFLINE},
        {"bundle-policy", no_argument, NULL, OPT_BUNDLE_POLICY},
        {"native-host", no_argument, NULL, OPT_NATIVE},
        {"cache-dir", required_argument, NULL, OPT_CACHE},
        {"state", required_argument, NULL, OPT_STATE},
        {"no-state", no_argument, NULL, OPT_NOSTATE},
        {"ca-file", required_argument, NULL, OPT_CA},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-body", required_argument, NULL, OPT_MAXBODY},
        {"color", required_argument, NULL, OPT_COLOR},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}};
    int c;

    a->color = -1;
    patient_fetch_opts_init(&a->fetch);
    a->fo.fetch = &a->fetch;
    while ((c = getopt_long(argc, argv, "x:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_POLICY: a->policy_path = optarg; break;
        case 'x': a->fetch.proxy = optarg; break;
        case OPT_MDIRECT: a->fo.manifest_direct = 1; break;
        case OPT_JSON: a->json = 1; break;
        case OPT_STRICT: a->strict = 1; break;
        case OPT_AT:
            if (patient_time_parse(optarg, &a->vo.now) != PATIENT_OK)
                cli_usage_short(usage_text, "--at: '%s' is not a time (RFC 3339 like 2026-11-27T08:00:00Z, or @EPOCH)", optarg);
            break;
        case OPT_BUNDLE: a->bundle_path = optarg; break;
        case OPT_OFFLINE: a->offline = optarg; break;
        case OPT_BUNDLE_POLICY: a->bundle_policy = 1; break;
        case OPT_NATIVE: a->native = 1; break;
        case OPT_CACHE: a->fo.cache_dir = optarg; break;
        case OPT_STATE: a->state = optarg; break;
        case OPT_NOSTATE: a->nostate = 1; break;
        case OPT_CA: a->fetch.ca_file = optarg; break;
        case OPT_TIMEOUT: {
            char *end;
            long s = strtol(optarg, &end, 10);
            if (*end || s <= 0 || s > 3600)
                cli_usage_short(usage_text, "--timeout: expected 1..3600 seconds, got '%s'", optarg);
            a->fetch.timeout_ms = s * 1000;
            break;
        }
        case OPT_MAXBODY: {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || v == 0 || v > 1024ULL * 1024 * 1024)
                cli_usage_short(usage_text, "--max-body: expected 1..1073741824 bytes, got '%s'", optarg);
            a->fetch.max_body = (size_t)v;
            break;
        }
        case OPT_COLOR:
            if (strcmp(optarg, "auto") == 0) a->color = -1;
            else if (strcmp(optarg, "always") == 0) a->color = 1;
            else if (strcmp(optarg, "never") == 0) a->color = 0;
            else cli_usage_short(usage_text, "--color: expected auto, always or never");
            break;
        case 'v': a->verbose = 1; break;
        case 'q': a->quiet = 1; break;
        case 'h': cli_usage_short(usage_text, NULL);
        case OPT_VERSION: printf("patient-verify %s\n", PACKAGE_VERSION); exit(CLI_EXIT_OK);
        default: cli_usage_short(usage_text, "unknown option");
        }
    }
    if (a->native) {
        /* Browsers pass the caller's origin (and on some systems a window
         * handle) as arguments: ignore them. */
    } else if (a->offline) {
        if (optind != argc)
            cli_usage_short(usage_text, "--offline takes no URL");
    } else if (optind + 1 != argc) {
        cli_usage_short(usage_text, optind == argc ? "missing URL" : "one URL at a time");
    } else {
        a->url = argv[optind];
    }
    if (a->color < 0)
        a->color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;
    /* The native host verifies what the browser asks, not a bundle: with
     * --bundle-policy it would load no policy and have no error to give. */
    if (a->bundle_policy && a->native)
        cli_usage_short(usage_text, "--bundle-policy goes with --offline, not --native-host");
    if (a->bundle_policy && (!a->offline || a->policy_path))
        cli_usage_short(usage_text, "--bundle-policy goes with --offline and without --policy");
}

/* The policy: explicit, or the default file, offline too: a bundle's own
 * policy was chosen by whoever made the bundle, so it is used only when
 * asked for (--bundle-policy; *policy stays NULL). The native host
 * starts without a usable one and answers every request with why.
 * *path_default and *detail: the caller frees. */
static void
load_policy(const struct verify_args *a, patient_policy **policy, char **path_default,
            char **detail)
{
    const char *policy_path = a->policy_path;
    patient_err err;

    if (policy_path == NULL && !a->bundle_policy) {
        if (patient_policy_default_path(path_default) != PATIENT_OK)
            cli_usage_short(usage_text, "no --policy given and no default policy location (set HOME or XDG_CONFIG_HOME)");
        policy_path = *path_default;
    }
    if (policy_path == NULL)
        return;
    err = patient_policy_load(policy_path, policy, detail);
    if (a->native && err != PATIENT_OK) {
        static char why[1024];
        if (err == PATIENT_ERR_NOT_FOUND)
            snprintf(why, sizeof why, "no trust policy at %s", policy_path);
        else
            snprintf(why, sizeof why, "cannot use the trust policy %s: %s", policy_path,
                     *detail ? *detail : patient_strerror(err));
        if (err == PATIENT_ERR_NOT_FOUND)
            strncat(why, " (create one with `patient policy init`)", sizeof why - strlen(why) - 1);
        native_error_code = err == PATIENT_ERR_NOT_FOUND ? "policy.missing" : "policy.invalid";
        native_error_text = why;
        err = PATIENT_OK;
    }
    if (err == PATIENT_ERR_NOT_FOUND)
        cli_usage_short(usage_text, "no policy at %s: create one with `patient policy init %s` and add the "
              "publishers and middleboxes you trust",
              policy_path, policy_path);
    if (err != PATIENT_OK)
        cli_fatal(policy_path, err, *detail);
}

/* Verify the URL or the bundle, print the report, and give the exit code
 * of its verdict. */
static int
verify_and_report(const struct verify_args *a, const patient_policy *policy)
{
    patient_report *report = NULL;
    char *bundle = NULL, *out = NULL;
    patient_err err;
    int code;

    if (a->offline) {
        char *text = NULL;
        size_t len = 0;
        if ((err = patient_file_read(a->offline, PATIENT_BUNDLE_MAX, 0, &text, &len, NULL)) !=
            PATIENT_OK)
            cli_fatal(a->offline, err, NULL);
        err = patient_verify_bundle(text, len, policy, &a->vo, &report);
        free(text);
        if (err != PATIENT_OK)
            cli_fatal(a->offline, err, "not a valid evidence bundle");
    } else {
        err = patient_verify_url(policy, a->url, &a->fo, &a->vo, &report,
                                 a->bundle_path ? &bundle : NULL);
        if (err != PATIENT_OK)
            cli_fatal(a->url, err, NULL);
        if (bundle && patient_file_write(a->bundle_path, bundle, strlen(bundle), 0600,
                                         PATIENT_FILE_REPLACE) != PATIENT_OK)
            cli_fatal(a->bundle_path, PATIENT_ERR_IO, "could not write the bundle");
    }
    if (!a->quiet) {
        err = a->json ? patient_report_json(report, 1, &out)
                      : patient_report_text(report, a->color, a->verbose, &out);
        if (err != PATIENT_OK)
            cli_fatal("report", err, NULL);
        fputs(out, stdout);
        if (a->json)
            fputc('\n', stdout);
    }
    switch (patient_report_verdict(report)) {
    case PATIENT_VERDICT_VERIFIED: code = CLI_EXIT_OK; break;
    case PATIENT_VERDICT_MODIFIED: code = a->strict ? CLI_EXIT_FAIL : CLI_EXIT_OK; break;
    case PATIENT_VERDICT_UNVERIFIABLE: code = CLI_EXIT_UNVERIFIABLE; break;
    default: code = CLI_EXIT_FAIL; break;
    }
    free(out);
    free(bundle);
    patient_report_free(report);
    return code;
}

int
main(int argc, char **argv)
{
    struct verify_args a = {0};
    char *policy_default = NULL, *state_default = NULL, *detail = NULL;
    patient_policy *policy = NULL;
    int code;

    /* This program owns its process: out of memory in a parse is then
     * PATIENT_ERR_NOMEM, not malformed input (error.h). */
    patient_json_track_nomem();
    /* One short-lived process working on a few big buffers: keep freed
     * memory in the heap for reuse instead of returning it to the kernel
     * and faulting fresh zeroed pages in for every body copy. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
    cli_set_name("patient-verify");
    parse_args(argc, argv, &a);
    load_policy(&a, &policy, &policy_default, &detail);
    if (!a.nostate && !a.offline) {
        if (a.state == NULL && patient_state_file_default(&state_default) == PATIENT_OK)
            a.state = state_default;
        a.vo.state_file = a.state;
    }
    a.vo.strict = a.strict;
    code = a.native ? native_host(policy, &a.fo, &a.vo) : verify_and_report(&a, policy);
    if (fflush(stdout) != 0 && code == CLI_EXIT_OK)
        code = CLI_EXIT_USAGE;
    free(detail);
    free(policy_default);
    free(state_default);
    patient_policy_free(policy);
    return code;
}
