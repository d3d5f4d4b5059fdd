"""``cli.logs``: one JSON object a line with ``--log-format json``, and kopf's routine success lines
shown only at debug."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from inferfleet.cli import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield io.StringIO()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_message_and_the_exception(captured: io.StringIO) -> None:
    logs.configure("info", "json", captured)
    logging.getLogger("inferfleet.loop").info("plan applied in %.2fs", 0.25)
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("inferfleet.loop").exception("round failed")
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["level"] == "info" and first["logger"] == "inferfleet.loop"
    assert first["message"] == "plan applied in 0.25s" and first["time"].endswith("+00:00")
    assert second["level"] == "error" and "ValueError: bad" in second["exception"]


@pytest.mark.parametrize(
    "message",
    [
        "Handler 'on_create' succeeded.",
        "Activity '_startup' succeeded.",
        "Creation is processed: 1 succeeded; 0 failed.",
    ],
)
def test_kopfs_routine_lines_are_debug(captured: io.StringIO, message: str) -> None:
    logs.configure("info", "text", captured)
    logging.getLogger("kopf.objects").info(message)
    logging.getLogger("kopf.objects").info("Handler 'x' failed temporarily: boom")  # not routine
    logging.getLogger("inferfleet.loop").info(message)  # not kopf's
    text = captured.getvalue()
    assert text.count(message) == 1 and "inferfleet.loop" in text and "failed temporarily" in text
    logs.configure("debug", "json", captured)
    logging.getLogger("kopf.objects").info(message)
    line = json.loads(captured.getvalue().splitlines()[-1])
    assert (line["level"], line["message"]) == ("debug", message)
