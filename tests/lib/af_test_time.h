/* af_test_time.h -- time bounds for unit tests that hold on a loaded
 * machine (the C side of tests/lib/timing.sh).
 *
 * A bound is the time the code under test may take plus a slack multiplied
 * by ONE factor, AF_TEST_TIME_SCALE (default 3: a 2-core machine running
 * other builds beside the suite), measured on CLOCK_MONOTONIC. Waiting for a
 * process to end is event-driven (a pidfd becomes readable when it exits).
 *
 * Header-only (static inline), no state: include it as "../lib/af_test_time.h"
 * from tests/unit/. */
#ifndef AF_TEST_TIME_H
#define AF_TEST_TIME_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* The slack multiplier: AF_TEST_TIME_SCALE when it is a positive number,
 * else 3. */
static inline double af_test_time_scale(void)
{
    const char *s = getenv("AF_TEST_TIME_SCALE");
    char *end = NULL;
    double k = s ? strtod(s, &end) : 0.0;
    if (s == NULL || end == s || *end != '\0' || !(k > 0.0))
        return 3.0;
    return k;
}

/* Seconds on CLOCK_MONOTONIC (only differences mean anything). */
static inline double af_test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds of slack: SLACK_S x the scale. */
static inline int af_test_slack_ms(double slack_s)
{
    return (int)(slack_s * af_test_time_scale() * 1000.0);
}

/* Polls PRED(ARG) every 10 ms until it holds or SLACK_S x the scale has
 * passed on the monotonic clock; returns its last value. For conditions no
 * event announces (a process group emptied, a file appeared). */
static inline bool af_test_poll(bool (*pred)(void *), void *arg, double slack_s)
{
    double deadline = af_test_now() + (double)af_test_slack_ms(slack_s) / 1000.0;
    for (;;) {
        if (pred(arg))
            return true;
        if (af_test_now() >= deadline)
            return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Waits until process PID (any process, child or not) has exited, for at
 * most SLACK_S x the scale: true when it has. Event-driven through a pidfd
 * (readable once the process is a zombie or gone). */
static inline bool af_test_wait_exit(pid_t pid, double slack_s)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return errno == ESRCH;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc;
    do
        rc = poll(&pfd, 1, af_test_slack_ms(slack_s));
    while (rc < 0 && errno == EINTR);
    close(fd);
    return rc == 1;
}

#endif
