/* Building a manifest: walk the site tree, hash every file on all cores,
 * write the JSON byte for byte as docs/format/manifest.md pins it. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sodium.h>

#include <patient/manifest.h>
#include "time_int.h"
#include "url_int.h"
#include "util.h"
#include "manifest_int.h"
#include "chunk.h"

/* ---- JSON output (Python json.dumps(indent=2, sort_keys=True,
 * ensure_ascii=False) byte for byte) ---- */

static patient_err
json_str(pt_buf *b, const char *s)
{
    return pt_buf_put_json_strn(b, s, SIZE_MAX, PT_JSON_ESC_SHORT);
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

#define APPEND_LIT(b, lit) pt_buf_append((b), (lit), sizeof(lit) - 1)
#define APPEND_STR(b, str) pt_buf_append((b), (str), strlen(str))

/* ---- building: walk ---- */

typedef struct {
    char *url;        /* encoded URL path */
    char *fspath;     /* file to hash; NULL for a folder alias */
    const char *type; /* static */
    uint64_t size;
    uint8_t hash[PATIENT_SHA256_BYTES];
    uint8_t root[PATIENT_SHA256_BYTES]; /* chunk root, same pass as hash */
    size_t alias; /* index of the index.html entry, or SIZE_MAX */
    /* The file's facts when the walk saw it (incremental publish). */
    uint64_t dev, ino;
    int64_t sec;
    long nsec;
    int hashed; /* hash, root and size read by the walk itself */
    int reused; /* hash, root and size came from the previous manifest */
    int fm;     /* facts are the ones the publish state recorded */
    int skip;   /* in a shard kept from the previous publish: not needed */
    uint32_t pfx;    /* first 32 bits of SHA-256(url): the shard bins */
    uint32_t leafno; /* sharded: the leaf's bin number */
    uint32_t ulen;   /* strlen(url) */
} bent;

typedef struct {
    dev_t dev;
    ino_t ino;
} dirid;

/* Memory that the build reads in shard order, which is random against
 * the URL order it was filled in: in 2 MiB pages (a hint the kernel may
 * refuse), or each entry costs a TLB miss, which a virtual machine pays
 * dearly (measured: a third of a full publish of 1,000,000 pages). */
#define BIG_PAGE ((size_t)2 << 20)

static void *
big_alloc(size_t n)
{
    void *p;

    n = (n + BIG_PAGE - 1) & ~(BIG_PAGE - 1);
    if (posix_memalign(&p, BIG_PAGE, n) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}

/* Strings that live as long as the build (URLs and paths of a million
 * files): carved from large blocks instead of a malloc each. */
typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    char data[];
} arena_blk;

static char *
arena_put(arena_blk **a, const char *s, size_t n)
{
    char *p;

    if (*a == NULL || (*a)->cap - (*a)->used < n + 1) {
        /* A small first block for small sites, then big pages. */
        size_t cap = *a == NULL ? (64u << 10) : BIG_PAGE - sizeof **a;
        arena_blk *b;
        if (cap < n + 1)
            cap = n + 1;
        b = *a == NULL ? malloc(sizeof *b + cap) : big_alloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->next = *a;
        b->used = 0;
        b->cap = cap;
        *a = b;
    }
    p = (*a)->data + (*a)->used;
    memcpy(p, s, n);
    p[n] = 0;
    (*a)->used += n + 1;
    return p;
}

static void
arena_free(arena_blk *a)
{
    while (a) {
        arena_blk *n = a->next;
        free(a);
        a = n;
    }
}

/* Files up to this size are read and hashed by the walk itself, in one
 * read into a buffer of the thread's; larger ones wait for hash_all,
 * largest first, so that big files spread over the cores. */
#define WALK_READ_MAX (256u * 1024)

/* What one thread of the walk owns. */
typedef struct {
    arena_blk *arena;
    pt_buf rel, full, url;
    uint8_t *buf; /* WALK_READ_MAX + 1 bytes, made on first use */
    pt_buf out;   /* a shard being written */
} wctx;

/* One name of the folder being read, and what the threads found. */
typedef struct {
    const char *name; /* in the folder's name block */
    unsigned char dtype;
    char kind;  /* 0 excluded, 'f' file, 'd' folder, 'l' symlink, 'e' error */
    char hashed;
    const char *url, *rel, *full; /* arena; url ends in "/" for a folder */
    const char *type;             /* a file's media type (static) */
    uint64_t dev, ino, size;
    int64_t sec;
    long nsec;
    uint8_t hash[PATIENT_SHA256_BYTES], root[PATIENT_SHA256_BYTES];
    uint32_t pfx;
    patient_err err;
    char *detail;
    /* A folder's names, read by the thread that found it (all threads
     * read the folders of a level at once); pre_ok when complete. */
    pt_buf pre;
    size_t pre_n;
    char pre_ok;
} ditem;

typedef struct walker walker;

/* The threads that stat (and for a full pass read) a folder's files. The
 * walk itself stays on the calling thread, one folder after another in
 * sorted order, so the entries, the errors and their order are the same
 * whatever the threads do; only the per-file system calls are shared. */
typedef struct wpool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned nthreads, started, busy, gen;
    int quit;
    pthread_t tid[MAX_THREADS];
    wctx ctx[MAX_THREADS];
    struct wthr {
        struct wpool *p;
        wctx *c;
    } thr[MAX_THREADS];
    /* the job in hand: fn(p, c, i) for every i below n */
    void (*fn)(struct wpool *p, wctx *c, size_t i);
    void *arg;
    walker *w;
    ditem *items;
    size_t n;
    int dfd;
    const char *fsdir, *rel, *url;
    atomic_size_t next;
} wpool;

struct walker {
    const patient_manifest_opts *o;
    char *root; /* realpath of site_dir */
    size_t root_len;
    bent *e;
    size_t n, cap;
    dirid stack[PATIENT_MANIFEST_MAX_PATH / 2 + 2];
    size_t depth;
    char **detail;
    int read_files; /* a full pass: the walk reads small files itself */
    int e_mapped;   /* e is the mapping new_entry made (else malloc'd) */
    uint64_t files_seen, files_read, bytes_seen, bytes_read;
    wpool pool;
};

static void
entries_free(walker *w)
{
    if (w->e_mapped)
        munmap(w->e, (size_t)PATIENT_MANIFEST_MAX_RESOURCES * sizeof *w->e);
    else
        free(w->e);
    w->e = NULL;
    w->e_mapped = 0;
}

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

/* Room for one more entry, zeroed. */
static bent *
new_entry(walker *w)
{
    bent *x;

    if (w->n >= PATIENT_MANIFEST_MAX_RESOURCES) {
        pt_detail_first(w->detail, "more than %u resources", PATIENT_MANIFEST_MAX_RESOURCES);
        return NULL;
    }
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 256;
        bent *p;
        if (nc * sizeof *p < 2 * BIG_PAGE) {
            p = realloc(w->e, nc * sizeof *p);
        } else {
            /* A big site: room for the most entries a manifest may list,
             * reserved once and filled as the walk goes (pages are only
             * made when touched), instead of copies that double. */
            nc = PATIENT_MANIFEST_MAX_RESOURCES;
            p = mmap(NULL, nc * sizeof *p, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (p == MAP_FAILED)
                return NULL;
#ifdef MADV_HUGEPAGE
            (void)madvise(p, nc * sizeof *p, MADV_HUGEPAGE);
#endif
            memcpy(p, w->e, w->n * sizeof *p);
            free(w->e);
            w->e_mapped = 1;
        }
        if (p == NULL)
            return NULL;
        w->e = p;
        w->cap = nc;
    }
    x = &w->e[w->n++];
    memset(x, 0, sizeof *x);
    x->alias = SIZE_MAX;
    return x;
}

