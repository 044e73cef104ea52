/* Signed origin manifests (/.well-known/patient/manifest.json + .minisig)
 * and signed dynamic responses (the Patient-Origin header).
 *
 * A manifest is deterministic JSON (keys sorted, 2-space indent, trailing
 * newline: byte-identical to Python's json.dumps(m, indent=2,
 * sort_keys=True, ensure_ascii=False) + "\n") mapping URL paths to
 * {integrity, size, type}. Its signature is a minisign prehashed signature
 * of the exact file bytes, so `minisign -Vm manifest.json -p KEY.pub`
 * verifies it. The format is specified in docs/format/manifest.md. */
#ifndef PATIENT_MANIFEST_H
#define PATIENT_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <patient/error.h>
#include <patient/hash.h>
#include <patient/key.h>
#include <patient/url.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PATIENT_MANIFEST_FORMAT 1                        /* "patient": 1 */
#define PATIENT_MANIFEST_MAX_BYTES (64u * 1024 * 1024)    /* whole file */
#define PATIENT_MANIFEST_MAX_RESOURCES 1000000u           /* entries */
#define PATIENT_MANIFEST_MAX_PATH 4096u                   /* encoded URL path, bytes */
#define PATIENT_MANIFEST_MAX_NEXT_KEYS 16u
#define PATIENT_MANIFEST_MAX_DELEGATIONS 256u
#define PATIENT_MANIFEST_MAX_GLOBS 64u                    /* per delegation list */
#define PATIENT_MANIFEST_MAX_ORIGIN 256u                  /* "scheme://host[:port]" */
/* Allowed clock skew for "issued" / "date" lying in the future. */
#define PATIENT_CLOCK_SKEW 300

/* Default location of the manifest, relative to the site root. */
#define PATIENT_MANIFEST_PATH ".well-known/patient/manifest.json"

/* Progress: called during hashing, never concurrently: in a full pass
 * after each folder the walk has read (totals so far: the walk reads the
 * small files itself), then after each file hashed later, from any worker
 * thread, serialised by a lock. Return nonzero to cancel (the build then
 * fails with PATIENT_ERR_INTERRUPTED). */
typedef int (*patient_progress_fn)(void *arg, uint64_t files_done, uint64_t files_total,
                                   uint64_t bytes_done, uint64_t bytes_total);

typedef struct patient_manifest_opts {
    size_t size;         /* sizeof(patient_manifest_opts) (error.h, PATIENT_OPTS_INIT) */
    const char *origin;  /* required: "https://host[:port]", validated */
    uint64_t version;    /* build: >= 1; publish: 0 = previous version + 1 */
    time_t issued;       /* the "now" written into the manifest */
    time_t expires;      /* must be later than issued */
    unsigned threads;    /* hashing threads; 0 = online CPUs (at most 64) */
    patient_progress_fn progress; /* may be NULL */
    void *progress_arg;
    /* Optional announced next keys (rotation), at most MAX_NEXT_KEYS. */
    const patient_pubkey *next_keys;
    size_t n_next_keys;
    /* Optional delegations as JSON text: an array of objects
     * {"name", "key", "reasons", "paths"}; validated and re-emitted in
     * canonical form. NULL = none. */
    const char *delegations_json;
    /* Extra paths relative to the site root never to list (with every
     * "<path>.*" name beside them). .well-known/patient/ is always skipped. */
    const char *const *exclude;
    size_t n_exclude;
    /* Optional: the public keys of the origin's own TLS certificates (SHA-256
     * of a SubjectPublicKeyInfo of the leaf or of a CA in its chain;
     * patient/hash.h), 0..8, written as "tls_keys". A verifier that finds
     * none of them in the chain it received knows its TLS was intercepted. */
    const uint8_t (*tls_keys)[32];
    size_t n_tls_keys;
    /* Incremental publish (patient_manifest_publish only): a private file
     * that records, for every file hashed, its device, inode, size and
     * modification time (nanoseconds), bound to the manifest it went into
     * and authenticated with a key derived from the secret key. When it
     * matches the previous manifest, and that manifest's signature verifies
     * with the secret key's public half, files whose facts are unchanged
     * keep the previous manifest's integrity, size and chunk root instead
     * of being read again. NULL = no state (every file is hashed). Keep it
     * where the web server does not serve it and only the publisher
     * writes. A file changed without changing its size, whose mtime is set
     * back, keeps its old hash: rehash = 1 forces a full pass (and writes
     * fresh state). docs/format/manifest.md, "Publish state". */
    const char *state_path;
    int rehash;
} patient_manifest_opts;

