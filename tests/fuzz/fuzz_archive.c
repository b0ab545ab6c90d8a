/* fuzz_archive.c -- libFuzzer target for af_archive_extract().
 *
 * Each input is written as a tar file into a fresh temp directory PARENT
 * and extracted into PARENT/dest with small limits. Whatever the bytes,
 * extraction must not crash, and afterwards PARENT must hold exactly
 * "in.tar" and "dest": anything else means an entry escaped. The tree is
 * then removed with af_remove_tree(), which must succeed. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"

static void s_check_parent(const char *parent)
{
    DIR *d = opendir(parent);
    if (!d)
        abort();
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strcmp(de->d_name, "in.tar") || !strcmp(de->d_name, "dest"))
            continue;
        fprintf(stderr, "fuzz_archive: \"%s\" escaped into %s\n", de->d_name, parent);
        abort();
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char parent[] = "/tmp/af_fuzz_archive_XXXXXX";
    if (!mkdtemp(parent))
        return 0;
    char tar[sizeof parent + 16], dest[sizeof parent + 16];
    snprintf(tar, sizeof tar, "%s/in.tar", parent);
    snprintf(dest, sizeof dest, "%s/dest", parent);
    int fd = open(tar, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
        size_t off = 0;
        while (off < size) {
            ssize_t n = write(fd, data + off, size - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(fd);
        if (mkdir(dest, 0700) == 0) {
            af_extract_limits_t lim = {.max_bytes = 4 * 1024 * 1024, .max_files = 512};
            af_err_t err = {0};
            (void)!af_archive_extract(tar, dest, &lim, &err);
        }
    }
    s_check_parent(parent);
    af_err_t err = {0};
    if (af_remove_tree(parent, &err) != 0) {
        fprintf(stderr, "fuzz_archive: cleanup failed: %s\n", err.msg);
        abort();
    }
    return 0;
}
