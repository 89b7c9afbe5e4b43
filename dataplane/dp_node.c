#include "dp_node.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_doc.h"
#include "fwd_table.h"

void dp_node_defaults(struct dp_node *n)
{
	memset(n, 0, sizeof(*n));
	n->mbufs = 32767;
	n->mbuf_cache = 256;
	n->mtu = 1500;
	n->rx_desc = 1024;
	n->tx_desc = 1024;
	n->frag_entries = 4096;
	n->frag_timeout_ms = 2000;
	n->content_flow_entries = 65536;
	n->content_flow_timeout_ms = 30000;
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
		return fwd_err_set(err, file, v->line, path, "'%s' is out of range %llu..%llu", v->str,
				   (unsigned long long)min, (unsigned long long)max);
	*out = x;
	return 0;
}

static int parse_ports(const char *file, const struct fwd_node *ports, struct dp_node *n,
		       struct fwd_err *err)
{
	char path[320];

	if (ports == NULL)
		return fwd_err_set(err, file, 0, "ports", "missing field 'ports'");
	if (ports->type != FWD_NODE_MAP || ports->count == 0)
		return fwd_err_set(err, file, ports->line, "ports", "expected a map of port names");
	if (ports->count > DP_MAX_PORTS)
		return fwd_err_set(err, file, ports->line, "ports", "more than %d ports", DP_MAX_PORTS);
	for (const struct fwd_node *p = ports->child; p; p = p->next) {
		struct dp_node_port *np = &n->ports[n->nports++];
		const struct fwd_node *dev, *ing;
		size_t len = strlen(p->key);

		snprintf(path, sizeof(path), "ports.%s", p->key);
		if (len == 0 || len >= FWD_NAME_MAX)
			return fwd_err_set(err, file, p->line, path, "port name must be 1..%d characters",
					   FWD_NAME_MAX - 1);
		for (size_t i = 0; i < len; i++)
			if (!isalnum((unsigned char)p->key[i]) && !strchr("_-.", p->key[i]))
				return fwd_err_set(err, file, p->line, path,
						   "port name may only use letters, digits, '_', '-', '.'");
		memcpy(np->name, p->key, len + 1);
		if (p->type != FWD_NODE_MAP)
			return fwd_err_set(err, file, p->line, path, "expected a map with 'device'");
		for (const struct fwd_node *k = p->child; k; k = k->next)
			if (strcmp(k->key, "device") && strcmp(k->key, "ingress") &&
			    strcmp(k->key, "description"))
				return fwd_err_set(err, file, k->line, path,
						   "unknown field '%s' (expected one of: device, ingress, description)",
						   k->key);
		dev = fwd_node_get(p, "device");
		if (dev == NULL || dev->type != FWD_NODE_SCALAR || dev->str[0] == '\0')
			return fwd_err_set(err, file, p->line, path,
					   "missing 'device' (PCI address, ethdev name or vdev devargs)");
		if (strlen(dev->str) >= sizeof(np->device))
			return fwd_err_set(err, file, dev->line, path, "device string too long");
		strcpy(np->device, dev->str);
		ing = fwd_node_get(p, "ingress");
		if (ing) {
			if (ing->type != FWD_NODE_SCALAR ||
			    (strcmp(ing->str, "true") && strcmp(ing->str, "false")))
				return fwd_err_set(err, file, ing->line, path,
						   "ingress must be true or false");
			np->ingress = strcmp(ing->str, "true") == 0;
		}
	}
	for (uint16_t i = 0; i < n->nports; i++)
		if (n->ports[i].ingress)
			return 0;
	return fwd_err_set(err, file, ports->line, "ports", "no port has 'ingress: true'");
}

int dp_node_load(const char *path, struct dp_node *n, struct fwd_err *err)
{
	static const char *const keys[] = {"ports", "workers", "mbufs", "mbuf_cache", "rx_desc",
					   "tx_desc", "mtu", "frag_entries", "frag_timeout_ms",
					   "content_flow_entries", "content_flow_timeout_ms",
					   "control_socket", "control_group", "description", NULL};
	struct fwd_doc *doc = fwd_doc_load(path, err);
	const struct fwd_node *root, *f;
	uint64_t v;
	int rc;

	if (doc == NULL)
		return -EINVAL;
	dp_node_defaults(n);
	snprintf(n->source, sizeof(n->source), "%s", path);
	root = fwd_doc_root(doc);
	if (root->type != FWD_NODE_MAP) {
		rc = fwd_err_set(err, path, root->line, "", "expected a map at the top");
		goto out;
	}
	for (const struct fwd_node *k = root->child; k; k = k->next) {
		int ok = 0;

		for (int i = 0; keys[i]; i++)
			ok |= strcmp(k->key, keys[i]) == 0;
		if (!ok) {
			rc = fwd_err_set(err, path, k->line, k->key, "unknown field '%s'", k->key);
			goto out;
		}
	}
	if ((rc = parse_ports(path, fwd_node_get(root, "ports"), n, err)))
		goto out;
	if ((f = fwd_node_get(root, "workers")) != NULL) {
		if (f->type != FWD_NODE_SEQ || f->count == 0 || f->count > DP_MAX_WORKERS) {
			rc = fwd_err_set(err, path, f->line, "workers",
					 "expected a list of 1..%d lcore ids", DP_MAX_WORKERS);
			goto out;
		}
		for (const struct fwd_node *e = f->child; e; e = e->next) {
			if ((rc = node_uint(path, e, "workers", 0, 1023, &v, err)))
				goto out;
			for (uint16_t i = 0; i < n->nworkers; i++)
				if (n->workers[i] == v) {
					rc = fwd_err_set(err, path, e->line, "workers",
							 "lcore %llu listed twice", (unsigned long long)v);
					goto out;
				}
			n->workers[n->nworkers++] = (uint16_t)v;
		}
	}
#define NODE_UINT(field, min, max)                                                         \
	if ((f = fwd_node_get(root, #field)) != NULL) {                                     \
		if ((rc = node_uint(path, f, #field, min, max, &v, err)))                   \
			goto out;                                                          \
		n->field = (__typeof__(n->field))v;                                         \
	}
	NODE_UINT(mbufs, 1024, 16777215)
	NODE_UINT(mbuf_cache, 0, 512)
	NODE_UINT(mtu, 68, 9600)
	NODE_UINT(rx_desc, 64, 16384)
	NODE_UINT(tx_desc, 64, 16384)
	NODE_UINT(frag_entries, 64, 16777216)
	NODE_UINT(frag_timeout_ms, 1, 120000)
	NODE_UINT(content_flow_entries, 64, 16777216)
	NODE_UINT(content_flow_timeout_ms, 1, 3600000)
#undef NODE_UINT
#define NODE_STR(field)                                                                    \
	if ((f = fwd_node_get(root, #field)) != NULL) {                                     \
		if (f->type != FWD_NODE_SCALAR || strlen(f->str) >= sizeof(n->field)) {    \
			rc = fwd_err_set(err, path, f->line, #field,                        \
					 "expected a string shorter than %zu bytes",        \
					 sizeof(n->field));                                 \
			goto out;                                                          \
		}                                                                          \
		strcpy(n->field, f->str);                                                  \
	}
	NODE_STR(control_socket)
	NODE_STR(control_group)
#undef NODE_STR
	rc = 0;
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
	return fwd_err_set(err, t->source, 0, path, "no port '%s' in node config %s (ports: %s)",
			   l->port, n->source, list);
}
