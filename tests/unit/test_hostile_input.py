"""Property-based tests: hostile values at every input, through real hooks (ops.testing).

Each property runs a few hundred seeded cases (see the `charm` profile in conftest.py) on one
unit that lives through all of them. For every case: no exception escapes the hook
(ops.testing raises UncaughtCharmError on a traceback), the status is one bounded line, and it
is either a clear refusal or a config file that Go's template layer, TOML and lib/pq all read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ops import testing

import snap_layout
from tests.unit.conftest import (
    FakeBlocklist,
    base_state,
    config_file,
    db_relation,
    ready_state,
    user_secret,
)
from tests.unit.hostile import (
    check_config_file,
    check_outcome,
    check_result_keys,
    check_status,
    hostile_text,
)
from tests.unit.test_keyserver_actions import FakeHkp, with_admin_key

V4 = "4E6955676366F4F25D46BBD77722ECD1CF6E3EEA"
INVALID_CONFIG = ("invalid config: ",)
UNUSABLE = ("unusable relation data: ",)


def _maybe(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(valid, hostile_text())


def _lines(item: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(item, max_size=4).map("\n".join)


PEER_LINE = st.one_of(
    st.tuples(
        st.sampled_from(["peer.example.com", "10.0.0.9", "2001:db8::9", "fe80::1%eth0"]),
        st.sampled_from(["11371", "80", "²", "0", "65536", "1" * 30]),
        st.sampled_from(["11370", "11371", "٣٣"]),
    ).map(",".join),
    hostile_text(),
)
CONFIG = st.fixed_dictionaries(
    {},
    optional={
        "hostname": _maybe(st.sampled_from(["keys.example.com", "KEYS.Example.org"])),
        "contact-fingerprint": _maybe(st.sampled_from([V4, "0x" + V4.lower()])),
        "admin-keys": _maybe(st.sampled_from([V4, f"{V4}, {V4}"])),
        "external-peers": _lines(PEER_LINE),
        "log-level": _maybe(st.sampled_from(["info", "Debug", "WARN"])),
        "log-request-details": st.booleans(),
        "max-key-length": st.integers(min_value=-(2**70), max_value=2**70),
        "max-packet-length": st.integers(min_value=-(2**40), max_value=2**40),
        "allowed-recon-cidrs": _maybe(st.sampled_from(["10.0.0.0/8", "2001:db8::/32"])),
        "rate-limit-connections-per-minute": st.integers(min_value=-5, max_value=2**40),
        "rate-limit-policy": _maybe(st.sampled_from(["deny", "REJECT"])),
        "snap-channel": _maybe(st.sampled_from(["latest/edge", "2.3/stable"])),
    },
)


@settings(max_examples=160)
@given(config=CONFIG)
def test_any_config_blocks_clearly_or_writes_a_readable_file(
    ctx: testing.Context, root: Path, config: dict[str, str | int | bool]
):
    out = ctx.run(ctx.on.config_changed(), ready_state(config=config))

    check_outcome(out, root, (*INVALID_CONFIG, "cannot install the hockeypuck snap: "))


HOST_PORT = st.one_of(
    st.tuples(
        st.sampled_from(["10.0.0.5", "[2001:db8::5]", "db.example.com", "[fe80::1%eth0]", ""]),
        st.sampled_from(["5432", "5432²", "٥٤٣٢", "0", "70000", ""]),
    ).map(":".join),
    hostile_text(),
)


@settings(max_examples=160)
@given(
    endpoints=HOST_PORT,
    username=hostile_text(),
    password=hostile_text(),
    database=hostile_text(),
    tls=hostile_text(8),
)
def test_any_database_relation_data_blocks_clearly_or_reaches_the_dsn_intact(
    ctx: testing.Context,
    root: Path,
    endpoints: str,
    username: str,
    password: str,
    database: str,
    tls: str,
):
    relation = db_relation(
        endpoints=endpoints, username=username, password=password, database=database, tls=tls
    )

    out = ctx.run(ctx.on.relation_changed(relation), base_state(relations={relation}))

    check_outcome(out, root, (*UNUSABLE, "waiting for database credentials"))
    if out.unit_status.name == "active":
        document = check_config_file(root)
        assert document is not None
        from tests.functional import lib_pq  # noqa: PLC0415

        dsn = lib_pq.parse(document["hockeypuck"]["openpgp"]["db"]["dsn"])
        assert (dsn["user"], dsn["password"]) == (username, password)
        assert dsn["database"] == (database or "hockeypuck")


HAPROXY_ENDPOINTS = st.one_of(
    hostile_text(),
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "https://keys.example.com/",
                    "http://[evil]/",
                    "http://h:²/",
                    "http://[fe80::1%25eth0]/",
                    "ftp://keys.example.com/",
                ]
            ),
            hostile_text(),
            st.integers(),
            st.none(),
        ),
        max_size=3,
    ).map(json.dumps),
)


@settings(max_examples=100)
@given(endpoints=HAPROXY_ENDPOINTS)
def test_any_haproxy_answer_leaves_the_unit_serving(
    ctx: testing.Context, root: Path, endpoints: str
):
    route = testing.Relation(
        "haproxy-route", remote_app_name="haproxy", remote_app_data={"endpoints": endpoints}
    )

    out = ctx.run(ctx.on.relation_changed(route), ready_state(route))

    check_outcome(out, root, ("haproxy refused the route",))
    assert config_file(root).exists()  # whatever HAProxy says, the unit serves


@settings(max_examples=100)
@given(address=hostile_text(), version=hostile_text(), fingerprint=hostile_text())
def test_any_peer_data_is_used_only_when_valid(
    ctx: testing.Context, root: Path, address: str, version: str, fingerprint: str
):
    peers = testing.PeerRelation(
        "hockeypuck-peers",
        local_app_data={"admin-key-fingerprint": fingerprint},
        peers_data={1: {"address": address, "hockeypuck-version": version}},
    )

    out = ctx.run(ctx.on.relation_changed(peers), ready_state(peers))

    check_outcome(out, root, ("hockeypuck-1 runs ",))
    document = check_config_file(root)
    assert document is not None
    for key in document["hockeypuck"]["adminKeys"]:
        assert len(key) in (40, 64) and key.isascii() and key.isalnum()


@settings(max_examples=100)
@given(
    nodename=hostile_text(),
    address=st.one_of(hostile_text(), st.sampled_from(["10.1.0.7", "2001:db8::7"])),
    http_port=st.one_of(hostile_text(8), st.just("11371")),
    recon_port=st.one_of(hostile_text(8), st.just("11370")),
    egress=st.one_of(hostile_text(), st.just("10.1.0.7/32")),
)
def test_any_recon_partner_data_is_refused_clearly_or_rendered_readably(
    ctx: testing.Context,
    root: Path,
    nodename: str,
    address: str,
    http_port: str,
    recon_port: str,
    egress: str,
):
    remote = {
        "nodename": nodename,
        "address": address,
        "http-port": http_port,
        "recon-port": recon_port,
        "egress-subnets": egress,
    }
    relation = testing.Relation(
        "recon-partners", remote_app_name="hockeypuck-us", remote_units_data={0: remote}
    )

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), ready_state(relation))

    check_outcome(out, root, ("refused recon data", "recon-partners"))


STATE_FILES = [
    "snap-revision",
    "snap-version",
    "snap-resource.sha256",
    "log-file",
    "rendered.json",
    "applied.json",
    "blocklist.json",
]


@settings(max_examples=120)
@given(
    name=st.sampled_from([*STATE_FILES, "hockeypuck.conf", "template-cache"]),
    content=st.one_of(
        st.binary(max_size=64),
        st.sampled_from(
            [b"", b"{", b'{"config": "ab', b"[1, 2", b'["zz"]', b"null", b"\xff\xfe", b"x" * 9999]
        ),
    ),
    event=st.sampled_from(["update_status", "config_changed"]),
)
def test_damaged_state_files_are_rebuilt(
    ctx: testing.Context,
    root: Path,
    blocklist_db: FakeBlocklist,
    name: str,
    content: bytes,
    event: str,
):
    blocklist_db.entries = {V4.lower(): "spam"}
    state = ready_state()
    state_dir = root / "var/lib/hockeypuck-charm"
    if not config_file(root).exists():
        ctx.run(ctx.on.config_changed(), state)
    if name == "hockeypuck.conf":
        config_file(root).write_bytes(content)
    elif name == "template-cache":
        for cached in (state_dir / "template-cache").glob("*"):
            cached.write_bytes(content)
    else:
        (state_dir / name).write_bytes(content)

    out = ctx.run(getattr(ctx.on, event)(), state)

    assert out.unit_status == testing.ActiveStatus()
    document = check_config_file(root)
    assert document is not None
    assert document["hockeypuck"]["openpgp"]["blacklist"] == [V4.lower()]


# --- actions -----------------------------------------------------------------------------------


@pytest.fixture
def hkp(monkeypatch: pytest.MonkeyPatch) -> FakeHkp:
    import hkp_client  # noqa: PLC0415

    fake = FakeHkp(keys={V4: "ARMORED"})
    monkeypatch.setattr(hkp_client, "HkpClient", fake)
    return fake


def _run_action(ctx: testing.Context, name: str, params: dict[str, object]) -> None:
    peers, admin_secret = with_admin_key()
    state = ready_state(peers)
    state = testing.State(
        relations=state.relations,
        secrets={*state.secrets, admin_secret},
        resources=state.resources,
    )
    try:
        ctx.run(ctx.on.action(name, params=params), state)
    except testing.ActionFailed as failure:
        message = failure.message
    else:
        message = "succeeded"
    assert message.strip()
    check_result_keys(ctx.action_results or {})


FINGERPRINT_LIST = st.one_of(
    hostile_text(),
    st.lists(st.one_of(st.just(V4), st.just("0x" + V4.lower()), hostile_text()), max_size=4).map(
        ",".join
    ),
)


@settings(max_examples=60)
@given(fingerprints=FINGERPRINT_LIST, comment=hostile_text())
def test_block_and_unblock_keys_take_any_parameters(
    ctx: testing.Context, hkp: FakeHkp, fingerprints: str, comment: str
):
    _run_action(ctx, "block-keys", {"fingerprints": fingerprints, "comment": comment})
    _run_action(ctx, "unblock-keys", {"fingerprints": fingerprints})


@settings(max_examples=60)
@given(keyword=st.one_of(hostile_text(), st.just(V4), st.text(min_size=250, max_size=300)))
def test_lookup_key_takes_any_keyword(ctx: testing.Context, hkp: FakeHkp, keyword: str):
    _run_action(ctx, "lookup-key", {"keyword": keyword})


LONG_PATHS = ["a" * 300, "x/" * 2100, "/" + "d/" * 2000, "loop", "loop/x.pgp", "loop/*.pgp"]


@settings(max_examples=60)
@given(
    path=st.one_of(hostile_text(), st.sampled_from(LONG_PATHS)),
    count=st.integers(min_value=-(2**64), max_value=2**64),
)
def test_load_and_dump_keys_take_any_parameters(
    ctx: testing.Context, root: Path, hkp: FakeHkp, path: str, count: int
):
    common = root / snap_layout.SNAP_COMMON.relative_to("/")
    if not config_file(root).exists():
        ctx.run(ctx.on.config_changed(), ready_state())
        (common / "loop").symlink_to("loop")  # a symlink loop under the snap's directory

    _run_action(ctx, "load-keys", {"path": path})
    _run_action(ctx, "dump-keys", {"path": path, "keys-per-file": count})


@settings(max_examples=20)
@given(keep=st.booleans())
def test_rebuild_prefix_tree_takes_any_parameters(ctx: testing.Context, hkp: FakeHkp, keep: bool):
    _run_action(ctx, "rebuild-prefix-tree", {"keep-old-tree": keep})


def test_a_one_megabyte_hostname_gives_a_bounded_status(ctx: testing.Context):
    out = ctx.run(ctx.on.config_changed(), ready_state(config={"hostname": "h" * 2**20}))

    check_status(out.unit_status)
    assert out.unit_status == testing.BlockedStatus(
        f"invalid config: hostname: '{'h' * 47}…' is not a fully qualified domain name such as "
        "keys.example.com (HAProxy's route validation refuses it)"
    )


def test_the_secret_credentials_are_checked_like_plain_ones(ctx: testing.Context):
    secret = user_secret(password="pw\x00")
    relation = db_relation(secret)

    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(relations={relation}, secrets={secret})
    )

    assert out.unit_status == testing.BlockedStatus(
        "unusable relation data: the database password contains a control character"
    )
