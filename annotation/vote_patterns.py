"""Vote-pattern compression for label masks from several raters (pure numpy).

Every consensus method here is a function of each pixel's *vote pattern* (the tuple of labels
the R raters gave it) and of how often each pattern occurs. A 2048x2048 image with 9 raters has
4.2 M pixels but at most 2^9 = 512 binary patterns, so EM runs over the patterns weighted by
their counts and the result is scattered back: identical numbers, a fraction of the work.

Conventions shared by ``consensus``, ``staple`` and ``agreement``:

- ``masks`` has shape ``(R, *S)``: R raters, S the spatial shape (``(H, W)``) or ``(N,)`` for
  item labels; integer class ids ``0 .. C-1``.
- A negative value (``NOT_RATED``, -1) means the rater did not rate that pixel or item.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

NOT_RATED: Final = -1

# Above this many possible codes the dense bincount table costs more memory than a sort.
_DENSE_CODE_LIMIT: Final = 1 << 20
# Pixels per chunk when encoding, counting and scattering: few enough numpy calls that
# Python overhead stays small, small enough that the temporaries (2 MB of intp) stay in cache.
_CHUNK: Final = 1 << 18
# Codes must fit in int64 for np.unique on a flat integer array.
_INT64_CODE_LIMIT: Final = 1 << 62

IntArray = npt.NDArray[np.integer]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class VotePatterns:
    """The distinct vote patterns of R raters over a set of pixels, with their counts.

    Attributes:
        votes: ``(P, R)`` int16, the class id rater r gave in pattern p, ``NOT_RATED`` if none.
        counts: ``(P,)`` int64, how many pixels carry pattern p (all > 0).
        codes: ``(N,)`` integer, a code per pixel (N = prod(shape)); ``lookup[codes]`` gives the
            pattern index. Kept as codes so the dense path needs no remapping pass.
        lookup: ``(K,)`` intp, pattern index of each code (K possible codes, >= P).
        shape: spatial shape S of the input.
        n_classes: C, the number of classes the votes were encoded with.
    """

    votes: npt.NDArray[np.int16]
    counts: npt.NDArray[np.int64]
    codes: IntArray
    lookup: npt.NDArray[np.intp]
    shape: tuple[int, ...]
    n_classes: int

    @property
    def n_raters(self) -> int:
        """R, the number of raters."""
        return int(self.votes.shape[1])

    @property
    def rated(self) -> npt.NDArray[np.bool_]:
        """``(P, R)`` bool, whether rater r rated pixels of pattern p."""
        return self.votes >= 0

    @cached_property
    def onehot(self) -> FloatArray:
        """``(P, R, C)`` float64 one-hot of the votes; all zero where not rated (cached)."""
        classes = np.arange(self.n_classes, dtype=np.int16)
        return (self.votes[:, :, None] == classes).astype(np.float64)

    @cached_property
    def row_index(self) -> npt.NDArray[np.intp]:
        """``(R, P)`` intp: each rater's vote, with "not rated" mapped to C + 1 (cached).

        Lets a per-rater table with C + 2 rows (classes, ITK's spare row, then a row of
        neutral values) be gathered with one np.take per rater.
        """
        votes = self.votes.T.astype(np.intp)
        return np.where(votes >= 0, votes, self.n_classes + 1)

    def weighted_votes(self, posterior: FloatArray) -> FloatArray:
        """Expected vote counts: ``(R, C_true, C_said)``, sum of count * posterior[true].

        ``[r, i, j]`` is the expected number of pixels of true class i that rater r labelled j;
        its row sums are how much evidence each row of a confusion matrix rests on.

        Args:
            posterior: ``(C, P)`` float64, probability of each true class per pattern.
        """
        weighted = posterior * self.counts  # (C_true, P)
        n_raters, n_classes = self.n_raters, self.n_classes
        n_bins = n_raters * (n_classes + 2)
        out = np.empty((n_raters, weighted.shape[0], n_classes))
        # One bincount per true class over all (rater, pattern) pairs: few numpy calls, and
        # steadier than a thin BLAS product when the cores are shared.
        for i, row in enumerate(weighted):
            sums = np.bincount(self._rater_bins, weights=np.tile(row, n_raters), minlength=n_bins)
            out[:, i, :] = sums.reshape(n_raters, n_classes + 2)[:, :n_classes]
        return out

    @cached_property
    def _rater_bins(self) -> npt.NDArray[np.intp]:
        """``(R * P,)`` bin of each (rater, pattern) vote: r * (C + 2) + row_index[r]."""
        offsets = np.arange(self.n_raters)[:, None] * (self.n_classes + 2)
        return (self.row_index + offsets).ravel()

    def scatter(self, table: np.ndarray) -> np.ndarray:
        """Spread a per-pattern table back over the pixels.

        Args:
            table: ``(..., P)`` values per pattern (any dtype).

        Returns:
            ``(..., *S)`` the value of each pixel's pattern.
        """
        lead = table.shape[:-1]
        rows = table.reshape(-1, table.shape[-1]).T  # (P, L): a pixel's values are adjacent
        if self.lookup.shape[0] != rows.shape[0]:
            full = np.zeros((self.lookup.shape[0], rows.shape[1]), dtype=table.dtype)
            # Codes that never occur keep the zero fill; only present codes are gathered.
            present = self.lookup >= 0
            full[present] = rows[self.lookup[present]]
            rows = full
        rows = np.ascontiguousarray(rows)
        gathered = np.empty((self.codes.shape[0], rows.shape[1]), dtype=table.dtype)  # (N, L)
        # np.take on rows beats fancy indexing on a (L, K) table several times over; in
        # chunks, its conversion of the codes to intp stays in cache. mode="clip" because
        # the default "raise" buffers ``out`` (several times slower); codes are in range.
        for start in range(0, self.codes.shape[0], _CHUNK):
            stop = start + _CHUNK
            np.take(rows, self.codes[start:stop], axis=0, out=gathered[start:stop], mode="clip")
        # Returned as a (L, *S) view of the (*S, L) block rather than paying for a transpose.
        return np.moveaxis(gathered.reshape(self.shape + (-1,)), -1, 0).reshape(lead + self.shape)


@dataclass(frozen=True)
class PatternFit:
    """What a consensus method computed per pattern, before scattering back to pixels.

    Attributes:
        labels: ``(P,)`` int16 consensus class per pattern (may hold NOT_RATED or a tie label).
        posterior: ``(C, P)`` float64 probability (or vote share) of each class per pattern.
        confusion: ``(R, C, C)`` float64, ``[r, i, j]`` = P(rater r says j | true class i).
        support: ``(R, C)`` float64 expected pixel count each confusion row rests on.
        prior: ``(C,)`` float64 class prior the method used.
        iterations: EM iterations run (0 for votes).
        converged: False only when an iterative method stopped at its iteration cap.
    """

    labels: npt.NDArray[np.int16]
    posterior: FloatArray
    confusion: FloatArray
    support: FloatArray
    prior: FloatArray
    iterations: int
    converged: bool


def rows_to_confusion(counts: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Normalise ``(R, C, C)`` expected counts into row-stochastic confusion matrices.

    A row with no evidence (the true class never occurred among the pixels the rater rated) is
    reported as the identity row: no evidence of error. The returned support (row sums, ``(R,
    C)``) says how much each row rests on, so callers that pool reliability across regions can
    weight by it instead of trusting an identity row.
    """
    support = counts.sum(axis=2)
    eye = np.broadcast_to(np.eye(counts.shape[1]), counts.shape)
    safe = np.where(support > 0, support, 1.0)[:, :, None]
    confusion = np.where(support[:, :, None] > 0, counts / safe, eye)
    return confusion, support


