/* Manifests: build, determinism, unsafe trees, publish/versions, golden
 * signed fixture with forged twins, Patient-Origin. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <sodium.h>

#include <patient/patient.h>
#include "util.h"
#include "key_int.h"
#include "manifest_int.h"
#include "testutil.h"

#define DATA TEST_SRCDIR "/data/"
#define GOLDEN_ISSUED ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define GOLDEN_EXPIRES (GOLDEN_ISSUED + 7 * 86400)
#define DELEGATIONS                                                                            \
    "[{\"name\":\"Example Filter\",\"key\":\"RWS2m6w3vzGkgRBshRaG83/Ey0BGmr0woIoHlPFicY8yjvSUIXci0ozs\"," \
    "\"reasons\":[\"malware.*\",\"ads\"],\"paths\":[\"/*\"]}]"

static char tmpdir[256];

/* ---- helpers ---- */

static void
write_file(const char *root, const char *rel, const char *content, size_t len)
{
    char path[1024], *slash;
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = 0;
        mkdir(path, 0755);
        *slash = '/';
    }
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    ck_assert_uint_eq(fwrite(content, 1, len, f), len);
    fclose(f);
}

#define WRITE(root, rel, s) write_file(root, rel, s, strlen(s))

/* The fixed tree behind the golden manifest. */
static void
make_tree(const char *root)
{
    mkdir(root, 0755);
    WRITE(root, "index.html", "<!doctype html><title>patient</title>\n");
    WRITE(root, "about/index.html", "<!doctype html><title>about</title>\n");
    WRITE(root, "css/site.css", "body { color: #222 }\n");
    WRITE(root, "docs/a b \xc3\xbc.txt", "unicode and spaces\n");
    WRITE(root, "docs/x+y=z.js", "let x = 1;\n");
    write_file(root, "empty", "", 0);
    WRITE(root, ".hidden", "hidden files are served, so listed\n");
    WRITE(root, ".well-known/security.txt", "Contact: mailto:security@example.org\n");
    WRITE(root, ".well-known/patient/manifest.json", "not listed\n");
    WRITE(root, ".well-known/patient/disclosure.json", "not listed\n");
}

static char *
mktree(void)
{
    char *root = malloc(512);
    snprintf(root, 512, "%s/site", tmpdir);
    make_tree(root);
    return root;
}

/* The tree without the junk manifest make_tree plants. */
static char *
mktree_clean(void)
{
    char *root = mktree(), p[600];
    snprintf(p, sizeof p, "%s/.well-known/patient/manifest.json", root);
    ck_assert_int_eq(unlink(p), 0);
    return root;
}

static void
setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "check_manifest");
}

static void
teardown(void)
{
    tu_rmtree(tmpdir);
}

static patient_seckey *
test_key(void)
{
    uint8_t *t = NULL;
    size_t n = 0;
    patient_seckey *sk = NULL;
    int enc = 0;

    /* Parse, not load: git does not keep the file's 0600 mode. */
    ck_assert_int_eq(pt_read_file(DATA "manifest_key.key", 4096, &t, &n), PATIENT_OK);
    ck_assert_int_eq(patient_seckey_parse((char *)t, n, NULL, &sk, &enc), PATIENT_OK);
    free(t);
    return sk;
}

static void
test_pub(patient_pubkey *pk)
{
    ck_assert_int_eq(patient_pubkey_load(DATA "manifest_key.pub", pk), PATIENT_OK);
}

static patient_manifest_opts
golden_opts(const patient_pubkey *nk)
{
    patient_manifest_opts o;

    memset(&o, 0, sizeof o);
    o.origin = "https://example.org";
    o.version = 1;
    o.issued = GOLDEN_ISSUED;
    o.expires = GOLDEN_EXPIRES;
    o.threads = 2;
    o.next_keys = nk;
    o.n_next_keys = nk ? 1 : 0;
    o.delegations_json = nk ? DELEGATIONS : NULL;
    return o;
}

static char *
slurp(const char *path, size_t *len)
{
    uint8_t *d = NULL;
    ck_assert_int_eq(pt_read_file(path, PATIENT_MANIFEST_MAX_BYTES, &d, len), PATIENT_OK);
    return (char *)d;
}

/* Sign arbitrary bytes with the test key, with the comment the manifest
 * would have, so verification gets past the signature to the content. */
static patient_err
sign_and_verify(const char *json, patient_manifest **m)
{
    patient_seckey *sk = test_key();
    patient_pubkey pk;
    char *sig = NULL;
    patient_err err;

    test_pub(&pk);
    ck_assert_int_eq(patient_minisig_sign(sk, json, strlen(json), NULL,
                                          "patient-manifest origin=https://example.org "
                                          "version=1 expires=2026-01-08T00:00:00Z",
                                          &sig),
                     PATIENT_OK);
    err = patient_manifest_verify(json, strlen(json), sig, strlen(sig), &pk, m);
    free(sig);
    patient_seckey_free(sk);
    return err;
}

static void
golden(char **json, size_t *jlen, char **sig, size_t *slen)
{
    *json = slurp(DATA "manifest_golden.json", jlen);
    *sig = slurp(DATA "manifest_golden.json.minisig", slen);
}

/* ---- building ---- */

