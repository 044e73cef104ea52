/* Chunk roots over SHA-256 chaining values; bytes with holes. See chunk.h. */
#include "config.h"

/* The chaining value is the whole point (chunk.h), and only the low-level
 * SHA-256 interface exposes it; it runs the same SHA-NI code as EVP. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunk.h"

struct pt_chunker {
    SHA256_CTX sha;
    uint64_t pos;      /* bytes fed */
    int pending;       /* a full chunk ended at pos: its leaf is not added yet
                          (it is the last leaf if nothing follows) */
    uint8_t pend[PATIENT_SHA256_BYTES];
    pt_merkle_frontier f;
};

uint64_t
pt_chunk_count(uint64_t len)
{
    return len == 0 ? 1 : (len + PT_CHUNK_SIZE - 1) / PT_CHUNK_SIZE;
}

static void
state_get(const SHA256_CTX *s, uint8_t out[PATIENT_SHA256_BYTES])
{
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

/* Continue SHA-256 from a chaining value at byte position pos (a multiple
 * of 64): the state words and the running bit count. */
static void
state_set(SHA256_CTX *s, const uint8_t v[PATIENT_SHA256_BYTES], uint64_t pos)
{
    SHA256_Init(s);
    for (int i = 0; i < 8; i++)
        s->h[i] = (SHA_LONG)v[4 * i] << 24 | (SHA_LONG)v[4 * i + 1] << 16 |
                  (SHA_LONG)v[4 * i + 2] << 8 | (SHA_LONG)v[4 * i + 3];
    s->Nl = (SHA_LONG)(pos << 3);
    s->Nh = (SHA_LONG)(pos >> 29);
}

/* The RFC 9162 tree over the leaves, built as they come (the same compact
 * range as merkle.c's frontier), with the low-level SHA-256: two tiny hashes
 * per 4 KiB chunk through EVP_Digest cost more than the chunk's own
 * hashing (an EVP fetch and context per call), measured 6x slower publish. */
/* SHA256() itself goes through EVP_Q_digest (a fetch under a lock) in
 * OpenSSL 3; the context functions do not. */
static void
sha_small(const uint8_t *p, size_t n, uint8_t out[PATIENT_SHA256_BYTES])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, p, n);
    SHA256_Final(out, &c);
}

static void
node_hash(const uint8_t l[PATIENT_SHA256_BYTES], const uint8_t r[PATIENT_SHA256_BYTES],
          uint8_t out[PATIENT_SHA256_BYTES])
{
    uint8_t b[1 + 2 * PATIENT_SHA256_BYTES];
    b[0] = 0x01;
    memcpy(b + 1, l, PATIENT_SHA256_BYTES);
    memcpy(b + 1 + PATIENT_SHA256_BYTES, r, PATIENT_SHA256_BYTES);
    sha_small(b, sizeof b, out);
}

static patient_err
add_leaf(pt_merkle_frontier *f, const uint8_t v[PATIENT_SHA256_BYTES])
{
    uint8_t b[1 + PATIENT_SHA256_BYTES], cur[PATIENT_SHA256_BYTES];
    unsigned k = (unsigned)__builtin_popcountll(f->size);
    uint64_t s = f->size;

    if (f->size == UINT64_MAX)
        return PATIENT_ERR_LIMIT;
    b[0] = 0x00;
    memcpy(b + 1, v, PATIENT_SHA256_BYTES);
    sha_small(b, sizeof b, cur);
    /* Merge with every perfect subtree of the same height: one per
     * trailing 1 bit of size. */
    while (s & 1) {
        k--;
        node_hash(f->node[k], cur, cur);
        s >>= 1;
    }
    memcpy(f->node[k], cur, PATIENT_SHA256_BYTES);
    f->size++;
    return PATIENT_OK;
}

static patient_err
tree_root(const pt_merkle_frontier *f, uint8_t out[PATIENT_SHA256_BYTES])
{
    unsigned top = (unsigned)__builtin_popcountll(f->size);
    uint8_t cur[PATIENT_SHA256_BYTES];

    if (top == 0) {
        sha_small((const uint8_t *)"", 0, out);
        return PATIENT_OK;
    }
    memcpy(cur, f->node[top - 1], sizeof cur);
    for (unsigned i = top - 1; i-- > 0;)
        node_hash(f->node[i], cur, cur);
    memcpy(out, cur, sizeof cur);
    return PATIENT_OK;
}

