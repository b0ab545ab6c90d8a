/* authfile.c -- writes the private Docker-style auth file an engine reads
 * its registry credentials from (mode 0600, zeroed buffers). See engine.h. */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"
#include "digest.h"
#include "job.h"
#include "log.h"
#include "oci.h"
#include "process.h"
#include "ref.h"
#include "registry.h"

extern char **environ;

int af_engine_auth_file_write(const char *path, const char *repository, const char *username,
                              const char *password, af_err_t *err)
{
    af_ref_t ref;
    int rc = af_ref_parse(repository, &ref, err);
    if (rc < 0)
        return rc;
    char *b64 = af_base64_user_pass(username, password);
    char *text = NULL;
    json_t *root = NULL;
    int fd = -1;
    if (!b64) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    root = json_pack("{s:{s:{s:s}}}", "auths", ref.registry, "auth", (const char *)b64);
    if (!root || !(text = json_dumps(root, JSON_COMPACT))) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t tl = strlen(text);
    if (fd < 0 || write(fd, text, tl) != (ssize_t)tl) {
        rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    if (b64) {
        explicit_bzero(b64, strlen(b64));
        free(b64);
    }
    if (text) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    json_decref(root); /* jansson keeps its own copy of the string */
    return rc;
}
