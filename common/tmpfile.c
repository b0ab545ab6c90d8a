/* tmpfile.c -- see tmpfile.h. */
#include "tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int af_tmpfile(const char *dir, const char *prefix, af_err_t *err)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        char *path = NULL;
        if (asprintf(&path, "%s/%s-XXXXXX", dir, prefix) < 0) {
            af_err_set(err, AF_ERR_NOMEM, "out of memory");
            return -1;
        }
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0)
            unlink(path);
        free(path);
    }
    if (fd < 0)
        af_err_set(err, AF_ERR_IO, "cannot create a temp file in %s: %s", dir, strerror(errno));
    return fd;
}
