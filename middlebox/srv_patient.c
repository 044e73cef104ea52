/* srv_patient: a c-icap RESPMOD service that runs the patient middlebox
 * pipeline (patient/mbox.h) on HTTP responses, so Squid -- or any ICAP
 * client -- releases only signed, audit-logged changes.
 *
 * Per response, two deliveries (docs/MIDDLEBOX.md, "Bodies of any size"):
 *  - held: a body known to fit patient.HoldMax (65535 by default: what
 *    Squid 5.7 lets a service hold) is buffered, then patient_mbox_process()
 *    decodes it, applies the rules, signs a change descriptor, appends it to
 *    the audit log and re-encodes. A changed body goes back with a fixed
 *    Content-Length and one new Patient-Change header after the ones that
 *    arrived. Nothing of it completes before the log entry is durable: a
 *    lone change sends its first bytes (up to SRV_EARLY_MAX, never its
 *    last SRV_TAIL_HOLD) while its fdatasync runs; one that finds the
 *    group commit busy (under load) sends all of it at once after its
 *    own (srv_end_of_data says why).
 *  - streamed: a larger (or unknown-length) identity or gzip body, up to
 *    patient.MaxBody, gets its headers at once with a Patient-Change-Ref
 *    (where this middlebox will serve the descriptor) and flows through the
 *    streaming rule matcher, holding back only what pending matches need.
 *    At the end the hop is signed and logged (durably) and the descriptor
 *    stored; only then do the last bytes and the end of the body go out.
 *    The descriptor is served by this same module answering REQMOD for the
 *    reserved host patient.ReferenceHost.
 * Anything else (no match, no body, too large, error) passes unchanged,
 * with a 204 when the client allows it.
 *
 * Processes and threads: c-icap calls post_init in the main process, then
 * forks children that run many worker threads. Key, rules and configuration
 * are loaded once in post_init and are read-only afterwards. The audit log
 * and the mbox are opened lazily in each child (a handle inherited over
 * fork would share one open file description, and with it the flock(2)
 * that keeps concurrent appenders apart); patient_log and patient_mbox are
 * thread-safe. Everything per request lives in struct srv_req.
 * Administrator's guide: docs/MIDDLEBOX.md. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#include "c-icap.h"
#include "service.h"
#include "header.h"
#include "body.h"
#include "simple_api.h"
#include "debug.h"
#include "cfg_param.h"
#pragma GCC diagnostic pop

#include <patient/patient.h>
#include <patient/mbox.h>

/* Squid 5.7 (Debian 12) stalls a RESPMOD transaction whose service holds
 * back 64 KiB or more (Squid bug 5352, fixed in 6.14 / 7.0.2): the largest
 * body we may hold until its descriptor is signed is 65535 bytes; larger
 * ones stream (descriptor by reference). With a fixed Squid, set
 * patient.HoldMax to patient.MaxBody and every change goes inline. */
#define SRV_DEFAULT_HOLD_MAX 65535u
#define SRV_DEFAULT_MAX_BODY (16u * 1024 * 1024)
/* The last bytes of a streamed response are held back until its end is
 * settled (the descriptor durable, or none to make) and leave together
 * with the end of the body, for two reasons: the end of a changed body
 * never leaves before its log entry; and Squid 5.7 may truncate an
 * adapted response when its store, held back by read_ahead_gap for a slow
 * client, resumes storing just before it is told the adapted body ended
 * (Client::resumeBodyStorage drains the pipe and completes the forwarding
 * without the reply marked whole, "FwdState default": no last-chunk, the
 * client connection closed; upstream waits for that notice since 2025,
 * Squid PR #2052). A small last piece after the pause of signing made
 * that likely; a 64 KiB burst (the size of Squid's adapted-body pipe)
 * leaves the store a gap ahead of the client when the end arrives, so it
 * is not resumed then, unless the client takes the burst at once.
 * Deterministic only with read_ahead_gap above the body (docs/MIDDLEBOX.md). */
#define SRV_END_BURST 65536u
/* A held change's last bytes wait for its log entry's fdatasync (the
 * rest may leave while it runs): its end never leaves before the entry
 * is durable. At most SRV_EARLY_MAX bytes go before the sync, under
 * Squid's default read_ahead_gap (16 KB): Squid is then never far enough
 * ahead of the client to hold its store back during the pause, and the
 * truncation race described at SRV_END_BURST cannot start there; the
 * rest leaves with the end, as every held change did before. */
#define SRV_TAIL_HOLD 1024u
#define SRV_EARLY_MAX 8192u
/* Relayed bytes dropped from the front of a passthrough buffer once this
 * many have gone (a body over MaxBody costs memory of this order). */
#define SRV_COMPACT (256u * 1024)
/* Streamed input buffers kept for reuse (pool_give): how many, the
 * smallest worth keeping, and the most memory they may hold. */
#define SRV_POOL_N 4
#define SRV_POOL_MIN (1024u * 1024)
#define SRV_POOL_BYTES (64u * 1024 * 1024)
#define SRV_REF_PATH "/.well-known/patient/change/"
#define SRV_REF_ID_HEX 32
#define SRV_DEFAULT_REF_HOST "patient-mbox.invalid"
#define SRV_MAX_DESCRIPTOR (1024u * 1024)
#define SRV_PREVIEW 1024
/* Streamed gzip is re-encoded at zlib's fastest level (nginx's default
 * gzip_comp_level): the middlebox pays for compression per response, and
 * on text level 6 costs about six times the CPU for a quarter less. */
#define SRV_GZIP_LEVEL 1
/* Re-encoded output is flushed (Z_SYNC_FLUSH) after this much input, so
 * the client is never kept waiting behind zlib's buffer for long. */
#define SRV_GZIP_FLUSH (32u * 1024)
/* Decompression-bomb cap (decoded bytes per encoded byte, once 1 MiB is
 * decoded); Apache's mod_deflate uses the same limit for inflating. */
#define SRV_DEFAULT_INFLATE_RATIO 200u
#define SRV_MAX_CONF_STR 4096
/* DescriptorDir retention: a day, at most 100,000 files; pruned by each
 * c-icap child at most once a minute, after a request that stored one. */
#define SRV_DEFAULT_REF_KEEP (24u * 3600)
#define SRV_DEFAULT_REF_MAX 100000u
#define SRV_PRUNE_EVERY 60

/* ---- configuration (set while c-icap reads its config; read-only later) */

static char *cfg_keyfile, *cfg_pwfile, *cfg_name, *cfg_service, *cfg_disclosure, *cfg_rules,
    *cfg_auditlog, *cfg_pubdir, *cfg_puborigin;
static unsigned long cfg_every;                /* 0: library default */
static size_t cfg_max_body = SRV_DEFAULT_MAX_BODY;
static size_t cfg_hold_max = SRV_DEFAULT_HOLD_MAX;
static char *cfg_ref_dir, *cfg_ref_host;
static int cfg_sync = PATIENT_LOG_SYNC_EACH;
static int cfg_honor_no_transform = 1;
static unsigned long cfg_inflate_ratio = SRV_DEFAULT_INFLATE_RATIO;
static unsigned long cfg_ref_keep = SRV_DEFAULT_REF_KEEP; /* seconds; 0: no age limit */
static unsigned long cfg_ref_max = SRV_DEFAULT_REF_MAX;   /* files; 0: no count limit */

/* ---- shared state ------------------------------------------------------ */

static patient_seckey *g_sk;                   /* from post_init; immutable */
static patient_rules *g_rules;                 /* from post_init; immutable */
static pid_t g_init_pid;                       /* process that ran post_init */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t g_log_pid;                        /* process that owns g_log/g_mb */
static patient_log *g_log;
static patient_mbox *g_mb;

/* ---- per request ------------------------------------------------------- */

enum srv_mode {
    MODE_BUFFER, /* collecting the body; nothing sent yet, data locked */
    MODE_STREAM, /* passing through unchanged as it arrives (unlocked) */
    MODE_SEND,   /* end of data reached: sending out/outlen */
    MODE_EDIT    /* streamed with edits; headers sent, descriptor by reference */
};

/* One edit of a streamed body, as the rule matcher reported it (the
 * strings and insert bytes live in the rule set). */
struct srv_edit {
    size_t off, del, ins_len;
    const uint8_t *ins;
    const char *reason, *rule, *note;
    int disclose;
};

/* A place in a streamed body's output, which is never built: it is the
 * input's unchanged spans, read where they arrived (buf), and the edits'
 * insertions. in: the next input offset; edit: the next edit at or after
 * it; ins: how much of that edit's insertion is behind; pos: output
 * bytes behind. */
struct srv_cur {
    size_t in, edit, ins, pos;
};

