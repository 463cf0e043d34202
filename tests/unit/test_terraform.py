"""The Terraform modules in terraform/ parse, and every endpoint they name exists.

`terraform validate` needs the Juju provider from the Terraform registry, which this test
suite cannot reach; maintainers run it as the README says. Here the HCL is parsed with
python-hcl2: the variables and outputs of each module are checked, and every endpoint a
`juju_integration` names is checked against `charmcraft.yaml` (hockeypuck) or against the
endpoints of the other charms recorded below.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
CHARM_MODULE = TERRAFORM / "charm"
PRODUCT_MODULE = TERRAFORM / "product"

# Endpoints of the other charms the product module integrates, with their interfaces.
# postgresql and haproxy: the project's spec of the wire formats (spec/interfaces.md):
# `postgresql` 16/stable endpoint `database` (postgresql_client); `haproxy` 2.8 endpoint
# `haproxy-route` (haproxy-route). The certificates endpoints are those of the haproxy charm's
# documentation (`juju integrate self-signed-certificates haproxy:certificates`); the
# collector's is the one docs/how-to/observe-with-cos.md integrates (cos_agent).
OTHER_CHARMS: dict[str, dict[str, str]] = {
    "postgresql": {"database": "postgresql_client"},
    "haproxy": {"haproxy-route": "haproxy-route", "certificates": "tls-certificates"},
    "self-signed-certificates": {"certificates": "tls-certificates"},
    "opentelemetry-collector": {"cos-agent": "cos_agent"},
}
CHANNELS = {"postgresql": "16/stable", "haproxy": "2.8/stable"}
# Variables of the product module holding offer URLs, and what each offer is by contract: the
# `recon-peers` endpoint of another Hockeypuck deployment (another product module's
# `recon_peers_offer_url`).
OFFER_VARIABLES = {"recon_partner_offers": ("hockeypuck", "recon-peers")}
CHARM_VARIABLES = {
    "model_uuid",
    "app_name",
    "channel",
    "revision",
    "base",
    "config",
    "constraints",
    "units",
    "resources",
}
REFERENCE = re.compile(r"\bvar\.([a-z_]+)")


@cache
def charmcraft() -> dict[str, Any]:
    return yaml.safe_load((REPO / "charmcraft.yaml").read_text())


@cache
def module(directory: Path) -> dict[str, list[Any]]:
    """Every top-level block of a module's .tf files, by block type."""
    options = SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False, with_comments=False
    )
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as file:
            parsed = hcl2.load(file, serialization_options=options)
        for kind, blocks in parsed.items():
            merged.setdefault(kind, []).extend(blocks)
    return merged


def labelled(directory: Path, kind: str) -> dict[str, Any]:
    """Blocks with one label (variable, output, module): label -> body."""
    return {
        label: body for block in module(directory).get(kind, []) for label, body in block.items()
    }


def resources(directory: Path, resource_type: str) -> dict[str, Any]:
    return {
        name: body
        for block in module(directory).get("resource", [])
        for kind, named in block.items()
        if kind == resource_type
        for name, body in named.items()
    }


def expression(value: object) -> str:
    """`${...}` -> the expression inside; literals as they are."""
    text = str(value)
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text


def charm_endpoints() -> dict[str, str]:
    """Hockeypuck's integrable endpoints (requires and provides) -> interface."""
    meta = charmcraft()
    return {
        name: spec["interface"]
        for role in ("requires", "provides")
        for name, spec in (meta.get(role) or {}).items()
    }


def test_modules_parse():
    for directory in (CHARM_MODULE, PRODUCT_MODULE):
        assert module(directory).get("terraform"), f"{directory.name}: no terraform block"


@pytest.mark.parametrize("directory", [CHARM_MODULE, PRODUCT_MODULE], ids=lambda d: d.name)
def test_modules_pin_the_juju_provider(directory: Path):
    (settings,) = module(directory)["terraform"]
    (providers,) = settings["required_providers"]

    assert providers["juju"]["source"] == "juju/juju"
    assert providers["juju"]["version"].startswith(">= 1.0")