START_TEST(test_build_entries)
{
    char *root = mktree(), *json = NULL, *detail = NULL;
    size_t len = 0;
    patient_manifest_opts o = golden_opts(NULL);
    patient_manifest *m = NULL;
    patient_resource r, r2;
    uint8_t empty[32];

    ck_assert_int_eq(patient_manifest_build(root, &o, &json, &len, &detail), PATIENT_OK);
    ck_assert_ptr_null(detail);
    ck_assert_uint_eq(strlen(json), len);
    ck_assert_int_eq(json[len - 1], '\n');
    ck_assert_int_eq(patient_manifest_parse(json, len, &m), PATIENT_OK);
    /* 8 files (security.txt included, .well-known/patient/ not) + "/" + "/about/" */
    ck_assert_uint_eq(patient_manifest_count(m), 10);
    ck_assert_int_eq(patient_manifest_lookup(m, "/", &r), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/index.html", &r2), PATIENT_OK);
    ck_assert_mem_eq(r.hash, r2.hash, 32);
    ck_assert_uint_eq(r.size, 38);
    ck_assert_str_eq(r.type, "text/html");
    ck_assert_int_eq(patient_manifest_lookup(m, "/about/", &r), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/about/index.html", &r2), PATIENT_OK);
    ck_assert_mem_eq(r.hash, r2.hash, 32);
    ck_assert_int_eq(patient_manifest_lookup(m, "/css/", &r), PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(patient_manifest_lookup(m, "/css/site.css", &r), PATIENT_OK);
    ck_assert_str_eq(r.type, "text/css");
    /* Encoded in the manifest; found by raw, encoded and lower-case-hex forms. */
    ck_assert_ptr_nonnull(strstr(json, "\"/docs/a%20b%20%C3%BC.txt\": {"));
    ck_assert_ptr_nonnull(strstr(json, "\"/docs/x%2By%3Dz.js\": {"));
    ck_assert_int_eq(patient_manifest_lookup(m, "/docs/a b \xc3\xbc.txt", &r), PATIENT_OK);
    ck_assert_uint_eq(r.size, 19);
    ck_assert_str_eq(r.type, "text/plain");
    ck_assert_int_eq(patient_manifest_lookup(m, "/docs/a%20b%20%c3%bc.txt", &r), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/docs/x+y=z.js", &r), PATIENT_OK);
    ck_assert_str_eq(r.type, "text/javascript");
    ck_assert_int_eq(patient_manifest_lookup(m, "/docs/a%2", &r), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_manifest_lookup(m, "/docs/%00", &r), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_manifest_lookup(m, "/empty", &r), PATIENT_OK);
    ck_assert_uint_eq(r.size, 0);
    ck_assert_int_eq(patient_sha256("", 0, empty), PATIENT_OK);
    ck_assert_mem_eq(r.hash, empty, 32);
    ck_assert_str_eq(r.type, "application/octet-stream");
    ck_assert_int_eq(patient_manifest_lookup(m, "/.hidden", &r), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/.well-known/security.txt", &r), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/.well-known/patient/manifest.json", &r),
                     PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(patient_manifest_lookup(m, "/.well-known/patient/disclosure.json", &r),
                     PATIENT_ERR_NOT_FOUND);
    ck_assert_str_eq(patient_manifest_origin(m), "https://example.org");
    ck_assert_uint_eq(patient_manifest_version(m), 1);
    ck_assert_int_eq(patient_manifest_next_key_count(m), 0);
    ck_assert_int_eq(patient_manifest_delegation_count(m), 0);
    patient_manifest_free(m);
    patient_manifest_free(NULL);
    free(json);
    free(root);
}
END_TEST

START_TEST(test_build_deterministic)
{
    char *root = mktree(), *a = NULL, *b = NULL, *c = NULL, *g;
    size_t la, lb, lc, lg;
    patient_pubkey pk;
    patient_manifest_opts o;

    test_pub(&pk);
    o = golden_opts(&pk);
    o.threads = 1;
    ck_assert_int_eq(patient_manifest_build(root, &o, &a, &la, NULL), PATIENT_OK);
    o.threads = 2;
    ck_assert_int_eq(patient_manifest_build(root, &o, &b, &lb, NULL), PATIENT_OK);
    o.threads = 0;
    ck_assert_int_eq(patient_manifest_build(root, &o, &c, &lc, NULL), PATIENT_OK);
    ck_assert_uint_eq(la, lb);
    ck_assert_uint_eq(la, lc);
    ck_assert_mem_eq(a, b, la);
    ck_assert_mem_eq(a, c, la);
    /* Byte for byte the committed golden manifest. After a deliberate
     * format change, PATIENT_REGEN_GOLDEN=1 rewrites it (and its
     * signature; Ed25519 is deterministic) from this build. */
    if (getenv("PATIENT_REGEN_GOLDEN")) {
        patient_seckey *sk = test_key();
        char *sig = NULL;
        FILE *f;
        ck_assert_int_eq(patient_manifest_sign(sk, a, la, &sig), PATIENT_OK);
        ck_assert_ptr_nonnull(f = fopen(DATA "manifest_golden.json", "wb"));
        ck_assert_uint_eq(fwrite(a, 1, la, f), la);
        fclose(f);
        ck_assert_ptr_nonnull(f = fopen(DATA "manifest_golden.json.minisig", "wb"));
        ck_assert_uint_eq(fwrite(sig, 1, strlen(sig), f), strlen(sig));
        fclose(f);
        free(sig);
        patient_seckey_free(sk);
    }
    g = slurp(DATA "manifest_golden.json", &lg);
    ck_assert_uint_eq(la, lg);
    ck_assert_mem_eq(a, g, la);
    free(a);
    free(b);
    free(c);
    free(g);
    free(root);
}
END_TEST

START_TEST(test_build_many_files_threads)
{
    char root[512], name[64] = {0}, *a = NULL, *b = NULL;
    size_t la, lb;
    patient_manifest_opts o = golden_opts(NULL);
    patient_manifest *m = NULL;

    snprintf(root, sizeof root, "%s/many", tmpdir);
    mkdir(root, 0755);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "d%d/f%03d.bin", i % 7, i);
        write_file(root, name, name, (size_t)(i % 40));
    }
    o.threads = 1;
    ck_assert_int_eq(patient_manifest_build(root, &o, &a, &la, NULL), PATIENT_OK);
    o.threads = 4;
    ck_assert_int_eq(patient_manifest_build(root, &o, &b, &lb, NULL), PATIENT_OK);
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(a, b, la);
    ck_assert_int_eq(patient_manifest_parse(a, la, &m), PATIENT_OK);
    ck_assert_uint_eq(patient_manifest_count(m), 300);
    patient_manifest_free(m);
    free(a);
    free(b);
}
END_TEST

static patient_err
build_err(const char *root, char **detail)
{
    patient_manifest_opts o = golden_opts(NULL);
    char *json = NULL;
    size_t len = 0;
    patient_err err = patient_manifest_build(root, &o, &json, &len, detail);
    if (err != PATIENT_OK)
        ck_assert_ptr_null(json);
    free(json);
    return err;
}

START_TEST(test_build_symlink_escape)
{
    char *root = mktree(), link[600], *detail = NULL;

    snprintf(link, sizeof link, "%s/docs/passwd", root);
    ck_assert_int_eq(symlink("/etc/passwd", link), 0);
    ck_assert_int_eq(build_err(root, &detail), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_ptr_nonnull(detail);
    ck_assert_ptr_nonnull(strstr(detail, "docs/passwd"));
    free(detail);
    detail = NULL;
    /* Relative escape too. */
    unlink(link);
    ck_assert_int_eq(symlink("../../", link), 0);
    ck_assert_int_eq(build_err(root, &detail), PATIENT_ERR_UNSAFE_PATH);
    free(detail);
    free(root);
}
END_TEST

START_TEST(test_build_symlink_inside)
{
    char *root = mktree(), link[600], *json = NULL;
    size_t len = 0;
    patient_manifest_opts o = golden_opts(NULL);
    patient_manifest *m = NULL;
    patient_resource r, r2;

    snprintf(link, sizeof link, "%s/style.css", root);
    ck_assert_int_eq(symlink("css/site.css", link), 0);
    snprintf(link, sizeof link, "%s/docs/about", root);
    ck_assert_int_eq(symlink("../about", link), 0);
    ck_assert_int_eq(patient_manifest_build(root, &o, &json, &len, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_parse(json, len, &m), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/style.css", &r), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/css/site.css", &r2), PATIENT_OK);
    ck_assert_mem_eq(r.hash, r2.hash, 32);
    ck_assert_int_eq(patient_manifest_lookup(m, "/docs/about/", &r), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_lookup(m, "/docs/about/index.html", &r), PATIENT_OK);
    patient_manifest_free(m);
    free(json);
    free(root);
}
END_TEST

START_TEST(test_build_symlink_loop_dangling)
{
    char *root = mktree(), link[600], *detail = NULL;

    snprintf(link, sizeof link, "%s/docs/up", root);
    ck_assert_int_eq(symlink("..", link), 0);
    ck_assert_int_eq(build_err(root, &detail), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_ptr_nonnull(strstr(detail, "loop"));
    free(detail);
    detail = NULL;
    unlink(link);
    ck_assert_int_eq(symlink("../css", link), 0); /* not a loop: a sibling */
    ck_assert_int_eq(build_err(root, NULL), PATIENT_OK);
    unlink(link);
    ck_assert_int_eq(symlink("nowhere", link), 0);
    ck_assert_int_eq(build_err(root, &detail), PATIENT_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(detail, "dangling"));
    free(detail);
    free(root);
}
END_TEST

START_TEST(test_build_fifo)
{
    char *root = mktree(), p[600], *detail = NULL;

    snprintf(p, sizeof p, "%s/css/pipe", root);
    ck_assert_int_eq(mkfifo(p, 0644), 0);
    ck_assert_int_eq(build_err(root, &detail), PATIENT_ERR_UNSAFE_PATH);
    ck_assert_ptr_nonnull(strstr(detail, "FIFO"));
    ck_assert_ptr_nonnull(strstr(detail, "css/pipe"));
    free(detail);
    free(root);
}
END_TEST

START_TEST(test_build_bad_args)
{
    char *root = mktree(), *json = NULL;
    size_t len;
    patient_manifest_opts o = golden_opts(NULL);
    static const char *bad[] = {"HTTPS://example.org", "https://Example.org",
                                "https://example.org/", "https://example.org/x",
                                "ftp://example.org", "https://", "https://a..b",
                                "https://example.org:0", "https://example.org:65536",
                                "https://user@example.org", "https://example.org?x",
                                "https://example.org:08080", "example.org"};
    static const char *good[] = {"http://127.0.0.1:8080", "https://[::1]:8443",
                                 "https://a-b.example.org:443", "http://localhost"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.origin = bad[i];
        ck_assert_msg(patient_manifest_build(root, &o, &json, &len, NULL) == PATIENT_ERR_ARG,
                      "accepted origin %s", bad[i]);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        o.origin = good[i];
        ck_assert_msg(patient_manifest_build(root, &o, &json, &len, NULL) == PATIENT_OK,
                      "refused origin %s", good[i]);
        free(json);
    }
    o.origin = "https://example.org";
    o.expires = o.issued;
    ck_assert_int_eq(patient_manifest_build(root, &o, &json, &len, NULL), PATIENT_ERR_ARG);
    o.expires = GOLDEN_EXPIRES;
    o.version = 0;
    ck_assert_int_eq(patient_manifest_build(root, &o, &json, &len, NULL), PATIENT_ERR_ARG);
    o.version = 1;
    o.delegations_json = "[{\"name\":\"x\"}]";
    ck_assert_int_eq(patient_manifest_build(root, &o, &json, &len, NULL), PATIENT_ERR_PARSE);
    o.delegations_json = NULL;
    ck_assert_int_eq(patient_manifest_build("/nonexistent/site", &o, &json, &len, NULL),
                     PATIENT_ERR_NOT_FOUND);
    free(root);
}
END_TEST

/* ---- publishing ---- */

static uint64_t
published_version(const char *root, patient_err *verr)
{
    char p[600], q[620], *j, *s;
    size_t jl, sl;
    patient_pubkey pk;
    patient_manifest *m = NULL;
    uint64_t v = 0;

    test_pub(&pk);
    snprintf(p, sizeof p, "%s/.well-known/patient/manifest.json", root);
    snprintf(q, sizeof q, "%s.minisig", p);
    j = slurp(p, &jl);
    s = slurp(q, &sl);
    *verr = patient_manifest_verify(j, jl, s, sl, &pk, &m);
    if (m)
        v = patient_manifest_version(m);
    patient_manifest_free(m);
    free(j);
    free(s);
    return v;
}

START_TEST(test_publish_versions)
{
    char *root = mktree(), p[600], *detail = NULL;
    patient_seckey *sk = test_key();
    patient_manifest_opts o = golden_opts(NULL);
    patient_publish_result res;
    patient_err verr;

    o.version = 0;
    /* make_tree planted a junk manifest: it is not silently replaced. */
    snprintf(p, sizeof p, "%s/.well-known/patient/manifest.json", root);
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, &detail),
                     PATIENT_ERR_JSON);
    ck_assert_ptr_nonnull(strstr(detail, p));
    free(detail);
    detail = NULL;
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, NULL), PATIENT_OK);
    ck_assert_uint_eq(res.version, 1);
    ck_assert_uint_eq(res.resources, 10);
    ck_assert_uint_eq(published_version(root, &verr), 1);
    ck_assert_int_eq(verr, PATIENT_OK);
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, NULL), PATIENT_OK);
    ck_assert_uint_eq(res.version, 2);
    ck_assert_uint_eq(published_version(root, &verr), 2);
    ck_assert_int_eq(verr, PATIENT_OK);
    /* An explicit version must move forward. */
    o.version = 2;
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, &detail),
                     PATIENT_ERR_ROLLBACK);
    free(detail);
    detail = NULL;
    o.version = 10;
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, NULL), PATIENT_OK);
    ck_assert_uint_eq(published_version(root, &verr), 10);
    /* A corrupt previous manifest stops an automatic version... */
    WRITE(root, ".well-known/patient/manifest.json", "{\"patient\": 1, broken");
    o.version = 0;
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, &detail),
                     PATIENT_ERR_JSON);
    ck_assert_ptr_nonnull(strstr(detail, p));
    free(detail);
    /* ...but an explicit one replaces it. */
    o.version = 11;
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, NULL), PATIENT_OK);
    ck_assert_uint_eq(published_version(root, &verr), 11);
    ck_assert_int_eq(verr, PATIENT_OK);
    patient_seckey_free(sk);
    free(root);
}
END_TEST

