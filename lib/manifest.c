/* Signed origin manifests: build (walk + parallel hash), sign, publish
 * (crash-safe), parse, verify, look up. Format: docs/format/manifest.md. */
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

#define MAX_THREADS 64
#define MAX_TOP_KEYS 64
#define MAX_NAME 256
#define MAX_GLOB 4096
#define MAX_REASON 128
#define MAX_TYPE 255
/* cJSON items a manifest may hold: 4 per resource plus headroom. Checked
 * before parsing so hostile input cannot make cJSON allocate without bound. */
#define MAX_ITEMS (4u * PATIENT_MANIFEST_MAX_RESOURCES + 4096u)

struct res {
    const char *path; /* points into root */
    uint8_t hash[PATIENT_SHA256_BYTES];
    uint64_t size;
    const char *type;
};

struct patient_manifest {
    cJSON *root; /* owns every string below */
    const char *origin;
    uint64_t version;
    time_t issued, expires;
    struct res *res;
    size_t n;
    patient_pubkey *next_keys;
    size_t n_next;
    patient_delegation *dels;
    size_t n_dels;
};

/* ---- detail messages ---- */

static void
set_detail(char **detail, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_detail(char **detail, const char *fmt, ...)
{
    va_list ap;
    pt_buf b = {0};
    char tmp[1024];

    if (detail == NULL || *detail != NULL)
        return; /* keep the first message */
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (pt_buf_append(&b, tmp, strlen(tmp)) == PATIENT_OK)
        *detail = (char *)b.data;
}

/* ---- JSON output (Python json.dumps(indent=2, sort_keys=True,
 * ensure_ascii=False) byte for byte) ---- */

static patient_err
json_str(pt_buf *b, const char *s)
{
    patient_err err;

    if ((err = pt_buf_append(b, "\"", 1)))
        return err;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            }
        }
        if ((err = esc ? pt_buf_append(b, esc, strlen(esc)) : pt_buf_append(b, p, 1)))
            return err;
    }
    return pt_buf_append(b, "\"", 1);
}

/* A list of strings at the given indent (of its key). */
static patient_err
json_strlist(pt_buf *b, const char *const *v, size_t n, const char *ind)
{
    patient_err err;

    if (n == 0)
        return pt_buf_append(b, "[]", 2);
    if ((err = pt_buf_append(b, "[\n", 2)))
        return err;
    for (size_t i = 0; i < n; i++) {
        if ((err = pt_buf_appendf(b, "%s  ", ind)) || (err = json_str(b, v[i])) ||
            (err = pt_buf_append(b, i + 1 < n ? ",\n" : "\n", i + 1 < n ? 2 : 1)))
            return err;
    }
    return pt_buf_appendf(b, "%s]", ind);
}

/* ---- delegations and next keys (shared by build and parse) ---- */

static patient_err
glob_list(const cJSON *o, const char *key, size_t maxlen, int path, const char ***out,
          size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *it;
    size_t i = 0, cnt;

    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(a))
        return PATIENT_ERR_PARSE;
    cnt = (size_t)cJSON_GetArraySize(a);
    if (cnt == 0)
        return PATIENT_ERR_PARSE;
    if (cnt > PATIENT_MANIFEST_MAX_GLOBS)
        return PATIENT_ERR_LIMIT;
    if ((*out = calloc(cnt, sizeof **out)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(it, a)
    {
        const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
        size_t sl = s ? strlen(s) : 0;
        if (s == NULL || sl == 0 || sl > maxlen || (path && s[0] != '/'))
            return PATIENT_ERR_PARSE;
        for (size_t k = 0; k < sl; k++)
            if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
                return PATIENT_ERR_PARSE;
        (*out)[i++] = s;
    }
    *n = i;
    return PATIENT_OK;
}

static void
dels_free(patient_delegation *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        free((void *)d[i].reasons);
        free((void *)d[i].paths);
    }
    free(d);
}

