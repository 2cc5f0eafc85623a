"""The results cache: expensive, deterministic results on disk under a key that covers all the
code that shapes them.

A key is the SHA-256 of a canonical JSON record (`key_of`). The code part of a record is a
*fingerprint*: a digest of the normalised bytecode of a function and of everything of this
project it reaches (functions, classes, and the values of the UPPER_CASE constants it reads),
followed transitively (`code_fingerprint`). Bytecode, not source text: comments, docstrings,
formatting and moving code between files leave it unchanged; any change to what the code does
changes it.

Entries are joblib pickles under <cache>/<namespace>/<key[:2]>/<key>.joblib (the cache folder
is `config.settings().cache`, .cache/ by default; `make clean-cache` deletes it). Their compact
records travel with the repository in the run ledger (ledger.py): `fetch` looks in the local
cache, then in the ledger, under the same key.
"""

from __future__ import annotations

import dis
import hashlib
import inspect
import json
import os
import sys
import types
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import ledger
from .config import settings
from .results import jsonable

PACKAGE = __name__.rpartition(".")[0]  # "mnist_report"
# Versions that can change a trained network's numbers; part of every training key.
KEY_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy")


# ------------------------------------------------------------------------------------------------
# Code fingerprints
# ------------------------------------------------------------------------------------------------


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def instructions(code: types.CodeType) -> list[tuple[str, str]]:
    """The bytecode of `code` as (operation, argument) pairs: no line numbers, jumps by the
    position of their target instruction, nested functions by name, and the one difference
    between a call compiled in its module and alone (LOAD_METHOD vs LOAD_ATTR) removed."""
    listing = list(dis.get_instructions(code))
    position = {ins.offset: k for k, ins in enumerate(listing)}
    pairs = []
    for ins in listing:
        name = "LOAD_ATTR" if ins.opname == "LOAD_METHOD" else ins.opname
        if ins.opcode in dis.hasjrel or ins.opcode in dis.hasjabs:
            argument = str(position[ins.argval])
        elif isinstance(ins.argval, types.CodeType):
            argument = ins.argval.co_name
        elif isinstance(ins.argval, frozenset):  # a set literal: its order follows the hash seed
            argument = repr(sorted(map(repr, ins.argval)))
        else:
            argument = ins.argrepr.removeprefix("NULL + ")
        pairs.append((name, argument))
    return pairs


def _unwrap(obj: Any) -> Any:
    return inspect.unwrap(obj) if callable(obj) and hasattr(obj, "__wrapped__") else obj


def _ours(obj: Any, homes: set[str]) -> bool:
    """Code of this project (the package), or of a module the fingerprint started in (a
    notebook's own builder and what it calls)."""
    module = getattr(obj, "__module__", None) or ""
    return module in homes or module == PACKAGE or module.startswith(PACKAGE + ".")


_SIMPLE = (bool, int, float, str, bytes, type(None))


def _simple(value: Any) -> bool:
    if isinstance(value, tuple | frozenset):
        return all(_simple(v) for v in value)
    return isinstance(value, _SIMPLE)


def _describe(value: Any, homes: set[str], callees: list, depth: int = 0) -> Any:
    """How a value (a constant, a default, a closure's cell) enters a fingerprint: simple values
    by their repr, containers item by item, this project's functions and classes by name (and
    walked), anything else by its type alone (a path must not make the digest depend on where
    the project lies)."""
    value = _unwrap(value)
    if _simple(value):
        return repr(value)
    if inspect.isfunction(value) or inspect.isclass(value):
        if _ours(value, homes):
            callees.append(value)
        return f"<{getattr(value, '__module__', '')}.{value.__qualname__}>"
    if depth < 6 and isinstance(value, list | tuple | set | frozenset | dict):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        described = [(repr(k) if isinstance(value, dict) else "", _describe(
            v, homes, callees, depth + 1)) for k, v in items]
        if isinstance(value, set | frozenset):
            described.sort(key=repr)
        return [type(value).__name__, described]
    return type(value).__name__


