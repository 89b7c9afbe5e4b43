/*
 * A names_file is read only from beneath the document's directory, or
 * beneath the one directory an operator allowed (common/fwd_confine.c):
 * through fwd_embed (regionctl, regiond --table, regionfwd --table) and
 * fwd_table_load, with openat2() and with the /proc check older kernels
 * get. Refused: an absolute path, a '..', a symlink out (relative or
 * absolute), a FIFO (without hanging), a directory; each names the field,
 * the document and its line, and none echoes the file's text. Accepted: a
 * subdirectory, symlinks that stay inside, an absolute path beneath the
 * allowed directory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fwd_confine.h"
#include "fwd_embed.h"
#include "fwd_table.h"

#define HEAD                                                                                       \
	"services: {https: [tcp/443], dns: [udp/53]}\n"                                            \
	"links: {l1: {port: p0, next_hop_mac: '02:00:00:00:00:01'}}\n"                             \
	"default: {action: steer, to: l1}\n"                                                       \
	"content_rules:\n"

/* Not a name: a names file that held it would be refused naming the line,
 * and the line would be echoed. It must never reach an error. */
#define SECRET "root:$6$secret hash:19000"

static char top[64]; /* the test's directory: doc/ is the document's */

static void put(const char *rel, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", top, rel);
	assert_non_null(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
}

static void link_to(const char *target, const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", top, rel);
	assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
	char p[256];

	(void)state;
	snprintf(top, sizeof(top), "/tmp/test_confine.XXXXXX");
	assert_non_null(mkdtemp(top));
	snprintf(p, sizeof(p), "%s/doc", top);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/doc/sub", top);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/trusted", top);
	assert_int_equal(mkdir(p, 0700), 0);
	put("secret", SECRET "\n");
	put("doc/n.txt", "a.example\n");
	put("doc/sub/n.txt", "b.example\n");
	put("trusted/n.txt", "c.example\n");
	link_to("sub/n.txt", "doc/in-link");
	link_to("sub", "doc/dir-link");
	link_to("../secret", "doc/out-link");
	link_to("sub/../../secret", "doc/out-link2");
	snprintf(p, sizeof(p), "%s/secret", top);
	link_to(p, "doc/abs-link");
	link_to(p, "trusted/out-link");
	snprintf(p, sizeof(p), "%s/doc/fifo", top);
	assert_int_equal(mkfifo(p, 0600), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd);
}

static const char *doc_of(const char *names_file)
{
	static char doc[1024];

	snprintf(doc, sizeof(doc),
		 HEAD "  - {name: a, field: dns_qname, names_file: '%s', services: [dns], "
		      "action: count}\n",
		 names_file);
	return doc;
}

/* fwd_embed_names() of a document in doc/ naming @nf; @trusted: the
 * operator's --names-dir. @return its result, @err filled. */
static int embed(const char *nf, const char *trusted, char **out, struct fwd_err *err)
{
	const char *doc = doc_of(nf);
	char dir[128];
	size_t len;

	memset(err, 0, sizeof(*err));
	snprintf(dir, sizeof(dir), "%s/doc/", top);
	*out = NULL;
	return fwd_embed_names(doc, strlen(doc), "t.yaml", dir, trusted, out, &len, err);
}

/* The same document loaded from doc/t.yaml (regionfwd's fwd_table_load). */
static struct fwd_table *load(const char *nf, struct fwd_err *err)
{
	char p[256];

	memset(err, 0, sizeof(*err));
	put("doc/t.yaml", doc_of(nf));
	snprintf(p, sizeof(p), "%s/doc/t.yaml", top);
	return fwd_table_load(p, err);
}

static void refused(const char *nf, const char *trusted, const char *words)
{
	struct fwd_err err;
	struct fwd_table *t;
	char *out, b[768];

	for (int old = 0; old < 2; old++) {
		fwd_confine_no_openat2 = old;
		if (embed(nf, trusted, &out, &err) != -EINVAL || out)
			fail_msg("%s (trusted %s, openat2 %s): accepted", nf,
				 trusted ? trusted : "-", old ? "off" : "on");
		fwd_err_str(&err, b, sizeof(b));
		if (strcmp(err.path, "content_rules[0].names_file") || err.line != 5 ||
		    strcmp(err.file, "t.yaml") || !strstr(b, words) || strstr(b, "secret hash"))
			fail_msg("%s (openat2 %s): '%s', expected t.yaml:5 and '%s'", nf,
				 old ? "off" : "on", b, words);
		if (trusted)
			continue;
		if ((t = load(nf, &err)) != NULL)
			fail_msg("%s: loaded", nf);
		fwd_err_str(&err, b, sizeof(b));
		if (strcmp(err.path, "content_rules[0].names_file") || !strstr(b, words) ||
		    strstr(b, "secret hash"))
			fail_msg("%s (openat2 %s): load: '%s', expected '%s'", nf,
				 old ? "off" : "on", b, words);
	}
	fwd_confine_no_openat2 = 0;
}

