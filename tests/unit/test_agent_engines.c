/* test_agent_engines.c -- agent/engine: the Dockerfile executors' argv,
 * metadata and helper files.
 *
 * Pins the exact argv buildctl, docker buildx and buildah get for a BUILD
 * (no engine daemon can run in CI, so for buildctl and docker this is the
 * test), that hostile build args, targets, repositories and Dockerfile
 * paths either stay one argv element or are refused, BuildKit metadata
 * parsing (containerimage.digest / .descriptor) and its malformed forms,
 * digest files, the 0600 auth file, the engine environment, and the
 * sh-wrapper that runs an argv list through process.c with a real child:
 * what the child receives is exactly the list. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "limits.h"
#include "process.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static af_platform_t s_arm64 = {"linux", "arm64", ""};
static af_platform_t s_armv7 = {"linux", "arm", "v7"};

/* A BUILD-like spec: K=V, LABEL_VALUE="a b", target final, arm64. */
static af_engine_spec_t s_spec(af_kv_t *args, size_t n)
{
    return (af_engine_spec_t){
        .context_dir = "/w/job/ctx",
        .dockerfile = "Dockerfile",
        .platform = &s_arm64,
        .build_args = args,
        .n_build_args = n,
        .target = "final",
        .repository = "127.0.0.1:5000/team/app",
        .insecure = false,
        .source_date_epoch = -1,
        .metadata_file = "/w/job/engine/metadata.json",
        .storage_root = "/w/job/buildah/root",
        .run_root = "/w/job/buildah/run",
        .image = "localhost/archfarm-slice:latest",
        .iid_file = "/w/job/buildah/iid",
        .auth_file = NULL,
        .oci_dir = "/w/job/buildah/oci",
        .digest_file = "/w/job/buildah/digest",
    };
}

static void s_assert_argv(char **argv, const char *const *want)
{
    assert_non_null(argv);
    size_t i = 0;
    for (; want[i]; i++) {
        if (!argv[i])
            fail_msg("argv ends at %zu, expected \"%s\"", i, want[i]);
        if (strcmp(argv[i], want[i]))
            fail_msg("argv[%zu] = \"%s\", expected \"%s\"", i, argv[i], want[i]);
    }
    if (argv[i])
        fail_msg("unexpected argv[%zu] = \"%s\"", i, argv[i]);
}

static size_t s_count(char **argv)
{
    size_t n = 0;
    while (argv[n])
        n++;
    return n;
}

static af_kv_t s_args2[] = {{"K", "V"}, {"LABEL_VALUE", "a b"}};

/* --- exact argv ----------------------------------------------------------- */

static void buildctl_argv_is_exact(void **state)
{
    af_engine_spec_t spec = s_spec(s_args2, 2);
    char **argv = af_engine_argv_buildctl(&spec, NULL);
    const char *want[] = {"buildctl",
                          "build",
                          "--frontend",
                          "dockerfile.v0",
                          "--local",
                          "context=/w/job/ctx",
                          "--local",
                          "dockerfile=/w/job/ctx",
                          "--opt",
                          "filename=Dockerfile",
                          "--opt",
                          "platform=linux/arm64",
                          "--opt",
                          "build-arg:K=V",
                          "--opt",
                          "build-arg:LABEL_VALUE=a b",
                          "--opt",
                          "target=final",
                          "--output",
                          "type=image,name=127.0.0.1:5000/team/app,push-by-digest=true,push=true",
                          "--metadata-file",
                          "/w/job/engine/metadata.json",
                          NULL};
    s_assert_argv(argv, want);
    af_engine_argv_free(&argv);
    assert_null(argv);
}