@pytest.mark.parametrize("directory", [CHARM_MODULE, PRODUCT_MODULE], ids=lambda d: d.name)
def test_every_variable_is_described_typed_and_used(directory: Path):
    variables = labelled(directory, "variable")
    used_text = "".join((directory / name).read_text() for name in ("main.tf", "outputs.tf"))
    used = set(REFERENCE.findall(used_text))

    for name, body in variables.items():
        assert body.get("description"), f"{directory.name}: {name} has no description"
        assert body.get("type"), f"{directory.name}: {name} has no type"
        assert name in used, f"{directory.name}: {name} is never used"
    assert used <= set(variables), f"{directory.name}: undeclared {used - set(variables)}"


def test_charm_module_variables():
    variables = labelled(CHARM_MODULE, "variable")

    assert set(variables) == CHARM_VARIABLES
    assert [name for name, body in variables.items() if "default" not in body] == ["model_uuid"]
    assert variables["app_name"]["default"] == charmcraft()["name"]
    assert variables["base"]["default"] == charmcraft()["base"]
    assert variables["units"]["default"] == 1


def test_charm_module_deploys_this_charm_from_its_variables():
    (application,) = resources(CHARM_MODULE, "juju_application").values()
    (charm,) = application["charm"]

    assert charm["name"] == charmcraft()["name"]
    assert expression(application["name"]) == "var.app_name"
    assert expression(application["model_uuid"]) == "var.model_uuid"
    for argument in ("channel", "revision", "base"):
        assert expression(charm[argument]) == f"var.{argument}"
    for argument in ("config", "constraints", "units", "resources"):
        assert expression(application[argument]) == f"var.{argument}"


def test_charm_module_outputs_the_app_name_and_every_endpoint():
    outputs = labelled(CHARM_MODULE, "output")
    meta = charmcraft()

    assert expression(outputs["app_name"]["value"]) == "juju_application.hockeypuck.name"
    for role in ("requires", "provides"):
        declared = {name.replace("-", "_"): name for name in meta.get(role) or {}}
        assert outputs[role]["value"] == declared, f"{role} differs from charmcraft.yaml"
    # The peer endpoint is not an output: nothing outside the application integrates with it.
    assert set(outputs) == {"app_name", "requires", "provides"}


def test_charm_module_resources_are_the_charms():
    description = labelled(CHARM_MODULE, "variable")["resources"]["description"]
    named = set(re.findall(r"\{ ([a-z0-9-]+) =", description))

    assert named
    assert named <= set(charmcraft()["resources"])


def test_product_module_passes_only_variables_the_charm_module_has():
    (hockeypuck,) = labelled(PRODUCT_MODULE, "module").values()
    arguments = set(hockeypuck) - {"source"}

    assert hockeypuck["source"] == "../charm"
    assert arguments <= CHARM_VARIABLES
    assert "model_uuid" in arguments


def test_product_module_channels():
    variables = labelled(PRODUCT_MODULE, "variable")
    applications = resources(PRODUCT_MODULE, "juju_application")
    for name, channel in CHANNELS.items():
        (charm,) = applications[name]["charm"]
        assert charm["name"] == name
        assert (
            f'channel     = optional(string, "{channel}")'
            in (PRODUCT_MODULE / "variables.tf").read_text()
        ), f"{name} is not on {channel} by default"
    assert "model_uuid" in variables


def _charm_of(application_name: str) -> str:
    """Which charm the `name` expression of an integration's application refers to."""
    reference = expression(application_name)
    if reference == "module.hockeypuck.app_name":
        return charmcraft()["name"]
    match = re.fullmatch(r"juju_application\.([a-z_]+)(?:\[0\])?\.name", reference)
    assert match, f"cannot tell which application {reference!r} is"
    (charm,) = resources(PRODUCT_MODULE, "juju_application")[match[1]]["charm"]
    return charm["name"]


