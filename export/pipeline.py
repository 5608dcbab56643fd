"""`simulsa export`: checkpoint in, verified self-describing bundle out.

1. load the checkpoint and merge its LoRA adapter into the base weights;
2. export the fp32 graphs, embedding table and tokenizer; describe them in bundle.json;
3. for int8 / int4: quantize the graphs and the embedding table (a fused decoder is rewritten quantized);
4. verify the fp32 bundle against torch (fail on a mismatch), then measure the quantized bundle;
5. rename the finished folder into place (an interrupted export leaves nothing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from simulsa.export.bundle_writer import bundle_record, prompt_record, write_notices
from simulsa.export.families import export_family
from simulsa.export.graphs import (
    DECODER_FILE,
    EMBED_FILE,
    TOKENIZER_FILE,
    DecoderGraphOptions,
    export_graphs,
    resolve_decoder_kind,
    write_embeddings,
    write_fused_decoder,
    write_tokenizer,
)
from simulsa.export.quantize import (
    ACCURACY_LEVEL,
    EMBED_SCALES_FILE,
    ENCODER_BITS,
    QuantizeOptions,
    quantize_embeddings,
    quantize_graph,
    weights_bytes,
)
from simulsa.export.verify import VerificationReport, verify_bundle
from simulsa.export.vocabulary import VocabMap, prune_record, vocabulary_for
from simulsa.runtime.bundle import BUNDLE_JSON, load_bundle, write_bundle_json
from simulsa.runtime.bundle_records import BundleRecord, FilesRecord, QuantizationRecord, SourceRecord, TokenizerRecord
from simulsa.runtime.errors import SimulsaError
from simulsa.runtime.files import atomic_dir, check_output_free
from simulsa.runtime.onnx_model import OnnxSpeechModel
from simulsa.train.families import load_speech_lm, resolve_config
from simulsa.train.families.base import SpeechLM
from simulsa.train.lora import has_adapter

VERIFICATION_FILE = "verification.json"


class ExportError(SimulsaError):
    """An export that could not be completed or verified."""


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    checkpoint: str  # a `simulsa train` output or a model folder
    out: Path
    quantize: QuantizeOptions = QuantizeOptions()
    verify: bool = True
    force: bool = False
    full_tokenizer: bool = False  # keep the BPE merges (the runtime never encodes; others may want to)
    decoder: DecoderGraphOptions = DecoderGraphOptions()  # which decoder graph (fused or TorchScript) and its length
    prune_vocab: tuple[Path, ...] = ()  # keep only the tokens these files give (export/vocabulary.py); () keeps all

    def __post_init__(self) -> None:
        for path in self.prune_vocab:
            if not Path(path).is_file():
                raise ExportError(f"--prune-vocab {str(path)!r} is not a file; give a text file or a .npy of token ids")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    out: Path
    reports: list[VerificationReport]
    fp32_bytes: int  # weights of the fp32 graphs + embedding table
    bundle_bytes: int  # weights in the written bundle

    @property
    def compression(self) -> float:
        return self.fp32_bytes / self.bundle_bytes


def load_merged(checkpoint: str) -> tuple[SpeechLM, SourceRecord]:
    """The checkpoint's model with its adapter merged (plain weights), and where it came from."""
    config, where = resolve_config(checkpoint)
    model = load_speech_lm(checkpoint).eval()
    if has_adapter(model):
        setattr(model, model.peft_root, model.lm_module.merge_and_unload())
    return model, SourceRecord(model=where, base_model=config.base_model, adapter=config.adapter)


