"""Run every benchmark one after another (each in its own process, so none inherits another's memory or threads)
and print one combined JSON object.

    python benchmarks/run_all.py [--quick] [--model-dir DIR] [--only encode,query,size,index] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _common as c

BENCHMARKS = ("encode", "query", "size", "index", "startup", "s3", "hostile")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of " + ", ".join(BENCHMARKS))
    p.add_argument("--out", type=Path, default=None, help="also write the combined JSON here")
    args = p.parse_args(argv)
    c.model_dir(args.model_dir)  # build/verify once, before any timing
    combined: dict = {"machine": c.machine(), "quick": args.quick, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    status = 0
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        cmd = [sys.executable, str(c.BENCH_DIR / f"bench_{name}.py")]
        if args.quick:
            cmd.append("--quick")
        if args.model_dir:
            cmd += ["--model-dir", str(args.model_dir)]
        c.log(f"running {' '.join(cmd[1:])}")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
        if proc.returncode != 0:
            combined[name] = {"error": f"exit code {proc.returncode}"}
            status = 1
            continue
        combined[name] = json.loads(proc.stdout[proc.stdout.index("{"):])
        combined[name]["wall_s"] = round(time.perf_counter() - t0, 1)
    out = json.dumps(combined, indent=2, ensure_ascii=False)
    print(out)
    if args.out:
        args.out.write_text(out + "\n", "utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
