"""The block list, the admin key and the actions, through Juju events (ops.testing)."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from ops import testing

import admin_key
import hkp_client
from tests.unit.conftest import (
    ADMIN_FINGERPRINT,
    FakeBlocklist,
    FakeSnapd,
    FakeSystemd,
    config_file,
    ready_state,
)

PEERS = "hockeypuck-peers"
MALLORY = "246125B19FA35CF7C44DA51537AF469DDAEB645C"
ALICE = "68C5878085CD227BB9697F15F7BEC0A960422C11"


@dataclass
class FakeHkp:
    """The local Hockeypuck's HKP API, as the actions see it."""

    ready: bool = True
    keys: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    database_up: bool = True

    def __call__(self, *args: object, **kwargs: object) -> FakeHkp:
        return self

    def health(self) -> None:
        if not self.ready:
            raise hkp_client.ServiceNotReadyError(
                "Hockeypuck is not answering on 127.0.0.1:11371 (not running or starting up)"
            )

    def wait_ready(self, timeout: float, **_: object) -> None:
        self.health()

    def check_database(self) -> None:
        """The charm's serving check, on every hook (the actions' reconcile too)."""
        self.health()
        if not self.database_up:
            raise hkp_client.ServerError("a lookup on 127.0.0.1:11371 answered 500")

    def add_key(self, armored: str) -> hkp_client.AddResult:
        self.uploads.append(armored)
        return hkp_client.AddResult(("(4)eddsa/x",), (), ())

    def index(self, search: str) -> list[hkp_client.IndexEntry]:
        self.health()
        fingerprint = search.removeprefix("0x").upper()
        if fingerprint not in self.keys:
            return []
        uid = hkp_client.UserId("Alice <alice@example.test>", None, None, "")
        return [
            hkp_client.IndexEntry(fingerprint, fingerprint[-16:], 22, 256, None, None, "", (uid,))
        ]

    def get_key(self, search: str) -> str:
        return self.keys[search.removeprefix("0x").upper()]

    def delete_key(self, keytext: str, signature: str) -> None:
        self.deleted.append(keytext.splitlines()[0])


@pytest.fixture
def hkp(monkeypatch: pytest.MonkeyPatch) -> FakeHkp:
    fake = FakeHkp()
    monkeypatch.setattr(hkp_client, "HkpClient", fake)
    return fake


@pytest.fixture
def signing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signatures without gpg (the real signing is tested against gpg)."""
    monkeypatch.setattr(admin_key, "sign_detached", lambda secret, data: "SIGNATURE")


def with_admin_key(
    leader: bool = False, **unit_data: str
) -> tuple[testing.PeerRelation, testing.Secret]:
    """A peer relation whose leader has made the admin key, and that key's secret."""
    secret = testing.Secret(
        tracked_content={
            "fingerprint": ADMIN_FINGERPRINT,
            "public-key": "PUBLIC KEY BLOCK",
            "secret-key": "SECRET KEY BLOCK",
        },
        owner="app",
    )
    peers = testing.PeerRelation(
        PEERS,
        local_app_data={
            "admin-key-fingerprint": ADMIN_FINGERPRINT,
            "admin-key-secret-id": secret.id,
        },
        peers_data={1: {"address": "10.0.0.1", **unit_data}},
    )
    return peers, secret


def ready_with_admin_key(**kwargs: Any) -> tuple[testing.State, testing.PeerRelation]:
    peers, admin_secret = with_admin_key()
    state = ready_state(peers, **kwargs)
    return dataclasses.replace(state, secrets={*state.secrets, admin_secret}), peers


def rendered(root: Path) -> dict[str, Any]:
    return tomllib.loads(config_file(root).read_text())["hockeypuck"]


# The admin key


