/* What a tool prints of bytes it did not write itself: strings from a log
 * made safe for a terminal. */
#include "config.h"

#include <stdio.h>

#include "cli.h"

void
cli_print_safe(const char *s)
{
    for (; s && *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}
