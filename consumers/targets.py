"""Where `yaosu notify` delivers (通知对象): the targets file (`YAOSU_NOTIFY_TARGETS`), read and checked at start.

A JSON file::

    {"retry": {"first_seconds": 10, "most_seconds": 1800, "attempts": 12, "max_age_hours": 24,
               "timeout_seconds": 10},
     "targets": [{"name": "chengguan-red", "kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
                  "districts": ["620102"], "departments": ["development_reform"], "levels": ["red"],
                  "events": ["alert", "supervision"], "quiet_hours": "22:00-07:00"},
                 {"name": "city-digest", "kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
                  "digest": "08:30"},
                 {"name": "nr-robot", "kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=…",
                  "secret": "SEC…", "departments": ["natural_resources"]}]}

`quiet_hours` holds a target's deliveries in those city hours until they end; `digest` sends it one
message a day at that city time, listing the changes since the last, instead of a message per change.
Every field is checked; a file that does not pass names each mistake by its place (`targets[1].kind: …`)
with a code, and nothing starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from domain.reference import CITY_CODE, CITY_TZ, DEPARTMENTS, DISTRICTS

KINDS: Final = ("wecom", "dingtalk", "webhook")
LEVELS: Final = ("red", "yellow")
EVENTS: Final = ("alert", "supervision")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_TARGET_FIELDS: Final = frozenset({"name", "kind", "url", "secret", "departments", "districts", "levels", "events",
                                   "quiet_hours", "digest"})
_RETRY_FIELDS: Final = frozenset({"first_seconds", "most_seconds", "attempts", "max_age_hours", "timeout_seconds"})


class TargetsError(ValueError):
    """The targets file cannot be used: each problem with its place and a machine-readable code."""

    def __init__(self, path: Path, problems: list[tuple[str, str, str]]) -> None:
        self.path, self.problems = path, problems
        super().__init__(f"{path}: " + "; ".join(f"{where}: {why} [{code}]" for where, code, why in problems))


@dataclass(frozen=True)
class Retry:
    """How failed deliveries are tried again: waits doubling from `first_seconds` to `most_seconds`, until
    `attempts` were made or the delivery is `max_age_hours` old; then it is undeliverable."""

    first_seconds: float = 10.0
    most_seconds: float = 1800.0
    attempts: int = 12
    max_age_hours: float = 24.0
    timeout_seconds: float = 10.0

    def wait(self, attempts_made: int) -> float:
        return float(min(self.first_seconds * 2 ** max(attempts_made - 1, 0), self.most_seconds))

    def gives_up(self, attempts_made: int, age_seconds: float) -> bool:
        return attempts_made >= self.attempts or age_seconds >= self.max_age_hours * 3600


@dataclass(frozen=True)
class QuietHours:
    """City-time hours in which a target is sent nothing (held until they end); may span midnight."""

    start: time
    end: time

    def holds(self, when: datetime) -> bool:
        now = when.astimezone(CITY_TZ).time().replace(second=0, microsecond=0, tzinfo=None)
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    url: str
    secret: str | None = field(default=None, repr=False)
    #: Empty: every department (district, level, kind of event).
    departments: frozenset[str] = frozenset()
    districts: frozenset[str] = frozenset()
    levels: frozenset[str] = frozenset(LEVELS)
    events: frozenset[str] = frozenset(EVENTS)
    quiet_hours: QuietHours | None = None
    #: A daily digest at this city time instead of a message per change (None: a message per change).
    digest: time | None = None

    def digest_due(self, when: datetime) -> datetime | None:
        """The latest digest moment at or before `when` (today's, once its time has come, else yesterday's), or
        None for a target without a digest. A digest tells what was held for it until its moment."""
        if self.digest is None:
            return None
        local = when.astimezone(CITY_TZ)
        moment = datetime.combine(local.date(), self.digest, CITY_TZ)
        return moment if moment <= local else moment - timedelta(days=1)

    def covers(self, kind: str, department: str | None, district: str | None, level: str | None) -> bool:
        """Whether a change is for this target. A cleared alert has no level: it goes where alerts of any
        level the target takes go, so a raised alert's end is told where it was."""
        if kind not in self.events:
            return False
        if self.departments and department not in self.departments:
            return False
        if self.districts and district not in self.districts:
            return False
        return kind != "alert" or level is None or level in self.levels


