/* sdnotify.h -- tell systemd how the agent is doing (Type=notify).
 *
 * The documented NOTIFY_SOCKET datagram protocol (sd_notify(3)): one
 * AF_UNIX datagram of "KEY=VALUE" lines to the socket named in
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). No
 * libsystemd: nothing more to link or cross-build for arm64/armhf, and the
 * agent needs only READY=1, STATUS= and STOPPING=1. */
#ifndef AF_SDNOTIFY_H
#define AF_SDNOTIFY_H

/* Sends STATE (e.g. "READY=1\nSTATUS=listening") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when NOTIFY_SOCKET is unset (not under systemd),
 * -1 with errno set when it is set but unusable. STATE is borrowed. */
int af_sd_notify(const char *state);

#endif
