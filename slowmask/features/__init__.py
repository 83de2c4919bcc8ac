"""Encoder features of videos and images, written as .npy files (tools/extract_features.py)."""

from .encode import encoder_tokens
from .media import MediaClips, collate_media
from .store import FeatureStore, feature_key

__all__ = ["FeatureStore", "MediaClips", "collate_media", "encoder_tokens", "feature_key"]
