/* Unit tests: minisign-compatible keys and signatures (lib/key.c). The
 * golden fixtures in tests/data/key_test.* were made by minisign 0.11
 * (`minisign -G -W`, `minisign -S`); forged twins must fail with a specific
 * code. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include <patient/patient.h>
#include "util.h"
#include "testutil.h"

#define FIXTURE_KEYID "91FA9E6F4D58FE7E"
#define FIXTURE_TC "patient golden fixture"

static char tmpdir[256];

static void
tmp_setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "check_key");
}

static void
tmp_teardown(void)
{
    tu_rmtree(tmpdir);
}

static const char *
tpath(const char *name)
{
    return tu_path(tmpdir, name);
}

static void
put(const char *path, const char *s, size_t n, unsigned mode)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fwrite(s, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
}

/* git keeps no modes: copy the fixture secret key to a 0600 temp file. */
static const char *
fixture_seckey(void)
{
    size_t n;
    char *k = tu_fixture("key_test.key", &n);
    const char *p = tpath("key_test.key");
    put(p, k, n, 0600);
    free(k);
    return p;
}

static void
fixture_pubkey(patient_pubkey *pk)
{
    char p[512];
    snprintf(p, sizeof p, "%s/data/key_test.pub", TEST_SRCDIR);
    ck_assert_int_eq(patient_pubkey_load(p, pk), PATIENT_OK);
}

static void
assert_pk_eq(const patient_pubkey *a, const patient_pubkey *b)
{
    ck_assert_mem_eq(a->id, b->id, sizeof a->id);
    ck_assert_mem_eq(a->pk, b->pk, sizeof a->pk);
}

/* ---- key ids and public keys ---- */

START_TEST(keyid)
{
    patient_pubkey pk;
    uint8_t id[8];
    char hex[PATIENT_KEYID_HEX];

    fixture_pubkey(&pk);
    patient_keyid_hex(pk.id, hex);
    ck_assert_str_eq(hex, FIXTURE_KEYID);
    ck_assert_int_eq(patient_keyid_parse(hex, id), PATIENT_OK);
    ck_assert_mem_eq(id, pk.id, 8);
    ck_assert_int_eq(patient_keyid_parse("91fa9e6f4d58fe7e", id), PATIENT_OK);
    ck_assert_mem_eq(id, pk.id, 8);
    ck_assert_int_eq(patient_keyid_parse("91FA9E6F4D58FE7", id), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_keyid_parse("91FA9E6F4D58FE7G", id), PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_keyid_parse(NULL, id), PATIENT_ERR_PARSE);
}
END_TEST

START_TEST(pubkey_forms)
{
    patient_pubkey a, b;
    char b64[PATIENT_PUBKEY_B64];
    size_t n;
    char *text = tu_fixture("key_test.pub", &n);

    ck_assert_int_eq(patient_pubkey_parse(text, n, &a), PATIENT_OK);
    patient_pubkey_encode(&a, b64);
    ck_assert_ptr_nonnull(strstr(text, b64));
    ck_assert_int_eq(patient_pubkey_parse(b64, strlen(b64), &b), PATIENT_OK);
    assert_pk_eq(&a, &b);
    ck_assert_int_eq(patient_pubkey_load(b64, &b), PATIENT_OK); /* bare string */
    assert_pk_eq(&a, &b);
    /* Forged twins. */
    b64[10] = 0;
    ck_assert_int_eq(patient_pubkey_parse(b64, strlen(b64), &b), PATIENT_ERR_KEY_FORMAT);
    ck_assert_int_eq(patient_pubkey_parse("untrusted comment: x\n", 21, &b),
                     PATIENT_ERR_KEY_FORMAT);
    {
        /* Valid base64 of the right length, wrong algorithm. */
        uint8_t raw[42] = {'X', 'x'};
        char *e = NULL;
        ck_assert_int_eq(pt_b64_encode(raw, sizeof raw, 0, &e), PATIENT_OK);
        ck_assert_int_eq(patient_pubkey_parse(e, strlen(e), &b), PATIENT_ERR_UNSUPPORTED);
        free(e);
    }
    free(text);
}
END_TEST

