"""The key actions' logic with in-memory fakes: outcomes, ordering and pinned result shapes."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import key_actions
from blocklist import BlockedKey
from hkp_client import (
    AddResult,
    IndexEntry,
    KeyNotFoundError,
    ServerError,
    ServiceNotReadyError,
    SignatureRejectedError,
    UserId,
)
from key_actions import ActionFailedError
from tests.unit.fake_service import FakeService

ALICE = "68c5878085cd227bb9697f15f7bec0a960422c11"
BOB = "ae907dc0364d265dd9da88254380d6bca8a7b373"
CAROL = "84353343549a2c54e805afb7b8d6734eb572ad57"
DAVE = "c809341dc3af0d2e7e8eb703ed43155e5f5dc032"
ADMIN = "4e6955676366f4f25d46bbd77722ecd1cf6e3eea"
V6 = "ab" * 32
BLOCKED_NOT_STORED = key_actions.BLOCKED_NOT_STORED
NOT_BLOCKED = key_actions.NOT_BLOCKED
JUJU_KEY = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def assert_juju_results(results: dict[str, Any]) -> None:
    """Keys Juju accepts in action-set (no dots: we never rely on dotted keys); str values."""
    for key, value in results.items():
        assert JUJU_KEY.fullmatch(key), key
        if isinstance(value, dict):
            assert value, f"{key}: empty dict"
            assert_juju_results(value)
        else:
            assert isinstance(value, str), f"{key}: {value!r}"


class FakeStore:
    def __init__(self, stored: Iterable[str] = (), blocked: Iterable[str] = ()):
        self.keys = set(stored)  # Hockeypuck's keys table
        self.entries: dict[str, BlockedKey] = {
            fp: BlockedKey(fp, "earlier", None) for fp in blocked
        }
        self.calls: list[str] = []

    def block(self, fingerprints: Iterable[str], comment: str) -> list[str]:
        self.calls.append("block")
        added = []
        for fp in fingerprints:
            if fp not in self.entries:
                self.entries[fp] = BlockedKey(fp, comment, datetime(2026, 11, 26, tzinfo=UTC))
                added.append(fp)
        return added

    def unblock(self, fingerprints: Iterable[str]) -> list[str]:
        self.calls.append("unblock")
        return [fp for fp in fingerprints if self.entries.pop(fp, None)]

    def list(self) -> list[BlockedKey]:
        return [self.entries[fp] for fp in sorted(self.entries)]

    def stored(self, fingerprints: Iterable[str]) -> set[str]:
        self.calls.append("stored")
        return {fp for fp in fingerprints if fp in self.keys}

    def purge(self, fingerprints: Iterable[str]) -> list[str]:
        self.calls.append("purge")
        purged = [fp for fp in fingerprints if fp in self.keys]
        self.keys.difference_update(purged)
        return purged


def fake_signature(data: str, fingerprint: str = ADMIN) -> str:
    return f"SIG {fingerprint} {hashlib.sha256(data.encode()).hexdigest()}"


class FakeSigner:
    def __init__(self, fingerprint: str = ADMIN.upper()):
        self.fingerprint = fingerprint
        self.public_key = f"ARMORED PUBLIC {fingerprint}"
        self.signed: list[str] = []

    def sign(self, data: str) -> str:
        self.signed.append(data)
        return fake_signature(data, self.fingerprint.lower())


class FakeKeyServer:
    def __init__(self, store: FakeStore, ready: bool = True):
        self.store = store
        self.ready = ready
        self.admin_keys = {ADMIN}
        self.fail_delete: dict[str, Exception] = {}
        self.vanish: set[str] = set()
        self.index_answer: list[IndexEntry] = []
        self.index_error: Exception | None = None
        self.calls: list[tuple[str, str]] = []
        self.uploaded: list[str] = []
        # The running daemon's `blacklist`: its signed delete silently skips these keys.
        self.blacklist: set[str] = set()
        self.deleted: list[str] = []

    def health(self) -> None:
        self.calls.append(("health", ""))
        if not self.ready:
            raise ServiceNotReadyError("Hockeypuck is not answering on 127.0.0.1:11371")

    def add_key(self, armored_key: str) -> AddResult:
        self.calls.append(("add", armored_key))
        self.uploaded.append(armored_key)
        return AddResult((), (), ("(4)eddsa_Curve25519/" + ADMIN,))

    def index(self, search: str) -> list[IndexEntry]:
        self.calls.append(("index", search))
        if self.index_error:
            raise self.index_error
        return self.index_answer

    def get_key(self, search: str) -> str:
        self.calls.append(("get", search))
        fp = search.removeprefix("0x").lower()
        if fp in self.vanish or fp not in self.store.keys:
            raise KeyNotFoundError("GET /pks/lookup: not found (404)")
        return f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n{fp}\n-----END PGP PUBLIC KEY BLOCK-----\n"

    def delete_key(self, keytext: str, signature: str) -> None:
        first, _, armored = keytext.partition("\n")
        assert first == "/pks/delete"
        fp = armored.splitlines()[1]
        self.calls.append(("delete", fp))
        if fp in self.fail_delete:
            raise self.fail_delete[fp]
        if not any(signature == fake_signature(keytext, admin) for admin in self.admin_keys):
            raise SignatureRejectedError("POST /pks/delete: signature rejected (422)")
        if fp in self.blacklist:
            return  # 200, nothing deleted: what Hockeypuck 2.3.3 does
        if fp not in self.store.keys:
            raise KeyNotFoundError("POST /pks/delete: not found (404)")
        self.store.keys.discard(fp)
        self.deleted.append(fp)


class Applier:
    """Renders the block list into the running daemon's blacklist (a restart)."""

    def __init__(self, fail: bool = False, server: FakeKeyServer | None = None):
        self.calls = 0
        self.fail = fail
        self.server = server

    def __call__(self) -> None:
        self.calls += 1
        if self.fail:
            raise RuntimeError("the service did not come back")
        if self.server is not None:
            self.server.blacklist = set(self.server.store.entries)


