/*
 * Fuzz target: what etcd's JSON gateway (or anything on its port) sends the
 * fleet's client (control/ctl_etcd.c), as hostile input: the input is a
 * watch stream (messages ended by newlines) handed to the watch's parser,
 * and each of its lines is also read as a range reply and a txn reply.
 * Whatever the bytes, the parser either delivers events in revision order,
 * never at or below a revision already delivered, or fails the stream with
 * a reason; it never crashes or leaks (ASan + UBSan).
 */
#include "../../control/ctl_etcd.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

struct seen {
	int64_t last;
};

static int on_events(void *arg, const struct ctl_etcd_event *ev, size_t n)
{
	struct seen *s = arg;

	for (size_t i = 0; i < n; i++) {
		if (!ev[i].kv.key || ev[i].kv.mod_revision < s->last)
			abort(); /* out of order, or a replay */
		s->last = ev[i].kv.mod_revision;
	}
	return 0;
}

static struct ctl_etcd *client(void)
{
	static struct ctl_etcd *e;
	struct ctl_etcd_conf conf = {.endpoints = "http://127.0.0.1:9,http://127.0.0.1:10"};
	struct fwd_err err;

	if (!e)
		e = ctl_etcd_create(&conf, &err);
	return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct ctl_etcd *e = client();
	struct ctl_etcd_watch *w;
	struct ctl_etcd_range r;
	struct seen s = {0};
	struct fwd_err err;
	const char *p = (const char *)data, *end = p + len;

	if (!e || len > 1 << 20)
		return 0;
	/* Each line as a reply to a range and to a txn. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);

		if (json_is_object(j)) {
			if (parse_range(j, &r, "fuzz", &err) == 0)
				ctl_etcd_range_free(&r);
			else if (err.reason[0] == '\0')
				abort(); /* a refusal names its reason */
		}
		json_decref(j);
		p += n + 1;
	}
	/* The whole input as a watch stream from revision 5. */
	w = ctl_etcd_watch_create(e, "/k", CTL_ETCD_PREFIX, 5, &err);
	if (!w)
		return 0;
	w->curl = curl_easy_init(); /* a stream "open": never added, never run */
	w->in.max = 1 << 20;
	buf_write((char *)data, 1, len, &w->in);
	s.last = 5;
	if (watch_drain(w, on_events, &s, &err) < 0 && err.reason[0] == '\0')
		abort();
	if (w->next < 5)
		abort();
	ctl_etcd_watch_free(w);
	return 0;
}