/* Validate a delegations array; strings point into a. */
static patient_err
dels_parse(const cJSON *a, patient_delegation **out, size_t *n)
{
    const cJSON *it;
    patient_delegation *d = NULL;
    size_t cnt, i = 0;
    patient_err err = PATIENT_OK;

    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(a))
        return PATIENT_ERR_PARSE;
    cnt = (size_t)cJSON_GetArraySize(a);
    if (cnt > PATIENT_MANIFEST_MAX_DELEGATIONS)
        return PATIENT_ERR_LIMIT;
    if (cnt && (d = calloc(cnt, sizeof *d)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(it, a)
    {
        const char *name, *key;
        patient_delegation *x = &d[i++];
        if (!cJSON_IsObject(it)) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        name = pt_json_str(it, "name");
        key = pt_json_str(it, "key");
        if (name == NULL || key == NULL || name[0] == 0 ||
            strlen(name) > MAX_NAME || strlen(key) != PATIENT_PUBKEY_B64 - 1 ||
            strncmp(key, "RW", 2) != 0 || patient_pubkey_parse(key, strlen(key), &x->key)) {
            err = PATIENT_ERR_PARSE;
            goto out;
        }
        x->name = name;
        if ((err = glob_list(it, "reasons", MAX_REASON, 0, (const char ***)&x->reasons,
                             &x->n_reasons)) ||
            (err = glob_list(it, "paths", MAX_GLOB, 1, (const char ***)&x->paths, &x->n_paths)))
            goto out;
    }
    *out = d;
    *n = i;
    d = NULL;
out:
    dels_free(d, i);
    return err;
}

static patient_err
dels_emit(pt_buf *b, const patient_delegation *d, size_t n)
{
    patient_err err;
    char key[PATIENT_PUBKEY_B64];

    if ((err = pt_buf_append(b, "  \"delegations\": ", 17)))
        return err;
    if (n == 0)
        return pt_buf_append(b, "[],\n", 4);
    if ((err = pt_buf_append(b, "[\n", 2)))
        return err;
    for (size_t i = 0; i < n; i++) {
        patient_pubkey_encode(&d[i].key, key);
        if ((err = pt_buf_appendf(b, "    {\n      \"key\": \"%s\",\n      \"name\": ", key)) ||
            (err = json_str(b, d[i].name)) ||
            (err = pt_buf_append(b, ",\n      \"paths\": ", 17)) ||
            (err = json_strlist(b, d[i].paths, d[i].n_paths, "      ")) ||
            (err = pt_buf_append(b, ",\n      \"reasons\": ", 19)) ||
            (err = json_strlist(b, d[i].reasons, d[i].n_reasons, "      ")) ||
            (err = pt_buf_appendf(b, "\n    }%s\n", i + 1 < n ? "," : "")))
            return err;
    }
    return pt_buf_append(b, "  ],\n", 5);
}

/* ---- building: walk ---- */

typedef struct {
    char *url;        /* encoded URL path */
    char *fspath;     /* file to hash; NULL for a folder alias */
    const char *type; /* static */
    uint64_t size;
    uint8_t hash[PATIENT_SHA256_BYTES];
    size_t alias; /* index of the index.html entry, or SIZE_MAX */
} bent;

typedef struct {
    dev_t dev;
    ino_t ino;
} dirid;

typedef struct {
    const patient_manifest_opts *o;
    char *root; /* realpath of site_dir */
    size_t root_len;
    bent *e;
    size_t n, cap;
    dirid stack[PATIENT_MANIFEST_MAX_PATH / 2 + 2];
    size_t depth;
    char **detail;
} walker;

static int
excluded(const walker *w, const char *rel)
{
    static const char wk[] = ".well-known/patient";
    size_t l = sizeof wk - 1;

    if (strncmp(rel, wk, l) == 0 && (rel[l] == 0 || rel[l] == '/'))
        return 1;
    for (size_t i = 0; i < w->o->n_exclude; i++) {
        const char *x = w->o->exclude[i];
        size_t xl = strlen(x);
        if (xl && strncmp(rel, x, xl) == 0 && (rel[xl] == 0 || rel[xl] == '.'))
            return 1;
    }
    return 0;
}

static patient_err
add_entry(walker *w, const char *rel, const char *fspath, uint64_t size, size_t alias,
          int folder)
{
    bent *x;
    pt_buf u = {0};
    patient_err err;

    if (w->n >= PATIENT_MANIFEST_MAX_RESOURCES) {
        set_detail(w->detail, "more than %u resources", PATIENT_MANIFEST_MAX_RESOURCES);
        return PATIENT_ERR_LIMIT;
    }
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 256;
        bent *p = realloc(w->e, nc * sizeof *p);
        if (p == NULL)
            return PATIENT_ERR_NOMEM;
        w->e = p;
        w->cap = nc;
    }
    if ((err = pt_buf_append(&u, "/", 1)) || (err = pt_path_encode(&u, rel, strlen(rel))) ||
        (folder && *rel && (err = pt_buf_append(&u, "/", 1)))) {
        pt_buf_free(&u);
        return err;
    }
    if (u.len > PATIENT_MANIFEST_MAX_PATH) {
        set_detail(w->detail, "%s: URL path longer than %u bytes", rel,
                   PATIENT_MANIFEST_MAX_PATH);
        pt_buf_free(&u);
        return PATIENT_ERR_TOO_LARGE;
    }
    x = &w->e[w->n];
    memset(x, 0, sizeof *x);
    x->url = (char *)u.data;
    x->alias = alias;
    x->size = size;
    x->type = patient_mediatype(folder ? "index.html" : rel);
    if (fspath && (x->fspath = strdup(fspath)) == NULL) {
        free(x->url);
        return PATIENT_ERR_NOMEM;
    }
    w->n++;
    return PATIENT_OK;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static patient_err walk(walker *w, const char *fsdir, const char *rel);

/* One directory entry. */
static patient_err
visit(walker *w, const char *fsdir, const char *rel, const char *name, size_t *index_entry)
{
    pt_buf full = {0}, r = {0};
    struct stat st;
    char *real = NULL;
    const char *hashpath;
    patient_err err = PATIENT_OK;

    if ((err = pt_buf_appendf(&full, "%s/%s", fsdir, name)) ||
        (err = pt_buf_appendf(&r, "%s%s%s", rel, *rel ? "/" : "", name)))
        goto out;
    if (r.len > PATIENT_MANIFEST_MAX_PATH) {
        set_detail(w->detail, "%s: path longer than %u bytes", (char *)r.data,
                   PATIENT_MANIFEST_MAX_PATH);
        err = PATIENT_ERR_TOO_LARGE;
        goto out;
    }
    if (excluded(w, (char *)r.data))
        goto out;
    if (lstat((char *)full.data, &st) != 0) {
        set_detail(w->detail, "%s: %s", (char *)full.data, strerror(errno));
        err = errno == ENOENT ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_IO;
        goto out;
    }
    hashpath = (char *)full.data;
    if (S_ISLNK(st.st_mode)) {
        if ((real = realpath((char *)full.data, NULL)) == NULL) {
            set_detail(w->detail, "%s: %s", (char *)full.data,
                       errno == ENOENT ? "dangling symlink" : strerror(errno));
            err = errno == ENOENT ? PATIENT_ERR_NOT_FOUND
                  : errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH : PATIENT_ERR_IO;
            goto out;
        }
        if (strcmp(real, w->root) == 0) {
            set_detail(w->detail, "%s: symlink loop (-> the site folder)", (char *)full.data);
            err = PATIENT_ERR_UNSAFE_PATH;
            goto out;
        }
        if (!(strncmp(real, w->root, w->root_len) == 0 &&
              (real[w->root_len] == '/' || (w->root_len == 1 && real[1] != 0)))) {
            set_detail(w->detail, "%s: symlink leaves the site folder (-> %s)",
                       (char *)full.data, real);
            err = PATIENT_ERR_UNSAFE_PATH;
            goto out;
        }
        /* A link to something never listed (the manifest itself) is skipped. */
        if (excluded(w, real + w->root_len + (w->root_len > 1)))
            goto out;
        if (stat(real, &st) != 0) {
            set_detail(w->detail, "%s: %s", real, strerror(errno));
            err = PATIENT_ERR_IO;
            goto out;
        }
        hashpath = real;
    }
    if (S_ISREG(st.st_mode)) {
        if ((err = add_entry(w, (char *)r.data, hashpath, (uint64_t)st.st_size, SIZE_MAX, 0)))
            goto out;
        if (strcmp(name, "index.html") == 0)
            *index_entry = w->n - 1;
    } else if (S_ISDIR(st.st_mode)) {
        for (size_t i = 0; i < w->depth; i++) {
            if (w->stack[i].dev == st.st_dev && w->stack[i].ino == st.st_ino) {
                set_detail(w->detail, "%s: symlink loop", (char *)full.data);
                err = PATIENT_ERR_UNSAFE_PATH;
                goto out;
            }
        }
        if (w->depth >= sizeof w->stack / sizeof w->stack[0]) {
            set_detail(w->detail, "%s: folders nested too deeply", (char *)full.data);
            err = PATIENT_ERR_TOO_LARGE;
            goto out;
        }
        w->stack[w->depth].dev = st.st_dev;
        w->stack[w->depth].ino = st.st_ino;
        w->depth++;
        err = walk(w, (char *)full.data, (char *)r.data);
        w->depth--;
    } else {
        set_detail(w->detail, "%s: not a regular file or folder (%s)", (char *)full.data,
                   S_ISFIFO(st.st_mode)   ? "FIFO"
                   : S_ISSOCK(st.st_mode) ? "socket"
                   : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "device"
                                                                : "special file");
        err = PATIENT_ERR_UNSAFE_PATH;
    }
out:
    free(real);
    pt_buf_free(&full);
    pt_buf_free(&r);
    return err;
}

static patient_err
walk(walker *w, const char *fsdir, const char *rel)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0, index_entry = SIZE_MAX;
    patient_err err = PATIENT_OK;

    /* Read the whole folder first so open folders never pile up. */
    if ((d = opendir(fsdir)) == NULL) {
        set_detail(w->detail, "%s: %s", fsdir, strerror(errno));
        return PATIENT_ERR_IO;
    }
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n >= PATIENT_MANIFEST_MAX_RESOURCES) {
            set_detail(w->detail, "%s: more than %u entries", fsdir,
                       PATIENT_MANIFEST_MAX_RESOURCES);
            err = PATIENT_ERR_LIMIT;
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **p = realloc(names, nc * sizeof *p);
            if (p == NULL) {
                err = PATIENT_ERR_NOMEM;
                break;
            }
            names = p;
            cap = nc;
        }
        if ((names[n] = strdup(de->d_name)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            break;
        }
        n++;
        errno = 0;
    }
    if (err == PATIENT_OK && errno != 0) {
        set_detail(w->detail, "%s: %s", fsdir, strerror(errno));
        err = PATIENT_ERR_IO;
    }
    closedir(d);
    if (err)
        goto out;
    /* Sorted, so the first error reported does not depend on readdir order. */
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++)
        if ((err = visit(w, fsdir, rel, names[i], &index_entry)))
            goto out;
    if (index_entry != SIZE_MAX)
        err = add_entry(w, rel, NULL, w->e[index_entry].size, index_entry, 1);
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return err;
}

