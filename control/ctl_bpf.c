#include "ctl_bpf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <net/if.h>
#include <stdio.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <linux/magic.h>

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fwd_clock.h"
#include "fwd_log.h"
#include "xdp_filter.skel.h"

enum {
	M_CFG,
	M_TBL16,
	M_TBL8,
	M_V6,
	M_V6LEN,
	M_PREFIX_RULE,
	M_PORTS,
	M_RULES,
	M_RULE_STATS,
	M_COUNTERS,
	M_BUCKETS,
	M_NUM
};
static const char *const map_names[M_NUM] = {
	"flt_cfg",	  "flt_v4_tbl16",    "flt_v4_tbl8", "flt_v6",
	"flt_v6_lengths", "flt_prefix_rule", "flt_ports",   "flt_rules",
	"flt_rule_stats", "flt_counters",    "flt_buckets",
};

/* Maps a filter pinned or attached by an older regiond lacks, so that it is
 * still adopted: drop capture's (without capture then), and the per-half
 * policies (an older program reads them from flt_cfg, which is written for
 * it too). */
enum { C_FLAG, C_RB, C_HALF, C_NUM };
static const char *const cap_names[C_NUM] = {"flt_capture", "flt_cap_rb", "flt_half"};

struct ctl_bpf {
	struct xdp_filter_bpf *skel; /* NULL when adopted from pins */
	int prog_fd;
	int fd[M_NUM];
	int cap_fd[C_NUM]; /* -1: this filter has no drop capture */
	struct ctl_bpf_conf conf;
	int ncpus;
	/* ctl_bpf_open_pinned(): the pin directory, flock'ed for as long as
	 * this handle lives (0: none), and whether this start made it */
	int dir_lock, made_dir;
	/* The program's loaded_by_regiond (bpf/xdp_filter.bpf.c): 1 when a
	 * regiond loaded it, 0 for another loader's or an older regiond's. */
	int by_regiond;
	/* IPv6 keys written into each half, to delete them before reuse. */
	struct fwd_flt_v6_key *v6keys[2];
	uint32_t nv6keys[2];
};

/* What the kernel said of the last refusal on this thread ("Kernel error
 * message: ..." in libbpf's output), for the refusal's own words. */
static __thread char kernel_said[200];

/* libbpf's messages go to regiond's log, not raw to stderr, and once while
 * they repeat: a native attach the kernel kept refusing (a veth's peer MTU)
 * printed its line every second with no timestamp or level (a probe).
 * Debug output is dropped. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static __thread char prev[512];
	static __thread int64_t prev_ms;
	static const char kmsg[] = "Kernel error message: ";
	/* A refused load's verifier log comes as one message, its reason at
	 * the end: the tail is what is kept of a long one. */
	enum { KEEP = 3000 };
	char *buf = NULL;
	const char *k, *text;
	va_list aq;
	int len;
	size_t n;

	if (level == LIBBPF_DEBUG)
		return 0;
	va_copy(aq, ap);
	len = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (len < 0 || (buf = malloc((size_t)len + 1)) == NULL)
		return 0;
	vsnprintf(buf, (size_t)len + 1, fmt, ap);
	n = (size_t)len;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if ((k = strstr(buf, kmsg)) != NULL)
		snprintf(kernel_said, sizeof(kernel_said), "%s", k + sizeof(kmsg) - 1);
	text = n > KEEP ? buf + n - KEEP : buf;
	/* once while it repeats, and again after a minute */
	if (strncmp(prev, text, sizeof(prev) - 1) != 0 || fwd_mono_ms() - prev_ms >= 60000) {
		snprintf(prev, sizeof(prev), "%s", text);
		prev_ms = fwd_mono_ms();
		fwd_log(level == LIBBPF_WARN ? FWD_LOG_WARNING : FWD_LOG_INFO, "libbpf: %s%s",
			text == buf ? "" : "...", text);
	}
	free(buf);
	return 0;
}

static void set_print(void)
{
	libbpf_set_print(libbpf_print);
}

static void route_libbpf(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, set_print);
}

/* " (the kernel: ...)" when it said why the last call failed, else "". */
static const char *kernel_why(char *buf, size_t len)
{
	if (kernel_said[0] == '\0')
		return "";
	snprintf(buf, len, " (the kernel: %s)", kernel_said);
	return buf;
}

struct ctl_bpf *ctl_bpf_load(const struct ctl_bpf_conf *conf, struct fwd_err *err)
{
	struct ctl_bpf *b = calloc(1, sizeof(*b));
	uint32_t pfx = conf->max_prefixes ? conf->max_prefixes : 1;
	uint32_t grp = conf->max_groups ? conf->max_groups : 1;
	int rc;

	/* 2 * grp * 256 entries, and every index into them, in 32 bits */
	if ((uint64_t)grp * 512 > UINT32_MAX || (uint64_t)pfx * 2 > UINT32_MAX) {
		fwd_err_set(err, "", 0, "filters",
			    "the filter cannot hold %u IPv4 groups or %u prefixes: at most %u "
			    "and %u",
			    grp, pfx, UINT32_MAX / 512, UINT32_MAX / 2);
		return NULL;
	}

	route_libbpf();
	if (b == NULL) {
		fwd_err_set(err, "", 0, "filters", "out of memory");
		return NULL;
	}
	b->conf = (struct ctl_bpf_conf){.max_prefixes = pfx, .max_groups = grp};
	for (int m = 0; m < C_NUM; m++)
		b->cap_fd[m] = -1;
	b->ncpus = libbpf_num_possible_cpus();
	b->skel = xdp_filter_bpf__open();
	if (b->skel == NULL) {
		fwd_err_set(err, "", 0, "filters", "cannot open the XDP filter object: %s",
			    strerror(errno));
		goto fail;
	}
	b->skel->rodata->loaded_by_regiond = 1;
	b->by_regiond = 1;
	if ((rc = bpf_map__set_max_entries(b->skel->maps.flt_v4_tbl8, 2 * grp * 256)) ||
	    (rc = bpf_map__set_max_entries(b->skel->maps.flt_v6, 2 * pfx)) ||
	    (rc = bpf_map__set_max_entries(b->skel->maps.flt_prefix_rule, 2 * pfx)) ||
	    (rc = bpf_map__set_max_entries(b->skel->maps.flt_buckets, 2 * pfx))) {
		fwd_err_set(err, "", 0, "filters", "cannot size the filter maps: %s",
			    strerror(-rc));
		goto fail;
	}
	rc = xdp_filter_bpf__load(b->skel);
	if (rc) {
		fwd_err_set(err, "", 0, "filters", "the kernel refused the XDP filter: %s",
			    strerror(-rc));
		goto fail;
	}
	b->prog_fd = bpf_program__fd(b->skel->progs.xdp_filter);
	for (int m = 0; m < M_NUM; m++)
		b->fd[m] = bpf_map__fd(bpf_object__find_map_by_name(b->skel->obj, map_names[m]));
	for (int m = 0; m < C_NUM; m++)
		b->cap_fd[m] =
			bpf_map__fd(bpf_object__find_map_by_name(b->skel->obj, cap_names[m]));
	return b;
fail:
	ctl_bpf_free(b);
	return NULL;
}

