"""Side-by-side table of `simulsa eval` reports (the paper's table: SFT-only vs SFT+SimulSA).

    python -m simulsa.runtime.eval_compare ev_sft ev_simulsa --names SFT,SFT+SimulSA [--out table.md]

Rows are the configurations both reports share (offline last); for each model the columns are
BLEU, LAAL (ms) and normalized erasure, the first of which the paper reported.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.files import write_text_atomic

COLUMNS = (("BLEU", "{:.2f}"), ("LAAL", "{:.0f}"), ("erasure", "{:.3f}"))


def read_report(folder: Path) -> dict:
    path = Path(folder) / "report.json"
    if not path.is_file():
        raise SimulsaError(f"{folder} holds no report.json; give folders written by `simulsa eval --out`")
    return json.loads(path.read_text(encoding="utf-8"))


def _order(config: dict) -> tuple[float, int]:
    return (math.inf if config["chunk_ms"] == math.inf else config["chunk_ms"], config["hold"])


def compare_table(reports: dict[str, dict]) -> str:
    """{model name: report} -> a markdown table over the configurations every report has."""
    shared = set.intersection(*(set(r["configs"]) for r in reports.values()))
    if not shared:
        raise SimulsaError("the reports share no configuration; run them with the same --chunk-ms/--hold/--policy")
    first = next(iter(reports.values()))["configs"]
    names = sorted(shared, key=lambda key: _order(first[key]))
    head = "| chunk | hold | " + " | ".join(f"{model} {col}" for model in reports for col, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (2 + len(reports) * len(COLUMNS))]
    for key in names:
        config = first[key]
        chunk = "offline" if config["chunk_ms"] == math.inf else f"{config['chunk_ms']:.0f} ms"
        cells = [fmt.format(r["configs"][key][col]) for r in reports.values() for col, fmt in COLUMNS]
        lines.append(f"| {chunk} | {config['hold'] if chunk != 'offline' else '–'} | " + " | ".join(cells) + " |")
    rows = {name: r["rows"] - r.get("skipped", 0) for name, r in reports.items()}
    return "\n".join(lines) + f"\n\nUtterances per configuration: {rows}.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Side-by-side table of simulsa eval reports.")
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--names", help="comma-separated model names (default: the folder names)")
    parser.add_argument("--out", type=Path, help="write the table here too")
    args = parser.parse_args()
    names = args.names.split(",") if args.names else [f.name for f in args.folders]
    if len(names) != len(args.folders):
        raise SystemExit(f"--names gives {len(names)} names for {len(args.folders)} folders")
    table = compare_table({name: read_report(folder) for name, folder in zip(names, args.folders)})
    if args.out:
        write_text_atomic(args.out, table)
    print(table)


if __name__ == "__main__":
    main()