static void buildctl_argv_subdir_dockerfile_insecure_registry_and_epoch(void **state)
{
    af_engine_spec_t spec = s_spec(NULL, 0);
    spec.dockerfile = "docker/Dockerfile.prod";
    spec.target = "";
    spec.platform = &s_armv7;
    spec.insecure = true;
    spec.source_date_epoch = 1700000000;
    char **argv = af_engine_argv_buildctl(&spec, NULL);
    const char *want[] = {"buildctl",
                          "build",
                          "--frontend",
                          "dockerfile.v0",
                          "--local",
                          "context=/w/job/ctx",
                          "--local",
                          "dockerfile=/w/job/ctx/docker",
                          "--opt",
                          "filename=Dockerfile.prod",
                          "--opt",
                          "platform=linux/arm/v7",
                          "--opt",
                          "build-arg:SOURCE_DATE_EPOCH=1700000000",
                          "--output",
                          "type=image,name=127.0.0.1:5000/team/app,push-by-digest=true,push=true,"
                          "registry.insecure=true",
                          "--metadata-file",
                          "/w/job/engine/metadata.json",
                          NULL};
    s_assert_argv(argv, want);
    af_engine_argv_free(&argv);
}

static void docker_argv_is_exact(void **state)
{
    af_engine_spec_t spec = s_spec(s_args2, 2);
    char **argv = af_engine_argv_docker(&spec, NULL);
    const char *want[] = {"docker",
                          "buildx",
                          "build",
                          "--platform",
                          "linux/arm64",
                          "-f",
                          "/w/job/ctx/Dockerfile",
                          "--build-arg",
                          "K=V",
                          "--build-arg",
                          "LABEL_VALUE=a b",
                          "--target",
                          "final",
                          "--provenance=false",
                          "--output",
                          "type=image,name=127.0.0.1:5000/team/app,push-by-digest=true,push=true",
                          "--metadata-file",
                          "/w/job/engine/metadata.json",
                          "/w/job/ctx",
                          NULL};
    s_assert_argv(argv, want);
    af_engine_argv_free(&argv);
}

static void docker_argv_insecure_registry_and_epoch(void **state)
{
    af_engine_spec_t spec = s_spec(NULL, 0);
    spec.target = NULL;
    spec.insecure = true;
    spec.source_date_epoch = 0;
    char **argv = af_engine_argv_docker(&spec, NULL);
    const char *want[] = {"docker",
                          "buildx",
                          "build",
                          "--platform",
                          "linux/arm64",
                          "-f",
                          "/w/job/ctx/Dockerfile",
                          "--build-arg",
                          "SOURCE_DATE_EPOCH=0",
                          "--provenance=false",
                          "--output",
                          "type=image,name=127.0.0.1:5000/team/app,push-by-digest=true,push=true,"
                          "registry.insecure=true",
                          "--metadata-file",
                          "/w/job/engine/metadata.json",
                          "/w/job/ctx",
                          NULL};
    s_assert_argv(argv, want);
    af_engine_argv_free(&argv);
}

static void buildah_build_argv_is_exact(void **state)
{
    af_engine_spec_t spec = s_spec(s_args2, 2);
    spec.platform = &s_armv7;
    spec.insecure = true;
    spec.source_date_epoch = 0;
    spec.auth_file = "/w/job/buildah/auth.json";
    char **argv = af_engine_argv_buildah_build(&spec, NULL);
    const char *want[] = {"buildah",
                          "--root",
                          "/w/job/buildah/root",
                          "--runroot",
                          "/w/job/buildah/run",
                          "--storage-driver",
                          "vfs",
                          "build",
                          "--platform",
                          "linux/arm/v7",
                          "-f",
                          "/w/job/ctx/Dockerfile",
                          "--build-arg",
                          "K=V",
                          "--build-arg",
                          "LABEL_VALUE=a b",
                          "--target",
                          "final",
                          "--layers=false",
                          "--isolation",
                          "chroot",
                          "--timestamp",
                          "0",
                          "--tls-verify=false",
                          "--authfile",
                          "/w/job/buildah/auth.json",
                          "--iidfile",
                          "/w/job/buildah/iid",
                          "-t",
                          "localhost/archfarm-slice:latest",
                          "/w/job/ctx",
                          NULL};
    s_assert_argv(argv, want);
    af_engine_argv_free(&argv);
}

