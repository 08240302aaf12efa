/*
 * seeds.c -- writes the seed corpora of the fuzz targets:
 *   make fuzz-seeds   (build/fuzz-seeds tests/fuzz/corpus)
 * Small valid inputs and near-valid variants of each format, made with
 * the library itself where the format is binary (models, index, engine
 * blob), so they follow the writers as formats change.  Each file is
 * the target's input: the control byte (see each target) and the bytes.
 * Deterministic: the same library writes the same seeds.
 */
#include "fuzz.h"

#include <errno.h>
#include <sys/stat.h>

static const char *root;
static int failed;

static void put(const char *target, const char *name, unsigned ctl,
		const void *p, size_t n)
{
	char dir[512], path[600];
	snprintf(dir, sizeof dir, "%s/%s", root, target);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		perror(dir);
		failed = 1;
		return;
	}
	snprintf(path, sizeof path, "%s/%s", dir, name);
	unsigned char *b = malloc(n + 1);
	if (!b) {
		failed = 1;
		return;
	}
	size_t o = 0;
	if (ctl <= 0xff)
		b[o++] = (unsigned char)ctl;
	memcpy(b + o, p, n);
	if (fuzz_write(path, b, o + n) != 0) {
		perror(path);
		failed = 1;
	}
	free(b);
}

#define NO_CTL 0x100u

static void put_text(const char *target, const char *name, unsigned ctl,
		     const char *s)
{
	put(target, name, ctl, s, strlen(s));
}

/* ---- text formats: byte 0 = kind (0 items, 1 users, 2 interactions),
 *      | 4 for batches of 2 rows ---- */

static void seeds_csv(void)
{
	const char *t = "fuzz_import_csv";
	put_text(t, "items", 0,
		 "id,title,description,category,price,currency,in_stock,"
		 "quality,image_url,attributes\n"
		 "a,Alpha,\"quoted, with comma\",shoes/running,10.5,EUR,1,0.9,"
		 "http://x/a.png,\"{\"\"color\"\":\"\"red\"\"}\"\n"
		 "b,Beta,,shoes,,,0,,,\n"
		 "c,\"multi\nline\",,a/b/c,1e3,usd,true,1,,{}\n");
	put_text(t, "items-bad", 4,
		 "title,id,price\nX,x1,-1\nY,,2\nZ,z1,abc\n\"open,z2,1\n");
	put_text(t, "users", 1,
		 "id,attributes\nu1,\"{\"\"age\"\":30}\"\nu2,\nu3,[1]\n");
	put_text(t, "interactions", 2,
		 "user,item,type,weight,value,ts_ms,event_id\n"
		 "u1,a,view,,,1700000000000,e1\n"
		 "u2,b,purchase,2.5,,1700000000001,e2\n"
		 "u1,c,rating,,4.5,1700000000002,\n"
		 "u1,zz,click,,,,\n");
	put_text(t, "interactions-batch", 6,
		 "item,user,type\na,u1,view\nb,u1,click\nc,u2,cart\n"
		 "a,u2,favorite\nb,u2,bogus\n");
}

static void seeds_jsonl(void)
{
	const char *t = "fuzz_import_jsonl";
	put_text(t, "items", 0,
		 "{\"id\":\"a\",\"title\":\"Alpha\",\"price\":10.5,"
		 "\"currency\":\"EUR\",\"in_stock\":true,\"category\":"
		 "\"shoes/running\",\"attributes\":{\"color\":\"red\","
		 "\"sizes\":[40,41]}}\n"
		 "{\"id\":\"b\",\"title\":\"\\u00e9t\\u00e9\",\"quality\":0.5}\n"
		 "[1,2]\n{\"id\":\"c\",\"title\":null}\n{\"id\":\n");
	put_text(t, "users", 1,
		 "{\"id\":\"u1\",\"attributes\":{\"age\":30}}\n"
		 "{\"id\":\"u2\"}\n{\"id\":3}\n");
	put_text(t, "interactions", 2,
		 "{\"user\":\"u1\",\"item\":\"a\",\"type\":\"view\","
		 "\"ts_ms\":1700000000000,\"event_id\":\"e1\"}\n"
		 "{\"user\":\"u2\",\"item\":\"b\",\"type\":\"rating\","
		 "\"value\":4,\"weight\":1.5}\n"
		 "{\"user\":\"u1\",\"item\":\"nope\",\"type\":\"view\"}\n");
	put_text(t, "interactions-batch", 6,
		 "{\"user\":\"u1\",\"item\":\"a\",\"type\":\"click\"}\n"
		 "{\"user\":\"u1\",\"item\":\"b\",\"type\":\"cart\"}\n"
		 "{\"user\":\"u2\",\"item\":\"c\",\"type\":\"purchase\"}\n");
}

