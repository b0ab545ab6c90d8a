/* signals.h -- the coordinator's record of SIGINT and SIGTERM.
 *
 * The handler only records what arrived; the event loops (farm probe,
 * slice dispatch, registry transfers through their cancel hook) poll it and
 * wind down in order. This is the process's only global mutable state,
 * because a signal handler can reach nothing else. */
#ifndef AF_COORD_SIGNALS_H
#define AF_COORD_SIGNALS_H

/* Installs SIGINT/SIGTERM handlers that only record the signal (and turns
 * czmq's own handler off). Call before any czmq socket exists. */
void af_signals_install(void);

/* The last signal received (SIGINT, SIGTERM) or 0. */
int af_signal_last(void);

/* How many SIGINT/SIGTERM arrived so far (capped at 100). */
int af_signal_count(void);

#endif
