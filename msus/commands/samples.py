"""``msus samples [--out DIR] [--only NAME ...] [--list]``: regenerate the bundled phantom samples."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from msus.errors import MsusError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "samples",
        help="regenerate the bundled phantom sample loops (deterministic DICOM/MP4 + ground truth)",
        description="Regenerate the phantom samples (byte-identical DICOM for the same msus version) "
        "and their NAME.truth.json ground truth.",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: the source checkout's samples/)")
    p.add_argument("--only", metavar="NAME", nargs="+", help="only these samples (name, with or without extension)")
    p.add_argument("--list", action="store_true", help="list the samples and what each shows, write nothing")
    return p


def run(args) -> int:
    from msus import samples

    if args.list:
        for s in samples.SAMPLES:
            print(f"{s.filename:<36} {s.description}")
        return 0
    if args.out:
        out = Path(args.out)
    else:
        out = samples.default_samples_dir()
        if out is None:
            raise MsusError("no source checkout found to hold samples/; pass --out DIR")
    if out.exists() and not out.is_dir():
        raise MsusError(f"--out {out} exists and is not a folder")
    written = samples.build_samples(out, args.only, progress=lambda n: print(f"writing {n}", file=sys.stderr, flush=True))
    for p in written:
        print(p)
    return 0
