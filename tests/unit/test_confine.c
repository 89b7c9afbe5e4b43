/*
 * A names_file is read only from beneath the document's directory, or
 * beneath the one directory an operator allowed (common/fwd_confine.c):
 * through fwd_embed (regionctl, regiond --table, regionfwd --table) and
 * fwd_table_load, with openat2() (when this kernel has it: said and
 * skipped if not) and with the component walk older kernels get. Refused:
 * an absolute path, a '..', a symlink out (relative or absolute), an
 * absolute symlink even to a file inside, any symlink without openat2, a
 * FIFO (without hanging), a socket, a directory ("." too), a file not
 * readable by others (0600, 0640), a file in a '/'-like tree that is not;
 * each names the field, the document and its line, and none echoes the
 * file's text, not even a bad line of a readable file; a newline in the
 * path is escaped. Accepted: a subdirectory, relative symlinks that stay
 * inside (openat2 only), an absolute path beneath the allowed directory.
 */
#define _GNU_SOURCE /* O_PATH */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>
#ifdef SYS_openat2
#include <fcntl.h>
#include <linux/openat2.h>
#endif

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
static const char *docdir = "doc"; /* where embed() and load() put the document */
static int have_openat2; /* this kernel (and its seccomp filter) lets openat2 run */

/* @rel with @text, mode @mode whatever the umask (the mode is a rule). */
static void put_mode(const char *rel, const char *text, mode_t mode)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", top, rel);
	assert_non_null(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
}

static void put(const char *rel, const char *text)
{
	put_mode(rel, text, 0644);
}

static void dir(const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", top, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void link_to(const char *target, const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", top, rel);
	assert_int_equal(symlink(target, p), 0);
}

/* Whether openat2 runs here, as fwd_confine calls it: otherwise it falls
 * back to the walk, and a test of "openat2 on" would test that twice. */
static int probe_openat2(void)
{
#ifdef SYS_openat2
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
	long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));

	if (fd >= 0) {
		close((int)fd);
		return 1;
	}
	printf("[  SKIP    ] openat2 unavailable here (%s): only the walk older kernels take "
	       "is tested\n",
	       strerror(errno));
	return 0;
#else
	printf("[  SKIP    ] built without SYS_openat2: only the walk is tested\n");
	return 0;
#endif
}

