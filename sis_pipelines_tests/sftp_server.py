"""A real SFTP server on loopback (asyncssh), serving a folder, for the CSV-drop tests."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import asyncssh


class SftpServer:
    def __init__(
        self,
        root: Path,
        username: str,
        password: str | None = None,
        authorized_key: str | None = None,
    ):
        self.root = root
        self.username = username
        self.password = password
        self.authorized_key = authorized_key
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key_line = (
            self.host_key.export_public_key("openssh").decode().split()[0]
            + " "
            + self.host_key.export_public_key("openssh").decode().split()[1]
        )
        self.logins: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0

    def __enter__(self) -> SftpServer:
        threading.Thread(target=self._run, daemon=True).start()
        assert self._ready.wait(10), "the SFTP server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self

        class Auth(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                if server.authorized_key and username == server.username:
                    self._conn.set_authorized_keys(
                        asyncssh.import_authorized_keys(server.authorized_key)
                    )  # type: ignore[attr-defined]
                return True

            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self._conn = conn

            def password_auth_supported(self) -> bool:
                return server.password is not None

            def validate_password(self, username: str, password: str) -> bool:
                ok = username == server.username and password == server.password
                if ok:
                    server.logins.append(username)
                return ok

            def public_key_auth_supported(self) -> bool:
                return server.authorized_key is not None

        async def start() -> None:
            self._server = await asyncssh.listen(
                "127.0.0.1",
                0,
                server_host_keys=[self.host_key],
                server_factory=Auth,
                sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(self.root)),
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()