/* ---- building: hash on all cores ---- */

typedef struct {
    pthread_mutex_t mu;
    bent *e;
    size_t *order, n, next;
    int stop;
    patient_err err;
    size_t err_idx;
    uint64_t files_done, bytes_done, bytes_total;
    const patient_manifest_opts *o;
} hashq;

static void *
hash_worker(void *arg)
{
    hashq *q = arg;

    for (;;) {
        size_t i;
        uint64_t size = 0;
        patient_err err;

        pthread_mutex_lock(&q->mu);
        if (q->stop || q->next >= q->n) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        i = q->order[q->next++];
        pthread_mutex_unlock(&q->mu);

        err = patient_sha256_file(q->e[i].fspath, q->e[i].hash, &size);

        pthread_mutex_lock(&q->mu);
        if (err == PATIENT_OK) {
            q->e[i].size = size;
            q->files_done++;
            q->bytes_done += size;
            if (q->o->progress &&
                q->o->progress(q->o->progress_arg, q->files_done, q->n, q->bytes_done,
                               q->bytes_total) != 0) {
                err = PATIENT_ERR_INTERRUPTED;
                i = SIZE_MAX;
            }
        }
        if (err != PATIENT_OK) {
            if (q->err == PATIENT_OK || i < q->err_idx) {
                q->err = err;
                q->err_idx = i;
            }
            q->stop = 1;
        }
        pthread_mutex_unlock(&q->mu);
    }
    return NULL;
}