static void buildah_build_argv_minimal(void **state)
{
    af_engine_spec_t spec = s_spec(NULL, 0);
    spec.target = "";
    char **argv = af_engine_argv_buildah_build(&spec, NULL);
    const char *want[] = {"buildah",
                          "--root",
                          "/w/job/buildah/root",
                          "--runroot",
                          "/w/job/buildah/run",
                          "--storage-driver",
                          "vfs",
                          "build",
                          "--platform",
                          "linux/arm64",
                          "-f",
                          "/w/job/ctx/Dockerfile",
                          "--layers=false",
                          "--isolation",
                          "chroot",
                          "--iidfile",
                          "/w/job/buildah/iid",
                          "-t",
                          "localhost/archfarm-slice:latest",
                          "/w/job/ctx",
                          NULL};
    s_assert_argv(argv, want);
    af_engine_argv_free(&argv);
}

static void buildah_push_argv_is_exact_and_writes_no_tag(void **state)
{
    af_engine_spec_t spec = s_spec(NULL, 0);
    char **argv = af_engine_argv_buildah_push(&spec, NULL);
    const char *want[] = {"buildah",
                          "--root",
                          "/w/job/buildah/root",
                          "--runroot",
                          "/w/job/buildah/run",
                          "--storage-driver",
                          "vfs",
                          "push",
                          "--quiet",
                          "--digestfile",
                          "/w/job/buildah/digest",
                          "localhost/archfarm-slice:latest",
                          "oci:/w/job/buildah/oci",
                          NULL};
    s_assert_argv(argv, want);
    for (char **p = argv; *p; p++)
        assert_null(strstr(*p, "docker://")); /* never a registry tag */
    af_engine_argv_free(&argv);
}

static void buildah_push_refuses_colon_in_layout_path(void **state)
{
    af_engine_spec_t spec = s_spec(NULL, 0);
    spec.oci_dir = "/w/job:evil/oci";
    af_err_t err = {0};
    assert_null(af_engine_argv_buildah_push(&spec, &err));
    assert_int_equal(err.code, AF_ERR_INVAL);
}

/* --- injection ------------------------------------------------------------- */

static const char *s_evil =
    "x; rm -rf / $(id) `id` \"'\n--push=false,push=false --output=type=local";

static void build_arg_value_stays_one_argv_element(void **state)
{
    af_kv_t args[] = {{"LABEL_VALUE", (char *)s_evil}};
    af_engine_spec_t spec = s_spec(args, 1);
    char expect_eq[512], expect_opt[512];
    snprintf(expect_eq, sizeof expect_eq, "LABEL_VALUE=%s", s_evil);
    snprintf(expect_opt, sizeof expect_opt, "build-arg:LABEL_VALUE=%s", s_evil);

    af_engine_spec_t plain = s_spec(NULL, 0);
    char **(*fns[])(const af_engine_spec_t *, af_err_t *) = {
        af_engine_argv_buildctl, af_engine_argv_docker, af_engine_argv_buildah_build};
    const char *expect[] = {expect_opt, expect_eq, expect_eq};
    for (size_t f = 0; f < 3; f++) {
        char **with = fns[f](&spec, NULL);
        char **without = fns[f](&plain, NULL);
        assert_non_null(with);
        assert_non_null(without);
        /* exactly two more elements: the flag and the whole K=V */
        assert_int_equal(s_count(with), s_count(without) + 2);
        size_t hits = 0;
        for (char **p = with; *p; p++)
            if (!strcmp(*p, expect[f]))
                hits++;
        assert_int_equal(hits, 1);
        af_engine_argv_free(&with);
        af_engine_argv_free(&without);
    }
}

static void build_arg_bad_names_are_refused(void **state)
{
    const char *bad[] = {"", "1A", "A-B", "A B", "--opt", "A=B", "K;id", "K$", "ä"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_kv_t args[] = {{(char *)bad[i], "v"}};
        af_engine_spec_t spec = s_spec(args, 1);
        af_err_t err = {0};
        assert_null(af_engine_argv_buildctl(&spec, &err));
        assert_int_equal(err.code, AF_ERR_INVAL);
        assert_null(af_engine_argv_docker(&spec, NULL));
        assert_null(af_engine_argv_buildah_build(&spec, NULL));
    }
    assert_true(af_engine_valid_key("_x9"));
    assert_true(af_engine_valid_key("LABEL_VALUE"));
    assert_false(af_engine_valid_key(NULL));
}

