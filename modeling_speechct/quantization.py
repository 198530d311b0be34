"""Vector quantisation onto a token-embedding table: SpeechCLIP's spoken keywords.

A keyword query (a projected, batch-normalised CLS or CIF token) is compared by cosine with every allowed subword
embedding of the frozen CLIP text encoder; the softmax at temperature τ (0.1) picks the nearest subword. During
training the output is the chosen subword's embedding in the forward pass with the softmax's gradient in the
backward pass (straight-through), so the keyword projections learn although the choice is discrete; at evaluation
it is the hard choice only. Special tokens are never allowed, and the vocabulary may be limited to the subwords
seen in the training captions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Quantized:
    """`embeds` `(…, dim)` the quantised keyword embeddings (codebook rows, straight-through while training);
    `ids` `(…)` the chosen token ids; `scores` `(…)` their cosine with the query; `probabilities` `(…, allowed)`
    the softmax over the allowed vocabulary."""

    embeds: torch.Tensor
    ids: torch.Tensor
    scores: torch.Tensor
    probabilities: torch.Tensor


class KeywordQuantizer(nn.Module):
    """Cosine vector quantisation onto `codebook[vocabulary]` (`vocabulary`: the allowed token ids, a buffer)."""

    def __init__(self, vocabulary: torch.Tensor, temperature: float = 0.1):
        super().__init__()
        if vocabulary.ndim != 1 or vocabulary.numel() == 0:
            raise ValueError("KeywordQuantizer: the allowed vocabulary is empty; it needs at least one token id.")
        self.register_buffer("vocabulary", vocabulary.long())  # saved: the folder says which subwords it may speak
        self.temperature = temperature

    def similarities(self, queries: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """Cosine of each query with each allowed subword, `(…, allowed)`."""
        allowed = codebook[self.vocabulary].to(queries.dtype)
        return F.normalize(queries, dim=-1) @ F.normalize(allowed, dim=-1).T

    def forward(self, queries: torch.Tensor, codebook: torch.Tensor) -> Quantized:
        cosine = self.similarities(queries, codebook)
        soft = (cosine / self.temperature).softmax(dim=-1)
        choice = cosine.argmax(dim=-1)
        hard = F.one_hot(choice, cosine.shape[-1]).to(soft.dtype)
        weights = hard - soft.detach() + soft if self.training else hard
        embeds = weights @ codebook[self.vocabulary].to(queries.dtype)
        return Quantized(
            embeds=embeds,
            ids=self.vocabulary[choice],
            scores=cosine.gather(-1, choice[..., None]).squeeze(-1),
            probabilities=soft,
        )

    def top_k(self, queries: torch.Tensor, codebook: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `k` nearest allowed subwords of each query: `(ids (…, k), cosines (…, k))`, nearest first."""
        cosine = self.similarities(queries, codebook)
        scores, index = cosine.topk(min(k, cosine.shape[-1]), dim=-1)
        return self.vocabulary[index], scores


def allowed_vocabulary(vocab_size: int, special_ids: list[int], limit_to: list[int] | None = None) -> torch.Tensor:
    """Token ids a keyword may take: `limit_to` (e.g. the subwords of the training captions) or the whole
    vocabulary, never the special tokens; an error names ids outside the vocabulary."""
    # on the CPU explicitly: `from_pretrained` may build the model under a meta-device context
    cpu = torch.device("cpu")
    ids = (torch.arange(vocab_size, device=cpu) if limit_to is None
           else torch.as_tensor(sorted(set(limit_to)), dtype=torch.long, device=cpu))  # fmt: skip
    outside = ids[(ids < 0) | (ids >= vocab_size)].tolist()
    if outside:
        raise ValueError(f"keyword_vocabulary: ids {outside[:8]} are outside CLIP's vocabulary of {vocab_size}.")
    keep = ~torch.isin(ids, torch.as_tensor(special_ids, dtype=torch.long, device=cpu))
    return ids[keep]
