/* The endpoint's trust policy: strict loading, lookups, building, lint. */
#include "config.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <patient/policy.h>

#include <patient/disclosure.h>
#include <patient/hash.h>
#include "hash_int.h"
#include "policy_int.h"
#include "util.h"

typedef struct {
    char **v;
    size_t n;
} strlist;

struct patient_policy_middlebox {
    char *name;
    patient_pubkey key;
    strlist reasons, paths, origins;
    long long max_edits; /* -1 unlimited */
    int insert;
    int may_decrypt; /* may intercept the endpoint's TLS (its disclosed CA) */
    uint8_t (*ica)[32]; /* interception CA pins the endpoint recorded itself */
    size_t nica;
};

typedef struct {
    char *origin; /* normalised */
    patient_pubkey *keys;
    size_t nkeys;
} publisher;

struct patient_policy {
    publisher *pubs;
    size_t npubs;
    patient_policy_middlebox *mbs;
    size_t nmbs;
    int require_disclosure;
    long long max_retention; /* -1 none */
    char *min_tls;           /* NULL none */
    int upstream_verified;   /* hops must have verified an https origin's certificate */
    int require_logged;      /* offline: every change proven into its middlebox's log */
    patient_proof proof;
    patient_unsigned_action unsig;
    strlist unknown; /* KEEP_UNKNOWN only: field paths */
    unsigned flags;
};

const char *
patient_policy_deny_name(patient_policy_deny why)
{
    switch (why) {
    case PATIENT_POLICY_DENY_ORIGIN: return "policy.origin.denied";
    case PATIENT_POLICY_DENY_PATH: return "policy.path.denied";
    case PATIENT_POLICY_DENY_REASON: return "policy.reason.denied";
    case PATIENT_POLICY_DENY_INSERT: return "policy.insert.denied";
    default: return "ok";
    }
}

/* ---- small helpers ------------------------------------------------------ */

