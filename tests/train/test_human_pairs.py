"""LibreOffice help's human translations: pairs matched by (page, id), filtered to spoken sentences, split by hash."""

from __future__ import annotations

import json

import pytest

from simulsa.runtime.errors import SimulsaError
from simulsa.train.corpus import human_pairs
from simulsa.train.corpus.human_pairs import HumanPairOptions, is_spoken_pair

PAGE = """<html><body><h1 id="hd_1">{title}</h1>
<p id="par_1" class="paragraph">{first}</p>
<p id="par_2">{second} <span class="emph">{emph}</span>.</p>
<p id="par_3">{menu}</p>
<p>no id here, never matched</p></body></html>"""
EN = {"title": "Saving documents", "first": "Click the button to save the current document.",
      "second": "The dialog shows every file in the", "emph": "selected folder", "menu": "Choose File - Save As."}
ES = {"title": "Guardar documentos", "first": "Pulse el botón para guardar el documento actual.",
      "second": "El diálogo muestra todos los archivos de la", "emph": "carpeta seleccionada",
      "menu": "Vaya a Archivo ▸ Guardar como."}


def help_tree(root, pages=3):
    for lang, texts in (("en-US", EN), ("es", ES)):
        for k in range(pages):
            page = root / "usr/share/libreoffice/help" / lang / "text" / f"page{k}.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            numbered = {key: value.replace("document", f"document {'abcdefgh'[k]}") if key == "first" else value
                        for key, value in texts.items()}  # fmt: skip
            page.write_text(PAGE.format(**numbered), encoding="utf-8")
    return root


def test_pairs_match_by_page_and_id_and_keep_inline_text(tmp_path):
    pairs = list(human_pairs.aligned_pairs(help_tree(tmp_path)))
    assert ("The dialog shows every file in the selected folder.",
            "El diálogo muestra todos los archivos de la carpeta seleccionada.") in pairs  # fmt: skip
    assert len(pairs) == 3 * 4  # four id'd elements a page; the paragraph without an id is not matched


@pytest.mark.parametrize(("english", "spanish", "spoken"), [
    ("Click the button to save the current document.", "Pulse el botón para guardar el documento actual.", True),
    ("Choose File - Save As.", "Vaya a Archivo ▸ Guardar como.", False),  # a menu path
    ("Saving documents", "Guardar documentos", False),  # a heading, not a sentence
    ("Specifies the data contained in a ComboBox.", "Specifies the data contained in a ComboBox.", False),  # CamelCase
    ("Enter the height of the envelope here.", "Enter the height of the envelope here.", False),  # left untranslated
    ("Enter the height of the envelope here.", "Defina.", False),  # not a whole translation
])  # fmt: skip
def test_only_whole_spoken_sentences_are_kept(english, spanish, spoken):
    assert is_spoken_pair(english, spanish) is spoken


def test_the_split_is_deterministic_disjoint_and_sized(tmp_path):
    root = help_tree(tmp_path, pages=8)
    options = HumanPairOptions(test_size=2, dev_size=1, help_root=root)
    splits = human_pairs.load_human_pairs(options)
    sources = {name: [row["source"] for row in rows] for name, rows in splits.items()}
    assert [len(sources[name]) for name in ("test", "dev", "train")] == [2, 1, 6]  # 8 first sentences + 1 on every page
    assert len(set().union(*sources.values())) == 9
    assert human_pairs.load_human_pairs(options) == splits  # the same split every time


def test_corpus_human_writes_the_three_splits(tmp_path):
    from typer.testing import CliRunner

    from simulsa.cli.app import app

    root = help_tree(tmp_path / "tree", pages=8)
    result = CliRunner().invoke(app, ["corpus-human", "--out", str(tmp_path / "human"), "--help-root", str(root),
                                      "--test-size", "2", "--dev-size", "1"])  # fmt: skip
    assert result.exit_code == 0 and "test.jsonl: 2 pairs, dev.jsonl: 1 pairs, train.jsonl: 6 pairs" in result.output
    splits = human_pairs.load_human_pairs(HumanPairOptions(test_size=2, dev_size=1, help_root=root))
    rows = [json.loads(line) for line in (tmp_path / "human" / "test.jsonl").read_text().splitlines()]
    assert [r["source"] for r in rows] == [r["source"] for r in splits["test"]]
    assert rows[0]["tgt_lang"] == "es" and rows[0]["id"].startswith("lo")


def test_bad_options_name_the_value(tmp_path):
    with pytest.raises(SimulsaError, match="--dev-size -1 must be >= 0"):
        HumanPairOptions(dev_size=-1)
    with pytest.raises(SimulsaError, match="has no usr/share/libreoffice/help/es"):
        HumanPairOptions(help_root=tmp_path)
