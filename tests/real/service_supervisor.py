"""Runs one snap app as systemd would run it: in the unit's namespaces, restarted on failure.

`python service_supervisor.py SPEC` (from the fake `systemctl`, see fake_systemctl_cli.py)
where SPEC is a JSON file written by the tests:

    {"netns": ..., "mounts": [[source, target], ...], "argv": [...], "env": {...},
     "cwd": ..., "restart_delay": seconds, "start_delay": seconds, "state": path, "log": path}

It enters the network namespace `netns`, a private mount namespace in which each source is
bound over its target (so the unit's files appear at /snap/hockeypuck and
/var/snap/hockeypuck, where the charm's config file says they are), and runs `argv` with
`env` in `cwd`, output appended to `log`. Like `Restart=on-failure`, a non-zero exit is
followed by a new start after `restart_delay`; SIGTERM stops the process and the supervisor.
`state` holds `running PID` while the process runs, `auto-restart` while it waits. An optional
`start_delay` waits before each start, like a daemon that takes its time to come up.

`python service_supervisor.py SPEC --once ARGV...` enters the same namespaces and executes
ARGV there once (what `snap run` does for the snap's tools).
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def enter(spec: dict) -> None:
    """Join the unit's network namespace and bind its files in a private mount namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(f"/run/netns/{spec['netns']}", os.O_RDONLY)
    _check(libc.setns(descriptor, CLONE_NEWNET), "setns")
    os.close(descriptor)
    _check(libc.unshare(CLONE_NEWNS), "unshare")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    for source, target in spec["mounts"]:
        _check(
            libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None),
            f"bind {source} on {target}",
        )


def _write_state(path: str, text: str) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def supervise(spec: dict) -> int:
    """Run the service until SIGTERM, restarting it when it fails."""
    stopping = False
    child: subprocess.Popen | None = None

    def on_term(_signal: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    while not stopping:
        delay_until = time.monotonic() + spec.get("start_delay", 0)
        while not stopping and time.monotonic() < delay_until:
            time.sleep(0.05)
        if stopping:
            break
        with open(spec["log"], "ab") as log:
            child = subprocess.Popen(
                spec["argv"],
                env=spec["env"],
                cwd=spec["cwd"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        _write_state(spec["state"], f"running {child.pid}")
        try:
            code = child.wait()
        except KeyboardInterrupt:
            code = child.wait()
        if stopping or code == 0:
            break
        _write_state(spec["state"], f"auto-restart {code}")
        deadline = time.monotonic() + spec["restart_delay"]
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
    if child is not None and child.poll() is None:
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    _write_state(spec["state"], "inactive")
    return 0


def main(argv: list[str]) -> int:
    """Supervise the service of SPEC, or run one command in its namespaces (--once)."""
    with open(argv[0]) as file:
        spec = json.load(file)
    enter(spec)
    if argv[1:2] == ["--once"]:
        os.chdir(spec["cwd"])
        os.execve(argv[2], argv[2:], spec["env"])  # noqa: S606 - what `snap run` does
    return supervise(spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
