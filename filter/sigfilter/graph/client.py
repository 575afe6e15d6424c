"""A small Microsoft Graph client over ``requests``: GET with paging and good manners.

Being a good Graph client (learn.microsoft.com/graph/throttling): 429, 503 and 504 are
retried after the ``Retry-After`` the service sent (a bounded number of times, each wait
capped); 401 and 403 are not retried and become an error that names the permission the
call needs and the roles the token carried; 410 and ``syncStateNotFound`` mean a delta
link has aged out. Sleep and clock are injected so tests do not wait.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from ..defaults import GRAPH_MAX_RETRIES, GRAPH_RETRY_DEFAULT, GRAPH_RETRY_MAX, GRAPH_TIMEOUT

RETRY_STATUSES = frozenset({429, 503, 504})
# Error codes Graph uses when a delta token is no longer valid (delta-query-overview.md).
EXPIRED_CODES = frozenset({"syncStateNotFound", "resyncRequired", "syncStateInvalid"})


class GraphError(Exception):
    """A Graph call failed; the message says which call and why."""

    reason = "graph-error"  # the metrics label of the failure


class GraphUnavailable(GraphError):
    """Network errors or throttling that outlasted the retries."""

    reason = "unavailable"


class GraphDenied(GraphError):
    """Sign-in refused (401, token endpoint) or a permission missing (403)."""

    reason = "denied"


class SyncStateExpired(GraphError):
    """The delta link is too old (410 Gone or syncStateNotFound): start a full sync."""

    reason = "expired"


def permission_for(path: str) -> str:
    """The application permission a Graph path needs (least privileged, read-only)."""
    if "/photo" in path:
        return "User.Read.All (ProfilePhoto.Read.All is enough for photos)"
    if path.startswith("/groups"):
        return "GroupMember.Read.All"
    return "User.Read.All"


def token_roles(token: str) -> list[str]:
    """The application permissions (``roles``) in an access token; [] when unreadable.
    Read for the error message only: Graph, not us, verifies the token."""
    try:
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return []
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return [str(r) for r in roles] if isinstance(roles, list) else []


def _error_of(response: requests.Response) -> tuple[str, str]:
    """(code, message) of Graph's JSON error body {"error": {"code", "message"}}."""
    try:
        err = response.json().get("error", {})
    except (ValueError, AttributeError):
        return "", response.text[:200].strip()
    if not isinstance(err, dict):
        return "", ""
    return str(err.get("code", "")), str(err.get("message", ""))


@dataclass
class GraphClient:
    """GETs against ``base_url`` (``https://graph.microsoft.com``); ``token`` returns a
    bearer token (msal caches it); paths are relative to ``/v1.0``."""

    base_url: str
    token: Callable[[], str]
    session: requests.Session = field(default_factory=requests.Session)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    retries: int = GRAPH_MAX_RETRIES
    timeout: float = GRAPH_TIMEOUT
    requests_made: int = 0
    waited: float = 0.0  # seconds spent waiting on Retry-After

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.base_url}/v1.0{path}"

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = self.get(path, headers)
        try:
            doc = response.json()
        except ValueError as exc:
            raise GraphError(f"GET {self._short(path)}: the answer is not JSON") from exc
        if not isinstance(doc, dict):
            raise GraphError(f"GET {self._short(path)}: the answer is not a JSON object")
        return doc

    def get_capped(self, path: str, cap: int) -> bytes | None:
        """The body of GET ``path``, or None when it is larger than ``cap`` bytes (read
        no further than that: a photo may be megabytes)."""
        response = self.get(path, stream=True)
        data = b""
        try:
            for chunk in response.iter_content(64 * 1024):
                data += chunk
                if len(data) > cap:
                    return None
        except requests.RequestException as exc:
            raise GraphUnavailable(f"GET {self._short(path)}: {exc}") from exc
        finally:
            response.close()
        return data

    def pages(self, path: str, headers: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Each page of a collection, following ``@odata.nextLink`` verbatim."""
        url: str | None = path
        for _ in range(1_000_000):  # bounded: 999 users a page is a billion users
            if not url:
                return
            page = self.get_json(url, headers)
            if not isinstance(page.get("value"), list):
                raise GraphError(f"GET {self._short(url)}: no 'value' array in the answer")
            yield page
            link = page.get("@odata.nextLink")
            url = link if isinstance(link, str) else None

    def get(
        self,
        path: str,
        headers: dict[str, str] | None = None,
        ok: frozenset[int] = frozenset(),
        stream: bool = False,
    ) -> requests.Response:
        """The response to GET ``path`` (2xx, or a status in ``ok``), retried as needed."""
        url = self.url(path)
        for attempt in range(self.retries + 1):
            token = self.token()
            try:
                self.requests_made += 1
                response = self.session.get(
                    url,
                    headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                    timeout=self.timeout,
                    stream=stream,
                )
            except requests.RequestException as exc:
                if attempt == self.retries:
                    raise GraphUnavailable(f"GET {self._short(path)}: {exc}") from exc
                self._wait(min(2.0**attempt, GRAPH_RETRY_MAX))
                continue
            if response.status_code < 300 or response.status_code in ok:
                return response
            if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                raise self._failure(path, response, token)
            self._wait(self._retry_after(response))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _wait(self, seconds: float) -> None:
        self.waited += seconds
        self.sleep(seconds)

    def _retry_after(self, response: requests.Response) -> float:
        value = response.headers.get("Retry-After", "").strip()
        if value.isdigit():
            return min(float(value), GRAPH_RETRY_MAX)
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return GRAPH_RETRY_DEFAULT
        return min(max(when - self.clock(), 0.0), GRAPH_RETRY_MAX)

    def _short(self, path: str) -> str:
        url = self.url(path)
        return url.removeprefix(f"{self.base_url}/v1.0").split("?")[0]

    def _failure(self, path: str, response: requests.Response, token: str) -> GraphError:
        status = response.status_code
        code, message = _error_of(response)
        what = f"GET {self._short(path)}: {status} {code or response.reason}"
        what += f" ({message})" if message else ""
        if status == 410 or code in EXPIRED_CODES:
            return SyncStateExpired(what)
        if status == 403:
            roles = ", ".join(token_roles(token)) or "none"
            return GraphDenied(
                f"{what}. The app registration needs the application permission "
                f"{permission_for(self._short(path))} with admin consent (Entra admin center > "
                f"App registrations > the app > API permissions > Grant admin consent); "
                f"the token carried these permissions: {roles}"
            )
        if status == 401:
            return GraphDenied(
                f"{what}. Graph refused the token: check that tenant_id, authority and "
                f"graph_url name the same cloud ({self.base_url})"
            )
        if status in RETRY_STATUSES:
            return GraphUnavailable(f"{what}; still throttled after {self.retries} retries")
        return GraphError(what)
