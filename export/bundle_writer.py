"""bundle.json: everything the runtime needs to know, and the sha256 of every file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from simulsa.export.graphs import LmDims
from simulsa.runtime import __version__
from simulsa.runtime.bundle import KV_RECORD, SCHEMA_VERSION
from simulsa.runtime.bundle_records import (
    AudioRecord,
    BundleRecord,
    DecoderRecord,
    Dims,
    FilesRecord,
    GraphIO,
    PromptRecord,
    QuantizationRecord,
    SourceRecord,
    TokenizerRecord,
)
from simulsa.train.families.base import SpeechLM
from simulsa.train.families.notices import copy_notices


def prompt_record(model: SpeechLM) -> PromptRecord:
    tokens = model.tokenize_row("", None, None, with_end=False)
    return PromptRecord(template=model.simulsa_config.prompt.to_json(), prefix_ids=tuple(tokens.prefix_ids),
                        suffix_ids=tuple(tokens.suffix_ids), end_id=model.end_token_id(),
                        eos_id=model.tokenizer.eos_token_id, pad_id=model.tokenizer.pad_token_id)  # fmt: skip


def dims_record(model: SpeechLM) -> Dims:
    return Dims(**dataclasses.asdict(LmDims.of(model)))


def bundle_record(model: SpeechLM, audio: AudioRecord, io: dict[str, GraphIO], files: FilesRecord, decoder: DecoderRecord,
                  tokenizer: TokenizerRecord, source: SourceRecord) -> BundleRecord:  # fmt: skip
    """The fp32 bundle's record (export/pipeline.py replaces `quantization` and `files` for int8/int4)."""
    return BundleRecord(schema_version=SCHEMA_VERSION, created_by=f"simulsa {__version__}", family=model.family,
                        dims=dims_record(model), audio=audio, prompt=prompt_record(model), files=files, io=io, kv=KV_RECORD,
                        decoder=decoder, quantization=QuantizationRecord(mode="none"), tokenizer=tokenizer,
                        source=source)  # fmt: skip


def write_notices(model: SpeechLM, folder: Path) -> list[str]:
    """The base weights' licence/notice files, as `<part>.<name>` beside bundle.json (hashed like every file)."""
    names = []
    for part, files in sorted(model.notices.items()):
        names += copy_notices(files, folder, f"{part}." if part else "")
    return names
