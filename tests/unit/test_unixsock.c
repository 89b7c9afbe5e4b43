/*
 * Listening unix sockets (common/fwd_unixsock.c): the socket file appears
 * only once it accepts, with its mode; a stale socket is replaced; anything
 * else on the path is refused and left as it was; and no temporary name is
 * left behind, on success or on failure.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "fwd_unixsock.h"

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/fwd_unixsock.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	return 0;
}

static int teardown(void **state)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[sizeof(dir) + sizeof(e->d_name) + 2];

	(void)state;
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	return rmdir(dir);
}

/* How many names the directory holds (not . and ..). */
static int entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	if (d != NULL)
		closedir(d);
	return n;
}

static int connect_to(const char *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0 || strlen(p) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, p, strlen(p) + 1);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc;
}

static void test_listens_with_its_mode(void **state)
{
	const char *why = NULL;
	struct stat st;
	int fd;

	(void)state;
	fd = fwd_unix_listen(path, 0, 4, 0660, (gid_t)-1, &why);
	assert_true(fd >= 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(connect_to(path), 0);
	assert_int_equal(entries(), 1); /* no temporary name left */
	close(fd);
}

static void test_stale_socket_replaced(void **state)
{
	const char *why = NULL;
	int old, fd;

	(void)state;
	old = fwd_unix_listen(path, 0, 4, 0600, (gid_t)-1, &why);
	assert_true(old >= 0);
	close(old); /* a stopped process's socket: refuses connections */
	assert_int_equal(connect_to(path), -1);
	fd = fwd_unix_listen(path, 0, 4, 0660, (gid_t)-1, &why);
	assert_true(fd >= 0);
	assert_int_equal(connect_to(path), 0);
	assert_int_equal(entries(), 1);
	close(fd);
}

static void test_live_socket_never_taken(void **state)
{
	const char *why = NULL;
	struct stat before, after;
	int old;

	(void)state;
	/* A second regiond started on a running one's --api-socket once
	 * renamed its own over it: the first ran on, unreachable. */
	old = fwd_unix_listen(path, 0, 4, 0600, (gid_t)-1, &why);
	assert_true(old >= 0);
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(fwd_unix_path_free(path), -EADDRINUSE);
	assert_int_equal(fwd_unix_listen(path, 0, 4, 0660, (gid_t)-1, &why), -EADDRINUSE);
	assert_non_null(strstr(why, "a running process listens on it"));
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino); /* still the first's */
	assert_int_equal(entries(), 1); /* no temporary name left */
	assert_int_equal(connect_to(path), 0);
	close(old);
	/* stopped, it is stale: taken over */
	old = fwd_unix_listen(path, 0, 4, 0660, (gid_t)-1, &why);
	assert_true(old >= 0);
	close(old);
}

static void test_non_socket_refused_and_kept(void **state)
{
	const char *why = NULL;
	char back[16] = {0};
	FILE *f = fopen(path, "w");

	(void)state;
	fputs("table", f);
	fclose(f);
	assert_int_equal(fwd_unix_path_free(path), -EEXIST);
	assert_int_equal(fwd_unix_listen(path, 0, 4, 0660, (gid_t)-1, &why), -EEXIST);
	assert_non_null(strstr(why, "not a socket"));
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(back, sizeof(back), f));
	fclose(f);
	assert_string_equal(back, "table");
	assert_int_equal(entries(), 1);

	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0); /* a directory is not a socket either */
	assert_int_equal(fwd_unix_listen(path, 0, 4, 0660, (gid_t)-1, &why), -EEXIST);
	rmdir(path);
}

static void test_failures_leave_nothing(void **state)
{
	const char *why = NULL;
	char missing[160], longp[200];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/no/such/dir.sock", dir);
	assert_int_equal(fwd_unix_listen(missing, 0, 4, 0660, (gid_t)-1, &why), -ENOENT);
	assert_string_equal(why, "bind");
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(fwd_unix_listen(longp, 0, 4, 0660, (gid_t)-1, &why), -ENAMETOOLONG);
	assert_string_equal(why, "path too long");
	assert_int_equal(entries(), 0);
}

/* A path so long that the temporary name does not fit is bound in place. */
static void test_longest_path_binds_in_place(void **state)
{
	const char *why = NULL;
	char p[108];
	size_t n = (size_t)snprintf(p, sizeof(p), "%s/", dir);
	int fd;

	(void)state;
	memset(p + n, 's', sizeof(p) - 1 - n);
	p[sizeof(p) - 1] = '\0';
	fd = fwd_unix_listen(p, 0, 4, 0660, (gid_t)-1, &why);
	assert_true(fd >= 0);
	assert_int_equal(connect_to(p), 0);
	assert_int_equal(entries(), 1);
	close(fd);
}

