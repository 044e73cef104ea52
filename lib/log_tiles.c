/* The audit log as C2SP tlog-tiles: the incremental tile builder, and the
 * publisher that keeps a folder of tiles, entry bundles and a signed
 * checkpoint note current (for any web server to serve).
 * Format contract: docs/format/log.md ("Published log"). */
#include "config.h"


#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log_int.h"
#include "tlog_int.h"

/* How long the partial tiles and bundles of an index stay after its full
 * one was written (docs/format/log.md, "Publishing"). */
long pt_prune_grace = PT_PRUNE_GRACE;

void
patient_tile_path(int level, uint64_t index, unsigned w, char out[96])
{
    char dec[24], *o = out;
    size_t n, i, first;

    n = (size_t)snprintf(dec, sizeof dec, "%llu", (unsigned long long)index);
    if (level < 0)
        o += sprintf(o, "entries/");
    else
        o += sprintf(o, "tile/%d/", level);
    /* Groups of three digits, the first zero-padded; every group but the
     * last is a folder named "x<ddd>". */
    first = n % 3 ? n % 3 : 3;
    for (i = 0; i < n;) {
        size_t g = i == 0 ? first : 3;
        if (i + g < n)
            *o++ = 'x';
        if (i == 0)
            for (size_t z = g; z < 3; z++)
                *o++ = '0';
        memcpy(o, dec + i, g);
        o += g;
        i += g;
        if (i < n)
            *o++ = '/';
    }
    *o = '\0';
    if (w > 0 && w < PATIENT_TILE_WIDTH)
        sprintf(o, ".p/%u", w);
}

void
pt_tiles_init(pt_tiles *t)
{
    memset(t, 0, sizeof *t);
    pt_merkle_frontier_init(&t->fr);
}

patient_err
pt_tile_root(const uint8_t *data, unsigned w, uint8_t out[PATIENT_SHA256_BYTES])
{
    return pt_merkle_root((const uint8_t(*)[PATIENT_SHA256_BYTES])data, w, out);
}

/* Hash h into level L's partial tile, and every tile that fills up into
 * the level above (roots: the nr tile roots the frontier just made). */
static patient_err
tiles_push(pt_tiles *t, const uint8_t leaf[PATIENT_SHA256_BYTES],
           uint8_t (*roots)[PATIENT_SHA256_BYTES], unsigned nr, pt_tile_full_fn on_full, void *ctx)
{
    uint8_t h[PATIENT_SHA256_BYTES];
    unsigned L = 0;
    patient_err err;

    memcpy(h, leaf, sizeof h);
    for (;;) {
        memcpy(t->part[L][t->w[L]++], h, sizeof h);
        if (t->w[L] < PATIENT_TILE_WIDTH)
            break;
        /* A full tile: hand it out, and its root is one hash more in the
         * tile above. The frontier has just hashed that subtree (the same
         * leaves: a state read back is checked for that, pt_mstate_parse),
         * so its root is taken from there rather than hashed a second
         * time; recomputed only if the frontier did not complete it. */
        if (on_full && (err = on_full(ctx, L, t->full[L], &t->part[L][0][0])))
            return err;
        if (L < nr)
            memcpy(h, roots[L], sizeof h);
        else if ((err = pt_tile_root(&t->part[L][0][0], PATIENT_TILE_WIDTH, h)))
            return err;
        t->full[L]++;
        t->w[L] = 0;
        if (++L == PT_TILE_LEVELS)
            return PATIENT_ERR_LIMIT;
    }
    t->size++;
    return PATIENT_OK;
}

patient_err
pt_tiles_add(pt_tiles *t, const uint8_t leaf[PATIENT_SHA256_BYTES], pt_tile_full_fn on_full,
             void *ctx)
{
    uint8_t roots[PT_TILE_LEVELS][PATIENT_SHA256_BYTES];
    unsigned nr;
    patient_err err;

    if ((err = pt_merkle_frontier_add_tiles(&t->fr, leaf, roots, PT_TILE_LEVELS, &nr)))
        return err;
    return tiles_push(t, leaf, roots, nr, on_full, ctx);
}

