"""The package has one implementation of the decoder layer, of attention and of the model's
normalization: everything else (the sampler's prefill and decode, the losses) calls it.
A second copy of this math is what the sampler once had; this test keeps it from coming back."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "jaxreason"
MODEL_FILE = PACKAGE / "model" / "llama.py"


def _python_files():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _calls(tree: ast.AST, dotted: str) -> int:
    """Calls of `x.y.softmax(...)`-style attributes ending in `dotted`."""
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name == dotted:
                count += 1
    return count


def test_only_the_model_defines_decoder_layer_attention_and_norm():
    defined: dict[str, list[str]] = {}
    for path in _python_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                defined.setdefault(node.name, []).append(str(path.relative_to(PACKAGE)))
    for name in ("decoder_layer", "attention", "causal_attention", "rms_norm", "apply_rope"):
        assert defined.get(name) == ["model/llama.py"], (name, defined.get(name))
    layer_like = [f"{n} in {f}" for n, files in defined.items() for f in files
                  if n != "decoder_layer" and (("layer" in n and "decode" in n)
                                               or n in ("decode_step", "_layer"))]
    assert not layer_like, layer_like


def test_attention_softmax_and_kv_einsums_live_only_in_the_model():
    """Einsums against a key/value cache and the norm's rsqrt appear only in llama.py, which
    has exactly one softmax (attention's)."""
    for path in _python_files():
        source = path.read_text()
        tree = ast.parse(source)
        if path == MODEL_FILE:
            assert _calls(tree, "softmax") == 1
            continue
        for contraction in ("bksd", "bskd", "bkds", "rsqrt"):  # attention / norm math
            assert contraction not in source, (path, contraction)
