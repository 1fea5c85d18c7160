"""A self-contained HTML page: sections of text, tables and PNG images embedded as base64 data
URIs, inline CSS, no script and no external resource, so the one file can be mailed or opened
offline.

    page = HtmlPage("LENS insight report")
    section = page.section("customers", "Customer segments")
    section.text("...").image(png_bytes, "PCA of funnel embeddings").table(frame)
    path.write_text(page.render())
"""

import base64
import datetime as dt
import html
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["HtmlPage", "Section"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
nav a { margin-right: 1.5em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td:last-child { text-align: left; }
img { display: block; max-width: 100%; margin: 1em 0; }
.note { color: #555; }
"""


@dataclass
class Section:
    """One ``<section id=...>`` with a heading; its parts render in the order they were added."""

    id: str
    title: str
    parts: list[str] = field(default_factory=list)

    def text(self, message: str, *, note: bool = False) -> "Section":
        css = ' class="note"' if note else ""
        self.parts.append(f"<p{css}>{html.escape(message)}</p>")
        return self

    def image(self, png: bytes, alt: str) -> "Section":
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">')
        return self

    def table(self, frame: pd.DataFrame, *, max_rows: int = 50) -> "Section":
        """The first ``max_rows`` rows of ``frame`` (the CSV beside the page has them all)."""
        shown = frame.head(max_rows)
        self.parts.append(
            shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", escape=True)
        )
        if len(frame) > max_rows:
            self.text(f"first {max_rows} of {len(frame):,} rows", note=True)
        return self

    def render(self) -> str:
        body = "\n".join(self.parts)
        heading = f"<h2>{html.escape(self.title)}</h2>"
        return f'<section id="{html.escape(self.id)}">\n{heading}\n{body}\n</section>'


@dataclass
class HtmlPage:
    title: str
    sections: list[Section] = field(default_factory=list)
    intro: list[str] = field(default_factory=list)

    def section(self, id: str, title: str) -> Section:
        found = Section(id, title)
        self.sections.append(found)
        return found

    def render(self, generated: dt.datetime | None = None) -> str:
        generated = generated or dt.datetime.now(dt.timezone.utc)
        nav = " ".join(
            f'<a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>' for s in self.sections
        )
        intro = "\n".join(f"<p>{html.escape(line)}</p>" for line in self.intro)
        sections = "\n".join(s.render() for s in self.sections)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(self.title)}</title>\n"
            f"<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(self.title)}</h1>\n"
            f'<p class="note">generated {generated:%Y-%m-%d %H:%M} UTC</p>\n'
            f"{intro}\n<nav>{nav}</nav>\n"
            f"{sections}\n</body>\n</html>\n"
        )
