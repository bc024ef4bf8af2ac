"""A small multi-tenant service that runs for real, and a deliberately leaky variant of it per class of leak.

- data: PostgreSQL with row-level security. The application connects as ``chat_app`` (neither owner
  nor superuser) from a pool of one connection and sets the tenant per transaction
  (``set_config('app.tenant', ..., true)``), so nothing outlives a request.
- events: server-sent events over HTTP on 127.0.0.1; an event published in a tenant is written to
  that tenant's subscribers only.
- cache: rendered pages in Redis, keyed by tenant and path, sent with ``Cache-Control: private`` and
  ``Vary: X-Tenant``.

The tenant comes from the ``X-Tenant`` header (in the platform, from the authenticated session).
Each ``VARIANTS`` entry but ``safe`` reintroduces one known trap; ``test_isolation_reference.py``
says which isolation test catches which.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import redis

TENANT_HEADER = "X-Tenant"
VARIANTS = {
    "safe": "RLS as the application role, per-transaction tenant context, tenant fan-out, tenant cache keys",
    "superuser": "the application connects as a superuser: row-level security does not apply",
    "table_owner": "the application connects as the table owner (RLS enabled, not forced): policies do not apply",
    "owner_view": "reads go through a view its owner created without security_invoker: the owner's rights apply",
    "pooled_context": "the tenant is set for the session, not the transaction: a pooled connection keeps the "
    "previous request's tenant",
    "insert_without_check": "a permissive INSERT policy WITH CHECK (true) beside the tenant policy: inserts for "
    "any tenant are accepted",
    "broadcast": "events are written to every subscriber, whatever their tenant",
    "cache_key_without_tenant": "the page cache key is the path alone",
    "public_cache": "pages are sent Cache-Control: public without Vary: a shared cache (CDN) may serve them to anyone",
}

SCHEMA = """
CREATE TABLE messages (id bigserial PRIMARY KEY, tenant_id text NOT NULL, body text NOT NULL);
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON messages
    USING (tenant_id = current_setting('app.tenant', true))
    WITH CHECK (tenant_id = current_setting('app.tenant', true));
