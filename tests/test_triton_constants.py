"""Float constants that reach Triton builtins must be exact in float32.

Triton 3.6 (the version on the H200 image of session 21) turns a Python float argument of a
``tl`` builtin such as ``tl.fma``, ``tl.minimum`` or a ``tl.math`` function into a float32
constant before promoting it to the other operand's float64: ``tl.fma(e, LN2_HI, -p)`` computed
with ln 2 rounded to float32, so the double-double logarithm of the Bessel kernel carried an
error of ``e * 1.9e-9`` and log I/K were off by up to 1.8e-6 on the GPU. Operators (``a * C``)
materialise the constant in the result's type and are exact; constants passed to a
``@triton.jit`` helper stay constexpr there and are checked where the helper uses them. Neither
the interpreter nor Triton 3.9 rounds, so no CPU run of the kernels can show this: the check is
on the source. It follows each float constant (a literal, a module-level ``tl.constexpr``, an
expression of them, a helper parameter bound to one) into the builtin calls that receive it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap

import numpy as np
import pytest

pytest.importorskip("triton")

TRITON_MODULES = [
    "gnnsys.ops._bessel_triton",
    "gnnsys.ops._sparse_triton",
    "gnnsys.ops._conv_triton",
    "gnnsys.unified_tensor.gather_triton",
    "gnnsys.loaders._sampler_triton",
]

# builtins whose scalar arguments are not turned into float32 constants (explicit dtype) or
# that take no numeric operands
_EXEMPT = {
    "full",
    "zeros",
    "arange",
    "static_range",
    "range",
    "program_id",
    "num_programs",
    "load",
    "store",
    "static_assert",
    "static_print",
    "device_assert",
    "constexpr",
    "cdiv",
    "multiple_of",
    "max_contiguous",
    "atomic_add",
}


# Triton gives a Python float the float32 type when float32's normal range holds it (float64
# otherwise, exactly)
_FLOAT32_RANGE = (2.0**-126, (2 - 2**-23) * 2.0**127)


def _module_constants(module) -> dict[str, float]:
    import triton.language as tl

    out: dict[str, float] = {}
    for name, value in vars(module).items():
        if isinstance(value, tl.constexpr):
            value = value.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def _jit_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    def is_jit(dec: ast.expr) -> bool:
        node = dec.func if isinstance(dec, ast.Call) else dec
        return isinstance(node, ast.Attribute) and node.attr == "jit"

    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any(is_jit(d) for d in node.decorator_list)
    }


def _values(node: ast.expr, consts: dict[str, float], env: dict[str, set]) -> set | None:
    """The constant values ``node`` can take, or None when it is not a constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        if isinstance(node.value, bool):
            return None
        return {node.value}
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        if node.id in consts:
            return {consts[node.id]}
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _values(node.operand, consts, env)
        if inner is None:
            return None
        return {-v if isinstance(node.op, ast.USub) else v for v in inner}
    if isinstance(node, ast.BinOp):
        left = _values(node.left, consts, env)
        right = _values(node.right, consts, env)
        if left is None or right is None:
            return None
        ops = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__"}
        op = ops.get(type(node.op))
        if op is None:
            return None
        return {getattr(a, op)(b) for a in left for b in right}
    return None


def _static(node: ast.expr, consts: dict[str, float], env: dict[str, set], names: set) -> bool:
    """Whether ``node`` is a Python value at compile time (constants, constexpr parameters)."""
    if isinstance(node, ast.Name) and node.id in names:
        return True
    if isinstance(node, ast.UnaryOp):
        return _static(node.operand, consts, env, names)
    if isinstance(node, ast.BinOp):
        return _static(node.left, consts, env, names) and _static(node.right, consts, env, names)
    return _values(node, consts, env) is not None


def _call_name(call: ast.Call) -> tuple[str | None, str]:
    """('tl', 'fma') for tl.fma / tl.math.fma, (None, 'helper') for helper(...)."""
    func = call.func
    if isinstance(func, ast.Name):
        return None, func.id
    if isinstance(func, ast.Attribute):
        base = func.value
        if isinstance(base, ast.Name) and base.id == "tl":
            return "tl", func.attr
        if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name):
            if base.value.id == "tl":
                return "tl", func.attr
    return None, ""


