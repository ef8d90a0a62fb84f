"""The AsyncAPI 3.0 description of the Kafka topics (`api.asyncapi`): served at `/asyncapi.json`, checked in as
`docs/asyncapi.json` (kept equal to what the code writes), valid under the official AsyncAPI parser (installed
by this test from `tools/asyncapi/package-lock.json` on a fresh machine), written from the code's own topics
and message schemas, and accepting the contract's examples and the demo's messages exactly as the parser does."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.asyncapi import REGENERATE, document, published
from domain.commands import COMMANDS
from domain.schema import message_schema
from infra import kafka
from infra.settings import Settings
from service.bootstrap import build_ledger
from tests.conftest import LOCAL
from tests.unit.test_schema import as_decimals, example, parsed
from tools.common import ensure_debian_package
from yaosu.demo import demo_messages

REPO = Path(__file__).resolve().parents[2]
CHECKED_IN = REPO / "docs" / "asyncapi.json"
VALIDATOR = REPO / "tools" / "asyncapi"


def test_the_checked_in_copy_is_what_the_code_writes() -> None:
    assert CHECKED_IN.read_bytes() == published(), (
        f"docs/asyncapi.json has drifted from the code that writes it: regenerate it with `{REGENERATE}`")


def test_the_command_named_to_regenerate_it_prints_it() -> None:
    assert REGENERATE == ".venv/bin/python -m yaosu asyncapi > docs/asyncapi.json"
    printed = subprocess.run([sys.executable, "-m", "yaosu", "asyncapi"], capture_output=True, timeout=120, cwd=REPO,
                             env={k: v for k, v in os.environ.items() if not k.startswith("YAOSU_")})
    assert printed.returncode == 0 and printed.stdout == published(), printed.stderr


def test_it_is_served_at_asyncapi_json_without_a_token() -> None:
    settings = Settings(store="memory://")
    ledger = build_ledger(settings)
    try:
        with TestClient(create_app(ledger, settings), base_url=LOCAL) as client:
            answer = client.get("/asyncapi.json")
            assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
            assert answer.content == published()
            assert "/asyncapi.json" in client.get("/openapi.json").json()["paths"]
    finally:
        ledger.close()


def test_it_describes_the_topics_of_the_code_and_the_parser_s_own_message_schemas() -> None:
    doc = document()
    channels = doc["channels"]
    assert {c["address"] for c in channels.values()} == {kafka.PORTAL, kafka.REJECTED, kafka.EVENTS, kafka.ALERTS,
                                                          kafka.AUDIT}
    assert all(c["bindings"]["kafka"]["partitions"] == kafka.PARTITIONS for c in channels.values())
    actions = {(o["channel"]["$ref"].rpartition("/")[2], o["action"]) for o in doc["operations"].values()}
    assert actions == {("portal", "receive"), ("rejected", "send"), ("events", "send"), ("alerts", "send"),
                       ("audit", "send"), ("alerts", "receive"), ("events", "receive")}
    # One message per type, whose payload is the very schema `/v1/schemas/{type}` serves (not written twice).
    assert set(channels["portal"]["messages"]) == set(COMMANDS)
    for type_, command in COMMANDS.items():
        payload = doc["components"]["messages"][type_]["payload"]
        assert payload == {"$ref": f"#/components/schemas/{type_}"}
        served = message_schema(command)
        assert doc["components"]["schemas"][type_] == {k: v for k, v in served.items() if k not in ("$schema", "$id")}


# --- the official parser --------------------------------------------------------------------------------------


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yaosu"


@pytest.fixture(scope="session")
def asyncapi_parser() -> Path:
    """`@asyncapi/parser` as `tools/asyncapi/package-lock.json` pins it, installed once with `npm ci` into
    ~/.cache/yaosu/asyncapi-<lock's hash>; returns its node_modules. Fails (never skips) when it cannot."""
    lock = (VALIDATOR / "package-lock.json").read_bytes()
    home = _cache_root() / f"asyncapi-{hashlib.sha256(lock + (VALIDATOR / 'package.json').read_bytes()).hexdigest()[:16]}"
    home.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"{home.name}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # two test workers install it once
        if not (home / "installed").exists():
            if not shutil.which("npm"):  # a fresh Debian: its npm brings Node.js 18, which the parser runs on
                ensure_debian_package(Path("/usr/bin/npm"), "npm")
            npm = shutil.which("npm")
            assert npm, "npm is needed to install the AsyncAPI parser (apt-get install -y npm)"
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(VALIDATOR / name, home / name)
            done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=home,
                                  capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"npm ci of the AsyncAPI parser failed:\n{done.stdout}\n{done.stderr}"
            (home / "installed").write_text("ok\n")
    return home / "node_modules"