static int
cmp_size_desc(const void *a, const void *b, void *base)
{
    const bent *e = base;
    const bent *x = &e[*(const size_t *)a], *y = &e[*(const size_t *)b];
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return strcmp(x->url, y->url);
}

static int
cmp_url(const void *a, const void *b)
{
    return strcmp(((const bent *)a)->url, ((const bent *)b)->url);
}

static patient_err
hash_all(walker *w, unsigned threads)
{
    hashq q;
    pthread_t tid[MAX_THREADS];
    size_t started = 0;
    patient_err err = PATIENT_OK;

    memset(&q, 0, sizeof q);
    q.e = w->e;
    q.o = w->o;
    if ((q.order = malloc((w->n ? w->n : 1) * sizeof *q.order)) == NULL)
        return PATIENT_ERR_NOMEM;
    for (size_t i = 0; i < w->n; i++) {
        if (w->e[i].fspath) {
            q.order[q.n++] = i;
            q.bytes_total += w->e[i].size;
        }
    }
    /* Largest first: the threads finish together. */
    qsort_r(q.order, q.n, sizeof *q.order, cmp_size_desc, w->e);
    if (threads == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? (unsigned)c : 1;
    }
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (threads > q.n)
        threads = q.n ? (unsigned)q.n : 1;
    pthread_mutex_init(&q.mu, NULL);
    for (unsigned t = 1; t < threads; t++) {
        if (pthread_create(&tid[started], NULL, hash_worker, &q) != 0)
            break; /* fewer threads is still correct */
        started++;
    }
    hash_worker(&q);
    for (size_t t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&q.mu);
    if (q.err != PATIENT_OK) {
        err = q.err;
        if (q.err_idx != SIZE_MAX)
            set_detail(w->detail, "%s: %s", w->e[q.err_idx].fspath, patient_strerror(err));
    }
    free(q.order);
    return err;
}

