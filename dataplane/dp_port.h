/*
 * dp_port.h - bring up the node config's ports: resolve or probe each device,
 * configure nworkers RX queues on ingress ports (RSS on IP addresses only,
 * so all fragments of a datagram reach one worker) and nworkers TX queues on
 * every port (one per worker: no TX locks), start them.
 */
#ifndef DP_PORT_H
#define DP_PORT_H

#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mempool.h>

#include "dp_node.h"

struct dp_ports {
	uint16_t nports;
	uint16_t port_id[DP_MAX_PORTS]; /* ethdev id by node port index */
	struct rte_ether_addr mac[DP_MAX_PORTS];
	uint8_t started[DP_MAX_PORTS];
	/* An ingress port whose RX reports packet types (untagged Ethernet,
	 * IPv4 without options) and verifies IPv4 header checksums: its
	 * workers take those verdicts instead of checking again (dp_worker.c).
	 * 0 for a port that offers either not (every vdev): software checks. */
	uint8_t verdicts[DP_MAX_PORTS];
	/* The kernel interface a port sends by (net_af_packet, net_af_xdp,
	 * net_tap, net_pcap iface=), by index as at its start; 0: none. Its
	 * state is the port's link too (dp_port_link). */
	int ifindex[DP_MAX_PORTS];
};

/**
 * @return 0, or -errno after logging which port failed and why
 */
int dp_ports_init(const struct dp_node *node, uint16_t nworkers, struct rte_mempool *pool,
		  struct dp_ports *out);

/* A port's health: its link as the device reports it and its counters. */
struct dp_port_health {
	int link; /* enum fwd_port_link (fwd_report.h) */
	uint32_t speed_mbps; /* 0: unknown */
	int full_duplex;
	int has_stats; /* 0: not started, or the device does not count */
	struct rte_eth_stats stats;
};

/** Health of port @i (node config index) of @p, without waiting for the
 *  link (rte_eth_link_get_nowait). Any thread but a worker: one at a
 *  time (ethdev is not thread-safe for a port), never on the hot path. */
void dp_port_health(const struct dp_ports *p, uint16_t i, struct dp_port_health *h);

/**
 * Whether the kernel interface devargs @args name for @dir ("tx" or "rx":
 * net_pcap's tx_iface / rx_iface, else iface=, as net_af_packet,
 * net_af_xdp, net_tap and net_pcap take) is down, has no carrier or is
 * gone. 0 when @args name none.
 */
int dp_iface_down(const char *args, const char *dir);

/** Port @i's link alone (FWD_PORT_LINK_*), as dp_port_health() reads it:
 *  down also while the kernel interface it sends by (ifindex) is down,
 *  has no carrier or is gone. */
int dp_port_link(const struct dp_ports *p, uint16_t i);

/** Every started port's device counters to 0, one at a time with the
 *  readers of dp_port_health() (ethdev does not take a reset beside a
 *  read of one port's stats); a PMD that cannot is said, and keeps its
 *  counters. */
void dp_ports_stats_reset(const struct dp_ports *p);

/** Stop and close every started port (flushes pcap writers). NULL-safe. */
void dp_ports_close(struct dp_ports *p);

#endif /* DP_PORT_H */
