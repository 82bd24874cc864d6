"""``loihi-studio map MODEL.keras [--config CFG.json] [--auto-block-shapes] [--json]``.

Maps the converted network onto Loihi cores and prints every block's use of the four
per-core resources, the cores and chips used, and any over-limit errors (exit code 2).
``--json`` adds ``placement``: each block's tile on the board's mesh (:func:`loihi_core.cost.place`).
"""

from __future__ import annotations

import argparse
import json

from ._common import add_model_arguments, check_model_and_config_paths, load_model_and_config, positive_int


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "map", help="map the network onto Loihi cores and show per-core resource use",
        description="Cut each on-chip layer into blocks (one per core) by its block_shape, count "
                    "compartments, input/output axons and synapse bits exactly as NengoLoihi "
                    "does, and allocate cores and chips.")
    add_model_arguments(parser)
    parser.add_argument("--auto-block-shapes", action="store_true",
                        help="ignore the config's block shapes and choose the fewest-core ones")
    parser.add_argument("--n-chips", type=positive_int, default=None, metavar="N",
                        help="board size in chips (1-32; default: as many as needed)")
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..mapping import map_to_chip

    check_model_and_config_paths(args)
    _, config, network = load_model_and_config(args)
    chip = map_to_chip(network, auto_block_shapes=args.auto_block_shapes,
                       n_chips=args.n_chips if args.n_chips is not None else config.n_chips,
                       raise_on_overflow=False, discretize=False)
    if args.json:
        from ..cost import place

        print(json.dumps({**chip.to_dict(), "placement": place(chip).to_dict()}, indent=2))
    else:
        print(format_mapping(chip))
    return 2 if chip.errors else 0


def format_mapping(chip) -> str:
    from ..chip import RESOURCE_LIMITS, RESOURCES

    lines = [f"{'layer':<14} {'block':>5} {'core':>5} {'chip':>4} "
             + " ".join(f"{r:>22}" for r in RESOURCES)]
    for b in chip.blocks:
        u = b.utilization()
        cells = []
        for r in RESOURCES:
            used, limit = u[r]
            mark = "!" if used > limit else " "
            cells.append(f"{used:>9}/{limit:<7} {used / limit:>4.0%}{mark}")
        lines.append(f"{b.layer:<14} {b.index:>5} {b.core:>5} {b.chip:>4} " + " ".join(cells))
    shapes = ", ".join(f"{k} {tuple(v)}" for k, v in chip.block_shapes.items())
    lines.append("")
    lines.append(f"{chip.n_cores} cores on {chip.n_chips} chip(s); block shapes: {shapes}")
    lines.append("limits per core: " + ", ".join(f"{r} {RESOURCE_LIMITS[r]}" for r in RESOURCES))
    for err in chip.errors:
        lines.append(f"error: {err}")
    return "\n".join(lines)
