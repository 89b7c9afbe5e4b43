/*
 * ctl_headwatch.h - a deadline for each HTTP request's head and body.
 *
 * libmicrohttpd times a connection out only when it is silent: a client
 * that sends its request head a byte at a time keeps its connection (and,
 * on the TCP port, stays unauthenticated, as credentials are checked once
 * the head is in) for as long as it likes, and enough of them fill the
 * connection limit and shut every operator out. The watch gives each
 * connection a deadline for a whole head: from its start, and again from
 * the end of each request it made (keep-alive). A body is held to a rate
 * instead: after the same grace, what arrived must average the watch's
 * bytes/s, so a client that sends a head and then trickles its body (each
 * byte resets libmicrohttpd's idle timeout) cannot hold its connection for
 * ever either; 64 of them took every unix socket connection and left
 * `regionctl status` waiting. No deadline while a request is being served
 * (a push waits for regionfwd). A thread checks every
 * 250 ms and shuts a late connection's socket down, which libmicrohttpd
 * sees as the peer's close. It does so under the lock that the CLOSED
 * notification takes to drop the connection, and libmicrohttpd closes a
 * socket only after that notification, so the number always names the
 * connection's own socket. (A dup() would have been simpler to reason
 * about, and would have doubled the descriptors a connection flood holds.)
 *
 * A streamed answer (a capture) gets a deadline of its own the same way:
 * libmicrohttpd calls a stream's reader only while the client's socket
 * takes bytes, so a client that stops reading but keeps its socket would
 * hold whatever the stream holds for as long as it likes; the stream says
 * by when it must be over, and the watch shuts its socket down then. Every
 * send fails after that, but libmicrohttpd waiting in select() to write to
 * a unix socket whose peer's queue is full is not woken by it (select
 * reports the hang-up as readable only): pair it with libmicrohttpd's own
 * timeout on the connection (ctl_api.c, capture_arm).
 */
#ifndef CTL_HEADWATCH_H
#define CTL_HEADWATCH_H

#include <stdint.h>

#include <microhttpd.h>

struct ctl_headwatch;

/**
 * A watch with deadline @head_ms for a head and, for a body, @body_rate
 * bytes/s on average once @head_ms have passed since its head; its thread
 * started; NULL on failure.
 */
struct ctl_headwatch *ctl_headwatch_new(unsigned head_ms, uint64_t body_rate);

/** Stop the thread and free; after every daemon using it is stopped. */
void ctl_headwatch_free(struct ctl_headwatch *w);

/** MHD_OPTION_NOTIFY_CONNECTION's callback, with the watch as @cls. */
void ctl_headwatch_notify(void *cls, struct MHD_Connection *con, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe);

/** The connection's head is in: its body (if any) is held to the rate. */
void ctl_headwatch_request_begins(struct MHD_Connection *con);

/** @n more bytes of the request's body arrived. */
void ctl_headwatch_body(struct MHD_Connection *con, size_t n);

/** The body is whole: no deadline while the request is served. */
void ctl_headwatch_body_done(struct MHD_Connection *con);

/** The request is done: the next head has the deadline from now. */
void ctl_headwatch_request_ends(struct MHD_Connection *con);

/**
 * The request's streamed answer must be over by @deadline_ms
 * (CLOCK_MONOTONIC; 0: no deadline), or its connection is shut down. Each
 * call replaces the last; the end of the request clears it.
 */
void ctl_headwatch_stream_deadline(struct MHD_Connection *con, int64_t deadline_ms);

#endif /* CTL_HEADWATCH_H */