static void seeds_movielens(void)
{
	const char *t = "fuzz_import_movielens";
	put_text(t, "u.item", 0,
		 "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/"
		 "title-exact?Toy%20Story%20(1995)|0|0|0|1|1|1|0|0|0|0|0|0|0|"
		 "0|0|0|0|0|0\n"
		 "2|Caf\xe9 (1996)|01-Jan-1996||x|0|1|0|0|0|0|0|0|0|0|0|0|0|0|"
		 "0|0|0|0|0\n");
	put_text(t, "movies.dat", 0,
		 "1::Toy Story (1995)::Animation|Children's|Comedy\n"
		 "2::Jumanji (1995)::Adventure|Children's|Fantasy\n"
		 "3::Grumpier Old Men (1995)::Comedy|Romance\n");
	put_text(t, "u.user", 1,
		 "1|24|M|technician|85711\n2|53|F|other|94043\n");
	put_text(t, "users.dat", 1, "1::F::1::10::48067\n2::M::56::16::70072\n");
	put_text(t, "u.data", 2,
		 "1\t1\t5\t874965758\n2\t2\t3\t876893171\n1\t3\t4\t878542960\n");
	put_text(t, "ratings.dat", 6,
		 "1::1::5::978300760\n1::2::3::978302109\n2::3::4::978301968\n");
}

/* ---- embedder answers: byte 0 = inputs - 1 (| 4: dimension 3) ---- */

static void seeds_embedder(void)
{
	const char *t = "fuzz_embedder_answer";
	put_text(t, "one", 0,
		 "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","
		 "\"index\":0,\"embedding\":[0.1,-0.2,3e-3]}],\"model\":\"m\","
		 "\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}");
	put_text(t, "two-reordered", 1 | 4,
		 "{\"data\":[{\"index\":1,\"embedding\":[1,2,3]},"
		 "{\"index\":0,\"embedding\":[4,5,6]}]}");
	put_text(t, "no-index", 2,
		 "{\"data\":[{\"embedding\":[1,0]},{\"embedding\":[0,1]},"
		 "{\"embedding\":[1,1]}]}");
	put_text(t, "error", 0,
		 "{\"error\":{\"message\":\"Incorrect API key provided: "
		 "sk-fuzz\",\"type\":\"invalid_request_error\"}}");
	put_text(t, "base64", 0,
		 "{\"data\":[{\"index\":0,\"embedding\":\"AAAA\"}]}");
	put_text(t, "html", 0, "<html><body>502 Bad Gateway</body></html>");
}

/* ---- attribute filters: expression, NUL, rows control, JSON lines ---- */

static void seed_where(const char *name, const char *expr, unsigned rep,
		       const char *json)
{
	char buf[2048];
	size_t n = strlen(expr), m = strlen(json);
	if (n + m + 2 > sizeof buf) {
		failed = 1;
		return;
	}
	memcpy(buf, expr, n);
	buf[n] = '\0';
	buf[n + 1] = (char)rep;
	memcpy(buf + n + 2, json, m);
	put("fuzz_where", name, 0x100, buf, n + 2 + m);
}