int ctl_bpf_prog_fd(const struct ctl_bpf *b)
{
	return b->prog_fd;
}

/* Array maps: write [first, first + n) from @vals in batches. */
static int array_write(int fd, uint32_t first, const void *vals, size_t vsize, uint32_t n)
{
	enum { CHUNK = 65536 };
	uint32_t *keys = malloc(sizeof(*keys) * CHUNK);
	int rc = 0;

	if (keys == NULL)
		return -ENOMEM;
	for (uint32_t off = 0; off < n && rc == 0; off += CHUNK) {
		uint32_t cnt = n - off < CHUNK ? n - off : CHUNK;

		for (uint32_t i = 0; i < cnt; i++)
			keys[i] = first + off + i;
		rc = bpf_map_update_batch(fd, keys, (const char *)vals + (size_t)off * vsize, &cnt,
					  NULL);
	}
	free(keys);
	return rc;
}

static int has_rate_rule(const struct fwd_flt_image *img)
{
	for (uint32_t i = 0; i < img->nrules; i++)
		if (img->rules[i].action == FWD_FLT_RATE)
			return 1;
	return 0;
}

int ctl_bpf_apply(struct ctl_bpf *b, const struct fwd_flt_image *img, uint8_t default_action,
		  uint8_t non_ip_action, uint8_t malformed_action, uint8_t redirect, uint32_t gen,
		  struct fwd_err *err)
{
	uint32_t zero = 0, half, gbase, pbase, *v = NULL;
	struct fwd_flt_cfg cfg;
	uint16_t *pr = NULL;
	struct fwd_flt_rule *rules = NULL;
	uint8_t lens[FWD_FLT_MAX_V6_LENGTHS] = {0};
	int rc;

	if (img->ngroups > b->conf.max_groups || img->nprefix > b->conf.max_prefixes)
		return fwd_err_set(err, "", 0, "filters",
				   "the filter needs %u prefixes and %u IPv4 groups; it was loaded "
				   "for %u and %u",
				   img->nprefix, img->ngroups, b->conf.max_prefixes,
				   b->conf.max_groups);
	if ((rc = bpf_map_lookup_elem(b->fd[M_CFG], &zero, &cfg)))
		return fwd_err_set(err, "", 0, "filters", "cannot read the filter config: %s",
				   strerror(errno));
	half = (cfg.active & 1) ^ 1; /* the one the program is not reading */
	gbase = half * b->conf.max_groups;
	pbase = half * b->conf.max_prefixes;

	/* Translate image-local indexes into this half's. */
	v = malloc(sizeof(*v) *
		   ((size_t)img->ngroups * 256 > 65536 ? (size_t)img->ngroups * 256 : 65536));
	pr = malloc(sizeof(*pr) * (img->nprefix ? img->nprefix : 1));
	rules = calloc(FWD_FLT_MAX_RULES, sizeof(*rules));
	if (v == NULL || pr == NULL || rules == NULL) {
		rc = -ENOMEM;
		goto out;
	}
#define XLATE(e)                                                                                   \
	((e)&FWD_FLT_GROUP ? FWD_FLT_GROUP | (gbase + ((e) & ~FWD_FLT_GROUP))                      \
	 : (e)		   ? pbase + (e)                                                           \
			   : 0)
	for (uint32_t i = 0; i < 65536; i++)
		v[i] = XLATE(img->tbl16[i]);
	if ((rc = array_write(b->fd[M_TBL16], half * 65536, v, sizeof(*v), 65536)))
		goto out;
	for (uint32_t i = 0; i < img->ngroups * 256; i++)
		v[i] = XLATE(img->tbl8[i]);
#undef XLATE
	if (img->ngroups &&
	    (rc = array_write(b->fd[M_TBL8], gbase * 256, v, sizeof(*v), img->ngroups * 256)))
		goto out;
	memcpy(pr, img->prefix_rule, sizeof(*pr) * img->nprefix);
	if (img->nprefix &&
	    (rc = array_write(b->fd[M_PREFIX_RULE], pbase, pr, sizeof(*pr), img->nprefix)))
		goto out;
	if ((rc = array_write(b->fd[M_PORTS], half * 3 * 65536, img->ports, sizeof(img->ports[0]),
			      3 * 65536)))
		goto out;
	memcpy(rules, img->rules, sizeof(*rules) * img->nrules);
	if ((rc = array_write(b->fd[M_RULES], half * FWD_FLT_MAX_RULES, rules, sizeof(*rules),
			      FWD_FLT_MAX_RULES)))
		goto out;
	memcpy(lens, img->v6_lengths, img->n_v6_lengths);
	if ((rc = array_write(b->fd[M_V6LEN], half * FWD_FLT_MAX_V6_LENGTHS, lens, 1,
			      FWD_FLT_MAX_V6_LENGTHS)))
		goto out;
	/* IPv6 entries: drop what this half held, write the new ones. */
	for (uint32_t i = 0; i < b->nv6keys[half]; i++)
		bpf_map_delete_elem(b->fd[M_V6], &b->v6keys[half][i]);
	free(b->v6keys[half]);
	b->nv6keys[half] = 0;
	b->v6keys[half] = calloc(img->nv6 ? img->nv6 : 1, sizeof(struct fwd_flt_v6_key));
	if (b->v6keys[half] == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < img->nv6; i++) {
		struct fwd_flt_v6_key *k = &b->v6keys[half][i];
		uint32_t val = pbase + img->v6[i].prefix + 1;

		k->half = (uint8_t)half;
		k->len = img->v6[i].len;
		memcpy(k->addr, img->v6[i].addr, 16);
		if ((rc = bpf_map_update_elem(b->fd[M_V6], k, &val, BPF_ANY)))
			goto out;
		b->nv6keys[half]++;
	}
	/* The rate state of the prefixes this half now holds starts fresh: an
	 * index keeps no state of the prefix it named two updates ago (a
	 * review found none was cleared: a new rate rule inherited the old
	 * one's theoretical arrival time, up to burst / rate ahead, and
	 * dropped its first packets for that long). The program is not
	 * reading this half; the spin lock field is not copied from here. */
	if (has_rate_rule(img) && img->nprefix) {
		struct fwd_flt_bucket *zeros = calloc(img->nprefix, sizeof(*zeros));

		if (zeros == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		rc = array_write(b->fd[M_BUCKETS], pbase, zeros, sizeof(*zeros), img->nprefix);
		free(zeros);
		if (rc)
			goto out;
	}
	/* The half's policies, with its rules, before the flip. */
	if (b->cap_fd[C_HALF] >= 0) {
		struct fwd_flt_half hv = {.generation = gen,
					  .default_action = default_action,
					  .non_ip_action = non_ip_action,
					  .malformed_action = malformed_action,
					  .redirect = redirect,
					  .n_v6_lengths = img->n_v6_lengths};

		if ((rc = bpf_map_update_elem(b->cap_fd[C_HALF], &half, &hv, BPF_ANY)))
			goto out;
	}
	/* The flip: one update of a single array element, of which the
	 * program reads only `active`, once per packet. Packets already past
	 * that read finish on the old half, which is left untouched until the
	 * next apply. The other fields are for an older program (no
	 * flt_half), which reads them here. */
	cfg.active = half;
	cfg.generation = gen;
	cfg.default_action = default_action;
	cfg.non_ip_action = non_ip_action;
	cfg.malformed_action = malformed_action & FWD_FLT_MALFORMED_ACTION; /* never the bits */
	cfg.redirect = redirect;
	cfg.n_v6_lengths[half] = img->n_v6_lengths;
	rc = bpf_map_update_elem(b->fd[M_CFG], &zero, &cfg, BPF_ANY);
out:
	if (rc)
		fwd_err_set(err, "", 0, "filters", "writing the filter maps failed: %s",
			    strerror(rc < 0 ? -rc : errno));
	free(v);
	free(pr);
	free(rules);
	return rc ? -EIO : 0;
}

int ctl_bpf_counters(const struct ctl_bpf *b, uint64_t out[FWD_FLT_CNT_MAX])
{
	uint64_t *vals = calloc((size_t)b->ncpus, sizeof(*vals));

	if (vals == NULL)
		return -ENOMEM;
	for (uint32_t k = 0; k < FWD_FLT_CNT_MAX; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(b->fd[M_COUNTERS], &k, vals) == 0)
			for (int c = 0; c < b->ncpus; c++)
				out[k] += vals[c];
	}
	free(vals);
	return 0;
}