def test_leader_generates_the_admin_key_once_and_renders_it(
    ctx: testing.Context, admin_keys_made: list[str], root: Path
):
    peers = testing.PeerRelation(PEERS)
    model = testing.Model(name="keyservers")
    state = ready_state(peers, leader=True, model=model, config={"admin-keys": MALLORY})

    out = ctx.run(ctx.on.config_changed(), state)
    ctx.run(ctx.on.update_status(), out)

    assert admin_keys_made == ["Hockeypuck admin for hockeypuck in keyservers"]
    app_data = out.get_relation(peers.id).local_app_data
    assert app_data["admin-key-fingerprint"] == ADMIN_FINGERPRINT
    secret = out.get_secret(id=app_data["admin-key-secret-id"])
    assert secret.label == "hockeypuck-admin-key"
    assert secret.tracked_content["secret-key"] == "SECRET KEY BLOCK"
    assert rendered(root)["adminKeys"] == [MALLORY, ADMIN_FINGERPRINT]


def test_non_leader_renders_the_leaders_admin_key_without_making_one(
    ctx: testing.Context, admin_keys_made: list[str], root: Path
):
    state, _ = ready_with_admin_key()

    ctx.run(ctx.on.config_changed(), state)

    assert admin_keys_made == []
    assert rendered(root)["adminKeys"] == [ADMIN_FINGERPRINT]


# The block list in the config


def test_block_list_is_rendered_lower_case_without_prefix(
    ctx: testing.Context, blocklist_db: FakeBlocklist, root: Path
):
    blocklist_db.entries = {MALLORY.lower(): "spam", ALICE.lower(): "asked to"}

    ctx.run(ctx.on.config_changed(), ready_state())

    assert rendered(root)["openpgp"]["blacklist"] == sorted([MALLORY.lower(), ALICE.lower()])


def test_update_status_renders_the_cached_block_list_without_the_database(
    ctx: testing.Context, blocklist_db: FakeBlocklist, systemctl: FakeSystemd, root: Path
):
    blocklist_db.entries = {MALLORY.lower(): "spam"}
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    connections = blocklist_db.connections

    out = ctx.run(ctx.on.update_status(), state)

    assert blocklist_db.connections == connections
    assert rendered(root)["openpgp"]["blacklist"] == [MALLORY.lower()]
    assert systemctl.restarts == 1
    assert out.unit_status == testing.ActiveStatus()


def test_unreachable_database_keeps_the_cached_block_list(
    ctx: testing.Context, blocklist_db: FakeBlocklist, root: Path
):
    blocklist_db.entries = {MALLORY.lower(): "spam"}
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    blocklist_db.unreachable = True

    out = ctx.run(ctx.on.config_changed(), state)

    assert rendered(root)["openpgp"]["blacklist"] == [MALLORY.lower()]
    assert out.unit_status == testing.ActiveStatus()


def test_another_units_block_list_change_is_applied_with_one_restart_in_turn(
    ctx: testing.Context, blocklist_db: FakeBlocklist, systemctl: FakeSystemd, root: Path
):
    state, peers = ready_with_admin_key()
    ctx.run(ctx.on.config_changed(), state)
    started = systemctl.restarts
    blocklist_db.entries = {MALLORY.lower(): "spam"}  # written by the action on unit 1
    announced = dataclasses.replace(
        peers,
        peers_data={1: {**peers.peers_data[1], "blocklist-revision": "1700000000000000000"}},
    )
    others = {relation for relation in state.relations if relation.id != peers.id}
    changed = dataclasses.replace(state, relations={*others, announced})

    waiting = ctx.run(ctx.on.relation_changed(announced, remote_unit=1), changed)
    asked = waiting.get_relation(peers.id).local_unit_data
    granted = dataclasses.replace(
        announced,
        local_unit_data=asked,
        local_app_data={**announced.local_app_data, "granted_unit": "hockeypuck/0"},
    )
    ctx.run(ctx.on.relation_changed(granted, remote_unit=1), replace_relation(changed, granted))
    ctx.run(ctx.on.update_status(), replace_relation(changed, granted))

    assert rendered(root)["openpgp"]["blacklist"] == [MALLORY.lower()]
    assert asked["state"] == "request"
    assert systemctl.restarts == started + 1


