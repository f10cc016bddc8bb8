// Item operations of the query engine: add (by code or by vector, encoded here), get, erase,
// scroll, and drawing a stored vector as an image.
#include <cmath>
#include <unordered_set>

#include "query/codes_file.h"
#include "query/engine.h"
#include "query/image.h"

namespace imsat::query {
namespace {

StoredItem stored_item(index::Item item) {
  StoredItem out;
  out.key = std::move(item.key);
  out.code_hex = to_hex(item.code.data(), item.code.size());
  if (item.tag != index::kNoTag) out.label = item.tag;
  out.metadata = std::move(item.metadata);
  out.vector = std::move(item.vector);
  return out;
}

}  // namespace

Result<size_t> QueryEngine::add_items(std::vector<NewItem> items, size_t max_image_pixels) {
  if (items.empty()) return Status::invalid_argument("no items given");
  const size_t code_bytes = static_cast<size_t>(bits()) / 8;
  // Validate everything first and gather the vectors to encode in one batch.
  std::vector<float> raw;
  std::vector<size_t> by_vector;
  size_t dim = model_ != nullptr ? model_->input_dim() : 0;
  std::vector<std::string> thumbnails(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    NewItem& it = items[i];
    const std::string where = "item " + std::to_string(i) + ": ";
    if (it.key.empty()) return Status::invalid_argument(where + "needs a non-empty key");
    if (!it.vector.empty() + !it.code.empty() + !it.image.empty() != 1) {
      return Status::invalid_argument(where + "give exactly one of a code, a vector or an image");
    }
    if (!it.image.empty()) {
      if (model_ == nullptr) return Status::invalid_argument(where + "adding images needs a model");
      Result<std::vector<float>> input = image_to_input(it.image, *model_, false, max_image_pixels);
      if (!input.is_ok()) return Status::invalid_argument(where + input.status().message());
      it.vector = std::move(input).value();
      Result<std::string> thumbnail =
          io::make_thumbnail(it.image, kThumbnailSide, max_image_pixels);
      if (thumbnail.is_ok()) thumbnails[i] = std::move(thumbnail).value();
      it.image.clear();
    }
    if (it.label && *it.label < 0) {
      return Status::invalid_argument(where + "labels are non-negative integers");
    }
    if (!it.code.empty()) {
      if (it.code.size() != code_bytes) {
        return Status::invalid_argument(where + "a " + std::to_string(it.code.size() * 8) +
                                        "-bit code; the store holds " + std::to_string(bits()) +
                                        "-bit codes");
      }
      continue;
    }
    if (model_ == nullptr) return Status::invalid_argument(where + "adding vectors needs a model");
    if (it.vector.size() != dim) {
      return Status::invalid_argument(where + "the vector has " + std::to_string(it.vector.size()) +
                                      " values; the model expects " + std::to_string(dim));
    }
    for (float v : it.vector) {
      if (!std::isfinite(v)) return Status::invalid_argument(where + "a NaN or infinite value");
    }
    // A cosine store keeps unit vectors (its exact re-ranking compares directions).
    if (metric_ == learn::Metric::kCosine &&
        !scale_to_unit_length(it.vector.data(), it.vector.size())) {
      return Status::invalid_argument(
          where + "the vector is all zeros: it has no direction (the metric is cosine)");
    }
    raw.insert(raw.end(), it.vector.begin(), it.vector.end());
    by_vector.push_back(i);
  }
  std::vector<uint8_t> encoded;
  if (!by_vector.empty()) {
    IMSAT_ASSIGN_OR_RETURN(encoded, encode(raw.data(), by_vector.size(), dim));
  }
  std::vector<index::Item> out(items.size());
  for (size_t i = 0, v = 0; i < items.size(); ++i) {
    NewItem& it = items[i];
    index::Item& item = out[i];
    item.key = std::move(it.key);
    if (it.code.empty()) {
      item.code.assign(encoded.begin() + static_cast<std::ptrdiff_t>(v * code_bytes),
                       encoded.begin() + static_cast<std::ptrdiff_t>((v + 1) * code_bytes));
      ++v;
    } else {
      item.code = std::move(it.code);
    }
    item.tag = it.label.value_or(index::kNoTag);
    item.metadata = std::move(it.metadata);
    item.vector = std::move(it.vector);
    item.thumbnail = std::move(thumbnails[i]);
  }
  IMSAT_RETURN_IF_ERROR(store_->put(out));  // one atomic, synced batch
  return store_->info().items;
}

Result<StoredItem> QueryEngine::get_item(const std::string& key) const {
  IMSAT_ASSIGN_OR_RETURN(index::Item item, store_->get(key));
  return stored_item(std::move(item));
}

Status QueryEngine::erase_items(const std::vector<std::string>& keys) {
  if (keys.empty()) return Status::invalid_argument("no keys given");
  return store_->erase(keys);
}

Result<ScrollPage> QueryEngine::scroll(const std::string& cursor, size_t limit,
                                       const Filter* filter) const {
  if (limit < 1 || limit > kMaxScroll) {
    return Status::invalid_argument("limit must be from 1 to " + std::to_string(kMaxScroll) +
                                    ", got " + std::to_string(limit));
  }
  uint64_t after = 0;
  if (!cursor.empty()) {
    size_t used = 0;
    try {
      after = std::stoull(cursor, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != cursor.size() || cursor[0] == '-') {
      return Status::invalid_argument("cursor '" + cursor + "' is not one this server returned");
    }
  }
  uint64_t last = after;
  std::shared_ptr<const index::Selection> selection;
  if (filter != nullptr && !filter->empty()) {
    IMSAT_ASSIGN_OR_RETURN(selection, store_->select(*filter->get()));
  }
  bool full = false;
  IMSAT_ASSIGN_OR_RETURN(std::vector<index::Item> items,
                         store_->scroll(after, limit, &last, selection.get(), &full));
  ScrollPage page;
  for (index::Item& item : items) page.items.push_back(stored_item(std::move(item)));
  if (full) page.next_cursor = std::to_string(last);
  return page;
}

Result<size_t> QueryEngine::count(const Filter* filter) const {
  if (filter == nullptr || filter->empty()) return store_->info().items;
  IMSAT_ASSIGN_OR_RETURN(std::shared_ptr<const index::Selection> selection,
                         store_->select(*filter->get()));
  return selection->count;
}

Result<size_t> QueryEngine::erase_where(const Filter& filter) {
  if (filter.empty()) {
    return Status::invalid_argument(
        "an empty filter would delete every item; give at least one condition");
  }
  return store_->erase_where(*filter.get());
}

Result<size_t> QueryEngine::erase_present(const std::vector<std::string>& keys,
                                          std::vector<std::string>* missing) {
  return store_->erase_present(keys, missing);
}

Status QueryEngine::index_field(const std::string& field) { return store_->index_field(field); }

std::vector<std::string> QueryEngine::indexed_fields() const { return store_->indexed_fields(); }

Status QueryEngine::checkpoint(const std::string& dir) const { return store_->checkpoint(dir); }

Result<QueryEngine::Picture> QueryEngine::item_image(const std::string& key) const {
  Result<std::string> thumbnail = store_->thumbnail(key);
  if (thumbnail.is_ok()) return Picture{"image/jpeg", std::move(thumbnail).value()};
  if (thumbnail.status().code() != Status::Code::kNotFound) return thumbnail.status();
  IMSAT_ASSIGN_OR_RETURN(index::Item item, store_->get(key));
  if (item.vector.empty()) {
    return Status::not_found("item '" + key +
                             "' has no thumbnail or stored vector to draw (index with vectors)");
  }
  if (model_ == nullptr || model_->input_dim() != item.vector.size()) {
    return Status::not_found("item '" + key + "' is not an image of the model's shape");
  }
  Result<std::string> png = input_to_png(item.vector, *model_);
  if (!png.is_ok()) return Status::not_found("item '" + key + "': " + png.status().message());
  return Picture{"image/png", std::move(png).value()};
}

}  // namespace imsat::query
