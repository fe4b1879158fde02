"""Regenerates python/winback/datasets/cdnow.parquet from ../shared/data/CDNOW_master.txt.

Run from the repository root: ``.venv/bin/python scripts/make_cdnow_sample.py``. The test
``test_datasets.py`` checks that the shipped file equals a fresh conversion.
"""

from __future__ import annotations

import sys
from pathlib import Path

from winback.datasets import read_cdnow_text

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    source = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/data/CDNOW_master.txt"
    )
    target = ROOT / "python/winback/datasets/cdnow.parquet"
    frame = read_cdnow_text(source)
    frame.write_parquet(target, compression="zstd", compression_level=19, statistics=True)
    print(f"wrote {target} ({frame.height} rows, {target.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
