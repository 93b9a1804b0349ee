"""A semantic, frozen class embedding for G and E, taken from the classifier.

The official BigGAN learned its 1000 class embeddings on ImageNet. Our ~500 photos carry
only a few hundred distinct pseudo-labels, so a learned table would leave most rows at
their random start, and the Colorizer would then condition on noise for any photo whose
class was never seen. Instead the rows are the classifier's own class weight vectors
(the 1000 x 1280 last layer), projected on their `dim` principal components and scaled
to unit variance: classes the classifier confuses get nearby embeddings, so G and E
generalise from seen classes to related unseen ones. The table is kept frozen.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model.classifier import load_efficientnet_lite0


def semantic_class_table(dim: int, n_classes: int = 1000) -> torch.Tensor:
    """(n_classes, dim) rows = PCA projections of the classifier's class weight vectors."""
    weights = load_efficientnet_lite0("cpu")._fc.weight.detach().double()  # (1000, 1280)
    if n_classes > weights.size(0) or dim > weights.size(1):
        raise ValueError(f"the classifier has {weights.size(0)} classes of width "
                         f"{weights.size(1)}; asked for {n_classes} x {dim}")
    centred = weights - weights.mean(dim=0, keepdim=True)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ v[:dim].T  # (1000, dim), largest components first
    # A table smaller than ImageNet (test configs) takes the first classes' rows.
    return (projected / projected.std())[:n_classes].float()


def install_semantic_embedding(embedding: nn.Embedding) -> None:
    """Overwrite an embedding with the semantic table and freeze it."""
    table = semantic_class_table(embedding.embedding_dim, embedding.num_embeddings)
    with torch.no_grad():
        embedding.weight.copy_(table)
    embedding.weight.requires_grad_(False)