def block(
    text: str,
    store: FakeStore,
    server: FakeKeyServer | None = None,
    signer: FakeSigner | None = None,
    comment: str = "abuse report 42",
    apply: Callable[[], None] | None = None,
) -> dict[str, Any]:
    return key_actions.block_keys(
        text,
        comment,
        store=store,
        keyserver=server or FakeKeyServer(store),
        signer=signer,
        apply_blocklist=apply,
    )


# --- parse_fingerprints -----------------------------------------------------------------------


def test_parse_handles_prefix_case_spaces_duplicates_and_reports_invalid_by_position():
    parsed = key_actions.parse_fingerprints(
        f" 0x{ALICE.upper()} ,{ALICE}, 68C5 8780 85CD 227B B969  7F15 F7BE C0A9 6042 2C11,"
        f" xyz, 0x1234,,{V6.upper()},"
    )
    assert parsed.valid == (ALICE, V6)
    assert parsed.invalid_results() == {
        "item-4": "invalid: 'xyz' is not a hexadecimal fingerprint",
        "item-5": "invalid: '0x1234' has 4 hex digits, a fingerprint has 40 or 64",
    }


@pytest.mark.parametrize("text", ["", "   ", ",", " , ,\n"])
def test_parse_empty_list_fails(text: str):
    with pytest.raises(ActionFailedError, match="no fingerprint given"):
        key_actions.parse_fingerprints(text)


def test_parse_two_fingerprints_without_comma_is_one_invalid_item():
    parsed = key_actions.parse_fingerprints(f"{ALICE} {BOB}")
    assert parsed.valid == ()
    assert parsed.invalid_results() == {
        "item-1": f"invalid: '{ALICE}{BOB}' has 80 hex digits, a fingerprint has 40 or 64"
    }


# --- block-keys -------------------------------------------------------------------------------


