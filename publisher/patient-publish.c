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
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include <patient/patient.h>

#define EXIT_USAGE 2
#define RESPONSE_MAX (256u * 1024 * 1024)
#define DELEGATIONS_MAX (1024u * 1024)
#define DEFAULT_EXPIRES "7d"
#define DEFAULT_RESPONSE_EXPIRES "1h"

static const char *progname = "patient-publish";
static volatile sig_atomic_t interrupted;

static void
usage(const char *reason)
{
    if (reason)
        fprintf(stderr, "%s: %s\nTry '%s --help'.\n", progname, reason, progname);
    exit(EXIT_USAGE);
}

static void
help(void)
{
    printf(
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
        "      --delegations FILE   JSON array of publisher delegations to embed\n"
        "      --password-file FILE read the key password from FILE's first line\n"
        "                           (also: PATIENT_PASSWORD_FILE); else prompt on the tty\n"
        "  -q, --quiet              print nothing on success\n"
        "  -h, --help               this text\n"
        "\n"
        "Exit status: 0 success; 2 usage error, unreadable key or tree, unsafe file,\n"
        "or write failure (the message names the file).\n"
        "An interrupted publish never leaves a half-written manifest; the next run\n"
        "finishes or discards it. See patient-publish(1) and docs/FORMAT.md.\n");
    exit(0);
}

static void
fail(patient_err err, const char *what, const char *detail)
{
    if (detail)
        fprintf(stderr, "%s: %s (%s)\n", progname, detail, patient_strerror(err));
    else
        fprintf(stderr, "%s: %s: %s\n", progname, what, patient_strerror(err));
}

/* The library's RFC 3339 parser; publishing refuses times before 1970. */
static int
parse_time(const char *s, time_t *t)
{
    return patient_time_parse(s, t) == PATIENT_OK && *t >= 0 ? 0 : -1;
}

static int
parse_duration(const char *s, long long *sec)
{
    char *end;
    long long v, mul;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || v <= 0)
        return -1;
    switch (*end) {
    case 0: case 's': mul = 1; break;
    case 'm': mul = 60; break;
    case 'h': mul = 3600; break;
    case 'd': mul = 86400; break;
    case 'w': mul = 7 * 86400; break;
    default: return -1;
    }
    if ((*end && end[1]) || v > (1LL << 36) / mul)
        return -1;
    *sec = v * mul;
    return 0;
}

/* Read a password from the terminal without echo, into guarded memory. */
static char *
prompt_password(void)
{
    struct termios old, quiet;
    char *pw;
    size_t n = 0;
    int fd, echo_off = 0;
    char c;

    if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) < 0)
        return NULL;
    if ((pw = sodium_malloc(PATIENT_PASSWORD_MAX + 1)) == NULL) {
        close(fd);
        return NULL;
    }
    if (write(fd, "Password: ", 10) < 0) {
        /* nothing useful to do */
    }
    if (tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
        echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    while (read(fd, &c, 1) == 1 && c != '\n' && c != '\r')
        if (n < PATIENT_PASSWORD_MAX)
            pw[n++] = c;
    pw[n] = 0;
    if (echo_off)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* nothing useful to do */
    }
    close(fd);
    return pw;
}

