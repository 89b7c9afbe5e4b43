/*
 * The saved pushed table (dataplane/dp_saved.c): what regionfwd writes is
 * what it reads back, and every way the file can be damaged (absent, torn,
 * truncated, appended to, edited, another format or version, a header
 * out of range) is refused with the file named, never run.
 */
#define _GNU_SOURCE /* memmem */
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

#include "dp_saved.h"
#include "fwd_doc.h"
#include "fwd_hash.h"

static char dir[64], path[128];
static const char doc[] = "regions:\n  india: {prefixes: [10.0.0.0/8]}\n";

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_saved.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/regionfwd.pushed", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void put(const char *bytes, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	fclose(f);
}

static char *slurp(size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = malloc(1 << 16);

	assert_non_null(f);
	*len = fread(b, 1, 1 << 16, f);
	fclose(f);
	return b;
}

/* Refused, the file named in the error, nothing returned. */
static void refused(const char *why)
{
	struct dp_saved s;
	struct fwd_err e = {0};

	assert_true(dp_saved_read(path, &s, &e) < 0);
	assert_string_equal(e.file, path);
	assert_non_null(strstr(e.reason, why));
	assert_null(s.doc);
}

/* @good (@len bytes) with its first @from replaced by @to (as long), put in
 * place of the save: refused, saying @why. */
static void refused_edit(const char *good, size_t len, const char *from, const char *to,
			 const char *why)
{
	char *b = malloc(len + 1), *at;

	assert_non_null(b);
	assert_int_equal(strlen(from), strlen(to));
	memcpy(b, good, len);
	b[len] = '\0';
	at = strstr(b, from);
	assert_non_null(at);
	memcpy(at, to, strlen(to));
	put(b, len);
	refused(why);
	free(b);
}

static void test_round_trip(void **state)
{
	struct dp_saved s;
	struct fwd_err e = {0};

	(void)state;
	assert_int_equal(dp_saved_write(path, 42, 0, "regiond", 0, doc, strlen(doc)), 0);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_int_equal(s.id, 42);
	assert_int_equal(s.hash, fwd_hash64(doc, strlen(doc)));
	assert_string_equal(s.pushed_by, "regiond");
	assert_int_equal(s.len, strlen(doc));
	assert_memory_equal(s.doc, doc, strlen(doc));
	dp_saved_clear(&s);
	/* A second save replaces the first whole; no temporary file is left. */
	assert_int_equal(dp_saved_write(path, 43, 0, "other\nname", 0, "x: 1\n", 5), 0);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_int_equal(s.id, 43);
	assert_string_equal(s.pushed_by, "other\nname");
	assert_string_equal(s.doc, "x: 1\n");
	dp_saved_clear(&s);
	char tmp[160];

	snprintf(tmp, sizeof(tmp), "%s/.regionfwd.pushed.%ld.tmp", dir, (long)getpid());
	assert_int_equal(access(tmp, F_OK), -1);
}

/* Records appended in one call (a chain written whole: one fsync) and one
 * by one read back alike, in order; a torn last record ends the journal,
 * and removing the save takes the journal with it. */
static void test_journal_records_and_remove(void **state)
{
	uint8_t a[] = {1, 2, 3}, b[] = {4}, c[] = {5, 6}, d[] = {7, 8, 9, 10};
	uint8_t *const recs[] = {a, b, c};
	const uint64_t ids[] = {43, 44, 45}, hashes[] = {0x43, 0x44, 0x45};
	const size_t lens[] = {sizeof(a), sizeof(b), sizeof(c)};
	uint8_t *const more[] = {d};
	const uint64_t id4 = 46, hash4 = 0x46;
	const size_t len4 = sizeof(d);
	struct dp_saved s;
	struct fwd_err e = {0};
	char jp[160];

	(void)state;
	snprintf(jp, sizeof(jp), "%s.deltas", path);
	assert_int_equal(dp_saved_write(path, 42, 0, "regiond", 0, doc, strlen(doc)), 0);
	assert_int_equal(dp_saved_journal_len(path), 0); /* none yet */
	assert_int_equal(dp_saved_journal_cut(path, 0), 0);
	assert_int_equal(dp_saved_append(path, ids, hashes, recs, lens, 3), 0);
	/* A record appended and cut off again (its push refused): as before. */
	long long three = dp_saved_journal_len(path);

	assert_true(three > 0);
	assert_int_equal(dp_saved_append(path, &id4, &hash4, more, &len4, 1), 0);
	assert_int_equal(dp_saved_journal_cut(path, three), 0);
	assert_int_equal(dp_saved_journal_len(path), three);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_int_equal(s.ndeltas, 3);
	assert_string_equal(s.journal_note, "");
	dp_saved_clear(&s);
	assert_int_equal(dp_saved_append(path, &id4, &hash4, more, &len4, 1), 0);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_int_equal(s.ndeltas, 4);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(s.deltas[i].id, ids[i]);
		assert_int_equal(s.deltas[i].hash, hashes[i]);
		assert_int_equal(s.deltas[i].len, lens[i]);
		assert_memory_equal(s.deltas[i].changes, recs[i], lens[i]);
	}
	assert_int_equal(s.deltas[3].id, 46);
	assert_memory_equal(s.deltas[3].changes, d, sizeof(d));
	assert_string_equal(s.journal_note, "");
	dp_saved_clear(&s);
	/* The last record torn (a crash in its write): the first three stay. */
	struct stat st;

	assert_int_equal(stat(jp, &st), 0);
	assert_int_equal(truncate(jp, st.st_size - 3), 0);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_int_equal(s.ndeltas, 3);
	assert_int_equal(s.deltas[2].id, 45);
	assert_string_not_equal(s.journal_note, "");
	dp_saved_clear(&s);
	assert_int_equal(dp_saved_remove(path), 1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(jp, F_OK), -1);
	assert_int_equal(dp_saved_remove(path), 0);
}