def parse(node_modules: Path, path: Path) -> tuple[int, list[dict[str, Any]]]:
    node = shutil.which("node")
    assert node, "node is needed to run the AsyncAPI parser"
    done = subprocess.run([node, str(VALIDATOR / "validate.cjs"), str(path)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NODE_PATH": str(node_modules)})
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the AsyncAPI parser said nothing (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.returncode, lines


def test_the_official_asyncapi_parser_finds_no_error(asyncapi_parser: Path) -> None:
    status, said = parse(asyncapi_parser, CHECKED_IN)
    errors = [d for d in said if d["severity"] == "error"]
    for d in said:
        print(d)  # every diagnostic, warnings and hints too, in the test's output
    assert status == 0 and not errors, "\n".join(f"{d['path']}: {d['message']}" for d in errors)
    [summary] = [d for d in said if d["severity"] == "summary"]
    assert (summary["version"], summary["channels"], summary["operations"]) == ("3.0.0", 5, 7)
    assert summary["messages"] == len(COMMANDS) + 4


def test_the_parser_does_refuse_a_broken_document(asyncapi_parser: Path, tmp_path: Path) -> None:
    """The check above is worth something: a payload that is no schema, or a channel with no partition, is an
    error the parser reports, and the run fails."""
    broken = document()
    broken["components"]["schemas"]["land.supplied"]["type"] = "objekt"
    broken["channels"]["events"]["bindings"]["kafka"]["partitions"] = 0
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    status, said = parse(asyncapi_parser, path)
    errors = {d["path"] for d in said if d["severity"] == "error"}
    assert status == 1
    assert {"components/schemas/land.supplied/type", "channels/events/bindings/kafka/partitions"} <= errors


# --- the portal messages under the document's payloads --------------------------------------------------------


def _integer(checker: Any, instance: Any) -> bool:
    return (isinstance(instance, int) and not isinstance(instance, bool)) or (
        isinstance(instance, Decimal) and instance == instance.to_integral_value())


#: AsyncAPI's schema format is a superset of JSON Schema draft 07; numbers read as decimals (`multipleOf`).
Draft7 = jsonschema.validators.extend(
    jsonschema.Draft7Validator, type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine("integer", _integer))


def portal_payloads() -> dict[str, Any]:
    """The receive operation's messages, each its payload's validator over the document's components."""
    doc = as_decimals(document())
    receive = doc["operations"]["receivePortalMessages"]
    assert receive["channel"] == {"$ref": "#/channels/portal"}
    found = {}
    for ref in receive["messages"]:
        name = ref["$ref"].rpartition("/")[2]
        message = doc["components"]["messages"][doc["channels"]["portal"]["messages"][name]["$ref"].rpartition("/")[2]]
        found[name] = Draft7({**message["payload"], "components": doc["components"]})
    return found


PAYLOADS = portal_payloads()


def accepted_by(body: Any) -> list[str]:
    instance = json.loads(json.dumps(body), parse_float=Decimal)
    return [name for name, validator in PAYLOADS.items() if validator.is_valid(instance)]


def contract_examples() -> list[Any]:
    """Every portal message written out in docs/contract.md (a JSON block holding an envelope)."""
    text = (REPO / "docs" / "contract.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]
    return [b for b in blocks if isinstance(b, dict) and {"message_id", "type", "payload"} <= set(b)]


def test_every_example_of_the_contract_is_a_message_of_the_portal_channel() -> None:
    examples = contract_examples()
    assert examples, "docs/contract.md holds an envelope"
    # And the contract's example payload of each type (tests/portal.py), as a whole message.
    examples += [example(type_, n) for n, type_ in enumerate(sorted(COMMANDS))]
    for body in examples:
        assert parsed(body) is None, body
        assert accepted_by(body) == [body["type"]], body


def test_every_message_of_the_demo_is_judged_by_the_portal_channel_as_by_the_parser() -> None:
    judged = {"valid": 0, "malformed": 0}
    for message in demo_messages(2021, projects=60, seed=7):
        refused = parsed(json.loads(json.dumps(message)))
        malformed = refused is not None and refused.args[0].startswith(("invalid.", "unknown_type."))
        assert accepted_by(message) == ([] if malformed else [message["type"]]), (message, refused and refused.args)
        judged["malformed" if malformed else "valid"] += 1
    assert judged["valid"] > 1000 and judged["malformed"] >= 1, judged


def test_the_portal_developers_page_names_only_routes_that_exist_and_the_murmur2_partitioner() -> None:
    page = (REPO / "docs" / "portal-developers.md").read_text()
    settings = Settings(store="memory://")
    ledger = build_ledger(settings)
    try:
        paths = create_app(ledger, settings).openapi()["paths"]
    finally:
        ledger.close()
    routes = [re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/?]+", re.escape(p)) + "$") for p in paths]
    named = set(re.findall(r"(/v1/[A-Za-z0-9_./{}-]*[A-Za-z0-9_}]|/asyncapi\.json)", page))
    assert {"/asyncapi.json", "/v1/rejections", "/v1/parked", "/v1/schemas/{type}", "/v1/audit"} <= named
    assert [p for p in sorted(named) if not any(r.match(p) for r in routes)] == []
    for topic in (kafka.PORTAL, kafka.REJECTED):
        assert f"`{topic}`" in page
    assert page.count("partitioner=murmur2_random") >= 2 and "acks=all" in page and "enable.idempotence=true" in page
