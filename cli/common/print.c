/* What a tool prints of bytes it did not write itself: strings from a log
 * made safe for a terminal, and the tree roots of `audit
 * verify-consistency` in base64. */
#include "config.h"

#include <stdio.h>
#include <sodium.h>

#include "cli.h"

void
cli_print_safe(const char *s)
{
    for (; s && *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

void
cli_b64(const uint8_t *bin, size_t len, char *out, size_t cap)
{
    sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_ORIGINAL);
}