static void test_absent_is_not_an_error(void **state)
{
	struct dp_saved s;
	struct fwd_err e = {0};

	(void)state;
	unlink(path);
	assert_int_equal(dp_saved_read(path, &s, &e), -ENOENT);
	assert_string_equal(e.reason, "");
}

static void test_damage_is_refused(void **state)
{
	size_t len;
	char *good, *b;

	(void)state;
	assert_int_equal(dp_saved_write(path, 7, 0, "regiond", 0, doc, strlen(doc)), 0);
	good = slurp(&len);
	b = malloc(len + 8);

	put(good, len - 3); /* truncated */
	refused("truncated or appended to");
	memcpy(b, good, len);
	memcpy(b + len, "more\n", 5); /* appended to */
	put(b, len + 5);
	refused("truncated or appended to");
	refused_edit(good, len, "10.0", "90.0", "does not match its recorded hash"); /* edited */
	put(good, (size_t)(strchr(good, '\n') - good)); /* torn inside the header */
	refused("no header line");
	put("regions: {}\n", 12); /* a table document, not a save */
	refused("not a saved pushed table");
	put("", 0);
	refused("no header line");
	refused_edit(good, len, "\"version\":2", "\"version\":4", "version 4");
	refused_edit(good, len, "\"generation\":7", "\"generation\":0", "out of range");
	/* The header's own fields are checked too: a flipped digit in the
	 * generation id, or another pusher, is not resumed as if sound. */
	refused_edit(good, len, "\"generation\":7", "\"generation\":8", "does not match its check");
	refused_edit(good, len, "\"pushed_by\":\"regiond\"", "\"pushed_by\":\"regionx\"",
		     "does not match its check");
	refused_edit(good, len, "\"check\":\"", "\"chock\":\"", "missing");
	free(b);
	free(good);
}

/* The controller that pushed (a regiond's state directory identity) is
 * saved, covered by the check, and read back strictly; a save without one
 * (an older regionfwd's, or a sender that said none) reads as 0. */
static void test_controller_is_kept_and_checked(void **state)
{
	const uint64_t who = 0x0123456789abcdefULL;
	struct dp_saved s;
	struct fwd_err e = {0};
	size_t len;
	char *good;

	(void)state;
	assert_int_equal(dp_saved_write(path, 9, 0, "regiond", who, doc, strlen(doc)), 0);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_true(s.controller == who);
	assert_string_equal(s.pushed_by, "regiond");
	dp_saved_clear(&s);
	good = slurp(&len);
	assert_non_null(memmem(good, len, "\"controller\":\"0123456789abcdef\"", 31));
	assert_non_null(memmem(good, len, "\"version\":3", 11));
	/* Another controller's identity: the check no longer matches. */
	refused_edit(good, len, "0123456789abcdef", "0123456789abcdee", "does not match its check");
	/* Not 16 hex digits (a sign strtoull would take, a non-digit). */
	refused_edit(good, len, "0123456789abcdef", "-123456789abcdef",
		     "not an identity of 16 hex digits");
	refused_edit(good, len, "0123456789abcdef", "0000000000000000",
		     "not an identity of 16 hex digits");
	/* Removed (renamed away), or the version taken back to 2 (which a
	 * regionfwd before the controller would read): refused. */
	refused_edit(good, len, "\"controller\"", "\"controllex\"", "only they, have one");
	refused_edit(good, len, "\"version\":3", "\"version\":2", "only they, have one");
	free(good);
	/* None said: none written, 0 read back. */
	assert_int_equal(dp_saved_write(path, 10, 0, "regiond", 0, doc, strlen(doc)), 0);
	good = slurp(&len);
	assert_null(memmem(good, len, "controller", 10));
	assert_non_null(memmem(good, len, "\"version\":2", 11));
	free(good);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_true(s.controller == 0);
	dp_saved_clear(&s);
}