struct srv_req {
    enum srv_mode mode;
    uint8_t *buf;          /* BUFFER: the body so far; STREAM: pending output */
    size_t len, cap, rpos; /* rpos: STREAM bytes already handed to c-icap */
    const uint8_t *out;    /* SEND: what to send (buf or res.body) */
    size_t outlen, outpos;
    int eof;
    char *url;             /* absolute request URL, NULL if not derivable */
    patient_mbox_result res;
    /* MODE_EDIT: buf/len is the input (all of it, unless passthru); the
     * output so far is the input before in_pos with edits[0..applied)
     * applied, olen bytes, walked (struct srv_cur) by the sender, the
     * hasher and the gzip encoder, each at its own place. */
    patient_rules_stream *rs;
    struct srv_edit *edits;
    size_t nedits, edits_cap, applied, in_pos, olen;
    struct srv_cur sent, hashed, encoded;
    int passthru;          /* no edit made and none will be: output = input */
    size_t buf_base;       /* passthru: input bytes already dropped from buf */
    int final;             /* descriptor durable (or none): send everything */
    patient_hop_hashes *hh; /* input and output hashed as they stream */
    size_t in_hashed;
    char ref_id[SRV_REF_ID_HEX + 1];
    /* gzip streamed: what arrives is decoded into buf (the hop's input
     * is the decoded body, as for held gzip); the output before
     * encoded.pos went to the encoder, whose output zbuf[zpos..zlen)
     * waits to be sent. */
    patient_gzip_dec *zdec;
    patient_gzip_enc *zenc;
    uint8_t *zbuf;
    size_t zlen, zcap, zpos, unflushed;
    int zfinished, sink_failed;
    patient_mbox *mb;      /* SEND of a held change: whose log must be durable */
    int sync_pending;      /* ... and is not known to be yet: hold the tail */
    int ref_fd;            /* stored descriptor, locked while in flight; -1 */
    int reqmod;            /* a REQMOD: maybe a descriptor request */
    char *ref_body;        /* REQMOD: the descriptor or error text we answer */
};

/* Streamed input buffers kept for the next large body. A fresh buffer
 * is memory the kernel zeroes as the body is first written into it
 * (about 1.3 ms of c-icap CPU per 5 MB response, perf: as much as
 * relaying it); a kept one is written over. At most SRV_POOL_N buffers
 * of SRV_POOL_MIN or more, SRV_POOL_BYTES in all, per c-icap child. */
static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint8_t *p;
    size_t cap;
} g_pool[SRV_POOL_N];
static size_t g_pool_n, g_pool_bytes;

/* The smallest kept buffer of want bytes or more, or NULL. */
static uint8_t *
pool_take(size_t want, size_t *cap)
{
    uint8_t *p = NULL;
    size_t best = SRV_POOL_N;

    pthread_mutex_lock(&g_pool_lock);
    for (size_t i = 0; i < g_pool_n; i++)
        if (g_pool[i].cap >= want && (best == SRV_POOL_N || g_pool[i].cap < g_pool[best].cap))
            best = i;
    if (best < SRV_POOL_N) {
        p = g_pool[best].p;
        *cap = g_pool[best].cap;
        g_pool_bytes -= *cap;
        g_pool[best] = g_pool[--g_pool_n];
    }
    pthread_mutex_unlock(&g_pool_lock);
    return p;
}

/* Keep p (cap bytes, nothing borrows it any more) for a later body: 1,
 * or 0 and the caller frees it. */
static int
pool_give(uint8_t *p, size_t cap)
{
    int kept = 0;

    if (p == NULL || cap < SRV_POOL_MIN)
        return 0;
    pthread_mutex_lock(&g_pool_lock);
    if (g_pool_n < SRV_POOL_N && cap <= SRV_POOL_BYTES - g_pool_bytes) {
        g_pool[g_pool_n].p = p;
        g_pool[g_pool_n].cap = cap;
        g_pool_n++;
        g_pool_bytes += cap;
        kept = 1;
    }
    pthread_mutex_unlock(&g_pool_lock);
    return kept;
}

static void
pool_free(void)
{
    pthread_mutex_lock(&g_pool_lock);
    while (g_pool_n > 0)
        free(g_pool[--g_pool_n].p);
    g_pool_bytes = 0;
    pthread_mutex_unlock(&g_pool_lock);
}

/* ---- configuration handlers (c-icap convention: non-zero = ok) --------- */

static int
set_str(const char *directive, const char **argv, void *setdata)
{
    char **slot = setdata, *v;

    if (argv == NULL || argv[0] == NULL || argv[1] != NULL || argv[0][0] == 0 ||
        strlen(argv[0]) > SRV_MAX_CONF_STR) {
        ci_debug_printf(1, "srv_patient: %s expects exactly one non-empty argument\n", directive);
        return 0;
    }
    if ((v = strdup(argv[0])) == NULL)
        return 0;
    free(*slot);
    *slot = v;
    return 1;
}

/* One letter after a number, and what it multiplies by. */
struct srv_unit {
    char c;
    unsigned long long mul;
};

/* A whole number, optionally followed by one of units' letters, at most
 * max once multiplied: 0 with *out set, else -1. */
static int
parse_scaled(const char **argv, const struct srv_unit *units, unsigned long long max,
             unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (argv == NULL || argv[0] == NULL || argv[1] != NULL)
        return -1;
    errno = 0;
    v = strtoull(argv[0], &end, 10);
    if (errno || end == argv[0] || v > max)
        return -1;
    for (; *end && units->c; units++) {
        if (*end == units->c) {
            if (v > max / units->mul)
                return -1;
            v *= units->mul;
            end++;
            break;
        }
    }
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int
set_size(const char *directive, const char **argv, void *setdata)
{
    static const struct srv_unit units[] = {{'k', 1024},        {'K', 1024},
                                            {'m', 1024 * 1024}, {'M', 1024 * 1024},
                                            {'g', 1u << 30},    {'G', 1u << 30},
                                            {0, 0}};
    unsigned long long v;

    if (parse_scaled(argv, units, PATIENT_MAX_BODY, &v) != 0 || v == 0) {
        ci_debug_printf(1, "srv_patient: %s expects a size from 1 to %u bytes (suffix K, M "
                           "allowed)\n", directive, PATIENT_MAX_BODY);
        return 0;
    }
    *(size_t *)setdata = (size_t)v;
    return 1;
}

/* One whole number from lo to hi into *out; 1 when it is, else reported. */
static int
set_number(const char *directive, const char **argv, unsigned long lo, unsigned long hi,
           unsigned long *out)
{
    char *end;
    unsigned long v;

    if (argv == NULL || argv[0] == NULL || argv[1] != NULL)
        goto bad;
    errno = 0;
    v = strtoul(argv[0], &end, 10);
    if (errno || *end || end == argv[0] || v < lo || v > hi)
        goto bad;
    *out = v;
    return 1;
bad:
    ci_debug_printf(1, "srv_patient: %s expects a number from %lu%s to %lu\n", directive, lo,
                    lo == 0 ? " (no limit)" : "", hi);
    return 0;
}

static int
set_every(const char *directive, const char **argv, void *setdata)
{
    return set_number(directive, argv, 1, 1000000, setdata);
}

/* A duration: seconds, or with suffix s, m, h, d; 0 means no limit. */
static int
set_duration(const char *directive, const char **argv, void *setdata)
{
    static const struct srv_unit units[] = {
        {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {0, 0}};
    unsigned long long v;

    if (parse_scaled(argv, units, 100ull * 365 * 86400, &v) != 0) {
        ci_debug_printf(1, "srv_patient: %s expects a duration (e.g. 3600, 90m, 24h, 7d; 0: no "
                           "limit)\n", directive);
        return 0;
    }
    *(unsigned long *)setdata = (unsigned long)v;
    return 1;
}

static int
set_count(const char *directive, const char **argv, void *setdata)
{
    return set_number(directive, argv, 0, 100000000, setdata);
}

static int
set_sync(const char *directive, const char **argv, void *setdata)
{
    int *mode = setdata;

    if (argv == NULL || argv[0] == NULL || argv[1] != NULL)
        goto bad;
    if (strcasecmp(argv[0], "each") == 0)
        *mode = PATIENT_LOG_SYNC_EACH;
    else if (strcasecmp(argv[0], "checkpoint") == 0)
        *mode = PATIENT_LOG_SYNC_CHECKPOINT;
    else if (strcasecmp(argv[0], "none") == 0)
        *mode = PATIENT_LOG_SYNC_NONE;
    else
        goto bad;
    return 1;
bad:
    ci_debug_printf(1, "srv_patient: %s expects each, checkpoint or none\n", directive);
    return 0;
}

static int
set_onoff(const char *directive, const char **argv, void *setdata)
{
    if (argv == NULL || argv[0] == NULL || argv[1] != NULL)
        goto bad;
    if (strcasecmp(argv[0], "on") == 0)
        *(int *)setdata = 1;
    else if (strcasecmp(argv[0], "off") == 0)
        *(int *)setdata = 0;
    else
        goto bad;
    return 1;
bad:
    ci_debug_printf(1, "srv_patient: %s expects on or off\n", directive);
    return 0;
}

static struct ci_conf_entry srv_conf[] = {
    {"KeyFile", &cfg_keyfile, set_str, "middlebox secret key (minisign format, mode 0600)"},
    {"PasswordFile", &cfg_pwfile, set_str, "password of an encrypted key (first line)"},
    {"Name", &cfg_name, set_str, "middlebox name signed into every descriptor"},
    {"Service", &cfg_service, set_str, "service type (content-filter, tracker-filter, ...)"},
    {"Disclosure", &cfg_disclosure, set_str, "URL of the operator's signed disclosure.json"},
    {"Rules", &cfg_rules, set_str, "rule file (JSON)"},
    {"AuditLog", &cfg_auditlog, set_str, "audit log path (JSON Lines, created 0600)"},
    {"CheckpointEvery", &cfg_every, set_every, "signed checkpoint every N log entries"},
    {"LogSync", &cfg_sync, set_sync, "fdatasync the audit log: each (default), checkpoint, none"},
    {"PublishDir", &cfg_pubdir, set_str, "publish the log (C2SP tiles, signed checkpoint) here"},
    {"PublishOrigin", &cfg_puborigin, set_str, "checkpoint origin (default patient.log/<log id>)"},
    {"MaxBody", &cfg_max_body, set_size, "largest body changed, held or streamed (bytes)"},
    {"HoldMax", &cfg_hold_max, set_size,
     "largest body held for an inline Patient-Change header (bytes; 65535 for Squid 5.7)"},
    {"DescriptorDir", &cfg_ref_dir, set_str,
     "where descriptors of streamed changes are kept for patient.ReferenceHost"},
    {"DescriptorKeep", &cfg_ref_keep, set_duration,
     "how long DescriptorDir keeps a descriptor (default 24h; 0: no age limit)"},
    {"DescriptorMax", &cfg_ref_max, set_count,
     "most descriptors DescriptorDir keeps (default 100000; 0: no count limit)"},
    {"ReferenceHost", &cfg_ref_host, set_str,
     "reserved host (.invalid) under which this service serves those descriptors"},
    {"InflateRatio", &cfg_inflate_ratio, set_every,
     "largest decoded/encoded ratio of a streamed gzip body (decompression bombs)"},
    {"HonorNoTransform", &cfg_honor_no_transform, set_onoff,
     "pass responses with Cache-Control: no-transform unchanged (default on)"},
    {NULL, NULL, NULL, NULL}};

/* ---- shared state helpers --------------------------------------------- */

static void
free_config(void)
{
    char **s[] = {&cfg_keyfile, &cfg_pwfile,   &cfg_name,      &cfg_service,
                  &cfg_disclosure, &cfg_rules, &cfg_auditlog, &cfg_pubdir,
                  &cfg_puborigin, &cfg_ref_dir, &cfg_ref_host};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        free(*s[i]);
        *s[i] = NULL;
    }
}

/* The log and mbox of this process, opened on first use. NULL on failure
 * (already reported). */
static patient_mbox *
process_mbox(patient_log **logp)
{
    patient_mbox *mb = NULL;
    patient_err err;
    pid_t me = getpid();

    pthread_mutex_lock(&g_lock);
    if (g_log_pid != me) {
        /* Inherited over fork from a parent that had opened them: drop
         * without closing (closing would write a checkpoint from a stale
         * view; the parent still owns them). */
        g_log = NULL;
        g_mb = NULL;
        g_log_pid = me;
    }
    if (g_mb == NULL && g_sk && g_rules) {
        patient_log *log = NULL;
        if ((err = patient_log_open(cfg_auditlog, g_sk, (unsigned)cfg_every, &log)) != PATIENT_OK) {
            ci_debug_printf(1, "srv_patient: cannot open audit log %s: %s; responses pass unchanged\n",
                            cfg_auditlog, patient_strerror(err));
            goto out;
        }
        (void)patient_log_set_sync(log, cfg_sync);
        if (cfg_pubdir && (err = patient_log_set_publish(log, cfg_pubdir, cfg_puborigin)))
            ci_debug_printf(1, "srv_patient: cannot publish the log in %s: %s\n", cfg_pubdir,
                            patient_strerror(err));
        if ((err = patient_mbox_new(g_sk, cfg_name, cfg_service, cfg_disclosure, g_rules, log,
                                    cfg_max_body, &g_mb)) != PATIENT_OK) {
            ci_debug_printf(1, "srv_patient: middlebox setup failed: %s\n", patient_strerror(err));
            (void)patient_log_close(log);
            goto out;
        }
        /* A held change waits for its entry's fdatasync itself, after
         * processing returned (srv_end_of_data, srv_io): some of it may
         * leave during the sync, and a failed sync aborts the response
         * instead of passing the original. */
        patient_mbox_set_deferred_sync(g_mb, 1);
        g_log = log;
        ci_debug_printf(3, "srv_patient: pid %ld opened audit log %s (%llu entries)\n", (long)me,
                        cfg_auditlog, (unsigned long long)patient_log_size(log));
    }
out:
    mb = g_mb;
    if (logp)
        *logp = g_log;
    pthread_mutex_unlock(&g_lock);
    return mb;
}

static void
log_event(const char *event, const char *url, const char *detail)
{
    patient_log *log = NULL;
    patient_err err;

    if (process_mbox(&log) == NULL || log == NULL)
        return;
    if ((err = patient_log_append_event(log, event, url, detail, NULL)) != PATIENT_OK)
        ci_debug_printf(1, "srv_patient: cannot log event %s: %s\n", event, patient_strerror(err));
}

/* Retention of DescriptorDir: at most once a minute per process, after a
 * request that stored a descriptor is done (never on a response's path).
 * Files of responses still in flight are locked and stay. */
static void
prune_ref_dir(void)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static time_t last;
    time_t now = time(NULL);
    size_t removed = 0;
    patient_err err;

    if (cfg_ref_dir == NULL || (cfg_ref_keep == 0 && cfg_ref_max == 0) ||
        pthread_mutex_trylock(&lock) != 0)
        return;
    if (now - last < SRV_PRUNE_EVERY && now >= last) {
        pthread_mutex_unlock(&lock);
        return;
    }
    last = now;
    pthread_mutex_unlock(&lock);
    if ((err = patient_refdir_prune(cfg_ref_dir, now, cfg_ref_keep, cfg_ref_max, &removed)) !=
        PATIENT_OK) {
        ci_debug_printf(1, "srv_patient: pruning %s: %s\n", cfg_ref_dir, patient_strerror(err));
    } else if (removed) {
        ci_debug_printf(3, "srv_patient: pruned %zu descriptor%s from %s\n", removed,
                        removed == 1 ? "" : "s", cfg_ref_dir);
    }
}

