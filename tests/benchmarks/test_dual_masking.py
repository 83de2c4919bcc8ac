"""The dual-masking benchmark at tiny sizes: both models run, the decoder token counts are
the configured ones, and the tool prints them with both times."""

import os
import statistics

from slowmask.benchmarks.dual_masking import plain_vs_dual
from tool_scripts import REPO, load_tool

DEMO = os.path.join(REPO, "configs", "demo", "ViT_tiny_VideoMAEv2_PT.yaml")


def test_plain_vs_dual_on_the_tiny_recipe():
    result = plain_vs_dual(DEMO, frames=8, size=64, batch=2, embed_dim=64, depth=2, heads=2, repeats=2)
    # 4x4x4 tokens, tube 90 %: 2 of 16 visible per frame; the running cell keeps half of the 56 masked.
    assert (result["tokens"], result["visible_tokens"], result["masked_tokens"]) == (64, 8, 56)
    assert result["decoder_tokens"] == {"plain": 64, "dual": 8 + 28}
    assert result["loss_tokens"] == {"plain": 56, "dual": 28}
    for name in ("plain", "dual"):
        seconds = result[name]["seconds"]
        assert len(seconds) == 2 and result[name]["median_s"] == statistics.median(seconds)


def test_main_prints_counts_times_and_ratio(capsys):
    load_tool("benchmark_dual_masking").main(["--cfg", DEMO, "--frames", "8", "--size", "64", "--batch", "1",
                                              "--embed-dim", "64", "--depth", "1", "--heads", "2", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ('{"tokens": 64, "visible_tokens": 8, "masked_tokens": 56, '
                        '"decoder_tokens": {"plain": 64, "dual": 36}, "loss_tokens": {"plain": 56, "dual": 28}}')
    assert lines[1].startswith("plain VideoMAE: ") and lines[1].endswith("(decoder on 64 tokens)")
    assert lines[2].startswith("dual masking:   ") and lines[2].endswith("(decoder on 36 tokens)")
    assert lines[3].startswith("ratio plain / dual: ")
