"""Pieces the studio's HTML reports share: figures, number formats, tables, the page."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

STYLE = ("body{font-family:sans-serif;max-width:64em;margin:2em auto;color:#222}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
         "padding:.2em .6em;text-align:right}th{background:#f3f3f3}"
         "td:first-child{text-align:left}.note{color:#555;font-size:.9em}"
         "img{max-width:100%}figcaption{color:#555;font-size:.9em}"
         ".pass{color:#1a7f37}.fail{color:#c62828}")


def figure(width: float = 7.0, height: float = 4.0) -> Figure:
    """A matplotlib figure on the Agg canvas: no GUI backend, safe in worker threads."""
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:.{digits}f}"


def table(head: list[str], rows: list[list[str]]) -> str:
    """Cells are escaped by the caller (they hold numbers we format or escaped input text)."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, parts: list[str]) -> str:
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{title}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
