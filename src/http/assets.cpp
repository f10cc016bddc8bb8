// The web page and the OpenAPI description, as static text.
#include "http/http_internal.h"

namespace imsat::http::internal {

const char* web_page() {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>imsat: similar-image search</title>
<style>
 body { font-family: sans-serif; margin: 1.5em; max-width: 60em; color: #222; }
 h1 { font-size: 1.4em; }
 section { margin-bottom: 1.2em; }
 .row { display: flex; gap: 1em; align-items: flex-start; flex-wrap: wrap; }
 .hit { text-align: center; font-size: 0.8em; }
 .hit img, #query-image { width: 84px; height: 84px; object-fit: contain; image-rendering: pixelated; border: 1px solid #999; background: #000; }
 canvas { border: 1px solid #999; background: #000; cursor: crosshair; touch-action: none; }
 #error { color: #b00; }
 table { border-collapse: collapse; } td, th { padding: 0.2em 0.6em; border: 1px solid #ccc; }
</style>
</head>
<body>
<h1>imsat: similar-image search</h1>
<p id="info">loading…</p>
<section>
 <div class="row">
  <div>
   <p>Search by a stored item:</p>
   <input id="key" value="0" size="10"> <button id="search-key">Search</button>
   <button id="random-key">Random item</button>
   <p>or upload an image: <input type="file" id="file" accept="image/png,image/jpeg"></p>
   <p><label><input type="checkbox" id="invert"> invert the upload (dark on light)</label>
      k <input id="k" value="12" size="3">
      re-rank <select id="rerank"><option>none</option><option>exact</option><option>asymmetric</option></select></p>
  </div>
  <div>
   <p>or draw (light on dark):</p>
   <canvas id="pad" width="168" height="168"></canvas><br>
   <button id="search-drawing">Search drawing</button> <button id="clear">Clear</button>
  </div>
 </div>
</section>
<p id="error"></p>
<section>
 <div class="row"><div class="hit"><img id="query-image" alt="query"><br>query</div></div>
 <h2>Nearest neighbours</h2>
 <div class="row" id="hits"></div>
</section>
<section>
 <h2>Evaluation of the index</h2>
 <p>Token (if the server needs one): <input id="token" type="password" size="20">
    <button id="evaluate">Evaluate</button></p>
 <div id="evaluation"></div>
</section>
<script>
const $ = (id) => document.getElementById(id);
let items = 0;
function showError(e) { $("error").textContent = e ? String(e) : ""; }
async function getJson(url, options) {
  const r = await fetch(url, options);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function showHits(result) {
  const hits = $("hits");
  hits.innerHTML = "";
  for (const h of result.hits) {
    const d = document.createElement("div");
    d.className = "hit neighbour";
    const img = document.createElement("img");
    img.onload = () => { img.dataset.loaded = "1"; };
    img.onerror = () => { img.dataset.loaded = "error"; };
    img.src = "/v1/items/" + encodeURIComponent(h.key) + "/image";
    img.alt = h.key;
    d.appendChild(img);
    d.appendChild(document.createElement("br"));
    let label = h.label === undefined ? "-" : String(h.label);
    if (h.metadata && typeof h.metadata.label_name === "string") label += " (" + h.metadata.label_name + ")";
    const score = h.score === undefined ? "" : " score " + h.score.toFixed(1);
    d.appendChild(document.createTextNode("key " + h.key + " · d " + h.distance + score + " · label " + label));
    hits.appendChild(d);
  }
}
function request() {
  return { k: parseInt($("k").value, 10) || 10, rerank: $("rerank").value };
}
async function searchKey(key) {
  showError("");
  try {
    $("query-image").src = "/v1/items/" + encodeURIComponent(key) + "/image";
    const body = Object.assign({ key: key }, request());
    showHits(await getJson("/v1/search", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }));
  } catch (e) { showError(e); }
}
async function searchImage(blob) {
  showError("");
  try {
    $("query-image").src = URL.createObjectURL(blob);
    const q = request();
    const url = "/v1/search/image?k=" + q.k + "&rerank=" + q.rerank + ($("invert").checked ? "&invert=1" : "");
    showHits(await getJson(url, { method: "POST", headers: { "Content-Type": blob.type || "image/png" }, body: blob }));
  } catch (e) { showError(e); }
}
$("search-key").onclick = () => searchKey($("key").value);
$("random-key").onclick = () => { $("key").value = String(Math.floor(Math.random() * Math.max(items, 1))); searchKey($("key").value); };
$("file").onchange = () => { const f = $("file").files[0]; if (f) searchImage(f); };
const pad = $("pad"), ctx = pad.getContext("2d");
function clearPad() { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height); }
clearPad();
let drawing = false;
pad.onpointerdown = (e) => { drawing = true; draw(e); };
pad.onpointerup = pad.onpointerleave = () => { drawing = false; };
pad.onpointermove = (e) => { if (drawing) draw(e); };
function draw(e) {
  const r = pad.getBoundingClientRect();
  ctx.fillStyle = "#fff";
  ctx.beginPath();
  ctx.arc(e.clientX - r.left, e.clientY - r.top, 9, 0, 2 * Math.PI);
  ctx.fill();
}
$("clear").onclick = clearPad;
$("search-drawing").onclick = () => pad.toBlob((b) => searchImage(b), "image/png");
$("evaluate").onclick = async () => {
  showError("");
  $("evaluation").textContent = "evaluating…";
  try {
    const headers = { "Content-Type": "application/json" };
    if ($("token").value) headers["Authorization"] = "Bearer " + $("token").value;
    const e = await getJson("/v1/evaluate", { method: "POST", headers: headers, body: "{}" });
    $("evaluation").innerHTML = "<table><tr><th>mAP</th><th>precision@500</th><th>precision@r=2</th><th>queries</th><th>gallery</th></tr><tr><td>" +
      (100 * e.map).toFixed(1) + "</td><td>" + (100 * e.precision_at_500).toFixed(1) + "</td><td>" + (100 * e.precision_at_r2).toFixed(1) +
      "</td><td>" + e.queries + "</td><td>" + e.gallery + "</td></tr></table>";
  } catch (e) { $("evaluation").textContent = ""; showError(e); }
};
getJson("/v1/info").then((info) => {
  items = info.items;
  // A link like /#key=42 fills in the item and clicks Search.
  const link = location.hash.match(/^#key=(.+)$/);
  if (link) { $("key").value = decodeURIComponent(link[1]); $("search-key").click(); }
  const m = info.model ? info.model.method + ", " + info.model.bits + " bits" : "no model";
  $("info").textContent = info.items + " items, " + info.bits + "-bit codes, model: " + m;
}).catch(showError);
</script>
</body>
</html>
)HTML";
}

const char* openapi_json() {
  return R"JSON({
 "openapi": "3.0.3",
 "info": {"title": "imsat similar-image search", "version": "1"},
 "components": {
  "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
  "schemas": {
   "Error": {"type": "object", "required": ["error", "code"], "properties": {"error": {"type": "string"},
    "code": {"type": "string", "description": "stable and machine-readable: bad_request, invalid_argument, unknown_field, invalid_filter, missing_token, wrong_token, not_found, unknown_endpoint, unknown_collection, no_default_collection, bad_collection_name, method_not_allowed, too_large, unsupported_media_type, busy, io_error, corruption, internal"}}},
   "Condition": {"type": "object", "description": "{key, match} | {key, match_any} | {key, range: {gt, gte, lt, lte}} | {has_key: [keys]} | a nested Filter; key 'label' is the item's label; dotted keys reach into objects; an array value holds when any element does",
    "properties": {"key": {"type": "string"}, "match": {}, "match_any": {"type": "array", "items": {}},
     "range": {"type": "object", "properties": {"gt": {"type": "number"}, "gte": {"type": "number"}, "lt": {"type": "number"}, "lte": {"type": "number"}}},
     "has_key": {"type": "array", "items": {"type": "string"}}}},
   "Filter": {"type": "object", "description": "every must condition, at least one should condition (when any), no must_not condition; indexed fields (PUT .../index/{field}) and the label are answered from memory, other fields from each candidate's metadata (explain says which)",
    "properties": {"must": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}},
     "should": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}},
     "must_not": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}}}},
   "Query": {"type": "object", "description": "exactly one of vector, code, key",
    "properties": {"vector": {"type": "array", "items": {"type": "number"}},
                   "code": {"type": "string", "description": "hex, bits/4 digits"},
                   "key": {"type": "string"}}},
   "Hit": {"type": "object", "properties": {"key": {"type": "string"}, "distance": {"type": "integer"},
    "score": {"type": "number"}, "label": {"type": "integer"}, "metadata": {}}},
   "Result": {"type": "object", "properties": {"code": {"type": "string"},
    "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
    "explain": {"type": "object", "properties": {"buckets_probed": {"type": "integer"},
     "candidates_verified": {"type": "integer"}, "candidates_reranked": {"type": "integer"}}}}},
   "Item": {"type": "object", "required": ["key"], "description": "exactly one of vector, code",
    "properties": {"key": {"type": "string"}, "vector": {"type": "array", "items": {"type": "number"}},
     "code": {"type": "string"}, "label": {"type": "integer"}, "metadata": {}}}
  }
 },
 "paths": {
  "/v1/search": {"post": {"summary": "kNN or radius search by vector, code or stored key; several queries with 'queries'",
   "requestBody": {"required": true, "content": {"application/json": {"schema": {"allOf": [
    {"$ref": "#/components/schemas/Query"},
    {"type": "object", "properties": {"queries": {"type": "array", "items": {"$ref": "#/components/schemas/Query"}},
     "k": {"type": "integer", "default": 10}, "limit": {"type": "integer", "description": "k for a kNN search; for a radius search the most hits returned (default 1000; 'truncated' says when more were within the radius)"},
     "radius": {"type": "integer", "description": "every item within this Hamming distance (give 'limit', not 'k')"},
     "filter": {"$ref": "#/components/schemas/Filter"},
     "rerank": {"type": "string", "enum": ["none", "exact", "asymmetric"]},
     "candidates": {"type": "integer"}, "explain": {"type": "boolean"}, "scan": {"type": "boolean"}}}]}}}},
   "responses": {"200": {"description": "one Result, or {results: [Result]} for 'queries'",
     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
    "400": {"description": "bad request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "404": {"description": "unknown key"}, "413": {"description": "body too large"}, "415": {"description": "not JSON"}}}},
  "/v1/search/image": {"post": {"summary": "search by an uploaded PNG or JPEG",
   "parameters": [{"name": "k", "in": "query", "schema": {"type": "integer"}},
    {"name": "rerank", "in": "query", "schema": {"type": "string"}},
    {"name": "label", "in": "query", "schema": {"type": "integer"}},
    {"name": "invert", "in": "query", "schema": {"type": "integer"}},
    {"name": "explain", "in": "query", "schema": {"type": "integer"}}],
   "requestBody": {"required": true, "content": {"image/png": {}, "image/jpeg": {}}},
   "responses": {"200": {"description": "Result", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
    "400": {"description": "undecodable image"}, "415": {"description": "not an image"}}}},
  "/v1/items": {"post": {"summary": "add or replace items (one atomic, durable batch)", "security": [{"bearer": []}],
   "requestBody": {"required": true, "content": {
    "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}},
    "application/x-ndjson": {"schema": {"$ref": "#/components/schemas/Item"}},
    "image/*": {"description": "one image; key, label and metadata (JSON) in the query string"},
    "multipart/form-data": {"description": "image files with optional key, label and metadata fields (one for all, or one per file; keys default to the file names)"}}},
   "responses": {"200": {"description": "{added, items}"}, "400": {"description": "bad item; nothing written"},
    "401": {"description": "missing or wrong token"}}}},
  "/v1/items/{key}": {
   "parameters": [{"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}],
   "get": {"summary": "a stored item", "responses": {"200": {"description": "{key, code, label, metadata, has_vector}"}, "404": {"description": "unknown key"}}},
   "delete": {"summary": "delete an item", "security": [{"bearer": []}],
    "responses": {"200": {"description": "{deleted}"}, "401": {"description": "missing or wrong token"}, "404": {"description": "unknown key"}}}},
  "/v1/items/{key}/image": {"get": {"summary": "a stored item's thumbnail (JPEG), or its stored pixels drawn as PNG",
   "parameters": [{"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}],
   "responses": {"200": {"description": "JPEG or PNG", "content": {"image/jpeg": {}, "image/png": {}}}, "404": {"description": "unknown key or no stored image"}}}},
  "/v1/evaluate": {"post": {"summary": "the paper's protocol over the labelled items of the index", "security": [{"bearer": []}],
   "requestBody": {"content": {"application/json": {"schema": {"type": "object",
    "properties": {"queries_per_class": {"type": "integer", "default": 100}, "seed": {"type": "integer", "default": 0}}}}}},
   "responses": {"200": {"description": "{map, precision_at_500, precision_at_r2, empty_r2_share, queries, gallery}"}}}},
  "/v1/info": {"get": {"summary": "model, bits, item count, index settings, limits", "responses": {"200": {"description": "info"}}}},
  "/v1/health/codes": {"get": {"summary": "bit balance and entropy, pairwise bit MI, distance histogram, bucket occupancy", "responses": {"200": {"description": "code health"}}}},
  "/v1/items/scroll": {"post": {"requestBody": {"content": {"application/json": {"schema": {"type": "object",
    "properties": {"filter": {"$ref": "#/components/schemas/Filter"}, "limit": {"type": "integer", "default": 100, "maximum": 10000},
     "offset": {"type": "string", "description": "the previous page's next_offset (a position in insertion order: it survives concurrent writes)"}}}}}},
   "responses": {"200": {"description": "{items: [Item], next_offset (null at the end)}"}}}},
  "/v1/items/count": {"post": {"requestBody": {"content": {"application/json": {"schema": {"type": "object",
    "properties": {"filter": {"$ref": "#/components/schemas/Filter"}}}}}},
   "responses": {"200": {"description": "{count} (exact)"}}}},
  "/v1/items/delete": {"post": {"requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
    "description": "exactly one of keys and filter; one atomic batch",
    "properties": {"keys": {"type": "array", "items": {"type": "string"}}, "filter": {"$ref": "#/components/schemas/Filter"}}}}}},
   "responses": {"200": {"description": "{deleted, not_found: [keys]}"}, "401": {"description": "missing or wrong token"}}}},
  "/v1/index/{field}": {"put": {"parameters": [{"name": "field", "in": "path", "required": true, "schema": {"type": "string"}}],
   "responses": {"200": {"description": "{indexed_fields}"}}}},
  "/v1/snapshots": {
   "post": {"responses": {"201": {"description": "{id, path, bytes, created_unix, has_model}"}}},
   "get": {"responses": {"200": {"description": "{snapshots: [{id, path, bytes, created_unix, has_model}]}"}}}},
  "/v1/snapshots/{id}": {"delete": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
   "responses": {"200": {"description": "{deleted}"}, "404": {"description": "no such snapshot"}}}},
  "/v1/collections": {"get": {"responses": {"200": {"description": "{collections: [{name, bits, items, model_fingerprint, indexed_fields}], default}"}}}},
  "/v1/collections/{collection}": {
   "parameters": [{"name": "collection", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}],
   "put": {"requestBody": {"content": {"application/json": {"schema": {"type": "object",
     "properties": {"bits": {"type": "integer"}, "model": {"type": "string", "description": "path of a model file on the server"},
      "tables": {"type": "integer"}, "expected_items": {"type": "integer"}}}},
     "application/octet-stream": {"description": "a model file (tables and expected_items in the query string)"}}},
    "responses": {"201": {"description": "the collection's info"}, "400": {"description": "bad name or settings, or the name is taken"}}},
   "get": {"responses": {"200": {"description": "the collection's info (as /v1/info)"}, "404": {"description": "unknown collection"}}},
   "delete": {"responses": {"200": {"description": "{dropped}"}, "404": {"description": "unknown collection"}}}},
  "/healthz": {"get": {"summary": "liveness", "responses": {"200": {"description": "{status: ok}"}}}},
  "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text/plain"}}}},
  "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI 3"}}}},
  "/": {"get": {"summary": "the web page", "responses": {"200": {"description": "text/html"}}}}
 }
})JSON";
}

}  // namespace imsat::http::internal
