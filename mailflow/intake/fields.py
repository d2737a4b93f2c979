"""Field vocabulary (rules/fields.yaml) and extraction of labelled field values from free text."""

from __future__ import annotations

import datetime as dt
import re
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailflow.intake.values import KINDS, fold_keep_length, name_mentions, normalise, value_end
from mailflow.textnorm import fold
from mailflow.yamlsource import YamlSource, load_yaml

_MARK = r"(?:n[ \t]*\.?[ \t]*°|no\.|no(?=[ \t]*\d)|nro\.?|num\.?|numero|#)"
_SEP = r"[ \t.\-/]{0,3}"
_MARKER_WORDS = frozenset({"n", "no", "nro", "num", "numero"})
# Words people add after a label without changing what it asks for ("Nombres y apellidos
# completos:", "Correo electrónico de contacto:", "Teléfono actual:"); only before a ":" or a cell.
_FILLER = (
    r"(?:completos?|completas?|actual(?:es)?|vigentes?|personal(?:es)?|principal|legibles?"
    r"|(?:del?|de la)[ \t]+(?:solicitante|titular|recurrente|refugiad[oa]|interesad[oa]|contacto)"
    r"|de[ \t]+la[ \t]+persona|en[ \t]+el[ \t]+peru)"
)
_GIVEN, _SURNAME = frozenset({"nombre", "nombres"}), frozenset({"apellido", "apellidos"})
_LISTS = ("labels", "filename_keywords", "content_keywords")


@dataclass(frozen=True)
class FieldSpec:
    """One field of the vocabulary."""

    id: str
    label: str
    kind: str
    labels: tuple[str, ...] = ()
    past: bool = False
    filename_keywords: tuple[str, ...] = ()
    content_keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldValue:
    """A value read for one field: as written, normalised, why it is invalid, and where."""

    raw: str
    value: str | None
    error: str | None
    source: str


@dataclass(frozen=True)
class FieldVocabulary:
    """The fields, plus one compiled regex that finds any of their labels in folded text."""

    fields: Mapping[str, FieldSpec]
    by_key: Mapping[str, str | None]
    pattern: re.Pattern[str]
    form_pattern: re.Pattern[str]

    def ids(self) -> tuple[str, ...]:
        """Every field id of the vocabulary, in file order."""
        return tuple(self.fields)

    def label(self, field_id: str) -> str:
        """The Spanish label of `field_id` (the id itself when unknown)."""
        spec = self.fields.get(field_id)
        return spec.label if spec else field_id

    def kind(self, field_id: str) -> str:
        """The value kind of `field_id` (text, date, phone, attachment …). Raises KeyError when
        unknown.
        """
        return self.fields[field_id].kind

    def field_for(self, matched_label: str) -> str | None:
        """The field id a label as matched in folded text belongs to (None: ignored label)."""
        return self.by_key.get(re.sub(r"[^a-z0-9]", "", matched_label))

    def matches_attachment(self, field_id: str, filename: str | None, content: str = "") -> bool:
        """Whether an attachment's name (or extracted text) identifies it as `field_id`."""
        spec = self.fields.get(field_id)
        if spec is None or spec.kind != "attachment":
            return False
        name = f" {fold(filename or '')} "
        if any(f" {k} " in name or k in name.replace(" ", "") for k in spec.filename_keywords):
            return True
        text = f" {fold(content)} " if content else ""
        return any(f" {k} " in text for k in spec.content_keywords)


