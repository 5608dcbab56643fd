"""torch -> ONNX: the audio encoder and the decoder graphs, plus the embedding table and tokenizer."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from simulsa.export.fused_decoder import FusedDecoderOptions, StateDictSource, build_fused_decoder
from simulsa.export.lm_architecture import LmArchitecture, UnsupportedArchitecture
from simulsa.export.vocabulary import KeptRows
from simulsa.export.wrappers import DecoderWrapper
from simulsa.runtime.bundle import DECODER_KINDS, FUSED_INPUTS, DecoderRecord
from simulsa.runtime.bundle_records import GraphIO
from simulsa.runtime.decoders import DEFAULT_KV_CAPACITY
from simulsa.runtime.errors import SimulsaError
from simulsa.train.families.base import SpeechLM

ONNX_OPSET = 17
ENCODER_FILE = "audio_encoder.onnx"
DECODER_FILE = "decoder.onnx"
EMBED_FILE = "embed_tokens.npy"
TOKENIZER_FILE = "tokenizer.json"

EAR_DECODER_FILE = "ear_decoder.onnx"
PROJECTOR_FILE = "projector.onnx"


@dataclasses.dataclass(frozen=True)
class LmDims:
    hidden_size: int
    num_layers: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int

    @classmethod
    def of(cls, model: SpeechLM) -> LmDims:
        config = model.text_config
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(hidden_size=config.hidden_size, num_layers=config.num_hidden_layers,
                   num_kv_heads=getattr(config, "num_key_value_heads", None) or heads, head_dim=head_dim,
                   vocab_size=model.input_embeddings().weight.shape[0])  # fmt: skip


def _export(module: torch.nn.Module, args: tuple, path: Path, names: tuple, outputs: tuple, axes: dict) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes: checked by verification
        # The TorchScript exporter: explicit dynamic axes, hierarchical node names (/lm/model/layers.0/...).
        torch.onnx.export(module, args, str(path), input_names=list(names), output_names=list(outputs),
                          dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False, do_constant_folding=True)  # fmt: skip


def _export_wrapper(wrapper: torch.nn.Module, args: tuple, path: Path) -> GraphIO:
    _export(wrapper.eval(), args, path, wrapper.input_names, wrapper.output_names, wrapper.dynamic_axes)
    return GraphIO(inputs=tuple(wrapper.input_names), outputs=tuple(wrapper.output_names))


def audio_encoder_graph(encoder: torch.nn.Module, model: SpeechLM, folder: Path) -> tuple[dict[str, GraphIO], dict[str, str]]:
    """composite, qwen2-audio: one graph (the family's wrapper) from audio features to LM embeddings."""
    io = _export_wrapper(encoder, encoder.example_inputs(model.simulsa_config.audio.n_mels), folder / ENCODER_FILE)
    return {"audio_encoder": io}, {"audio_encoder": ENCODER_FILE}


def ear_graphs(model: SpeechLM, folder: Path) -> tuple[dict[str, GraphIO], dict[str, str]]:
    """whisper-tokens: Whisper's encoder (to cross-attention K/V), its decoder step, and the projector."""
    from simulsa.export.ear_wrappers import EarDecoderWrapper, EarEncoderWrapper, EarProjectorWrapper

    encoder, decoder, projector = EarEncoderWrapper(model), EarDecoderWrapper(model), EarProjectorWrapper(model)
    io = {"audio_encoder": _export_wrapper(encoder, encoder.example_inputs(), folder / ENCODER_FILE),
          "ear_decoder": _deduped(_export_wrapper(decoder, decoder.example_inputs(), folder / EAR_DECODER_FILE),
                                  folder / EAR_DECODER_FILE),
          "projector": _export_wrapper(projector, projector.example_inputs(), folder / PROJECTOR_FILE)}  # fmt: skip
    return io, {"audio_encoder": ENCODER_FILE, "ear_decoder": EAR_DECODER_FILE, "projector": PROJECTOR_FILE}


def _whisper_weights(model: SpeechLM) -> tuple[dict[str, np.ndarray], object]:
    from simulsa.export.ear_builder import WhisperShape

    weights = {name: tensor.detach().float().numpy() for name, tensor in model.whisper.state_dict().items()}
    return weights, WhisperShape.from_config(model.whisper.config.to_dict())


def ear_graph_int8(model: SpeechLM, name: str, path: Path) -> None:
    """whisper-tokens' ear graph `name` in 8 bits, written anew from the weights by export/ear_builder.py (the same
    graph as the traced one, checked by tests/export/test_ear_builder.py): quantizing the traced graph would leave
    Whisper's tied 51,865-row table in float32, shared by the embedding and the head."""
    from simulsa.export.ear_builder import build_ear_decoder, build_ear_encoder, build_projector

    if name == PROJECTOR_FILE:
        state = {key: tensor.detach().float().numpy() for key, tensor in model.projector.state_dict().items()}
        build_projector(state, model.whisper.config.d_model, path, int8=True)
        return
    weights, shape = _whisper_weights(model)
    {ENCODER_FILE: build_ear_encoder, EAR_DECODER_FILE: build_ear_decoder}[name](weights, shape, path, int8=True)


def dedupe_constants(path: Path, min_elements: int = 1 << 20) -> int:
    """Fold identical large Constant nodes into one; returns how many copies were dropped.

    Why: the tracer writes a tensor used by two ops as two Constants (Whisper's tied token table and head:
    2 x 106 MB for Whisper-base), and onnxruntime then holds both.
    """
    import hashlib

    import onnx

    model = onnx.load(str(path))
    first: dict[tuple, str] = {}
    renamed: dict[str, str] = {}
    kept = []
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].type == onnx.AttributeProto.TENSOR:
            tensor = node.attribute[0].t
            if int(np.prod(tensor.dims)) >= min_elements:
                key = (tuple(tensor.dims), tensor.data_type, hashlib.sha256(tensor.raw_data).hexdigest())
                if key in first:
                    renamed[node.output[0]] = first[key]
                    continue
                first[key] = node.output[0]
        kept.append(node)
    if not renamed:
        return 0
    for node in kept:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    onnx.save(model, str(path))
    return len(renamed)


