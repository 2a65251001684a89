"""Turn what sources produce into a raw frame for the validator, without judging the content.

Everything is kept as close to the source as possible (CSV as text, JSON values as given) so that
``validation.validate_bars`` can classify bad content with a rule code. Only a file that cannot be
read at all raises ``InvalidInput``, with a one-line reason naming the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import InvalidInput
from .schema import OHLCV_COLUMNS
from .validation import MALFORMED_COLUMN

# yfinance daily CSV: a "Date" column like "2019-03-01 00:00:00-05:00" (exchange-local trading date).
_LOCAL_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2})$")
_LOCAL_STAMP_PL = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?[+-]\d{2}:?\d{2}$"
_ZERO_OFFSET = r"[+-]00:?00$"


# Limits that keep one bad file from taking the machine down (a 2 GB sparse file used to end in a
# polars panic or SIGABRT). Files above MAX_BAR_FILE_BYTES are refused before they are opened;
# TRADING_MAX_BAR_FILE_MB raises or lowers that limit for one run. CSV and Parquet are read in
# batches of BAR_BATCH_ROWS rows (``BarFileBatches``), so the file's text is never held whole.
MAX_BAR_FILE_BYTES = 2 * 1024 * 1024 * 1024
BAR_BATCH_ROWS = 250_000
MAX_BAR_FILE_ENV = "TRADING_MAX_BAR_FILE_MB"
# JSON is parsed into Python objects (many times the file size in memory): a lower limit.
MAX_JSON_BYTES = 64 * 1024 * 1024
# The pure-Python fallback for ragged CSV rows holds every cell as a Python string.
MAX_RAGGED_CSV_BYTES = 64 * 1024 * 1024
# Rows and columns a bar file may carry (also bounds what a compressed Parquet file expands to).
MAX_BAR_ROWS = 20_000_000
MAX_BAR_COLUMNS = 256
MAX_PARQUET_DECODED_BYTES = 4 * 1024 * 1024 * 1024
_SNIFF_BYTES = 4096


def read_bar_file(path: str | Path, *, max_bytes: int | None = None) -> pl.DataFrame:
    """Read a CSV, Parquet or ccxt-style JSON file of bars as a raw frame (CSV cells as text).

    Column names are kept as written; the validator matches them (case, aliases) and reports it.
    A yfinance daily CSV's exchange-local "Date" stamps become the trading date at 00:00 UTC.

    Only regular files are read: a FIFO, a device (``/dev/zero``) or a directory is refused after
    an ``os.stat`` that never opens it (opening a FIFO would block), and so is a file larger than
    ``max_bytes`` (default ``MAX_BAR_FILE_BYTES``, or ``$TRADING_MAX_BAR_FILE_MB``). Every refusal
    is an ``InvalidInput`` whose message is one line naming the file.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    size = check_bar_file(p, max_bytes=max_bytes)
    if suffix in (".csv", ".txt", ".tsv"):
        return _localise_trading_dates(_guard(p, "CSV", lambda: _read_csv(p, size)))
    if suffix in (".parquet", ".pq"):
        return _guard(p, "Parquet", lambda: _read_parquet(p))
    if suffix == ".json":
        if size > MAX_JSON_BYTES:
            raise InvalidInput(f"{p}: {_human(size)} is over the {_human(MAX_JSON_BYTES)} limit for JSON bar "
                               f"files; convert it to CSV or Parquet")
        return _guard(p, "JSON", lambda: _read_json(p))
    raise InvalidInput(f"{p}: unsupported file type {suffix!r}; expected .csv, .parquet or .json")


class StreamUnreadable(Exception):  # noqa: N818 - internal signal, never shown
    """The batched reader could not read the file (ragged rows, odd quoting): read it whole."""


