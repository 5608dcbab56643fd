"""LoRA on the LM (peft), full training of the family's extra modules (the composite projector)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from simulsa.runtime.errors import ModelError
from simulsa.train.families.base import SpeechLM
from simulsa.train.families.config import SimulsaConfig, write_config

ADAPTER_DIR = "adapter"
TRAINED_MODULES_FILE = "trained_modules.safetensors"


@dataclasses.dataclass(frozen=True)
class LoraOptions:
    r: int = 8  # rank (paper: 8)
    alpha: int = 32  # scaling numerator (paper: 32)
    dropout: float = 0.05  # dropout on the LoRA input

    def __post_init__(self) -> None:
        if self.r <= 0:
            raise ModelError(f"--lora-r must be positive, got {self.r}")
        if self.alpha <= 0:
            raise ModelError(f"--lora-alpha must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ModelError(f"--lora-dropout must be in [0, 1), got {self.dropout}")


def attach_lora(model: SpeechLM, options: LoraOptions) -> SpeechLM:
    """Wrap the LM in a fresh adapter; the family's `trained_fully` modules stay trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
                        target_modules=model.lora_target_modules(), bias="none")  # fmt: skip
    setattr(model, model.peft_root, get_peft_model(model.lm_module, config))
    _unfreeze_fully_trained(model)
    return model


def has_adapter(model: SpeechLM) -> bool:
    return hasattr(model.lm_module, "peft_config")


def load_trained(base: SpeechLM, folder: Path, config: SimulsaConfig, trainable: bool) -> SpeechLM:
    """Apply a train output's adapter and fully trained modules to its base model."""
    from peft import PeftModel

    if config.adapter is not None or not config.trained_modules:  # a projector-only output names no adapter
        adapter = folder / (config.adapter or ADAPTER_DIR)
        if not adapter.is_dir():
            raise ModelError(f"{folder}: adapter folder {adapter.name!r} is missing; the training output is incomplete")
        setattr(base, base.peft_root, PeftModel.from_pretrained(base.lm_module, str(adapter), is_trainable=trainable))
    if config.trained_modules:
        state = load_file(str(folder / config.trained_modules))
        _, unexpected = base.load_state_dict(state, strict=False)
        if unexpected:
            raise ModelError(f"{folder}: {config.trained_modules} holds unknown weights {unexpected[:3]}")
    if trainable:
        _unfreeze_fully_trained(base)
    return base


def _unfreeze_fully_trained(model: SpeechLM) -> None:
    for name, param in model.named_parameters():
        if name.startswith(model.trained_fully):
            param.requires_grad_(True)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def save_trained(model: SpeechLM, out: Path, base_model: str) -> None:
    """Write adapter, fully trained modules and a simulsa.json that points at `base_model` (last: it marks completion)."""
    model.lm_module.save_pretrained(str(out / ADAPTER_DIR))
    extra = {k: v for k, v in trainable_state(model).items() if k.startswith(model.trained_fully)}
    if extra:
        save_file(extra, str(out / TRAINED_MODULES_FILE))
    model.tokenizer.save_pretrained(str(out / "tokenizer"))
    config = dataclasses.replace(model.simulsa_config, base_model=base_model, adapter=ADAPTER_DIR,
                                 trained_modules=TRAINED_MODULES_FILE if extra else None)  # fmt: skip
    write_config(out, config)
