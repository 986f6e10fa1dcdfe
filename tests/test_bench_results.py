"""The README's Performance figures are the benchmarks' own files, never hand-copied.

`make bench` writes bench/results/summary.md and puts the same text between two markers in
the README (bench/bench.py's write_summary). A figure edited by hand in one place and not
the other, a variant left out of the table, or a link to a results file that is not there
fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.bench import SUMMARY_END, SUMMARY_START, VARIANTS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LINK = re.compile(r"\]\((bench/results/[^)#\s]+)\)")
ROW = re.compile(r"^\| ([^|]+?) \|((?: [^|]+ \|)+)$", re.MULTILINE)


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def performance_section() -> str:
    text = readme()
    start = text.index("\n## Performance\n") + 1
    return text[start : text.index("\n## ", start + 3)]


def readme_block() -> str:
    section = performance_section()
    assert section.count(SUMMARY_START) == 1 and section.count(SUMMARY_END) == 1
    return section.split(SUMMARY_START, 1)[1].split(SUMMARY_END, 1)[0]


def test_the_readme_holds_summary_md_as_written():
    summary = (RESULTS / "summary.md").read_text(encoding="utf-8")
    assert readme_block() == "\n" + summary


def test_the_summary_names_every_variant_with_a_figure_in_each_column():
    rows = {m.group(1): m.group(2) for m in ROW.finditer(readme_block())}
    assert set(VARIANTS) <= set(rows), sorted(rows)
    for variant in VARIANTS:
        cells = [cell.strip() for cell in rows[variant].strip(" |").split(" | ")]
        assert len(cells) == 8, (variant, cells)
        assert all(re.search(r"\d\.\d", cell) for cell in cells), (variant, cells)
    bare = [cell.strip() for cell in rows["bare"].strip(" |").split(" | ")]
    assert all(cell.startswith("1.0") for cell in bare), bare  # each figure is a ratio to bare


def test_every_results_file_the_readme_links_exists():
    links = set(LINK.findall(readme()))
    assert {"bench/results/summary.md", "bench/results/attribution.md"} <= links
    missing = sorted(link for link in links if not (ROOT / link).is_file())
    assert not missing, missing


def test_the_levers_log_gives_a_before_and_after_for_each_lever():
    """attribution.md's levers section: one row per lever, kept or not, with both counts."""
    levers = (RESULTS / "attribution.md").read_text(encoding="utf-8").split("## Levers tried", 1)
    assert len(levers) == 2
    rows = [line for line in levers[1].splitlines() if re.match(r"\| [0-9a-f]{7} ", line)]
    assert len(rows) >= 8, rows
    for row in rows:
        assert re.search(r"\b(kept|reverted|not kept)\b", row), row
        if "mypyc" not in row:  # measured in its own file, linked from the row
            assert len(re.findall(r"\d\.\d{3} M", row)) == 4, row  # GET, POST: before, after
