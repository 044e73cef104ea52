/* libFuzzer harness: the strict JSON reader (pt_json_parse) and its number
 * reader. Checks pt_json_number_token against a second, independent
 * reading of the RFC 8259 number grammar, and that pt_json_item_int on a
 * parsed one-element array agrees with the text: an integer only when the
 * literal is one (no fraction, exponent or minus zero), whatever double it
 * makes. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"

#include "common.h"

static int
dig(char c)
{
    return c >= '0' && c <= '9';
}

/* Reference: length of the longest valid number prefix under the grammar
 * -? int frac? exp?, and whether it is an integer literal; -1 if none or if
 * a number character follows it. Written as a separate scan on purpose. */
static long
ref_token(const char *s, size_t n, int *is_int)
{
    size_t i = 0, int_start, int_len;
    int frac = 0, exp = 0;

    if (i < n && s[i] == '-')
        i++;
    int_start = i;
    while (i < n && dig(s[i]))
        i++;
    int_len = i - int_start;
    if (int_len == 0 || (int_len > 1 && s[int_start] == '0'))
        return -1;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && dig(s[i]))
            i++;
        if (i == f)
            return -1;
        frac = 1;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        e = i;
        while (i < n && dig(s[i]))
            i++;
        if (i == e)
            return -1;
        exp = 1;
    }
    if (i < n && (dig(s[i]) || strchr(".eE+-", s[i]) != NULL) && s[i] != 0)
        return -1;
    *is_int = !frac && !exp && !(s[0] == '-' && int_len == 1 && s[int_start] == '0');
    return (long)i;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t tl = 0;
    int a = -1, b = -1;
    long want = ref_token(s, size, &b);
    int got = pt_json_number_token(s, size, &tl, &a);
    cJSON *j = NULL;
    char *doc;

    if ((got == 0) != (want >= 0))
        abort();
    if (got == 0 && ((long)tl != want || a != b || tl > size))
        abort();

    /* The same bytes as the one element of an array, through the parser. */
    if (size > 4096 || (doc = malloc(size + 2)) == NULL)
        return 0;
    doc[0] = '[';
    memcpy(doc + 1, data, size);
    doc[size + 1] = ']';
    if (pt_json_parse(doc, size + 2, &j) == PATIENT_OK) {
        const cJSON *v = cJSON_GetArrayItem(j, 0);
        long long x;
        if (cJSON_GetArraySize(j) == 1 && cJSON_IsNumber(v)) {
            /* Skip leading whitespace to find the literal cJSON read. */
            size_t o = 0;
            int is_int = 0;
            while (o < size && strchr(" \t\r\n", s[o]) != NULL && s[o] != 0)
                o++;
            if (ref_token(s + o, size - o, &is_int) < 0)
                abort(); /* the parser took a number the grammar refuses */
            if (pt_json_item_int(v, &x) == 0 && !is_int)
                abort(); /* 48.0, 48e0, -0 read as an integer */
            if (is_int && pt_json_item_int(v, &x) == 0 && (double)x != v->valuedouble)
                abort();
        }
        cJSON_Delete(j);
    }
    free(doc);
    return 0;
}
