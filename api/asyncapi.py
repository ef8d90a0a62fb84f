"""The AsyncAPI 3.0 description of Yaosu's Kafka side (消息接口说明): every topic it reads or writes, with
each record's key, headers and value, served at `/asyncapi.json` and checked in as `docs/asyncapi.json`.

Written from the declarations the code itself uses, so it cannot say one thing while Yaosu does another:
the topics' names and partitions from `infra.kafka`, the portal messages from the JSON Schemas the parser's
declarations give (`domain.schema`: one AsyncAPI message per type, its payload that type's schema), the
feed's records from the history item the API already describes (`api.schemas.HistoryEvent`), and the codes
(districts, rules, levels, changes, rejection codes) from the domain's tables. Operations are Yaosu's:
it receives portal messages and sends the rest.

Payloads are AsyncAPI's own schema format (a superset of JSON Schema draft 07): the message types'
schemas fit it as they are, less their `$schema` and `$id` (their 2020-12 identity is
`/v1/schemas/{type}`). Amounts are compared as decimals when `multipleOf` is checked (see `domain.schema`).
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any, Final, Literal, Optional

import orjson
from pydantic import BaseModel, ConfigDict, Field

from api.schemas import HistoryEvent
from domain import reference
from domain.alerts import CHANGES
from domain.commands import COMMANDS
from domain.rejections import REJECTION_CODES
from domain.schema import message_schema
from domain.supervision import LEVELS, RULES
from infra import kafka
from infra.catalogue import name_of

VERSION: Final = "3.0.0"
#: The Kafka bindings' version (https://github.com/asyncapi/bindings/tree/master/kafka).
KAFKA_BINDINGS: Final = "0.5.0"
#: The command that writes the checked-in copy, named where it has drifted.
REGENERATE: Final = ".venv/bin/python -m yaosu asyncapi > docs/asyncapi.json"
SCHEMAS: Final = "#/components/schemas/"
#: What every key of Yaosu's keyed topics is: the district, hashed as the Java client does.
PARTITIONER: Final = ("The partition is chosen from the key by the Java client's default partitioner, murmur2 "
                      "(`toPositive(murmur2(key)) % partitions`), as kafka-python does; librdkafka clients (kcat, "
                      "confluent-kafka) must set `partitioner=murmur2_random` to match it.")


class EventRecord(HistoryEvent):
    """A value of `yaosu.events.v1`: one item of a project's history (`GET /v1/projects/{code}/history`,
    `GET /v1/events`), naming its key and its subject (v1.2)."""

    model_config = ConfigDict(title="EventRecord")
    district: Optional[str] = Field(None, description="the district of the event's aggregate: the record's key "
                                                      "(absent only with `render_error`)")
    project_code: Optional[str] = Field(None, description="a project's event, or an alert change of a project")
    reduction_id: Optional[str] = Field(None, description="an emission reduction's event")
    approval_id: Optional[str] = Field(None, description="a batch approval of land's event, or its alert's (v1.2)")
    allocation_id: Optional[str] = Field(None, description="an allocation decision's event (v1.2)")
    year: Optional[int] = Field(None, description="a quota pool's event: its year")
    factor: Optional[str] = Field(None, description="a quota pool's event: its factor")


class CheckpointData(BaseModel):
    day: date = Field(description="the day closed (city time)")
    position: int = Field(description="the day's last stored position")
    head: str = Field(pattern="^[0-9a-f]{64}$", description="the hex SHA-256 link of the audit chain at `position`")


class CheckpointRecord(HistoryEvent):
    """A value of `yaosu.audit.v1`: the audit chain's head at the close of a day, as a history item."""

    model_config = ConfigDict(title="CheckpointRecord")
    type: Literal["checkpoint.recorded"]  # type: ignore[assignment]
    event: Literal["checkpoint.recorded"]  # type: ignore[assignment]
    data: CheckpointData  # type: ignore[assignment]


class RejectedRecord(BaseModel):
    """A value of `yaosu.portal.v1.rejected`: a portal message read from Kafka and rejected for good."""

    model_config = ConfigDict(title="RejectedRecord")
    message: Any = Field(description="the message as it came: its JSON, or its text when it was not JSON")
    code: Literal[tuple(REJECTION_CODES)] = Field(description="why: the rejection code")  # type: ignore[valid-type]
    reason: str = Field(description="why, in English")
    detail_code: Optional[str] = Field(description="what `reason` says, as a text code (v1.2): its first part is "
                                                   "`code`")
    detail_params: Optional[dict[str, Any]] = Field(description="the text code's parameters (v1.2)")
    message_id: Optional[str] = Field(description="the message's id, when it had one")


