/* Internal helpers: buffers (growing, and big bodies' huge-page scratch),
 * safe file I/O, base64, capped JSON. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include <patient/change.h>
#include <patient/hash.h>
#include "time_int.h"
#include "util.h"

patient_err
pt_buf_reserve(pt_buf *b, size_t extra)
{
    size_t need, ncap;
    uint8_t *p;

    if (extra > SIZE_MAX - b->len - 1)
        return PATIENT_ERR_TOO_LARGE;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return PATIENT_OK;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if ((p = realloc(b->data, ncap)) == NULL)
        return PATIENT_ERR_NOMEM;
    b->data = p;
    b->cap = ncap;
    return PATIENT_OK;
}

patient_err
pt_buf_reserve_big(pt_buf *b, size_t n)
{
    const size_t huge = (size_t)2 << 20;
    size_t cap;
    void *p;

    if (b->len != 0 || n < huge / 4 || n > SIZE_MAX - huge || n < b->cap)
        return pt_buf_reserve(b, n);
    cap = (n + 1 + huge - 1) & ~(huge - 1); /* + 1: pt_buf's terminating NUL */
    if (posix_memalign(&p, huge, cap) != 0)
        return PATIENT_ERR_NOMEM;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, cap, MADV_HUGEPAGE); /* a hint: fine if refused */
#endif
    free(b->data); /* empty */
    b->data = p;
    b->cap = cap;
    return PATIENT_OK;
}

/* Buffers of HUGE_PAGE / 4 and more are mapped on their own, in whole huge
 * pages, and asked for transparent huge pages: a 4 KiB page fault costs
 * about 1.3 us here (a virtual machine), 1,280 of them for a 5 MB body,
 * while zeroing a 2 MiB page takes about 0.17 ms: about even at 512 KiB. */
#define HUGE_PAGE ((size_t)2 * 1024 * 1024)

void
pt_bigbuf_free(pt_bigbuf *b)
{
    if (b == NULL)
        return;
    if (b->mapped)
        munmap(b->p, b->cap);
    else
        free(b->p);
    b->p = NULL;
    b->cap = 0;
    b->mapped = 0;
}

patient_err
pt_bigbuf_reserve(pt_bigbuf *b, size_t n)
{
    size_t cap, len, head;
    uint8_t *m;

    if (n <= b->cap && b->p)
        return PATIENT_OK;
    pt_bigbuf_free(b);
    if (n > PATIENT_MAX_BODY)
        return PATIENT_ERR_TOO_LARGE;
    if (n < HUGE_PAGE / 4) {
        if ((b->p = malloc(n ? n : 1)) == NULL)
            return PATIENT_ERR_NOMEM;
        b->cap = n;
        return PATIENT_OK;
    }
    /* Whole huge pages, on a huge-page boundary: map one page more, then
     * give back the ends. */
    cap = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    len = cap + HUGE_PAGE;
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return PATIENT_ERR_NOMEM;
    head = (HUGE_PAGE - ((uintptr_t)m & (HUGE_PAGE - 1))) & (HUGE_PAGE - 1);
    if (head)
        munmap(m, head);
    if (len - head - cap)
        munmap(m + head + cap, len - head - cap);
    b->p = m + head;
    b->cap = cap;
    b->mapped = 1;
#ifdef MADV_HUGEPAGE
    (void)madvise(b->p, cap, MADV_HUGEPAGE); /* a hint: fine if refused */
#endif
    return PATIENT_OK;
}

patient_err
pt_buf_append(pt_buf *b, const void *p, size_t n)
{
    patient_err err;

    if ((err = pt_buf_reserve(b, n)) != PATIENT_OK)
        return err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return PATIENT_OK;
}

patient_err
pt_buf_append_safe(pt_buf *b, const char *s)
{
    size_t start = b->len;
    patient_err err;

    if (s == NULL)
        return PATIENT_OK;
    if ((err = pt_buf_append(b, s, strlen(s))) != PATIENT_OK)
        return err;
    for (size_t i = start; i < b->len; i++)
        if (b->data[i] < 0x20 || b->data[i] == 0x7f)
            b->data[i] = '?';
    return PATIENT_OK;
}

patient_err
pt_buf_vappendf(pt_buf *b, const char *fmt, va_list ap)
{
    va_list aq;
    int n;
    patient_err err;

    va_copy(aq, ap);
    n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        return PATIENT_ERR_ARG;
    if ((err = pt_buf_reserve(b, (size_t)n)) != PATIENT_OK)
        return err;
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return PATIENT_OK;
}

patient_err
pt_buf_appendf(pt_buf *b, const char *fmt, ...)
{
    va_list ap;
    patient_err err;

    va_start(ap, fmt);
    err = pt_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return err;
}

