"""Compare freshly written reference fixtures with the committed ones.

    python devtools/reference/compare.py NEW_DIR [OLD_DIR]   (default tests/fixtures/reference)

Ids, grids, positions, answer ids, generated tokens and versions must be equal; float
numbers (log-probabilities, pixel sums) may differ by 1e-5, the last bits a different
CPU's float32 kernels can move. A pixel digest that differs with equal shape and sum is
reported as such. Exit status 1 when any fixture is missing, extra or different.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

FLOAT_TOLERANCE = 1e-5


def differences(new, old, where: str) -> list[str]:
    if isinstance(new, dict) and isinstance(old, dict):
        if new.keys() != old.keys():
            return [f"{where}: keys {sorted(new.keys() ^ old.keys())} differ"]
        found = []
        for key in new:
            if key == "sha256":
                continue  # judged with the pixel sum below
            found += differences(new[key], old[key], f"{where}.{key}")
        if "sha256" in new and new["sha256"] != old["sha256"] and not found:
            print(f"note: {where}: pixel digest differs, shape, sum and first values equal")
        return found
    if isinstance(new, list) and isinstance(old, list):
        if len(new) != len(old):
            return [f"{where}: {len(new)} items, committed {len(old)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(new, old, strict=True))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    if isinstance(new, float) or isinstance(old, float):
        if math.isclose(new, old, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE):
            return []
    elif new == old:
        return []
    return [f"{where}: {new!r}, committed {old!r}"]


def main(new_dir: str, old_dir: str = "tests/fixtures/reference") -> int:
    new = {p.name: p for p in Path(new_dir).glob("*.json")}
    old = {p.name: p for p in Path(old_dir).glob("*.json")}
    problems = [f"{name}: not written" for name in sorted(old.keys() - new.keys())]
    problems += [f"{name}: not committed" for name in sorted(new.keys() - old.keys())]
    for name in sorted(new.keys() & old.keys()):
        problems += differences(
            json.loads(new[name].read_text()), json.loads(old[name].read_text()), name
        )
    for line in problems[:50]:
        print(line)
    print(f"{len(new)} fixtures written, {len(old)} committed, {len(problems)} differences")
    return 1 if problems or not new else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
