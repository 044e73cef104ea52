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
        set_detail(detail, "%s: %s", path, strerror(errno));
        return PATIENT_ERR_IO;
    }
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        set_detail(detail, "%s: not a folder (symlinks are refused here)", path);
        return PATIENT_ERR_UNSAFE_PATH;
    }
    return PATIENT_OK;
}

/* ---- publish state (docs/format/manifest.md, "Publish state") ---- */

#define STATE_MAGIC "patient-publish-state 1\n"
#define STATE_CONTEXT "patient-publish-state-v1"
#define STATE_MAC_LINE (4 + 64 + 1) /* "mac " hex "\n" */
/* A state line is far shorter than the manifest entry it describes. */
#define STATE_MAX PATIENT_MANIFEST_MAX_BYTES

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
static const char *
state_read(const char *path, const patient_seckey *sk, const uint8_t *old, size_t oldlen,
           uint8_t **text, pt_prev_file **files, size_t *n)
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
    return note;
}

static patient_err
state_write(const char *path, const patient_seckey *sk, const char *json, size_t jlen,
            const pt_buf *lines)
{
    pt_buf b = {0};
    uint8_t h[PATIENT_SHA256_BYTES];
    char hex[65], sri[PATIENT_SRI_BYTES];
    patient_err err;

    if ((err = patient_sha256(json, jlen, h)))
        return err;
    patient_sri_encode(h, sri);
    if ((err = pt_buf_appendf(&b, STATE_MAGIC "manifest %s\n", sri)) ||
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
            set_detail(detail, "%s: %s", sigp, strerror(errno));
            err = PATIENT_ERR_IO;
            goto out;
        }
        *recovered = 1;
        err = fsync_parent(sigp);
    } else if (unlink(nextp) != 0) {
        set_detail(detail, "%s: %s", nextp, strerror(errno));
        err = PATIENT_ERR_IO;
    }
out:
    free(mj);
    free(sg);
    return err;
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
    char *json = NULL, *sig = NULL, *root = NULL, *rel = NULL;
    uint8_t *old = NULL;
    size_t jlen = 0, oldlen = 0, psiglen = 0, npfiles = 0;
    uint8_t *psig = NULL, *stext = NULL;
    pt_prev_file *pfiles = NULL;
    pt_reuse reuse, *reusep = NULL;
    pt_build_stats stats = {0};
    pt_buf lines = {0};
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
    if ((err = recover((char *)outp.data, (char *)sigp.data, (char *)nextp.data, sk, &recovered,
                       detail)))
        goto out;

    /* Version from the previous manifest. */
    err = pt_read_file((char *)outp.data, PATIENT_MANIFEST_MAX_BYTES, &old, &oldlen);
    if (err == PATIENT_OK) {
        err = patient_manifest_parse(old, oldlen, &prev);
        if (err != PATIENT_OK && o.version == 0) {
            set_detail(detail,
                       "%s: previous manifest unreadable (%s); give an explicit version to "
                       "replace it",
                       (char *)outp.data, patient_strerror(err));
            goto out;
        }
    } else if (err != PATIENT_ERR_NOT_FOUND) {
        set_detail(detail, "%s: %s", (char *)outp.data, patient_strerror(err));
        goto out;
    }
    err = PATIENT_OK;
    if (o.version == 0) {
        o.version = prev ? prev->version + 1 : 1;
    } else if (prev && o.version <= prev->version) {
        set_detail(detail, "%s: version %llu is not above the published version %llu",
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
            if ((excl = calloc(o.n_exclude + 1, sizeof *excl)) == NULL) {
                err = PATIENT_ERR_NOMEM;
                goto out;
            }
            for (size_t i = 0; i < o.n_exclude; i++)
                excl[i] = o.exclude[i];
            excl[o.n_exclude] = rel;
            o.exclude = excl;
            o.n_exclude++;
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
                                        &npfiles)) == NULL) {
                reuse.m = prev;
                reuse.f = pfiles;
                reuse.n = npfiles;
                reusep = &reuse;
            }
        }
    } else {
        note = "no publish state kept";
    }
    if ((err = pt_manifest_build(site_dir, &o, reusep, o.state_path ? &lines : NULL, &stats,
                                 &json, &jlen, detail)) ||
        (err = patient_manifest_parse(json, jlen, &m)))
        goto out;
    if ((err = pt_manifest_sign_parsed(sk, m, json, jlen, &sig)))
        goto out;
    /* Signature first to a side file, then the manifest, then the
     * signature into place: see the header for why. */
    if ((err = pt_write_atomic((char *)nextp.data, sig, strlen(sig), 0644, 0))) {
        set_detail(detail, "%s: %s", (char *)nextp.data, strerror(errno));
        goto out;
    }
    if ((err = pt_write_atomic((char *)outp.data, json, jlen, 0644, 0))) {
        set_detail(detail, "%s: %s", (char *)outp.data, strerror(errno));
        unlink((char *)nextp.data);
        goto out;
    }
    if (rename((char *)nextp.data, (char *)sigp.data) != 0) {
        set_detail(detail, "%s: %s", (char *)sigp.data, strerror(errno));
        err = PATIENT_ERR_IO;
        goto out;
    }
    if ((err = fsync_parent((char *)sigp.data)))
        goto out;
    if (result) {
        result->version = o.version;
        result->resources = m->n;
        result->recovered = recovered;
        for (size_t i = 0; i < m->n; i++)
            if (m->res[i].path[strlen(m->res[i].path) - 1] != '/')
                result->bytes += m->res[i].size;
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
    if (o.state_path && (err = state_write(o.state_path, sk, json, jlen, &lines))) {
        set_detail(detail, "version %llu published, but the publish state %s was not written "
                   "(%s); the next publish hashes every file", (unsigned long long)o.version,
                   o.state_path, strerror(errno));
        goto out;
    }
out:
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
    free(old);
    return err;
}
