"""The package's layers only point down: no module imports a subpackage above its own
(imports inside functions included), so there is no import cycle between subpackages."""
import ast
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PACKAGE = osp.join(ROOT, 'tedloc_mm')

#: from the bottom up; a module may import its own subpackage and those on lower levels
LEVELS = (
    ('version', 'fileio', 'tool_errors'),
    ('compat', 'structures', 'model_index'),
    ('registry', ),
    ('evaluation', ),
    ('datasets', 'embedded_benchmarks'),
    ('clip', ),
    ('pseudo_labels', ),
    ('models', ),
    ('engine', 'visualization'),
    ('analysis', 'apis'),
    ('workflow', ),
)
LEVEL = {name: i for i, names in enumerate(LEVELS) for name in names}


def _part(module: str) -> str:
    """'tedloc_mm.fileio.checkpoint' -> 'fileio'; the package itself -> '__init__'."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


def _imports(path: str, module: str):
    """(line, imported tedloc_mm module) of every import in the file, at any depth."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    package = module if path.endswith('__init__.py') else module.rsplit('.', 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('tedloc_mm'):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            if target.startswith('tedloc_mm'):
                if target == 'tedloc_mm':  # from tedloc_mm import compat / fileio / ...
                    for alias in node.names:
                        yield node.lineno, f'tedloc_mm.{alias.name}'
                else:
                    yield node.lineno, target


def _modules():
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d not in ('configs', '__pycache__')]
        for f in files:
            if f.endswith('.py'):
                path = osp.join(root, f)
                rel = osp.relpath(path, ROOT)[:-3].replace(os.sep, '.')
                yield path, rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def test_every_subpackage_has_a_level():
    parts = {_part(m) for _, m in _modules()} - {'__init__'}
    assert parts == set(LEVEL), parts ^ set(LEVEL)


def test_imports_point_down_only():
    wrong = []
    for path, module in _modules():
        own = _part(module)
        if own == '__init__':
            continue  # the package's face: lazy access to every subpackage
        for line, target in _imports(path, module):
            other = _part(target)
            if other == own:
                continue
            if other == '__init__' or LEVEL[other] > LEVEL[own] or (
                    LEVEL[other] == LEVEL[own]):
                wrong.append(f'{osp.relpath(path, ROOT)}:{line} imports {target}')
    assert not wrong, '\n'.join(wrong)