/* Walk site_dir and produce the manifest JSON for it (unsigned).
 *
 * Lists every regular file (hidden ones too) under its percent-encoded URL
 * path; a folder with index.html also gets "/dir/" (the root "/"). Skips
 * .well-known/patient/ and opts->exclude. Symlinks are followed only when
 * their target resolves inside site_dir (else PATIENT_ERR_UNSAFE_PATH, as
 * for loops, devices, FIFOs and sockets); a dangling one gives
 * PATIENT_ERR_NOT_FOUND. Caps: PATIENT_MANIFEST_MAX_RESOURCES entries
 * (PATIENT_ERR_LIMIT), PATIENT_MANIFEST_MAX_PATH per path and
 * PATIENT_MANIFEST_MAX_BYTES of output (PATIENT_ERR_TOO_LARGE).
 * Hashes on opts->threads threads; the output does not depend on the
 * thread count or directory order.
 *
 * *json: malloc'd, NUL-terminated (not counted in *len); caller frees.
 * *detail (may be NULL): on failure, a malloc'd message naming the file
 * concerned (or NULL); caller frees. Thread-safe (no shared state). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_manifest_build(const char *site_dir,
                                                              const patient_manifest_opts *opts,
                                                              char **json, size_t *len,
                                                              char **detail);

/* The trusted comment of a manifest signature:
 * "patient-manifest origin=<origin> version=<N> expires=<RFC3339>". */
#define PATIENT_MANIFEST_COMMENT_MAX 400

typedef struct patient_publish_result {
    uint64_t version;   /* version written */
    size_t resources;   /* entries in the manifest */
    uint64_t bytes;     /* sum of the listed files' sizes (aliases not counted) */
    int recovered;      /* 1 if an interrupted earlier publish was completed first */
    /* Incremental publish: files read and hashed, files whose hashes came
     * from the previous manifest, bytes read, and why nothing was reused
     * when files_reused is 0 (a static string, NULL when some were). */
    size_t files_hashed, files_reused;
    uint64_t bytes_hashed;
    const char *reuse_note;
    /* Sharded output (0 for a manifest in one file): shards in the tree,
     * shards written by this publish (the others were kept), and bytes. */
    size_t shards, shards_written;
    uint64_t shard_bytes, shard_bytes_written;
} patient_publish_result;

/* Build, sign and write a manifest.
 *
 * out_path: where to write (NULL = site_dir/PATIENT_MANIFEST_PATH; its
 * folders are created 0755, refusing symlinks on the way). The signature
 * goes to out_path + ".minisig".
 *
 * Version: opts->version if not 0 (PATIENT_ERR_ROLLBACK if a readable
 * previous manifest has a version >= it), else previous version + 1, or 1
 * when there is no previous manifest. A previous manifest that does not
 * parse is an error (its code, detail names the file): pass an explicit
 * version to override.
 *
 * Crash safety: the new signature is first written completely to
 * out_path + ".minisig.next", then the manifest is replaced atomically,
 * then the .next file is renamed over the signature. An interruption
 * leaves either the old consistent pair, or the new manifest with the old
 * signature and the matching ".next" beside it; the next publish (this
 * function) finishes such an interrupted publish first when ".next"
 * verifies against the manifest with sk's public key, and removes a stale
 * ".next" otherwise.
 *
 * *result and *detail may be NULL. Thread-safe for different out paths. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_manifest_publish(
    const char *site_dir, const char *out_path, const patient_seckey *sk,
    const patient_manifest_opts *opts, patient_publish_result *result, char **detail);

/* Sign manifest bytes: *sig is the malloc'd .minisig text. The trusted
 * comment is taken from the manifest itself (which must parse). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_manifest_sign(const patient_seckey *sk,
                                                             const void *json, size_t len,
                                                             char **sig);

/* A parsed manifest. Opaque; immutable after parse, so it may be shared
 * between threads for reading. Free with patient_manifest_free (accepts
 * NULL). */
typedef struct patient_manifest patient_manifest;

/* Parse and validate every field (no signature check: use
 * patient_manifest_verify for anything received). Errors:
 * PATIENT_ERR_TOO_LARGE (over 64 MiB, or a path over the cap),
 * PATIENT_ERR_JSON (not JSON, nesting too deep), PATIENT_ERR_LIMIT (too
 * many resources/items), PATIENT_ERR_UNSUPPORTED ("patient" is not 1),
 * PATIENT_ERR_PARSE (anything else malformed: type, origin, version < 1,
 * times, paths not in canonical form, duplicate keys, bad integrity...). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_manifest_parse(const void *json, size_t len,
                                                              patient_manifest **m);

/* Verify the minisign signature over the exact bytes FIRST
 * (PATIENT_ERR_KEY_MISMATCH, PATIENT_ERR_SIGNATURE, PATIENT_ERR_PARSE for
 * a malformed .minisig), then parse (codes as above), then check the
 * trusted comment names the manifest's origin, version and expiry
 * (PATIENT_ERR_PARSE otherwise). Does not check freshness. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_manifest_verify(const void *json, size_t len,
                                                               const char *sig, size_t siglen,
                                                               const patient_pubkey *pk,
                                                               patient_manifest **m);

PATIENT_EXPORT void patient_manifest_free(patient_manifest *m);

/* Accessors. Returned strings live as long as m. */
PATIENT_EXPORT const char *patient_manifest_origin(const patient_manifest *m);
PATIENT_EXPORT uint64_t patient_manifest_version(const patient_manifest *m);
PATIENT_EXPORT time_t patient_manifest_issued(const patient_manifest *m);
PATIENT_EXPORT time_t patient_manifest_expires(const patient_manifest *m);

