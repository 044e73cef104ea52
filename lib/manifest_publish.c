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

/* A number of the state: the strict decimal reader's (no sign, no
 * leading zero), at most max, up to sep. */
static int
state_u64(const char **p, const char *end, char sep, uint64_t max, uint64_t *v)
{
    const char *s = *p, *e = memchr(s, sep, (size_t)(end - s));

    if (e == NULL || pt_decimal_parse(s, (size_t)(e - s), max, v) != 0)
        return -1;
    *p = e + 1;
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
        if (state_u64(&p, end, ' ', PT_SHARD_MAX_LEVELS, &lv) || lv < 1 ||
            state_u64(&p, end, ' ', ((uint64_t)1 << 24) - 1, &ix) || end - p < 64 + 1 + 64 + 1 ||
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
        if (state_u64(&p, end, ' ', UINT64_MAX, &x.dev) ||
            state_u64(&p, end, ' ', UINT64_MAX, &x.ino) ||
            state_u64(&p, end, ' ', UINT64_MAX, &x.size))
            goto bad;
        if (p < end && *p == '-') {
            neg = 1;
            p++;
        }
        if (state_u64(&p, end, ' ', INT64_MAX, &sec) || (neg && sec == 0) ||
            state_u64(&p, end, ' ', 999999999, &nsec))
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
        err = pt_fsync_dir_of(sigp);
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

/* One publish as its phases fill it in (patient_manifest_publish). */
typedef struct {
    patient_manifest_opts o;
    /* Paths: the manifest, its signature, the signature's side file, the
     * shards folder. */
    pt_buf outp, sigp, nextp, shdir;
    int recovered; /* an interrupted publish was completed */
    uint8_t *old;  /* the previous manifest's bytes, if any */
    size_t oldlen;
    patient_manifest *prev; /* ... parsed, if it parses */
    const char **excl;      /* o.exclude with our own output added */
    char *rel, *relsh;      /* our output and its shards, inside the tree */
    /* Incremental: what the previous publish's state lets us reuse. */
    uint8_t *psig, *stext;
    size_t psiglen;
    pt_prev_file *pfiles;
    size_t npfiles;
    pt_prev_node *pnodes;
    size_t npnodes;
    pt_reuse reuse, *reusep;
    const char *note; /* why nothing is reused, or NULL */
    /* Built: the manifest, its shards, the state to keep, the signature. */
    pt_build_stats stats;
    pt_buf lines, nodes;
    pt_shard_out so;
    char **prevnames; /* shards the previous manifest names */
    size_t nprevnames;
    char *json, *sig;
    size_t jlen;
    patient_manifest *m;
} pub_run;

/* Where everything goes: out_path, or .well-known/patient/manifest.json in
 * the tree (made if missing), and the names beside it. */
static patient_err
pub_paths(pub_run *r, const char *site_dir, const char *out_path, char **detail)
{
    patient_err err;
    const char *slash;

    if (out_path == NULL) {
        if ((err = pt_buf_appendf(&r->outp, "%s/.well-known", site_dir)))
            return err;
        if ((err = ensure_dir((char *)r->outp.data, detail)) ||
            (err = pt_buf_append(&r->outp, "/patient", 8)) ||
            (err = ensure_dir((char *)r->outp.data, detail)) ||
            (err = pt_buf_append(&r->outp, "/manifest.json", 14)))
            return err;
    } else if (strcmp(out_path, "-") == 0 || out_path[0] == 0) {
        return PATIENT_ERR_ARG;
    } else if ((err = pt_buf_append(&r->outp, out_path, strlen(out_path)))) {
        return err;
    }
    if ((err = pt_buf_appendf(&r->sigp, "%s.minisig", (char *)r->outp.data)) ||
        (err = pt_buf_appendf(&r->nextp, "%s.minisig.next", (char *)r->outp.data)))
        return err;
    /* Shards beside the manifest: <folder>/shards/<sha256 hex>.json. */
    slash = strrchr((char *)r->outp.data, '/');
    if ((err = slash ? pt_buf_append(&r->shdir, r->outp.data,
                                     (size_t)(slash - (char *)r->outp.data) + 1)
                     : PATIENT_OK) ||
        (err = pt_buf_appendf(&r->shdir, PATIENT_MANIFEST_SHARD_DIR)))
        return err;
    r->so.dir = (char *)r->shdir.data;
    r->so.nodes = r->o.state_path ? &r->nodes : NULL;
    return PATIENT_OK;
}

/* Collect, 1: complete an interrupted publish, read the previous manifest
 * and choose the version (above the published one). */
static patient_err
pub_previous(pub_run *r, const patient_seckey *sk, char **detail)
{
    const char *outp;
    patient_err err;

    if ((err = recover((char *)r->outp.data, (char *)r->sigp.data, (char *)r->nextp.data, sk,
                       &r->recovered, detail)))
        return err;
    outp = (char *)r->outp.data;
    err = pt_read_file(outp, PATIENT_MANIFEST_MAX_BYTES, &r->old, &r->oldlen);
    if (err == PATIENT_OK) {
        err = patient_manifest_parse(r->old, r->oldlen, &r->prev);
        if (err != PATIENT_OK && r->o.version == 0) {
            pt_detail_first(detail,
                            "%s: previous manifest unreadable (%s); give an explicit version to "
                            "replace it",
                            outp, patient_strerror(err));
            return err;
        }
    } else if (err != PATIENT_ERR_NOT_FOUND) {
        pt_detail_first(detail, "%s: %s", outp, patient_strerror(err));
        return err;
    }
    if (r->o.version == 0) {
        r->o.version = r->prev ? r->prev->version + 1 : 1;
    } else if (r->prev && r->o.version <= r->prev->version) {
        pt_detail_first(detail, "%s: version %llu is not above the published version %llu", outp,
                        (unsigned long long)r->o.version, (unsigned long long)r->prev->version);
        return PATIENT_ERR_ROLLBACK;
    }
    return PATIENT_OK;
}

/* Collect, 2: never list our own output (and its shards folder) when it
 * lies inside the tree. Only an explicit out_path can. */
static patient_err
pub_exclude_output(pub_run *r, const char *site_dir, const char *out_path)
{
    const char *outp = (char *)r->outp.data, *slash = strrchr(outp, '/');
    const char *base = slash ? slash + 1 : outp, *rs;
    char *dir, *rd, *root;
    pt_buf sb = {0};

    if (out_path == NULL)
        return PATIENT_OK;
    if ((dir = strdup(outp)) == NULL)
        return PATIENT_ERR_NOMEM;
    if (slash)
        dir[slash - outp] = 0;
    rd = realpath(slash ? (slash == outp ? "/" : dir) : ".", NULL);
    free(dir);
    root = realpath(site_dir, NULL);
    if (rd && root) {
        size_t rl = strlen(root);
        if (strcmp(rd, root) == 0) {
            r->rel = strdup(base);
        } else if (strncmp(rd, root, rl) == 0 && rd[rl] == '/') {
            pt_buf rb = {0};
            if (pt_buf_appendf(&rb, "%s/%s", rd + rl + 1, base) == PATIENT_OK)
                r->rel = (char *)rb.data;
        }
    }
    free(rd);
    free(root);
    if (r->rel == NULL)
        return PATIENT_OK;
    /* The shards folder beside it too. */
    rs = strrchr(r->rel, '/');
    if (pt_buf_appendf(&sb, "%.*s%s", rs ? (int)(rs - r->rel + 1) : 0, r->rel,
                       PATIENT_MANIFEST_SHARD_DIR) != PATIENT_OK ||
        (r->excl = calloc(r->o.n_exclude + 2, sizeof *r->excl)) == NULL) {
        pt_buf_free(&sb);
        return PATIENT_ERR_NOMEM;
    }
    r->relsh = (char *)sb.data;
    for (size_t i = 0; i < r->o.n_exclude; i++)
        r->excl[i] = r->o.exclude[i];
    r->excl[r->o.n_exclude] = r->rel;
    r->excl[r->o.n_exclude + 1] = r->relsh;
    r->o.exclude = r->excl;
    r->o.n_exclude += 2;
    return PATIENT_OK;
}

/* Collect, 3, incremental: reuse only what this key signed (the previous
 * manifest's signature verifies with sk's public half) and what the
 * matching, authentic state says is unchanged. Anything else hashes every
 * file; r->note says why. */
static void
pub_reuse(pub_run *r, const patient_seckey *sk)
{
    patient_pubkey pk;

    if (r->o.state_path == NULL) {
        r->note = "no publish state kept";
        return;
    }
    if (r->o.rehash) {
        r->note = "--rehash";
        return;
    }
    if (r->prev == NULL) {
        r->note = "no previous manifest";
        return;
    }
    patient_seckey_pubkey(sk, &pk);
    if (pt_read_file((char *)r->sigp.data, 64 * 1024, &r->psig, &r->psiglen) != PATIENT_OK ||
        patient_minisig_verify(&pk, r->old, r->oldlen, (const char *)r->psig, r->psiglen, NULL,
                               NULL) != PATIENT_OK)
        r->note = "previous manifest signature does not verify with this key";
    else if ((r->note = state_read(r->o.state_path, sk, r->old, r->oldlen, &r->stext, &r->pfiles,
                                   &r->npfiles, &r->pnodes, &r->npnodes)) == NULL) {
        r->reuse.m = r->prev;
        r->reuse.f = r->pfiles;
        r->reuse.n = r->npfiles;
        r->reuse.nodes = r->pnodes;
        r->reuse.n_nodes = r->npnodes;
        r->reusep = &r->reuse;
    }
}

/* Build: the manifest and its new shards (durable), parsed back, then
 * signed. */
static patient_err
pub_build(pub_run *r, const char *site_dir, const patient_seckey *sk, char **detail)
{
    patient_err err;

    if ((err = ensure_dir(r->so.dir, detail)))
        return err;
    /* The shards the previous manifest names stay until this one is in
     * place (a verifier may be half way through the old tree). */
    if (r->prev && r->prev->nlevels &&
        (err = shard_names(r->so.dir, r->prev, &r->prevnames, &r->nprevnames)))
        return err;
    if ((err = pt_manifest_build(site_dir, &r->o, r->reusep, r->o.state_path ? &r->lines : NULL,
                                 &r->stats, &r->so, &r->json, &r->jlen, detail)) ||
        (err = patient_manifest_parse(r->json, r->jlen, &r->m)))
        return err;
    /* Every new shard durable before anything names it: one syncfs for
     * them all instead of an fsync each. */
    if (r->so.written && (err = sync_folder(r->so.dir))) {
        pt_detail_first(detail, "%s: %s", r->so.dir, strerror(errno));
        return err;
    }
    return pt_manifest_sign_parsed(sk, r->m, r->json, r->jlen, &r->sig);
}

/* Write: signature first to a side file, then the manifest, then the
 * signature into place: see the header for why. */
static patient_err
pub_write(pub_run *r, char **detail)
{
    const char *outp = (char *)r->outp.data, *sigp = (char *)r->sigp.data;
    const char *nextp = (char *)r->nextp.data;
    patient_err err;

    if ((err = pt_write_atomic(nextp, r->sig, strlen(r->sig), 0644, 0))) {
        pt_detail_first(detail, "%s: %s", nextp, strerror(errno));
        return err;
    }
    if ((err = pt_write_atomic(outp, r->json, r->jlen, 0644, 0))) {
        pt_detail_first(detail, "%s: %s", outp, strerror(errno));
        unlink(nextp);
        return err;
    }
    if (rename(nextp, sigp) != 0) {
        pt_detail_first(detail, "%s: %s", sigp, strerror(errno));
        return PATIENT_ERR_IO;
    }
    return pt_fsync_dir_of(sigp);
}

static void
pub_result(const pub_run *r, patient_publish_result *result)
{
    result->version = r->o.version;
    result->resources = r->stats.entries;
    result->recovered = r->recovered;
    result->bytes = r->stats.bytes;
    result->shards = r->so.total;
    result->shards_written = r->so.written;
    result->shard_bytes = r->so.bytes_total;
    result->shard_bytes_written = r->so.bytes_written;
    result->files_hashed = r->stats.hashed;
    result->files_reused = r->stats.reused;
    result->bytes_hashed = r->stats.bytes_hashed;
    result->reuse_note = r->stats.reused   ? NULL
                         : r->note         ? r->note
                         : r->stats.hashed ? "no file unchanged since the last publish"
                                           : NULL;
}

/* After the manifest is in place: the state for the next publish (a crash
 * before this leaves the old state, which no longer matches the manifest
 * and so is not used), then the shards neither this manifest nor the
 * previous one names. */
static patient_err
pub_after(pub_run *r, const patient_seckey *sk, char **detail)
{
    patient_err err;

    if (r->o.state_path &&
        (err = state_write(r->o.state_path, sk, r->json, r->jlen, &r->nodes, &r->lines))) {
        pt_detail_first(detail,
                        "version %llu published, but the publish state %s was not written "
                        "(%s); the next publish hashes every file",
                        (unsigned long long)r->o.version, r->o.state_path, strerror(errno));
        return err;
    }
    prune_shards(r->so.dir, r->so.names, r->so.n_names, r->prevnames, r->nprevnames);
    return PATIENT_OK;
}

static void
pub_free(pub_run *r)
{
    for (size_t i = 0; i < r->so.n_names; i++)
        free(r->so.names[i]);
    free(r->so.names);
    for (size_t i = 0; i < r->nprevnames; i++)
        free(r->prevnames[i]);
    free(r->prevnames);
    free(r->pnodes);
    pt_buf_free(&r->nodes);
    pt_buf_free(&r->shdir);
    pt_buf_free(&r->lines);
    free(r->psig);
    free(r->stext);
    free(r->pfiles);
    pt_buf_free(&r->outp);
    pt_buf_free(&r->sigp);
    pt_buf_free(&r->nextp);
    patient_manifest_free(r->prev);
    patient_manifest_free(r->m);
    free(r->excl);
    free(r->json);
    free(r->sig);
    free(r->rel);
    free(r->relsh);
    free(r->old);
}

patient_err
patient_manifest_publish(const char *site_dir, const char *out_path, const patient_seckey *sk,
                         const patient_manifest_opts *opts, patient_publish_result *result,
                         char **detail)
{
    pub_run r;
    patient_err err;

    if (detail)
        *detail = NULL;
    if (result)
        memset(result, 0, sizeof *result);
    if (site_dir == NULL || sk == NULL || opts == NULL)
        return PATIENT_ERR_ARG;
    memset(&r, 0, sizeof r);
    if ((err = PT_OPTS_TAKE(&r.o, opts)) || (err = check_opts(&r.o, detail)))
        return err;
    if ((err = pub_paths(&r, site_dir, out_path, detail)) || (err = pub_previous(&r, sk, detail)) ||
        (err = pub_exclude_output(&r, site_dir, out_path)))
        goto out;
    pub_reuse(&r, sk);
    if ((err = pub_build(&r, site_dir, sk, detail)) || (err = pub_write(&r, detail)))
        goto out;
    if (result)
        pub_result(&r, result);
    err = pub_after(&r, sk, detail);
out:
    pub_free(&r);
    return err;
}
