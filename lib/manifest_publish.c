/* Publishing a manifest: build, sign and write manifest.json and its
 * signature crash-safely (recovering an interrupted publish).
 * Format: docs/format/manifest.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <sodium.h>

#include <patient/manifest.h>
#include "key_int.h"
#include "url_int.h"
#include "util.h"
#include "manifest_int.h"

/* ---- publishing ---- */

static patient_err
fsync_parent(const char *path)
{
    char *dir = strdup(path), *slash;
    int fd;

    if (dir == NULL)
        return PATIENT_ERR_NOMEM;
    slash = strrchr(dir, '/');
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return PATIENT_ERR_IO;
    fsync(fd);
    close(fd);
    return PATIENT_OK;
}

/* mkdir one level, refusing anything but a real folder. */
static patient_err
ensure_dir(const char *path, char **detail)
{
    struct stat st;

    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        pt_detail_first(detail, "%s: %s", path, strerror(errno));
        return PATIENT_ERR_IO;
    }
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        pt_detail_first(detail, "%s: not a folder (symlinks are refused here)", path);
        return PATIENT_ERR_UNSAFE_PATH;
    }
    return PATIENT_OK;
}

/* ---- publish state (docs/format/manifest.md, "Publish state") ---- */

#define STATE_MAGIC "patient-publish-state 2\n"
#define STATE_CONTEXT "patient-publish-state-v1"
#define STATE_MAC_LINE (4 + 64 + 1) /* "mac " hex "\n" */
/* About 60 bytes a file and 140 a shard: room for the 1,000,000 files
 * a manifest may list. */
#define STATE_MAX (256u * 1024 * 1024)

static void
state_mac(const patient_seckey *sk, const void *body, size_t len, char hex[65])
{
    uint8_t k[32], mac[32];

    pt_seckey_derive(sk, STATE_CONTEXT, k);
    crypto_generichash(mac, sizeof mac, body, len, k, sizeof k);
    sodium_memzero(k, sizeof k);
    pt_hex(mac, sizeof mac, hex);
}

/* Strict decimal (no sign, no leading zero, no overflow) up to sep. */
static int
state_u64(const char **p, const char *end, char sep, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;

    if (s >= end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end && s[1] != sep))
        return -1;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    if (s >= end || *s != sep)
        return -1;
    *p = s + 1;
    *v = x;
    return 0;
}

/* Read the state: authentic (MAC with sk's derived key), for exactly the
 * previous manifest old (its SHA-256), every line well-formed and the URLs
 * strictly increasing. Anything else gives a note and no reuse. The state
 * text is kept in *text (the URLs point into it). */
/* "s <level> <index> <digest hex> <name hex>\n" lines, before the files. */
static int
state_nodes(const char **pp, const char *end, pt_prev_node **nodes, size_t *nn)
{
    const char *p = *pp;
    size_t cap = 0;

    while (end - p > 2 && p[0] == 's' && p[1] == ' ') {
        pt_prev_node x;
        uint64_t lv, ix;
        p += 2;
        if (state_u64(&p, end, ' ', &lv) || lv < 1 || lv > PT_SHARD_MAX_LEVELS ||
            state_u64(&p, end, ' ', &ix) || ix >= ((uint64_t)1 << 24) || end - p < 64 + 1 + 64 + 1 ||
            strspn(p, "0123456789abcdef") < 64 || p[64] != ' ' ||
            strspn(p + 65, "0123456789abcdef") < 64 || p[129] != '\n')
            return -1;
        x.level = (unsigned)lv;
        x.index = (uint32_t)ix;
        if (sodium_hex2bin(x.digest, 32, p, 64, NULL, NULL, NULL) != 0)
            return -1;
        memcpy(x.name, p + 65, 64);
        x.name[64] = 0;
        p += 130;
        if (*nn >= ((size_t)1 << 25))
            return -1;
        if (*nn == cap) {
            size_t nc = cap ? cap * 2 : 256;
            pt_prev_node *q = realloc(*nodes, nc * sizeof *q);
            if (q == NULL)
                return -1;
            *nodes = q;
            cap = nc;
        }
        (*nodes)[(*nn)++] = x;
    }
    if (*nn)
        qsort(*nodes, *nn, sizeof **nodes, pt_prev_node_cmp);
    *pp = p;
    return 0;
}

