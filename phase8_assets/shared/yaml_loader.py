"""The one safe YAML loader: size and alias limits, no duplicate keys, timestamps kept as strings.

PyYAML's ``safe_load`` still expands aliases (a "billion laughs" document is accepted) and turns
unquoted ``2026-05-10`` into a ``date``. Our loader refuses oversized documents and alias bombs
before building objects, and leaves every scalar that looks like a date or time as the string
the author wrote, so schema-aware code decides how to parse it.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_BYTES = 2 * 1024 * 1024
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 100_000  # after alias expansion: what a consumer walking the data would see


class YamlError(ValueError):
    """A YAML document that could not be loaded; the message names the source and the reason."""


class _Phase8SafeLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver and with an alias budget."""

    max_aliases = MAX_YAML_ALIASES

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases_seen = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases_seen += 1
            if self._aliases_seen > self.max_aliases:
                event = self.peek_event()
                raise YamlError(
                    f"line {event.start_mark.line + 1}: more than {self.max_aliases} aliases "
                    "(refused: alias expansion can exhaust memory)"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        """A mapping that names a key twice is refused: which value counts is ambiguous (merge keys
        ``<<`` may still be overridden, as YAML intends)."""
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise YamlError(
                        f"line {key_node.start_mark.line + 1}: duplicate key {key_node.value[:80]!r} in one mapping "
                        "(which value counts is ambiguous)"
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)

    def get_node(self):
        node = super().get_node()
        if node is not None and self._aliases_seen:
            _check_expanded_size(node)
        return node


def _check_expanded_size(root: yaml.Node) -> None:
    """Refuse documents whose aliases expand to more than MAX_YAML_NODES nodes."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # cycles count once
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            total = 1
        sizes[id(node)] = total
        if total > MAX_YAML_NODES:
            raise YamlError(
                f"line {node.start_mark.line + 1}: aliases expand to more than {MAX_YAML_NODES} nodes "
                '(refused: a "billion laughs" document)'
            )
        return total

    size(root)


# Keep dates and times as the strings the author wrote.
_Phase8SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


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
    except (yaml.YAMLError, YamlError, RecursionError) as exc:
        raise _wrap(exc, source) from exc
