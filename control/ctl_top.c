#include "ctl_top.h"

#include <curses.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fwd_names.h"
#include "fwd_clock.h"

static volatile sig_atomic_t stop;

static void on_sigint(int sig)
{
	(void)sig;
	stop = 1;
}

const char *const ctl_top_sorts[CTL_TOP_NSORTS] = {
	[CTL_TOP_BY_RATE] = "rate", [CTL_TOP_BY_TOTAL] = "total", [CTL_TOP_BY_NAME] = "name"};

int ctl_top_sort_of(const char *name)
{
	for (int i = 0; i < CTL_TOP_NSORTS; i++)
		if (strcmp(name, ctl_top_sorts[i]) == 0)
			return i;
	return -1;
}

static const char *sort_name(enum ctl_top_sort s)
{
	return ctl_top_sorts[s];
}

/* ---- one frame: lines, the same for every rendering -------------------- */

enum line_kind { L_TITLE, L_TEXT, L_HEADER, L_ROW, L_NOTE };

#define LINE_MAX_CHARS 160
#define FRAME_MAX_LINES 512

struct frame {
	struct {
		enum line_kind kind;
		char text[LINE_MAX_CHARS];
	} line[FRAME_MAX_LINES];
	int n;
};

__attribute__((format(printf, 3, 4))) static void add(struct frame *f, enum line_kind k,
						      const char *fmt, ...)
{
	va_list ap;

	if (f->n == FRAME_MAX_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(f->line[f->n].text, LINE_MAX_CHARS, fmt, ap);
	va_end(ap);
	f->line[f->n++].kind = k;
}

const char *ctl_top_si(double v, char *buf, size_t len)
{
	static const char units[] = " kMGTP";
	int u = 0;

	while (v >= 1000.0 && u < 5) {
		v /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.*f%c", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
	return buf;
}

struct row {
	const char *name;
	double rate, bits; /* per second; bits < 0: the section counts no bytes */
	uint64_t total;
	const char *state; /* links: their state attribute, else NULL */
};

static enum ctl_top_sort sort_by;

static int row_cmp(const void *x, const void *y)
{
	const struct row *a = x, *b = y;

	if (sort_by == CTL_TOP_BY_RATE && a->rate != b->rate)
		return a->rate < b->rate ? 1 : -1;
	if (sort_by != CTL_TOP_BY_NAME && a->total != b->total)
		return a->total < b->total ? 1 : -1;
	return strcmp(a->name, b->name);
}

static double num(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

/* One section's rows: filtered, sorted, then printed under a header. */
static void section(struct frame *f, const char *title, struct row *rows, size_t n,
		    const struct ctl_top_conf *c)
{
	size_t kept = 0;
	char a[16], b[16], t[16];
	int bytes = n && rows[0].bits >= 0, links = n && rows[0].state;

	for (size_t i = 0; i < n; i++)
		if (c->filter == NULL || strstr(rows[i].name, c->filter))
			rows[kept++] = rows[i];
	sort_by = c->sort;
	qsort(rows, kept, sizeof(*rows), row_cmp);
	/* Names whole: 31 characters, a policy's REGION/SERVICE 63. They were
	 * cut at 30, so two links that differ in their last character read
	 * the same, and a policy lost its service (a probe). 30 at least, so
	 * the usual frame keeps its columns. */
	int w = (int)strlen(title);

	for (size_t i = 0; i < kept; i++)
		w = (int)strlen(rows[i].name) > w ? (int)strlen(rows[i].name) : w;
	w = w < 30 ? 30 : w > 63 ? 63 : w;
	add(f, L_TEXT, "%s", "");
	add(f, L_HEADER, "%-*s %-6s %10s %10s %14s", w, title, links ? "STATE" : "", "PKTS/S",
	    bytes ? "BITS/S" : "", "PACKETS");
	for (size_t i = 0; i < kept; i++)
		add(f, L_ROW, "%-*.*s %-6.6s %10s %10s %14s", w, w, rows[i].name,
		    rows[i].state ? rows[i].state : "", ctl_top_si(rows[i].rate, a, sizeof(a)),
		    bytes ? ctl_top_si(rows[i].bits, b, sizeof(b)) : "",
		    ctl_top_si((double)rows[i].total, t, 16));
	if (kept < n)
		add(f, L_NOTE, "  (%zu of %zu shown: filter '%s')", kept, n, c->filter);
}

static void report_section(struct frame *f, const char *title, const struct fwd_report *r,
			   const json_t *rates, enum fwd_report_sec s, const struct ctl_top_conf *c)
{
	const json_t *rs = json_object_get(rates, fwd_report_sec_key(s));
	int bytes = fwd_report_value_name(s, FWD_RV_BYTES) != NULL;
	struct row *rows = calloc(r->sec[s].n + 1, sizeof(*rows));

	if (rows == NULL)
		return;
	for (uint32_t i = 0; i < r->sec[s].n; i++) {
		const struct fwd_report_row *row = &r->sec[s].rows[i];
		const json_t *rr = json_object_get(rs, row->name);

		rows[i] = (struct row){
			.name = row->name,
			.rate = num(rr, "packets_per_s"),
			.bits = bytes ? num(rr, "bits_per_s") : -1,
			.total = row->v[FWD_RV_PACKETS],
			.state = s == FWD_RS_LINKS
					 ? (row->attr_state[1] == FWD_RA_SET ? row->attr[1] : "-")
					 : NULL,
		};
	}
	section(f, title, rows, r->sec[s].n, c);
	free(rows);
}

static void drops_section(struct frame *f, const struct fwd_report *r, const json_t *rates,
			  const struct ctl_top_conf *c)
{
	const json_t *rd = json_object_get(rates, "drops");
	struct row rows[FWD_DROP_MAX];
	size_t n = 0;

	for (int i = 0; i < FWD_DROP_MAX; i++)
		if (r->drops[i] || num(rd, fwd_drop_names[i]) > 0)
			rows[n++] = (struct row){.name = fwd_drop_names[i],
						 .rate = num(rd, fwd_drop_names[i]),
						 .bits = -1,
						 .total = r->drops[i]};
	section(f, "DROP REASONS", rows, n, c);
}

/* @stale: when the reads began to fail (0: this frame is the last read's).
 * The figures of a frame that stays on screen are said to be old: with
 * regionfwd gone, the title kept saying "health healthy" at a frozen
 * clock. */
static void build(struct frame *f, const struct fwd_report *r, const json_t *rates,
		  const json_t *st, const struct ctl_top_conf *c, const unsigned hidden,
		  time_t stale)
{
	const json_t *g = json_object_get(st, "generation"), *h = json_object_get(st, "health"),
		     *p = json_object_get(rates, "packets"), *pr = json_object_get(rates, "ports");
	char when[16], v[6][16];
	time_t now = time(NULL);
	struct tm tm;

	f->n = 0;
	if (stale) {
		localtime_r(&stale, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		add(f, L_TITLE, "regionfwd top  NO ANSWER: the figures below are from %s", when);
	}
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	add(f, L_TITLE,
	    "regionfwd top  %s  generation %lld (%s) %lld s old  health %s  every %.1f s  sort %s",
	    when, (long long)json_integer_value(json_object_get(g, "id")),
	    json_string_value(json_object_get(g, "hash")) ?: "-",
	    json_is_integer(json_object_get(g, "time"))
		    ? (long long)(now - json_integer_value(json_object_get(g, "time")))
		    : -1LL,
	    stale ? "unknown" : json_string_value(json_object_get(h, "state")) ?: "?", c->interval,
	    sort_name(c->sort));
	if (!stale && json_string_value(json_object_get(h, "state")) &&
	    strcmp(json_string_value(json_object_get(h, "state")), "healthy"))
		add(f, L_NOTE, "  %s", json_string_value(json_object_get(h, "reason")) ?: "");
	add(f, L_TEXT,
	    "rx %s pkts/s %sbit/s   tx %s pkts/s %sbit/s   dropped %s pkts/s   (generation %llu, "
	    "%u workers)",
	    ctl_top_si(num(p, "rx_packets_per_s"), v[0], 16),
	    ctl_top_si(num(p, "rx_bits_per_s"), v[1], 16),
	    ctl_top_si(num(p, "tx_packets_per_s"), v[2], 16),
	    ctl_top_si(num(p, "tx_bits_per_s"), v[3], 16),
	    ctl_top_si(num(p, "dropped_packets_per_s"), v[4], 16), (unsigned long long)r->gen.id,
	    r->workers);
	if (r->has_mbufs)
		add(f, L_TEXT, "mbufs %llu of %llu in use (%.0f %%)",
		    (unsigned long long)r->mbuf_in_use, (unsigned long long)r->mbuf_pool,
		    r->mbuf_pool ? 100.0 * (double)r->mbuf_in_use / (double)r->mbuf_pool : 0.0);
	for (uint32_t i = 0; i < r->sec[FWD_RS_PORTS].n; i++) {
		const struct fwd_report_row *row = &r->sec[FWD_RS_PORTS].rows[i];
		const json_t *rr = json_object_get(pr, row->name);

		add(f, L_TEXT,
		    "port %-12s rx %s/s  tx %s/s  missed %s/s  errors %s/s in %s/s out  no mbuf "
		    "%s/s",
		    row->name, ctl_top_si(num(rr, "ipackets_per_s"), v[0], 16),
		    ctl_top_si(num(rr, "opackets_per_s"), v[1], 16),
		    ctl_top_si(num(rr, "imissed_per_s"), v[2], 16),
		    ctl_top_si(num(rr, "ierrors_per_s"), v[3], 16),
		    ctl_top_si(num(rr, "oerrors_per_s"), v[4], 16),
		    ctl_top_si(num(rr, "rx_nombuf_per_s"), v[5], 16));
	}
	if (!(hidden & 1))
		report_section(f, "LINKS", r, rates, FWD_RS_LINKS, c);
	if (!(hidden & 2))
		report_section(f, "REGIONS", r, rates, FWD_RS_REGIONS, c);
	if (!(hidden & 4))
		report_section(f, "SERVICES", r, rates, FWD_RS_SERVICES, c);
	if (!(hidden & 8))
		report_section(f, "POLICIES (region/service)", r, rates, FWD_RS_POLICIES, c);
	if (!(hidden & 16))
		drops_section(f, r, rates, c);
}

/* ---- renderings ---------------------------------------------------------- */

static void print_text(const struct frame *f)
{
	for (int i = 0; i < f->n; i++)
		puts(f->line[i].text);
	putchar('\n');
	fflush(stdout);
}

static void print_json_line(const struct fwd_report *r, const json_t *rates, const json_t *st,
			    const struct ctl_top_conf *c)
{
	/* The whole frame, in the API's names: the counter report as GET
	 * /v1/counters gives it (per link, region, service, policy and drop
	 * reason totals, workers, mbufs, ports), where a "totals" of rx, tx
	 * and dropped alone left scripts without what the text shows. The
	 * interval asked for is named apart from rates.interval_s, the window
	 * measured: both were "interval_s", 0.2 and 0.2001. */
	const json_t *g = json_object_get(st, "generation");
	time_t now = time(NULL);
	json_t *age = json_is_integer(json_object_get(g, "time"))
			      ? json_integer((json_int_t)now -
					     json_integer_value(json_object_get(g, "time")))
			      : json_null();
	json_t *o = json_pack("{s:I, s:f, s:O?, s:o, s:O?, s:O?, s:o?}", "time", (json_int_t)now,
			      "requested_interval_s", c->interval, "generation", g,
			      "generation_age_s", age, "health", json_object_get(st, "health"),
			      "rates", rates, "counters", fwd_report_json(r));
	/* 15 significant digits: rates are rounded to 0.01, and 17 printed
	 * 0.01 as 0.01 but 0.1 as 0.10000000000000001 (regionctl's -j alike). */
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) : NULL;

	if (s) {
		puts(s);
		fflush(stdout);
	}
	free(s);
	json_decref(o);
}

static const char keys_help[] =
	"q quit  s sort  / filter  c clear  l r v p d hide links/regions/services/policies/drops"
	"  + - interval";

/* The filter being typed after '/': edited a key at a time between the
 * frames, so the view goes on refreshing and Ctrl-C still stops it (a
 * blocking getnstr() held both for as long as the prompt stayed open). */
struct prompt {
	int open;
	size_t n;
	char text[64];
};

static void draw(const struct frame *f, const char *error, const struct prompt *pr)
{
	int rows = LINES, cols = COLS;

	erase();
	for (int i = 0; i < f->n && i < rows - 1; i++) {
		int attr = f->line[i].kind == L_TITLE	 ? A_REVERSE
			   : f->line[i].kind == L_HEADER ? A_BOLD
			   : f->line[i].kind == L_NOTE	 ? A_DIM
							 : A_NORMAL;

		attron(attr);
		mvaddnstr(i, 0, f->line[i].text, cols);
		attroff(attr);
	}
	if (pr->open) {
		static const char label[] = "filter (Enter sets, Esc cancels): ";
		const int room = cols - (int)sizeof(label); /* and the cursor's cell */
		/* Its end when it does not fit: where the typing is. */
		const size_t from = room <= 0		   ? pr->n
				    : pr->n > (size_t)room ? pr->n - (size_t)room
							   : 0;

		mvaddnstr(rows - 1, 0, label, cols);
		addnstr(pr->text + from, (int)(pr->n - from));
		clrtoeol();
	} else {
		attron(A_REVERSE);
		mvaddnstr(rows - 1, 0, error ? error : keys_help, cols);
		attroff(A_REVERSE);
	}
	curs_set(pr->open ? 1 : 0);
	refresh();
}

/* A key while the filter prompt is open: printable characters are typed,
 * Backspace deletes, Enter sets the filter (@filter, empty: none), Esc
 * leaves it as it was. */
static void prompt_key(struct prompt *pr, int ch, struct ctl_top_conf *c, char *filter, size_t flen)
{
	if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
		snprintf(filter, flen, "%.*s", (int)pr->n, pr->text);
		c->filter = filter[0] ? filter : NULL;
		pr->open = 0;
	} else if (ch == 27) {
		pr->open = 0;
	} else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		if (pr->n)
			pr->n--;
	} else if (ch >= 0x20 && ch < 0x7f && pr->n < sizeof(pr->text) - 1 && pr->n < flen - 1) {
		pr->text[pr->n++] = (char)ch;
	}
}

/* Keys while waiting for the next frame (curses). @return 1 to quit. */
static int keys(struct ctl_top_conf *c, unsigned *hidden, char *filter, size_t flen,
		struct prompt *pr, int *redraw)
{
	int ch = getch();

	if (ch == ERR)
		return 0;
	if (pr->open && ch != KEY_RESIZE) {
		prompt_key(pr, ch, c, filter, flen);
		*redraw = 1;
		return 0;
	}
	switch (ch) {
	case 'q':
	case 'Q':
		return 1;
	case 's':
		c->sort = (enum ctl_top_sort)((c->sort + 1) % 3);
		break;
	case '/':
		pr->open = 1;
		pr->n = 0;
		break;
	case 'c':
		c->filter = NULL;
		break;
	case 'l':
	case 'r':
	case 'v':
	case 'p':
	case 'd':
		*hidden ^= 1u << (strchr("lrvpd", ch) - "lrvpd");
		break;
	case '+':
		c->interval = c->interval * 2 > 3600 ? 3600 : c->interval * 2;
		break;
	case '-':
		c->interval = c->interval / 2 < 0.1 ? 0.1 : c->interval / 2;
		break;
	case KEY_RESIZE:
		break;
	default:
		return 0;
	}
	*redraw = 1;
	return 0;
}

double ctl_top_mono_s(void)
{
	return (double)fwd_mono_ns() / 1e9;
}

/* One frame's reads. On the full screen (@caught set), what a failed read
 * says on stderr (regionctl's one line: regiond away, regionfwd away) was
 * written over the screen at the cursor, scrolling it from its last line;
 * it is caught in @caught and given back in @why (its last line, without
 * the "regionctl: ") for the status line. @return 0, or the exit code. */
static int fetch(const struct ctl_top_source *src, FILE *caught, struct fwd_report **next,
		 json_t **nst, char *why, size_t len)
{
	int saved = -1, rc;

	why[0] = '\0';
	if (caught) {
		fflush(stderr);
		rewind(caught);
		if (ftruncate(fileno(caught), 0) == 0 && (saved = dup(STDERR_FILENO)) >= 0 &&
		    dup2(fileno(caught), STDERR_FILENO) < 0) {
			close(saved);
			saved = -1;
		}
	}
	rc = src->counters(src->arg, next);
	if (rc == 0 && (rc = src->status(src->arg, nst)) != 0) {
		fwd_report_free(*next);
		*next = NULL;
	}
	if (saved >= 0) {
		char line[512], last[512] = "";
		const char *p;

		fflush(stderr);
		dup2(saved, STDERR_FILENO);
		close(saved);
		rewind(caught);
		while (fgets(line, sizeof(line), caught))
			if (line[0] != '\n')
				snprintf(last, sizeof(last), "%s", line);
		last[strcspn(last, "\n")] = '\0';
		p = strncmp(last, "regionctl: ", 11) == 0 ? last + 11 : last;
		snprintf(why, len, "%.*s", (int)(len - 1), p);
	}
	return rc;
}

int ctl_top_run(const struct ctl_top_conf *conf, const struct ctl_top_source *src)
{
	struct ctl_top_conf c = *conf;
	struct fwd_report *prev = NULL, *cur = NULL;
	struct frame *f = calloc(1, sizeof(*f));
	json_t *st = NULL, *rates = NULL;
	char filter[64] = "", error[224] = "", why[160] = "";
	struct prompt pr = {0};
	FILE *caught = NULL;
	unsigned hidden = 0;
	double t_prev, t_read; /* the last fetch, tried or not; @prev's */
	time_t stale = 0; /* since when reads fail, 0 while they do not */
	time_t good_at = time(NULL); /* the last read that worked */
	long shown = 0;
	int rc;

	if (f == NULL)
		return 1;
	stop = 0;
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	/* The first read has to work: a top of nothing says so and exits. */
	if ((rc = src->counters(src->arg, &prev))) {
		free(f);
		return rc;
	}
	t_prev = t_read = ctl_top_mono_s();
	if (c.curses) {
		caught = tmpfile(); /* NULL: stderr as it is */
		initscr();
		set_escdelay(25); /* Esc closes the filter prompt at once */
		cbreak();
		noecho();
		keypad(stdscr, TRUE);
		curs_set(0);
	}
	while (!stop && (c.count == 0 || shown < c.count)) {
		double due = t_prev + c.interval;
		int redraw = 0;

		while (!stop && ctl_top_mono_s() < due) {
			if (c.curses) {
				timeout((int)((due - ctl_top_mono_s()) * 1000) > 100
						? 100
						: (int)((due - ctl_top_mono_s()) * 1000) + 1);
				if (keys(&c, &hidden, filter, sizeof(filter), &pr, &redraw)) {
					stop = 1;
					break;
				}
				due = t_prev + c.interval;
				if (redraw) {
					/* Before the first frame, f is empty: the
					 * status line or the prompt alone. */
					if (cur && rates && st)
						build(f, cur, rates, st, &c, hidden, stale);
					draw(f, error[0] ? error : NULL, &pr);
					redraw = 0;
				}
			} else {
				double left = due - ctl_top_mono_s();

				usleep((useconds_t)((left > 0.2 ? 0.2
						     : left > 0 ? left
								: 0) *
						    1e6));
			}
		}
		if (stop)
			break;
		struct fwd_report *next = NULL;
		json_t *nst = NULL;
		double t = ctl_top_mono_s();

		rc = fetch(src, caught, &next, &nst, why, sizeof(why));
		if (rc) {
			/* A live view outlives a restart of regiond: said, retried. */
			if (why[0])
				snprintf(error, sizeof(error), "%s; retrying every %.1f s", why,
					 c.interval);
			else /* plain: the read's own line, above, says who did not */
				snprintf(error, sizeof(error),
					 "no frame (exit %d%s); retrying every %.1f s", rc,
					 c.curses ? "" : ", the line above says why", c.interval);
			if (stale == 0) /* the figures on screen are the last good read's */
				stale = good_at;
			if (c.curses) {
				if (cur && rates && st)
					build(f, cur, rates, st, &c, hidden, stale);
				draw(f, error, &pr);
			} else {
				fprintf(stderr, "regionctl top: %s\n", error);
			}
			t_prev = t;
			shown++;
			continue;
		}
		error[0] = '\0';
		stale = 0;
		good_at = time(NULL);
		json_decref(rates);
		/* Over the time since @prev was read: after reads that failed
		 * (regiond restarting), the counters moved for all of it, and a
		 * rate over the last interval alone was that many times too high. */
		rates = fwd_report_rates(prev, next, t - t_read);
		fwd_report_free(prev);
		fwd_report_free(cur);
		prev = fwd_report_clone(next);
		cur = next;
		json_decref(st);
		st = nst;
		t_prev = t_read = t;
		if (rates == NULL || prev == NULL)
			break;
		shown++;
		if (c.json) {
			print_json_line(cur, rates, st, &c);
		} else {
			build(f, cur, rates, st, &c, hidden, 0);
			if (c.curses)
				draw(f, NULL, &pr);
			else
				print_text(f);
		}
		/* stdout on a full disk: printing into nothing for ever helps
		 * no one; regionctl says it (stdout_checked) and exits 4. */
		if (!c.curses && ferror(stdout))
			break;
	}
	if (c.curses)
		endwin();
	if (caught)
		fclose(caught);
	json_decref(rates);
	json_decref(st);
	fwd_report_free(prev);
	fwd_report_free(cur);
	free(f);
	/* Stopped by --count on a read that failed: its exit code, so that a
	 * script's `top -j --count 1` never takes no output for a frame. */
	return stop ? 0 : rc;
}
