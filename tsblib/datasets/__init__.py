"""Data sets as a registry, one module per data set (`mnist_embedded`, `mnist`, `cifar10`,
`image_folder`), each registering a `DatasetSpec`: how to find it, how to load it, its shape,
classes and checksum, whether the natural-image augmentation applies. `tsblib.data` does what
every data set shares (limits, validation split, statistics, the prepared file, batches).

Adding a data set: one module here that calls `register_dataset(DatasetSpec(...))`, plus its
test; `data.dataset: <name>` in params.yaml then selects it.
"""
from tsblib.datasets.base import (DATASETS, DataNotFoundError, DatasetSpec, Loaded, Split,
                                  Unchecked, all_datasets, get_dataset, register_dataset,
                                  split_checksum, stratified_split, stratified_subset)

__all__ = ["DATASETS", "DataNotFoundError", "DatasetSpec", "Loaded", "Split", "Unchecked",
           "all_datasets",
           "get_dataset", "register_dataset", "split_checksum", "stratified_split",
           "stratified_subset"]