int ctl_bpf_rule_stats(const struct ctl_bpf *b, uint16_t rule, struct fwd_flt_rule_stats *out)
{
	struct fwd_flt_rule_stats *vals = calloc((size_t)b->ncpus, sizeof(*vals));
	uint32_t k = rule;
	int rc;

	if (vals == NULL)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	rc = bpf_map_lookup_elem(b->fd[M_RULE_STATS], &k, vals);
	for (int c = 0; rc == 0 && c < b->ncpus; c++) {
		out->packets += vals[c].packets;
		out->bytes += vals[c].bytes;
	}
	free(vals);
	return rc ? -errno : 0;
}

int ctl_bpf_rule_stats_reset(const struct ctl_bpf *b, uint16_t rule)
{
	struct fwd_flt_rule_stats *vals = calloc((size_t)b->ncpus, sizeof(*vals));
	uint32_t k = rule;
	int rc;

	if (vals == NULL)
		return -ENOMEM;
	rc = bpf_map_update_elem(b->fd[M_RULE_STATS], &k, vals, BPF_ANY) ? -errno : 0;
	free(vals);
	return rc;
}

int ctl_bpf_active_tags(const struct ctl_bpf *b, uint32_t tags[FWD_FLT_MAX_RULES])
{
	struct fwd_flt_cfg cfg;
	uint32_t zero = 0;

	memset(tags, 0, sizeof(tags[0]) * FWD_FLT_MAX_RULES);
	if (bpf_map_lookup_elem(b->fd[M_CFG], &zero, &cfg))
		return -errno;
	for (uint32_t i = 0; i < FWD_FLT_MAX_RULES; i++) {
		uint32_t k = (cfg.active & 1) * FWD_FLT_MAX_RULES + i;
		struct fwd_flt_rule r;

		if (bpf_map_lookup_elem(b->fd[M_RULES], &k, &r) == 0)
			tags[i] = r.tag;
	}
	return 0;
}

void ctl_bpf_free(struct ctl_bpf *b)
{
	if (b == NULL)
		return;
	if (b->skel) {
		xdp_filter_bpf__destroy(b->skel);
	} else {
		for (int m = 0; m < M_NUM; m++)
			if (b->fd[m] > 0)
				close(b->fd[m]);
		for (int m = 0; m < C_NUM; m++)
			if (b->cap_fd[m] > 0)
				close(b->cap_fd[m]);
		if (b->prog_fd > 0)
			close(b->prog_fd);
	}
	if (b->dir_lock > 0)
		close(b->dir_lock);
	free(b->v6keys[0]);
	free(b->v6keys[1]);
	free(b);
}

/*
 * The pin directory is one regiond's: two regionds on different
 * interfaces with the same --bpf-pin-dir (regiond@ instances left at the
 * default) adopted one program, and each wrote its table into the other's
 * maps. An exclusive flock on the directory, held while the handle lives:
 * the kernel drops it with the process. @return the locked descriptor, or
 * -EBUSY (another holds it) or another negative errno, with @err.
 */
