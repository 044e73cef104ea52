/* SHA-256 through libcrypto: it picks SHA-NI where the CPU has it, about 4x
 * libsodium's portable code on this class of machine. One-shot hashes use
 * the low-level SHA256_Init/Update/Final: EVP_Digest (and SHA256(), which
 * is EVP_Q_digest in OpenSSL 3) fetches the algorithm under a global
 * read-write lock and allocates a context on every call, which cost ~15%
 * of verifying a log (two hashes per line), and so do incremental hashes
 * (an EVP context's init was ~6% of a middlebox's CPU per 10 KB change).
 * Same assembly either way. */
#include "config.h"

/* SHA256_Init & co. are "deprecated" in OpenSSL 3 in favour of EVP, not removed. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <patient/fetch.h>
#include <patient/hash.h>
#include "util.h"
#include "hash_int.h"

struct patient_sha256_ctx {
    SHA256_CTX c;
};

patient_err
patient_sha256(const void *data, size_t len, uint8_t out[PATIENT_SHA256_BYTES])
{
    SHA256_CTX c;

    /* Not SHA256(): in OpenSSL 3 it goes through EVP_Q_digest, which
     * fetches the algorithm (a global read-write lock, a reference count)
     * on every call: ~5% of verifying a log, more when threads share it. */
    if (SHA256_Init(&c) != 1 || (len && SHA256_Update(&c, data, len) != 1) ||
        SHA256_Final(out, &c) != 1)
        return PATIENT_ERR_CRYPTO;
    return PATIENT_OK;
}

patient_err
patient_sha256_init(patient_sha256_ctx **ctx)
{
    patient_sha256_ctx *c;

    *ctx = NULL;
    if ((c = malloc(sizeof *c)) == NULL)
        return PATIENT_ERR_NOMEM;
    if (SHA256_Init(&c->c) != 1) {
        patient_sha256_free(c);
        return PATIENT_ERR_CRYPTO;
    }
    *ctx = c;
    return PATIENT_OK;
}

patient_err
patient_sha256_update(patient_sha256_ctx *ctx, const void *data, size_t len)
{
    return SHA256_Update(&ctx->c, data, len) == 1 ? PATIENT_OK : PATIENT_ERR_CRYPTO;
}

patient_err
patient_sha256_final(patient_sha256_ctx *ctx, uint8_t out[PATIENT_SHA256_BYTES])
{
    patient_err err = SHA256_Final(out, &ctx->c) == 1 ? PATIENT_OK : PATIENT_ERR_CRYPTO;

    patient_sha256_free(ctx);
    return err;
}

patient_err
pt_sha256_copy(patient_sha256_ctx *dst, const patient_sha256_ctx *src)
{
    if (dst == NULL || src == NULL)
        return PATIENT_ERR_ARG;
    dst->c = src->c;
    return PATIENT_OK;
}

void
patient_sha256_free(patient_sha256_ctx *ctx)
{
    if (ctx == NULL)
        return;
    OPENSSL_cleanse(ctx, sizeof *ctx);
    free(ctx);
}

patient_err
patient_sha256_file(const char *path, uint8_t out[PATIENT_SHA256_BYTES], uint64_t *size)
{
    struct stat st;
    int fd;
    patient_err err = PATIENT_OK;
    patient_sha256_ctx *ctx = NULL;

    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0)
        return errno == ELOOP ? PATIENT_ERR_UNSAFE_PATH
                              : errno == ENOENT ? PATIENT_ERR_NOT_FOUND : PATIENT_ERR_IO;
    if (fstat(fd, &st) != 0) {
        err = PATIENT_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err = PATIENT_ERR_UNSAFE_PATH;
        goto out;
    }
    *size = (uint64_t)st.st_size;
    if (st.st_size == 0) {
        err = patient_sha256("", 0, out);
        goto out;
    }
    /* read(), not mmap(): a file truncated under us must give an error,
     * not SIGBUS. */
    {
        static const size_t bufsz = 1 << 20;
        uint8_t *buf = malloc(bufsz);
        ssize_t n;
        uint64_t total = 0;

        if (buf == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        if ((err = patient_sha256_init(&ctx)) != PATIENT_OK) {
            free(buf);
            goto out;
        }
        while ((n = read(fd, buf, bufsz)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                err = PATIENT_ERR_IO;
                break;
            }
            total += (uint64_t)n;
            if ((err = patient_sha256_update(ctx, buf, (size_t)n)) != PATIENT_OK)
                break;
        }
        free(buf);
        if (err == PATIENT_OK) {
            err = patient_sha256_final(ctx, out);
            ctx = NULL;
            *size = total;
        }
    }
out:
    patient_sha256_free(ctx);
    close(fd);
    return err;
}