/*
 * The window this module closes: bind() creates the file before listen(),
 * so a client that waits for the file could connect and be refused. For
 * each of many starts, a watcher polls the path from before the start and
 * connects as soon as it sees the file; every such connection must be
 * accepted. The start's socket is removed only once the watcher has
 * connected: so it connects once to each socket (a backlog filled by many
 * connections, or a socket closed under a connect, refuses too, and that is
 * not the window).
 */
static int started, handled, refused;

static void *watch(void *arg)
{
	struct stat st;

	(void)arg;
	for (;;) {
		int want = __atomic_load_n(&started, __ATOMIC_ACQUIRE);

		if (want < 0)
			return NULL;
		if (want == __atomic_load_n(&handled, __ATOMIC_RELAXED) || lstat(path, &st) != 0)
			continue;
		if (connect_to(path) != 0)
			refused++;
		__atomic_store_n(&handled, want, __ATOMIC_RELEASE);
	}
}

static void test_never_seen_before_it_listens(void **state)
{
	const char *why = NULL;
	pthread_t t;
	int n = 2000;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, watch, NULL), 0);
	for (int i = 1; i <= n; i++) {
		int fd;

		/* Release: the path was unlinked before the watcher may look. */
		__atomic_store_n(&started, i, __ATOMIC_RELEASE);
		fd = fwd_unix_listen(path, 0, 4, 0660, (gid_t)-1, &why);
		assert_true(fd >= 0);
		while (__atomic_load_n(&handled, __ATOMIC_ACQUIRE) != i)
			sched_yield();
		unlink(path);
		close(fd);
	}
	__atomic_store_n(&started, -1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	printf("%d starts, %d connections refused\n", n, refused);
	assert_int_equal(refused, 0);
}

/* A socket taken away (removed, renamed, its directory gone) is bound
 * again at its path, with its mode, only where nothing else listens; the
 * file another process put there is never unlinked as ours. */
static void test_kept_on_its_path(void **state)
{
	struct fwd_unix_keep k;
	char sub[sizeof(dir) + 8], away[sizeof(dir) + 8], p[sizeof(sub) + 16];
	const char *why = NULL;
	struct stat st;
	int fd, nfd = -1, other;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/run", dir);
	snprintf(away, sizeof(away), "%s/away", dir);
	snprintf(p, sizeof(p), "%s/ctl.sock", sub);
	assert_int_equal(mkdir(sub, 0700), 0);
	fd = fwd_unix_keep_listen(&k, p, 0, 4, 0640, (gid_t)-1, &why);
	assert_true(fd >= 0);
	assert_int_equal(fwd_unix_keep_check(&k, &nfd), 0); /* still there */
	assert_int_equal(nfd, -1);

	assert_int_equal(unlink(p), 0);
	assert_int_equal(fwd_unix_keep_check(&k, &nfd), 1);
	assert_true(nfd >= 0);
	assert_string_equal(k.gone, "was removed or renamed away");
	close(fd);
	fd = nfd;
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(connect_to(p), 0);
	assert_int_equal(fwd_unix_keep_check(&k, &nfd), 0);

	/* its directory gone: said, and tried again until it is back */
	assert_int_equal(rename(sub, away), 0);
	assert_int_equal(fwd_unix_keep_check(&k, &nfd), -ENOENT);
	assert_string_equal(k.error, "bind: No such file or directory");
	/* put back: the socket bound is there again, nothing is bound anew */
	assert_int_equal(rename(away, sub), 0);
	assert_int_equal(fwd_unix_keep_check(&k, &nfd), 0);
	assert_string_equal(k.error, "");
	assert_int_equal(connect_to(p), 0);
	assert_int_equal(rename(sub, away), 0);
	assert_int_equal(fwd_unix_keep_check(&k, &nfd), -ENOENT);
	assert_int_equal(mkdir(sub, 0700), 0);

	/* another process's live socket there is left alone */
	other = fwd_unix_listen(p, 0, 4, 0600, (gid_t)-1, &why);
	assert_true(other >= 0);
	assert_int_equal(fwd_unix_keep_check(&k, &nfd), -EADDRINUSE);
	assert_non_null(strstr(k.error, "a running process listens on it"));
	fwd_unix_keep_unlink(&k); /* not ours: kept */
	assert_int_equal(connect_to(p), 0);
	close(other); /* stale now: taken over */
	assert_int_equal(fwd_unix_keep_check(&k, &nfd), 1);
	assert_string_equal(k.gone, "was replaced by another file");
	assert_string_equal(k.error, "");
	close(fd);
	fd = nfd;
	assert_int_equal(connect_to(p), 0);
	fwd_unix_keep_unlink(&k); /* ours: removed */
	assert_int_equal(lstat(p, &st), -1);
	close(fd);

	snprintf(p, sizeof(p), "%s/ctl.sock", away);
	unlink(p);
	assert_int_equal(rmdir(away), 0);
	assert_int_equal(rmdir(sub), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_listens_with_its_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_socket_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_socket_never_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_socket_refused_and_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_longest_path_binds_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_seen_before_it_listens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_on_its_path, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
