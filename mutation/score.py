"""Mutation score per core module, from the results mutmut left in mutants/ (`make mutation` prints it).

    python mutation/score.py                     # the table, Markdown, one row per module
    python mutation/score.py --list              # ... and the surviving mutants that are not listed as equivalent
    python mutation/score.py --module quantize   # one module
    python mutation/score.py --exclude 'vqlearn.quantize.x_rotation_trick*'   # leave some functions' mutants out

A mutant is *killed* when a test failed with it in place (mutmut's "killed", or it hung or crashed: "timeout",
"segfault"). *Equivalent* mutants (mutation/equivalent.md, one line each with the reason) cannot change behaviour
and are left out of the score: score = killed / (mutants - equivalent). A mutant that no test runs ("no tests")
or that every test passes ("survived") counts against the score.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          -11: "segfault", -9: "segfault"}
NAME = re.compile(r"(vqlearn\.[\w.ǁ]+__mutmut_\d+)")


def equivalent_mutants(path: Path = HERE / "equivalent.md") -> set[str]:
    """The mutant names listed in ``path`` (the first mutant name on each line)."""
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        match = NAME.search(line)
        if match:
            names.add(match.group(1))
    return names


def results(mutants: Path) -> dict[str, dict[str, int | None]]:
    """``{module: {mutant name: exit code}}`` from mutmut's ``*.py.meta`` files."""
    by_module = {}
    for meta in sorted((mutants / "vqlearn").glob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            by_module[meta.name.removesuffix(".py.meta")] = codes
    return by_module


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"), help="mutmut's working folder")
    parser.add_argument("--exclude", action="append", default=[], help="fnmatch pattern of mutant names to leave out")
    parser.add_argument("--module", help="only this module (e.g. quantize)")
    parser.add_argument("--list", action="store_true", help="list the surviving non-equivalent mutants")
    args = parser.parse_args(argv)

    by_module = results(args.mutants)
    if args.module:
        by_module = {m: codes for m, codes in by_module.items() if m == args.module}
    if not by_module:
        raise SystemExit(f"no mutmut results in {args.mutants}/vqlearn; run `make mutation` first")
    equivalent = equivalent_mutants()
    print("| module | mutants | killed | survived | no tests | not run | equivalent | score |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    survivors = []
    for module, codes in by_module.items():
        codes = {k: v for k, v in codes.items() if not any(fnmatch.fnmatch(k, p) for p in args.exclude)}
        count = Counter()
        for name, code in codes.items():
            if name in equivalent:
                count["equivalent"] += 1
            elif code in KILLED:
                count["killed"] += 1
            elif code in (5, 33):
                count["no tests"] += 1
                survivors.append((name, "no tests"))
            elif code is None:
                count["not run"] += 1
            else:
                count["survived"] += 1
                survivors.append((name, "survived" if code == 0 else f"exit code {code}"))
        scored = len(codes) - count["equivalent"] - count["not run"]
        score = f"{100 * count['killed'] / scored:.1f} %" if scored else "-"
        print(f"| {module}.py | {len(codes)} | {count['killed']} | {count['survived']} | {count['no tests']} "
              f"| {count['not run']} | {count['equivalent']} | {score} |")
    if args.list:
        print()
        for name, why in sorted(survivors):
            print(f"{name}  ({why})")


if __name__ == "__main__":
    main()
