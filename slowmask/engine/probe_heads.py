"""The trained read-outs of the probes (engine/probe.py): classifiers fitted on cached
frozen features, never on the encoder.

The linear probe: a multinomial logistic regression on standardized features, fitted to
convergence by L-BFGS with an L2 penalty, fixed or chosen from a grid by cross-validation on
the labelled set.

Two attentive poolers, chosen by name (PROBE.ATTENTIVE_POOLER):
- "query": one learned query cross-attends the normalized tokens, a LayerNorm and a
  linear classifier follow (V-JEPA's cheap probe; few parameters, quick on a CPU);
- "blocks": V-JEPA 2's attentive probe (Bardes et al. 2024, sec. 4; Assran et al. 2025,
  sec. 4): depth - 1 pre-norm transformer blocks of self-attention over the tokens, then a
  block whose learned query cross-attends them (residual, then an MLP), then a linear
  classifier; V-JEPA 2 uses depth 4 and 16 heads on ViT-L.

V-JEPA 2 trains several such heads at once, one per (learning rate, weight decay) of a
grid, on the same batches of the same frozen features, and reports the best: `fit_heads`
does that in one pass over the cached tokens; each head starts from the same seeded
initialization, so the heads differ by their settings alone.
"""

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Initial spread of the query and of the "blocks" pooler's linear layers (V-JEPA 2's init_std).
INIT_STD = 0.02


@dataclass
class HeadScores:
    """Class scores (M, K) of one trained head on the scored rows, and the settings worth
    naming: those that tell it from the other heads of its probe, or those chosen for it
    on the labelled set (the linear probe's cross-validated penalty); {} for a probe of one
    head with given settings."""

    scores: Tensor
    settings: Dict[str, float] = field(default_factory=dict)


def standardized(train: Tensor, *others: Tensor, eps: float = 1e-6) -> List[Tensor]:
    """`train` and `others` (*, D) shifted and scaled by the per-dimension mean and std
    of `train`'s rows (over every leading dimension)."""
    flat = train.reshape(-1, train.shape[-1])
    mean, std = flat.mean(dim=0), flat.std(dim=0, unbiased=False) + eps
    return [(x - mean) / std for x in (train, *others)]


def seeded(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    """`make()` with the CPU generator seeded by `seed`, the global random state restored
    afterwards: a probe during training must not change the run's data order or masks."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def fit_classifier(
    head: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int = 0,
) -> nn.Module:
    """Train `head` on cached `inputs` (N, ...) -> logits (N, K) with cross-entropy:
    AdamW, a cosine learning rate over `epochs`, shuffles from a generator seeded by `seed`."""
    return fit_heads([head], [(lr, weight_decay)], inputs, labels, epochs, batch_size, seed)[0]


def fit_heads(
    heads: Sequence[nn.Module],
    settings: Sequence[Tuple[float, float]],
    inputs: Tensor,
    labels: Tensor,
    epochs: int,
    batch_size: int,
    seed: int = 0,
) -> List[nn.Module]:
    """Train every head of `heads` on cached `inputs` (N, ...) -> logits (N, K) with
    cross-entropy, head i with AdamW at settings[i] = (lr, weight decay) and a cosine
    learning rate to zero over `epochs`: one pass over shuffled batches (a generator seeded
    by `seed`) serves all of them, each batch through every head before the next."""
    if epochs < 1:
        raise ValueError(f"a probe classifier needs at least one epoch, got {epochs}")
    if len(heads) != len(settings):
        raise ValueError(f"one (lr, weight decay) per head: {len(heads)} heads, {len(settings)} settings")
    generator = torch.Generator().manual_seed(seed)
    optimizers = [torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=wd)
                  for head, (lr, wd) in zip(heads, settings)]
    steps = epochs * math.ceil(inputs.shape[0] / batch_size)
    schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) for optimizer in optimizers]
    for head in heads:
        head.train()
    with torch.enable_grad():
        for _ in range(epochs):
            for batch in torch.randperm(inputs.shape[0], generator=generator).split(batch_size):
                # The heads share no parameter: the summed loss's gradient is each head's own.
                loss = torch.stack([F.cross_entropy(head(inputs[batch]), labels[batch]) for head in heads]).sum()
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for optimizer, schedule in zip(optimizers, schedules):
                    optimizer.step()
                    schedule.step()
    return [head.eval() for head in heads]


class AttentivePooler(nn.Module):
    """(B, L, D) frozen tokens -> (B, num_classes) logits: one learned query attends
    the normalized tokens (multi-head cross-attention), its output goes through a
    LayerNorm to a linear classifier (the "query" pooler)."""

    def __init__(self, dim: int, num_classes: int, num_heads: int = 1) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.query, std=INIT_STD)
        self.norm_tokens = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_pooled = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        batch = tokens.shape[0]
        keys = self.norm_tokens(tokens)
        pooled, _ = self.attention(self.query.expand(batch, -1, -1), keys, keys, need_weights=False)  # (B, 1, D)
        return self.classifier(self.norm_pooled(pooled[:, 0]))


class Mlp(nn.Sequential):
    """(*, D) -> (*, D): Linear to `hidden`, GELU, Linear back (`fc1`, `fc2`)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)