def _endpoint(value: str) -> str:
    """An endpoint literal, or the charm module output it refers to."""
    reference = expression(value)
    match = re.fullmatch(r"module\.hockeypuck\.(requires|provides)\.([a-z_]+)", reference)
    if match is None:
        return reference
    outputs = labelled(CHARM_MODULE, "output")
    return outputs[match[1]]["value"][match[2]]


def _offered(body: dict[str, Any], end: dict[str, Any]) -> tuple[str, str]:
    """(charm, endpoint) of an integration end that is an offer URL from a variable."""
    assert expression(end["offer_url"]) == "each.value"
    match = re.fullmatch(r"toset\(var\.([a-z_]+)\)", expression(body.get("for_each", "")))
    assert match, "an offer_url end must come from a variable of offer URLs"
    return OFFER_VARIABLES[match[1]]


def integrations() -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Each juju_integration of the product module as ((charm, endpoint), (charm, endpoint))."""
    found = []
    for name, body in resources(PRODUCT_MODULE, "juju_integration").items():
        ends = body["application"]
        assert len(ends) == 2, f"{name} does not have two applications"
        first, second = (
            _offered(body, end)
            if "offer_url" in end
            else (_charm_of(end["name"]), _endpoint(end["endpoint"]))
            for end in ends
        )
        found.append((first, second))
    return found


def offered_endpoints() -> set[str]:
    """The charm's endpoints the product module offers to other models."""
    offered = set()
    for body in resources(PRODUCT_MODULE, "juju_offer").values():
        assert _charm_of(body["application_name"]) == charmcraft()["name"]
        offered |= {_endpoint(endpoint) for endpoint in body["endpoints"]}
    return offered


def _interface(charm: str, endpoint: str) -> str:
    known = charm_endpoints() if charm == charmcraft()["name"] else OTHER_CHARMS[charm]
    assert endpoint in known, f"{charm} has no endpoint {endpoint!r}"
    return known[endpoint]


def test_every_integration_names_existing_endpoints_of_the_same_interface():
    for first, second in integrations():
        assert _interface(*first) == _interface(*second), f"{first} and {second} do not match"


def test_product_wires_every_endpoint_of_the_charm():
    name = charmcraft()["name"]
    wired = {end[1] for pair in integrations() for end in pair if end[0] == name}

    # recon-peers is wired by another deployment, through this module's offer of it.
    assert wired | offered_endpoints() == set(charm_endpoints())


def test_two_product_modules_can_peer():
    variables = labelled(PRODUCT_MODULE, "variable")
    outputs = labelled(PRODUCT_MODULE, "output")
    (offer,) = resources(PRODUCT_MODULE, "juju_offer").values()

    # One module's output is what the other's variable takes.
    assert offered_endpoints() == {"recon-peers"}
    assert expression(outputs["recon_peers_offer_url"]["value"]) == (
        "one(juju_offer.recon_peers[*].url)"
    )
    assert expression(variables["recon_partner_offers"]["type"]) == "list(string)"
    assert variables["recon_partner_offers"]["default"] == []
    assert expression(offer["count"]) == "var.offer_recon_peers ? 1 : 0"
    assert variables["offer_recon_peers"]["default"] is False
    pairs = {frozenset(pair) for pair in integrations()}
    assert frozenset({("hockeypuck", "recon-partners"), ("hockeypuck", "recon-peers")}) in pairs


def test_product_gives_haproxy_a_certificate():
    pairs = {frozenset(pair) for pair in integrations()}

    assert (
        frozenset({("haproxy", "certificates"), ("self-signed-certificates", "certificates")})
        in pairs
    )


def test_product_outputs_every_application_name():
    outputs = labelled(PRODUCT_MODULE, "output")
    applications = resources(PRODUCT_MODULE, "juju_application")

    assert "hockeypuck_app_name" in outputs
    for name in applications:
        assert f"{name}_app_name" in outputs


def test_the_readme_tells_maintainers_to_validate():
    readme = (REPO / "README.md").read_text()

    assert "terraform init" in readme
    assert "terraform validate" in readme


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform on this machine")
def test_terraform_fmt_is_clean():
    done = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stdout
