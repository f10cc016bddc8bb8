"""Python client for the HTTP API of `imsat serve`.

    import imsat
    client = imsat.Client("http://127.0.0.1:8080")        # token: argument or IMSAT_TOKEN
    shop = client.collection("shop")
    shop.add([{"key": "a", "vector": [0.1, 0.2]}])
    shop.search(key="a", k=10, filter={"must": [{"key": "color", "match": "red"}]})

`Client` acts on the server's default collection; `Client.collection(name)` on a named one. Both
offer the same item, search, snapshot and evaluation methods. Every error answer of the server
raises `ImsatError` or the subclass of its error code (`NotFound`, `InvalidFilter`, ...).
"""

import json
import mimetypes
import os
import urllib.parse

import requests

__all__ = [
    "Client", "Collection", "ImsatError", "BadRequest", "InvalidArgument", "UnknownField",
    "InvalidFilter", "Unauthorized", "MissingToken", "WrongToken", "Timeout", "StorageError", "Forbidden", "NotFound", "UnknownEndpoint",
    "UnknownCollection", "NoDefaultCollection", "BadCollectionName", "MethodNotAllowed",
    "Conflict", "TooLarge", "ResponseTooLarge", "UnsupportedMediaType", "Busy",
    "InsufficientStorage", "NotImplemented", "InternalError",
]

__version__ = "0.1.0"


class ImsatError(Exception):
    """An error answer of the server: HTTP `status`, the API's error `code`, its `message`."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BadRequest(ImsatError):
    """bad_request: a malformed request (JSON, fields, values)."""


class InvalidArgument(ImsatError):
    """invalid_argument: a value the operation cannot take."""


class UnknownField(ImsatError):
    """unknown_field: a body field or parameter the endpoint does not know (a typo)."""


class InvalidFilter(ImsatError):
    """invalid_filter: a metadata filter that does not parse."""


class Unauthorized(ImsatError):
    """unauthorized (401): the request lacks the token its endpoint needs."""


class MissingToken(Unauthorized):
    """missing_token: the endpoint needs a bearer token."""


class WrongToken(Unauthorized):
    """wrong_token: the token given is not the server's."""


class Forbidden(ImsatError):
    """read_only_follower and other 403 answers: this server does not take the request."""


class NotFound(ImsatError):
    """not_found: no item with that key, no snapshot with that id."""


class UnknownEndpoint(ImsatError):
    """unknown_endpoint: no such path."""


class UnknownCollection(ImsatError):
    """unknown_collection: no collection with that name."""


class NoDefaultCollection(ImsatError):
    """no_default_collection: the server holds several collections and none is the default."""


class BadCollectionName(ImsatError):
    """bad_collection_name: names are 1-64 letters, digits, '-' and '_'."""


class MethodNotAllowed(ImsatError):
    """method_not_allowed."""


class Conflict(ImsatError):
    """conflict: a collection name in use or being created."""


class TooLarge(ImsatError):
    """too_large: a request over the server's limits."""


class ResponseTooLarge(ImsatError):
    """response_too_large: ask for fewer queries, a smaller k or a smaller radius limit."""


class UnsupportedMediaType(ImsatError):
    """unsupported_media_type: a body of a Content-Type the endpoint does not take."""


class Timeout(ImsatError):
    """timeout: the request was not received in time."""


class Busy(ImsatError):
    """busy: every slot for heavy work is taken; retry after `retry_after` seconds."""

    retry_after = None


class InsufficientStorage(ImsatError):
    """insufficient_storage: the server's disk is full; reads go on."""


class NotImplemented(ImsatError):  # noqa: A001 - the API's own name for the error
    """not_implemented."""


class InternalError(ImsatError):
    """internal: a server fault."""


class StorageError(InternalError):
    """io_error, corruption: the server's store could not be read or written."""


_BY_CODE = {
    "bad_request": BadRequest, "invalid_argument": InvalidArgument,
    "unknown_field": UnknownField, "invalid_filter": InvalidFilter,
    "unauthorized": Unauthorized, "missing_token": MissingToken, "wrong_token": WrongToken,
    "forbidden": Forbidden, "read_only_follower": Forbidden, "not_found": NotFound,
    "unknown_endpoint": UnknownEndpoint, "unknown_collection": UnknownCollection,
    "no_default_collection": NoDefaultCollection, "bad_collection_name": BadCollectionName,
    "method_not_allowed": MethodNotAllowed, "conflict": Conflict, "too_large": TooLarge,
    "headers_too_large": TooLarge, "timeout": Timeout, "io_error": StorageError,
    "corruption": StorageError,
    "response_too_large": ResponseTooLarge, "unsupported_media_type": UnsupportedMediaType,
    "busy": Busy, "insufficient_storage": InsufficientStorage,
    "not_implemented": NotImplemented, "internal": InternalError,
}
_BY_STATUS = {400: BadRequest, 401: Unauthorized, 408: Timeout, 403: Forbidden, 404: NotFound,
              405: MethodNotAllowed, 409: Conflict, 413: TooLarge, 415: UnsupportedMediaType,
              503: Busy, 507: InsufficientStorage, 501: NotImplemented, 500: InternalError}


