"""Read a report back with ``html.parser``: well-formed nesting, the tables' cell texts, scripts."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"meta", "br", "img", "input", "link", "hr", "col", "source", "wbr", "area", "base", "embed", "track"}


class ReportParser(HTMLParser):
    """Fails on a closing tag that does not close the innermost open element; collects tables."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.table_ids: list[str | None] = []
        self.headings: list[str] = []
        self.scripts = 0
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "table":
            self.tables.append([])
            self.table_ids.append(dict(attrs).get("id"))
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "script":
            self.scripts += 1
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._in_title:
            self.title += data


def parse_report(page: str) -> ReportParser:
    p = ReportParser()
    p.feed(page)
    p.close()
    assert not p.errors, p.errors[:5]
    assert p.stack == [], f"unclosed elements: {p.stack}"
    return p


def table_with_header(p: ReportParser, first: str) -> list[list[str]]:
    """The first table whose header row starts with ``first``."""
    for t in p.tables:
        if t and t[0] and t[0][0] == first:
            return t
    raise AssertionError(f"no table headed {first!r}")


def facts(p: ReportParser) -> dict[str, str]:
    """Every two-cell row (key/value tables: facts and metrics) as a dict."""
    out: dict[str, str] = {}
    for t in p.tables:
        for row in t:
            if len(row) == 2:
                out.setdefault(row[0], row[1])
    return out
