"""scripts/setup.sh installs every Debian package the firmware and TFLM builds use.

Compiles and links a C and a C++ file the way firmware/Makefile does (board CPU
flags, newlib-nano), asks the compiler for every header it read (-MD) and the
linker for every library it opened (--trace), and asks dpkg which package owns
each file and each tool. Every owner must be listed in scripts/debian-packages.txt
or be a dependency of a listed package (apt installs those with it).
A missing package shows up either as a failed compile/link (the error names the
header or library) or as an owner that the list lacks.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_LIST = REPO / "scripts" / "debian-packages.txt"
CPU_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
# What the TFLM harness and the TFLM core include from the C++ library.
CXX_SOURCE = """
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>
int main() { int32_t a[4] = {3, 1, 2, 0}; std::sort(a, a + 4); return std::max(a[0], (int32_t)std::lround(1.5)); }
"""
C_SOURCE = """
#include <stdint.h>
#include <string.h>
int main(void) { uint8_t a[8]; memset(a, 1, sizeof a); return a[3]; }
"""
TOOLS = [
    "make",
    "gcc",
    "arm-none-eabi-gcc",
    "arm-none-eabi-g++",
    "arm-none-eabi-objcopy",
    "arm-none-eabi-size",
    "qemu-system-arm",
    "openocd",
]


def listed_packages() -> set[str]:
    names = set()
    for line in PACKAGE_LIST.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(name)
    return names


@functools.cache
def installed_by_setup() -> frozenset[str]:
    """The listed packages and, recursively, what they depend on (apt installs those with them)."""
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Depends},${Pre-Depends}\n"], capture_output=True, text=True, check=True
    )
    depends = dict(line.split("\t", 1) for line in proc.stdout.splitlines() if "\t" in line)
    todo, seen = list(listed_packages()), set()
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        for alternatives in depends.get(pkg, "").split(","):
            # "a (>= 1) | b": the first alternative that is installed counts
            names = [alt.split("(")[0].split(":")[0].strip() for alt in alternatives.split("|")]
            todo.extend(next(([n] for n in names if n in depends), []))
    return frozenset(seen)


def owners(paths) -> dict[str, str | None]:
    """The Debian package that installed each path (symlinks followed), None for none; one dpkg call."""
    paths = list(paths)
    resolved = {p: str(Path(p).resolve()) for p in paths}
    proc = subprocess.run(["dpkg", "-S", *sorted(set(paths) | set(resolved.values()))], capture_output=True, text=True)
    found = {}
    for line in proc.stdout.splitlines():
        pkgs, _, path = line.partition(": ")
        found[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    return {p: found.get(p) or found.get(resolved[p]) for p in paths}


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg") is None, reason="not a Debian system: no dpkg to ask")


def test_package_list_is_what_setup_reads():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "debian-packages.txt" in setup
    assert {
        "gcc-arm-none-eabi",
        "libnewlib-arm-none-eabi",
        "libstdc++-arm-none-eabi-newlib",
        "qemu-system-arm",
    } <= listed_packages()


@needs_dpkg
def test_every_tool_comes_from_a_listed_package():
    listed = installed_by_setup()
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"tools not installed: {missing} (run scripts/setup.sh)"
    by_path = owners(shutil.which(tool) for tool in TOOLS)
    unlisted = {tool: by_path[shutil.which(tool)] for tool in TOOLS}
    unlisted = {tool: pkg for tool, pkg in unlisted.items() if pkg not in listed}
    assert not unlisted, f"tools from packages scripts/debian-packages.txt does not list: {unlisted}"


@needs_dpkg
@pytest.mark.parametrize("lang", ["c", "c++"])
def test_arm_builds_use_only_listed_packages(tmp_path, lang):
    compiler = "arm-none-eabi-gcc" if lang == "c" else "arm-none-eabi-g++"
    if shutil.which(compiler) is None:
        pytest.fail(f"{compiler} is not installed: scripts/setup.sh must install it")
    src = tmp_path / ("probe.c" if lang == "c" else "probe.cc")
    src.write_text(C_SOURCE if lang == "c" else CXX_SOURCE)
    std = ["-std=c99"] if lang == "c" else ["-std=c++17", "-fno-exceptions", "-fno-rtti"]
    proc = subprocess.run(
        [
            compiler,
            *CPU_FLAGS,
            *std,
            "-O2",
            "-MD",
            "-MF",
            str(tmp_path / "probe.d"),
            "--specs=nano.specs",
            "-nostartfiles",
            "-Wl,-e,main",
            "-Wl,--gc-sections",
            "-Wl,--trace",
            str(src),
            "-lm",
            "-o",
            str(tmp_path / "probe.elf"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"{lang} build for the Cortex-M4 failed (a Debian package is missing?):\n{proc.stderr}"
    headers = re.findall(r"(/\S+\.h\b|/\S+/include/c\+\+/\S+)", (tmp_path / "probe.d").read_text().replace("\\\n", " "))
    libraries = re.findall(r"\((/\S+\.a)\)|(/\S+\.(?:a|o|specs))", proc.stdout)
    files = {f for f in (*headers, *(a or b for a, b in libraries)) if f.startswith("/usr/")}
    assert any("newlib" in f for f in files), f"no newlib file seen, the probe is not probing: {sorted(files)[:5]}"
    if lang == "c++":
        assert any("stdc++" in f for f in files) and any("c++" in f for f in headers)
    by_file = owners(files)
    unowned = sorted(f for f, pkg in by_file.items() if pkg is None)
    assert not unowned, f"files from no Debian package (installed by hand?): {unowned[:5]}"
    unlisted = set(by_file.values()) - installed_by_setup()
    assert not unlisted, f"the {lang} build uses packages scripts/debian-packages.txt does not list: {sorted(unlisted)}"