static void
item_fail(ditem *it, patient_err err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
item_fail(ditem *it, patient_err err, const char *fmt, ...)
{
    va_list ap;

    it->kind = 'e';
    it->err = err;
    va_start(ap, fmt);
    pt_detail_vfirst(&it->detail, fmt, ap);
    va_end(ap);
}

static void
item_facts(ditem *it, const struct stat *st)
{
    it->dev = (uint64_t)st->st_dev;
    it->ino = (uint64_t)st->st_ino;
    it->size = (uint64_t)st->st_size;
    it->sec = (int64_t)st->st_mtim.tv_sec;
    it->nsec = st->st_mtim.tv_nsec;
}

static void
item_special(ditem *it, const struct stat *st)
{
    item_fail(it, PATIENT_ERR_UNSAFE_PATH, "%s: not a regular file or folder (%s)", it->full,
              S_ISFIFO(st->st_mode)   ? "FIFO"
              : S_ISSOCK(st->st_mode) ? "socket"
              : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "device"
                                                           : "special file");
}

/* Read a small regular file through fd: one read into the thread's
 * buffer. A read shorter than asked is the end of a regular file at that
 * moment (a file that grows after it is the same race as one growing
 * after a read of 0). A file that fills the buffer is left to hash_all. */
static void
item_read(wctx *c, ditem *it, int fd)
{
    ssize_t n;

    if (c->buf == NULL && (c->buf = malloc(WALK_READ_MAX + 1)) == NULL)
        return; /* hash_all reads it */
    do
        n = read(fd, c->buf, WALK_READ_MAX + 1);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        item_fail(it, PATIENT_ERR_IO, "%s: %s", it->full, patient_strerror(PATIENT_ERR_IO));
        return;
    }
    if ((size_t)n > WALK_READ_MAX)
        return;
    if (pt_chunk_root(c->buf, (size_t)n, it->hash, it->root) == PATIENT_OK) {
        it->size = (uint64_t)n;
        it->hashed = 1;
    }
}

/* A folder's URL ends in "/": that is also its sort key (cmp_item). */
static void
item_dir(wctx *c, ditem *it)
{
    const char *u;

    c->url.len = 0;
    if (pt_buf_append(&c->url, it->url, strlen(it->url)) != PATIENT_OK ||
        pt_buf_append(&c->url, "/", 1) != PATIENT_OK ||
        (u = arena_put(&c->arena, (char *)c->url.data, c->url.len)) == NULL) {
        it->kind = 'e';
        it->err = PATIENT_ERR_NOMEM;
        return;
    }
    it->url = u;
    it->kind = 'd';
}

/* Every name of an open folder but . and .., each as its d_type byte
 * and the NUL-terminated name, into one block; errno as readdir left it
 * on PATIENT_ERR_IO. */
static patient_err
read_names(DIR *d, pt_buf *names, size_t *n)
{
    struct dirent *de;
    patient_err err;

    *n = 0;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (*n >= PATIENT_MANIFEST_MAX_RESOURCES)
            return PATIENT_ERR_LIMIT;
        if ((err = pt_buf_append(names, &de->d_type, 1)) ||
            (err = pt_buf_append(names, de->d_name, strlen(de->d_name) + 1)))
            return err;
        (*n)++;
        errno = 0;
    }
    return errno ? PATIENT_ERR_IO : PATIENT_OK;
}

/* Read a folder's names ahead for its walk; any failure leaves that to
 * the walk, which reports it in order. */
