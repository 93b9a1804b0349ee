"""Optional reduced-precision inference: autocast of the GCP networks.

CPU: bfloat16 (fast only where the CPU has native bf16 arithmetic, e.g. AVX512-BF16 or
AMX; elsewhere it is emulated and slower than fp32). CUDA: float16 by default, or
bfloat16. The model keeps two places in fp32 itself: the correlation logits (scaled by
1/T = 100) and the deformable convolution's sampling positions (pixel indices); every
other op follows autocast's own per-op rules. Outputs come back in the reduced dtype:
call `.float()` on them. `benchmarks/bench_model.py` measures speed and chroma drift.
"""

from __future__ import annotations

import torch

DEFAULT_DTYPES = {"cpu": torch.bfloat16, "cuda": torch.float16}


def reduced_precision(device: torch.device | str, dtype: torch.dtype | None = None):
    """Context manager: run the networks inside it in `dtype` (default per device type)."""
    device_type = torch.device(device).type
    if device_type not in DEFAULT_DTYPES:
        raise ValueError(f"no reduced-precision mode for device type {device_type!r}")
    dtype = dtype or DEFAULT_DTYPES[device_type]
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"reduced precision means bfloat16 or float16, not {dtype}")
    return torch.autocast(device_type, dtype=dtype)
