/* Shared test helpers; see testutil.h. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <patient/error.h>
#include "report_int.h"
#include "util.h"
#include "testutil.h"
#include "verify_int.h"

#define SLURP_MAX (256u * 1024 * 1024)

const char *
tu_tmp(void)
{
    const char *t = getenv("TMPDIR");

    return t && *t ? t : "/tmp";
}

void
tu_mkdtemp(char *dir, size_t cap, const char *name)
{
    ck_assert_msg(snprintf(dir, cap, "%s/%s.XXXXXX", tu_tmp(), name) < (int)cap,
                  "temp path too long");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
        fprintf(stderr, "tu_rmtree: %s: %s\n", path, strerror(errno));
    return 0; /* keep going: remove what can be removed */
}

void
tu_rmtree(const char *path)
{
    /* FTW_DEPTH: children before their folder; FTW_PHYS: never follow a
     * symlink out of the tree. */
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fprintf(stderr, "tu_rmtree: %s: %s\n", path, strerror(errno));
}

const char *
tu_path(const char *dir, const char *name)
{
    static char buf[8][4096];
    static unsigned next;
    char *p = buf[next++ % 8];

    ck_assert_msg(snprintf(p, sizeof buf[0], "%s/%s", dir, name) < (int)sizeof buf[0],
                  "path too long");
    return p;
}

char *
tu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *d = NULL;
    size_t n = 0, cap = 0, r;

    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    do {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 65536;
            ck_assert_msg(cap <= SLURP_MAX, "%s: over %u bytes", path, SLURP_MAX);
            d = realloc(d, cap + 1);
            ck_assert_ptr_nonnull(d);
        }
        r = fread(d + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    ck_assert_msg(!ferror(f), "%s: read error", path);
    fclose(f);
    d[n] = 0;
    if (len)
        *len = n;
    return d;
}

char *
tu_fixture(const char *name, size_t *len)
{
    return tu_slurp(tu_path(TEST_SRCDIR "/data", name), len);
}

const tu_time_case tu_rfc3339_cases[] = {
    {"2026-11-27T10:00:00Z", PATIENT_OK, 1795773600},
    {"2026-11-27T10:00:00.5Z", PATIENT_OK, 1795773600}, /* a fraction is dropped */
    {"2026-11-27T10:00:00.999999999Z", PATIENT_OK, 1795773600},
    {"2026-11-27T10:00:00+00:00", PATIENT_OK, 1795773600},
    {"2024-02-29T00:00:00Z", PATIENT_OK, 1709164800},
    {"2026-01-01T00:00:00Z", PATIENT_OK, 1767225600},
    {"@1795773600", PATIENT_ERR_PARSE, 0}, /* epoch seconds are for command lines */
    {"@0", PATIENT_ERR_PARSE, 0},
    {"@-1", PATIENT_ERR_PARSE, 0},
    {"2026-11-27", PATIENT_ERR_PARSE, 0},
    {"2026-11-27t10:00:00Z", PATIENT_ERR_PARSE, 0},
    {"2026-11-27 10:00:00Z", PATIENT_ERR_PARSE, 0},
    {"2026-11-27T10:00:00z", PATIENT_ERR_PARSE, 0},
    {"2026-11-27T11:00:00+01:00", PATIENT_ERR_PARSE, 0},
    {"2026-11-27T10:00:00-00:00", PATIENT_ERR_PARSE, 0},
    {"2026-11-27T10:00:00", PATIENT_ERR_PARSE, 0},
    {"2026-11-27T10:00:00.Z", PATIENT_ERR_PARSE, 0},
    {"2026-11-27T10:00:00Z ", PATIENT_ERR_PARSE, 0},
    {" 2026-11-27T10:00:00Z", PATIENT_ERR_PARSE, 0},
    {"2026-02-30T00:00:00Z", PATIENT_ERR_PARSE, 0},
    {"2025-02-29T00:00:00Z", PATIENT_ERR_PARSE, 0},
    {"2026-11-27T24:00:00Z", PATIENT_ERR_PARSE, 0},
    {"2026-11-27T10:60:00Z", PATIENT_ERR_PARSE, 0},
    {"2026-11-27T10:00:60Z", PATIENT_ERR_PARSE, 0},
    {"2026-13-01T00:00:00Z", PATIENT_ERR_PARSE, 0},
    {"2026-1-27T10:00:00Z", PATIENT_ERR_PARSE, 0},
    {"+2026-11-27T10:00:00Z", PATIENT_ERR_PARSE, 0},
    {"yesterday", PATIENT_ERR_PARSE, 0},
    {"", PATIENT_ERR_PARSE, 0},
};
const size_t tu_rfc3339_ncases = sizeof tu_rfc3339_cases / sizeof tu_rfc3339_cases[0];

char *
tu_replace1(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    char *r;
    ck_assert_msg(p != NULL, "'%s' not in the text", from);
    r = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
    ck_assert_ptr_nonnull(r);
    memcpy(r, s, (size_t)(p - s));
    strcpy(r + (p - s), to);
    strcat(r, p + strlen(from));
    return r;
}

const char *
tu_report_first_error(const patient_report *r)
{
    for (size_t i = 0; i < r->nchecks; i++)
        if (r->checks[i].effect >= REP_UNVERIFIABLE)
            return r->checks[i].code;
    return NULL;
}

int
tu_report_has_code(const patient_report *r, const char *code)
{
    for (size_t i = 0; i < patient_report_result_count(r); i++)
        if (strcmp(patient_report_result_code(r, i), code) == 0)
            return 1;
    return 0;
}

int
tu_same_streamed(const patient_policy *p, const patient_evidence *ev,
                 const patient_verify_opts *o, const patient_report *r)
{
    static const size_t pieces[] = {1, 7, 4095, 65537, 0};
    char *want = NULL;
    int streamed = -1;

    if (o && o->state_file)
        return -1;
    ck_assert_int_eq(patient_report_json(r, 0, &want), PATIENT_OK);
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
        patient_report *s = NULL;
        char *got = NULL;
        int st = -1;
        ck_assert_int_eq(pt_verify_evidence_fed(p, ev, o, pieces[i], &st, &s), PATIENT_OK);
        ck_assert(st == 0 || st == 1);
        if (streamed >= 0)
            ck_assert_int_eq(st, streamed);
        streamed = st;
        ck_assert_int_eq(patient_report_json(s, 0, &got), PATIENT_OK);
        if (strcmp(got, want) != 0)
            fprintf(stderr, "pieces of %zu:\n%s\nbuffered:\n%s\n", pieces[i], got, want);
        ck_assert_str_eq(got, want);
        free(got);
        patient_report_free(s);
    }
    free(want);
    return streamed;
}

/* Per thread, so that a test can fail one thread's allocation alone. */
static _Thread_local unsigned fail_at, allocs;

static void *
fail_alloc(size_t n)
{
    return ++allocs == fail_at ? NULL : malloc(n);
}

unsigned
tu_json_fail_alloc(unsigned n)
{
    unsigned had = allocs;

    /* Every call: a test that reset cJSON's hooks (cJSON_InitHooks) must
     * not leave the next one failing nothing. */
    pt_json_track_nomem_with(fail_alloc);
    fail_at = n;
    allocs = 0;
    return had;
}
