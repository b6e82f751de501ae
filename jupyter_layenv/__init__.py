"""jupyter_layenv: layered Conda + virtualenv environments as first-class Jupyter kernels."""

from typing import Any

from ._version import __version__

__all__ = ["LayenvKernelSpecManager", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported lazily so `import jupyter_layenv` (entry points, the CLI's --help) stays cheap.
    if name == "LayenvKernelSpecManager":
        from .kernelspecs import LayenvKernelSpecManager

        return LayenvKernelSpecManager
    raise AttributeError(name)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import LayenvExtension

    return [{"module": "jupyter_layenv", "app": LayenvExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # The prebuilt JupyterLab panel (built from labextension/ into jupyter_layenv/labextension); the wheel also
    # installs it into share/jupyter/labextensions/jupyter_layenv, this entry serves `jupyter labextension develop`.
    return [{"src": "labextension", "dest": "jupyter_layenv"}]
