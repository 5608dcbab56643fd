"""simulsa.train: model families, manifests, SimulSA augmentation and LoRA/QLoRA fine-tuning."""
