"""Exact linear maps between a source population and a Keras tensor, and their composition.

Between two neuron layers a Keras model may apply any number of linear layers
(convolutions, pooling, padding, batch normalisation, merges ...). The converter carries,
for every tensor, the maps from each source (a neuron layer or the input) that reach it,
and composes each new linear layer into them, so that every path ends as one connection
(NengoDL + NengoLoihi's pass-through removal, without their restriction to dense maps).

Three forms, kept as structured as exactness allows:

* :class:`Identity` (times a scalar): a residual shortcut, a view;
* :class:`Conv`: a 2-D cross-correlation ``(kh, kw, C/groups, F)`` with strides and
  explicit top/left padding (negative: cropping). 1-D data ``(L, C)`` is ``(1, L, C)``,
  a flat vector ``(n,)`` is ``(1, 1, n)``. Pooling, padding, cropping, a depthwise or a
  grouped convolution and a Dense on the channel axis are all of this form; composing two
  of them is again one when the inner map's padding is never read (:meth:`Conv.then`);
* :class:`Matrix`: anything else, as a dense ``ndarray`` or a ``scipy.sparse`` matrix
  ``(n_in, n_out)``.

All arithmetic is float64 on the float32 Keras weights; the network stores float32.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from ..network import Connection, full_kernel


def _sparse():
    """``scipy.sparse``, imported on first use: most models never build a sparse map, and
    the import costs ~0.1 s of every CLI command's start-up."""
    import scipy.sparse  # noqa: PLC0415

    return scipy.sparse


def _issparse(m) -> bool:
    """``scipy.sparse.issparse`` without importing SciPy (nothing is sparse before it is)."""
    module = sys.modules.get("scipy.sparse")
    return module is not None and module.issparse(m)


#: A composed map is kept as a dense matrix when it has at most this many entries and
#: at least :data:`DENSE_FILL` of them are non-zero; otherwise it stays sparse.
DENSE_MAX_ENTRIES = 1 << 24
DENSE_FILL = 0.25


