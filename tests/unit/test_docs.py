"""The documentation cannot drift from the charm.

The reference pages carry blocks generated from `charmcraft.yaml` (config options, actions and
their parameters, relation endpoints, resources) between `<!-- BEGIN GENERATED ... -->` and
`<!-- END GENERATED ... -->` markers; hand-written text (an action's results and failures, say)
sits around them. These tests fail when a block differs from what `charmcraft.yaml` gives, when
an item has no block or a block has no item, when a port, path or status message quoted in the
docs is not what the code uses, when a `juju` command in the docs names an option, action,
parameter, endpoint or resource the charm does not have, and when a relative link is broken.

After changing `charmcraft.yaml`, regenerate the blocks (new items get a block and a TODO for
the hand-written part, which a test refuses until it is written):

    .venv/bin/python tests/unit/test_docs.py --write
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SRC = REPO / "src"
APP = "hockeypuck"

CONFIG_PAGE = DOCS / "reference/configuration.md"
ACTIONS_PAGE = DOCS / "reference/actions.md"
RELATIONS_PAGE = DOCS / "reference/relations.md"
RESOURCES_PAGE = DOCS / "reference/resources.md"
STATUSES_PAGE = DOCS / "reference/statuses.md"
PORTS_PAGE = DOCS / "reference/ports-and-files.md"

BLOCK = re.compile(
    r"<!-- BEGIN GENERATED (?P<key>[a-z]+(?: [a-z0-9-]+)?) -->\n"
    r"(?P<body>.*?)"
    r"<!-- END GENERATED (?P=key) -->",
    re.DOTALL,
)
TODO = "TODO: describe"
ROLES = ("requires", "provides", "peers")


def charmcraft() -> dict[str, Any]:
    return yaml.safe_load((REPO / "charmcraft.yaml").read_text())


def markdown_files() -> list[Path]:
    """Every page of the docs, and the README."""
    return [*sorted(DOCS.rglob("*.md")), REPO / "README.md"]


# Generation of the blocks


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _value(value: object) -> str:
    if value is None:
        return "none"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def render_config(meta: dict[str, Any]) -> str:
    lines: list[str] = []
    for name, option in meta.get("config", {}).get("options", {}).items():
        default = _value(option["default"]) if "default" in option else "no default"
        lines += [
            f"### `{name}`",
            "",
            f"Type `{option.get('type', 'string')}`, default {default}.",
            "",
            str(option.get("description", "")).strip(),
            "",
        ]
    return "\n".join(lines)


def render_action(name: str, action: dict[str, Any]) -> str:
    lines = [f"### `{name}`", "", str(action.get("description", "")).strip(), ""]
    params: dict[str, Any] = action.get("params") or {}
    required = set(action.get("required") or [])
    if params:
        lines += [
            "| parameter | type | required | default | description |",
            "|---|---|---|---|---|",
        ]
        for param, spec in params.items():
            default = _value(spec["default"]) if "default" in spec else ""
            lines.append(
                f"| `{param}` | {spec.get('type', 'string')} "
                f"| {'yes' if param in required else 'no'} | {default} "
                f"| {_one_line(spec.get('description', ''))} |"
            )
    else:
        lines.append("No parameters.")
    lines.append("")
    return "\n".join(lines)


def endpoints(meta: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(role, name, spec) of every relation endpoint."""
    for role in ROLES:
        for name, spec in (meta.get(role) or {}).items():
            yield role, name, spec


def render_endpoint(role: str, name: str, spec: dict[str, Any]) -> str:
    facts = [f"Role `{role}`", f"interface `{spec['interface']}`"]
    if "limit" in spec:
        facts.append(f"limit {spec['limit']}")
    if role == "requires":
        facts.append("optional" if spec.get("optional") else "required")
    description = str(spec.get("description", "")).strip()
    lines = [f"### `{name}`", "", ", ".join(facts) + ".", ""]
    if description:
        lines += [description, ""]
    return "\n".join(lines)


def render_resource(name: str, spec: dict[str, Any]) -> str:
    facts = f"Type `{spec['type']}`"
    if "filename" in spec:
        facts += f", file name `{spec['filename']}`"
    return "\n".join(
        [f"### `{name}`", "", facts + ".", "", str(spec.get("description", "")).strip(), ""]
    )


