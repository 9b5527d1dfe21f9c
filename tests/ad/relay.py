"""A TCP relay in front of a test DC's LDAPS port, for the faults a live read must survive or
fail cleanly on: a connection cut after so many bytes from the DC (once, or every time), a DC
killed or restarted at that moment (a hook), or a DC that stops answering (a stall). It listens
on 127.0.0.1, which the DC's certificate does not name; `localhost` (which it names) reaches
it."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from tests.ad.samba_dc import DcInfo


class Relay:
    def __init__(self, dc: DcInfo) -> None:
        self.target = (dc.host, dc.ldaps_port)
        self.limit: int | None = None  # bytes from the DC per connection before the fault
        self.faults_left = 0  # connections still to fault (then the relay passes everything)
        self.stall = False  # at the limit, hold the connection open and silent instead of cutting
        self.on_fault: Callable[[], None] | None = None
        self.connections = 0
        self.from_dc = 0  # bytes the DC sent on the last connection that ended
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"ldaps://localhost:{self.port}"
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def fault(
        self,
        after: int,
        *,
        times: int = 1,
        stall: bool = False,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Fault the next `times` connections once `after` bytes came from the DC."""
        self.limit, self.faults_left, self.stall, self.on_fault = after, times, stall, then

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:  # the DC is down: the client sees its connection closed
                client.close()
                continue
            with self.lock:
                self.connections += 1
                faulty = self.faults_left > 0
                if faulty:
                    self.faults_left -= 1
            limit = self.limit if faulty else None
            to_dc = (client, upstream, None, False)
            threading.Thread(target=self.pump, args=to_dc, daemon=True).start()
            from_dc = (upstream, client, limit, True)
            threading.Thread(target=self.pump, args=from_dc, daemon=True).start()

    def pump(
        self, source: socket.socket, sink: socket.socket, limit: int | None, from_dc: bool
    ) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: limit - sent])
                    if self.on_fault is not None:
                        self.on_fault()
                    if self.stall:
                        threading.Event().wait(3600)  # silent until the process ends
                    break
                sink.sendall(data)
                sent += len(data)
        if from_dc:
            self.from_dc = sent
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()