static void accepted(const char *nf, const char *trusted, const char *name)
{
	struct fwd_err err;
	struct fwd_table *t;
	char *out, b[768];
	size_t len;

	for (int old = 0; old < 2; old++) {
		fwd_confine_no_openat2 = old;
		if (embed(nf, trusted, &out, &err) || out == NULL)
			fail_msg("%s (openat2 %s): %s", nf, old ? "off" : "on",
				 fwd_err_str(&err, b, sizeof(b)));
		len = strlen(out);
		t = fwd_table_parse(out, len, "t.yaml", -1, &err);
		free(out);
		assert_non_null(t);
		assert_int_equal(t->content[0].nnames, 1);
		assert_string_equal(t->content[0].names, name);
		fwd_table_free(t);
		if (trusted)
			continue;
		if ((t = load(nf, &err)) == NULL)
			fail_msg("%s: load: %s", nf, fwd_err_str(&err, b, sizeof(b)));
		assert_string_equal(t->content[0].names, name);
		fwd_table_free(t);
	}
	fwd_confine_no_openat2 = 0;
}

static void test_refused(void **state)
{
	char p[300], q[256];

	(void)state;
	snprintf(p, sizeof(p), "%s/secret", top);
	refused(p, NULL, "an absolute path");
	refused("/etc/shadow", NULL, "an absolute path");
	refused("../secret", NULL, "a '..' component");
	refused("sub/../../secret", NULL, "a '..' component");
	refused("sub/../n.txt", NULL, "a '..' component"); /* by the name, wherever it leads */
	refused("out-link", NULL, "leads out of the document's directory tree");
	refused("out-link2", NULL, "leads out of the document's directory tree");
	refused("abs-link", NULL, "leads out of the document's directory tree");
	refused("fifo", NULL, "a FIFO, not a regular file"); /* and no hang */
	refused("sub", NULL, "a directory, not a regular file");
	refused("dir-link", NULL, "a directory, not a regular file");
	refused("sub/", NULL, "a directory, not a regular file");
	/* --names-dir allows what is beneath it, and only that */
	snprintf(q, sizeof(q), "%s/trusted", top);
	refused(p, q, "an absolute path");
	snprintf(p, sizeof(p), "%s/trusted/../secret", top);
	refused(p, q, "a '..' component");
	snprintf(p, sizeof(p), "%s/trusted/out-link", top);
	refused(p, q, "leads out of the --names-dir directory");
	snprintf(p, sizeof(p), "%s/trustedness/n.txt", top); /* a prefix, not the directory */
	refused(p, q, "an absolute path");
	refused(q, q, "an absolute path"); /* the directory itself is not beneath it */
	snprintf(p, sizeof(p), "%s/", q);
	refused(p, q, "names a directory");
	snprintf(p, sizeof(p), "%s/doc/n.txt", top); /* the document's own, absolute */
	refused(p, q, "an absolute path");
}

static void test_accepted(void **state)
{
	char p[300], q[256];

	(void)state;
	accepted("n.txt", NULL, "a.example");
	accepted("./n.txt", NULL, "a.example");
	accepted("sub/n.txt", NULL, "b.example");
	accepted("sub//n.txt", NULL, "b.example");
	accepted("in-link", NULL, "b.example");
	accepted("dir-link/n.txt", NULL, "b.example");
	snprintf(p, sizeof(p), "%s/trusted/n.txt", top);
	snprintf(q, sizeof(q), "%s/trusted/", top);
	accepted(p, q, "c.example");
	accepted("n.txt", q, "a.example"); /* relative: still the document's */
}

/* A file that is not there is said as before: its path, not a refusal. */
static void test_missing(void **state)
{
	struct fwd_err err;
	char *out, p[256];

	(void)state;
	assert_true(embed("gone.txt", NULL, &out, &err) < 0);
	snprintf(p, sizeof(p), "%s/doc/gone.txt", top);
	assert_string_equal(err.file, p);
	assert_string_equal(err.path, "content_rules[0].names_file");
	assert_non_null(strstr(err.reason, "cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_missing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
