/* The folder of descriptors a streaming middlebox serves by reference:
 * atomic store with an in-flight lock, and pruning by age and count that
 * leaves locked (in-flight) files alone. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <patient/mbox.h>
#include "util.h"

#define REF_ID_MAX 64
/* A temporary file this old is a crash's leftover, not a store under way. */
#define REF_TMP_AGE 3600

/* Length of the id at the start of name (hex digits), 0 if none. */
static size_t
hex_prefix(const char *name)
{
    size_t n = strspn(name, "0123456789abcdef");
    return n <= REF_ID_MAX ? n : 0;
}

/* dir/id into path; -1 when an argument is missing, id is not 1-64
 * lower-case hex digits (no path of the caller's choosing) or it does not
 * fit. */
static int
ref_path(const char *dir, const char *id, char *path, size_t size)
{
    size_t n;

    if (dir == NULL || id == NULL)
        return -1;
    n = strlen(id);
    if (n == 0 || hex_prefix(id) != n)
        return -1;
    return snprintf(path, size, "%s/%s", dir, id) < (int)size ? 0 : -1;
}

patient_err
patient_refdir_store(const char *dir, const char *id, const char *value, int *lock_fd)
{
    char path[4200], tmp[4210];
    int fd;

    if (lock_fd)
        *lock_fd = -1;
    if (value == NULL || lock_fd == NULL || ref_path(dir, id, path, sizeof path) != 0)
        return PATIENT_ERR_ARG;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
        return PATIENT_ERR_IO;
    /* Locked before the name appears: a pruner never sees it unlocked
     * while the response that refers to it is in flight. */
    if (flock(fd, LOCK_SH) != 0)
        goto fail;
    if (pt_write_all(fd, value, strlen(value)) != PATIENT_OK)
        goto fail;
    if (rename(tmp, path) != 0)
        goto fail;
    *lock_fd = fd;
    return PATIENT_OK;
fail:
    {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
    }
    return PATIENT_ERR_IO;
}

patient_err
patient_refdir_remove(const char *dir, const char *id, int *lock_fd)
{
    char path[4200];
    patient_err err = PATIENT_OK;

    if (lock_fd && *lock_fd >= 0) {
        close(*lock_fd);
        *lock_fd = -1;
    }
    if (ref_path(dir, id, path, sizeof path) != 0)
        return PATIENT_ERR_ARG;
    if (unlink(path) != 0 && errno != ENOENT)
        err = PATIENT_ERR_IO;
    return err;
}

struct ref_ent {
    time_t mtime;
    char name[REF_ID_MAX + 1];
};

static int
by_mtime(const void *a, const void *b)
{
    const struct ref_ent *x = a, *y = b;
    if (x->mtime != y->mtime)
        return x->mtime < y->mtime ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Unlink name unless a response holds it locked. 1 removed, 0 kept. */
static int
remove_unlocked(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), gone = 0;

    if (fd < 0)
        return 0;
    /* Unlinked while we hold the exclusive lock: no response can take
     * the file up in between (they lock before the name exists). */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        gone = unlinkat(dfd, name, 0) == 0;
    close(fd);
    return gone;
}

patient_err
patient_refdir_prune(const char *dir, time_t now, uint64_t max_age, size_t max_count,
                     size_t *removed)
{
    struct ref_ent *ents = NULL;
    size_t n = 0, cap = 0, gone = 0, keep;
    struct dirent *de;
    DIR *dp = NULL;
    int dfd;
    patient_err err = PATIENT_ERR_IO;

    if (removed)
        *removed = 0;
    if (dir == NULL)
        return PATIENT_ERR_ARG;
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return PATIENT_ERR_IO;
    if ((dp = fdopendir(dfd)) == NULL) {
        close(dfd);
        return PATIENT_ERR_IO;
    }
    while ((de = readdir(dp)) != NULL) {
        size_t h = hex_prefix(de->d_name), len = strlen(de->d_name);
        struct stat st;
        int tmp;
        if (h == 0 || (len != h && strcmp(de->d_name + h, ".tmp") != 0))
            continue;
        tmp = len != h;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (tmp) {
            if (now - st.st_mtime > REF_TMP_AGE)
                gone += remove_unlocked(dfd, de->d_name);
            continue;
        }
        if (max_age && now > st.st_mtime && (uint64_t)(now - st.st_mtime) > max_age) {
            gone += remove_unlocked(dfd, de->d_name);
            continue;
        }
        if (max_count == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            struct ref_ent *ne = realloc(ents, ncap * sizeof *ne);
            if (ne == NULL) {
                err = PATIENT_ERR_NOMEM;
                goto out;
            }
            ents = ne;
            cap = ncap;
        }
        ents[n].mtime = st.st_mtime;
        memcpy(ents[n].name, de->d_name, h + 1);
        n++;
    }
    /* Over the count: the oldest go first; a locked one stays and does
     * not make a newer one go in its place. */
    if (max_count && n > max_count) {
        qsort(ents, n, sizeof *ents, by_mtime);
        keep = n - max_count;
        for (size_t i = 0; i < keep; i++)
            gone += remove_unlocked(dfd, ents[i].name);
    }
    err = PATIENT_OK;
out:
    if (removed)
        *removed = gone;
    free(ents);
    closedir(dp); /* closes dfd */
    return err;
}