def lift3(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """``shape`` as ``(H, W, C)``: ``(n,)`` → ``(1, 1, n)``, ``(L, C)`` → ``(1, L, C)``."""
    if len(shape) == 3:
        return tuple(int(d) for d in shape)  # type: ignore[return-value]
    if len(shape) == 2:
        return (1, int(shape[0]), int(shape[1]))
    if len(shape) == 1:
        return (1, 1, int(shape[0]))
    return None


class LinearOp:
    """A linear map from ``n_in`` to ``n_out`` values (C-order flattening of the shapes)."""

    n_in: int
    n_out: int

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(n, n_in)`` → ``(n, n_out)``, float64."""
        raise NotImplementedError

    def matrix(self):
        """The map as a matrix ``(n_in, n_out)`` (``ndarray`` or ``scipy.sparse`` CSR)."""
        raise NotImplementedError

    def scaled(self, factor: float) -> "LinearOp":
        raise NotImplementedError

    def then(self, other: "LinearOp") -> "LinearOp":
        """The map ``x → other(self(x))``."""
        if isinstance(other, Identity):
            return self.scaled(other.scale)
        return Matrix.of(_matmul(self.matrix(), other.matrix()))


@dataclass
class Identity(LinearOp):
    """``x → scale · x`` on ``n`` values."""

    n: int
    scale: float = 1.0

    @property
    def n_in(self) -> int:
        return self.n

    @property
    def n_out(self) -> int:
        return self.n

    def apply(self, x):
        return np.asarray(x, np.float64) * self.scale

    def matrix(self):
        return _sparse().identity(self.n, format="csr") * self.scale

    def scaled(self, factor):
        return Identity(self.n, self.scale * factor)

    def then(self, other):
        # the identity adds nothing: no copy of a (possibly large) matrix
        return other if self.scale == 1.0 else other.scaled(self.scale)

    def as_conv(self, shape: tuple[int, ...]) -> "Conv":
        """A 1×1 depthwise conv on ``shape`` (channels last) that equals this map."""
        h, w, c = lift3(shape)
        kernel = np.full((1, 1, 1, c), self.scale)
        return Conv(kernel, (1, 1), (0, 0), c, (h, w, c), (h, w, c))


@dataclass
class Conv(LinearOp):
    """A 2-D cross-correlation (Keras semantics, channels last).

    ``kernel`` is ``(kh, kw, C/groups, F)`` float64; ``pad`` the top/left zero padding
    (negative: the first rows/columns are cropped); the bottom/right side follows from
    ``in_shape`` and ``out_shape`` (both ``(H, W, C)``).
    """

    kernel: np.ndarray
    strides: tuple[int, int]
    pad: tuple[int, int]
    groups: int
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def connection(self, pre: str = "", post: str = "") -> Connection:
        return Connection(pre=pre, post=post, kind="conv", weights=self.kernel,
                          pre_shape=self.in_shape, post_shape=self.out_shape,
                          strides=self.strides, padding=self.pad, groups=self.groups)

    def apply(self, x):
        from ..simulate import conv_operator  # lazy: simulate imports the network only

        return conv_operator(self.connection())(np.asarray(x, np.float64))

    def full(self) -> np.ndarray:
        return full_kernel(self.kernel, self.groups)

    def matrix(self):
        h, w, c = self.in_shape
        oh, ow, f = self.out_shape
        kh, kw = self.kernel.shape[:2]
        sr, sc = self.strides
        pt, pl = self.pad
        cg, fg = c // self.groups, f // self.groups
        # every (input channel, output channel) pair of a group, once
        fo = np.arange(f)
        ci = np.arange(cg)
        in_ch = ((fo // fg) * cg)[None, :] + ci[:, None]  # (cg, f)
        out_ch = np.broadcast_to(fo[None, :], (cg, f))
        rows, cols, vals = [], [], []
        oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
        for a in range(kh):
            for b in range(kw):
                weights = self.kernel[a, b]  # (cg, f)
                nz = weights != 0
                if not nz.any():
                    continue
                iy, ix = oy * sr + a - pt, ox * sc + b - pl
                ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
                pix_in = (iy * w + ix)[ok]
                pix_out = (oy * ow + ox)[ok]
                rows.append((pix_in[:, None] * c + in_ch[nz][None, :]).ravel())
                cols.append((pix_out[:, None] * f + out_ch[nz][None, :]).ravel())
                vals.append(np.broadcast_to(weights[nz][None, :], (pix_in.size, int(nz.sum()))).ravel())
        if not rows:
            return _sparse().csr_matrix((self.n_in, self.n_out))
        return _sparse().csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(self.n_in, self.n_out))

    def scaled(self, factor):
        return Conv(self.kernel * factor, self.strides, self.pad, self.groups, self.in_shape,
                    self.out_shape)

    def then(self, other):
        if isinstance(other, Conv) and other.in_shape == self.out_shape:
            composed = self._compose(other)
            if composed is not None:
                return composed
        return super().then(other)

    def _compose(self, other: "Conv") -> "Conv | None":
        """``other ∘ self`` as one conv, or ``None`` when ``other`` reads padding of
        ``self``'s output that the composite would fill with real input."""
        for axis in (0, 1):
            k1, s1, p1 = self.kernel.shape[axis], self.strides[axis], self.pad[axis]
            n_in, n_mid = self.in_shape[axis], self.out_shape[axis]
            k2, s2, p2 = other.kernel.shape[axis], other.strides[axis], other.pad[axis]
            n_out = other.out_shape[axis]
            bottom2 = (n_out - 1) * s2 + k2 - n_mid - p2
            if p2 > 0 and k1 > s1 + p1:
                return None
            if bottom2 > 0 and n_mid * s1 - p1 < n_in:
                return None
        k2 = other.full()
        g1 = self.groups
        (ah, aw), (bh, bw) = self.kernel.shape[:2], k2.shape[:2]
        cg, mg = self.kernel.shape[2], self.kernel.shape[3] // g1
        # the first kernel by group: (x, y, cg, g, mg); only its own group's middle channels
        k1 = self.kernel.reshape(ah, aw, cg, g1, mg)
        s1r, s1c = self.strides
        kh, kw = ah + (bh - 1) * s1r, aw + (bw - 1) * s1c
        out = np.zeros((kh, kw, g1, cg, k2.shape[3]))
        for a in range(bh):
            for b in range(bw):
                rows = k2[a, b].reshape(g1, mg, -1)  # middle channels by group
                out[a * s1r:a * s1r + ah, b * s1c:b * s1c + aw] += np.einsum(
                    "xycgm,gmf->xygcf", k1, rows)
        out = out.reshape(kh, kw, g1 * cg, -1)  # input channel g·cg + c
        groups = math.gcd(self.groups, other.groups)
        strides = (s1r * other.strides[0], s1c * other.strides[1])
        pad = (self.pad[0] + other.pad[0] * s1r, self.pad[1] + other.pad[1] * s1c)
        return Conv(grouped_kernel(out, groups), strides, pad, groups, self.in_shape,
                    other.out_shape)


def grouped_kernel(full: np.ndarray, groups: int) -> np.ndarray:
    """The ``(kh, kw, C/groups, F)`` diagonal blocks of a plain ``(kh, kw, C, F)`` kernel."""
    if groups == 1:
        return full
    c, f = full.shape[2], full.shape[3]
    cg, fg = c // groups, f // groups
    return np.concatenate([full[:, :, g * cg:(g + 1) * cg, g * fg:(g + 1) * fg]
                           for g in range(groups)], axis=3)


@dataclass
class Matrix(LinearOp):
    """Any linear map, as a dense ``ndarray`` or a ``scipy.sparse`` CSR ``(n_in, n_out)``."""

    m: object

    @classmethod
    def of(cls, m) -> "Matrix":
        if _issparse(m):
            m = m.tocsr()
            size = m.shape[0] * m.shape[1]
            if size <= DENSE_MAX_ENTRIES and m.nnz >= DENSE_FILL * size:
                m = m.toarray()
        return cls(m)

    @property
    def n_in(self) -> int:
        return int(self.m.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.m.shape[1])

    @property
    def is_sparse(self) -> bool:
        return _issparse(self.m)

    def apply(self, x):
        x = np.asarray(x, np.float64)
        if self.is_sparse:
            return np.asarray((self.m.T @ x.T).T)
        return x @ self.m

    def matrix(self):
        return self.m

    def scaled(self, factor):
        if factor == 1.0:
            return self
        if self.is_sparse:
            return Matrix(self.m.astype(np.float64) * factor)
        return Matrix(np.asarray(self.m, np.float64) * factor)


def _matmul(a, b):
    """``a @ b`` for any mix of dense and sparse matrices (dense when either is dense)."""
    if _issparse(a) and _issparse(b):
        return (a @ b).tocsr()
    if _issparse(a):
        return np.asarray(a @ b)
    if _issparse(b):
        return np.asarray((b.T @ a.T).T)
    return a @ b


def selection(in_shape: tuple[int, ...], out_shape: tuple[int, ...], index: np.ndarray) -> Matrix:
    """The 0/1 map that puts input element ``i`` at output position ``index[i]``
    (``-1``: dropped). Views, crops, permutations and the slots of a concatenation."""
    n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    keep = index >= 0
    rows = np.nonzero(keep)[0]
    m = _sparse().csr_matrix((np.ones(rows.size), (rows, index[keep])), shape=(n_in, n_out))
    return Matrix(m)


def gather(in_shape: tuple[int, ...], out_shape: tuple[int, ...], source: np.ndarray) -> Matrix:
    """The 0/1 map whose output element ``j`` copies input element ``source[j]``
    (``-1``: zero). Upsampling repeats inputs; padding reads zeros."""
    n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    keep = source >= 0
    cols = np.nonzero(keep)[0]
    m = _sparse().csr_matrix((np.ones(cols.size), (source[keep], cols)), shape=(n_in, n_out))
    return Matrix.of(m)
