"""Strings with NUL characters are refused before they reach C, where
they would be cut short ("sku-1\\0x" would address item "sku-1")."""

import pytest

import knytt


def _refused(call, what):
    with pytest.raises(knytt.EINVAL) as e:
        call()
    assert what in e.value.message and "NUL" in e.value.message


def test_nul_in_ids_and_fields_is_refused(tmp_path):
    with knytt.Store("sqlite::memory:") as st:
        st.item_upsert(id="sku-1", title="Red shoe")
        _refused(lambda: st.item_get("sku-1\0x"), "ext_id")
        _refused(lambda: st.item_delete("sku-1\0x"), "ext_id")
        _refused(lambda: st.item_upsert(id="sku-2", title="a\0b"), "title")
        _refused(lambda: st.item_upsert(id="s\0", title="t"), "id")
        _refused(lambda: st.user_upsert("al\0ice"), "ext_id")
        _refused(lambda: st.interaction_add("alice", "sku-1", "vi\0ew"),
                 "type")
        _refused(lambda: st.search("red\0shoe"), "query")
        # nothing was stored or deleted by the refused calls
        assert st.item_count() == 1 and st.user_count() == 0
        assert st.item_get("sku-1")["title"] == "Red shoe"
    _refused(lambda: knytt.Store("sqlite::memory:\0x"), "uri")
    _refused(lambda: knytt.Store(b"sqlite::memory:\0x"), "uri")
    ix = knytt.Index(4)
    try:
        _refused(lambda: ix.save(str(tmp_path / "a\0b")), "path")
    finally:
        ix.close()
