"""The replication stream's client side without a server: its messages and how it rides out lost
connections (the end-to-end behaviour is in test_capture.py)."""

from __future__ import annotations

import struct
import time
from typing import Any

from inventory_bronze.source.capture_errors import SlotInvalidatedError
from inventory_bronze.source.capture_slot import CaptureNames
from inventory_bronze.source.capture_stream import SlotFeed, _ConnectionLost, start_command, status_update


def test_a_status_update_confirms_the_flushed_position_and_may_ask_for_an_answer() -> None:
    message = status_update(received=0x2_0000_0010, flushed=0x1_0000_0008, reply=True)
    kind, written, flushed, applied, _clock, reply = struct.unpack("!cQQQqB", message)
    assert (kind, written, flushed, applied, reply) == (b"r", 0x2_0000_0010, 0x1_0000_0008, 0x1_0000_0008, 1)


def test_the_start_command_names_slot_publication_and_position() -> None:
    names = CaptureNames("tests.orders", 'ib"slot', "ib_pub")
    assert start_command(names, 0x16_B374D848) == (
        b'START_REPLICATION SLOT "ib""slot" LOGICAL 16/B374D848 '
        b"(proto_version '1', publication_names '\"ib_pub\"')"
    )


class _Flaky(SlotFeed):
    """Connections that each stay up `up_s`, then drop; `script` says which connects fail."""

    def __init__(self, script: list[str], up_s: float, timeout_s: float) -> None:
        self.script, self.up_s, self.calls = list(script), up_s, 0
        super().__init__(
            None,  # type: ignore[arg-type]
            CaptureNames.for_table("tests.orders"),
            0,
            on_transaction=lambda txn: None,
            backlog=lambda: 0,
            max_buffered=10,
            reconnect_timeout_s=timeout_s,
        )

    def _stream(self) -> Any:
        self.calls += 1
        step = self.script.pop(0) if self.script else "stop"
        if step == "refused":
            raise _ConnectionLost("connection refused")
        if step == "stop":
            self._stop.wait(30)
            return
        self._down_since = None  # connected
        time.sleep(self.up_s)
        raise _ConnectionLost("server closed the connection")


def test_each_lost_connection_gets_the_whole_reconnect_time() -> None:
    # up for longer than the reconnect time, lost, reconnected, up again, lost again: never given up
    feed = _Flaky(["up", "up", "up"], up_s=1.2, timeout_s=1.0)
    try:
        deadline = time.monotonic() + 20
        while feed.calls < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert feed.position() == 0  # no error handed to the consumer
        assert feed.calls == 4
    finally:
        feed.close()


def test_a_connection_down_for_longer_than_the_reconnect_time_fails_clearly() -> None:
    feed = _Flaky(["up", *["refused"] * 10], up_s=0.1, timeout_s=1.0)
    try:
        deadline = time.monotonic() + 20
        while feed._error is None and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            feed.position()
        except SlotInvalidatedError as err:
            assert "tests.orders" in str(err) and "nothing is lost" in str(err)
        else:
            raise AssertionError("the feed did not give up")
    finally:
        feed.close()