static void target_that_could_be_a_flag_or_option_is_refused(void **state)
{
    const char *bad[] = {"-x", "--push", "a,b", "a b", "a=b", "a\nb", ".x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_engine_spec_t spec = s_spec(NULL, 0);
        spec.target = bad[i];
        af_err_t err = {0};
        assert_null(af_engine_argv_buildctl(&spec, &err));
        assert_int_equal(err.code, AF_ERR_INVAL);
        assert_null(af_engine_argv_docker(&spec, NULL));
        assert_null(af_engine_argv_buildah_build(&spec, NULL));
    }
    af_engine_spec_t ok = s_spec(NULL, 0);
    ok.target = "build-env_1.2";
    char **argv = af_engine_argv_docker(&ok, NULL);
    assert_non_null(argv);
    af_engine_argv_free(&argv);
}

static void repository_that_could_add_output_options_is_refused(void **state)
{
    const char *bad[] = {"127.0.0.1:5000/a,push=false",
                         "Host/App",
                         "host/a=b",
                         "-host/x",
                         "host",
                         "host/a b",
                         "",
                         "host/a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_engine_spec_t spec = s_spec(NULL, 0);
        spec.repository = bad[i];
        af_err_t err = {0};
        assert_null(af_engine_argv_buildctl(&spec, &err));
        assert_int_equal(err.code, AF_ERR_INVAL);
        assert_null(af_engine_argv_docker(&spec, NULL));
    }
}

static void dockerfile_outside_the_context_is_refused(void **state)
{
    const char *bad[] = {"../Dockerfile", "/etc/passwd", "a/../../x", ".."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_engine_spec_t spec = s_spec(NULL, 0);
        spec.dockerfile = bad[i];
        af_err_t err = {0};
        assert_null(af_engine_argv_buildah_build(&spec, &err));
        assert_int_equal(err.code, AF_ERR_UNSAFE);
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

static void platform_build_args_are_dropped_the_platform_wins(void **state)
{
    af_kv_t args[] = {
        {"TARGETARCH", "evil"}, {"TARGETPLATFORM", "linux/s390x"}, {"BUILDARCH", "x"}, {"K", "V"}};
    af_engine_spec_t spec = s_spec(args, 4);
    char **argv = af_engine_argv_buildctl(&spec, NULL);
    assert_non_null(argv);
    for (char **p = argv; *p; p++) {
        assert_null(strstr(*p, "TARGET"));
        assert_null(strstr(*p, "BUILDARCH"));
    }
    af_engine_argv_free(&argv);
    assert_true(af_engine_is_platform_arg("TARGETVARIANT"));
    assert_true(af_engine_is_platform_arg("BUILDPLATFORM"));
    assert_false(af_engine_is_platform_arg("LABEL_VALUE"));
}

static void user_source_date_epoch_build_arg_wins(void **state)
{
    af_kv_t args[] = {{"SOURCE_DATE_EPOCH", "42"}};
    af_engine_spec_t spec = s_spec(args, 1);
    spec.source_date_epoch = 7;
    char **argv = af_engine_argv_buildctl(&spec, NULL);
    size_t n = 0;
    for (char **p = argv; *p; p++)
        if (strstr(*p, "SOURCE_DATE_EPOCH")) {
            assert_string_equal(*p, "build-arg:SOURCE_DATE_EPOCH=42");
            n++;
        }
    assert_int_equal(n, 1);
    af_engine_argv_free(&argv);
}

static void relative_paths_and_missing_fields_are_refused(void **state)
{
    af_engine_spec_t spec = s_spec(NULL, 0);
    spec.context_dir = "ctx";
    assert_null(af_engine_argv_docker(&spec, NULL));
    spec = s_spec(NULL, 0);
    spec.metadata_file = NULL;
    assert_null(af_engine_argv_buildctl(&spec, NULL));
    spec = s_spec(NULL, 0);
    spec.storage_root = "root";
    assert_null(af_engine_argv_buildah_build(&spec, NULL));
    spec = s_spec(NULL, 0);
    spec.platform = NULL;
    assert_null(af_engine_argv_buildah_build(&spec, NULL));
    assert_int_equal(af_engine_spec_check(NULL, NULL), AF_ERR_INVAL);
}

/* --- metadata -------------------------------------------------------------- */

static int s_meta(const char *json, af_engine_image_t *img, af_err_t *err)
{
    return af_engine_metadata_parse(json, strlen(json), img, err);
}

static void metadata_digest_and_descriptor_are_read(void **state)
{
    af_engine_image_t img;
    const char *j =
        "{\"buildx.build.ref\":\"b/b/x\",\"containerimage.config.digest\":\"" D2 "\","
        "\"containerimage.descriptor\":{\"mediaType\":"
        "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":502},"
        "\"containerimage.digest\":\"" D1 "\",\"image.name\":\"127.0.0.1:5000/team/app\"}";
    assert_int_equal(s_meta(j, &img, NULL), 0);
    assert_string_equal(img.digest, D1);
    assert_string_equal(img.media_type, "application/vnd.oci.image.manifest.v1+json");
    assert_int_equal(img.size, 502);
}

static void metadata_docker_media_type_is_accepted(void **state)
{
    af_engine_image_t img;
    const char *j = "{\"containerimage.descriptor\":{\"mediaType\":"
                    "\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D1
                    "\",\"size\":428},\"containerimage.digest\":\"" D1 "\"}";
    assert_int_equal(s_meta(j, &img, NULL), 0);
    assert_string_equal(img.media_type, "application/vnd.docker.distribution.manifest.v2+json");
}

static void metadata_digest_only_leaves_type_and_size_to_the_registry(void **state)
{
    af_engine_image_t img;
    assert_int_equal(s_meta("{\"containerimage.digest\":\"" D1 "\"}", &img, NULL), 0);
    assert_string_equal(img.digest, D1);
    assert_string_equal(img.media_type, "");
    assert_int_equal(img.size, 0);
}

static void metadata_index_from_attestations_is_refused(void **state)
{
    af_engine_image_t img;
    af_err_t err = {0};
    const char *j = "{\"containerimage.descriptor\":{\"mediaType\":"
                    "\"application/vnd.oci.image.index.v1+json\",\"digest\":\"" D1
                    "\",\"size\":900},\"containerimage.digest\":\"" D1 "\"}";
    assert_int_equal(s_meta(j, &img, &err), AF_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "index"));
    assert_string_equal(img.digest, "");
}

