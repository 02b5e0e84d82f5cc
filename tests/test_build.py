"""How the extension is linked (Linux): the C++ runtime is inside it, not looked up in the
process's global symbol scope, where another extension may have put a copy of its own.

TensorFlow loads its wrapper with RTLD_GLOBAL and exports libstdc++ functions (such as
``std::string::reserve``) from it; before weightio linked its runtime in, every C++ call of
that kind made by weightio after ``import tensorflow`` went to TensorFlow's copy, and parsing
the metadata of a 10,000-dataset file took 170 ms instead of 15 (see CMakeLists.txt)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import weightio._core as core

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF linking (Linux builds)")

# Mangled-name prefixes of the C++ standard library (std::, std::__cxx11::, operator new/delete).
CXX_RUNTIME = ("_ZNSt", "_ZNKSt", "_ZSt", "_ZNSs", "_ZNKSs", "_Znw", "_Zna", "_ZdlPv", "_ZdaPv")


def _dynamic_symbols(undefined: bool) -> list[str]:
    nm = shutil.which("nm")
    if nm is None:
        pytest.fail("nm (binutils) is needed to check how the extension is linked: install binutils")
    flag = "--undefined-only" if undefined else "--defined-only"
    out = subprocess.run([nm, "-D", flag, core.__file__], check=True, capture_output=True, text=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def test_cxx_runtime_is_not_looked_up_elsewhere() -> None:
    imported = [s for s in _dynamic_symbols(undefined=True) if s.startswith(CXX_RUNTIME)]
    assert imported == [], f"the extension imports C++ runtime symbols (another library's copy could serve them): {imported[:5]}"


def test_extension_does_not_need_libstdcxx() -> None:
    ldd = shutil.which("ldd")
    if ldd is None:
        pytest.skip("no ldd")
    out = subprocess.run([ldd, core.__file__], check=True, capture_output=True, text=True).stdout
    assert "libstdc++" not in out, out