patient_err
pt_chunker_new(pt_chunker **c)
{
    if ((*c = calloc(1, sizeof **c)) == NULL)
        return PATIENT_ERR_NOMEM;
    SHA256_Init(&(*c)->sha);
    pt_merkle_frontier_init(&(*c)->f);
    return PATIENT_OK;
}

patient_err
pt_chunker_update(pt_chunker *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    patient_err err;

    while (len) {
        size_t room = PT_CHUNK_SIZE - (size_t)(c->pos % PT_CHUNK_SIZE), take;
        if (c->pending) {
            if ((err = add_leaf(&c->f, c->pend)) != PATIENT_OK)
                return err;
            c->pending = 0;
        }
        take = len < room ? len : room;
        if (SHA256_Update(&c->sha, p, take) != 1)
            return PATIENT_ERR_CRYPTO;
        c->pos += take;
        p += take;
        len -= take;
        if (c->pos % PT_CHUNK_SIZE == 0) {
            state_get(&c->sha, c->pend);
            c->pending = 1;
        }
    }
    return PATIENT_OK;
}

patient_err
pt_chunker_final(pt_chunker *c, uint8_t digest[PATIENT_SHA256_BYTES],
                 uint8_t root[PATIENT_SHA256_BYTES])
{
    uint8_t d[PATIENT_SHA256_BYTES];
    patient_err err = PATIENT_ERR_CRYPTO;

    /* A pending full chunk is the last one: its leaf is the digest. */
    if (SHA256_Final(d, &c->sha) != 1)
        goto out;
    if ((err = add_leaf(&c->f, d)) != PATIENT_OK ||
        (err = tree_root(&c->f, root)) != PATIENT_OK)
        goto out;
    if (digest)
        memcpy(digest, d, sizeof d);
out:
    pt_chunker_free(c);
    return err;
}

void
pt_chunker_free(pt_chunker *c)
{
    if (c) {
        OPENSSL_cleanse(c, sizeof *c);
        free(c);
    }
}

patient_err
pt_chunk_root(const void *data, size_t len, uint8_t digest[PATIENT_SHA256_BYTES],
              uint8_t root[PATIENT_SHA256_BYTES])
{
    pt_chunker *c;
    patient_err err;

    if ((err = pt_chunker_new(&c)) != PATIENT_OK)
        return err;
    if ((err = pt_chunker_update(c, data, len)) != PATIENT_OK) {
        pt_chunker_free(c);
        return err;
    }
    return pt_chunker_final(c, digest, root);
}

patient_err
pt_chunk_file(const char *path, uint8_t digest[PATIENT_SHA256_BYTES],
              uint8_t root[PATIENT_SHA256_BYTES], uint64_t *size)
{
    static const size_t bufsz = 1 << 20;
    struct stat st;
    pt_chunker *c = NULL;
    uint8_t *buf = NULL;
    uint64_t total = 0;
    ssize_t n;
    int fd;
    patient_err err;

    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0)
        return errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH
                              : errno == ENOENT ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_IO;
    err = PATIENT_ERR_IO;
    if (fstat(fd, &st) != 0)
        goto out;
    err = PATIENT_ERR_UNSAFE_PATH;
    if (!S_ISREG(st.st_mode))
        goto out;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    err = PATIENT_ERR_NOMEM;
    if ((buf = malloc(bufsz)) == NULL || (err = pt_chunker_new(&c)) != PATIENT_OK)
        goto out;
    /* read(), not mmap(): a file truncated under us must give an error,
     * not SIGBUS. */
    while ((n = read(fd, buf, bufsz)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = PATIENT_ERR_IO;
            goto out;
        }
        total += (uint64_t)n;
        if ((err = pt_chunker_update(c, buf, (size_t)n)) != PATIENT_OK)
            goto out;
    }
    err = pt_chunker_final(c, digest, root);
    c = NULL;
    *size = total;
