"""pytest plugin for tenancy-isolation suites (registered as the ``pytest11`` entry point ``phase8_isolation``).

Inert unless a test uses its marker::

    @pytest.mark.isolation(dimension="data", resource="messages", tenants=("acme", "globex"))
    def test_messages_by_id(isolation):
        isolation.exact_id(create=..., read=..., update=..., delete=...)

The marker's dimension (``data`` | ``events`` | ``cache``), resource and tenant pair are written as
the testcase's JUnit ``<properties>`` (``phase8.dimension``, ``phase8.resource``, ``phase8.tenants``),
the way ``record_property`` writes them, so ``pytest --junitxml`` reports carry their meaning into the
``tenancy_isolation`` gate. The ``isolation`` fixture is a ``TenantPair`` with the standard two-tenant
checks. Each check first proves that the path works for the owning tenant (a positive control), so a
broken service cannot pass as an isolated one.

pytest is imported here only: the product never imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

MARKER = "isolation"
DIMENSIONS = ("data", "events", "cache")


@dataclass(frozen=True)
class TenantPair:
    """Tenant ``a`` owns what a check creates; tenant ``b`` must never see or change it."""

    a: str
    b: str
    dimension: str
    resource: str

    def exact_id(
        self,
        create: Callable[[str], Any],
        read: Callable[[str, Any], Any],
        update: Callable[[str, Any], int] | None = None,
        delete: Callable[[str, Any], int] | None = None,
    ) -> None:
        """Read, update and delete of ``a``'s object by its exact id, acting as ``b``, find nothing.

        ``create(tenant)`` returns a new object's id; ``read(tenant, id)`` the object or a falsy value;
        ``update``/``delete(tenant, id)`` the number of objects changed.
        """
        ident = create(self.a)
        original = read(self.a, ident)
        assert original, f"{self.a} cannot read its own {self.resource} {ident!r}: the check proves nothing"
        leaked = read(self.b, ident)
        assert not leaked, f"{self.b} read {self.a}'s {self.resource} {ident!r} by id: {leaked!r}"
        if update is not None:
            changed = update(self.b, ident)
            assert changed == 0, f"{self.b} updated {changed} of {self.a}'s {self.resource} by id {ident!r}"
        if delete is not None:
            removed = delete(self.b, ident)
            assert removed == 0, f"{self.b} deleted {removed} of {self.a}'s {self.resource} by id {ident!r}"
        after = read(self.a, ident)
        assert after == original, f"{self.a}'s {self.resource} {ident!r} changed after {self.b}'s attempts: {after!r}"

    def foreign_insert_refused(self, insert: Callable[[str, str], bool]) -> None:
        """``insert(acting, owner)`` stores an object owned by ``owner`` while acting as ``acting``,
        returning whether it was stored (raising counts as refused). Own inserts work; foreign ones
        are refused."""
        assert insert(self.b, self.b), f"{self.b} cannot insert its own {self.resource}: the check proves nothing"
        try:
            stored = insert(self.b, self.a)
        except Exception:  # refused by raising: what we want
            stored = False
        assert not stored, f"{self.b} inserted a {self.resource} owned by {self.a}"

    def no_context_no_rows(self, list_rows: Callable[[str | None], Iterable]) -> None:
        """Without a tenant context a listing returns zero rows (fail closed); ``list_rows(tenant)``
        with ``None`` for no context. Run after ``a`` has data, so an empty result means something."""
        assert list(list_rows(self.a)), f"{self.a} lists no {self.resource}: the check proves nothing"
        rows = list(list_rows(None))
        assert not rows, f"without a tenant context {len(rows)} {self.resource} row(s) were returned: {rows[:3]!r}"

    def events_stay_in_tenant(
        self, subscribe: Callable[[str], Any], publish: Callable[[str, str], None], timeout: float = 2.0
    ) -> None:
        """An event published in ``a`` reaches ``a``'s subscriber and produces zero frames for ``b``'s.

        ``subscribe(tenant)`` is a context manager whose value has ``frames()`` (the frames received
        so far, as text); ``publish(tenant, marker)`` publishes an event carrying ``marker``.
        """
        marker = f"isolation-probe-{self.a}-{time.monotonic_ns()}"
        with subscribe(self.a) as own, subscribe(self.b) as other:
            publish(self.a, marker)
            deadline = time.monotonic() + timeout
            while not any(marker in f for f in own.frames()) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert any(marker in f for f in own.frames()), (
                f"{self.a}'s subscriber got no event: the check proves nothing"
            )
            time.sleep(min(0.2, timeout))  # the fan-out had as long for b as it needed for a, and more
            frames = other.frames()
        assert not frames, f"{self.b}'s subscriber received {len(frames)} frame(s) of {self.a}'s event: {frames[:3]!r}"

    def cache_stays_in_tenant(
        self, fetch: Callable[[str, str], tuple[dict[str, str], bytes]], path: str, tenant_header: str
    ) -> None:
        """``a``'s cached response for ``path`` is never served to ``b``, and it tells shared caches so:
        ``Cache-Control`` private or no-store, or ``Vary`` naming ``tenant_header``.
        ``fetch(tenant, path)`` returns (headers, body)."""
        headers_a, body_a = fetch(self.a, path)
        assert body_a, f"{self.a} got an empty {path}: the check proves nothing"
        _, body_a_again = fetch(self.a, path)
        _, body_b = fetch(self.b, path)
        assert body_b != body_a_again, f"{self.b} was served {self.a}'s cached {path}"
        assert self.a.encode() not in body_b, f"{self.b}'s {path} names {self.a}: {body_b[:120]!r}"
        lowered = {k.lower(): v.lower() for k, v in headers_a.items()}
        control = {d.strip().split("=")[0] for d in lowered.get("cache-control", "").split(",")}
        vary = {v.strip() for v in lowered.get("vary", "").split(",")}
        assert control & {"private", "no-store"} or tenant_header.lower() in vary or "*" in vary, (
            f"{path} of {self.a} may be stored by a shared cache: Cache-Control {headers_a.get('Cache-Control')!r}, "
            f"Vary {headers_a.get('Vary')!r}"
        )


def _pair_of(item: pytest.Item) -> TenantPair | None:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    if marker.args:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.isolation takes keywords only")
    dimension, resource = marker.kwargs.get("dimension"), marker.kwargs.get("resource")
    tenants = tuple(marker.kwargs.get("tenants") or ())
    if dimension not in DIMENSIONS:
        raise pytest.UsageError(
            f"{item.nodeid}: isolation dimension: expected one of {'|'.join(DIMENSIONS)}, got {dimension!r}"
        )
    if not resource or not isinstance(resource, str):
        raise pytest.UsageError(f"{item.nodeid}: isolation resource: expected a resource name, got {resource!r}")
    if len(tenants) != 2 or tenants[0] == tenants[1]:
        raise pytest.UsageError(f"{item.nodeid}: isolation tenants: expected two different tenants, got {tenants!r}")
    return TenantPair(tenants[0], tenants[1], dimension, resource)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "isolation(dimension, resource, tenants): a tenancy-isolation test of one resource in one dimension "
        "(data | events | cache) between two tenants; recorded as JUnit properties",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        pair = _pair_of(item)
        if pair is not None:
            item.user_properties += [
                ("phase8.dimension", pair.dimension),
                ("phase8.resource", pair.resource),
                ("phase8.tenants", f"{pair.a},{pair.b}"),
            ]


@pytest.fixture
def isolation(request: pytest.FixtureRequest) -> TenantPair:
    """The marked test's tenant pair with the standard two-tenant checks."""
    pair = _pair_of(request.node)
    if pair is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the isolation fixture needs @pytest.mark.isolation(...)")
    return pair