def _error(response):
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code", "") if isinstance(body, dict) else ""
    message = body.get("error", response.text) if isinstance(body, dict) else response.text
    cls = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code, ImsatError)
    err = cls(response.status_code, code, message)
    if isinstance(err, Busy):
        err.retry_after = response.headers.get("Retry-After")
    return err


def _plain(values):
    """A vector as a JSON-ready list (NumPy arrays and scalars included)."""
    tolist = getattr(values, "tolist", None)
    return tolist() if tolist is not None else [float(v) for v in values]


def _rows(vectors):
    tolist = getattr(vectors, "tolist", None)
    return tolist() if tolist is not None else [_plain(v) for v in vectors]


def _items(keys, field, values, labels, metadata):
    """Item dicts: keys[i] with values[i] as `field`, and labels[i] and metadata[i] when given."""
    if len(values) != len(keys):
        raise ValueError(f"{len(keys)} keys for {len(values)} {field}s")
    items = []
    for i, key in enumerate(keys):
        item = {"key": key, field: values[i]}
        if labels is not None:
            item["label"] = int(labels[i])
        if metadata is not None:
            item["metadata"] = metadata[i]
        items.append(item)
    return items


def _batches(seq, size):
    for i in range(0, len(seq), size):
        yield i, seq[i:i + size]


