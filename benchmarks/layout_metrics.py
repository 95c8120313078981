"""The package's layout in figures (issue 20's measure): modules per folder, the longest functions and
command functions. `python benchmarks/layout_metrics.py [ROOT]` (ROOT: a checkout, default this one);
import circles and upward imports are `lint-imports`' job."""

import ast
import collections
import sys
from pathlib import Path

LONG_COMMAND = 40


def main(root: Path) -> None:
    per_folder: collections.Counter[str] = collections.Counter()
    functions = []
    for path in sorted((root / "neuro_deploy").rglob("*.py")):
        rel = path.relative_to(root)
        per_folder[str(rel.parent)] += 1
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                command = any("command" in ast.unparse(d) for d in node.decorator_list)
                functions.append((node.end_lineno - node.lineno + 1, f"{rel}:{node.name}", command))
    print("modules per folder:")
    for folder, count in sorted(per_folder.items()):
        print(f"  {folder}: {count}")
    functions.sort(reverse=True)
    print("longest functions:", ", ".join(f"{name} ({n} lines)" for n, name, _ in functions[:5]))
    commands = [(n, name) for n, name, command in functions if command]
    print("longest command:", f"{commands[0][1]} ({commands[0][0]} lines)" if commands else "none")
    print(f"commands over {LONG_COMMAND} lines:", [name for n, name in commands if n > LONG_COMMAND] or "none")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
