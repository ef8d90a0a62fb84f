"""Signing in to the console as a browser does: the form's token first, then the form."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

FORM = {"content-type": "application/x-www-form-urlencoded"}


def csrf_of(html: str) -> str:
    """The token a page's form carries (api/console/forms.py)."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no form token in the page"
    return found.group(1)


def post_sign_in(client: TestClient, token: str, target: str = "/console", **headers: str) -> httpx.Response:
    """Open the sign-in page (its cookie and token), then send the form as the page would."""
    csrf = csrf_of(client.get("/console/login").text)
    return client.post("/console/login", data={"token": token, "next": target, "csrf": csrf},
                       headers=headers, follow_redirects=False)


def sign_in(client: TestClient, token: str = "dev-supervisor") -> None:
    answer = post_sign_in(client, token, "/console/alerts")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/alerts"


def sign_out(client: TestClient) -> httpx.Response:
    """Send the sign-out form of a page (its token is this session's)."""
    csrf = csrf_of(client.get("/console/rejections").text)
    return client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
