"""A fake `systemctl` program: unit state in a text file, every call logged.

`python -S -I fake_systemctl_cli.py STATE_DIR ARGS...` (the `systemctl` wrapper on PATH runs
it) does what charmlibs.systemd asks of systemctl, with systemctl's exit codes:
`[--quiet] is-active|is-failed|is-enabled UNIT` (0 = yes; is-active answers 3 for "no"),
`start|stop|restart|enable|disable [--now] UNIT...`, `daemon-reload`. Units exist only once the
fake snapd installed the snap; acting on a missing unit fails as systemctl does. A unit marked
`broken` starts (exit 0) but does not stay up, like a simple service whose process exits at
once.

It runs once per systemctl call, so it imports nothing beyond os, sys and fcntl (start-up time
is most of a call's cost). State: `STATE_DIR/units`, one line per unit,
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


def start(unit: dict[str, bool]) -> None:
    """What starting does to a unit."""
    unit["active"] = not unit.get("broken", False)
    unit["failed"] = unit.get("broken", False)


def stop(unit: dict[str, bool]) -> None:
    """What stopping does to a unit."""
    unit["active"] = False
    unit["failed"] = False


def _query(verb: str, names: list[str], units: dict[str, dict[str, bool]], quiet: bool) -> int:
    field = {"is-active": "active", "is-failed": "failed", "is-enabled": "enabled"}[verb]
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
            return _query(verb, names, units, quiet="--quiet" in flags or "-q" in flags)
        missing = [name for name in names if name not in units]
        if missing:
            return _missing(verb, missing[0])
        for name in names:
            _act(verb, units[name], now="--now" in flags)
        write_units(state_dir, units)
        return 0
    finally:
        unlock(descriptor)


_ACTIONS = ("start", "stop", "restart", "enable", "disable")

if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
