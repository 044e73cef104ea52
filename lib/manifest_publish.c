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
    size_t jlen = 0, oldlen = 0;
    int recovered = 0;
    patient_err err;

    if (detail)
        *detail = NULL;
    if (result)
        memset(result, 0, sizeof *result);
    if (site_dir == NULL || sk == NULL || opts == NULL)
        return PATIENT_ERR_ARG;
    if ((err = check_opts(opts, detail)))
        return err;
    o = *opts;
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

    if ((err = patient_manifest_build(site_dir, &o, &json, &jlen, detail)) ||
        (err = patient_manifest_parse(json, jlen, &m)))
        goto out;
    if ((err = patient_manifest_sign(sk, json, jlen, &sig)))
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
    }
out:
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
