/*
 * Fuzz target: the table document parser and validator (YAML and JSON), and
 * for every accepted table the classifier build, the residency check and the
 * API model. Property: the model of a valid table is itself a valid document
 * describing the same table (model -> document -> model is a fixed point);
 * PATCH relies on it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_model.h"
#include "fwd_class.h"
#include "fwd_residency.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct fwd_err err;
	struct fwd_table *t, *t2;
	struct fwd_class *c;
	json_t *m, *m2;
	char *doc;

	if (len > 65536)
		return 0;
	t = fwd_table_parse((const char *)data, len, "fuzz", -1, &err);
	if (t == NULL)
		return 0;
	c = fwd_class_build(t);
	if (c == NULL)
		abort();
	fwd_residency_check(t, c, &err);
	fwd_class_free(c);
	m = ctl_model(t);
	doc = json_dumps(m, JSON_COMPACT);
	t2 = fwd_table_parse(doc, strlen(doc), "model", 1, &err);
	if (t2 == NULL)
		abort(); /* a valid table's model must validate */
	m2 = ctl_model(t2);
	if (!json_equal(m, m2))
		abort();
	json_decref(m);
	json_decref(m2);
	free(doc);
	fwd_table_free(t2);
	fwd_table_free(t);
	return 0;
}