out:
    pt_chunker_free(c);
    free(buf);
    close(fd);
    return err;
}

static int
sorted_distinct(const uint64_t *v, size_t n, uint64_t limit)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] >= limit || (i && v[i] <= v[i - 1]))
            return 0;
    return 1;
}

/* ---- the chunk walk (chunk.h) ----
 * Chunk j's leaf is the chain's state after it, continued from chunk
 * j-1's leaf when that one was given (state_set), so a given leaf costs
 * no hashing at all; the kept hash of a chunk asked about runs beside the
 * chain, over the bytes outside holes. A job wanting neither the root nor
 * a leaf (pt_chunk_kept) runs no chain at all. */
struct pt_chunk_stream {
    pt_chunk_job job;
    uint64_t end;      /* chunks walked: all with a root, else up to the last asked about */
    uint64_t j;        /* the current chunk */
    size_t cpos, clen; /* position in chunk j, its length */
    size_t ki, wi;     /* the next entries of job.known, job.want */
    int cknown, cwant; /* chunk j's leaf is given; chunk j is asked about */
    SHA256_CTX s, k;   /* the chain; the kept bytes of chunk j */
    int live;          /* s holds the state at the start of chunk j */
    uint8_t leaf[PATIENT_SHA256_BYTES];
    pt_merkle_frontier f;
};

/* The job wants the root or a leaf: the chain s runs. */
static inline int
cs_chain(const pt_chunk_stream *w)
{
    return w->job.root || w->job.leaf != NULL;
}

static void
cs_start(pt_chunk_stream *w)
{
    uint64_t start = w->j * PT_CHUNK_SIZE;

    w->cpos = 0;
    w->clen = (size_t)(w->job.len - start < PT_CHUNK_SIZE ? w->job.len - start : PT_CHUNK_SIZE);
    w->cknown = w->ki < w->job.nknown && w->job.known[w->ki] == w->j;
    w->cwant = w->wi < w->job.nwant && w->job.want[w->wi] == w->j;
    if (w->cwant && w->job.kept)
        SHA256_Init(&w->k);
}

/* Chunk j is complete: its leaf out and into the tree. */
static patient_err
cs_close(pt_chunk_stream *w)
{
    if (w->cknown) {
        memcpy(w->leaf, w->job.known_val[w->ki++], sizeof w->leaf);
        w->live = 0;
    } else if (cs_chain(w)) {
        if (!w->live)
            state_set(&w->s, w->leaf, w->j * PT_CHUNK_SIZE); /* leaf: chunk j-1's */
        w->live = 1;
        if (w->j + 1 == pt_chunk_count(w->job.len)) { /* the last chunk */
            if (SHA256_Final(w->leaf, &w->s) != 1)
                return PATIENT_ERR_CRYPTO;
        } else {
            state_get(&w->s, w->leaf);
        }
    }
    if (w->cwant) {
        if (w->job.leaf)
            memcpy(w->job.leaf[w->wi], w->leaf, sizeof w->leaf);
        if (w->job.kept && SHA256_Final(w->job.kept[w->wi], &w->k) != 1)
            return PATIENT_ERR_CRYPTO;
        w->wi++;
    }
    w->j++;
    if (w->j < w->end)
        cs_start(w);
    return w->job.root ? add_leaf(&w->f, w->leaf) : PATIENT_OK;
}

patient_err
pt_chunk_stream_new(const pt_chunk_job *job, pt_chunk_stream **out)
{
    uint64_t n = pt_chunk_count(job->len);
    pt_chunk_stream *w;

    *out = NULL;
    if (!sorted_distinct(job->known, job->nknown, n) || !sorted_distinct(job->want, job->nwant, n))
        return PATIENT_ERR_ARG;
    if ((w = calloc(1, sizeof *w)) == NULL)
        return PATIENT_ERR_NOMEM;
    w->job = *job;
    /* Without a root, stop after the last leaf anyone asked for. */
    w->end = job->root ? n : job->nwant ? job->want[job->nwant - 1] + 1 : 0;
    pt_merkle_frontier_init(&w->f);
    SHA256_Init(&w->s);
    w->live = 1;
    if (w->end > 0)
        cs_start(w);
    *out = w;
    return PATIENT_OK;
}

