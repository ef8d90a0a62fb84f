"""The ports the development services and the test and bench servers listen on."""

from __future__ import annotations

import socket

from tools.common import _ephemeral_ports, free_port


def test_picked_ports_are_free_and_never_ones_the_kernel_hands_to_outgoing_connections() -> None:
    # A server restarted by a test found its port taken by some client's connection (CI, stop 16):
    # a port from the ephemeral range can be any outgoing connection's local port meanwhile.
    ephemeral = _ephemeral_ports()
    picked = {free_port() for _ in range(200)}
    assert len(picked) > 150  # spread, not one port handed out again and again
    assert not picked & set(ephemeral)
    with socket.create_server(("127.0.0.1", 0)) as listening:
        clients = [socket.create_connection(listening.getsockname()) for _ in range(50)]
        try:
            assert all(c.getsockname()[1] in ephemeral for c in clients)  # where the kernel puts clients
        finally:
            for client in clients:
                client.close()
    for port in list(picked)[:20]:
        with socket.create_server(("127.0.0.1", port)):
            pass  # each one can be listened on