/* ---- secret keys ---- */

START_TEST(roundtrip_unencrypted)
{
    patient_pubkey pk, pk2, pk3;
    patient_seckey *sk = NULL, *sk2 = NULL;
    uint8_t sig[64];
    struct stat st;
    int enc = -1;

    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_seckey_save(tpath("k.key"), sk, NULL, 0), PATIENT_OK);
    ck_assert_int_eq(patient_pubkey_save(tpath("k.pub"), &pk, 0), PATIENT_OK);
    ck_assert_int_eq(stat(tpath("k.key"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(patient_seckey_load(tpath("k.key"), NULL, &sk2, &enc), PATIENT_OK);
    ck_assert_int_eq(enc, 0);
    patient_seckey_pubkey(sk2, &pk2);
    assert_pk_eq(&pk, &pk2);
    ck_assert_int_eq(patient_pubkey_load(tpath("k.pub"), &pk3), PATIENT_OK);
    assert_pk_eq(&pk, &pk3);
    ck_assert_int_eq(patient_sign(sk2, "m", 1, sig), PATIENT_OK);
    ck_assert_int_eq(patient_verify(&pk, "m", 1, sig), PATIENT_OK);
    ck_assert_int_eq(patient_verify(&pk, "n", 1, sig), PATIENT_ERR_SIGNATURE);
    /* "" also means unencrypted. */
    ck_assert_int_eq(patient_seckey_save(tpath("k2.key"), sk, "", 0), PATIENT_OK);
    patient_seckey_free(sk2);
    ck_assert_int_eq(patient_seckey_load(tpath("k2.key"), NULL, &sk2, &enc), PATIENT_OK);
    patient_seckey_free(sk);
    patient_seckey_free(sk2);
    patient_seckey_free(NULL);
}
END_TEST

/* The one scrypt test (about 3 s per derivation, three derivations). */
START_TEST(roundtrip_encrypted)
{
    patient_pubkey pk, pk2;
    patient_seckey *sk = NULL, *sk2 = NULL;
    int enc = 0;
    size_t n;
    char *text;

    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_seckey_save(tpath("e.key"), sk, "correct horse", 0), PATIENT_OK);
    text = tu_slurp(tpath("e.key"), &n);
    ck_assert_ptr_nonnull(strstr(text, "untrusted comment: minisign encrypted secret key\n"));
    free(text);
    /* No password: refused cheaply, and we learn it is encrypted. */
    ck_assert_int_eq(patient_seckey_load(tpath("e.key"), NULL, &sk2, &enc),
                     PATIENT_ERR_KEY_PASSWORD);
    ck_assert_int_eq(enc, 1);
    ck_assert_ptr_null(sk2);
    ck_assert_int_eq(patient_seckey_load(tpath("e.key"), "correct horsf", &sk2, &enc),
                     PATIENT_ERR_KEY_PASSWORD);
    ck_assert_ptr_null(sk2);
    ck_assert_int_eq(patient_seckey_load(tpath("e.key"), "correct horse", &sk2, &enc),
                     PATIENT_OK);
    patient_seckey_pubkey(sk2, &pk2);
    assert_pk_eq(&pk, &pk2);
    patient_seckey_free(sk);
    patient_seckey_free(sk2);
}
END_TEST

START_TEST(seckey_perm)
{
    patient_seckey *sk = NULL;
    const char *p = fixture_seckey();

    ck_assert_int_eq(chmod(p, 0640), 0);
    ck_assert_int_eq(patient_seckey_load(p, NULL, &sk, NULL), PATIENT_ERR_PERM);
    ck_assert_int_eq(chmod(p, 0604), 0);
    ck_assert_int_eq(patient_seckey_load(p, NULL, &sk, NULL), PATIENT_ERR_PERM);
    ck_assert_int_eq(chmod(p, 0620), 0);
    ck_assert_int_eq(patient_seckey_load(p, NULL, &sk, NULL), PATIENT_ERR_PERM);
    ck_assert_int_eq(chmod(p, 0400), 0);
    ck_assert_int_eq(patient_seckey_load(p, NULL, &sk, NULL), PATIENT_OK);
    patient_seckey_free(sk);
}
END_TEST

START_TEST(seckey_no_overwrite)
{
    patient_pubkey pk;
    patient_seckey *a = NULL, *b = NULL;
    char *before, *after;
    size_t n1, n2;

    ck_assert_int_eq(patient_keypair_generate(&pk, &a), PATIENT_OK);
    ck_assert_int_eq(patient_keypair_generate(&pk, &b), PATIENT_OK);
    ck_assert_int_eq(patient_seckey_save(tpath("k"), a, NULL, 0), PATIENT_OK);
    before = tu_slurp(tpath("k"), &n1);
    ck_assert_int_eq(patient_seckey_save(tpath("k"), b, NULL, 0), PATIENT_ERR_EXISTS);
    after = tu_slurp(tpath("k"), &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(before, after, n1);
    free(after);
    ck_assert_int_eq(patient_pubkey_save(tpath("p"), &pk, 0), PATIENT_OK);
    ck_assert_int_eq(patient_pubkey_save(tpath("p"), &pk, 0), PATIENT_ERR_EXISTS);
    /* With force it is replaced. */
    ck_assert_int_eq(patient_seckey_save(tpath("k"), b, NULL, 1), PATIENT_OK);
    after = tu_slurp(tpath("k"), &n2);
    ck_assert(n1 != n2 || memcmp(before, after, n1) != 0);
    free(before);
    free(after);
    patient_seckey_free(a);
    patient_seckey_free(b);
}
END_TEST

START_TEST(seckey_symlink)
{
    patient_seckey *sk = NULL;
    const char *p = fixture_seckey();

    ck_assert_int_eq(symlink(p, tpath("link.key")), 0);
    ck_assert_int_eq(patient_seckey_load(tpath("link.key"), NULL, &sk, NULL),
                     PATIENT_ERR_UNSAFE_PATH);
    ck_assert_ptr_null(sk);
    ck_assert_int_eq(mkfifo(tpath("fifo.key"), 0600), 0);
    ck_assert_int_eq(patient_seckey_load(tpath("fifo.key"), NULL, &sk, NULL),
                     PATIENT_ERR_UNSAFE_PATH);
    ck_assert_int_eq(patient_seckey_load(tpath("none.key"), NULL, &sk, NULL),
                     PATIENT_ERR_NOT_FOUND);
}
END_TEST

/* Decode the fixture secret key, let f edit the raw bytes, re-encode. */
static patient_err
parse_edited(void (*f)(uint8_t *raw), int *enc)
{
    size_t n, rawlen = 0;
    char *text = tu_fixture("key_test.key", &n), *nl, *e = NULL;
    uint8_t *raw = NULL;
    patient_seckey *sk = NULL;
    patient_err err;

    nl = strchr(text, '\n');
    ck_assert_int_eq(pt_b64_decode(nl + 1, strcspn(nl + 1, "\n"), 0, &raw, &rawlen), PATIENT_OK);
    ck_assert_uint_eq(rawlen, 158);
    f(raw);
    ck_assert_int_eq(pt_b64_encode(raw, rawlen, 0, &e), PATIENT_OK);
    err = patient_seckey_parse(e, strlen(e), "pw", &sk, enc);
    patient_seckey_free(sk);
    free(e);
    free(raw);
    free(text);
    return err;
}

static void edit_none(uint8_t *r) { (void)r; }
static void edit_badchk(uint8_t *r) { r[157] ^= 1; }
static void edit_sigalg(uint8_t *r) { r[1] = 'X'; }
static void edit_chkalg(uint8_t *r) { r[5] = 'X'; }
static void edit_kdfalg(uint8_t *r) { r[2] = 'Z'; }
static void edit_pkhalf(uint8_t *r) { r[54 + 8 + 40] ^= 1; }
static void
edit_realchk(uint8_t *r)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, r, 2);
    crypto_generichash_update(&st, r + 54, 8 + 64);
    crypto_generichash_final(&st, r + 54 + 72, 32);
}
static void
edit_hugekdf(uint8_t *r)
{
    r[2] = 'S';
    r[3] = 'c';
    memset(r + 38, 0, 16);
    r[38 + 8 + 3] = 0x80; /* memlimit 2^31 */
    r[38 + 3] = 0x02;     /* opslimit 2^25 */
}

