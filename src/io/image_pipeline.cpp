// The image pipeline's description: its JSON form as the model records it, its checks, and the
// command-line spellings of its settings.
#include <nlohmann/json.hpp>

#include "common/enum_names.h"
#include "io/images.h"

namespace imsat::io {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// The pipeline's description

size_t ImagePipeline::output_dim() const {
  const size_t c = static_cast<size_t>(channels);
  if (features == ImageFeatures::kGist) return kGistPerChannel * c;
  return static_cast<size_t>(size) * static_cast<size_t>(size) * c;
}

std::vector<size_t> ImagePipeline::output_shape() const {
  if (features == ImageFeatures::kGist) return {output_dim()};
  const size_t s = static_cast<size_t>(size);
  if (channels == 1) return {s, s};
  return {s, s, static_cast<size_t>(channels)};
}

namespace {

constexpr EnumName<Fit> kFitNames[] = {
    {Fit::kPad, "pad"}, {Fit::kCrop, "crop"}, {Fit::kStretch, "stretch"}};

const char* fit_name(Fit f) { return name_of(kFitNames, f); }

constexpr EnumName<ImageFeatures> kFeatureNames[] = {{ImageFeatures::kPixels, "pixels"},
                                                     {ImageFeatures::kGist, "gist"}};

const char* features_name(ImageFeatures f) { return name_of(kFeatureNames, f); }

std::string hex_colour(const uint8_t rgb[3]) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return buf;
}

}  // namespace

std::string ImagePipeline::to_json() const {
  return json{{"channels", channels},
              {"size", size},
              {"fit", fit_name(fit)},
              {"background", hex_colour(background)},
              {"features", features_name(features)},
              {"resize", "area average when shrinking, bilinear when enlarging"}}
      .dump();
}

Status ImagePipeline::validate() const {
  if (channels != 1 && channels != 3) {
    return Status::invalid_argument("image channels must be 1 (grey) or 3 (RGB), not " +
                                    std::to_string(channels));
  }
  if (size < 1 || size > 1024) {
    return Status::invalid_argument("image size must be 1 to 1024 pixels, not " +
                                    std::to_string(size));
  }
  if (features == ImageFeatures::kGist && size < 16) {
    return Status::invalid_argument("GIST needs images of at least 16 x 16 pixels, not " +
                                    std::to_string(size));
  }
  return Status::ok();
}

Result<ImagePipeline> ImagePipeline::from_json(const std::string& text) {
  ImagePipeline p;
  try {
    const json j = json::parse(text);
    p.channels = j.at("channels").get<int>();
    p.size = j.at("size").get<int>();
    IMSAT_ASSIGN_OR_RETURN(p.fit, parse_fit(j.at("fit").get<std::string>()));
    IMSAT_RETURN_IF_ERROR(parse_background(j.at("background").get<std::string>(), p.background));
    IMSAT_ASSIGN_OR_RETURN(p.features, parse_features(j.at("features").get<std::string>()));
  } catch (const json::exception& e) {
    return Status::invalid_argument(std::string("image pipeline is not valid: ") + e.what());
  }
  IMSAT_RETURN_IF_ERROR(p.validate());
  return p;
}

Result<Fit> parse_fit(const std::string& name) {
  if (const std::optional<Fit> f = value_of(kFitNames, name)) return *f;
  return Status::invalid_argument("unknown fit '" + name + "' (" + names_of(kFitNames) + ")");
}

Result<ImageFeatures> parse_features(const std::string& name) {
  if (const std::optional<ImageFeatures> f = value_of(kFeatureNames, name)) return *f;
  return Status::invalid_argument("unknown image features '" + name + "' (" +
                                  names_of(kFeatureNames) + ")");
}

Status parse_background(const std::string& text, uint8_t rgb[3]) {
  if (text == "white" || text == "black") {
    std::fill(rgb, rgb + 3, text == "white" ? 255 : 0);
    return Status::ok();
  }
  if (text.size() == 7 && text[0] == '#' &&
      text.find_first_not_of("0123456789abcdefABCDEF", 1) == std::string::npos) {
    for (int i = 0; i < 3; ++i) {
      rgb[i] = static_cast<uint8_t>(std::stoi(text.substr(1 + 2 * i, 2), nullptr, 16));
    }
    return Status::ok();
  }
  return Status::invalid_argument("background colour '" + text +
                                  "' is not white, black or #rrggbb");
}

constexpr EnumName<SkipReason> kSkipReasonNames[] = {
    {SkipReason::kNotImage, "not an image"}, {SkipReason::kTruncated, "truncated or damaged"},
    {SkipReason::kEmpty, "empty"},           {SkipReason::kTooLarge, "too large"},
    {SkipReason::kUnreadable, "unreadable"}, {SkipReason::kDuplicate, "duplicate"}};

const char* skip_reason_name(SkipReason r) { return name_of(kSkipReasonNames, r); }

}  // namespace imsat::io
