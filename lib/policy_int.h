/* What lib/policy.c offers the rest of the library. Never installed. */
#ifndef PATIENT_POLICY_INT_H
#define PATIENT_POLICY_INT_H

#include <cjson/cJSON.h>
#include <patient/policy.h>

/* patient_policy_parse_ex for a document already parsed by pt_json_parse
 * (root borrowed, an object inside another document: an evidence bundle's
 * "policy"), so that it is not printed and parsed again. The size cap
 * PATIENT_POLICY_MAX_BYTES applies to root's compact text
 * (pt_json_compact_len): TOO_LARGE over it. Same codes and detail
 * otherwise. */
patient_err pt_policy_from_json(const cJSON *root, unsigned flags, patient_policy **p,
                                char **detail);

/* The policy as a JSON tree, its members in the documented order
 * (docs/format/policy.md): the one writer of the policy format.
 * patient_policy_serialize prints it in the file's layout; an evidence
 * bundle carries it as its "policy" member (patient_bundle_build). New
 * tree (cJSON_Delete), NULL when p is NULL or out of memory. */
cJSON *pt_policy_json(const patient_policy *p);

#endif