def expected_blocks(meta: dict[str, Any]) -> dict[Path, dict[str, str]]:
    """For each reference page, the generated blocks it must carry, in order."""
    return {
        CONFIG_PAGE: {"config": render_config(meta)},
        ACTIONS_PAGE: {
            f"action {name}": render_action(name, action or {})
            for name, action in (meta.get("actions") or {}).items()
        },
        RELATIONS_PAGE: {
            f"endpoint {name}": render_endpoint(role, name, spec)
            for role, name, spec in endpoints(meta)
        },
        RESOURCES_PAGE: {
            f"resource {name}": render_resource(name, spec)
            for name, spec in (meta.get("resources") or {}).items()
        },
    }


def blocks_in(text: str) -> dict[str, str]:
    return {match["key"]: match["body"] for match in BLOCK.finditer(text)}


def _block(key: str, body: str) -> str:
    return f"<!-- BEGIN GENERATED {key} -->\n{body}<!-- END GENERATED {key} -->"


def regenerate(text: str, wanted: dict[str, str]) -> str:
    """Rewrite the page's blocks; drop blocks of removed items; append blocks of new ones."""

    def replace(match: re.Match[str]) -> str:
        key = match["key"]
        return _block(key, wanted[key]) if key in wanted else ""

    text = BLOCK.sub(replace, text)
    present = blocks_in(text)
    for key, body in wanted.items():
        if key not in present:
            name = key.split(" ", 1)[-1]
            text = text.rstrip("\n") + f"\n\n{_block(key, body)}\n\n{TODO} `{name}`.\n"
    return text


def write() -> None:
    for page, wanted in expected_blocks(charmcraft()).items():
        page.write_text(regenerate(page.read_text(), wanted))
        print(f"wrote {page.relative_to(REPO)}")


# The generated blocks


@pytest.mark.parametrize(
    "page",
    [CONFIG_PAGE, ACTIONS_PAGE, RELATIONS_PAGE, RESOURCES_PAGE],
    ids=lambda page: page.name,
)
def test_reference_page_documents_exactly_what_charmcraft_yaml_declares(page: Path):
    wanted = expected_blocks(charmcraft())[page]
    found = blocks_in(page.read_text())

    hint = "run `.venv/bin/python tests/unit/test_docs.py --write`"
    assert sorted(found) == sorted(wanted), f"items differ from charmcraft.yaml: {hint}"
    for key, body in wanted.items():
        assert found[key] == body, f"{key} differs from charmcraft.yaml: {hint}"


def test_every_action_has_its_results_and_failures_written_down():
    text = ACTIONS_PAGE.read_text()
    for name in charmcraft().get("actions") or {}:
        after = text.split(f"<!-- END GENERATED action {name} -->", 1)[1]
        section = after.split("<!-- BEGIN GENERATED", 1)[0]
        assert "Results" in section, f"{name}: no results documented"
        assert "Fails" in section, f"{name}: no failures documented"


def test_no_placeholder_left_in_the_docs():
    for page in markdown_files():
        assert TODO not in page.read_text(), f"{page.relative_to(REPO)} has a TODO left"


def test_the_generator_adds_new_items_and_drops_removed_ones():
    meta = {
        "actions": {
            "kept": {"description": "Kept.", "params": {"x": {"type": "integer"}}},
            "new": {"description": "New."},
        }
    }
    old = "\n\n".join(
        [
            "# Actions",
            _block("action kept", "stale\n"),
            "Results: kept's results.",
            _block("action gone", "gone\n"),
        ]
    )

    text = regenerate(old, expected_blocks(meta)[ACTIONS_PAGE])

    assert blocks_in(text) == expected_blocks(meta)[ACTIONS_PAGE]
    assert "Results: kept's results." in text
    assert f"{TODO} `new`." in text
    assert "| `x` | integer | no |  |  |" in text