static int flock_dir(const char *dir, struct fwd_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		fwd_err_set(err, "", 0, "filters", "cannot open %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

		fwd_err_set(err, "", 0, "filters",
			    rc == -EBUSY ? "another regiond uses the pin directory %s: give each "
					   "regiond its own --bpf-pin-dir"
					 : "cannot lock the pin directory %s: %s",
			    dir, strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

static int lock_dir(struct ctl_bpf *b, const char *dir, struct fwd_err *err)
{
	int fd = flock_dir(dir, err);

	if (fd < 0)
		return fd;
	b->dir_lock = fd;
	return 0;
}

int ctl_bpf_probe_dir(const char *dir, struct fwd_err *err)
{
	struct fwd_err ignore;
	int fd;

	if (access(dir, F_OK) != 0)
		return 0; /* not there yet: no one's */
	fd = flock_dir(dir, &ignore);
	if (fd == -EBUSY) {
		*err = ignore;
		return fd;
	}
	if (fd >= 0)
		close(fd); /* the lock goes with it: taken for good by the start */
	return 0;
}

static void pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* Pins live only on a bpf filesystem. systemd mounts one on /sys/fs/bpf;
 * a root without it (a container, a minimal chroot, a rescue boot) has the
 * plain sysfs directory there, where every pin fails. So, as iproute2 and
 * libxdp do, regiond mounts bpffs on /sys/fs/bpf itself when the pin
 * directory is under it and nothing at all is mounted there (sysfs's own
 * directory). It never mounts over another mount (an operator's tmpfs or
 * bind mount) or anywhere else: it says what to do instead. The shared
 * bpffs root itself is refused as a pin directory: regiond's pins ("prog",
 * "flt_*") would sit among other tools', and a detach unlinks them. */
static int ensure_bpffs(const char *dir, struct fwd_err *err)
{
	static const char std[] = "/sys/fs/bpf";
	char path[PATH_MAX], parent[PATH_MAX], real[PATH_MAX];
	const char *base;
	struct statfs sf;
	size_t len = strlen(dir);
	char *slash;

	if (len == 0 || len >= 256)
		return fwd_err_set(err, "", 0, "filters",
				   "--bpf-pin-dir must be 1 to 255 bytes, not %zu", len);
	snprintf(path, sizeof(path), "%s", dir);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0'; /* "/sys/fs/bpf/x/" is "/sys/fs/bpf/x" */
	/* Compared by the parent's real path: "/sys/fs//bpf/./x" is under
	 * /sys/fs/bpf too, and so is a path through a symlink to it. */
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	base = slash ? path + (slash - parent) + 1 : path;
	if (slash == NULL)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	if (realpath(parent, real) == NULL)
		return 0; /* no parent: mkdir says so, naming it */
	snprintf(parent, sizeof(parent), "%s", real);
	if (!strcmp(base, ".") || !strcmp(base, ".."))
		return fwd_err_set(err, "", 0, "filters",
				   "--bpf-pin-dir %s ends in '%s': name the directory itself", dir,
				   base);
	if ((strcmp(parent, "/sys/fs") == 0 && strcmp(base, "bpf") == 0) ||
	    (realpath(path, real) && strcmp(real, std) == 0))
		return fwd_err_set(err, "", 0, "filters",
				   "--bpf-pin-dir %s is the shared bpffs root: pin into a "
				   "directory of regiond's own under it (the default is "
				   "/sys/fs/bpf/regiond)",
				   dir);
	if (statfs(path, &sf) == 0 && sf.f_type == BPF_FS_MAGIC)
		return 0; /* it exists, on bpffs */
	if (statfs(parent, &sf) < 0)
		return 0; /* mkdir says what is wrong, naming it */
	if (sf.f_type == BPF_FS_MAGIC)
		return 0;
	if (strcmp(parent, std) != 0)
		return fwd_err_set(err, "", 0, "filters",
				   "%s is not on a bpf filesystem: pin under %s, or mount one "
				   "there (mkdir -p %s && mount -t bpf bpf %s)",
				   dir, std, path, path);
	if (sf.f_type != SYSFS_MAGIC)
		return fwd_err_set(err, "", 0, "filters",
				   "%s holds a mount that is not bpffs (filesystem type 0x%lx): "
				   "not mounting over it; unmount it, or mount bpffs there "
				   "(mount -t bpf bpf %s)",
				   std, (unsigned long)sf.f_type, std);
	if (mount("bpf", std, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
		return fwd_err_set(err, "", 0, "filters",
				   "%s is not a bpf filesystem and mounting one there failed: %s "
				   "(mount -t bpf bpf %s)",
				   std, strerror(errno), std);
	/* In a mount namespace of regiond's own (unshare, systemd's
	 * PrivateMounts=) this mount dies with it: docs/filters.md says to
	 * mount bpffs outside. Not detectable here: /proc/1/ns/mnt may be
	 * unreadable, and a container's namespace outlives regiond. */
	fwd_log(FWD_LOG_NOTICE, "XDP filter: mounted bpffs on %s to pin into", std);
	return 0;
}

/* The pins in the order they are made: the program, the maps, the
 * capture maps. One list, so that what is pinned, checked for and unlinked
 * cannot drift apart. */
enum { NPINS = 1 + M_NUM + C_NUM };

static const char *pin_name(int i)
{
	return i == 0 ? "prog" : i <= M_NUM ? map_names[i - 1] : cap_names[i - 1 - M_NUM];
}

/* The first @n pins in @dir (those a start made, or all of them). */
static void unlink_pins(const char *dir, int n)
{
	char p[512];

	while (n > 0) {
		pin_path(p, sizeof(p), dir, pin_name(--n));
		unlink(p);
	}
}

void ctl_bpf_unpin_made(const struct ctl_bpf *b, const char *dir)
{
	unlink_pins(dir, NPINS);
	if (b->made_dir)
		rmdir(dir);
}

void ctl_bpf_unpin(const char *dir)
{
	unlink_pins(dir, NPINS);
	rmdir(dir);
}

static uint32_t map_max(int fd)
{
	struct bpf_map_info info = {0};
	uint32_t len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.max_entries;
}

/* Whether the pinned objects in @b are this regiond's filter: an XDP program
 * named xdp_filter, and maps of the type, key and value sizes its object
 * declares that the program uses. Pins are adopted by name, and the maps
 * are then read into buffers sized for their declared layout: a map of
 * another value size pinned there (by another program, an older layout, a
 * hand) made the kernel write past them (a heap overflow, an abort at every
 * start, found by a hostile probe). 0, or -EINVAL with @err naming what
 * does not match. */
static int pins_match(const struct ctl_bpf *b, const char *dir, const char *ifname,
		      struct fwd_err *err)
{
	struct bpf_prog_info pi = {0};
	uint32_t len = sizeof(pi), ids[64];
	struct xdp_filter_bpf *want = xdp_filter_bpf__open();
	const char *bad = NULL;
	char why[160] = "";
	int rc = -EINVAL;

	if (want == NULL) {
		fwd_err_set(err, "", 0, "filters", "cannot open the XDP filter object: %s",
			    strerror(errno));
		return -EINVAL;
	}
	if (bpf_obj_get_info_by_fd(b->prog_fd, &pi, &len) || pi.type != BPF_PROG_TYPE_XDP ||
	    strncmp(pi.name, "xdp_filter", sizeof(pi.name)) != 0 || pi.nr_map_ids == 0 ||
	    pi.nr_map_ids > sizeof(ids) / sizeof(ids[0])) {
		bad = "prog";
		snprintf(why, sizeof(why), "not an XDP program named xdp_filter");
		goto out;
	}
	{
		uint32_t n = pi.nr_map_ids;

		memset(&pi, 0, sizeof(pi));
		pi.nr_map_ids = n;
		pi.map_ids = (uint64_t)(uintptr_t)ids;
		len = sizeof(pi);
		if (bpf_obj_get_info_by_fd(b->prog_fd, &pi, &len)) {
			bad = "prog";
			snprintf(why, sizeof(why), "its maps cannot be read: %s", strerror(errno));
			goto out;
		}
	}
	for (int m = 0; m < M_NUM + C_NUM && bad == NULL; m++) {
		const char *name = m < M_NUM ? map_names[m] : cap_names[m - M_NUM];
		int fd = m < M_NUM ? b->fd[m] : b->cap_fd[m - M_NUM];
		const struct bpf_map *d = bpf_object__find_map_by_name(want->obj, name);
		struct bpf_map_info mi = {0};
		uint32_t ml = sizeof(mi), k;

		if (fd < 0 || d == NULL) /* an optional map this filter has not */
			continue;
		if (bpf_obj_get_info_by_fd(fd, &mi, &ml)) {
			bad = name;
			snprintf(why, sizeof(why), "cannot be read: %s", strerror(errno));
			break;
		}
		if (mi.type != (uint32_t)bpf_map__type(d) || mi.key_size != bpf_map__key_size(d) ||
		    mi.value_size != bpf_map__value_size(d)) {
			bad = name;
			snprintf(why, sizeof(why),
				 "type %u, key %u and value %u bytes where the filter's has type "
				 "%d, "
				 "key %u and value %u",
				 mi.type, mi.key_size, mi.value_size, (int)bpf_map__type(d),
				 bpf_map__key_size(d), bpf_map__value_size(d));
			break;
		}
		for (k = 0; k < pi.nr_map_ids && ids[k] != mi.id; k++)
			;
		if (k == pi.nr_map_ids) {
			bad = name;
			snprintf(why, sizeof(why), "is not a map the pinned program uses");
		}
	}
	rc = bad ? -EINVAL : 0;
out:
	if (bad && ifname)
		fwd_err_set(err, "", 0, "xdp",
			    "the XDP program on %s is not this regiond's filter: %s %s; detach it "
			    "(ip link set dev %s xdp off) or run the fast path's matching version",
			    ifname, bad, why, ifname);
	else if (bad)
		fwd_err_set(
			err, "", 0, "filters",
			"the pinned filter in %s is not this regiond's: %s %s; remove the pins "
			"(and detach the program from its interfaces: ip link set dev IF xdp off) "
			"or use another --bpf-pin-dir",
			dir, bad, why);
	xdp_filter_bpf__destroy(want);
	return rc;
}

/* The IPv6 keys each half of an adopted filter holds, read from flt_v6. A
 * handle's list started empty, so a half written after a restart kept the
 * entries of the regiond before it, each naming its old prefix index: a
 * removed IPv6 prefix still matched, with whatever rule the index holds now
 * (found by a review). 0, or -ENOMEM. */
static int load_v6keys(struct ctl_bpf *b)
{
	struct fwd_flt_v6_key k, next;
	uint32_t cap[2] = {0, 0};
	const void *prev = NULL;

	while (bpf_map_get_next_key(b->fd[M_V6], prev, &next) == 0) {
		const unsigned h = next.half & 1;

		if (b->nv6keys[h] == cap[h]) {
			uint32_t c = cap[h] ? 2 * cap[h] : 256;
			struct fwd_flt_v6_key *v = realloc(b->v6keys[h], c * sizeof(*v));

			if (v == NULL)
				return -ENOMEM;
			b->v6keys[h] = v;
			cap[h] = c;
		}
		b->v6keys[h][b->nv6keys[h]++] = next;
		k = next;
		prev = &k;
	}
	return 0;
}

struct ctl_bpf *ctl_bpf_open_pinned(const struct ctl_bpf_conf *conf, const char *dir, int *adopted,
				    struct fwd_err *err)
{
	struct ctl_bpf *b;
	char p[512];
	int fd, rc, prog_errno, pinned = 0, made_dir = 0;

	*adopted = 0;
	pin_path(p, sizeof(p), dir, "prog");
	fd = bpf_obj_get(p);
	prog_errno = errno;
	if (fd >= 0) {
		struct bpf_prog_info pi = {0};
		uint32_t len = sizeof(pi);

		/* Another tool's program pinned as "prog" is said as such, not
		 * as a filter of ours missing its maps. */
		if (bpf_obj_get_info_by_fd(fd, &pi, &len) || pi.type != BPF_PROG_TYPE_XDP ||
		    strncmp(pi.name, "xdp_filter", sizeof(pi.name)) != 0) {
			fwd_err_set(err, "", 0, "filters",
				    "the program pinned at %s is not this regiond's filter (an XDP "
				    "program named xdp_filter) but '%.*s' of type %u: remove that "
				    "pin if it is a leftover (rm %s), or use another --bpf-pin-dir",
				    p, (int)sizeof(pi.name), pi.name, pi.type, p);
			close(fd);
			return NULL;
		}
		b = calloc(1, sizeof(*b));
		if (b == NULL) {
			close(fd);
			fwd_err_set(err, "", 0, "filters", "out of memory");
			return NULL;
		}
		b->prog_fd = fd;
		b->ncpus = libbpf_num_possible_cpus();
		for (int m = 0; m < C_NUM; m++) {
			pin_path(p, sizeof(p), dir, cap_names[m]);
			b->cap_fd[m] = bpf_obj_get(p); /* -1: pinned by a regiond without capture */
		}
		if (lock_dir(b, dir, err)) {
			ctl_bpf_free(b);
			return NULL;
		}
		for (int m = 0; m < M_NUM; m++) {
			pin_path(p, sizeof(p), dir, map_names[m]);
			b->fd[m] = bpf_obj_get(p);
			if (b->fd[m] < 0) {
				fwd_err_set(
					err, "", 0, "filters",
					"pinned filter in %s is incomplete (%s: %s): remove its "
					"pins (rm %s/prog %s/flt_*) after detaching the program "
					"from its interfaces (ip link set dev IF xdp off), or use "
					"another --bpf-pin-dir",
					dir, map_names[m], strerror(errno), dir, dir);
				ctl_bpf_free(b);
				return NULL;
			}
		}
		if (pins_match(b, dir, NULL, err)) {
			ctl_bpf_free(b);
			return NULL;
		}
		if (load_v6keys(b)) {
			fwd_err_set(err, "", 0, "filters", "out of memory");
			ctl_bpf_free(b);
			return NULL;
		}
		/* The maps' sizes are what that regiond loaded with. */
		b->conf.max_groups = map_max(b->fd[M_TBL8]) / 512;
		b->conf.max_prefixes = map_max(b->fd[M_PREFIX_RULE]) / 2;
		*adopted = 1;
		return b;
	}
	b = ctl_bpf_load(conf, err);
	if (b == NULL)
		return NULL;
	if (ensure_bpffs(dir, err))
		goto fail;
	if (mkdir(dir, 0700) == 0)
		made_dir = 1;
	else if (errno != EEXIST) {
		fwd_err_set(err, "", 0, "filters", "cannot create %s: %s (is bpffs mounted?)", dir,
			    strerror(errno));
		goto fail;
	}
	b->made_dir = made_dir;
	if (lock_dir(b, dir, err))
		goto fail;
	/* Whatever is there under our names without our program beside it
	 * is not ours to replace or remove: a failed start once unlinked
	 * another tool's flt_cfg, and the next start went on silently. */
	for (int i = 0; i < NPINS; i++) {
		struct stat st;

		pin_path(p, sizeof(p), dir, pin_name(i));
		if (lstat(p, &st) == 0) {
			fwd_err_set(err, "", 0, "filters",
				    "%s is there, but %s/prog is not a filter regiond can adopt "
				    "(%s): not regiond's to replace or remove; remove it if it "
				    "is a leftover, or use another --bpf-pin-dir",
				    p, dir, strerror(prog_errno));
			goto fail;
		}
	}
	for (; pinned < NPINS; pinned++) {
		int obj = pinned == 0	    ? b->prog_fd
			  : pinned <= M_NUM ? b->fd[pinned - 1]
					    : b->cap_fd[pinned - 1 - M_NUM];

		pin_path(p, sizeof(p), dir, pin_name(pinned));
		if ((rc = bpf_obj_pin(obj, p))) {
			fwd_err_set(err, "", 0, "filters", "cannot pin %s: %s", p, strerror(errno));
			goto fail;
		}
	}
	return b;
fail:
	/* only what this call pinned, and the directory if it made it */
	unlink_pins(dir, pinned);
	if (made_dir)
		rmdir(dir);
	ctl_bpf_free(b);
	return NULL;
}

void ctl_bpf_capacity(const struct ctl_bpf *b, uint32_t *prefixes, uint32_t *groups)
{
	*prefixes = b->conf.max_prefixes;
	*groups = b->conf.max_groups;
}

uint32_t ctl_bpf_prog_id(const struct ctl_bpf *b)
{
	struct bpf_prog_info info = {0};
	uint32_t len = sizeof(info);

	return bpf_obj_get_info_by_fd(b->prog_fd, &info, &len) ? 0 : info.id;
}

int ctl_bpf_set_generation(struct ctl_bpf *b, uint32_t gen, struct fwd_err *err)
{
	struct fwd_flt_cfg cfg;
	struct fwd_flt_half hv;
	uint32_t zero = 0, half;

	if (bpf_map_lookup_elem(b->fd[M_CFG], &zero, &cfg))
		return fwd_err_set(err, "", 0, "filters", "cannot read the filter config: %s",
				   strerror(errno));
	half = cfg.active & 1;
	/* The live half's policies written again as they are, but for the
	 * generation (which the program only copies into capture records):
	 * whichever a packet reads, old or new, the words are the same but
	 * that one, an aligned 4 bytes, never half of one. */
	if (b->cap_fd[C_HALF] >= 0) {
		if (bpf_map_lookup_elem(b->cap_fd[C_HALF], &half, &hv))
			return fwd_err_set(err, "", 0, "filters",
					   "cannot read the filter's live half: %s",
					   strerror(errno));
		hv.generation = gen;
		if (bpf_map_update_elem(b->cap_fd[C_HALF], &half, &hv, BPF_EXIST))
			return fwd_err_set(err, "", 0, "filters",
					   "cannot write the filter's generation: %s",
					   strerror(errno));
	}
	cfg.generation = gen; /* `active` written again as it is */
	if (bpf_map_update_elem(b->fd[M_CFG], &zero, &cfg, BPF_EXIST))
		return fwd_err_set(err, "", 0, "filters",
				   "cannot write the filter's generation: %s", strerror(errno));
	return 0;
}

uint32_t ctl_bpf_generation(const struct ctl_bpf *b)
{
	struct fwd_flt_cfg cfg;
	struct fwd_flt_half hv;
	uint32_t zero = 0, half;

	if (bpf_map_lookup_elem(b->fd[M_CFG], &zero, &cfg))
		return 0;
	/* The live half's, where the program reads it; else flt_cfg's. */
	half = cfg.active & 1;
	if (b->cap_fd[C_HALF] >= 0 && bpf_map_lookup_elem(b->cap_fd[C_HALF], &half, &hv) == 0)
		return hv.generation;
	return cfg.generation;
}

int ctl_bpf_xdp_attached(struct ctl_xdp_att *out, unsigned cap)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
		       .nlmsg_type = RTM_GETLINK,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		       .nlmsg_seq = 1},
		.ifi = {.ifi_family = AF_UNSPEC},
	};
	/* a bound on a kernel that never ends the dump: none is expected */
	struct timeval tv = {.tv_sec = 1};
	/* Connected to the kernel (port 0): another sender's unicast to this
	 * socket is refused, and an answer is also checked for the request's
	 * sequence number. */
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	char buf[32768] __attribute__((aligned(4)));
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), rc = 0;
	unsigned n = 0;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&kernel, sizeof(kernel)) < 0 ||
	    send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t got = recvmsg(fd, &mh, 0);
		int len = (int)got;

		if (got < 0) {
			rc = errno == EINTR ? 0 : -errno;
			if (rc)
				goto out;
			continue;
		}
		if (mh.msg_flags & MSG_TRUNC) { /* a message cut: the look is not whole */
			rc = -EMSGSIZE;
			goto out;
		}
		/* NLMSG_OK by hand: its unsigned compare against a length that
		 * NLMSG_NEXT may take below 0 would read past the buffer */
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     len >= (int)sizeof(*h) && h->nlmsg_len >= sizeof(*h) &&
		     h->nlmsg_len <= (unsigned)len;
		     h = NLMSG_NEXT(h, len)) {
			struct ifinfomsg *ifi;
			struct rtattr *a;
			int alen;
			struct ctl_xdp_att at = {0};

			if (h->nlmsg_seq != req.nh.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				goto out;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *err = NLMSG_DATA(h);

				rc = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*err)) && err->error
					     ? err->error
					     : -EIO;
				goto out;
			}
			if (h->nlmsg_type != RTM_NEWLINK ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
				continue;
			ifi = NLMSG_DATA(h);
			at.ifindex = (unsigned)ifi->ifi_index;
			alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)));
			for (a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
				if (a->rta_type == IFLA_IFNAME) {
					size_t l = RTA_PAYLOAD(a) < sizeof(at.name)
							   ? RTA_PAYLOAD(a)
							   : sizeof(at.name) - 1;

					memcpy(at.name, RTA_DATA(a), l);
					at.name[l < sizeof(at.name) ? l : sizeof(at.name) - 1] =
						'\0';
				} else if ((a->rta_type & NLA_TYPE_MASK) == IFLA_XDP) {
					int xl = (int)RTA_PAYLOAD(a);

					for (struct rtattr *x = RTA_DATA(a); RTA_OK(x, xl);
					     x = RTA_NEXT(x, xl))
						if (x->rta_type == IFLA_XDP_PROG_ID &&
						    RTA_PAYLOAD(x) >= sizeof(uint32_t))
							memcpy(&at.prog_id, RTA_DATA(x),
							       sizeof(uint32_t));
				}
			}
			if (at.prog_id == 0)
				continue;
			if (n < cap)
				out[n] = at;
			n++;
		}
	}
