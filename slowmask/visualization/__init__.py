"""Pictures of what a model learns: HOG glyphs, masks, targets and predictions per
clip (PNG, GIF, MP4), and training curves from json_stats.log."""

from .figure import save_animation, save_png, to_uint8_frames
from .hog_glyphs import bin_stroke_direction, hog_glyphs
from .painters import PAINTERS, HOGPainter, build_painter, paints
from .predictions import ClipPrediction, predict_clip
from .render import masked_animation, prediction_figure

__all__ = [
    "PAINTERS",
    "ClipPrediction",
    "HOGPainter",
    "bin_stroke_direction",
    "build_painter",
    "hog_glyphs",
    "masked_animation",
    "paints",
    "predict_clip",
    "prediction_figure",
    "save_animation",
    "save_png",
    "to_uint8_frames",
]