START_TEST(seckey_format)
{
    int enc = -1;
    size_t n;
    char *text = tu_fixture("key_test.key", &n);
    patient_seckey *sk = NULL;

    /* The fixture carries minisign's all-zero checksum; a real one is fine
     * too; a wrong non-zero one is a damaged file. */
    ck_assert_int_eq(parse_edited(edit_none, &enc), PATIENT_OK);
    ck_assert_int_eq(enc, 0);
    ck_assert_int_eq(parse_edited(edit_realchk, &enc), PATIENT_OK);
    ck_assert_int_eq(parse_edited(edit_badchk, &enc), PATIENT_ERR_KEY_FORMAT);
    ck_assert_int_eq(parse_edited(edit_sigalg, &enc), PATIENT_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse_edited(edit_chkalg, &enc), PATIENT_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse_edited(edit_kdfalg, &enc), PATIENT_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse_edited(edit_pkhalf, &enc), PATIENT_ERR_KEY_FORMAT);
    /* Hostile scrypt parameters are refused before any derivation. */
    ck_assert_int_eq(parse_edited(edit_hugekdf, &enc), PATIENT_ERR_TOO_LARGE);
    ck_assert_int_eq(patient_seckey_parse("garbage", 7, NULL, &sk, NULL), PATIENT_ERR_KEY_FORMAT);
    ck_assert_int_eq(patient_seckey_parse(text, n - 5, NULL, &sk, NULL), PATIENT_ERR_KEY_FORMAT);
    ck_assert_ptr_null(sk);
    free(text);
}
END_TEST

