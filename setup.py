"""Package discovery that cannot forget a subpackage: every package under lrenum/ is found, and
the device kernels (kept at the top of the repository in kernels/) install as lrenum.kernels, so
nothing called "kernels" lands in site-packages. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["lrenum", "lrenum.*"]) + ["lrenum.kernels"],
      package_dir={"lrenum.kernels": "kernels"})
