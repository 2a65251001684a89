"""The one safe way the platform reads YAML (config, ``--risk-config``, YAML strategies).

Every refusal is a ``YamlInputError`` (an ``InvalidInput``) whose message is one line,
``<file>, line N, column M: <what>``, so the CLI prints it and exits 2:

* a path that is not a regular file (a FIFO, ``/dev/zero``, a directory) is refused from
  ``os.stat`` *before* it is opened, so nothing blocks; a file above ``MAX_YAML_BYTES`` is refused;
* bytes that are not UTF-8 are refused with their line, column and byte offset;
* aliases and anchors are refused ("billion laughs" cannot expand), and so is nesting deeper than
  ``MAX_YAML_DEPTH`` -- checked while composing, before anything recursive can run deep;
* duplicate mapping keys are refused with both lines;
* non-finite numbers (``.inf``, ``.nan``, ``1e400``) and impossible dates (``2018-02-30``) are
  refused with their key path and line.

``compose_yaml`` returns the node graph (``start_mark`` positions intact) for callers that report
positions; ``construct_yaml`` turns it into Python data.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidInput

MAX_YAML_BYTES = 1 << 20  # 1 MiB
MAX_YAML_DEPTH = 64

_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Plain scalars YAML 1.1 leaves as strings but that read as numbers elsewhere (pydantic): 1e400.
_NUMBERISH = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?")


class YamlInputError(InvalidInput):
    """A refused YAML input, located at ``line``/``column`` (1-based) of ``source``."""

    def __init__(self, source: str, line: int | None, column: int | None, message: str) -> None:
        self.source, self.line, self.column, self.detail = source, line, column, message
        where = str(source)
        if line is not None:
            where += f", line {line}"
            if column is not None:
                where += f", column {column}"
        super().__init__(f"{where}: {message}")


class YamlSyntaxError(YamlInputError):
    """The text is not well-formed YAML (the scanner's or parser's own complaint)."""


def _mark_pos(mark: Any) -> tuple[int | None, int | None]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


# ############# Reading the file ############# #


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_yaml_bytes(path: str | Path, *, max_bytes: int = MAX_YAML_BYTES) -> bytes:
    """The bytes of ``path``, refusing anything but a regular file of at most ``max_bytes``.

    ``OSError`` (missing file, no permission) propagates so callers keep their own wording."""
    p = Path(path).expanduser()
    st = os.stat(p)  # follows symlinks: a link to a FIFO is a FIFO
    if not stat.S_ISREG(st.st_mode):
        raise YamlInputError(str(path), None, None, f"is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > max_bytes:
        raise YamlInputError(str(path), None, None,
                             f"file is {st.st_size} bytes, above the {max_bytes}-byte limit")
    # O_NONBLOCK: should the path have been swapped for a FIFO since the stat, opening cannot block.
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise YamlInputError(str(path), None, None, "is not a regular file")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlInputError(str(path), None, None, f"file is above the {max_bytes}-byte limit")
    return data


def decode_yaml_bytes(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text; other bytes are refused with their line, column and offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise YamlInputError(source, line, column, f"not UTF-8 text (byte 0x{data[e.start]:02x} at "
                                                   f"offset {e.start})") from None


# ############# Composing with the checks ############# #


class _CheckedLoader(yaml.SafeLoader):
    """``SafeLoader`` whose composer refuses aliases, anchors and deep nesting as it goes."""

    def __init__(self, text: str, source: str, max_depth: int) -> None:
        super().__init__(text)
        self._source, self._max_depth, self._depth = source, max_depth, 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise YamlInputError(self._source, *_mark_pos(event.start_mark),
                                 f"YAML aliases (*{event.anchor}) are not allowed")
        if getattr(event, "anchor", None) is not None:
            raise YamlInputError(self._source, *_mark_pos(event.start_mark),
                                 f"YAML anchors (&{event.anchor}) are not allowed")
        nests = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if nests:
            self._depth += 1
            if self._depth > self._max_depth:
                raise YamlInputError(self._source, *_mark_pos(event.start_mark),
                                     f"nested deeper than {self._max_depth} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            if nests:
                self._depth -= 1


def _path_str(path: tuple[Any, ...]) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".") or "top level"


def _check_tree(root: yaml.Node, loader: _CheckedLoader, source: str) -> None:
    """Duplicate keys, non-finite numbers and impossible dates anywhere in the (bounded) graph."""
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Node] = {}
            for k, v in node.value:
                name: Any = k.value if isinstance(k, yaml.ScalarNode) else f"<{k.id}>"
                if isinstance(k, yaml.ScalarNode) and k.tag != _MERGE_TAG:
                    ident = (k.tag, k.value)
                    if ident in seen:
                        first = seen[ident].start_mark.line + 1
                        where = f" in {_path_str(path)}" if path else ""
                        raise YamlInputError(source, *_mark_pos(k.start_mark),
                                             f"key {k.value!r}{where} given twice (lines {first} and "
                                             f"{k.start_mark.line + 1})")
                    seen[ident] = k
                stack.append((k, (*path, name)))
                stack.append((v, (*path, name)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, (*path, i)) for i, v in enumerate(node.value))
        elif isinstance(node, yaml.ScalarNode):
            _check_scalar(node, path, loader, source)


def _check_scalar(node: yaml.ScalarNode, path: tuple[Any, ...], loader: _CheckedLoader, source: str) -> None:
    value = None
    if node.tag == _FLOAT_TAG:
        value = loader.construct_yaml_float(node)
    elif node.tag == _STR_TAG and node.style is None and _NUMBERISH.fullmatch(node.value):
        try:
            value = float(node.value.replace("_", ""))
        except ValueError:
            value = None
    if isinstance(value, float) and not math.isfinite(value):
        raise YamlInputError(source, *_mark_pos(node.start_mark),
                             f"{_path_str(path)}: non-finite number {node.value!r} is not allowed")
    if node.tag == _TIMESTAMP_TAG:
        try:
            loader.construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as e:
            raise YamlInputError(source, *_mark_pos(node.start_mark),
                                 f"{_path_str(path)}: invalid date {node.value!r} ({e})") from None


def _syntax(source: str, e: yaml.YAMLError) -> YamlSyntaxError:
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        return YamlSyntaxError(source, *_mark_pos(mark), f"invalid YAML: {e.problem or e.context or e}")
    if isinstance(e, yaml.reader.ReaderError):
        return YamlSyntaxError(source, None, None, f"invalid YAML: character {e.character!r} at offset "
                                                   f"{e.position}: {e.reason}")
    return YamlSyntaxError(source, None, None, f"invalid YAML: {e}")


def _loader(text: str, source: str, max_depth: int) -> _CheckedLoader:
    if len(text) > MAX_YAML_BYTES:
        raise YamlInputError(source, None, None,
                             f"text is {len(text)} characters, above the {MAX_YAML_BYTES} limit")
    return _CheckedLoader(text, source, max_depth)


def compose_yaml(text: str, source: str = "<yaml>", *, max_depth: int = MAX_YAML_DEPTH) -> yaml.Node | None:
    """The checked node graph of ``text`` (``None`` for an empty document)."""
    try:
        loader = _loader(text, source, max_depth)  # the reader refuses NUL and control characters here
    except yaml.YAMLError as e:
        raise _syntax(source, e) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_tree(node, loader, source)
        return node
    except yaml.YAMLError as e:
        raise _syntax(source, e) from None
    except RecursionError:  # pragma: no cover - the depth limit should make this unreachable
        raise YamlInputError(source, None, None, "nested too deeply") from None
    finally:
        loader.dispose()


def construct_yaml(node: yaml.Node | None, source: str = "<yaml>") -> Any:
    """Python data of a node graph from ``compose_yaml``."""
    if node is None:
        return None
    loader = _CheckedLoader("", source, MAX_YAML_DEPTH)
    try:
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        raise YamlInputError(source, *_mark_pos(e.problem_mark or e.context_mark),
                             f"{e.problem or e.context or e}") from None
    except yaml.YAMLError as e:
        raise YamlInputError(source, *_mark_pos(node.start_mark), str(e)) from None
    except (ValueError, TypeError, OverflowError) as e:
        raise YamlInputError(source, *_mark_pos(node.start_mark), f"cannot read value: {e}") from None
    finally:
        loader.dispose()


def load_yaml_text(text: str, source: str = "<yaml>") -> tuple[Any, yaml.Node | None]:
    """``(data, node)`` of ``text``, both from one checked composition."""
    node = compose_yaml(text, source)
    return construct_yaml(node, source), node


def load_yaml_file(path: str | Path, *, max_bytes: int = MAX_YAML_BYTES) -> tuple[Any, yaml.Node | None]:
    """``(data, node)`` of the YAML file ``path``; every problem is one ``YamlInputError`` line."""
    source = str(path)
    try:
        raw = read_yaml_bytes(path, max_bytes=max_bytes)
    except OSError as e:
        raise YamlInputError(source, None, None, f"cannot read file: {e.strerror or e}") from None
    return load_yaml_text(decode_yaml_bytes(raw, source), source)
