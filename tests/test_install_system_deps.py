"""scripts/install_system_deps.sh installs package by package and never stops the build
(issue 12 item 5): fake apt/dpkg commands on PATH record what it asks for."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake_bin(tmp_path: Path, uid: int, unknown: str = "chromium", broken: str = "") -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    scripts = {
        "dpkg-query": "exit 1",  # nothing installed
        "id": f'[ "$1" = -u ] && echo {uid}',
        "apt-cache": f'[ "$2" = {unknown} ] && exit 100; exit 0',
        "apt-get": f'echo "$*" >> {log}; for a; do [ "$a" = "{broken or "-"}" ] && exit 1; done; '
        "exit 0",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run(bin_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.run(["bash", str(ROOT / "scripts/install_system_deps.sh")], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_one_missing_or_failing_package_stops_nothing(tmp_path) -> None:
    out = _run(_fake_bin(tmp_path, 0, unknown="chromium", broken="fonts-lato"))
    assert out.returncode == 0, out.stderr
    installs = [line for line in (tmp_path / "apt.log").read_text().splitlines() if "install" in line]
    names = [line.split()[-1] for line in installs]
    assert "chromium" not in names and "fonts-noto-core" in names and "chromium-driver" in names
    assert all(len(line.split()) == 5 for line in installs)  # one package per apt-get install
    assert "chromium (no such package here)" in out.stderr and "fonts-lato" in out.stderr
    assert "test-only" in out.stderr


def test_without_root_it_reports_and_succeeds(tmp_path) -> None:
    out = _run(_fake_bin(tmp_path, 1000))
    assert out.returncode == 0
    assert "need apt-get as root" in out.stderr and "user cache" in out.stderr
    assert not (tmp_path / "apt.log").exists()
