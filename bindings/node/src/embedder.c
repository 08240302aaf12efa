/*
 * embedder.c -- knytt_embedder_* in the Node addon: an Embedder handle
 * for an OpenAI-compatible /v1/embeddings server.  open is synchronous
 * (it does not contact the server); probe and embed make HTTP requests
 * and so run as napi_async_work and settle Promises.
 */
#include "addon.h"

#include <stdio.h>
#include <stdlib.h>

/* embedderOpen(url, model, apiKey, timeoutMs, dim) -> handle */
static napi_value embedder_open(napi_env env, napi_callback_info info)
{
	knytt_embedder *e;
	char *url = NULL, *model = NULL, *key = NULL;
	uint32_t ms, dim;
	int rc;
	KN_ARGS(env, info, 5);

	if (kn_u32(env, argv[3], "timeoutMs", &ms) ||
	    kn_u32(env, argv[4], "dim", &dim) ||
	    kn_str(env, argv[0], "url", &url) ||
	    kn_str_opt(env, argv[1], "model", &model) ||
	    kn_str_opt(env, argv[2], "apiKey", &key))
		goto out;
	if ((rc = knytt_embedder_create(&e)) < 0) {
		kn_throw(env, rc);
		goto out;
	}
	if ((rc = knytt_embedder_set_url(e, url)) < 0 ||
	    (rc = knytt_embedder_set_model(e, model)) < 0 ||
	    (rc = knytt_embedder_set_api_key(e, key)) < 0 ||
	    (rc = knytt_embedder_set_timeout_ms(e, (long)ms)) < 0 ||
	    (dim && (rc = knytt_embedder_set_dim(e, dim)) < 0) ||
	    (rc = knytt_embedder_open(e)) < 0) {
		kn_throw(env, rc);
		knytt_embedder_close(e);
		goto out;
	}
	free(url);
	free(model);
	free(key);
	return kn_new_handle(env, e, KN_EMBEDDER);
out:
	free(url);
	free(model);
	free(key);
	return NULL;
}

static napi_value embedder_dim(napi_env env, napi_callback_info info)
{
	struct kn_handle *h;
	KN_ARGS(env, info, 1);

	if (kn_handle_arg(env, argv[0], KN_EMBEDDER, &h))
		return NULL;
	return kn_num(env, knytt_embedder_dim(h->p));
}

struct embed_job {
	struct kn_job base;
	knytt_embedder *e;
	char **texts;   /* NULL for a probe */
	size_t n;
	float *out;     /* n * dim, handed to the ArrayBuffer returned */
	uint32_t dim;
};

/* Learns the dimension first if needed, so that the output can be sized
 * before the texts are sent. */
static int embed_exec(struct kn_job *job)
{
	struct embed_job *j = (struct embed_job *)job;
	int rc = knytt_embedder_probe(j->e);

	if (rc < 0)
		return rc;
	j->dim = (uint32_t)rc;
	if (!j->texts || !j->n)
		return 0;
	if (!(j->out = malloc(j->n * j->dim * sizeof(float))))
		return KNYTT_ENOMEM;
	return knytt_embedder_embed(j->e, j->n, (const char *const *)j->texts,
				    j->out, j->dim);
}

static void free_floats(napi_env env, void *data, void *hint)
{
	free(data);
}

static napi_value embed_done(napi_env env, struct kn_job *job)
{
	struct embed_job *j = (struct embed_job *)job;
	napi_value ab, arr;
	size_t n = j->n * j->dim;

	if (!j->texts)
		return kn_num(env, j->dim);
	if (!j->out)
		return kn_typed(env, napi_float32_array, 0, (void **)&j->out);
	/* the library's output becomes the array: no copy */
	if (napi_create_external_arraybuffer(env, j->out, n * sizeof(float),
					     free_floats, NULL, &ab) != napi_ok)
		return NULL;
	j->out = NULL;
	if (napi_create_typedarray(env, napi_float32_array, n, ab, 0, &arr) !=
	    napi_ok)
		return NULL;
	return arr;
}

static void embed_release(struct kn_job *job)
{
	struct embed_job *j = (struct embed_job *)job;

	for (size_t i = 0; j->texts && i < j->n; i++)
		free(j->texts[i]);
	free(j->texts);
	free(j->out);
}

/* texts: an array of strings, copied here (NUL-checked) */
static int embed_texts(napi_env env, napi_value v, struct embed_job *j)
{
	bool is = false;
	uint32_t n;
	napi_value s;
	char what[40];

	if (napi_is_array(env, v, &is) != napi_ok || !is) {
		kn_throw_msg(env, KNYTT_EINVAL, "texts must be an array");
		return -1;
	}
	napi_get_array_length(env, v, &n);
	if (!(j->texts = calloc(n ? n : 1, sizeof(char *)))) {
		kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
		return -1;
	}
	for (j->n = 0; j->n < n; j->n++) {
		snprintf(what, sizeof(what), "texts[%zu]", j->n);
		if (napi_get_element(env, v, (uint32_t)j->n, &s) != napi_ok ||
		    kn_str(env, s, what, &j->texts[j->n]))
			return -1;
	}
	return 0;
}

/* embedderEmbed(h, texts | null) -> Promise<Float32Array (n * dim)>, or
 * with null (a probe) Promise<dim> */
static napi_value embedder_embed(napi_env env, napi_callback_info info)
{
	struct kn_handle *h;
	struct embed_job *j;
	KN_ARGS(env, info, 2);

	if (kn_handle_arg(env, argv[0], KN_EMBEDDER, &h))
		return NULL;
	if (!(j = calloc(1, sizeof(*j))))
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
	j->e = h->p;
	if ((!kn_is_nullish(env, argv[1]) && embed_texts(env, argv[1], j)) ||
	    kn_job_keep(env, &j->base, argv[0])) {
		embed_release(&j->base);
		free(j);
		return kn_pending(env);
	}
	j->base.exec = embed_exec;
	j->base.done = embed_done;
	j->base.release = embed_release;
	j->base.h = h;
	return kn_job_queue(env, &j->base, "knytt.embed");
}

void kn_init_embedder(napi_env env, napi_value exports)
{
	kn_export(env, exports, "embedderOpen", embedder_open);
	kn_export(env, exports, "embedderDim", embedder_dim);
	kn_export(env, exports, "embedderEmbed", embedder_embed);
}