/* ---- service callbacks ------------------------------------------------- */

struct srv_req;
struct srv_cur;
static int stream_start(struct srv_req *d, ci_request_t *req, ci_off_t clen);
static int out_walk(struct srv_req *d, struct srv_cur *c, size_t upto,
                    int (*fn)(struct srv_req *, const uint8_t *, size_t, void *), void *ctx);
static int copy_span(struct srv_req *d, const uint8_t *p, size_t n, void *ctx);
static int stream_feed(struct srv_req *d, int eof);
static int stream_input(struct srv_req *d, const uint8_t *p, size_t n, int eof);
static int stream_encode(struct srv_req *d);
static void stream_compact(struct srv_req *d);
static int serve_ref(struct srv_req *d, ci_request_t *req);

static int
srv_init(ci_service_xdata_t *srv_xdata, struct ci_server_conf *server_conf)
{
    (void)server_conf;
    ci_service_set_preview(srv_xdata, SRV_PREVIEW);
    ci_service_enable_204(srv_xdata);
    ci_service_set_transfer_preview(srv_xdata, "*");
    return CI_OK;
}

/* srv_post_init's phases. Each says why it stops the service
 * ("NOT STARTED: ...") and returns CI_ERROR, else CI_OK. */

/* The settings: the required ones set, defaults filled in, the
 * descriptor folder in place when descriptors can go by reference.
 * Nothing loaded yet. */
