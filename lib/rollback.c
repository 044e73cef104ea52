/* Rollback: the highest manifest version the endpoint has seen per origin
 * (the state file, locked, 0600 in a 0700 folder, written atomically), and
 * the check that a manifest is not older than that. A manifest replayed
 * from before a publish is invalid (manifest.rollback); a state file that
 * cannot be used is a warning (state.unavailable), never a silent pass.
 * The publisher's own side (versions only go up) is in manifest_publish.c;
 * a transparency log's tree going back is the monitor's (tlog_client.c). */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <patient/verify.h>
#include "report_int.h"
#include "verify_int.h"
#include "util.h"

#define STATE_MAX (4u * 1024 * 1024)

patient_err
patient_state_file_default(char **path)
{
    return pt_xdg_path("XDG_STATE_HOME", ".local/state", "patient/versions.json", path);
}

/* Check the version against the state file and (unless readonly) record
 * it. *seen gets the highest version seen before (0 when none). The file
 * is locked so concurrent verifiers do not lose updates. */
static patient_err
state_check(const char *path, const char *origin, uint64_t version, int readonly, uint64_t *seen)
{
    char lockpath[PATH_MAX];
    int lfd = -1;
    uint8_t *data = NULL;
    size_t len = 0;
    cJSON *doc = NULL, *item;
    patient_err err = PATIENT_OK;
    char *text = NULL;

    *seen = 0;
    if (snprintf(lockpath, sizeof lockpath, "%s.lock", path) >= (int)sizeof lockpath)
        return PATIENT_ERR_ARG;
    {
        /* The state file's folder: created 0700, ours, not writable by others. */
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        if (slash != NULL && slash != path) {
            if ((size_t)(slash - path) >= sizeof dir)
                return PATIENT_ERR_ARG;
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = 0;
            if ((err = pt_mkdir_private(dir)) != PATIENT_OK)
                return err;
        }
    }
    if (!readonly) {
        if ((lfd = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
            return PATIENT_ERR_IO;
        flock(lfd, LOCK_EX);
    }
    err = pt_read_file(path, STATE_MAX, &data, &len);
    if (err == PATIENT_ERR_NOT_FOUND) {
        doc = cJSON_CreateObject();
        err = PATIENT_OK;
    } else if (err == PATIENT_OK) {
        if (pt_json_parse((const char *)data, len, &doc) != PATIENT_OK || !cJSON_IsObject(doc)) {
            /* A damaged state file must not silently disable rollback
             * protection: report it. */
            err = PATIENT_ERR_PARSE;
            goto out;
        }
    } else {
        goto out;
    }
    if (doc == NULL) {
        err = PATIENT_ERR_NOMEM;
        goto out;
    }
    item = cJSON_GetObjectItemCaseSensitive(doc, origin);
    {
        long long v;
        if (item != NULL && (pt_json_item_int(item, &v) != 0 || v < 0)) {
            err = PATIENT_ERR_PARSE; /* as damaged as unparsable JSON */
            goto out;
        }
        if (item != NULL)
            *seen = (uint64_t)v;
    }
    if (!readonly && version > *seen) {
        cJSON_DeleteItemFromObjectCaseSensitive(doc, origin);
        cJSON_AddNumberToObject(doc, origin, (double)version);
        if ((text = cJSON_Print(doc)) == NULL) {
            err = PATIENT_ERR_NOMEM;
            goto out;
        }
        err = pt_write_atomic(path, text, strlen(text), 0600, 0);
    }
out:
    free(text);
    free(data);
    cJSON_Delete(doc);
    if (lfd >= 0)
        close(lfd);
    return err;
}

void
pt_rollback_check(patient_report *r, const patient_verify_opts *opts, const char *origin,
                  uint64_t version)
{
    uint64_t seen = 0;
    patient_err se = state_check(opts->state_file, origin, version,
                                 opts->no_state_update || r->worst >= REP_INVALID, &seen);

    if (se != PATIENT_OK)
        rep_result(r, REP_WARNING, "state.unavailable", opts->state_file,
                   "could not use the rollback state file (%s): rollback not checked",
                   patient_strerror(se));
    else if (version < seen)
        rep_result(r, REP_INVALID, "manifest.rollback", "manifest.json",
                   "manifest version %llu is older than version %llu seen before: an "
                   "old manifest is being replayed",
                   (unsigned long long)version, (unsigned long long)seen);
}
