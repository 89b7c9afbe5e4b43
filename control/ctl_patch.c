#include "ctl_patch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fwd_names.h"
#include "fwd_table.h"

/* "10.1.0.0/16" with the address in its canonical text form, so a change
 * names a prefix however the document spelled it (2001:DB8:: or 2001:db8::). */
static const char *canon_prefix(const char *s, char *buf, size_t len)
{
	char a[64];
	unsigned char bin[16];
	const char *slash = s ? strchr(s, '/') : NULL;
	int fam;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(a))
		return NULL;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	fam = strchr(a, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, a, bin) != 1 || !inet_ntop(fam, bin, a, sizeof(a)))
		return NULL;
	snprintf(buf, len, "%s/%s", a, slash + 1);
	return buf;
}

/* The change being applied: its path for errors ("changes[i]"), its index,
 * and where what it adds is noted (NULL: nowhere). */
struct patch_at {
	const char *path;
	int32_t change;
	struct ctl_patch_src *src;
};

/* Note that @node came from change @change (its item @item, or -1). Out of
 * memory loses the note, not the change: the error is then named by the
 * model's path. */
static void note(struct ctl_patch_src *src, const json_t *node, int32_t change, int32_t item)
{
	if (src == NULL)
		return;
	if (src->n == src->cap) {
		size_t cap = src->cap ? src->cap * 2 : 16;
		struct ctl_patch_origin *o = realloc(src->o, cap * sizeof(*o));

		if (o == NULL)
			return;
		src->o = o;
		src->cap = cap;
	}
	src->o[src->n++] = (struct ctl_patch_origin){node, change, item};
}

/* A field of a change: its name, the JSON type it must have and, for a
 * string, what it names; checked in one place (op_of), before any op runs,
 * so a field of the wrong type is a 400 naming changes[i].FIELD, never a
 * refusal about something else ("'weight' ... at changes[0]", "no region
 * '(missing)'"). */
enum patch_kind { PF_NAME = 1, PF_INT, PF_LIST, PF_OBJECT };

struct patch_field {
	const char *name;
	enum patch_kind kind;
	int optional;
	const char *what; /* PF_NAME: "a link's name"; PF_INT: its range's words */
	long long min, max; /* PF_INT */
};

/* An op: its name, the fields a change of it may carry, what it does. */
struct patch_op {
	const char *name;
	const struct patch_field fields[4];
	int (*apply)(json_t *model, json_t *change, const struct patch_op *op,
		     const struct patch_at *at, struct fwd_err *e);
};

/* A change's field by its position in the op's row of ops[] below: the one
 * place each field is spelled. */
#define FIELD(c, op, i) json_object_get((c), (op)->fields[(i)].name)

/* changes[i].FIELD into @buf, for a refusal that is about that field. */
static const char *field_path(const struct patch_at *at, const struct patch_op *op, int i,
			      char *buf, size_t len)
{
	snprintf(buf, len, "%s.%s", at->path, op->fields[i].name);
	return buf;
}

/* A prefix's identity however it is spelled ("4:0a000000/8"), into @key
 * (64 bytes hold any): the address's bytes in hex and the length as a
 * number. NULL when the address is not one; a length that is not a number
 * is kept as written (the table's validation refuses it, naming it). */
static const char *prefix_key(const char *s, char *key, size_t len)
{
	char a[64];
	unsigned char bin[16];
	const char *slash = s ? strchr(s, '/') : NULL, *l;
	int fam, n, off;
	char *end;
	unsigned long bits;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(a))
		return NULL;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	fam = strchr(a, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, a, bin) != 1)
		return NULL;
	n = fam == AF_INET ? 4 : 16;
	off = snprintf(key, len, "%c:", fam == AF_INET ? '4' : '6');
	for (int i = 0; i < n; i++)
		off += snprintf(key + off, len - (size_t)off, "%02x", bin[i]);
	l = slash + 1;
	bits = strtoul(l, &end, 10);
	if (*l >= '0' && *l <= '9' && *end == '\0' && bits <= 128)
		snprintf(key + off, len - (size_t)off, "/%lu", bits);
	else
		snprintf(key + off, len - (size_t)off, "/%.16s", l);
	return key;
}

/* Two prefix keys (prefix_key) in the table's order: IPv4 first, by
 * address, then by length (as a number: "/16" after "/8"). */
