"""Build and cache the twin's disk image.

A Debian bookworm root filesystem made by mmdebstrap (stock kernel, lab
packages), turned into an ext4 image with ``mke2fs -d`` (no loop mount).
The cache entry is keyed on every input: suite, apt sources, package list
and the hook scripts. A changed input gives a new key and a new build;
an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mvpn_lab.errors import LabError
from mvpn_lab.progress import step
from mvpn_lab.vlab import aptsources, paths

#: Packages of the twin image, beyond the minbase variant.
PACKAGES = (
    # boot and management
    "linux-image-amd64",
    "initramfs-tools",
    "zstd",
    "systemd-sysv",
    "udev",
    "kmod",
    "openssh-server",
    "procps",
    "less",
    # the lab's network tools and daemons
    "iproute2",
    "iw",
    "radvd",
    "hostapd",
    "wpasupplicant",
    "wireless-regdb",
    "tcpdump",
    "ndisc6",
    "iputils-ping",
    "curl",
    "apache2",
    "iperf3",
    "ethtool",
    "chrony",
    # Python for Ansible and the lab's own daemons
    "python3",
    "python3-apt",
    "python3-yaml",
    "python3-pyroute2",
    "python3-scapy",
)

IMAGE_SIZE = "4G"
FORMAT_VERSION = 1
REQUIRED_TOOLS = {
    "mmdebstrap": "apt-get install mmdebstrap",
    "mke2fs": "apt-get install e2fsprogs",
    "ssh-keygen": "apt-get install openssh-client",
}


@dataclass(frozen=True)
class Image:
    """A built image in the cache."""

    directory: Path

    @property
    def disk(self) -> Path:
        return self.directory / "disk.img"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key.pub"

    @property
    def key(self) -> str:
        return self.directory.name

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.disk, self.kernel, self.initrd, self.host_key))


def _hook(name: str) -> Path:
    return Path(str(resources.files("mvpn_lab.vlab") / "data" / name))


def inputs(sources: list[str]) -> dict[str, object]:
    return {
        "format": FORMAT_VERSION,
        "suite": aptsources.SUITE,
        "sources": sources,
        "packages": sorted(PACKAGES),
        "essential_hook": _hook("essential-hook.sh").read_text(),
        "customize_hook": _hook("customize-hook.sh").read_text(),
        "size": IMAGE_SIZE,
    }


def cache_key(sources: list[str]) -> str:
    blob = json.dumps(inputs(sources), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def check_tools() -> None:
    for tool, install in REQUIRED_TOOLS.items():
        if shutil.which(tool) is None:
            raise LabError(
                f"{tool} not found on this host: install it with '{install}' (or run scripts/setup.sh)"
            )
    if os.geteuid() != 0:
        raise LabError("building the twin image needs root (mmdebstrap root mode); run as root")


def current(mirror: str | None = None) -> Image:
    """The cache entry for today's inputs (built or not)."""
    sources = aptsources.debian_sources(override=mirror)
    return Image(paths.cache_dir() / cache_key(sources))


def _run_streaming(cmd: list[str], title: str, log: Path) -> None:
    with step(title) as progress, log.open("a") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.strip():
                progress.update(line)
        if proc.wait() != 0:
            raise LabError(f"{cmd[0]} failed (exit {proc.returncode}); see {log}")


def build(mirror: str | None = None, force: bool = False) -> Image:
    """Build the image unless the cache already holds one for the same inputs."""
    sources = aptsources.debian_sources(override=mirror)
    image = Image(paths.cache_dir() / cache_key(sources))
    if image.complete() and not force:
        print(f"twin image {image.key} is cached in {image.directory}")
        return image
    check_tools()
    cache = paths.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".build-{image.key}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    rootfs = work / "rootfs"
    log = work / "build.log"
    started = time.monotonic()
    try:
        cmd = [
            "mmdebstrap",
            "--variant=minbase",
            "--mode=root",
            "--format=directory",
            "--include=" + ",".join(PACKAGES),
            f'--essential-hook={_hook("essential-hook.sh")} "$1"',
            f'--customize-hook={_hook("customize-hook.sh")} "$1"',
            aptsources.SUITE,
            str(rootfs),
            *sources,
        ]
        _run_streaming(cmd, "building the twin's root filesystem (mmdebstrap)", log)
        boot = rootfs / "boot"
        kernels = sorted(boot.glob("vmlinuz-*"))
        initrds = sorted(boot.glob("initrd.img-*"))
        if not kernels or not initrds:
            raise LabError(f"no kernel or initramfs in {boot}; see {log}")
        shutil.copy2(kernels[-1], work / "vmlinuz")
        shutil.copy2(initrds[-1], work / "initrd.img")
        shutil.copy2(rootfs / "etc/ssh/ssh_host_ed25519_key.pub", work / "ssh_host_ed25519_key.pub")
        _run_streaming(
            [
                "mke2fs",
                "-q",
                "-F",
                "-t",
                "ext4",
                "-L",
                "mvpn-twin",
                "-d",
                str(rootfs),
                str(work / "disk.img"),
                IMAGE_SIZE,
            ],
            "writing the twin's disk image (mke2fs -d)",
            log,
        )
        meta = {
            "key": image.key,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started, 1),
            "kernel": kernels[-1].name.removeprefix("vmlinuz-"),
            "inputs": {k: v for k, v in inputs(sources).items() if not k.endswith("_hook")},
        }
        (work / "image.json").write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(rootfs)
        if image.directory.exists():
            shutil.rmtree(image.directory)
        work.rename(image.directory)
    except BaseException:
        shutil.rmtree(rootfs, ignore_errors=True)
        raise
    print(f"twin image {image.key} built in {time.monotonic() - started:.0f} s: {image.directory}")
    return image


def metadata(image: Image) -> dict[str, object]:
    try:
        return json.loads((image.directory / "image.json").read_text())
    except (OSError, ValueError):
        return {}