class _Api:
    """The operations on one collection; `prefix` is "" (the default one) or its path."""

    def __init__(self, session, base, prefix):
        self._s = session
        self._base = base
        self._prefix = prefix

    def _path(self, path):
        # "/v1/items" of collection c is "/v1/collections/c/items".
        return self._prefix + path[3:] if self._prefix else path

    # -- items -------------------------------------------------------------------------------
    def add(self, items, batch_size=1000, progress=None):
        """Adds or replaces items: dicts with `key` and one of `vector` (a list or a NumPy
        array) or `code` (hex), optional `label` and `metadata` (a dict). Sent `batch_size` at a
        time, each batch one atomic, durable write; `progress(done, total)` after each. Returns
        how many were added."""
        items = list(items)
        added = 0
        for start, batch in _batches(items, batch_size):
            docs = []
            for it in batch:
                doc = dict(it)
                if "vector" in doc:
                    doc["vector"] = _plain(doc["vector"])
                docs.append(doc)
            added += self._s.call("POST", self._path("/v1/items"), json=docs)["added"]
            if progress is not None:
                progress(start + len(batch), len(items))
        return added

    def add_vectors(self, keys, vectors, labels=None, metadata=None, batch_size=1000,
                    progress=None):
        """Adds one item per row of `vectors` (a 2-D NumPy array or a list of lists)."""
        items = _items(keys, "vector", _rows(vectors), labels, metadata)
        return self.add(items, batch_size, progress)

    def add_codes(self, keys, codes, labels=None, metadata=None, batch_size=1000, progress=None):
        """Adds one item per hex code (models trained elsewhere, `imsat encode` output)."""
        return self.add(_items(keys, "code", list(codes), labels, metadata), batch_size, progress)

    def add_images(self, images, keys=None, labels=None, metadata=None, batch_size=64,
                   progress=None):
        """Adds image files: paths, or (name, bytes) pairs. Keys default to the file names (a
        path's base name). Each batch is one multipart request, encoded by the collection's
        model and kept with a thumbnail."""
        images = list(images)
        added = 0
        for start, batch in _batches(images, batch_size):
            files, fields = [], []
            for j, image in enumerate(batch):
                i = start + j
                if isinstance(image, (tuple, list)):
                    name, data = image
                else:
                    name = os.path.basename(str(image))
                    with open(image, "rb") as f:
                        data = f.read()
                kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
                files.append(("file", (name, data, kind)))
                fields.append(("key", keys[i] if keys is not None else name))
                if labels is not None:
                    fields.append(("label", str(int(labels[i]))))
                if metadata is not None:
                    fields.append(("metadata", json.dumps(metadata[i])))
            answer = self._s.call("POST", self._path("/v1/items"), data=fields, files=files)
            added += answer["added"]
            if progress is not None:
                progress(start + len(batch), len(images))
        return added

    def get(self, key):
        """The stored item: key, code, label, metadata, has_vector."""
        return self._s.call("GET", self._path("/v1/items/" + urllib.parse.quote(key, safe="")))

    def image(self, key):
        """A stored item's thumbnail (JPEG) or pixels (PNG), as bytes."""
        return self._s.call("GET", self._path("/v1/items/" + urllib.parse.quote(key, safe="") +
                                              "/image"), raw=True)

    def delete(self, keys=None, filter=None, with_keys=False):
        """Deletes items by key (a string or a list) or by filter, in one atomic batch. Returns
        {"deleted": n, "not_found": m} (and "not_found_keys" with `with_keys`)."""
        if (keys is None) == (filter is None):
            raise ValueError("give keys or filter")
        if isinstance(keys, str):
            keys = [keys]
        body = {"keys": list(keys)} if keys is not None else {"filter": filter}
        if with_keys:
            body["with_keys"] = True
        return self._s.call("POST", self._path("/v1/items/delete"), json=body)

    def count(self, filter=None):
        """The exact number of items passing `filter` (all items without one)."""
        body = {} if filter is None else {"filter": filter}
        return self._s.call("POST", self._path("/v1/items/count"), json=body)["count"]

    def scroll(self, filter=None, page_size=100):
        """Every item passing `filter`, in insertion order, fetched `page_size` at a time. An
        item present for the whole scroll is seen exactly once, whatever is written meanwhile."""
        cursor = None
        while True:
            body = {"limit": page_size}
            if filter is not None:
                body["filter"] = filter
            if cursor is not None:
                body["cursor"] = cursor
            page = self._s.call("POST", self._path("/v1/items/scroll"), json=body)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if cursor is None:
                return

    def index_field(self, field):
        """Indexes a metadata field, so filters on it are answered from the index."""
        return self._s.call("PUT", self._path("/v1/index/" + urllib.parse.quote(field, safe="")),
                            json={"type": "any"})

    # -- search ------------------------------------------------------------------------------
    @staticmethod
    def _options(k, radius, limit, filter, rerank, candidates, explain, shortlist=None):
        body = {}
        if radius is not None:
            body["radius"] = radius
            if limit is not None:
                body["limit"] = limit
        else:
            body["k"] = k
        if filter is not None:
            body["filter"] = filter
        if rerank is not None:
            body["rerank"] = rerank
        if candidates is not None:
            body["candidates"] = candidates
        if shortlist is not None:
            body["shortlist"] = shortlist
        if explain:
            body["explain"] = True
        return body

    def search(self, key=None, code=None, vector=None, image=None, k=10, radius=None,
               limit=None, filter=None, rerank=None, candidates=None, explain=False,
               shortlist=None):
        """One query: a stored item's `key`, a hex `code`, a `vector`, or an `image` (a path or
        bytes). kNN of `k`, or every item within `radius` (at most `limit`). With
        rerank="exact", `candidates` Hamming candidates are compared by the collection's metric
        (of which only the best `shortlist` by asymmetric score, when given). Returns the answer:
        {"hits": [{"key", "distance", "score", "label", "metadata"}], "code", ...}."""
        given = sum(x is not None for x in (key, code, vector, image))
        if given != 1:
            raise ValueError("give exactly one of key, code, vector or image")
        options = self._options(k, radius, limit, filter, rerank, candidates, explain, shortlist)
        if image is not None:
            return self._search_image(image, options)
        body = dict(options)
        if key is not None:
            body["key"] = key
        elif code is not None:
            body["code"] = code
        else:
            body["vector"] = _plain(vector)
        return self._s.call("POST", self._path("/v1/search"), json=body)

    def _search_image(self, image, options):
        if isinstance(image, (bytes, bytearray)):
            name, data = "query", bytes(image)
        else:
            name = os.path.basename(str(image))
            with open(image, "rb") as f:
                data = f.read()
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if "radius" in options:
            raise ValueError("an image search is a kNN search (k), not a radius search")
        fields = [(name_, json.dumps(v) if isinstance(v, (dict, list, bool)) else str(v))
                  for name_, v in options.items()]
        return self._s.call("POST", self._path("/v1/search/image"), data=fields,
                            files=[("image", (name, data, kind))])

    def search_batch(self, queries, k=10, radius=None, limit=None, filter=None, rerank=None,
                     candidates=None, explain=False, shortlist=None):
        """Several queries in one request, each {"key": ..}, {"code": ..} or {"vector": ..}
        (or a vector itself: a list or a NumPy row). Returns one answer per query, in order."""
        qs = []
        for q in queries:
            if isinstance(q, dict):
                q = dict(q)
                if "vector" in q:
                    q["vector"] = _plain(q["vector"])
                qs.append(q)
            else:
                qs.append({"vector": _plain(q)})
        body = self._options(k, radius, limit, filter, rerank, candidates, explain, shortlist)
        body["queries"] = qs
        return self._s.call("POST", self._path("/v1/search"), json=body)["results"]

    # -- the collection ----------------------------------------------------------------------
    def info(self):
        """Model, bits, items, index settings, indexed fields and the server's limits."""
        return self._s.call("GET", self._path("/v1/info"))

    def code_health(self):
        """Bit balance and entropy, pairwise mutual information, distance histogram."""
        return self._s.call("GET", self._path("/v1/health/codes"))

    def evaluate(self, queries_per_class=100, seed=0, precision_at=500, radius=2):
        """The paper's retrieval protocol over the labelled items: mAP, precision@N, precision
        within the Hamming radius (fractions)."""
        return self._s.call("POST", self._path("/v1/evaluate"),
                            json={"queries_per_class": queries_per_class, "seed": seed,
                                  "precision_at": precision_at, "radius": radius})

    # -- snapshots ---------------------------------------------------------------------------
    def create_snapshot(self):
        """A consistent point-in-time copy of the collection: {"id", "bytes", ...}."""
        return self._s.call("POST", self._path("/v1/snapshots"))

    def snapshots(self):
        """The collection's snapshots, oldest first."""
        return self._s.call("GET", self._path("/v1/snapshots"))["snapshots"]

    def delete_snapshot(self, snapshot_id):
        return self._s.call("DELETE", self._path("/v1/snapshots/" + snapshot_id))

    def download_snapshot(self, snapshot_id, path):
        """Writes the snapshot (its store and model) to `path` as a zip archive; returns the
        number of bytes written."""
        url = self._base + self._path("/v1/snapshots/" + snapshot_id + "/archive")
        written = 0
        with self._s.session.get(url, stream=True, timeout=self._s.timeout) as r:
            if r.status_code >= 400:
                raise _error(r)
            with open(path, "wb") as out:
                for chunk in r.iter_content(1 << 20):
                    out.write(chunk)
                    written += len(chunk)
        return written

    def restore_snapshot(self, snapshot_id, as_collection):
        """A new collection named `as_collection` holding what the snapshot holds."""
        return self._s.call("POST", self._path("/v1/snapshots/" + snapshot_id + "/restore"),
                            json={"as": as_collection})


