"""A fake `snap` command: the two command lines a charm shells out for, against the fake snapd.

`python fake_snap_cli.py SOCKET LOG ARGS...` (through the `snap` wrapper on PATH):

- `snap install --dangerous FILE`: sideloads FILE (private route of the fake snapd, standing in
  for snapd's multipart upload), prints `<name> <version> installed`;
- `snap refresh [--amend] [--channel=C | --channel C] NAME`: the real REST call, with `amend`.

Errors go to stderr as `error: ...` with exit code 1, as the real CLI does. Every invocation is
appended to LOG (one JSON list per line).
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str):
        super().__init__("localhost", timeout=30)
        self._socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._socket_path)


class CliError(Exception):
    """What the real CLI prints after `error: `."""


def _call(socket_path: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    connection = _UnixConnection(socket_path)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        connection.request(method, path, body=payload, headers=headers)
        document = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    if document["type"] == "error":
        result = document["result"]
        if result.get("kind") == "snap-local":
            raise CliError(
                f"local snap {path.rsplit('/', 1)[-1]!r} is unknown to the store, "
                "use --amend to proceed anyway"
            )
        raise CliError(result["message"])
    if document["type"] == "async":
        while True:
            change = _call(socket_path, "GET", f"/v2/changes/{document['change']}")
            if change["ready"]:
                if change["status"] != "Done":
                    raise CliError(change.get("err", change["status"]))
                return change
            time.sleep(0.05)
    return document["result"]


def _installed(socket_path: str, name: str) -> str:
    info = _call(socket_path, "GET", f"/v2/snaps/{name}")
    return f"{info['name']} {info['version']}"


def main(socket_path: str, log: Path, argv: list[str]) -> int:
    """Run one snap command line; return its exit code."""
    with log.open("a") as file:
        file.write(json.dumps(argv) + "\n")
    try:
        if len(argv) == 3 and argv[:2] == ["install", "--dangerous"]:
            path = Path(argv[2]).absolute()
            change = _call(socket_path, "POST", "/x-test/sideload", {"path": str(path)})
            name = change["data"]["snap-names"][0]
            print(f"{_installed(socket_path, name)} installed")
            return 0
        if argv[:1] == ["refresh"] and len(argv) >= 2:
            options = argv[1:-1]
            name = argv[-1]
            body: dict[str, Any] = {"action": "refresh", "amend": "--amend" in options}
            for index, option in enumerate(options):
                if option.startswith("--channel="):
                    body["channel"] = option.split("=", 1)[1]
                elif option == "--channel":
                    body["channel"] = options[index + 1]
            _call(socket_path, "POST", f"/v2/snaps/{name}", body)
            print(f"{_installed(socket_path, name)} refreshed")
            return 0
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"fake snap: unsupported command line {argv}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:]))
