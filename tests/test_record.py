"""`@record` behaves as `@dataclass(frozen=True)` does, for everything nodegen relies on.

Every test builds the same class body twice, once with each decorator (same name and qualname), and
compares what the two do.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import pickle
from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any, ClassVar

import pytest

from nodegen.record import record

Decorator = Callable[[type[Any]], type[Any]]
FROZEN: Decorator = dataclass(frozen=True)
ORDERED: Decorator = dataclass(frozen=True, order=True)
BOTH = pytest.mark.parametrize("deco", [record, FROZEN], ids=["record", "dataclass"])


def point_class(deco: Decorator) -> type[Any]:
    @deco
    class Point:
        """A point."""

        x: int
        y: str = "b"
        tags: list[str] = field(default_factory=list)
        hidden: int = field(default=0, repr=False, compare=False)
        unit: ClassVar[str] = "m"

        @property
        def label(self) -> str:
            return f"{self.x}{self.y}"

    return Point


def twins() -> tuple[type[Any], type[Any]]:
    return point_class(record), point_class(FROZEN)


# Module level, so that pickle finds them by name.
@record
class Leaf:
    name: str
    size: int = 0


@record
class Tree:
    leaves: tuple[Leaf, ...]
    meta: dict[str, list[Leaf]] = field(default_factory=dict)


@dataclass(frozen=True)
class DcLeaf:
    name: str
    size: int = 0


@dataclass(frozen=True)
class DcTree:
    leaves: tuple[DcLeaf, ...]
    meta: dict[str, list[DcLeaf]] = field(default_factory=dict)


def test_construction_positional_keyword_and_defaults() -> None:
    rec, dc = twins()
    for cls in (rec, dc):
        p = cls(1, "a", ["t"], 5)
        assert (p.x, p.y, p.tags, p.hidden) == (1, "a", ["t"], 5)
        q = cls(y="z", x=2)
        assert (q.x, q.y, q.tags, q.hidden) == (2, "z", [], 0)
    assert vars(rec(1, "a", ["t"], 5)) == vars(dc(1, "a", ["t"], 5))


@BOTH
def test_wrong_arguments_raise_type_error(deco: Decorator) -> None:
    cls = point_class(deco)
    with pytest.raises(TypeError):
        cls()
    with pytest.raises(TypeError):
        cls(1, "a", [], 0, "extra")
    with pytest.raises(TypeError):
        cls(1, nope=2)
    with pytest.raises(TypeError):
        cls(1, x=1)


def test_default_factory_is_called_for_every_instance() -> None:
    rec, dc = twins()
    for cls in (rec, dc):
        a, b = cls(1), cls(1)
        assert a.tags == [] and a.tags is not b.tags
        given = ["g"]
        assert cls(1, tags=given).tags is given


def test_class_attributes_are_what_a_dataclass_leaves() -> None:
    rec, dc = twins()
    for cls in (rec, dc):
        assert cls.y == "b" and cls.hidden == 0 and cls.unit == "m"
        assert "tags" not in cls.__dict__ and "x" not in cls.__dict__
        assert cls.__doc__ == "A point."
        assert cls.__match_args__ == ("x", "y", "tags", "hidden")
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
    assert rec.__qualname__ == dc.__qualname__


def test_frozen_assignment_and_deletion_raise_frozen_instance_error() -> None:
    rec, dc = twins()
    messages = []
    for cls in (rec, dc):
        p = cls(1)
        for action, name in ((setattr, "x"), (setattr, "other"), (delattr, "y")):
            with pytest.raises(FrozenInstanceError) as err:
                action(p, name, 2) if action is setattr else action(p, name)
            messages.append(str(err.value))
        assert p.x == 1 and not hasattr(p, "other")
    assert messages[:3] == messages[3:]
    assert messages[:3] == ["cannot assign to field 'x'", "cannot assign to field 'other'", "cannot delete field 'y'"]


def test_equality_and_hash_match_a_frozen_dataclass() -> None:
    rec, dc = twins()
    for cls in (rec, dc):
        assert cls(1, "a") == cls(1, "a")
        assert cls(1, "a") != cls(1, "c")
        assert cls(1, "a", ["t"]) != cls(1, "a")
        assert cls(1, hidden=1) == cls(1, hidden=2)  # compare=False
        assert hash(cls(1, tags=(), hidden=1)) == hash(cls(1, tags=(), hidden=2))
        assert len({cls(1, "a", ()), cls(1, "a", ()), cls(2, "a", ())}) == 2  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="unhashable"):
            hash(cls(1))  # the list field
    assert hash(rec(7, "q", ("t",))) == hash(dc(7, "q", ("t",))) == hash((7, "q", ("t",)))
    assert rec(1) != dc(1)  # another class, even with the same fields
    assert rec(1).__eq__(dc(1)) is NotImplemented
    assert hash(Leaf("a")) == hash(DcLeaf("a")) == hash(("a", 0))


def test_field_hash_false_and_single_and_zero_field_classes() -> None:
    def make(deco: Decorator) -> tuple[type[Any], type[Any], type[Any]]:
        @deco
        class One:
            v: int

        @deco
        class Nothing:
            pass

        @deco
        class Partly:
            a: int
            b: int = field(default=0, hash=False)

        return One, Nothing, Partly

    (r1, r0, rp), (d1, d0, dp) = make(record), make(FROZEN)
    assert hash(r1(3)) == hash(d1(3)) == hash((3,))
    assert r1(3) == r1(3) and r1(3) != r1(4)
    assert hash(r0()) == hash(d0()) == hash(()) and r0() == r0()
    assert repr(r0()) == repr(d0()).replace(d0.__qualname__, r0.__qualname__)
    assert hash(rp(1, 2)) == hash(dp(1, 5)) == hash((1,))
    assert rp(1, 2) != rp(1, 3)  # still compared


def test_repr_matches_a_dataclass_and_survives_recursion() -> None:
    rec, dc = twins()
    assert repr(rec(1, "a", ["t"], 9)) == repr(dc(1, "a", ["t"], 9)) == f"{rec.__qualname__}(x=1, y='a', tags=['t'])"
    r, d = rec(1), dc(1)
    r.tags.append(r)
    d.tags.append(d)
    assert repr(r) == repr(d) == f"{rec.__qualname__}(x=1, y='b', tags=[...])"
    assert repr(Tree((Leaf("a"),))) == "Tree(leaves=(Leaf(name='a', size=0),), meta={})"


def test_order_matches_a_frozen_ordered_dataclass() -> None:
    def make(deco: Decorator) -> type[Any]:
        @deco
        class Row:
            node: str
            port: int
            note: str = field(default="", compare=False)

        return Row

    rec, dc = make(record(order=True)), make(ORDERED)
    values = [("b", 2, "x"), ("a", 9, "y"), ("b", 1, "z"), ("a", 9, "a")]
    assert [tuple(vars(r).values()) for r in sorted(rec(*v) for v in values)] == \
           [tuple(vars(d).values()) for d in sorted(dc(*v) for v in values)]
    a, b = rec("a", 1), rec("a", 2)
    assert a < b and a <= b and b > a and b >= a and a <= rec("a", 1, "other") and not a < rec("a", 1)
    assert not (b < a or b <= a or a > b or a >= b)
    with pytest.raises(TypeError):
        _ = a < dc("a", 1)
    unordered = point_class(record)
    with pytest.raises(TypeError):
        _ = unordered(1) < unordered(2)


def test_replace_fields_asdict_astuple_and_is_dataclass() -> None:
    rec, dc = twins()
    r, d = rec(1, "a", ["t"], 4), dc(1, "a", ["t"], 4)
    r2 = dataclasses.replace(r, y="z")
    assert type(r2) is rec and (r2.x, r2.y, r2.tags, r2.hidden) == (1, "z", ["t"], 4)
    assert r.y == "a"
    with pytest.raises(TypeError):
        dataclasses.replace(r, nope=1)
    assert dataclasses.asdict(r) == dataclasses.asdict(d) == {"x": 1, "y": "a", "tags": ["t"], "hidden": 4}
    assert dataclasses.astuple(r) == dataclasses.astuple(d)
    rf, df = dataclasses.fields(r), dataclasses.fields(d)
    assert [(f.name, f.type, f.default, f.default_factory, f.repr, f.compare, f.hash, f.init, f.kw_only)
            for f in rf] == [(f.name, f.type, f.default, f.default_factory, f.repr, f.compare, f.hash, f.init,
                              f.kw_only) for f in df]
    assert all(isinstance(f, dataclasses.Field) for f in rf) and len(rf) == 4  # the ClassVar is no field
    assert rec.__dataclass_fields__.keys() == dc.__dataclass_fields__.keys()
    assert dataclasses.is_dataclass(rec) and dataclasses.is_dataclass(r)
    assert rec.__dataclass_params__.frozen and not rec.__dataclass_params__.order
    tree = Tree((Leaf("a", 1),), {"k": [Leaf("b")]})
    dc_tree = DcTree((DcLeaf("a", 1),), {"k": [DcLeaf("b")]})
    assert dataclasses.asdict(tree) == dataclasses.asdict(dc_tree) == {
        "leaves": ({"name": "a", "size": 1},), "meta": {"k": [{"name": "b", "size": 0}]}}


def test_pickle_and_copy_round_trip() -> None:
    tree = Tree((Leaf("a", 1),), {"k": [Leaf("b")]})
    for clone in (pickle.loads(pickle.dumps(tree)), copy.copy(tree), copy.deepcopy(tree)):
        assert clone == tree and type(clone) is Tree
    assert copy.deepcopy(tree).meta is not tree.meta
    assert copy.copy(tree).meta is tree.meta


def test_match_statement_cached_property_and_post_init() -> None:
    calls = []

    @record
    class Box:
        w: int
        h: int = 1

        @functools.cached_property
        def area(self) -> int:
            calls.append(1)
            return self.w * self.h

        def __post_init__(self) -> None:
            calls.append(0)

    box = Box(3, 4)
    assert calls == [0]
    assert box.area == 12 and box.area == 12 and calls == [0, 1]
    assert box == Box(3, 4)  # the cached value is not a field
    match box:
        case Box(w, h):
            assert (w, h) == (3, 4)
        case _:
            pytest.fail("no match")


def test_methods_written_in_the_class_are_kept() -> None:
    @record
    class Custom:
        a: int

        def __repr__(self) -> str:
            return "custom"

        def __hash__(self) -> int:
            return 42

    assert repr(Custom(1)) == "custom" and hash(Custom(1)) == 42 and Custom(1) == Custom(1)

    @record
    class OwnEq:
        a: int

        def __eq__(self, other: object) -> bool:
            return True

    assert OwnEq(1) == OwnEq(2)
    assert hash(OwnEq(1)) == hash((1,))  # __eq__ alone leaves __hash__ = None, which a frozen dataclass replaces


def test_inheritance_from_a_record() -> None:
    @record
    class Base:
        a: int
        b: int = 2

    @record
    class Child(Base):
        c: int = 3

    @dataclass(frozen=True)
    class DcChild(Base):
        c: int = 3

    for cls in (Child, DcChild):
        obj = cls(1)
        assert [f.name for f in dataclasses.fields(obj)] == ["a", "b", "c"]
        assert (obj.a, obj.b, obj.c) == (1, 2, 3)
        with pytest.raises(FrozenInstanceError):
            obj.a = 5  # type: ignore[misc]
    assert repr(Child(1)).endswith("Child(a=1, b=2, c=3)")
    assert Child(1) != Base(1)


def test_class_creation_errors_match_a_dataclass() -> None:
    for deco in (record, FROZEN):
        with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
            @deco
            class Late:
                a: int = 0
                b: int

        with pytest.raises(ValueError, match="mutable default"):
            @deco
            class Mutable:
                a: list[int] = []  # noqa: RUF012

        with pytest.raises(TypeError, match="no type annotation"):
            @deco
            class Unannotated:
                a = field(default=1)


def test_unsupported_features_are_refused() -> None:
    with pytest.raises(TypeError, match="__slots__"):
        @record
        class Slotted:
            __slots__ = ("a",)
            a: int

    with pytest.raises(TypeError, match="init=False"):
        @record
        class NoInit:
            a: int = field(default=0, init=False)

    with pytest.raises(TypeError, match="InitVar"):
        @record
        class Init:
            a: dataclasses.InitVar[int]

    @dataclass
    class Mutable:
        a: int

    with pytest.raises(TypeError, match="non-frozen"):
        @record
        class FrozenChild(Mutable):
            b: int = 0


def test_a_field_named_self() -> None:
    @record
    class Odd:
        self: int
        other: int = 1

    assert Odd(5).self == 5 and Odd(self=6, other=2).other == 2


def test_classes_of_one_shape_share_no_names_or_defaults() -> None:
    """__init__ is made from one compiled template per shape (field count, which have factories): each
    class still gets its own parameter names, defaults and factories."""
    @record
    class First:
        a: int
        b: str = "one"
        c: list[int] = field(default_factory=list)

    @record
    class Second:
        p: int
        q: str = "two"
        r: dict[str, int] = field(default_factory=dict)

    first, second = First(1), Second(2)
    assert vars(first) == {"a": 1, "b": "one", "c": []}
    assert vars(second) == {"p": 2, "q": "two", "r": {}}
    assert vars(Second(q="x", p=3, r={"k": 1})) == {"p": 3, "q": "x", "r": {"k": 1}}
    with pytest.raises(TypeError):
        Second(a=1)
    assert First.__init__.__code__ is not Second.__init__.__code__
    assert First.__init__.__code__.co_varnames == ("self", "a", "b", "c")


@BOTH
def test_signature_names_and_defaults(deco: Decorator) -> None:
    import inspect

    params = inspect.signature(point_class(deco)).parameters
    assert list(params) == ["x", "y", "tags", "hidden"]
    assert [p.default for p in params.values()] == [inspect.Parameter.empty, "b",
                                                    dataclasses._HAS_DEFAULT_FACTORY, 0]  # type: ignore[attr-defined]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params.values())


def test_comparison_methods_work_before_and_after_their_first_call() -> None:
    """__eq__, __hash__ and the ordering methods compile on first use and replace themselves on the class."""
    @record(order=True)
    class Pair:
        a: int
        b: str

    stub = Pair.__dict__["__lt__"]
    assert Pair(1, "a") < Pair(1, "b") and Pair(1, "a") < Pair(1, "b")
    assert Pair.__dict__["__lt__"] is not stub
    assert Pair.__lt__.__qualname__ == f"{Pair.__qualname__}.__lt__"
    assert hash(Pair(1, "a")) == hash(Pair(1, "a")) == hash((1, "a"))
    assert Pair(1, "a") == Pair(1, "a") and Pair(1, "a") != Pair(2, "a")
    assert sorted([Pair(2, "a"), Pair(1, "z"), Pair(1, "b")]) == [Pair(1, "b"), Pair(1, "z"), Pair(2, "a")]