patient_err
pt_chunk_stream_update(pt_chunk_stream *w, const uint8_t *p, int hole, size_t n)
{
    static const uint8_t zeros[PT_CHUNK_SIZE];
    patient_err err;

    while (n) {
        size_t take;
        if (w->j >= w->end) /* past the last chunk walked */
            return w->job.root ? PATIENT_ERR_ARG /* more bytes than len */ : PATIENT_OK;
        /* The one empty chunk of an empty resource: any byte is past len
         * (taking none of them would never end). */
        if (w->clen == 0)
            return w->job.root ? PATIENT_ERR_ARG : PATIENT_OK;
        take = w->clen - w->cpos < n ? w->clen - w->cpos : n;
        if (!w->cknown && cs_chain(w)) {
            if (!w->live)
                state_set(&w->s, w->leaf, w->j * PT_CHUNK_SIZE);
            w->live = 1;
            /* Bytes nobody has count as zeros. */
            if (SHA256_Update(&w->s, p ? p : zeros, take) != 1)
                return PATIENT_ERR_CRYPTO;
        }
        if (w->cwant && w->job.kept && !hole && SHA256_Update(&w->k, p ? p : zeros, take) != 1)
            return PATIENT_ERR_CRYPTO;
        if (p)
            p += take;
        n -= take;
        if ((w->cpos += take) == w->clen && (err = cs_close(w)) != PATIENT_OK)
            return err;
    }
    return PATIENT_OK;
}

patient_err
pt_chunk_stream_final(pt_chunk_stream *w, uint8_t root[PATIENT_SHA256_BYTES])
{
    patient_err err;

    /* An empty resource has one empty chunk. */
    if (w->j < w->end && w->clen == 0 && (err = cs_close(w)) != PATIENT_OK)
        return err;
    if (w->j != w->end)
        return PATIENT_ERR_ARG; /* fewer bytes than len */
    return w->job.root ? tree_root(&w->f, root) : PATIENT_OK;
}

void
pt_chunk_stream_free(pt_chunk_stream *w)
{
    if (w) {
        OPENSSL_cleanse(w, sizeof *w);
        free(w);
    }
}

patient_err
pt_chunk_walk_pieces(const pt_pieces *data, const pt_chunk_job *job,
                     uint8_t root[PATIENT_SHA256_BYTES])
{
    pt_chunk_stream *w;
    patient_err err;

    if (data->len != job->len)
        return PATIENT_ERR_ARG;
    if ((err = pt_chunk_stream_new(job, &w)) != PATIENT_OK)
        return err;
    for (size_t i = 0; i < data->n && w->j < w->end && err == PATIENT_OK; i++)
        err = pt_chunk_stream_update(w, data->v[i].p, data->v[i].owner >= 0, data->v[i].len);
    if (err == PATIENT_OK)
        err = pt_chunk_stream_final(w, root);
    pt_chunk_stream_free(w);
    return err;
}

/* ---- holes ---- */

void
pt_holes_free(pt_holes *h)
{
    if (h) {
        free(h->h);
        *h = (pt_holes){0};
    }
}

/* Append [off, off+len) owned by owner, merging with the last hole when
 * adjacent and of the same owner. */
patient_err
pt_holes_add(pt_holes *h, size_t off, size_t len, unsigned owner)
{
    if (len == 0)
        return PATIENT_OK;
    if (h->n && h->h[h->n - 1].owner == owner && h->h[h->n - 1].off + h->h[h->n - 1].len == off) {
        h->h[h->n - 1].len += len;
        return PATIENT_OK;
    }
    if (h->n == h->cap) {
        size_t nc = h->cap ? 2 * h->cap : 8;
        pt_hole *p = realloc(h->h, nc * sizeof *p);
        if (p == NULL)
            return PATIENT_ERR_NOMEM;
        h->h = p;
        h->cap = nc;
    }
    h->h[h->n++] = (pt_hole){off, len, owner};
    return PATIENT_OK;
}