static const char *
state_read(const char *path, const patient_seckey *sk, const uint8_t *old, size_t oldlen,
           uint8_t **text, pt_prev_file **files, size_t *n, pt_prev_node **nodes, size_t *nn)
{
    uint8_t *t = NULL, h[PATIENT_SHA256_BYTES];
    size_t len = 0, cap = 0, cnt = 0;
    char hex[65], sri[PATIENT_SRI_BYTES];
    pt_prev_file *f = NULL;
    const char *p, *end, *note = "publish state not authentic or not for this manifest";
    patient_err err;

    *text = NULL;
    *files = NULL;
    *n = 0;
    err = pt_read_file(path, STATE_MAX, &t, &len);
    if (err == PATIENT_ERR_NOT_FOUND)
        return "no publish state yet";
    if (err != PATIENT_OK)
        return "publish state unreadable";
    if (len < sizeof STATE_MAGIC - 1 + STATE_MAC_LINE || memchr(t, 0, len) != NULL)
        goto bad;
    end = (const char *)t + len - STATE_MAC_LINE;
    state_mac(sk, t, (size_t)(end - (const char *)t), hex);
    if (memcmp(end, "mac ", 4) != 0 || end[STATE_MAC_LINE - 1] != '\n' ||
        sodium_memcmp(end + 4, hex, 64) != 0)
        goto bad;
    p = (const char *)t;
    if (memcmp(p, STATE_MAGIC, sizeof STATE_MAGIC - 1) != 0)
        goto bad;
    p += sizeof STATE_MAGIC - 1;
    if (patient_sha256(old, oldlen, h) != PATIENT_OK)
        goto bad;
    patient_sri_encode(h, sri);
    if ((size_t)(end - p) < 9 + strlen(sri) + 1 || memcmp(p, "manifest ", 9) != 0 ||
        memcmp(p + 9, sri, strlen(sri)) != 0 || p[9 + strlen(sri)] != '\n')
        goto bad;
    p += 9 + strlen(sri) + 1;
    if (state_nodes(&p, end, nodes, nn) != 0)
        goto bad;
    while (p < end) {
        pt_prev_file x;
        uint64_t sec, nsec;
        int neg = 0;
        char *nl;

        if (cnt >= PATIENT_MANIFEST_MAX_RESOURCES)
            goto bad;
        if (state_u64(&p, end, ' ', &x.dev) || state_u64(&p, end, ' ', &x.ino) ||
            state_u64(&p, end, ' ', &x.size))
            goto bad;
        if (p < end && *p == '-') {
            neg = 1;
            p++;
        }
        if (state_u64(&p, end, ' ', &sec) || sec > INT64_MAX || (neg && sec == 0) ||
            state_u64(&p, end, ' ', &nsec) || nsec > 999999999)
            goto bad;
        x.sec = neg ? -(int64_t)sec : (int64_t)sec;
        x.nsec = (long)nsec;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL || *p != '/' || (size_t)(nl - p) > PATIENT_MANIFEST_MAX_PATH ||
            memchr(p, ' ', (size_t)(nl - p)) != NULL)
            goto bad;
        *nl = 0;
        x.url = p;
        if (cnt && strcmp(f[cnt - 1].url, x.url) >= 0)
            goto bad;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            pt_prev_file *q = realloc(f, nc * sizeof *q);
            if (q == NULL) {
                note = "out of memory reading the publish state";
                goto bad;
            }
            f = q;
            cap = nc;
        }
        f[cnt++] = x;
        p = nl + 1;
    }
    *text = t;
    *files = f;
    *n = cnt;
    return NULL;
bad:
    free(t);
    free(f);
    free(*nodes);
    *nodes = NULL;
    *nn = 0;
    return note;
}