def test_block_pinned_result_shape_for_every_outcome():
    store = FakeStore(stored={ALICE, BOB}, blocked={BOB, CAROL})
    server = FakeKeyServer(store)
    server.blacklist = {BOB, CAROL}  # what the daemon runs with before the action
    signer = FakeSigner()
    apply = Applier(server=server)

    results = block(
        f"0x{ALICE.upper()}, {BOB}, {CAROL.upper()}, {DAVE}, not-hex, {ALICE}",
        store,
        server,
        signer,
        apply=apply,
    )

    assert results == {
        "summary": "1 blocked+deleted; 1 blocked, was not stored; 1 already blocked; "
        "1 already blocked, deleted now; 1 invalid",
        "keys": {
            ALICE: "blocked+deleted",
            BOB: "already blocked, deleted now",
            CAROL: "already blocked",
            DAVE: "blocked, was not stored",
        },
        "invalid": {"item-5": "invalid: 'not-hex' is not a hexadecimal fingerprint"},
    }
    assert_juju_results(results)
    assert store.keys == set()
    assert set(store.entries) == {ALICE, BOB, CAROL, DAVE}
    assert store.entries[ALICE].comment == "abuse report 42"
    assert store.entries[CAROL].comment == "earlier"  # an existing entry keeps its comment
    assert apply.calls == 1
    # The admin key is uploaded before the deletes, each delete is signed over its keytext
    # and checked by a lookup; Hockeypuck deleted ALICE, BOB was purged from the database.
    assert [call[0] for call in server.calls] == [
        "health",
        "add",
        "get",
        "delete",
        "get",
        "get",
        "delete",
        "get",
    ]
    assert server.deleted == [ALICE]
    assert server.uploaded == [signer.public_key]
    assert all(text.startswith("/pks/delete\n-----BEGIN PGP") for text in signer.signed)


def test_block_deletes_through_hockeypuck_before_the_new_blacklist_applies():
    store = FakeStore(stored={ALICE})
    server = FakeKeyServer(store)
    order: list[str] = []
    apply = Applier(server=server)

    def applying() -> None:
        order.append(f"apply with {sorted(store.keys)} stored")
        apply()

    results = block(ALICE, store, server, FakeSigner(), apply=applying)

    assert results["keys"] == {ALICE: "blocked+deleted"}
    assert server.deleted == [ALICE]  # Hockeypuck's own delete: its prefix tree follows
    assert order == ["apply with [] stored"]
    assert store.calls == ["stored", "block", "purge"]


def test_block_purges_a_blocked_key_that_came_back():
    # Recon brought a blocked key back before every unit ran with the new blacklist: the
    # running daemon's delete skips it, the purge removes it.
    store = FakeStore(stored={ALICE}, blocked={ALICE})
    server = FakeKeyServer(store)
    server.blacklist = {ALICE}
    apply = Applier(server=server)

    results = block(ALICE, store, server, FakeSigner(), apply=apply)

    assert results == {
        "summary": "1 already blocked, deleted now",
        "keys": {ALICE: "already blocked, deleted now"},
    }
    assert store.keys == set()
    assert server.deleted == []
    assert apply.calls == 0  # the list did not change


def test_block_is_idempotent():
    store = FakeStore(stored={ALICE})
    signer = FakeSigner()
    first = block(f"{ALICE},{DAVE}", store, signer=signer)
    assert first["keys"] == {ALICE: "blocked+deleted", DAVE: "blocked, was not stored"}
    entries = dict(store.entries)
    server = FakeKeyServer(store)
    apply = Applier(server=server)

    second = block(f"{DAVE.upper()}, 0x{ALICE}", store, server, signer, apply=apply)

    assert second == {
        "summary": "2 already blocked",
        "keys": {DAVE: "already blocked", ALICE: "already blocked"},
    }
    assert store.entries == entries
    assert server.calls == []  # nothing stored: Hockeypuck is not even asked
    assert apply.calls == 0


