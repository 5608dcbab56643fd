"""A `sitecustomize` source that makes importing the named top-level packages fail (a real missing install, for subprocesses)."""


def blocker_source(names: tuple[str, ...]) -> str:
    return f'''
import importlib.abc, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {names!r}:
            raise ImportError(f"No module named {{name!r}} (a runtime-only install)")
        return None

sys.meta_path.insert(0, Blocked())
'''
