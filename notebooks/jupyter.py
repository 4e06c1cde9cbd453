#!/usr/bin/env python3
"""The notebooks' plumbing, called by `make lab` and `make notebooks`.

  jupyter.py kernel --evcxr BIN --libtorch DIR --evcxr-tmpdir DIR --build-dir DIR
                    --host TRIPLE --lockfile FILE --dest DIR
      Writes the project-local kernel spec "condgen (Rust)": evcxr_jupyter with the
      environment libtorch needs (LD_LIBRARY_PATH, LIBTORCH) and a persistent
      EVCXR_TMPDIR. evcxr's crate there is pinned to the project's Cargo.lock and
      builds into the project's build folder (its target/<host> and target/debug are
      links to ours), so the dependencies `make build` compiled are reused as they
      are: the profile, target and rustflags match (Cargo.toml, .cargo/config.toml).

  jupyter.py execute [--inplace | --out DIR] [--timeout S] NOTEBOOK...
      Runs each notebook headless with that kernel (the profile comes from
      CONDGEN_PROFILE), prints its wall time, and fails if any cell fails.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

KERNEL_NAME = "condgen-rust"
DISPLAY_NAME = "condgen (Rust)"


def write_kernel(args):
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    libtorch = Path(args.libtorch).resolve()
    tmpdir = Path(args.evcxr_tmpdir).resolve()
    tmpdir.mkdir(parents=True, exist_ok=True)
    # evcxr loads each cell as a shared library linked against the toolchain's
    # libstd; its relative rpath breaks for some folder depths, so name the
    # toolchain's library folder explicitly.
    import subprocess
    rust_libdir = subprocess.run(["rustc", "--print", "target-libdir"], capture_output=True, text=True, check=True).stdout.strip()
    spec = {
        "argv": [str(Path(args.evcxr).resolve()), "--control_file", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "rust",
        "interrupt_mode": "message",
        "env": {
            # The evcxr-built code links libtorch from the venv's torch package.
            "LD_LIBRARY_PATH": f"{libtorch / 'lib'}:{rust_libdir}",
            "LIBTORCH": str(libtorch),
            "LIBTORCH_CXX11_ABI": "1",
            # Compiled dependencies persist here (an ignored build folder).
            "EVCXR_TMPDIR": str(tmpdir),
        },
    }
    (dest / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
    share_build(tmpdir, Path(args.build_dir).resolve(), args.host, Path(args.lockfile))
    print(f"kernel '{DISPLAY_NAME}' registered in {dest} (EVCXR_TMPDIR={tmpdir})")


def share_build(tmpdir, build_dir, host, lockfile):
    """Points evcxr's build folder at the project's and pins its dependency versions.

    evcxr always builds in EVCXR_TMPDIR/target with `--target <host>`: target code in
    target/<host>/debug, build scripts and proc macros in target/debug. Linking those two
    folders to the project's own makes cargo find the units `make build` compiled (same
    versions, features, profile and flags, so the same hashes) and compile only what differs:
    condgen itself, whose hash depends on the workspace it is built from, and each cell.
    Cargo's fingerprints still decide freshness, so a notebook never runs stale code.
    """
    import shutil

    target = tmpdir / "target"
    target.mkdir(parents=True, exist_ok=True)
    for name in (host, "debug"):
        shared = build_dir / name
        shared.mkdir(parents=True, exist_ok=True)
        link = target / name
        if link.is_symlink():
            if link.resolve() == shared:
                continue
            link.unlink()
        elif link.exists():
            # A private build from before the folders were shared: its artifacts are
            # duplicates of ours, so it goes.
            shutil.rmtree(link)
        link.symlink_to(shared, target_is_directory=True)
    # Without this, evcxr's crate resolves the newest compatible versions, which differ from
    # ours as soon as a dependency publishes a patch release, and nothing would be shared.
    shutil.copyfile(lockfile, tmpdir / "Cargo.lock")


def cell_error(exc):
    """The useful part of a failed cell: its source and the error text."""
    text = str(exc)
    return text if len(text) < 6000 else text[:3000] + "\n...\n" + text[-3000:]


def first_cell_seconds(nb):
    """How long the first code cell (the `:dep condgen` cell, which compiles) took."""
    from datetime import datetime

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if not (start and end):
            return None
        parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))
        return (parse(end) - parse(start)).total_seconds()
    return None


def execute(args):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    profile = os.environ.get("CONDGEN_PROFILE", "default")
    failures = []
    rows = []
    for name in args.notebooks:
        path = Path(name)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            kernel_name=KERNEL_NAME,
            timeout=args.timeout,
            startup_timeout=120,
            resources={"metadata": {"path": str(path.parent.resolve())}},
        )
        print(f"== {path.name}: executing (profile {profile})", flush=True)
        start = time.monotonic()
        error = None
        try:
            client.execute()
        except CellExecutionError as exc:
            error = cell_error(exc)
        except Exception as exc:  # kernel died, timeout, ...
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.monotonic() - start
        first = first_cell_seconds(nb)
        rows.append((path.name, seconds, first, "ok" if error is None else "FAILED"))
        if error is not None:
            failures.append(path.name)
            print(f"== {path.name}: FAILED after {seconds:.0f} s\n{error}", flush=True)
        else:
            note = "" if first is None else f" (first cell {first:.0f} s)"
            print(f"== {path.name}: ok in {seconds:.0f} s{note}", flush=True)
        if args.inplace:
            out = path
        else:
            out = Path(args.out) / path.name
            out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(out)
    print("\n| notebook | seconds | first cell (s) | result |\n|---|---:|---:|---|")
    for name, seconds, first, result in rows:
        first_text = "-" if first is None else f"{first:.0f}"
        print(f"| {name} | {seconds:.0f} | {first_text} | {result} |")
    if failures:
        print(f"\n{len(failures)} notebook(s) failed: {', '.join(failures)}", file=sys.stderr)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kernel")
    k.add_argument("--evcxr", required=True)
    k.add_argument("--libtorch", required=True)
    k.add_argument("--evcxr-tmpdir", required=True)
    k.add_argument("--build-dir", required=True, help="the project's cargo target folder")
    k.add_argument("--host", required=True, help="the host triple cargo builds for")
    k.add_argument("--lockfile", required=True, help="the project's Cargo.lock")
    k.add_argument("--dest", required=True)
    e = sub.add_parser("execute")
    where = e.add_mutually_exclusive_group(required=True)
    where.add_argument("--inplace", action="store_true", help="write outputs into the notebooks themselves")
    where.add_argument("--out", help="write executed copies here")
    e.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    e.add_argument("notebooks", nargs="+")
    args = parser.parse_args()
    write_kernel(args) if args.command == "kernel" else execute(args)


if __name__ == "__main__":
    main()
