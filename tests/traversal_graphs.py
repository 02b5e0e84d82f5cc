"""Random graphs of objects for checking weightio's plain traversals (``weightio.keras.walk``)
against Keras's and tf-keras's own ``_load_state``: objects whose attributes are other
objects (shared ones too), plain values, and lists, tuples, dicts (and sets) of them, nested.
The graphs have no cycles (an object only holds later ones), as Keras's traversal needs.

The node classes come from the caller (Keras 3 or tf-keras objects): ``check_against``
builds each graph with them, runs the library's traversal (``reference``), then the plain one
over the same graph, and compares which objects were loaded at which paths, in which order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

# Attribute names, chosen for the orders Keras sorts them in (``_name_key``, reversed
# ``sorted`` in tf-keras) and for a name a container's member also gets ("layers").
NAMES = ["a", "b", "_b", "layers", "_layers", "Z", "z_1", "z"]


class Log:
    """Where loading nodes note (their id, the path they were given): not a container, so
    the traversals pass it by."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []


def loading(node: Any, log: Log, fails: bool) -> None:
    """Makes ``node`` a loading node (call from its ``__init__``)."""
    node.__dict__["_log_"] = log
    node.__dict__["_fails_"] = fails


def note(node: Any, store: Any) -> None:
    """A loading node's ``load_own_variables``."""
    node._log_.calls.append((id(node), store.path))
    if node._fails_:
        raise ValueError("mismatch")


def finishes(traversal: Callable[..., None], helpers: Callable[[], Any], root: Any, store: Any) -> bool:
    """Runs a plain traversal (``traversal(root, load, helpers)``, within the ``helpers()``
    context it needs) over ``root``, each object loading from ``store``: whether it finished
    (False: it gave up with ``NotPlain``)."""
    from weightio.keras.walk import NotPlain

    with helpers() as given:
        try:
            traversal(root, lambda obj, path: obj.load_own_variables(store.get(path)), given)
        except NotPlain:
            return False
    return True


def _value(draw: Any, nodes: int, index: int, depth: int, containers: list[str]) -> Any:
    """A child value of node ``index``: a later node, a container of values, or a plain int."""
    kinds = ["plain"] + (["node"] * 3 if index + 1 < nodes else []) + (containers * 2 if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "node":
        return ("node", draw(st.integers(index + 1, nodes - 1)))
    if kind == "plain":
        return ("plain", draw(st.integers(0, 3)))
    return (kind, [_value(draw, nodes, index, depth + 1, containers) for _ in range(draw(st.integers(0, 3)))])


def graphs(containers: list[str]) -> Any:
    """Specs: (each node's [(attribute, value spec)], the loading nodes, the failing ones)."""

    @st.composite
    def spec(draw: Any) -> Any:
        nodes = draw(st.integers(1, 10))
        attrs = [
            [(name, _value(draw, nodes, index, 0, containers)) for name in draw(st.lists(st.sampled_from(NAMES), max_size=4, unique=True))]
            for index in range(nodes)
        ]
        loading_nodes = draw(st.sets(st.integers(0, nodes - 1)))
        failing = set()
        if loading_nodes and draw(st.booleans()):
            failing = draw(st.sets(st.sampled_from(sorted(loading_nodes))))
        return attrs, loading_nodes, failing

    return spec()


def build(spec: Any, log: Log, make_node: Callable[[], Any], make_loading: Callable[[Log, bool], Any]) -> list[Any]:
    """The nodes of the graph of ``spec`` (the root first)."""
    attrs, loading_nodes, failing = spec
    built: list[Any] = [None] * len(attrs)

    def value(v: Any) -> Any:
        kind, payload = v
        if kind == "node":
            return built[payload]
        if kind == "plain":
            return payload
        items = [value(item) for item in payload]
        if kind == "dict":
            return {f"k{i}": item for i, item in enumerate(items)}
        if kind == "set":
            return set(item for item in items if _hashable(item))
        return items if kind == "list" else tuple(items)

    for index in reversed(range(len(attrs))):
        node = make_loading(log, index in failing) if index in loading_nodes else make_node()
        for name, v in attrs[index]:
            node.__dict__[name] = value(v)
        built[index] = node
    return built


def check_against(
    make_node: Callable[[], Any],
    make_loading: Callable[[Log, bool], Any],
    reference: Callable[[Any, bool], None],
    plain: Callable[[Any, bool], bool],
    containers: tuple[str, ...] = ("list", "tuple", "dict"),
) -> None:
    """On random graphs: where no object's loading fails, ``plain(root, flag)`` (True: it
    finished) loads what ``reference(root, flag)`` loads, at the same paths, in the same
    order; where one fails, it gives up having followed the reference up to there.
    ``reference`` must go on past failures (Keras collects them; tf-keras with
    ``skip_mismatch``). ``flag``: a random boolean for both (say, whether the store has a path)."""

    # Generation only: hypothesis' shrinker trips over these recursive draws.
    @settings(max_examples=300, deadline=None, derandomize=True, phases=[Phase.generate])
    @given(graphs(list(containers)), st.booleans())
    def check(spec: Any, flag: bool) -> None:
        log = Log()
        nodes = build(spec, log, make_node, make_loading)
        reference(nodes[0], flag)
        expected, log.calls = log.calls, []
        finished = plain(nodes[0], flag)
        failing = {id(nodes[i]) for i in spec[2]}
        first_failure = next((k for k, (i, _) in enumerate(expected) if i in failing), None)
        assert finished == (first_failure is None)
        assert log.calls == (expected if first_failure is None else expected[: first_failure + 1])

    check()


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