def action_result_keys() -> set[str]:
    """Every literal key of the actions' results in the code (src/*_actions.py)."""
    keys: set[str] = set()
    for path in (SRC / "key_actions.py", SRC / "bulk_actions.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict) and node.keys:
                literal = [
                    key.value
                    for key in node.keys
                    if isinstance(key, ast.Constant) and isinstance(key.value, str)
                ]
                if len(literal) == len(node.keys):
                    keys.update(literal)
            elif isinstance(node, ast.Assign):
                keys.update(
                    target.slice.value
                    for target in node.targets
                    if isinstance(target, ast.Subscript)
                    and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)
                )
    return keys


def test_action_results_on_the_page_are_the_codes():
    meta = charmcraft()
    text = BLOCK.sub("", ACTIONS_PAGE.read_text())
    quoted = set(re.findall(r"`([a-z][a-z0-9]*(?:-[a-z0-9]+)*)`", text))
    code = action_result_keys()
    names = set(meta.get("actions") or {}) | {
        param
        for action in (meta.get("actions") or {}).values()
        for param in action.get("params") or {}
    }

    assert code, "no result keys found in the code"
    assert code <= quoted, f"results not documented: {sorted(code - quoted)}"
    numbered = re.compile(r"(uid|item)-\d+")
    for token in quoted:
        if "-" in token and not numbered.fullmatch(token):
            assert token in code | names, f"`{token}` is neither a result key nor an action name"


# Commands quoted in the docs


def shell_commands(text: str) -> Iterator[list[str]]:
    """The commands of the fenced `shell` blocks, line continuations joined, split by shlex."""
    for block in re.findall(r"```(?:shell|bash|sh|console)\n(.*?)```", text, re.DOTALL):
        for raw in block.replace("\\\n", " ").splitlines():
            line = raw.strip().removeprefix("$ ")
            if not line or line.startswith("#"):
                continue
            command = line.split(" #", 1)[0]
            for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", command):
                try:
                    words = shlex.split(part)
                except ValueError:
                    continue
                if words:
                    yield words


def juju_commands(subcommand: str) -> Iterator[tuple[Path, list[str]]]:
    """(page, arguments after `juju <subcommand>`) for every such command in the docs."""
    for page in markdown_files():
        for words in shell_commands(page.read_text()):
            if words[:2] == ["juju", subcommand]:
                yield page, words[2:]


def _without_flags(words: list[str], flags_with_values: set[str]) -> list[str]:
    positional = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in flags_with_values
        else:
            positional.append(word)
    return positional


def test_juju_config_commands_name_real_options():
    options = set(charmcraft()["config"]["options"])
    seen = 0
    for page, words in juju_commands("config"):
        if not words or words[0] != APP:
            continue
        seen += 1
        for index, word in enumerate(words[1:], start=1):
            if words[index - 1] == "--reset":
                names = word.split(",")
            elif word.startswith("-"):
                continue
            else:
                names = [word.split("=", 1)[0]]
            for name in names:
                assert name in options, f"{page.relative_to(REPO)}: no option {name!r}"
    assert seen, "no `juju config hockeypuck` command found in the docs"


def test_juju_run_commands_name_real_actions_and_parameters():
    actions = charmcraft().get("actions") or {}
    for page, words in juju_commands("run"):
        positional = _without_flags(words, {"--format", "--wait", "-m", "--model", "--params"})
        if not positional or not positional[0].startswith(f"{APP}/"):
            continue
        where = page.relative_to(REPO)
        name, params = positional[1], positional[2:]
        assert name in actions, f"{where}: no action {name!r}"
        declared = set((actions[name] or {}).get("params") or {})
        for param in params:
            key = param.split("=", 1)[0]
            assert key in declared, f"{where}: action {name} has no parameter {key!r}"
        required = set((actions[name] or {}).get("required") or [])
        given = {param.split("=", 1)[0] for param in params}
        assert required <= given, f"{where}: {name} needs {sorted(required - given)}"


def test_juju_integrate_commands_name_real_endpoints():
    names = {name for _, name, _ in endpoints(charmcraft())}
    seen = 0
    for page, words in juju_commands("integrate"):
        for word in words:
            app, _, endpoint = word.partition(":")
            if app == APP:
                seen += 1
                if endpoint:
                    assert endpoint in names, f"{page.relative_to(REPO)}: no {endpoint!r}"
    assert seen