static void detail_vset(char **detail, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
detail_vset(char **detail, const char *fmt, va_list ap)
{
    pt_buf b = {0};

    if (pt_buf_vappendf(&b, fmt, ap) == PATIENT_OK)
        *detail = (char *)b.data;
    else
        pt_buf_free(&b);
}

void
pt_detail_vfirst(char **detail, const char *fmt, va_list ap)
{
    if (detail != NULL && *detail == NULL)
        detail_vset(detail, fmt, ap);
}

void
pt_detail_first(char **detail, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pt_detail_vfirst(detail, fmt, ap);
    va_end(ap);
}

patient_err
pt_detail_err(char **detail, patient_err e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pt_detail_vfirst(detail, fmt, ap);
    va_end(ap);
    return e;
}

size_t
pt_utf8_prefix(const char *s, size_t max)
{
    size_t n = strnlen(s, max), k;

    if (n < max || s[n] == '\0')
        return n;
    /* s[n] is the first byte left out: while it continues a character,
     * that character is left out too (at most 3 bytes back). */
    for (k = 0; k < 3 && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; k++)
        n--;
    return n;
}

void
pt_detail_set(char **detail, const char *fmt, ...)
{
    va_list ap;

    if (detail == NULL)
        return;
    free(*detail);
    *detail = NULL;
    va_start(ap, fmt);
    detail_vset(detail, fmt, ap);
    va_end(ap);
}

void
pt_buf_free(pt_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* A pipe's or terminal's first read size: pt_buf's NUL makes the buffer
 * 64 KiB. */
#define READ_START (64u * 1024 - 1)

/* pt_read_fd, or with truncated its head: the first max bytes, and
 * *truncated set when there were more. known is fd's fstat when the caller
 * has it (NULL: fstat here). Reads go straight into the result, with no
 * stack chunk to copy from: a body on stdin may be 64 MiB. */
static patient_err
read_fd(int fd, const struct stat *known, size_t max, uint8_t **out, size_t *len, int *truncated)
{
    pt_buf b = {0};
    struct stat st;
    patient_err err;
    uint8_t probe = 0;
    size_t room;
    ssize_t n;

    *out = NULL;
    *len = 0;
    if (known == NULL && fstat(fd, &st) == 0)
        known = &st;
    /* Size the buffer once for regular files so no realloc leaves stray
     * copies of (possibly secret) contents in freed memory. */
    if (known != NULL && S_ISREG(known->st_mode) && (uintmax_t)known->st_size <= max)
        err = pt_buf_reserve(&b, (size_t)known->st_size);
    else if (known != NULL && S_ISREG(known->st_mode) && truncated != NULL)
        err = pt_buf_reserve(&b, max); /* only the head of a larger file */
    else
        err = pt_buf_reserve(&b, max < READ_START ? max : READ_START);
    if (err != PATIENT_OK)
        goto out;
    for (;;) {
        room = b.cap - 1 - b.len;
        if (room > max - b.len)
            room = max - b.len;
        if (room == 0) {
            /* Full, or at the cap: one byte says whether there is more,
             * so a file that fills its buffer exactly is not regrown. */
            n = read(fd, &probe, 1);
        } else {
            n = read(fd, b.data + b.len, room < (size_t)SSIZE_MAX ? room : (size_t)SSIZE_MAX);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = PATIENT_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        if (room > 0) {
            b.len += (size_t)n;
            continue;
        }
        if (b.len == max) {
            if (truncated == NULL) {
                err = PATIENT_ERR_TOO_LARGE;
                goto out;
            }
            *truncated = 1;
            break;
        }
        if ((err = pt_buf_append(&b, &probe, 1)) != PATIENT_OK)
            goto out;
    }
    b.data[b.len] = 0; /* nothing else writes the terminator */
    *out = b.data;
    *len = b.len;
    b.data = NULL;
out:
    sodium_memzero(&probe, sizeof probe);
    if (b.data != NULL)
        sodium_memzero(b.data, b.cap);
    pt_buf_free(&b);
    return err;
}

patient_err
pt_read_fd(int fd, size_t max, uint8_t **out, size_t *len)
{
    return read_fd(fd, NULL, max, out, len, NULL);
}

patient_err
pt_open_regular(const char *path, size_t max, int *fdp, struct stat *stp)
{
    struct stat st;
    int fd;

    *fdp = -1;
    if (path == NULL)
        return PATIENT_ERR_ARG;
    /* O_NONBLOCK so opening a FIFO cannot hang before we can refuse it. */
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0)
        return errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH
                              : errno == ENOENT ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_IO;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return PATIENT_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return PATIENT_ERR_UNSAFE_PATH;
    }
    if ((uintmax_t)st.st_size > max) {
        close(fd);
        return PATIENT_ERR_TOO_LARGE;
    }
    /* Regular file: blocking reads are fine again. */
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (stp)
        *stp = st;
    *fdp = fd;
    return PATIENT_OK;
}

/* pt_read_file, or with truncated pt_read_file_head: "-" is standard
 * input; a named file must be a regular file, of at most max bytes unless
 * only its head is read. */
static patient_err
read_path(const char *path, size_t max, uint8_t **out, size_t *len, int *truncated)
{
    struct stat st;
    patient_err err;
    int fd;

    *out = NULL;
    *len = 0;
    if (truncated != NULL)
        *truncated = 0;
    if (path == NULL)
        return PATIENT_ERR_ARG;
    if (strcmp(path, "-") == 0)
        return read_fd(STDIN_FILENO, NULL, max, out, len, truncated);
    if ((err = pt_open_regular(path, truncated != NULL ? SIZE_MAX : max, &fd, &st)) != PATIENT_OK)
        return err;
    err = read_fd(fd, &st, max, out, len, truncated);
    close(fd);
    return err;
}

patient_err
pt_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
    return read_path(path, max, out, len, NULL);
}

