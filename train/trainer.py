"""`simulsa train`: LoRA / QLoRA SFT on a manifest with the transformers Trainer.

The Trainer brings gradient accumulation, mixed precision, checkpoints with optimizer,
scheduler, RNG and data-order state, exact resume, and multi-GPU through `torchrun` or
`accelerate launch`; simulsa adds only what is specific to a speech LM: its batches,
a target-only loss, and checkpoints that hold just the trained weights.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from simulsa.runtime.errors import ModelError, SimulsaError
from simulsa.runtime.files import check_output_free
from simulsa.runtime.manifest import read_manifest
from simulsa.train.data import (
    MixedDataset,
    SpeechCollator,
    SpeechDataset,
    TextPairDataset,
    check_rows,
    read_text_pairs,
    text_rows_for,
)
from simulsa.train.families import base_model_of, load_speech_lm
from simulsa.train.families.base import LoadOptions, SpeechLM
from simulsa.train.families.quantization import check_quantization_supported
from simulsa.train.lora import LoraOptions, attach_lora, has_adapter, save_trained, trainable_state
from simulsa.train.plots import plot_loss

CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_WEIGHTS = "model.safetensors"  # transformers' SAFE_WEIGHTS_NAME: here only the trained tensors
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    model: str  # model folder, hub id, or a `simulsa train` output to continue from
    train_manifest: Path
    out: Path
    dev_manifest: Path | None = None
    epochs: float = 2.0  # paper: 2
    max_steps: int | None = None  # overrides epochs when set
    batch_size: int = 8  # per device
    grad_accum: int = 1  # effective batch = batch_size * grad_accum * GPUs (paper: 128)
    lr: float = 1e-4  # paper: 1e-4
    weight_decay: float = 0.1  # paper: 0.1
    warmup_ratio: float = 0.03  # linear warm-up share of the steps
    lora: LoraOptions = LoraOptions()
    quantization: str | None = None  # "4bit" / "8bit": QLoRA
    precision: str = "auto"  # auto: bf16 on GPUs that have it, else fp32
    gradient_checkpointing: bool = False
    group_by_length: bool = True  # batches of similar length: random batches of this corpus are 25% padding
    text_train: Path | None = None  # text pairs (simulsa corpus-text) mixed in as text rows
    text_fraction: float = 0.5  # share of the training rows that are text rows, when text_train is given
    save_steps: int = 500  # checkpoint every N optimizer steps
    save_total_limit: int = 2  # checkpoints kept
    logging_steps: int = 10
    num_workers: int = 0  # data-loading processes
    seed: int = 0
    resume: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        checks = {
            "--epochs": self.epochs > 0, "--batch-size": self.batch_size > 0, "--grad-accum": self.grad_accum > 0,
            "--lr": self.lr > 0, "--weight-decay": self.weight_decay >= 0, "--save-steps": self.save_steps > 0,
            "--logging-steps": self.logging_steps > 0, "--warmup-ratio": 0 <= self.warmup_ratio < 1,
            "--max-steps": self.max_steps is None or self.max_steps > 0, "--num-workers": self.num_workers >= 0,
            "--text-fraction": 0 < self.text_fraction < 1,
        }  # fmt: skip
        for flag, ok in checks.items():
            if not ok:
                raise SimulsaError(f"{flag} is out of range, got {getattr(self, _field_of(flag))}")
        if self.precision not in PRECISIONS:
            raise SimulsaError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.resume and self.force:
            raise SimulsaError("--resume and --force contradict each other: resume keeps the output, force replaces it")


def _field_of(flag: str) -> str:
    return {"--lr": "lr", "--grad-accum": "grad_accum"}.get(flag, flag[2:].replace("-", "_"))


@dataclasses.dataclass(frozen=True)
class TrainResult:
    out: Path
    steps: int
    train_loss: float
    dev_loss: float | None
    seconds: float
    samples_per_second: float


class SimulsaTrainer(Trainer):
    """Checkpoints hold only the trained tensors (LoRA + projector), not the frozen base."""

    def __init__(self, *args, group_by_length: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.group_by_length = group_by_length

    def _get_train_sampler(self, train_dataset=None):
        """transformers' length-grouped sampler, fed the lengths the dataset knows without loading audio."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.group_by_length:
            return super()._get_train_sampler(train_dataset)
        from transformers.trainer_pt_utils import LengthGroupedSampler

        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return LengthGroupedSampler(batch, lengths=dataset.lengths)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict=trainable_state(self.model))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        model = model if model is not None else self.model
        path = Path(resume_from_checkpoint) / CHECKPOINT_WEIGHTS
        if not path.is_file():
            raise ModelError(f"checkpoint {resume_from_checkpoint} has no {CHECKPOINT_WEIGHTS}; it is incomplete")
        state = load_file(str(path))
        expected = set(trainable_state(model))
        if set(state) != expected:
            raise ModelError(f"checkpoint {resume_from_checkpoint} does not match the model's trained weights; "
                             "resume with the same --model and LoRA settings")  # fmt: skip
        model.load_state_dict(state, strict=False)


