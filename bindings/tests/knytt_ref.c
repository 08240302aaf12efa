/*
 * knytt_ref -- the C API's answers, for the binding tests to compare with.
 *
 *   knytt_ref METRIC QUANT DIM BASE QUERIES K EF [INDEX_OUT]
 *
 * Builds an HNSW index (library defaults, seed 42) from BASE (raw
 * little-endian float32 rows of DIM values, label = row number) by
 * single adds in row order -- the order and seed make the graph
 * reproducible, so a binding that adds the same rows the same way must
 * get the very same answers -- then searches every row of QUERIES and
 * prints one line per query: K labels, then K distances as C99 hex
 * floats (exact).  With INDEX_OUT the index is also saved there, so a
 * binding can load the C-built file and search it.  For the int8 modes
 * the value ranges are first learned from the whole base
 * (knytt_index_train_quant).
 *
 * METRIC is l2, ip or cosine; QUANT none, int8, int8_only or f16.  Like the
 * bindings, this program uses only include/knytt.h.
 */
#include <knytt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *read_rows(const char *path, uint32_t dim, size_t *rows)
{
	FILE *f = fopen(path, "rb");
	long size;
	float *v;

	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET)) {
		perror(path);
		exit(2);
	}
	*rows = (size_t)size / (sizeof(float) * dim);
	v = malloc(*rows * dim * sizeof(float) + 1);
	if (!v || fread(v, sizeof(float) * dim, *rows, f) != *rows) {
		fprintf(stderr, "%s: short read\n", path);
		exit(2);
	}
	fclose(f);
	return v;
}

static int pick(const char *s, const char *const *names, const int *vals)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i]))
			return vals[i];
	fprintf(stderr, "unknown choice '%s'\n", s);
	exit(2);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s\n", what, knytt_errname(rc),
		knytt_errmsg());
	exit(1);
}

static void answer(const knytt_index *ix, const float *q, uint32_t dim,
		   size_t k, unsigned ef)
{
	uint64_t *labels = malloc(k * sizeof(*labels));
	float *dists = malloc(k * sizeof(*dists));
	int rc;

	if (!labels || !dists)
		die("malloc", KNYTT_ENOMEM);
	rc = knytt_index_search(ix, q, dim, k, ef, labels, dists);
	if (rc < 0)
		die("search", rc);
	for (size_t j = 0; j < k; j++)
		printf("%s%llu", j ? " " : "", (unsigned long long)labels[j]);
	for (size_t j = 0; j < k; j++)
		printf(" %a", (double)dists[j]);
	printf("\n");
	free(labels);
	free(dists);
}

int main(int argc, char **argv)
{
	static const char *const metrics[] = {"l2", "ip", "cosine", NULL};
	static const int metric_vals[] = {KNYTT_METRIC_L2, KNYTT_METRIC_IP,
					  KNYTT_METRIC_COSINE};
	static const char *const quants[] = {"none", "int8", "int8_only",
					     "f16", NULL};
	static const int quant_vals[] = {KNYTT_QUANT_NONE, KNYTT_QUANT_INT8,
					 KNYTT_QUANT_INT8_ONLY,
					 KNYTT_QUANT_F16};
	knytt_index *ix;
	uint32_t dim;
	size_t nb, nq, k;
	unsigned ef;
	float *base, *queries;
	int rc;

	if (argc != 8 && argc != 9) {
		fprintf(stderr, "usage: knytt_ref METRIC QUANT DIM BASE QUERIES "
				"K EF [INDEX_OUT]\n");
		return 2;
	}
	dim = (uint32_t)strtoul(argv[3], NULL, 10);
	k = strtoul(argv[6], NULL, 10);
	ef = (unsigned)strtoul(argv[7], NULL, 10);
	if (!dim || !k)
		return 2;
	base = read_rows(argv[4], dim, &nb);
	queries = read_rows(argv[5], dim, &nq);
	if ((rc = knytt_index_create(&ix)) ||
	    (rc = knytt_index_set_metric(ix, pick(argv[1], metrics,
						  metric_vals))) ||
	    (rc = knytt_index_set_quant(ix, pick(argv[2], quants,
						 quant_vals))) ||
	    (rc = knytt_index_open(ix, dim)))
		die("index", rc);
	/* int8: ranges from the whole base, as the tests do through the
	 * bindings (else the first add alone would set them). */
	if (strcmp(argv[2], "none") && strcmp(argv[2], "f16") &&
	    (rc = knytt_index_train_quant(ix, nb, base, dim)))
		die("train_quant", rc);
	for (size_t i = 0; i < nb; i++)
		if ((rc = knytt_index_add(ix, i, base + i * dim, dim)))
			die("add", rc);
	for (size_t i = 0; i < nq; i++)
		answer(ix, queries + i * dim, dim, k, ef);
	if (argc == 9 && (rc = knytt_index_save(ix, argv[8])))
		die("save", rc);
	knytt_index_close(ix);
	free(base);
	free(queries);
	return 0;
}
