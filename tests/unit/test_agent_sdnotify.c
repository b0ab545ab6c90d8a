/* test_agent_sdnotify -- the NOTIFY_SOCKET datagram protocol (sd_notify(3))
 * the agent uses for Type=notify readiness, against a real AF_UNIX socket
 * (path and abstract), as systemd reads it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdnotify.h"

/* Binds a datagram socket at NAME ("/path" or "@abstract"). */
static int s_listener(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    assert_int_equal(
        bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
        0);
    return fd;
}

static void s_expect(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0); /* blocking: the datagram is already queued */
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void sdnotify_path_and_abstract(void **state)
{
    (void)state;
    char dir[] = "/tmp/af_sdnotify_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = s_listener(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(af_sd_notify("READY=1\nSTATUS=listening on tcp://*:7420"), 1);
    s_expect(fd, "READY=1\nSTATUS=listening on tcp://*:7420");
    close(fd);
    unlink(path);
    rmdir(dir);

    char abstract[64];
    snprintf(abstract, sizeof abstract, "@af-sdnotify-%ld", (long)getpid());
    fd = s_listener(abstract);
    setenv("NOTIFY_SOCKET", abstract, 1);
    assert_int_equal(af_sd_notify("STOPPING=1"), 1);
    s_expect(fd, "STOPPING=1");
    close(fd);
}

static void sdnotify_unset_and_bad(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(af_sd_notify("READY=1"), 0); /* not under systemd: nothing to do */
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(af_sd_notify("READY=1"), -1);
    assert_int_equal(errno, EINVAL);
    setenv("NOTIFY_SOCKET", "/nonexistent/af-notify", 1);
    assert_int_equal(af_sd_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sdnotify_path_and_abstract),
        cmocka_unit_test(sdnotify_unset_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