def test_block_without_stored_keys_needs_neither_service_nor_admin_key():
    store = FakeStore()
    server = FakeKeyServer(store, ready=False)
    results = block(DAVE, store, server, signer=None)
    assert results == {"summary": "1 blocked, was not stored", "keys": {DAVE: BLOCKED_NOT_STORED}}
    assert server.calls == []


def test_block_service_not_ready_changes_nothing():
    store = FakeStore(stored={ALICE})
    server = FakeKeyServer(store, ready=False)
    with pytest.raises(ServiceNotReadyError, match="not answering"):
        block(f"{ALICE},{DAVE}", store, server, FakeSigner())
    assert store.entries == {}
    assert store.keys == {ALICE}
    assert "block" not in store.calls


def test_block_without_admin_key_purges_from_the_database():
    store = FakeStore(stored={ALICE})
    server = FakeKeyServer(store, ready=False)

    results = block(f"{ALICE},{DAVE}", store, server, signer=None)

    assert results["keys"] == {ALICE: "blocked+deleted", DAVE: "blocked, was not stored"}
    assert store.keys == set()
    assert server.calls == []


@pytest.mark.parametrize("comment", ["", "   ", "\n\t"])
def test_block_requires_a_comment(comment: str):
    store = FakeStore(stored={ALICE})
    with pytest.raises(ActionFailedError, match="comment is required"):
        block(ALICE, store, signer=FakeSigner(), comment=comment)
    assert store.calls == []


def test_block_rejects_nul_and_overlong_comments():
    store = FakeStore()
    with pytest.raises(ActionFailedError, match="NUL"):
        block(DAVE, store, comment="a\x00b")
    with pytest.raises(ActionFailedError, match="longer than 4096"):
        block(DAVE, store, comment="x" * 4097)
    assert store.calls == []


def test_block_keeps_quotes_and_newlines_of_the_comment_verbatim():
    store = FakeStore()
    comment = 'Robert\'); DROP TABLE deleted_keys;--\n"spam" {{ .Env }} $(rm -rf /)'
    block(DAVE, store, comment=f"  {comment}\n")
    assert store.entries[DAVE].comment == comment


def test_block_only_invalid_fails_with_the_reasons():
    store = FakeStore()
    with pytest.raises(ActionFailedError, match="no valid fingerprint") as caught:
        block("zz, 0x12", store)
    assert caught.value.results == {
        "invalid": {
            "item-1": "invalid: 'zz' is not a hexadecimal fingerprint",
            "item-2": "invalid: '0x12' has 2 hex digits, a fingerprint has 40 or 64",
        }
    }
    assert_juju_results(caught.value.results)
    assert store.calls == []


def test_block_refuses_the_charms_own_admin_key():
    store = FakeStore(stored={ADMIN})
    results = block(f"{ADMIN.upper()},{DAVE}", store, signer=FakeSigner())
    assert results["keys"] == {DAVE: "blocked, was not stored"}
    assert results["invalid"]["admin-key"].startswith(f"invalid: {ADMIN} is the charm's own")
    assert ADMIN not in store.entries
    assert store.keys == {ADMIN}


def test_block_key_gone_before_its_delete_is_reported_as_not_stored():
    store = FakeStore(stored={ALICE})
    server = FakeKeyServer(store)
    server.vanish.add(ALICE)
    store.keys.discard(ALICE)  # deleted by someone else between the check and the delete
    results = block(ALICE, store, server, FakeSigner())
    assert results["keys"] == {ALICE: "blocked, was not stored"}
    assert ALICE in store.entries


@pytest.mark.parametrize(
    "failure",
    [
        SignatureRejectedError("POST /pks/delete: signature rejected (422)"),
        ServiceNotReadyError("Hockeypuck is not answering"),
        ServerError("POST /pks/delete: Hockeypuck failed (500)"),
    ],
)
def test_block_failed_delete_through_hockeypuck_is_purged(failure: Exception):
    store = FakeStore(stored={ALICE, BOB})
    server = FakeKeyServer(store)
    server.fail_delete[BOB] = failure
    apply = Applier(server=server)

    results = block(f"{ALICE},{BOB}", store, server, FakeSigner(), apply=apply)

    assert results["keys"] == {ALICE: "blocked+deleted", BOB: "blocked+deleted"}
    assert server.deleted == [ALICE]
    assert store.keys == set()
    assert set(store.entries) == {ALICE, BOB}


