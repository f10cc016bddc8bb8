// Snapshots of a collection: POST and GET /v1/snapshots, DELETE /v1/snapshots/{id}, GET
// /v1/snapshots/{id}/archive (a zip download), POST /v1/snapshots/{id}/restore (as a new
// collection).
#include "http/http_internal.h"
#include "query/json_format.h"

namespace imsat::http::internal {

json snapshot_json(const query::SnapshotInfo& s, const query::Catalog& catalog) {
  return {{"id", s.id},
          {"path", without_server_paths(s.path, catalog)},
          {"bytes", s.bytes},
          {"created_unix", s.created_unix},
          {"has_model", s.has_model}};
}

Response handle_snapshot_create(Call& call) {
  if (!call.request.body.empty() &&
      call.request.body.find_first_not_of(" \t\r\n{}") != std::string::npos) {
    throw HttpError{400, "a snapshot takes no options; send an empty body"};
  }
  return json_response(
      201,
      snapshot_json(take(call.catalog.create_snapshot(call.collection->name())), call.catalog));
}

Response handle_snapshots_list(Call& call) {
  json list = json::array();
  for (const auto& s : take(call.catalog.snapshots(call.collection->name()))) {
    list.push_back(snapshot_json(s, call.catalog));
  }
  return json_response(200, {{"snapshots", list}});
}

Response handle_snapshot_archive(Call& call) {
  Response r;
  r.content_type = "application/zip";
  r.file = take(call.catalog.snapshot_archive(call.collection->name(), call.captures[0]));
  r.remove_file = true;
  r.headers["Content-Disposition"] =
      "attachment; filename=\"" + call.collection->name() + "-" + call.captures[0] + ".zip\"";
  return r;
}

Response handle_snapshot_restore(Call& call) {
  call.require_json_content();
  const json body = call.json_body();
  if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
  check_fields(body, {"as"});
  if (!body.contains("as") || !body["as"].is_string()) {
    throw HttpError{400,
                    "give 'as': the name of the new collection (replacing a served collection "
                    "in place needs the server stopped: imsat snapshot restore --force)"};
  }
  const std::string as = body["as"].get<std::string>();
  const Status name_ok = query::check_collection_name(as);
  if (!name_ok.is_ok()) throw HttpError{400, name_ok.message(), "bad_collection_name"};
  const auto restored =
      take(call.catalog.restore_snapshot(call.collection->name(), call.captures[0], as));
  json out = collection_info(*restored, call.limits, call.token_required);
  out["restored_from"] = {{"collection", call.collection->name()}, {"snapshot", call.captures[0]}};
  return json_response(201, out);
}

Response handle_snapshot_delete(Call& call) {
  check(call.catalog.delete_snapshot(call.collection->name(), call.captures[0]));
  return json_response(200, {{"deleted", call.captures[0]}});
}

}  // namespace imsat::http::internal