def _deduped(io: GraphIO, path: Path) -> GraphIO:
    dedupe_constants(path)
    return io



@dataclasses.dataclass(frozen=True)
class DecoderGraphOptions:
    kind: str = "auto"  # auto (fused where the builder knows the LM, else torchscript) | fused | torchscript
    max_length: int = 4096  # fused: the longest sequence the graph decodes (its rotary tables)
    kept_tokens: tuple[int, ...] | None = None  # a pruned vocabulary's original ids (export/vocabulary.py); fused only
    dtype: str = "float32"  # fused: the graph's compute and K/V dtype (float16 for the CUDA provider)

    def __post_init__(self) -> None:
        if self.kind not in ("auto", *DECODER_KINDS):
            raise SimulsaError(f"--decoder must be auto, {' or '.join(DECODER_KINDS)}, got {self.kind!r}")
        if self.kept_tokens is not None and self.kind == "torchscript":
            raise SimulsaError("--prune-vocab needs the fused decoder graph; leave out --decoder torchscript")
        if self.max_length < 16:
            raise SimulsaError(f"--max-length must be at least 16, got {self.max_length}")


def lm_architecture(model: SpeechLM) -> LmArchitecture:
    return LmArchitecture.from_config(model.text_config.to_dict())


def resolve_decoder_kind(model: SpeechLM, options: DecoderGraphOptions) -> str:
    """auto: fused when the builder writes this LM; an explicit `fused` for an LM it does not know fails here."""
    if options.kind == "torchscript":
        return "torchscript"
    try:
        lm_architecture(model)
    except UnsupportedArchitecture:
        if options.kind == "fused":
            raise
        return "torchscript"
    return "fused"


def write_fused_decoder(model: SpeechLM, path: Path, quantize: str, options: DecoderGraphOptions, block_size: int = 32,
                        keep_fp32: tuple[str, ...] = (), head_quantize: str | None = None
                        ) -> tuple[list[str], list[str]]:  # fmt: skip
    """The fused graph from the model's (merged) weights, quantized as it is written; returns the files and fp32 nodes."""
    weights = StateDictSource(model.lm_state_dict(), lambda t: t.detach().float().cpu().numpy())
    arch = lm_architecture(model)
    if options.kept_tokens is not None:  # the head's rows of the kept tokens only, in their new numbering
        kept = np.asarray(options.kept_tokens, dtype=np.int64)
        weights, arch = KeptRows(weights, kept), dataclasses.replace(arch, vocab_size=int(kept.size))
    graph_options = FusedDecoderOptions(quantize=quantize, block_size=block_size, max_length=options.max_length,
                                        keep_fp32=keep_fp32, head_quantize=head_quantize, dtype=options.dtype)  # fmt: skip
    return build_fused_decoder(arch, weights, graph_options, path)


