"""A recording loopback proxy in front of the local registry that adds what Verdaccio lacks.

It records every request (method, path, status) and can inject the public registry's behaviour:
the two-factor challenge (header form, body form, web flow), the unpublish policy refusal, 429 with
Retry-After, 5xx, and a rewritten publish time. Tests use it to prove that a dry run writes nothing;
the rehearsal uses it for the "published long ago" scenario.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

READS = frozenset({"GET", "HEAD"})
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)
POLICY_MESSAGE = (
    "You can no longer unpublish this package. Failed criteria: "
    "has dependent packages in the registry; published more than 72 hours ago"
)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    status: int
    authorized: bool = False  # an authorization header came with it (never its value)
    credential: str = ""  # a short digest of the authorization header, to compare, never shown
    host: str = ""  # the Host header the client sent, lower-cased
    npm_headers: tuple[tuple[str, str], ...] = ()  # npm-command, npm-auth-type (never npm-otp)
    body: bytes = b""

    @property
    def write(self) -> bool:
        return self.method not in READS


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    # Network faults: "reset" closes the connection with no answer; "truncate" forwards, then
    # sends half the body of a full-length answer; "slow" waits `delay` seconds, then forwards;
    # "garbage" answers bytes that are not HTTP at all, then closes.
    fault: str = ""
    delay: float = 0.0


@dataclass
class Rule:
    """Answer requests that match `method` and `path` (a regex) with `reply`, `times` times."""

    method: str | None
    path: str
    reply: Callable[[Request], Reply | None]
    times: int | None = 1

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return (self.method is None or self.method == method) and bool(re.search(self.path, path))


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _json_reply(status: int, body: object, *headers: tuple[str, str]) -> Reply:
    return Reply(
        status, json.dumps(body).encode(), (("content-type", "application/json"), *headers)
    )


@dataclass
class _State:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    log: list[Recorded] = field(default_factory=list)
    time_overrides: dict[tuple[str, str], str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    prefix: str = ""
    stale_window: float = 0.0
    stale: dict[str, tuple[float, Reply]] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client gave up first (a timeout test): nothing went wrong here
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class RegistryProxy:
    """Start with `with RegistryProxy(upstream_url) as proxy:`; point clients at `proxy.url`."""

    def __init__(
        self, upstream: str, *, host: str = "127.0.0.1", port: int = 0, prefix: str = ""
    ) -> None:
        """`prefix` ("/npm") is a path the proxy serves the registry under (stripped upstream)."""
        self.state = _State(upstream=upstream.rstrip("/"), prefix=prefix.rstrip("/"))
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = _QuietServer((host, port), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host = str(self.server.server_address[0])
        return f"http://{host}:{self.port}{self.state.prefix}/"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> RegistryProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what it saw --

    @property
    def requests(self) -> list[Recorded]:
        with self.state.lock:
            return list(self.state.log)

    @property
    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.write]

    def clear(self) -> None:
        with self.state.lock:
            self.state.log.clear()

    # -- what it injects --

    def add(self, rule: Rule) -> Rule:
        with self.state.lock:
            self.state.rules.append(rule)
        return rule

    def reset_rules(self) -> None:
        with self.state.lock:
            self.state.rules.clear()
            self.state.time_overrides.clear()

    def require_otp(self, code: str, *, form: str = "header", times: int | None = None) -> Rule:
        """Writes without `npm-otp: code` get the public registry's 401 challenge."""

        def reply(request: Request) -> Reply | None:
            if request.headers.get("npm-otp") == code:
                return None
            if form == "header":
                return _json_reply(401, {"error": "otp required"}, ("www-authenticate", "OTP"))
            return _json_reply(
                401, {"error": "This operation requires a one-time password from your app."}
            )

        return self.add(Rule(None, r"", _writes_only(reply), times))

    def require_web_otp(self, token: str, *, pending_polls: int = 1) -> Rule:
        """Writes sent with `npm-auth-type: web` get the web flow's 401 (authUrl, doneUrl), others
        the classic code challenge; doneUrl says 202 a few times, then 200 with `token`, which the
        client must send back as `npm-otp`."""
        session = uuid.uuid4().hex
        polls = {"left": pending_polls}

        def done(_request: Request) -> Reply:
            if polls["left"] > 0:
                polls["left"] -= 1
                return _json_reply(202, {}, ("retry-after", "0"))
            return _json_reply(200, {"token": token})

        self.add(Rule("GET", rf"^/-/v1/done\?sessionId={session}$", done, None))

        def challenge(request: Request) -> Reply | None:
            if request.headers.get("npm-otp") == token:
                return None
            if request.headers.get("npm-auth-type") != "web":
                # The public registry offers the web flow only to clients that ask for it.
                return _json_reply(401, {"error": "otp required"}, ("www-authenticate", "OTP"))
            base = self.url.rstrip("/")
            body = {
                "authUrl": f"{base}/-/v1/auth/{session}",
                "doneUrl": f"{base}/-/v1/done?sessionId={session}",
            }
            return _json_reply(401, body, ("www-authenticate", "OTP"))

        return self.add(Rule(None, r"", _writes_only(challenge), None))

    def refuse_unpublish(self, message: str = POLICY_MESSAGE, status: int = 405) -> Rule:
        """Unpublish requests (anything to /-rev/) get the public registry's policy refusal."""
        return self.add(
            Rule(None, r"/-rev/", _writes_only(lambda _r: _json_reply(status, {"error": message})))
        )

    def fail(
        self,
        method: str | None,
        path: str,
        status: int = 503,
        *,
        times: int = 1,
        retry_after: str | None = None,
    ) -> Rule:
        headers = (("retry-after", retry_after),) if retry_after is not None else ()
        body = {"error": f"injected {status}"}
        return self.add(Rule(method, path, lambda _r: _json_reply(status, body, *headers), times))

    def fault(
        self,
        method: str | None,
        path: str,
        kind: str,
        *,
        times: int | None = 1,
        delay: float = 0.0,
    ) -> Rule:
        """A network fault (reset, truncate, slow, garbage) on matching requests; see Reply.
        `times=None`: every matching request, for as long as the rule stands."""
        if kind not in ("reset", "truncate", "slow", "garbage"):
            raise ValueError(f"unknown fault {kind!r}; accepted: reset, truncate, slow, garbage")
        return self.add(Rule(method, path, lambda _r: Reply(0, fault=kind, delay=delay), times))

    def serve_stale(self, seconds: float) -> None:
        """Answer document reads without `?write=true` from a copy up to `seconds` old, as the
        public registry's CDN does; `write=true` reads and every write go to the registry."""
        with self.state.lock:
            self.state.stale_window = seconds
            self.state.stale.clear()

    def set_time(self, name: str, version: str, iso: str) -> None:
        """Report `iso` as the publish time of `name@version` in every packument served."""
        with self.state.lock:
            self.state.time_overrides[(name, version)] = iso


