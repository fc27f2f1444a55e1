"""One guest connection to 169.254.169.254:80, relayed to the fake IMDS on the host's loopback.

QEMU's ``guestfwd=...-cmd:`` starts this once per connection, the connection on stdin/stdout.
Run as a script (no package imports): it starts for every IMDS request the guest makes.
Usage: ``relay.py PORT [IDLE_SECONDS]``; only ever 127.0.0.1.
"""

import os
import selectors
import socket
import sys

# An IMDS answer takes milliseconds; a relay that hears nothing for this long has lost one side
# (QEMU gone, the fake IMDS stopped) without a close reaching it, and exits rather than linger.
IDLE_SECONDS = 60


def relay(port: int, idle_seconds: float = IDLE_SECONDS) -> None:
    upstream = socket.create_connection(("127.0.0.1", port), timeout=30)
    upstream.settimeout(None)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, "guest")
    selector.register(upstream, selectors.EVENT_READ, "host")
    open_sides = 2
    while open_sides:
        ready = selector.select(timeout=idle_seconds)
        if not ready:
            break
        for key, _ in ready:
            if key.data == "guest":
                data = os.read(0, 65536)
                if not data:
                    selector.unregister(0)
                    upstream.shutdown(socket.SHUT_WR)
                    open_sides -= 1
                else:
                    upstream.sendall(data)
            else:
                data = upstream.recv(65536)
                if not data:
                    selector.unregister(upstream)
                    open_sides = 0  # the server answered and closed: done
                else:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(1, view) :]
    upstream.close()


if __name__ == "__main__":
    relay(int(sys.argv[1]), *(float(arg) for arg in sys.argv[2:3]))