class AttentionBlock(nn.Module):
    """The layers of a pre-norm transformer block (`norm1`, `attn`, `norm2`, `mlp`); its
    subclasses say what attends to what."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))


class SelfAttentionBlock(AttentionBlock):
    """Pre-norm transformer block on (B, L, D) tokens: x + attn(norm1(x)), then + mlp(norm2(x))."""

    def forward(self, x: Tensor) -> Tensor:
        normed = self.norm1(x)
        x = x + self.attn(normed, normed, normed, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class CrossAttentionBlock(AttentionBlock):
    """(B, Q, D) queries, (B, L, D) tokens -> (B, Q, D): q + attn(q, norm1(tokens)), then
    + mlp(norm2(q)); the queries themselves are not normalized (as V-JEPA 2's block)."""

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        keys = self.norm1(tokens)
        queries = queries + self.attn(queries, keys, keys, need_weights=False)[0]
        return queries + self.mlp(self.norm2(queries))


class AttentiveClassifier(nn.Module):
    """V-JEPA 2's attentive probe (the "blocks" pooler): (B, L, D) frozen tokens ->
    (B, num_classes) logits through `depth` - 1 SelfAttentionBlocks, a CrossAttentionBlock
    from one learned `query`, and a `linear` classifier.

    Initialization as V-JEPA 2: linear weights truncated normal (INIT_STD), biases zero;
    the residual branches' last projections (attention output, `mlp.fc2`) of block i
    (1-based, the cross-attention block counting as the last self-attention block's index)
    divided by sqrt(2 i), so the sum of the residual branches keeps its scale with depth.
    """

    def __init__(self, dim: int, num_classes: int, num_heads: int = 16, depth: int = 4,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"the attentive probe needs at least its cross-attention block: depth >= 1, got {depth}")
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(SelfAttentionBlock(dim, num_heads, mlp_ratio) for _ in range(depth - 1))
        self.cross_block = CrossAttentionBlock(dim, num_heads, mlp_ratio)
        self.linear = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.query, std=INIT_STD)
        self.apply(_init_weights)
        self._rescale_residual_branches()

    def _rescale_residual_branches(self) -> None:
        with torch.no_grad():
            for index, block in enumerate(self.blocks, start=1):
                block.attn.out_proj.weight.div_(math.sqrt(2.0 * index))
                block.mlp.fc2.weight.div_(math.sqrt(2.0 * index))
            self.cross_block.mlp.fc2.weight.div_(math.sqrt(2.0 * max(len(self.blocks), 1)))

    def forward(self, tokens: Tensor) -> Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        pooled = self.cross_block(self.query.expand(tokens.shape[0], -1, -1), tokens)  # (B, 1, D)
        return self.linear(pooled[:, 0])


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.MultiheadAttention):
        nn.init.trunc_normal_(module.in_proj_weight, std=INIT_STD)
        nn.init.zeros_(module.in_proj_bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# PROBE.ATTENTIVE_POOLER: (dim, num_classes, num_heads, depth, mlp_ratio) -> head.
ATTENTIVE_POOLERS: Dict[str, Callable[[int, int, int, int, float], nn.Module]] = {
    "query": lambda dim, classes, heads, depth, mlp_ratio: AttentivePooler(dim, classes, heads),
    "blocks": AttentiveClassifier,
}


def attentive_probe_predict(
    train_tokens: Tensor, train_labels: Tensor, query_tokens: Tensor, num_classes: int, epochs: int = 100,
    lr: float = 0.003, weight_decay: float = 0.01, batch_size: int = 64, num_heads: int = 1, seed: int = 0,
) -> Tensor:
    """(M,) classes of `query_tokens` (M, L, D) from an AttentivePooler trained on
    standardized `train_tokens` (N, L, D) with labels (N,)."""
    (head,) = attentive_heads(train_tokens, train_labels, query_tokens, num_classes, [(lr, weight_decay)],
                              epochs, batch_size, seed, make=lambda dim, k: AttentivePooler(dim, k, num_heads))
    return head.scores.argmax(dim=1)


def attentive_heads(
    train_tokens: Tensor,
    train_labels: Tensor,
    query_tokens: Tensor,
    num_classes: int,
    settings: Sequence[Tuple[float, float]],
    epochs: int,
    batch_size: int,
    seed: int,
    make: Callable[[int, int], nn.Module],
) -> List[HeadScores]:
    """One head `make(D, num_classes)` per (lr, weight decay) of `settings`, trained
    together (`fit_heads`) on standardized `train_tokens` (N, L, D) with labels (N,); each
    head's logits (M, K) of `query_tokens` (M, L, D), all scored in one batch; each named by
    its (lr, weight decay) when there are several."""
    train_tokens, query_tokens = standardized(train_tokens.float(), query_tokens.float())
    heads = [seeded(lambda: make(train_tokens.shape[-1], num_classes), seed) for _ in settings]
    fit_heads(heads, settings, train_tokens, train_labels, epochs, batch_size, seed)
    with torch.no_grad():
        return [HeadScores(head(query_tokens), {"lr": lr, "weight_decay": wd} if len(heads) > 1 else {})
                for head, (lr, wd) in zip(heads, settings)]


def linear_probe_scores(
    train: Tensor, train_labels: Tensor, query: Tensor, num_classes: int, max_iters: int = 200,
    l2: float = 0.1, seed: int = 0,
) -> Tensor:
    """(M, K) logits of `query` (M, D) from a multinomial logistic regression on
    standardized `train` (N, D) features with labels (N,), fitted to convergence by
    full-batch L-BFGS with an `l2` * |W|^2 / 2 penalty (CLIP's linear-probe protocol,
    Radford et al. 2021, appendix A.3): with a few labelled items per class a
    stochastic optimizer's result depends on its schedule more than on the features."""
    if max_iters < 1:
        raise ValueError(f"the linear probe needs at least one L-BFGS iteration, got {max_iters}")
    train, query = standardized(train.float(), query.float())
    head = seeded(lambda: nn.Linear(train.shape[1], num_classes), seed)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=max_iters, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(train), train_labels) + l2 / 2 * head.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return head(query)


