"""Finding a Manager on the local network by zeroconf (mDNS / DNS-SD), as ``cp-worker --discover``.

A Manager started with ``announce=True`` publishes ``<name>._chimerapy._tcp.local.`` with its
port and its certificate's fingerprint. An announcement is only a hint: anyone on the network can
announce anything, so a Worker that follows one still pins the fingerprint it was given and
runs the token proof (:mod:`chimerapy.net.handshake`) before it trusts the Manager. Needs the
optional ``zeroconf`` package (``pip install chimerapy-core[discovery]``).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import ChimeraPyError

__all__ = ["SERVICE", "Announcement", "DiscoveryUnavailable", "FoundManager", "announce", "announce_manager",
           "find_manager"]

log = logging.getLogger(__name__)

SERVICE = "_chimerapy._tcp.local."


class DiscoveryUnavailable(ChimeraPyError, RuntimeError):
    """Zeroconf discovery needs the optional ``zeroconf`` package."""


@dataclass(frozen=True)
class FoundManager:
    """A Manager that announced itself: where it says it is and the fingerprint it claims."""

    host: str
    port: int
    fingerprint: str
    name: str


def _zeroconf() -> Any:
    try:
        import zeroconf
    except ImportError:
        raise DiscoveryUnavailable("discovery needs the zeroconf package: pip install 'chimerapy-core[discovery]'") \
            from None
    return zeroconf


class Announcement:
    """A Manager's live announcement; :meth:`close` withdraws it."""

    def __init__(self, zc: Any, info: Any) -> None:
        self._zc, self._info = zc, info

    def close(self) -> None:
        """Withdraw the announcement and close its sockets."""
        try:
            self._zc.unregister_service(self._info)
        finally:
            self._zc.close()


def announce(*, name: str, addresses: list[str], port: int, fingerprint: str,
             interfaces: list[str] | None = None) -> Announcement:
    """Announce a Manager at ``addresses:port`` with ``fingerprint``.

    Args:
        name: the instance name (unique on the network, e.g. host name and port).
        addresses: the IPv4/IPv6 addresses Workers should use.
        port: the Manager's port.
        fingerprint: its certificate's fingerprint (``sha256:...``).
        interfaces: the interface addresses to announce on (default: all).
    """
    zeroconf = _zeroconf()
    info = zeroconf.ServiceInfo(
        SERVICE, f"{name}.{SERVICE}", port=port,
        addresses=[ipaddress.ip_address(a).packed for a in addresses],
        properties={"fingerprint": fingerprint, "version": "1"},
        server=f"{socket.gethostname()}.local.",
    )
    zc = zeroconf.Zeroconf(interfaces=interfaces or zeroconf.InterfaceChoice.All)
    zc.register_service(info, allow_name_change=True)
    return Announcement(zc, info)


def announce_manager(host: str, port: int, fingerprint: str) -> Announcement:
    """Announce the Manager listening on ``host:port`` (every IPv4 address but loopback for ``0.0.0.0``)."""
    if host in ("0.0.0.0", "::", ""):
        import psutil  # type: ignore[import-untyped]

        addresses = [a.address for entries in psutil.net_if_addrs().values() for a in entries
                     if a.family == socket.AF_INET and not a.address.startswith("127.")]
        interfaces = None
    else:
        addresses = interfaces = [host]
    return announce(name=f"chimerapy-{socket.gethostname()}-{port}", addresses=addresses or [host], port=port,
                    fingerprint=fingerprint, interfaces=interfaces)


def find_manager(*, fingerprint: str | None, timeout: float, interfaces: list[str] | None = None) -> FoundManager | None:
    """The first Manager announced within ``timeout`` seconds (with ``fingerprint``, when given)."""
    zeroconf = _zeroconf()
    found: list[FoundManager] = []
    arrived = threading.Event()
    zc = zeroconf.Zeroconf(interfaces=interfaces or zeroconf.InterfaceChoice.All)

    def on_change(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        if state_change is not state_change.__class__.Added:
            return
        info = zc.get_service_info(service_type, name, timeout=2000)
        if info is None:
            return
        claimed = (info.properties or {}).get(b"fingerprint", b"").decode(errors="replace")
        if fingerprint is not None and claimed != fingerprint:
            log.info("ignoring a Manager announced as %s: its fingerprint %s is not the pinned one", name, claimed)
            return
        for address in info.parsed_addresses():
            found.append(FoundManager(address, int(info.port), claimed, name))
            arrived.set()
            return

    browser = zeroconf.ServiceBrowser(zc, SERVICE, handlers=[on_change])
    try:
        deadline = time.monotonic() + timeout
        arrived.wait(max(0.0, deadline - time.monotonic()))
    finally:
        browser.cancel()
        zc.close()
    return found[0] if found else None
