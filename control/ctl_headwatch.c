#include "ctl_headwatch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fwd_log.h"
#include "fwd_clock.h"

struct watched {
	struct watched *prev, *next;
	struct ctl_headwatch *w;
	int fd; /* the connection's socket: libmicrohttpd's, valid until CLOSED */
	int64_t deadline_ms; /* 0: a request is being served */
	int stream; /* deadline_ms is a streamed answer's, not a head's */
	/* Between a head and the end of its body: the body must keep up with
	 * the watch's rate, counted from body_ms (deadline_ms is then 0). */
	int body;
	int64_t body_ms;
	uint64_t body_bytes;
};

struct ctl_headwatch {
	pthread_mutex_t lock; /* the list and every deadline */
	pthread_cond_t wake;
	pthread_t thread;
	int quit;
	unsigned head_ms;
	uint64_t body_rate; /* bytes/s a body must average after head_ms of grace */
	struct watched *list;
	unsigned long closed; /* for want of a head */
	unsigned long closed_body; /* for a body slower than body_rate */
};

/* A body is late once what arrived is less than body_rate would have
 * brought after the grace: a client trickling a byte now and then (each
 * one resetting libmicrohttpd's idle timeout) holds its connection no
 * longer than one that says nothing. */
static int body_late(const struct ctl_headwatch *w, const struct watched *c, int64_t now)
{
	int64_t owed = now - c->body_ms - (int64_t)w->head_ms;

	return owed > 0 && c->body_bytes < (uint64_t)owed * w->body_rate / 1000;
}

static void *watch_main(void *arg)
{
	struct ctl_headwatch *w = arg;
	int64_t last_log = 0;
	unsigned long logged = 0, logged_body = 0;

	pthread_mutex_lock(&w->lock);
	while (!w->quit) {
		struct timespec until;
		int64_t now = fwd_mono_ms();

		for (struct watched *c = w->list; c; c = c->next) {
			if (c->body && body_late(w, c, now)) {
				shutdown(c->fd, SHUT_RDWR); /* as below */
				c->body = 0;
				w->closed_body++;
			}
			if (c->deadline_ms && now > c->deadline_ms) {
				/* Under the lock that CLOSED takes to drop the
				 * entry, and libmicrohttpd closes the socket only
				 * after CLOSED: the number is still this socket. */
				shutdown(c->fd, SHUT_RDWR);
				c->deadline_ms = 0;
				/* A stream's owner says why it ended. */
				if (!c->stream)
					w->closed++;
			}
		}
		if (w->closed != logged && now - last_log >= 10000) {
			/* One line a 10 s at most: the log is no lever for a flood. */
			fwd_log(FWD_LOG_WARNING,
				"API: %lu connections closed so far with no whole request head "
				"within %u ms of their start or last answer",
				w->closed, w->head_ms);
			logged = w->closed;
			last_log = now;
		}
		if (w->closed_body != logged_body && now - last_log >= 10000) {
			fwd_log(FWD_LOG_WARNING,
				"API: %lu connections closed so far whose request body arrived "
				"at under %" PRIu64 " bytes/s (after %u ms)",
				w->closed_body, w->body_rate, w->head_ms);
			logged_body = w->closed_body;
			last_log = now;
		}
		until = fwd_mono_after_ms(250);
		pthread_cond_timedwait(&w->wake, &w->lock, &until);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct ctl_headwatch *ctl_headwatch_new(unsigned head_ms, uint64_t body_rate)
{
	struct ctl_headwatch *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->head_ms = head_ms;
	w->body_rate = body_rate;
	pthread_mutex_init(&w->lock, NULL);
	fwd_cond_init_mono(&w->wake);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

void ctl_headwatch_free(struct ctl_headwatch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->quit = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	while (w->list) { /* none once the daemons stopped; kept honest */
		struct watched *c = w->list;

		w->list = c->next;
		free(c);
	}
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void ctl_headwatch_notify(void *cls, struct MHD_Connection *con, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct ctl_headwatch *w = cls;
	struct watched *c;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);

		*socket_context = NULL;
		if (ci == NULL || (c = calloc(1, sizeof(*c))) == NULL)
			return; /* unwatched: the idle timeout still holds */
		c->fd = ci->connect_fd;
		c->w = w;
		pthread_mutex_lock(&w->lock);
		c->deadline_ms = fwd_mono_ms() + w->head_ms;
		c->next = w->list;
		if (w->list)
			w->list->prev = c;
		w->list = c;
		pthread_mutex_unlock(&w->lock);
		*socket_context = c;
		return;
	}
	c = *socket_context;
	if (c == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&w->lock);
	free(c);
	*socket_context = NULL;
}

enum deadline { HEAD_IN, BODY_IN, HEAD_NEXT, STREAM };

/* @con's entry in the list, as the notify callback stored it; NULL for a
 * connection left unwatched (no fd, or out of memory at its start). */
static struct watched *watched_of(struct MHD_Connection *con)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void set_deadline(struct MHD_Connection *con, enum deadline what, int64_t stream_ms)
{
	struct watched *c = watched_of(con);

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->w->lock);
	c->deadline_ms = what == HEAD_IN || what == BODY_IN ? 0
			 : what == HEAD_NEXT		    ? fwd_mono_ms() + c->w->head_ms
							    : stream_ms;
	c->stream = what == STREAM;
	c->body = what == HEAD_IN;
	c->body_ms = fwd_mono_ms();
	c->body_bytes = 0;
	pthread_mutex_unlock(&c->w->lock);
}

void ctl_headwatch_request_begins(struct MHD_Connection *con)
{
	set_deadline(con, HEAD_IN, 0);
}

void ctl_headwatch_body(struct MHD_Connection *con, size_t n)
{
	struct watched *c = watched_of(con);

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->w->lock);
	c->body_bytes += n;
	pthread_mutex_unlock(&c->w->lock);
}

void ctl_headwatch_body_done(struct MHD_Connection *con)
{
	set_deadline(con, BODY_IN, 0);
}

void ctl_headwatch_request_ends(struct MHD_Connection *con)
{
	set_deadline(con, HEAD_NEXT, 0);
}

void ctl_headwatch_stream_deadline(struct MHD_Connection *con, int64_t deadline_ms)
{
	set_deadline(con, STREAM, deadline_ms);
}