/* PATIENT_ERR_EXPIRED when now > expires, or issued > now + PATIENT_CLOCK_SKEW. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_manifest_check_fresh(const patient_manifest *m,
                                                                    time_t now);

typedef struct patient_resource {
    const char *path; /* canonical encoded URL path; lives as long as m */
    uint8_t hash[PATIENT_SHA256_BYTES];
    uint64_t size;
    const char *type; /* media type; lives as long as m */
    /* "chunk_root": Merkle root over the resource's 4 KiB chunks
     * (docs/format/manifest.md), or has_chunk_root == 0 for a manifest
     * from before chunk roots. */
    int has_chunk_root;
    uint8_t chunk_root[PATIENT_SHA256_BYTES];
} patient_resource;

/* Look up a URL path (without query or fragment). The path is put in
 * canonical form first (percent-escapes decoded, then re-encoded as the
 * manifest does), so "/a%20b" and "/a b" and "/%61%20b" find the same
 * entry. PATIENT_ERR_NOT_FOUND when absent, PATIENT_ERR_PARSE for a
 * malformed path, PATIENT_ERR_UNSUPPORTED for a sharded manifest (its
 * resources are in shards: patient_manifest_lookup_sharded). O(log n). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_manifest_lookup(const patient_manifest *m,
                                                               const char *path,
                                                               patient_resource *out);
/* Iterate in manifest (sorted) order: i < patient_manifest_count(m). */
PATIENT_EXPORT size_t patient_manifest_count(const patient_manifest *m);
PATIENT_EXPORT PATIENT_WUR patient_err patient_manifest_resource(const patient_manifest *m,
                                                                 size_t i,
                                                                 patient_resource *out);

/* ---- shards (docs/format/manifest.md, "Shards") ----
 * A site of more than 512 entries is published as a small signed top-level
 * manifest that lists, instead of resources, the SHA-256 of one shard per
 * bin of SHA-256(path) bits; a shard is served as
 * /.well-known/patient/shards/<64 hex of its SHA-256>.json and is either
 * an inner shard (hashes of its children) or a leaf (the resources of its
 * bin). A path belongs to exactly one leaf, and every shard is pinned by
 * its parent's hash, so a resource cannot be hidden by withholding or
 * replacing a shard: that fails with its own problem. */
#define PATIENT_MANIFEST_SHARD_MAX_BYTES (8u * 1024 * 1024)
#define PATIENT_MANIFEST_SHARD_DIR "shards"

/* Levels of the shard tree (0: one file, resources listed in m). bits may
 * be NULL, else gets the bits of each level (at most 3). */
PATIENT_EXPORT unsigned patient_manifest_shard_levels(const patient_manifest *m,
                                                      unsigned bits[3]);
/* The top-level's (or a shard's) list of child shard hashes. */
PATIENT_EXPORT size_t patient_manifest_shard_count(const patient_manifest *m);
PATIENT_EXPORT const uint8_t *patient_manifest_shard_hash(const patient_manifest *m, size_t i);

/* Get the bytes of the shard named name (64 lower-case hex digits of the
 * SHA-256 it should have): PATIENT_OK with *p, *len borrowed until the
 * lookup returns, PATIENT_ERR_NOT_FOUND when it is not available (the
 * server withheld it), any other error to stop. */
typedef patient_err (*patient_shard_get_fn)(void *arg, const char *name, const uint8_t **p,
                                            size_t *len);

typedef enum patient_shard_problem {
    PATIENT_SHARD_OK = 0,
    PATIENT_SHARD_WITHHELD,  /* not available (HTTP 404, not in the evidence) */
    PATIENT_SHARD_HASH,      /* bytes that are not the shard the parent names */
    PATIENT_SHARD_MISPLACED, /* ... and are another bin's (or origin's) shard */
    PATIENT_SHARD_ROLLBACK,  /* ... and are this bin's shard from an older version */
    PATIENT_SHARD_MALFORMED  /* the named bytes do not parse as that shard */
} patient_shard_problem;

