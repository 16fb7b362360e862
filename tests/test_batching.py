from __future__ import annotations

import os


def test_batching_kernel_cache_cap_leaves_a_user_setting(monkeypatch):
    from stance import batching

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    batching.limit_kernel_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(batching.ONEDNN_CACHE_CAPACITY)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "7")
    batching.limit_kernel_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "7"
    batching.trim_heap()  # glibc: hands free heap back; elsewhere: nothing, and no error