class AlertChangeRecord(BaseModel):
    """A value of `yaosu.alerts.v1`: one change of a sedimentation alert, as `GET /v1/alerts` shows the
    alert, with the change, the day it was found on and its place in the store."""

    model_config = ConfigDict(title="AlertChangeRecord")
    change: Literal[CHANGES] = Field(description="raised, escalated (yellow → red, or becoming reclaimable), "  # type: ignore[valid-type]
                                                 "deescalated (red → yellow), cleared")
    as_of: date = Field(description="the business day the change was found on")
    position: int = Field(description="the change's position in the store (also the `position` header)")
    project_code: Optional[str] = Field(description="the project; null for an approval's alert (land_unsupplied)")
    subject: str = Field(description="the project code, or an approval's approval_id")
    district: str = Field(description="the district of the project or approval: the record's key")
    rule: Literal[RULES] = Field(description="the supervision rule")  # type: ignore[valid-type]
    level: Optional[Literal[LEVELS]] = Field(description="the level after the change")  # type: ignore[valid-type]
    since: Optional[date] = Field(description="the day the alert reached its level")
    ref: Optional[str] = Field(description="the issue, reduction or grant the alert concerns")
    detail: str = Field(description="what the alert says, in English")
    detail_code: Optional[str] = Field(description="what `detail` says, as a text code (null: words recorded "
                                                   "before texts had codes)")
    detail_params: Optional[dict[str, Any]] = Field(description="the text code's parameters")
    department: str = Field(description="the responsible department (the project's horizontal owner)")
    leader: Optional[str] = Field(description="the project's responsible leader (包抓领导), if any")
    grant_id: Optional[str] = Field(description="the grant a factor-level alert concerns (v1.2)")
    factor: Optional[str] = Field(description="that grant's factor (v1.2)")
    reclaimable: bool = Field(description="the factor may be taken back (v1.2)")
    case_id: Optional[str] = Field(description="the supervision case open about it (v1.2)")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def _header(description: str, pattern: str | None = None, values: tuple[str, ...] = ()) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "string", "description": description}
    if pattern:
        found["pattern"] = pattern
    if values:
        found["enum"] = list(values)
    return found


POSITION_HEADER: Final = _header("the record's position in Yaosu's store, in decimal: a consumer drops what it has "
                                 "seen (delivery is at least once)", "^[0-9]+$")