@dataclass(frozen=True)
class Targets:
    targets: tuple[Target, ...]
    retry: Retry = Retry()

    def by_name(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


def load(path: Path) -> Targets:
    try:
        content = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise TargetsError(path, [("file", "not_found", "no such file")]) from None
    except OSError as error:
        raise TargetsError(path, [("file", "unreadable", error.strerror or str(error))]) from None
    except orjson.JSONDecodeError as error:
        raise TargetsError(path, [("file", "not_json", str(error))]) from None
    return parse(path, content)


def parse(path: Path, content: Any) -> Targets:
    problems: list[tuple[str, str, str]] = []
    if not isinstance(content, dict):
        raise TargetsError(path, [("file", "not_an_object", 'must be a JSON object with "targets"')])
    for extra in sorted(set(content) - {"targets", "retry"}):
        problems.append((extra, "unknown_field", 'not a field of the file (it has "targets" and "retry")'))
    retry = _retry(content.get("retry", {}), problems)
    listed = content.get("targets")
    targets: list[Target] = []
    if not isinstance(listed, list) or not listed:
        problems.append(("targets", "no_targets", "must be a non-empty list of targets"))
    else:
        seen: set[str] = set()
        for i, item in enumerate(listed):
            found = _target(f"targets[{i}]", item, problems)
            if found is not None and found.name in seen:
                problems.append((f"targets[{i}].name", "duplicate_name", f"{found.name!r} names two targets"))
            elif found is not None:
                seen.add(found.name)
                targets.append(found)
    if problems:
        raise TargetsError(path, problems)
    return Targets(tuple(targets), retry)


def _retry(raw: Any, problems: list[tuple[str, str, str]]) -> Retry:
    if not isinstance(raw, dict):
        problems.append(("retry", "invalid", "must be an object"))
        return Retry()
    for extra in sorted(set(raw) - _RETRY_FIELDS):
        problems.append((f"retry.{extra}", "unknown_field", f"not a field of retry ({', '.join(sorted(_RETRY_FIELDS))})"))
    values: dict[str, Any] = {}
    for name in sorted(_RETRY_FIELDS & set(raw)):
        value = raw[name]
        whole = name == "attempts"
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or value <= 0:
            problems.append((f"retry.{name}", "invalid", f"must be a positive {'whole ' if whole else ''}number"))
        else:
            values[name] = value
    retry = Retry(**values)
    if retry.first_seconds > retry.most_seconds:
        problems.append(("retry.first_seconds", "invalid", "must not exceed retry.most_seconds"))
    return retry


def _target(where: str, raw: Any, problems: list[tuple[str, str, str]]) -> Target | None:
    if not isinstance(raw, dict):
        problems.append((where, "invalid", "must be an object"))
        return None
    before = len(problems)
    for extra in sorted(set(raw) - _TARGET_FIELDS):
        problems.append((f"{where}.{extra}", "unknown_field", f"not a field of a target ({', '.join(sorted(_TARGET_FIELDS))})"))
    name, kind, url, secret = raw.get("name"), raw.get("kind"), raw.get("url"), raw.get("secret")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append((f"{where}.name", "invalid_name", "must be 1-64 letters, digits, '.', '_' or '-'"))
    if kind not in KINDS:
        problems.append((f"{where}.kind", "unknown_kind", f"must be one of {', '.join(KINDS)} (got {kind!r})"))
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c in url for c in " \r\n"):
        problems.append((f"{where}.url", "invalid_url", "must be an http:// or https:// URL"))
    if kind == "dingtalk" and (not isinstance(secret, str) or not secret.strip()):
        problems.append((f"{where}.secret", "missing_secret", "a dingtalk robot needs its signing secret (SEC…)"))
    elif kind != "dingtalk" and secret is not None:
        problems.append((f"{where}.secret", "unexpected_secret", "only a dingtalk target is signed with a secret"))
    departments = _codes(f"{where}.departments", raw.get("departments"), DEPARTMENTS, problems)
    districts = _codes(f"{where}.districts", raw.get("districts"), (*DISTRICTS, CITY_CODE), problems)
    levels = _codes(f"{where}.levels", raw.get("levels"), LEVELS, problems) or frozenset(LEVELS)
    events = _codes(f"{where}.events", raw.get("events"), EVENTS, problems) or frozenset(EVENTS)
    quiet = _quiet_hours(f"{where}.quiet_hours", raw.get("quiet_hours"), problems)
    digest = raw.get("digest")
    at = _CLOCK.match(digest) if isinstance(digest, str) else None
    if digest is not None and at is None:
        problems.append((f"{where}.digest", "invalid_time", 'must be "HH:MM" in city time (e.g. "08:30")'))
    if len(problems) > before:
        return None
    return Target(str(name), str(kind), str(url), secret, departments, districts, levels, events, quiet,
                  time(int(at[1]), int(at[2])) if at else None)


def _codes(where: str, raw: Any, known: tuple[str, ...], problems: list[tuple[str, str, str]]) -> frozenset[str]:
    """A list of known codes; absent or empty: all."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        problems.append((where, "invalid", "must be a list of codes"))
        return frozenset()
    unknown = [v for v in raw if v not in known]
    if unknown:
        problems.append((where, "unknown_code", f"unknown {', '.join(map(repr, unknown))} (known: {', '.join(known)})"))
    return frozenset(raw)


def _quiet_hours(where: str, raw: Any, problems: list[tuple[str, str, str]]) -> QuietHours | None:
    if raw is None:
        return None
    start, _, end = raw.partition("-") if isinstance(raw, str) else ("", "", "")
    a, b = _CLOCK.match(start.strip()), _CLOCK.match(end.strip())
    if a is None or b is None or start.strip() == end.strip():
        problems.append((where, "invalid_hours", 'must be "HH:MM-HH:MM" in city time (e.g. "22:00-07:00")'))
        return None
    return QuietHours(time(int(a[1]), int(a[2])), time(int(b[1]), int(b[2])))
