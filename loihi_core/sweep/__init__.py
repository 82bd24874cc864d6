"""Sweeps: evaluate many tuned configs on the bit-exact emulator, locally or on a Dask cluster.

A sweep varies fields of a tuned config (:mod:`loihi_core.config`) over a grid and/or by
random search, evaluates every configuration on the emulator (independent mode: every
image from a zero state) over a labelled test set, and returns one table row per
configuration: its parameters, accuracy, mean rate per layer, spikes and synaptic
operations per image (energy proxies), cores used and latency.

>>> spec = load_sweep("SWEEP.json")                                   # doctest: +SKIP
>>> df = run_sweep(graph, images, labels, spec, scheduler="local-threads")  # doctest: +SKIP
>>> pareto_front(df)[["scale_firing_rates", "accuracy", "spikes_per_image"]]  # doctest: +SKIP

The SWEEP.json format (schema version 1)
----------------------------------------
::

    {"schema_version": 1,
     "base_config": {...a tuned config...} | "tuned.json" | null,
     "grid": {"scale_firing_rates": [50, 100, 200],
              "layers.conv0.scale_firing_rates": [200, 400],
              "synapse": [0.002, 0.005],
              "presentation_steps": [20, 30],
              "neuron": ["LoihiSpikingRectifiedLinear", "LoihiLIF"]},
     "random": {"n": 20, "seed": 0,
                "space": {"scale_firing_rates": {"log_uniform": [10, 1000]},
                          "synapse": {"uniform": [0.001, 0.01]},
                          "presentation_steps": {"int_uniform": [10, 50]},
                          "neuron": {"choice": ["LoihiSpikingRectifiedLinear", "LoihiLIF"]}}}}

* ``schema_version`` (optional, default 1): a newer version is refused.
* ``base_config``: the tuned config every configuration starts from: an object (the
  tuned-config JSON), a path to one (relative to the SWEEP.json file), or ``null``/absent
  for the defaults. The CLI's ``--config`` replaces it.
* **Fields** (the keys of ``grid`` and ``random.space``): the top-level tuned-config values
  ``scale_firing_rates``, ``synapse``, ``presentation_steps``, ``neuron``, ``dt``,
  ``max_to_avg_pool``, ``n_chips``, and per layer ``layers.<layer>.<field>`` with
  ``<field>`` one of ``scale_firing_rates``, ``synapse``, ``neuron``, ``on_chip``,
  ``block_shape`` (``null`` clears a layer override: automatic block shape, inherit).
  Values are validated exactly as in a tuned config (:meth:`TunedConfig.with_defaults`,
  :meth:`TunedConfig.with_layer`), and layer names against the model's neuron layers.
* ``grid``: field → non-empty list of distinct values. The grid is the Cartesian product,
  in key order with the last key varying fastest (nested loops); ``{}`` is one point, the
  base config itself.
* ``random``: ``n`` (≥ 1) samples, ``seed`` (default 0; the same document always gives the
  same samples), and ``space``: field → one distribution:
  ``{"log_uniform": [lo, hi]}`` (``0 < lo ≤ hi``), ``{"uniform": [lo, hi]}``,
  ``{"int_uniform": [lo, hi]}`` (integers, both ends included) or
  ``{"choice": [v1, v2, ...]}``. Continuous draws are rounded to 4 significant digits (so
  that configurations read well), and to integers for ``presentation_steps`` and
  ``n_chips``. Non-numeric fields take ``choice`` only.
* Both ``grid`` and ``random`` may be given: the configurations are then the grid points
  followed by the random samples (the union, not the product); a random sample sets only
  its ``space`` fields on the base config. At least one of the two is required.
* Unknown keys, duplicate keys, NaN/Infinity are refused; every problem is reported at
  once with its path (``grid.synapse[1]: expected a lowpass time constant ...``).

Metrics (one row per configuration)
-----------------------------------
* ``accuracy``: fraction of images whose output argmax at the last step equals the label
  (:attr:`EmulatorResult.predictions`).
* ``rate/<layer>``: mean firing rate in Hz over the *active* (image, neuron) pairs, i.e.
  neurons that spiked at least once during an image (:meth:`EmulatorResult.rates`), for
  every neuron layer (the off-chip input layer included).
* ``spikes_per_image``: spikes of all neuron layers (off-chip input layer included) per
  image; ``synops_per_image``: synaptic operations (weight additions) on the chip per image.
* ``energy_per_image_J``, ``time_per_step_s``: the cost model's estimate
  (:func:`loihi_core.cost.estimate`: dynamic energy per inference, and time per step from the
  slowest core, the slowest message and the barrier), averaged over the images.
* ``n_cores``: Loihi cores the mapping uses (also given for configurations that do not
  fit, when the mapping got that far).
* ``latency_steps``: for an image classified correctly, the number of presentation steps
  after which the output argmax equals the label *and stays there* until the end of the
  presentation: ``1 + t*`` where ``t*`` is the first 0-based step index from which the
  argmax is the label at every later step. Reported as the mean over the correctly
  classified images (``NaN`` when none is). ``latency_steps × dt`` is the time to a stable
  correct answer; the value is bounded by ``presentation_steps``.
* ``error``: ``""`` for a configuration that ran, else why it did not (does not convert,
  does not fit on the chip, or a task failed after its retries). Such rows are kept with
  ``NaN`` metrics, never dropped.
* ``config``: the configuration's tuned-config JSON (one line); :func:`config_of` reads it.

Also ``index`` (configuration number), ``source`` (``grid``/``random``/``list``), one column
per swept field with the configuration's *effective* value (for a layer field, what the
layer gets after inheritance; lists and objects as JSON text), ``n_images`` and
``seconds`` (compute time summed over its tasks).

Execution
---------
Tasks are (configuration × image shard). Each task converts and maps its configuration
(cached per process, so once per configuration per worker) and emulates its shard. The
layer graph and the test set travel to every worker once (``client.scatter(...,
broadcast=True)``); no worker imports TensorFlow. Results are keyed by (configuration,
shard): each is counted exactly once whatever the retries, and rows come out in
configuration order. Backends (``scheduler=``):

* ``None``/``"local"``: an embedded :class:`distributed.LocalCluster` (worker processes
  with one thread each, scheduler on loopback, no dashboard), closed afterwards;
* ``"tcp://host:8786"``: an existing Dask cluster; or a :class:`distributed.Client`;
* ``"local-threads"``: in-process threads (no Dask). On one machine this is usually the
  fastest: the Numba kernels release the GIL, and there is no process start, JIT-cache
  load or data copy per worker;
* ``executor=``: any :class:`concurrent.futures.Executor` (thread or process pool, Dask's
  ``client.get_executor()``...).

(``loihi-studio sweep`` without a flag uses ``"local-threads"``; ``--workers N`` a
LocalCluster of N processes; ``--scheduler ADDR`` a cluster.) An address that accepts TCP
but does not answer as a Dask scheduler fails within 15 s (:func:`.backends.connect_scheduler`).

Before anything runs, :func:`check_against_model` refuses layer fields the model lacks, a
swept top-level field that every layer overrides, and configurations that give the same
network. With ``out=``, :func:`run_sweep` checks the CSV first, appends each configuration's
row as soon as it is complete (flushed to disk: a crash after N configurations keeps N rows),
and ``resume=True`` runs only the configurations the file lacks.

The package: :mod:`.spec` (the document), :mod:`.checks` (against the model),
:mod:`.evaluate` (one task), :mod:`.backends`
(where tasks run), :mod:`.run` (:func:`run_sweep`), :mod:`.results` (the table).

A worker process that dies has its tasks rescheduled by Dask; a task that raises is
retried ``retries`` times. Dask workers set a per-worker ``NUMBA_CACHE_DIR`` (under the
original ``NUMBA_CACHE_DIR`` or the temp dir), seeded from this machine's Numba cache, so
that concurrent workers never write the same cache files and each compiles at most once.
"""

from __future__ import annotations

from .backends import worker_info, worker_numba_cache_dir
from .evaluate import ShardStats, combine_shards, evaluate_shard, latency_steps
from .results import (best_row, config_of, describe_params, load_results, pareto_front,
                      save_results)
from .run import SweepProgress, run_sweep
from .spec import (DISTRIBUTIONS, LAYER_FIELDS, MAX_CONFIGS, SWEEP_SCHEMA_VERSION, TOP_FIELDS,
                   RandomSearch, SweepError, SweepPoint, SweepSpec, apply_params,
                   effective_value, load_sweep, sample_random)
from .checks import check_against_model

__all__ = ["SweepError", "SweepPoint", "SweepSpec", "RandomSearch", "SweepProgress",
           "ShardStats", "load_sweep", "apply_params", "effective_value", "sample_random",
           "check_against_model", "evaluate_shard", "combine_shards", "latency_steps",
           "run_sweep", "save_results", "load_results", "config_of", "pareto_front",
           "best_row", "describe_params", "worker_numba_cache_dir", "worker_info",
           "SWEEP_SCHEMA_VERSION", "TOP_FIELDS", "LAYER_FIELDS", "DISTRIBUTIONS", "MAX_CONFIGS"]
