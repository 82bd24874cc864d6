"""What the converter knows about a Keras tensor: the linear paths that reach it.

A :class:`Value` is ``Σ_terms op(source output) + bias``: each :class:`Term` is one path
from a source (a neuron layer or the model input) through linear Keras layers. A neuron
layer applied to a value gets one connection per term (NengoLoihi's semantics: a merge of
branches is several incoming synapses), the bias becomes its bias current.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .linear import Conv, Identity, LinearOp, Matrix


@dataclass
class Term:
    """One linear path ``source → … → this tensor``.

    ``source`` names a neuron layer (or the input), ``op`` maps its flat output to the
    tensor's flat values, ``path`` lists the Keras layers along the way.
    """

    source: str
    op: LinearOp
    path: tuple[str, ...] = ()


@dataclass
class Value:
    """A tensor between neuron layers (see module docstring).

    Attributes
    ----------
    shape
        The Keras shape without the batch axis.
    terms
        The paths reaching this tensor.
    bias
        Flat float64 constant added to it, or ``None``.
    nonneg
        True when every value it can take is >= 0 (neuron outputs, averaged): a relu of
        it is the identity.
    softmax
        A softmax was applied (only views may follow).
    """

    shape: tuple[int, ...]
    terms: list[Term]
    bias: np.ndarray | None = None
    nonneg: bool = False
    softmax: bool = False
    layers: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def through(self, op: LinearOp, name: str, shape: tuple[int, ...],
                bias: np.ndarray | None = None) -> "Value":
        """This value passed through the linear layer ``name`` (``op``, then ``+ bias``)."""
        terms = [Term(t.source, t.op.then(op), t.path + (name,)) for t in self.terms]
        new_bias = None if self.bias is None else op.apply(self.bias[None])[0]
        if bias is not None:
            new_bias = bias if new_bias is None else new_bias + bias
        nonneg = self.nonneg and bias is None and op_is_nonneg(op)
        return Value(tuple(shape), terms, new_bias, nonneg, self.softmax, self.layers + (name,))

    def viewed(self, name: str, shape: tuple[int, ...]) -> "Value":
        """The same values under another shape (Flatten, Reshape: C order is kept)."""
        return replace(self, shape=tuple(shape), layers=self.layers + (name,),
                       terms=[Term(t.source, t.op, t.path + (name,)) for t in self.terms])

    def scaled(self, factor: float) -> "Value":
        terms = [Term(t.source, t.op.scaled(factor), t.path) for t in self.terms]
        bias = None if self.bias is None else self.bias * factor
        return Value(self.shape, terms, bias, self.nonneg and factor >= 0, self.softmax,
                     self.layers)


def op_is_nonneg(op: LinearOp) -> bool:
    """Whether ``op`` maps non-negative inputs to non-negative outputs."""
    if isinstance(op, Identity):
        return op.scale >= 0
    if isinstance(op, Conv):
        return bool((op.kernel >= 0).all())
    if isinstance(op, Matrix):
        m = op.m
        data = m.data if hasattr(m, "data") and not isinstance(m, np.ndarray) else m
        return bool((np.asarray(data) >= 0).all())
    return False


def source_value(name: str, shape: tuple[int, ...], nonneg: bool) -> Value:
    """The output of a neuron layer (or the input) as a value of its own."""
    n = int(np.prod(shape))
    return Value(tuple(shape), [Term(name, Identity(n))], None, nonneg, False, ())
