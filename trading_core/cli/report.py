"""``trading report RUN_OR_SESSION --out FILE.html``: the HTML report of a backtest or a session.

A stored backtest run id (``trading backtest`` prints it) or a paper session id (``ps-...``).
The page is self-contained (plotly.js inlined, no network) and written atomically. Heavy imports
(Polars, Plotly, DuckDB) happen in the handler, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import re

from ..errors import InvalidInput

# A run id is a uuid hex from the runner (or a name a caller gave): letters, digits, '-', '_', '.'.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the HTML report of a backtest run or a paper session",
                       description="Metrics, equity and drawdown, monthly returns, trades, regime breakdown, "
                                   "attribution and a buy-and-hold comparison, in one self-contained HTML file.")
    p.add_argument("target", metavar="RUN_OR_SESSION", help="a backtest run id or a paper session id (ps-...)")
    p.add_argument("--out", required=True, metavar="FILE.html", help="where to write the report")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(handler=_run)


def _check_out(out: str) -> None:
    """``--out`` names a file to create or replace -- never a directory, a device (the rename would
    replace ``/dev/null`` itself), a FIFO, or a name with control characters."""
    import os
    import stat
    from pathlib import Path

    if not out.strip() or any(ord(c) < 32 or ord(c) == 127 for c in out):
        raise InvalidInput(f"--out {out!r}: expected a file name without control characters, e.g. report.html")
    try:
        st = os.stat(Path(out).expanduser())
    except FileNotFoundError:
        return
    except OSError as e:
        raise InvalidInput(f"--out {out}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        from ..yaml_io import _kind

        raise InvalidInput(f"--out {out}: is {_kind(st.st_mode)}, not a regular file; name a file such as "
                           "report.html")


def _run(args: argparse.Namespace) -> int:
    from ..analytics.report import load_report_data, render_report, write_report
    from ..config import load_config

    target = args.target.strip()
    if not _ID.fullmatch(target):
        raise InvalidInput(f"report: {args.target!r} is not a backtest run id or a paper session id (ps-...)")
    if target.startswith("ps-"):
        from ..paper.config import check_session_id

        check_session_id(target)
    _check_out(args.out)
    data = load_report_data(target, config=load_config(args.config))
    try:
        path = write_report(render_report(data), args.out)
    except OSError as e:  # read-only place, name too long, no permission, a parent that is a file
        raise InvalidInput(f"--out {args.out}: cannot write the report: {e.strerror or e}") from None
    doc = {"kind": data.kind, "id": data.report_id, "out": str(path), "bytes": path.stat().st_size,
           "bars": int(data.equity.size), "trades": data.trades.height}
    if args.json:
        print(json.dumps(doc, sort_keys=True))
    else:
        print(f"{data.kind} {data.report_id}: report written to {path} ({doc['bars']} bars, {doc['trades']} trades)")
    return 0
