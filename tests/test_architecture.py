"""The shape of the code: imports point one way, no module takes another's private names,
and there is no import cycle (see CONTRIBUTING.md)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "sgdlab"

#: Layers, lowest first: a module may import from its own layer and the ones below.
LAYERS = [
    {"errors", "_types", "_lazy", "files"},
    {"data", "convolution", "models", "losses", "tasks", "user_models"},
    {"optim", "grad"},
    {"engine"},
    {"lab", "estimators", "distributed"},
    {"report"},
    {"cli", "api", "run_directory", "__init__", "__main__"},
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path):
    """``(imported module, imported names)`` of every sgdlab import in the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "sgdlab" or target.startswith("sgdlab."):
                yield target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sgdlab"):
                    yield a.name, []


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_module_has_a_layer():
    for name in MODULES:
        _layer(name)  # StopIteration names a module outside LAYERS


def test_imports_point_one_way():
    upward = []
    for name, path in MODULES.items():
        for target, _ in _imports(name, path):
            if target in MODULES and _layer(target) > _layer(name):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_no_private_name_is_imported_from_another_module():
    found = []
    for name, path in MODULES.items():
        for target, names in _imports(name, path):
            for imported in names:
                is_module = f"{target}.{imported}" in MODULES
                same_package = target == name.rpartition(".")[0] or target == name
                if imported.startswith("_") and not imported.startswith("__") and \
                        not (is_module and same_package):  # a package's private module
                    found.append(f"{name} imports {imported} from {target}")
    assert not found, "private names across modules:\n" + "\n".join(found)


def test_there_is_no_import_cycle():
    graph = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, names in _imports(name, path):
            for t in [target, *(f"{target}.{n}" for n in names)]:
                # importing a package's submodule runs the package first; that edge is the
                # package's own business, not a cycle between modules
                if t in MODULES and t != name and not name.startswith(t + "."):
                    graph[name].add(t)
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_a_run_calls_down_the_layers_only():
    # sgdlab.fit -> RunDirectory.run -> the recovery loop -> the engine's training: no frame of
    # a run calls back into a higher layer (a closure defined in api.py, say)
    import sys

    import numpy as np

    import sgdlab

    seen = []

    def callback(event):
        if not seen:
            frame = sys._getframe(1)
            while frame is not None:
                name = frame.f_globals.get("__name__", "")
                if name.startswith("sgdlab"):
                    seen.append(name)
                frame = frame.f_back

    X = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    sgdlab.fit(X, (X[:, 0] > 0).astype(int), epochs=1, callback=callback,
               on_divergence="halve-lr")
    outer_to_inner = list(reversed(seen))
    assert outer_to_inner[0] == "sgdlab.api" and "sgdlab.engine.resume" in outer_to_inner
    layers = [_layer(name) for name in outer_to_inner]
    assert layers == sorted(layers, reverse=True), outer_to_inner


def test_importing_sgdlab_and_building_the_parser_import_no_jax():
    # a fresh interpreter is the point: this process has imported JAX long ago
    import subprocess
    import sys
    code = ("import sys, sgdlab\n"
            "from sgdlab.cli.main import build_parser\n"
            "build_parser().parse_args(['sweep', '--model', 'mlp'])\n"
            "sgdlab.TrainConfig(optimizer='adamw')\n"
            "heavy = sorted(m for m in ('jax', 'optax', 'sklearn', 'matplotlib') "
            "if m in sys.modules)\n"
            "print(heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