static int key_cmp(const char *a, const char *b)
{
	size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
	int c = strncmp(a, b, la < lb ? la : lb);

	if (c || la != lb)
		return c ? c : la < lb ? -1 : 1;
	return (int)(strtoul(a + la + 1, NULL, 10) > strtoul(b + lb + 1, NULL, 10)) -
	       (int)(strtoul(a + la + 1, NULL, 10) < strtoul(b + lb + 1, NULL, 10));
}

struct keyed {
	char key[64];
	json_t *v;
};

static int keyed_cmp(const void *a, const void *b)
{
	return key_cmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

/* A region's prefixes put in the table's order after an addition, as the
 * model lists them (ctl_model): a prefix removed and added again in one
 * PATCH came back last, the model's text differed from the table's and the
 * no-op made a new generation (a hostile probe). The values are moved, not
 * copied: what names a change's prefixes (note) still finds them. @return
 * 0, or -ENOMEM with the list as it was. */
static int sort_prefixes(json_t *list)
{
	size_t n = json_array_size(list), j;
	struct keyed *k = calloc(n ? n : 1, sizeof(*k));
	json_t *v;

	if (k == NULL)
		return -ENOMEM;
	json_array_foreach(list, j, v) {
		if (prefix_key(json_string_value(v), k[j].key, sizeof(k[j].key)) == NULL)
			snprintf(k[j].key, sizeof(k[j].key), "~%.60s", json_string_value(v) ?: "");
		k[j].v = json_incref(v);
	}
	qsort(k, n, sizeof(*k), keyed_cmp);
	json_array_clear(list);
	for (j = 0; j < n; j++)
		json_array_append_new(list, k[j].v);
	free(k);
	return 0;
}

/* The prefixes of one add_prefixes or remove_prefixes change, by their
 * identity: the index in the change each has (a JSON object used as a set).
 * One named twice in the change is refused, naming the second. */
static json_t *change_set(json_t *list, const struct patch_at *at, struct fwd_err *e)
{
	json_t *set = json_object(), *v;
	size_t k;

	if (set == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return NULL;
	}
	json_array_foreach(list, k, v) {
		char key[64], cb[80], path[96];
		const json_t *was;

		snprintf(path, sizeof(path), "%s.prefixes[%zu]", at->path, k);
		if (prefix_key(json_string_value(v), key, sizeof(key)) == NULL) {
			fwd_err_fail(e, FWD_R_INVALID_CHANGE, NULL, 0, path,
				     "prefixes[%zu] is not a prefix", k);
			break;
		}
		if ((was = json_object_get(set, key)) != NULL) {
			fwd_err_fail(
				e, FWD_R_INVALID_CHANGE, NULL, 0, path,
				"prefix %s is listed twice in this change (also prefixes[%lld])",
				canon_prefix(json_string_value(v), cb, sizeof(cb)),
				(long long)json_integer_value(was));
			break;
		}
		if (json_object_set_new(set, key, json_integer((json_int_t)k))) {
			fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
			break;
		}
	}
	if (k < json_array_size(list)) {
		json_decref(set);
		return NULL;
	}
	return set;
}

/* Each region's prefixes (one pass over the model's): for each prefix of
 * @set, the region that holds it (held[j], its index in the change), NULL
 * when none does. */
static void holders(json_t *m, json_t *set, const char **held)
{
	const char *rn;
	json_t *reg, *h;
	size_t j;

	json_object_foreach(json_object_get(m, FWD_KEY_NAME(DOC, REGIONS)), rn, reg) {
		json_array_foreach(json_object_get(reg, FWD_KEY_NAME(REGION, PREFIXES)), j, h) {
			char key[64];
			const json_t *k;

			if (prefix_key(json_string_value(h), key, sizeof(key)) &&
			    (k = json_object_get(set, key)) != NULL)
				held[json_integer_value(k)] = rn;
		}
	}
}

/* add_prefixes and remove_prefixes: a region's prefixes as a set. Adding
 * one the region holds adds nothing (a retried PATCH is a no-op), one
 * another region holds is refused; removing one the region lacks is
 * refused, as POST /v1/prefixes does (docs/api.md). Each refusal names
 * the prefix as changes[i].prefixes[j]. */
static int prefixes(json_t *m, json_t *c, const struct patch_op *op, const struct patch_at *at,
		    int add, struct fwd_err *e)
{
	const char *path = at->path;
	const char *region = json_string_value(FIELD(c, op, 0));
	json_t *reg = json_object_get(json_object_get(m, FWD_KEY_NAME(DOC, REGIONS)), region);
	json_t *list = FIELD(c, op, 1), *have, *v, *set;
	const char **held;
	char fp[96];
	size_t k, n;
	int rc = 0;

	if (reg == NULL)
		return fwd_err_fail(e, FWD_R_INVALID_CHANGE, NULL, 0,
				    field_path(at, op, 0, fp, sizeof(fp)), "no region '%.60s'",
				    region);
	if ((n = json_array_size(list)) == 0)
		return 0;
	if ((set = change_set(list, at, e)) == NULL)
		return -EINVAL;
	held = calloc(n, sizeof(*held));
	if (held == NULL) {
		json_decref(set);
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	}
	holders(m, set, held);
	have = json_object_get(reg, FWD_KEY_NAME(REGION, PREFIXES));
	json_array_foreach(list, k, v) {
		char cb[80], p[96];
		const char *cp = canon_prefix(json_string_value(v), cb, sizeof(cb));

		snprintf(p, sizeof(p), "%s.prefixes[%zu]", path, k);
		if (add && held[k] && strcmp(held[k], region) != 0)
			rc = fwd_err_fail(e, FWD_R_INVALID_CHANGE, NULL, 0, p,
					  "prefix %s is held by region '%s', not '%s': remove it "
					  "there in an earlier change to move it",
					  cp, held[k], region);
		else if (!add && held[k] == NULL)
			rc = fwd_err_fail(e, FWD_R_INVALID_CHANGE, NULL, 0, p,
					  "prefix %s is not in region '%s'", cp, region);
		else if (!add && strcmp(held[k], region) != 0)
			rc = fwd_err_fail(e, FWD_R_INVALID_CHANGE, NULL, 0, p,
					  "prefix %s is not in region '%s' but in '%s'", cp, region,
					  held[k]);
		if (rc)
			break;
	}
	if (rc == 0 && add) {
		size_t added_n = 0;

		json_array_foreach(list, k, v) {
			json_t *added;

			if (held[k]) /* the region's already: nothing to add */
				continue;
			added = json_string(json_string_value(v));
			json_array_append_new(have, added);
			note(at->src, added, at->change, (int32_t)k);
			added_n++;
		}
		if (added_n && sort_prefixes(have))
			rc = fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	} else if (rc == 0) {
		/* Every one is the region's: out they go, the array compacted
		 * in one pass. */
		size_t w = 0;

		for (size_t j = 0; j < json_array_size(have); j++) {
			char key[64];
			json_t *h = json_array_get(have, j);

			if (prefix_key(json_string_value(h), key, sizeof(key)) &&
			    json_object_get(set, key))
				continue;
			if (w != j)
				json_array_set(have, w, h);
			w++;
		}
		while (json_array_size(have) > w)
			json_array_remove(have, json_array_size(have) - 1);
	}
	free(held);
	json_decref(set);
	return rc;
}

static int add_prefixes(json_t *m, json_t *c, const struct patch_op *op, const struct patch_at *at,
			struct fwd_err *e)
{
	return prefixes(m, c, op, at, 1, e);
}

static int remove_prefixes(json_t *m, json_t *c, const struct patch_op *op,
			   const struct patch_at *at, struct fwd_err *e)
{
	return prefixes(m, c, op, at, 0, e);
}

/* The link a change names, or NULL with @e: a name that cannot be a link's
 * is a bad request, a name the table lacks an invalid change; both name it. */
static json_t *named_link(json_t *m, json_t *c, const struct patch_op *op, int field,
			  const struct patch_at *at, struct fwd_err *e)
{
	const char *l = json_string_value(FIELD(c, op, field));
	char path[96];
	json_t *lk;

	field_path(at, op, field, path, sizeof(path));
	if (fwd_name_check(l)) {
		char shown[256];

		fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, path,
			     "'%s' is not a link name (1..%d of A-Z a-z 0-9 _ - .)",
			     fwd_name_shown(l, shown, sizeof(shown)), FWD_NAME_MAX - 1);
		return NULL;
	}
	lk = json_object_get(json_object_get(m, FWD_KEY_NAME(DOC, LINKS)), l);
	if (lk == NULL)
		fwd_err_fail(e, FWD_R_INVALID_CHANGE, NULL, 0, path, "no link '%s' in the table",
			     l);
	return lk;
}