static patient_err
state_write(const char *path, const patient_seckey *sk, const char *json, size_t jlen,
            const pt_buf *nodes, const pt_buf *lines)
{
    pt_buf b = {0};
    uint8_t h[PATIENT_SHA256_BYTES];
    char hex[65], sri[PATIENT_SRI_BYTES];
    patient_err err;

    if ((err = patient_sha256(json, jlen, h)))
        return err;
    patient_sri_encode(h, sri);
    if ((err = pt_buf_appendf(&b, STATE_MAGIC "manifest %s\n", sri)) ||
        (nodes->len && (err = pt_buf_append(&b, nodes->data, nodes->len))) ||
        (lines->len && (err = pt_buf_append(&b, lines->data, lines->len))))
        goto out;
    state_mac(sk, b.data, b.len, hex);
    if ((err = pt_buf_appendf(&b, "mac %s\n", hex)))
        goto out;
    err = pt_write_atomic(path, b.data, b.len, 0600, 0);
out:
    pt_buf_free(&b);
    return err;
}

/* Finish or discard an interrupted publish (see the header). */
static patient_err
recover(const char *out, const char *sigp, const char *nextp, const patient_seckey *sk,
        int *recovered, char **detail)
{
    struct stat st;
    uint8_t *mj = NULL, *sg = NULL;
    size_t ml = 0, sl = 0;
    patient_pubkey pk;
    patient_err err = PATIENT_OK;

    if (lstat(nextp, &st) != 0)
        return PATIENT_OK;
    patient_seckey_pubkey(sk, &pk);
    if (pt_read_file(out, PATIENT_MANIFEST_MAX_BYTES, &mj, &ml) == PATIENT_OK &&
        pt_read_file(nextp, 64 * 1024, &sg, &sl) == PATIENT_OK &&
        patient_minisig_verify(&pk, mj, ml, (const char *)sg, sl, NULL, NULL) == PATIENT_OK) {
        if (rename(nextp, sigp) != 0) {
            pt_detail_first(detail, "%s: %s", sigp, strerror(errno));
            err = PATIENT_ERR_IO;
            goto out;
        }
        *recovered = 1;
        err = fsync_parent(sigp);
    } else if (unlink(nextp) != 0) {
        pt_detail_first(detail, "%s: %s", nextp, strerror(errno));
        err = PATIENT_ERR_IO;
    }
out:
    free(mj);
    free(sg);
    return err;
}

/* ---- shard files ---- */

static patient_err
sync_folder(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return PATIENT_ERR_IO;
    rc = syncfs(fd);
    close(fd);
    return rc == 0 ? PATIENT_OK : PATIENT_ERR_IO;
}

static int
cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every shard name of a (previous) sharded manifest, from the top-level's
 * list down through the inner shards on disk. Only for keeping files:
 * an inner shard that is missing or does not parse just names nothing. */
static patient_err
shard_names(const char *dir, const patient_manifest *top, char ***out, size_t *n)
{
    char **v = NULL;
    size_t cnt = 0, cap = 0, from = 0;
    patient_err err = PATIENT_OK;

    *out = NULL;
    *n = 0;
    for (unsigned l = 0; l < top->nlevels; l++) {
        size_t upto = cnt;
        for (size_t k = l ? from : 0; k < (l ? upto : 1); k++) {
            patient_manifest *x = NULL;
            const patient_manifest *src = top;
            if (l) {
                char p[PATH_MAX];
                uint8_t *t = NULL;
                size_t tl = 0;
                snprintf(p, sizeof p, "%s/%s.json", dir, v[k]);
                if (pt_read_file(p, PATIENT_MANIFEST_SHARD_MAX_BYTES, &t, &tl) != PATIENT_OK ||
                    pt_shard_parse(t, tl, &x) != PATIENT_OK || x->leaf) {
                    free(t);
                    patient_manifest_free(x);
                    continue;
                }
                free(t);
                src = x;
            }
            for (size_t c = 0; c < src->n_shards; c++) {
                if (cnt == cap) {
                    size_t nc = cap ? cap * 2 : 256;
                    char **q = realloc(v, nc * sizeof *q);
                    if (q == NULL) {
                        err = PATIENT_ERR_NOMEM;
                        patient_manifest_free(x);
                        goto out;
                    }
                    v = q;
                    cap = nc;
                }
                if ((v[cnt] = malloc(65)) == NULL) {
                    err = PATIENT_ERR_NOMEM;
                    patient_manifest_free(x);
                    goto out;
                }
                pt_hex(src->shards[c], 32, v[cnt++]);
            }
            patient_manifest_free(x);
        }
        from = upto;
    }
out:
    if (err) {
        for (size_t i = 0; i < cnt; i++)
            free(v[i]);
        free(v);
        return err;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_name);
    *out = v;
    *n = cnt;
    return PATIENT_OK;
}

