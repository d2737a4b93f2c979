"""Convert email HTML to plain text that keeps lines, paragraphs and table cells apart."""

from __future__ import annotations

import re
from html import unescape

from lxml import etree

MAX_HTML_CHARS = 2_000_000  # characters of HTML read; a bigger body is cut (bounded pre-pass)
MAX_ELEMENTS = 200_000  # elements converted; the rest of a bigger document is dropped

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
_TAG = re.compile(r"<[^<>]{0,4096}>")
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr"})


class _Converter:
    """Collects text chunks; block boundaries and cell separators are emitted as markers."""

    def __init__(self) -> None:
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

    def start(self, tag: str) -> None:
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

    def end(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _CELL:
            self.cell_depth = max(0, self.cell_depth - 1)
        elif tag in _BLOCK and tag not in ("li", "hr"):
            self.pre_depth = max(0, self.pre_depth - (tag == "pre"))
            if tag == "tr":
                self.cell_open = False
            self._block(tag)

    def data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.chunks.append(data.replace("\r\n", "\n"))
        else:
            self.chunks.append(_SPACES.sub(" ", data.replace("\r", " ").replace("\n", " ")))


def html_to_text(html: str, *, max_chars: int = MAX_HTML_CHARS) -> str:
    """Plain text of an HTML document: no markup, no scripts or styles, one line per block.

    Takes HTML as a str; reads at most `max_chars` characters of it (the rest is dropped) and
    returns the text; only the first MAX_ELEMENTS elements are converted. Linear time and memory in the input: the document is parsed by libxml2
    (lxml's HTML parser, in C), which stops nesting at 256 levels, and the tree is walked with
    lxml's iterative `iterwalk`, so unclosed tags, deep nesting or misnested inline elements
    cannot make the work grow faster than the size. Never raises.
    """
    html = html[:max_chars]
    if "<" not in html:
        return _tidy(_SPACES.sub(" ", unescape(html).replace("\r", " ").replace("\n", " ")))
    try:
        parser = etree.HTMLParser(
            recover=True, no_network=True, remove_comments=True, remove_pis=True
        )
        root = etree.fromstring(html.replace("\x00", ""), parser)
    except Exception:  # libxml2 recovers from anything; this guards against the unexpected
        root = None
    if root is None:
        return _tidy(_SPACES.sub(" ", unescape(_TAG.sub(" ", html))))
    converter = _Converter()
    elements = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            elements += 1
            if elements > MAX_ELEMENTS:
                break
            converter.start(tag.lower())
            if element.text:
                converter.data(element.text)
        else:
            if tag.lower() not in _VOID:
                converter.end(tag.lower())
            if element.tail:
                converter.data(element.tail)
    return _tidy("".join(converter.chunks))


def _tidy(text: str) -> str:
    text = _BREAKS.sub(lambda m: "\n\n" if _PARA in m.group(0) else "\n", text)
    lines = []
    for line in text.split("\n"):
        cells = [_SPACES.sub(" ", cell).strip() for cell in line.split("\t")]
        lines.append("\t".join(cell for cell in cells if cell))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
