/* signals.c -- see signals.h. */
#include "signals.h"

#include <czmq.h>
#include <signal.h>
#include <string.h>

/* The only global mutable state: what the signal handler saw. */
static volatile sig_atomic_t s_signal;
static volatile sig_atomic_t s_signal_count;

static void s_on_signal(int signo)
{
    s_signal = signo;
    if (s_signal_count < 100)
        s_signal_count++;
}

void af_signals_install(void)
{
    zsys_handler_set(NULL); /* czmq must not swallow SIGINT/SIGTERM */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int af_signal_last(void)
{
    return (int)s_signal;
}

int af_signal_count(void)
{
    return (int)s_signal_count;
}
