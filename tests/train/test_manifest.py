import json

import pytest

from simulsa.runtime.errors import ManifestError
from simulsa.runtime.manifest import read_manifest, write_manifest


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_relative_audio_resolved_and_written_back(tmp_path):
    (tmp_path / "a").mkdir()
    manifest = _write(tmp_path / "a" / "m.jsonl", [json.dumps({"id": "x", "audio": "w/x.wav", "target": "hola"})])
    rows = read_manifest(manifest)
    assert rows[0].audio == (tmp_path / "a" / "w" / "x.wav").resolve()
    out = tmp_path / "b" / "m.jsonl"
    out.parent.mkdir()
    write_manifest(out, rows)
    assert json.loads(out.read_text())["audio"] == "../a/w/x.wav"
    assert read_manifest(out)[0].audio.resolve() == rows[0].audio.resolve()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"m.jsonl:1: not a JSON object"),
        ("[1, 2]", r"expected a JSON object"),
        (json.dumps({"id": "x", "audio": "x.wav"}), r"missing or non-string field\(s\) target"),
        (json.dumps({"id": "x", "audio": "x.wav", "target": "  "}), r"empty target for id 'x'"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, line, message):
    with pytest.raises(ManifestError, match=message):
        read_manifest(_write(tmp_path / "m.jsonl", [line]))


def test_duplicate_ids_and_empty_manifest(tmp_path):
    row = json.dumps({"id": "x", "audio": "x.wav", "target": "a"})
    with pytest.raises(ManifestError, match="m.jsonl:2: duplicate id 'x'"):
        read_manifest(_write(tmp_path / "m.jsonl", [row, row]))
    with pytest.raises(ManifestError, match="has no rows"):
        read_manifest(_write(tmp_path / "e.jsonl", [""]))


def test_simulsa_rows_may_have_empty_targets(tmp_path):
    record = {"orig_id": "x", "truncate_s": 0.7, "kept_tokens": 0, "full_tokens": 5}
    manifest = _write(tmp_path / "m.jsonl", [json.dumps({"id": "x#s", "audio": "x.wav", "target": "", "simulsa": record})])
    assert read_manifest(manifest)[0].simulsa == record
