from phase8_assets.demo import generate
from phase8_assets_tests.conftest import DATA


def test_generator_reproduces_the_committed_data_byte_for_byte(tmp_path):
    files = generate(tmp_path, seed=8)
    generated = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in files}
    committed = {p.relative_to(DATA).as_posix(): p.read_bytes() for p in DATA.rglob("*") if p.is_file()}
    assert generated.keys() == committed.keys()
    assert [k for k in generated if generated[k] != committed[k]] == []


def test_another_seed_changes_the_data(tmp_path):
    a = {p.name: p.read_bytes() for p in generate(tmp_path / "a", seed=8)}
    b = {p.name: p.read_bytes() for p in generate(tmp_path / "b", seed=9)}
    assert a != b


def test_the_package_root_holds_only_the_surfaces_and_the_code_location():
    from phase8_assets_tests.conftest import REPO

    root = sorted(p.name for p in (REPO / "phase8_assets").glob("*.py"))
    # isolation.py is the pytest plugin platform teams load (a surface of its own, for their suites);
    # health_app.py and diagnostics.py are the operators' surfaces.
    assert root == [
        "__init__.py",
        "cli.py",
        "definitions.py",
        "diagnostics.py",
        "gate_run.py",
        "health_app.py",
        "isolation.py",
        "validation.py",
    ]
    demo = {p.stem for p in (REPO / "phase8_assets/demo").glob("*.py")} - {"__init__", "config", "runbooks"}
    named = {p.stem for layer in ("evidence", "domains", "defs") for p in (REPO / "phase8_assets" / layer).glob("*.py")}
    assert demo - named == set()