class BarFileBatches:
    """A CSV or Parquet bar file as consecutive raw frames of at most ``batch_rows`` rows.

    Each iteration reads the file again from the start (the validator reads it once; the
    quarantine a second time, only for the rows it keeps as received). Frames are what
    ``read_bar_file`` would return for the same rows (CSV cells as text, yfinance daily stamps
    localised by the same rule decided over the whole file), so validation gives the same report.
    A reader failure raises ``StreamUnreadable``; more than ``MAX_BAR_ROWS`` rows ``InvalidInput``.
    """

    def __init__(self, path: Path, kind: str, batch_rows: int) -> None:
        self.path, self.kind, self.batch_rows = path, kind, batch_rows
        self._localise: tuple[str, bool] | None = None

    def __iter__(self) -> Iterator[pl.DataFrame]:
        seen = 0
        try:
            for batch in self._read():
                seen += batch.height
                if seen > MAX_BAR_ROWS:
                    raise _too_many_rows(self.path, MAX_BAR_ROWS)
                yield self._localised(batch)
        except InvalidInput:
            raise
        except (Exception, pl.exceptions.PanicException) as e:  # noqa: BLE001 - any reader failure
            raise StreamUnreadable(_first_line(e)) from None

    def raw_json(self, row_ids: pl.Series) -> pl.DataFrame:
        """The rows ``row_ids`` as received, one JSON object each (the quarantine's ``raw``)."""
        from .validation import raw_json

        wanted = row_ids.sort()
        parts: list[pl.DataFrame] = []
        offset = 0
        for batch in self:
            if wanted.len() and int(wanted[-1]) < offset:
                break
            parts.append(raw_json(batch, wanted, offset))
            offset += batch.height
        return pl.concat(parts) if parts else pl.DataFrame(schema={"row_id": pl.Int64, "raw": pl.Utf8})

    def _read(self) -> Iterator[pl.DataFrame]:
        if self.kind == "Parquet":
            import pyarrow.parquet as pq

            for rb in pq.ParquetFile(self.path).iter_batches(batch_size=self.batch_rows):
                yield pl.from_arrow(rb)  # type: ignore[misc]
            return
        lf = pl.scan_csv(self.path, infer_schema=False, encoding="utf8-lossy")
        yield from lf.collect_batches(chunk_size=self.batch_rows)

    def _localised(self, batch: pl.DataFrame) -> pl.DataFrame:
        if self.kind != "CSV":
            return batch
        if self._localise is None:
            col = _date_column(batch)
            self._localise = (col or "", col is not None and _has_local_stamps(
                pl.scan_csv(self.path, infer_schema=False, encoding="utf8-lossy").select(pl.col(col)), col))
        col, yes = self._localise
        return _localise_column(batch, col) if yes else batch


