/* Ed25519 keys in minisign's file formats, and minisign signatures.
 *
 * Public key files: "untrusted comment: ...\n" + base64("Ed" | keynum[8] |
 * pk[32]) ("RW..."). Secret key files: minisign's layout, scrypt-encrypted
 * or unencrypted (minisign -W). Key id: minisign's 8-byte key number, shown
 * as 16 upper-case hex digits exactly as minisign prints it. */
#ifndef PATIENT_KEY_H
#define PATIENT_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <patient/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PATIENT_KEYID_BYTES 8
#define PATIENT_KEYID_HEX 17 /* 16 hex digits + NUL */
#define PATIENT_PUBKEY_BYTES 32
#define PATIENT_SIG_BYTES 64
#define PATIENT_PUBKEY_B64 57 /* "RW..." 56 characters + NUL */
#define PATIENT_PASSWORD_MAX 1024
#define PATIENT_COMMENT_MAX 1024
#define PATIENT_TRUSTED_COMMENT_MAX 8192
/* A .minisig file: two comment lines and two base64 lines. */
#define PATIENT_MINISIG_MAX_BYTES (2 * PATIENT_TRUSTED_COMMENT_MAX + 4096)

typedef struct patient_pubkey {
    uint8_t id[PATIENT_KEYID_BYTES];
    uint8_t pk[PATIENT_PUBKEY_BYTES];
} patient_pubkey;

/* Secret key: opaque, kept in guarded sodium_malloc memory, wiped on free. */
typedef struct patient_seckey patient_seckey;

/* Key id as minisign prints it ("1D086AAD0FA41855"). */
PATIENT_EXPORT void patient_keyid_hex(const uint8_t id[PATIENT_KEYID_BYTES],
                                      char out[PATIENT_KEYID_HEX]);
PATIENT_EXPORT PATIENT_WUR patient_err patient_keyid_parse(const char *hex,
                                                           uint8_t id[PATIENT_KEYID_BYTES]);

/* New random key pair. *sk: free with patient_seckey_free. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_keypair_generate(patient_pubkey *pk,
                                                                patient_seckey **sk);

/* Parse a public key from text: a bare "RW..." string, or a whole key file
 * (comment line + key line). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_pubkey_parse(const char *text, size_t len,
                                                            patient_pubkey *pk);
/* Load a public key file, or, when spec starts with "RW" and is not an
 * existing file, the key string itself. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_pubkey_load(const char *spec, patient_pubkey *pk);
/* "RW..." base64 form. */
PATIENT_EXPORT void patient_pubkey_encode(const patient_pubkey *pk, char out[PATIENT_PUBKEY_B64]);
/* Write a public key file (0644, atomically; EXISTS unless force). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_pubkey_save(const char *path,
                                                           const patient_pubkey *pk, int force);

/* Load a secret key file. Refuses files readable by group or others
 * (PATIENT_ERR_PERM) and symlinks. password may be NULL for an unencrypted
 * key; an encrypted key with a NULL password gives PATIENT_ERR_KEY_PASSWORD
 * and sets *encrypted (if not NULL) so a tool can prompt and retry. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_seckey_load(const char *path,
                                                           const char *password,
                                                           patient_seckey **sk,
                                                           int *encrypted);
/* Parse the contents of a secret key file (no permission checks).
 * Encrypted keys whose scrypt parameters exceed minisign's (opslimit 2^25,
 * memlimit 2^30) are PATIENT_ERR_TOO_LARGE; a wrong password is
 * PATIENT_ERR_KEY_PASSWORD; an unencrypted key's checksum may be all zero
 * (as minisign writes it) or the real BLAKE2b checksum. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_seckey_parse(const char *text, size_t len,
                                                            const char *password,
                                                            patient_seckey **sk,
                                                            int *encrypted);
/* Write a secret key file: 0600, created exclusively unless force (then
 * replaced atomically). password NULL or "" writes an unencrypted key as
 * minisign -W does; otherwise scrypt-encrypted with minisign's parameters. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_seckey_save(const char *path,
                                                           const patient_seckey *sk,
                                                           const char *password, int force);
/* Same, with the file's untrusted comment line set to comment (one line,
 * at most PATIENT_COMMENT_MAX bytes, PATIENT_ERR_ARG otherwise); NULL gives
 * minisign's default ("minisign encrypted secret key" / "minisign secret
 * key (unencrypted)"). */
PATIENT_EXPORT PATIENT_WUR patient_err patient_seckey_save_commented(const char *path,
                                                                     const patient_seckey *sk,
                                                                     const char *password,
                                                                     const char *comment,
                                                                     int force);
/* Public half of a secret key. */
PATIENT_EXPORT void patient_seckey_pubkey(const patient_seckey *sk, patient_pubkey *pk);
/* Wipe and free; accepts NULL. */
PATIENT_EXPORT void patient_seckey_free(patient_seckey *sk);