def test_block_wrong_signer_still_ends_deleted_and_blocked():
    store = FakeStore(stored={ALICE})
    server = FakeKeyServer(store)
    results = block(ALICE, store, server, FakeSigner(fingerprint=BOB.upper()))
    assert results["keys"] == {ALICE: "blocked+deleted"}
    assert server.deleted == []
    assert store.keys == set()


def test_block_apply_failure_fails_the_action_with_the_keys_blocked_and_deleted():
    store = FakeStore(stored={ALICE}, blocked={CAROL})
    server = FakeKeyServer(store)
    apply = Applier(fail=True)

    with pytest.raises(ActionFailedError, match="could not apply the new block list") as caught:
        block(f"{ALICE},{CAROL},{DAVE}", store, server, FakeSigner(), apply=apply)

    assert "tries again on its next hook" in caught.value.message
    assert caught.value.results is not None
    assert caught.value.results["keys"][ALICE] == "blocked+deleted"
    assert_juju_results(caught.value.results)
    assert set(store.entries) == {ALICE, CAROL, DAVE}
    assert store.keys == set()


@pytest.mark.parametrize(
    "upload",
    [
        lambda armored_key: AddResult((), (), ()),
        lambda armored_key: (_ for _ in ()).throw(ServerError("POST /pks/add: failed (500)")),
    ],
    ids=["refused", "error"],
)
def test_block_admin_key_not_uploaded_purges_instead(upload: Callable[[str], AddResult]):
    store = FakeStore(stored={ALICE})
    server = FakeKeyServer(store)
    server.add_key = upload  # type: ignore[method-assign]

    results = block(ALICE, store, server, FakeSigner())

    assert results["keys"] == {ALICE: "blocked+deleted"}
    assert server.deleted == []
    assert store.keys == set()


# --- unblock-keys -----------------------------------------------------------------------------


def test_unblock_pinned_result_shape():
    store = FakeStore(blocked={ALICE, BOB})
    apply = Applier()
    results = key_actions.unblock_keys(
        f"0x{ALICE.upper()}, {DAVE}, nope, {ALICE}", store=store, apply_blocklist=apply
    )
    assert results == {
        "summary": "1 unblocked; 1 was not blocked; 1 invalid",
        "keys": {ALICE: "unblocked", DAVE: "was not blocked"},
        "invalid": {"item-3": "invalid: 'nope' is not a hexadecimal fingerprint"},
    }
    assert_juju_results(results)
    assert set(store.entries) == {BOB}
    assert apply.calls == 1


def test_unblock_nothing_blocked_does_not_apply():
    store = FakeStore()
    apply = Applier()
    results = key_actions.unblock_keys(DAVE, store=store, apply_blocklist=apply)
    assert results == {"summary": "0 unblocked; 1 was not blocked", "keys": {DAVE: NOT_BLOCKED}}
    assert apply.calls == 0


def test_unblock_only_invalid_fails():
    with pytest.raises(ActionFailedError, match="no valid fingerprint to unblock"):
        key_actions.unblock_keys("nope", store=FakeStore())
    with pytest.raises(ActionFailedError, match="no fingerprint given"):
        key_actions.unblock_keys(" ", store=FakeStore())


# --- list-blocked-keys ------------------------------------------------------------------------


