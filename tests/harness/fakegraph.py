"""A fake Microsoft identity platform and Microsoft Graph, over real HTTPS on loopback.

    fake = FakeMicrosoft(tmp, cert_pem=app_cert_pem)      # or client_secret="…"
    fake.start()                                          # https://127.0.0.1:PORT
    fake.directory.add_user(...)                          # Entra's users and groups
    fake.fail("/v1.0/users/delta", "too_many_requests")   # next matching call fails so
    ...
    fake.stop()

The token endpoint checks what Entra checks of a certificate credential: the client
assertion JWT's signature with the registered certificate's public key, its
``x5t#S256`` (or ``x5t``) thumbprint header, ``aud`` = the token endpoint, ``iss`` =
``sub`` = the client id, and its expiry. Graph checks the bearer token it issued and
the roles in it (403 Authorization_RequestDenied without them, as Graph does without
consent). Answers fill the documented shapes in tests/data/graph/docs-examples.json.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from harness.tlsca import TestCA, server_context

DATA = Path(__file__).resolve().parents[1] / "data" / "graph"
EXAMPLES: dict[str, Any] = json.loads((DATA / "docs-examples.json").read_text())
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
ALL_ROLES = ("User.Read.All", "GroupMember.Read.All")


def example(name: str) -> dict[str, Any]:
    return copy.deepcopy(EXAMPLES[name])


@dataclass
class Directory:
    """Entra's users and groups. Every change is appended to a log; a delta token is
    a position in it, so a delta answer holds what changed after that position."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> name, members
    photos: dict[str, bytes] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_user(self, uid: str, **props: Any) -> None:
        with self.lock:
            self.users[uid] = {"id": uid, "accountEnabled": True, **props}
            self.log.append(uid)

    def change(self, uid: str, **props: Any) -> None:
        with self.lock:
            self.users[uid].update(props)
            self.log.append(uid)

    def remove(self, uid: str) -> None:
        with self.lock:
            del self.users[uid]
            self.log.append(uid)

    def add_group(self, gid: str, name: str, members: list[str]) -> None:
        self.groups[gid] = {"displayName": name, "members": list(members)}

    def transitive_users(self, gid: str) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        todo = list(self.groups[gid]["members"])
        while todo:
            member = todo.pop(0)
            if member in seen:
                continue
            seen.add(member)
            if member in self.groups:
                todo += self.groups[member]["members"]
            elif member in self.users:
                out.append(member)
        return out


