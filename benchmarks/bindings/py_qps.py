"""Search QPS through the Python binding: the same chunks as c_qps.c.

    py_qps.py INDEX QUERIES DIM K EF single|batch SECONDS THREADS BATCH
"""
import sys
import time

import numpy as np

import knytt


def main(argv):
    path, qpath, dim, k, ef, mode, secs, threads, batch = argv
    dim, k, ef, secs = int(dim), int(k), int(ef), float(secs)
    threads, batch = int(threads), int(batch)
    queries = np.fromfile(qpath, np.float32).reshape(-1, dim)
    rows = list(queries)     # one C-contiguous float32 array per query
    big = np.ascontiguousarray(
        np.tile(queries, (batch // len(queries) + 1, 1))[:batch])
    wall, cpu = time.perf_counter, time.process_time
    best = best_cpu = 0.0
    done = 0
    with knytt.Index.load(path) as ix:
        search, n = ix.search, (len(rows) if mode == "single" else batch)
        t0 = wall()
        while True:
            w, c = wall(), cpu()
            if mode == "single":
                for q in rows:
                    search(q, k, ef)
            else:
                ix.search_batch(big, k, ef, threads)
            w, c = wall() - w, cpu() - c
            best = max(best, n / w) if w > 0 else best
            best_cpu = max(best_cpu, n / c) if c > 0 else best_cpu
            done += n
            t = wall() - t0
            if t >= secs:
                break
    print("qps %.1f cpu_qps %.1f mean_qps %.1f" % (best, best_cpu, done / t))


if __name__ == "__main__":
    main(sys.argv[1:])
