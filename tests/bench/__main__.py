"""Run every benchmark and write the JSON report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.bench import (
    bench_cart,
    bench_console,
    bench_gateway,
    bench_kiosk,
    bench_latency,
    bench_ledger,
    bench_qr,
    bench_scale,
)

BENCHES = {
    "e2e_latency": bench_latency.run,
    "cart_delivery": bench_cart.run,
    "gateway_throughput": bench_gateway.run,
    "scale_parsers": bench_scale.run,
    "qr_decode": bench_qr.run,
    "kiosk_hostile": bench_kiosk.run,
    "console": bench_console.run,
    "ledger": bench_ledger.run,
}


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("bench-report.json"))
    ap.add_argument("--only", choices=sorted(BENCHES), action="append", help="run only these")
    args = ap.parse_args()
    report: dict[str, object] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        "figures": {},
    }
    figures: dict[str, object] = {}
    for name in args.only or BENCHES:
        t0 = time.monotonic()
        print(f"bench {name} …", file=sys.stderr, flush=True)
        figures[name] = BENCHES[name]()
        print(f"bench {name}: {json.dumps(figures[name])} ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
    report["figures"] = figures
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
