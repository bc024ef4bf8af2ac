"""``phase8 serve``: a read-only health endpoint for operators of a self-hosted phase8.

A gate run holds the DuckDB warehouse for seconds and no other process can open it meanwhile, so
the app never opens it: every gate run and every ``phase8`` command (but ``serve``) writes a small
health snapshot (``$PHASE8_HOME/health.json``, atomically; ``warehouse/health.py``) at its end,
and the app reads that.

- ``GET /health``: the IETF health-check format (``application/health+json``, the contract of
  ``evidence/health.py``): ``pass``/``warn`` 200, ``fail`` 503. A missing snapshot fails, an old
  one warns (past ``warn_after``) then fails (past ``fail_after``), each with why.
- ``GET /livez`` and ``GET /readyz`` (``?verbose`` lists the checks), as Kubernetes components do.
- ``GET /gate``: the latest verdict per evidence root and each gate's status; never findings,
  evidence content or costs.

The OpenAPI 3.1 document is ``openapi_document()``, committed as ``docs/ops/health-openapi.yaml``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from phase8_assets import __version__
from phase8_assets.evidence.health import HEALTH_MEDIA_TYPE, HEALTH_RESPONSE_SCHEMA, STATUSES
from phase8_assets.shared.clock import format_duration, format_timestamp, now_utc, parse_timestamp
from phase8_assets.warehouse.health import read_snapshot

DEFAULT_WARN_AFTER = timedelta(days=1)
DEFAULT_FAIL_AFTER = timedelta(days=7)


def _check(ctype: str, value, unit: str, status: str, time: str, output: str) -> list[dict]:
    return [
        {
            "componentType": ctype,
            "observedValue": value,
            "observedUnit": unit,
            "status": status,
            "time": time,
            "output": output,
        }
    ]


def health(
    home: Path, at: datetime, warn_after: timedelta = DEFAULT_WARN_AFTER, fail_after: timedelta = DEFAULT_FAIL_AFTER
) -> dict:
    """The ``application/health+json`` body for ``home`` at ``at``."""
    snapshot, problem = read_snapshot(home)
    now = format_timestamp(at)
    body = {"status": "pass", "version": "1", "releaseId": __version__, "serviceId": "phase8",
            "description": "health of phase8 (release gates)", "checks": {}}  # fmt: skip
    if snapshot is None:
        body["checks"]["snapshot:age"] = _check("component", None, "s", "fail", now, problem)
        body["status"] = "fail"
        return body
    generated = parse_timestamp(snapshot["generated_at"]).at
    age = at - generated
    if age > fail_after:
        status, why = "fail", f"older than {format_duration(fail_after)}: no phase8 command has run since"
    elif age > warn_after:
        status, why = "warn", f"older than {format_duration(warn_after)}: no phase8 command has run since"
    else:
        status, why = "pass", ""
    command = snapshot.get("command") or {}
    body["checks"]["snapshot:age"] = _check(
        "component", round(age.total_seconds(), 3), "s", status, snapshot["generated_at"],
        f"written by `phase8 {command.get('name')}` (exit {command.get('exit_code')})" + (f"; {why}" if why else ""),
    )  # fmt: skip
    wh = snapshot.get("warehouse") or {}
    if wh.get("problem"):
        wstatus, wout = "warn", f"could not be read when the snapshot was written: {wh['problem']}"
    elif not wh.get("exists"):
        wstatus, wout = "warn", "no warehouse yet; the first `phase8 gate` creates it"
    elif wh.get("version") != wh.get("latest_version"):
        wstatus = "fail"
        wout = f"schema version {wh.get('version')}, this release needs {wh.get('latest_version')}: run `phase8 upgrade apply`"
    else:
        wstatus, wout = "pass", ""
    body["checks"]["warehouse:schemaVersion"] = _check(
        "datastore", wh.get("version"), "version", wstatus, snapshot["generated_at"], wout
    )
    runs = snapshot.get("gate_runs") or []
    newest = max((r["recorded_at"] for r in runs), default=None)
    if newest is None:
        body["checks"]["gate:lastRun"] = _check("component", None, "s", "warn", now, "no gate run recorded yet")
    else:
        run_age = round((at - parse_timestamp(newest).at).total_seconds(), 3)
        body["checks"]["gate:lastRun"] = _check(
            "component", run_age, "s", "pass", newest, f"{len(runs)} evidence root(s)"
        )
    body["status"] = max((c[0]["status"] for c in body["checks"].values()), key=STATUSES.index)
    return body


def gate_verdicts(home: Path) -> tuple[dict, bool]:
    snapshot, problem = read_snapshot(home)
    if snapshot is None:
        return {"generated_at": None, "problem": problem, "roots": []}, False
    keep = ("root", "verdict", "evaluated_at", "recorded_at", "release", "run_id", "gates")
    roots = [{k: run.get(k) for k in keep} for run in snapshot.get("gate_runs") or []]
    return {"generated_at": snapshot["generated_at"], "problem": None, "roots": roots}, True


def create_app(
    home: Path,
    warn_after: timedelta = DEFAULT_WARN_AFTER,
    fail_after: timedelta = DEFAULT_FAIL_AFTER,
    clock: Callable[[], datetime] = now_utc,
):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    def _health(request: Request) -> JSONResponse:
        body = health(home, clock(), warn_after, fail_after)
        code = 503 if body["status"] == "fail" else 200
        return JSONResponse(body, status_code=code, media_type=HEALTH_MEDIA_TYPE, headers={"Cache-Control": "no-store"})

    def _probe(name: str, checks: list[tuple[str, bool, str]], verbose: bool) -> PlainTextResponse:
        ok = all(passed for _, passed, _ in checks)
        if not verbose:
            return PlainTextResponse("ok" if ok else "failed", status_code=200 if ok else 503)
        lines = [f"[+]{n} ok" if passed else f"[-]{n} failed: {why}" for n, passed, why in checks]
        lines.append(f"{name} check {'passed' if ok else 'failed'}")
        return PlainTextResponse("\n".join(lines) + "\n", status_code=200 if ok else 503)

    def _livez(request: Request) -> PlainTextResponse:
        return _probe("livez", [("ping", True, "")], "verbose" in request.query_params)

    def _readyz(request: Request) -> PlainTextResponse:
        body = health(home, clock(), warn_after, fail_after)
        checks = [(key, c[0]["status"] != "fail", c[0]["output"]) for key, c in body["checks"].items()]
        return _probe("readyz", checks, "verbose" in request.query_params)

    def _gate(request: Request) -> JSONResponse:
        body, ok = gate_verdicts(home)
        return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/health", _health, methods=["GET"]),
            Route("/livez", _livez, methods=["GET"]),
            Route("/readyz", _readyz, methods=["GET"]),
            Route("/gate", _gate, methods=["GET"]),
        ]
    )


def openapi_document() -> dict:
    """The OpenAPI 3.1 contract of the app (committed as ``docs/ops/health-openapi.yaml``)."""
    health_schema = copy.deepcopy(HEALTH_RESPONSE_SCHEMA)
    health_schema.pop("$schema")
    verbose = {
        "name": "verbose",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "description": "present: list every check, one line each ([+] ok / [-] failed: why)",
        "schema": {"type": "string"},
    }

    def text(description: str) -> dict:
        return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}

    def health_json(description: str) -> dict:
        return {
            "description": description,
            "content": {HEALTH_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/HealthResponse"}}},
        }

    def verdicts(description: str) -> dict:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GateVerdicts"}}},
        }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "phase8 health endpoint",
            "version": "1",
            "description": "Read-only health of a self-hosted phase8, from the snapshot every phase8 command "
            "writes at its end (the app never opens the warehouse). Binds 127.0.0.1 by default.",
        },
        "paths": {
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "IETF health-check response (draft-inadarei-api-health-check)",
                    "responses": {
                        "200": health_json("pass or warn"),
                        "503": health_json("fail: a missing or old snapshot, or a warehouse that needs an upgrade"),
                    },
                }
            },
            "/livez": {
                "get": {
                    "operationId": "livez",
                    "summary": "Liveness: the process answers",
                    "parameters": [verbose],
                    "responses": {"200": text("ok")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness: no health check fails",
                    "parameters": [verbose],
                    "responses": {"200": text("ok"), "503": text("failed")},
                }
            },
            "/gate": {
                "get": {
                    "operationId": "gate",
                    "summary": "The latest verdict per evidence root and each gate's status",
                    "responses": {"200": verdicts("the latest gate runs"), "503": verdicts("no usable snapshot")},
                }
            },
        },
        "components": {
            "schemas": {
                "HealthResponse": health_schema,
                "GateVerdicts": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["generated_at", "problem", "roots"],
                    "properties": {
                        "generated_at": {"type": ["string", "null"], "format": "date-time"},
                        "problem": {"type": ["string", "null"]},
                        "roots": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": [
                                    "root",
                                    "verdict",
                                    "evaluated_at",
                                    "recorded_at",
                                    "release",
                                    "run_id",
                                    "gates",
                                ],
                                "properties": {
                                    "root": {"type": "string"},
                                    "verdict": {"enum": ["pass", "blocked"]},
                                    "evaluated_at": {"type": "string", "format": "date-time"},
                                    "recorded_at": {"type": "string", "format": "date-time"},
                                    "release": {"type": "string"},
                                    "run_id": {"type": "string"},
                                    "gates": {
                                        "type": "object",
                                        "additionalProperties": {"enum": ["pass", "warn", "fail", "error", "skipped"]},
                                    },
                                },
                            },
                        },
                    },
                },
            }
        },
    }


def openapi_yaml() -> str:
    import yaml

    header = "# Generated by `phase8 serve --write-openapi docs/ops/health-openapi.yaml`; do not edit by hand.\n"
    return header + yaml.safe_dump(openapi_document(), sort_keys=False, width=110, allow_unicode=True)