static int setup(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char p[256];
	int s;

	(void)state;
	have_openat2 = probe_openat2();
	snprintf(top, sizeof(top), "/tmp/test_confine.XXXXXX");
	assert_non_null(mkdtemp(top));
	dir("doc");
	dir("doc/sub");
	dir("trusted");
	put("secret", SECRET "\n");
	put("doc/n.txt", "a.example\n");
	put("doc/sub/n.txt", "b.example\n");
	put("trusted/n.txt", "c.example\n");
	put_mode("doc/private.txt", "d.example\n", 0600);
	put_mode("doc/group.txt", "d.example\n", 0640);
	put_mode("trusted/private.txt", "d.example\n", 0600);
	put("doc/bad.txt", "ok.example\n" SECRET "\n");
	link_to("sub/n.txt", "doc/in-link");
	link_to("sub", "doc/dir-link");
	link_to("../secret", "doc/out-link");
	link_to("sub/../../secret", "doc/out-link2");
	snprintf(p, sizeof(p), "%s/secret", top);
	link_to(p, "doc/abs-link");
	link_to(p, "trusted/out-link");
	snprintf(p, sizeof(p), "%s/doc/n.txt", top);
	link_to(p, "doc/abs-in-link"); /* absolute, to a file inside */
	snprintf(p, sizeof(p), "%s/doc/fifo", top);
	assert_int_equal(mkfifo(p, 0644), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/doc/sock", top);
	assert_true((s = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	assert_int_equal(chmod(sa.sun_path, 0644), 0);
	/* A '/'-like tree: a document in '/' (or a home directory) has every
	 * file of the box beneath it. */
	dir("root");
	dir("root/etc");
	dir("root/root");
	dir("root/root/.ssh");
	put("root/etc/hostname", "box1.example\n");
	put_mode("root/etc/shadow", SECRET "\n", 0640);
	put_mode("root/root/.ssh/id_rsa", SECRET "\n", 0600);
	dir("root/etc/regionfwd");
	dir("root/etc/regionfwd/credentials");
	put_mode("root/etc/regionfwd/credentials/etcd-password", SECRET "\n", 0600);
	/* Readable by all, in a directory others cannot enter (as the
	 * package's credentials/ is): no more public. */
	put("root/etc/regionfwd/credentials/names.txt", SECRET "\n");
	snprintf(p, sizeof(p), "%s/root/etc/regionfwd/credentials", top);
	assert_int_equal(chmod(p, 0700), 0);
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
	snprintf(dir, sizeof(dir), "%s/%s/", top, docdir);
	*out = NULL;
	return fwd_embed_names(doc, strlen(doc), "t.yaml", dir, trusted, out, &len, err);
}

/* The same document loaded from doc/t.yaml (regionfwd's fwd_table_load). */
static struct fwd_table *load(const char *nf, struct fwd_err *err)
{
	char p[256];

	char rel[64];

	memset(err, 0, sizeof(*err));
	snprintf(rel, sizeof(rel), "%s/t.yaml", docdir);
	put(rel, doc_of(nf));
	snprintf(p, sizeof(p), "%s/%s/t.yaml", top, docdir);
	return fwd_table_load(p, err);
}

#define PATH_NAME(old) ((old) ? "the walk" : "openat2")

/* @nf refused with @words, by fwd_embed and by fwd_table_load, on one
 * path (@old: the walk without openat2). */
static void refused_on(int old, const char *nf, const char *trusted, const char *words)
{
	struct fwd_err err;
	struct fwd_table *t;
	char *out, b[768];

	fwd_confine_no_openat2 = old;
	if (embed(nf, trusted, &out, &err) != -EINVAL || out)
		fail_msg("%s (trusted %s, %s): accepted", nf, trusted ? trusted : "-",
			 PATH_NAME(old));
	fwd_err_str(&err, b, sizeof(b));
	if (strcmp(err.path, "content_rules[0].names_file") || err.line != 5 ||
	    strcmp(err.file, "t.yaml") || !strstr(b, words) || strstr(b, "secret hash"))
		fail_msg("%s (%s): '%s', expected t.yaml:5 and '%s'", nf, PATH_NAME(old), b, words);
	if (trusted == NULL) {
		if ((t = load(nf, &err)) != NULL)
			fail_msg("%s (%s): loaded", nf, PATH_NAME(old));
		fwd_err_str(&err, b, sizeof(b));
		if (strcmp(err.path, "content_rules[0].names_file") || !strstr(b, words) ||
		    strstr(b, "secret hash"))
			fail_msg("%s (%s): load: '%s', expected '%s'", nf, PATH_NAME(old), b,
				 words);
	}
	fwd_confine_no_openat2 = 0;
}

static void accepted_on(int old, const char *nf, const char *trusted, const char *name)
{
	struct fwd_err err;
	struct fwd_table *t;
	char *out, b[768];
	size_t len;

	fwd_confine_no_openat2 = old;
	if (embed(nf, trusted, &out, &err) || out == NULL)
		fail_msg("%s (%s): %s", nf, PATH_NAME(old), fwd_err_str(&err, b, sizeof(b)));
	len = strlen(out);
	t = fwd_table_parse(out, len, "t.yaml", -1, &err);
	free(out);
	assert_non_null(t);
	assert_int_equal(t->content[0].nnames, 1);
	assert_string_equal(t->content[0].names, name);
	fwd_table_free(t);
	if (trusted == NULL) {
		if ((t = load(nf, &err)) == NULL)
			fail_msg("%s (%s): load: %s", nf, PATH_NAME(old),
				 fwd_err_str(&err, b, sizeof(b)));
		assert_string_equal(t->content[0].names, name);
		fwd_table_free(t);
	}
	fwd_confine_no_openat2 = 0;
}

/* On both paths (openat2 only where this kernel has it). */
static void refused(const char *nf, const char *trusted, const char *words)
{
	for (int old = !have_openat2; old < 2; old++)
		refused_on(old, nf, trusted, words);
}

static void accepted(const char *nf, const char *trusted, const char *name)
{
	for (int old = !have_openat2; old < 2; old++)
		accepted_on(old, nf, trusted, name);
}

/* A symlink refused: with openat2 for @words, by the walk as a symlink. */
static void via_symlink(const char *nf, const char *trusted, const char *words)
{
	if (have_openat2)
		refused_on(0, nf, trusted, words);
	refused_on(1, nf, trusted, "symlinks are followed only where the kernel confines them");
}

/* A symlink that stays inside: followed where openat2 confines it,
 * refused by the walk, which follows none. */
static void linked(const char *nf, const char *name)
{
	if (have_openat2)
		accepted_on(0, nf, NULL, name);
	refused_on(1, nf, NULL, "symlinks are followed only where the kernel confines them");
}

static void test_refused(void **state)
{
	char p[300], q[256];

	(void)state;
	docdir = "doc"; /* whatever a failed test left */
	snprintf(p, sizeof(p), "%s/secret", top);
	refused(p, NULL, "an absolute path");
	refused("/etc/shadow", NULL, "an absolute path");
	refused("../secret", NULL, "a '..' component");
	refused("sub/../../secret", NULL, "a '..' component");
	refused("sub/../n.txt", NULL, "a '..' component"); /* by the name, wherever it leads */
	via_symlink("out-link", NULL, "leads out of the document's directory tree");
	via_symlink("out-link2", NULL, "leads out of the document's directory tree");
	via_symlink("abs-link", NULL, "leads out of the document's directory tree");
	refused("fifo", NULL, "a FIFO, not a regular file"); /* and no hang */
	refused("sock", NULL, "a socket, not a regular file");
	refused("sub", NULL, "a directory, not a regular file");
	refused("sub/", NULL, "a directory, not a regular file");
	refused(".", NULL, "a directory, not a regular file");
	refused("./", NULL, "a directory, not a regular file");
	refused("sub/.", NULL, "a directory, not a regular file");
	/* the mode: what every API reader will see must be no secret */
	refused("private.txt", NULL, "not readable by others");
	refused("group.txt", NULL, "not readable by others");
	/* symlinks: out, or absolute even to a file inside, on both paths;
	 * any at all in the walk */
	via_symlink("abs-in-link", NULL, "leads out of the document's directory tree");
	via_symlink("dir-link", NULL, "a directory, not a regular file");
	/* --names-dir allows what is beneath it, and only that */
	snprintf(q, sizeof(q), "%s/trusted", top);
	refused(p, q, "an absolute path");
	snprintf(p, sizeof(p), "%s/trusted/../secret", top);
	refused(p, q, "a '..' component");
	snprintf(p, sizeof(p), "%s/trusted/out-link", top);
	via_symlink(p, q, "leads out of the --names-dir directory");
	snprintf(p, sizeof(p), "%s/trusted/private.txt", top);
	refused(p, q, "not readable by others");
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
	docdir = "doc"; /* whatever a failed test left */
	accepted("n.txt", NULL, "a.example");
	accepted("./n.txt", NULL, "a.example");
	accepted("sub/n.txt", NULL, "b.example");
	accepted("sub//n.txt", NULL, "b.example");
	accepted("sub/./n.txt", NULL, "b.example");
	linked("in-link", "b.example");
	linked("dir-link/n.txt", "b.example");
	snprintf(p, sizeof(p), "%s/trusted/n.txt", top);
	snprintf(q, sizeof(q), "%s/trusted/", top);
	accepted(p, q, "c.example");
	accepted("n.txt", q, "a.example"); /* relative: still the document's */
}

/* A document in a '/'-like directory (or a home directory) has every file
 * of the box beneath it: the mode rule refuses what its owner keeps
 * private (/etc/shadow 0640, a key 0600, the package's credentials),
 * while a list readable by all is read. */
static void test_root_like(void **state)
{
	(void)state;
	docdir = "root";
	refused("etc/shadow", NULL, "not readable by others");
	refused("root/.ssh/id_rsa", NULL, "not readable by others");
	refused("etc/regionfwd/credentials/etcd-password", NULL, "not readable by others");
	refused("etc/regionfwd/credentials/names.txt", NULL,
		"its directory etc/regionfwd/credentials cannot be entered by others");
	accepted("etc/hostname", NULL, "box1.example");
	accepted("./etc/hostname", NULL, "box1.example");
	docdir = "doc";
}

/* A readable file whose line is not a name: the document and the field's
 * line first, as every refusal, then the file and its line, and why, never
 * the line's text. Embedded (compact JSON, as regionctl sends it) the
 * document has no lines: the file's line is still there. */
static void test_bad_line_not_echoed(void **state)
{
	struct fwd_err err;
	char *out, b[768], p[256], want[512];
	size_t len;
	struct fwd_table *t;
	const char *why = "'bad.txt' line 2 is not a name (25 bytes, not shown): a name holds "
			  "letters, digits, '-', '_' and dots only";

	(void)state;
	docdir = "doc"; /* whatever a failed test left */
	for (int old = !have_openat2; old < 2; old++) {
		fwd_confine_no_openat2 = old;
		assert_int_equal(embed("bad.txt", NULL, &out, &err), 0);
		len = strlen(out);
		assert_null(t = fwd_table_parse(out, len, "t.yaml", -1, &err));
		free(out);
		snprintf(want, sizeof(want), "t.yaml: content_rules[0].names_file: %s", why);
		fwd_err_str(&err, b, sizeof(b));
		if (strcmp(b, want) || strstr(b, "secret") || strstr(b, "root:"))
			fail_msg("embedded (%s): '%s'", PATH_NAME(old), b);
		assert_null(t = load("bad.txt", &err));
		snprintf(p, sizeof(p), "%s/doc/t.yaml", top);
		snprintf(want, sizeof(want), "%s:5: content_rules[0].names_file: %s", p, why);
		fwd_err_str(&err, b, sizeof(b));
		if (strcmp(b, want) || strstr(b, "secret") || strstr(b, "root:"))
			fail_msg("load (%s): '%s'", PATH_NAME(old), b);
	}
	fwd_confine_no_openat2 = 0;
}

/* A control character in the path (a newline would forge a log line, an
 * escape sequence would talk to the terminal) is escaped in every error. */
static void test_path_escaped(void **state)
{
	const struct fwd_confine w = {
		.dir = "", .doc = "t.yaml", .line = 5, .field = "content_rules[0].names_file"};
	const char *bad[] = {"x\nnotice regiond: forged", "/etc/x\nforged", "a\x1b[2Jb/../c",
			     "gone\r\n.txt"};
	struct fwd_err err;
	char *buf = NULL, b[768];
	size_t len;

	(void)state;
	for (int old = !have_openat2; old < 2; old++)
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			fwd_confine_no_openat2 = old;
			memset(&err, 0, sizeof(err));
			assert_true(fwd_read_confined(&w, bad[i], &buf, &len, &err) < 0);
			assert_null(buf);
			fwd_err_str(&err, b, sizeof(b));
			for (const char *c = b; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					fail_msg("'%s' (%s): a control character in '%s'", bad[i],
						 PATH_NAME(old), b);
			assert_non_null(strstr(b, "\\x"));
		}
	fwd_confine_no_openat2 = 0;
}

/* A FIFO or a device is refused by its type without being opened: an open
 * can have effects (a watchdog device starts counting, a FIFO's writer
 * sees a reader). inotify reports every open (IN_OPEN) but an O_PATH one. */
static void test_not_opened_before_type(void **state)
{
	const char *const files[] = {"fifo", "dev"};
	char p[256];
	int have_dev;

	(void)state;
	docdir = "doc"; /* whatever a failed test left */
	snprintf(p, sizeof(p), "%s/doc/dev", top);
	have_dev = mknod(p, S_IFCHR | 0644, makedev(1, 3)) == 0; /* /dev/null's; root only */
	if (!have_dev)
		printf("[  SKIP    ] no device node without CAP_MKNOD: the FIFO only\n");
	for (unsigned f = 0; f < 1u + (unsigned)have_dev; f++) {
		char ev[4096];
		int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

		assert_true(in >= 0);
		snprintf(p, sizeof(p), "%s/doc/%s", top, files[f]);
		assert_true(inotify_add_watch(in, p, IN_OPEN) >= 0);
		refused(files[f], NULL, f ? "a character device" : "a FIFO");
		if (read(in, ev, sizeof(ev)) > 0)
			fail_msg("%s was opened before its type was known", files[f]);
		close(in);
	}
}

/* A rename race: doc/link is a symlink to ../outside, and another process
 * keeps exchanging outside/ (whose n.txt is the secret) with doc/inner/.
 * "link/n.txt" is reached outside the tree, and a moment later the file
 * reached lies inside it: a check of where it lies after the open (the
 * /proc/self/fd name the walk's predecessor compared) is beaten, a walk
 * that follows no symlink, or openat2, is not. Whatever the moment,
 * nothing is read through the link. */
static void test_rename_race(void **state)
{
	char a[256], b[256];
	pid_t pid;

	(void)state;
	docdir = "doc";
	dir("outside");
	put("outside/n.txt", SECRET "\n");
	dir("doc/inner");
	put("doc/inner/n.txt", SECRET "\n");
	link_to("../outside", "doc/link");
	snprintf(a, sizeof(a), "%s/outside", top);
	snprintf(b, sizeof(b), "%s/doc/inner", top);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
	}
	for (int old = !have_openat2; old < 2; old++) {
		fwd_confine_no_openat2 = old;
		for (int i = 0; i < 3000; i++) {
			struct fwd_err err;
			char *text = NULL;

			if (embed("link/n.txt", NULL, &text, &err) == 0) {
				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
				fail_msg("round %d (%s): read through a symlink out", i,
					 PATH_NAME(old));
			}
		}
	}
	fwd_confine_no_openat2 = 0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* A file that is not there is placed as every other refusal: the document,
 * the field's line and path, then the names file as the document wrote it
 * (it was "DIR/gone.txt: content_rules[0].names_file: cannot open: ...",
 * naming neither the document nor the line). */
static void test_missing(void **state)
{
	struct fwd_err err;
	struct fwd_table *t;
	char *out, b[768], p[256], want[512];

	(void)state;
	docdir = "doc"; /* whatever a failed test left */
	for (int old = !have_openat2; old < 2; old++) {
		fwd_confine_no_openat2 = old;
		assert_int_equal(embed("lists/gone.txt", NULL, &out, &err), -EINVAL);
		assert_null(out);
		assert_string_equal(
			fwd_err_str(&err, b, sizeof(b)),
			"t.yaml:5: content_rules[0].names_file: 'lists/gone.txt': cannot "
			"open: No such file or directory");
		assert_null(t = load("lists/gone.txt", &err));
		snprintf(p, sizeof(p), "%s/doc/t.yaml", top);
		snprintf(
			want, sizeof(want),
			"%s:5: content_rules[0].names_file: 'lists/gone.txt': cannot open: No such "
			"file or directory",
			p);
		assert_string_equal(fwd_err_str(&err, b, sizeof(b)), want);
	}
	fwd_confine_no_openat2 = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_root_like),
		cmocka_unit_test(test_bad_line_not_echoed),
		cmocka_unit_test(test_path_escaped),
		cmocka_unit_test(test_not_opened_before_type),
		cmocka_unit_test(test_rename_race),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
