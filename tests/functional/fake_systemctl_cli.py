"""A fake `systemctl` program: unit state in a text file, every call logged.

`python -S -I fake_systemctl_cli.py STATE_DIR ARGS...` (the `systemctl` wrapper on PATH runs
it) does what charmlibs.systemd asks of systemctl, with systemctl's exit codes:
`[--quiet] is-active|is-failed|is-enabled UNIT` (0 = yes; is-active answers 3 for "no"),
`start|stop|restart|enable|disable [--now] UNIT...`, `daemon-reload`. Units exist only once the
fake snapd installed the snap; acting on a missing unit fails as systemctl does. A unit marked
`broken` starts (exit 0) but does not stay up, like a simple service whose process exits at
once.

It runs once per systemctl call, so it imports nothing beyond os, sys and fcntl (start-up time
is most of a call's cost).

A unit can also be real (the real-Hockeypuck tests): when `STATE_DIR/real/UNIT.argv` exists
(a JSON list), starting the unit starts that command line, a supervisor that runs the real
daemon (tests/real/service_supervisor.py), in its own session; stopping it sends SIGTERM and
waits until it is gone; `is-active` is true while the supervisor reports the daemon running.

State: `STATE_DIR/units`, one line per unit,
`name active enabled failed broken` as 0/1. Log: `STATE_DIR/calls.log`, one line per call,
`by<TAB>arg<TAB>arg...` where `by` is `systemctl` or `snapd`.
"""

import fcntl
import os
import sys

FIELDS = ("active", "enabled", "failed", "broken")
UNITS_FILE = "units"
LOG_FILE = "calls.log"
LOCK_FILE = "lock"


