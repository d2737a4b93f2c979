"""Load a YAML file into plain dicts and lists while remembering the line of every key and item."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mailflow.errors import DefinitionError

Key = str | int
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader (C; ~10× faster at start-up, where every policy file is read) when
PyYAML was built with it, else the pure-Python one: the same nodes, marks and data."""
"""One step of a path into the document: a mapping key or a list index."""


@dataclass(frozen=True)
class YamlSource:
    """A parsed YAML document (`data`) plus the 1-based line of each path into it.

    `lines[("transitions", 2, "dest")]` is the line of the `dest:` key of the third transition;
    `lines[("states", 0)]` is the line where the first item of `states` starts.
    """

    path: Path
    data: Any
    lines: Mapping[tuple[Key, ...], int] = field(default_factory=dict)

    def line(self, *keys: Key) -> int:
        """The line of `keys`, or of its nearest ancestor that has one (1 for the document)."""
        path = tuple(keys)
        while path:
            found = self.lines.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return self.lines.get((), 1)

    def where(self, *keys: Key) -> str:
        """`file:line` for `keys`, the prefix of every message about this document."""
        return f"{self.path}:{self.line(*keys)}"

    def error(self, message: str, *keys: Key) -> DefinitionError:
        """A `DefinitionError` saying `file:line: message` for the node at `keys`."""
        return DefinitionError(f"{self.where(*keys)}: {message}")


def load_yaml(path: Path) -> YamlSource:
    """Read and parse `path`; YAML syntax errors raise `DefinitionError` with `file:line`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DefinitionError(f"{path}: el archivo no existe") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{path}: no se puede leer el archivo: {exc}") from exc
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path) -> YamlSource:
    """Parse `text` (named `path` in messages) into plain data plus a line table; raises
    `DefinitionError` (`file:line: …`) for invalid YAML, a bad or duplicate key, a recursive
    alias. Parsed with libyaml when present; a text it refuses is parsed again by the
    pure-Python parser, whose messages and lines (the start of an unclosed bracket, not the
    end of the file) are the ones people get."""
    try:
        return _parse(text, path, _LOADER)
    except DefinitionError:
        if _LOADER is yaml.SafeLoader:
            raise
        return _parse(text, path, yaml.SafeLoader)


def _parse(text: str, path: Path, loader_class: Any) -> YamlSource:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple[Key, ...], int] = {}
        if node is None:
            return YamlSource(path, None, lines)
        lines[()] = node.start_mark.line + 1
        data = _build(loader, node, (), lines, path, frozenset())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "error de sintaxis"
        if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
            problem += f" ({exc.context}, línea {exc.context_mark.line + 1})"
        raise DefinitionError(f"{path}:{line}: YAML inválido: {problem}") from exc
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}:1: YAML inválido: {exc}") from exc
    finally:
        loader.dispose()
    return YamlSource(path, data, lines)


def _build(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: tuple[Key, ...],
    lines: dict[tuple[Key, ...], int],
    source: Path,
    ancestors: frozenset[int],
) -> Any:
    if id(node) in ancestors:
        raise DefinitionError(f"{source}:{node.start_mark.line + 1}: alias recursivo no admitido")
    inside = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise DefinitionError(f"{source}:{line}: clave no válida {key!r}")
            if key in result:
                raise DefinitionError(f"{source}:{line}: clave duplicada {key!r}")
            lines[(*path, key)] = line
            result[key] = _build(loader, value_node, (*path, key), lines, source, inside)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_build(loader, item, (*path, index), lines, source, inside))
        return items
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # e.g. a timestamp like 2026-13-01: not a date
        line = node.start_mark.line + 1
        raise DefinitionError(f"{source}:{line}: valor inválido {node.value!r}: {exc}") from exc