patient_err
pt_tiles_add_sub(pt_tiles *t, const uint8_t *leaves, size_t stride, unsigned height,
                 const uint8_t root[PATIENT_SHA256_BYTES], pt_tile_full_fn on_full, void *ctx)
{
    uint8_t roots[PT_TILE_LEVELS][PATIENT_SHA256_BYTES];
    unsigned count = 1u << height, nr;
    patient_err err;

    /* (pt_merkle_frontier_add_sub refuses a size not a multiple of count) */
    if (height > 8 || t->fr.size != t->size)
        return PATIENT_ERR_ARG;
    if ((err = pt_merkle_frontier_add_sub(&t->fr, root, height, roots, PT_TILE_LEVELS, &nr)))
        return err;
    /* All but the last fit in the level-0 tile (it is a multiple of count
     * along): only the last can fill it. */
    for (unsigned k = 0; k + 1 < count; k++)
        memcpy(t->part[0][t->w[0]++], leaves + k * stride, PATIENT_SHA256_BYTES);
    t->size += count - 1;
    return tiles_push(t, leaves + (count - 1) * stride, roots, nr, on_full, ctx);
}

/* ---- Publisher --------------------------------------------------------- */

/* Folders of a path under the published folder: "tile/L", six "x<ddd>"
 * at most (20 digits), and a "<ddd>.p". */
#define PT_DIR_DEPTH 10

/* A folder under the published one, open with every folder above it, each
 * opened from its parent without following a symlink. */
struct pt_dir {
    char rel[96];         /* its path under the published folder */
    int fd[PT_DIR_DEPTH]; /* fd[i]: the folder of rel's first i + 1 names */
    unsigned n;           /* 0: none open */
};

struct pt_pub {
    int dfd; /* the published folder, opened once by pt_pub_new */
    char origin[PATIENT_ORIGIN_MAX + 1];
    const patient_seckey *sk;
    int fd;
    pt_tiles t;
    uint64_t bundle_start; /* file offset of the partial bundle's first line */
    uint64_t end_off;      /* end of the last line added */
    unsigned seqno;        /* temp file names */
    uint8_t *buf;          /* bundle and compare buffer */
    size_t buf_cap;
    /* The folder each kind of file (entry bundles, then hash tiles level
     * by level) was last written in, known to exist: consecutive files of
     * a kind share it, and the kinds alternate (a full bundle, then its
     * tile), so one folder remembered for all of them missed every time. */
    struct pt_dir made[1 + PT_TILE_LEVELS];
    /* Indexes whose full tile (level >= 0) or bundle (-1) exists while
     * their partial folder "<N>.p" is still there, oldest first: removed
     * pt_prune_grace seconds after the full one was written. */
    struct prune {
        int level;
        uint64_t index;
        time_t at;
    } *prune;
    size_t prune_head, prune_n, prune_cap;
    patient_err put_err; /* on_full's first failure, for pt_pub_add */
};

/* "<tile path of (level, index)>.p": the folder of its partials, under
 * the published folder. */
static void
partial_dir(int level, uint64_t index, char out[96])
{
    patient_tile_path(level, index, 1, out);
    out[strlen(out) - 2] = '\0'; /* "…<N>.p/1" -> "…<N>.p" */
}

static void
dir_close(struct pt_dir *d)
{
    while (d->n > 0)
        close(d->fd[--d->n]);
    d->rel[0] = '\0';
}

/* A symlink (or a file) where a folder should be: refused, not followed. */
static patient_err
dir_errno(void)
{
    return errno == ELOOP || errno == ENOTDIR ? PATIENT_ERR_UNSAFE_PATH : PATIENT_ERR_IO;
}

/* Open the folder rel (len bytes of it) under the published folder into d,
 * name by name with O_NOFOLLOW from the folder above, making the missing
 * ones if create; the folders d already holds that rel shares are kept
 * (if one of those went away, all are opened again once). *out is d's
 * last fd (borrowed), or the published folder's for "". */
