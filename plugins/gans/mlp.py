"""The fully connected networks of the GAN and cGAN papers (MNIST experiments): ReLU generators
with a sigmoid output, maxout discriminators with dropout."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Maxout(nn.Module):
    """Goodfellow et al. 2013: `units` outputs, each the max over `pieces` linear pieces."""

    def __init__(self, in_features: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(*x.shape[:-1], self.units, self.pieces).amax(-1)


class MlpGenerator(nn.Module):
    """z -> hidden ReLU layers -> a sigmoid image. With `num_classes`, the cGAN paper's layout: z
    and the one-hot label each go through their own ReLU layer (`z_hidden`, `label_hidden` units),
    then a joint ReLU layer, then the output."""

    def __init__(self, latent: int, hidden: list[int], image_shape: tuple[int, int, int], dropout: float = 0.0,
                 num_classes: int | None = None, z_hidden: int = 200, label_hidden: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.image_shape = image_shape
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        width = latent
        if num_classes:
            self.z_branch = nn.Sequential(nn.Linear(latent, z_hidden), nn.ReLU(), nn.Dropout(dropout))
            self.label_branch = nn.Sequential(nn.Linear(num_classes, label_hidden), nn.ReLU(), nn.Dropout(dropout))
            width = z_hidden + label_hidden
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers += [nn.Linear(width, int(torch.tensor(image_shape).prod())), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes:
            one_hot = nn.functional.one_hot(labels, self.num_classes).to(z.dtype)
            z = torch.cat([self.z_branch(z), self.label_branch(one_hot)], dim=1)
        return self.body(z).view(len(z), *self.image_shape)


class MaxoutDiscriminator(nn.Module):
    """image -> maxout layers with dropout -> one logit (the sigmoid is in the loss). With
    `num_classes`, the cGAN paper's layout: the image and the one-hot label each through their own
    maxout layer, then a joint maxout layer. `input_dropout` drops input pixels (the GAN paper's
    pylearn2 setup keeps 80% of them)."""

    def __init__(self, in_features: int, layers: list[tuple[int, int]], dropout: float, input_dropout: float = 0.0,
                 num_classes: int | None = None, label_layer: tuple[int, int] = (50, 5)) -> None:  # fmt: skip
        super().__init__()
        self.num_classes = num_classes
        self.input_dropout = nn.Dropout(input_dropout)
        (units, pieces), rest = layers[0], layers[1:]
        self.image_branch = nn.Sequential(Maxout(in_features, units, pieces), nn.Dropout(dropout))
        width = units
        if num_classes:
            self.label_branch = nn.Sequential(Maxout(num_classes, *label_layer), nn.Dropout(dropout))
            width += label_layer[0]
        body: list[nn.Module] = []
        for units, pieces in rest:
            body += [Maxout(width, units, pieces), nn.Dropout(dropout)]
            width = units
        body.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*body)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.image_branch(self.input_dropout(x.flatten(1)))
        if self.num_classes:
            one_hot = nn.functional.one_hot(labels, self.num_classes).to(h.dtype)
            h = torch.cat([h, self.label_branch(one_hot)], dim=1)
        return self.body(h).squeeze(1)