CREATE VIEW messages_feed AS SELECT * FROM messages;
CREATE TABLE messages_loose (id bigserial PRIMARY KEY, tenant_id text NOT NULL, body text NOT NULL);
ALTER TABLE messages_loose ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON messages_loose USING (tenant_id = current_setting('app.tenant', true));
CREATE POLICY any_insert ON messages_loose FOR INSERT WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON messages, messages_loose TO chat_app;
GRANT SELECT ON messages_feed TO chat_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO chat_app;
"""
DATABASE = "isolation_reference"


def create_database(superuser_conninfo: str) -> None:
    """Roles ``chat_owner`` (owns the tables) and ``chat_app`` (the application), and the schema."""
    with psycopg.connect(superuser_conninfo, autocommit=True) as conn:
        for role in ("chat_owner", "chat_app"):
            conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        conn.execute(f"CREATE DATABASE {DATABASE} OWNER chat_owner")
    owner = re.sub(r"user=\S+", "user=chat_owner", superuser_conninfo).replace("dbname=postgres", f"dbname={DATABASE}")
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(SCHEMA)


class ReferenceService:
    """The service on 127.0.0.1 (a free port) in one of ``VARIANTS``; a context manager."""

    def __init__(self, variant: str, superuser_conninfo: str, redis_url: str):
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {'|'.join(VARIANTS)}, got {variant!r}")
        self.variant = variant
        user = {"superuser": None, "table_owner": "chat_owner"}.get(variant, "chat_app")
        conninfo = superuser_conninfo if user is None else re.sub(r"user=\S+", f"user={user}", superuser_conninfo)
        self.db = psycopg.connect(conninfo.replace("dbname=postgres", f"dbname={DATABASE}"))
        self.db_lock = threading.Lock()  # the pool: one connection, handed to one request at a time
        self.cache = redis.Redis.from_url(redis_url)
        self.cache_prefix = f"ref:{uuid.uuid4().hex[:8]}"
        self.subscribers: list[tuple[str, queue.Queue]] = []
        self.subscribers_lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"reference-{variant}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ReferenceService:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.db.close()
        self.cache.close()

    # data ------------------------------------------------------------------------------------------
    @property
    def table(self) -> str:
        return "messages_loose" if self.variant == "insert_without_check" else "messages"

    def query(self, tenant: str | None, sql: str, params: tuple = ()) -> tuple[list[tuple], int]:
        """Run ``sql`` for ``tenant`` (None: no tenant context) on the pooled connection."""
        with self.db_lock, self.db.transaction():
            if tenant is not None:
                self.db.execute("SELECT set_config('app.tenant', %s, %s)", (tenant, self.variant != "pooled_context"))
            cursor = self.db.execute(sql, params)
            return (cursor.fetchall() if cursor.description else []), cursor.rowcount

    def read_table(self) -> str:
        return "messages_feed" if self.variant == "owner_view" else self.table

    # events ----------------------------------------------------------------------------------------
    def publish(self, tenant: str, event: dict) -> int:
        with self.subscribers_lock:
            targets = [q for t, q in self.subscribers if self.variant == "broadcast" or t == tenant]
        for q in targets:
            q.put(event)
        return len(targets)

    # cache -----------------------------------------------------------------------------------------
    def cache_key(self, tenant: str, path: str) -> str:
        if self.variant == "cache_key_without_tenant":
            return f"{self.cache_prefix}:page:{path}"
        return f"{self.cache_prefix}:page:{tenant}:{path}"

    def cache_headers(self) -> dict[str, str]:
        if self.variant == "public_cache":
            return {"Cache-Control": "public, max-age=60"}
        return {"Cache-Control": "private, max-age=60", "Vary": TENANT_HEADER}


def _handler(service: ReferenceService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet: the tests report what matters
            return

        def _tenant(self) -> str | None:
            return self.headers.get(TENANT_HEADER) or None

        def _json(self, status: int, payload, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self):
            tenant = self._tenant()
            if self.path == "/messages":
                rows, _ = service.query(tenant, f"SELECT id, tenant_id, body FROM {service.read_table()} ORDER BY id")
                return self._json(200, [list(r) for r in rows])
            if found := re.fullmatch(r"/messages/(\d+)", self.path):
                rows, _ = service.query(
                    tenant, f"SELECT id, tenant_id, body FROM {service.read_table()} WHERE id = %s", (int(found[1]),)
                )
                return self._json(200, list(rows[0])) if rows else self._json(404, {"error": "not found"})
            if self.path == "/events":
                return self._stream(tenant)
            if self.path.startswith("/pages/"):
                return self._page(tenant)
            return self._json(404, {"error": "no such path"})

        def do_POST(self):
            tenant, body = self._tenant(), self._body()
            if self.path == "/messages":
                # No RETURNING: it would also apply the SELECT policy and hide a permissive INSERT policy.
                ident = service.query(tenant, "SELECT nextval(pg_get_serial_sequence(%s, 'id'))", (service.table,))[0][
                    0
                ][0]
                try:
                    service.query(
                        tenant, f"INSERT INTO {service.table} (id, tenant_id, body) VALUES (%s, %s, %s)",
                        (ident, body.get("tenant_id", tenant), body.get("body", "")),
                    )  # fmt: skip
                except psycopg.errors.InsufficientPrivilege as exc:
                    return self._json(403, {"error": str(exc).splitlines()[0]})
                return self._json(201, {"id": ident})
            if self.path == "/events":
                return self._json(202, {"delivered": service.publish(tenant, body)})
            return self._json(404, {"error": "no such path"})

        def do_PUT(self):
            if found := re.fullmatch(r"/messages/(\d+)", self.path):
                _, count = service.query(
                    self._tenant(), f"UPDATE {service.table} SET body = %s WHERE id = %s",
                    (self._body().get("body", ""), int(found[1])),
                )  # fmt: skip
                return self._json(200, {"updated": count})
            return self._json(404, {"error": "no such path"})

        def do_DELETE(self):
            if found := re.fullmatch(r"/messages/(\d+)", self.path):
                _, count = service.query(self._tenant(), f"DELETE FROM {service.table} WHERE id = %s", (int(found[1]),))
                return self._json(200, {"deleted": count})
            return self._json(404, {"error": "no such path"})

        def _page(self, tenant: str | None) -> None:
            if tenant is None:
                return self._json(401, {"error": f"{TENANT_HEADER} required"})
            key = service.cache_key(tenant, self.path)
            page = service.cache.get(key)
            if page is None:
                rows, _ = service.query(tenant, f"SELECT count(*) FROM {service.read_table()}")
                page = json.dumps({"tenant": tenant, "path": self.path, "messages": rows[0][0]}).encode()
                service.cache.set(key, page, ex=60)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(page)))
            for k, v in service.cache_headers().items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(page)

        def _stream(self, tenant: str | None) -> None:
            if tenant is None:
                return self._json(401, {"error": f"{TENANT_HEADER} required"})
            inbox: queue.Queue = queue.Queue()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            with service.subscribers_lock:
                service.subscribers.append((tenant, inbox))
            try:
                self.wfile.write(b": subscribed\n\n")
                self.wfile.flush()
                while not service.stopping.is_set():
                    try:
                        event = inbox.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
            except OSError:  # the subscriber went away
                pass
            finally:
                with service.subscribers_lock:
                    service.subscribers.remove((tenant, inbox))
                self.close_connection = True

    return Handler