def _record(request: Request, status: int) -> Recorded:
    auth = request.headers.get("authorization", "")
    digest = hashlib.sha256(auth.encode()).hexdigest()[:16] if auth else ""
    npm = tuple(
        sorted((k, v) for k, v in request.headers.items() if k in ("npm-command", "npm-auth-type"))
    )
    host = request.headers.get("host", "").lower()
    return Recorded(
        request.method, request.path, status, bool(auth), digest, host, npm, request.body
    )


def _writes_only(reply: Callable[[Request], Reply | None]) -> Callable[[Request], Reply | None]:
    def wrapped(request: Request) -> Reply | None:
        return None if request.method in READS else reply(request)

    return wrapped


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without NODELAY, Nagle and delayed ACKs add
        # 40 ms to every request on keep-alive connections.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the recording is the log; stderr noise would fail tests under filterwarnings

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_GET

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        injected = self._injected(request)
        fault = injected.fault if injected is not None else ""
        if fault == "slow":
            time.sleep(injected.delay if injected is not None else 0)
        if fault in ("reset", "garbage"):
            reply = Reply(0)
        elif injected is None or fault:
            reply = self._cached(request) or self._forward(request)
        else:
            reply = injected
        with self.state.lock:  # before the reply leaves: a client that got it can rely on the log
            self.state.log.append(_record(request, reply.status))
        if fault == "reset":
            self._reset()
        elif fault == "garbage":
            self.close_connection = True
            self.wfile.write(b"\x00\x17\xfe garbage, not HTTP \r\n\r\n")
            self.wfile.flush()
        elif fault == "truncate":
            self._send(reply, cut=True)
        else:
            self._send(reply)

    def _reset(self) -> None:
        """Close with a TCP reset and no answer, as a crashed server or a middlebox would."""
        self.close_connection = True
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.request.close()

    def _injected(self, request: Request) -> Reply | None:
        with self.state.lock:
            rules = [r for r in self.state.rules if r.matches(request.method, request.path)]
        for rule in rules:
            reply = rule.reply(request)
            if reply is not None:
                with self.state.lock:
                    if rule.times is not None:
                        rule.times -= 1
                return reply
        return None

    def _cached(self, request: Request) -> Reply | None:
        """A stale copy of a document read (see RegistryProxy.serve_stale), else None."""
        with self.state.lock:
            window = self.state.stale_window
            if not window or request.method != "GET":
                return None
            if "write=true" in request.path or "/-/" in request.path:
                return None
            kept = self.state.stale.get(request.path)
            if kept is not None and time.monotonic() - kept[0] < window:
                return kept[1]
        reply = self._forward(request)
        if reply.status == 200:
            with self.state.lock:
                self.state.stale[request.path] = (time.monotonic(), reply)
        return reply

    def _forward(self, request: Request) -> Reply:
        target = urlsplit(self.state.upstream)
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
        headers.pop("accept-encoding", None)  # identity bodies, so packuments can be rewritten
        path = request.path
        if self.state.prefix and path.startswith(self.state.prefix + "/"):
            path = path[len(self.state.prefix) :]
        try:
            conn.request(request.method, path, body=request.body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            pairs = tuple((k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP)
            return Reply(response.status, self._rewrite(request, data), pairs)
        finally:
            conn.close()

    def _rewrite(self, request: Request, data: bytes) -> bytes:
        if request.method != "GET" or not self.state.time_overrides or not data.startswith(b"{"):
            return data
        try:
            doc = json.loads(data)
        except ValueError:
            return data
        name = doc.get("name") if isinstance(doc, dict) else None
        changed = False
        for (pkg, version), iso in self.state.time_overrides.items():
            if pkg == name and version in (doc.get("time") or {}):
                doc["time"][version] = iso
                changed = True
        return json.dumps(doc).encode() if changed else data

    def _send(self, reply: Reply, *, cut: bool = False) -> None:
        self.send_response(reply.status)
        for key, value in reply.headers:
            if key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body[: len(reply.body) // 2] if cut else reply.body)
        if cut:
            self.wfile.flush()
            self.close_connection = True
