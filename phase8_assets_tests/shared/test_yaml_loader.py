import time

import pytest
import yaml

from phase8_assets.shared import yaml_loader
from phase8_assets.shared.yaml_loader import YamlError, load_yaml, load_yaml_documents


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def parser(request, monkeypatch):
    """Every test runs on both parsers: the limits are ours, whichever parser composed the document."""
    if request.param == "libyaml" and yaml_loader._libyaml_parser() is None:
        pytest.skip("this PyYAML has no libyaml 0.2.6 or later")
    base = yaml.CSafeLoader if request.param == "libyaml" else yaml.SafeLoader
    monkeypatch.setattr(yaml_loader, "_Phase8SafeLoader", yaml_loader._loader_class(base))
    return request.param


BILLION_LAUGHS = """
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_dates_and_times_stay_strings():
    doc = load_yaml("expired_at: 2026-05-10\nstart: 2022-01-01 12:00:00\nn: 3\n")
    assert doc == {"expired_at": "2026-05-10", "start": "2022-01-01 12:00:00", "n": 3}


def test_billion_laughs_is_refused_quickly():
    started = time.perf_counter()
    with pytest.raises(YamlError, match="expand to more than 100000 nodes"):
        load_yaml(BILLION_LAUGHS, "bomb.yaml")
    assert time.perf_counter() - started < 2


def test_a_few_aliases_are_fine():
    assert load_yaml("base: &b {x: 1}\nother: *b\n") == {"base": {"x": 1}, "other": {"x": 1}}


def test_size_limit_names_the_source():
    with pytest.raises(YamlError, match=r"big.yaml: 2001 bytes exceeds the YAML size limit of 2000 bytes"):
        load_yaml("a" * 2001, "big.yaml", max_bytes=2000)


def test_multi_document_only_where_asked():
    text = "a: 1\n---\nb: 2\n---\n"
    assert load_yaml_documents(text) == [{"a": 1}, {"b": 2}]
    with pytest.raises(YamlError, match="expected one YAML document, found 2"):
        load_yaml(text, "two.yaml")


def test_syntax_error_names_line_and_column():
    with pytest.raises(YamlError, match=r"bad.yaml: line 2, column \d+: invalid YAML"):
        load_yaml("a: [1, 2\nb: 3\n", "bad.yaml")


def test_python_tags_are_refused():
    with pytest.raises(YamlError):
        load_yaml("!!python/object/apply:os.system ['true']", "evil.yaml")


def test_bom_and_invalid_utf8():
    assert load_yaml(b"\xef\xbb\xbfa: 1\n") == {"a": 1}
    with pytest.raises(YamlError, match="not UTF-8"):
        load_yaml(b"a: \xff\xfe\n", "latin.yaml")


def test_too_many_aliases_are_refused():
    text = "base: &b 1\nitems: [" + ", ".join(["*b"] * 101) + "]\n"
    with pytest.raises(YamlError, match="more than 100 aliases"):
        load_yaml(text, "aliases.yaml")


def test_a_key_given_twice_is_refused_but_a_merge_key_may_be_overridden():
    with pytest.raises(YamlError, match=r"x.yaml: line 3: duplicate key 'owner' in one mapping"):
        load_yaml(b"apiVersion: phase8/v1\nowner: team:a\nowner: team:b\n", "x.yaml")
    doc = load_yaml(b"base: &base {owner: team:a, ttl: 1}\nchild:\n  <<: *base\n  owner: team:b\n")
    assert doc["child"] == {"owner": "team:b", "ttl": 1}


def test_libyaml_parses_only_when_it_bounds_nesting_itself(monkeypatch):
    from yaml import _yaml

    monkeypatch.setattr(_yaml, "get_version", lambda: (0, 2, 5))  # composes nesting by unbounded C recursion
    assert yaml_loader._libyaml_parser() is None
    monkeypatch.setattr(_yaml, "get_version", lambda: (0, 2, 6))
    assert yaml_loader._libyaml_parser() is yaml.CSafeLoader


def test_the_alias_budget_is_the_whole_streams():
    doc = "base: &b 1\nitems: [" + ", ".join(["*b"] * 40) + "]\n"
    assert len(load_yaml_documents("---\n".join([doc] * 2))) == 2
    with pytest.raises(YamlError, match="streams.yaml: line 7: more than 100 aliases"):
        load_yaml_documents("---\n".join([doc] * 3), "streams.yaml")


def test_an_integer_too_long_to_convert_is_a_yaml_error():
    with pytest.raises(YamlError, match="long.yaml: invalid YAML: .*4300"):
        load_yaml("n: " + "9" * 5000 + "\n", "long.yaml")


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}")])
def test_nesting_deeper_than_the_limit_is_refused_by_line(opening, closing):
    ok = opening * 199 + "1" + closing * 199
    assert load_yaml(ok) is not None
    deep = "x:\n  " + opening * 200 + "1" + closing * 200 + "\n"
    with pytest.raises(YamlError, match=r"deep.yaml: line 2: nested more than 200 levels deep"):
        load_yaml(deep, "deep.yaml")
    block = "".join(" " * i + "k:\n" for i in range(250))  # block style: libyaml itself allows 1000 levels
    with pytest.raises(YamlError, match="nested more than 200 levels deep"):
        load_yaml(block, "block.yaml")


def test_depth_counts_what_the_aliases_expand_to():
    anchor = "base: &b " + "[" * 120 + "1" + "]" * 120 + "\n"
    assert load_yaml(anchor + "other: *b\n")["other"] == load_yaml(anchor)["base"]
    with pytest.raises(YamlError, match="nested more than 200 levels deep"):
        load_yaml(anchor + "other: " + "[" * 100 + "*b" + "]" * 100 + "\n", "alias-depth.yaml")


def test_a_recursive_document_is_refused():
    with pytest.raises(YamlError, match=r"loop.yaml: line 1: an alias refers to a node that contains it"):
        load_yaml("a: &a [1, *a]\n", "loop.yaml")
    with pytest.raises(YamlError, match="a recursive document"):
        load_yaml("a: &a {b: {c: *a}}\n", "loop.yaml")


@pytest.mark.parametrize(
    "text, second, first",
    [("1: a\n0x1: b\n", "0x1", "1"), ("true: a\nyes: b\n", "yes", "true"), ("~: a\nnull: b\n", "null", "~"),
     ("1: a\ntrue: b\n", "true", "1")],
)  # fmt: skip
def test_keys_that_load_as_the_same_value_are_one_key_given_twice(text, second, first):
    with pytest.raises(YamlError, match=rf"k.yaml: line 2: duplicate key '{second}' \(as '{first}' on line 1\)"):
        load_yaml(text, "k.yaml")
    assert load_yaml('"1": a\n1: b\n') == {"1": "a", 1: "b"}  # a string and a number are two keys