/* Link @l's weight in group @g set to @w, or in every group it is a member
 * of when @g is NULL (none: an invalid change). */
static int set_weight(json_t *m, json_t *c, const struct patch_op *op, const struct patch_at *at,
		      struct fwd_err *e)
{
	const char *path = at->path;
	const char *g = json_string_value(FIELD(c, op, 0));
	const char *l = json_string_value(FIELD(c, op, 1));
	json_t *groups = json_object_get(m, FWD_KEY_NAME(DOC, LINK_GROUPS)), *grp;
	json_t *w = FIELD(c, op, 2);
	const char *gk;
	char fp[96];
	int n = 0;

	if (named_link(m, c, op, 1, at, e) == NULL)
		return -EINVAL;
	if (g && (grp = json_object_get(groups, g)) == NULL)
		return fwd_err_fail(e, FWD_R_INVALID_CHANGE, NULL, 0,
				    field_path(at, op, 0, fp, sizeof(fp)),
				    "no link group '%.60s' in the table", g);
	json_object_foreach(groups, gk, grp) {
		json_t *mem = json_object_get(grp, FWD_KEY_NAME(GROUP, MEMBERS));

		if ((g && strcmp(gk, g)) || !json_object_get(mem, l))
			continue;
		json_object_set(mem, l, w);
		n++;
	}
	if (n == 0)
		return fwd_err_fail(e, FWD_R_INVALID_CHANGE, NULL, 0, path,
				    g ? "link '%s' is not a member of link group '%s'"
				      : "link '%s' is a member of no link group",
				    l, g);
	return 0;
}

