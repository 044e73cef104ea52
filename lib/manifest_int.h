/* Private to the manifest files (manifest_build.c, manifest_parse.c,
 * manifest_publish.c): limits, the parsed manifest, and the helpers they
 * share. Format: docs/format/manifest.md. Never installed. */
#ifndef PATIENT_MANIFEST_INT_H
#define PATIENT_MANIFEST_INT_H

#include <time.h>
#include <patient/manifest.h>
#include "util.h"

#define MAX_THREADS 64
#define MAX_TOP_KEYS 64
#define MAX_NAME 256
#define MAX_GLOB 4096
#define MAX_REASON 128
#define MAX_TYPE 255
/* cJSON items a manifest may hold: 5 per resource plus headroom. Checked
 * before parsing so hostile input cannot make cJSON allocate without bound. */
#define MAX_ITEMS (5u * PATIENT_MANIFEST_MAX_RESOURCES + 4096u)

/* Shards: more than PT_SHARD_MIN entries are split into bins of about
 * PT_SHARD_TARGET entries, at most PT_SHARD_MAX_BITS bits (256 children)
 * a level and PT_SHARD_MAX_LEVELS levels. */
#define PT_SHARD_MIN 512u
#define PT_SHARD_TARGET 64u
#define PT_SHARD_MAX_BITS 8u
#define PT_SHARD_MAX_LEVELS 3u

struct res {
    const char *path; /* points into root */
    uint8_t hash[PATIENT_SHA256_BYTES];
    uint64_t size;
    const char *type;
    int has_root; /* "chunk_root" present */
    uint8_t root[PATIENT_SHA256_BYTES];
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
    uint8_t (*tls_keys)[32];
    size_t n_tls_keys;
    /* Sharded layout (docs/format/manifest.md, "Shards"). A top-level
     * document with nlevels > 0 lists no resources but the SHA-256 of each
     * child shard; a shard document (node = 1) is one bin: an inner shard
     * lists the hashes of its children, a leaf (leaf = 1) its resources. */
    unsigned nlevels;
    unsigned bits[PT_SHARD_MAX_LEVELS];
    uint8_t (*shards)[32];
    size_t n_shards;
    int node, leaf;
    const char *bin; /* shard: "i/j/..." child indices from the top */
};

/* Parse a shard document (type "manifest-shard"); its place in the tree
 * is checked by the lookup. Same error codes as the manifest parser. */
patient_err pt_shard_parse(const void *json, size_t len, patient_manifest **out);
/* patient_manifest_parse (shard 0) or pt_shard_parse (shard 1), and on
 * failure *detail (detail may be NULL; malloc'd, the caller frees) names
 * the first member the reader refused and why ("expires: before issued"),
 * so that inspection can say what is wrong with a document it shows. */
patient_err pt_manifest_parse_detail(const void *json, size_t len, int shard,
                                     patient_manifest **out, char **detail);
/* The child index at each level for a canonical URL path: the first
 * bits[0] bits of SHA-256(path), then the next bits[1], ... */
void pt_shard_bins(const char *path, const unsigned *bits, unsigned nlevels, unsigned *idx);
/* The first 32 bits of SHA-256(path), most significant first: the bins
 * of every level are read off them (the builder keeps them per entry). */
uint32_t pt_shard_prefix(const char *path);
/* The layout for n entries: 0 levels (one file) up to PT_SHARD_MIN, else
 * enough bits for about PT_SHARD_TARGET entries a leaf, in levels of at
 * most PT_SHARD_MAX_BITS. Returns the number of levels. */
unsigned pt_shard_layout(size_t n, unsigned bits[PT_SHARD_MAX_LEVELS]);

/* Builder options as build and publish both require them. */
patient_err check_opts(const patient_manifest_opts *o, char **detail);
/* Delegations (shared by build, which checks its input by parsing it, and parse). */
void dels_free(patient_delegation *d, size_t n);
patient_err dels_parse(const cJSON *a, patient_delegation **out, size_t *n);

/* Incremental publish: one file as the previous publish recorded it in the
 * publish state (docs/format/manifest.md, "Publish state"). */
typedef struct pt_prev_file {
    const char *url; /* points into the state text */
    uint64_t dev, ino, size;
    int64_t sec;
    long nsec;
} pt_prev_file;

/* A shard of the previous publish as the state recorded it: its level
 * (1 = child of the top-level), index among the bins of that level, the
 * digest of what it was made from, and its name (SHA-256 hex). */
typedef struct pt_prev_node {
    unsigned level;
    uint32_t index;
    uint8_t digest[32];
    char name[65];
} pt_prev_node;

/* Order of pt_prev_node: by level, then index (the state's and the
 * build's searches). */
int pt_prev_node_cmp(const void *a, const void *b);

/* What a build may reuse: the previous manifest (its signature already
 * verified) and the state that matches it, f sorted by url, nodes by
 * (level, index). */
typedef struct pt_reuse {
    const struct patient_manifest *m;
    const pt_prev_file *f;
    size_t n;
    const pt_prev_node *nodes;
    size_t n_nodes;
} pt_reuse;

/* Sharded output of a build: dir is the shards folder (in); the build
 * writes every new shard there (without fsync: the caller makes them
 * durable with one syncfs before the top-level names them), appends the
 * state's node lines to nodes, and counts. */
typedef struct pt_shard_out {
    const char *dir;
    pt_buf *nodes;
    unsigned nlevels, bits[PT_SHARD_MAX_LEVELS];
    size_t total, written;        /* shards in the tree, shards written now */
    uint64_t bytes_total, bytes_written;
    char **names;                 /* every shard name of the new tree */
    size_t n_names;
} pt_shard_out;

typedef struct pt_build_stats {
    size_t hashed, reused;
    uint64_t bytes_hashed;
    size_t entries;     /* resources listed (aliases included) */
    uint64_t bytes;     /* sum of the listed files' sizes */
} pt_build_stats;

/* patient_manifest_sign for bytes the caller has just parsed into m (one
 * parse of a large manifest instead of two). */
patient_err pt_manifest_sign_parsed(const patient_seckey *sk, const struct patient_manifest *m,
                                    const void *json, size_t len, char **sig);

/* patient_manifest_build with reuse (may be NULL), statistics (may be
 * NULL) and the state lines of this build appended to state (may be NULL):
 * "<dev> <ino> <size> <mtime sec> <mtime nsec> <url>\n" sorted by url,
 * leaving out files modified too recently to be sure their hash matches
 * their facts. shards NULL: one file whatever the size (patient_manifest_
 * build); else sharded above PT_SHARD_MIN entries. */
patient_err pt_manifest_build(const char *site_dir, const patient_manifest_opts *o,
                              const pt_reuse *reuse, pt_buf *state, pt_build_stats *stats,
                              pt_shard_out *shards, char **json, size_t *len, char **detail);

#endif