def test_deploy_and_attach_commands_name_real_resources_and_options():
    meta = charmcraft()
    resources = set(meta.get("resources") or {})
    options = set(meta["config"]["options"])
    for subcommand in ("deploy", "attach-resource", "refresh"):
        for page, words in juju_commands(subcommand):
            where = page.relative_to(REPO)
            positional = _without_flags(words, {"--channel", "--base", "-n", "--constraints"})
            targets_charm = any(APP in word for word in positional[:2])
            if not targets_charm:
                continue
            pairs = [
                (flag, value)
                for flag, value in itertools.pairwise(words)
                if flag in ("--resource", "--config")
            ]
            if subcommand == "attach-resource":
                pairs += [("--resource", word) for word in positional[1:]]
            for flag, value in pairs:
                name = value.split("=", 1)[0]
                if flag == "--resource":
                    assert name in resources, f"{where}: no resource {name!r}"
                else:
                    assert name in options, f"{where}: no option {name!r}"


def endpoint_section(name: str) -> str:
    """The relations page's text about one endpoint: its block and what follows it."""
    text = RELATIONS_PAGE.read_text()
    after = text.split(f"<!-- BEGIN GENERATED endpoint {name} -->", 1)[1]
    return after.split("<!-- BEGIN GENERATED", 1)[0]


def table_rows(text: str) -> dict[str, str]:
    """First cell (a `key`) -> second cell, of every table row in the text."""
    return dict(re.findall(r"^\| `([a-z_-]+)` \| (.*?) \|$", text, re.M))


def test_haproxy_route_databag_is_documented_as_written():
    from relations import haproxy_route  # noqa: PLC0415

    route = haproxy_route.Route(
        service="hockeypuck",
        port=11371,
        hostname="keyserver.example.com",
        health_path="/pks/health",
        rate_limit=haproxy_route.RateLimit(60, "reject"),
    )
    written = route.app_databag()
    documented = table_rows(endpoint_section(haproxy_route.ENDPOINT))

    assert set(documented) == set(written)
    for key, cell in documented.items():
        literal = re.match(r"`([^`]*)`", cell)
        if literal and "<" not in literal[1]:
            assert json.loads(literal[1]) == json.loads(written[key]), key


def test_peer_databags_are_documented_as_written():
    import admin_key_store  # noqa: PLC0415
    from relations import peers  # noqa: PLC0415

    documented = set(table_rows(endpoint_section(peers.ENDPOINT)))

    assert documented == {
        peers.ADDRESS_KEY,
        peers.VERSION_KEY,
        peers.BLOCKLIST_REVISION_KEY,
        admin_key_store.FINGERPRINT_KEY,
        admin_key_store.SECRET_ID_KEY,
    }


def test_recon_databag_is_documented_as_the_library_writes_it():
    from charms.hockeypuck.v0 import recon_peering  # noqa: PLC0415
    from relations import recon  # noqa: PLC0415

    interface_page = (DOCS / "reference/recon-peering-interface.md").read_text()
    wire = table_rows(interface_page.split("## Wire format", 1)[1].split("\n## ", 1)[0])
    summary = table_rows(endpoint_section(recon.REQUIRES))

    assert list(wire) == list(recon_peering.PUBLISHED_KEYS)
    assert list(summary) == list(recon_peering.PUBLISHED_KEYS)
    assert f"`{recon_peering.EGRESS_SUBNETS_KEY}`" in interface_page
    assert f"`{recon_peering.INTERFACE}`" in interface_page
    for endpoint in recon.ENDPOINTS:
        assert (
            charmcraft()["requires" if endpoint == recon.REQUIRES else "provides"][endpoint][
                "interface"
            ]
            == recon_peering.INTERFACE
        )


# Ports, paths and statuses quoted in the docs


def test_ports_quoted_in_the_docs_are_the_charms():
    import snap_layout  # noqa: PLC0415 (src is on the path only under pytest)

    ours = {snap_layout.HKP_PORT, snap_layout.RECON_PORT, snap_layout.METRICS_PORT}
    # Ports of other software the docs mention: PostgreSQL, HAProxy's HTTP and HTTPS.
    others = {5432, 80, 443}
    pattern = re.compile(r"(?:\bports?\s+|:)(\d{2,5})\b")
    for page in markdown_files():
        for number in pattern.findall(page.read_text()):
            port = int(number)
            if port >= 1024 or port in (80, 443):
                assert port in ours | others, f"{page.relative_to(REPO)}: port {port}?"