/* Holes of src intersecting the output range [o, o+len), moved by shift
 * (output position -> input position) into dst. *hi walks src. */
static patient_err
holes_move(const pt_holes *src, size_t *hi, size_t o, size_t len, size_t to, pt_holes *dst)
{
    size_t end = o + len;
    patient_err err;

    while (src && *hi < src->n && src->h[*hi].off + src->h[*hi].len <= o)
        (*hi)++;
    for (size_t i = src ? *hi : 0; src && i < src->n && src->h[i].off < end; i++) {
        size_t a = src->h[i].off > o ? src->h[i].off : o;
        size_t b = src->h[i].off + src->h[i].len < end ? src->h[i].off + src->h[i].len : end;
        if ((err = pt_holes_add(dst, to + (a - o), b - a, src->h[i].owner)) != PATIENT_OK)
            return err;
    }
    return PATIENT_OK;
}

/* data[0, len) as pieces, the holes h marked (their bytes kept, for a
 * hop's own withheld bytes). */
static patient_err
pieces_marked(const uint8_t *data, size_t len, const pt_holes *h, pt_pieces *s)
{
    size_t at = 0;
    patient_err err = PATIENT_OK;

    for (size_t i = 0; h && i < h->n && err == PATIENT_OK; i++) {
        if (h->h[i].off < at || h->h[i].off > len || h->h[i].len > len - h->h[i].off)
            err = PATIENT_ERR_ARG;
        else if ((err = pt_pieces_add(s, data + at, h->h[i].off - at, -1)) == PATIENT_OK)
            err = pt_pieces_add(s, data + h->h[i].off, h->h[i].len, (int)h->h[i].owner);
        if (err == PATIENT_OK)
            at = h->h[i].off + h->h[i].len;
    }
    if (err == PATIENT_OK && data != NULL) /* NULL + 0 is undefined */
        err = pt_pieces_add(s, data + at, len - at, -1);
    if (err != PATIENT_OK)
        pt_pieces_free(s);
    return err;
}

patient_err
pt_undo_holes(const patient_change *c, unsigned owner, const uint8_t *out, size_t out_len,
              const pt_holes *oh, int check_insert, pt_bigbuf *dst, pt_holes *ih)
{
    pt_pieces po = {0}, pi = {0};
    patient_err err;

    *ih = (pt_holes){0};
    /* Marked holes keep their bytes: the copy carries them, as a hop's
     * own withheld bytes must be. */
    if ((err = pieces_marked(out, out_len, oh, &po)) == PATIENT_OK)
        err = pt_pieces_undo(c, owner, &po, check_insert, &pi);
    if (err == PATIENT_OK)
        err = pt_bigbuf_reserve(dst, pi.len ? pi.len : 1);
    if (err == PATIENT_OK) {
        pt_pieces_copy(&pi, dst->p);
        err = pt_pieces_holes(&pi, ih);
    }
    pt_pieces_free(&po);
    pt_pieces_free(&pi);
    return err;
}

patient_err
pt_chunk_kept(const uint8_t *data, size_t len, uint64_t j, const pt_holes *h,
              uint8_t out[PATIENT_SHA256_BYTES])
{
    pt_pieces s = {0};
    patient_err err;

    if (j > len / PT_CHUNK_SIZE)
        return PATIENT_ERR_ARG;
    if ((err = pieces_marked(data, len, h, &s)) == PATIENT_OK) {
        pt_chunk_job job = {.len = len, .want = &j, .nwant = 1,
                            .kept = (uint8_t (*)[PATIENT_SHA256_BYTES])out};
        err = pt_chunk_walk_pieces(&s, &job, NULL);
    }
    pt_pieces_free(&s);
    return err;
}

patient_err
pt_pieces_holes(const pt_pieces *s, pt_holes *h)
{
    size_t off = 0;
    patient_err err;

    *h = (pt_holes){0};
    for (size_t i = 0; i < s->n; off += s->v[i++].len)
        if (s->v[i].owner >= 0 &&
            (err = pt_holes_add(h, off, s->v[i].len, (unsigned)s->v[i].owner)) != PATIENT_OK) {
            pt_holes_free(h);
            return err;
        }
    return PATIENT_OK;
}