static void metadata_descriptor_digest_mismatch_is_refused(void **state)
{
    af_engine_image_t img;
    const char *j = "{\"containerimage.descriptor\":{\"mediaType\":"
                    "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2
                    "\",\"size\":5},\"containerimage.digest\":\"" D1 "\"}";
    assert_int_equal(s_meta(j, &img, NULL), AF_ERR_DIGEST);
}

static void metadata_malformed_is_refused(void **state)
{
    const char *bad[] = {
        "",
        "not json",
        "[]",
        "\"sha256:1\"",
        "{}",
        "{\"containerimage.digest\":42}",
        "{\"containerimage.digest\":\"sha256:xyz\"}",
        "{\"containerimage.digest\":\"md5:" D1 "\"}",
        "{\"containerimage.digest\":\"" D1 "\",\"containerimage.descriptor\":[]}",
        "{\"containerimage.digest\":\"" D1 "\",\"containerimage.descriptor\":{\"digest\":\"" D1
        "\"}}",
        "{\"containerimage.digest\":\"" D1 "\",\"containerimage.descriptor\":{\"mediaType\":"
        "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":-1}}",
        "{\"containerimage.digest\":\"" D1 "\",\"containerimage.descriptor\":{\"mediaType\":"
        "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1
        "\",\"size\":99999999999}}",
        "{\"containerimage.digest\":\"" D1 "\",\"containerimage.digest\":\"" D2 "\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_engine_image_t img;
        af_err_t err = {0};
        int rc = s_meta(bad[i], &img, &err);
        if (rc >= 0)
            fail_msg("accepted malformed metadata #%zu: %s", i, bad[i]);
        assert_true(err.msg[0] != '\0');
        assert_string_equal(img.digest, "");
    }
    af_engine_image_t img;
    assert_int_equal(af_engine_metadata_parse(NULL, 0, &img, NULL), AF_ERR_TOOBIG);
}

/* --- files ------------------------------------------------------------------ */

static char s_dir[64];

