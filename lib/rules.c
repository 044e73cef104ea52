/* Rule engine for the reference middleboxes: load a JSON rule file, find
 * matches in a body, resolve overlaps, report edits in offset order. */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <patient/rules.h>
#include "util.h"

/* Bounded repetitions ({m,n}) multiply a pattern's compiled size; nested
 * ones explode (glibc copies the subexpression). Refuse patterns whose
 * estimated expansion exceeds this many atoms. */
#define PT_RE_MAX_WEIGHT 20000u
#define PT_MEDIA_MAX 127u

/* The matcher's own bounds, per anchored attempt: nested invocations
 * (lookaround assertions, recursion) and their depth, and the DFA
 * workspace (ints, on the stack; a pattern needing more fails the same
 * way as one that hits a limit). */
#define PT_DFA_CALLS 1000u
#define PT_DFA_DEPTH 100u
#define PT_DFA_WS 2048
/* The first window an attempt gets; it doubles while the automaton is
 * still alive at the window's end, up to the rule set's match window. */
#define PT_WIN0 16u
/* Backtracking steps an attempt gets first, and at most (doubling). */
#define PT_BT0 32u
#define PT_BT_MAX 100000u

struct pt_rule {
    char *id, *reason, *note;
    patient_rule_action action;
    int is_regex, icase, disclose;
    uint8_t *literal;
    size_t literal_len;
    pcre2_code *re;
    uint8_t first[256]; /* bytes a match can start with */
    int first_one;      /* exactly one such byte: first_byte (memchr) */
    uint8_t first_byte;
    int start_only;     /* anchored at the start of the body ("^...") */
    uint8_t prefix[32]; /* literal bytes every match starts with (icase: lower) */
    size_t prefix_len;
    uint8_t *text;
    size_t text_len;
    char **types; /* canonical lower-case patterns (see media_pattern) */
    size_t ntypes;
    size_t max_matches;
};

struct patient_rules {
    struct pt_rule *r;
    size_t n;
    size_t window;        /* longest regex match, bytes ("limits.match_window") */
    size_t work_per_byte; /* matcher work allowed per body byte ("limits.work_per_byte") */
    pcre2_match_context *mctx; /* limits above; read-only after parse */
    uint8_t sha256[PATIENT_SHA256_BYTES]; /* of the bytes parsed */
};

typedef struct {
    size_t start, end;
    uint32_t rule;
} pt_cand;

static void
rule_clear(struct pt_rule *r)
{
    size_t i;

    free(r->id);
    free(r->reason);
    free(r->note);
    free(r->literal);
    free(r->text);
    pcre2_code_free(r->re);
    for (i = 0; i < r->ntypes; i++)
        free(r->types[i]);
    free(r->types);
}

void
patient_rules_free(patient_rules *rules)
{
    size_t i;

    if (rules == NULL)
        return;
    for (i = 0; i < rules->n; i++)
        rule_clear(&rules->r[i]);
    free(rules->r);
    pcre2_match_context_free(rules->mctx);
    free(rules);
}

size_t
patient_rules_count(const patient_rules *rules)
{
    return rules ? rules->n : 0;
}

/* cJSON turns a \u0000 escape into a NUL that silently truncates the
 * string. pt_json_parse refuses it already; kept as a backstop. */
static int
has_nul_escape(const char *s, size_t len)
{
    size_t i;
    int instr = 0;

    for (i = 0; i < len; i++) {
        if (!instr) {
            if (s[i] == '"')
                instr = 1;
            continue;
        }
        if (s[i] == '"') {
            instr = 0;
        } else if (s[i] == '\\' && i + 1 < len) {
            if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0)
                return 1;
            i++;
        }
    }
    return 0;
}

static int
valid_id(const char *s, int lower_only)
{
    const char *p;

    if (*s == '\0')
        return 0;
    for (p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
            continue;
        if (!lower_only && c >= 'A' && c <= 'Z')
            continue;
        return 0;
    }
    return 1;
}

static int
media_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$&^_.+-", c) != NULL;
}

/* Lower-case and check a "types" entry: "type/subtype", "type/ *", "* / *"
 * or "*" (spaces only to keep this comment closed). Returns a malloc'd canonical copy or NULL (sets *bad). */
