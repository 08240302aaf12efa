"""knytt.Store and knytt.Engine: a small shop end to end, the same
answers as the knytt command (a C API program) on the same database,
errors, callbacks and context managers."""

import json
import math
import subprocess
import threading

import numpy as np
import pytest

import knytt


@pytest.fixture
def store():
    with knytt.Store("sqlite::memory:") as st:
        yield st


def test_store_items_users_interactions(store):
    iid = store.item_upsert(id="sku-1", title="Red trail shoe",
                            category="shoes/trail", price=89.5,
                            currency="EUR", attributes={"color": "red"})
    store.item_upsert({"id": "sku-2", "title": "Blue rain jacket",
                       "category": "clothing", "price": 120,
                       "in_stock": False})
    it = store.item_get("sku-1")
    assert it["item_id"] == iid and it["title"] == "Red trail shoe"
    assert it["attributes"] == {"color": "red"} and it["currency"] == "EUR"
    assert store.item_get_id(iid)["id"] == "sku-1"
    assert store.item_count() == 2
    assert [r["id"] for r in store.items_changed(0)] == ["sku-1", "sku-2"]
    assert store.search("trail shoe")[0][0] == iid
    assert store.search("jacket", in_stock_only=True) == []
    uid = store.user_upsert("alice", {"tier": "gold"})
    assert store.user_get("alice")["user_id"] == uid
    assert store.user_get("alice")["attributes"] == {"tier": "gold"}
    assert store.interaction_add("alice", "sku-1", "purchase",
                                 event_id="e1") is True
    assert store.interaction_add("alice", "sku-1", "purchase",
                                 event_id="e1") is False
    store.interaction_add("bob", "sku-2", "rating", value=4.5)
    assert store.interaction_count() == 2 and store.user_count() == 2
    recent = store.user_recent("bob")
    assert recent[0]["item"] == "sku-2" and recent[0]["value"] == 4.5
    assert [r["user"] for r in store.interactions_since(0)] == ["alice",
                                                               "bob"]
    store.favorite_set("alice", "sku-2")
    assert store.favorite_list("alice") == [store.item_get("sku-2")
                                            ["item_id"]]
    store.favorite_unset("alice", "sku-2")
    assert store.favorite_list("alice") == []
    lid = store.search_log("trail shoe", "alice", 1)
    store.search_click(lid, "sku-1")
    assert store.search_log_get(lid) == {"query": "trail shoe",
                                         "result_count": 1,
                                         "clicked_item": iid}
    store.item_delete("sku-2")
    assert store.item_get("sku-2")["deleted"] is True


def test_store_embeddings_models_keys(store):
    iid = store.item_upsert(id="a", title="x")
    v = np.arange(8, dtype=np.float32)
    store.embedding_put("item", iid, "v1", v)
    np.testing.assert_array_equal(store.embedding_get("item", iid, "v1"), v)
    np.testing.assert_array_equal(store.embeddings("item", "v1")[iid], v)
    ver = store.model_put("als", b"\x00\x01blob", {"ndcg": 0.5})
    got = store.model_get("als")
    assert got["blob"] == b"\x00\x01blob" and got["version"] == ver
    assert got["metadata"] == {"ndcg": 0.5}
    key = store.key_create("public")
    assert key.startswith("kn_pk_") and len(key) == 70
    assert store.key_lookup(key) == (store.tenant, "public")
    store.key_revoke(key)
    with pytest.raises(knytt.EAUTH):
        store.key_lookup(key)


def test_store_errors_name_the_field(store, tmp_path):
    with pytest.raises(knytt.EINVAL, match="currency"):
        store.item_upsert(id="x", currency="euro")
    with pytest.raises(knytt.EINVAL, match="unknown item field"):
        store.item_upsert(id="x", colour="red")
    with pytest.raises(knytt.ENOTFOUND, match="nope"):
        store.interaction_add("alice", "nope", "view")
    with pytest.raises(knytt.EEXIST):
        store.tenant_create("default")
    csv = tmp_path / "items.csv"
    csv.write_text("id,title,price\na,Shoe,10\nb,Hat,-3\nc,Bag,7\n")
    n, rejects = store.import_file(csv, "items", "csv")
    assert n == 2 and len(rejects) == 1
    line, field, reason = rejects[0]
    assert line == 3 and field == "price" and reason
    with pytest.raises(knytt.EIO):
        store.import_file(tmp_path / "missing.csv", "items")
    store.close()
    store.close()
    with pytest.raises(knytt.ESTATE):
        store.item_count()


