"""The reference service's isolation suite, written with the ``phase8_assets.isolation`` plugin, and the
proof that it catches every class of leak: each leaky variant of the service fails the test named here.

| class of leak | leaky variant | the test that catches it |
|---|---|---|
| superuser connection bypasses row-level security | `superuser` | `test_messages_by_exact_id_across_tenants` |
| table owner bypasses RLS (enabled, not forced) | `table_owner` | `test_messages_by_exact_id_across_tenants` |
| a view runs with its owner's rights | `owner_view` | `test_messages_by_exact_id_across_tenants` |
| a pooled connection keeps the previous tenant's context | `pooled_context` | `test_messages_without_tenant_context_return_nothing` |
| a permissive INSERT policy accepts any tenant's id | `insert_without_check` | `test_messages_insert_with_another_tenants_id_is_refused` |
| an event is broadcast to every tenant's subscribers | `broadcast` | `test_message_events_stay_in_their_tenant` |
| a cache key without the tenant | `cache_key_without_tenant` | `test_pages_are_never_served_from_another_tenants_cache` |
| a shared cache may store a tenant's page (no private / Vary) | `public_cache` | `test_pages_are_never_served_from_another_tenants_cache` |
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading

import pytest

from phase8_assets.isolation import TenantPair
from phase8_assets_tests.isolation_reference.service import (
    TENANT_HEADER,
    VARIANTS,
    ReferenceService,
    create_database,
)

TENANTS = ("acme", "globex")


@pytest.fixture(scope="module")
def database(postgres) -> str:
    create_database(postgres.conninfo())
    return postgres.conninfo()


@pytest.fixture(scope="module")
def service(database, redis_url):
    with ReferenceService("safe", database, redis_url) as svc:
        yield svc


class Client:
    """HTTP on 127.0.0.1 as a tenant (None: without a tenant)."""

    def __init__(self, service: ReferenceService):
        self.port = service.server.server_address[1]

    def call(self, method: str, path: str, tenant: str | None, body: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {TENANT_HEADER: tenant} if tenant else {}
        payload = json.dumps(body).encode() if body is not None else None
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, tenant: str | None, body: dict | None = None):
        status, _, data = self.call(method, path, tenant, body)
        return status, json.loads(data)

    @contextlib.contextmanager
    def subscribe(self, tenant: str):
        """An SSE subscription; ``frames()`` are the ``data:`` frames received so far."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/events", headers={TENANT_HEADER: tenant})
        sock = conn.sock  # the response takes it over: kept to end the stream
        response = conn.getresponse()
        assert response.status == 200 and response.readline().startswith(b": subscribed")
        received: list[str] = []

        def read():
            with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
                for line in response:
                    if line.startswith(b"data: "):
                        received.append(line[6:].decode().strip())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        class Subscription:
            @staticmethod
            def frames() -> list[str]:
                return list(received)

        try:
            yield Subscription()
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            reader.join(timeout=5)
            response.close()


# The suite: one function per standard two-tenant pattern, run by the tests below against the safe
# service and by the leak proofs against each leaky variant.


def check_exact_id(pair: TenantPair, service: ReferenceService) -> None:
    client = Client(service)

    def read(tenant, ident):
        status, body = client.json("GET", f"/messages/{ident}", tenant)
        return body if status == 200 else None

    pair.exact_id(
        create=lambda tenant: client.json("POST", "/messages", tenant, {"body": f"hello from {tenant}"})[1]["id"],
        read=read,
        update=lambda tenant, ident: client.json("PUT", f"/messages/{ident}", tenant, {"body": "x"})[1]["updated"],
        delete=lambda tenant, ident: client.json("DELETE", f"/messages/{ident}", tenant)[1]["deleted"],
    )


def check_foreign_insert(pair: TenantPair, service: ReferenceService) -> None:
    client = Client(service)
    pair.foreign_insert_refused(
        lambda acting, owner: client.json("POST", "/messages", acting, {"tenant_id": owner, "body": "b"})[0] == 201
    )


def check_no_context(pair: TenantPair, service: ReferenceService) -> None:
    client = Client(service)
    client.json("POST", "/messages", pair.a, {"body": "for the listing"})
    pair.no_context_no_rows(lambda tenant: client.json("GET", "/messages", tenant)[1])


def check_events(pair: TenantPair, service: ReferenceService) -> None:
    client = Client(service)
    pair.events_stay_in_tenant(
        subscribe=client.subscribe,
        publish=lambda tenant, marker: client.json("POST", "/events", tenant, {"text": marker}),
    )


def check_cache(pair: TenantPair, service: ReferenceService) -> None:
    client = Client(service)
    pair.cache_stays_in_tenant(
        fetch=lambda tenant, path: client.call("GET", path, tenant)[1:], path="/pages/dashboard",
        tenant_header=TENANT_HEADER,
    )  # fmt: skip


@pytest.mark.isolation(dimension="data", resource="messages", tenants=TENANTS)
def test_messages_by_exact_id_across_tenants(isolation, service):
    check_exact_id(isolation, service)


@pytest.mark.isolation(dimension="data", resource="messages", tenants=TENANTS)
def test_messages_insert_with_another_tenants_id_is_refused(isolation, service):
    check_foreign_insert(isolation, service)


@pytest.mark.isolation(dimension="data", resource="messages", tenants=TENANTS)
def test_messages_without_tenant_context_return_nothing(isolation, service):
    check_no_context(isolation, service)


@pytest.mark.isolation(dimension="events", resource="messages", tenants=TENANTS)
def test_message_events_stay_in_their_tenant(isolation, service):
    check_events(isolation, service)


@pytest.mark.isolation(dimension="cache", resource="pages", tenants=TENANTS)
def test_pages_are_never_served_from_another_tenants_cache(isolation, service):
    check_cache(isolation, service)


SUITE = {
    "test_messages_by_exact_id_across_tenants": (check_exact_id, "data", "messages"),
    "test_messages_insert_with_another_tenants_id_is_refused": (check_foreign_insert, "data", "messages"),
    "test_messages_without_tenant_context_return_nothing": (check_no_context, "data", "messages"),
    "test_message_events_stay_in_their_tenant": (check_events, "events", "messages"),
    "test_pages_are_never_served_from_another_tenants_cache": (check_cache, "cache", "pages"),
}
LEAKS = {
    "superuser": "test_messages_by_exact_id_across_tenants",
    "table_owner": "test_messages_by_exact_id_across_tenants",
    "owner_view": "test_messages_by_exact_id_across_tenants",
    "pooled_context": "test_messages_without_tenant_context_return_nothing",
    "insert_without_check": "test_messages_insert_with_another_tenants_id_is_refused",
    "broadcast": "test_message_events_stay_in_their_tenant",
    "cache_key_without_tenant": "test_pages_are_never_served_from_another_tenants_cache",
    "public_cache": "test_pages_are_never_served_from_another_tenants_cache",
}


def test_the_leak_table_names_every_variant_and_the_module_documents_it():
    assert set(LEAKS) == set(VARIANTS) - {"safe"}
    for variant, test in LEAKS.items():
        assert f"| `{variant}` | `{test}` |" in __doc__
        assert test in globals()


@pytest.mark.parametrize("variant", sorted(LEAKS))
def test_each_leaky_variant_is_caught_by_its_test(variant, database, redis_url):
    check, dimension, resource = SUITE[LEAKS[variant]]
    with ReferenceService(variant, database, redis_url) as leaky, pytest.raises(AssertionError) as caught:
        check(TenantPair(*TENANTS, dimension, resource), leaky)
    assert TENANTS[0] in str(caught.value) or "without a tenant context" in str(caught.value)