class ProgressBar(TrainerCallback):
    """One tqdm bar over optimizer steps, showing the last logged loss and samples/s."""

    def __init__(self, samples_per_step: int) -> None:
        self.samples_per_step = samples_per_step
        self.bar = None
        self.started = 0.0
        self.first_step = 0
        self.history: list[tuple[int, float]] = []  # (step, loss) for the plot

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step")
        self.started, self.first_step = time.perf_counter(), state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            rate = (state.global_step - self.first_step) * self.samples_per_step / (time.perf_counter() - self.started)
            self.bar.set_postfix_str(f"loss {self._last_loss()} | {rate:.1f} samples/s")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.history.append((state.global_step, float(logs["loss"])))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()

    def _last_loss(self) -> str:
        return f"{self.history[-1][1]:.4f}" if self.history else "…"


def latest_checkpoint(out: Path) -> Path | None:
    found = sorted((out / CHECKPOINTS_DIR).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return found[-1] if found else None


def _prepare_output(options: TrainOptions) -> Path | None:
    """Check --out against --resume/--force; return the checkpoint to resume from."""
    if options.resume:
        checkpoint = latest_checkpoint(options.out)
        if checkpoint is None:
            raise SimulsaError(f"--resume: no checkpoint in {str(options.out / CHECKPOINTS_DIR)!r}; train without --resume")
        return checkpoint
    check_output_free(options.out, options.force)
    if options.out.exists():
        shutil.rmtree(options.out)
    return None


def _precision_flags(precision: str) -> dict[str, bool]:
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def _training_arguments(options: TrainOptions, has_dev: bool) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(options.out / CHECKPOINTS_DIR), num_train_epochs=options.epochs,
        max_steps=options.max_steps or -1, per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size, gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.lr, weight_decay=options.weight_decay, warmup_steps=options.warmup_ratio,  # a float < 1: ratio
        logging_steps=options.logging_steps, save_steps=options.save_steps, save_total_limit=options.save_total_limit,
        eval_strategy="steps" if has_dev else "no", eval_steps=options.save_steps if has_dev else None,
        seed=options.seed, data_seed=options.seed, remove_unused_columns=False, label_names=["target_ids"],
        prediction_loss_only=True, report_to=[], disable_tqdm=True, dataloader_num_workers=options.num_workers,
        gradient_checkpointing=options.gradient_checkpointing, ddp_find_unused_parameters=False,
        **_precision_flags(options.precision),
    )  # fmt: skip


def _load_for_training(options: TrainOptions) -> SpeechLM:
    from transformers import set_seed

    set_seed(options.seed)  # the adapter's random initialisation is part of "same seed, same run"
    load = LoadOptions(quantization=options.quantization)
    check_quantization_supported(load)
    model = load_speech_lm(options.model, load, trainable=True)
    if options.quantization is not None:
        _prepare_quantized(model)
    if not has_adapter(model):
        attach_lora(model, options.lora)
    return model


def _prepare_quantized(model: SpeechLM) -> None:
    """QLoRA: peft's k-bit preparation, the rest of the model on the quantized LM's device."""
    from peft import prepare_model_for_kbit_training

    if not has_adapter(model):
        setattr(model, model.peft_root, prepare_model_for_kbit_training(model.lm_module))
    model.to(model.device)
    model.quantization_method = "bitsandbytes"  # tells the Trainer not to move a bitsandbytes model


def _datasets(options: TrainOptions, model: SpeechLM) -> tuple[SpeechDataset | MixedDataset, SpeechDataset | None]:
    checked = check_rows(options.train_manifest, read_manifest(options.train_manifest), model.max_audio_s)
    if checked.too_long:
        print(f"skipped {checked.too_long} rows longer than {model.max_audio_s} s")
    train = SpeechDataset(options.train_manifest, checked.rows, model, checked.durations)
    if options.text_train is not None:
        pairs = text_rows_for(read_text_pairs(options.text_train), len(train), options.text_fraction, options.seed)
        print(f"training rows: {len(train)} speech + {len(pairs)} text ({options.text_train})")
        train = MixedDataset([train, TextPairDataset(pairs, model)])
    if options.dev_manifest is None:
        return train, None
    dev = check_rows(options.dev_manifest, read_manifest(options.dev_manifest), model.max_audio_s)
    return train, SpeechDataset(options.dev_manifest, dev.rows, model)


def run_training(options: TrainOptions) -> TrainResult:
    """1. check the output, 2. load and wrap the model, 3. build data, 4. train, 5. write the result."""
    resume_from = _prepare_output(options)
    model = _load_for_training(options)
    train_set, dev_set = _datasets(options, model)
    args = _training_arguments(options, dev_set is not None)
    progress = ProgressBar(options.batch_size * options.grad_accum * args.world_size)
    trainer = SimulsaTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=dev_set,
                             data_collator=SpeechCollator(model), callbacks=[progress],
                             group_by_length=options.group_by_length)  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.perf_counter() - started
    dev_loss = trainer.evaluate()["eval_loss"] if dev_set is not None else None
    result = TrainResult(options.out, output.global_step, float(output.training_loss), dev_loss, seconds,
                         float(output.metrics.get("train_samples_per_second", 0.0)))  # fmt: skip
    if trainer.is_world_process_zero():
        _write_result(model, options, result, progress.history)
    return result


def _write_result(model: SpeechLM, options: TrainOptions, result: TrainResult, history: list[tuple[int, float]]) -> None:
    summary = {**dataclasses.asdict(result), "out": str(result.out), "loss_history": history,
               "options": {k: str(v) for k, v in dataclasses.asdict(options).items()}}  # fmt: skip
    (options.out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if history:
        plot_loss(history, options.out / "loss.png")
    save_trained(model, options.out, base_model_of(options.model))  # simulsa.json last: marks a complete output
