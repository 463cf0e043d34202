"""Property: over any sequence of events, restarts == changes that affect the daemon."""

from __future__ import annotations

import dataclasses
import random

import pytest
from ops import testing

from tests.unit.conftest import DB_USER, FakeSystemd, ready_state

ADMIN = "4E6955676366F4F25D46BBD77722ECD1CF6E3EEA"
# Different spellings of the same admin key set render the same file: not a change.
ADMIN_SPELLINGS = [ADMIN, f"0x{ADMIN.lower()}", f" {ADMIN} , {ADMIN}\n"]
LOG_LEVELS = ["INFO", "DEBUG", "info"]


@dataclasses.dataclass
class Model:
    """What the daemon should be running with, as the test understands it."""

    log_level: str = "INFO"
    password: str = "pw-0"
    admin_keys: bool = False

    def effective(self) -> tuple[str, str, bool]:
        return (self.log_level.upper(), self.password, self.admin_keys)


@pytest.mark.parametrize("seed", range(4))
def test_restarts_equal_effective_changes(ctx: testing.Context, systemctl: FakeSystemd, seed: int):
    rng = random.Random(seed)
    model = Model()
    state = ready_state(config={"log-level": model.log_level})
    secret = next(iter(state.secrets))
    secret = dataclasses.replace(
        secret, tracked_content={"username": DB_USER, "password": model.password}
    )
    state = dataclasses.replace(state, secrets={secret})
    state = ctx.run(ctx.on.config_changed(), state)
    expected_restarts = 1
    applied = model.effective()

    for step in range(60):
        action = rng.choice(
            [
                "update",
                "leader",
                "start",
                "same-config",
                "relation",
                "log-level",
                "admin",
                "rotate",
                "secret-same",
                "invalid",
            ]
        )
        config = dict(state.config)
        secret = next(iter(state.secrets))
        if action == "update":
            event = ctx.on.update_status()
        elif action == "leader":
            state = dataclasses.replace(state, leader=not state.leader)
            event = ctx.on.leader_elected()
        elif action == "start":
            event = ctx.on.start()
        elif action == "same-config":
            event = ctx.on.config_changed()
        elif action == "relation":
            event = ctx.on.relation_changed(next(iter(state.relations)))
        elif action == "log-level":
            model.log_level = rng.choice(LOG_LEVELS)
            config["log-level"] = model.log_level
            event = ctx.on.config_changed()
        elif action == "admin":
            model.admin_keys = rng.random() < 0.5
            config["admin-keys"] = rng.choice(ADMIN_SPELLINGS) if model.admin_keys else ""
            event = ctx.on.config_changed()
        elif action == "rotate":
            model.password = f"pw-{step}"
            secret = dataclasses.replace(
                secret, latest_content={"username": DB_USER, "password": model.password}
            )
            event = ctx.on.secret_changed(secret)
        elif action == "secret-same":
            event = ctx.on.secret_changed(secret)
        else:  # invalid config: blocked, nothing written, nothing restarted; then put back
            bad = ctx.run(
                ctx.on.config_changed(),
                dataclasses.replace(state, config={**config, "log-level": "LOUD"}),
            )
            assert isinstance(bad.unit_status, testing.BlockedStatus)
            event = ctx.on.config_changed()

        state = ctx.run(event, dataclasses.replace(state, config=config, secrets={secret}))

        if model.effective() != applied:
            expected_restarts += 1
            applied = model.effective()
        assert systemctl.restarts == expected_restarts, f"step {step}: {action}"
        assert state.unit_status == testing.ActiveStatus()