START_TEST(seckey_written_checksum)
{
    patient_pubkey pk;
    patient_seckey *sk = NULL;
    size_t n, rawlen;
    char *text, *nl;
    uint8_t *raw = NULL;
    static const uint8_t zero[32];

    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_seckey_save_commented(tpath("c.key"), sk, NULL, "my key", 0),
                     PATIENT_OK);
    ck_assert_int_eq(patient_seckey_save_commented(tpath("d.key"), sk, NULL, "two\nlines", 0),
                     PATIENT_ERR_ARG);
    text = tu_slurp(tpath("c.key"), &n);
    ck_assert_int_eq(strncmp(text, "untrusted comment: my key\n", 26), 0);
    nl = strchr(text, '\n');
    ck_assert_int_eq(pt_b64_decode(nl + 1, strcspn(nl + 1, "\n"), 0, &raw, &rawlen), PATIENT_OK);
    ck_assert_mem_eq(raw, "Ed\0\0B2", 6);
    ck_assert(memcmp(raw + 126, zero, 32) != 0); /* the real BLAKE2b checksum */
    free(raw);
    free(text);
    patient_seckey_free(sk);
}
END_TEST

START_TEST(password_file)
{
    char *pw = NULL;

    put(tpath("pw"), "s3cret\r\nsecond line\n", 20, 0600);
    ck_assert_int_eq(patient_password_from_file(tpath("pw"), &pw), PATIENT_OK);
    ck_assert_str_eq(pw, "s3cret");
    patient_password_free(pw);
    ck_assert_int_eq(setenv("PATIENT_PASSWORD_FILE", tpath("pw"), 1), 0);
    ck_assert_int_eq(patient_password_from_file(NULL, &pw), PATIENT_OK);
    ck_assert_str_eq(pw, "s3cret");
    patient_password_free(pw);
    unsetenv("PATIENT_PASSWORD_FILE");
    ck_assert_int_eq(patient_password_from_file(NULL, &pw), PATIENT_ERR_NOT_FOUND);
    ck_assert_int_eq(chmod(tpath("pw"), 0644), 0);
    ck_assert_int_eq(patient_password_from_file(tpath("pw"), &pw), PATIENT_ERR_PERM);
    ck_assert_ptr_null(pw);
    ck_assert_int_eq(symlink(tpath("pw"), tpath("pwlink")), 0);
    ck_assert_int_eq(patient_password_from_file(tpath("pwlink"), &pw), PATIENT_ERR_UNSAFE_PATH);
    patient_password_free(NULL);
}
END_TEST

