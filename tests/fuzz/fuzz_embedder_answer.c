/*
 * fuzz_embedder_answer.c -- libFuzzer target for what an embedding
 * server sends back (lib/engine/embedder.c): the /v1/embeddings answer
 * parser and the error-body excerpt quoted in messages.  Any bytes must
 * give embeddings or KNYTT_EPROTO, never a crash or a write past the
 * rows asked for.
 *
 * Called through knytt__embedder_parse / knytt__embedder_snippet rather
 * than through a loopback HTTP server: the parser is the same, and a
 * server would cost a connection per input.
 *
 * Input: byte 0 is a control byte, the rest the answer body.  Its low
 * two bits + 1 are the number of inputs the answer must cover; bit 2
 * asks for a fixed dimension of 3 instead of "take it from the answer".
 * The embedder's API key, "sk-fuzz", is what the excerpt must mask when
 * the body echoes it.
 */
#include "fuzz.h"

#include "../../lib/embed/embedder.h"

static knytt_embedder *fz_emb(void)
{
	static knytt_embedder *e;
	if (!e && (knytt_embedder_create(&e) != KNYTT_OK ||
		   knytt_embedder_set_url(e, "http://127.0.0.1:9/v1") !=
			   KNYTT_OK ||
		   knytt_embedder_set_api_key(e, "sk-fuzz") != KNYTT_OK)) {
		fprintf(stderr, "fuzz: cannot set up an embedder: %s\n",
			knytt_errmsg());
		abort(); /* the harness, not the input, is broken */
	}
	return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const knytt_embedder *e = fz_emb();
	size_t n = (size_t)(data[0] & 3) + 1, len = size - 1;
	/* a heap copy of exactly the body: no NUL after it */
	char *body = (char *)fuzz_dup(data + 1, len);
	if (!body)
		return 0;
	uint32_t dim = (data[0] & 4) ? 3 : 0;
	if (knytt__embedder_parse(e, body, len, n, NULL, &dim) == KNYTT_OK) {
		/* the real call: rows written into exactly n x dim floats */
		float *out = malloc(n * dim * sizeof *out);
		if (out)
			knytt__embedder_parse(e, body, len, n, out, &dim);
		free(out);
	}
	char snip[168];
	knytt__embedder_snippet(e, body, len, snip, sizeof snip);
	if (strlen(snip) >= sizeof snip || strstr(snip, "sk-fuzz"))
		abort(); /* the excerpt overran or leaked the key */
	free(body);
	return 0;
}
