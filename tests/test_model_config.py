"""GCPConfig: the architecture rows, derived widths and the size budget of SMALL."""

import dataclasses

import pytest
import torch

from gcp_colorize.model.config import CONFIGS, OFFICIAL, SMALL, TINY, GCPConfig
from gcp_colorize.model.gcp import GCPModel

SHIPPED_BUDGET_MB = 50.0  # the embedded default weights: <= 60 MB in all, ~50 planned


def fp32_megabytes(config: GCPConfig) -> dict[str, float]:
    with torch.device("meta"):
        model = GCPModel(config)
    return {name: sum(t.numel() for t in getattr(model, name).state_dict().values()) * 4 / 1e6
            for name in GCPModel.NETWORKS}


def test_official_row_derives_the_official_widths():
    assert OFFICIAL.g_block_channels == [(1536, 1536), (1536, 768), (768, 768), (768, 384),
                                         (384, 192), (192, 96)]
    assert OFFICIAL.g_block_resolutions == [8, 16, 32, 64, 128, 256]
    assert (OFFICIAL.z_slots, OFFICIAL.z_chunk) == (7, 17)
    assert OFFICIAL.feature_channels == {64: 384, 128: 192, 256: 96}
    assert [b[:2] for b in OFFICIAL.d_blocks[:3]] == [(3, 96), (96, 192), (192, 384)]
    assert OFFICIAL.corr_feat_nc == 576
    assert OFFICIAL.e_blocks[0][:2] == (1, 64) and OFFICIAL.e_blocks[-1] == (1024, 1024, False, 4)


def test_small_row_follows_the_same_layout_at_128():
    assert SMALL.g_block_resolutions == [8, 16, 32, 64, 128]
    assert (SMALL.z_slots, SMALL.z_chunk) == (6, 20)
    assert SMALL.feature_resolutions == (32, 64, 128)
    assert SMALL.feature_channels == {32: 4 * SMALL.g_ch, 64: 2 * SMALL.g_ch, 128: SMALL.g_ch}
    assert SMALL.d_blocks[1][3] == 32 and SMALL.corr_feat_nc == 6 * SMALL.d_ch


def test_small_weights_fit_the_shipping_budget():
    sizes = fp32_megabytes(SMALL)
    assert sum(sizes.values()) <= SHIPPED_BUDGET_MB, sizes


def test_serialisation_round_trip_and_errors():
    for config in CONFIGS.values():
        assert GCPConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown GCPConfig fields: colour"):
        GCPConfig.from_dict({**TINY.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="resolution 96"):
        dataclasses.replace(TINY, resolution=96)
    with pytest.raises(ValueError, match="attention_resolution 48"):
        dataclasses.replace(TINY, attention_resolution=48)
    with pytest.raises(ValueError, match="dim_z 4"):
        dataclasses.replace(TINY, dim_z=4)
