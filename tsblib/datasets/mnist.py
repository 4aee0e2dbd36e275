"""`mnist`: the 70,000 MNIST digits (LeCun et al.) through torchvision, official 60,000 / 10,000
split; or an image-folder copy of them (`data.image_folder`)."""
from tsblib.datasets.base import DatasetSpec, register_dataset
from tsblib.datasets.torchvision_files import checker, loader, resolver

SPEC = register_dataset(DatasetSpec(
    name="mnist", description="MNIST through torchvision (60,000 / 10,000 digits)",
    load=loader("MNIST"), check=checker("MNIST"), resolve=resolver("MNIST"),
    shape=(1, 28, 28), classes=10,
    checksum="1e35582d42a90940c55b956deb61875c020b567ed20e3c5b174f52bf7809ed9b"))
