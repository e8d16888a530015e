"""src_c/stefast.h is usable from plain C: compile tests/c_api_test.c with
the kernel sources (no Python headers) and run it."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src_c"


def c_compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX compiler driver expected")
def test_c_program_uses_the_public_header(tmp_path):
    cc = c_compiler()
    if cc is None:
        pytest.skip("no C compiler on this machine")
    if not SRC.is_dir():
        pytest.skip("kernel sources not present (installed without the source tree)")
    exe = tmp_path / "c_api_test"
    cmd = [cc, "-std=c99", "-O2", "-Wall", "-Werror", "-Wno-psabi", "-fopenmp",
           f"-I{SRC}", str(ROOT / "tests" / "c_api_test.c"),
           *map(str, sorted(SRC.glob("*.c"))), "-o", str(exe), "-lm"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX compiler driver expected")
def test_dispatch_clones_round_identically(tmp_path):
    """Baseline x86-64, AVX2 and the runtime-dispatched build give the same bits."""
    import platform

    cc = c_compiler()
    if cc is None or not SRC.is_dir():
        pytest.skip("needs a C compiler and the source tree")
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the dispatch clones are x86-64 specific")
    variants = {"baseline": ["-march=x86-64", "-DSTEFAST_NO_DISPATCH"],
                "avx2": ["-mavx2", "-DSTEFAST_NO_DISPATCH"],
                "dispatch": []}
    outputs = {}
    for name, flags in variants.items():
        exe = tmp_path / name
        cmd = [cc, "-std=c99", "-O3", "-ffp-contract=off", "-fno-math-errno", "-Wno-psabi", *flags, f"-I{SRC}",
               str(ROOT / "tests" / "c_rounding_test.c"), *map(str, sorted(SRC.glob("*.c"))),
               "-o", str(exe), "-lm"]
        build = subprocess.run(cmd, capture_output=True, text=True)
        assert build.returncode == 0, build.stderr
        cpuinfo = Path("/proc/cpuinfo")
        if name == "avx2" and not (cpuinfo.exists() and "avx2" in cpuinfo.read_text()):
            continue  # built (so it compiles) but this CPU cannot run it
        run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        outputs[name] = run.stdout
    assert len(outputs["dispatch"]) > 1000
    for name, out in outputs.items():
        assert out == outputs["dispatch"], f"{name} build rounds differently"