def load_field_vocabulary(path: Path) -> FieldVocabulary:
    """Read rules/fields.yaml; bad YAML, unknown kinds or duplicate labels raise DefinitionError."""
    src = load_yaml(path)
    data = src.data
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise src.error("se esperaba un mapa con la clave 'fields'")
    unknown = set(data) - {"fields", "ignored_labels"}
    if unknown:
        raise src.error(f"clave desconocida {sorted(unknown)[0]!r}", sorted(unknown)[0])
    specs = {fid: _spec(src, fid, raw) for fid, raw in data["fields"].items()}
    if not specs:
        raise src.error("no hay campos definidos", "fields")
    ignored = data.get("ignored_labels") or []
    if not isinstance(ignored, list):
        raise src.error("'ignored_labels' debe ser una lista", "ignored_labels")
    entries: list[tuple[tuple[Any, ...], str | None, Any]] = [
        (("fields", s.id, "labels", i), s.id, label)
        for s in specs.values()
        for i, label in enumerate(s.labels)
    ] + [(("ignored_labels", i), None, label) for i, label in enumerate(ignored)]
    by_key: dict[str, str | None] = {}
    phrases: dict[str, None] = {}
    for where, fid, label in entries:
        words = _words(label) if isinstance(label, str) else []
        phrase, key = " ".join(words), "".join(words)
        if not words:
            raise src.error(f"etiqueta vacía o no textual: {label!r}", *where)
        if phrase in phrases or by_key.get(key, fid) != fid:
            raise src.error(f"etiqueta repetida {label!r} (cada etiqueta, una sola vez)", *where)
        by_key[key] = fid
        phrases[phrase] = None
    trie = _trie_regex(phrases)
    return FieldVocabulary(
        specs,
        by_key,
        _label_regex(trie),
        re.compile(rf"(?:{_MARK}[ \t]*(?:de[ \t]+)?)?(?P<label>{trie})(?:[ \t]*{_MARK})?"),
    )


def _spec(src: YamlSource, fid: Any, raw: Any) -> FieldSpec:
    at = ("fields", fid)
    if not isinstance(raw, dict):
        raise src.error(f"el campo {fid!r} debe ser un mapa", *at)
    for key in set(raw) - {"label", "kind", "labels", "past", *_LISTS}:
        raise src.error(f"clave desconocida {key!r} en el campo {fid!r}", *at, key)
    kind = raw.get("kind")
    if kind not in KINDS:
        known = ", ".join(sorted(KINDS))
        raise src.error(f"tipo desconocido {kind!r} en {fid!r} (use: {known})", *at, "kind")
    if not isinstance(raw.get("label"), str) or not raw["label"].strip():
        raise src.error(f"falta 'label' del campo {fid!r}", *at)
    lists = {key: raw.get(key) or [] for key in _LISTS}
    for key, value in lists.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise src.error(f"'{key}' de {fid!r} debe ser una lista de textos", *at, key)
    if kind == "attachment" and not lists["filename_keywords"]:
        raise src.error(f"el adjunto {fid!r} necesita 'filename_keywords'", *at)
    if kind != "attachment" and not lists["labels"]:
        raise src.error(f"el campo {fid!r} necesita 'labels'", *at)
    keywords = [tuple(fold(k) for k in lists[key]) for key in _LISTS[1:]]
    past = bool(raw.get("past", False))
    return FieldSpec(str(fid), raw["label"].strip(), kind, tuple(lists["labels"]), past, *keywords)