static int set_link_state(json_t *m, json_t *c, const struct patch_op *op,
			  const struct patch_at *at, struct fwd_err *e)
{
	json_t *lk = named_link(m, c, op, 0, at, e);
	const char *s = json_string_value(FIELD(c, op, 1));
	char path[96];

	if (lk == NULL)
		return -EINVAL;
	field_path(at, op, 1, path, sizeof(path));
	if (fwd_schema_lookup(FWD_SC_LINK_STATE, s) < 0) {
		unsigned n;
		const char *const *w = fwd_schema_keys(FWD_SC_LINK_STATE, &n);
		char words[96] = "";
		size_t off = 0;

		for (unsigned i = 0; i < n && off < sizeof(words); i++)
			off += (size_t)snprintf(words + off, sizeof(words) - off, "%s'%s'",
						i == 0	    ? ""
						: i + 1 < n ? ", "
							    : " or ",
						w[i]);
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, path,
				    "'state' must be %s, not '%.40s'", words, s);
	}
	json_object_set_new(lk, FWD_KEY_NAME(LINK, STATE), json_string(s));
	return 0;
}

static int add_policy(json_t *m, json_t *c, const struct patch_op *op, const struct patch_at *at,
		      struct fwd_err *e)
{
	json_t *p = FIELD(c, op, 0);

	(void)e; /* an object: op_of() checked it */
	json_array_append(json_object_get(m, FWD_KEY_NAME(DOC, POLICIES)), p);
	note(at->src, p, at->change, -1);
	return 0;
}

static int remove_policy(json_t *m, json_t *c, const struct patch_op *op, const struct patch_at *at,
			 struct fwd_err *e)
{
	const char *path = at->path;
	const char *rg = json_string_value(FIELD(c, op, 0));
	const char *sv = json_string_value(FIELD(c, op, 1));
	json_t *pols = json_object_get(m, FWD_KEY_NAME(DOC, POLICIES)), *p;
	size_t j;

	json_array_foreach(pols, j, p) {
		/* Policies added earlier in this request come from the client and
		 * may lack either field: compare only real strings. */
		const char *pr =
			json_string_value(json_object_get(p, FWD_KEY_NAME(POLICY, REGION)));
		const char *ps =
			json_string_value(json_object_get(p, FWD_KEY_NAME(POLICY, SERVICE)));

		if (pr && ps && !strcmp(pr, rg) && !strcmp(ps, sv)) {
			json_array_remove(pols, j);
			return 0;
		}
	}
	return fwd_err_fail(e, FWD_R_INVALID_CHANGE, NULL, 0, path,
			    "no policy for that region and service");
}

/* Every op once: its name, the fields a change of it may carry (a field
 * outside this list is refused, never silently ignored) and what it does.
 * set_weight without a group sets the link's weight in every group it is a
 * member of.
 * These are the API's words for a change; the model's own names (what a
 * change edits) come from fwd_schema.def. */
#define REGION                                                                                     \
	{                                                                                          \
		"region", PF_NAME, 0, "a region's name", 0, 0                                      \
	}
#define PREFIXES                                                                                   \
	{                                                                                          \
		"prefixes", PF_LIST, 0, "a list of prefix strings", 0, 0                           \
	}
