/* patient — accountable changes to web content in transit.
 * Umbrella header: include this one. What may change between versions
 * (opaque handles, *_opts that grow by their size member, value structs
 * frozen at the first promised release): README, "Library versioning". */
#ifndef PATIENT_PATIENT_H
#define PATIENT_PATIENT_H

#include <patient/error.h>
#include <patient/hash.h>
#include <patient/key.h>
#include <patient/jws.h>
#include <patient/log.h>
#include <patient/tlog.h>
#include <patient/manifest.h>
#include <patient/policy.h>
#include <patient/fetch.h>
#include <patient/disclosure.h>
#include <patient/change.h>
#include <patient/gzip.h>
#include <patient/rules.h>
#include <patient/verify.h>
#include <patient/bundle.h>
#include <patient/native.h>
#include <patient/mbox.h>
#include <patient/time.h>
#include <patient/url.h>
#include <patient/tls.h>
#include <patient/inspect.h>
#include <patient/file.h>

#endif
