/*
 * import.h -- what the two halves of a bulk import share (knytt_store_
 * import): import.c reads the file and turns each row into a record,
 * validating its fields; importw.c writes the records (id caches,
 * batches and their transactions, bulk mode, the parsing thread of
 * piped imports) and reports rejected rows.  Not API.
 */
#ifndef KNYTT_IMPORT_H
#define KNYTT_IMPORT_H

#include "store_int.h"

#include <stdio.h>

/* ---- an ext id -> internal id cache (open addressing) ------------------ */

/* A slot is 32 bytes, two to a cache line: the key's hash, the id, and
 * the key itself when it is shorter than INKEY bytes (a longer one is
 * kept behind a pointer).  A lookup of a short key then reads a single
 * line, which consume() fetches ahead from the hash the parsing thread
 * computed.  (With the keys behind pointers, two cache misses per
 * lookup made the two lookups per row a third of the calling thread's
 * time while a 2M-row import inserted: perf record of knytt import on
 * the store benchmark's file.) */
#define INKEY 16

typedef struct idslot {
	uint64_t h; /* 0 = empty; a real hash has its low bit set */
	uint64_t val;
	union {
		char in[INKEY]; /* NUL-terminated; in[INKEY - 1] = 0 */
		char *out;      /* when in[INKEY - 1] = 1 */
	} k;
} idslot;

typedef struct idcache {
	idslot *slot;
	size_t cap, n;
} idcache;

/* ---- the import state ---------------------------------------------------- */

typedef struct imp {
	knytt_store *st;
	knytt_record_kind kind;
	knytt_reject_fn on_reject;
	void *ctx;
	size_t line;
	long long accepted, in_batch;
	long long dups, rejected; /* for knytt_store_import_report */
	int64_t paused_ms; /* when batch_end last left the lock free */
	knytt__ixrow *ix;
	size_t nix;
	idcache users, items;
	struct ixpipe *pipe; /* set in the parsing thread of a piped import */
} imp;

/* ---- import.c: the rows of the file -------------------------------------- */

/* Reads @p f to its end in @p format, handing every record to the
 * writers below and every refused row to knytt__imp_reject.  Returns 0,
 * or the error that ended the import (a bad header, a write failure). */
int knytt__imp_parse(imp *im, FILE *f, knytt_format format);

/* ---- importw.c: the records into the store ------------------------------- */

/* Reports row im->line as rejected for @p field with @p reason (to the
 * callback, or through the pipe to the thread that calls it). */
void knytt__imp_reject(imp *im, const char *field, const char *reason);
/* Write one record in the open batch: 0 (written, or rejected and
 * reported), or an error that ends the import.  @p keep: the
 * KNYTT__KEEP_* bits of the item columns the file lacks; without
 * @p has_attrs an existing user keeps its attributes. */
int knytt__imp_item(imp *im, const knytt_item *it, unsigned keep);
int knytt__imp_user(imp *im, const char *id, const char *attrs,
		    int has_attrs);
int knytt__imp_ix(imp *im, const knytt_interaction *x);

#endif