static void seeds_where(void)
{
	static const char *items =
		"{\"brand\":\"acme\",\"size\":\"m\",\"tags\":[\"sale\",\"new\"],"
		"\"weight\":1.5}\n"
		"{\"brand\":\"zenith\",\"size\":\"l\",\"weight\":\"3\",\"on\":true}\n"
		"{}\n"
		"{\"brand\":\"acme\",\"size\":10,\"tags\":[1,2.50,null,{}]}\n"
		"not json\n";
	seed_where("eq", "brand=acme", 0, items);
	seed_where("and-in-range",
		   "brand = acme and size in (m, l) and weight < 2", 0, items);
	seed_where("or-not", "not (tags = sale or on = true) or size != m",
		   2, items);
	seed_where("dense", "brand in (acme, 'zenith') and not size = 10",
		   200, items);
	seed_where("quoted", "\"odd name\" not in ('a\\'b', \"c\") and "
		   "weight >= -1e3", 1, items);
	seed_where("numbers", "size = 10.0 or tags in (2.5, 1) or weight > 2",
		   0, items);
	seed_where("bad", "brand = acme and (size in (m,", 0, items);
	seed_where("deep", "((((((a=1))))))", 0, "{\"a\":1}");
}

/* ---- models: byte 0 = 1 (repair the CRC) ---- */


/* An engine blob's header (train.c): magic, @p version, @p kind, 4 items
 * of dimension 4, the model's length @p ml, and store ids 1..4 (the
 * items of fuzz_engine_model's store) from byte @p ids on. */