/* Read a password for unattended use: from the file named by the
 * PATIENT_PASSWORD_FILE environment variable or the given file (first line,
 * newline stripped; file must not be group/world readable). Caller frees
 * with patient_password_free. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_password_from_file(const char *path,
                                                                  char **password);
PATIENT_EXPORT void patient_password_free(char *password);

/* Raw Ed25519 over exact bytes. Thread-safe for a shared sk. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_sign(const patient_seckey *sk, const void *m,
                                                    size_t len,
                                                    uint8_t sig[PATIENT_SIG_BYTES]);
PATIENT_EXPORT PATIENT_WUR patient_err patient_verify(const patient_pubkey *pk, const void *m,
                                                      size_t len,
                                                      const uint8_t sig[PATIENT_SIG_BYTES]);

/* minisign signature file (prehashed "ED" form) over exact bytes m.
 * trusted_comment: one line, no newline, not NULL (PATIENT_ERR_ARG otherwise).
 * untrusted_comment may be NULL. *out is malloc'd, NUL-terminated. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_minisig_sign(const patient_seckey *sk,
                                                            const void *m, size_t len,
                                                            const char *untrusted_comment,
                                                            const char *trusted_comment,
                                                            char **out);
/* The key id a minisign signature file names, without checking anything
 * else (to pick the key to verify with, or to say which key was expected).
 * PATIENT_ERR_PARSE / UNSUPPORTED / TOO_LARGE as patient_minisig_verify. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_minisig_keyid(const char *sig, size_t siglen,
                                                             uint8_t keyid[PATIENT_KEYID_BYTES]);
/* Verify a minisign signature file (prehashed "ED" or legacy "Ed") over m.
 * Checks the key id first (PATIENT_ERR_KEY_MISMATCH; *sig_keyid, when not
 * NULL, gets the id the signature names either way), then the signature and
 * the trusted comment's signature. On success *trusted_comment (if not
 * NULL) is a malloc'd copy. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_minisig_verify(
    const patient_pubkey *pk, const void *m, size_t len, const char *sig, size_t siglen,
    char **trusted_comment, uint8_t sig_keyid[PATIENT_KEYID_BYTES]);

/* ---- Reading a minisign file without verifying it (for display) ------- */

typedef enum patient_minisign_kind {
    PATIENT_MINISIGN_UNKNOWN = 0,
    PATIENT_MINISIGN_PUBKEY = 1,
    PATIENT_MINISIGN_SECKEY = 2,
    PATIENT_MINISIGN_SIGNATURE = 3
} patient_minisign_kind;

/* What a minisign-format file says. Pointers point into the caller's text. */
typedef struct patient_minisign_info {
    patient_minisign_kind kind;
    const char *untrusted_comment; /* first "untrusted comment: " text, NULL if none */
    size_t untrusted_comment_len;
    const char *trusted_comment;   /* signature: its trusted comment */
    size_t trusted_comment_len;
    int has_pubkey;                /* public key, or unencrypted secret key: pubkey set */
    patient_pubkey pubkey;         /* key id and public key (public facts only) */
    uint8_t keyid[PATIENT_KEYID_BYTES]; /* signature: the key id it names */
    int prehashed;                 /* signature: "ED" (1) or legacy "Ed" (0) */
    int encrypted;                 /* secret key: scrypt-encrypted */
    uint64_t kdf_opslimit, kdf_memlimit; /* secret key, when encrypted */
    size_t line_len;               /* the base64 line's length */
    size_t decoded_len;            /* its decoded length (0 when not base64) */
    uint8_t alg[4];                /* its first four bytes: signature and KDF algorithms */
} patient_minisign_info;

/* Say what a minisign public key, secret key or signature file (text, len)
 * is, checking nothing cryptographic. The file is comment lines
 * ("untrusted comment: ..."), then one base64 line: 42 bytes "Ed" + key id
 * + key is a public key, 158 bytes "Ed" + KDF (none or "Sc") a secret key,
 * 74 bytes "ED"/"Ed" + key id + signature a signature, which must be
 * followed by its "trusted comment: " and global signature lines. The
 * secret seed is never copied out (decoding happens in guarded memory,
 * wiped). Returns PATIENT_OK with *out filled, or, with as much of *out as
 * was read: PATIENT_ERR_KEY_FORMAT (no base64 line), PATIENT_ERR_BASE64
 * (the line is not base64, or over 400 characters), PATIENT_ERR_UNSUPPORTED
 * (a secret key with another KDF), PATIENT_ERR_PARSE (another length or
 * algorithm; kind is PATIENT_MINISIGN_SIGNATURE when only the trusted
 * comment and global signature lines are missing), PATIENT_ERR_TOO_LARGE
 * over PATIENT_MINISIG_MAX_BYTES. Thread-safe. */
PATIENT_EXPORT PATIENT_WUR patient_err patient_minisign_inspect(const char *text, size_t len,
                                                                patient_minisign_info *out);

#ifdef __cplusplus
}
#endif
#endif
