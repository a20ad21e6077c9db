"""Package layout only (metadata is in pyproject.toml): one import namespace, ``visualizr``.

The repository keeps ``frontend/`` and ``export/`` as top-level folders; they install as ``visualizr.frontend``
and ``visualizr.export``, so the distribution puts no generic top-level names into site-packages. The SDK
(``visualizr_client``) is its own distribution in ``sdk/``.
"""

from setuptools import find_packages, setup

MAPPED = {"frontend": "visualizr.frontend", "export": "visualizr.export"}

packages = find_packages(include=["visualizr", "visualizr.*"])
for folder, name in MAPPED.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir={name: folder for folder, name in MAPPED.items()})