def shop_engine(path, shop_csv, **kw):
    """A store at @path with the shop imported through engine.store."""
    e = knytt.Engine("sqlite:%s" % path, model="als", dim=16, **kw)
    st = e.store
    for kind in ("items", "users", "interactions"):
        n, rejects = st.import_file(shop_csv / ("%s.csv" % kind), kind)
        assert n > 0 and rejects == []
    e.sync()
    return e


def cli_json(cli_bin, db, *args):
    out = subprocess.run([cli_bin, "--db", "sqlite:%s" % db, "--json",
                          "--quiet"] + list(args), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_embed_query_and_search_by_vector(tmp_path, shop_csv):
    with shop_engine(tmp_path / "als.db", shop_csv) as e:
        e.train()
        assert e.dim == 16
        # ALS learned no words (no search log): no vector for text
        assert e.embed_query("hiking boot") is None
    e = knytt.Engine("sqlite:%s" % (tmp_path / "tt.db"), model="twotower",
                     dim=16, twotower_epochs=2)
    with e:
        for kind in ("items", "users", "interactions"):
            e.store.import_file(shop_csv / ("%s.csv" % kind), kind)
        e.sync()
        e.train()
        v = e.embed_query("hiking boot")
        assert v is not None and len(v) == e.dim == 16
        assert abs(sum(float(x) * float(x) for x in v) - 1.0) < 1e-4
        hits = e.search(None, 5, vector=v)
        assert len(hits) == 5 and all(h.reason == "semantic" for h in hits)
        with pytest.raises(knytt.EINVAL) as err:
            e.embed_query("")
        assert err.value.field == "text"
    with pytest.raises(knytt.ESTATE):
        e.embed_query("boot")


def test_profile_cache_budget(tmp_path, shop_csv):
    db = tmp_path / "pc.db"
    with shop_engine(db, shop_csv) as e:
        e.train()
        users = ["u%04d" % i for i in range(1, 9)]
        want = {u: [r.id for r in e.recommend(u, 5)] for u in users}
        info = e.profile_cache_info()
        assert info["budget"] == 64 << 20 and info["evictions"] == 0
        assert info["profiles"] >= len(users) and info["bytes"] > 0
    # a one-byte budget: every idle profile is evicted, and loaded again
    # from the store on the next request, with the same answers
    with knytt.Engine("sqlite:%s" % db, profile_cache=1) as e:
        for _ in range(2):
            for u in users:
                assert [r.id for r in e.recommend(u, 5)] == want[u]
        info = e.profile_cache_info()
        assert info["budget"] == 1 and info["profiles"] <= 1
        assert info["evictions"] >= 2 * len(users) - 1
        e.set_profile_cache(math.inf)
        assert e.profile_cache_info()["budget"] == math.inf
        for bad in (-1, 1.5, "64M", True, None, 2 ** 64):
            with pytest.raises(knytt.EINVAL) as err:
                e.set_profile_cache(bad)
            assert err.value.field == "profile_cache"
    with pytest.raises(knytt.ESTATE):
        e.profile_cache_info()


def test_shop_end_to_end_same_as_c_api(tmp_path, shop_csv, cli_bin):
    db = tmp_path / "shop.db"
    epochs = []
    with shop_engine(db, shop_csv, als=(0.1, 1.0, 6)) as e:
        e.train(progress=lambda p: epochs.append((p.epoch, p.epochs)))
        assert epochs == [(i, 6) for i in range(1, 7)]
        assert e.train_status()["model_version"] >= 1
    with knytt.Engine("sqlite:%s" % db) as e:
        py_rec = [r.id for r in e.recommend("u0001", 8)]
        py_sim = [r.id for r in e.similar("i00010", 5)]
        py_shoes = e.recommend("u0002", 5, category="shoes",
                               price_max=150)
        py_search = [r.id for r in e.search("espresso", 5)]
    c_rec = [r["item"] for r in cli_json(cli_bin, db, "recommend", "u0001",
                                          "--k", "8")["results"]]
    c_sim = [r["item"] for r in cli_json(cli_bin, db, "similar", "i00010",
                                          "--k", "5")["results"]]
    assert py_rec == c_rec and len(py_rec) == 8
    assert py_sim == c_sim and "i00010" not in py_sim
    assert py_search
    with knytt.Engine("sqlite:%s" % db) as e:
        for r in py_shoes:
            it = e.store.item_get(r.id)
            assert it["category"].startswith("shoes") and it["price"] <= 150


def test_engine_feedback_favorites_trending(tmp_path, shop_csv):
    with shop_engine(tmp_path / "s.db", shop_csv) as e:
        e.train()
        before = [r.id for r in e.recommend("u0003", 10)]
        e.feedback("u0003", "i00005", "purchase")
        after = e.recommend("u0003", 10)
        assert "i00005" not in [r.id for r in after]   # purchases excluded
        assert before != [r.id for r in after]
        e.favorite("u0003", "i00007")
        e.favorite("u0003", "i00009")
        assert sorted(e.favorites("u0003")) == ["i00007", "i00009"]
        e.unfavorite("u0003", "i00009")
        assert e.favorites("u0003") == ["i00007"]
        # the shop's events are old; the purchase just sent (weight 8)
        # leads the time-decayed counts
        trend = e.trending(5, 3600)
        assert trend[0].id == "i00005" and trend[0].reason == "trending"
        res, log_id = e.search("shoe", 3, with_log_id=True)
        assert log_id > 0
        e.item_upsert(id="new-1", title="Brand new thing", category="misc",
                      price=1, vector=np.ones(16, np.float32))
        assert e.store.item_get("new-1")["title"] == "Brand new thing"
        e.item_delete("new-1")
        with pytest.raises(knytt.ENOTFOUND):
            e.recommend("nobody-ever", 5)
        with pytest.raises(knytt.ENOTFOUND):
            e.feedback("u0001", "no-such-item", "view")
        with pytest.raises(knytt.EINVAL, match="unknown filter"):
            e.recommend("u0001", 5, colour="red")


def test_engine_training_progress_cancel_and_errors(tmp_path, shop_csv):
    with shop_engine(tmp_path / "t.db", shop_csv) as e:
        with pytest.raises(knytt.ECANCELED):
            e.train(progress=lambda p: p.epoch >= 2)

        def broken(p):
            raise KeyError("from the callback")
        with pytest.raises(KeyError, match="from the callback"):
            e.train(progress=broken)
        seen = []
        e.train_start(progress=lambda p: seen.append(p.epoch))
        # queries go on while the model trains in the background
        e.trending(3)
        assert e.train_wait() == 0 and seen[-1] == seen[0] + len(seen) - 1
    with pytest.raises(knytt.ESTATE):
        e.recommend("u0001", 3)


def test_engine_queries_from_threads(tmp_path, shop_csv):
    with shop_engine(tmp_path / "q.db", shop_csv) as e:
        e.train()
        want = {u: [r.id for r in e.recommend(u, 5)]
                for u in ("u0001", "u0002", "u0003", "u0004")}
        got, errors = {}, []

        def ask(user):
            try:
                for _ in range(20):
                    got[user] = [r.id for r in e.recommend(user, 5)]
            except Exception as exc:
                errors.append(exc)
        threads = [threading.Thread(target=ask, args=(u,)) for u in want]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and got == want


def test_engine_bad_uri_and_settings():
    with pytest.raises(knytt.EINVAL, match="uri"):
        knytt.Engine("mysql://x")
    with pytest.raises(knytt.EINVAL, match="model"):
        knytt.Engine(model="bert")


def test_errors_name_their_field(store):
    with pytest.raises(knytt.EINVAL) as e:
        store.item_upsert(id="sku-9", title="Odd", price=-3)
    assert e.value.field == "price" and "price" in e.value.message
    store.item_upsert(id="sku-9", title="Odd", price=3)
    store.user_upsert("bob")
    with pytest.raises(knytt.EINVAL) as e:
        store.interaction_add("bob", "sku-9", "")
    assert e.value.field == "type"
    # a failure about no field in particular carries none
    with pytest.raises(knytt.EINVAL) as e:
        knytt.Index(0)
    assert e.value.field is None
