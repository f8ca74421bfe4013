"""A private PulseAudio server for the audio tests: a null sink and a 440 Hz sine source."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil

SINE_HZ = 440
SINE_RATE = 48000


class PulseServer:
    """A private PulseAudio daemon: a null sink and a sine source, the default source.

    Reached through its own socket only: the tests' environment (inherited by the Workers' node
    processes) points PulseAudio clients at it with ``PULSE_SERVER`` and a client config that
    forbids autospawn, so no other sound server on the machine is touched. PortAudio reaches it
    through ALSA's ``pulse`` plugin (Debian ``libasound2-plugins``), which the ``pulseaudio``
    package makes ALSA's default device whenever a server is running.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = folder / "native"
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(folder),
            "XDG_CONFIG_HOME": str(folder / "config"),
            "HOME": str(folder),
        }
        self.client_config = folder / "client.conf"
        self.client_config.write_text(
            f"autospawn = no\ndefault-server = unix:{self.socket}\n"
            f"cookie-file = {folder / 'config' / 'pulse' / 'cookie'}\n"
        )
        self.pid: int | None = None

    def start(self) -> None:
        command = [
            shutil.which("pulseaudio") or "pulseaudio",
            "-n",
            "--daemonize=yes",
            "--exit-idle-time=-1",
            "--use-pid-file=yes",
            "--disable-shm=yes",
            "--log-target=file:" + str(self.folder / "pulse.log"),
            "-L",
            f"module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
            "-L",
            "module-null-sink sink_name=null",
            "-L",
            f"module-sine-source source_name=sine rate={SINE_RATE} frequency={SINE_HZ}",
        ]
        subprocess.run(
            command,
            env=self.env,
            check=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pid_file = self.folder / "pulse" / "pid"
        deadline = time.monotonic() + 10
        while not (self.socket.exists() and pid_file.exists()):
            assert time.monotonic() < deadline, (
                f"PulseAudio did not start; see {self.folder / 'pulse.log'}"
            )
            time.sleep(0.05)
        self.pid = int(pid_file.read_text().split()[0])
        self._pactl("set-default-source", "sine")

    def stop(self) -> None:
        """Stop the daemon and wait until its process is gone (kill it if it lingers)."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        subprocess.run(
            ["pulseaudio", "--kill"],
            env=self.env,
            timeout=10,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            process = psutil.Process(pid)
            process.wait(5)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            process.wait(5)

    def _pactl(self, *args: str) -> None:
        subprocess.run(
            ["pactl", f"--server=unix:{self.socket}", *args],
            env=self.env,
            check=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
