"""Package layout only (metadata is in pyproject.toml): one import namespace, ``visualizr``.

The repository keeps ``frontend/`` and ``export/`` as top-level folders; they install as ``visualizr.frontend``
and ``visualizr.export``, so the distribution puts no generic top-level names into site-packages. The SDK
(``visualizr_client``) is its own distribution in ``sdk/``.
"""

from setuptools import find_namespace_packages, setup

MAPPED = {"frontend": "visualizr.frontend", "export": "visualizr.export"}
NOT_PACKAGES = ["*__pycache__*", "*.egg-info*", "studio.vendor", "studio.vendor.*"]  # vendor: package data (pyproject)

# Namespace packages: folders of package data (studio/static, a family's data/) are packages too, as setuptools
# expects of any importable folder (otherwise every install warns about each).
packages = find_namespace_packages(include=["visualizr", "visualizr.*"], exclude=NOT_PACKAGES)
for folder, name in MAPPED.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=NOT_PACKAGES)]

setup(packages=packages, package_dir={name: folder for folder, name in MAPPED.items()})