/* The publish state's numbers (docs/format/manifest.md, "Publish state"):
 * strict decimal, each at its cap. Each case publishes (a fresh state),
 * puts value in place of field of the state's first file line (or its
 * first "s" line), signs the state again with the key's state MAC, and
 * publishes again: a state that reads reuses hashes, one that does not
 * reuses none. */
typedef struct {
    int field;
    const char *value;
    int reads;
} state_num;

static void
state_case(const char *root, patient_seckey *sk, patient_manifest_opts *o, int shard,
           const state_num *c)
{
    patient_publish_result res;
    char *t, *line, *end, *fs, *fe, *nt = NULL, hex[65];
    uint8_t k[32], mac[32];
    size_t len;

    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, o, &res, NULL), PATIENT_OK);
    t = slurp(o->state_path, &len);
    /* After the magic and manifest lines: the "s" lines, then the files'
     * (fields one blank apart). */
    line = strchr(strchr(t, '\n') + 1, '\n') + 1;
    while (!shard && strncmp(line, "s ", 2) == 0)
        line = strchr(line, '\n') + 1;
    ck_assert(shard ? strncmp(line, "s ", 2) == 0 : strncmp(line, "mac ", 4) != 0);
    fs = line;
    for (int i = 0; i < c->field; i++)
        fs = strchr(fs, ' ') + 1;
    fe = strchr(fs, ' ');
    end = strstr(t, "\nmac ") + 1;
    ck_assert(asprintf(&nt, "%.*s%s%.*s", (int)(fs - t), t, c->value, (int)(end - fe), fe) > 0);
    pt_seckey_derive(sk, "patient-publish-state-v1", k);
    crypto_generichash(mac, sizeof mac, (const uint8_t *)nt, strlen(nt), k, sizeof k);
    pt_hex(mac, sizeof mac, hex);
    free(t);
    ck_assert(asprintf(&t, "%smac %s\n", nt, hex) > 0);
    ck_assert_int_eq(pt_write_atomic(o->state_path, t, strlen(t), 0600, 0), PATIENT_OK);
    free(t);
    free(nt);
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, o, &res, NULL), PATIENT_OK);
    if (c->reads)
        ck_assert_msg(res.files_reused > 0, "field %d = \"%s\": reused %zu", c->field, c->value,
                      res.files_reused);
    else
        ck_assert_msg(res.files_reused == 0 && res.reuse_note != NULL &&
                          strcmp(res.reuse_note,
                                 "publish state not authentic or not for this manifest") == 0,
                      "field %d = \"%s\": reused %zu", c->field, c->value, res.files_reused);
}

/* Files written just now are hashed but not recorded: files[] are made
 * old first. */
static void
state_cases(const char *root, const char *const *files, size_t nfiles, int shard,
            const state_num *c, size_t n)
{
    patient_seckey *sk = test_key();
    patient_manifest_opts o = golden_opts(NULL);
    struct timespec old[2] = {{GOLDEN_ISSUED, 0}, {GOLDEN_ISSUED, 0}};
    char p[1024], st[600];

    for (size_t i = 0; i < nfiles; i++) {
        snprintf(p, sizeof p, "%s/%s", root, files[i]);
        ck_assert_int_eq(utimensat(AT_FDCWD, p, old, 0), 0);
    }
    snprintf(st, sizeof st, "%s/state", tmpdir);
    o.version = 0;
    o.state_path = st;
    for (size_t i = 0; i < n; i++)
        state_case(root, sk, &o, shard, &c[i]);
    patient_seckey_free(sk);
}

