"""Encoder features of videos and images, written as .npy files (tools/extract_features.py)."""

from .encode import encoder_tokens
from .media import MEDIA_EXTENSIONS, MediaClips, collate_media, media_inputs
from .pooling import DEFAULT_POOLING, POOLINGS, PooledFeatures, pooled_features, pooling_label
from .store import FeatureStore, Producer, StoreOfOtherFeatures, WeightsFile, feature_key, hold_store, open_store

__all__ = [
    "DEFAULT_POOLING",
    "FeatureStore",
    "MEDIA_EXTENSIONS",
    "MediaClips",
    "POOLINGS",
    "PooledFeatures",
    "Producer",
    "StoreOfOtherFeatures",
    "WeightsFile",
    "collate_media",
    "encoder_tokens",
    "feature_key",
    "hold_store",
    "media_inputs",
    "open_store",
    "pooled_features",
    "pooling_label",
]
