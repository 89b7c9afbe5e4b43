#include "dp_port.h"

#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_ethdev.h>
#include <rte_kvargs.h>

#include "dp_log.h"
#include "fwd_report.h"

static int resolve_device(const struct dp_node_port *np, uint16_t *port_id)
{
	char name[RTE_ETH_NAME_MAX_LEN];
	const char *comma = strchr(np->device, ',');
	size_t len = comma ? (size_t)(comma - np->device) : strlen(np->device);
	int rc;

	if (len >= sizeof(name))
		return -ENAMETOOLONG;
	memcpy(name, np->device, len);
	name[len] = '\0';
	if (rte_eth_dev_get_port_by_name(name, port_id) == 0)
		return 0;
	/* Not probed by EAL (-a / --vdev): probe it from its devargs. */
	rc = rte_dev_probe(np->device);
	if (rc < 0) {
		DP_LOG(ERR, "port %s: cannot probe device '%s': %s", np->name, np->device,
		       strerror(-rc));
		/* DPDK 22.11's net_af_packet names its PACKET_FANOUT group
		 * (pid ^ ifindex) & 0xffff: one equal to another socket's group
		 * in this network namespace is refused (EINVAL), and only a new
		 * pid changes it. */
		if (strncmp(np->device, "net_af_packet", 13) == 0)
			DP_LOG(ERR,
			       "port %s: if DPDK's error above is about PACKET_FANOUT, the "
			       "fanout group id (process id XOR interface index) is another "
			       "socket's in this network namespace: start regionfwd again",
			       np->name);
		return rc;
	}
	if (rte_eth_dev_get_port_by_name(name, port_id) != 0) {
		DP_LOG(ERR, "port %s: device '%s' probed but no ethdev named '%s'", np->name,
		       np->device, name);
		return -ENODEV;
	}
	return 0;
}

/* Whether started port @pid reports the packet types the worker's verdict
 * path needs: plain Ethernet and IPv4 without options, told apart from
 * tagged frames and IPv4 with options. Asked after the start: a PMD's
 * answer can depend on the RX function it picked there. */
static int port_has_ptypes(uint16_t pid)
{
	uint32_t pt[64];
	int n = rte_eth_dev_get_supported_ptypes(pid, RTE_PTYPE_L2_MASK | RTE_PTYPE_L3_MASK, pt,
						 RTE_DIM(pt));
	int ether = 0, ipv4 = 0;

	for (int i = 0; i < n && i < (int)RTE_DIM(pt); i++) {
		ether |= (pt[i] & RTE_PTYPE_L2_MASK) == RTE_PTYPE_L2_ETHER;
		ipv4 |= (pt[i] & RTE_PTYPE_L3_MASK) == RTE_PTYPE_L3_IPV4;
	}
	return ether && ipv4;
}

