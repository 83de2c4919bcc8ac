"""tools/gpu_check.py at toy size on the CPU: every row of the GPU table is produced by
the code a GPU runs, printed and written as JSON."""

import json
import os

import torch

from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
gpu_check = load_tool("gpu_check")


def test_the_tiny_check_runs_every_row_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    gpu_check.main(["--device", "cpu", "--tiny", "--json", str(out), "--work-dir", str(tmp_path / "work"),
                    "--peak-tflops", "2.0"])
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert result["tiny"] and result["peak_bf16_tflops"] == 2.0 and result["device"] == "cpu"
    parts = [r["part"] for r in rows]
    assert parts[:3] == ["tests", "step", "sparse"] and parts[-3:] == ["hog", "loader", "pyslowfast"]
    assert set(parts[3:-3]) == {"attention"}
    tests = rows[0]
    assert tests["failures"] == tests["errors"] == 0 and tests["skipped"] == tests["tests"] >= 5  # no CUDA here
    step = rows[1]
    assert step["batch"] == 2 and step["host_syncs"] is None
    assert abs(step["clips_per_s"] * step["step_ms"] / 1000 - step["batch"]) < 1e-9 * step["batch"]
    assert abs(step["mfu"] * 2.0 - step["tflops"]) < 1e-9 * step["tflops"]
    assert all(r["backend"] in gpu_check.SDPA_BACKENDS.values() for r in rows[3:-3])
    assert all("widths q/k/v" in r["what"] for r in rows[3:-3])
    assert rows[-2]["workers_needed"] > 0 and "| part |" in printed
    assert all(r["what"] in printed for r in rows)
    # The rows say what ran: the tiny configs, not the full-size models they stand for.
    assert rows[2]["what"] == "MAE ViT-tiny 90 % masked vs MaskFeat ViT-tiny, batch 1, 8x64x64, bf16"
    assert "ViT-B" not in printed and "MViTv2" not in printed
    assert printed.startswith(f"slowmask gpu_check: cpu, torch {torch.__version__}, peak bf16 2 TFLOP/s, ")
    assert ", toy sizes (--tiny), " in printed.splitlines()[0]


def test_the_header_reads_right_without_a_peak_rate():
    line = gpu_check.header("cpu", None, False, 12.4)
    assert line == (f"slowmask gpu_check: cpu, torch {torch.__version__}, peak bf16 rate unknown (no MFU; pass "
                    f"--peak-tflops), {os.cpu_count()} cores, full sizes, 12 s")


def test_the_peak_rate_comes_from_the_table_or_the_argument():
    assert gpu_check.peak_tflops(torch.device("cpu"), 0.0) is None
    assert gpu_check.peak_tflops(torch.device("cpu"), 7.5) == 7.5
    names = [name for name, _ in gpu_check.PEAK_BF16_TFLOPS]
    assert names.index("H100 PCIe") < names.index("H100")  # the precise name is matched first
    assert dict(gpu_check.PEAK_BF16_TFLOPS)["H200"] == dict(gpu_check.PEAK_BF16_TFLOPS)["H100"] == 989.0
