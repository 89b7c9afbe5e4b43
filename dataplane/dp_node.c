#include "dp_node.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fwd_doc.h"
#include "fwd_table.h"

static int parse_ports(const char *file, const struct fwd_node *ports, struct dp_node *n,
		       struct fwd_err *err);
static int parse_workers(const char *file, const struct fwd_node *f, struct dp_node *n,
			 struct fwd_err *err);

#define MEMBER(f) .off = offsetof(struct dp_node, f), .size = sizeof(((struct dp_node *)0)->f)
#define UINT(f, lo, hi, d, h)                                                                      \
	{                                                                                          \
		.name = #f, .kind = DP_NODE_UINT, MEMBER(f), .min = lo, .max = hi, .def = d,       \
		.help = h                                                                          \
	}
#define STR(f, h)                                                                                  \
	{                                                                                          \
		.name = #f, .kind = DP_NODE_STR, MEMBER(f), .help = h                              \
	}
#define CUSTOM(f, fn, h)                                                                           \
	{                                                                                          \
		.name = #f, .kind = DP_NODE_CUSTOM, .parse = fn, .help = h                         \
	}
#define NOTE(f, h)                                                                                 \
	{                                                                                          \
		.name = #f, .kind = DP_NODE_NOTE, .help = h                                        \
	}

const struct dp_node_field dp_node_fields[] = {
	CUSTOM(ports, parse_ports,
	       "NAME: {device, ingress, xdp_filter, description}; one or more ingress"),
	CUSTOM(workers, parse_workers, "worker lcore ids; default: every EAL worker lcore"),
	UINT(mbufs, 1024, 16777215, 32767, "mbuf pool size"),
	UINT(mbuf_cache, 0, 512, 256, "per-lcore mbuf cache"),
	UINT(mtu, 68, 9600, 1500, "IP MTU of every port; sizes the mbufs so a frame fits one"),
	UINT(rx_desc, 64, 16384, 1024, "RX ring size (adjusted to what the device allows)"),
	UINT(tx_desc, 64, 16384, 1024, "TX ring size (adjusted to what the device allows)"),
	UINT(frag_entries, 64, 16777216, 4096, "fragment table entries per worker"),
	UINT(frag_timeout_ms, 1, 120000, 2000, "how long a first fragment's decision is kept"),
	UINT(group_port_up_ms, 0, 3600000, 2000,
	     "a link group member whose port came up again takes its flows back after this"),
	UINT(content_flow_entries, 64, 16777216, 65536,
	     "TCP flows with a content verdict, per worker"),
	UINT(content_flow_timeout_ms, 1, 3600000, 30000, "idle time before a verdict is forgotten"),
	STR(control_socket, "control socket path; default: <EAL runtime dir>/regionfwd.sock"),
	UINT(control_frame_timeout_ms, 100, 600000, 30000,
	     "a control frame must arrive (or its reply leave) whole within this time"),
	UINT(control_idle_timeout_ms, 5000, 86400000, 60000,
	     "a control connection with nothing in flight is closed after this long"),
	STR(control_group, "group owning the control socket; default: the process's group"),
	STR(pushed_table, "last pushed table, run after a restart; default: control_socket.pushed"),
	UINT(delta_journal_bytes, 4096, 1073741824, 16777216,
	     "delta bytes kept past the pushed table before it absorbs them"),
	UINT(capture_ring, 64, 65536, 1024,
	     "per worker: copies a capture holds until its writer drains them"),
	UINT(capture_mbufs, 256, 1048575, 4095, "a capture's copies in flight, over all workers"),
	UINT(idle_sleep_us, 0, 10000, 0, "longest nap of a worker with no packets; 0: never nap"),
	STR(xdp_object, "BPF object of xdp_filter ports; default: the installed one"),
	NOTE(description, "free text for the reader"),
};
const unsigned dp_node_nfields = sizeof(dp_node_fields) / sizeof(dp_node_fields[0]);

#undef MEMBER
#undef UINT
#undef STR
#undef CUSTOM
#undef NOTE