static int
post_init_config(void)
{
    if (cfg_keyfile == NULL || cfg_rules == NULL || cfg_auditlog == NULL) {
        ci_debug_printf(1, "srv_patient: NOT STARTED: patient.KeyFile, patient.Rules and "
                           "patient.AuditLog must all be set in c-icap.conf\n");
        return CI_ERROR;
    }
    if (cfg_name == NULL && (cfg_name = strdup("srv_patient")) == NULL)
        return CI_ERROR;
    if (cfg_hold_max > cfg_max_body)
        cfg_hold_max = cfg_max_body;
    if (cfg_ref_host == NULL && (cfg_ref_host = strdup(SRV_DEFAULT_REF_HOST)) == NULL)
        return CI_ERROR;
    {
        /* RFC 6761: .invalid never resolves, so only a proxy on the path
         * (this one, by REQMOD) can answer for it; verifiers follow a
         * reference only there. */
        size_t hl = strlen(cfg_ref_host);
        if (hl < 9 || hl > 253 || strcmp(cfg_ref_host + hl - 8, ".invalid") != 0 ||
            strspn(cfg_ref_host, "abcdefghijklmnopqrstuvwxyz0123456789.-") != hl) {
            ci_debug_printf(1, "srv_patient: NOT STARTED: patient.ReferenceHost must be a "
                               "lower-case name under .invalid\n");
            return CI_ERROR;
        }
    }
    if (cfg_ref_dir == NULL) {
        size_t n = strlen(cfg_auditlog) + sizeof ".descriptors";
        if ((cfg_ref_dir = malloc(n)) == NULL)
            return CI_ERROR;
        snprintf(cfg_ref_dir, n, "%s.descriptors", cfg_auditlog);
    }
    if (cfg_hold_max < cfg_max_body) {
        struct stat st;
        if (mkdir(cfg_ref_dir, 0700) != 0 && errno != EEXIST) {
            ci_debug_printf(1, "srv_patient: NOT STARTED: cannot create patient.DescriptorDir "
                               "%s: %s\n", cfg_ref_dir, strerror(errno));
            return CI_ERROR;
        }
        if (lstat(cfg_ref_dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
            ci_debug_printf(1, "srv_patient: NOT STARTED: patient.DescriptorDir %s is not a "
                               "directory owned by this user\n", cfg_ref_dir);
            return CI_ERROR;
        }
    }
    return CI_OK;
}

/* The signing key into g_sk, with the password file's password when it
 * is encrypted. */
static int
post_init_key(void)
{
    char *password = NULL;
    int encrypted = 0;
    patient_err err;

    err = patient_seckey_load(cfg_keyfile, NULL, &g_sk, &encrypted);
    if (err == PATIENT_ERR_KEY_PASSWORD && encrypted) {
        if ((err = patient_password_from_file(cfg_pwfile, &password)) != PATIENT_OK) {
            ci_debug_printf(1, "srv_patient: NOT STARTED: key %s is encrypted and no readable, "
                               "owner-only patient.PasswordFile is set (%s)\n",
                            cfg_keyfile, patient_strerror(err));
            return CI_ERROR;
        }
        err = patient_seckey_load(cfg_keyfile, password, &g_sk, NULL);
        patient_password_free(password);
    }
    if (err == PATIENT_ERR_PERM) {
        ci_debug_printf(1, "srv_patient: NOT STARTED: key %s is readable by group or others; "
                           "chmod 600 it\n", cfg_keyfile);
        return CI_ERROR;
    }
    if (err != PATIENT_OK) {
        ci_debug_printf(1, "srv_patient: NOT STARTED: cannot load key %s: %s\n", cfg_keyfile,
                        patient_strerror(err));
        return CI_ERROR;
    }
    return CI_OK;
}

/* The rules into g_rules. */
static int
post_init_rules(void)
{
    char *detail = NULL;
    patient_err err;

    if ((err = patient_rules_load(cfg_rules, &g_rules, &detail)) != PATIENT_OK) {
        ci_debug_printf(1, "srv_patient: NOT STARTED: rules %s: %s%s%s\n", cfg_rules,
                        patient_strerror(err), detail ? ": " : "", detail ? detail : "");
        free(detail);
        return CI_ERROR;
    }
    free(detail);
    return CI_OK;
}

/* Open (repairing a torn tail) and close now, so a bad path or a
 * damaged log stops the service at start, not at the first change.
 * Each child opens its own handle later (see process_mbox). */
static int
post_init_log(void)
{
    patient_log *log = NULL;
    patient_err err;

    if ((err = patient_log_open(cfg_auditlog, g_sk, (unsigned)cfg_every, &log)) != PATIENT_OK) {
        ci_debug_printf(1, "srv_patient: NOT STARTED: audit log %s: %s\n", cfg_auditlog,
                        patient_strerror(err));
        return CI_ERROR;
    }
    if (patient_log_repaired_bytes(log))
        ci_debug_printf(1, "srv_patient: audit log %s: cut a torn tail of %llu bytes\n",
                        cfg_auditlog, (unsigned long long)patient_log_repaired_bytes(log));
    if (cfg_pubdir && (err = patient_log_set_publish(log, cfg_pubdir, cfg_puborigin))) {
        ci_debug_printf(1, "srv_patient: NOT STARTED: publish %s: %s\n", cfg_pubdir,
                        patient_strerror(err));
        (void)patient_log_close(log);
        return CI_ERROR;
    }
    if ((err = patient_log_close(log)) != PATIENT_OK) {
        ci_debug_printf(1, "srv_patient: NOT STARTED: audit log %s: %s\n", cfg_auditlog,
                        patient_strerror(err));
        return CI_ERROR;
    }
    return CI_OK;
}

/* ISTag changes with the rules and the middlebox identity, so caches
 * in front of us do not keep responses adapted under other rules; it
 * names the rule bytes loaded into g_rules, not the file as it is now. */
static int
post_init_istag(ci_service_xdata_t *srv_xdata)
{
    char istag[PATIENT_MBOX_ISTAG_BYTES];
    patient_pubkey pk;

    patient_seckey_pubkey(g_sk, &pk);
    if (patient_mbox_istag(&pk, cfg_name, g_rules, istag) != PATIENT_OK)
        return CI_ERROR;
    ci_service_set_istag(srv_xdata, istag);
    return CI_OK;
}

static int
srv_post_init(ci_service_xdata_t *srv_xdata, struct ci_server_conf *server_conf)
{
    (void)server_conf;
    if (post_init_config() != CI_OK)
        return CI_ERROR;
    if (post_init_key() != CI_OK || post_init_rules() != CI_OK || post_init_log() != CI_OK ||
        post_init_istag(srv_xdata) != CI_OK) {
        patient_rules_free(g_rules);
        g_rules = NULL;
        patient_seckey_free(g_sk);
        g_sk = NULL;
        return CI_ERROR;
    }
    g_init_pid = getpid();
    ci_debug_printf(1, "srv_patient: ready: name \"%s\", %zu rules from %s, audit log %s, "
                       "MaxBody %zu, HoldMax %zu, descriptors by reference in %s as %s "
                       "(kept %lu s, at most %lu; 0: no limit)\n",
                    cfg_name, patient_rules_count(g_rules), cfg_rules, cfg_auditlog, cfg_max_body,
                    cfg_hold_max, cfg_ref_dir, cfg_ref_host, cfg_ref_keep, cfg_ref_max);
    return CI_OK;
}

static void
srv_close(void)
{
    patient_err err = PATIENT_OK;

    pthread_mutex_lock(&g_lock);
    if (g_log_pid == getpid() && g_mb) {
        patient_mbox_free(g_mb);
        err = patient_log_close(g_log); /* final checkpoint */
    } else if (g_sk && g_init_pid == getpid() && cfg_auditlog) {
        /* The main process: seal what the children appended. */
        patient_log *log = NULL;
        if ((err = patient_log_open(cfg_auditlog, g_sk, (unsigned)cfg_every, &log)) == PATIENT_OK)
            err = patient_log_close(log);
    }
    if (err != PATIENT_OK)
        ci_debug_printf(1, "srv_patient: closing the audit log: %s\n", patient_strerror(err));
    g_mb = NULL;
    g_log = NULL;
    g_log_pid = 0;
    pthread_mutex_unlock(&g_lock);
    pool_free();
    patient_rules_free(g_rules);
    g_rules = NULL;
    patient_seckey_free(g_sk);
    g_sk = NULL;
    free_config();
    cfg_max_body = SRV_DEFAULT_MAX_BODY;
    cfg_hold_max = SRV_DEFAULT_HOLD_MAX;
    cfg_inflate_ratio = SRV_DEFAULT_INFLATE_RATIO;
    cfg_ref_keep = SRV_DEFAULT_REF_KEEP;
    cfg_ref_max = SRV_DEFAULT_REF_MAX;
}

/* The absolute URL of the request: the request target when it is in
 * absolute form (a proxy's request), else http://Host + target.
 * NULL when there is none (no request headers, CONNECT, '*'). */
static char *
request_url(ci_request_t *req)
{
    const char *line = ci_http_request(req), *t, *e, *host;
    size_t tlen;
    char *url;

    if (line == NULL || (t = strchr(line, ' ')) == NULL)
        return NULL;
    t++;
    e = strchr(t, ' ');
    tlen = e ? (size_t)(e - t) : strlen(t);
    if (tlen == 0 || tlen > PATIENT_MAX_URL)
        return NULL;
    if ((tlen > 7 && strncasecmp(t, "http://", 7) == 0) ||
        (tlen > 8 && strncasecmp(t, "https://", 8) == 0))
        return strndup(t, tlen);
    if (t[0] != '/' || (host = ci_http_request_get_header(req, "Host")) == NULL || *host == 0 ||
        strlen(host) + tlen + 8 > PATIENT_MAX_URL || strpbrk(host, "/ \t") != NULL)
        return NULL;
    if ((url = malloc(7 + strlen(host) + tlen + 1)) == NULL)
        return NULL;
    sprintf(url, "http://%s%.*s", host, (int)tlen, t);
    return url;
}

static int
http_status(ci_request_t *req)
{
    ci_headers_list_t *h = ci_http_response_headers(req);
    const char *l, *p;

    if (h == NULL || h->used < 1 || (l = h->headers[0]) == NULL || (p = strchr(l, ' ')) == NULL)
        return 0;
    return atoi(p + 1);
}

/* Append p[0..n) to the growing buffer *buf (*len used of *cap; the first
 * allocation is at least first, then doubling). 0, or -1 out of memory. */
static int
grow_append(uint8_t **buf, size_t *len, size_t *cap, size_t first, const void *p, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : first;
        uint8_t *nb;
        while (c < *len + n)
            c *= 2;
        if ((nb = realloc(*buf, c)) == NULL)
            return -1;
        *buf = nb;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

static int
append(struct srv_req *d, const char *p, size_t n)
{
    return grow_append(&d->buf, &d->len, &d->cap, 16384, p, n);
}

static void *
srv_init_request(ci_request_t *req)
{
    struct srv_req *d;

    if (ci_req_type(req) != ICAP_RESPMOD && ci_req_type(req) != ICAP_REQMOD)
        return NULL;
    if ((d = calloc(1, sizeof *d)) == NULL)
        return NULL;
    d->mode = MODE_BUFFER;
    d->ref_fd = -1;
    d->reqmod = ci_req_type(req) == ICAP_REQMOD;
    return d;
}

static void
srv_release_request(void *data)
{
    struct srv_req *d = data;
    if (d == NULL)
        return;
    if (d->ref_fd >= 0) {
        close(d->ref_fd); /* no longer in flight: prunable */
        prune_ref_dir();
    }
    patient_mbox_result_free(&d->res);
    patient_rules_stream_free(d->rs);
    patient_gzip_dec_free(d->zdec);
    patient_gzip_enc_free(d->zenc);
    free(d->zbuf);
    patient_hop_hashes_free(d->hh);
    free(d->edits);
    free(d->ref_body);
    /* a streamed body's buffer (the hashes, its last borrower, are gone) */
    if (d->mode != MODE_EDIT || !pool_give(d->buf, d->cap))
        free(d->buf);
    free(d->url);
    free(d);
}

/* Decline the response: 204 when allowed, else stream it unchanged. */
static int
decline(struct srv_req *d, ci_request_t *req, int in_preview, const char *why)
{
    ci_debug_printf(5, "srv_patient: pass %s: %s\n", d->url ? d->url : "(no url)", why);
    if (in_preview || ci_req_allow204(req))
        return CI_MOD_ALLOW204;
    d->mode = MODE_STREAM;
    ci_req_unlock_data(req);
    return CI_MOD_CONTINUE;
}

static int
srv_preview(char *preview_data, int preview_data_len, ci_request_t *req)
{
    struct srv_req *d = ci_service_data(req);
    int in_preview = ci_req_hasbody(req) && ci_req_preview_size(req) >= 0;
    const char *why;
    ci_off_t clen;

    if (d == NULL)
        return CI_ERROR;
    if (d->reqmod)
        return serve_ref(d, req);
    if (!ci_req_hasbody(req))
        return in_preview || ci_req_allow204(req) ? CI_MOD_ALLOW204 : CI_MOD_CONTINUE;
    if (g_sk == NULL || g_rules == NULL)
        return decline(d, req, in_preview, "service not configured");
    d->url = request_url(req);
    if (d->url == NULL)
        return decline(d, req, in_preview, "no absolute request URL");
    if ((why = patient_mbox_may_change(http_status(req),
                                       ci_http_response_get_header(req, "Cache-Control"),
                                       cfg_honor_no_transform ? 0
                                                              : PATIENT_MBOX_IGNORE_NO_TRANSFORM)))
        return decline(d, req, in_preview, why);
    clen = ci_http_content_length(req);
    if (clen > 0 && (uint64_t)clen > cfg_max_body) {
        char detail[96];
        snprintf(detail, sizeof detail, "Content-Length %lld over patient.MaxBody %zu",
                 (long long)clen, cfg_max_body);
        log_event("body.too_large", d->url, detail);
        return decline(d, req, in_preview, "Content-Length over MaxBody");
    }
    /* Too large to hold (or of unknown length): stream, descriptor by
     * reference. A body known to fit is held: inline header. */
    if ((clen < 0 || (uint64_t)clen > cfg_hold_max) && cfg_hold_max < cfg_max_body &&
        stream_start(d, req, clen) != 0)
        return decline(d, req, in_preview, "cannot stream this body with changes");
    if (d->mode == MODE_EDIT) {
        if (stream_input(d, (const uint8_t *)preview_data,
                         preview_data_len > 0 ? (size_t)preview_data_len : 0, 0) != 0 ||
            stream_feed(d, 0) != 0 || stream_encode(d) != 0)
            return CI_ERROR;
    } else if (preview_data_len > 0 && append(d, preview_data, (size_t)preview_data_len) != 0) {
        return CI_ERROR;
    }
    return CI_MOD_CONTINUE;
}

/* Body bytes from the client (rbuf) and to the client (wbuf). */
static int
srv_io(char *wbuf, int *wlen, char *rbuf, int *rlen, int iseof, ci_request_t *req)
{
    struct srv_req *d = ci_service_data(req);

    if (d == NULL)
        return CI_ERROR;
    if (rbuf && rlen && *rlen > 0 && d->mode == MODE_EDIT) {
        if (stream_input(d, (const uint8_t *)rbuf, (size_t)*rlen, 0) != 0 ||
            stream_feed(d, 0) != 0 || stream_encode(d) != 0)
            return CI_ERROR;
        stream_compact(d);
    } else if (rbuf && rlen && *rlen > 0) {
        if (d->mode == MODE_BUFFER && d->len + (size_t)*rlen > cfg_max_body) {
            char detail[96];
            snprintf(detail, sizeof detail, "body over patient.MaxBody %zu, passed unchanged",
                     cfg_max_body);
            log_event("body.too_large", d->url, detail);
            ci_debug_printf(3, "srv_patient: %s: %s\n", d->url ? d->url : "?", detail);
            d->mode = MODE_STREAM;
            ci_req_unlock_data(req);
        }
        if (d->mode == MODE_SEND) {
            *rlen = 0; /* cannot happen: no input after end of data */
        } else {
            if (d->mode == MODE_STREAM && d->rpos > 0 && d->rpos == d->len)
                d->rpos = d->len = 0;
            if (append(d, rbuf, (size_t)*rlen) != 0)
                return CI_ERROR;
        }
    }
    if (iseof)
        d->eof = 1;
    if (wbuf && wlen) {
        const uint8_t *src = NULL;
        size_t avail = 0, *pos = NULL;
        if (d->mode == MODE_EDIT) {
            /* the end burst waits for the end (SRV_END_BURST) */
            size_t hold = d->final ? 0 : SRV_END_BURST, have;
            have = d->zenc ? d->zlen - d->zpos : d->olen - d->sent.pos;
            avail = have > hold ? have - hold : 0;
            if (avail == 0) {
                *wlen = d->final ? CI_EOF : 0;
                return CI_OK;
            }
            if (d->zenc == NULL) {
                /* straight from the input buffer (and the insertions) */
                uint8_t *w = (uint8_t *)wbuf;
                size_t n = avail < (size_t)*wlen ? avail : (size_t)*wlen;
                if (out_walk(d, &d->sent, d->sent.pos + n, copy_span, &w) != 0)
                    return CI_ERROR;
                *wlen = (int)n;
                return CI_OK;
            }
            src = d->zbuf;
            pos = &d->zpos;
        } else if (d->mode == MODE_STREAM) {
            src = d->buf;
            avail = d->len - d->rpos;
            pos = &d->rpos;
        } else if (d->mode == MODE_SEND) {
            /* A held change: its head may leave before the log entry is
             * durable, the tail (and so the end) only after. */
            size_t early = d->outlen > SRV_TAIL_HOLD ? d->outlen - SRV_TAIL_HOLD : 0;
            if (early > SRV_EARLY_MAX)
                early = SRV_EARLY_MAX;
            src = d->out;
            avail = !d->sync_pending ? d->outlen - d->outpos
                    : early > d->outpos ? early - d->outpos
                                        : 0;
            pos = &d->outpos;
            if (avail == 0 && d->sync_pending) {
                patient_err err = patient_mbox_wait_durable(d->mb, &d->res);
                if (err != PATIENT_OK) {
                    /* The change may not be on disk: it must not complete. */
                    ci_debug_printf(1, "srv_patient: %s: audit log not durable (%s); response "
                                       "aborted\n", d->url ? d->url : "?", patient_strerror(err));
                    return CI_ERROR;
                }
                d->sync_pending = 0;
                avail = d->outlen - d->outpos;
            }
        }
        if (pos == NULL) {
            *wlen = 0;
        } else if (avail == 0) {
            *wlen = d->eof || d->mode == MODE_SEND || (d->mode == MODE_EDIT && d->final) ? CI_EOF
                                                                                          : 0;
        } else {
            size_t n = avail < (size_t)*wlen ? avail : (size_t)*wlen;
            memcpy(wbuf, src + *pos, n);
            *pos += n;
            *wlen = (int)n;
        }
    }
    return CI_OK;
}

static void
remove_all(ci_request_t *req, const char *name)
{
    for (int i = 0; i < 64 && ci_http_response_remove_header(req, name); i++)
        ;
}

/* Collect the Patient-Change values of the response, in order, split.
 * Returns the count, or -1 (malformed or too many; reported). */
static int
arrived_values(ci_request_t *req, char **prev, size_t cap)
{
    ci_headers_list_t *h = ci_http_response_headers(req);
    patient_span spans[PATIENT_MAX_HOPS + 1];
    size_t n = 0;
    patient_err err;

    if (h == NULL)
        return 0;
    for (int i = 1; i < h->used; i++) {
        const char *s = h->headers[i];
        if (s == NULL || strncasecmp(s, "Patient-Change:", 15) != 0)
            continue;
        s += 15;
        if ((err = patient_change_header_split(s, strlen(s), spans, cap, &n)) != PATIENT_OK) {
            ci_debug_printf(1, "srv_patient: unusable Patient-Change header (%s); response "
                               "passed unchanged\n", patient_strerror(err));
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if ((prev[i] = strndup(spans[i].p, spans[i].len)) == NULL) {
            while (i > 0)
                free(prev[--i]);
            return -1;
        }
    }
    return (int)n;
}

/* The upstream TLS of THIS transaction, from the ICAP request headers
 * Squid fills per request (adaptation_meta X-Upstream-TLS-Version
 * "%ssl::<negotiated_version", X-Upstream-TLS-Cipher, X-Upstream-Cert-Errors;
 * docs/MIDDLEBOX.md). Never from configuration: without them the
 * descriptor claims nothing, and a verifier fails an https hop. NULL when
 * nothing can be claimed. */
static const patient_tls_facts *
upstream_tls(ci_request_t *req, const char *url, patient_tls_facts *t)
{
    patient_err err = patient_tls_facts_from_squid(
        url, ci_headers_value(req->request_header, "X-Upstream-TLS-Version"),
        ci_headers_value(req->request_header, "X-Upstream-TLS-Cipher"),
        ci_headers_value(req->request_header, "X-Upstream-Cert-Errors"), t);
    if (err == PATIENT_OK)
        return t;
    /* (braces: ci_debug_printf is an unbraced if) */
    if (err == PATIENT_ERR_NOT_FOUND) {
        ci_debug_printf(5, "srv_patient: %s: Squid passed no upstream TLS\n", url);
    } else {
        ci_debug_printf(1, "srv_patient: %s: upstream TLS not recorded: %s\n", url,
                        patient_strerror(err));
    }
    return NULL;
}

/* ---- streamed changes (descriptor by reference) ------------------------ */

/* Walk the output from c up to output offset upto (at most olen),
 * handing fn each span in order: unchanged input where it lies in buf,
 * or an edit's insertion. 0, or -1 (fn failed). */
static int
out_walk(struct srv_req *d, struct srv_cur *c, size_t upto,
         int (*fn)(struct srv_req *, const uint8_t *, size_t, void *), void *ctx)
{
    while (c->pos < upto) {
        const struct srv_edit *e = c->edit < d->applied ? &d->edits[c->edit] : NULL;
        const uint8_t *p;
        size_t k;
        if (e && c->in == e->off) {
            if (c->ins == e->ins_len) {
                c->in = e->off + e->del;
                c->edit++;
                c->ins = 0;
                continue;
            }
            p = e->ins + c->ins;
            k = e->ins_len - c->ins;
            if (k > upto - c->pos)
                k = upto - c->pos;
            c->ins += k;
        } else {
            p = d->buf + (c->in - d->buf_base);
            k = (e ? e->off : d->in_pos) - c->in;
            if (k > upto - c->pos)
                k = upto - c->pos;
            if (k == 0)
                return -1; /* olen and the edits disagree: cannot happen */
            c->in += k;
        }
        c->pos += k;
        if (fn(d, p, k, ctx) != 0)
            return -1;
    }
    return 0;
}

static int
copy_span(struct srv_req *d, const uint8_t *p, size_t n, void *ctx)
{
    uint8_t **w = ctx;
    (void)d;
    memcpy(*w, p, n);
    *w += n;
    return 0;
}

static int
hash_span(struct srv_req *d, const uint8_t *p, size_t n, void *ctx)
{
    (void)ctx;
    return patient_hop_hashes_out(d->hh, p, n) == PATIENT_OK ? 0 : -1;
}

static patient_err
stream_edit(void *ctx, const patient_rule_match *m)
{
    struct srv_req *d = ctx;

    if (d->nedits == d->edits_cap) {
        size_t cap = d->edits_cap ? d->edits_cap * 2 : 16;
        struct srv_edit *ne;
        /* The hop's own cap, not the next doubling past it: a stream may
         * carry exactly as many edits as a held body. */
        if (d->nedits == PATIENT_MAX_EDITS)
            return PATIENT_ERR_LIMIT;
        if (cap > PATIENT_MAX_EDITS)
            cap = PATIENT_MAX_EDITS;
        if ((ne = realloc(d->edits, cap * sizeof *ne)) == NULL)
            return PATIENT_ERR_NOMEM;
        d->edits = ne;
        d->edits_cap = cap;
    }
    d->edits[d->nedits++] = (struct srv_edit){m->offset, m->delete_len, m->insert_len, m->insert,
                                              m->reason,  m->rule_id,    m->note,       m->disclose};
    return PATIENT_OK;
}

/* Extend the output to the input before upto: the bytes between edits,
 * and each reported edit's insertion in place of what it deletes. Only
 * its length is counted here: nothing is copied (out_walk reads it). */
static int
stream_generate(struct srv_req *d, size_t upto)
{
    while (d->applied < d->nedits && d->edits[d->applied].off < upto) {
        const struct srv_edit *e = &d->edits[d->applied];
        /* sorted, after what is out, within what arrived: the matcher's
         * promise, checked since the walks rely on it */
        if (e->off < d->in_pos || e->off > d->buf_base + d->len ||
            e->del > d->buf_base + d->len - e->off)
            return -1;
        d->olen += e->off - d->in_pos + e->ins_len;
        d->in_pos = e->off + e->del;
        d->applied++;
    }
    if (upto > d->in_pos) {
        d->olen += upto - d->in_pos;
        d->in_pos = upto;
    }
    return 0;
}

/* Hash what arrived and what was generated since the last call: now,
 * while the rest of the body is still on its way, not at its end, when
 * the client waits for the last bytes. Before the first edit the output
 * is the input, hashed once for both; from the first edit on the input
 * is hashed as it arrives and the output as it is generated. Nothing is
 * signed once the stream passes through unchanged, so nothing is hashed
 * then. */
static int
stream_hash(struct srv_req *d)
{
    if (d->passthru || d->hh == NULL)
        return 0;
    if (d->hashed.edit == 0 && d->hashed.ins == 0) {
        /* the common prefix: up to the first edit, or all that is out */
        size_t to = d->applied ? d->edits[0].off : d->in_pos;
        if (to > d->in_hashed) {
            if (patient_hop_hashes_both(d->hh, d->buf + d->in_hashed, to - d->in_hashed) !=
                PATIENT_OK)
                return -1;
            d->hashed.in = d->hashed.pos = d->in_hashed = to;
        }
        if (d->applied == 0)
            return 0;
    }
    if (d->len > d->in_hashed &&
        patient_hop_hashes_in(d->hh, d->buf + d->in_hashed, d->len - d->in_hashed) != PATIENT_OK)
        return -1;
    d->in_hashed = d->len;
    return out_walk(d, &d->hashed, d->olen, hash_span, NULL);
}

/* From here on the output is the input and nothing is signed: the
 * hashes are dropped (freeing them waits for what they queued), so buf
 * may be compacted. */
static void
stream_passthru(struct srv_req *d)
{
    d->passthru = 1;
    patient_hop_hashes_free(d->hh);
    d->hh = NULL;
}

/* Feed what has arrived to the matcher and extend the output. A limit
 * before any edit: the rest passes as it came (logged). After an edit was
 * released: the response cannot be completed honestly (part of it is
 * changed, and the change could not be finished), so it is abandoned. */
static int
stream_feed(struct srv_req *d, int eof)
{
    size_t safe = 0;
    patient_err err;

    if (!d->passthru) {
        err = patient_rules_stream_feed(d->rs, d->buf, d->len, eof, stream_edit, d, &safe);
        if (err != PATIENT_OK) {
            if (d->nedits == 0) {
                stream_passthru(d);
                log_event(err == PATIENT_ERR_LIMIT ? "rules.limit" : "rules.failed", d->url,
                          "streamed response passed unchanged");
            } else {
                log_event(err == PATIENT_ERR_LIMIT ? "rules.limit" : "rules.failed", d->url,
                          "streamed response abandoned after a change was released");
                return -1;
            }
        }
    }
    if (stream_generate(d, d->passthru ? d->buf_base + d->len : safe) != 0)
        return -1;
    return stream_hash(d);
}

/* Arrived input (decoded, for gzip) counted against MaxBody: over it
 * before any change, the rest is only relayed (logged); after a change
 * went out, the response cannot be signed and is abandoned. */
static patient_err
stream_take(void *ctx, const uint8_t *p, size_t n)
{
    struct srv_req *d = ctx;

    if (!d->passthru && d->len + n > cfg_max_body) {
        char detail[96];
        if (d->nedits > 0) {
            log_event("body.too_large", d->url, "streamed body abandoned after a change");
            d->sink_failed = 1;
            return PATIENT_ERR_TOO_LARGE;
        }
        snprintf(detail, sizeof detail, "streamed body over patient.MaxBody %zu", cfg_max_body);
        log_event("body.too_large", d->url, detail);
        stream_passthru(d);
    }
    /* The hashes' thread reads buf where the input lies: it must not
     * move under it. A known length was allocated whole (stream_start);
     * growing past it waits for the queued bytes first. */
    if (d->hh && d->len + n > d->cap && patient_hop_hashes_wait(d->hh) != PATIENT_OK) {
        d->sink_failed = 1;
        return PATIENT_ERR_HASH;
    }
    if (append(d, (const char *)p, n) != 0) {
        d->sink_failed = 1;
        return PATIENT_ERR_NOMEM;
    }
    return PATIENT_OK;
}

/* Input of a streamed body: identity as it came, gzip decoded on the way
 * (eof: the stream must be complete). A gzip body that does not decode,
 * or decodes past patient.InflateRatio, is abandoned: part of it may have
 * gone out re-encoded, and the origin's bytes cannot follow those. */
static int
stream_input(struct srv_req *d, const uint8_t *p, size_t n, int eof)
{
    patient_err err;

    if (d->zdec == NULL)
        return n == 0 || stream_take(d, p, n) == PATIENT_OK ? 0 : -1;
    d->sink_failed = 0;
    if ((err = patient_gzip_dec_feed(d->zdec, p, n, eof, stream_take, d)) == PATIENT_OK)
        return 0;
    if (!d->sink_failed) {
        char detail[128];
        if (err == PATIENT_ERR_TOO_LARGE)
            snprintf(detail, sizeof detail,
                     "gzip body decodes to over %lu bytes per byte; streamed response abandoned",
                     cfg_inflate_ratio);
        else
            snprintf(detail, sizeof detail, "gzip body does not decode (%s); streamed response "
                     "abandoned", patient_strerror(err));
        log_event(err == PATIENT_ERR_TOO_LARGE ? "encoding.ratio" : "encoding.corrupt", d->url,
                  detail);
    }
    return -1;
}

static patient_err
zbuf_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct srv_req *d = ctx;

    return grow_append(&d->zbuf, &d->zlen, &d->zcap, 65536, p, n) == 0 ? PATIENT_OK
                                                                        : PATIENT_ERR_NOMEM;
}

static int
encode_span(struct srv_req *d, const uint8_t *p, size_t n, void *ctx)
{
    (void)ctx;
    return patient_gzip_enc_feed(d->zenc, p, n, PATIENT_GZIP_MORE, zbuf_sink, d) == PATIENT_OK
               ? 0
               : -1;
}

/* gzip: hand the encoder the output so far; the member is ended only
 * once final, and its last SRV_END_BURST bytes wait in zbuf, so a client
 * can never finish decoding a changed body whose descriptor is not
 * durable yet. */
static int
stream_encode(struct srv_req *d)
{
    size_t n;
    int flush = PATIENT_GZIP_MORE;

    if (d->zenc == NULL || d->zfinished)
        return 0;
    n = d->olen - d->encoded.pos;
    if (d->final) {
        flush = PATIENT_GZIP_FINISH;
    } else {
        if (n == 0)
            return 0;
        d->unflushed += n;
        if (d->unflushed >= SRV_GZIP_FLUSH) {
            flush = PATIENT_GZIP_SYNC;
            d->unflushed = 0;
        }
    }
    if (out_walk(d, &d->encoded, d->olen, encode_span, NULL) != 0 ||
        (flush != PATIENT_GZIP_MORE &&
         patient_gzip_enc_feed(d->zenc, NULL, 0, flush, zbuf_sink, d) != PATIENT_OK))
        return -1;
    d->zfinished = d->final;
    return 0;
}

/* Drop what is no longer needed. A passthrough keeps only the input not
 * yet sent (nothing will be signed); re-encoded gzip output is never
 * needed once sent. Changed or pending bodies keep their input whole for
 * the hop. */
static void
stream_compact(struct srv_req *d)
{
    if (d->passthru) {
        size_t gone = (d->zenc ? d->encoded.in : d->sent.in) - d->buf_base;
        if (gone > 0 && (gone == d->len || gone >= SRV_COMPACT)) {
            memmove(d->buf, d->buf + gone, d->len - gone);
            d->len -= gone;
            d->buf_base += gone;
        }
    }
    if (d->zpos >= SRV_COMPACT) {
        memmove(d->zbuf, d->zbuf + d->zpos, d->zlen - d->zpos);
        d->zlen -= d->zpos;
        d->zpos = 0;
    }
}

/* The input buffer of a streamed body, for want bytes: a kept one if
 * one is large enough. Pages never written cost nothing. Failing, the
 * buffer grows as it fills. */
static void
stream_alloc(struct srv_req *d, size_t want)
{
    const size_t step = 1024u * 1024;
    void *nb;

    /* whole MiB: a kept buffer then fits more bodies than its own */
    if (want >= SRV_POOL_MIN)
        want = (want + step - 1) / step * step;
    if ((nb = pool_take(want, &want)) == NULL && (nb = malloc(want)) == NULL)
        return;
    if (d->len)
        memcpy(nb, d->buf, d->len);
    free(d->buf);
    d->buf = nb;
    d->cap = want;
}

/* Preview of a body too large to hold: send the headers now, with the
 * reference to the descriptor, and stream. clen is the response's
 * Content-Length as the preview read it (negative: unknown); the header
 * itself is removed below. 0 when streaming, -1 to decline. */
static int
stream_start(struct srv_req *d, ci_request_t *req, ci_off_t clen)
{
    const char *enc = ci_http_response_get_header(req, "Content-Encoding");
    uint8_t rnd[SRV_REF_ID_HEX / 2];
    static const char hx[] = "0123456789abcdef";
    char *hdr;
    size_t n;
    int gz = 0;

    if (enc && *enc && strcasecmp(enc, "identity") != 0) {
        /* gzip is decoded as it streams and re-encoded (the held path
         * does the same at once); other encodings are not decoded */
        if (strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "x-gzip") != 0) {
            log_event("encoding.stream_unsupported", d->url,
                      "a body over patient.HoldMax in an encoding other than gzip passes "
                      "unchanged");
            return -1;
        }
        gz = 1;
    }
    if (ci_http_response_get_header(req, "Patient-Change-Ref") != NULL)
        return -1; /* an earlier hop's descriptor is not here to chain to */
    if (strstr(d->url, "/.well-known/patient/") != NULL)
        return -1;
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return -1;
    for (size_t i = 0; i < sizeof rnd; i++) {
        d->ref_id[2 * i] = hx[rnd[i] >> 4];
        d->ref_id[2 * i + 1] = hx[rnd[i] & 15];
    }
    d->ref_id[SRV_REF_ID_HEX] = 0;
    if (patient_rules_stream_new(g_rules, ci_http_response_get_header(req, "Content-Type"),
                                 &d->rs) != PATIENT_OK ||
        patient_hop_hashes_new(&d->hh) != PATIENT_OK ||
        patient_hop_hashes_background(d->hh) != PATIENT_OK)
        return -1;
    if (gz && (patient_gzip_dec_new((unsigned)cfg_inflate_ratio, &d->zdec) != PATIENT_OK ||
               patient_gzip_enc_new(SRV_GZIP_LEVEL, &d->zenc) != PATIENT_OK))
        return -1;
    n = strlen(cfg_ref_host) + sizeof "Patient-Change-Ref: http://" SRV_REF_PATH + SRV_REF_ID_HEX;
    if ((hdr = malloc(n)) == NULL)
        return -1;
    snprintf(hdr, n, "Patient-Change-Ref: http://%s" SRV_REF_PATH "%s", cfg_ref_host, d->ref_id);
    /* The length may change and validators describe the origin's bytes;
     * both go before we know whether anything changes (unchanged bodies
     * then travel chunked and without ETag). */
    remove_all(req, "Content-Length");
    for (const char *const *h = patient_mbox_drop_headers(); *h; h++)
        remove_all(req, *h);
    if (ci_http_response_add_header(req, hdr) == NULL) {
        free(hdr);
        return -1;
    }
    free(hdr);
    /* Room for the whole body when its length is known: no reallocation
     * (and copy) of megabytes while it streams. A gzip body's decoded
     * length is not known: guess generously (HTML and scripts shrink 4-8x
     * under gzip -6; a 5 MB text page 4.9x outgrew a 4x guess, and the
     * realloc copied 4 MB), since pages of the allocation that are never
     * written cost no memory. (The output needs no buffer: it is read
     * from this one.) */
    {
        if (clen > 0 && (uint64_t)clen <= cfg_max_body) {
            size_t want = (size_t)clen;
            if (gz)
                want = want > cfg_max_body / 8 ? cfg_max_body : want * 8;
            stream_alloc(d, want);
            if (gz && (d->zbuf = malloc((size_t)clen + 65536)) != NULL)
                d->zcap = (size_t)clen + 65536;
        }
    }
    d->mode = MODE_EDIT;
    ci_req_unlock_data(req);
    return 0;
}

/* End of a streamed body: the last edits, then (if anything changed) the
 * hop over the whole input, signed; its output must be the bytes already
 * streamed. Log (durable) and store the descriptor, and only then let the
 * held tail and the end of the body go. */
static int
stream_finish(struct srv_req *d, ci_request_t *req)
{
    char *prev[PATIENT_MAX_HOPS + 1];
    int nprev = 0;
    patient_hop *hop = NULL;
    patient_log *log = NULL;
    patient_tls_facts tls;
    const patient_tls_facts *t;
    char *value = NULL;
    uint64_t seq = 0;
    patient_err err = PATIENT_ERR_STATE;
    int ret = -1;

    if (stream_input(d, NULL, 0, 1) != 0 || stream_feed(d, 1) != 0)
        return -1;
    if (d->nedits == 0) {
        d->final = 1; /* unchanged: no descriptor, the reference answers 404 */
        return stream_encode(d);
    }
    if (process_mbox(&log) == NULL || log == NULL)
        goto out;
    if ((nprev = arrived_values(req, prev, PATIENT_MAX_HOPS + 1)) < 0) {
        nprev = 0;
        goto out;
    }
    /* the same identity patient_mbox_new gives held changes */
    if ((err = patient_hop_begin(
             &(patient_hop_opts){.size = sizeof(patient_hop_opts), .sk = g_sk, .name = cfg_name,
                                 .service = cfg_service ? cfg_service : "content-filter",
                                 .disclosure = cfg_disclosure, .url = d->url, .in = d->buf,
                                 .in_len = d->len, .prev = (const char *const *)prev,
                                 .nprev = (size_t)nprev},
             &hop)) != PATIENT_OK)
        goto out;
    if ((t = upstream_tls(req, d->url, &tls)) != NULL &&
        (err = patient_hop_set_tls(hop, t->version, t->cipher[0] ? t->cipher : NULL,
                                   t->verified)) != PATIENT_OK)
        goto out;
    for (size_t i = 0; i < d->nedits; i++) {
        const struct srv_edit *e = &d->edits[i];
        if ((err = patient_hop_add_edit(hop, e->off, e->del, e->ins, e->ins_len, e->reason,
                                        e->rule, e->note, e->disclose)) != PATIENT_OK)
            goto out;
    }
    /* The output was never built: it went out (mostly) and was hashed
     * span by span, read from the input and the insertions by the same
     * walk; the hop checks its length against the edits and signs the
     * hashes. */
    if ((err = patient_hop_finish_hashed(hop, time(NULL), d->olen, d->hh, &value)) != PATIENT_OK) {
        /* Its audit log entry would not fit one line: nothing signed, but
         * the changes went out, so the response is abandoned as at the
         * edit cap, with the same event. */
        if (err == PATIENT_ERR_LIMIT)
            log_event("rules.limit", d->url,
                      "streamed response abandoned: the change would not fit one audit log line");
        goto out;
    }
    err = PATIENT_ERR_HASH;
    if (value == NULL)
        goto out;
    /* Log before release, as for held bodies: the entry is durable
     * (group commit: one fdatasync may cover concurrent appends) before
     * the descriptor can be fetched from the folder and before the end of
     * the body leaves. */
    if ((err = patient_log_append_hop(log, hop, &seq)) != PATIENT_OK)
        goto out;
    err = PATIENT_ERR_IO;
    /* Every c-icap child serves from the folder; the file stays locked
     * (in flight, never pruned) until this request is released. */
    if (patient_refdir_store(cfg_ref_dir, d->ref_id, value, &d->ref_fd) != PATIENT_OK)
        goto out;
    d->final = 1;
    if (stream_encode(d) != 0)
        goto out;
    ci_debug_printf(3, "srv_patient: %s: streamed, %zu edit%s, log seq %llu, descriptor %s\n",
                    d->url, d->nedits, d->nedits == 1 ? "" : "s", (unsigned long long)seq,
                    d->ref_id);
    ret = 0;
out:
    if (ret != 0) {
        d->final = 0; /* the change may not be durable: its end never leaves */
        if (d->ref_fd >= 0 && patient_refdir_remove(cfg_ref_dir, d->ref_id, &d->ref_fd) != PATIENT_OK)
            ci_debug_printf(1, "srv_patient: %s: cannot remove descriptor %s: %s\n",
                            d->url ? d->url : "?", d->ref_id, strerror(errno));
        ci_debug_printf(1, "srv_patient: %s: streamed change abandoned: %s\n",
                        d->url ? d->url : "?", patient_strerror(err));
    }
    for (int i = 0; i < nprev; i++)
        free(prev[i]);
    patient_hop_free(hop);
    free(value);
    return ret;
}

/* REQMOD: a GET for http://ReferenceHost/.well-known/patient/change/ID is
 * answered here with the stored descriptor (200) or 404; anything else
 * goes on untouched (204). */
static int
serve_ref(struct srv_req *d, ci_request_t *req)
{
    char *url = request_url(req), path[4096], cl[48];
    const char *id;
    size_t pre = strlen("http://") + strlen(cfg_ref_host ? cfg_ref_host : "");
    int found = 0, fd;

    if (url == NULL || cfg_ref_host == NULL || strncasecmp(url, "http://", 7) != 0 ||
        strncasecmp(url + 7, cfg_ref_host, strlen(cfg_ref_host)) != 0 ||
        url[pre] != '/') {
        free(url);
        return CI_MOD_ALLOW204;
    }
    id = url + pre;
    if (strncmp(id, SRV_REF_PATH, strlen(SRV_REF_PATH)) == 0 &&
        strlen(id + strlen(SRV_REF_PATH)) == SRV_REF_ID_HEX &&
        strspn(id + strlen(SRV_REF_PATH), "0123456789abcdef") == SRV_REF_ID_HEX) {
        id += strlen(SRV_REF_PATH);
        snprintf(path, sizeof path, "%s/%s", cfg_ref_dir, id);
        if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
            struct stat st;
            if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
                (size_t)st.st_size <= SRV_MAX_DESCRIPTOR &&
                (d->ref_body = malloc((size_t)st.st_size + 1)) != NULL &&
                read(fd, d->ref_body, (size_t)st.st_size) == (ssize_t)st.st_size) {
                d->ref_body[st.st_size] = 0;
                found = 1;
            }
            close(fd);
        }
    }
    free(url);
    if (!found) {
        free(d->ref_body);
        d->ref_body = strdup("no descriptor here (the response was not changed, or this is not "
                             "a reference this middlebox issued)\n");
        if (d->ref_body == NULL)
            return CI_ERROR;
    }
    ci_http_response_create(req, 1, 1);
    ci_http_response_add_header(req, found ? "HTTP/1.1 200 OK" : "HTTP/1.1 404 Not Found");
    ci_http_response_add_header(req, found ? "Content-Type: application/jose"
                                           : "Content-Type: text/plain");
    ci_http_response_add_header(req, "Cache-Control: no-store");
    snprintf(cl, sizeof cl, "Content-Length: %zu", strlen(d->ref_body));
    ci_http_response_add_header(req, cl);
    d->out = (const uint8_t *)d->ref_body;
    d->outlen = strlen(d->ref_body);
    d->mode = MODE_SEND;
    d->eof = 1;
    ci_req_unlock_data(req);
    return CI_MOD_CONTINUE;
}

