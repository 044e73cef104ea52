/* Internal helpers shared by the library modules. Not installed. */
#ifndef PATIENT_UTIL_H
#define PATIENT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include <patient/error.h>
#include <patient/hash.h>
#include <patient/key.h>

/* Caps on anything that comes from outside. */
#define PT_JSON_MAX_DEPTH 32
#define PT_JSON_MAX_BYTES (64u * 1024 * 1024)

/* Growable byte buffer. Free with pt_buf_free (accepts NULL contents). */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} pt_buf;

patient_err pt_buf_reserve(pt_buf *b, size_t extra);
patient_err pt_buf_append(pt_buf *b, const void *p, size_t n);
patient_err pt_buf_appendf(pt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s (NULL: nothing) with each control byte (below 0x20) and DEL as '?':
 * how a string from a log or an artefact, which is not ours, is rendered
 * for a terminal, so it cannot move the cursor or retitle the window. */
patient_err pt_buf_append_safe(pt_buf *b, const char *s);
patient_err pt_buf_vappendf(pt_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* pt_buf_reserve for a buffer that holds nothing yet and is about to take n
 * bytes (a body whose length was announced): from 512 KiB on, the buffer
 * is malloc'd on a 2 MiB boundary in whole 2 MiB pages with transparent
 * huge pages asked for, so that filling it costs a few page faults, not
 * one per 4 KiB (each ~1.3 us here, the kernel zeroing the page inside).
 * Still released with free (pt_buf_free). */
patient_err pt_buf_reserve_big(pt_buf *b, size_t n);

void pt_buf_free(pt_buf *b);

/* A scratch buffer for big bodies. Buffers of 512 KiB and more are mapped
 * on their own, in whole 2 MiB pages, with transparent huge pages asked for
 * (far fewer page faults); smaller ones come from malloc. Not for memory
 * handed to callers who free(). Capped at PATIENT_MAX_BODY (change.h). */
typedef struct pt_bigbuf {
    uint8_t *p;
    size_t cap;
    int mapped; /* p came from mmap: release with munmap */
} pt_bigbuf;

/* Room for n bytes (at most PATIENT_MAX_BODY, else TOO_LARGE); the old
 * contents are dropped, never copied. */
patient_err pt_bigbuf_reserve(pt_bigbuf *b, size_t n);
/* Release b's memory and zero it; accepts NULL. */
void pt_bigbuf_free(pt_bigbuf *b);

/* Read a whole regular file (refusing symlinks, devices and FIFOs) of at
 * most max bytes. *out is malloc'd and NUL-terminated (not counted in *len).
 * path "-" reads stdin. */
patient_err pt_read_file(const char *path, size_t max, uint8_t **out, size_t *len);
/* The same for a file of any size: its first max bytes, with *truncated
 * set to 1 when there were more (0 otherwise). */
patient_err pt_read_file_head(const char *path, size_t max, uint8_t **out, size_t *len,
                              int *truncated);
/* Open path read-only for a regular file of at most max bytes, refusing
 * symlinks (UNSAFE_PATH), devices/FIFOs (UNSAFE_PATH). *st (may be NULL)
 * gets its fstat. Caller closes *fd. */
patient_err pt_open_regular(const char *path, size_t max, int *fd, struct stat *st);
/* Read fd to EOF, at most max bytes (TOO_LARGE). Any partial result is
 * wiped, and a regular file's buffer is sized once (never regrown, so no
 * stray copy is left in freed memory): fit for key files. */
patient_err pt_read_fd(int fd, size_t max, uint8_t **out, size_t *len);

/* Write atomically: temp file in the same folder, fsync, rename, fsync the
 * folder (best effort: once the name is in place the write has happened,
 * and a folder that cannot be opened for its fsync is not a failure).
 * With PT_WRITE_EXCL an existing file is never replaced
 * (PATIENT_ERR_EXISTS). mode applies to the new file (e.g. 0600). An
 * existing path that is not a regular file is PATIENT_ERR_UNSAFE_PATH, a
 * path too long for its temporary name PATIENT_ERR_ARG. On failure errno
 * says why: EEXIST, EISDIR (a folder), ELOOP (a symlink), ENOTSUP (a FIFO,
 * socket or device), ENAMETOOLONG, or as the failed call left it. */
#define PT_WRITE_EXCL 1
/* Without fsync of file and folder: for many files made durable together
 * afterwards (syncfs) before anything names them. */
#define PT_WRITE_NOSYNC 2
patient_err pt_write_atomic(const char *path, const void *data, size_t len, unsigned mode, int flags);
/* fsync the folder holding path (its last '/' splits it; "." without one),
 * making a rename or link into it durable: OK, or IO with errno set when
 * the folder cannot be opened. The fsync's own result is not checked. */
patient_err pt_fsync_dir_of(const char *path);
/* Write all len bytes to fd, retrying short writes and EINTR: OK, or IO
 * with errno as write left it. */
patient_err pt_write_all(int fd, const void *data, size_t len);

/* base64 (standard, padded) and base64url (no padding). out is malloc'd,
 * NUL-terminated. Decoders reject whitespace and trailing garbage. */
patient_err pt_b64_encode(const uint8_t *in, size_t len, int url, char **out);
patient_err pt_b64_decode(const char *in, size_t inlen, int url, uint8_t **out, size_t *outlen);
/* Decode into a fixed buffer; fails unless exactly want bytes result. */
patient_err pt_b64_decode_exact(const char *in, size_t inlen, int url, uint8_t *out, size_t want);

/* Parse JSON with a byte cap (TOO_LARGE) and a nesting cap (JSON; checked
 * before cJSON sees it, so hostile nesting cannot exhaust the stack).
 * Also PATIENT_ERR_JSON: trailing non-blank bytes, raw control bytes or
 * \u0000 in strings, a NUL outside strings, duplicate member names. */
patient_err pt_json_parse(const char *s, size_t len, cJSON **out);
/* The same with another size cap (a native request carries a whole body). */
patient_err pt_json_parse_max(const char *s, size_t len, size_t max, cJSON **out);
/* pt_json_parse_max, and on refusal the rule the text broke, for a
 * reader's detail (pt_detail_first: kept if one is there; detail NULL:
 * none): "not strict JSON (...)" naming a member given twice, a control
 * byte, a byte-order mark, nesting too deep, ..., or "larger than N
 * bytes". The same codes; no detail for NOMEM or ARG. PATIENT_ERR_NOMEM
 * when an allocation failed in cJSON's parse and the program called
 * patient_json_track_nomem (error.h): never PATIENT_ERR_JSON then for
 * text that could not be read (without it, out of memory reads as
 * malformed). */
patient_err pt_json_parse_detail(const char *s, size_t len, size_t max, cJSON **out, char **detail);
/* cJSON's own lenient parse of len bytes of s, for the inspector, which
 * shows what other readers would take: no strictness rules, no caps,
 * trailing bytes allowed (end: where the value ended, or where the parse
 * failed, as cJSON's return_parse_end; NULL: not wanted). *out is the
 * document (new, caller frees; NULL unless PATIENT_OK). PATIENT_ERR_NOMEM
 * when an allocation failed in the parse (as pt_json_parse_detail: in a
 * program that called patient_json_track_nomem), else
 * PATIENT_ERR_PARSE for text that does not parse. */
patient_err pt_json_parse_lenient(const char *s, size_t len, const char **end, cJSON **out);
/* This thread's note of a failed cJSON allocation: cleared, and read
 * (nonzero: one failed since the clear). For the parsers above and the
 * tests. */
void pt_json_nomem_clear(void);
int pt_json_nomem(void);
/* patient_json_track_nomem with alloc_fn (malloc-compatible: what it
 * returns is freed with free; NULL: malloc) under the wrappers, for the
 * test binaries to fail allocations. Sets cJSON's hooks again on every
 * call (a test that reset them gets them back); not thread-safe, as
 * cJSON_InitHooks. */
void pt_json_track_nomem_with(void *(*alloc_fn)(size_t));
/* Typed getters: return NULL/-1 when absent or of another type. */
const char *pt_json_str(const cJSON *o, const char *key);
/* Integer member: 0 and *out set only when the member is a JSON number
 * written as an integer literal in the text pt_json_parse read (no
 * fraction, no exponent, not -0) within +-(2^53 - 1); -1 otherwise. Every
 * format that says "integer" reads it through here, so 48.0, 48e0 and
 * 47.99999999999999999 are refused as they are by strict readers
 * elsewhere. Numbers made in memory (cJSON_CreateNumber) count as
 * integers when integral. */
int pt_json_int(const cJSON *o, const char *key, long long *out);
/* The same test for one item (the member's value, an array element). */
int pt_json_item_int(const cJSON *v, long long *out);
/* Time member in the canonical form only, "YYYY-MM-DDTHH:MM:SSZ", exactly
 * what pt_time_format writes (so it reads back the same): the manifest's
 * issued and expires, Patient-Origin's date and expires. PATIENT_ERR_PARSE
 * for anything else (absent, not a string, fractions, offsets, @EPOCH). */
patient_err pt_json_time(const cJSON *o, const char *key, time_t *t);

/* The strict reader of a decimal count in text (a tree size, a
 * checkpoint's size line, the publish state's numbers, the monitor state's
 * size): the n bytes at s (no NUL needed) are decimal digits only (no
 * sign, no blank), no leading zero ("0" itself is fine), and their value
 * is at most max; the format chooses max (UINT64_MAX, INT64_MAX,
 * 999999999, ...). 0 and *v, or -1 with *v untouched. */
int pt_decimal_parse(const char *s, size_t n, uint64_t max, uint64_t *v);

/* The number token (RFC 8259 grammar) at s[0..len): its length, and
 * whether it is an integer literal (-?(0|[1-9][0-9]*), not "-0"). Returns 0
 * and sets *toklen and *is_int, or -1 when s does not start with a valid
 * number (leading zeros, "1.", ".5", "1e", "+1"). Exposed for the fuzzer. */
int pt_json_number_token(const char *s, size_t len, size_t *toklen, int *is_int);
/* Print compactly into a malloc'd string. */
patient_err pt_json_print(const cJSON *o, char **out);
/* The bytes pt_json_print would write for o (o alone, not its siblings),
 * counted without printing; once past cap, counting stops and the result
 * is only known to be over cap. SIZE_MAX for an item cJSON cannot print.
 * For caps a format states on its text, applied to a part of another
 * document that is used as it was parsed. */
size_t pt_json_compact_len(const cJSON *o, size_t cap);
/* Add item as o's member name (pt_json_put) or as a's last element
 * (pt_json_push), taking it: 1 when added; 0 when item is NULL (it could
 * not be made) or was not added, item freed. cJSON's adders fail only out
 * of memory, so a writer that checks every one writes its tree whole or
 * not at all. */
int pt_json_put(cJSON *o, const char *name, cJSON *item);
int pt_json_push(cJSON *a, cJSON *item);
/* A new array of copies of v[0..n), or NULL when out of memory (nothing
 * left over): cJSON_CreateStringArray, which refuses a NULL v even for
 * n 0. */
cJSON *pt_json_strings(const char *const *v, size_t n);

/* mkdir -p with new folders 0700; the last one must end up a folder owned
 * by us that nobody else can write (PATIENT_ERR_PERM, UNSAFE_PATH). */
patient_err pt_mkdir_private(const char *dir);

/* $<env>/<tail> when the variable holds an absolute path, else
 * $HOME/<home_rel>/<tail> (XDG base directories). *out malloc'd;
 * NOT_FOUND when neither is usable. */
/* A caller's options struct (error.h: size first) as this library's: dst
 * (dstsize bytes) gets the caller's members and zero for the ones its
 * header did not have; dst's size becomes dstsize. src NULL: dst is all
 * zero (size dstsize). A size over dstsize, or too small to hold size
 * itself: PATIENT_ERR_ARG. */
patient_err pt_opts_take(void *dst, size_t dstsize, const void *src);
#define PT_OPTS_TAKE(dst, src) pt_opts_take((dst), sizeof *(dst), (src))
patient_err pt_xdg_path(const char *env, const char *home_rel, const char *tail, char **out);

/* The message behind a parser's error, for its char **detail out-parameter
 * (detail NULL: nothing is formatted). pt_detail_first keeps a message
 * already there (the first, innermost one, said where the input went
 * wrong); pt_detail_set replaces it. *detail is malloc'd (the caller
 * frees); out of memory leaves it as it was (first) or NULL (set). */
void pt_detail_first(char **detail, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pt_detail_set(char **detail, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pt_detail_vfirst(char **detail, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* How many bytes of s to print when at most max may be: strlen(s) if it
 * fits, else max shortened to the start of the character that would be
 * split, so that a reason quoting an untrusted UTF-8 name, cut with
 * "%.*s", stays UTF-8 (inspect --json prints it). */
size_t pt_utf8_prefix(const char *s, size_t max);
/* The two arguments of "%.*s" that quote an untrusted name s (an lvalue:
 * it is read twice) in a reason: its first 200 bytes at most, cut as
 * pt_utf8_prefix does. */
#define PT_QUOTE(s) (int)pt_utf8_prefix((s), 200), (s)
/* pt_detail_first, returning e: a reader's "return pt_detail_err(detail,
 * PATIENT_ERR_PARSE, "member: why")" at the member that fails. */
patient_err pt_detail_err(char **detail, patient_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The one JSON string writer: append the first len bytes of s (or up to
 * its NUL if sooner; SIZE_MAX for all of it) as a string literal, quoted,
 * with '"' and '\\' escaped and control characters as "\u00xx"; other
 * bytes as they are. Each format fixed its bytes long ago, and they must
 * stay: PT_JSON_ESC_DEL also writes 0x7f as "\u007f" (descriptors,
 * disclosures, reports), PT_JSON_ESC_SHORT writes \b \f \n \r \t as
 * two characters (the manifest, which matches Python's json.dumps; with
 * it alone, the escapes of cJSON's printer: the change descriptor and the
 * JWS header); the log writes neither. */
#define PT_JSON_ESC_DEL 1u
#define PT_JSON_ESC_SHORT 2u
patient_err pt_buf_put_json_strn(pt_buf *b, const char *s, size_t len, unsigned flags);
/* pt_buf_put_json_strn(b, s, SIZE_MAX, PT_JSON_ESC_DEL). */
patient_err pt_buf_put_json_str(pt_buf *b, const char *s);
/* Bytes pt_buf_put_json_strn(b, s, SIZE_MAX, flags) appends, quotes
 * included. */
size_t pt_json_str_len(const char *s, unsigned flags);

/* Writers for documents that were always printed by cJSON
 * (cJSON_PrintUnformatted) and are now written directly, byte for byte
 * the same: an unsigned integer in decimal (cJSON prints every integer
 * below 10^15 that way; larger ones are PATIENT_ERR_TOO_LARGE); base64
 * of p[0..n) (url: base64url without padding), no quotes. cJSON's string
 * escapes are pt_buf_put_json_strn's with PT_JSON_ESC_SHORT alone. */
patient_err pt_buf_put_cjson_uint(pt_buf *b, uint64_t v);
/* v in decimal, every value, as printf's %llu writes it: appended to b,
 * or written at p (at most 20 bytes, no NUL; returns the end). No printf:
 * a manifest's state line per file adds up on big sites. */
patient_err pt_buf_put_u64(pt_buf *b, uint64_t v);
char *pt_put_u64(char *p, uint64_t v);
patient_err pt_buf_put_b64(pt_buf *b, const uint8_t *p, size_t n, int url);

/* Lower-case hex. out needs 2*len+1 bytes. */
void pt_hex(const uint8_t *in, size_t len, char *out);
/* Whether hex is exactly what pt_hex writes for in (lowercase, NUL after
 * 2 * len digits), without writing it: a per-entry comparison. */
int pt_hex_eq(const char *hex, const uint8_t *in, size_t len);
patient_err pt_unhex(const char *in, uint8_t *out, size_t len);

/* Constant-time equality. */
int pt_memeq(const void *a, const void *b, size_t n);

/* Split the next line off [*p, end): *line and *n (without its "\n", nor
 * a "\r" before it), *p moved past it; -1 at the end. For text artefacts
 * read line by line (minisign files, header lines, log lines in memory). */
int pt_next_line(const char **p, const char *end, const char **line, size_t *n);

#endif