#define LINK                                                                                       \
	{                                                                                          \
		"link", PF_NAME, 0, "a link's name", 0, 0                                          \
	}
static const struct patch_op ops[] = {
	{"add_prefixes", {REGION, PREFIXES}, add_prefixes},
	{"remove_prefixes", {REGION, PREFIXES}, remove_prefixes},
	{"set_weight",
	 {{"group", PF_NAME, 1, "a link group's name", 0, 0},
	  LINK,
	  {"weight", PF_INT, 0, "0..1000000", 0, 1000000}},
	 set_weight},
	{"set_link_state",
	 {LINK, {"state", PF_NAME, 0, "'up', 'down' or 'drain'", 0, 0}},
	 set_link_state},
	{"add_policy", {{"policy", PF_OBJECT, 0, "an object", 0, 0}}, add_policy},
	{"remove_policy",
	 {REGION, {"service", PF_NAME, 0, "a service's name", 0, 0}},
	 remove_policy},
};
#undef REGION
#undef PREFIXES
#undef LINK

#define N_OPS (sizeof(ops) / sizeof(ops[0]))

static int unknown_op(const char *op, const char *path, struct fwd_err *e)
{
	char names[200] = "";
	size_t n = 0;

	for (size_t i = 0; i < N_OPS && n < sizeof(names); i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "",
				      ops[i].name);
	return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, path, "unknown op '%.40s' (%s)", op,
			    names);
}

/* Change @c's op, checked as a request's shape (400): an object with a
 * known 'op' and only that op's fields. NULL with @e. */
static const struct patch_op *op_of(json_t *c, const char *path, struct fwd_err *e)
{
	const char *op = json_string_value(json_object_get(c, "op"));
	const struct patch_op *d = NULL;
	const char *k;
	json_t *v;

	if (!json_is_object(c) || op == NULL) {
		fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, path, "each change needs an 'op'");
		return NULL;
	}
	for (size_t j = 0; j < N_OPS && d == NULL; j++)
		if (strcmp(ops[j].name, op) == 0)
			d = &ops[j];
	if (d == NULL) {
		unknown_op(op, path, e);
		return NULL;
	}
	json_object_foreach(c, k, v) {
		int known = strcmp(k, "op") == 0;

		for (int f = 0; !known && f < 4 && d->fields[f].name; f++)
			known = strcmp(k, d->fields[f].name) == 0;
		if (!known) {
			fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, path,
				     "unknown field '%.60s' for op '%s'", k, d->name);
			return NULL;
		}
	}
	for (int f = 0; f < 4 && d->fields[f].name; f++) {
		const struct patch_field *pf = &d->fields[f];
		json_t *fv = json_object_get(c, pf->name);
		char fp[96];
		int ok;

		snprintf(fp, sizeof(fp), "%s.%s", path, pf->name);
		if (fv == NULL) {
			if (pf->optional)
				continue;
			fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, fp, "'%s' (%s) is required",
				     pf->name, pf->what);
			return NULL;
		}
		ok = pf->kind == PF_NAME   ? json_is_string(fv)
		     : pf->kind == PF_LIST ? json_is_array(fv)
		     : pf->kind == PF_OBJECT
			     ? json_is_object(fv)
			     : json_is_integer(fv) && json_integer_value(fv) >= pf->min &&
				       json_integer_value(fv) <= pf->max;
		/* A document reads "5" as 5 (its YAML or JSON scalars are text);
		 * a PATCH is JSON the caller's code wrote, where a quoted number
		 * is a bug there worth naming, not guessing past. */
		if (!ok && pf->kind == PF_INT && json_is_string(fv)) {
			fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, fp,
				     "'%s' must be an integer %s: a JSON number, not the string "
				     "\"%.40s\"",
				     pf->name, pf->what, json_string_value(fv));
			return NULL;
		}
		if (!ok) {
			fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, fp,
				     pf->kind == PF_NAME  ? "'%s' must be a string (%s)"
				     : pf->kind == PF_INT ? "'%s' must be an integer %s"
							  : "'%s' must be %s",
				     pf->name, pf->what);
			return NULL;
		}
	}
	return d;
}

int ctl_patch_check(json_t *changes, struct fwd_err *e)
{
	json_t *c;
	size_t i;

	json_array_foreach(changes, i, c) {
		char path[64];

		snprintf(path, sizeof(path), "changes[%zu]", i);
		if (op_of(c, path, e) == NULL)
			return -EINVAL;
	}
	return 0;
}

