"""Test hosts in Linux network namespaces: each joined to the root namespace by a veth pair and
routed through it, so traffic between them really crosses an IP network."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import uuid
from dataclasses import dataclass


@dataclass
class Host:
    name: str  # the namespace
    address: str  # its IP
    gateway: str  # the root namespace's IP on its link
    link: str  # the root-side veth, to cut the cable with `ip link set <link> down`

    def command(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def available() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2 (apt-get install iproute2)"
    probe = f"cpprobe{uuid.uuid4().hex[:6]}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode != 0:
        return f"ip netns is not permitted here: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _free_block() -> int:
    """A second octet B whose 10.B.0.0/16 no interface uses: test runs side by side never share links."""
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, timeout=30).stdout
    for _ in range(200):
        block = random.randint(64, 254)
        if f" 10.{block}." not in used:
            return block
    raise RuntimeError("no free 10.B.0.0/16 block for test hosts")


class Hosts:
    """Creates ``count`` hosts on 10.B.<n>.0/24 links (B unused so far); :meth:`close` removes them."""

    def __init__(self, count: int) -> None:
        tag = uuid.uuid4().hex[:4]
        block = _free_block()
        self.hosts: list[Host] = []
        self._forwarding = open("/proc/sys/net/ipv4/ip_forward").read().strip()
        try:
            for index in range(1, count + 1):
                name, link = f"cp{tag}{index}", f"cp{tag}{index}r"
                host = Host(name, f"10.{block}.{index}.2", f"10.{block}.{index}.1", link)
                _ip("netns", "add", name)
                self.hosts.append(host)
                _ip("link", "add", link, "type", "veth", "peer", "name", f"cp{tag}{index}n")
                _ip("link", "set", f"cp{tag}{index}n", "netns", name)
                _ip("addr", "add", f"{host.gateway}/24", "dev", link)
                _ip("link", "set", link, "up")
                for args in (("addr", "add", f"{host.address}/24", "dev", f"cp{tag}{index}n"),
                             ("link", "set", f"cp{tag}{index}n", "up"), ("link", "set", "lo", "up"),
                             ("route", "add", "default", "via", host.gateway)):
                    _ip("netns", "exec", name, "ip", *args)
            with open("/proc/sys/net/ipv4/ip_forward", "w") as flag:
                flag.write("1")
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        for host in self.hosts:
            subprocess.run(["ip", "link", "del", host.link], capture_output=True)
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True)
        others = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        if not any(line.startswith("cp") for line in others.splitlines()):  # no other run still routes
            with open("/proc/sys/net/ipv4/ip_forward", "w") as flag:
                flag.write(self._forwarding)
