"""An example of your own dataset, outside slowmask: videos named `<class>_<id>.mp4`
under `<data_dir>/videos/<split>/`, no list file (the layout tools/make_demo_data.py
writes). Select it with two config lines:

    TRAIN.DATASET: MyDataset
    DATA.CUSTOM_MODULES: ["my_dataset.py"]   # relative to the yaml that names it

Decoding, sampling, crops, masks, test views and retries come from ClipDataset.
"""

import os
from typing import List, Tuple

from slowmask.data import DATASET_REGISTRY, ClipDataset, list_video_files


@DATASET_REGISTRY.register()
class MyDataset(ClipDataset):
    """Labels are the positions of the class names (file name up to its last "_") in
    sorted order."""

    @classmethod
    def list_videos(cls, data_dir: str, split: str) -> List[Tuple[str, int]]:
        paths = list_video_files(os.path.join(data_dir, "videos", split))
        names = [os.path.basename(path).rsplit("_", 1)[0] for path in paths]
        classes = sorted(set(names))
        return [(path, classes.index(name)) for path, name in zip(paths, names)]