static void eng_head(unsigned char *b, uint32_t version, uint32_t kind,
		     size_t ml, size_t ids)
{
	memcpy(b, "KNYTTENG", 8);
	knytt__put_u32(b + 8, version);
	knytt__put_u32(b + 12, kind);
	knytt__put_u32(b + 16, 4);
	knytt__put_u32(b + 20, 4);
	knytt__put_u64(b + 24, ml);
	for (unsigned i = 0; i < 4; i++)
		knytt__put_u64(b + ids + 8 * i, i + 1);
}
static void seeds_models(void)
{
	knytt_matrix *m;
	knytt_als *als;
	void *ab = NULL, *tb = NULL;
	size_t al = 0, tl = 0;
	if (knytt_matrix_create(&m) || knytt_als_create(&als)) {
		failed = 1;
		return;
	}
	static const uint32_t U[] = { 0, 0, 1, 1, 2, 2, 0 };
	static const uint32_t I[] = { 0, 1, 1, 2, 2, 3, 3 };
	for (size_t k = 0; k < 7; k++)
		knytt_matrix_add(m, U[k], I[k], 0, 1, (int64_t)k);
	if (knytt_matrix_build(m, 3, 4) || knytt_als_set_factors(als, 4) ||
	    knytt_als_set_iterations(als, 2) || knytt_als_set_threads(als, 1) ||
	    knytt_als_train(als, m) || knytt_als_save_buffer(als, &ab, &al)) {
		fprintf(stderr, "seeds: ALS: %s\n", knytt_errmsg());
		failed = 1;
	}
	knytt_als_close(als);
	knytt_lightgcn *g;
	void *gb = NULL;
	size_t gl = 0;
	if (knytt_lightgcn_create(&g) || knytt_lightgcn_set_dim(g, 4) ||
	    knytt_lightgcn_set_layers(g, 2) || knytt_lightgcn_set_epochs(g, 1) ||
	    knytt_lightgcn_set_threads(g, 1) || knytt_lightgcn_train(g, m) ||
	    knytt_lightgcn_save_buffer(g, &gb, &gl)) {
		fprintf(stderr, "seeds: LightGCN: %s\n", knytt_errmsg());
		failed = 1;
	}
	knytt_lightgcn_close(g);
	knytt_matrix_close(m);

	/* SASRec: three short sequences over the same four items */
	knytt_sasrec *sq;
	void *sb = NULL;
	size_t sl = 0;
	static const size_t SO[] = { 0, 3, 5, 7 };
	static const uint32_t SI[] = { 0, 1, 3, 1, 2, 2, 3 };
	if (knytt_sasrec_create(&sq) || knytt_sasrec_set_dim(sq, 4) ||
	    knytt_sasrec_set_blocks(sq, 1) || knytt_sasrec_set_max_len(sq, 3) ||
	    knytt_sasrec_set_epochs(sq, 1) || knytt_sasrec_set_threads(sq, 1) ||
	    knytt_sasrec_train(sq, 4, 3, SO, SI) ||
	    knytt_sasrec_save_buffer(sq, &sb, &sl)) {
		fprintf(stderr, "seeds: SASRec: %s\n", knytt_errmsg());
		failed = 1;
	}
	knytt_sasrec_close(sq);

	knytt_twotower *tt;
	static const knytt_twotower_item F[4] = {
		{ "red shoes", "light", "shoes/running", 50 },
		{ "blue shoes", NULL, "shoes", 70 },
		{ "hat", "wool hat", "hats|sale", -1 },
		{ NULL, NULL, NULL, 5 },
	};
	if (knytt_twotower_create(&tt) || knytt_twotower_set_dim(tt, 4) ||
	    knytt_twotower_set_buckets(tt, 16) ||
	    knytt_twotower_set_history(tt, 2) ||
	    knytt_twotower_set_epochs(tt, 1) ||
	    knytt_twotower_set_threads(tt, 1) ||
	    knytt_twotower_train(tt, 3, 4, F, 7, U, I, NULL, NULL) ||
	    knytt_twotower_save_buffer(tt, &tb, &tl)) {
		fprintf(stderr, "seeds: two-tower: %s\n", knytt_errmsg());
		failed = 1;
	}
	knytt_twotower_close(tt);
	if (failed)
		return;
	put("fuzz_als_load", "model", 1, ab, al);
	put("fuzz_als_load", "model-crc-as-saved", 0, ab, al);
	put("fuzz_als_load", "model-truncated", 1, ab, al / 2);
	put("fuzz_twotower_load", "model", 1, tb, tl);
	put("fuzz_twotower_load", "model-crc-as-saved", 0, tb, tl);
	put("fuzz_twotower_load", "model-truncated", 1, tb, tl / 2);
	put("fuzz_lightgcn_load", "model", 1, gb, gl);
	put("fuzz_lightgcn_load", "model-crc-as-saved", 0, gb, gl);
	put("fuzz_lightgcn_load", "model-truncated", 1, gb, gl / 2);
	put("fuzz_sasrec_load", "model", 1, sb, sl);
	put("fuzz_sasrec_load", "model-crc-as-saved", 0, sb, sl);
	put("fuzz_sasrec_load", "model-truncated", 1, sb, sl / 2);

	/* engine blobs (train.c): header, store ids 1..4 (the items of
	 * fuzz_engine_model's store), the model, CRC */
	for (int kind = 0; kind < 2; kind++) {
		size_t ml = kind ? tl : al, n = 32 + 4 * 8 + ml + 4;
		unsigned char *b = calloc(1, n);
		if (!b) {
			failed = 1;
			break;
		}
		eng_head(b, 1, kind ? KNYTT_MODEL_TWOTOWER : KNYTT_MODEL_ALS,
			 ml, 32);
		memcpy(b + 64, kind ? tb : ab, ml);
		fuzz_fix_crc(b, n);
		const char *t = "fuzz_engine_model";
		put(t, kind ? "twotower" : "als", 3, b, n);
		/* fewer ids than the model has items */
		knytt__put_u32(b + 20, 3);
		memmove(b + 56, b + 64, ml);
		fuzz_fix_crc(b, n - 8);
		put(t, kind ? "twotower-3ids" : "als-3ids", 3, b, n - 8);
		free(b);
	}
	/* version 3: the ALS blob with learned search words (one word of
	 * dimension 4) after the model, their size at byte 48 */
	size_t ql = 16 + 8 + 4 * 4, n3 = 56 + 4 * 8 + al + ql + 4;
	unsigned char *b3 = failed ? NULL : calloc(1, n3);
	if (b3) {
		eng_head(b3, 3, KNYTT_MODEL_ALS, al, 56);
		knytt__put_u64(b3 + 48, ql);
		memcpy(b3 + 88, ab, al);
		unsigned char *w = b3 + 88 + al;
		memcpy(w, "KQTERMS1", 8);
		knytt__put_u32(w + 8, 4);
		knytt__put_u32(w + 12, 1);
		knytt__put_u64(w + 16, 0x1234abcdULL);
		for (unsigned d = 0; d < 4; d++)
			knytt__put_u32(w + 24 + 4 * d, 0x3f000000u); /* 0.5 */
		fuzz_fix_crc(b3, n3);
		put("fuzz_engine_model", "als-search-words", 3, b3, n3);
		free(b3);
	}
	/* version 4: the ALS blob with a SASRec session model over its 4
	 * items (no search words: 0 at byte 48), its size at byte 56 */
	size_t n4 = 64 + 4 * 8 + al + sl + 4;
	unsigned char *b4 = failed ? NULL : calloc(1, n4);
	if (b4) {
		eng_head(b4, 4, KNYTT_MODEL_ALS, al, 64);
		knytt__put_u64(b4 + 48, 0);
		knytt__put_u64(b4 + 56, sl);
		memcpy(b4 + 96, ab, al);
		memcpy(b4 + 96 + al, sb, sl);
		fuzz_fix_crc(b4, n4);
		put("fuzz_engine_model", "als-session-model", 3, b4, n4);
		free(b4);
	}
	knytt_free(ab);
	knytt_free(tb);
	knytt_free(gb);
	knytt_free(sb);
}

