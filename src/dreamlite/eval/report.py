"""Reports people read: a Markdown summary and a PNG grid of samples (green frame passed, red failed)."""

from __future__ import annotations

import json
import os
import textwrap

from PIL import Image, ImageDraw

from ..image_io import load_image

TILE = 128
CAPTION = 44


def grid(rows: list[dict], path: str, columns: int = 6, limit: int = 36, source_of=None):
    """Tiles of (source ->) output with the prompt under each; `source_of(row)` gives an edit's source path."""
    rows = _spread(rows, limit)
    if not rows:
        return None
    width = TILE * (2 if source_of else 1) + 8
    n_rows = (len(rows) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * width, n_rows * (TILE + CAPTION)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        x, y = (i % columns) * width, (i // columns) * (TILE + CAPTION)
        tiles = ([source_of(row)] if source_of else []) + [row["path"]]
        for j, p in enumerate(tiles):
            try:
                canvas.paste(load_image(p).resize((TILE, TILE)), (x + 4 + j * TILE, y + 2))
            except Exception:  # noqa: BLE001 - a missing tile stays blank in a picture meant for eyes
                pass
        colour = (40, 170, 60) if row.get("correct") else (220, 40, 40)
        draw.rectangle([x + 3 + (TILE if source_of else 0), y + 1, x + 4 + len(tiles) * TILE, y + TILE + 2], outline=colour, width=2)
        text = textwrap.shorten(row.get("prompt", ""), 3 * (width // 6), placeholder="...")
        draw.multiline_text((x + 4, y + TILE + 4), "\n".join(textwrap.wrap(text, width // 6)[:3]), fill="black")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.save(path)
    return path


def _spread(rows, limit):
    """An even sample across the run (every tag/type shows up), not just its first items."""
    if len(rows) <= limit:
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


def markdown(summary: dict, rows: list[dict], grid_path: str | None, title: str) -> str:
    lines = [f"# {title}", "", "```json", json.dumps(summary, indent=2), "```", ""]
    if grid_path:
        lines += [f"![samples]({os.path.basename(grid_path)})", ""]
    failed = [r for r in rows if not r.get("correct")][:20]
    if failed:
        lines += ["## Some failures", "", "| image | prompt | why |", "|---|---|---|"]
        lines += [f"| {os.path.relpath(r['path'], os.path.dirname(grid_path or r['path']))} | {r['prompt']} | "
                  f"{'; '.join(r.get('reasons', [])) or '-'} |" for r in failed]
    return "\n".join(lines) + "\n"


def write_report(result: dict, out_dir: str, title: str, source_of=None) -> str:
    grid_path = grid(result["rows"], os.path.join(out_dir, "grid.png"), source_of=source_of)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write(markdown(result["summary"], result["rows"], grid_path, title))
    with open(os.path.join(out_dir, "scores.json"), "w") as f:
        json.dump(result, f, indent=1)
    return path