/* Remove "<hex>.json" files (and temporary files a crash left) that
 * neither the new nor the previous manifest names. Best effort: a file
 * left behind costs disk, not correctness. */
static void
prune_shards(const char *dir, char **now, size_t nnow, char **prev, size_t nprev)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **keep;
    size_t nk = 0;

    if (d == NULL)
        return;
    if ((keep = malloc((nnow + nprev + 1) * sizeof *keep)) == NULL) {
        closedir(d);
        return;
    }
    for (size_t i = 0; i < nnow; i++)
        keep[nk++] = now[i];
    for (size_t i = 0; i < nprev; i++)
        keep[nk++] = prev[i];
    if (nk)
        qsort(keep, nk, sizeof *keep, cmp_name);
    while ((de = readdir(d)) != NULL) {
        char nm[65], p[PATH_MAX];
        const char *key = nm;
        size_t l = strlen(de->d_name);
        int ours = l >= 69 && strspn(de->d_name, "0123456789abcdef") == 64 &&
                   strncmp(de->d_name + 64, ".json", 5) == 0;
        if (!ours || (l != 69 && strncmp(de->d_name + 69, ".tmp.", 5) != 0))
            continue;
        memcpy(nm, de->d_name, 64);
        nm[64] = 0;
        if (l == 69 && nk && bsearch(&key, keep, nk, sizeof *keep, cmp_name) != NULL)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    free(keep);
}