/* ---- index files: no control byte (fuzz_index_load repairs the CRCs
 *      of inputs whose last byte is odd) ---- */

static void seed_index(const char *name, knytt_index_kind kind,
		       knytt_quant q)
{
	char path[256];
	fuzz_path(path, sizeof path, "seed.idx");
	knytt_index *ix;
	int rc = knytt_index_create(&ix);
	if (!rc)
		rc = knytt_index_set_kind(ix, kind);
	if (!rc)
		rc = knytt_index_set_quant(ix, q);
	if (!rc)
		rc = knytt_index_set_m(ix, 4);
	if (!rc)
		rc = knytt_index_open(ix, 4);
	float v[8][4];
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 4; j++)
			v[i][j] = (float)((i * 7 + j * 3) % 5) - 2.0f;
	if (!rc && q == KNYTT_QUANT_INT8)
		rc = knytt_index_train_quant(ix, 8, &v[0][0], 4);
	if (!rc && q == KNYTT_QUANT_INT8_ONLY) {
		/* residual codes: trained on 4096 rows around 8 points
		 * (enough to learn cells from), 8 of them added */
		enum { TR = 4096 };
		static float t[TR][4];
		uint32_t x = 12345;
		for (int i = 0; i < TR; i++)
			for (int j = 0; j < 4; j++) {
				x = x * 1664525u + 1013904223u;
				t[i][j] = v[i % 8][j] * 10.0f +
					  (float)(x >> 8) / 16777216.0f;
			}
		rc = knytt_index_train_quant(ix, TR, &t[0][0], 4);
		memcpy(v, t, sizeof v);
	}
	for (int i = 0; !rc && i < 8; i++)
		rc = knytt_index_add(ix, (uint64_t)i + 1, v[i], 4);
	if (!rc)
		rc = knytt_index_remove(ix, 3);
	if (!rc)
		rc = knytt_index_save(ix, path);
	knytt_index_close(ix);
	FILE *f = rc ? NULL : fopen(path, "rb");
	unsigned char buf[1 << 16];
	size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
	if (f)
		fclose(f);
	unlink(path);
	if (!n) {
		fprintf(stderr, "seeds: index %s: %s\n", name, knytt_errmsg());
		failed = 1;
		return;
	}
	put("fuzz_index_load", name, NO_CTL, buf, n);
}

int main(int argc, char **argv)
{
	root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
	if (mkdir(root, 0755) != 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	seeds_csv();
	seeds_jsonl();
	seeds_movielens();
	seeds_embedder();
	seeds_where();
	seeds_models();
	seed_index("hnsw", KNYTT_INDEX_HNSW, KNYTT_QUANT_NONE);
	seed_index("hnsw-int8", KNYTT_INDEX_HNSW, KNYTT_QUANT_INT8);
	seed_index("flat", KNYTT_INDEX_FLAT, KNYTT_QUANT_NONE);
	seed_index("hnsw-f16", KNYTT_INDEX_HNSW, KNYTT_QUANT_F16);
	seed_index("hnsw-int8only-resid", KNYTT_INDEX_HNSW,
		   KNYTT_QUANT_INT8_ONLY);
	return failed;
}