def replace_relation(state: testing.State, relation: testing.RelationBase) -> testing.State:
    others = {other for other in state.relations if other.id != relation.id}
    return dataclasses.replace(state, relations={*others, relation})


def test_a_unit_applying_the_block_list_purges_blocked_keys_that_are_stored(
    ctx: testing.Context, blocklist_db: FakeBlocklist, systemctl: FakeSystemd
):
    state, peers = ready_with_admin_key()
    ctx.run(ctx.on.config_changed(), state)
    # Blocked on unit 1; recon brought the key back through this unit before it restarted.
    blocklist_db.entries = {MALLORY.lower(): "spam"}
    blocklist_db.stored_keys = {MALLORY.lower(), ALICE.lower()}

    ctx.run(ctx.on.relation_changed(peers, remote_unit=1), state)

    assert blocklist_db.purged == [MALLORY.lower()]
    assert blocklist_db.stored_keys == {ALICE.lower()}


def test_update_status_does_not_touch_the_database(
    ctx: testing.Context, blocklist_db: FakeBlocklist
):
    state, _ = ready_with_admin_key()
    state = ctx.run(ctx.on.config_changed(), state)
    connections = blocklist_db.connections

    ctx.run(ctx.on.update_status(), state)

    assert blocklist_db.connections == connections


# block-keys


def test_block_keys_blocks_deletes_applies_and_tells_the_other_units(
    ctx: testing.Context,
    blocklist_db: FakeBlocklist,
    hkp: FakeHkp,
    systemctl: FakeSystemd,
    signing: None,
    root: Path,
):
    blocklist_db.stored_keys = {ALICE.lower()}
    hkp.keys = {ALICE: "ALICE KEY BLOCK"}
    state, peers = ready_with_admin_key()
    state = ctx.run(ctx.on.config_changed(), state)

    out = ctx.run(
        ctx.on.action(
            "block-keys",
            params={"fingerprints": f"0x{ALICE}, {MALLORY.lower()}", "comment": "abuse"},
        ),
        state,
    )

    assert ctx.action_results == {
        "summary": "1 blocked+deleted; 1 blocked, was not stored",
        "keys": {ALICE.lower(): "blocked+deleted", MALLORY.lower(): "blocked, was not stored"},
    }
    assert hkp.deleted == ["/pks/delete"]
    assert "PUBLIC KEY BLOCK" in hkp.uploads
    assert rendered(root)["openpgp"]["blacklist"] == sorted([ALICE.lower(), MALLORY.lower()])
    assert systemctl.restarts == 2
    assert "blocklist-revision" in out.get_relation(peers.id).local_unit_data


def test_block_keys_twice_changes_nothing_the_second_time(
    ctx: testing.Context, blocklist_db: FakeBlocklist, hkp: FakeHkp, systemctl: FakeSystemd
):
    state, _ = ready_with_admin_key()
    state = ctx.run(ctx.on.config_changed(), state)
    action = ctx.on.action("block-keys", params={"fingerprints": MALLORY, "comment": "spam"})
    state = ctx.run(action, state)

    ctx.run(action, state)

    assert ctx.action_results is not None
    assert ctx.action_results["keys"] == {MALLORY.lower(): "already blocked"}
    assert systemctl.restarts == 2


def test_block_keys_with_only_bad_input_fails_and_changes_nothing(
    ctx: testing.Context, blocklist_db: FakeBlocklist, hkp: FakeHkp
):
    state, _ = ready_with_admin_key()

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(
            ctx.on.action("block-keys", params={"fingerprints": "xyz, 1234", "comment": "c"}),
            state,
        )

    assert failure.value.message == "no valid fingerprint to block"
    assert blocklist_db.entries == {}


