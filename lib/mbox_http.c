/* The HTTP response around a middlebox's body: whether it may be changed at
 * all, and which headers a changed one must drop. Header: patient/mbox.h. */
#include "config.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <patient/mbox.h>

/* Is token one directive of a comma-separated list such as Cache-Control
 * (case-insensitive; a directive may carry "=value")? */
static int
has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && (p = strcasestr(p, token)) != NULL; p += n) {
        int left = p == value || strchr(" \t,", p[-1]);
        int right = p[n] == 0 || strchr(" \t,;=", p[n]);
        if (left && right)
            return 1;
    }
    return 0;
}

const char *
patient_mbox_may_change(int status, const char *cache_control, unsigned flags)
{
    if (status == 206)
        return "partial content";
    if (!(flags & PATIENT_MBOX_IGNORE_NO_TRANSFORM) && cache_control &&
        has_token(cache_control, "no-transform"))
        return "Cache-Control: no-transform";
    return NULL;
}

const char *const *
patient_mbox_drop_headers(void)
{
    static const char *const names[] = {
        "Content-Length", "ETag", "Content-MD5", "Digest", "Content-Digest",
        "Repr-Digest", "Unencoded-Digest", "Accept-Ranges", NULL,
    };
    return names;
}
