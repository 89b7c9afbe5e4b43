/*
 * dp_node.h - the node config: what this box has (ports and the devices
 * behind them, worker lcores, pool and ring sizes, fragment table). Read once
 * at start; the table document says what to do with the ports.
 *
 * Pure parsing and validation (no DPDK calls), so errors name the file, line
 * and field before EAL resources are touched.
 */
#ifndef DP_NODE_H
#define DP_NODE_H

#include <stdint.h>

#include "fwd_defs.h"
#include "fwd_err.h"

struct fwd_table;

#define DP_MAX_PORTS 32
#define DP_MAX_WORKERS 64

struct dp_node_port {
	char name[FWD_NAME_MAX];
	char device[512]; /* ethdev name, PCI address, or vdev devargs to probe */
	uint8_t ingress; /* polled by the workers */
};

struct dp_node {
	char source[128];
	uint16_t nports;
	struct dp_node_port ports[DP_MAX_PORTS];
	uint16_t nworkers; /* 0: every EAL worker lcore */
	uint16_t workers[DP_MAX_WORKERS];
	uint32_t mbufs, mbuf_cache;
	uint16_t mtu; /* IP MTU of every port; sizes the mbufs so a frame fits one segment */
	uint16_t rx_desc, tx_desc;
	uint32_t frag_entries;
	uint32_t frag_timeout_ms;
	uint32_t content_flow_entries; /* per worker: TCP flows with a content verdict */
	uint32_t content_flow_timeout_ms; /* idle time after which a flow verdict is forgotten */
	char control_socket[108]; /* "" = <EAL runtime dir>/regionfwd.sock */
	char control_group[64]; /* "" = the process's group */
};

/** Defaults for every field (no ports). */
void dp_node_defaults(struct dp_node *n);

/** Load and validate a node config file into @n. @return 0 or -EINVAL with @err. */
int dp_node_load(const char *path, struct dp_node *n, struct fwd_err *err);

/** Port index by name, or -ENOENT. */
int dp_node_port_index(const struct dp_node *n, const char *name);

/** The port index of link @link of @t on this node, or -EINVAL with @err
 *  naming the link's port field and the ports the node has. The one check
 *  both generation builds and `regionfwd --check-node` make. */
int dp_node_link_port(const struct dp_node *n, const struct fwd_table *t, uint16_t link,
		      struct fwd_err *err);

#endif /* DP_NODE_H */