def test_list_pinned_result_shape():
    store = FakeStore()
    store.entries = {
        BOB: BlockedKey(BOB, 'spam, "quoted"\nsecond line', None),
        ALICE: BlockedKey(ALICE, "abuse", datetime(2026, 11, 26, 2, 45, 11, 123, tzinfo=UTC)),
    }
    results = key_actions.list_blocked_keys(store=store)
    assert results == {
        "count": "2",
        "keys": {
            ALICE: {"comment": "abuse", "blocked-at": "2026-11-26T02:45:11Z"},
            BOB: {"comment": 'spam, "quoted"\nsecond line', "blocked-at": "unknown"},
        },
    }
    assert_juju_results(results)


def test_list_empty():
    assert key_actions.list_blocked_keys(store=FakeStore()) == {"count": "0"}


# --- lookup-key -------------------------------------------------------------------------------


def entry(fingerprint: str, *uids: str, flags: str = "") -> IndexEntry:
    created = datetime.fromtimestamp(1795661064, tz=UTC)
    return IndexEntry(
        fingerprint=fingerprint.upper(),
        key_id=fingerprint.upper()[-16:],
        algorithm=22,
        bits=263,
        created=created,
        expires=None,
        flags=flags,
        user_ids=tuple(UserId(uid, created, None, "") for uid in uids),
    )


def test_lookup_by_email_pinned_result_shape():
    store = FakeStore(stored={ALICE})
    server = FakeKeyServer(store)
    server.index_answer = [
        entry(
            ALICE, "Alice Example (work) <alice.work@example.test>", "Alice <alice@example.test>"
        )
    ]
    results = key_actions.lookup_key(" alice@example.test ", keyserver=server)
    assert results == {
        "result": "1 key found",
        "keyword": "alice@example.test",
        "count": "1",
        "keys": {
            ALICE: {
                "fingerprint": ALICE,
                "key-id": ALICE[-16:],
                "algorithm": "22",
                "bits": "263",
                "created": "2026-11-26T02:44:24Z",
                "expires": "never",
                "revoked": "no",
                "user-ids": {
                    "uid-1": "Alice Example (work) <alice.work@example.test>",
                    "uid-2": "Alice <alice@example.test>",
                },
            }
        },
    }
    assert_juju_results(results)
    assert server.calls == [("health", ""), ("index", "alice@example.test")]


def test_lookup_exact_fingerprint_adds_the_armored_key():
    store = FakeStore(stored={ALICE})
    server = FakeKeyServer(store)
    server.index_answer = [entry(ALICE, "Alice <alice@example.test>")]
    grouped = " ".join(ALICE[i : i + 4] for i in range(0, 40, 4))
    results = key_actions.lookup_key(grouped, keyserver=server)
    assert server.calls[1] == ("index", f"0x{ALICE.upper()}")
    assert results["keys"][ALICE]["armored-key"].startswith("-----BEGIN PGP PUBLIC KEY BLOCK")
    assert_juju_results(results)


def test_lookup_subkey_fingerprint_match_has_no_armored_key():
    store = FakeStore(stored={BOB})
    server = FakeKeyServer(store)
    server.index_answer = [entry(BOB, "Bob <bob@example.test>", flags="r")]
    subkey = "D56D41937DAE592C0AAB72B4C38545FD9ACA4048"
    results = key_actions.lookup_key(f"0x{subkey}", keyserver=server)
    assert "armored-key" not in results["keys"][BOB]
    assert results["keys"][BOB]["revoked"] == "yes"


def test_lookup_long_key_id_is_prefixed():
    server = FakeKeyServer(FakeStore())
    server.index_answer = [entry(BOB)]
    results = key_actions.lookup_key("4380d6bca8a7b373", keyserver=server)
    assert server.calls[1] == ("index", "0x4380D6BCA8A7B373")
    assert "user-ids" not in results["keys"][BOB]


def test_lookup_no_key_found_is_a_result():
    server = FakeKeyServer(FakeStore())
    results = key_actions.lookup_key("nobody@example.test", keyserver=server)
    assert results == {"result": "no key found", "keyword": "nobody@example.test", "count": "0"}
    assert_juju_results(results)