static char *
media_pattern(const char *in, int *bad)
{
    size_t n = strlen(in), i, slash = 0, nslash = 0;
    char *s;

    *bad = 1;
    if (n == 0 || n > PT_MEDIA_MAX)
        return NULL;
    if (strcmp(in, "*") == 0)
        in = "*/*", n = 3;
    if ((s = malloc(n + 1)) == NULL) {
        *bad = 0;
        return NULL;
    }
    for (i = 0; i <= n; i++)
        s[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
    for (i = 0; i < n; i++) {
        if (s[i] == '/') {
            slash = i;
            nslash++;
        } else if (s[i] != '*' && !media_tchar((unsigned char)s[i])) {
            goto bad;
        }
    }
    if (nslash != 1 || slash == 0 || slash == n - 1)
        goto bad;
    /* '*' only as a whole part; "*" + "/x" is meaningless. */
    if (memchr(s, '*', slash) && !(slash == 1 && strcmp(s, "*/*") == 0))
        goto bad;
    if (memchr(s + slash + 1, '*', n - slash - 1) && strcmp(s + slash + 1, "*") != 0)
        goto bad;
    *bad = 0;
    return s;
bad:
    free(s);
    return NULL;
}

/* Reject back-references (they make matching exponential) and estimate
 * how far bounded repetitions expand the pattern. 0 if acceptable. */
static int
regex_guard(const char *p, const char **why)
{
    /* weight[d]: atoms so far at nesting depth d; last[d]: weight of the
     * last atom or group at that depth (what a following {m,n} repeats). */
    unsigned long long weight[64], last[64];
    size_t d = 0, i, n = strlen(p);
    int quant = 0; /* the previous token was a repetition operator */

    weight[0] = last[0] = 0;
    for (i = 0; i < n; i++) {
        char c = p[i];
        int was_quant = quant;
        quant = 0;
        if ((c == '*' || c == '+' || c == '?' || c == '{') && was_quant) {
            /* POSIX leaves "a++" or "a*{2}" undefined; glibc accepts them
             * and copies the operand once per stacked "+" or "{m,n}", so a
             * run of them compiles to an exponentially large automaton
             * (found by fuzz_rules: 100 "+" in a row took gigabytes). */
            *why = "a repetition of a repetition (like \"a++\" or \"a*{2}\") is not allowed";
            return -1;
        }
        if (c == '*' || c == '?') {
            quant = 1;
            continue;
        }
        if (c == '+') {
            /* glibc compiles "x+" as "xx*": the operand is copied once. */
            weight[d] += last[d];
            last[d] *= 2;
            quant = 1;
        } else if (c == '\\') {
            if (i + 1 < n && p[i + 1] >= '1' && p[i + 1] <= '9') {
                *why = "back-references are not allowed";
                return -1;
            }
            i++;
            last[d] = 1;
            weight[d] += 1;
        } else if (c == '[') {
            /* Skip a bracket expression: "]" first is literal; [: :], [. .], [= =]. */
            i++;
            if (i < n && p[i] == '^')
                i++;
            if (i < n && p[i] == ']')
                i++;
            while (i < n && p[i] != ']') {
                if (p[i] == '[' && i + 1 < n && strchr(":.=", p[i + 1])) {
                    char term = p[i + 1];
                    i += 2;
                    while (i + 1 < n && !(p[i] == term && p[i + 1] == ']'))
                        i++;
                    i += 2;
                    continue;
                }
                i++;
            }
            last[d] = 1;
            weight[d] += 1;
        } else if (c == '(' && i + 1 < n && p[i + 1] == '*') {
            /* PCRE2 verbs and start-of-pattern options ("(*PRUNE)",
             * "(*LIMIT_MATCH=...)") are not ERE and the DFA matcher does
             * not run the verbs. */
            *why = "\"(*\" (PCRE2 verbs and options) is not allowed";
            return -1;
        } else if (c == '(') {
            if (d + 1 >= sizeof weight / sizeof weight[0]) {
                *why = "groups nested too deeply";
                return -1;
            }
            d++;
            weight[d] = last[d] = 0;
        } else if (c == ')' && d > 0) {
            unsigned long long w = weight[d] ? weight[d] : 1;
            d--;
            last[d] = w;
            weight[d] += w;
        } else if (c == '{') {
            unsigned long long m = 0, mx = 0;
            size_t j = i + 1;
            int comma = 0;
            while (j < n && p[j] >= '0' && p[j] <= '9' && m < 100000)
                m = m * 10 + (unsigned)(p[j++] - '0');
            mx = m;
            if (j < n && p[j] == ',') {
                comma = 1;
                j++;
                mx = 0;
                while (j < n && p[j] >= '0' && p[j] <= '9' && mx < 100000)
                    mx = mx * 10 + (unsigned)(p[j++] - '0');
            }
            if (comma && mx < m)
                mx = m + 1; /* "{m,}" repeats m copies plus a star */
            if (mx == 0)
                mx = 1;
            /* The repeated item is expanded mx times in total. */
            weight[d] += last[d] * (mx - 1);
            last[d] *= mx;
            i = (j < n && p[j] == '}') ? j : j - 1;
            quant = 1;
        } else {
            last[d] = 1;
            weight[d] += 1;
        }
        if (weight[d] > PT_RE_MAX_WEIGHT || last[d] > PT_RE_MAX_WEIGHT) {
            *why = "bounded repetitions expand the pattern too far";
            return -1;
        }
    }
    return 0;
}

/* The plain bytes a pattern starts with ("<script" in "<script[^>]..."),
 * so candidates are checked with a memcmp before the matcher runs. Not
 * for patterns with a top-level alternative; a byte followed by a
 * repetition is not part of it. */
static void
literal_prefix(struct pt_rule *r, const char *rx)
{
    size_t i, n = 0, depth = 0;
    int inbr = 0;

    for (i = 0; rx[i]; i++) {
        char c = rx[i];
        if (inbr) {
            if (c == ']' && inbr > 1)
                inbr = 0;
            else
                inbr++;
            continue;
        }
        if (c == '\\') {
            if (rx[i + 1] == '\0')
                break;
            i++;
        } else if (c == '[') {
            inbr = 1;
            if (rx[i + 1] == '^')
                i++;
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && depth > 0) {
            depth--;
        } else if (c == '|' && depth == 0) {
            return;
        }
    }
    for (i = 0; rx[i] && n < sizeof r->prefix; i++) {
        unsigned char c = (unsigned char)rx[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != 0 && strchr("<>/!=\"'_:;,-# &%@~`", c) != NULL)))
            break;
        r->prefix[n++] = (uint8_t)((r->icase && c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    if (n > 0 && (rx[i] == '*' || rx[i] == '?' || rx[i] == '{' || rx[i] == '+'))
        n--;
    r->prefix_len = n;
}

/* Compile an ERE-style pattern with PCRE2 so that it means what POSIX ERE
 * means for the constructs rule files use: "." matches newlines, "$"
 * only at the very end, bytes not characters (ASCII case folding, ASCII
 * classes). Then record which bytes a match can start with, so the scan
 * only tries plausible starts. *why gets a static or PCRE2 message. */
static patient_err
regex_compile(struct pt_rule *r, const char *rx, const char **why)
{
    static __thread char msg[160];
    uint32_t opts = PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP |
                    PCRE2_NEVER_BACKSLASH_C | PCRE2_NO_AUTO_CAPTURE;
    uint32_t type = 0, unit = 0, all = 0, backref = 0;
    const uint8_t *bitmap = NULL;
    PCRE2_SIZE eoff;
    int ec, c, nfirst = 0;

    if (r->icase)
        opts |= PCRE2_CASELESS;
    r->re = pcre2_compile((PCRE2_SPTR)rx, PCRE2_ZERO_TERMINATED, opts, &ec, &eoff, NULL);
    if (r->re == NULL) {
        if (ec == PCRE2_ERROR_HEAPLIMIT || ec == PCRE2_ERROR_NOMEMORY) {
            *why = "out of memory";
            return PATIENT_ERR_NOMEM;
        }
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        *why = msg;
        return PATIENT_ERR_REGEX;
    }
    /* Named or relative back-references slip past regex_guard's "\1";
     * the DFA matcher cannot run any of them. */
    if (pcre2_pattern_info(r->re, PCRE2_INFO_BACKREFMAX, &backref) != 0 || backref > 0) {
        *why = "back-references are not allowed";
        return PATIENT_ERR_REGEX;
    }
    /* Where PCRE2 has a JIT for this machine; without, pcre2_match
     * interprets the same code under the same limits. */
    (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
    (void)pcre2_pattern_info(r->re, PCRE2_INFO_ALLOPTIONS, &all);
    r->start_only = (all & PCRE2_ANCHORED) != 0;
    (void)pcre2_pattern_info(r->re, PCRE2_INFO_FIRSTCODETYPE, &type);
    if (type == 1 && pcre2_pattern_info(r->re, PCRE2_INFO_FIRSTCODEUNIT, &unit) == 0) {
        r->first[unit & 0xff] = 1;
        if (r->icase && unit < 128 && ((unit | 0x20) >= 'a' && (unit | 0x20) <= 'z'))
            r->first[(unit ^ 0x20) & 0xff] = 1;
    } else if (type == 0 && pcre2_pattern_info(r->re, PCRE2_INFO_FIRSTBITMAP, &bitmap) == 0 &&
               bitmap != NULL) {
        for (c = 0; c < 256; c++)
            r->first[c] = (bitmap[c / 8] >> (c % 8)) & 1;
    } else {
        memset(r->first, 1, sizeof r->first); /* any byte, or "start of line" */
    }
    for (c = 0; c < 256; c++)
        if (r->first[c]) {
            nfirst++;
            r->first_byte = (uint8_t)c;
        }
    r->first_one = nfirst == 1;
    literal_prefix(r, rx);
    return PATIENT_OK;
}

static const char *const rule_keys[] = {"id",   "match",    "action",   "text",       "reason",
                                        "note", "types",    "disclose", "max_matches", NULL};
static const char *const match_keys[] = {"literal", "regex", "icase", NULL};
static const char *const top_keys[] = {"patient", "type", "rules", "limits", NULL};
static const char *const limit_keys[] = {"match_window", "work_per_byte", NULL};

/* Every member of o is a known key (PATIENT_ERR_PARSE), and none appears
 * twice (PATIENT_ERR_JSON). */
static patient_err
check_keys(const cJSON *o, const char *const *keys, const char **bad)
{
    const cJSON *c, *e;
    size_t k;

    for (c = o->child; c != NULL; c = c->next) {
        for (k = 0; keys[k] != NULL; k++)
            if (strcmp(c->string, keys[k]) == 0)
                break;
        if (keys[k] == NULL) {
            *bad = c->string;
            return PATIENT_ERR_PARSE;
        }
        /* pt_json_parse already refuses duplicate keys; kept as a backstop. */
        for (e = o->child; e != c; e = e->next)
            if (strcmp(e->string, c->string) == 0) {
                *bad = c->string;
                return PATIENT_ERR_JSON;
            }
    }
    return PATIENT_OK;
}

/* A string member with a byte cap: 0 ok, 1 absent, -1 wrong type, -2 too long. */
static int
get_str(const cJSON *o, const char *key, size_t cap, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    *out = NULL;
    if (v == NULL)
        return 1;
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return -1;
    if (strlen(v->valuestring) > cap)
        return -2;
    *out = v->valuestring;
    return 0;
}

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        err = (code);                                                                              \
        pt_detail_set(detail, __VA_ARGS__);                                                        \
        goto out;                                                                                  \
    } while (0)

/* Optional "limits": {"match_window": bytes, "work_per_byte": n}. */
static patient_err
parse_limits(patient_rules *rs, const cJSON *o, char **detail)
{
    const char *bad = NULL;
    patient_err err = PATIENT_OK;
    long long ll;

    if (o != NULL) {
        if (!cJSON_IsObject(o))
            FAIL(PATIENT_ERR_PARSE, "\"limits\" is not an object");
        if ((err = check_keys(o, limit_keys, &bad)) != PATIENT_OK)
            FAIL(err, "limits: unknown or duplicate field \"%s\"", bad);
        if (cJSON_GetObjectItemCaseSensitive(o, "match_window") != NULL) {
            if (pt_json_int(o, "match_window", &ll) != 0)
                FAIL(PATIENT_ERR_PARSE, "limits: \"match_window\" is not an integer");
            if (ll < PATIENT_RULES_MIN_WINDOW || ll > PATIENT_RULES_MAX_WINDOW)
                FAIL(PATIENT_ERR_LIMIT, "limits: match_window must be %u..%u", PATIENT_RULES_MIN_WINDOW,
                     PATIENT_RULES_MAX_WINDOW);
            rs->window = (size_t)ll;
        }
        if (cJSON_GetObjectItemCaseSensitive(o, "work_per_byte") != NULL) {
            if (pt_json_int(o, "work_per_byte", &ll) != 0)
                FAIL(PATIENT_ERR_PARSE, "limits: \"work_per_byte\" is not an integer");
            if (ll < 1 || ll > PATIENT_RULES_MAX_WORK)
                FAIL(PATIENT_ERR_LIMIT, "limits: work_per_byte must be 1..%u", PATIENT_RULES_MAX_WORK);
            rs->work_per_byte = (size_t)ll;
        }
    }
    if ((rs->mctx = pcre2_match_context_create(NULL)) == NULL)
        FAIL(PATIENT_ERR_NOMEM, "out of memory");
    pcre2_set_match_limit(rs->mctx, PT_DFA_CALLS);
    pcre2_set_depth_limit(rs->mctx, PT_DFA_DEPTH);
out:
    return err;
}

/* One rule being read: where it is, for the messages. Every message
 * about it starts "rule N: ", or "rule N (id "ID"): " once its id is
 * known. */
typedef struct {
    const patient_rules *rs;
    size_t idx;
    const char *rid; /* NULL until the id is read */
    char **detail;
} rule_ctx;

static patient_err
rule_fail(rule_ctx *c, patient_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static patient_err
rule_fail(rule_ctx *c, patient_err code, const char *fmt, ...)
{
    pt_buf b = {0};
    va_list ap;
    patient_err err;

    if (c->detail == NULL)
        return code;
    /* Where, then what, into one buffer: formatted once. */
    if (c->rid == NULL)
        err = pt_buf_appendf(&b, "rule %zu: ", c->idx);
    else
        err = pt_buf_appendf(&b, "rule %zu (id \"%s\"): ", c->idx, c->rid);
    va_start(ap, fmt);
    if (err == PATIENT_OK)
        err = pt_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    free(*c->detail);
    *c->detail = err == PATIENT_OK ? (char *)b.data : NULL;
    if (err != PATIENT_OK)
        pt_buf_free(&b);
    return code;
}

static patient_err
rule_nomem(rule_ctx *c)
{
    pt_detail_set(c->detail, "out of memory");
    return PATIENT_ERR_NOMEM;
}

/* An optional string member of at most cap bytes (*s NULL when absent);
 * where ("" or "match: ") says which object holds it. */
static patient_err
rule_str(rule_ctx *c, const cJSON *o, const char *where, const char *key, unsigned cap,
         const char **s)
{
    switch (get_str(o, key, cap, s)) {
    case -2:
        return rule_fail(c, PATIENT_ERR_TOO_LARGE, "%s longer than %u bytes", key, cap);
    case -1:
        return rule_fail(c, PATIENT_ERR_PARSE, "%s\"%s\" is not a string", where, key);
    default:
        return PATIENT_OK;
    }
}

/* A required code member of at most PATIENT_RULES_MAX_ID bytes, copied to
 * *out: [A-Za-z0-9._-]+, or with lower [a-z0-9._-]+ starting with a
 * letter or digit; what ("[A-Za-z0-9._-]+", "a code ...") names it in the
 * message. */
static patient_err
rule_code(rule_ctx *c, const cJSON *o, const char *key, int lower, const char *what, char **out)
{
    const char *s;
    int rc = get_str(o, key, PATIENT_RULES_MAX_ID, &s);

    if (rc == -2)
        return rule_fail(c, PATIENT_ERR_TOO_LARGE, "%s longer than %u bytes", key,
                         PATIENT_RULES_MAX_ID);
    if (rc != 0 || !valid_id(s, lower) || (lower && (s[0] == '.' || s[0] == '-' || s[0] == '_')))
        return rule_fail(c, PATIENT_ERR_PARSE, "\"%s\" missing or not %s", key, what);
    if ((*out = strdup(s)) == NULL)
        return rule_nomem(c);
    return PATIENT_OK;
}

/* "id", unique in the file; "reason"; "note": optional free text. */
static patient_err
rule_names(rule_ctx *c, struct pt_rule *r, const cJSON *o)
{
    const char *s;
    patient_err err;
    size_t i;

    if ((err = rule_code(c, o, "id", 0, "[A-Za-z0-9._-]+", &r->id)) != PATIENT_OK)
        return err;
    c->rid = r->id;
    for (i = 0; i < c->idx; i++)
        if (strcmp(c->rs->r[i].id, r->id) == 0)
            return rule_fail(c, PATIENT_ERR_PARSE, "duplicate id (also rule %zu)", i);
    if ((err = rule_code(c, o, "reason", 1, "a code [a-z0-9._-]", &r->reason)) != PATIENT_OK)
        return err;
    if ((err = rule_str(c, o, "", "note", PATIENT_RULES_MAX_NOTE, &s)) != PATIENT_OK)
        return err;
    if (s != NULL && (r->note = strdup(s)) == NULL)
        return rule_nomem(c);
    return PATIENT_OK;
}

static const struct {
    const char *name;
    patient_rule_action action;
} rule_actions[] = {
    {"remove", PATIENT_RULE_REMOVE},
    {"replace", PATIENT_RULE_REPLACE},
    {"insert_before", PATIENT_RULE_INSERT_BEFORE},
    {"insert_after", PATIENT_RULE_INSERT_AFTER},
};

/* "action", and the "text" it needs: none for remove, some for replace,
 * at least one byte for the inserts. */
static patient_err
rule_action_text(rule_ctx *c, struct pt_rule *r, const cJSON *o)
{
    const char *act, *s;
    patient_err err;
    size_t i;

    if (get_str(o, "action", 32, &act) != 0)
        return rule_fail(c, PATIENT_ERR_PARSE, "\"action\" missing or not a string");
    for (i = 0; i < sizeof rule_actions / sizeof rule_actions[0]; i++)
        if (strcmp(act, rule_actions[i].name) == 0)
            break;
    if (i == sizeof rule_actions / sizeof rule_actions[0])
        return rule_fail(c, PATIENT_ERR_PARSE, "unknown action \"%s\"", act);
    r->action = rule_actions[i].action;

    if ((err = rule_str(c, o, "", "text", PATIENT_RULES_MAX_TEXT, &s)) != PATIENT_OK)
        return err;
    if (r->action == PATIENT_RULE_REMOVE && s != NULL)
        return rule_fail(c, PATIENT_ERR_PARSE, "\"text\" not allowed with remove");
    if (r->action != PATIENT_RULE_REMOVE && s == NULL)
        return rule_fail(c, PATIENT_ERR_PARSE, "\"text\" required with %s", act);
    if ((r->action == PATIENT_RULE_INSERT_BEFORE || r->action == PATIENT_RULE_INSERT_AFTER) &&
        *s == '\0')
        return rule_fail(c, PATIENT_ERR_PARSE, "empty \"text\" for %s", act);
    if (s != NULL) {
        r->text_len = strlen(s);
        if ((r->text = malloc(r->text_len + 1)) == NULL)
            return rule_nomem(c);
        memcpy(r->text, s, r->text_len + 1);
    }
    return PATIENT_OK;
}

/* "disclose" (default true) and "max_matches" (default
 * PATIENT_RULES_DEFAULT_MATCHES). */
static patient_err
rule_flags(rule_ctx *c, struct pt_rule *r, const cJSON *o)
{
    const cJSON *v;
    long long ll;

    r->disclose = 1;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "disclose")) != NULL) {
        if (!cJSON_IsBool(v))
            return rule_fail(c, PATIENT_ERR_PARSE, "\"disclose\" is not true/false");
        r->disclose = cJSON_IsTrue(v);
    }
    r->max_matches = PATIENT_RULES_DEFAULT_MATCHES;
    if (cJSON_GetObjectItemCaseSensitive(o, "max_matches") != NULL) {
        if (pt_json_int(o, "max_matches", &ll) != 0)
            return rule_fail(c, PATIENT_ERR_PARSE, "\"max_matches\" is not an integer");
        if (ll < 1 || ll > (long long)PATIENT_RULES_MAX_MATCHES)
            return rule_fail(c, PATIENT_ERR_LIMIT, "max_matches must be 1..%u",
                             PATIENT_RULES_MAX_MATCHES);
        r->max_matches = (size_t)ll;
    }
    return PATIENT_OK;
}

