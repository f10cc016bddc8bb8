// The distance of a nearest-neighbour job (learn::Metric) as the query layer applies it: what a
// store records, and the unit-length vectors of a cosine store.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "learn/learn.h"

namespace imsat::query {

// What a store made with `model` records as its metric (index::StoreOptions::metric): "l2" or
// "cosine" for a model trained for one, "" for the paper's job (re-ranked by l2 too).
std::string metric_of(const learn::Model& model);
// A store's recorded metric as a learn::Metric ("" and "l2": l2). InvalidArgument otherwise.
Result<learn::Metric> parse_store_metric(const std::string& recorded);

// Scales `v` to unit Euclidean length; false (and `v` unchanged) for a zero vector.
using learn::scale_to_unit_length;

// The distance a re-ranked hit reports from the squared Euclidean distance of the compared
// vectors: the Euclidean distance itself, or for cosine (unit vectors) 1 - cosine similarity,
// which is half the squared distance.
double reported_distance(learn::Metric metric, double squared_l2);

}  // namespace imsat::query