START_TEST(test_publish_state_numbers)
{
    static const char *const files[] = {"index.html", "about/index.html", "css/site.css",
                                        "docs/a b \xc3\xbc.txt", "docs/x+y=z.js", "empty",
                                        ".hidden", ".well-known/security.txt"};
    /* Fields 0-4: dev, ino, size, seconds, nanoseconds. */
    static const state_num c[] = {
        {0, "18446744073709551615", 1}, {0, "18446744073709551616", 0},
        {0, "99999999999999999999", 0}, {0, "0", 1},
        {0, "00", 0},                   {0, "01", 0},
        {0, "+1", 0},                   {0, "-1", 0},
        {0, " 1", 0},                   {1, "18446744073709551615", 1},
        {1, "18446744073709551616", 0}, {2, "18446744073709551615", 1},
        {2, "18446744073709551616", 0}, {2, "007", 0},
        {3, "9223372036854775807", 1},  {3, "9223372036854775808", 0},
        {3, "-9223372036854775807", 1}, {3, "-9223372036854775808", 0},
        {3, "-0", 0},                   {3, "--1", 0},
        {3, "-01", 0},                  {3, "+1", 0},
        {4, "999999999", 1},            {4, "1000000000", 0},
        {4, "0", 1},                    {4, "00", 0},
    };
    char *root = mktree_clean();

    state_cases(root, files, sizeof files / sizeof *files, 0, c, sizeof c / sizeof *c);
    free(root);
}
END_TEST

/* A sharded tree's "s" lines: level 1..PT_SHARD_MAX_LEVELS (3), bin index
 * below 2^24 (fields 1 and 2). */
START_TEST(test_publish_state_shard_numbers)
{
    static const state_num c[] = {
        {1, "3", 1},        {1, "4", 0},        {1, "9", 0},        {1, "0", 0},
        {1, "01", 0},       {1, "+1", 0},       {2, "16777215", 1}, {2, "16777216", 0},
        {2, "00", 0},       {2, "-1", 0},
    };
    char root[512], *files[PT_SHARD_MIN + 8];

    snprintf(root, sizeof root, "%s/big", tmpdir);
    mkdir(root, 0755);
    for (unsigned i = 0; i < PT_SHARD_MIN + 8; i++) {
        char body[64];
        ck_assert(asprintf(&files[i], "d%u/p%u.html", i % 7, i) > 0);
        snprintf(body, sizeof body, "page %u\n", i);
        WRITE(root, files[i], body);
    }
    state_cases(root, (const char *const *)files, PT_SHARD_MIN + 8, 1, c, sizeof c / sizeof *c);
    for (unsigned i = 0; i < PT_SHARD_MIN + 8; i++)
        free(files[i]);
}
END_TEST

START_TEST(test_publish_recovery)
{
    char *root = mktree_clean(), p[600], sigp[620], next[640], *j, *s;
    size_t jl, sl;
    patient_seckey *sk = test_key();
    patient_manifest_opts o = golden_opts(NULL);
    patient_publish_result res;
    patient_err verr;
    struct stat st;

    o.version = 0;
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, NULL), PATIENT_OK);
    snprintf(p, sizeof p, "%s/.well-known/patient/manifest.json", root);
    snprintf(sigp, sizeof sigp, "%s.minisig", p);
    snprintf(next, sizeof next, "%s.minisig.next", p);
    /* Stale .next (does not match the manifest): removed. */
    WRITE(root, ".well-known/patient/manifest.json.minisig.next", "junk\n");
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, NULL), PATIENT_OK);
    ck_assert_int_eq(res.recovered, 0);
    ck_assert_int_eq(lstat(next, &st), -1);
    ck_assert_uint_eq(published_version(root, &verr), 2);
    /* Crash between the manifest rename and the signature rename: new
     * manifest, old signature, matching .next beside them. */
    j = slurp(p, &jl);
    {
        char *j3 = tu_replace1(j, "\"version\": 2\n", "\"version\": 3\n"), *s3 = NULL;
        ck_assert_int_eq(patient_manifest_sign(sk, j3, strlen(j3), &s3), PATIENT_OK);
        WRITE(root, ".well-known/patient/manifest.json.minisig.next", s3);
        WRITE(root, ".well-known/patient/manifest.json", j3);
        free(j3);
        free(s3);
    }
    published_version(root, &verr);
    ck_assert_int_eq(verr, PATIENT_ERR_SIGNATURE); /* the mismatch a reader would see */
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, NULL), PATIENT_OK);
    ck_assert_int_eq(res.recovered, 1);
    ck_assert_uint_eq(res.version, 4);
    ck_assert_uint_eq(published_version(root, &verr), 4);
    ck_assert_int_eq(verr, PATIENT_OK);
    s = slurp(sigp, &sl);
    free(s);
    free(j);
    patient_seckey_free(sk);
    free(root);
}
END_TEST

START_TEST(test_publish_out_inside_tree)
{
    char *root = mktree_clean(), out[600], *j;
    size_t jl;
    patient_seckey *sk = test_key();
    patient_manifest_opts o = golden_opts(NULL);
    patient_publish_result res;

    snprintf(out, sizeof out, "%s/docs/m.json", root);
    o.version = 0;
    ck_assert_int_eq(patient_manifest_publish(root, out, sk, &o, &res, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_publish(root, out, sk, &o, &res, NULL), PATIENT_OK);
    ck_assert_uint_eq(res.version, 2);
    ck_assert_uint_eq(res.resources, 10); /* m.json and m.json.minisig not listed */
    j = slurp(out, &jl);
    ck_assert_ptr_null(strstr(j, "m.json"));
    free(j);
    patient_seckey_free(sk);
    free(root);
}
END_TEST

START_TEST(test_publish_refuses_symlinked_wellknown)
{
    char *root = mktree(), p[600], target[600], *detail = NULL;
    patient_seckey *sk = test_key();
    patient_manifest_opts o = golden_opts(NULL);

    tu_rmtree(tu_path(root, ".well-known"));
    snprintf(target, sizeof target, "%s/elsewhere", tmpdir);
    mkdir(target, 0755);
    snprintf(p, sizeof p, "%s/.well-known", root);
    ck_assert_int_eq(symlink(target, p), 0);
    o.version = 0;
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, NULL, &detail),
                     PATIENT_ERR_UNSAFE_PATH);
    ck_assert_ptr_nonnull(strstr(detail, ".well-known"));
    free(detail);
    patient_seckey_free(sk);
    free(root);
}
END_TEST

/* ---- golden fixture and forged twins ---- */

START_TEST(test_golden_verify)
{
    char *j, *s, *sig2 = NULL;
    size_t jl, sl;
    patient_pubkey pk;
    patient_manifest *m = NULL;
    patient_seckey *sk = test_key();
    const patient_delegation *d;
    patient_resource r;

    test_pub(&pk);
    golden(&j, &jl, &s, &sl);
    ck_assert_int_eq(patient_manifest_verify(j, jl, s, sl, &pk, &m), PATIENT_OK);
    ck_assert_str_eq(patient_manifest_origin(m), "https://example.org");
    ck_assert_uint_eq(patient_manifest_version(m), 1);
    ck_assert_int_eq(patient_manifest_issued(m), GOLDEN_ISSUED);
    ck_assert_int_eq(patient_manifest_expires(m), GOLDEN_EXPIRES);
    ck_assert_int_eq(patient_manifest_check_fresh(m, GOLDEN_ISSUED + 86400), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_check_fresh(m, GOLDEN_EXPIRES), PATIENT_OK);
    ck_assert_uint_eq(patient_manifest_next_key_count(m), 1);
    ck_assert_mem_eq(patient_manifest_next_key(m, 0)->pk, pk.pk, 32);
    ck_assert_ptr_null(patient_manifest_next_key(m, 1));
    ck_assert_uint_eq(patient_manifest_delegation_count(m), 1);
    d = patient_manifest_delegation(m, 0);
    ck_assert_str_eq(d->name, "Example Filter");
    ck_assert_uint_eq(d->n_reasons, 2);
    ck_assert_str_eq(d->reasons[0], "malware.*");
    ck_assert_uint_eq(d->n_paths, 1);
    ck_assert_str_eq(d->paths[0], "/*");
    ck_assert_int_eq(patient_manifest_resource(m, 0, &r), PATIENT_OK);
    ck_assert_str_eq(r.path, "/");
    ck_assert_int_eq(patient_manifest_resource(m, 99, &r), PATIENT_ERR_NOT_FOUND);
    /* Ed25519 is deterministic: our signature is byte for byte the fixture. */
    ck_assert_int_eq(patient_manifest_sign(sk, j, jl, &sig2), PATIENT_OK);
    ck_assert_str_eq(sig2, s);
    patient_manifest_free(m);
    patient_seckey_free(sk);
    free(sig2);
    free(j);
    free(s);
}
END_TEST