def float32_inexact_constants(source: str, consts: dict[str, float]) -> list[str]:
    """Where a float constant that float32 cannot hold reaches a ``tl`` builtin's argument."""
    tree = ast.parse(textwrap.dedent(source))
    funcs = _jit_functions(tree)
    # which constant values each helper parameter receives, to a fixed point
    envs: dict[str, dict[str, set]] = {name: {} for name in funcs}
    changed = True
    while changed:
        changed = False
        for name, fn in funcs.items():
            for call in ast.walk(fn):
                if not isinstance(call, ast.Call):
                    continue
                base, callee = _call_name(call)
                if base is not None or callee not in funcs:
                    continue
                params = [a.arg for a in funcs[callee].args.args]
                bound = list(zip(params, call.args))
                bound += [(k.arg, k.value) for k in call.keywords if k.arg in params]
                for param, arg in bound:
                    vals = _values(arg, consts, envs[name])
                    if vals and not vals <= envs[callee].get(param, set()):
                        envs[callee][param] = envs[callee].get(param, set()) | vals
                        changed = True
    # parameters declared tl.constexpr: Python values inside the function
    statics = {
        name: {
            a.arg
            for a in fn.args.args
            if a.annotation is not None and ast.unparse(a.annotation).endswith("constexpr")
        }
        for name, fn in funcs.items()
    }
    found = []

    def check(name: str, where: str, node: ast.expr, env: dict[str, set]) -> None:
        for v in _values(node, consts, env) or ():
            if isinstance(v, float) and np.isfinite(v) and _FLOAT32_RANGE[0] <= abs(v):
                if abs(v) <= _FLOAT32_RANGE[1] and float(np.float32(v)) != v:
                    off = float(np.float32(v)) - v
                    found.append(f"{name}: {where}({ast.unparse(node)}) gets {v!r}, {off:+.3g}")

    for name, fn in funcs.items():
        env = envs[name]
        for node in ast.walk(fn):
            if isinstance(node, ast.Call):
                base, builtin = _call_name(node)
                if base == "tl" and builtin not in _EXEMPT:
                    for arg in list(node.args) + [k.value for k in node.keywords]:
                        check(name, f"tl.{builtin}", arg, env)
            elif isinstance(node, ast.Compare):
                # tensor < constant: Triton 3.6's comparison operators make the constant a
                # tensor by itself (float32); constant < constant is Python's own comparison
                operands = [node.left, *node.comparators]
                if not all(_static(o, consts, env, statics[name]) for o in operands):
                    for o in operands:
                        check(name, "compare", o, env)
    return found


@pytest.mark.parametrize("module_name", TRITON_MODULES)
def test_no_float32_inexact_constant_reaches_a_builtin(module_name: str) -> None:
    module = importlib.import_module(module_name)
    found = float32_inexact_constants(inspect.getsource(module), _module_constants(module))
    assert found == [], "\n".join(found)


OLD_DD_LOG = """
LN2_HI = tl.constexpr(0.6931471805599453)

@triton.jit
def _two_prod(a, b):
    p = a * b
    return p, tl.fma(a, b, -p)

@triton.jit
def _dd_log(ex):
    exf = ex.to(tl.float64)
    kh, kl = _two_prod(exf, LN2_HI)
    return kh + kl

@triton.jit
def _other(x, SIGN: tl.constexpr):
    y = tl.where(x < LN2_HI, x, 1e300)
    if SIGN > 0.1:
        y = -y
    return tl.maximum(y, 0.1), tl.minimum(x, 0.5), tl.fma(x, x, -2.0 * 0.75), x < 1e-300
"""


def test_checker_finds_the_session_21_bessel_bug() -> None:
    found = float32_inexact_constants(OLD_DD_LOG, {"LN2_HI": 0.6931471805599453})
    # ln 2 through the helper's parameter into tl.fma, 0.1 straight into tl.maximum and ln 2 in a
    # tensor comparison; 0.5 and -1.5 are exact in float32, 1e300 and 1e-300 are float64
    # constants, SIGN > 0.1 is a Python comparison
    assert len(found) == 3, found
    assert found[0].startswith("_two_prod: tl.fma(b) gets 0.6931471805599453")
    assert found[1].startswith("_other: compare(LN2_HI) gets 0.6931471805599453")
    assert found[2].startswith("_other: tl.maximum(0.1)")


def test_checker_passes_the_fixed_form() -> None:
    fixed = OLD_DD_LOG.replace(
        "_two_prod(exf, LN2_HI)", "_two_prod(exf, tl.full(exf.shape, LN2_HI, tl.float64))"
    ).replace("tl.maximum(y, 0.1)", "tl.maximum(y, y * 0.0 + 0.1)")
    fixed = fixed.replace("x < LN2_HI", "x < x * 0.0 + LN2_HI")
    assert float32_inexact_constants(fixed, {"LN2_HI": 0.6931471805599453}) == []
