"""Every public function of xaikit is fully annotated.

For each module of the package (``xaikit.__main__`` aside, which runs the command line), every
function in ``__all__`` defined in that module, and every public method defined in a class of
``__all__``, must annotate each parameter (``*args``/``**kwargs`` included, ``self``/``cls``
excepted) and its return value.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any, Callable, Iterator

import xaikit

SKIPPED_MODULES = {"xaikit.__main__"}


def _modules() -> Iterator[ModuleType]:
    yield xaikit
    for info in pkgutil.walk_packages(xaikit.__path__, prefix="xaikit."):
        if info.name not in SKIPPED_MODULES:
            yield importlib.import_module(info.name)


def _missing(func: Callable[..., Any], *, bound: bool) -> list[str]:
    """Names of the unannotated parameters of ``func`` (``return`` for the return value).

    ``bound``: ``func`` is a method, whose first parameter (``self``/``cls``) needs none.
    """
    signature = inspect.signature(inspect.unwrap(func), follow_wrapped=False)
    params = list(signature.parameters.values())
    if bound and params and params[0].name in ("self", "cls"):
        params = params[1:]
    missing = [("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "")
               + p.name for p in params if p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _methods(cls: type) -> Iterator[tuple[str, Callable[..., Any], bool]]:
    """The public methods defined in ``cls`` itself: (name, function, takes self/cls)."""
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, staticmethod):
            yield name, attr.__func__, False
        elif isinstance(attr, classmethod):
            yield name, attr.__func__, True
        elif isinstance(attr, property):
            for accessor in (attr.fget, attr.fset, attr.fdel):
                if accessor is not None:
                    yield name, accessor, True
        elif callable(attr) and inspect.isfunction(inspect.unwrap(attr)):
            yield name, attr, True


def _unannotated() -> dict[str, list[str]]:
    """``{"module.function": [missing parameters]}`` over the whole package."""
    found: dict[str, list[str]] = {}
    for module in _modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # re-exported from elsewhere (checked there) or a constant
            if inspect.isclass(obj):
                for method_name, func, bound in _methods(obj):
                    if missing := _missing(func, bound=bound):
                        found[f"{module.__name__}.{name}.{method_name}"] = missing
            elif callable(obj) and inspect.isfunction(inspect.unwrap(obj)):
                if missing := _missing(obj, bound=False):
                    found[f"{module.__name__}.{name}"] = missing
    return found


def test_public_functions_are_annotated() -> None:
    found = _unannotated()
    assert not found, "unannotated public functions:\n" + "\n".join(
        f"  {name}: {', '.join(missing)}" for name, missing in sorted(found.items()))
