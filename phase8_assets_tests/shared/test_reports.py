import plotly.graph_objects as go

from phase8_assets.shared.reports import Section, markdown_table, render_html, write_html


def _sections():
    fig = go.Figure(go.Bar(x=["acme", "globex"], y=[3, 5]))
    return [Section("Spend", text="Two tenants.", table=(["t", "n"], [["acme", 3]]), figure=fig)]


def test_same_data_gives_byte_identical_offline_html(tmp_path):
    a = write_html(tmp_path / "a.html", "Report", _sections()).read_bytes()
    b = write_html(tmp_path / "b.html", "Report", _sections()).read_bytes()
    assert a == b
    html = a.decode()
    assert 'id="fig-0-spend"' in html
    # plotly.js is inlined: no script is fetched from anywhere, so the file works offline
    assert "<script src=" not in html and "Plotly.newPlot" in html and len(html) > 1_000_000


def test_html_escapes_text():
    assert "&lt;script&gt;" in render_html("t", [Section("h", text="<script>alert(1)</script>")])


def test_markdown_table_escapes_pipes_and_newlines():
    assert markdown_table(["a"], [["x|y\nz"]]).splitlines()[-1] == "| x\\|y<br>z |"


def test_markdown_table_says_empty_instead_of_a_table_without_rows():
    assert markdown_table(["a"], [], empty="_none_") == "_none_"
    assert markdown_table(["a"], []) == "| a |\n|---|"
    assert markdown_table(["a"], [["x"]], empty="_none_").endswith("| x |")


def test_report_files_are_as_readable_as_the_umask_allows(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        shared = write_html(tmp_path / "shared.html", "t", [])
        os.umask(0o077)
        private = write_html(tmp_path / "private.html", "t", [])
    finally:
        os.umask(old)
    assert (shared.stat().st_mode & 0o777, private.stat().st_mode & 0o777) == (0o644, 0o600)


def test_a_key_value_table_has_no_empty_header_row():
    page = render_html("t", [Section("Summary", table=(["", ""], [["drill", "cache-loss"]]))])
    assert "<thead>" not in page and "<td>drill</td><td>cache-loss</td>" in page
    assert "<thead><tr><th>a</th>" in render_html("t", [Section("x", table=(["a"], [["1"]]))])


def test_os_error_text_names_the_file_a_temporary_one_was_for(tmp_path):
    import errno

    from phase8_assets.shared.reports import os_error_text, write_text

    (tmp_path / "r.json").mkdir()  # os.replace cannot put a file over a folder
    try:
        write_text(tmp_path / "r.json", "{}")
    except OSError as exc:
        assert os_error_text(exc) == f"cannot write {tmp_path / 'r.json'}: {exc.strerror}"  # not .r.json.*.tmp
    else:
        raise AssertionError("write_text put a file over a folder")
    temp = OSError(errno.EACCES, "Permission denied", str(tmp_path / ".r.json.ab12cd_z.tmp"))
    assert os_error_text(temp) == f"cannot write {tmp_path / 'r.json'}: Permission denied"
    assert os_error_text(OSError(errno.EROFS, "Read-only file system"), "/out") == "/out: Read-only file system"
    assert os_error_text(OSError("no errno")) == "no errno"


def test_a_state_heatmap_is_the_figure_plotly_builds_and_renders_the_same_page(tmp_path):
    """Built as a dict for speed, it is what ``go.Figure(go.Heatmap(...)).to_dict()`` gives, key
    order included, so the page is the same bytes."""
    import json

    import plotly.io as pio

    from phase8_assets.shared.reports import state_heatmap

    states, colours = ("pass", "warn", "fail"), ["#2da44e", "#bf8700", "#cf222e"]
    x, y, z = ["week 1", "week 2"], ["item a", "item b"], [[0, None], [2, 1]]
    text = [["pass", "no run"], ["fail", "warn"]]
    built = state_heatmap(states, colours, x, y, z, text, "%{y}: %{text}<extra></extra>", 220)
    plotly = go.Figure(
        go.Heatmap(z=z, x=x, y=y, text=text, texttemplate="%{text}", hovertemplate="%{y}: %{text}<extra></extra>",
                   colorscale=[[0.0, colours[0]], [0.5, colours[1]], [1.0, colours[2]]], zmin=0, zmax=2,
                   colorbar={"tickvals": [0, 1, 2], "ticktext": list(states)}, xgap=2, ygap=2)
    )  # fmt: skip
    plotly.update_layout(height=220, yaxis={"autorange": "reversed"})
    assert json.dumps(built) == json.dumps(plotly.to_dict())
    page = {"include_plotlyjs": False, "full_html": False, "div_id": "f"}
    assert pio.to_html(built, validate=False, **page) == pio.to_html(plotly, **page)