def _write_fp32(model: SpeechLM, folder: Path, source: SourceRecord, options: ExportOptions,
                vocab_map: VocabMap | None) -> BundleRecord:  # fmt: skip
    folder.mkdir(exist_ok=True)
    family = export_family(model)
    io, graph_files, decoder = export_graphs(model, folder, family.audio_graphs, options.decoder)
    write_embeddings(model, folder, options.decoder.kept_tokens)
    merges_dropped = write_tokenizer(model, folder, decode_only=not options.full_tokenizer)
    source = dataclasses.replace(source, notices=tuple(write_notices(model, folder)))  # terms that travel with the weights
    files = FilesRecord(**graph_files, embed_tokens=EMBED_FILE, tokenizer=TOKENIZER_FILE)
    record = bundle_record(model, family.audio_record(model), io, files, decoder,
                           TokenizerRecord(decode_only=merges_dropped), source)  # fmt: skip
    if vocab_map is not None:
        chosen_by = "the tokens of " + ", ".join(p.name for p in options.prune_vocab) + ", the prompt, bytes, short Latin pieces"
        record = prune_record(record, vocab_map, folder, chosen_by)
    return write_bundle_json(folder, record)


def _with_vocabulary(model: SpeechLM, options: ExportOptions) -> tuple[ExportOptions, VocabMap | None]:
    """The options with the kept tokens in the decoder's options (--prune-vocab), and their map; as given without it."""
    if not options.prune_vocab:
        return options, None
    if resolve_decoder_kind(model, options.decoder) != "fused":
        raise ExportError("--prune-vocab needs the fused decoder graph, which does not know this LM; export without it")
    vocab_map = vocabulary_for(model.tokenizer.backend_tokenizer, options.prune_vocab, prompt_record(model),
                               model.input_embeddings().weight.shape[0])  # fmt: skip
    decoder = dataclasses.replace(options.decoder, kept_tokens=tuple(int(i) for i in vocab_map.kept))
    return dataclasses.replace(options, decoder=decoder), vocab_map


def _quantize_graph(model: SpeechLM, fp32: Path, folder: Path, name: str, record: BundleRecord,
                    options: QuantizeOptions, kept_tokens: tuple[int, ...] | None) -> list[str]:  # fmt: skip
    """One graph at the mode's bits (audio graphs at ENCODER_BITS); a fused decoder is rewritten from the weights."""
    decoder = record.decoder
    if name == DECODER_FILE and decoder.kind == "fused":
        graph = DecoderGraphOptions("fused", decoder.max_length, kept_tokens, dtype=options.dtype)
        _, kept = write_fused_decoder(model, folder / name, options.mode, graph, options.block_size, options.keep_fp32,
                                      options.head)  # fmt: skip
        return kept
    family = export_family(model)
    if name in family.written_int8(options.ear):  # audio graphs written anew in 8 bits from the weights (export/families.py)
        family.int8_writer(model, name, folder / name)
        return []
    bits = options.bits if name == DECODER_FILE else ENCODER_BITS
    return quantize_graph(fp32 / name, folder / name, options, bits)


def _write_quantized(model: SpeechLM, fp32: Path, folder: Path, record: BundleRecord, options: QuantizeOptions,
                     kept_tokens: tuple[int, ...] | None) -> None:  # fmt: skip
    quantized = export_family(model).quantized(options.ear)
    kept = {name: tuple(_quantize_graph(model, fp32, folder, name, record, options, kept_tokens)) for name in quantized}
    table, scales = quantize_embeddings(np.load(fp32 / EMBED_FILE))
    np.save(folder / EMBED_FILE, table)
    np.save(folder / EMBED_SCALES_FILE, scales)
    roles = dataclasses.asdict(record.files).values()
    graphs = [name for name in roles if name and name.endswith(".onnx") and name not in quantized]
    vocabulary = [record.vocabulary.file] if record.vocabulary else []
    for name in [TOKENIZER_FILE, *graphs, *record.source.notices, *vocabulary]:
        shutil.copy(fp32 / name, folder / name)
    quantization = QuantizationRecord(
        mode=options.mode, bits=options.bits, block_size=options.block_size, head=options.head or options.mode,
        method=f"onnxruntime MatMulNBits: {options.bits}-bit symmetric decoder weights ({ENCODER_BITS}-bit audio graphs) "
               f"in blocks of {options.block_size}, accuracy_level {ACCURACY_LEVEL} (int8 activations and dot products)",
        ops=("MatMul",), graphs=tuple(quantized), keep_fp32_patterns=tuple(options.keep_fp32), fp32_nodes=kept,
        embed_tokens="int8 rows x per-row float32 scales (embed_scales.npy)")  # fmt: skip
    files = dataclasses.replace(record.files, embed_scales=EMBED_SCALES_FILE)
    decoder = dataclasses.replace(record.decoder, dtype=options.dtype)
    write_bundle_json(folder, dataclasses.replace(record, files=files, decoder=decoder, quantization=quantization))


