/*
 * embedder.h -- internals of the embedding-service client.  Not API.
 *
 * The readers of what a server sends back (embedder.c), for the fuzz
 * target and the tests: parse = a 2xx answer for @p n inputs (rows to
 * @p out, which may be NULL; *dim as in knytt_embedder_embed: 0 = take it
 * from the answer); snippet = the excerpt of an error body quoted in
 * messages, at most @p cap bytes with the NUL.
 */
#ifndef KNYTT_EMBED_EMBEDDER_H
#define KNYTT_EMBED_EMBEDDER_H

#include "../internal.h"

int knytt__embedder_parse(const knytt_embedder *e, const char *data,
			  size_t len, size_t n, float *out, uint32_t *dim);
void knytt__embedder_snippet(const knytt_embedder *e, const char *data,
			     size_t len, char *out, size_t cap);

#endif