static void
strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static patient_err
strlist_add(strlist *l, const char *s)
{
    char **nv, *c;

    if ((c = strdup(s)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((nv = realloc(l->v, (l->n + 1) * sizeof *nv)) == NULL) {
        free(c);
        return PATIENT_ERR_NOMEM;
    }
    l->v = nv;
    l->v[l->n++] = c;
    return PATIENT_OK;
}

static void
mb_clear(patient_policy_middlebox *m)
{
    free(m->name);
    strlist_free(&m->reasons);
    strlist_free(&m->paths);
    strlist_free(&m->origins);
    free(m->ica);
}

void
patient_policy_free(patient_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->npubs; i++) {
        free(p->pubs[i].origin);
        free(p->pubs[i].keys);
    }
    free(p->pubs);
    for (size_t i = 0; i < p->nmbs; i++)
        mb_clear(&p->mbs[i]);
    free(p->mbs);
    free(p->min_tls);
    strlist_free(&p->unknown);
    free(p);
}

patient_err
patient_policy_new(patient_policy **pp)
{
    patient_policy *p;

    if (pp == NULL)
        return PATIENT_ERR_ARG;
    *pp = NULL;
    if ((p = calloc(1, sizeof *p)) == NULL)
        return PATIENT_ERR_NOMEM;
    /* Safe defaults: see docs/format/policy.md for the reasoning. */
    p->require_disclosure = 0;
    p->max_retention = -1;
    p->upstream_verified = 1;
    if ((p->min_tls = strdup("TLSv1.2")) == NULL) {
        free(p);
        return PATIENT_ERR_NOMEM;
    }
    p->proof = PATIENT_PROOF_AUTO;
    p->unsig = PATIENT_UNSIGNED_UNVERIFIABLE;
    *pp = p;
    return PATIENT_OK;
}

/* Printable text without control bytes. */
static int
clean_text(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* A policy origin: an http(s) origin, optionally with a trailing "/". */
static patient_err
norm_origin(const char *s, char **out)
{
    char *path = NULL;
    patient_err err;

    *out = NULL;
    if (strpbrk(s, "?#"))
        return PATIENT_ERR_ARG;
    if ((err = patient_policy_split_url(s, out, &path)) != PATIENT_OK)
        return err == PATIENT_ERR_NOMEM ? err : PATIENT_ERR_ARG;
    if (strcmp(path, "/") != 0) {
        free(*out);
        *out = NULL;
        err = PATIENT_ERR_ARG;
    }
    free(path);
    return err;
}

/* ---- parsing ------------------------------------------------------------------ */

static patient_err
unknown_field(patient_policy *p, const char *where, const char *name, char **detail)
{
    char buf[512];

    if (!(p->flags & PATIENT_POLICY_KEEP_UNKNOWN)) {
        pt_detail_first(detail, "%s%s%s: unknown field", where, *where ? "." : "", name);
        return PATIENT_ERR_PARSE;
    }
    snprintf(buf, sizeof buf, "%s%s%s", where, *where ? "." : "", name);
    return strlist_add(&p->unknown, buf);
}

static patient_err
parse_globs(const cJSON *arr, const char *where, strlist *out, char **detail)
{
    const cJSON *c;
    size_t i = 0;
    patient_err err;

    if (!cJSON_IsArray(arr)) {
        pt_detail_first(detail, "%s: not an array of strings", where);
        return PATIENT_ERR_PARSE;
    }
    if ((size_t)cJSON_GetArraySize(arr) > PATIENT_POLICY_MAX_GLOBS) {
        pt_detail_first(detail, "%s: more than %d patterns", where, PATIENT_POLICY_MAX_GLOBS);
        return PATIENT_ERR_TOO_LARGE;
    }
    cJSON_ArrayForEach(c, arr) {
        if (!cJSON_IsString(c) || strlen(c->valuestring) > PATIENT_POLICY_MAX_GLOB_LEN ||
            (c->valuestring[0] && !clean_text(c->valuestring, PATIENT_POLICY_MAX_GLOB_LEN))) {
            pt_detail_first(detail, "%s[%zu]: not a pattern string (at most %d printable bytes)",
                            where, i, PATIENT_POLICY_MAX_GLOB_LEN);
            return PATIENT_ERR_PARSE;
        }
        if ((err = strlist_add(out, c->valuestring)) != PATIENT_OK)
            return err;
        i++;
    }
    return PATIENT_OK;
}

static patient_err
parse_key(const cJSON *v, const char *where, patient_pubkey *pk, char **detail)
{
    patient_err err;

    if (!cJSON_IsString(v)) {
        pt_detail_first(detail, "%s: not a public key string (\"RW...\")", where);
        return PATIENT_ERR_PARSE;
    }
    if ((err = patient_pubkey_parse(v->valuestring, strlen(v->valuestring), pk)) != PATIENT_OK) {
        pt_detail_first(detail, "%s: not a valid public key (%s)", where, patient_strerror(err));
        return PATIENT_ERR_PARSE;
    }
    return PATIENT_OK;
}

static patient_err
parse_publishers(patient_policy *p, const cJSON *o, char **detail)
{
    const cJSON *c, *k;
    patient_err err;
    char where[600];

    if (!cJSON_IsObject(o)) {
        pt_detail_first(detail, "publishers: not an object");
        return PATIENT_ERR_PARSE;
    }
    if ((size_t)cJSON_GetArraySize(o) > PATIENT_POLICY_MAX_ORIGINS) {
        pt_detail_first(detail, "publishers: more than %d origins", PATIENT_POLICY_MAX_ORIGINS);
        return PATIENT_ERR_TOO_LARGE;
    }
    if ((p->pubs = calloc((size_t)cJSON_GetArraySize(o) + 1, sizeof *p->pubs)) == NULL)
        return PATIENT_ERR_NOMEM;
    cJSON_ArrayForEach(c, o) {
        publisher *pub = &p->pubs[p->npubs];
        size_t j = 0;

        snprintf(where, sizeof where, "publishers[\"%.500s\"]", c->string);
        if (norm_origin(c->string, &pub->origin) != PATIENT_OK) {
            pt_detail_first(detail, "%s: not an origin (\"https://host[:port]\")", where);
            return PATIENT_ERR_PARSE;
        }
        p->npubs++;
        for (size_t i = 0; i + 1 < p->npubs; i++)
            if (strcmp(p->pubs[i].origin, pub->origin) == 0) {
                pt_detail_first(detail, "%s: origin listed twice", where);
                return PATIENT_ERR_PARSE;
            }
        if (!cJSON_IsArray(c)) {
            pt_detail_first(detail, "%s: not an array of public keys", where);
            return PATIENT_ERR_PARSE;
        }
        if ((size_t)cJSON_GetArraySize(c) > PATIENT_POLICY_MAX_KEYS) {
            pt_detail_first(detail, "%s: more than %d keys", where, PATIENT_POLICY_MAX_KEYS);
            return PATIENT_ERR_TOO_LARGE;
        }
        if ((pub->keys = calloc((size_t)cJSON_GetArraySize(c) + 1, sizeof *pub->keys)) == NULL)
            return PATIENT_ERR_NOMEM;
        cJSON_ArrayForEach(k, c) {
            char kw[640];
            snprintf(kw, sizeof kw, "%s[%zu]", where, j++);
            if ((err = parse_key(k, kw, &pub->keys[pub->nkeys], detail)) != PATIENT_OK)
                return err;
            for (size_t i = 0; i < pub->nkeys; i++)
                if (memcmp(&pub->keys[i], &pub->keys[pub->nkeys], sizeof(patient_pubkey)) == 0) {
                    pt_detail_first(detail, "%s: key listed twice", kw);
                    return PATIENT_ERR_PARSE;
                }
            pub->nkeys++;
        }
    }
    return PATIENT_OK;
}

static patient_err
parse_middlebox(patient_policy *p, const cJSON *o, size_t idx, char **detail)
{
    patient_policy_middlebox *m = &p->mbs[p->nmbs];
    const cJSON *c;
    char where[64], w2[96];
    patient_err err;
    int have_name = 0, have_key = 0, have_paths = 0, have_origins = 0;
    long long v;

    snprintf(where, sizeof where, "middleboxes[%zu]", idx);
    if (!cJSON_IsObject(o)) {
        pt_detail_first(detail, "%s: not an object", where);
        return PATIENT_ERR_PARSE;
    }
    p->nmbs++; /* so patient_policy_free releases what we fill in */
    m->max_edits = PATIENT_POLICY_DEFAULT_MAX_EDITS;
    cJSON_ArrayForEach(c, o) {
        const char *f = c->string;
        snprintf(w2, sizeof w2, "%s.%.20s", where, f);
        if (strcmp(f, "name") == 0) {
            if (!cJSON_IsString(c) || !clean_text(c->valuestring, PATIENT_POLICY_MAX_NAME_LEN)) {
                pt_detail_first(detail, "%s: not a name (1 to %d printable bytes)", w2,
                                PATIENT_POLICY_MAX_NAME_LEN);
                return PATIENT_ERR_PARSE;
            }
            if ((m->name = strdup(c->valuestring)) == NULL)
                return PATIENT_ERR_NOMEM;
            have_name = 1;
        } else if (strcmp(f, "key") == 0) {
            if ((err = parse_key(c, w2, &m->key, detail)) != PATIENT_OK)
                return err;
            have_key = 1;
        } else if (strcmp(f, "reasons") == 0) {
            if ((err = parse_globs(c, w2, &m->reasons, detail)) != PATIENT_OK)
                return err;
        } else if (strcmp(f, "paths") == 0) {
            if ((err = parse_globs(c, w2, &m->paths, detail)) != PATIENT_OK)
                return err;
            have_paths = 1;
        } else if (strcmp(f, "origins") == 0) {
            if ((err = parse_globs(c, w2, &m->origins, detail)) != PATIENT_OK)
                return err;
            have_origins = 1;
        } else if (strcmp(f, "max_edits") == 0) {
            if (cJSON_IsNull(c)) {
                m->max_edits = -1;
            } else if (pt_json_int(o, f, &v) != 0 || v < 0 || v > PATIENT_POLICY_MAX_EDITS_CAP) {
                pt_detail_first(detail, "%s: not null or an integer 0..%d", w2,
                                PATIENT_POLICY_MAX_EDITS_CAP);
                return PATIENT_ERR_PARSE;
            } else {
                m->max_edits = v;
            }
        } else if (strcmp(f, "insert") == 0) {
            if (!cJSON_IsBool(c)) {
                pt_detail_first(detail, "%s: not true or false", w2);
                return PATIENT_ERR_PARSE;
            }
            m->insert = cJSON_IsTrue(c);
        } else if (strcmp(f, "may_decrypt") == 0) {
            if (!cJSON_IsBool(c)) {
                pt_detail_first(detail, "%s: not true or false", w2);
                return PATIENT_ERR_PARSE;
            }
            m->may_decrypt = cJSON_IsTrue(c);
        } else if (strcmp(f, "interception_ca") == 0) {
            free(m->ica);
            m->ica = NULL;
            if ((err = pt_pins_parse(c, w2, &m->ica, &m->nica, detail)) != PATIENT_OK)
                return err == PATIENT_ERR_NOMEM ? err : PATIENT_ERR_PARSE;
        } else if ((err = unknown_field(p, where, f, detail)) != PATIENT_OK) {
            return err;
        }
    }
    if (!have_name || !have_key) {
        pt_detail_first(detail, "%s.%s: missing", where, have_name ? "key" : "name");
        return PATIENT_ERR_PARSE;
    }
    if (!have_paths && (err = strlist_add(&m->paths, "/*")) != PATIENT_OK)
        return err;
    if (!have_origins && (err = strlist_add(&m->origins, "*")) != PATIENT_OK)
        return err;
    for (size_t i = 0; i + 1 < p->nmbs; i++)
        if (memcmp(p->mbs[i].key.id, m->key.id, PATIENT_KEYID_BYTES) == 0) {
            pt_detail_first(detail, "%s.key: key id already used by middleboxes[%zu]", where, i);
            return PATIENT_ERR_PARSE;
        }
    return PATIENT_OK;
}

static patient_err
parse_require(patient_policy *p, const cJSON *o, char **detail)
{
    const cJSON *c;
    long long v;
    patient_err err;

    if (!cJSON_IsObject(o)) {
        pt_detail_first(detail, "require: not an object");
        return PATIENT_ERR_PARSE;
    }
    cJSON_ArrayForEach(c, o) {
        const char *f = c->string;
        if (strcmp(f, "disclosure") == 0) {
            if (!cJSON_IsBool(c)) {
                pt_detail_first(detail, "require.disclosure: not true or false");
                return PATIENT_ERR_PARSE;
            }
            p->require_disclosure = cJSON_IsTrue(c);
        } else if (strcmp(f, "max_retention_days") == 0) {
            if (cJSON_IsNull(c)) {
                p->max_retention = -1;
            } else if (pt_json_int(o, f, &v) != 0 || v < 0 ||
                       v > PATIENT_DISCLOSURE_MAX_RETENTION) {
                pt_detail_first(detail, "require.max_retention_days: not null or an integer 0..%d",
                                PATIENT_DISCLOSURE_MAX_RETENTION);
                return PATIENT_ERR_PARSE;
            } else {
                p->max_retention = v;
            }
        } else if (strcmp(f, "min_upstream_tls") == 0) {
            free(p->min_tls);
            p->min_tls = NULL;
            if (cJSON_IsNull(c))
                continue;
            if (!cJSON_IsString(c) || patient_tls_version_rank(c->valuestring) == 0) {
                pt_detail_first(detail,
                                "require.min_upstream_tls: not null or one of SSLv3, TLSv1, "
                                "TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3");
                return PATIENT_ERR_PARSE;
            }
            if ((p->min_tls = strdup(c->valuestring)) == NULL)
                return PATIENT_ERR_NOMEM;
        } else if (strcmp(f, "upstream_verified") == 0) {
            if (!cJSON_IsBool(c)) {
                pt_detail_first(detail, "require.upstream_verified: not true or false");
                return PATIENT_ERR_PARSE;
            }
            p->upstream_verified = cJSON_IsTrue(c);
        } else if (strcmp(f, "logged") == 0) {
            if (!cJSON_IsBool(c)) {
                pt_detail_first(detail, "require.logged: not true or false");
                return PATIENT_ERR_PARSE;
            }
            p->require_logged = cJSON_IsTrue(c);
        } else if (strcmp(f, "proof") == 0) {
            const char *s = cJSON_IsString(c) ? c->valuestring : "";
            if (strcmp(s, "attested") == 0) {
                p->proof = PATIENT_PROOF_ATTESTED;
            } else if (strcmp(s, "proven") == 0) {
                p->proof = PATIENT_PROOF_PROVEN;
            } else if (strcmp(s, "confined") == 0) {
                p->proof = PATIENT_PROOF_CONFINED;
            } else if (strcmp(s, "auto") == 0) {
                p->proof = PATIENT_PROOF_AUTO;
            } else {
                pt_detail_first(
                    detail,
                    "require.proof: not \"auto\", \"confined\", \"attested\" or \"proven\"");
                return PATIENT_ERR_PARSE;
            }
        } else if ((err = unknown_field(p, "require", f, detail)) != PATIENT_OK) {
            return err;
        }
    }
    return PATIENT_OK;
}

static patient_err
parse_root(patient_policy *p, const cJSON *root, char **detail)
{
    const cJSON *c;
    patient_err err;
    long long v;
    int have_version = 0, have_type = 0;

    if (!cJSON_IsObject(root)) {
        pt_detail_first(detail, "policy: not a JSON object");
        return PATIENT_ERR_PARSE;
    }
    cJSON_ArrayForEach(c, root) {
        const char *f = c->string;
        if (strcmp(f, "patient") == 0) {
            if (pt_json_int(root, f, &v) != 0) {
                pt_detail_first(detail, "patient: not an integer");
                return PATIENT_ERR_PARSE;
            }
            if (v != 1) {
                pt_detail_first(detail, "patient: format version %lld (this build reads 1)", v);
                return PATIENT_ERR_UNSUPPORTED;
            }
            have_version = 1;
        } else if (strcmp(f, "type") == 0) {
            if (!cJSON_IsString(c) || strcmp(c->valuestring, "policy") != 0) {
                pt_detail_first(detail, "type: not \"policy\"");
                return PATIENT_ERR_PARSE;
            }
            have_type = 1;
        } else if (strcmp(f, "publishers") == 0) {
            if ((err = parse_publishers(p, c, detail)) != PATIENT_OK)
                return err;
        } else if (strcmp(f, "middleboxes") == 0) {
            const cJSON *m;
            size_t i = 0;
            if (!cJSON_IsArray(c)) {
                pt_detail_first(detail, "middleboxes: not an array");
                return PATIENT_ERR_PARSE;
            }
            if ((size_t)cJSON_GetArraySize(c) > PATIENT_POLICY_MAX_MIDDLEBOXES) {
                pt_detail_first(detail, "middleboxes: more than %d entries",
                                PATIENT_POLICY_MAX_MIDDLEBOXES);
                return PATIENT_ERR_TOO_LARGE;
            }
            if ((p->mbs = calloc((size_t)cJSON_GetArraySize(c) + 1, sizeof *p->mbs)) == NULL)
                return PATIENT_ERR_NOMEM;
            cJSON_ArrayForEach(m, c) {
                if ((err = parse_middlebox(p, m, i++, detail)) != PATIENT_OK)
                    return err;
            }
        } else if (strcmp(f, "require") == 0) {
            if ((err = parse_require(p, c, detail)) != PATIENT_OK)
                return err;
        } else if (strcmp(f, "unsigned") == 0) {
            const char *s = cJSON_IsString(c) ? c->valuestring : "";
            if (strcmp(s, "unverifiable") == 0) {
                p->unsig = PATIENT_UNSIGNED_UNVERIFIABLE;
            } else if (strcmp(s, "invalid") == 0) {
                p->unsig = PATIENT_UNSIGNED_INVALID;
            } else {
                pt_detail_first(detail, "unsigned: not \"unverifiable\" or \"invalid\"");
                return PATIENT_ERR_PARSE;
            }
        } else if ((err = unknown_field(p, "", f, detail)) != PATIENT_OK) {
            return err;
        }
    }
    if (!have_version || !have_type) {
        pt_detail_first(detail, "%s: missing", have_version ? "type" : "patient");
        return PATIENT_ERR_PARSE;
    }
    return PATIENT_OK;
}

/* The policy of a parsed document, root borrowed. */
static patient_err
policy_from_root(const cJSON *root, unsigned flags, patient_policy **pp, char **detail)
{
    patient_policy *p = NULL;
    patient_err err;

    if ((err = patient_policy_new(&p)) != PATIENT_OK)
        goto out;
    p->flags = flags;
    if ((err = parse_root(p, root, detail)) != PATIENT_OK)
        goto out;
    *pp = p;
    p = NULL;
out:
    patient_policy_free(p);
    return err;
}

patient_err
patient_policy_parse_ex(const char *json, size_t len, unsigned flags, patient_policy **pp,
                        char **detail)
{
    cJSON *root = NULL;
    patient_err err;

    if (detail)
        *detail = NULL;
    if (pp == NULL || json == NULL) {
        err = PATIENT_ERR_ARG;
        goto out;
    }
    *pp = NULL;
    if (len > PATIENT_POLICY_MAX_BYTES) {
        pt_detail_first(detail, "policy larger than %u bytes", PATIENT_POLICY_MAX_BYTES);
        err = PATIENT_ERR_TOO_LARGE;
        goto out;
    }
    if ((err = pt_json_parse(json, len, &root)) != PATIENT_OK) {
        pt_detail_first(detail, "not valid JSON (or nested deeper than %d, or duplicate names)",
                        PT_JSON_MAX_DEPTH);
        goto out;
    }
    err = policy_from_root(root, flags, pp, detail);
out:
    cJSON_Delete(root);
    return err;
}

patient_err
pt_policy_from_json(const cJSON *root, unsigned flags, patient_policy **pp, char **detail)
{
    if (detail)
        *detail = NULL;
    if (pp == NULL || root == NULL)
        return PATIENT_ERR_ARG;
    *pp = NULL;
    /* The cap of the policy format is on its text: here, the compact text
     * of the object, what a printed copy would have been. */
    if (pt_json_compact_len(root, PATIENT_POLICY_MAX_BYTES) > PATIENT_POLICY_MAX_BYTES) {
        pt_detail_first(detail, "policy larger than %u bytes", PATIENT_POLICY_MAX_BYTES);
        return PATIENT_ERR_TOO_LARGE;
    }
    return policy_from_root(root, flags, pp, detail);
}

patient_err
patient_policy_parse(const char *json, size_t len, patient_policy **p, char **detail)
{
    return patient_policy_parse_ex(json, len, 0, p, detail);
}

patient_err
patient_policy_load_ex(const char *path, unsigned flags, patient_policy **p, char **detail)
{
    uint8_t *data = NULL;
    size_t len = 0;
    patient_err err;

    if (detail)
        *detail = NULL;
    if (p)
        *p = NULL;
    if (path == NULL || p == NULL)
        return PATIENT_ERR_ARG;
    if ((err = pt_read_file(path, PATIENT_POLICY_MAX_BYTES, &data, &len)) != PATIENT_OK) {
        pt_detail_first(detail, "%s: %s", path, patient_strerror(err));
        return err;
    }
    err = patient_policy_parse_ex((const char *)data, len, flags, p, detail);
    free(data);
    return err;
}

patient_err
patient_policy_load(const char *path, patient_policy **p, char **detail)
{
    return patient_policy_load_ex(path, 0, p, detail);
}

patient_err
patient_policy_default_path(char **path)
{
    return pt_xdg_path("XDG_CONFIG_HOME", ".config", "patient/policy.json", path);
}

/* ---- lookups ---------------------------------------------------------------- */

patient_err
patient_policy_publisher_keys(const patient_policy *p, const char *origin,
                              const patient_pubkey **keys, size_t *n)
{
    char *o = NULL;
    patient_err err = PATIENT_ERR_NOT_FOUND;

    if (keys)
        *keys = NULL;
    if (n)
        *n = 0;
    if (p == NULL || origin == NULL || keys == NULL || n == NULL)
        return PATIENT_ERR_ARG;
    if (norm_origin(origin, &o) != PATIENT_OK)
        return PATIENT_ERR_NOT_FOUND;
    for (size_t i = 0; i < p->npubs; i++)
        if (strcmp(p->pubs[i].origin, o) == 0 && p->pubs[i].nkeys > 0) {
            *keys = p->pubs[i].keys;
            *n = p->pubs[i].nkeys;
            err = PATIENT_OK;
            break;
        }
    free(o);
    return err;
}

const patient_policy_middlebox *
patient_policy_middlebox_find(const patient_policy *p, const uint8_t kid[PATIENT_KEYID_BYTES])
{
    if (p == NULL || kid == NULL)
        return NULL;
    for (size_t i = 0; i < p->nmbs; i++)
        if (memcmp(p->mbs[i].key.id, kid, PATIENT_KEYID_BYTES) == 0)
            return &p->mbs[i];
    return NULL;
}

size_t
patient_policy_middlebox_count(const patient_policy *p)
{
    return p ? p->nmbs : 0;
}

const patient_policy_middlebox *
patient_policy_middlebox_at(const patient_policy *p, size_t i)
{
    return p && i < p->nmbs ? &p->mbs[i] : NULL;
}

const char *
patient_policy_middlebox_name(const patient_policy_middlebox *m)
{
    return m ? m->name : NULL;
}

const patient_pubkey *
patient_policy_middlebox_key(const patient_policy_middlebox *m)
{
    return m ? &m->key : NULL;
}

long long
patient_policy_middlebox_max_edits(const patient_policy_middlebox *m)
{
    return m ? m->max_edits : 0;
}

int
patient_policy_middlebox_insert_allowed(const patient_policy_middlebox *m)
{
    return m ? m->insert : 0;
}

static int
any_match(const strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (fnmatch(l->v[i], s, 0) == 0)
            return 1;
    return 0;
}

patient_err
patient_policy_check_edit(const patient_policy_middlebox *m, const char *origin, const char *path,
                          const char *reason, int is_insert, patient_policy_deny *why)
{
    patient_policy_deny d = PATIENT_POLICY_DENY_NONE;

    if (why)
        *why = PATIENT_POLICY_DENY_NONE;
    if (m == NULL || origin == NULL || path == NULL || reason == NULL)
        return PATIENT_ERR_ARG;
    if (!any_match(&m->origins, origin))
        d = PATIENT_POLICY_DENY_ORIGIN;
    else if (!any_match(&m->paths, path))
        d = PATIENT_POLICY_DENY_PATH;
    else if (!any_match(&m->reasons, reason))
        d = PATIENT_POLICY_DENY_REASON;
    else if (is_insert && !m->insert)
        d = PATIENT_POLICY_DENY_INSERT;
    if (why)
        *why = d;
    return d == PATIENT_POLICY_DENY_NONE ? PATIENT_OK : PATIENT_ERR_POLICY;
}

int
patient_policy_require_disclosure(const patient_policy *p)
{
    return p ? p->require_disclosure : 0;
}

long long
patient_policy_max_retention_days(const patient_policy *p)
{
    return p ? p->max_retention : -1;
}

const char *
patient_policy_min_upstream_tls(const patient_policy *p)
{
    return p ? p->min_tls : NULL;
}

int
patient_policy_upstream_verified(const patient_policy *p)
{
    return p ? p->upstream_verified : 1;
}

int
patient_policy_require_logged(const patient_policy *p)
{
    return p ? p->require_logged : 0;
}

int
patient_policy_middlebox_may_decrypt(const patient_policy_middlebox *m)
{
    return m ? m->may_decrypt : 0;
}

size_t
patient_policy_middlebox_interception_ca_count(const patient_policy_middlebox *m)
{
    return m ? m->nica : 0;
}

const uint8_t *
patient_policy_middlebox_interception_ca(const patient_policy_middlebox *m, size_t i)
{
    return m && i < m->nica ? m->ica[i] : NULL;
}

patient_err
patient_policy_add_interception_ca(patient_policy *p, const uint8_t kid[PATIENT_KEYID_BYTES],
                                   const uint8_t pin[32])
{
    uint8_t(*n)[32];

    if (p == NULL || kid == NULL || pin == NULL)
        return PATIENT_ERR_ARG;
    for (size_t i = 0; i < p->nmbs; i++) {
        patient_policy_middlebox *m = &p->mbs[i];
        if (memcmp(m->key.id, kid, PATIENT_KEYID_BYTES) != 0)
            continue;
        for (size_t j = 0; j < m->nica; j++)
            if (memcmp(m->ica[j], pin, 32) == 0)
                return PATIENT_ERR_EXISTS;
        if (m->nica >= PATIENT_MAX_TLS_PINS)
            return PATIENT_ERR_LIMIT;
        if ((n = realloc(m->ica, (m->nica + 1) * sizeof *n)) == NULL)
            return PATIENT_ERR_NOMEM;
        memcpy(n[m->nica], pin, 32);
        m->ica = n;
        m->nica++;
        return PATIENT_OK;
    }
    return PATIENT_ERR_NOT_FOUND;
}

patient_err
patient_policy_set_may_decrypt(patient_policy *p, const uint8_t kid[PATIENT_KEYID_BYTES], int may)
{
    if (p == NULL || kid == NULL)
        return PATIENT_ERR_ARG;
    for (size_t i = 0; i < p->nmbs; i++)
        if (memcmp(p->mbs[i].key.id, kid, PATIENT_KEYID_BYTES) == 0) {
            p->mbs[i].may_decrypt = may != 0;
            return PATIENT_OK;
        }
    return PATIENT_ERR_NOT_FOUND;
}

const char *
patient_proof_name(patient_proof p)
{
    switch (p) {
    case PATIENT_PROOF_ATTESTED: return "attested";
    case PATIENT_PROOF_PROVEN: return "proven";
    case PATIENT_PROOF_CONFINED: return "confined";
    case PATIENT_PROOF_AUTO: return "auto";
    }
    return "auto";
}

patient_proof
patient_policy_require_proof(const patient_policy *p)
{
    return p ? p->proof : PATIENT_PROOF_PROVEN;
}

patient_unsigned_action
patient_policy_unsigned(const patient_policy *p)
{
    return p ? p->unsig : PATIENT_UNSIGNED_UNVERIFIABLE;
}

/* ---- building ------------------------------------------------------------------ */

patient_err
patient_policy_add_publisher(patient_policy *p, const char *origin, const patient_pubkey *pk)
{
    char *o = NULL;
    publisher *pub = NULL, *np;
    patient_pubkey *nk;
    patient_err err = PATIENT_OK;

    if (p == NULL || origin == NULL || pk == NULL)
        return PATIENT_ERR_ARG;
    if ((err = norm_origin(origin, &o)) != PATIENT_OK)
        return err;
    for (size_t i = 0; i < p->npubs; i++)
        if (strcmp(p->pubs[i].origin, o) == 0)
            pub = &p->pubs[i];
    if (pub == NULL) {
        if (p->npubs >= PATIENT_POLICY_MAX_ORIGINS) {
            err = PATIENT_ERR_LIMIT;
            goto out;
        }
        if ((np = realloc(p->pubs, (p->npubs + 1) * sizeof *np)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        p->pubs = np;
        pub = &p->pubs[p->npubs++];
        memset(pub, 0, sizeof *pub);
        pub->origin = o;
        o = NULL;
    }
    for (size_t i = 0; i < pub->nkeys; i++)
        if (memcmp(&pub->keys[i], pk, sizeof *pk) == 0) {
            err = PATIENT_ERR_EXISTS;
            goto out;
        }
    if (pub->nkeys >= PATIENT_POLICY_MAX_KEYS) {
        err = PATIENT_ERR_LIMIT;
        goto out;
    }
    if ((nk = realloc(pub->keys, (pub->nkeys + 1) * sizeof *nk)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    pub->keys = nk;
    pub->keys[pub->nkeys++] = *pk;
out:
    free(o);
    return err;
}

static patient_err
globs_from(strlist *out, const char *const *in, const char *dflt)
{
    patient_err err;
    size_t n = 0;

    if (in == NULL)
        return dflt ? strlist_add(out, dflt) : PATIENT_OK;
    for (; *in; in++) {
        if (++n > PATIENT_POLICY_MAX_GLOBS)
            return PATIENT_ERR_LIMIT;
        if (**in && !clean_text(*in, PATIENT_POLICY_MAX_GLOB_LEN))
            return PATIENT_ERR_ARG;
        if ((err = strlist_add(out, *in)) != PATIENT_OK)
            return err;
    }
    return PATIENT_OK;
}

patient_err
patient_policy_add_middlebox(patient_policy *p, const char *name, const patient_pubkey *pk,
                             const char *const *reasons, const char *const *paths,
                             const char *const *origins, long long max_edits, int insert)
{
    patient_policy_middlebox m = {0}, *nm;
    patient_err err;

    if (p == NULL || name == NULL || pk == NULL || !clean_text(name, PATIENT_POLICY_MAX_NAME_LEN) ||
        max_edits < -1 || max_edits > PATIENT_POLICY_MAX_EDITS_CAP)
        return PATIENT_ERR_ARG;
    if (patient_policy_middlebox_find(p, pk->id) != NULL)
        return PATIENT_ERR_EXISTS;
    if (p->nmbs >= PATIENT_POLICY_MAX_MIDDLEBOXES)
        return PATIENT_ERR_LIMIT;
    m.key = *pk;
    m.max_edits = max_edits;
    m.insert = insert ? 1 : 0;
    if ((m.name = strdup(name)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto fail;
    }
    if ((err = globs_from(&m.reasons, reasons, NULL)) || (err = globs_from(&m.paths, paths, "/*")) ||
        (err = globs_from(&m.origins, origins, "*")))
        goto fail;
    if ((nm = realloc(p->mbs, (p->nmbs + 1) * sizeof *nm)) == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto fail;
    }
    p->mbs = nm;
    p->mbs[p->nmbs++] = m;
    return PATIENT_OK;
fail:
    mb_clear(&m);
    return err;
}

/* ---- serialising ---------------------------------------------------------------- */

/* The members below are added one by one; any that cannot be (out of
 * memory) makes the whole tree fail, never a tree with a member missing. */
static int
add_str(cJSON *o, const char *name, const char *s)
{
    return pt_json_put(o, name, s ? cJSON_CreateString(s) : cJSON_CreateNull());
}

static int
add_strlist(cJSON *o, const char *name, const strlist *l)
{
    return pt_json_put(o, name, pt_json_strings((const char *const *)l->v, l->n));
}

/* -1 (none) is written null. */
static int
add_count(cJSON *o, const char *name, long long v)
{
    return pt_json_put(o, name, v < 0 ? cJSON_CreateNull() : cJSON_CreateNumber((double)v));
}

static int
add_key(cJSON *a, const patient_pubkey *k)
{
    char key[PATIENT_PUBKEY_B64];

    patient_pubkey_encode(k, key);
    return pt_json_push(a, cJSON_CreateString(key));
}

static int
add_middlebox(cJSON *a, const patient_policy_middlebox *m)
{
    cJSON *o = cJSON_CreateObject();
    char key[PATIENT_PUBKEY_B64];

    if (!pt_json_push(a, o))
        return 0;
    patient_pubkey_encode(&m->key, key);
    if (!add_str(o, "name", m->name) || !add_str(o, "key", key) ||
        !add_strlist(o, "reasons", &m->reasons) || !add_strlist(o, "paths", &m->paths) ||
        !add_strlist(o, "origins", &m->origins) || !add_count(o, "max_edits", m->max_edits) ||
        !cJSON_AddBoolToObject(o, "insert", m->insert))
        return 0;
    /* Written only when set: older readers refuse fields they do not know. */
    if (m->may_decrypt && !cJSON_AddTrueToObject(o, "may_decrypt"))
        return 0;
    return m->nica == 0 ||
           pt_json_put(o, "interception_ca", pt_pins_json((const uint8_t(*)[32])m->ica, m->nica));
}

static int
policy_members(cJSON *root, const patient_policy *p)
{
    cJSON *o, *a;

    if (!cJSON_AddNumberToObject(root, "patient", 1) || !add_str(root, "type", "policy") ||
        (o = cJSON_AddObjectToObject(root, "publishers")) == NULL)
        return 0;
    for (size_t i = 0; i < p->npubs; i++) {
        if ((a = cJSON_AddArrayToObject(o, p->pubs[i].origin)) == NULL)
            return 0;
        for (size_t j = 0; j < p->pubs[i].nkeys; j++)
            if (!add_key(a, &p->pubs[i].keys[j]))
                return 0;
    }
    if ((a = cJSON_AddArrayToObject(root, "middleboxes")) == NULL)
        return 0;
    for (size_t i = 0; i < p->nmbs; i++)
        if (!add_middlebox(a, &p->mbs[i]))
            return 0;
    if ((o = cJSON_AddObjectToObject(root, "require")) == NULL ||
        !cJSON_AddBoolToObject(o, "disclosure", p->require_disclosure) ||
        !add_count(o, "max_retention_days", p->max_retention) ||
        !add_str(o, "min_upstream_tls", p->min_tls) ||
        !cJSON_AddBoolToObject(o, "upstream_verified", p->upstream_verified) ||
        /* Written only when set, as may_decrypt. */
        (p->require_logged && !cJSON_AddTrueToObject(o, "logged")) ||
        !add_str(o, "proof", patient_proof_name(p->proof)))
        return 0;
    return add_str(root, "unsigned",
                   p->unsig == PATIENT_UNSIGNED_INVALID ? "invalid" : "unverifiable");
}

cJSON *
pt_policy_json(const patient_policy *p)
{
    cJSON *root = p ? cJSON_CreateObject() : NULL;

    if (root && !policy_members(root, p)) {
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

/* A policy file's layout: 2-space indent, an object's members one a line,
 * an array of strings on one line ("[\"a\", \"b\"]"), of objects one a
 * line; empty ones {} and []. Every number in a policy is an integer. */
static patient_err
put_layout(pt_buf *b, const cJSON *v, int depth)
{
    const cJSON *c;
    int obj = cJSON_IsObject(v), lines;
    patient_err err = PATIENT_OK;

    if (cJSON_IsString(v))
        return pt_buf_put_json_str(b, v->valuestring);
    if (cJSON_IsNumber(v))
        return pt_buf_appendf(b, "%lld", (long long)v->valuedouble);
    if (cJSON_IsBool(v))
        return pt_buf_appendf(b, "%s", cJSON_IsTrue(v) ? "true" : "false");
    if (!obj && !cJSON_IsArray(v))
        return pt_buf_appendf(b, "null");
    lines = obj || (v->child && (cJSON_IsObject(v->child) || cJSON_IsArray(v->child)));
    if ((err = pt_buf_append(b, obj ? "{" : "[", 1)))
        return err;
    for (c = v->child; c && err == PATIENT_OK; c = c->next) {
        if (lines)
            err = pt_buf_appendf(b, "%s\n%*s", c == v->child ? "" : ",", 2 * (depth + 1), "");
        else if (c != v->child)
            err = pt_buf_append(b, ", ", 2);
        if (err == PATIENT_OK && obj && (err = pt_buf_put_json_str(b, c->string)) == PATIENT_OK)
            err = pt_buf_append(b, ": ", 2);
        if (err == PATIENT_OK)
            err = put_layout(b, c, depth + 1);
    }
    if (err == PATIENT_OK && lines && v->child)
        err = pt_buf_appendf(b, "\n%*s", 2 * depth, "");
    return err ? err : pt_buf_append(b, obj ? "}" : "]", 1);
}

patient_err
patient_policy_serialize(const patient_policy *p, char **out, size_t *len)
{
    pt_buf b = {0};
    cJSON *root;
    patient_err err;

    if (out)
        *out = NULL;
    if (p == NULL || out == NULL)
        return PATIENT_ERR_ARG;
    if ((root = pt_policy_json(p)) == NULL)
        return PATIENT_ERR_NOMEM;
    if ((err = put_layout(&b, root, 0)) == PATIENT_OK &&
        (err = pt_buf_append(&b, "\n", 1)) == PATIENT_OK) {
        *out = (char *)b.data;
        if (len)
            *len = b.len;
        b.data = NULL;
    }
    cJSON_Delete(root);
    pt_buf_free(&b);
    return err;
}

patient_err
patient_policy_save(const patient_policy *p, const char *path, int force)
{
    char *json = NULL;
    size_t len = 0;
    patient_err err;

    if (p == NULL || path == NULL)
        return PATIENT_ERR_ARG;
    if (p->flags & PATIENT_POLICY_KEEP_UNKNOWN)
        return PATIENT_ERR_STATE;
    if ((err = patient_policy_serialize(p, &json, &len)) != PATIENT_OK)
        return err;
    err = pt_write_atomic(path, json, len, 0644, force ? 0 : PT_WRITE_EXCL);
    free(json);
    return err;
}

/* ---- lint ---------------------------------------------------------------------- */

/* A glob made only of '*' matches every string. */
static int
matches_all(const char *g)
{
    if (*g == 0)
        return 0;
    for (; *g; g++)
        if (*g != '*')
            return 0;
    return 1;
}

size_t
patient_policy_lint(const patient_policy *p, patient_policy_lint_cb cb, void *ctx)
{
    size_t count = 0;
    char where[128];

#define FIND(sev, code, w, ...)                                                                    \
    do {                                                                                           \
        char msg_[512];                                                                            \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                                  \
        if (cb)                                                                                    \
            cb(ctx, sev, code, w, msg_);                                                           \
        if (sev != PATIENT_LINT_NOTE)                                                              \
            count++;                                                                               \
    } while (0)

    if (p == NULL)
        return 0;
    for (size_t i = 0; i < p->unknown.n; i++)
        FIND(PATIENT_LINT_ERROR, "field.unknown", p->unknown.v[i],
             "unknown field (a typo?): the policy will not load until it is removed");
    if (p->npubs == 0)
        FIND(PATIENT_LINT_NOTE, "publishers.none", "publishers",
             "no publisher is trusted: every page will be reported per \"unsigned\"");
    for (size_t i = 0; i < p->npubs; i++)
        if (p->pubs[i].nkeys == 0) {
            snprintf(where, sizeof where, "publishers[\"%.100s\"]", p->pubs[i].origin);
            FIND(PATIENT_LINT_ERROR, "publisher.keys.empty", where,
                 "origin listed with no keys: nothing from it can ever verify");
        }
    for (size_t i = 0; i < p->nmbs; i++) {
        const patient_policy_middlebox *m = &p->mbs[i];
        int any_reason = 0;

        snprintf(where, sizeof where, "middleboxes[%zu].reasons", i);
        if (m->reasons.n == 0)
            FIND(PATIENT_LINT_ERROR, "middlebox.reasons.empty", where,
                 "no reason is allowed: middlebox \"%.100s\" may change nothing", m->name);
        for (size_t j = 0; j < m->reasons.n; j++) {
            if (m->reasons.v[j][0] == 0) {
                snprintf(where, sizeof where, "middleboxes[%zu].reasons[%zu]", i, j);
                FIND(PATIENT_LINT_ERROR, "middlebox.reasons.never", where,
                     "empty pattern: matches no reason code");
            } else if (matches_all(m->reasons.v[j])) {
                any_reason = 1;
            }
        }
        if (any_reason) {
            snprintf(where, sizeof where, "middleboxes[%zu].reasons", i);
            FIND(PATIENT_LINT_WARNING, "middlebox.reasons.any", where,
                 "\"%.100s\" may change content for any reason: list the reason codes instead",
                 m->name);
        }
        snprintf(where, sizeof where, "middleboxes[%zu].paths", i);
        if (m->paths.n == 0)
            FIND(PATIENT_LINT_ERROR, "middlebox.paths.empty", where,
                 "no path is allowed: middlebox \"%.100s\" may change nothing", m->name);
        for (size_t j = 0; j < m->paths.n; j++)
            if (m->paths.v[j][0] != '/' && m->paths.v[j][0] != '*' && m->paths.v[j][0] != '?' &&
                m->paths.v[j][0] != '[') {
                snprintf(where, sizeof where, "middleboxes[%zu].paths[%zu]", i, j);
                FIND(PATIENT_LINT_ERROR, "middlebox.paths.never", where,
                     "URL paths start with \"/\": this pattern never matches");
            }
        snprintf(where, sizeof where, "middleboxes[%zu].origins", i);
        if (m->origins.n == 0)
            FIND(PATIENT_LINT_ERROR, "middlebox.origins.empty", where,
                 "no origin is allowed: middlebox \"%.100s\" may change nothing", m->name);
        for (size_t j = 0; j < m->origins.n; j++)
            if (m->origins.v[j][0] != 'h' && m->origins.v[j][0] != '*' &&
                m->origins.v[j][0] != '?' && m->origins.v[j][0] != '[') {
                snprintf(where, sizeof where, "middleboxes[%zu].origins[%zu]", i, j);
                FIND(PATIENT_LINT_ERROR, "middlebox.origins.never", where,
                     "origins look like \"https://host\": this pattern never matches");
            }
        snprintf(where, sizeof where, "middleboxes[%zu].max_edits", i);
        if (m->max_edits == 0)
            FIND(PATIENT_LINT_ERROR, "middlebox.max_edits.zero", where,
                 "max_edits 0: middlebox \"%.100s\" may change nothing", m->name);
        else if (m->max_edits < 0 && m->insert)
            FIND(PATIENT_LINT_WARNING, "middlebox.insert.unlimited", where,
                 "\"%.100s\" may insert content with no limit on the number of edits", m->name);
        else if (m->max_edits < 0)
            FIND(PATIENT_LINT_NOTE, "middlebox.max_edits.unlimited", where,
                 "no limit on the number of edits by \"%.100s\"", m->name);
    }
    if (p->proof == PATIENT_PROOF_ATTESTED)
        FIND(PATIENT_LINT_WARNING, "require.proof.attested", "require.proof",
             "changes whose removed bytes were withheld are accepted on the middlebox's signed "
             "word, even where the origin commits chunk roots; use \"auto\" or \"confined\"");
    if (p->proof == PATIENT_PROOF_AUTO)
        FIND(PATIENT_LINT_NOTE, "require.proof.auto", "require.proof",
             "withheld deletions must be confined where the origin commits chunk roots, and are "
             "accepted on the middlebox's signed word where it does not (older manifests)");
    if (p->min_tls == NULL || patient_tls_version_rank(p->min_tls) < patient_tls_version_rank("TLSv1.2"))
        FIND(PATIENT_LINT_WARNING, "require.upstream_tls.weak", "require.min_upstream_tls",
             "middleboxes may fetch from origins with %s", p->min_tls ? p->min_tls : "any TLS or none");
    if (p->max_retention < 0 && p->require_disclosure)
        FIND(PATIENT_LINT_NOTE, "require.retention.unlimited", "require.max_retention_days",
             "disclosures are required but any retention period is accepted");
#undef FIND
    return count;
}