/* "types": optional, 1..PATIENT_RULES_MAX_TYPES media type patterns. */
static patient_err
rule_types(rule_ctx *c, struct pt_rule *r, const cJSON *o)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "types"), *t;
    int n;

    if (v == NULL)
        return PATIENT_OK;
    n = cJSON_GetArraySize(v);
    if (!cJSON_IsArray(v) || n < 1)
        return rule_fail(c, PATIENT_ERR_PARSE, "\"types\" is not a non-empty array");
    if ((size_t)n > PATIENT_RULES_MAX_TYPES)
        return rule_fail(c, PATIENT_ERR_LIMIT, "more than %u types", PATIENT_RULES_MAX_TYPES);
    if ((r->types = calloc((size_t)n, sizeof *r->types)) == NULL)
        return rule_nomem(c);
    cJSON_ArrayForEach(t, v)
    {
        int isbad = 0;
        if (!cJSON_IsString(t) || t->valuestring == NULL)
            return rule_fail(c, PATIENT_ERR_PARSE, "a type is not a string");
        if ((r->types[r->ntypes] = media_pattern(t->valuestring, &isbad)) == NULL) {
            if (!isbad)
                return rule_nomem(c);
            return rule_fail(c, PATIENT_ERR_PARSE, "bad media type pattern \"%.64s\"",
                             t->valuestring);
        }
        r->ntypes++;
    }
    return PATIENT_OK;
}

