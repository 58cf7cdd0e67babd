#!/usr/bin/env python
"""Build the optional mypyc-compiled HL7 v2 -> FHIR converter and install it beside the venv.

    .venv/bin/python scripts/build_compiled.py          # or: make install-compiled

Why a separate package: compiled ``.so`` files next to the ``.py`` files would silently shadow a
developer's edits, so this script compiles a temporary copy of ``conduit/`` and installs only the
extension modules, with the SHA-256 of each source they were built from, as the package
``conduit_fhir_compiled`` in the interpreter's site-packages. ``conduit.fhir.compiled`` loads them
only while every source still matches (else it warns and stays pure Python). Remove with
``--remove``. Needs mypy (the ``dev`` extra; it ships mypyc), a C compiler and the Python headers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conduit.fhir.compiled import MODULES, PACKAGE  # noqa: E402

SETUP = """\
from setuptools import setup
from mypyc.build import mypycify

setup(name="conduit-fhir-compiled", py_modules=[],
      ext_modules=mypycify({paths!r}, opt_level="3"))
"""


def source(module: str) -> Path:
    """The ``.py`` file of ``module``, relative to the checkout."""
    return Path(*module.split(".")).with_suffix(".py")


def build(target: Path) -> None:
    """Compile a copy of the sources in a temporary directory; install the results in ``target``."""
    with tempfile.TemporaryDirectory(prefix="conduit-mypyc-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "conduit", work / "conduit",
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        paths = [str(source(m)) for m in MODULES]
        flags = ["--ignore-missing-imports", "--check-untyped-defs"]
        (work / "setup.py").write_text(SETUP.format(paths=paths + flags))
        # No pyproject.toml in the copy: the build needs none, and old setuptools reject its
        # ``license`` string.
        env = {**os.environ, "MYPYC_OPT_LEVEL": "3"}
        subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=work,
                       env=env, check=True)
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        staged = work / "_install" / PACKAGE
        staged.mkdir(parents=True)
        manifest: dict[str, dict[str, str]] = {}
        for module in MODULES:
            built = work / source(module).with_suffix(suffix)
            shutil.copy2(built, staged / f"{module}{suffix}")
            digest = hashlib.sha256((work / source(module)).read_bytes()).hexdigest()
            manifest[module] = {"file": f"{module}{suffix}", "sha256": digest}
        shared = [p for p in work.glob(f"*__mypyc{suffix}")]
        if len(shared) != 1:
            raise SystemExit(f"expected one mypyc runtime library, found {shared}")
        shutil.copy2(shared[0], staged / shared[0].name)
        manifest[shared[0].name[: -len(suffix)]] = {"file": shared[0].name, "sha256": ""}
        (staged / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        (staged / "__init__.py").write_text(
            '"""mypyc build of conduit.fhir (scripts/build_compiled.py); loaded by '
            'conduit.fhir.compiled."""\n')
        remove(target)
        shutil.copytree(staged, target)
    print(f"installed {len(MODULES)} compiled modules in {target}")


def remove(target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--remove", action="store_true", help="uninstall the compiled build")
    parser.add_argument("--target", type=Path,
                        default=Path(sysconfig.get_paths()["purelib"]) / PACKAGE,
                        help="where to install (default: this interpreter's site-packages)")
    args = parser.parse_args()
    if args.remove:
        remove(args.target)
        print(f"removed {args.target}")
    else:
        build(args.target)


if __name__ == "__main__":
    main()