START_TEST(test_forged_byte)
{
    char *j, *s;
    size_t jl, sl;
    patient_pubkey pk;
    patient_manifest *m = NULL;
    char *p;

    test_pub(&pk);
    golden(&j, &jl, &s, &sl);
    p = strstr(j, "\"size\": 38");
    ck_assert_ptr_nonnull(p);
    p[9] = '9'; /* 38 -> 39 */
    ck_assert_int_eq(patient_manifest_verify(j, jl, s, sl, &pk, &m), PATIENT_ERR_SIGNATURE);
    ck_assert_ptr_null(m);
    p[9] = '8';
    ck_assert_int_eq(patient_manifest_verify(j, jl, s, sl, &pk, &m), PATIENT_OK);
    patient_manifest_free(m);
    /* Trailing garbage after the signed bytes is a different file. */
    ck_assert_int_eq(patient_manifest_verify(j, jl - 1, s, sl, &pk, &m), PATIENT_ERR_SIGNATURE);
    free(j);
    free(s);
}
END_TEST

START_TEST(test_forged_other_key)
{
    char *j, *s, *sig = NULL;
    size_t jl, sl;
    patient_pubkey pk, opk;
    patient_seckey *other = NULL;
    patient_manifest *m = NULL;

    test_pub(&pk);
    golden(&j, &jl, &s, &sl);
    ck_assert_int_eq(patient_keypair_generate(&opk, &other), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_sign(other, j, jl, &sig), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_verify(j, jl, sig, strlen(sig), &pk, &m),
                     PATIENT_ERR_KEY_MISMATCH);
    ck_assert_int_eq(patient_manifest_verify(j, jl, s, sl, &opk, &m), PATIENT_ERR_KEY_MISMATCH);
    ck_assert_int_eq(patient_manifest_verify(j, jl, sig, strlen(sig), &opk, &m), PATIENT_OK);
    patient_manifest_free(m);
    patient_seckey_free(other);
    free(sig);
    free(j);
    free(s);
}
END_TEST

START_TEST(test_forged_reserialised)
{
    char *j, *s, *j2;
    size_t jl, sl;
    patient_pubkey pk;
    patient_manifest *m = NULL;
    cJSON *c;

    test_pub(&pk);
    golden(&j, &jl, &s, &sl);
    ck_assert_ptr_nonnull(c = cJSON_ParseWithLength(j, jl));
    ck_assert_ptr_nonnull(j2 = cJSON_Print(c)); /* same content, other bytes */
    ck_assert_int_eq(patient_manifest_parse(j2, strlen(j2), &m), PATIENT_OK);
    patient_manifest_free(m);
    m = NULL;
    ck_assert_int_eq(patient_manifest_verify(j2, strlen(j2), s, sl, &pk, &m),
                     PATIENT_ERR_SIGNATURE);
    cJSON_Delete(c);
    cJSON_free(j2);
    free(j);
    free(s);
}
END_TEST

START_TEST(test_forged_expired)
{
    char *j, *s;
    size_t jl, sl;
    patient_pubkey pk;
    patient_manifest *m = NULL;

    test_pub(&pk);
    golden(&j, &jl, &s, &sl);
    ck_assert_int_eq(patient_manifest_verify(j, jl, s, sl, &pk, &m), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_check_fresh(m, GOLDEN_EXPIRES + 1), PATIENT_ERR_EXPIRED);
    /* Issued in the future beyond the allowed skew: not yet valid. */
    ck_assert_int_eq(patient_manifest_check_fresh(m, GOLDEN_ISSUED - PATIENT_CLOCK_SKEW),
                     PATIENT_OK);
    ck_assert_int_eq(patient_manifest_check_fresh(m, GOLDEN_ISSUED - PATIENT_CLOCK_SKEW - 1),
                     PATIENT_ERR_EXPIRED);
    patient_manifest_free(m);
    free(j);
    free(s);
}
END_TEST

/* Content twins, each signed with the right key, so only the content is at fault. */
START_TEST(test_forged_content)
{
    char *j, *s, *f;
    size_t jl, sl;
    patient_manifest *m = NULL;
    static const struct {
        const char *from, *to;
        patient_err want;
    } cases[] = {
        {"\n}\n", "\n", PATIENT_ERR_JSON},                               /* malformed */
        {"\"version\": 1\n", "\"version\": 0\n", PATIENT_ERR_PARSE},       /* version 0 */
        {"\"version\": 1\n", "\"version\": -1\n", PATIENT_ERR_PARSE},      /* negative */
        {"\"version\": 1\n", "\"version\": 1.5\n", PATIENT_ERR_PARSE},     /* not integer */
        {"\"version\": 1\n", "\"version\": \"1\"\n", PATIENT_ERR_PARSE},   /* string */
        {"\"https://example.org\"", "\"https://example.org/a\"", PATIENT_ERR_PARSE},
        {"\"https://example.org\"", "\"https://example.org/\"", PATIENT_ERR_PARSE},
        {"\"https://example.org\"", "\"https://EXAMPLE.org\"", PATIENT_ERR_PARSE},
        {"\"patient\": 1", "\"patient\": 2", PATIENT_ERR_UNSUPPORTED},
        {"\"type\": \"manifest\"", "\"type\": \"disclosure\"", PATIENT_ERR_PARSE},
        {"\"issued\": \"2026-01-01T00:00:00Z\"", "\"issued\": \"2026-01-01 00:00:00\"",
         PATIENT_ERR_PARSE},
        {"\"expires\": \"2026-01-08T00:00:00Z\"", "\"expires\": \"2025-01-08T00:00:00Z\"",
         PATIENT_ERR_PARSE}, /* expires before issued */
        {"\"/css/site.css\"", "\"/css/site%2ecss\"", PATIENT_ERR_PARSE}, /* not canonical */
        {"\"/css/site.css\"", "\"/css/../site.css\"", PATIENT_ERR_PARSE},
        {"\"/css/site.css\"", "\"css/site.css\"", PATIENT_ERR_PARSE},
        {"\"/css/site.css\"", "\"/css//site.css\"", PATIENT_ERR_PARSE},
        /* duplicate names anywhere are refused by the JSON layer */
        {"\"/css/site.css\"", "\"/index.html\"", PATIENT_ERR_JSON},
        {"\"version\": 1\n", "\"version\": 1,\n  \"version\": 2\n", PATIENT_ERR_JSON},
        {"\"size\": 38", "\"size\": -38", PATIENT_ERR_PARSE},
        /* integers only as integer literals, whatever double they make */
        {"\"version\": 1\n", "\"version\": 1.0\n", PATIENT_ERR_PARSE},
        {"\"version\": 1\n", "\"version\": 1e0\n", PATIENT_ERR_PARSE},
        {"\"version\": 1\n", "\"version\": 0.99999999999999999\n", PATIENT_ERR_PARSE},
        {"\"patient\": 1", "\"patient\": 1.0", PATIENT_ERR_PARSE},
        {"\"size\": 38", "\"size\": 38.0", PATIENT_ERR_PARSE},
        {"\"size\": 38", "\"size\": 3.8e1", PATIENT_ERR_PARSE},
        {"\"size\": 38", "\"size\": 37.99999999999999999", PATIENT_ERR_PARSE},
        {"\"size\": 38", "\"size\": 038", PATIENT_ERR_JSON}, /* not JSON at all */
        {"{", "\xEF\xBB\xBF{", PATIENT_ERR_JSON},                 /* byte-order mark */
        {"\"integrity\": \"sha256-", "\"integrity\": \"sha512-", PATIENT_ERR_PARSE},
        {"\"type\": \"text/css\"", "\"type\": \"\"", PATIENT_ERR_PARSE},
        {"\"next_keys\": [\n    \"RW", "\"next_keys\": [\n    \"XX", PATIENT_ERR_PARSE},
        {"\"reasons\": [", "\"reasons\": 7, \"x\": [", PATIENT_ERR_PARSE},
    };

    golden(&j, &jl, &s, &sl);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        patient_err err;
        f = tu_replace1(j, cases[i].from, cases[i].to);
        err = sign_and_verify(f, &m);
        ck_assert_msg(err == cases[i].want, "case %zu (%s -> %s): got %s, want %s", i,
                      cases[i].from, cases[i].to, patient_errname(err),
                      patient_errname(cases[i].want));
        ck_assert_ptr_null(m);
        free(f);
    }
    /* The untouched golden signed the same way verifies, so the cases above
     * fail for their content only. */
    ck_assert_int_eq(sign_and_verify(j, &m), PATIENT_OK);
    patient_manifest_free(m);
    free(j);
    free(s);
}
END_TEST

