"""One local instance as a real Linux guest under QEMU, and the backend that boots them.

The guest boots the cached image (``image.py``) over a qcow2 overlay of its own, from its NoCloud
seed (``seed.py``), with NVMe disks standing for an EBS data volume and the instance store, and
two user-mode NICs: the first reaches the local AWS (the host's 127.0.0.1 is 10.0.2.2), the
second carries 169.254.169.254, forwarded per connection to this instance's fake IMDS
(``relay.py``). ``-no-reboot``: the guest powering off (or rebooting, or panicking) ends QEMU,
which is the instance shutting down; with shutdown behaviour ``terminate`` the supervisor then
terminates it in EC2.

EC2's own termination (the workflow's StopInstance, the nets) reaches a running guest as an
ACPI power-button press, as on EC2; a guest that has not powered off ``power_off_grace_seconds``
later is killed, and that is recorded as ``vm_killed``, which every test treats as a failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from local_aws.machines import BootRequest
from local_aws.vm.console import ConsoleLine, ConsoleReader, first_milestones
from local_aws.vm.host_tools import ensure_host_tools
from local_aws.vm.image import GuestImage, ensure_image
from local_aws.vm.seed import (
    EBS_SERIAL_PREFIX,
    HOST_FROM_GUEST,
    INSTANCE_STORE_SERIAL_PREFIX,
    METADATA_MAC,
    METADATA_NET,
    PRIMARY_MAC,
    SeedOptions,
    write_seed,
)

RELAY_SCRIPT = Path(__file__).resolve().parent / "relay.py"
KERNEL_COMMAND_LINE = "console=ttyS0 root=/dev/vda rw net.ifnames=0 panic=-1"


@dataclasses.dataclass(frozen=True)
class VmOptions:
    """The machine a case boots; the defaults are a g5-like instance with two store disks."""

    instance_store_disks: int = 2
    disk_size: str = "4G"
    seed: SeedOptions = dataclasses.field(default_factory=SeedOptions)
    cpus: int = 2
    memory_mib: int = 2048
    power_off_grace_seconds: float = 180.0
    """After EC2's ACPI power-button press, how long the guest gets to power off."""
    echo_console: bool = False
    """Copy the serial console to stderr, each line prefixed with the instance id."""


def qemu_command(
    *,
    image: GuestImage,
    overlay: Path,
    seed: Path,
    disks: list[tuple[Path, str]],
    imds_port: int,
    qmp_socket: Path,
    options: VmOptions,
) -> list[str]:
    """The QEMU command line; ``disks`` are (qcow2 file, NVMe serial) pairs."""
    # -I -S: no site packages to import; the relay starts once per IMDS connection.
    relay = f"{sys.executable} -I -S {RELAY_SCRIPT} {imds_port}"
    command = [
        "qemu-system-x86_64",
        "-accel", "tcg",
        "-cpu", "max",
        "-smp", str(options.cpus),
        "-m", str(options.memory_mib),
        "-display", "none",
        "-monitor", "none",
        "-serial", "stdio",
        "-no-reboot",
        "-qmp", f"unix:{qmp_socket},server=on,wait=off",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", KERNEL_COMMAND_LINE,
        "-drive", f"file={overlay},if=virtio,format=qcow2",
        "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
        "-netdev", "user,id=net0",
        "-device", f"virtio-net-pci,netdev=net0,mac={PRIMARY_MAC}",
        "-netdev",
        f"user,id=net1,net={METADATA_NET},guestfwd=tcp:169.254.169.254:80-cmd:{relay}",
        "-device", f"virtio-net-pci,netdev=net1,mac={METADATA_MAC}",
    ]  # fmt: skip
    for index, (disk, serial) in enumerate(disks):
        command += [
            "-drive", f"file={disk},if=none,id=nvme{index},format=qcow2",
            "-device", f"nvme,drive=nvme{index},serial={serial}",
        ]  # fmt: skip
    return command


def guest_endpoint(endpoint_url: str) -> str:
    """The local AWS's endpoint as the guest reaches it; only the host's 127.0.0.1 is allowed."""
    url = urllib.parse.urlsplit(endpoint_url)
    if url.hostname != "127.0.0.1" or url.port is None:
        raise ValueError(
            "the local AWS must listen on 127.0.0.1:<port> for a VM to reach it, "
            f"not {endpoint_url}"
        )
    return f"{url.scheme}://{HOST_FROM_GUEST}:{url.port}"


def _qemu_img(*args: str) -> None:
    done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"qemu-img {' '.join(args)}: {done.stderr.strip()}")