out:
	close(fd);
	return rc < 0 ? rc : (int)n;
}

uint32_t ctl_bpf_pinned_id(const char *dir)
{
	struct bpf_prog_info pi = {0};
	uint32_t il = sizeof(pi);
	char p[512];
	int fd;

	pin_path(p, sizeof(p), dir, "prog");
	if ((fd = bpf_obj_get(p)) < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &pi, &il) || pi.type != BPF_PROG_TYPE_XDP ||
	    strncmp(pi.name, "xdp_filter", sizeof(pi.name)) != 0)
		pi.id = 0;
	close(fd);
	return pi.id;
}

uint32_t ctl_bpf_query(const char *ifname, char *mode, size_t len)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	unsigned idx = if_nametoindex(ifname);

	snprintf(mode, len, "none");
	if (idx == 0 || bpf_xdp_query((int)idx, 0, &q))
		return 0;
	if (q.attach_mode == XDP_ATTACHED_DRV)
		snprintf(mode, len, "native");
	else if (q.attach_mode == XDP_ATTACHED_SKB)
		snprintf(mode, len, "generic");
	else if (q.attach_mode == XDP_ATTACHED_HW)
		snprintf(mode, len, "offload");
	else if (q.attach_mode == XDP_ATTACHED_MULTI)
		snprintf(mode, len, "multi");
	return q.prog_id;
}

