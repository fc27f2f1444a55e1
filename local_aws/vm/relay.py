"""One guest connection to 169.254.169.254:80, relayed to the fake IMDS on the host's loopback.

QEMU's ``guestfwd=...-cmd:`` starts this once per connection, the connection on stdin/stdout.
Run as a script (no package imports): it starts for every IMDS request the guest makes.
Usage: ``relay.py PORT``; only ever 127.0.0.1.
"""

import os
import selectors
import socket
import sys


def relay(port: int) -> None:
    upstream = socket.create_connection(("127.0.0.1", port), timeout=30)
    upstream.settimeout(None)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, "guest")
    selector.register(upstream, selectors.EVENT_READ, "host")
    open_sides = 2
    while open_sides:
        for key, _ in selector.select():
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
    relay(int(sys.argv[1]))