static int port_setup(const struct dp_node *node, const struct dp_node_port *np, uint16_t pid,
		      uint16_t nworkers, struct rte_mempool *pool, uint8_t *verdicts)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t nrx, ntx = nworkers;
	uint16_t rxd = node->rx_desc, txd = node->tx_desc;
	int rc, socket = rte_eth_dev_socket_id(pid);

	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_info_get(pid, &info);
	if (rc) {
		DP_LOG(ERR, "port %s: cannot read device info: %s", np->name, strerror(-rc));
		return rc;
	}
	/* Egress-only ports are never polled, but some PMDs (net_tap) want as
	 * many RX as TX queues: give them what they allow, up to the TX count
	 * (0 on a TX-only pcap). */
	nrx = np->ingress ? nworkers : RTE_MIN(ntx, info.max_rx_queues);
	if (nrx > info.max_rx_queues || ntx > info.max_tx_queues) {
		DP_LOG(ERR,
		       "port %s (%s): %u workers need %u RX and %u TX queues, the device has %u "
		       "and %u",
		       np->name, np->device, nworkers, nrx, ntx, info.max_rx_queues,
		       info.max_tx_queues);
		return -EINVAL;
	}
	if (nrx > 1) {
		uint64_t hf = info.flow_type_rss_offloads & RTE_ETH_RSS_IP;

		if (hf) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
		} else {
			DP_LOG(WARNING,
			       "port %s: no RSS on IP addresses; queues get what the device gives",
			       np->name);
		}
	}
	if (node->mtu > info.max_mtu || node->mtu < info.min_mtu) {
		DP_LOG(ERR, "port %s: mtu %u outside what the device takes (%u..%u)", np->name,
		       node->mtu, info.min_mtu, info.max_mtu);
		return -EINVAL;
	}
	conf.rxmode.mtu = node->mtu;
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	/* The NIC's IPv4 header checksum verdict, where it offers one: a
	 * packet it vouches for skips the software sum (used only together
	 * with packet types, checked after the start). */
	if (np->ingress && (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM))
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	if (socket < 0)
		socket = (int)rte_socket_id();

	rc = rte_eth_dev_configure(pid, nrx, ntx, &conf);
	if (rc) {
		DP_LOG(ERR, "port %s: configure failed: %s", np->name, strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &rxd, &txd);
	if (rc) {
		DP_LOG(ERR, "port %s: descriptor counts refused: %s", np->name, strerror(-rc));
		return rc;
	}
	for (uint16_t q = 0; q < nrx; q++) {
		struct rte_eth_rxconf rxc = info.default_rxconf;

		rxc.offloads = conf.rxmode.offloads;
		rc = rte_eth_rx_queue_setup(pid, q, rxd, (unsigned)socket, &rxc, pool);
		if (rc) {
			DP_LOG(ERR, "port %s: RX queue %u setup failed: %s", np->name, q,
			       strerror(-rc));
			return rc;
		}
	}
	for (uint16_t q = 0; q < ntx; q++) {
		struct rte_eth_txconf txc = info.default_txconf;

		txc.offloads = conf.txmode.offloads;
		rc = rte_eth_tx_queue_setup(pid, q, txd, (unsigned)socket, &txc);
		if (rc) {
			DP_LOG(ERR, "port %s: TX queue %u setup failed: %s", np->name, q,
			       strerror(-rc));
			return rc;
		}
	}
	rc = rte_eth_dev_start(pid);
	if (rc) {
		DP_LOG(ERR, "port %s: start failed: %s", np->name, strerror(-rc));
		return rc;
	}
	if (np->ingress)
		rte_eth_promiscuous_enable(pid); /* best effort: vdevs may not support it */
	*verdicts = np->ingress && (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) &&
		    port_has_ptypes(pid);
	if (np->ingress)
		DP_LOG(INFO, "port %s: %s", np->name,
		       *verdicts ? "RX packet types and IPv4 checksum verdicts used"
				 : "no RX packet types or IPv4 checksum verdicts: checked in "
				   "software");
	return 0;
}

static int kernel_ifindex(const struct rte_eth_dev_info *info);

