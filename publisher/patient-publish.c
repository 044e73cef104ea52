/* patient-publish: sign a site tree (manifest + minisign signature), or one
 * dynamic response (a Patient-Origin header line). All work is done by
 * libpatient; this file parses arguments, loads the key and prints. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include <patient/patient.h>
#include "cli.h"

/* --expires: at most 2^36 seconds (about 2,000 years). */
#define EXPIRES_MAX (1LL << 36)
#define RESPONSE_MAX (256u * 1024 * 1024)
#define DELEGATIONS_MAX (1024u * 1024)
#define DEFAULT_EXPIRES "7d"
#define DEFAULT_RESPONSE_EXPIRES "1h"

static volatile sig_atomic_t interrupted;

static const char usage_text[] =
    "Usage: patient-publish -s SECKEY --origin ORIGIN [options] SITE_DIR\n"
    "       patient-publish --response -s SECKEY --url URL [options] FILE\n"
    "\n"
    "Sign what an origin serves so that anyone can check it.\n"
    "\n"
    "Site mode walks SITE_DIR, hashes every regular file (on all cores) and writes\n"
    "SITE_DIR/.well-known/patient/manifest.json and manifest.json.minisig.\n"
    "Every file is listed under its URL path (/a/b.html; a folder with index.html\n"
    "also as /dir/, the root as /). Hidden files are listed; .well-known/patient/\n"
    "is not. Symlinks are followed only when they stay inside SITE_DIR; symlinks\n"
    "leaving it, loops, FIFOs, sockets and devices stop the publish (exit 2).\n"
    "The version is the previous manifest's version + 1 (1 for the first).\n"
    "Incremental: a file whose device, inode, size and mtime (ns) are as the last\n"
    "publish recorded in its private state keeps the previous manifest's hash,\n"
    "once that manifest's signature verifies with this key. A file changed in\n"
    "place with the same size and its mtime set back is only caught by --rehash.\n"
    "Check the result with stock minisign:\n"
    "  minisign -Vm SITE_DIR/.well-known/patient/manifest.json -p KEY.pub\n"
    "\n"
    "Response mode prints one header line for a dynamically generated body:\n"
    "  Patient-Origin: <JWS over {url, integrity, size, date, expires}>\n"
    "\n"
    "Options:\n"
    "  -s, --secret-key FILE    minisign-format secret key (required)\n"
    "      --origin ORIGIN      scheme://host[:port], lower case, no path (site mode)\n"
    "      --url URL            absolute URL of the response (response mode)\n"
    "      --response           sign FILE ('-' = stdin) as one dynamic response\n"
    "  -e, --expires DURATION   validity: 90s, 15m, 12h, 7d, 2w (default 7d for\n"
    "                           sites, 1h for responses)\n"
    "  -o, --out FILE           write FILE and FILE.minisig instead of the default\n"
    "      --at TIME            use TIME as now (2026-01-01T00:00:00Z or @EPOCH) for\n"
    "                           reproducible output\n"
    "  -j, --threads N          hashing threads (default: all cores)\n"
    "      --version N          publish as version N (must exceed the previous one;\n"
    "                           also replaces an unreadable previous manifest)\n"
    "      --next-key PUBKEY    announce a next key for rotation (repeatable)\n"
    "      --tls-key PIN|PEM    announce a public key of the origin's own TLS\n"
    "                           certificates (sha256-<base64> of its SPKI, or a\n"
    "                           PEM certificate; repeatable, at most 8): lets\n"
    "                           endpoints detect who intercepts their TLS\n"
    "      --delegations FILE   JSON array of publisher delegations to embed\n"
    "      --rehash             read and hash every file (then record fresh state)\n"
    "      --state FILE         publish state file (default: $XDG_CACHE_HOME or\n"
    "                           ~/.cache, patient-publish/<site hash>.state); keep\n"
    "                           it out of what the web server serves\n"
    "      --no-state           neither read nor write state: hash every file\n"
    "      --stats              also print files hashed, reused and bytes read, and the\n"
    "                           shards written and kept\n"
    "      --password-file FILE read the key password from FILE's first line\n"
    "                           (also: PATIENT_PASSWORD_FILE); else prompt on the tty\n"
    "  -q, --quiet              print nothing on success\n"
    "  -h, --help               this text\n"
    "\n"
    "Exit status: 0 success; 2 usage error, unreadable key or tree, unsafe file,\n"
    "or write failure (the message names the file).\n"
    "An interrupted publish never leaves a half-written manifest; the next run\n"
    "finishes or discards it. See patient-publish(1) and docs/FORMAT.md.\n";

