"""Build hook: ship the report notebooks inside the wheel.

``notebooks/*.py`` stay at the top of the repository (the jupytext sources analysts open), and
``build_py`` copies them to ``stance/notebooks/`` in the built package, so ``stance report``
works from a plain ``pip install`` as well as from a checkout. Everything else is in
``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithNotebooks(build_py):
    """``build_py`` that also copies ``notebooks/*.py`` into the package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "stance" / "notebooks"
        self.mkpath(str(target))
        for src in sorted(Path(__file__).resolve().parent.joinpath("notebooks").glob("*.py")):
            self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildPyWithNotebooks})