int ctl_bpf_attach(struct ctl_bpf *b, const char *ifname, enum ctl_xdp_mode mode, char *out,
		   size_t len, struct fwd_err *err)
{
	unsigned idx = if_nametoindex(ifname);
	uint32_t ours = ctl_bpf_prog_id(b), there;
	char cur[32];
	int rc;

	if (idx == 0)
		return fwd_err_set(err, "", 0, "xdp", "no interface '%s'", ifname);
	there = ctl_bpf_query(ifname, cur, sizeof(cur));
	if (there == ours) {
		/* Adopted, as an earlier start attached it: in generic mode
		 * after an auto start fell back, which native must not take
		 * (it said healthy, native asked, generic running). */
		if (mode == CTL_XDP_NATIVE && strcmp(cur, "native") != 0)
			return fwd_err_set(err, "", 0, "xdp",
					   "--xdp-mode native, but %s carries the filter in %s "
					   "mode (an earlier start fell back to it): take it off "
					   "(ip link set dev %s xdp%s off) and start again, or run "
					   "with --xdp-mode auto",
					   ifname, cur, ifname, cur);
		snprintf(out, len, "%s", cur); /* adopted: already ours */
		return 0;
	}
	if (there) {
		/* Another program: maybe an older regiond filter whose pins are
		 * gone. Only replace what we can identify as ours by name. */
		int ofd = bpf_prog_get_fd_by_id(there);
		struct bpf_prog_info info = {0};
		uint32_t il = sizeof(info);

		if (ofd < 0 || bpf_obj_get_info_by_fd(ofd, &info, &il) ||
		    strcmp(info.name, "xdp_filter")) {
			if (ofd >= 0)
				close(ofd);
			return fwd_err_set(err, "", 0, "xdp",
					   "%s already runs XDP program id %u (not regiond's); "
					   "detach it first",
					   ifname, there);
		}
		close(ofd);
	}
	route_libbpf();
	if (mode != CTL_XDP_GENERIC) {
		char why[240];

		/* XDP_FLAGS_REPLACE is not needed: one netlink update swaps the
		 * program, so the interface is never unfiltered. */
		kernel_said[0] = '\0';
		rc = bpf_xdp_attach((int)idx, b->prog_fd, XDP_FLAGS_DRV_MODE, NULL);
		if (rc == 0) {
			snprintf(out, len, "native");
			return 0;
		}
		if (mode == CTL_XDP_NATIVE)
			return fwd_err_set(err, "", 0, "xdp", "native XDP on %s refused: %s%s",
					   ifname, strerror(-rc), kernel_why(why, sizeof(why)));
		snprintf(cur, sizeof(cur), "%s", strerror(-rc));
	}
	kernel_said[0] = '\0';
	rc = bpf_xdp_attach((int)idx, b->prog_fd, XDP_FLAGS_SKB_MODE, NULL);
	if (rc) {
		char why[240];

		return fwd_err_set(err, "", 0, "xdp", "XDP on %s refused: %s%s", ifname,
				   strerror(-rc), kernel_why(why, sizeof(why)));
	}
	if (mode == CTL_XDP_GENERIC)
		snprintf(out, len, "generic");
	else
		snprintf(out, len, "generic (native refused: %s)", cur);
	return 0;
}

