/* test_digest.c -- pins sha256 streaming, file digests and digest strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"

#define EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/* sha256 of one million 'a' (FIPS 180-2 test vector) */
#define MILLION_A "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

static void digest_buffer_of_empty_input_is_known_vector(void **state)
{
    char out[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_buffer("", 0, out), 0);
    assert_string_equal(out, EMPTY);
}

static void digest_buffer_of_abc_is_known_vector(void **state)
{
    char out[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_buffer("abc", 3, out), 0);
    assert_string_equal(out, ABC);
}

static void digest_stream_in_pieces_equals_one_shot(void **state)
{
    af_digest_t *d = af_digest_new();
    assert_non_null(d);
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(af_digest_update(d, chunk, sizeof chunk), 0);
    assert_int_equal(af_digest_size(d), 1000000);
    char out[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_final(d, out), 0);
    assert_string_equal(out, MILLION_A);
    af_digest_destroy(&d);
    assert_null(d);
    af_digest_destroy(&d); /* safe twice */
}

static void digest_update_after_final_is_state_error(void **state)
{
    af_digest_t *d = af_digest_new();
    char out[AF_DIGEST_STR_MAX];
    assert_int_equal(af_digest_update(d, "a", 1), 0);
    assert_int_equal(af_digest_final(d, out), 0);
    assert_int_equal(af_digest_update(d, "b", 1), AF_ERR_STATE);
    assert_int_equal(af_digest_final(d, out), AF_ERR_STATE);
    af_digest_destroy(&d);
}

static void digest_file_streams_and_reports_size(void **state)
{
    char path[] = "/tmp/af_digest_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* larger than the 64 KiB buffer, not a multiple of it */
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    close(fd);
    char out[AF_DIGEST_STR_MAX];
    uint64_t size = 0;
    af_err_t err = {0};
    assert_int_equal(af_digest_file(path, out, &size, &err), 0);
    assert_string_equal(out, MILLION_A);
    assert_int_equal(size, 1000000);
    unlink(path);
}

static void digest_file_of_empty_file_is_empty_vector(void **state)
{
    char path[] = "/tmp/af_digest_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char out[AF_DIGEST_STR_MAX];
    uint64_t size = 99;
    assert_int_equal(af_digest_file(path, out, &size, NULL), 0);
    assert_string_equal(out, EMPTY);
    assert_int_equal(size, 0);
    unlink(path);
}

static void digest_file_missing_is_notfound_naming_path(void **state)
{
    char out[AF_DIGEST_STR_MAX];
    af_err_t err = {0};
    assert_int_equal(af_digest_file("/nonexistent/af/file", out, NULL, &err), AF_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/af/file"));
}

static void digest_file_of_directory_is_io_error(void **state)
{
    char out[AF_DIGEST_STR_MAX];
    af_err_t err = {0};
    assert_int_equal(af_digest_file("/", out, NULL, &err), AF_ERR_IO);
}

static void digest_valid_accepts_only_lowercase_sha256(void **state)
{
    assert_true(af_digest_valid(EMPTY));
    assert_true(af_digest_valid(ABC));
    assert_false(af_digest_valid(NULL));
    assert_false(af_digest_valid(""));
    assert_false(af_digest_valid("sha256:"));
    assert_false(
        af_digest_valid("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_false(
        af_digest_valid("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
    assert_false(
        af_digest_valid("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_false(af_digest_valid(EMPTY "0")); /* too long */
    assert_false(
        af_digest_valid("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
    assert_false(
        af_digest_valid("sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_false(
        af_digest_valid("SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

static void digest_hex_returns_hex_part_or_null(void **state)
{
    assert_string_equal(af_digest_hex(ABC),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_null(af_digest_hex("sha256:abc"));
    assert_null(af_digest_hex(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digest_buffer_of_empty_input_is_known_vector),
        cmocka_unit_test(digest_buffer_of_abc_is_known_vector),
        cmocka_unit_test(digest_stream_in_pieces_equals_one_shot),
        cmocka_unit_test(digest_update_after_final_is_state_error),
        cmocka_unit_test(digest_file_streams_and_reports_size),
        cmocka_unit_test(digest_file_of_empty_file_is_empty_vector),
        cmocka_unit_test(digest_file_missing_is_notfound_naming_path),
        cmocka_unit_test(digest_file_of_directory_is_io_error),
        cmocka_unit_test(digest_valid_accepts_only_lowercase_sha256),
        cmocka_unit_test(digest_hex_returns_hex_part_or_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
