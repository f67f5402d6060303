"""The HTTP face of a simulated OneRoster provider: token endpoint, rostering, gradebook."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from .faults import Fault
from .sis_gradebook import imsx_status

if TYPE_CHECKING:
    from .server import SimulatorServer


def imsx(major: str, minor: str, description: str) -> bytes:
    return imsx_status(major, minor, description)


def handler_for(sim: SimulatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one segment per answer: no 40 ms delayed-ACK stalls

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(
            self,
            status: int,
            body: bytes,
            headers: dict[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _fault(self, fault: Fault) -> bool:
            if fault.kind == "delay":
                time.sleep(fault.delay_s)
                return False
            if fault.kind == "drop":
                self.close_connection = True
                self.connection.close()
                return True
            if fault.kind == "truncate":
                body = b'{"users": [{"sourcedId": "x", "giv'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) + 100))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
                self.connection.close()
                return True
            if fault.kind == "echo":
                headers = dict(self.headers.items())
                said = headers.get("Authorization", "")
                body = orjson.dumps(
                    {"error_description": f"token {said} is not valid", "request_headers": headers}
                )
                self._send(fault.status, body, fault.headers)
                return True
            if fault.kind == "trickle":
                body = fault.body or b'{"users": []}'
                self.send_response(200)
                self.send_header("Content-Type", fault.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(len(body)):
                    try:
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                    except OSError:
                        break  # the client gave up
                    time.sleep(fault.delay_s)
                return True
            self._send(fault.status, fault.body, fault.headers, fault.content_type)
            return True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            sim.requests.append(("POST", self.path))
            fault = sim.fault_script.take(self.path)
            if fault is not None and self._fault(fault):
                return
            if urlsplit(self.path).path != "/oauth/token":
                self._send(404, imsx("failure", "unknownobject", "not found"))
                return
            status, body = sim.auth.issue_token(
                self.headers.get("Authorization", ""), parse_qs(raw)
            )
            self._send(status, body)

        def _gate(self, method: str) -> bool:
            """Record the request, play a scripted fault, check its credentials."""
            sim.requests.append((method, self.path))
            sim.auth_headers.append(self.headers.get("Authorization", ""))
            fault = sim.fault_script.take(self.path)
            if fault is not None and self._fault(fault):
                return False
            url = f"http://{self.headers.get('Host', f'127.0.0.1:{sim.port}')}{self.path}"
            reason = sim.auth.authorised(
                method, url, {k.lower(): v for k, v in self.headers.items()}
            )
            if reason:
                self._send(
                    401,
                    imsx(
                        "failure",
                        "unauthorisedrequest",
                        f"{sim.profile.name.title()} SIS: {reason}",
                    ),
                )
                return False
            return True

        def do_GET(self) -> None:
            if not self._gate("GET"):
                return
            split = urlsplit(self.path)
            parts = sim.gradebook_parts(split.path)
            if parts is not None and sim.gradebook is not None:
                if not self._vendor_authorised():
                    return
                status, headers, body = sim.gradebook.get(parts, parse_qs(split.query))
            else:
                status, headers, body = sim.rostering(split.path, parse_qs(split.query))
            self._send(status, body, headers)

        def _vendor_authorised(self) -> bool:
            assert sim.gradebook is not None
            if sim.gradebook.authorised({k.lower(): v for k, v in self.headers.items()}):
                return True
            self._send(
                401,
                imsx(
                    "failure",
                    "unauthorisedrequest",
                    f"{sim.profile.name.title()} SIS: gradebook calls need x-vendor-authorization",
                ),
            )
            return False

        def _gradebook_write(self, method: str) -> list[str] | None:
            """The gradebook route a PUT or DELETE may write to, or None (answered already)."""
            if not self._gate(method):
                return None
            parts = sim.gradebook_parts(urlsplit(self.path).path)
            if parts is None or sim.gradebook is None:
                self._send(404, imsx("failure", "unknownobject", "not found"))
                return None
            return parts if self._vendor_authorised() else None

        def do_PUT(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self._gradebook_write("PUT")
            if parts is None:
                return
            assert sim.gradebook is not None
            status, body = sim.gradebook.put(parts, raw)
            self._send(status, body)

        def do_DELETE(self) -> None:
            parts = self._gradebook_write("DELETE")
            if parts is None:
                return
            assert sim.gradebook is not None
            if not sim.profile.gradebook_deletes:
                self._send(
                    405,
                    imsx(
                        "unsupported",
                        "unsupported",
                        f"{sim.profile.name.title()} SIS: DELETE is not supported; PUT the record with status tobedeleted",
                    ),
                )
                return
            status, body = sim.gradebook.delete(parts)
            self._send(status, body)

    return Handler