static int
srv_end_of_data(ci_request_t *req)
{
    struct srv_req *d = ci_service_data(req);
    char *prev[PATIENT_MAX_HOPS + 1];
    int nprev;
    patient_mbox *mb;
    patient_log *log = NULL;
    patient_err err;
    patient_tls_facts tls;
    char *hdr = NULL;

    if (d == NULL)
        return CI_ERROR;
    if (d->mode == MODE_EDIT)
        return stream_finish(d, req) == 0 ? CI_MOD_DONE : CI_ERROR;
    if (d->mode != MODE_BUFFER)
        return CI_MOD_DONE; /* streaming: the rest flows through srv_io */
    /* From here on, nothing was sent: unchanged means 204 if allowed. */
    d->mode = MODE_SEND;
    d->out = d->buf;
    d->outlen = d->len;
    d->eof = 1;
    if (d->len == 0 || d->url == NULL || (mb = process_mbox(&log)) == NULL)
        goto unchanged;
    if ((nprev = arrived_values(req, prev, PATIENT_MAX_HOPS + 1)) < 0)
        goto unchanged;
    err = patient_mbox_process(
        mb,
        &(patient_mbox_input){.size = sizeof(patient_mbox_input), .url = d->url,
                              .media_type = ci_http_response_get_header(req, "Content-Type"),
                              .content_encoding =
                                  ci_http_response_get_header(req, "Content-Encoding"),
                              .body = d->buf, .len = d->len, .prev = (const char *const *)prev,
                              .nprev = (size_t)nprev, .tls = upstream_tls(req, d->url, &tls),
                              .now = time(NULL)},
        &d->res);
    for (int i = 0; i < nprev; i++)
        free(prev[i]);
    if (err != PATIENT_OK) {
        ci_debug_printf(1, "srv_patient: %s: not changed: %s\n", d->url, patient_strerror(err));
        goto unchanged;
    }
    if (!d->res.changed) {
        ci_debug_printf(5, "srv_patient: %s: unchanged (%s)\n", d->url,
                        d->res.skipped ? d->res.skipped : "no match");
        goto unchanged;
    }
    /* The change is signed and its entry written; its end leaves only
     * once the entry is durable. Alone (the group commit idle), its
     * fdatasync starts at once on the log's syncer thread while c-icap
     * sends the headers and first bytes, and srv_io waits for it before
     * the tail: Squid relays the head to the client while the disk works,
     * and after the sync only the tail is left to relay. (With srv_io
     * leading the sync, it started only after c-icap had formatted and
     * written the headers and the head, 100-120 us later at 10 KB:
     * docs/MIDDLEBOX.md, "A lone change's timeline".) When the group
     * commit is busy (a sync running, or changes waiting for one) this
     * one waits for a later sync anyway, so it waits here and the whole
     * answer goes out at once after: sent in two bursts it cost Squid
     * 20-40 us more CPU per 10 KB change at 50 connections, and the early
     * writes would only delay the next sync if this thread leads it. */
    if (!patient_log_sync_busy(log)) {
        patient_log_sync_ahead(log, d->res.durable_at);
        d->mb = mb;
        d->sync_pending = 1;
    } else if ((err = patient_mbox_wait_durable(mb, &d->res)) != PATIENT_OK) {
        /* The change may not be on disk: it must not be released. The
         * request fails rather than passing the original: its entry is
         * in the log, and Squid (bypass=0) reports an error. */
        ci_debug_printf(1, "srv_patient: %s: audit log not durable (%s); response aborted\n",
                        d->url, patient_strerror(err));
        return CI_ERROR;
    }
    {
        char cl[48];
        size_t vlen = strlen(d->res.value);
        if ((hdr = malloc(vlen + sizeof "Patient-Change: ")) == NULL)
            goto fail;
        memcpy(hdr, "Patient-Change: ", 16);
        memcpy(hdr + 16, d->res.value, vlen + 1);
        for (const char *const *h = patient_mbox_drop_headers(); *h; h++)
            remove_all(req, *h);
        snprintf(cl, sizeof cl, "Content-Length: %zu", d->res.len);
        if (ci_http_response_add_header(req, cl) == NULL ||
            ci_http_response_add_header(req, hdr) == NULL)
            goto fail;
        free(hdr);
    }
    d->out = d->res.body;
    d->outlen = d->res.len;
    ci_debug_printf(3, "srv_patient: %s: %zu edit%s, log seq %llu\n", d->url, d->res.nedits,
                    d->res.nedits == 1 ? "" : "s", (unsigned long long)d->res.log_seq);
    return CI_MOD_DONE;
fail:
    /* Headers may be half rewritten and the change is already logged;
     * failing the ICAP request is the only honest answer. */
    free(hdr);
    ci_debug_printf(1, "srv_patient: %s: out of memory rewriting headers\n", d->url);
    return CI_ERROR;
unchanged:
    return ci_req_allow204(req) ? CI_MOD_ALLOW204 : CI_MOD_DONE;
}

CI_DECLARE_MOD_DATA ci_service_module_t service = {
    "patient",                                   /* mod_name: directive prefix */
    "patient signed-change middlebox",           /* mod_short_descr */
    ICAP_RESPMOD | ICAP_REQMOD,                  /* mod_type: REQMOD serves descriptors */
    srv_init,                                    /* mod_init_service */
    srv_post_init,                               /* mod_post_init_service */
    srv_close,                                   /* mod_close_service */
    srv_init_request,                            /* mod_init_request_data */
    srv_release_request,                         /* mod_release_request_data */
    srv_preview,                                 /* mod_check_preview_handler */
    srv_end_of_data,                             /* mod_end_of_data_handler */
    srv_io,                                      /* mod_service_io */
    srv_conf,                                    /* mod_conf_table */
    NULL                                         /* mod_data */
};
