"""Rejection codes: every way a portal message can be refused, each machine-readable.

A rejection says *why* as a text code and its parameters (`domain.texts.Detail`), never as a
sentence: `Rejection("quota_exceeded.remaining", amount=..., ...)`. The text code's first part is the
rejection code; the catalogue (`infra.catalogue.said`) words it in English, for the stored `reason`,
and in Chinese, for the console and the exports.
"""

from __future__ import annotations

from typing import Any, Final

from domain.texts import Detail

REJECTION_CODES: Final[dict[str, str]] = {
    "invalid": "the envelope or its payload does not fit the contract",
    "unknown_type": "the message type is not in the contract",
    "unknown_project": "no project is registered under that code",
    "already_registered": "a project is already registered under that code",
    "not_admitted": "the project is in no reserve library, so it may receive no factor",
    "not_in_annual_plan": "land needs the annual library or a recorded exception",
    "not_in_library": "funds from a source with a library of its own, or a pitch to investors, need that library",
    "quota_exceeded": "the grant does not fit the district's remaining yearly quota",
    "credit_exceeded": "the advance does not fit what remains of the reduction",
    "bond_not_eligible": "special bonds need revenue and passed financial and legal evaluations",
    "stage_order": "stages and milestones only move forward, one step at a time",
    "closed_project": "a completed or cancelled project takes no more factors",
    "forbidden": "the sending department may not send this type (or not as that department)",
    "conflict": "the message_id was already used for a different body",
    "unknown_reference": "the message names a reduction, grant, issue or exception that does not exist",
    "invalid_state": "the message does not apply to the current state (already done, not a member)",
    "not_alerted": "a supervision case is assigned only for an alert the project has on that day (v1.2)",
    "not_cleared": "a supervision case is closed as rectified or reclaimed only once that is so (v1.2)",
}


class Rejection(Exception):
    """A rule refused a message. Raised by the domain, answered as `rejected` with `code` (the text
    code's first part) and what it says, `detail`: the text code (`invalid.field_missing`) and its
    language-neutral parameters (field paths, codes, numbers, ISO dates)."""

    def __init__(self, text: str, /, **params: Any) -> None:
        code = text.partition(".")[0]
        if code not in REJECTION_CODES or "." not in text:
            raise ValueError(f"{text!r} is not a rejection's text code (<rejection code>.<what>)")
        super().__init__(text, params)
        self.code = code
        self.detail = Detail(text, params)