int dp_ports_init(const struct dp_node *node, uint16_t nworkers, struct rte_mempool *pool,
		  struct dp_ports *out)
{
	uint64_t ring_mbufs = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	for (uint16_t i = 0; i < node->nports; i++) {
		const struct dp_node_port *np = &node->ports[i];

		rc = resolve_device(np, &out->port_id[i]);
		if (rc)
			goto close_ports;
		for (uint16_t j = 0; j < i; j++)
			if (out->port_id[j] == out->port_id[i]) {
				DP_LOG(ERR, "ports %s and %s name the same device",
				       node->ports[j].name, np->name);
				rc = -EINVAL;
				goto close_ports;
			}
		out->nports = (uint16_t)(i + 1);
		rc = port_setup(node, np, out->port_id[i], nworkers, pool, &out->verdicts[i]);
		if (rc)
			goto close_ports;
		out->started[i] = 1;
		rte_eth_macaddr_get(out->port_id[i], &out->mac[i]);
		{
			struct rte_eth_dev_info info;

			if (rte_eth_dev_info_get(out->port_id[i], &info) == 0) {
				ring_mbufs += (uint64_t)RTE_MIN(nworkers, info.nb_rx_queues) *
						      node->rx_desc +
					      (uint64_t)nworkers * node->tx_desc;
				out->ifindex[i] = kernel_ifindex(&info);
			}
		}
	}
	/* Descriptors hold mbufs (RX rings are filled at start; TX rings until
	 * completion); the workers need the rest for bursts and mirror copies. */
	ring_mbufs += (uint64_t)nworkers * (node->mbuf_cache + 4 * FWD_BURST);
	if (ring_mbufs > node->mbufs)
		DP_LOG(WARNING,
		       "pool of %u mbufs is smaller than the %llu that rings and caches can hold; "
		       "raise 'mbufs' in %s or expect rx drops (imissed)",
		       node->mbufs, (unsigned long long)ring_mbufs, node->source);
	return 0;
close_ports:
	dp_ports_close(out);
	return rc;
}

void dp_ports_close(struct dp_ports *p)
{
	if (p == NULL)
		return;
	for (uint16_t i = 0; i < p->nports; i++) {
		if (p->started[i])
			rte_eth_dev_stop(p->port_id[i]);
		rte_eth_dev_close(p->port_id[i]);
		p->started[i] = 0;
	}
	p->nports = 0;
}

/* ethdev's calls are not thread-safe for one port, and two threads ask:
 * the control thread (status, counters, the exit report) and telemetry's.
 * Drivers that read counters which clear on read (ixgbe, igb, e1000) and
 * add them into totals of their own could lose or count twice what two
 * calls at once read. Never taken on a worker. */
static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;

void dp_ports_stats_reset(const struct dp_ports *p)
{
	for (uint16_t i = 0; i < p->nports; i++) {
		int rc;

		if (!p->started[i])
			continue;
		pthread_mutex_lock(&health_lock);
		rc = rte_eth_stats_reset(p->port_id[i]);
		pthread_mutex_unlock(&health_lock);
		if (rc)
			DP_LOG(NOTICE,
			       "port %u: its counters cannot be reset (%s): they count from "
			       "the port's start, not from forwarding's",
			       p->port_id[i], strerror(-rc));
	}
}

/* The value of devargs key @key in @args, read as the PMDs read them
 * (rte_kvargs: "name,key=value,..." with [] lists), into @out; 0 when it
 * has none, an empty one or one longer than @len allows. */
static int devarg(const char *args, const char *key, char *out, size_t len)
{
	struct rte_kvargs *kv = rte_kvargs_parse(args, NULL);
	const char *v = kv ? rte_kvargs_get(kv, key) : NULL;
	int found = v != NULL && *v != '\0' && strlen(v) < len;

	if (found)
		snprintf(out, len, "%s", v);
	rte_kvargs_free(kv);
	return found;
}

int dp_iface_down(const char *args, const char *dir)
{
	char key[16], name[IFNAMSIZ];
	struct ifreq ifr = {0};
	int fd, down = 0;

	snprintf(key, sizeof(key), "%s_iface", dir);
	if (args == NULL ||
	    (!devarg(args, key, name, sizeof(name)) && !devarg(args, "iface", name, sizeof(name))))
		return 0;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
		down = !(ifr.ifr_flags & IFF_UP) || !(ifr.ifr_flags & IFF_RUNNING);
	else
		down = errno == ENODEV; /* the interface is gone: nothing leaves by it */
	close(fd);
	return down;
}

/* Whether the kernel interface @ifindex is down, has no carrier or is
 * gone. By index, not name, as the PMD's socket is bound: renamed, it
 * still sends (a probe: a rename read as down); deleted and made again
 * by its name, it is another interface, and the socket sends nowhere (a
 * probe: read as up, everything lost). */