static patient_err
load_key(const char *path, const char *pwfile, patient_seckey **sk)
{
    char *pw = NULL;
    int enc = 0, prompted = 0;
    patient_err err;

    if (pwfile || getenv("PATIENT_PASSWORD_FILE")) {
        if ((err = patient_password_from_file(pwfile, &pw))) {
            const char *f = pwfile ? pwfile : getenv("PATIENT_PASSWORD_FILE");
            fprintf(stderr, "%s: password file %s: %s%s%s\n", progname, f, patient_strerror(err),
                    err == PATIENT_ERR_PERM ? ": chmod 600 " : "", err == PATIENT_ERR_PERM ? f : "");
            return err;
        }
    }
    err = patient_seckey_load(path, pw, sk, &enc);
    if (err == PATIENT_ERR_KEY_PASSWORD && enc && pw == NULL) {
        if ((pw = prompt_password()) == NULL) {
            fprintf(stderr, "%s: %s is encrypted and there is no terminal to ask for its "
                            "password; use --password-file\n",
                    progname, path);
            return err;
        }
        prompted = 1;
        err = patient_seckey_load(path, pw, sk, &enc);
    }
    if (prompted)
        sodium_free(pw);
    else
        patient_password_free(pw);
    if (err == PATIENT_ERR_PERM)
        fprintf(stderr, "%s: secret key %s: %s: it must not be readable by others: chmod 600 %s\n",
                progname, path, patient_strerror(err), path);
    else if (err)
        fprintf(stderr, "%s: secret key %s: %s\n", progname, path, patient_strerror(err));
    return err;
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

static int
read_all(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 0, n = 0, r;
    uint8_t *b = NULL;

    *out = NULL;
    *len = 0;
    if (f == NULL)
        return -1;
    do {
        if (n == cap) {
            uint8_t *p;
            cap = cap ? cap * 2 : 65536;
            if (cap > RESPONSE_MAX + 1 || (p = realloc(b, cap)) == NULL) {
                free(b);
                if (f != stdin)
                    fclose(f);
                errno = cap > RESPONSE_MAX + 1 ? EFBIG : ENOMEM;
                return -1;
            }
            b = p;
        }
        r = fread(b + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    if (ferror(f)) {
        free(b);
        if (f != stdin)
            fclose(f);
        errno = EIO;
        return -1;
    }
    if (f != stdin)
        fclose(f);
    if (n > RESPONSE_MAX) {
        free(b);
        errno = EFBIG;
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

enum { OPT_ORIGIN = 256, OPT_URL, OPT_RESPONSE, OPT_AT, OPT_VERSION, OPT_NEXT_KEY,
       OPT_DELEGATIONS, OPT_PASSWORD_FILE };

int
main(int argc, char **argv)
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
        {"delegations", required_argument, NULL, OPT_DELEGATIONS},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *seckey = NULL, *origin = NULL, *url = NULL, *expires_s = NULL, *out = NULL;
    const char *pwfile = NULL, *delegations = NULL;
    patient_pubkey next_keys[PATIENT_MANIFEST_MAX_NEXT_KEYS];
    size_t n_next = 0;
    int response = 0, quiet = 0, c, rc = EXIT_USAGE;
    unsigned threads = 0;
    unsigned long long version = 0;
    long long expires_in;
    time_t now = time(NULL);
    patient_seckey *sk = NULL;
    patient_err err;
    char *detail = NULL, *dtext = NULL, *jws = NULL;
    uint8_t *body = NULL;
    size_t blen = 0;

    while ((c = getopt_long(argc, argv, "s:e:o:j:qh", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's': seckey = optarg; break;
        case OPT_ORIGIN: origin = optarg; break;
        case OPT_URL: url = optarg; break;
        case OPT_RESPONSE: response = 1; break;
        case 'e': expires_s = optarg; break;
        case 'o': out = optarg; break;
        case OPT_AT:
            if (parse_time(optarg, &now) != 0)
                usage("--at wants 2026-01-01T00:00:00Z or @EPOCH");
            break;
        case 'j': {
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 64)
                usage("--threads wants a number from 1 to 64");
            threads = (unsigned)v;
            break;
        }
        case OPT_VERSION:
            errno = 0;
            version = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg || version < 1 || optarg[0] == '-')
                usage("--version wants a number >= 1");
            break;
        case OPT_NEXT_KEY:
            if (n_next == PATIENT_MANIFEST_MAX_NEXT_KEYS)
                usage("too many --next-key");
            if ((err = patient_pubkey_load(optarg, &next_keys[n_next]))) {
                fprintf(stderr, "%s: --next-key %s: %s\n", progname, optarg,
                        patient_strerror(err));
                return EXIT_USAGE;
            }
            n_next++;
            break;
        case OPT_DELEGATIONS: delegations = optarg; break;
        case OPT_PASSWORD_FILE: pwfile = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': help(); break;
        default: usage(NULL);
        }
    }
    if (optind + 1 != argc)
        usage(optind >= argc ? (response ? "FILE missing" : "SITE_DIR missing")
                             : "too many arguments");
    if (seckey == NULL)
        usage("-s SECKEY is required");
    if (response ? (url == NULL || origin != NULL) : (origin == NULL || url != NULL))
        usage(response ? "--response needs --url URL (and no --origin)"
                       : "--origin ORIGIN is required (--url is for --response)");
    if (response && (out || version || n_next || delegations))
        usage("--out, --version, --next-key and --delegations are for site mode");
    if (expires_s == NULL)
        expires_s = response ? DEFAULT_RESPONSE_EXPIRES : DEFAULT_EXPIRES;
    if (parse_duration(expires_s, &expires_in) != 0)
        usage("--expires wants a duration such as 90s, 15m, 12h, 7d, 2w");
    if (sodium_init() < 0) {
        fprintf(stderr, "%s: libsodium failed to initialise\n", progname);
        return EXIT_USAGE;
    }
    if (response) {
        if (read_all(argv[optind], &body, &blen) != 0) {
            fprintf(stderr, "%s: %s: %s\n", progname, argv[optind], strerror(errno));
            goto out;
        }
        if (load_key(seckey, pwfile, &sk))
            goto out;
        if ((err = patient_origin_sign(sk, url, body, blen, now, now + (time_t)expires_in,
                                       &jws))) {
            fail(err, url, NULL);
            goto out;
        }
        printf("Patient-Origin: %s\n", jws);
        rc = fflush(stdout) == 0 ? 0 : EXIT_USAGE;
        goto out;
    }

    {
        patient_manifest_opts o;
        patient_publish_result res;
        progress_state ps;
        struct sigaction sa;

        memset(&o, 0, sizeof o);
        memset(&ps, 0, sizeof ps);
        if (delegations) {
            uint8_t *d = NULL;
            size_t dl = 0;
            if (read_all(delegations, &d, &dl) != 0 || dl > DELEGATIONS_MAX ||
                memchr(d, 0, dl) != NULL) {
                fprintf(stderr, "%s: %s: %s\n", progname, delegations,
                        d ? "not a JSON text under 1 MiB" : strerror(errno));
                free(d);
                goto out;
            }
            if ((dtext = realloc(d, dl + 1)) == NULL) {
                free(d);
                goto out;
            }
            dtext[dl] = 0;
        }
        if (load_key(seckey, pwfile, &sk))
            goto out;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        o.origin = origin;
        o.version = version;
        o.issued = now;
        o.expires = now + (time_t)expires_in;
        o.threads = threads;
        o.next_keys = next_keys;
        o.n_next_keys = n_next;
        o.delegations_json = dtext;
        if (!quiet && isatty(STDERR_FILENO)) {
            o.progress = progress;
            o.progress_arg = &ps;
        }
        err = patient_manifest_publish(argv[optind], out, sk, &o, &res, &detail);
        if (ps.shown)
            fprintf(stderr, "\r\033[K");
        if (err) {
            fail(err, argv[optind], detail);
            goto out;
        }
        if (!quiet) {
            if (res.recovered)
                printf("completed an interrupted earlier publish first\n");
            printf("published %s version %llu: %zu resources, %.1f MB\n", origin,
                   (unsigned long long)res.version, res.resources, res.bytes / 1e6);
            if (out)
                printf("  %s\n  %s.minisig\n", out, out);
            else
                printf("  %s/" PATIENT_MANIFEST_PATH "\n  %s/" PATIENT_MANIFEST_PATH ".minisig\n",
                       argv[optind], argv[optind]);
        }
        rc = fflush(stdout) == 0 ? 0 : EXIT_USAGE;
    }
out:
    patient_seckey_free(sk);
    free(detail);
    free(dtext);
    free(jws);
    free(body);
    return rc;
}
