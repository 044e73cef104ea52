/* TLS protocol versions: the one list of names descriptors, disclosures and
 * policies accept, and their order. Public face: <patient/tls.h>. */
#include "config.h"

#include <string.h>

#include <patient/tls.h>

static const char *const TLS_NAMES[] = {"SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1", "TLSv1.2",
                                        "TLSv1.3"};
static const int TLS_RANKS[] = {1, 2, 2, 3, 4, 5};

int
patient_tls_version_rank(const char *v)
{
    if (v == NULL)
        return 0;
    for (size_t i = 0; i < sizeof TLS_NAMES / sizeof TLS_NAMES[0]; i++)
        if (strcmp(v, TLS_NAMES[i]) == 0)
            return TLS_RANKS[i];
    return 0;
}