static void
fail(patient_err err, const char *what, const char *detail)
{
    if (detail)
        cli_warn("%s (%s)", detail, patient_strerror(err));
    else
        cli_warn("%s: %s", what, patient_strerror(err));
}

/* The library's RFC 3339 parser; publishing refuses times before 1970. */
static int
parse_time(const char *s, time_t *t)
{
    return patient_time_parse(s, t) == PATIENT_OK && *t >= 0 ? 0 : -1;
}

static void
on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct {
    struct timespec last;
    int shown;
} progress_state;

static int
progress(void *arg, uint64_t files, uint64_t files_total, uint64_t bytes, uint64_t bytes_total)
{
    progress_state *ps = arg;
    struct timespec now;

    if (interrupted)
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (files < files_total &&
        (now.tv_sec - ps->last.tv_sec) * 1000 + (now.tv_nsec - ps->last.tv_nsec) / 1000000 < 100)
        return 0;
    ps->last = now;
    ps->shown = 1;
    fprintf(stderr, "\rhashing: %llu/%llu files, %.1f/%.1f MB\033[K",
            (unsigned long long)files, (unsigned long long)files_total, bytes / 1e6,
            bytes_total / 1e6);
    return 0;
}

enum { OPT_ORIGIN = 256, OPT_URL, OPT_RESPONSE, OPT_AT, OPT_VERSION, OPT_NEXT_KEY,
       OPT_DELEGATIONS, OPT_PASSWORD_FILE, OPT_TLS_KEY, OPT_REHASH, OPT_STATE,
       OPT_NO_STATE, OPT_STATS };

/* mkdir one level for the cache, private to the user. */
static int
private_dir(const char *path)
{
    struct stat st;

    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* The default state file: one per site folder and output path, in the
 * user's cache (never inside the served tree). *path is malloc'd; NULL
 * with no cache folder to be had (then every file is hashed). */
static char *
default_state(const char *site, const char *out)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *real = realpath(site, NULL), *dir = NULL, *path = NULL;
    char hex[33];
    uint8_t h[PATIENT_SHA256_BYTES];
    patient_sha256_ctx *c = NULL;
    patient_err err;
    size_t n;

    if (real == NULL)
        return NULL;
    /* The output path as given, plus the site's real path: two sites or
     * two --out files never share a state. */
    if (patient_sha256_init(&c) || patient_sha256_update(c, real, strlen(real) + 1) ||
        (out && patient_sha256_update(c, out, strlen(out))))
        goto out;
    err = patient_sha256_final(c, h); /* frees c */
    c = NULL;
    if (err)
        goto out;
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    n = (xdg && *xdg == '/' ? strlen(xdg) : home && *home ? strlen(home) + 7 : 0);
    if (n == 0 || (dir = malloc(n + 40)) == NULL || (path = malloc(n + 80)) == NULL)
        goto out;
    if (xdg && *xdg == '/')
        snprintf(dir, n + 40, "%s", xdg);
    else
        snprintf(dir, n + 40, "%s/.cache", home);
    if (private_dir(dir) != 0)
        goto fail;
    strcat(dir, "/patient-publish");
    if (private_dir(dir) != 0)
        goto fail;
    snprintf(path, n + 80, "%s/%s.state", dir, hex);
    goto out;
fail:
    free(path);
    path = NULL;
out:
    patient_sha256_free(c);
    free(dir);
    free(real);
    return path;
}

/* What the command line asks for. */
struct publish_args {
    const char *seckey, *origin, *url, *out, *pwfile, *delegations, *state;
    const char *path; /* SITE_DIR, or the response FILE */
    int response, quiet, rehash, no_state, stats;
    unsigned threads;
    unsigned long long version;
    patient_pubkey next_keys[PATIENT_MANIFEST_MAX_NEXT_KEYS];
    size_t n_next;
    uint8_t tls_keys[PATIENT_MAX_TLS_PINS][32];
    size_t n_tls;
    time_t now;
    long long expires_in;
};

/* Read and cross-check the options into *a; a usage error, an unreadable
 * --next-key or a bad --tls-key exits here (2), --help too. */