def _qmp(socket_path: Path, command: str, timeout: float = 10.0) -> None:
    """One QMP command (after the capabilities handshake QMP requires)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        stream = sock.makefile("rwb")
        stream.readline()  # the greeting
        for execute in ("qmp_capabilities", command):
            stream.write(json.dumps({"execute": execute}).encode() + b"\n")
            stream.flush()
            while True:  # skip asynchronous events until the command's own answer
                answer = json.loads(stream.readline() or b"{}")
                if "return" in answer or "error" in answer or not answer:
                    break


class QemuMachine:
    """One instance: a QEMU process; it has powered off when QEMU has exited."""

    def __init__(self, request: BootRequest, image: GuestImage, options: VmOptions) -> None:
        self.request = request
        self.image = image
        self.options = options
        self.work_dir = request.work_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.console: ConsoleReader | None = None
        self.started_at = 0.0
        self.exited_at: float | None = None
        self.exit_code: int | None = None
        self.powerdown_requested_at: float | None = None
        self.killed = False
        self._lock = threading.Lock()
        self._recorded: set[str] = set()

    @property
    def log_path(self) -> Path:
        return self.work_dir / "console.log"

    @property
    def qmp_socket(self) -> Path:
        return self.work_dir / "qmp.sock"

    # -- boot ------------------------------------------------------------------------------

    def boot(self) -> QemuMachine:
        request = self.request
        self.work_dir.mkdir(parents=True, exist_ok=True)
        overlay = self.work_dir / "root.qcow2"
        _qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(self.image.rootfs),
                  str(overlay))  # fmt: skip
        # nvme0: an EBS data volume (selection must skip it); then the instance-store disks.
        disks = [(self.work_dir / "ebs.qcow2", f"{EBS_SERIAL_PREFIX}0123456789abcdef0")]
        disks += [
            (self.work_dir / f"instance-store-{i}.qcow2", f"{INSTANCE_STORE_SERIAL_PREFIX}{i}EC2IS")
            for i in range(self.options.instance_store_disks)
        ]
        for disk, _ in disks:
            _qemu_img("create", "-q", "-f", "qcow2", str(disk), self.options.disk_size)
        seed = write_seed(
            self.work_dir / "seed",
            instance_id=request.instance_id,
            user_data=request.user_data,
            endpoint_url=guest_endpoint(request.aws.endpoint_url),
            options=self.options.seed,
        )
        imds_port = urllib.parse.urlsplit(request.imds.endpoint).port
        if imds_port is None:
            raise ValueError(f"the fake IMDS endpoint has no port: {request.imds.endpoint}")
        command = qemu_command(
            image=self.image,
            overlay=overlay,
            seed=seed,
            disks=disks,
            imds_port=imds_port,
            qmp_socket=self.qmp_socket,
            options=self.options,
        )
        (self.work_dir / "qemu-command.txt").write_text(" ".join(command) + "\n", encoding="utf-8")
        self.log_path.write_bytes(b"")
        with (self.work_dir / "qemu.stderr").open("wb") as stderr:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self.work_dir,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        request.record("vm_started", f"qemu pid {self.process.pid}")
        stdout = self.process.stdout
        if stdout is None:  # stdout=PIPE always gives one
            raise RuntimeError("QEMU started without its serial console pipe")
        self.console = ConsoleReader(
            stdout,
            self.log_path,
            clock=lambda: time.monotonic() - self.started_at,
            on_line=self._on_line,
        ).start()
        return self

    def _on_line(self, line: ConsoleLine) -> None:
        if self.options.echo_console:
            sys.stderr.write(f"[{self.request.instance_id}] {line.text}\n")

    # -- Machine ---------------------------------------------------------------------------

    def poll(self) -> bool:
        process = self.process
        if process is None:
            return True
        code = process.poll()
        if code is None:
            return False
        with self._lock:
            if self.exit_code is None:
                self.exit_code = code
                self.exited_at = time.monotonic()
                if self.console is not None:
                    self.console.join(timeout=10)
                how = "killed by the harness" if self.killed else "by itself"
                self.request.record("vm_powered_off", f"qemu exited {how}, exit code {code}")
        return True

    def power_off(self, reason: str) -> None:
        """EC2 terminates the instance: press the power button, kill after the grace."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with self._lock:
            if self.powerdown_requested_at is not None:
                return
            self.powerdown_requested_at = time.monotonic()
        self.request.record("acpi_powerdown", reason)
        try:
            _qmp(self.qmp_socket, "system_powerdown")
        except OSError as exc:
            self.request.record("acpi_powerdown_failed", str(exc))
        threading.Thread(target=self._kill_after_grace, daemon=True).start()

    def _kill_after_grace(self) -> None:
        process = self.process
        if process is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=self.options.power_off_grace_seconds)
            return
        self.kill("no power-off within the grace after the ACPI power button")

    def kill(self, reason: str) -> None:
        """Pull the plug (recorded as vm_killed): only for a guest that would not power off."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.killed = True
        self.request.record("vm_killed", reason)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        self.poll()

    def live_pids(self) -> set[int]:
        process = self.process
        if process is None or process.poll() is not None:
            return set()
        return {process.pid}

    # -- reports ---------------------------------------------------------------------------

    def console_lines(self) -> list[ConsoleLine]:
        return self.console.snapshot() if self.console is not None else []

    def milestones(self) -> dict[str, ConsoleLine]:
        return first_milestones(self.console_lines())

    def wait_for_exit(self, timeout: float) -> bool:
        """True once QEMU has exited (by itself or not) within ``timeout`` seconds."""
        process = self.process
        if process is None:
            return True
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        self.poll()
        return True


class VmBackend:
    """Boots a QemuMachine per instance, all from one cached image."""

    def __init__(
        self, options: VmOptions | None = None, *, image: GuestImage | None = None
    ) -> None:
        self.options = options or VmOptions()
        ensure_host_tools()
        self.image = image or ensure_image(say=lambda line: print(line, file=sys.stderr))
        self.machines: list[QemuMachine] = []

    def boot(self, request: BootRequest) -> QemuMachine:
        machine = QemuMachine(request, self.image, self.options).boot()
        self.machines.append(machine)
        return machine

    def close(self) -> None:
        """A guest still running when the harness stops is killed (and recorded so)."""
        for machine in self.machines:
            machine.kill("the harness stopped with the guest still running")