/* "match": exactly one of a non-empty "literal" or a "regex" that passes
 * regex_guard and compiles; "icase" for a regex only. */
static patient_err
rule_match(rule_ctx *c, struct pt_rule *r, const cJSON *o)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "match"), *v;
    const char *bad = NULL, *lit, *rx, *why = NULL;
    patient_err err;

    if (!cJSON_IsObject(m))
        return rule_fail(c, PATIENT_ERR_PARSE, "\"match\" missing or not an object");
    if ((err = check_keys(m, match_keys, &bad)) != PATIENT_OK)
        return rule_fail(c, err, "match: unknown or duplicate field \"%s\"", bad);
    v = cJSON_GetObjectItemCaseSensitive(m, "icase");
    if (v != NULL && !cJSON_IsBool(v))
        return rule_fail(c, PATIENT_ERR_PARSE, "match: \"icase\" is not true/false");
    r->icase = v != NULL && cJSON_IsTrue(v);
    if ((err = rule_str(c, m, "match: ", "literal", PATIENT_RULES_MAX_PATTERN, &lit)) !=
            PATIENT_OK ||
        (err = rule_str(c, m, "match: ", "regex", PATIENT_RULES_MAX_PATTERN, &rx)) != PATIENT_OK)
        return err;
    if ((lit == NULL) == (rx == NULL))
        return rule_fail(c, PATIENT_ERR_PARSE, "match needs exactly one of literal, regex");
    if (lit != NULL) {
        if (*lit == '\0')
            return rule_fail(c, PATIENT_ERR_PARSE, "empty literal");
        if (r->icase)
            return rule_fail(c, PATIENT_ERR_PARSE, "icase applies to regex only");
        r->literal_len = strlen(lit);
        if ((r->literal = malloc(r->literal_len)) == NULL)
            return rule_nomem(c);
        memcpy(r->literal, lit, r->literal_len);
        return PATIENT_OK;
    }
    if (*rx == '\0')
        return rule_fail(c, PATIENT_ERR_REGEX, "regex: empty pattern");
    if (regex_guard(rx, &why) != 0)
        return rule_fail(c, PATIENT_ERR_REGEX, "regex: %s", why);
    r->is_regex = 1;
    if ((err = regex_compile(r, rx, &why)) != PATIENT_OK)
        return rule_fail(c, err, "regex: %s", why);
    return PATIENT_OK;
}

