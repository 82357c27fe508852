"""The TFLite flatbuffer schema (generated Python shipped by the ``tflite-micro`` package) and
the one serialisation step: ModelT -> bytes with the flatbuffers runtime.

Nothing here hand-encodes bytes: the object API packs every table; the only customisation is
that buffer payloads are written as 16-byte aligned vectors (``force_align: 16`` on
``Buffer.data`` in schema.fbs, which the generated Python does not honour by itself)."""
from __future__ import annotations

import flatbuffers
import numpy as np

try:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
except ImportError as e:  # pragma: no cover - depends on the environment
    from ...errors import EdgeqError
    raise EdgeqError("the tflite target needs the 'tflite-micro' package (TFLite schema and TFLite Micro "
                     "interpreter): pip install tflite-micro flatbuffers") from e

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
BUFFER_ALIGNMENT = 16

TENSOR_TYPES = {"float32": fb.TensorType.FLOAT32, "int8": fb.TensorType.INT8,
                "int32": fb.TensorType.INT32, "int16": fb.TensorType.INT16,
                "uint8": fb.TensorType.UINT8, "int64": fb.TensorType.INT64, "bool": fb.TensorType.BOOL}
NUMPY_OF_TYPE = {fb.TensorType.FLOAT32: np.float32, fb.TensorType.INT8: np.int8,
                 fb.TensorType.INT32: np.int32, fb.TensorType.INT16: np.int16,
                 fb.TensorType.UINT8: np.uint8, fb.TensorType.INT64: np.int64, fb.TensorType.BOOL: np.bool_}
OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}


class AlignedBufferT(fb.BufferT):
    """A Buffer whose data vector starts on a 16-byte boundary of the final file."""

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 - flatbuffers naming
        data_off = None
        if self.data is not None:
            payload = np.ascontiguousarray(self.data, dtype=np.uint8).tobytes()
            # the pattern of Builder.CreateNumpyVector, with the schema's alignment
            builder.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data_off = builder.EndVector()
        fb.BufferStart(builder)
        if data_off is not None:
            fb.BufferAddData(builder, data_off)
        return fb.BufferEnd(builder)


class SharedQuantizationT(fb.QuantizationParametersT):
    """QuantizationParameters written once per distinct content: every tensor of equal scales,
    zero points and quantized dimension points at one table (a flatbuffers table may have many
    parents; the runtimes read it in place). Glue tensors repeat their source's parameters."""

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 - flatbuffers naming
        tables = getattr(builder, "quantization_tables", None)
        if tables is None or self.min is not None or self.max is not None or self.details is not None:
            return super().Pack(builder)
        key = tuple(np.asarray(v).dtype.str + np.asarray(v).tobytes().hex() if v is not None else None
                    for v in (self.scale, self.zeroPoint)) + (int(self.quantizedDimension),)
        if key not in tables:
            tables[key] = super().Pack(builder)
        return tables[key]


class SharingBuilder(flatbuffers.Builder):
    """A builder that writes each distinct numpy vector once and lets every table that holds an
    equal vector point at that one copy (flatbuffers vectors are immutable, and a table may refer
    to any vector written before it). Per-channel zero points (int64, one per channel, for
    weights and biases alike), shapes and one-value scales repeat across tensors: this is the
    TFLite file's quantization metadata written once instead of per tensor."""

    def __init__(self, initial_size: int) -> None:
        super().__init__(initial_size)
        self._vectors: dict[tuple[str, bytes], int] = {}
        self.quantization_tables: dict[tuple, int] = {}   # SharedQuantizationT content -> table

    def CreateNumpyVector(self, x: np.ndarray) -> int:  # noqa: N802 - flatbuffers naming
        key = (x.dtype.str, np.ascontiguousarray(x).tobytes())
        if key not in self._vectors:
            self._vectors[key] = super().CreateNumpyVector(x)
        return self._vectors[key]


def serialize(model: fb.ModelT) -> bytes:
    builder = SharingBuilder(1 << 16)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def read_model(data: bytes) -> fb.ModelT:
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(data), 0))


def builtin_code(opcode: fb.OperatorCodeT) -> int:
    return max(opcode.builtinCode, opcode.deprecatedBuiltinCode)
