"""Wall time and peak memory of the CLI commands a user runs on the bundled example.

    python bench/bench_cli.py [--repeats 5] [--sim-repeats 3] [--only simulate]
                              [--baseline DIR | --after-only]

Each command runs as its own process (what a user waits for: interpreter start, imports,
reading the model, the work), ``--repeats`` times after one untimed warm-up run per variant
(Numba cache filled), in two variants measured in the same run, their runs interleaved
(before, after, before, ...) so that load from other processes on a shared machine hits
both alike:

* **before**: by default ``LOIHI_STUDIO_KERAS_LOADER=1``, which forces the Keras loader
  (imports TensorFlow), i.e. how every command read a ``.keras`` file before the TF-free
  reader; with ``--baseline DIR``, the code in ``DIR`` instead (a checkout of an earlier
  version, e.g. ``git worktree add /tmp/base main``; it gets its own Numba cache);
* **after**: this checkout, the default reader.

``--after-only`` measures this checkout alone. Prints p50 (and max) wall seconds and peak
resident memory (from ``wait4``) per command and the ratio before/after. Targets (issue 16,
quiet machine): ``map`` and ``export --format json`` under 1.5 s, ``simulate`` of 1 000
images x 50 steps under 3 s. On a busy machine (other processes on the same cores) every
figure grows; compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"
MODEL = EXAMPLES / "mnist_tutorial.keras"
CONFIG = EXAMPLES / "mnist_tutorial.config.json"
IMAGES = EXAMPLES / "mnist_test.npz"
TARGETS = {"map": 1.5, "export json": 1.5, "simulate 1000x50": 3.0}


def commands(out: Path) -> dict[str, list[str]]:
    return {
        "map": ["map", str(MODEL), "--config", str(CONFIG)],
        "export json": ["export", str(MODEL), "--config", str(CONFIG), "--format", "json",
                        "--out", str(out / "o.json")],
        "inspect": ["inspect", str(MODEL), "--config", str(CONFIG)],
        "simulate 1000x50": ["simulate", str(MODEL), "--config", str(CONFIG), "--inputs",
                             str(IMAGES), "--steps", "50", "--out", str(out / "o.npz")],
    }


def run_once(args: list[str], keras_loader: bool, root: Path = ROOT) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``loihi-studio`` process run from ``root``."""
    env = dict(os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="2")
    if root != ROOT or "NUMBA_CACHE_DIR" not in env:
        env["NUMBA_CACHE_DIR"] = str(root / ".cache" / "numba")
    env.pop("LOIHI_STUDIO_KERAS_LOADER", None)
    if keras_loader:
        env["LOIHI_STUDIO_KERAS_LOADER"] = "1"
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "loihi_core", *args], env=env, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {err.strip()[-400:]}")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sim-repeats", type=int, default=3)
    parser.add_argument("--only", action="append", default=None, metavar="WORD",
                        help="only the commands whose name starts with WORD (repeatable)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="'before' = the checkout in DIR (default: the Keras loader)")
    choice.add_argument("--after-only", action="store_true", help="measure this checkout only")
    args = parser.parse_args()
    variants = {"before": (True, ROOT), "after": (False, ROOT)}
    if args.baseline is not None:
        variants["before"] = (False, args.baseline.resolve())
    if args.after_only:
        del variants["before"]
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(Path(tmp))
        if args.only:
            cmds = {k: v for k, v in cmds.items() if any(k.startswith(w) for w in args.only)}
        rows = []
        for name, argv in cmds.items():
            repeats = args.sim_repeats if name.startswith("simulate") else args.repeats
            for keras_loader, root in variants.values():
                run_once(argv, keras_loader, root)  # warm-up: Numba cache, OS file cache
            runs: dict[str, list] = {v: [] for v in variants}
            for _ in range(repeats):
                for variant, (keras_loader, root) in variants.items():
                    runs[variant].append(run_once(argv, keras_loader, root))
            result = {variant: (statistics.median(w for w, _ in r), max(w for w, _ in r),
                                max(m for _, m in r)) for variant, r in runs.items()}
            result.setdefault("before", result["after"])
            rows.append((name, result))
            print(f"  measured {name}", file=sys.stderr, flush=True)
    before = ("Keras loader" if args.baseline is None else f"baseline {args.baseline}")
    if args.after_only:
        before = "= after"
    print(f"loihi-studio on {MODEL.name} ({os.cpu_count()} CPUs; wall p50/max over "
          f"{args.repeats} runs, simulate {args.sim_repeats}; peak RSS; before: {before})")
    head = (f"{'command':<18} {'before p50':>10} {'max':>6} {'RSS MiB':>8}   "
            f"{'after p50':>9} {'max':>6} {'RSS MiB':>8}   {'speed-up':>8} {'target':>7}")
    print(head)
    print("-" * len(head))
    for name, r in rows:
        (b50, bmax, brss), (a50, amax, arss) = r["before"], r["after"]
        target = TARGETS.get(name)
        mark = "" if target is None else (f"<{target:g} s " + ("ok" if a50 < target else "MISS"))
        print(f"{name:<18} {b50:>9.2f}s {bmax:>5.2f}s {brss:>8.0f}   {a50:>8.2f}s {amax:>5.2f}s "
              f"{arss:>8.0f}   {b50 / a50:>7.1f}x {mark:>7}")


if __name__ == "__main__":
    main()