def linear_probe_predict(
    train: Tensor, train_labels: Tensor, query: Tensor, num_classes: int, max_iters: int = 200,
    l2: float = 0.1, seed: int = 0,
) -> Tensor:
    """(M,) classes of `query` with the largest logit (`linear_probe_scores`)."""
    return linear_probe_scores(train, train_labels, query, num_classes, max_iters, l2, seed).argmax(dim=1)


def cross_validated_l2(
    train: Tensor, train_labels: Tensor, items: Tensor, num_classes: int, l2s: Sequence[float], folds: int,
    max_iters: int = 200, seed: int = 0,
) -> Tuple[float, Dict[float, float]]:
    """The penalty of `l2s` whose linear probe (`linear_probe_scores`) predicts the held-out
    rows of the labelled set `train` (N, D) best, by `folds`-fold cross-validation: fold f
    holds the rows of the items (N,) `items` equal to f modulo `folds`, so the views of an
    item stay together. The set scored later takes no part (CLIP's protocol chooses the
    penalty on a validation split, Radford et al. 2021, appendix A.3). Returns the penalty
    and {penalty: cross-validated top-1 %}; of equal ones, the largest penalty."""
    fold = items % folds
    accuracy = {}
    for l2 in sorted(l2s, reverse=True):
        correct = 0
        for held in (fold == f for f in range(folds)):
            if held.any() and not held.all():
                scores = linear_probe_scores(train[~held], train_labels[~held], train[held], num_classes,
                                             max_iters, l2, seed)
                correct += int((scores.argmax(dim=1) == train_labels[held]).sum())
        accuracy[l2] = 100.0 * correct / len(train_labels)
    return max(accuracy, key=accuracy.__getitem__), accuracy