def open_bar_batches(path: str | Path, *, batch_rows: int = BAR_BATCH_ROWS,
                     max_bytes: int | None = None) -> BarFileBatches | None:
    """A CSV or Parquet file, checked like ``read_bar_file`` (kind, size, binary content, Parquet
    footer), as ``BarFileBatches``; ``None`` for a kind read whole (JSON) or an empty file."""
    p = Path(path)
    suffix = p.suffix.lower()
    size = check_bar_file(p, max_bytes=max_bytes)
    if batch_rows < 1:
        raise InvalidInput(f"batch size {batch_rows}: expected a whole number of rows >= 1")
    if suffix in (".csv", ".txt", ".tsv"):
        with open(p, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
        if b"\x00" in head:
            raise InvalidInput(f"{p}: binary content, not a CSV text file")
        if size <= _SNIFF_BYTES and not head.strip():
            return None
        _check_header(p, head)
        return BarFileBatches(p, "CSV", batch_rows)
    if suffix in (".parquet", ".pq"):
        _guard(p, "Parquet", lambda: _check_parquet_footer(p))
        return BarFileBatches(p, "Parquet", batch_rows)
    if suffix == ".json":
        return None
    raise InvalidInput(f"{p}: unsupported file type {suffix!r}; expected .csv, .parquet or .json")


def bar_file_limit() -> int:
    """The size limit for bar files in bytes: ``$TRADING_MAX_BAR_FILE_MB`` or ``MAX_BAR_FILE_BYTES``."""
    raw = os.environ.get(MAX_BAR_FILE_ENV, "").strip()
    if not raw:
        return MAX_BAR_FILE_BYTES
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not math.isfinite(mb) or mb <= 0:
        raise InvalidInput(f"${MAX_BAR_FILE_ENV}={raw!r}: expected a positive number of MiB")
    return int(mb * 1024 * 1024)


def check_bar_file(p: Path, *, max_bytes: int | None = None) -> int:
    """``os.stat`` the path (without opening it) and refuse anything but a regular file within the
    size limit. Returns the size in bytes."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InvalidInput(f"{p}: no such file") from None
    except OSError as e:
        raise InvalidInput(f"{p}: cannot read ({_first_line(e)})") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"{p}: is a directory, not a bar file")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise InvalidInput(f"{p}: is {kind}; only regular files are read")
    limit = bar_file_limit() if max_bytes is None else max_bytes
    if st.st_size > limit:
        raise InvalidInput(f"{p}: {_human(st.st_size)} is over the {_human(limit)} limit for bar files "
                           f"(set ${MAX_BAR_FILE_ENV} to change it)")
    return int(st.st_size)


def _human(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GiB"
    if n >= 1024**2:
        return f"{n / 1024**2:.0f} MiB" if n % 1024**2 == 0 else f"{n / 1024**2:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def _guard(p: Path, kind: str, read: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """Run a reader; whatever escapes it other than ``InvalidInput`` (including a polars panic, which
    is a ``BaseException``, out-of-memory and a recursion overflow) becomes one line."""
    try:
        return read()
    except InvalidInput:
        raise
    except MemoryError:
        raise InvalidInput(f"{p}: not enough memory to read this {kind} file") from None
    except RecursionError:
        raise InvalidInput(f"{p}: {kind} nested too deeply to be bar data") from None
    except OSError as e:
        raise InvalidInput(f"{p}: cannot read ({_first_line(e)})") from None
    except (Exception, pl.exceptions.PanicException) as e:  # noqa: BLE001 - any reader failure: unreadable
        raise InvalidInput(f"{p}: not a readable {kind} file ({type(e).__name__}: {_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def _too_many_rows(p: Path, n: int) -> InvalidInput:
    return InvalidInput(f"{p}: more than {n:,} rows, over the limit for one bar file; split it")


def _read_parquet(p: Path) -> pl.DataFrame:
    """Check the footer (rows, columns, decoded size) before decoding anything."""
    _check_parquet_footer(p)
    return pl.read_parquet(p)


def _check_parquet_footer(p: Path) -> pl.DataFrame:
    """Refuse a Parquet file whose footer says it is not readable or over the limits."""
    try:
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(p).metadata
    except Exception as e:  # noqa: BLE001 - not Parquet at all
        raise InvalidInput(f"{p}: not a readable Parquet file ({_first_line(e)})") from None
    if meta.num_rows > MAX_BAR_ROWS:
        raise _too_many_rows(p, MAX_BAR_ROWS)
    if meta.num_columns > MAX_BAR_COLUMNS:
        raise InvalidInput(f"{p}: {meta.num_columns} columns, over the {MAX_BAR_COLUMNS} limit for a bar file")
    decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if decoded > MAX_PARQUET_DECODED_BYTES:
        raise InvalidInput(f"{p}: decodes to {_human(decoded)}, over the {_human(MAX_PARQUET_DECODED_BYTES)} "
                           f"limit for a bar file")
    return pl.DataFrame()


def _check_header(p: Path, head: bytes) -> None:
    """Refuse a CSV header naming a column twice (``ts,open,open,...``): the reader would rename
    the second copy and keep the first without a word, whichever of the two was meant."""
    line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    try:
        names = next(csv.reader([line]), [])
    except csv.Error:
        return  # odd quoting: the reader's own checks report it
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):  # exact repeats; close/Close is schema.ambiguous_column
        if name in seen:
            raise InvalidInput(f"{p}: column {name!r} appears twice in the header "
                               f"(fields {seen[name]} and {i}); keep one")
        seen[name] = i


def _read_csv(p: Path, size: int) -> pl.DataFrame:
    """Every cell as text. Rows with the wrong number of fields are kept and marked malformed.

    polars reads the file itself (memory-mapped, no second copy in Python); at most
    ``MAX_BAR_ROWS`` rows are taken, so memory stays bounded by the size limit.
    """
    with open(p, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise InvalidInput(f"{p}: binary content, not a CSV text file")
    if size <= _SNIFF_BYTES and not head.strip():
        return pl.DataFrame()
    _check_header(p, head)
    try:
        df = pl.read_csv(p, infer_schema=False, encoding="utf8-lossy", n_rows=MAX_BAR_ROWS + 1)
    except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - ragged rows or odd quoting: csv module
        df = None
    if df is not None:
        if df.height > MAX_BAR_ROWS:
            raise _too_many_rows(p, MAX_BAR_ROWS)
        return df
    if size > MAX_RAGGED_CSV_BYTES:
        raise InvalidInput(f"{p}: rows with differing field counts or odd quoting in a file over "
                           f"{_human(MAX_RAGGED_CSV_BYTES)}; fix the rows or split the file")
    data = p.read_bytes()
    if not data.strip():
        return pl.DataFrame()
    text = data.decode("utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r]
    if not rows:
        return pl.DataFrame()
    if len(rows) - 1 > MAX_BAR_ROWS:
        raise _too_many_rows(p, MAX_BAR_ROWS)
    header, body = rows[0], rows[1:]
    width = len(header)
    if width > MAX_BAR_COLUMNS:
        raise InvalidInput(f"{p}: {width} columns, over the {MAX_BAR_COLUMNS} limit for a bar file")
    cols: list[list[str | None]] = [[] for _ in range(width)]
    malformed: list[str | None] = []
    for r in body:
        ok = len(r) == width
        malformed.append(None if ok else f"{len(r)} fields, header has {width}: {','.join(r)[:120]}")
        for j in range(width):
            cols[j].append((r[j] if r[j] != "" else None) if ok and j < len(r) else None)
    names = _unique_names(header)
    out = pl.DataFrame({n: pl.Series(n, c, dtype=pl.Utf8) for n, c in zip(names, cols, strict=True)})
    return out.with_columns(pl.Series(MALFORMED_COLUMN, malformed, dtype=pl.Utf8))


def _unique_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for h in header:
        n = h or "column"
        while n in names:
            n += " "  # still the same name to the validator, which then reports the ambiguity
        names.append(n)
    return names


def _localise_trading_dates(df: pl.DataFrame) -> pl.DataFrame:
    """yfinance daily "Date" stamps carry the exchange offset (00:00 or 09:30 New York time).

    The bar is the trading date, so keep the local date and stamp it 00:00 UTC; the validator can
    then require daily bars on the midnight grid. Only a text column named "Date" whose stamps
    carry a non-zero offset is touched; anything else is left for the validator to judge.
    """
    col = _date_column(df)
    if col is None or not _has_local_stamps(df.lazy().select(col), col):
        return df
    return _localise_column(df, col)


def _date_column(df: pl.DataFrame) -> str | None:
    col = next((c for c in df.columns if c.replace("\ufeff", "").strip().lower() == "date"), None)
    return col if col is not None and df.schema[col] == pl.Utf8 else None


def _has_local_stamps(lf: pl.LazyFrame, col: str) -> bool:
    """Any stamp of ``col`` carries a non-zero exchange offset: the whole column is localised."""
    v = pl.col(col).str.strip_chars()
    return bool(lf.select((v.str.contains(_LOCAL_STAMP_PL) & ~v.str.contains(_ZERO_OFFSET)).any())
                .collect().item())


def _localise_column(df: pl.DataFrame, col: str) -> pl.DataFrame:
    v = pl.col(col).str.strip_chars()
    local = v.str.contains(_LOCAL_STAMP_PL)
    return df.with_columns(
        pl.when(local).then(pl.concat_str(v.str.slice(0, 10), pl.lit("T00:00:00Z"))).otherwise(pl.col(col))
        .alias(col))


def _read_json(p: Path) -> pl.DataFrame:
    try:
        payload = json.loads(p.read_text(encoding="utf-8", errors="replace"))
    except RecursionError:
        raise InvalidInput(f"{p}: JSON nested too deeply to be bar data") from None
    except (OSError, ValueError) as e:
        raise InvalidInput(f"{p}: not readable JSON ({_first_line(e)})") from None
    if isinstance(payload, list) and all(isinstance(r, list) for r in payload):
        return from_ccxt_ohlcv(payload)
    if isinstance(payload, list) and all(isinstance(r, dict) for r in payload):
        keys = list(dict.fromkeys(k for r in payload for k in r))
        return pl.DataFrame({str(k): _column([r.get(k) for r in payload]) for k in keys})
    kind = type(payload).__name__
    hint = f": {json.dumps(payload)[:120]}" if isinstance(payload, dict) else ""
    raise InvalidInput(f"{p}: expected a JSON list of [ms, open, high, low, close, volume] rows, got {kind}{hint}")


def _column(values: list[Any]) -> pl.Series:
    """Numbers stay numbers (NaN and inf kept), anything mixed becomes text for the validator."""
    if all(v is None or (isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**63) for v in values):
        return pl.Series(values, dtype=pl.Int64)
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        return pl.Series([None if v is None else float(v) for v in values], dtype=pl.Float64)
    return pl.Series([None if v is None else _text(v) for v in values], dtype=pl.Utf8)


def _text(v: Any) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v if isinstance(v, str) else json.dumps(v)


def from_ccxt_ohlcv(rows: list[list[Any]]) -> pl.DataFrame:
    """ccxt ``fetch_ohlcv`` output ([ms, o, h, l, c, v] rows) as a raw frame.

    Values keep their types (some exchanges send strings); rows of the wrong length are kept and
    marked malformed so the validator quarantines them instead of losing them.
    """
    width = len(OHLCV_COLUMNS)
    malformed: list[str | None] = []
    fixed: list[list[Any]] = []
    for r in rows:
        if isinstance(r, list | tuple) and len(r) == width:
            fixed.append(list(r))
            malformed.append(None)
        else:
            fixed.append([None] * width)
            malformed.append(f"row of {len(r) if isinstance(r, list | tuple) else type(r).__name__} "
                             f"field(s), expected {width}: {json.dumps(r, default=str)[:120]}")
    cols = list(zip(*fixed, strict=True)) if fixed else [() for _ in range(width)]
    df = pl.DataFrame({name: _column(list(c)) for name, c in zip(OHLCV_COLUMNS, cols, strict=True)})
    if any(m is not None for m in malformed):
        df = df.with_columns(pl.Series(MALFORMED_COLUMN, malformed, dtype=pl.Utf8))
    return df


def from_yfinance_history(df: Any, *, daily: bool | None = None) -> pl.DataFrame:
    """yfinance ``Ticker.history`` / ``download`` output as a raw frame (ts Datetime ms UTC).

    Daily bars (index named "Date", or ``daily=True``) become the exchange-local trading date at
    00:00 UTC, whatever time of day Yahoo stamped (00:00 or 09:30 New York); intraday bars keep
    their exact open instant in UTC. Adj Close, Dividends and Stock Splits are not bars and are
    left out; NaN rows (action dates) are kept for the validator to quarantine.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidInput(f"from_yfinance_history expects a pandas DataFrame, got {type(df).__name__}")
    pdf = df
    if isinstance(pdf.columns, pd.MultiIndex):  # yf.download: (Price, Ticker)
        tickers = {c[1] for c in pdf.columns if len(c) > 1}
        if len(tickers) > 1:
            raise InvalidInput(f"from_yfinance_history takes one ticker's frame, got {sorted(tickers)}")
        pdf = pdf.copy()
        pdf.columns = [c[0] for c in pdf.columns]
    idx = pdf.index
    if not isinstance(idx, pd.DatetimeIndex):
        date_col = next((c for c in pdf.columns if str(c).lower() in ("date", "datetime")), None)
        if date_col is None:
            out = {str(c).lower(): pdf[c] for c in pdf.columns}
            return pl.from_pandas(pd.DataFrame(out).reset_index(drop=True)) if len(out) else pl.DataFrame()
        idx = pd.DatetimeIndex(pd.to_datetime(pdf[date_col], errors="coerce", utc=False))
        idx.name = str(date_col)
    if daily is None:
        daily = str(idx.name).lower() == "date"
    if idx.tz is None:
        ts = pl.Series("ts", idx.values).cast(pl.Datetime("ms"))  # naive: the validator rejects it
    elif daily:
        days = idx.tz_localize(None).normalize()
        ms = (days - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
        ts = pl.Series("ts", ms.to_numpy(), dtype=pl.Int64).cast(pl.Datetime("ms", "UTC"))
    else:
        ms = (idx.tz_convert("UTC") - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(milliseconds=1)
        ts = pl.Series("ts", ms.to_numpy(), dtype=pl.Int64).cast(pl.Datetime("ms", "UTC"))
    cols: dict[str, pl.Series] = {"ts": ts}
    lower = {str(c).strip().lower(): c for c in pdf.columns}
    for name in OHLCV_COLUMNS[1:]:
        if name in lower:
            src = pdf[lower[name]]
            try:
                cols[name] = pl.Series(name, src.to_numpy(dtype="float64", na_value=float("nan")),
                                       dtype=pl.Float64)
            except (TypeError, ValueError):  # text in a price column: keep it as text
                cols[name] = pl.Series(name, [None if v is None else str(v) for v in src.tolist()],
                                       dtype=pl.Utf8)
    return pl.DataFrame(cols)
