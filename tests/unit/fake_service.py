"""The Hockeypuck service as the offline-tool actions see it: stop and start, in order."""

from __future__ import annotations


class FakeService:
    """Records `stop` and `start` in `events`; either can be made to fail."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.stop_fails = False
        self.start_fails = False

    def stop(self) -> None:
        self.events.append("stop")
        if self.stop_fails:
            raise RuntimeError("systemctl stop failed")

    def start(self) -> None:
        self.events.append("start")
        if self.start_fails:
            raise RuntimeError("systemctl start failed")