patient_err
pt_map_forward(const patient_change *c, const pt_holes *in, pt_holes *out)
{
    size_t ip = 0, op = 0, hi = 0;
    patient_err err;

    *out = (pt_holes){0};
    for (size_t k = 0; k <= c->nedits; k++) {
        const patient_edit *e = k < c->nedits ? &c->edits[k] : NULL;
        size_t keep = (e ? e->offset : c->in.size) - ip;
        /* holes_move maps [ip, ip+keep) of the input to op in the output. */
        if ((err = holes_move(in, &hi, ip, keep, op, out)) != PATIENT_OK)
            goto fail;
        ip += keep;
        op += keep;
        if (e == NULL)
            break;
        op += e->insert_len;
        ip += e->delete_len;
    }
    return PATIENT_OK;
fail:
    pt_holes_free(out);
    return err;
}

patient_err
pt_holes_chunks(const pt_holes *h, unsigned owner, uint64_t **idx, size_t *n)
{
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;

    *idx = NULL;
    *n = 0;
    for (size_t i = 0; i < h->n; i++) {
        uint64_t a, b;
        if (h->h[i].owner != owner)
            continue;
        a = h->h[i].off / PT_CHUNK_SIZE;
        b = (h->h[i].off + h->h[i].len - 1) / PT_CHUNK_SIZE;
        for (uint64_t j = a; j <= b; j++) {
            if (cnt && v[cnt - 1] >= j)
                continue; /* holes are sorted: only the last can repeat */
            if (cnt == cap) {
                size_t nc = cap ? 2 * cap : 16;
                uint64_t *p = realloc(v, nc * sizeof *p);
                if (p == NULL) {
                    free(v);
                    return PATIENT_ERR_NOMEM;
                }
                v = p;
                cap = nc;
            }
            v[cnt++] = j;
        }
    }
    *idx = v;
    *n = cnt;
    return PATIENT_OK;
}

/* All chunks touched by any hole, with each leaf taken from the hop that
 * owns a hole there (the first such hop when several do). */