def test_block_keys_without_a_database_relation_fails_clearly(ctx: testing.Context, hkp: FakeHkp):
    peers, admin_secret = with_admin_key()
    state = testing.State(relations={peers}, secrets={admin_secret})

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(
            ctx.on.action("block-keys", params={"fingerprints": MALLORY, "comment": "c"}), state
        )

    assert failure.value.message == "there is no database relation"


def test_block_keys_refuses_a_stored_key_while_hockeypuck_is_down(
    ctx: testing.Context, blocklist_db: FakeBlocklist, hkp: FakeHkp
):
    blocklist_db.stored_keys = {ALICE.lower()}
    hkp.ready = False
    state, _ = ready_with_admin_key()

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("block-keys", params={"fingerprints": ALICE, "comment": "c"}), state)

    assert "not answering" in failure.value.message
    assert blocklist_db.entries == {}


# unblock-keys, list-blocked-keys


def test_unblock_keys_applies_the_shorter_list(
    ctx: testing.Context, blocklist_db: FakeBlocklist, hkp: FakeHkp, root: Path
):
    blocklist_db.entries = {MALLORY.lower(): "spam"}
    state, _ = ready_with_admin_key()
    state = ctx.run(ctx.on.config_changed(), state)

    ctx.run(ctx.on.action("unblock-keys", params={"fingerprints": f"{MALLORY},{ALICE}"}), state)

    assert ctx.action_results == {
        "summary": "1 unblocked; 1 was not blocked",
        "keys": {MALLORY.lower(): "unblocked", ALICE.lower(): "was not blocked"},
    }
    assert rendered(root)["openpgp"]["blacklist"] == []


def test_list_blocked_keys(ctx: testing.Context, blocklist_db: FakeBlocklist):
    blocklist_db.entries = {MALLORY.lower(): "spam"}

    ctx.run(ctx.on.action("list-blocked-keys"), ready_state())

    assert ctx.action_results == {
        "count": "1",
        "keys": {MALLORY.lower(): {"comment": "spam", "blocked-at": "unknown"}},
    }


# lookup-key


def test_lookup_key_by_fingerprint_returns_the_armored_key(ctx: testing.Context, hkp: FakeHkp):
    hkp.keys = {ALICE: "ALICE KEY BLOCK"}

    ctx.run(ctx.on.action("lookup-key", params={"keyword": ALICE.lower()}), ready_state())

    assert ctx.action_results is not None
    match = ctx.action_results["keys"][ALICE.lower()]
    assert match["armored-key"] == "ALICE KEY BLOCK"
    assert match["user-ids"] == {"uid-1": "Alice <alice@example.test>"}


def test_lookup_key_finding_nothing_is_a_result(ctx: testing.Context, hkp: FakeHkp):
    ctx.run(ctx.on.action("lookup-key", params={"keyword": MALLORY}), ready_state())

    assert ctx.action_results == {"result": "no key found", "keyword": MALLORY, "count": "0"}


def test_lookup_key_fails_when_hockeypuck_is_not_ready(ctx: testing.Context, hkp: FakeHkp):
    hkp.ready = False

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(
            ctx.on.action("lookup-key", params={"keyword": "alice@example.test"}), ready_state()
        )

    assert failure.value.message == (
        "Hockeypuck is not answering on 127.0.0.1:11371 (not running or starting up)"
    )


# rebuild-prefix-tree


def test_rebuild_prefix_tree_stops_runs_pbuild_and_starts(
    ctx: testing.Context,
    snapd: FakeSnapd,
    systemctl: FakeSystemd,
    blocklist_db: FakeBlocklist,
    root: Path,
):
    blocklist_db.stored_keys = {ALICE.lower(), MALLORY.lower()}
    state = ctx.run(ctx.on.config_changed(), ready_state())
    tree = root / "var/snap/hockeypuck/common/ptree"
    tree.mkdir(parents=True)

    ctx.run(ctx.on.action("rebuild-prefix-tree"), state)

    assert snapd.tool_runs == [["hockeypuck.pbuild"]]
    assert (systemctl.stops, systemctl.running) == (1, True)
    assert ctx.action_results is not None
    assert ctx.action_results["result"] == "rebuilt"
    assert ctx.action_results["key-count"] == "2"
    assert ctx.action_results["old-tree"] == "removed"
    assert any("hours" in line for line in ctx.action_logs)


