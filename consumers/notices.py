"""What `yaosu notify` tells people (通知内容): an alert change or a supervision (督办) event, in Chinese
from the one catalogue, as each kind of target takes it — a WeCom group robot's markdown, a DingTalk
robot's markdown (signed as DingTalk documents), or the change itself as JSON for a plain webhook.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import asdict, dataclass
from typing import Any, Final
from urllib.parse import quote, quote_plus

from infra import presenter
from infra.catalogue import inert, name_of, said

#: Supervision messages on `yaosu.events.v1` that are told.
SUPERVISION: Final = ("supervision.assigned", "supervision.responded", "supervision.closed")
#: The header naming a delivery, the same on every resend: a receiver drops a repeat by it.
DELIVERY_HEADER: Final = "X-Yaosu-Delivery"


@dataclass(frozen=True)
class Notice:
    """One change to tell: `change_id` is its position in the store (unique, the same on a resend)."""

    change_id: int
    kind: str  # alert | supervision
    change: str  # raised, escalated, deescalated, cleared | assigned, responded, closed
    project_code: str | None
    project_name: str | None
    subject: str
    district: str | None
    rule: str | None
    level: str | None
    department: str | None  # who answers for it: the alert's department, or the case's responsible one
    leader: str | None
    as_of: str | None
    detail: str | None = None  # the alert's detail in Chinese
    case_id: str | None = None
    due_date: str | None = None
    demand: str | None = None
    measures: str | None = None
    expected_by: str | None = None
    outcome: str | None = None
    note: str | None = None


def alert_notice(value: dict[str, Any], project_name: str | None) -> Notice:
    """A change of `yaosu.alerts.v1`, as the monitor publishes it."""
    code = value.get("detail_code")
    detail = said(code, value.get("detail_params") or {}, "zh") if code else value.get("detail")
    return Notice(change_id=int(value["position"]), kind="alert", change=str(value["change"]),
                  project_code=value.get("project_code"), project_name=project_name,
                  subject=str(value.get("subject") or value.get("project_code") or ""), district=value.get("district"),
                  rule=value.get("rule"), level=value.get("level"), department=value.get("department") or None,
                  leader=value.get("leader"), as_of=_text(value.get("as_of")), detail=detail,
                  case_id=value.get("case_id"))


def supervision_notice(value: dict[str, Any], project_name: str | None, case: dict[str, Any] | None,
                       leader: str | None) -> Notice:
    """A supervision message of `yaosu.events.v1`; `case` is the case as its project holds it (its rule
    and responsible department, which a response or a closing does not repeat)."""
    data = value.get("data") or {}
    case = case or {}
    return Notice(change_id=int(value["position"]), kind="supervision",
                  change=str(value["type"]).rpartition(".")[2], project_code=value.get("project_code"),
                  project_name=project_name, subject=str(value.get("subject") or ""), district=value.get("district"),
                  rule=data.get("rule") or case.get("rule"), level=None,
                  department=data.get("responsible") or case.get("responsible"), leader=leader,
                  as_of=_text(value.get("occurred_at")), case_id=data.get("case_id"),
                  due_date=_text(data.get("due_date") or case.get("due_date")), demand=data.get("demand"),
                  measures=data.get("measures"), expected_by=_text(data.get("expected_by")),
                  outcome=data.get("outcome"), note=data.get("note"))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def link(notice: Notice, console_url: str) -> str:
    """The console page of what the notice is about: the case, the project, or the alerts of the day."""
    base = console_url.rstrip("/")
    if notice.kind == "supervision" and notice.case_id:
        return f"{base}/console/supervision/{quote(notice.case_id, safe='')}"
    if notice.project_code:
        return f"{base}/console/projects/{quote(notice.project_code, safe='')}"
    return f"{base}/console/alerts"


def title(notice: Notice) -> str:
    project = inert(notice.project_name or notice.subject)
    return said(f"notify.{notice.kind}.{notice.change}", {"project": project, "level": notice.level}, "zh")


def markdown(notice: Notice, console_url: str) -> str:
    """The message in Chinese, as markdown: what happened, to which project, under which rule, at which
    level, who answers for it (department and leader), and the console page."""
    def line(which: str, **params: Any) -> str:
        return "> " + said(f"notify.line.{which}", params, "zh")

    lines = [f"### {title(notice)}"]
    if notice.project_code:
        lines.append(line("project", name=notice.project_name or notice.project_code, code=notice.project_code))
    else:
        lines.append(line("subject", subject=notice.subject))
    if notice.rule:
        lines.append(line("rule", rule=notice.rule))
    if notice.level:
        lines.append(line("level", level=notice.level))
    if notice.detail:
        lines.append(line("detail", detail=notice.detail))
    if notice.case_id:
        lines.append(line("case", case_id=notice.case_id))
    if notice.change == "assigned":
        lines.append(line("due", due_date=notice.due_date or "—"))
        lines.append(line("demand", demand=notice.demand or "—"))
    if notice.change == "responded":
        lines.append(line("measures", measures=notice.measures or "—", expected_by=notice.expected_by or "—"))
    if notice.change == "closed":
        lines.append(line("outcome", outcome=notice.outcome or "", note=notice.note or "—"))
    lines.append(line("responsible", department=notice.department or "—"))
    lines.append(line("leader", leader=notice.leader) if notice.leader else line("no_leader"))
    if notice.district:
        lines.append(line("district", district=notice.district))
    if notice.as_of:
        lines.append(line("as_of", day=notice.as_of[:10]))
    lines.append("")
    lines.append(f"[{said('notify.link', {}, 'zh')}]({link(notice, console_url)})")
    return "\n".join(lines)


def body(kind: str, notice: Notice, console_url: str, delivery_id: str) -> bytes:
    """The request body for a target of this kind (what the robot's documentation specifies)."""
    text = markdown(notice, console_url)
    if kind == "wecom":
        return presenter.dumps({"msgtype": "markdown", "markdown": {"content": text}})
    if kind == "dingtalk":
        return presenter.dumps({"msgtype": "markdown", "markdown": {"title": title(notice), "text": text}})
    return presenter.dumps({"delivery_id": delivery_id, **asdict(notice), "department_name":
                            name_of("department", notice.department) or None, "link": link(notice, console_url),
                            "text": text})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: HMAC-SHA256 of `timestamp + "\\n" + secret` keyed by the secret, base64,
    URL-encoded (as its robot documentation specifies)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The robot's URL with `timestamp` and `sign` added to its query."""
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


#: A digest lists this many changes; the rest are counted.
DIGEST_LINES: Final = 50


def digest_markdown(day: str, titles: list[str], console_url: str) -> str:
    """One day's digest: how many changes, each in a line (the first `DIGEST_LINES`), and the console."""
    lines = [f"### {digest_title(day, len(titles))}", *(f"> {t}" for t in titles[:DIGEST_LINES])]
    if len(titles) > DIGEST_LINES:
        lines.append("> " + said("notify.digest.more", {"count": len(titles) - DIGEST_LINES}, "zh"))
    lines += ["", f"[{said('notify.link', {}, 'zh')}]({console_url.rstrip('/')}/console/alerts)"]
    return "\n".join(lines)


def digest_title(day: str, count: int) -> str:
    return said("notify.digest.title", {"day": day, "count": count}, "zh")


def digest_body(kind: str, day: str, titles: list[str], console_url: str, delivery_id: str) -> bytes:
    text = digest_markdown(day, titles, console_url)
    if kind == "wecom":
        return presenter.dumps({"msgtype": "markdown", "markdown": {"content": text}})
    if kind == "dingtalk":
        return presenter.dumps({"msgtype": "markdown", "markdown": {"title": digest_title(day, len(titles)),
                                                                    "text": text}})
    return presenter.dumps({"delivery_id": delivery_id, "kind": "digest", "day": day, "titles": titles, "text": text})
