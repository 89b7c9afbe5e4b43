#include "ctl_filter.h"
#include "fwd_log.h"

#include "fwd_names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fwd_filter.h"

struct ctl_filter {
	struct ctl_filter_conf conf;
	struct ctl_bpf *bpf;
	int adopted;
	char mode[CTL_FILTER_MAX_IFACES][96];
};

static const char *const counter_names[FWD_FLT_CNT_MAX] = {
#define X(id, name, help) [FWD_FLT_CNT_##id] = name,
	FWD_FLT_COUNTERS(X)
#undef X
};

struct ctl_filter *ctl_filter_start(const struct ctl_filter_conf *conf, struct fwd_err *err)
{
	struct ctl_filter *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->conf = *conf;
	{
		/* The filter DPDK's net_af_xdp attached (xdp_prog=) comes first: it
		 * owns the XSKMAP, and regiond only manages its rules. Otherwise our
		 * own pinned filter, or a new one. */
		char pin[512], mode[32];
		struct fwd_err ignore = {0};

		snprintf(pin, sizeof(pin), "%s/prog", conf->pin_dir);
		if (conf->nifaces && access(pin, F_OK) != 0 &&
		    ctl_bpf_query(conf->ifaces[0], mode, sizeof(mode)) &&
		    (f->bpf = ctl_bpf_open_attached(conf->ifaces[0], &ignore)) != NULL)
			f->adopted = 2;
	}
	if (f->bpf == NULL)
		f->bpf = ctl_bpf_open_pinned(&conf->sizes, conf->pin_dir, &f->adopted, err);
	if (f->bpf == NULL) {
		free(f);
		return NULL;
	}
	for (unsigned i = 0; i < conf->nifaces; i++) {
		if (ctl_bpf_attach(f->bpf, conf->ifaces[i], conf->mode, f->mode[i],
				   sizeof(f->mode[i]), err)) {
			ctl_filter_free(f);
			return NULL;
		}
		fwd_log(FWD_LOG_NOTICE, "XDP filter %s %s in %s mode (program id %u)",
			f->adopted == 2 ? "adopted from the fast path's AF_XDP port on"
			: f->adopted	? "adopted on"
					: "attached to",
			conf->ifaces[i], f->mode[i], ctl_bpf_prog_id(f->bpf));
	}
	return f;
}

int ctl_filter_apply(void *arg, const struct fwd_table *t, uint64_t gen, struct fwd_err *e)
{
	struct ctl_filter *f = arg;
	const struct fwd_filters *fl = &t->filters;
	struct fwd_err fe = {0};
	struct fwd_flt_image *img = fwd_flt_compile_table(fl, &fe);
	int rc;

	if (img == NULL) {
		fwd_err_fail(e, FWD_R_INVALID_FILTERS, NULL, 0, fe.path, "%s", fe.reason);
		return -EINVAL;
	}
	rc = ctl_bpf_apply(f->bpf, img, fl->present ? fl->default_action : FWD_FLT_PASS,
			   fl->present ? fl->non_ip_action : FWD_FLT_PASS,
			   fl->present ? fl->malformed_action : FWD_FLT_PASS, fl->redirect,
			   (uint32_t)gen, &fe);
	fwd_flt_image_free(img);
	if (rc)
		fwd_err_fail(e, FWD_R_FILTER_REFUSED, NULL, 0, FWD_KEY_NAME(DOC, FILTERS), "%s",
			     fe.reason);
	return rc;
}

uint32_t ctl_filter_generation(const struct ctl_filter *f)
{
	return ctl_bpf_generation(f->bpf);
}

json_t *ctl_filter_status(struct ctl_filter *f, const struct fwd_table *t)
{
	json_t *ifs = json_array(), *cnt = json_object(), *rules = json_object();
	uint64_t c[FWD_FLT_CNT_MAX];

	for (unsigned i = 0; i < f->conf.nifaces; i++) {
		char mode[32];
		uint32_t id = ctl_bpf_query(f->conf.ifaces[i], mode, sizeof(mode));

		json_array_append_new(ifs, json_pack("{s:s, s:s, s:s, s:I, s:b}", "interface",
						     f->conf.ifaces[i], "mode", mode, "attached_as",
						     f->mode[i], "program_id", (json_int_t)id,
						     "ours", id == ctl_bpf_prog_id(f->bpf)));
	}
	ctl_bpf_counters(f->bpf, c);
	for (int i = 0; i < FWD_FLT_CNT_MAX; i++)
		json_object_set_new(cnt, counter_names[i], json_integer((json_int_t)c[i]));
	for (uint16_t r = 0; t && r < t->filters.nrules; r++) {
		struct fwd_flt_rule_stats st;

		ctl_bpf_rule_stats(f->bpf, r, &st);
		json_object_set_new(rules, t->filters.rules[r].name,
				    json_pack("{s:s, s:I, s:I}", "action",
					      /* enum fwd_flt_action indexes the .def's words */
					      fwd_schema_names[FWD_SCHEMA_BEGIN_FILTER_ACTION +
							       t->filters.rules[r].action],
					      "packets", (json_int_t)st.packets, "bytes",
					      (json_int_t)st.bytes));
	}
	return json_pack("{s:I, s:I, s:b, s:s, s:s, s:o, s:o, s:o}", "program_id",
			 (json_int_t)ctl_bpf_prog_id(f->bpf), "generation",
			 (json_int_t)ctl_bpf_generation(f->bpf), "adopted", f->adopted != 0,
			 "owner", f->adopted == 2 ? "net_af_xdp" : "regiond", "pin_dir",
			 f->conf.pin_dir, "interfaces", ifs, "counters", cnt, "rules", rules);
}

int ctl_filter_detach(struct ctl_filter *f)
{
	int rc = 0;

	for (unsigned i = 0; i < f->conf.nifaces; i++)
		if (ctl_bpf_detach(f->bpf, f->conf.ifaces[i]) && rc == 0)
			rc = -ENOENT;
	if (f->adopted != 2)
		ctl_bpf_unpin(f->conf.pin_dir);
	return rc;
}

void ctl_filter_free(struct ctl_filter *f)
{
	if (f == NULL)
		return;
	ctl_bpf_free(f->bpf);
	free(f);
}

static void filter_sync(void *arg, const struct fwd_table *t, uint64_t gen)
{
	struct fwd_err e;

	/* Behind the current generation (a refused apply, a restart): retry. */
	if (ctl_filter_generation(arg) != gen)
		ctl_filter_apply(arg, t, gen, &e);
}

static json_t *filter_status(void *arg, const struct fwd_table *t)
{
	return ctl_filter_status(arg, t);
}

static int filter_detach(void *arg)
{
	return ctl_filter_detach(arg);
}

struct ctl_ext ctl_filter_ext(struct ctl_filter *f)
{
	return (struct ctl_ext){.name = "filters",
				.arg = f,
				.applied = ctl_filter_apply,
				.sync = filter_sync,
				.status = filter_status,
				.detach = filter_detach};
}