/* One member of "rules", phase by phase in the order the messages have
 * always come in (the first problem found is the one reported). A rule
 * left half filled is freed with the rule set. */
static patient_err
parse_rule(patient_rules *rs, size_t idx, const cJSON *o, char **detail)
{
    static patient_err (*const phases[])(rule_ctx *, struct pt_rule *, const cJSON *) = {
        rule_names, rule_action_text, rule_flags, rule_types, rule_match,
    };
    rule_ctx c = {.rs = rs, .idx = idx, .detail = detail};
    const char *bad = NULL;
    patient_err err;
    size_t i;

    if (!cJSON_IsObject(o))
        return rule_fail(&c, PATIENT_ERR_PARSE, "not an object");
    if ((err = check_keys(o, rule_keys, &bad)) != PATIENT_OK)
        return rule_fail(&c, err, "unknown or duplicate field \"%s\"", bad);
    for (i = 0; i < sizeof phases / sizeof phases[0]; i++)
        if ((err = phases[i](&c, &rs->r[idx], o)) != PATIENT_OK)
            return err;
    return PATIENT_OK;
}

patient_err
patient_rules_parse(const void *bytes, size_t len, patient_rules **out, char **detail)
{
    cJSON *root = NULL;
    const cJSON *v, *item;
    const char *s, *bad = NULL;
    patient_rules *rs = NULL;
    long long ver;
    patient_err err = PATIENT_OK;
    int n;

    if (detail != NULL)
        *detail = NULL;
    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if (bytes == NULL && len > 0)
        return PATIENT_ERR_ARG;
    if (len > PATIENT_RULES_MAX_FILE)
        FAIL(PATIENT_ERR_TOO_LARGE, "rule file larger than %u bytes", PATIENT_RULES_MAX_FILE);
    if ((err = pt_json_parse(bytes ? bytes : "", len, &root)) != PATIENT_OK)
        FAIL(err, "not valid JSON (or nested deeper than %d)", PT_JSON_MAX_DEPTH);
    if (has_nul_escape(bytes, len))
        FAIL(PATIENT_ERR_JSON, "\\u0000 is not allowed in rule files");
    if (!cJSON_IsObject(root))
        FAIL(PATIENT_ERR_PARSE, "top level is not an object");
    if ((err = check_keys(root, top_keys, &bad)) != PATIENT_OK)
        FAIL(err, "unknown or duplicate field \"%s\"", bad);
    if (pt_json_int(root, "patient", &ver) != 0)
        FAIL(PATIENT_ERR_PARSE, "\"patient\" (format version) missing or not an integer");
    if (ver != 1)
        FAIL(PATIENT_ERR_UNSUPPORTED, "format version %lld not supported (want 1)", ver);
    if ((s = pt_json_str(root, "type")) == NULL || strcmp(s, "rules") != 0)
        FAIL(PATIENT_ERR_PARSE, "\"type\" is not \"rules\"");
    v = cJSON_GetObjectItemCaseSensitive(root, "rules");
    if (!cJSON_IsArray(v))
        FAIL(PATIENT_ERR_PARSE, "\"rules\" missing or not an array");
    n = cJSON_GetArraySize(v);
    if ((size_t)n > PATIENT_RULES_MAX_RULES)
        FAIL(PATIENT_ERR_LIMIT, "more than %u rules", PATIENT_RULES_MAX_RULES);

    if ((rs = calloc(1, sizeof *rs)) == NULL)
        FAIL(PATIENT_ERR_NOMEM, "out of memory");
    if ((err = patient_sha256(bytes ? bytes : "", len, rs->sha256)) != PATIENT_OK)
        FAIL(err, "cannot hash the rule file");
    rs->window = PATIENT_RULES_DEFAULT_WINDOW;
    rs->work_per_byte = PATIENT_RULES_DEFAULT_WORK;
    if ((err = parse_limits(rs, cJSON_GetObjectItemCaseSensitive(root, "limits"), detail)) !=
        PATIENT_OK)
        goto out;
    if (n > 0 && (rs->r = calloc((size_t)n, sizeof *rs->r)) == NULL)
        FAIL(PATIENT_ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(item, v)
    {
        rs->n++; /* count it first so a partial rule is freed */
        if ((err = parse_rule(rs, rs->n - 1, item, detail)) != PATIENT_OK)
            goto out;
    }
    *out = rs;
    rs = NULL;
out:
    if (err == PATIENT_ERR_NOMEM && detail != NULL) {
        free(*detail);
        *detail = NULL;
    }
    patient_rules_free(rs);
    cJSON_Delete(root);
    return err;
}

void
patient_rules_sha256(const patient_rules *rules, uint8_t out[PATIENT_SHA256_BYTES])
{
    if (rules == NULL)
        memset(out, 0, PATIENT_SHA256_BYTES);
    else
        memcpy(out, rules->sha256, sizeof rules->sha256);
}

patient_err
patient_rules_load(const char *path, patient_rules **out, char **detail)
{
    uint8_t *data = NULL;
    size_t len = 0;
    patient_err err;

    if (detail != NULL)
        *detail = NULL;
    if (out == NULL || path == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if ((err = pt_read_file(path, PATIENT_RULES_MAX_FILE, &data, &len)) != PATIENT_OK) {
        pt_detail_set(detail, "%s: %s", path, patient_strerror(err));
        goto out;
    }
    err = patient_rules_parse(data, len, out, detail);
out:
    free(data);
    return err;
}

/* Canonical "type/subtype" of a Content-Type value: parameters and
 * surrounding whitespace dropped, lower-cased. 0 if it looks like one. */
static int
media_canon(const char *in, char out[PT_MEDIA_MAX + 1])
{
    size_t n = 0;
    const char *p = in;

    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && *p != ';' && *p != ' ' && *p != '\t') {
        if (n >= PT_MEDIA_MAX)
            return -1;
        out[n++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
        p++;
    }
    out[n] = '\0';
    return (n > 0 && strchr(out, '/') != NULL) ? 0 : -1;
}

static int
rule_wants(const struct pt_rule *r, const char *mt)
{
    size_t i, tl;
    const char *slash;

    if (r->ntypes == 0)
        return 1;
    if (mt == NULL)
        return 0;
    for (i = 0; i < r->ntypes; i++) {
        const char *t = r->types[i];
        if (strcmp(t, "*/*") == 0 || strcmp(t, mt) == 0)
            return 1;
        slash = strchr(t, '/');
        tl = (size_t)(slash - t);
        if (strcmp(slash + 1, "*") == 0 && strncmp(t, mt, tl + 1) == 0)
            return 1;
    }
    return 0;
}

static patient_err
add_cand(pt_buf *c, size_t start, size_t end, uint32_t rule)
{
    pt_cand x = {start, end, rule};

    if (c->len / sizeof x >= PATIENT_RULES_MAX_CANDIDATES)
        return PATIENT_ERR_LIMIT;
    return pt_buf_append(c, &x, sizeof x);
}

/* Literal matches starting in [*pos, lim), non-overlapping, memmem over
 * the bytes that are there. */
static patient_err
find_literal(const struct pt_rule *r, uint32_t ri, const uint8_t *body, size_t len, size_t lim,
             size_t *pos, size_t *found, pt_buf *c)
{
    const uint8_t *hit;
    size_t p = *pos;
    patient_err err;

    while (*found < r->max_matches && p < lim && p + r->literal_len <= len) {
        hit = memmem(body + p, len - p, r->literal, r->literal_len);
        if (hit == NULL || (size_t)(hit - body) >= lim) {
            p = lim;
            break;
        }
        p = (size_t)(hit - body);
        if ((err = add_cand(c, p, p + r->literal_len, ri)) != PATIENT_OK)
            return err;
        (*found)++;
        p += r->literal_len;
    }
    if (p < lim && *found < r->max_matches)
        p = lim; /* no room for another match before lim */
    *pos = p;
    return PATIENT_OK;
}

/* Work accounting shared by the regex rules of one apply: every byte a
 * window hands the matcher is charged, and the apply stops with
 * PATIENT_ERR_LIMIT once the charge passes the budget. */
typedef struct {
    size_t used, budget;
    const char *hit;            /* which limit stopped the scan, for the caller */
    pcre2_match_context *mctx;  /* this apply's copy: the limits change per run */
} pt_work;

/* Next offset >= pos where r can start a match, or len + 1 for none. */
static int
prefix_at(const struct pt_rule *r, const uint8_t *body, size_t len, size_t s)
{
    size_t i;

    if (len - s < r->prefix_len)
        return 0;
    if (!r->icase)
        return memcmp(body + s, r->prefix, r->prefix_len) == 0;
    for (i = 0; i < r->prefix_len; i++) {
        uint8_t c = body[s + i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c + 32);
        if (c != r->prefix[i])
            return 0;
    }
    return 1;
}

/* Next plausible start in [pos, lim) (lim <= len), or lim for none. */
static size_t
next_start(const struct pt_rule *r, const uint8_t *body, size_t len, size_t pos, size_t lim)
{
    const uint8_t *hit;

    if (r->start_only)
        return pos == 0 && lim > 0 ? 0 : lim;
    for (;;) {
        if (r->first_one) {
            if (pos >= lim)
                return lim;
            hit = memchr(body + pos, r->first_byte, lim - pos);
            if (hit == NULL)
                return lim;
            pos = (size_t)(hit - body);
        } else {
            while (pos < lim && !r->first[body[pos]])
                pos++;
            /* An empty match at the very end is skipped anyway. */
            if (pos >= lim)
                return lim;
        }
        if (prefix_at(r, body, len, pos))
            return pos;
        pos++;
    }
}

/* Charge n units of work; PATIENT_ERR_LIMIT past the budget. */
static int
charge(pt_work *w, size_t n, const char *what, patient_err *err)
{
    w->used += n;
    if (w->used <= w->budget)
        return 0;
    w->hit = what;
    *err = PATIENT_ERR_LIMIT;
    return -1;
}

static patient_err
pcre_err(int rc, pt_work *w)
{
    switch (rc) {
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_DFA_RECURSE:
    case PCRE2_ERROR_JIT_STACKLIMIT:
        w->hit = "depth";
        return PATIENT_ERR_LIMIT;
    case PCRE2_ERROR_DFA_WSSIZE:
        w->hit = "states";
        return PATIENT_ERR_LIMIT;
    case PCRE2_ERROR_NOMEMORY:
    case PCRE2_ERROR_HEAPLIMIT:
        return PATIENT_ERR_NOMEM;
    default:
        return PATIENT_ERR_REGEX; /* e.g. an item the DFA matcher cannot run */
    }
}

/* Is there a match starting exactly at s, at most rs->window bytes long?
 * A backtracking run (JIT-compiled where PCRE2 has a JIT) anchored at s:
 * fast, and the leftmost start where any match exists is the same for
 * POSIX and Perl semantics. Its window starts at PT_WIN0 bytes and
 * doubles while the attempt is still alive at the window's end
 * (PCRE2_PARTIAL_HARD says so); its backtracking limit starts at
 * PT_BT0 and doubles while it is hit, up to PT_BT_MAX. Every run is
 * charged its window plus its limit, so the work charged is within a
 * factor of two of what the attempt needed. 1 (with *win the window that
 * decided), 0, or -1 with *err. */
static int
exists_at(const patient_rules *rs, const struct pt_rule *r, const uint8_t *body, size_t len,
          size_t s, pcre2_match_data *md, pt_work *w, size_t *win_out, patient_err *err)
{
    size_t win = PT_WIN0, end;
    uint32_t lim = PT_BT0, opts;
    int rc, last = 0;

    for (;;) {
        if (win >= rs->window) {
            win = rs->window;
            last = 1;
        }
        end = len - s > win ? s + win : len;
        if (end == len)
            last = 1;
        if (charge(w, end - s + 1 + lim, "work", err) != 0)
            return -1;
        /* A window that stops short of the body is not its end: "$" must
         * not match there. */
        opts = PCRE2_ANCHORED | (end < len ? PCRE2_NOTEOL : 0) | (last ? 0 : PCRE2_PARTIAL_HARD);
        pcre2_set_match_limit(w->mctx, lim);
        rc = pcre2_match(r->re, body, end, s, opts, md, w->mctx);
        if (rc == PCRE2_ERROR_PARTIAL && !last) {
            win *= 2;
            continue;
        }
        if (rc == PCRE2_ERROR_MATCHLIMIT && lim < PT_BT_MAX) {
            lim *= 2;
            continue;
        }
        break;
    }
    *win_out = win;
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH || rc == PCRE2_ERROR_PARTIAL)
        return 0;
    *err = pcre_err(rc, w);
    return -1;
}

/* The longest match starting exactly at s and at most rs->window bytes
 * long (POSIX's rule), once exists_at found one: an anchored DFA run (no
 * backtracking), its window doubling from win as above. 1 with [s, *e),
 * 0 (only the empty match), -1 with *err. */
static int
longest_at(const patient_rules *rs, const struct pt_rule *r, const uint8_t *body, size_t len,
           size_t s, size_t win, pcre2_match_data *md, pt_work *w, size_t *e, patient_err *err)
{
    int ws[PT_DFA_WS];
    size_t end;
    uint32_t opts;
    PCRE2_SIZE *ov;
    int rc, last = 0;

    pcre2_set_match_limit(w->mctx, PT_DFA_CALLS);
    for (;;) {
        if (win >= rs->window) {
            win = rs->window;
            last = 1;
        }
        end = len - s > win ? s + win : len;
        if (end == len)
            last = 1;
        if (charge(w, end - s + 1, "work", err) != 0)
            return -1;
        /* Only the last window runs without PARTIAL_HARD, to take the
         * longest complete match inside it. */
        opts = PCRE2_ANCHORED | (end < len ? PCRE2_NOTEOL : 0) | (last ? 0 : PCRE2_PARTIAL_HARD);
        rc = pcre2_dfa_match(r->re, body, end, s, opts, md, w->mctx, ws, PT_DFA_WS);
        if (rc == PCRE2_ERROR_PARTIAL && !last) {
            win *= 2;
            continue;
        }
        break;
    }
    if (rc == PCRE2_ERROR_NOMATCH || rc == PCRE2_ERROR_PARTIAL)
        return 0;
    if (rc < 0) {
        *err = pcre_err(rc, w);
        return -1;
    }
    ov = pcre2_get_ovector_pointer(md);
    if (ov[0] != s || ov[1] < ov[0] || ov[1] > end) {
        *err = PATIENT_ERR_REGEX; /* cannot happen: anchored at s */
        return -1;
    }
    *e = ov[1];
    return 1;
}

static int
match_at(const patient_rules *rs, const struct pt_rule *r, const uint8_t *body, size_t len,
         size_t s, pcre2_match_data *md, pt_work *w, size_t *e, patient_err *err)
{
    size_t win = PT_WIN0;
    int rc = exists_at(rs, r, body, len, s, md, w, &win, err);

    if (rc <= 0)
        return rc;
    return longest_at(rs, r, body, len, s, win, md, w, e, err);
}

/* Leftmost-longest, non-overlapping matches of one regex rule, as POSIX
 * regexec found them: the earliest start that has a match (of at most
 * the window), the longest match there, then on from its end. Only starts
 * in [*pos, lim): the caller keeps lim a window short of the bytes that
 * have arrived, so every window of those starts is complete. */
static patient_err
find_regex(const patient_rules *rs, const struct pt_rule *r, uint32_t ri, const uint8_t *body,
           size_t len, size_t lim, size_t *pos, size_t *found, pcre2_match_data *md,
           pt_work *w, pt_buf *c)
{
    size_t p = *pos, st, e = 0;
    patient_err err = PATIENT_OK;
    int rc;

    while (*found < r->max_matches && p < lim) {
        if ((st = next_start(r, body, len, p, lim)) >= lim) {
            p = lim;
            break;
        }
        rc = match_at(rs, r, body, len, st, md, w, &e, &err);
        if (rc < 0)
            return err;
        if (rc == 0 || e == st) {
            p = st + 1; /* no match here, or an empty one: skipped */
            continue;
        }
        if ((err = add_cand(c, st, e, ri)) != PATIENT_OK)
            return err;
        (*found)++;
        p = e;
    }
    *pos = p;
    return PATIENT_OK;
}

static int
cand_cmp(const void *a, const void *b)
{
    const pt_cand *x = a, *y = b;

    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->rule < y->rule ? -1 : (x->rule > y->rule);
}

static patient_err
emit(const patient_rules *rs, const pt_cand *k, size_t offset, patient_rules_cb cb, void *ctx)
{
    const struct pt_rule *r = &rs->r[k->rule];
    patient_rule_match m;
    static const uint8_t none[1] = {0};

    memset(&m, 0, sizeof m);
    m.offset = offset;
    m.action = r->action;
    m.delete_len = (r->action == PATIENT_RULE_REMOVE || r->action == PATIENT_RULE_REPLACE)
                       ? k->end - k->start
                       : 0;
    m.insert = r->text ? r->text : none;
    m.insert_len = r->action == PATIENT_RULE_REMOVE ? 0 : r->text_len;
    m.reason = r->reason;
    m.rule_id = r->id;
    m.note = r->note;
    m.disclose = r->disclose;
    m.match_offset = k->start;
    m.match_len = k->end - k->start;
    return cb(ctx, &m);
}

struct patient_rules_stream {
    const patient_rules *rs;
    char mt[PT_MEDIA_MAX + 1];
    const char *mtp;
    size_t *pos, *found; /* per rule: next start to try, matches so far */
    uint8_t *on;         /* per rule: wants this media type, not exhausted */
    pt_buf cand;         /* matches not resolved yet */
    size_t ncand_total;
    pcre2_match_data *md;
    pt_work w;
    /* greedy resolution, carried from feed to feed */
    int any, has_pend;
    size_t last_end, pend_off;
    pt_cand pend;
    patient_err err; /* sticky */
    int done;
};

patient_err
patient_rules_stream_new(const patient_rules *rules, const char *media_type,
                         patient_rules_stream **out)
{
    patient_rules_stream *st;
    size_t i;

    if (out == NULL)
        return PATIENT_ERR_ARG;
    *out = NULL;
    if (rules == NULL)
        return PATIENT_ERR_ARG;
    if ((st = calloc(1, sizeof *st)) == NULL)
        return PATIENT_ERR_NOMEM;
    st->rs = rules;
    if (media_type != NULL && media_canon(media_type, st->mt) == 0)
        st->mtp = st->mt;
    if (rules->n > 0 &&
        ((st->pos = calloc(rules->n, sizeof *st->pos)) == NULL ||
         (st->found = calloc(rules->n, sizeof *st->found)) == NULL ||
         (st->on = calloc(rules->n, 1)) == NULL)) {
        patient_rules_stream_free(st);
        return PATIENT_ERR_NOMEM;
    }
    for (i = 0; i < rules->n; i++) {
        st->on[i] = (uint8_t)rule_wants(&rules->r[i], st->mtp);
        if (st->on[i] && rules->r[i].is_regex && st->md == NULL) {
            /* One ovector pair: the DFA matcher puts the longest match first. */
            if ((st->md = pcre2_match_data_create(1, NULL)) == NULL ||
                (st->w.mctx = pcre2_match_context_copy(rules->mctx)) == NULL) {
                patient_rules_stream_free(st);
                return PATIENT_ERR_NOMEM;
            }
        }
    }
    *out = st;
    return PATIENT_OK;
}

void
patient_rules_stream_free(patient_rules_stream *st)
{
    if (st == NULL)
        return;
    pcre2_match_context_free(st->w.mctx);
    pcre2_match_data_free(st->md);
    pt_buf_free(&st->cand);
    free(st->pos);
    free(st->found);
    free(st->on);
    free(st);
}

/* How far a rule must see past a start before its match there is
 * decided: the match window (regex) or the literal. */
static size_t
rule_reach(const patient_rules *rs, const struct pt_rule *r)
{
    return r->is_regex ? rs->window : r->literal_len;
}

patient_err
patient_rules_stream_feed(patient_rules_stream *st, const void *bytes, size_t len, int eof,
                          patient_rules_cb cb, void *ctx, size_t *safe)
{
    const patient_rules *rs;
    const uint8_t *body = bytes;
    size_t i, nc, nproc, frontier = SIZE_MAX, lim, reach;
    pt_cand *cand;
    patient_err err = PATIENT_OK;
    uint32_t ri;

    if (st == NULL || cb == NULL || (body == NULL && len > 0))
        return PATIENT_ERR_ARG;
    if (st->err != PATIENT_OK)
        return st->err;
    if (st->done)
        return PATIENT_ERR_STATE;
    rs = st->rs;
    if (len > PATIENT_RULES_MAX_BODY) {
        err = PATIENT_ERR_TOO_LARGE;
        goto out;
    }
    st->w.budget = len > (SIZE_MAX - PATIENT_RULES_WORK_BASE) / rs->work_per_byte
                       ? SIZE_MAX
                       : len * rs->work_per_byte + PATIENT_RULES_WORK_BASE;

    /* 1. Every rule, over the starts whose matches the bytes so far decide. */
    for (ri = 0; ri < rs->n; ri++) {
        const struct pt_rule *r = &rs->r[ri];
        size_t before = st->cand.len;
        if (!st->on[ri])
            continue;
        reach = rule_reach(rs, r);
        lim = eof ? len : (len > reach ? len - reach : 0);
        if (lim > st->pos[ri])
            err = r->is_regex ? find_regex(rs, r, ri, body, len, lim, &st->pos[ri],
                                           &st->found[ri], st->md, &st->w, &st->cand)
                              : find_literal(r, ri, body, len, lim, &st->pos[ri],
                                             &st->found[ri], &st->cand);
        if (err != PATIENT_OK)
            goto out;
        st->ncand_total += (st->cand.len - before) / sizeof(pt_cand);
        if (st->ncand_total > PATIENT_RULES_MAX_CANDIDATES) {
            err = PATIENT_ERR_LIMIT;
            goto out;
        }
        if (eof || st->found[ri] >= r->max_matches)
            st->on[ri] = 0; /* nothing more from this rule */
        else if (st->pos[ri] > lim ? st->pos[ri] < frontier : lim < frontier)
            frontier = st->pos[ri] > lim ? st->pos[ri] : lim;
    }
    /* Every match starting before frontier is known now. */
    if (eof)
        frontier = SIZE_MAX;

    /* 2. Earliest start first; at equal start, the rule listed first. */
    nc = st->cand.len / sizeof(pt_cand);
    cand = (pt_cand *)st->cand.data;
    if (nc > 1)
        qsort(cand, nc, sizeof *cand, cand_cmp);
    for (nproc = 0; nproc < nc && cand[nproc].start < frontier; nproc++)
        ;

    /* 3. Greedy: keep a match unless it overlaps one already kept. Then
     * turn kept matches into edits. An insert_after is held back
     * ("pending") because the next kept match may start exactly where it
     * inserts: past a pure removal the insertion moves to the removal's
     * end (same output bytes); a replace or insert_before there wins and
     * the insertion is dropped. */
    for (i = 0; i < nproc; i++) {
        pt_cand *k = &cand[i];
        patient_rule_action a = rs->r[k->rule].action;
        if (st->any && k->start < st->last_end)
            continue; /* overlaps a kept match */
        st->any = 1;
        st->last_end = k->end;
        if (st->has_pend) {
            if (st->pend_off < k->start || a == PATIENT_RULE_INSERT_AFTER) {
                if ((err = emit(rs, &st->pend, st->pend_off, cb, ctx)) != PATIENT_OK)
                    goto out;
                st->has_pend = 0;
            } else if (a == PATIENT_RULE_REMOVE) {
                st->pend_off = k->end; /* moved past the removal */
            } else {
                st->has_pend = 0; /* dropped: replace/insert_before starts here */
            }
        }
        if (a == PATIENT_RULE_INSERT_AFTER) {
            st->pend = *k;
            st->has_pend = 1;
            st->pend_off = k->end;
        } else if ((err = emit(rs, k, k->start, cb, ctx)) != PATIENT_OK) {
            goto out;
        }
    }
    /* A pending insert_after is decided once no match still to come can
     * start at its offset: every candidate starting before frontier has
     * been seen. */
    if (st->has_pend && !eof && st->pend_off < frontier) {
        if ((err = emit(rs, &st->pend, st->pend_off, cb, ctx)) != PATIENT_OK)
            goto out;
        st->has_pend = 0;
    }
    if (nproc > 0 && nc > nproc)
        memmove(cand, cand + nproc, (nc - nproc) * sizeof *cand);
    st->cand.len = (nc - nproc) * sizeof *cand;
    if (eof) {
        if (st->has_pend && (err = emit(rs, &st->pend, st->pend_off, cb, ctx)) != PATIENT_OK)
            goto out;
        st->has_pend = 0;
        st->done = 1;
    }
    if (safe) {
        /* Output for input before *safe is final: every edit there has been
         * reported, and none still to come lands before it. */
        size_t sf = eof ? len : (frontier < len ? frontier : len);
        if (st->has_pend && st->pend_off < sf)
            sf = st->pend_off;
        *safe = sf;
    }
out:
    if (err != PATIENT_OK)
        st->err = err;
    return err;
}

patient_err
patient_rules_apply(const patient_rules *rules, const void *body, size_t len,
                    const char *media_type, patient_rules_cb cb, void *ctx)
{
    patient_rules_stream *st = NULL;
    patient_err err;

    if (rules == NULL || cb == NULL || (body == NULL && len > 0))
        return PATIENT_ERR_ARG;
    if (len > PATIENT_RULES_MAX_BODY)
        return PATIENT_ERR_TOO_LARGE;
    /* One feed with the whole body: every match is found before the first
     * edit is reported, so a limit stops the apply with no callback. */
    if ((err = patient_rules_stream_new(rules, media_type, &st)) != PATIENT_OK)
        return err;
    err = patient_rules_stream_feed(st, body, len, 1, cb, ctx, NULL);
    patient_rules_stream_free(st);
    return err;
}