def _verified(model: SpeechLM, folder: Path, precision: str, kept_tokens: tuple[int, ...] | None) -> VerificationReport:
    report = verify_bundle(model, OnnxSpeechModel(load_bundle(folder)), precision, kept_tokens)
    if not report.passed:
        raise ExportError(f"fp32 parity failed; the bundle was not written:\n{report.table()}")
    return report


def run_export(options: ExportOptions, on_step: Callable[[str], None] | None = None) -> ExportResult:
    """The numbered steps of the module docstring; `on_step(name)` is told as each step starts (default: a tqdm bar)."""
    check_output_free(options.out, options.force)
    resolve_config(options.checkpoint)  # a bad checkpoint fails now, before any progress display
    mode = options.quantize.mode
    quantized = mode != "none"  # int8 or int4: a quantized bundle beside the checked fp32 one
    steps = ["load + merge", "export fp32", *([f"quantize {mode}"] if quantized else []),
             *(["verify fp32"] if options.verify else []),
             *([f"verify {mode}"] if quantized and options.verify else [])]  # fmt: skip
    with _step_reporter(steps, on_step) as step:
        step("load + merge")
        model, source = load_merged(options.checkpoint)
        options, vocab_map = _with_vocabulary(model, options)
        if options.quantize.dtype != "float32" and resolve_decoder_kind(model, options.decoder) != "fused":
            raise ExportError(f"--dtype {options.quantize.dtype} needs the fused decoder graph, which does not know "
                              "this LM (or --decoder torchscript was asked for); export without --dtype")  # fmt: skip
        kept_tokens = options.decoder.kept_tokens
        reports: list[VerificationReport] = []
        with atomic_dir(options.out, options.force) as tmp:
            fp32 = tmp / "fp32" if quantized else tmp
            step("export fp32")
            record = _write_fp32(model, fp32, source, options, vocab_map)
            fp32_bytes = weights_bytes(fp32)
            if quantized:  # quantized before the fp32 check so that the two checks run together at the end
                step(f"quantize {mode}")
                _write_quantized(model, fp32, tmp, record, options.quantize, kept_tokens)
            if options.verify:
                step("verify fp32")
                reports.append(_verified(model, fp32, "fp32", kept_tokens))
            if quantized:
                shutil.rmtree(fp32)
                if options.verify:
                    step(f"verify {mode}")
                    label = mode if options.quantize.dtype == "float32" else f"{mode} {options.quantize.dtype}"
                    reports.append(verify_bundle(model, OnnxSpeechModel(load_bundle(tmp)), label, kept_tokens))
            _finish(tmp, reports)
    return ExportResult(options.out, reports, fp32_bytes, weights_bytes(options.out))


@contextlib.contextmanager
def _step_reporter(steps: list[str], on_step: Callable[[str], None] | None) -> Iterator[Callable[[str], None]]:
    """`on_step` as given, or one tqdm bar over the steps (closed however the export ends)."""
    if on_step is not None:
        yield on_step
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=len(steps), desc="simulsa export", unit="step")
    started = False

    def tqdm_step(name: str) -> None:
        nonlocal started
        bar.update(int(started))  # the previous step is done
        started = True
        bar.set_postfix_str(name)

    try:
        yield tqdm_step
        bar.update(1)
    finally:
        bar.close()


def _finish(folder: Path, reports: list[VerificationReport]) -> None:
    """Record the verification in the bundle and re-hash, so bundle.json covers verification.json too."""
    record = BundleRecord.from_json(json.loads((folder / BUNDLE_JSON).read_text()))
    (folder / VERIFICATION_FILE).write_text(json.dumps([r.to_json() for r in reports], indent=2) + "\n")
    write_bundle_json(folder, record)