static patient_err
emit(pt_buf *b, const patient_manifest_opts *o, const bent *e, size_t n,
     const patient_delegation *dels, size_t n_dels)
{
    char is[21], ex[21], sri[PATIENT_SRI_BYTES], key[PATIENT_PUBKEY_B64];
    patient_err err;

    pt_time_format(o->issued, is);
    pt_time_format(o->expires, ex);
    if ((err = pt_buf_append(b, "{\n", 2)))
        return err;
    if (o->delegations_json && (err = dels_emit(b, dels, n_dels)))
        return err;
    if ((err = pt_buf_appendf(b, "  \"expires\": \"%s\",\n  \"issued\": \"%s\",\n", ex, is)))
        return err;
    if (o->n_next_keys) {
        if ((err = pt_buf_append(b, "  \"next_keys\": [\n", 17)))
            return err;
        for (size_t i = 0; i < o->n_next_keys; i++) {
            patient_pubkey_encode(&o->next_keys[i], key);
            if ((err = pt_buf_appendf(b, "    \"%s\"%s\n", key,
                                      i + 1 < o->n_next_keys ? "," : "")))
                return err;
        }
        if ((err = pt_buf_append(b, "  ],\n", 5)))
            return err;
    }
    if ((err = pt_buf_appendf(b, "  \"origin\": \"%s\",\n  \"patient\": %d,\n  \"resources\": %s",
                              o->origin, PATIENT_MANIFEST_FORMAT, n ? "{\n" : "{}")))
        return err;
    for (size_t i = 0; i < n; i++) {
        patient_sri_encode(e[i].hash, sri);
        if ((err = pt_buf_appendf(b,
                                  "    \"%s\": {\n      \"integrity\": \"%s\",\n"
                                  "      \"size\": %llu,\n      \"type\": \"%s\"\n    }%s\n",
                                  e[i].url, sri, (unsigned long long)e[i].size, e[i].type,
                                  i + 1 < n ? "," : "")))
            return err;
        if (b->len > PATIENT_MANIFEST_MAX_BYTES)
            return PATIENT_ERR_TOO_LARGE;
    }
    if ((err = pt_buf_appendf(b, "%s,\n  \"type\": \"manifest\",\n  \"version\": %llu\n}\n",
                              n ? "  }" : "", (unsigned long long)o->version)))
        return err;
    return b->len > PATIENT_MANIFEST_MAX_BYTES ? PATIENT_ERR_TOO_LARGE : PATIENT_OK;
}

static patient_err
check_opts(const patient_manifest_opts *o, char **detail)
{
    if (o == NULL)
        return PATIENT_ERR_ARG;
    if (pt_origin_check(o->origin) != PATIENT_OK) {
        set_detail(detail, "%s: not an origin (scheme://host[:port], lower case, no path)",
                   o->origin ? o->origin : "(null)");
        return PATIENT_ERR_ARG;
    }
    if (o->expires <= o->issued) {
        set_detail(detail, "expiry is not after the issue time");
        return PATIENT_ERR_ARG;
    }
    if (o->n_next_keys > PATIENT_MANIFEST_MAX_NEXT_KEYS ||
        (o->n_next_keys && o->next_keys == NULL)) {
        set_detail(detail, "at most %u next keys", PATIENT_MANIFEST_MAX_NEXT_KEYS);
        return PATIENT_ERR_LIMIT;
    }
    return PATIENT_OK;
}