patient_err
patient_manifest_publish(const char *site_dir, const char *out_path, const patient_seckey *sk,
                         const patient_manifest_opts *opts, patient_publish_result *result,
                         char **detail)
{
    pt_buf outp = {0}, sigp = {0}, nextp = {0};
    patient_manifest_opts o;
    patient_manifest *prev = NULL, *m = NULL;
    const char **excl = NULL;
    char *json = NULL, *sig = NULL, *root = NULL, *rel = NULL, *relsh = NULL;
    uint8_t *old = NULL;
    size_t jlen = 0, oldlen = 0, psiglen = 0, npfiles = 0;
    uint8_t *psig = NULL, *stext = NULL;
    pt_prev_file *pfiles = NULL;
    pt_prev_node *pnodes = NULL;
    size_t npnodes = 0;
    pt_reuse reuse, *reusep = NULL;
    pt_build_stats stats = {0};
    pt_buf lines = {0}, nodes = {0}, shdir = {0};
    pt_shard_out so;
    char **prevnames = NULL;
    size_t nprevnames = 0;
    const char *note = NULL;
    int recovered = 0;
    patient_err err;

    if (detail)
        *detail = NULL;
    if (result)
        memset(result, 0, sizeof *result);
    if (site_dir == NULL || sk == NULL || opts == NULL)
        return PATIENT_ERR_ARG;
    if ((err = PT_OPTS_TAKE(&o, opts)) || (err = check_opts(&o, detail)))
        return err;
    if (out_path == NULL) {
        if ((err = pt_buf_appendf(&outp, "%s/.well-known", site_dir)))
            goto out;
        if ((err = ensure_dir((char *)outp.data, detail)) ||
            (err = pt_buf_append(&outp, "/patient", 8)) ||
            (err = ensure_dir((char *)outp.data, detail)) ||
            (err = pt_buf_append(&outp, "/manifest.json", 14)))
            goto out;
    } else if (strcmp(out_path, "-") == 0 || out_path[0] == 0) {
        err = PATIENT_ERR_ARG;
        goto out;
    } else if ((err = pt_buf_append(&outp, out_path, strlen(out_path)))) {
        goto out;
    }
    if ((err = pt_buf_appendf(&sigp, "%s.minisig", (char *)outp.data)) ||
        (err = pt_buf_appendf(&nextp, "%s.minisig.next", (char *)outp.data)))
        goto out;
    /* Shards beside the manifest: <folder>/shards/<sha256 hex>.json. */
    {
        const char *slash = strrchr((char *)outp.data, '/');
        if ((err = slash ? pt_buf_append(&shdir, outp.data, (size_t)(slash - (char *)outp.data) + 1)
                         : PATIENT_OK) ||
            (err = pt_buf_appendf(&shdir, PATIENT_MANIFEST_SHARD_DIR)))
            goto out;
    }
    memset(&so, 0, sizeof so);
    so.dir = (char *)shdir.data;
    so.nodes = o.state_path ? &nodes : NULL;
    if ((err = recover((char *)outp.data, (char *)sigp.data, (char *)nextp.data, sk, &recovered,
                       detail)))
        goto out;

    /* Version from the previous manifest. */
    err = pt_read_file((char *)outp.data, PATIENT_MANIFEST_MAX_BYTES, &old, &oldlen);
    if (err == PATIENT_OK) {
        err = patient_manifest_parse(old, oldlen, &prev);
        if (err != PATIENT_OK && o.version == 0) {
            pt_detail_first(detail,
                            "%s: previous manifest unreadable (%s); give an explicit version to "
                            "replace it",
                            (char *)outp.data, patient_strerror(err));
            goto out;
        }
    } else if (err != PATIENT_ERR_NOT_FOUND) {
        pt_detail_first(detail, "%s: %s", (char *)outp.data, patient_strerror(err));
        goto out;
    }
    err = PATIENT_OK;
    if (o.version == 0) {
        o.version = prev ? prev->version + 1 : 1;
    } else if (prev && o.version <= prev->version) {
        pt_detail_first(detail, "%s: version %llu is not above the published version %llu",
                        (char *)outp.data, (unsigned long long)o.version,
                        (unsigned long long)prev->version);
        err = PATIENT_ERR_ROLLBACK;
        goto out;
    }

    /* Never list our own output when it lies inside the tree. */
    if (out_path != NULL) {
        char *slash = strrchr((char *)outp.data, '/'), *dir, *rd;
        const char *base = slash ? slash + 1 : (char *)outp.data;
        if ((dir = strdup((char *)outp.data)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        if (slash)
            dir[slash - (char *)outp.data] = 0;
        rd = realpath(slash ? (slash == (char *)outp.data ? "/" : dir) : ".", NULL);
        free(dir);
        root = realpath(site_dir, NULL);
        if (rd && root) {
            size_t rl = strlen(root);
            if (strcmp(rd, root) == 0) {
                rel = strdup(base);
            } else if (strncmp(rd, root, rl) == 0 && rd[rl] == '/') {
                pt_buf rb = {0};
                if (pt_buf_appendf(&rb, "%s/%s", rd + rl + 1, base) == PATIENT_OK)
                    rel = (char *)rb.data;
            }
        }
        free(rd);
        if (rel) {
            /* The shards folder beside it too. */
            const char *rs = strrchr(rel, '/');
            pt_buf sb = {0};
            if (pt_buf_appendf(&sb, "%.*s%s", rs ? (int)(rs - rel + 1) : 0, rel,
                               PATIENT_MANIFEST_SHARD_DIR) != PATIENT_OK ||
                (excl = calloc(o.n_exclude + 2, sizeof *excl)) == NULL) {
                pt_buf_free(&sb);
                err = PATIENT_ERR_NOMEM;
                goto out;
            }
            relsh = (char *)sb.data;
            for (size_t i = 0; i < o.n_exclude; i++)
                excl[i] = o.exclude[i];
            excl[o.n_exclude] = rel;
            excl[o.n_exclude + 1] = relsh;
            o.exclude = excl;
            o.n_exclude += 2;
        }
    }

    /* Incremental: reuse only what this key signed (the previous manifest's
     * signature verifies with sk's public half) and what the matching,
     * authentic state says is unchanged. Anything else hashes every file. */
    if (o.state_path) {
        if (o.rehash) {
            note = "--rehash";
        } else if (prev == NULL) {
            note = "no previous manifest";
        } else {
            patient_pubkey pk;
            patient_seckey_pubkey(sk, &pk);
            if (pt_read_file((char *)sigp.data, 64 * 1024, &psig, &psiglen) != PATIENT_OK ||
                patient_minisig_verify(&pk, old, oldlen, (const char *)psig, psiglen, NULL,
                                       NULL) != PATIENT_OK)
                note = "previous manifest signature does not verify with this key";
            else if ((note = state_read(o.state_path, sk, old, oldlen, &stext, &pfiles,
                                        &npfiles, &pnodes, &npnodes)) == NULL) {
                reuse.m = prev;
                reuse.f = pfiles;
                reuse.n = npfiles;
                reuse.nodes = pnodes;
                reuse.n_nodes = npnodes;
                reusep = &reuse;
            }
        }
    } else {
        note = "no publish state kept";
    }
    if ((err = ensure_dir(so.dir, detail)))
        goto out;
    /* The shards the previous manifest names stay until this one is in
     * place (a verifier may be half way through the old tree). */
    if (prev && prev->nlevels && (err = shard_names(so.dir, prev, &prevnames, &nprevnames)))
        goto out;
    if ((err = pt_manifest_build(site_dir, &o, reusep, o.state_path ? &lines : NULL, &stats,
                                 &so, &json, &jlen, detail)) ||
        (err = patient_manifest_parse(json, jlen, &m)))
        goto out;
    /* Every new shard durable before anything names it: one syncfs for
     * them all instead of an fsync each. */
    if (so.written && (err = sync_folder(so.dir))) {
        pt_detail_first(detail, "%s: %s", so.dir, strerror(errno));
        goto out;
    }
    if ((err = pt_manifest_sign_parsed(sk, m, json, jlen, &sig)))
        goto out;
    /* Signature first to a side file, then the manifest, then the
     * signature into place: see the header for why. */
    if ((err = pt_write_atomic((char *)nextp.data, sig, strlen(sig), 0644, 0))) {
        pt_detail_first(detail, "%s: %s", (char *)nextp.data, strerror(errno));
        goto out;
    }
    if ((err = pt_write_atomic((char *)outp.data, json, jlen, 0644, 0))) {
        pt_detail_first(detail, "%s: %s", (char *)outp.data, strerror(errno));
        unlink((char *)nextp.data);
        goto out;
    }
    if (rename((char *)nextp.data, (char *)sigp.data) != 0) {
        pt_detail_first(detail, "%s: %s", (char *)sigp.data, strerror(errno));
        err = PATIENT_ERR_IO;
        goto out;
    }
    if ((err = fsync_parent((char *)sigp.data)))
        goto out;
    if (result) {
        result->version = o.version;
        result->resources = stats.entries;
        result->recovered = recovered;
        result->bytes = stats.bytes;
        result->shards = so.total;
        result->shards_written = so.written;
        result->shard_bytes = so.bytes_total;
        result->shard_bytes_written = so.bytes_written;
        result->files_hashed = stats.hashed;
        result->files_reused = stats.reused;
        result->bytes_hashed = stats.bytes_hashed;
        result->reuse_note = stats.reused ? NULL
                             : note      ? note
                             : stats.hashed ? "no file unchanged since the last publish"
                                            : NULL;
    }
    /* After the manifest is in place: a crash before this leaves the old
     * state, which no longer matches the manifest and so is not used. */
    if (o.state_path && (err = state_write(o.state_path, sk, json, jlen, &nodes, &lines))) {
        pt_detail_first(detail,
                        "version %llu published, but the publish state %s was not written "
                        "(%s); the next publish hashes every file",
                        (unsigned long long)o.version, o.state_path, strerror(errno));
        goto out;
    }
    /* Shards neither this manifest nor the previous one names. */
    prune_shards(so.dir, so.names, so.n_names, prevnames, nprevnames);
out:
    for (size_t i = 0; i < so.n_names; i++)
        free(so.names[i]);
    free(so.names);
    for (size_t i = 0; i < nprevnames; i++)
        free(prevnames[i]);
    free(prevnames);
    free(pnodes);
    pt_buf_free(&nodes);
    pt_buf_free(&shdir);
    pt_buf_free(&lines);
    free(psig);
    free(stext);
    free(pfiles);
    pt_buf_free(&outp);
    pt_buf_free(&sigp);
    pt_buf_free(&nextp);
    patient_manifest_free(prev);
    patient_manifest_free(m);
    free(excl);
    free(json);
    free(sig);
    free(root);
    free(rel);
    free(relsh);
    free(old);
    return err;
}
