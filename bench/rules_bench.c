/* Rule matching cost: one rule file over an ordinary HTML page and over a
 * crafted body that keeps a regex rule's automaton alive at every start
 * (5 MB of "<script "), with the library's bounded PCRE2 matcher, and the
 * same patterns with glibc's regexec (the previous engine) as the peer in
 * the same run, on a body small enough for it to finish.
 *
 * usage: rules_bench RULES.json [BYTES]      (default 5000000) */
#include "config.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <patient/rules.h>

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static patient_err
count(void *ctx, const patient_rule_match *m)
{
    (void)m;
    (*(size_t *)ctx)++;
    return PATIENT_OK;
}

static uint8_t *
ordinary(size_t n)
{
    static const char unit[] =
        "<div class=\"item\"><a href=\"/story/1234\">A headline about something</a>"
        "<p>Some paragraph text with <em>emphasis</em> and a <span>span</span>.</p>"
        "<img src=\"/img/x.png\" alt=\"x\"></div>\n"
        "<script src=\"https://cdn.example/app.js\"></script>\n";
    uint8_t *b = malloc(n);
    size_t i, ul = sizeof unit - 1;
    const char *head = "<html><head><title>t</title></head><body class=\"main\">";

    for (i = 0; i < n; i++)
        b[i] = (uint8_t)unit[i % ul];
    memcpy(b, head, strlen(head));
    return b;
}

static uint8_t *
crafted(size_t n)
{
    static const char unit[] = "<script ";
    uint8_t *b = malloc(n);
    size_t i;

    for (i = 0; i < n; i++)
        b[i] = (uint8_t)unit[i % (sizeof unit - 1)];
    return b;
}

static void
run(const patient_rules *r, const char *what, const uint8_t *b, size_t n)
{
    double best = 1e9, t;
    size_t edits = 0;
    patient_err err = PATIENT_OK;
    int i;

    for (i = 0; i < 3; i++) {
        edits = 0;
        t = now();
        err = patient_rules_apply(r, b, n, "text/html", count, &edits);
        t = now() - t;
        if (t < best)
            best = t;
    }
    printf("%-34s %9zu bytes  %9.2f ms  %s, %zu edits\n", what, n, best * 1e3,
           patient_strerror(err), edits);
}

/* glibc regexec, leftmost-longest over the whole body, as the old engine ran. */
static void
glibc(const char *pattern, const char *what, const uint8_t *b, size_t n)
{
    regex_t re;
    regmatch_t pm[1];
    size_t pos = 0, found = 0;
    double t;

    if (regcomp(&re, pattern, REG_EXTENDED | REG_ICASE) != 0)
        return;
    t = now();
    while (pos < n) {
        pm[0].rm_so = (regoff_t)pos;
        pm[0].rm_eo = (regoff_t)n;
        if (regexec(&re, (const char *)b, 1, pm, REG_STARTEND) != 0)
            break;
        found++;
        pos = (size_t)(pm[0].rm_eo > pm[0].rm_so ? pm[0].rm_eo : pm[0].rm_so + 1);
    }
    t = now() - t;
    regfree(&re);
    printf("%-34s %9zu bytes  %9.2f ms  %zu matches\n", what, n, t * 1e3, found);
}

int
main(int argc, char **argv)
{
    patient_rules *r = NULL;
    char *detail = NULL;
    size_t n = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 5000000;
    uint8_t *o, *c;
    static const char tracker[] =
        "<script[^>]{0,256}[[:space:]]src[[:space:]]*=[[:space:]]*[\"']?(https?:)?//"
        "([a-z0-9-]+\\.)*(tracker\\.example|analytics\\.example|doubleclick\\.net)"
        "([/:\"'[:space:]][^>]{0,512})?>[^<]{0,64}</script[[:space:]]*>";
    static const char unbounded[] = "<script[^>]*[[:space:]]src=[^>]*tracker[^>]*>";
    char ub[512];

    if (argc < 2 || patient_rules_load(argv[1], &r, &detail) != PATIENT_OK) {
        fprintf(stderr, "usage: rules_bench RULES.json [BYTES] (%s)\n", detail ? detail : "");
        return 2;
    }
    o = ordinary(n);
    c = crafted(n);
    run(r, "patient rules, ordinary page", o, n);
    run(r, "patient rules, crafted body", c, n);
    patient_rules_free(r);
    /* The same worst case with an unbounded run, which glibc made quadratic. */
    snprintf(ub, sizeof ub,
             "{\"patient\":1,\"type\":\"rules\",\"rules\":[{\"id\":\"u\",\"match\":{\"regex\":"
             "\"%s\",\"icase\":true},\"action\":\"remove\",\"reason\":\"tracker.removed\"}]}",
             unbounded);
    if (patient_rules_parse(ub, strlen(ub), &r, NULL) != PATIENT_OK)
        return 1;
    run(r, "unbounded [^>]*, ordinary page", o, n);
    run(r, "unbounded [^>]*, crafted body", c, n);
    patient_rules_free(r);
    glibc(tracker, "glibc: tracker rule, ordinary", o, n);
    glibc(tracker, "glibc: tracker rule, crafted", c, n);
    glibc(unbounded, "glibc: unbounded, crafted 40 KB", c, 40000);
    free(o);
    free(c);
    free(detail);
    return 0;
}
