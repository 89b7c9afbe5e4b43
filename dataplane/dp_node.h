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
	uint8_t xdp_filter; /* net_af_xdp: xdp_prog= the node's xdp_object added to device */
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
	/* A link group member whose port came up again takes its slots back
	 * once its port has been up this long (dp_ctx.c) */
	uint32_t group_port_up_ms;
	uint32_t content_flow_entries; /* per worker: TCP flows with a content verdict */
	uint32_t content_flow_timeout_ms; /* idle time after which a flow verdict is forgotten */
	char control_socket[108]; /* "" = <EAL runtime dir>/regionfwd.sock */
	uint32_t
		control_frame_timeout_ms; /* a frame moves whole within this, or its connection goes */
	uint32_t control_idle_timeout_ms; /* a connection idle this long is closed */
	char control_group[64]; /* "" = the process's group */
	/* The last table a controller pushed, saved for the next start
	 * (dp_saved.h); "" = the control socket's path + ".pushed". */
	char pushed_table[256];
	/* Deltas since the pushed document are folded into one document when
	 * they hold more than it, and at least this many bytes (dp_ctx.c). */
	uint32_t delta_journal_bytes;
	uint32_t
		capture_ring; /* per worker: copies a capture holds before the writer drains them */
	uint32_t capture_mbufs; /* the capture's pool: copies in flight over all workers */
	char xdp_object[256]; /* "" = FWD_XDP_OBJECT, where meson install puts it */
	/* A worker that finds no packet for a while naps, up to this long
	 * between polls (dp_worker.c); 0 = poll without pause. */
	uint32_t idle_sleep_us;
};

struct fwd_node;

/* How a field of the node config's top level is read. */
enum dp_node_kind {
	DP_NODE_UINT, /* a whole number in min..max, stored in a 2- or 4-byte member */
	DP_NODE_STR, /* a string shorter than its member, default "" */
	DP_NODE_CUSTOM, /* its own parser: ports, workers */
	DP_NODE_NOTE, /* accepted and ignored: description */
};

/* One field of the node config, described once: dp_node.c derives the
 * known keys, the defaults, the parsing and the range errors from the
 * table of these, dp_node_fields[]. */
struct dp_node_field {
	const char *name;
	enum dp_node_kind kind;
	size_t off, size; /* UINT, STR: the member in struct dp_node */
	uint64_t min, max; /* UINT: the accepted range */
	uint64_t def; /* UINT: the default */
	/* CUSTOM: called with the field's value, or NULL when it is absent
	 * (so a required field says so). @return 0 or -EINVAL with @err. */
	int (*parse)(const char *file, const struct fwd_node *v, struct dp_node *n,
		     struct fwd_err *err);
	const char *help; /* one line */
};

/* Every top-level field, in the order they are checked: with several
 * errors in one file, the first in this order is reported. */
extern const struct dp_node_field dp_node_fields[];
extern const unsigned dp_node_nfields;

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