static patient_err
dir_walk(pt_pub *p, struct pt_dir *d, const char *rel, size_t len, int create, int *out)
{
    size_t i, k = 0;
    unsigned keep = 0;

    if (len >= sizeof d->rel)
        return PATIENT_ERR_ARG;
    /* The leading names d already has open. */
    while (keep < d->n && k < len) {
        size_t e = k;
        while (e < len && rel[e] != '/')
            e++;
        if (strncmp(d->rel + k, rel + k, e - k) != 0 || (d->rel[e] != '/' && d->rel[e] != '\0'))
            break;
        keep++;
        k = e < len ? e + 1 : e;
    }
    while (d->n > keep)
        close(d->fd[--d->n]);
    for (i = k; i < len;) {
        char name[96];
        size_t e = i;
        int cur = d->n ? d->fd[d->n - 1] : p->dfd, fd;

        while (e < len && rel[e] != '/')
            e++;
        if (d->n == PT_DIR_DEPTH || e == i) {
            dir_close(d);
            return PATIENT_ERR_ARG;
        }
        memcpy(name, rel + i, e - i);
        name[e - i] = '\0';
        fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create &&
            (mkdirat(cur, name, 0755) == 0 || errno == EEXIST))
            fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            patient_err err = dir_errno();
            int kept = keep > 0 && errno == ENOENT;
            dir_close(d);
            return kept ? dir_walk(p, d, rel, len, create, out) : err;
        }
        d->fd[d->n++] = fd;
        i = e < len ? e + 1 : e;
    }
    memcpy(d->rel, rel, len);
    d->rel[len] = '\0';
    *out = d->n ? d->fd[d->n - 1] : p->dfd;
    return PATIENT_OK;
}

/* The full file was just written, or found right, at time at (the
 * time it was written): queue its partials, if any, for removal. */