static int patch_one(json_t *m, json_t *c, size_t i, struct ctl_patch_src *src, struct fwd_err *e)
{
	const struct patch_op *d;
	char path[64];
	const struct patch_at at = {path, (int32_t)i, src};

	snprintf(path, sizeof(path), "changes[%zu]", i);
	if ((d = op_of(c, path, e)) == NULL)
		return -EINVAL;
	return d->apply(m, c, d, &at, e);
}

int ctl_patch_apply(json_t *model, json_t *changes, struct ctl_patch_src *src, struct fwd_err *e)
{
	json_t *pols = json_object_get(model, FWD_KEY_NAME(DOC, POLICIES)), *c;
	size_t i;
	int rc;

	/* The table's own policies, by their index in it: a removal shifts
	 * the ones after it in the model. */
	json_array_foreach(pols, i, c)
		note(src, c, -1, (int32_t)i);
	json_array_foreach(changes, i, c)
		if ((rc = patch_one(model, c, i, src, e)))
			return rc;
	return 0;
}

/* The newest note of @node: a removed policy's node is freed, and a node
 * added after it may be given its address, but is always noted later. */
static const struct ctl_patch_origin *origin_of(const struct ctl_patch_src *src, const json_t *node)
{
	for (size_t i = src->n; node != NULL && i-- > 0;)
		if (src->o[i].node == node)
			return &src->o[i];
	return NULL;
}

/* "<head>[<index>]<rest>" at @path: the index and the rest, or -1. */
static long index_after(const char *path, const char *head, const char **rest)
{
	size_t n = strlen(head);
	char *end;
	long k;

	if (strncmp(path, head, n) != 0 || path[n] != '[' || path[n + 1] < '0' || path[n + 1] > '9')
		return -1;
	k = strtol(path + n + 1, &end, 10);
	if (*end != ']' || (end[1] != '\0' && end[1] != '.' && end[1] != '['))
		return -1;
	*rest = end + 1;
	return k;
}

void ctl_patch_name_source(const struct ctl_patch_src *src, const json_t *model, struct fwd_err *e)
{
	const struct ctl_patch_origin *o = NULL;
	const char *rest = "";
	char out[sizeof(e->path)];
	long k;

	if (e == NULL)
		return;
	e->file[0] = '\0';
	e->line = 0; /* a line of the generated document, which no client sees */
	if (src == NULL)
		return;
	if ((k = index_after(e->path, FWD_KEY_NAME(DOC, POLICIES), &rest)) >= 0) {
		o = origin_of(src,
			      json_array_get(json_object_get(model, FWD_KEY_NAME(DOC, POLICIES)),
					     (size_t)k));
		if (o != NULL && o->change >= 0)
			snprintf(out, sizeof(out), "changes[%d].policy%s", o->change, rest);
		else if (o != NULL)
			snprintf(out, sizeof(out), "%s[%d]%s", FWD_KEY_NAME(DOC, POLICIES), o->item,
				 rest);
		else
			return;
	} else {
		/* regions.NAME.prefixes[k]: NAME may hold dots, so the last
		 * ".prefixes[" is the one. */
		char head[sizeof(e->path)];
		const char *regions = FWD_KEY_NAME(DOC, REGIONS), *pfx = NULL, *q;
		size_t rn = strlen(regions);
		json_t *reg;

		for (q = strstr(e->path, ".prefixes["); q != NULL; q = strstr(q + 1, ".prefixes["))
			pfx = q;
		if (strncmp(e->path, regions, rn) != 0 || e->path[rn] != '.' || pfx == NULL ||
		    pfx <= e->path + rn + 1)
			return;
		snprintf(head, sizeof(head), "%.*s", (int)(pfx - (e->path + rn + 1)),
			 e->path + rn + 1);
		reg = json_object_get(json_object_get(model, regions), head);
		if ((k = index_after(pfx + 1, FWD_KEY_NAME(REGION, PREFIXES), &rest)) < 0 ||
		    reg == NULL)
			return;
		o = origin_of(src,
			      json_array_get(json_object_get(reg, FWD_KEY_NAME(REGION, PREFIXES)),
					     (size_t)k));
		if (o == NULL || o->change < 0)
			return;
		snprintf(out, sizeof(out), "changes[%d].prefixes[%d]%s", o->change, o->item, rest);
	}
	snprintf(e->path, sizeof(e->path), "%s", out);
}

void ctl_patch_src_free(struct ctl_patch_src *src)
{
	if (src == NULL)
		return;
	free(src->o);
	src->o = NULL;
	src->n = src->cap = 0;
}