void
patient_sri_encode(const uint8_t h[PATIENT_SHA256_BYTES], char out[PATIENT_SRI_BYTES])
{
    memcpy(out, "sha256-", 7);
    sodium_bin2base64(out + 7, PATIENT_SRI_BYTES - 7, h, PATIENT_SHA256_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
}

patient_err
patient_sri_decode(const char *sri, uint8_t out[PATIENT_SHA256_BYTES])
{
    const char *dash;

    if (sri == NULL || (dash = strchr(sri, '-')) == NULL)
        return PATIENT_ERR_PARSE;
    if ((size_t)(dash - sri) != 6 || memcmp(sri, "sha256", 6) != 0)
        return PATIENT_ERR_UNSUPPORTED;
    return pt_b64_decode_exact(dash + 1, strlen(dash + 1), 0, out, PATIENT_SHA256_BYTES) ==
                   PATIENT_OK
               ? PATIENT_OK
               : PATIENT_ERR_PARSE;
}

patient_err
patient_tls_pin_parse(const char *text, size_t len, uint8_t out[PATIENT_SHA256_BYTES])
{
    BIO *bio = NULL;
    X509 *cert = NULL;
    EVP_PKEY *pk = NULL;
    unsigned char *der = NULL;
    int dlen = -1;
    patient_err err = PATIENT_ERR_PARSE;

    if (text == NULL || out == NULL || len > 65536)
        return PATIENT_ERR_ARG;
    if (len > 7 && strncmp(text, "sha256-", 7) == 0) {
        char buf[PATIENT_SRI_BYTES + 2];
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
            len--;
        if (len >= sizeof buf)
            return PATIENT_ERR_PARSE;
        memcpy(buf, text, len);
        buf[len] = 0;
        return patient_sri_decode(buf, out) == PATIENT_OK ? PATIENT_OK : PATIENT_ERR_PARSE;
    }
    if ((bio = BIO_new_mem_buf(text, (int)len)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        dlen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    } else {
        (void)BIO_reset(bio);
        if ((pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) != NULL)
            dlen = i2d_PUBKEY(pk, &der);
    }
    if (dlen > 0 && patient_sha256(der, (size_t)dlen, out) == PATIENT_OK)
        err = PATIENT_OK;
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    X509_free(cert);
    BIO_free(bio);
    return err;
}

patient_err
pt_pins_parse(const cJSON *a, const char *name, uint8_t (**out)[32], size_t *n, char **detail)
{
    const cJSON *it;
    uint8_t(*p)[32];
    size_t k = 0, cnt;
    patient_err err = PATIENT_ERR_PARSE;

    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(a) || (cnt = (size_t)cJSON_GetArraySize(a)) == 0)
        goto refused;
    if (cnt > PATIENT_MAX_TLS_PINS) {
        err = PATIENT_ERR_LIMIT;
        goto refused;
    }
    if ((p = calloc(cnt, sizeof *p)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it) || patient_sri_decode(it->valuestring, p[k]) != PATIENT_OK)
            goto bad;
        for (size_t j = 0; j < k; j++)
            if (memcmp(p[j], p[k], 32) == 0)
                goto bad;
        k++;
    }
    *out = p;
    *n = k;
    return PATIENT_OK;
bad:
    free(p);
refused:
    return pt_detail_err(detail, err, "%s: not an array of 1..%d distinct sha256- pins", name,
                         PATIENT_MAX_TLS_PINS);
}

cJSON *
pt_pins_json(const uint8_t (*p)[32], size_t n)
{
    char sri[PATIENT_SRI_BYTES];
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a && i < n; i++) {
        patient_sri_encode(p[i], sri);
        if (!pt_json_push(a, cJSON_CreateString(sri))) {
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* Bundles and the native host carry a chain alike (hash_int.h). */
int
pt_chain_from_json(const cJSON *ch, uint8_t (*out)[32], size_t *n, size_t *bad)
{
    const cJSON *c;
    size_t k = cJSON_IsArray(ch) ? (size_t)cJSON_GetArraySize(ch) : 0;

    *n = 0;
    *bad = 0;
    if (k == 0 || k > PATIENT_FETCH_MAX_CHAIN)
        return -1;
    cJSON_ArrayForEach(c, ch) {
        if (!cJSON_IsString(c) || patient_sri_decode(c->valuestring, out[*n]) != PATIENT_OK) {
            *bad = *n + 1;
            *n = 0;
            return -1;
        }
        (*n)++;
    }
    return 0;
}