static int s_setup_dir(void **state)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/af-engines.XXXXXX");
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void s_write(const char *name, const char *text, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void digest_file_is_read_with_or_without_prefix(void **state)
{
    char path[128], d[AF_DIGEST_STR_MAX];
    s_write("d1", D1 "\n", path, sizeof path);
    assert_int_equal(af_engine_digest_file_read(path, d, NULL), 0);
    assert_string_equal(d, D1);
    s_write("d2", D2 + 7, path, sizeof path); /* a bare image id */
    assert_int_equal(af_engine_digest_file_read(path, d, NULL), 0);
    assert_string_equal(d, D2);
}

static void digest_file_garbage_missing_or_big_is_refused(void **state)
{
    char path[128], d[AF_DIGEST_STR_MAX];
    af_err_t err = {0};
    s_write("g", "sha256:nothex\n", path, sizeof path);
    assert_int_equal(af_engine_digest_file_read(path, d, &err), AF_ERR_PARSE);
    s_write("g2", D1 "\n" D2, path, sizeof path);
    assert_int_equal(af_engine_digest_file_read(path, d, NULL), AF_ERR_PARSE);
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s_write("big", big, path, sizeof path);
    assert_int_equal(af_engine_digest_file_read(path, d, NULL), AF_ERR_TOOBIG);
    snprintf(path, sizeof path, "%s/none", s_dir);
    assert_int_equal(af_engine_digest_file_read(path, d, &err), AF_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "none"));
}

static void metadata_file_is_read_from_disk(void **state)
{
    char path[128];
    s_write("meta.json", "{\"containerimage.digest\":\"" D1 "\"}", path, sizeof path);
    af_engine_image_t img;
    assert_int_equal(af_engine_metadata_read(path, &img, NULL), 0);
    assert_string_equal(img.digest, D1);
}

