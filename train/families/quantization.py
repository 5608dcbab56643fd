"""QLoRA loading through bitsandbytes, with a clear refusal where the hardware can't."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from simulsa.runtime.errors import ModelError
from simulsa.train.families.base import LoadOptions

# Modules kept in full precision when quantizing: audio side and output head must stay exact.
KEEP_UNQUANTIZED = ["audio_tower", "multi_modal_projector", "lm_head"]


def check_quantization_supported(options: LoadOptions) -> None:
    import torch

    if options.quantization is None:
        return
    flag = f"--load-in-{options.quantization}"
    if not torch.cuda.is_available():
        raise ModelError(f"{flag} needs a CUDA GPU (bitsandbytes); this machine has none: drop the flag to train in full precision")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(f"{flag} needs bitsandbytes: pip install 'simulsa[train]' or pip install bitsandbytes")


def quantized_load_kwargs(options: LoadOptions) -> dict[str, Any]:
    """`from_pretrained` keyword arguments for `options` (dtype, and bitsandbytes when asked)."""
    if options.quantization is None:
        return {"dtype": options.torch_dtype}
    import torch
    from transformers import BitsAndBytesConfig

    check_quantization_supported(options)
    compute_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    config = (
        BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=compute_dtype, llm_int8_skip_modules=KEEP_UNQUANTIZED)
        if options.quantization == "4bit"
        else BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=KEEP_UNQUANTIZED)
    )  # fmt: skip
    # One process per GPU under torchrun/accelerate: each loads onto its own device.
    device = int(os.environ.get("LOCAL_RANK", "0"))
    return {"dtype": compute_dtype, "quantization_config": config, "device_map": {"": device}}