START_TEST(test_forged_comment)
{
    char *j, *s, *sig = NULL;
    size_t jl, sl;
    patient_seckey *sk = test_key();
    patient_pubkey pk;
    patient_manifest *m = NULL;

    test_pub(&pk);
    golden(&j, &jl, &s, &sl);
    /* Valid signature, but the trusted comment claims another version. */
    ck_assert_int_eq(patient_minisig_sign(sk, j, jl, NULL,
                                          "patient-manifest origin=https://example.org "
                                          "version=7 expires=2026-01-08T00:00:00Z",
                                          &sig),
                     PATIENT_OK);
    ck_assert_int_eq(patient_manifest_verify(j, jl, sig, strlen(sig), &pk, &m),
                     PATIENT_ERR_PARSE);
    free(sig);
    patient_seckey_free(sk);
    free(j);
    free(s);
}
END_TEST

START_TEST(test_limits)
{
    pt_buf b = {0};
    patient_manifest *m = NULL;
    char *big;

    /* 1,000,001 resources (empty objects keep it under the byte cap). */
    ck_assert_int_eq(pt_buf_appendf(&b, "{\"patient\": 1, \"type\": \"manifest\", \"origin\": "
                                        "\"https://example.org\", \"version\": 1, \"issued\": "
                                        "\"2026-01-01T00:00:00Z\", \"expires\": "
                                        "\"2026-01-08T00:00:00Z\", \"resources\": {"),
                     PATIENT_OK);
    for (unsigned i = 0; i <= PATIENT_MANIFEST_MAX_RESOURCES; i++)
        ck_assert_int_eq(pt_buf_appendf(&b, "%s\"/%u\":{}", i ? "," : "", i), PATIENT_OK);
    ck_assert_int_eq(pt_buf_append(&b, "}}\n", 3), PATIENT_OK);
    ck_assert_uint_lt(b.len, PATIENT_MANIFEST_MAX_BYTES);
    ck_assert_int_eq(patient_manifest_parse(b.data, b.len, &m), PATIENT_ERR_LIMIT);
    ck_assert_ptr_null(m);
    pt_buf_free(&b);
    /* Over the byte cap: refused before parsing. */
    big = malloc(PATIENT_MANIFEST_MAX_BYTES + 1);
    memset(big, ' ', PATIENT_MANIFEST_MAX_BYTES + 1);
    ck_assert_int_eq(patient_manifest_parse(big, PATIENT_MANIFEST_MAX_BYTES + 1, &m),
                     PATIENT_ERR_TOO_LARGE);
    free(big);
    /* Items bomb: many tiny arrays. */
    ck_assert_int_eq(pt_buf_append(&b, "[", 1), PATIENT_OK);
    for (unsigned i = 0; i < 2600000; i++)
        ck_assert_int_eq(pt_buf_append(&b, i ? ",[]" : "[]", i ? 3 : 2), PATIENT_OK);
    ck_assert_int_eq(pt_buf_append(&b, "]", 1), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_parse(b.data, b.len, &m), PATIENT_ERR_LIMIT);
    pt_buf_free(&b);
    /* Deep nesting. */
    for (unsigned i = 0; i < 100; i++)
        ck_assert_int_eq(pt_buf_append(&b, "[", 1), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_parse(b.data, b.len, &m), PATIENT_ERR_JSON);
    pt_buf_free(&b);
}
END_TEST

/* ---- Patient-Origin ---- */

