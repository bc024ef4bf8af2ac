"""The isolation pytest plugin as platform teams load it: through its pytest11 entry point."""

import subprocess
import sys

from phase8_assets.evidence import junit
from phase8_assets_tests.conftest import env_without_pytest

SUITE = """
import pytest

@pytest.mark.isolation(dimension="events", resource="channels", tenants=("acme", "globex"))
def test_channel_events(isolation):
    assert (isolation.a, isolation.b, isolation.dimension) == ("acme", "globex", "events")

@pytest.mark.isolation(dimension="cache", resource="pages", tenants=("acme", "globex"))
def test_leaks(isolation):
    isolation.cache_stays_in_tenant(lambda tenant, path: ({}, b"page of acme"), "/p", "X-Tenant")

def test_unrelated():
    pass
"""


def test_the_marker_becomes_junit_properties_the_reader_understands(pytester):
    pytester.makepyfile(test_suite=SUITE)
    report = pytester.path / "junit.xml"
    result = pytester.runpytest_inprocess(f"--junitxml={report}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    records = {r["name"]: r for r in junit.read(report.read_bytes(), str(report)).records}
    got = {name: (r["dimension"], r["resource"], r["tenants"], r["outcome"]) for name, r in records.items()}
    assert got == {
        "test_channel_events": ("events", "channels", ["acme", "globex"], "passed"),
        "test_leaks": ("cache", "pages", ["acme", "globex"], "failed"),
        "test_unrelated": (None, None, [], "passed"),
    }
    assert "globex was served acme's cached /p" in records["test_leaks"]["message"]
    assert records["test_unrelated"]["properties"] == {}  # inert without its marker


def test_a_marker_without_a_known_dimension_or_two_tenants_is_a_usage_error(pytester):
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.isolation(dimension="disk", resource="messages", tenants=("acme", "globex"))
def test_x(isolation):
    pass
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == 4  # pytest's usage error
    assert "isolation dimension: expected one of data|events|cache, got 'disk'" in str(result.stderr)
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.isolation(dimension="data", resource="messages", tenants=("acme", "acme"))
def test_x(isolation):
    pass
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert "expected two different tenants, got ('acme', 'acme')" in str(result.stderr)


def test_the_product_never_imports_pytest():
    code = "import sys, phase8_assets.definitions, phase8_assets.cli; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_without_pytest())
    assert out.stdout.strip() == "False", out.stderr