static int ifindex_down(int ifindex)
{
	char name[IF_NAMESIZE];
	struct ifreq ifr = {0};
	int fd, down = 0;

	if (if_indextoname((unsigned)ifindex, name) == NULL)
		return errno == ENXIO || errno == ENODEV; /* gone (or moved away) */
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	/* The flags by name, then the name's index again: a rename between
	 * the calls (another interface under the name) is not known, not down. */
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		struct ifreq idx = {0};

		down = !(ifr.ifr_flags & IFF_UP) || !(ifr.ifr_flags & IFF_RUNNING);
		snprintf(idx.ifr_name, sizeof(idx.ifr_name), "%s", name);
		if (ioctl(fd, SIOCGIFINDEX, &idx) != 0 || idx.ifr_ifindex != ifindex)
			down = 0;
	}
	close(fd);
	return down;
}

/* The index of the kernel interface a started port sends by, for the
 * drivers whose iface= (or tx_iface=) names one: net_af_packet,
 * net_af_xdp, net_tap, net_pcap (net_vhost's iface= is a socket path, and
 * other drivers' keys are theirs). 0: none. */
static int kernel_ifindex(const struct rte_eth_dev_info *info)
{
	static const char *const drivers[] = {"net_af_packet", "net_af_xdp", "net_tap", "net_pcap"};
	const struct rte_devargs *da = info->device ? rte_dev_devargs(info->device) : NULL;
	char name[IFNAMSIZ];
	int ours = 0;

	for (size_t k = 0; k < RTE_DIM(drivers) && info->driver_name; k++)
		ours |= strcmp(info->driver_name, drivers[k]) == 0;
	if (!ours || da == NULL ||
	    (!devarg(da->args, "tx_iface", name, sizeof(name)) &&
	     !devarg(da->args, "iface", name, sizeof(name))))
		return 0;
	return (int)if_nametoindex(name);
}

/* A port's link as its PMD reports it, and down when the kernel interface
 * it sends by (kernel_ifindex) is down, has no carrier or is gone: those
 * PMDs say up whatever the interface does (a probe: a group member on an
 * AF_PACKET veth whose peer was down kept its flows, lost as tx_full, for
 * as long as it lasted). Under health_lock. */
static int port_link_locked(const struct dp_ports *p, uint16_t i, struct rte_eth_link *link)
{
	int state = FWD_PORT_LINK_UNKNOWN;

	memset(link, 0, sizeof(*link));
	if (rte_eth_link_get_nowait(p->port_id[i], link) == 0)
		state = link->link_status == RTE_ETH_LINK_UP ? FWD_PORT_LINK_UP
							     : FWD_PORT_LINK_DOWN;
	if (state != FWD_PORT_LINK_DOWN && p->ifindex[i] > 0 && ifindex_down(p->ifindex[i]))
		state = FWD_PORT_LINK_DOWN;
	return state;
}

int dp_port_link(const struct dp_ports *p, uint16_t i)
{
	struct rte_eth_link link;
	int state = FWD_PORT_LINK_UNKNOWN;

	if (i >= p->nports || !p->started[i])
		return state;
	pthread_mutex_lock(&health_lock);
	state = port_link_locked(p, i, &link);
	pthread_mutex_unlock(&health_lock);
	return state;
}

void dp_port_health(const struct dp_ports *p, uint16_t i, struct dp_port_health *h)
{
	struct rte_eth_link link;

	memset(h, 0, sizeof(*h));
	h->link = FWD_PORT_LINK_UNKNOWN;
	if (i >= p->nports || !p->started[i])
		return;
	pthread_mutex_lock(&health_lock);
	h->link = port_link_locked(p, i, &link);
	if (h->link == FWD_PORT_LINK_UP) {
		h->speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
		h->full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
	}
	h->has_stats = rte_eth_stats_get(p->port_id[i], &h->stats) == 0;
	pthread_mutex_unlock(&health_lock);
}