patient_err
pt_read_file_head(const char *path, size_t max, uint8_t **out, size_t *len, int *truncated)
{
    return read_path(path, max, out, len, truncated);
}

patient_err
pt_fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd;

    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        if ((size_t)(slash - path) >= sizeof dir) {
            errno = ENAMETOOLONG; /* as open would have said */
            return PATIENT_ERR_IO;
        }
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = 0;
    }
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return PATIENT_ERR_IO;
    /* Not checked: some file systems refuse fsync on a folder (EINVAL),
     * and the entry is as durable as they make it. */
    (void)fsync(fd);
    close(fd);
    return PATIENT_OK;
}

patient_err
pt_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return PATIENT_ERR_IO;
        p += w;
        len -= (size_t)w;
    }
    return PATIENT_OK;
}

patient_err
pt_write_atomic(const char *path, const void *data, size_t len, unsigned mode, int flags)
{
    char tmp[PATH_MAX];
    const uint8_t *p = data;
    int fd = -1, n, saved;
    patient_err err = PATIENT_OK;
    struct stat st;

    if (strcmp(path, "-") == 0)
        return pt_write_all(STDOUT_FILENO, p, len);
    /* The refusals that are not a failed system call set the errno that
     * names them too, for a caller's message. */
    if (lstat(path, &st) == 0) {
        if (flags & PT_WRITE_EXCL) {
            errno = EEXIST;
            return PATIENT_ERR_EXISTS;
        }
        if (!S_ISREG(st.st_mode)) {
            /* A FIFO, socket or device is not a file we replace. */
            errno = S_ISDIR(st.st_mode) ? EISDIR : S_ISLNK(st.st_mode) ? ELOOP : ENOTSUP;
            return PATIENT_ERR_UNSAFE_PATH;
        }
    }
    n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return PATIENT_ERR_ARG;
    }
    if ((fd = mkstemp(tmp)) < 0)
        return PATIENT_ERR_IO;
    if (fchmod(fd, mode) != 0) {
        err = PATIENT_ERR_IO;
        goto fail;
    }
    if ((err = pt_write_all(fd, p, len)) != PATIENT_OK)
        goto fail;
    if (!(flags & PT_WRITE_NOSYNC) && fsync(fd) != 0) {
        err = PATIENT_ERR_IO;
        goto fail;
    }
    n = close(fd);
    fd = -1;
    if (n != 0) {
        err = PATIENT_ERR_IO;
        goto fail;
    }
    if (flags & PT_WRITE_EXCL) {
        /* link() fails if the target appeared meanwhile: never clobber. */
        if (link(tmp, path) != 0) {
            err = errno == EEXIST ? PATIENT_ERR_EXISTS : PATIENT_ERR_IO;
            goto fail;
        }
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        err = PATIENT_ERR_IO;
        goto fail;
    }
    /* The complete, fsynced file is in place under its name now: from here
     * on a failure would report a write that happened (and a rerun would
     * find the name taken). So the folder's sync is best effort: a folder
     * we may write but not read (0333) or no descriptor left (EMFILE) only
     * loses the name's durability across a crash, as a failing fsync of
     * the folder does. */
    if (!(flags & PT_WRITE_NOSYNC))
        (void)pt_fsync_dir_of(path);
    return PATIENT_OK;
fail:
    /* errno stays as the failed call left it, for the caller's message. */
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return err;
}

