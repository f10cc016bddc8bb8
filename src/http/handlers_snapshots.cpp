// Snapshots of a collection: POST and GET /v1/snapshots, DELETE /v1/snapshots/{id}.
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

Response handle_snapshot_delete(Call& call) {
  check(call.catalog.delete_snapshot(call.collection->name(), call.captures[0]));
  return json_response(200, {{"deleted", call.captures[0]}});
}

}  // namespace imsat::http::internal
