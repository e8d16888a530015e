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
