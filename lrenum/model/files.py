"""Network files by type: lrenum's ``.npz``, ONNX ``.onnx``, PyTorch ``.pt`` / ``.pth``."""

from __future__ import annotations

import os
from typing import Optional, Sequence

from ..errors import InputError
from .network import Network

EXPECTED = "expected a network file: .npz (arrays W1, b1, ..., WL, bL), .onnx, or .pt/.pth (PyTorch)"


def load_network(path: str, *, input_shape: Optional[Sequence[int]] = None,
                 unpickle: bool = False) -> tuple[Network, dict]:
    """(network, the file's extra arrays such as a domain) for any supported file type."""
    from .npz import load_npz

    if not os.path.exists(path):
        raise InputError(f"network file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        return load_npz(path)
    if ext == ".onnx":
        from .onnx_import import from_onnx, load_onnx_model

        return from_onnx(load_onnx_model(path), input_shape), {}
    if ext in (".pt", ".pth"):
        return load_torch_file(path, input_shape, unpickle), {}
    raise InputError(f"{path}: unsupported file type '{ext or 'none'}'; {EXPECTED}")


def load_torch_file(path: str, input_shape, unpickle: bool) -> Network:
    """A TorchScript archive, or (with ``unpickle``) a pickled ``nn.Module``."""
    try:
        import torch
    except ImportError:
        raise InputError(".pt files need PyTorch installed (pip install torch)") from None
    from .torch_import import from_torch

    try:
        module = torch.jit.load(path, map_location="cpu")
    except Exception:   # not TorchScript
        if not unpickle:
            raise InputError(f"{path} is not a TorchScript archive; if it is a pickled model you trust, "
                             "pass --unpickle (unpickling runs code from the file)") from None
        try:
            module = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise InputError(f"cannot read {path} as a PyTorch model ({type(exc).__name__})") from None
    return from_torch(module, input_shape)
