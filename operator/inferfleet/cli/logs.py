"""The operator's log lines: text or one JSON object a line, and kopf's routine lines at debug.

Owns ``configure(level, fmt)`` (the root handler ``inferfleet run`` installs), ``JSONFormatter``
(``{"time", "level", "logger", "message"}`` plus ``exception`` and kopf's object context when
present: what log pipelines parse without a pattern) and ``KopfRoutine``, which demotes kopf's
per-handler success lines ("Handler 'x' succeeded.", "Creation is processed: ...") from info to
debug, so they are shown only with ``--log-level debug``.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
from typing import Any, Final, Literal, TextIO

__all__ = ["FORMATS", "JSONFormatter", "KopfRoutine", "configure"]

FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# what kopf says at info each time a handler or activity runs as it should
_ROUTINE: Final = re.compile(
    r"^(Handler|Activity|Timer|Daemon) '.*' succeeded\.$"
    r"|^(Creation|Updating|Resuming|Deletion) is processed: "
)


class KopfRoutine(logging.Filter):
    """Shows kopf's routine success lines as debug records (dropped below ``threshold``)."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.INFO
            and record.name.startswith("kopf")
            and _ROUTINE.search(record.getMessage())
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.threshold <= logging.DEBUG
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)  # kopf's object context, when it adds one
        if ref:
            line["object"] = ref
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(level: str, fmt: Literal["text", "json"] = "text", stream: TextIO | None = None) -> None:
    """The root logger at ``level`` (debug, info, warning, error) with one handler on ``stream``
    (default: stderr)."""
    threshold = getattr(logging, level.upper())
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JSONFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(KopfRoutine(threshold))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
