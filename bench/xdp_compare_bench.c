/*
 * xdp_compare_bench - regionfwd's XDP filter next to xdp-filter (xdp-tools'
 * xdpfilt_alw_all.o: default allow, listed sources dropped, every feature) on the same packets, through
 * BPF_PROG_TEST_RUN with repeat, and an empty XDP_DROP program as the
 * harness floor. Said plainly: xdp-filter matches exact IPv4 addresses in a
 * hash map; ours matches prefixes. Both are given N exact addresses (/32 for
 * ours), and ours also N routing-table-like prefixes. The packets come from
 * 64 sources among the rules, so every packet is a match (drop).
 *
 *   xdp_compare_bench [N ...]     (default 1000 100000); JSON lines on stdout
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "ctl_bpf.h"
#include "fwd_defs.h"
#include "pktbuild.h"

#define XDPFILT_OBJ "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_all.o"
#define PKTS 64
#define REPEAT 200000

static double run_ns(int prog_fd, const uint32_t *srcs)
{
	double total = 0;

	for (int i = 0; i < PKTS; i++) {
		char src[4] = {(char)(srcs[i] >> 24), (char)(srcs[i] >> 16), (char)(srcs[i] >> 8),
			       (char)srcs[i]};
		const char dst[4] = {192, 0, 2, 1};
		struct pb f;
		uint8_t out[256];
		LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = REPEAT, .data_out = out,
			    .data_size_out = sizeof(out));

		pb_eth(&f, 0x0800);
		pb_ipv4(&f, src, dst, FWD_PROTO_UDP, 0);
		pb_ports(&f, 1, 9, 8);
		pb_payload(&f, 18);
		pb_finish_v4(&f);
		o.data_in = f.b;
		o.data_size_in = (uint32_t)f.len;
		if (bpf_prog_test_run_opts(prog_fd, &o)) {
			perror("bpf_prog_test_run_opts");
			exit(1);
		}
		if (o.retval != XDP_DROP) {
			fprintf(stderr, "xdp_compare_bench: a rule's source was not dropped (%u)\n",
				o.retval);
			exit(1);
		}
		total += o.duration;
	}
	return total / PKTS;
}

static int floor_prog(void)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_DROP},
		{.code = BPF_JMP | BPF_EXIT},
	};

	return bpf_prog_load(BPF_PROG_TYPE_XDP, "floor", "GPL", insns, 2, NULL);
}

static double ours(const uint32_t *addrs, uint32_t n, int exact, const uint32_t *srcs)
{
	struct fwd_flt_prefix *px = calloc(n, sizeof(*px));
	uint8_t act[1] = {FWD_FLT_DROP};
	struct fwd_err err = {0};
	struct fwd_flt_image *img;
	struct ctl_bpf *b;
	double ns;

	for (uint32_t i = 0; i < n; i++) {
		static const uint8_t lens[] = {24, 24, 24, 24, 24, 22, 23, 20, 16, 28};
		uint8_t len = exact ? 32 : lens[i % 10];
		uint32_t a = addrs[i] & (len == 32 ? ~0u : ~0u << (32 - len));

		px[i] = (struct fwd_flt_prefix){.family = 4,
						.len = len,
						.rule = 0,
						.addr = {(uint8_t)(a >> 24), (uint8_t)(a >> 16),
							 (uint8_t)(a >> 8), (uint8_t)a}};
	}
	img = fwd_flt_compile(px, n, NULL, 0, act, 1, &err);
	struct ctl_bpf_conf conf = {.max_prefixes = n, .max_groups = img ? img->ngroups + 1 : 1};
	b = img ? ctl_bpf_load(&conf, &err) : NULL;
	if (b == NULL ||
	    ctl_bpf_apply(b, img, FWD_FLT_PASS, FWD_FLT_PASS, FWD_FLT_PASS, 0, 1, &err)) {
		fprintf(stderr, "xdp_compare_bench: ours: %s\n", err.reason);
		exit(1);
	}
	ns = run_ns(ctl_bpf_prog_fd(b), srcs);
	fwd_flt_image_free(img);
	ctl_bpf_free(b);
	free(px);
	return ns;
}

static double xdpfilt(const uint32_t *addrs, uint32_t n, const uint32_t *srcs)
{
	struct bpf_object *obj = bpf_object__open_file(XDPFILT_OBJ, NULL);
	struct bpf_program *prog;
	struct bpf_map *m, *ipv4 = NULL;
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *val;
	double ns;

	if (obj == NULL || libbpf_get_error(obj)) {
		fprintf(stderr, "xdp_compare_bench: cannot open %s (install xdp-tools)\n",
			XDPFILT_OBJ);
		exit(2);
	}
	bpf_object__for_each_map(m, obj)
	{
		bpf_map__set_pin_path(m, NULL); /* it pins by name at the bpffs root otherwise */
		if (strcmp(bpf_map__name(m), "filter_ipv4") == 0)
			ipv4 = m;
	}
	if (ipv4 == NULL || bpf_map__set_max_entries(ipv4, n + 16) || bpf_object__load(obj)) {
		fprintf(stderr, "xdp_compare_bench: cannot load %s\n", XDPFILT_OBJ);
		exit(1);
	}
	val = calloc((size_t)ncpu, sizeof(*val));
	for (int c = 0; c < ncpu; c++)
		val[c] = 1; /* MAP_FLAG_SRC (xdp-tools xdpfilt_prog.h): match the source address */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t key = htonl(addrs[i]);

		if (bpf_map_update_elem(bpf_map__fd(ipv4), &key, val, BPF_ANY)) {
			perror("filter_ipv4 update");
			exit(1);
		}
	}
	prog = bpf_object__next_program(obj, NULL);
	ns = run_ns(bpf_program__fd(prog), srcs);
	free(val);
	bpf_object__close(obj);
	return ns;
}

int main(int argc, char **argv)
{
	uint32_t sizes[8] = {1000, 100000};
	int nsizes = argc > 1 ? argc - 1 : 2, fl = floor_prog();

	for (int i = 1; i < argc && i <= 8; i++)
		sizes[i - 1] = (uint32_t)strtoul(argv[i], NULL, 10);
	if (fl < 0) {
		perror("floor program");
		return 1;
	}
	srand(11);
	for (int s = 0; s < nsizes; s++) {
		uint32_t n = sizes[s], srcs[PKTS];
		uint32_t *addrs = calloc(n, sizeof(*addrs));
		double f, a, p, x;

		for (uint32_t i = 0; i < n; i++)
			addrs[i] =
				(uint32_t)(1 + rand() % 223) << 24 | ((uint32_t)rand() & 0xffffff);
		for (int i = 0; i < PKTS; i++)
			srcs[i] = addrs[(uint32_t)rand() % n];
		f = run_ns(fl, srcs);
		a = ours(addrs, n, 1, srcs);
		p = ours(addrs, n, 0, srcs);
		x = xdpfilt(addrs, n, srcs);
		printf("{\"rules\": %u, \"floor_ns\": %.1f, \"regionfwd_exact_ns\": %.1f, "
		       "\"regionfwd_prefixes_ns\": %.1f, "
		       "\"xdp_filter_ns\": %.1f}\n",
		       n, f, a, p, x);
		fflush(stdout);
		free(addrs);
	}
	close(fl);
	return 0;
}