static void
item_names(wpool *p, ditem *it)
{
    int fd = openat(p->dfd, it->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;

    if (fd < 0)
        return;
    if ((d = fdopendir(fd)) == NULL) {
        close(fd);
        return;
    }
    if (read_names(d, &it->pre, &it->pre_n) == PATIENT_OK)
        it->pre_ok = 1;
    else
        pt_buf_free(&it->pre);
    closedir(d);
}

/* Everything about one name that needs no other name: its paths, URL,
 * type and facts, and for a full pass a small file's hash. Runs on any
 * thread; failures are kept in the item and reported by the walk in
 * order. */
static void
item_do(wpool *p, wctx *c, ditem *it)
{
    walker *w = p->w;
    size_t nl = strlen(it->name);
    struct stat st;
    int fd = -1;
    patient_err err;

    c->rel.len = c->full.len = c->url.len = 0;
    if ((err = pt_buf_append(&c->rel, p->rel, strlen(p->rel))) ||
        (*p->rel && (err = pt_buf_append(&c->rel, "/", 1))) ||
        (err = pt_buf_append(&c->rel, it->name, nl + 1)) ||
        (err = pt_buf_append(&c->full, p->fsdir, strlen(p->fsdir))) ||
        (err = pt_buf_append(&c->full, "/", 1)) ||
        (err = pt_buf_append(&c->full, it->name, nl + 1)) ||
        (err = pt_buf_append(&c->url, p->url, strlen(p->url))) ||
        (err = pt_path_encode(&c->url, it->name, nl))) {
        it->kind = 'e';
        it->err = err;
        it->url = "";
        return;
    }
    if ((it->url = arena_put(&c->arena, (char *)c->url.data, c->url.len)) == NULL ||
        (it->full = arena_put(&c->arena, (char *)c->full.data, c->full.len - 1)) == NULL ||
        (it->rel = arena_put(&c->arena, (char *)c->rel.data, c->rel.len - 1)) == NULL) {
        it->kind = 'e';
        it->err = PATIENT_ERR_NOMEM;
        it->url = it->url ? it->url : "";
        return;
    }
    if (c->rel.len - 1 > PATIENT_MANIFEST_MAX_PATH) {
        item_fail(it, PATIENT_ERR_TOO_LARGE, "%s: path longer than %u bytes", it->rel,
                  PATIENT_MANIFEST_MAX_PATH);
        return;
    }
    if (excluded(w, it->rel)) {
        it->kind = 0;
        return;
    }
    /* A full pass opens what readdir says is a regular file straight
     * away (its fstat gives the facts a lstat would); anything else, and
     * any surprise, is looked at without following links. */
    if (w->read_files && it->dtype == DT_REG &&
        (fd = openat(p->dfd, it->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                     O_CLOEXEC)) < 0 && errno != ELOOP) {
        err = errno == ENOENT ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_IO;
        item_fail(it, err, "%s: %s", it->full, patient_strerror(err));
        return;
    }
    if (fd >= 0) {
        if (fstat(fd, &st) != 0) {
            item_fail(it, PATIENT_ERR_IO, "%s: %s", it->full, strerror(errno));
            close(fd);
            return;
        }
        if (!S_ISREG(st.st_mode)) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0 && fstatat(p->dfd, it->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        item_fail(it, errno == ENOENT ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_IO, "%s: %s",
                  it->full, strerror(errno));
        return;
    }
    item_facts(it, &st);
    if (S_ISREG(st.st_mode)) {
        it->kind = 'f';
        it->type = patient_mediatype(it->rel);
        if (c->url.len > PATIENT_MANIFEST_MAX_PATH)
            item_fail(it, PATIENT_ERR_TOO_LARGE, "%s: URL path longer than %u bytes", it->rel,
                      PATIENT_MANIFEST_MAX_PATH);
        else if (fd >= 0)
            item_read(c, it, fd);
        it->pfx = pt_shard_prefix(it->url);
    } else if (S_ISDIR(st.st_mode)) {
        item_dir(c, it);
        if (it->kind == 'd')
            item_names(p, it);
    } else if (S_ISLNK(st.st_mode)) {
        it->kind = 'l'; /* resolved by the walk: it needs the folder stack */
    } else {
        item_special(it, &st);
    }
    if (fd >= 0)
        close(fd);
}

static void
pool_run(wpool *p, wctx *c)
{
    size_t i;

    while ((i = atomic_fetch_add(&p->next, 1)) < p->n)
        p->fn(p, c, i);
}

static void *
pool_thread(void *arg)
{
    const struct wthr *th = arg;
    wpool *p = th->p;
    wctx *c = th->c;
    unsigned seen = 0;

    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->quit && p->gen == seen)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        pool_run(p, c);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void
pool_start(wpool *p, walker *w, unsigned threads)
{
    memset(p, 0, sizeof *p);
    atomic_init(&p->next, 0);
    p->w = w;
    p->nthreads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
}

static void
pool_stop(wpool *p)
{
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (unsigned t = 0; t < p->started; t++)
        pthread_join(p->tid[t], NULL);
    for (unsigned t = 0; t < p->nthreads && t < MAX_THREADS; t++) {
        pt_buf_free(&p->ctx[t].rel);
        pt_buf_free(&p->ctx[t].full);
        pt_buf_free(&p->ctx[t].url);
        pt_buf_free(&p->ctx[t].out);
        free(p->ctx[t].buf);
        arena_free(p->ctx[t].arena);
    }
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
}

/* fn(p, c, i) for i in [0, n) on all threads; the helpers are started
 * on the first job big enough to share (fewer threads is still right). */
static void
pool_for(wpool *p, size_t n, void (*fn)(wpool *, wctx *, size_t), void *arg)
{
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->next, 0);
    if (n >= 16 && p->nthreads > 1 && p->started == 0) {
        for (unsigned t = 1; t < p->nthreads; t++) {
            p->thr[t].p = p;
            p->thr[t].c = &p->ctx[t];
            if (pthread_create(&p->tid[p->started], NULL, pool_thread, &p->thr[t]) != 0)
                break;
            p->started++;
        }
    }
    if (n < 16 || p->started == 0) {
        pool_run(p, &p->ctx[0]);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->busy = p->started;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    pool_run(p, &p->ctx[0]);
    pthread_mutex_lock(&p->mu);
    while (p->busy)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* Item n (one past the names) touches the entries the walk is about to
 * fill from them: making and zeroing those pages is then shared with the
 * other threads instead of falling on the walk's. */
static void
item_job(wpool *p, wctx *c, size_t i)
{
    if (i < p->n - 1) {
        item_do(p, c, &p->items[i]);
    } else if (p->w->e_mapped) {
        walker *w = p->w;
        size_t upto = w->n + p->n; /* the names and an alias */
        volatile char *q = (volatile char *)(w->e + w->n);
        volatile char *end = (volatile char *)(w->e + (upto < w->cap ? upto : w->cap));
        for (; q < end; q += 4096)
            *q = 0; /* not yet written by anyone: the walk waits for the job */
    }
}

/* Every name of a folder, on all threads. */
static void
pool_batch(wpool *p, ditem *items, size_t n, int dfd, const char *fsdir, const char *rel,
           const char *url)
{
    p->items = items;
    p->dfd = dfd;
    p->fsdir = fsdir;
    p->rel = rel;
    p->url = url;
    pool_for(p, n + 1, item_job, NULL);
}

/* A symlink: where it points must be inside the site and not a loop;
 * then it is the file or folder it points at. On the walk's thread. */
static void
item_link(walker *w, ditem *it)
{
    struct stat st;
    char *real;

    if ((real = realpath(it->full, NULL)) == NULL) {
        item_fail(it, errno == ENOENT ? PATIENT_ERR_NOT_FOUND
                      : errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH : PATIENT_ERR_IO,
                  "%s: %s", it->full, errno == ENOENT ? "dangling symlink" : strerror(errno));
        return;
    }
    if (strcmp(real, w->root) == 0) {
        item_fail(it, PATIENT_ERR_UNSAFE_PATH, "%s: symlink loop (-> the site folder)", it->full);
    } else if (!(strncmp(real, w->root, w->root_len) == 0 &&
                 (real[w->root_len] == '/' || (w->root_len == 1 && real[1] != 0)))) {
        item_fail(it, PATIENT_ERR_UNSAFE_PATH, "%s: symlink leaves the site folder (-> %s)",
                  it->full, real);
    } else if (excluded(w, real + w->root_len + (w->root_len > 1))) {
        /* A link to something never listed (the manifest itself) is skipped. */
        it->kind = 0;
    } else if (stat(real, &st) != 0) {
        item_fail(it, PATIENT_ERR_IO, "%s: %s", real, strerror(errno));
    } else if (S_ISREG(st.st_mode)) {
        wctx *c = &w->pool.ctx[0];
        item_facts(it, &st);
        if (strlen(it->url) > PATIENT_MANIFEST_MAX_PATH)
            item_fail(it, PATIENT_ERR_TOO_LARGE, "%s: URL path longer than %u bytes", it->rel,
                      PATIENT_MANIFEST_MAX_PATH);
        else if ((it->full = arena_put(&c->arena, real, strlen(real))) == NULL)
            item_fail(it, PATIENT_ERR_NOMEM, "out of memory");
        else
            it->kind = 'f';
        it->type = patient_mediatype(it->rel);
        it->pfx = pt_shard_prefix(it->url);
    } else if (S_ISDIR(st.st_mode)) {
        item_facts(it, &st);
        item_dir(&w->pool.ctx[0], it);
    } else {
        item_special(it, &st);
    }
    free(real);
}

/* Children in URL order: a folder's URLs all start with its name and
 * "/", so ordering the names so (a file by its name, a folder by its
 * name and "/") and walking depth first gives the entries sorted. */
static int
cmp_item(const void *a, const void *b)
{
    return strcmp(((const ditem *)a)->url, ((const ditem *)b)->url);
}

static patient_err walk(walker *w, const char *fsdir, const char *rel, const char *url,
                        ditem *pre);

/* The items of a folder in order: entries, folders walked in turn. */
static patient_err
walk_items(walker *w, ditem *it, size_t n, const char *rel, const char *url)
{
    size_t alias = SIZE_MAX;
    patient_err err;

    for (size_t i = 0; i < n; i++) {
        if (it[i].kind == 'f' && strcmp(it[i].name, "index.html") == 0) {
            /* The folder's own URL first: it sorts before its children. */
            wctx *c = &w->pool.ctx[0];
            bent *x;
            if (strlen(url) > PATIENT_MANIFEST_MAX_PATH) {
                pt_detail_first(w->detail, "%s: URL path longer than %u bytes", rel,
                                PATIENT_MANIFEST_MAX_PATH);
                return PATIENT_ERR_TOO_LARGE;
            }
            if ((x = new_entry(w)) == NULL)
                return w->n >= PATIENT_MANIFEST_MAX_RESOURCES ? PATIENT_ERR_LIMIT
                                                              : PATIENT_ERR_NOMEM;
            x->ulen = (uint32_t)strlen(url);
            if ((x->url = arena_put(&c->arena, url, x->ulen)) == NULL)
                return PATIENT_ERR_NOMEM;
            x->type = patient_mediatype("index.html");
            x->pfx = pt_shard_prefix(x->url);
            alias = w->n - 1;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        ditem *t = &it[i];
        if (t->kind == 'e') {
            if (t->detail)
                pt_detail_first(w->detail, "%s", t->detail);
            return t->err;
        }
        if (t->kind == 'f') {
            bent *x = new_entry(w);
            if (x == NULL)
                return w->n >= PATIENT_MANIFEST_MAX_RESOURCES ? PATIENT_ERR_LIMIT
                                                              : PATIENT_ERR_NOMEM;
            x->url = (char *)t->url;
            x->ulen = (uint32_t)strlen(t->url);
            x->fspath = (char *)t->full;
            x->type = t->type;
            x->size = t->size;
            x->dev = t->dev;
            x->ino = t->ino;
            x->sec = t->sec;
            x->nsec = t->nsec;
            x->pfx = t->pfx;
            if (t->hashed) {
                x->hashed = 1;
                memcpy(x->hash, t->hash, sizeof x->hash);
                memcpy(x->root, t->root, sizeof x->root);
            }
            if (alias != SIZE_MAX && strcmp(t->name, "index.html") == 0)
                w->e[alias].alias = w->n - 1;
        } else if (t->kind == 'd') {
            for (size_t k = 0; k < w->depth; k++) {
                if (w->stack[k].dev == (dev_t)t->dev && w->stack[k].ino == (ino_t)t->ino) {
                    pt_detail_first(w->detail, "%s: symlink loop", t->full);
                    return PATIENT_ERR_UNSAFE_PATH;
                }
            }
            if (w->depth >= sizeof w->stack / sizeof w->stack[0]) {
                pt_detail_first(w->detail, "%s: folders nested too deeply", t->full);
                return PATIENT_ERR_TOO_LARGE;
            }
            w->stack[w->depth].dev = (dev_t)t->dev;
            w->stack[w->depth].ino = (ino_t)t->ino;
            w->depth++;
            err = walk(w, t->full, t->rel, t->url, t);
            w->depth--;
            if (err)
                return err;
        }
    }
    return PATIENT_OK;
}

/* One folder: read every name (or take those a thread read already,
 * pre), look at all names on all threads, then take them in order. url
 * is the folder's, ending in "/". The folder stays open (its descriptor
 * for the threads' *at calls) only until they are done with it, so open
 * folders never pile up on the way down. */
static patient_err
walk(walker *w, const char *fsdir, const char *rel, const char *url, ditem *pre)
{
    DIR *d = NULL;
    int dfd;
    pt_buf names = {0};
    ditem *it = NULL;
    size_t n = 0, m = 0, live = 0;
    patient_err err = PATIENT_OK;

    if (pre && pre->pre_ok) {
        names = pre->pre;
        n = pre->pre_n;
        memset(&pre->pre, 0, sizeof pre->pre);
        pre->pre_ok = 0;
        dfd = open(fsdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        d = opendir(fsdir);
        dfd = d ? dirfd(d) : -1;
    }
    if (dfd < 0) {
        pt_detail_first(w->detail, "%s: %s", fsdir, strerror(errno));
        pt_buf_free(&names);
        return PATIENT_ERR_IO;
    }
    if (d && (err = read_names(d, &names, &n))) {
        if (err == PATIENT_ERR_LIMIT)
            pt_detail_first(w->detail, "%s: more than %u entries", fsdir,
                            PATIENT_MANIFEST_MAX_RESOURCES);
        else if (err == PATIENT_ERR_IO)
            pt_detail_first(w->detail, "%s: %s", fsdir, strerror(errno));
    }
    if (err == PATIENT_OK && n && (it = calloc(n, sizeof *it)) == NULL)
        err = PATIENT_ERR_NOMEM;
    if (err) {
        if (d)
            closedir(d);
        else
            close(dfd);
        goto out;
    }
    for (size_t i = 0, off = 0; i < n; i++) {
        it[i].dtype = names.data[off];
        it[i].name = (char *)names.data + off + 1;
        off += 1 + strlen(it[i].name) + 1;
    }
    pool_batch(&w->pool, it, n, dfd, fsdir, rel, url);
    if (d)
        closedir(d);
    else
        close(dfd);
    live = n;
    for (size_t i = 0; i < n; i++) {
        ditem *t = &it[i];
        if (t->kind == 'l')
            item_link(w, t);
        if (t->kind == 'f') {
            w->files_seen++;
            w->bytes_seen += t->size;
            if (t->hashed) {
                w->files_read++;
                w->bytes_read += t->size;
            }
        }
        if (t->kind)
            it[m++] = *t; /* excluded names have no detail */
    }
    live = m;
    /* Excluded names are gone; the rest in URL order (see cmp_item). */
    qsort(it, m, sizeof *it, cmp_item);
    if (w->read_files && w->o->progress &&
        w->o->progress(w->o->progress_arg, w->files_read, w->files_seen, w->bytes_read,
                       w->bytes_seen) != 0) {
        err = PATIENT_ERR_INTERRUPTED;
        goto out;
    }
    err = walk_items(w, it, m, rel, url);
out:
    for (size_t i = 0; i < live; i++) {
        free(it[i].detail);
        pt_buf_free(&it[i].pre);
    }
    free(it);
    pt_buf_free(&names);
    return err;
}

/* ---- building: hash on all cores ---- */

/* Threads asked for, 0 = online CPUs, at most MAX_THREADS. */
static unsigned
walk_threads(unsigned threads)
{
    if (threads == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? (unsigned)c : 1;
    }
    return threads > MAX_THREADS ? MAX_THREADS : threads;
}

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

        err = pt_chunk_file(q->e[i].fspath, q->e[i].hash, q->e[i].root, &size);

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
cmp_idx_url(const void *a, const void *b, void *base)
{
    const bent *e = base;
    return strcmp(e[*(const size_t *)a].url, e[*(const size_t *)b].url);
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
        if (w->e[i].fspath && !w->e[i].hashed && !w->e[i].reused && !w->e[i].skip) {
            q.order[q.n++] = i;
            q.bytes_total += w->e[i].size;
        }
    }
    /* Largest first: the threads finish together. */
    qsort_r(q.order, q.n, sizeof *q.order, cmp_size_desc, w->e);
    threads = walk_threads(threads);
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
            pt_detail_first(w->detail, "%s: %s", w->e[q.err_idx].fspath, patient_strerror(err));
    }
    free(q.order);
    return err;
}

/* "resources" (e[ord[i]], or e[i] when ord is NULL), through its ",\n". */
static patient_err
emit_res(pt_buf *b, const bent *e, const size_t *ord, size_t n)
{
    char sri[PATIENT_SRI_BYTES], root[PATIENT_SRI_BYTES];
    patient_err err;

    if ((err = pt_buf_appendf(b, "  \"resources\": %s", n ? "{\n" : "{}")))
        return err;
    for (size_t k = 0; k < n; k++) {
        const bent *x = &e[ord ? ord[k] : k];
        char num[21], *q;
        /* A leaf's entries lie anywhere in e: ask for them ahead, or
         * each waits for memory. */
        if (ord && k + 8 < n)
            __builtin_prefetch(&e[ord[k + 8]]);
        if (ord && k + 4 < n)
            __builtin_prefetch(e[ord[k + 4]].url);
        q = pt_put_u64(num, x->size);
        patient_sri_encode(x->hash, sri);
        patient_sri_encode(x->root, root);
        /* Appends, not printf: this runs once per resource. */
        if ((err = APPEND_LIT(b, "    \"")) || (err = pt_buf_append(b, x->url, x->ulen)) ||
            (err = APPEND_LIT(b, "\": {\n      \"chunk_root\": \"")) ||
            (err = APPEND_STR(b, root)) ||
            (err = APPEND_LIT(b, "\",\n      \"integrity\": \"")) ||
            (err = APPEND_STR(b, sri)) || (err = APPEND_LIT(b, "\",\n      \"size\": ")) ||
            (err = pt_buf_append(b, num, (size_t)(q - num))) ||
            (err = APPEND_LIT(b, ",\n      \"type\": \"")) || (err = APPEND_STR(b, x->type)) ||
            (err = k + 1 < n ? APPEND_LIT(b, "\"\n    },\n") : APPEND_LIT(b, "\"\n    }\n")))
            return err;
        if (b->len > PATIENT_MANIFEST_MAX_BYTES)
            return PATIENT_ERR_TOO_LARGE;
    }
    return pt_buf_appendf(b, "%s,\n", n ? "  }" : "");
}

/* "shards": the child names, through its ",\n". */
static patient_err
emit_names(pt_buf *b, const char *const *names, size_t n)
{
    patient_err err;

    if ((err = APPEND_LIT(b, "  \"shards\": ")) || (err = json_strlist(b, names, n, "  ")))
        return err;
    return APPEND_LIT(b, ",\n");
}

static patient_err
emit(pt_buf *b, const patient_manifest_opts *o, const bent *e, size_t n,
     const patient_delegation *dels, size_t n_dels, const pt_shard_out *sh, char **top)
{
    char is[PATIENT_TIME_BYTES], ex[PATIENT_TIME_BYTES];
    patient_err err;

    if (sh && sh->nlevels == 0)
        sh = NULL;
    pt_time_format(o->issued, is);
    pt_time_format(o->expires, ex);
    if ((err = pt_buf_append(b, "{\n", 2)))
        return err;
    if (o->delegations_json && (err = dels_emit(b, dels, n_dels)))
        return err;
    if ((err = pt_buf_appendf(b, "  \"expires\": \"%s\",\n  \"issued\": \"%s\",\n", ex, is)))
        return err;
    if (o->n_next_keys) {
        char keys[PATIENT_MANIFEST_MAX_NEXT_KEYS][PATIENT_PUBKEY_B64];
        const char *kv[PATIENT_MANIFEST_MAX_NEXT_KEYS];
        for (size_t i = 0; i < o->n_next_keys; i++) {
            patient_pubkey_encode(&o->next_keys[i], keys[i]);
            kv[i] = keys[i];
        }
        if ((err = APPEND_LIT(b, "  \"next_keys\": ")) ||
            (err = json_strlist(b, kv, o->n_next_keys, "  ")) || (err = APPEND_LIT(b, ",\n")))
            return err;
    }
    if ((err = pt_buf_appendf(b, "  \"origin\": \"%s\",\n  \"patient\": %d,\n", o->origin,
                              PATIENT_MANIFEST_FORMAT)))
        return err;
    if (sh) {
        if ((err = pt_buf_append(b, "  \"shard_bits\": [\n", 18)))
            return err;
        for (unsigned l = 0; l < sh->nlevels; l++)
            if ((err = pt_buf_appendf(b, "    %u%s\n", sh->bits[l], l + 1 < sh->nlevels ? "," : "")))
                return err;
        if ((err = pt_buf_append(b, "  ],\n", 5)) ||
            (err = emit_names(b, (const char *const *)top, (size_t)1 << sh->bits[0])))
            return err;
    } else if ((err = emit_res(b, e, NULL, n))) {
        return err;
    }
    if (o->n_tls_keys) {
        char pins[PATIENT_MAX_TLS_PINS][PATIENT_SRI_BYTES];
        const char *pv[PATIENT_MAX_TLS_PINS];
        for (size_t i = 0; i < o->n_tls_keys; i++) {
            patient_sri_encode(o->tls_keys[i], pins[i]);
            pv[i] = pins[i];
        }
        if ((err = APPEND_LIT(b, "  \"tls_keys\": ")) ||
            (err = json_strlist(b, pv, o->n_tls_keys, "  ")) || (err = APPEND_LIT(b, ",\n")))
            return err;
    }
    if ((err = pt_buf_appendf(b, "  \"type\": \"manifest\",\n  \"version\": %llu\n}\n",
                              (unsigned long long)o->version)))
        return err;
    return b->len > PATIENT_MANIFEST_MAX_BYTES ? PATIENT_ERR_TOO_LARGE : PATIENT_OK;
}

patient_err
check_opts(const patient_manifest_opts *o, char **detail)
{
    if (o == NULL)
        return PATIENT_ERR_ARG;
    if (pt_origin_check(o->origin) != PATIENT_OK) {
        pt_detail_first(detail, "%s: not an origin (scheme://host[:port], lower case, no path)",
                        o->origin ? o->origin : "(null)");
        return PATIENT_ERR_ARG;
    }
    if (o->expires <= o->issued) {
        pt_detail_first(detail, "expiry is not after the issue time");
        return PATIENT_ERR_ARG;
    }
    if (o->n_next_keys > PATIENT_MANIFEST_MAX_NEXT_KEYS ||
        (o->n_next_keys && o->next_keys == NULL)) {
        pt_detail_first(detail, "at most %u next keys", PATIENT_MANIFEST_MAX_NEXT_KEYS);
        return PATIENT_ERR_LIMIT;
    }
    if (o->n_tls_keys > PATIENT_MAX_TLS_PINS || (o->n_tls_keys && o->tls_keys == NULL)) {
        pt_detail_first(detail, "at most %u TLS keys", PATIENT_MAX_TLS_PINS);
        return PATIENT_ERR_LIMIT;
    }
    return PATIENT_OK;
}

/* Put the entries in URL order (the manifest's, the state's and each
 * shard's), keeping every alias pointing at its index.html. */
static patient_err
sort_entries(walker *w)
{
    size_t *ord, *inv;
    bent *ne;
    size_t run = 1;

    /* The walk gives them in order (cmp_item): one look confirms it. */
    while (run < w->n && strcmp(w->e[run - 1].url, w->e[run].url) < 0)
        run++;
    if (run >= w->n)
        return PATIENT_OK;
    ord = malloc((w->n ? w->n : 1) * sizeof *ord);
    inv = malloc((w->n ? w->n : 1) * sizeof *inv);
    ne = malloc((w->n ? w->n : 1) * sizeof *ne);
    if (ord == NULL || inv == NULL || ne == NULL) {
        free(ord);
        free(inv);
        free(ne);
        return PATIENT_ERR_NOMEM;
    }
    for (size_t i = 0; i < w->n; i++)
        ord[i] = i;
    qsort_r(ord, w->n, sizeof *ord, cmp_idx_url, w->e);
    for (size_t k = 0; k < w->n; k++) {
        ne[k] = w->e[ord[k]];
        inv[ord[k]] = k;
    }
    for (size_t k = 0; k < w->n; k++)
        if (ne[k].alias != SIZE_MAX)
            ne[k].alias = inv[ne[k].alias];
    entries_free(w);
    w->e = ne;
    w->cap = w->n ? w->n : 1;
    free(ord);
    free(inv);
    return PATIENT_OK;
}

static patient_err
state_line(pt_buf *b, const bent *x)
{
    char line[5 * 21 + 8], *p = line;
    size_t ul = x->ulen;
    patient_err err;

    p = pt_put_u64(p, x->dev);
    *p++ = ' ';
    p = pt_put_u64(p, x->ino);
    *p++ = ' ';
    p = pt_put_u64(p, x->size);
    *p++ = ' ';
    if (x->sec < 0) {
        *p++ = '-';
        p = pt_put_u64(p, (uint64_t)0 - (uint64_t)x->sec);
    } else {
        p = pt_put_u64(p, (uint64_t)x->sec);
    }
    *p++ = ' ';
    p = pt_put_u64(p, (uint64_t)x->nsec);
    *p++ = ' ';
    if ((err = pt_buf_append(b, line, (size_t)(p - line))) || (err = pt_buf_append(b, x->url, ul)))
        return err;
    return pt_buf_append(b, "\n", 1);
}

/* Take the previous hash of x from p (the previous entry of its URL,
 * NULL if none) when it has the same size and a chunk root (older
 * manifests have none: hashed again). */
static void
reuse_one(bent *x, const struct res *p)
{
    if (p == NULL || !p->has_root || p->size != x->size)
        return;
    memcpy(x->hash, p->hash, PATIENT_SHA256_BYTES);
    memcpy(x->root, p->root, PATIENT_SHA256_BYTES);
    x->reused = 1;
}

/* Mark every file whose device, inode, size and mtime are what the state
 * recorded (fm), and take its previous hash from a manifest in one file.
 * The entries, the state's files and the manifest's resources are all in
 * URL order: one merge, no search per file. A sharded manifest's hashes
 * are in its leaves: reuse_leaves, once the leaves are known. */
static void
reuse_hashes(walker *w, const pt_reuse *r)
{
    size_t j = 0, k = 0;

    for (size_t i = 0; i < w->n; i++) {
        bent *x = &w->e[i];
        const pt_prev_file *f;

        if (x->fspath == NULL)
            continue;
        while (j < r->n && strcmp(r->f[j].url, x->url) < 0)
            j++;
        f = j < r->n && strcmp(r->f[j].url, x->url) == 0 ? &r->f[j] : NULL;
        if (f == NULL || f->dev != x->dev || f->ino != x->ino || f->size != x->size ||
            f->sec != x->sec || f->nsec != x->nsec)
            continue;
        x->fm = 1;
        while (k < r->m->n && strcmp(r->m->res[k].path, x->url) < 0)
            k++;
        reuse_one(x, k < r->m->n && strcmp(r->m->res[k].path, x->url) == 0 ? &r->m->res[k]
                                                                            : NULL);
    }
}

/* ---- shards (docs/format/manifest.md, "Shards") ---- */

typedef struct {
    unsigned nl, bits[PT_SHARD_MAX_LEVELS], total_bits;
    uint32_t nleaves;
    size_t *ord;              /* entries by (leaf, url) */
    size_t *start;            /* leaf L holds ord[start[L] .. start[L+1]) */
    uint8_t (*digest)[32];    /* per leaf */
    char *clean;              /* per leaf: kept from the previous publish */
    uint64_t *kept_bytes;     /* per kept leaf: its file's size */
} splan;

static void
splan_free(splan *p)
{
    free(p->ord);
    free(p->start);
    free(p->digest);
    free(p->clean);
    free(p->kept_bytes);
}

static const pt_prev_node *
prev_node(const pt_reuse *r, unsigned level, uint32_t index)
{
    pt_prev_node key;

    if (r == NULL || r->n_nodes == 0)
        return NULL;
    key.level = level;
    key.index = index;
    return bsearch(&key, r->nodes, r->n_nodes, sizeof key, pt_prev_node_cmp);
}

/* Whether the shard file of that name is there, and its size (for the
 * statistics): one stat serves both. */
static int
shard_exists(const char *dir, const char *name, uint64_t *size)
{
    char p[PATH_MAX];
    struct stat st;
    int n = snprintf(p, sizeof p, "%s/%s.json", dir, name);

    if (n <= 0 || (size_t)n >= sizeof p || stat(p, &st) != 0)
        return 0;
    *size = (uint64_t)st.st_size;
    return 1;
}

/* Everything a shard's bytes depend on but the version: the layout, the
 * origin, and the children's names or the entries with the facts of the
 * files they were read from. Equal digests and recorded facts mean the
 * previous shard's bytes are still right. */
static void
digest_begin(crypto_generichash_state *st, const char *kind, const patient_manifest_opts *o,
             const splan *p)
{
    crypto_generichash_init(st, NULL, 0, 32);
    crypto_generichash_update(st, (const uint8_t *)kind, strlen(kind) + 1);
    crypto_generichash_update(st, (const uint8_t *)o->origin, strlen(o->origin) + 1);
    for (unsigned l = 0; l < p->nl; l++) {
        uint8_t v = (uint8_t)p->bits[l];
        crypto_generichash_update(st, &v, 1);
    }
}

static void
digest_facts(crypto_generichash_state *st, const bent *x)
{
    uint64_t f[5] = {x->dev, x->ino, x->size, (uint64_t)x->sec, (uint64_t)x->nsec};
    crypto_generichash_update(st, (const uint8_t *)x->url, x->ulen + 1);
    crypto_generichash_update(st, (const uint8_t *)f, sizeof f);
}

typedef struct {
    walker *w;
    const patient_manifest_opts *o;
    const pt_reuse *r;
    const char *dir;
    splan *p;
} leaf_job;

/* Leaf L's digest, and whether the previous publish wrote it already.
 * Leaves are independent: on all threads. */
static void
leaf_digest(wpool *pool, wctx *c, size_t i)
{
    const leaf_job *j = pool->arg;
    const bent *e = j->w->e;
    splan *p = j->p;
    uint32_t L = (uint32_t)i;
    crypto_generichash_state st;
    const pt_prev_node *pn;
    int facts = 1;

    (void)c;
    digest_begin(&st, "patient-shard-leaf", j->o, p);
    for (size_t k = p->start[L]; k < p->start[L + 1]; k++) {
        const bent *x = &e[p->ord[k]];
        const bent *f = x->alias != SIZE_MAX ? &e[x->alias] : x;
        if (k + 8 < p->start[L + 1]) /* as in emit_res */
            __builtin_prefetch(&e[p->ord[k + 8]]);
        if (k + 4 < p->start[L + 1])
            __builtin_prefetch(e[p->ord[k + 4]].url);
        if (x->alias != SIZE_MAX)
            crypto_generichash_update(&st, (const uint8_t *)x->url, x->ulen + 1);
        digest_facts(&st, f);
        facts &= f->fm;
    }
    crypto_generichash_final(&st, p->digest[L], 32);
    pn = prev_node(j->r, p->nl, L);
    p->clean[L] = facts && pn && memcmp(pn->digest, p->digest[L], 32) == 0 &&
                  shard_exists(j->dir, pn->name, &p->kept_bytes[L]);
}

/* Bins, the order within each leaf, and which leaves the previous
 * publish already wrote: those whose files all have the recorded facts
 * and whose digest is the recorded one, with the file still there. Files
 * of those leaves are not read at all. */
static patient_err
plan_shards(walker *w, const patient_manifest_opts *o, const pt_reuse *r, const char *dir,
            splan *p)
{
    memset(p, 0, sizeof *p);
    if ((p->nl = pt_shard_layout(w->n, p->bits)) == 0)
        return PATIENT_OK; /* one file */
    for (unsigned l = 0; l < p->nl; l++)
        p->total_bits += p->bits[l];
    p->nleaves = (uint32_t)1 << p->total_bits;
    if ((p->ord = malloc((w->n ? w->n : 1) * sizeof *p->ord)) == NULL ||
        (p->start = calloc((size_t)p->nleaves + 1, sizeof *p->start)) == NULL ||
        (p->digest = calloc(p->nleaves, sizeof *p->digest)) == NULL ||
        (p->clean = calloc(p->nleaves, 1)) == NULL ||
        (p->kept_bytes = calloc(p->nleaves, sizeof *p->kept_bytes)) == NULL)
        return PATIENT_ERR_NOMEM;
    /* The leaf's number is the first total_bits bits of the path's
     * SHA-256 (pt_shard_bins), which the walk already took. */
    for (size_t i = 0; i < w->n; i++) {
        uint32_t leaf = (uint32_t)(w->e[i].pfx >> (32 - p->total_bits));
        w->e[i].leafno = leaf;
        p->start[leaf + 1]++;
    }
    for (uint32_t L = 0; L < p->nleaves; L++)
        p->start[L + 1] += p->start[L];
    /* Entries are in URL order already: placing them by leaf keeps that
     * order within each leaf, without comparing a single path. */
    {
        size_t *fill = malloc((size_t)p->nleaves * sizeof *fill);
        if (fill == NULL)
            return PATIENT_ERR_NOMEM;
        memcpy(fill, p->start, (size_t)p->nleaves * sizeof *fill);
        for (size_t i = 0; i < w->n; i++)
            p->ord[fill[w->e[i].leafno]++] = i;
        free(fill);
    }
    {
        leaf_job j = {w, o, r, dir, p};
        pool_for(&w->pool, p->nleaves, leaf_digest, &j);
    }
    /* Files only in kept leaves are not needed; an alias in a leaf that
     * is written again needs its index.html's hash wherever that lies. */
    for (size_t i = 0; i < w->n; i++)
        if (w->e[i].fspath && p->clean[w->e[i].leafno])
            w->e[i].skip = 1;
    for (size_t i = 0; i < w->n; i++)
        if (w->e[i].alias != SIZE_MAX && !p->clean[w->e[i].leafno])
            w->e[w->e[i].alias].skip = 0;
    return PATIENT_OK;
}

/* A sharded previous manifest keeps its hashes in its leaves: for a leaf
 * written anew (some file in it changed), the unchanged files take theirs
 * from the previous leaf of the same bin, the file the state names, when
 * its bytes still hash to that name. Same layout only (another layout
 * bins differently: everything is hashed). */
static void
reuse_leaves(walker *w, const pt_reuse *r, const char *dir, const splan *p)
{
    if (r->m->nlevels != p->nl || memcmp(r->m->bits, p->bits, p->nl * sizeof *p->bits) != 0)
        return;
    for (uint32_t L = 0; L < p->nleaves; L++) {
        const pt_prev_node *pn;
        patient_manifest *sh = NULL;
        uint8_t *t = NULL, h[PATIENT_SHA256_BYTES];
        char path[PATH_MAX], hex[65];
        size_t tl = 0, k, j = 0;
        int want = 0, ok;

        if (p->clean[L])
            continue;
        for (k = p->start[L]; k < p->start[L + 1] && !want; k++) {
            const bent *x = &w->e[p->ord[k]];
            want = x->fspath && x->fm && !x->reused;
        }
        if (!want || (pn = prev_node(r, p->nl, L)) == NULL)
            continue;
        snprintf(path, sizeof path, "%s/%s.json", dir, pn->name);
        ok = pt_read_file(path, PATIENT_MANIFEST_SHARD_MAX_BYTES, &t, &tl) == PATIENT_OK &&
             patient_sha256(t, tl, h) == PATIENT_OK;
        if (ok) {
            pt_hex(h, sizeof h, hex);
            ok = strcmp(hex, pn->name) == 0 && pt_shard_parse(t, tl, &sh) == PATIENT_OK &&
                 sh->leaf;
        }
        if (!ok) {
            free(t);
            patient_manifest_free(sh);
            continue;
        }
        /* Both in URL order (a leaf's entries keep the walk's). */
        for (k = p->start[L]; k < p->start[L + 1]; k++) {
            bent *x = &w->e[p->ord[k]];
            if (x->fspath == NULL || !x->fm || x->reused)
                continue;
            while (j < sh->n && strcmp(sh->res[j].path, x->url) < 0)
                j++;
            if (j < sh->n && strcmp(sh->res[j].path, x->url) == 0)
                reuse_one(x, &sh->res[j]);
        }
        free(t);
        patient_manifest_free(sh);
    }
}

/* "i/j/k": the bin of node index within level (1-based). */
static void
bin_name(const splan *p, unsigned level, uint32_t index, char out[40])
{
    unsigned shift = 0;
    size_t n = 0;

    for (unsigned l = 0; l < level; l++)
        shift += p->bits[l];
    for (unsigned l = 0; l < level; l++) {
        shift -= p->bits[l];
        n += (size_t)snprintf(out + n, 40 - n, "%s%u", l ? "/" : "",
                              (unsigned)((index >> shift) & ((1u << p->bits[l]) - 1)));
    }
    out[n] = 0;
}

/* Name a finished shard by its SHA-256 and write it unless a file of that
 * name (so, of those bytes) is there already (*written says which).
 * Thread-safe. */
static patient_err
put_shard(const char *dir, const pt_buf *b, char name[65], char *written, char **detail)
{
    uint8_t h[PATIENT_SHA256_BYTES];
    char path[PATH_MAX];
    patient_err err;
    int n;

    if (b->len > PATIENT_MANIFEST_SHARD_MAX_BYTES) {
        pt_detail_first(detail, "a shard would be larger than %u bytes",
                        PATIENT_MANIFEST_SHARD_MAX_BYTES);
        return PATIENT_ERR_TOO_LARGE;
    }
    if ((err = patient_sha256(b->data, b->len, h)))
        return err;
    pt_hex(h, sizeof h, name);
    n = snprintf(path, sizeof path, "%s/%s.json", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return PATIENT_ERR_ARG;
    *written = 0;
    if (access(path, F_OK) == 0)
        return PATIENT_OK;
    if ((err = pt_write_atomic(path, b->data, b->len, 0644, PT_WRITE_NOSYNC))) {
        pt_detail_first(detail, "%s: %s", path, strerror(errno));
        return err;
    }
    *written = 1;
    return PATIENT_OK;
}

static patient_err
shard_head(pt_buf *b, const char *bin, const patient_manifest_opts *o)
{
    return pt_buf_appendf(b, "{\n  \"bin\": \"%s\",\n  \"origin\": \"%s\",\n  \"patient\": %d,\n",
                          bin, o->origin, PATIENT_MANIFEST_FORMAT);
}

static patient_err
shard_tail(pt_buf *b, const patient_manifest_opts *o)
{
    return pt_buf_appendf(b, "  \"type\": \"manifest-shard\",\n  \"version\": %llu\n}\n",
                          (unsigned long long)o->version);
}

/* A shard of the tree as written (or kept). */
typedef struct {
    char name[65];
    uint64_t size;
    char kept, written;
} shard_res;

typedef struct {
    const bent *e;
    const patient_manifest_opts *o;
    const pt_reuse *r;
    const splan *p;
    const char *dir;
    shard_res *res;
    pthread_mutex_t mu;
    patient_err err; /* of the lowest failing leaf, so the report does not */
    uint32_t err_leaf; /* depend on which thread got there first */
    char *detail;
} leaves_job;

/* Leaf k: kept, or its JSON made, named and written. Leaves are
 * independent (most of a full publish's output): on all threads. */
static void
leaf_write(wpool *pool, wctx *c, size_t i)
{
    leaves_job *j = pool->arg;
    const splan *p = j->p;
    uint32_t k = (uint32_t)i;
    shard_res *s = &j->res[k];
    char bin[40], *detail = NULL;
    patient_err err;

    if (p->clean[k]) {
        memcpy(s->name, prev_node(j->r, p->nl, k)->name, 65);
        s->size = p->kept_bytes[k];
        s->kept = 1;
        return;
    }
    c->out.len = 0;
    bin_name(p, p->nl, k, bin);
    if ((err = shard_head(&c->out, bin, j->o)) ||
        (err = emit_res(&c->out, j->e, p->ord + p->start[k], p->start[k + 1] - p->start[k])) ||
        (err = shard_tail(&c->out, j->o)) ||
        (err = put_shard(j->dir, &c->out, s->name, &s->written, &detail))) {
        pthread_mutex_lock(&j->mu);
        if (j->err == PATIENT_OK || k < j->err_leaf) {
            j->err = err;
            j->err_leaf = k;
            free(j->detail);
            j->detail = detail;
            detail = NULL;
        }
        pthread_mutex_unlock(&j->mu);
        free(detail);
        return;
    }
    s->size = c->out.len;
}

/* Write the leaves that changed, then each inner level from the bottom:
 * an inner shard is kept when all its children are and its digest is
 * the recorded one. so->names gets every name, top-level's children
 * first; *top points at those. */
static patient_err
write_shards(walker *w, const patient_manifest_opts *o, const pt_reuse *r, const splan *p,
             pt_shard_out *so, char ***top, char **detail)
{
    char **names[PT_SHARD_MAX_LEVELS + 1] = {0};
    char *kept[PT_SHARD_MAX_LEVELS + 1] = {0};
    size_t count[PT_SHARD_MAX_LEVELS + 1] = {0};
    leaves_job lj = {0};
    pt_buf b = {0};
    patient_err err = PATIENT_OK;
    unsigned bits = 0;

    *top = NULL;
    so->nlevels = p->nl;
    memcpy(so->bits, p->bits, sizeof so->bits);
    for (unsigned l = 1; l <= p->nl; l++) {
        bits += p->bits[l - 1];
        count[l] = (size_t)1 << bits;
        if ((names[l] = calloc(count[l], sizeof *names[l])) == NULL ||
            (kept[l] = calloc(count[l], 1)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
    }
    if ((lj.res = calloc(count[p->nl], sizeof *lj.res)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    lj.e = w->e;
    lj.o = o;
    lj.r = r;
    lj.p = p;
    lj.dir = so->dir;
    pthread_mutex_init(&lj.mu, NULL);
    pool_for(&w->pool, count[p->nl], leaf_write, &lj);
    pthread_mutex_destroy(&lj.mu);
    if ((err = lj.err)) {
        if (lj.detail)
            pt_detail_first(detail, "%s", lj.detail);
        goto out;
    }
    for (unsigned l = p->nl; l >= 1; l--) {
        size_t fan = l < p->nl ? (size_t)1 << p->bits[l] : 0;
        for (uint32_t k = 0; k < count[l]; k++) {
            char bin[40], name[65], dhex[65];
            uint8_t dg[32];
            const pt_prev_node *pn = prev_node(r, l, k);
            uint64_t size = 0;
            char written = 0;
            int keep;
            if (l == p->nl) {
                memcpy(dg, p->digest[k], 32);
                keep = lj.res[k].kept;
                memcpy(name, lj.res[k].name, 65);
                size = lj.res[k].size;
                written = lj.res[k].written;
            } else {
                crypto_generichash_state st;
                keep = 1;
                digest_begin(&st, "patient-shard-inner", o, p);
                for (size_t c = 0; c < fan; c++) {
                    crypto_generichash_update(&st, (const uint8_t *)names[l + 1][k * fan + c], 64);
                    keep &= kept[l + 1][k * fan + c];
                }
                crypto_generichash_final(&st, dg, 32);
                keep = keep && pn && memcmp(pn->digest, dg, 32) == 0 &&
                       shard_exists(so->dir, pn->name, &size);
                if (keep) {
                    memcpy(name, pn->name, 65);
                } else {
                    b.len = 0;
                    bin_name(p, l, k, bin);
                    if ((err = shard_head(&b, bin, o)) ||
                        (err = emit_names(&b, (const char *const *)names[l + 1] + k * fan, fan)) ||
                        (err = shard_tail(&b, o)) ||
                        (err = put_shard(so->dir, &b, name, &written, detail)))
                        goto out;
                    size = b.len;
                }
            }
            kept[l][k] = (char)keep;
            if ((names[l][k] = strdup(name)) == NULL) {
                err = PATIENT_ERR_NOMEM;
                goto out;
            }
            so->total++;
            so->bytes_total += size;
            if (written) {
                so->written++;
                so->bytes_written += size;
            }
            pt_hex(dg, 32, dhex);
            if (so->nodes && (err = pt_buf_appendf(so->nodes, "s %u %u %s %s\n", l, (unsigned)k,
                                                   dhex, name)))
                goto out;
        }
    }
    /* All names, for the caller's clean-up of shards no longer named. */
    if ((so->names = calloc(so->total ? so->total : 1, sizeof *so->names)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    for (unsigned l = 1; l <= p->nl; l++)
        for (size_t k = 0; k < count[l]; k++) {
            so->names[so->n_names++] = names[l][k];
            names[l][k] = NULL;
        }
    *top = so->names;
out:
    for (unsigned l = 1; l <= p->nl; l++) {
        for (size_t k = 0; names[l] && k < count[l]; k++)
            free(names[l][k]);
        free(names[l]);
        free(kept[l]);
    }
    free(lj.res);
    free(lj.detail);
    pt_buf_free(&b);
    return err;
}

patient_err
patient_manifest_build(const char *site_dir, const patient_manifest_opts *o, char **json,
                       size_t *len, char **detail)
{
    patient_manifest_opts mo;
    patient_err err;

    *json = NULL;
    *len = 0;
    if (detail)
        *detail = NULL;
    if (o == NULL)
        return PATIENT_ERR_ARG;
    if ((err = PT_OPTS_TAKE(&mo, o)) != PATIENT_OK)
        return err;
    return pt_manifest_build(site_dir, &mo, NULL, NULL, NULL, NULL, json, len, detail);
}

patient_err
pt_manifest_build(const char *site_dir, const patient_manifest_opts *o, const pt_reuse *reuse,
                  pt_buf *state, pt_build_stats *stats, pt_shard_out *so, char **json,
                  size_t *len, char **detail)
{
    splan plan = {0};
    char **top = NULL;
    struct timespec started;
    walker w;
    struct stat st;
    pt_buf b = {0};
    cJSON *dj = NULL;
    patient_delegation *dels = NULL;
    size_t n_dels = 0;
    int pool_started = 0;
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
        pt_detail_first(detail, "version must be at least 1");
        return PATIENT_ERR_ARG;
    }
    if (o->delegations_json) {
        if ((err = pt_json_parse(o->delegations_json, strlen(o->delegations_json), &dj)) ||
            (err = dels_parse(dj, &dels, &n_dels))) {
            pt_detail_first(detail, "delegations: %s", patient_strerror(err));
            goto out;
        }
    }
    if ((w.root = realpath(site_dir, NULL)) == NULL || stat(w.root, &st) != 0) {
        pt_detail_first(detail, "%s: %s", site_dir, strerror(errno));
        err = errno == ENOENT ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_IO;
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        pt_detail_first(detail, "%s: not a folder", site_dir);
        err = PATIENT_ERR_ARG;
        goto out;
    }
    w.root_len = strlen(w.root);
    w.stack[0].dev = st.st_dev;
    w.stack[0].ino = st.st_ino;
    w.depth = 1;
    /* Facts from before the walk: a file modified after this moment may
     * have been hashed before the change within the same timestamp tick. */
    clock_gettime(CLOCK_REALTIME, &started);
    w.read_files = reuse == NULL;
    pool_start(&w.pool, &w, walk_threads(o->threads));
    pool_started = 1;
    if ((err = walk(&w, w.root, "", "/", NULL)) || (err = sort_entries(&w)))
        goto out;
    if (reuse)
        reuse_hashes(&w, reuse);
    if (so && (err = plan_shards(&w, o, reuse, so->dir, &plan)))
        goto out;
    if (reuse && plan.nl)
        reuse_leaves(&w, reuse, so->dir, &plan);
    if ((err = hash_all(&w, o->threads)))
        goto out;
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->entries = w.n;
        for (size_t i = 0; i < w.n; i++) {
            if (w.e[i].fspath == NULL)
                continue;
            stats->bytes += w.e[i].size;
            if (w.e[i].reused || w.e[i].skip) {
                stats->reused++;
            } else {
                stats->hashed++;
                stats->bytes_hashed += w.e[i].size;
            }
        }
    }
    for (size_t i = 0; i < w.n; i++) {
        if (w.e[i].alias != SIZE_MAX) {
            memcpy(w.e[i].hash, w.e[w.e[i].alias].hash, PATIENT_SHA256_BYTES);
            memcpy(w.e[i].root, w.e[w.e[i].alias].root, PATIENT_SHA256_BYTES);
            w.e[i].size = w.e[w.e[i].alias].size;
        }
    }
    if (plan.nl && (err = write_shards(&w, o, reuse, &plan, so, &top, detail)))
        goto out;
    if ((err = emit(&b, o, w.e, w.n, dels, n_dels, plan.nl ? so : NULL, top))) {
        if (err == PATIENT_ERR_TOO_LARGE)
            pt_detail_first(detail, "manifest larger than %u bytes", PATIENT_MANIFEST_MAX_BYTES);
        goto out;
    }
    /* The state leaves out files whose mtime is within 2 s of the walk
     * (coarse kernel clocks lag CLOCK_REALTIME by a tick): a write racing
     * the hash in the same tick would otherwise keep a stale hash. */
    for (size_t i = 0; state && i < w.n; i++) {
        const bent *x = &w.e[i];
        if (x->fspath == NULL || x->sec >= (int64_t)started.tv_sec - 2)
            continue;
        if ((err = state_line(state, x)))
            goto out;
    }
    *json = (char *)b.data;
    *len = b.len;
    b.data = NULL;
out:
    if (pool_started)
        pool_stop(&w.pool); /* the entries' strings go with it */
    entries_free(&w);
    free(w.root);
    splan_free(&plan);
    pt_buf_free(&b);
    dels_free(dels, n_dels);
    cJSON_Delete(dj);
    return err;
}