def _fused_decoder(model: SpeechLM, folder: Path, options: DecoderGraphOptions) -> tuple[DecoderRecord, GraphIO]:
    files, _ = write_fused_decoder(model, folder / DECODER_FILE, "none", options)
    record = DecoderRecord(kind="fused", files=tuple(files), inputs=FUSED_INPUTS, outputs=("logits",),
                         kv_layout="(batch, kv_heads, buffer, head_dim), one buffer bound to past and present",
                         max_length=options.max_length, kv_capacity=DEFAULT_KV_CAPACITY)  # fmt: skip
    return record, GraphIO(inputs=FUSED_INPUTS, outputs=("logits",))  # the K/V are bound by the kv name patterns


def _torchscript_decoder(model: SpeechLM, folder: Path, options: DecoderGraphOptions) -> tuple[DecoderRecord, GraphIO]:
    dims = LmDims.of(model)
    decoder = DecoderWrapper(model, dims.num_layers)
    io = _export_wrapper(decoder, decoder.example_inputs(dims.hidden_size, dims.num_kv_heads, dims.head_dim), folder / DECODER_FILE)
    record = DecoderRecord(kind="torchscript", files=(DECODER_FILE,), inputs=io.inputs[:3], outputs=("logits",),
                           kv_layout="(batch, kv_heads, past, head_dim); present = past + new, returned as new arrays")
    return record, io  # io: every input and output; the runtime binds the K/V by the kv name patterns


DECODER_GRAPHS = {"fused": _fused_decoder, "torchscript": _torchscript_decoder}


def export_graphs(model: SpeechLM, folder: Path, audio_graphs, decoder: DecoderGraphOptions = DecoderGraphOptions()
                  ) -> tuple[dict[str, GraphIO], dict[str, str], DecoderRecord]:  # fmt: skip
    """Write the family's audio graphs (`audio_graphs`, export/families.py) and the decoder graph; return their
    input/output names, files and the decoder record."""
    io, files = audio_graphs(model, folder)
    record, io["decoder"] = DECODER_GRAPHS[resolve_decoder_kind(model, decoder)](model, folder, decoder)
    return io, {**files, "decoder": DECODER_FILE}, record


def write_embeddings(model: SpeechLM, folder: Path, kept_tokens: tuple[int, ...] | None = None) -> None:
    table = model.embedding_table().detach().float().cpu().numpy()  # (V, H), scaled as the LM reads it
    np.save(folder / EMBED_FILE, table if kept_tokens is None else table[np.asarray(kept_tokens)])  # (K, H) when pruned


def write_tokenizer(model: SpeechLM, folder: Path, decode_only: bool = True) -> bool:
    """Only tokenizer.json travels: the runtime reads it with the `tokenizers` library. Returns whether merges were dropped.

    The runtime only decodes (prompt ids are precomputed in bundle.json), and decoding a BPE
    tokenizer needs its vocabulary, never its merges. Dropping the merges keeps every id and every
    decoded string, and shrinks Gemma 3's loaded tokenizer from ~300 MB resident to ~40 MB (measured).
    """
    with tempfile.TemporaryDirectory() as scratch:
        model.tokenizer.save_pretrained(scratch)
        source = Path(scratch) / TOKENIZER_FILE
        if not source.is_file():
            from simulsa.runtime.errors import ModelError

            raise ModelError("the model's tokenizer has no tokenizer.json (a slow tokenizer?); convert it to a fast one")
        spec = json.loads(source.read_text(encoding="utf-8"))
        dropped = decode_only and spec["model"].get("type") == "BPE" and bool(spec["model"].get("merges"))
        if dropped:
            spec["model"]["merges"] = []
        (folder / TOKENIZER_FILE).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return dropped
