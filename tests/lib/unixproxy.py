"""A proxy on a unix stream socket, for tests that put a fault between two
processes (a slow link, lost answers): each client connection gets its own
connection to the upstream socket. What the client sends goes up as it is;
what upstream answers goes through downward(), which a subclass overrides
to delay, drop or count it. close() stops accepting new connections."""
import socket
import threading


def shut(*socks):
    """Shut down, then close: a close alone leaves a connection open while
    another thread still waits in recv on it."""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


class UnixProxy:
    def __init__(self, path, upstream, backlog=8):
        self.upstream = upstream
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(backlog)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return  # close()
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                up.connect(self.upstream)
            except OSError:
                shut(client, up)
                continue
            threading.Thread(target=self._up, args=(client, up), daemon=True).start()
            threading.Thread(target=self._down, args=(client, up), daemon=True).start()

    def _up(self, client, up):
        try:
            self.upward(client, up)
            up.shutdown(socket.SHUT_WR)  # the client's end of request, passed on
        except OSError:
            shut(client, up)

    def _down(self, client, up):
        try:
            self.downward(client, up)
        except (OSError, EOFError):
            pass
        finally:
            shut(client, up)  # upstream's answers are over: so is the pair

    @staticmethod
    def copy(src, dst):
        """Bytes from @src to @dst until @src ends."""
        while True:
            b = src.recv(1 << 20)
            if not b:
                return
            dst.sendall(b)

    def upward(self, client, up):
        """The client's bytes to upstream: as they are."""
        self.copy(client, up)

    def downward(self, client, up):
        """Upstream's bytes to the client: as they are, unless overridden."""
        self.copy(up, client)

    def close(self):
        try:
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        self.srv.close()
