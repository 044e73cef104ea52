/* patient — one error enum for the whole library.
 *
 * Numbers are stable: never renumber, only append. Every code has a message
 * (patient_strerror) and a stable dotted name (patient_errname) that tools
 * print in --json output. */
#ifndef PATIENT_ERROR_H
#define PATIENT_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Options structs (patient_*_opts, and patient_mbox_input) begin with
 * "size_t size": the size of the struct as the caller's header declared
 * it, so that later versions can add members at the end without breaking
 * programs built against an older header (the libsodium/curl way of growing an ABI). Set it with
 * PATIENT_OPTS_INIT(type), or to sizeof the struct; members a caller's
 * header did not have are read as zero, and zero is always their default.
 * A size larger than this library's struct (a program built against a
 * newer header) is refused with PATIENT_ERR_ARG, so an option the library
 * does not know is never silently ignored. size 0 is read as this
 * header's size: programs that zero-initialise and were built against
 * this header keep working. */
#define PATIENT_OPTS_INIT(type) {.size = sizeof(type)}

#if defined(__GNUC__)
#define PATIENT_EXPORT __attribute__((visibility("default")))
#define PATIENT_WUR __attribute__((warn_unused_result))
#else
#define PATIENT_EXPORT
#define PATIENT_WUR
#endif

typedef enum patient_err {
    PATIENT_OK = 0,
    PATIENT_ERR_NOMEM = 1,         /* out of memory */
    PATIENT_ERR_IO = 2,            /* local read/write failed (see errno) */
    PATIENT_ERR_ARG = 3,           /* invalid argument from the caller */
    PATIENT_ERR_TOO_LARGE = 4,     /* input exceeds a size/count cap */
    PATIENT_ERR_PARSE = 5,         /* malformed input */
    PATIENT_ERR_JSON = 6,          /* malformed or too deeply nested JSON */
    PATIENT_ERR_BASE64 = 7,        /* malformed base64 / base64url */
    PATIENT_ERR_KEY_FORMAT = 8,    /* not a key file we understand */
    PATIENT_ERR_KEY_PASSWORD = 9,  /* wrong password, or key checksum mismatch */
    PATIENT_ERR_KEY_MISMATCH = 10, /* signed with another key than expected */
    PATIENT_ERR_SIGNATURE = 11,    /* signature does not verify */
    PATIENT_ERR_EXISTS = 12,       /* refusing to overwrite an existing file */
    PATIENT_ERR_PERM = 13,         /* unsafe file permissions */
    PATIENT_ERR_UNSAFE_PATH = 14,  /* symlink, device, FIFO or path escape */
    PATIENT_ERR_UNSUPPORTED = 15,  /* unknown algorithm or format version */
    PATIENT_ERR_EXPIRED = 16,      /* past its expiry (or not yet valid) */
    PATIENT_ERR_ROLLBACK = 17,     /* older than a version already seen */
    PATIENT_ERR_ORIGIN = 18,       /* for another origin or URL */
    PATIENT_ERR_EDIT_RANGE = 19,   /* edit outside the body */
    PATIENT_ERR_EDIT_ORDER = 20,   /* edits unsorted or overlapping */
    PATIENT_ERR_HASH = 21,         /* content does not match its hash */
    PATIENT_ERR_CHAIN = 22,        /* broken hop chain or log chain */
    PATIENT_ERR_LIMIT = 23,        /* too many edits, hops, entries */
    PATIENT_ERR_NOT_FOUND = 24,    /* no such file, entry or resource */
    PATIENT_ERR_FETCH = 25,        /* network fetch failed */
    PATIENT_ERR_POLICY = 26,       /* refused by the trust policy */
    PATIENT_ERR_LOG_CORRUPT = 27,  /* audit log damaged */
    PATIENT_ERR_CRYPTO = 28,       /* crypto library failure */
    PATIENT_ERR_REGEX = 29,        /* bad regular expression */
    PATIENT_ERR_GZIP = 30,         /* bad or unsupported compressed body */
    PATIENT_ERR_STATE = 31,        /* call out of order */
    PATIENT_ERR_INTERRUPTED = 32   /* cancelled */
} patient_err;

#define PATIENT_ERR_MAX_ 32

/* Human message for a code. Never NULL; static storage; thread-safe. */
PATIENT_EXPORT const char *patient_strerror(patient_err err);
/* Stable dotted name (e.g. "signature.invalid"). Never NULL; static; thread-safe. */
PATIENT_EXPORT const char *patient_errname(patient_err err);

/* Out of memory while reading JSON. cJSON's parser returns NULL for
 * malformed text and for a failed allocation alike. A program that calls
 * this gets PATIENT_ERR_NOMEM for running out of memory in a libpatient
 * parse, never a verdict on the document (JSON, PARSE, a tampered log): it
 * sets cJSON's allocation hooks to wrappers of malloc and free that note a
 * failed allocation for the calling thread. Without it, out of memory in a
 * parse reads as malformed input. cJSON's hooks are process-wide: call it
 * once, first thing in main, before any thread or any cJSON use, and only
 * from a program that owns its process, never from a library or a module
 * (libpatient and srv_patient never call it; a later cJSON_InitHooks of
 * the program's own replaces it). Not thread-safe. */
PATIENT_EXPORT void patient_json_track_nomem(void);

#ifdef __cplusplus
}
#endif
#endif
