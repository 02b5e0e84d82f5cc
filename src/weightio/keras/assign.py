"""All-or-nothing assignment: record every ``variable.assign`` that Keras's own loading code
makes, then apply them only if loading finished without error.

weightio runs Keras's own loaders (so matching, warnings and error messages are Keras's)
over natively read arrays. While they run, ``Variable.assign`` only validates the shape
(mismatches go to Keras's own ``assign``, which raises its own error before assigning) and
records the pair. If loading raises, nothing was assigned and the model is unchanged.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Collection, Iterator
from typing import Any

import numpy as np

# Loaders patch module-level Keras functions while they run: one load at a time.
LOAD_LOCK = threading.RLock()


class Recorder:
    """The assignments made while recording, in order."""

    def __init__(self) -> None:
        self.pairs: list[tuple[Any, Any]] = []

    def apply(self, model: Any, meter: Any = None, read_into: Any = None, written: list[Any] | None = None) -> int:
        """Performs the recorded assignments; returns how many variables were assigned.

        Values still unread (``LazyArray``) are read now, all at once and before anything is
        assigned (so a corrupt chunk changes nothing), into new arrays of each variable's
        dtype, which the variables then adopt without another copy where the backend allows,
        or straight into the backend's destinations (see ``_read_and_assign``).
        ``meter`` (a ``progress.Meter``): read in a few batches, telling it after each.
        ``written``: more variables, whose values were read already into ``read_into``'s
        destinations (checkpoint restores: the backend's assigner)."""
        pairs = _last_per_variable(self.pairs)
        assign = _assigner()
        _read_and_assign(pairs, _numpy_dtype, getattr(assign, "destinations_for", None), assign, getattr(assign, "written", None), meter)
        if read_into is not None and written:
            read_into.written(written)
        assigned = {id(v) for v, _ in pairs} | {id(v) for v in written or ()}
        # Some layers derive state from their variables when loaded (Normalization,
        # Discretization, lookup layers): redo that now that the values are in place.
        for layer in _all_layers(model):
            if hasattr(layer, "finalize_state") and any(id(v) in assigned for v in layer.variables):
                layer.finalize_state()
        return len(assigned)


def _last_per_variable(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """The pairs without earlier assignments to a variable assigned again later (the last
    value is what the variable ends with, whichever order the writes then happen in)."""
    last = {id(variable): i for i, (variable, _) in enumerate(pairs)}
    if len(last) == len(pairs):
        return pairs
    return [pair for i, pair in enumerate(pairs) if last[id(pair[0])] == i]


def _numpy_dtype(variable: Any) -> Any:
    """The numpy dtype of a Keras variable (bfloat16 via ml_dtypes): the dtype it stores
    (``_dtype``; the ``dtype`` property would look up the autocast scope every time)."""
    dtype = getattr(variable, "_dtype", None) or variable.dtype
    found = _NUMPY_DTYPES.get(dtype)
    if found is None:
        from keras.src import backend

        from ..file import _dtype

        found = _NUMPY_DTYPES[dtype] = _dtype(backend.standardize_dtype(dtype))
    return found


_NUMPY_DTYPES: dict[Any, Any] = {}


def _assigner() -> Any:
    """``assign_all(pairs, fresh=())``: the fastest correct way to set validated values (each
    of its variable's shape) on this backend's variables, in order. ``fresh``: the ids of the
    values weightio has just read (``_read_and_assign``): aligned, C-ordered, writeable
    arrays nothing else refers to, which need no checking before they are adopted.

    numpy: the fresh array becomes the variable's value. TensorFlow: large values read into
    tensors the variables take over (``destination``, then ``written``), the others adopted
    through DLPack.
    JAX: the arrays adopted through DLPack, nothing compiled. torch: large values are read straight into the Parameters
    (``destination``, then ``written``), small ones copied in one batch.
    Anything else: Keras's ``assign``.
    """
    from keras.src import backend
    from keras.src.backend.common import variables as kv

    keras_assign = kv.Variable.assign
    name = backend.backend()
    if name == "tensorflow":
        return _TensorFlowAssigner(keras_assign)
    if name == "jax":
        return _jax_assigner(keras_assign)
    if name == "torch":
        return _TorchAssigner(keras_assign)
    if name != "numpy":
        return _each(keras_assign)

    adopted: set[int] = set()

    def assign_numpy(variable: Any, value: Any) -> None:
        # weightio's arrays are fresh and private to this load, already of the variable's
        # dtype: they become the variable's value, as the new array Keras would make (each
        # array at most once: two variables never share one).
        if (
            isinstance(value, np.ndarray)
            and value.flags.writeable
            and value.dtype == _numpy_dtype(variable)
            and id(value) not in adopted
        ):
            adopted.add(id(value))
            variable._value = value
        else:
            keras_assign(variable, value)

    return _each(assign_numpy)


def ahead_allocator() -> Any:
    """How a first load allocates the large values it reads while Keras's traversal runs
    (``prefetch.reading_ahead``), or None not to read ahead: on torch, large values are read
    at the end straight into the Parameters (read ahead, they would take one more copy); on
    TensorFlow, into new tensors (``tensorflow_allocator``); elsewhere, into new arrays."""
    from keras.src import backend

    from .prefetch import aligned_arrays

    name = backend.backend()
    if name == "torch":
        return None
    if name == "tensorflow":
        return tensorflow_allocator()
    return aligned_arrays


def tensorflow_allocator() -> Any:
    """``allocate([(shape, dtype), ...])``: new uninitialized TensorFlow tensors, as writeable
    numpy arrays (keeping them alive), made by one call of weightio's empty op; variables
    take such tensors over without a copy, and TensorFlow's allocator keeps the memory for
    the next load (arrays from numpy go back to the system when freed, and the load after
    faults them in again). New numpy arrays without the ops or outside eager execution."""
    import tensorflow as tf

    from .prefetch import aligned_arrays
    from .tf_ops import ops as tf_ops

    ops = tf_ops()
    if ops is None or not tf.executing_eagerly():
        return aligned_arrays

    def allocate(requests: list[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
        made = tensor_arrays(ops, [(shape, dtype, tf.as_dtype(dtype).as_datatype_enum) for shape, dtype in requests])
        return [array for array, _ in made]

    return allocate


def _each(assign: Any) -> Any:
    def assign_all(pairs: list[tuple[Any, Any]], fresh: Collection[int] = ()) -> None:
        for variable, value in pairs:
            assign(variable, value)

    return assign_all


class _TorchAssigner:
    """torch: Keras copies each value into its variable's Parameter (which optimizers hold
    on to, so it must stay), converting it with ``np.array`` first (another copy) and
    entering ``no_grad`` and the ``value`` property per variable (~10 us each).

    weightio reads large values (64 KiB and up) straight into the Parameters' memory
    (``destination``): no intermediate array, no copy, no fresh pages to fault in. Smaller
    ones are read in bulk, shared with torch by ``torch.from_numpy`` and copied into their
    Parameters in one ``no_grad`` block, as one ``_foreach_copy_`` for the CPU ones.
    Variables of a subclass that changes ``_direct_assign``, uninitialized ones, values torch
    cannot share (bfloat16) and any other value: Keras's ``assign``."""

    def __init__(self, keras_assign: Any) -> None:
        import torch
        from keras.src.backend.torch import core as torch_core

        self.torch = torch
        self.keras_assign = keras_assign
        self.plain_direct_assign = torch_core.Variable._direct_assign
        self.foreach_copy = getattr(torch, "_foreach_copy_", None)

    def _plain(self, variable: Any) -> bool:
        target = getattr(variable, "_value", None)
        return (
            type(variable)._direct_assign is self.plain_direct_assign
            and isinstance(target, self.torch.Tensor)
            and (target.is_cpu or target.device.type != "meta")  # is_cpu: ~0.1 us, device: ~0.3
        )

    def destination(self, variable: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """The Parameter's own memory as a numpy array, for a large value (of ``shape`` and
        ``dtype``) of a plain CPU variable of a dtype numpy and torch share; None otherwise."""
        if not read_in_place(shape, dtype) or not self._plain(variable):
            return None
        target = variable._value
        if target.device.type != "cpu" or not target.is_contiguous() or tuple(target.shape) != tuple(shape):
            return None
        try:
            out = target.detach().numpy()
        except (TypeError, RuntimeError):  # a dtype numpy lacks, a tensor numpy cannot share
            return None
        return out if out.dtype == dtype and out.flags.writeable else None

    def destinations_for(self, requests: list[tuple[Any, tuple[int, ...], np.dtype]]) -> list[np.ndarray | None]:
        return [self.destination(*request) for request in requests]

    def written(self, variables: list[Any]) -> None:
        """Tells autograd that these variables' Parameters were written in place (as
        ``copy_`` would have), so a graph that saved their old values notices."""
        self.torch.autograd.graph.increment_version([variable._value for variable in variables])

    def __call__(self, pairs: list[tuple[Any, Any]], fresh: Collection[int] = ()) -> None:
        torch = self.torch
        targets: list[Any] = []
        sources: list[Any] = []
        with torch.no_grad():
            for variable, value in pairs:
                if not (
                    isinstance(value, np.ndarray)
                    and value.flags.writeable
                    and value.dtype.kind in "fiub"  # not bfloat16 (ml_dtypes' kind "V"): torch cannot share it
                    and value.dtype == _numpy_dtype(variable)
                    and self._plain(variable)
                ):
                    _copy_all(targets, sources, self.foreach_copy)  # keep the order of assignments
                    self.keras_assign(variable, value)
                    continue
                target = variable._value
                if target.is_cpu:
                    targets.append(target)
                    sources.append(torch.from_numpy(value))
                else:
                    target.copy_(torch.from_numpy(value))
            _copy_all(targets, sources, self.foreach_copy)


# torch, TensorFlow: values of at least this size are read straight into the memory their
# variables will hold.
_DIRECT_MIN_BYTES = 1 << 16


def _copy_all(targets: list[Any], sources: list[Any], foreach_copy: Any) -> None:
    """Copies ``sources[i]`` into ``targets[i]`` (torch tensors of equal shapes), then empties
    both lists."""
    if foreach_copy is not None and targets:
        foreach_copy(targets, sources)
    else:
        for target, source in zip(targets, sources):
            target.copy_(source)
    targets.clear()
    sources.clear()


def _jax_assigner(keras_assign: Any) -> Any:
    """JAX: each value of the variable's dtype in a weightio array becomes a JAX array
    without a copy, through DLPack; each variable then gets its array through Keras's own
    ``_direct_assign``. Every array is made before the first variable is set. Other values
    (bfloat16, which numpy cannot export through DLPack; shared or unaligned buffers) go
    through Keras's ``assign``. The values whose ids are in ``fresh`` (weightio's, just read)
    are known adoptable unless empty or repeated.

    Nothing is compiled: an earlier version cut small values out of one transferred buffer
    with ``lax.split``, which XLA compiles once per list of sizes, ~8 ms per part (a
    ResNet50's first load took 2 s more, a 10,000-variable model's over 2 minutes)."""
    import_array = _jax_importer()
    if import_array is None:  # JAX's default device is not the CPU: Keras's assign moves values
        return _each(keras_assign)
    adopted: set[int] = set()  # each array is adopted at most once: no shared buffers

    def assign_all(pairs: list[tuple[Any, Any]], fresh: Collection[int] = ()) -> None:
        arrays = []
        for variable, value in pairs:
            array = None
            if (
                type(value) is np.ndarray
                and value.dtype == _numpy_dtype(variable)
                and _adoptable(value, adopted, fresh)  # jaxlib's import takes unaligned buffers too
            ):
                try:
                    array = import_array(value)
                except Exception:  # noqa: BLE001 - a dtype DLPack or this JAX cannot carry
                    array = None
                else:
                    adopted.add(id(value))
            arrays.append(array)
        for (variable, value), array in zip(pairs, arrays):
            if array is None:
                keras_assign(variable, value)
            else:
                variable._direct_assign(array)

    return assign_all


def _jax_importer() -> Any:
    """``import_array(value)``: a JAX array on the CPU device sharing ``value``'s memory;
    None when JAX's default device is not the CPU.

    When JAX's only device is one CPU, through jaxlib's DLPack import itself (~4 us; the
    public ``jax.dlpack.from_dlpack`` spends ~35 us around it looking up the device and
    stream, and converting the result with ``jnp.asarray``). Where that call is missing or
    has another signature, or there are several CPU devices, the public function, with its
    checks. (Variables on a GPU must not be given CPU arrays: None then.)"""
    import jax

    if jax.default_backend() != "cpu":
        return None
    public = jax.dlpack.from_dlpack
    try:
        from jax._src.lib import _jax, jaxlib_extension_version

        devices = jax.devices()
        to_buffer = _jax.dlpack_managed_tensor_to_buffer
    except Exception:  # noqa: BLE001 - another jaxlib: the public import
        return public
    if len(devices) != 1 or jaxlib_extension_version < 467:
        return public
    device = devices[0]
    canonical: dict[np.dtype, bool] = {}

    def import_array(value: np.ndarray) -> Any:
        # A dtype JAX narrows (64-bit types without x64) goes through the public function,
        # which narrows it as Keras would.
        same = canonical.get(value.dtype)
        if same is None:
            same = canonical[value.dtype] = jax.dtypes.canonicalize_dtype(value.dtype) == value.dtype
        if not same:
            return public(value)
        return to_buffer(value.__dlpack__(), device, None, False, 1)  # 1: DLPack's CPU

    return import_array


def _adoptable(value: np.ndarray, adopted: set[int], fresh: Collection[int] = ()) -> bool:
    """Whether a framework may take ``value``'s buffer through DLPack: non-empty, C-ordered,
    writeable, 64-byte aligned (weightio's fresh arrays are; TensorFlow's and jaxlib's imports
    do not all refuse others), and not given to another variable in this load already (no two
    variables may share a buffer). A value whose id is in ``fresh`` (weightio's, just read) is
    known to be the rest: only the last two are checked (its address costs ~1 us to look up)."""
    key = id(value)
    if key in fresh:
        return bool(value.size and key not in adopted)
    return bool(
        value.size
        and value.flags.c_contiguous
        and value.flags.writeable
        and key not in adopted
        and value.ctypes.data % 64 == 0
    )


class _TensorFlowAssigner:
    """Keras 3 on TensorFlow: each variable's ``tf.Variable`` (``_value``) set through the
    assign op where that is all ``_direct_assign`` would do (``assign_tensorflow``);
    ``_direct_assign`` otherwise. Large values are read into tensors the variables take
    over (``TensorFlowDestinations``)."""

    def __init__(self, keras_assign: Any) -> None:
        self.keras_assign = keras_assign
        self.destinations = TensorFlowDestinations(lambda variable: variable._value)
        self.destinations_for = self.destinations.destinations_for
        self.written = self.destinations.written

    def __call__(self, pairs: list[tuple[Any, Any]], fresh: Collection[int] = ()) -> None:
        assign_tensorflow(
            pairs,
            target=_keras_tf_variable,
            put=lambda variable, tensor: variable._direct_assign(tensor),
            fallback=self.keras_assign,
            dtype_of=_numpy_dtype,
            fresh=fresh,
        )


def _keras_tf_variable(variable: Any) -> Any:
    return variable._value


class TensorFlowDestinations:
    """Large values read straight into the memory the variables will hold.

    TensorFlow's assign op copies a value into the variable's buffer, unless the value's
    buffer is TensorFlow's own and nothing else refers to it: then the variable takes the
    buffer over (TensorFlow's input forwarding). So for a large value (64 KiB and up) of a
    plain eager CPU ``ResourceVariable`` (``target(variable)``), ``destination`` makes a new
    uninitialized tensor of the variable's dtype and shape and returns its memory as a
    writeable numpy array; once the read has filled it, ``written`` assigns the tensors, which
    the variables take over without a copy. Until then nothing the model sees has changed (a
    failed read leaves the variables as they were)."""

    def __init__(self, target: Any) -> None:
        import tensorflow as tf
        from tensorflow.python.ops import gen_array_ops, resource_variable_ops

        from . import tf_ops

        self.target = target
        self.ops = tf_ops.ops()
        self.empty = gen_array_ops.empty
        _, self.assign_op = _tensorflow_calls()
        self.plain = resource_variable_ops.ResourceVariable
        self.eager = tf.executing_eagerly()
        self.tensors: dict[int, Any] = {}  # id(variable) -> the tensor read into
        self.constant = tf.constant
        self.shapes = _SHAPE_TENSORS  # shape -> as a tensor (the op's fast path needs one)

    def _resource(self, variable: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """The ResourceVariable whose memory a value of ``shape`` and ``dtype`` of ``variable``
        should be read into, or None."""
        if not self.eager or not read_in_place(shape, dtype):
            return None
        resource = self.target(variable)
        if type(resource) is not self.plain or not resource.device.endswith("CPU:0"):
            return None
        if _numpy_of_tf(resource._dtype) != dtype or tuple(resource.shape) != shape:
            return None
        return resource

    def destination(self, variable: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """Where to read the value (of ``shape`` and ``dtype``) of ``variable``, or None."""
        resource = self._resource(variable, shape, dtype)
        if resource is None:
            return None
        shape_tensor = self.shapes.get(shape)
        if shape_tensor is None:
            if len(self.shapes) > 4096:
                self.shapes.clear()
            shape_tensor = self.shapes[shape] = self.constant(shape, "int32")
        tensor = self.empty(shape_tensor, resource.dtype, init=False)
        try:
            out = np.asarray(_TensorMemory(tensor, dtype))
        except (TypeError, RuntimeError, BufferError):  # not memory numpy can see
            return None
        self.tensors[id(variable)] = tensor
        return out

    def destinations_for(self, requests: list[tuple[Any, tuple[int, ...], np.dtype]]) -> list[np.ndarray | None]:
        """``destination`` for each (variable, shape, dtype); with weightio's TensorFlow ops,
        the new tensors made by one op call."""
        if self.ops is None:
            return [self.destination(*request) for request in requests]
        chosen = []
        for k, (variable, shape, dtype) in enumerate(requests):
            resource = self._resource(variable, shape, dtype)
            if resource is not None:
                chosen.append((k, variable, shape, dtype, resource))
        outs: list[np.ndarray | None] = [None] * len(requests)
        if not chosen:
            return outs
        made = tensor_arrays(self.ops, [(c[2], c[3], c[4]._dtype.as_datatype_enum) for c in chosen])
        for (k, variable, _, _, _), (out, tensor) in zip(chosen, made):
            outs[k] = out
            self.tensors[id(variable)] = tensor
        return outs

    def written(self, variables: list[Any]) -> None:
        """Assigns the tensors read into (``destination``) to these variables: in one op call
        with weightio's TensorFlow ops, else one assign op each."""
        if self.ops is not None and len({id(variable) for variable in variables}) == len(variables):
            resources = [self.target(variable) for variable in variables]
            tensors = [self.tensors.pop(id(variable)) for variable in variables]
            try:
                self.ops.adopt(resources, tensors)
                return
            except Exception:  # noqa: BLE001 - nothing was set: one by one, as without the ops
                self.tensors.update(zip(map(id, variables), tensors))
        for variable in variables:
            self.assign_op(self.target(variable)._handle, self.tensors.pop(id(variable)))


_SHAPE_TENSORS: dict[tuple[int, ...], Any] = {}  # kept across loads: a few hundred shapes at most


def read_in_place(shape: tuple[int, ...], dtype: np.dtype) -> bool:
    """Whether a value is large enough to be read straight into its variable's memory (torch)
    or a tensor its variable takes over (TensorFlow): 64 KiB and up, of a numeric type."""
    return math.prod(shape) * dtype.itemsize >= _DIRECT_MIN_BYTES and dtype.kind in "fiub"


def tensor_arrays(ops: Any, requests: list[tuple[tuple[int, ...], np.dtype, int]]) -> list[tuple[np.ndarray, Any]]:
    """New uninitialized TensorFlow tensors, one per (shape, numpy dtype, TensorFlow dtype
    enum), made by one call of weightio's empty op: each as (a writeable numpy array over its
    memory, the tensor)."""
    tensors, addresses = ops.empty([shape for shape, _, _ in requests], [enum for _, _, enum in requests])
    return [
        (np.asarray(_TensorMemory(tensor, dtype, shape, address)), tensor)
        for (shape, dtype, _), tensor, address in zip(requests, tensors, addresses)
    ]


class _TensorMemory:
    """A new TensorFlow tensor's memory as a writeable numpy array (``np.asarray`` of this),
    which keeps the tensor alive (numpy's own ``from_dlpack`` view is read-only). ``shape``
    and ``address``: already known (weightio's empty op gives them)."""

    def __init__(self, tensor: Any, dtype: np.dtype, shape: tuple[int, ...] | None = None, address: int | None = None) -> None:
        if address is None:
            address = np.from_dlpack(tensor).ctypes.data  # that view is dropped at once
        self.tensor = tensor
        self.__array_interface__ = {
            "version": 3,
            "shape": tuple(tensor.shape) if shape is None else shape,
            "typestr": dtype.str,
            "data": (address, False),
        }


def assign_tensorflow_pairs(pairs: list[tuple[Any, np.ndarray]], fresh: Collection[int] = ()) -> None:
    """tf-keras: validated (tf.Variable, numpy value of its dtype) assignments, as tf-keras's
    ``backend.batch_set_value`` would make them, faster (see ``assign_tensorflow``)."""
    assign_tensorflow(
        pairs,
        target=_itself,
        put=lambda variable, tensor: variable.assign(tensor),
        fallback=lambda variable, value: variable.assign(value),
        fresh=fresh,
    )


def _itself(variable: Any) -> Any:
    return variable


def _read_and_assign(
    pairs: list[tuple[Any, Any]], dtype_of: Any, destinations_for: Any, assign_all: Any, written: Any, meter: Any
) -> None:
    """Reads the values of ``pairs`` still unread (``LazyArray``) in one parallel native call,
    each converted to ``dtype_of(variable)``, then assigns every pair with ``assign_all``.

    ``destinations_for([(variable, shape, dtype), ...])``, where given, says where to read
    each value instead of a new array (the variable's own memory, or memory it will take over), or None; the
    variables read that way are passed to ``written`` instead of ``assign_all``. Only without
    a progress ``meter`` and from one file: the one native call writes all or, on failure,
    none (nothing is assigned then)."""
    from .prefetch import LazyArray, read_lazy

    pending = [i for i, (_, value) in enumerate(pairs) if isinstance(value, LazyArray) and value._array is None]
    ahead = _taken_ahead(pairs, pending, dtype_of)
    if ahead:
        pending = [i for i in pending if pairs[i][1]._array is None]
    lazies = [pairs[i][1] for i in pending]
    dtypes = [dtype_of(pairs[i][0]) for i in pending]
    outs = None
    if destinations_for is not None and meter is None and len({id(value.source) for value in lazies}) == 1:
        outs = usable_destinations(destinations_for([(pairs[i][0], value.shape, dtype) for i, value, dtype in zip(pending, lazies, dtypes)]))
    read_lazy(lazies, dtypes, meter, outs)
    read = {pending[k] for k, out in enumerate(outs or ()) if out is not None}
    fresh = {id(value._array) for k, value in enumerate(lazies) if pending[k] not in read} | ahead
    assign_all(
        [
            (variable, value.materialize() if isinstance(value, LazyArray) else value)
            for i, (variable, value) in enumerate(pairs)
            if i not in read
        ],
        fresh,
    )
    if read:
        written([pairs[i][0] for i in sorted(read)])


def _taken_ahead(pairs: list[tuple[Any, Any]], pending: list[int], dtype_of: Any) -> set[int]:
    """Gives the unread values of ``pairs`` (indices ``pending``) read ahead of the load's end
    (``prefetch.reading_ahead``) their arrays, where read as their variable's dtype; returns
    the ids of those arrays (fresh: new, aligned, nothing else refers to them)."""
    taken: set[int] = set()
    for i in pending:
        variable, value = pairs[i]
        ahead = value.source.ahead
        if ahead is not None and value._array is None:
            array = ahead.take(value.address, dtype_of(variable))
            if array is not None:
                value._array = array
                taken.add(id(array))
    return taken


def usable_destinations(outs: list[Any]) -> list[Any] | None:
    """``outs`` (destinations or None, one per value) if some were given and no two share
    memory (variables sharing a buffer are then read the ordinary way); None otherwise."""
    given = [out.ctypes.data for out in outs if out is not None]
    return outs if given and len(set(given)) == len(given) else None


def read_and_assign_tensorflow(pairs: list[tuple[Any, Any]], meter: Any = None) -> None:
    """tf-keras, eager: validated (tf.Variable, value of its shape) pairs, values arrays or
    unread ``LazyArray``s, read and assigned by ``_read_and_assign``: large values into
    tensors the variables take over (``TensorFlowDestinations``), the rest as
    ``assign_tensorflow_pairs`` does."""
    read_into = TensorFlowDestinations(lambda variable: variable)
    _read_and_assign(
        _last_per_variable(pairs),
        lambda variable: _numpy_of_tf(variable.dtype),
        read_into.destinations_for,
        assign_tensorflow_pairs,
        read_into.written,
        meter,
    )


def _numpy_of_tf(tf_dtype: Any) -> np.dtype:
    """The numpy dtype of a TensorFlow dtype (cached)."""
    found = _TF_NUMPY_DTYPES.get(tf_dtype)
    if found is None:
        found = _TF_NUMPY_DTYPES[tf_dtype] = np.dtype(tf_dtype.as_numpy_dtype)
    return found


_TF_NUMPY_DTYPES: dict[Any, np.dtype] = {}


def assign_tensorflow(
    pairs: list[tuple[Any, Any]],
    target: Any,
    put: Any,
    fallback: Any,
    dtype_of: Any = None,
    fresh: Collection[int] = (),
    bulk: bool = True,
) -> None:
    """Sets validated values (each of its variable's shape) on TensorFlow variables, in order.

    When ``target(variable)`` is a plain eager ``ResourceVariable`` (no distribution
    strategy, no DTensor, not in a graph) and the value a numpy array of its dtype:
    - with weightio's TensorFlow ops built (``tf_ops``), values under 64 KiB, and larger
      ones that cannot be adopted, are copied into their variables by one op call for all
      of them (``bulk``);
    - otherwise each fresh, aligned array is handed to TensorFlow through DLPack (no copy;
      each array at most once, so no two variables ever share a buffer) and TensorFlow's
      AssignVariableOp runs directly: ``tf.Variable.assign`` comes down to that op for such
      variables, and calling it skips ~20-40 us of Python per variable (conversion checks,
      building a read-back value); the op itself costs ~8 us.
    Other variables get ``put(variable, tensor)`` (an adoptable array, through DLPack); values
    that cannot be adopted, or (with ``dtype_of``) are not of ``dtype_of(variable)``, go to
    ``fallback(variable, value)``. The values whose ids are in ``fresh`` (weightio's just
    read) are known adoptable unless empty or repeated."""
    import tensorflow as tf
    from tensorflow.python.ops import resource_variable_ops

    from . import tf_ops

    plain = resource_variable_ops.ResourceVariable
    from_capsule, assign_op = _tensorflow_calls()
    eager = tf.executing_eagerly()
    ops = tf_ops.ops() if bulk and eager else None
    batch = _Batch(ops, lambda pairs: assign_tensorflow(pairs, target, put, fallback, dtype_of, fresh, bulk=False))
    adopted: set[int] = set()
    numpy_of = _TF_NUMPY_DTYPES
    for variable, value in pairs:
        resource = target(variable)
        direct = eager and type(resource) is plain
        if direct:
            wanted = numpy_of.get(resource._dtype) or _numpy_of_tf(resource._dtype)
        else:
            wanted = None if dtype_of is None else dtype_of(variable)
        if type(value) is not np.ndarray or (wanted is not None and value.dtype != wanted):
            fallback(variable, value)
            continue
        adoptable = _adoptable(value, adopted, fresh)
        if ops is not None and direct and (value.nbytes < _DIRECT_MIN_BYTES or not adoptable) and batch.copy(variable, resource, value):
            continue
        if not adoptable:
            fallback(variable, value)
            continue
        try:
            tensor = from_capsule(value.__dlpack__())
        except Exception:  # noqa: BLE001 - a dtype DLPack cannot carry (bfloat16...)
            fallback(variable, value)
            continue
        adopted.add(id(value))
        if ops is not None and direct:
            batch.adopt(variable, resource, tensor)
        elif direct:
            assign_op(resource._handle, tensor)
        else:
            put(variable, tensor)
    batch.flush()


class _Batch:
    """Assignments gathered for weightio's TensorFlow ops (``tf_ops``): values to copy into
    their variables, and tensors for their variables to take over. ``flush`` makes them: at
    the end, or before a variable already in the batch is assigned again (so the later value
    wins). If an op refuses its part (each checks every variable before setting any), that
    part is made one by one by ``one_by_one`` instead."""

    def __init__(self, ops: Any, one_by_one: Any) -> None:
        self.ops = ops
        self.one_by_one = one_by_one
        self._clear()

    def _clear(self) -> None:
        self.copies: list[tuple[Any, Any, np.ndarray]] = []  # (variable, resource, value)
        self.dtypes: list[int] = []
        self.adoptions: list[tuple[Any, Any, Any, np.ndarray]] = []  # (variable, resource, tensor, value)
        self.seen: set[int] = set()

    def _take(self, resource: Any) -> None:
        if id(resource) in self.seen:
            self.flush()
        self.seen.add(id(resource))

    def copy(self, variable: Any, resource: Any, value: np.ndarray) -> bool:
        """Takes the copy if the op can make it: a C-contiguous value of a dtype copied byte
        for byte (TensorFlow's numeric types)."""
        enum = _TF_MEMCPY_ENUMS.get(resource._dtype)
        if enum is None:
            enum = _TF_MEMCPY_ENUMS[resource._dtype] = _memcpy_enum(resource._dtype)
        if not enum or not value.flags.c_contiguous:
            return False
        self._take(resource)
        self.copies.append((variable, resource, value))
        self.dtypes.append(enum)
        return True

    def adopt(self, variable: Any, resource: Any, tensor: Any) -> None:
        self._take(resource)
        self.adoptions.append((variable, resource, tensor))

    def flush(self) -> None:
        copies, dtypes, adoptions = self.copies, self.dtypes, self.adoptions
        self._clear()
        if copies:
            try:
                self.ops.assign([r for _, r, _ in copies], [v for _, _, v in copies], np.array(dtypes, np.int32))
            except Exception:  # noqa: BLE001 - nothing was written; TensorFlow's own op reports what is wrong
                self.one_by_one([(variable, value) for variable, _, value in copies])
        if adoptions:
            try:
                self.ops.adopt([r for _, r, _ in adoptions], [t for _, _, t in adoptions])
            except Exception:  # noqa: BLE001 - nothing was set: TensorFlow's own op, one by one
                self.one_by_one([(variable, tensor.numpy()) for variable, _, tensor in adoptions])


def _memcpy_enum(tf_dtype: Any) -> int:
    """The DataType enum of a TensorFlow dtype whose values are plain bytes (0 otherwise)."""
    import tensorflow as tf

    copied = {tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int8, tf.int16, tf.int32, tf.int64,
              tf.uint8, tf.uint16, tf.uint32, tf.uint64, tf.bool, tf.complex64, tf.complex128}
    return int(tf_dtype.as_datatype_enum) if tf_dtype in copied else 0


_TF_MEMCPY_ENUMS: dict[Any, int] = {}


def _tensorflow_calls() -> tuple[Any, Any]:
    """(capsule -> eager tensor, (resource handle, tensor) -> None): what
    ``tf.experimental.dlpack.from_dlpack`` and ``assign_variable_op`` come down to in eager
    mode, without their per-call Python (about 2 us a variable)."""
    from tensorflow.python import pywrap_tfe
    from tensorflow.python.eager import context, core
    from tensorflow.python.framework import ops
    from tensorflow.python.ops import gen_resource_variable_ops

    ctx = context.context()
    ctx.ensure_initialized()
    handle = ctx._handle
    from_capsule = pywrap_tfe.TFE_FromDlpackCapsule
    execute = pywrap_tfe.TFE_Py_FastPathExecute

    def tensor_of(capsule: Any) -> Any:
        return from_capsule(capsule, handle)

    def assign(resource_handle: Any, tensor: Any) -> None:
        try:
            execute(ctx, "AssignVariableOp", None, resource_handle, tensor, "validate_shape", False)
        except core._NotOkStatusException as error:  # as the generated wrapper reports it
            ops.raise_from_not_ok_status(error, None)
        except core._FallbackException:
            gen_resource_variable_ops.assign_variable_op(resource_handle, tensor)

    return tensor_of, assign


def loads_with(obj: Any, loaders: Collection[Any]) -> bool:
    """Whether ``obj`` loads its variables with one of ``loaders`` (Keras's own
    ``load_own_variables`` functions): its class's, not replaced on the object itself."""
    return getattr(type(obj), "load_own_variables", None) in loaders and "load_own_variables" not in getattr(
        obj, "__dict__", {}
    )


def _all_layers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is None:
        return [model]
    return list(flatten(include_self=True, recursive=True))


def variable_shape(variable: Any) -> tuple[Any, ...]:
    """A variable's shape as a tuple: a Keras 3 variable's own ``_shape`` (on TensorFlow the
    ``shape`` property builds a TensorShape, ~4 us), a TensorShape's dimensions as it holds
    them (iterating it costs ~0.4 us more), else ``tuple(variable.shape)``."""
    shape = getattr(variable, "_shape", None)
    if type(shape) is tuple:
        return shape
    shape = variable.shape
    dims = getattr(shape, "_dims", None)
    return dims if type(dims) is tuple else tuple(shape)


def _shape_of(value: Any) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    return tuple(np.shape(value)) if shape is None else tuple(shape)


@contextlib.contextmanager
def recording() -> Iterator[Recorder]:
    """Within the block, Keras 3 ``Variable.assign`` records instead of assigning."""
    from keras.src.backend.common import variables as kv

    recorder = Recorder()
    original = kv.Variable.assign

    owner = threading.get_ident()

    def record(self: Any, value: Any) -> Any:
        if threading.get_ident() != owner or kv.in_stateless_scope():
            return original(self, value)  # another thread's assignment: not ours to defer
        value_shape = _shape_of(value)
        same = value_shape == variable_shape(self) or kv.shape_equal(value_shape, self.shape)
        if not same or is_raw_bytes(value):
            # Keras raises its own error (shape, or bytes it cannot convert), assigning nothing.
            return original(self, np.asarray(value) if hasattr(value, "materialize") else value)
        recorder.pairs.append((self, value))
        return value

    with LOAD_LOCK:
        kv.Variable.assign = record
        try:
            yield recorder
        finally:
            kv.Variable.assign = original


def is_raw_bytes(value: Any) -> bool:
    """Opaque bytes (numpy 'V' kind, not bfloat16): Keras's conversion refuses them."""
    dtype = getattr(value, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind == "V" and dtype.names is None and dtype.name != "bfloat16"


def once_per_layer(legacy_weights: Any) -> Any:
    """The legacy loaders' ``_legacy_weights(layer)`` (a layer's trainable then non-trainable
    weights), computed once per layer for one load. Keras's and tf-keras's topological and
    by-name loaders ask for each layer's list twice (to pick the layers with weights, then to
    assign), and nothing changes the model in between: loading assigns nothing until the end.
    tf-keras builds the list from its module tree every time (a third of a first load of a
    model of many small layers)."""
    lists: dict[int, tuple[Any, list[Any]]] = {}  # id(layer) -> (the layer, kept alive; its list)

    def once(layer: Any) -> list[Any]:
        found = lists.get(id(layer))
        if found is None:
            found = lists[id(layer)] = (layer, legacy_weights(layer))
        return list(found[1])

    return once


@contextlib.contextmanager
def patched(module: Any, **replacements: Any) -> Iterator[None]:
    """Temporarily replaces functions of ``module`` (Keras's I/O helpers) for the calling
    thread only: other threads keep calling the originals."""
    saved = {name: getattr(module, name) for name in replacements}
    owner = threading.get_ident()

    def for_this_thread(name: str, replacement: Any) -> Any:
        original = saved[name]
        if not callable(replacement) or isinstance(replacement, type):
            return replacement

        def call(*args: Any, **kwargs: Any) -> Any:
            chosen = replacement if threading.get_ident() == owner else original
            return chosen(*args, **kwargs)

        return call

    with LOAD_LOCK:
        for name, value in replacements.items():
            setattr(module, name, for_this_thread(name, value))
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(module, name, value)
