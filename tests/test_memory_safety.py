"""The kernels touch no byte outside the arrays they are given.

Rows a whole number of cache lines long are read a line at a time, and the
first and last lines of a row starting off a line also hold values of the
rows around it (masked off, sample_impl.h). At the two ends of Z those
values belong to nobody: the kernels must not read them. A value test
cannot see such a read (the masked bytes never reach a result), so this
runs the kernels under valgrind's memcheck, on arrays that start at every
16-byte offset within a line and end where their allocation ends, and
fails on any invalid access reported inside stefast's extension module.
(Under valgrind the CPU shows no AVX-512, so the AVX2 clone runs; all
clones read the same lines.)
"""

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import stefast._core

# one shape per read path (see LINE_SHAPES in test_kernels.py): w in
# registers, general aligned, one pass, unaligned
CHILD = r"""
import json
import numpy as np, stefast
rng = np.random.default_rng(0)
offsets = set()
for dtype in (np.float64, np.float32):
    for m, n in ((3, 64), (5, 256), (40, 256), (5, 17)):
        v, w, v_star, w_star = [rng.standard_normal(k).astype(dtype) for k in (m, n, m, n)]
        for B in (1, 3):
            seen, keep = set(), []
            for _ in range(64):  # until every 16-byte offset within a line is seen
                Z = rng.standard_normal((B, m, n)).astype(dtype)
                keep.append(Z)
                offset = Z.ctypes.data % 64
                if offset in seen:
                    continue
                seen.add(offset)
                for reduce in ("none", "sum"):
                    stefast.loss_and_grads(Z, v, w, v_star, w_star, reduce=reduce, threads=1)
                stefast.forward(Z, v, w)
            offsets.update(seen)
print(json.dumps(sorted(offsets)))
"""


# CI sets STEFAST_REQUIRE_VALGRIND=1 and installs valgrind, so there it runs
@pytest.mark.skipif(shutil.which("valgrind") is None
                    and not os.environ.get("STEFAST_REQUIRE_VALGRIND"), reason="needs valgrind")
@pytest.mark.skipif(sys.platform != "linux", reason="valgrind on Linux")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="valgrind cannot run a process with AddressSanitizer loaded; "
                           "the sanitizer job checks these reads with ASan instead")
def test_kernels_read_nothing_outside_z(tmp_path):
    log = tmp_path / "memcheck.xml"
    env = {**os.environ, "PYTHONMALLOC": "malloc"}  # every array its own malloc block
    run = subprocess.run(
        ["valgrind", "--tool=memcheck", "--xml=yes", f"--xml-file={log}",
         sys.executable, "-c", CHILD],
        capture_output=True, text=True, env=env, timeout=600,
        cwd=tmp_path)  # the installed stefast, not the source tree
    assert run.returncode == 0, run.stderr[-2000:]
    offsets = json.loads(run.stdout)
    assert {16, 32, 48} <= set(offsets), f"Z never started off a line: offsets {offsets}"
    core = os.path.realpath(stefast._core.__file__)
    ours = []
    for error in ET.parse(log).getroot().iter("error"):
        kind = error.findtext("kind")
        if not kind.startswith("Invalid"):
            continue  # uninitialised-value reports from the interpreter, leaks
        objs = {os.path.realpath(f.findtext("obj") or "") for f in error.iter("frame")}
        if core in objs:
            frames = [f"{f.findtext('fn')} ({f.findtext('file')}:{f.findtext('line')})"
                      for f in error.iter("frame")][:4]
            ours.append(f"{kind}: {error.findtext('what')}: {frames}")
    assert not ours, "\n".join(ours)