/* ---- minisign signatures: golden fixture and forged twins ---- */

START_TEST(minisig_golden)
{
    patient_pubkey pk;
    size_t mlen, slen;
    char *m = tu_fixture("key_test.txt", &mlen);
    char *sig = tu_fixture("key_test.txt.minisig", &slen);
    char *tc = NULL;
    uint8_t id[8];

    fixture_pubkey(&pk);
    ck_assert_int_eq(patient_minisig_verify(&pk, m, mlen, sig, slen, &tc, id), PATIENT_OK);
    ck_assert_str_eq(tc, FIXTURE_TC);
    ck_assert_mem_eq(id, pk.id, 8);
    free(tc);
    free(m);
    free(sig);
}
END_TEST

/* Ed25519 is deterministic: signing the fixture with the fixture key must
 * give minisign's bytes exactly (all but the untrusted comment line). */
START_TEST(minisig_same_bytes_as_minisign)
{
    patient_seckey *sk = NULL;
    size_t mlen, slen;
    char *m = tu_fixture("key_test.txt", &mlen);
    char *sig = tu_fixture("key_test.txt.minisig", &slen);
    char *ours = NULL;

    ck_assert_int_eq(patient_seckey_load(fixture_seckey(), NULL, &sk, NULL), PATIENT_OK);
    ck_assert_int_eq(patient_minisig_sign(sk, m, mlen, "x", FIXTURE_TC, &ours), PATIENT_OK);
    ck_assert_str_eq(strchr(ours, '\n'), strchr(sig, '\n'));
    free(ours);
    ck_assert_int_eq(patient_minisig_sign(sk, m, mlen, NULL, "two\nlines", &ours),
                     PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_minisig_sign(sk, m, mlen, "a\rb", "ok", &ours), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_minisig_sign(sk, m, mlen, NULL, NULL, &ours), PATIENT_ERR_ARG);
    ck_assert_ptr_null(ours);
    patient_seckey_free(sk);
    free(m);
    free(sig);
}
END_TEST

/* Re-encode line 2 (the signature) after flipping one decoded byte. */
static char *
flip_sig_byte(const char *sig, size_t off)
{
    const char *l2 = strchr(sig, '\n') + 1;
    size_t n2 = strcspn(l2, "\n"), rawlen = 0;
    uint8_t *raw = NULL;
    char *e = NULL, *out;

    ck_assert_int_eq(pt_b64_decode(l2, n2, 0, &raw, &rawlen), PATIENT_OK);
    ck_assert_uint_eq(rawlen, 74);
    raw[off] ^= 0x01;
    ck_assert_int_eq(pt_b64_encode(raw, rawlen, 0, &e), PATIENT_OK);
    out = malloc(strlen(sig) + 1);
    strcpy(out, sig);
    memcpy(out + (l2 - sig), e, n2);
    free(e);
    free(raw);
    return out;
}