static void auth_file_is_0600_and_holds_base64_user_pass_for_the_host(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/auth.json", s_dir);
    assert_int_equal(
        af_engine_auth_file_write(path, "127.0.0.1:5000/team/app", "user", "p:ss w0rd", NULL), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(af_engine_file_read(path, 4096, &body, &len, NULL), 0);
    /* base64("user:p:ss w0rd") */
    assert_string_equal(body,
                        "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"dXNlcjpwOnNzIHcwcmQ=\"}}}");
    free(body);
    af_err_t err = {0};
    assert_true(af_engine_auth_file_write(path, "Bad Ref", "u", "p", &err) < 0);
}

static void engine_env_sets_tmpdir_and_adds_extra(void **state)
{
    setenv("TMPDIR", "/elsewhere", 1);
    const char *extra[] = {"DOCKER_CONFIG=/w/job/engine/docker", NULL};
    char **env = af_engine_env_new("/w/job/tmp", extra, NULL);
    assert_non_null(env);
    size_t tmp = 0, dc = 0;
    for (char **e = env; *e; e++) {
        assert_null(strstr(*e, "/elsewhere"));
        tmp += !strcmp(*e, "TMPDIR=/w/job/tmp");
        dc += !strcmp(*e, "DOCKER_CONFIG=/w/job/engine/docker");
    }
    assert_int_equal(tmp, 1);
    assert_int_equal(dc, 1);
    af_engine_env_free(&env);
    assert_null(env);
    unsetenv("TMPDIR");
}

static void which_finds_sh_and_not_a_missing_tool(void **state)
{
    char path[256];
    assert_true(af_engine_which("sh", path, sizeof path));
    assert_true(path[0] == '/');
    assert_false(af_engine_which("archfarm-no-such-engine", NULL, 0));
}

/* --- the argv spawner, with a real child ---------------------------------------- */

typedef struct {
    char *lines[32];
    size_t n;
    bool exited;
    int status;
} s_child_t;

static void s_child_line(const char *stream, const char *line, size_t len, void *arg)
{
    s_child_t *c = arg;
    if (!strcmp(stream, "stdout") && c->n < 32)
        c->lines[c->n++] = strdup(line);
}

static void s_child_exit(int status, void *arg)
{
    s_child_t *c = arg;
    c->exited = true;
    c->status = status;
}

static int s_child_poll(zloop_t *loop, int id, void *arg)
{
    return ((s_child_t *)arg)->exited ? -1 : 0;
}

static int s_child_deadline(zloop_t *loop, int id, void *arg)
{
    return -1;
}

static void s_run_argv(char *const argv[], s_child_t *c)
{
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    zloop_t *loop = zloop_new();
    af_process_t *p =
        af_process_new_argv(loop, argv, envp, "/", s_child_line, s_child_exit, c, NULL);
    assert_non_null(p);
    zloop_timer(loop, 5, 0, s_child_poll, c);
    zloop_timer(loop, 10000, 1, s_child_deadline, c);
    zloop_start(loop);
    assert_true(c->exited);
    af_process_destroy(&p);
    zloop_destroy(&loop);
}

static void argv_reaches_the_child_verbatim(void **state)
{
    char *const argv[] = {"printf",           "[%s]\\n",    "plain", "a b", "$(id)", "`id`",
                          "'; echo pwned; '", "--flag=x,y", "*",     "",    "$HOME", NULL};
    s_child_t c = {0};
    s_run_argv(argv, &c);
    assert_true(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    const char *want[] = {"[plain]",      "[a b]", "[$(id)]", "[`id`]", "['; echo pwned; ']",
                          "[--flag=x,y]", "[*]",   "[]",      "[$HOME]"};
    assert_int_equal(c.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < c.n; i++) {
        assert_string_equal(c.lines[i], want[i]);
        free(c.lines[i]);
    }
}

static void argv_exit_status_is_the_engines(void **state)
{
    char *const argv[] = {"sh", "-c", "exit 7", NULL};
    s_child_t c = {0};
    s_run_argv(argv, &c);
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buildctl_argv_is_exact),
        cmocka_unit_test(buildctl_argv_subdir_dockerfile_insecure_registry_and_epoch),
        cmocka_unit_test(docker_argv_is_exact),
        cmocka_unit_test(docker_argv_insecure_registry_and_epoch),
        cmocka_unit_test(buildah_build_argv_is_exact),
        cmocka_unit_test(buildah_build_argv_minimal),
        cmocka_unit_test(buildah_push_argv_is_exact_and_writes_no_tag),
        cmocka_unit_test(buildah_push_refuses_colon_in_layout_path),
        cmocka_unit_test(build_arg_value_stays_one_argv_element),
        cmocka_unit_test(build_arg_bad_names_are_refused),
        cmocka_unit_test(target_that_could_be_a_flag_or_option_is_refused),
        cmocka_unit_test(repository_that_could_add_output_options_is_refused),
        cmocka_unit_test(dockerfile_outside_the_context_is_refused),
        cmocka_unit_test(platform_build_args_are_dropped_the_platform_wins),
        cmocka_unit_test(user_source_date_epoch_build_arg_wins),
        cmocka_unit_test(relative_paths_and_missing_fields_are_refused),
        cmocka_unit_test(metadata_digest_and_descriptor_are_read),
        cmocka_unit_test(metadata_docker_media_type_is_accepted),
        cmocka_unit_test(metadata_digest_only_leaves_type_and_size_to_the_registry),
        cmocka_unit_test(metadata_index_from_attestations_is_refused),
        cmocka_unit_test(metadata_descriptor_digest_mismatch_is_refused),
        cmocka_unit_test(metadata_malformed_is_refused),
        cmocka_unit_test_setup_teardown(digest_file_is_read_with_or_without_prefix, s_setup_dir,
                                        s_teardown_dir),
        cmocka_unit_test_setup_teardown(digest_file_garbage_missing_or_big_is_refused, s_setup_dir,
                                        s_teardown_dir),
        cmocka_unit_test_setup_teardown(metadata_file_is_read_from_disk, s_setup_dir,
                                        s_teardown_dir),
        cmocka_unit_test_setup_teardown(auth_file_is_0600_and_holds_base64_user_pass_for_the_host,
                                        s_setup_dir, s_teardown_dir),
        cmocka_unit_test(engine_env_sets_tmpdir_and_adds_extra),
        cmocka_unit_test(which_finds_sh_and_not_a_missing_tool),
        cmocka_unit_test(argv_reaches_the_child_verbatim),
        cmocka_unit_test(argv_exit_status_is_the_engines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
