"""What a mapped network costs on Loihi: energy per inference, time per step, inferences/s.

A per-operation model. Every on-chip event the emulator implies is counted exactly and
priced with the per-operation figures Intel published for Loihi:

* **synaptic operations** per core — each spike adds one weight row into a core; a row of
  ``k`` weights is ``k`` synaptic operations (the emulator's ``synaptic_ops`` split by the
  core that receives them);
* **compartment updates** per core — every configured compartment updates once a step;
  a step in which it fires counts as an *active* update, the others as *inactive* ones
  (see "Limits" below);
* **spike messages** — one per (spiking neuron, target synapse), i.e. per output axon, each
  priced as one within-tile spike plus its mesh hops east-west and north-south from the
  sending core's tile to the receiving core's tile under a :class:`Placement`.

The counts come from the emulator's per-neuron spike counts (``EmulatorResult.spike_counts``,
exact per image) and the static fan-out of every neuron in the :class:`~loihi_core.chip.ChipModel`
(its axons and weight-row widths): a spike of neuron ``n`` always costs the same synaptic
operations and messages, so ``counts @ fan_out`` is exact and the Numba kernels need no
extra counters (their speed is unchanged). The per-core synaptic operations sum to the
emulator's own ``synaptic_ops`` (tested).

Sources (every constant below names its row)
--------------------------------------------
``[D18]`` M. Davies et al., "Loihi: a neuromorphic manycore processor with on-chip
learning", IEEE Micro 38(1), 2018, **Table 2** ("Loihi pre-silicon performance and energy
measurements", p. 96; the text calls them pre-silicon SDF and SPICE simulations, consistent
with early post-silicon characterization) and §"Chip overview" (128 neuromorphic cores).

``[B19]`` P. Blouw et al., "Benchmarking keyword spotting efficiency on neuromorphic
hardware", NICE 2019, **Table 1** (Loihi: idle 0.029 W, running 0.110 W, dynamic 0.081 W,
296 inferences/s, 0.00027 J/inference) and **§2.2.2 "Data I/O"** (idling after a model has
run draws about 70 mW more than idling from boot, which the authors attribute to the
embedded x86 processors that manage the mesh and count as dynamic power).

Limits
------
* Table 2 gives the synaptic operation energy as a *minimum* and its time as a *maximum*;
  the energy here is therefore a lower bound of the synaptic term.
* [D18] does not define "active" and "inactive" neuron updates; we read "active" as an
  update in which the compartment fires. The bound with every update active is
  ``neuron_update_upper_J``.
* Table 2 publishes no energy for barrier synchronisation, for the embedded x86 cores
  or for chip-to-chip links, and no barrier time beyond one chip (1-32 tiles: 113-465 ns;
  we interpolate linearly in the tiles in use and use 465 ns for a multi-chip board, a
  lower bound). Inter-chip hops are priced as tile hops (a lower bound).
* The tile grid of a chip (8 x 4 tiles of 4 cores) and the board's chip grid are our
  assumptions: [D18] gives 128 cores a chip and the barrier row's "1-32 tiles" (so 4 cores
  a tile), not the floor plan.
* Time per step uses each core's *mean* work per step over the presentation (the
  emulator returns per-image totals); a step with a burst of spikes takes longer.
* Static power is not in Table 2; :attr:`CostReport.static_power_W` uses [B19]'s measured
  idle power of the whole Loihi system (0.029 W, leakage plus the idle x86 cores) per chip.
* The embedded x86 cores: Table 2 has no figure for them. [B19] measured that once a model
  has run they draw about 70 mW above idle-from-boot, and counts that as dynamic power, so
  its 0.27 mJ per inference includes ~70 mW x the time of an inference.
  :attr:`CostReport.x86_power_W` is that 70 mW per chip in use (one chip measured; the
  per-chip scaling is our assumption) and :attr:`CostReport.energy_per_image_with_x86_J`
  adds it over the estimated time of an inference: the figure comparable with [B19]'s
  definition. ``energy_per_image_J`` stays the mesh alone. [B19] also lists the x86
  instructions that talk to the mesh on every step (its §2.2.3, source 5) but gives no
  figure for them, neither energy nor time; they are not modelled, so the time per step
  is the mesh's alone (a lower bound) and so is the x86 energy that depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .chip import CORES_PER_CHIP, ChipModel
from .errors import ConfigError

# -- [D18] Table 2 ------------------------------------------------------------------------
#: Energy per synaptic spike op (min): 23.6 pJ.  [D18] Table 2.
E_SYNOP = 23.6e-12
#: Time per synaptic spike op (max): 3.5 ns.  [D18] Table 2.
T_SYNOP = 3.5e-9
#: Energy / time per synaptic update (pairwise STDP): 120 pJ / 6.1 ns.  [D18] Table 2.
#: (Listed for completeness: this project does not learn on chip.)
E_SYN_UPDATE, T_SYN_UPDATE = 120e-12, 6.1e-9
#: Energy per neuron update (active / inactive): 81 pJ / 52 pJ.  [D18] Table 2.
E_NEURON_ACTIVE, E_NEURON_INACTIVE = 81e-12, 52e-12
#: Time per neuron update (active / inactive): 8.4 ns / 5.3 ns.  [D18] Table 2.
T_NEURON_ACTIVE, T_NEURON_INACTIVE = 8.4e-9, 5.3e-9
#: Within-tile spike energy / latency: 1.7 pJ / 2.1 ns.  [D18] Table 2.
E_SPIKE_TILE, T_SPIKE_TILE = 1.7e-12, 2.1e-9
#: Energy per tile hop (E-W / N-S): 3.0 pJ / 4.0 pJ.  [D18] Table 2.
E_HOP_EW, E_HOP_NS = 3.0e-12, 4.0e-12
#: Latency per tile hop (E-W / N-S): 4.1 ns / 6.5 ns.  [D18] Table 2.
T_HOP_EW, T_HOP_NS = 4.1e-9, 6.5e-9
#: Mesh-wide barrier sync time (1-32 tiles): 113-465 ns.  [D18] Table 2.
T_BARRIER_1_TILE, T_BARRIER_32_TILES = 113e-9, 465e-9

# -- structure ----------------------------------------------------------------------------
#: Cores per tile: 128 cores a chip ([D18] chip overview) over the barrier row's 32 tiles.
CORES_PER_TILE = 4
TILES_PER_CHIP = CORES_PER_CHIP // CORES_PER_TILE
#: Tile grid of one chip, (columns east-west, rows north-south). Our assumption.
CHIP_TILE_GRID = (8, 4)
#: Chips per row of a board's chip grid (a 32-chip board is 4 x 8). Our assumption.
BOARD_COLUMNS = 4

# -- [B19] Table 1 ------------------------------------------------------------------------
#: Loihi idle power (W) of the measured system.  [B19] Table 1.
P_IDLE_B19 = 0.029
#: Power (W) of the embedded x86 cores once a model has run ("approximately 70mW" between
#: idling after a model ran and idling from boot, counted as dynamic).  [B19] §2.2.2.
P_X86_ACTIVE_B19 = 0.070

PLACEMENTS = ("serpentine", "interleaved")

CONSTANTS = {
    "E_SYNOP": (E_SYNOP, "J", "Davies 2018 Table 2: energy per synaptic spike op (min)"),
    "T_SYNOP": (T_SYNOP, "s", "Davies 2018 Table 2: time per synaptic spike op (max)"),
    "E_NEURON_ACTIVE": (E_NEURON_ACTIVE, "J", "Davies 2018 Table 2: energy per neuron update (active)"),
    "E_NEURON_INACTIVE": (E_NEURON_INACTIVE, "J", "Davies 2018 Table 2: energy per neuron update (inactive)"),
    "T_NEURON_ACTIVE": (T_NEURON_ACTIVE, "s", "Davies 2018 Table 2: time per neuron update (active)"),
    "T_NEURON_INACTIVE": (T_NEURON_INACTIVE, "s", "Davies 2018 Table 2: time per neuron update (inactive)"),
    "E_SPIKE_TILE": (E_SPIKE_TILE, "J", "Davies 2018 Table 2: within-tile spike energy"),
    "T_SPIKE_TILE": (T_SPIKE_TILE, "s", "Davies 2018 Table 2: within-tile spike latency"),
    "E_HOP_EW": (E_HOP_EW, "J", "Davies 2018 Table 2: energy per tile hop (E-W)"),
    "E_HOP_NS": (E_HOP_NS, "J", "Davies 2018 Table 2: energy per tile hop (N-S)"),
    "T_HOP_EW": (T_HOP_EW, "s", "Davies 2018 Table 2: latency per tile hop (E-W)"),
    "T_HOP_NS": (T_HOP_NS, "s", "Davies 2018 Table 2: latency per tile hop (N-S)"),
    "T_BARRIER_1_TILE": (T_BARRIER_1_TILE, "s", "Davies 2018 Table 2: mesh-wide barrier sync time (1 tile)"),
    "T_BARRIER_32_TILES": (T_BARRIER_32_TILES, "s", "Davies 2018 Table 2: mesh-wide barrier sync time (32 tiles)"),
    "P_IDLE_B19": (P_IDLE_B19, "W", "Blouw 2019 Table 1: Loihi idle power"),
    "P_X86_ACTIVE_B19": (P_X86_ACTIVE_B19, "W", "Blouw 2019 §2.2.2 (Data I/O): embedded x86 "
                         "cores once a model has run, counted as dynamic power"),
}


# -- placement ----------------------------------------------------------------------------
@dataclass
class Placement:
    """Where every core of a :class:`ChipModel` sits on the board's mesh of tiles.

    Attributes
    ----------
    x, y
        Per block (in ``chip.blocks`` order): the global tile column (east-west) and row
        (north-south) of the block's core on the board.
    tile
        Per block: the tile index within its chip.
    strategy
        ``"serpentine"``: consecutive cores share a tile (4 a tile) and consecutive tiles
        are mesh neighbours (rows walked alternately east and west), and consecutive chips
        are neighbours on the board — the mapper allocates blocks layer by layer, so the
        blocks that talk to each other end up close. ``"interleaved"``: consecutive cores
        go to different tiles (core ``c`` on tile ``c mod 32``), a spread-out placement kept
        for comparison.
    """

    x: np.ndarray
    y: np.ndarray
    tile: np.ndarray
    strategy: str

    def hops(self, a: np.ndarray | int, b: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """East-west and north-south tile hops from block(s) ``a`` to block(s) ``b``."""
        return np.abs(self.x[a] - self.x[b]), np.abs(self.y[a] - self.y[b])

    def to_dict(self) -> dict:
        """JSON-able: per block ``[x, y]`` and the strategy (``map --json``'s placement)."""
        return {"strategy": self.strategy, "cores_per_tile": CORES_PER_TILE,
                "chip_tile_grid": list(CHIP_TILE_GRID),
                "tiles": [[int(a), int(b)] for a, b in zip(self.x, self.y)]}


def _serpentine(i: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    row = i // width
    col = i % width
    return np.where(row % 2 == 0, col, width - 1 - col), row


def place(chip: ChipModel, strategy: str = "serpentine") -> Placement:
    """The tile coordinates of every block's core (see :class:`Placement`).

    Uses the mapper's allocation (``block.chip``, ``block.core``) as it is: the placement
    only decides where a chip's core ``c`` and the board's chip ``k`` sit on the mesh.
    """
    if strategy not in PLACEMENTS:
        raise ConfigError([("placement", f"expected one of {', '.join(PLACEMENTS)}, got {strategy!r}")])
    chips = np.array([b.chip for b in chip.blocks], np.int64)
    cores = np.array([b.core for b in chip.blocks], np.int64)
    if chips.size and (chips.min() < 0 or cores.min() < 0):
        raise ConfigError([("chip", "the chip model is not allocated to cores; map it with "
                                    "map_to_chip first")])
    if strategy == "serpentine":
        tile = cores // CORES_PER_TILE
    else:
        tile = cores % TILES_PER_CHIP
    tx, ty = _serpentine(tile, CHIP_TILE_GRID[0])
    cx, cy = _serpentine(chips, BOARD_COLUMNS)
    return Placement(x=cx * CHIP_TILE_GRID[0] + tx, y=cy * CHIP_TILE_GRID[1] + ty, tile=tile,
                     strategy=strategy)


# -- fan-out --------------------------------------------------------------------------------
@dataclass
class FanOut:
    """Static per-spike costs of every spike source (neurons of the on-chip and host layers).

    Per source layer: ``synops`` (``(neuron, core, ops)`` entries: one spike of ``neuron``
    causes ``ops`` synaptic operations in ``core``), ``messages`` (spike messages per spike), ``hops_ew``/
    ``hops_ns`` (tile hops summed over a spike's messages) and ``latency`` (the slowest
    message's within-tile plus hop latency, seconds).
    """

    synops: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    messages: dict[str, np.ndarray]
    hops_ew: dict[str, np.ndarray]
    hops_ns: dict[str, np.ndarray]
    latency: dict[str, np.ndarray]


def _source_blocks(chip: ChipModel, layer: str, n: int) -> np.ndarray:
    """Block index of each neuron of an on-chip ``layer`` (``-1``: a host neuron)."""
    out = np.full(n, -1, np.int64)
    for k, b in enumerate(chip.blocks):
        if b.layer == layer:
            out[b.neuron_ids] = k
    return out


def fan_out(chip: ChipModel, placement: Placement) -> FanOut:
    """The per-spike cost tables of :class:`FanOut` from the chip's axons and weight rows.

    Host neurons inject their spikes at the tile of the board's first core (x = y = 0),
    our assumption for where the host interface enters the mesh.
    """
    sizes: dict[str, int] = {}
    rows: dict[str, list] = {}
    for k, b in enumerate(chip.blocks):
        for syn in b.synapses:
            used = np.nonzero(syn.pre_axon >= 0)[0]
            axons = syn.pre_axon[used]
            ok = syn.axon_base[axons] >= 0
            used, axons = used[ok], axons[ok]
            sets = syn.indices if syn.indices else syn.weights
            width = np.array([s.shape[1] for s in sets], np.int64)
            ops = width[syn.axon_weight_set[axons]] if width.size else np.zeros(0, np.int64)
            sizes[syn.pre] = max(sizes.get(syn.pre, 0), int(syn.pre_axon.size))
            rows.setdefault(syn.pre, []).append((used, np.full(used.size, k, np.int64), ops))
    out = FanOut({}, {}, {}, {}, {})
    for layer, parts in rows.items():
        n = sizes[layer]
        src = np.concatenate([p[0] for p in parts])
        dst = np.concatenate([p[1] for p in parts])
        ops = np.concatenate([p[2] for p in parts])
        out.synops[layer] = (src, dst, ops.astype(np.float64))
        src_block = _source_blocks(chip, layer, n)[src]
        sx = np.where(src_block >= 0, placement.x[np.maximum(src_block, 0)], 0)
        sy = np.where(src_block >= 0, placement.y[np.maximum(src_block, 0)], 0)
        ew = np.abs(placement.x[dst] - sx)
        ns = np.abs(placement.y[dst] - sy)
        out.messages[layer] = np.bincount(src, minlength=n).astype(np.float64)
        out.hops_ew[layer] = np.bincount(src, ew, minlength=n)
        out.hops_ns[layer] = np.bincount(src, ns, minlength=n)
        lat = np.zeros(n)
        np.maximum.at(lat, src, T_SPIKE_TILE + ew * T_HOP_EW + ns * T_HOP_NS)
        out.latency[layer] = lat
    return out


# -- the estimate ---------------------------------------------------------------------------
@dataclass
class CostReport:
    """Energy and time of one presentation (per image, averaged over the images given).

    Energies are dynamic (joules per inference); ``static_power_W`` is separate.
    ``energy_per_layer_J`` charges a layer with what its spikes cost (synaptic operations
    and messages, host layers included) plus its compartments' updates; it adds up to
    ``energy_per_image_J``. Per-core arrays follow ``chip.blocks``: synaptic operations
    received, active/inactive updates per image, mean work per step (s) and energy (J).
    ``x86_power_W`` is the embedded x86 cores' power while a model runs, which published
    "dynamic" figures include ([B19] §2.2.2; see the module's Limits).
    """

    steps: int
    n_cores: int
    n_chips: int
    n_tiles: int
    energy_per_image_J: float
    energy_breakdown_J: dict[str, float]
    time_per_step_s: float
    time_breakdown_s: dict[str, float]
    inferences_per_s: float
    static_power_W: float
    synops_per_core: np.ndarray
    updates_active_per_core: np.ndarray
    updates_inactive_per_core: np.ndarray
    core_time_per_step_s: np.ndarray
    core_energy_J: np.ndarray
    energy_per_layer_J: dict[str, float]
    spike_messages: float
    tile_hops: float
    neuron_update_upper_J: float
    placement: str = "serpentine"
    notes: list[str] = field(default_factory=list)
    x86_power_W: float = 0.0

    @property
    def dynamic_power_W(self) -> float:
        """Dynamic power while inferring back to back: energy x inferences per second."""
        return self.energy_per_image_J * self.inferences_per_s

    @property
    def time_per_inference_s(self) -> float:
        """Steps per inference x time per step (the mesh's; see the module's Limits)."""
        return self.steps * self.time_per_step_s

    @property
    def energy_per_image_with_x86_J(self) -> float:
        """Dynamic energy per inference as [B19] measures it: the mesh's energy plus the
        embedded x86 cores' power over the (estimated) time of one inference."""
        return self.energy_per_image_J + self.x86_power_W * self.time_per_inference_s

    @property
    def slowest_core(self) -> int:
        return int(np.argmax(self.core_time_per_step_s)) if self.n_cores else -1

    def to_dict(self) -> dict:
        """JSON-able summary (what ``simulate`` stores and the app shows)."""
        return {"energy_per_image_J": self.energy_per_image_J,
                "energy_breakdown_J": dict(self.energy_breakdown_J),
                "time_per_step_s": self.time_per_step_s,
                "time_breakdown_s": dict(self.time_breakdown_s),
                "inferences_per_s": self.inferences_per_s,
                "dynamic_power_W": self.dynamic_power_W,
                "static_power_W": self.static_power_W, "steps": self.steps,
                "x86_power_W": self.x86_power_W,
                "energy_per_image_with_x86_J": self.energy_per_image_with_x86_J,
                "n_cores": self.n_cores, "n_chips": self.n_chips, "n_tiles": self.n_tiles,
                "spike_messages": self.spike_messages, "tile_hops": self.tile_hops,
                "energy_per_layer_J": dict(self.energy_per_layer_J),
                "placement": self.placement, "notes": list(self.notes)}


def barrier_time(n_tiles: int, n_chips: int) -> float:
    """Barrier sync time: [D18] Table 2's 113-465 ns for 1-32 tiles, linear in between.

    A multi-chip board is given the 32-tile figure (Table 2 has nothing larger; a lower bound).
    """
    if n_chips > 1 or n_tiles >= TILES_PER_CHIP:
        return T_BARRIER_32_TILES
    t = max(n_tiles, 1)
    return T_BARRIER_1_TILE + (T_BARRIER_32_TILES - T_BARRIER_1_TILE) * (t - 1) / (TILES_PER_CHIP - 1)


def estimate_from_counts(chip: ChipModel, spike_counts: dict[str, np.ndarray], steps: int,
                         placement: Placement | str = "serpentine",
                         fan: FanOut | None = None) -> CostReport:
    """The cost of presenting images for ``steps`` steps, from per-neuron spike counts.

    Parameters
    ----------
    chip
        A mapped (allocated) chip model.
    spike_counts
        ``{layer: (n_images, n_neurons)}`` spikes per image (``EmulatorResult.spike_counts``),
        for every host layer that drives the chip and every on-chip layer.
    steps
        Time steps per inference.
    placement
        A :class:`Placement` or a strategy name for :func:`place`.
    """
    if steps < 1:
        raise ConfigError([("steps", f"expected >= 1 time steps per inference, got {steps}")])
    pl = place(chip, placement) if isinstance(placement, str) else placement
    fan = fan_out(chip, pl) if fan is None else fan
    n_cores = len(chip.blocks)
    synops = np.zeros(n_cores)
    messages = hops_ew = hops_ns = 0.0
    latency = 0.0
    energy_layer: dict[str, float] = {}
    for layer, table in fan.synops.items():
        if layer not in spike_counts:
            raise ConfigError([("spike_counts", f"layer {layer!r} is missing: the chip's synapses "
                                                f"read it; pass the counts of every layer")])
        counts = np.asarray(spike_counts[layer], np.float64)
        counts = counts.reshape(-1, counts.shape[-1])
        mean = counts.mean(axis=0)
        src, dst, ops = table
        per_entry = mean[src] * ops
        synops += np.bincount(dst, per_entry, minlength=n_cores)
        m = float(mean @ fan.messages[layer])
        ew = float(mean @ fan.hops_ew[layer])
        ns = float(mean @ fan.hops_ns[layer])
        messages, hops_ew, hops_ns = messages + m, hops_ew + ew, hops_ns + ns
        energy_layer[layer] = (float(per_entry.sum()) * E_SYNOP + m * E_SPIKE_TILE
                               + ew * E_HOP_EW + ns * E_HOP_NS)
        if (mean > 0).any():
            latency = max(latency, float(fan.latency[layer][mean > 0].max()))
    # compartment updates per core: all compartments every step; active = the steps it fires
    active = np.zeros(n_cores)
    comps = np.array([b.n_compartments for b in chip.blocks], np.float64)
    for k, b in enumerate(chip.blocks):
        if b.layer in spike_counts:
            c = np.asarray(spike_counts[b.layer], np.float64)
            c = c.reshape(-1, c.shape[-1]).mean(axis=0)
            active[k] = float(np.minimum(c[b.neuron_ids], steps).sum())
    inactive = comps * steps - active
    neuron_e = active * E_NEURON_ACTIVE + inactive * E_NEURON_INACTIVE
    for k, b in enumerate(chip.blocks):
        energy_layer[b.layer] = energy_layer.get(b.layer, 0.0) + float(neuron_e[k])
    breakdown = {"synaptic_ops": float(synops.sum()) * E_SYNOP,
                 "neuron_updates_active": float(active.sum()) * E_NEURON_ACTIVE,
                 "neuron_updates_inactive": float(inactive.sum()) * E_NEURON_INACTIVE,
                 "spikes_within_tile": messages * E_SPIKE_TILE,
                 "tile_hops": hops_ew * E_HOP_EW + hops_ns * E_HOP_NS}
    core_time = (synops * T_SYNOP + active * T_NEURON_ACTIVE + inactive * T_NEURON_INACTIVE) / steps
    n_tiles = int(len({(int(a), int(b)) for a, b in zip(pl.x, pl.y)}))
    n_chips = chip.n_chips
    barrier = barrier_time(n_tiles, n_chips)
    slowest = float(core_time.max(initial=0.0))
    step = slowest + latency + barrier
    notes = []
    if n_chips > 1:
        notes.append("multi-chip: barrier and chip-to-chip hops priced with one-chip figures "
                     "(Davies 2018 Table 2 has none larger): a lower bound")
    core_energy = synops * E_SYNOP + neuron_e
    return CostReport(
        steps=int(steps), n_cores=n_cores, n_chips=n_chips, n_tiles=n_tiles,
        energy_per_image_J=float(sum(breakdown.values())), energy_breakdown_J=breakdown,
        time_per_step_s=step,
        time_breakdown_s={"slowest_core": slowest, "spike_latency": latency, "barrier": barrier},
        inferences_per_s=1.0 / (step * steps) if step > 0 else float("inf"),
        static_power_W=P_IDLE_B19 * max(n_chips, 1), synops_per_core=synops,
        updates_active_per_core=active, updates_inactive_per_core=inactive,
        core_time_per_step_s=core_time, core_energy_J=core_energy,
        energy_per_layer_J=energy_layer, spike_messages=messages, tile_hops=hops_ew + hops_ns,
        neuron_update_upper_J=float((comps * steps).sum()) * E_NEURON_ACTIVE,
        placement=pl.strategy, notes=notes, x86_power_W=P_X86_ACTIVE_B19 * max(n_chips, 1))


def estimate(chip: ChipModel, result, placement: Placement | str = "serpentine") -> CostReport:
    """:func:`estimate_from_counts` of an :class:`~loihi_core.emulator.EmulatorResult`."""
    return estimate_from_counts(chip, result.spike_counts, result.steps, placement)
