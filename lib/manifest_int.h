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
};

/* First message wins: a later call leaves *detail alone. detail may be NULL. */
void set_detail(char **detail, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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

/* What a build may reuse: the previous manifest (its signature already
 * verified) and the state that matches it, f sorted by url. */
typedef struct pt_reuse {
    const struct patient_manifest *m;
    const pt_prev_file *f;
    size_t n;
} pt_reuse;

typedef struct pt_build_stats {
    size_t hashed, reused;
    uint64_t bytes_hashed;
} pt_build_stats;

/* patient_manifest_sign for bytes the caller has just parsed into m (one
 * parse of a large manifest instead of two). */
patient_err pt_manifest_sign_parsed(const patient_seckey *sk, const struct patient_manifest *m,
                                    const void *json, size_t len, char **sig);

/* patient_manifest_build with reuse (may be NULL), statistics (may be
 * NULL) and the state lines of this build appended to state (may be NULL):
 * "<dev> <ino> <size> <mtime sec> <mtime nsec> <url>\n" sorted by url,
 * leaving out files modified too recently to be sure their hash matches
 * their facts. */
patient_err pt_manifest_build(const char *site_dir, const patient_manifest_opts *o,
                              const pt_reuse *reuse, pt_buf *state, pt_build_stats *stats,
                              char **json, size_t *len, char **detail);

#endif
