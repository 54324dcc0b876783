"""The company's knowledge: answers from the admin's own files (issue 15).

``KnowledgeBase.answer(question, now)`` is what the dialogue calls; ``voicebot kb check`` and
``voicebot kb search`` are the admin's tools. Modules: ``files`` (reading and checking the folder), ``embed``
(the e5 embedding model), ``retrieval`` (BM25 + dense, fused), ``hours`` and ``prices`` (computed answers),
``base`` (the decision and the spoken text), ``bench`` (``voicebot bench kb``).
"""

from voicebot.knowledge.base import KnowledgeAnswer, KnowledgeBase, spoken
from voicebot.knowledge.embed import E5Embedder, Embedder, EmbeddingError, load_embedder
from voicebot.knowledge.files import Entry, KnowledgeFiles, Problem, load_folder

__all__ = ["E5Embedder", "Embedder", "EmbeddingError", "Entry", "KnowledgeAnswer", "KnowledgeBase",
           "KnowledgeFiles", "Problem", "load_embedder", "load_folder", "spoken"]