START_TEST(minisig_forged)
{
    patient_pubkey pk, other;
    patient_seckey *osk = NULL;
    size_t mlen, slen;
    char *m = tu_fixture("key_test.txt", &mlen);
    char *sig = tu_fixture("key_test.txt.minisig", &slen);
    char *f;
    uint8_t id[8];

    fixture_pubkey(&pk);
    /* One byte of the file. */
    m[3] ^= 0x20;
    ck_assert_int_eq(patient_minisig_verify(&pk, m, mlen, sig, slen, NULL, NULL),
                     PATIENT_ERR_SIGNATURE);
    m[3] ^= 0x20;
    /* One byte of the signature proper (after "ED" and the key id). */
    f = flip_sig_byte(sig, 2 + 8 + 20);
    ck_assert_int_eq(patient_minisig_verify(&pk, m, mlen, f, strlen(f), NULL, NULL),
                     PATIENT_ERR_SIGNATURE);
    free(f);
    /* The key id inside the signature. */
    f = flip_sig_byte(sig, 2 + 3);
    ck_assert_int_eq(patient_minisig_verify(&pk, m, mlen, f, strlen(f), NULL, id),
                     PATIENT_ERR_KEY_MISMATCH);
    ck_assert(memcmp(id, pk.id, 8) != 0);
    free(f);
    /* The algorithm. */
    f = flip_sig_byte(sig, 1);
    ck_assert_int_eq(patient_minisig_verify(&pk, m, mlen, f, strlen(f), NULL, NULL),
                     PATIENT_ERR_UNSUPPORTED);
    free(f);
    /* The trusted comment. */
    f = strdup(sig);
    *strstr(f, "golden") = 'G';
    ck_assert_int_eq(patient_minisig_verify(&pk, m, mlen, f, strlen(f), NULL, NULL),
                     PATIENT_ERR_SIGNATURE);
    free(f);
    /* Another key. */
    ck_assert_int_eq(patient_keypair_generate(&other, &osk), PATIENT_OK);
    ck_assert_int_eq(patient_minisig_verify(&other, m, mlen, sig, slen, NULL, id),
                     PATIENT_ERR_KEY_MISMATCH);
    ck_assert_mem_eq(id, pk.id, 8);
    /* Another key that claims the same id. */
    memcpy(other.id, pk.id, 8);
    ck_assert_int_eq(patient_minisig_verify(&other, m, mlen, sig, slen, NULL, NULL),
                     PATIENT_ERR_SIGNATURE);
    /* Truncated, and oversized. */
    ck_assert_int_eq(patient_minisig_verify(&pk, m, mlen, sig, slen / 2, NULL, NULL),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(patient_minisig_verify(&pk, m, mlen, sig, 1 << 20, NULL, NULL),
                     PATIENT_ERR_TOO_LARGE);
    patient_seckey_free(osk);
    free(m);
    free(sig);
}
END_TEST

/* patient_minisign_inspect on the committed fixtures, each with a broken
 * twin that must be refused with its own code. */
START_TEST(minisign_inspect)
{
    patient_minisign_info mi;
    patient_pubkey pk;
    size_t n, ln;
    char *pub = tu_fixture("key_test.pub", &n), *sig, *sec, *t;

    ck_assert_int_eq(patient_pubkey_parse(pub, n, &pk), PATIENT_OK);
    ck_assert_int_eq(patient_minisign_inspect(pub, n, &mi), PATIENT_OK);
    ck_assert_int_eq(mi.kind, PATIENT_MINISIGN_PUBKEY);
    ck_assert_int_eq(mi.has_pubkey, 1);
    ck_assert_mem_eq(mi.pubkey.pk, pk.pk, sizeof pk.pk);
    ck_assert_mem_eq(mi.pubkey.id, pk.id, sizeof pk.id);
    ck_assert_ptr_nonnull(mi.untrusted_comment);
    free(pub);

    sec = tu_fixture("key_test.key", &n);
    ck_assert_int_eq(patient_minisign_inspect(sec, n, &mi), PATIENT_OK);
    ck_assert_int_eq(mi.kind, PATIENT_MINISIGN_SECKEY);
    ck_assert_int_eq(mi.encrypted, 0);
    ck_assert_int_eq(mi.has_pubkey, 1);
    ck_assert_mem_eq(mi.pubkey.pk, pk.pk, sizeof pk.pk); /* the fixture pair */
    /* twin: another KDF id ("Ed" + 0x0101 instead of "Ed" + 0x0000): the
     * base64 of bytes 2..3 sits in characters 2..5 ("AAAA" -> "AQEA") */
    t = strstr(sec, "\nRWQAAE");
    ck_assert_ptr_nonnull(t);
    memcpy(t + 3, "QBAQ", 4);
    ck_assert_int_eq(patient_minisign_inspect(sec, n, &mi), PATIENT_ERR_UNSUPPORTED);
    ck_assert_int_eq(mi.kind, PATIENT_MINISIGN_SECKEY);
    free(sec);

    sig = tu_fixture("key_test.txt.minisig", &n);
    ck_assert_int_eq(patient_minisign_inspect(sig, n, &mi), PATIENT_OK);
    ck_assert_int_eq(mi.kind, PATIENT_MINISIGN_SIGNATURE);
    ck_assert_int_eq(mi.prehashed, 1);
    ck_assert_mem_eq(mi.keyid, pk.id, sizeof pk.id);
    ck_assert_uint_eq(mi.trusted_comment_len, strlen("patient golden fixture"));
    ck_assert_mem_eq(mi.trusted_comment, "patient golden fixture", mi.trusted_comment_len);
    /* twins: cut after the signature line; the signature line not base64 */
    ln = (size_t)(strstr(sig, "\ntrusted comment:") + 1 - sig);
    ck_assert_int_eq(patient_minisign_inspect(sig, ln, &mi), PATIENT_ERR_PARSE);
    ck_assert_int_eq(mi.kind, PATIENT_MINISIGN_SIGNATURE);
    t = strchr(sig, '\n') + 1;
    t[5] = '*';
    ck_assert_int_eq(patient_minisign_inspect(sig, n, &mi), PATIENT_ERR_BASE64);
    free(sig);

    /* no base64 line; a base64 line of another length */
    ck_assert_int_eq(patient_minisign_inspect("untrusted comment: x\n", 21, &mi),
                     PATIENT_ERR_KEY_FORMAT);
    ck_assert_int_eq(patient_minisign_inspect("untrusted comment: x\nRWQ=\n", 26, &mi),
                     PATIENT_ERR_PARSE);
    ck_assert_int_eq(mi.kind, PATIENT_MINISIGN_UNKNOWN);
    ck_assert_uint_eq(mi.decoded_len, 2);
}
END_TEST

START_TEST(minisig_roundtrip)
{
    patient_pubkey pk;
    patient_seckey *sk = NULL;
    char *sig = NULL, *tc = NULL;
    const char msg[] = "exact bytes\n";

    ck_assert_int_eq(patient_keypair_generate(&pk, &sk), PATIENT_OK);
    ck_assert_int_eq(patient_minisig_sign(sk, msg, sizeof msg - 1, NULL, "tc: 1", &sig),
                     PATIENT_OK);
    ck_assert_int_eq(patient_minisig_verify(&pk, msg, sizeof msg - 1, sig, strlen(sig), &tc, NULL),
                     PATIENT_OK);
    ck_assert_str_eq(tc, "tc: 1");
    ck_assert_int_eq(patient_minisig_verify(&pk, msg, sizeof msg - 2, sig, strlen(sig), NULL, NULL),
                     PATIENT_ERR_SIGNATURE);
    free(tc);
    free(sig);
    patient_seckey_free(sk);
}
END_TEST

static Suite *
key_suite(void)
{
    Suite *s = suite_create("key");
    TCase *tc;

    tc = tcase_create("pubkey");
    tcase_add_test(tc, keyid);
    tcase_add_test(tc, pubkey_forms);
    suite_add_tcase(s, tc);

    tc = tcase_create("seckey");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, roundtrip_unencrypted);
    tcase_add_test(tc, seckey_perm);
    tcase_add_test(tc, seckey_no_overwrite);
    tcase_add_test(tc, seckey_symlink);
    tcase_add_test(tc, seckey_format);
    tcase_add_test(tc, seckey_written_checksum);
    tcase_add_test(tc, password_file);
    suite_add_tcase(s, tc);

    /* scrypt with minisign's parameters: 1 GiB, a few seconds each. */
    tc = tcase_create("encrypted");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, roundtrip_encrypted);
    suite_add_tcase(s, tc);

    tc = tcase_create("minisig");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, minisig_golden);
    tcase_add_test(tc, minisig_same_bytes_as_minisign);
    tcase_add_test(tc, minisig_forged);
    tcase_add_test(tc, minisig_roundtrip);
    tcase_add_test(tc, minisign_inspect);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(key_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
