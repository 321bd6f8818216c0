"""Copy the pinned third-party front-end assets from node_modules/ into static/vendor/.

Why a script and not committed files: the assets (xterm.js, Pyodide, the terminal font) are 13.9 MB and would grow the
history on every upgrade; instead `package-lock.json` pins them and this script copies exactly the
files the front end loads. It is run by `make` (after `npm ci`) and by the `build_py`/`sdist` hooks in
setup.py, so a wheel or a Docker image carries them and installing the wheel needs no npm.

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: destination under static/vendor/  ->  source under node_modules/
FILES: dict[str, str] = {
    "xterm/xterm.mjs": "@xterm/xterm/lib/xterm.mjs",
    "xterm/xterm.css": "@xterm/xterm/css/xterm.css",
    "xterm/addon-fit.mjs": "@xterm/addon-fit/lib/addon-fit.mjs",
    "xterm/addon-attach.mjs": "@xterm/addon-attach/lib/addon-attach.mjs",
    "xterm/LICENSE": "@xterm/xterm/LICENSE",
    # The terminal's monospace web font (latin subset, regular and bold; others fall back to DejaVu
    # Sans Mono): its underscore is drawn inside the cell height xterm.js measures.
    "fonts/jetbrains-mono-latin-400-normal.woff2": "@fontsource/jetbrains-mono/files/jetbrains-mono-latin-400-normal.woff2",
    "fonts/jetbrains-mono-latin-700-normal.woff2": "@fontsource/jetbrains-mono/files/jetbrains-mono-latin-700-normal.woff2",
    "fonts/LICENSE-jetbrains-mono": "@fontsource/jetbrains-mono/LICENSE",
    # Pyodide boots offline from exactly these five files (reference/frontend-notes.md); the
    # lock file is required, else loadPyodide() fails with a SyntaxError on a 404 page.
    "pyodide/pyodide.mjs": "pyodide/pyodide.mjs",
    "pyodide/pyodide-lock.json": "pyodide/pyodide-lock.json",
    "pyodide/python_stdlib.zip": "pyodide/python_stdlib.zip",
    "pyodide/pyodide.asm.wasm": "pyodide/pyodide.asm.wasm",
    "pyodide/pyodide.asm.mjs": "pyodide/pyodide.asm.mjs",
}


def vendor_dir(root: Path = ROOT) -> Path:
    return root / "static" / "vendor"


def is_complete(root: Path = ROOT) -> bool:
    """True when every vendored file is present (e.g. in an unpacked sdist with no node_modules)."""
    dest = vendor_dir(root)
    return all((dest / name).is_file() for name in FILES)


def npm_ci(root: Path = ROOT) -> None:
    """Install node_modules/ from the committed lock file, unless it is already up to date.

    npm writes node_modules/.package-lock.json on every install: when it is newer than
    package-lock.json, node_modules matches the lock file and there is nothing to do.
    """
    lock = root / "package-lock.json"
    hidden = root / "node_modules" / ".package-lock.json"
    if hidden.is_file() and hidden.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "tools/vendor.py: npm is needed to fetch the front-end assets pinned in package-lock.json "
            "(install Node.js 20 + npm, or build from an sdist that already contains static/vendor/)"
        )
    cmd = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
    print("tools/vendor.py:", " ".join(cmd[1:]), file=sys.stderr)
    subprocess.run(cmd, cwd=root, check=True)
    hidden.touch()


def copy(root: Path = ROOT) -> int:
    """Copy FILES into static/vendor/; returns how many files changed."""
    src_root = root / "node_modules"
    dest_root = vendor_dir(root)
    changed = 0
    for name, src_name in FILES.items():
        src, dest = src_root / src_name, dest_root / name
        if not src.is_file():
            raise SystemExit(f"tools/vendor.py: {src} is missing (run `npm ci`)")
        if dest.is_file():
            s, d = src.stat(), dest.stat()
            if s.st_size == d.st_size and int(s.st_mtime) == int(d.st_mtime):
                continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        changed += 1
    return changed


def ensure(root: Path = ROOT, run_npm: bool = True) -> None:
    """Make static/vendor/ complete: `npm ci` when needed (and allowed), then copy."""
    if not (root / "package-lock.json").is_file():
        # An unpacked sdist: the assets travelled with it.
        if is_complete(root):
            return
        raise SystemExit("tools/vendor.py: no package-lock.json and static/vendor/ is incomplete")
    if run_npm:
        npm_ci(root)
    copy(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-npm", action="store_true", help="only copy; node_modules/ must be installed")
    args = parser.parse_args(argv)
    ensure(ROOT, run_npm=not args.no_npm)
    print(f"tools/vendor.py: {len(FILES)} files in {vendor_dir(ROOT).relative_to(ROOT)}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