def test_lookup_passes_metacharacters_verbatim():
    server = FakeKeyServer(FakeStore())
    keyword = "'; DROP TABLE keys; -- $(reboot) `id` %s {{"
    key_actions.lookup_key(keyword, keyserver=server)
    assert server.calls[1] == ("index", keyword)


def test_lookup_service_not_ready_stops_before_searching():
    server = FakeKeyServer(FakeStore(), ready=False)
    with pytest.raises(ServiceNotReadyError):
        key_actions.lookup_key("alice", keyserver=server)
    assert server.calls == [("health", "")]


@pytest.mark.parametrize(
    ("keyword", "message"),
    [
        ("", "keyword is empty"),
        ("  ", "keyword is empty"),
        ("a\nb", "control characters"),
        ("x" * 257, "longer than 256"),
        ("0xA8A7B373", "short \\(32-bit\\) key IDs"),
    ],
)
def test_lookup_bad_keyword_fails_without_asking(keyword: str, message: str):
    server = FakeKeyServer(FakeStore())
    with pytest.raises(ActionFailedError, match=message):
        key_actions.lookup_key(keyword, keyserver=server)
    assert server.calls == []


def test_lookup_server_error_fails_clearly():
    server = FakeKeyServer(FakeStore())
    server.index_error = ServerError("GET /pks/lookup: Hockeypuck failed (500)")
    with pytest.raises(ActionFailedError, match=r"the search failed: .*\(500\)"):
        key_actions.lookup_key("alice", keyserver=server)


# --- rebuild-prefix-tree ----------------------------------------------------------------------


class Machine(FakeService):
    """The service and pbuild, recording the order of events."""

    def __init__(self, tree: Path, pbuild_fails: bool = False):
        super().__init__()
        self.tree = tree
        self.pbuild_fails = pbuild_fails

    def pbuild(self) -> None:
        self.events.append(f"pbuild (tree exists: {self.tree.exists()})")
        self.tree.mkdir()
        (self.tree / "CURRENT").write_text("new")
        if self.pbuild_fails:
            raise RuntimeError("resource temporarily unavailable\nstack trace")


def rebuild(machine: Machine, **kwargs: Any) -> dict[str, Any]:
    ticks = iter([100.0, 112.34])
    return key_actions.rebuild_prefix_tree(
        machine.tree,
        stop_service=machine.stop,
        start_service=machine.start,
        run_pbuild=machine.pbuild,
        count_keys=lambda: 5,
        clock=lambda: next(ticks),
        now=lambda: datetime(2026, 11, 26, 2, 51, 53, tzinfo=UTC),
        **kwargs,
    )


def old_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "ptree"
    tree.mkdir()
    (tree / "CURRENT").write_text("old")
    return tree


def test_rebuild_pinned_result_shape(tmp_path: Path):
    machine = Machine(old_tree(tmp_path))
    results = rebuild(machine)
    assert results == {
        "result": "rebuilt",
        "duration-seconds": "12.3",
        "key-count": "5",
        "old-tree": "removed",
    }
    assert_juju_results(results)
    assert machine.events == ["stop", "pbuild (tree exists: False)", "start"]
    assert (machine.tree / "CURRENT").read_text() == "new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ptree"]


def test_rebuild_can_keep_the_old_tree(tmp_path: Path):
    machine = Machine(old_tree(tmp_path))
    results = rebuild(machine, keep_old=True)
    aside = tmp_path / "ptree.old-20261126T025153Z"
    assert results["old-tree"] == str(aside)
    assert (aside / "CURRENT").read_text() == "old"


def test_rebuild_without_a_tree(tmp_path: Path):
    machine = Machine(tmp_path / "ptree")
    assert rebuild(machine)["old-tree"] == "none (there was no tree)"


def test_rebuild_failure_restores_the_old_tree_and_starts(tmp_path: Path):
    machine = Machine(old_tree(tmp_path), pbuild_fails=True)
    with pytest.raises(ActionFailedError) as caught:
        rebuild(machine)
    assert caught.value.message == (
        "the rebuild failed (resource temporarily unavailable); the previous tree was put "
        "back; Hockeypuck was started again"
    )
    assert machine.events == ["stop", "pbuild (tree exists: False)", "start"]
    assert (machine.tree / "CURRENT").read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ptree"]