int ctl_bpf_check(const char *ifname, struct ctl_bpf_prev *prev, struct fwd_err *err)
{
	struct bpf_prog_info info = {0};
	uint32_t il = sizeof(info);
	char mode[32];

	*prev = (struct ctl_bpf_prev){.fd = -1};
	if (if_nametoindex(ifname) == 0)
		return fwd_err_set(err, "", 0, "xdp", "no interface '%s'", ifname);
	prev->id = ctl_bpf_query(ifname, mode, sizeof(mode));
	prev->generic = strcmp(mode, "generic") == 0;
	if (prev->id == 0)
		return 0;
	prev->fd = bpf_prog_get_fd_by_id(prev->id);
	if (prev->fd < 0 || bpf_obj_get_info_by_fd(prev->fd, &info, &il) ||
	    strcmp(info.name, "xdp_filter")) {
		ctl_bpf_prev_close(prev);
		return fwd_err_set(err, "", 0, "xdp",
				   "%s already runs XDP program id %u (not regiond's); detach it "
				   "first",
				   ifname, prev->id);
	}
	return 0;
}

void ctl_bpf_prev_close(struct ctl_bpf_prev *prev)
{
	if (prev->fd >= 0)
		close(prev->fd);
	prev->fd = -1;
}

void ctl_bpf_restore(const struct ctl_bpf *b, const char *ifname, struct ctl_bpf_prev *prev)
{
	unsigned idx = if_nametoindex(ifname);
	char mode[32];
	uint32_t there = idx ? ctl_bpf_query(ifname, mode, sizeof(mode)) : 0;

	/* Only our program, attached by this start, is taken back. The one
	 * that was there goes back in its place in one step where the mode
	 * allows (an attach replaces what runs): detaching first left the
	 * interface without a filter for a moment, for good if the attach
	 * then failed (a review). */
	if (idx && there && there != prev->id && there == ctl_bpf_prog_id(b)) {
		const int generic = strcmp(mode, "generic") == 0;

		if (prev->fd >= 0 && prev->generic == generic &&
		    bpf_xdp_attach((int)idx, prev->fd,
				   generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE, NULL) == 0) {
			ctl_bpf_prev_close(prev);
			return;
		}
		bpf_xdp_detach((int)idx, generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE, NULL);
		if (prev->fd >= 0 &&
		    bpf_xdp_attach((int)idx, prev->fd,
				   prev->generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE, NULL))
			fwd_log(FWD_LOG_WARNING,
				"XDP filter: could not attach program id %u to %s again", prev->id,
				ifname);
	}
	ctl_bpf_prev_close(prev);
}

