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
