"""The tests' handle on the fake `systemctl` (fake_systemctl_cli.py): its state and its log."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from tests.functional import fake_systemctl_cli as cli


class FakeSystemctl:
    """Puts `systemctl` on PATH; reads and changes the units; reads the call log."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)

    def write_wrapper(self, bin_dir: Path) -> Path:
        """Put a `systemctl` executable into bin_dir that runs the fake."""
        wrapper = bin_dir / "systemctl"
        # -S -I: no site, no environment: start-up time is most of a call's cost.
        command = [sys.executable, "-S", "-I", cli.__file__, str(self.state_dir)]
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n')
        wrapper.chmod(0o755)
        return wrapper

    def _change(self, name: str, change: str, **fields: bool) -> bool:
        descriptor = cli.lock(str(self.state_dir))
        try:
            units = cli.read_units(str(self.state_dir))
            if change == "add":
                units[name] = {"active": False, "enabled": False, "failed": False, **fields}
            elif change == "set":
                units[name].update(fields)
            elif change == "snapd-restart":
                unit = units.get(name)
                if unit is None:
                    return False
                if not unit.get("enabled"):
                    cli.stop(unit)
                    cli.write_units(str(self.state_dir), units)
                    return False
                cli.start(unit)
                if cli.is_real(str(self.state_dir), name):
                    cli.real_stop(str(self.state_dir), name)
                    cli.real_start(str(self.state_dir), name)
                cli.log(str(self.state_dir), "snapd", ["restart", name])
            cli.write_units(str(self.state_dir), units)
            return True
        finally:
            cli.unlock(descriptor)

    def units(self) -> dict[str, dict[str, bool]]:
        """A snapshot of every unit's state."""
        descriptor = cli.lock(str(self.state_dir))
        try:
            return cli.read_units(str(self.state_dir))
        finally:
            cli.unlock(descriptor)

    def unit(self, name: str) -> dict[str, bool]:
        """One unit's state without its test knobs ({} when it does not exist)."""
        unit = self.units().get(name, {})
        return {key: value for key, value in unit.items() if key != "broken"}

    def add_unit(self, name: str, *, enabled: bool, active: bool) -> None:
        """Make a unit exist (what snapd does when it installs a snap with a daemon)."""
        self._change(name, "add", enabled=enabled, active=active)

    def set(self, name: str, **fields: bool) -> None:
        """Change a unit behind the charm's back (a crash, an operator, the `broken` knob)."""
        unknown = set(fields) - set(cli.FIELDS)
        if unknown:
            raise ValueError(f"no such unit fields: {sorted(unknown)}")
        self._change(name, "set", **fields)

    def snapd_restart(self, name: str) -> bool:
        """What snapd does to a snap's daemon when it switches revisions: restart if enabled.

        Returns:
            Whether the unit was (re)started.
        """
        return self._change(name, "snapd-restart")

    def make_real(self, name: str, argv: list[str]) -> None:
        """Make the unit run a real process: `argv` starts its supervisor."""
        real = self.state_dir / cli.REAL_DIR
        real.mkdir(exist_ok=True)
        (real / f"{name}.argv").write_text(json.dumps(argv))

    def stop_real(self, name: str) -> None:
        """Stop the unit's real process, if it runs (test clean-up)."""
        if cli.is_real(str(self.state_dir), name):
            cli.real_stop(str(self.state_dir), name)

    def calls(self, by: str = "systemctl") -> list[list[str]]:
        """Every command line run so far (by the workload through systemctl, or by snapd)."""
        path = self.state_dir / cli.LOG_FILE
        if not path.exists():
            return []
        entries = [line.split("\t") for line in path.read_text().splitlines()]
        return [argv for who, *argv in entries if who == by]

    def count(self, verb: str, unit: str | None = None, by: str = "systemctl") -> int:
        """How many command lines ran `verb` (on `unit`)."""
        total = 0
        for argv in self.calls(by):
            words = [arg for arg in argv if not arg.startswith("-")]
            if words and words[0] == verb and (unit is None or unit in words[1:]):
                total += 1
        return total
