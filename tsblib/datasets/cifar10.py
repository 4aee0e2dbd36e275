"""`cifar10`: CIFAR-10 (Krizhevsky, 2009) through torchvision, official 50,000 / 10,000 split;
or an image-folder copy of it (`data.image_folder`). The natural-image augmentation applies."""
from tsblib.datasets.base import DatasetSpec, Unchecked, register_dataset
from tsblib.datasets.torchvision_files import checker, loader, resolver

SPEC = register_dataset(DatasetSpec(
    name="cifar10", description="CIFAR-10 through torchvision (50,000 / 10,000 colour images)",
    load=loader("CIFAR10"), check=checker("CIFAR10"), resolve=resolver("CIFAR10"),
    augmentable=True, shape=(3, 32, 32), classes=10,
    checksum=Unchecked("built on an image-folder copy (data.image_folder), not torchvision's "
                       "official files, whose checksum was therefore never taken")))