def test_the_ports_page_names_each_port_of_the_code():
    import snap_layout  # noqa: PLC0415

    rows = {
        int(match[1]): match[2]
        for match in re.finditer(r"^\| (\d+) \| `?([a-z/]+)`? \|", PORTS_PAGE.read_text(), re.M)
    }
    assert rows == {
        snap_layout.HKP_PORT: "tcp",
        snap_layout.RECON_PORT: "tcp",
        snap_layout.METRICS_PORT: "tcp",
    }
    assert f"`{snap_layout.METRICS_PATH}`" in PORTS_PAGE.read_text()
    assert f"`{snap_layout.HEALTH_PATH}`" in PORTS_PAGE.read_text()


def test_service_name_quoted_in_the_docs_is_the_snaps():
    import snap_layout  # noqa: PLC0415

    for page in markdown_files():
        for name in re.findall(r"snap\.[a-z-]+\.[a-z-]+\.service", page.read_text()):
            assert name == snap_layout.SERVICE, f"{page.relative_to(REPO)}: {name}"


def machine_paths() -> set[str]:
    """Every path on the machine the charm or the snap layout names."""
    import snap_layout  # noqa: PLC0415
    from workload import Hockeypuck  # noqa: PLC0415

    paths = {
        str(value)
        for value in vars(snap_layout).values()
        if isinstance(value, PurePosixPath) and value.is_absolute()
    }
    workload = Hockeypuck(Path("/"))
    paths |= {str(workload.config_path), str(workload.template_cache_dir)}
    paths |= {str(path) for path in vars(workload).values() if isinstance(path, Path)}
    return paths


def test_paths_on_the_ports_and_files_page_are_the_codes():
    known = machine_paths()
    quoted = re.findall(r"^\| `(/[^`]+)` \|", PORTS_PAGE.read_text(), re.M)
    assert quoted
    for path in quoted:
        assert path.rstrip("/") in known, f"{path} is not a path of the charm"