def _reached(code: types.CodeType, namespace: dict, homes: set[str]):
    """What one code object reads from its module: (name, constant repr) pairs, and the
    project functions and classes it uses (directly, through a module, or in a dict)."""
    constants, callees = [], []

    def visit(name: str, value: Any) -> None:
        value = _unwrap(value)
        if inspect.isfunction(value) or inspect.isclass(value):
            if _ours(value, homes):
                callees.append(value)
        elif inspect.ismodule(value):
            if value.__name__.startswith(PACKAGE):  # names read through the module
                for attr in code.co_names:
                    if attr.isupper() and hasattr(value, attr):
                        constants.append((f"{value.__name__}.{attr}", _describe(
                            getattr(value, attr), homes, callees)))
                        continue
                    target = _unwrap(getattr(value, attr, None))
                    if (inspect.isfunction(target) or inspect.isclass(target)) and _ours(
                            target, homes):
                        callees.append(target)
        elif isinstance(value, dict) and name.isupper() and all(
                _simple(v) or inspect.isfunction(v) for v in value.values()):
            for key, item in value.items():  # a table of constants or functions, by entry
                visit(f"{name}[{key!r}]", item)
                if _simple(item):
                    constants.append((f"{name}[{key!r}]", repr(item)))
        elif _simple(value) and name.isupper():
            constants.append((name, repr(value)))
        elif name.isupper():  # a constant of any other kind: its contents
            constants.append((name, _describe(value, homes, callees)))
        # lower-case module-level names that are not code are state (a cached setting, a log),
        # not constants: they do not enter the fingerprint

    for name in code.co_names:
        if name in namespace:
            visit(name, namespace[name])
    return constants, callees


def code_fingerprint(*roots: Callable) -> str:
    """A digest of the normalised bytecode of `roots` and of every function and class of this
    project they reach, with the values of the module-level constants (UPPER_CASE names) they
    read."""
    # Entries by qualified name without the module: moving code between files keeps the digest.
    entries = sorted((name.rpartition(":")[2], entry) for name, entry in _walk(roots).items())
    text = json.dumps(entries, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_reach(*roots: Callable) -> list[str]:
    """The qualified names of the functions and classes `code_fingerprint(*roots)` covers."""
    return sorted(name.replace(":", ".") for name in _walk(roots))


def _member_function(value: Any) -> Any:
    """A class member as code: a property's getter, a static or class method's function."""
    if isinstance(value, property):
        return value.fget
    if isinstance(value, staticmethod | classmethod):
        return value.__func__
    return _unwrap(value)


def _walk(roots: tuple[Callable, ...]) -> dict[str, list]:
    homes = {getattr(root, "__module__", "") for root in roots}
    seen: dict[str, list] = {}
    todo = [_unwrap(root) for root in roots]
    while todo:
        obj = todo.pop()
        name = f"{obj.__module__}:{obj.__qualname__}"
        if name in seen:
            continue
        namespace = vars(sys.modules[obj.__module__]) if inspect.isclass(obj) else obj.__globals__
        callees: list = []
        if inspect.isclass(obj):
            members = [(k, _member_function(v)) for k, v in sorted(vars(obj).items())]
            codes = [v.__code__ for _, v in members if inspect.isfunction(v)]
            entry: list = [("class", obj.__qualname__, [b.__qualname__ for b in obj.__bases__])]
            entry += [(k, repr(v)) for k, v in members if _simple(v) and not k.startswith("__")]
            entry += [(k, _describe(v, homes, callees)) for k, v in members if not (
                _simple(v) or k.startswith("__") or inspect.isfunction(v))]
        else:
            defaults = [*(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).items()]
            codes = [obj.__code__]
            entry = [("defaults", [_describe(v, homes, callees) for v in defaults])]
            for cell_name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or (),
                                       strict=True):  # what a closure captured
                try:
                    entry.append(("closure", cell_name, _describe(cell.cell_contents, homes,
                                                                  callees)))
                except ValueError:  # an empty cell
                    entry.append(("closure", cell_name, None))
        todo.extend(callees)
        for code in codes:
            for inner in _code_objects(code):
                entry.append((inner.co_name, instructions(inner)))
                constants, callees = _reached(inner, namespace, homes)
                entry.extend(constants)
                todo.extend(callees)
        seen[name] = entry
    return seen


# ------------------------------------------------------------------------------------------------
# Keys and the store
# ------------------------------------------------------------------------------------------------