patient_err
pt_b64_encode(const uint8_t *in, size_t len, int url, char **out)
{
    int v = url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL;
    size_t n;

    if (len > (SIZE_MAX / 4) * 3 - 4)
        return PATIENT_ERR_TOO_LARGE;
    n = sodium_base64_encoded_len(len, v);
    if ((*out = malloc(n)) == NULL)
        return PATIENT_ERR_NOMEM;
    sodium_bin2base64(*out, n, in, len, v);
    return PATIENT_OK;
}

patient_err
pt_b64_decode(const char *in, size_t inlen, int url, uint8_t **out, size_t *outlen)
{
    int v = url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL;
    size_t cap = inlen / 4 * 3 + 3;
    const char *end = NULL;

    *out = NULL;
    *outlen = 0;
    if ((*out = malloc(cap + 1)) == NULL)
        return PATIENT_ERR_NOMEM;
    if (sodium_base642bin(*out, cap, in, inlen, NULL, outlen, &end, v) != 0 ||
        end != in + inlen) {
        free(*out);
        *out = NULL;
        *outlen = 0;
        return PATIENT_ERR_BASE64;
    }
    (*out)[*outlen] = 0;
    return PATIENT_OK;
}

patient_err
pt_b64_decode_exact(const char *in, size_t inlen, int url, uint8_t *out, size_t want)
{
    int v = url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL;
    size_t got = 0;
    const char *end = NULL;

    if (sodium_base642bin(out, want, in, inlen, NULL, &got, &end, v) != 0 ||
        end != in + inlen || got != want)
        return PATIENT_ERR_BASE64;
    return PATIENT_OK;
}

/* cJSON keeps only a double, so whether the text said 48 or 48.0 is lost
 * after parsing. pt_json_parse marks every number item whose literal is
 * not an integer with this bit of cJSON's type field (cJSON itself looks
 * only at the low byte and at bits 8 and 9). */
