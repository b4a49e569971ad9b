"""`reckai serve`: the HTTP API under uvicorn (and, in embedded mode, the in-process job worker).

Reads the settings once, configures JSON logging (standard output), builds the container with
`bootstrap(settings)`, serves `create_app(container)` and closes the container on shutdown
(Ctrl-C or SIGTERM). A configuration problem ends the command with one line on standard error
and exit code 2, never a traceback. Human-readable notices (where the API and its docs are) go to
standard error so standard output stays pure JSON lines for a log collector.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from reckai.logging_setup import configure_logging, log_event
from reckai.settings import Mode, Settings, SettingsError

logger = logging.getLogger("reckai.serve")

EXIT_CONFIGURATION = 2
EXIT_START_FAILED = 1


class _Terminated(Exception):
    """SIGTERM arrived. uvicorn shuts down gracefully, then re-raises the signal it captured; with
    the default disposition that would kill the process before the container is closed."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the HTTP API (in embedded mode also the job worker)",
        description="Serve the ReckAI HTTP API. Settings come from the environment (RECKAI_MODE, ...).",
    )
    parser.add_argument("--host", help="bind address (default: HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: PORT or 8000)")
    parser.set_defaults(handler=run)


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _fail(message: str, code: int) -> int:
    print(f"reckai serve: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIGURATION)
    except ValueError as exc:  # e.g. PORT=abc
        return _fail(f"invalid setting: {exc}", EXIT_CONFIGURATION)
    configure_logging(settings.log_level)

    # Imported here so `reckai --help` and other subcommands do not pay for the web stack.
    import uvicorn

    from reckai.bootstrap import bootstrap
    from reckai.entrypoints.http.app import create_app

    host = args.host or settings.http.host
    port = args.port or settings.http.port
    try:
        container = bootstrap(settings)
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIGURATION)
    except Exception as exc:  # noqa: BLE001 - any start failure becomes one line + a logged traceback
        log_event(logger, "server.start_failed", level=logging.ERROR, exc_info=True)
        return _fail(f"could not start: {type(exc).__name__}: {exc}", EXIT_START_FAILED)

    try:
        try:
            app = create_app(container)
        except SettingsError as exc:
            return _fail(str(exc), EXIT_CONFIGURATION)
        url = base_url(host, port)

        def announce() -> None:
            print(f"ReckAI API ({settings.mode.value} mode) at {url}", file=sys.stderr)
            print(f"OpenAPI docs at {url}/docs (schema: {url}/schema/openapi.json)", file=sys.stderr)
            log_event(
                logger,
                "server.started",
                metadata={"url": url, "mode": settings.mode.value, "docs": f"{url}/docs"},
            )

        app.on_startup.append(announce)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                lifespan="on",
                log_config=None,  # our JSON handler on the root logger renders uvicorn's records
                access_log=False,  # RequestEdge logs every request with its request id
                proxy_headers=False,  # X-Forwarded-For is honoured only from TRUSTED_PROXIES
                server_header=False,
            )
        )
        worker = container.worker_runner if settings.mode is Mode.EMBEDDED else None
        if worker is not None:
            worker.start()
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            server.run()
        except (KeyboardInterrupt, _Terminated):
            pass
        finally:
            signal.signal(signal.SIGTERM, previous_sigterm)
            if worker is not None:
                worker.stop()
            log_event(logger, "server.stopped")
    finally:
        container.close()
    return 0
