"""Build hooks for hyperlab; all static metadata lives in pyproject.toml.

Two things pyproject.toml cannot say:

* the package list: the repo root *is* the package `hyperlab` and its folders are mapped to
  `hyperlab.core`, `hyperlab.web`, ... by `[tool.setuptools] package-dir`. We walk the mapped folders
  here so a new sub-package (`core/vmbus/`, `core/vsp/`, ...) lands in the wheel without anyone
  editing a list; `find_packages` cannot, as it knows nothing of the mapping.
* the front-end assets: `build_py` and `sdist` first run tools/vendor.py (`npm ci` from the committed
  package-lock.json, then copy into static/vendor/), so a wheel or a Docker image carries them and
  installing the wheel needs no npm. Set HYPERLAB_SKIP_VENDOR=1 to skip (the Makefile does, as it
  vendors in its own step).
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent


def mapped_packages() -> list[str]:
    package_dir: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    packages = set(package_dir)
    for name, folder in package_dir.items():
        if folder in (".", ""):
            continue  # the root package itself; its sub-folders are mapped explicitly
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if any(part.startswith((".", "__")) or part in ("build", "node_modules") for part in rel.parts):
                continue
            packages.add(".".join((name, *rel.parts)) if rel.parts else name)
    return sorted(packages)


def run_vendor() -> None:
    if os.environ.get("HYPERLAB_SKIP_VENDOR") == "1":
        return
    script = ROOT / "tools" / "vendor.py"
    if not script.is_file():  # unpacked sdist: static/vendor/ travelled with it
        return
    spec = importlib.util.spec_from_file_location("hyperlab_vendor", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.ensure(ROOT)


class BuildPy(build_py):
    def run(self) -> None:
        run_vendor()
        super().run()

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules = super().find_package_modules(package, package_dir)
        if package == "hyperlab":
            # The root package maps to the repo root: ship its __init__ only, not setup.py.
            modules = [m for m in modules if m[1] == "__init__"]
        return modules


class Sdist(sdist):
    def run(self) -> None:
        run_vendor()
        super().run()


setup(packages=mapped_packages(), cmdclass={"build_py": BuildPy, "sdist": Sdist})
