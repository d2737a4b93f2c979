"""Convert email HTML to plain text that keeps lines, paragraphs and table cells apart."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Content of these elements is never text a person wrote.
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "object", "svg"})
# Elements that start and end on their own line.
_BLOCK = frozenset(
    {
        "p",
        "div",
        "tr",
        "table",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "section",
        "article",
        "header",
        "footer",
        "address",
        "center",
        "form",
        "fieldset",
        "hr",
        "tbody",
        "thead",
        "tfoot",
        "caption",
    }
)
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table"})
_CELL = frozenset({"td", "th"})
_ROW = frozenset({"table", "tr", "tbody", "thead", "tfoot"})
_LINE, _PARA = "\x01", "\x02"  # break markers; adjacent ones merge into the strongest
_BREAKS = re.compile(r"[ \x01\x02]*[\x01\x02][ \x01\x02]*")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u200b\ufeff]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _Converter(HTMLParser):
    """Collects text chunks; block boundaries and cell separators are emitted as markers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        self.cell_depth = 0
        self.cell_open = False

    def _block(self, tag: str) -> None:
        if self.cell_depth and tag not in _ROW:
            self.chunks.append(" ")  # a paragraph inside a table cell stays on the row's line
        else:
            self.chunks.append(_PARA if tag in _PARAGRAPH else _LINE)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag == "br":
            self.chunks.append("\n")
        elif tag in _CELL:
            self.chunks.append("\t" if self.cell_open else "")
            self.cell_open = True
            self.cell_depth += 1
        elif tag in _BLOCK:
            if tag == "tr":
                self.cell_open = False
            self.pre_depth += tag == "pre"
            self._block(tag)
            if tag == "li":
                self.chunks.append("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.chunks.append("\n")
        elif tag in _BLOCK:
            self._block(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _CELL:
            self.cell_depth = max(0, self.cell_depth - 1)
        elif tag in _BLOCK and tag != "li":
            self.pre_depth = max(0, self.pre_depth - (tag == "pre"))
            if tag == "tr":
                self.cell_open = False
            self._block(tag)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.chunks.append(data.replace("\r\n", "\n"))
        else:
            self.chunks.append(_SPACES.sub(" ", data.replace("\r", " ").replace("\n", " ")))


def html_to_text(html: str) -> str:
    """Plain text of an HTML document: no markup, no scripts or styles, one line per block."""
    converter = _Converter()
    try:
        converter.feed(html)
        converter.close()
    except Exception:  # HTMLParser is lenient; this only guards against the unexpected
        return _tidy(re.sub(r"<[^>]*>", " ", html))
    return _tidy("".join(converter.chunks))


def _tidy(text: str) -> str:
    text = _BREAKS.sub(lambda m: "\n\n" if _PARA in m.group(0) else "\n", text)
    lines = []
    for line in text.split("\n"):
        cells = [_SPACES.sub(" ", cell).strip() for cell in line.split("\t")]
        lines.append("\t".join(cell for cell in cells if cell))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
