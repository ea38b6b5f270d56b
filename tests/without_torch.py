"""Run the facesearch CLI in a process where torch and torchvision cannot be imported: what a
plain `pip install facesearch` (no `train` extra) gives. Usage: python without_torch.py ARGS."""

import sys
from importlib.abc import MetaPathFinder

BLOCKED = ("torch", "torchvision")


class NotInstalled(MetaPathFinder):
    """Finds torch and torchvision nowhere, as if they were not installed."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())

from facesearch.cli.main import main  # noqa: E402

sys.argv = ["facesearch", *sys.argv[1:]]
main()