def _words(label: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", fold_keep_length(label).replace("°", " "))
    while len(words) > 1 and words[-1] in _MARKER_WORDS:
        words.pop()
    return words


def _trie_regex(phrases: Iterable[str]) -> str:
    """One alternation factored as a character trie; a label ends only after its longer forms."""
    root: dict[str, Any] = {}
    for phrase in phrases:
        node = root
        for char in phrase:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [(_SEP if c == " " else re.escape(c)) + emit(n) for c, n in node.items() if c]
        branches += [""] if "" in node else []
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(root)


def _label_regex(trie: str) -> re.Pattern[str]:
    return re.compile(
        r"[\n \t,;|/(](?:(?<=\n)(?P<bullet>(?>[ \t>]*(?:(?:[-*•·▪►➢✓◦\uf0b7+|–—]|\d{1,2}[.)\-]+"
        r"|[a-h]\))[ \t]*)*)))?(?>[*_]*)"
        rf"(?:{_MARK}[ \t]*(?:de[ \t]+|del[ \t]+)?)?"
        rf"\b(?P<label>{trie})\b\.?(?:[ \t]*\([a-z .,/]{{1,30}}\))?"
        rf"(?P<extra>(?:[ \t]+{_FILLER}){{1,2}}(?=[ \t]*(?:\.{{2,}}|…+)?[ \t]*[:=：|\t]|[ \t]*$))?"
        r"(?P<qual>(?:[ \t]+(?:de|del|de la|de mi|para)[ \t]+[a-z]{2,20}){1,2}(?=[ \t]*[:=\t]))?"
        rf"(?:[ \t]*{_MARK})?[*_]*"
        r"(?:(?P<strong>[ \t]*(?:\.{2,}|…+)?[ \t]*[:=：|\t])[*_]*[ \t]*"
        r"|(?P<dash>[ \t]*[-–—]+[ \t]+|[ \t]+[-–—]+[ \t]*)"
        r"|(?P<eol>[ \t]*(?=\n|\Z))"
        r"|(?P<weak>(?:[ \t]+(?:es|son|sera)\b)?(?:[ \t]+(?:el|la|mi)\b)?"
        rf"(?:(?:[ \t]+(?!de\b|del\b)[a-z]{{4,15}}){{1,2}}[ \t]*{_MARK})?))",
        re.MULTILINE,
    )


@dataclass(frozen=True)
class _Hit:
    start: int  # where the occurrence begins, separator included: a value before it ends here
    end: int  # where its value begins
    field: str | None
    line_start: bool
    labelled: bool  # strong, dash or end-of-line delimiter (not an inline "DNI 123")
    value_end: int = -1  # for inline hits: where the value's shape ends
    label: str = ""


def extract_fields(
    text: str,
    vocab: FieldVocabulary,
    wanted: Collection[str] | None = None,
    *,
    source: str = "cuerpo",
    today: dt.date | None = None,
) -> dict[str, FieldValue]:
    """Values of the labelled fields in `text` (restricted to `wanted`), first valid one per field."""
    text = "\n" + text.replace("\r\n", "\n").replace("\r", "\n")  # every label follows a separator
    folded = fold_keep_length(text)
    hits = _hits(text, folded, vocab)
    heads = frozenset(h.start for h in hits if h.line_start)
    scan = _Scan(text, hits, [h.start for h in hits], heads)
    found: list[tuple[int, str, str]] = []  # (rank, field, raw)
    parts: dict[tuple[str, bool], list[int]] = {}  # a name in two parts: nombres, apellidos
    for hit in hits:
        if hit.field is None or (wanted is not None and hit.field not in wanted):
            continue
        if hit.labelled:
            raw = _labelled_value(scan, hit, vocab.kind(hit.field))
            found.append((0, hit.field, raw))
            words = set(re.findall(r"[a-z]+", hit.label))
            if words and (words <= _GIVEN or words <= _SURNAME):
                parts.setdefault((hit.field, words <= _SURNAME), []).append(len(found) - 1)
        else:
            found.append((1, hit.field, text[hit.end : hit.value_end]))
    for (fid, surname), (last, *more) in list(parts.items()):
        if surname and not more and len(parts.get((fid, False), ())) == 1:
            first = parts[fid, False][0]
            found.append((0, fid, f"{found[first][2].strip()} {found[last][2].strip()}"))
            found[first], found[last] = (3, *found[first][1:]), (3, *found[last][1:])
    name_field = next((f for f, spec in vocab.fields.items() if spec.kind == "name"), None)
    if name_field is not None and (wanted is None or name_field in wanted):
        found += [(rank, name_field, raw) for rank, raw in name_mentions(text, folded)]
    return _choose(found, vocab, source, today)


def extract_pdf_form_fields(
    form: Mapping[str, str], vocab: FieldVocabulary, source: str
) -> dict[str, FieldValue]:
    """Map AcroForm fields ("nombre_completo", "Celular", "NroCE") to field ids by their labels."""
    found: list[tuple[int, str, str]] = []
    for name, raw in form.items():
        spaced = re.sub(
            r"(?<=[a-z])(?=[A-Z\d])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=\d)(?=[A-Za-z])", " ", name
        )
        words = [w for w in re.findall(r"[a-z0-9°#]+", fold_keep_length(spaced)) if not w.isdigit()]
        if words and words[0] in {"txt", "fld", "campo", "field", "text", "texto"}:
            words = words[1:]
        m = vocab.form_pattern.fullmatch(" ".join(words))
        fid = vocab.field_for(m["label"]) if m else None
        if fid is not None and isinstance(raw, str) and raw.strip():
            found.append((0, fid, raw))
    return _choose(found, vocab, source, None)


def _choose(
    found: list[tuple[int, str, str]], vocab: FieldVocabulary, source: str, today: dt.date | None
) -> dict[str, FieldValue]:
    best: dict[str, tuple[tuple[int, int], FieldValue]] = {}
    for rank, fid, raw in found:
        spec = vocab.fields[fid]
        if spec.kind == "attachment":
            continue  # an attachment is proven by the file, never by a sentence saying so
        raw = raw.strip(" \t\n,;/|-–—*_")
        value, error = normalise(spec.kind, raw, past=spec.past, today=today)
        score = (0 if error is None else 1, rank)
        if fid not in best or score < best[fid][0]:
            best[fid] = (score, FieldValue(raw, value, error, source))
    return {fid: chosen for fid, (_, chosen) in best.items()}


def _hits(text: str, folded: str, vocab: FieldVocabulary) -> list[_Hit]:
    hits: list[_Hit] = []
    for m in vocab.pattern.finditer(folded):
        fid = vocab.field_for(m["label"])
        line_start = m["bullet"] is not None
        before = folded[max(0, m.start() - 8) : m.start() + 1].rstrip(" ")[-1:]
        dash = m["dash"] is not None and (line_start or before in tuple(",;|/\t("))
        if m["qual"] and not _qualifiable(vocab, fid):
            continue  # "Motivo de la apelación:" is a label, "Teléfono de mi esposa:" is not
        if m["strong"] is not None or dash or (m["eol"] is not None and line_start):
            hits.append(_Hit(m.start(), m.end(), fid, line_start, True, label=m["label"]))
        elif m["weak"] is not None and fid is not None:
            end = value_end(vocab.kind(fid), text, folded, m.end(), m["weak"], line_start)
            if end is not None:
                hits.append(_Hit(m.start(), m.end(), fid, line_start, False, end))
    return hits


def _qualifiable(vocab: FieldVocabulary, fid: str | None) -> bool:
    spec = vocab.fields.get(fid or "")
    return spec is not None and (
        spec.kind in ("long_text", "text") or (spec.kind == "date" and not spec.past)
    )


@dataclass(frozen=True)
class _Scan:
    """The text with its accepted label occurrences, indexed for cutting values."""

    text: str
    hits: list[_Hit]
    starts: list[int]
    heads: frozenset[int]  # newline offsets that open a line starting with a label

    def line_end(self, pos: int) -> int:
        end = self.text.find("\n", pos)
        return len(self.text) if end < 0 else end

    def cut(self, pos: int, line_end: int, prose: bool) -> int:
        """Where a value starting at `pos` ends: next label on the line, a '|' or the line end."""
        end = line_end
        for i in range(bisect_left(self.starts, pos), len(self.hits)):
            hit = self.hits[i]
            if hit.start >= line_end:
                break
            if hit.labelled or not prose:
                end = hit.start
                break
        bar = self.text.find("|", pos, end)
        return end if bar < 0 else bar

    def next_line(self, line_end: int) -> int | None:
        """Start of the next non-empty line (one blank line allowed), unless a label opens it."""
        start = line_end + 1
        if not self.text[start : self.line_end(start)].strip():
            start = self.line_end(start) + 1
        blank = not self.text[start : self.line_end(start)].strip()
        return None if start >= len(self.text) or blank or start - 1 in self.heads else start


def _labelled_value(scan: _Scan, hit: _Hit, kind: str) -> str:
    prose = kind in ("long_text", "text")
    pos = hit.end
    line_end = scan.line_end(pos)
    if not scan.text[pos:line_end].strip(" \t*_|") and hit.line_start:
        following = scan.next_line(line_end)
        if following is None:
            return ""
        pos, line_end = following, scan.line_end(following)
    lines = [scan.text[pos : scan.cut(pos, line_end, prose)]]
    while kind == "long_text" and line_end < len(scan.text) and len(lines) < 40:
        start = line_end + 1
        line_end = scan.line_end(start)
        if not scan.text[start:line_end].strip() or start - 1 in scan.heads:
            break
        lines.append(scan.text[start : scan.cut(start, line_end, prose)])
    return "\n".join(line.strip() for line in lines)


_QUOTE_START = re.compile(
    r"^[ \t]*(?:(?:el|on)\b[^\n]{0,300}?(?:\n[^\n]{0,200}?){0,2}(?:escribi[oó]|wrote)[ \t]*:[ \t]*$"
    r"|-{2,}[ \t]*(?:original message|mensaje original|forwarded message|mensaje reenviado)[ \t]*-*[ \t]*$"
    r"|_{8,}[ \t]*$"
    r"|(?:de|from)[ \t]*:[^\n]*\n(?:[^\n]*\n){0,3}?[ \t]*(?:enviado|sent)[ \t]*:"
    r"|(?:de|from)[ \t]*:[^\n]*@[^\n]*\n(?:[^\n]*\n){0,3}?[ \t]*(?:fecha|date)[ \t]*:"
    r"|-- ?$"
    r"|(?:enviado desde|sent from|obtener outlook para|get outlook for)\b[^\n]{0,60}$)",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTED_LINE = re.compile(r"^[ \t]*>[^\n]*(?:\n|\Z)", re.MULTILINE)
_REFUGEE = re.compile(
    r"\brefugiad[oa]s? reconocid[oa]s?\b|\b(?:condicion|calidad|estatus|status) de refugiad[oa]\b"
    r"|\bsoy (?:un |una )?refugiad[oa]\b|\breconocid[oa]s? como refugiad[oa]"
    r"|\b(?:carne|carnet) de extranjeria\W{0,6}(?:n\W{0,3}|no\W{1,3}|nro\W{0,3}|numero\W{0,3})?\d{6,}"
    r"|\bc\W?e\W{0,3}(?:n\W{0,3}|no\W{1,3}|nro\W{0,3})?[:\-]?\W{0,2}\d{9}\b"
)
_SEEKER = re.compile(
    r"\bsolicit\w*\b(?:\W+(?:de|del|la|el|se|me|mi|su|que|reconozca|reconocimiento|otorgue))*"
    r"\W+(?:(?:condicion|calidad|estatus|status)\W+de\W+)?refugi\w*"
    r"|\bpedido de refugio\b|\ben tramite de (?:reconocimiento|refugio)\b[^.\n]*"
)


def strip_quoted(text: str) -> str:
    """Cut quoted replies, forwarded headers, signatures and mobile footers from a body."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    found = _QUOTE_START.search(text)
    if found is not None:
        text = text[: found.start()]
    return _QUOTED_LINE.sub("", text).rstrip()


def detect_refugiado(text: str) -> bool:
    """True when the text says the writer is a recognised refugee (not an asylum seeker)."""
    folded = _SEEKER.sub(" ", fold_keep_length(text))
    return _REFUGEE.search(folded) is not None