patient_err
patient_manifest_build(const char *site_dir, const patient_manifest_opts *o, char **json,
                       size_t *len, char **detail)
{
    walker w;
    struct stat st;
    pt_buf b = {0};
    cJSON *dj = NULL;
    patient_delegation *dels = NULL;
    size_t n_dels = 0;
    patient_err err;

    *json = NULL;
    *len = 0;
    if (detail)
        *detail = NULL;
    memset(&w, 0, sizeof w);
    w.o = o;
    w.detail = detail;
    if (site_dir == NULL)
        return PATIENT_ERR_ARG;
    if ((err = check_opts(o, detail)))
        return err;
    if (o->version < 1 || o->version > 9007199254740991ULL) {
        set_detail(detail, "version must be at least 1");
        return PATIENT_ERR_ARG;
    }
    if (o->delegations_json) {
        if ((err = pt_json_parse(o->delegations_json, strlen(o->delegations_json), &dj)) ||
            (err = dels_parse(dj, &dels, &n_dels))) {
            set_detail(detail, "delegations: %s", patient_strerror(err));
            goto out;
        }
    }
    if ((w.root = realpath(site_dir, NULL)) == NULL || stat(w.root, &st) != 0) {
        set_detail(detail, "%s: %s", site_dir, strerror(errno));
        err = errno == ENOENT ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_IO;
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        set_detail(detail, "%s: not a folder", site_dir);
        err = PATIENT_ERR_ARG;
        goto out;
    }
    w.root_len = strlen(w.root);
    w.stack[0].dev = st.st_dev;
    w.stack[0].ino = st.st_ino;
    w.depth = 1;
    if ((err = walk(&w, w.root, "")) || (err = hash_all(&w, o->threads)))
        goto out;
    for (size_t i = 0; i < w.n; i++) {
        if (w.e[i].alias != SIZE_MAX) {
            memcpy(w.e[i].hash, w.e[w.e[i].alias].hash, PATIENT_SHA256_BYTES);
            w.e[i].size = w.e[w.e[i].alias].size;
        }
    }
    qsort(w.e, w.n, sizeof *w.e, cmp_url);
    if ((err = emit(&b, o, w.e, w.n, dels, n_dels))) {
        if (err == PATIENT_ERR_TOO_LARGE)
            set_detail(detail, "manifest larger than %u bytes", PATIENT_MANIFEST_MAX_BYTES);
        goto out;
    }
    *json = (char *)b.data;
    *len = b.len;
    b.data = NULL;
out:
    for (size_t i = 0; i < w.n; i++) {
        free(w.e[i].url);
        free(w.e[i].fspath);
    }
    free(w.e);
    free(w.root);
    pt_buf_free(&b);
    dels_free(dels, n_dels);
    cJSON_Delete(dj);
    return err;
}

/* ---- parsing ---- */

void
patient_manifest_free(patient_manifest *m)
{
    if (m == NULL)
        return;
    free(m->res);
    free(m->next_keys);
    dels_free(m->dels, m->n_dels);
    cJSON_Delete(m->root);
    free(m);
}

/* Count would-be cJSON items ('{', '[' and ',' outside strings). */
static size_t
count_items(const char *s, size_t len)
{
    size_t n = 0;
    int instr = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (instr) {
            if (c == '\\')
                i++;
            else if (c == '"')
                instr = 0;
        } else if (c == '"') {
            instr = 1;
        } else if (c == '{' || c == '[' || c == ',') {
            n++;
        }
    }
    return n;
}

static patient_err
time_field(const cJSON *o, const char *key, time_t *t)
{
    const char *s = pt_json_str(o, key);
    char back[21];

    if (s == NULL || strlen(s) != 20 || pt_time_parse(s, t) != PATIENT_OK)
        return PATIENT_ERR_PARSE;
    pt_time_format(*t, back);
    return strcmp(back, s) == 0 ? PATIENT_OK : PATIENT_ERR_PARSE;
}

static int
cmp_res(const void *a, const void *b)
{
    return strcmp(((const struct res *)a)->path, ((const struct res *)b)->path);
}

static patient_err
type_check(const char *t)
{
    size_t n = t ? strlen(t) : 0;

    if (n == 0 || n > MAX_TYPE || strchr(t, '/') == NULL)
        return PATIENT_ERR_PARSE;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] >= 0x7f)
            return PATIENT_ERR_PARSE;
    return PATIENT_OK;
}

