"""Opt-in fast paths fail early with what to install; the new flags parse."""

from __future__ import annotations

import importlib.util

import pytest

from vlmtune.arguments import DataArguments, parse_args
from vlmtune.core.fast_paths import check_fast_paths
from vlmtune.errors import ArgumentError


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash-attn is installed")
def test_flash_attention_without_the_package_names_what_to_install():
    with pytest.raises(ArgumentError, match="pip install flash-attn"):
        check_fast_paths("flash_attention_2", use_liger_kernel=False)


@pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is not None, reason="liger-kernel is installed")
def test_liger_without_the_package_names_what_to_install():
    with pytest.raises(ArgumentError, match="pip install liger-kernel"):
        check_fast_paths("sdpa", use_liger_kernel=True)


def test_no_fast_path_asked_needs_nothing():
    check_fast_paths(None, use_liger_kernel=False)
    check_fast_paths("sdpa", use_liger_kernel=False)


def test_throughput_flags_parse():
    argv = ["--model_id", "tiny-qwen2-vl", "--data_path", "d.json", "--output_dir", "o"]
    _, data_args, training_args = parse_args([*argv, "--packing", "--max_pixels", "200704", "--group_by_length"])
    assert data_args.packing and data_args.max_pixels == 200704
    assert training_args.train_sampling_strategy == "group_by_length"
    _, data_args, training_args = parse_args(argv)
    assert not data_args.packing and training_args.train_sampling_strategy == "random"
    with pytest.raises(ValueError, match="--max_pixels must be positive"):
        DataArguments(data_path="d.json", max_pixels=0)
