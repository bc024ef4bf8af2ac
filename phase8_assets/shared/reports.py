"""The one report writer: self-contained offline HTML (plotly inlined, no CDN) and Markdown.

Output is a pure function of its input: figures get fixed div ids and nothing time- or
randomness-dependent is added, so the same data gives a byte-identical file. Files are written
atomically (temp file + rename) so a reader never sees half a report.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any


@dataclass
class Section:
    heading: str
    text: str = ""
    table: tuple[list[str], list[list[Any]]] | None = None
    figure: Any = None  # a plotly Figure, or a figure dict as its to_dict() gives (rendered as it is)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def markdown_table(headers: list[str], rows: list[list[Any]], empty: str | None = None) -> str:
    """A Markdown table; with ``empty``, that text instead of a table without rows."""
    if not rows and empty is not None:
        return empty
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@cache
def _plotly_script() -> bytes:
    """plotly.js in a ``<script>`` element, encoded once: about 4.7 MB, the bulk of a page with figures."""
    from plotly.offline import get_plotlyjs

    return f'<script type="text/javascript">{get_plotlyjs()}</script>'.encode()


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;color:#1f2328;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
.sub{color:#57606a}table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem;max-width:100%}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}p{line-height:1.45}
.banner{padding:.8rem 1rem;border-radius:6px;font-size:1.3rem;font-weight:600;margin:1rem 0;color:#fff}
.banner.pass{background:#1a7f37}.banner.warn{background:#9a6700}.banner.fail{background:#cf222e}
"""


def _html_cell(value: Any) -> str:
    """A table cell; an http(s) URL becomes a link."""
    text = "" if value is None else str(value)
    if re.fullmatch(r"https?://\S+", text):
        return f'<a href="{html.escape(text)}">{html.escape(text)}</a>'
    return html.escape(text)


def _page(title: str, sections: list[Section], subtitle: str, banner: tuple[str, str] | None) -> list[str | bytes]:
    """The page's lines, plotly.js as the bytes it is written as (never copied into a new string)."""
    has_figures = any(s.figure is not None for s in sections)
    parts: list[str | bytes] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>",
    ]
    if has_figures:
        parts.append(_plotly_script())
    parts.append("</head><body>")
    parts.append(f"<h1>{html.escape(title)}</h1>")
    if subtitle:
        parts.append(f'<p class="sub">{html.escape(subtitle)}</p>')
    if banner:
        parts.append(f'<div class="banner {html.escape(banner[1])}" role="status">{html.escape(banner[0])}</div>')
    for index, section in enumerate(sections):
        parts.append(f'<h2 id="{slug(section.heading)}">{html.escape(section.heading)}</h2>')
        for para in [p for p in section.text.split("\n\n") if p.strip()]:
            parts.append(f"<p>{html.escape(para)}</p>")
        if section.table:
            headers, rows = section.table
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
            # A key/value table (all headers blank) gets no empty header row.
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>" if any(headers) else "<table><tbody>")
            for row in rows:
                cells = "".join(f"<td>{_html_cell(v)}</td>" for v in row)
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</tbody></table>")
        if section.figure is not None:
            import plotly.io as pio

            parts.append(
                pio.to_html(
                    section.figure,
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"fig-{index}-{slug(section.heading)}",
                    config={"displaylogo": False, "responsive": True},
                    validate=not isinstance(section.figure, dict),  # a dict is already in plotly's JSON form
                )
            )
    parts.append("</body></html>\n")
    return parts


def render_html(title: str, sections: list[Section], subtitle: str = "", banner: tuple[str, str] | None = None) -> str:
    """The page; ``banner`` = (text, pass|warn|fail) puts a coloured verdict line under the title."""
    return "\n".join(p if isinstance(p, str) else p.decode() for p in _page(title, sections, subtitle, banner))


@cache
def plotly_template() -> dict:
    """Plotly's default template as ``Figure.to_dict()`` writes it into every figure's layout."""
    import plotly.graph_objects as go

    return go.Figure().to_dict()["layout"]["template"]


def state_heatmap(
    states: tuple[str, ...] | list[str],
    colours: list[str],
    x: list[str],
    y: list[str],
    z: list[list[int | None]],
    text: list[list[str]],
    hover: str,
    height: int,
) -> dict:
    """A plotly heatmap of cells in one of ``states`` (``z``: the state's index, ``None`` for no
    cell), each state its colour in order, the cell's ``text`` written in it; rows top to bottom.

    The figure dict ``go.Figure(go.Heatmap(...)).to_dict()`` gives (same keys in the same order, so
    the page is the same bytes), built directly: the graph objects' validation was ~0.2 s of each
    gate run, which draws the program scorecard at every gate step."""
    scale = [[i / (len(states) - 1), c] for i, c in enumerate(colours)]
    heatmap = {
        "colorbar": {"ticktext": list(states), "tickvals": list(range(len(states)))},
        "colorscale": scale,
        "hovertemplate": hover,
        "text": text,
        "texttemplate": "%{text}",
        "x": x,
        "xgap": 2,
        "y": y,
        "ygap": 2,
        "z": z,
        "zmax": len(states) - 1,
        "zmin": 0,
        "type": "heatmap",
    }
    return {
        "data": [heatmap],
        "layout": {"template": plotly_template(), "yaxis": {"autorange": "reversed"}, "height": height},
    }


_TEMP_SUFFIX = ".tmp"  # write_bytes' temporary file: .<name>.<8 random characters>.tmp


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes | Iterable[bytes]) -> Path:
    """Write ``data`` (bytes, or pieces of them in order) atomically (same folder temp file, then
    rename), readable as the umask allows (0644 under the usual 022), like any file ``open``
    creates: the temp file alone would be 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, bytes):
                fh.write(data)
            else:
                fh.writelines(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def os_error_text(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """``exc`` for a person: the path (``exc``'s, else ``path``) and the system's reason. The temporary
    file of a ``write_bytes`` is named as the file it was for."""
    if exc.filename is None:
        return f"{path}: {exc.strerror or exc}" if path is not None else str(exc)
    failed = Path(os.fsdecode(exc.filename))
    temporary = re.fullmatch(rf"\.(.+)\.[a-z0-9_]{{8}}{re.escape(_TEMP_SUFFIX)}", failed.name)
    if temporary:
        return f"cannot write {failed.with_name(temporary.group(1))}: {exc.strerror}"
    return f"{failed}: {exc.strerror or exc}"


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically as UTF-8, newlines as they are."""
    return write_bytes(path, text.encode("utf-8"))


def write_html(
    path: str | os.PathLike,
    title: str,
    sections: list[Section],
    subtitle: str = "",
    banner: tuple[str, str] | None = None,
) -> Path:
    """``render_html``'s page, written line by line: a page with figures is mostly plotly.js, which is
    written from its encoded bytes instead of being joined into the page and encoded again."""

    def lines():
        for index, part in enumerate(_page(title, sections, subtitle, banner)):
            if index:
                yield b"\n"
            yield part if isinstance(part, bytes) else part.encode()

    return write_bytes(path, lines())


def render_markdown(title: str, sections: list[Section], subtitle: str = "") -> str:
    out = [f"# {title}", ""]
    if subtitle:
        out += [subtitle, ""]
    for section in sections:
        out += [f"## {section.heading}", ""]
        if section.text.strip():
            out += [section.text.strip(), ""]
        if section.table:
            out += [markdown_table(*section.table), ""]
    return "\n".join(out)
