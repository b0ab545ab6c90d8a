/* push_target.c -- a BUILD's repository and registry settings, held by the
 * push workers, and the manifest they report back. Used by assemble.c
 * (native recipes), executor_buildah.c and engine.c (engine executors). */
#include "push_target.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "log.h"
#include "oci.h"

int af_push_target_from_build(af_push_target_t *self, const af_msg_t *build)
{
    memset(self, 0, sizeof *self);
    self->insecure = build->registry_insecure;
    self->docker = !strcmp(build->manifest_format, "docker");
    self->compression = !strcmp(build->compression, "zstd") ? AF_COMPRESS_ZSTD : AF_COMPRESS_GZIP;
    self->compression_level = build->compression_level;
    if (build->n_annotations &&
        !(self->annotations = calloc(build->n_annotations, sizeof *self->annotations))) {
        af_push_target_clear(self);
        return AF_ERR_NOMEM;
    }
    for (size_t i = 0; i < build->n_annotations; i++) {
        af_kv_t *kv = &self->annotations[self->n_annotations];
        kv->key = strdup(build->annotations[i].key);
        kv->value = strdup(build->annotations[i].value);
        if (kv->key || kv->value)
            self->n_annotations++;
        if (!kv->key || !kv->value) {
            af_push_target_clear(self);
            return AF_ERR_NOMEM;
        }
    }
    self->repository = strdup(build->repository);
    bool ok = self->repository != NULL;
    if (ok && build->registry_username[0])
        ok = (self->username = strdup(build->registry_username)) != NULL;
    if (ok && build->registry_password && build->registry_password[0])
        ok = (self->password = strdup(build->registry_password)) != NULL;
    if (!ok) {
        af_push_target_clear(self);
        return AF_ERR_NOMEM;
    }
    return 0;
}

int af_push_target_own_credentials(af_msg_t *build, const char *auth_file, af_err_t *err)
{
    if (!auth_file || !auth_file[0] || build->registry_username[0])
        return 0;
    af_ref_t ref;
    if (af_ref_parse(build->repository, &ref, err) < 0)
        return err ? err->code : AF_ERR_INVAL;
    char *user = NULL, *pass = NULL;
    int rc = af_credentials_lookup_file(auth_file, ref.registry, &user, &pass, err);
    if (rc == AF_ERR_NOTFOUND)
        return af_err_set(err, AF_ERR_IO, "registry_auth_file %s: no such file", auth_file);
    if (rc)
        return rc;
    if (user && strlen(user) < sizeof build->registry_username) {
        snprintf(build->registry_username, sizeof build->registry_username, "%s", user);
        if (build->registry_password) {
            explicit_bzero(build->registry_password, strlen(build->registry_password));
            free(build->registry_password);
        }
        build->registry_password = pass;
        pass = NULL;
        af_debug("registry %s: credentials from %s", ref.registry, auth_file);
    } else if (user) {
        rc = af_err_set(err, AF_ERR_TOOBIG, "registry_auth_file %s: user name for %s too long",
                        auth_file, ref.registry);
    }
    if (pass) {
        explicit_bzero(pass, strlen(pass));
        free(pass);
    }
    free(user);
    return rc;
}

void af_push_target_clear(af_push_target_t *self)
{
    if (!self)
        return;
    if (self->password) {
        explicit_bzero(self->password, strlen(self->password));
        free(self->password);
    }
    free(self->username);
    free(self->repository);
    for (size_t i = 0; i < self->n_annotations; i++) {
        free(self->annotations[i].key);
        free(self->annotations[i].value);
    }
    free(self->annotations);
    memset(self, 0, sizeof *self);
}

af_registry_t *af_push_target_open(const af_push_target_t *self, af_ref_t *ref, af_err_t *err)
{
    if (af_ref_parse(self->repository, ref, err) < 0)
        return NULL;
    if (ref->tag[0] || ref->digest[0]) {
        af_err_set(err, AF_ERR_INVAL, "repository %s must not carry a tag or digest",
                   self->repository);
        return NULL;
    }
    af_registry_opts_t opts = {
        .insecure = self->insecure, .username = self->username, .password = self->password};
    af_registry_t *reg = af_registry_new(ref->registry, &opts, err);
    if (!reg && err && !err->code)
        af_err_set(err, AF_ERR_NET, "cannot open a registry client for %s", self->repository);
    return reg;
}

int af_push_target_report(af_worker_ctx_t *ctx, const char *digest, const char *media_type,
                          size_t size, af_err_t *err)
{
    char size_s[32];
    snprintf(size_s, sizeof size_s, "%zu", size);
    if (af_worker_output(ctx, digest) < 0 || af_worker_output(ctx, media_type) < 0 ||
        af_worker_output(ctx, size_s) < 0)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    return 0;
}

int af_push_target_report_pushed(af_worker_ctx_t *ctx, uint64_t pushed_bytes, af_err_t *err)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRIu64, pushed_bytes);
    if (af_worker_output(ctx, s) < 0)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    return 0;
}

void af_push_target_outcome(af_job_outcome_t *out, int code, const char *message,
                            const char *const *outputs, size_t n_outputs, bool cancelled,
                            int32_t exit_code)
{
    memset(out, 0, sizeof *out);
    out->exit_code = exit_code;
    out->pushed_bytes = -1;
    if (code == 0 && !cancelled && n_outputs >= 3) {
        out->ok = true;
        snprintf(out->digest, sizeof out->digest, "%s", outputs[0]);
        snprintf(out->media_type, sizeof out->media_type, "%s", outputs[1]);
        out->size = strtoull(outputs[2], NULL, 10);
        if (n_outputs >= 4) {
            unsigned long long n = strtoull(outputs[3], NULL, 10);
            out->pushed_bytes = n > (unsigned long long)INT64_MAX ? -1 : (int64_t)n;
        }
    } else if (code == AF_ERR_CANCELLED || cancelled)
        af_job_outcome_fail(out, "cancelled", exit_code, "cancelled while pushing");
    else
        /* the registry refusing us or unreachable: no other node would do
         * better, and the coordinator exits 3 for it */
        af_job_outcome_fail(out,
                            code == AF_ERR_AUTH || code == AF_ERR_NET || code == AF_ERR_TIMEOUT
                                ? "registry"
                                : "infra",
                            exit_code, "%s", message && message[0] ? message : af_strerror(code));
}
