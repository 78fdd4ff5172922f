"""Reading the API's JSON into the dataclasses of models.py, and back.

A model's attributes are the API's field names in snake_case; a field whose name differs keeps the API's
name in its metadata (`field(metadata={"json": "jobId"})`). Fields the API adds later are ignored, so an
older client keeps working against a newer server; a field the model requires and the answer lacks, or a
value of the wrong kind, is an `UnexpectedResponse`.
"""

import dataclasses
import sys
import typing
from typing import Any, Callable, Dict, List, Tuple, Type, TypeVar

from .errors import UnexpectedResponse

__all__ = ["Model", "decode", "decoder", "list_decoder", "encode"]

M = TypeVar("M", bound="Model")
_HINTS: Dict[type, Dict[str, Any]] = {}
_NONE = type(None)


class Model:
    """The base of every answer's dataclass."""

    @classmethod
    def from_dict(cls: Type[M], value: Any) -> M:
        """The model of one of the API's JSON objects (the `data` of an answer, or a part of it)."""
        return decode(cls, value)

    def to_dict(self) -> Dict[str, Any]:
        """The API's JSON object again, with the API's field names."""
        out = encode(self)
        assert isinstance(out, dict)
        return out


def decoder(cls: Type[M]) -> Callable[[Any], M]:
    """A function reading `cls` from JSON."""
    return lambda value: decode(cls, value)


def list_decoder(cls: Type[M]) -> Callable[[Any], List[M]]:
    """A function reading a list of `cls` from JSON."""

    def read(value: Any) -> List[M]:
        if not isinstance(value, list):
            raise UnexpectedResponse("expected a list of {}, got {}".format(cls.__name__, _kind(value)))
        return [decode(cls, item, "[{}]".format(i)) for i, item in enumerate(value)]

    return read


def decode(cls: Type[M], value: Any, where: str = "") -> M:
    """`value` (parsed JSON) as a `cls`."""
    out = _decode(cls, value, where or cls.__name__)
    assert isinstance(out, cls)
    return out


def encode(value: Any) -> Any:
    """A model (or list, dict, scalar of them) as JSON-ready values with the API's field names."""
    if isinstance(value, Model) and dataclasses.is_dataclass(value):
        # A field the API may leave out (its default is None) is left out again when it is None.
        return {
            f.metadata.get("json", f.name): encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.default is None and getattr(value, f.name) is None)
        }
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def _hints(cls: type) -> Dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        module = sys.modules.get(cls.__module__)
        hints = typing.get_type_hints(cls, vars(module) if module else None)
        _HINTS[cls] = hints
    return hints


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _required(cls: type) -> Tuple[str, ...]:
    return tuple(
        f.metadata.get("json", f.name)
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )


def _decode(tp: Any, value: Any, where: str) -> Any:
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, Model) and dataclasses.is_dataclass(tp):
        return _decode_model(tp, value, where)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        return _decode_union(args, value, where)
    if origin is typing.Literal:
        # Checked for its kind only, not against the listed values: a state or kind that a newer server
        # adds still reads.
        kinds = {type(a) for a in args}
        if not any(type(value) is k or (k is float and type(value) is int) for k in kinds):
            raise UnexpectedResponse("{}: expected one of {}, got {}".format(where, ", ".join(map(repr, args)), _kind(value)))
        return value
    if origin is list:
        if not isinstance(value, list):
            raise UnexpectedResponse("{}: expected a list, got {}".format(where, _kind(value)))
        return [_decode(args[0], v, "{}[{}]".format(where, i)) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UnexpectedResponse("{}: expected an object, got {}".format(where, _kind(value)))
        return {k: _decode(args[1], v, "{}.{}".format(where, k)) for k, v in value.items()}
    if tp is _NONE:
        if value is not None:
            raise UnexpectedResponse("{}: expected null, got {}".format(where, _kind(value)))
        return None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UnexpectedResponse("{}: expected a number, got {}".format(where, _kind(value)))
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise UnexpectedResponse("{}: expected an integer, got {}".format(where, _kind(value)))
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise UnexpectedResponse("{}: expected {}, got {}".format(where, tp.__name__, _kind(value)))
        return value
    return value


def _decode_model(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise UnexpectedResponse("{}: expected an object, got {}".format(where, _kind(value)))
    hints = _hints(cls)
    kwargs: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f.metadata.get("json", f.name)
        if key in value:
            kwargs[f.name] = _decode(hints[f.name], value[key], "{}.{}".format(where, key))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UnexpectedResponse("{}: the answer has no {!r}".format(where, key))
    return cls(**kwargs)


def _decode_union(args: Tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None:
        if _NONE in args:
            return None
        raise UnexpectedResponse("{}: expected a value, got null".format(where))
    candidates = [a for a in args if a is not _NONE]
    models = [a for a in candidates if isinstance(a, type) and issubclass(a, Model)]
    if models and isinstance(value, dict):
        # The model whose required fields the object has, the most specific first (BackupResult before a
        # model that needs fewer of the same fields).
        fitting = [m for m in models if all(k in value for k in _required(m))]
        fitting.sort(key=lambda m: -len(_required(m)))
        for model in fitting:
            try:
                return _decode_model(model, value, where)
            except UnexpectedResponse:
                continue
        raise UnexpectedResponse("{}: the object is none of {}".format(where, ", ".join(m.__name__ for m in models)))
    last: Exception = UnexpectedResponse("{}: unexpected {}".format(where, _kind(value)))
    for arg in candidates:
        try:
            return _decode(arg, value, where)
        except UnexpectedResponse as err:
            last = err
    raise last