class _Session:
    def __init__(self, base, token, timeout):
        self.base = base
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = "Bearer " + token

    def call(self, method, path, raw=False, **kwargs):
        r = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
        if r.status_code >= 400:
            raise _error(r)
        if raw:
            return r.content
        return r.json() if r.content else None


class Collection(_Api):
    """A named collection of the server (`Client.collection(name)`)."""

    def __init__(self, session, base, name):
        super().__init__(session, base, "/v1/collections/" + name)
        self.name = name

    def __repr__(self):
        return f"imsat.Collection({self.name!r})"


class Client(_Api):
    """A connection to `imsat serve` at `url`. `token` (default: the IMSAT_TOKEN environment
    variable) is sent as a bearer token with every request."""

    def __init__(self, url="http://127.0.0.1:8080", token=None, timeout=60):
        base = url.rstrip("/")
        if token is None:
            token = os.environ.get("IMSAT_TOKEN") or None
        session = _Session(base, token, timeout)
        super().__init__(session, base, "")
        self.url = base

    def __repr__(self):
        return f"imsat.Client({self.url!r})"

    def health(self):
        """{"status": "ok"}, or "degraded" naming each collection that cannot take writes."""
        return self._s.call("GET", "/healthz")

    def collections(self):
        """Every collection: name, bits, items, model fingerprint, indexed fields."""
        return self._s.call("GET", "/v1/collections")["collections"]

    def collection(self, name):
        return Collection(self._s, self._base, name)

    def create_collection(self, name, bits=None, model_file=None, model=None, tables=None,
                          expected_items=None):
        """Creates a collection: code-only with `bits`, with a model file uploaded from this
        machine (`model_file`), or with a model file on the server (`model`). Returns its
        info."""
        path = "/v1/collections/" + name
        params = {}
        if tables is not None:
            params["tables"] = tables
        if expected_items is not None:
            params["expected_items"] = expected_items
        if model_file is not None:
            with open(model_file, "rb") as f:
                data = f.read()
            self._s.call("PUT", path, params=params, data=data,
                         headers={"Content-Type": "application/octet-stream"})
        else:
            body = dict(params)
            if bits is not None:
                body["bits"] = bits
            if model is not None:
                body["model"] = model
            self._s.call("PUT", path, json=body)
        return self.collection(name)

    def drop_collection(self, name):
        return self._s.call("DELETE", "/v1/collections/" + name)
