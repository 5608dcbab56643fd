"""What the fused decoder builder needs to know about an LM, read from its transformers `config.json` (a dict).

torch-free: the builder and this record also serve the default's build on a runtime-only install.
Adding an LM architecture means one entry in ARCHITECTURES (its traits) — the graph code reads traits,
never architecture names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from simulsa.runtime.errors import SimulsaError


class UnsupportedArchitecture(SimulsaError):
    """An LM the fused builder does not write (the TorchScript decoder is used instead)."""


@dataclasses.dataclass(frozen=True)
class Traits:
    """How an architecture family differs from plain Llama."""

    qkv_bias: bool = False  # Qwen2: q/k/v projections have a bias
    qk_norm: bool = False  # Gemma 3: RMSNorm over head_dim on queries and keys before rotary
    sandwich_norms: bool = False  # Gemma 2/3: a norm after attention and after the MLP as well as before
    norm_offset: float = 0.0  # Gemma: RMSNorm multiplies by (1 + weight)
    activation: str = "silu"  # the MLP gate's activation: silu | gelu_tanh
    scale_from_query_pre_attn_scalar: bool = False  # Gemma: softmax scale = query_pre_attn_scalar ** -0.5
    scaled_embeddings: bool = False  # Gemma: the embedding module multiplies each row by sqrt(hidden)


ARCHITECTURES: dict[str, Traits] = {
    "llama": Traits(),  # also SmolLM2
    "qwen2": Traits(qkv_bias=True),  # Qwen2 / Qwen2.5 LMs and Qwen2-Audio's LM
    "gemma3_text": Traits(qk_norm=True, sandwich_norms=True, norm_offset=1.0, activation="gelu_tanh",
                          scale_from_query_pre_attn_scalar=True, scaled_embeddings=True),

}
ACTIVATIONS = {"silu": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_tanh": "gelu_tanh"}  # config name -> ours


@dataclasses.dataclass(frozen=True)
class LmArchitecture:
    model_type: str
    traits: Traits
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    rms_eps: float
    attn_scale: float  # the softmax scale of every layer
    rope_thetas: tuple[float, ...]  # per layer
    rope_factor: float  # linear position scaling (1.0: none)
    windows: tuple[int, ...]  # per layer: keys a query sees (sliding attention), -1 for full attention
    tie_embeddings: bool

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LmArchitecture:
        model_type = config.get("model_type")
        if model_type not in ARCHITECTURES:
            raise UnsupportedArchitecture(f"the fused decoder builder does not know model_type {model_type!r} "
                                          f"(known: {', '.join(ARCHITECTURES)})")  # fmt: skip
        traits = ARCHITECTURES[model_type]
        heads, hidden, layers = config["num_attention_heads"], config["hidden_size"], config["num_hidden_layers"]
        head_dim = config.get("head_dim") or hidden // heads
        _check_supported(config, traits)
        layer_types = tuple(config.get("layer_types") or ["full_attention"] * layers)
        window = config.get("sliding_window") or -1
        scale = config["query_pre_attn_scalar"] ** -0.5 if traits.scale_from_query_pre_attn_scalar else head_dim**-0.5
        thetas, factor = _rope(config, layer_types)
        return cls(model_type=model_type, traits=dataclasses.replace(traits, activation=ACTIVATIONS[_activation(config)]),
                   hidden_size=hidden, num_layers=layers, num_heads=heads,
                   num_kv_heads=config.get("num_key_value_heads") or heads, head_dim=head_dim,
                   intermediate_size=config["intermediate_size"], vocab_size=config["vocab_size"],
                   rms_eps=float(config["rms_norm_eps"]), attn_scale=float(scale), rope_thetas=thetas, rope_factor=factor,
                   windows=tuple(window if kind == "sliding_attention" else -1 for kind in layer_types),
                   tie_embeddings=bool(config.get("tie_word_embeddings", False)))  # fmt: skip

    @property
    def embed_scale(self) -> float:
        """What the LM's embedding module multiplies looked-up rows by (the bundle's table has it applied)."""
        return self.hidden_size**0.5 if self.traits.scaled_embeddings else 1.0

    @property
    def qkv_width(self) -> int:
        return (self.num_heads + 2 * self.num_kv_heads) * self.head_dim

    def parameter_count(self) -> int:
        """Weights of the graph (the head included, the input embedding table not)."""
        h, i = self.hidden_size, self.intermediate_size
        layer = h * self.qkv_width + self.num_heads * self.head_dim * h + 3 * h * i
        return self.num_layers * layer + self.vocab_size * h


def _activation(config: dict) -> str:
    name = config.get("hidden_activation") or config.get("hidden_act") or "silu"
    if name not in ACTIVATIONS:
        raise UnsupportedArchitecture(f"the fused decoder builder has no activation {name!r}")
    return name


def _check_supported(config: dict, traits: Traits) -> None:
    unsupported = {"attn_logit_softcapping": config.get("attn_logit_softcapping"),
                   "final_logit_softcapping": config.get("final_logit_softcapping"),
                   "partial_rotary_factor": config.get("partial_rotary_factor", 1.0) != 1.0 or None,
                   "mlp_bias": config.get("mlp_bias") or None,
                   "attention_bias": (config.get("attention_bias") and not traits.qkv_bias) or None}  # fmt: skip
    present = [name for name, value in unsupported.items() if value]
    if present:
        raise UnsupportedArchitecture(f"the fused decoder builder does not handle {', '.join(present)}")


def _rope(config: dict, layer_types: tuple[str, ...]) -> tuple[tuple[float, ...], float]:
    """Per-layer rotary bases and the linear scaling factor, from either config style.

    transformers 5 writes `rope_parameters` (one dict, or one per layer type as Gemma 3 does);
    older configs write `rope_theta` + `rope_scaling` (+ Gemma's `rope_local_base_freq`).
    """
    params = config.get("rope_parameters")
    if params is None:
        params = {"rope_theta": config.get("rope_theta", 10000.0), **(config.get("rope_scaling") or {})}
        if config.get("rope_local_base_freq"):
            params = {"full_attention": params, "sliding_attention": {"rope_theta": config["rope_local_base_freq"]}}
    per_type = params if "rope_theta" not in params else {kind: params for kind in set(layer_types)}
    factors = set()
    for kind, entry in per_type.items():
        rope_type = entry.get("rope_type") or entry.get("type") or "default"
        if rope_type not in ("default", "linear"):
            raise UnsupportedArchitecture(f"the fused decoder builder has no {rope_type!r} rotary scaling ({kind} layers)")
        factors.add(float(entry.get("factor", 1.0)) if rope_type == "linear" else 1.0)
    if len(factors) > 1:  # Gemma 3 4B+: linear scaling on global layers only; not a case the families use yet
        raise UnsupportedArchitecture("the fused decoder builder needs one rotary scaling factor for all layers")
    return tuple(float(per_type[kind]["rope_theta"]) for kind in layer_types), factors.pop()
