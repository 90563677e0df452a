"""PCG64's raw 64-bit words, compiled (imported only when numba is).

numpy hands out a PCG64 stream's words through ``bit_generator.random_raw``, which calls
the generator once per word through a function pointer (about 2.2 ns a word here): half
the normal sampler's cost. This loop produces the very same words (numpy's PCG64 is the
128-bit LCG with the "XSL RR" output: step, then xor-fold and rotate) at about 1.3 ns,
the 128-bit products done by LLVM on four interleaved copies of the stream (each jumping
four steps at a time) so that they overlap instead of waiting on each other. Integer
arithmetic only: the words are the same on every CPU.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: The 128-bit LCG multiplier of numpy's PCG64.
MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645
_MASK64, _MASK128 = (1 << 64) - 1, (1 << 128) - 1
#: Interleaved copies of the stream, so that successive 128-bit multiplies overlap.
LANES = 4
_MULTIPLIER_L = pow(MULTIPLIER, LANES, 1 << 128)
_GEOMETRIC_L = sum(pow(MULTIPLIER, k, 1 << 128) for k in range(LANES)) & _MASK128
_SHIFT_ROTATION, _LOW_SIX_BITS = np.uint64(58), np.uint64(63)

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")


@intrinsic
def _lcg(typingctx, state_hi, state_lo, mul_hi, mul_lo, add_hi, add_lo):
    """(state · mul + add) mod 2¹²⁸, each operand and the result as (high, low) halves."""

    def codegen(context, builder, signature, args):
        i128, i64 = ir.IntType(128), ir.IntType(64)

        def join(hi, lo):
            high = builder.shl(builder.zext(hi, i128), ir.Constant(i128, 64))
            return builder.or_(high, builder.zext(lo, i128))

        state, mul, add = join(*args[0:2]), join(*args[2:4]), join(*args[4:6])
        new = builder.add(builder.mul(state, mul), add)
        hi = builder.trunc(builder.lshr(new, ir.Constant(i128, 64)), i64)
        lo = builder.trunc(new, i64)
        return context.make_tuple(builder, signature.return_type, (hi, lo))

    return types.UniTuple(types.uint64, 2)(*(types.uint64,) * 6), codegen


@_jit
def _output(hi, lo):
    """PCG's XSL RR output of one 128-bit state."""
    folded = hi ^ lo
    rotation = hi >> _SHIFT_ROTATION
    return (folded >> rotation) | (folded << ((-rotation) & _LOW_SIX_BITS))


@_jit
def _fill(states, jump, out):
    """Words from LANES interleaved copies of the stream: lane j holds the state of word
    i + j and jumps LANES steps at a time (independent multiplies, so they overlap)."""
    m_hi, m_lo, c_hi, c_lo = jump[0], jump[1], jump[2], jump[3]
    s0h, s0l, s1h, s1l = states[0], states[1], states[2], states[3]
    s2h, s2l, s3h, s3l = states[4], states[5], states[6], states[7]
    n = out.size
    i = 0
    while i + LANES <= n:
        out[i], out[i + 1] = _output(s0h, s0l), _output(s1h, s1l)
        out[i + 2], out[i + 3] = _output(s2h, s2l), _output(s3h, s3l)
        s0h, s0l = _lcg(s0h, s0l, m_hi, m_lo, c_hi, c_lo)
        s1h, s1l = _lcg(s1h, s1l, m_hi, m_lo, c_hi, c_lo)
        s2h, s2l = _lcg(s2h, s2l, m_hi, m_lo, c_hi, c_lo)
        s3h, s3l = _lcg(s3h, s3l, m_hi, m_lo, c_hi, c_lo)
        i += LANES
    lanes = ((s0h, s0l), (s1h, s1l), (s2h, s2l), (s3h, s3l))
    for j in range(n - i):
        out[i + j] = _output(lanes[j][0], lanes[j][1])


def pcg64_words(bit_generator: np.random.PCG64, n: int) -> np.ndarray:
    """The next ``n`` words of ``bit_generator``, exactly as ``random_raw(n)``, and its
    state advanced past them."""
    if type(bit_generator) is not np.random.PCG64:
        raise TypeError(f"PCG64 words from a {type(bit_generator).__name__}")
    with bit_generator.lock:  # as random_raw: one caller at a time per generator
        return _words_locked(bit_generator, n)


def _words_locked(bit_generator: np.random.PCG64, n: int) -> np.ndarray:
    whole = bit_generator.state
    state, inc = whole["state"]["state"], whole["state"]["inc"]
    out = np.empty(n, np.uint64)
    lanes = []  # the states of the next LANES words (PCG steps, then outputs)
    for _ in range(LANES):
        state = (state * MULTIPLIER + inc) & _MASK128
        lanes += [state >> 64, state & _MASK64]
    # LANES steps at once: s ↦ M^L·s + inc·(1 + M + … + M^(L−1)).
    jump = [_MULTIPLIER_L >> 64, _MULTIPLIER_L & _MASK64]
    add = (inc * _GEOMETRIC_L) & _MASK128
    jump += [add >> 64, add & _MASK64]
    _fill(np.array(lanes, np.uint64), np.array(jump, np.uint64), out)
    # advance() also drops the buffered half word of 32-bit draws, which random_raw keeps.
    bit_generator.advance(n)
    advanced = bit_generator.state
    advanced["has_uint32"], advanced["uinteger"] = whole["has_uint32"], whole["uinteger"]
    bit_generator.state = advanced
    return out
