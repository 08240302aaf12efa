"""knytt.Index, exact_knn and distance against the C API's answers."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import knytt
from knytt import _arrays

DIM = 16


def data(n, seed, dim=DIM):
    return np.random.default_rng(seed).standard_normal(
        (n, dim)).astype(np.float32)


def c_answers(ref_bin, tmp_path, metric, quant, base, queries, k, ef,
              save=None):
    """Labels and distances from knytt_ref (the C API), row per query."""
    bp, qp = tmp_path / "base.f32", tmp_path / "queries.f32"
    base.tofile(bp)
    queries.tofile(qp)
    args = [ref_bin, metric, quant, str(base.shape[1]), str(bp), str(qp),
            str(k), str(ef)] + ([str(save)] if save else [])
    out = subprocess.run(args, check=True, capture_output=True,
                         text=True).stdout.split("\n")
    labels, dists = [], []
    for line in out[:len(queries)]:
        f = line.split()
        labels.append([int(x) for x in f[:k]])
        dists.append([float.fromhex(x) for x in f[k:]])
    return np.array(labels, np.uint64), np.array(dists, np.float32)


@pytest.mark.parametrize("metric,quant", [("l2", "none"), ("ip", "none"),
                                          ("cosine", "none"),
                                          ("l2", "int8"),
                                          ("cosine", "int8_only"),
                                          ("ip", "f16")])
def test_same_answers_as_c_api(ref_bin, tmp_path, metric, quant):
    base, queries = data(600, 1), data(25, 2)
    want_l, want_d = c_answers(ref_bin, tmp_path, metric, quant, base,
                               queries, 10, 40)
    with knytt.Index(DIM, metric=metric, quant=quant) as ix:
        if quant not in ("none", "f16"):
            ix.train_quant(base)
        for i, row in enumerate(base):
            ix.add(i, row)
        for q, wl, wd in zip(queries, want_l, want_d):
            labels, dists = ix.search(q, k=10, ef=40)
            assert labels.tolist() == wl.tolist()
            assert dists.tolist() == wd.tolist()


def test_loads_index_written_by_c(ref_bin, tmp_path):
    base, queries = data(400, 3), data(10, 4)
    path = tmp_path / "c.idx"
    want_l, want_d = c_answers(ref_bin, tmp_path, "l2", "none", base,
                               queries, 5, 30, save=path)
    with knytt.Index.load(str(path)) as ix:
        assert ix.dim == DIM and len(ix) == 400
        got_l, got_d = ix.search_batch(queries, k=5, ef=30)
        assert got_l.tolist() == want_l.tolist()
        assert got_d.tolist() == want_d.tolist()
        ix.save(tmp_path / "py.idx")
    with knytt.Index.load(tmp_path / "py.idx") as again:
        assert again.search_batch(queries, 5, 30)[0].tolist() == \
            want_l.tolist()


def test_batch_equals_single_searches():
    base, queries = data(800, 5), data(30, 6)
    with knytt.Index(DIM, m=12, ef_construction=100, seed=9) as ix:
        ix.add_batch(np.arange(800, dtype=np.uint64), base, threads=2)
        bl, bd = ix.search_batch(queries, k=7, ef=50, threads=2)
        assert bl.shape == (30, 7) and bd.dtype == np.float32
        for i, q in enumerate(queries):
            sl, sd = ix.search(q, 7, ef=50)
            assert sl.tolist() == bl[i].tolist()
            assert sd.tolist() == bd[i].tolist()


def test_flat_index_matches_exact_knn_and_numpy():
    base, queries = data(500, 7), data(12, 8)
    ids, dists = knytt.exact_knn(base, queries, k=5)
    brute = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    assert ids.tolist() == np.argsort(brute, 1, kind="stable")[:, :5].tolist()
    np.testing.assert_allclose(dists, np.sort(brute, 1)[:, :5], rtol=1e-4,
                               atol=1e-3)
    with knytt.Index(DIM, kind="flat") as ix:
        ix.add_batch(list(range(500)), base)
        fl, _ = ix.search_batch(queries, 5)
        assert fl.tolist() == ids.tolist()
    assert knytt.distance(base[0], base[1]) == pytest.approx(
        float(((base[0] - base[1]) ** 2).sum()), rel=1e-5)
    assert knytt.distance([1, 0], [0, 1], "cosine") == pytest.approx(1.0)


def test_filters_callable_and_id_set():
    base, q = data(1000, 9), data(1, 10)[0]
    allowed = set(range(0, 1000, 7))
    brute = ((base - q) ** 2).sum(1)
    best = sorted(allowed, key=lambda i: brute[i])[:5]
    with knytt.Index(DIM, kind="flat") as ix:
        ix.add_batch(np.arange(1000, dtype=np.uint64), base)
        seen = []

        def odd_sevens(label):
            seen.append(label)
            return label in allowed
        labels, _ = ix.search(q, 5, filter=odd_sevens)
        assert labels.tolist() == best and seen
        assert ix.search(q, 5, filter=allowed)[0].tolist() == best
        ids = knytt.IdSet(allowed)
        assert len(ids) == len(allowed) and 14 in ids and 15 not in ids
        assert ix.search(q, 5, filter=ids)[0].tolist() == best
        assert len(ix.search(q, 5, filter=[])[0]) == 0

        def broken(label):
            raise RuntimeError("filter failed")
        with pytest.raises(RuntimeError, match="filter failed"):
            ix.search(q, 5, filter=broken)


def test_hnsw_filter_results_pass():
    base, queries = data(2000, 11), data(5, 12)
    with knytt.Index(DIM) as ix:
        ix.add_batch(np.arange(2000, dtype=np.uint64), base)
        for q in queries:
            labels, _ = ix.search(q, 10, ef=64, filter=lambda x: x % 2 == 0)
            assert len(labels) == 10 and all(x % 2 == 0 for x in labels)


def test_int8_settings_and_index_ops():
    base = data(300, 13)
    sizes = {}
    for quant in ("none", "int8", "int8_only", "f16"):
        with knytt.Index(DIM, quant=quant) as ix:
            ix.add_batch(np.arange(300, dtype=np.uint64), base)
            sizes[quant] = ix.vector_memory()
            assert ix.memory() >= sizes[quant]
            assert ix.search(base[5], 1)[0][0] == 5
    assert sizes["int8_only"] * 3 < sizes["none"] < sizes["int8"]
    assert sizes["f16"] * 2 == sizes["none"]
    with knytt.Index(DIM) as ix:
        ix.add(7, base[0])
        assert 7 in ix and 8 not in ix and len(ix) == 1
        np.testing.assert_array_equal(ix.get(7), base[0])
        ix.upsert(7, base[1])
        np.testing.assert_array_equal(ix.get(7), base[1])
        ix.remove(7)
        assert len(ix) == 0
        labels, dists = ix.search(base[0], 3)
        assert len(labels) == 0 and len(dists) == 0


def test_errors_are_named_after_codes(tmp_path):
    ix = knytt.Index(4)
    ix.add(1, [1, 2, 3, 4])
    with pytest.raises(knytt.EINVAL, match="3 dimensions, index has 4") as e:
        ix.search([1, 2, 3], 1)
    assert e.value.code == -1 and e.value.name == "KNYTT_EINVAL"
    assert isinstance(e.value, ValueError) and isinstance(e.value,
                                                          knytt.Error)
    with pytest.raises(knytt.EEXIST, match="label 1"):
        ix.add(1, [1, 2, 3, 4])
    with pytest.raises(knytt.ENOTFOUND):
        ix.remove(99)
    with pytest.raises(knytt.EINVAL):
        ix.add(2, [1, float("nan"), 3, 4])
    with pytest.raises(knytt.EINVAL, match="k must be"):
        ix.search([1, 2, 3, 4], 0)
    with pytest.raises(ValueError, match="label"):
        ix.add(-1, [1, 2, 3, 4])
    with pytest.raises(knytt.EINVAL, match="metric"):
        knytt.Index(4, metric="hamming")
    with pytest.raises(knytt.EINVAL):
        knytt.Index(0)
    with pytest.raises(TypeError, match="float32"):
        ix.search(np.zeros(4, np.float64), 1)
    with pytest.raises(TypeError, match="C-contiguous"):
        ix.search(np.zeros((4, 2), np.float32)[:, 0], 1)
    with pytest.raises(knytt.EEXIST):
        ix.add_batch([1, 5], [[0, 0, 0, 1], [0, 0, 1, 0]])
    assert len(ix) == 1   # all or nothing
    garbage = tmp_path / "garbage.idx"
    garbage.write_bytes(b"not an index at all" * 10)
    with pytest.raises(knytt.ECORRUPT):
        knytt.Index.load(garbage)
    with pytest.raises(knytt.EIO):
        knytt.Index.load(tmp_path / "missing.idx")
    ix.close()
    ix.close()   # idempotent
    with pytest.raises(knytt.ESTATE, match="closed"):
        ix.search([1, 2, 3, 4], 1)
    with knytt.Index(4) as ctx:
        pass
    with pytest.raises(knytt.ESTATE):
        len(ctx)


def test_numpy_arrays_pass_by_address():
    q = data(3, 14)
    v = _arrays.vectors(q, "q")
    assert v.keep is q and v.ptr == q.ctypes.data and (v.rows, v.dim) == \
        (3, DIM)
    with knytt.Index(DIM) as ix:
        ix.add_batch(np.arange(3, dtype=np.uint64), q)
        labels, dists = ix.search_batch(q, 2)
        # the library wrote straight into these arrays' buffers
        assert labels.base is not None and labels.base.shape == (6,)
        assert labels.dtype == np.uint64 and dists.dtype == np.float32


def test_gil_released_two_searches_in_two_threads():
    """Two long searches run at the same time: with the GIL held across
    the foreign call the second could only start after the first
    returned, so their time spans would not overlap."""
    base, queries = data(20000, 15, 32), data(400, 16, 32)
    with knytt.Index(32, kind="flat") as ix:
        ix.add_batch(np.arange(20000, dtype=np.uint64), base)
        t0 = time.perf_counter()
        ix.search_batch(queries, 10, threads=1)
        one = time.perf_counter() - t0
        # one call per thread, long enough (~0.3 s) to measure
        big = np.tile(queries, (max(1, int(0.3 / max(one, 1e-3))), 1))
        spans = [None, None]
        barrier = threading.Barrier(2)

        def work(slot):
            barrier.wait()
            start = time.perf_counter()
            ix.search_batch(big, 10, threads=1)
            spans[slot] = (start, time.perf_counter())
        threads = [threading.Thread(target=work, args=(s,)) for s in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    overlap = min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0])
    shorter = min(e - s for s, e in spans)
    assert overlap > 0.5 * shorter, (spans, one, len(big))


def test_plain_lists_without_numpy():
    script = r"""
import knytt
assert not knytt.HAVE_NUMPY
ix = knytt.Index(3, kind="flat")
ix.add_batch([10, 11, 12], [[0, 0, 0], [1, 1, 1], [5, 5, 5]])
labels, dists = ix.search([0.9, 1, 1], 2)
assert labels == [11, 10] and isinstance(dists, list), (labels, dists)
assert ix.search([0.9, 1, 1], 2, filter={10, 12})[0] == [10, 12]
bl, bd = ix.search_batch([[0, 0, 0], [5, 5, 4]], 1)
assert bl == [[10], [12]], bl
assert ix.get(12) == [5.0, 5.0, 5.0]
ids, _ = knytt.exact_knn([[0, 0], [3, 3]], [[2.5, 2.5]], 1)
assert ids == [[1]]
print("ok")
"""
    env = dict(os.environ, KNYTT_NO_NUMPY="1",
               PYTHONPATH=os.path.dirname(os.path.dirname(knytt.__file__)))
    out = subprocess.run([sys.executable, "-c", script], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