def _pattern(node: ast.expr, names: dict[str, str]) -> str | None:
    """A regular expression for a string or f-string expression; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "str":
        return ".+"
    if not isinstance(node, ast.JoinedStr):
        return None
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(re.escape(str(value.value)))
        elif isinstance(value, ast.FormattedValue):
            known = names.get(ast.unparse(value.value))
            parts.append(re.escape(known) if known is not None else ".+")
    return "".join(parts)


def _module_names() -> dict[str, str]:
    """Values of the module-level names the messages use (snap names, the resource name)."""
    import charm  # noqa: PLC0415
    import snap_layout  # noqa: PLC0415

    names = {
        f"snap_layout.{name}": str(value)
        for name, value in vars(snap_layout).items()
        if name.isupper() and isinstance(value, str | int | PurePosixPath)
    }
    names["SNAP_RESOURCE"] = charm.SNAP_RESOURCE
    return names


def status_templates() -> dict[str, dict[str, bool]]:
    """Regular expressions of every status message the code can set, by status kind.

    Direct `ops.<Kind>Status("...")` messages, the Active messages `_apply` and the route's
    `route_message` return, and every
    message of an exception that `status_for` shows, wrapped the way `status_for` wraps it.
    Each maps to whether it is generic: `status_for`'s own wrappers, whose `.+` stands for any
    error; a documented message matches a generic one only with a `<...>` in that place.
    """
    import charm  # noqa: PLC0415
    import workload  # noqa: PLC0415
    from relations import haproxy_route, peers, recon  # noqa: PLC0415
    from relations.remote_data import RemoteDataError  # noqa: PLC0415
    from state import InvalidConfigError  # noqa: PLC0415

    names = _module_names()
    templates: dict[str, dict[str, bool]] = {}

    def add(kind: str, pattern: str, generic: bool = False) -> None:
        kinds = templates.setdefault(kind, {})
        kinds[pattern] = kinds.get(pattern, True) and generic

    sentinel, second = "SENTINEL0", "SENTINEL1"  # status_for keeps messages printable
    shown: dict[str, tuple[str, str]] = {}  # exception class -> (kind, wrapper)
    for error_class in (
        workload.SnapError,
        workload.ServiceError,
        workload.FileWriteError,
        workload.ConfigNotWrittenError,
        workload.DatabaseUnreachableError,
        peers.VersionMismatchError,
        RemoteDataError,
        recon.RefusedReconDataError,
        haproxy_route.RouteRefusedError,
    ):
        name = error_class.__name__
        status = charm.status_for(error_class(sentinel))
        shown[name] = (status.name, re.escape(status.message).replace(re.escape(sentinel), "{}"))
    invalid = charm.status_for(InvalidConfigError(sentinel, second))
    invalid_wrapper = (
        re.escape(invalid.message)
        .replace(re.escape(sentinel), "{option}")
        .replace(re.escape(second), "{why}")
    )
    add(invalid.name, invalid_wrapper.format(option=".+", why=".+"), generic=True)

    for option, why in _option_checks(names):
        add(invalid.name, invalid_wrapper.format(option=option, why=why))
    for node, generic in _status_code():
        if isinstance(node, ast.FunctionDef) and node.name in ("_apply", "route_message"):
            for message in _returned_strings(node):
                if pattern := _pattern(message, names):
                    add("active", pattern)
        if not isinstance(node, ast.Call) or not node.args:
            continue
        callee = ast.unparse(node.func).rsplit(".", 1)[-1]
        pattern = _pattern(node.args[0], names)
        if callee.endswith("Status") and pattern is not None:
            add(callee.removesuffix("Status").lower(), pattern, generic)
        elif callee in shown and pattern is not None:
            kind, wrapper = shown[callee]
            add(kind, wrapper.format(pattern))
        elif callee == "InvalidConfigError" and len(node.args) == 2:
            option, why = (_pattern(arg, names) for arg in node.args)
            if option is not None and why is not None:
                add(invalid.name, invalid_wrapper.format(option=option, why=why))
    return templates


def _methods(path: Path, class_name: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    (cls,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def _reachable(methods: dict[str, ast.FunctionDef], roots: set[str], via: str) -> set[str]:
    """Methods reachable from the roots through calls of `<via>.<method>(...)`."""
    seen: set[str] = set()
    todo = [root for root in roots if root in methods]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(methods[name]):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and ast.unparse(node.func.value) == via
                and node.func.attr in methods
            ):
                todo.append(node.func.attr)
    return seen


def _called_on(functions: list[ast.FunctionDef], receiver: str) -> set[str]:
    return {
        node.func.attr
        for function in functions
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and ast.unparse(node.func.value) == receiver
    }


def _status_code() -> Iterator[tuple[ast.AST, bool]]:
    """(node, inside status_for) for the code a unit's status can come from.

    That is what `_reconcile` and the rolling restart's callback run in the charm and in the
    workload, plus the state and the
    relation modules; actions (which fail with a message instead) are left out.
    """
    charm_methods = _methods(SRC / "charm.py", "HockeypuckCharm")
    charm_reached = _reachable(charm_methods, {"_reconcile", "_restart_in_turn"}, "self")
    workload_methods = _methods(SRC / "workload.py", "Hockeypuck")
    workload_roots = _called_on([charm_methods[name] for name in charm_reached], "self.workload")
    workload_reached = _reachable(workload_methods, workload_roots, "self")
    functions = [charm_methods[name] for name in charm_reached]
    functions += [workload_methods[name] for name in workload_reached]
    workload_tree = ast.parse((SRC / "workload.py").read_text())
    functions += [node for node in workload_tree.body if isinstance(node, ast.FunctionDef)]
    charm_tree = ast.parse((SRC / "charm.py").read_text())
    functions += [
        node
        for node in charm_tree.body
        if isinstance(node, ast.FunctionDef) and node.name == "status_for"
    ]
    modules = [SRC / "state.py", *sorted((SRC / "relations").glob("*.py"))]
    for function in functions:
        for node in ast.walk(function):
            yield node, function.name == "status_for"
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            yield node, False


def _option_checks(names: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(option, why) patterns of the checks that take the option's name as a parameter.

    For `def _positive_int(option, value): ... InvalidConfigError(option, f"...")`, one pair
    for each call such as `_positive_int("max-key-length", ...)`.
    """
    tree = ast.parse((SRC / "state.py").read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef) or not function.args.args:
            continue
        parameter = function.args.args[0].arg
        whys = [
            why
            for node in ast.walk(function)
            if isinstance(node, ast.Call)
            and ast.unparse(node.func).endswith("InvalidConfigError")
            and len(node.args) == 2
            and ast.unparse(node.args[0]) == parameter
            and (why := _pattern(node.args[1], names)) is not None
        ]
        options = [
            call.args[0].value
            for call in calls
            if ast.unparse(call.func) == function.name
            and call.args
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        ]
        for option in options:
            for why in whys:
                yield re.escape(option), why