def lock(state_dir: str) -> int:
    """Take the state's exclusive lock; returns the descriptor to pass to `unlock`."""
    descriptor = os.open(os.path.join(state_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return descriptor


def unlock(descriptor: int) -> None:
    """Release the lock."""
    os.close(descriptor)


def read_units(state_dir: str) -> dict[str, dict[str, bool]]:
    """The unit table (call with the lock held)."""
    try:
        with open(os.path.join(state_dir, UNITS_FILE)) as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return {}
    units: dict[str, dict[str, bool]] = {}
    for line in lines:
        name, *flags = line.split()
        units[name] = {field: flag == "1" for field, flag in zip(FIELDS, flags, strict=True)}
    return units


def write_units(state_dir: str, units: dict[str, dict[str, bool]]) -> None:
    """Write the unit table back (call with the lock held)."""
    lines = [
        " ".join([name, *("1" if unit.get(field) else "0" for field in FIELDS)])
        for name, unit in sorted(units.items())
    ]
    with open(os.path.join(state_dir, UNITS_FILE), "w") as file:
        file.write("".join(line + "\n" for line in lines))


def log(state_dir: str, by: str, argv: list[str]) -> None:
    """Append one call to the log."""
    with open(os.path.join(state_dir, LOG_FILE), "a") as file:
        file.write("\t".join([by, *argv]) + "\n")


REAL_DIR = "real"
STOP_TIMEOUT = 30.0
START_TIMEOUT = 10.0


def _real_file(state_dir: str, name: str, suffix: str) -> str:
    return os.path.join(state_dir, REAL_DIR, f"{name}.{suffix}")


def is_real(state_dir: str, name: str) -> bool:
    """Whether the unit runs a real process."""
    return os.path.exists(_real_file(state_dir, name, "argv"))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read().strip()
    except FileNotFoundError:
        return ""


def _supervisor(state_dir: str, name: str) -> int | None:
    text = _read(_real_file(state_dir, name, "pid"))
    return int(text) if text and _alive(int(text)) else None


def real_active(state_dir: str, name: str) -> bool:
    """Whether the real unit's daemon runs (not stopped, not waiting to be restarted)."""
    if _supervisor(state_dir, name) is None:
        return False
    words = _read(_real_file(state_dir, name, "state")).split()
    return len(words) == 2 and words[0] == "running" and _alive(int(words[1]))


def real_start(state_dir: str, name: str) -> None:
    """Start the real unit's supervisor unless it runs."""
    if _supervisor(state_dir, name) is not None:
        return
    import json  # noqa: PLC0415 - real units only
    import subprocess  # noqa: PLC0415

    with open(_real_file(state_dir, name, "argv")) as file:
        argv = json.load(file)
    state = _real_file(state_dir, name, "state")
    with open(state, "w") as file:
        file.write("starting")
    process = subprocess.Popen(
        argv,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(_real_file(state_dir, name, "supervisor.log"), "ab"),  # noqa: SIM115
    )
    with open(_real_file(state_dir, name, "pid"), "w") as file:
        file.write(str(process.pid))
    # systemd returns once a simple service's process runs: wait for the supervisor's word.
    import time  # noqa: PLC0415

    deadline = time.monotonic() + START_TIMEOUT
    while _read(state) == "starting" and _alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def real_stop(state_dir: str, name: str) -> None:
    """Stop the real unit's supervisor and its daemon; wait until they are gone."""
    import signal  # noqa: PLC0415 - real units only
    import time  # noqa: PLC0415

    pid = _supervisor(state_dir, name)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def start(unit: dict[str, bool]) -> None:
    """What starting does to a unit."""
    unit["active"] = not unit.get("broken", False)
    unit["failed"] = unit.get("broken", False)


def stop(unit: dict[str, bool]) -> None:
    """What stopping does to a unit."""
    unit["active"] = False
    unit["failed"] = False


def _query(
    state_dir: str, verb: str, names: list[str], units: dict[str, dict[str, bool]], quiet: bool
) -> int:
    field = {"is-active": "active", "is-failed": "failed", "is-enabled": "enabled"}[verb]
    for name in names:
        if field == "active" and name in units and is_real(state_dir, name):
            units[name]["active"] = real_active(state_dir, name)
    answers = [units.get(name, {}).get(field, False) for name in names]
    if not quiet:
        for name, answer in zip(names, answers, strict=True):
            unit = units.get(name)
            if verb == "is-enabled":
                print("enabled" if answer else ("disabled" if unit else "not-found"))
            elif unit and unit.get("failed"):
                print("failed")
            else:
                print("active" if unit and unit.get("active") else "inactive")
    if all(answers):
        return 0
    return 3 if verb == "is-active" else 1


def _missing(verb: str, name: str) -> int:
    if verb in ("enable", "disable"):
        print(f"Failed to {verb} unit: Unit file {name} does not exist.", file=sys.stderr)
        return 1
    reason = "not loaded" if verb == "stop" else "not found"
    print(f"Failed to {verb} {name}: Unit {name} {reason}.", file=sys.stderr)
    return 5


def _act(verb: str, unit: dict[str, bool], now: bool) -> None:
    if (verb == "start" and not unit.get("active")) or verb == "restart":
        start(unit)
    elif verb == "stop":
        stop(unit)
    elif verb == "enable":
        unit["enabled"] = True
        if now:
            start(unit)
    elif verb == "disable":
        unit["enabled"] = False
        if now:
            stop(unit)


def _act_real(state_dir: str, name: str, verb: str, unit: dict[str, bool]) -> None:
    """Make the real process follow the unit's new state."""
    if verb in ("stop", "restart") or not unit.get("active"):
        real_stop(state_dir, name)
    if unit.get("active"):
        real_start(state_dir, name)


def _usage_error(verb: str, names: list[str]) -> str | None:
    if not verb:
        return "fake systemctl: no command"
    if verb not in ("daemon-reload", "is-active", "is-failed", "is-enabled", *_ACTIONS):
        return f'Unknown command verb "{verb}".'
    if verb != "daemon-reload" and not names:
        return f"Too few arguments for {verb}."
    return None


def main(state_dir: str, argv: list[str]) -> int:
    """Run one systemctl command line against the state; return its exit code."""
    descriptor = lock(state_dir)
    try:
        log(state_dir, "systemctl", argv)
        flags = {arg for arg in argv if arg.startswith("-")}
        words = [arg for arg in argv if not arg.startswith("-")] or [""]
        verb, names = words[0], words[1:]
        error = _usage_error(verb, names)
        if error is not None:
            print(error, file=sys.stderr)
            return 1
        units = read_units(state_dir)
        if verb.startswith("is-"):
            return _query(state_dir, verb, names, units, quiet="--quiet" in flags or "-q" in flags)
        missing = [name for name in names if name not in units]
        if missing:
            return _missing(verb, missing[0])
        for name in names:
            real = is_real(state_dir, name)
            if real:
                units[name]["active"] = real_active(state_dir, name)
            _act(verb, units[name], now="--now" in flags)
            if real:
                _act_real(state_dir, name, verb, units[name])
        write_units(state_dir, units)
        return 0
    finally:
        unlock(descriptor)


_ACTIONS = ("start", "stop", "restart", "enable", "disable")

if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
