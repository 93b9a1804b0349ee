"""A stand-in for the training set (data/dataset.py TrainingPhotos) for the training tests."""

import torch


class SyntheticPhotos:
    """Smooth random colour images with the TrainingPhotos item contract. An item is flipped
    when epoch + index is odd, so its view changes from epoch to epoch as the real set's
    random flips do (what exact resume must reproduce)."""

    def __init__(self, n=6, size=64, seed=0, n_classes=10):
        g = torch.Generator().manual_seed(seed)
        coarse = torch.rand(n, 3, 4, 4, generator=g)
        self.images = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")
        self.labels = [i % n_classes for i in range(n)]
        self.epoch = 0

    def __len__(self):
        return len(self.images)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        image = self.images[i]
        if (self.epoch + i) % 2:
            image = image.flip(-1)
        return {"rgb": image, "alpha": torch.ones(1, *image.shape[1:]), "label": self.labels[i],
                "index": i}
