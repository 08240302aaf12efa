"""knytt.ALS and knytt.TwoTower: training, factors, save/load."""

import numpy as np
import pytest

import knytt


def interactions(seed=3, users=40, items=30, n=600):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, users, n)
    # planted taste: user u mostly meets items of group u % 3
    it = (rng.integers(0, items // 3, n) * 3 + u % 3) % items
    return u.tolist(), it.tolist()


def test_als_fit_factors_score_save_load(tmp_path):
    users, items = interactions()
    seen = []
    als = knytt.ALS(factors=8, iterations=5, threads=1, reg=0.05)
    als.fit(users, items, progress=lambda p: seen.append(p.epoch))
    assert seen == [1, 2, 3, 4, 5]
    uf, itf = als.user_factors(), als.item_factors()
    assert uf.shape == (40, 8) and itf.shape == (30, 8) and als.shape == \
        (40, 30)
    np.testing.assert_allclose(als.score(4), itf @ uf[4], rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(als.score(4, [2, 7]), itf[[2, 7]] @ uf[4],
                               rtol=1e-4, atol=1e-5)
    # the planted group scores highest
    s = als.score(4)
    assert s[1::3].mean() > s[0::3].mean()
    als.save(tmp_path / "m.als")
    with knytt.ALS.load(tmp_path / "m.als") as again:
        np.testing.assert_array_equal(again.item_factors(), itf)
    with knytt.ALS.load(als.to_bytes()) as again:
        np.testing.assert_array_equal(again.user_factors(), uf)
    # same seed, same threads: bit-identical (the library's promise)
    twin = knytt.ALS(factors=8, iterations=5, threads=1, reg=0.05)
    twin.fit(knytt.Matrix(users, items))
    np.testing.assert_array_equal(twin.user_factors(), uf)
    v = als.fold_in([1, 4, 7], [1.0, 1.0, 1.0])
    assert v.shape == (8,)
    als.close()
    als.close()


def test_als_errors_and_cancel(tmp_path):
    users, items = interactions()
    with pytest.raises(knytt.EINVAL):
        knytt.ALS(factors=0)
    with knytt.ALS(factors=4, iterations=5) as als:
        with pytest.raises(knytt.ECANCELED):
            als.fit(users, items, progress=lambda p: True)
    with knytt.ALS(factors=4) as als:
        with pytest.raises(knytt.ESTATE):
            als.user_factors()
        with pytest.raises(knytt.EINVAL, match="unknown type"):
            als.fit(users, items, types=["glance"] * len(users))
    (tmp_path / "bad.als").write_bytes(b"\x00" * 64)
    with pytest.raises((knytt.ECORRUPT, knytt.EVERSION)):
        knytt.ALS.load(tmp_path / "bad.als")


def test_twotower_fit_embed_save_load(tmp_path):
    users, items = interactions(users=30, items=24, n=500)
    cats = ["shoes", "books", "kitchen"]
    feats = [{"title": "%s item %d" % (cats[i % 3], i),
              "category": cats[i % 3], "price": 10 + i} for i in range(24)]
    seen = []
    tt = knytt.TwoTower(dim=8, epochs=3, batch=32, threads=1, buckets=1024)
    tt.fit(users, items, features=feats, progress=lambda p: seen.append(p))
    assert [p.epoch for p in seen] == [1, 2, 3] and seen[0].loss > 0
    assert tt.dim == 8 and tt.shape == (30, 24)
    ie, ue = tt.item_embeddings(), tt.user_embeddings()
    assert ie.shape == (24, 8) and ue.shape == (30, 8)
    np.testing.assert_allclose(np.linalg.norm(ie, axis=1), 1, rtol=1e-4)
    cold = tt.embed_item({"title": "shoes item new", "category": "shoes"})
    assert cold.shape == (8,) and abs(np.linalg.norm(cold) - 1) < 1e-4
    assert tt.embed_query("shoes").shape == (8,)
    assert tt.embed_user(3, [1, 2]).shape == (8,)
    assert tt.embed_user(None, []).shape == (8,)
    tt.save(tmp_path / "m.tt")
    with knytt.TwoTower.load(tmp_path / "m.tt") as again:
        np.testing.assert_array_equal(again.item_embeddings(), ie)
    with knytt.TwoTower.load(tt.to_bytes()) as again:
        np.testing.assert_array_equal(again.user_embeddings(), ue)
    with pytest.raises(knytt.EINVAL, match="features has"):
        tt.fit(users, items, features=feats[:3])
    with pytest.raises(knytt.EINVAL, match="unknown TwoTower"):
        knytt.TwoTower(dims=3)
    tt.close()
