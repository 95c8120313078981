"""`evaluate --address`: the head node of an existing Ray cluster, checked before Ray starts.

`ray.init` given an address where no Ray head answers does not fail: it retries for minutes and
prints C++ warnings meanwhile. So the address is parsed here (a host and a port, not a Ray Client
`ray://` address), and whatever listens there must answer as Ray's head does: Ray's head node
(its GCS) is a gRPC server, and a gRPC server answers HTTP/2's opening with a SETTINGS frame. An
HTTP/1 server, a port that accepts and stays silent or a closed port are refused in one line.
"""

from __future__ import annotations

import socket

from neuro_deploy.errors import NeuroDeployError

#: seconds to connect, and again to hear the answer (a head node answers in milliseconds)
TIMEOUT = 3.0
#: HTTP/2's client connection preface (RFC 9113 section 3.4) and an empty SETTINGS frame
#: (9-byte header: 24-bit length 0, type 0x4, flags 0, stream 0)
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS_FRAME = 4
HEAD_NODE = "give the head node's address as HOST:PORT (port 6379 unless `ray start --head --port` chose another)"


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of `--address`; anything else is refused in one line."""
    if "://" in address:
        scheme = address.split("://", 1)[0]
        if scheme == "ray":
            raise NeuroDeployError(f"--address {address}: ray:// is a Ray Client address (client mode), which "
                                   f"evaluate does not use; it connects as a driver: {HEAD_NODE}")
        raise NeuroDeployError(f"--address {address[:80]}: expected HOST:PORT, not a {scheme[:20]}:// URL; {HEAD_NODE}")
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 address in brackets
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise NeuroDeployError(f"--address {address[:80]!r}: expected HOST:PORT of a Ray cluster's head node")
    check_host_name(host)
    return host, int(port)


def check_host_name(host: str) -> None:
    """Refuse a name DNS cannot hold (over 253 characters, or a label over 63): the socket layer
    would fail with an encoder's error that does not say what is wrong."""
    if ":" in host:  # IPv6
        return
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or any(not 0 < len(label) <= 63 for label in labels):
        raise NeuroDeployError(f"--address: the host name {host[:40]}... ({len(host)} characters) is not a valid "
                               "host name (at most 253 characters, 63 between dots)")


def check_reachable(address: str, timeout: float = TIMEOUT) -> None:
    """Refuse an address where no Ray head node answers, within about `2 * timeout` seconds."""
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(HTTP2_PREFACE)
            answer = _read(conn, 9)
    except UnicodeError as exc:  # a name the IDNA codec refuses
        raise NeuroDeployError(f"--address {address[:80]}: not a valid host name ({exc})") from None
    except socket.timeout:
        raise NeuroDeployError(f"--address {address}: something accepts connections there but did not answer "
                               f"within {timeout:g} s, so it is not a Ray head node; {HEAD_NODE}") from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise NeuroDeployError(f"--address {address}: no Ray cluster reachable there ({reason})") from None
    if len(answer) < 9 or answer[3] != SETTINGS_FRAME:
        heard = answer.split(b"\r\n", 1)[0].decode("ascii", "replace")
        what = f"it answered {heard!r}" if heard.strip() else "it closed the connection"
        raise NeuroDeployError(f"--address {address}: not a Ray head node ({what}, not gRPC); {HEAD_NODE}")


def _read(conn: socket.socket, size: int) -> bytes:
    """Up to `size` bytes: fewer when the peer closes the connection first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
