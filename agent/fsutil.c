/* fsutil.c -- file-system helpers shared by the agent's modules (the
 * server's workdir, the context store). */
#include "fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "limits.h"

int af_mkdirs(const char *dir, mode_t parent_mode, mode_t mode, af_err_t *err)
{
    char path[AF_CONTEXT_MAX_PATH];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return af_err_set(err, AF_ERR_TOOBIG, "%s: path too long", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, parent_mode) < 0 && errno != EEXIST)
            return af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return af_err_set(err, AF_ERR_IO, "%s: not a directory", path);
    return 0;
}