/* A save of the previous release (version 1, no check) is still resumed
 * after an upgrade. */
static void test_version_1_is_read(void **state)
{
	struct dp_saved s;
	struct fwd_err e = {0};
	char b[512];
	int n;

	(void)state;
	n = snprintf(b, sizeof(b),
		     "{\"format\":\"regionfwd-pushed-table\",\"version\":1,\"generation\":9,"
		     "\"hash\":\"%016llx\",\"bytes\":%zu,\"pushed_by\":\"regiond\"}\n%s",
		     (unsigned long long)fwd_hash64(doc, strlen(doc)), strlen(doc), doc);
	put(b, (size_t)n);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_int_equal(s.id, 9);
	assert_string_equal(s.pushed_by, "regiond");
	assert_memory_equal(s.doc, doc, strlen(doc));
	dp_saved_clear(&s);
}

/* A journal of deltas that is there but cannot be read (a directory, a
 * dangling link) is said: the start would run the document alone, an
 * older table than was pushed. It was ignored as if there were none. A
 * save that is a dangling link is refused, not taken for none. */
static void test_unreadable_journal_and_dangling_save_are_said(void **state)
{
	char jp[160];
	struct dp_saved s;
	struct fwd_err e = {0};

	(void)state;
	snprintf(jp, sizeof(jp), "%s.deltas", path);
	assert_int_equal(dp_saved_write(path, 7, 0, "regiond", 0, doc, strlen(doc)), 0);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_string_equal(s.journal_note, ""); /* none: no delta since */
	dp_saved_clear(&s);
	assert_int_equal(mkdir(jp, 0700), 0);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_non_null(strstr(s.journal_note, jp));
	assert_non_null(strstr(s.journal_note, "not a regular file"));
	assert_int_equal(s.ndeltas, 0);
	dp_saved_clear(&s);
	assert_int_equal(rmdir(jp), 0);
	assert_int_equal(symlink("/nonexistent/deltas", jp), 0);
	assert_int_equal(dp_saved_read(path, &s, &e), 0);
	assert_non_null(strstr(s.journal_note, "are not applied"));
	dp_saved_clear(&s);
	assert_int_equal(unlink(jp), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/nonexistent/pushed", path), 0);
	refused("symbolic link to nothing");
	assert_int_equal(unlink(path), 0);
}

static void test_unwritable_directory(void **state)
{
	char bad[160];

	(void)state;
	snprintf(bad, sizeof(bad), "%s/missing/regionfwd.pushed", dir);
	assert_int_equal(dp_saved_write(bad, 1, 0, "regiond", 0, doc, strlen(doc)), -ENOENT);
}

/* fwd_write_atomic() (under every saved file): a replacement keeps the
 * mode the file it replaces has (an operator's chmod), and a temporary file
 * a crash left behind lends the new one nothing, its loose mode least. */
static void test_atomic_write_keeps_the_mode(void **state)
{
	char stale[160];
	struct stat st;
	struct iovec part = {.iov_base = (void *)doc, .iov_len = strlen(doc)};
	mode_t old = umask(022);
	FILE *f;

	(void)state;
	assert_int_equal(fwd_write_atomic(dir, "kept", &part, 1), 0);
	snprintf(stale, sizeof(stale), "%s/kept", dir);
	assert_int_equal(stat(stale, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(chmod(stale, 0600), 0);
	assert_int_equal(fwd_write_atomic(dir, "kept", &part, 1), 0);
	assert_int_equal(stat(stale, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	snprintf(stale, sizeof(stale), "%s/.fresh.%ld.tmp", dir, (long)getpid());
	f = fopen(stale, "w");
	assert_non_null(f);
	fputs("left by a crash", f);
	fclose(f);
	assert_int_equal(chmod(stale, 0666), 0);
	assert_int_equal(fwd_write_atomic_mode(dir, "fresh", &part, 1, 0644), 0);
	assert_int_equal(stat(stale, &st), -1);
	snprintf(stale, sizeof(stale), "%s/fresh", dir);
	assert_int_equal(stat(stale, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(st.st_size, strlen(doc));
	umask(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_absent_is_not_an_error),
		cmocka_unit_test(test_damage_is_refused),
		cmocka_unit_test(test_controller_is_kept_and_checked),
		cmocka_unit_test(test_version_1_is_read),
		cmocka_unit_test(test_unreadable_journal_and_dangling_save_are_said),
		cmocka_unit_test(test_journal_records_and_remove),
		cmocka_unit_test(test_unwritable_directory),
		cmocka_unit_test(test_atomic_write_keeps_the_mode),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