static void
parse_args(int argc, char **argv, struct publish_args *a)
{
    static const struct option longopts[] = {
        {"secret-key", required_argument, NULL, 's'},
        {"origin", required_argument, NULL, OPT_ORIGIN},
        {"url", required_argument, NULL, OPT_URL},
        {"response", no_argument, NULL, OPT_RESPONSE},
        {"expires", required_argument, NULL, 'e'},
        {"out", required_argument, NULL, 'o'},
        {"at", required_argument, NULL, OPT_AT},
        {"threads", required_argument, NULL, 'j'},
        {"version", required_argument, NULL, OPT_VERSION},
        {"next-key", required_argument, NULL, OPT_NEXT_KEY},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"delegations", required_argument, NULL, OPT_DELEGATIONS},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"rehash", no_argument, NULL, OPT_REHASH},
        {"state", required_argument, NULL, OPT_STATE},
        {"no-state", no_argument, NULL, OPT_NO_STATE},
        {"stats", no_argument, NULL, OPT_STATS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *expires_s = NULL;
    patient_err err;
    int c;

    a->now = time(NULL);
    while ((c = getopt_long(argc, argv, "s:e:o:j:qh", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's': a->seckey = optarg; break;
        case OPT_ORIGIN: a->origin = optarg; break;
        case OPT_URL: a->url = optarg; break;
        case OPT_RESPONSE: a->response = 1; break;
        case 'e': expires_s = optarg; break;
        case 'o': a->out = optarg; break;
        case OPT_AT:
            if (parse_time(optarg, &a->now) != 0)
                cli_usage_short(usage_text, "--at wants 2026-01-01T00:00:00Z or @EPOCH");
            break;
        case 'j': {
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 64)
                cli_usage_short(usage_text, "--threads wants a number from 1 to 64");
            a->threads = (unsigned)v;
            break;
        }
        case OPT_VERSION:
            errno = 0;
            a->version = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg || a->version < 1 || optarg[0] == '-')
                cli_usage_short(usage_text, "--version wants a number >= 1");
            break;
        case OPT_NEXT_KEY:
            if (a->n_next == PATIENT_MANIFEST_MAX_NEXT_KEYS)
                cli_usage_short(usage_text, "too many --next-key");
            if ((err = patient_pubkey_load(optarg, &a->next_keys[a->n_next]))) {
                cli_warn("--next-key %s: %s", optarg,
                        patient_strerror(err));
                exit(CLI_EXIT_USAGE);
            }
            a->n_next++;
            break;
        case OPT_TLS_KEY:
            if (cli_tls_pin_add(usage_text, 1, "--tls-key", optarg, a->tls_keys, &a->n_tls) != 0)
                exit(CLI_EXIT_USAGE);
            break;
        case OPT_DELEGATIONS: a->delegations = optarg; break;
        case OPT_PASSWORD_FILE: a->pwfile = optarg; break;
        case OPT_REHASH: a->rehash = 1; break;
        case OPT_STATE: a->state = optarg; break;
        case OPT_NO_STATE: a->no_state = 1; break;
        case OPT_STATS: a->stats = 1; break;
        case 'q': a->quiet = 1; break;
        case 'h': cli_usage_short(usage_text, NULL);
        default: cli_usage_short(usage_text, "unknown option");
        }
    }
    if (optind + 1 != argc)
        cli_usage_short(usage_text, optind >= argc ? (a->response ? "FILE missing" : "SITE_DIR missing")
                             : "too many arguments");
    a->path = argv[optind];
    if (a->seckey == NULL)
        cli_usage_short(usage_text, "-s SECKEY is required");
    if (a->response ? (a->url == NULL || a->origin != NULL) : (a->origin == NULL || a->url != NULL))
        cli_usage_short(usage_text, a->response ? "--response needs --url URL (and no --origin)"
                       : "--origin ORIGIN is required (--url is for --response)");
    if (a->response && (a->out || a->version || a->n_next || a->delegations || a->n_tls ||
                        a->rehash || a->state || a->no_state || a->stats))
        cli_usage_short(usage_text, "--out, --version, --next-key, --delegations, --rehash, "
                                    "--state and --stats are for site mode");
    if (a->state && a->no_state)
        cli_usage_short(usage_text, "--state and --no-state exclude each other");
    if (expires_s == NULL)
        expires_s = a->response ? DEFAULT_RESPONSE_EXPIRES : DEFAULT_EXPIRES;
    if (patient_duration_parse(expires_s, EXPIRES_MAX, &a->expires_in) != PATIENT_OK ||
        a->expires_in <= 0)
        cli_usage_short(usage_text, "--expires wants a duration such as 90s, 15m, 12h, 7d, 2w");
}

/* --response: print one Patient-Origin header line for the file. */
static int
sign_response(const struct publish_args *a)
{
    patient_seckey *sk = NULL;
    char *body = NULL, *jws = NULL;
    size_t blen = 0;
    patient_err err;
    int rc = CLI_EXIT_USAGE;

    if ((err = patient_file_read(a->path, RESPONSE_MAX, 0, &body, &blen, NULL))) {
        cli_warn("%s: %s", a->path, patient_strerror(err));
        goto out;
    }
    if (cli_seckey_load(a->seckey, a->pwfile, &sk) != CLI_EXIT_OK)
        goto out;
    if ((err = patient_origin_sign(sk, a->url, body, blen, a->now, a->now + (time_t)a->expires_in,
                                   &jws))) {
        fail(err, a->url, NULL);
        goto out;
    }
    printf("Patient-Origin: %s\n", jws);
    rc = fflush(stdout) == 0 ? 0 : CLI_EXIT_USAGE;
out:
    patient_seckey_free(sk);
    free(jws);
    free(body);
    return rc;
}