#define PT_JSON_NOT_INT (1 << 12)

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int
pt_decimal_parse(const char *s, size_t n, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;

    if (n == 0 || (s[0] == '0' && n > 1))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        /* x * 10 + d <= max, written so that nothing wraps (a max
         * below 9 too) */
        if (d > 9 || d > max || x > (max - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

int
pt_json_number_token(const char *s, size_t len, size_t *toklen, int *is_int)
{
    size_t i = 0;
    int integer = 1, neg = 0;

    if (i < len && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= len || !is_digit(s[i]))
        return -1;
    if (s[i] == '0') {
        i++;
        if (i < len && is_digit(s[i]))
            return -1; /* leading zero */
        if (neg && (i >= len || (s[i] != '.' && s[i] != 'e' && s[i] != 'E')))
            integer = 0; /* -0 */
    } else {
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && s[i] == '.') {
        integer = 0;
        if (++i >= len || !is_digit(s[i]))
            return -1;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        integer = 0;
        if (++i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return -1;
        while (i < len && is_digit(s[i]))
            i++;
    }
    /* A number ends at a delimiter; "1x" or "1-2" is not a number. */
    if (i < len && (is_digit(s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                    s[i] == '+' || s[i] == '-'))
        return -1;
    *toklen = i;
    *is_int = integer;
    return 0;
}

/* Next number token outside strings at or after *pos; 0 and its kind, or -1
 * when there is none or it is not a valid number. */
static int
next_number(const char *s, size_t len, size_t *pos, int *is_int)
{
    size_t i = *pos, n;
    int instr = 0;

    for (; i < len; i++) {
        char c = s[i];
        if (instr) {
            if (c == '\\')
                i++;
            else if (c == '"')
                instr = 0;
        } else if (c == '"') {
            instr = 1;
        } else if (c == '-' || is_digit(c)) {
            if (pt_json_number_token(s + i, len - i, &n, is_int) != 0)
                return -1;
            *pos = i + n;
            return 0;
        }
    }
    return -1;
}

/* Walk the parsed tree in document order (the order cJSON read it), pairing
 * each number item with the next number token in the text. */
static patient_err
mark_numbers(cJSON *o, const char *s, size_t len, size_t *pos)
{
    for (; o; o = o->next) {
        if (cJSON_IsNumber(o)) {
            int is_int = 0;
            if (next_number(s, len, pos, &is_int) != 0)
                return PATIENT_ERR_JSON;
            if (!is_int)
                o->type |= PT_JSON_NOT_INT;
        } else if ((cJSON_IsObject(o) || cJSON_IsArray(o)) &&
                   mark_numbers(o->child, s, len, pos) != PATIENT_OK) {
            return PATIENT_ERR_JSON;
        }
    }
    return PATIENT_OK;
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Refuse duplicate member names anywhere: JOSE libraries disagree on which
 * duplicate wins (RFC 7515 section 4), so accepting them invites parser
 * confusion over what was signed. Sort-and-compare keeps it O(n log n). */
static patient_err
json_no_dups(const cJSON *o, char **detail)
{
    const cJSON *c;
    size_t n = 0, i;
    char **names;
    patient_err err = PATIENT_OK;

    for (c = o ? o->child : NULL; c; c = c->next) {
        if ((err = json_no_dups(c, detail)) != PATIENT_OK)
            return err;
        n++;
    }
    if (!cJSON_IsObject(o) || n < 2)
        return PATIENT_OK;
    if ((names = malloc(n * sizeof *names)) == NULL)
        return PATIENT_ERR_NOMEM;
    for (i = 0, c = o->child; c; c = c->next)
        names[i++] = c->string;
    qsort(names, n, sizeof *names, name_cmp);
    for (i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            err = pt_detail_err(detail, PATIENT_ERR_JSON, "not strict JSON (\"%.*s\" given twice)",
                                PT_QUOTE(names[i]));
            break;
        }
    free(names);
    return err;
}

patient_err
pt_json_parse(const char *s, size_t len, cJSON **out)
{
    return pt_json_parse_max(s, len, PT_JSON_MAX_BYTES, out);
}

patient_err
pt_json_parse_max(const char *s, size_t len, size_t max, cJSON **out)
{
    return pt_json_parse_detail(s, len, max, out, NULL);
}

/* cJSON's allocations go through these once a program asks
 * (patient_json_track_nomem, error.h), so that a parse that returned NULL
 * can tell a failed allocation from bad text: the note is per thread (the
 * monitor's workers parse at once). Never set on load: cJSON's hooks are
 * process-wide and a library or module must not change them. */
static void *(*json_alloc_fn)(size_t) = malloc;
static _Thread_local int json_nomem;

static void *
json_alloc(size_t n)
{
    void *p = json_alloc_fn(n);

    if (p == NULL)
        json_nomem = 1;
    return p;
}

void
pt_json_track_nomem_with(void *(*alloc_fn)(size_t))
{
    /* free_fn is free: cJSON's output reaches callers' free() and
     * report.c's, so only malloc-compatible memory may come from here. */
    cJSON_Hooks h = {.malloc_fn = json_alloc, .free_fn = free};

    json_alloc_fn = alloc_fn ? alloc_fn : malloc;
    cJSON_InitHooks(&h);
}

PATIENT_EXPORT void
patient_json_track_nomem(void)
{
    pt_json_track_nomem_with(malloc);
}

void
pt_json_nomem_clear(void)
{
    json_nomem = 0;
}

int
pt_json_nomem(void)
{
    return json_nomem;
}

patient_err
pt_json_parse_lenient(const char *s, size_t len, const char **end, cJSON **out)
{
    /* NULL is cJSON's answer to bad text and to a failed allocation
     * alike: the note tells them apart. */
    json_nomem = 0;
    if ((*out = cJSON_ParseWithLengthOpts(s, len, end, 0)) != NULL)
        return PATIENT_OK;
    return json_nomem ? PATIENT_ERR_NOMEM : PATIENT_ERR_PARSE;
}

/* PATIENT_ERR_JSON, naming the rule the text broke. */
static patient_err
not_strict(char **detail, const char *why)
{
    return pt_detail_err(detail, PATIENT_ERR_JSON, "not strict JSON (%s)", why);
}

patient_err
pt_json_parse_detail(const char *s, size_t len, size_t max, cJSON **out, char **detail)
{
    size_t i;
    int depth = 0, instr = 0;
    const char *end = NULL;
    patient_err err;

    *out = NULL;
    if (s == NULL)
        return PATIENT_ERR_ARG;
    if (len > max)
        return pt_detail_err(detail, PATIENT_ERR_TOO_LARGE, "larger than %zu bytes", max);
    /* A byte-order mark is not JSON text (RFC 8259 section 8.1), and a
     * signed document must mean one thing: refused, not skipped. */
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        return not_strict(detail, "a byte-order mark");
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (instr) {
            if ((unsigned char)c < 0x20) /* raw control bytes must be escaped */
                return not_strict(detail, "a control byte in a string");
            if (c == '\\') {
                /* \u0000 would silently truncate the C string cJSON returns. */
                if (len - i >= 6 && memcmp(s + i + 1, "u0000", 5) == 0)
                    return not_strict(detail, "\\u0000 in a string");
                i++;
            } else if (c == '"') {
                instr = 0;
            }
        } else if (c == '"') {
            instr = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > PT_JSON_MAX_DEPTH)
                return pt_detail_err(detail, PATIENT_ERR_JSON,
                                     "not strict JSON (nested deeper than %d)", PT_JSON_MAX_DEPTH);
        } else if (c == '}' || c == ']') {
            depth--;
        } else if ((unsigned char)c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            /* cJSON skips every byte up to 0x20 as blank; JSON allows four. */
            return not_strict(detail, "a control byte outside strings");
        }
    }
    json_nomem = 0;
    *out = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (*out == NULL)
        return json_nomem ? PATIENT_ERR_NOMEM : not_strict(detail, "malformed");
    /* Only trailing whitespace may follow the value. */
    while (end < s + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end != s + len) {
        cJSON_Delete(*out);
        *out = NULL;
        return not_strict(detail, "more after the value");
    }
    if ((err = json_no_dups(*out, detail)) != PATIENT_OK) {
        cJSON_Delete(*out);
        *out = NULL;
        return err;
    }
    {
        /* Numbers: valid JSON grammar only (cJSON takes what strtod takes:
         * 01, 1., .5), and remember which were not integer literals. */
        size_t pos = 0;
        int dummy;
        if (mark_numbers(*out, s, len, &pos) != PATIENT_OK || next_number(s, len, &pos, &dummy) == 0) {
            cJSON_Delete(*out);
            *out = NULL;
            return not_strict(detail, "a number outside JSON's grammar");
        }
    }
    return PATIENT_OK;
}

const char *
pt_json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int
pt_json_int(const cJSON *o, const char *key, long long *out)
{
    return pt_json_item_int(cJSON_GetObjectItemCaseSensitive(o, key), out);
}

patient_err
pt_json_time(const cJSON *o, const char *key, time_t *t)
{
    const char *s = pt_json_str(o, key);
    char back[PATIENT_TIME_BYTES];

    if (s == NULL || strlen(s) != PATIENT_TIME_BYTES - 1 ||
        pt_time_parse_rfc3339(s, t) != PATIENT_OK)
        return PATIENT_ERR_PARSE;
    pt_time_format(*t, back);
    return strcmp(back, s) == 0 ? PATIENT_OK : PATIENT_ERR_PARSE;
}

int
pt_json_item_int(const cJSON *v, long long *out)
{
    double d;

    if (!cJSON_IsNumber(v) || (v->type & PT_JSON_NOT_INT))
        return -1;
    d = v->valuedouble;
    if (d != d || d < -9007199254740991.0 || d > 9007199254740991.0 || d != (double)(long long)d)
        return -1;
    *out = (long long)d;
    return 0;
}

int
pt_json_put(cJSON *o, const char *name, cJSON *item)
{
    if (item != NULL && cJSON_AddItemToObject(o, name, item))
        return 1;
    cJSON_Delete(item);
    return 0;
}

int
pt_json_push(cJSON *a, cJSON *item)
{
    if (item != NULL && cJSON_AddItemToArray(a, item))
        return 1;
    cJSON_Delete(item);
    return 0;
}

cJSON *
pt_json_strings(const char *const *v, size_t n)
{
    if (n == 0)
        return cJSON_CreateArray();
    return n > INT_MAX ? NULL : cJSON_CreateStringArray(v, (int)n);
}

patient_err
pt_json_print(const cJSON *o, char **out)
{
    *out = cJSON_PrintUnformatted(o);
    return *out ? PATIENT_OK : PATIENT_ERR_NOMEM;
}

size_t
pt_json_compact_len(const cJSON *o, size_t cap)
{
    char num[64];
    size_t n = 0, k;

    switch (o->type & 0xFF) {
    case cJSON_NULL:
    case cJSON_True:
        return 4;
    case cJSON_False:
        return 5;
    case cJSON_Number:
        /* Numbers as cJSON's own printer writes them (its %d, %1.15g or
         * %1.17g choice), one short item at a time. */
        if (!cJSON_PrintPreallocated((cJSON *)o, num, (int)sizeof num, 0))
            return SIZE_MAX;
        return strlen(num);
    case cJSON_String:
        return pt_json_str_len(o->valuestring ? o->valuestring : "", PT_JSON_ESC_SHORT);
    case cJSON_Raw:
        return o->valuestring ? strlen(o->valuestring) : SIZE_MAX;
    case cJSON_Array:
    case cJSON_Object:
        n = 2; /* the brackets */
        for (const cJSON *c = o->child; c && n <= cap; c = c->next) {
            if (cJSON_IsObject(o))
                n += pt_json_str_len(c->string ? c->string : "", PT_JSON_ESC_SHORT) + 1;
            if ((k = pt_json_compact_len(c, cap)) == SIZE_MAX)
                return SIZE_MAX;
            n += k + (c->next != NULL); /* the comma */
        }
        return n;
    default:
        return SIZE_MAX;
    }
}

/* mkdir -p, new folders 0700; the last one must end up a folder we own
 * that nobody else can write. */
patient_err
pt_mkdir_private(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);
    struct stat st;

    if (n == 0 || n >= sizeof tmp)
        return PATIENT_ERR_ARG;
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return PATIENT_ERR_IO;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return PATIENT_ERR_IO;
    if (stat(tmp, &st) != 0)
        return PATIENT_ERR_IO;
    if (!S_ISDIR(st.st_mode))
        return PATIENT_ERR_UNSAFE_PATH;
    if (st.st_uid != geteuid() || (st.st_mode & 022))
        return PATIENT_ERR_PERM;
    return PATIENT_OK;
}

patient_err
pt_opts_take(void *dst, size_t dstsize, const void *src)
{
    size_t size;

    memset(dst, 0, dstsize);
    if (src != NULL) {
        memcpy(&size, src, sizeof size);
        if (size == 0)
            size = dstsize;
        if (size < sizeof size || size > dstsize)
            return PATIENT_ERR_ARG;
        memcpy(dst, src, size);
    }
    memcpy(dst, &dstsize, sizeof dstsize);
    return PATIENT_OK;
}

patient_err
pt_xdg_path(const char *env, const char *home_rel, const char *tail, char **out)
{
    const char *x = getenv(env), *home = getenv("HOME");
    pt_buf b = {0};
    patient_err err;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if (x && x[0] == '/')
        err = pt_buf_appendf(&b, "%s/%s", x, tail);
    else if (home && home[0] == '/')
        err = pt_buf_appendf(&b, "%s/%s/%s", home, home_rel, tail);
    else
        return PATIENT_ERR_NOT_FOUND;
    if (err != PATIENT_OK) {
        pt_buf_free(&b);
        return err;
    }
    *out = (char *)b.data;
    return PATIENT_OK;
}

/* Whether byte c is written as it is in flags' form (needs no escape):
 * json_walk's test byte by byte. */
static inline int
json_plain(unsigned char c, unsigned flags)
{
    return c >= 0x20 && c != '"' && c != '\\' && !(c == 0x7f && (flags & PT_JSON_ESC_DEL));
}

/* Whether any of the eight bytes in w is not json_plain in flags' form:
 * a control byte (< 0x20), '"', '\\', or DEL with PT_JSON_ESC_DEL. The
 * exact tests for a zero byte and for a byte below 0x20 of "Bit Twiddling
 * Hacks" (haszero, hasless), so that a run of the usual bytes costs a few
 * operations per eight. */
static inline int
json_word_escapes(uint64_t w, unsigned flags)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\'), del = w ^ (ones * 0x7f);
    uint64_t t = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs);

    if (flags & PT_JSON_ESC_DEL)
        t |= (del - ones) & ~del;
    return (t & high) != 0;
}

/* The escape of byte c, one that is not json_plain, in flags' form into
 * esc: its length (2 or 6). */
static size_t
json_esc(unsigned char c, unsigned flags, char esc[6])
{
    static const char hexd[] = "0123456789abcdef", shortc[] = "\b\f\n\r\t", shorte[] = "bfnrt";
    const char *sc;

    esc[0] = '\\';
    esc[1] = (char)c;
    if (c == '"' || c == '\\')
        return 2;
    if (c < 0x20 && (flags & PT_JSON_ESC_SHORT) && (sc = memchr(shortc, c, sizeof shortc - 1))) {
        esc[1] = shorte[sc - shortc];
        return 2;
    }
    esc[1] = 'u';
    esc[2] = esc[3] = '0';
    esc[4] = hexd[c >> 4];
    esc[5] = hexd[c & 15];
    return 6;
}

/* The one walk of a string's len bytes in flags' form, for the writer
 * (b: appended to it, quoted) and for its count (*count, if not NULL:
 * its length, quotes included). Runs of bytes that need no escape are
 * passed over (and appended whole), eight bytes at a time where none of
 * them needs one (json_word_escapes), else byte by byte (json_plain),
 * without the call to json_esc: a descriptor's JWS (about 1.6 KB for a
 * 10 KB page) goes through here into every audit log line, and a hop
 * counts that line's strings before it signs. Inlined into both callers,
 * so the count's loop carries no writing. */
static inline patient_err
json_walk(const char *s, size_t len, unsigned flags, pt_buf *b, size_t *count)
{
    const unsigned char *p = (const unsigned char *)s, *run = p, *end = p + len;
    size_t n = 2 + len; /* the quotes, and every byte once */
    patient_err err;

    if (b && (err = pt_buf_append(b, "\"", 1)))
        return err;
    for (; p < end; p++) {
        char esc[6];
        size_t k;
        uint64_t w;
        while (end - p >= 8 && (memcpy(&w, p, 8), !json_word_escapes(w, flags)))
            p += 8;
        if (p == end)
            break;
        if (json_plain(*p, flags))
            continue;
        k = json_esc(*p, flags, esc);
        n += k - 1;
        if (b) {
            if ((err = pt_buf_append(b, run, (size_t)(p - run))) || (err = pt_buf_append(b, esc, k)))
                return err;
            run = p + 1;
        }
    }
    if (count)
        *count = n;
    if (b && ((err = pt_buf_append(b, run, (size_t)(p - run))) || (err = pt_buf_append(b, "\"", 1))))
        return err;
    return PATIENT_OK;
}

patient_err
pt_buf_put_json_strn(pt_buf *b, const char *s, size_t len, unsigned flags)
{
    /* The string's end is found first (strnlen, not a test per byte). */
    return json_walk(s, strnlen(s, len), flags, b, NULL);
}

size_t
pt_json_str_len(const char *s, unsigned flags)
{
    size_t n = 0;

    (void)json_walk(s, strlen(s), flags, NULL, &n);
    return n;
}

patient_err
pt_buf_put_json_str(pt_buf *b, const char *s)
{
    return pt_buf_put_json_strn(b, s, SIZE_MAX, PT_JSON_ESC_DEL);
}

patient_err
pt_buf_put_cjson_uint(pt_buf *b, uint64_t v)
{
    /* cJSON switches to %1.15g (an exponent) from 10^15 on. */
    if (v >= 1000000000000000ull)
        return PATIENT_ERR_TOO_LARGE;
    return pt_buf_put_u64(b, v);
}

char *
pt_put_u64(char *p, uint64_t v)
{
    char t[20];
    int n = 0;

    do
        t[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *p++ = t[--n];
    return p;
}

patient_err
pt_buf_put_u64(pt_buf *b, uint64_t v)
{
    char d[20];

    return pt_buf_append(b, d, (size_t)(pt_put_u64(d, v) - d));
}

/* A table encoder, not libsodium's constant-time one: what goes through
 * here is public (a descriptor's inserted bytes, a JWS's header, payload
 * and signature), and sodium_bin2base64 took about 4 us for a 10 KB page's
 * 1.2 KB JWS payload, several times this. Secrets are not encoded here. */
patient_err
pt_buf_put_b64(pt_buf *b, const uint8_t *p, size_t n, int url)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                      urls[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *t = url ? urls : std;
    size_t m, i;
    char *o;
    patient_err err;

    if (n > (SIZE_MAX / 4) * 3 - 4)
        return PATIENT_ERR_TOO_LARGE;
    /* sodium_base64_encoded_len's length, without its NUL (pt_buf keeps
     * one after its bytes anyway): padded to 4 for the original variant,
     * the bare 4n/3 rounded up for the URL one */
    m = url ? n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0) : (n + 2) / 3 * 4;
    if ((err = pt_buf_reserve(b, m)))
        return err;
    o = (char *)b->data + b->len;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = t[v >> 18];
        *o++ = t[v >> 12 & 63];
        *o++ = t[v >> 6 & 63];
        *o++ = t[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = t[v >> 18];
        *o++ = t[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = t[v >> 6 & 63];
        else if (!url)
            *o++ = '=';
        if (!url)
            *o++ = '=';
    }
    *o = '\0';
    b->len += m;
    return PATIENT_OK;
}

void
pt_hex(const uint8_t *in, size_t len, char *out)
{
    sodium_bin2hex(out, 2 * len + 1, in, len);
}

int
pt_hex_eq(const char *hex, const uint8_t *in, size_t len)
{
    static const char digit[16] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++)
        if (hex[2 * i] != digit[in[i] >> 4] || hex[2 * i + 1] != digit[in[i] & 15])
            return 0;
    return hex[2 * len] == '\0';
}

patient_err
pt_unhex(const char *in, uint8_t *out, size_t len)
{
    size_t got = 0;
    const char *end = NULL;

    if (strlen(in) != 2 * len ||
        sodium_hex2bin(out, len, in, 2 * len, NULL, &got, &end) != 0 || got != len)
        return PATIENT_ERR_PARSE;
    return PATIENT_OK;
}

int
pt_memeq(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

int
pt_next_line(const char **p, const char *end, const char **line, size_t *n)
{
    const char *nl;

    if (*p >= end)
        return -1;
    nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *n = (size_t)((nl ? nl : end) - *p);
    if (*n > 0 && (*line)[*n - 1] == '\r')
        (*n)--;
    *p = nl ? nl + 1 : end;
    return 0;
}
