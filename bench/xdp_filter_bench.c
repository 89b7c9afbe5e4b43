/*
 * xdp_filter_bench - cost of the XDP filter: compiling and installing N
 * random IPv4 prefixes (one atomic update), and ns per packet through
 * BPF_PROG_TEST_RUN with repeat, over 64 different sources so lookups do
 * not all hit one cache line. Prints a markdown table. Needs root.
 *
 *   build/bench/xdp_filter_bench [N ...]      (default: 1000 100000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "ctl_bpf.h"
#include "fwd_defs.h"
#include "pktbuild.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double ns_per_packet(struct ctl_bpf *b, struct fwd_flt_prefix *px, uint32_t n)
{
	enum { PKTS = 64, REPEAT = 200000 };
	double total = 0;

	for (int i = 0; i < PKTS; i++) {
		const struct fwd_flt_prefix *p = &px[(uint32_t)rand() % n];
		char src[4] = {(char)p->addr[0], (char)p->addr[1], (char)p->addr[2],
			       (char)(rand() & 0xff)};
		const char dst[4] = {192, 0, 2, 1};
		struct pb f;
		uint8_t out[256];
		LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = REPEAT, .data_out = out,
			    .data_size_out = sizeof(out));

		pb_eth(&f, 0x0800);
		pb_ipv4(&f, src, dst, FWD_PROTO_UDP, 0);
		pb_ports(&f, 1, 9, 8);
		pb_payload(&f, 18); /* 64-byte frame */
		pb_finish_v4(&f);
		o.data_in = f.b;
		o.data_size_in = (uint32_t)f.len;
		if (bpf_prog_test_run_opts(ctl_bpf_prog_fd(b), &o)) {
			perror("bpf_prog_test_run_opts");
			exit(1);
		}
		total += o.duration; /* mean ns per run, as the kernel measures it */
	}
	return total / PKTS;
}

int main(int argc, char **argv)
{
	uint32_t sizes[8] = {1000, 100000};
	int nsizes = argc > 1 ? argc - 1 : 2;
	struct fwd_err err = {0};

	for (int i = 1; i < argc && i <= 8; i++)
		sizes[i - 1] = (uint32_t)strtoul(argv[i], NULL, 10);
	printf("| IPv4 prefixes | IPv4 groups | compile (ms) | load program sized for it (ms) | "
	       "install, one atomic swap (ms) | ns/packet (BPF_PROG_TEST_RUN) |\n");
	printf("|---:|---:|---:|---:|---:|---:|\n");
	srand(3);
	for (int s = 0; s < nsizes; s++) {
		uint32_t n = sizes[s];
		struct fwd_flt_prefix *px = calloc(n, sizeof(*px));
		uint8_t act[2] = {FWD_FLT_DROP, FWD_FLT_PASS};
		struct fwd_flt_image *img;
		double t0, t1, t2;

		/* A routing-table-like mix: mostly /24, some /16-/23, a few longer;
		 * duplicates are possible and harmless for timing. */
		for (uint32_t i = 0; i < n; i++) {
			static const uint8_t lens[] = {24, 24, 24, 24, 24, 22, 23, 20, 16, 28};
			uint8_t len = lens[rand() % 10];
			uint32_t a = ((uint32_t)(1 + rand() % 223) << 24 |
				      ((uint32_t)rand() & 0xffffff)) &
				     (~0u << (32 - len));

			px[i] = (struct fwd_flt_prefix){.family = 4,
							.len = len,
							.rule = (uint16_t)(rand() & 1),
							.addr = {(uint8_t)(a >> 24),
								 (uint8_t)(a >> 16),
								 (uint8_t)(a >> 8), (uint8_t)a}};
		}
		t0 = now_s();
		img = fwd_flt_compile(px, n, NULL, 0, act, 2, &err);
		t1 = now_s();
		/* A program sized for this table (its groups, its prefixes). */
		struct ctl_bpf_conf conf = {.max_prefixes = n,
					    .max_groups = img ? img->ngroups + 1 : 1};
		struct ctl_bpf *b = img ? ctl_bpf_load(&conf, &err) : NULL;
		double tl = now_s();

		if (b == NULL || ctl_bpf_apply(b, img, FWD_FLT_PASS, FWD_FLT_PASS, FWD_FLT_PASS, 0,
					       (uint32_t)s + 1, &err)) {
			fprintf(stderr, "xdp_filter_bench: %s\n", err.reason);
			return 1;
		}
		t2 = now_s();
		printf("| %u | %u | %.1f | %.1f | %.1f | %.1f |\n", n, img->ngroups,
		       (t1 - t0) * 1e3, (tl - t1) * 1e3, (t2 - tl) * 1e3, ns_per_packet(b, px, n));
		fwd_flt_image_free(img);
		ctl_bpf_free(b);
		free(px);
	}
	return 0;
}