def key_of(record: dict[str, Any]) -> str:
    """SHA-256 of the record as canonical JSON (sorted keys; tuples and lists alike)."""
    text = json.dumps(jsonable(record), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def array_digest(*arrays: Any) -> str:
    """SHA-256 over arrays' dtypes, shapes and bytes (weights, images) for a key."""
    digest = hashlib.sha256()
    for array in arrays:
        for a in array if isinstance(array, list) else [array]:
            a = np.ascontiguousarray(a)
            digest.update(f"{a.dtype}{a.shape}".encode())
            digest.update(a.tobytes())
    return digest.hexdigest()


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The installed versions of KEY_PACKAGES (and `extra`), those present."""
    versions = {}
    for name in (*KEY_PACKAGES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _path(namespace: str, key: str) -> Path:
    return settings().cache / namespace / key[:2] / f"{key}.joblib"


def contains(namespace: str, key: str) -> bool:
    """Whether the local cache or the ledger holds the entry (nothing would be computed)."""
    return _path(namespace, key).exists() or ledger.lookup(namespace, key) is not None


def fetch(namespace: str, key: str, what: str = "") -> tuple[Any | None, str | None]:
    """(payload, source) from the local cache ("cache"), else the committed ledger ("ledger"),
    else (None, None): the caller computes it (under MNIST_LEDGER=only, LedgerMiss instead).
    A payload served from the ledger lacks what the ledger never keeps (a run's weights)."""
    payload = load(namespace, key)
    source = "cache" if payload is not None else None
    if payload is None:
        payload = ledger.lookup(namespace, key)
        source = "ledger" if payload is not None else None
    if payload is None:
        ledger.check_compute(namespace, key, what)
        return None, None
    ledger.note(namespace, key, payload)
    return payload, source


def load(namespace: str, key: str) -> Any | None:
    """The stored payload, or None when there is none (or it cannot be read: then it is
    recomputed and overwritten, never half-used)."""
    import joblib

    path = _path(namespace, key)
    if not path.exists():
        return None
    try:
        return joblib.load(path)
    except Exception:  # a truncated or foreign file: treat as absent
        return None


def store(namespace: str, key: str, payload: Any) -> Path:
    """Write atomically (a crash never leaves half an entry under the key)."""
    import joblib

    path = _path(namespace, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    joblib.dump(payload, tmp)
    os.replace(tmp, path)
    ledger.note(namespace, key, payload)
    return path


_COMPUTING = [0]  # depth of cached computations running in this process


class computing:
    """Context manager around a cached computation: weights read inside it are the
    computation's input, not a notebook's (a ledger replay never needs them)."""

    def __enter__(self):
        _COMPUTING[0] += 1

    def __exit__(self, *exc):
        _COMPUTING[0] -= 1


def inside_computation() -> bool:
    return _COMPUTING[0] > 0


def argument_key(value: Any) -> Any:
    """`value` for a cache key: a trained run (anything with a `cache_key`) by the key it was
    cached under, which covers all that shaped its weights, so analyses of a run served from the
    ledger (which keeps no weights) find their cached results; containers item by item."""
    if hasattr(value, "cache_key") and not inspect.isclass(value):
        return ("run", value.cache_key)
    if isinstance(value, list | tuple):
        return type(value)(argument_key(v) for v in value)
    if isinstance(value, dict):
        return {k: argument_key(v) for k, v in value.items()}
    return value


def cached(func: Callable) -> Callable:
    """Decorator: cache `func`'s results on disk and in the ledger, keyed by its fingerprint (its
    code and the project code it reaches), its arguments (joblib.hash; a trained run by its own
    cache key, see `argument_key`) and the package versions. For expensive, deterministic
    computations (chapter 01's t-SNE map) and for every analysis that needs a run's weights, so
    that it replays from the ledger without them."""
    import functools

    import joblib

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        arguments = argument_key((args, sorted(kwargs.items())))
        key = key_of({"code": code_fingerprint(func), "name": func.__qualname__,
                      "arguments": joblib.hash(arguments),
                      "packages": package_versions(("scikit-learn", "scipy"))})
        value, _ = fetch("cached", key, func.__qualname__)
        if value is None:
            with computing():
                value = func(*args, **kwargs)
            store("cached", key, value)
        return value

    return wrapper
