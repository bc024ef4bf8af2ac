"""The one safe YAML loader: size, alias and depth limits, no duplicate keys, timestamps kept as strings.

PyYAML's ``safe_load`` still expands aliases (a "billion laughs" document is accepted) and turns
unquoted ``2026-05-10`` into a ``date``. Our loader refuses oversized documents, alias bombs,
recursive documents and deep nesting before building objects, and leaves every scalar that looks
like a date or time as the string the author wrote, so schema-aware code decides how to parse it.

Documents are parsed and composed by libyaml (PyYAML's C extension, several times faster than its
pure-Python parser) where PyYAML has a libyaml that bounds nesting itself (0.2.6 or later); the
limits are checked on the composed node graph, where every alias is a second reference to its
anchor's node, so they hold for either parser.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_BYTES = 2 * 1024 * 1024
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 100_000  # after alias expansion: what a consumer walking the data would see
MAX_YAML_DEPTH = 200  # after alias expansion: code walking the data recursively stays far from Python's limit


class YamlError(ValueError):
    """A YAML document that could not be loaded; the message names the source and the reason."""


def _libyaml_parser():
    """PyYAML's C parser when its libyaml stops deep nesting itself (0.2.6 and later refuse more than
    1000 levels): an older libyaml composes nesting by unbounded recursion in C, so a deeply
    nested document would crash the process before any limit of ours could be checked."""
    try:
        from yaml import _yaml
    except ImportError:
        return None
    return yaml.CSafeLoader if _yaml.get_version() >= (0, 2, 6) else None


def _loader_class(base: type) -> type:
    """The safe loader on ``base`` (``yaml.CSafeLoader`` or ``yaml.SafeLoader``)."""

    class Loader(base):
        """SafeLoader without the timestamp resolver, refusing duplicate keys, with alias, size and
        depth limits; the alias budget is the whole stream's (every document of it)."""

        def __init__(self, stream):
            super().__init__(stream)
            self.aliases_seen = 0

        def construct_mapping(self, node, deep=False):
            """A mapping that names a key twice is refused: which value counts is ambiguous (merge keys
            ``<<`` may still be overridden, as YAML intends). Keys are compared as they load, so
            ``1`` and ``0x1``, or ``true`` and ``yes``, are the same key, as they would be in the dict."""
            if isinstance(node, yaml.MappingNode):
                seen: dict = {}
                for key_node, _ in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node)  # a scalar: built now, and kept for the mapping
                    first = seen.setdefault(key, key_node)
                    if first is not key_node:
                        same = (
                            ""
                            if first.value == key_node.value
                            else f" (as {first.value[:80]!r} on line {first.start_mark.line + 1})"
                        )
                        raise YamlError(
                            f"line {key_node.start_mark.line + 1}: duplicate key {key_node.value[:80]!r}{same} in one "
                            "mapping (which value counts is ambiguous)"
                        )
            return super().construct_mapping(node, deep)

        def get_node(self):
            node = super().get_node()
            if node is not None:
                self.aliases_seen = _check_graph(node, self.aliases_seen)
            return node

    # Keep dates and times as the strings the author wrote.
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


_Phase8SafeLoader = _loader_class(_libyaml_parser() or yaml.SafeLoader)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _refuse(node: yaml.Node, reason: str) -> YamlError:
    return YamlError(f"line {node.start_mark.line + 1}: {reason}")


def _check_graph(root: yaml.Node, aliases: int = 0) -> int:
    """Refuse a composed document with more than MAX_YAML_ALIASES aliases, an alias inside the node
    it names (a recursive document), or more than MAX_YAML_NODES nodes or MAX_YAML_DEPTH levels
    once its aliases are expanded. One walk without recursion: each node is visited once, a node
    met again is an alias, and expanded sizes and depths are summed from the children's. ``aliases``
    is the count of the stream's earlier documents; returns the count with this one's."""
    size: dict[int, int] = {}  # id(node) -> nodes once expanded, for each finished node
    depth: dict[int, int] = {}  # id(node) -> levels once expanded
    open_ids = {id(root)}
    children = _children(root)
    stack = [(root, children, iter(children))]
    while stack:
        node, children, pending = stack[-1]
        for child in pending:
            key = id(child)
            if key in open_ids:
                raise _refuse(child, "an alias refers to a node that contains it (refused: a recursive document)")
            if key in size:
                aliases += 1
                if aliases > MAX_YAML_ALIASES:
                    raise _refuse(
                        child, f"more than {MAX_YAML_ALIASES} aliases (refused: alias expansion can exhaust memory)"
                    )
                continue
            open_ids.add(key)
            grandchildren = _children(child)
            stack.append((child, grandchildren, iter(grandchildren)))
            break
        else:
            stack.pop()
            key = id(node)
            open_ids.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_YAML_NODES:
                raise _refuse(
                    node, f'aliases expand to more than {MAX_YAML_NODES} nodes (refused: a "billion laughs" document)'
                )
            if depth[key] > MAX_YAML_DEPTH:
                raise _refuse(node, f"nested more than {MAX_YAML_DEPTH} levels deep (refused)")
    return aliases


def _decode(data: bytes | str, source: str, max_bytes: int) -> str:
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        raise YamlError(f"{source}: {size} bytes exceeds the YAML size limit of {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise YamlError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return data


def _wrap(exc: Exception, source: str) -> YamlError:
    if isinstance(exc, YamlError):
        return YamlError(f"{source}: {exc}")
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return YamlError(f"{source}: {where}invalid YAML: {problem}")


def load_yaml(data: bytes | str, source: str = "<yaml>", max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Load exactly one YAML document; a stream with several documents is an error."""
    docs = load_yaml_documents(data, source, max_bytes)
    if len(docs) != 1:
        raise YamlError(f"{source}: expected one YAML document, found {len(docs)}")
    return docs[0]


def load_yaml_documents(data: bytes | str, source: str = "<yaml>", max_bytes: int = MAX_YAML_BYTES) -> list:
    """Load every document of a multi-document stream (``---`` separated), skipping empty ones."""
    text = _decode(data, source, max_bytes)
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Phase8SafeLoader) if doc is not None]
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: ours, or an integer too long
        raise _wrap(exc, source) from exc