START_TEST(test_origin_roundtrip)
{
    patient_seckey *sk = test_key(), *other = NULL;
    patient_pubkey pk, opk;
    const char *url = "https://example.org/api/now?x=1";
    const char *body = "{\"now\": 42}\n";
    time_t t = GOLDEN_ISSUED;
    char *jws = NULL, *jws2 = NULL, *forged;
    patient_origin_info info;

    test_pub(&pk);
    ck_assert_int_eq(patient_origin_sign(sk, url, body, strlen(body), t, t + 3600, &jws),
                     PATIENT_OK);
    ck_assert_int_eq(patient_origin_verify(jws, &pk, url, body, strlen(body), t + 60, &info),
                     PATIENT_OK);
    ck_assert_uint_eq(info.size, strlen(body));
    ck_assert_int_eq(info.date, t);
    ck_assert_int_eq(info.expires, t + 3600);
    ck_assert_mem_eq(info.kid, pk.id, 8);
    /* Twins. */
    ck_assert_int_eq(patient_origin_verify(jws, &pk, "https://example.org/api/now?x=2", body,
                                           strlen(body), t, NULL),
                     PATIENT_ERR_ORIGIN);
    ck_assert_int_eq(patient_origin_verify(jws, &pk, url, "{\"now\": 43}\n", strlen(body), t,
                                           NULL),
                     PATIENT_ERR_HASH);
    ck_assert_int_eq(patient_origin_verify(jws, &pk, url, body, strlen(body) - 1, t, NULL),
                     PATIENT_ERR_HASH);
    ck_assert_int_eq(patient_origin_verify(jws, &pk, url, body, strlen(body), t + 3601, NULL),
                     PATIENT_ERR_EXPIRED);
    ck_assert_int_eq(
        patient_origin_verify(jws, &pk, url, body, strlen(body), t - PATIENT_CLOCK_SKEW - 1, NULL),
        PATIENT_ERR_EXPIRED);
    ck_assert_int_eq(patient_keypair_generate(&opk, &other), PATIENT_OK);
    ck_assert_int_eq(patient_origin_verify(jws, &opk, url, body, strlen(body), t, NULL),
                     PATIENT_ERR_KEY_MISMATCH);
    /* Same claims, same kid, other key: the signature fails. */
    memcpy(opk.id, pk.id, 8);
    ck_assert_int_eq(patient_origin_verify(jws, &opk, url, body, strlen(body), t, NULL),
                     PATIENT_ERR_SIGNATURE);
    /* One character of the payload changed. */
    forged = strdup(jws);
    {
        char *dot = strchr(forged, '.') + 5;
        *dot = *dot == 'A' ? 'B' : 'A';
    }
    ck_assert_int_eq(patient_origin_verify(forged, &pk, url, body, strlen(body), t, NULL),
                     PATIENT_ERR_SIGNATURE);
    free(forged);
    /* A validly signed JWS of another type is not a Patient-Origin. */
    {
        char *payload = NULL;
        patient_jws *pj = NULL;
        ck_assert_int_eq(patient_jws_parse(jws, strlen(jws), &pj), PATIENT_OK);
        payload = strndup((char *)pj->payload, pj->payload_len);
        ck_assert_int_eq(patient_jws_sign(sk, "patient-change+jws", payload, strlen(payload),
                                          &jws2),
                         PATIENT_OK);
        ck_assert_int_eq(patient_origin_verify(jws2, &pk, url, body, strlen(body), t, NULL),
                         PATIENT_ERR_PARSE);
        ck_assert_ptr_nonnull(strstr(payload, "\"patient\":1"));
        ck_assert_ptr_eq(strstr(payload, "{\"chunk_root\":\"sha256-"), payload);
        patient_jws_free(pj);
        free(payload);
    }
    free(jws2);
    jws2 = NULL;
    ck_assert_int_eq(patient_origin_verify("not.a.jws", &pk, url, body, strlen(body), t, NULL),
                     PATIENT_ERR_BASE64);
    /* Empty bodies are fine. */
    free(jws);
    ck_assert_int_eq(patient_origin_sign(sk, url, NULL, 0, t, t + 60, &jws), PATIENT_OK);
    ck_assert_int_eq(patient_origin_verify(jws, &pk, url, "", 0, t, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_origin_sign(sk, url, NULL, 0, t, t, &jws2), PATIENT_ERR_ARG);
    free(jws);
    free(jws2);
    patient_seckey_free(other);
    patient_seckey_free(sk);
}
END_TEST

/* ---- small pieces ---- */

START_TEST(test_mediatype_and_encode)
{
    char *e = NULL;

    ck_assert_str_eq(patient_mediatype("a/b/index.HTML"), "text/html");
    ck_assert_str_eq(patient_mediatype("x.woff2"), "font/woff2");
    ck_assert_str_eq(patient_mediatype("x.webmanifest"), "application/manifest+json");
    ck_assert_str_eq(patient_mediatype("x.7z"), "application/x-7z-compressed");
    ck_assert_str_eq(patient_mediatype("x.zst"), "application/zstd");
    ck_assert_str_eq(patient_mediatype("x.svg"), "image/svg+xml");
    ck_assert_str_eq(patient_mediatype(".htaccess"), "application/octet-stream");
    ck_assert_str_eq(patient_mediatype("dir.js/README"), "application/octet-stream");
    ck_assert_str_eq(patient_mediatype("x."), "application/octet-stream");
    ck_assert_str_eq(patient_mediatype("x.unknownext"), "application/octet-stream");
    ck_assert_int_eq(patient_url_path_encode("/a b/\xc3\xbc~%?#", 11, &e), PATIENT_OK);
    ck_assert_str_eq(e, "/a%20b/%C3%BC~%25%3F%23");
    free(e);
}
END_TEST

/* ---- shards (docs/format/manifest.md, "Shards") ---- */

START_TEST(test_shard_layout)
{
    unsigned b[3] = {0};

    ck_assert_uint_eq(pt_shard_layout(1, b), 0);
    ck_assert_uint_eq(pt_shard_layout(512, b), 0);
    ck_assert_uint_eq(pt_shard_layout(513, b), 1);
    ck_assert_uint_eq(b[0], 4);
    ck_assert_uint_eq(pt_shard_layout(1000, b), 1);
    ck_assert_uint_eq(b[0], 4);
    ck_assert_uint_eq(pt_shard_layout(100000, b), 2);
    ck_assert(b[0] == 6 && b[1] == 5);
    ck_assert_uint_eq(pt_shard_layout(200000, b), 2);
    ck_assert(b[0] == 6 && b[1] == 6);
    ck_assert_uint_eq(pt_shard_layout(1000000, b), 2);
    ck_assert(b[0] == 7 && b[1] == 7);
}
END_TEST

#define TOP_HEAD "{\"expires\": \"2026-01-08T00:00:00Z\", \"issued\": \"2026-01-01T00:00:00Z\", " \
                 "\"origin\": \"https://example.org\", \"patient\": 1, \"type\": \"manifest\", " \
                 "\"version\": 1, "
#define H64 "\"0000000000000000000000000000000000000000000000000000000000000000\""

START_TEST(test_shard_parse)
{
    static const struct {
        const char *json;
        patient_err want;
    } cases[] = {
        {TOP_HEAD "\"shard_bits\": [1], \"shards\": [" H64 ", " H64 "]}", PATIENT_OK},
        /* both resources and shards, or neither */
        {TOP_HEAD "\"resources\": {}, \"shard_bits\": [1], \"shards\": [" H64 ", " H64 "]}",
         PATIENT_ERR_PARSE},
        {TOP_HEAD "\"shard_bits\": [1]}", PATIENT_ERR_PARSE},
        /* one name short of 2^bits, bits out of range, names not hex */
        {TOP_HEAD "\"shard_bits\": [1], \"shards\": [" H64 "]}", PATIENT_ERR_PARSE},
        {TOP_HEAD "\"shard_bits\": [9], \"shards\": [" H64 ", " H64 "]}", PATIENT_ERR_PARSE},
        {TOP_HEAD "\"shard_bits\": [1, 1, 1, 1], \"shards\": [" H64 ", " H64 "]}",
         PATIENT_ERR_PARSE},
        {TOP_HEAD "\"shard_bits\": [1], \"shards\": [\"00\", " H64 "]}", PATIENT_ERR_PARSE},
        {TOP_HEAD "\"resources\": {}, \"shard_bits\": [1]}", PATIENT_ERR_PARSE},
    };
    patient_manifest *m = NULL;
    uint8_t b[3] = {0};

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(patient_manifest_parse(cases[i].json, strlen(cases[i].json), &m) ==
                          cases[i].want, "case %zu", i);
        if (m) {
            unsigned bits[3];
            ck_assert_uint_eq(patient_manifest_shard_levels(m, bits), 1);
            ck_assert_uint_eq(bits[0], 1);
            ck_assert_uint_eq(patient_manifest_shard_count(m), 2);
            ck_assert_mem_eq(patient_manifest_shard_hash(m, 1), b, 3);
            patient_manifest_free(m);
            m = NULL;
        }
    }
}
END_TEST

/* Shards from a folder, for the lookup; "forge" answers for one name. */
typedef struct {
    const char *dir;
    uint8_t *buf;
    const char *forge_name;
    const uint8_t *forge;
    size_t forge_len;
} shard_src;

static patient_err
shard_get(void *arg, const char *name, const uint8_t **p, size_t *len)
{
    shard_src *s = arg;
    char path[1024];

    if (s->forge_name && strcmp(name, s->forge_name) == 0) {
        if (s->forge == NULL)
            return PATIENT_ERR_NOT_FOUND;
        *p = s->forge;
        *len = s->forge_len;
        return PATIENT_OK;
    }
    free(s->buf);
    s->buf = NULL;
    snprintf(path, sizeof path, "%s/%s.json", s->dir, name);
    if (pt_read_file(path, PATIENT_MANIFEST_SHARD_MAX_BYTES, &s->buf, len) != PATIENT_OK)
        return PATIENT_ERR_NOT_FOUND;
    *p = s->buf;
    return PATIENT_OK;
}

