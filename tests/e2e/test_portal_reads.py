"""A portal reads only its own messages' bodies, wherever bodies are shown (issue 19, item 8).

The v1.1 rule "a portal sees only its own rejections" held on `/v1/rejections` only: through
`/v1/events` and `/v1/parked` a portal read other departments' rejected and parked bodies. Here two
portals each send rejected messages over HTTP and over Kafka (and parked ones over Kafka), every
body carrying a secret of its sender, and every way a portal reads is swept for the other's.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from api import schemas
from api.app import create_app
from consumers.portal import KAFKA_PRINCIPAL
from infra.kafka import KafkaOrigin
from infra.presenter import StoredItem, event_json
from infra.settings import Settings
from infra.tokens import Principal
from projections.read import ReadModels
from projections.runner import Runner
from service.authorisation import may_read_body
from service.ledger import Ledger
from tests.conftest import LOCAL, submit
from tests.console import sign_in
from tests.portal import CODE, admitted, msg
from tests.unit.test_parking import parking

UNREGISTERED = "2021-620102-48-01-654321"
#: Each portal's token, and the department it sends as.
PORTALS = {"natural_resources": "dev-natural_resources", "big_data": "dev-big_data"}
SUPERVISOR = "dev-supervisor"


def secret(department: str, where: str) -> str:
    return f"SECRET-{department}-{where}"


#: A message each may send, its secret in a text field (`[secret]` there makes it invalid).
PAYLOADS = {"natural_resources": ("land.supplied", lambda text: {"parcel": text, "area_mu": 1, "method": "transfer"}),
            "big_data": ("data.provided", lambda text: {"kind": "k", "reference": text})}


def sent(department: str) -> dict[str, Any]:
    """What a portal sent, each carrying its secret: over HTTP (rejected) and over Kafka (rejected, parked)."""
    kind, payload = PAYLOADS[department]
    return {"http": msg(kind, payload([secret(department, "http")]), dept=department),
            "kafka": [msg(kind, payload([secret(department, "kafka")]), dept=department),
                      msg(kind, payload(secret(department, "parked")), code=UNREGISTERED, dept=department)]}


@pytest.fixture
def client(ledger: Ledger, settings: Settings) -> Iterator[TestClient]:
    submit(ledger, *admitted(CODE))
    reads = ReadModels(settings)
    try:
        with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as test:
            for department, token in PORTALS.items():
                messages = sent(department)
                answer = test.post("/v1/messages", json=messages["http"], headers=bearer(token))
                assert answer.json()["results"][0]["code"] == "invalid", answer.text
                results = ledger.submit(messages["kafka"], principal=KAFKA_PRINCIPAL, channel="kafka",
                                        keys=[b"620102"] * 2, origins=[KafkaOrigin("kafka:yaosu.portal.v1:0", n) for n in (1, 2)],
                                        parking=parking())
                assert [r.status for r in results] == ["rejected", "parked"], results
            runner = Runner(ledger, settings)
            runner.run_until_caught_up()
            runner.close()
            yield test
    finally:
        reads.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def secrets_in(text: str) -> set[str]:
    return {s for d in PORTALS for w in ("http", "kafka", "parked") if (s := secret(d, w)) in text}


def own(department: str) -> set[str]:
    return {secret(department, w) for w in ("http", "kafka", "parked")}


def test_the_feed_and_the_parked_list_withhold_other_portals_bodies(client: TestClient) -> None:
    everything = own("natural_resources") | own("big_data")
    for reader in (*PORTALS, None, *PORTALS):  # twice: a kept answer of one reader is never another's
        token = PORTALS[reader] if reader else SUPERVISOR
        feed = client.get("/v1/events", params={"limit": 1000}, headers=bearer(token))
        parked = client.get("/v1/parked", headers=bearer(token))
        assert feed.status_code == parked.status_code == 200
        schemas.FeedResponse.model_validate(feed.json())
        schemas.ParkedResponse.model_validate(parked.json())
        visible = own(reader) if reader else everything
        assert secrets_in(feed.text) == visible, reader
        assert secrets_in(parked.text) == {s for s in visible if s.endswith("parked")}, reader
        # Every entry keeps its place: a portal pages through the same positions as a supervisor.
        everyone = client.get("/v1/events", params={"limit": 1000}, headers=bearer(SUPERVISOR)).json()
        assert [e["position"] for e in feed.json()["events"]] == [e["position"] for e in everyone["events"]]
        assert len(parked.json()["parked"]) == 2
        for entry in [*feed.json()["events"], *parked.json()["parked"]]:
            shown = entry.get("data", entry)
            if entry.get("withheld"):
                assert reader is not None and all(shown[name] is None for name in entry["withheld"])
                assert {"body", "reason"} <= set(entry["withheld"])


def test_what_a_portal_sent_it_still_reads_in_full(client: TestClient) -> None:
    rejections = client.get("/v1/rejections", headers=bearer(PORTALS["big_data"])).json()["rejections"]
    assert {r["code"] for r in rejections} == {"invalid"} and len(rejections) == 2
    parked = client.get("/v1/parked", headers=bearer(PORTALS["big_data"])).json()["parked"]
    mine = [p for p in parked if not p.get("withheld")]
    assert [p["body"]["payload"]["reference"] for p in mine] == [secret("big_data", "parked")] and len(parked) == 2
    assert mine[0]["reason"]


def test_no_console_page_shows_another_portals_body(client: TestClient) -> None:
    sign_in(client, PORTALS["natural_resources"])
    pages = ["/console", "/console/alerts", "/console/ledger", "/console/rankings", "/console/warnings",
             "/console/audit", "/console/rejections", "/console/health", f"/console/projects/{CODE}",
             "/console/libraries/municipal"]
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, path
        assert secrets_in(page.text) <= own("natural_resources"), path
    # The download the console links to with bodies in it: the rejections'.
    download = client.get("/v1/rejections", params={"format": "csv"})
    assert download.status_code == 200
    assert secrets_in(download.text) == own("natural_resources") - {secret("natural_resources", "parked")}
    assert secrets_in(client.get("/v1/events?limit=1000").text) == own("natural_resources")  # with the session


def test_an_event_that_cannot_be_read_shows_a_portal_nothing_of_what_was_stored() -> None:
    """It cannot say who sent it: a portal sees its place in the feed and its error, not its data."""
    stored = b'{"body": "' + secret("big_data", "http").encode() + b'"}'
    item = StoredItem(7, None, topic="domain.receipt:MessageReceipt.Rejected", state=stored, error="damaged")
    portal = Principal("natural_resources-portal", "portal", "natural_resources")
    shown = event_json(item, body_shown=may_read_body(portal, item.event))
    assert (shown["position"], shown["withheld"], shown["render_error"]) == (7, ["raw"], "ValueError: damaged")
    assert not secrets_in(orjson.dumps(shown).decode())
    assert secrets_in(orjson.dumps(event_json(item, body_shown=may_read_body(Principal("s", "supervisor"), None)))
                      .decode()) == {secret("big_data", "http")}