typedef struct patient_shard_info {
    patient_shard_problem problem;
    unsigned level;     /* 1 = child of the top-level */
    char name[65];      /* the shard concerned */
    char bin[40];       /* its bin, "i/j/k" */
    uint64_t version;   /* ROLLBACK: the version the served bytes carry */
    unsigned fetched;   /* shards obtained through get */
} patient_shard_info;

/* patient_manifest_lookup for a manifest that may be sharded: for a
 * sharded m, gets the shards on path's way from the top-level through get
 * (at most one per level), checks each against the hash its parent names
 * and its place (origin, bin, level), then looks path up in the leaf.
 * PATIENT_OK: *out is valid as long as m and *leaf (free with
 * patient_manifest_free; NULL for a manifest in one file).
 * PATIENT_ERR_NOT_FOUND: not listed (the leaf for path does not list it).
 * PATIENT_ERR_HASH: a shard failed; info->problem says how. Other errors
 * as patient_manifest_lookup, or get's. info may be NULL. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_manifest_lookup_sharded(
    const patient_manifest *m, const char *path, patient_shard_get_fn get, void *arg,
    patient_manifest **leaf, patient_resource *out, patient_shard_info *info);

/* Announced next keys (rotation). */
PATIENT_EXPORT size_t patient_manifest_next_key_count(const patient_manifest *m);
/* The origin's announced TLS keys ("tls_keys"): count, and the i-th SPKI
 * SHA-256 (32 bytes; NULL past the end). */
PATIENT_EXPORT size_t patient_manifest_tls_key_count(const patient_manifest *m);
PATIENT_EXPORT const uint8_t *patient_manifest_tls_key(const patient_manifest *m, size_t i);
PATIENT_EXPORT const patient_pubkey *patient_manifest_next_key(const patient_manifest *m,
                                                               size_t i);

/* Publisher delegations: middlebox keys the origin consents to, for which
 * reason codes (globs) on which paths (globs). */
typedef struct patient_delegation {
    const char *name;
    patient_pubkey key;
    const char *const *reasons;
    size_t n_reasons;
    const char *const *paths;
    size_t n_paths;
} patient_delegation;
PATIENT_EXPORT size_t patient_manifest_delegation_count(const patient_manifest *m);
PATIENT_EXPORT const patient_delegation *patient_manifest_delegation(const patient_manifest *m,
                                                                     size_t i);

/* patient_url_path_encode: see <patient/url.h>. */

/* Media type for a file name by its extension (case-insensitive);
 * "application/octet-stream" when unknown. Static storage; thread-safe. */
PATIENT_EXPORT const char *patient_mediatype(const char *name);

/* Patient-Origin: one signed dynamic response.
 * JWS (typ "patient-origin+jws") over the compact JSON payload
 * {"date","expires","integrity","patient":1,"size","type":"origin","url"}
 * (keys in that order). */
#define PATIENT_ORIGIN_TYP "patient-origin+jws"

/* *jws: malloc'd compact JWS (the header value); caller frees.
 * url: the absolute URL, compared byte for byte by the verifier.
 * Thread-safe for a shared sk. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_origin_sign(const patient_seckey *sk,
                                                           const char *url, const void *body,
                                                           size_t len, time_t date,
                                                           time_t expires, char **jws);

typedef struct patient_origin_info {
    uint8_t kid[PATIENT_KEYID_BYTES];
    uint8_t hash[PATIENT_SHA256_BYTES];
    uint64_t size;
    time_t date, expires;
    /* "chunk_root" (as in a manifest resource), or has_chunk_root == 0 for
     * a signature from before chunk roots. */
    int has_chunk_root;
    uint8_t chunk_root[PATIENT_SHA256_BYTES];
} patient_origin_info;

/* Verify a Patient-Origin value for (url, body) at time now: key id
 * (PATIENT_ERR_KEY_MISMATCH) and signature (PATIENT_ERR_SIGNATURE) first,
 * then typ and payload (PATIENT_ERR_PARSE / PATIENT_ERR_UNSUPPORTED),
 * url (PATIENT_ERR_ORIGIN), size and hash (PATIENT_ERR_HASH), then time
 * (PATIENT_ERR_EXPIRED when now > expires or date > now + skew).
 * info may be NULL. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_origin_verify(const char *jws,
                                                             const patient_pubkey *pk,
                                                             const char *url, const void *body,
                                                             size_t len, time_t now,
                                                             patient_origin_info *info);

/* Everything patient_origin_verify checks except the body (size and hash):
 * for a response changed by a hop that withheld bytes, whose body the
 * verifier can only check against info->chunk_root (a confined chain).
 * Same errors, in the same order, without PATIENT_ERR_HASH. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_origin_check(const char *jws,
                                                            const patient_pubkey *pk,
                                                            const char *url, time_t now,
                                                            patient_origin_info *info);

#ifdef __cplusplus
}
#endif
#endif
