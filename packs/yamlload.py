"""Reading YAML as JSON: only JSON values, a bounded size, problems at the field path.

A pack is JSON data however it is written, and it is stored, diffed and checkpointed as JSON. Plain
``yaml.safe_load`` builds more than that, and builds it unbounded:

- aliases: ``*a`` re-uses an anchored node, so a 3.5 KB document can stand for 10^7 values
  (the "billion laughs"); safe_load shares the objects, so the parse is quick, but everything after
  it (validation, ``json.dumps`` for storage, the policy page) walks all 10^7;
- an anchor used inside itself builds a recursive object no JSON can hold;
- YAML 1.1 types: an unquoted ``2026-01-01`` is a ``date``, ``!!binary`` bytes, ``!!set`` a set,
  ``1:`` an integer key; each is accepted by a free-form field and fails later (a 500 on upload).

``JsonLoader`` keeps PyYAML's parser and resolver (libyaml's when installed: ten times faster on
the sample packs) and replaces construction: it first measures the node graph (values counted as
expanded, each use of an alias counts its whole subtree; cycles found), then builds plain dicts,
lists and scalars, refusing everything else with the JSON path of the value.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from packs.jsonvalues import (
    A_DATE,
    DEFAULT_MAX_DEPTH,
    INT_MAX,
    INT_MIN,
    INTEGER_RANGE,
    MAX_PROBLEMS,
    NOT_FINITE,
)
from packs.jsonvalues import Path as ValuePath

DEFAULT_MAX_VALUES = 100_000
"""Values (mapping entries, list items, scalars) a document may expand to; the largest sample pack
has about 4,400. A document over the limit is refused before anything is built."""

_TAG = "tag:yaml.org,2002:"
MERGE = _TAG + "merge"
_REFUSED = {
    _TAG + "timestamp": A_DATE,
    _TAG + "binary": "binary data (!!binary) is not allowed here; use a string",
    _TAG + "set": "a set (!!set) is not allowed here; use a list",
    _TAG + "omap": "an ordered map (!!omap) is not allowed here; use a mapping",
    _TAG + "pairs": "pairs (!!pairs) are not allowed here; use a mapping",
}
_KEY_KINDS = {
    _TAG + "int": "a number",
    _TAG + "float": "a number",
    _TAG + "bool": "a boolean",
    _TAG + "null": "null",
    _TAG + "timestamp": "a date",
}


class DocumentProblems(Exception):
    """The document cannot be read as JSON: each problem with its path (and the line it starts on)."""

    def __init__(self, problems: list[tuple[ValuePath, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


class _Limit(Exception):
    """Stop building: a limit was reached (the problem is already recorded)."""


def _line(node: Node) -> str:
    mark = node.start_mark
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


class _JsonConstruction:
    """The construction half of ``JsonLoader`` (mixed into a PyYAML loader class)."""

    max_values = DEFAULT_MAX_VALUES
    max_depth = DEFAULT_MAX_DEPTH
    _problems: list[tuple[ValuePath, str]]
    _composing = 0

    # -- composition (the pure-Python parser only; libyaml stops at 1000 levels on its own) ---------
    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._composing += 1
        try:
            if self._composing > self.max_depth + 1:
                raise DocumentProblems([((), f"nested deeper than {self.max_depth} levels")])
            return super().compose_node(parent, index)  # type: ignore[misc, no-any-return]
        finally:
            self._composing -= 1

    # -- construction ------------------------------------------------------------------------------
    def construct_document(self, node: Node) -> Any:
        self._problems = []
        self._measure(node)
        try:
            data = self._build(node, (), 1)
        except _Limit:
            data = None
        if self._problems:
            raise DocumentProblems(self._problems)
        return data

    def _measure(self, root: Node) -> None:
        """Count the values ``root`` expands to and find recursive aliases, without expanding."""
        sizes: dict[int, int] = {}
        entered: set[int] = set()
        stack: list[tuple[Node, ValuePath, bool]] = [(root, (), False)]
        while stack:
            node, path, done = stack.pop()
            key = id(node)
            children = _children(node)
            if done:
                sizes[key] = min(1 + sum(sizes[id(child)] for _, child in children), self.max_values + 1)
                continue
            if key in sizes:
                continue
            if key in entered:
                raise DocumentProblems(
                    [
                        (
                            path,
                            f"a recursive alias (an anchor used inside itself) is not allowed here{_line(node)}",
                        )
                    ]
                )
            entered.add(key)
            stack.append((node, path, True))
            stack.extend((child, (*path, step), False) for step, child in reversed(children))
        if sizes[id(root)] > self.max_values:
            raise DocumentProblems(
                [((), f"the document expands to more than {self.max_values} values "
                      "(each use of an alias counts what it stands for)")]
            )  # fmt: skip

    def _refuse(self, path: ValuePath, message: str) -> None:
        self._problems.append((path, message))
        if len(self._problems) >= MAX_PROBLEMS:
            raise _Limit

    def _build(self, node: Node, path: ValuePath, depth: int) -> Any:
        if node.tag in _REFUSED:
            self._refuse(path, _REFUSED[node.tag])
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if depth > self.max_depth:
            self._refuse((), f"nested deeper than {self.max_depth} levels{_line(node)}")
            raise _Limit
        if isinstance(node, SequenceNode) and node.tag == _TAG + "seq":
            return [self._build(item, (*path, index), depth + 1) for index, item in enumerate(node.value)]
        if isinstance(node, MappingNode) and node.tag == _TAG + "map":
            return self._mapping(node, path, depth)
        self._refuse(path, f"the tag {node.tag} is not allowed here")
        return None

    def _mapping(self, node: MappingNode, path: ValuePath, depth: int) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        own: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:  # ``<<: *defaults``: the anchored mapping's entries, own keys win
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    built = self._build(source, path, depth + 1)
                    if isinstance(built, dict):
                        for name, value in built.items():
                            merged.setdefault(name, value)
                    elif built is not None:
                        self._refuse(path, "a merge (<<) takes a mapping or a list of mappings")
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag != _TAG + "str":
                kind = _KEY_KINDS.get(key_node.tag, "a mapping or a list")
                label = key_node.value if isinstance(key_node, ScalarNode) else "?"
                self._refuse((*path, label), f"a key must be a string, not {kind}; quote it")
                continue
            own[key_node.value] = self._build(value_node, (*path, key_node.value), depth + 1)
        return {**merged, **own} if merged else own

    def _scalar(self, node: ScalarNode, path: ValuePath) -> Any:
        tag = node.tag
        if tag == _TAG + "str":
            return node.value
        if tag == _TAG + "int":
            if len(node.value) > 32:  # far beyond 64 bits; never handed to int() (4300-digit limit)
                self._refuse(path, INTEGER_RANGE)
                return None
            number = self.construct_yaml_int(node)  # type: ignore[attr-defined]
            if not INT_MIN <= number <= INT_MAX:
                self._refuse(path, INTEGER_RANGE)
            return number
        if tag == _TAG + "float":
            real = self.construct_yaml_float(node)  # type: ignore[attr-defined]
            if not math.isfinite(real):
                self._refuse(path, NOT_FINITE)
            return real
        if tag == _TAG + "bool":
            return self.construct_yaml_bool(node)  # type: ignore[attr-defined]
        if tag == _TAG + "null":
            return None
        self._refuse(path, f"the tag {tag} is not allowed here")
        return None


def _children(node: Node) -> list[tuple[str | int, Node]]:
    if isinstance(node, SequenceNode):
        return list(enumerate(node.value))
    if isinstance(node, MappingNode):
        pairs: list[tuple[str | int, Node]] = []
        for key, value in node.value:
            step = key.value if isinstance(key, ScalarNode) else "?"
            pairs += [(step, key), (step, value)]
        return pairs
    return []


class PureJsonLoader(_JsonConstruction, yaml.SafeLoader):
    """``JsonLoader`` on PyYAML's pure-Python parser (used when libyaml is not installed)."""


if hasattr(yaml, "CSafeLoader"):

    class JsonLoader(_JsonConstruction, yaml.CSafeLoader):
        """A safe loader (libyaml's parser) that builds only JSON values, bounded: see the module."""

else:  # pragma: no cover - libyaml is part of the PyYAML wheels exops installs
    JsonLoader = PureJsonLoader  # type: ignore[misc, assignment]


def load_yaml(
    text: str,
    *,
    max_values: int = DEFAULT_MAX_VALUES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    loader: type[_JsonConstruction] = JsonLoader,
) -> Any:
    """One YAML document as JSON data; ``DocumentProblems`` when it holds what JSON cannot."""
    reader = loader(text)  # type: ignore[call-arg]
    reader.max_values, reader.max_depth = max_values, max_depth
    try:
        return reader.get_single_data()  # type: ignore[attr-defined]
    finally:
        reader.dispose()  # type: ignore[attr-defined]
