"""Structured JSON logging in the spec §4.3 format, through the standard `logging` module.

Nothing here runs at import: entrypoints call `configure_logging(level)` once. Code anywhere logs
with a plain `logging.getLogger(__name__)`; `log_event` is the short way to emit a §4.3 event:

    log_event(logger, "reconciliation.job.created", resource_type="reconciliation_job",
              resource_id=job.id, metadata={"job_name": job.name, "file_count": 2})

Every record becomes one JSON line with the §4.3 keys (timestamp, level, organization_id, user_id,
action, resource_type, resource_id, ip_address, user_agent, metadata) plus `message` and `logger`.
Fields a record does not set come from the request being served (request id, client address, user
agent, and the organization/user once authentication has bound them), so a slow-query warning
logged deep inside the database adapter still names the request and tenant it belongs to. Other
`extra=` keys go into `metadata`. Keys that name a secret (password, token, secret, cookie, ...)
are redacted wherever they appear in metadata, and keys that name an e-mail address are withheld
(`[PERSONAL]`; docs/privacy.md, "Nothing personal in the logs").
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

# §4.1 names four levels; WARNING is written WARN and CRITICAL folds into ERROR.
_LEVEL_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "ERROR",
}

_EVENT_FIELDS = (
    "organization_id",
    "user_id",
    "action",
    "resource_type",
    "resource_id",
    "ip_address",
    "user_agent",
)

# Attributes every LogRecord has; anything else on a record came from `extra=` and goes to metadata.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}

_SECRET_KEY = re.compile(
    r"^(?:.*[_-])?(?:password|passwd|passphrase|secret|token|authorization|cookie|set-cookie|"
    r"api[_-]?key|otp|mfa[_-]?code|recovery[_-]?codes?|private[_-]?key|client[_-]?secret)$",
    re.IGNORECASE,
)
REDACTED = "[REDACTED]"
# Personal data (issue 17 item 4): nothing logs an address, and a key naming one is withheld anyway,
# so a later `extra={"email": ...}` cannot put one in the logs.
_PERSONAL_KEY = re.compile(r"^(?:.*[_-])?(?:e-?mail|e-?mail[_-]address|full[_-]name)s?$", re.IGNORECASE)
PERSONAL = "[PERSONAL]"

_HANDLER_MARK = "_reckai_json_handler"


@dataclass
class LogContext:
    """What the current request contributes to every record logged while serving it.

    Mutable on purpose: authentication calls `bind_actor` once it knows the caller, and records
    logged afterwards (also from worker threads, which copy the context) carry the ids.
    """

    request_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    organization_id: str | None = None
    user_id: str | None = None


_current_context: ContextVar[LogContext | None] = ContextVar("reckai_log_context", default=None)


def current_log_context() -> LogContext | None:
    return _current_context.get()


@contextmanager
def log_context(context: LogContext) -> Iterator[LogContext]:
    token = _current_context.set(context)
    try:
        yield context
    finally:
        _current_context.reset(token)


def bind_actor(organization_id: object | None, user_id: object | None) -> None:
    """Name the tenant and user of the request being served in every later log record."""
    context = _current_context.get()
    if context is not None:
        context.organization_id = None if organization_id is None else str(organization_id)
        context.user_id = None if user_id is None else str(user_id)


def redact(value: Any) -> Any:
    """A copy of `value` with every mapping entry whose key names a secret replaced by REDACTED,
    and one whose key names personal data (an e-mail address) by PERSONAL."""
    if isinstance(value, Mapping):
        return {
            key: (REDACTED if isinstance(key, str) and _SECRET_KEY.match(key)
                  else PERSONAL if isinstance(key, str) and _PERSONAL_KEY.match(key) else redact(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def _utc_timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line in the §4.3 shape; never raises on odd values (falls back to str)."""

    def format(self, record: logging.LogRecord) -> str:
        context = _current_context.get() or LogContext()
        metadata: dict[str, Any] = {}
        explicit = getattr(record, "metadata", None)
        if isinstance(explicit, Mapping):
            metadata.update(explicit)
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in _EVENT_FIELDS and key != "metadata":
                metadata[key] = value
        if context.request_id is not None:
            metadata.setdefault("request_id", context.request_id)
        if record.exc_info and record.exc_info[0] is not None:
            metadata["exception_type"] = record.exc_info[0].__name__
            metadata["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            metadata["traceback"] = record.exc_text

        entry = {
            "timestamp": _utc_timestamp(record.created),
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname),
            "organization_id": _text_or_none(
                getattr(record, "organization_id", None) or context.organization_id
            ),
            "user_id": _text_or_none(getattr(record, "user_id", None) or context.user_id),
            "action": _text_or_none(getattr(record, "action", None)) or record.name,
            "resource_type": _text_or_none(getattr(record, "resource_type", None)),
            "resource_id": _text_or_none(getattr(record, "resource_id", None)),
            "ip_address": _text_or_none(getattr(record, "ip_address", None) or context.ip_address),
            "user_agent": _text_or_none(getattr(record, "user_agent", None) or context.user_agent),
            "metadata": redact(metadata),
            "message": record.getMessage(),
            "logger": record.name,
        }
        return json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record (ours, uvicorn's, Litestar's, SQLAlchemy's) as JSON lines to `stream`
    (standard output by default, where the platform's collector picks it up). Idempotent: calling
    it again replaces the handler it installed before."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(JsonLogFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Frameworks that bring their own handlers would print a second, non-JSON line.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        framework_logger = logging.getLogger(name)
        framework_logger.handlers.clear()
        framework_logger.propagate = True
    # HTTP client libraries log every URL at INFO, query strings (and their tokens) included.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler


def log_event(
    logger: logging.Logger,
    action: str,
    *,
    level: int = logging.INFO,
    message: str | None = None,
    organization_id: object | None = None,
    user_id: object | None = None,
    resource_type: str | None = None,
    resource_id: object | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    exc_info: bool = False,
) -> None:
    """Emit one §4.3 event. Unset actor/client fields are filled from the current request."""
    extra: dict[str, Any] = {"action": action, "metadata": dict(metadata or {})}
    for key, value in (
        ("organization_id", organization_id),
        ("user_id", user_id),
        ("resource_type", resource_type),
        ("resource_id", resource_id),
        ("ip_address", ip_address),
        ("user_agent", user_agent),
    ):
        if value is not None:
            extra[key] = value
    logger.log(level, message or action, extra=extra, exc_info=exc_info, stacklevel=2)
