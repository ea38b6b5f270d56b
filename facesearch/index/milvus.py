"""The gallery's vectors in Milvus: a Milvus Lite file for one machine, or a Milvus server or
cluster by its URI, behind the same interface as the FAISS index (``facesearch.index.base``).

A collection holds (face id, unit embedding) rows under an exact inner-product index (FLAT),
so it answers as FAISS flat does. Like any index here it is derived data: its properties carry
the stamp of the database state it reflects (``facesearch.stamp``), and whatever does not
check out is reconciled or rebuilt from the database. Rows are written with ``upsert``, so two
processes adding the same face (one repairing what the other is about to add) leave one row.

A collection that exists but carries no stamp of this gallery is somebody else's: it is
refused, never dropped. Milvus Lite opens a file in one process at a time; a second process
waits for it (as long as the gallery lock would) and then says so.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.errors import Busy, GalleryError, InputError
from facesearch.index.spec import DatabaseState, IndexSpec, IndexStamp

log = logging.getLogger(__name__)

STAMP = "facesearch.stamp"
LITE_FILE = "index.milvus.db"
MAX_TOP_K = 16_384  # Milvus's cap on one search's limit
BATCH = 5_000  # rows per upsert call
SERVER_TIMEOUT = 10.0  # seconds to wait for a Milvus server before saying it does not answer


def default_collection(gallery_uuid: str) -> str:
    """A name that lets many galleries share one Milvus server (letters, digits, underscores)."""
    return "facesearch_" + gallery_uuid.replace("-", "")


class MilvusIndex:
    """Inner-product search over (face id, embedding) rows of one Milvus collection."""

    def __init__(self, client: Any, collection: str, stamp: IndexStamp, spec: IndexSpec, count: int | None = None) -> None:
        """``count``: the rows it holds, when known (None: counted now, one round trip)."""
        self.client, self.collection, self.stamp, self.spec = client, collection, stamp, spec
        self.dim = stamp.dim
        self._count = self._counted() if count is None else count

    @property
    def ntotal(self) -> int:
        """The row count as this process last learnt it (kept without a round trip per query;
        a change by another process also changes the database revision, and so a reconcile)."""
        return self._count

    def ids(self) -> np.ndarray:
        """Every face id in the collection, read in windows of ids (a query returns at most
        MAX_TOP_K rows; the query iterator needs a timestamp call Milvus Lite lacks)."""
        total = self._counted()
        found: list[int] = []
        low = 0
        while len(found) < total and low < 2**31:  # face ids are the database's 32-bit keys
            rows = self.client.query(self.collection, filter=f"id >= {low} and id < {low + MAX_TOP_K}",
                                     output_fields=["id"], limit=MAX_TOP_K, consistency_level="Strong")
            found.extend(row["id"] for row in rows)
            low += MAX_TOP_K
        self._count = len(found)
        return np.sort(np.asarray(found, dtype=np.int64))

    def _counted(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        for start in range(0, len(ids), BATCH):
            rows = [{"id": int(i), "embedding": v.tolist()} for i, v in zip(ids[start : start + BATCH], vectors[start : start + BATCH])]
            self.client.upsert(self.collection, rows)
        self._count += len(ids)

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        self.client.delete(self.collection, ids=[int(i) for i in ids])
        self._count = max(0, self._count - len(ids))
        return len(ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) as FaceIndex.search gives them: best first, -1 ids past the end."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, MAX_TOP_K))
        hits = self.client.search(
            self.collection, data=queries.tolist(), limit=k, anns_field="embedding",
            search_params={"metric_type": "IP"}, output_fields=["id"], consistency_level="Strong",
        )
        scores = np.full((len(queries), k), -1.0, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                scores[row, col], ids[row, col] = hit["distance"], hit["id"]
        return np.clip(scores, -1.0, 1.0, out=scores), ids

    def tune(self, spec: IndexSpec) -> None:
        self.spec = spec

    def outgrown(self, size: int) -> bool:
        return False


class MilvusCollection:
    """Where a ``milvus`` index is kept: the collection ``spec.collection`` (default: named
    after the gallery) at ``spec.uri`` (default: a Milvus Lite file in ``folder``, the home)."""

    def __init__(self, spec: IndexSpec, folder: Path, gallery_uuid: str, wait: float = 30.0) -> None:
        self.spec = spec
        self.uri = spec.uri or str(folder / LITE_FILE)
        self.name = spec.collection or default_collection(gallery_uuid)
        self.gallery_uuid = gallery_uuid
        self.wait = wait
        self._client: Any = None

    @property
    def where(self) -> str:
        return f"{self.uri}#{self.name}"

    @property
    def lite(self) -> bool:
        return not self.uri.startswith(("http://", "https://", "tcp://", "grpc://"))

    @property
    def client(self) -> Any:
        """A client of the URI, made on first use (a Lite file busy in another process is
        waited for; a server that does not answer is one clear error)."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        try:
            from pymilvus import MilvusClient
            from pymilvus.exceptions import MilvusException
        except ModuleNotFoundError:
            raise GalleryError("the milvus index kind needs pymilvus: pip install 'facesearch[milvus]'") from None
        if self.lite and not self.uri.endswith(".db"):
            raise InputError(f"Milvus URI {self.uri!r}: a server is http://HOST:PORT, a Milvus Lite file ends in .db")
        deadline = time.monotonic() + (self.wait if self.lite else 0)
        while True:
            try:
                if self.lite:
                    return self._start_lite(MilvusClient)
                return MilvusClient(self.uri, timeout=SERVER_TIMEOUT)
            except MilvusException as exc:
                if not self.lite:
                    raise GalleryError(f"cannot reach Milvus at {self.uri}: {' '.join(str(exc.message).split())}") from None
                if time.monotonic() > deadline:
                    raise Busy(f"the Milvus Lite file {self.uri} stayed open in another process for over {self.wait:.0f} s "
                               "(Milvus Lite allows one process per file; a Milvus server allows many)") from None
                time.sleep(0.2)

    def _start_lite(self, client_class: Any) -> Any:
        """Open the Lite file. Its server runs in this process's threads and writes face vectors
        with the process umask, up to the process's exit (it flushes then), so from here on the
        umask is 077, as for everything else of a home; ``close`` stops that server. Its log of a call Lite does not
        implement (answered by a fallback) is muted."""
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        os.umask(0o077)
        return client_class(self.uri)

    def _stamp_of(self, description: dict[str, Any]) -> IndexStamp | None:
        raw = (description.get("properties") or {}).get(STAMP)
        try:
            return IndexStamp(**json.loads(raw)) if raw else None
        except (TypeError, ValueError):
            return None

    def _describe(self) -> dict[str, Any] | None:
        if not self.client.has_collection(self.name):
            return None
        description = self.client.describe_collection(self.name)
        stamp = self._stamp_of(description)
        if stamp is None or stamp.uuid != self.gallery_uuid:
            dims = [f.get("params", {}).get("dim") for f in description.get("fields", []) if f.get("params", {}).get("dim")]
            whose = "another gallery's" if stamp else "not facesearch's"
            raise GalleryError(
                f"Milvus collection {self.name} at {self.uri} is {whose} (dimension {dims[0] if dims else '?'}): "
                "it is left alone; choose another with `facesearch index milvus --collection NAME`"
            )
        return description

    def load(self, state: DatabaseState) -> MilvusIndex | None:
        """The collection as an index (None: there is none yet, or it holds another encoder's
        vectors and must be rebuilt)."""
        description = self._describe()
        if description is None:
            return None
        stamp = self._stamp_of(description)
        assert stamp is not None
        if stamp.dim != state.dim:
            return None
        self.client.load_collection(self.name)
        return MilvusIndex(self.client, self.name, replace(stamp, kind="milvus"), self.spec)

    def create(self, stamp: IndexStamp, spec: IndexSpec, sample: np.ndarray | None, size: int) -> MilvusIndex:
        """A new, empty collection for this gallery (its old one, if any, dropped)."""
        from pymilvus import DataType

        self.drop()
        stamp = replace(stamp, kind="milvus")
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=stamp.dim)
        params = self.client.prepare_index_params()
        params.add_index("embedding", index_type="FLAT", metric_type="IP")
        self.client.create_collection(
            self.name, schema=schema, index_params=params, consistency_level="Strong",
            properties={STAMP: json.dumps(asdict(stamp))},
        )
        log.info("created Milvus collection %s at %s", self.name, self.uri)
        return MilvusIndex(self.client, self.name, stamp, spec, 0)

    def save(self, index: MilvusIndex) -> None:
        """The rows are written as they change; saving records which database state they reflect."""
        self.client.alter_collection_properties(self.name, properties={STAMP: json.dumps(asdict(index.stamp))})

    def stamp(self) -> IndexStamp | None:
        try:
            description = self._describe()
        except GalleryError:
            return None
        return self._stamp_of(description) if description else None

    def drop(self) -> None:
        if self._describe() is not None:
            self.client.drop_collection(self.name)

    def close(self) -> None:
        """Let go of the URI (a Milvus Lite file is then free for another process)."""
        if self._client is not None:
            self._client.close()
            self._client = None
            if self.lite:  # the client's close leaves Lite's in-process server holding the file
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.uri)