/* What a site publish did, for people (nothing with --quiet). */
static void
print_published(const struct publish_args *a, const patient_publish_result *res)
{
    if (res->recovered)
        printf("completed an interrupted earlier publish first\n");
    printf("published %s version %llu: %zu resources, %.1f MB\n", a->origin,
           (unsigned long long)res->version, res->resources, res->bytes / 1e6);
    if (a->stats)
        printf("hashed %zu files (%.1f MB), reused %zu unchanged%s%s%s\n",
               res->files_hashed, res->bytes_hashed / 1e6, res->files_reused,
               res->reuse_note ? " (" : "", res->reuse_note ? res->reuse_note : "",
               res->reuse_note ? ")" : "");
    if (a->stats && res->shards)
        printf("shards: %zu (%.1f MB), wrote %zu (%.1f MB), kept %zu unchanged\n",
               res->shards, res->shard_bytes / 1e6, res->shards_written,
               res->shard_bytes_written / 1e6, res->shards - res->shards_written);
    else if (a->stats)
        printf("shards: none (one file up to 512 resources)\n");
    if (a->out)
        printf("  %s\n  %s.minisig\n", a->out, a->out);
    else
        printf("  %s/" PATIENT_MANIFEST_PATH "\n  %s/" PATIENT_MANIFEST_PATH ".minisig\n",
               a->path, a->path);
}

/* Site mode: hash the tree, sign and write the manifest. */
static int
publish_site(const struct publish_args *a)
{
    patient_manifest_opts o;
    patient_publish_result res;
    progress_state ps;
    struct sigaction sa;
    patient_seckey *sk = NULL;
    char *detail = NULL, *dtext = NULL, *state_default = NULL;
    const char *state = a->state;
    patient_err err;
    int rc = CLI_EXIT_USAGE;

    memset(&o, 0, sizeof o);
    memset(&ps, 0, sizeof ps);
    if (a->delegations) {
        size_t dl = 0;
        if ((err = patient_file_read(a->delegations, DELEGATIONS_MAX, 0, &dtext, &dl, NULL)) ||
            memchr(dtext, 0, dl) != NULL) {
            cli_warn("%s: %s", a->delegations,
                     err == PATIENT_ERR_TOO_LARGE || err == PATIENT_OK
                         ? "not a JSON text under 1 MiB"
                         : patient_strerror(err));
            goto out;
        }
    }
    if (cli_seckey_load(a->seckey, a->pwfile, &sk) != CLI_EXIT_OK)
        goto out;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o.origin = a->origin;
    o.version = a->version;
    o.issued = a->now;
    o.expires = a->now + (time_t)a->expires_in;
    o.threads = a->threads;
    o.next_keys = a->next_keys;
    o.n_next_keys = a->n_next;
    o.tls_keys = (const uint8_t(*)[32])a->tls_keys;
    o.n_tls_keys = a->n_tls;
    o.delegations_json = dtext;
    if (!a->no_state && state == NULL)
        state = state_default = default_state(a->path, a->out);
    o.state_path = a->no_state ? NULL : state;
    o.rehash = a->rehash;
    if (!a->quiet && isatty(STDERR_FILENO)) {
        o.progress = progress;
        o.progress_arg = &ps;
    }
    err = patient_manifest_publish(a->path, a->out, sk, &o, &res, &detail);
    if (ps.shown)
        fprintf(stderr, "\r\033[K");
    if (err) {
        fail(err, a->path, detail);
        goto out;
    }
    if (!a->quiet)
        print_published(a, &res);
    rc = fflush(stdout) == 0 ? 0 : CLI_EXIT_USAGE;
out:
    patient_seckey_free(sk);
    free(detail);
    free(dtext);
    free(state_default);
    return rc;
}

int
main(int argc, char **argv)
{
    struct publish_args a = {0};

    /* This program owns its process: out of memory in a parse is then
     * PATIENT_ERR_NOMEM, not malformed input (error.h). */
    patient_json_track_nomem();
    cli_set_name("patient-publish");
    parse_args(argc, argv, &a);
    if (sodium_init() < 0) {
        cli_warn("libsodium failed to initialise");
        return CLI_EXIT_USAGE;
    }
    return a.response ? sign_response(&a) : publish_site(&a);
}