int ctl_bpf_detach(struct ctl_bpf *b, const char *ifname)
{
	unsigned idx = if_nametoindex(ifname);
	char mode[32];

	if (idx == 0 || ctl_bpf_query(ifname, mode, sizeof(mode)) != ctl_bpf_prog_id(b))
		return -ENOENT;
	return bpf_xdp_detach(
		(int)idx, strcmp(mode, "generic") ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE, NULL);
}

struct ctl_bpf *ctl_bpf_open_attached(const char *ifname, struct fwd_err *err)
{
	char mode[32];
	uint32_t id = ctl_bpf_query(ifname, mode, sizeof(mode)), map_ids[64];
	struct bpf_prog_info info = {0};
	uint32_t len = sizeof(info);
	struct ctl_bpf *b;
	int fd;

	if (id == 0) {
		fwd_err_set(err, "", 0, "xdp", "nothing attached to %s", ifname);
		return NULL;
	}
	fd = bpf_prog_get_fd_by_id(id);
	info.nr_map_ids = 64;
	info.map_ids = (uint64_t)(unsigned long)map_ids;
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) || strcmp(info.name, "xdp_filter")) {
		if (fd >= 0)
			close(fd);
		fwd_err_set(err, "", 0, "xdp",
			    "%s runs XDP program id %u, which is not regionfwd's filter", ifname,
			    id);
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL) {
		close(fd);
		fwd_err_set(err, "", 0, "xdp", "out of memory");
		return NULL;
	}
	b->prog_fd = fd;
	b->ncpus = libbpf_num_possible_cpus();
	for (int m = 0; m < C_NUM; m++)
		b->cap_fd[m] = -1;
	for (uint32_t i = 0; i < info.nr_map_ids && i < 64; i++) {
		int mfd = bpf_map_get_fd_by_id(map_ids[i]);
		struct bpf_map_info mi = {0};
		uint32_t ml = sizeof(mi);
		int used = 0;

		if (mfd < 0 || bpf_obj_get_info_by_fd(mfd, &mi, &ml)) {
			if (mfd >= 0)
				close(mfd);
			continue;
		}
		for (int m = 0; m < M_NUM; m++)
			if (strncmp(mi.name, map_names[m], sizeof(mi.name) - 1) == 0 &&
			    b->fd[m] <= 0) {
				b->fd[m] = mfd;
				used = 1;
				break;
			}
		for (int m = 0; !used && m < C_NUM; m++)
			if (strncmp(mi.name, cap_names[m], sizeof(mi.name) - 1) == 0 &&
			    b->cap_fd[m] < 0) {
				b->cap_fd[m] = mfd;
				used = 1;
			}
		/* The read-only data ("xdp_filt.rodata"): who loaded it. */
		if (!used && strlen(mi.name) > 7 &&
		    strcmp(mi.name + strlen(mi.name) - 7, ".rodata") == 0 &&
		    mi.value_size >= sizeof(struct xdp_filter_bpf__rodata) &&
		    mi.value_size <= 4096) {
			uint8_t ro[4096];
			uint32_t zero = 0;

			if (bpf_map_lookup_elem(mfd, &zero, ro) == 0)
				b->by_regiond = ((const struct xdp_filter_bpf__rodata *)ro)
							->loaded_by_regiond == 1;
		}
		if (!used)
			close(mfd);
	}
	for (int m = 0; m < M_NUM; m++)
		if (b->fd[m] <= 0) {
			fwd_err_set(err, "", 0, "xdp",
				    "the filter on %s lacks map %s (another version?)", ifname,
				    map_names[m]);
			ctl_bpf_free(b);
			return NULL;
		}
	/* Found by name, read into buffers of this filter's layout: checked
	 * as pins are (pins_match). */
	if (pins_match(b, NULL, ifname, err)) {
		ctl_bpf_free(b);
		return NULL;
	}
	if (load_v6keys(b)) {
		fwd_err_set(err, "", 0, "xdp", "out of memory");
		ctl_bpf_free(b);
		return NULL;
	}
	b->conf.max_groups = map_max(b->fd[M_TBL8]) / 512;
	b->conf.max_prefixes = map_max(b->fd[M_PREFIX_RULE]) / 2;
	return b;
}

int ctl_bpf_loaded_by_regiond(const struct ctl_bpf *b)
{
	return b->by_regiond;
}

int ctl_bpf_repin(struct ctl_bpf *b, const char *dir, struct fwd_err *err)
{
	char p[512];
	int pinned = 0;

	if (ensure_bpffs(dir, err))
		return -EINVAL;
	if (mkdir(dir, 0700) == 0)
		b->made_dir = 1;
	else if (errno != EEXIST)
		return fwd_err_set(err, "", 0, "filters",
				   "cannot create %s: %s (is bpffs mounted?)", dir,
				   strerror(errno));
	if (lock_dir(b, dir, err))
		return -EBUSY;
	for (int i = 0; i < NPINS; i++) {
		struct stat st;

		pin_path(p, sizeof(p), dir, pin_name(i));
		if (lstat(p, &st) == 0)
			return fwd_err_set(err, "", 0, "filters",
					   "%s is there, but %s/prog is not: not regiond's to "
					   "replace; remove it if it is a leftover, or use another "
					   "--bpf-pin-dir",
					   p, dir);
	}
	for (; pinned < NPINS; pinned++) {
		int obj = pinned == 0	    ? b->prog_fd
			  : pinned <= M_NUM ? b->fd[pinned - 1]
					    : b->cap_fd[pinned - 1 - M_NUM];

		pin_path(p, sizeof(p), dir, pin_name(pinned));
		if (obj >= 0 && bpf_obj_pin(obj, p)) {
			fwd_err_set(err, "", 0, "filters", "cannot pin %s: %s", p, strerror(errno));
			unlink_pins(dir, pinned);
			return -EIO;
		}
	}
	return 0;
}

int ctl_bpf_capture(struct ctl_bpf *b, int on)
{
	struct fwd_flt_capture v = {.on = on != 0};
	uint32_t zero = 0;

	if (b->cap_fd[C_FLAG] < 0 || b->cap_fd[C_RB] < 0)
		return -ENOTSUP;
	return bpf_map_update_elem(b->cap_fd[C_FLAG], &zero, &v, BPF_ANY) ? -errno : 0;
}

int ctl_bpf_capture_rb_fd(const struct ctl_bpf *b)
{
	return b->cap_fd[C_FLAG] < 0 ? -1 : b->cap_fd[C_RB];
}