def test_rebuild_failure_without_old_tree_removes_the_partial_one(tmp_path: Path):
    machine = Machine(tmp_path / "ptree", pbuild_fails=True)
    with pytest.raises(ActionFailedError, match="there was no previous tree"):
        rebuild(machine)
    assert not machine.tree.exists()
    assert machine.events[-1] == "start"


def test_rebuild_stop_failure_touches_nothing(tmp_path: Path):
    machine = Machine(old_tree(tmp_path))
    machine.stop_fails = True
    with pytest.raises(ActionFailedError, match="could not stop Hockeypuck"):
        rebuild(machine)
    assert machine.events == ["stop"]
    assert (machine.tree / "CURRENT").read_text() == "old"


def test_rebuild_start_failure_is_reported(tmp_path: Path):
    machine = Machine(old_tree(tmp_path))
    machine.start_fails = True
    with pytest.raises(ActionFailedError, match="could not start Hockeypuck again"):
        rebuild(machine)
    machine = Machine(tmp_path / "other", pbuild_fails=True)
    machine.start_fails = True
    with pytest.raises(ActionFailedError, match="the rebuild failed .*could not start"):
        rebuild(machine)


def test_rebuild_key_count_failure_is_unknown(tmp_path: Path):
    machine = Machine(tmp_path / "ptree")

    def broken() -> int:
        raise RuntimeError("database down")

    results = key_actions.rebuild_prefix_tree(
        machine.tree,
        stop_service=machine.stop,
        start_service=machine.start,
        run_pbuild=machine.pbuild,
        count_keys=broken,
    )
    assert results["key-count"] == "unknown"
    assert float(results["duration-seconds"]) >= 0


def test_key_actions_does_not_import_psycopg():
    code = "import sys, key_actions, blocklist; print('psycopg' in sys.modules)"
    repo = Path(__file__).parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": f"{repo / 'src'}:{repo / 'lib'}"},  # as the charm's dispatch
    )
    assert result.stdout.strip() == "False"


def test_lookup_armored_key_gone_or_failing():
    store = FakeStore(stored={ALICE})
    server = FakeKeyServer(store)
    server.index_answer = [entry(ALICE, "Alice <alice@example.test>")]
    server.vanish.add(ALICE)
    results = key_actions.lookup_key(ALICE, keyserver=server)
    assert "armored-key" not in results["keys"][ALICE]

    def failing(search: str) -> str:
        raise ServerError("GET /pks/lookup: Hockeypuck failed (500)")

    server.get_key = failing  # type: ignore[method-assign]
    with pytest.raises(ActionFailedError, match="the key could not be fetched"):
        key_actions.lookup_key(ALICE, keyserver=server)

    def gone(search: str) -> str:
        raise ServiceNotReadyError("Hockeypuck is not answering")

    server.get_key = gone  # type: ignore[method-assign]
    with pytest.raises(ServiceNotReadyError):
        key_actions.lookup_key(ALICE, keyserver=server)


def test_lookup_service_gone_while_searching():
    server = FakeKeyServer(FakeStore())
    server.index_error = ServiceNotReadyError("Hockeypuck is not answering")
    with pytest.raises(ServiceNotReadyError):
        key_actions.lookup_key("alice", keyserver=server)


def test_rebuild_old_tree_that_cannot_be_put_back_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    machine = Machine(old_tree(tmp_path), pbuild_fails=True)
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self.name.startswith("ptree.old-"):
            raise OSError("device busy")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(ActionFailedError) as caught:
        rebuild(machine)
    aside = tmp_path / "ptree.old-20261126T025153Z"
    assert f"could not be put back (device busy); it is kept at {aside}" in caught.value.message
    assert (aside / "CURRENT").read_text() == "old"
    assert machine.events[-1] == "start"