static void
prune_later(pt_pub *p, int level, uint64_t index, time_t at)
{
    char d[96];
    struct stat st;

    /* Only whether it is there: prune_due opens it without following. */
    partial_dir(level, index, d);
    if (fstatat(p->dfd, d, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
        return;
    if (p->prune_head + p->prune_n == p->prune_cap) {
        struct prune *np;
        if (p->prune_head > 0) {
            memmove(p->prune, p->prune + p->prune_head, p->prune_n * sizeof *p->prune);
            p->prune_head = 0;
        } else {
            size_t nc = p->prune_cap ? p->prune_cap * 2 : 64;
            if ((np = realloc(p->prune, nc * sizeof *np)) == NULL)
                return; /* only disk space: a later rebuild queues it again */
            p->prune = np;
            p->prune_cap = nc;
        }
    }
    /* From the full file's own time: a full tile left from an earlier run
     * has been there that long already. */
    p->prune[p->prune_head + p->prune_n++] =
        (struct prune){.level = level, .index = index, .at = at};
}

/* Remove the partial folders whose grace is over: only the files a
 * publisher names there (decimal widths 1-255), then the folder. Runs
 * under the log's lock like every other write to the folder. A symlink
 * on the way (or as "<N>.p") is not followed: PATIENT_ERR_UNSAFE_PATH,
 * after the others were pruned. */
static patient_err
prune_due(pt_pub *p)
{
    time_t now = time(NULL);
    patient_err res = PATIENT_OK;

    while (p->prune_n > 0) {
        const struct prune *q = &p->prune[p->prune_head];
        struct pt_dir up = {.n = 0};
        char d[96], *base;
        DIR *dh = NULL;
        struct dirent *de;
        int pfd, fd = -1;
        patient_err err;

        if (q->at + pt_prune_grace > now)
            break;
        partial_dir(q->level, q->index, d);
        base = strrchr(d, '/') + 1;
        err = dir_walk(p, &up, d, (size_t)(base - 1 - d), 0, &pfd);
        if (err == PATIENT_OK &&
            (fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
            err = dir_errno();
        if (err == PATIENT_OK && (dh = fdopendir(fd)) == NULL) {
            close(fd);
            err = PATIENT_ERR_IO;
        }
        if (dh) {
            while ((de = readdir(dh)) != NULL) {
                char *end;
                unsigned long w = strtoul(de->d_name, &end, 10);
                if (*end || de->d_name[0] < '1' || de->d_name[0] > '9' || w >= PATIENT_TILE_WIDTH)
                    continue;
                unlinkat(dirfd(dh), de->d_name, 0);
            }
            closedir(dh);
            unlinkat(pfd, base, AT_REMOVEDIR);
        }
        dir_close(&up);
        /* Only a symlink is reported: a folder gone already (an operator
         * emptied the tree) leaves nothing to do. */
        if (err == PATIENT_ERR_UNSAFE_PATH && res == PATIENT_OK)
            res = err;
        p->prune_head++;
        p->prune_n--;
    }
    return res;
}

static patient_err
grow(pt_pub *p, size_t n)
{
    uint8_t *b;

    if (n <= p->buf_cap)
        return PATIENT_OK;
    if ((b = realloc(p->buf, n)) == NULL)
        return PATIENT_ERR_NOMEM;
    p->buf = b;
    p->buf_cap = n;
    return PATIENT_OK;
}

/* Which of p->made a file at rel (a path patient_tile_path gives, or
 * "checkpoint") is written through: 0 for bundles, 1 + level for tiles. */
static unsigned
made_slot(const char *rel)
{
    if (strncmp(rel, "tile/", 5) == 0 && rel[5] >= '0' && rel[5] < '0' + PT_TILE_LEVELS)
        return 1 + (unsigned)(rel[5] - '0');
    return 0;
}

static void
forget_made(pt_pub *p)
{
    for (size_t i = 0; i < sizeof p->made / sizeof p->made[0]; i++)
        dir_close(&p->made[i]);
}

/* The folder of rel (before its last '/') open in *dfd (borrowed), made
 * if missing; the folders this kind of file was last written in are kept
 * open, so a file beside the last one costs no lookup. Never makes the
 * published folder itself (pt_pub_new did; if it went, writing fails). */
static patient_err
mkparents(pt_pub *p, const char *rel, int *dfd)
{
    const char *slash = strrchr(rel, '/');

    if (slash == NULL) {
        *dfd = p->dfd; /* "checkpoint": the bundles' folder stays open */
        return PATIENT_OK;
    }
    return dir_walk(p, &p->made[made_slot(rel)], rel, (size_t)(slash - rel), 1, dfd);
}

/* The name of rel in its folder. */
static const char *
base_name(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash ? slash + 1 : rel;
}

/* Create the temp file tmp in folder *dfd (the folder of rel) into *fd;
 * if that folder went away (someone emptied the published folder), open
 * the folders again, making them, once. */
static patient_err
open_new(pt_pub *p, const char *rel, const char *tmp, int *dfd, int *fd)
{
    const int fl = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    patient_err err;

    if ((*fd = openat(*dfd, tmp, fl, 0644)) >= 0)
        return PATIENT_OK;
    if (errno != ENOENT)
        return PATIENT_ERR_IO;
    forget_made(p);
    if ((err = mkparents(p, rel, dfd)))
        return err;
    return (*fd = openat(*dfd, tmp, fl, 0644)) >= 0 ? PATIENT_OK : PATIENT_ERR_IO;
}

/* Is name in folder dfd already a regular file holding exactly data? If
 * so *mtime is its modification time. */
static int
same_file(pt_pub *p, int dfd, const char *name, const void *data, size_t len, time_t *mtime)
{
    struct stat st;
    int fd, same = 0;
    size_t got = 0;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size != len)
        return 0;
    if (grow(p, len) != PATIENT_OK ||
        (fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return 0;
    while (got < len) {
        ssize_t n = read(fd, p->buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    same = got == len && memcmp(p->buf, data, len) == 0;
    if (same)
        *mtime = st.st_mtime;
    return same;
}

/* Write dir/rel atomically for readers: a temp file beside it, renamed
 * over. Not fsynced: the log is the durable copy and the folder is
 * rebuilt from it when publishing starts. *at (if not NULL) gets the
 * file's time: now, or that of the right one left alone. */
static patient_err
put_file(pt_pub *p, const char *rel, const void *data, size_t len, int immutable, time_t *at)
{
    const char *name = base_name(rel);
    char tmp[128];
    int fd, dfd;
    time_t t;
    patient_err err;

    if ((err = mkparents(p, rel, &dfd)))
        return err;
    /* Full tiles and bundles never change: leave a correct one alone. */
    if (immutable && same_file(p, dfd, name, data, len, &t)) {
        if (at)
            *at = t;
        return PATIENT_OK;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", name, (long)getpid(), p->seqno++);
    if ((err = open_new(p, rel, tmp, &dfd, &fd)))
        return err;
    if (pt_write_all(fd, data, len) != PATIENT_OK) {
        close(fd);
        unlinkat(dfd, tmp, 0);
        return PATIENT_ERR_IO;
    }
    if (close(fd) != 0 || renameat(dfd, tmp, dfd, name) != 0) {
        unlinkat(dfd, tmp, 0);
        return PATIENT_ERR_IO;
    }
    /* Read after the file was written: never before the time it was
     * written, so a partial is never pruned earlier than its full file's
     * time says. */
    if (at)
        *at = time(NULL);
    return PATIENT_OK;
}

static patient_err
read_range(pt_pub *p, uint64_t from, uint64_t to)
{
    size_t len = (size_t)(to - from), got = 0;
    patient_err err;

    if (to < from || to - from > PATIENT_TLOG_BUNDLE_MAX)
        return PATIENT_ERR_LIMIT;
    if ((err = grow(p, len ? len : 1)))
        return err;
    while (got < len) {
        ssize_t n = pread(p->fd, p->buf + got, len - got, (off_t)(from + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return PATIENT_ERR_IO;
        got += (size_t)n;
    }
    return PATIENT_OK;
}

/* Copy the byte range [from, to) of the log to dir/rel, beside then
 * renamed, without passing it through user space (copy_file_range; a
 * plain read/write loop where the kernel cannot). */
static patient_err
copy_range_to(pt_pub *p, const char *rel, uint64_t from, uint64_t to)
{
    const char *name = base_name(rel);
    char tmp[128];
    loff_t off = (loff_t)from;
    uint64_t left = to - from;
    int fd, dfd;
    patient_err err;

    if ((err = mkparents(p, rel, &dfd)))
        return err;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", name, (long)getpid(), p->seqno++);
    if ((err = open_new(p, rel, tmp, &dfd, &fd)))
        return err;
    while (left > 0) {
        ssize_t c = copy_file_range(p->fd, &off, fd, NULL, (size_t)left, 0);
        if (c < 0 && errno == EINTR)
            continue;
        if (c <= 0) {
            /* EXDEV, ENOSYS, EINVAL on some file systems: copy by hand. */
            size_t chunk = left > (1u << 20) ? (1u << 20) : (size_t)left;
            if ((err = read_range(p, (uint64_t)off, (uint64_t)off + chunk)) ||
                pt_write_all(fd, p->buf, chunk) != PATIENT_OK) {
                err = err ? err : PATIENT_ERR_IO;
                break;
            }
            c = (ssize_t)chunk;
            off += (loff_t)chunk;
        }
        left -= (uint64_t)c;
    }
    if (close(fd) != 0 && err == PATIENT_OK)
        err = PATIENT_ERR_IO;
    if (err == PATIENT_OK && renameat(dfd, tmp, dfd, name) != 0)
        err = PATIENT_ERR_IO;
    if (err)
        unlinkat(dfd, tmp, 0);
    return err;
}

static patient_err
put_bundle(pt_pub *p, uint64_t index, unsigned w, uint64_t from, uint64_t to)
{
    char rel[96];
    struct stat st;
    uint8_t *copy;
    time_t at = 0;
    int dfd;
    patient_err err;

    if (to < from || to - from > PATIENT_TLOG_BUNDLE_MAX)
        return PATIENT_ERR_LIMIT;
    patient_tile_path(-1, index, w, rel);
    if ((err = mkparents(p, rel, &dfd)))
        return err;
    /* A bundle already there (rebuilding after a restart, or a partial of
     * a width published before: its lines never change) is left alone
     * when it holds the right bytes. */
    if (fstatat(dfd, base_name(rel), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size == to - from) {
        if ((err = read_range(p, from, to)))
            return err;
        if ((copy = malloc(to - from + 1)) == NULL)
            return PATIENT_ERR_NOMEM;
        memcpy(copy, p->buf, to - from);
        err = put_file(p, rel, copy, to - from, 1, &at);
        free(copy);
    } else if ((err = copy_range_to(p, rel, from, to)) == PATIENT_OK) {
        at = time(NULL); /* after the write, as in put_file */
    }
    if (err == PATIENT_OK && w == PATIENT_TILE_WIDTH)
        prune_later(p, -1, index, at);
    return err;
}

static patient_err
on_full(void *ctx, unsigned level, uint64_t index, const uint8_t *data)
{
    pt_pub *p = ctx;
    char rel[96];
    time_t at;
    patient_err err;

    patient_tile_path((int)level, index, PATIENT_TILE_WIDTH, rel);
    /* A tile not written is only a missing file: the tree goes on (an
     * error here would leave the tile builder half a step on). */
    if ((err = put_file(p, rel, data, PATIENT_TILE_BYTES, 1, &at))) {
        if (p->put_err == PATIENT_OK)
            p->put_err = err;
        return PATIENT_OK;
    }
    prune_later(p, (int)level, index, at);
    return PATIENT_OK;
}

patient_err
pt_pub_new(const char *dir, const char *origin, const char *log_id, const patient_seckey *sk,
           int fd, pt_pub **out)
{
    pt_pub *p;

    *out = NULL;
    if (dir == NULL || *dir == '\0' || sk == NULL)
        return PATIENT_ERR_ARG;
    if (origin && (strlen(origin) > PATIENT_ORIGIN_MAX || *origin == '\0'))
        return PATIENT_ERR_ARG;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return PATIENT_ERR_IO;
    if ((p = calloc(1, sizeof *p)) == NULL)
        return PATIENT_ERR_NOMEM;
    /* The folder as configured (its path may pass through symlinks the
     * operator made); everything under it is opened from this fd, never
     * following a symlink (docs/format/log.md, "Publishing"). */
    if ((p->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        free(p);
        return PATIENT_ERR_IO;
    }
    if (origin)
        snprintf(p->origin, sizeof p->origin, "%s", origin);
    else if (log_id && *log_id)
        patient_tlog_default_origin(log_id, p->origin);
    p->sk = sk;
    p->fd = fd;
    pt_tiles_init(&p->t);
    *out = p;
    return PATIENT_OK;
}

void
pt_pub_free(pt_pub *p)
{
    if (p == NULL)
        return;
    forget_made(p);
    close(p->dfd);
    free(p->buf);
    free(p->prune);
    free(p);
}

uint64_t
pt_pub_size(const pt_pub *p)
{
    return p->t.size;
}

patient_err
pt_pub_add(pt_pub *p, const uint8_t leaf[PATIENT_SHA256_BYTES], uint64_t off, size_t len)
{
    patient_err err, perr = PATIENT_OK;

    if (p->t.w[0] == 0)
        p->bundle_start = off;
    p->end_off = off + len + 1;
    /* A file that could not be written is reported, but the leaf is
     * added all the same: the tree the next checkpoint signs is the log's. */
    if (p->t.w[0] == PATIENT_TILE_WIDTH - 1)
        perr = put_bundle(p, p->t.full[0], PATIENT_TILE_WIDTH, p->bundle_start, p->end_off);
    p->put_err = PATIENT_OK;
    if ((err = pt_tiles_add(&p->t, leaf, on_full, p)))
        return err;
    return perr ? perr : p->put_err;
}

/* The partial tiles, the partial bundle, then the checkpoint note: a
 * reader that sees the new checkpoint finds every file it names. */
static patient_err
publish_state(pt_pub *p, const pt_tiles *t, uint64_t bstart, uint64_t end)
{
    patient_checkpoint c;
    char rel[96], *note = NULL;
    unsigned L;
    patient_err err, perr;

    if (t->size == 0)
        return PATIENT_ERR_NOT_FOUND;
    if (p->origin[0] == '\0')
        return PATIENT_ERR_STATE;
    /* A partial folder that could not be pruned does not stop publishing
     * the checkpoint: its error is returned after. */
    perr = prune_due(p);
    for (L = 0; L < PT_TILE_LEVELS; L++) {
        if (t->w[L] == 0)
            continue;
        /* A partial tile's bytes are fixed by its path too (the tree only
         * grows): one published at an earlier checkpoint is kept, not
         * replaced by a new file (creating files is most of what
         * publishing costs: on ext4, allocating an inode). */
        patient_tile_path((int)L, t->full[L], t->w[L], rel);
        if ((err = put_file(p, rel, &t->part[L][0][0], (size_t)t->w[L] * PATIENT_SHA256_BYTES, 1,
                            NULL)))
            return err;
    }
    if (t->w[0] && (err = put_bundle(p, t->full[0], t->w[0], bstart, end)))
        return err;
    memset(&c, 0, sizeof c);
    memcpy(c.origin, p->origin, sizeof c.origin);
    c.size = t->size;
    if ((err = pt_merkle_frontier_root(&t->fr, c.root)) ||
        (err = patient_checkpoint_sign(&c, p->sk, &note)))
        return err;
    err = put_file(p, "checkpoint", note, strlen(note), 0, NULL);
    free(note);
    return err ? err : perr;
}

patient_err
pt_pub_publish(pt_pub *p, const char *log_id)
{
    if (p->origin[0] == '\0' && log_id && *log_id)
        patient_tlog_default_origin(log_id, p->origin);
    return publish_state(p, &p->t, p->bundle_start, p->end_off);
}

patient_err
pt_pub_scan(pt_pub *p, uint64_t *end_size, uint64_t *end_off)
{
    lreader rd;
    uint8_t *line, *scratch = NULL, leaf[HASH_LEN];
    size_t len, scap = 0;
    uint64_t off, snap_bstart = 0, snap_end = 0;
    pt_tiles *snap = NULL;
    int nl, have_snap = 0;
    pentry e;
    patient_err err;

    memset(&e, 0, sizeof e);
    pt_tiles_init(&p->t);
    p->bundle_start = p->end_off = 0;
    if ((snap = malloc(sizeof *snap)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = lr_init(&rd, p->fd, 0))) {
        free(snap);
        return err;
    }
    for (;;) {
        if ((err = lr_next(&rd, &line, &len, &nl, &off)))
            goto out;
        if (line == NULL || !nl)
            break;
        /* The tree of a checkpoint is every line before it: keep the
         * state as it was then, to publish the last one at the end. */
        if (pt_line_maybe_checkpoint(line, len)) {
            if ((err = pentry_parse(line, len, &e)) != PATIENT_OK) {
                err = PATIENT_ERR_LOG_CORRUPT;
                goto out;
            }
            if (e.kind == PATIENT_LOG_KIND_CHECKPOINT) {
                if (e.tree_size != p->t.size) {
                    err = PATIENT_ERR_LOG_CORRUPT;
                    goto out;
                }
                memcpy(snap, &p->t, sizeof *snap);
                snap_bstart = p->bundle_start;
                snap_end = p->end_off;
                have_snap = 1;
            }
        }
        if ((err = scratch_leaf(&scratch, &scap, line, len, leaf)) ||
            (err = pt_pub_add(p, leaf, off, len)))
            goto out;
    }
    if (end_size)
        *end_size = p->t.size;
    if (end_off)
        *end_off = p->end_off;
    err = have_snap ? publish_state(p, snap, snap_bstart, snap_end) : PATIENT_ERR_NOT_FOUND;
out:
    pentry_free(&e);
    lr_free(&rd);
    free(scratch);
    free(snap);
    return err;
}

patient_err
patient_log_publish(const char *path, const char *dir, const patient_seckey *sk,
                    const char *origin)
{
    uint8_t first[HASH_LEN];
    char log_id[HEX_LEN + 1] = "";
    pt_pub *p = NULL;
    lreader rd;
    uint8_t *line;
    size_t len;
    int fd = -1, nl;
    uint64_t off;
    patient_err err;

    if (path == NULL || dir == NULL || sk == NULL)
        return PATIENT_ERR_ARG;
    if ((err = open_read(path, &fd)))
        return err;
    /* The log id (SHA-256 of line 0) names the default origin. */
    if ((err = lr_init(&rd, fd, 0)))
        goto out;
    err = lr_next(&rd, &line, &len, &nl, &off);
    if (err == PATIENT_OK && line && nl && (err = patient_sha256(line, len, first)) == PATIENT_OK)
        pt_hex(first, HASH_LEN, log_id);
    lr_free(&rd);
    if (err)
        goto out;
    if (log_id[0] == '\0') {
        err = PATIENT_ERR_NOT_FOUND;
        goto out;
    }
    if ((err = pt_pub_new(dir, origin, log_id, sk, fd, &p)))
        goto out;
    err = pt_pub_scan(p, NULL, NULL);
out:
    pt_pub_free(p);
    close(fd);
    return err;
}