def _model_schemas() -> dict[str, Any]:
    """The outbound records' schemas, each model's parts under its own name."""
    found: dict[str, Any] = {}
    for model in (EventRecord, CheckpointRecord, RejectedRecord, AlertChangeRecord):
        schema = model.model_json_schema(ref_template=SCHEMAS + "{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


def _portal_message_schemas() -> dict[str, Any]:
    """Each message type's JSON Schema, as `/v1/schemas/{type}` serves it, less its 2020-12 identity."""
    return {type_: {k: v for k, v in message_schema(command).items() if k not in ("$schema", "$id")}
            for type_, command in sorted(COMMANDS.items())}


def _key_schemas() -> dict[str, Any]:
    districts = sorted({reference.CITY_CODE, *reference.DISTRICTS})
    return {
        "DistrictKey": {"type": "string", "enum": districts, "description": (
            "a district's area code, or the city's (620100): of the project, pool, reduction or approval the "
            "record is about. " + PARTITIONER)},
        "PortalKey": {"type": "string", "examples": ["620102", "620100"], "description": (
            "the district the message draws on (contract v1.1, v1.2; `infra.kafka.district_key`): the area "
            "segment of `project_code` (2021-620102-48-01-000001 → 620102); for `quota.set`, `land.approved` and "
            "`emission.reduction_registered` their `payload.district`; for `emission.advanced` and a reduction's "
            "other messages the district the reduction was registered with (default the city, 620100); for "
            "`allocation.adopted` the city, 620100. Messages keyed the v1 way (project code, reduction id) are "
            "still taken, with weaker order. " + PARTITIONER)},
        "RejectedKey": {"type": "string", "description": "the key the rejected message came with (null if none)"},
        "CheckpointKey": {"type": "string", "const": "checkpoint",
                          "description": "one key, so that the checkpoints stay in order on one partition"},
    }


def _message(name: str, title: str, summary: str, payload: str, key: str,
             headers: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "title": title, "contentType": "application/json", "payload": _ref(payload),
                             "bindings": {"kafka": {"key": _ref(key), "bindingVersion": KAFKA_BINDINGS}}}
    if summary != name:  # a message type without a description of its own is described by its title
        found["summary"] = summary
    if headers:
        found["headers"] = {"type": "object", "properties": headers, "required": sorted(headers)}
    return found


def _messages() -> dict[str, Any]:
    found = {type_: _message(type_, f"{type_} {name_of('message', type_)}", schema["description"], type_, "PortalKey")
             for type_, schema in _portal_message_schemas().items()}
    found.update(
        rejected=_message("rejected", "A rejected portal message",
                          "a message from yaosu.portal.v1 rejected for good, with its code and reason",
                          "RejectedRecord", "RejectedKey",
                          {"position": POSITION_HEADER, "code": _header("the rejection code", values=tuple(
                              REJECTION_CODES))}),
        event=_message("event", "A stored event", "a contract event, as an item of a project's history",
                       "EventRecord", "DistrictKey", {"position": POSITION_HEADER}),
        alert_change=_message("alert_change", "An alert change", "a sedimentation alert raised, escalated, "
                              "deescalated or cleared", "AlertChangeRecord", "DistrictKey",
                              {"position": POSITION_HEADER}),
        checkpoint=_message("checkpoint", "An audit checkpoint", "the audit chain's head at the close of a day",
                            "CheckpointRecord", "CheckpointKey", {"position": POSITION_HEADER}),
    )
    return found


def _channel(topic: str, description: str, messages: list[str]) -> dict[str, Any]:
    return {"address": topic, "title": topic, "description": description,
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
            "bindings": {"kafka": {"partitions": kafka.PARTITIONS, "topicConfiguration": {"cleanup.policy": ["delete"]},
                                   "bindingVersion": KAFKA_BINDINGS}}}


def _channels() -> dict[str, Any]:
    made = (f" Yaosu creates the topic with {kafka.PARTITIONS} partitions and the broker's defaults when it is "
            "missing; a deployment may make it beforehand with more (the key keeps each district in order).")
    return {
        "portal": _channel(kafka.PORTAL, (
            "Portal messages (门户报送): one envelope per record, the same as one item of `POST /v1/messages`; "
            "the payload is one of the message types (`type`), each the JSON Schema `/v1/schemas/{type}` serves. "
            "Produce with acks=all and idempotence on, keyed by district. A message waiting for its project or "
            "reduction is parked (`GET /v1/parked`), a refused one is kept and forwarded to "
            "yaosu.portal.v1.rejected." + made), sorted(COMMANDS)),
        "rejected": _channel(kafka.REJECTED, (
            "Portal messages read from yaosu.portal.v1 and rejected for good (also listed by "
            "`GET /v1/rejections`), under the key they came with." + made), ["rejected"]),
        "events": _channel(kafka.EVENTS, (
            "Every contract event in store order (projects, quota pools, reductions, batch approvals of land, "
            "allocations, alert changes), keyed by district; at least once (drop repeats by `position`)." + made),
            ["event"]),
        "alerts": _channel(kafka.ALERTS, (
            "Each change of a sedimentation alert (要素沉淀预警), keyed by district, published once per change by "
            "`yaosu monitor`." + made), ["alert_change"]),
        "audit": _channel(kafka.AUDIT, (
            "The audit chain's daily checkpoints (审计校验点): the head at the close of each day (city time), "
            "one record per day, to check the store against later (`yaosu audit verify`)." + made), ["checkpoint"]),
    }


def _operation(action: str, channel: str, messages: list[str], summary: str,
               group: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"action": action, "channel": {"$ref": f"#/channels/{channel}"}, "summary": summary,
                             "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in messages]}
    if group:
        found["bindings"] = {"kafka": {"groupId": {"type": "string", "default": group,
                                                   "description": "the consumer group (`--group`)"},
                                       "bindingVersion": KAFKA_BINDINGS}}
    return found


def _operations() -> dict[str, Any]:
    return {
        "receivePortalMessages": _operation("receive", "portal", sorted(COMMANDS), (
            "`yaosu consume portal`: each message through the same pipeline as `POST /v1/messages`, its offset "
            "recorded in the store with its effects (each message decided once)"), "yaosu-portal"),
        "sendRejections": _operation("send", "rejected", ["rejected"], "`yaosu relay`: Kafka messages rejected"),
        "sendEvents": _operation("send", "events", ["event"], "`yaosu relay`: every contract event, in store order"),
        "sendAlertChanges": _operation("send", "alerts", ["alert_change"], "`yaosu monitor`: each alert change"),
        "sendAuditCheckpoints": _operation("send", "audit", ["checkpoint"], "`yaosu relay`: each day's checkpoint"),
        "receiveAlertChangesToNotify": _operation(
            "receive", "alerts", ["alert_change"], "`yaosu notify`: each alert change, to the people responsible"),
        "receiveEventsToNotify": _operation(
            "receive", "events", ["event"], "`yaosu notify`: the supervision (督办) events, to the people responsible"),
    }


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document."""
    return {
        "asyncapi": VERSION,
        "id": "urn:yaosu:kafka",
        "info": {
            "title": "Yaosu (要素) on Kafka",
            "version": "1.2",
            "description": (
                "What departments' portals produce to Yaosu and what monitoring consumers read from it "
                "(docs/contract.md, docs/portal-developers.md). Topic names take the deployment's "
                "`YAOSU_KAFKA_TOPIC_PREFIX` in front, if set. Every record is UTF-8 JSON; keys are UTF-8 "
                "strings. " + PARTITIONER),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {"host": "{bootstrap}", "protocol": "kafka",
                      "description": "the deployment's brokers (`YAOSU_KAFKA_BOOTSTRAP`)",
                      "variables": {"bootstrap": {"default": "localhost:9092",
                                                  "description": "a broker's host:port"}},
                      "bindings": {"kafka": {"bindingVersion": KAFKA_BINDINGS}}},
        },
        "channels": _channels(),
        "operations": _operations(),
        "components": {"schemas": {**_key_schemas(), **_portal_message_schemas(), **_model_schemas()},
                       "messages": _messages()},
    }


@cache
def published() -> bytes:
    """The document as served and checked in: indented JSON, keys in the order written, a newline at the end."""
    return orjson.dumps(document(), option=orjson.OPT_INDENT_2) + b"\n"