static void store_uint(struct dp_node *n, const struct dp_node_field *d, uint64_t v)
{
	uint8_t *p = (uint8_t *)n + d->off;

	/* The ranges fit their members (the unit tests check the table). */
	if (d->size == sizeof(uint16_t)) {
		uint16_t x = (uint16_t)v;

		memcpy(p, &x, sizeof(x));
	} else {
		uint32_t x = (uint32_t)v;

		memcpy(p, &x, sizeof(x));
	}
}

void dp_node_defaults(struct dp_node *n)
{
	memset(n, 0, sizeof(*n));
	for (unsigned i = 0; i < dp_node_nfields; i++)
		if (dp_node_fields[i].kind == DP_NODE_UINT)
			store_uint(n, &dp_node_fields[i], dp_node_fields[i].def);
}

static int node_uint(const char *file, const struct fwd_node *v, const char *path, uint64_t min,
		     uint64_t max, uint64_t *out, struct fwd_err *err)
{
	char *end;
	unsigned long long x;

	if (v->type != FWD_NODE_SCALAR || !isdigit((unsigned char)v->str[0]))
		return fwd_err_set(err, file, v->line, path, "expected a whole number");
	errno = 0;
	x = strtoull(v->str, &end, 10);
	if (*end || errno || x < min || x > max)
		return fwd_err_set(err, file, v->line, path, "'%s' is out of range %llu..%llu",
				   v->str, (unsigned long long)min, (unsigned long long)max);
	*out = x;
	return 0;
}

/* The fields of one port, and the list the unknown-field error names. */
static const char *const port_keys[] = {"device", "ingress", "xdp_filter", "description"};
#define NPORT_KEYS (sizeof(port_keys) / sizeof(port_keys[0]))

static int parse_ports(const char *file, const struct fwd_node *ports, struct dp_node *n,
		       struct fwd_err *err)
{
	char path[320];

	if (ports == NULL)
		return fwd_err_set(err, file, 0, "ports", "missing field 'ports'");
	if (ports->type != FWD_NODE_MAP || ports->count == 0)
		return fwd_err_set(err, file, ports->line, "ports", "expected a map of port names");
	if (ports->count > DP_MAX_PORTS)
		return fwd_err_set(err, file, ports->line, "ports", "more than %d ports",
				   DP_MAX_PORTS);
	for (const struct fwd_node *p = ports->child; p; p = p->next) {
		struct dp_node_port *np = &n->ports[n->nports++];
		const struct fwd_node *dev, *ing;
		size_t len = strlen(p->key);

		snprintf(path, sizeof(path), "ports.%s", p->key);
		if (len == 0 || len >= FWD_NAME_MAX)
			return fwd_err_set(err, file, p->line, path,
					   "port name must be 1..%d characters", FWD_NAME_MAX - 1);
		for (size_t i = 0; i < len; i++)
			if (!isalnum((unsigned char)p->key[i]) && !strchr("_-.", p->key[i]))
				return fwd_err_set(
					err, file, p->line, path,
					"port name may only use letters, digits, '_', '-', '.'");
		memcpy(np->name, p->key, len + 1);
		if (p->type != FWD_NODE_MAP)
			return fwd_err_set(err, file, p->line, path,
					   "expected a map with 'device'");
		for (const struct fwd_node *k = p->child; k; k = k->next) {
			char list[80];
			size_t used = 0, i;

			for (i = 0; i < NPORT_KEYS && strcmp(k->key, port_keys[i]); i++)
				;
			if (i < NPORT_KEYS)
				continue;
			for (i = 0; i < NPORT_KEYS; i++)
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
							 i ? ", " : "", port_keys[i]);
			return fwd_err_set(err, file, k->line, path,
					   "unknown field '%s' (expected one of: %s)", k->key,
					   list);
		}
		dev = fwd_node_get(p, "device");
		if (dev == NULL || dev->type != FWD_NODE_SCALAR || dev->str[0] == '\0')
			return fwd_err_set(
				err, file, p->line, path,
				"missing 'device' (PCI address, ethdev name or vdev devargs)");
		if (strlen(dev->str) >= sizeof(np->device))
			return fwd_err_set(err, file, dev->line, path, "device string too long");
		strcpy(np->device, dev->str);
		/* The same device twice (its name, before any devargs): the
		 * start would fail on it; say so here, with the line. Two
		 * spellings of one device (a PCI address and its ethdev
		 * name) only the start can see. */
		for (uint16_t j = 0; j + 1 < n->nports; j++) {
			const char *o = n->ports[j].device;
			size_t a = strcspn(o, ","), b = strcspn(np->device, ",");

			if (a == b && strncmp(o, np->device, a) == 0)
				return fwd_err_set(err, file, dev->line, path,
						   "device '%.*s' is port '%s''s already", (int)b,
						   np->device, n->ports[j].name);
		}
		ing = fwd_node_get(p, "ingress");
		if (ing) {
			if (ing->type != FWD_NODE_SCALAR ||
			    (strcmp(ing->str, "true") && strcmp(ing->str, "false")))
				return fwd_err_set(err, file, ing->line, path,
						   "ingress must be true or false");
			np->ingress = strcmp(ing->str, "true") == 0;
		}
		ing = fwd_node_get(p, "xdp_filter");
		if (ing) {
			if (ing->type != FWD_NODE_SCALAR ||
			    (strcmp(ing->str, "true") && strcmp(ing->str, "false")))
				return fwd_err_set(err, file, ing->line, path,
						   "xdp_filter must be true or false");
			np->xdp_filter = strcmp(ing->str, "true") == 0;
			if (np->xdp_filter && strncmp(np->device, "net_af_xdp", 10))
				return fwd_err_set(err, file, ing->line, path,
						   "xdp_filter needs a net_af_xdp device");
			if (np->xdp_filter && strstr(np->device, "xdp_prog="))
				return fwd_err_set(err, file, ing->line, path,
						   "xdp_filter and xdp_prog= in device: give one");
		}
	}
	for (uint16_t i = 0; i < n->nports; i++)
		if (n->ports[i].ingress)
			return 0;
	return fwd_err_set(err, file, ports->line, "ports", "no port has 'ingress: true'");
}

