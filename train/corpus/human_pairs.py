"""English-Spanish sentences translated by people: LibreOffice's help, shipped by Debian.

`libreoffice-help-en-us` and `libreoffice-help-es` hold the same help pages; every paragraph and
heading carries the same `id` in both languages, so pairs match by (page, id) with no aligner.
The translations were written by LibreOffice's Spanish translators: the references an LM should
learn from and be measured on (apertium's literal Spanish is neither).

One deterministic split, by a hash of the English text, so that every command agrees on which
sentences are held out without sharing a file: `test` (spoken by a held-out voice in
`simulsa corpus-eval`), `dev`, and `train` (the rest, for `simulsa train --text-train`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html.parser
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.files import write_text_atomic
from simulsa.train.corpus.programs import debian_package_root

PACKAGES = {"en": "libreoffice-help-en-us", "es": "libreoffice-help-es"}
HELP_ROOT = Path("usr/share/libreoffice/help")
LANG_DIRS = {"en": "en-US", "es": "es"}
TEXT_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}  # the elements whose `id` both languages share
SPLITS = ("test", "dev", "train")  # in hash order: the first test_size, the next dev_size, the rest
MIN_WORDS, MAX_WORDS = 4, 24
# A sentence a person would say aloud: a capital letter first, a full stop last, words and light punctuation between
# (no menu paths "Format - Cells", no keys "Ctrl+", no code, no numbers-as-identifiers).
SPOKEN_SENTENCE = re.compile(r"^[A-Z][A-Za-z' ,;()-]*[a-z)][.?!]$")
NOT_SPOKEN = re.compile(r" - |[a-z][A-Z]|\b[A-Z]{2,}\b")  # menu paths, CamelCase identifiers, acronyms and keys
SPOKEN_TARGET = re.compile(r"^[¿¡]?[A-ZÁÉÍÓÚÑ][^<>{}|\\/=_+*#@$%&\[\]0-9]*[.?!]$")


@dataclasses.dataclass(frozen=True)
class HumanPairOptions:
    test_size: int = 150  # held-out sentences for the spoken test set
    dev_size: int = 100  # held-out sentences to choose with
    help_root: Path | None = None  # an unpacked tree holding usr/share/libreoffice/help/{en-US,es} (default: fetch)

    def __post_init__(self) -> None:
        for flag, size in (("--test-size", self.test_size), ("--dev-size", self.dev_size)):
            if size < 0:
                raise SimulsaError(f"{flag} {size} must be >= 0")
        if self.help_root is not None and not (self.help_root / HELP_ROOT / LANG_DIRS["es"]).is_dir():
            raise SimulsaError(f"--help-root {str(self.help_root)!r} has no {HELP_ROOT / LANG_DIRS['es']}; "
                               "give the folder both Debian packages were unpacked into (dpkg -x)")  # fmt: skip


class _IdText(html.parser.HTMLParser):
    """Collects {id: text} of the text elements of one help page (inline markup flattened)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: dict[str, str] = {}
        self._open: tuple[str, str, list[str]] | None = None  # (tag, id, pieces)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element_id = dict(attrs).get("id")
        if self._open is None and tag in TEXT_TAGS and element_id:
            self._open = (tag, element_id, [])

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None and tag == self._open[0]:
            self.texts[self._open[1]] = " ".join("".join(self._open[2]).split())
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[2].append(data)


def page_texts(page: Path) -> dict[str, str]:
    parser = _IdText()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser.texts


def is_spoken_pair(english: str, spanish: str) -> bool:
    """Whether a pair is a whole sentence one would read aloud, translated as a whole sentence."""
    words = english.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or not SPOKEN_SENTENCE.match(english) or NOT_SPOKEN.search(english):
        return False
    if not SPOKEN_TARGET.match(spanish) or "▸" in spanish or _shared_words(english, spanish) > 0.5:  # left in English
        return False
    return 0.6 <= len(spanish) / len(english) <= 2.0  # a partial or padded translation is not a reference


def _shared_words(english: str, spanish: str) -> float:
    """The share of the English words that the 'translation' repeats verbatim (untranslated strings)."""
    english_words = english.lower().split()
    spanish_words = set(spanish.lower().split())
    return sum(word in spanish_words for word in english_words) / len(english_words)


def aligned_pairs(help_root: Path) -> Iterator[tuple[str, str]]:
    """(english, spanish) for every text element present in both languages' copy of a page, in page order."""
    english_root, spanish_root = (help_root / HELP_ROOT / LANG_DIRS[lang] for lang in ("en", "es"))
    for english_page in sorted(english_root.rglob("*.html")):
        spanish_page = spanish_root / english_page.relative_to(english_root)
        if not spanish_page.is_file():
            continue
        spanish = page_texts(spanish_page)
        for element_id, english in page_texts(english_page).items():
            if element_id in spanish:
                yield english, spanish[element_id]


def hash_key(english: str) -> str:
    return hashlib.sha1(" ".join(english.lower().split()).encode()).hexdigest()


def human_pairs(help_root: Path, options: HumanPairOptions) -> dict[str, list[dict[str, str]]]:
    """{split: [{id, source, target}]} of the spoken-sentence pairs, one per distinct English sentence."""
    first: dict[str, str] = {}
    for english, spanish in aligned_pairs(help_root):
        if is_spoken_pair(english, spanish):
            first.setdefault(english, spanish)  # the first translation of a repeated sentence
    if not first:
        raise SimulsaError(f"no sentence pairs under {help_root / HELP_ROOT}; is it the unpacked libreoffice-help packages?")
    keyed = sorted((hash_key(english), english) for english in first)  # hash order: the split
    rows = [{"id": f"lo{key[:10]}", "source": english, "target": first[english]} for key, english in keyed]
    dev_end = options.test_size + options.dev_size
    return {"test": rows[: options.test_size], "dev": rows[options.test_size : dev_end], "train": rows[dev_end:]}


def fetch_help(scratch: Path) -> Path:
    """Unpack both help packages into scratch (installed copies are used where present); -> the root holding usr/."""
    roots = {lang: debian_package_root(package, scratch) for lang, package in PACKAGES.items()}
    if roots["en"] == roots["es"]:
        return roots["en"]
    merged = scratch / "help"  # both trees side by side under one root
    for lang, root in roots.items():
        target = merged / HELP_ROOT / LANG_DIRS[lang]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to((root / HELP_ROOT / LANG_DIRS[lang]).resolve())
    return merged


def load_human_pairs(options: HumanPairOptions) -> dict[str, list[dict[str, str]]]:
    if options.help_root is not None:
        return human_pairs(options.help_root, options)
    with tempfile.TemporaryDirectory() as scratch:
        return human_pairs(fetch_help(Path(scratch)), options)


def write_pairs(out: Path, rows: list[dict[str, str]], src_lang: str = "en", tgt_lang: str = "es") -> None:
    """Rows as a text-pair JSONL (id, source, target, src_lang, tgt_lang), written atomically."""
    lines = [json.dumps({**row, "src_lang": src_lang, "tgt_lang": tgt_lang}, ensure_ascii=False) for row in rows]
    write_text_atomic(out, "".join(line + "\n" for line in lines))
