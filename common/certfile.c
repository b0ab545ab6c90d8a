/* certfile.c -- a new CURVE key pair as czmq certificate files; see
 * certfile.h. czmq's zcert_save() writes both files with the process
 * umask, so the umask is narrowed to 077 around it: the secret file is
 * created 0600, never chmod-ed down after the fact. */
#include "certfile.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* longest certificate path taken (the agent allows 1023 bytes) */
#define S_PATH_MAX 4096

int af_certfile_create(const char *public_path, const char *name, const char *creator,
                       bool overwrite, char public_key[AF_CERT_Z85_LEN + 1], af_err_t *err)
{
    char secret_path[S_PATH_MAX + 8];
    if (!*public_path || strlen(public_path) >= S_PATH_MAX)
        return af_err_set(err, AF_ERR_INVAL, "certificate path \"%s\" is empty or too long",
                          public_path);
    snprintf(secret_path, sizeof secret_path, "%s_secret", public_path);
    if (!overwrite && (access(public_path, F_OK) == 0 || access(secret_path, F_OK) == 0))
        return af_err_set(err, AF_ERR_STATE, "%s or %s already exists", public_path, secret_path);
    zcert_t *cert = zcert_new();
    if (!cert)
        return af_err_set(err, AF_ERR_NOMEM, "cannot generate a key pair");
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    zcert_set_meta(cert, "name", "%s", name);
    zcert_set_meta(cert, "created-by", "%s", creator);
    zcert_set_meta(cert, "host", "%s", host);
    mode_t old = umask(077);
    /* an overwritten secret file keeps its old mode: remove it first */
    if (overwrite)
        unlink(secret_path);
    int rc = zcert_save(cert, public_path);
    int saved_errno = errno;
    umask(old);
    if (rc == 0)
        rc = chmod(public_path, 0644); /* public: readable by the service */
    if (rc) {
        zcert_destroy(&cert);
        return af_err_set(err, AF_ERR_IO, "cannot write %s: %s", public_path,
                          strerror(saved_errno ? saved_errno : errno));
    }
    snprintf(public_key, AF_CERT_Z85_LEN + 1, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}
