"""The modules of train/ import each other without a cycle, also counting
imports hidden inside functions."""
import ast
import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_imports():
    """module name -> the train modules it imports anywhere in its source."""
    mods = {f[:-3] for f in os.listdir(HERE) if f.endswith(".py") and f != "__init__.py"}
    graph = {}
    for m in mods:
        tree = ast.parse(open(os.path.join(HERE, m + ".py")).read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("train."):
                deps.add(node.module.split(".")[1])
        graph[m] = deps & mods
    return graph


def test_no_import_cycle():
    graph = package_imports()
    assert "pipeline" not in graph["export"] and "losses" in graph["pipeline"]
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", "import cycle: " + " -> ".join(path + [m])
        state[m] = "open"
        for d in sorted(graph[m]):
            visit(d, path + [m])
        state[m] = "done"

    for m in sorted(graph):
        visit(m, [])