static patient_err
known_from_chunks(const pt_holes *h, const patient_change *const *hops, size_t nhops,
                  uint64_t **idx, uint8_t (**val)[PATIENT_SHA256_BYTES], size_t *n)
{
    uint64_t *all = NULL;
    uint8_t (*v)[PATIENT_SHA256_BYTES] = NULL;
    size_t cnt = 0;
    patient_err err = PATIENT_OK;

    *idx = NULL;
    *val = NULL;
    *n = 0;
    if (h->n == 0)
        return PATIENT_OK;
    /* At most one chunk per hole plus one per 4 KiB of hole. */
    {
        size_t cap = 0;
        for (size_t i = 0; i < h->n; i++)
            cap += h->h[i].len / PT_CHUNK_SIZE + 2;
        if ((all = malloc(cap * sizeof *all)) == NULL || (v = malloc(cap * sizeof *v)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < h->n; i++) {
        const patient_change *c = h->h[i].owner < nhops ? hops[h->h[i].owner] : NULL;
        uint64_t a = h->h[i].off / PT_CHUNK_SIZE, b = (h->h[i].off + h->h[i].len - 1) / PT_CHUNK_SIZE;
        for (uint64_t j = a; j <= b; j++) {
            size_t lo = 0, hi;
            if (cnt && all[cnt - 1] >= j)
                continue;
            if (c == NULL) {
                err = PATIENT_ERR_NOT_FOUND;
                goto out;
            }
            hi = c->nchunks;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (c->chunk_idx[mid] < j)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo == c->nchunks || c->chunk_idx[lo] != j) {
                err = PATIENT_ERR_NOT_FOUND;
                goto out;
            }
            all[cnt] = j;
            memcpy(v[cnt++], c->chunk_val[lo], PATIENT_SHA256_BYTES);
        }
    }
    *idx = all;
    *val = v;
    *n = cnt;
    all = NULL;
    v = NULL;
out:
    free(all);
    free(v);
    return err;
}

patient_err
pt_chunk_leaves_for_hop(const uint8_t *in, size_t in_len, const patient_change *const *prev,
                        size_t nprev, const patient_edit *del, size_t ndel, uint64_t **idx,
                        uint8_t (**val)[PATIENT_SHA256_BYTES],
                        uint8_t (**kept)[PATIENT_SHA256_BYTES], size_t *n)
{
    pt_holes cur = {0}, next = {0};
    pt_bigbuf bufs[2] = {{0}, {0}};
    int which = 0;
    uint8_t (*kv)[PATIENT_SHA256_BYTES] = NULL;
    const uint8_t *data = in;
    size_t len = in_len;
    uint64_t *kidx = NULL, *widx = NULL;
    uint8_t (*kval)[PATIENT_SHA256_BYTES] = NULL, (*wval)[PATIENT_SHA256_BYTES] = NULL;
    size_t nk = 0, nw = 0;
    patient_err err;

    *idx = NULL;
    *val = NULL;
    *kept = NULL;
    *n = 0;
    /* The new hop's own withheld bytes are marked (owner nprev) but kept:
     * it has them, and needs them to compute its leaves. */
    for (size_t i = 0; i < ndel; i++)
        if ((err = pt_holes_add(&cur, del[i].offset, del[i].delete_len, (unsigned)nprev)))
            goto out;
    for (size_t k = nprev; k-- > 0;) {
        if (len != prev[k]->out.size) {
            err = PATIENT_ERR_NOT_FOUND;
            goto out;
        }
        if ((err = pt_undo_holes(prev[k], (unsigned)k, data, len, &cur, 0, &bufs[which],
                                 &next)))
            goto out;
        /* pt_undo_holes copies kept bytes, own-hole bytes included. */
        data = bufs[which].p;
        which ^= 1;
        len = prev[k]->in.size;
        pt_holes_free(&cur);
        cur = next;
        next = (pt_holes){0};
    }
    if ((err = pt_holes_chunks(&cur, (unsigned)nprev, &widx, &nw)) || nw == 0)
        goto out;
    {
        /* Earlier hops' holes: their leaves, as they signed them. */
        pt_holes others = {0};
        for (size_t i = 0; i < cur.n; i++)
            if (cur.h[i].owner != nprev &&
                (err = pt_holes_add(&others, cur.h[i].off, cur.h[i].len, cur.h[i].owner))) {
                pt_holes_free(&others);
                goto out;
            }
        err = known_from_chunks(&others, prev, nprev, &kidx, &kval, &nk);
        pt_holes_free(&others);
        if (err)
            goto out;
    }
    if ((wval = malloc(nw * sizeof *wval)) == NULL || (kv = malloc(nw * sizeof *kv)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    /* One walk for the leaves and the kept hashes of every chunk (widx is
     * sorted and distinct), over data with the holes marked: the chain
     * reads their bytes (zeros where withheld, as pt_undo_holes left
     * them), the kept hashes leave them out. */
    {
        pt_pieces s = {0};
        pt_chunk_job job = {.len = len, .known = kidx,
                            .known_val = (const uint8_t (*)[PATIENT_SHA256_BYTES])kval,
                            .nknown = nk, .want = widx, .leaf = wval, .kept = kv, .nwant = nw};
        if ((err = pieces_marked(data, len, &cur, &s)) == PATIENT_OK)
            err = pt_chunk_walk_pieces(&s, &job, NULL);
        pt_pieces_free(&s);
        if (err)
            goto out;
    }
    *idx = widx;
    *val = wval;
    *kept = kv;
    *n = nw;
    widx = NULL;
    wval = NULL;
    kv = NULL;
out:
    pt_holes_free(&cur);
    pt_holes_free(&next);
    pt_bigbuf_free(&bufs[0]);
    pt_bigbuf_free(&bufs[1]);
    free(kv);
    free(kidx);
    free(kval);
    free(widx);
    free(wval);
    return err;
}

patient_err
pt_chunk_known(const pt_holes *h, const patient_change *const *hops, size_t nhops, uint64_t **idx,
               uint8_t (**val)[PATIENT_SHA256_BYTES], size_t *n)
{
    return known_from_chunks(h, hops, nhops, idx, val, n);
}