def infer_n_classes(masks: np.ndarray) -> int:
    """Return 1 + the largest class id in ``masks`` (at least 1, so all-unrated input works)."""
    if masks.size == 0:
        return 1
    return max(int(masks.max()) + 1, 1)


def _check_layout(masks: np.ndarray) -> np.ndarray:
    """``(R, *S)`` integer array (bool viewed as uint8), or ValueError."""
    masks = np.asarray(masks)
    if masks.dtype == np.bool_:
        masks = masks.view(np.uint8)
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"masks must hold integer class ids, got dtype {masks.dtype}")
    if masks.ndim < 2 or masks.shape[0] < 1:
        raise ValueError(f"masks must have shape (R, ...) with R >= 1, got {masks.shape}")
    return masks


def check_masks(masks: np.ndarray, n_classes: int | None) -> tuple[np.ndarray, int]:
    """Validate ``(R, *S)`` integer masks and return them with the class count C.

    Raises:
        ValueError: on a non-integer dtype, fewer than one rater, or a class id >= C.
    """
    masks = _check_layout(masks)
    top = infer_n_classes(masks)
    if n_classes is None:
        n_classes = top
    elif top > n_classes:
        raise ValueError(f"class id {top - 1} found but n_classes={n_classes}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    return masks, n_classes


def _code_dtype(n_codes: int) -> type[np.integer]:
    """Narrowest integer type holding codes ``0 .. n_codes - 1``."""
    if n_codes <= 1 << 8:
        return np.uint8
    if n_codes <= 1 << 16:
        return np.uint16
    if n_codes <= 1 << 31:
        return np.int32
    return np.int64


def compress(
    masks: np.ndarray, n_classes: int | None = None, *, foreground: int | None = None
) -> VotePatterns:
    """Find the distinct vote patterns of ``(R, *S)`` masks and count them.

    Each pixel's votes are encoded as one base-B integer (B = C, or C + 1 when some pixel is
    unrated, the extra digit meaning "not rated"). Small code spaces are counted with one
    bincount (O(N)); larger ones fall back to a sort (np.unique); code spaces past int64 use
    np.unique over the vote rows.

    Args:
        masks: ``(R, *S)`` integer class ids, negative = not rated.
        n_classes: C; default 1 + the largest id present.
        foreground: binarise on the fly: votes become 1 where equal to ``foreground``, else
            0 (unrated stays unrated), and C = 2. Done chunk by chunk, so no binary copy of
            the stack is made.

    Returns:
        The patterns, their counts, and the per-pixel codes to scatter results back.
    """
    if foreground is None:
        masks, n_classes = check_masks(masks, n_classes)
    else:
        masks, n_classes = _check_layout(masks), 2
    n_raters = masks.shape[0]
    shape = tuple(int(s) for s in masks.shape[1:])
    flat = masks.reshape(n_raters, -1)
    has_unrated = bool(np.issubdtype(flat.dtype, np.signedinteger) and (flat < 0).any())
    base = n_classes + 1 if has_unrated else n_classes
    n_codes = base**n_raters

    def digits(raw: np.ndarray) -> np.ndarray:
        """One rater's votes as code digits; "not rated" takes the top digit, C."""
        values = raw if foreground is None else (raw == foreground).view(np.uint8)
        return np.where(raw < 0, n_classes, values) if has_unrated else values

    if n_codes >= _INT64_CODE_LIMIT:
        rows = np.stack([digits(row) for row in flat], axis=1).astype(np.int16)
        rows[rows == n_classes] = NOT_RATED
        uniq, inverse, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
        return VotePatterns(
            votes=uniq.astype(np.int16),
            counts=counts.astype(np.int64),
            codes=inverse.reshape(-1).astype(np.intp),
            lookup=np.arange(uniq.shape[0], dtype=np.intp),
            shape=shape,
            n_classes=n_classes,
        )

    dtype = _code_dtype(n_codes)
    dense = n_codes <= _DENSE_CODE_LIMIT
    codes = np.empty(flat.shape[1], dtype=dtype)
    all_counts = np.zeros(n_codes if dense else 0, dtype=np.int64)
    # The partial code after k raters is < base^k: do each Horner step in the narrowest
    # integer type that holds it (uint8 for the first 8 binary raters), which halves or
    # quarters the memory traffic of the early steps.
    step_dtypes = [_code_dtype(base ** (rater + 1)) for rater in range(n_raters)]
    # Encode and count chunk by chunk so the Horner steps and bincount's intp copy stay in
    # cache; a chunk is at least the code space, so bincount's output never dominates.
    chunk = max(_CHUNK, n_codes if dense else 0)
    for start in range(0, codes.shape[0], chunk):
        block = codes[start : start + chunk]
        partial: np.ndarray | None = None
        for rater in range(n_raters):
            digit = digits(flat[rater, start : start + chunk])
            if partial is None:
                partial = digit.astype(step_dtypes[0])
                continue
            if partial.dtype != step_dtypes[rater]:
                if step_dtypes[rater] == dtype:
                    block[:] = partial  # widen straight into the output
                    partial = block
                else:
                    partial = partial.astype(step_dtypes[rater])
            np.multiply(partial, partial.dtype.type(base), out=partial)
            np.add(partial, digit, out=partial, casting="unsafe")
        if partial is not block:
            block[:] = partial
        if dense:
            all_counts += np.bincount(block, minlength=n_codes)

    if dense:
        present = np.flatnonzero(all_counts)
        counts = all_counts[present]
        lookup = np.full(n_codes, -1, dtype=np.intp)
        lookup[present] = np.arange(present.shape[0])
    else:
        present, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
        codes = inverse.reshape(-1).astype(np.intp)
        lookup = np.arange(present.shape[0], dtype=np.intp)

    votes = np.empty((present.shape[0], n_raters), dtype=np.int16)
    rest = present.astype(np.int64)
    for rater in range(n_raters - 1, -1, -1):
        votes[:, rater] = rest % base
        rest //= base
    if has_unrated:
        votes[votes == n_classes] = NOT_RATED
    return VotePatterns(
        votes=votes,
        counts=counts.astype(np.int64),
        codes=codes,
        lookup=lookup,
        shape=shape,
        n_classes=n_classes,
    )
