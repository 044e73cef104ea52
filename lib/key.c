/* Ed25519 keys in minisign's formats, and minisign signatures. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include <patient/key.h>
#include "key_int.h"
#include "util.h"

#define SIGALG "Ed"
#define SIGALG_HASHED "ED"
#define KDFALG "Sc"
#define CHKALG "B2"
#define COMMENT_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "
#define KEYFILE_MAX 4096
#define SIGFILE_MAX PATIENT_MINISIG_MAX_BYTES

/* minisign's secret key layout, byte for byte. */
typedef struct {
    uint8_t keynum[PATIENT_KEYID_BYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    uint8_t chk[crypto_generichash_BYTES];
} keynum_sk;

typedef struct {
    uint8_t sig_alg[2];
    uint8_t kdf_alg[2];
    uint8_t chk_alg[2];
    uint8_t kdf_salt[crypto_pwhash_scryptsalsa208sha256_SALTBYTES];
    uint8_t kdf_opslimit_le[8];
    uint8_t kdf_memlimit_le[8];
    keynum_sk ks;
} seckey_file;

struct patient_seckey {
    uint8_t id[PATIENT_KEYID_BYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

static uint64_t
le64_load(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void
le64_store(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

void
patient_keyid_hex(const uint8_t id[PATIENT_KEYID_BYTES], char out[PATIENT_KEYID_HEX])
{
    snprintf(out, PATIENT_KEYID_HEX, "%016llX", (unsigned long long)le64_load(id));
}

patient_err
patient_keyid_parse(const char *hex, uint8_t id[PATIENT_KEYID_BYTES])
{
    uint64_t v = 0;

    if (hex == NULL || strlen(hex) != 16)
        return PATIENT_ERR_PARSE;
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return PATIENT_ERR_PARSE;
        v = (v << 4) | (uint64_t)d;
    }
    le64_store(id, v);
    return PATIENT_OK;
}

patient_err
pt_keyid_parse_signed(const char *hex, uint8_t id[PATIENT_KEYID_BYTES])
{
    char again[PATIENT_KEYID_HEX];

    if (patient_keyid_parse(hex, id) != PATIENT_OK)
        return PATIENT_ERR_PARSE;
    patient_keyid_hex(id, again);
    return strcmp(again, hex) == 0 ? PATIENT_OK : PATIENT_ERR_PARSE;
}

patient_err
patient_keypair_generate(patient_pubkey *pk, patient_seckey **out)
{
    patient_seckey *sk;

    *out = NULL;
    if (sodium_init() < 0)
        return PATIENT_ERR_CRYPTO;
    if ((sk = sodium_malloc(sizeof *sk)) == NULL)
        return PATIENT_ERR_NOMEM;
    randombytes_buf(sk->id, sizeof sk->id);
    crypto_sign_keypair(pk->pk, sk->sk);
    memcpy(pk->id, sk->id, sizeof pk->id);
    *out = sk;
    return PATIENT_OK;
}

void
patient_seckey_free(patient_seckey *sk)
{
    if (sk != NULL)
        sodium_free(sk); /* sodium_free wipes before releasing */
}

void
patient_seckey_pubkey(const patient_seckey *sk, patient_pubkey *pk)
{
    memcpy(pk->id, sk->id, sizeof pk->id);
    crypto_sign_ed25519_sk_to_pk(pk->pk, sk->sk);
}

/* Find the key line in text: the first line that is not a comment. */
static patient_err
key_line(const char *text, size_t len, const char **line, size_t *linelen)
{
    const char *p = text, *end = text + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t n = (size_t)(le - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n >= sizeof COMMENT_PREFIX - 1 &&
            memcmp(p, COMMENT_PREFIX, sizeof COMMENT_PREFIX - 1) == 0) {
            p = nl ? nl + 1 : end;
            continue;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 0) {
            p = nl ? nl + 1 : end;
            continue;
        }
        *line = p;
        *linelen = n;
        return PATIENT_OK;
    }
    return PATIENT_ERR_KEY_FORMAT;
}

patient_err
patient_pubkey_parse(const char *text, size_t len, patient_pubkey *pk)
{
    uint8_t raw[2 + PATIENT_KEYID_BYTES + PATIENT_PUBKEY_BYTES];
    const char *line;
    size_t n;

    if (len > KEYFILE_MAX)
        return PATIENT_ERR_TOO_LARGE;
    while (len > 0 && (text[0] == ' ' || text[0] == '\t')) {
        text++;
        len--;
    }
    if (key_line(text, len, &line, &n) != PATIENT_OK)
        return PATIENT_ERR_KEY_FORMAT;
    if (pt_b64_decode_exact(line, n, 0, raw, sizeof raw) != PATIENT_OK)
        return PATIENT_ERR_KEY_FORMAT;
    if (memcmp(raw, SIGALG, 2) != 0)
        return PATIENT_ERR_UNSUPPORTED;
    memcpy(pk->id, raw + 2, PATIENT_KEYID_BYTES);
    memcpy(pk->pk, raw + 2 + PATIENT_KEYID_BYTES, PATIENT_PUBKEY_BYTES);
    return PATIENT_OK;
}

patient_err
patient_pubkey_load(const char *spec, patient_pubkey *pk)
{
    uint8_t *data = NULL;
    size_t len = 0;
    patient_err err;
    struct stat st;

    if (spec == NULL)
        return PATIENT_ERR_ARG;
    if (strncmp(spec, "RW", 2) == 0 && strlen(spec) == PATIENT_PUBKEY_B64 - 1 &&
        stat(spec, &st) != 0)
        return patient_pubkey_parse(spec, strlen(spec), pk);
    if ((err = pt_read_file(spec, KEYFILE_MAX, &data, &len)) != PATIENT_OK)
        return err;
    err = patient_pubkey_parse((const char *)data, len, pk);
    free(data);
    return err;
}

void
patient_pubkey_encode(const patient_pubkey *pk, char out[PATIENT_PUBKEY_B64])
{
    uint8_t raw[2 + PATIENT_KEYID_BYTES + PATIENT_PUBKEY_BYTES];

    memcpy(raw, SIGALG, 2);
    memcpy(raw + 2, pk->id, PATIENT_KEYID_BYTES);
    memcpy(raw + 2 + PATIENT_KEYID_BYTES, pk->pk, PATIENT_PUBKEY_BYTES);
    sodium_bin2base64(out, PATIENT_PUBKEY_B64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
}

patient_err
patient_pubkey_save(const char *path, const patient_pubkey *pk, int force)
{
    char b64[PATIENT_PUBKEY_B64], id[PATIENT_KEYID_HEX], text[256];
    int n;

    patient_pubkey_encode(pk, b64);
    patient_keyid_hex(pk->id, id);
    n = snprintf(text, sizeof text, COMMENT_PREFIX "minisign public key %s\n%s\n", id, b64);
    return pt_write_atomic(path, text, (size_t)n, 0644, force ? 0 : PT_WRITE_EXCL);
}

static void
seckey_chk(uint8_t out[crypto_generichash_BYTES], const seckey_file *f)
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
    crypto_generichash_update(&st, f->sig_alg, sizeof f->sig_alg);
    crypto_generichash_update(&st, f->ks.keynum, sizeof f->ks.keynum);
    crypto_generichash_update(&st, f->ks.sk, sizeof f->ks.sk);
    crypto_generichash_final(&st, out, crypto_generichash_BYTES);
    sodium_memzero(&st, sizeof st);
}

/* XOR the key material with the scrypt stream of the password. */
static patient_err
seckey_xor(seckey_file *f, const char *password)
{
    uint8_t *stream;
    patient_err err = PATIENT_OK;
    uint64_t ops = le64_load(f->kdf_opslimit_le), mem = le64_load(f->kdf_memlimit_le);

    /* Refuse parameters above minisign's own (2^25 ops, 2^30 bytes) before
     * deriving: a hostile key file must not make us burn gigabytes or
     * minutes. */
    if (ops > crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE ||
        mem > crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE)
        return PATIENT_ERR_TOO_LARGE;
    if ((stream = sodium_malloc(sizeof f->ks)) == NULL)
        return PATIENT_ERR_NOMEM;
    if (crypto_pwhash_scryptsalsa208sha256(stream, sizeof f->ks, password, strlen(password),
                                           f->kdf_salt, (unsigned long long)ops,
                                           (size_t)mem) != 0) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < sizeof f->ks; i++)
        ((uint8_t *)&f->ks)[i] ^= stream[i];
out:
    sodium_free(stream);
    return err;
}

patient_err
patient_seckey_parse(const char *text, size_t len, const char *password, patient_seckey **out,
                     int *encrypted)
{
    seckey_file *f = NULL;
    patient_seckey *sk = NULL;
    const char *line;
    size_t n;
    uint8_t chk[crypto_generichash_BYTES], pk[crypto_sign_PUBLICKEYBYTES];
    static const uint8_t zero[crypto_generichash_BYTES];
    patient_err err = PATIENT_OK;
    int enc;

    *out = NULL;
    if (encrypted)
        *encrypted = 0;
    if (sodium_init() < 0)
        return PATIENT_ERR_CRYPTO;
    if (len > KEYFILE_MAX)
        return PATIENT_ERR_TOO_LARGE;
    if (key_line(text, len, &line, &n) != PATIENT_OK)
        return PATIENT_ERR_KEY_FORMAT;
    if ((f = sodium_malloc(sizeof *f)) == NULL)
        return PATIENT_ERR_NOMEM;
    if (pt_b64_decode_exact(line, n, 0, (uint8_t *)f, sizeof *f) != PATIENT_OK) {
        err = PATIENT_ERR_KEY_FORMAT;
        goto out;
    }
    if (memcmp(f->sig_alg, SIGALG, 2) != 0 || memcmp(f->chk_alg, CHKALG, 2) != 0) {
        err = PATIENT_ERR_UNSUPPORTED;
        goto out;
    }
    if (memcmp(f->kdf_alg, KDFALG, 2) == 0) {
        enc = 1;
    } else if (f->kdf_alg[0] == 0 && f->kdf_alg[1] == 0) {
        enc = 0;
    } else {
        err = PATIENT_ERR_UNSUPPORTED;
        goto out;
    }
    if (encrypted)
        *encrypted = enc;
    if (enc) {
        if (password == NULL) {
            err = PATIENT_ERR_KEY_PASSWORD;
            goto out;
        }
        if ((err = seckey_xor(f, password)) != PATIENT_OK)
            goto out;
    }
    /* minisign 0.11 writes an all-zero checksum in unencrypted keys. */
    seckey_chk(chk, f);
    if (!(enc == 0 && sodium_memcmp(f->ks.chk, zero, sizeof zero) == 0) &&
        sodium_memcmp(chk, f->ks.chk, sizeof chk) != 0) {
        err = enc ? PATIENT_ERR_KEY_PASSWORD : PATIENT_ERR_KEY_FORMAT;
        goto out;
    }
    /* The embedded public half must match the seed. */
    crypto_sign_ed25519_sk_to_pk(pk, f->ks.sk);
    {
        uint8_t seed[crypto_sign_SEEDBYTES], pk2[crypto_sign_PUBLICKEYBYTES];
        uint8_t sk2[crypto_sign_SECRETKEYBYTES];
        crypto_sign_ed25519_sk_to_seed(seed, f->ks.sk);
        crypto_sign_seed_keypair(pk2, sk2, seed);
        sodium_memzero(seed, sizeof seed);
        sodium_memzero(sk2, sizeof sk2);
        if (sodium_memcmp(pk, pk2, sizeof pk) != 0) {
            err = enc ? PATIENT_ERR_KEY_PASSWORD : PATIENT_ERR_KEY_FORMAT;
            goto out;
        }
    }
    if ((sk = sodium_malloc(sizeof *sk)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    memcpy(sk->id, f->ks.keynum, sizeof sk->id);
    memcpy(sk->sk, f->ks.sk, sizeof sk->sk);
    *out = sk;
out:
    sodium_memzero(chk, sizeof chk);
    sodium_free(f);
    return err;
}

patient_err
patient_seckey_load(const char *path, const char *password, patient_seckey **out, int *encrypted)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat st;
    patient_err err;
    int fd;

    *out = NULL;
    if (encrypted)
        *encrypted = 0;
    /* One descriptor for the checks and the read: no window to swap the
     * file between them. */
    if ((err = pt_open_regular(path, KEYFILE_MAX, &fd, &st)) != PATIENT_OK)
        return err;
    if (st.st_mode & 077) {
        close(fd);
        return PATIENT_ERR_PERM;
    }
    err = pt_read_fd(fd, KEYFILE_MAX, &data, &len);
    close(fd);
    if (err != PATIENT_OK)
        return err;
    err = patient_seckey_parse((const char *)data, len, password, out, encrypted);
    sodium_memzero(data, len);
    free(data);
    /* Parsing left key bytes in callees' stack frames (base64 decoding,
     * scrypt, checksum): wipe the stack below us so no core dump or later
     * stack read finds them. */
    sodium_stackzero(16384);
    return err;
}

patient_err
patient_seckey_save(const char *path, const patient_seckey *sk, const char *password, int force)
{
    return patient_seckey_save_commented(path, sk, password, NULL, force);
}

patient_err
patient_seckey_save_commented(const char *path, const patient_seckey *sk, const char *password,
                              const char *comment, int force)
{
    seckey_file *f = NULL;
    char *b64 = NULL, *text = NULL;
    size_t b64len, textlen;
    patient_err err = PATIENT_OK;
    int enc = password != NULL && password[0] != 0;

    if (path == NULL || sk == NULL)
        return PATIENT_ERR_ARG;
    if (comment == NULL)
        comment = enc ? "minisign encrypted secret key" : "minisign secret key (unencrypted)";
    if (strpbrk(comment, "\r\n") != NULL || strlen(comment) > PATIENT_COMMENT_MAX)
        return PATIENT_ERR_ARG;
    if (sodium_init() < 0)
        return PATIENT_ERR_CRYPTO;
    if ((f = sodium_malloc(sizeof *f)) == NULL)
        return PATIENT_ERR_NOMEM;
    memset(f, 0, sizeof *f);
    memcpy(f->sig_alg, SIGALG, 2);
    memcpy(f->chk_alg, CHKALG, 2);
    memcpy(f->ks.keynum, sk->id, sizeof sk->id);
    memcpy(f->ks.sk, sk->sk, sizeof sk->sk);
    /* The real checksum even when unencrypted (minisign writes zeros there
     * and ignores the field for unencrypted keys; minisign 0.11 signs with
     * ours). It lets us detect a damaged key file. */
    seckey_chk(f->ks.chk, f);
    if (enc) {
        memcpy(f->kdf_alg, KDFALG, 2);
        randombytes_buf(f->kdf_salt, sizeof f->kdf_salt);
        le64_store(f->kdf_opslimit_le, crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE);
        le64_store(f->kdf_memlimit_le, crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE);
        if ((err = seckey_xor(f, password)) != PATIENT_OK)
            goto out;
    }
    b64len = sodium_base64_encoded_len(sizeof *f, sodium_base64_VARIANT_ORIGINAL);
    textlen = sizeof COMMENT_PREFIX - 1 + strlen(comment) + 1 + b64len + 1;
    if ((b64 = sodium_malloc(b64len)) == NULL || (text = sodium_malloc(textlen)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    sodium_bin2base64(b64, b64len, (const uint8_t *)f, sizeof *f, sodium_base64_VARIANT_ORIGINAL);
    snprintf(text, textlen, COMMENT_PREFIX "%s\n%s\n", comment, b64);
    err = pt_write_atomic(path, text, strlen(text), 0600, force ? 0 : PT_WRITE_EXCL);
out:
    sodium_free(text);
    sodium_free(b64);
    sodium_free(f);
    return err;
}

patient_err
patient_password_from_file(const char *path, char **password)
{
    uint8_t *data = NULL;
    size_t len = 0, n;
    struct stat st;
    patient_err err;
    char *pw;
    int fd;

    *password = NULL;
    if (sodium_init() < 0) /* sodium_malloc needs it */
        return PATIENT_ERR_CRYPTO;
    if (path == NULL && (path = getenv("PATIENT_PASSWORD_FILE")) == NULL)
        return PATIENT_ERR_NOT_FOUND;
    if ((err = pt_open_regular(path, PATIENT_PASSWORD_MAX, &fd, &st)) != PATIENT_OK)
        return err;
    if (st.st_mode & 077) {
        close(fd);
        return PATIENT_ERR_PERM;
    }
    err = pt_read_fd(fd, PATIENT_PASSWORD_MAX, &data, &len);
    close(fd);
    if (err != PATIENT_OK)
        return err;
    for (n = 0; n < len && data[n] != '\n' && data[n] != '\r'; n++)
        ;
    if ((pw = sodium_malloc(n + 1)) == NULL) {
        err = PATIENT_ERR_NOMEM;
    } else {
        memcpy(pw, data, n);
        pw[n] = 0;
        *password = pw;
    }
    sodium_memzero(data, len);
    free(data);
    return err;
}

void
patient_password_free(char *password)
{
    if (password != NULL)
        sodium_free(password);
}

patient_err
patient_sign(const patient_seckey *sk, const void *m, size_t len, uint8_t sig[PATIENT_SIG_BYTES])
{
    return crypto_sign_detached(sig, NULL, m, len, sk->sk) == 0 ? PATIENT_OK : PATIENT_ERR_CRYPTO;
}

patient_err
patient_verify(const patient_pubkey *pk, const void *m, size_t len,
               const uint8_t sig[PATIENT_SIG_BYTES])
{
    if (sodium_init() < 0) /* idempotent; a verifier may hold no secret key */
        return PATIENT_ERR_CRYPTO;
    return crypto_sign_verify_detached(sig, m, len, pk->pk) == 0 ? PATIENT_OK
                                                                  : PATIENT_ERR_SIGNATURE;
}

patient_err
patient_minisig_sign(const patient_seckey *sk, const void *m, size_t len,
                     const char *untrusted_comment, const char *trusted_comment, char **out)
{
    uint8_t hash[crypto_generichash_BYTES_MAX];
    uint8_t sigs[2 + PATIENT_KEYID_BYTES + PATIENT_SIG_BYTES];
    uint8_t global[PATIENT_SIG_BYTES];
    pt_buf tc = {0}, text = {0};
    char *b64a = NULL, *b64b = NULL;
    patient_err err;
    size_t tclen;

    *out = NULL;
    if (sk == NULL || (m == NULL && len > 0) || trusted_comment == NULL)
        return PATIENT_ERR_ARG;
    if (untrusted_comment == NULL)
        untrusted_comment = "signature from patient secret key";
    tclen = strlen(trusted_comment);
    if (strpbrk(trusted_comment, "\r\n") || strpbrk(untrusted_comment, "\r\n") ||
        tclen > PATIENT_TRUSTED_COMMENT_MAX || strlen(untrusted_comment) > PATIENT_COMMENT_MAX)
        return PATIENT_ERR_ARG;
    crypto_generichash(hash, sizeof hash, m, len, NULL, 0);
    memcpy(sigs, SIGALG_HASHED, 2);
    memcpy(sigs + 2, sk->id, PATIENT_KEYID_BYTES);
    if ((err = patient_sign(sk, hash, sizeof hash, sigs + 2 + PATIENT_KEYID_BYTES)) != PATIENT_OK)
        goto out;
    /* The global signature covers the file signature and the trusted comment. */
    if ((err = pt_buf_append(&tc, sigs + 2 + PATIENT_KEYID_BYTES, PATIENT_SIG_BYTES)) ||
        (err = pt_buf_append(&tc, trusted_comment, tclen)))
        goto out;
    if ((err = patient_sign(sk, tc.data, tc.len, global)) != PATIENT_OK)
        goto out;
    if ((err = pt_b64_encode(sigs, sizeof sigs, 0, &b64a)) ||
        (err = pt_b64_encode(global, sizeof global, 0, &b64b)))
        goto out;
    if ((err = pt_buf_appendf(&text, COMMENT_PREFIX "%s\n%s\n" TRUSTED_PREFIX "%s\n%s\n",
                              untrusted_comment, b64a, trusted_comment, b64b)))
        goto out;
    *out = (char *)text.data;
    text.data = NULL;
out:
    free(b64a);
    free(b64b);
    pt_buf_free(&tc);
    pt_buf_free(&text);
    return err;
}

/* Split and decode a minisign signature file: the file signature block
 * (algorithm, key number, signature), the global signature and the trusted
 * comment (without its prefix). No cryptography. */
static patient_err
minisig_parse(const char *sig, size_t siglen,
              uint8_t sigs[2 + PATIENT_KEYID_BYTES + PATIENT_SIG_BYTES],
              uint8_t global[PATIENT_SIG_BYTES], const char **tc, size_t *tclen, int *hashed)
{
    const char *p = sig, *end = sig + siglen, *l1, *l2, *l3, *l4;
    size_t n1, n2, n3, n4;

    if (siglen > SIGFILE_MAX)
        return PATIENT_ERR_TOO_LARGE;
    if (pt_next_line(&p, end, &l1, &n1) || pt_next_line(&p, end, &l2, &n2) ||
        pt_next_line(&p, end, &l3, &n3) || pt_next_line(&p, end, &l4, &n4))
        return PATIENT_ERR_PARSE;
    if (n1 < sizeof COMMENT_PREFIX - 1 || memcmp(l1, COMMENT_PREFIX, sizeof COMMENT_PREFIX - 1) ||
        n3 < sizeof TRUSTED_PREFIX - 1 || memcmp(l3, TRUSTED_PREFIX, sizeof TRUSTED_PREFIX - 1))
        return PATIENT_ERR_PARSE;
    if (pt_b64_decode_exact(l2, n2, 0, sigs, 2 + PATIENT_KEYID_BYTES + PATIENT_SIG_BYTES) !=
            PATIENT_OK ||
        pt_b64_decode_exact(l4, n4, 0, global, PATIENT_SIG_BYTES) != PATIENT_OK)
        return PATIENT_ERR_PARSE;
    if (memcmp(sigs, SIGALG_HASHED, 2) == 0)
        *hashed = 1;
    else if (memcmp(sigs, SIGALG, 2) == 0)
        *hashed = 0;
    else
        return PATIENT_ERR_UNSUPPORTED;
    *tc = l3 + sizeof TRUSTED_PREFIX - 1;
    *tclen = n3 - (sizeof TRUSTED_PREFIX - 1);
    return PATIENT_OK;
}

patient_err
patient_minisig_keyid(const char *sig, size_t siglen, uint8_t keyid[PATIENT_KEYID_BYTES])
{
    uint8_t sigs[2 + PATIENT_KEYID_BYTES + PATIENT_SIG_BYTES], global[PATIENT_SIG_BYTES];
    const char *tc;
    size_t tclen;
    int hashed;
    patient_err err = minisig_parse(sig, siglen, sigs, global, &tc, &tclen, &hashed);

    if (err == PATIENT_OK)
        memcpy(keyid, sigs + 2, PATIENT_KEYID_BYTES);
    return err;
}

patient_err
patient_minisig_verify(const patient_pubkey *pk, const void *m, size_t len, const char *sig,
                       size_t siglen, char **trusted_comment,
                       uint8_t sig_keyid[PATIENT_KEYID_BYTES])
{
    const char *l3;
    size_t n3;
    uint8_t sigs[2 + PATIENT_KEYID_BYTES + PATIENT_SIG_BYTES], global[PATIENT_SIG_BYTES];
    uint8_t hash[crypto_generichash_BYTES_MAX];
    pt_buf tc = {0};
    patient_err err = PATIENT_OK;
    int hashed;

    if (trusted_comment)
        *trusted_comment = NULL;
    if ((err = minisig_parse(sig, siglen, sigs, global, &l3, &n3, &hashed)) != PATIENT_OK)
        return err;
    if (sig_keyid)
        memcpy(sig_keyid, sigs + 2, PATIENT_KEYID_BYTES);
    if (sodium_memcmp(sigs + 2, pk->id, PATIENT_KEYID_BYTES) != 0)
        return PATIENT_ERR_KEY_MISMATCH;
    if (hashed) {
        crypto_generichash(hash, sizeof hash, m, len, NULL, 0);
        err = patient_verify(pk, hash, sizeof hash, sigs + 2 + PATIENT_KEYID_BYTES);
    } else {
        err = patient_verify(pk, m, len, sigs + 2 + PATIENT_KEYID_BYTES);
    }
    if (err != PATIENT_OK)
        return PATIENT_ERR_SIGNATURE;
    if ((err = pt_buf_append(&tc, sigs + 2 + PATIENT_KEYID_BYTES, PATIENT_SIG_BYTES)) ||
        (err = pt_buf_append(&tc, l3, n3)))
        goto out;
    if (patient_verify(pk, tc.data, tc.len, global) != PATIENT_OK) {
        err = PATIENT_ERR_SIGNATURE;
        goto out;
    }
    if (trusted_comment) {
        if ((*trusted_comment = malloc(n3 + 1)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        memcpy(*trusted_comment, l3, n3);
        (*trusted_comment)[n3] = 0;
    }
out:
    pt_buf_free(&tc);
    return err;
}

patient_err
patient_minisign_inspect(const char *text, size_t len, patient_minisign_info *out)
{
    const char *p = text, *end = text + len, *l, *keyline = NULL;
    size_t ll, klen = 0;
    uint8_t *bin = NULL;
    size_t blen = 0;
    const char *b64end;
    patient_err err = PATIENT_ERR_PARSE;

    memset(out, 0, sizeof *out);
    if (len > SIGFILE_MAX)
        return PATIENT_ERR_TOO_LARGE;
    while (pt_next_line(&p, end, &l, &ll) == 0) {
        if (ll >= sizeof COMMENT_PREFIX - 1 &&
            memcmp(l, COMMENT_PREFIX, sizeof COMMENT_PREFIX - 1) == 0) {
            if (out->untrusted_comment == NULL) {
                out->untrusted_comment = l + sizeof COMMENT_PREFIX - 1;
                out->untrusted_comment_len = ll - (sizeof COMMENT_PREFIX - 1);
            }
            continue;
        }
        if (ll == 0)
            continue;
        keyline = l;
        klen = ll;
        break;
    }
    if (keyline == NULL)
        return PATIENT_ERR_KEY_FORMAT;
    out->line_len = klen;
    /* Guarded memory: for a secret key these are the seed's bytes. */
    if (sodium_init() < 0) /* sodium_malloc needs it */
        return PATIENT_ERR_CRYPTO;
    if ((bin = sodium_malloc(512)) == NULL)
        return PATIENT_ERR_NOMEM;
    if (klen > 400 || sodium_base642bin(bin, 512, keyline, klen, NULL, &blen, &b64end,
                                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
        b64end != keyline + klen) {
        err = PATIENT_ERR_BASE64;
        goto out;
    }
    out->decoded_len = blen;
    memcpy(out->alg, bin, blen < 4 ? blen : 4);
    if (blen == 2 + PATIENT_KEYID_BYTES + PATIENT_PUBKEY_BYTES && memcmp(bin, SIGALG, 2) == 0) {
        out->kind = PATIENT_MINISIGN_PUBKEY;
        memcpy(out->pubkey.id, bin + 2, PATIENT_KEYID_BYTES);
        memcpy(out->pubkey.pk, bin + 2 + PATIENT_KEYID_BYTES, PATIENT_PUBKEY_BYTES);
        memcpy(out->keyid, out->pubkey.id, PATIENT_KEYID_BYTES);
        out->has_pubkey = 1;
        err = PATIENT_OK;
    } else if (blen == sizeof(seckey_file) && memcmp(bin, SIGALG, 2) == 0) {
        const seckey_file *f = (const seckey_file *)(const void *)bin;
        out->kind = PATIENT_MINISIGN_SECKEY;
        out->encrypted = memcmp(f->kdf_alg, KDFALG, 2) == 0;
        if (!out->encrypted && !(f->kdf_alg[0] == 0 && f->kdf_alg[1] == 0)) {
            err = PATIENT_ERR_UNSUPPORTED;
            goto out;
        }
        if (out->encrypted) {
            out->kdf_opslimit = le64_load(f->kdf_opslimit_le);
            out->kdf_memlimit = le64_load(f->kdf_memlimit_le);
        } else {
            /* Key number and the public half of the secret key: both public
             * facts. The seed is never looked at. */
            memcpy(out->pubkey.id, f->ks.keynum, PATIENT_KEYID_BYTES);
            memcpy(out->pubkey.pk, f->ks.sk + crypto_sign_SEEDBYTES, PATIENT_PUBKEY_BYTES);
            memcpy(out->keyid, out->pubkey.id, PATIENT_KEYID_BYTES);
            out->has_pubkey = 1;
        }
        err = PATIENT_OK;
    } else if (blen == 2 + PATIENT_KEYID_BYTES + PATIENT_SIG_BYTES &&
               (bin[0] == 'E' || bin[0] == 'e') && (bin[1] == 'D' || bin[1] == 'd')) {
        const char *gs = NULL;
        size_t glen = 0;
        out->kind = PATIENT_MINISIGN_SIGNATURE;
        out->prehashed = bin[1] == 'D';
        memcpy(out->keyid, bin + 2, PATIENT_KEYID_BYTES);
        if (pt_next_line(&p, end, &l, &ll) == 0 && ll >= sizeof TRUSTED_PREFIX - 1 &&
            memcmp(l, TRUSTED_PREFIX, sizeof TRUSTED_PREFIX - 1) == 0) {
            out->trusted_comment = l + sizeof TRUSTED_PREFIX - 1;
            out->trusted_comment_len = ll - (sizeof TRUSTED_PREFIX - 1);
            if (pt_next_line(&p, end, &gs, &glen) != 0)
                gs = NULL;
        }
        err = out->trusted_comment == NULL || gs == NULL || glen == 0 ? PATIENT_ERR_PARSE
                                                                      : PATIENT_OK;
    }
out:
    sodium_free(bin); /* wipes the secret key bytes */
    return err;
}

/* A 32-byte key for authenticating the publisher's private files (the
 * incremental publish state): BLAKE2b keyed with the secret key over a
 * context string. Whoever lacks the secret key cannot forge such a file,
 * and the derived key cannot sign anything a verifier would accept. */
void
pt_seckey_derive(const patient_seckey *sk, const char *context, uint8_t out[32])
{
    crypto_generichash(out, 32, (const unsigned char *)context, strlen(context), sk->sk,
                       sizeof sk->sk);
}
