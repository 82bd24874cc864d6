"""Memory of a long-running process: byte-bounded caches, and sessions that give back their model.

The caches are checked on real NumPy arrays and on the real mapper; the session test
builds a real dashboard (Panel widgets, outside a server) on a model saved by Keras 3,
computes its results, and calls the hook Panel calls when the page's session ends.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import loihi_core
from loihi_core import memory
from loihi_core.errors import ConfigError


def test_lru_evicts_least_recently_used_entries_by_bytes():
    cache = memory.ByteLRU("test.lru", max_bytes=4000, sizeof=lambda a: a.nbytes)
    arrays = {k: np.full(100, i, np.float64) for i, k in enumerate("abcdef")}  # 800 bytes each
    for k in "abcd":
        assert cache.put(k, arrays[k])
    assert cache.nbytes == 3200 and cache.keys() == list("abcd")
    assert cache.get("a") is arrays["a"]  # "a" is now the most recently used
    cache.put("e", arrays["e"])           # 4000 bytes: at the budget, nothing dropped
    cache.put("f", arrays["f"])           # 4800 > 4000: the least recent ("b") goes
    assert cache.keys() == ["c", "d", "a", "e", "f"] and cache.nbytes == 4000
    assert cache.get("b") is None
    big = np.zeros(126, np.float64)       # 1008 bytes > a quarter of the budget: not kept
    assert not cache.put("big", big) and "big" not in cache
    cache.set_budget(1700)                # shrinking evicts down to the new budget
    assert cache.keys() == ["e", "f"] and cache.nbytes == 1600
    stats = cache.stats()
    assert stats["evictions"] == 4 and stats["hits"] == 1 and stats["misses"] == 1
    assert memory.summary()["caches"]["test.lru"]["bytes"] == 1600


def test_get_or_make_computes_once_and_discard_drops_by_key():
    cache = memory.ByteLRU("test.discard", max_bytes=1 << 20)
    calls = []
    make = lambda: calls.append(1) or np.arange(10)  # noqa: E731
    first = cache.get_or_make(("m1", 0), make)
    assert cache.get_or_make(("m1", 0), make) is first and len(calls) == 1
    cache.get_or_make(("m2", 0), make)
    freed = cache.discard(lambda key: key[0] != "m1")
    assert freed > 80 and cache.keys() == [("m2", 0)]


def test_deep_nbytes_counts_every_buffer_once():
    base = np.zeros(1000, np.float64)
    view = base[10:20]
    holder = {"a": base, "b": [view, (base, np.ones(50, np.int32))]}
    size = memory.deep_nbytes(holder)
    assert 8000 + 200 <= size < 8000 + 200 + 2000  # two buffers, plus small-object overhead


def test_budgets_from_the_environment(monkeypatch):
    monkeypatch.setenv(memory.ENV_VAR, "app.results=10,mapping.layers=2.5")
    assert memory.budget_bytes("app.results") == 10 * memory.MIB
    assert memory.budget_bytes("mapping.layers") == int(2.5 * memory.MIB)
    assert memory.budget_bytes("app.inputs") == memory.DEFAULT_BUDGETS_MB["app.inputs"] * memory.MIB
    total = sum(memory.DEFAULT_BUDGETS_MB.values())
    monkeypatch.setenv(memory.ENV_VAR, str(total / 2))
    assert memory.budget_bytes("app.results") == int(memory.DEFAULT_BUDGETS_MB["app.results"] / 2 * memory.MIB)
    monkeypatch.setenv(memory.ENV_VAR, "results=10")
    with pytest.raises(ConfigError, match="LOIHI_STUDIO_CACHE_MB.*'results=10'.*app.results"):
        memory.budget_bytes("app.results")
    with pytest.raises(ConfigError, match="no cache named 'nope'"):
        memory.set_budget("nope", 1)


def test_mapping_layer_cache_stays_within_its_byte_budget():
    from loihi_core import mapping
    from refcases import reference_network

    cache = mapping._LAYER_CACHE
    old = cache._lru.max_bytes
    net = reference_network("tutorial_random")
    cache.clear()
    try:
        reference = loihi_core.map_to_chip(net)
        cache.clear()
        sizes = [memory.deep_nbytes([(b.synapses[0], b.float_compartments, b.compartments)
                                     for b in reference.blocks_of(name)])
                 for name in reference.block_shapes]
        budget = 4 * max(sizes)  # every layer may be stored, not every mapping below
        memory.set_budget("mapping.layers", budget / memory.MIB)
        stored = 0
        for scale in (1.25, 1.5, 2.0, 0.5, 0.75, 3.0):  # new gains: new keys for every layer
            for layer in net.layers.values():
                layer.gain *= scale
            chip = loihi_core.map_to_chip(net)
            stored += sum(memory.deep_nbytes([(b.synapses[0], b.float_compartments, b.compartments)
                                              for b in chip.blocks_of(name)]) for name in chip.block_shapes)
            assert cache.nbytes <= budget
        assert stored > budget and memory.summary()["caches"]["mapping.layers"]["evictions"] > 0
        # what the cache gives back is what a fresh mapping builds
        cache.clear()
        fresh = loihi_core.map_to_chip(net)
        for a, b in zip(chip.blocks, fresh.blocks):
            assert a.utilization() == b.utilization()
            np.testing.assert_array_equal(a.compartments.vth, b.compartments.vth)
    finally:
        cache._lru.set_budget(old)
        cache.clear()


# ---------------------------------------------------------------------------------------
# sessions
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def distinct_model(tmp_path_factory):
    """A tutorial-architecture model with its own random weights, saved by Keras 3."""
    from loihi_core.example import build_tutorial_model

    model = build_tutorial_model()
    rng = np.random.default_rng(2024)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in model.get_weights()])
    path = tmp_path_factory.mktemp("memory") / "distinct.keras"
    model.save(path)
    return path


def _open_dashboard(path):
    from app import lifecycle
    from app.dashboard import Dashboard
    from app.data import bundle_for_graph, load_model_bytes

    graph = load_model_bytes(path.read_bytes(), path.name)
    images = np.random.default_rng(5).uniform(0, 1, (12, 28, 28, 1)).astype(np.float32)
    config = loihi_core.TunedConfig().with_defaults(scale_firing_rates=100.0, synapse=0.005)
    bundle = bundle_for_graph(graph, path.name, images, np.arange(12) % 10, "random", config)
    dash = Dashboard(bundle=bundle)
    dash.state.param.update(live_images=4, calib_images=8)
    hook = lifecycle.register(dash)  # what build_dashboard does for every page
    return dash, hook


def _cached_tokens() -> set[str]:
    from app import pipeline

    caches = (pipeline._INPUTS, pipeline._REFERENCE, pipeline._PROFILES, pipeline._RESULTS)
    return {pipeline._token_of(key) for cache in caches for key in cache.keys()}


def test_closing_a_session_drops_its_model_results_and_history(distinct_model):
    dash, hook = _open_dashboard(distinct_model)
    st = dash.state
    st.compute_now()
    st.set_scale("conv0", 150.0)
    st.compute_now()
    assert st.emulation is not None and st.can_undo
    token = st.bundle.token
    assert token in _cached_tokens()
    bundle, graph = weakref.ref(st.bundle), weakref.ref(st.bundle.graph)
    stage = weakref.ref(st.emulation)
    hook(None)  # Panel calls this once the page's session is destroyed
    gc.collect()
    # the page object may still be referenced for a moment; what it held is gone
    assert bundle() is None and graph() is None and stage() is None
    assert token not in _cached_tokens()
    assert st.bundle is None and st.layers == {} and not st._undo and not st._redo
    assert dash.cards == {} and dash.dropper.value == {}
    hook(None)  # a second call is harmless


def test_results_of_a_model_another_page_has_open_are_kept(distinct_model):
    from app import lifecycle

    (a, hook_a), (b, hook_b) = _open_dashboard(distinct_model), _open_dashboard(distinct_model)
    a.state.compute_now()
    b.state.compute_now()
    token = a.state.bundle.token
    assert b.state.bundle.token == token
    open_before = lifecycle.health()["sessions"]["open"]
    hook_a(None)
    assert token in _cached_tokens() and b.state.bundle is not None
    hook_b(None)
    assert token not in _cached_tokens()
    health = lifecycle.health()
    assert health["sessions"]["open"] == open_before - 2
    assert {"app.results", "mapping.layers"} <= set(health["caches"]) and health["rss_bytes"] > 0
