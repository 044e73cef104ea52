/* libFuzzer harness: manifest JSON (patient_manifest_parse), then every
 * accessor: each listed resource must be found again by lookup with the
 * same hash, size and type; lookups of odd paths must not crash; the path
 * encoder gets the raw input too. The parse with reasons (what inspection
 * shows), of a manifest and of a shard document, must give the verdict of
 * the plain parse of each, and a reason exactly when it refuses. */
#include "config.h"

#include <patient/manifest.h>

#include "common.h"
#include "manifest_int.h"

static void
touch(const char *s)
{
    if (s == NULL || strlen(s) > PATIENT_MANIFEST_MAX_BYTES)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const odd[] = {"/", "", "/index.html", "/a%20b", "/%zz", "%", "/%2",
                                      "//", "/a/../b", "/\xff", "no-slash", "/%00"};
    patient_manifest *m = NULL;
    patient_resource r, r2;
    patient_err err;
    size_t i, k, n;
    char *enc = NULL;

    err = patient_manifest_parse(data, size, &m);
    if ((err == PATIENT_OK) != (m != NULL))
        abort();
    /* Both readers (shard 0 the manifest, 1 a shard document), each
     * against its plain parse. */
    for (int shard = 0; shard < 2; shard++) {
        patient_manifest *m1 = NULL, *m2 = NULL;
        char *why = NULL;
        patient_err e1 = shard ? pt_shard_parse(data, size, &m1) : err;
        patient_err e2 = pt_manifest_parse_detail(data, size, shard, &m2, &why);
        if (!shard)
            m1 = m;
        fz_same_verdict(e1, m1, e2, m2, why);
        if (shard)
            patient_manifest_free(m1);
        patient_manifest_free(m2);
        free(why);
    }
    if (m != NULL) {
        touch(patient_manifest_origin(m));
        if (patient_manifest_version(m) < 1 ||
            patient_manifest_expires(m) < patient_manifest_issued(m))
            abort();
        (void)patient_manifest_check_fresh(m, FZ_NOW);
        n = patient_manifest_count(m);
        if (n > PATIENT_MANIFEST_MAX_RESOURCES)
            abort();
        for (i = 0; i < n; i++) {
            if (patient_manifest_resource(m, i, &r) != PATIENT_OK)
                abort();
            touch(r.path);
            touch(r.type);
            if (patient_manifest_lookup(m, r.path, &r2) != PATIENT_OK ||
                strcmp(r.path, r2.path) != 0 || memcmp(r.hash, r2.hash, sizeof r.hash) != 0 ||
                r.size != r2.size)
                abort();
        }
        if (patient_manifest_resource(m, n, &r) == PATIENT_OK)
            abort();
        for (i = 0; i < sizeof odd / sizeof odd[0]; i++)
            (void)patient_manifest_lookup(m, odd[i], &r);
        for (i = 0; i < patient_manifest_next_key_count(m); i++)
            if (patient_manifest_next_key(m, i) == NULL)
                abort();
        for (i = 0; i < patient_manifest_delegation_count(m); i++) {
            const patient_delegation *d = patient_manifest_delegation(m, i);
            if (d == NULL)
                abort();
            touch(d->name);
            for (k = 0; k < d->n_reasons; k++)
                touch(d->reasons[k]);
            for (k = 0; k < d->n_paths; k++)
                touch(d->paths[k]);
        }
        patient_manifest_free(m);
    }
    if (size <= PATIENT_MANIFEST_MAX_PATH &&
        patient_url_path_encode((const char *)data, size, &enc) == PATIENT_OK) {
        touch(enc);
        free(enc);
    }
    return 0;
}