def sample_user(n: int, domain: str = "contoso.com", **extra: Any) -> dict[str, Any]:
    """A user shaped like the docs' Adele Vance, numbered."""
    base = example("users_delta_first_page")["body"]["value"][0]
    base.pop("preferredLanguage")
    name = f"User{n:05d}"
    base.update(
        displayName=f"{name} Vance", givenName=name, mail=f"{name.lower()}@{domain}",
        userPrincipalName=f"{name.lower()}@{domain}", department="Retail", companyName="Contoso",
        proxyAddresses=[f"SMTP:{name.lower()}@{domain}", f"smtp:{name.lower()}@sales.{domain}"],
        streetAddress="1 Microsoft Way", city="Redmond", state="WA", postalCode="98052",
        country="United States", faxNumber=None,
    )  # fmt: skip
    base.pop("id")
    base.update(extra)
    return base


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeMicrosoft:
    __test__ = False

    def __init__(
        self,
        workdir: Path,
        cert_pem: bytes | None = None,
        client_secret: str | None = None,
        roles: tuple[str, ...] = ALL_ROLES,
        page_size: int = 100,
    ) -> None:
        self.ca = TestCA(workdir / "ca", "Fake Microsoft CA")
        self.server_cert = self.ca.issue("127.0.0.1", dns=("localhost",), ips=("127.0.0.1",))
        self.cert = x509.load_pem_x509_certificate(cert_pem) if cert_pem else None
        self.client_secret = client_secret
        self.roles = roles
        self.page_size = page_size
        self.directory = Directory()
        self.expired_before = 0  # delta tokens below this log position get 410
        self.faults: list[list[Any]] = []  # [path prefix, example, times, let through first]
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.assertions: list[dict[str, Any]] = []  # decoded client assertions
        self.photo_requests = 0
        self._signing = secrets.token_bytes(32)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_file(self) -> Path:
        return self.ca.cert

    def start(self) -> FakeMicrosoft:
        fake = self

        class Handler(_Handler):
            owner = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx: ssl.SSLContext = server_context(self.server_cert)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._server = None

    def fail(
        self, prefix: str, name: str, times: int = 1, after: int = 0,
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """After ``after`` requests whose path starts with ``prefix`` went through, the
        next ``times`` get the example error ``name`` (its status, headers and body;
        ``headers`` replace the example's)."""
        self.faults.append([prefix, name, times, after, headers])

    def expire_delta_links(self) -> None:
        self.expired_before = len(self.directory.log) + 1

    def calls(self, prefix: str) -> int:
        return sum(1 for _, path in self.requests if path.startswith(prefix))

    # -- identity platform ------------------------------------------------------------------

    def token_endpoint(self) -> str:
        return f"{self.url}/{TENANT_ID}/oauth2/v2.0/token"

    def check_client(self, form: dict[str, str]) -> str:
        """ "" when the client authenticated, else the AADSTS error description."""
        if form.get("client_id") != CLIENT_ID:
            return f"AADSTS700016: Application with identifier '{form.get('client_id')}' was "
        if form.get("grant_type") != "client_credentials":
            return "AADSTS70003: unsupported grant type"
        if "client_secret" in form:
            ok = self.client_secret is not None and form["client_secret"] == self.client_secret
            return "" if ok else "AADSTS7000215: Invalid client secret provided."
        if self.cert is None:
            return "AADSTS7000216: 'client_assertion' or 'client_secret' is required"
        return self._check_assertion(form)

    def _check_assertion(self, form: dict[str, str]) -> str:
        assert self.cert is not None
        if form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return "AADSTS7000216: wrong client_assertion_type"
        assertion = form.get("client_assertion", "")
        header = jwt.get_unverified_header(assertion)
        sha256 = _b64url(self.cert.fingerprint(hashes.SHA256()))
        sha1 = _b64url(self.cert.fingerprint(hashes.SHA1()))
        # RFC 7515 base64url has no padding; msal pads it, and Entra accepts both.
        if str(header.get("x5t#S256", header.get("x5t"))).rstrip("=") not in (sha256, sha1):
            return "AADSTS700027: Client assertion contains an invalid thumbprint."
        try:
            claims = jwt.decode(
                assertion,
                self.cert.public_key(),  # type: ignore[arg-type]
                algorithms=["PS256", "RS256"],
                audience=self.token_endpoint(),
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
        except jwt.InvalidTokenError as exc:
            return f"AADSTS700027: Client assertion failed signature validation. ({exc})"
        if claims["iss"] != CLIENT_ID or claims["sub"] != CLIENT_ID:
            return "AADSTS700023: Client assertion issuer and subject must be the client id."
        self.assertions.append({"header": header, "claims": claims})
        return ""

    def issue_token(self, scope: str) -> dict[str, Any]:
        body = example("token_response")["body"]
        body["access_token"] = jwt.encode(
            {"aud": scope.removesuffix("/.default"), "tid": TENANT_ID, "appid": CLIENT_ID,
             "roles": list(self.roles), "exp": int(time.time()) + 3600},
            self._signing, algorithm="HS256",
        )  # fmt: skip
        return body

    def graph_roles(self, authorization: str) -> list[str] | None:
        """The roles of a token this fake issued; None when it is not one."""
        token = authorization.removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self._signing, algorithms=["HS256"], audience=self.url)
        except jwt.InvalidTokenError:
            return None
        return list(claims.get("roles", []))

    # -- Graph ------------------------------------------------------------------------------

    def delta(self, query: dict[str, str], prefer: str) -> tuple[int, dict[str, Any]]:
        size = self.page_size
        if "odata.maxpagesize=" in prefer:
            size = min(size, int(prefer.split("odata.maxpagesize=")[1].split(",", maxsplit=1)[0]))
        select = [s for s in query.get("$select", "").split(",") if s]
        if "$skiptoken" in query:
            kind, since, until, offset = query["$skiptoken"].split(".")
        elif "$deltatoken" in query:
            kind, since, until, offset = (
                "d",
                query["$deltatoken"],
                str(len(self.directory.log)),
                "0",
            )
            if int(since) < self.expired_before:
                return 410, example("sync_state_not_found")["body"]
        else:
            kind, since, until, offset = "f", "0", str(len(self.directory.log)), "0"
        items = self._delta_items(kind, int(since), int(until), select)
        start = int(offset)
        page = items[start : start + size]
        key = "users_delta_first_page" if start + size < len(items) else "users_delta_last_page"
        body = example(key)["body"]
        body["value"] = page
        base = f"{self.url}/v1.0/users/delta?"
        if start + size < len(items):
            token = f"{kind}.{since}.{until}.{start + size}"
            body["@odata.nextLink"] = base + urllib.parse.urlencode(
                {"$select": ",".join(select), "$skiptoken": token}, safe="$,"
            )
        else:
            body["@odata.deltaLink"] = base + f"$deltatoken={until}"
        return 200, body

    def _delta_items(self, kind: str, since: int, until: int, select: list[str]) -> list[Any]:
        d = self.directory
        with d.lock:
            ids = sorted(d.users) if kind == "f" else list(dict.fromkeys(d.log[since:until]))
            out: list[Any] = []
            for uid in ids:
                if uid not in d.users:
                    if kind == "d":
                        out.append({"id": uid, "@removed": {"reason": "deleted"}})
                    continue
                user = d.users[uid]
                out.append({k: user.get(k) for k in select} | {"id": uid} if select else user)
        return out


class _Handler(BaseHTTPRequestHandler):
    owner: FakeMicrosoft
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers["Content-Length"] = str(len(data))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, path: str) -> bool:
        fake = self.owner
        for n, (prefix, name, times, after, headers) in enumerate(fake.faults):
            if path.startswith(prefix):
                if after > 0:
                    fake.faults[n][3] -= 1
                    return False
                fake.faults[n][2] -= 1
                if times <= 1:
                    del fake.faults[n]
                ex = example(name)
                self._send(ex["status"], ex["body"], headers or ex.get("headers"))
                return True
        return False

    def do_POST(self) -> None:
        fake = self.owner
        fake.requests.append(("POST", self.path))
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        if self._fault(self.path):
            return
        if self.path != f"/{TENANT_ID}/oauth2/v2.0/token":
            self._send(404, {"error": "not_found"})
            return
        problem = fake.check_client(form)
        if problem:
            body = example("token_error")["body"]
            body["error_description"] = problem + "\r\nTrace ID: 00000000-0000-0000-0000-0"
            body["error_codes"] = [int(problem[6:].split(":")[0])]
            self._send(401, body)
            return
        self._send(200, fake.issue_token(form.get("scope", "")))

    def do_GET(self) -> None:
        fake = self.owner
        fake.requests.append(("GET", self.path))
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if self._fault(path):
            return
        if path == f"/{TENANT_ID}/v2.0/.well-known/openid-configuration":
            text = json.dumps(example("openid_configuration")["body"])
            text = text.replace("{authority}", fake.url).replace("{tenant}", TENANT_ID)
            self._send(200, json.loads(text))
            return
        if not path.startswith("/v1.0/"):
            self._send(404, example("not_found")["body"])
            return
        roles = fake.graph_roles(self.headers.get("Authorization", ""))
        if roles is None:
            ex = example("unauthorized")
            self._send(ex["status"], ex["body"])
            return
        need = "GroupMember.Read.All" if path.startswith("/v1.0/groups") else "User.Read.All"
        if need not in roles:
            ex = example("forbidden")
            self._send(ex["status"], ex["body"])
            return
        self._graph(path.removeprefix("/v1.0"), query)

    def _graph(self, path: str, query: dict[str, str]) -> None:
        fake = self.owner
        d = fake.directory
        if path == "/users/delta":
            status, body = fake.delta(query, self.headers.get("Prefer", ""))
            self._send(status, body, {"Location": f"{fake.url}/v1.0/users/delta"})
            return
        if path == "/groups" and "$filter" in query:
            name = query["$filter"].split(" eq ", 1)[1].strip("'").replace("''", "'")
            body = example("groups_by_name")["body"]
            body["value"] = [{"id": gid, "displayName": g["displayName"]}
                             for gid, g in d.groups.items()
                             if g["displayName"].lower() == name.lower()]  # fmt: skip
            self._send(200, body)
            return
        parts = path.strip("/").split("/")
        if parts[0] == "groups" and len(parts) >= 2 and parts[1] not in d.groups:
            self._send(404, example("not_found")["body"])
        elif parts[0] == "groups" and len(parts) == 2:
            self._send(200, {"id": parts[1], "displayName": d.groups[parts[1]]["displayName"]})
        elif parts[0] == "groups" and parts[2:] == ["transitiveMembers", "microsoft.graph.user"]:
            self._members(parts[1], query)
        elif parts[0] == "users" and len(parts) >= 4 and parts[2] == "photos":
            self._photo(parts[1], parts[3], parts[4:] == ["$value"])
        else:
            self._send(404, example("not_found")["body"])

    def _members(self, gid: str, query: dict[str, str]) -> None:
        fake = self.owner
        members = fake.directory.transitive_users(gid)
        start = int(query.get("$skiptoken", "0"))
        body = example("transitive_members")["body"]
        body["@odata.count"] = len(members)
        body["value"] = [{"@odata.type": "#microsoft.graph.user", "id": m}
                         for m in members[start : start + fake.page_size]]  # fmt: skip
        if start + fake.page_size < len(members):
            body["@odata.nextLink"] = (
                f"{fake.url}/v1.0/groups/{gid}/transitiveMembers/microsoft.graph.user"
                f"?$select=id&$count=true&$skiptoken={start + fake.page_size}"
            )
        self._send(200, body)

    def _photo(self, uid: str, size: str, value: bool) -> None:
        fake = self.owner
        data = fake.directory.photos.get(uid)
        if data is None:
            self._send(404, example("not_found")["body"])
            return
        etag = f'W/"{hashlib.sha256(data).hexdigest()}"'
        if value:
            fake.photo_requests += 1
            self._send(200, data, {"Content-Type": "image/jpeg", "ETag": etag})
            return
        body = example("photo_metadata")["body"]
        body["@odata.mediaEtag"] = etag
        body["id"] = size
        self._send(200, body)
