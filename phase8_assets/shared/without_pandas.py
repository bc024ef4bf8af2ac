"""``phase8 gate`` runs without pandas.

Nothing ``release_gate`` computes uses pandas, yet a process that has it installed imports it (with
numpy and pyarrow's pandas layer, about 0.3-0.45 s on the critical path of a gate run) as soon as:

- DuckDB binds its first parameter: it compares every bound value with ``pandas.NaT`` and
  ``pandas.NA`` and imports pandas to do so (``python_conversion.cpp``, no switch);
- pyarrow converts a Python sequence: it checks whether the sequence is a pandas object.

While ``without_pandas()`` holds, importing pandas raises ``ModuleNotFoundError``, exactly what both
see when pandas is not installed, and both carry on without it: DuckDB tries the import again at
each bound value (a refused import costs microseconds), pyarrow remembers it. Only a process that has
not imported pandas yet is changed; a command that needs pandas (``focus_conformance`` runs Great
Expectations on a pandas sample) runs outside the block and imports it as usual.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _Refuse:
    """A meta path finder that refuses pandas, naming why."""

    def find_spec(self, name: str, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(
                f"No module named {name!r}: `phase8 gate` runs without pandas (phase8_assets/shared/without_pandas.py)",
                name=name,
            )
        return None


@contextmanager
def without_pandas() -> Iterator[None]:
    if "pandas" in sys.modules:  # imported already: refusing it now would change nothing but the error
        yield
        return
    refuse = _Refuse()
    sys.meta_path.insert(0, refuse)
    try:
        yield
    finally:
        sys.meta_path.remove(refuse)
