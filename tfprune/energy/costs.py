"""What one operation and one memory access cost: :class:`EnergyCosts` and the data types.

Every number is a parameter with a documented default; the defaults are the 45 nm, 0.9 V
figures of M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014
(energy per operation), in the 32-bit-access form of S. Han et al., "Learning both weights and
connections for efficient neural networks", NeurIPS 2015, Table 1 (SRAM 5 pJ, DRAM 640 pJ per
32-bit access; register file 1 pJ).
"""
from __future__ import annotations

import dataclasses

from tfprune import checks

#: Bytes per value of each data type the estimate knows.
DTYPE_BYTES = {"float32": 4, "float16": 2, "int8": 1}


def check_dtype(value, argument: str = "dtype") -> str:
    """``value`` if it is a known data type (``float32``, ``float16``, ``int8``)."""
    return checks.choice(value, argument, DTYPE_BYTES)


@dataclasses.dataclass(frozen=True)
class EnergyCosts:
    """Energy per operation and per memory access (pJ), and where the data lives.

    Arithmetic, per operation (Horowitz 2014, 45 nm):

    * ``float32_add_pj`` 0.9 and ``float32_mult_pj`` 3.7: a float32 MAC is 4.6 pJ;
    * ``float16_add_pj`` 0.4 and ``float16_mult_pj`` 1.1: a float16 MAC (float16 accumulator)
      is 1.5 pJ;
    * ``int8_mult_pj`` 0.2 and ``int32_add_pj`` 0.1: an int8 MAC is an 8-bit multiply and a
      **32-bit** add, 0.3 pJ, because int8 inference (TFLite's kernels) accumulates in int32.
      (Horowitz's 8-bit add, 0.03 pJ, and 32-bit multiply, 3.1 pJ, are not used: no kernel
      here accumulates in 8 bits or multiplies 32-bit integers.) ``int32_add_pj`` is also the
      address arithmetic of a sparse format: one add per index read.

    Memory, per 32-bit access; an access of ``b`` bytes costs ``b / 4`` of it (energy scales
    with the bytes moved, so an int8 weight costs a quarter of a float32 one):

    * ``register_pj`` 1.0: register file (Han et al. 2015, Table 1); each MAC reads
      ``register_reads_per_mac`` (default 2: its weight and its input) operands of the
      arithmetic's data type from it. That is where reuse happens: every weight and activation
      is fetched from SRAM/DRAM **once** per inference and reused from registers (ideal reuse,
      the best a dataflow can do; a real accelerator refetches more, so this is a lower bound).
    * ``sram_pj`` 5.0: on-chip SRAM (Han et al. 2015; Horowitz gives 10-20 pJ per 64-bit
      access to an 8-32 KB cache).
    * ``dram_pj`` 640.0: off-chip DRAM (Han et al. 2015; Horowitz: 1.3-2.6 nJ per 64 bits).

    Where data lives:

    * ``on_chip_bytes`` (default 1 MiB, a phone SoC's cache): the weights (values and sparse
      indices, all layers together) live in SRAM when they fit in it, in DRAM otherwise; one
      place for the whole model.
    * ``activations_on_chip`` (default True): activations are read and written in SRAM (False:
      DRAM). Each layer reads its input and writes its output once; writes cost what reads cost.

    Sparse formats:

    * ``index_bits`` (default 16): bits per stored index. An element-sparse (CSR-like) weight
      stores one index per kept weight; a block-sparse one one index per kept block (the
      zeros inside a kept block are stored and multiplied). Indices live where the weights live.

    Not counted: biases, BatchNorm, activation functions, pooling, merges (as
    :func:`tfprune.structured.layer_flops`), control, instruction fetch and leakage.

    Example:
        >>> EnergyCosts().mac_pj("float32"), EnergyCosts(dram_pj=1300.0).dram_pj
        (4.6, 1300.0)
        >>> EnergyCosts(sram_pj=-1)
        Traceback (most recent call last):
        ...
        ValueError: sram_pj: got -1; allowed: a finite number >= 0.
    """

    float32_add_pj: float = 0.9
    float32_mult_pj: float = 3.7
    float16_add_pj: float = 0.4
    float16_mult_pj: float = 1.1
    int8_mult_pj: float = 0.2
    int32_add_pj: float = 0.1
    register_pj: float = 1.0
    register_reads_per_mac: float = 2.0
    sram_pj: float = 5.0
    dram_pj: float = 640.0
    on_chip_bytes: int = 1 << 20
    activations_on_chip: bool = True
    index_bits: int = 16

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "activations_on_chip":
                if not isinstance(value, bool):
                    raise ValueError(f"activations_on_chip: got {value!r}; allowed: True or False.")
            elif field.name in ("on_chip_bytes", "index_bits"):
                checks.integer(value, field.name, 1 if field.name == "index_bits" else 0)
            else:
                checks.nonnegative_number(value, field.name)

    def mac_pj(self, dtype: str) -> float:
        """Energy of one multiply-accumulate in ``dtype`` arithmetic (see the class docstring)."""
        dtype = check_dtype(dtype, "compute_dtype")
        if dtype == "float32":
            return round(self.float32_mult_pj + self.float32_add_pj, 12)
        if dtype == "float16":
            return round(self.float16_mult_pj + self.float16_add_pj, 12)
        return round(self.int8_mult_pj + self.int32_add_pj, 12)

    def access_pj(self, place: str) -> float:
        """Energy of one 32-bit access to ``"SRAM"`` or ``"DRAM"``."""
        return self.sram_pj if place == "SRAM" else self.dram_pj
