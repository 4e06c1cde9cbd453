#!/usr/bin/env python3
"""The notebooks' plumbing, called by `make lab` and `make notebooks`.

  jupyter.py kernel --evcxr BIN --libtorch DIR --evcxr-tmpdir DIR --build-dir DIR
                    --host TRIPLE --project DIR --dest DIR
      Writes the project-local kernel spec "condgen (Rust)": evcxr_jupyter with the
      environment libtorch needs (LD_LIBRARY_PATH, LIBTORCH) and a persistent crate
      folder for evcxr in a small workspace under --evcxr-tmpdir, pinned to the
      project's Cargo.lock and building into the project's build folder, so the
      dependencies `make build` compiled are reused as they are (share_build).

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
    project = Path(args.project).resolve()
    crate_dir = share_build(Path(args.evcxr_tmpdir).resolve(), project, Path(args.build_dir).resolve(), args.host)
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
            # evcxr's crate: a member of the workspace share_build writes.
            "EVCXR_TMPDIR": str(crate_dir),
        },
    }
    (dest / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
    print(f"kernel '{DISPLAY_NAME}' registered in {dest} (EVCXR_TMPDIR={crate_dir})")


def profile_dev_lines(manifest):
    """The `key = value` lines of a manifest's [profile.dev] table, as written."""
    lines, inside = [], False
    for line in manifest.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped == "[profile.dev]"
        elif inside and stripped and not stripped.startswith("#"):
            lines.append(stripped)
    return lines


def share_build(workspace, project, build_dir, host):
    """Makes the kernel build with the project's compiled dependencies; returns evcxr's crate folder.

    evcxr builds its crate in EVCXR_TMPDIR with `--target <host>` into EVCXR_TMPDIR/target:
    target code in target/<host>/debug, build scripts and proc macros in target/debug. Linking
    those two folders to the project's own makes cargo find the units `make build` compiled:
    the profile, target and rustflags match (Cargo.toml, .cargo/config.toml), so the versions
    must match too. evcxr's first build has no dependencies at all, and cargo prunes a lock file
    to what its workspace uses, so a copied Cargo.lock alone would be emptied and the next build
    would resolve the newest versions instead. Hence a small workspace: evcxr's crate (`ctx`)
    beside a member that depends on condgen (`pin`), which keeps every pinned version in the
    workspace's lock, a copy of the project's. The profile lives in the workspace root, the only
    place cargo reads it. Only condgen itself and each cell compile in the kernel; cargo's
    fingerprints still rebuild whatever changed, so a notebook never runs stale library code.
    """
    import shutil

    workspace.mkdir(parents=True, exist_ok=True)
    lines = profile_dev_lines((project / "Cargo.toml").read_text())
    (workspace / "Cargo.toml").write_text(
        "# Written by notebooks/jupyter.py (make kernel): evcxr's crate and a pin on condgen's versions.\n"
        '[workspace]\nmembers = ["ctx", "pin"]\nresolver = "2"\n\n[profile.dev]\n' + "\n".join(lines) + "\n"
    )
    pin = workspace / "pin"
    (pin / "src").mkdir(parents=True, exist_ok=True)
    (pin / "src" / "lib.rs").write_text("")
    (pin / "Cargo.toml").write_text(
        '[package]\nname = "condgen-pin"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
        f"[dependencies]\ncondgen = {{ path = {json.dumps(str(project))} }}\n"
    )
    shutil.copyfile(project / "Cargo.lock", workspace / "Cargo.lock")
    crate_dir = workspace / "ctx"
    target = crate_dir / "target"
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
            # A private build from before the folders were shared: duplicates of ours.
            shutil.rmtree(link)
        link.symlink_to(shared, target_is_directory=True)
    return crate_dir


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


def values_shown_as_text(nb):
    """Indices of cells whose figure or table came out as its Debug text (evcxr falls
    back to Debug when it does not call the value's `evcxr_display`)."""
    cells = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "execute_result":
                continue
            text = out.get("data", {}).get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if text.startswith(("Figure {", "Table(")):
                cells.append(i)
    return cells


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
        if error is None and (shown := values_shown_as_text(nb)):
            error = (f"cell(s) {shown}: a figure or table came out as its Debug text, not as an "
                     "image or table (give the value its own cell, after the `use` and `let` lines)")
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
    k.add_argument("--project", required=True, help="the condgen project folder (its Cargo.toml and Cargo.lock)")
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