def _returned_strings(function: ast.FunctionDef) -> Iterator[ast.expr]:
    """The string expressions a function returns (both arms of a conditional expression)."""
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and node.value is not None:
            values = [node.value]
            if isinstance(node.value, ast.IfExp):
                values = [node.value.body, node.value.orelse]
            yield from values


def documented_statuses() -> list[tuple[str, str]]:
    """(kind, message) of each row of the statuses page; `<...>` marks a variable part."""
    rows = re.findall(
        r"^\| `(active|maintenance|waiting|blocked)` \| (?:`([^`]*)`|\(no message\)) \|",
        STATUSES_PAGE.read_text(),
        re.M,
    )
    return [(kind, message) for kind, message in rows]


def _sample(message: str) -> str:
    return re.sub(r"<[^<>]+>", "VARIABLE", message)


def _matches(pattern: str, generic: bool, sample: str) -> bool:
    if generic:
        pattern = pattern.replace(".+", "VARIABLE")
    return re.fullmatch(pattern, sample) is not None


def test_every_documented_status_is_one_the_code_sets():
    templates = status_templates()
    rows = documented_statuses()
    assert rows
    for kind, message in rows:
        if not message:
            assert kind == "active"
            continue
        sample = _sample(message)
        matching = [
            pattern
            for pattern, generic in templates.get(kind, {}).items()
            if _matches(pattern, generic, sample)
        ]
        assert matching, f"{kind} {message!r}: the code sets no such status"


def test_every_status_the_code_sets_is_documented():
    rows = documented_statuses()
    for kind, patterns in status_templates().items():
        for pattern in patterns:
            documented = [
                message
                for row_kind, message in rows
                if row_kind == kind and message and re.fullmatch(pattern, _sample(message))
            ]
            assert documented, f"{kind} status /{pattern}/ is not on {STATUSES_PAGE.name}"


def test_the_status_templates_see_the_codes_messages():
    templates = status_templates()

    assert re.escape("needs a database relation") in templates["blocked"]
    assert re.escape("waiting for database credentials") in templates["waiting"]
    assert any(
        re.fullmatch(
            pattern,
            "snap.hockeypuck.hockeypuck.service is not running (see journalctl"
            " -u snap.hockeypuck.hockeypuck.service)",
        )
        for pattern in templates["blocked"]
    )
    assert not any(
        _matches(pattern, generic, "no such status")
        for pattern, generic in templates["blocked"].items()
    )


# Links


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {_slug(heading) for heading in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def relative_links(page: Path) -> Iterator[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target


def test_relative_links_resolve():
    checked = 0
    for page in markdown_files():
        for target in relative_links(page):
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(REPO)} -> {target}"
            assert resolved.exists(), f"{where}: no such file"
            assert resolved.is_relative_to(REPO), f"{where}: outside the repository"
            if anchor and resolved.suffix == ".md":
                assert anchor in anchors(resolved), f"{where}: no such heading"
            checked += 1
    assert checked


def test_every_page_is_reachable_from_the_index():
    index = DOCS / "index.md"
    linked = {(index.parent / link.partition("#")[0]).resolve() for link in relative_links(index)}
    for page in DOCS.rglob("*.md"):
        if page != index:
            assert page.resolve() in linked, f"{page.relative_to(REPO)} is not in docs/index.md"


def test_readme_links_the_docs():
    links = {link.partition("#")[0] for link in relative_links(REPO / "README.md")}
    assert "docs/index.md" in links
    assert "docs/tutorial/getting-started.md" in links


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {sys.argv[0]} --write")
    write()
