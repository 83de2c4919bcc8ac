from setuptools import find_packages, setup

setup(
    name="slowmask",
    version="0.1.0",
    description="Masked self-supervised pretraining of video and image transformers (MaskFeat, MAE) in the PySlowFast tradition.",
    packages=find_packages(include=["slowmask", "slowmask.*"]),
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "pytorchvideo>=0.1.5",
        "av>=11",
        "decord>=0.6",
        "fvcore>=0.1.5",
        "iopath>=0.1.9",
        # checkpoints without pickle (tools/export.py --format pyth-safe), read wherever a checkpoint is read
        "safetensors>=0.4",
        "simplejson",
        "tqdm",
        "numpy",
    ],
    extras_require={
        # transformers, timm and safetensors build the published layouts the converters and
        # V-JEPA 2's parity tests read (tiny random models, nothing downloaded); wandb runs offline.
        "test": [
            "pytest>=7",
            "submitit>=1.5",
            "transformers>=5,<6",
            "timm>=1,<2",
            "safetensors>=0.4",
            "scikit-learn>=1.3",
            "wandb>=0.17",
        ],
        "tensorboard": ["tensorboard"],
        "wandb": ["wandb>=0.17"],
        "slurm": ["submitit>=1.5"],
        # DATA.DECODING_BACKEND torchcodec (0.17 is the release built for torch 2.14); it loads the
        # system's FFmpeg 4-8 libraries (INSTALL.md).
        "torchcodec": ["torchcodec>=0.17,<0.18"],
    },
)
