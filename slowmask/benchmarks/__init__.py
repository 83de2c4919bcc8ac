"""Benchmarks: each cost of masked video pretraining timed beside a baseline measured in
the same run, and the baselines and timing routine only benchmarks need.

The top layer of the package: it may import any of slowmask, nothing in slowmask imports
it (tools and tests do). `tools/benchmark.py` is its command line.

- timing: the one timing routine (warm-up, alternating repeats, wall and CPU time, peak
  memory);
- table: one row per figure beside its baseline, the Markdown table, the machine;
- loader: the training loader on panning-texture videos (written by write_panning_video);
- hog: the HOG target against `hog_reference`, PySlowFast's way;
- step: a MaskMViT training step with SDPA against plain attention, and the cores alone;
- mae: MAE's sparse encoder against the same weights run densely with mask tokens;
- memory: the memory plan of engine/memory_plan.py against the measured peak of training steps;
- vjepa: V-JEPA 2's training step against MaskFeat's, both ViT-B, at the same clips.
"""