START_TEST(test_shard_lookup)
{
    char root[512], p[700], *name;
    patient_seckey *sk = test_key();
    patient_manifest_opts o = golden_opts(NULL);
    patient_publish_result res;
    patient_manifest *m = NULL, *leaf = NULL;
    patient_resource r;
    patient_shard_info si;
    shard_src src = {0};
    uint8_t *top = NULL, *other = NULL;
    size_t toplen = 0, otherlen = 0;
    char leafname[65], othername[65];

    snprintf(root, sizeof root, "%s/big", tmpdir);
    mkdir(root, 0755);
    for (int i = 0; i < 600; i++) {
        char rel[64], body[64];
        snprintf(rel, sizeof rel, "d%d/p%d.html", i % 7, i);
        snprintf(body, sizeof body, "page %d\n", i);
        WRITE(root, rel, body);
    }
    ck_assert_int_eq(patient_manifest_publish(root, NULL, sk, &o, &res, NULL), PATIENT_OK);
    ck_assert_uint_eq(res.resources, 600);
    ck_assert_uint_eq(res.shards, 16);
    ck_assert_uint_eq(res.shards_written, 16);
    snprintf(p, sizeof p, "%s/.well-known/patient/manifest.json", root);
    ck_assert_int_eq(pt_read_file(p, PATIENT_MANIFEST_MAX_BYTES, &top, &toplen), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_parse(top, toplen, &m), PATIENT_OK);
    snprintf(p, sizeof p, "%s/.well-known/patient/shards", root);
    src.dir = p;
    /* Listed: found in its leaf, with the hash of its bytes. */
    ck_assert_int_eq(patient_manifest_lookup_sharded(m, "/d3/p17.html", shard_get, &src, &leaf,
                                                     &r, &si),
                     PATIENT_OK);
    ck_assert_ptr_nonnull(leaf);
    ck_assert_str_eq(r.path, "/d3/p17.html");
    ck_assert_uint_eq(r.size, 8);
    ck_assert_uint_eq(si.fetched, 1);
    memcpy(leafname, si.name, 65);
    patient_manifest_free(leaf);
    leaf = NULL;
    /* The old single-file lookup does not read a sharded manifest as empty. */
    ck_assert_int_eq(patient_manifest_lookup(m, "/d3/p17.html", &r), PATIENT_ERR_UNSUPPORTED);
    /* Not listed: its leaf does not list it. */
    ck_assert_int_eq(patient_manifest_lookup_sharded(m, "/d3/nope.html", shard_get, &src, &leaf,
                                                     &r, &si),
                     PATIENT_ERR_NOT_FOUND);
    patient_manifest_free(leaf);
    leaf = NULL;
    /* Withheld. */
    src.forge_name = leafname;
    ck_assert_int_eq(patient_manifest_lookup_sharded(m, "/d3/p17.html", shard_get, &src, &leaf,
                                                     &r, &si),
                     PATIENT_ERR_HASH);
    ck_assert_int_eq(si.problem, PATIENT_SHARD_WITHHELD);
    ck_assert_ptr_null(leaf);
    /* Another bin's leaf in its place: misplaced. */
    name = NULL;
    for (size_t i = 0; i < patient_manifest_shard_count(m); i++) {
        pt_hex(patient_manifest_shard_hash(m, i), 32, othername);
        if (strcmp(othername, leafname) != 0) {
            name = othername;
            break;
        }
    }
    ck_assert_ptr_nonnull(name);
    {
        char op[800];
        snprintf(op, sizeof op, "%s/%s.json", p, othername);
        ck_assert_int_eq(pt_read_file(op, PATIENT_MANIFEST_SHARD_MAX_BYTES, &other, &otherlen),
                         PATIENT_OK);
    }
    src.forge = other;
    src.forge_len = otherlen;
    ck_assert_int_eq(patient_manifest_lookup_sharded(m, "/d3/p17.html", shard_get, &src, &leaf,
                                                     &r, &si),
                     PATIENT_ERR_HASH);
    ck_assert_int_eq(si.problem, PATIENT_SHARD_MISPLACED);
    /* Other bytes: hash. */
    src.forge = (const uint8_t *)"{}";
    src.forge_len = 2;
    ck_assert_int_eq(patient_manifest_lookup_sharded(m, "/d3/p17.html", shard_get, &src, &leaf,
                                                     &r, &si),
                     PATIENT_ERR_HASH);
    ck_assert_int_eq(si.problem, PATIENT_SHARD_HASH);
    free(other);
    free(src.buf);
    free(top);
    patient_manifest_free(m);
    patient_seckey_free(sk);
}
END_TEST

static Suite *
manifest_suite(void)
{
    Suite *s = suite_create("manifest");
    TCase *tc;

    tc = tcase_create("build");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_build_entries);
    tcase_add_test(tc, test_build_deterministic);
    tcase_add_test(tc, test_build_many_files_threads);
    tcase_add_test(tc, test_build_symlink_escape);
    tcase_add_test(tc, test_build_symlink_inside);
    tcase_add_test(tc, test_build_symlink_loop_dangling);
    tcase_add_test(tc, test_build_fifo);
    tcase_add_test(tc, test_build_bad_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("publish");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_publish_versions);
    tcase_add_test(tc, test_publish_state_numbers);
    tcase_add_test(tc, test_publish_state_shard_numbers);
    tcase_add_test(tc, test_publish_recovery);
    tcase_add_test(tc, test_publish_out_inside_tree);
    tcase_add_test(tc, test_publish_refuses_symlinked_wellknown);
    suite_add_tcase(s, tc);

    tc = tcase_create("verify");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_golden_verify);
    tcase_add_test(tc, test_forged_byte);
    tcase_add_test(tc, test_forged_other_key);
    tcase_add_test(tc, test_forged_reserialised);
    tcase_add_test(tc, test_forged_expired);
    tcase_add_test(tc, test_forged_content);
    tcase_add_test(tc, test_forged_comment);
    tcase_add_test(tc, test_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("shards");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shard_layout);
    tcase_add_test(tc, test_shard_parse);
    tcase_add_test(tc, test_shard_lookup);
    suite_add_tcase(s, tc);

    tc = tcase_create("origin");
    /* As every other case here: Check's default 4 s is too short for a
     * sanitized child's exit (LeakSanitizer scans its heap) on a loaded
     * machine. */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_origin_roundtrip);
    tcase_add_test(tc, test_mediatype_and_encode);
    suite_add_tcase(s, tc);
    return s;
}

/* MANIFEST_WRITE_GOLDEN=DIR check_manifest: (re)write the golden fixture
 * into DIR (review the diff before committing it). */
START_TEST(write_golden)
{
    const char *dir = getenv("MANIFEST_WRITE_GOLDEN");
    char root[512], p[600], *json = NULL, *sig = NULL;
    size_t len = 0;
    patient_pubkey pk;
    patient_manifest_opts o;
    patient_seckey *sk;

    snprintf(root, sizeof root, "%s/site", tmpdir);
    make_tree(root);
    test_pub(&pk);
    o = golden_opts(&pk);
    sk = test_key();
    ck_assert_int_eq(patient_manifest_build(root, &o, &json, &len, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_manifest_sign(sk, json, len, &sig), PATIENT_OK);
    snprintf(p, sizeof p, "%s/manifest_golden.json", dir);
    ck_assert_int_eq(pt_write_atomic(p, json, len, 0644, 0), PATIENT_OK);
    snprintf(p, sizeof p, "%s/manifest_golden.json.minisig", dir);
    ck_assert_int_eq(pt_write_atomic(p, sig, strlen(sig), 0644, 0), PATIENT_OK);
    free(json);
    free(sig);
    patient_seckey_free(sk);
}
END_TEST

int
main(void)
{
    SRunner *sr;
    int failed;

    if (getenv("MANIFEST_WRITE_GOLDEN")) {
        Suite *s = suite_create("golden");
        TCase *tc = tcase_create("write");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, write_golden);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
    } else {
        sr = srunner_create(manifest_suite());
    }
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