patient_err
patient_manifest_parse(const void *json, size_t len, patient_manifest **out)
{
    patient_manifest *m = NULL;
    const cJSON *it, *res, *nk, *dl;
    long long v;
    size_t cnt, i;
    patient_err err;

    *out = NULL;
    if (json == NULL)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_MANIFEST_MAX_BYTES)
        return PATIENT_ERR_TOO_LARGE;
    if (count_items(json, len) > MAX_ITEMS)
        return PATIENT_ERR_LIMIT;
    if ((m = calloc(1, sizeof *m)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = pt_json_parse(json, len, &m->root)))
        goto out;
    err = PATIENT_ERR_PARSE;
    if (!cJSON_IsObject(m->root))
        goto out;
    /* Duplicate keys would let two readers see two manifests. */
    i = 0;
    cJSON_ArrayForEach(it, m->root)
    {
        if (++i > MAX_TOP_KEYS)
            goto out;
        for (const cJSON *p = m->root->child; p != it; p = p->next)
            if (strcmp(p->string, it->string) == 0)
                goto out;
    }
    if (pt_json_int(m->root, "patient", &v) != 0)
        goto out;
    if (v != PATIENT_MANIFEST_FORMAT) {
        err = PATIENT_ERR_UNSUPPORTED;
        goto out;
    }
    if (pt_json_str(m->root, "type") == NULL || strcmp(pt_json_str(m->root, "type"), "manifest"))
        goto out;
    if ((m->origin = pt_json_str(m->root, "origin")) == NULL || pt_origin_check(m->origin))
        goto out;
    if (pt_json_int(m->root, "version", &v) != 0 || v < 1)
        goto out;
    m->version = (uint64_t)v;
    if (time_field(m->root, "issued", &m->issued) || time_field(m->root, "expires", &m->expires) ||
        m->expires < m->issued)
        goto out;
    res = cJSON_GetObjectItemCaseSensitive(m->root, "resources");
    if (!cJSON_IsObject(res))
        goto out;
    cnt = (size_t)cJSON_GetArraySize(res);
    if (cnt > PATIENT_MANIFEST_MAX_RESOURCES) {
        err = PATIENT_ERR_LIMIT;
        goto out;
    }
    if (cnt && (m->res = calloc(cnt, sizeof *m->res)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    cJSON_ArrayForEach(it, res)
    {
        struct res *r = &m->res[m->n];
        long long size;
        patient_err pe;
        if (!cJSON_IsObject(it))
            goto out;
        if ((pe = pt_path_check(it->string)) != PATIENT_OK) {
            err = pe;
            goto out;
        }
        r->path = it->string;
        if (patient_sri_decode(pt_json_str(it, "integrity"), r->hash) != PATIENT_OK ||
            pt_json_int(it, "size", &size) != 0 || size < 0 ||
            type_check(r->type = pt_json_str(it, "type")))
            goto out;
        r->size = (uint64_t)size;
        m->n++;
    }
    if (m->n)
        qsort(m->res, m->n, sizeof *m->res, cmp_res);
    for (i = 1; i < m->n; i++)
        if (strcmp(m->res[i - 1].path, m->res[i].path) == 0)
            goto out;
    if ((nk = cJSON_GetObjectItemCaseSensitive(m->root, "next_keys")) != NULL) {
        if (!cJSON_IsArray(nk))
            goto out;
        cnt = (size_t)cJSON_GetArraySize(nk);
        if (cnt > PATIENT_MANIFEST_MAX_NEXT_KEYS) {
            err = PATIENT_ERR_LIMIT;
            goto out;
        }
        if (cnt && (m->next_keys = calloc(cnt, sizeof *m->next_keys)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        cJSON_ArrayForEach(it, nk)
        {
            if (!cJSON_IsString(it) || strlen(it->valuestring) != PATIENT_PUBKEY_B64 - 1 ||
                strncmp(it->valuestring, "RW", 2) != 0 ||
                patient_pubkey_parse(it->valuestring, strlen(it->valuestring),
                                     &m->next_keys[m->n_next]))
                goto out;
            m->n_next++;
        }
    }
    if ((dl = cJSON_GetObjectItemCaseSensitive(m->root, "delegations")) != NULL &&
        (err = dels_parse(dl, &m->dels, &m->n_dels)))
        goto out;
    err = PATIENT_OK;
    *out = m;
    m = NULL;
out:
    patient_manifest_free(m);
    return err;
}

static patient_err
comment_for(const patient_manifest *m, char out[PATIENT_MANIFEST_COMMENT_MAX])
{
    char ex[21];
    int n;

    pt_time_format(m->expires, ex);
    n = snprintf(out, PATIENT_MANIFEST_COMMENT_MAX,
                 "patient-manifest origin=%s version=%llu expires=%s", m->origin,
                 (unsigned long long)m->version, ex);
    return n > 0 && n < (int)PATIENT_MANIFEST_COMMENT_MAX ? PATIENT_OK : PATIENT_ERR_TOO_LARGE;
}

patient_err
patient_manifest_sign(const patient_seckey *sk, const void *json, size_t len, char **sig)
{
    patient_manifest *m = NULL;
    char tc[PATIENT_MANIFEST_COMMENT_MAX];
    patient_err err;

    *sig = NULL;
    if ((err = patient_manifest_parse(json, len, &m)) || (err = comment_for(m, tc)))
        goto out;
    err = patient_minisig_sign(sk, json, len, "patient manifest signature", tc, sig);
out:
    patient_manifest_free(m);
    return err;
}

patient_err
patient_manifest_verify(const void *json, size_t len, const char *sig, size_t siglen,
                        const patient_pubkey *pk, patient_manifest **out)
{
    char *tc = NULL;
    char want[PATIENT_MANIFEST_COMMENT_MAX];
    patient_manifest *m = NULL;
    patient_err err;

    *out = NULL;
    if (json == NULL || sig == NULL || pk == NULL)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_MANIFEST_MAX_BYTES)
        return PATIENT_ERR_TOO_LARGE;
    if ((err = patient_minisig_verify(pk, json, len, sig, siglen, &tc, NULL)))
        goto out;
    if ((err = patient_manifest_parse(json, len, &m)) || (err = comment_for(m, want)))
        goto out;
    if (strcmp(tc, want) != 0) {
        err = PATIENT_ERR_PARSE;
        goto out;
    }
    *out = m;
    m = NULL;
out:
    free(tc);
    patient_manifest_free(m);
    return err;
}

/* ---- accessors ---- */

const char *
patient_manifest_origin(const patient_manifest *m)
{
    return m->origin;
}

uint64_t
patient_manifest_version(const patient_manifest *m)
{
    return m->version;
}

time_t
patient_manifest_issued(const patient_manifest *m)
{
    return m->issued;
}

time_t
patient_manifest_expires(const patient_manifest *m)
{
    return m->expires;
}

patient_err
patient_manifest_check_fresh(const patient_manifest *m, time_t now)
{
    if (now > m->expires || m->issued > now + PATIENT_CLOCK_SKEW)
        return PATIENT_ERR_EXPIRED;
    return PATIENT_OK;
}

static void
res_out(const struct res *r, patient_resource *out)
{
    out->path = r->path;
    memcpy(out->hash, r->hash, sizeof out->hash);
    out->size = r->size;
    out->type = r->type;
}

patient_err
patient_manifest_lookup(const patient_manifest *m, const char *path, patient_resource *out)
{
    pt_buf c = {0};
    struct res key, *hit;
    patient_err err;

    if (m == NULL || path == NULL || out == NULL)
        return PATIENT_ERR_ARG;
    if ((err = pt_path_canonical(path, &c)))
        return err;
    key.path = (const char *)c.data;
    hit = m->n ? bsearch(&key, m->res, m->n, sizeof *m->res, cmp_res) : NULL;
    pt_buf_free(&c);
    if (hit == NULL)
        return PATIENT_ERR_NOT_FOUND;
    res_out(hit, out);
    return PATIENT_OK;
}

size_t
patient_manifest_count(const patient_manifest *m)
{
    return m->n;
}

patient_err
patient_manifest_resource(const patient_manifest *m, size_t i, patient_resource *out)
{
    if (i >= m->n)
        return PATIENT_ERR_NOT_FOUND;
    res_out(&m->res[i], out);
    return PATIENT_OK;
}

size_t
patient_manifest_next_key_count(const patient_manifest *m)
{
    return m->n_next;
}

const patient_pubkey *
patient_manifest_next_key(const patient_manifest *m, size_t i)
{
    return i < m->n_next ? &m->next_keys[i] : NULL;
}

size_t
patient_manifest_delegation_count(const patient_manifest *m)
{
    return m->n_dels;
}

const patient_delegation *
patient_manifest_delegation(const patient_manifest *m, size_t i)
{
    return i < m->n_dels ? &m->dels[i] : NULL;
}

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