def test_failed_rebuild_keeps_the_old_tree_and_starts_again(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd, root: Path
):
    state = ctx.run(ctx.on.config_changed(), ready_state())
    tree = root / "var/snap/hockeypuck/common/ptree"
    tree.mkdir(parents=True)
    (tree / "CURRENT").write_text("old")
    snapd.tool_fails = True

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("rebuild-prefix-tree"), state)

    assert "pbuild failed: resource temporarily unavailable" in failure.value.message
    assert (tree / "CURRENT").read_text() == "old"
    assert systemctl.running


def test_a_key_made_by_a_failed_hook_is_published_not_made_again(
    ctx: testing.Context, admin_keys_made: list[str], root: Path
):
    made_before = testing.Secret(
        tracked_content={
            "fingerprint": ADMIN_FINGERPRINT,
            "public-key": "PUBLIC KEY BLOCK",
            "secret-key": "SECRET KEY BLOCK",
        },
        owner="app",
        label="hockeypuck-admin-key",
    )
    peers = testing.PeerRelation(PEERS)
    state = ready_state(peers, leader=True)
    state = dataclasses.replace(state, secrets={*state.secrets, made_before})

    out = ctx.run(ctx.on.leader_elected(), state)

    assert admin_keys_made == []
    app_data = out.get_relation(peers.id).local_app_data
    assert app_data["admin-key-fingerprint"] == ADMIN_FINGERPRINT
    assert app_data["admin-key-secret-id"] == made_before.id


def test_block_keys_with_an_unreadable_admin_secret_purges_the_key(
    ctx: testing.Context, blocklist_db: FakeBlocklist, hkp: FakeHkp
):
    blocklist_db.stored_keys = {ALICE.lower()}
    peers, _ = with_admin_key()  # the secret itself is gone
    state = ready_state(peers)

    ctx.run(ctx.on.action("block-keys", params={"fingerprints": ALICE, "comment": "c"}), state)

    assert ctx.action_results is not None
    assert ctx.action_results["keys"] == {ALICE.lower(): "blocked+deleted"}
    assert hkp.deleted == []
    assert blocklist_db.purged == [ALICE.lower()]


def test_other_units_are_told_even_when_this_unit_cannot_apply_the_list(
    ctx: testing.Context, blocklist_db: FakeBlocklist, hkp: FakeHkp, systemctl: FakeSystemd
):
    blocklist_db.entries = {MALLORY.lower(): "spam"}
    state, peers = ready_with_admin_key()
    state = ctx.run(ctx.on.config_changed(), state)
    systemctl.stays_up = False  # the restart with the new list fails on this unit

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("unblock-keys", params={"fingerprints": MALLORY}), state)

    assert "is not running" in failure.value.message
    assert blocklist_db.entries == {}  # the database changed: the others must follow it
    after = cast("testing.State", failure.value.state)
    assert "blocklist-revision" in after.get_relation(peers.id).local_unit_data


def test_a_multi_line_failure_is_reported_on_one_bounded_line(
    ctx: testing.Context, blocklist_db: FakeBlocklist, monkeypatch: pytest.MonkeyPatch
):
    import key_actions  # noqa: PLC0415

    def failing(**_: object) -> None:
        raise key_actions.ActionFailedError("first line\nsecond line\t" + "x" * 5000)

    monkeypatch.setattr(key_actions, "list_blocked_keys", failing)
    state, _ = ready_with_admin_key()

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("list-blocked-keys"), state)

    assert failure.value.message.startswith("first line second line xxx")
    assert "\n" not in failure.value.message
    assert len(failure.value.message) == 1000