static int parse_workers(const char *file, const struct fwd_node *f, struct dp_node *n,
			 struct fwd_err *err)
{
	uint64_t v;
	int rc;

	if (f == NULL)
		return 0; /* every EAL worker lcore */
	if (f->type != FWD_NODE_SEQ || f->count == 0 || f->count > DP_MAX_WORKERS)
		return fwd_err_set(err, file, f->line, "workers",
				   "expected a list of 1..%d lcore ids", DP_MAX_WORKERS);
	for (const struct fwd_node *e = f->child; e; e = e->next) {
		if ((rc = node_uint(file, e, "workers", 0, 1023, &v, err)))
			return rc;
		for (uint16_t i = 0; i < n->nworkers; i++)
			if (n->workers[i] == v)
				return fwd_err_set(err, file, e->line, "workers",
						   "lcore %llu listed twice",
						   (unsigned long long)v);
		n->workers[n->nworkers++] = (uint16_t)v;
	}
	return 0;
}

static const struct dp_node_field *field_by_name(const char *name)
{
	for (unsigned i = 0; i < dp_node_nfields; i++)
		if (strcmp(dp_node_fields[i].name, name) == 0)
			return &dp_node_fields[i];
	return NULL;
}

/* One field's value @v (NULL: absent, the default stays) into @n. */
static int parse_field(const char *file, const struct dp_node_field *d, const struct fwd_node *v,
		       struct dp_node *n, struct fwd_err *err)
{
	uint64_t x;
	int rc;

	switch (d->kind) {
	case DP_NODE_CUSTOM:
		return d->parse(file, v, n, err);
	case DP_NODE_UINT:
		if (v == NULL)
			return 0;
		if ((rc = node_uint(file, v, d->name, d->min, d->max, &x, err)))
			return rc;
		store_uint(n, d, x);
		return 0;
	case DP_NODE_STR:
		if (v == NULL)
			return 0;
		if (v->type != FWD_NODE_SCALAR || strlen(v->str) >= d->size)
			return fwd_err_set(err, file, v->line, d->name,
					   "expected a string shorter than %zu bytes", d->size);
		/* '' was read as the default: not what its writer meant (a
		 * walkthrough). A relative path stays one from where regionfwd
		 * starts (a lab's build tree: filters.md). */
		if (v->str[0] == '\0')
			return fwd_err_set(err, file, v->line, d->name,
					   "empty: leave %s out for its default", d->name);
		strcpy((char *)n + d->off, v->str);
		return 0;
	case DP_NODE_NOTE:
		return 0;
	}
	return 0;
}

/*
 * Ports with xdp_filter: true get xdp_prog=OBJECT in their devargs, OBJECT
 * being xdp_object or the installed path. Checked here, where the file and
 * line are known: DPDK's PMD would only say "Invalid kvargs value".
 */
static int add_xdp_prog(const char *file, const struct fwd_node *root, struct dp_node *n,
			struct fwd_err *err)
{
	const struct fwd_node *ports = fwd_node_get(root, "ports"), *p;
	const char *obj = n->xdp_object[0] ? n->xdp_object : FWD_XDP_OBJECT;
	char path[320];

	for (uint16_t i = 0; i < n->nports; i++) {
		struct dp_node_port *np = &n->ports[i];
		size_t len = strlen(np->device);

		if (!np->xdp_filter)
			continue;
		for (p = ports->child; p && strcmp(p->key, np->name); p = p->next)
			;
		snprintf(path, sizeof(path), "ports.%s.xdp_filter", np->name);
		if (access(obj, R_OK))
			return fwd_err_set(
				err, file, p ? p->line : 0, path,
				"cannot read the XDP object %s: %s (install the package, "
				"or name it with xdp_object)",
				obj, strerror(errno));
		if ((size_t)snprintf(np->device + len, sizeof(np->device) - len, ",xdp_prog=%s",
				     obj) >= sizeof(np->device) - len)
			return fwd_err_set(err, file, p ? p->line : 0, path,
					   "device string too long with xdp_prog=%s", obj);
	}
	return 0;
}

int dp_node_load(const char *path, struct dp_node *n, struct fwd_err *err)
{
	struct fwd_doc *doc = fwd_doc_load(path, err);
	const struct fwd_node *root;
	int rc = 0;

	if (doc == NULL)
		return -EINVAL;
	dp_node_defaults(n);
	snprintf(n->source, sizeof(n->source), "%s", path);
	root = fwd_doc_root(doc);
	if (root->type != FWD_NODE_MAP) {
		rc = fwd_err_set(err, path, root->line, "", "expected a map at the top");
		goto out;
	}
	/* Unknown fields first, so a misspelt key is named before the value
	 * it was meant to replace is judged. */
	for (const struct fwd_node *k = root->child; k; k = k->next) {
		if (field_by_name(k->key) == NULL) {
			rc = fwd_err_set(err, path, k->line, k->key, "unknown field '%s'", k->key);
			goto out;
		}
	}
	for (unsigned i = 0; i < dp_node_nfields && rc == 0; i++) {
		const struct dp_node_field *d = &dp_node_fields[i];

		rc = parse_field(path, d, fwd_node_get(root, d->name), n, err);
	}
	if (rc == 0)
		rc = add_xdp_prog(path, root, n, err);
out:
	fwd_doc_free(doc);
	return rc;
}

int dp_node_port_index(const struct dp_node *n, const char *name)
{
	for (uint16_t i = 0; i < n->nports; i++)
		if (strcmp(n->ports[i].name, name) == 0)
			return i;
	return -ENOENT;
}

int dp_node_link_port(const struct dp_node *n, const struct fwd_table *t, uint16_t link,
		      struct fwd_err *err)
{
	const struct fwd_link *l = &t->links[link];
	int pi = dp_node_port_index(n, l->port);
	char list[256] = "", path[FWD_NAME_MAX + 16];
	size_t used = 0;

	if (pi >= 0)
		return pi;
	for (uint16_t j = 0; j < n->nports && used < sizeof(list); j++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", j ? ", " : "",
					 n->ports[j].name);
	snprintf(path, sizeof(path), "links.%s.port", l->name);
	return fwd_err_set(err, t->source, l->port_line, path,
			   "no port '%s' in node config %s (ports: %s)", l->port, n->source, list);
}
